"""The engine of ReLU, GELU, the L1 loss and Adam: one-pass kernels on flat arrays.

:class:`deconv.nn.ReLU`, :class:`deconv.nn.L1Loss` and
:class:`deconv.optim.Adam` check their arguments; these functions make the
arrays kernel-ready (C-contiguous, native byte order), allocate the outputs
and run :mod:`deconv.kernels.elementwise`. They are not part of the public
API: their arguments are the callers' checked ones.
"""

import numpy as np

from deconv.kernels import elementwise as _k
from deconv.kernels.threads import call
from deconv.functional.layout import aligned_empty
from deconv.functional.validation import kernel_ready

__all__ = []


def _flat(array, name):
    return kernel_ready(array, name).reshape(-1)


def _output_and_saved(kernel, x, saved_dtype):
    """One elementwise pass of ``kernel(x, y, saved)``: the output (shape and dtype of
    ``x``) and what the backward keeps (dtype ``saved_dtype``, or x's for None)."""
    flat = _flat(x, "x")
    y = aligned_empty(flat.shape, dtype=flat.dtype)
    saved = aligned_empty(flat.shape, dtype=saved_dtype or flat.dtype)
    call(kernel, flat, y, saved)
    return y.reshape(np.shape(x)), saved.reshape(np.shape(x))


def relu(x):
    """``max(x, 0)`` (shape and dtype of ``x``)."""
    flat = _flat(x, "x")
    y = aligned_empty(flat.shape, dtype=flat.dtype)
    call(_k.relu_forward, flat, y)
    return y.reshape(np.shape(x))


def relu_backward(grad_output, y):
    """``grad_output`` where ``y > 0``, else 0 (shape and dtype of ``grad_output``),
    ``y`` the output :func:`relu` returned."""
    flat = _flat(grad_output, "grad_output")
    grad_input = aligned_empty(flat.shape, dtype=flat.dtype)
    call(_k.relu_backward, flat, y.reshape(-1), grad_input)
    return grad_input.reshape(grad_output.shape)


def gelu(x):
    """``(x * Phi(x), Phi(x))``, the exact GELU and the normal CDF (shape and dtype of ``x``)."""
    return _output_and_saved(_k.gelu_forward, x, None)


def l1(prediction, target):
    """``sum(|prediction - target|)`` in float64 (``target``: shape and dtype of ``prediction``).

    Summed per chunk of :data:`deconv.kernels.elementwise.CHUNK` elements,
    then over the chunks in order. Returns the sum and the two arrays as the
    kernels read them, for :func:`l1_backward`.
    """
    p, t = _flat(prediction, "prediction"), _flat(target, "target")
    partial = np.empty(_k.chunks(p.size))
    call(_k.l1_forward, p, t, partial)
    total = 0.0
    for value in partial:                       # chunk order, whatever the threads
        total += float(value)
    return total, p, t


def l1_backward(prediction, target, scale, shape):
    """``sign(prediction - target) * scale`` of shape ``shape``, in the arrays' dtype.

    ``prediction`` and ``target`` as :func:`l1` returned them; ``scale`` a float.
    """
    grad = aligned_empty(prediction.shape, dtype=prediction.dtype)
    call(_k.l1_backward, prediction, target, np.array(scale, dtype=prediction.dtype), grad)
    return grad.reshape(shape)


def adam_ready(*arrays):
    """Whether the Adam kernel can update these arrays in place (else NumPy does)."""
    first = arrays[0]
    return all(isinstance(a, np.ndarray) and a.flags.c_contiguous and a.flags.writeable
               and a.dtype == first.dtype and a.dtype.isnative and a.shape == first.shape
               for a in arrays) and first.dtype in (np.float32, np.float64)


def adam_update(data, grad, exp_avg, exp_avg_sq, *, weight_decay, beta1, beta2, eps,
                step_size, bias_correction2_sqrt, decay_grad):
    """One Adam step in place on arrays that pass :func:`adam_ready`.

    The Python-float constants are rounded once to the arrays' dtype, as
    ``dtype.type(value)`` in the NumPy update.
    """
    constants = np.array([weight_decay, 1 - beta1, 1.0, beta2, 1 - beta2,
                          bias_correction2_sqrt, eps, -step_size], dtype=data.dtype)
    call(_k.adam_update, data.reshape(-1), grad.reshape(-1), exp_avg.reshape(-1),
         exp_avg_sq.reshape(-1), constants, bool(decay_grad), bool(abs(constants[1]) < 0.5))
