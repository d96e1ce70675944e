"""Dropout (inverted, as ``torch.nn.Dropout``)."""

import numpy as np

from deconv.functional.validation import as_generator
from deconv.nn.module import Module, prefixed

__all__ = ["Dropout"]


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
        if isinstance(p, (bool, np.bool_)) or not isinstance(
                p, (int, float, np.integer, np.floating)):
            raise TypeError(f"Dropout: p must be a float in [0, 1], got {p!r}")
        if not 0 <= p <= 1:
            raise ValueError(f"Dropout: p must be a probability in [0, 1], got p={p!r}")
        self.p = float(p)
        with prefixed("Dropout"):
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
        if not self.training or self.p == 0:
            self._save(x, mask=None)
            return x
        # the draw (float64), the kept mask, the scaled mask and the output
        self._check_bytes("output", *[(x.shape, d) for d in (np.float64, np.bool_, x.dtype, x.dtype)])
        if self.p == 1:
            mask = np.zeros(x.shape, dtype=x.dtype)
        else:
            keep = self.rng.random(x.shape) >= self.p
            mask = keep.astype(x.dtype) * x.dtype.type(1 / (1 - self.p))
        self._save(x, mask=mask)
        return x * mask

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


