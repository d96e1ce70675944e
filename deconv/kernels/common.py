"""Index helpers shared by the Numba kernels (inlined into them at compile time).

Numba's on-disk cache of a kernel is keyed on the kernel's own source file,
so after editing this module delete the ``__pycache__/*.nbi``/``*.nbc`` files
of the kernel modules (an installed package never changes, so users are not
affected).
"""

from numba import njit


@njit(cache=True, inline="always")
def valid_range(start, step, n_out, size):
    """Output indices ``o`` in [lo, hi) for which ``start + o*step`` lies in [0, size)."""
    # start + o*step >= 0  <=>  o >= ceil(-start / step)
    lo = 0
    if start < 0:
        lo = (-start + step - 1) // step
    # start + o*step <= size - 1  <=>  o <= floor((size - 1 - start) / step)
    if size - 1 - start < 0:
        hi = 0
    else:
        hi = (size - 1 - start) // step + 1
    if hi > n_out:
        hi = n_out
    if lo > hi:
        lo = hi
    return lo, hi
