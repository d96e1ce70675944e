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


# --- checks used by the layers ---
# deconv.nn validates its constructor arguments and inputs with these (and
# with the helpers above); the layers prefix every message with their name.

def as_positive_int(value, name):
    """A size, count or factor: an int (see :func:`as_int`) that is at least 1."""
    value = as_int(value, name)
    if value < 1:
        raise ValueError(f"{name} must be a positive int, got {value}")
    return value


def as_float_dtype(dtype, name="dtype"):
    """``np.float32`` or ``np.float64``, given as anything ``np.dtype`` understands."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{name} must be np.float32 or np.float64, got {dtype!r}") from None
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be np.float32 or np.float64, got {dt}")
    return dt


def as_generator(rng, name="rng"):
    """None -> a fresh ``default_rng()``; an int >= 0 -> ``default_rng(seed)``; a Generator as is."""
    if rng is None:
        return np.random.default_rng()
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (bool, np.bool_)) or not isinstance(rng, numbers.Integral):
        raise TypeError(f"{name} must be None, an int seed or a np.random.Generator, got {rng!r}")
    if rng < 0:
        raise ValueError(f"{name} seed must be >= 0, got {rng}")
    return np.random.default_rng(int(rng))


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


def check_batched(array, ndim, name="input"):
    """``array`` has the ``ndim``-D layout ``(N, C, ...)``; an unbatched one gets a hint.

    deconv never guesses a missing batch axis (PyTorch does for some ops):
    one sample of shape ``(C, H, W)`` is passed as ``x[None]``.
    """
    if array.ndim == ndim:
        return
    message = f"expected {ndim}-D {name} {LAYOUT[ndim - 2]}, got shape {array.shape}"
    if array.ndim == ndim - 1:
        message += "; for one sample pass x[None]"
    raise ValueError(message)
