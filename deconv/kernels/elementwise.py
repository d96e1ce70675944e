"""Numba kernels of the one-pass layers of a training step: ReLU, GELU, the L1 loss, Adam.

Each replaces several NumPy passes (and their temporaries) by one pass over
flat, C-contiguous arrays of one float dtype. The work is cut into fixed
chunks of :data:`CHUNK` elements, one ``prange`` iteration each: every
element is written by one iteration, and the only reduction (the L1 loss)
keeps one float64 partial per chunk (summed in an order fixed by the
compiled loop), added in chunk order afterwards, so the results are bitwise
identical for any ``NUMBA_NUM_THREADS``.

The elementwise arithmetic is that of the NumPy code it replaces, in the
same dtype and the same order (no fused multiply-add: Numba compiles
without fastmath), so a float32 kernel gives the float32 result NumPy gives. The kernels trust
their arguments; the layers and the optimizer check them.
"""

import math

import numpy as np
from numba import njit, prange

#: elements per prange iteration (and per partial sum of the L1 loss)
CHUNK = 1 << 14


def chunks(size):
    """The number of :data:`CHUNK`-element pieces of ``size`` elements."""
    return max(1, -(-size // CHUNK))


@njit(cache=True, parallel=True)
def relu_forward(x, y):
    """``y = max(x, 0)`` (NaN stays NaN); x, y : (L,)."""
    L = x.shape[0]
    for c in prange((L + CHUNK - 1) // CHUNK):
        # slices from 0: the loops vectorise (an index into the whole array may wrap)
        lo, hi = c * CHUNK, min(L, (c + 1) * CHUNK)
        xs, ys = x[lo:hi], y[lo:hi]
        zero = x.dtype.type(0)
        for i in range(xs.shape[0]):
            v = xs[i]
            # np.maximum(v, 0): v when v > 0 or v is NaN, else 0
            ys[i] = v if not (v <= zero) else zero
    return y


@njit(cache=True, parallel=True)
def relu_backward(grad_output, y, grad_input):
    """``grad_input = grad_output where y > 0 else 0`` (a select, as torch's), from
    ReLU's output ``y`` (``y > 0`` exactly where ``x > 0``); (L,) each."""
    L = grad_output.shape[0]
    for c in prange((L + CHUNK - 1) // CHUNK):
        lo, hi = c * CHUNK, min(L, (c + 1) * CHUNK)
        gs, ys, out = grad_output[lo:hi], y[lo:hi], grad_input[lo:hi]
        zero = grad_output.dtype.type(0)
        for i in range(gs.shape[0]):
            out[i] = gs[i] if ys[i] > zero else zero
    return grad_input


@njit(cache=True, parallel=True)
def gelu_forward(x, y, cdf):
    """``cdf = (erf(x / sqrt 2) + 1) / 2`` and ``y = x * cdf`` (the exact GELU); (L,) each.

    ``math.erf`` is the C library's ``erf``, one call per element (one pass
    instead of scipy.special.erf's and NumPy's three); unlike the other
    kernels here its float32 values are not bitwise those of the code it
    replaced (another ``erf``: within 1.2e-7 of float64).
    """
    L = x.shape[0]
    scale = x.dtype.type(1 / math.sqrt(2))
    half, one = x.dtype.type(0.5), x.dtype.type(1)
    for c in prange((L + CHUNK - 1) // CHUNK):
        lo, hi = c * CHUNK, min(L, (c + 1) * CHUNK)
        xs, ys, cs = x[lo:hi], y[lo:hi], cdf[lo:hi]
        for i in range(xs.shape[0]):
            v = xs[i]
            p = (math.erf(v * scale) + one) * half
            cs[i] = p
            ys[i] = v * p


@njit(cache=True, fastmath={"reassoc"})
def _abs_difference_sum(ps, ts):
    """``sum(|ps - ts|)`` in float64 (difference in the arrays' dtype).

    The four quarters of the arrays side by side, then the few left over:
    eight streams from memory instead of two, as the target of a training
    step has been out of cache since the last one (U-Net's loss under AVX2,
    2 threads, 0.59-0.64 -> 0.49-0.54 ms). fastmath 'reassoc' only (NaN and
    inf keep their meaning) lets LLVM sum on the vector lanes, then the lanes
    in a fixed tree: the order is set by the compiled loop and the length,
    the same at every call and on every thread.
    """
    q = ps.shape[0] // 4
    a0 = a1 = a2 = a3 = 0.0
    for i in range(q):
        a0 += abs(1.0 * (ps[i] - ts[i]))
        a1 += abs(1.0 * (ps[q + i] - ts[q + i]))
        a2 += abs(1.0 * (ps[2 * q + i] - ts[2 * q + i]))
        a3 += abs(1.0 * (ps[3 * q + i] - ts[3 * q + i]))
    rest = 0.0
    for i in range(4 * q, ps.shape[0]):
        rest += abs(1.0 * (ps[i] - ts[i]))
    return ((a0 + a1) + (a2 + a3)) + rest


@njit(cache=True, parallel=True)
def l1_forward(prediction, target, partial):
    """``partial[c] = sum(|prediction - target|)`` of chunk c, in float64.

    prediction, target : (L,), one dtype (the difference is taken in it, as
    NumPy's); partial : (chunks,) float64.
    """
    L = prediction.shape[0]
    for c in prange((L + CHUNK - 1) // CHUNK):
        lo, hi = c * CHUNK, min(L, (c + 1) * CHUNK)
        partial[c] = _abs_difference_sum(prediction[lo:hi], target[lo:hi])
    return partial


@njit(cache=True, parallel=True)
def l1_backward(prediction, target, scale, grad):
    """``grad = sign(prediction - target) * scale``, as ``np.sign(d) * scale``; (L,) each.

    ``scale`` is a 0-d array of the dtype of ``prediction``: the difference
    and the product are in that dtype, the sign +-1, +0 (``np.sign(-0.0)``
    is +0) or NaN.
    """
    L = prediction.shape[0]
    s = scale[()]
    zero = s * 0                             # 0 of the dtype, signed as 0 * s
    for c in prange((L + CHUNK - 1) // CHUNK):
        lo, hi = c * CHUNK, min(L, (c + 1) * CHUNK)
        ps, ts, gs = prediction[lo:hi], target[lo:hi], grad[lo:hi]
        for i in range(ps.shape[0]):
            d = ps[i] - ts[i]
            gs[i] = s if d > 0 else (-s if d < 0 else (zero if d == 0 else d * s))
    return grad


@njit(cache=True, parallel=True)
def adam_update(data, grad, exp_avg, exp_avg_sq, constants, decay_grad, small_weight):
    """One Adam step on flat arrays of one dtype, in torch's operation order.

    data, grad, exp_avg, exp_avg_sq : (L,), updated in place (not ``grad``);
    constants : (8,) of the dtype, each rounded from float64 once:
    ``weight_decay``, ``1 - beta1``, ``1``, ``beta2``, ``1 - beta2``,
    ``sqrt(1 - beta2**t)``, ``eps``, ``-lr / (1 - beta1**t)``;
    ``decay_grad``: add ``weight_decay * data`` to the gradient first (Adam's
    L2 term); ``small_weight``: ``|1 - beta1| < 0.5``, which lerp formula.
    """
    L = data.shape[0]
    wd = constants[0]
    weight = constants[1]
    one = constants[2]
    beta2 = constants[3]
    one_minus_beta2 = constants[4]
    bc2_sqrt = constants[5]
    eps = constants[6]
    step = constants[7]
    for c in prange((L + CHUNK - 1) // CHUNK):
        lo, hi = c * CHUNK, min(L, (c + 1) * CHUNK)
        ps, gs, ms, vs = data[lo:hi], grad[lo:hi], exp_avg[lo:hi], exp_avg_sq[lo:hi]
        for i in range(ps.shape[0]):
            g = gs[i]
            if decay_grad:
                g = g + wd * ps[i]
            m = ms[i]
            if small_weight:
                m = m + weight * (g - m)
            else:
                m = g - (g - m) * (one - weight)
            ms[i] = m
            v = vs[i] * beta2
            v = v + (one_minus_beta2 * g) * g
            vs[i] = v
            denom = np.sqrt(v) / bc2_sqrt
            denom = denom + eps
            ps[i] = ps[i] + (step * m) / denom
    return data
