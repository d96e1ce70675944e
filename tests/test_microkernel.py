"""The micro-kernels of deconv.kernels.microkernel on their own: small @njit drivers
call ``register_tile`` and ``register_tile_reduce`` on NumPy buffers, checked
element by element against the formulas of the module docstring.

Both tiles sum in a fixed order, with one rounding per fused multiply-add, so the
reference replays that order exactly: every fused multiply-add is computed in
exact rational arithmetic and rounded once to the dtype (``_fma``). Results must
then be bitwise equal. The tests cover every tile shape the plan uses (and two
others: the tile shape is a compile-time literal of any size), masked tails of
rows, columns and runs, and check that masked-off outputs are never written
(sentinels beside the tile stay as they were) and masked-off inputs never reach
a stored result (NaN everywhere a stored output does not read)."""

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit
from numba.core.errors import TypingError

from deconv.kernels import plan
from deconv.kernels.common import compile_time
from deconv.kernels.microkernel import register_tile, register_tile_reduce

DTYPES = [np.float32, np.float64]
SENTINEL = -12345.0

# (tile, dtype) pairs the plan uses, and two more shapes (other vector widths, one channel)
FORWARD_TILES = [(plan.FORWARD_TILE.channels, plan.FORWARD_TILE.vectors, plan.lanes(dt), dt)
                 for dt in DTYPES] + [(3, 1, 8, np.float32), (1, 3, 4, np.float64)]
REDUCE_TILES = [(tile.channels, tile.taps, plan.lanes(dt), dt)
                for tile in (plan.REDUCE_TILE, plan.REDUCE_TILE_DEPTHWISE)
                for dt in DTYPES] + [(2, 3, 8, np.float32)]


# ---------------------------------------------------------------------------
# drivers: the kernels' calls, with buffers instead of planes
# ---------------------------------------------------------------------------

@njit
def _run_tile(out, out_offset, out_stride, m_store, n_vec, a, b, b_offset, offs, vec, bias,
              has_bias, accumulate, MR, NV, LANES):
    """register_tile with out at out[out_offset:] and b at b[b_offset:]; a: (K, MR);
    vec: (NV, 3)."""
    size = out.itemsize
    register_tile(out.dtype.type(0), out.ctypes.data + out_offset * size, out_stride, m_store,
                  n_vec, a.ctypes.data, b.ctypes.data + b_offset * size, offs.ctypes.data,
                  offs.shape[0], vec.ctypes.data, bias.ctypes.data, has_bias, accumulate,
                  MR, NV, LANES)


@njit
def _run_reduce(out, out_offset, out_stride, m_store, n_store, dy, dy_stride, x, offs, runs,
                tail, MR, NK, LANES):
    """register_tile_reduce with out at out[out_offset:]; offs: (NK,); runs, tail: (R, 3).
    One call, no carry (its buffer is NaN: read, it would show)."""
    carry = np.full(MR * NK * LANES, np.nan, dtype=out.dtype)
    register_tile_reduce(out.dtype.type(0), out.ctypes.data + out_offset * out.itemsize,
                         out_stride, m_store, n_store, dy.ctypes.data, dy_stride, x.ctypes.data,
                         offs.ctypes.data, runs.ctypes.data, runs.shape[0], tail.ctypes.data,
                         tail.shape[0], carry.ctypes.data, False, False, MR, NK, LANES)


@njit
def _run_reduce_in_spans(out, out_offset, out_stride, m_store, n_store, dy, dy_stride, x, offs,
                         runs, tail, cuts, MR, NK, LANES):
    """As _run_reduce, the whole runs cut at ``cuts`` into calls that carry their
    accumulators (NaN in the carry before the first call), the short runs with the last."""
    carry = np.full(MR * NK * LANES, np.nan, dtype=out.dtype)
    bounds = [0] + list(cuts) + [runs.shape[0]]
    for c in range(len(bounds) - 1):
        r0, r1 = bounds[c], bounds[c + 1]
        last = c == len(bounds) - 2
        register_tile_reduce(out.dtype.type(0), out.ctypes.data + out_offset * out.itemsize,
                             out_stride, m_store, n_store, dy.ctypes.data, dy_stride,
                             x.ctypes.data, offs.ctypes.data, runs[r0:].ctypes.data, r1 - r0,
                             tail.ctypes.data, tail.shape[0] if last else 0, carry.ctypes.data,
                             c > 0, not last, MR, NK, LANES)


# ---------------------------------------------------------------------------
# exact reference arithmetic
# ---------------------------------------------------------------------------

def _round(q, dtype):
    """The value of dtype nearest to the rational q, ties to even."""
    if dtype is np.float64:
        return np.float64(float(q))         # int / int in CPython is correctly rounded
    guess = np.float32(float(q))            # within one float32 step of the answer
    candidates = [guess, np.nextafter(guess, np.float32(np.inf)),
                  np.nextafter(guess, np.float32(-np.inf))]
    return min(candidates, key=lambda v: (abs(Fraction(float(v)) - q),
                                          int(v.view(np.uint32)) & 1))


def _fma(a, b, c, dtype):
    """a*b + c as the tiles' multiply-add (llvm.fmuladd) computes it on this
    process's target: rounded once where the CPU has a fused multiply-add, else
    the product rounded, then the sum."""
    if plan.TARGET.fma:
        return _round(Fraction(float(a)) * Fraction(float(b)) + Fraction(float(c)), dtype)
    return _round(Fraction(float(_round(Fraction(float(a)) * Fraction(float(b)), dtype)))
                  + Fraction(float(c)), dtype)


@pytest.mark.skipif(not plan.TARGET.fma, reason="the target has no fused multiply-add: "
                    "the tiles round twice there, as _fma does")
def test_fma_reference_rounds_once():
    """The reference's own check: a case where rounding twice gives another float32."""
    a = np.float32(1 + 2.0 ** -12)
    c = np.float32(-1)
    # a*a = 1 + 2^-11 + 2^-24: exact fma keeps the 2^-24, a product rounded first loses it
    assert _fma(a, a, c, np.float32) == np.float32(2.0 ** -11 + 2.0 ** -24)
    assert np.float32(a * a) + c == np.float32(2.0 ** -11)
    assert _fma(np.float32(3), np.float32(5), np.float32(0.5), np.float32) == 15.5


# ---------------------------------------------------------------------------
# register_tile
# ---------------------------------------------------------------------------

def _tile_case(rng, dtype, MR, NV, LANES, K, m_store, n_vec, counts, has_bias, accumulate):
    """Buffers and the expected out of one register_tile call.

    Vector v of the tile reads b at a random offset and is stored at
    out + v * (LANES + 2) (apart, with sentinels between), its first
    ``counts[v]`` lanes if v < n_vec. Every element of b, a and bias that no
    stored output reads is NaN; out is SENTINEL around the stored outputs, and
    random where they are (the earlier blocks' sums, when ``accumulate``).
    """
    offs = rng.integers(0, 3 * LANES, K).astype(np.int64)
    b_offset = 5
    b = rng.uniform(-1, 1, b_offset + 7 * LANES + 7).astype(dtype)
    vec = np.array([(rng.integers(0, 3 * LANES), v * (LANES + 2), counts[v]) for v in range(NV)],
                   dtype=np.int64).reshape(NV, 3)
    a = rng.uniform(-1, 1, (K, MR)).astype(dtype)
    bias = rng.uniform(-1, 1, MR).astype(dtype)
    out_stride = NV * (LANES + 2) + 3
    out_offset = 4
    out = np.full(out_offset + MR * out_stride + 9, SENTINEL, dtype=dtype)
    stored = [(v, l) for v in range(min(n_vec, NV)) for l in range(counts[v])]
    b_read = {b_offset + offs[k] + vec[v, 0] + l for k in range(K) for v, l in stored}
    b[[p not in b_read for p in range(b.size)]] = np.nan
    a[:, m_store:] = np.nan
    bias[m_store:] = np.nan
    if not has_bias:
        bias[:] = np.nan
    expected = out.copy()
    for i in range(m_store):
        for v, l in stored:
            p = out_offset + i * out_stride + vec[v, 1] + l
            acc = dtype(0)
            for k in range(K):
                acc = _fma(a[k, i], b[b_offset + offs[k] + vec[v, 0] + l], acc, dtype)
            if accumulate:
                out[p] = rng.uniform(-1, 1)
                acc = out[p] + acc
            expected[p] = acc + bias[i] if has_bias else acc
    args = (out, out_offset, out_stride, m_store, n_vec, a, b, b_offset, offs, vec, bias,
            has_bias, accumulate)
    return args, expected


def _check_tile(args, expected, MR, NV, LANES):
    out = args[0]
    _run_tile(*args, *compile_time(MR, NV, LANES))
    assert not np.isnan(out).any()
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("MR, NV, LANES, dtype", FORWARD_TILES)
@pytest.mark.parametrize("has_bias", [True, False])
@pytest.mark.parametrize("accumulate", [False, True])
@pytest.mark.parametrize("K", [1, 8, 9])
def test_register_tile_full_tile_is_exact(MR, NV, LANES, dtype, has_bias, accumulate, K):
    """out[i, v] = ((out if accumulating) + sum_k a[k, i] * b[b_off_v + offs[k] + lanes])
    + bias[i] for the whole MR x NV tile, in the kernel's order of roundings: the
    unmasked stores, after taps in pairs only (K even), a last tap alone, or both."""
    rng = np.random.default_rng(MR * 100 + NV * 10 + LANES + has_bias + 2 * accumulate + 4 * K)
    args, expected = _tile_case(rng, dtype, MR, NV, LANES, K, MR, NV, [LANES] * NV, has_bias,
                                accumulate)
    _check_tile(args, expected, MR, NV, LANES)


@pytest.mark.parametrize("MR, NV, LANES, dtype", FORWARD_TILES)
@given(data=st.data())
@settings(max_examples=12, deadline=None)
def test_register_tile_masked_tails(MR, NV, LANES, dtype, data):
    """Tiles past the last channels (m_store < MR), past the item's last vector
    (n_vec < NV) and vectors short of a whole one (a row's last), with K = 0 (the
    bias alone, or nothing) to a few taps: only the stored part is written, and only
    that part of out is read when accumulating."""
    m_store = data.draw(st.integers(1, MR), label="m_store")
    n_vec = data.draw(st.integers(1, NV + 2), label="n_vec")
    counts = data.draw(st.lists(st.integers(0, LANES), min_size=NV, max_size=NV), label="counts")
    K = data.draw(st.integers(0, 6), label="K")
    has_bias = data.draw(st.booleans(), label="has_bias")
    accumulate = data.draw(st.booleans(), label="accumulate")
    seed = data.draw(st.integers(0, 2 ** 32 - 1), label="seed")
    args, expected = _tile_case(np.random.default_rng(seed), dtype, MR, NV, LANES, K, m_store,
                                n_vec, counts, has_bias, accumulate)
    _check_tile(args, expected, MR, NV, LANES)


def test_register_tile_blocks_add_up_to_the_sum():
    """A sum cut into blocks of taps (the first block stored, the others accumulated,
    the bias on the last) is the blocked sum: on small integers, where every partial
    sum is exact, it equals the plain NumPy formula."""
    MR, NV, LANES = *plan.FORWARD_TILE, plan.lanes(np.float64)
    rng = np.random.default_rng(3)
    K = 23
    a = rng.integers(-8, 9, (K, MR)).astype(np.float64)
    b = rng.integers(-8, 9, 300).astype(np.float64)
    offs = rng.integers(0, 300 - (NV + 1) * LANES, K).astype(np.int64)
    bias = rng.integers(-8, 9, MR).astype(np.float64)
    # vectors in reverse order, one of them short
    vec = np.array([((NV - 1 - v) * LANES, v * LANES, LANES - (v == 1)) for v in range(NV)],
                   dtype=np.int64)
    NR = NV * LANES
    out = np.full(MR * NR, SENTINEL)
    for k0 in range(0, K, 5):
        k1 = min(K, k0 + 5)
        _run_tile(out, 0, NR, MR, NV, np.ascontiguousarray(a[k0:k1]), b, 0, offs[k0:k1], vec,
                  bias, k1 == K, k0 > 0, *compile_time(MR, NV, LANES))
    sums = bias[:, None] + np.einsum("ki,kj->ij", a, b[offs[:, None] + np.arange(NR)])
    want = np.full((MR, NR), SENTINEL)
    for v, (b_off, o_off, count) in enumerate(vec):
        want[:, o_off:o_off + count] = sums[:, b_off:b_off + count]
    np.testing.assert_array_equal(out.reshape(MR, NR), want)


def test_tile_shape_must_be_a_compile_time_literal():
    out = np.zeros(64, dtype=np.float32)
    a = np.zeros((1, 8), dtype=np.float32)
    with pytest.raises(TypingError, match="compile_time"):
        _run_tile(out, 0, 32, 8, 2, a, out, 0, np.zeros(1, dtype=np.int64),
                  np.zeros((2, 3), dtype=np.int64), out, False, False, 8, 2, 16)


# ---------------------------------------------------------------------------
# register_tile_reduce
# ---------------------------------------------------------------------------

def _lane_sum(v, dtype):
    """The kernel's reduction over lanes: add the upper half to the lower, repeat."""
    v = np.asarray(v, dtype=dtype)
    while v.size > 1:
        half = v.size // 2
        v = v[:half] + v[half:]
    return v[0]


def _reduce_case(rng, dtype, MR, NK, LANES, n_full, tail_lengths, m_store, n_store):
    """Buffers and expected out of one register_tile_reduce call: n_full whole runs, then
    runs of the given lengths. Every element of dy and x that no stored output reads is
    NaN (the lanes beside a short run included); out is SENTINEL around the tile and
    random where it is accumulated into."""
    runs_total = n_full + len(tail_lengths)
    span = (runs_total + 2) * LANES
    dy_stride = span + 3
    dy = rng.uniform(-1, 1, MR * dy_stride + LANES).astype(dtype)
    x = rng.uniform(-1, 1, 4 * span).astype(dtype)
    offs = rng.integers(0, 2 * span, NK).astype(np.int64)
    lengths = [LANES] * n_full + list(tail_lengths)
    table = np.array([(rng.integers(0, span - LANES), rng.integers(0, span - LANES), n)
                      for n in lengths], dtype=np.int64).reshape(-1, 3)
    runs, tail = np.ascontiguousarray(table[:n_full]), np.ascontiguousarray(table[n_full:])
    dy_read = {i * dy_stride + d + l for i in range(m_store) for d, _, n in table
               for l in range(n)}
    x_read = {offs[j] + xo + l for j in range(n_store) for _, xo, n in table for l in range(n)}
    dy[[p not in dy_read for p in range(dy.size)]] = np.nan
    x[[p not in x_read for p in range(x.size)]] = np.nan
    out_stride = NK + 2
    out_offset = 3
    out = np.full(out_offset + MR * out_stride + 5, SENTINEL, dtype=dtype)
    expected = out.copy()
    for i in range(m_store):
        for j in range(n_store):
            p = out_offset + i * out_stride + j
            out[p] = expected[p] = rng.uniform(-1, 1)
            acc = [dtype(0)] * LANES
            for d, xo, n in table:               # whole runs first, then the short ones
                for l in range(n):
                    acc[l] = _fma(dy[i * dy_stride + d + l], x[offs[j] + xo + l], acc[l], dtype)
            expected[p] = expected[p] + _lane_sum(acc, dtype)
    args = (out, out_offset, out_stride, m_store, n_store, dy, dy_stride, x, offs, runs, tail)
    return args, expected


def _check_reduce(args, expected, MR, NK, LANES):
    out = args[0]
    _run_reduce(*args, *compile_time(MR, NK, LANES))
    assert not np.isnan(out).any()
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("MR, NK, LANES, dtype", REDUCE_TILES)
def test_register_tile_reduce_full_tile_is_exact(MR, NK, LANES, dtype):
    """out[i, j] += sum over runs and lanes of dy[i, ...] * x[offs[j] + ...], summed in
    the kernel's order: runs in order per lane, then the lanes by halving."""
    rng = np.random.default_rng(MR * 100 + NK * 10 + LANES)
    args, expected = _reduce_case(rng, dtype, MR, NK, LANES, 5, [LANES - 1, 3], MR, NK)
    _check_reduce(args, expected, MR, NK, LANES)


@pytest.mark.parametrize("MR, NK, LANES, dtype", REDUCE_TILES)
@given(data=st.data())
@settings(max_examples=12, deadline=None)
def test_register_tile_reduce_masked_tails(MR, NK, LANES, dtype, data):
    """Rows past the last channels, columns past the last taps, no whole runs or no short
    ones, short runs of any length: NaN beside a short run never reaches a sum, and
    nothing outside the stored rows and columns is written."""
    m_store = data.draw(st.integers(1, MR), label="m_store")
    n_store = data.draw(st.integers(1, NK), label="n_store")
    n_full = data.draw(st.integers(0, 4), label="n_full")
    tails = data.draw(st.lists(st.integers(1, LANES), max_size=3), label="tail lengths")
    seed = data.draw(st.integers(0, 2 ** 32 - 1), label="seed")
    args, expected = _reduce_case(np.random.default_rng(seed), dtype, MR, NK, LANES, n_full,
                                  tails, m_store, n_store)
    _check_reduce(args, expected, MR, NK, LANES)


@pytest.mark.parametrize("MR, NK, LANES, dtype", REDUCE_TILES)
@given(data=st.data())
@settings(max_examples=8, deadline=None)
def test_register_tile_reduce_in_spans_is_bitwise_one_call(MR, NK, LANES, dtype, data):
    """The runs cut into spans whose calls carry their accumulator vectors: the same
    bits as one call over all of them (every lane sums its pixels in the same order),
    out untouched until the last call."""
    n_full = data.draw(st.integers(1, 7), label="n_full")
    cuts = data.draw(st.lists(st.integers(0, n_full), min_size=1, max_size=3), label="cuts")
    tails = data.draw(st.lists(st.integers(1, LANES), max_size=2), label="tail lengths")
    seed = data.draw(st.integers(0, 2 ** 32 - 1), label="seed")
    args, expected = _reduce_case(np.random.default_rng(seed), dtype, MR, NK, LANES, n_full,
                                  tails, MR, NK)
    _run_reduce_in_spans(*args, np.array(sorted(cuts), dtype=np.int64),
                         *compile_time(MR, NK, LANES))
    np.testing.assert_array_equal(args[0], expected)


def test_register_tile_reduce_without_runs_adds_zero():
    MR, NK, LANES = *plan.REDUCE_TILE, plan.lanes(np.float32)
    rng = np.random.default_rng(4)
    args, expected = _reduce_case(rng, np.float32, MR, NK, LANES, 0, [], MR, NK)
    _check_reduce(args, expected, MR, NK, LANES)


def test_register_tile_reduce_float32_is_close_to_the_float64_sum():
    """Against a plain float64 sum (not the kernel's order): within a float32 rounding
    per term."""
    MR, NK, LANES = *plan.REDUCE_TILE, plan.lanes(np.float32)
    rng = np.random.default_rng(5)
    args, _ = _reduce_case(rng, np.float32, MR, NK, LANES, 6, [LANES // 3, LANES - 1], MR, NK)
    out, out_offset, out_stride, _, _, dy, dy_stride, x, offs, runs, tail = args
    before = out.astype(np.float64)
    _run_reduce(*args, *compile_time(MR, NK, LANES))
    table = np.concatenate([runs, tail])
    for i in range(MR):
        for j in range(NK):
            terms = [np.float64(dy[i * dy_stride + d + l]) * x[offs[j] + xo + l]
                     for d, xo, n in table for l in range(n)]
            p = out_offset + i * out_stride + j
            bound = 4 * len(terms) * np.finfo(np.float32).eps * (np.abs(terms).sum() + 1)
            assert abs(out[p] - (before[p] + np.sum(terms))) <= bound
