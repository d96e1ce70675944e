"""Numba kernels: plain loops that trust their inputs.

Every argument is checked, normalised and made C-contiguous by
:mod:`deconv.functional` before a kernel runs. ``conv`` holds the
register-tiled convolution kernels (on the micro-kernel of ``microkernel``),
``pool`` and ``upsample`` the pooling, unpooling and upsampling loops,
``common`` the index helpers they share and ``threads`` how many threads a
call may use.
"""
