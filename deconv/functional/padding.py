"""Padding (``torch.nn.functional.pad``) and its adjoint, 1-3 spatial axes.

Public, validated wrappers around the Numba kernels of
:mod:`deconv.kernels.pad`. ``x`` has layout ``(N, C, L)``, ``(N, C, H, W)``
or ``(N, C, D, H, W)``; float32 and float64 are supported and float32 in
gives float32 out. Inputs are never written to.

The pad tuple is PyTorch's: pairs ``(before, after)`` starting from the
last axis, ``(left, right, top, bottom, front, back)``. Every mode is a
gather through one *source table* per axis (:func:`_source_table`), the
output position ``j`` of an axis reading input position ``u = j - before``
folded back into the input the way the mode says:

==========  ===========================================================
constant    ``u`` if ``0 <= u < L``, else the fill ``value``
reflect     ``u`` mirrored about the first and last positions (no repeat)
replicate   ``u`` clamped to ``[0, L-1]``
circular    ``u`` wrapped with period ``K`` within the kept (uncropped)
            part ``[lo, lo + K)`` of the input
==========  ===========================================================

Every argument a user can get wrong is checked before any work, and raises
``TypeError`` or ``ValueError`` naming the argument, the value and what was
expected; then the output (and the tables) are held to the byte cap, and
only then is the input made contiguous.
"""

import numpy as np

from deconv.functional import shapes
from deconv.functional.validation import (
    LAYOUT,
    as_choice,
    as_fill_value,
    as_float_array,
    as_pad_tuple,
    check_bytes,
    check_shape_equal,
    check_shape_tuple,
    kernel_ready,
)
from deconv.kernels import pad as _k
from deconv.kernels.threads import call

__all__ = ["pad", "pad_backward"]

MODES = ("constant", "reflect", "replicate", "circular")

# axis letters by number of spatial axes (LAYOUT words the 1-D and 2-D ops)
_LAYOUTS = {1: LAYOUT[1], 2: LAYOUT[2], 3: "(N, C, D, H, W)"}
_AXES = {1: ("N", "C", "L"), 2: ("N", "C", "H", "W"), 3: ("N", "C", "D", "H", "W")}
_AXES_BY_NDIM = (3, 4, 5)


# --------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------

def _check_ndim(array, name):
    if array.ndim not in (3, 4, 5):
        raise ValueError(
            f"{name} must be 3-D {_LAYOUTS[1]}, 4-D {_LAYOUTS[2]} or 5-D {_LAYOUTS[3]}, "
            f"got shape {array.shape}"
            + (f"; for a single sample pass {name}[None] (deconv does not accept unbatched "
               f"input)" if array.ndim == 2 else ""))


def _check_spatial(shape, name, ndim):
    if any(size < 1 for size in shape[2:]):
        raise ValueError(f"{name} must have spatial sizes >= 1, got shape {tuple(shape)} "
                         f"(layout {_LAYOUTS[ndim - 2]})")


def _pairs(pad, ndim):
    """``(before, after)`` per axis of an ``ndim``-D array, first axis first (0 for unpadded)."""
    pairs = [(pad[2 * i], pad[2 * i + 1]) for i in range(len(pad) // 2)][::-1]
    return [(0, 0)] * (ndim - len(pairs)) + pairs


def _options(pad, mode, ndim, pad_name):
    """The checked mode and the per-axis ``(before, after)`` pairs."""
    mode = as_choice(mode, "mode", MODES)
    if mode == "constant":
        pad = as_pad_tuple(pad, pad_name, ndim)
    else:
        # as PyTorch: the non-constant modes pad every spatial axis and only those
        pad = as_pad_tuple(pad, pad_name, ndim - 2, exact_pairs=ndim - 2)
    return mode, pad, _pairs(pad, ndim)


def _output_shape(shape, pad, pairs, mode, name, pad_name):
    """The padded shape of an array of shape ``shape`` (the argument ``name``);
    ValueError naming ``pad_name`` for what ``mode`` cannot do."""
    ndim = len(shape)
    axes = _AXES[ndim - 2]
    given = f"{pad_name}={pad!r}"
    out = []
    for axis, (L, (before, after)) in enumerate(zip(shape, pairs)):
        where = f"along axis {axes[axis]} of {name} with shape {tuple(shape)}"
        size = shapes.pad_output_size(L, before, after)
        kept = shapes.pad_kept_size(L, before, after)
        crop = -min(before, 0) - min(after, 0)
        if axis < 2:
            if kept < 0:
                raise ValueError(f"{given} crops {crop} positions {where}, which has only {L}")
        elif size < 1:
            raise ValueError(f"{given} gives an output of size {size} {where}; expected a "
                             f"size >= 1")
        elif mode == "constant" and kept < 0:
            raise ValueError(f"{given} crops {crop} positions {where}, which has only {L}; "
                             f"expected crops that fit in the input")
        elif mode == "reflect" and (before >= L or after >= L):
            raise ValueError(f"{given} asks for a reflection of ({before}, {after}) {where}; "
                             f"reflect padding must be smaller than the size {L} of that axis")
        elif mode == "circular" and (kept < 1 or before > kept or after > kept):
            raise ValueError(f"{given} wraps around more than once {where}: circular "
                             f"padding ({before}, {after}) must be at most the {max(kept, 0)} "
                             f"positions the crops keep")
        out.append(size)
    return tuple(out)


def _source_table(L, before, after, mode):
    """int64 ``(L + before + after,)``: the input position each output position reads (-1: fill)."""
    u = np.arange(shapes.pad_output_size(L, before, after), dtype=np.int64) - before
    if mode == "constant":
        return np.where((u >= 0) & (u < L), u, -1)
    if mode == "reflect":
        u = np.abs(u)
        return np.where(u > L - 1, 2 * (L - 1) - u, u)
    if mode == "replicate":
        return np.clip(u, 0, L - 1)
    lo = max(-before, 0)
    return lo + (u - lo) % shapes.pad_kept_size(L, before, after)


def _leading_inverse(L, before, out_size):
    """int64 ``(L,)``: the output index reading input index ``n`` of a leading axis (-1: none)."""
    j = np.arange(L, dtype=np.int64) + before
    return np.where((j >= 0) & (j < out_size), j, -1)


def _as_5d(shape):
    """``(N, C, *spatial)`` with dummy leading spatial axes of size 1 up to 3 spatial axes."""
    return tuple(shape[:2]) + (1,) * (5 - len(shape)) + tuple(shape[2:])


def _spatial_tables(shape, pairs, mode):
    tables = [_source_table(L, b, a, mode) for L, (b, a) in zip(shape[2:], pairs[2:])]
    return [np.zeros(1, np.int64)] * (3 - len(tables)) + tables


def _table_bytes(shape, out_shape):
    """The (shape, dtype) of the index tables, for the byte cap."""
    return ((sum(shape) + sum(out_shape),), np.int64)


# --------------------------------------------------------------------------
# the ops
# --------------------------------------------------------------------------

def pad(x, pad, mode="constant", value=0.0):
    """Pad (or crop) the trailing axes of ``x`` (``torch.nn.functional.pad``).

    Parameters
    ----------
    x : ndarray, shape (N, C, L), (N, C, H, W) or (N, C, D, H, W)
        float32 or float64; spatial sizes ``>= 1``, ``N`` and ``C`` may be 0.
    pad : sequence of ints
        ``(before, after)`` pairs from the last axis backwards:
        ``(left, right)``, ``(left, right, top, bottom)``, ``(left, right,
        top, bottom, front, back)``. A negative entry crops that side.
        ``'constant'`` takes up to ``2 * x.ndim`` entries (it may also pad
        or crop ``C`` and ``N``); the other modes take exactly two per
        spatial axis.
    mode : {'constant', 'reflect', 'replicate', 'circular'}, default 'constant'
        ``'reflect'`` mirrors about the edge without repeating it (each pad
        smaller than its axis); ``'replicate'`` repeats the edge (any size);
        ``'circular'`` wraps around the part of the axis the crops keep
        (each pad at most that size: no wrapping around more than once).
    value : float, default 0.0
        The fill of ``'constant'`` (NaN and infinities allowed; it must fit
        in the dtype of ``x``). The other modes take no fill: a non-zero
        ``value`` is refused, as in PyTorch.

    Returns
    -------
    out : ndarray, shape (N_out, C_out, *spatial_out)
        dtype of ``x``.

    Raises
    ------
    TypeError, ValueError
        For invalid arguments: an odd or too long ``pad``, a spatial output
        size below 1, a crop longer than the axis, a reflection as long as
        the axis, a circular pad longer than the kept part.

    Notes
    -----
    Per axis ``out = L + before + after``. Output position ``j`` reads
    input position ``u = j - before``: as is when ``0 <= u < L``, else
    ``value`` (constant), ``-u`` or ``2(L-1) - u`` (reflect),
    ``clip(u, 0, L-1)`` (replicate), ``lo + (u - lo) mod K`` (circular,
    ``lo = max(-before, 0)`` and ``K = L - max(-before, 0) - max(-after, 0)``
    the positions the crops keep: with crops, PyTorch wraps the cropped
    axis, and so does this).

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import pad
    >>> x = np.arange(4.0).reshape(1, 1, 4)
    >>> pad(x, (2, 1), mode="reflect")
    array([[[2., 1., 0., 1., 2., 3., 2.]]])
    >>> pad(x, (1, -2), value=9.0)
    array([[[9., 0., 1.]]])
    >>> pad(x, (2, 2), mode="circular")[0, 0]
    array([2., 3., 0., 1., 2., 3., 0., 1.])
    """
    return padded(x, pad, mode, value, "pad")


def padded(x, pad, mode, value, pad_name):
    """:func:`pad`, its pad tuple called ``pad_name`` in the errors (a layer's ``padding``)."""
    x = as_float_array(x, "x")
    _check_ndim(x, "x")
    _check_spatial(x.shape, "x", x.ndim)
    mode, pad_tuple, pairs = _options(pad, mode, x.ndim, pad_name)
    fill = as_fill_value(value, "value", x.dtype.newbyteorder("="))
    if mode != "constant" and fill != 0:
        raise ValueError(f"value={value!r}: padding mode {mode!r} takes no fill value "
                         f"(only mode='constant' does)")
    out_shape = _output_shape(x.shape, pad_tuple, pairs, mode, "x", pad_name)
    check_bytes("output", (out_shape, fill.dtype), _table_bytes(x.shape, out_shape))
    x = kernel_ready(x, "x")
    src_n, src_c = (_source_table(L, b, a, "constant") for L, (b, a) in zip(x.shape[:2], pairs[:2]))
    src_d, src_h, src_w = _spatial_tables(x.shape, pairs, mode)
    out = np.empty(_as_5d(out_shape), dtype=x.dtype)
    call(_k.pad_forward, x.reshape(_as_5d(x.shape)), src_n, src_c, src_d, src_h, src_w,
         fill, out)
    return out.reshape(out_shape)


def pad_backward(grad_output, input_shape, pad, mode="constant"):
    """Gradient of :func:`pad` with respect to its input (its adjoint in ``x``).

    Parameters
    ----------
    grad_output : ndarray, shape (N_out, C_out, *spatial_out)
        Gradient with respect to the padded output (float32 or float64).
    input_shape : tuple of ints
        ``(N, C, *spatial)``, the shape of the padded input (as many axes
        as ``grad_output``).
    pad : sequence of ints
        The forward's ``pad``.
    mode : {'constant', 'reflect', 'replicate', 'circular'}, default 'constant'
        The forward's ``mode`` (the fill value has no gradient with respect
        to ``x``).

    Returns
    -------
    grad_input : ndarray, shape (N, C, *spatial) = input_shape
        dtype of ``grad_output``.

    Notes
    -----
    Per axis ``out = L + before + after``: ``grad_output`` must have the
    forward's output shape. ``grad_input[u] = sum of grad_output[j]`` over
    the output positions ``j`` that read input position ``u`` (see
    :func:`pad`): the border folds back onto the positions it copied,
    the cropped positions and the fill get nothing. Each ``(n, c)`` plane is
    summed in output order by one thread, so results do not depend on the
    number of threads.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import pad_backward
    >>> pad_backward(np.ones((1, 1, 7)), (1, 1, 4), (2, 1), mode="reflect")
    array([[[1., 2., 3., 1.]]])
    >>> pad_backward(np.ones((1, 1, 6)), (1, 1, 4), (1, 1), mode="replicate")
    array([[[2., 1., 1., 2.]]])
    """
    return padded_backward(grad_output, input_shape, pad, mode, "pad")


def padded_backward(grad_output, input_shape, pad, mode, pad_name):
    """:func:`pad_backward`, its pad tuple called ``pad_name`` in the errors."""
    grad_output = as_float_array(grad_output, "grad_output")
    _check_ndim(grad_output, "grad_output")
    # input_shape says how many axes there are; grad_output must agree
    ndim = len(input_shape) if isinstance(input_shape, (list, tuple)) else grad_output.ndim
    if ndim not in _AXES_BY_NDIM:
        ndim = grad_output.ndim
    input_shape = check_shape_tuple(input_shape, ndim, "input_shape", _LAYOUTS[ndim - 2])
    if grad_output.ndim != ndim:
        raise ValueError(f"grad_output must be {ndim}-D like input_shape={input_shape} "
                         f"(layout {_LAYOUTS[ndim - 2]}), got shape {grad_output.shape}")
    _check_spatial(input_shape, "input_shape", ndim)
    mode, pad_tuple, pairs = _options(pad, mode, ndim, pad_name)
    out_shape = _output_shape(input_shape, pad_tuple, pairs, mode, "input_shape", pad_name)
    check_shape_equal(grad_output, out_shape, "grad_output",
                      f"the output of pad for input_shape={input_shape} and "
                      f"{pad_name}={pad_tuple}")
    dtype = grad_output.dtype.newbyteorder("=")
    check_bytes("output", (input_shape, dtype), _table_bytes(input_shape, out_shape))
    grad_output = kernel_ready(grad_output, "grad_output")
    out_n, out_c = (_leading_inverse(L, b, size)
                    for L, (b, _), size in zip(input_shape[:2], pairs[:2], out_shape[:2]))
    src_d, src_h, src_w = _spatial_tables(input_shape, pairs, mode)
    grad_input = np.empty(_as_5d(input_shape), dtype=dtype)
    call(_k.pad_backward, grad_output.reshape(_as_5d(out_shape)), out_n, out_c, src_d, src_h,
         src_w, grad_input)
    return grad_input.reshape(input_shape)
