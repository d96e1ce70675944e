"""The engine of the normalization layers: standardisation over a ``(N, G, K, S)`` view.

Each layer of :mod:`deconv.nn.normalization` checks its input and its
arguments, then describes itself as one view of its input (see
:mod:`deconv.kernels.normalization`)::

    BatchNorm       (N, C, 1, S)   statistics over the batch  (Ns = 1)
    InstanceNorm    (N, C, 1, S)   statistics per sample      (Ns = N)
    GroupNorm       (N, G, C/G, S) statistics per sample      (Ns = N)
    LayerNorm       (L, 1, M, 1)   statistics per slice       (Ns = L)
    eval mode       (N, C, 1, S)   given running statistics   (Ns = 1)

with ``S`` the product of the spatial axes, ``M`` that of the normalized
shape and ``L`` that of the leading axes. The two functions here make the
arrays kernel-ready (C-contiguous, native byte order), allocate the outputs
and run the Numba kernels. They are not part of the public API: their
arguments are the layers' checked ones.
"""

import numpy as np

from deconv.kernels import normalization as _k
from deconv.kernels.threads import call
from deconv.functional.layout import aligned_empty
from deconv.functional.validation import kernel_ready

__all__ = []


def _view_parameters(value, groups, per_group):
    """A parameter as the float64 ``(G, K)`` table the kernels read (a small copy)."""
    return np.ascontiguousarray(value, dtype=np.float64).reshape(groups, per_group)


def normalize(x, view, weight, bias, eps, per_sample, stats=None):
    """``y = (x - mean) / sqrt(var + eps) * weight + bias`` over the view ``(N, G, K, S)``.

    Parameters
    ----------
    x : ndarray, float32 or float64, ``prod(view)`` elements
        A checked, non-empty input (any layout; its shape is kept for ``y``).
    view : (N, G, K, S) tuple of int
    weight, bias : ndarray of ``G * K`` elements, or None (ones, zeros)
    eps : float
    per_sample : bool
        Statistics of each ``(n, g)`` (True) or of each ``g`` over the batch.
    stats : (mean, invstd) or None
        Given float64 statistics of shape ``(1, G)`` (eval mode: ``per_sample``
        is then False); None computes them from ``x``.

    Returns
    -------
    y : ndarray, shape and dtype of ``x``
    mean, var, invstd : ndarray, shape (Ns, G), float64
        ``var`` is the biased batch variance, or None with given ``stats``.
    x_view : ndarray, shape view
        ``x`` as the kernels read it, for :func:`normalize_backward`.
    """
    N, G, K, S = view
    x_view = kernel_ready(x, "x").reshape(view)
    w = np.ones((G, K)) if weight is None else _view_parameters(weight, G, K)
    b = np.zeros((G, K)) if bias is None else _view_parameters(bias, G, K)
    ns = N if per_sample else 1
    if stats is None:
        mean, var, invstd = (np.empty((ns, G)) for _ in range(3))
    else:
        mean, invstd = (np.ascontiguousarray(s, dtype=np.float64).reshape(1, G) for s in stats)
        var = None
    y = aligned_empty(view, dtype=x_view.dtype)
    call(_k.norm_forward, x_view, w, b, float(eps), stats is None, mean,
         mean if var is None else var, invstd, y)
    return y.reshape(x.shape), mean, var, invstd, x_view


def normalize_backward(grad_output, x_view, weight, mean, invstd, batch_stats):
    """The input gradient of :func:`normalize` and the sums of the parameter gradients.

    Parameters
    ----------
    grad_output : ndarray, ``x_view.size`` elements, dtype of ``x_view``
    x_view : ndarray, shape (N, G, K, S), as :func:`normalize` returned it
    weight : ndarray of ``G * K`` elements, or None (ones)
    mean, invstd : ndarray, shape (Ns, G), float64, as :func:`normalize` used them
    batch_stats : bool
        Whether the statistics came from ``x`` (their gradient couples the
        elements of a statistic) or were given.

    Returns
    -------
    grad_input : ndarray, shape of ``grad_output``, dtype of ``x_view``
    sum_g, sum_gxhat : ndarray, shape (Ns, G, K), float64
        ``sum(grad_output)`` and ``sum(grad_output * xhat)`` per ``(ns, g, k)``
        over the samples of ``ns`` and ``S``: summed over ``Ns`` they are
        the gradients of ``bias`` and ``weight``.
    """
    N, G, K, S = x_view.shape
    g_view = kernel_ready(grad_output, "grad_output").reshape(x_view.shape)
    w = np.ones((G, K)) if weight is None else _view_parameters(weight, G, K)
    ns = mean.shape[0]
    sum_g, sum_gxhat = np.empty((ns, G, K)), np.empty((ns, G, K))
    grad_input = aligned_empty(x_view.shape, dtype=x_view.dtype)
    call(_k.norm_backward, g_view, x_view, w, mean, invstd, bool(batch_stats), sum_g,
         sum_gxhat, grad_input)
    return grad_input.reshape(grad_output.shape), sum_g, sum_gxhat
