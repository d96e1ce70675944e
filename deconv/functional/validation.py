"""Argument checking shared by every public function.

The Numba kernels trust their inputs; everything a user can get wrong is
caught here, before any work is done, and reported as ``TypeError`` (wrong
kind of thing) or ``ValueError`` (right kind, wrong value) naming the
argument, the value received and what was expected.
"""

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


def as_float_array(value, name):
    """Return ``value`` as a C-contiguous float32/float64 ndarray.

    A contiguous, writeable input is returned as is (it is never written
    to); anything else (Fortran order, negative strides, views, read-only
    arrays) is copied once, so that the kernels see one memory layout and
    compile one signature per dtype: Numba types a read-only array
    differently and would compile and cache a second version of every kernel.
    """
    if isinstance(value, np.ndarray):
        array = value
    elif isinstance(value, (list, tuple)) or np.isscalar(value):
        array = np.asarray(value)
    else:
        raise TypeError(
            f"{name} must be a NumPy array of float32 or float64, got {type(value).__name__}"
        )
    if array.dtype.kind == "f" and array.dtype.newbyteorder("=") in FLOAT_DTYPES:
        # e.g. big-endian '>f4' data read from a file: the same numbers
        array = array.astype(array.dtype.newbyteorder("="), copy=False)
    if array.dtype not in FLOAT_DTYPES:
        raise TypeError(
            f"{name} must have dtype float32 or float64, got {array.dtype} "
            f"({_describe(value) if isinstance(value, np.ndarray) else type(value).__name__})"
        )
    return _kernel_ready(array)


def _kernel_ready(array):
    array = np.ascontiguousarray(array)
    return array if array.flags.writeable else array.copy()


def as_index_array(value, name):
    """Return ``value`` as a C-contiguous int64 ndarray (max-pool switches)."""
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array of int64, got {type(value).__name__}")
    if value.dtype != np.int64:
        raise TypeError(
            f"{name} must have dtype int64 (as returned by max_pool), got {value.dtype}"
        )
    return _kernel_ready(value)


def check_ndim(array, name, ndim, layout):
    if array.ndim != ndim:
        raise ValueError(
            f"{name} must be {ndim}-D with layout {layout}, got shape {array.shape}"
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


def as_positive_tuple(value, n, name):
    return as_tuple(value, n, name, minimum=1)


def check_shape_tuple(value, ndim, name):
    """An ``input_shape`` argument of a backward function."""
    if not isinstance(value, (list, tuple)) or len(value) != ndim:
        raise ValueError(f"{name} must be a sequence of {ndim} ints, got {value!r}")
    out = tuple(as_int(v, name) for v in value)
    if any(v < 0 for v in out):
        raise ValueError(f"{name} must not contain negative sizes, got {value!r}")
    return out


def check_shape_equal(array, expected, name):
    if tuple(array.shape) != tuple(expected):
        raise ValueError(f"{name} must have shape {tuple(expected)}, got {array.shape}")


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
