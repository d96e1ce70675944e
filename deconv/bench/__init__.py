"""``deconv bench``: the benchmark suite (deconv against its peers, forward and backward).

What runs
---------
Cases (:func:`deconv.bench.worker.build_cases`), each a forward and a
backward pass, in float32 (the first also in float64), at every thread count
asked for (default 1 and 2): six convolutions (conv2d 64->64 32x32 k3; conv2d
1->16 28x28 k5; depthwise conv2d; conv_transpose2d 16x16->32x32 k4 s2;
conv1d and conv_transpose1d 128->128 L=256 k5), six pooling-family ops on
N=32 C=64 32x32 (max_pool2d with indices, max_unpool2d, avg_pool2d, nearest
and bilinear x2 upsampling, pixel_shuffle x2), a training step of the
super-resolution model (forward + L1 loss; backward + Adam step), and a
conv2d sweep over batch size and over image size, 4 points each.

Peers, each in its own process (:mod:`deconv.bench.worker`):
``deconv``; ``torch`` (CPU, as installed, default configuration; absent when
``--torch-python`` cannot import it); ``numpy`` (an im2col + matmul
baseline of the conv ops, and the "limit": ``np.matmul`` on the conv's own
GEMM shapes, i.e. the same FLOP count); ``scipy`` (:mod:`deconv.reference`,
timed only where a predicted call stays under a cap).

Protocol
--------
1. Inputs come from a fixed seed, written once by this process as raw files
   that every worker reads, so every implementation computes the same thing.
2. Correctness first: every worker computes every output of a reduced
   version of each case (batch 2, at most 8 channels), which is compared
   with :mod:`deconv.reference` in float64; any mismatch stops the run
   before anything is timed.
3. Timing: per thread count, ``rounds`` rounds; in each round one worker per
   lib, one after the other (A B C A B C ...), with ``NUMBA_NUM_THREADS``,
   ``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS`` set to
   T (and ``torch.set_num_threads(T)``), and glibc's malloc set to reuse
   large freed buffers in every worker (:data:`MALLOC_ENV`). A worker times each case's first
   forward and backward apart (Numba compilation or cache load; torch's
   initialisation), makes warm-up calls, then times repeats and reports
   medians. Before each worker the machine's CPU use is sampled and, if it
   is busy, the run waits a little; the CPU used by other processes during
   the worker is recorded, and in full mode a disturbed worker is re-run.
4. Memory: one warm call of each conv pass in a deconv worker, measured by
   tracemalloc, Numba's allocation counter and peak RSS growth.
5. Start-up: a copy of the package with its Numba cache cleared (cold) or
   kept (warm); a new process times ``import deconv`` + the first conv2d
   forward and backward, and (full mode) one call of every public op.

The parent reports, per case, pass, dtype and thread count, the median over
rounds of the per-worker medians, the deconv/torch ratio (median of the
round-by-round ratios), the NumPy baseline, GFLOP/s and the fraction of the
matmul limit; it evaluates the targets (:func:`evaluate_targets`) and writes
``results.json``, ``results.md`` and ``ratios.png``.
"""

import datetime
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zlib

from deconv.bench import worker as W

WORKER_SCRIPT = os.path.abspath(W.__file__)
PACKAGE_DIR = os.path.dirname(os.path.dirname(WORKER_SCRIPT))   # deconv/
LIBS = ("deconv", "torch", "numpy", "scipy")
SEED = 20240601

#: max |a - ref| / max |ref| allowed against the float64 reference
TOLERANCE = {"float32": 1e-4, "float64": 1e-10}

#: targets of the issue: name -> (threshold, description)
TARGETS = {
    "ratio_vs_torch": (1.0, "deconv time / PyTorch time <= 1.0, every kernel, forward and "
                            "backward, at every thread count"),
    "fraction_of_limit_fwd": (0.65, "conv forward, float32, conv2d / conv_transpose2d / conv1d: "
                                    ">= 65% of the matmul GFLOP/s for the same FLOP count"),
    "fraction_of_limit_bwd": (0.50, "the same cases' backward: >= 50%"),
    "sweep_linear": (0.25, "conv2d sweep: time per sample and pixel within 25% across the "
                           "4 points (max/min - 1)"),
    "thread_speedup": (1.7, "2 threads >= 1.7x faster than 1 thread on the large cases"),
    "memory": (1.0, "a conv forward or backward allocates at most its output plus a workspace "
                    "no larger than the output (extra bytes / output bytes <= 1)"),
    "startup_warm": (1.5, "warm Numba cache: import deconv + first conv2d forward and backward "
                          "in a new process < 1.5 s"),
}

#: Settings of the two modes. ``budget_s``: a worker stops repeating a case once it
#: has ``min_repeats`` repeats and has spent this long on them; ``max_wait``: how
#: long to wait for a quiet machine before a worker; ``retries``: re-runs of a
#: worker disturbed by other processes; ``scipy_cap_s``: the reference is timed
#: only where a forward+backward is predicted below this; ``numpy_warmup``: the
#: NumPy baseline compiles nothing, so the quick mode skips its warm-up;
#: ``startup_cold``: clear the Numba cache for a cold start-up (else one
#: untimed run makes sure the copy's cache is warm); ``startup_api``: also
#: time every public op.
QUICK = dict(rounds=1, warmup=0, repeats=3, budget_s=0.4, min_repeats=2, max_wait=0.0,
             idle_sample=0.3, retries=0, scipy_cap_s=0.3, numpy_warmup=0, startup_warm=2,
             startup_cold=False, startup_api=False)
FULL = dict(rounds=3, warmup=2, repeats=10, budget_s=3.0, min_repeats=3, max_wait=20.0,
            idle_sample=1.0, retries=1, scipy_cap_s=5.0, numpy_warmup=2, startup_warm=3,
            startup_cold=True, startup_api=True)


# ---------------------------------------------------------------------------
# machine state (from /proc; kept from benchmarks/first_speed.py)
# ---------------------------------------------------------------------------

def _stat_snap():
    """(total, idle, steal) jiffies of the whole machine from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(t) for t in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    steal = v[7] if len(v) > 7 else 0
    return sum(v), idle, steal


def cpu_busy(seconds):
    """Whole-machine CPU busy percentage over ``seconds`` (NaN without /proc/stat)."""
    try:
        t1, i1, _ = _stat_snap()
        time.sleep(seconds)
        t2, i2, _ = _stat_snap()
    except OSError:
        return float("nan")
    return 100.0 * (1.0 - (i2 - i1) / max(t2 - t1, 1))


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def machine_info():
    """CPU model, cores, memory, OS and the parent's library versions."""
    info = {"cpu": platform.processor() or "?", "cores": os.cpu_count(),
            "platform": platform.platform(), "hostname": platform.node(),
            "python": sys.version.split()[0]}
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
        for line in text.splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        flags = next((line.split(":", 1)[1].split() for line in text.splitlines()
                      if line.startswith("flags")), [])
        info["simd"] = [f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile")
                        if f in flags]
    except OSError:
        pass
    try:
        with open("/proc/meminfo") as f:
            kb = int(next(line for line in f if line.startswith("MemTotal")).split()[1])
        info["memory_gb"] = round(kb / 2**20, 1)
    except (OSError, StopIteration):
        pass
    import numba
    import numpy
    import scipy
    import deconv
    info["versions"] = {"numpy": numpy.__version__, "numba": numba.__version__,
                        "scipy": scipy.__version__, "deconv": deconv.__version__}
    return info


# ---------------------------------------------------------------------------
# options
# ---------------------------------------------------------------------------

class BenchError(ValueError):
    """A bad option of ``deconv bench`` (reported as a usage error)."""


def select_cases(names=None, size="full"):
    """The cases to run: all, or those named (a name, or 'sweep' for every sweep point).

    Raises
    ------
    BenchError
        For an unknown name.
    """
    cases = W.build_cases(size)
    if not names:
        return cases
    known = [c["name"] for c in cases]
    groups = {"sweep": [n for n in known if n.startswith("sweep_")],
              "sweep_batch": [n for n in known if n.startswith("sweep_batch_")],
              "sweep_image": [n for n in known if n.startswith("sweep_image_")]}
    wanted = set()
    for n in names:
        if n in groups:
            wanted.update(groups[n])
        elif n in known:
            wanted.add(n)
        else:
            raise BenchError(f"unknown case {n!r}; choose from {', '.join(known)} "
                             f"or the groups {', '.join(groups)}")
    return [c for c in cases if c["name"] in wanted]


def default_out_dir(cwd=None):
    """``benchmarks/`` of the deconv repository containing ``cwd``, else ``cwd``."""
    cwd = os.path.abspath(cwd or os.getcwd())
    d = cwd
    while True:
        cfg = os.path.join(d, "setup.cfg")
        if os.path.isfile(cfg) and os.path.isdir(os.path.join(d, "benchmarks")):
            with open(cfg) as f:
                if "deconv-numba" in f.read():
                    return os.path.join(d, "benchmarks")
        parent = os.path.dirname(d)
        if parent == d:
            return cwd
        d = parent


def resolve_settings(quick=False, rounds=None, repeats=None, warmup=None):
    """Mode defaults (:data:`QUICK` or :data:`FULL`) with explicit overrides."""
    s = dict(QUICK if quick else FULL)
    for key, value in (("rounds", rounds), ("repeats", repeats), ("warmup", warmup)):
        if value is not None:
            if value < (0 if key == "warmup" else 1):
                raise BenchError(f"--{key} must be >= {0 if key == 'warmup' else 1}, got {value}")
            s[key] = value
    s["min_repeats"] = min(s["min_repeats"], s["repeats"])
    if warmup is not None:
        s["numpy_warmup"] = warmup
    return s


# ---------------------------------------------------------------------------
# inputs
# ---------------------------------------------------------------------------

def _seed(case_name, variant):
    return SEED + zlib.crc32(f"{case_name}/{variant}".encode())


def make_inputs(case, variant):
    """float64 inputs of one case from its own seed (NumPy arrays; ``idx`` int64).

    The same values serve every dtype (cast when written), so the float32
    and float64 rows compute the same thing up to rounding.
    """
    import numpy as np
    rng = np.random.default_rng(_seed(case["name"], variant))
    shapes = case["shapes"]
    a = {}
    if case["family"] == "train":
        a["x"] = rng.uniform(0, 1, shapes["x"])
        a["t"] = rng.uniform(0, 1, shapes["t"])
        for name, shape in shapes.items():
            if name.startswith("p"):
                fan_in = 1
                for s in shape[1:]:
                    fan_in *= s
                # 1/sqrt(fan_in), as torch's default initialisation, so that
                # activations stay of order one; biases get the scale of 1/16
                scale = fan_in ** -0.5 if len(shape) > 1 else 1 / 16
                a[name] = rng.standard_normal(shape) * scale
        return a
    for name, shape in shapes.items():
        if name in ("p", "idx"):
            continue
        a[name] = rng.standard_normal(shape)
    if case["op"] == "max_unpool2d":
        reference = W.load_reference_module()
        a["p"], a["idx"] = reference.max_pool2d(a.pop("x"), **case["kw"])
    return a


def write_inputs(entries, data_dir):
    """Write the inputs of every entry (case, dtype, variant) as raw files.

    Returns
    -------
    dict
        key -> {array name -> {'file', 'dtype', 'shape'}}, plus the float64
        arrays of the 'check' entries for the reference (key -> dict).
    """
    specs, check_arrays = {}, {}
    cache = {}
    # grouped by case and variant, so that each case's values are generated once
    for e in sorted(entries, key=lambda e: (e["case"]["name"], e["variant"])):
        case, dtype, variant = e["case"], e["dtype"], e["variant"]
        ck = (case["name"], variant)
        if ck not in cache:
            cache = {ck: make_inputs(case, variant)}    # keep one case in memory at a time
        base = cache[ck]
        spec, cast = {}, {}
        for name, arr in base.items():
            a = arr if arr.dtype.kind == "i" else arr.astype(dtype)
            path = os.path.join(data_dir, f"{e['key'].replace('|', '__')}__{name}.bin")
            a.tofile(path)
            spec[name] = {"file": path, "dtype": str(a.dtype), "shape": list(a.shape)}
            cast[name] = a
        specs[e["key"]] = spec
        if variant == "check":
            check_arrays[e["key"]] = cast
    return specs, check_arrays


# ---------------------------------------------------------------------------
# workers
# ---------------------------------------------------------------------------

# Every worker keeps large freed buffers for reuse (glibc's malloc), as a long
# training process ends up doing. Without this, glibc's adaptive mmap threshold
# makes a library's time depend on what it allocated earlier in the process:
# PyTorch 2.13's conv2d forward (N=32, 64->64, 32x32, 2 threads) took 18.5 ms
# fresh and 11.8 ms after a float64 run had raised the threshold, because each
# fresh mmap of its output page-faults on first touch.
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": str(1 << 30), "MALLOC_TRIM_THRESHOLD_": str(1 << 31)}


def worker_env(lib, threads, extra=None):
    """The environment of a worker: thread counts pinned to ``threads``; large
    buffers reused (:data:`MALLOC_ENV`); deconv found where this process found it."""
    env = {k: v for k, v in os.environ.items() if k not in W.THREAD_ENV_VARS}
    env.update({k: str(threads) for k in W.THREAD_ENV_VARS})
    env.update(MALLOC_ENV)
    if lib == "deconv":
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (os.path.dirname(PACKAGE_DIR), os.environ.get("PYTHONPATH")) if p)
    env.update(extra or {})
    return env


class WorkerError(RuntimeError):
    """A worker process failed."""


def run_worker(python, job, env, tmp, cwd=None, script=WORKER_SCRIPT):
    """Run one worker; return its result with wall time and the machine's other load.

    ``others_pct``: CPU used on the machine during the worker by anything
    but the worker, in % of all cores; ``steal_pct``: time the hypervisor
    gave to other guests.
    """
    fd, job_path = tempfile.mkstemp(suffix=".json", dir=tmp)
    os.close(fd)
    job = dict(job, result_path=job_path + ".result")
    with open(job_path, "w") as f:
        json.dump(job, f)
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        st0 = _stat_snap()
    except OSError:
        st0 = None
    t = time.perf_counter()
    proc = subprocess.run([python, script, job_path], env=env, capture_output=True, text=True,
                          cwd=cwd)
    wall = time.perf_counter() - t
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0 or not os.path.exists(job["result_path"]):
        raise WorkerError(f"{job['lib']} {job['mode']} worker failed (exit {proc.returncode}, "
                          f"{python} {script}):\n{proc.stderr[-4000:]}")
    with open(job["result_path"]) as f:
        res = json.load(f)
    res["process_wall_s"] = wall
    if st0 is not None:
        total, idle, steal = (b - a for a, b in zip(st0, _stat_snap()))
        child_s = ru1.ru_utime - ru0.ru_utime + ru1.ru_stime - ru0.ru_stime
        child = child_s * os.sysconf("SC_CLK_TCK")
        res["others_pct"] = max(0.0, 100.0 * (total - idle - steal - child) / max(total, 1))
        res["steal_pct"] = 100.0 * steal / max(total, 1)
    return res


def torch_version(python):
    """(version, None) if ``python`` imports torch, else (None, why)."""
    try:
        proc = subprocess.run([python, "-c", "import torch; print(torch.__version__)"],
                              capture_output=True, text=True, timeout=300,
                              env=worker_env("torch", 1))
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, str(e)
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        return None, lines[-1] if lines else f"exit {proc.returncode}"
    return proc.stdout.strip().splitlines()[-1], None


class Run:
    """State of one ``deconv bench`` run: settings, output stream, temp dir, machine sampling."""

    def __init__(self, settings, stream, tmp, max_busy=30.0, max_others=20.0):
        self.s = settings
        self.stream = stream
        self.tmp = tmp
        self.max_busy = max_busy
        self.max_others = max_others

    def say(self, *parts, end="\n"):
        print(*parts, end=end, file=self.stream, flush=True)

    def wait_quiet(self):
        """Sample the machine's CPU use; wait (up to ``max_wait`` s) while it is busy.

        Returns
        -------
        (float, float)
            The last busy percentage seen and the seconds waited.
        """
        t0 = time.time()
        while True:
            busy = cpu_busy(self.s["idle_sample"])
            waited = time.time() - t0
            if not busy > self.max_busy or waited >= self.s["max_wait"]:
                return busy, waited
            time.sleep(min(2.0, max(0.0, self.s["max_wait"] - waited)))

    def worker(self, python, job, env, label):
        """Run a timing worker after waiting for quiet; re-run it when disturbed.

        The result gets ``busy_before_pct``, ``waited_s``, ``attempts`` and
        ``disturbed_pct`` (other processes' CPU use in the runs thrown away).
        """
        disturbed = []
        for attempt in range(self.s["retries"] + 1):
            busy, waited = self.wait_quiet()
            res = run_worker(python, job, env, self.tmp)
            res.update(busy_before_pct=busy, waited_s=waited, attempts=attempt + 1,
                       disturbed_pct=disturbed)
            others = res.get("others_pct", 0.0)
            if others <= self.max_others or attempt == self.s["retries"]:
                return res
            disturbed.append(others)
        raise AssertionError("unreachable")

    def describe(self, res):
        """One line on a finished worker: wall time, import time, machine load."""
        text = (f"{res['process_wall_s']:5.1f} s (import {res.get('import_s', 0.0):.1f} s; "
                f"machine {res['busy_before_pct']:.0f}% busy before")
        if res.get("waited_s", 0.0) >= 1.0:
            text += f" after waiting {res['waited_s']:.0f} s"
        text += f", others {res.get('others_pct', float('nan')):.0f}% during"
        if res.get("disturbed_pct"):
            text += ", re-run after " + ", ".join(f"{d:.0f}%" for d in res["disturbed_pct"])
        return text + ")"


# ---------------------------------------------------------------------------
# correctness
# ---------------------------------------------------------------------------

def compare_outputs(outputs, reference, dtype):
    """Compare one implementation's outputs with the float64 reference.

    Parameters
    ----------
    outputs : dict
        name -> array (float outputs of the case's dtype; ``idx`` int64).
    reference : dict
        name -> float64 (or int64) array.
    dtype : str
        Selects the tolerance (:data:`TOLERANCE`).

    Returns
    -------
    dict
        name -> {'error': max |a - ref| / max |ref| (or mismatch count for
        indices), 'ok': bool}; a missing output or a shape mismatch is an
        error of ``inf``.
    """
    import numpy as np
    tol = TOLERANCE[dtype]
    report = {}
    for name, ref in reference.items():
        a = outputs.get(name)
        if a is None or np.shape(a) != np.shape(ref):
            report[name] = {"error": float("inf"), "ok": False,
                            "why": "missing" if a is None else
                            f"shape {np.shape(a)} != {np.shape(ref)}"}
            continue
        if np.asarray(ref).dtype.kind == "i":
            bad = int(np.count_nonzero(np.asarray(a) != ref))
            report[name] = {"error": bad, "ok": bad == 0}
            continue
        ref = np.asarray(ref, dtype=np.float64)
        diff = np.abs(np.asarray(a, dtype=np.float64) - ref)
        scale = float(np.max(np.abs(ref))) if ref.size else 0.0
        err = float(np.max(diff)) / scale if scale > 0 else float(np.max(diff, initial=0.0))
        ok = bool(np.isfinite(err) and err <= tol)
        report[name] = {"error": err, "ok": ok}
    return report


def _load_outputs(spec):
    import numpy as np
    return {k: np.fromfile(v["file"], dtype=v["dtype"]).reshape(v["shape"])
            for k, v in spec.items()}


def _libs_for(case, libs):
    """The libs that implement a case (the NumPy baseline covers the conv ops only)."""
    out = []
    for lib in libs:
        if lib == "numpy" and case["family"] != "conv":
            continue
        if lib == "scipy" and case["family"] == "train":
            continue
        out.append(lib)
    return out


def check_correctness(run, entries, specs, check_arrays, libs, pythons, threads, perturb=()):
    """Compare every lib's outputs on the reduced cases with the reference.

    Returns
    -------
    (ok, report, reference_seconds, first_calls, checked)
        ``report``: key -> lib -> output -> comparison; ``reference_seconds``:
        key -> seconds the reference took (forward + backward), used to
        predict its cost at full size; ``first_calls``: lib -> key ->
        first forward / backward seconds in the check worker (for deconv,
        Numba compilation when the cache is cold); ``checked``: lib -> the
        worker's versions, or the reason it is unavailable (PyTorch not
        importable), for every lib whose worker ran.
    """
    reference, ref_seconds = {}, {}
    for e in entries:
        t = time.perf_counter()
        reference[e["key"]] = W.reference_outputs(e["case"], check_arrays[e["key"]])
        ref_seconds[e["key"]] = time.perf_counter() - t
    walls = [f"reference {sum(ref_seconds.values()):.1f} s"]
    report = {e["key"]: {} for e in entries}
    first_calls, checked = {}, {}
    ok = True
    for lib in libs:
        if lib == "scipy":
            continue        # it is the reference
        mine = [e for e in entries if lib in _libs_for(e["case"], libs)]
        if not mine:
            continue
        out_dir = tempfile.mkdtemp(prefix=f"check_{lib}_", dir=run.tmp)
        job = {"lib": lib, "mode": "check", "threads": threads, "out_dir": out_dir,
               "perturb": list(perturb) if lib == "deconv" else [],
               "entries": [{"key": e["key"], "case": e["case"], "dtype": e["dtype"],
                            "arrays": specs[e["key"]]} for e in mine]}
        res = run_worker(pythons[lib], job, worker_env(lib, threads), run.tmp)
        walls.append(f"{lib} worker {res['process_wall_s']:.1f} s")
        if "unavailable" in res:
            checked[lib] = {"unavailable": res["unavailable"]}
            continue
        checked[lib] = res.get("versions", {})
        first_calls[lib] = {}
        for e in mine:
            r = res["cases"][e["key"]]
            if "error" in r:
                report[e["key"]][lib] = {"error": r["error"], "ok": False}
                ok = False
                continue
            first_calls[lib][e["key"]] = {"fwd_s": r["first_fwd_s"], "bwd_s": r["first_bwd_s"]}
            cmp = compare_outputs(_load_outputs(r["outputs"]), reference[e["key"]], e["dtype"])
            report[e["key"]][lib] = cmp
            ok &= all(c["ok"] for c in cmp.values())
    run.say("  check: " + ", ".join(walls))
    return ok, report, ref_seconds, first_calls, checked


def _print_check(run, report, libs):
    run.say("\nCorrectness on the reduced cases (batch 2, <= 8 channels): max |out - ref| / "
            "max |ref| against deconv.reference in float64 (indices: mismatches); "
            f"tolerance {TOLERANCE}")
    for key, by_lib in report.items():
        parts = []
        for lib in libs:
            if lib not in by_lib:
                continue
            cmp = by_lib[lib]
            if "error" in cmp and isinstance(cmp["error"], str):
                parts.append(f"{lib} ERROR {cmp['error']}")
                continue
            worst = max(cmp.items(), key=lambda kv: kv[1]["error"])
            flag = "ok" if all(c["ok"] for c in cmp.values()) else "MISMATCH " + ", ".join(
                f"{k} {c.get('why', c['error'])}" for k, c in cmp.items() if not c["ok"])
            parts.append(f"{lib} {worst[1]['error']:.1e} ({flag})")
        run.say(f"  {key:32s} " + "; ".join(parts))


# ---------------------------------------------------------------------------
# timing, memory, start-up
# ---------------------------------------------------------------------------

def _scipy_cost_ratio(case, small):
    """Work of the reference at full size over its work on the reduced case."""
    g, h = case["geometry"], small["geometry"]
    if case["family"] == "conv":
        return (g["N"] * g["C_out"] * g["C_in"] / g["groups"]) / \
            (h["N"] * h["C_out"] * h["C_in"] / h["groups"])
    return (g["N"] * g["C"]) / (h["N"] * h["C"])


def time_all(run, cases, libs, pythons, threads_list, specs, scipy_plan):
    """Every timing worker, alternating libs within each round.

    Returns
    -------
    dict
        ``(threads, lib)`` -> list of worker results (one per round).
    """
    s = run.s
    results = {}
    for threads in threads_list:
        for r in range(s["rounds"]):
            for lib in libs:
                if lib == "scipy" and (r > 0 or threads != threads_list[0]):
                    continue        # informational and single-threaded: one worker in all
                mine = [c for c in cases if lib in _libs_for(c, libs)
                        and not (lib == "numpy" and c["sweep"])]
                if lib == "scipy":
                    mine = [c for c in mine if scipy_plan.get(c["name"], {}).get("run")]
                entries = [{"key": f"{c['name']}|{dt}", "case": c, "dtype": dt,
                            "arrays": specs[f"{c['name']}|{dt}|full"],
                            "limit": lib == "numpy" and c["family"] == "conv"}
                           for c in mine for dt in c["dtypes"]]
                if not entries:
                    continue
                job = {"lib": lib, "mode": "time", "threads": threads, "entries": entries,
                       "warmup": {"scipy": 0, "numpy": s["numpy_warmup"]}.get(lib, s["warmup"]),
                       "repeats": min(3, s["repeats"]) if lib == "scipy" else s["repeats"],
                       "budget_s": s["budget_s"], "min_repeats": 1 if lib == "scipy"
                       else s["min_repeats"]}
                label = f"threads={threads} round {r + 1}/{s['rounds']} {lib}"
                res = run.worker(pythons[lib], job, worker_env(lib, threads), label)
                results.setdefault((threads, lib), []).append(res)
                errors = [k for k, v in res["cases"].items() if "error" in v]
                run.say(f"  {label:32s} {run.describe(res)}"
                        + (f"  ERRORS in {errors}" if errors else ""))
    return results


def memory_all(run, cases, python, threads_list, specs):
    """Memory of each conv pass (one warm call), per thread count."""
    conv = [c for c in cases if c["family"] == "conv" and not c["sweep"]]
    out = {}
    if not conv:
        return out
    for threads in threads_list:
        entries = [{"key": f"{c['name']}|{dt}", "case": c, "dtype": dt,
                    "arrays": specs[f"{c['name']}|{dt}|full"]} for c in conv for dt in c["dtypes"]]
        env = worker_env("deconv", threads, {"NUMBA_NRT_STATS": "1",
                                             # fixed threshold: big blocks are mmap'ed and
                                             # unmapped on free, so peak RSS sees them
                                             "MALLOC_MMAP_THRESHOLD_": "65536",
                                             "MALLOC_TRIM_THRESHOLD_": "0"})
        res = run_worker(python, {"lib": "deconv", "mode": "memory", "threads": threads,
                                  "entries": entries}, env, run.tmp)
        for key, r in res["cases"].items():
            out[f"{key}|{threads}"] = r.get("memory", {"error": r.get("error")})
    return out


def clear_numba_cache(pkg_dir):
    """Delete Numba's cache files (*.nbi, *.nbc) under ``pkg_dir``; return how many."""
    n = 0
    for root, _, files in os.walk(pkg_dir):
        for f in files:
            if f.endswith((".nbi", ".nbc")):
                os.remove(os.path.join(root, f))
                n += 1
    return n


def startup_all(run, python):
    """Cold and warm start-up on a copy of the package (the installed cache is untouched)."""
    out = {}
    with tempfile.TemporaryDirectory(prefix="deconv_copy_", dir=run.tmp) as copy_root:
        dst = os.path.join(copy_root, "deconv")
        shutil.copytree(PACKAGE_DIR, dst)      # copy2 keeps mtimes: .pyc and the cache stay valid
        env = worker_env("deconv", os.cpu_count() or 1)
        env["PYTHONPATH"] = copy_root
        script = os.path.join(dst, os.path.relpath(WORKER_SCRIPT, PACKAGE_DIR))
        whats = ["conv2d"] + (["api"] if run.s["startup_api"] else [])
        for what in whats:
            runs = {"cold": [], "warm": []}
            if run.s["startup_cold"]:
                n, first = clear_numba_cache(dst), "cold"
            else:
                n, first = 0, "priming"     # compiles only if the copied cache is stale
                runs["priming"] = []
            for kind, count in ((first, 1), ("warm", run.s["startup_warm"] if what == "conv2d"
                                             else 2)):
                for _ in range(count):
                    busy, waited = run.wait_quiet()
                    r = run_worker(python, {"lib": "deconv", "mode": "startup", "what": what},
                                   env, run.tmp, cwd=copy_root, script=script)
                    if not r["deconv_file"].startswith(copy_root):
                        raise WorkerError(f"start-up worker imported {r['deconv_file']}, "
                                          f"not the copy in {copy_root}")
                    r.update(busy_before_pct=busy, waited_s=waited,
                             cleared_cache_files=n if kind == "cold" else 0)
                    runs[kind].append(r)
                    run.say(f"  {what:6s} {kind:7s} {run.describe(r)}")
            out[what] = runs
    return out


# ---------------------------------------------------------------------------
# aggregation
# ---------------------------------------------------------------------------

def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def aggregate(cases, timing, threads_list):
    """Rows of the table: one per (case, dtype, thread count, pass).

    Parameters
    ----------
    timing : dict
        ``(threads, lib)`` -> list of worker results (:func:`time_all`).

    Returns
    -------
    list of dict
        ``deconv_ms`` etc.: median over rounds of the per-worker medians;
        ``*_rounds``: those medians; ``ratio_torch``: median of the
        round-by-round ratios deconv/torch; ``gflops`` and
        ``fraction_of_limit`` (limit time / deconv time) for conv cases.
    """
    rows = []
    for c in cases:
        for dt in c["dtypes"]:
            key = f"{c['name']}|{dt}"
            for threads in threads_list:
                for p in W.PASSES:
                    row = {"case": c["name"], "op": c["op"], "family": c["family"], "pass": p,
                           "dtype": dt, "threads": threads, "sweep": c["sweep"],
                           "sweep_value": c.get("sweep_value"), "large": c["large"],
                           "limit_target": c["limit_target"], "errors": {}}
                    if c["family"] == "conv":
                        row["flops"] = W.flops(c, p)
                    if c["sweep"]:
                        g = c["geometry"]
                        units = g["N"]
                        for sz in g["out"]:
                            units *= sz
                        row["units"] = units          # samples x pixels
                    for lib in LIBS:
                        runs = timing.get((threads, lib), [])
                        meds, firsts, iqr, limit = [], [], [], []
                        for res in runs:
                            r = res["cases"].get(key)
                            if r is None:
                                meds.append(None)
                                continue
                            if "error" in r:
                                row["errors"][lib] = r["error"]
                                meds.append(None)
                                continue
                            m = r[p]["median"]
                            meds.append(m)
                            iqr.append((r[p]["q3"] - r[p]["q1"]) / m if m else 0.0)
                            firsts.append(r[f"first_{p}_s"])
                            if "limit" in r:
                                limit.append(r["limit"][p]["median"])
                        if not any(m is not None for m in meds):
                            continue
                        row[f"{lib}_ms"] = _median(meds)
                        row[f"{lib}_rounds_ms"] = meds
                        row[f"{lib}_iqr"] = _median(iqr)
                        row[f"{lib}_first_s"] = firsts
                        if limit:
                            row["limit_ms"] = _median(limit)
                    d = row.get("deconv_ms")
                    if d is not None:
                        pairs = [a / b for a, b in zip(row.get("deconv_rounds_ms", []),
                                                       row.get("torch_rounds_ms", []))
                                 if a is not None and b]
                        if pairs:
                            row["ratio_torch"] = statistics.median(pairs)
                        if row.get("numpy_ms"):
                            row["ratio_numpy"] = d / row["numpy_ms"]
                        if "flops" in row:
                            row["gflops"] = row["flops"] / (d * 1e6)
                            if row.get("limit_ms"):
                                row["limit_gflops"] = row["flops"] / (row["limit_ms"] * 1e6)
                                row["fraction_of_limit"] = row["limit_ms"] / d
                        if "units" in row:
                            row["ns_per_unit"] = d * 1e6 / row["units"]
                    rows.append(row)
    return rows


def evaluate_targets(rows, memory=None, startup=None, torch_available=True):
    """PASS / FAIL of every target on measured (or synthetic) numbers.

    Parameters
    ----------
    rows : list of dict
        As from :func:`aggregate` (only the keys used here are needed:
        case, family, pass, dtype, threads, sweep, large, limit_target,
        deconv_ms, ratio_torch, fraction_of_limit, ns_per_unit).
    memory : dict, optional
        ``'case|dtype|threads'`` -> {'fwd': {...}, 'bwd': {...}} with
        ``extra_over_output``.
    startup : dict, optional
        As from :func:`startup_all`.
    torch_available : bool

    Returns
    -------
    list of dict
        ``target``, ``item``, ``value``, ``threshold``, ``status`` (PASS,
        FAIL, N/A or INFO) and, for N/A, ``why``.
    """
    out = []

    def add(target, item, value, ok, threshold=None, why=None):
        rec = {"target": target, "item": item, "value": value,
               "threshold": TARGETS[target][0] if target in TARGETS else threshold,
               "status": "N/A" if ok is None else ("PASS" if ok else "FAIL")}
        if why:
            rec["why"] = why
        out.append(rec)

    kernels = [r for r in rows if r["family"] in ("conv", "pool") and not r["sweep"]]
    if not torch_available:
        add("ratio_vs_torch", "all kernels", None, None, why="PyTorch not importable")
    else:
        for r in kernels:
            v = r.get("ratio_torch")
            add("ratio_vs_torch", f"{r['case']} {r['pass']} {r['dtype']} T={r['threads']}", v,
                None if v is None else v <= TARGETS["ratio_vs_torch"][0],
                why="not measured" if v is None else None)
    for r in kernels:
        if not r["limit_target"] or r["dtype"] != "float32":
            continue
        target = f"fraction_of_limit_{r['pass']}"
        v = r.get("fraction_of_limit")
        add(target, f"{r['case']} {r['pass']} T={r['threads']}", v,
            None if v is None else v >= TARGETS[target][0],
            why="limit not measured" if v is None else None)
    sweeps = {}
    for r in rows:
        if r["sweep"]:
            key = (r["sweep"], r["pass"], r["threads"])
            sweeps.setdefault(key, []).append(r.get("ns_per_unit"))
    for (kind, p, threads), values in sorted(sweeps.items()):
        item = f"{kind} sweep {p} T={threads}"
        if len(values) < 4 or any(v is None for v in values):
            add("sweep_linear", item, None, None, why="fewer than 4 points measured")
            continue
        spread = max(values) / min(values) - 1
        add("sweep_linear", item, spread, spread <= TARGETS["sweep_linear"][0])
    by = {(r["case"], r["pass"], r["dtype"], r["threads"]): r for r in rows}
    for r in rows:
        if not r["large"] or r["threads"] != 1 or r["dtype"] != "float32":
            continue
        two = by.get((r["case"], r["pass"], r["dtype"], 2))
        item = f"{r['case']} {r['pass']}"
        if two is None or r.get("deconv_ms") is None or two.get("deconv_ms") is None:
            add("thread_speedup", item, None, None, why="needs 1 and 2 threads")
            continue
        v = r["deconv_ms"] / two["deconv_ms"]
        add("thread_speedup", item, v, v >= TARGETS["thread_speedup"][0])
    for key, m in sorted((memory or {}).items()):
        case, dtype, threads = key.split("|")
        for p in W.PASSES:
            item = f"{case} {p} {dtype} T={threads}"
            rec = m.get(p) if isinstance(m, dict) else None
            if not rec:
                add("memory", item, None, None, why=str(m.get("error", "not measured")))
                continue
            v = rec["extra_over_output"]
            add("memory", item, v, v <= TARGETS["memory"][0])
    if startup:
        warm = startup.get("conv2d", {}).get("warm", [])
        if warm:
            v = statistics.median(r["process_wall_s"] for r in warm)
            add("startup_warm", "import + first conv2d fwd+bwd, new process, warm cache", v,
                v < TARGETS["startup_warm"][0])
        cold_api = startup.get("api", {}).get("cold", [])
        if cold_api:
            out.append({"target": "startup_cold_api", "item": "import + every public op "
                        "fwd+bwd, float32 and float64, cold cache",
                        "value": cold_api[0]["process_wall_s"], "threshold": None,
                        "status": "INFO"})
    return out


# ---------------------------------------------------------------------------
# reporting
# ---------------------------------------------------------------------------

def _f(v, fmt, none="-"):
    return none if v is None else format(v, fmt)


TABLE_COLUMNS = ("case", "pass", "dtype", "T", "deconv ms", "±", "torch ms", "deconv/torch",
                 "numpy ms", "scipy ms", "GFLOP/s", "% limit")


def table_cells(row):
    """The cells of one table row, as strings."""
    dt = {"float32": "f32", "float64": "f64"}[row["dtype"]]
    frac, iqr = row.get("fraction_of_limit"), row.get("deconv_iqr")
    return (row["case"], row["pass"], dt, str(row["threads"]), _f(row.get("deconv_ms"), ".2f"),
            "-" if iqr is None else f"{100 * iqr:.0f}%",
            _f(row.get("torch_ms"), ".2f"), _f(row.get("ratio_torch"), ".2f"),
            _f(row.get("numpy_ms"), ".1f"), _f(row.get("scipy_ms"), ".0f"),
            _f(row.get("gflops"), ".1f"), _f(None if frac is None else 100 * frac, ".0f"))


def format_table(rows):
    """The main table (kernels and the training step) as fixed-width text."""
    body = [table_cells(r) for r in rows if not r["sweep"]]
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h)
              for i, h in enumerate(TABLE_COLUMNS)]
    lines = ["  ".join(h.ljust(w) if i < 4 else h.rjust(w)
                       for i, (h, w) in enumerate(zip(TABLE_COLUMNS, widths)))]
    for b in body:
        lines.append("  ".join(c.ljust(w) if i < 4 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(b, widths))))
    return "\n".join(lines)


def markdown_table(rows):
    lines = ["| " + " | ".join(TABLE_COLUMNS) + " |",
             "|" + "|".join("---" if i < 4 else "---:" for i in range(len(TABLE_COLUMNS))) + "|"]
    for r in rows:
        if not r["sweep"]:
            lines.append("| " + " | ".join(table_cells(r)) + " |")
    return "\n".join(lines)


def sweep_lines(rows, markdown=False):
    """The sweep: time per sample and pixel at each point, relative to the first."""
    sweep = [r for r in rows if r["sweep"]]
    if not sweep:
        return []
    head = ("sweep", "point", "pass", "T", "deconv ms", "ns / (sample·pixel)", "vs first",
            "torch ms", "deconv/torch")
    out = []
    if markdown:
        out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    else:
        out.append(f"{head[0]:6s} {head[1]:>6s} {head[2]:4s} {head[3]:>2s} {head[4]:>10s} "
                   f"{head[5]:>20s} {head[6]:>8s} {head[7]:>9s} {head[8]:>12s}")
    first = {}
    for r in sorted(sweep, key=lambda r: (r["sweep"], r["pass"], r["threads"], r["sweep_value"])):
        k = (r["sweep"], r["pass"], r["threads"])
        v = r.get("ns_per_unit")
        first.setdefault(k, v)
        rel = v / first[k] if v is not None and first[k] else None
        point = (f"N={r['sweep_value']}" if r["sweep"] == "batch"
                 else f"{r['sweep_value']}x{r['sweep_value']}")
        cells = (r["sweep"], point, r["pass"], str(r["threads"]), _f(r.get("deconv_ms"), ".2f"),
                 _f(v, ".2f"), _f(rel, ".2f"), _f(r.get("torch_ms"), ".2f"),
                 _f(r.get("ratio_torch"), ".2f"))
        if markdown:
            out.append("| " + " | ".join(cells) + " |")
        else:
            out.append(f"{cells[0]:6s} {cells[1]:>6s} {cells[2]:4s} {cells[3]:>2s} "
                       f"{cells[4]:>10s} {cells[5]:>20s} {cells[6]:>8s} {cells[7]:>9s} "
                       f"{cells[8]:>12s}")
    return out


def target_lines(targets):
    lines = []
    for t in targets:
        v = t["value"]
        if v is None:
            shown = "-"
        elif t["target"] in ("fraction_of_limit_fwd", "fraction_of_limit_bwd", "sweep_linear"):
            shown = f"{100 * v:.0f}%"
        elif t["target"] in ("startup_warm", "startup_cold_api"):
            shown = f"{v:.2f} s"
        else:
            shown = f"{v:.2f}"
        extra = f" ({t['why']})" if t.get("why") else ""
        lines.append(f"{t['status']:4s}  {t['target']:22s} {t['item']:44s} {shown}{extra}")
    return lines


def target_summary(targets):
    """target -> (passed, failed, not evaluated); INFO entries (reported, no threshold)
    are left out."""
    out = {}
    for t in targets:
        if t["status"] == "INFO":
            continue
        c = out.setdefault(t["target"], [0, 0, 0])
        c[{"PASS": 0, "FAIL": 1}.get(t["status"], 2)] += 1
    return out


def write_chart(rows, path, title):
    """Horizontal bars of deconv/torch per kernel and pass, one bar per thread count.

    Returns
    -------
    str or None
        Why no chart was written (matplotlib missing, no torch column), or None.
    """
    data = [r for r in rows if r.get("ratio_torch") is not None and not r["sweep"]]
    if not data:
        return "no deconv/torch ratio measured"
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install 'deconv-numba[bench]')"
    labels = []
    for r in data:
        lab = f"{r['case']} {r['pass']}" + (" f64" if r["dtype"] == "float64" else "")
        if lab not in labels:
            labels.append(lab)
    threads = sorted({r["threads"] for r in data})
    height = 0.8 / len(threads)
    fig, ax = plt.subplots(figsize=(8, 0.28 * len(labels) * max(1, len(threads)) + 1.5))
    for j, t in enumerate(threads):
        vals = {f"{r['case']} {r['pass']}" + (" f64" if r["dtype"] == "float64" else ""):
                r["ratio_torch"] for r in data if r["threads"] == t}
        ys = [i + j * height for i, lab in enumerate(labels) if lab in vals]
        xs = [vals[lab] for lab in labels if lab in vals]
        ax.barh(ys, xs, height=height, label=f"{t} thread{'s' if t > 1 else ''}")
    ax.axvline(1.0, color="k", lw=1)
    ax.set_xscale("log")
    ax.set_yticks([i + height * (len(threads) - 1) / 2 for i in range(len(labels))])
    ax.set_yticklabels(labels, fontsize=8)
    # top to bottom in table order, without empty margins
    ax.set_ylim(len(labels) - 1 + (len(threads) - 0.5) * height + 0.1, -height / 2 - 0.1)
    ax.set_xlabel("deconv time / PyTorch time (log scale; < 1: deconv faster)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


def _startup_summary(startup):
    lines = []
    for what, label in (("conv2d", "import deconv + first conv2d fwd+bwd (float32)"),
                        ("api", "import deconv + every public op fwd+bwd (float32, float64)")):
        if what not in startup:
            continue
        parts = []
        for kind in ("cold", "priming", "warm"):
            runs = startup[what].get(kind)
            if runs:
                parts.append(f"{kind} {statistics.median(r['process_wall_s'] for r in runs):.2f} s"
                             f" (n={len(runs)})")
        lines.append(f"{label}: " + ", ".join(parts))
    return lines


def _memory_lines(memory):
    lines = [f"{'case':22s} {'pass':4s} {'dtype':7s} {'T':>2s} {'output MB':>9s} "
             f"{'tracemalloc MB':>14s} {'RSS growth MB':>13s} {'NRT allocs':>10s} "
             f"{'extra/output':>12s}"]
    for key, m in memory.items():
        case, dtype, threads = key.split("|")
        for p in W.PASSES:
            rec = m.get(p)
            if not rec:
                lines.append(f"{case:22s} {p:4s} {dtype:7s} {threads:>2s} error {m.get('error')}")
                continue
            rss = rec["rss_peak_growth"]
            lines.append(f"{case:22s} {p:4s} {dtype:7s} {threads:>2s} "
                         f"{rec['output_bytes'] / 1e6:9.2f} {rec['tracemalloc_peak'] / 1e6:14.2f} "
                         f"{'-' if rss is None else format(rss / 1e6, '13.2f'):>13s} "
                         f"{_f(rec['nrt_allocs'], 'd'):>10s} {rec['extra_over_output']:12.2f}")
    return lines


def _thread_lines(timing):
    lines = []
    for (threads, lib), runs in sorted(timing.items()):
        info = runs[0].get("threads", {})
        parts = [f"env {info.get('env', {}).get('OMP_NUM_THREADS', '?')}"]
        if "numba_threads" in info:
            parts.append(f"numba {info['numba_threads']} ({info.get('numba_threading_layer')})")
        if "torch_threads" in info:
            parts.append(f"torch {info['torch_threads']}")
        for pool in info.get("threadpoolctl") or []:
            parts.append(f"{pool.get('internal_api')} {pool.get('version')} "
                         f"{pool.get('architecture') or ''} x{pool.get('num_threads')}".replace(
                             "  ", " "))
        if info.get("openblas"):
            parts.append(f"openblas {info['openblas']}")
        lines.append(f"  T={threads} {lib:6s}: " + "; ".join(parts))
    return lines


def _first_call_lines(cases, timing, check_first):
    lines = [f"{'case':22s} {'dtype':7s} {'deconv check fwd/bwd s':>23s} "
             f"{'deconv timed fwd/bwd s':>23s} {'torch fwd/bwd s':>16s}"]
    for c in cases:
        for dt in c["dtypes"]:
            key = f"{c['name']}|{dt}"
            chk = check_first.get("deconv", {}).get(key)
            timed = [res["cases"][key] for (t, lib), runs in timing.items() if lib == "deconv"
                     for res in runs if key in res["cases"] and "error" not in res["cases"][key]]
            tor = [res["cases"][key] for (t, lib), runs in timing.items() if lib == "torch"
                   for res in runs if key in res["cases"] and "error" not in res["cases"][key]]

            def pair(rs):
                if not rs:
                    return "-"
                return (f"{statistics.median(r['first_fwd_s'] for r in rs):.3f}/"
                        f"{statistics.median(r['first_bwd_s'] for r in rs):.3f}")
            chk_s = f"{chk['fwd_s']:.3f}/{chk['bwd_s']:.3f}" if chk else "-"
            lines.append(f"{c['name']:22s} {dt:7s} {chk_s:>23s} {pair(timed):>23s} "
                         f"{pair(tor):>16s}")
    return lines


def results_markdown(meta, rows, targets):
    """``results.md``: the tables and the targets, for pasting into the README."""
    m = meta["machine"]
    v = dict(m.get("versions", {}), **{k: x for k, x in meta.get("peer_versions", {}).items()})
    lines = [f"Measured on {meta['date']} on {m.get('cpu')} ({m.get('cores')} cores"
             + (f", {'/'.join(m['simd'])}" if m.get("simd") else "") + "); "
             + ", ".join(f"{k} {x}" for k, x in v.items())
             + f"; `deconv bench{' --quick' if meta['settings']['quick'] else ''}`, "
             f"{meta['settings']['rounds']} round(s), median of per-worker medians "
             f"(± = interquartile range within a worker, relative). "
             + noise_line(meta.get("noise")), "",
             markdown_table(rows), ""]
    sw = sweep_lines(rows, markdown=True)
    if sw:
        lines += ["conv2d 64->64 k3 p1 sweep, float32 (batch at 32x32; image size at N=8):", ""]
        lines += sw + [""]
    if meta.get("startup"):
        lines += ["Start-up (new process): " + "; ".join(_startup_summary(meta["startup"])), ""]
    lines += ["Targets:", ""]
    for name, (p, f, n) in target_summary(targets).items():
        lines.append(f"- {name}: {p} pass, {f} fail" + (f", {n} not evaluated" if n else ""))
    lines += ["", "```"] + target_lines(targets) + ["```", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# the command
# ---------------------------------------------------------------------------

def run(quick=False, threads=(1, 2), cases=None, rounds=None, out=None, torch_python=None,
        startup=True, peers=LIBS, size="full", repeats=None, warmup=None, perturb=(),
        fail_on_targets=False, stream=None):
    """Run the suite; print the tables; write results.json, results.md, ratios.png.

    Parameters
    ----------
    quick : bool
        Fewer rounds and repeats (:data:`QUICK`), no cold whole-API start-up.
    threads : sequence of int
        Thread counts, each >= 1.
    cases : list of str, optional
        Case names (or 'sweep', 'sweep_batch', 'sweep_image'); default all.
    rounds, repeats, warmup : int, optional
        Override the mode's defaults.
    out : str, optional
        Output directory (default :func:`default_out_dir`).
    torch_python : str, optional
        Interpreter for the PyTorch worker (default this one).
    startup : bool
        Measure start-up.
    peers : sequence of str
        Subset of ('deconv', 'torch', 'numpy', 'scipy'); deconv is always run.
    size : {'full', 'tiny'}
        'tiny' shrinks every case (for the tests of the machinery).
    perturb : sequence of str
        Test hook: case names whose deconv output is made wrong in the check.
    fail_on_targets : bool
        Return 1 when a target fails.
    stream : file, optional
        Where to print (default stdout).

    Returns
    -------
    int
        0; 1 if the correctness check failed (nothing is timed then) or, with
        ``fail_on_targets``, a target failed.
    """
    stream = stream or sys.stdout
    threads = [int(t) for t in threads]
    if not threads or any(t < 1 for t in threads):
        raise BenchError(f"--threads must be integers >= 1, got {threads}")
    unknown = [p for p in peers if p not in LIBS]
    if unknown:
        raise BenchError(f"unknown peer(s) {unknown}; choose from {', '.join(LIBS)}")
    settings = resolve_settings(quick, rounds, repeats, warmup)
    settings["quick"] = bool(quick)
    selected = select_cases(cases, size)
    out = os.path.abspath(out or default_out_dir())
    os.makedirs(out, exist_ok=True)
    python = sys.executable
    torch_python = torch_python or python
    t_start = time.perf_counter()
    date = datetime.datetime.now().astimezone().isoformat(timespec="seconds")

    with tempfile.TemporaryDirectory(prefix="deconv_bench_") as tmp:
        r = Run(settings, stream, tmp)
        machine = machine_info()
        r.say(f"deconv bench{' --quick' if quick else ''}: {len(selected)} cases, threads "
              f"{threads}, {settings['rounds']} round(s) x {settings['repeats']} repeats; "
              f"{machine['cpu']}, {machine['cores']} cores, load {loadavg()}")
        libs = ["deconv"] + [p for p in ("torch", "numpy", "scipy") if p in peers]
        pythons = {lib: (torch_python if lib == "torch" else python) for lib in libs}

        # inputs: reduced cases for the check, full cases for timing
        t = time.perf_counter()
        entries = []
        for c in selected:
            small = None if c["sweep"] else W.check_version(c)
            for dt in c["dtypes"]:
                entries.append({"key": f"{c['name']}|{dt}|full", "case": c, "dtype": dt,
                                "variant": "full"})
                if small is not None:
                    entries.append({"key": f"{c['name']}|{dt}|check", "case": small,
                                    "dtype": dt, "variant": "check"})
        data_dir = os.path.join(tmp, "data")
        os.makedirs(data_dir)
        specs, check_arrays = write_inputs(entries, data_dir)
        r.say(f"inputs written ({time.perf_counter() - t:.1f} s)")

        check_entries = [dict(e, key=e["key"].rsplit("|", 1)[0]) for e in entries
                         if e["variant"] == "check"]
        check_specs = {e["key"].rsplit("|", 1)[0]: specs[e["key"]] for e in entries
                       if e["variant"] == "check"}
        check_data = {k.rsplit("|", 1)[0]: v for k, v in check_arrays.items()}
        t = time.perf_counter()
        ok, report, ref_seconds, check_first, checked = check_correctness(
            r, check_entries, check_specs, check_data, libs, pythons, max(threads), perturb)
        torch_ver = None
        if "torch" in libs:
            # the torch check worker tells whether PyTorch imports (saving an import);
            # with no case to check (sweep points only) a probe asks
            if "torch" in checked:
                why = checked["torch"].get("unavailable")
                torch_ver = None if why else checked["torch"].get("torch")
            else:
                torch_ver, why = torch_version(torch_python)
            if torch_ver is None:
                libs.remove("torch")
                r.say(f"PyTorch not importable with {torch_python} ({why}): no torch column")
            else:
                r.say(f"PyTorch {torch_ver} via {torch_python}")
        _print_check(r, report, libs)
        r.say(f"  ({time.perf_counter() - t:.1f} s)")
        meta = {"date": date, "machine": machine, "settings": settings, "threads": threads,
                "libs": libs, "torch_python": torch_python if "torch" in libs else None,
                "peer_versions": {"torch": torch_ver} if torch_ver else {},
                "tolerance": TOLERANCE, "correctness": report, "seed": SEED}
        if not ok:
            r.say("\nCORRECTNESS CHECK FAILED: nothing timed.")
            meta["status"] = "correctness check failed"
            with open(os.path.join(out, "results.json"), "w") as f:
                json.dump(meta, f, indent=1, default=str)
            return 1

        # the reference only where a call stays affordable (predicted from the check)
        scipy_plan = {}
        if "scipy" in libs:
            for c in selected:
                if c["family"] == "train" or c["sweep"]:
                    continue
                key = f"{c['name']}|{c['dtypes'][0]}"
                predicted = ref_seconds[key] * _scipy_cost_ratio(c, W.check_version(c))
                run_it = predicted <= settings["scipy_cap_s"]
                scipy_plan[c["name"]] = {"predicted_s": predicted, "run": run_it}
            skipped = {k: round(v["predicted_s"], 1) for k, v in scipy_plan.items() if not v["run"]}
            if skipped:
                r.say(f"scipy reference skipped where a forward+backward is predicted over "
                      f"{settings['scipy_cap_s']} s: {skipped}")

        r.say(f"\nTiming ({', '.join(libs)}; each in its own process, alternating):")
        timing = time_all(r, selected, libs, pythons, threads, specs, scipy_plan)
        rows = aggregate(selected, timing, threads)

        r.say("\nMemory (one warm call of each conv pass):")
        t = time.perf_counter()
        memory = memory_all(r, selected, python, threads, specs)
        r.say(f"  done ({time.perf_counter() - t:.1f} s)" if memory
              else "  no conv case selected")
        startup_res = None
        if startup:
            r.say("\nStart-up (a copy of the package; cold = its Numba cache cleared, priming "
                  "= one untimed run that refreshes it):")
            startup_res = startup_all(r, python)

    targets = evaluate_targets(rows, memory, startup_res, torch_available="torch" in libs)
    wall = time.perf_counter() - t_start
    meta.update({"status": "ok", "wall_s": wall, "rows": rows, "memory": memory,
                 "noise": noise_summary(timing),
                 "startup": startup_res, "targets": targets, "scipy_plan": scipy_plan,
                 "check_first_calls": check_first, "workers": _worker_summaries(timing)})
    _report(r, selected, rows, timing, check_first, memory, startup_res, targets, wall,
            meta["noise"])

    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(meta, f, indent=1, default=str)
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(results_markdown(meta, rows, targets))
    title = f"deconv / PyTorch, {date[:10]}, {machine['cpu']} ({machine['cores']} cores)"
    why = write_chart(rows, os.path.join(out, "ratios.png"), title)
    r.say(f"\nwrote {out}/results.json, results.md" + ("" if why else ", ratios.png")
          + (f" (no chart: {why})" if why else ""))
    failed = any(t["status"] == "FAIL" for t in targets)
    return 1 if (fail_on_targets and failed) else 0


def noise_summary(timing):
    """How disturbed the timing workers were: CPU used by other processes during them
    (% of the machine), busy before them, hypervisor steal; None without workers."""
    runs = [res for rs in timing.values() for res in rs if "others_pct" in res]
    if not runs:
        return None
    others = [res["others_pct"] for res in runs]
    return {"others_median_pct": statistics.median(others), "others_max_pct": max(others),
            "busy_before_median_pct": statistics.median(res["busy_before_pct"] for res in runs),
            "steal_max_pct": max(res.get("steal_pct", 0.0) for res in runs),
            "load_at_end": loadavg()}


def noise_line(noise):
    if not noise:
        return ""
    line = (f"CPU used by other processes during the timing workers: median "
            f"{noise['others_median_pct']:.0f}%, max {noise['others_max_pct']:.0f}% of the "
            f"machine; steal max {noise['steal_max_pct']:.0f}%; load at the end "
            f"{noise['load_at_end']}.")
    if noise["others_median_pct"] > 20:
        line += " The machine was shared: timings (2-thread ones most) are unreliable."
    return line


def _worker_summaries(timing):
    """Per worker: wall time, import time, machine load, threads and versions (no timings)."""
    out = {}
    for (threads, lib), runs in timing.items():
        out[f"{lib}|{threads}"] = [
            {k: res.get(k) for k in ("process_wall_s", "import_s", "busy_before_pct",
                                     "others_pct", "steal_pct", "attempts", "threads",
                                     "versions")} for res in runs]
    return out


def _report(r, cases, rows, timing, check_first, memory, startup, targets, wall, noise):
    r.say("\n=== Results: ms per call, median over rounds of each worker's median; ± = "
          "interquartile range within a worker; deconv/torch = median of round-by-round "
          "ratios; GFLOP/s of deconv and its fraction of np.matmul on the same GEMM shapes")
    r.say(format_table(rows))
    errors = [(row["case"], row["dtype"], row["threads"], lib, e) for row in rows
              for lib, e in row["errors"].items()]
    for case, dt, t, lib, e in sorted(set(errors)):
        r.say(f"  ERROR {lib} {case} {dt} T={t}: {e}")
    sw = sweep_lines(rows)
    if sw:
        r.say("\n=== conv2d sweep (batch at 32x32; image size at N=8), float32")
        r.say("\n".join(sw))
    r.say("\n=== First calls (s): in the check worker (Numba compiles here when its cache is "
          "cold), in the timing workers (cache load), PyTorch's")
    r.say("\n".join(_first_call_lines(cases, timing, check_first)))
    r.say("\n=== Threads seen by the workers")
    r.say("\n".join(_thread_lines(timing)))
    if memory:
        r.say("\n=== Memory of one warm call (extra = max(tracemalloc peak, RSS growth) - output)")
        r.say("\n".join(_memory_lines(memory)))
    if startup:
        r.say("\n=== Start-up (process wall time)")
        r.say("\n".join(_startup_summary(startup)))
    r.say("\n=== Targets")
    r.say("\n".join(target_lines(targets)))
    for name, (p, f, n) in target_summary(targets).items():
        r.say(f"  {name}: {p} pass, {f} fail" + (f", {n} not evaluated" if n else ""))
    if noise:
        r.say("\n" + noise_line(noise))
    r.say(f"\nwall time {wall:.0f} s")
