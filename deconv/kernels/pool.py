"""Numba kernels for max/avg pooling and max unpooling (2-D; 1-D is H = 1).

Dimension letters: N batch, C channels, P = N*C planes, H, W input size,
H_out, W_out output size, kH, kW kernel size.

Every kernel runs ``prange`` over the P independent (n, c) planes and
touches only its own plane, so no two iterations ever write the same element;
scatter-adds inside a plane run sequentially in a fixed order. Results are
therefore bitwise identical whatever ``NUMBA_NUM_THREADS`` is.

The pooling kernels loop tap by tap over all outputs at once and visit only
the taps that some window places on the input (:func:`_taps_with_input`,
found by arithmetic): their work is bounded by the outputs and the input,
never by ``kernel_size`` (a 65537 x 65537 window over a 1x1 input is one tap).
Every tap they visit therefore has a non-empty range of outputs.

The kernels trust their arguments: shapes, dtypes, contiguity, index ranges
and window validity are checked by the public wrappers in
:mod:`deconv.pooling`.
"""

import numpy as np
from numba import njit, prange

from deconv.kernels.common import valid_range


@njit(cache=True)
def _taps_with_input(L, L_out, k, s, p, d):
    """Tap indices ``i`` (ascending) that put some window on the input -> (n_taps,) int64.

    Tap ``i`` of window ``o`` reads position ``o*s - p + i*d``. The taps of
    window ``o`` inside ``[0, L)`` form the range ``valid_range(o*s - p, d, k, L)``;
    the result is the union of these ranges, found without visiting the
    ``k`` taps: a tap outside the union reads padding for every window and
    can be skipped by the tap loops with no change to any result, so their
    work is bounded by the outputs and the input, not by ``kernel_size``
    (``k = 65537`` on a 1x1 input visits one tap, not 65537**2).
    """
    # Both ends of a window's range fall as o grows (its start moves right),
    # so walking o downwards meets the ranges in ascending order and one
    # running end merges them.
    n_taps = 0
    end = 0
    for o in range(L_out - 1, -1, -1):
        lo, hi = valid_range(o * s - p, d, k, L)
        if max(lo, end) < hi:
            n_taps += hi - max(lo, end)
        end = max(end, hi)
    taps = np.empty(n_taps, dtype=np.int64)  # (n_taps,)
    n_taps = 0
    end = 0
    for o in range(L_out - 1, -1, -1):
        lo, hi = valid_range(o * s - p, d, k, L)
        for i in range(max(lo, end), hi):
            taps[n_taps] = i
            n_taps += 1
        end = max(end, hi)
    return taps


@njit(cache=True, inline="always")
def _strided_block(a, h0, w0, nh, nw, sH, sW):
    """View of a[h0 + r*sH, w0 + t*sW] for r < nh, t < nw (all in bounds)."""
    return a[h0:h0 + (nh - 1) * sH + 1:sH, w0:w0 + (nw - 1) * sW + 1:sW]


@njit(cache=True, inline="always")
def _gather_tap(xf, dst, lo_h, hi_h, lo_w, hi_w, h0, w0, sH, sW):
    """dst[lo_h + r, lo_w + t] = xf[h0 + r*sH, w0 + t*sW] over the valid block."""
    nh = hi_h - lo_h
    nw = hi_w - lo_w
    if sW == 1:
        # Contiguous rows: 1-D row views with a unit stride known to LLVM
        # let the copy vectorise (stride-1 max pooling is 1.3x faster).
        for r in range(nh):
            s_row = xf[h0 + r * sH, w0:w0 + nw]
            d_row = dst[lo_h + r, lo_w:hi_w]
            for t in range(nw):
                d_row[t] = s_row[t]
    else:
        # One strided 2-D view per tap rather than slices per row: slicing
        # in the inner loops cost more than the copy itself.
        src = _strided_block(xf, h0, w0, nh, nw, sH, sW)
        block = dst[lo_h:hi_h, lo_w:hi_w]
        for r in range(nh):
            for t in range(nw):
                block[r, t] = src[r, t]


@njit(cache=True, inline="always")
def _add_tap(acc, xf, h0, w0, sH, sW):
    """acc[r, t] += xf[h0 + r*sH, w0 + t*sW] for the whole block ``acc``."""
    nh, nw = acc.shape
    if sW == 1:
        for r in range(nh):
            s_row = xf[h0 + r * sH, w0:w0 + nw]
            a_row = acc[r]
            for t in range(nw):
                a_row[t] += s_row[t]
    else:
        src = _strided_block(xf, h0, w0, nh, nw, sH, sW)
        for r in range(nh):
            for t in range(nw):
                acc[r, t] += src[r, t]


@njit(cache=True, inline="always")
def _scatter_add_tap(gf, g, h0, w0, sH, sW):
    """gf[h0 + r*sH, w0 + t*sW] += g[r, t] for the whole block ``g``."""
    nh, nw = g.shape
    if sW == 1:
        for r in range(nh):
            d_row = gf[h0 + r * sH, w0:w0 + nw]
            g_row = g[r]
            for t in range(nw):
                d_row[t] += g_row[t]
    else:
        dst = _strided_block(gf, h0, w0, nh, nw, sH, sW)
        for r in range(nh):
            for t in range(nw):
                dst[r, t] += g[r, t]


@njit(cache=True, parallel=True)
def max_pool2d_forward(x, kH, kW, sH, sW, pH, pW, dH, dW, H_out, W_out):
    """Max pooling with argmax: returns (out, indices), both (N, C, H_out, W_out).

    Taps are visited in row-major window order and a tap replaces the
    running maximum only if it is strictly greater, or if it is NaN and the
    running maximum is not: the first maximum (the first NaN) wins.
    """
    N, C, H, W = x.shape
    P = N * C
    M = H_out * W_out
    out = np.empty((N, C, H_out, W_out), dtype=x.dtype)  # (N, C, H_out, W_out)
    ind = np.empty((N, C, H_out, W_out), dtype=np.int64)  # (N, C, H_out, W_out)
    xp = x.reshape((P, H, W))
    op = out.reshape((P, M))
    ip = ind.reshape((P, M))

    # Plane-independent tables over the flattened output (oh, ow): an all
    # -inf window reports its first in-bounds tap (the wrapper guarantees
    # one), so the running argmax starts there; tap (i, j) of output t reads
    # flat input base[t] + const.
    first = np.empty(M, dtype=np.int64)  # (H_out*W_out,)
    base = np.empty(M, dtype=np.int64)  # (H_out*W_out,)
    for oh in range(H_out):
        h_start = oh * sH - pH
        h_first = h_start + valid_range(h_start, dH, kH, H)[0] * dH
        for ow in range(W_out):
            w_start = ow * sW - pW
            w_first = w_start + valid_range(w_start, dW, kW, W)[0] * dW
            t = oh * W_out + ow
            first[t] = h_first * W + w_first
            base[t] = oh * sH * W + ow * sW
    taps_h = _taps_with_input(H, H_out, kH, sH, pH, dH)  # (n_taps_h,)
    taps_w = _taps_with_input(W, W_out, kW, sW, pW, dW)  # (n_taps_w,)

    neg_inf = -np.inf
    for p in prange(P):
        xf = xp[p]  # (H, W)
        o = op[p]  # (H_out*W_out,)
        ix = ip[p]  # (H_out*W_out,)
        # One tap for every output at once, gathered into a contiguous
        # buffer: the gather is branch-free and the compare/select below
        # vectorises. Comparing window by window instead branches on every
        # tap and mispredicts on random data (4-6x slower).
        tap = np.empty(M, dtype=x.dtype)  # (H_out*W_out,)
        tap2 = tap.reshape((H_out, W_out))
        for t in range(M):
            o[t] = neg_inf
            ix[t] = first[t]
        # Row-major tap order (the first maximum wins), skipping only taps
        # that read padding for every window.
        for i in taps_h:
            rh = i * dH - pH
            lo_h, hi_h = valid_range(rh, sH, H_out, H)
            for j in taps_w:
                rw = j * dW - pW
                lo_w, hi_w = valid_range(rw, sW, W_out, W)
                _gather_tap(xf, tap2, lo_h, hi_h, lo_w, hi_w, lo_h * sH + rh,
                            lo_w * sW + rw, sH, sW)
                # Out-of-bounds taps read -inf: never taken (a -inf window
                # keeps its first in-bounds tap, set above).
                if lo_w > 0 or hi_w < W_out:
                    for r in range(lo_h, hi_h):
                        for t in range(lo_w):
                            tap2[r, t] = neg_inf
                        for t in range(hi_w, W_out):
                            tap2[r, t] = neg_inf
                c = rh * W + rw
                a = lo_h * W_out
                b = hi_h * W_out
                # Views starting at 0 keep every index non-negative, so the
                # loop has no wraparound checks and vectorises.
                tv = tap[a:b]
                ov = o[a:b]
                iv = ix[a:b]
                bv = base[a:b]
                for t in range(b - a):
                    v = tv[t]
                    m = ov[t]
                    # v != v: v is NaN; m == m: m is not. Bitwise ops keep it
                    # branch-free (a select, not a jump).
                    take = (v > m) | ((v != v) & (m == m))
                    ov[t] = v if take else m
                    iv[t] = bv[t] + c if take else iv[t]
    return out, ind


@njit(cache=True, parallel=True)
def max_pool2d_backward(grad_output, indices, H, W):
    """Scatter-add grad_output (N, C, H_out, W_out) to indices -> (N, C, H, W).

    Returns (grad_input, bad): ``bad`` is True if some index lies outside
    [0, H*W); such entries are skipped, and the caller discards the result and
    raises. (Checking here, not in a pass of its own, saves reading the
    indices twice.)
    """
    N, C, H_out, W_out = grad_output.shape
    P = N * C
    M = H_out * W_out
    HW = H * W
    grad_input = np.empty((N, C, H, W), dtype=grad_output.dtype)  # (N, C, H, W)
    bad = np.zeros(P, dtype=np.bool_)
    gp = grad_output.reshape((P, M))
    ixp = indices.reshape((P, M))
    gip = grad_input.reshape((P, HW))
    for p in prange(P):
        g_in = gip[p]
        g_out = gp[p]
        ix = ixp[p]
        # Zeroing each plane right before its scatter (instead of np.zeros
        # up front) keeps it in cache: 2x faster overall.
        for t in range(HW):
            g_in[t] = 0.0
        # Sequential within the plane: overlapping windows accumulate in a
        # fixed order.
        for m in range(M):
            i = ix[m]
            if i < 0 or i >= HW:
                bad[p] = True
            else:
                g_in[i] += g_out[m]
    return grad_input, bad.any()


@njit(cache=True)
def _avg_divisors(H, W, kH, kW, sH, sW, pH, pW, H_out, W_out, count_include_pad,
                  divisor_override):
    """Divisor of every output (plane-independent), PyTorch's CPU rule -> (H_out*W_out,).

    Window ``[o*s - p, min(o*s - p + k, L + p))`` clipped to ``[0, L)``; the
    divisor is ``divisor_override`` (if > 0), else the unclipped window area
    (count_include_pad) or the clipped one. An empty window gets 1 so that
    its zero sum stays 0.
    """
    div = np.empty(H_out * W_out, dtype=np.float64)
    for oh in range(H_out):
        h_start = oh * sH - pH
        h_end = min(h_start + kH, H + pH)
        h0 = max(h_start, 0)
        h1 = min(h_end, H)
        for ow in range(W_out):
            w_start = ow * sW - pW
            w_end = min(w_start + kW, W + pW)
            w0 = max(w_start, 0)
            w1 = min(w_end, W)
            if h0 >= h1 or w0 >= w1:
                d = 1
            elif divisor_override > 0:
                d = divisor_override
            elif count_include_pad:
                d = (h_end - h_start) * (w_end - w_start)
            else:
                d = (h1 - h0) * (w1 - w0)
            div[oh * W_out + ow] = d
    return div


@njit(cache=True, parallel=True)
def avg_pool2d_forward(x, kH, kW, sH, sW, pH, pW, H_out, W_out, count_include_pad,
                       divisor_override):
    """Average pooling -> (N, C, H_out, W_out). ``divisor_override`` 0 means none."""
    N, C, H, W = x.shape
    P = N * C
    M = H_out * W_out
    out = np.empty((N, C, H_out, W_out), dtype=x.dtype)  # (N, C, H_out, W_out)
    xp = x.reshape((P, H, W))
    op = out.reshape((P, M))
    div = _avg_divisors(H, W, kH, kW, sH, sW, pH, pW, H_out, W_out, count_include_pad,
                        divisor_override)  # (H_out*W_out,)
    # Taps that read padding for every window add nothing: not visited.
    # avg pooling has no dilation; a run-time 1, since a literal 1 would compile
    # a second _taps_with_input
    undilated = kH - kH + 1
    taps_h = _taps_with_input(H, H_out, kH, sH, pH, undilated)  # (n_taps_h,)
    taps_w = _taps_with_input(W, W_out, kW, sW, pW, undilated)  # (n_taps_w,)
    for p in prange(P):
        xf = xp[p]  # (H, W)
        # Sum tap by tap over all outputs (the window-by-window loop nest
        # has variable bounds and is about 2x slower). float64 accumulation:
        # float32 window sums are then exact in all but extreme cases.
        acc = np.zeros(M, dtype=np.float64)  # (H_out*W_out,)
        acc2 = acc.reshape((H_out, W_out))
        for i in taps_h:
            rh = i - pH
            lo_h, hi_h = valid_range(rh, sH, H_out, H)
            for j in taps_w:
                rw = j - pW
                lo_w, hi_w = valid_range(rw, sW, W_out, W)
                _add_tap(acc2[lo_h:hi_h, lo_w:hi_w], xf, lo_h * sH + rh, lo_w * sW + rw,
                         sH, sW)
        o = op[p]
        for t in range(M):
            o[t] = acc[t] / div[t]
    return out


@njit(cache=True, parallel=True)
def avg_pool2d_backward(grad_output, H, W, kH, kW, sH, sW, pH, pW, count_include_pad,
                        divisor_override):
    """Adjoint of avg_pool2d_forward: (N, C, H_out, W_out) -> (N, C, H, W)."""
    N, C, H_out, W_out = grad_output.shape
    P = N * C
    M = H_out * W_out
    grad_input = np.empty((N, C, H, W), dtype=grad_output.dtype)  # (N, C, H, W)
    gp = grad_output.reshape((P, M))
    gip = grad_input.reshape((P, H, W))
    gflat = grad_input.reshape((P, H * W))
    div = _avg_divisors(H, W, kH, kW, sH, sW, pH, pW, H_out, W_out, count_include_pad,
                        divisor_override)  # (H_out*W_out,)
    # Taps that read padding for every window add nothing: not visited.
    # avg pooling has no dilation; a run-time 1, since a literal 1 would compile
    # a second _taps_with_input
    undilated = kH - kH + 1
    taps_h = _taps_with_input(H, H_out, kH, sH, pH, undilated)  # (n_taps_h,)
    taps_w = _taps_with_input(W, W_out, kW, sW, pW, undilated)  # (n_taps_w,)
    for p in prange(P):
        gf = gip[p]  # (H, W)
        g_out = gp[p]
        # Zeroed plane by plane, just before use (cache-friendly).
        g_flat = gflat[p]
        for t in range(H * W):
            g_flat[t] = 0.0
        g = np.empty(M, dtype=np.float64)  # (H_out*W_out,)
        for t in range(M):
            g[t] = g_out[t] / div[t]
        # Tap by tap, sequentially within the plane: overlapping windows
        # accumulate in a fixed order.
        g2 = g.reshape((H_out, W_out))
        for i in taps_h:
            rh = i - pH
            lo_h, hi_h = valid_range(rh, sH, H_out, H)
            for j in taps_w:
                rw = j - pW
                lo_w, hi_w = valid_range(rw, sW, W_out, W)
                _scatter_add_tap(gf, g2[lo_h:hi_h, lo_w:hi_w], lo_h * sH + rh,
                                 lo_w * sW + rw, sH, sW)
    return grad_input


@njit(cache=True, parallel=True)
def max_unpool2d_forward(x, indices, H_out, W_out):
    """out[n, c].flat[indices[n, c, i]] = x[n, c, i]; the last duplicate wins.

    Returns (out, bad), ``bad`` as in :func:`max_pool2d_backward`.
    """
    N, C, H, W = x.shape
    P = N * C
    M = H * W
    HW = H_out * W_out
    out = np.empty((N, C, H_out, W_out), dtype=x.dtype)  # (N, C, H_out, W_out)
    bad = np.zeros(P, dtype=np.bool_)
    xp = x.reshape((P, M))
    ixp = indices.reshape((P, M))
    op = out.reshape((P, HW))
    for p in prange(P):
        o = op[p]
        # Zeroed plane by plane, just before the writes (cache-friendly).
        for t in range(HW):
            o[t] = 0.0
        xv = xp[p]
        ix = ixp[p]
        for m in range(M):
            i = ix[m]
            if i < 0 or i >= HW:
                bad[p] = True
            else:
                o[i] = xv[m]
    return out, bad.any()


@njit(cache=True, parallel=True)
def max_unpool2d_backward(grad_output, indices):
    """grad_input[n, c, i] = grad_output[n, c].flat[indices[n, c, i]] where x[n, c, i] is the
    value the forward kept at that position (the last duplicate), else 0.

    Returns (grad_input, bad), ``bad`` as in :func:`max_pool2d_backward`.
    """
    N, C, H_out, W_out = grad_output.shape
    _, _, H, W = indices.shape
    P = N * C
    M = H * W
    HW = H_out * W_out
    grad_input = np.empty((N, C, H, W), dtype=grad_output.dtype)  # (N, C, H, W)
    bad = np.zeros(P, dtype=np.bool_)
    gp = grad_output.reshape((P, HW))
    ixp = indices.reshape((P, M))
    gip = grad_input.reshape((P, M))
    # one owner table per chunk of planes, not per plane (an allocation each)
    T = min(P, 64)
    for t in prange(T):
        # owner[i]: the input that wrote output i last, i.e. the one whose value
        # the forward kept. Only entries named by ix are ever read, so no fill.
        owner = np.empty(HW, dtype=np.int64)
        for p in range(P * t // T, P * (t + 1) // T):
            g_in = gip[p]
            g_out = gp[p]
            ix = ixp[p]
            for m in range(M):
                i = ix[m]
                if i < 0 or i >= HW:
                    bad[p] = True
                else:
                    owner[i] = m
            for m in range(M):
                i = ix[m]
                g_in[m] = g_out[i] if 0 <= i < HW and owner[i] == m else 0.0
    return grad_input, bad.any()
