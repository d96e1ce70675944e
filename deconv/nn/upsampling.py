"""Upsampling layers: Upsample (nearest, bilinear, trilinear), PixelShuffle, PixelUnshuffle.

The computation is that of :mod:`deconv.functional.upsampling`.
"""

import numpy as np

from deconv.functional import upsampling as _up
from deconv.functional.validation import as_bool, as_positive_int, check_ndim, LAYOUT
from deconv.nn.module import Module, prefixed

__all__ = ["Upsample", "PixelShuffle", "PixelUnshuffle"]

# the interpolating modes and the input ndim each takes (issue 13: trilinear)
_LINEAR_NDIM = {"bilinear": 4, "trilinear": 5}


class Upsample(Module):
    """Nearest, bilinear or trilinear upsampling, as ``torch.nn.Upsample``.

    Parameters
    ----------
    size : int or tuple of ints, optional
        Output spatial size.
    scale_factor : float or tuple of floats, optional
        Multiplier of the spatial size. Give exactly one of ``size`` and
        ``scale_factor``.
    mode : {'nearest', 'bilinear', 'trilinear'}
        'nearest' for 3-D ``(N, C, L)``, 4-D ``(N, C, H, W)`` and 5-D
        ``(N, C, D, H, W)`` inputs (:func:`deconv.upsample_nearest1d` /
        ``2d`` / ``3d``), 'bilinear' for 4-D only
        (:func:`deconv.upsample_bilinear2d`), 'trilinear' for 5-D only
        (:func:`deconv.upsample_trilinear3d`).
    align_corners : bool, default False
        Only with 'bilinear' or 'trilinear' (True with 'nearest' is refused,
        as in torch); None means False.

    Notes
    -----
    Output size ``size``, or ``floor(L * scale_factor)`` per axis. A given
    ``scale_factor`` enters the index map (``recompute_scale_factor=None``
    in torch), forward and backward alike.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> nn.Upsample(scale_factor=2)(np.array([[[1., 2.]]]))
    array([[[1., 1., 2., 2.]]])
    >>> nn.Upsample(size=(1, 4), mode='bilinear')(np.array([[[[0., 1.]]]]))
    array([[[[0.  , 0.25, 0.75, 1.  ]]]])
    >>> nn.Upsample(scale_factor=2, mode='trilinear')(np.ones((1, 1, 2, 2, 2))).shape
    (1, 1, 4, 4, 4)
    """

    def __init__(self, size=None, scale_factor=None, mode="nearest", align_corners=False):
        """Check and store the arguments; errors start with ``Upsample:``."""
        super().__init__()
        if (size is None) == (scale_factor is None):
            raise ValueError(
                f"Upsample: give exactly one of size and scale_factor, got size={size!r} and "
                f"scale_factor={scale_factor!r}")
        if not any(isinstance(mode, str) and mode == m for m in _LINEAR_NDIM.keys() | {"nearest"}):
            raise ValueError(
                f"Upsample: mode must be 'nearest', 'bilinear' or 'trilinear', got {mode!r}")
        if align_corners is None:
            align_corners = False
        with prefixed("Upsample"):
            align_corners = as_bool(align_corners, "align_corners")
        if align_corners and mode not in _LINEAR_NDIM:
            raise ValueError(
                f"Upsample: align_corners can only be set with mode='bilinear' or 'trilinear', got "
                f"mode={mode!r} and align_corners=True")
        if scale_factor is not None:
            if isinstance(scale_factor, (list, tuple)):
                scale_factor = tuple(scale_factor)
            elif isinstance(scale_factor, (bool, np.bool_)) or not isinstance(
                    scale_factor, (int, float, np.integer, np.floating)):
                raise TypeError(
                    f"Upsample: scale_factor must be a positive float or a tuple of them, got "
                    f"{scale_factor!r}")
            else:
                try:
                    scale_factor = float(scale_factor)
                except OverflowError:            # an int beyond the float range
                    raise ValueError(f"Upsample: scale_factor must be a positive finite float, "
                                     f"got an int of {len(str(scale_factor))} digits") from None
        if isinstance(size, list):
            size = tuple(size)
        self.size = size
        self.scale_factor = scale_factor
        self.mode = mode
        self.align_corners = align_corners

    def extra_repr(self):
        """The output size or scale factor, the mode and a non-default align_corners."""
        s = (f"size={self.size!r}" if self.size is not None
             else f"scale_factor={self.scale_factor!r}")
        s += f", mode={self.mode!r}"
        if self.align_corners:
            s += ", align_corners=True"
        return s

    def _functions(self, ndim):
        """The (forward, backward) functional ops for a ``ndim``-D input of this mode."""
        if self.mode in _LINEAR_NDIM:
            name = f"upsample_{self.mode}{ndim - 2}d"
        else:
            name = f"upsample_nearest{ndim - 2}d"
        return getattr(_up, name), getattr(_up, name + "_backward")

    def _check_input(self, x):
        """A float array: 4-D ``(N, C, H, W)`` for 'bilinear', 5-D for 'trilinear',
        3-D to 5-D for 'nearest'."""
        x = self._input(x)
        if self.mode in _LINEAR_NDIM or x.ndim < 3:
            with prefixed(self):
                ndim = _LINEAR_NDIM.get(self.mode, 3)
                check_ndim(x, "x", ndim, LAYOUT[ndim - 2])
        elif x.ndim > 5:
            raise ValueError(
                f"{self._short_repr()}: mode='nearest' needs a 3-D (N, C, L), 4-D (N, C, H, W) "
                f"or 5-D (N, C, D, H, W) input, got shape {x.shape}")
        return x

    def forward(self, x):
        """Upsample ``x``.

        Parameters
        ----------
        x : ndarray, shape (N, C, L), (N, C, H, W) or (N, C, D, H, W)

        Returns
        -------
        y : ndarray, shape (N, C, *spatial_out)
        """
        x = self._check_input(x)
        fwd, _ = self._functions(x.ndim)
        kw = {"align_corners": self.align_corners} if self.mode in _LINEAR_NDIM else {}
        with prefixed(self):
            y = fwd(x, size=self.size, scale_factor=self.scale_factor, **kw)
        self._save(y, input_shape=x.shape)
        return y

    def backward(self, grad_output):
        """The adjoint of the forward's interpolation map.

        Returns
        -------
        grad_input : ndarray, shape of the last input
        """
        c, g = self._saved_and_grad(grad_output)
        _, bwd = self._functions(g.ndim)
        kw = {"align_corners": self.align_corners} if self.mode in _LINEAR_NDIM else {}
        with prefixed(self):
            return bwd(g, c["input_shape"], scale_factor=self.scale_factor, **kw)


class PixelShuffle(Module):
    """``(N, C*r*r, H, W) -> (N, C, H*r, W*r)``, as ``torch.nn.PixelShuffle``.

    Parameters
    ----------
    upscale_factor : int
        ``r >= 1``.

    Notes
    -----
    ``y[n, c, h*r + i, w*r + j] = x[n, c*r*r + i*r + j, h, w]``; see
    :func:`deconv.pixel_shuffle`.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> nn.PixelShuffle(2)(np.arange(4.0).reshape(1, 4, 1, 1))[0, 0]
    array([[0., 1.],
           [2., 3.]])
    """

    def __init__(self, upscale_factor):
        """Check and store ``upscale_factor``."""
        super().__init__()
        with prefixed("PixelShuffle"):
            self.upscale_factor = as_positive_int(upscale_factor, "upscale_factor")

    def extra_repr(self):
        """The factor."""
        return f"upscale_factor={self.upscale_factor}"

    def forward(self, x):
        """Rearrange channels into space: ``(N, C*r*r, H, W) -> (N, C, H*r, W*r)``.

        Parameters
        ----------
        x : ndarray or array-like, shape (N, C*r*r, H, W)

        Returns
        -------
        y : ndarray, shape (N, C, H*r, W*r)
        """
        x = self._input(x, 4)
        with prefixed(self):
            y = _up.pixel_shuffle(x, self.upscale_factor)
        self._save(y)
        return y

    def backward(self, grad_output):
        """The inverse rearrangement (a permutation's adjoint).

        Parameters
        ----------
        grad_output : ndarray or array-like, shape and dtype of the last output

        Returns
        -------
        grad_input : ndarray, shape of the last input
        """
        _, g = self._saved_and_grad(grad_output)
        with prefixed(self):
            return _up.pixel_shuffle_backward(g, self.upscale_factor)


class PixelUnshuffle(Module):
    """``(N, C, H*r, W*r) -> (N, C*r*r, H, W)``, as ``torch.nn.PixelUnshuffle``.

    Parameters
    ----------
    downscale_factor : int
        ``r >= 1``; ``H`` and ``W`` of the input must be multiples of it.

    Notes
    -----
    The inverse of :class:`PixelShuffle`; see :func:`deconv.pixel_unshuffle`.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> nn.PixelUnshuffle(2)(np.arange(4.0).reshape(1, 1, 2, 2)).ravel()
    array([0., 1., 2., 3.])
    """

    def __init__(self, downscale_factor):
        """Check and store ``downscale_factor``."""
        super().__init__()
        with prefixed("PixelUnshuffle"):
            self.downscale_factor = as_positive_int(downscale_factor, "downscale_factor")

    def extra_repr(self):
        """The factor."""
        return f"downscale_factor={self.downscale_factor}"

    def forward(self, x):
        """Rearrange space into channels: ``(N, C, H*r, W*r) -> (N, C*r*r, H, W)``.

        Parameters
        ----------
        x : ndarray or array-like, shape (N, C, H*r, W*r)

        Returns
        -------
        y : ndarray, shape (N, C*r*r, H, W)
        """
        x = self._input(x, 4)
        with prefixed(self):
            y = _up.pixel_unshuffle(x, self.downscale_factor)
        self._save(y)
        return y

    def backward(self, grad_output):
        """The inverse rearrangement.

        Parameters
        ----------
        grad_output : ndarray or array-like, shape and dtype of the last output

        Returns
        -------
        grad_input : ndarray, shape of the last input
        """
        _, g = self._saved_and_grad(grad_output)
        with prefixed(self):
            return _up.pixel_unshuffle_backward(g, self.downscale_factor)


