"""How many threads each kernel call uses, and which calls may run at once.

Every parallel kernel of the package is launched through :func:`call` or
:func:`kernel_chunks`, so three decisions live here:

- **Small calls run on the calling thread alone** (:data:`SMALL_WORK`).
- **One thread pool at a time.** One convolution kernel (the input gradient
  with few input channels per group, GEMM + col2im) splits its work into
  chunks that Numba runs in parallel, each chunk calling BLAS (``np.dot``) on
  its own tiles. BLAS's own threads would then compete with Numba's for the
  same cores (and OpenBLAS serialises concurrent callers), so while that
  kernel runs (``kernel_chunks(..., blas=True)``), the BLAS libraries of the
  process are limited to one thread with threadpoolctl, the library made for
  the job, and restored afterwards. threadpoolctl is optional (the ``fast``
  extra; scikit-learn brings it too). Without it, or with Numba limited to
  one thread, that kernel runs its chunks one after another and BLAS keeps
  its threads; the results are bitwise the same either way, since the work
  is cut by the shapes alone. The register-tiled kernels call no BLAS and
  touch no BLAS setting.
- **Concurrent callers.** Numba's ``workqueue`` threading layer (its fallback
  when neither OpenMP nor TBB loads) aborts the process when two Python
  threads launch parallel regions at once. Under that layer the parallel
  regions of the package take turns on one process-wide lock; under ``omp``
  and ``tbb``, which are thread-safe, they take no lock and run at once.
  Either way each call's result is bitwise the one it has alone.
"""

import contextlib
import os
import threading

import numba

_UNSET = object()
_controller = _UNSET

# Numba's threading layers that abort when two threads launch parallel
# regions at once (numba.readthedocs.io, "The Threading Layers").
_LAYERS_WITHOUT_CONCURRENT_REGIONS = frozenset({"workqueue"})

# The process-wide lock that parallel regions take under such a layer, None
# under a thread-safe one; _UNSET until the first kernel call, because the
# layer is known only once Numba has launched its threads.
_region_lock = _UNSET
_region_lock_decided = threading.Lock()

# Whether a kernel call currently holds BLAS to one thread (see _blas_on_one_thread).
_blas_limited = False
_blas_limited_guard = threading.Lock()


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


def threading_layer():
    """The name of the Numba threading layer the kernels run on: 'omp', 'tbb' or 'workqueue'.

    Launches Numba's thread pool if no parallel region has run yet (that is
    when Numba picks the layer, from ``NUMBA_THREADING_LAYER``).
    """
    numba.get_num_threads()
    return numba.threading_layer()


def _parallel_region_lock():
    """The lock parallel regions take, or None where the threading layer is thread-safe."""
    global _region_lock
    if _region_lock is _UNSET:
        # Two first callers must not make two locks, each serialising only itself.
        with _region_lock_decided:
            if _region_lock is _UNSET:
                unsafe = threading_layer() in _LAYERS_WITHOUT_CONCURRENT_REGIONS
                _region_lock = threading.RLock() if unsafe else None
    return _region_lock


def _renew_locks_in_child():
    # A fork copies a lock held by another thread of the parent, and no thread
    # of the child would ever release it. The workqueue layer is fork-safe,
    # so a forked child runs kernels and needs its locks free.
    global _region_lock, _region_lock_decided, _blas_limited, _blas_limited_guard
    _region_lock_decided = threading.Lock()
    if _region_lock is not _UNSET and _region_lock is not None:
        _region_lock = threading.RLock()
    _blas_limited_guard = threading.Lock()
    _blas_limited = False


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_renew_locks_in_child)


@contextlib.contextmanager
def _blas_on_one_thread(controller):
    """Hold BLAS to one thread, unless a kernel call of another thread holds it already.

    The thread that set the limit restores it, and only then may another set
    it again: with every caller setting and restoring on its own, a caller
    that started inside another's limit would record 1 as the original count
    and leave BLAS on one thread for good. A caller that finds the limit taken
    runs under it, and with BLAS's own threads if the holder restores first:
    slower for that while, bitwise the same.
    """
    global _blas_limited
    with _blas_limited_guard:
        holder = not _blas_limited
        _blas_limited = True
    if not holder:
        yield
        return
    try:
        with controller.limit(limits=1, user_api="blas"):
            yield
    finally:
        _blas_limited = False


@contextlib.contextmanager
def _chunks(work, blas):
    threads = numba.get_num_threads()
    if threads > 1 and work < SMALL_WORK:
        with _one_thread():
            yield 1
        return
    if threads == 1 or not blas:
        # a kernel that calls no BLAS has no second pool to hold back
        yield threads
        return
    controller = _get_controller()
    if controller is None:
        yield 1
        return
    with _blas_on_one_thread(controller):
        yield threads


@contextlib.contextmanager
def kernel_chunks(work, *, blas=False):
    """Yield T, the number of chunks a conv kernel should run in parallel.

    T is Numba's thread count, and 1, on the calling thread alone, when the
    largest array of the call has fewer than :data:`SMALL_WORK` elements. A
    kernel that calls BLAS in its chunks (``blas=True``) gets more than one
    chunk only when BLAS can be held to one thread meanwhile (threadpoolctl). The kernel must be
    launched inside the block: under the ``workqueue`` threading layer the
    block holds the parallel-region lock.
    """
    lock = _parallel_region_lock()
    if lock is None:
        with _chunks(work, blas) as chunks:
            yield chunks
        return
    with lock, _chunks(work, blas) as chunks:
        yield chunks


# Below this many elements in the largest array, a kernel runs on the calling
# thread alone. Waking the other threads costs microseconds on an idle machine,
# but when another process holds a core a fork-join region waits for a
# descheduled thread: pixel_shuffle of a (32, 12, 16, 16) array took 16 ms
# there against 0.07 ms on one thread, and a small training loop ran 18x slower.
SMALL_WORK = 1 << 15


@contextlib.contextmanager
def _one_thread():
    # numba.set_num_threads is per-thread state in Numba: this limits the
    # calling Python thread's next regions only, never another caller's.
    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(previous)


def _call(kernel, args):
    work = max((a.size for a in args if hasattr(a, "size") and hasattr(a, "shape")), default=0)
    if work >= SMALL_WORK or numba.get_num_threads() == 1:
        return kernel(*args)
    with _one_thread():
        return kernel(*args)


def call(kernel, *args):
    """``kernel(*args)``, on one thread when its largest array is small (:data:`SMALL_WORK`).

    Results do not depend on the number of threads (every kernel's work is cut
    by the shapes alone), so this changes only the time. Under the
    ``workqueue`` threading layer the call waits for the parallel-region lock:
    even on one thread, a parallel kernel's region goes through the layer's
    queue, which two threads may not use at once.
    """
    lock = _parallel_region_lock()
    if lock is None:
        return _call(kernel, args)
    with lock:
        return _call(kernel, args)
