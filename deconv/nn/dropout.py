"""Dropout (inverted, as ``torch.nn.Dropout``) and channel dropout (``torch.nn.Dropout1d/2d/3d``)."""

import numpy as np

from deconv.functional.validation import as_generator, check_ndim
from deconv.nn.module import Module, prefixed

__all__ = ["Dropout", "Dropout1d", "Dropout2d", "Dropout3d"]


class Dropout(Module):
    """Inverted dropout, as ``torch.nn.Dropout``.

    Parameters
    ----------
    p : float, default 0.5
        Probability of zeroing an element, ``0 <= p <= 1``.
    rng : np.random.Generator, int or None
        Source of the masks (a fresh ``default_rng()`` if None).

    Notes
    -----
    In training mode each element is kept with probability ``1 - p`` and
    scaled by ``1 / (1 - p)`` (all zeros for ``p = 1``); the mask is drawn
    from ``rng.random(x.shape) >= p`` (float64 draws, so the mask does not
    depend on the dtype) and reused by the backward. In eval mode
    (:meth:`Module.eval`) it is the identity.
    :func:`deconv.gradcheck.gradcheck` rewinds ``rng`` before every
    evaluation, so a check in training mode sees one fixed mask.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> drop = nn.Dropout(0.5, rng=0)
    >>> sorted(set(drop(np.ones(1000)).tolist()))
    [0.0, 2.0]
    >>> drop.eval()(np.ones(3))
    array([1., 1., 1.])
    """

    def __init__(self, p=0.5, rng=None):
        """Check and store ``p``; make the mask generator."""
        super().__init__()
        name = type(self).__name__
        if isinstance(p, (bool, np.bool_)) or not isinstance(
                p, (int, float, np.integer, np.floating)):
            raise TypeError(f"{name}: p must be a float in [0, 1], got {p!r}")
        if not 0 <= p <= 1:
            raise ValueError(f"{name}: p must be a probability in [0, 1], got p={p!r}")
        self.p = float(p)
        with prefixed(name):
            self.rng = as_generator(rng)

    def extra_repr(self):
        """The probability."""
        return f"p={self.p}"

    def forward(self, x):
        """Training: ``x * mask / (1 - p)``; eval: ``x``.

        Parameters
        ----------
        x : ndarray or array-like, any shape
            float32 or float64.

        Returns
        -------
        y : ndarray, shape and dtype of ``x``
        """
        x = self._input(x)
        mask_shape = self._mask_shape(x)
        if not self.training or self.p == 0:
            self._save(x, mask=None)
            return x
        # the draw (float64), the kept mask, the scaled mask and the output
        self._check_bytes("output", *[(mask_shape, d) for d in (np.float64, np.bool_, x.dtype)],
                          (x.shape, x.dtype))
        if self.p == 1:
            mask = np.zeros(mask_shape, dtype=x.dtype)
        else:
            keep = self.rng.random(mask_shape) >= self.p
            mask = keep.astype(x.dtype) * x.dtype.type(1 / (1 - self.p))
        self._save(x, mask=mask)
        return x * mask

    def _mask_shape(self, x):
        """One mask value per element."""
        return x.shape

    def backward(self, grad_output):
        """``grad_output`` times the forward's scaled mask.

        Parameters
        ----------
        grad_output : ndarray or array-like, shape and dtype of the last output

        Returns
        -------
        grad_input : ndarray, shape of the last input
        """
        c, g = self._saved_and_grad(grad_output)
        return g if c["mask"] is None else g * c["mask"]




class _ChannelDropout(Dropout):
    """Dropout of whole channels of a batched ``(N, C, ...)`` input with ``_SPATIAL`` axes."""

    _SPATIAL = 0
    _LAYOUT = ""

    def _mask_shape(self, x):
        """``(N, C, 1, ...)``: one draw per sample and channel; the input must be batched."""
        with prefixed(self):
            check_ndim(x, "x", self._SPATIAL + 2, self._LAYOUT)
        return x.shape[:2] + (1,) * self._SPATIAL


_CHANNEL_DOC = """Channel dropout of {layout} inputs, as ``torch.nn.{name}``.

    Parameters
    ----------
    p : float, default 0.5
        Probability of zeroing a channel, ``0 <= p <= 1``.
    rng : np.random.Generator, int or None
        Source of the masks (a fresh ``default_rng()`` if None).

    Notes
    -----
    In training mode every channel ``(n, c)`` is kept with probability
    ``1 - p``: the mask ``m`` has shape ``{mask}``, drawn as
    ``rng.random((N, C)) >= p`` (float64 draws, so the mask does not depend
    on the dtype), and::

        y = x * m / (1 - p),    grad_x = grad_y * m / (1 - p)

    (all zeros for ``p = 1``). In eval mode it is the identity. torch also
    takes an unbatched {unbatched} input{torch_3d}; deconv refuses it and says to
    pass ``x[None]``. :func:`deconv.gradcheck.gradcheck` rewinds ``rng``
    before every evaluation, so a check in training mode sees one fixed mask.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> drop = nn.{name}(0.5, rng=0)
    >>> y = drop(np.ones({example}))
    >>> per_channel = y.reshape(4, 3, -1)
    >>> bool((per_channel.min(axis=2) == per_channel.max(axis=2)).all())   # whole channels
    True
    >>> per_channel.max(axis=2)                                            # 0 or 1 / (1 - p)
    array([[2., 0., 0.],
           [0., 2., 2.],
           [2., 2., 2.],
           [2., 2., 0.]])
    >>> x = np.ones({example})
    >>> bool((drop.eval()(x) == x).all())
    True
    """


class Dropout1d(_ChannelDropout):
    __doc__ = _CHANNEL_DOC.format(
        name="Dropout1d", layout="``(N, C, L)``", mask="(N, C, 1)", unbatched="``(C, L)``",
        torch_3d="", example="(4, 3, 5)")
    _SPATIAL = 1
    _LAYOUT = "(N, C, L)"


class Dropout2d(_ChannelDropout):
    __doc__ = _CHANNEL_DOC.format(
        name="Dropout2d", layout="``(N, C, H, W)``", mask="(N, C, 1, 1)",
        unbatched="``(C, H, W)``",
        torch_3d=" (which torch 2.13 treats as ``(N, C, L)`` with a warning)",
        example="(4, 3, 2, 2)")
    _SPATIAL = 2
    _LAYOUT = "(N, C, H, W)"


class Dropout3d(_ChannelDropout):
    __doc__ = _CHANNEL_DOC.format(
        name="Dropout3d", layout="``(N, C, D, H, W)``", mask="(N, C, 1, 1, 1)",
        unbatched="``(C, D, H, W)``", torch_3d="", example="(4, 3, 2, 1, 2)")
    _SPATIAL = 3
    _LAYOUT = "(N, C, D, H, W)"
