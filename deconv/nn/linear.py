"""Layers with a weight matrix: Linear (an affine map) and Embedding (a lookup table)."""

import numpy as np

from deconv.functional.validation import (
    as_bool, as_float_dtype, as_generator, as_int, as_integer_array, as_positive_int, check_bytes,
)
from deconv.nn.module import (
    Module, Parameter, check_parameter_bytes, prefixed, torch_uniform_bounds,
)

__all__ = ["Linear", "Embedding"]


class Linear(Module):
    """Affine map on the last axis, as ``torch.nn.Linear``: ``y = x @ weight.T + bias``.

    Parameters
    ----------
    in_features, out_features : int
    bias : bool, default True
    dtype : np.float32 (default) or np.float64
    rng : np.random.Generator, int or None
        As for :class:`Conv2d`.

    Attributes
    ----------
    weight : Parameter, shape (out_features, in_features)
    bias : Parameter, shape (out_features,), or None

    Notes
    -----
    Input ``(*, in_features)``, output ``(*, out_features)``. torch's default
    initialisation: weight and bias uniform on ``[-1/sqrt(in_features),
    1/sqrt(in_features)]``, weight drawn first.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> layer = nn.Linear(4, 3, rng=0)
    >>> layer(np.ones((2, 4), dtype=np.float32)).shape
    (2, 3)
    """

    def __init__(self, in_features, out_features, bias=True, *, dtype=np.float32, rng=None):
        """Check the arguments (errors start with ``Linear:``); draw the weights."""
        super().__init__()
        with prefixed("Linear"):
            self.in_features = as_positive_int(in_features, "in_features")
            self.out_features = as_positive_int(out_features, "out_features")
            bias = as_bool(bias, "bias")
            dt = as_float_dtype(dtype)
            gen = as_generator(rng)
            check_parameter_bytes((self.out_features, self.in_features), dt)
        w_bound, b_bound = torch_uniform_bounds(self.in_features)
        self.weight = Parameter(
            gen.uniform(-w_bound, w_bound, size=(self.out_features, self.in_features)).astype(dt))
        self.bias = (Parameter(gen.uniform(-b_bound, b_bound, size=self.out_features).astype(dt))
                     if bias else None)

    def extra_repr(self):
        """The sizes and the options that differ from the defaults."""
        s = f"in_features={self.in_features}, out_features={self.out_features}"
        if self.bias is None:
            s += ", bias=False"
        if self.weight.dtype != np.float32:
            s += f", dtype={self.weight.dtype}"
        return s

    def forward(self, x):
        """Apply the affine map to the last axis.

        Parameters
        ----------
        x : ndarray, shape (*, in_features)
            dtype of the parameters.

        Returns
        -------
        y : ndarray, shape (*, out_features)
        """
        x = self._input(x)
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"{self._short_repr()} expects input of shape (*, in_features={self.in_features}), "
                f"got shape {x.shape}")
        self._check_parameter_dtype(x, self.weight.dtype)
        self._check_bytes("output", (x.shape[:-1] + (self.out_features,), x.dtype))
        w = self.weight.data                     # (out, in)
        y = x @ w.T                              # (*, out)
        if self.bias is not None:
            y += self.bias.data
        self._save(y, x=x, w=w)
        return y

    def backward(self, grad_output):
        """``grad_input = g @ weight``; adds ``g^T x`` and ``sum g`` into the gradients.

        Parameters
        ----------
        grad_output : ndarray or array-like, shape (*, out_features)

        Returns
        -------
        grad_input : ndarray, shape (*, in_features)
        """
        c, g = self._saved_and_grad(grad_output)
        x, w = c["x"], c["w"]
        g2 = g.reshape(-1, self.out_features)    # (M, out)
        x2 = x.reshape(-1, self.in_features)     # (M, in)
        self.weight.grad += g2.T @ x2            # (out, in)
        if self.bias is not None:
            self.bias.grad += g2.sum(axis=0)     # (out,)
        return g @ w                             # (*, in)


class Embedding(Module):
    """A lookup table, as ``torch.nn.Embedding``.

    Parameters
    ----------
    num_embeddings : int
        Vocabulary size ``V``.
    embedding_dim : int
        Vector size ``D``.
    padding_idx : int, optional
        A row initialised to zero that never receives gradient (negative
        values count from the end), as in torch; this is deliberately not
        the derivative, so a gradcheck whose input contains it fails.
    dtype : np.float32 (default) or np.float64
    rng : np.random.Generator, int or None

    Attributes
    ----------
    weight : Parameter, shape (num_embeddings, embedding_dim)
        Initialised from N(0, 1), as torch.

    Notes
    -----
    Input: an integer array of any shape, e.g. ``(N, L)``, values in
    ``[0, V)``; output ``(N, L, D)``. ``backward`` adds the gradient rows
    into ``weight.grad`` (repeated indices accumulate) and returns None:
    there is no gradient with respect to integer indices.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> emb = nn.Embedding(10, 4, rng=0)
    >>> emb(np.array([[1, 2, 1]])).shape
    (1, 3, 4)
    """

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, *, dtype=np.float32,
                 rng=None):
        """Check the arguments (errors start with ``Embedding:``); draw the table."""
        super().__init__()
        with prefixed("Embedding"):
            self.num_embeddings = as_positive_int(num_embeddings, "num_embeddings")
            self.embedding_dim = as_positive_int(embedding_dim, "embedding_dim")
            if padding_idx is not None:
                padding_idx = as_int(padding_idx, "padding_idx")
                if not -self.num_embeddings <= padding_idx < self.num_embeddings:
                    raise ValueError(
                        f"padding_idx must be in [-num_embeddings, num_embeddings) = "
                        f"[{-self.num_embeddings}, {self.num_embeddings}), got {padding_idx}")
                padding_idx %= self.num_embeddings
            dt = as_float_dtype(dtype)
            gen = as_generator(rng)
            check_parameter_bytes((self.num_embeddings, self.embedding_dim), dt)
        self.padding_idx = padding_idx
        w = gen.standard_normal((self.num_embeddings, self.embedding_dim)).astype(dt)
        if padding_idx is not None:
            w[padding_idx] = 0
        self.weight = Parameter(w)

    def extra_repr(self):
        """The sizes and a padding_idx if any."""
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        return s

    def forward(self, indices):
        """The rows of ``weight`` at ``indices``.

        Parameters
        ----------
        indices : ndarray of int, shape (*)
            Or an array-like of ints (a list of lists); values in
            ``[0, num_embeddings)``.

        Returns
        -------
        y : ndarray, shape (*, embedding_dim)
            dtype of ``weight``.
        """
        with prefixed(self):
            indices = as_integer_array(indices, "input")
            # checked before the range scan: indices may be a broadcast view far
            # larger than its memory
            check_bytes("output", (indices.shape + (self.embedding_dim,), self.weight.dtype),
                        (indices.shape, np.intp))
        if indices.size and (indices.min() < 0 or indices.max() >= self.num_embeddings):
            bad = indices[(indices < 0) | (indices >= self.num_embeddings)].ravel()[0]
            raise ValueError(
                f"{self._short_repr()}: input indices must lie in [0, num_embeddings="
                f"{self.num_embeddings}), got {int(bad)}")
        indices = indices.astype(np.intp, copy=True)
        y = self.weight.data[indices]            # (*, D)
        self._save(y, indices=indices)
        return y

    def backward(self, grad_output):
        """Add the gradient rows into ``weight.grad``; returns None.

        Parameters
        ----------
        grad_output : ndarray or array-like, shape (*, embedding_dim)

        Returns
        -------
        None
            there is no gradient with respect to integer indices.
        """
        c, g = self._saved_and_grad(grad_output)
        idx = c["indices"].ravel()
        rows = g.reshape(-1, self.embedding_dim)
        if self.padding_idx is not None:
            keep = idx != self.padding_idx
            idx, rows = idx[keep], rows[keep]
        np.add.at(self.weight.grad, idx, rows)      # repeated indices accumulate
        return None


