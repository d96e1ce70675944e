"""The work plans of deconv.kernels.plan: named fields, and the invariants the kernels
rely on, checked by brute force: items cover the output exactly once, every tap
offset reads the padded input position the conv formula names, workspaces hold
every read and stay within their budgets, and the phase taps of a strided input
gradient are exactly the (tap, output) pairs that reach each input position."""

import itertools
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deconv.kernels import plan

DTYPES = [np.dtype(np.float32), np.dtype(np.float64)]


# ---------------------------------------------------------------------------
# strategies: valid shapes by construction
# ---------------------------------------------------------------------------

@st.composite
def conv_shapes(draw):
    """(weight_shape, geometry, groups, N, H_out, W_out, dtype) of some conv."""
    groups = draw(st.integers(1, 3))
    c_out_g = draw(st.sampled_from([1, 2, 3, 4, 5, 9]))
    c_in_g = draw(st.integers(1, 5))
    kH, kW = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sH, sW = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    pH, pW = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    dH, dW = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    N = draw(st.integers(1, 20))
    H_out, W_out = draw(st.integers(1, 40)), draw(st.integers(1, 70))
    dtype = draw(st.sampled_from(DTYPES))
    return ((groups * c_out_g, c_in_g, kH, kW), (sH, sW, pH, pW, dH, dW), groups, N,
            H_out, W_out, dtype)


def _reads(offset, c_in_g, geometry, Hq, Wq):
    """The padded input position (channel, row, column) that element ``offset`` of
    the phase planes holds: buf[c][(a*sW + b)*Hq*Wq + i*Wq + j] = x_pad[c, i*sH + a, j*sW + b]."""
    sH, sW = geometry[:2]
    c, rest = divmod(offset, sH * sW * Hq * Wq)
    phase, rest = divmod(rest, Hq * Wq)
    i, j = divmod(rest, Wq)
    a, b = divmod(phase, sW)
    assert c < c_in_g
    return c, i * sH + a, j * sW + b


# ---------------------------------------------------------------------------
# constants and small helpers
# ---------------------------------------------------------------------------

def test_plans_are_named_tuples():
    assert plan.ForwardTile._fields == ("channels", "vectors")
    assert plan.ReduceTile._fields == ("channels", "taps")
    assert plan.ForwardPlan._fields == ("tile", "lanes", "rows", "Hq", "Wq", "offs", "planes",
                                        "workspace", "vectors", "row_vectors", "k_block", "span")
    assert plan.ReducePlan._fields == ("tile", "lanes", "chunks", "Hq", "Wq", "offs", "samples",
                                       "runs", "full", "span", "carry_taps", "splits",
                                       "workspace")
    assert plan.PhaseTaps._fields == ("first", "count", "taps", "padding", "dilation")


def test_one_vector_width():
    assert plan.lanes(np.float32) * 4 == plan.lanes(np.float64) * 8 == plan.VECTOR_BYTES
    assert plan.VECTOR_BYTES == plan.TARGET.vector_bytes
    assert [plan.lanes(np.float32, t) for t in map(plan.TARGETS.get, ("avx512", "avx2", "neon"))] \
        == [16, 8, 4]


def test_the_target_is_read_as_numba_reads_it():
    """NUMBA_CPU_FEATURES wins; a CPU name alone keeps the host's features; 'generic'
    has none (numba.core.config's rule), in a fresh process each."""
    def target(**env):
        script = "from deconv.kernels import plan; print(plan.TARGET.name, plan.FORWARD_TILE)"
        full = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_CPU")}
        full.update(env)
        out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True,
                             text=True, timeout=120, env=full)
        return out.stdout.split(None, 1)
    avx2 = "+avx,+avx2,+fma,+sse2,-avx512f"
    assert target(NUMBA_CPU_NAME="haswell", NUMBA_CPU_FEATURES=avx2) == [
        "avx2", "ForwardTile(channels=4, vectors=3)\n"]
    assert target(NUMBA_CPU_NAME="generic")[0] == "sse2"
    assert target(NUMBA_CPU_NAME="haswell")[0] == target()[0]


@pytest.mark.parametrize("name", sorted(plan.TARGETS))
def test_tiles_fill_three_quarters_of_the_registers_and_leave_room_for_a_step(name):
    """Each tile's accumulators are 3/4 of the target's vector registers, and with the
    vectors one step loads (NV loads of b and a broadcast; NK vectors of x and one of
    dy; NV vectors of a and a broadcast) they fit the registers. (That LLVM then keeps
    them there, without a spill, is tests/test_tile_registers.py's.)"""
    target = plan.TARGETS[name]
    tiles = plan.tiles_for(target)
    R = target.registers
    for (a, b), read in [(tiles.forward, tiles.forward.vectors + 1),
                         (tiles.reduce, tiles.reduce.taps + 1),
                         (tiles.broadcast, tiles.broadcast.vectors + 1)]:
        assert a * b == R * 3 // 4
        assert a * b + read <= R
    assert tiles.reduce_depthwise.taps + tiles.reduce_depthwise.taps + 1 <= R


@given(items=st.integers(0, 1000), T=st.integers(1, 70))
def test_chunks_cover_the_items_once_and_evenly(items, T):
    bounds = [plan.chunk(items, t, T) for t in range(T)]
    assert bounds[0][0] == 0 and bounds[-1][1] == items
    assert all(hi == lo for (_, hi), (lo, _) in zip(bounds, bounds[1:]))
    sizes = [hi - lo for lo, hi in bounds]
    assert min(sizes) >= 0 and max(sizes) - min(sizes) <= 1


def test_direct_and_pointwise():
    assert [plan.direct(1, m) for m in (1, 2, 3)] == [True, True, False]
    assert not plan.direct(2, 1)
    assert plan.is_pointwise((4, 3, 1, 1), (1, 1, 0, 0, 1, 1), (5, 6), (5, 6))
    assert not plan.is_pointwise((4, 3, 1, 1), (1, 1, 0, 0, 1, 1), (5, 6), (4, 6))
    assert not plan.is_pointwise((4, 3, 1, 1), (2, 1, 0, 0, 1, 1), (5, 6), (5, 6))


@given(c=st.integers(1, 64), taps=st.integers(1, 9), pixels=st.integers(1, 500),
       budget=st.integers(1, 50000))
def test_channel_block_is_the_largest_divisor_that_fits(c, taps, pixels, budget):
    block = plan.channel_block(c, taps, pixels, budget)
    assert c % block == 0
    fits = [b for b in range(1, c + 1) if c % b == 0 and b * taps * pixels <= budget]
    assert block == (max(fits) if fits else 1)


# ---------------------------------------------------------------------------
# the forward plan
# ---------------------------------------------------------------------------

@given(shape=conv_shapes())
@settings(max_examples=60, deadline=None)
def test_forward_plan_covers_every_output_row_once_and_reads_the_right_input(shape):
    weight_shape, geometry, groups, N, H_out, W_out, dtype = shape
    _, c_in_g, kH, kW = weight_shape
    sH, sW, _, _, dH, dW = geometry
    fwd = plan.forward_plan(N * groups, weight_shape, geometry, H_out, W_out, dtype)
    assert fwd.tile == plan.FORWARD_TILE and fwd.lanes == plan.lanes(dtype)
    # items of `rows` rows: every output row in exactly one item
    tiles = -(-H_out // fwd.rows)
    covered = [r for t in range(tiles) for r in range(t * fwd.rows, min((t + 1) * fwd.rows, H_out))]
    assert covered == list(range(H_out))
    # enough items to share out, where there are rows to cut
    assert N * groups * tiles >= min(plan.BLOCKED_MIN_ITEMS, N * groups * H_out)
    # an item's planes within the budget, unless one row alone exceeds it
    assert fwd.planes == c_in_g * sH * sW * fwd.Hq * fwd.Wq
    assert fwd.rows == 1 or fwd.planes <= plan.BLOCKED_ITEM_ELEMENTS
    # tap k = (c, i, j) of output (r, w) of an item reads x_pad[c, r*sH + i*dH, w*sW + j*dW]
    assert fwd.offs.shape == (c_in_g * kH * kW,) and fwd.offs.dtype == np.int64
    for k, (c, i, j) in enumerate(itertools.product(range(c_in_g), range(kH), range(kW))):
        for r, w in itertools.product(range(fwd.rows), range(W_out)):
            offset = fwd.offs[k] + r * fwd.Wq + w
            assert offset < fwd.planes
            assert _reads(offset, c_in_g, geometry, fwd.Hq, fwd.Wq) == (c, r * sH + i * dH,
                                                                        w * sW + j * dW)
    # the vectors: every output of the item's rows in exactly one vector, in row
    # order; whole vectors (read past a row's end) stay inside the workspace
    V = fwd.rows * fwd.row_vectors
    table = fwd.vectors
    assert table.dtype == np.int64 and not table.flags.writeable
    assert len(table) % fwd.tile.vectors == 0 and len(table) - V < fwd.tile.vectors
    outputs = [o for b_off, o_off, count in table[:V] for o in range(o_off, o_off + count)]
    assert outputs == list(range(fwd.rows * W_out))
    assert all(count == 0 for count in table[V:, 2])
    assert all(b_off == (o_off // W_out) * fwd.Wq + o_off % W_out for b_off, o_off, _ in table)
    assert fwd.offs.max() + table[:, 0].max() + fwd.lanes <= fwd.workspace
    assert fwd.k_block == plan.K_BLOCK
    # spans of whole tiles, at most one row's, whose input per block of taps fits
    NV = fwd.tile.vectors
    assert fwd.span % NV == 0 and NV <= fwd.span <= -(-fwd.row_vectors // NV) * NV
    assert (fwd.span == NV or -(-plan.K_BLOCK // kW) * fwd.span * plan.VECTOR_BYTES
            <= plan.SPAN_INPUT_BYTES)


@given(h=st.integers(1, 80), w=st.integers(1, 600), n_items=st.integers(1, 20),
       dtype=st.sampled_from([np.dtype(np.float32), np.dtype(np.float64)]))
def test_pointwise_rows_recut_the_plane_into_the_most_work_per_tile(h, w, n_items, dtype):
    rows, cols = plan.pointwise_rows(h, w, n_items, dtype)
    assert rows * cols == h * w
    L, NV = plan.lanes(dtype), plan.FORWARD_TILE.vectors
    need = min(-(-plan.BLOCKED_MIN_ITEMS // n_items), h * w)

    def score(c):
        r = h * w // c
        per_row = -(-c // L)
        # the vectors of one item, in tiles of NV
        v = r // min(r, need) * per_row
        return c / (per_row * L) * v / (-(-v // NV) * NV), r >= need, c

    # a brute force over every divisor, the plane as it is where nothing beats it
    best = max((c for c in range(1, h * w + 1) if (h * w) % c == 0), key=score)
    assert (rows, cols) == ((h, w) if score(best) <= score(w) else (h * w // best, best))
    # seen again, the re-cut plane stays as it is
    assert plan.pointwise_rows(rows, cols, n_items, dtype) == (rows, cols)
    # items as the score counted them, where the forward reads the input in place
    if cols % L == 0:
        fwd = plan.forward_plan(n_items, (1, 1, 1, 1), (1, 1, 0, 0, 1, 1), rows, cols, dtype,
                                True)
        assert fwd.rows == rows // min(rows, need) and fwd.workspace == 0


def test_forward_plan_is_cached_and_depends_on_shapes_only():
    args = (4, (8, 3, 3, 3), (1, 1, 1, 1, 1, 1), 32, 32, np.dtype(np.float32))
    assert plan.forward_plan(*args) is plan.forward_plan(*args)


# ---------------------------------------------------------------------------
# the weight-gradient plan
# ---------------------------------------------------------------------------

@given(shape=conv_shapes(), budget_scale=st.sampled_from([1, 4, 64]))
@settings(max_examples=60, deadline=None)
def test_reduce_plan_covers_every_pixel_sample_and_channel_once(shape, budget_scale):
    weight_shape, geometry, groups, N, H_out, W_out, dtype = shape
    C_out, c_in_g, kH, kW = weight_shape
    C_out_g, K, P = C_out // groups, c_in_g * kH * kW, H_out * W_out
    sH, sW = geometry[:2]
    budget = budget_scale * N * c_in_g * groups * 10 * 10
    red = plan.reduce_plan(N, weight_shape, geometry, groups, H_out, W_out, dtype, budget)
    lanes = plan.lanes(dtype)
    assert red.lanes == lanes
    assert red.tile == (plan.REDUCE_TILE_DEPTHWISE if C_out_g == 1 else plan.REDUCE_TILE)
    NK = red.tile.taps
    # batch chunks: each sample in one chunk; partials within a quarter of the budget
    assert 1 <= red.chunks <= min(N, plan.MAX_BATCH_CHUNKS)
    samples = [n for b in range(red.chunks) for n in range(*plan.chunk(N, b, red.chunks))]
    assert samples == list(range(N))
    assert red.chunks == 1 or (red.chunks * groups % 2 == 0
                               and red.chunks * C_out * K <= budget // 4)
    # channel blocks of the tile, split in `splits` ranges: each block once
    co_blocks = -(-C_out_g // red.tile.channels)
    assert red.splits == (2 if red.chunks * groups == 1 and co_blocks > 1 else 1)
    blocks = [blk for t in range(red.splits) for blk in range(*plan.chunk(co_blocks, t, red.splits))]
    assert blocks == list(range(co_blocks))
    # offs: the forward's taps of a whole sample, then NK zeros for the last tile of taps
    fwd = plan.forward_plan(N * groups, weight_shape, geometry, H_out, W_out, dtype)
    # the forward's planes, rows rounded up to whole vectors (which start on a line)
    assert red.Wq == -(-fwd.Wq // lanes) * lanes and red.Hq == H_out + fwd.Hq - fwd.rows
    assert red.workspace * np.dtype(dtype).itemsize % plan.ALIGNMENT == 0
    assert red.offs.shape == (K + NK,) and not red.offs[K:].any()
    # runs: every pixel of the S samples exactly once, whole vectors first
    S = red.samples
    sample_len = c_in_g * sH * sW * red.Hq * red.Wq
    assert 1 <= S <= N and (S == 1 or S * sample_len <= budget // 4)
    assert red.runs.shape[1] == 3 and red.runs.dtype == np.int64
    assert red.full == H_out * (W_out // lanes)
    lengths = red.runs[:, 2]
    assert (lengths[:S * red.full] == lanes).all() and (lengths[S * red.full:] < lanes).all()
    seen = []
    for dy_off, x_off, length in red.runs:
        s, p = divmod(int(dy_off), C_out * P)
        oh, ow = divmod(p, W_out)
        assert ow + length <= W_out
        assert x_off == s * sample_len + oh * red.Wq + ow
        seen.extend((s, oh, ow + l) for l in range(length))
    assert sorted(seen) == list(itertools.product(range(S), range(H_out), range(W_out)))
    # whole vectors read inside the workspace (short runs are loaded with masks)
    full_runs = red.runs[:S * red.full]
    if len(full_runs):
        assert red.offs.max() + full_runs[:, 1].max() + lanes <= red.workspace
    assert red.workspace >= S * sample_len
    # spans: whole runs whose operands fit L1 with the tile's taps
    dH, dW = geometry[4:]
    if (kH - 1) * dH >= sH or (kW - 1) * dW >= sW:
        assert red.span == plan.reduce_span(kW, red.tile) >= 1
    else:
        # windows that do not overlap: one pass over the S samples' runs
        assert red.span == max(1, S * red.full)
    # blocks of whole tiles of taps, whose carried accumulators end the workspace
    assert red.carry_taps % NK == 0 and red.carry_taps >= NK
    carry = red.carry_taps * red.tile.channels * lanes
    if S * red.full > red.span:
        assert carry == red.tile.channels * NK * lanes or carry <= budget // 16
    else:
        # one span: nothing carried, the taps in one block
        assert red.carry_taps >= K and carry > 0
        carry = 0
    assert red.workspace == plan.aligned_count(S * sample_len + lanes + red.Wq + carry, dtype)


# ---------------------------------------------------------------------------
# the phases of a strided input gradient
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("k, s, p, d, size", list(itertools.product(
    [1, 2, 3, 4, 5], [1, 2, 3], [0, 1, 2, 4], [1, 2, 3], [1, 2, 7, 8])))
def test_phase_taps_match_a_brute_force_count(k, s, p, d, size):
    """Each input position of a strided input gradient gets exactly the taps (and the
    grad_output positions) its phase's correlation gives it."""
    n_out = (size + 2 * p - d * (k - 1) - 1) // s + 1
    brute = {i: sorted((t, o) for t in range(k) for o in range(max(n_out, 0))
                       if o * s + t * d == i + p) for i in range(size)}
    seen = {}
    for phase in plan.phase_taps(k, s, p, d, size):
        assert isinstance(phase, plan.PhaseTaps)
        for m in range(phase.count):
            # correlation output m reads grad_output[m - padding + j*dilation] with tap taps[j]
            seen[phase.first + m * s] = sorted(
                (t, m - phase.padding + j * phase.dilation) for j, t in enumerate(phase.taps)
                if 0 <= m - phase.padding + j * phase.dilation < max(n_out, 0))
    for i in range(size):
        assert seen.get(i, []) == brute[i], i


# ---------------------------------------------------------------------------
# the module itself
# ---------------------------------------------------------------------------

def test_plan_module_imports_without_numba():
    """plan.py is plain Python and NumPy (llvmlite only to ask LLVM for the CPU):
    loaded on its own, it compiles nothing."""
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "deconv", "kernels", "plan.py")
    script = textwrap.dedent(f"""
        import importlib.util, sys
        spec = importlib.util.spec_from_file_location("plan_alone", {path!r})
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        assert module.FORWARD_TILE.channels >= 1
        print(sorted(m for m in sys.modules if m.split('.')[0] in ('numba', 'deconv')))
    """)
    out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True,
                         text=True, timeout=120)
    assert out.stdout.strip() == "[]"
