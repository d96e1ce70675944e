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
- **Waiting on shared cores** (:func:`choose_wait_policy`). Under ``omp``
  the pool's threads spin while they wait at the end of a parallel region;
  when another process holds a core, a spinning thread and that process
  share it while the work waits. ``deconv train`` measures the machine
  before its first kernel and, if other processes keep at least
  :data:`BUSY_OTHERS_PCT` of it busy, has the waiting threads sleep
  (``OMP_WAIT_POLICY=PASSIVE``), unless the user chose a wait setting.
"""

import contextlib
import os
import threading
import time

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


# ---------------------------------------------------------------------------
# shared cores
# ---------------------------------------------------------------------------

def machine_jiffies():
    """(total, idle, steal) jiffies of the whole machine so far, from /proc/stat
    (OSError where there is none)."""
    with open("/proc/stat") as f:
        v = [int(t) for t in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    steal = v[7] if len(v) > 7 else 0
    return sum(v), idle, steal


def cpu_busy(seconds):
    """Whole-machine CPU busy percentage over ``seconds`` (NaN without /proc/stat)."""
    try:
        t1, i1, _ = machine_jiffies()
        time.sleep(seconds)
        t2, i2, _ = machine_jiffies()
    except OSError:
        return float("nan")
    return 100.0 * (1.0 - (i2 - i1) / max(t2 - t1, 1))


#: The share of the machine (percent of all its cores) that other processes
#: must keep busy for :func:`choose_wait_policy` to have waiting threads sleep:
#: half a core of a 2-core machine. Measured (``deconv train superres --quick``,
#: training time, 2-core machine; README, Threads): with a busy loop on one core
#: the default spinning waits took 5.9x the idle time and sleeping waits 1.41x,
#: while on the idle machine sleeping waits cost about a fifth.
BUSY_OTHERS_PCT = 25.0

#: The variables with which a user chooses how GNU OpenMP's threads wait: if
#: any is set, :func:`choose_wait_policy` leaves the choice alone.
WAIT_SETTINGS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


def choose_wait_policy(sample_seconds=0.25, environ=None):
    """Have the thread pool's waiting threads sleep if other processes hold the CPUs.

    Measures the whole machine's CPU use for ``sample_seconds``; if it is at
    least :data:`BUSY_OTHERS_PCT` percent (this process is idle meanwhile, so
    it is other processes') and no variable of :data:`WAIT_SETTINGS` is set,
    sets ``OMP_WAIT_POLICY=PASSIVE`` in ``environ`` (default ``os.environ``).
    GNU OpenMP reads it when Numba's ``omp`` layer starts, at the first
    parallel kernel: call this before any kernel runs (``deconv train`` does,
    first thing). Other threading layers ignore the variable.

    Returns
    -------
    (str or None, float)
        The policy set (``'PASSIVE'``) or None, and the busy percentage
        measured (NaN without /proc/stat, or when a setting was already made:
        nothing is measured then).
    """
    environ = os.environ if environ is None else environ
    if any(name in environ for name in WAIT_SETTINGS):
        return None, float("nan")
    busy = cpu_busy(sample_seconds)
    if busy >= BUSY_OTHERS_PCT:
        environ["OMP_WAIT_POLICY"] = "PASSIVE"
        return "PASSIVE", busy
    return None, busy
