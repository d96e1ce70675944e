# %% [markdown]
# # 7. From loops to registers
#
# For readers who come to benchmark kernels. One convolution layer (a batch of $N = 8$ images,
# 64 channels in and out, $32 \times 32$, kernel $3 \times 3$, padding 1: the `conv2d` case of
# `deconv bench` at a quarter of its batch) computed four ways, each timed here and placed on a
# **roofline** (Williams, Waterman & Patterson, 2009): GFLOP/s against this machine's measured
# multiply-add peak and memory bandwidth, arithmetic intensity on the $x$ axis.
#
# 1. the **naive** loop nest of `deconv.kernels.naive`, the formula written as loops;
# 2. a **vectorised loop** written here in Numba, the output row innermost, so that LLVM turns
#    the inner loop into vector instructions;
# 3. **im2col + matmul**: the window of every output unfolded into a column (`deconv.unfold`),
#    then one matrix product by NumPy's BLAS (Chellapilla, Puri & Simard, 2006);
# 4. the **register tile**, `deconv.conv2d`: no unfolding, accumulators held in vector
#    registers for the whole sum.
#
# Then three whys: why accumulators in registers matter (loads and stores per multiply-add,
# counted for each variant), why the strided and transposed convolutions are cut into *phase
# planes*, and why summing in blocks is also more *accurate* than one running sum.
#
# All timing numbers depend on the machine and on what else runs on it: the prose quotes none
# of them, the cells print them, and the only claims asserted about speed are robust ones
# (the tile is faster than the naive loop). Every other claim is an `assert` or a `compare`.

# %% [markdown]
# ## 0. Notation and set-up
#
# The letters of the whole series are stated in [NOTATION.md](NOTATION.md): $x$ of shape
# $(N, C_{in}, H, W)$, $w$ of shape $(C_{out}, C_{in}, k_H, k_W)$, $y$ of shape
# $(N, C_{out}, H_{out}, W_{out})$, taps $(\alpha, \beta)$, output pixels $(u, v)$, stride $s$,
# padding $p$. Two more: $K = C_{in} k_H k_W$, the length of one output's sum (its receptive
# field), and $P = H_{out} W_{out}$, the pixels of one output plane. A *multiply-add* is one
# term $w \cdot x$ added to a sum: 2 FLOPs. A fused multiply-add instruction (FMA) does one per
# vector lane, with one rounding.
#
# Everything runs on **one thread** (Numba's and BLAS's): the comparison is per core, and the
# machine is shared. `deconv bench` measures 1 and 2 threads in separate processes.

# %%
import inspect
import platform
import re
import time

import numba
import numpy as np
import matplotlib.pyplot as plt
from numba import njit
from threadpoolctl import threadpool_limits

import deconv
from deconv import reference, shapes
from deconv.bench.cases import conv_case, flops          # the bench's case table and FLOP count
from deconv.bench.processes import machine_info
from deconv.bench.worker import gemm_peak                # the bench's measured ceiling
from deconv.gradcheck import compare
from deconv.kernels import naive, plan

from exercise import check_exercise          # notebooks/exercise.py: marks the fill-in cells

numba.set_num_threads(1)
blas_one_thread = threadpool_limits(limits=1)             # held for the whole notebook
rng = np.random.default_rng(7)

info = machine_info()
print(f"{info['cpu']}, {info['cores']} cores, SIMD {', '.join(info.get('simd', []))}; "
      f"numpy {info['versions']['numpy']}, numba {info['versions']['numba']}; "
      f"Numba threads {numba.get_num_threads()}, BLAS limited to 1 thread")

# %% [markdown]
# ## 1. One layer, four ways
#
# The layer, and its work. The bench counts a convolution's FLOPs as those of the matrix
# product behind it (`deconv.bench.cases.flops`): $Y = W \cdot \mathrm{col}$, with $W$ of shape
# $(C_{out}, K)$ and $\mathrm{col}$ of shape $(K, N P)$, so $2\, C_{out} K N P$ FLOPs. The least
# memory traffic any implementation can have is reading $x$ and $w$ once and writing $y$ once;
# FLOPs over those bytes is the layer's **arithmetic intensity** $I$ (FLOP/byte).

# %%
N, C_IN, C_OUT, SIZE, KERNEL, PAD = 8, 64, 64, 32, 3, 1
x = rng.standard_normal((N, C_IN, SIZE, SIZE)).astype(np.float32)            # (N, C_in, H, W)
w = (rng.standard_normal((C_OUT, C_IN, KERNEL, KERNEL)) / np.sqrt(C_IN * KERNEL ** 2)
     ).astype(np.float32)                                                      # (C_out, C_in, kH, kW)
H_OUT = shapes.conv_output_size(SIZE, KERNEL, 1, PAD)
K = C_IN * KERNEL * KERNEL                                                     # one output's sum
LAYER_FLOPS = flops(conv_case("layer", "conv2d", N, C_IN, C_OUT, (SIZE, SIZE), KERNEL, padding=PAD), "fwd")
y_bytes = N * C_OUT * H_OUT * H_OUT * x.itemsize
LAYER_BYTES = x.nbytes + w.nbytes + y_bytes
INTENSITY = LAYER_FLOPS / LAYER_BYTES
assert LAYER_FLOPS == 2 * C_OUT * K * N * H_OUT * H_OUT
print(f"x {x.shape}, w {w.shape} -> y {(N, C_OUT, H_OUT, H_OUT)}, float32; K = {K} terms per output")
print(f"{LAYER_FLOPS / 1e6:.1f} MFLOP over {LAYER_BYTES / 1e6:.2f} MB read and written: "
      f"I = {INTENSITY:.0f} FLOP/byte")

# %% [markdown]
# **Timing protocol.** A Numba function compiles on its first call for each new type
# signature (or loads its compiled code from the cache on disk): that first call is timed
# apart, on a tiny input, and reported as "first call". Then one warm-up call on the layer
# (it touches the pages of fresh workspaces), then the median of a few timed calls. The naive
# loop takes long enough that it gets no warm-up and two timed calls.

# %%
def timed(call, tiny, layer, repeats, warmups=1):
    """call(*tiny) once (compilation or cache load), warmups + repeats calls on layer.

    Returns (seconds of the first call, median seconds on the layer, the layer's result).
    """
    start = time.perf_counter()
    call(*tiny)
    first = time.perf_counter() - start
    for _ in range(warmups):
        call(*layer)
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = call(*layer)
        seconds.append(time.perf_counter() - start)
    return first, float(np.median(seconds)), result


x_tiny = rng.standard_normal((1, 2, 5, 5)).astype(np.float32)                 # same dtype and rank:
w_tiny = rng.standard_normal((3, 2, KERNEL, KERNEL)).astype(np.float32)       # the same compiled code
TIMES = {}                                                                     # variant -> (first, median)
OUTPUTS = {}                                                                   # variant -> y

# %% [markdown]
# ### 1.1 The naive loop nest
#
# `deconv.kernels.naive.conv2d_forward` is the formula, one loop per letter (notebook 1 prints
# all of it). Its innermost loops, per output element: a scalar `acc`, and for every tap a
# bounds test, a load of $w$, a load of $x$, one multiply and one add. `with
# deconv.kernels.use("naive")` routes `deconv.conv2d` to it after the same validation.

# %%
source = inspect.getsource(naive.conv2d_forward).splitlines()
start = next(i for i, line in enumerate(source) if "acc = zero" in line)
print("\n".join(source[start:start + 13]))


def conv2d_naive(x, w):
    with deconv.kernels.use("naive"):
        return deconv.conv2d(x, w, padding=PAD)


*TIMES["naive loop nest"], OUTPUTS["naive loop nest"] = timed(
    conv2d_naive, (x_tiny, w_tiny), (x, w), repeats=2, warmups=0)

# %% [markdown]
# ### 1.2 A vectorised loop
#
# Reorder the loops so that the innermost one runs along an output row, $v$, with the tap
# fixed: `y[n, c_o, u, v] += w[c_o, c, α, β] * x_pad[n, c, u + α, v + β]` for
# $v = 0, \dots, W_{out} - 1$. The weight is one scalar for the whole row, the input and the
# output are contiguous runs, and consecutive $v$ are independent: LLVM compiles that loop to
# vector instructions, several $v$ per instruction. `fastmath={"contract"}` lets it fuse each
# multiply and add into one FMA (one rounding instead of two; nothing is reordered). The price:
# the sums live in `y`, in memory, so every multiply-add also loads and stores its accumulator.

# %%
@njit(fastmath={"contract"})
def conv2d_rows(x, w, padding):
    """x (N, C_in, H, W), w (C_out, C_in, kH, kW), stride 1 -> y (N, C_out, H_out, W_out)."""
    N, C_in, H, W = x.shape
    C_out, _, kH, kW = w.shape
    H_out, W_out = H + 2 * padding - kH + 1, W + 2 * padding - kW + 1
    x_pad = np.zeros((N, C_in, H + 2 * padding, W + 2 * padding), x.dtype)
    x_pad[:, :, padding:padding + H, padding:padding + W] = x
    y = np.zeros((N, C_out, H_out, W_out), x.dtype)
    for n in range(N):
        for co in range(C_out):
            for c in range(C_in):
                for alpha in range(kH):
                    for beta in range(kW):
                        tap = w[co, c, alpha, beta]
                        for u in range(H_out):
                            row_in = x_pad[n, c, u + alpha, beta:beta + W_out]   # (W_out,)
                            row_out = y[n, co, u]                                  # (W_out,)
                            for v in range(W_out):                                 # vectorised
                                row_out[v] += tap * row_in[v]
    return y


*TIMES["vectorised loop"], OUTPUTS["vectorised loop"] = timed(
    lambda x, w: conv2d_rows(x, w, PAD), (x_tiny, w_tiny), (x, w), repeats=3)

# %% [markdown]
# Did it vectorise? The machine code Numba generated says so: count its packed
# multiply-add instructions and the width of the registers they use (`xmm` 128 bits, `ymm`
# 256, `zmm` 512). The lanes of the widest one are the outputs one instruction computes.

# %%
assembly = conv2d_rows.inspect_asm(conv2d_rows.signatures[0])
packed = re.findall(r"\n\s+(vfmadd\w*ps|vmulps)\s+[^\n]*%([xyz]mm)", assembly)
REGISTER_BITS = {"xmm": 128, "ymm": 256, "zmm": 512}
ROW_LANES = max((REGISTER_BITS[reg] // 32 for _, reg in packed), default=1)
print(f"{platform.machine()}: {len(packed)} packed float32 multiply(-add) instructions, "
      f"{sorted(set(op for op, _ in packed))}; widest: {ROW_LANES} float32 lanes")
if platform.machine() in ("x86_64", "AMD64"):
    assert ROW_LANES >= 4, "the row loop did not vectorise"

# %% [markdown]
# ### 1.3 im2col + matmul
#
# Copy each output's window into a column: `deconv.unfold` (PyTorch's `unfold`) makes
# $\mathrm{col}$, shape $(N, K, P)$, row $(c, \alpha, \beta)$ and column $(u, v)$. Then the whole
# layer is the matrix product $W \cdot \mathrm{col}$, which BLAS runs in its own register tiles
# (Goto & van de Geijn, 2008). The price here is memory: $\mathrm{col}$ holds every input pixel
# $k_H k_W$ times, and is written, then read back.

# %%
def conv2d_im2col(x, w):
    N, C_out = x.shape[0], w.shape[0]
    col = deconv.unfold(x, w.shape[2:], padding=PAD)                           # (N, K, P)
    y = np.matmul(w.reshape(C_out, -1), col)                                   # (N, C_out, P)
    H_out = shapes.conv_output_size(x.shape[2], w.shape[2], 1, PAD)
    return y.reshape(N, C_out, H_out, -1)


*TIMES["im2col + matmul"], OUTPUTS["im2col + matmul"] = timed(
    conv2d_im2col, (x_tiny, w_tiny), (x, w), repeats=5)
COL_BYTES = N * K * H_OUT * H_OUT * x.itemsize
col = deconv.unfold(x, KERNEL, padding=PAD)                                    # (N, K, P)
_, unfold_seconds, _ = timed(lambda x: deconv.unfold(x, KERNEL, padding=PAD), (x_tiny,), (x,), repeats=5)
_, matmul_seconds, _ = timed(lambda col: np.matmul(w.reshape(C_OUT, -1), col), (col[:1, :, :4],), (col,),
                             repeats=5)
MATMUL_GFLOPS = LAYER_FLOPS / matmul_seconds / 1e9
print(f"col: {N} x {K} x {H_OUT * H_OUT} float32 = {COL_BYTES / 1e6:.1f} MB, "
      f"{COL_BYTES / x.nbytes:.0f} times the input")
print(f"apart: unfold {unfold_seconds * 1e3:.1f} ms, matmul {matmul_seconds * 1e3:.1f} ms "
      f"({MATMUL_GFLOPS:.1f} GFLOP/s); the copy is {unfold_seconds / (unfold_seconds + matmul_seconds):.0%} "
      f"of the two")

# %% [markdown]
# **Exercise E7.2.** Write im2col for one sample: `x` of shape $(C, H, W)$, a square kernel of
# size `k`, stride `s`, padding `p`; return `col` of shape $(C k^2, H_{out} W_{out})$, row
# $(c k + \alpha) k + \beta$ holding tap $(\alpha, \beta)$ of channel $c$ and column
# $u W_{out} + v$ the window of output $(u, v)$. Checked against `deconv.unfold` on integer
# inputs. (Solution: `im2col` in [solutions.py](solutions.py).)

# %%
def im2col(x, k, s, p):
    """x (C, H, W) -> col (C*k*k, H_out*W_out): the window of each output as a column."""
    return ...                                     # <- your code here


check_exercise("E7.2", im2col)

# %% [markdown]
# ### 1.4 The register tile
#
# `deconv.conv2d`. Its plan (`deconv.kernels.plan`) cuts the work into items of a few output
# rows; an item copies the input rows it needs into zero-padded planes (Section 3 says why
# *phase* planes), and a tile written in LLVM IR (`deconv.kernels.microkernel.register_tile`)
# computes $M_R$ output channels $\times$ $N_V$ vectors of consecutive outputs of a row. Its
# $M_R N_V$ vector accumulators stay in registers for the whole sum over the $K$ taps; per tap
# it loads $N_V$ vectors of input, broadcasts $M_R$ weights and issues $M_R N_V$ FMAs. The plan
# of this layer:

# %%
geometry = (1, 1, PAD, PAD, 1, 1)                                              # (sH, sW, pH, pW, dH, dW)
assert not plan.use_broadcast_forward(H_OUT, H_OUT, C_OUT, np.float32)         # the pixel tile runs
layer_plan = plan.forward_plan(N, w.shape, geometry, H_OUT, H_OUT, np.dtype(np.float32))
MR, NV = layer_plan.tile
TILE_LANES = layer_plan.lanes
print(f"tile: {MR} output channels x {NV} vectors of {TILE_LANES} float32 = {MR * NV} vector "
      f"accumulators, {MR * NV * TILE_LANES} outputs")
print(f"items of {layer_plan.rows} output rows; planes {layer_plan.Hq} x {layer_plan.Wq} per input "
      f"channel; {layer_plan.offs.size} tap offsets (= K), the first five {layer_plan.offs[:5].tolist()}")
assert layer_plan.offs.size == K

*TIMES["register tile"], OUTPUTS["register tile"] = timed(
    lambda x, w: deconv.conv2d(x, w, padding=PAD), (x_tiny, w_tiny), (x, w), repeats=5)

# %% [markdown]
# ### 1.5 Same answer, four speeds
#
# All four against the float64 scipy reference (`deconv.reference.conv2d`, one correlation per
# channel pair: slow, so on the first sample), and against each other on the whole batch. Each
# is a float32 sum of $K$ terms in its own order, so they agree to float32 rounding, not bit for
# bit.

# %%
expected = reference.conv2d(x[:1].astype(np.float64), w.astype(np.float64), padding=PAD)
for name, y in OUTPUTS.items():
    assert y.dtype == np.float32 and y.shape == (N, C_OUT, H_OUT, H_OUT)
    compare(f"{name:16s} vs scipy reference, sample 0", y[:1], expected, rtol=1e-4, atol=1e-5)
for name, y in OUTPUTS.items():
    if name != "naive loop nest":
        compare(f"{name:16s} vs naive loop, all {N} samples", y, OUTPUTS["naive loop nest"],
                rtol=1e-4, atol=1e-5)

GFLOPS = {name: LAYER_FLOPS / median / 1e9 for name, (first, median) in TIMES.items()}
print(f"\n{'variant':18s} {'first call':>11s} {'median':>10s} {'GFLOP/s':>8s} {'vs naive':>9s}")
for name, (first, median) in TIMES.items():
    print(f"{name:18s} {first:9.2f} s {median * 1e3:7.1f} ms {GFLOPS[name]:8.2f} "
          f"{TIMES['naive loop nest'][1] / median:8.0f}x")
assert TIMES["register tile"][1] < TIMES["vectorised loop"][1] < TIMES["naive loop nest"][1]
assert TIMES["register tile"][1] < TIMES["im2col + matmul"][1]

# %% [markdown]
# ### 1.6 The roofline
#
# Two ceilings bound what a kernel can reach. The **FMA peak**: a loop that is nothing but
# independent multiply-adds, `fma_probe` below: 256 float32 accumulators, each updated as
# `acc = acc * a + b` $n$ times. The chains are independent, so LLVM vectorises the inner loop
# and the core can overlap them (its machine code is counted below); one chain alone would wait
# for each FMA's result. The **memory bandwidth**: the rate of a copy of a 256 MB array (bytes
# read plus bytes written, over the time), far larger than a core's caches. A kernel of
# intensity $I$ FLOP/byte can reach at most $\min(\text{peak},\ I \times \text{bandwidth})$: the
# roof. Left of the ridge $I = \text{peak}/\text{bandwidth}$ memory bounds it, right of it
# arithmetic does. For comparison, the figure also draws the ceiling `deconv bench` draws on its
# own roofline, `deconv.bench.worker.gemm_peak`: the rate of `np.matmul` on $1024 \times 1024$
# float32 matrices, the best a BLAS call reaches (on one thread here).
#
# Where each variant sits on the $x$ axis is the intensity of the traffic it *must* have: the
# layer's own bytes for the three that read $x$ and write $y$ once, and, for im2col, those plus
# writing and reading back $\mathrm{col}$.

# %%
def copy_bandwidth(megabytes=256, repeats=3):
    """GB/s of np.copyto between two arrays of `megabytes`, best of `repeats` (read + write)."""
    source = np.ones(megabytes * 2 ** 20 // 4, np.float32)
    target = np.empty_like(source)
    best = np.inf
    for _ in range(repeats + 1):                       # the first touches target's pages
        start = time.perf_counter()
        np.copyto(target, source)
        best = min(best, time.perf_counter() - start)
    return 2 * source.nbytes / best / 1e9


@njit(fastmath={"contract"})
def fma_probe(n, a, b):
    """256 independent chains acc[j] = acc[j] * a + b, n steps each: 2 * 256 * n FLOPs."""
    acc = np.zeros(256, np.float32)
    for _ in range(n):
        for j in range(256):
            acc[j] = acc[j] * a + b
    return acc


def fma_peak(n=40_000, repeats=3):
    """GFLOP/s of fma_probe, best of `repeats` (after the call that compiles it)."""
    a, b = np.float32(0.5), np.float32(1.0)                         # acc converges to 2: no overflow
    fma_probe(1, a, b)
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fma_probe(n, a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * 256 * n / best / 1e9


PEAK = fma_peak()
probe_fmas = re.findall(r"\n\s+(vfmadd\w*ps)\s+[^\n]*%([xyz]mm)", fma_probe.inspect_asm(fma_probe.signatures[0]))
GEMM_PEAK = gemm_peak(np.float32)
BANDWIDTH = copy_bandwidth()
RIDGE = PEAK / BANDWIDTH
print(f"fma_probe: {len(probe_fmas)} vector FMA instructions in its machine code "
      f"({', '.join(sorted(set(reg for _, reg in probe_fmas)))}); BLAS GEMM ceiling {GEMM_PEAK:.1f} GFLOP/s")
INTENSITIES = {name: INTENSITY for name in TIMES}
INTENSITIES["im2col + matmul"] = LAYER_FLOPS / (LAYER_BYTES + 2 * COL_BYTES)
print(f"measured FMA peak {PEAK:.1f} GFLOP/s (1 thread), copy bandwidth {BANDWIDTH:.1f} GB/s: "
      f"ridge at {RIDGE:.1f} FLOP/byte")
for name in TIMES:
    roof = min(PEAK, INTENSITIES[name] * BANDWIDTH)
    side = "right" if INTENSITIES[name] > RIDGE else "left"
    print(f"{name:18s} I = {INTENSITIES[name]:6.1f} FLOP/byte ({side} of the ridge), roof {roof:6.1f} "
          f"GFLOP/s, reached {GFLOPS[name]:6.2f} = {GFLOPS[name] / roof:6.1%} of it")
print(f"im2col's matmul alone: {MATMUL_GFLOPS / PEAK:.0%} of the peak")

fig, ax = plt.subplots(figsize=(7.5, 4.6))
grid = np.logspace(-1, 3, 200)
ax.plot(grid, np.minimum(PEAK, grid * BANDWIDTH), "k-", lw=2)
ax.axvline(RIDGE, color="0.6", ls=":", lw=1)
ax.text(RIDGE * 1.1, PEAK * 0.02, f"ridge\n{RIDGE:.1f} FLOP/B", fontsize=8, color="0.4")
ax.text(0.12, 0.12 * BANDWIDTH * 1.25, f"{BANDWIDTH:.1f} GB/s copy", rotation=33, fontsize=8)
ax.text(300, PEAK * 1.08, f"FMA peak {PEAK:.0f} GFLOP/s", ha="right", fontsize=8)
ax.axhline(GEMM_PEAK, color="0.5", ls="--", lw=1)
ax.text(0.12, GEMM_PEAK * 1.06, f"np.matmul 1024² (the bench's ceiling) {GEMM_PEAK:.0f}", fontsize=7,
        color="0.4")
markers = dict(zip(TIMES, ["v", "^", "s", "o"]))
for name in TIMES:
    ax.plot(INTENSITIES[name], GFLOPS[name], markers[name], ms=9, label=f"{name}: {GFLOPS[name]:.1f} GFLOP/s")
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlim(0.1, 1000)
ax.set_ylim(min(GFLOPS.values()) / 3, PEAK * 2)
ax.set_xlabel("arithmetic intensity (FLOP per byte of compulsory traffic)")
ax.set_ylabel("GFLOP/s")
ax.set_title(f"conv2d {N}x{C_IN}x{SIZE}x{SIZE}, {C_OUT} filters 3x3, float32, 1 thread", fontsize=10)
ax.legend(fontsize=8, loc="lower left", bbox_to_anchor=(0.2, 0.02))
ax.grid(which="both", lw=0.3)
plt.tight_layout()
plt.show()
assert INTENSITIES["im2col + matmul"] < INTENSITY and INTENSITY > 2 * RIDGE

# %% [markdown]
# Read the figure vertically. The three direct variants have the same intensity, far right of
# the ridge (the cell prints where the ridge falls on this machine): memory is not what holds
# the naive loop or the row loop down, and no amount of bandwidth would lift them. What
# separates them is how many instructions each multiply-add costs inside the core, which the
# roofline of compulsory traffic does not see: Section 2 counts them. im2col moves left, toward
# the ridge (its column matrix multiplies the traffic; the cell prints on which side it lands);
# its time splits between the copy into $\mathrm{col}$ and the matrix product (both printed in
# Section 1.3, and the product's share of the peak above). The register tile is compared with
# the FMA peak, not with BLAS: it can pass the bench's GEMM ceiling (the cell prints both). On a
# shared machine every number here is a sample of a moving target: a median of a few calls can
# land above a peak measured a moment earlier. And the probe is itself a compiled loop: its FMAs
# have the vector width printed above (LLVM prefers 256-bit vectors on recent Intel cores, while
# the tile's IR asks for 512-bit ones), so on a core that retires more FLOPs per cycle with
# 512-bit FMAs the true peak is higher: read it as a measured lower bound.
#
# **Exercise E7.1.** Write the arithmetic intensity of a conv2d forward without bias: $x$ of
# shape $(N, C_{in}, H, W)$, a square kernel of size $k$, stride $s$, padding $p$, $C_{out}$
# filters, elements of `itemsize` bytes; FLOPs as above (two per multiply-add), bytes those of
# $x$, $w$ and $y$, each moved once. Checked against the bench's FLOP count and its case shapes.
# (Solution: `conv_arithmetic_intensity` in [solutions.py](solutions.py).)

# %%
def conv_arithmetic_intensity(N, C_in, C_out, H, W, k, s, p, itemsize):
    """FLOPs of a conv2d forward over the bytes of x, w and y."""
    return ...                                     # <- your formula here


check_exercise("E7.1", conv_arithmetic_intensity)

# %% [markdown]
# ## 2. Why accumulators in registers matter
#
# A core issues a few loads and stores per cycle and one or two vector FMAs; a kernel runs at
# its peak only if each FMA needs few memory instructions. Count them in each inner loop, per
# multiply-add (a vector instruction counts once, whatever its lanes):
#
# * **naive**: the sum `acc` is a scalar register, but each term loads $w$ and $x$ (2 scalar
#   loads), tests the bounds, then multiplies and adds in scalar instructions: one lane of the
#   vector unit in use. The store is once per $K$ terms.
# * **vectorised loop**: one vector load of $x$, one vector load *and one vector store of the
#   accumulators* in `y`, per vector FMA. Numba keeps `y` in memory because it is memory: the
#   next tap adds into the same row, after a full pass over it.
# * **register tile**: per tap, $N_V$ vector loads and $M_R$ broadcasts feed $M_R N_V$ vector
#   FMAs; the accumulators are stored once, after all $K$ taps.
#
# The table computes these from the tile of the plan and the lanes found in the row loop's
# machine code, per multiply-add, and the bytes each moves between the cache and the registers
# per FLOP (the intensity the core itself sees).

# %%
counts = {   # variant -> (loads, stores, multiply-adds) of one step of its inner loop
    "naive loop nest": (2, 1 / K, 1),
    "vectorised loop": (2, 1, ROW_LANES),
    "register tile": (NV + MR, MR * NV / K, MR * NV * TILE_LANES),
}
bytes_moved = {   # bytes loaded or stored per step
    "naive loop nest": 2 * 4 + 4 / K,
    "vectorised loop": 3 * ROW_LANES * 4,
    "register tile": NV * TILE_LANES * 4 + MR * 4 + MR * NV * TILE_LANES * 4 / K,
}
print(f"{'variant':18s} {'loads/MAC':>10s} {'stores/MAC':>11s} {'MAC/memory op':>14s} "
      f"{'FLOP/byte L1':>13s} {'GFLOP/s':>8s}")
memory_ops = {}
for name, (loads, stores, macs) in counts.items():
    memory_ops[name] = (loads + stores) / macs
    print(f"{name:18s} {loads / macs:10.4f} {stores / macs:11.5f} {1 / memory_ops[name]:14.1f} "
          f"{2 * macs / bytes_moved[name]:13.2f} {GFLOPS[name]:8.2f}")
assert memory_ops["register tile"] < memory_ops["vectorised loop"] < memory_ops["naive loop nest"]
flop_per_byte = {name: 2 * counts[name][2] / bytes_moved[name] for name in counts}
assert min(flop_per_byte, key=flop_per_byte.get) == "vectorised loop"

# %% [markdown]
# The tile does many times more multiply-adds per memory instruction than the row loop, which
# does more than the naive loop (asserted above), and the measured speeds keep that order
# (asserted in Section 1.5). The row loop also moves the most bytes per FLOP of the three (its
# accumulators go to memory and back at every tap; asserted below), which is why vectorising
# alone does not reach the peak:
# Numba writes a Python loop's sums to memory whenever they are array elements, and keeping
# $M_R N_V$ of them in registers across an unknown number of taps is what the LLVM IR of
# `register_tile` spells out (its accumulators are *phi nodes* of the tap loop). The tile's
# shape is a budget: $M_R N_V$ accumulators, $N_V$ input vectors and a broadcast must fit in
# the 32 vector registers of AVX-512, and the loads per FMA, $(M_R + N_V)/(M_R N_V)$, fall as
# the tile grows square.

# %%
registers = MR * NV + NV + 1
print(f"{MR} x {NV} tile: {registers} of 32 vector registers; (MR + NV)/(MR NV) = {(MR + NV) / (MR * NV):.3f} "
      f"loads per vector FMA")
assert registers <= 32

# %% [markdown]
# ## 3. Why phase planes
#
# A stride-$s$ transposed convolution (and the input gradient of a stride-$s$ convolution,
# which is the same operation) writes input pixel $h$ through tap $\alpha$ to output
# $u = h s - p + \alpha$. Written as a convolution, it is the zero-insertion form of notebook 3:
# $s - 1$ zeros between input pixels, then a dense convolution, in which most products
# multiply an inserted zero. Split the outputs instead by their **phase** $\rho = (u + p) \bmod
# s$: output $u = s m + \rho - p$ receives exactly the taps $\alpha \equiv \rho \pmod s$,
# $\alpha = \rho + s t$, from input $h = m - t$:
#
# $$ y[s m + \rho - p] \;=\; \sum_t x[m - t]\, w[\rho + s t], $$
#
# a dense, stride-1 (true) convolution of $x$ with the **sub-kernel** $w[\rho::s]$. In 2-D there
# are $s^2$ phases $(\rho_H, \rho_W)$, each a stride-1 convolution with sub-kernel
# $w[\rho_H::s, \rho_W::s]$; their outputs interleave into $y$ (Shi et al., 2016: the sub-pixel
# view). No product touches an inserted zero. `deconv` runs the input gradient this way, one
# register-tiled pass per phase, and the forward's phase planes are the same split applied to
# the input of a strided convolution: every tap then reads a contiguous run of one plane.
#
# The hand example of notebooks 1-3 (a $3\times 3$ integer input) through a transposed
# convolution with $k = 4$, $s = 2$, $p = 1$ (the usual $\times 2$ upsampling layer), the kernel's
# values its tap numbers $1 + 4\alpha + \beta$:

# %%
X_HAND = np.array([[1., 2., 1.],
                   [3., 1., 2.],
                   [2., 1., 3.]])                                 # (H, W) = (3, 3)
k, s, p = 4, 2, 1
W_TAPS = np.arange(1., k * k + 1).reshape(k, k)                   # w[alpha, beta] = 1 + 4 alpha + beta
y_direct = deconv.conv_transpose2d(X_HAND[None, None], W_TAPS[None, None], stride=s, padding=p)[0, 0]
o = y_direct.shape[0]
assert o == shapes.conv_transpose_output_size(3, k, s, p)

y_phases = np.full((o, o), np.nan)
for rho_h in range(s):
    for rho_w in range(s):
        sub = W_TAPS[rho_h::s, rho_w::s]                          # taps alpha = rho + s t
        k_h, k_w = sub.shape
        # a true convolution is a correlation with the flipped kernel, padded to full size
        full = deconv.conv2d(X_HAND[None, None], sub[::-1, ::-1][None, None],
                             padding=(k_h - 1, k_w - 1))[0, 0]    # m = 0 .. i + k_rho - 2
        u0, v0 = (rho_h - p) % s, (rho_w - p) % s                 # first output of the phase
        m0, n0 = (u0 + p - rho_h) // s, (v0 + p - rho_w) // s     # its m
        rows, cols = len(range(u0, o, s)), len(range(v0, o, s))
        y_phases[u0::s, v0::s] = full[m0:m0 + rows, n0:n0 + cols]
        print(f"phase ({rho_h},{rho_w}): outputs from ({u0},{v0}) in steps of {s}, sub-kernel "
              f"{sub.astype(int).tolist()}\n{y_phases[u0::s, v0::s].astype(int)}")
print(f"\ninterleaved, {o}x{o}:\n{y_phases.astype(int)}")
compare("s^2 stride-1 phase convolutions vs conv_transpose2d", y_phases, y_direct, rtol=0, atol=0)

# %% [markdown]
# The package's own plan of that split, along one axis: `deconv.kernels.plan.phase_taps(k, s,
# p, d, size)` lists, per phase, the first output position, how many there are, and the taps
# (in reverse, the order of the correlation). They are the phases and sub-kernels above. And
# the work: the zero-insertion form computes $k^2$ products per output, the phase form
# $\lceil k/s \rceil^2$ per output here.

# %%
for phase in plan.phase_taps(k, s, p, 1, o):
    rho = (phase.first + p) % s
    assert phase.taps[::-1] == tuple(range(rho, k, s)), phase
    assert phase.count == len(range(phase.first, o, s))
    print(phase)

stretched = np.zeros(((3 - 1) * s + 1,) * 2)
stretched[::s, ::s] = 1                                            # 1 where an input pixel sits
canvas = np.pad(stretched, k - 1 - p)                              # p' = k - 1 - p
windows = np.lib.stride_tricks.sliding_window_view(canvas, (k, k))[:o, :o]
products_zero_insertion = o * o * k * k
useful = int(windows.sum())
products_phases = sum(len(range((rh - p) % s, o, s)) * len(range((rw - p) % s, o, s))
                      * len(range(rh, k, s)) * len(range(rw, k, s)) for rh in range(s) for rw in range(s))
print(f"zero insertion: {products_zero_insertion} products, {useful} of them with an input pixel; "
      f"phases: {products_phases} products ({products_phases / products_zero_insertion:.0%})")
assert products_phases == products_zero_insertion // s ** 2 and useful <= products_phases

fig, axes = plt.subplots(1, 2, figsize=(8, 3.6))
phase_id = ((np.arange(o)[:, None] + p) % s) * s + (np.arange(o)[None, :] + p) % s
axes[0].imshow(phase_id, cmap="Pastel1", vmin=0, vmax=8)
for (u, v), value in np.ndenumerate(y_direct):
    axes[0].text(v, u, f"{value:.0f}", ha="center", va="center", fontsize=9)
axes[0].set_title("y = conv_transpose2d(x, w), s=2:\ncolour = phase (ρ_H, ρ_W)", fontsize=9)
axes[1].imshow(canvas, cmap="Blues", vmin=0, vmax=2)
axes[1].add_patch(plt.Rectangle((-0.5 + 1, -0.5 + 1), k, k, fill=False, ec="crimson", lw=2))
axes[1].set_title(f"zero-insertion canvas ({canvas.shape[0]}x{canvas.shape[1]}): blue = input pixel;\n"
                  f"a {k}x{k} window meets {int(windows[1, 1].sum())} of them", fontsize=9)
for ax in axes:
    ax.set_xticks([])
    ax.set_yticks([])
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 4. Why blocked accumulation is also more accurate
#
# Adding $n$ float32 numbers one after another, each addition rounds with a relative error of
# at most $u = 2^{-24}$, and the error of the partial sum is carried into every later one: the
# error bound of the running sum is $(n - 1)\,u \sum |p_j|$ (Higham, 1993). Sum in blocks of $b$
# first, then add the $n/b$ block sums, and no term passes through more than $b - 1 + n/b - 1$
# roundings: the bound becomes $(b + n/b - 2)\,u \sum |p_j|$ (Blanchard, Higham & Mary, 2020);
# pairwise summation (NumPy's `np.sum`: blocks of at most 128 terms, each in 8 interleaved
# partial sums, the blocks added as a tree) has about $\log_2 n$. Those bounds hold for any terms. The *typical* error of terms of random sign, as in a
# convolution, is smaller: the partial sum after $j$ terms is of size $\sigma\sqrt j$, its
# rounding error of size $u\sigma\sqrt j$, and the errors, of random sign too, add like a random
# walk, to $\approx u\sigma\sqrt{\sum_j j} \approx u \sigma n/\sqrt 2$. Against the size of the
# result, $\sigma\sqrt n \approx (\sum p_j^2)^{1/2}$, the running sum's error grows as
# $u\sqrt{n}$, the blocked sum's as $u\sqrt{b + n/b}$ (the same count, blocks then block
# sums), the pairwise sum's more slowly still.
#
# The forward tile sums each output's $K$ terms ($K = C_{in} k_H k_W$) in blocks of
# `plan.K_BLOCK` taps: each block from 0 in registers, then added to the output. The
# weight-gradient tile sums in blocks without being asked to: each of its
# vector accumulators is a set of lanes that each sum every 16th term, and `deconv` adds the
# partial gradients of batch chunks at the end. First the sums alone: float32 dot products of $n$ random terms (the $K = 9216$ of a 1024-channel
# $3\times 3$ layer among them), each summed three ways, against the exact sum of the same float32
# products in float64, the error measured in units of $u\,(\sum p_j^2)^{1/2}$.

# %%
@njit
def running_sums(products):
    """products (T, n) float32 -> (T,) float32: one running sum per row, left to right."""
    T, n = products.shape
    out = np.empty(T, np.float32)
    for t in range(T):
        acc = np.float32(0)
        for j in range(n):
            acc += products[t, j]
        out[t] = acc
    return out


@njit
def blocked_sums(products, block):
    """products (T, n) float32 -> (T,) float32: running sums of blocks, then of the block sums."""
    T, n = products.shape
    out = np.empty(T, np.float32)
    for t in range(T):
        total = np.float32(0)
        for j0 in range(0, n, block):
            partial = np.float32(0)
            for j in range(j0, min(j0 + block, n)):
                partial += products[t, j]
            total += partial
        out[t] = total
    return out


BLOCK, TRIALS, U = 64, 200, 2.0 ** -24
SIZES = [576, 2304, 9216, 36864]
errors = {"running sum": [], f"blocks of {BLOCK}": [], "pairwise (np.sum)": []}
for n in SIZES:
    a = rng.standard_normal((TRIALS, n)).astype(np.float32)
    b = rng.standard_normal((TRIALS, n)).astype(np.float32)
    products = a * b                                              # (T, n) float32, rounded once
    exact = products.astype(np.float64).sum(axis=1)               # float64: exact to ~1e-12
    scale = np.sqrt((products.astype(np.float64) ** 2).sum(axis=1))  # (sum p_j^2)^(1/2)
    for name, sums in zip(errors, [running_sums(products), blocked_sums(products, BLOCK),
                                   products.sum(axis=1)]):
        errors[name].append(np.median(np.abs(sums - exact) / scale))
errors = {name: np.array(values) for name, values in errors.items()}
at = SIZES.index(9216)
for name, values in errors.items():
    print(f"{name:18s} median |error| / (u (sum p^2)^1/2), n = {', '.join(map(str, SIZES))}: "
          + ", ".join(f"{e / U:6.2f}" for e in values))
gain = errors["running sum"][at] / errors[f"blocks of {BLOCK}"][at]
print(f"n = 9216: blocks of {BLOCK} are {gain:.1f}x more accurate than the running sum; "
      f"bounds {9216 - 1} u against {BLOCK + 9216 // BLOCK - 2} u, square roots "
      f"{np.sqrt(9215 / (BLOCK + 9216 // BLOCK - 2)):.1f}x apart")
assert errors["running sum"][at] > errors[f"blocks of {BLOCK}"][at]
assert errors["running sum"][-1] > errors["running sum"][0]              # grows with n

fig, ax = plt.subplots(figsize=(6.5, 4))
n_grid = np.array(SIZES, float)
for (name, values), marker in zip(errors.items(), "osD"):
    ax.loglog(n_grid, values / U, marker + "-", label=name)
first = {name: values[0] / U for name, values in errors.items()}         # guides through n = 576
ax.loglog(n_grid, first["running sum"] * np.sqrt(n_grid / SIZES[0]), "k:", lw=1, label=r"$\propto \sqrt{n}$")
ax.loglog(n_grid, first[f"blocks of {BLOCK}"] * np.sqrt((BLOCK + n_grid / BLOCK) / (BLOCK + SIZES[0] / BLOCK)),
          "k--", lw=1, label=r"$\propto \sqrt{b + n/b}$")
ax.set_xlabel("terms n")
ax.set_ylabel(r"median |error| / $(u \sqrt{\Sigma p^2})$")
ax.set_title(f"float32 sums of n products, {TRIALS} trials each", fontsize=10)
ax.legend(fontsize=8)
ax.grid(which="both", lw=0.3)
plt.tight_layout()
plt.show()

# %% [markdown]
# The same on `deconv` itself. The weight gradient sums, for each tap, over every pixel of every
# sample: $N H_{out} W_{out}$ terms. The naive kernel does it in one running sum per tap; the
# tiled kernel (`register_tile_reduce`, a tile of `REDUCE_TILE` output channels $\times$ taps)
# keeps one vector of partial sums per (channel, tap), each lane summing every 16th pixel of a
# row, reduces the lanes at the end, and adds the partial gradients of its batch chunks in
# order. Here $N H_{out} W_{out} = 4 \cdot 48 \cdot 48 = 9216$ terms per entry. Against the float64
# scipy reference, with $(\sum p^2)^{1/2}$ per entry from the (float64) weight gradient of
# $\bar y^2$ and $x^2$, the sum of the squared terms of each entry:

# %%
xg = rng.standard_normal((4, 4, 48, 48)).astype(np.float32)                    # (N, C_in, H, W)
wg = rng.standard_normal((8, 4, 3, 3)).astype(np.float32)                      # (C_out, C_in, kH, kW)
dy = rng.standard_normal((4, 8, 48, 48)).astype(np.float32)                    # (N, C_out, H_out, W_out)
assert not plan.use_broadcast_reduce(48, 48, 8, np.float32)                    # the tile above runs
grad_tiled = deconv.conv2d_backward(dy, xg, wg, padding=1, input_grad=False)[1]
with deconv.kernels.use("naive"):
    grad_naive = deconv.conv2d_backward(dy, xg, wg, padding=1, input_grad=False)[1]
grad_exact = reference.conv2d_backward(dy.astype(np.float64), xg.astype(np.float64),
                                       wg.astype(np.float64), padding=1)[1]
grad_scale = np.sqrt(deconv.conv2d_backward(dy.astype(np.float64) ** 2, xg.astype(np.float64) ** 2,
                                            wg.astype(np.float64), padding=1, input_grad=False)[1])
terms = 4 * 48 * 48
assert terms == 9216
relative = {name: np.abs(g - grad_exact) / grad_scale for name, g in
            [("naive, one running sum", grad_naive), ("register tile, lanes + chunks", grad_tiled)]}
print(f"{plan.REDUCE_TILE}; each of the {grad_exact.size} weight-gradient entries sums {terms} terms")
for name, r in relative.items():
    print(f"{name:30s} median {np.median(r) / U:6.2f}, max {r.max() / U:6.2f}, in units of u (sum p^2)^1/2")
WGRAD_GAIN = np.median(relative["naive, one running sum"]) / np.median(relative["register tile, lanes + chunks"])
print(f"the tile's weight gradient is {WGRAD_GAIN:.1f}x more accurate (medians)")
assert WGRAD_GAIN > 1

# %% [markdown]
# **Exercise E7.3.** Write the sum a vector accumulator of `lanes` lanes computes: lane $j$ sums
# `values[j]`, `values[j + lanes]`, ... from left to right in float32, then the lanes are added
# from lane 0 to lane `lanes - 1`, in float32. `values` is a float32 array of any length (a
# lane whose terms run out simply stops). Return a float32 scalar. The check demands the exact
# float32 result, so the order matters: a Python loop, or `np.cumsum` (which adds strictly left
# to right), not `np.sum` (pairwise). A FAIL whose two numbers look equal to four digits means
# the right terms in another order. (Solution: `lane_sum` in [solutions.py](solutions.py).)

# %%
def lane_sum(values, lanes):
    """values (n,) float32 -> float32: lane j sums values[j::lanes] in order, then the lanes in order."""
    return ...                                     # <- your code here


check_exercise("E7.3", lane_sum)

# %% [markdown]
# ## What we found
#
# The numbers, gathered from the cells above:

# %%
print(f"layer: {LAYER_FLOPS / 1e6:.0f} MFLOP, I = {INTENSITY:.0f} FLOP/byte; machine: peak {PEAK:.1f} GFLOP/s, "
      f"copy {BANDWIDTH:.1f} GB/s, ridge {RIDGE:.1f} FLOP/byte; BLAS GEMM {GEMM_PEAK:.1f} GFLOP/s "
      f"(1 thread, shared machine)")
for name in TIMES:
    print(f"  {name:18s} {GFLOPS[name]:7.2f} GFLOP/s = {GFLOPS[name] / PEAK:6.1%} of the peak, "
          f"{TIMES['naive loop nest'][1] / TIMES[name][1]:5.0f}x the naive loop; first call {TIMES[name][0]:.2f} s")
print(f"phase planes: {products_phases} products instead of {products_zero_insertion}; "
      f"blocks of {BLOCK}: {gain:.1f}x more accurate at n = 9216; tiled weight gradient {WGRAD_GAIN:.1f}x")
assert GFLOPS["register tile"] > 5 * GFLOPS["naive loop nest"]

# %% [markdown]
# * All four variants compute the layer to float32 rounding of the float64 scipy reference;
#   the register tile is the fastest and the naive loop the slowest (asserted; the factors
#   are printed just above and in Section 1.5).
# * On a roofline of compulsory traffic the layer sits far right of the ridge: it is
#   compute-bound, and the gaps between the variants are not memory but instructions: loads and
#   stores per multiply-add (Section 2). Vectorising a loop multiplies the lanes but keeps the
#   accumulators in memory; a register tile keeps them in registers and needs a fraction of a
#   load per FMA. im2col lowers the intensity and buys BLAS's register tiles with a copy.
# * A stride-$s$ transposed convolution is $s^2$ dense stride-1 convolutions with sub-kernels
#   $w[\rho_H::s, \rho_W::s]$, interleaved (checked exactly on the hand example); it computes
#   $1/s^2$ of the products of the zero-insertion form.
# * Summing in blocks lowers the float32 error, as the bounds $(n-1)u$ against $(b + n/b - 2)u$
#   predict; `deconv`'s weight-gradient tile, whose lanes and batch chunks are such blocks, is
#   more accurate than the naive kernel's running sum (both measured and printed above).

# %% [markdown]
# ## Problems
#
# 1. With the formula of E7.1, find the intensity of this layer's *weight gradient* and of a
#    depthwise $3 \times 3$ convolution of the same input (`groups = 64`, one filter per
#    channel). Which side of this machine's ridge does the depthwise one fall on, and what does
#    that predict for its GFLOP/s?
# 2. The tile is $M_R \times N_V = 8 \times 2$. List the shapes with $M_R N_V + N_V + 1 \le 32$
#    registers; which minimises loads per FMA, $(M_R + N_V)/(M_R N_V)$? Why might a tile with
#    $N_V = 2$ (32 consecutive outputs) still be preferred for rows of 32? (Look at
#    `plan.pixel_tile_use` for rows of 48.)
# 3. For a transposed convolution with $k = 3$, $s = 2$, $p = 1$, give the sub-kernel sizes of
#    the four phases and the fraction of the zero-insertion form's products the phases compute;
#    then print `plan.phase_taps(3, 2, 1, 2, 8)` (dilation 2) and explain why only one phase
#    appears.
# 4. Minimise the blocked-sum bound $b + n/b - 2$ over $b$ for $n = 9216$. Rerun Section 4 with
#    that $b$ and with $b = 16$; does the measured error follow the bound's square root?
# 5. Rerun Section 1 with `numba.set_num_threads(2)` (and BLAS at 2 threads). Which variants get
#    faster, which do not, and why? What happens to the roofline's peak?

# %% [markdown]
# ## References
#
# * Samuel Williams, Andrew Waterman and David Patterson. *Roofline: an insightful visual
#   performance model for multicore architectures.* Communications of the ACM 52(4), 2009.
# * Kumar Chellapilla, Sidd Puri and Patrice Simard. *High performance convolutional neural
#   networks for document processing.* Tenth International Workshop on Frontiers in Handwriting
#   Recognition, 2006. (Convolution as unfolding + matrix product.)
# * Kazushige Goto and Robert A. van de Geijn. *Anatomy of high-performance matrix
#   multiplication.* ACM Transactions on Mathematical Software 34(3), 2008. (Register and cache
#   blocking of GEMM.)
# * Tze Meng Low, Francisco D. Igual, Tyler M. Smith and Enrique S. Quintana-Ortí. *Analytical
#   modeling is enough for high-performance BLIS.* ACM Transactions on Mathematical Software
#   43(2), 2016. (Choosing the register tile $m_R \times n_R$ from the machine.)
# * Wenzhe Shi, Jose Caballero, Lucas Theis, Ferenc Huszar, Andrew Aitken, Christian Ledig and
#   Zehan Wang. *Is the deconvolution layer the same as a convolutional layer?*
#   arXiv:1609.07009, 2016. (The transposed convolution as $s^2$ sub-kernel convolutions.)
# * Nicholas J. Higham. *The accuracy of floating point summation.* SIAM Journal on Scientific
#   Computing 14(4), 1993; and *Accuracy and Stability of Numerical Algorithms*, 2nd ed., SIAM,
#   2002, Chapter 4.
# * Pierre Blanchard, Nicholas J. Higham and Theo Mary. *A class of fast and accurate summation
#   algorithms.* SIAM Journal on Scientific Computing 42(3), 2020. (Blocked summation and its
#   bound.)
