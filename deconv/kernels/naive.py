"""The naive kernels: every convolution pass as the plain loop nest of its formula.

One ``@njit`` function per pass, read top to bottom, each loop a letter of
the formula in its docstring:

    n   sample of the batch             g   group
    o   output channel in the group     c   input channel in the group
    i, j   output row, column           a, b   kernel row, column
    u, v   input row, column

They are the semantics every other path shares (:mod:`deconv.kernels.conv`
is tested against them, and against scipy), and a learner can step through
them. ``with deconv.kernels.use("naive"):`` routes the public functions of
:mod:`deconv.functional.conv` here, after the same validation.

Geometry arrives as the fast kernels take it: strides ``sH, sW``, the
padding *before* each axis ``pH, pW`` (top, left) and dilations ``dH, dW``.
What follows the last window, the padding after each axis (``'same'`` may
pad asymmetrically) or a transposed conv's ``output_padding``, is carried by
the output size ``H_out, W_out`` that :mod:`deconv.functional.shapes`
computed. The 1-D ops run these functions on views with ``H = 1``.

Padding. A gather pass (conv forward and weight gradient, transposed conv
input and weight gradient) reads a padded array: a tap over the padding
multiplies its partner by an explicit zero, so an inf or NaN partner gives
NaN there (0 * inf = NaN), as PyTorch does. A scatter pass (conv input
gradient, transposed conv forward) sends each product to its target; a tap
whose target lies in the padding has no target and is not computed, so an
inf weight there leaves no trace, again as in PyTorch.

Arithmetic. Every output element is one sum in the arrays' dtype (float32
accumulates in float32), in the fixed order of the loops below its store:
the bias first (when given), then the terms in lexicographic order of the
summed letters. Single-threaded, so results are identical on every run.
Each function allocates and returns its result: nothing is accumulated into
caller memory.

Pooling, unpooling and upsampling need no naive twins: their kernels
(``max_pool2d_forward``, ``max_pool2d_backward``, ``avg_pool2d_forward``,
``avg_pool2d_backward``, ``max_unpool2d_forward``, ``max_unpool2d_backward``
in :mod:`deconv.kernels.pool`; ``nearest_forward``, ``nearest_backward``,
``bilinear_forward``, ``bilinear_backward``, ``pixel_shuffle``,
``pixel_unshuffle`` in :mod:`deconv.kernels.upsample`) already are loops
over the output (or the input) that read like their formulas, so they are
their own naive form and run under either kernel set.
"""

import numpy as np
from numba import njit

__all__ = [
    "conv2d_forward", "conv2d_input_grad", "conv2d_weight_grad", "conv2d_bias_grad",
    "conv_transpose2d_forward", "conv_transpose2d_input_grad",
    "conv_transpose2d_weight_grad", "conv_transpose2d_bias_grad",
]


# ---------------------------------------------------------------------------
# convolution: weight (C_out, C_in/G, kH, kW)
# ---------------------------------------------------------------------------

@njit(cache=True)
def conv2d_forward(x, weight, bias, sH, sW, pH, pW, dH, dW, groups, H_out, W_out):
    """y = conv2d(x, weight) + bias, each output gathering its window.

    ``y[n, g*O + o, i, j] = bias[g*O + o] + sum_{c, a, b} weight[g*O + o, c, a, b]
    * x_pad[n, g*C + c, i*sH + a*dH - pH, j*sW + b*dW - pW]``

    with ``C = C_in/G``, ``O = C_out/G`` and ``x_pad`` zero outside ``x``.
    ``bias`` may be None. Returns y, shape (N, C_out, H_out, W_out).
    """
    N, _, H, W = x.shape                        # x: (N, C_in, H, W)
    C_out, C, kH, kW = weight.shape             # weight: (C_out, C_in/G, kH, kW)
    O = C_out // groups
    zero = x.dtype.type(0)
    y = np.empty((N, C_out, H_out, W_out), x.dtype)   # (N, C_out, H_out, W_out)
    for n in range(N):
        for g in range(groups):
            for o in range(O):
                for i in range(H_out):
                    for j in range(W_out):
                        acc = zero
                        if bias is not None:
                            acc = bias[g * O + o]     # bias: (C_out,)
                        for c in range(C):
                            for a in range(kH):
                                u = i * sH + a * dH - pH
                                for b in range(kW):
                                    v = j * sW + b * dW - pW
                                    x_pad = zero      # the tap may lie over the padding
                                    if 0 <= u < H and 0 <= v < W:
                                        x_pad = x[n, g * C + c, u, v]
                                    acc += weight[g * O + o, c, a, b] * x_pad
                        y[n, g * O + o, i, j] = acc
    return y


@njit(cache=True)
def conv2d_input_grad(grad_output, weight, sH, sW, pH, pW, dH, dW, groups, H, W):
    """dL/dx of conv2d, each input pixel gathering the outputs whose windows read it.

    ``grad_input[n, g*C + c, u, v] = sum_{o, a, b} weight[g*O + o, c, a, b]
    * grad_output[n, g*O + o, i, j]`` over the taps with ``u = i*sH + a*dH - pH``
    and ``v = j*sW + b*dW - pW`` for an output pixel ``(i, j)``: ``i = (u + pH -
    a*dH) / sH`` must be a whole number in [0, H_out), likewise ``j``. A tap
    that reaches no output adds nothing (rows no window reads get 0).

    Returns grad_input, shape (N, C_in, H, W). This is the transposed
    convolution of ``grad_output``; :func:`conv_transpose2d_forward` computes
    the same sum in scatter form.
    """
    N, C_out, H_out, W_out = grad_output.shape  # grad_output: (N, C_out, H_out, W_out)
    _, C, kH, kW = weight.shape                 # weight: (C_out, C_in/G, kH, kW)
    O = C_out // groups
    zero = grad_output.dtype.type(0)
    grad_input = np.empty((N, groups * C, H, W), grad_output.dtype)   # (N, C_in, H, W)
    for n in range(N):
        for g in range(groups):
            for c in range(C):
                for u in range(H):
                    for v in range(W):
                        acc = zero
                        for o in range(O):
                            for a in range(kH):
                                di = u + pH - a * dH
                                if di < 0 or di % sH != 0 or di // sH >= H_out:
                                    continue
                                i = di // sH
                                for b in range(kW):
                                    dj = v + pW - b * dW
                                    if dj < 0 or dj % sW != 0 or dj // sW >= W_out:
                                        continue
                                    j = dj // sW
                                    acc += weight[g * O + o, c, a, b] * grad_output[n, g * O + o, i, j]
                        grad_input[n, g * C + c, u, v] = acc
    return grad_input


@njit(cache=True)
def conv2d_weight_grad(grad_output, x, sH, sW, pH, pW, dH, dW, groups, kH, kW):
    """dL/dweight of conv2d: each tap sums over the batch and the output image.

    ``grad_weight[g*O + o, c, a, b] = sum_{n, i, j} grad_output[n, g*O + o, i, j]
    * x_pad[n, g*C + c, i*sH + a*dH - pH, j*sW + b*dW - pW]``

    with ``x_pad`` zero outside ``x`` (a NaN or inf in grad_output makes
    every tap of its channel NaN or inf, those over the padding included).
    Returns grad_weight, shape (C_out, C_in/G, kH, kW).
    """
    N, C_out, H_out, W_out = grad_output.shape  # grad_output: (N, C_out, H_out, W_out)
    _, C_in, H, W = x.shape                     # x: (N, C_in, H, W)
    C = C_in // groups
    O = C_out // groups
    zero = x.dtype.type(0)
    grad_weight = np.empty((C_out, C, kH, kW), x.dtype)   # (C_out, C_in/G, kH, kW)
    for g in range(groups):
        for o in range(O):
            for c in range(C):
                for a in range(kH):
                    for b in range(kW):
                        acc = zero
                        for n in range(N):
                            for i in range(H_out):
                                u = i * sH + a * dH - pH
                                for j in range(W_out):
                                    v = j * sW + b * dW - pW
                                    x_pad = zero      # the tap may lie over the padding
                                    if 0 <= u < H and 0 <= v < W:
                                        x_pad = x[n, g * C + c, u, v]
                                    acc += grad_output[n, g * O + o, i, j] * x_pad
                        grad_weight[g * O + o, c, a, b] = acc
    return grad_weight


@njit(cache=True)
def conv2d_bias_grad(grad_output):
    """dL/dbias: ``grad_bias[o] = sum_{n, i, j} grad_output[n, o, i, j]``.

    Returns grad_bias, shape (C_out,).
    """
    N, C_out, H_out, W_out = grad_output.shape  # grad_output: (N, C_out, H_out, W_out)
    grad_bias = np.empty(C_out, grad_output.dtype)   # (C_out,)
    for o in range(C_out):
        acc = grad_output.dtype.type(0)
        for n in range(N):
            for i in range(H_out):
                for j in range(W_out):
                    acc += grad_output[n, o, i, j]
        grad_bias[o] = acc
    return grad_bias


# ---------------------------------------------------------------------------
# transposed convolution: weight (C_in, C_out/G, kH, kW)
# ---------------------------------------------------------------------------

@njit(cache=True)
def conv_transpose2d_forward(x, weight, bias, sH, sW, pH, pW, dH, dW, groups, H_out, W_out):
    """y = conv_transpose2d(x, weight) + bias, each input pixel scattering the kernel.

    ``y[n, g*O + o, u, v] = bias[g*O + o] + sum_{c, i, j, a, b} x[n, g*C + c, i, j]
    * weight[g*C + c, o, a, b]`` over ``u = i*sH + a*dH - pH``, ``v = j*sW + b*dW - pW``

    with ``C = C_in/G``, ``O = C_out/G``: input pixel ``(i, j)`` adds a copy
    of the kernel, scaled by its value, at ``(i*sH - pH, j*sW - pW)``. Parts
    of a copy that land in the padding (or past the output_padding) are cut
    off. ``bias`` may be None. Returns y, shape (N, C_out, H_out, W_out).
    """
    N, C_in, H, W = x.shape                     # x: (N, C_in, H, W)
    _, O, kH, kW = weight.shape                 # weight: (C_in, C_out/G, kH, kW)
    C = C_in // groups
    y = np.empty((N, groups * O, H_out, W_out), x.dtype)   # (N, C_out, H_out, W_out)
    for n in range(N):
        for co in range(groups * O):
            for u in range(H_out):
                for v in range(W_out):
                    y[n, co, u, v] = 0
                    if bias is not None:
                        y[n, co, u, v] = bias[co]     # bias: (C_out,)
    for n in range(N):
        for g in range(groups):
            for c in range(C):
                for i in range(H):
                    for j in range(W):
                        for o in range(O):
                            for a in range(kH):
                                u = i * sH + a * dH - pH
                                if u < 0 or u >= H_out:
                                    continue
                                for b in range(kW):
                                    v = j * sW + b * dW - pW
                                    if v < 0 or v >= W_out:
                                        continue
                                    y[n, g * O + o, u, v] += x[n, g * C + c, i, j] * weight[g * C + c, o, a, b]
    return y


@njit(cache=True)
def conv_transpose2d_input_grad(grad_output, weight, sH, sW, pH, pW, dH, dW, groups, H, W):
    """dL/dx of conv_transpose2d: each input pixel gathers the outputs its kernel copy reached.

    ``grad_input[n, g*C + c, i, j] = sum_{o, a, b} weight[g*C + c, o, a, b]
    * grad_output_pad[n, g*O + o, i*sH + a*dH - pH, j*sW + b*dW - pW]``

    with ``grad_output_pad`` zero outside ``grad_output``: a convolution of
    grad_output (a tap over the padding multiplies the weight by zero, so an
    inf weight there gives NaN). Returns grad_input, shape (N, C_in, H, W).
    """
    # The formula is conv2d_forward's, term for term: the transposed conv's
    # weight (C_in, C_out/G, kH, kW) is laid out as a conv weight with C_in
    # outputs, and grad_output plays the conv's input. One loop nest serves
    # both (the adjoint of the adjoint is the conv itself), in the same order.
    return conv2d_forward(grad_output, weight, None, sH, sW, pH, pW, dH, dW, groups, H, W)


@njit(cache=True)
def conv_transpose2d_weight_grad(grad_output, x, sH, sW, pH, pW, dH, dW, groups, kH, kW):
    """dL/dweight of conv_transpose2d: each tap sums over the batch and the input image.

    ``grad_weight[g*C + c, o, a, b] = sum_{n, i, j} x[n, g*C + c, i, j]
    * grad_output_pad[n, g*O + o, i*sH + a*dH - pH, j*sW + b*dW - pW]``

    with ``grad_output_pad`` zero outside ``grad_output`` (an inf in x makes
    the taps whose copy was cut off NaN). Returns grad_weight, shape
    (C_in, C_out/G, kH, kW).
    """
    # The formula is conv2d_weight_grad's with the roles swapped: x plays the
    # conv's output gradient and grad_output the conv's input (the transposed
    # conv is the adjoint of that conv). The sums run in the same order.
    return conv2d_weight_grad(x, grad_output, sH, sW, pH, pW, dH, dW, groups, kH, kW)


# The bias of a transposed conv is added per output channel, like a conv's:
# its gradient is the same sum of grad_output over (N, H_out, W_out).
conv_transpose2d_bias_grad = conv2d_bias_grad
