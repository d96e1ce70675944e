"""What ``deconv bench`` reports: the rows of the table, printed and as markdown, and the chart.

:func:`aggregate` turns the workers' results into one row per case, dtype,
thread count and pass (medians over rounds, the ratios, GFLOP/s, fraction
of the matmul limit, the naive kernels' time and the speed-up the tiles
buy); the rest formats rows, targets, memory, start-up and the machine's
noise for the terminal, for ``results.md``, ``ratios.png`` and
``roofline.png``; and the slowdowns of a ``--contended`` run.
"""

import statistics

from . import cases as C
from .peers import LIBS, OPTIONAL_LIBS
from .processes import loadavg
from .targets import target_summary
from .worker import PEAK_GEMM_SIZE


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
        ``*_rounds``: those medians; ``ratio_torch``, ``ratio_jax``: median
        of the round-by-round ratios deconv/torch, deconv/jax; ``gflops``
        (and ``<lib>_gflops`` of every lib timed) and
        ``fraction_of_limit`` (limit time / deconv time) for conv cases;
        ``tiled_speedup``: naive time / deconv time, what the tiled
        kernels buy over the naive loops (conv cases the naive worker ran);
        ``peak_gflops``: the machine's GEMM ceiling at the row's thread
        count and dtype (conv rows, :func:`peak_gflops`).
    """
    rows = []
    peaks = peak_gflops(timing)
    for c in cases:
        for dt in c["dtypes"]:
            key = f"{c['name']}|{dt}"
            for threads in threads_list:
                for p in C.PASSES:
                    row = {"case": c["name"], "op": c["op"], "family": c["family"], "pass": p,
                           "dtype": dt, "threads": threads, "sweep": c["sweep"],
                           "sweep_value": c.get("sweep_value"), "large": c["large"],
                           "limit_target": c["limit_target"], "errors": {}}
                    if c["family"] == "conv":
                        row["flops"] = C.flops(c, p)
                        if (threads, dt) in peaks:
                            row["peak_gflops"] = peaks[(threads, dt)]
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
                        for peer in OPTIONAL_LIBS:
                            pairs = [a / b for a, b in zip(row.get("deconv_rounds_ms", []),
                                                           row.get(f"{peer}_rounds_ms", []))
                                     if a is not None and b]
                            if pairs:
                                row[f"ratio_{peer}"] = statistics.median(pairs)
                        if row.get("numpy_ms"):
                            row["ratio_numpy"] = d / row["numpy_ms"]
                        if row.get("naive_ms"):
                            row["tiled_speedup"] = row["naive_ms"] / d
                        if "flops" in row:
                            row["gflops"] = row["flops"] / (d * 1e6)
                            for lib in LIBS:
                                if row.get(f"{lib}_ms"):
                                    row[f"{lib}_gflops"] = row["flops"] / (row[f"{lib}_ms"] * 1e6)
                            if row.get("limit_ms"):
                                row["limit_gflops"] = row["flops"] / (row["limit_ms"] * 1e6)
                                row["fraction_of_limit"] = row["limit_ms"] / d
                        if "units" in row:
                            row["ns_per_unit"] = d * 1e6 / row["units"]
                    rows.append(row)
    return rows


# ---------------------------------------------------------------------------
# tables
# ---------------------------------------------------------------------------

def _f(v, fmt, none="-"):
    return none if v is None else format(v, fmt)


TABLE_COLUMNS = ("case", "pass", "dtype", "T", "deconv ms", "±", "naive ms", "naive/deconv",
                 "torch ms", "deconv/torch", "jax ms", "deconv/jax", "numpy ms", "scipy ms",
                 "GFLOP/s", "% limit")


def table_columns(rows):
    """:data:`TABLE_COLUMNS` without the columns of an optional peer (torch, jax)
    that no row has a time of: it was not asked for, or did not import."""
    absent = {lib for lib in OPTIONAL_LIBS if not any(r.get(f"{lib}_ms") for r in rows)}
    return tuple(c for c in TABLE_COLUMNS
                 if not any(c in (f"{lib} ms", f"deconv/{lib}") for lib in absent))

#: what the naive columns mean, printed under the table
NAIVE_NOTE = ("naive ms: the same functions under deconv.kernels.use('naive'), the plain loop "
              "nests the tiled conv kernels replace (conv cases; '-' where predicted too slow or "
              "not run); naive/deconv: how many times faster the tiles are. 'same': the pooling, "
              "unpooling and upsampling kernels have a single form, their naive one, so they are "
              "not timed twice.")


#: what the jax columns mean, printed under the table when it has them
JAX_NOTE = ("jax ms: jax.jit of jax.lax.conv_general_dilated, its linear transpose for the "
            "transposed convs, jax.vjp's pullback for the backward; conv rows only ('-' "
            "elsewhere: JAX not run).")


def table_notes(rows):
    """The notes under the table, for the columns it has."""
    return [NAIVE_NOTE] + ([JAX_NOTE] if "jax ms" in table_columns(rows) else [])


def table_cells(row, columns=TABLE_COLUMNS):
    """The cells of one table row, as strings, for ``columns`` (of :data:`TABLE_COLUMNS`)."""
    dt = {"float32": "f32", "float64": "f64"}[row["dtype"]]
    frac, iqr = row.get("fraction_of_limit"), row.get("deconv_iqr")
    single_form = row["family"] == "pool"
    cells = dict(zip(TABLE_COLUMNS, (
        row["case"], row["pass"], dt, str(row["threads"]), _f(row.get("deconv_ms"), ".2f"),
        "-" if iqr is None else f"{100 * iqr:.0f}%",
        "same" if single_form else _f(row.get("naive_ms"), ".1f"),
        "same" if single_form else _f(row.get("tiled_speedup"), ".1f"),
        _f(row.get("torch_ms"), ".2f"), _f(row.get("ratio_torch"), ".2f"),
        _f(row.get("jax_ms"), ".2f"), _f(row.get("ratio_jax"), ".2f"),
        _f(row.get("numpy_ms"), ".1f"), _f(row.get("scipy_ms"), ".0f"),
        _f(row.get("gflops"), ".1f"), _f(None if frac is None else 100 * frac, ".0f"))))
    return tuple(cells[c] for c in columns)


def format_table(rows):
    """The main table (kernels and the training step) as fixed-width text."""
    columns = table_columns(rows)
    body = [table_cells(r, columns) for r in rows if not r["sweep"]]
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h)
              for i, h in enumerate(columns)]
    lines = ["  ".join(h.ljust(w) if i < 4 else h.rjust(w)
                       for i, (h, w) in enumerate(zip(columns, widths)))]
    for b in body:
        lines.append("  ".join(c.ljust(w) if i < 4 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(b, widths))))
    return "\n".join(lines)


def markdown_table(rows):
    columns = table_columns(rows)
    lines = ["| " + " | ".join(columns) + " |",
             "|" + "|".join("---" if i < 4 else "---:" for i in range(len(columns))) + "|"]
    for r in rows:
        if not r["sweep"]:
            lines.append("| " + " | ".join(table_cells(r, columns)) + " |")
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


def peak_gflops(timing):
    """``(threads, dtype)`` -> the machine's GEMM ceiling in GFLOP/s: the best of the
    deconv workers' :func:`deconv.bench.worker.gemm_peak` at that thread count."""
    out = {}
    for (threads, lib), runs in timing.items():
        if lib != "deconv":
            continue
        for res in runs:
            for dtype, v in (res.get("peak_gflops") or {}).items():
                out[(threads, dtype)] = max(v, out.get((threads, dtype), 0.0))
    return out


#: the libs the roofline shows, with their markers
ROOFLINE_LIBS = (("deconv", "o"), ("torch", "s"), ("jax", "D"), ("numpy", "^"), ("naive", "v"))


def write_roofline(rows, path, title, peaks=None):
    """GFLOP/s of each lib on every conv row, against the machine's measured ceiling.

    One panel per thread count; a row per case, pass and dtype; a marker per
    lib; a vertical line per dtype at the GEMM ceiling of that thread count
    (``peaks``, see :func:`peak_gflops`; default the rows' ``peak_gflops``).

    Returns
    -------
    str or None
        Why no figure was written (matplotlib missing, no conv row), or None.
    """
    data = [r for r in rows if r.get("gflops") is not None and not r["sweep"]]
    if not data:
        return "no conv row timed"
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install 'deconv-numba[bench]')"
    if peaks is None:
        peaks = {(r["threads"], r["dtype"]): r["peak_gflops"] for r in data
                 if r.get("peak_gflops")}
    threads = sorted({r["threads"] for r in data})
    labels = []
    for r in data:
        lab = f"{r['case']} {r['pass']}" + (" f64" if r["dtype"] == "float64" else "")
        if lab not in labels:
            labels.append(lab)
    fig, axes = plt.subplots(1, len(threads), sharey=True, squeeze=False,
                             figsize=(4.5 * len(threads) + 2, 0.25 * len(labels) + 1.8))
    for ax, t in zip(axes[0], threads):
        mine = [r for r in data if r["threads"] == t]
        for lib, marker in ROOFLINE_LIBS:
            pts = [(r[f"{lib}_gflops"], labels.index(
                f"{r['case']} {r['pass']}" + (" f64" if r["dtype"] == "float64" else "")))
                for r in mine if r.get(f"{lib}_gflops")]
            if pts:
                ax.scatter(*zip(*pts), marker=marker, s=22, label=lib, alpha=0.85)
        for (pt, dtype), v in sorted(peaks.items()):
            if pt == t:
                ax.axvline(v, color="k", lw=1, ls="-" if dtype == "float32" else "--",
                           label=f"GEMM ceiling {dtype} ({v:.0f})")
        ax.set_xscale("log")
        ax.set_title(f"{t} thread{'s' if t > 1 else ''}", fontsize=9)
        ax.set_xlabel("GFLOP/s (log scale)")
        ax.grid(axis="x", lw=0.3)
        ax.legend(fontsize=7)
    axes[0][0].set_yticks(range(len(labels)))
    axes[0][0].set_yticklabels(labels, fontsize=7)
    axes[0][0].set_ylim(len(labels) - 0.5, -0.5)
    fig.suptitle(f"{title}\nceiling: np.matmul on {PEAK_GEMM_SIZE}x{PEAK_GEMM_SIZE} matrices at "
                 f"the thread count (measured by the deconv workers)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


#: the libs whose slowdown a ``--contended`` run reports
CONTENDED_LIBS = ("deconv",) + tuple(OPTIONAL_LIBS)


def contended_summary(idle_rows, busy_rows, libs):
    """Each lib's slowdown with one core kept busy: contended time / idle time per row.

    Returns
    -------
    list of dict
        ``case``, ``pass``, ``dtype``, ``threads`` and, per lib of
        :data:`CONTENDED_LIBS` timed in both runs, ``<lib>``: the slowdown
        (> 1: slower when contended), with ``<lib>_idle_ms``,
        ``<lib>_contended_ms``.
    """
    key = ("case", "pass", "dtype", "threads")
    busy = {tuple(r[k] for k in key): r for r in busy_rows}
    out = []
    for r in idle_rows:
        b = busy.get(tuple(r[k] for k in key))
        if b is None or r["sweep"]:
            continue
        rec = {k: r[k] for k in key}
        for lib in CONTENDED_LIBS:
            if lib in libs and r.get(f"{lib}_ms") and b.get(f"{lib}_ms"):
                rec[lib] = b[f"{lib}_ms"] / r[f"{lib}_ms"]
                rec[f"{lib}_idle_ms"], rec[f"{lib}_contended_ms"] = r[f"{lib}_ms"], b[f"{lib}_ms"]
        out.append(rec)
    return out


def contended_lines(contended, markdown=False):
    """The ``--contended`` table: idle and contended ms and the slowdown, per lib."""
    if not contended:
        return []
    slow = contended["slowdown"]
    libs = [lib for lib in CONTENDED_LIBS if any(lib in s for s in slow)]
    head = ["case", "pass", "dtype", "T"]
    for lib in libs:
        head += [f"{lib} idle ms", f"{lib} busy ms", f"{lib} slowdown"]
    body = []
    for s in slow:
        cells = [s["case"], s["pass"], {"float32": "f32", "float64": "f64"}[s["dtype"]],
                 str(s["threads"])]
        for lib in libs:
            cells += [_f(s.get(f"{lib}_idle_ms"), ".2f"), _f(s.get(f"{lib}_contended_ms"), ".2f"),
                      _f(s.get(lib), ".2f")]
        body.append(cells)
    if markdown:
        return (["| " + " | ".join(head) + " |",
                 "|" + "|".join("---" if i < 4 else "---:" for i in range(len(head))) + "|"]
                + ["| " + " | ".join(b) + " |" for b in body])
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h)
              for i, h in enumerate(head)]
    return ["  ".join(c.ljust(w) if i < 4 else c.rjust(w)
                      for i, (c, w) in enumerate(zip(line, widths))) for line in [head] + body]


def contended_heading(contended):
    """The sentence above the ``--contended`` table."""
    medians = []
    for lib in CONTENDED_LIBS:
        values = [s[lib] for s in contended["slowdown"] if lib in s]
        if values:
            medians.append(f"{lib} x{statistics.median(values):.2f}")
    return (f"Contended: the same rows timed again while a process spun on core "
            f"{contended['core']} (pinned with os.sched_setaffinity); slowdown = contended "
            f"time / idle time of the same row in this run (median over rows: "
            f"{', '.join(medians) or 'none measured'}).")


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
        for p in C.PASSES:
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
        if "xla_flags" in info:
            parts.append(f"XLA_FLAGS '{info['xla_flags']}', XLA pool on "
                         f"{info['xla_pool_cpus']} CPUs")
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
             f"{'deconv timed fwd/bwd s':>23s} {'naive check fwd/bwd s':>22s} "
             f"{'torch fwd/bwd s':>16s} {'jax fwd/bwd s':>14s}"]

    def timed(lib, key):
        return [res["cases"][key] for (_, name), runs in timing.items() if name == lib
                for res in runs if key in res["cases"] and "error" not in res["cases"][key]]

    def pair(rs):
        if not rs:
            return "-"
        return (f"{statistics.median(r['first_fwd_s'] for r in rs):.3f}/"
                f"{statistics.median(r['first_bwd_s'] for r in rs):.3f}")

    def checked(lib, key):
        chk = check_first.get(lib, {}).get(key)
        return f"{chk['fwd_s']:.3f}/{chk['bwd_s']:.3f}" if chk else "-"

    for c in cases:
        for dt in c["dtypes"]:
            key = f"{c['name']}|{dt}"
            lines.append(f"{c['name']:22s} {dt:7s} {checked('deconv', key):>23s} "
                         f"{pair(timed('deconv', key)):>23s} {checked('naive', key):>22s} "
                         f"{pair(timed('torch', key)):>16s} {pair(timed('jax', key)):>14s}")
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
             markdown_table(rows), ""] + table_notes(rows)
    for lib in ("naive", "scipy"):
        plan = meta.get(f"{lib}_plan") or {}
        if skipped_cases(plan):
            lines.append(skipped_line(lib, plan, meta["settings"][f"{lib}_cap_s"]))
    lines.append("")
    sw = sweep_lines(rows, markdown=True)
    if sw:
        lines += ["conv2d 64->64 k3 p1 sweep, float32 (batch at 32x32; image size at N=8):", ""]
        lines += sw + [""]
    if meta.get("startup"):
        lines += ["Start-up (new process): " + "; ".join(_startup_summary(meta["startup"])), ""]
    if meta.get("contended"):
        lines += [contended_heading(meta["contended"]), ""]
        lines += contended_lines(meta["contended"], markdown=True) + [""]
    lines += ["Targets:", ""]
    for name, (p, f, n) in target_summary(targets).items():
        lines.append(f"- {name}: {p} pass, {f} fail" + (f", {n} not evaluated" if n else ""))
    lines += ["", "```"] + target_lines(targets) + ["```", ""]
    return "\n".join(lines)


def skipped_cases(plan):
    """case -> predicted seconds of the cases a plan (see ``runner.budget_plan``) leaves out."""
    return {k: round(v["predicted_s"], 1) for k, v in plan.items() if not v["run"]}


def skipped_line(lib, plan, cap_s):
    """One sentence on the cases a slow lib was not timed on, with their predictions."""
    what = {"naive": "naive kernels", "scipy": "scipy reference"}[lib]
    return (f"{what} not timed where a forward+backward is predicted over {cap_s} s "
            f"(predicted s): {skipped_cases(plan)}")


# ---------------------------------------------------------------------------
# the machine's noise, the workers
# ---------------------------------------------------------------------------

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


def worker_summaries(timing):
    """Per worker: wall time, import time, machine load, threads and versions (no timings)."""
    out = {}
    for (threads, lib), runs in timing.items():
        out[f"{lib}|{threads}"] = [
            {k: res.get(k) for k in ("process_wall_s", "import_s", "busy_before_pct",
                                     "others_pct", "steal_pct", "attempts", "threads",
                                     "isa", "versions")} for res in runs]
    return out


def isa_lines(timing):
    """What instruction set each library's timing workers ran with (one line per lib)."""
    seen = {}
    for (threads, lib), runs in sorted(timing.items()):
        for res in runs:
            isa = res.get("isa") or {}
            if lib in ("deconv", "naive") and "numba" in isa:
                n = isa["numba"]
                text = n.get("error") or (f"Numba compiles for cpu {n['cpu_name']} with "
                                          f"{n['vector_isa']}" + (f"; deconv's plan: {n['tiles']}"
                                                                 if n.get("tiles") else ""))
            elif lib == "jax" and "jax" in isa:
                text = f"XLA CPU code generated up to {isa['jax']['xla_cpu_max_isa']}"
            elif lib == "torch" and "torch" in isa:
                t = isa["torch"]
                text = (f"ATen CPU capability {t['aten_cpu_capability']}, oneDNN ISA ceiling "
                        f"{t['onednn_max_cpu_isa']}")
            else:
                continue
            seen.setdefault(lib, set()).add(text)
    return [f"  {lib}: {' | '.join(sorted(texts))}" for lib, texts in seen.items()]


def print_report(r, cases, rows, timing, check_first, memory, startup, targets, wall, noise,
                 contended=None):
    """Everything measured, as text on the run's stream (``r.say``)."""
    r.say("\n=== Results: ms per call, median over rounds of each worker's median; ± = "
          "interquartile range within a worker; deconv/torch, deconv/jax = median of "
          "round-by-round ratios; GFLOP/s of deconv and its fraction of np.matmul on the same GEMM shapes")
    r.say(format_table(rows))
    r.say("\n".join(table_notes(rows)))
    errors = [(row["case"], row["dtype"], row["threads"], lib, e) for row in rows
              for lib, e in row["errors"].items()]
    for case, dt, t, lib, e in sorted(set(errors)):
        r.say(f"  ERROR {lib} {case} {dt} T={t}: {e}")
    sw = sweep_lines(rows)
    if sw:
        r.say("\n=== conv2d sweep (batch at 32x32; image size at N=8), float32")
        r.say("\n".join(sw))
    r.say("\n=== First calls (s): in the check worker (Numba compiles here when its cache is "
          "cold), in the timing workers (cache load), the naive kernels' in their check "
          "worker, PyTorch's, JAX's (jit compilation)")
    r.say("\n".join(_first_call_lines(cases, timing, check_first)))
    r.say("\n=== Threads seen by the workers")
    r.say("\n".join(_thread_lines(timing)))
    isa = isa_lines(timing)
    if isa:
        r.say("\n=== Instruction set the workers ran with")
        r.say("\n".join(isa))
    if contended:
        r.say("\n=== " + contended_heading(contended))
        r.say("\n".join(contended_lines(contended)))
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

