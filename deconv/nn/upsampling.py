"""Upsampling layers: Upsample (every mode of interpolate), PixelShuffle, PixelUnshuffle.

The computation is that of :mod:`deconv.functional.interpolate` and
:mod:`deconv.functional.upsampling`.
"""

import numpy as np

from deconv.functional import interpolate as _interp
from deconv.functional import upsampling as _up
from deconv.functional.validation import as_bool, as_choice, as_positive_int
from deconv.nn.module import Module, prefixed

__all__ = ["Upsample", "PixelShuffle", "PixelUnshuffle"]


class Upsample(Module):
    """Resampling in every mode of ``torch.nn.Upsample`` (:func:`deconv.interpolate`).

    Parameters
    ----------
    size : int or tuple of ints, optional
        Output spatial size.
    scale_factor : float or tuple of floats, optional
        Multiplier of the spatial size. Give exactly one of ``size`` and
        ``scale_factor``.
    mode : {'nearest', 'nearest-exact', 'linear', 'bilinear', 'bicubic', 'trilinear', 'area'}
        'nearest', 'nearest-exact' and 'area' take 3-D ``(N, C, L)``, 4-D
        ``(N, C, H, W)`` and 5-D ``(N, C, D, H, W)`` inputs; 'linear' 3-D,
        'bilinear' and 'bicubic' 4-D, 'trilinear' 5-D.
    align_corners : bool, optional
        Only with the interpolating modes (linear, bilinear, bicubic,
        trilinear), where None means False; True with another mode is
        refused, as in torch. (False with another mode is taken for None,
        as deconv's Upsample always did.)
    recompute_scale_factor : bool, optional
        As in :func:`deconv.interpolate`: True makes the index maps use
        ``L_in / L_out`` instead of the given ``scale_factor``.

    Notes
    -----
    Output size ``out = size``, or ``floor(L * scale_factor)`` per axis. A
    given ``scale_factor`` enters the index maps (unless
    ``recompute_scale_factor``), forward and backward alike.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> nn.Upsample(scale_factor=2)(np.array([[[1., 2.]]]))
    array([[[1., 1., 2., 2.]]])
    >>> nn.Upsample(size=(1, 4), mode='bilinear')(np.array([[[[0., 1.]]]]))
    array([[[[0.  , 0.25, 0.75, 1.  ]]]])
    >>> nn.Upsample(size=3, mode='area')(np.array([[[0., 1., 2., 3., 4., 5.]]]))
    array([[[0.5, 2.5, 4.5]]])
    """

    def __init__(self, size=None, scale_factor=None, mode="nearest", align_corners=None,
                 recompute_scale_factor=None):
        """Check and store the arguments; errors start with ``Upsample:``."""
        super().__init__()
        if (size is None) == (scale_factor is None):
            raise ValueError(
                f"Upsample: give exactly one of size and scale_factor, got size={size!r} and "
                f"scale_factor={scale_factor!r}")
        with prefixed("Upsample"):
            mode = as_choice(mode, "mode", _interp.MODES)
            if align_corners is not None:
                align_corners = as_bool(align_corners, "align_corners")
                if mode not in _interp.INTERPOLATING and not align_corners:
                    align_corners = None
            # interpolate's own checks of the options, at construction
            _interp.check_options(mode, align_corners, recompute_scale_factor, False, size)
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
        self.recompute_scale_factor = recompute_scale_factor

    def extra_repr(self):
        """The output size or scale factor, the mode and the options that are set."""
        s = (f"size={self.size!r}" if self.size is not None
             else f"scale_factor={self.scale_factor!r}")
        s += f", mode={self.mode!r}"
        if self.align_corners:
            s += ", align_corners=True"
        if self.recompute_scale_factor:
            s += ", recompute_scale_factor=True"
        return s

    def _options(self):
        """The keyword arguments of interpolate and interpolate_backward for this layer."""
        return dict(size=self.size, scale_factor=self.scale_factor, mode=self.mode,
                    align_corners=self.align_corners,
                    recompute_scale_factor=self.recompute_scale_factor)

    def forward(self, x):
        """Resample ``x``.

        Parameters
        ----------
        x : ndarray, shape (N, C, L), (N, C, H, W) or (N, C, D, H, W)

        Returns
        -------
        y : ndarray, shape (N, C, *spatial_out)
        """
        x = self._input(x)
        with prefixed(self):
            y = _interp.interpolate(x, **self._options())
        self._save(y, input_shape=x.shape)
        return y

    def backward(self, grad_output):
        """The adjoint of the forward's interpolation map.

        Returns
        -------
        grad_input : ndarray, shape of the last input
        """
        c, g = self._saved_and_grad(grad_output)
        with prefixed(self):
            return _interp.interpolate_backward(g, c["input_shape"], **self._options())


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


