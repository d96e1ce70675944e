"""Array layouts the kernels want: 2-D views of 1-D ops, arrays that start aligned.

The 1-D ops run the 2-D kernels on a view with H = 1. The kernels' outputs
and workspaces start on :data:`deconv.kernels.plan.ALIGNMENT` bytes
(:func:`aligned_empty`), so that their rows of whole vectors load and store whole
cache lines, in this op and in the next one that reads them.
"""

import math

import numpy as np

from deconv.kernels.plan import ALIGNMENT


def to_2d(a):
    """(N, C, L) -> (N, C, 1, L) view; 4-D arrays pass through."""
    if a.ndim == 3:
        return a.reshape(a.shape[0], a.shape[1], 1, a.shape[2])
    return a


def from_2d(a, nd):
    """(N, C, 1, L) -> (N, C, L) view when ``nd == 1``; otherwise ``a`` itself."""
    if nd == 1:
        return a.reshape(a.shape[0], a.shape[1], a.shape[3])
    return a


def aligned_empty(shape, dtype):
    """``np.empty(shape, dtype)`` whose data starts on :data:`ALIGNMENT` bytes
    (a view of a slightly longer array: NumPy's own start is a multiple of the
    itemsize, so a whole number of elements reaches the boundary).

    >>> import numpy as np
    >>> aligned_empty((3, 5), np.float32).ctypes.data % ALIGNMENT
    0
    """
    dtype = np.dtype(dtype)
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    count = math.prod(shape)
    raw = np.empty(count + ALIGNMENT // dtype.itemsize, dtype=dtype)
    start = (-raw.ctypes.data % ALIGNMENT) // dtype.itemsize
    return raw[start:start + count].reshape(shape)


def aligned_zeros(shape, dtype):
    """``np.zeros(shape, dtype)`` that starts on :data:`ALIGNMENT` bytes."""
    out = aligned_empty(shape, dtype)
    out[...] = 0
    return out
