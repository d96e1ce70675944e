"""Numba kernels of the one-pass layers of a training step: ReLU, the L1 loss, Adam.

Each replaces several NumPy passes (and their temporaries) by one pass over
flat, C-contiguous arrays of one float dtype. The work is cut into fixed
chunks of :data:`CHUNK` elements, one ``prange`` iteration each: every
element is written by one iteration, and the only reduction (the L1 loss)
keeps one float64 partial per chunk, summed in chunk order afterwards, so
the results are bitwise identical for any ``NUMBA_NUM_THREADS``.

The arithmetic is that of the NumPy code it replaces, in the same dtype and
the same order (no fused multiply-add: Numba compiles without fastmath), so
a float32 kernel gives the float32 result NumPy gives. The kernels trust
their arguments; the layers and the optimizer check them.
"""

import numpy as np
from numba import njit, prange

#: elements per prange iteration (and per partial sum of the L1 loss)
CHUNK = 1 << 14


def chunks(size):
    """The number of :data:`CHUNK`-element pieces of ``size`` elements."""
    return max(1, -(-size // CHUNK))


@njit(cache=True, parallel=True)
def relu_forward(x, y, positive):
    """``y = max(x, 0)`` (NaN stays NaN) and ``positive = x > 0``; x, y, positive : (L,)."""
    L = x.shape[0]
    for c in prange((L + CHUNK - 1) // CHUNK):
        for i in range(c * CHUNK, min(L, (c + 1) * CHUNK)):
            v = x[i]
            p = v > 0
            positive[i] = p
            # np.maximum(v, 0): v when v > 0 or v is NaN, else 0
            y[i] = v if (p or v != v) else 0
    return y


@njit(cache=True, parallel=True)
def relu_backward(grad_output, positive, grad_input):
    """``grad_input = grad_output where positive else 0`` (a select, as torch's); (L,) each."""
    L = grad_output.shape[0]
    for c in prange((L + CHUNK - 1) // CHUNK):
        for i in range(c * CHUNK, min(L, (c + 1) * CHUNK)):
            grad_input[i] = grad_output[i] if positive[i] else 0
    return grad_input


@njit(cache=True, parallel=True)
def l1_forward(prediction, target, difference, partial):
    """``difference = prediction - target``; ``partial[c] = sum(|difference|)`` of chunk c.

    prediction, target, difference : (L,), one dtype; partial : (chunks,)
    float64, each chunk summed in index order in float64.
    """
    L = prediction.shape[0]
    for c in prange((L + CHUNK - 1) // CHUNK):
        total = 0.0
        for i in range(c * CHUNK, min(L, (c + 1) * CHUNK)):
            d = prediction[i] - target[i]
            difference[i] = d
            total += abs(d)
        partial[c] = total
    return partial


@njit(cache=True, parallel=True)
def l1_backward(difference, scale, grad):
    """``grad = sign(difference) * scale``, as ``np.sign(d) * scale``; (L,) each.

    ``scale`` is a 0-d array of the dtype of ``difference``. The sign is
    +-1, +0 or NaN, so the product, exact in float64, is the one of the dtype.
    """
    L = difference.shape[0]
    s = scale[()]
    for c in prange((L + CHUNK - 1) // CHUNK):
        for i in range(c * CHUNK, min(L, (c + 1) * CHUNK)):
            d = difference[i]
            if d > 0:
                sign = 1.0
            elif d < 0:
                sign = -1.0
            elif d == 0:
                sign = 0.0                       # np.sign(-0.0) is +0.0
            else:
                sign = 1.0 * d                   # NaN
            grad[i] = sign * s
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
        for i in range(c * CHUNK, min(L, (c + 1) * CHUNK)):
            g = grad[i]
            if decay_grad:
                g = g + wd * data[i]
            m = exp_avg[i]
            if small_weight:
                m = m + weight * (g - m)
            else:
                m = g - (g - m) * (one - weight)
            exp_avg[i] = m
            v = exp_avg_sq[i] * beta2
            v = v + (one_minus_beta2 * g) * g
            exp_avg_sq[i] = v
            denom = np.sqrt(v) / bc2_sqrt
            denom = denom + eps
            data[i] = data[i] + (step * m) / denom
    return data
