"""Numba kernels for adaptive average and max pooling (3-D; 1-D and 2-D are D = H = 1, D = 1).

Dimension letters: N batch, C channels, P = N*C planes, D, H, W input size,
D_out, H_out, W_out output size.

Output ``o`` of an axis of input length ``L`` and output length ``L_out``
pools the input range ``[floor(o*L/L_out), ceil((o+1)*L/L_out))``
(:func:`adaptive_window`, PyTorch's rule). Every window holds at least one
input element; windows overlap when ``L`` is not a multiple of ``L_out``.

Every kernel runs ``prange`` over the P independent (n, c) planes and
touches only its own plane; inside a plane the outputs (and the scatter-adds
of the backward) run sequentially in a fixed order. Results are therefore
bitwise identical whatever ``NUMBA_NUM_THREADS`` is. The work per plane is
the sum of the window volumes, at most ``prod(L + L_out)`` over the axes.

The max-pooling backward is the scatter-add through flat indices of
:func:`deconv.kernels.pool.max_pool2d_backward`, run on ``(N, C, 1, M)``
views. The kernels trust their arguments: shapes, dtypes, contiguity and
``L, L_out >= 1`` are checked by :mod:`deconv.functional.adaptive`.
"""

import numpy as np
from numba import njit, prange


@njit(cache=True)
def adaptive_window(o, L, L_out):
    """Input range ``(start, end)`` pooled by output ``o`` of ``L_out`` over ``L``.

    ``start = floor(o*L / L_out)``, ``end = ceil((o+1)*L / L_out)``, in exact
    integer arithmetic (``o < L_out <= 2**31`` and ``L <= 2**31`` keep the
    products below 2**63).
    """
    start = (o * L) // L_out
    end = -((-(o + 1) * L) // L_out)
    return start, end


@njit(cache=True)
def _windows(L, L_out):
    """Starts and ends of the ``L_out`` windows over ``L`` -> two (L_out,) int64 arrays."""
    starts = np.empty(L_out, dtype=np.int64)  # (L_out,)
    ends = np.empty(L_out, dtype=np.int64)  # (L_out,)
    for o in range(L_out):
        starts[o], ends[o] = adaptive_window(o, L, L_out)
    return starts, ends


@njit(cache=True, parallel=True)
def adaptive_avg_pool3d_forward(x, D_out, H_out, W_out):
    """Window means of x (N, C, D, H, W) -> (N, C, D_out, H_out, W_out).

    Sums run in float64 over the window in row-major order; the mean is
    the sum divided by the window volume, rounded once to x's dtype.
    """
    N, C, D, H, W = x.shape
    P = N * C
    out = np.empty((N, C, D_out, H_out, W_out), dtype=x.dtype)  # (N, C, D_out, H_out, W_out)
    xp = x.reshape((P, D, H, W))
    op = out.reshape((P, D_out, H_out, W_out))
    d0, d1 = _windows(D, D_out)
    h0, h1 = _windows(H, H_out)
    w0, w1 = _windows(W, W_out)
    for p in prange(P):
        xf = xp[p]
        of = op[p]
        for od in range(D_out):
            for oh in range(H_out):
                for ow in range(W_out):
                    acc = 0.0
                    for d in range(d0[od], d1[od]):
                        for h in range(h0[oh], h1[oh]):
                            row = xf[d, h]
                            for w in range(w0[ow], w1[ow]):
                                acc += row[w]
                    count = (d1[od] - d0[od]) * (h1[oh] - h0[oh]) * (w1[ow] - w0[ow])
                    of[od, oh, ow] = acc / count
    return out


@njit(cache=True, parallel=True)
def adaptive_avg_pool3d_backward(grad_output, D, H, W):
    """Adjoint of the forward: grad_output (N, C, D_out, H_out, W_out) -> (N, C, D, H, W).

    Every element of window ``o`` receives ``grad_output[o] / volume(o)``;
    overlapping windows accumulate in the plane's fixed output order.
    """
    N, C, D_out, H_out, W_out = grad_output.shape
    P = N * C
    grad_input = np.empty((N, C, D, H, W), dtype=grad_output.dtype)  # (N, C, D, H, W)
    gp = grad_output.reshape((P, D_out, H_out, W_out))
    gip = grad_input.reshape((P, D, H, W))
    d0, d1 = _windows(D, D_out)
    h0, h1 = _windows(H, H_out)
    w0, w1 = _windows(W, W_out)
    for p in prange(P):
        gi = gip[p]
        g = gp[p]
        gi[:] = 0.0
        for od in range(D_out):
            for oh in range(H_out):
                for ow in range(W_out):
                    count = (d1[od] - d0[od]) * (h1[oh] - h0[oh]) * (w1[ow] - w0[ow])
                    share = g[od, oh, ow] / count
                    for d in range(d0[od], d1[od]):
                        for h in range(h0[oh], h1[oh]):
                            row = gi[d, h]
                            for w in range(w0[ow], w1[ow]):
                                row[w] += share
    return grad_input


@njit(cache=True, parallel=True)
def adaptive_max_pool3d_forward(x, D_out, H_out, W_out):
    """Window maxima and their flat positions ``(d*H + h)*W + w`` in the plane.

    Returns (out, indices), both (N, C, D_out, H_out, W_out). Window
    elements are visited in row-major order and one replaces the running
    maximum only if it is strictly greater, or if it is NaN and the running
    maximum is not: the first maximum (the first NaN) wins.
    """
    N, C, D, H, W = x.shape
    P = N * C
    out = np.empty((N, C, D_out, H_out, W_out), dtype=x.dtype)  # (N, C, D_out, H_out, W_out)
    ind = np.empty((N, C, D_out, H_out, W_out), dtype=np.int64)  # (N, C, D_out, H_out, W_out)
    xp = x.reshape((P, D, H, W))
    op = out.reshape((P, D_out, H_out, W_out))
    ip = ind.reshape((P, D_out, H_out, W_out))
    d0, d1 = _windows(D, D_out)
    h0, h1 = _windows(H, H_out)
    w0, w1 = _windows(W, W_out)
    for p in prange(P):
        xf = xp[p]
        of = op[p]
        jf = ip[p]
        for od in range(D_out):
            for oh in range(H_out):
                for ow in range(W_out):
                    best = xf[d0[od], h0[oh], w0[ow]]
                    at = (d0[od] * H + h0[oh]) * W + w0[ow]
                    for d in range(d0[od], d1[od]):
                        for h in range(h0[oh], h1[oh]):
                            row = xf[d, h]
                            for w in range(w0[ow], w1[ow]):
                                v = row[w]
                                if v > best or (np.isnan(v) and not np.isnan(best)):
                                    best = v
                                    at = (d * H + h) * W + w
                    of[od, oh, ow] = best
                    jf[od, oh, ow] = at
    return out, ind
