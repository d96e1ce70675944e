"""The plans of the channel-vector tiles (deconv.kernels.plan.broadcast_plan and
broadcast_reduce_plan), checked by brute force as tests/test_plan.py checks the
others: items cover every output pixel once, every pixel's reads name the padded
input position of the conv formula, its writes the output position the layout
asks for, and the sample chunks cover the batch."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deconv.kernels import plan
from test_plan import _reads, conv_shapes


@given(shape=conv_shapes(), phase=st.sampled_from([(0, 0, 1, 1), (1, 0, 2, 3)]))
@settings(max_examples=60, deadline=None)
def test_broadcast_plan_covers_every_pixel_once_and_reads_and_writes_the_right_places(shape,
                                                                                      phase):
    weight_shape, geometry, groups, N, H_out, W_out, dtype = shape
    C_out, c_in_g, kH, kW = weight_shape
    h0, w0, step_h, step_w = phase
    W_full = w0 + (W_out - 1) * step_w + 1 + 2
    H_full = h0 + (H_out - 1) * step_h + 1
    layout = (C_out * H_full * W_full, step_h, step_w, W_full)
    bp = plan.broadcast_plan(N, groups, weight_shape, geometry, H_out, W_out, layout, dtype)
    assert bp.tile == plan.BROADCAST_TILE and bp.lanes == plan.lanes(dtype)
    MR, NR = bp.tile.rows, bp.tile.vectors * bp.lanes
    S, rows = bp.samples, bp.rows
    # several samples an item only with whole planes; enough items where there are
    # samples to share out; an item's planes within the budget unless one row exceeds it
    assert 1 <= S <= N and (S == 1 or rows == H_out)
    n_tiles = -(-H_out // rows)
    items = -(-N // S) * groups * n_tiles
    assert items >= min(plan.BLOCKED_MIN_ITEMS, N * groups, N * groups * n_tiles)
    assert bp.planes == c_in_g * geometry[0] * geometry[1] * bp.Hq * bp.Wq
    assert rows == 1 or S * bp.planes <= plan.BLOCKED_ITEM_ELEMENTS
    # the pixel tables: (sample, row, column) order, whole tiles of MR
    Q = bp.pixels_in.shape[0]
    assert Q % MR == 0 and S * rows * W_out <= Q < S * rows * W_out + MR
    assert bp.workspace == S * bp.planes + Q * NR
    assert 1 <= bp.k_chunk and bp.k_chunk * NR * np.dtype(dtype).itemsize <= max(
        plan.BROADCAST_WEIGHT_BYTES, NR * np.dtype(dtype).itemsize)
    # every item's pixels: those of its rows, each once, written where the layout says,
    # reading x_pad[c, r*sH + i*dH, w*sW + j*dW] for tap (c, i, j)
    sH, sW, _, _, dH, dW = geometry
    for r0 in range(0, H_out, rows):
        r1 = min(r0 + rows, H_out)
        for count in {min(S, N), N - (-(-N // S) - 1) * S}:
            n_pix = count * (r1 - r0) * W_out
            seen = []
            for p in range(n_pix):
                s, rest = divmod(p, (r1 - r0) * W_out)
                r, w = divmod(rest, W_out)
                seen.append((s, r0 + r, w))
                assert bp.pixels_out[p] == s * layout[0] + r * step_h * W_full + w * step_w
                for k, (c, i, j) in enumerate(itertools.product(range(c_in_g), range(kH),
                                                                range(kW))):
                    offset = bp.pixels_in[p] + bp.offs[k] - s * bp.planes
                    assert 0 <= offset < bp.planes
                    assert _reads(offset, c_in_g, geometry, bp.Hq, bp.Wq) == (
                        c, r * sH + i * dH, w * sW + j * dW)
            assert sorted(seen) == list(itertools.product(range(count), range(r0, r1),
                                                          range(W_out)))
    # the padding of the tables reads inside the planes
    assert (bp.pixels_in[S * rows * W_out:] == 0).all()


@given(shape=conv_shapes(), budget_scale=st.sampled_from([1, 4, 64]))
@settings(max_examples=60, deadline=None)
def test_broadcast_reduce_plan_covers_every_pixel_sample_and_channel_block(shape,
                                                                           budget_scale):
    weight_shape, geometry, groups, N, H_out, W_out, dtype = shape
    C_out, c_in_g, kH, kW = weight_shape
    C_out_g, K, P = C_out // groups, c_in_g * kH * kW, H_out * W_out
    sH, sW = geometry[:2]
    budget = budget_scale * N * c_in_g * groups * 10 * 10
    red = plan.broadcast_reduce_plan(N, weight_shape, geometry, groups, H_out, W_out, dtype,
                                     budget)
    MR, NR = red.tile.rows, red.tile.vectors * red.lanes
    assert red.channels % NR == 0 and C_out_g <= red.channels < C_out_g + NR
    # batch chunks: each sample in one chunk, an even number of items on 2 threads
    assert 1 <= red.chunks <= min(N, plan.MAX_BATCH_CHUNKS)
    samples = [n for b in range(red.chunks) for n in range(*plan.chunk(N, b, red.chunks))]
    assert samples == list(range(N))
    assert red.chunks == 1 or red.chunks * groups % 2 == 0
    co_blocks = red.channels // NR
    assert red.splits == (2 if red.chunks * groups == 1 and co_blocks > 1 else 1)
    # offs: the forward's taps of a whole sample, then MR zeros for the last tile of taps
    fwd = plan.forward_plan(N * groups, weight_shape, geometry, H_out, W_out, dtype)
    assert red.Wq == fwd.Wq and red.Hq == H_out + fwd.Hq - fwd.rows
    assert red.offs.shape == (K + MR,) and not red.offs[K:].any()
    # steps: every pixel of the S samples once, at its place in their planes
    S = red.samples
    sample_len = c_in_g * sH * sW * red.Hq * red.Wq
    assert 1 <= S <= N and red.planes == S * sample_len
    assert red.workspace == S * (sample_len + P * red.channels)
    assert S == 1 or red.workspace <= budget // 2 or red.workspace <= plan.REDUCE_ITEM_ELEMENTS
    s, oh, ow = np.unravel_index(np.arange(S * P), (S, H_out, W_out))
    np.testing.assert_array_equal(red.steps, s * sample_len + oh * red.Wq + ow)
    # tap (c, i, j) of pixel (s, oh, ow) reads x_pad[c, oh*sH + i*dH, ow*sW + j*dW] of
    # sample s, inside the S samples' planes
    dH, dW = geometry[4:]
    for k, (c, i, j) in enumerate(itertools.product(range(c_in_g), range(kH), range(kW))):
        for p in {0, P - 1, S * P - 1}:
            s, rest = divmod(int(p), P)
            oh, ow = divmod(rest, W_out)
            offset = red.offs[k] + red.steps[p]
            assert offset < red.planes
            assert _reads(offset - s * sample_len, c_in_g, geometry, red.Hq, red.Wq) == (
                c, oh * sH + i * dH, ow * sW + j * dW)


def test_broadcast_plans_are_cached():
    args = (4, 1, (64, 8, 3, 3), (1, 1, 1, 1, 1, 1), 7, 7, (64 * 49, 1, 1, 7),
            np.dtype(np.float32))
    assert plan.broadcast_plan(*args) is plan.broadcast_plan(*args)
    red = (4, (64, 8, 3, 3), (1, 1, 1, 1, 1, 1), 1, 7, 7, np.dtype(np.float32), 10000)
    assert plan.broadcast_reduce_plan(*red) is plan.broadcast_reduce_plan(*red)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_phases_take_the_channel_vector_tile_on_a_tie_up_to_the_bytes(dtype):
    # rows of one whole vector and whole blocks of channels: both tiles fill
    # their lanes, so a plain conv keeps the pixel tile; an input gradient's
    # stride phases take the channel-vector tile while a sample's phase in
    # blocks of NR channels fits BROADCAST_PHASE_BYTES, and not one row past it
    dt = np.dtype(dtype)
    L = plan.lanes(dt)
    channels = plan.BROADCAST_TILE.vectors * L
    per_pixel = plan.BROADCAST_TILE.vectors * plan.VECTOR_BYTES
    rows = plan.BROADCAST_PHASE_BYTES // (L * per_pixel)
    assert rows >= 1
    assert not plan.use_broadcast_forward(rows, L, channels, dt)
    assert plan.use_broadcast_phases(rows, L, channels, dt)
    assert not plan.use_broadcast_phases(rows + 1, L, channels, dt)
    # where the channel-vector tile fills more lanes it runs either way
    assert plan.use_broadcast_forward(8, 7, channels, dt) == plan.use_broadcast_phases(
        8, 7, channels, dt)
