"""``interpolate`` in every mode of ``torch.nn.functional.interpolate``, and its backward.

Modes, on ``(N, C, L)``, ``(N, C, H, W)`` and ``(N, C, D, H, W)`` arrays of
float32 or float64:

* ``'nearest'``: :func:`deconv.upsample_nearest1d` / ``2d`` (1-D, 2-D), and
  the same ATen ``nearest_idx`` map per axis in 3-D;
* ``'nearest-exact'``: ``src(o) = min(floor((o + 0.5) * scale), L_in - 1)``;
* ``'linear'`` (3-D x), ``'bilinear'`` (4-D, :func:`deconv.upsample_bilinear2d`),
  ``'trilinear'`` (5-D): ATen's ``compute_source_index_and_lambda`` per axis;
* ``'bicubic'`` (4-D): Keys' cubic convolution with ``A = -0.75`` on the
  four inputs around the source coordinate, their indices clamped to the
  border (PyTorch's ``upsample_bicubic2d``);
* ``'area'``: adaptive average pooling to the output size
  (:func:`deconv.adaptive_avg_pool1d` / ``2d`` / ``3d``);
* ``antialias=True`` (bilinear and bicubic, 4-D): PyTorch's separable
  antialiased filters, whose support is widened by the downsampling factor.

All but nearest 1-D / 2-D, bilinear and area are applied here as one
sparse linear map per axis (CSR tables of taps) by the single kernel of
:mod:`deconv.kernels.interpolate`; the backward applies the transposed
tables of the very same taps, so it is the forward's exact adjoint.

Every argument is checked before any work and raises ``TypeError`` or
``ValueError`` naming it (PyTorch's ``NotImplementedError`` for a mode and
an input rank that do not go together is a ``ValueError`` naming ``mode``).
"""

import math

import numpy as np

from deconv.functional import adaptive as _adaptive
from deconv.functional import shapes
from deconv.functional import upsampling as _up
from deconv.functional.validation import (
    LAYOUT,
    as_bool,
    as_choice,
    as_float_array,
    as_input_shape,
    as_scale_factors,
    as_tuple,
    check_activation,
    check_bytes,
    check_ndim,
    check_scaled_size,
    kernel_ready,
)
from deconv.kernels import interpolate as _k
from deconv.kernels.threads import call

__all__ = ["interpolate", "interpolate_backward"]

MODES = ("nearest", "linear", "bilinear", "bicubic", "trilinear", "area", "nearest-exact")
# the modes that exist for one input rank only (x.ndim)
_MODE_NDIM = {"linear": 3, "bilinear": 4, "bicubic": 4, "trilinear": 5}
INTERPOLATING = ("linear", "bilinear", "bicubic", "trilinear")
_AXES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}
CUBIC_A = -0.75           # upsample_bicubic2d's cubic convolution parameter
CUBIC_A_ANTIALIAS = -0.5  # its antialiased filter's (PIL's)


# ---------------------------------------------------------------------------
# argument checking
# ---------------------------------------------------------------------------

def check_options(mode, align_corners, recompute_scale_factor, antialias, size=None):
    """Validated (mode, align_corners as a bool, recompute as a bool, antialias): the
    checks that need no array (nn.Upsample runs them at construction)."""
    mode = as_choice(mode, "mode", MODES)
    if mode in INTERPOLATING:
        align_corners = False if align_corners is None else as_bool(align_corners, "align_corners")
    elif align_corners is not None:
        raise ValueError(
            f"align_corners can only be set with the interpolating modes linear, bilinear, "
            f"bicubic and trilinear, got mode={mode!r} and align_corners={align_corners!r}")
    recompute = (False if recompute_scale_factor is None
                 else as_bool(recompute_scale_factor, "recompute_scale_factor"))
    antialias = as_bool(antialias, "antialias")
    if recompute and size is not None:
        raise ValueError(
            f"recompute_scale_factor=True is not meaningful with an explicit size "
            f"(size={size!r}); give scale_factor or leave recompute_scale_factor unset")
    return mode, bool(align_corners), recompute, antialias


def _ranked(value, name, mode):
    """A float array of the rank ``mode`` takes (3, 4 or 5 for the others), spatial
    sizes >= 1; and its number of spatial axes."""
    array = as_float_array(value, name)
    want = _MODE_NDIM.get(mode)
    if want is not None and array.ndim != want:
        try:
            check_ndim(array, name, want, LAYOUT[want - 2])
        except ValueError as err:
            raise ValueError(f"mode={mode!r} needs a {want}-D {name}: {err}") from None
    if array.ndim < 3:
        check_ndim(array, name, 3, LAYOUT[1])       # the hint for an unbatched (C, L)
    if array.ndim > 5:
        raise ValueError(
            f"{name} must be 3-D {LAYOUT[1]}, 4-D {LAYOUT[2]} or 5-D {LAYOUT[3]}, got shape "
            f"{array.shape}")
    nd = array.ndim - 2
    return check_activation(array, name, nd), nd


def _backward_rank(input_shape, mode):
    """The number of spatial axes, which ``input_shape`` fixes for the backward."""
    if not isinstance(input_shape, (list, tuple)) or len(input_shape) not in (3, 4, 5):
        raise ValueError(
            f"input_shape must be a sequence of 3, 4 or 5 ints {LAYOUT[1]}, {LAYOUT[2]} or "
            f"{LAYOUT[3]}, got {input_shape!r}")
    want = _MODE_NDIM.get(mode)
    if want is not None and len(input_shape) != want:
        raise ValueError(
            f"mode={mode!r} needs a {want}-D input {LAYOUT[want - 2]}, got "
            f"input_shape={tuple(input_shape)!r}")
    return len(input_shape) - 2


def _check_antialias(mode, antialias):
    if antialias and mode not in ("bilinear", "bicubic"):
        raise ValueError(
            f"antialias=True is only for mode='bilinear' and mode='bicubic', got mode={mode!r}")


def _geometry(in_sp, size, scale_factor, mode, recompute, source):
    """(out_spatial, scales or None): PyTorch's size / scale_factor rule.

    ``scales`` are the factors that enter the index maps; they are None when
    ``size`` is given or when the output size is recomputed from the scale
    factor (``recompute_scale_factor=True``, and always for ``'area'``).
    """
    nd = len(in_sp)
    if (size is None) == (scale_factor is None):
        raise ValueError(
            f"exactly one of size and scale_factor must be given, got size={size!r} and "
            f"scale_factor={scale_factor!r}")
    if size is not None:
        return as_tuple(size, nd, "size", minimum=1), None
    scales = as_scale_factors(scale_factor, nd)
    for axis, L, f in zip(_AXES[nd], in_sp, scales):
        check_scaled_size(L, f, scale_factor, axis, source)
    out = tuple(shapes.upsample_output_size(L, scale_factor=f) for L, f in zip(in_sp, scales))
    for axis, L, f, o in zip(_AXES[nd], in_sp, scales, out):
        if o < 1:
            raise ValueError(
                f"scale_factor={scale_factor!r} gives output size floor({L} * {f}) = {o} "
                f"along {axis}; expected >= 1")
    if recompute or mode == "area":
        scales = None
    return out, scales


# ---------------------------------------------------------------------------
# per-axis taps: (dst, src, weight) arrays sorted by dst
# ---------------------------------------------------------------------------

def _area_pixel_scale(in_size, out_size, align_corners, scale_factor, T):
    """ATen's ``area_pixel_compute_scale`` in the dtype ``T``."""
    if align_corners:
        return T(in_size - 1) / T(out_size - 1) if out_size > 1 else T(0)
    if scale_factor is not None:
        return T(1.0 / scale_factor)
    return T(in_size) / T(out_size)


def _nearest_taps(in_size, out_size, scale_factor, dtype):
    dst = np.arange(out_size, dtype=np.int64)
    return dst, _up._nearest_source(in_size, out_size, scale_factor), np.ones(out_size, dtype)


def _nearest_exact_taps(in_size, out_size, scale_factor, dtype):
    # ATen: floorf((o + 0.5) * scale) with scale a float32 and the product a double
    scale = np.float64(_area_pixel_scale(in_size, out_size, False, scale_factor, np.float32))
    dst = np.arange(out_size, dtype=np.int64)
    src = np.floor(((dst + 0.5) * scale).astype(np.float32)).astype(np.int64)
    return dst, np.minimum(src, in_size - 1), np.ones(out_size, dtype)


def _linear_taps(in_size, out_size, align_corners, scale_factor, dtype):
    i0, i1, l0, l1 = _up._linear_source(in_size, out_size, align_corners, scale_factor, dtype)
    dst = np.repeat(np.arange(out_size, dtype=np.int64), 2)
    return dst, np.stack([i0, i1], 1).ravel(), np.stack([l0, l1], 1).ravel()


def _cubic_weights(t, a):
    """Keys' cubic convolution weights of the four taps at offsets -1, 0, 1, 2 from floor."""
    def near(s):        # |s| <= 1
        return ((a + 2) * s - (a + 3)) * s * s + 1

    def far(s):         # 1 < |s| < 2
        return ((a * s - 5 * a) * s + 8 * a) * s - 4 * a

    return np.stack([far(t + 1), near(t), near(1 - t), far(2 - t)], 1)


def _cubic_taps(in_size, out_size, align_corners, scale_factor, dtype):
    T = dtype.type
    scale = _area_pixel_scale(in_size, out_size, align_corners, scale_factor, T)
    dst = np.arange(out_size, dtype=np.int64)
    if align_corners:
        real = scale * dst.astype(dtype)
    else:
        real = scale * (dst.astype(dtype) + T(0.5)) - T(0.5)    # not clamped at 0, unlike linear
    # ATen's guard_index_and_lambda: floorf, then the clamps
    i0 = np.minimum(np.floor(real.astype(np.float32)).astype(np.int64), in_size - 1)
    t = np.clip(real - i0.astype(dtype), T(0), T(1)).astype(dtype)
    weights = _cubic_weights(t, T(CUBIC_A)).astype(dtype)
    src = np.clip(i0[:, None] + np.arange(-1, 3), 0, in_size - 1)
    return np.repeat(dst, 4), src.ravel(), weights.ravel()


def _antialias_taps(in_size, out_size, align_corners, scale_factor, dtype, cubic):
    """PyTorch's ``_compute_weights_aa``: a filter stretched by the downsampling factor,
    normalised to sum 1 over the inputs it covers (in float64, then rounded to ``dtype``)."""
    if in_size == out_size:
        # PyTorch's separable antialiased forward leaves an axis of unchanged size alone
        return _nearest_taps(in_size, out_size, None, dtype)
    interp_size = 4 if cubic else 2
    scale = float(_area_pixel_scale(in_size, out_size, align_corners, scale_factor, np.float64))
    stretched = scale >= 1.0
    support = interp_size * 0.5 * (scale if stretched else 1.0)
    invscale = 1.0 / scale if stretched else 1.0
    max_taps = int(math.ceil(support)) * 2 + 1
    dst, src, wts = [], [], []
    for o in range(out_size):
        center = scale * (o + 0.5)
        lo = max(int(center - support + 0.5), 0)
        n = min(max(min(int(center + support + 0.5), in_size) - lo, 0), max_taps)
        s = (np.arange(lo, lo + n) - center + 0.5) * invscale
        w = _aa_filter(s, cubic)
        total = w.sum()
        if total != 0.0:
            w = w / total
        dst += [o] * n
        src += range(lo, lo + n)
        wts.append(w)
    weights = np.concatenate(wts) if wts else np.zeros(0)
    return (np.array(dst, dtype=np.int64), np.array(src, dtype=np.int64),
            weights.astype(dtype))


def _aa_filter(s, cubic):
    s = np.abs(s)
    if not cubic:
        return np.maximum(1.0 - s, 0.0)
    a = CUBIC_A_ANTIALIAS
    near = ((a + 2) * s - (a + 3)) * s * s + 1
    far = ((a * s - 5 * a) * s + 8 * a) * s - 4 * a
    return np.where(s < 1.0, near, np.where(s < 2.0, far, 0.0))


def _taps(mode, antialias, in_size, out_size, align_corners, scale_factor, dtype):
    if antialias:
        return _antialias_taps(in_size, out_size, align_corners, scale_factor, dtype,
                               cubic=(mode == "bicubic"))
    if mode == "nearest":
        return _nearest_taps(in_size, out_size, scale_factor, dtype)
    if mode == "nearest-exact":
        return _nearest_exact_taps(in_size, out_size, scale_factor, dtype)
    if mode == "bicubic":
        return _cubic_taps(in_size, out_size, align_corners, scale_factor, dtype)
    return _linear_taps(in_size, out_size, align_corners, scale_factor, dtype)


def _csr(rows, cols, weights, n_rows):
    """(starts, cols, weights) of the taps grouped by ``rows`` (stable: the tap order is kept)."""
    order = np.argsort(rows, kind="stable")
    starts = np.searchsorted(rows[order], np.arange(n_rows + 1), side="left").astype(np.int64)
    return starts, np.ascontiguousarray(cols[order]), np.ascontiguousarray(weights[order])


def _axis_order(in_sp, out_sp):
    """Axes in the order the forward resamples them: shrinking ones first, so that no
    intermediate array is larger than both the input and the output; ties last axis first."""
    return sorted(range(len(in_sp)), key=lambda k: (out_sp[k] / in_sp[k], -k))


def _resample(a, axis, starts, src, weights, new_size):
    """Apply one axis's CSR map to ``a`` (N, C, *spatial), contiguous; a new array."""
    k = 2 + axis
    A = int(np.prod(a.shape[:k]))
    B = int(np.prod(a.shape[k + 1:]))
    out = np.empty(a.shape[:k] + (new_size,) + a.shape[k + 1:], dtype=a.dtype)
    if out.size:
        call(_k.resample_axis, a.reshape(A, a.shape[k], B), starts, src, weights,
             out.reshape(A, new_size, B))
    return out


def _separable(a, in_sp, out_sp, mode, antialias, align_corners, scales, backward):
    """Forward (in_sp -> out_sp on ``a``) or its adjoint (out_sp -> in_sp on ``a``)."""
    nd = len(in_sp)
    if a.shape[0] * a.shape[1] == 0:
        # no tables for an empty batch: the sizes may be up to 2**31 - 1
        return np.empty(a.shape[:2] + tuple(in_sp if backward else out_sp), dtype=a.dtype)
    scales = scales or (None,) * nd
    order = _axis_order(in_sp, out_sp)
    if backward:
        order = order[::-1]
    for axis in order:
        L, o = in_sp[axis], out_sp[axis]
        dst, src, w = _taps(mode, antialias, L, o, align_corners, scales[axis], a.dtype)
        if backward:
            a = _resample(a, axis, *_csr(src, dst, w, L), L)
        else:
            a = _resample(a, axis, *_csr(dst, src, w, o), o)
    return a


def _check_intermediates(shape, in_sp, out_sp, dtype):
    """The byte cap on every array the separable passes allocate."""
    sp = list(in_sp)
    for axis in _axis_order(in_sp, out_sp):
        sp[axis] = out_sp[axis]
        check_bytes("output", (tuple(shape[:2]) + tuple(sp), dtype))


def _uses_separable(mode, antialias, nd):
    if antialias:
        return True
    if mode == "nearest":
        return nd == 3
    return mode not in ("bilinear", "area")


# ---------------------------------------------------------------------------
# public
# ---------------------------------------------------------------------------

def interpolate(x, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    """Resample the spatial axes of ``x``, as ``torch.nn.functional.interpolate``.

    Parameters
    ----------
    x : ndarray, shape (N, C, L), (N, C, H, W) or (N, C, D, H, W)
        float32 or float64.
    size : int or tuple of ints, optional
        Output spatial size; an int is used for every axis.
    scale_factor : float or tuple of floats, optional
        Positive multipliers of the spatial sizes. Give exactly one of
        ``size`` and ``scale_factor``.
    mode : {'nearest', 'nearest-exact', 'linear', 'bilinear', 'bicubic', 'trilinear', 'area'}
        'linear' needs a 3-D ``x``, 'bilinear' and 'bicubic' 4-D, 'trilinear'
        5-D; the others take any of the three.
    align_corners : bool, optional
        For the interpolating modes (linear, bilinear, bicubic, trilinear)
        only, where None means False: if True, the centres of the corner
        pixels of input and output coincide, else their outer edges do.
    recompute_scale_factor : bool, optional
        If True, the output size is computed from ``scale_factor`` and the
        index maps use ``L_in / L_out`` (as if ``size`` had been given); if
        None or False, a given ``scale_factor`` enters the maps as is.
        Not allowed (True) together with ``size``.
    antialias : bool, default False
        For 'bilinear' and 'bicubic': when downsampling, widen the filter by
        the downsampling factor (PyTorch's and PIL's antialiasing).

    Returns
    -------
    y : ndarray, shape (N, C, *spatial_out), dtype of ``x``

    Notes
    -----
    Per axis, ``out = size`` or ``out = floor(L_in * scale_factor)`` (Python
    float arithmetic), at least 1. With ``scale = 1 / scale_factor`` when the
    factor is used (see ``recompute_scale_factor``), else ``L_in / out``
    (``(L_in - 1) / (out - 1)`` with ``align_corners=True``), output ``o``
    reads:

    * nearest: ``min(floor(o * scale), L_in - 1)`` in float32, except that
      ``out == L_in`` copies and ``out == 2 L_in`` halves (ATen's
      ``nearest_idx``; see :func:`deconv.upsample_nearest2d`);
    * nearest-exact: ``min(floor((o + 0.5) * scale), L_in - 1)``;
    * linear / bilinear / trilinear: ``src = max(scale * (o + 0.5) - 0.5, 0)``
      (``scale * o`` with ``align_corners``), the two inputs ``floor(src)``
      and the next one, weights ``1 - t`` and ``t``, ``t = src - floor(src)``
      (see :func:`deconv.upsample_bilinear2d`); per axis, multiplied;
    * bicubic: ``src = scale * (o + 0.5) - 0.5`` (not clamped), the inputs
      ``floor(src) - 1 .. floor(src) + 2`` clamped to ``[0, L_in - 1]``,
      weights of Keys' cubic convolution with ``A = -0.75`` at distance
      ``t + 1, t, 1 - t, 2 - t``;
    * area: ``adaptive_avg_pool{1,2,3}d(x, out)``: the mean over
      ``[floor(o L_in / out), ceil((o + 1) L_in / out))`` (always with
      the recomputed size, as PyTorch);
    * antialias: output ``o`` weighs the inputs ``i`` with
      ``|i + 0.5 - scale (o + 0.5)| < support``, ``support = s * max(scale, 1)``
      (``s`` = 1 bilinear, 2 bicubic), with the triangle (bilinear) or the
      cubic convolution with ``A = -0.5`` (bicubic) at
      ``(i + 0.5 - scale (o + 0.5)) / max(scale, 1)``, normalised to sum 1;
      an axis whose size does not change is left alone.

    Examples
    --------
    >>> import numpy as np, deconv
    >>> x = np.array([[[0.0, 1.0, 2.0, 3.0]]])
    >>> deconv.interpolate(x, scale_factor=0.5, mode='nearest-exact')
    array([[[1., 3.]]])
    >>> deconv.interpolate(x, size=2, mode='area')
    array([[[0.5, 2.5]]])
    >>> deconv.interpolate(x, size=7, mode='linear', align_corners=True)
    array([[[0. , 0.5, 1. , 1.5, 2. , 2.5, 3. ]]])
    """
    mode, align_corners, recompute, antialias = check_options(
        mode, align_corners, recompute_scale_factor, antialias, size)
    _check_antialias(mode, antialias)
    x, nd = _ranked(x, "x", mode)
    out_sp, scales = _geometry(x.shape[2:], size, scale_factor, mode, recompute, "x")
    if mode == "area":
        return getattr(_adaptive, f"adaptive_avg_pool{nd}d")(x, out_sp)
    if mode == "bilinear" and not antialias:
        if scales is None:
            return _up.upsample_bilinear2d(x, size=out_sp, align_corners=align_corners)
        return _up.upsample_bilinear2d(x, scale_factor=scales, align_corners=align_corners)
    if mode == "nearest" and nd < 3:
        fwd = _up.upsample_nearest1d if nd == 1 else _up.upsample_nearest2d
        return fwd(x, size=out_sp) if scales is None else fwd(x, scale_factor=scales)
    _check_intermediates(x.shape, x.shape[2:], out_sp, x.dtype)
    x = kernel_ready(x, "x")
    return _separable(x, x.shape[2:], out_sp, mode, antialias, align_corners, scales, False)


def interpolate_backward(grad_output, input_shape, *, size=None, scale_factor=None,
                         mode="nearest", align_corners=None, recompute_scale_factor=None,
                         antialias=False):
    """Gradient of :func:`interpolate` with respect to its input.

    Parameters
    ----------
    grad_output : ndarray, shape (N, C, *spatial_out)
    input_shape : tuple of ints
        The forward input's shape ``(N, C, *spatial)``.
    size, scale_factor, mode, align_corners, recompute_scale_factor, antialias : keyword-only
        As given to the forward: ``scale_factor`` enters the index maps, not
        only the output size.

    Returns
    -------
    grad_input : ndarray, shape ``input_shape``, dtype of ``grad_output``

    Notes
    -----
    ``out = size`` or ``floor(L_in * scale_factor)`` per axis must be the
    spatial shape of ``grad_output``. The result is the exact adjoint of the
    forward's linear map (see :func:`interpolate`): every output's gradient
    goes back to the inputs it read, times their weights, summed in a fixed
    order. For 'area' it is :func:`deconv.adaptive_avg_pool2d_backward` (or
    1-D / 3-D). PyTorch's antialiased backward resamples an axis of
    unchanged size (for ``scale_factor`` such as 1.1) although its forward
    copies it; deconv's is the gradient of the forward.

    Examples
    --------
    >>> import numpy as np, deconv
    >>> g = np.ones((1, 1, 7))
    >>> deconv.interpolate_backward(g, (1, 1, 4), size=7, mode='linear', align_corners=True)
    array([[[1.5, 2. , 2. , 1.5]]])
    """
    mode, align_corners, recompute, antialias = check_options(
        mode, align_corners, recompute_scale_factor, antialias, size)
    _check_antialias(mode, antialias)
    nd = _backward_rank(input_shape, mode)
    g = as_float_array(grad_output, "grad_output")
    if g.ndim != nd + 2:
        raise ValueError(
            f"grad_output has shape {g.shape}, but input_shape={tuple(input_shape)!r} has "
            f"{nd + 2} axes: expected a {nd + 2}-D grad_output with layout {LAYOUT[nd]}")
    g = check_activation(g, "grad_output", nd)
    in_shape = as_input_shape(input_shape, nd, g)
    in_sp = in_shape[2:]
    out_sp, scales = _geometry(in_sp, size, scale_factor, mode, recompute, "input_shape")
    if out_sp != g.shape[2:]:
        given = f"size={size!r}" if size is not None else f"scale_factor={scale_factor!r}"
        raise ValueError(
            f"input_shape={tuple(input_shape)!r} with {given} gives the output size {out_sp}, "
            f"but grad_output has shape {g.shape}")
    if mode == "area":
        return getattr(_adaptive, f"adaptive_avg_pool{nd}d_backward")(g, in_shape)
    if mode == "bilinear" and not antialias:
        return _up.upsample_bilinear2d_backward(g, in_shape, scale_factor=scales,
                                                align_corners=align_corners)
    if mode == "nearest" and nd < 3:
        bwd = _up.upsample_nearest1d_backward if nd == 1 else _up.upsample_nearest2d_backward
        return bwd(g, in_shape, scale_factor=scales)
    _check_intermediates(in_shape, out_sp, in_sp, g.dtype)
    g = kernel_ready(g, "grad_output")
    return _separable(g, in_sp, out_sp, mode, antialias, align_corners, scales, True)
