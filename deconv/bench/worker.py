"""A worker process of ``deconv bench`` (private): one job in, timings (or outputs) out.

The parent (:mod:`deconv.bench`) runs this file as a *script*,
``python .../deconv/bench/worker.py JOB.json``, never with ``-m``: running
a module of the package would import ``deconv/__init__`` and with it Numba,
and the PyTorch worker must import neither (two OpenMP runtimes in one
process compete for the cores and distort both timings). Its sibling
modules :mod:`~deconv.bench.cases` and :mod:`~deconv.bench.peers` are
imported as the package ``_deconv_bench`` (this directory, without its
``__init__``, which would import deconv), so their relative imports work
alike here and in the parent. Each worker runs one implementation ("lib",
see :mod:`deconv.bench.peers`) in one mode:

========  ==========================================================
mode      what it does
========  ==========================================================
check     computes every case's outputs once and writes them to disk,
          for the parent to compare with the float64 reference (and,
          when the job asks, times a second, warm call: the naive
          kernels' cost is predicted from it)
time      first call timed apart, warm-up calls, then timed repeats
memory    bytes allocated by one warm conv call (deconv only)
startup   ``import deconv`` + first calls in a fresh process (deconv)
========  ==========================================================

The job (a JSON file written by the parent) names the inputs, raw binary
files that the parent generated from a fixed seed, so every implementation
computes exactly the same thing. The worker writes its result as JSON to
the path the job names.

Nothing here imports NumPy, torch or deconv at module level: each is
imported only by the worker that needs it.
"""

import json
import os
import statistics
import sys
import time

if __name__ == "__main__" and not __package__:
    import types
    # Run as a script, Python puts this file's directory first on sys.path,
    # where the package's modules would shadow top-level modules of the same
    # name in torch's or NumPy's imports. Drop it; `import deconv` comes from
    # PYTHONPATH (set by the parent).
    _here = os.path.dirname(os.path.abspath(__file__))
    if sys.path and os.path.abspath(sys.path[0] or os.curdir) == _here:
        del sys.path[0]
    # This directory as a package that runs no __init__ (PEP 366: a script
    # names its own package for its relative imports).
    _package = types.ModuleType("_deconv_bench")
    _package.__path__ = [_here]
    sys.modules["_deconv_bench"] = _package
    __package__ = "_deconv_bench"

from . import cases as C        # noqa: E402  (after the bootstrap above)
from . import peers             # noqa: E402

THREAD_ENV_VARS = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                   "MKL_NUM_THREADS")
#: XLA's settings, the only say a JAX process has in its threads (the parent's own
#: value never reaches a worker; :func:`deconv.bench.processes.worker_env`)
XLA_ENV_VAR = "XLA_FLAGS"
#: the variables ``--isa`` sets (the parent's own values never reach a worker)
ISA_ENV_VARS = ("NUMBA_CPU_NAME", "NUMBA_CPU_FEATURES", "NUMBA_CACHE_DIR",
                "ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")


# ---------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------

def summarize(times_s):
    """Median / min / max / quartiles, in milliseconds, of a list of seconds."""
    ms = sorted(t * 1e3 for t in times_s)
    q = statistics.quantiles(ms, n=4) if len(ms) >= 2 else [ms[0]] * 3
    return {"median": statistics.median(ms), "min": ms[0], "max": ms[-1],
            "q1": q[0], "q3": q[2], "n": len(ms)}


def time_pair(fwd, bwd, warmup, repeats, budget_s, min_repeats=3):
    """Time a forward and a backward, alternating, after warm-up calls.

    Each repeat runs ``fwd`` then ``bwd`` (as training does) and times them
    separately. Stops after ``repeats`` repeats, or earlier once
    ``min_repeats`` are done and ``budget_s`` seconds have been spent.

    Returns
    -------
    dict
        ``fwd`` and ``bwd`` summaries (see :func:`summarize`), each with
        ``cpu_per_wall``: process CPU time over wall time, about the number
        of busy threads (spin-waiting threads count).
    """
    for _ in range(warmup):
        fwd()
        bwd()
    times = {"fwd": [], "bwd": []}
    cpu = {"fwd": 0.0, "bwd": 0.0}
    start = time.perf_counter()
    while len(times["fwd"]) < repeats:
        for name, fn in (("fwd", fwd), ("bwd", bwd)):
            c0 = time.process_time()
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
            cpu[name] += time.process_time() - c0
        if len(times["fwd"]) >= min_repeats and time.perf_counter() - start > budget_s:
            break
    out = {}
    for name in C.PASSES:
        out[name] = summarize(times[name])
        out[name]["cpu_per_wall"] = cpu[name] / max(sum(times[name]), 1e-12)
    return out


def _openblas_threads():
    """Threads of every OpenBLAS loaded in this process (library -> count); a
    fallback for when threadpoolctl is not installed."""
    import ctypes
    found = {}
    try:
        with open("/proc/self/maps") as f:
            libs = sorted({line.split()[-1] for line in f
                           if "openblas" in line.lower() and ".so" in line})
    except OSError:
        return found
    for lib in libs:
        try:
            handle = ctypes.CDLL(lib)
        except OSError:
            continue
        for sym in ("openblas_get_num_threads", "scipy_openblas_get_num_threads",
                    "scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_"):
            fn = getattr(handle, sym, None)
            if fn is not None:
                found[os.path.basename(lib)] = int(fn())
                break
    return found


def thread_info():
    """Thread settings as this process sees them: environment, the libraries'
    own counts, and the thread pools threadpoolctl finds (BLAS, OpenMP)."""
    info = {"env": {k: os.environ[k] for k in THREAD_ENV_VARS + ("OPENBLAS_CORETYPE",)
                    if k in os.environ}}
    if "numba" in sys.modules:
        numba = sys.modules["numba"]
        info["numba_threads"] = numba.get_num_threads()
        try:
            info["numba_threading_layer"] = numba.threading_layer()
        except ValueError:
            info["numba_threading_layer"] = "not initialised"
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        info["torch_threads"] = torch.get_num_threads()
        info["torch_interop_threads"] = torch.get_num_interop_threads()
    if "jax" in sys.modules:
        # XLA has no thread-count setting: it sizes its pool from the CPUs this
        # process may run on; the flags say whether Eigen's calls use that pool
        info["xla_flags"] = os.environ.get(XLA_ENV_VAR, "")
        info["xla_pool_cpus"] = len(os.sched_getaffinity(0))
    try:
        import threadpoolctl
    except ImportError:
        info["threadpoolctl"] = None
        info["openblas"] = _openblas_threads()
    else:
        info["threadpoolctl"] = [
            {k: p.get(k) for k in ("user_api", "internal_api", "prefix", "version",
                                   "num_threads", "threading_layer", "architecture")}
            for p in threadpoolctl.threadpool_info()]
    return info


def isa_info():
    """What instruction set this process's kernels ran with.

    Numba: the CPU name and the vector extensions of the target its code is
    compiled for (its codegen's own, after ``NUMBA_CPU_NAME`` /
    ``NUMBA_CPU_FEATURES``); PyTorch: ATen's CPU capability (the kernels it
    dispatches to) and the oneDNN ceiling it was given.
    """
    info = {"env": {k: os.environ[k] for k in ISA_ENV_VARS if k in os.environ}}
    if "numba" in sys.modules:
        try:
            from numba.core.registry import cpu_target
            codegen = cpu_target.target_context.codegen()
            name = codegen._get_host_cpu_name()
            features = set(codegen._get_host_cpu_features().split(","))
        except (AttributeError, ImportError) as e:   # Numba's internals moved
            info["numba"] = {"error": f"{type(e).__name__}: {e}"}
        else:
            vector = ("AVX-512" if "+avx512f" in features else "AVX2" if "+avx2" in features
                      else "AVX" if "+avx" in features else "SSE or none")
            info["numba"] = {"cpu_name": name, "vector_isa": vector}
            plan = sys.modules.get("deconv.kernels.plan")
            if plan is not None:
                # the tiles deconv's plans chose for that target (deconv.kernels.plan.TARGET)
                info["numba"]["tiles"] = (
                    f"{plan.TARGET.name}: {plan.TARGET.vector_bytes * 8}-bit vectors, tiles "
                    f"{'x'.join(map(str, plan.FORWARD_TILE))} / "
                    f"{'x'.join(map(str, plan.REDUCE_TILE))} / "
                    f"{'x'.join(map(str, plan.BROADCAST_TILE))}")
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        get = getattr(getattr(torch.backends, "cpu", None), "get_cpu_capability", None)
        info["torch"] = {"aten_cpu_capability": get() if get else None,
                         "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", "host")}
    if "jax" in sys.modules:
        flags = os.environ.get(XLA_ENV_VAR, "").split()
        isa = next((f.split("=", 1)[1] for f in flags if f.startswith("--xla_cpu_max_isa=")),
                   "host")
        info["jax"] = {"xla_cpu_max_isa": isa}
    return info


def versions():
    """Versions of the libraries loaded in this process."""
    out = {"python": sys.version.split()[0]}
    for name in ("numpy", "scipy", "numba", "torch", "jax", "jaxlib", "deconv"):
        mod = sys.modules.get(name)
        if mod is not None:
            out[name] = getattr(mod, "__version__", "?")
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        out["torch_mkldnn"] = bool(torch.backends.mkldnn.is_available())
    if "jax" in sys.modules:
        out["jax_backend"] = sys.modules["jax"].default_backend()
    return out


#: the square GEMM whose rate is the machine's measured ceiling (:func:`gemm_peak`)
PEAK_GEMM_SIZE = 1024


def gemm_peak(dtype, size=PEAK_GEMM_SIZE, repeats=4):
    """GFLOP/s of ``np.matmul`` on a ``size``-square product, best of ``repeats``.

    The ceiling of the roofline: BLAS's assembly GEMM kernels keep the FMA
    units close to busy on a large square product, at the worker's thread
    count (``OPENBLAS_NUM_THREADS``). A loop written in Numba for the
    purpose reached two thirds of it on the reference machine, so it would
    put the ceiling too low.
    """
    import numpy as np
    rng = np.random.default_rng(0)
    left = rng.standard_normal((size, size)).astype(dtype)
    right = rng.standard_normal((size, size)).astype(dtype)
    out = np.empty((size, size), dtype=dtype)
    np.matmul(left, right, out=out)            # BLAS's threads up, pages touched
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        np.matmul(left, right, out=out)
        best = min(best, time.perf_counter() - t)
    return 2 * size ** 3 / best / 1e9


# ---------------------------------------------------------------------------
# the worker
# ---------------------------------------------------------------------------

def _run_case(job, entry, build):
    """One case of a check / time / memory job; returns its result dict."""
    case = entry["case"]
    arrays = {k: peers.load_array(spec, job["lib"]) for k, spec in entry["arrays"].items()}
    fwd, bwd, fwd_names, bwd_names = build(case, arrays)
    res = {}
    t = time.perf_counter()
    out_f = fwd()
    res["first_fwd_s"] = time.perf_counter() - t
    t = time.perf_counter()
    out_b = bwd()
    res["first_bwd_s"] = time.perf_counter() - t
    mode = job["mode"]
    if mode == "check":
        outs = dict(zip(fwd_names + bwd_names, tuple(out_f) + tuple(out_b)))
        if case["name"] in job.get("perturb", ()):
            # test hook: a deliberately wrong implementation must fail the check
            outs["y"] = outs["y"] * 1.01
        res["outputs"] = {k: peers.save_array(v, os.path.join(job["out_dir"],
                                                             f"{entry['key']}__{k}.bin"),
                                              job["lib"]) for k, v in outs.items()}
        if job.get("warm_call"):
            # the cost of a compiled call on the reduced case, from which the
            # parent predicts the full-size one
            t = time.perf_counter()
            fwd()
            bwd()
            res["warm_s"] = time.perf_counter() - t
    elif mode == "time":
        res.update(time_pair(fwd, bwd, job["warmup"], job["repeats"], job["budget_s"],
                             job.get("min_repeats", 3)))
        if entry.get("limit"):
            import numpy as np
            lf, lb = peers.limit_impl(case, np.dtype(entry["dtype"]))
            lf()
            lb()
            res["limit"] = time_pair(lf, lb, job["warmup"], job["repeats"], job["budget_s"],
                                     job.get("min_repeats", 3))
    elif mode == "memory":
        del out_f, out_b
        fwd()
        bwd()                       # warm: compiled, thread pool up
        res["memory"] = {"fwd": measure_memory(fwd), "bwd": measure_memory(bwd)}
    return res


def _nbytes(values):
    total = 0
    for v in values:
        total += v.numel() * v.element_size() if hasattr(v, "element_size") else v.nbytes
    return total


def _read_status():
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) * 1024
    return out


def measure_memory(fn):
    """Bytes allocated by one call of ``fn`` beyond the arrays it returns.

    Three views, because none sees everything:

    * ``tracemalloc`` peak: NumPy reports its array buffers to tracemalloc,
      so this counts every NumPy allocation made during the call, freed or
      not;
    * Numba's NRT allocation count (``NUMBA_NRT_STATS=1``): arrays created
      inside compiled code are invisible to tracemalloc; a nonzero count
      says they exist (NRT counts allocations, not bytes);
    * peak RSS growth: ``/proc/self/clear_refs`` resets the high-water mark,
      which then includes NRT arrays, as touched pages. The parent runs this
      worker with ``MALLOC_MMAP_THRESHOLD_`` low so that large blocks are
      fresh mappings returned on free, not recycled heap pages that would
      hide them.

    Returns
    -------
    dict
        ``output_bytes``, ``tracemalloc_peak``, ``rss_peak_growth`` (None
        where unavailable), ``nrt_allocs``, ``extra_bytes`` = the larger
        peak minus ``output_bytes`` (at least 0), ``extra_over_output``.
    """
    import tracemalloc
    nrt = None
    try:
        from numba.core.runtime import rtsys
        nrt = rtsys.get_allocation_stats().alloc
    except Exception:          # stats disabled (NUMBA_NRT_STATS unset) or no numba
        pass
    rss_ok = True
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        rss0 = _read_status()["VmRSS"]
    except OSError:
        rss_ok = False
    tracemalloc.start()
    out = fn()
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_growth = _read_status()["VmHWM"] - rss0 if rss_ok else None
    nrt_allocs = None
    if nrt is not None:
        from numba.core.runtime import rtsys
        nrt_allocs = rtsys.get_allocation_stats().alloc - nrt
    out_bytes = _nbytes(out)
    peak = max(traced_peak, rss_growth or 0)
    extra = max(0, peak - out_bytes)
    return {"output_bytes": out_bytes, "tracemalloc_peak": traced_peak,
            "rss_peak_growth": rss_growth, "nrt_allocs": nrt_allocs, "extra_bytes": extra,
            "extra_over_output": extra / out_bytes if out_bytes else 0.0}


def run_job(job):
    """Run one job (a dict, see the module docstring) and return its result dict."""
    lib = job["lib"]
    t0 = time.perf_counter()
    if job["mode"] == "startup":
        return startup_worker(job)
    try:
        build = peers.builder(lib, job["threads"])
    except ImportError as e:
        if lib not in peers.OPTIONAL_LIBS:
            raise
        # PyTorch and JAX are optional: say so, and the parent drops the column
        return {"lib": lib, "mode": job["mode"], "unavailable": f"{type(e).__name__}: {e}"}
    result = {"lib": lib, "mode": job["mode"], "import_s": time.perf_counter() - t0,
              "cases": {}}
    # the whole job under the lib's kernel set ('naive': deconv.kernels.use("naive"))
    with peers.kernel_set(lib):
        # what deconv reports as selected (None where it has no kernel sets):
        # the parent refuses a 'naive' worker that did not run the naive set
        result["kernels"] = peers.active_kernel_set()
        for entry in job["entries"]:
            try:
                result["cases"][entry["key"]] = _run_case(job, entry, build)
            except Exception as e:     # report per case; the parent decides what fails
                import traceback
                result["cases"][entry["key"]] = {
                    "error": f"{type(e).__name__}: {e}",
                    "traceback": traceback.format_exc(limit=6)}
    if job.get("peak_dtypes"):
        result["peak_gflops"] = {dt: gemm_peak(dt) for dt in job["peak_dtypes"]}
    result["threads"] = thread_info()
    result["isa"] = isa_info()
    result["versions"] = versions()
    if "deconv" in sys.modules:
        result["deconv_file"] = sys.modules["deconv"].__file__
    return result


def check_imports(lib):
    """Raise if this process imported a library that ``lib``'s worker must not have."""
    leaked = [m for m in peers.FORBIDDEN_IMPORTS[lib] if m in sys.modules]
    if leaked:
        raise RuntimeError(f"the {lib} worker imported {leaked}")


# ---------------------------------------------------------------------------
# start-up worker (deconv only)
# ---------------------------------------------------------------------------

def api_calls(deconv, np, dtype):
    """``(name, thunk)`` for one forward+backward of each public function present.

    Arguments are bound by parameter name from the signature; a function
    whose signature cannot be satisfied is reported as an error, not
    skipped silently.
    """
    import inspect
    rng = np.random.default_rng(0)
    C = 4

    def rand(*shape):
        return rng.standard_normal(shape).astype(dtype)

    def x_for(name):
        return rand(2, C, 8) if "1d" in name else rand(2, C, 8, 8)

    def bind(fn, values, fixed):
        kw = {}
        for p in inspect.signature(fn).parameters.values():
            if p.name in fixed:
                kw[p.name] = fixed[p.name]
            elif p.name in values:
                kw[p.name] = values[p.name]
            elif p.default is inspect.Parameter.empty:
                raise TypeError(f"{fn.__name__}: no value for required parameter {p.name!r}")
        return kw

    fixed_by_family = {
        "conv": {"padding": 1},
        "max_pool": {"kernel_size": 2},
        "avg_pool": {"kernel_size": 2},
        "max_unpool": {"kernel_size": 2},
        "upsample": {"scale_factor": 2},
        "pixel_shuffle": {"upscale_factor": 2},
        "pixel_unshuffle": {"downscale_factor": 2},
    }
    # 2-D first: the 1-D functions run the 2-D kernels, so they then show
    # only their own (wrapper) cost
    forward_names = [
        "conv2d", "conv1d", "conv_transpose2d", "conv_transpose1d",
        "max_pool2d", "max_pool1d", "avg_pool2d", "avg_pool1d",
        "max_unpool2d", "max_unpool1d",
        "upsample_nearest2d", "upsample_nearest1d", "upsample_bilinear2d",
        "upsample_linear1d", "pixel_shuffle", "pixel_unshuffle",
    ]
    calls = []
    for name in forward_names:
        if not hasattr(deconv, name):
            continue
        family = next(f for f in fixed_by_family if name.startswith(f))
        fixed = fixed_by_family[family]

        def thunk(name=name, fixed=fixed):
            fn = getattr(deconv, name)
            x = x_for(name)
            values = {"x": x, "input": x, "bias": rand(C),
                      "weight": rand(C, C, 3) if "1d" in name else rand(C, C, 3, 3)}
            if name.startswith("max_unpool"):
                pooled, idx = getattr(deconv, name.replace("unpool", "pool"))(x, kernel_size=2)
                values.update(x=pooled, input=pooled, indices=idx)
            out = fn(**bind(fn, values, fixed))
            y, extra = (out[0], out[1]) if isinstance(out, tuple) else (out, None)
            bname = name + "_backward"
            if not hasattr(deconv, bname):
                return "forward only"
            bfn = getattr(deconv, bname)
            values.update(grad_output=rand(*y.shape), input_shape=values["x"].shape)
            if extra is not None:
                values["indices"] = extra
            bfn(**bind(bfn, values, fixed))
            return "ok"

        calls.append((name, thunk))
    return calls


def startup_worker(job):
    """``import deconv``, then the first conv2d forward+backward ('conv2d') or one
    forward+backward of every public op in float32 and float64 ('api')."""
    t0 = time.perf_counter()
    import numpy as np
    import deconv
    res = {"import_s": time.perf_counter() - t0, "deconv_file": deconv.__file__}
    if job["what"] == "conv2d":
        rng = np.random.default_rng(0)
        x = rng.standard_normal((2, 4, 8, 8)).astype(np.float32)
        w = rng.standard_normal((4, 4, 3, 3)).astype(np.float32)
        b = rng.standard_normal(4).astype(np.float32)
        t = time.perf_counter()
        y = deconv.conv2d(x, w, b, padding=1)
        res["first_fwd_s"] = time.perf_counter() - t
        t = time.perf_counter()
        deconv.conv2d_backward(y, x, w, padding=1)
        res["first_bwd_s"] = time.perf_counter() - t
    else:
        res["calls"], res["errors"] = {}, {}
        for dtype in ("float32", "float64"):
            for name, thunk in api_calls(deconv, np, np.dtype(dtype)):
                t = time.perf_counter()
                try:
                    status = thunk()
                except Exception as e:   # report, keep going
                    res["errors"][f"{name}/{dtype}"] = f"{type(e).__name__}: {e}"
                    continue
                res["calls"][f"{name}/{dtype}"] = {"s": time.perf_counter() - t,
                                                   "status": status}
    res["total_in_process_s"] = time.perf_counter() - t0
    return res


def main(argv=None):
    """``worker.py JOB.json``: run the job, write its result where it says."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: worker.py JOB.json (started by `deconv bench`)", file=sys.stderr)
        return 2
    with open(argv[0]) as f:
        job = json.load(f)
    result = run_job(job)
    if job["mode"] != "startup" and "unavailable" not in result:
        check_imports(job["lib"])
    with open(job["result_path"], "w") as f:
        json.dump(result, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
