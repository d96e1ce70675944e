"""Work plans of the convolution kernels: tile shapes, vector widths and the cut into items.

Every number the register-tiled kernels (:mod:`deconv.kernels.conv`) and
their micro-kernels (:mod:`deconv.kernels.microkernel`) agree on is defined
here once: the vector width (:data:`VECTOR_BYTES`, :func:`lanes`), the tile
shapes (:data:`FORWARD_TILE`, :data:`REDUCE_TILE`,
:data:`REDUCE_TILE_DEPTHWISE`), the thresholds that choose a kernel, and the
plans (:func:`forward_plan`, :func:`reduce_plan`, :func:`phase_taps`) that
cut one call's work into items and size its workspaces. The callers in
:mod:`deconv.functional.conv` pack the operands and pass these values to the
kernels; the tile sizes and the vector width reach the micro-kernels as
compile-time literals (:func:`deconv.kernels.common.compile_time`), so the
compiled signature of a kernel carries them and a changed constant compiles
a new kernel rather than reusing a cached one.

A plan depends on the shapes alone, never on the number of threads, and no
output element's sum depends on the cut into items: results are bitwise the
same for any thread count. Plans are cached (small convolutions are called
often); the arrays in a cached plan are shared between calls and never
written.

This module is plain Python and NumPy (and llvmlite's CPU queries, for
:data:`TARGET`): importing it compiles nothing.
"""

import functools
import math
import os
from typing import NamedTuple

import numpy as np

# ---------------------------------------------------------------------------
# vectors and tiles
# ---------------------------------------------------------------------------

class Target(NamedTuple):
    """The vector registers of a CPU, as the micro-kernels' tiles need them."""

    name: str
    vector_bytes: int
    """Bytes of one vector register."""
    registers: int
    """Vector registers the instruction set names."""
    fma: bool
    """Whether it has a fused multiply-add: the micro-kernels' multiply-adds
    (``llvm.fmuladd``) round once where it does, twice (a multiply, then an
    add) where it does not."""


#: The CPUs users have: x86-64 with AVX-512 (32 x 512-bit) or AVX2 + FMA (16 x
#: 256-bit), AVX without FMA (Sandy/Ivy Bridge), baseline x86-64 (SSE2: 16 x
#: 128-bit, no FMA), and aarch64 (NEON, Apple Silicon and Graviton: 32 x
#: 128-bit, FMA).
TARGETS = {
    "avx512": Target("avx512", 64, 32, True),
    "avx2": Target("avx2", 32, 16, True),
    "avx": Target("avx", 32, 16, False),
    "sse2": Target("sse2", 16, 16, False),
    "neon": Target("neon", 16, 32, True),
}


def target_of(triple, features):
    """The :class:`Target` of an LLVM triple and feature string (``+avx2,-avx512f,...``).

    >>> target_of("x86_64-unknown-linux-gnu", "+avx,+avx2,+fma,-avx512f").name
    'avx2'
    >>> target_of("x86_64-unknown-linux-gnu", "").name
    'sse2'
    >>> target_of("aarch64-unknown-linux-gnu", "+neon").name
    'neon'
    """
    if triple.split("-")[0] in ("aarch64", "arm64"):
        return TARGETS["neon"]
    enabled = {f[1:] for f in features.split(",") if f.startswith("+")}
    if "avx512f" in enabled:
        return TARGETS["avx512"]
    if "avx2" in enabled and "fma" in enabled:
        return TARGETS["avx2"]
    if "avx" in enabled:
        return TARGETS["avx"]
    return TARGETS["sse2"]


def compile_target():
    """The :class:`Target` Numba compiles the kernels for: the host's CPU, or the
    one ``NUMBA_CPU_NAME`` / ``NUMBA_CPU_FEATURES`` describe (``deconv bench
    --isa``), read by Numba's own rule (a CPU name alone keeps the host's
    features; ``generic`` has none). A wrong guess would cost speed, never
    correctness: the tiles' IR is valid on every target, LLVM splits or
    joins vectors of another width."""
    import llvmlite.binding as llvm       # LLVM's CPU queries; compiles nothing
    features = os.environ.get("NUMBA_CPU_FEATURES")
    if features is None:
        generic = os.environ.get("NUMBA_CPU_NAME", "").lower() == "generic"
        features = "" if generic else llvm.get_host_cpu_features().flatten()
    return target_of(llvm.get_process_triple(), features)


#: The target of this process's kernels.
TARGET = compile_target()
#: Bytes of one vector register of the micro-kernels, the target's own.
VECTOR_BYTES = TARGET.vector_bytes
#: Bytes at whose multiples the kernels' outputs and workspaces start: a cache
#: line, which holds a whole vector of every target. A vector that straddles two
#: lines costs two loads: NumPy's large arrays start 16 or 32 bytes past a line,
#: and U-Net's weight gradient (N=8, 64 channels, 64x64, float32) ran 9% faster
#: on a grad_output that starts on a line.
ALIGNMENT = 64


def aligned_count(count, dtype):
    """``count`` elements of ``dtype`` rounded up to whole :data:`ALIGNMENT` blocks,
    so that rows of that length in an aligned array all start aligned.

    >>> aligned_count(17, np.float32), aligned_count(17, np.float64)
    (32, 24)
    """
    block = ALIGNMENT // np.dtype(dtype).itemsize
    return -(-count // block) * block


def lanes(dtype, target=None):
    """Elements of ``dtype`` in one vector of ``target`` (default :data:`TARGET`):
    16 float32 or 8 float64 with AVX-512, 8 or 4 with AVX2, 4 or 2 with NEON."""
    return (target or TARGET).vector_bytes // np.dtype(dtype).itemsize


class ForwardTile(NamedTuple):
    """The shape of a forward register tile (``register_tile``): MR x NV."""

    channels: int
    """MR, output channels (rows of the packed weight block)."""
    vectors: int
    """NV, vectors of outputs (any NV vectors of an item's output rows)."""


class ReduceTile(NamedTuple):
    """The shape of a weight-gradient register tile (``register_tile_reduce``): MR x NK."""

    channels: int
    """MR, output channels."""
    taps: int
    """NK, taps (c, i, j) of the receptive field."""


class BroadcastTile(NamedTuple):
    """The shape of a channel-vector register tile (``register_tile_broadcast``): MR x NV."""

    rows: int
    """MR, broadcast rows: output pixels (forward) or taps (weight gradient)."""
    vectors: int
    """NV, vectors of consecutive output channels (NR = NV * lanes channels)."""


class Tiles(NamedTuple):
    """The tile shapes of one :class:`Target` (:func:`tiles_for`)."""

    forward: ForwardTile
    reduce: ReduceTile
    reduce_depthwise: ReduceTile
    broadcast: BroadcastTile


def tiles_for(target):
    """The tiles of ``target``, from its register count alone.

    Each tile keeps ``A = 3/4`` of the vector registers as accumulators
    (24 of 32, 12 of 16) and leaves the rest to the operands one step loads,
    so that the loop over taps runs without a stack spill (checked for every
    target by compiling the micro-kernels with LLVM's target machines,
    ``tests/test_tile_registers.py``):

    * forward: NV = 3 vectors of outputs, MR = A / 3 channels (8 x 3 + 3
      loads + 1 broadcast = 28 of 32; 4 x 3 + 4 = 16 of 16);
    * weight gradient: MR = 4 channels, NK = A / 4 taps (4 x 6 + 6 + 1 of 32;
      4 x 3 + 3 + 1 of 16); one channel per group: 1 x A/2 taps;
    * channel vectors: NV = registers / 8 vectors of channels, MR = A / NV
      rows (6 x 4 + 4 + 1 of 32; 6 x 2 + 2 + 1 of 16).

    >>> tiles_for(TARGETS["avx512"]).forward
    ForwardTile(channels=8, vectors=3)
    >>> tiles_for(TARGETS["avx2"]).reduce
    ReduceTile(channels=4, taps=3)
    >>> tiles_for(TARGETS["neon"]).broadcast
    BroadcastTile(rows=6, vectors=4)
    """
    accumulators = target.registers * 3 // 4
    broadcast_vectors = target.registers // 8
    return Tiles(forward=ForwardTile(channels=accumulators // 3, vectors=3),
                 reduce=ReduceTile(channels=4, taps=accumulators // 4),
                 reduce_depthwise=ReduceTile(channels=1, taps=accumulators // 2),
                 broadcast=BroadcastTile(rows=accumulators // broadcast_vectors,
                                         vectors=broadcast_vectors))


#: The tiles of :data:`TARGET`.
TILES = tiles_for(TARGET)
FORWARD_TILE = TILES.forward
REDUCE_TILE = TILES.reduce
REDUCE_TILE_DEPTHWISE = TILES.reduce_depthwise
BROADCAST_TILE = TILES.broadcast

def transpose_square(R, dtype, target=None):
    """The side of the squares (``microkernel.transpose_square``) in which a
    tile's weight of R lanes is packed and unpacked: a vector's lanes, or R
    when a block has fewer (the forward tile's 8 channels in float32 on
    AVX-512; ``target`` as :func:`lanes`). R is a multiple of it for every
    tile of :func:`tiles_for`.

    >>> avx512 = TARGETS["avx512"]
    >>> transpose_square(64, np.float32, avx512), transpose_square(8, np.float32, avx512)
    (16, 8)
    """
    return min(R, lanes(dtype, target))


#: Taps a forward register tile sums from 0 before it adds its block's sum to
#: the output (blocked accumulation, ``accumulate`` of ``register_tile`` and
#: ``register_tile_broadcast``): the rounding errors of a float32 running sum
#: of K terms grow like K, those of a blocked sum like K / K_BLOCK + K_BLOCK.
#: Measured on C_in=1024, 3x3 (K = 9,216), 4 seeds, max|err|/max|ref| against
#: float64: one running sum 3.6e-6; blocks of 48 taps 4.6-6.1e-7, 96
#: 3.0-4.8e-7, 128 2.7-3.4e-7 (input gradient 2.9-3.1e-7), 192 2.8-3.7e-7;
#: PyTorch 2.8-4.1e-7 (3.1-3.9e-7).
K_BLOCK = 128


def chunk(items, t, T):
    """Items [lo, hi) of chunk t of T: contiguous, as even as possible; the T
    chunks cover [0, items) exactly once. (Inlined into the kernels, which
    Numba caches by their own file: after editing this function, delete the
    cached kernels of :mod:`deconv.kernels.conv`.)"""
    return items * t // T, items * (t + 1) // T


# ---------------------------------------------------------------------------
# which kernel
# ---------------------------------------------------------------------------

# Direct loops beat register tiles of one input channel per group while the
# output channels per group are few (a tile of 8 or 16 channels would be mostly
# empty). Measured on the reference machine (N=32, 64 groups, 32x32, 3x3): at 1
# output per group direct 1.6 ms against 3.3 forward; at 2 even; at 3 or more
# the tiles win.
DIRECT_MAX_OUT_PER_GROUP = 2

# The input gradient as a flipped-kernel conv has C_in/G outputs per group;
# with fewer than this, its register tiles would be mostly empty, and GEMM +
# col2im is faster.
FLIP_MIN_IN_PER_GROUP = 8


def pixel_tile_use(h_out, w_out, c_out_g, dtype):
    """The fraction of the lanes of ``register_tile`` (:data:`FORWARD_TILE`) that
    hold an output: each row of W_out outputs in vectors of lanes (the tile's
    NV vectors are any vectors of an item's rows, so only a row's last vector
    may be short), channels in blocks of MR. A 1-D conv (``h_out`` = 1: an
    item is one row) also leaves its last tile of vectors short: a row of 4
    vectors fills 4 of 6 (NV = 3). Items of several rows are not charged for
    theirs: measured, 16x16 planes (16 of 18 vectors) still ran faster on
    this tile than on the channel vectors, and its workspace is the smaller.

    >>> f32 = np.dtype(np.float32)
    >>> pixel_tile_use(1, 4 * lanes(f32), 64, f32) == 4 / (-(-4 // FORWARD_TILE.vectors)
    ...                                                    * FORWARD_TILE.vectors)
    True
    """
    width = lanes(dtype)
    MR, NV = FORWARD_TILE.channels, FORWARD_TILE.vectors
    per_row = -(-w_out // width)
    use = (w_out / (per_row * width)) * (c_out_g / (-(-c_out_g // MR) * MR))
    if h_out == 1:
        use *= per_row / (-(-per_row // NV) * NV)
    return use


def broadcast_tile_use(pixels, c_out_g, dtype):
    """The fraction of the lanes of ``register_tile_broadcast`` (:data:`BROADCAST_TILE`)
    that hold an output: ``pixels`` in tiles of MR rows, channels in blocks of NR."""
    MR, NR = BROADCAST_TILE.rows, BROADCAST_TILE.vectors * lanes(dtype)
    return (pixels / (-(-pixels // MR) * MR)) * (c_out_g / (-(-c_out_g // NR) * NR))


# The channel-vector tile runs where it fills this much more of its lanes than
# the pixel-vector tile would (planes of 8x8, 14x14 or 7x7 outputs, rows that
# fill half or 7/8 of a vector): on planes that fill the pixel tile's vectors
# both tiles run alike, and the pixel tile scatters no stores.
BROADCAST_MIN_GAIN = 1.05


def reduce_tile_use(w_out, c_out_g, dtype):
    """The fraction of the lanes of ``register_tile_reduce`` (:data:`REDUCE_TILE`)
    that hold a pixel: runs of a row in vectors, channels in blocks of MR."""
    width = lanes(dtype)
    MR = REDUCE_TILE.channels
    return (w_out / (-(-w_out // width) * width)) * (c_out_g / (-(-c_out_g // MR) * MR))


def use_broadcast_forward(h_out, w_out, c_out_g, dtype):
    """Whether a conv forward runs the channel-vector tile (see :data:`BROADCAST_MIN_GAIN`).
    Measured (1 thread): a MelGAN x8 transposed conv, whose stride phases are 1-D rows of
    64, ran in 16.7 ms on the pixel tile (4 of 6 vectors) and 12.5 ms on the channel vectors."""
    return (broadcast_tile_use(h_out * w_out, c_out_g, dtype)
            > BROADCAST_MIN_GAIN * pixel_tile_use(h_out, w_out, c_out_g, dtype))


# Where both tiles fill their lanes (within BROADCAST_MIN_GAIN), the stride
# phases of an input gradient (a transposed conv's forward) still run on the
# channel-vector tile, all in one call over one copy of grad_output
# (``conv_input_grad_broadcast_phases``), while one sample's phase in blocks
# of NR channels takes at most this many bytes of the tile's pixel-major
# scratch; the pixel tile runs each phase into a temporary of its own, spread
# into place afterwards, over a copy of grad_output per phase. Measured (4x4
# stride 2, float32, 2 threads): AVX-512, 16x16 phases (64 KB) 5.0 -> 3.5 ms
# (N=16, 128 -> 64) and 17.6 -> 14.4 (256 -> 128), 32x32 phases (256 KB)
# 3.0 -> 3.8 (N=8, 64 -> 32), 48x48 5.8 -> 10.0; AVX2, 8x8 phases (4 KB)
# 7.8 -> 6.1 (DCGAN's N=16, 256 -> 128), 16x16 0.82-0.89 of the time, 24x24
# 0.88, 32x32 (64 KB) 0.79, 48x48 and 64x64 (144 and 256 KB) 0.99. A plain
# conv (no phases, no spread) keeps the pixel tile on such planes: on
# AVX-512's 16x16 the channel-vector tile took 1.02-1.09 of its time.
BROADCAST_PHASE_BYTES = 64 << 10


def use_broadcast_phases(h_out, w_out, c_out_g, dtype):
    """Whether the stride phases of an input gradient, each a conv with
    ``(h_out, w_out)`` outputs and ``c_out_g`` output channels per group, run
    on the channel-vector tile in one call (see :data:`BROADCAST_PHASE_BYTES`):
    where a conv forward would (:func:`use_broadcast_forward`), or where the
    tiles fill their lanes alike and a sample's phase in blocks of NR channels
    fits :data:`BROADCAST_PHASE_BYTES`.

    >>> f32 = np.dtype(np.float32)
    >>> use_broadcast_phases(8, 8, 128, f32), use_broadcast_phases(16, 16, 64, f32)
    (True, True)
    >>> use_broadcast_phases(64, 64, 32, f32)
    False
    """
    if use_broadcast_forward(h_out, w_out, c_out_g, dtype):
        return True
    block_bytes = h_out * w_out * BROADCAST_TILE.vectors * VECTOR_BYTES
    return (broadcast_tile_use(h_out * w_out, c_out_g, dtype) * BROADCAST_MIN_GAIN
            >= pixel_tile_use(h_out, w_out, c_out_g, dtype)
            and block_bytes <= BROADCAST_PHASE_BYTES)


# Where both tiles fill their lanes (within BROADCAST_MIN_GAIN), a weight
# gradient still runs the channel-vector tile while one sample's block of NR
# channels of grad_output, channels last, takes at most this many bytes: every
# tile of taps streams that block, which must stay in L2. Its operands are
# broadcasts and whole vectors; the pixel tile's taps of the second and third
# column load vectors that straddle two cache lines. Measured (AVX-512, float32,
# one thread, grad_output on a line): U-Net's 64x64 x 64 channels (1 MB a
# block) 18.2 -> 15.2 ms, a 1-D conv over 1024 samples 8.0 -> 6.9, a 4x4 s2 conv
# to 16x16 x 128 10.4 -> 7.0; VGG's 112x112 x 64 (3.1 MB a block) 14.6 -> 23.2.
BROADCAST_REDUCE_BLOCK_BYTES = 1 << 20


def use_broadcast_reduce(h_out, w_out, c_out_g, dtype):
    """Whether a conv weight gradient runs the channel-vector tile: where it
    fills more of its lanes (:data:`BROADCAST_MIN_GAIN`), or as many and a
    sample's block of grad_output fits :data:`BROADCAST_REDUCE_BLOCK_BYTES`.

    >>> f32 = np.dtype(np.float32)
    >>> use_broadcast_reduce(7, 7, 512, f32), use_broadcast_reduce(64, 64, 64, f32)
    (True, True)
    >>> use_broadcast_reduce(112, 112, 64, f32), use_broadcast_reduce(64, 64, 32, f32)
    (False, False)
    """
    channel_vectors = broadcast_tile_use(h_out * w_out, c_out_g, dtype)
    pixel_vectors = reduce_tile_use(w_out, c_out_g, dtype)
    if channel_vectors > BROADCAST_MIN_GAIN * pixel_vectors:
        return True
    block_bytes = h_out * w_out * BROADCAST_TILE.vectors * VECTOR_BYTES
    return (channel_vectors * BROADCAST_MIN_GAIN >= pixel_vectors
            and block_bytes <= BROADCAST_REDUCE_BLOCK_BYTES)


def direct(c_in_g, c_out_g):
    """Whether a conv with these channels per group runs the direct depthwise kernels."""
    return c_in_g == 1 and c_out_g <= DIRECT_MAX_OUT_PER_GROUP


# The direct depthwise forward at stride 1 copies each input plane into a
# zero-padded "wide" buffer of (H_out + dH*(kH-1)) x (W_out + dW*(kW-1)) and
# runs every tap over it in one pass. Its padding can be far larger than the
# input and the output (a dilation of 2**20 with the padding to match on a
# 1x1 input asks for 2**40 elements); past this many times the elements of
# one input and one output plane, the row loops run instead.
WIDE_MAX_GROWTH = 4


def depthwise_wide(in_hw, out_hw, kernel_hw, geometry):
    """Whether the direct depthwise forward uses its wide buffer, the input's
    phase planes (see :data:`WIDE_MAX_GROWTH`).

    Measured (MobileNetV2's stride-2 depthwise 3x3, N=8, 144 channels, 56x56,
    float32): the row loops, strided by 2, ran 2.2-2.4x PyTorch's time;
    the phase planes 0.9-1.1x.
    """
    sH, sW, _, _, dH, dW = geometry
    (H, W), (H_out, W_out), (kH, kW) = in_hw, out_hw, kernel_hw
    wide = sH * sW * (H_out + dH * (kH - 1) // sH) * (W_out + dW * (kW - 1) // sW)
    return wide <= WIDE_MAX_GROWTH * (H * W + H_out * W_out)


def is_pointwise(weight_shape, geometry, in_hw, out_hw):
    """A 1x1, stride-1, unpadded conv over the whole input needs no unfolding:
    the input plane itself is the (K, P) matrix. (A transposed conv with
    dilation can ask for fewer output rows than the input has; not that.)"""
    sH, sW, pH, pW, _, _ = geometry
    return (tuple(weight_shape[2:]) == (1, 1) and (sH, sW, pH, pW) == (1, 1, 0, 0)
            and tuple(in_hw) == tuple(out_hw))


# ---------------------------------------------------------------------------
# workspaces
# ---------------------------------------------------------------------------

# Batch chunks of the weight gradient, whose partial sums are added in order:
# enough for a few threads, few enough that the partials stay small.
MAX_BATCH_CHUNKS = 8


def chunk_budget(output_elements):
    """Elements one chunk's workspace may hold: half the call's output, so that
    on two threads the workspace is no larger than the output."""
    return max(output_elements // 2, 1)


def channel_block(c_in_g, taps, pixels, budget):
    """The largest divisor of C_in/G whose unfolded block (block * taps rows of
    ``pixels``) fits in ``budget`` elements; at least 1."""
    for block in range(c_in_g, 0, -1):
        if c_in_g % block == 0 and block * taps * pixels <= budget:
            return block
    return 1


# An item of the blocked forward copies the input rows it needs into a buffer of
# at most about this many elements (512 KB of float32), which stays in a core's
# L2 cache while every block of output channels streams over it.
BLOCKED_ITEM_ELEMENTS = 1 << 17
# Items wanted per call, so that small batches still share out among threads.
BLOCKED_MIN_ITEMS = 8
# Pixel vectors a weight-gradient tile sums before its final reduction (the
# samples of a 1-D conv are few pixels each: several go into one tile).
REDUCE_MIN_RUNS = 128
# ... and at most about this many elements of phase planes for those samples
# (1 MB of float32, a core's L2 on the reference machine): 1-D samples are
# small, and more of them per tile ran the conv1d case's weight gradient 7% faster.
REDUCE_ITEM_ELEMENTS = 1 << 18


# ---------------------------------------------------------------------------
# plans
# ---------------------------------------------------------------------------

def _phase_offsets(c_in_g, kernel, geometry, Hq, Wq):
    """(K,) int64: where tap k = (c, i, j), in that order, of the receptive
    field of a row's first output reads the phase planes (Hq x Wq each,
    sH * sW per channel, channels one after another)."""
    kH, kW = kernel
    sH, sW, _, _, dH, dW = geometry
    i, j = np.divmod(np.arange(kH) * dH, sH), np.divmod(np.arange(kW) * dW, sW)
    # tap (c, i, j) reads phase (i*dH % sH, j*dW % sW) at row i*dH // sH, column j*dW // sW
    phase = (i[1][:, None] * sW + j[1][None, :]) * (Hq * Wq)
    shift = i[0][:, None] * Wq + j[0][None, :]
    plane = np.arange(c_in_g)[:, None, None] * (sH * sW * Hq * Wq)
    return (plane + (phase + shift)[None]).reshape(-1).astype(np.int64)


def _phase_extent(kernel, geometry):
    """(qh, qw): the rows and columns a phase plane holds beyond the outputs'
    own, (k - 1) * d // s per axis."""
    (kH, kW), (sH, sW, _, _, dH, dW) = kernel, geometry
    return (kH - 1) * dH // sH, (kW - 1) * dW // sW


# The phase planes of a tiled pass hold the padded input its items read: about
# the input itself, but a stride or a dilation far larger than the input (or a
# padding to match) spreads a few pixels over planes of stride**2 or
# dilation**2 elements (a stride of 2**16 on a 5x5 input: 2**32 per channel).
# Tiled passes run only while one chunk's planes take at most this many times
# the elements of the pass's operands and result, plus the floor below; past
# that the naive loop nests run (:mod:`deconv.kernels.naive`), whose time is
# the formula's own terms and whose workspace is nothing. No layer of a real
# network comes near it (the stride 2 of a 1x1 conv gives planes of the
# input's own size).
PLANES_PER_OPERAND_ELEMENT = 4
PLANES_FLOOR = BLOCKED_ITEM_ELEMENTS


def _planes_fit(planes, operand_elements):
    return planes <= PLANES_PER_OPERAND_ELEMENT * operand_elements + PLANES_FLOOR


def forward_fits(weight_shape, geometry, w_out, operand_elements):
    """Whether the tiled forward's phase planes are bounded by its operands.

    The least an item of :func:`forward_plan` copies is the planes of one
    output row, C_in/G * sH * sW * (1 + qh) * (W_out + qw) elements
    (:func:`_phase_extent`); ``operand_elements`` counts the input and the
    output. Checked before :func:`forward_plan` is made (its tap offsets are
    int64).

    >>> forward_fits((8, 8, 1, 1), (1, 1, 0, 0, 1, 1), 5, 8 * 25 * 2)
    True
    >>> forward_fits((8, 8, 1, 1), (2**16, 2**16, 0, 0, 1, 1), 1, 8 * 25 + 8)
    False
    """
    _, c_in_g, kH, kW = weight_shape
    sH, sW = geometry[:2]
    qh, qw = _phase_extent((kH, kW), geometry)
    return _planes_fit(c_in_g * sH * sW * (1 + qh) * (w_out + qw), operand_elements)


def reduce_fits(weight_shape, geometry, h_out, w_out, operand_elements):
    """Whether the tiled weight gradient's phase planes are bounded by its operands.

    The least a tile of :func:`reduce_plan` sums over is one sample's planes,
    C_in/G * sH * sW * (H_out + qh) * (W_out + qw) elements; ``operand_elements``
    counts the input and grad_output.

    >>> reduce_fits((8, 8, 3, 3), (2, 2, 1, 1, 1, 1), 16, 16, 8 * 32 * 32 + 8 * 16 * 16)
    True
    >>> reduce_fits((1, 1, 2, 2), (1, 1, 2**13, 2**13, 2**14, 2**14), 1, 1, 2)
    False
    """
    _, c_in_g, kH, kW = weight_shape
    sH, sW = geometry[:2]
    qh, qw = _phase_extent((kH, kW), geometry)
    return _planes_fit(c_in_g * sH * sW * (h_out + qh) * (w_out + qw), operand_elements)


class ForwardPlan(NamedTuple):
    """How ``conv_forward_blocked`` cuts one call. Items are (sample, group,
    ``rows`` output rows); element counts are of the call's dtype."""

    tile: ForwardTile
    """MR output channels x NV vectors (:data:`FORWARD_TILE`)."""
    lanes: int
    """Elements per vector."""
    rows: int
    """Output rows per item (the last item of a sample may have fewer)."""
    Hq: int
    """Rows of a phase plane: ``rows`` plus the kernel's reach (k-1)*d//s."""
    Wq: int
    """Columns of a phase plane (W_out plus the kernel's reach), the row stride."""
    offs: np.ndarray
    """(K,) int64, K = C_in/G * kH * kW: the element offset into an item's
    phase planes of tap k = (c, i, j) for the item's first output."""
    planes: int
    """Elements of an item's phase planes: C_in/G * sH * sW * Hq * Wq."""
    workspace: int
    """Elements of one chunk's buffer: the planes plus slack, kept zero, for
    the lanes of a row's last vector that pass the row's end (one vector)."""
    vectors: np.ndarray
    """(V, 3) int64: the vectors of an item's ``rows`` output rows in row order,
    ``(b_off, o_off, count)`` for ``register_tile``: the offset of the
    vector's first output into the phase planes (row r, column c: r * Wq +
    c) and into the output plane from the item's first row (r * W_out + c),
    and its outputs (``lanes``, or fewer at a row's end). V is a multiple of
    NV; the last tile's missing vectors repeat the last real one with count 0."""
    row_vectors: int
    """Vectors per output row: ceil(W_out / lanes)."""
    k_block: int
    """Taps summed per ``register_tile`` call (:data:`K_BLOCK`)."""
    span: int
    """Vectors of output an item covers before its next block of taps (a
    multiple of NV): about one output row, fewer where the input a block of
    taps reads for them would outgrow :data:`SPAN_INPUT_BYTES`."""


def reads_in_place(weight_shape, geometry, in_hw, out_hw, dtype):
    """Whether ``conv_forward_blocked`` reads the input itself, with no phase
    planes: a pointwise conv (:func:`is_pointwise`) whose rows are whole
    vectors (as :func:`pointwise_rows` re-cuts them where it can), so that no
    vector reads past its row and none past the input's end. The planes would
    be a copy of the input: for 512 -> 128 channels on 28x28 (N=8), float32,
    one thread, 15% of the forward's time."""
    return (is_pointwise(weight_shape, geometry, in_hw, out_hw)
            and out_hw[1] % lanes(dtype) == 0)


@functools.lru_cache(maxsize=256)
def forward_plan(n_items, weight_shape, geometry, h_out, w_out, dtype, in_place=False):
    """The :class:`ForwardPlan` of a conv forward.

    Parameters
    ----------
    n_items : int
        N * G, the (sample, group) pairs; rows are cut so that the call has
        at least :data:`BLOCKED_MIN_ITEMS` items where it can.
    weight_shape : tuple, (C_out, C_in/G, kH, kW)
    geometry : tuple, (sH, sW, pH, pW, dH, dW)
    h_out, w_out : int
    dtype : numpy.dtype
        float32 or float64.
    in_place : bool
        The items read the input planes themselves (:func:`reads_in_place`):
        the tap offsets are the input's channel strides, ``Hq = h_out`` and
        there are no planes (``planes = workspace = 0``).

    Notes
    -----
    ``rows = floor(H_out / tiles)`` (so that there are at least ``tiles``
    items) with ``tiles`` the larger of ``ceil(BLOCKED_MIN_ITEMS / n_items)``
    (at most H_out) and the number of cuts that keep an item's planes within
    :data:`BLOCKED_ITEM_ELEMENTS`.
    """
    _, c_in_g, kH, kW = weight_shape
    sH, sW = geometry[:2]
    qh, qw = _phase_extent((kH, kW), geometry)
    Wq = w_out + qw
    tiles = min(h_out, -(-BLOCKED_MIN_ITEMS // max(n_items, 1)))
    if not in_place:
        fit = BLOCKED_ITEM_ELEMENTS // (c_in_g * sH * sW * Wq) - qh
        tiles = max(tiles, -(-h_out // max(fit, 1)))
    rows = h_out // tiles
    Hq = rows + qh
    width = lanes(dtype)
    table, per_row = _row_vectors(rows, w_out, Wq, width, FORWARD_TILE.vectors)
    span = forward_span(per_row, kW, FORWARD_TILE.vectors)
    if in_place:
        return ForwardPlan(FORWARD_TILE, width, rows, h_out, Wq,
                           _phase_offsets(c_in_g, (kH, kW), geometry, h_out, Wq), 0, 0,
                           table, per_row, K_BLOCK, span)
    planes = c_in_g * sH * sW * Hq * Wq
    return ForwardPlan(FORWARD_TILE, width, rows, Hq, Wq,
                       _phase_offsets(c_in_g, (kH, kW), geometry, Hq, Wq), planes,
                       planes + width, table, per_row, K_BLOCK, span)


#: Bytes of operands one span of pixel vectors may touch, so that they stay in
#: L1 (32 KiB on most cores, 48 on this reference machine) while tile after tile
#: runs over them: the input a block of :data:`K_BLOCK` taps reads for a span of
#: output vectors of ``conv_forward_blocked``, while every block of output
#: channels runs over it (:func:`forward_span`); the grad_output and input
#: vectors of a span of ``conv_weight_grad_blocked``, while every tile of taps
#: runs over them (:func:`reduce_span`). Past it (a 1x1 conv, whose taps are
#: K_BLOCK separate channels, over a long row), the same input is fetched
#: again from L2 for each block of channels: on 128 -> 256 channels, one row
#: of 4800 pixels, float32, one thread, spans of one row ran at 62-66 GFLOP/s
#: and spans of 3 vectors at 131-146 (NumPy's matmul 145-153).
SPAN_INPUT_BYTES = 1 << 15


def forward_span(row_vectors, kW, NV):
    """Output vectors per span of ``conv_forward_blocked``: one output row
    rounded up to whole tiles, cut to whole tiles whose input for a block of
    taps fits :data:`SPAN_INPUT_BYTES` (the K_BLOCK taps touch about
    K_BLOCK / kW lines per vector: taps along a row share them).

    >>> forward_span(4, 3, 3)       # a 56-wide row of a 3x3 conv: all of it
    6
    >>> span = forward_span(196, 1, 3)     # a 1x1 conv over a row of 3136 float32
    >>> span < 196 and span * K_BLOCK * VECTOR_BYTES <= SPAN_INPUT_BYTES
    True
    """
    whole = -(-row_vectors // NV) * NV
    lines = -(-K_BLOCK // kW)
    fit = SPAN_INPUT_BYTES // (lines * VECTOR_BYTES) // NV * NV
    return min(whole, max(fit, NV))


def reduce_span(kW, tile=None):
    """Whole pixel vectors (runs) of a span of ``conv_weight_grad_blocked``,
    which every tile of taps sums in turn before the next span (each carrying
    its accumulators to the next, :func:`reduce_carry_taps`): as many as fit
    :data:`SPAN_INPUT_BYTES` with the MR grad_output vectors and the input
    lines of NK taps (about NK / kW: taps along a row share them) each run
    loads. Summed over a whole sample instead, the tile streams its operands
    from L2 for every tile of taps: the 3x3 weight gradient of 64 channels on
    64x64, float32, one thread, ran in 20.4 ms with whole samples and in
    17.4-18.3 with spans of 64-128 runs, each span's lane sums added to the
    gradient (16 runs: 22.1, the lane sums no longer paid for).

    >>> span = reduce_span(3)
    >>> t = REDUCE_TILE
    >>> span * (t.channels + -(-t.taps // 3)) * VECTOR_BYTES <= SPAN_INPUT_BYTES
    True
    """
    tile = tile or REDUCE_TILE
    lines = tile.channels + -(-tile.taps // kW)
    return max(1, SPAN_INPUT_BYTES // (lines * VECTOR_BYTES))


#: Bytes of the accumulators that the tiles of one block of taps carry from
#: span to span (:func:`reduce_carry_taps`): each tile's MR x NK vectors are
#: stored after a span and loaded for the next, from L2 (256 KiB and more on
#: the cores of this decade) rather than from memory.
REDUCE_CARRY_BYTES = 1 << 17


def reduce_carry_taps(K, tile=None, limit_bytes=REDUCE_CARRY_BYTES):
    """Taps per block of ``conv_weight_grad_blocked``: the tiles of taps that
    run over the spans of pixel vectors (:func:`reduce_span`) together, each
    carrying its MR x NK accumulator vectors from span to span, so that the
    lanes are summed once per sample rather than once per span. Whole tiles,
    the K taps cut into equal blocks whose carries fit
    :data:`REDUCE_CARRY_BYTES` and ``limit_bytes`` (at least one tile).

    >>> t = REDUCE_TILE
    >>> reduce_carry_taps(4, t) == t.taps          # one tile covers the taps
    True
    >>> taps = reduce_carry_taps(4608, t)
    >>> taps % t.taps == 0 and taps * t.channels * VECTOR_BYTES <= REDUCE_CARRY_BYTES
    True
    """
    tile = tile or REDUCE_TILE
    tiles = -(-K // tile.taps)
    limit = min(REDUCE_CARRY_BYTES, limit_bytes)
    fit = max(1, limit // (tile.channels * tile.taps * VECTOR_BYTES))
    return _equal_blocks(tiles, fit) * tile.taps


@functools.lru_cache(maxsize=256)
def pointwise_rows(h, w, n_items, dtype):
    """The (rows, columns) a 1x1 stride-1 unpadded conv's planes are seen as.

    Such a conv treats each pixel alone, so its H x W planes (input and
    output alike, C-contiguous) may be re-cut into any rows x columns of the
    same H * W pixels. The re-cut is chosen for the pixel tile
    (``conv_forward_blocked``): the most work in the tiles' lanes (rows whose
    length is a whole number of vectors, and items whose vectors make whole
    tiles of NV); of equals, those with rows enough for
    :data:`BLOCKED_MIN_ITEMS` items among ``n_items`` (N * G); then the
    longest rows.
    A 28x28 plane is 28 rows of 2 vectors with 4 of 32 lanes idle; at N=8 it
    becomes one row of 784 pixels (49 full vectors, 17 tiles of 3), at N=1
    49 rows of 16 (8 items of 6 rows, 2 tiles each).

    >>> import numpy as np
    >>> f32 = np.dtype(np.float32)
    >>> pointwise_rows(28, 28, 8, f32), pointwise_rows(28, 28, 1, f32)
    ((1, 784), (49, 16))
    >>> pointwise_rows(56, 56, 8, f32), pointwise_rows(7, 7, 8, f32)
    ((1, 3136), (1, 49))
    >>> pointwise_rows(1, 4801, 8, f32)   # no divisor helps: kept
    (1, 4801)
    """
    width = lanes(dtype)
    NV = FORWARD_TILE.vectors
    pixels = h * w
    need = min(-(-BLOCKED_MIN_ITEMS // max(n_items, 1)), pixels)

    def score(cols):
        rows = pixels // cols
        row_vectors = -(-cols // width)
        # the items forward_plan cuts from ``rows`` rows, at least ``need`` where it can
        vectors = rows // min(rows, need) * row_vectors
        work = cols / (row_vectors * width) * vectors / (-(-vectors // NV) * NV)
        return work, rows >= need, cols

    # w is a divisor too: where it scores best, the plane stays as it is
    small = [d for d in range(1, math.isqrt(pixels) + 1) if pixels % d == 0]
    best = max(small + [pixels // d for d in small], key=score)
    return pixels // best, best


def _row_vectors(rows, w_out, Wq, width, NV):
    """The ``vectors`` table of :class:`ForwardPlan` and the vectors per row.

    >>> table, per_row = _row_vectors(2, 5, 7, 4, 3)
    >>> per_row, table.tolist()
    (2, [[0, 0, 4], [4, 4, 1], [7, 5, 4], [11, 9, 1], [11, 9, 0], [11, 9, 0]])
    """
    per_row = -(-w_out // width)
    r, v = np.divmod(np.arange(rows * per_row), per_row)
    col = v * width
    table = np.stack([r * Wq + col, r * w_out + col, np.minimum(width, w_out - col)], axis=1)
    pad = -len(table) % NV
    table = np.concatenate([table, np.repeat(table[-1:] * [1, 1, 0], pad, axis=0)]).astype(np.int64)
    table.setflags(write=False)
    return table, per_row


class ReducePlan(NamedTuple):
    """How ``conv_weight_grad_blocked`` cuts one call. Items are (batch chunk,
    group, range of channel blocks); element counts are of the call's dtype."""

    tile: ReduceTile
    """MR output channels x NK taps (:data:`REDUCE_TILE`, or
    :data:`REDUCE_TILE_DEPTHWISE` for one output channel per group)."""
    lanes: int
    """Elements per vector."""
    chunks: int
    """B, batch chunks: chunk b sums samples [N*b//B, N*(b+1)//B) into its own
    partial gradient; the partials are added in order afterwards."""
    Hq: int
    """Rows of a phase plane (a whole sample's: H_out plus the kernel's reach)."""
    Wq: int
    """Columns of a phase plane, the row stride."""
    offs: np.ndarray
    """(K + NK,) int64: the forward's tap offsets into one sample's phase
    planes, then NK zeros read by the last tile of taps."""
    samples: int
    """S, samples whose planes one tile sums over at a time."""
    runs: np.ndarray
    """(S * R, 3) int64, R = H_out * ceil(W_out / lanes): per vector of output
    pixels of S consecutive samples, (offset into grad_output from the
    first sample's channel, offset into the S samples' planes, length): the
    S * ``full`` whole vectors first, then the shorter ones."""
    full: int
    """Whole vectors per sample (length = lanes)."""
    span: int
    """Whole vectors per span (:func:`reduce_span`; all S * ``full`` of them
    where no two taps read one input element): the S * ``full`` whole runs
    are cut into equal spans of at most this many, the short runs go with
    the last."""
    carry_taps: int
    """Taps per block whose tiles run over the spans together, carrying their
    accumulators (:func:`reduce_carry_taps`); where the S samples' whole runs
    are more than one span, the carries take the last carry_taps * MR *
    lanes elements of the workspace (else nothing is carried: one block)."""
    splits: int
    """Ranges of channel blocks per (chunk, group): 2 when a call would
    otherwise be one item, else 1."""
    workspace: int
    """Elements of one chunk's buffer: S samples' planes plus slack
    (lanes + Wq, kept zero)."""


@functools.lru_cache(maxsize=256)
def reduce_plan(N, weight_shape, geometry, groups, H_out, W_out, dtype, budget_elements):
    """The :class:`ReducePlan` of a conv weight gradient.

    Parameters
    ----------
    N : int
        Samples.
    weight_shape : tuple, (C_out, C_in/G, kH, kW)
    geometry : tuple, (sH, sW, pH, pW, dH, dW)
    groups : int
    H_out, W_out : int
    dtype : numpy.dtype
        float32 or float64.
    budget_elements : int
        The size of the backward's own output (its grad_input). The partial
        gradients (``chunks`` x the weight) and each chunk's planes of S
        samples stay within a quarter of it each.
    """
    C_out, C_in_g, kH, kW = weight_shape
    C_out_g = C_out // groups
    P = H_out * W_out
    sH, sW = geometry[:2]
    tile = REDUCE_TILE_DEPTHWISE if C_out_g == 1 else REDUCE_TILE
    chunks = max(1, min(N, MAX_BATCH_CHUNKS, budget_elements // (4 * C_out * C_in_g * kH * kW)))
    if chunks > 1 and (chunks * groups) % 2:
        chunks -= 1                 # an even number of items: equal shares on 2 threads
    qh, qw = _phase_extent((kH, kW), geometry)
    width = lanes(dtype)
    # rows of whole vectors: in an aligned workspace, the taps of the first column
    # read whole lines
    Hq, Wq = H_out + qh, -(-(W_out + qw) // width) * width
    offs = np.concatenate([_phase_offsets(C_in_g, (kH, kW), geometry, Hq, Wq),
                           np.zeros(tile.taps, dtype=np.int64)])
    # (dy_off, x_off, length) of each vector of output pixels, row by row, for
    # S samples at a time
    per_row = -(-W_out // width)
    sample_len = C_in_g * sH * sW * Hq * Wq
    S = max(1, min(N, REDUCE_MIN_RUNS // (H_out * per_row), REDUCE_ITEM_ELEMENTS // sample_len,
                   budget_elements // (4 * sample_len)))
    s, oh, ow0 = np.unravel_index(np.arange(S * H_out * per_row), (S, H_out, per_row))
    ow0 = ow0 * width
    runs = np.stack([s * (C_out * P) + oh * W_out + ow0,
                     s * sample_len + oh * Wq + ow0,
                     np.minimum(width, W_out - ow0)], axis=1)
    # whole vectors first, then the short ones (loaded with masks)
    is_full = runs[:, 2] == width
    full = int(is_full.sum()) // S
    runs = np.ascontiguousarray(np.concatenate([runs[is_full], runs[~is_full]]), dtype=np.int64)
    co_blocks = -(-C_out_g // tile.channels)
    # a single item (one chunk, one group) is split in two ranges of channel
    # blocks, for two threads; a split costs a second copy of the samples' planes
    splits = 2 if chunks * groups == 1 and co_blocks > 1 else 1
    # Spans pay where taps share input lines (windows that overlap); where every
    # input element meets one tap (a 1x1 conv, kernel = stride: a U-Net's k2 s2
    # transposed conv) a span's tiles each start short streams of their own, and
    # one pass over the whole sample ran that weight gradient 7-9% faster
    # (N=4, 64 -> 128 channels, 128x128, float32, 1 thread: 21.3 against 23.0 ms).
    dH, dW = geometry[4:]
    overlap = (kH - 1) * dH >= sH or (kW - 1) * dW >= sW
    span = reduce_span(kW, tile) if overlap else max(1, S * full)
    K = C_in_g * kH * kW
    if S * full > span:
        # each thread's carries within 1/16 of the budget (planes and partials
        # take a quarter each)
        carry_taps = reduce_carry_taps(K, tile, budget_elements // 16 * np.dtype(dtype).itemsize)
        carry = carry_taps * tile.channels * width
    else:
        carry_taps, carry = -(-K // tile.taps) * tile.taps, 0
    return ReducePlan(tile, width, chunks, Hq, Wq, offs, S, runs, full, span, carry_taps,
                      splits, aligned_count(S * sample_len + width + Wq + carry, dtype))


# Bytes of the weight that a channel-vector forward tile streams in one call:
# the sum over K taps is cut into calls of this many bytes' taps (at most
# K_BLOCK: each call's sum is added to the output), so that
# the block stays in L1 while every pixel tile of an item runs over it. On
# the reference core, 96-128 taps of 64 channels (24-32 KB) ran the tile 3-10%
# faster than 1024-2304 taps in one call, and 192-256 taps no faster.
BROADCAST_WEIGHT_BYTES = 1 << 15
# Pixels an item of the channel-vector forward wants: planes smaller than this
# are taken several samples to an item, so that its tiles of MR pixels are full
# and the work per item pays for its fill.
BROADCAST_ITEM_PIXELS = 128
# Pixels a channel-vector weight-gradient item wants: planes smaller than this
# are taken several samples to an item, so that a tile's sum pays for adding
# its result to the partial gradient.
BROADCAST_REDUCE_STEPS = 256
# Pixels a channel-vector weight-gradient tile sums in one chain before it adds
# its result to the partial gradient: an item's pixels are cut into equal
# blocks of at most this many, each summed from 0 (as the forward's K_BLOCK
# taps). Measured under emulated AVX2, float32, 16 samples of 40x40 x 64 -> 16
# channels: one chain per sample erred 6.3e-7 of the largest value against
# float64, blocks of at most 1024 pixels 5.3e-7, of 512 3.4e-7 (1.7e-7 on
# AVX-512). Blocks of 256 cost ResNet's and U-Net's weight gradients 5-17%;
# of 512, alike within noise (AVX-512, 1 thread).
BROADCAST_REDUCE_BLOCK = 512


class BroadcastPlan(NamedTuple):
    """How ``conv_forward_broadcast`` cuts one call. Items are (chunk of S
    samples, group, ``rows`` output rows); element counts are of the call's dtype."""

    tile: BroadcastTile
    """MR pixels x NV vectors of output channels (:data:`BROADCAST_TILE`)."""
    lanes: int
    """Elements per vector."""
    samples: int
    """S, samples per item (S > 1 only when ``rows`` is H_out)."""
    rows: int
    """Output rows per item (the last item of a sample may have fewer)."""
    Hq: int
    """Rows of a phase plane: ``rows`` plus the kernel's reach (k-1)*d//s."""
    Wq: int
    """Columns of a phase plane, the row stride."""
    offs: np.ndarray
    """(K,) int64: the offset of tap k = (c, i, j) into a sample's phase
    planes for its first output, as in :class:`ForwardPlan`."""
    planes: int
    """Elements of one sample's phase planes in an item: C_in/G * sH * sW * Hq * Wq."""
    pixels_in: np.ndarray
    """(Q,) int64, Q = S * rows * W_out rounded up to MR: for output pixel
    (s, r, w) of an item, in that order, the offset of its phase-plane reads
    (s * planes + r * Wq + w); 0 in the padding, read by the last tile and dropped."""
    pixels_out: np.ndarray
    """(Q,) int64: where pixel (s, r, w) goes from the item's first output,
    in the output array (see :func:`broadcast_plan`'s ``out_layout``)."""
    k_chunk: int
    """Taps per tile call: K cut into equal blocks of at most
    :data:`BROADCAST_WEIGHT_BYTES` of the weight and at most :data:`K_BLOCK` taps."""
    workspace: int
    """Elements of one chunk's buffer: S samples' planes, then a (Q, NR)
    scratch for the tiles' results (pixel-major)."""


@functools.lru_cache(maxsize=256)
def broadcast_plan(N, groups, weight_shape, geometry, h_out, w_out, out_layout, dtype):
    """The :class:`BroadcastPlan` of a conv forward on the channel-vector tile.

    Parameters
    ----------
    N, groups : int
    weight_shape : tuple, (C_out, C_in/G, kH, kW)
    geometry : tuple, (sH, sW, pH, pW, dH, dW)
    h_out, w_out : int
        The conv's output size.
    out_layout : tuple, (sample_stride, step_h, step_w, row_stride)
        Where the outputs go: output (n, c, oh, ow) at element
        ``n*sample_stride + oh*step_h*row_stride + ow*step_w`` from that
        call's (n=0, oh=0, ow=0) of its channel. A plain conv has
        (C_out*H_out*W_out, 1, 1, W_out); one stride phase of an input gradient
        writes every s-th row and column of the full gradient in place.
    dtype : numpy.dtype

    Notes
    -----
    S = max(1, min(ceil(BROADCAST_ITEM_PIXELS / P), BLOCKED_ITEM_ELEMENTS /
    sample planes, N*G / BLOCKED_MIN_ITEMS)); with S = 1 rows are cut as in
    :func:`forward_plan`, but never below 4 tiles of pixels an item while
    the planes fit.
    """
    _, c_in_g, kH, kW = weight_shape
    sH, sW = geometry[:2]
    qh, qw = _phase_extent((kH, kW), geometry)
    Wq = w_out + qw
    P = h_out * w_out
    MR = BROADCAST_TILE.rows
    NR = BROADCAST_TILE.vectors * lanes(dtype)
    row_planes = c_in_g * sH * sW * Wq
    n_items = N * groups
    S = max(1, min(-(-BROADCAST_ITEM_PIXELS // P),
                   BLOCKED_ITEM_ELEMENTS // (row_planes * (h_out + qh)),
                   n_items // BLOCKED_MIN_ITEMS))
    if S > 1:
        rows = h_out
    else:
        tiles = min(h_out, -(-BLOCKED_MIN_ITEMS // n_items), max(1, P // (4 * MR)))
        fit = BLOCKED_ITEM_ELEMENTS // row_planes - qh
        tiles = max(tiles, -(-h_out // max(fit, 1)))
        rows = -(-h_out // tiles)
    Hq = rows + qh
    planes = c_in_g * sH * sW * Hq * Wq
    sample_stride, step_h, step_w, row_stride = out_layout
    s, r, w = np.unravel_index(np.arange(S * rows * w_out), (S, rows, w_out))
    Q = -(-(S * rows * w_out) // MR) * MR
    pixels_in = np.zeros(Q, dtype=np.int64)
    pixels_out = np.zeros(Q, dtype=np.int64)
    pixels_in[:s.size] = s * planes + r * Wq + w
    pixels_out[:s.size] = s * sample_stride + r * step_h * row_stride + w * step_w
    return BroadcastPlan(BROADCAST_TILE, lanes(dtype), S, rows, Hq, Wq,
                         _phase_offsets(c_in_g, (kH, kW), geometry, Hq, Wq), planes,
                         pixels_in, pixels_out,
                         _equal_blocks(c_in_g * kH * kW, min(K_BLOCK, BROADCAST_WEIGHT_BYTES
                                                             // (NR * np.dtype(dtype).itemsize))),
                         S * planes + Q * NR)


class PhasesPlan(NamedTuple):
    """How ``conv_input_grad_broadcast_phases`` cuts one call: every stride
    phase of a conv's input gradient on the channel-vector tile, over one
    copy of grad_output per item. Items are (chunk of S samples, group);
    element counts are of the call's dtype."""

    tile: BroadcastTile
    """MR pixels x NV vectors of output channels (:data:`BROADCAST_TILE`)."""
    lanes: int
    """Elements per vector."""
    samples: int
    """S, samples per item."""
    pad: tuple
    """(P_h, P_w): the zero rows and columns before grad_output in the shared
    planes, the most any phase pads (each phase reads from its own shift)."""
    Hq: int
    """Rows of a shared plane: the furthest row any phase reads, plus one."""
    Wq: int
    """Columns of a shared plane, the row stride."""
    planes: int
    """Elements of one sample's planes: C_out/G (of the conv) * Hq * Wq."""
    phases: np.ndarray
    """(F, 7) int64, per phase with taps: the offset of its first position in
    a plane of the gradient (h0 * W + w0), its positions per sample (rows *
    cols), its taps K_f, the taps per tile call, and where its taps start in
    ``offs``, its pixels in ``pixels_in`` / ``pixels_out`` and its packed
    weight in the concatenation of the phases' packed weights."""
    offs: np.ndarray
    """(sum K_f,) int64: per phase, the offset of tap (c, i, j) into a
    sample's shared planes for its first position (as :class:`ForwardPlan`,
    shifted by the phase's own padding)."""
    pixels_in: np.ndarray
    """(sum Q_f,) int64, Q_f = S * rows * cols rounded up to MR: per phase,
    for its position (s, r, w) in that order, s * planes + r * Wq + w (0 in
    the padding, read by the last tile and dropped)."""
    pixels_out: np.ndarray
    """(sum Q_f,) int64: where position (s, r, w) of a phase goes from the
    phase's first position of the item's first sample, in the gradient."""
    splits: int
    """Ranges of phases per (chunk, group): more than one where the chunks
    and groups alone would make fewer than :data:`BLOCKED_MIN_ITEMS` items
    (a batch of one: FCN-8s's x8 upsampling), each range's item copying
    grad_output again."""
    workspace: int
    """Elements of one chunk's buffer: S samples' planes, then a (max Q_f, NR)
    scratch for the tiles' results (pixel-major); paired, two scratches and
    two squares of lanes x lanes."""
    pack: np.ndarray
    """:func:`pack_table` of the phases: where each of their taps goes in the
    concatenation of their packed sub-kernels."""
    paired: bool
    """Whether the phases come in pairs (2i, 2i + 1), the two column phases of
    one row phase at stride 2 with the same positions, one column apart, whose
    every square of ``lanes`` positions is two runs of one row each
    (:func:`pairs_interleave`): each block of channels of a pair is then
    written as whole runs of output rows, the two phases interleaved in
    registers (``interleave_rows``). Splits are then of pairs."""
    scratch_pixels: int
    """Q, the rows of a (Q, NR) scratch: the most pixels of a phase, max Q_f."""


def phase_groups(weight_shape, groups, phases_h, phases_w, dtype, budget_elements):
    """The stride phases (pairs of :func:`phase_taps` of each axis, row-major)
    cut into consecutive groups, each run in one call of
    ``conv_input_grad_broadcast_phases``, whose packed sub-kernels (C_in/G
    lanes rounded up to the channel-vector tile's, by C_out/G * taps) take at
    most ``budget_elements`` together, and at least one phase each. All the
    phases' sub-kernels together are the whole weight: MelGAN's x8 upsampler
    (512 -> 256, k16) would pack four times its output at once.

    >>> ph = phase_taps(4, 2, 1, 1, 16)          # DCGAN: 4 phases of 2x2 taps
    >>> f32 = np.dtype(np.float32)
    >>> [len(g) for g in phase_groups((256, 128, 4, 4), 1, ph, ph, f32, 16 * 128 * 16 * 16)]
    [4]
    >>> [len(g) for g in phase_groups((256, 128, 4, 4), 1, ph, ph, f32, 8 * 128 * 16 * 16)]
    [2, 2]
    """
    c_out, c_in_g = weight_shape[:2]
    NR = BROADCAST_TILE.vectors * lanes(dtype)
    lanes_padded = -(-c_in_g // NR) * NR
    cut, group, size = [], [], 0
    for ph in phases_h:
        for pw in phases_w:
            packed = c_out * lanes_padded * len(ph.taps) * len(pw.taps)
            if group and size + packed > budget_elements:
                cut.append(tuple(group))
                group, size = [], 0
            group.append((ph, pw))
            size += packed
    if group:
        cut.append(tuple(group))
    return cut


@functools.lru_cache(maxsize=256)
def phases_plan(N, groups, weight_shape, stride, pairs, shape, dtype):
    """The :class:`PhasesPlan` of some stride phases of a strided conv's input
    gradient, or None where one sample's shared planes would outgrow
    :data:`BLOCKED_ITEM_ELEMENTS` (its phases then run one call each,
    :func:`broadcast_plan`).

    Parameters
    ----------
    N, groups : int
    weight_shape : tuple, (C_out, C_in/G, kH, kW)
        The conv's (its input gradient has C_in channels).
    stride : tuple, (sH, sW)
    pairs : tuple of (PhaseTaps, PhaseTaps)
        The phases, each a :func:`phase_taps` of each axis (one group of
        :func:`phase_groups`).
    shape : tuple, (N, C_in, H, W)
        The input gradient's.
    dtype : numpy.dtype

    Notes
    -----
    Each phase (rows x cols positions) is a stride-1 correlation of
    grad_output with its taps (:func:`phase_taps`): position (r, w) reads row
    r - padding_h + i * dilation_h. In planes with P_h = max padding_h zero
    rows before grad_output, that is row r + i * dilation_h + (P_h -
    padding_h): one copy of grad_output serves every phase. S as in
    :func:`broadcast_plan`, from the phases' positions per sample.

    >>> ph = phase_taps(4, 2, 1, 1, 16)       # DCGAN: k4, s2, p1, 8x8 -> 16x16
    >>> pairs = tuple((a, b) for a in ph for b in ph)
    >>> p = phases_plan(16, 1, (256, 128, 4, 4), (2, 2), pairs, (16, 128, 16, 16),
    ...                 np.dtype(np.float32))
    >>> p.pad, p.Hq, p.Wq, p.phases[:, 1].tolist()
    ((1, 1), 10, 10, [64, 64, 64, 64])
    """
    c_out, _, _, _ = weight_shape
    m = c_out // groups                       # the phases' input channels per group
    sH, sW = stride
    _, C_in, H, W = shape
    MR = BROADCAST_TILE.rows
    NR = BROADCAST_TILE.vectors * lanes(dtype)
    phases_h = {ph for ph, _ in pairs}
    phases_w = {pw for _, pw in pairs}
    P_h = max(ph.padding for ph in phases_h)
    P_w = max(pw.padding for pw in phases_w)

    def reach(ph, P):
        # one past the furthest plane row (column) the phase reads
        return ph.count + (len(ph.taps) - 1) * ph.dilation + P - ph.padding

    Hq = max(reach(ph, P_h) for ph in phases_h)
    Wq = max(reach(pw, P_w) for pw in phases_w)
    planes = m * Hq * Wq
    if planes > BLOCKED_ITEM_ELEMENTS:
        return None
    least = min(ph.count * pw.count for ph, pw in pairs)
    S = max(1, min(-(-BROADCAST_ITEM_PIXELS // least), BLOCKED_ITEM_ELEMENTS // planes,
                   N * groups // BLOCKED_MIN_ITEMS))
    cap = min(K_BLOCK, BROADCAST_WEIGHT_BYTES // (NR * np.dtype(dtype).itemsize))
    table, offs, p_in, p_out = [], [], [], []
    n_offs = n_pix = n_weight = 0
    for ph, pw in pairs:
        th, tw = len(ph.taps), len(pw.taps)
        K = m * th * tw
        c, i, j = np.unravel_index(np.arange(K), (m, th, tw))
        offs.append(c * Hq * Wq + (i * ph.dilation + P_h - ph.padding) * Wq
                    + j * pw.dilation + P_w - pw.padding)
        s, r, w = np.unravel_index(np.arange(S * ph.count * pw.count),
                                   (S, ph.count, pw.count))
        Q = -(-s.size // MR) * MR
        pin, pout = np.zeros(Q, dtype=np.int64), np.zeros(Q, dtype=np.int64)
        pin[:s.size] = s * planes + r * Wq + w
        pout[:s.size] = s * (C_in * H * W) + r * (sH * W) + w * sW
        p_in.append(pin)
        p_out.append(pout)
        table.append((ph.first * W + pw.first, ph.count * pw.count, K, _equal_blocks(K, cap),
                      n_offs, n_pix, n_weight))
        n_offs, n_pix = n_offs + K, n_pix + Q
        n_weight += groups * -(-C_in // groups // NR) * K * NR
    Q_max = max(len(q) for q in p_in)
    arrays = [np.array(table, dtype=np.int64)] + [np.concatenate(a).astype(np.int64)
                                                   for a in (offs, p_in, p_out)]
    for a in arrays:
        a.setflags(write=False)
    L = lanes(dtype)
    paired = pairs_interleave(pairs, sW, p_out, S, L)
    items = -(-N // S) * groups
    splits = min(len(table) // 2 if paired else len(table), -(-BLOCKED_MIN_ITEMS // items))
    kW = weight_shape[3]
    pack = pack_table(tuple((ph.taps, pw.taps, int(row[6])) for (ph, pw), row in zip(pairs, table)),
                      kW, m, -(-C_in // groups // NR), NR)
    workspace = S * planes + (2 * Q_max * NR + 2 * L * L if paired else Q_max * NR)
    return PhasesPlan(BROADCAST_TILE, L, S, (P_h, P_w), Hq, Wq, planes, *arrays,
                      splits, workspace, pack, paired, Q_max)


def pairs_interleave(pairs, sW, pixels_out, S, L):
    """Whether the phases ``pairs`` (with their ``pixels_out`` lists, one per
    phase, for S samples) can be written in pairs by ``interleave_rows``
    (:attr:`PhasesPlan.paired`): an even number of phases, each pair (2i,
    2i + 1) the two column phases of one row phase at column stride 2, with
    equal positions; and in their list, every whole square of L positions
    two runs of L/2 positions of one output row each (columns 2 apart).

    DCGAN's 4x4 stride-2 8x8 -> 16x16 on 16 lanes: each square is two of a
    phase's rows of 8.

    >>> ph = phase_taps(4, 2, 1, 1, 16)
    >>> pairs = tuple((a, b) for a in ph for b in ph)
    >>> row = np.arange(8) * 2
    >>> out = np.concatenate([row + 32 * r for r in range(8)])
    >>> pairs_interleave(pairs, 2, [out] * 4, 1, 16), pairs_interleave(pairs, 2, [out] * 4, 1, 32)
    (True, False)
    """
    if sW != 2 or L < 2 or len(pairs) % 2:
        return False
    half = L // 2
    run = np.arange(half) * 2
    for i in range(0, len(pairs), 2):
        (ha, wa), (hb, wb) = pairs[i], pairs[i + 1]
        if ha != hb or wa.count != wb.count or abs(wa.first - wb.first) != 1:
            return False
        a, b = pixels_out[i][:S * ha.count * wa.count], pixels_out[i + 1][:S * hb.count * wb.count]
        if len(a) != len(b) or not np.array_equal(a, b):
            return False
        squares = a[:len(a) - len(a) % L].reshape(-1, 2, half)
        if not np.array_equal(squares - squares[:, :, :1], np.broadcast_to(run, squares.shape)):
            return False
    return True


@functools.lru_cache(maxsize=256)
def pack_table(phases, kW, per_group, blocks, R):
    """Where each tap of some stride phases' sub-kernels goes when they are
    packed for a tile of R lanes, one after another (``pack_phase_lanes``).

    Parameters
    ----------
    phases : tuple of (taps_h, taps_w, start)
        Per phase: its taps along each axis (:func:`phase_taps`) and where
        its packed sub-kernel, (G, B, M, th, tw, R), starts.
    kW : int
        The weight's width: tap (i, j) is element ``i * kW + j`` of a plane.
    per_group, blocks : int
        M, the conv's output channels per group (the packed K is M * th *
        tw), and B, the blocks of R of its input channels per group.

    Returns
    -------
    ndarray, shape (sum th * tw, 4), int64, read-only
        Per tap of each phase, row-major: its element in a weight plane, the
        offset of its row (R lanes) for g = b = m = 0, and the offsets to add
        per unit of g * B * M + m and per block b.

    >>> pack_table((((2, 0), (3, 1), 0),), 4, 256, 2, 64)[:2].tolist()
    [[11, 0, 256, 65536], [9, 64, 256, 65536]]
    """
    rows = []
    for taps_h, taps_w, start in phases:
        per = len(taps_h) * len(taps_w) * R
        rows += [(i * kW + j, start + (a * len(taps_w) + c) * R, per, per_group * per)
                 for a, i in enumerate(taps_h) for c, j in enumerate(taps_w)]
    table = np.array(rows, dtype=np.int64).reshape(-1, 4)
    table.setflags(write=False)
    return table


def _equal_blocks(K, cap):
    """The block length that cuts K taps into equal blocks of at most ``cap``.

    >>> _equal_blocks(147, 128), _equal_blocks(576, 128), _equal_blocks(9, 128)
    (74, 116, 9)
    """
    cap = max(1, cap)
    return -(-K // -(-K // cap))


class BroadcastReducePlan(NamedTuple):
    """How ``conv_weight_grad_broadcast`` cuts one call: as :class:`ReducePlan`,
    on the channel-vector tile (taps broadcast, output channels in vectors)."""

    tile: BroadcastTile
    """MR taps x NV vectors of output channels (:data:`BROADCAST_TILE`)."""
    lanes: int
    """Elements per vector."""
    chunks: int
    """B, batch chunks, as in :class:`ReducePlan`."""
    channels: int
    """C_pad, C_out/G rounded up to whole tiles of NR channels: the partial
    gradients are (B, G, C_pad / NR, K, NR), grad_output's channels-last copy
    (C_pad / NR, S * P, NR)."""
    Hq: int
    """Rows of a phase plane (a whole sample's)."""
    Wq: int
    """Columns of a phase plane, the row stride."""
    offs: np.ndarray
    """(K + MR,) int64: the forward's tap offsets, then MR zeros read by the
    last tile of taps."""
    samples: int
    """S, samples whose pixels one tile sums over at a time."""
    steps: np.ndarray
    """(S * P,) int64: for pixel (s, oh, ow), in that order, its offset into the
    S samples' planes, s * sample planes + oh * Wq + ow."""
    splits: int
    """Ranges of channel blocks per (chunk, group), as in :class:`ReducePlan`."""
    planes: int
    """Elements of S samples' planes; grad_output's copy follows them."""
    workspace: int
    """Elements of one chunk's buffer: the planes, then S * P * C_pad."""


@functools.lru_cache(maxsize=256)
def broadcast_reduce_plan(N, weight_shape, geometry, groups, H_out, W_out, dtype,
                          budget_elements):
    """The :class:`BroadcastReducePlan` of a conv weight gradient; arguments as
    :func:`reduce_plan`. S is the least number of samples with
    :data:`BROADCAST_REDUCE_STEPS` pixels, within :data:`REDUCE_ITEM_ELEMENTS` and
    half the budget (each pass over S samples loads and stores the chunk's
    whole partial gradient: fewer, longer passes)."""
    C_out, C_in_g, kH, kW = weight_shape
    C_out_g = C_out // groups
    K = C_in_g * kH * kW
    P = H_out * W_out
    sH, sW = geometry[:2]
    tile = BROADCAST_TILE
    width = lanes(dtype)
    NR = tile.vectors * width
    c_pad = -(-C_out_g // NR) * NR
    chunks = max(1, min(N, MAX_BATCH_CHUNKS, budget_elements // (4 * groups * c_pad * K)))
    if chunks > 1 and (chunks * groups) % 2:
        chunks -= 1                 # an even number of items: equal shares on 2 threads
    qh, qw = _phase_extent((kH, kW), geometry)
    Hq, Wq = H_out + qh, W_out + qw
    offs = np.concatenate([_phase_offsets(C_in_g, (kH, kW), geometry, Hq, Wq),
                           np.zeros(tile.rows, dtype=np.int64)])
    sample_len = C_in_g * sH * sW * Hq * Wq
    per_sample = sample_len + P * c_pad
    S = max(1, min(-(-N // chunks), -(-BROADCAST_REDUCE_STEPS // P),
                   REDUCE_ITEM_ELEMENTS // per_sample, budget_elements // (2 * per_sample)))
    s, oh, ow = np.unravel_index(np.arange(S * P), (S, H_out, W_out))
    steps = (s * sample_len + oh * Wq + ow).astype(np.int64)
    co_blocks = c_pad // NR
    splits = 2 if chunks * groups == 1 and co_blocks > 1 else 1
    return BroadcastReducePlan(tile, width, chunks, c_pad, Hq, Wq, offs, S, steps, splits,
                               S * sample_len, S * per_sample)


class PhaseTaps(NamedTuple):
    """One stride phase of one axis of an input gradient, as a stride-1
    correlation of grad_output (see :func:`phase_taps`)."""

    first: int
    """i0, the first input position of the phase (positions i0, i0 + s, ...)."""
    count: int
    """Input positions in the phase."""
    taps: tuple
    """The kernel taps that reach the phase, in reverse order."""
    padding: int
    """Zero padding before grad_output of the correlation."""
    dilation: int
    """Spacing of those taps in grad_output positions."""


@functools.lru_cache(maxsize=256)
def phase_table(phases, k):
    """The phases of :func:`phase_taps` as an (R, 5 + k) int64 array for the
    kernels: first, count, padding, dilation, number of taps, the taps (zero
    past them).

    >>> phase_table(phase_taps(3, 2, 1, 1, 6), 3).tolist()
    [[1, 3, 0, 1, 2, 2, 0, 0], [0, 3, 0, 1, 1, 1, 0, 0]]
    """
    table = np.zeros((len(phases), 5 + k), dtype=np.int64)
    for row, ph in zip(table, phases):
        row[:5] = ph.first, ph.count, ph.padding, ph.dilation, len(ph.taps)
        row[5:5 + len(ph.taps)] = ph.taps
    return table


def phase_margins(phases, out_len):
    """(before, after): the zeros around grad_output's out_len positions
    within which every phase's correlation reads: position m of a phase
    reads m - padding + j * dilation for its taps j.

    >>> phase_margins(phase_taps(3, 2, 1, 1, 6), 3)     # position 5 reads grad_output[3]
    (0, 1)
    """
    before = max([0] + [ph.padding for ph in phases])
    after = max([0] + [ph.count - 1 - ph.padding + (len(ph.taps) - 1) * ph.dilation
                       - (out_len - 1) for ph in phases])
    return before, after


def phase_taps(k, s, p, d, size):
    """The 1-D plan of one axis of the input gradient cut into its s phases.

    Parameters
    ----------
    k, s, p, d : int
        Kernel size, stride, padding (before) and dilation of the conv.
    size : int
        The input's length along the axis.

    Returns
    -------
    phases : tuple of PhaseTaps
        One per phase with at least one tap and one position.

    Notes
    -----
    An input position i (padded: u = i + p) receives grad_output[o] * w[t] for
    u = o*s + t*d, so the taps of phase rho = u mod s are those with
    t*d = rho (mod s), and within a phase the sum is a stride-1 correlation of
    grad_output with those taps in reverse: output m of the correlation is
    position ``first + m*s`` and reads grad_output[m - padding + j*dilation]
    with tap ``taps[j]``.
    """
    by_phase = {}               # only the phases some tap reaches: at most k of the s
    for t in range(k):
        by_phase.setdefault((t * d) % s, []).append(t)
    phases = []
    for rho, taps in sorted(by_phase.items()):
        i0 = (rho - p) % s
        count = len(range(i0, size, s))
        if count == 0:
            continue
        q = [(t * d - rho) // s for t in taps]
        dil = q[1] - q[0] if len(q) > 1 else 1
        m0 = (i0 + p - rho) // s
        phases.append(PhaseTaps(i0, count, tuple(taps[::-1]), q[0] + (len(q) - 1) * dil - m0, dil))
    return tuple(phases)
