"""Argument checking shared by every public function.

The Numba kernels trust their inputs; everything a user can get wrong is
caught here, before any work is done, and reported as ``TypeError`` (wrong
kind of thing) or ``ValueError`` (right kind, wrong value) naming the
argument, the value received and what was expected.

Arrays: an ndarray, or any array-like NumPy converts (nested lists and
tuples, memoryviews, objects with ``__array__``), with NumPy's dtype rule;
only float32/float64 data (int64 for indices) is accepted, never cast.
Activations are batched, ``(N, C, ...)``: one given without its batch axis
is refused with the hint to pass ``x[None]``.

Check first, copy last
----------------------
Every check that can run on the object given (its type, dtype, ndim,
shapes, the channel and group counts, the other arguments, the size of the
result) runs before anything is copied or allocated: :func:`as_float_array`
and :func:`check_activation` convert array-likes but never copy an ndarray,
and the ops make their operands C-contiguous with :func:`kernel_ready` only
once every check of the call has passed. A broadcast view of 2**33 elements
with the wrong ndim is thus refused at once, without touching memory.

The byte cap
------------
No op allocates an output, a workspace or a contiguous copy of an input
larger than :func:`max_bytes`; it raises a ValueError that gives the shape
and the size instead (``output of shape (...) would take 32 GiB, over the
cap of 8 GiB``), before allocating, rather than leave it to the operating
system's overcommit. The cap is, in order of precedence:

* the value set by the context manager ``with byte_cap(n): ...`` (bytes;
  ``None`` restores the next rule), process-wide while the block runs;
* the environment variable ``DECONV_MAX_BYTES`` (an integer number of
  bytes), read at each call;
* half of the machine's physical memory (:data:`DEFAULT_MAX_BYTES`;
  8 GiB where the operating system does not tell).
"""

import contextlib
import functools
import inspect
import math
import numbers
import operator
import os

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

# how error messages name the layout of a 1-D or 2-D activation
LAYOUT = {1: "(N, C, L)", 2: "(N, C, H, W)"}
LAYOUT[3] = "(N, C, D, H, W)"  # the adaptive pooling ops (issue 13)


def _describe(value):
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape} and dtype {value.dtype}"
    return repr(value)


def _as_array(value, name, expected):
    """``value`` as an ndarray: an ndarray as is, any other array-like via ``np.asarray``.

    Array-likes are nested lists and tuples, memoryviews and objects with
    ``__array__``; the dtype is NumPy's (a list of Python floats is float64,
    of Python ints int64). ``expected`` words what the op needs, for the
    errors.
    """
    if isinstance(value, np.ndarray):
        return value
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as err:     # ragged nested lists, unconvertible objects
        raise ValueError(
            f"{name} must be {expected}, got a {type(value).__name__} NumPy cannot turn into "
            f"an array ({err})"
        ) from None
    if array.dtype == object:
        raise TypeError(
            f"{name} must be a NumPy array or an array-like (nested lists or tuples of numbers, "
            f"a memoryview, an object with __array__) of {expected}, got {type(value).__name__}"
        )
    return array


def _conversion_hint(name, dtype, wanted):
    if dtype.kind == "c":
        return f"deconv computes on real numbers: pass {name}.real (and the imaginary part separately)"
    return f"convert with np.asarray({name}, dtype={wanted})"


def as_float_array(value, name):
    """Return ``value`` as a float32/float64 ndarray, checked but not copied.

    Lists, tuples, memoryviews and objects with ``__array__`` are converted
    with ``np.asarray`` and follow NumPy's dtype rule (a list of Python
    floats is float64); integer, bool, complex, float16 and object results
    are refused with a TypeError that says how to convert. (A scalar becomes
    a 0-d array, which the op's shape checks then refuse.)

    An ndarray is returned itself, whatever its memory layout, byte order or
    writeability (a broadcast view stays a view): the op checks its shape
    first and makes it contiguous with :func:`kernel_ready` last.
    """
    array = _as_array(value, name, "float32 or float64 numbers")
    if _native(array.dtype) not in FLOAT_DTYPES:
        source = _describe(value) if isinstance(value, np.ndarray) else type(value).__name__
        raise TypeError(
            f"{name} must have dtype float32 or float64, got {array.dtype} ({source}); "
            f"{_conversion_hint(name, array.dtype, 'np.float32')} (or np.float64)"
        )
    return array


def _native(dtype):
    """``dtype`` in the machine's byte order (big-endian '>f4' data are the same numbers)."""
    return dtype.newbyteorder("=") if dtype.kind == "f" else dtype


def kernel_ready(array, name):
    """``array`` as the kernels take it: C-contiguous, writeable, native byte order.

    Call it only after every check of the op has passed. An array already so
    is returned as is (the kernels never write to their inputs); anything
    else (Fortran order, negative strides, views, read-only or big-endian
    arrays) is copied once, after :func:`check_bytes` has accepted the copy's
    size, so that the kernels see one memory layout and compile one
    signature per dtype: Numba types a read-only array differently and would
    compile and cache a second version of every kernel. The shape is kept
    (a 0-d array stays 0-d, unlike ``np.ascontiguousarray``).
    """
    dtype = _native(array.dtype)
    if array.flags.c_contiguous and array.flags.writeable and array.dtype == dtype:
        return array
    check_bytes(f"the contiguous copy of {name}", (array.shape, dtype))
    return np.array(array, dtype=dtype, order="C", copy=True)


def as_index_array(value, name):
    """Return ``value`` as an int64 ndarray (max-pool switches), checked but not copied.

    Array-likes are converted as by :func:`as_float_array`; the result must
    be int64, so a list of Python ints is accepted (NumPy makes it int64)
    while int32 arrays, floats and bools are refused: the indices index
    planes of up to 2**63 elements and are never silently cast. Make it
    contiguous with :func:`kernel_ready` once the op's checks passed.
    """
    array = _as_array(value, name, "int64 indices")
    if array.dtype != np.int64:
        raise TypeError(
            f"{name} must have dtype int64 (as returned by max_pool), got {array.dtype}; "
            f"{_conversion_hint(name, array.dtype, 'np.int64')}"
        )
    return array


# --- the byte cap ---

def _physical_memory_half():
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (ValueError, OSError, AttributeError):   # no sysconf, or a name it lacks
        return 8 * 2**30


#: The cap without override: half of the physical memory (8 GiB if unknown).
DEFAULT_MAX_BYTES = _physical_memory_half()

_cap_override = None


def _as_cap(value, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int number of bytes, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be a number of bytes >= 0, got {value!r}")
    return int(value)


def max_bytes():
    """The largest allocation (bytes) an op may make: see "The byte cap" above."""
    if _cap_override is not None:
        return _cap_override
    env = os.environ.get("DECONV_MAX_BYTES")
    if env is None or env.strip() == "":
        return DEFAULT_MAX_BYTES
    try:
        value = int(env.strip())
    except ValueError:
        raise ValueError(
            f"the environment variable DECONV_MAX_BYTES must be an integer number of bytes, "
            f"got {env!r}"
        ) from None
    return _as_cap(value, "DECONV_MAX_BYTES")


@contextlib.contextmanager
def byte_cap(limit):
    """Within the block, ops refuse allocations over ``limit`` bytes (``None``: no override).

    Process-wide (the override is a module global, not per thread); the
    previous cap is restored on exit.

    Examples
    --------
    >>> import numpy as np, deconv
    >>> from deconv.functional.validation import byte_cap
    >>> with byte_cap(1000):
    ...     deconv.upsample_nearest1d(np.ones((1, 1, 100)), scale_factor=4)
    Traceback (most recent call last):
    ...
    ValueError: output of shape (1, 1, 400) would take 2.98e-06 GiB (3200 bytes), over the cap of 9.31e-07 GiB (1000 bytes) (DECONV_MAX_BYTES, or deconv.functional.validation.byte_cap)
    """
    global _cap_override
    limit = None if limit is None else _as_cap(limit, "limit")
    previous, _cap_override = _cap_override, limit
    try:
        yield limit
    finally:
        _cap_override = previous


def _size(nbytes):
    return f"{nbytes / 2**30:.3g} GiB ({nbytes} bytes)"


def check_bytes(what, *parts):
    """Refuse a call whose ``parts`` (``(shape, dtype)`` pairs) exceed :func:`max_bytes`.

    ``what`` names them (``"output"``, ``"outputs (values, indices)"``); the
    size is computed in Python ints, so it cannot overflow.
    """
    total = sum(math.prod(shape) * np.dtype(dtype).itemsize for shape, dtype in parts)
    cap = max_bytes()
    if total > cap:
        shapes = " and ".join(str(tuple(shape)) for shape, _ in parts)
        raise ValueError(
            f"{what} of shape{'s' if len(parts) > 1 else ''} {shapes} would take "
            f"{_size(total)}, over the cap of {_size(cap)} (DECONV_MAX_BYTES, or "
            f"deconv.functional.validation.byte_cap)"
        )


def _unbatched_hint(name, got_ndim, ndim, layout, what):
    """The hint for an activation given without its batch axis, as PyTorch allows."""
    if got_ndim == ndim - 1 and layout.startswith("(N,"):
        return f"; for a single sample pass {what} (deconv does not accept unbatched input)"
    return ""


def check_ndim(array, name, ndim, layout):
    """``array.ndim == ndim``; the error shows ``layout``.

    A layout that starts with the batch axis ``(N, ...`` marks an activation
    (not a weight): one axis short, it is taken for an unbatched sample and
    the error says to pass ``name[None]``.
    """
    if array.ndim != ndim:
        raise ValueError(
            f"{name} must be {ndim}-D with layout {layout}, got shape {array.shape}"
            + _unbatched_hint(name, array.ndim, ndim, layout, f"{name}[None]")
        )


def check_activation(value, name, nd, layout=None):
    """A float array of layout ``(N, C, *spatial)`` with ``nd`` spatial sizes, each >= 1.

    ``N`` and ``C`` may be 0. ``layout`` words the axes for the errors
    (default: ``LAYOUT[nd]``). Checked, not copied: see :func:`kernel_ready`.
    """
    layout = layout or LAYOUT[nd]
    array = as_float_array(value, name)
    check_ndim(array, name, nd + 2, layout)
    if any(size < 1 for size in array.shape[2:]):
        raise ValueError(
            f"{name} must have spatial sizes >= 1, got shape {array.shape} (layout {layout})"
        )
    return array


def check_batch_and_channels(shape, name, other, other_name):
    """The leading ``(N, C)`` of ``shape`` (a tuple) equals ``other.shape[:2]``."""
    if tuple(shape[:2]) != tuple(other.shape[:2]):
        raise ValueError(
            f"{name}={tuple(shape)!r} is inconsistent with {other_name} of shape "
            f"{other.shape}: expected the same batch and channel sizes (N, C) = "
            f"{other.shape[:2]}"
        )


def check_same_dtype(**arrays):
    """All non-None arrays share one dtype; float32 in gives float32 out."""
    present = {k: v for k, v in arrays.items() if v is not None}
    dtypes = {_native(v.dtype) for v in present.values()}
    if len(dtypes) > 1:
        listing = ", ".join(f"{k}: {v.dtype}" for k, v in present.items())
        raise TypeError(f"arguments must share one dtype, got {listing}")


# Sizes, strides and paddings beyond this describe no array that fits in
# memory; refusing them here keeps them from overflowing the kernels' int64.
MAX_INT_ARGUMENT = 2**31 - 1


def as_int(value, name):
    """An integer argument (Python or NumPy int; bool is rejected), at most 2**31 - 1 in size."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r}")
    value = operator.index(value)
    if abs(value) > MAX_INT_ARGUMENT:
        raise ValueError(f"{name} must be at most {MAX_INT_ARGUMENT} in absolute value, got {value}")
    return value


def as_bool(value, name):
    """A flag: a real bool (0/1 are refused, to catch swapped positional arguments)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {value!r}")
    return bool(value)


def as_tuple(value, n, name, minimum=None):
    """Expand an int or a length-``n`` sequence of ints into an ``n``-tuple.

    A one-element sequence is repeated, as PyTorch does. ``minimum`` (if
    given) is the smallest allowed entry, checked here.
    """
    if isinstance(value, (list, tuple)):
        if len(value) == 1:
            value = tuple(value) * n
        if len(value) != n:
            raise ValueError(f"{name} must be an int or a sequence of {n} ints, got {value!r}")
        out = tuple(as_int(v, name) for v in value)
    else:
        try:
            out = (as_int(value, name),) * n
        except TypeError:
            raise TypeError(
                f"{name} must be an int or a sequence of {n} ints, got {value!r}"
            ) from None
    if minimum is not None and any(v < minimum for v in out):
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return out


def as_positive_int(value, name):
    """An int >= 1 (a factor, a number of groups)."""
    out = as_int(value, name)
    if out < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return out


def as_positive_tuple(value, n, name):
    return as_tuple(value, n, name, minimum=1)


def as_scale_factors(scale_factor, nd):
    """An upsampling ``scale_factor``: a positive finite float, or a sequence of ``nd``
    of them, as an ``nd``-tuple of Python floats."""
    expected = f"a positive finite float or a sequence of {nd} positive finite floats"
    if isinstance(scale_factor, (list, tuple)):
        if len(scale_factor) != nd:
            raise ValueError(f"scale_factor must be {expected}, got {scale_factor!r}")
        items = tuple(scale_factor)
    else:
        items = (scale_factor,) * nd
    out = []
    for v in items:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
            raise TypeError(f"scale_factor must be {expected}, got {scale_factor!r}")
        try:
            f = float(v)
        except OverflowError:       # an int beyond the float range
            raise ValueError(f"scale_factor must be {expected}, got {scale_factor!r}") from None
        if not math.isfinite(f) or f <= 0.0:
            raise ValueError(f"scale_factor must be {expected}, got {scale_factor!r}")
        out.append(f)
    return tuple(out)


def check_scaled_size(input_size, factor, scale_factor, axis, source="x"):
    """``input_size * factor`` (one axis of an upsampling) is a size an int64 kernel can index.

    Refuses products beyond :data:`MAX_INT_ARGUMENT` (``size`` has the same
    bound) before ``floor`` would overflow or meet infinity; ``scale_factor``
    is the argument as the user gave it, for the message, and ``source`` the
    argument that holds ``input_size``.
    """
    product = float(input_size) * factor
    if not product < MAX_INT_ARGUMENT + 1:      # also inf
        raise ValueError(
            f"scale_factor={scale_factor!r} gives output size floor({input_size} * {factor}) "
            f"= {product:.6g} along {axis} of {source}; expected at most {MAX_INT_ARGUMENT}, "
            f"as for size"
        )


def check_shape_tuple(value, ndim, name, layout=None):
    """A shape argument of ``ndim`` non-negative ints; ``layout`` words its axes."""
    if not isinstance(value, (list, tuple)) or len(value) != ndim:
        axes = f" (layout {layout})" if layout else ""
        hint = ""
        if layout and isinstance(value, (list, tuple)):
            hint = _unbatched_hint(name, len(value), ndim, layout, f"(1, *{name})")
        raise ValueError(f"{name} must be a sequence of {ndim} ints, got {value!r}{axes}{hint}")
    out = tuple(as_int(v, name) for v in value)
    if any(v < 0 for v in out):
        raise ValueError(f"{name} must not contain negative sizes, got {value!r}")
    return out


def as_input_shape(value, nd, grad_output, name="input_shape"):
    """The forward input's shape given to a backward: ``(N, C, *spatial)`` with
    ``nd`` spatial sizes >= 1 and the ``(N, C)`` of ``grad_output``."""
    shape = check_shape_tuple(value, nd + 2, name, LAYOUT[nd])
    check_batch_and_channels(shape, name, grad_output, "grad_output")
    if any(size < 1 for size in shape[2:]):
        raise ValueError(f"{name} must have spatial sizes >= 1, got {value!r}")
    return shape


def check_shape_equal(array, expected, name, why=None):
    """``array`` (the argument ``name``) has shape ``expected``; ``why`` says
    where that shape comes from (``"that of grad_output"``)."""
    if tuple(array.shape) != tuple(expected):
        because = f" ({why})" if why else ""
        raise ValueError(f"{name} must have shape {tuple(expected)}{because}, got {array.shape}")


def check_bias(bias, c_out, meaning="C_out"):
    """``bias`` (None or an array) has shape ``(c_out,)``; ``meaning`` says where ``c_out`` comes from.

    A 0-d bias is refused like any other wrong shape (PyTorch refuses it
    too): a scalar does not say how many channels it is meant for.
    """
    if bias is not None and bias.shape != (c_out,):
        zero_d = " (a 0-d array: pass np.full(C_out, value) for one value per channel)" \
            if bias.ndim == 0 else ""
        raise ValueError(
            f"bias must have shape ({c_out},) ({meaning}), got shape {bias.shape}{zero_d}"
        )


def _looks_like_bias(value):
    """None or an array of floats: what a caller mirroring ``conv2d(x, w, b, ...)`` passes."""
    if value is None or isinstance(value, np.ndarray) or hasattr(value, "__array__"):
        return True
    return isinstance(value, (list, tuple)) and any(isinstance(v, float) for v in value)


def refuse_positional_bias(backward):
    """Decorator of a conv backward ``(grad_output, x, weight, *, options)``.

    Its options are keyword-only, so a positional option fails with Python's
    own TypeError; but a caller who mirrors the forward's ``(x, weight, bias,
    ...)`` passes the bias fourth, and deserves to be told that the backward
    takes none.
    """
    arrays = [p.name for p in inspect.signature(backward).parameters.values()
              if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]

    @functools.wraps(backward)
    def checked(*args, **kwargs):
        if len(args) > len(arrays) and _looks_like_bias(args[len(arrays)]):
            extra = args[len(arrays)]
            raise TypeError(
                f"{backward.__name__}() takes {len(arrays)} positional arguments "
                f"({', '.join(arrays)}) but {len(args)} were given; the next one, "
                f"{_describe(extra)}, looks like the forward's bias, which the backward does not "
                f"take (it returns grad_bias whatever the bias was). Pass the forward's options "
                f"by keyword: {backward.__name__}({', '.join(arrays)}, stride=..., padding=...)"
            )
        return backward(*args, **kwargs)

    return checked


# --- checks used by optim, train and models ---


def as_int_at_least(value, name, minimum):
    """An integer argument (as :func:`as_int`) that must be ``>= minimum``."""
    value = as_int(value, name)
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def as_real(value, name, low=None, high=None, *, low_open=False, high_open=False):
    """A finite real number (Python or NumPy; bool is rejected) as a Python float.

    ``low`` and ``high`` (if given) bound it, closed unless ``low_open`` or
    ``high_open``; the message states the interval, e.g. ``in [0, 1)`` or
    ``> 0``.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    shown = None
    try:
        value = float(value)
    except OverflowError:                   # an int beyond the float range
        shown = f"an int of {len(str(abs(value)))} digits"
        value = math.inf if value > 0 else -math.inf
    below = low is not None and (value <= low if low_open else value < low)
    above = high is not None and (value >= high if high_open else value > high)
    if not np.isfinite(value) or below or above:
        if low is not None and high is not None:
            where = f" in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        elif low is not None:
            where = f" {'>' if low_open else '>='} {low}"
        elif high is not None:
            where = f" {'<' if high_open else '<='} {high}"
        else:
            where = ""
        shown = shown or repr(value)
        raise ValueError(f"{name} must be a finite number{where}, got {shown}")
    return value


def as_metric(value, name):
    """A real number that may be infinite or NaN (a loss, a score) as a Python float.

    A 0-d real array is accepted too; bool is rejected.
    """
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf":
        value = value.item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r:.80}")
    try:
        return float(value)
    except OverflowError:                   # an int beyond the float range
        return math.inf if value > 0 else -math.inf


def as_list(value, name, what):
    """An argument that must be a sequence (of ``what``) as a list."""
    if isinstance(value, (str, bytes, dict)) or (isinstance(value, np.ndarray)
                                                  and value.ndim != 1):
        raise TypeError(f"{name} must be a list of {what}, got {value!r:.80}")
    try:
        return list(value)
    except TypeError:
        raise TypeError(f"{name} must be a list of {what}, got {value!r:.80}") from None


def as_choice(value, name, choices):
    """One of ``choices`` (the message lists them).

    A value is compared only with choices of its own type (so an array, whose
    ``==`` is elementwise, or a bool, which equals 1, never matches by accident).
    """
    if isinstance(value, (bool, np.bool_)) or not any(
            (value is c) or (c is not None and isinstance(value, type(c)) and value == c)
            for c in choices):
        listing = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {listing}, got {value!r}")
    return value


def as_float_dtype(dtype, name="dtype"):
    """A dtype argument that must be float32 or float64, as a ``np.dtype``."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{name} must be np.float32 or np.float64, got {dtype!r}") from None
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be np.float32 or np.float64, got {dt}")
    return dt


def as_generator(rng, name="rng"):
    """None -> a fresh ``default_rng()``; an int >= 0 -> ``default_rng(seed)``; a Generator as is.

    A Generator is returned itself (not copied): whoever draws from it advances it.
    """
    if rng is None:
        return np.random.default_rng()
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (bool, np.bool_)) or not isinstance(rng, numbers.Integral):
        raise TypeError(f"{name} must be None, an int seed or a np.random.Generator, got {rng!r}")
    return np.random.default_rng(as_int_at_least(rng, f"{name} seed", 0))


def as_samples(value, name):
    """Data with samples along axis 0 (inputs or targets of a training set) as an ndarray."""
    if value is None:
        raise TypeError(f"{name} must be an array, got None")
    value = np.asarray(value)
    if value.ndim == 0:
        raise ValueError(f"{name} must have a sample axis 0, got a 0-d array")
    if value.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a real (bool, integer or float) array, got dtype "
                        f"{value.dtype}")
    return value


# --- checks used by the layers ---
# deconv.nn validates its constructor arguments and inputs with these and the
# helpers above; the layers prefix every message with their name.

def as_integer_array(value, name, what="indices"):
    """Indices (class labels, token ids): an integer ndarray, or an array-like of ints.

    Non-ndarray array-likes go through ``np.asarray``; a float, bool or
    complex result is refused, since it names no index.
    """
    array = value if isinstance(value, np.ndarray) else np.asarray(value)
    if array.dtype.kind not in "iu":
        raise TypeError(
            f"{name} must be an integer array of {what}, got dtype {array.dtype} "
            f"(convert with .astype(np.int64) if the values are whole numbers)")
    return array


def as_adaptive_output_size(value, nd, name="output_size"):
    """An adaptive pooling's ``output_size`` as an ``nd``-tuple of ints >= 1 and Nones.

    As in PyTorch: an int (every axis), or a sequence of exactly ``nd``
    entries; in 2-D and 3-D an entry may be None, which keeps that input
    size (torch's 1-D ops refuse None, and so does this). Unlike PyTorch,
    which returns an empty output for a size 0, sizes must be >= 1.
    """
    what = f"an int or a sequence of {nd} ints" + (" or None" if nd > 1 else "")
    if isinstance(value, (list, tuple)):
        if len(value) != nd:
            raise ValueError(f"{name} must be {what}, got {value!r} ({len(value)} entries)")
        if nd == 1 and value[0] is None:
            raise TypeError(f"{name} must be {what} (None is allowed in 2-D and 3-D only, "
                            f"as in PyTorch), got {value!r}")
        entries = tuple(value)
    else:
        if value is None:
            raise TypeError(f"{name} must be {what}"
                            + (" (None only as an entry)" if nd > 1 else "") + ", got None")
        try:
            entries = (as_int(value, name),) * nd
        except TypeError:
            raise TypeError(f"{name} must be {what}, got {value!r}") from None
    out = tuple(None if v is None else as_int(v, name) for v in entries)
    if any(v is not None and v < 1 for v in out):
        raise ValueError(f"{name} must have sizes >= 1"
                         + (" (or None)" if nd > 1 else "") + f", got {value!r}")
    return out


# --- issue 14: activations, init, gradient clipping ---

def as_norm_order(value, name):
    """The order ``p`` of a vector norm: a real number > 0, or ``inf`` (the largest ``|x|``).

    ``0`` (a count of non-zeros) and negative orders are no norms and are
    refused; so is NaN. ``-inf`` is refused too.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number > 0 or math.inf, got {value!r}")
    try:
        order = float(value)
    except OverflowError:                   # an int beyond the float range
        raise ValueError(f"{name} must be a finite number > 0 or math.inf, got an int of "
                         f"{len(str(abs(value)))} digits") from None
    if not order > 0:
        raise ValueError(f"{name} must be a number > 0 or math.inf (a norm's order), got {value!r}")
    return order


def as_fillable_array(value, name):
    """An array an initialiser fills in place: a writeable float32/float64 ndarray.

    Array-likes are refused (there would be nothing to fill in place); so
    are read-only arrays (broadcast views among them) and other dtypes.
    """
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{name} must be an ndarray of float32 or float64 (or a Parameter) to "
                        f"fill in place, got {type(value).__name__}")
    if value.dtype.newbyteorder("=") not in FLOAT_DTYPES:
        raise TypeError(f"{name} must have dtype float32 or float64, got {value.dtype}")
    if not value.flags.writeable:
        raise ValueError(f"{name} is read-only (a broadcast view or a locked array) and cannot be "
                         f"filled in place")
    return value


def as_gradients(parameters, name):
    """The ``.grad`` arrays of ``parameters``: one object with ``.grad`` or an iterable of them.

    A ``.grad`` of None is skipped (as torch skips parameters without a
    gradient); any other ``.grad`` must be a writeable float32/float64
    ndarray. One object listed twice gives its gradient once.
    """
    if hasattr(parameters, "grad") and not isinstance(parameters, np.ndarray):
        parameters = [parameters]
    elif isinstance(parameters, (np.ndarray, str, bytes)) or not hasattr(parameters, "__iter__"):
        raise TypeError(f"{name} must be a Parameter or an iterable of Parameters (objects with "
                        f".grad), got {_describe(parameters)}")
    grads, seen = [], set()
    for i, p in enumerate(parameters):
        if not hasattr(p, "grad") or isinstance(p, np.ndarray):
            raise TypeError(f"{name}[{i}] must be a Parameter (an object with .grad), got "
                            f"{_describe(p)}")
        if p.grad is None or id(p) in seen:
            continue
        seen.add(id(p))
        grad = p.grad
        if not isinstance(grad, np.ndarray) or grad.dtype.newbyteorder("=") not in FLOAT_DTYPES:
            raise TypeError(f"{name}[{i}].grad must be a float32 or float64 ndarray, got "
                            f"{_describe(grad)}")
        if not grad.flags.writeable:
            raise ValueError(f"{name}[{i}].grad is read-only and cannot be clipped in place")
        grads.append(grad)
    return grads


# --- checks used by padding ---

def as_pad_tuple(value, name, max_pairs, exact_pairs=None):
    """A pad tuple as PyTorch's ``F.pad`` takes it: a sequence of an even
    number of ints, ``(before, after)`` per axis starting from the last.

    At most ``max_pairs`` pairs; with ``exact_pairs``, exactly that many.
    Entries may be negative (a crop); each is bounded as by :func:`as_int`.
    """
    if exact_pairs is not None:
        expected = f"a sequence of {2 * exact_pairs} ints"
    else:
        expected = f"a sequence of an even number (at most {2 * max_pairs}) of ints"
    if isinstance(value, np.ndarray) or not isinstance(value, (list, tuple)):
        raise TypeError(f"{name} must be {expected}, last axis first, got {_describe(value)}")
    if len(value) % 2 or len(value) > 2 * max_pairs or (
            exact_pairs is not None and len(value) != 2 * exact_pairs):
        raise ValueError(f"{name} must be {expected}, last axis first, got {value!r} "
                         f"(length {len(value)})")
    return tuple(as_int(v, name) for v in value)


def as_fill_value(value, name, dtype):
    """A fill value: a real number (NaN and infinities included, as PyTorch takes
    them) that ``dtype`` can hold without overflowing, as a scalar of ``dtype``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {_describe(value)}")
    try:
        as_float = float(value)
    except OverflowError:                   # an int beyond the float range
        raise ValueError(f"{name} must be a real number within the range of {np.dtype(dtype)}, "
                         f"got an int of {len(str(abs(value)))} digits") from None
    limit = float(np.finfo(dtype).max)
    if math.isfinite(as_float) and abs(as_float) > limit:
        raise ValueError(f"{name}={value!r} cannot be converted to {np.dtype(dtype)} without "
                         f"overflow (its largest value is {limit:.6g})")
    return np.dtype(dtype).type(as_float)


def as_real_array(value, name, what="real numbers (float or int)"):
    """A real ndarray (float or integer; not bool, complex or object), or an array-like of reals.

    An ndarray is returned itself (not copied); the caller casts it.
    """
    array = _as_array(value, name, what)
    if array.dtype.kind not in "fiu":
        raise TypeError(f"{name} must be an array of {what}, got dtype {array.dtype}")
    return array


def as_finite_real_array(value, name, what="finite real numbers"):
    """:func:`as_real_array` whose every element is finite, as a float64 copy.

    For small hyper-parameter arrays (loss weights), which are then stored.
    """
    array = as_real_array(value, name, what)
    check_bytes(name, (array.shape, np.float64))
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        raise ValueError(f"{name} must hold finite numbers, got "
                         f"{float(array[~np.isfinite(array)][0])!r} in an array of shape {array.shape}")
    return array


# --- transposed-conv output sizes (issue 13) ---

def as_output_size(value, nd, leading, leading_from="(N, C)", name="output_size"):
    """A requested output shape: ``nd`` spatial sizes, or the full ``(N, C, *spatial)``
    whose ``(N, C)`` must equal ``leading`` (``leading_from`` says where it comes
    from); returns the spatial sizes as a tuple."""
    if not isinstance(value, (list, tuple)):
        raise TypeError(
            f"{name} must be a sequence of {nd} or {nd + 2} ints or None, got {value!r}")
    if len(value) not in (nd, nd + 2):
        raise ValueError(
            f"{name} must have {nd} entries (the spatial sizes) or {nd + 2} (the full shape "
            f"{LAYOUT[nd]}), got {value!r}")
    sizes = tuple(as_int(v, name) for v in value)
    if len(sizes) == nd + 2:
        if sizes[:2] != tuple(leading):
            raise ValueError(
                f"{name}={value!r} must start with the output's batch and channel sizes "
                f"{leading_from} = {tuple(leading)}")
        sizes = sizes[2:]
    if any(s < 1 for s in sizes):
        raise ValueError(f"{name} must have spatial sizes >= 1, got {value!r}")
    return sizes
