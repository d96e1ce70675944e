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
"""

import functools
import inspect
import numbers
import operator

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

# how error messages name the layout of a 1-D or 2-D activation
LAYOUT = {1: "(N, C, L)", 2: "(N, C, H, W)"}


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
    """Return ``value`` as a C-contiguous float32/float64 ndarray.

    Lists, tuples, memoryviews and objects with ``__array__`` are converted
    with ``np.asarray`` and follow NumPy's dtype rule (a list of Python
    floats is float64); integer, bool, complex, float16 and object results
    are refused with a TypeError that says how to convert. (A scalar becomes
    a 0-d array, which the op's ``check_ndim`` then refuses.)

    A contiguous, writeable input is returned as is (it is never written
    to); anything else (Fortran order, negative strides, views, read-only
    arrays) is copied once, so that the kernels see one memory layout and
    compile one signature per dtype: Numba types a read-only array
    differently and would compile and cache a second version of every kernel.
    """
    array = _as_array(value, name, "float32 or float64 numbers")
    if array.dtype.kind == "f" and array.dtype.newbyteorder("=") in FLOAT_DTYPES:
        # e.g. big-endian '>f4' data read from a file: the same numbers
        array = array.astype(array.dtype.newbyteorder("="), copy=False)
    if array.dtype not in FLOAT_DTYPES:
        source = _describe(value) if isinstance(value, np.ndarray) else type(value).__name__
        raise TypeError(
            f"{name} must have dtype float32 or float64, got {array.dtype} ({source}); "
            f"{_conversion_hint(name, array.dtype, 'np.float32')} (or np.float64)"
        )
    return _kernel_ready(array)


def _kernel_ready(array):
    array = np.ascontiguousarray(array)
    return array if array.flags.writeable else array.copy()


def as_index_array(value, name):
    """Return ``value`` as a C-contiguous int64 ndarray (max-pool switches).

    Array-likes are converted as by :func:`as_float_array`; the result must
    be int64, so a list of Python ints is accepted (NumPy makes it int64)
    while int32 arrays, floats and bools are refused: the indices index
    planes of up to 2**63 elements and are never silently cast.
    """
    array = _as_array(value, name, "int64 indices")
    if array.dtype != np.int64:
        raise TypeError(
            f"{name} must have dtype int64 (as returned by max_pool), got {array.dtype}; "
            f"{_conversion_hint(name, array.dtype, 'np.int64')}"
        )
    return _kernel_ready(array)


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


def as_activation(value, name, nd, layout=None):
    """A float array of layout ``(N, C, *spatial)`` with ``nd`` spatial sizes, each >= 1.

    ``N`` and ``C`` may be 0. ``layout`` words the axes for the errors
    (default: ``LAYOUT[nd]``).
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
    dtypes = {v.dtype for v in present.values()}
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


def check_shape_equal(array, expected, name):
    if tuple(array.shape) != tuple(expected):
        raise ValueError(f"{name} must have shape {tuple(expected)}, got {array.shape}")


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
    value = float(value)
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
        raise ValueError(f"{name} must be a finite number{where}, got {value!r}")
    return value


def as_choice(value, name, choices):
    """One of ``choices`` (compared with ==; the message lists them)."""
    if isinstance(value, (bool, np.bool_)) or value not in choices:
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
    if value.dtype == object:
        raise TypeError(f"{name} must be a numeric array, got dtype object")
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
