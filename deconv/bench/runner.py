"""The parent of ``deconv bench``: options, the correctness check, the timing plan, :func:`run`.

:func:`run` writes the inputs (:mod:`~deconv.bench.cases`), checks every
lib's outputs against the reference, decides where the slow libs (the
scipy reference, the naive kernels) are affordable, runs the timing, memory
and start-up workers (:mod:`~deconv.bench.processes`), and hands the
results to :mod:`~deconv.bench.report` and :mod:`~deconv.bench.targets`.
The protocol is described in :mod:`deconv.bench`.
"""

import datetime
import json
import os
import shutil
import sys
import tempfile
import time

from . import cases as C
from .peers import LIBS, OPTIONAL_LIBS, libs_for, naive_kernels_missing, reference_outputs
from .processes import (ISAS, PACKAGE_DIR, WORKER_SCRIPT, Run, WorkerError, busy_core, loadavg,
                        machine_info, peer_version, run_worker, worker_env)
from .report import (aggregate, contended_summary, noise_summary, print_report,
                     results_markdown, skipped_cases, skipped_line, worker_summaries, write_chart,
                     write_roofline)
from .targets import evaluate_targets

#: max |a - ref| / max |ref| allowed against the float64 reference
TOLERANCE = {"float32": 1e-4, "float64": 1e-10}

#: Settings of the two modes. ``budget_s``: a worker stops repeating a case once it
#: has ``min_repeats`` repeats and has spent this long on them; ``max_wait``: how
#: long to wait for a quiet machine before a worker; ``retries``: re-runs of a
#: worker disturbed by other processes; ``scipy_cap_s``, ``naive_cap_s``: the
#: reference and the naive kernels are timed only where a forward+backward is
#: predicted below this (from the check, :func:`budget_plan`); ``numpy_warmup``: the
#: NumPy baseline compiles nothing, so the quick mode skips its warm-up;
#: ``startup_cold``: clear the Numba cache for a cold start-up (else one
#: untimed run makes sure the copy's cache is warm); ``startup_api``: also
#: time every public op.
QUICK = dict(rounds=1, warmup=0, repeats=3, budget_s=0.4, min_repeats=2, max_wait=0.0,
             idle_sample=0.3, retries=0, scipy_cap_s=0.3, naive_cap_s=1.0, numpy_warmup=0,
             startup_warm=2, startup_cold=False, startup_api=False)
FULL = dict(rounds=3, warmup=2, repeats=10, budget_s=3.0, min_repeats=3, max_wait=20.0,
            idle_sample=1.0, retries=1, scipy_cap_s=5.0, naive_cap_s=5.0, numpy_warmup=2,
            startup_warm=3, startup_cold=True, startup_api=True)

#: the slow libs: timed by one worker per thread count ('naive') or in all
#: ('scipy', single-threaded), with fewer repeats, where the plan affords them
SLOW_LIBS = ("scipy", "naive")


# ---------------------------------------------------------------------------
# options
# ---------------------------------------------------------------------------

class BenchError(ValueError):
    """A bad option of ``deconv bench`` (reported as a usage error)."""


#: the case sets of ``--suite``
SUITES = ("kernels", "layers", "models", "all")


def select_cases(names=None, size="full", suite="kernels", user_cases=()):
    """The cases to run: a suite's, or those named, and the user's own.

    Parameters
    ----------
    names : list of str, optional
        Case names of the suite (or 'sweep', 'sweep_batch', 'sweep_image').
    size : {'full', 'tiny'}
    suite : {'kernels', 'layers', 'models', 'all'}
        'kernels': one case per kernel, the training steps and the sweep
        (the default); 'layers': the layers of real networks
        (:data:`deconv.bench.cases.LAYERS`); 'models': a training step of
        each family of ``deconv train`` (:func:`deconv.bench.cases.model_cases`);
        'all': every one.
    user_cases : sequence of dict
        Cases from ``--case`` / ``--case-file``
        (:func:`deconv.bench.cases.parse_case`). Given alone (no names),
        only they run.

    Raises
    ------
    BenchError
        For an unknown suite or name, or two cases of one name.
    """
    if suite not in SUITES:
        raise BenchError(f"--suite must be one of {', '.join(SUITES)}, got {suite!r}")
    cases = []
    if suite in ("kernels", "all"):
        cases += C.build_cases(size)
    if suite in ("layers", "all"):
        cases += C.layer_cases(size == "tiny")
    if suite in ("models", "all"):
        cases += C.model_cases(size == "tiny")
    user_cases = list(user_cases)
    if not names:
        selected = cases if not user_cases else []
    else:
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
                raise BenchError(f"unknown case {n!r} in --suite {suite}; choose from "
                                 f"{', '.join(known)} or the groups {', '.join(groups)}")
        selected = [c for c in cases if c["name"] in wanted]
    seen = set()
    for c in selected + user_cases:
        if c["name"] in seen:
            raise BenchError(f"two cases are named {c['name']!r}: give each --case-file line "
                             f"its own 'name: spec'")
        seen.add(c["name"])
    return selected + user_cases


def default_out_dir(date=None, base=None):
    """A new directory for one run's results, outside any source tree.

    ``<temp dir>/deconv-bench/<date and time>`` (``base`` replaces the temp
    dir): a run never overwrites the results committed in a repository's
    ``benchmarks/``, nor an earlier run's; ``--out`` chooses a directory.
    """
    stamp = (date or datetime.datetime.now()).strftime("%Y%m%d-%H%M%S")
    root = os.path.join(base or tempfile.gettempdir(), "deconv-bench")
    path, n = os.path.join(root, stamp), 1
    while os.path.exists(path):
        n += 1
        path = os.path.join(root, f"{stamp}-{n}")
    return path


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


def check_correctness(run, entries, specs, check_arrays, libs, pythons, threads, perturb=()):
    """Compare every lib's outputs on the reduced cases with the reference.

    Returns
    -------
    (ok, report, reference_seconds, first_calls, checked)
        ``report``: key -> lib -> output -> comparison; ``reference_seconds``:
        key -> seconds the reference took (forward + backward), used to
        predict its cost at full size; ``first_calls``: lib -> key ->
        first forward / backward seconds in the check worker (for deconv,
        Numba compilation when the cache is cold) and, for the naive
        kernels, ``warm_s``, a second forward + backward, from which their
        full-size cost is predicted; ``checked``: lib -> the
        worker's versions, or the reason it is unavailable (PyTorch not
        importable), for every lib whose worker ran.
    """
    reference, ref_seconds = {}, {}
    for e in entries:
        t = time.perf_counter()
        reference[e["key"]] = reference_outputs(e["case"], check_arrays[e["key"]])
        ref_seconds[e["key"]] = time.perf_counter() - t
    walls = [f"reference {sum(ref_seconds.values()):.1f} s"]
    report = {e["key"]: {} for e in entries}
    first_calls, checked = {}, {}
    ok = True
    for lib in libs:
        if lib == "scipy":
            continue        # it is the reference
        mine = [e for e in entries if lib in libs_for(e["case"], libs)]
        if not mine:
            continue
        out_dir = tempfile.mkdtemp(prefix=f"check_{lib}_", dir=run.tmp)
        job = {"lib": lib, "mode": "check", "threads": threads, "out_dir": out_dir,
               "perturb": list(perturb) if lib == "deconv" else [],
               "warm_call": lib == "naive",
               "entries": [{"key": e["key"], "case": e["case"], "dtype": e["dtype"],
                            "arrays": specs[e["key"]]} for e in mine]}
        res = run_worker(pythons[lib], job, worker_env(lib, threads, isa=run.isa), run.tmp)
        walls.append(f"{lib} worker {res['process_wall_s']:.1f} s")
        if "unavailable" in res:
            checked[lib] = {"unavailable": res["unavailable"]}
            continue
        require_kernel_set(lib, res)
        checked[lib] = res.get("versions", {})
        first_calls[lib] = {}
        for e in mine:
            r = res["cases"][e["key"]]
            if "error" in r:
                report[e["key"]][lib] = {"error": r["error"], "ok": False}
                ok = False
                continue
            first_calls[lib][e["key"]] = {"fwd_s": r["first_fwd_s"], "bwd_s": r["first_bwd_s"]}
            if "warm_s" in r:
                first_calls[lib][e["key"]]["warm_s"] = r["warm_s"]
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

def require_kernel_set(lib, res):
    """Refuse a deconv or naive worker that did not run the kernel set it stands for.

    ``res['kernels']`` is what ``deconv.kernels.active()`` said inside the
    worker (None where deconv has no kernel sets: then only 'deconv' can
    run, on the one set there is).
    """
    if lib not in ("deconv", "naive"):
        return
    want = {"deconv": ("tiled", None), "naive": ("naive",)}[lib]
    got = res.get("kernels")
    if got not in want:
        raise WorkerError(f"the {lib} worker ran deconv's {got!r} kernel set, not "
                          f"{' or '.join(repr(w) for w in want if w)}")


def budget_plan(lib, selected, seconds, cap_s):
    """Where a slow lib is timed: the cases whose full-size call is predicted under ``cap_s``.

    Parameters
    ----------
    lib : {'scipy', 'naive'}
    selected : list of dict
        The cases of the run.
    seconds : dict
        ``'case|dtype'`` -> seconds of one forward + backward of the lib on
        the reduced case (:func:`deconv.bench.cases.check_version`), measured
        in the check: for the reference, its one call; for the naive
        kernels, their second (compiled) call.
    cap_s : float

    Returns
    -------
    dict
        case name -> {'predicted_s': seconds scaled by
        :func:`~deconv.bench.cases.cost_ratio`, 'run': predicted <= cap}, for
        the cases the lib implements (sweep points left out).
    """
    plan = {}
    for c in selected:
        if c["sweep"] or lib not in libs_for(c, (lib,)):
            continue
        measured = seconds.get(f"{c['name']}|{c['dtypes'][0]}")
        if measured is None:
            continue
        predicted = measured * C.cost_ratio(c, C.check_version(c))
        plan[c["name"]] = {"predicted_s": predicted, "run": predicted <= cap_s}
    return plan


def time_all(run, cases, libs, pythons, threads_list, specs, plans, peak=True):
    """Every timing worker, alternating libs within each round.

    The slow libs (:data:`SLOW_LIBS`) run only on the cases their plan
    (:func:`budget_plan`, lib -> plan) affords, with at most 3 repeats and
    no warm-up: the reference (single-threaded) in one worker in all, the
    naive kernels in one worker per thread count (in the first round).
    ``peak``: the deconv workers also measure the machine's GEMM ceiling
    (:func:`deconv.bench.worker.gemm_peak`) in the dtypes of the conv cases.

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
                if lib in SLOW_LIBS and (r > 0 or (lib == "scipy" and threads != threads_list[0])):
                    continue
                mine = [c for c in cases if lib in libs_for(c, libs)
                        and not (lib in ("numpy", "naive") and c["sweep"])]
                if lib in SLOW_LIBS:
                    mine = [c for c in mine if plans.get(lib, {}).get(c["name"], {}).get("run")]
                entries = [{"key": f"{c['name']}|{dt}", "case": c, "dtype": dt,
                            "arrays": specs[f"{c['name']}|{dt}|full"],
                            "limit": lib == "numpy" and c["family"] == "conv"}
                           for c in mine for dt in c["dtypes"]]
                if not entries:
                    continue
                slow = lib in SLOW_LIBS
                job = {"lib": lib, "mode": "time", "threads": threads, "entries": entries,
                       "warmup": 0 if slow else {"numpy": s["numpy_warmup"]}.get(lib, s["warmup"]),
                       "repeats": min(3, s["repeats"]) if slow else s["repeats"],
                       "budget_s": s["budget_s"], "min_repeats": 1 if slow else s["min_repeats"]}
                if lib == "deconv" and peak:
                    # the roofline's ceiling, at this thread count, in every round
                    job["peak_dtypes"] = sorted({e["dtype"] for e in entries
                                                 if e["case"]["family"] == "conv"})
                label = f"threads={threads} round {r + 1}/{s['rounds']} {lib}"
                res = run.worker(pythons[lib], job, worker_env(lib, threads, isa=run.isa),
                                 label)
                require_kernel_set(lib, res)
                results.setdefault((threads, lib), []).append(res)
                errors = [k for k, v in res["cases"].items() if "error" in v]
                run.say(f"  {label:32s} {run.describe(res)}"
                        + (f"  ERRORS in {errors}" if errors else ""))
    return results


def contended_all(run, cases, libs, pythons, threads_list, specs, idle_rows):
    """The timing again, one core kept busy meanwhile (``--contended``).

    The slow libs are left out, and so is the wait for a quiet machine and
    the re-run of a disturbed worker (the busy loop is the disturbance).

    Returns
    -------
    dict
        ``core`` (the one kept busy), ``rows`` (as :func:`aggregate`) and
        ``slowdown`` (:func:`deconv.bench.report.contended_summary`).
    """
    fast = [lib for lib in libs if lib not in SLOW_LIBS]
    calm = Run(dict(run.s, max_wait=0.0, retries=0), run.stream, run.tmp, isa=run.isa)
    with busy_core(pythons["deconv"]) as (core, _):
        run.say(f"\nTiming again with core {core} kept busy by a spinning process "
                f"(--contended; {', '.join(fast)}):")
        timing = time_all(calm, cases, fast, pythons, threads_list, specs, {}, peak=False)
    rows = aggregate(cases, timing, threads_list)
    return {"core": core, "libs": fast, "rows": rows,
            "slowdown": contended_summary(idle_rows, rows, fast)}


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
                                             "MALLOC_TRIM_THRESHOLD_": "0"}, isa=run.isa)
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
        env = worker_env("deconv", os.cpu_count() or 1, isa=run.isa)
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
# the command
# ---------------------------------------------------------------------------

def run(quick=False, threads=(1, 2), cases=None, rounds=None, out=None, torch_python=None,
        startup=True, peers=LIBS, size="full", repeats=None, warmup=None, perturb=(),
        fail_on_targets=False, stream=None, suite="kernels", user_cases=(), isa="native",
        jax_python=None, contended=False):
    """Run the suite; print the tables; write results.json, results.md, ratios.png,
    roofline.png.

    Parameters
    ----------
    quick : bool
        Fewer rounds and repeats (:data:`QUICK`), no cold whole-API start-up.
    threads : sequence of int
        Thread counts, each >= 1.
    cases : list of str, optional
        Case names of the suite (or 'sweep', 'sweep_batch', 'sweep_image');
        default all of it.
    suite : {'kernels', 'layers', 'models', 'all'}
        See :func:`select_cases`.
    user_cases : sequence of dict
        Cases described on the command line (:func:`deconv.bench.cases.parse_case`).
    isa : {'native', 'avx2', 'avx512', 'generic'}
        The instruction set every worker of both libraries may use
        (:data:`deconv.bench.processes.ISAS`); each worker reports what it
        ran with.
    rounds, repeats, warmup : int, optional
        Override the mode's defaults.
    out : str, optional
        Output directory (default :func:`default_out_dir`).
    torch_python, jax_python : str, optional
        Interpreters for the PyTorch and JAX workers (default this one).
    contended : bool
        Time everything twice, the second time with one core kept busy by
        a spinning process (:func:`deconv.bench.processes.busy_core`), and
        report each library's slowdown.
    startup : bool
        Measure start-up.
    peers : sequence of str
        Subset of :data:`LIBS`; deconv is always run. 'naive' needs deconv's
        kernel sets (``deconv.kernels.use``).
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
    if isa not in ISAS:
        raise BenchError(f"--isa must be one of {', '.join(ISAS)}, got {isa!r}")
    settings = resolve_settings(quick, rounds, repeats, warmup)
    settings["quick"] = bool(quick)
    selected = select_cases(cases, size, suite, user_cases)
    if "naive" in peers:
        why = naive_kernels_missing()
        if why:
            raise WorkerError(why)
    out = os.path.abspath(out or default_out_dir())
    os.makedirs(out, exist_ok=True)
    python = sys.executable
    torch_python = torch_python or python
    jax_python = jax_python or python
    t_start = time.perf_counter()
    date = datetime.datetime.now().astimezone().isoformat(timespec="seconds")

    with tempfile.TemporaryDirectory(prefix="deconv_bench_") as tmp:
        r = Run(settings, stream, tmp, isa=isa)
        machine = machine_info()
        r.say(f"deconv bench{' --quick' if quick else ''}: {len(selected)} cases, threads "
              f"{threads}, {settings['rounds']} round(s) x {settings['repeats']} repeats; "
              f"{machine['cpu']}, {machine['cores']} cores, load {loadavg()}"
              + ("" if isa == "native" else f"; --isa {isa}"))
        libs = ["deconv"] + [p for p in LIBS[1:] if p in peers]
        pythons = {lib: {"torch": torch_python, "jax": jax_python}.get(lib, python)
                   for lib in libs}

        # inputs: reduced cases for the check, full cases for timing
        t = time.perf_counter()
        entries = []
        for c in selected:
            small = None if c["sweep"] else C.check_version(c)
            for dt in c["dtypes"]:
                entries.append({"key": f"{c['name']}|{dt}|full", "case": c, "dtype": dt,
                                "variant": "full"})
                if small is not None:
                    entries.append({"key": f"{c['name']}|{dt}|check", "case": small,
                                    "dtype": dt, "variant": "check"})
        data_dir = os.path.join(tmp, "data")
        os.makedirs(data_dir)
        specs, check_arrays = C.write_inputs(entries, data_dir)
        r.say(f"inputs written ({time.perf_counter() - t:.1f} s)")

        check_entries = [dict(e, key=e["key"].rsplit("|", 1)[0]) for e in entries
                         if e["variant"] == "check"]
        check_specs = {e["key"].rsplit("|", 1)[0]: specs[e["key"]] for e in entries
                       if e["variant"] == "check"}
        check_data = {k.rsplit("|", 1)[0]: v for k, v in check_arrays.items()}
        t = time.perf_counter()
        ok, report, ref_seconds, check_first, checked = check_correctness(
            r, check_entries, check_specs, check_data, libs, pythons, max(threads), perturb)
        peer_versions = {}
        for lib, label in OPTIONAL_LIBS.items():
            if lib not in libs:
                continue
            # its check worker tells whether the peer imports (saving an import);
            # with no case to check (sweep points only, pooling only) a probe asks
            if lib in checked:
                why = checked[lib].get("unavailable")
                version = None if why else checked[lib].get(lib)
            else:
                version, why = peer_version(pythons[lib], lib)
            if version is None:
                libs.remove(lib)
                r.say(f"{label} not importable with {pythons[lib]} ({why}): no {lib} column")
            else:
                peer_versions[lib] = version
                r.say(f"{label} {version} via {pythons[lib]}")
        _print_check(r, report, libs)
        r.say(f"  ({time.perf_counter() - t:.1f} s)")
        meta = {"date": date, "machine": machine, "settings": settings, "threads": threads,
                "isa": isa, "suite": suite,
                "libs": libs, "torch_python": torch_python if "torch" in libs else None,
                "jax_python": jax_python if "jax" in libs else None,
                "peer_versions": peer_versions, "contended": None,
                "tolerance": TOLERANCE, "correctness": report, "seed": C.SEED}
        if not ok:
            r.say("\nCORRECTNESS CHECK FAILED: nothing timed.")
            meta["status"] = "correctness check failed"
            with open(os.path.join(out, "results.json"), "w") as f:
                json.dump(meta, f, indent=1, default=str)
            return 1

        # the slow libs only where a call stays affordable (predicted from the check)
        plans = {}
        if "scipy" in libs:
            plans["scipy"] = budget_plan("scipy", selected, ref_seconds, settings["scipy_cap_s"])
        if "naive" in libs:
            warm = {k: v["warm_s"] for k, v in check_first.get("naive", {}).items()}
            plans["naive"] = budget_plan("naive", selected, warm, settings["naive_cap_s"])
        for lib, plan in plans.items():
            if skipped_cases(plan):
                r.say(skipped_line(lib, plan, settings[f"{lib}_cap_s"]))

        r.say(f"\nTiming ({', '.join(libs)}; each in its own process, alternating):")
        timing = time_all(r, selected, libs, pythons, threads, specs, plans)
        rows = aggregate(selected, timing, threads)
        if contended:
            meta["contended"] = contended_all(r, selected, libs, pythons, threads, specs, rows)

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

    targets = evaluate_targets(rows, memory, startup_res, torch_available="torch" in libs,
                               jax_available="jax" in libs)
    wall = time.perf_counter() - t_start
    meta.update({"status": "ok", "wall_s": wall, "rows": rows, "memory": memory,
                 "noise": noise_summary(timing),
                 "startup": startup_res, "targets": targets,
                 "scipy_plan": plans.get("scipy", {}), "naive_plan": plans.get("naive", {}),
                 "check_first_calls": check_first, "workers": worker_summaries(timing)})
    print_report(r, selected, rows, timing, check_first, memory, startup_res, targets, wall,
                 meta["noise"], meta["contended"])

    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(meta, f, indent=1, default=str)
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(results_markdown(meta, rows, targets))
    where = f"{date[:10]}, {machine['cpu']} ({machine['cores']} cores)"
    written = ["results.json", "results.md"]
    for name, write, title in (("ratios.png", write_chart, f"deconv / PyTorch, {where}"),
                               ("roofline.png", write_roofline, f"conv GFLOP/s, {where}")):
        path = os.path.join(out, name)
        why = write(rows, path, title)
        if why:
            r.say(f"no chart {name}: {why}")
            if os.path.exists(path):
                # an earlier run's figure must not pass for this run's
                os.remove(path)
        else:
            written.append(name)
    r.say(f"\nwrote {out}/" + ", ".join(written))
    failed = any(t["status"] == "FAIL" for t in targets)
    return 1 if (fail_on_targets and failed) else 0


