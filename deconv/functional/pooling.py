"""Max/average pooling and max unpooling, forward and backward (1-D, 2-D and 3-D).

Public, validated wrappers around the Numba kernels of
:mod:`deconv.kernels.pool`, with the argument names and semantics of
``torch.nn.functional``. Layouts are ``(N, C, L)`` for 1-D and
``(N, C, H, W)`` for 2-D; float32 and float64 are supported and float32 in
gives float32 out. Inputs are never written to.

The 1-D ops run the 2-D kernels on a ``(N, C, 1, L)`` view (kernel 1,
stride 1, padding 0, dilation 1 along the dummy H axis), so a 1-D max-pool
index ``h*W + w`` is simply ``w``. The 3-D ops (issue 13) are described
with their entry points at the end of the module.

Every argument a user can get wrong is checked before any work, and raises
``TypeError`` (wrong kind of thing) or ``ValueError`` (wrong value) naming
the argument, the value and what was expected. The outputs are then held
to the byte cap (:func:`deconv.functional.validation.check_bytes`), and
only then are the inputs made contiguous
(:func:`deconv.functional.validation.kernel_ready`).
"""

import numpy as np

from deconv.kernels import pool as _k
from deconv.kernels import pool3d as _k3
from deconv.functional import shapes
from deconv.functional.layout import from_2d, to_2d
from deconv.kernels.threads import call
from deconv.functional.validation import (
    LAYOUT,
    as_bool,
    as_index_array,
    as_input_shape,
    as_int,
    as_positive_tuple,
    as_tuple,
    check_activation,
    check_batch_and_channels,
    check_bytes,
    check_ndim,
    check_shape_equal,
    kernel_ready,
)

__all__ = [
    "max_pool1d",
    "max_pool2d",
    "max_pool1d_backward",
    "max_pool2d_backward",
    "avg_pool1d",
    "avg_pool2d",
    "avg_pool1d_backward",
    "avg_pool2d_backward",
    "max_unpool1d",
    "max_unpool2d",
    "max_unpool1d_backward",
    "max_unpool2d_backward",
]

_DIMS = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}


# --------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------

def _window(nd, kernel_size, stride, padding, dilation=1):
    k = as_positive_tuple(kernel_size, nd, "kernel_size")
    # None, and as in PyTorch an empty sequence, mean stride = kernel_size
    default_stride = stride is None or (isinstance(stride, (list, tuple)) and len(stride) == 0)
    s = k if default_stride else as_positive_tuple(stride, nd, "stride")
    p = as_tuple(padding, nd, "padding", minimum=0)
    d = as_positive_tuple(dilation, nd, "dilation")
    return k, s, p, d


def _pool_sizes(spatial, k, s, p, d, ceil_mode, nd, name, shape):
    """Output sizes via shapes.pool_output_size, errors located on an axis."""
    out = []
    for axis, L, kk, ss, pp, dd in zip(_DIMS[nd], spatial, k, s, p, d):
        try:
            out.append(shapes.pool_output_size(L, kk, ss, pp, dd, ceil_mode))
        except ValueError as err:
            raise ValueError(f"{err} (axis {axis} of {name} with shape {shape})") from None
    return tuple(out)


def _check_windows_have_input(spatial, out, k, s, p, d, nd, shape):
    for axis, L, o, kk, ss, pp, dd in zip(_DIMS[nd], spatial, out, k, s, p, d):
        # With dilation 1 and padding <= k//2 every window holds an input
        # element; only dilated windows can fall entirely into the padding.
        if dd > 1 and not shapes.pool_window_has_input(L, o, kk, ss, pp, dd):
            raise ValueError(
                f"with kernel_size={kk}, stride={ss}, padding={pp}, dilation={dd} some "
                f"max-pooling window along axis {axis} (input size {L}, x shape {shape}) "
                f"contains only padding and has no maximum; expected a smaller padding "
                f"or dilation"
            )


def _raise_bad_index(indices, size, name, what):
    """Raise for the first entry of ``indices`` outside [0, size), naming it.

    The kernels that take indices check them as they go, skip bad entries and
    report; the result is then discarded and this raises (a separate checking
    pass would read the indices twice)."""
    bad = (indices < 0) | (indices >= size)
    pos = np.unravel_index(int(np.argmax(bad)), indices.shape)
    raise ValueError(
        f"{name} must lie in [0, {size}) ({what}), got {int(indices[pos])} at "
        f"position {tuple(int(i) for i in pos)}"
    )


def _planes(a):
    """The 4-D array the 2-D kernels take: (N, C, 1, L) for 1-D, the array itself
    for 2-D, and for 3-D the (N, C, 1, D*H*W) view of its flat volumes (the
    kernels that only move values between flat positions of a plane serve
    the volumes unchanged)."""
    if a.ndim == 5:
        return a.reshape(a.shape[:2] + (1, a.shape[2] * a.shape[3] * a.shape[4]))
    return to_2d(a)


def _pad2(t, fill):
    """Per-axis parameters as (H, W) pairs; the dummy H axis of 1-D gets ``fill``."""
    return (fill,) + t if len(t) == 1 else t


# --------------------------------------------------------------------------
# max pooling
# --------------------------------------------------------------------------

def _max_pool(x, kernel_size, stride, padding, dilation, ceil_mode, nd):
    x = check_activation(x, "x", nd)
    k, s, p, d = _window(nd, kernel_size, stride, padding, dilation)
    ceil_mode = as_bool(ceil_mode, "ceil_mode")
    spatial = x.shape[2:]
    out_sizes = _pool_sizes(spatial, k, s, p, d, ceil_mode, nd, "x", x.shape)
    out_shape = x.shape[:2] + out_sizes
    check_bytes("outputs (values, indices)", (out_shape, x.dtype), (out_shape, np.int64))
    _check_windows_have_input(spatial, out_sizes, k, s, p, d, nd, x.shape)
    x = kernel_ready(x, "x")
    if nd == 3:
        return call(_k3.max_pool3d_forward, x, *k, *s, *p, *d, *out_sizes)
    kH, kW = _pad2(k, 1)
    sH, sW = _pad2(s, 1)
    pH, pW = _pad2(p, 0)
    dH, dW = _pad2(d, 1)
    H_out, W_out = _pad2(out_sizes, 1)
    out, ind = call(_k.max_pool2d_forward, to_2d(x), kH, kW, sH, sW, pH, pW, dH, dW, H_out, W_out)
    return from_2d(out, nd), from_2d(ind, nd)


def max_pool1d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """1-D max pooling with argmax indices (``torch.nn.functional.max_pool1d``).

    Parameters
    ----------
    x : ndarray, shape (N, C, L)
        float32 or float64; ``L >= 1``, ``N`` and ``C`` may be 0.
    kernel_size : int or (int,)
        Window size ``k >= 1``.
    stride : int or (int,), optional
        Window step ``s >= 1``; ``None`` (default) means ``kernel_size``.
    padding : int or (int,), default 0
        Implicit ``-inf`` padding on both sides, ``0 <= p <= k // 2``.
    dilation : int or (int,), default 1
        Spacing ``d >= 1`` between window taps.
    ceil_mode : bool, default False
        Round the output size up instead of down.

    Returns
    -------
    output : ndarray, shape (N, C, L_out)
        Window maxima, dtype of ``x``.
    indices : ndarray of int64, shape (N, C, L_out)
        Position of each maximum within its (n, c) row of ``x``.

    Raises
    ------
    TypeError, ValueError
        For invalid arguments, including configurations in which some
        (dilated) window contains no input element.

    Notes
    -----
    ``L_out = floor((L + 2p - d*(k-1) - 1) / s) + 1`` (``ceil`` with
    ``ceil_mode``, dropping a last window that would start in the right
    padding). Ties go to the first maximum in window order. NaN propagates:
    the first NaN of a window is its maximum (PyTorch's CPU kernel reports
    the *last* NaN instead). A window holding only ``-inf`` reports its
    first in-bounds element.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import max_pool1d
    >>> x = np.array([[[1., 3., 2., 5., 4.]]])
    >>> out, idx = max_pool1d(x, 2)
    >>> out
    array([[[3., 5.]]])
    >>> idx
    array([[[1, 3]]])
    """
    return _max_pool(x, kernel_size, stride, padding, dilation, ceil_mode, 1)


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """2-D max pooling with argmax indices (``torch.nn.functional.max_pool2d``).

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
        float32 or float64; ``H, W >= 1``, ``N`` and ``C`` may be 0.
    kernel_size : int or (int, int)
        Window size ``(kH, kW)``, each ``>= 1``.
    stride : int or (int, int), optional
        Window step, each ``>= 1``; ``None`` (default) means ``kernel_size``.
    padding : int or (int, int), default 0
        Implicit ``-inf`` padding on both sides of each axis,
        ``0 <= p <= k // 2`` per axis.
    dilation : int or (int, int), default 1
        Spacing between window taps, each ``>= 1``.
    ceil_mode : bool, default False
        Round the output size up instead of down.

    Returns
    -------
    output : ndarray, shape (N, C, H_out, W_out)
        Window maxima, dtype of ``x``.
    indices : ndarray of int64, shape (N, C, H_out, W_out)
        Flat position ``h*W + w`` of each maximum within its (n, c) plane
        of ``x`` (the ``indices`` of :func:`max_pool2d_backward` and
        :func:`max_unpool2d`).

    Raises
    ------
    TypeError, ValueError
        For invalid arguments, including configurations in which some
        (dilated) window contains no input element (PyTorch returns an
        out-of-range index there).

    Notes
    -----
    Per axis, ``out = floor((L + 2p - d*(k-1) - 1) / s) + 1`` (``ceil``
    with ``ceil_mode``, dropping a last window that would start in the
    right padding).

    Ties go to the first maximum in row-major window order. NaN propagates:
    the first NaN of a window (row-major) is its maximum and receives its
    gradient; PyTorch's CPU kernel reports the *last* NaN instead. A window
    holding only ``-inf`` reports its first in-bounds element.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import max_pool2d
    >>> x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    >>> out, idx = max_pool2d(x, 2)
    >>> out[0, 0]
    array([[ 5.,  7.],
           [13., 15.]], dtype=float32)
    >>> idx[0, 0]
    array([[ 5,  7],
           [13, 15]])
    """
    return _max_pool(x, kernel_size, stride, padding, dilation, ceil_mode, 2)


def _max_pool_backward(grad_output, indices, input_shape, nd):
    grad_output = check_activation(grad_output, "grad_output", nd)
    indices = as_index_array(indices, "indices")
    check_shape_equal(indices, grad_output.shape, "indices", "that of grad_output")
    input_shape = as_input_shape(input_shape, nd, grad_output)
    check_bytes("output", (input_shape, grad_output.dtype))
    grad_output, indices = kernel_ready(grad_output, "grad_output"), kernel_ready(indices, "indices")
    spatial = input_shape[2:]
    size = int(np.prod(spatial))
    H, W = _pad2(spatial, 1) if nd < 3 else (1, size)
    grad_input, bad = call(_k.max_pool2d_backward, _planes(grad_output), _planes(indices), H, W)
    if bad:
        _raise_bad_index(indices, size, "indices",
                         f"flat positions within one (n, c) plane of input_shape {input_shape}")
    return grad_input.reshape(input_shape)


def max_pool1d_backward(grad_output, indices, input_shape):
    """Gradient of :func:`max_pool1d` with respect to its input.

    Parameters
    ----------
    grad_output : ndarray, shape (N, C, L_out)
        Gradient with respect to the pooled output (float32 or float64).
    indices : ndarray of int64, shape (N, C, L_out)
        The ``indices`` returned by :func:`max_pool1d`, each in ``[0, L)``.
    input_shape : tuple of 3 ints
        ``(N, C, L)``, the shape of the pooled input.

    Returns
    -------
    grad_input : ndarray, shape (N, C, L)
        dtype of ``grad_output``.

    Notes
    -----
    ``L_out = floor_or_ceil((L + 2p - d*(k-1) - 1) / s) + 1``, the forward's
    output length (see :func:`max_pool1d`).

    ``grad_input[n, c, indices[n, c, o]] += grad_output[n, c, o]``:
    overlapping windows that share a maximum accumulate.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import max_pool1d, max_pool1d_backward
    >>> x = np.array([[[1., 3., 2., 5., 4.]]])
    >>> out, idx = max_pool1d(x, 3, stride=1)
    >>> max_pool1d_backward(np.ones_like(out), idx, x.shape)
    array([[[0., 1., 0., 2., 0.]]])
    """
    return _max_pool_backward(grad_output, indices, input_shape, 1)


def max_pool2d_backward(grad_output, indices, input_shape):
    """Gradient of :func:`max_pool2d` with respect to its input.

    Parameters
    ----------
    grad_output : ndarray, shape (N, C, H_out, W_out)
        Gradient with respect to the pooled output (float32 or float64).
    indices : ndarray of int64, shape (N, C, H_out, W_out)
        The ``indices`` returned by :func:`max_pool2d`, each in ``[0, H*W)``.
    input_shape : tuple of 4 ints
        ``(N, C, H, W)``, the shape of the pooled input.

    Returns
    -------
    grad_input : ndarray, shape (N, C, H, W)
        dtype of ``grad_output``.

    Notes
    -----
    ``H_out = floor_or_ceil((H + 2pH - dH*(kH-1) - 1) / sH) + 1`` (likewise
    ``W_out``), the forward's output size (see :func:`max_pool2d`).

    ``grad_input[n, c].flat[indices[n, c, i, j]] += grad_output[n, c, i, j]``:
    overlapping windows that share a maximum accumulate. Each (n, c) plane
    is accumulated sequentially, so results do not depend on the number of
    threads.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import max_pool2d, max_pool2d_backward
    >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> out, idx = max_pool2d(x, 2, stride=1)
    >>> max_pool2d_backward(np.ones_like(out), idx, x.shape)[0, 0]
    array([[0., 0., 0.],
           [0., 1., 1.],
           [0., 1., 1.]])
    """
    return _max_pool_backward(grad_output, indices, input_shape, 2)


# --------------------------------------------------------------------------
# average pooling
# --------------------------------------------------------------------------

def _avg_options(ceil_mode, count_include_pad, divisor_override):
    ceil_mode = as_bool(ceil_mode, "ceil_mode")
    count_include_pad = as_bool(count_include_pad, "count_include_pad")
    if divisor_override is None:
        divisor = 0  # the kernels' "no override"
    else:
        divisor = as_int(divisor_override, "divisor_override")
        if divisor <= 0:
            raise ValueError(
                f"divisor_override must be a positive int or None, got {divisor_override!r}"
            )
    return ceil_mode, count_include_pad, divisor


def _avg_pool(x, kernel_size, stride, padding, ceil_mode, count_include_pad,
              divisor_override, nd):
    x = check_activation(x, "x", nd)
    k, s, p, _ = _window(nd, kernel_size, stride, padding)
    ceil_mode, count_include_pad, divisor = _avg_options(ceil_mode, count_include_pad,
                                                         divisor_override)
    out_sizes = _pool_sizes(x.shape[2:], k, s, p, (1,) * nd, ceil_mode, nd, "x", x.shape)
    check_bytes("output", (x.shape[:2] + out_sizes, x.dtype))
    x = kernel_ready(x, "x")
    if nd == 3:
        return _avg_pool3d_forward(x, k, s, p, out_sizes, count_include_pad, divisor)
    kH, kW = _pad2(k, 1)
    sH, sW = _pad2(s, 1)
    pH, pW = _pad2(p, 0)
    H_out, W_out = _pad2(out_sizes, 1)
    out = call(_k.avg_pool2d_forward, to_2d(x), kH, kW, sH, sW, pH, pW, H_out, W_out,
                                count_include_pad, divisor)
    return from_2d(out, nd)


def avg_pool1d(x, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """1-D average pooling (``torch.nn.functional.avg_pool1d``).

    Parameters
    ----------
    x : ndarray, shape (N, C, L)
        float32 or float64; ``L >= 1``, ``N`` and ``C`` may be 0.
    kernel_size : int or (int,)
        Window size ``k >= 1``.
    stride : int or (int,), optional
        Window step ``s >= 1``; ``None`` (default) means ``kernel_size``.
    padding : int or (int,), default 0
        Implicit zero padding on both sides, ``0 <= p <= k // 2``.
    ceil_mode : bool, default False
        Round the output size up instead of down.
    count_include_pad : bool, default True
        Divide by the window size including padding (see Notes).
    divisor_override : int, optional
        A positive divisor used for every window instead. (PyTorch's
        ``avg_pool1d`` lacks this argument; it is offered for symmetry
        with :func:`avg_pool2d`.)

    Returns
    -------
    output : ndarray, shape (N, C, L_out)
        dtype of ``x``.

    Notes
    -----
    ``L_out = floor((L + 2p - k) / s) + 1`` (``ceil`` with ``ceil_mode``,
    dropping a last window that would start in the right padding).

    PyTorch's CPU rule: window ``o`` spans ``[o*s - p, min(o*s - p + k,
    L + p))``; its sum runs over the part inside ``[0, L)``. The divisor is
    ``divisor_override`` if given, else the span length (padding included,
    but not the part beyond the right padding that ``ceil_mode`` adds) if
    ``count_include_pad``, else the number of input elements summed.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import avg_pool1d
    >>> x = np.array([[[1., 2., 3., 4., 5.]]])
    >>> avg_pool1d(x, 2)
    array([[[1.5, 3.5]]])
    >>> avg_pool1d(x, 2, ceil_mode=True)
    array([[[1.5, 3.5, 5. ]]])
    """
    return _avg_pool(x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override, 1)


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """2-D average pooling (``torch.nn.functional.avg_pool2d``).

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
        float32 or float64; ``H, W >= 1``, ``N`` and ``C`` may be 0.
    kernel_size : int or (int, int)
        Window size ``(kH, kW)``, each ``>= 1``.
    stride : int or (int, int), optional
        Window step, each ``>= 1``; ``None`` (default) means ``kernel_size``.
    padding : int or (int, int), default 0
        Implicit zero padding on both sides of each axis,
        ``0 <= p <= k // 2`` per axis.
    ceil_mode : bool, default False
        Round the output size up instead of down.
    count_include_pad : bool, default True
        Divide by the window area including padding (see Notes).
    divisor_override : int, optional
        A positive divisor used for every window instead (PyTorch only
        requires it to be nonzero; here it must be ``>= 1``).

    Returns
    -------
    output : ndarray, shape (N, C, H_out, W_out)
        dtype of ``x``.

    Notes
    -----
    Per axis, ``out = floor((L + 2p - k) / s) + 1`` (``ceil`` with
    ``ceil_mode``, dropping a last window that would start in the right
    padding).

    PyTorch's CPU rule, per axis: window ``o`` spans ``[o*s - p,
    min(o*s - p + k, L + p))``; its sum runs over the part inside
    ``[0, L)``. The divisor is ``divisor_override`` if given, else the
    product of the span lengths (padding included, but not the part beyond
    the right padding that ``ceil_mode`` adds) if ``count_include_pad``,
    else the number of input elements summed. Sums accumulate in float64.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import avg_pool2d
    >>> x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    >>> avg_pool2d(x, 2)[0, 0]
    array([[ 2.5,  4.5],
           [10.5, 12.5]], dtype=float32)
    >>> avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)[0, 0]
    array([[ 2.5,  4. ],
           [ 8.5, 10. ]], dtype=float32)
    """
    return _avg_pool(x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override, 2)


def _avg_pool_backward(grad_output, input_shape, kernel_size, stride, padding, ceil_mode,
                       count_include_pad, divisor_override, nd):
    grad_output = check_activation(grad_output, "grad_output", nd)
    input_shape = as_input_shape(input_shape, nd, grad_output)
    spatial = input_shape[2:]
    k, s, p, _ = _window(nd, kernel_size, stride, padding)
    ceil_mode, count_include_pad, divisor = _avg_options(ceil_mode, count_include_pad,
                                                         divisor_override)
    out_sizes = _pool_sizes(spatial, k, s, p, (1,) * nd, ceil_mode, nd, "input_shape",
                            input_shape)
    expected = tuple(input_shape[:2]) + out_sizes
    if grad_output.shape != expected:
        raise ValueError(
            f"grad_output must have shape {expected} (the avg_pool{nd}d output for "
            f"input_shape={input_shape}, kernel_size={k}, stride={s}, padding={p}, "
            f"ceil_mode={ceil_mode}), got {grad_output.shape}"
        )
    check_bytes("output", (input_shape, grad_output.dtype))
    grad_output = kernel_ready(grad_output, "grad_output")
    if nd == 3:
        return _avg_pool3d_backward(grad_output, input_shape, k, s, p, count_include_pad,
                                    divisor)
    kH, kW = _pad2(k, 1)
    sH, sW = _pad2(s, 1)
    pH, pW = _pad2(p, 0)
    H, W = _pad2(spatial, 1)
    grad_input = call(_k.avg_pool2d_backward, to_2d(grad_output), H, W, kH, kW, sH, sW, pH, pW,
                                        count_include_pad, divisor)
    return from_2d(grad_input, nd)


def avg_pool1d_backward(grad_output, input_shape, kernel_size, *, stride=None, padding=0,
                        ceil_mode=False, count_include_pad=True, divisor_override=None):
    """Gradient of :func:`avg_pool1d` with respect to its input.

    Parameters
    ----------
    grad_output : ndarray, shape (N, C, L_out)
        Gradient with respect to the pooled output (float32 or float64).
    input_shape : tuple of 3 ints
        ``(N, C, L)``, the shape of the pooled input; ``L_out`` must be the
        output size it gives.
    kernel_size
        As given to :func:`avg_pool1d`.
    stride, padding, ceil_mode, count_include_pad, divisor_override : keyword-only
        As given to :func:`avg_pool1d`.

    Returns
    -------
    grad_input : ndarray, shape (N, C, L)
        dtype of ``grad_output``.

    Notes
    -----
    ``L_out = floor_or_ceil((L + 2p - k) / s) + 1``, the forward's output
    length (see :func:`avg_pool1d`).

    The adjoint of :func:`avg_pool1d`: every input element of window ``o``
    receives ``grad_output[..., o] / divisor_o``; overlapping windows
    accumulate.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import avg_pool1d_backward
    >>> avg_pool1d_backward(np.ones((1, 1, 2)), (1, 1, 4), 3, stride=1)
    array([[[0.33333333, 0.66666667, 0.66666667, 0.33333333]]])
    """
    return _avg_pool_backward(grad_output, input_shape, kernel_size, stride, padding,
                              ceil_mode, count_include_pad, divisor_override, 1)


def avg_pool2d_backward(grad_output, input_shape, kernel_size, *, stride=None, padding=0,
                        ceil_mode=False, count_include_pad=True, divisor_override=None):
    """Gradient of :func:`avg_pool2d` with respect to its input.

    Parameters
    ----------
    grad_output : ndarray, shape (N, C, H_out, W_out)
        Gradient with respect to the pooled output (float32 or float64).
    input_shape : tuple of 4 ints
        ``(N, C, H, W)``, the shape of the pooled input; ``(H_out, W_out)``
        must be the output size it gives.
    kernel_size
        As given to :func:`avg_pool2d`.
    stride, padding, ceil_mode, count_include_pad, divisor_override : keyword-only
        As given to :func:`avg_pool2d`.

    Returns
    -------
    grad_input : ndarray, shape (N, C, H, W)
        dtype of ``grad_output``.

    Notes
    -----
    ``H_out = floor_or_ceil((H + 2pH - kH) / sH) + 1`` (likewise ``W_out``),
    the forward's output size (see :func:`avg_pool2d`).

    The adjoint of :func:`avg_pool2d`: every input element of window
    ``(i, j)`` receives ``grad_output[..., i, j] / divisor_ij``; overlapping
    windows accumulate, sequentially within each (n, c) plane.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import avg_pool2d_backward
    >>> avg_pool2d_backward(np.ones((1, 1, 1, 1)), (1, 1, 2, 2), 2)[0, 0]
    array([[0.25, 0.25],
           [0.25, 0.25]])
    """
    return _avg_pool_backward(grad_output, input_shape, kernel_size, stride, padding,
                              ceil_mode, count_include_pad, divisor_override, 2)


# --------------------------------------------------------------------------
# max unpooling
# --------------------------------------------------------------------------

def _unpool_sizes(x, k, s, p, output_size, nd):
    """Output spatial sizes: the default, or a checked ``output_size``."""
    for axis, kk, pp in zip(_DIMS[nd], k, p):
        # The indices come from a max pooling, which allows at most k // 2.
        if pp > kk // 2:
            raise ValueError(
                f"padding={pp} must be at most half of kernel_size={kk} (<= {kk // 2}) "
                f"along axis {axis}, as for the max pooling that produced the indices"
            )
    default = tuple(shapes.unpool_output_size(L, kk, ss, pp)
                    for L, kk, ss, pp in zip(x.shape[2:], k, s, p))
    if output_size is None:
        for axis, size in zip(_DIMS[nd], default):
            if size < 1:
                raise ValueError(
                    f"max_unpool{nd}d output size along axis {axis} would be {size} "
                    f"(x shape {x.shape}, kernel_size={k}, stride={s}, padding={p}, "
                    f"output_size=None: the default (L-1)*stride - 2*padding + kernel_size); "
                    f"expected >= 1"
                )
        return default
    if not isinstance(output_size, (list, tuple)):
        raise TypeError(
            f"output_size must be a sequence of {nd} or {nd + 2} ints or None, "
            f"got {output_size!r}"
        )
    if len(output_size) not in (nd, nd + 2):
        raise ValueError(
            f"output_size must have {nd} entries (spatial sizes) or {nd + 2} (the full "
            f"shape), got {output_size!r}"
        )
    sizes = tuple(as_int(v, "output_size") for v in output_size)
    if len(sizes) == nd + 2:
        check_batch_and_channels(sizes, "output_size", x, "x")
        sizes = sizes[2:]
    for axis, size, dflt, ss in zip(_DIMS[nd], sizes, default, s):
        lo, hi = max(dflt - ss, 0), dflt + ss
        if not lo < size < hi:
            raise ValueError(
                f"output_size={output_size!r} is impossible along axis {axis}: expected "
                f"a size in ({lo}, {hi}) exclusive (default {dflt} = (L-1)*stride - "
                f"2*padding + kernel_size, +- stride={ss}), got {size}"
            )
    return sizes


def _max_unpool(x, indices, kernel_size, stride, padding, output_size, nd):
    x = check_activation(x, "x", nd)
    indices = as_index_array(indices, "indices")
    check_shape_equal(indices, x.shape, "indices", "that of x")
    k, s, p, _ = _window(nd, kernel_size, stride, padding)
    out_sizes = _unpool_sizes(x, k, s, p, output_size, nd)
    check_bytes("output", (x.shape[:2] + out_sizes, x.dtype))
    x, indices = kernel_ready(x, "x"), kernel_ready(indices, "indices")
    size = int(np.prod(out_sizes))
    H_out, W_out = _pad2(out_sizes, 1) if nd < 3 else (1, size)
    out, bad = call(_k.max_unpool2d_forward, _planes(x), _planes(indices), H_out, W_out)
    if bad:
        _raise_bad_index(indices, size, "indices",
                         f"flat positions within one (n, c) plane of the output of spatial "
                         f"size {out_sizes}, "
                         + ("the default of output_size=None" if output_size is None
                            else f"from output_size={output_size!r}"))
    return out.reshape(x.shape[:2] + out_sizes)


def max_unpool1d(x, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Partial inverse of :func:`max_pool1d` (``torch.nn.functional.max_unpool1d``).

    Parameters
    ----------
    x : ndarray, shape (N, C, L)
        Values to place (float32 or float64), e.g. pooled maxima.
    indices : ndarray of int64, shape (N, C, L)
        Target position of each value within its (n, c) output row, each
        in ``[0, L_out)``; typically from :func:`max_pool1d`.
    kernel_size : int or (int,)
    stride : int or (int,), optional
        ``None`` (default) means ``kernel_size``.
    padding : int or (int,), default 0
        ``0 <= p <= k // 2``, as for the pooling.
    output_size : sequence of ints, optional
        ``(L_out,)`` or the full ``(N, C, L_out)``; see Notes.

    Returns
    -------
    output : ndarray, shape (N, C, L_out)
        Zeros except ``output[n, c, indices[n, c, i]] = x[n, c, i]``.

    Notes
    -----
    Default ``L_out = (L - 1)*s - 2p + k``. A given ``output_size`` must
    lie strictly between ``default - s`` and ``default + s`` (as in
    PyTorch), which resolves the sizes that pooling maps to the same
    ``L``. If an index repeats, the last value in order wins.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import max_pool1d, max_unpool1d
    >>> x = np.array([[[1., 3., 2., 5., 4.]]])
    >>> out, idx = max_pool1d(x, 2)
    >>> max_unpool1d(out, idx, 2, output_size=x.shape)
    array([[[0., 3., 0., 5., 0.]]])
    """
    return _max_unpool(x, indices, kernel_size, stride, padding, output_size, 1)


def max_unpool2d(x, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Partial inverse of :func:`max_pool2d` (``torch.nn.functional.max_unpool2d``).

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
        Values to place (float32 or float64), e.g. pooled maxima.
    indices : ndarray of int64, shape (N, C, H, W)
        Target flat position ``h*W_out + w`` of each value within its
        (n, c) output plane, each in ``[0, H_out*W_out)``; typically from
        :func:`max_pool2d`.
    kernel_size : int or (int, int)
    stride : int or (int, int), optional
        ``None`` (default) means ``kernel_size``.
    padding : int or (int, int), default 0
        ``0 <= p <= k // 2`` per axis, as for the pooling (PyTorch does not
        check this).
    output_size : sequence of ints, optional
        ``(H_out, W_out)`` or the full ``(N, C, H_out, W_out)``; see Notes.

    Returns
    -------
    output : ndarray, shape (N, C, H_out, W_out)
        Zeros except ``output[n, c].flat[indices[n, c, i, j]] = x[n, c, i, j]``.

    Notes
    -----
    Default size per axis ``H_out = (H - 1)*sH - 2pH + kH`` (likewise
    ``W_out``). A given ``output_size``
    must lie strictly between ``default - s`` and ``default + s`` per axis
    (as in PyTorch), which resolves the sizes that pooling maps to the same
    input size. If an index repeats within a plane, the last value in
    row-major order wins (overlapping pooling windows can share a
    maximum; their values are then equal anyway).

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import max_pool2d, max_unpool2d
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> out, idx = max_pool2d(x, 2)
    >>> max_unpool2d(out, idx, 2)[0, 0]
    array([[ 0.,  0.,  0.,  0.],
           [ 0.,  5.,  0.,  7.],
           [ 0.,  0.,  0.,  0.],
           [ 0., 13.,  0., 15.]])
    """
    return _max_unpool(x, indices, kernel_size, stride, padding, output_size, 2)


def _max_unpool_backward(grad_output, indices, nd):
    grad_output = check_activation(grad_output, "grad_output", nd)
    indices = as_index_array(indices, "indices")
    check_ndim(indices, "indices", nd + 2, LAYOUT[nd])
    check_batch_and_channels(indices.shape, "indices.shape", grad_output, "grad_output")
    check_bytes("output", (indices.shape, grad_output.dtype))
    grad_output, indices = kernel_ready(grad_output, "grad_output"), kernel_ready(indices, "indices")
    size = int(np.prod(grad_output.shape[2:]))
    grad_input, bad = call(_k.max_unpool2d_backward, _planes(grad_output), _planes(indices))
    if bad:
        _raise_bad_index(indices, size, "indices",
                         f"flat positions within one (n, c) plane of grad_output of shape "
                         f"{grad_output.shape}")
    return grad_input.reshape(indices.shape)


def max_unpool1d_backward(grad_output, indices):
    """Gradient of :func:`max_unpool1d` with respect to ``x``.

    Parameters
    ----------
    grad_output : ndarray, shape (N, C, L_out)
        Gradient with respect to the unpooled output (float32 or float64).
    indices : ndarray of int64, shape (N, C, L)
        The indices given to :func:`max_unpool1d`, each in ``[0, L_out)``.

    Returns
    -------
    grad_x : ndarray, shape (N, C, L)
        ``grad_output[n, c, indices[n, c, i]]`` (0 for an overwritten
        duplicate), dtype of ``grad_output``.

    Notes
    -----
    ``L_out = (L - 1)*s - 2p + k`` by default, or the forward's
    ``output_size``: the forward's output length.

    A gather, as in PyTorch, except where ``indices`` repeat within a plane
    (overlapping pooling windows): the forward keeps the last of the
    duplicates, so only that one receives the gradient and the others get 0.
    PyTorch's backward gives every duplicate the gradient, which is not the
    derivative of its own forward: through ``max_pool`` then ``max_unpool``
    an input that is the maximum of two windows would get it twice.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import max_unpool1d_backward
    >>> max_unpool1d_backward(np.array([[[0., 10., 20., 30.]]]), np.array([[[1, 3]]]))
    array([[[10., 30.]]])
    """
    return _max_unpool_backward(grad_output, indices, 1)


def max_unpool2d_backward(grad_output, indices):
    """Gradient of :func:`max_unpool2d` with respect to ``x``.

    Parameters
    ----------
    grad_output : ndarray, shape (N, C, H_out, W_out)
        Gradient with respect to the unpooled output (float32 or float64).
    indices : ndarray of int64, shape (N, C, H, W)
        The indices given to :func:`max_unpool2d`, each in
        ``[0, H_out*W_out)``.

    Returns
    -------
    grad_x : ndarray, shape (N, C, H, W)
        ``grad_output[n, c].flat[indices[n, c, i, j]]``, dtype of
        ``grad_output``.

    Notes
    -----
    ``H_out`` is the forward's output size: ``H_out = (H - 1)*sH - 2pH + kH``
    by default (likewise ``W_out``), or its ``output_size``.

    A gather, as in PyTorch, except where ``indices`` repeat within a plane
    (overlapping pooling windows): the forward keeps the last of the
    duplicates, so only that one receives the gradient and the others get 0.
    PyTorch's backward gives every duplicate the gradient, which is not the
    derivative of its own forward: through ``max_pool`` then ``max_unpool``
    an input that is the maximum of two windows would get it twice.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import max_unpool2d_backward
    >>> g = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> max_unpool2d_backward(g, np.array([[[[5, 7], [13, 15]]]]))[0, 0]
    array([[ 5.,  7.],
           [13., 15.]])
    """
    return _max_unpool_backward(grad_output, indices, 2)


# --------------------------------------------------------------------------
# issue 13: the 3-D family
#
# max_pool3d has a plain loop kernel (deconv.kernels.pool3d). Its backward
# and max unpooling move values between flat positions of a volume, which
# the 2-D kernels do on the (N, C, 1, D*H*W) view (see _planes). Average
# pooling is separable: the divisor is a product of per-axis factors
# (deconv.shapes.avg_pool_divisors) or divisor_override, so the window sums
# are taken by the 2-D kernel over (H, W) and then over D (divisor 1, in
# float64), and divided once.
# --------------------------------------------------------------------------

def _avg3d_divisor(spatial, out_sizes, k, s, p, count_include_pad, divisor):
    """The divisor of every output, (D_out, H_out, W_out) float64, or the override."""
    if divisor > 0:
        return float(divisor)
    fd, fh, fw = (np.array(shapes.avg_pool_divisors(L, o, kk, ss, pp, count_include_pad),
                           dtype=np.float64)
                  for L, o, kk, ss, pp in zip(spatial, out_sizes, k, s, p))
    return fd[:, None, None] * fh[None, :, None] * fw[None, None, :]


def _avg_pool3d_forward(x, k, s, p, out_sizes, count_include_pad, divisor):
    N, C, D, H, W = x.shape
    D_out, H_out, W_out = out_sizes
    # (N, C*D, H_out, W_out): the (H, W) window sums of every depth slice
    sums = call(_k.avg_pool2d_forward, x.astype(np.float64).reshape(N, C * D, H, W),
                k[1], k[2], s[1], s[2], p[1], p[2], H_out, W_out, True, 1)
    # (N*C, 1, D_out, H_out*W_out): then summed over the depth windows
    sums = call(_k.avg_pool2d_forward, sums.reshape(N * C, 1, D, H_out * W_out),
                k[0], 1, s[0], 1, p[0], 0, D_out, H_out * W_out, True, 1)
    div = _avg3d_divisor((D, H, W), out_sizes, k, s, p, count_include_pad, divisor)
    return (sums.reshape(N, C, D_out, H_out, W_out) / div).astype(x.dtype)


def _avg_pool3d_backward(grad_output, input_shape, k, s, p, count_include_pad, divisor):
    N, C, D, H, W = input_shape
    D_out, H_out, W_out = grad_output.shape[2:]
    div = _avg3d_divisor((D, H, W), (D_out, H_out, W_out), k, s, p, count_include_pad, divisor)
    # the adjoints of the two sums, in the reverse order
    g = (grad_output / div).astype(np.float64).reshape(N * C, 1, D_out, H_out * W_out)
    g = call(_k.avg_pool2d_backward, g, D, H_out * W_out, k[0], 1, s[0], 1, p[0], 0, True, 1)
    g = call(_k.avg_pool2d_backward, g.reshape(N, C * D, H_out, W_out), H, W,
             k[1], k[2], s[1], s[2], p[1], p[2], True, 1)
    return g.reshape(input_shape).astype(grad_output.dtype)


def max_pool3d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """3-D max pooling with argmax indices (``torch.nn.functional.max_pool3d``).

    Parameters
    ----------
    x : ndarray, shape (N, C, D, H, W)
        float32 or float64.
    kernel_size : int or (int, int, int)
    stride : int or (int, int, int), optional
        ``None`` (default) means ``kernel_size``.
    padding : int or (int, int, int), default 0
        Implicit ``-inf`` padding, ``0 <= p <= k // 2`` per axis.
    dilation : int or (int, int, int), default 1
    ceil_mode : bool, default False

    Returns
    -------
    output : ndarray, shape (N, C, D_out, H_out, W_out)
    indices : ndarray of int64, shape (N, C, D_out, H_out, W_out)
        Flat position ``(d*H + h)*W + w`` of each maximum within its (n, c)
        volume.

    Notes
    -----
    Per axis ``out = floor((L + 2p - d*(k-1) - 1) / s) + 1`` (``ceil`` with
    ``ceil_mode``, dropping a last window that would start in the right
    padding). Ties and NaN as in :func:`max_pool2d`.

    Examples
    --------
    >>> import numpy as np, deconv
    >>> x = np.arange(8.0).reshape(1, 1, 2, 2, 2)
    >>> out, idx = deconv.max_pool3d(x, 2)
    >>> out.ravel(), idx.ravel()
    (array([7.]), array([7]))
    """
    return _max_pool(x, kernel_size, stride, padding, dilation, ceil_mode, 3)


def max_pool3d_backward(grad_output, indices, input_shape):
    """Gradient of :func:`max_pool3d` with respect to its input.

    Parameters
    ----------
    grad_output : ndarray, shape (N, C, D_out, H_out, W_out)
    indices : ndarray of int64, shape (N, C, D_out, H_out, W_out)
        As returned by :func:`max_pool3d`.
    input_shape : (int, int, int, int, int)
        The forward input's shape ``(N, C, D, H, W)``.

    Returns
    -------
    grad_input : ndarray, shape input_shape

    Notes
    -----
    ``grad_input[n, c].flat[indices[n, c, o]] += grad_output[n, c, o]``;
    the output sizes ``out = floor((L + 2p - d*(k-1) - 1) / s) + 1`` are
    those of :func:`max_pool3d`.

    Examples
    --------
    >>> import numpy as np, deconv
    >>> g = deconv.max_pool3d_backward(np.ones((1, 1, 1, 1, 1)), np.array([[[[[7]]]]]),
    ...                                (1, 1, 2, 2, 2))
    >>> g.ravel()
    array([0., 0., 0., 0., 0., 0., 0., 1.])
    """
    return _max_pool_backward(grad_output, indices, input_shape, 3)


def avg_pool3d(x, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """3-D average pooling (``torch.nn.functional.avg_pool3d``).

    Parameters
    ----------
    x : ndarray, shape (N, C, D, H, W)
    kernel_size : int or (int, int, int)
    stride : int or (int, int, int), optional
        ``None`` (default) means ``kernel_size``.
    padding : int or (int, int, int), default 0
        Zero padding, ``0 <= p <= k // 2``.
    ceil_mode : bool, default False
    count_include_pad : bool, default True
        Count the padding in the divisor.
    divisor_override : int, optional
        A positive divisor for every window instead.

    Returns
    -------
    y : ndarray, shape (N, C, D_out, H_out, W_out), dtype of ``x``

    Notes
    -----
    Per axis ``out = floor((L + 2p - k) / s) + 1`` (``ceil`` with
    ``ceil_mode``). The divisor is the product over the axes of
    :func:`deconv.shapes.avg_pool_divisors` (PyTorch's CPU rule), the
    window sums are taken in float64.

    Examples
    --------
    >>> import numpy as np, deconv
    >>> deconv.avg_pool3d(np.arange(8.0).reshape(1, 1, 2, 2, 2), 2).ravel()
    array([3.5])
    """
    return _avg_pool(x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override, 3)


def avg_pool3d_backward(grad_output, input_shape, kernel_size, *, stride=None, padding=0,
                        ceil_mode=False, count_include_pad=True, divisor_override=None):
    """Gradient of :func:`avg_pool3d` with respect to its input.

    Parameters
    ----------
    grad_output : ndarray, shape (N, C, D_out, H_out, W_out)
    input_shape : (int, int, int, int, int)
        The forward input's shape ``(N, C, D, H, W)``.
    kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
        As given to :func:`avg_pool3d` (all but ``kernel_size`` keyword-only).

    Returns
    -------
    grad_input : ndarray, shape input_shape

    Notes
    -----
    Every input position gets ``grad_output / divisor`` of each window that
    holds it; ``out = floor((L + 2p - k) / s) + 1`` per axis as in
    :func:`avg_pool3d`.

    Examples
    --------
    >>> import numpy as np, deconv
    >>> deconv.avg_pool3d_backward(np.ones((1, 1, 1, 1, 1)), (1, 1, 2, 2, 2), 2).ravel()
    array([0.125, 0.125, 0.125, 0.125, 0.125, 0.125, 0.125, 0.125])
    """
    return _avg_pool_backward(grad_output, input_shape, kernel_size, stride, padding, ceil_mode,
                              count_include_pad, divisor_override, 3)


def max_unpool3d(x, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Partial inverse of :func:`max_pool3d` (``torch.nn.functional.max_unpool3d``).

    Parameters
    ----------
    x : ndarray, shape (N, C, D, H, W)
    indices : ndarray of int64, shape of ``x``
        Flat positions within each (n, c) output volume, as from :func:`max_pool3d`.
    kernel_size, stride, padding : int or (int, int, int)
        Those of the pooling; ``stride=None`` means ``kernel_size``.
    output_size : sequence of 3 or 5 ints, optional
        The spatial output size (default per axis ``(L-1)*s - 2p + k``).

    Returns
    -------
    y : ndarray, shape (N, C, D_out, H_out, W_out)
        Zero but at ``indices`` (the last of repeated indices wins).

    Notes
    -----
    Default ``out = (L-1)*s - 2p + k`` per axis; a given ``output_size``
    must lie within ``stride`` of it.

    Examples
    --------
    >>> import numpy as np, deconv
    >>> y = deconv.max_unpool3d(np.array([[[[[5.0]]]]]), np.array([[[[[7]]]]]), 2)
    >>> y.ravel()
    array([0., 0., 0., 0., 0., 0., 0., 5.])
    """
    return _max_unpool(x, indices, kernel_size, stride, padding, output_size, 3)


def max_unpool3d_backward(grad_output, indices):
    """Gradient of :func:`max_unpool3d` with respect to ``x``.

    Parameters
    ----------
    grad_output : ndarray, shape (N, C, D_out, H_out, W_out)
    indices : ndarray of int64, shape (N, C, D, H, W)
        Those given to the forward.

    Returns
    -------
    grad_input : ndarray, shape of ``indices``
        ``grad_output`` read at ``indices`` (0 for an entry that a later
        repeat of its index overwrote in the forward).

    Notes
    -----
    The output size ``out = (L-1)*s - 2p + k`` (or ``output_size``) is that
    of ``grad_output``.

    Examples
    --------
    >>> import numpy as np, deconv
    >>> g = np.arange(8.0).reshape(1, 1, 2, 2, 2)
    >>> deconv.max_unpool3d_backward(g, np.array([[[[[6]]]]]))
    array([[[[[6.]]]]])
    """
    return _max_unpool_backward(grad_output, indices, 3)


__all__ += ["max_pool3d", "max_pool3d_backward", "avg_pool3d", "avg_pool3d_backward",
            "max_unpool3d", "max_unpool3d_backward"]
