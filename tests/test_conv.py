"""conv1d/2d and conv_transpose1d/2d: forward and backward against the scipy
reference, adjoint identities, float64 finite differences, edge cases and
argument errors."""


import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import deconv
from deconv.kernels import plan
from deconv.kernels.threads import SMALL_WORK
from deconv.functional import conv as conv_module
from deconv import reference
from deconv.gradcheck import numerical_gradient
from determinism import run_hashes
from tolerances import FINITE_DIFFERENCE, assert_close

DTYPES = [np.float32, np.float64]
ND = [1, 2]

CONV = {1: deconv.conv1d, 2: deconv.conv2d}
CONV_BWD = {1: deconv.conv1d_backward, 2: deconv.conv2d_backward}
CONVT = {1: deconv.conv_transpose1d, 2: deconv.conv_transpose2d}
CONVT_BWD = {1: deconv.conv_transpose1d_backward, 2: deconv.conv_transpose2d_backward}
REF_CONV = {1: reference.conv1d, 2: reference.conv2d}
REF_CONV_BWD = {1: reference.conv1d_backward, 2: reference.conv2d_backward}
REF_CONVT = {1: reference.conv_transpose1d, 2: reference.conv_transpose2d}
REF_CONVT_BWD = {1: reference.conv_transpose1d_backward, 2: reference.conv_transpose2d_backward}


# ---------------------------------------------------------------------------
# strategies: every drawn configuration is valid by construction
# ---------------------------------------------------------------------------

# Channels per group: few (direct loops, GEMM + col2im, register tiles mostly
# empty) and 8 or more (the input gradient as phase convolutions; 9 and 17 leave
# a partial tile of 8 or 16 channels).
CHANNELS_PER_GROUP = st.sampled_from([1, 2, 3, 8, 9, 17])
# The naive kernels (plain loops, one per pass) have no paths to pick by
# channel count; smaller shapes keep their share of the suite's time small.
SMALL_CHANNELS_PER_GROUP = st.sampled_from([1, 2, 3])


@st.composite
def conv_configs(draw, nd=None, small=False):
    nd = draw(st.sampled_from(ND)) if nd is None else nd
    channels = SMALL_CHANNELS_PER_GROUP if small else CHANNELS_PER_GROUP
    extra = 3 if small else 6
    groups = draw(st.integers(1, 3))
    c_in = groups * draw(channels)
    c_out = groups * draw(channels)
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    padding_kind = draw(st.sampled_from(["int", "tuple", "same", "valid"]))
    if padding_kind == "same":
        stride = (1,) * nd
        padding = "same"
        pads = [(d * (k - 1), 0) for k, d in zip(kernel, dilation)]  # total, for the size bound
    else:
        stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
        if padding_kind == "valid":
            padding = "valid"
            pads = [(0, 0)] * nd
        elif padding_kind == "int":
            padding = draw(st.integers(0, 3))
            pads = [(padding, padding)] * nd
        else:
            padding = tuple(draw(st.integers(0, 3)) for _ in range(nd))
            pads = [(p, p) for p in padding]
    # smallest input for which the dilated kernel fits in the padded input
    size = tuple(
        max(1, d * (k - 1) + 1 - (pb + pa)) + draw(st.integers(0, extra))
        for k, d, (pb, pa) in zip(kernel, dilation, pads)
    )
    return dict(
        nd=nd, n=draw(st.integers(1, 2 if small else 3)), c_in=c_in, c_out=c_out, groups=groups,
        kernel=kernel,
        stride=stride, padding=padding, dilation=dilation, size=size, bias=draw(st.booleans()),
        dtype=draw(st.sampled_from(DTYPES)), seed=draw(st.integers(0, 2**31 - 1)),
    )


@st.composite
def conv_transpose_configs(draw, nd=None, small=False):
    nd = draw(st.sampled_from(ND)) if nd is None else nd
    channels = SMALL_CHANNELS_PER_GROUP if small else CHANNELS_PER_GROUP
    extra = 3 if small else 5
    groups = draw(st.integers(1, 3))
    c_in = groups * draw(channels)
    c_out = groups * draw(channels)
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    output_padding = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
    padding = tuple(draw(st.integers(0, 3)) for _ in range(nd))
    # smallest input with output size (L-1)*s - 2p + d*(k-1) + op + 1 >= 1
    size = []
    for k, s, d, p, op in zip(kernel, stride, dilation, padding, output_padding):
        need = 2 * p - d * (k - 1) - op            # (L-1)*s must be >= need
        size.append(1 + max(0, -(-need // s)) + draw(st.integers(0, extra)))
    return dict(
        nd=nd, n=draw(st.integers(1, 2 if small else 3)), c_in=c_in, c_out=c_out, groups=groups,
        kernel=kernel,
        stride=stride, padding=padding, output_padding=output_padding, dilation=dilation,
        size=tuple(size), bias=draw(st.booleans()), dtype=draw(st.sampled_from(DTYPES)),
        seed=draw(st.integers(0, 2**31 - 1)),
    )


def make_conv_arrays(cfg):
    rng = np.random.default_rng(cfg["seed"])
    dt = cfg["dtype"]
    x = rng.uniform(-1, 1, (cfg["n"], cfg["c_in"]) + cfg["size"]).astype(dt)
    w = rng.uniform(-1, 1, (cfg["c_out"], cfg["c_in"] // cfg["groups"]) + cfg["kernel"]).astype(dt)
    b = rng.uniform(-1, 1, cfg["c_out"]).astype(dt) if cfg["bias"] else None
    return rng, x, w, b


def make_conv_transpose_arrays(cfg):
    rng = np.random.default_rng(cfg["seed"])
    dt = cfg["dtype"]
    x = rng.uniform(-1, 1, (cfg["n"], cfg["c_in"]) + cfg["size"]).astype(dt)
    w = rng.uniform(-1, 1, (cfg["c_in"], cfg["c_out"] // cfg["groups"]) + cfg["kernel"]).astype(dt)
    b = rng.uniform(-1, 1, cfg["c_out"]).astype(dt) if cfg["bias"] else None
    return rng, x, w, b


def conv_kwargs(cfg):
    return dict(stride=cfg["stride"], padding=cfg["padding"], dilation=cfg["dilation"],
                groups=cfg["groups"])


def conv_transpose_kwargs(cfg):
    return dict(stride=cfg["stride"], padding=cfg["padding"], output_padding=cfg["output_padding"],
                groups=cfg["groups"], dilation=cfg["dilation"])


# Each property test runs on both kernel sets (deconv.kernels.use): the tiled
# kernels on the full strategy, the naive loops on smaller shapes.
KERNEL_SETS = deconv.kernels.KERNEL_SETS
CONV_CONFIGS = {"tiled": conv_configs(), "naive": conv_configs(small=True)}
CONVT_CONFIGS = {"tiled": conv_transpose_configs(), "naive": conv_transpose_configs(small=True)}


# ---------------------------------------------------------------------------
# against the reference
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("kernel_set", KERNEL_SETS)
@given(data=st.data())
def test_conv_forward_backward_match_reference(kernel_set, data):
    cfg = data.draw(CONV_CONFIGS[kernel_set], label="cfg")
    with deconv.kernels.use(kernel_set):
        nd, dt = cfg["nd"], cfg["dtype"]
        rng, x, w, b = make_conv_arrays(cfg)
        kw = conv_kwargs(cfg)
        y = CONV[nd](x, w, b, **kw)
        assert y.dtype == dt
        assert_close(y, REF_CONV[nd](x, w, b, **kw))
        gy = rng.uniform(-1, 1, y.shape).astype(dt)
        gx, gw, gb = CONV_BWD[nd](gy, x, w, **kw)
        rx, rw, rb = REF_CONV_BWD[nd](gy, x, w, **kw)
        assert gx.dtype == gw.dtype == gb.dtype == dt
        assert_close(gx, rx)
        # the weight and bias gradients sum over the batch and the image
        terms = cfg["n"] * int(np.prod(y.shape[2:]))
        assert_close(gw, rw, scale=max(1.0, terms / 10))
        assert_close(gb, rb, scale=max(1.0, terms / 10))


@pytest.mark.parametrize("kernel_set", KERNEL_SETS)
@given(data=st.data())
def test_conv_transpose_forward_backward_match_reference(kernel_set, data):
    cfg = data.draw(CONVT_CONFIGS[kernel_set], label="cfg")
    with deconv.kernels.use(kernel_set):
        nd, dt = cfg["nd"], cfg["dtype"]
        rng, x, w, b = make_conv_transpose_arrays(cfg)
        kw = conv_transpose_kwargs(cfg)
        y = CONVT[nd](x, w, b, **kw)
        assert y.dtype == dt
        assert y.shape[2:] == tuple(
            deconv.shapes.conv_transpose_output_size(*args)
            for args in zip(cfg["size"], cfg["kernel"], cfg["stride"], cfg["padding"],
                            cfg["output_padding"], cfg["dilation"])
        )
        assert_close(y, REF_CONVT[nd](x, w, b, **kw))
        gy = rng.uniform(-1, 1, y.shape).astype(dt)
        gx, gw, gb = CONVT_BWD[nd](gy, x, w, **kw)
        rx, rw, rb = REF_CONVT_BWD[nd](gy, x, w, **kw)
        assert gx.dtype == gw.dtype == gb.dtype == dt
        assert_close(gx, rx)
        terms = cfg["n"] * int(np.prod(cfg["size"]))
        assert_close(gw, rw, scale=max(1.0, terms / 10))
        assert_close(gb, rb, scale=max(1.0, cfg["n"] * int(np.prod(y.shape[2:])) / 10))


# ---------------------------------------------------------------------------
# adjoint identities (float64): <A x, y> = <x, A^T y>
# ---------------------------------------------------------------------------

def _rel(a, b):
    return abs(a - b) / max(1.0, abs(a), abs(b))


@pytest.mark.parametrize("kernel_set", KERNEL_SETS)
@given(data=st.data())
def test_conv_adjoint_identities(kernel_set, data):
    cfg = data.draw(CONV_CONFIGS[kernel_set], label="cfg")
    with deconv.kernels.use(kernel_set):
        cfg = dict(cfg, dtype=np.float64, bias=False)
        nd = cfg["nd"]
        rng, x, w, _ = make_conv_arrays(cfg)
        kw = conv_kwargs(cfg)
        y = CONV[nd](x, w, **kw)
        r = rng.standard_normal(y.shape)
        gx, gw, _ = CONV_BWD[nd](r, x, w, **kw)
        # linear in x: <conv(x, w), r> = <x, grad_input(r)>; linear in w likewise
        assert _rel(np.vdot(y, r), np.vdot(x, gx)) < 1e-12
        assert _rel(np.vdot(y, r), np.vdot(w, gw)) < 1e-12


@pytest.mark.parametrize("kernel_set", KERNEL_SETS)
@given(data=st.data())
def test_conv_transpose_is_the_adjoint_of_conv(kernel_set, data):
    """conv_transpose(., w) is exactly the adjoint of conv(., w) with the same geometry."""
    cfg = data.draw(CONVT_CONFIGS[kernel_set], label="cfg")
    with deconv.kernels.use(kernel_set):
        cfg = dict(cfg, dtype=np.float64, bias=False)
        nd = cfg["nd"]
        rng, x, w, _ = make_conv_transpose_arrays(cfg)
        kw = conv_transpose_kwargs(cfg)
        y = CONVT[nd](x, w, **kw)
        z = rng.standard_normal(y.shape)
        # the transposed weight (C_in, C_out/g, k) is a conv weight mapping C_out -> C_in
        conv_z = CONV[nd](z, w, stride=cfg["stride"], padding=cfg["padding"],
                          dilation=cfg["dilation"], groups=cfg["groups"])
        # with output_padding >= stride the conv sees one more row than x has
        conv_z = conv_z[(slice(None), slice(None)) + tuple(slice(0, s) for s in cfg["size"])]
        assert _rel(np.vdot(y, z), np.vdot(x, conv_z)) < 1e-12
        gx, gw, _ = CONVT_BWD[nd](z, x, w, **kw)
        assert _rel(np.vdot(y, z), np.vdot(x, gx)) < 1e-12
        assert _rel(np.vdot(y, z), np.vdot(w, gw)) < 1e-12


# ---------------------------------------------------------------------------
# float64 central differences
# ---------------------------------------------------------------------------

FD_CASES = [
    dict(nd=2, n=2, c_in=4, c_out=2, groups=2, kernel=(3, 2), stride=(2, 1), padding=(1, 0),
         dilation=(1, 2), size=(5, 6)),
    dict(nd=1, n=2, c_in=3, c_out=2, groups=1, kernel=(4,), stride=(1,), padding="same",
         dilation=(2,), size=(7,)),
]

FD_T_CASES = [
    dict(nd=2, n=2, c_in=2, c_out=4, groups=2, kernel=(3, 3), stride=(2, 2), padding=(1, 0),
         output_padding=(1, 0), dilation=(1, 1), size=(3, 3)),
    dict(nd=1, n=1, c_in=3, c_out=2, groups=1, kernel=(2,), stride=(1,), padding=(1,),
         output_padding=(2,), dilation=(3,), size=(5,)),
]


@pytest.mark.parametrize("case", FD_CASES)
def test_conv_gradients_match_central_differences(case):
    cfg = dict(case, bias=True, dtype=np.float64, seed=7)
    nd = cfg["nd"]
    rng, x, w, b = make_conv_arrays(cfg)
    kw = conv_kwargs(cfg)
    r = rng.standard_normal(CONV[nd](x, w, b, **kw).shape)

    def loss():
        return float(np.sum(CONV[nd](x, w, b, **kw) * r))

    gx, gw, gb = CONV_BWD[nd](r, x, w, **kw)
    tol = dict(rtol=FINITE_DIFFERENCE["rtol"], atol=FINITE_DIFFERENCE["atol"])
    for analytic, array in ((gx, x), (gw, w), (gb, b)):
        np.testing.assert_allclose(analytic, numerical_gradient(loss, array), **tol)


@pytest.mark.parametrize("case", FD_T_CASES)
def test_conv_transpose_gradients_match_central_differences(case):
    cfg = dict(case, bias=True, dtype=np.float64, seed=11)
    nd = cfg["nd"]
    rng, x, w, b = make_conv_transpose_arrays(cfg)
    kw = conv_transpose_kwargs(cfg)
    r = rng.standard_normal(CONVT[nd](x, w, b, **kw).shape)

    def loss():
        return float(np.sum(CONVT[nd](x, w, b, **kw) * r))

    gx, gw, gb = CONVT_BWD[nd](r, x, w, **kw)
    tol = dict(rtol=FINITE_DIFFERENCE["rtol"], atol=FINITE_DIFFERENCE["atol"])
    for analytic, array in ((gx, x), (gw, w), (gb, b)):
        np.testing.assert_allclose(analytic, numerical_gradient(loss, array), **tol)


# ---------------------------------------------------------------------------
# edge cases
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("nd", ND)
@pytest.mark.parametrize("dtype", DTYPES)
def test_empty_batch(nd, dtype):
    x = np.zeros((0, 2) + (5,) * nd, dtype)
    w = np.ones((3, 2) + (3,) * nd, dtype)
    y = CONV[nd](x, w, padding=1)
    assert y.shape == (0, 3) + (5,) * nd and y.dtype == dtype
    gx, gw, gb = CONV_BWD[nd](y, x, w, padding=1)
    assert gx.shape == x.shape and gw.shape == w.shape and gb.shape == (3,)
    assert not gw.any() and not gb.any()
    wt = np.ones((2, 3) + (3,) * nd, dtype)
    yt = CONVT[nd](x, wt, stride=2)
    assert yt.shape == (0, 3) + (11,) * nd
    gx, gw, gb = CONVT_BWD[nd](yt, x, wt, stride=2)
    assert gx.shape == x.shape and not gw.any() and not gb.any()


def test_kernel_equal_to_padded_input_gives_one_output():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 3, 4))
    w = rng.standard_normal((2, 3, 5, 6))
    y = deconv.conv2d(x, w, padding=1)
    assert y.shape == (2, 2, 1, 1)
    assert_close(y, reference.conv2d(x, w, padding=1))
    gy = rng.standard_normal(y.shape)
    for got, want in zip(deconv.conv2d_backward(gy, x, w, padding=1),
                         reference.conv2d_backward(gy, x, w, padding=1)):
        assert_close(got, want)


def test_one_by_one_input_and_kernel():
    x = np.array([[[[2.0]], [[3.0]]]])          # (1, 2, 1, 1)
    w = np.array([[[[5.0]], [[7.0]]]])          # (1, 2, 1, 1)
    assert deconv.conv2d(x, w).tolist() == [[[[31.0]]]]
    gx, gw, gb = deconv.conv2d_backward(np.ones((1, 1, 1, 1)), x, w)
    assert gx.tolist() == w.tolist() and gw.tolist() == x.tolist() and gb.tolist() == [1.0]
    yt = deconv.conv_transpose2d(np.array([[[[2.0]]]]), np.array([[[[5.0]], [[7.0]]]]))
    assert yt.tolist() == [[[[10.0]], [[14.0]]]]


def test_same_padding_puts_the_odd_extra_on_the_right():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 1, 6))
    w = rng.standard_normal((1, 1, 4))
    y = deconv.conv1d(x, w, padding="same")
    assert y.shape == (1, 1, 6)
    # total padding 3: one zero on the left, two on the right
    xp = np.concatenate([np.zeros(1), x[0, 0], np.zeros(2)])
    expected = [np.dot(xp[i:i + 4], w[0, 0]) for i in range(6)]
    np.testing.assert_allclose(y[0, 0], expected, rtol=1e-12)


def _layouts(a):
    """The same values as non-contiguous, negative-stride and Fortran-ordered arrays."""
    wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
    wide[..., ::2] = a
    reversed_copy = np.ascontiguousarray(a[..., ::-1])
    return {
        "strided": wide[..., ::2],
        "negative": reversed_copy[..., ::-1],
        "fortran": np.asfortranarray(a),
    }


@pytest.mark.parametrize("dtype", DTYPES)
def test_noncontiguous_inputs_equal_contiguous(dtype):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 4, 6, 5)).astype(dtype)
    w = rng.standard_normal((4, 2, 3, 2)).astype(dtype)
    gy = rng.standard_normal((2, 4, 3, 3)).astype(dtype)
    kw = dict(stride=2, padding=(1, 1), groups=2)
    y = deconv.conv2d(x, w, **kw)
    grads = deconv.conv2d_backward(gy, x, w, **kw)
    yt = deconv.conv_transpose2d(gy, w, stride=2, padding=1, output_padding=1, groups=2)
    for name, xv in _layouts(x).items():
        for wname, wv in _layouts(w).items():
            assert np.array_equal(deconv.conv2d(xv, wv, **kw), y), (name, wname)
        for got, want in zip(deconv.conv2d_backward(_layouts(gy)[name], xv, w, **kw), grads):
            assert np.array_equal(got, want), name
        got = deconv.conv_transpose2d(_layouts(gy)[name], _layouts(w)[name], stride=2, padding=1,
                                      output_padding=1, groups=2)
        assert np.array_equal(got, yt), name


def test_read_only_inputs_are_not_mutated():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 2, 5, 5)).astype(np.float32)
    w = rng.standard_normal((2, 2, 3, 3)).astype(np.float32)
    b = rng.standard_normal(2).astype(np.float32)
    gy = rng.standard_normal((2, 2, 3, 3)).astype(np.float32)
    copies = [a.copy() for a in (x, w, b, gy)]
    for a in (x, w, b, gy):
        a.flags.writeable = False
    deconv.conv2d(x, w, b)
    deconv.conv2d_backward(gy, x, w)
    deconv.conv_transpose2d(gy, w, b)
    deconv.conv_transpose2d_backward(x, gy, w)
    for a, c in zip((x, w, b, gy), copies):
        assert np.array_equal(a, c)


def test_nan_propagates_to_exactly_the_windows_that_see_it():
    x = np.zeros((1, 1, 5, 5), np.float32)
    x[0, 0, 2, 2] = np.nan
    w = np.ones((1, 1, 3, 3), np.float32)
    y = deconv.conv2d(x, w)
    assert np.isnan(y).all()                    # every 3x3 window of 5x5 covers the centre
    y = deconv.conv2d(x, w, padding=1)
    assert np.array_equal(np.isnan(y[0, 0]), np.isnan(reference.conv2d(x, w, padding=1)[0, 0]))
    assert np.isnan(y).sum() == 9


def _layout_variants(a):
    """``a`` itself (contiguous) and each of its ``_layouts``."""
    return {"contiguous": a, **_layouts(a)}


def _assert_every_layout_equal(call, arrays, expected):
    """``call(*variants)`` is bitwise ``expected`` for every combination of layouts."""
    variants = [_layout_variants(a) for a in arrays]
    for names in itertools.product(*(v.keys() for v in variants)):
        got = call(*(v[n] for v, n in zip(variants, names)))
        got = got if isinstance(got, tuple) else (got,)
        assert len(got) == len(expected)
        for g, e in zip(got, expected):
            assert g.dtype == e.dtype, names
            assert np.array_equal(g, e), names


@pytest.mark.parametrize("dtype", DTYPES)
def test_noncontiguous_weights_and_every_pass_equal_contiguous(dtype):
    """Every argument of every pass (weights included), in any of the layouts, gives
    bitwise the contiguous call's result."""
    rng = np.random.default_rng(12)

    def arr(*shape):
        return rng.standard_normal(shape).astype(dtype)

    # conv2d_backward with non-contiguous weights (and grad_output / x)
    x, w, gy = arr(2, 4, 6, 5), arr(4, 2, 3, 2), arr(2, 4, 3, 3)
    kw = dict(stride=2, padding=(1, 1), groups=2)
    _assert_every_layout_equal(lambda g, a, b: deconv.conv2d_backward(g, a, b, **kw),
                               (gy, x, w), deconv.conv2d_backward(gy, x, w, **kw))
    # conv_transpose2d_backward
    kt = dict(stride=2, padding=1, output_padding=1, groups=2)
    xt, wt = arr(2, 4, 3, 3), arr(4, 3, 3, 2)
    gyt = arr(*deconv.conv_transpose2d(xt, wt, **kt).shape)
    _assert_every_layout_equal(lambda g, a, b: deconv.conv_transpose2d_backward(g, a, b, **kt),
                               (gyt, xt, wt), deconv.conv_transpose2d_backward(gyt, xt, wt, **kt))
    # conv1d and conv1d_backward
    x1, w1, b1 = arr(2, 4, 9), arr(6, 2, 3), arr(6)
    k1 = dict(stride=2, padding=2, dilation=2, groups=2)
    y1 = deconv.conv1d(x1, w1, b1, **k1)
    _assert_every_layout_equal(lambda a, b: deconv.conv1d(a, b, b1, **k1), (x1, w1), (y1,))
    g1 = arr(*y1.shape)
    _assert_every_layout_equal(lambda g, a, b: deconv.conv1d_backward(g, a, b, **k1),
                               (g1, x1, w1), deconv.conv1d_backward(g1, x1, w1, **k1))
    # conv_transpose1d and conv_transpose1d_backward
    xt1, wt1 = arr(2, 4, 5), arr(4, 3, 3)
    kt1 = dict(stride=3, padding=1, output_padding=2, groups=2, dilation=2)
    yt1 = deconv.conv_transpose1d(xt1, wt1, b1, **kt1)
    _assert_every_layout_equal(lambda a, b: deconv.conv_transpose1d(a, b, b1, **kt1),
                               (xt1, wt1), (yt1,))
    gt1 = arr(*yt1.shape)
    _assert_every_layout_equal(lambda g, a, b: deconv.conv_transpose1d_backward(g, a, b, **kt1),
                               (gt1, xt1, wt1), deconv.conv_transpose1d_backward(gt1, xt1, wt1, **kt1))


def _nan_footprint_conv_transpose2d(x, w, stride, padding):
    """Where a NaN of x reaches in conv_transpose2d (dilation 1, groups 1): the
    positions i*s + j - p, j over the kernel, of every output channel."""
    N, _, H, W = x.shape
    kh, kw = w.shape[2:]
    out = np.zeros((N, w.shape[1], (H - 1) * stride - 2 * padding + kh,
                    (W - 1) * stride - 2 * padding + kw), bool)
    for n, _, i, j in zip(*np.nonzero(np.isnan(x))):
        for a in range(kh):
            for b in range(kw):
                oi, oj = i * stride + a - padding, j * stride + b - padding
                if 0 <= oi < out.shape[2] and 0 <= oj < out.shape[3]:
                    out[n, :, oi, oj] = True
    return out


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("stride, padding", [(1, 0), (1, 1), (2, 0), (2, 1)])
def test_nan_propagates_through_conv_transpose2d_like_the_reference(dtype, stride, padding):
    # C_out/groups = 1: scipy's full 'direct' convolve keeps x as the sliding input
    x = np.random.default_rng(13).uniform(0.5, 1.0, (2, 2, 4, 5)).astype(dtype)
    x[0, 1, 0, 4] = np.nan                      # a corner: part of its footprint is cropped
    x[1, 0, 2, 1] = np.nan
    w = np.random.default_rng(14).uniform(0.5, 1.0, (2, 1, 3, 3)).astype(dtype)
    y = deconv.conv_transpose2d(x, w, stride=stride, padding=padding)
    expected = _nan_footprint_conv_transpose2d(x, w, stride, padding)
    assert expected.any() and not expected.all()
    np.testing.assert_array_equal(np.isnan(y), expected)
    ref = reference.conv_transpose2d(x, w, stride=stride, padding=padding)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(ref))
    assert_close(y[~expected], ref[~expected])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kw", [dict(), dict(padding=1), dict(stride=2, padding=1),
                                dict(stride=(1, 2), padding=(2, 0), groups=2)])
def test_nan_in_grad_output_propagates_like_the_reference(dtype, kw):
    """A NaN in grad_output reaches grad_input exactly where its window reads the input,
    every tap of its output channel's grad_weight (a tap over the zero padding too:
    NaN * 0 is NaN, as in the reference) and its channel's grad_bias."""
    rng = np.random.default_rng(15)
    groups = kw.get("groups", 1)
    # planes of grad_output larger than C_in/groups * kernel: scipy's direct 'full'
    # convolve in the reference then slides grad_output, not the kernel
    x = rng.uniform(0.5, 1.0, (2, 4, 9, 10)).astype(dtype)
    w = rng.uniform(0.5, 1.0, (4, 4 // groups, 3, 3)).astype(dtype)
    y = deconv.conv2d(x, w, **kw)
    for pos in [(0, 1, 0, 0), (1, 2, y.shape[2] // 2, y.shape[3] - 1)]:
        gy = rng.uniform(0.5, 1.0, y.shape).astype(dtype)
        gy[pos] = np.nan
        got = deconv.conv2d_backward(gy, x, w, **kw)
        want = reference.conv2d_backward(gy, x, w, **kw)
        for name, g, r in zip(("grad_input", "grad_weight", "grad_bias"), got, want):
            assert np.isnan(g).any() and not np.isnan(g).all(), (name, pos)
            np.testing.assert_array_equal(np.isnan(g), np.isnan(r), err_msg=f"{name} {pos}")
            finite = ~np.isnan(r)
            assert_close(g[finite], r[finite], scale=10.0, err_msg=f"{name} {pos}")
        # grad_input: the window of pos, in the input channels of its group
        n, co, oh, ow = pos
        (sh, sw), (ph, pw) = [v if isinstance(v, tuple) else (v, v)
                              for v in (kw.get("stride", 1), kw.get("padding", 0))]
        cin_g = w.shape[1]
        group = co // (w.shape[0] // groups)
        window = np.zeros(x.shape, bool)
        rows = slice(max(0, oh * sh - ph), oh * sh - ph + 3)
        cols = slice(max(0, ow * sw - pw), ow * sw - pw + 3)
        window[n, group * cin_g:(group + 1) * cin_g, rows, cols] = True
        np.testing.assert_array_equal(np.isnan(got[0]), window, err_msg=str(pos))
        # grad_weight: every tap of output channel co; grad_bias: entry co
        assert np.isnan(got[1][co]).all() and np.isnan(got[1]).sum() == w[co].size
        assert np.isnan(got[2]).sum() == 1 and np.isnan(got[2][co])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kw, size, kernel", [
    (dict(padding=1), (1, 1), (3, 3)),                          # 0 - 2 + 2 + 1
    (dict(stride=2, padding=1), (1, 1), (3, 3)),
    (dict(padding=(1, 2)), (2, 3), (2, 3)),                     # 1 - 2 + 1 + 1, 2 - 4 + 2 + 1
    (dict(stride=2, padding=1, output_padding=1), (1, 1), (2, 2)),   # 0 - 2 + 1 + 1 + 1
    (dict(dilation=2, padding=2), (1, 1), (3, 3)),              # 0 - 4 + 2*2 + 1
    (dict(stride=2, padding=1), (2, 2), (1, 1)),                # 2 - 2 + 0 + 1
])
def test_conv_transpose_output_exactly_one_by_one(dtype, kw, size, kernel):
    """The transposed counterpart of a kernel equal to the padded input: one output per plane."""
    rng = np.random.default_rng(16)
    x = rng.uniform(-1, 1, (2, 4) + size).astype(dtype)
    w = rng.uniform(-1, 1, (4, 3) + kernel).astype(dtype)
    b = rng.uniform(-1, 1, 3).astype(dtype)
    y = deconv.conv_transpose2d(x, w, b, **kw)
    assert y.shape == (2, 3, 1, 1) and y.dtype == dtype
    assert_close(y, reference.conv_transpose2d(x, w, b, **kw))
    gy = rng.uniform(-1, 1, y.shape).astype(dtype)
    got = deconv.conv_transpose2d_backward(gy, x, w, **kw)
    for g, r, a in zip(got, reference.conv_transpose2d_backward(gy, x, w, **kw), (x, w, b)):
        assert g.shape == a.shape and g.dtype == dtype
        assert_close(g, r)


@pytest.mark.parametrize("dtype", DTYPES)
def test_conv_transpose1d_output_of_length_one(dtype):
    rng = np.random.default_rng(17)
    x = rng.uniform(-1, 1, (3, 2, 2)).astype(dtype)
    w = rng.uniform(-1, 1, (2, 2, 2)).astype(dtype)
    kw = dict(stride=2, padding=2, output_padding=1)             # 2 - 4 + 1 + 1 + 1
    y = deconv.conv_transpose1d(x, w, **kw)
    assert y.shape == (3, 2, 1)
    assert_close(y, reference.conv_transpose1d(x, w, **kw))
    gy = rng.uniform(-1, 1, y.shape).astype(dtype)
    for g, r in zip(deconv.conv_transpose1d_backward(gy, x, w, **kw),
                    reference.conv_transpose1d_backward(gy, x, w, **kw)):
        assert_close(g, r)


@pytest.mark.parametrize("dtype", DTYPES)
def test_empty_batch_matches_reference(dtype):
    x = np.zeros((0, 4, 5, 6), dtype)
    w = np.ones((6, 2, 3, 2), dtype)
    b = np.ones(6, dtype)
    kw = dict(stride=(2, 1), padding=1, dilation=(1, 2), groups=2)
    y = deconv.conv2d(x, w, b, **kw)
    assert y.dtype == dtype
    assert_close(y, reference.conv2d(x, w, b, **kw))
    gy = np.ones(y.shape, dtype)
    for got, want in zip(deconv.conv2d_backward(gy, x, w, **kw),
                         reference.conv2d_backward(gy, x, w, **kw)):
        assert got.dtype == dtype
        assert_close(got, want)
    wt = np.ones((4, 3, 3, 2), dtype)
    kt = dict(stride=2, padding=(1, 0), output_padding=1, groups=2, dilation=(1, 2))
    yt = deconv.conv_transpose2d(x, wt, b, **kt)
    assert yt.shape == (0, 6, 10, 14) and yt.dtype == dtype
    assert_close(yt, reference.conv_transpose2d(x, wt, b, **kt))
    gyt = np.ones(yt.shape, dtype)
    for got, want in zip(deconv.conv_transpose2d_backward(gyt, x, wt, **kt),
                         reference.conv_transpose2d_backward(gyt, x, wt, **kt)):
        assert got.dtype == dtype
        assert_close(got, want)


# ---------------------------------------------------------------------------
# bitwise determinism across runs and thread counts
# ---------------------------------------------------------------------------

_DETERMINISM_SCRIPT = r"""
import hashlib, json, numpy as np, deconv
rng = np.random.default_rng(0)
x = rng.standard_normal((6, 8, 20, 20)).astype(np.float32)
w = rng.standard_normal((8, 4, 3, 3)).astype(np.float32)
b = rng.standard_normal(8).astype(np.float32)
y = deconv.conv2d(x, w, b, padding=1, groups=2)
outs = [y, *deconv.conv2d_backward(y, x, w, padding=1, groups=2)]
wt = rng.standard_normal((8, 3, 4, 4)).astype(np.float32)
yt = deconv.conv_transpose2d(x, wt, stride=2, padding=1)
outs += [yt, *deconv.conv_transpose2d_backward(yt, x, wt, stride=2, padding=1)]
x1 = rng.standard_normal((4, 16, 64))
w1 = rng.standard_normal((16, 16, 5))
outs += [*deconv.conv1d_backward(deconv.conv1d(x1, w1, padding=2), x1, w1, padding=2)]
xd = rng.standard_normal((5, 6, 17, 9)).astype(np.float32)    # depthwise: direct loops
wd = rng.standard_normal((12, 1, 3, 3)).astype(np.float32)
yd = deconv.conv2d(xd, wd, padding=1, groups=6)
outs += [yd, *deconv.conv2d_backward(yd, xd, wd, padding=1, groups=6)]
xs = rng.standard_normal((1, 16, 15, 15)).astype(np.float32)  # one sample: row tiles
ws = rng.standard_normal((3, 16, 3, 3)).astype(np.float32)
ys = deconv.conv2d(xs, ws, padding=1)
outs += [ys, *deconv.conv2d_backward(ys, xs, ws, padding=1)]
xe = rng.standard_normal((3, 18, 11, 37))                      # tiles over the edges, float64
we = rng.standard_normal((18, 9, 3, 3))
ye = deconv.conv2d(xe, we, stride=(2, 1), padding=1, groups=2)
outs += [ye, *deconv.conv2d_backward(ye, xe, we, stride=(2, 1), padding=1, groups=2)]
yet = deconv.conv_transpose2d(xe, we, stride=3, padding=1, groups=2)
outs += [yet, *deconv.conv_transpose2d_backward(yet, xe, we, stride=3, padding=1, groups=2)]
xp = rng.standard_normal((9, 32, 6, 6)).astype(np.float32)     # phases over one copy
wp = rng.standard_normal((32, 24, 4, 4)).astype(np.float32)
outs += [deconv.conv_transpose2d(xp, wp, stride=2, padding=1),
         deconv.conv_transpose2d(xp[:1], wp, stride=2, padding=1)]   # phases split in items
print(json.dumps([hashlib.sha256(o.tobytes()).hexdigest() for o in outs]))
"""


_SERIAL_PREFIX = r"""
import deconv.kernels.threads
deconv.kernels.threads._controller = None   # as without threadpoolctl: chunks in order, BLAS threaded
"""


def test_bitwise_identical_across_thread_counts():
    one = run_hashes(_DETERMINISM_SCRIPT, NUMBA_NUM_THREADS=1, OPENBLAS_NUM_THREADS=1)
    two = run_hashes(_DETERMINISM_SCRIPT, NUMBA_NUM_THREADS=2, OPENBLAS_NUM_THREADS=2)
    three = run_hashes(_DETERMINISM_SCRIPT, NUMBA_NUM_THREADS=3, OPENBLAS_NUM_THREADS=3)
    again = run_hashes(_DETERMINISM_SCRIPT, NUMBA_NUM_THREADS=2, OPENBLAS_NUM_THREADS=2)
    serial = run_hashes(_SERIAL_PREFIX + _DETERMINISM_SCRIPT, NUMBA_NUM_THREADS=2,
                        OPENBLAS_NUM_THREADS=2)
    # small calls on the calling thread alone (deconv.kernels.threads.SMALL_WORK), as by default
    small_serial = run_hashes(_DETERMINISM_SCRIPT, small_work=None, NUMBA_NUM_THREADS=2,
                              OPENBLAS_NUM_THREADS=2)
    assert one == two == three == again == serial == small_serial


# ---------------------------------------------------------------------------
# argument errors: raised before any work, naming the argument
# ---------------------------------------------------------------------------

X4 = np.zeros((2, 4, 6, 6), np.float32)
W4 = np.zeros((6, 2, 3, 3), np.float32)


@pytest.mark.parametrize("call, exc, match", [
    (lambda: deconv.conv2d(np.zeros((4, 6, 6), np.float32), W4), ValueError, r"x must be 4-D"),
    (lambda: deconv.conv2d(X4, np.zeros((6, 2, 3), np.float32)), ValueError, r"weight must be 4-D"),
    (lambda: deconv.conv1d(X4, W4), ValueError, r"x must be 3-D"),
    (lambda: deconv.conv2d(X4, W4, groups=1), ValueError, r"weight.shape\[1\]=2 must equal C_in/groups"),
    (lambda: deconv.conv2d(X4, W4, groups=3), ValueError, r"groups=3 must divide the input channels"),
    (lambda: deconv.conv2d(X4, np.zeros((5, 2, 3, 3), np.float32), groups=2), ValueError,
     r"groups=2 must divide the output channels C_out=5"),
    (lambda: deconv.conv2d(X4, W4, groups=0), ValueError, r"groups must be an int >= 1"),
    (lambda: deconv.conv2d(X4, W4, groups=2.0), TypeError, r"groups must be an int"),
    (lambda: deconv.conv2d(X4, W4, groups=2, stride=0), ValueError, r"stride must be >= 1"),
    (lambda: deconv.conv2d(X4, W4, groups=2, stride=(1, -1)), ValueError, r"stride must be >= 1"),
    (lambda: deconv.conv2d(X4, W4, groups=2, stride=(1, 1, 1)), ValueError, r"stride must be an int or a sequence of 2"),
    (lambda: deconv.conv2d(X4, W4, groups=2, dilation=0), ValueError, r"dilation must be >= 1"),
    (lambda: deconv.conv2d(X4, W4, groups=2, padding=-1), ValueError, r"padding must be >= 0"),
    (lambda: deconv.conv2d(X4, W4, groups=2, padding="full"), ValueError, r"padding must be an int.*'same'"),
    (lambda: deconv.conv2d(X4, W4, groups=2, padding="same", stride=2), ValueError,
     r"padding='same' is only supported with stride 1"),
    (lambda: deconv.conv2d(X4, W4, groups=2, dilation=4), ValueError, r"kernel_size=3 \(dilation=4"),
    (lambda: deconv.conv2d(X4, np.zeros((6, 2, 7, 3), np.float32), groups=2), ValueError,
     r"kernel_size=7 .* larger than the padded input"),
    (lambda: deconv.conv2d(X4[:0], np.zeros((6, 2, 7, 3), np.float32), groups=2), ValueError,
     r"larger than the padded input"),
    (lambda: deconv.conv2d(X4, W4.astype(np.float64), groups=2), TypeError, r"one dtype.*x: float32.*weight: float64"),
    (lambda: deconv.conv2d(X4, W4, np.zeros(6), groups=2), TypeError, r"bias: float64"),
    (lambda: deconv.conv2d(X4, W4, np.zeros(5, np.float32), groups=2), ValueError, r"bias must have shape \(6,\)"),
    (lambda: deconv.conv2d(X4.astype(np.int64), W4, groups=2), TypeError, r"x must have dtype float32 or float64, got int64"),
    (lambda: deconv.conv2d(X4.astype(bool), W4, groups=2), TypeError, r"x must have dtype float32 or float64, got bool"),
    (lambda: deconv.conv2d(X4.astype(np.complex64), W4, groups=2), TypeError, r"x must have dtype .* complex64"),
    (lambda: deconv.conv2d(X4.astype(np.float16), W4, groups=2), TypeError, r"float16"),
    (lambda: deconv.conv2d("x", W4, groups=2), TypeError, r"x must .*float32 or float64.*str"),
    (lambda: deconv.conv2d_backward(np.zeros((2, 6, 4, 5), np.float32), X4, W4, groups=2), ValueError,
     r"grad_output must have shape \(2, 6, 4, 4\)"),
    (lambda: deconv.conv2d_backward(np.zeros((2, 6, 4, 4)), X4, W4, groups=2), TypeError, r"grad_output: float64"),
])
def test_conv_bad_arguments(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


XT = np.zeros((2, 4, 3, 3), np.float32)
WT = np.zeros((4, 3, 3, 3), np.float32)


@pytest.mark.parametrize("call, exc, match", [
    (lambda: deconv.conv_transpose2d(XT[0], WT), ValueError, r"x must be 4-D"),
    (lambda: deconv.conv_transpose2d(XT, np.zeros((3, 3, 3, 3), np.float32)), ValueError,
     r"weight.shape\[0\]=3 must equal the input channels C_in=4"),
    (lambda: deconv.conv_transpose2d(XT, WT, groups=3), ValueError, r"groups=3 must divide the input channels C_in=4"),
    (lambda: deconv.conv_transpose2d(XT, WT, stride=0), ValueError, r"stride must be >= 1"),
    (lambda: deconv.conv_transpose2d(XT, WT, dilation=(1, 0)), ValueError, r"dilation must be >= 1"),
    (lambda: deconv.conv_transpose2d(XT, WT, padding=-2), ValueError, r"padding must be >= 0"),
    (lambda: deconv.conv_transpose2d(XT, WT, padding="full"), ValueError, r"padding must be an int, a tuple"),
    (lambda: deconv.conv_transpose2d(XT, WT, stride=2, padding="same"), ValueError,
     r"padding='same' needs stride 1"),
    (lambda: deconv.conv_transpose2d(XT, WT, stride=2, output_padding=2), ValueError,
     r"output_padding=2 must be smaller than max\(stride, dilation\)=2"),
    (lambda: deconv.conv_transpose2d(XT, WT, output_padding=1), ValueError, r"output_padding=1 must be smaller"),
    (lambda: deconv.conv_transpose2d(XT, WT, output_padding=-1), ValueError, r"output_padding must be >= 0"),
    (lambda: deconv.conv_transpose2d(XT, WT, padding=3), ValueError, r"output size would be -1"),
    (lambda: deconv.conv_transpose2d(XT[:0], WT, padding=3), ValueError, r"output size would be -1"),
    (lambda: deconv.conv_transpose2d(XT, WT, np.zeros(4, np.float32)), ValueError, r"bias must have shape \(3,\)"),
    (lambda: deconv.conv_transpose2d(XT, WT.astype(np.float64)), TypeError, r"one dtype"),
    (lambda: deconv.conv_transpose1d(XT, WT), ValueError, r"x must be 3-D"),
    (lambda: deconv.conv_transpose2d_backward(np.zeros((2, 3, 5, 6), np.float32), XT, WT), ValueError,
     r"grad_output must have shape \(2, 3, 5, 5\)"),
    # x of a dtype that is not float32/float64
    (lambda: deconv.conv_transpose2d(XT.astype(np.int64), WT), TypeError,
     r"x must have dtype float32 or float64, got int64"),
    (lambda: deconv.conv_transpose1d(XT[..., 0].astype(np.int32), WT[..., 0]), TypeError,
     r"x must have dtype float32 or float64, got int32"),
    (lambda: deconv.conv_transpose2d(XT.astype(bool), WT), TypeError,
     r"x must have dtype float32 or float64, got bool"),
    (lambda: deconv.conv_transpose2d(XT.astype(np.complex64), WT), TypeError,
     r"x must have dtype .*complex64"),
    (lambda: deconv.conv_transpose1d(XT[..., 0].astype(np.complex128), WT[..., 0]), TypeError,
     r"x must have dtype .*complex128"),
    # weight of the wrong ndim
    (lambda: deconv.conv_transpose2d(XT, WT[..., 0]), ValueError,
     r"weight must be 4-D .*\(C_in, C_out/groups, kH, kW\).*\(4, 3, 3\)"),
    (lambda: deconv.conv_transpose1d(XT[..., 0], WT), ValueError,
     r"weight must be 3-D .*\(4, 3, 3, 3\)"),
    (lambda: deconv.conv_transpose2d_backward(np.zeros((2, 3, 5, 5), np.float32), XT, WT[0]),
     ValueError, r"weight must be 4-D"),
    # backward with a grad_output of the wrong dtype
    (lambda: deconv.conv_transpose2d_backward(np.zeros((2, 3, 5, 5)), XT, WT), TypeError,
     r"one dtype.*grad_output: float64.*x: float32"),
    (lambda: deconv.conv_transpose1d_backward(np.zeros((2, 3, 5)), XT[..., 0], WT[..., 0]),
     TypeError, r"one dtype.*grad_output: float64"),
    (lambda: deconv.conv_transpose2d_backward(np.zeros((2, 3, 5, 5), np.int64), XT, WT), TypeError,
     r"grad_output must have dtype float32 or float64, got int64"),
    (lambda: deconv.conv_transpose1d_backward(np.zeros((2, 3, 5), bool), XT[..., 0], WT[..., 0]),
     TypeError, r"grad_output must have dtype .*bool"),
    (lambda: deconv.conv_transpose2d_backward(np.zeros((2, 3, 5, 5), np.complex64), XT, WT),
     TypeError, r"grad_output must have dtype .*complex64"),
])
def test_conv_transpose_bad_arguments(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


@pytest.mark.parametrize("groups", [1, 2])
def test_pointwise_shortcut_matches_reference(groups):
    """1x1 stride-1 convs skip the unfolding; check every pass, and the transposed conv with
    dilation whose output_padding makes its output longer than its input (no shortcut)."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 4, 5, 3))
    w = rng.standard_normal((6, 4 // groups, 1, 1))
    y = deconv.conv2d(x, w, groups=groups)
    assert_close(y, reference.conv2d(x, w, groups=groups))
    gy = rng.standard_normal(y.shape)
    for got, want in zip(deconv.conv2d_backward(gy, x, w, groups=groups),
                         reference.conv2d_backward(gy, x, w, groups=groups)):
        assert_close(got, want)
    wt = rng.standard_normal((4, 6 // groups, 1, 1))
    kw = dict(groups=groups, dilation=2, output_padding=1)
    yt = deconv.conv_transpose2d(x, wt, **kw)
    assert yt.shape == (2, 6, 6, 4)
    assert_close(yt, reference.conv_transpose2d(x, wt, **kw))
    gyt = rng.standard_normal(yt.shape)
    for got, want in zip(deconv.conv_transpose2d_backward(gyt, x, wt, **kw),
                         reference.conv_transpose2d_backward(gyt, x, wt, **kw)):
        assert_close(got, want)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size, kw", [
    ((28, 28), dict()),                                  # re-cut: one row of 784
    ((7, 7), dict(groups=2)),                            # re-cut: one row of 49
    ((14, 14), dict(stride=2)),                          # ResNet's shortcut
    ((9, 7), dict(stride=(3, 2), dilation=(2, 3))),      # odd sizes, every-3rd row
    ((1, 37), dict(stride=4, groups=2)),                 # 1-D
    ((6, 5), dict(stride=(1, 2))),
])
def test_one_by_one_convs_take_sampled_recut_planes_exactly(dtype, size, kw):
    """1x1 unpadded convs run on the pixels they read, re-cut into rows of whole
    vectors (functional.conv._pointwise_plan): every pass, and the transposed
    conv of the same geometry (whose output_padding leaves rows no pixel reaches),
    against the float64 reference, with a bias (the transposed conv's is added
    to those rows too)."""
    rng = np.random.default_rng(11)
    groups = kw.get("groups", 1)
    # enough elements that the call is not a small one (those run as they are)
    N = -(-SMALL_WORK // (6 * size[0] * size[1]))
    x = rng.standard_normal((N, 6, *size)).astype(dtype)
    w = rng.standard_normal((8, 6 // groups, 1, 1)).astype(dtype)
    b = rng.standard_normal(8).astype(dtype)
    y = deconv.conv2d(x, w, b, **kw)
    stride = kw.get("stride", 1)
    geometry = np.broadcast_to(stride, 2).tolist() + [0, 0, 1, 1]
    assert conv_module._pointwise_plan(x, w.shape, geometry, y.shape[2:], groups, y) is not None
    assert y.dtype == dtype
    assert_close(y, reference.conv2d(x, w, b, **kw))
    gy = rng.standard_normal(y.shape).astype(dtype)
    for got, want in zip(deconv.conv2d_backward(gy, x, w, **kw),
                         reference.conv2d_backward(gy, x, w, **kw)):
        assert got.dtype == dtype
        assert_close(got, want)
    tkw = dict(kw, output_padding=np.subtract(stride, 1).tolist() if stride != 1 else 0)
    wt = rng.standard_normal((8, 6 // groups, 1, 1)).astype(dtype)
    bt = rng.standard_normal(6).astype(dtype)
    yt = deconv.conv_transpose2d(gy, wt, bt, **tkw)
    assert_close(yt, reference.conv_transpose2d(gy, wt, bt, **tkw))
    gyt = rng.standard_normal(yt.shape).astype(dtype)
    for got, want in zip(deconv.conv_transpose2d_backward(gyt, gy, wt, **tkw),
                         reference.conv_transpose2d_backward(gyt, gy, wt, **tkw)):
        assert_close(got, want)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kw", [
    dict(stride=2, padding=1),                           # MobileNet's stride-2 depthwise
    dict(stride=(2, 3), padding=(2, 0), dilation=2),
    dict(stride=3, padding=1, dilation=(1, 3)),
    dict(stride=(1, 2), padding=2),
])
@pytest.mark.parametrize("multiplier", [1, 2])
def test_strided_depthwise_on_phase_planes_matches_reference(dtype, kw, multiplier):
    """The direct depthwise forward runs every tap over the input's phase planes
    (plan.depthwise_wide), and the input gradient goes by stride phases
    (``depthwise_input_grad_phases``): values, and an inf weight's NaN
    footprint, as the float64 reference's."""
    rng = np.random.default_rng(12)
    x = rng.standard_normal((2, 3, 13, 11)).astype(dtype)
    w = rng.standard_normal((3 * multiplier, 1, 3, 3)).astype(dtype)
    b = rng.standard_normal(3 * multiplier).astype(dtype)
    y = deconv.conv2d(x, w, b, groups=3, **kw)
    geometry = (*np.broadcast_to(kw["stride"], 2), *np.broadcast_to(kw["padding"], 2),
                *np.broadcast_to(kw.get("dilation", 1), 2))
    assert plan.depthwise_wide(x.shape[2:], y.shape[2:], (3, 3), geometry)
    assert y.dtype == dtype
    assert_close(y, reference.conv2d(x, w, b, groups=3, **kw))
    # the input gradient by phases in place (one output channel per group), or
    # the scatter (two): every pass, and the transposed conv of the same weight
    gy = rng.standard_normal(y.shape).astype(dtype)
    for got, want in zip(deconv.conv2d_backward(gy, x, w, groups=3, **kw),
                         reference.conv2d_backward(gy, x, w, groups=3, **kw)):
        assert got.dtype == dtype
        assert_close(got, want)
    wt = rng.standard_normal((3, multiplier, 3, 3)).astype(dtype)
    bt = rng.standard_normal(3 * multiplier).astype(dtype)
    tkw = dict(kw, output_padding=np.subtract(np.broadcast_to(kw["stride"], 2), 1).tolist())
    assert_close(deconv.conv_transpose2d(x, wt, bt, groups=3, **tkw),
                 reference.conv_transpose2d(x, wt, bt, groups=3, **tkw))
    w[1, 0, 0, 2] = np.inf
    with np.errstate(invalid="ignore"):
        want = reference.conv2d(x, w, b, groups=3, **kw)
    np.testing.assert_array_equal(np.isnan(deconv.conv2d(x, w, b, groups=3, **kw)),
                                  np.isnan(want))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kw", [
    dict(stride=2, padding=1),                            # DCGAN's k4 s2 p1
    dict(stride=2, padding=1, output_padding=1),          # k3: phases of 2 and 1 taps
    dict(stride=3, padding=2, dilation=2),                # phases padded apart
    dict(stride=(2, 3), padding=(0, 2), groups=2),
    dict(stride=3, padding=0, kernel=2, channels=48),     # a phase no tap reaches: bias only
])
@pytest.mark.parametrize("N", [1, 17])
def test_strided_transposed_convs_run_every_phase_over_one_copy(dtype, kw, N, monkeypatch):
    """A strided transposed conv on small planes (and so a strided conv's input
    gradient) runs its stride phases in calls of the channel-vector tile over
    one zero-padded copy of its input per item (plan.phases_plan), as many
    phases to a call as the output's size holds their packed sub-kernels
    (plan.phase_groups): against the float64
    reference, with a bias, an odd batch (a short last chunk of samples) and
    70 output channels (a short second block of lanes)."""
    kw = dict(kw)
    k = kw.pop("kernel", 4 if kw.get("output_padding") is None else 3)
    C_in = kw.pop("channels", 24)
    groups = kw.get("groups", 1)
    rng = np.random.default_rng(14)
    x = rng.standard_normal((N, C_in, 6, 5)).astype(dtype)
    w = rng.standard_normal((C_in, 70 // groups, k, k)).astype(dtype)
    b = rng.standard_normal(70).astype(dtype)
    calls = []
    real = conv_module._broadcast_phases
    monkeypatch.setattr(conv_module, "_broadcast_phases",
                        lambda *a: calls.append(len(a[3])) or real(*a))
    y = deconv.conv_transpose2d(x, w, b, **kw)
    stride, padding, dilation = (np.broadcast_to(kw.get(key, d), 2).tolist()
                                 for key, d in (("stride", 1), ("padding", 0), ("dilation", 1)))
    ph, pw = (plan.phase_taps(k, stride[a], padding[a], dilation[a], y.shape[2 + a])
              for a in range(2))
    cut = plan.phase_groups(w.shape, groups, ph, pw, np.dtype(dtype), y.size)
    # Whether a phase takes the channel-vector tile is the plan's choice for
    # the CPU (AVX2's float64 vectors of 4 lanes keep the grouped case's
    # rows on the pixel tile); float32 takes it on every target the plan
    # knows, so the route is always exercised.
    takes_tile = all(conv_module._phase_kernel(x, w, groups, a, b) == "broadcast"
                     for a in ph for b in pw)
    assert takes_tile or dtype == np.float64
    if takes_tile:
        assert calls == [len(pairs) for pairs in cut]
        # a batch of one: the phases in several calls, their packed sub-kernels
        # outgrowing its output (but for 48 channels where 70 lanes pad to 80,
        # not 128: AVX2); of 17, calls of several phases
        if N == 1:
            assert len(calls) > 1 or (C_in == 48 and plan.lanes(dtype) < 16)
        else:
            assert max(calls) > 1
    else:
        assert calls == []
    assert y.dtype == dtype
    assert_close(y, reference.conv_transpose2d(x, w, b, **kw))
    # the conv whose input gradient this is: its backward takes the same route
    ckw = {key: v for key, v in kw.items() if key != "output_padding"}
    gx, gw, gb = deconv.conv2d_backward(x, y, w, **ckw)
    for got, want in zip((gx, gw, gb), reference.conv2d_backward(x, y, w, **ckw)):
        assert_close(got, want, scale=10)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hw, channels, groups", [
    ((8, 8), 70, 1),      # DCGAN's planes; 70 channels: a short block, channels past the squares
    ((7, 8), 64, 1),      # 7 rows of 8: the samples' positions end in half a square
    ((8, 8), 80, 2),      # groups
    ((4, 16), 40, 1),     # rows of 16: a square a row on 16 lanes, two on 8
])
def test_paired_phases_write_what_each_phase_writes_alone(dtype, hw, channels, groups,
                                                          monkeypatch):
    """Stride-2 column phases with the same positions are written in pairs,
    interleaved in registers into whole runs of output rows
    (plan.pairs_interleave, ``interleave_rows``): bitwise what the phases write
    one by one, and the float64 reference's values. The phases are sent to
    the channel-vector tile whatever the plan would choose for this CPU (its
    choice is one of speed), so that every dtype's lanes run the pairs."""
    rng = np.random.default_rng(15)
    x = rng.standard_normal((5, 32 * groups) + hw).astype(dtype)
    w = rng.standard_normal((32 * groups, channels // groups, 4, 4)).astype(dtype)
    b = rng.standard_normal(channels).astype(dtype)
    monkeypatch.setattr(conv_module, "_forward_kernel", lambda *a: "broadcast")
    seen = []
    real = conv_module._broadcast_phases
    monkeypatch.setattr(conv_module, "_broadcast_phases",
                        lambda *a: seen.append(a[4].paired) or real(*a))
    paired = deconv.conv_transpose2d(x, w, b, stride=2, padding=1, groups=groups)
    assert seen and all(seen)
    phases_plan = plan.phases_plan
    monkeypatch.setattr(plan, "phases_plan", lambda *a: phases_plan(*a)._replace(paired=False))
    seen.clear()
    alone = deconv.conv_transpose2d(x, w, b, stride=2, padding=1, groups=groups)
    assert seen and not any(seen)
    np.testing.assert_array_equal(paired, alone)
    assert_close(paired, reference.conv_transpose2d(x, w, b, stride=2, padding=1, groups=groups))


def test_strided_depthwise_far_beyond_the_input_keeps_to_small_buffers():
    """A padding and dilation far beyond a 3x3 input: the phase kernels would
    border each plane with millions of zeros; the backward takes the scatter
    and matches the naive kernels (no MemoryError, milliseconds)."""
    x = np.random.default_rng(13).standard_normal((1, 2, 3, 3)).astype(np.float32)
    w = np.ones((2, 1, 2, 2), np.float32)
    kw = dict(stride=2, padding=2**13, dilation=2**14, groups=2)
    y = deconv.conv2d(x, w, **kw)
    got = deconv.conv2d_backward(np.ones_like(y), x, w, **kw)
    with deconv.kernels.use("naive"):
        want = deconv.conv2d_backward(np.ones_like(y), x, w, **kw)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-6)


# ---------------------------------------------------------------------------
# work plans: tiles, channel blocks and batch chunks bound the workspace
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kw", [
    dict(padding=1),
    dict(stride=2, padding=2, dilation=2),
    dict(stride=(1, 3), padding=(0, 1), groups=2),
])
def test_register_tile_plans_match_reference(dtype, kw):
    """One sample: the forward's items are tiles of a few output rows; 11 output
    channels and rows of 37 leave register tiles hanging over the last channels and
    the end of every row (stored with masks); the input gradient runs as phase convs."""
    rng = np.random.default_rng(5)
    groups = kw.get("groups", 1)
    x = rng.uniform(-1, 1, (1, 8 * groups, 13, 75)).astype(dtype)
    w = rng.uniform(-1, 1, (11 * groups, 8, 3, 3)).astype(dtype)
    b = rng.uniform(-1, 1, 11 * groups).astype(dtype)
    y = deconv.conv2d(x, w, b, **kw)
    H_out, W_out = y.shape[2:]
    s, d = kw.get("stride", 1), kw.get("dilation", 1)
    s, d = (s, s) if isinstance(s, int) else s, (d, d) if isinstance(d, int) else d
    p = kw.get("padding", 0)
    geometry = (s[0], s[1]) + ((p, p) if isinstance(p, int) else p) + (d[0], d[1])
    fwd = plan.forward_plan(groups, w.shape, geometry, H_out, W_out, np.dtype(dtype))
    assert fwd.rows < H_out
    assert 11 % fwd.tile.channels and W_out % (fwd.tile.vectors * fwd.lanes)
    assert_close(y, reference.conv2d(x, w, b, **kw))
    gy = rng.uniform(-1, 1, y.shape).astype(dtype)
    for got, want in zip(deconv.conv2d_backward(gy, x, w, **kw), reference.conv2d_backward(gy, x, w, **kw)):
        assert got.dtype == dtype
        assert_close(got, want, scale=4)


@pytest.mark.parametrize("dtype", DTYPES)
def test_weight_gradient_batch_chunks_match_reference(dtype):
    """Many samples: the weight gradient sums fixed chunks of the batch, then the chunks in order."""
    rng = np.random.default_rng(6)
    x = rng.uniform(-1, 1, (19, 3, 6, 6)).astype(dtype)
    w = rng.uniform(-1, 1, (4, 3, 2, 2)).astype(dtype)
    gy = rng.uniform(-1, 1, (19, 4, 5, 5)).astype(dtype)
    _, grad_weight, _ = deconv.conv2d_backward(gy, x, w)
    assert_close(grad_weight, reference.conv2d_backward(gy, x, w)[1], scale=8)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("multiplier", [1, 2, 3, 12])
@pytest.mark.parametrize("kw", [
    dict(padding=1, groups=4),
    dict(stride=2, padding=(2, 0), dilation=(1, 2), groups=4),
    dict(padding=(0, 3), dilation=2, groups=2),
    dict(stride=(3, 1), groups=1),
])
def test_single_input_channel_per_group_matches_reference(dtype, multiplier, kw):
    """Depthwise convs (and convs with one input channel) with few outputs per group run
    direct loops (a wide layout for stride 1), with more the register tiles (and GEMM +
    col2im for the input gradient); all against the reference."""
    rng = np.random.default_rng(7)
    groups = kw["groups"]
    assert plan.direct(1, multiplier) == (multiplier <= 2)
    x = rng.uniform(-1, 1, (3, groups, 9, 10)).astype(dtype)
    w = rng.uniform(-1, 1, (multiplier * groups, 1, 3, 2)).astype(dtype)
    b = rng.uniform(-1, 1, multiplier * groups).astype(dtype)
    y = deconv.conv2d(x, w, b, **kw)
    assert_close(y, reference.conv2d(x, w, b, **kw))
    gy = rng.uniform(-1, 1, y.shape).astype(dtype)
    for got, want in zip(deconv.conv2d_backward(gy, x, w, **kw), reference.conv2d_backward(gy, x, w, **kw)):
        assert got.dtype == dtype
        assert_close(got, want, scale=4)
    wt = rng.uniform(-1, 1, (groups, 1, 3, 3)).astype(dtype)   # depthwise transposed conv
    kt = dict(stride=2, padding=1, output_padding=1, groups=groups)
    yt = deconv.conv_transpose2d(x, wt, **kt)
    assert_close(yt, reference.conv_transpose2d(x, wt, **kt))
    gyt = rng.uniform(-1, 1, yt.shape).astype(dtype)
    for got, want in zip(deconv.conv_transpose2d_backward(gyt, x, wt, **kt),
                         reference.conv_transpose2d_backward(gyt, x, wt, **kt)):
        assert_close(got, want, scale=4)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nd, kw", [
    (2, dict(padding=1)), (2, dict(padding=(2, 0), dilation=(2, 1))),
    (2, dict(padding=1, groups=2)), (2, dict(stride=2, padding=1)), (1, dict(padding=2)),
])
def test_nan_footprints_are_exact_in_every_pass(dtype, nd, kw):
    """A NaN reaches exactly the outputs whose windows see it: in the forward, in the
    input gradient (a NaN in grad_output) and in the weight gradient (a NaN in x), with
    rows of 21 (tiles and pixel vectors that hang over each row's end read values
    beside the row, masked out; the NaN sits at the start of a row, right after the
    previous row's end), 8 input channels per group (the input gradient as phase convs)
    and, for 1-D, several samples per weight-gradient tile.
    Footprints are counted in finite arithmetic: the reference's zero insertion for
    dilation would spread NaN further."""
    rng = np.random.default_rng(10)
    groups = kw.get("groups", 1)
    shape = (4, 8 * groups, 9, 21) if nd == 2 else (6, 8, 37)
    x = rng.uniform(-1, 1, shape).astype(dtype)
    w = rng.uniform(-1, 1, (16, shape[1] // groups) + (3,) * nd).astype(dtype)
    conv, conv_bwd, ref_conv = CONV[nd], CONV_BWD[nd], REF_CONV[nd]
    ref_bwd = REF_CONV_BWD[nd]
    gy = rng.uniform(0.5, 1, conv(x, w, **kw).shape).astype(dtype)
    where = (1, 2, 5, 0) if nd == 2 else (1, 2, 36)
    x[where] = np.nan
    ones_w = np.ones(w.shape)
    x_nan = np.isnan(x).astype(np.float64)
    y = conv(x, w, **kw)
    seen = ref_conv(x_nan, ones_w, **kw) > 0
    assert seen.any() and np.array_equal(np.isnan(y), seen)
    _, grad_weight, _ = conv_bwd(gy, x, w, **kw)
    seen_w = ref_bwd(np.ones(gy.shape), x_nan, ones_w, **kw)[1] > 0
    assert seen_w.any() and not seen_w.all() and np.array_equal(np.isnan(grad_weight), seen_w)
    x[where] = 0.0
    gy[(0, 3) + (2,) * (nd - 1) + (gy.shape[-1] - 1,)] = np.nan
    grad_input, _, _ = conv_bwd(gy, x, w, **kw)
    seen_x = ref_bwd(np.isnan(gy).astype(np.float64), np.ones(x.shape), ones_w, **kw)[0] > 0
    assert seen_x.any() and np.array_equal(np.isnan(grad_input), seen_x)
