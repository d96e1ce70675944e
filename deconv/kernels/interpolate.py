"""Numba kernel for separable interpolation: one sparse linear map along one axis.

Dimension letters: A the axes before the resampled one (batch, channels and
earlier spatial axes, flattened), L_in / L_out the resampled axis, B the axes
after it (flattened), M the number of (output, input, weight) taps.

Every interpolation mode of ``interpolate`` that is not served by
:mod:`deconv.kernels.upsample` (nearest in 3-D, nearest-exact, linear,
trilinear, bicubic, antialiased bilinear / bicubic) is separable: per axis,
output ``o`` is a weighted sum of a few inputs along that axis. The wrapper
(:mod:`deconv.functional.interpolate`) gives that map as CSR tables and
applies it axis after axis; the backward applies the *transposed* tables
(built by the wrapper from the same taps) in reverse axis order, so one
kernel serves both directions and the backward is the forward's exact adjoint.

Each ``prange`` iteration owns one output row ``out[a, o, :]``, whose taps
are summed in table order: nothing is written by two iterations, and results
are bitwise identical whatever the thread count.
"""

from numba import njit, prange


@njit(cache=True, parallel=True)
def resample_axis(x, starts, src, weights, out):
    """out[a, o, b] = sum_{m in [starts[o], starts[o+1])} weights[m] * x[a, src[m], b].

    x : (A, L_in, B); starts : (L_out + 1,) int64; src : (M,) int64 in
    [0, L_in); weights : (M,) x's dtype; out : (A, L_out, B), written and
    returned (an output row without taps is 0).
    """
    A = x.shape[0]
    B = x.shape[2]
    L_out = out.shape[1]
    zero = x.dtype.type(0)
    for q in prange(A * L_out):
        a = q // L_out
        o = q - a * L_out
        row = out[a, o]
        lo = starts[o]
        hi = starts[o + 1]
        if lo == hi:
            for b in range(B):
                row[b] = zero
            continue
        # the first tap assigns, so that a single tap of weight 1 is an exact copy
        w = weights[lo]
        x_row = x[a, src[lo]]
        for b in range(B):
            row[b] = w * x_row[b]
        for m in range(lo + 1, hi):
            w = weights[m]
            x_row = x[a, src[m]]
            for b in range(B):
                row[b] += w * x_row[b]
    return out
