"""Adaptive average and max pooling (1-D, 2-D, 3-D), forward and backward.

Public, validated wrappers around the Numba kernels of
:mod:`deconv.kernels.adaptive`, with the names, arguments and semantics of
``torch.nn.functional``: the caller gives the output size and each output
pools the input range ``[floor(o*L/out), ceil((o+1)*L/out))`` of every axis
(:func:`deconv.functional.shapes.adaptive_pool_window`). Layouts are
``(N, C, L)``, ``(N, C, H, W)`` and ``(N, C, D, H, W)``; float32 and float64
are supported and float32 in gives float32 out. Inputs are never written to.

The 1-D and 2-D ops run the 3-D kernels on ``(N, C, 1, 1, L)`` and
``(N, C, 1, H, W)`` views, so a max-pooling index ``(d*H + h)*W + w`` is
``h*W + w`` in 2-D and ``w`` in 1-D, as for :func:`deconv.max_pool2d`.

Max pooling returns ``(values, indices)`` by default, as deconv's
:func:`deconv.max_pool2d` always does (the indices are what its backward
needs); ``return_indices=False`` returns the values alone, as torch's
default does.

Every argument is checked before any work and raises ``TypeError`` or
``ValueError`` naming it; the outputs are held to the byte cap
(:func:`deconv.functional.validation.check_bytes`), and only then are the
inputs made contiguous (:func:`deconv.functional.validation.kernel_ready`).
"""

import numpy as np

from deconv.functional import shapes
from deconv.functional.pooling import _raise_bad_index
from deconv.functional.validation import (
    as_adaptive_output_size,
    as_bool,
    as_index_array,
    as_input_shape,
    check_activation,
    check_bytes,
    check_shape_equal,
    kernel_ready,
)
from deconv.kernels import adaptive as _k
from deconv.kernels import pool as _pool_k
from deconv.kernels.threads import call

__all__ = [
    "adaptive_avg_pool1d",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool3d",
    "adaptive_avg_pool1d_backward",
    "adaptive_avg_pool2d_backward",
    "adaptive_avg_pool3d_backward",
    "adaptive_max_pool1d",
    "adaptive_max_pool2d",
    "adaptive_max_pool3d",
    "adaptive_max_pool1d_backward",
    "adaptive_max_pool2d_backward",
    "adaptive_max_pool3d_backward",
]


def _to_3d(a):
    """(N, C, *spatial) -> (N, C, D, H, W) view, the missing leading axes of size 1."""
    return a.reshape(a.shape[:2] + (1,) * (5 - a.ndim) + a.shape[2:])


def _spatial3(sizes):
    """Spatial sizes as ``(D, H, W)``, the missing leading axes of size 1."""
    return (1,) * (3 - len(sizes)) + tuple(sizes)


def _output_shape(x, output_size, nd):
    """The output shape ``(N, C, *out)`` of pooling ``x`` to ``output_size``."""
    sizes = as_adaptive_output_size(output_size, nd)
    return x.shape[:2] + tuple(shapes.adaptive_pool_output_size(L, o)
                               for L, o in zip(x.shape[2:], sizes))


# --------------------------------------------------------------------------
# average pooling
# --------------------------------------------------------------------------

def _avg(x, output_size, nd):
    x = check_activation(x, "x", nd)
    out_shape = _output_shape(x, output_size, nd)
    check_bytes("output", (out_shape, x.dtype))
    x = kernel_ready(x, "x")
    out = call(_k.adaptive_avg_pool3d_forward, _to_3d(x), *_spatial3(out_shape[2:]))
    return out.reshape(out_shape)


def _avg_backward(grad_output, input_shape, nd):
    grad_output = check_activation(grad_output, "grad_output", nd)
    input_shape = as_input_shape(input_shape, nd, grad_output)
    check_bytes("output", (input_shape, grad_output.dtype))
    grad_output = kernel_ready(grad_output, "grad_output")
    grad_input = call(_k.adaptive_avg_pool3d_backward, _to_3d(grad_output),
                      *_spatial3(input_shape[2:]))
    return grad_input.reshape(input_shape)


def adaptive_avg_pool1d(x, output_size):
    """1-D adaptive average pooling (``torch.nn.functional.adaptive_avg_pool1d``).

    Parameters
    ----------
    x : ndarray, shape (N, C, L)
        float32 or float64; ``L >= 1``, ``N`` and ``C`` may be 0.
    output_size : int or (int,)
        ``L_out >= 1`` (no None in 1-D, as in PyTorch).

    Returns
    -------
    output : ndarray, shape (N, C, L_out)
        Window means, dtype of ``x``.

    Notes
    -----
    ``L_out = output_size``. Output ``o`` is the mean of ``x[..., start:end]``
    with ``start = floor(o*L/L_out)``, ``end = ceil((o+1)*L/L_out)``; the
    windows overlap when ``L_out`` does not divide ``L``, and repeat
    elements when ``L_out > L``. Sums run in float64.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import adaptive_avg_pool1d
    >>> adaptive_avg_pool1d(np.array([[[1., 2., 3., 4., 5.]]]), 3)
    array([[[1.5, 3. , 4.5]]])
    """
    return _avg(x, output_size, 1)


def adaptive_avg_pool2d(x, output_size):
    """2-D adaptive average pooling (``torch.nn.functional.adaptive_avg_pool2d``).

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
        float32 or float64; ``H, W >= 1``, ``N`` and ``C`` may be 0.
    output_size : int or (int or None, int or None)
        ``(H_out, W_out)``, each ``>= 1``; an int is used for both axes and
        None keeps that input size.

    Returns
    -------
    output : ndarray, shape (N, C, H_out, W_out)
        Window means, dtype of ``x``.

    Notes
    -----
    Per axis ``out = output_size`` (the input size for None). Output
    ``(i, j)`` is the mean of ``x[..., h0:h1, w0:w1]`` with
    ``h0 = floor(i*H/H_out)``, ``h1 = ceil((i+1)*H/H_out)`` and likewise
    ``w0, w1``. ``adaptive_avg_pool2d(x, 1)`` is global average pooling.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import adaptive_avg_pool2d
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> adaptive_avg_pool2d(x, 2)[0, 0]
    array([[ 2.5,  4.5],
           [10.5, 12.5]])
    >>> adaptive_avg_pool2d(x, (1, None))[0, 0]
    array([[6., 7., 8., 9.]])
    """
    return _avg(x, output_size, 2)


def adaptive_avg_pool3d(x, output_size):
    """3-D adaptive average pooling (``torch.nn.functional.adaptive_avg_pool3d``).

    Parameters
    ----------
    x : ndarray, shape (N, C, D, H, W)
        float32 or float64; ``D, H, W >= 1``, ``N`` and ``C`` may be 0.
    output_size : int or (int or None, int or None, int or None)
        ``(D_out, H_out, W_out)``, each ``>= 1``; None keeps that input size.

    Returns
    -------
    output : ndarray, shape (N, C, D_out, H_out, W_out)
        Window means, dtype of ``x``.

    Notes
    -----
    Per axis ``out = output_size`` (the input size for None); output
    ``o`` of an axis of length ``L`` averages
    ``[floor(o*L/out), ceil((o+1)*L/out))``.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import adaptive_avg_pool3d
    >>> x = np.arange(8.0).reshape(1, 1, 2, 2, 2)
    >>> adaptive_avg_pool3d(x, (1, 1, 2))[0, 0]
    array([[[3., 4.]]])
    """
    return _avg(x, output_size, 3)


def adaptive_avg_pool1d_backward(grad_output, input_shape):
    """Gradient of :func:`adaptive_avg_pool1d` with respect to its input.

    Parameters
    ----------
    grad_output : ndarray, shape (N, C, L_out)
        Gradient with respect to the pooled output (float32 or float64).
    input_shape : tuple of 3 ints
        ``(N, C, L)``, the shape of the pooled input.

    Returns
    -------
    grad_input : ndarray, shape (N, C, L)
        dtype of ``grad_output``.

    Notes
    -----
    ``L_out = grad_output.shape[2]``, the forward's ``output_size``. The
    adjoint of the forward: every element of window ``o`` receives
    ``grad_output[..., o] / (end - start)``; overlapping windows accumulate.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import adaptive_avg_pool1d_backward
    >>> adaptive_avg_pool1d_backward(np.ones((1, 1, 3)), (1, 1, 5))
    array([[[0.5       , 0.83333333, 0.33333333, 0.83333333, 0.5       ]]])
    """
    return _avg_backward(grad_output, input_shape, 1)


def adaptive_avg_pool2d_backward(grad_output, input_shape):
    """Gradient of :func:`adaptive_avg_pool2d` with respect to its input.

    Parameters
    ----------
    grad_output : ndarray, shape (N, C, H_out, W_out)
        Gradient with respect to the pooled output (float32 or float64).
    input_shape : tuple of 4 ints
        ``(N, C, H, W)``, the shape of the pooled input.

    Returns
    -------
    grad_input : ndarray, shape (N, C, H, W)
        dtype of ``grad_output``.

    Notes
    -----
    ``H_out = grad_output.shape[2]``, ``W_out = grad_output.shape[3]``: the
    forward's output size.
    Every element of window ``(i, j)`` receives ``grad_output[..., i, j]``
    divided by the window's area; overlapping windows accumulate,
    sequentially within each (n, c) plane.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import adaptive_avg_pool2d_backward
    >>> adaptive_avg_pool2d_backward(np.ones((1, 1, 1, 1)), (1, 1, 2, 2))[0, 0]
    array([[0.25, 0.25],
           [0.25, 0.25]])
    """
    return _avg_backward(grad_output, input_shape, 2)


def adaptive_avg_pool3d_backward(grad_output, input_shape):
    """Gradient of :func:`adaptive_avg_pool3d` with respect to its input.

    Parameters
    ----------
    grad_output : ndarray, shape (N, C, D_out, H_out, W_out)
        Gradient with respect to the pooled output (float32 or float64).
    input_shape : tuple of 5 ints
        ``(N, C, D, H, W)``, the shape of the pooled input.

    Returns
    -------
    grad_input : ndarray, shape (N, C, D, H, W)
        dtype of ``grad_output``.

    Notes
    -----
    Per axis ``out = grad_output.shape[2 + axis]``, the forward's output
    size. Every element of a window receives the window's gradient divided
    by its volume; overlapping windows accumulate.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import adaptive_avg_pool3d_backward
    >>> adaptive_avg_pool3d_backward(np.ones((1, 1, 1, 1, 1)), (1, 1, 1, 1, 4))[0, 0]
    array([[[0.25, 0.25, 0.25, 0.25]]])
    """
    return _avg_backward(grad_output, input_shape, 3)


# --------------------------------------------------------------------------
# max pooling
# --------------------------------------------------------------------------

def _max(x, output_size, return_indices, nd):
    x = check_activation(x, "x", nd)
    out_shape = _output_shape(x, output_size, nd)
    return_indices = as_bool(return_indices, "return_indices")
    check_bytes("outputs (values, indices)", (out_shape, x.dtype), (out_shape, np.int64))
    x = kernel_ready(x, "x")
    out, ind = call(_k.adaptive_max_pool3d_forward, _to_3d(x), *_spatial3(out_shape[2:]))
    out, ind = out.reshape(out_shape), ind.reshape(out_shape)
    return (out, ind) if return_indices else out


def _max_backward(grad_output, indices, input_shape, nd):
    grad_output = check_activation(grad_output, "grad_output", nd)
    indices = as_index_array(indices, "indices")
    check_shape_equal(indices, grad_output.shape, "indices", "that of grad_output")
    input_shape = as_input_shape(input_shape, nd, grad_output)
    check_bytes("output", (input_shape, grad_output.dtype))
    grad_output, indices = kernel_ready(grad_output, "grad_output"), kernel_ready(indices, "indices")
    N, C = input_shape[:2]
    size = int(np.prod(input_shape[2:]))
    # the scatter-add through flat indices is max pooling's: run it on (N, C, 1, M) views
    flat = (N, C, 1, int(np.prod(grad_output.shape[2:])))
    grad_input, bad = call(_pool_k.max_pool2d_backward, grad_output.reshape(flat),
                           indices.reshape(flat), 1, size)
    if bad:
        _raise_bad_index(indices, size, "indices",
                         f"flat positions within one (n, c) plane of input_shape {input_shape}")
    return grad_input.reshape(input_shape)


def adaptive_max_pool1d(x, output_size, return_indices=True):
    """1-D adaptive max pooling (``torch.nn.functional.adaptive_max_pool1d``).

    Parameters
    ----------
    x : ndarray, shape (N, C, L)
        float32 or float64; ``L >= 1``, ``N`` and ``C`` may be 0.
    output_size : int or (int,)
        ``L_out >= 1`` (no None in 1-D, as in PyTorch).
    return_indices : bool, default True
        Also return the argmax indices, as deconv's :func:`deconv.max_pool1d`
        always does (torch's default is False).

    Returns
    -------
    output : ndarray, shape (N, C, L_out)
        Window maxima, dtype of ``x``.
    indices : ndarray of int64, shape (N, C, L_out)
        Position of each maximum within its (n, c) row of ``x`` (only with
        ``return_indices``).

    Notes
    -----
    ``L_out = output_size``; output ``o`` is the maximum of
    ``x[..., floor(o*L/L_out):ceil((o+1)*L/L_out)]``. Ties go to the first
    maximum. NaN propagates: the first NaN of a window is its maximum
    (PyTorch's CPU kernel reports the *last* NaN instead).

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import adaptive_max_pool1d
    >>> out, idx = adaptive_max_pool1d(np.array([[[1., 3., 2., 5., 4.]]]), 3)
    >>> out
    array([[[3., 5., 5.]]])
    >>> idx
    array([[[1, 3, 3]]])
    """
    return _max(x, output_size, return_indices, 1)


def adaptive_max_pool2d(x, output_size, return_indices=True):
    """2-D adaptive max pooling (``torch.nn.functional.adaptive_max_pool2d``).

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
        float32 or float64; ``H, W >= 1``, ``N`` and ``C`` may be 0.
    output_size : int or (int or None, int or None)
        ``(H_out, W_out)``, each ``>= 1``; None keeps that input size.
    return_indices : bool, default True
        Also return the argmax indices, as deconv's :func:`deconv.max_pool2d`
        always does (torch's default is False).

    Returns
    -------
    output : ndarray, shape (N, C, H_out, W_out)
        Window maxima, dtype of ``x``.
    indices : ndarray of int64, shape (N, C, H_out, W_out)
        Flat position ``h*W + w`` of each maximum within its (n, c) plane
        of ``x`` (only with ``return_indices``).

    Notes
    -----
    Per axis ``out = output_size`` (the input size for None); output
    ``(i, j)`` is the maximum of ``x[..., h0:h1, w0:w1]`` with
    ``h0 = floor(i*H/H_out)``, ``h1 = ceil((i+1)*H/H_out)`` and likewise
    ``w0, w1``. Ties go to the first maximum in row-major order; the first
    NaN of a window is its maximum (PyTorch's CPU kernel reports the last).

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import adaptive_max_pool2d
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> out, idx = adaptive_max_pool2d(x, 2)
    >>> out[0, 0]
    array([[ 5.,  7.],
           [13., 15.]])
    >>> idx[0, 0]
    array([[ 5,  7],
           [13, 15]])
    """
    return _max(x, output_size, return_indices, 2)


def adaptive_max_pool3d(x, output_size, return_indices=True):
    """3-D adaptive max pooling (``torch.nn.functional.adaptive_max_pool3d``).

    Parameters
    ----------
    x : ndarray, shape (N, C, D, H, W)
        float32 or float64; ``D, H, W >= 1``, ``N`` and ``C`` may be 0.
    output_size : int or (int or None, int or None, int or None)
        ``(D_out, H_out, W_out)``, each ``>= 1``; None keeps that input size.
    return_indices : bool, default True
        Also return the argmax indices (torch's default is False).

    Returns
    -------
    output : ndarray, shape (N, C, D_out, H_out, W_out)
        Window maxima, dtype of ``x``.
    indices : ndarray of int64, shape (N, C, D_out, H_out, W_out)
        Flat position ``(d*H + h)*W + w`` of each maximum within its (n, c)
        volume of ``x`` (only with ``return_indices``).

    Notes
    -----
    Per axis ``out = output_size`` (the input size for None); output ``o``
    of an axis of length ``L`` takes the maximum over
    ``[floor(o*L/out), ceil((o+1)*L/out))``. Ties go to the first maximum
    in row-major order; the first NaN of a window is its maximum.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import adaptive_max_pool3d
    >>> x = np.arange(8.0).reshape(1, 1, 2, 2, 2)
    >>> out, idx = adaptive_max_pool3d(x, (1, 1, 2))
    >>> out[0, 0], idx[0, 0]
    (array([[[6., 7.]]]), array([[[6, 7]]]))
    """
    return _max(x, output_size, return_indices, 3)


def adaptive_max_pool1d_backward(grad_output, indices, input_shape):
    """Gradient of :func:`adaptive_max_pool1d` with respect to its input.

    Parameters
    ----------
    grad_output : ndarray, shape (N, C, L_out)
        Gradient with respect to the pooled output (float32 or float64).
    indices : ndarray of int64, shape (N, C, L_out)
        The ``indices`` returned by :func:`adaptive_max_pool1d`, each in ``[0, L)``.
    input_shape : tuple of 3 ints
        ``(N, C, L)``, the shape of the pooled input.

    Returns
    -------
    grad_input : ndarray, shape (N, C, L)
        dtype of ``grad_output``.

    Notes
    -----
    ``L_out = grad_output.shape[2]``, the forward's ``output_size``.
    ``grad_input[n, c, indices[n, c, o]] += grad_output[n, c, o]``:
    overlapping windows that share a maximum accumulate.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import adaptive_max_pool1d, adaptive_max_pool1d_backward
    >>> x = np.array([[[1., 3., 2., 5., 4.]]])
    >>> out, idx = adaptive_max_pool1d(x, 3)
    >>> adaptive_max_pool1d_backward(np.ones_like(out), idx, x.shape)
    array([[[0., 1., 0., 2., 0.]]])
    """
    return _max_backward(grad_output, indices, input_shape, 1)


def adaptive_max_pool2d_backward(grad_output, indices, input_shape):
    """Gradient of :func:`adaptive_max_pool2d` with respect to its input.

    Parameters
    ----------
    grad_output : ndarray, shape (N, C, H_out, W_out)
        Gradient with respect to the pooled output (float32 or float64).
    indices : ndarray of int64, shape (N, C, H_out, W_out)
        The ``indices`` returned by :func:`adaptive_max_pool2d`, each in
        ``[0, H*W)``.
    input_shape : tuple of 4 ints
        ``(N, C, H, W)``, the shape of the pooled input.

    Returns
    -------
    grad_input : ndarray, shape (N, C, H, W)
        dtype of ``grad_output``.

    Notes
    -----
    ``H_out = grad_output.shape[2]``, ``W_out = grad_output.shape[3]``: the
    forward's output size.
    ``grad_input[n, c].flat[indices[n, c, i, j]] += grad_output[n, c, i, j]``,
    sequentially within each (n, c) plane: results do not depend on the
    number of threads.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import adaptive_max_pool2d, adaptive_max_pool2d_backward
    >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> out, idx = adaptive_max_pool2d(x, 2)
    >>> adaptive_max_pool2d_backward(np.ones_like(out), idx, x.shape)[0, 0]
    array([[0., 0., 0.],
           [0., 1., 1.],
           [0., 1., 1.]])
    """
    return _max_backward(grad_output, indices, input_shape, 2)


def adaptive_max_pool3d_backward(grad_output, indices, input_shape):
    """Gradient of :func:`adaptive_max_pool3d` with respect to its input.

    Parameters
    ----------
    grad_output : ndarray, shape (N, C, D_out, H_out, W_out)
        Gradient with respect to the pooled output (float32 or float64).
    indices : ndarray of int64, shape (N, C, D_out, H_out, W_out)
        The ``indices`` returned by :func:`adaptive_max_pool3d`, each in
        ``[0, D*H*W)``.
    input_shape : tuple of 5 ints
        ``(N, C, D, H, W)``, the shape of the pooled input.

    Returns
    -------
    grad_input : ndarray, shape (N, C, D, H, W)
        dtype of ``grad_output``.

    Notes
    -----
    Per axis ``out = grad_output.shape[2 + axis]``, the forward's output
    size. ``grad_input[n, c].flat[indices[n, c, o]] += grad_output[n, c, o]``
    for every output ``o``; overlapping windows accumulate.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import adaptive_max_pool3d, adaptive_max_pool3d_backward
    >>> x = np.arange(8.0).reshape(1, 1, 2, 2, 2)
    >>> out, idx = adaptive_max_pool3d(x, 1)
    >>> adaptive_max_pool3d_backward(np.ones_like(out), idx, x.shape)[0, 0, 1]
    array([[0., 0.],
           [0., 1.]])
    """
    return _max_backward(grad_output, indices, input_shape, 3)
