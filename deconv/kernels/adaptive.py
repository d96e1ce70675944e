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

from deconv.kernels.common import plane_sum


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


#: running sums per plane in the global-pooling forward: element i of a plane goes
#: to sum i % GLOBAL_LANES, so the sums are independent chains (and one vector)
GLOBAL_LANES = 8


@njit(cache=True)
def _partitions(L, L_out):
    """True when the windows of ``L_out`` over ``L`` do not overlap (``L % L_out == 0``
    among others): then every input element lies in exactly one window."""
    for o in range(L_out - 1):
        if adaptive_window(o, L, L_out)[1] > adaptive_window(o + 1, L, L_out)[0]:
            return False
    return True


@njit(cache=True, parallel=True)
def _global_avg_pool_forward(xp, op):
    """Plane means, xp (P, V) -> op (P,), summed in float64.

    :func:`plane_sum` may reassociate: the compiler splits the sum into
    vector lanes combined at the end. The order is fixed by the compiled
    code, not by the threads (one plane is summed by one thread), so the
    results are the same bits for any thread count and run.
    """
    P, V = xp.shape
    for p in prange(P):
        op[p] = plane_sum(xp[p]) / V


@njit(cache=True, parallel=True)
def _global_avg_pool_backward(gp, gip):
    """gp (P,) -> gip (P, V): every element of plane p is gp[p] / V (rounded as
    ``0 + share`` in the general kernel)."""
    P, V = gip.shape
    for p in prange(P):
        value = gip.dtype.type(gp[p] / V)
        for i in range(V):
            gip[p, i] = value


@njit(cache=True, parallel=True)
def adaptive_avg_pool3d_forward(x, D_out, H_out, W_out):
    """Window means of x (N, C, D, H, W) -> (N, C, D_out, H_out, W_out).

    Sums run in float64 over the window in row-major order; the mean is
    the sum divided by the window volume, rounded once to x's dtype.
    Global pooling (a 1x1x1 output) sums each plane in
    :data:`GLOBAL_LANES` interleaved float64 sums instead
    (:func:`_global_avg_pool_forward`).
    """
    N, C, D, H, W = x.shape
    P = N * C
    out = np.empty((N, C, D_out, H_out, W_out), dtype=x.dtype)  # (N, C, D_out, H_out, W_out)
    if D_out == 1 and H_out == 1 and W_out == 1:
        _global_avg_pool_forward(x.reshape((P, D * H * W)), out.reshape(P))
        return out
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


#: planes per parallel task of the overlapping-window backward (each task
#: allocates its scratch once; fewer planes than 16 tasks' worth take one each)
OVERLAP_PLANES = 16


@njit(cache=True)
def _covering(L, L_out):
    """For each input index i of an axis, the windows holding it: ``o`` in
    ``[first[i], stop[i])`` -> two (L,) int64 arrays (windows are monotone, so
    the ones holding i are consecutive)."""
    first = np.full(L, L_out, dtype=np.int64)  # (L,)
    stop = np.zeros(L, dtype=np.int64)  # (L,)
    for o in range(L_out):
        start, end = adaptive_window(o, L, L_out)
        for i in range(start, end):
            first[i] = min(first[i], o)
            stop[i] = max(stop[i], o + 1)
    return first, stop


@njit(cache=True, parallel=True)
def adaptive_avg_pool3d_backward(grad_output, D, H, W):
    """Adjoint of the forward: grad_output (N, C, D_out, H_out, W_out) -> (N, C, D, H, W).

    ``grad_input[d, h, w]`` is the sum of ``grad_output[o] / volume(o)`` over
    the windows ``o`` holding ``(d, h, w)``, gathered: each element is
    written once, from a float64 sum rounded once (a window-by-window
    scatter would zero the plane first and round after every addition).
    The shares of the windows holding ``w`` are first summed along w (in
    increasing ``ow``) for every ``(od, oh)``, then those rows over the
    ``(od, oh)`` holding ``(d, h)`` (increasing ``od``, then ``oh``): a
    fixed order, one plane per thread, and whole rows added at a time. Global pooling fills each plane with its one
    share; when no windows overlap, each element is its window's share.
    """
    N, C, D_out, H_out, W_out = grad_output.shape
    P = N * C
    grad_input = np.empty((N, C, D, H, W), dtype=grad_output.dtype)  # (N, C, D, H, W)
    if D_out == 1 and H_out == 1 and W_out == 1:
        _global_avg_pool_backward(grad_output.reshape(P), grad_input.reshape((P, D * H * W)))
        return grad_input
    gp = grad_output.reshape((P, D_out, H_out, W_out))
    gip = grad_input.reshape((P, D, H, W))
    d0, d1 = _windows(D, D_out)
    h0, h1 = _windows(H, H_out)
    w0, w1 = _windows(W, W_out)
    if _partitions(D, D_out) and _partitions(H, H_out) and _partitions(W, W_out):
        for p in prange(P):
            gi = gip[p]
            g = gp[p]
            for od in range(D_out):
                for oh in range(H_out):
                    for ow in range(W_out):
                        count = (d1[od] - d0[od]) * (h1[oh] - h0[oh]) * (w1[ow] - w0[ow])
                        value = gi.dtype.type(g[od, oh, ow] / count)
                        for d in range(d0[od], d1[od]):
                            for h in range(h0[oh], h1[oh]):
                                row = gi[d, h]
                                for w in range(w0[ow], w1[ow]):
                                    row[w] = value
        return grad_input
    fd, sd = _covering(D, D_out)
    fh, sh = _covering(H, H_out)
    fw, sw = _covering(W, W_out)
    # planes per task: each task allocates its scratch once
    per_task = OVERLAP_PLANES if P >= 16 * OVERLAP_PLANES else 1
    tasks = (P + per_task - 1) // per_task
    for task in prange(tasks):
        # (D_out, H_out, W): window shares summed along w over the ow holding each w
        along_w = np.empty((D_out, H_out, W), dtype=np.float64)
        acc = np.empty(W, dtype=np.float64)  # (W,)
        for p in range(task * per_task, min(P, (task + 1) * per_task)):
            gi = gip[p]
            g = gp[p]
            for od in range(D_out):
                for oh in range(H_out):
                    cdh = (d1[od] - d0[od]) * (h1[oh] - h0[oh])
                    u = along_w[od, oh]
                    for w in range(W):
                        s = 0.0
                        for ow in range(fw[w], sw[w]):
                            s += g[od, oh, ow] / (cdh * (w1[ow] - w0[ow]))
                        u[w] = s
            for d in range(D):
                for h in range(H):
                    # the rows of along_w of the (od, oh) holding (d, h), in increasing order
                    acc[:] = along_w[fd[d], fh[h]]
                    for od in range(fd[d], sd[d]):
                        for oh in range(fh[h], sh[h]):
                            if od != fd[d] or oh != fh[h]:
                                u = along_w[od, oh]
                                for w in range(W):
                                    acc[w] += u[w]
                    row = gi[d, h]
                    for w in range(W):
                        row[w] = acc[w]
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
