"""The 3-D family (issue 13): conv3d, conv_transpose3d, max/avg pooling, max
unpooling, nearest and trilinear upsampling, their backwards and layers.

Checked against the NumPy/SciPy reference (itself checked against outputs
recorded from PyTorch, tests/data/3d_cases.npz), by adjoint identities, by
float64 central differences, on the naive kernels, across thread counts,
and on bad arguments."""

import json
import os

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import deconv
from deconv import kernels, nn, reference
from deconv.gradcheck import numerical_gradient
from determinism import run_hashes
from tolerances import FINITE_DIFFERENCE as FD, assert_close

DTYPES = [np.float32, np.float64]
DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "3d_cases.npz")


def _triple(draw, values):
    """Per-axis parameters as an int (when all agree, sometimes) or a 3-tuple."""
    if len(set(values)) == 1 and draw(st.booleans()):
        return values[0]
    return tuple(values)


def distinct_values(rng, shape, dtype):
    """A random permutation of values 1e-3 apart: no near-ties in any dtype."""
    n = int(np.prod(shape))
    return ((rng.permutation(n) - n / 2) * 1e-3).reshape(shape).astype(dtype)


# ---------------------------------------------------------------------------
# strategies: every drawn configuration is valid by construction
# ---------------------------------------------------------------------------

@st.composite
def conv_configs(draw, transposed):
    groups = draw(st.integers(1, 2))
    c_in, c_out = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
    k = [draw(st.integers(1, 3)) for _ in range(3)]
    d = [draw(st.integers(1, 2)) for _ in range(3)]
    n = draw(st.integers(1, 2))
    if transposed:
        s = [draw(st.integers(1, 3)) for _ in range(3)]
        p = [draw(st.integers(0, 2)) for _ in range(3)]
        op = [draw(st.integers(0, max(ss, dd) - 1)) for ss, dd in zip(s, d)]
        # the smallest input whose output (L-1)*s - 2p + d*(k-1) + op + 1 is >= 1
        size = tuple(max(1, -(-(2 * pp - dd * (kk - 1) - o) // ss) + 1) + draw(st.integers(0, 2))
                     for kk, ss, pp, dd, o in zip(k, s, p, d, op))
        kwargs = dict(stride=_triple(draw, s), padding=_triple(draw, p),
                      output_padding=_triple(draw, op), groups=groups, dilation=_triple(draw, d))
        wshape = (c_in, c_out // groups) + tuple(k)
    else:
        padding = draw(st.sampled_from(["int", "int", "same", "valid"]))
        if padding == "same":
            s, p, pad_total = [1, 1, 1], "same", [dd * (kk - 1) for kk, dd in zip(k, d)]
        else:
            s = [draw(st.integers(1, 3)) for _ in range(3)]
            p = [0, 0, 0] if padding == "valid" else [draw(st.integers(0, 2)) for _ in range(3)]
            pad_total = [2 * pp for pp in p]
            p = "valid" if padding == "valid" else _triple(draw, p)
        # the dilated kernel fits the padded input
        size = tuple(max(1, dd * (kk - 1) + 1 - pt) + draw(st.integers(0, 3))
                     for kk, dd, pt in zip(k, d, pad_total))
        kwargs = dict(stride=_triple(draw, s), padding=p, dilation=_triple(draw, d), groups=groups)
        wshape = (c_out, c_in // groups) + tuple(k)
    return dict(shape=(n, c_in) + size, wshape=wshape, kwargs=kwargs, bias=draw(st.booleans()),
                dtype=draw(st.sampled_from(DTYPES)), seed=draw(st.integers(0, 2**31 - 1)))


@st.composite
def pool_configs(draw, kind):
    """kind 'max' (with dilation) or 'avg' (count_include_pad, divisor_override)."""
    k = [draw(st.integers(1, 3)) for _ in range(3)]
    s = [draw(st.integers(1, 3)) for _ in range(3)]
    p = [draw(st.integers(0, kk // 2)) for kk in k]
    d = [draw(st.integers(1, 2)) if kind == "max" else 1 for _ in range(3)]
    # L >= d*(k-1)+1-2p fits the window, and L >= d keeps an input in every
    # dilated window (see tests/test_pooling.py)
    size = tuple(max(1, dd * (kk - 1) + 1 - 2 * pp, dd) + draw(st.integers(0, 3))
                 for kk, pp, dd in zip(k, p, d))
    kwargs = dict(kernel_size=_triple(draw, k), stride=_triple(draw, s), padding=_triple(draw, p),
                  ceil_mode=draw(st.booleans()))
    if kind == "max":
        kwargs["dilation"] = _triple(draw, d)
    else:
        kwargs["count_include_pad"] = draw(st.booleans())
        kwargs["divisor_override"] = draw(st.sampled_from([None, None, 1, 3]))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 2))) + size
    return dict(shape=shape, kwargs=kwargs, dtype=draw(st.sampled_from(DTYPES)),
                seed=draw(st.integers(0, 2**31 - 1)))


@st.composite
def upsample_configs(draw):
    size_in = tuple(draw(st.integers(1, 4)) for _ in range(3))
    if draw(st.booleans()):
        call = dict(size=tuple(draw(st.integers(1, 7)) for _ in range(3)))
        backward = dict(scale_factor=None)
    else:
        # factors whose floor(L * f) >= 1 for every L >= 1
        scale = tuple(draw(st.sampled_from([1.0, 1.5, 2.0, 2.5, 3.0])) for _ in range(3))
        call = backward = dict(scale_factor=scale)
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 2))) + size_in
    return dict(shape=shape, call=call, backward=backward,
                align_corners=draw(st.booleans()), dtype=draw(st.sampled_from(DTYPES)),
                seed=draw(st.integers(0, 2**31 - 1)))


def _conv_arrays(cfg):
    rng = np.random.default_rng(cfg["seed"])
    dt = cfg["dtype"]
    x = rng.uniform(-1, 1, cfg["shape"]).astype(dt)
    w = rng.uniform(-1, 1, cfg["wshape"]).astype(dt)
    c_out = w.shape[0] if "output_padding" not in cfg["kwargs"] else w.shape[1] * cfg["kwargs"]["groups"]
    b = rng.uniform(-1, 1, c_out).astype(dt) if cfg["bias"] else None
    return rng, x, w, b


# ---------------------------------------------------------------------------
# against the reference, forward and backward, both dtypes
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("transposed", [False, True])
@given(data=st.data())
def test_conv_forward_backward_match_reference(transposed, data):
    cfg = data.draw(conv_configs(transposed))
    name = "conv_transpose3d" if transposed else "conv3d"
    rng, x, w, b = _conv_arrays(cfg)
    kw = cfg["kwargs"]
    y = getattr(deconv, name)(x, w, b, **kw)
    assert y.dtype == cfg["dtype"]
    assert_close(y, getattr(reference, name)(x, w, b, **kw), scale=10)
    gy = rng.uniform(-1, 1, y.shape).astype(cfg["dtype"])
    got = getattr(deconv, name + "_backward")(gy, x, w, **kw)
    want = getattr(reference, name + "_backward")(gy, x, w, **kw)
    for a, r in zip(got, want):
        assert a.dtype == cfg["dtype"]
        assert_close(a, r, scale=30)


@given(pool_configs("max"))
def test_max_pool3d_forward_backward_match_reference(cfg):
    rng = np.random.default_rng(cfg["seed"])
    x = distinct_values(rng, cfg["shape"], cfg["dtype"])
    out, idx = deconv.max_pool3d(x, **cfg["kwargs"])
    r_out, r_idx = reference.max_pool3d(x, **cfg["kwargs"])
    assert out.dtype == cfg["dtype"] and idx.dtype == np.int64
    assert_close(out, r_out)
    np.testing.assert_array_equal(idx, r_idx)
    go = rng.uniform(-1, 1, out.shape).astype(cfg["dtype"])
    assert_close(deconv.max_pool3d_backward(go, idx, x.shape),
                 reference.max_pool3d_backward(go, idx, x.shape))


@given(pool_configs("avg"))
def test_avg_pool3d_forward_backward_match_reference(cfg):
    rng = np.random.default_rng(cfg["seed"])
    x = rng.uniform(-1, 1, cfg["shape"]).astype(cfg["dtype"])
    kw = cfg["kwargs"]
    out = deconv.avg_pool3d(x, **kw)
    assert out.dtype == cfg["dtype"]
    assert_close(out, reference.avg_pool3d(x, **kw))
    go = rng.uniform(-1, 1, out.shape).astype(cfg["dtype"])
    gx = deconv.avg_pool3d_backward(go, x.shape, kw["kernel_size"],
                                    **{k: v for k, v in kw.items() if k != "kernel_size"})
    assert gx.dtype == cfg["dtype"]
    assert_close(gx, reference.avg_pool3d_backward(go, x.shape, **kw))


@given(pool_configs("max"))
def test_max_unpool3d_forward_backward_match_reference(cfg):
    """Unpooling the switches of a max pooling (overlapping windows included)."""
    kw = cfg["kwargs"]
    if kw.get("dilation", 1) not in (1, (1, 1, 1)):
        kw = dict(kw, dilation=1)           # unpooling knows no dilation: use an undilated pool
    rng = np.random.default_rng(cfg["seed"])
    x = distinct_values(rng, cfg["shape"], np.float64)
    pooled, idx = deconv.max_pool3d(x, **kw)
    values = rng.uniform(-1, 1, pooled.shape).astype(cfg["dtype"])
    ukw = dict(kernel_size=kw["kernel_size"], stride=kw["stride"], padding=kw["padding"],
               output_size=x.shape[2:])
    y = deconv.max_unpool3d(values, idx, **ukw)
    assert y.dtype == cfg["dtype"]
    assert_close(y, reference.max_unpool3d(values, idx, **ukw))
    g = rng.uniform(-1, 1, y.shape).astype(cfg["dtype"])
    assert_close(deconv.max_unpool3d_backward(g, idx), reference.max_unpool3d_backward(g, idx))


@pytest.mark.parametrize("mode", ["nearest", "trilinear"])
@given(data=st.data())
def test_upsample3d_forward_backward_match_reference(mode, data):
    cfg = data.draw(upsample_configs())
    rng = np.random.default_rng(cfg["seed"])
    x = rng.uniform(-1, 1, cfg["shape"]).astype(cfg["dtype"])
    extra = {} if mode == "nearest" else dict(align_corners=cfg["align_corners"])
    name = f"upsample_{mode}3d"
    y = getattr(deconv, name)(x, **cfg["call"], **extra)
    assert y.dtype == cfg["dtype"]
    assert_close(y, getattr(reference, name)(x, **cfg["call"], **extra))
    g = rng.uniform(-1, 1, y.shape).astype(cfg["dtype"])
    gx = getattr(deconv, name + "_backward")(g, x.shape, **cfg["backward"], **extra)
    assert gx.dtype == cfg["dtype"]
    assert_close(gx, getattr(reference, name + "_backward")(g, x.shape, **cfg["backward"],
                                                            **extra), scale=10)


# ---------------------------------------------------------------------------
# the reference and the product against outputs recorded from PyTorch
# ---------------------------------------------------------------------------

def _recorded_cases():
    data = np.load(DATA)
    keys = sorted({k.split("/")[0] for k in data.files})
    cases = []
    for key in keys:
        config = json.loads(str(data[f"{key}/config"]))
        arrays = {n.split("/", 1)[1]: data[n] for n in data.files if n.startswith(key + "/")}
        cases.append(pytest.param(config, arrays, id=f"{key}-{config['op']}"))
    return cases


def _run_recorded(m, config, a):
    """(out, {gradient name: value}) of ``config`` run by module ``m`` (deconv or reference)."""
    op, kw = config["op"], {k: tuple(v) if isinstance(v, list) else v
                            for k, v in config["kwargs"].items()}
    if op.startswith("conv"):
        out = getattr(m, op)(a["x"], a["weight"], a["bias"], **kw)
        gx, gw, gb = getattr(m, op + "_backward")(a["grad_output"], a["x"], a["weight"], **kw)
        return out, dict(grad_x=gx, grad_weight=gw, grad_bias=gb)
    if op == "max_pool3d":
        out, idx = m.max_pool3d(a["x"], **kw)
        np.testing.assert_array_equal(idx, a["out_indices"])
        return out, dict(grad_x=m.max_pool3d_backward(a["grad_output"], idx, a["x"].shape))
    if op == "avg_pool3d":
        k = kw.pop("kernel_size")
        out = m.avg_pool3d(a["x"], k, **kw)
        return out, dict(grad_x=m.avg_pool3d_backward(a["grad_output"], a["x"].shape, k, **kw))
    if op == "max_unpool3d":
        out = m.max_unpool3d(a["x"], a["indices"], **kw)
        return out, dict(grad_x=m.max_unpool3d_backward(a["grad_output"], a["indices"]))
    backward = {k: v for k, v in kw.items() if k != "size"}
    backward.setdefault("scale_factor", None)
    out = getattr(m, op)(a["x"], **kw)
    return out, dict(grad_x=getattr(m, op + "_backward")(a["grad_output"], a["x"].shape,
                                                         **backward))


@pytest.mark.parametrize("module", [reference, deconv], ids=["reference", "deconv"])
@pytest.mark.parametrize("config, arrays", _recorded_cases())
def test_matches_recorded_pytorch_outputs(module, config, arrays):
    out, grads = _run_recorded(module, config, arrays)
    np.testing.assert_allclose(out, arrays["out"], rtol=1e-10, atol=1e-12)
    for name, value in grads.items():
        np.testing.assert_allclose(value, arrays[name], rtol=1e-10, atol=1e-12, err_msg=name)


def test_recorded_cases_cover_every_3d_op():
    ops = {c.values[0]["op"] for c in _recorded_cases()}
    assert ops == {"conv3d", "conv_transpose3d", "max_pool3d", "avg_pool3d", "max_unpool3d",
                   "upsample_nearest3d", "upsample_trilinear3d"}


# ---------------------------------------------------------------------------
# adjoint identities (float64): <f(x), r> == <x, f^T(r)> for the linear ops
# ---------------------------------------------------------------------------

def _rel(a, b):
    return abs(a - b) / max(1.0, abs(a), abs(b))


@given(conv_configs(False))
def test_conv3d_and_conv_transpose3d_are_adjoint(cfg):
    """<conv3d(x, w), r> == <x, conv_transpose3d(r, w)> with the output_padding that
    restores x's size, and == <w, grad_weight>: the conv is linear in each argument."""
    cfg = dict(cfg, dtype=np.float64, bias=False)
    rng, x, w, _ = _conv_arrays(cfg)
    kw = cfg["kwargs"]
    y = deconv.conv3d(x, w, **kw)
    r = rng.standard_normal(y.shape)
    gx, gw, _ = deconv.conv3d_backward(r, x, w, **kw)
    lhs = float(np.vdot(y, r))
    assert _rel(lhs, float(np.vdot(x, gx))) < 1e-12
    assert _rel(lhs, float(np.vdot(w, gw))) < 1e-12
    if isinstance(kw["padding"], str):
        return
    stride, padding, dilation = (np.broadcast_to(kw[k], 3) for k in ("stride", "padding", "dilation"))
    output_padding = tuple(deconv.shapes.inverse_output_padding(L, k, s, p, d) for L, k, s, p, d in
                           zip(x.shape[2:], w.shape[2:], stride, padding, dilation))
    xt = deconv.conv_transpose3d(r, w, stride=kw["stride"], padding=kw["padding"],
                                 output_padding=output_padding, groups=kw["groups"],
                                 dilation=kw["dilation"])
    assert xt.shape == x.shape
    assert _rel(lhs, float(np.vdot(x, xt))) < 1e-12


@given(conv_configs(True))
def test_conv_transpose3d_backward_is_the_adjoint(cfg):
    cfg = dict(cfg, dtype=np.float64, bias=False)
    rng, x, w, _ = _conv_arrays(cfg)
    y = deconv.conv_transpose3d(x, w, **cfg["kwargs"])
    r = rng.standard_normal(y.shape)
    gx, gw, _ = deconv.conv_transpose3d_backward(r, x, w, **cfg["kwargs"])
    lhs = float(np.vdot(y, r))
    assert _rel(lhs, float(np.vdot(x, gx))) < 1e-12
    assert _rel(lhs, float(np.vdot(w, gw))) < 1e-12


@given(pool_configs("avg"))
def test_avg_pool3d_backward_is_the_adjoint(cfg):
    rng = np.random.default_rng(cfg["seed"])
    x = rng.standard_normal(cfg["shape"])
    kw = cfg["kwargs"]
    y = deconv.avg_pool3d(x, **kw)
    r = rng.standard_normal(y.shape)
    gx = deconv.avg_pool3d_backward(r, x.shape, kw["kernel_size"],
                                    **{k: v for k, v in kw.items() if k != "kernel_size"})
    assert _rel(float(np.vdot(y, r)), float(np.vdot(x, gx))) < 1e-12


@given(pool_configs("max"))
def test_max_pool3d_backward_is_the_adjoint_of_gathering_at_indices(cfg):
    rng = np.random.default_rng(cfg["seed"])
    x = distinct_values(rng, cfg["shape"], np.float64)
    out, idx = deconv.max_pool3d(x, **cfg["kwargs"])
    r = rng.standard_normal(out.shape)
    gx = deconv.max_pool3d_backward(r, idx, x.shape)
    n, c = x.shape[:2]
    gathered = np.take_along_axis(x.reshape(n, c, -1), idx.reshape(n, c, -1), axis=2)
    np.testing.assert_array_equal(gathered.reshape(out.shape), out)
    assert _rel(float(np.vdot(out, r)), float(np.vdot(x, gx))) < 1e-12


@pytest.mark.parametrize("mode", ["nearest", "trilinear"])
@given(data=st.data())
def test_upsample3d_backward_is_the_adjoint(mode, data):
    cfg = data.draw(upsample_configs())
    rng = np.random.default_rng(cfg["seed"])
    x = rng.standard_normal(cfg["shape"])
    extra = {} if mode == "nearest" else dict(align_corners=cfg["align_corners"])
    y = getattr(deconv, f"upsample_{mode}3d")(x, **cfg["call"], **extra)
    r = rng.standard_normal(y.shape)
    gx = getattr(deconv, f"upsample_{mode}3d_backward")(r, x.shape, **cfg["backward"], **extra)
    assert _rel(float(np.vdot(y, r)), float(np.vdot(x, gx))) < 1e-12


def test_max_unpool3d_backward_is_the_adjoint():
    rng = np.random.default_rng(4)
    x = distinct_values(rng, (2, 2, 4, 5, 6), np.float64)
    _, idx = deconv.max_pool3d(x, 2)
    v = rng.standard_normal(idx.shape)
    y = deconv.max_unpool3d(v, idx, 2, output_size=x.shape[2:])
    r = rng.standard_normal(y.shape)
    assert _rel(float(np.vdot(y, r)), float(np.vdot(v, deconv.max_unpool3d_backward(r, idx)))) < 1e-12


# ---------------------------------------------------------------------------
# float64 central differences
# ---------------------------------------------------------------------------

def _check_fd(loss, array, analytic):
    num = numerical_gradient(loss, array, eps=FD["eps"])
    np.testing.assert_allclose(analytic, num, rtol=FD["rtol"], atol=FD["atol"])


@pytest.mark.parametrize("kw", [
    dict(stride=(2, 1, 1), padding=(1, 0, 1), dilation=(1, 1, 2), groups=2),
    dict(padding="same", dilation=(2, 1, 1)),
])
def test_conv3d_backward_matches_central_differences(kw):
    rng = np.random.default_rng(5)
    x, w, b = rng.standard_normal((1, 2, 5, 4, 5)), rng.standard_normal((2, 1 if kw.get("groups") else 2, 2, 3, 2)), rng.standard_normal(2)
    r = rng.standard_normal(deconv.conv3d(x, w, b, **kw).shape)
    gx, gw, gb = deconv.conv3d_backward(r, x, w, **kw)

    def loss():
        return float(np.vdot(deconv.conv3d(x, w, b, **kw), r))
    _check_fd(loss, x, gx)
    _check_fd(loss, w, gw)
    _check_fd(loss, b, gb)


def test_conv_transpose3d_backward_matches_central_differences():
    kw = dict(stride=(2, 1, 2), padding=(1, 0, 0), output_padding=(1, 0, 1), groups=1,
              dilation=(1, 2, 1))
    rng = np.random.default_rng(6)
    x, w, b = rng.standard_normal((1, 2, 3, 2, 3)), rng.standard_normal((2, 2, 3, 2, 2)), rng.standard_normal(2)
    r = rng.standard_normal(deconv.conv_transpose3d(x, w, b, **kw).shape)
    gx, gw, gb = deconv.conv_transpose3d_backward(r, x, w, **kw)

    def loss():
        return float(np.vdot(deconv.conv_transpose3d(x, w, b, **kw), r))
    _check_fd(loss, x, gx)
    _check_fd(loss, w, gw)
    _check_fd(loss, b, gb)


def test_pooling_and_upsampling_backwards_match_central_differences():
    rng = np.random.default_rng(7)
    x = distinct_values(rng, (1, 2, 5, 4, 5), np.float64)
    pool_kw = dict(kernel_size=(3, 2, 3), stride=(2, 1, 2), padding=1, ceil_mode=True)
    out, idx = deconv.max_pool3d(x, dilation=(1, 2, 1), **pool_kw)
    r = rng.standard_normal(out.shape)
    _check_fd(lambda: float(np.vdot(deconv.max_pool3d(x, dilation=(1, 2, 1), **pool_kw)[0], r)),
              x, deconv.max_pool3d_backward(r, idx, x.shape))
    avg_kw = dict(pool_kw, count_include_pad=False)
    r = rng.standard_normal(deconv.avg_pool3d(x, **avg_kw).shape)
    backward_kw = {k: v for k, v in avg_kw.items() if k != "kernel_size"}
    _check_fd(lambda: float(np.vdot(deconv.avg_pool3d(x, **avg_kw), r)), x,
              deconv.avg_pool3d_backward(r, x.shape, avg_kw["kernel_size"], **backward_kw))
    up_kw = dict(scale_factor=(1.5, 2.0, 0.8), align_corners=False)
    r = rng.standard_normal(deconv.upsample_trilinear3d(x, **up_kw).shape)
    _check_fd(lambda: float(np.vdot(deconv.upsample_trilinear3d(x, **up_kw), r)), x,
              deconv.upsample_trilinear3d_backward(r, x.shape, **up_kw))


# ---------------------------------------------------------------------------
# kernels, layouts, determinism
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("transposed", [False, True])
def test_naive_kernels_give_the_same_3d_convolutions(transposed):
    """The depth-tap decomposition runs on whichever 2-D kernel set is active."""
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 4, 4, 5, 4))
    if transposed:
        name, w = "conv_transpose3d", rng.standard_normal((4, 3, 2, 3, 2))
        kw = dict(stride=2, padding=(1, 0, 1), output_padding=(1, 0, 0), groups=1, dilation=1)
    else:
        name, w = "conv3d", rng.standard_normal((6, 2, 3, 2, 3))
        kw = dict(stride=(1, 2, 1), padding=1, dilation=(2, 1, 1), groups=2)
    tiled = getattr(deconv, name)(x, w, None, **kw)
    g = rng.standard_normal(tiled.shape)
    tiled_grads = getattr(deconv, name + "_backward")(g, x, w, **kw)
    with kernels.use("naive"):
        naive = getattr(deconv, name)(x, w, None, **kw)
        naive_grads = getattr(deconv, name + "_backward")(g, x, w, **kw)
    np.testing.assert_allclose(naive, tiled, rtol=1e-12, atol=1e-12)
    for a, b in zip(naive_grads, tiled_grads):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_a_kernel_deeper_than_the_padded_input_reaches_no_output_from_some_taps():
    """Taps that fall in the depth padding for every output add nothing; the outputs
    they alone would reach hold the bias."""
    x = np.ones((1, 1, 1, 1, 1))
    w = np.ones((1, 1, 3, 1, 1))
    y = deconv.conv3d(x, w, np.array([0.5]), padding=(2, 0, 0))
    np.testing.assert_array_equal(y.ravel(), [1.5, 1.5, 1.5])
    yt = deconv.conv_transpose3d(np.ones((1, 1, 2, 1, 1)), w, np.array([0.5]), stride=3,
                                 output_padding=(2, 0, 0))
    np.testing.assert_array_equal(yt.ravel(), [1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 0.5, 0.5])


def test_non_contiguous_inputs_give_the_contiguous_result():
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 3, 6, 5, 4))
    w = rng.standard_normal((2, 3, 2, 2, 2))
    view = np.asfortranarray(x)
    np.testing.assert_array_equal(deconv.conv3d(view, w, stride=2), deconv.conv3d(x, w, stride=2))
    np.testing.assert_array_equal(deconv.max_pool3d(x[:, :, ::2], 2)[0],
                                  deconv.max_pool3d(np.ascontiguousarray(x[:, :, ::2]), 2)[0])


_DETERMINISM_SCRIPT = r"""
import hashlib, json, numpy as np, deconv
rng = np.random.default_rng(0)
outs = []
for dt in (np.float32, np.float64):
    x = rng.standard_normal((2, 8, 6, 9, 9)).astype(dt)
    w = rng.standard_normal((8, 4, 3, 3, 3)).astype(dt)
    kw = dict(stride=(2, 1, 1), padding=1, groups=2)
    y = deconv.conv3d(x, w, **kw)
    outs += [y, *deconv.conv3d_backward(y, x, w, **kw)]
    t = deconv.conv_transpose3d(x, w, stride=2, output_padding=1, groups=2)
    outs += [t, *deconv.conv_transpose3d_backward(t, x, w, stride=2, output_padding=1, groups=2)]
    o, i = deconv.max_pool3d(x, 3, stride=1, padding=1)
    outs += [o, i, deconv.max_pool3d_backward(o, i, x.shape), deconv.max_unpool3d(o, i, 3, 1, 1)]
    a = deconv.avg_pool3d(x, 3, 2, 1, count_include_pad=False)
    outs += [a, deconv.avg_pool3d_backward(a, x.shape, 3, stride=2, padding=1,
                                           count_include_pad=False)]
    u = deconv.upsample_trilinear3d(x, scale_factor=1.7)
    outs += [u, deconv.upsample_trilinear3d_backward(u, x.shape, scale_factor=1.7)]
    n = deconv.upsample_nearest3d(x, size=(7, 4, 11))
    outs += [n, deconv.upsample_nearest3d_backward(n, x.shape)]
print(json.dumps([hashlib.sha256(np.ascontiguousarray(o).tobytes()).hexdigest() for o in outs]))
"""


def test_bitwise_identical_across_thread_counts():
    assert run_hashes(_DETERMINISM_SCRIPT, NUMBA_NUM_THREADS=1) == \
        run_hashes(_DETERMINISM_SCRIPT, NUMBA_NUM_THREADS=2)


# ---------------------------------------------------------------------------
# layers
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("padding_mode", ["zeros", "reflect"])
def test_conv3d_layers_run_the_functional_ops(padding_mode):
    rng = np.random.default_rng(10)
    conv = nn.Conv3d(2, 4, (3, 2, 3), stride=(1, 2, 1), padding=1, groups=2,
                     padding_mode=padding_mode, dtype=np.float64, rng=0)
    x = rng.standard_normal((2, 2, 5, 6, 5))
    y = conv(x)
    xp = x if padding_mode == "zeros" else deconv.pad(x, (1,) * 6, mode="reflect")
    pad = 1 if padding_mode == "zeros" else 0
    np.testing.assert_allclose(y, deconv.conv3d(xp, conv.weight.data, conv.bias.data,
                                                stride=(1, 2, 1), padding=pad, groups=2))
    g = rng.standard_normal(y.shape)
    gx = conv.backward(g)
    assert gx.shape == x.shape
    num = numerical_gradient(lambda: float(np.vdot(conv(x), g)), x, eps=FD["eps"])
    np.testing.assert_allclose(gx, num, rtol=FD["rtol"], atol=FD["atol"])
    convt = nn.ConvTranspose3d(4, 2, 3, stride=2, padding=1, output_padding=1, dtype=np.float64,
                               rng=1)
    z = convt(y)
    assert z.shape == (2, 2, 2 * y.shape[2], 2 * y.shape[3], 2 * y.shape[4])
    gz = rng.standard_normal(z.shape)
    convt.zero_grad()
    gy = convt.backward(gz)
    ref = deconv.conv_transpose3d_backward(gz, y, convt.weight.data, stride=2, padding=1,
                                           output_padding=1)
    np.testing.assert_allclose(gy, ref[0])
    np.testing.assert_allclose(convt.weight.grad, ref[1])
    np.testing.assert_allclose(convt.bias.grad, ref[2])


def test_pool_unpool_and_upsample_layers_on_volumes():
    rng = np.random.default_rng(11)
    x = distinct_values(rng, (2, 3, 5, 6, 7), np.float32)
    pool = nn.MaxPool3d(2, stride=2, padding=1)
    unpool = nn.MaxUnpool3d(pool)
    y = unpool(pool(x))
    kept = y != 0
    np.testing.assert_array_equal(y[kept], x[kept])
    assert kept.sum() == pool.last_indices.size
    g = unpool.backward(np.ones_like(y))
    np.testing.assert_array_equal(pool.backward(g), kept.astype(np.float32))
    avg = nn.AvgPool3d(3, stride=2, padding=1, count_include_pad=False)
    np.testing.assert_array_equal(avg(x), deconv.avg_pool3d(x, 3, 2, 1, count_include_pad=False))
    up = nn.Upsample(scale_factor=(2, 1.5, 1), mode="trilinear", align_corners=True)
    u = up(x)
    np.testing.assert_array_equal(u, deconv.upsample_trilinear3d(
        x, scale_factor=(2, 1.5, 1), align_corners=True))
    np.testing.assert_array_equal(up.backward(u), deconv.upsample_trilinear3d_backward(
        u, x.shape, scale_factor=(2, 1.5, 1), align_corners=True))
    near = nn.Upsample(size=(3, 4, 9))
    np.testing.assert_array_equal(near(x), deconv.upsample_nearest3d(x, size=(3, 4, 9)))


@pytest.mark.parametrize("make, x, match", [
    (lambda: nn.Upsample(scale_factor=2, mode="trilinear"), np.zeros((1, 1, 4, 4), np.float32),
     r"^Upsample\(.*mode='trilinear'\): .*x must be 5-D"),
    (lambda: nn.MaxUnpool3d(nn.MaxPool2d(2)), None, r"MaxUnpool3d: pool must be the MaxPool3d"),
    (lambda: nn.Conv3d(2, 3, 3, rng=0), np.zeros((1, 3, 4, 4, 4), np.float32),
     r"^Conv3d\(2, 3, .*expects input of shape \(N, in_channels=2, D, H, W\)"),
])
def test_layer_errors_name_the_layer(make, x, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()(x)


# ---------------------------------------------------------------------------
# bad arguments: raised before any work, naming the argument
# ---------------------------------------------------------------------------

X5 = np.zeros((1, 2, 4, 4, 4), np.float32)
W5 = np.zeros((2, 2, 2, 2, 2), np.float32)
G5 = np.zeros((1, 2, 3, 3, 3), np.float32)
I5 = np.zeros((1, 2, 2, 2, 2), np.int64)

BAD_CALLS = [
    ("conv3d x 4-D", lambda: deconv.conv3d(X5[0], W5), ValueError, r"x must be 5-D"),
    ("conv3d weight 4-D", lambda: deconv.conv3d(X5, W5[0]), ValueError,
     r"weight must be 5-D .*\(C_out, C_in/groups, kD, kH, kW\)"),
    ("conv3d weight channels", lambda: deconv.conv3d(X5, W5[:, :1]), ValueError,
     r"weight.shape\[1\]=1 must equal C_in/groups"),
    ("conv3d stride 0", lambda: deconv.conv3d(X5, W5, stride=(1, 0, 1)), ValueError, r"stride"),
    ("conv3d same strided", lambda: deconv.conv3d(X5, W5, stride=2, padding="same"), ValueError,
     r"padding='same' is only supported with stride 1"),
    ("conv3d padding word", lambda: deconv.conv3d(X5, W5, padding="full"), ValueError,
     r"padding must be"),
    ("conv3d dtype mix", lambda: deconv.conv3d(X5, W5.astype(np.float64)), TypeError, r"weight"),
    ("conv3d kernel too big", lambda: deconv.conv3d(X5, np.zeros((2, 2, 5, 2, 2), np.float32)),
     ValueError, r"weight of shape"),
    ("conv3d groups", lambda: deconv.conv3d(X5, W5, groups=3), ValueError, r"groups=3"),
    ("conv3d_backward grad shape", lambda: deconv.conv3d_backward(X5, X5, W5), ValueError,
     r"grad_output must have shape \(1, 2, 3, 3, 3\)"),
    ("conv_transpose3d padding str", lambda: deconv.conv_transpose3d(X5, W5, padding="full"),
     ValueError, r"padding"),
    ("conv_transpose3d output_padding", lambda: deconv.conv_transpose3d(
        X5, W5, output_padding=(0, -1, 0)), ValueError, r"output_padding"),
    ("conv_transpose3d weight", lambda: deconv.conv_transpose3d(X5, W5[:1]), ValueError,
     r"weight.shape\[0\]=1 must equal the input channels"),
    ("max_pool3d kernel_size length", lambda: deconv.max_pool3d(X5, (2, 2)), ValueError,
     r"kernel_size"),
    ("max_pool3d padding", lambda: deconv.max_pool3d(X5, 2, padding=2), ValueError, r"padding"),
    ("max_pool3d x 4-D", lambda: deconv.max_pool3d(X5[0], 2), ValueError, r"x must be 5-D"),
    ("max_pool3d_backward indices dtype", lambda: deconv.max_pool3d_backward(
        G5, G5, X5.shape), TypeError, r"indices must have dtype int64"),
    ("max_pool3d_backward indices range", lambda: deconv.max_pool3d_backward(
        np.zeros((1, 2, 2, 2, 2), np.float32), I5 + 64, X5.shape), ValueError,
     r"indices must lie in \[0, 64\)"),
    ("avg_pool3d divisor_override", lambda: deconv.avg_pool3d(X5, 2, divisor_override=0),
     ValueError, r"divisor_override"),
    ("avg_pool3d ceil_mode", lambda: deconv.avg_pool3d(X5, 2, ceil_mode=1), TypeError,
     r"ceil_mode"),
    ("avg_pool3d_backward grad shape", lambda: deconv.avg_pool3d_backward(G5, X5.shape, 2),
     ValueError, r"grad_output must have shape \(1, 2, 2, 2, 2\)"),
    ("max_unpool3d output_size", lambda: deconv.max_unpool3d(
        np.zeros((1, 2, 2, 2, 2), np.float32), I5, 2, output_size=(9, 4, 4)), ValueError,
     r"output_size"),
    ("max_unpool3d indices range", lambda: deconv.max_unpool3d(
        np.zeros((1, 2, 2, 2, 2), np.float32), I5 - 1, 2), ValueError, r"indices must lie in"),
    ("max_unpool3d_backward indices 4-D", lambda: deconv.max_unpool3d_backward(X5, I5[0]),
     ValueError, r"indices must be 5-D"),
    ("upsample_nearest3d both", lambda: deconv.upsample_nearest3d(X5, size=2, scale_factor=2),
     ValueError, r"exactly one of size and scale_factor"),
    ("upsample_nearest3d size length", lambda: deconv.upsample_nearest3d(X5, size=(2, 2)),
     ValueError, r"size"),
    ("upsample_trilinear3d align_corners", lambda: deconv.upsample_trilinear3d(
        X5, scale_factor=2, align_corners="yes"), TypeError, r"align_corners"),
    ("upsample_trilinear3d_backward scale", lambda: deconv.upsample_trilinear3d_backward(
        G5, X5.shape, scale_factor=2), ValueError, r"input_shape=.*scale_factor=2"),
    ("upsample_nearest3d_backward input_shape", lambda: deconv.upsample_nearest3d_backward(
        G5, (2, 2, 4, 4, 4)), ValueError, r"input_shape"),
]


@pytest.mark.parametrize("call, exc, match", [c[1:] for c in BAD_CALLS],
                         ids=[c[0] for c in BAD_CALLS])
def test_bad_arguments_raise_naming_the_argument(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_empty_batch_and_channels_give_empty_results_of_the_right_shapes():
    x, w = np.zeros((0, 2, 3, 3, 3)), np.ones((2, 2, 2, 2, 2))
    assert deconv.conv3d(x, w).shape == (0, 2, 2, 2, 2)
    gx, gw, gb = deconv.conv3d_backward(np.zeros((0, 2, 2, 2, 2)), x, w)
    assert (gx.shape, gw.shape, gb.shape) == (x.shape, w.shape, (2,))
    np.testing.assert_array_equal(gw, 0.0)
    assert deconv.conv_transpose3d(x, w, stride=2).shape == (0, 2, 6, 6, 6)
    v = np.zeros((1, 0, 3, 3, 3), np.float32)
    out, idx = deconv.max_pool3d(v, 2)
    assert out.shape == idx.shape == (1, 0, 1, 1, 1)
    assert deconv.max_pool3d_backward(out, idx, v.shape).shape == v.shape
    assert deconv.avg_pool3d_backward(deconv.avg_pool3d(v, 2), v.shape, 2).shape == v.shape
    assert deconv.max_unpool3d(out, idx, 2).shape == (1, 0, 2, 2, 2)
    assert deconv.upsample_trilinear3d(v, scale_factor=2).shape == (1, 0, 6, 6, 6)
    assert deconv.upsample_nearest3d_backward(np.zeros((1, 0, 6, 6, 6), np.float32),
                                              v.shape).shape == v.shape
