"""Numba kernels for unfold (im2col) and fold (col2im), 2-D.

Dimension letters: N batch, C channels, P = N*C planes, H, W image size,
kH, kW block (kernel) size, H_out, W_out blocks per axis, L = H_out*W_out
blocks, K = C*kH*kW rows of the column matrix, in PyTorch's order
``row = (c*kH + i)*kW + j`` for tap ``(i, j)`` of channel ``c``.

Tap ``(i, j)`` of block ``(oh, ow)`` reads image position
``(oh*sH - pH + i*dH, ow*sW - pW + j*dW)``; for a fixed tap the blocks
whose position lies inside the image form one index range per axis
(:func:`~deconv.kernels.common.valid_range`), so the loops visit only
in-bounds taps and never test a bound in the inner loop. Taps in the
padding are zeros of the column matrix (unfold) or are dropped (fold).

Both kernels run ``prange`` over the P independent (n, c) planes: plane
``(n, c)`` owns rows ``c*kH*kW ... (c+1)*kH*kW - 1`` of ``cols[n]`` and
the image plane ``image[n, c]``, so no two iterations write one element.
Fold sums overlapping blocks inside its own plane in a fixed order (taps,
then blocks, row-major), so results are bitwise identical whatever
``NUMBA_NUM_THREADS`` is.

The kernels trust their arguments: shapes, dtypes, contiguity and block
counts are checked by :mod:`deconv.functional.fold`.
"""

import numpy as np
from numba import njit, prange

from deconv.kernels.common import valid_range


@njit(cache=True, parallel=True)
def unfold_forward(x, kH, kW, dH, dW, pH, pW, sH, sW, H_out, W_out):
    """im2col: (N, C, H, W) -> cols (N, C*kH*kW, H_out*W_out), zeros for padding taps."""
    N, C, H, W = x.shape
    L = H_out * W_out
    cols = np.zeros((N, C * kH * kW, L), dtype=x.dtype)  # (N, K, L)
    for plane in prange(N * C):
        n = plane // C
        c = plane % C
        image = x[n, c]  # (H, W)
        for i in range(kH):
            oh_lo, oh_hi = valid_range(i * dH - pH, sH, H_out, H)
            for j in range(kW):
                ow_lo, ow_hi = valid_range(j * dW - pW, sW, W_out, W)
                row = cols[n, (c * kH + i) * kW + j]  # (L,)
                for oh in range(oh_lo, oh_hi):
                    src = image[oh * sH - pH + i * dH]  # (W,)
                    w0 = j * dW - pW
                    base = oh * W_out
                    for ow in range(ow_lo, ow_hi):
                        row[base + ow] = src[ow * sW + w0]
    return cols


@njit(cache=True, parallel=True)
def fold_forward(cols, C, H, W, kH, kW, dH, dW, pH, pW, sH, sW, H_out, W_out):
    """col2im: cols (N, C*kH*kW, H_out*W_out) -> (N, C, H, W), overlapping blocks summed."""
    N = cols.shape[0]
    image_out = np.zeros((N, C, H, W), dtype=cols.dtype)  # (N, C, H, W)
    for plane in prange(N * C):
        n = plane // C
        c = plane % C
        image = image_out[n, c]  # (H, W), written by this iteration only
        for i in range(kH):
            oh_lo, oh_hi = valid_range(i * dH - pH, sH, H_out, H)
            for j in range(kW):
                ow_lo, ow_hi = valid_range(j * dW - pW, sW, W_out, W)
                row = cols[n, (c * kH + i) * kW + j]  # (L,)
                for oh in range(oh_lo, oh_hi):
                    dst = image[oh * sH - pH + i * dH]  # (W,)
                    w0 = j * dW - pW
                    base = oh * W_out
                    for ow in range(ow_lo, ow_hi):
                        dst[ow * sW + w0] += row[base + ow]
    return image_out
