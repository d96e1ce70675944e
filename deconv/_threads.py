"""One thread pool at a time: BLAS runs single-threaded inside the conv kernels' ``prange``.

The convolution kernels split their work into chunks that Numba runs in
parallel, each chunk calling BLAS (``np.dot``) on its own tiles. BLAS's own
threads would then compete with Numba's for the same cores (and OpenBLAS
serialises concurrent callers), so while a kernel runs, the BLAS libraries of
the process are limited to one thread with threadpoolctl, the library made
for the job, and restored afterwards.

threadpoolctl is optional (the ``fast`` extra; scikit-learn brings it too).
Without it, or with Numba limited to one thread, the kernels run their chunks
one after another and BLAS keeps its threads; the results are bitwise the same
either way, since the work is cut by the shapes alone.
"""

import contextlib

import numba

_UNSET = object()
_controller = _UNSET


def _get_controller():
    global _controller
    if _controller is _UNSET:
        try:
            # Load the BLAS that Numba's np.dot calls before looking for libraries.
            import scipy.linalg.cython_blas  # noqa: F401
            from threadpoolctl import ThreadpoolController
            _controller = ThreadpoolController()
        except ImportError:
            _controller = None
    return _controller


def parallel_chunks_available():
    """Whether the conv kernels can run chunks in parallel (threadpoolctl importable)."""
    return _get_controller() is not None


@contextlib.contextmanager
def kernel_chunks():
    """Yield T, the number of chunks a conv kernel should run in parallel.

    T is Numba's thread count when BLAS can be held to one thread meanwhile,
    else 1.
    """
    threads = numba.get_num_threads()
    controller = _get_controller() if threads > 1 else None
    if controller is None:
        yield 1
        return
    with controller.limit(limits=1, user_api="blas"):
        yield threads
