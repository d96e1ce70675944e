#!/usr/bin/env python
"""First speed benchmark: deconv vs PyTorch (CPU) on one conv2d layer, and start-up cost.

Speed mode (default)
--------------------
conv2d forward / backward / forward+backward, N=32, C_in=C_out=64, 32x32,
3x3 kernel, padding 1, stride 1, with bias, float32 and float64.

* deconv:  ``y = deconv.conv2d(x, w, b, padding=1)``;
           ``deconv.conv2d_backward(gy, x, w, padding=1)`` -> (gx, gw, gb).
* PyTorch: ``fwd``     = ``F.conv2d`` under ``no_grad``;
           ``bwd``     = ``torch.ops.aten.convolution_backward`` (all three grads);
           ``fwd+bwd`` = autograd: ``F.conv2d`` on leaves with ``requires_grad``,
           then ``y.backward(gy)``.  ``bwd_autograd`` (``y.backward`` alone,
           forward untimed) is reported as extra information.

Each library runs in its own subprocess: PyTorch's and Numba's OpenMP runtimes
in one process compete for the cores and distort timings, so the deconv worker
never imports torch (and the parent imports neither).  Workers are launched
alternately, deconv / torch / deconv / torch ..., ``--rounds`` times per
configuration; each does a first call (reported separately: compile or cache
load for deconv, library initialisation for torch), ``--warmup`` untimed
calls, then ``--repeats`` timed calls per phase, and prints JSON with the
medians.  The parent reports the median of the per-worker medians, the spread
of those medians, and the ratio deconv/torch.

Thread settings: "default" leaves both libraries at their defaults (2 threads
on the reference machine; reported by the workers); "1" sets
NUMBA_NUM_THREADS=OPENBLAS_NUM_THREADS=OMP_NUM_THREADS=MKL_NUM_THREADS=1 for
deconv and OMP_NUM_THREADS=1 + ``torch.set_num_threads(1)`` for torch.

Correctness is checked before any timing: the parent writes the inputs (fixed
seed) to a temporary directory, one check worker per library computes y, gx,
gw, gb and saves them (deconv: .npz; torch: raw bytes, since the torch
environment need not have NumPy), and the parent compares.  The deconv check
worker also compares its forward with a NumPy im2col computation in float64,
so there is a check even without torch.

Before each worker the parent samples the CPU usage of the whole machine for
``--idle-sample`` seconds (no worker of ours running) and waits, up to
``--max-wait`` seconds, while it exceeds ``--max-busy`` percent; the busy
figure seen is reported next to each result.

Start-up mode (``--startup``)
-----------------------------
Works on a copy of the package (``--deconv-path``/deconv copied to a
temporary directory) so the repository's Numba cache is not touched.

* cold: clear the Numba cache (*.nbi, *.nbc) of the copy, then in a fresh
  process time ``import deconv`` + the first conv2d forward+backward
  (float32); clear again and time, in a fresh process, one forward+backward
  of every public function present (conv 1-D/2-D and transposed; pooling,
  unpooling, upsampling, pixel (un)shuffle if ``hasattr(deconv, name)``) in
  float32 and float64 on tiny inputs.
* warm: the same two measurements with the cache present, ``--warm-repeats``
  times each (median reported).

Usage
-----
    python benchmarks/first_speed.py --torch-python /tmp/tv/bin/python
    python benchmarks/first_speed.py --startup
"""

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

SCRIPT = os.path.abspath(__file__)
REPO = os.path.dirname(os.path.dirname(SCRIPT))

SHAPES = {
    "x": (32, 64, 32, 32),
    "w": (64, 64, 3, 3),
    "b": (64,),
    "gy": (32, 64, 32, 32),
}
PADDING = 1
PHASES = ("fwd", "bwd", "fwd+bwd")
OUTPUTS = ("y", "gx", "gw", "gb")
THREAD_ENV_VARS = ("NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                   "MKL_NUM_THREADS")
# max |a - b| / max |b| allowed, per dtype
TOLERANCE = {"float32": 1e-5, "float64": 1e-12}


# ---------------------------------------------------------------------------
# helpers shared by workers (no numpy / torch at module level)
# ---------------------------------------------------------------------------

def _read_meta(data_dir):
    with open(os.path.join(data_dir, "meta.json")) as f:
        return json.load(f)


def _summary(times):
    """Median / min / max / quartiles in milliseconds of a list of seconds."""
    ms = sorted(t * 1e3 for t in times)
    q = statistics.quantiles(ms, n=4) if len(ms) >= 2 else [ms[0]] * 3
    return {"median": statistics.median(ms), "min": ms[0], "max": ms[-1],
            "q1": q[0], "q3": q[2], "n": len(ms)}


def _time_phase(fn, warmup, repeats):
    for _ in range(warmup):
        fn()
    times = []
    cpu0 = time.process_time()
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    cpu = time.process_time() - cpu0
    s = _summary(times)
    s["cpu_per_wall"] = cpu / sum(times)   # ~ number of busy threads (spinning counts)
    return s


def _openblas_threads():
    """Threads of every OpenBLAS loaded in this process (path -> count)."""
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


# ---------------------------------------------------------------------------
# deconv worker (system python; never imports torch)
# ---------------------------------------------------------------------------

def _im2col_forward(x, w, b, pad):
    """Reference conv2d forward in float64 with NumPy only (stride 1)."""
    import numpy as np
    x = x.astype(np.float64)
    w = w.astype(np.float64)
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    kh, kw = w.shape[2:]
    win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(2, 3))
    # win: (N, C_in, H_out, W_out, kh, kw)
    y = np.einsum("nchwij,ocij->nohw", win, w, optimize=True)
    return y + b.astype(np.float64)[None, :, None, None]


def deconv_worker(args):
    t0 = time.perf_counter()
    import numpy as np
    import numba
    import deconv
    import_s = time.perf_counter() - t0
    if "torch" in sys.modules:
        raise RuntimeError("torch got imported in the deconv worker")

    meta = _read_meta(args.data)
    dt = np.dtype(args.dtype)
    arr = {k: np.fromfile(os.path.join(args.data, f"{k}_{args.dtype}.bin"), dtype=dt)
           .reshape(meta["shapes"][k]) for k in SHAPES}
    x, w, b, gy = arr["x"], arr["w"], arr["b"], arr["gy"]

    def fwd():
        return deconv.conv2d(x, w, b, padding=PADDING)

    def bwd():
        return deconv.conv2d_backward(gy, x, w, padding=PADDING)

    def fwdbwd():
        y = deconv.conv2d(x, w, b, padding=PADDING)
        return y, deconv.conv2d_backward(gy, x, w, padding=PADDING)

    out = {"lib": "deconv", "dtype": args.dtype, "import_s": import_s}
    t = time.perf_counter()
    y = fwd()
    out["first_fwd_s"] = time.perf_counter() - t
    t = time.perf_counter()
    gx, gw, gb = bwd()
    out["first_bwd_s"] = time.perf_counter() - t

    if args.check_out:
        ref = _im2col_forward(x, w, b, PADDING)
        out["im2col_rel_err"] = float(np.max(np.abs(y - ref)) / np.max(np.abs(ref)))
        np.savez(args.check_out, y=y, gx=gx, gw=gw, gb=gb)
    else:
        out["phases"] = {
            "fwd": _time_phase(fwd, args.warmup, args.repeats),
            "bwd": _time_phase(bwd, args.warmup, args.repeats),
            "fwd+bwd": _time_phase(fwdbwd, args.warmup, args.repeats),
        }
    out["threads"] = {
        "numba": numba.get_num_threads(),
        "numba_layer": _numba_layer(numba),
        "openblas": _openblas_threads(),
        "env": {k: os.environ.get(k) for k in THREAD_ENV_VARS if k in os.environ},
    }
    out["versions"] = {"numpy": np.__version__, "numba": numba.__version__,
                       "deconv_file": deconv.__file__}
    print(json.dumps(out))


def _numba_layer(numba):
    try:
        return numba.threading_layer()
    except ValueError:
        return "not initialised"


# ---------------------------------------------------------------------------
# torch worker (torch python; NumPy not required)
# ---------------------------------------------------------------------------

def torch_worker(args):
    t0 = time.perf_counter()
    import torch
    import torch.nn.functional as F
    import_s = time.perf_counter() - t0
    if args.threads == "1":
        torch.set_num_threads(1)

    meta = _read_meta(args.data)
    tdt = {"float32": torch.float32, "float64": torch.float64}[args.dtype]

    def load(k):
        with open(os.path.join(args.data, f"{k}_{args.dtype}.bin"), "rb") as f:
            buf = bytearray(f.read())
        return torch.frombuffer(buf, dtype=tdt).reshape(meta["shapes"][k]).clone()

    x, w, b, gy = (load(k) for k in ("x", "w", "b", "gy"))
    xr, wr, br = (t.clone().requires_grad_(True) for t in (x, w, b))
    conv_bwd = torch.ops.aten.convolution_backward

    def fwd():
        with torch.no_grad():
            return F.conv2d(x, w, b, padding=PADDING)

    def bwd():
        return conv_bwd(gy, x, w, [w.shape[0]], [1, 1], [PADDING, PADDING], [1, 1],
                        False, [0, 0], 1, [True, True, True])

    def fwdbwd():
        xr.grad = wr.grad = br.grad = None
        y = F.conv2d(xr, wr, br, padding=PADDING)
        y.backward(gy)
        return y

    out = {"lib": "torch", "dtype": args.dtype, "import_s": import_s}
    t = time.perf_counter()
    fwd()
    out["first_fwd_s"] = time.perf_counter() - t
    t = time.perf_counter()
    bwd()
    out["first_bwd_s"] = time.perf_counter() - t

    if args.check_out:
        import ctypes
        y = fwdbwd()
        tensors = {"y": y.detach(), "gx": xr.grad, "gw": wr.grad, "gb": br.grad}
        # also the aten path used for the "bwd" timing must agree with autograd
        gx2, gw2, gb2 = bwd()
        out["aten_vs_autograd_max_abs"] = max(
            float((a - c).abs().max()) for a, c in
            ((gx2, xr.grad), (gw2, wr.grad), (gb2, br.grad)))
        os.makedirs(args.check_out, exist_ok=True)
        for k, t in tensors.items():
            t = t.contiguous()
            raw = ctypes.string_at(t.data_ptr(), t.numel() * t.element_size())
            with open(os.path.join(args.check_out, f"{k}.bin"), "wb") as f:
                f.write(raw)
    else:
        phases = {
            "fwd": _time_phase(fwd, args.warmup, args.repeats),
            "bwd": _time_phase(bwd, args.warmup, args.repeats),
            "fwd+bwd": _time_phase(fwdbwd, args.warmup, args.repeats),
        }
        # y.backward alone (forward outside the timer)
        times = []
        for i in range(args.warmup + args.repeats):
            xr.grad = wr.grad = br.grad = None
            y = F.conv2d(xr, wr, br, padding=PADDING)
            t = time.perf_counter()
            y.backward(gy)
            if i >= args.warmup:
                times.append(time.perf_counter() - t)
        phases["bwd_autograd"] = _summary(times)
        out["phases"] = phases
    out["threads"] = {
        "torch_intra": torch.get_num_threads(),
        "torch_interop": torch.get_num_interop_threads(),
        "env": {k: os.environ.get(k) for k in THREAD_ENV_VARS if k in os.environ},
    }
    out["versions"] = {"torch": torch.__version__,
                       "mkldnn": bool(torch.backends.mkldnn.is_available())}
    print(json.dumps(out))


# ---------------------------------------------------------------------------
# start-up worker (deconv only)
# ---------------------------------------------------------------------------

def _api_calls(deconv, np, dtype):
    """(name, thunk) for one forward+backward of each public function present.

    Arguments are bound by parameter name from the signature; the calls follow
    the torch-like signatures of deconv.reference.  A function whose
    signature cannot be satisfied is reported as an error, not skipped silently.
    """
    import inspect
    rng = np.random.default_rng(0)
    C = 4

    def rand(*shape):
        return rng.standard_normal(shape).astype(dtype)

    def x_for(name):
        return rand(2, C, 8) if "1d" in name else rand(2, C, 8, 8)

    def bind(fn, values, fixed):
        sig = inspect.signature(fn)
        kw = {}
        for p in sig.parameters.values():
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
    forward_names = [
        # 2-D first: the 1-D functions run the 2-D kernels, so they then show
        # only their own (wrapper) cost
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
            values = {"x": x, "input": x, "weight": rand(C, C, 3) if "1d" in name
                      else rand(C, C, 3, 3), "bias": rand(C)}
            if name.startswith("max_unpool"):
                pool = getattr(deconv, name.replace("unpool", "pool"))
                pooled, idx = pool(x, kernel_size=2)
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


def startup_worker(args):
    t0 = time.perf_counter()
    import numpy as np
    import deconv
    res = {"import_s": time.perf_counter() - t0, "deconv_file": deconv.__file__}
    if args.startup_what == "conv2d":
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
            for name, thunk in _api_calls(deconv, np, np.dtype(dtype)):
                t = time.perf_counter()
                try:
                    status = thunk()
                except Exception as e:   # report, keep going
                    res["errors"][f"{name}/{dtype}"] = f"{type(e).__name__}: {e}"
                    continue
                res["calls"][f"{name}/{dtype}"] = {"s": time.perf_counter() - t,
                                                   "status": status}
        public = sorted(n for n in dir(deconv) if not n.startswith("_")
                        and callable(getattr(deconv, n))
                        and not isinstance(getattr(deconv, n), type(sys)))
        exercised = {k.split("/")[0] for k in list(res["calls"]) + list(res["errors"])}
        exercised |= {n + "_backward" for n in exercised}
        res["public_not_exercised"] = [n for n in public if n not in exercised]
    res["total_in_process_s"] = time.perf_counter() - t0
    print(json.dumps(res))


# ---------------------------------------------------------------------------
# parent
# ---------------------------------------------------------------------------

def _stat_snap():
    """(total, idle, steal) jiffies of the whole machine from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(t) for t in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    steal = v[7] if len(v) > 7 else 0
    return sum(v), idle, steal


def _cpu_busy(seconds):
    """Whole-machine CPU busy percentage over ``seconds`` (from /proc/stat)."""
    try:
        t1, i1, _ = _stat_snap()
        time.sleep(seconds)
        t2, i2, _ = _stat_snap()
    except OSError:
        return float("nan")
    return 100.0 * (1.0 - (i2 - i1) / max(t2 - t1, 1))


def _loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def _wait_quiet(args):
    """Sample machine load; wait while busy. Returns the last busy % seen."""
    deadline = time.time() + args.max_wait
    while True:
        busy = _cpu_busy(args.idle_sample)
        if busy <= args.max_busy or time.time() > deadline:
            if busy > args.max_busy:
                print(f"    ! machine still {busy:.0f}% busy after waiting "
                      f"{args.max_wait:.0f}s, measuring anyway", flush=True)
            return busy
        print(f"    machine {busy:.0f}% busy (load {_loadavg()}), waiting...", flush=True)
        time.sleep(5)


def _clean_env(threads):
    env = {k: v for k, v in os.environ.items() if k not in THREAD_ENV_VARS}
    if threads == "1":
        env.update({k: "1" for k in THREAD_ENV_VARS})
    return env


def _run_worker(lib, python, args, dtype, threads, data, check_out=None, deconv_path=None):
    cmd = [python, SCRIPT, "--worker", lib, "--dtype", dtype, "--threads", threads,
           "--data", data, "--repeats", str(args.repeats), "--warmup", str(args.warmup)]
    if check_out:
        cmd += ["--check-out", check_out]
    env = _clean_env(threads)
    if lib == "deconv":
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (deconv_path or args.deconv_path, os.environ.get("PYTHONPATH")) if p)
    else:
        env.pop("PYTHONPATH", None)
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    st0 = _stat_snap()
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    st1 = _stat_snap()
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{lib} worker failed ({' '.join(cmd)}):\n{proc.stderr}")
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res["process_wall_s"] = wall
    # CPU used on the machine during the worker by anything but the worker,
    # in % of all cores (steal = time the hypervisor gave to other guests)
    total, idle, steal = (b - a for a, b in zip(st0, st1))
    hz = os.sysconf("SC_CLK_TCK")
    child = (ru1.ru_utime - ru0.ru_utime + ru1.ru_stime - ru0.ru_stime) * hz
    res["others_pct"] = max(0.0, 100.0 * (total - idle - steal - child) / max(total, 1))
    res["steal_pct"] = 100.0 * steal / max(total, 1)
    return res


def _torch_available(python):
    try:
        proc = subprocess.run([python, "-c", "import torch; print(torch.__version__)"],
                              capture_output=True, text=True, timeout=120,
                              env=_clean_env("default"))
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, str(e)
    if proc.returncode != 0:
        return None, proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed"
    return proc.stdout.strip(), ""


def _write_inputs(data_dir):
    import numpy as np
    rng = np.random.default_rng(20240601)
    meta = {"shapes": {k: list(s) for k, s in SHAPES.items()}, "seed": 20240601}
    for k, shape in SHAPES.items():
        a = rng.standard_normal(shape)
        for dt in ("float32", "float64"):
            a.astype(dt).tofile(os.path.join(data_dir, f"{k}_{dt}.bin"))
    with open(os.path.join(data_dir, "meta.json"), "w") as f:
        json.dump(meta, f)


def _correctness(args, data, torch_ok, dtypes):
    import numpy as np
    ok = True
    print("\nCorrectness (max|deconv - ref| / max|ref|), before timing:")
    shapes = {"y": SHAPES["gy"], "gx": SHAPES["x"], "gw": SHAPES["w"], "gb": SHAPES["b"]}
    for dt in dtypes:
        dout = os.path.join(data, f"check_deconv_{dt}.npz")
        dres = _run_worker("deconv", args.python, args, dt, "default", data, check_out=dout)
        tol = TOLERANCE[dt]
        line = [f"  {dt}: forward vs NumPy im2col (float64) {dres['im2col_rel_err']:.2e}"]
        ok &= dres["im2col_rel_err"] <= max(tol, 1e-6 if dt == "float32" else tol)
        if torch_ok:
            tout = os.path.join(data, f"check_torch_{dt}")
            tres = _run_worker("torch", args.torch_python, args, dt, "default", data,
                               check_out=tout)
            d = np.load(dout)
            errs = []
            for k in OUTPUTS:
                ref = np.fromfile(os.path.join(tout, f"{k}.bin"), dtype=dt).reshape(shapes[k])
                e = float(np.max(np.abs(d[k] - ref)) / np.max(np.abs(ref)))
                errs.append(f"{k} {e:.1e}")
                ok &= e <= tol
            line.append("; vs torch: " + ", ".join(errs)
                        + f" (tol {tol:.0e}; torch aten-vs-autograd max abs "
                          f"{tres['aten_vs_autograd_max_abs']:.1e})")
        print("".join(line))
    return ok


def speed(args):
    print(f"first_speed: conv2d N=32 C=64->64 32x32 k3 p1, phases {PHASES}")
    print(f"load average at start: {_loadavg()}  (nproc {os.cpu_count()})")
    try:
        top = subprocess.run(["top", "-bn1"], capture_output=True, text=True).stdout
        print("top -bn1 (head):\n  " + "\n  ".join(top.splitlines()[:12]))
    except OSError:
        pass

    version, why = _torch_available(args.torch_python)
    torch_ok = version is not None
    if torch_ok:
        print(f"torch {version} via {args.torch_python}")
    else:
        print(f"torch not importable with {args.torch_python} ({why}): torch column skipped")

    dtypes = args.dtypes.split(",")
    thread_modes = args.threads_list.split(",")
    results = {}
    with tempfile.TemporaryDirectory(prefix="first_speed_") as data:
        _write_inputs(data)
        if not _correctness(args, data, torch_ok, dtypes):
            print("CORRECTNESS CHECK FAILED: not timing.")
            return 1
        libs = ["deconv"] + (["torch"] if torch_ok else [])
        pythons = {"deconv": args.python, "torch": args.torch_python}
        print(f"\nTiming: {args.rounds} rounds x {libs}, {args.warmup} warm-up + "
              f"{args.repeats} timed calls per phase per worker")
        for threads in thread_modes:
            for dt in dtypes:
                key = (threads, dt)
                results[key] = {lib: [] for lib in libs}
                for r in range(args.rounds):
                    for lib in libs:
                        for attempt in range(args.retries + 1):
                            busy = _wait_quiet(args)
                            res = _run_worker(lib, pythons[lib], args, dt, threads, data)
                            if res["others_pct"] <= args.max_others:
                                break
                            if attempt < args.retries:
                                print(f"    other processes used {res['others_pct']:.0f}% "
                                      f"during {lib} round {r + 1}: re-running", flush=True)
                        res["busy_before_pct"] = busy
                        res["attempts"] = attempt + 1
                        res["load_after"] = _loadavg()
                        results[key][lib].append(res)
                        ph = res["phases"]
                        print(f"  threads={threads:7s} {dt} round {r + 1} {lib:6s}: "
                              + "  ".join(f"{p} {ph[p]['median']:.1f}ms "
                                          f"[{ph[p]['min']:.1f}-{ph[p]['max']:.1f}]"
                                          for p in PHASES)
                              + f"  (busy before {busy:.0f}%, others during "
                                f"{res['others_pct']:.0f}%, steal {res['steal_pct']:.0f}%)",
                              flush=True)

    _report(results, torch_ok)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({f"{t}/{d}": v for (t, d), v in results.items()}, f, indent=1)
        print(f"\nraw results written to {args.json}")
    return 0


def _med_of_meds(runs, phase):
    meds = [r["phases"][phase]["median"] for r in runs]
    return statistics.median(meds), min(meds), max(meds)


def _report(results, torch_ok):
    print("\n=== Summary, ms. med = median of the per-worker medians [min-max of them];"
          "\n    best = fastest per-worker median (the machine's noise is bimodal: whole"
          "\n    stretches of seconds run ~2x slower, so 'best' is the uncontended figure)")
    head = f"{'threads':8s} {'dtype':8s} {'phase':8s} {'deconv med':>23s}"
    if torch_ok:
        head += f" {'torch med':>23s} {'ratio med':>9s} {'ratio best':>10s}"
    print(head)
    for (threads, dt), by_lib in results.items():
        for phase in PHASES:
            m, lo, hi = _med_of_meds(by_lib["deconv"], phase)
            line = f"{threads:8s} {dt:8s} {phase:8s} {m:8.1f} [{lo:6.1f}-{hi:6.1f}]"
            if torch_ok:
                tm, tlo, thi = _med_of_meds(by_lib["torch"], phase)
                line += (f" {tm:8.1f} [{tlo:6.1f}-{thi:6.1f}] {m / tm:9.2f} "
                         f"{lo / tlo:10.2f}")
            print(line)
        if torch_ok:
            tm, tlo, thi = _med_of_meds(by_lib["torch"], "bwd_autograd")
            print(f"{threads:8s} {dt:8s} (torch y.backward alone, autograd: {tm:.1f} ms "
                  f"[{tlo:.1f}-{thi:.1f}])")

    print("\nFirst call (s, median over workers; deconv = Numba cache load or compile):")
    for (threads, dt), by_lib in results.items():
        parts = []
        for lib, runs in by_lib.items():
            f = statistics.median(r["first_fwd_s"] for r in runs)
            b = statistics.median(r["first_bwd_s"] for r in runs)
            imp = statistics.median(r["import_s"] for r in runs)
            parts.append(f"{lib}: import {imp:.2f}, fwd {f:.3f}, bwd {b:.3f}")
        print(f"  threads={threads} {dt}: " + "; ".join(parts))

    print("\nThreads reported by the workers, and CPU-time/wall-time in fwd+bwd "
          "(~busy threads; OpenMP spin-waiting counts):")
    for (threads, dt), by_lib in results.items():
        parts = []
        for lib, runs in by_lib.items():
            util = statistics.median(r["phases"]["fwd+bwd"]["cpu_per_wall"] for r in runs)
            th = dict(runs[0]["threads"])
            th.pop("env", None)
            parts.append(f"{lib} {th} cpu/wall {util:.2f}")
        print(f"  threads={threads} {dt}: " + "; ".join(parts))

    print("\nWithin-worker spread (fwd+bwd, (q3-q1)/median, median over workers):")
    for (threads, dt), by_lib in results.items():
        parts = []
        for lib, runs in by_lib.items():
            iqr = statistics.median((r["phases"]["fwd+bwd"]["q3"] - r["phases"]["fwd+bwd"]["q1"])
                                    / r["phases"]["fwd+bwd"]["median"] for r in runs)
            parts.append(f"{lib} {100 * iqr:.0f}%")
        print(f"  threads={threads} {dt}: " + ", ".join(parts))
    allruns = [r for v in results.values() for runs in v.values() for r in runs]
    busy = [r["busy_before_pct"] for r in allruns]
    others = [r["others_pct"] for r in allruns]
    print(f"\nMachine busy before workers: median {statistics.median(busy):.0f}%, "
          f"max {max(busy):.0f}%; CPU used by other processes during workers: median "
          f"{statistics.median(others):.0f}%, max {max(others):.0f}% (of all cores); "
          f"steal max {max(r['steal_pct'] for r in allruns):.0f}%; load at end {_loadavg()}")
    print("Workers whose fwd+bwd median is >25% off the median of their configuration:")
    flagged = 0
    for (threads, dt), by_lib in results.items():
        for lib, runs in by_lib.items():
            m = _med_of_meds(runs, "fwd+bwd")[0]
            for i, r in enumerate(runs):
                v = r["phases"]["fwd+bwd"]["median"]
                if abs(v - m) > 0.25 * m:
                    flagged += 1
                    print(f"  threads={threads} {dt} {lib} round {i + 1}: {v:.1f} ms vs {m:.1f} "
                          f"(others {r['others_pct']:.0f}%)")
    if not flagged:
        print("  none")


# --- start-up -----------------------------------------------------------------

def _clear_numba_cache(pkg_dir):
    n = 0
    for root, _, files in os.walk(pkg_dir):
        for f in files:
            if f.endswith((".nbi", ".nbc")):
                os.remove(os.path.join(root, f))
                n += 1
    return n


def _startup_run(args, copy_root, what):
    cmd = [args.python, SCRIPT, "--startup-worker", "--startup-what", what]
    env = _clean_env("default")
    env["PYTHONPATH"] = copy_root
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=copy_root)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"start-up worker failed:\n{proc.stderr}")
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res["process_wall_s"] = wall
    if not res["deconv_file"].startswith(copy_root):
        raise RuntimeError(f"imported {res['deconv_file']}, not the copy in {copy_root}")
    return res


def startup(args):
    print(f"start-up: load average {_loadavg()}, busy {_cpu_busy(1.0):.0f}%")
    src = os.path.join(args.deconv_path, "deconv")
    out = {}
    with tempfile.TemporaryDirectory(prefix="deconv_copy_") as copy_root:
        dst = os.path.join(copy_root, "deconv")
        shutil.copytree(src, dst)   # copy2: mtimes kept, .pyc stay valid
        for what in ("conv2d", "api"):
            cold = []
            for _ in range(args.cold_repeats):
                n = _clear_numba_cache(dst)
                busy = _wait_quiet(args)
                r = _startup_run(args, copy_root, what)
                r["busy_before_pct"] = busy
                r["cleared_files"] = n
                cold.append(r)
            warm = []
            for _ in range(args.warm_repeats):
                busy = _wait_quiet(args)
                r = _startup_run(args, copy_root, what)
                r["busy_before_pct"] = busy
                warm.append(r)
            out[what] = {"cold": cold, "warm": warm}

    def med(runs, key):
        return statistics.median(r[key] for r in runs)

    print("\n=== Start-up, seconds (cold: Numba cache cleared; warm: cache present)")
    print(f"{'what':30s} {'':5s} {'process wall':>12s} {'import':>8s} {'in-process':>10s}")
    for what, label in (("conv2d", "import + conv2d f32 fwd+bwd"),
                        ("api", "import + whole API f32+f64")):
        for kind in ("cold", "warm"):
            runs = out[what][kind]
            print(f"{label:30s} {kind:5s} {med(runs, 'process_wall_s'):12.2f} "
                  f"{med(runs, 'import_s'):8.2f} {med(runs, 'total_in_process_s'):10.2f}"
                  f"   (n={len(runs)}, busy before "
                  f"{max(r['busy_before_pct'] for r in runs):.0f}%)")
        if what == "conv2d":
            for kind in ("cold", "warm"):
                runs = out[what][kind]
                print(f"{'':30s} {kind:5s} first fwd {med(runs, 'first_fwd_s'):.3f}, "
                      f"first bwd {med(runs, 'first_bwd_s'):.3f}")
    api_cold = out["api"]["cold"][0]
    api_warm = out["api"]["warm"]
    print("\nPer function, first forward+backward (s): cold / warm median")
    for k, v in api_cold["calls"].items():
        w = statistics.median(r["calls"][k]["s"] for r in api_warm if k in r["calls"])
        print(f"  {k:32s} {v['s']:7.3f} / {w:6.3f}  {v['status']}")
    for k, e in api_cold["errors"].items():
        print(f"  {k:32s} ERROR {e}")
    if api_cold["public_not_exercised"]:
        print(f"  public callables not exercised: {api_cold['public_not_exercised']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
        print(f"\nraw results written to {args.json}")
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--torch-python", default=sys.executable,
                   help="python with torch for the torch worker (default: this python)")
    p.add_argument("--python", default=sys.executable,
                   help="python for the deconv worker (default: this python)")
    p.add_argument("--deconv-path", default=REPO,
                   help="directory containing the deconv package (default: this repo)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--dtypes", default="float32,float64")
    p.add_argument("--threads-list", default="default,1",
                   help="comma list of 'default' and/or '1'")
    p.add_argument("--max-busy", type=float, default=25.0,
                   help="wait before a worker while the machine is busier than this (%%)")
    p.add_argument("--max-wait", type=float, default=120.0)
    p.add_argument("--idle-sample", type=float, default=1.0)
    p.add_argument("--max-others", type=float, default=15.0,
                   help="re-run a worker if other processes used more than this %% of "
                        "the machine while it ran")
    p.add_argument("--retries", type=int, default=2)
    p.add_argument("--json", help="write raw results here")
    p.add_argument("--startup", action="store_true", help="start-up (compile/cache) mode")
    p.add_argument("--cold-repeats", type=int, default=1)
    p.add_argument("--warm-repeats", type=int, default=3)
    # internal
    p.add_argument("--worker", choices=["deconv", "torch"], help=argparse.SUPPRESS)
    p.add_argument("--startup-worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--startup-what", choices=["conv2d", "api"], help=argparse.SUPPRESS)
    p.add_argument("--dtype", help=argparse.SUPPRESS)
    p.add_argument("--threads", default="default", help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    p.add_argument("--check-out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.worker == "deconv":
        return deconv_worker(args)
    if args.worker == "torch":
        return torch_worker(args)
    if args.startup_worker:
        return startup_worker(args)
    return startup(args) if args.startup else speed(args)


if __name__ == "__main__":
    sys.exit(main())
