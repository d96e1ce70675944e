"""Numba kernel for 3-D max pooling with argmax (issue 13: the 3-D family).

Dimension letters: N batch, C channels, P = N*C volumes, D, H, W input size,
D_out, H_out, W_out output size, kD, kH, kW kernel size.

A plain loop nest, window by window: ``prange`` over the P independent
(n, c) volumes, each iteration writing only its own volume, so results are
bitwise identical whatever the thread count. The other 3-D pooling ops need
no kernel of their own: average pooling is separable (the 2-D kernels of
:mod:`deconv.kernels.pool` sum over (H, W), then over D), and the max-pool
backward and max unpooling only move values between flat positions of a
volume, which the 2-D kernels do on a ``(1, D*H*W)`` view.

The kernel trusts its arguments (checked in :mod:`deconv.functional.pooling`):
every window holds at least one input element.
"""

import numpy as np
from numba import njit, prange

from deconv.kernels.common import valid_range


@njit(cache=True, parallel=True)
def max_pool3d_forward(x, kD, kH, kW, sD, sH, sW, pD, pH, pW, dD, dH, dW, D_out, H_out, W_out):
    """Max pooling with argmax: returns (out, indices), both (N, C, D_out, H_out, W_out).

    Taps are visited in row-major window order (kd, then kh, then kw) and
    replace the running maximum only if strictly greater, or NaN while the
    running maximum is not: the first maximum (the first NaN) wins; an
    all -inf window reports its first in-bounds tap. Indices are flat
    positions ``(d*H + h)*W + w`` within the (n, c) volume.
    """
    N, C, D, H, W = x.shape
    P = N * C
    out = np.empty((N, C, D_out, H_out, W_out), dtype=x.dtype)  # (N, C, D_out, H_out, W_out)
    ind = np.empty((N, C, D_out, H_out, W_out), dtype=np.int64)  # (N, C, D_out, H_out, W_out)
    xp = x.reshape((P, D, H, W))
    op = out.reshape((P, D_out, H_out, W_out))
    ip = ind.reshape((P, D_out, H_out, W_out))
    for p in prange(P):
        xv = xp[p]  # (D, H, W)
        for od in range(D_out):
            d0 = od * sD - pD
            lo_d, hi_d = valid_range(d0, dD, kD, D)
            for oh in range(H_out):
                h0 = oh * sH - pH
                lo_h, hi_h = valid_range(h0, dH, kH, H)
                for ow in range(W_out):
                    w0 = ow * sW - pW
                    lo_w, hi_w = valid_range(w0, dW, kW, W)
                    di, hi, wi = d0 + lo_d * dD, h0 + lo_h * dH, w0 + lo_w * dW
                    best = xv[di, hi, wi]
                    best_at = (di * H + hi) * W + wi
                    for a in range(lo_d, hi_d):
                        dd = d0 + a * dD
                        for b in range(lo_h, hi_h):
                            hh = h0 + b * dH
                            for c in range(lo_w, hi_w):
                                ww = w0 + c * dW
                                v = xv[dd, hh, ww]
                                if v > best or (v != v and best == best):
                                    best = v
                                    best_at = (dd * H + hh) * W + ww
                    op[p, od, oh, ow] = best
                    ip[p, od, oh, ow] = best_at
    return out, ind
