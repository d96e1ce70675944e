"""Numba kernels for nearest / bilinear upsampling and pixel (un)shuffle.

Dimension letters: N batch, C channels, P = N*C planes, H, W input size,
H_out, W_out output size, r the shuffle factor.

The resampling kernels work on ``(P, H, W)`` stacks of planes (1-D
upsampling is the H = 1 case) and take the index/weight maps as small
per-axis tables built by :mod:`deconv.upsampling`, so that the inner loops
are plain gathers and row operations. Both source-index maps are monotone
(non-decreasing) in the output index, so the outputs fed by one input index
form a contiguous range: the nearest backward and the column pass of the
bilinear backward are *gathers* over those ranges (CSR-style ``start``
offsets); the row pass of the bilinear backward adds whole rows, in output
order, into a per-plane buffer. Every ``prange`` iteration owns one plane,
nothing is ever written by two iterations, and each element is summed in a
fixed order: results are bitwise identical whatever ``NUMBA_NUM_THREADS`` is.

The kernels trust their arguments (C-contiguous, one float dtype, tables in
range); everything is checked by the public wrappers. Outputs are allocated
by the wrappers with ``np.empty`` and passed in: NumPy asks the kernel for
transparent huge pages on large allocations, which makes first-touch page
faults on a fresh 30 MB output several times cheaper than with Numba's own
allocator.
"""

import numpy as np
from numba import njit, prange


# ---------------------------------------------------------------------------
# nearest
# ---------------------------------------------------------------------------

@njit(cache=True, parallel=True)
def nearest_forward(x, src_h, src_w, out):
    """out[p, oh, ow] = x[p, src_h[oh], src_w[ow]].

    x : (P, H, W); src_h : (H_out,) int64; src_w : (W_out,) int64;
    out : (P, H_out, W_out), written and returned.
    """
    P = x.shape[0]
    H_out = src_h.shape[0]
    W_out = src_w.shape[0]
    for p in prange(P):
        for oh in range(H_out):
            o_row = out[p, oh]
            if oh > 0 and src_h[oh] == src_h[oh - 1]:
                # Upsampling repeats whole rows: a contiguous copy of the row
                # just written is much cheaper than gathering it again.
                prev = out[p, oh - 1]
                for ow in range(W_out):
                    o_row[ow] = prev[ow]
            else:
                x_row = x[p, src_h[oh]]
                for ow in range(W_out):
                    o_row[ow] = x_row[src_w[ow]]
    return out


@njit(cache=True, parallel=True)
def nearest_backward(grad_output, start_h, start_w, grad_input):
    """Adjoint of :func:`nearest_forward`, as a gather.

    grad_output : (P, H_out, W_out); start_h : (H + 1,) int64 and
    start_w : (W + 1,) int64 with the outputs copying input row ``ih`` being
    ``start_h[ih] <= oh < start_h[ih + 1]`` (likewise columns).
    grad_input : (P, H, W), written and returned: the sum of grad_output
    over the outputs copying each input (0 for inputs no output copies).
    """
    P, H_out, W_out = grad_output.shape
    H = start_h.shape[0] - 1
    W = start_w.shape[0] - 1
    zero = grad_output.dtype.type(0)
    for p in prange(P):
        acc = np.empty(W_out, dtype=grad_output.dtype)  # column sums of one row band
        g = grad_output[p]
        for ih in range(H):
            lo = start_h[ih]
            hi = start_h[ih + 1]
            if lo == hi:
                for ow in range(W_out):
                    acc[ow] = zero
            else:
                first = g[lo]
                for ow in range(W_out):
                    acc[ow] = first[ow]
                for oh in range(lo + 1, hi):
                    row = g[oh]
                    for ow in range(W_out):
                        acc[ow] += row[ow]
            gi_row = grad_input[p, ih]
            for iw in range(W):
                s = zero
                for ow in range(start_w[iw], start_w[iw + 1]):
                    s += acc[ow]
                gi_row[iw] = s
    return grad_input


# ---------------------------------------------------------------------------
# bilinear
# ---------------------------------------------------------------------------

@njit(cache=True, parallel=True)
def bilinear_forward(x, h0, h1, lh0, lh1, w0, w1, lw0, lw1, row_used, out):
    """Separable bilinear interpolation: along W into a buffer, then along H.

    x : (P, H, W). Per output row ``oh`` the two source rows ``h0, h1``
    (int64) with weights ``lh0, lh1`` (x's dtype); likewise per output
    column. ``row_used[ih]`` (bool, (H,)) is False for input rows with no
    output weight (downsampling), which are skipped.
    Writes and returns ``out`` (P, H_out, W_out) with
    ``out = lh0*(lw0*x[h0, w0] + lw1*x[h0, w1]) + lh1*(lw0*x[h1, w0] + lw1*x[h1, w1])``.
    """
    P, H, W = x.shape
    H_out = h0.shape[0]
    W_out = w0.shape[0]
    for p in prange(P):
        tmp = np.empty((H, W_out), dtype=x.dtype)  # input rows interpolated along W
        for ih in range(H):
            if not row_used[ih]:
                continue
            x_row = x[p, ih]
            t_row = tmp[ih]
            for ow in range(W_out):
                t_row[ow] = lw0[ow] * x_row[w0[ow]] + lw1[ow] * x_row[w1[ow]]
        for oh in range(H_out):
            a = tmp[h0[oh]]
            b = tmp[h1[oh]]
            la = lh0[oh]
            lb = lh1[oh]
            o_row = out[p, oh]
            for ow in range(W_out):
                o_row[ow] = la * a[ow] + lb * b[ow]
    return out


@njit(cache=True, parallel=True)
def bilinear_backward(grad_output, h0, h1, lh0, lh1, sw0, sw1, lw0, lw1, grad_input):
    """Exact adjoint of :func:`bilinear_forward`: adjoint H pass, then adjoint W pass.

    grad_output : (P, H_out, W_out); ``h0, h1, lh0, lh1`` the forward's row
    tables; ``sw0`` (int64, (W + 1,)) CSR offsets of the non-decreasing
    ``w0`` map (the output columns whose first source column is ``iw`` are
    ``sw0[iw] <= ow < sw0[iw + 1]``, weighted by ``lw0[ow]``), ``sw1`` and
    ``lw1`` likewise for the second source column. grad_input : (P, H, W),
    written and returned.
    """
    P, H_out, W_out = grad_output.shape
    H = grad_input.shape[1]
    W = grad_input.shape[2]
    for p in prange(P):
        g = grad_output[p]
        # Adjoint of the H pass: each output row adds into its two source
        # rows, whole rows at a time, in output-row order.
        T = np.zeros((H, W_out), dtype=grad_output.dtype)
        for oh in range(H_out):
            g_row = g[oh]
            ta = T[h0[oh]]
            la = lh0[oh]
            for k in range(W_out):
                ta[k] += la * g_row[k]
            tb = T[h1[oh]]
            lb = lh1[oh]
            for k in range(W_out):
                tb[k] += lb * g_row[k]
        # Adjoint of the W pass on the transposed buffer, so that each input
        # column gathers whole (contiguous, vectorisable) columns of length H
        # instead of a few scalars per row.
        Tt = np.empty((W_out, H), dtype=grad_output.dtype)
        for ih in range(H):
            for k in range(W_out):
                Tt[k, ih] = T[ih, k]
        Gt = np.zeros((W, H), dtype=grad_output.dtype)
        for iw in range(W):
            u = Gt[iw]
            for ow in range(sw0[iw], sw0[iw + 1]):
                w = lw0[ow]
                t_col = Tt[ow]
                for k in range(H):
                    u[k] += w * t_col[k]
            for ow in range(sw1[iw], sw1[iw + 1]):
                w = lw1[ow]
                t_col = Tt[ow]
                for k in range(H):
                    u[k] += w * t_col[k]
        G = grad_input[p]
        for ih in range(H):
            for iw in range(W):
                G[ih, iw] = Gt[iw, ih]
    return grad_input


# ---------------------------------------------------------------------------
# pixel shuffle
# ---------------------------------------------------------------------------

@njit(cache=True, parallel=True)
def pixel_shuffle(x, r, out):
    """(N, C*r*r, H, W) -> (N, C, H*r, W*r).

    out[n, c, h*r + i, w*r + j] = x[n, c*r*r + i*r + j, h, w]; out is written and returned.
    """
    N, Crr, H, W = x.shape
    C = Crr // (r * r)
    for q in prange(N * C):
        n = q // C
        c = q - n * C
        for h in range(H):
            for i in range(r):
                o_row = out[n, c, h * r + i]
                for j in range(r):
                    x_row = x[n, c * r * r + i * r + j, h]
                    for w in range(W):
                        o_row[w * r + j] = x_row[w]
    return out


@njit(cache=True, parallel=True)
def pixel_unshuffle(x, r, out):
    """(N, C, H*r, W*r) -> (N, C*r*r, H, W).

    out[n, c*r*r + i*r + j, h, w] = x[n, c, h*r + i, w*r + j]; out is written and returned.
    """
    N, C, Hr, Wr = x.shape
    H = Hr // r
    W = Wr // r
    for q in prange(N * C):
        n = q // C
        c = q - n * C
        for h in range(H):
            for i in range(r):
                x_row = x[n, c, h * r + i]
                for j in range(r):
                    o_row = out[n, c * r * r + i * r + j, h]
                    for w in range(W):
                        o_row[w] = x_row[w * r + j]
    return out
