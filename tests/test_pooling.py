"""max/avg pooling and max unpooling (1-D and 2-D): forward and backward against
the NumPy reference, adjoint identities, float64 finite differences, edge
cases, bitwise determinism across thread counts and argument errors."""

import json
import os

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import deconv
from deconv import reference
from deconv.gradcheck import directional_derivative, numerical_gradient
from determinism import run_hashes
from tolerances import FINITE_DIFFERENCE, assert_close

DTYPES = [np.float32, np.float64]
ND = [1, 2]

MAX = {1: deconv.max_pool1d, 2: deconv.max_pool2d}
MAX_BWD = {1: deconv.max_pool1d_backward, 2: deconv.max_pool2d_backward}
AVG = {1: deconv.avg_pool1d, 2: deconv.avg_pool2d}
AVG_BWD = {1: deconv.avg_pool1d_backward, 2: deconv.avg_pool2d_backward}
UNPOOL = {1: deconv.max_unpool1d, 2: deconv.max_unpool2d}
UNPOOL_BWD = {1: deconv.max_unpool1d_backward, 2: deconv.max_unpool2d_backward}


def _ref(name, nd):
    return getattr(reference, name.format(nd))


# ---------------------------------------------------------------------------
# strategies: every drawn configuration is valid by construction
# ---------------------------------------------------------------------------

def _param(draw, values):
    """An axis parameter as an int (if all axes agree, sometimes) or a tuple."""
    if len(set(values)) == 1 and draw(st.booleans()):
        return values[0]
    return tuple(values)


@st.composite
def pool_configs(draw, kind):
    """kind 'max' (with dilation) or 'avg' (count_include_pad, divisor_override)."""
    nd = draw(st.sampled_from(ND))
    k = [draw(st.integers(1, 4)) for _ in range(nd)]
    s = [draw(st.integers(1, 3)) for _ in range(nd)]
    p = [draw(st.integers(0, kk // 2)) for kk in k]
    d = [draw(st.integers(1, 3)) if kind == "max" else 1 for _ in range(nd)]
    # The dilated kernel must fit in the padded input; L >= d also makes
    # every (max) window hold an input element (its taps are d apart, the
    # first is < L and the last >= 0 since d*(k-1) >= k//2 >= p).
    size = tuple(max(1, dd * (kk - 1) + 1 - 2 * pp, dd) + draw(st.integers(0, 5))
                 for kk, pp, dd in zip(k, p, d))
    kwargs = dict(kernel_size=_param(draw, k), padding=_param(draw, p),
                  ceil_mode=draw(st.booleans()))
    kwargs["stride"] = None if s == k and draw(st.booleans()) else _param(draw, s)
    if kind == "max":
        kwargs["dilation"] = _param(draw, d)
    else:
        kwargs["count_include_pad"] = draw(st.booleans())
        kwargs["divisor_override"] = draw(st.sampled_from([None, None, 1, 3, 7]))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3))) + size
    return dict(nd=nd, shape=shape, kwargs=kwargs, dtype=draw(st.sampled_from(DTYPES)),
                seed=draw(st.integers(0, 2**31 - 1)))


@st.composite
def unpool_configs(draw):
    nd = draw(st.sampled_from(ND))
    k = [draw(st.integers(1, 4)) for _ in range(nd)]
    s = [draw(st.integers(1, 3)) for _ in range(nd)]
    p = [draw(st.integers(0, kk // 2)) for kk in k]
    # default output (L-1)*s - 2p + k >= 1
    size = tuple(1 + -(-max(0, 1 - kk + 2 * pp) // ss) + draw(st.integers(0, 4))
                 for kk, ss, pp in zip(k, s, p))
    default = [(L - 1) * ss - 2 * pp + kk for L, kk, ss, pp in zip(size, k, s, p)]
    mode = draw(st.sampled_from(["default", "spatial", "full"]))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3))) + size
    if mode == "default":
        out_spatial, output_size = tuple(default), None
    else:
        # PyTorch accepts default - s < size < default + s
        out_spatial = tuple(draw(st.integers(max(dd - ss + 1, 1), dd + ss - 1))
                            for dd, ss in zip(default, s))
        output_size = out_spatial if mode == "spatial" else shape[:2] + out_spatial
        if draw(st.booleans()):
            output_size = list(output_size)
    kwargs = dict(kernel_size=_param(draw, k), padding=_param(draw, p),
                  stride=None if s == k and draw(st.booleans()) else _param(draw, s),
                  output_size=output_size)
    return dict(nd=nd, shape=shape, out_spatial=out_spatial, kwargs=kwargs,
                dtype=draw(st.sampled_from(DTYPES)), seed=draw(st.integers(0, 2**31 - 1)))


def distinct_values(rng, shape, dtype):
    """A random permutation of values 1e-3 apart: no near-ties in any dtype."""
    n = int(np.prod(shape))
    return ((rng.permutation(n) - n / 2) * 1e-3).reshape(shape).astype(dtype)


def _frozen(*arrays):
    """Read-only inputs prove the kernels never write to them."""
    for a in arrays:
        a.flags.writeable = False
    return arrays


# ---------------------------------------------------------------------------
# against the reference
# ---------------------------------------------------------------------------

@given(pool_configs("max"))
def test_max_pool_forward_backward_match_reference(cfg):
    nd, dt, kw = cfg["nd"], cfg["dtype"], cfg["kwargs"]
    rng = np.random.default_rng(cfg["seed"])
    x = distinct_values(rng, cfg["shape"], dt)
    out, idx = MAX[nd](x, **kw)
    r_out, r_idx = _ref("max_pool{}d", nd)(x, **kw)
    assert out.dtype == dt and idx.dtype == np.int64
    assert_close(out, r_out)
    np.testing.assert_array_equal(idx, r_idx)
    go = rng.uniform(-1, 1, out.shape).astype(dt)
    gx = MAX_BWD[nd](go, idx, x.shape)
    assert gx.dtype == dt
    assert_close(gx, _ref("max_pool{}d_backward", nd)(go, idx, x.shape))


@given(pool_configs("avg"))
def test_avg_pool_forward_backward_match_reference(cfg):
    nd, dt, kw = cfg["nd"], cfg["dtype"], cfg["kwargs"]
    rng = np.random.default_rng(cfg["seed"])
    x = rng.uniform(-1, 1, cfg["shape"]).astype(dt)
    out = AVG[nd](x, **kw)
    assert out.dtype == dt
    assert_close(out, _ref("avg_pool{}d", nd)(x, **kw))
    go = rng.uniform(-1, 1, out.shape).astype(dt)
    gx = AVG_BWD[nd](go, x.shape, **kw)
    assert gx.dtype == dt
    assert_close(gx, _ref("avg_pool{}d_backward", nd)(go, x.shape, **kw))


@given(unpool_configs())
def test_max_unpool_forward_backward_match_reference(cfg):
    nd, dt, kw = cfg["nd"], cfg["dtype"], cfg["kwargs"]
    rng = np.random.default_rng(cfg["seed"])
    x = rng.uniform(-1, 1, cfg["shape"]).astype(dt)
    # random targets, repeats included: the last one in order must win
    idx = rng.integers(0, int(np.prod(cfg["out_spatial"])), cfg["shape"])
    out = UNPOOL[nd](x, idx, **kw)
    assert out.dtype == dt and out.shape == cfg["shape"][:2] + cfg["out_spatial"]
    np.testing.assert_array_equal(out, _ref("max_unpool{}d", nd)(x, idx, **kw))
    go = rng.uniform(-1, 1, out.shape).astype(dt)
    gx = UNPOOL_BWD[nd](go, idx)
    assert gx.dtype == dt
    np.testing.assert_array_equal(gx, _ref("max_unpool{}d_backward", nd)(go, idx))


@given(pool_configs("max"))
def test_max_unpool_inverts_max_pool_on_the_maxima(cfg):
    """unpool(pool(x)) keeps each window maximum in place, zeros elsewhere."""
    nd, dt, kw = cfg["nd"], cfg["dtype"], dict(cfg["kwargs"])
    kw["dilation"] = 1  # unpooling has no dilation
    rng = np.random.default_rng(cfg["seed"])
    x = distinct_values(rng, cfg["shape"], dt)
    out, idx = MAX[nd](x, **kw)
    del kw["dilation"], kw["ceil_mode"]
    y = UNPOOL[nd](out, idx, output_size=x.shape, **kw)
    expected = np.zeros_like(x).reshape(x.shape[0] * x.shape[1], -1)
    np.put_along_axis(expected, idx.reshape(expected.shape[0], -1),
                      out.reshape(expected.shape[0], -1), axis=1)
    np.testing.assert_array_equal(y, expected.reshape(x.shape))


def _torch_pool_cases():
    """Pooling cases of tests/data/torch_cases.npz (recorded from PyTorch, float64)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "torch_cases.npz")
    if not os.path.exists(path):
        return []
    cases = []
    with np.load(path, allow_pickle=False) as z:
        for key in sorted({k.split("/")[0] for k in z.files if k != "meta"}):
            config = json.loads(str(z[f"{key}/config"]))
            if "pool" in config["op"]:
                arrays = {name: z[f"{key}/{name}"] for name in config["arrays"]}
                kw = {k: tuple(v) if isinstance(v, list) else v
                      for k, v in config["kwargs"].items()}
                cases.append(pytest.param(config["op"], kw, arrays, id=f"{key}-{config['op']}"))
    return cases


@pytest.mark.parametrize("op, kw, a", _torch_pool_cases())
def test_matches_recorded_pytorch_outputs(op, kw, a):
    fwd, bwd = getattr(deconv, op), getattr(deconv, op + "_backward")
    x, go = a["x"], a["grad_output"]
    if op.startswith("max_pool"):
        out, idx = fwd(x, **kw)
        np.testing.assert_array_equal(idx, a["out_indices"])
        gx = bwd(go, idx, x.shape)
    elif op.startswith("avg_pool"):
        out = fwd(x, **kw)
        gx = bwd(go, x.shape, **kw)
    else:
        out = fwd(x, a["indices"], **kw)
        gx = bwd(go, a["indices"])
        # torch's backward also feeds overwritten duplicates; the reference's exact
        # backward is checked against torch elsewhere (test_reference_vs_torch.py)
        a = dict(a, grad_x=getattr(reference, op + "_backward")(go, a["indices"]))
    assert_close(out, a["out"])
    assert_close(gx, a["grad_x"])


# ---------------------------------------------------------------------------
# adjoint identities (float64): <A x, y> = <x, A^T y>
# ---------------------------------------------------------------------------

def _rel(a, b):
    return abs(a - b) / max(1.0, abs(a), abs(b))


def _gather(x, idx):
    P = x.shape[0] * x.shape[1]
    g = np.take_along_axis(x.reshape(P, -1), idx.reshape(P, -1), axis=1)
    return g.reshape(idx.shape)


@given(pool_configs("avg"))
def test_avg_pool_backward_is_the_adjoint(cfg):
    nd, kw = cfg["nd"], cfg["kwargs"]
    rng = np.random.default_rng(cfg["seed"])
    x = rng.standard_normal(cfg["shape"])
    y = AVG[nd](x, **kw)
    r = rng.standard_normal(y.shape)
    assert _rel(np.vdot(y, r), np.vdot(x, AVG_BWD[nd](r, x.shape, **kw))) < 1e-12


@given(pool_configs("max"))
def test_max_pool_backward_is_the_adjoint_of_gathering_at_indices(cfg):
    nd, kw = cfg["nd"], cfg["kwargs"]
    rng = np.random.default_rng(cfg["seed"])
    x = distinct_values(rng, cfg["shape"], np.float64)
    out, idx = MAX[nd](x, **kw)
    np.testing.assert_array_equal(_gather(x, idx), out)
    v = rng.standard_normal(x.shape)
    r = rng.standard_normal(out.shape)
    assert _rel(np.vdot(_gather(v, idx), r), np.vdot(v, MAX_BWD[nd](r, idx, x.shape))) < 1e-12


@given(unpool_configs())
def test_max_unpool_backward_is_the_adjoint(cfg):
    """Repeated targets included: the backward is the exact adjoint of "last wins"."""
    nd, kw = cfg["nd"], cfg["kwargs"]
    rng = np.random.default_rng(cfg["seed"])
    x = rng.standard_normal(cfg["shape"])
    idx = rng.integers(0, int(np.prod(cfg["out_spatial"])), cfg["shape"])
    y = UNPOOL[nd](x, idx, **kw)
    r = rng.standard_normal(y.shape)
    assert _rel(np.vdot(y, r), np.vdot(x, UNPOOL_BWD[nd](r, idx))) < 1e-12


def test_pool_then_unpool_with_overlapping_windows_matches_central_differences():
    """The deconvnet chain max_pool -> max_unpool with overlapping windows (3x3, stride 1):
    an input that is the maximum of several windows is copied once to the output, so its
    gradient is counted once (PyTorch's gather-backward would count it once per window)."""
    rng = np.random.default_rng(5)
    x = distinct_values(rng, (1, 2, 6, 6), np.float64)
    kw = dict(kernel_size=3, stride=1, padding=1)
    pooled, idx = deconv.max_pool2d(x, **kw)
    assert any(len(set(p)) < p.size for p in idx.reshape(2, -1))   # duplicates present
    r = rng.standard_normal((1, 2, 6, 6))

    def loss():
        p, i = deconv.max_pool2d(x, **kw)
        return float(np.vdot(deconv.max_unpool2d(p, i, output_size=(6, 6), **kw), r))

    grad_pooled = deconv.max_unpool2d_backward(r, idx)
    grad_x = deconv.max_pool2d_backward(grad_pooled, idx, x.shape)
    np.testing.assert_allclose(grad_x, numerical_gradient(loss, x), rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------------------
# float64 central differences
# ---------------------------------------------------------------------------

FD = FINITE_DIFFERENCE


@pytest.mark.parametrize("nd, kw", [
    (1, dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)),
    (2, dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 1), ceil_mode=True)),
    (2, dict(kernel_size=3, stride=1, padding=1, divisor_override=5)),
])
def test_avg_pool_backward_matches_finite_differences(nd, kw):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 2) + (7,) * nd)
    r = rng.standard_normal(AVG[nd](x, **kw).shape)
    num = numerical_gradient(lambda: np.vdot(AVG[nd](x, **kw), r), x, eps=FD["eps"])
    np.testing.assert_allclose(AVG_BWD[nd](r, x.shape, **kw), num,
                               rtol=FD["rtol"], atol=FD["atol"])


@pytest.mark.parametrize("nd, kw", [
    (1, dict(kernel_size=3, stride=1, padding=1)),
    (2, dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    (2, dict(kernel_size=(2, 3), stride=1, dilation=(2, 1))),
])
def test_max_pool_backward_matches_finite_differences(nd, kw):
    rng = np.random.default_rng(1)
    # 1e-3 apart >> eps: no perturbation changes an argmax
    x = distinct_values(rng, (2, 2) + (7,) * nd, np.float64)
    out, idx = MAX[nd](x, **kw)
    r = rng.standard_normal(out.shape)
    num = numerical_gradient(lambda: np.vdot(MAX[nd](x, **kw)[0], r), x, eps=FD["eps"])
    np.testing.assert_allclose(MAX_BWD[nd](r, idx, x.shape), num,
                               rtol=FD["rtol"], atol=FD["atol"])


def test_directional_derivatives_on_a_larger_input():
    rng = np.random.default_rng(2)
    x = distinct_values(rng, (2, 3, 16, 16), np.float64)
    kw = dict(kernel_size=3, stride=2, padding=1)
    out, idx = deconv.max_pool2d(x, **kw)
    r = rng.standard_normal(out.shape)
    ga = deconv.avg_pool2d_backward(r, x.shape, **kw)
    gm = deconv.max_pool2d_backward(r, idx, x.shape)
    for _ in range(3):
        v = rng.standard_normal(x.shape) * 1e-2
        da = directional_derivative(lambda: np.vdot(deconv.avg_pool2d(x, **kw), r), x, v)
        dm = directional_derivative(lambda: np.vdot(deconv.max_pool2d(x, **kw)[0], r), x, v)
        assert abs(da - np.vdot(ga, v)) < 1e-7
        assert abs(dm - np.vdot(gm, v)) < 1e-7


# ---------------------------------------------------------------------------
# edge cases
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("nd", ND)
@pytest.mark.parametrize("dt", DTYPES)
def test_empty_batch(nd, dt):
    x = np.zeros((0, 3) + (5,) * nd, dt)
    out, idx = MAX[nd](x, 2, padding=1)
    assert out.shape == idx.shape == (0, 3) + (3,) * nd and out.dtype == dt
    assert MAX_BWD[nd](out, idx, x.shape).shape == x.shape
    a = AVG[nd](x, 3, stride=2, ceil_mode=True)
    assert a.shape == (0, 3) + (2,) * nd and a.dtype == dt
    assert AVG_BWD[nd](a, x.shape, 3, stride=2, ceil_mode=True).shape == x.shape
    u = UNPOOL[nd](out, idx, 2, padding=1)
    assert u.shape == (0, 3) + (4,) * nd and u.dtype == dt
    assert UNPOOL_BWD[nd](u, idx).shape == idx.shape


@pytest.mark.parametrize("nd", ND)
def test_kernel_equal_to_the_padded_input(nd):
    rng = np.random.default_rng(3)
    x = distinct_values(rng, (2, 3) + (3,) * nd, np.float64)
    out, idx = MAX[nd](x, 5, padding=1)
    assert out.shape == (2, 3) + (1,) * nd
    flat = x.reshape(6, -1)
    np.testing.assert_array_equal(out.reshape(6), flat.max(axis=1))
    np.testing.assert_array_equal(idx.reshape(6), flat.argmax(axis=1))
    a = AVG[nd](x, 5, padding=1)
    np.testing.assert_allclose(a.reshape(6), flat.sum(axis=1) / 5**nd, rtol=1e-14)
    a = AVG[nd](x, 5, padding=1, count_include_pad=False)
    np.testing.assert_allclose(a.reshape(6), flat.mean(axis=1), rtol=1e-14)


@pytest.mark.parametrize("nd", ND)
@pytest.mark.parametrize("kw", [dict(kernel_size=1), dict(kernel_size=2, padding=1),
                                dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)])
def test_one_by_one_inputs(nd, kw):
    x = np.array([-2.5, 4.0]).reshape((1, 2) + (1,) * nd)
    out, idx = MAX[nd](x, **kw)
    np.testing.assert_array_equal(out, x)
    assert not idx.any()
    avg = AVG[nd](x, **kw)
    assert avg.shape == x.shape
    assert_close(avg, _ref("avg_pool{}d", nd)(x, **kw))
    assert_close(AVG[nd](x, **kw, count_include_pad=False), x)


# windows as large as the padded (3, 4) input: exactly one output per (n, c) plane
EQUAL_TO_PADDED = [
    dict(kernel_size=(3, 4)),
    dict(kernel_size=(5, 4), padding=(1, 0)),
    dict(kernel_size=(5, 6), stride=(2, 3), padding=1, ceil_mode=True),
]


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("kw", EQUAL_TO_PADDED + [
    dict(kernel_size=(3, 2), padding=(1, 0), dilation=(2, 3)),  # extents 5 = 3 + 2, 4
])
def test_max_pool2d_kernel_equal_to_the_padded_input_matches_reference(dt, kw):
    rng = np.random.default_rng(7)
    x = distinct_values(rng, (2, 3, 3, 4), dt)
    out, idx = deconv.max_pool2d(x, **kw)
    assert out.shape == idx.shape == (2, 3, 1, 1) and out.dtype == dt
    r_out, r_idx = reference.max_pool2d(x, **kw)
    assert_close(out, r_out)
    np.testing.assert_array_equal(idx, r_idx)
    if "dilation" not in kw:  # every input is in the one window
        np.testing.assert_array_equal(out.reshape(6), x.reshape(6, -1).max(axis=1))
    go = rng.uniform(-1, 1, out.shape).astype(dt)
    gx = deconv.max_pool2d_backward(go, idx, x.shape)
    assert gx.dtype == dt and np.count_nonzero(gx) == 6
    assert_close(gx, reference.max_pool2d_backward(go, idx, x.shape))


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("kw", EQUAL_TO_PADDED)
@pytest.mark.parametrize("extra", [dict(), dict(count_include_pad=False),
                                   dict(divisor_override=7)])
def test_avg_pool2d_kernel_equal_to_the_padded_input_matches_reference(dt, kw, extra):
    rng = np.random.default_rng(8)
    x = rng.uniform(-1, 1, (2, 3, 3, 4)).astype(dt)
    kw = dict(kw, **extra)
    out = deconv.avg_pool2d(x, **kw)
    assert out.shape == (2, 3, 1, 1) and out.dtype == dt
    assert_close(out, reference.avg_pool2d(x, **kw))
    go = rng.uniform(-1, 1, out.shape).astype(dt)
    gx = deconv.avg_pool2d_backward(go, x.shape, **kw)
    assert gx.dtype == dt
    assert_close(gx, reference.avg_pool2d_backward(go, x.shape, **kw))
    # every input of a plane gets the same share of its one gradient
    assert np.all(gx == gx[:, :, :1, :1])


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("nd", ND)
@pytest.mark.parametrize("kw, out_spatial", [
    (dict(kernel_size=1), 1),                                   # 1x1 -> 1x1
    (dict(kernel_size=2), 2),                                   # 1x1 -> 2x2
    (dict(kernel_size=3, stride=1, padding=1), 1),              # (1-1)*1 - 2 + 3
    (dict(kernel_size=2, output_size=3), 3),                    # default 2, up to 2 + s - 1
    (dict(kernel_size=3, stride=2, padding=1, output_size=2), 2),
])
def test_max_unpool_one_by_one_inputs_match_reference(dt, nd, kw, out_spatial):
    rng = np.random.default_rng(9)
    shape = (2, 3) + (1,) * nd
    x = rng.uniform(-1, 1, shape).astype(dt)
    plane = out_spatial ** nd
    idx = rng.integers(0, plane, shape)
    idx[0, 0] = plane - 1                                       # the last position too
    kw = dict(kw)
    if "output_size" in kw:
        kw["output_size"] = (kw["output_size"],) * nd
    out = UNPOOL[nd](x, idx, **kw)
    assert out.shape == shape[:2] + (out_spatial,) * nd and out.dtype == dt
    expected = _ref("max_unpool{}d", nd)(x, idx, **kw)
    np.testing.assert_array_equal(out, expected)
    assert np.count_nonzero(out) == 6 and np.isin(x, out).all()
    go = rng.uniform(-1, 1, out.shape).astype(dt)
    gx = UNPOOL_BWD[nd](go, idx)
    assert gx.shape == shape and gx.dtype == dt
    np.testing.assert_array_equal(gx, _ref("max_unpool{}d_backward", nd)(go, idx))
    np.testing.assert_array_equal(gx, _gather(go, idx))


def _layouts(a):
    """The same values as ``a`` in non-contiguous / reversed / Fortran layouts."""
    big = np.repeat(a, 2, axis=-1)[..., ::2]  # non-contiguous view
    rev = np.ascontiguousarray(a[..., ::-1])[..., ::-1]  # negative strides
    return [big, rev, np.asfortranarray(a)]


@pytest.mark.parametrize("nd", ND)
def test_any_memory_layout_gives_the_contiguous_result(nd):
    rng = np.random.default_rng(4)
    x = distinct_values(rng, (2, 3) + (6,) * nd, np.float32)
    kw = dict(kernel_size=3, stride=2, padding=1)
    out, idx = MAX[nd](x, **kw)
    go = rng.standard_normal(out.shape).astype(np.float32)
    expect = [out, idx, MAX_BWD[nd](go, idx, x.shape), AVG[nd](x, **kw),
              AVG_BWD[nd](go, x.shape, **kw), UNPOOL[nd](go, idx, **kw, output_size=x.shape),
              UNPOOL_BWD[nd](x, idx)]
    for xl, gl, il in zip(_layouts(x), _layouts(go), _layouts(idx)):
        assert not (xl.flags.c_contiguous and gl.flags.c_contiguous and il.flags.c_contiguous)
        got = [*MAX[nd](xl, **kw), MAX_BWD[nd](gl, il, x.shape), AVG[nd](xl, **kw),
               AVG_BWD[nd](gl, x.shape, **kw), UNPOOL[nd](gl, il, **kw, output_size=x.shape),
               UNPOOL_BWD[nd](xl, il)]
        for g, e in zip(got, expect):
            assert g.dtype == e.dtype
            np.testing.assert_array_equal(g, e)


@pytest.mark.parametrize("dt", DTYPES)
def test_read_only_inputs_are_accepted_and_never_mutated(dt):
    rng = np.random.default_rng(5)
    x = distinct_values(rng, (2, 3, 6, 6), dt)
    kw = dict(kernel_size=3, stride=1, padding=1)
    out, idx = deconv.max_pool2d(x, **kw)
    go = rng.standard_normal(out.shape).astype(dt)
    saved = [a.copy() for a in (x, go, idx)]
    expect = [deconv.max_pool2d_backward(go, idx, x.shape),
              deconv.avg_pool2d(x, **kw), deconv.avg_pool2d_backward(go, x.shape, **kw)]
    _frozen(x, go, idx)
    out2, idx2 = deconv.max_pool2d(x, **kw)
    got = [deconv.max_pool2d_backward(go, idx, x.shape),
           deconv.avg_pool2d(x, **kw), deconv.avg_pool2d_backward(go, x.shape, **kw)]
    u = deconv.max_unpool2d(go, idx, 3, stride=1, padding=1)
    gu = deconv.max_unpool2d_backward(u, idx)
    np.testing.assert_array_equal(out2, out)
    np.testing.assert_array_equal(idx2, idx)
    for g, e in zip(got, expect):
        np.testing.assert_array_equal(g, e)
    assert gu.shape == idx.shape and u.dtype == gu.dtype == dt
    for a, s in zip((x, go, idx), saved):
        np.testing.assert_array_equal(a, s)
    for result in (out2, idx2, *got, u, gu):
        assert result.flags.writeable
    # read-only inputs are copied rather than compiled for: one signature per dtype
    from deconv.kernels import pool as _pool_kernels
    for kernel in (_pool_kernels.max_pool2d_forward, _pool_kernels.max_unpool2d_forward,
                   _pool_kernels.avg_pool2d_backward, _pool_kernels.max_unpool2d_backward):
        for sig in kernel.signatures:
            assert all(t.mutable for t in sig if hasattr(t, "ndim")), sig


def test_nan_propagates_and_takes_the_gradient():
    x = np.array([[[[1.0, np.nan, 3.0, np.nan],
                    [5.0, 2.0, 7.0, 8.0],
                    [np.nan, 0.0, -1.0, -2.0],
                    [9.0, np.nan, -3.0, -4.0]]]], dtype=np.float32)
    out, idx = deconv.max_pool2d(x, 2)
    assert np.isnan(out[0, 0, 0, 0]) and np.isnan(out[0, 0, 0, 1]) and np.isnan(out[0, 0, 1, 0])
    assert out[0, 0, 1, 1] == -1.0
    # the first NaN in row-major window order (PyTorch CPU keeps the last one)
    np.testing.assert_array_equal(idx[0, 0], [[1, 3], [8, 10]])
    np.testing.assert_array_equal(idx, reference.max_pool2d(x, 2)[1])
    g = deconv.max_pool2d_backward(np.ones_like(out), idx, x.shape)
    assert g[0, 0, 0, 1] == g[0, 0, 0, 3] == g[0, 0, 2, 0] == g[0, 0, 2, 2] == 1.0
    assert g.sum() == 4.0
    # a NaN that comes after a larger value still wins
    out1, idx1 = deconv.max_pool1d(np.array([[[5.0, np.nan, np.nan, 1.0]]]), 4)
    assert np.isnan(out1[0, 0, 0]) and idx1[0, 0, 0] == 1
    assert np.isnan(deconv.avg_pool2d(x, 2)[0, 0, 0, 0])
    assert deconv.avg_pool2d(x, 2)[0, 0, 1, 1] == -2.5


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("nd, kw", [
    (2, dict(kernel_size=2)),
    (2, dict(kernel_size=3, stride=1, padding=1)),
    (2, dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2), ceil_mode=True)),
    (1, dict(kernel_size=4, stride=3, padding=2, dilation=2, ceil_mode=True)),
])
def test_nan_and_inf_heavy_inputs_match_reference(dt, nd, kw):
    """Long rows, so the vectorised compare/select meets NaN, +-inf and ties."""
    rng = np.random.default_rng(6)
    x = rng.integers(-3, 4, (2, 3) + (40,) * nd).astype(dt)  # many ties
    u = rng.random(x.shape)
    x[u < 0.05] = np.nan
    x[(u >= 0.05) & (u < 0.25)] = -np.inf
    x[(u >= 0.25) & (u < 0.27)] = np.inf
    x[(0, 0) + (slice(0, 8),) * nd] = -np.inf  # whole windows of -inf
    out, idx = MAX[nd](x, **kw)
    r_out, r_idx = _ref("max_pool{}d", nd)(x, **kw)
    np.testing.assert_array_equal(out, r_out.astype(dt))  # NaN == NaN here
    np.testing.assert_array_equal(idx, r_idx)
    assert np.isnan(out).any() and np.isneginf(out).any()


def test_overlapping_windows_accumulate_in_backward():
    x = np.array([[[[0.0, 1.0, 0.0],
                    [1.0, 9.0, 1.0],
                    [0.0, 1.0, 0.0]]]])
    out, idx = deconv.max_pool2d(x, 2, stride=1)
    np.testing.assert_array_equal(idx, np.full((1, 1, 2, 2), 4))
    g = deconv.max_pool2d_backward(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]), idx, x.shape)
    np.testing.assert_array_equal(g[0, 0], [[0, 0, 0], [0, 10, 0], [0, 0, 0]])
    ga = deconv.avg_pool2d_backward(np.ones((1, 1, 2, 2)), x.shape, 2, stride=1)
    np.testing.assert_array_equal(ga[0, 0], np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 4)
    g1 = deconv.max_pool1d_backward(np.ones((1, 1, 3)), np.array([[[1, 1, 3]]]), (1, 1, 5))
    np.testing.assert_array_equal(g1, [[[0, 2, 0, 1, 0]]])


def test_ceil_mode_windows():
    # L=3, k=2, s=2, p=1: ceil would add a window starting at 3 = L, entirely
    # in the right padding; it is dropped (same size as floor mode)
    x = np.array([[[1.0, 5.0, 3.0]]])
    for ceil_mode in (False, True):
        out, idx = deconv.max_pool1d(x, 2, stride=2, padding=1, ceil_mode=ceil_mode)
        np.testing.assert_array_equal(out, [[[1.0, 5.0]]])
        np.testing.assert_array_equal(idx, [[[0, 1]]])
        a = deconv.avg_pool1d(x, 2, stride=2, padding=1, ceil_mode=ceil_mode)
        np.testing.assert_array_equal(a, [[[0.5, 4.0]]])
    # the last ceil window runs past the end: only its in-bounds part counts
    x = np.array([[[1.0, 2.0, 3.0, 4.0, 5.0]]])
    out, idx = deconv.max_pool1d(x, 2, ceil_mode=True)
    np.testing.assert_array_equal(out, [[[2.0, 4.0, 5.0]]])
    np.testing.assert_array_equal(idx, [[[1, 3, 4]]])
    np.testing.assert_array_equal(deconv.avg_pool1d(x, 2, ceil_mode=True), [[[1.5, 3.5, 5.0]]])
    # with padding: windows [-1, 2), [1, 4), [3, min(6, L+p=5)); PyTorch's pool
    # size stops at L + p, so the last divisor is 2 (count_include_pad) or 1
    x = np.array([[[1.0, 2.0, 3.0, 4.0]]])
    kw = dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)
    np.testing.assert_allclose(deconv.avg_pool1d(x, **kw), [[[1.0, 3.0, 2.0]]], rtol=1e-15)
    np.testing.assert_allclose(deconv.avg_pool1d(x, **kw, count_include_pad=False),
                               [[[1.5, 3.0, 4.0]]], rtol=1e-15)
    np.testing.assert_allclose(deconv.avg_pool1d(x, **kw), reference.avg_pool1d(x, **kw))
    g = deconv.avg_pool1d_backward(np.ones((1, 1, 3)), x.shape, **kw)
    np.testing.assert_allclose(g, [[[1 / 3, 2 / 3, 1 / 3, 1 / 3 + 1 / 2]]], rtol=1e-15)
    x2 = np.arange(25.0).reshape(1, 1, 5, 5)
    for kw in (dict(kernel_size=2, ceil_mode=True),
               dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
               dict(kernel_size=(2, 3), stride=(3, 2), padding=(1, 0), ceil_mode=True)):
        out, idx = deconv.max_pool2d(x2, **kw)
        r_out, r_idx = reference.max_pool2d(x2, **kw)
        np.testing.assert_array_equal(out, r_out)
        np.testing.assert_array_equal(idx, r_idx)
        np.testing.assert_allclose(deconv.avg_pool2d(x2, **kw), reference.avg_pool2d(x2, **kw))


def test_all_minus_inf_windows_report_their_first_in_bounds_tap():
    x = np.full((1, 1, 3, 3), -np.inf, np.float32)
    out, idx = deconv.max_pool2d(x, 3, stride=1, padding=1)
    assert np.all(out == -np.inf)
    np.testing.assert_array_equal(idx[0, 0], [[0, 0, 1], [0, 0, 1], [3, 3, 4]])
    np.testing.assert_array_equal(idx, reference.max_pool2d(x, 3, stride=1, padding=1)[1])
    # dilated: window starting at -1 has taps -1, 1, 3 -> first in bounds is 1
    x1 = np.full((1, 1, 4), -np.inf)
    out, idx = deconv.max_pool1d(x1, 3, stride=1, padding=1, dilation=2)
    np.testing.assert_array_equal(idx, [[[1, 0]]])
    np.testing.assert_array_equal(idx, reference.max_pool1d(x1, 3, stride=1, padding=1,
                                                            dilation=2)[1])
    # -inf next to finite values: the finite maximum wins
    x1 = np.array([[[-np.inf, -np.inf, -7.0, -np.inf]]])
    np.testing.assert_array_equal(deconv.max_pool1d(x1, 2)[1], [[[0, 2]]])


def test_max_unpool_last_duplicate_wins_and_takes_the_gradient():
    x = np.array([[[[1.0, 2.0], [3.0, 4.0]]]], np.float32)
    idx = np.array([[[[5, 5], [0, 5]]]])
    y = deconv.max_unpool2d(x, idx, 2)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y[0, 0], [[3, 0, 0, 0], [0, 4, 0, 0],
                                            [0, 0, 0, 0], [0, 0, 0, 0]])
    g = deconv.max_unpool2d_backward(np.arange(16.0).reshape(1, 1, 4, 4), idx)
    # position 5 keeps x[1, 1]; the overwritten duplicates get no gradient
    np.testing.assert_array_equal(g[0, 0], [[0, 0], [0, 5]])


# ---------------------------------------------------------------------------
# bitwise determinism across runs and thread counts
# ---------------------------------------------------------------------------

_DETERMINISM_SCRIPT = r"""
import hashlib, json, numpy as np, deconv
rng = np.random.default_rng(0)
outs = []
for dt in (np.float32, np.float64):
    x = rng.standard_normal((4, 16, 24, 24)).astype(dt)
    out, idx = deconv.max_pool2d(x, 3, stride=1, padding=1)
    outs += [out, idx, deconv.max_pool2d_backward(out, idx, x.shape)]
    kw = dict(kernel_size=3, stride=1, padding=1, count_include_pad=False)
    a = deconv.avg_pool2d(x, **kw)
    outs += [a, deconv.avg_pool2d_backward(a, x.shape, **kw)]
    o2, i2 = deconv.max_pool2d(x, 2)
    u = deconv.max_unpool2d(o2, i2, 2)
    outs += [u, deconv.max_unpool2d_backward(u, i2)]
    x1 = x.reshape(4, 16, 576)
    o1, i1 = deconv.max_pool1d(x1, 5, stride=2, padding=2, dilation=2)
    outs += [o1, deconv.max_pool1d_backward(o1, i1, x1.shape),
             deconv.avg_pool1d_backward(deconv.avg_pool1d(x1, 4, 3, 2), x1.shape, 4,
                                        stride=3, padding=2),
             deconv.max_unpool1d_backward(x1, deconv.max_pool1d(x1, 3)[1])]
digest = json.dumps([hashlib.sha256(o.tobytes()).hexdigest() for o in outs])
print(digest)
"""


def test_bitwise_identical_across_thread_counts():
    one = run_hashes(_DETERMINISM_SCRIPT, NUMBA_NUM_THREADS=1)
    two = run_hashes(_DETERMINISM_SCRIPT, NUMBA_NUM_THREADS=2)
    assert one == two
    # and the same as in this process
    namespace = {}
    exec(_DETERMINISM_SCRIPT, namespace)
    assert json.loads(namespace["digest"]) == one


# ---------------------------------------------------------------------------
# argument errors: raised before any work, naming the argument
# ---------------------------------------------------------------------------

X4 = np.zeros((2, 3, 6, 6), np.float32)
X3 = np.zeros((2, 3, 6), np.float32)
G4 = np.zeros((2, 3, 3, 3), np.float32)
I4 = np.zeros((2, 3, 3, 3), np.int64)
G3 = np.zeros((2, 3, 3), np.float32)
I3 = np.zeros((2, 3, 3), np.int64)

BAD_CALLS = [
    # inputs
    ("x 3-D for 2-D op", lambda: deconv.max_pool2d(X3, 2), ValueError, r"x must be 4-D"),
    ("x 4-D for 1-D op", lambda: deconv.avg_pool1d(X4, 2), ValueError, r"x must be 3-D"),
    ("x int dtype", lambda: deconv.max_pool2d(X4.astype(np.int32), 2), TypeError,
     r"x must have dtype float32 or float64, got int32"),
    ("x float16", lambda: deconv.avg_pool2d(X4.astype(np.float16), 2), TypeError, r"x .*float16"),
    ("max_pool x bool", lambda: deconv.max_pool2d(X4.astype(bool), 2), TypeError,
     r"x must have dtype float32 or float64, got bool"),
    ("max_pool1d x bool", lambda: deconv.max_pool1d(X3.astype(bool), 2), TypeError,
     r"x must have dtype .*got bool"),
    ("max_pool x complex", lambda: deconv.max_pool1d(X3.astype(np.complex128), 2), TypeError,
     r"x must have dtype float32 or float64, got complex128"),
    ("max_pool2d x complex", lambda: deconv.max_pool2d(X4.astype(np.complex64), 2), TypeError,
     r"x must have dtype .*complex64"),
    ("avg_pool x bool", lambda: deconv.avg_pool1d(X3.astype(bool), 2), TypeError,
     r"x must have dtype float32 or float64, got bool"),
    ("avg_pool2d x bool", lambda: deconv.avg_pool2d(X4.astype(bool), 2), TypeError,
     r"x must have dtype .*got bool"),
    ("avg_pool x complex", lambda: deconv.avg_pool2d(X4.astype(np.complex64), 2), TypeError,
     r"x must have dtype float32 or float64, got complex64"),
    ("avg_pool1d x complex", lambda: deconv.avg_pool1d(X3.astype(np.complex128), 2), TypeError,
     r"x must have dtype .*complex128"),
    ("x not an array", lambda: deconv.max_pool1d("abc", 2), TypeError, r"x must"),
    ("x empty spatial", lambda: deconv.max_pool2d(np.zeros((1, 1, 0, 4)), 1), ValueError,
     r"x must have spatial sizes >= 1"),
    # window parameters
    ("kernel_size 0", lambda: deconv.max_pool2d(X4, 0), ValueError,
     r"kernel_size must be >= 1, got 0"),
    ("kernel_size negative", lambda: deconv.avg_pool1d(X3, (-2,)), ValueError,
     r"kernel_size .*-2"),
    ("kernel_size bool", lambda: deconv.max_pool2d(X4, True), TypeError, r"kernel_size .*True"),
    ("kernel_size float", lambda: deconv.avg_pool2d(X4, 2.0), TypeError, r"kernel_size .*2\.0"),
    ("kernel_size length", lambda: deconv.max_pool2d(X4, (2, 2, 2)), ValueError,
     r"kernel_size must be an int or a sequence of 2 ints"),
    ("stride 0", lambda: deconv.max_pool1d(X3, 2, stride=0), ValueError,
     r"stride must be >= 1, got 0"),
    ("stride float", lambda: deconv.avg_pool2d(X4, 2, stride=1.5), TypeError, r"stride .*1\.5"),
    ("dilation 0", lambda: deconv.max_pool2d(X4, 2, dilation=(1, 0)), ValueError, r"dilation .*0"),
    ("padding negative", lambda: deconv.max_pool2d(X4, 2, padding=-1), ValueError,
     r"padding must be >= 0, got -1"),
    ("padding > k//2", lambda: deconv.avg_pool2d(X4, 3, padding=2), ValueError,
     r"padding=2 must be at most half of kernel_size=3"),
    ("kernel > padded input", lambda: deconv.max_pool2d(X4, (2, 7)), ValueError,
     r"kernel_size=7 .*larger than the padded input.*axis W"),
    ("dilated kernel > input", lambda: deconv.max_pool1d(X3, 3, dilation=3), ValueError,
     r"kernel_size=3 \(dilation=3"),
    ("output < 1, empty batch", lambda: deconv.avg_pool2d(np.zeros((0, 3, 2, 2)), 3), ValueError,
     r"kernel_size=3 .*larger than the padded input"),
    ("max_pool output < 1, empty batch", lambda: deconv.max_pool2d(
        np.zeros((0, 3, 2, 2), np.float32), 3), ValueError,
     r"kernel_size=3 .*larger than the padded input.*axis H"),
    ("max_pool1d dilated kernel > padded input, empty batch", lambda: deconv.max_pool1d(
        np.zeros((0, 3, 4)), 3, padding=1, dilation=4), ValueError,
     r"kernel_size=3 \(dilation=4, extent 9\) is larger than the padded input"),
    ("max_pool2d kernel > padded W, empty batch", lambda: deconv.max_pool2d(
        np.zeros((0, 1, 6, 2)), (2, 5), padding=(0, 1)), ValueError,
     r"kernel_size=5 .*larger than the padded input.*axis W"),
    ("avg_pool1d output < 1, empty batch", lambda: deconv.avg_pool1d(
        np.zeros((0, 3, 2), np.float32), 5, padding=1), ValueError,
     r"kernel_size=5 .*larger than the padded input"),
    ("avg_pool2d kernel > padded W, empty batch", lambda: deconv.avg_pool2d(
        np.zeros((0, 2, 4, 3)), (1, 4)), ValueError,
     r"kernel_size=4 .*larger than the padded input.*axis W"),
    ("window of padding only", lambda: deconv.max_pool1d(np.zeros((1, 1, 2)), 2, padding=1,
                                                         dilation=3),
     ValueError, r"padding=1, dilation=3 .*contains only padding"),
    ("ceil_mode int", lambda: deconv.max_pool2d(X4, 2, ceil_mode=1), TypeError,
     r"ceil_mode must be a bool, got 1"),
    ("count_include_pad str", lambda: deconv.avg_pool1d(X3, 2, count_include_pad="no"),
     TypeError, r"count_include_pad must be a bool"),
    ("divisor_override 0", lambda: deconv.avg_pool2d(X4, 2, divisor_override=0), ValueError,
     r"divisor_override must be a positive int or None, got 0"),
    ("divisor_override negative", lambda: deconv.avg_pool1d(X3, 2, divisor_override=-3),
     ValueError, r"divisor_override .*-3"),
    ("divisor_override float", lambda: deconv.avg_pool2d(X4, 2, divisor_override=2.0),
     TypeError, r"divisor_override .*2\.0"),
    ("divisor_override bool", lambda: deconv.avg_pool2d(X4, 2, divisor_override=True),
     TypeError, r"divisor_override .*True"),
    # max_pool backward
    ("bwd grad_output int", lambda: deconv.max_pool2d_backward(I4, I4, X4.shape), TypeError,
     r"grad_output must have dtype"),
    ("bwd grad_output ndim", lambda: deconv.max_pool1d_backward(G4, I4, X3.shape), ValueError,
     r"grad_output must be 3-D"),
    ("bwd indices int32", lambda: deconv.max_pool2d_backward(G4, I4.astype(np.int32), X4.shape),
     TypeError, r"indices must have dtype int64"),
    ("bwd indices float", lambda: deconv.max_pool1d_backward(G3, G3, X3.shape), TypeError,
     r"indices must have dtype int64"),
    ("bwd indices shape", lambda: deconv.max_pool2d_backward(G4, I4[:, :, :2], X4.shape),
     ValueError, r"indices must have shape \(2, 3, 3, 3\)"),
    ("bwd indices too large", lambda: deconv.max_pool2d_backward(G4, I4 + 36, X4.shape),
     ValueError, r"indices must lie in \[0, 36\).*got 36 at position \(0, 0, 0, 0\)"),
    ("bwd indices negative", lambda: deconv.max_pool1d_backward(
        G3, np.array([[[0, 1, 2]] * 3, [[0, -1, 2]] * 3]), X3.shape),
     ValueError, r"indices must lie in \[0, 6\).*got -1 at position \(1, 0, 1\)"),
    ("bwd input_shape length", lambda: deconv.max_pool2d_backward(G4, I4, (2, 3, 6)), ValueError,
     r"input_shape must be a sequence of 4 ints"),
    ("bwd input_shape batch", lambda: deconv.max_pool2d_backward(G4, I4, (3, 3, 6, 6)),
     ValueError, r"input_shape=\(3, 3, 6, 6\) is inconsistent with grad_output"),
    ("bwd input_shape negative", lambda: deconv.max_pool1d_backward(G3, I3, (2, 3, -6)),
     ValueError, r"input_shape must not contain negative"),
    ("bwd input_shape zero", lambda: deconv.max_pool1d_backward(G3, I3, (2, 3, 0)),
     ValueError, r"input_shape must have spatial sizes >= 1"),
    ("bwd input_shape float", lambda: deconv.max_pool2d_backward(G4, I4, (2, 3, 6.0, 6)),
     TypeError, r"input_shape must be an int"),
    # avg_pool backward
    ("avg bwd grad_output shape", lambda: deconv.avg_pool2d_backward(G4, X4.shape, 3, stride=1),
     ValueError, r"grad_output must have shape \(2, 3, 4, 4\).*got \(2, 3, 3, 3\)"),
    ("avg bwd input_shape batch", lambda: deconv.avg_pool1d_backward(G3, (2, 4, 6), 2),
     ValueError, r"input_shape=\(2, 4, 6\) is inconsistent with grad_output"),
    ("avg bwd kernel too big", lambda: deconv.avg_pool1d_backward(G3, (2, 3, 2), 3),
     ValueError, r"kernel_size=3 .*larger than the padded input.*input_shape"),
    ("avg bwd divisor", lambda: deconv.avg_pool2d_backward(G4, X4.shape, 2, stride=2,
                                                           divisor_override=-1),
     ValueError, r"divisor_override"),
    # max_unpool
    ("unpool indices shape", lambda: deconv.max_unpool2d(G4, I4[..., :2], 2), ValueError,
     r"indices must have shape \(2, 3, 3, 3\)"),
    ("unpool indices int32", lambda: deconv.max_unpool1d(G3, I3.astype(np.int32), 2), TypeError,
     r"indices must have dtype int64.*got int32"),
    ("unpool indices list of floats", lambda: deconv.max_unpool1d(G3, [[[0.0, 1.0, 2.0]]], 2),
     TypeError, r"indices must have dtype int64 .*got float64; convert with np.asarray"),
    ("unpool indices list of the wrong shape", lambda: deconv.max_unpool1d(G3, [[[0, 1, 2]]], 2),
     ValueError, r"indices must have shape \(2, 3, 3\) \(that of x\), got \(1, 1, 3\)"),
    ("unpool indices range", lambda: deconv.max_unpool2d(G4, I4 + 36, 2), ValueError,
     r"indices must lie in \[0, 36\).*got 36"),
    ("unpool indices range with output_size",
     lambda: deconv.max_unpool1d(G3, I3 + 6, 2, output_size=(6,)), ValueError,
     r"indices must lie in \[0, 6\).*got 6"),
    ("unpool x int", lambda: deconv.max_unpool2d(I4, I4, 2), TypeError, r"x must have dtype"),
    ("unpool x 3-D for 2-D op", lambda: deconv.max_unpool2d(G3, I3, 2), ValueError,
     r"x must be 4-D"),
    ("unpool x 4-D for 1-D op", lambda: deconv.max_unpool1d(G4, I4, 2), ValueError,
     r"x must be 3-D"),
    ("unpool x 2-D", lambda: deconv.max_unpool1d(G3[0], I3[0], 2), ValueError,
     r"x must be 3-D"),
    ("unpool padding negative", lambda: deconv.max_unpool2d(G4, I4, 2, padding=-1), ValueError,
     r"padding must be >= 0, got -1"),
    ("unpool1d padding negative", lambda: deconv.max_unpool1d(G3, I3, 2, padding=(-1,)),
     ValueError, r"padding must be >= 0, got \(-1,\)"),
    ("unpool2d padding negative on one axis", lambda: deconv.max_unpool2d(
        G4, I4, 3, padding=(1, -2)), ValueError, r"padding must be >= 0"),
    ("unpool padding > k//2", lambda: deconv.max_unpool2d(G4, I4, 2, padding=2), ValueError,
     r"padding=2 must be at most half of kernel_size=2"),
    ("unpool default size < 1", lambda: deconv.max_unpool1d(
        np.zeros((1, 1, 1)), np.zeros((1, 1, 1), np.int64), 2, padding=1),
     ValueError, r"output size along axis L would be 0"),
    ("unpool default size < 1, empty batch", lambda: deconv.max_unpool1d(
        np.zeros((0, 1, 1)), np.zeros((0, 1, 1), np.int64), 2, padding=1),
     ValueError, r"output size along axis L would be 0"),
    ("unpool2d default size < 1, empty batch", lambda: deconv.max_unpool2d(
        np.zeros((0, 2, 3, 1), np.float32), np.zeros((0, 2, 3, 1), np.int64), 2, padding=1),
     ValueError, r"output size along axis W would be 0"),
    ("unpool output_size too big", lambda: deconv.max_unpool2d(G4, I4, 2, output_size=(8, 6)),
     ValueError, r"output_size=\(8, 6\) is impossible along axis H: expected a size in \(4, 8\)"),
    ("unpool output_size too small", lambda: deconv.max_unpool1d(G3, I3, 2, output_size=[4]),
     ValueError, r"output_size=\[4\] is impossible along axis L.*got 4"),
    ("unpool output_size length", lambda: deconv.max_unpool2d(G4, I4, 2, output_size=(2, 3, 6)),
     ValueError, r"output_size must have 2 entries .* or 4"),
    ("unpool output_size batch", lambda: deconv.max_unpool2d(
        G4, I4, 2, output_size=(2, 4, 6, 6)),
     ValueError, r"output_size=\(2, 4, 6, 6\) is inconsistent with x"),
    ("unpool output_size int", lambda: deconv.max_unpool1d(G3, I3, 2, output_size=6), TypeError,
     r"output_size must be a sequence"),
    ("unpool output_size float", lambda: deconv.max_unpool1d(G3, I3, 2, output_size=(6.0,)),
     TypeError, r"output_size must be an int"),
    ("unpool stride 0", lambda: deconv.max_unpool2d(G4, I4, 2, stride=0), ValueError,
     r"stride must be >= 1"),
    # max_unpool backward
    ("unpool bwd indices range", lambda: deconv.max_unpool2d_backward(G4, I4 + 9), ValueError,
     r"indices must lie in \[0, 9\).*got 9"),
    ("unpool bwd batch", lambda: deconv.max_unpool1d_backward(G3, I3[:1]), ValueError,
     r"indices.shape=\(1, 3, 3\) is inconsistent with grad_output"),
    ("unpool bwd indices ndim", lambda: deconv.max_unpool2d_backward(G4, I3), ValueError,
     r"indices must be 4-D"),
    ("unpool bwd indices dtype", lambda: deconv.max_unpool2d_backward(G4, G4), TypeError,
     r"indices must have dtype int64"),
    ("unpool bwd grad_output dtype", lambda: deconv.max_unpool1d_backward(I3, I3), TypeError,
     r"grad_output must have dtype"),
]


@pytest.mark.parametrize("call, exc, match", [c[1:] for c in BAD_CALLS],
                         ids=[c[0] for c in BAD_CALLS])
def test_bad_arguments_raise_naming_the_argument(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
