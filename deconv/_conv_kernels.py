"""Numba kernels for convolution and transposed convolution (2-D; 1-D is H = 1).

Dimension letters: N batch, C_in / C_out channels, G groups, H, W input
size, H_out, W_out output size, kH, kW kernel size, K = C_in/G * kH * kW the
length of one receptive field, P = H_out * W_out the number of output pixels.

Three kernels serve all six convolution passes, through the adjoint
relations (Chainer's ``convolution_2d`` / ``deconvolution_2d`` do the same):

=========================  ==========================================
conv forward               ``conv_forward``      (im2col, then GEMM)
conv grad_input            ``conv_input_grad``   (GEMM, then col2im)
conv grad_weight           ``conv_weight_grad``  (im2col, then GEMM)
transposed conv forward    ``conv_input_grad``   (it *is* conv's adjoint)
transposed grad_input      ``conv_forward``
transposed grad_weight     ``conv_weight_grad`` with input and grad swapped
=========================  ==========================================

The GEMMs are ``np.dot`` inside Numba, i.e. BLAS, which uses its own threads;
the kernels themselves are serial over the batch, so only one thread pool
is ever active (Numba's ``prange`` alternating with threaded BLAS was seen to
be erratic), every output element is written by one sequential loop, and the
results are bitwise identical whatever ``NUMBA_NUM_THREADS`` is.

The kernels trust their arguments: shapes, dtypes and contiguity are checked
by the public wrappers in :mod:`deconv.conv`.
"""

import numpy as np
from numba import njit

from deconv._kernel_common import valid_range


@njit(cache=True)
def _im2col(x, col, kH, kW, sH, sW, pH, pW, dH, dW, H_out, W_out):
    """Unfold receptive fields: col[(c, i, j), (oh, ow)] = x_padded[c, oh*sH + i*dH, ow*sW + j*dW].

    x: (C, H, W), col: (C*kH*kW, H_out*W_out). Padding reads as zero.
    """
    C, H, W = x.shape
    for c in range(C):
        for i in range(kH):
            oh_lo, oh_hi = valid_range(i * dH - pH, sH, H_out, H)
            for j in range(kW):
                row = col[(c * kH + i) * kW + j]
                ow_lo, ow_hi = valid_range(j * dW - pW, sW, W_out, W)
                for oh in range(H_out):
                    base = oh * W_out
                    if oh < oh_lo or oh >= oh_hi:
                        for ow in range(W_out):
                            row[base + ow] = 0.0
                        continue
                    x_row = x[c, oh * sH + i * dH - pH]
                    for ow in range(ow_lo):
                        row[base + ow] = 0.0
                    # An offset view keeps the copy loop free of a possibly
                    # negative index, which lets LLVM vectorise it.
                    src = x_row[ow_lo * sW + j * dW - pW:]
                    dst = row[base + ow_lo:]
                    if sW == 1:
                        # the common case gets its own loop: with a run-time
                        # stride the copy would not vectorise (4x slower)
                        for t in range(ow_hi - ow_lo):
                            dst[t] = src[t]
                    else:
                        for t in range(ow_hi - ow_lo):
                            dst[t] = src[t * sW]
                    for ow in range(ow_hi, W_out):
                        row[base + ow] = 0.0


@njit(cache=True)
def _col2im(col, x, kH, kW, sH, sW, pH, pW, dH, dW, H_out, W_out):
    """Fold back, summing overlaps: x[c, ih, iw] += col[(c, i, j), (oh, ow)].

    The adjoint of :func:`_im2col`; contributions that land in the padding
    are dropped. x: (C, H, W) accumulated into, col: (C*kH*kW, H_out*W_out).
    """
    C, H, W = x.shape
    for c in range(C):
        for i in range(kH):
            oh_lo, oh_hi = valid_range(i * dH - pH, sH, H_out, H)
            for j in range(kW):
                row = col[(c * kH + i) * kW + j]
                ow_lo, ow_hi = valid_range(j * dW - pW, sW, W_out, W)
                for oh in range(oh_lo, oh_hi):
                    dst = x[c, oh * sH + i * dH - pH][ow_lo * sW + j * dW - pW:]
                    src = row[oh * W_out + ow_lo:]
                    if sW == 1:
                        for t in range(ow_hi - ow_lo):
                            dst[t] += src[t]
                    else:
                        for t in range(ow_hi - ow_lo):
                            dst[t * sW] += src[t]


@njit(cache=True, inline="always")
def _is_pointwise(kH, kW, sH, sW, pH, pW, H, W, H_out, W_out):
    """A 1x1, stride-1, unpadded conv over the whole input needs no unfolding:
    the input plane itself is the (K, P) matrix. (A transposed conv with
    dilation can ask for fewer output rows than the input has; not that.)"""
    return (kH == 1 and kW == 1 and sH == 1 and sW == 1 and pH == 0 and pW == 0
            and H == H_out and W == W_out)


@njit(cache=True)
def conv_forward(x, weight, bias, has_bias, sH, sW, pH, pW, dH, dW, groups, out):
    """out = conv(x, weight) + bias, cross-correlation as in PyTorch.

    x: (N, C_in, H, W), weight: (C_out, C_in/G, kH, kW), bias: (C_out,),
    out: (N, C_out, H_out, W_out), allocated by the caller (NumPy's large
    allocations avoid the page faults of fresh ones made inside Numba).
    ``H_out, W_out`` come from ``out`` rather than the formula so that the
    transposed conv's grad_input (which needs fewer rows than the formula
    gives when output_padding >= stride) can use this kernel.
    """
    N, C_in, H, W = x.shape
    C_out, C_in_g, kH, kW = weight.shape
    H_out, W_out = out.shape[2], out.shape[3]
    C_out_g = C_out // groups
    K = C_in_g * kH * kW
    P = H_out * W_out
    x_g = x.reshape((N, groups, C_in_g, H, W))          # (N, G, C_in/G, H, W)
    w_g = weight.reshape((groups, C_out_g, K))          # (G, C_out/G, K)
    y_g = out.reshape((N, groups, C_out_g, P))          # (N, G, C_out/G, P)
    pointwise = _is_pointwise(kH, kW, sH, sW, pH, pW, H, W, H_out, W_out)
    col = np.empty((0 if pointwise else K, P), dtype=x.dtype)   # (K, P), reused
    for n in range(N):
        for g in range(groups):
            if pointwise:
                np.dot(w_g[g], x_g[n, g].reshape((K, P)), y_g[n, g])
            else:
                _im2col(x_g[n, g], col, kH, kW, sH, sW, pH, pW, dH, dW, H_out, W_out)
                np.dot(w_g[g], col, y_g[n, g])
        if has_bias:
            for co in range(C_out):
                out[n, co] += bias[co]


@njit(cache=True)
def conv_input_grad(grad_output, weight, sH, sW, pH, pW, dH, dW, groups, grad_input):
    """grad_input of conv = transposed conv of grad_output: col2im(W^T @ dY).

    grad_output: (N, C_out, H_out, W_out), weight: (C_out, C_in/G, kH, kW),
    grad_input: (N, C_in, H, W), zero-filled by the caller and accumulated
    into. Input positions that no window touches stay 0.
    """
    N, C_out, H_out, W_out = grad_output.shape
    _, C_in_g, kH, kW = weight.shape
    H, W = grad_input.shape[2], grad_input.shape[3]
    C_out_g = C_out // groups
    K = C_in_g * kH * kW
    P = H_out * W_out
    gy_g = grad_output.reshape((N, groups, C_out_g, P))  # (N, G, C_out/G, P)
    w_g = weight.reshape((groups, C_out_g, K))           # (G, C_out/G, K)
    gx_g = grad_input.reshape((N, groups, C_in_g, H, W))  # (N, G, C_in/G, H, W)
    pointwise = _is_pointwise(kH, kW, sH, sW, pH, pW, H, W, H_out, W_out)
    col = np.empty((0 if pointwise else K, P), dtype=grad_output.dtype)  # (K, P)
    for g in range(groups):
        # (K, C_out/G), copied once so BLAS sees a plain C-contiguous matrix
        w_t = np.ascontiguousarray(w_g[g].T)
        for n in range(N):
            if pointwise:
                np.dot(w_t, gy_g[n, g], gx_g[n, g].reshape((K, P)))
            else:
                np.dot(w_t, gy_g[n, g], col)
                _col2im(col, gx_g[n, g], kH, kW, sH, sW, pH, pW, dH, dW, H_out, W_out)


@njit(cache=True)
def conv_weight_grad(x, grad_output, sH, sW, pH, pW, dH, dW, groups, grad_weight):
    """grad_weight of conv: the sum over the batch of dY @ im2col(x)^T.

    x: (N, C_in, H, W), grad_output: (N, C_out, H_out, W_out), grad_weight:
    (C_out, C_in/G, kH, kW), zero-filled by the caller. The batch is summed
    in order, so the result does not depend on the number of threads.
    """
    N, C_in, H, W = x.shape
    _, C_out, H_out, W_out = grad_output.shape
    _, C_in_g, kH, kW = grad_weight.shape
    C_out_g = C_out // groups
    K = C_in_g * kH * kW
    P = H_out * W_out
    x_g = x.reshape((N, groups, C_in_g, H, W))             # (N, G, C_in/G, H, W)
    gy_g = grad_output.reshape((N, groups, C_out_g, P))     # (N, G, C_out/G, P)
    gw_g = grad_weight.reshape((groups, C_out_g, K))        # (G, C_out/G, K)
    pointwise = _is_pointwise(kH, kW, sH, sW, pH, pW, H, W, H_out, W_out)
    col = np.empty((0 if pointwise else K, P), dtype=x.dtype)   # (K, P)
    prod = np.empty((C_out_g, K), dtype=x.dtype)                # (C_out/G, K)
    for n in range(N):
        for g in range(groups):
            if pointwise:
                np.dot(gy_g[n, g], x_g[n, g].reshape((K, P)).T, prod)
            else:
                _im2col(x_g[n, g], col, kH, kW, sH, sW, pH, pW, dH, dW, H_out, W_out)
                np.dot(gy_g[n, g], col.T, prod)
            gw_g[g] += prod


@njit(cache=True)
def bias_grad(grad_output):
    """grad_bias[c] = sum of grad_output[:, c], accumulated in float64.

    grad_output: (N, C, H, W) returns (C,). Serial on purpose: it is
    memory-bound and short, and a Numba thread pool spinning after it would
    compete with the BLAS threads of the GEMMs around it.
    """
    N, C, H, W = grad_output.shape
    gy = grad_output.reshape((N, C, H * W))
    out = np.empty(C, dtype=grad_output.dtype)
    for c in range(C):
        total = 0.0
        for n in range(N):
            row = gy[n, c]
            for p in range(H * W):
                total += row[p]
        out[c] = total
    return out


@njit(cache=True)
def add_bias(y, bias):
    """y[:, c] += bias[c] in place (y is a fresh output array). y: (N, C, H, W).

    Serial for the same reason as :func:`bias_grad`.
    """
    N, C, H, W = y.shape
    for n in range(N):
        for c in range(C):
            b = bias[c]
            plane = y[n, c]
            for h in range(H):
                for w in range(W):
                    plane[h, w] += b
