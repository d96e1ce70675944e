"""Packing a weight for the register tiles: the transpose in registers
(``transpose_square``), the parallel strip kernel (``pack_lanes_last``) and the
packing of every weight spec (``_packed_weight``), each checked element by element
against NumPy indexing of the layout its docstring states: (G, B, K, R), block b's
lane r holding output channel b*R + r of the conv the spec describes, tap-major,
zero past C_out/G.

The weight gradient's way back (``unblock_channels``) is checked the same way.

A wrong lane, a missed tail (K % square, C_out/G % R), a block past the channels
(which once read past the weight and crashed) or a wrong phase tap shows as a
mismatch: packing is a copy, so results must be equal, not close."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit

from deconv.functional import conv as fconv
from deconv.kernels import conv as _k
from deconv.kernels import plan
from deconv.kernels.common import compile_time
from deconv.kernels.microkernel import interleave_rows, transpose_square

DTYPES = [np.float32, np.float64]


@njit
def _transpose(src, dst, S):
    transpose_square(src.dtype.type(0), src.ctypes.data, src.shape[1], dst.ctypes.data,
                     dst.shape[1], S)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("S", [2, 4, 8, 16])
def test_transpose_square_moves_rows_to_columns_and_nothing_else(dtype, S):
    # strides wider than the square: the columns past it must stay untouched
    src = np.arange(S * (S + 3), dtype=dtype).reshape(S, S + 3)
    dst = np.full((S, S + 5), -1.0, dtype=dtype)
    _transpose(src, dst, compile_time(S))
    np.testing.assert_array_equal(dst[:, :S], src[:, :S].T)
    assert np.all(dst[:, S:] == -1.0)


@njit
def _interleave(first, second, lo, hi, S):
    interleave_rows(first.dtype.type(0), first.ctypes.data, second.ctypes.data, first.shape[1],
                    lo.ctypes.data, hi.ctypes.data, lo.shape[1], S)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("S", [2, 4, 8, 16])
def test_interleave_rows_alternates_two_rows_and_writes_nothing_else(dtype, S):
    # the written rows' strides wider than a row: what lies past it must stay
    first = np.arange(S * (S + 3), dtype=dtype).reshape(S, S + 3)
    second = -first - 1
    lo = np.full((S, S + 5), 0.5, dtype=dtype)
    hi = np.full((S, S + 5), 0.25, dtype=dtype)
    _interleave(first, second, lo, hi, compile_time(S))
    both = np.stack([first[:, :S], second[:, :S]], axis=2).reshape(S, 2 * S)   # a0 b0 a1 b1 ...
    np.testing.assert_array_equal(lo[:, :S], both[:, :S])
    np.testing.assert_array_equal(hi[:, :S], both[:, S:])
    assert np.all(lo[:, S:] == 0.5) and np.all(hi[:, S:] == 0.25)


def _expected(weight, groups, R):
    """(G, B, K, R) from the plain weight (C_out, C_in/G, kH, kW): the layout stated."""
    C_out = weight.shape[0]
    C_out_g = C_out // groups
    K = weight[0].size
    blocks = -(-C_out_g // R)
    padded = np.zeros((groups, blocks * R, K), dtype=weight.dtype)
    padded[:, :C_out_g] = weight.reshape(groups, C_out_g, K)
    return padded.reshape(groups, blocks, R, K).transpose(0, 1, 3, 2)


SHAPES = [(512, 512, 3, 3, 1), (130, 7, 3, 3, 1), (64, 3, 7, 7, 1), (96, 16, 3, 3, 2),
          (8, 8, 1, 1, 1), (200, 33, 5, 1, 4), (17, 5, 2, 3, 1)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("R", [4, 8, 16, 48, 64])
def test_packed_conv_weight_is_the_stated_layout(dtype, shape, R):
    C_out, C_in_g, kH, kW, groups = shape
    weight = np.random.default_rng(0).standard_normal((C_out, C_in_g, kH, kW)).astype(dtype)
    before = weight.copy()
    packed = fconv._packed_weight(weight, groups, R)
    np.testing.assert_array_equal(packed, _expected(weight, groups, R))
    np.testing.assert_array_equal(weight, before)


def test_packed_weight_of_a_non_contiguous_weight():
    # a view (every other output channel) takes NumPy's copy, same layout
    base = np.random.default_rng(1).standard_normal((64, 8, 3, 3)).astype(np.float32)
    weight = base[::2]
    np.testing.assert_array_equal(fconv._packed_weight(weight, 1, 16),
                                  _expected(np.ascontiguousarray(weight), 1, 16))


@settings(max_examples=60)
@given(st.data())
def test_packed_phase_weight_is_the_sub_kernel_packed(data):
    # a phase spec (weight, taps_h, taps_w): the conv with C_in/G outputs whose
    # tap (c, i, j) is weight[c, :, taps_h[i], taps_w[j]] (all taps reversed: the
    # flipped kernel), packed as that conv's weight would be
    groups = data.draw(st.integers(1, 3))
    C_out_g = data.draw(st.integers(1, 6))
    C_in_g = data.draw(st.integers(1, 40))
    kH, kW = data.draw(st.integers(1, 9)), data.draw(st.integers(1, 9))
    s_h, s_w = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
    first_h, first_w = data.draw(st.integers(0, kH - 1)), data.draw(st.integers(0, kW - 1))
    taps_h = tuple(range(first_h, -1, -s_h)) if data.draw(st.booleans()) else tuple(
        range(first_h, kH, s_h))
    taps_w = tuple(range(first_w, -1, -s_w)) if data.draw(st.booleans()) else tuple(
        range(first_w, kW, s_w))
    dtype = data.draw(st.sampled_from(DTYPES))
    R = data.draw(st.sampled_from([4, 8, 16, 64]))
    weight = np.random.default_rng(2).standard_normal(
        (groups * C_out_g, C_in_g, kH, kW)).astype(dtype)
    sub = weight.reshape(groups, C_out_g, C_in_g, kH, kW)[:, :, :, list(taps_h)]
    sub = sub[:, :, :, :, list(taps_w)].transpose(0, 2, 1, 3, 4).reshape(
        groups * C_in_g, C_out_g, len(taps_h), len(taps_w))
    spec = (weight, taps_h, taps_w)
    assert fconv._spec_shape(spec, groups) == sub.shape
    np.testing.assert_array_equal(fconv._spec_weight(spec, groups), sub)
    np.testing.assert_array_equal(fconv._packed_weight(spec, groups, R),
                                  _expected(np.ascontiguousarray(sub), groups, R))


def test_the_tiles_lanes_are_squares_the_transpose_takes():
    # the plan's tiles pack in whole squares on every target
    for target in plan.TARGETS.values():
        tiles = plan.tiles_for(target)
        for dtype in DTYPES:
            width = plan.lanes(dtype, target)
            for R in (tiles.forward.channels, tiles.broadcast.vectors * width):
                assert R % plan.transpose_square(R, dtype, target) == 0


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("groups, C_out_g, K, NR, S", [
    (1, 512, 4608, 64, 16), (2, 70, 27, 64, 16), (1, 5, 9, 64, 16), (3, 33, 17, 32, 8),
    (1, 16, 16, 16, 16), (1, 9, 40, 8, 4)])
def test_unblock_channels_is_the_inverse_layout(dtype, groups, C_out_g, K, NR, S):
    # the weight gradient's (G, B, K, NR) blocks back to (G, C_out/G, K); the
    # lanes past C_out/G hold garbage that must not leak
    blocks = -(-C_out_g // NR)
    blocked = np.random.default_rng(3).standard_normal((groups, blocks, K, NR)).astype(dtype)
    out = np.full((groups, C_out_g, K), np.nan, dtype=dtype)
    _k.unblock_channels(blocked, out, compile_time(S))
    expected = blocked.transpose(0, 1, 3, 2).reshape(groups, blocks * NR, K)[:, :C_out_g]
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", [
    # (C_out, C_in/G of the conv, kH, kW, groups, stride, padding): its input
    # gradient's phases (a transposed conv's forward)
    (256, 128, 4, 4, 1, (2, 2), (1, 1)),       # DCGAN's 8x8 -> 16x16
    (40, 70, 3, 5, 2, (2, 3), (1, 2)),         # groups, channels past a block
    (24, 9, 2, 2, 1, (3, 3), (0, 0)),          # phases no tap reaches
    (16, 33, 1, 16, 1, (1, 8), (0, 4)),        # MelGAN's 1-D x8
    (21, 21, 16, 16, 1, (8, 8), (4, 4)),       # FCN-8s's x8: 64 phases of 4 taps
])
def test_phases_packed_in_one_call_are_each_phase_packed(dtype, case):
    # every phase of a call of the phases kernel packed by one pass over the
    # weight (plan.pack_table) must be, segment by segment, that phase's own
    # sub-kernel packed as _packed_weight packs it
    C_out, C_in_g, kH, kW, groups, stride, padding = case
    weight = np.random.default_rng(3).standard_normal((C_out, C_in_g, kH, kW)).astype(dtype)
    before = weight.copy()
    H, W = 5 * stride[0], 7 * stride[1]
    phases_h = plan.phase_taps(kH, stride[0], padding[0], 1, H)
    phases_w = plan.phase_taps(kW, stride[1], padding[1], 1, W)
    every = tuple((ph, pw) for ph in phases_h for pw in phases_w)
    # all phases (every tap of the weight: by squares), and a quarter of them
    # (FCN-8s's 16 of 256 taps: gathered)
    for pairs in (every, every[:max(1, len(every) // 4)]):
        pp = plan.phases_plan(3, groups, weight.shape, stride, pairs,
                              (3, groups * C_in_g, H, W), np.dtype(dtype))
        NR = pp.tile.vectors * pp.lanes
        blocks = -(-C_in_g // NR)
        total = int(pp.phases[-1, 6] + groups * blocks * pp.phases[-1, 2] * NR)
        packed = np.full(total, np.nan, dtype=dtype)
        fconv._pack_phases(weight, groups, pp.pack, blocks, NR, packed)
        for f, (ph, pw) in enumerate(pairs):
            own = fconv._packed_weight((weight, ph.taps, pw.taps), groups, NR).ravel()
            start = pp.phases[f, 6]
            np.testing.assert_array_equal(packed[start:start + own.size], own)
        assert not np.isnan(packed).any()
    np.testing.assert_array_equal(weight, before)
