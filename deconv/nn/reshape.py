"""Layers that only move values around: Flatten, Permute, Identity."""

import math

import numpy as np

from deconv.functional.validation import as_int
from deconv.nn.module import Module, prefixed

__all__ = ["Flatten", "Permute", "Identity"]


class Flatten(Module):
    """Flatten axes ``start_dim..end_dim`` into one, as ``torch.nn.Flatten``.

    Parameters
    ----------
    start_dim : int, default 1
    end_dim : int, default -1
        Negative values count from the last axis.

    Notes
    -----
    Input ``(d_0, ..., d_{n-1})``, output
    ``(d_0, ..., d_{s-1}, d_s * ... * d_e, d_{e+1}, ..., d_{n-1})`` with
    ``s = start_dim``, ``e = end_dim`` (the default turns ``(N, C, H, W)``
    into ``(N, C*H*W)``).

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> nn.Flatten()(np.zeros((2, 3, 4, 5))).shape
    (2, 60)
    """

    def __init__(self, start_dim=1, end_dim=-1):
        """Check and store the axes."""
        super().__init__()
        with prefixed("Flatten"):
            self.start_dim = as_int(start_dim, "start_dim")
            self.end_dim = as_int(end_dim, "end_dim")

    def extra_repr(self):
        """The axes."""
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"

    def forward(self, x):
        """``(d0, .., d_start, .., d_end, ..) -> (d0, .., prod, ..)`` (a view when possible).

        Parameters
        ----------
        x : ndarray or array-like, shape (d_0, ..., d_{n-1})

        Returns
        -------
        y : ndarray, shape (d_0, ..., d_s * ... * d_e, ..., d_{n-1})
        """
        x = self._input(x)
        s = self.start_dim + x.ndim if self.start_dim < 0 else self.start_dim
        e = self.end_dim + x.ndim if self.end_dim < 0 else self.end_dim
        if not (0 <= s < max(x.ndim, 1) and 0 <= e < max(x.ndim, 1) and s <= e):
            raise ValueError(
                f"{self._short_repr()}: start_dim and end_dim must index axes of the input, "
                f"start <= end, got an input of shape {x.shape}")
        shape = x.shape[:s] + (math.prod(x.shape[s:e + 1]),) + x.shape[e + 1:]
        if not x.flags.c_contiguous:             # the reshape may copy
            self._check_bytes("output", (shape, x.dtype))
        y = x.reshape(shape)
        self._save(y, input_shape=x.shape)
        return y

    def backward(self, grad_output):
        """Reshape the gradient back to the input's shape.

        Parameters
        ----------
        grad_output : ndarray or array-like, shape and dtype of the last output

        Returns
        -------
        grad_input : ndarray, shape of the last input
        """
        c, g = self._saved_and_grad(grad_output)
        return g.reshape(c["input_shape"])


class Permute(Module):
    """Reorder the axes, as ``torchvision.ops.Permute``: ``y = x.transpose(dims)``.

    Parameters
    ----------
    dims : sequence of int
        A permutation of ``range(x.ndim)``; e.g. ``(0, 2, 1)`` turns an
        embedding's ``(N, L, D)`` into the ``(N, D, L)`` of a Conv1d.

    Notes
    -----
    Output shape ``tuple(x.shape[d] for d in dims)``; the output is a view
    (the next layer makes it contiguous if it needs to).

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> nn.Permute((0, 2, 1))(np.zeros((2, 5, 3))).shape
    (2, 3, 5)
    """

    def __init__(self, dims):
        """Check and store the permutation."""
        super().__init__()
        if not isinstance(dims, (list, tuple)):
            raise TypeError(f"Permute: dims must be a sequence of ints, got {dims!r}")
        with prefixed("Permute"):
            dims = tuple(as_int(d, "dims") for d in dims)
        if sorted(dims) != list(range(len(dims))):
            raise ValueError(f"Permute: dims must be a permutation of 0..{len(dims) - 1}, "
                             f"got {dims!r}")
        self.dims = dims

    def extra_repr(self):
        """The permutation."""
        return f"dims={self.dims}"

    def forward(self, x):
        """``x.transpose(dims)`` (a view).

        Parameters
        ----------
        x : ndarray or array-like, ``len(dims)`` axes

        Returns
        -------
        y : ndarray, shape ``tuple(x.shape[d] for d in dims)``
        """
        x = self._input(x)
        if x.ndim != len(self.dims):
            raise ValueError(f"{self._short_repr()} expects a {len(self.dims)}-D input, got shape "
                             f"{x.shape}")
        y = x.transpose(self.dims)
        self._save(y)
        return y

    def backward(self, grad_output):
        """The inverse permutation of the gradient.

        Parameters
        ----------
        grad_output : ndarray or array-like, shape and dtype of the last output

        Returns
        -------
        grad_input : ndarray, shape of the last input
        """
        _, g = self._saved_and_grad(grad_output)
        return g.transpose(np.argsort(self.dims))


class Identity(Module):
    """Returns its input; backward returns the upstream gradient.

    Used as the skip branch of :class:`Concat`.

    Notes
    -----
    Output shape = input shape. The input goes through the same conversion
    as every layer's (array-likes become arrays, a read-only or
    non-contiguous array is copied once); a C-contiguous float array is
    returned as is.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> nn.Identity()(np.ones(2))
    array([1., 1.])
    """

    def forward(self, x):
        """``x`` itself (not a copy) if it is a C-contiguous writeable float array.

        Parameters
        ----------
        x : ndarray or array-like, any shape
            float32 or float64.

        Returns
        -------
        y : ndarray, shape and dtype of ``x``
        """
        x = self._input(x)
        self._save(x)
        return x

    def backward(self, grad_output):
        """``grad_output`` itself.

        Parameters
        ----------
        grad_output : ndarray or array-like, shape and dtype of the last output

        Returns
        -------
        grad_input : ndarray, shape of the last input
        """
        _, g = self._saved_and_grad(grad_output)
        return g


