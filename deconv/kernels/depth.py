"""Numba kernel that moves the depth slices of the 3-D convolutions (issue 13).

The 3-D passes (:mod:`deconv.functional.conv`) hand the 2-D conv kernels
batches of depth slices: stacks of input slices in (depth, channel) order,
blocks of results put back at their depths of an NCDHW array. Those moves
are plane copies between strided views; NumPy makes them on one thread,
which on two cores was a tenth of a U-Net conv's time. Here every
(a, b, c) plane of H x W is one item of a ``prange``: each item writes its own
plane only, so the copy is the same for any thread count.

Dimension letters: A, B, C the leading axes of the views (for instance
depth slices, taps and channels), H, W a plane.
"""

from numba import njit, prange


@njit(cache=True, parallel=True)
def copy_planes(src, dst):
    """dst[a, b, c] = src[a, b, c] for every plane; src and dst: (A, B, C, H, W), any strides."""
    A, B, C, H, W = dst.shape
    for item in prange(A * B * C):
        a = item // (B * C)
        b = (item // C) % B
        c = item % C
        s = src[a, b, c]
        d = dst[a, b, c]
        for i in range(H):
            s_row = s[i]
            d_row = d[i]
            for j in range(W):
                d_row[j] = s_row[j]
