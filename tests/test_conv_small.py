"""Convolutions on small planes with many channels: the channel-vector tiles
(``conv_forward_broadcast``, ``conv_weight_grad_broadcast``), which the plan picks
where rows of 8, 7 or 14 outputs would fill the pixel-vector tile's vectors poorly
(a DCGAN generator's 8x8 -> 16x16 transposed conv, ResNet's 14x14 and 7x7 stages).

Every pass against the naive loop nests (an independent oracle), in both dtypes, on
drawn shapes (samples several to an item, rows cut among items, channel blocks
hanging over C_out/G, groups, strides and their phases written in place); that the
tiles really run there; bitwise identity across thread counts; and exact NaN
footprints."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import deconv
from deconv.functional import conv as F
from deconv.kernels import conv as K
from deconv.kernels import plan
from deconv import reference
from determinism import run_hashes
from tolerances import assert_close

DTYPES = [np.float32, np.float64]


@st.composite
def small_plane_configs(draw):
    """A conv whose output planes are small (at most 9 x 9) with 24-70 channels
    per group: the channel-vector tiles' shapes, with partial channel blocks."""
    groups = draw(st.integers(1, 2))
    c_in_g = draw(st.sampled_from([8, 16, 24]))
    c_out_g = draw(st.sampled_from([24, 33, 64, 70]))
    kernel = draw(st.integers(1, 4))
    stride = draw(st.integers(1, 2))
    dilation = draw(st.integers(1, 2))
    out = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    reach = dilation * (kernel - 1)
    padding = draw(st.integers(0, min(reach, ((min(out) - 1) * stride + reach) // 2)))
    extra = tuple(draw(st.integers(0, stride - 1)) for _ in out)
    # the input size that gives `out` outputs: (size + 2p - d(k-1) - 1) // s + 1 = out
    # (at least 1 by the bound on the padding); extra is also the output_padding
    # with which a transposed conv maps `out` back to `size`
    size = tuple((o - 1) * stride + reach + 1 - 2 * padding + e for o, e in zip(out, extra))
    return dict(n=draw(st.integers(1, 5)), groups=groups, c_in=groups * c_in_g,
                c_out=groups * c_out_g, kernel=kernel, stride=stride, padding=padding,
                dilation=dilation, size=size, out=out, extra=extra, bias=draw(st.booleans()),
                dtype=draw(st.sampled_from(DTYPES)), seed=draw(st.integers(0, 2 ** 31 - 1)))


def _arrays(cfg, transposed):
    rng = np.random.default_rng(cfg["seed"])
    dt = cfg["dtype"]
    c_in, c_out, g, k = cfg["c_in"], cfg["c_out"], cfg["groups"], cfg["kernel"]
    x = rng.uniform(-1, 1, (cfg["n"], c_in) + (cfg["out"] if transposed else cfg["size"])).astype(dt)
    shape = (c_in, c_out // g, k, k) if transposed else (c_out, c_in // g, k, k)
    w = rng.uniform(-1, 1, shape).astype(dt)
    b = rng.uniform(-1, 1, c_out).astype(dt) if cfg["bias"] else None
    return rng, x, w, b


def _kw(cfg):
    return dict(stride=cfg["stride"], padding=cfg["padding"], dilation=cfg["dilation"],
                groups=cfg["groups"])


def _against_naive(f, args, kw, scale=1):
    got = f(*args, **kw)
    with deconv.kernels.use("naive"):
        want = f(*args, **kw)
    for g, w in zip(got if isinstance(got, tuple) else (got,),
                    want if isinstance(want, tuple) else (want,)):
        assert g.dtype == w.dtype
        assert_close(g, w, scale=scale)


@given(cfg=small_plane_configs())
@settings(max_examples=40, deadline=None)
def test_conv2d_on_small_planes_matches_the_naive_kernels(cfg):
    rng, x, w, b = _arrays(cfg, transposed=False)
    kw = _kw(cfg)
    _against_naive(deconv.conv2d, (x, w, b), kw)
    y = deconv.conv2d(x, w, b, **kw)
    gy = rng.uniform(-1, 1, y.shape).astype(cfg["dtype"])
    _against_naive(deconv.conv2d_backward, (gy, x, w), kw, scale=4)


@given(cfg=small_plane_configs())
@settings(max_examples=40, deadline=None)
def test_conv_transpose2d_on_small_planes_matches_the_naive_kernels(cfg):
    """The transposed conv from the small planes up (8x8 -> 16x16): its forward
    runs one conv per stride phase, each written in place; its input gradient is a
    conv forward, its weight gradient a conv's."""
    rng, x, w, b = _arrays(cfg, transposed=True)
    kw = dict(_kw(cfg), output_padding=cfg["extra"])
    _against_naive(deconv.conv_transpose2d, (x, w, b), kw)
    y = deconv.conv_transpose2d(x, w, b, **kw)
    gy = rng.uniform(-1, 1, y.shape).astype(cfg["dtype"])
    _against_naive(deconv.conv_transpose2d_backward, (gy, x, w), kw, scale=4)


class _Calls:
    """Counts the calls of the tiled kernels, through the module the wrappers call."""

    NAMES = ("conv_forward_broadcast", "conv_input_grad_broadcast_phases",
             "conv_weight_grad_broadcast", "conv_forward_blocked", "conv_weight_grad_blocked")

    def __init__(self, monkeypatch):
        self.count = dict.fromkeys(self.NAMES, 0)
        for name in self.NAMES:
            kernel = getattr(K, name)

            def counted(*args, _kernel=kernel, _name=name):
                self.count[_name] += 1
                return _kernel(*args)
            monkeypatch.setattr(K, name, counted)


SMALL_PLANE_CASES = [
    # (op, x shape, weight shape, keywords): a DCGAN generator's middle block, a
    # ResNet 14x14 and 7x7 layer, one sample (rows cut among items), many small
    # samples (several to an item), groups with a partial block of channels. In
    # float64 a vector holds 8 outputs, so that rows of 8 or 7 fill the pixel
    # tile's vectors too: there only planes of 4 or 5 gain.
    (np.float32, ("conv_transpose2d", (3, 64, 8, 8), (64, 64, 4, 4), dict(stride=2, padding=1))),
    (np.float32, ("conv2d", (2, 32, 14, 14), (64, 32, 3, 3), dict(padding=1))),
    (np.float32, ("conv2d", (3, 48, 7, 7), (80, 48, 3, 3), dict(padding=1))),
    (np.float32, ("conv2d", (1, 16, 7, 7), (64, 16, 3, 3), dict(padding=1))),
    (np.float32, ("conv2d", (20, 16, 4, 4), (64, 16, 3, 3), dict(padding=1))),
    (np.float32, ("conv2d", (3, 32, 9, 9), (90, 16, 3, 3), dict(stride=2, padding=1, groups=2))),
    (np.float64, ("conv2d", (20, 16, 4, 4), (64, 16, 3, 3), dict(padding=1))),
    (np.float64, ("conv2d", (2, 24, 5, 5), (64, 24, 3, 3), dict(padding=1))),
    (np.float64, ("conv_transpose2d", (3, 48, 4, 4), (48, 64, 4, 4), dict(stride=2, padding=1))),
]


@pytest.mark.parametrize("dtype, case", SMALL_PLANE_CASES)
def test_small_planes_run_the_channel_vector_tiles(monkeypatch, dtype, case):
    """Each pass of these layers runs on the channel-vector tiles (checked by
    counting kernel calls) and matches the scipy reference."""
    op, x_shape, w_shape, kw = case
    rng = np.random.default_rng(11)
    x = rng.uniform(-1, 1, x_shape).astype(dtype)
    w = rng.uniform(-1, 1, w_shape).astype(dtype)
    f, fb = getattr(deconv, op), getattr(deconv, op + "_backward")
    ref, ref_b = getattr(reference, op), getattr(reference, op + "_backward")
    calls = _Calls(monkeypatch)
    y = f(x, w, **kw)
    forward_tile, reduce_tile = _channel_vector_choice(op, x_shape, w_shape, kw, y.shape, dtype)
    if plan.TARGET.name == "avx512":
        # the cases are sized for its 64-byte vectors: every pass takes the tiles
        assert forward_tile and reduce_tile
    # (a strided transposed conv: its stride phases in one call)
    tiled = calls.count["conv_forward_broadcast"] + calls.count["conv_input_grad_broadcast_phases"]
    assert (tiled >= 1) == forward_tile
    if forward_tile:
        assert calls.count["conv_forward_blocked"] == 0
    assert_close(y, ref(x, w, **kw))
    gy = rng.uniform(-1, 1, y.shape).astype(dtype)
    grads = fb(gy, x, w, **kw)
    assert calls.count["conv_weight_grad_broadcast"] == int(reduce_tile)
    if reduce_tile:
        assert calls.count["conv_weight_grad_blocked"] == 0
    for got, want in zip(grads, ref_b(gy, x, w, **kw)):
        assert_close(got, want, scale=4)


def _channel_vector_choice(op, x_shape, w_shape, kw, y_shape, dtype):
    """Whether the plan of this CPU puts the case's forward and weight gradient on
    the channel-vector tiles: by the lanes each tile fills (``plan.use_broadcast_*``)
    of the planes the kernels see. A strided transposed conv's forward runs its
    stride phases (each a plane of its own), its weight gradient is the conv's
    with its input in grad_output's place (the phases' own rule,
    ``plan.use_broadcast_phases``)."""
    dt = np.dtype(dtype)
    groups = kw.get("groups", 1)
    if op == "conv2d":
        per_group = w_shape[0] // groups
        return (plan.use_broadcast_forward(*y_shape[2:], per_group, dt),
                plan.use_broadcast_reduce(*y_shape[2:], per_group, dt))
    k, s, p = w_shape[2], kw.get("stride", 1), kw.get("padding", 0)
    ph = plan.phase_taps(k, s, p, 1, y_shape[2])
    pw = plan.phase_taps(w_shape[3], s, p, 1, y_shape[3])
    return (all(plan.use_broadcast_phases(a.count, b.count, w_shape[1], dt)
                for a in ph for b in pw),
            plan.use_broadcast_reduce(*x_shape[2:], w_shape[0] // groups, dt))


def test_some_case_takes_the_channel_vector_tiles_on_this_cpu():
    """The routing test above reaches the channel-vector tiles on any CPU the plan
    knows (on AVX2 and NEON, whose vectors hold fewer lanes, fewer of its planes
    fill the pixel tile poorly)."""
    forward, reduce = [], []
    for dtype, (op, x_shape, w_shape, kw) in SMALL_PLANE_CASES:
        y_shape = getattr(deconv, op)(np.zeros(x_shape, dtype), np.zeros(w_shape, dtype),
                                      **kw).shape
        f, r = _channel_vector_choice(op, x_shape, w_shape, kw, y_shape, dtype)
        forward.append(f)
        reduce.append(r)
    assert any(forward) and any(reduce)


def test_large_planes_keep_the_pixel_vector_tiles(monkeypatch):
    """Rows that fill the pixel tile's vectors (32 outputs) gain nothing from the
    channel-vector tile in the forward and the input gradient: the plan keeps
    the pixel-vector tile there. The weight gradient takes the channel-vector
    tile while a sample's block of grad_output, channels last, fits
    plan.BROADCAST_REDUCE_BLOCK_BYTES (32x32), and the pixel tile on planes
    past it (against the float64 reference on both)."""
    rng = np.random.default_rng(12)
    x = rng.uniform(-1, 1, (2, 16, 32, 32)).astype(np.float32)
    w = rng.uniform(-1, 1, (64, 16, 3, 3)).astype(np.float32)
    calls = _Calls(monkeypatch)
    y = deconv.conv2d(x, w, padding=1)
    _, gw, _ = deconv.conv2d_backward(y, x, w, padding=1)
    assert calls.count["conv_forward_broadcast"] == 0
    assert calls.count["conv_forward_blocked"] == 2          # forward, input gradient
    assert calls.count["conv_weight_grad_broadcast"] == 1
    assert calls.count["conv_weight_grad_blocked"] == 0
    # sums of 2048 float32 products of up to about 20
    assert_close(gw, reference.conv2d_backward(y, x, w, padding=1)[1], scale=16)
    # the smallest square plane of whole vectors whose block outgrows the bytes
    per_pixel = plan.BROADCAST_TILE.vectors * plan.VECTOR_BYTES
    side = plan.lanes(np.float32) * (
        math.isqrt(plan.BROADCAST_REDUCE_BLOCK_BYTES // per_pixel) // plan.lanes(np.float32) + 1)
    x = rng.uniform(-1, 1, (1, 2, side, side)).astype(np.float32)
    w = rng.uniform(-1, 1, (64, 2, 3, 3)).astype(np.float32)
    gy = rng.uniform(-1, 1, (1, 64, side, side)).astype(np.float32)
    calls = _Calls(monkeypatch)
    _, gw, _ = deconv.conv2d_backward(gy, x, w, padding=1, input_grad=False)
    assert calls.count["conv_weight_grad_blocked"] == 1
    assert calls.count["conv_weight_grad_broadcast"] == 0
    assert_close(gw, reference.conv2d_backward(gy, x, w, padding=1)[1], scale=16)


def test_the_choice_follows_the_lanes_each_tile_fills():
    f32 = np.dtype(np.float32)
    # 8x8 planes fill half of each pixel vector; 128 channels fill whole channel vectors
    NV = plan.FORWARD_TILE.vectors
    assert plan.pixel_tile_use(8, plan.lanes(f32) // 2, 128, f32) == 0.5
    # a 1-D conv's item is one row: it also leaves its last tile of NV vectors
    # short: 4 vectors of 64 outputs fill 4 of 2 * NV slots (NV = 3); such a
    # transposed conv's stride phases with 256 channels run on the channel vectors
    assert plan.pixel_tile_use(1, 4 * plan.lanes(f32), 256, f32) == pytest.approx(
        4 / (-(-4 // NV) * NV))
    assert plan.use_broadcast_forward(1, 4 * plan.lanes(f32), 256, f32) == (4 % NV != 0)
    MR = plan.BROADCAST_TILE.rows
    assert plan.broadcast_tile_use(64, 128, f32) == pytest.approx(64 / (-(-64 // MR) * MR))
    # in vectors of L lanes: planes of L/2 x L/2 fill half the pixel tile's lanes
    L = plan.lanes(f32)
    half = L // 2
    assert (plan.use_broadcast_forward(half, half, 128, f32)
            and plan.use_broadcast_reduce(half, half, 128, f32))
    assert not plan.use_broadcast_forward(2 * L, 2 * L, 64, f32)
    assert not plan.use_broadcast_forward(L, L, 64, f32)
    # 3 output channels (an image's) would leave a channel vector mostly empty
    assert not plan.use_broadcast_forward(half, half, 3, f32)
    if plan.TARGET.name == "avx512":
        # ResNet's 14x14 and 7x7 stages, where the plan was measured
        assert plan.use_broadcast_forward(14, 14, 256, f32)
        assert plan.use_broadcast_forward(7, 7, 512, f32)


_DETERMINISM_SCRIPT = r"""
import hashlib, json, numpy as np, deconv
rng = np.random.default_rng(0)
outs = []
for op, xs, ws, kw in [
        ("conv_transpose2d", (5, 64, 8, 8), (64, 48, 4, 4), dict(stride=2, padding=1)),
        ("conv2d", (3, 40, 7, 7), (70, 40, 3, 3), dict(padding=1)),
        ("conv2d", (1, 24, 9, 9), (64, 24, 3, 3), dict(padding=1)),
        ("conv2d", (21, 16, 4, 4), (64, 16, 3, 3), dict(padding=1))]:
    for dtype in (np.float32, np.float64):
        x = rng.standard_normal(xs).astype(dtype)
        w = rng.standard_normal(ws).astype(dtype)
        y = getattr(deconv, op)(x, w, **kw)
        outs += [y, *getattr(deconv, op + "_backward")(y, x, w, **kw)]
print(json.dumps([hashlib.sha256(o.tobytes()).hexdigest() for o in outs]))
"""


def test_bitwise_identical_across_thread_counts():
    one = run_hashes(_DETERMINISM_SCRIPT, NUMBA_NUM_THREADS=1)
    two = run_hashes(_DETERMINISM_SCRIPT, NUMBA_NUM_THREADS=2)
    three = run_hashes(_DETERMINISM_SCRIPT, NUMBA_NUM_THREADS=3)
    again = run_hashes(_DETERMINISM_SCRIPT, NUMBA_NUM_THREADS=2)
    assert one == two == three == again


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kw", [dict(padding=1), dict(stride=2, padding=1)])
def test_nan_footprints_are_exact(dtype, kw):
    """A NaN reaches exactly the outputs whose windows see it, in the forward, the
    input gradient and the weight gradient, on 5x5 planes: tiles of pixels that
    cross rows and samples and taps past K read values they drop, never into a
    stored sum (the input gradient's phase convs have 40 outputs: blocks past
    their channels)."""
    rng = np.random.default_rng(13)
    x = rng.uniform(-1, 1, (5, 40, 5, 5)).astype(dtype)
    w = rng.uniform(-1, 1, (64, 40, 3, 3)).astype(dtype)
    gy = rng.uniform(0.5, 1, deconv.conv2d(x, w, **kw).shape).astype(dtype)
    x[1, 2, 3, 0] = np.nan
    ones_w = np.ones(w.shape)
    x_nan = np.isnan(x).astype(np.float64)
    y = deconv.conv2d(x, w, **kw)
    seen = reference.conv2d(x_nan, ones_w, **kw) > 0
    assert seen.any() and np.array_equal(np.isnan(y), seen)
    _, grad_weight, _ = deconv.conv2d_backward(gy, x, w, **kw)
    seen_w = reference.conv2d_backward(np.ones(gy.shape), x_nan, ones_w, **kw)[1] > 0
    assert seen_w.any() and not seen_w.all() and np.array_equal(np.isnan(grad_weight), seen_w)
    x[1, 2, 3, 0] = 0.0
    gy[0, 3, 2, gy.shape[-1] - 1] = np.nan
    grad_input, _, _ = deconv.conv2d_backward(gy, x, w, **kw)
    seen_x = reference.conv2d_backward(np.isnan(gy).astype(np.float64), np.ones(x.shape),
                                       ones_w, **kw)[0] > 0
    assert seen_x.any() and np.array_equal(np.isnan(grad_input), seen_x)
    if plan.TARGET.name == "avx512":
        # on its 64-byte vectors these planes take the channel-vector tiles
        assert plan.use_broadcast_forward(*y.shape[2:], 64, np.dtype(dtype))
        assert plan.use_broadcast_reduce(*y.shape[2:], 64, np.dtype(dtype))
