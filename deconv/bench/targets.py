"""The targets of ``deconv bench`` and their evaluation on the table's rows.

Each target is a threshold on a measured figure (deconv's time against
PyTorch's, against the matmul limit, across the sweep, across thread counts;
its memory; its start-up). :func:`evaluate_targets` turns rows (from
:func:`deconv.bench.report.aggregate`, or synthetic ones in the tests) into
PASS / FAIL / N/A records; nothing here measures anything.
"""

import statistics

from . import cases as C

#: targets of the issue: name -> (threshold, description)
TARGETS = {
    "ratio_vs_torch": (1.0, "deconv time / PyTorch time <= 1.0, every kernel, forward and "
                            "backward, at every thread count"),
    "ratio_vs_jax": (1.0, "deconv time / JAX time <= 1.0, every conv kernel, forward and "
                          "backward, at every thread count (when JAX ran)"),
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


def evaluate_targets(rows, memory=None, startup=None, torch_available=True,
                     jax_available=False):
    """PASS / FAIL of every target on measured (or synthetic) numbers.

    Parameters
    ----------
    rows : list of dict
        As from :func:`aggregate` (only the keys used here are needed:
        case, family, pass, dtype, threads, sweep, large, limit_target,
        deconv_ms, ratio_torch, ratio_jax, fraction_of_limit, ns_per_unit).
    memory : dict, optional
        ``'case|dtype|threads'`` -> {'fwd': {...}, 'bwd': {...}} with
        ``extra_over_output``.
    startup : dict, optional
        As from :func:`startup_all`.
    torch_available, jax_available : bool
        Whether PyTorch, JAX ran: ``ratio_vs_torch`` is N/A without it;
        ``ratio_vs_jax`` is left out without JAX (an optional peer no
        target was set against).

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

    def ratio_target(peer, families):
        target = f"ratio_vs_{peer}"
        for r in kernels:
            if r["family"] not in families:
                continue
            v = r.get(f"ratio_{peer}")
            add(target, f"{r['case']} {r['pass']} {r['dtype']} T={r['threads']}", v,
                None if v is None else v <= TARGETS[target][0],
                why="not measured" if v is None else None)

    if not torch_available:
        add("ratio_vs_torch", "all kernels", None, None, why="PyTorch not importable")
    else:
        ratio_target("torch", ("conv", "pool"))
    if jax_available:
        ratio_target("jax", ("conv",))
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
        for p in C.PASSES:
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
