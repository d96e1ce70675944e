"""Nearest, bilinear and trilinear upsampling, pixel shuffle / unshuffle, and their backward passes.

Semantics are those of ``torch.nn.functional.interpolate`` (``mode='nearest'``
and ``mode='bilinear'``, ``recompute_scale_factor`` unset),
``pixel_shuffle`` and ``pixel_unshuffle``, on NCL (1-D) and NCHW (2-D) arrays
of float32 or float64. Every argument is checked here; the Numba kernels in
:mod:`deconv.kernels.upsample` trust what they receive.

Source-index maps
-----------------
Both interpolation modes map every output index ``o`` along an axis to input
indices through a small per-axis table computed here:

* nearest: ATen's ``nearest_idx``, ``floor(o * scale)`` in float32 with its
  ``L_out == L_in`` and ``L_out == 2 L_in`` shortcuts, in 1-D and 2-D, forward
  and backward alike (see :func:`upsample_nearest2d`);
* bilinear: ATen's ``compute_source_index_and_lambda`` in the input's dtype
  (see :func:`upsample_bilinear2d`).

Because a user-given ``scale_factor`` enters the map directly (not only the
output size), the backward functions take it too: pass the forward's
``scale_factor`` to get the gradient of that very forward.
"""

import numpy as np

from deconv.kernels import upsample as _k
from deconv.functional import shapes
from deconv.kernels.threads import call
from deconv.functional.validation import (
    as_bool,
    as_float_array,
    as_input_shape,
    as_positive_int,
    as_scale_factors,
    as_tuple,
    check_activation,
    check_bytes,
    check_ndim,
    check_scaled_size,
    kernel_ready,
)

__all__ = [
    "upsample_nearest1d",
    "upsample_nearest2d",
    "upsample_nearest1d_backward",
    "upsample_nearest2d_backward",
    "upsample_bilinear2d",
    "upsample_bilinear2d_backward",
    "pixel_shuffle",
    "pixel_unshuffle",
    "pixel_shuffle_backward",
    "pixel_unshuffle_backward",
]

_AXIS = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}


# ---------------------------------------------------------------------------
# argument checking
# ---------------------------------------------------------------------------

def _forward_setup(x, size, scale_factor, nd):
    """Validated (x, out_spatial, scale_factors); scale_factors is an nd-tuple or None.

    ``x`` is made kernel-ready last, once the output passed the byte cap."""
    x = check_activation(x, "x", nd)
    if (size is None) == (scale_factor is None):
        raise ValueError(
            f"exactly one of size and scale_factor must be given, got size={size!r} and "
            f"scale_factor={scale_factor!r}"
        )
    scales = None
    if size is not None:
        out = as_tuple(size, nd, "size", minimum=1)
    else:
        scales = as_scale_factors(scale_factor, nd)
        for axis, L, f in zip(_AXIS[nd], x.shape[2:], scales):
            check_scaled_size(L, f, scale_factor, axis)
        out = tuple(shapes.upsample_output_size(L, scale_factor=f)
                    for L, f in zip(x.shape[2:], scales))
        for axis, L, f, o in zip(_AXIS[nd], x.shape[2:], scales, out):
            if o < 1:
                raise ValueError(
                    f"scale_factor={scale_factor!r} gives output size floor({L} * {f}) = {o} "
                    f"along {axis}; expected >= 1"
                )
    check_bytes("output", (x.shape[:2] + out, x.dtype))
    return kernel_ready(x, "x"), out, scales


def _backward_setup(grad_output, input_shape, scale_factor, nd):
    """Validated (grad_output, input_spatial, scale_factors or None)."""
    grad_output = check_activation(grad_output, "grad_output", nd)
    in_sp = as_input_shape(input_shape, nd, grad_output)[2:]
    scales = None
    if scale_factor is not None:
        scales = as_scale_factors(scale_factor, nd)
        for axis, L, f, o in zip(_AXIS[nd], in_sp, scales, grad_output.shape[2:]):
            check_scaled_size(L, f, scale_factor, axis, "input_shape")
            expected = shapes.upsample_output_size(L, scale_factor=f)
            if expected != o:
                raise ValueError(
                    f"input_shape={tuple(input_shape)!r} with scale_factor={scale_factor!r} gives "
                    f"output size floor({L} * {f}) = {expected} along {axis}, but grad_output has "
                    f"shape {grad_output.shape}"
                )
    check_bytes("output", (grad_output.shape[:2] + in_sp, grad_output.dtype))
    return kernel_ready(grad_output, "grad_output"), in_sp, scales


# ---------------------------------------------------------------------------
# index / weight tables (one small array per axis)
# ---------------------------------------------------------------------------

def _nearest_source(in_size, out_size, scale_factor):
    """The input index copied by each output index, (out_size,) int64.

    ATen's ``nearest_idx``: out == in copies and out == 2*in halves, even
    when a ``scale_factor`` such as 1.1 says otherwise; else
    ``min(floor(o * scale), in - 1)`` in float32 whatever the data dtype.
    """
    dst = np.arange(out_size, dtype=np.int64)
    if out_size == in_size:
        return dst
    if out_size == 2 * in_size:
        return dst >> 1
    if scale_factor is not None:
        scale = np.float32(1.0 / scale_factor)
    else:
        scale = np.float32(in_size) / np.float32(out_size)
    src = np.floor(dst.astype(np.float32) * scale).astype(np.int64)
    return np.minimum(src, in_size - 1)


def _linear_source(in_size, out_size, align_corners, scale_factor, dtype):
    """ATen's ``compute_source_index_and_lambda``: (i0, i1, l0, l1), each (out_size,)."""
    T = dtype.type
    dst = np.arange(out_size, dtype=np.int64)
    if out_size == in_size:
        # ATen copies when the sizes agree, whatever scale_factor says.
        ones = np.ones(out_size, dtype=dtype)
        return dst, dst.copy(), ones, np.zeros(out_size, dtype=dtype)
    if align_corners:
        scale = T(in_size - 1) / T(out_size - 1) if out_size > 1 else T(0)
        src = scale * dst.astype(dtype)
    else:
        scale = T(1.0 / scale_factor) if scale_factor is not None else T(in_size) / T(out_size)
        src = scale * (dst.astype(dtype) + T(0.5)) - T(0.5)
        src = np.maximum(src, T(0))
    # ATen floors with floorf, i.e. after rounding to float32 even for double;
    # the clip then absorbs a source index rounded up to the next integer.
    i0 = np.minimum(np.floor(src.astype(np.float32)).astype(np.int64), in_size - 1)
    l1 = np.clip(src - i0.astype(dtype), T(0), T(1)).astype(dtype)
    l0 = (T(1) - l1).astype(dtype)
    i1 = i0 + (i0 < in_size - 1)
    return i0, i1, l0, l1


def _starts(src, in_size):
    """CSR offsets of a non-decreasing map ``src``, (in_size + 1,) int64.

    The outputs with ``src == i`` are ``start[i] <= o < start[i + 1]``.
    """
    return np.searchsorted(src, np.arange(in_size + 1), side="left").astype(np.int64)


def _planes(a, nd):
    """(N, C, L) or (N, C, H, W) contiguous -> (N*C, H, W) view (H = 1 for 1-D)."""
    n, c = a.shape[:2]
    spatial = (1,) + a.shape[2:] if nd == 1 else a.shape[2:]
    return a.reshape((n * c,) + spatial)


# ---------------------------------------------------------------------------
# nearest
# ---------------------------------------------------------------------------

def _nearest(x, size, scale_factor, nd):
    x, out_sp, scales = _forward_setup(x, size, scale_factor, nd)
    scales = scales or (None,) * nd
    in_sp = x.shape[2:]
    y = np.empty(x.shape[:2] + out_sp, dtype=x.dtype)
    if y.size:   # (no tables for an empty batch: size may be up to 2**31 - 1)
        maps = [_nearest_source(L, o, f) for L, o, f in zip(in_sp, out_sp, scales)]
        if nd == 1:
            maps = [np.zeros(1, dtype=np.int64)] + maps
        call(_k.nearest_forward, _planes(x, nd), maps[0], maps[1], _planes(y, nd))
    return y


def _nearest_backward(grad_output, input_shape, scale_factor, nd):
    g, in_sp, scales = _backward_setup(grad_output, input_shape, scale_factor, nd)
    scales = scales or (None,) * nd
    out_sp = g.shape[2:]
    gi = np.empty(g.shape[:2] + in_sp, dtype=g.dtype)
    if gi.size:
        # The forward's own map, so that the result is its exact adjoint.
        starts = [_starts(_nearest_source(L, o, f), L) for L, o, f in zip(in_sp, out_sp, scales)]
        if nd == 1:
            starts = [np.array([0, 1], dtype=np.int64)] + starts
        call(_k.nearest_backward, _planes(g, nd), starts[0], starts[1], _planes(gi, nd))
    return gi


def upsample_nearest1d(x, size=None, scale_factor=None):
    """Nearest-neighbour upsampling of NCL signals, as ``F.interpolate(mode='nearest')``.

    Parameters
    ----------
    x : ndarray, shape (N, C, L_in)
        float32 or float64.
    size : int or (int,), optional
        Output length ``L_out``.
    scale_factor : float or (float,), optional
        Positive multiplier for the length. Give exactly one of ``size`` and
        ``scale_factor``.

    Returns
    -------
    y : ndarray, shape (N, C, L_out), dtype of ``x``

    Notes
    -----
    ``L_out = size``, or ``L_out = floor(L_in * scale_factor)`` (Python float
    arithmetic); it must be at least 1. Output ``o`` copies input

    ``src(o) = min(floor(o * scale), L_in - 1)``, computed in float32,

    with ``scale = float32(1 / scale_factor)`` when ``scale_factor`` is given
    (used as is, as PyTorch does without ``recompute_scale_factor``) and
    ``float32(L_in) / float32(L_out)`` otherwise.

    except that ``L_out == L_in`` copies and ``L_out == 2 * L_in`` halves
    (``src(o) = o // 2``) whatever ``scale_factor`` is: ATen's
    ``nearest_idx``, the same map as :func:`upsample_nearest2d` and both
    backwards. PyTorch's 1-D CPU *forward* skips these two shortcuts, so for
    e.g. ``L_in = 5, scale_factor = 1.1`` it copies inputs ``0, 0, 1, 2, 3``
    while its backward treats the op as a copy: PyTorch's forward and
    backward disagree there. deconv copies ``0, 1, 2, 3, 4`` and its
    backward is the exact adjoint.

    Examples
    --------
    >>> import numpy as np, deconv
    >>> x = np.array([[[1.0, 2.0, 3.0]]])
    >>> deconv.upsample_nearest1d(x, scale_factor=2)
    array([[[1., 1., 2., 2., 3., 3.]]])
    >>> deconv.upsample_nearest1d(x, size=4)
    array([[[1., 1., 2., 3.]]])
    """
    return _nearest(x, size, scale_factor, 1)


def upsample_nearest2d(x, size=None, scale_factor=None):
    """Nearest-neighbour upsampling of NCHW images, as ``F.interpolate(mode='nearest')``.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
        float32 or float64.
    size : int or (int, int), optional
        Output size ``(H_out, W_out)``; an int is used for both.
    scale_factor : float or (float, float), optional
        Positive multipliers for ``(H, W)``. Give exactly one of ``size`` and
        ``scale_factor``.

    Returns
    -------
    y : ndarray, shape (N, C, H_out, W_out), dtype of ``x``

    Notes
    -----
    Per axis, ``L_out = size`` or ``floor(L_in * scale_factor)`` (Python
    float arithmetic), at least 1, and output ``o`` copies input ``src(o)``,
    PyTorch's ``nearest_idx``:

    * ``src(o) = o`` if ``L_out == L_in``;
    * ``src(o) = o // 2`` if ``L_out == 2 * L_in``;
    * else ``src(o) = min(floor(o * scale), L_in - 1)`` computed in float32,
      with ``scale = float32(1 / scale_factor)`` when ``scale_factor`` is
      given (used as is, as PyTorch does without ``recompute_scale_factor``)
      and ``float32(L_in) / float32(L_out)`` otherwise.

    The shortcuts apply whatever ``scale_factor`` is (``L_in = 5,
    scale_factor = 1.1`` is a copy). This is PyTorch's 2-D CPU forward for
    ``H_out + W_out <= 128`` and its backward; for larger outputs PyTorch's
    forward switches to a kernel without the shortcuts (and with float64
    arithmetic for float64 data), which differs only for such scale factors
    (and in rare float64 cases).

    Examples
    --------
    >>> import numpy as np, deconv
    >>> x = np.arange(4, dtype=np.float32).reshape(1, 1, 2, 2)
    >>> deconv.upsample_nearest2d(x, scale_factor=2)[0, 0]
    array([[0., 0., 1., 1.],
           [0., 0., 1., 1.],
           [2., 2., 3., 3.],
           [2., 2., 3., 3.]], dtype=float32)
    """
    return _nearest(x, size, scale_factor, 2)


def upsample_nearest1d_backward(grad_output, input_shape, *, scale_factor=None):
    """Gradient of :func:`upsample_nearest1d` with respect to its input.

    Parameters
    ----------
    grad_output : ndarray, shape (N, C, L_out)
    input_shape : (int, int, int)
        The forward input's shape ``(N, C, L_in)``.
    scale_factor : float or (float,), optional, keyword-only
        The forward's ``scale_factor``; ``None`` if it was called with ``size``.

    Returns
    -------
    grad_input : ndarray, shape (N, C, L_in), dtype of ``grad_output``

    Notes
    -----
    ``grad_input[..., i]`` is the sum of ``grad_output[..., o]`` over the
    outputs ``o`` with ``src(o) = i`` (0 if none), with the forward's map
    ``src`` (see :func:`upsample_nearest1d`): the exact adjoint. The map
    depends on ``scale_factor`` itself, not only on the sizes, so pass the
    forward's ``scale_factor`` (``None`` if it was given ``size``); when it
    is given, ``L_out`` (from ``grad_output``) must equal
    ``floor(L_in * scale_factor)``.

    This equals PyTorch's 1-D CPU backward; unlike PyTorch's, it is also the
    gradient of the forward for scale factors such as 1.1 that hit the
    ``L_out == L_in`` / ``2 L_in`` shortcuts (see :func:`upsample_nearest1d`).

    Examples
    --------
    >>> import numpy as np, deconv
    >>> g = np.ones((1, 1, 5))
    >>> deconv.upsample_nearest1d_backward(g, (1, 1, 3), scale_factor=1.7)
    array([[[2., 2., 1.]]])
    """
    return _nearest_backward(grad_output, input_shape, scale_factor, 1)


def upsample_nearest2d_backward(grad_output, input_shape, *, scale_factor=None):
    """Gradient of :func:`upsample_nearest2d` with respect to its input.

    Parameters
    ----------
    grad_output : ndarray, shape (N, C, H_out, W_out)
    input_shape : (int, int, int, int)
        The forward input's shape ``(N, C, H, W)``.
    scale_factor : float or (float, float), optional, keyword-only
        The forward's ``scale_factor``; ``None`` if it was called with ``size``.

    Returns
    -------
    grad_input : ndarray, shape (N, C, H, W), dtype of ``grad_output``

    Notes
    -----
    ``H_out = size`` or ``floor(H * scale_factor)`` (likewise ``W_out``), the
    forward's output size.

    ``grad_input[..., ih, iw]`` is the sum of ``grad_output[..., oh, ow]``
    over the outputs with ``src_h(oh) = ih`` and ``src_w(ow) = iw`` (0 if
    none), with the forward's maps (see :func:`upsample_nearest2d`): the
    exact adjoint, and PyTorch's backward. The maps depend on
    ``scale_factor`` itself, not only on the sizes, so pass the forward's
    ``scale_factor`` (``None`` if it was given ``size``); when it is given,
    the output size (from ``grad_output``) must equal
    ``floor(L_in * scale_factor)`` along each axis.

    Examples
    --------
    >>> import numpy as np, deconv
    >>> g = np.ones((1, 1, 4, 4), dtype=np.float32)
    >>> deconv.upsample_nearest2d_backward(g, (1, 1, 2, 2), scale_factor=2)[0, 0]
    array([[4., 4.],
           [4., 4.]], dtype=float32)
    """
    return _nearest_backward(grad_output, input_shape, scale_factor, 2)


# ---------------------------------------------------------------------------
# bilinear
# ---------------------------------------------------------------------------

def _bilinear_tables(in_sp, out_sp, align_corners, scales, dtype):
    scales = scales or (None, None)
    return [
        _linear_source(L, o, align_corners, f, dtype) for L, o, f in zip(in_sp, out_sp, scales)
    ]


def upsample_bilinear2d(x, size=None, scale_factor=None, align_corners=False):
    """Bilinear upsampling of NCHW images, as ``F.interpolate(mode='bilinear')``.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
        float32 or float64.
    size : int or (int, int), optional
        Output size ``(H_out, W_out)``; an int is used for both.
    scale_factor : float or (float, float), optional
        Positive multipliers for ``(H, W)``. Give exactly one of ``size`` and
        ``scale_factor``.
    align_corners : bool
        If True, the centres of the corner pixels of input and output
        coincide; if False (default), their outer edges do.

    Returns
    -------
    y : ndarray, shape (N, C, H_out, W_out), dtype of ``x``

    Notes
    -----
    Output size: ``size``, or ``floor(L_in * scale_factor)`` (at least 1).
    Along each axis (PyTorch's ``area_pixel_compute_scale`` and
    ``compute_source_index_and_lambda``), with arithmetic in the input's dtype:

    * ``align_corners=True``: ``scale = (L_in - 1) / (L_out - 1)`` (0 if
      ``L_out == 1``) and ``src(o) = scale * o``;
    * ``align_corners=False``: ``scale = 1/scale_factor`` if given, else
      ``L_in / L_out``, and ``src(o) = max(scale * (o + 0.5) - 0.5, 0)``;
    * ``i0 = min(floor(src), L_in - 1)``, ``i1 = i0 + 1`` (``i0`` at the last
      input), ``l1 = clip(src - i0, 0, 1)``, ``l0 = 1 - l1``;
    * if ``L_out == L_in`` the axis is copied (``i0 = i1 = o``, ``l0 = 1``)
      whatever ``scale_factor`` is.

    ``y[oh, ow] = sum_{a, b in {0, 1}} lh_a(oh) lw_b(ow) x[ih_a(oh), iw_b(ow)]``.
    NaN and inf spread to every output that touches them, even with weight 0.
    PyTorch's compiled kernel may fuse ``scale * (o + 0.5) - 0.5`` into one
    multiply-add (it does on AVX2/AVX-512 builds), so its weights can differ
    from these by one rounding of the source coordinate.

    Examples
    --------
    >>> import numpy as np, deconv
    >>> x = np.array([[[[0.0, 1.0]]]])
    >>> deconv.upsample_bilinear2d(x, size=(1, 4))
    array([[[[0.  , 0.25, 0.75, 1.  ]]]])
    >>> deconv.upsample_bilinear2d(x, size=(1, 4), align_corners=True).round(4)
    array([[[[0.    , 0.3333, 0.6667, 1.    ]]]])
    """
    align_corners = as_bool(align_corners, "align_corners")
    x, out_sp, scales = _forward_setup(x, size, scale_factor, 2)
    y = np.empty(x.shape[:2] + out_sp, dtype=x.dtype)
    if y.size:
        (h0, h1, lh0, lh1), (w0, w1, lw0, lw1) = _bilinear_tables(
            x.shape[2:], out_sp, align_corners, scales, x.dtype)
        row_used = np.zeros(x.shape[2], dtype=np.bool_)
        row_used[h0] = True
        row_used[h1] = True
        call(_k.bilinear_forward, _planes(x, 2), h0, h1, lh0, lh1, w0, w1, lw0, lw1, row_used,
                            _planes(y, 2))
    return y


def upsample_bilinear2d_backward(grad_output, input_shape, *, scale_factor=None,
                                 align_corners=False):
    """Gradient of :func:`upsample_bilinear2d` with respect to its input.

    Parameters
    ----------
    grad_output : ndarray, shape (N, C, H_out, W_out)
    input_shape : (int, int, int, int)
        The forward input's shape ``(N, C, H, W)``.
    scale_factor : float or (float, float), optional, keyword-only
        The forward's ``scale_factor`` (``None`` if it was called with
        ``size``): without ``align_corners`` it sets the interpolation
        weights, not only the output size.
    align_corners : bool, keyword-only
        As in the forward.

    Returns
    -------
    grad_input : ndarray, shape (N, C, H, W), dtype of ``grad_output``

    Notes
    -----
    ``H_out = size`` or ``floor(H * scale_factor)`` (likewise ``W_out``), the
    forward's output size.

    The exact adjoint of the forward's linear map (see
    :func:`upsample_bilinear2d` for the indices and weights):
    ``grad_input[ih_a(oh), iw_b(ow)] += lh_a(oh) lw_b(ow) grad_output[oh, ow]``,
    evaluated as a gather in a fixed order. When ``scale_factor`` is given,
    ``grad_output`` must have the size ``floor(L_in * scale_factor)``.

    Examples
    --------
    >>> import numpy as np, deconv
    >>> g = np.ones((1, 1, 1, 4))
    >>> deconv.upsample_bilinear2d_backward(g, (1, 1, 1, 2))
    array([[[[2., 2.]]]])
    """
    align_corners = as_bool(align_corners, "align_corners")
    g, in_sp, scales = _backward_setup(grad_output, input_shape, scale_factor, 2)
    gi = np.empty(g.shape[:2] + in_sp, dtype=g.dtype)
    if gi.size:
        (h0, h1, lh0, lh1), (w0, w1, lw0, lw1) = _bilinear_tables(
            in_sp, g.shape[2:], align_corners, scales, g.dtype)
        W = in_sp[1]
        call(_k.bilinear_backward, 
            _planes(g, 2), h0, h1, lh0, lh1,
            _starts(w0, W), _starts(w1, W), lw0, lw1,
            _planes(gi, 2),
        )
    return gi


# ---------------------------------------------------------------------------
# pixel shuffle
# ---------------------------------------------------------------------------

def _shuffle_input(x, name, layout):
    x = as_float_array(x, name)
    check_ndim(x, name, 4, layout)
    return x


def _check_shuffle_channels(x, name, r, factor_name):
    if x.shape[1] % (r * r) != 0:
        raise ValueError(
            f"{name} has {x.shape[1]} channels, which is not divisible by "
            f"{factor_name}**2 = {r * r} ({factor_name}={r}); expected shape (N, C*{r * r}, H, W)"
        )


def _check_unshuffle_spatial(x, name, r, factor_name):
    H, W = x.shape[2:]
    if H % r or W % r:
        raise ValueError(
            f"{name} has spatial size ({H}, {W}), which is not divisible by {factor_name}={r}; "
            f"expected shape (N, C, H*{r}, W*{r})"
        )


def _shuffle(x, r, name):
    """pixel_shuffle of a checked ``x``: the cap, the copy if needed, the kernel."""
    n, crr, h, w = x.shape
    check_bytes("output", ((n, crr // (r * r), h * r, w * r), x.dtype))
    x = kernel_ready(x, name)
    out = np.empty((n, crr // (r * r), h * r, w * r), dtype=x.dtype)
    if out.size:
        call(_k.pixel_shuffle, x, r, out)
    return out


def _unshuffle(x, r, name):
    """pixel_unshuffle of a checked ``x``: the cap, the copy if needed, the kernel."""
    n, c, hr, wr = x.shape
    check_bytes("output", ((n, c * r * r, hr // r, wr // r), x.dtype))
    x = kernel_ready(x, name)
    out = np.empty((n, c * r * r, hr // r, wr // r), dtype=x.dtype)
    if out.size:
        call(_k.pixel_unshuffle, x, r, out)
    return out


def pixel_shuffle(x, upscale_factor):
    """Rearrange channels into space, as ``F.pixel_shuffle``.

    Parameters
    ----------
    x : ndarray, shape (N, C*r*r, H, W)
        float32 or float64; ``r = upscale_factor``.
    upscale_factor : int
        ``r >= 1``.

    Returns
    -------
    y : ndarray, shape (N, C, H*r, W*r), dtype of ``x``

    Notes
    -----
    ``y[n, c, h*r + i, w*r + j] = x[n, c*r*r + i*r + j, h, w]`` (Shi et al.,
    "Real-Time Single Image and Video Super-Resolution Using an Efficient
    Sub-Pixel Convolutional Neural Network", 2016). A permutation: its
    inverse and adjoint is :func:`pixel_unshuffle`.

    Examples
    --------
    >>> import numpy as np, deconv
    >>> x = np.arange(4.0).reshape(1, 4, 1, 1)
    >>> deconv.pixel_shuffle(x, 2)[0, 0]
    array([[0., 1.],
           [2., 3.]])
    """
    r = as_positive_int(upscale_factor, "upscale_factor")
    x = _shuffle_input(x, "x", "(N, C*r*r, H, W)")
    _check_shuffle_channels(x, "x", r, "upscale_factor")
    return _shuffle(x, r, "x")


def pixel_unshuffle(x, downscale_factor):
    """Rearrange space into channels, as ``F.pixel_unshuffle`` (inverse of :func:`pixel_shuffle`).

    Parameters
    ----------
    x : ndarray, shape (N, C, H*r, W*r)
        float32 or float64; ``r = downscale_factor``.
    downscale_factor : int
        ``r >= 1``; both spatial sizes must be divisible by it.

    Returns
    -------
    y : ndarray, shape (N, C*r*r, H, W), dtype of ``x``

    Notes
    -----
    ``y[n, c*r*r + i*r + j, h, w] = x[n, c, h*r + i, w*r + j]``.

    Examples
    --------
    >>> import numpy as np, deconv
    >>> x = np.arange(4.0).reshape(1, 1, 2, 2)
    >>> deconv.pixel_unshuffle(x, 2).ravel()
    array([0., 1., 2., 3.])
    """
    r = as_positive_int(downscale_factor, "downscale_factor")
    x = _shuffle_input(x, "x", "(N, C, H*r, W*r)")
    _check_unshuffle_spatial(x, "x", r, "downscale_factor")
    return _unshuffle(x, r, "x")


def pixel_shuffle_backward(grad_output, upscale_factor):
    """Gradient of :func:`pixel_shuffle` with respect to its input.

    Parameters
    ----------
    grad_output : ndarray, shape (N, C, H*r, W*r)
    upscale_factor : int
        The forward's ``r``.

    Returns
    -------
    grad_input : ndarray, shape (N, C*r*r, H, W), dtype of ``grad_output``

    Notes
    -----
    A permutation's adjoint is its inverse: this is
    ``pixel_unshuffle(grad_output, upscale_factor)``.

    Examples
    --------
    >>> import numpy as np, deconv
    >>> g = np.arange(4.0).reshape(1, 1, 2, 2)
    >>> deconv.pixel_shuffle_backward(g, 2).shape
    (1, 4, 1, 1)
    """
    r = as_positive_int(upscale_factor, "upscale_factor")
    g = _shuffle_input(grad_output, "grad_output", "(N, C, H*r, W*r)")
    _check_unshuffle_spatial(g, "grad_output", r, "upscale_factor")
    return _unshuffle(g, r, "grad_output")


def pixel_unshuffle_backward(grad_output, downscale_factor):
    """Gradient of :func:`pixel_unshuffle` with respect to its input.

    Parameters
    ----------
    grad_output : ndarray, shape (N, C*r*r, H, W)
    downscale_factor : int
        The forward's ``r``.

    Returns
    -------
    grad_input : ndarray, shape (N, C, H*r, W*r), dtype of ``grad_output``

    Notes
    -----
    ``pixel_shuffle(grad_output, downscale_factor)``, the inverse (and
    adjoint) of the forward permutation.

    Examples
    --------
    >>> import numpy as np, deconv
    >>> g = np.arange(4.0).reshape(1, 4, 1, 1)
    >>> deconv.pixel_unshuffle_backward(g, 2)[0, 0]
    array([[0., 1.],
           [2., 3.]])
    """
    r = as_positive_int(downscale_factor, "downscale_factor")
    g = _shuffle_input(grad_output, "grad_output", "(N, C*r*r, H, W)")
    _check_shuffle_channels(g, "grad_output", r, "downscale_factor")
    return _shuffle(g, r, "grad_output")


# ---------------------------------------------------------------------------
# issue 13: the 3-D family
#
# Both modes are separable: the per-axis tables above are applied by the 2-D
# kernels, first over (H, W) on every depth slice, (N*C*D, H, W), then over
# D on the (N*C, D, H_out*W_out) view with the identity along its second
# axis. The backwards run the adjoint passes in the reverse order.
# ---------------------------------------------------------------------------

def _identity_linear(size, dtype):
    """The linear tables (i0, i1, l0, l1) of an axis that is copied."""
    keep = np.arange(size, dtype=np.int64)
    return keep, keep.copy(), np.ones(size, dtype=dtype), np.zeros(size, dtype=dtype)


def _volume_views(a, lead):
    """(N, C, D, H, W) -> the (N*C*D, H, W) slices (``lead='slices'``) or the
    (N*C, D, H*W) depth columns (``lead='depth'``), views of a contiguous array."""
    n, c, d, h, w = a.shape
    if lead == "slices":
        return a.reshape(n * c * d, h, w)
    return a.reshape(n * c, d, h * w)


def upsample_nearest3d(x, size=None, scale_factor=None):
    """Nearest-neighbour upsampling of NCDHW volumes, as ``F.interpolate(mode='nearest')``.

    Parameters
    ----------
    x : ndarray, shape (N, C, D, H, W)
        float32 or float64.
    size : int or (int, int, int), optional
    scale_factor : float or (float, float, float), optional
        Give exactly one of ``size`` and ``scale_factor``.

    Returns
    -------
    y : ndarray, shape (N, C, D_out, H_out, W_out), dtype of ``x``

    Notes
    -----
    Per axis ``out = size`` or ``out = floor(L * scale_factor)``; output
    ``o`` copies input ``src(o)`` as in :func:`upsample_nearest2d` (ATen's
    ``nearest_idx``).

    Examples
    --------
    >>> import numpy as np, deconv
    >>> y = deconv.upsample_nearest3d(np.arange(2.0).reshape(1, 1, 2, 1, 1), scale_factor=2)
    >>> y.shape, y[0, 0, :, 0, 0]
    ((1, 1, 4, 2, 2), array([0., 0., 1., 1.]))
    """
    x, out_sp, scales = _forward_setup(x, size, scale_factor, 3)
    scales = scales or (None,) * 3
    N, C, D, H, W = x.shape
    D_out, H_out, W_out = out_sp
    y = np.empty((N, C) + out_sp, dtype=x.dtype)
    if y.size:
        src_d, src_h, src_w = (_nearest_source(L, o, f)
                               for L, o, f in zip(x.shape[2:], out_sp, scales))
        # (N, C, D, H_out, W_out)
        slices = np.empty((N, C, D, H_out, W_out), dtype=x.dtype)
        call(_k.nearest_forward, _volume_views(x, "slices"), src_h, src_w,
             _volume_views(slices, "slices"))
        call(_k.nearest_forward, _volume_views(slices, "depth"), src_d,
             np.arange(H_out * W_out, dtype=np.int64), _volume_views(y, "depth"))
    return y


def upsample_nearest3d_backward(grad_output, input_shape, *, scale_factor=None):
    """Gradient of :func:`upsample_nearest3d` with respect to its input.

    Parameters
    ----------
    grad_output : ndarray, shape (N, C, D_out, H_out, W_out)
    input_shape : (int, int, int, int, int)
        The forward input's shape.
    scale_factor : float or (float, float, float), optional, keyword-only
        The forward's ``scale_factor`` (None if it was given ``size``).

    Returns
    -------
    grad_input : ndarray, shape input_shape
        Each input gets the sum of ``grad_output`` over the outputs copying it.

    Notes
    -----
    ``out = floor(L * scale_factor)`` (or the forward's ``size``) per axis
    is the shape of ``grad_output``.

    Examples
    --------
    >>> import numpy as np, deconv
    >>> deconv.upsample_nearest3d_backward(np.ones((1, 1, 2, 2, 2)), (1, 1, 1, 1, 1))
    array([[[[[8.]]]]])
    """
    g, in_sp, scales = _backward_setup(grad_output, input_shape, scale_factor, 3)
    scales = scales or (None,) * 3
    N, C, D_out, H_out, W_out = g.shape
    D, H, W = in_sp
    gi = np.empty((N, C) + in_sp, dtype=g.dtype)
    if gi.size:
        start_d, start_h, start_w = (_starts(_nearest_source(L, o, f), L)
                                     for L, o, f in zip(in_sp, g.shape[2:], scales))
        # (N, C, D, H_out, W_out)
        depth = np.empty((N, C, D, H_out, W_out), dtype=g.dtype)
        call(_k.nearest_backward, _volume_views(g, "depth"), start_d,
             np.arange(H_out * W_out + 1, dtype=np.int64), _volume_views(depth, "depth"))
        call(_k.nearest_backward, _volume_views(depth, "slices"), start_h, start_w,
             _volume_views(gi, "slices"))
    return gi


def upsample_trilinear3d(x, size=None, scale_factor=None, align_corners=False):
    """Trilinear upsampling of NCDHW volumes, as ``F.interpolate(mode='trilinear')``.

    Parameters
    ----------
    x : ndarray, shape (N, C, D, H, W)
        float32 or float64.
    size : int or (int, int, int), optional
    scale_factor : float or (float, float, float), optional
        Give exactly one of ``size`` and ``scale_factor``.
    align_corners : bool

    Returns
    -------
    y : ndarray, shape (N, C, D_out, H_out, W_out), dtype of ``x``

    Notes
    -----
    Per axis ``out = size`` or ``out = floor(L * scale_factor)``, and the
    source indices and weights of :func:`upsample_bilinear2d` along each of
    D, H and W: ``y[od, oh, ow] = sum_{a, b, c in {0, 1}} ld_a(od) lh_b(oh)
    lw_c(ow) x[id_a(od), ih_b(oh), iw_c(ow)]``, computed as a bilinear pass
    over (H, W) and then a linear pass over D (the float32 result is
    rounded once more than PyTorch's).

    Examples
    --------
    >>> import numpy as np, deconv
    >>> x = np.array([0.0, 1.0]).reshape(1, 1, 2, 1, 1)
    >>> deconv.upsample_trilinear3d(x, size=(4, 1, 1))[0, 0, :, 0, 0]
    array([0.  , 0.25, 0.75, 1.  ])
    """
    align_corners = as_bool(align_corners, "align_corners")
    x, out_sp, scales = _forward_setup(x, size, scale_factor, 3)
    scales = scales or (None,) * 3
    N, C, D, H, W = x.shape
    D_out, H_out, W_out = out_sp
    y = np.empty((N, C) + out_sp, dtype=x.dtype)
    if y.size:
        (d0, d1, ld0, ld1), (h0, h1, lh0, lh1), (w0, w1, lw0, lw1) = (
            _linear_source(L, o, align_corners, f, x.dtype)
            for L, o, f in zip(x.shape[2:], out_sp, scales))
        row_used = np.zeros(H, dtype=np.bool_)
        row_used[h0] = True
        row_used[h1] = True
        # (N, C, D, H_out, W_out)
        slices = np.empty((N, C, D, H_out, W_out), dtype=x.dtype)
        call(_k.bilinear_forward, _volume_views(x, "slices"), h0, h1, lh0, lh1, w0, w1, lw0, lw1,
             row_used, _volume_views(slices, "slices"))
        depth_used = np.zeros(D, dtype=np.bool_)
        depth_used[d0] = True
        depth_used[d1] = True
        call(_k.bilinear_forward, _volume_views(slices, "depth"), d0, d1, ld0, ld1,
             *_identity_linear(H_out * W_out, x.dtype), depth_used, _volume_views(y, "depth"))
    return y


def upsample_trilinear3d_backward(grad_output, input_shape, *, scale_factor=None,
                                  align_corners=False):
    """Gradient of :func:`upsample_trilinear3d` with respect to its input.

    Parameters
    ----------
    grad_output : ndarray, shape (N, C, D_out, H_out, W_out)
    input_shape : (int, int, int, int, int)
        The forward input's shape.
    scale_factor : float or (float, float, float), optional, keyword-only
        The forward's ``scale_factor`` (None if it was given ``size``).
    align_corners : bool, keyword-only

    Returns
    -------
    grad_input : ndarray, shape input_shape

    Notes
    -----
    The adjoint of the forward's two passes, in the reverse order;
    ``out = floor(L * scale_factor)`` (or the forward's ``size``) per axis
    is the shape of ``grad_output``.

    Examples
    --------
    >>> import numpy as np, deconv
    >>> deconv.upsample_trilinear3d_backward(np.ones((1, 1, 4, 1, 1)), (1, 1, 2, 1, 1)).ravel()
    array([2., 2.])
    """
    align_corners = as_bool(align_corners, "align_corners")
    g, in_sp, scales = _backward_setup(grad_output, input_shape, scale_factor, 3)
    scales = scales or (None,) * 3
    N, C, D_out, H_out, W_out = g.shape
    D, H, W = in_sp
    gi = np.empty((N, C) + in_sp, dtype=g.dtype)
    if gi.size:
        (d0, d1, ld0, ld1), (h0, h1, lh0, lh1), (w0, w1, lw0, lw1) = (
            _linear_source(L, o, align_corners, f, g.dtype)
            for L, o, f in zip(in_sp, g.shape[2:], scales))
        keep0, keep1, one, zero = _identity_linear(H_out * W_out, g.dtype)
        # (N, C, D, H_out, W_out)
        depth = np.empty((N, C, D, H_out, W_out), dtype=g.dtype)
        call(_k.bilinear_backward, _volume_views(g, "depth"), d0, d1, ld0, ld1,
             _starts(keep0, H_out * W_out), _starts(keep1, H_out * W_out), one, zero,
             _volume_views(depth, "depth"))
        call(_k.bilinear_backward, _volume_views(depth, "slices"), h0, h1, lh0, lh1,
             _starts(w0, W), _starts(w1, W), lw0, lw1, _volume_views(gi, "slices"))
    return gi


__all__ += ["upsample_nearest3d", "upsample_nearest3d_backward",
            "upsample_trilinear3d", "upsample_trilinear3d_backward"]
