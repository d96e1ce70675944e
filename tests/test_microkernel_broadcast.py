"""The channel-vector tile ``register_tile_broadcast`` on its own: a small @njit driver
calls it on NumPy buffers, checked element by element against the formula of its
docstring, replayed in its order with one rounding per fused multiply-add (the exact
arithmetic of tests/test_microkernel.py), so results must be bitwise equal.

Covered: every tile shape the plan uses and two others (AVX2-wide vectors, one
vector), rows past m_store and lanes past n_store never written (sentinels stay) and
never reading NaN into a stored result, the bias on and off, and a sum cut into
calls with ``accumulate``: each block summed from 0, then added to out (blocked
accumulation), bitwise."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit

from deconv.kernels import plan
from deconv.kernels.common import compile_time
from deconv.kernels.microkernel import register_tile_broadcast
from test_microkernel import SENTINEL, _fma

DTYPES = [np.float32, np.float64]
TILES = [(plan.BROADCAST_TILE.rows, plan.BROADCAST_TILE.vectors, plan.lanes(dt), dt)
         for dt in DTYPES] + [(3, 2, 8, np.float32), (5, 1, 4, np.float64)]


@njit
def _run(out, out_offset, out_stride, m_store, n_store, a, a_stride, b, rows, steps, bias,
         has_bias, accumulate, MR, NV, LANES):
    """register_tile_broadcast with out at out[out_offset:]; a: rows of a_stride."""
    register_tile_broadcast(out.dtype.type(0), out.ctypes.data + out_offset * out.itemsize,
                            out_stride, m_store, n_store, a.ctypes.data, a_stride, b.ctypes.data,
                            rows.ctypes.data, steps.ctypes.data, steps.shape[0],
                            bias.ctypes.data, has_bias, accumulate, MR, NV, LANES)


def _case(rng, dtype, MR, NV, LANES, S, m_store, n_store, has_bias, accumulate):
    """Buffers of one call and its expected out. Every element of a, b and bias
    that no stored output reads is NaN; out is SENTINEL around the stored part and,
    when accumulating, random inside it."""
    NR = NV * LANES
    a_stride = NR + 3
    a = rng.uniform(-1, 1, (max(S, 1), a_stride)).astype(dtype)
    b = rng.uniform(-1, 1, 60).astype(dtype)
    rows = rng.integers(0, 30, MR).astype(np.int64)
    steps = rng.integers(0, 30, S).astype(np.int64)
    bias = rng.uniform(-1, 1, NR).astype(dtype)
    b_read = {int(rows[i] + steps[s]) for i in range(m_store) for s in range(S)}
    b[[p not in b_read for p in range(b.size)]] = np.nan
    a[:, n_store:] = np.nan
    bias[n_store:] = np.nan
    if not has_bias:
        bias[:] = np.nan
    out_stride = NR + 5
    out_offset = 2
    out = np.full(out_offset + MR * out_stride + 7, SENTINEL, dtype=dtype)
    for i in range(m_store):
        for j in range(n_store):
            out[out_offset + i * out_stride + j] = rng.uniform(-1, 1) if accumulate else SENTINEL
    expected = out.copy()
    for i in range(m_store):
        for j in range(n_store):
            p = out_offset + i * out_stride + j
            acc = dtype(0)
            for s in range(S):
                acc = _fma(b[rows[i] + steps[s]], a[s, j], acc, dtype)
            if accumulate:
                acc = out[p] + acc
            expected[p] = acc + bias[j] if has_bias else acc
    args = (out, out_offset, out_stride, m_store, n_store, a, a_stride, b, rows, steps, bias,
            has_bias, accumulate)
    return args, expected


def _check(args, expected, MR, NV, LANES):
    out = args[0]
    _run(*args, *compile_time(MR, NV, LANES))
    assert not np.isnan(out).any()
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("MR, NV, LANES, dtype", TILES)
@pytest.mark.parametrize("has_bias", [True, False])
def test_full_tile_is_exact(MR, NV, LANES, dtype, has_bias):
    """out[i, j] = sum_s a[s, j] * b[rows[i] + steps[s]] (+ bias[j]) over the whole tile."""
    rng = np.random.default_rng(MR * 100 + NV * 10 + LANES + has_bias)
    args, expected = _case(rng, dtype, MR, NV, LANES, 11, MR, NV * LANES, has_bias, False)
    _check(args, expected, MR, NV, LANES)


@pytest.mark.parametrize("MR, NV, LANES, dtype", TILES)
@given(data=st.data())
@settings(max_examples=12, deadline=None)
def test_masked_rows_and_lanes(MR, NV, LANES, dtype, data):
    """Rows past the last pixel or tap (m_store < MR), lanes past the last channel
    (n_store < NR), no steps at all: only the stored part is read into a sum and written."""
    m_store = data.draw(st.integers(1, MR), label="m_store")
    n_store = data.draw(st.integers(1, NV * LANES), label="n_store")
    S = data.draw(st.integers(0, 7), label="steps")
    has_bias = data.draw(st.booleans(), label="has_bias")
    accumulate = data.draw(st.booleans(), label="accumulate")
    seed = data.draw(st.integers(0, 2 ** 32 - 1), label="seed")
    args, expected = _case(np.random.default_rng(seed), dtype, MR, NV, LANES, S, m_store,
                           n_store, has_bias, accumulate)
    _check(args, expected, MR, NV, LANES)


@pytest.mark.parametrize("MR, NV, LANES, dtype", TILES)
def test_a_sum_cut_into_calls_is_the_blocked_sum(MR, NV, LANES, dtype):
    """The forward's taps run in blocks (plan.K_BLOCK): the first call stores its
    block's sum, each next one adds its own block's sum (summed from 0) to what out
    holds, the last adds the bias."""
    rng = np.random.default_rng(7)
    args, _ = _case(rng, dtype, MR, NV, LANES, 13, MR, NV * LANES, True, False)
    out, out_offset, out_stride, m_store, n_store, a, a_stride, b, rows, steps, bias = args[:11]
    blocks = [(0, 4), (4, 5), (5, 13)]
    expected = out.copy()
    for i in range(m_store):
        for j in range(n_store):
            total = None
            for s0, s1 in blocks:
                acc = dtype(0)
                for s in range(s0, s1):
                    acc = _fma(b[rows[i] + steps[s]], a[s, j], acc, dtype)
                total = acc if total is None else total + acc
            expected[out_offset + i * out_stride + j] = total + bias[j]
    cut = out.copy()
    for s0, s1 in blocks:
        a_part = np.ascontiguousarray(a[s0:s1])
        _run(cut, out_offset, out_stride, m_store, n_store, a_part, a_stride, b, rows,
             np.ascontiguousarray(steps[s0:s1]), bias, s1 == 13, s0 > 0,
             *compile_time(MR, NV, LANES))
    np.testing.assert_array_equal(cut, expected)


def test_exact_on_integers():
    """Small integers: every product and partial sum is exact, so the result is the
    plain NumPy formula."""
    MR, NV = plan.BROADCAST_TILE
    LANES = plan.lanes(np.float64)
    NR = NV * LANES
    rng = np.random.default_rng(3)
    S = 9
    a = rng.integers(-8, 9, (S, NR)).astype(np.float64)
    b = rng.integers(-8, 9, 100).astype(np.float64)
    rows = rng.integers(0, 50, MR).astype(np.int64)
    steps = rng.integers(0, 50, S).astype(np.int64)
    bias = rng.integers(-8, 9, NR).astype(np.float64)
    out = np.full(MR * NR, SENTINEL)
    _run(out, 0, NR, MR, NR, a, NR, b, rows, steps, bias, True, False,
         *compile_time(MR, NV, LANES))
    want = bias[None, :] + np.einsum("is,sj->ij", b[rows[:, None] + steps[None, :]], a)
    np.testing.assert_array_equal(out.reshape(MR, NR), want)
