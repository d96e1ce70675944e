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
def kernel_chunks(work):
    """Yield T, the number of chunks a conv kernel should run in parallel.

    T is Numba's thread count when BLAS can be held to one thread meanwhile,
    else 1; and 1, on the calling thread alone, when the largest array of the
    call has fewer than :data:`SMALL_WORK` elements.
    """
    threads = numba.get_num_threads()
    if threads > 1 and work < SMALL_WORK:
        with _one_thread():
            yield 1
        return
    controller = _get_controller() if threads > 1 else None
    if controller is None:
        yield 1
        return
    with controller.limit(limits=1, user_api="blas"):
        yield threads


# Below this many elements in the largest array, a kernel runs on the calling
# thread alone. Waking the other threads costs microseconds on an idle machine,
# but when another process holds a core a fork-join region waits for a
# descheduled thread: pixel_shuffle of a (32, 12, 16, 16) array took 16 ms
# there against 0.07 ms on one thread, and a small training loop ran 18x slower.
SMALL_WORK = 1 << 15


@contextlib.contextmanager
def _one_thread():
    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(previous)


def call(kernel, *args):
    """``kernel(*args)``, on one thread when its largest array is small (:data:`SMALL_WORK`).

    Results do not depend on the number of threads (every kernel's work is cut
    by the shapes alone), so this changes only the time.
    """
    work = max((a.size for a in args if hasattr(a, "size") and hasattr(a, "shape")), default=0)
    if work >= SMALL_WORK or numba.get_num_threads() == 1:
        return kernel(*args)
    with _one_thread():
        return kernel(*args)
