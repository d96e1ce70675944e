"""Numba kernels: plain loops that trust their inputs.

Every argument is checked, normalised and made C-contiguous by
:mod:`deconv.functional` before a kernel runs. ``conv`` holds the
register-tiled convolution kernels (on the micro-kernel of ``microkernel``),
``naive`` every convolution pass as the plain loop nest of its formula,
``pool`` and ``upsample`` the pooling, unpooling and upsampling loops,
``plan`` the tile shapes, vector width and work plans the tiled kernels share
(every such number defined once), ``common`` the index helpers they share and
``threads`` how many threads a call may use.

Two kernel sets compute the convolutions: ``"tiled"`` (the default, fast)
and ``"naive"`` (the loop nests, slow and plain). :func:`use` picks one for
a block of code::

    >>> import numpy as np, deconv
    >>> x, w = np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3))
    >>> with deconv.kernels.use("naive"):
    ...     deconv.kernels.active(), deconv.conv2d(x, w)[0, 0]
    ('naive', array([[9., 9.],
           [9., 9.]]))

Pooling, unpooling and upsampling run the same loops under either set.
This module imports no Numba code: ``naive`` compiles on its first use.
"""

import contextlib
import contextvars

__all__ = ["KERNEL_SETS", "active", "use"]

KERNEL_SETS = ("tiled", "naive")

# A context variable, not a global: each thread (and each asyncio task) has
# its own choice, and nested ``use`` blocks restore the outer one on exit.
_active = contextvars.ContextVar("deconv_kernel_set", default="tiled")


def active():
    """The name of the kernel set the public functions run now: 'tiled' or 'naive'."""
    return _active.get()


@contextlib.contextmanager
def use(name):
    """Run the convolutions of the enclosed block on the kernel set ``name``.

    Parameters
    ----------
    name : {'tiled', 'naive'}
        ``'tiled'`` (the default): the register-tiled kernels of
        :mod:`deconv.kernels.conv`. ``'naive'``: the loop nests of
        :mod:`deconv.kernels.naive`, one per pass, for stepping through the
        math or as a second oracle.

    Notes
    -----
    The choice is held in a :class:`contextvars.ContextVar`: it applies to
    the current thread only, and the previous choice returns when the block
    exits (also on an exception). The public functions validate their
    arguments the same way under both sets.

    Examples
    --------
    >>> import deconv
    >>> with deconv.kernels.use("naive"):
    ...     with deconv.kernels.use("tiled"):
    ...         inner = deconv.kernels.active()
    ...     outer = deconv.kernels.active()
    >>> inner, outer, deconv.kernels.active()
    ('tiled', 'naive', 'tiled')
    """
    if not isinstance(name, str) or name not in KERNEL_SETS:
        raise ValueError(f"name must be one of {KERNEL_SETS}, got {name!r}")
    token = _active.set(name)
    try:
        yield
    finally:
        _active.reset(token)
