"""Calls from several Python threads at once, under every threading layer Numba loads here.

Numba's ``workqueue`` layer aborts the whole process when two threads launch
parallel regions at once; ``deconv.kernels.threads`` makes the package's
regions take turns there. Each layer gets a fresh interpreter (Numba picks
its layer once per process, from ``NUMBA_THREADING_LAYER``), in which 4
threads repeat a set of calls whose arrays are large enough for the parallel
path, plus one small call on the one-thread path, and compare every result
bitwise with the same calls made before on the main thread alone.
"""

import importlib
import json
import os
import subprocess
import sys
import threading

import pytest

import deconv
from deconv.kernels import threads as kernel_threads


def _loadable_layers():
    """workqueue (always built with Numba), then omp and tbb where their libraries load."""
    layers = ["workqueue"]
    for layer, module in (("omp", "numba.np.ufunc.omppool"), ("tbb", "numba.np.ufunc.tbbpool")):
        try:
            importlib.import_module(module)
            if layer == "tbb":
                # Numba also refuses a TBB older than 2021.6 (an ImportError as well).
                from numba.np.ufunc import parallel
                parallel._check_tbb_version_compatible()
        except ImportError:
            continue
        layers.append(layer)
    return layers


LAYERS = _loadable_layers()
THREADS = 4
CALLS = 30

# The calls each thread repeats. The arrays of all but the last have at least
# SMALL_WORK elements (asserted in the script), so their kernels run on Numba's
# threads; the last runs on the calling thread alone, through the layer's
# queue all the same.
_CALLS_SCRIPT = r"""
import json, sys, threading
import numpy as np, numba
import deconv
from deconv.kernels import threads as kernel_threads

THREADS, CALLS = int(sys.argv[1]), int(sys.argv[2])
rng = np.random.default_rng(11)

def normal(*shape):
    return rng.standard_normal(shape).astype(np.float32)

x, w, b = normal(4, 16, 32, 32), normal(16, 16, 3, 3), normal(16)
gy = normal(4, 16, 32, 32)
xt, wt = normal(4, 16, 24, 24), normal(16, 8, 3, 3)
xs, ws = normal(1, 2, 8, 8), normal(3, 2, 3, 3)
assert min(a.size for a in (x, gy, xt)) >= kernel_threads.SMALL_WORK
assert xs.size * 64 < kernel_threads.SMALL_WORK

def every_call():
    pooled, indices = deconv.max_pool2d(x, 2)
    return [deconv.conv2d(x, w, b, padding=1),
            *deconv.conv2d_backward(gy, x, w, padding=1),
            deconv.conv_transpose2d(xt, wt, stride=2, padding=1),
            pooled, indices,
            deconv.upsample_bilinear2d(x, scale_factor=2),
            deconv.conv2d(xs, ws, padding=1)]

def blas_threads():
    controller = kernel_threads._get_controller()
    if controller is None:
        return None
    return [lib["num_threads"] for lib in controller.info() if lib["user_api"] == "blas"]

blas_before = blas_threads()
serial = [(r.dtype.str, r.shape, r.tobytes()) for r in every_call()]
mismatches = [None] * THREADS
errors = []
start = threading.Barrier(THREADS)

def worker(i):
    try:
        start.wait()
        count = 0
        for _ in range(CALLS):
            got = [(r.dtype.str, r.shape, r.tobytes()) for r in every_call()]
            count += sum(g != s for g, s in zip(got, serial))
        mismatches[i] = count
    except BaseException as e:
        errors.append(repr(e))

workers = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
for t in workers:
    t.start()
for t in workers:
    t.join()
print(json.dumps({"layer": numba.threading_layer(), "numba_threads": numba.get_num_threads(),
                  "region_lock": kernel_threads._region_lock is not None,
                  "results": len(serial), "mismatches": mismatches, "errors": errors,
                  "blas_before": blas_before, "blas_after": blas_threads()}))
"""


def _run(script, *argv, **env_update):
    """Run ``script`` in a fresh interpreter that imports the deconv under test."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(deconv.__file__)))
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    env = dict(os.environ, PYTHONPATH=path, **env_update)
    return subprocess.run([sys.executable, "-c", script, *map(str, argv)], env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("layer", LAYERS)
def test_threads_calling_at_once_get_the_serial_results_bitwise(layer):
    # NUMBA_NUM_THREADS=2 so that the large calls split their work even on a
    # one-core machine; OPENBLAS_NUM_THREADS=2 so that a BLAS limit left
    # behind at one thread would show.
    done = _run(_CALLS_SCRIPT, THREADS, CALLS, NUMBA_THREADING_LAYER=layer,
                NUMBA_NUM_THREADS="2", OPENBLAS_NUM_THREADS="2")
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stderr[-3000:]}"
    report = json.loads(done.stdout)
    assert report["layer"] == layer and report["numba_threads"] == 2
    assert report["errors"] == []
    assert report["mismatches"] == [0] * THREADS, report
    assert report["results"] == 9
    # a lock only where the layer needs one
    assert report["region_lock"] == (layer == "workqueue")
    # the kernels held BLAS to one thread while they ran and gave it back
    # (callers that overlapped used to leave it on one thread for good)
    if kernel_threads.parallel_chunks_available():
        assert report["blas_before"] and 1 not in report["blas_before"]
    assert report["blas_before"] == report["blas_after"]


# A thread of the parent holds the region lock (as when it is inside a kernel)
# while the main thread forks; the child must still run kernels. The parent
# waits a bounded time for it and kills it if it hangs.
_FORK_SCRIPT = r"""
import os, threading, time
import numpy as np
import deconv
from deconv.kernels import threads as kernel_threads

x, w = np.ones((2, 8, 48, 48), np.float32), np.ones((8, 8, 3, 3), np.float32)
expected = deconv.conv2d(x, w)
lock = kernel_threads._parallel_region_lock()
assert lock is not None
held, release = threading.Event(), threading.Event()

def holder():
    with lock:
        held.set()
        release.wait()

t = threading.Thread(target=holder)
t.start()
held.wait()
pid = os.fork()
if pid == 0:
    os._exit(0 if np.array_equal(deconv.conv2d(x, w), expected) else 3)
release.set()
t.join()
deadline = time.monotonic() + 120
while True:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        break
    if time.monotonic() > deadline:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        raise SystemExit("the forked child hung on the region lock")
    time.sleep(0.05)
raise SystemExit(os.waitstatus_to_exitcode(status))
"""


if hasattr(os, "fork"):
    def test_forked_child_runs_kernels_while_a_parent_thread_holds_the_region_lock():
        done = _run(_FORK_SCRIPT, NUMBA_THREADING_LAYER="workqueue", NUMBA_NUM_THREADS="2")
        assert done.returncode == 0, f"exit {done.returncode}\n{done.stderr[-3000:]}"


class _RecordingController:
    """Stands in for threadpoolctl's controller: records each limit set and restored."""

    def __init__(self):
        self.events = []

    @property
    def active(self):
        return self.events.count("set") - self.events.count("restored")

    def limit(self, limits, user_api):
        assert (limits, user_api) == (1, "blas")
        events = self.events

        class _Limiter:
            def __enter__(self):
                events.append("set")

            def __exit__(self, *exc):
                events.append("restored")

        return _Limiter()


def test_overlapping_callers_set_the_blas_limit_once_and_its_setter_restores_it():
    controller = _RecordingController()
    first_inside, second_inside, first_may_leave = (threading.Event() for _ in range(3))
    seen = {}

    def first():
        with kernel_threads._blas_on_one_thread(controller):
            seen["first"] = controller.active
            first_inside.set()
            first_may_leave.wait(30)

    def second():
        first_inside.wait(30)
        with kernel_threads._blas_on_one_thread(controller):
            seen["second"] = controller.active
            second_inside.set()
            # The first caller leaves while this one is still inside.
            first_may_leave.set()
            first_thread.join(30)
            seen["second, after the first left"] = controller.active

    first_thread = threading.Thread(target=first)
    second_thread = threading.Thread(target=second)
    first_thread.start()
    second_thread.start()
    second_thread.join(60)
    assert seen == {"first": 1, "second": 1, "second, after the first left": 0}
    assert controller.events == ["set", "restored"]
    # With nobody inside, the next caller sets the limit again.
    with kernel_threads._blas_on_one_thread(controller):
        assert controller.active == 1
    assert controller.events == ["set", "restored"] * 2


def test_the_layer_in_use_is_reported_and_locks_only_where_unsafe():
    layer = kernel_threads.threading_layer()
    assert layer in ("omp", "tbb", "workqueue")
    lock = kernel_threads._parallel_region_lock()
    assert (lock is not None) == (layer == "workqueue")
    # the decision is made once: every caller shares the same lock (or none)
    assert kernel_threads._parallel_region_lock() is lock
