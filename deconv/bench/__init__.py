"""``deconv bench``: the benchmark suite (deconv against its peers, forward and backward).

Not loaded by ``import deconv`` (the package loads it on first use).

Modules
-------
========================  ====================================================
:mod:`.cases`             the case table, shapes, FLOP counts, inputs
:mod:`.peers`             each lib's implementation of a case, how it is loaded
:mod:`.worker`            a worker process: one job in, timings out (a script)
:mod:`.processes`         starting workers; the machine's load (parent side)
:mod:`.runner`            the parent: options, correctness check, plan, :func:`run`
:mod:`.targets`           the targets and their evaluation
:mod:`.report`            rows, tables, markdown, chart
========================  ====================================================

What runs
---------
Cases (:func:`deconv.bench.cases.build_cases`), each a forward and a
backward pass, in float32 (the first also in float64), at every thread count
asked for (default 1 and 2): six convolutions (conv2d 64->64 32x32 k3; conv2d
1->16 28x28 k5; depthwise conv2d; conv_transpose2d 16x16->32x32 k4 s2;
conv1d and conv_transpose1d 128->128 L=256 k5), six pooling-family ops on
N=32 C=64 32x32 (max_pool2d with indices, max_unpool2d, avg_pool2d, nearest
and bilinear x2 upsampling, pixel_shuffle x2), training steps (forward + L1
loss; backward + Adam step) of three networks (:mod:`deconv.bench.blocks`:
the super-resolution model, a DCGAN generator block ConvTranspose2d 256->128
k4 s2 -> BatchNorm2d -> ReLU on N=16 8x8, a U-Net block Conv2d 64->64 k3 ->
GroupNorm(8) -> ReLU on N=8 64x64), and a conv2d sweep over batch size and
over image size, 4 points each.

Peers, each in its own process (:mod:`deconv.bench.peers`):
``deconv`` (its tiled kernels); ``naive`` (the same functions under
``deconv.kernels.use("naive")``, conv cases only, timed where a predicted
call stays under a cap: what the tiles buy); ``torch`` (CPU, as installed,
default configuration; absent when ``--torch-python`` cannot import it);
``numpy`` (an im2col + matmul baseline of the conv ops, and the "limit":
``np.matmul`` on the conv's own GEMM shapes, i.e. the same FLOP count);
``scipy`` (:mod:`deconv.reference`, timed only where a predicted call stays
under a cap); ``jax`` (``jax.jit`` of ``jax.lax.conv_general_dilated``, the
transposed convs as its linear transpose, the backward as ``jax.vjp``'s
pullback; conv cases only; absent when JAX cannot be imported).

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
   large freed buffers in every worker (:data:`MALLOC_ENV`). A worker times
   each case's first forward and backward apart (Numba compilation or cache
   load; torch's initialisation), makes warm-up calls, then times repeats
   and reports medians. Before each worker the machine's CPU use is sampled
   and, if it is busy, the run waits a little; the CPU used by other
   processes during the worker is recorded, and in full mode a disturbed
   worker is re-run. The slow libs (reference, naive kernels) run in the
   first round only, with fewer repeats.
4. Memory: one warm call of each conv pass in a deconv worker, measured by
   tracemalloc, Numba's allocation counter and peak RSS growth.
5. Start-up: a copy of the package with its Numba cache cleared (cold) or
   kept (warm); a new process times ``import deconv`` + the first conv2d
   forward and backward, and (full mode) one call of every public op.

The parent reports, per case, pass, dtype and thread count, the median over
rounds of the per-worker medians, the naive time and the tiled/naive
speed-up, the deconv/torch ratio (median of the round-by-round ratios), the
NumPy baseline, GFLOP/s and the fraction of the matmul limit; it evaluates
the targets (:func:`evaluate_targets`) and writes ``results.json``,
``results.md``, ``ratios.png`` and ``roofline.png`` (GFLOP/s of every lib
on the conv rows against the machine's GEMM ceiling, measured by the deconv
workers). With ``contended=True`` the timing runs twice, the second time
with one core kept busy by a spinning process, and each library's slowdown
is reported.
"""

from .cases import SEED, make_inputs, write_inputs
from .peers import LIBS, OPTIONAL_LIBS
from .processes import (MALLOC_ENV, PACKAGE_DIR, WORKER_SCRIPT, Run, WorkerError, busy_core,
                        cpu_busy, loadavg, machine_info, peer_version, run_worker, torch_version,
                        worker_env, xla_flags)
from .report import (TABLE_COLUMNS, aggregate, contended_summary, format_table, markdown_table,
                     noise_line, noise_summary, results_markdown, sweep_lines, table_cells,
                     table_columns, target_lines, write_chart, write_roofline)
from .runner import (FULL, QUICK, TOLERANCE, BenchError, check_correctness, clear_numba_cache,
                     compare_outputs, default_out_dir, memory_all, resolve_settings, run,
                     select_cases, startup_all, time_all)
from .targets import TARGETS, evaluate_targets, target_summary

__all__ = [
    "BenchError", "FULL", "LIBS", "MALLOC_ENV", "OPTIONAL_LIBS", "PACKAGE_DIR", "QUICK", "Run",
    "SEED", "busy_core", "contended_summary", "peer_version", "table_columns", "write_roofline",
    "xla_flags",
    "TABLE_COLUMNS", "TARGETS", "TOLERANCE", "WORKER_SCRIPT", "WorkerError", "aggregate",
    "check_correctness", "clear_numba_cache", "compare_outputs", "cpu_busy", "default_out_dir",
    "evaluate_targets", "format_table", "loadavg", "machine_info", "make_inputs",
    "markdown_table", "memory_all", "noise_line", "noise_summary", "resolve_settings",
    "results_markdown", "run", "run_worker", "select_cases", "startup_all", "sweep_lines",
    "table_cells", "target_lines", "target_summary", "time_all", "torch_version", "worker_env", "write_chart",
    "write_inputs",
]
