"""The Numba kernels of the normalization layers and of the one-pass layers (issue 14).

Against independent references: the normalization formulas written out in
float64 NumPy here (forward, the batch-coupled backward, eval mode), NumPy's
own ReLU / sign / maximum, and Adam's NumPy update (the optimizer's own
fallback path, bitwise). Hypothesis draws valid layer configurations
directly (N = 1, 1x1 spatial, groups, both dtypes). Bitwise identity across
thread counts runs in fresh interpreters with NUMBA_NUM_THREADS = 1 and 2.
"""

import numpy as np
import pytest
from hypothesis import given, strategies as st

from deconv import nn, optim
from deconv.functional import elementwise
from determinism import run_hashes


# ---------------------------------------------------------------------------
# the float64 reference of every normalization layer
# ---------------------------------------------------------------------------

@st.composite
def _norm_config(draw):
    """A layer, an input shape and how the statistics group the input; always valid."""
    kind = draw(st.sampled_from(["batch", "batch_eval", "instance", "group", "layer"]))
    spatial_dims = draw(st.integers(0 if kind in ("batch", "batch_eval", "layer") else 1, 3))
    n = draw(st.integers(1, 3))
    c = draw(st.integers(1, 4))
    groups = 1
    if kind == "group":
        groups = draw(st.integers(1, 3))
        c = groups * draw(st.integers(1, 3))
    # batch statistics need more than one value per statistic: with one sample
    # (BatchNorm) or always (InstanceNorm) the first spatial axis has >= 2
    lowest = 2 if (kind == "batch" and n == 1) or kind == "instance" else 1
    spatial = [draw(st.integers(lowest if i == 0 else 1, 4)) for i in range(spatial_dims)]
    if kind == "batch" and n == 1 and not spatial:
        spatial = [draw(st.integers(2, 4))]
    shape = (n, c, *spatial)
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    affine = draw(st.booleans())
    bias = draw(st.booleans())
    seed = draw(st.integers(0, 2**16))
    return kind, shape, groups, dtype, affine, bias, seed


def _layer(kind, shape, groups, dtype, affine, bias):
    nd = len(shape)
    if kind in ("batch", "batch_eval"):
        cls = {2: nn.BatchNorm1d, 3: nn.BatchNorm1d, 4: nn.BatchNorm2d, 5: nn.BatchNorm3d}[nd]
        return cls(shape[1], affine=affine, bias=bias, dtype=dtype)
    if kind == "instance":
        cls = {3: nn.InstanceNorm1d, 4: nn.InstanceNorm2d, 5: nn.InstanceNorm3d}[nd]
        return cls(shape[1], affine=affine, bias=bias, dtype=dtype)
    if kind == "group":
        return nn.GroupNorm(groups, shape[1], affine=affine, bias=bias, dtype=dtype)
    return nn.LayerNorm(shape[1:], elementwise_affine=affine, bias=bias, dtype=dtype)


@given(_norm_config())
def test_kernels_match_the_float64_formulas(config):
    _check_against_the_formulas(config)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind, shape, groups", [
    ("batch", (6, 3, 5, 7), 1),         # 6 rows a statistic: four at once, then two
    ("batch", (8, 2, 9), 1),            # two fours
    ("batch_eval", (5, 2, 3, 3), 1),
    ("group", (2, 10, 3, 5), 2),        # 5 channels a group: four, then one
    ("group", (3, 8, 4, 4), 1),
    ("layer", (3, 7, 2), 1),
])
def test_kernels_match_the_float64_formulas_four_rows_at_a_time(kind, shape, groups, dtype):
    """The kernels take a statistic's rows four at a time (then the rest one by one):
    shapes with four rows or more, which the drawn configurations rarely reach."""
    _check_against_the_formulas((kind, shape, groups, dtype, True, True, sum(shape)))


def _check_against_the_formulas(config):
    kind, shape, groups, dtype, affine, bias, seed = config
    rng = np.random.default_rng(seed)
    layer = _layer(kind, shape, groups, dtype, affine, bias)
    for p in layer.parameters():
        p.data[...] = rng.uniform(0.5, 2.0, p.shape) * rng.choice([-1, 1], p.shape)
    # an offset mean: the statistics must not cancel
    x = (rng.standard_normal(shape) * 3 + 5).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    stats = None
    c = shape[1]
    per_channel = (1, c) + (1,) * (len(shape) - 2)
    if kind == "batch_eval":
        layer.running_mean[...] = rng.standard_normal(c)
        layer.running_var[...] = rng.uniform(0.5, 2.0, c)
        layer.eval()
        stats = (layer.running_mean.astype(np.float64).reshape(per_channel),
                 layer.running_var.astype(np.float64).reshape(per_channel))
    if kind in ("batch", "batch_eval"):
        view, axes, pshape = shape, (0,) + tuple(range(2, len(shape))), per_channel
    elif kind == "instance":
        view, axes, pshape = shape, tuple(range(2, len(shape))), per_channel
    elif kind == "group":
        view, axes, pshape = (shape[0], groups, -1), (2,), per_channel
    else:
        view, axes, pshape = shape, tuple(range(1, len(shape))), shape[1:]
    y = layer(x)
    gx = layer.backward(g)

    # the reference: the formulas in float64, statistics over ``axes`` of the view
    x64, g64 = x.astype(np.float64), g.astype(np.float64)
    w = np.ones(pshape) if layer.weight is None else layer.weight.data.astype(np.float64)
    b = np.zeros(pshape) if layer.bias is None else layer.bias.data.astype(np.float64)
    w, b = w.reshape(pshape), b.reshape(pshape)
    if stats is None:
        xv = x64.reshape(view)
        mean = xv.mean(axis=axes, keepdims=True)
        var = ((xv - mean) ** 2).mean(axis=axes, keepdims=True)
        mean = np.broadcast_to(mean, xv.shape).reshape(shape)
        var = np.broadcast_to(var, xv.shape).reshape(shape)
    else:
        mean, var = stats
    invstd = 1 / np.sqrt(var + layer.eps)
    xhat = (x64 - mean) * invstd
    want_y = xhat * w + b
    d = g64 * w
    if stats is None:
        dv, xv, iv = d.reshape(view), xhat.reshape(view), np.broadcast_to(invstd, shape)
        want_gx = ((dv - dv.mean(axis=axes, keepdims=True)
                    - xv * (dv * xv).mean(axis=axes, keepdims=True))
                   * iv.reshape(view)).reshape(shape)
    else:
        want_gx = d * invstd
    param_axes = (0,) if kind == "layer" else (0,) + tuple(range(2, len(shape)))
    checks = [(y, want_y), (gx, want_gx)]
    if layer.weight is not None:
        checks.append((layer.weight.grad, (g64 * xhat).sum(axis=param_axes).reshape(
            layer.weight.shape)))
    if layer.bias is not None:
        checks.append((layer.bias.grad, g64.sum(axis=param_axes).reshape(layer.bias.shape)))
    tol = 2e-6 if dtype == np.float32 else 1e-11
    for got, want in checks:
        assert got.dtype == dtype and got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * max(1.0, np.abs(want).max()))


def test_batch_statistics_update_the_running_estimates_from_the_kernel():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 3, 5, 2)).astype(np.float32) * 2 + 1
    layer = nn.BatchNorm2d(3, momentum=0.5)
    layer(x)
    x64 = x.astype(np.float64)
    mean = x64.mean(axis=(0, 2, 3))
    unbiased = x64.var(axis=(0, 2, 3)) * 40 / 39
    np.testing.assert_allclose(layer.running_mean, 0.5 * mean, rtol=1e-6)
    np.testing.assert_allclose(layer.running_var, 0.5 + 0.5 * unbiased, rtol=1e-6)


@pytest.mark.parametrize("first_z", [0.0, 3.9, 4.1, 1e2, 1e6])
def test_shifted_statistics_do_not_cancel_whatever_the_first_value(first_z):
    # The statistics are sums shifted by a group's first value, kept where that
    # value lies within 4 standard deviations of the mean (else two exact
    # passes). A first value far out makes the shifted variance cancel by a
    # factor up to the group's size (65,536 here): about 1e-10 relative, which
    # the two passes must not show. float64 in: the running estimates (momentum
    # None, one batch) are the batch mean and the unbiased variance themselves.
    rng = np.random.default_rng(11)
    x = rng.standard_normal((1, 1, 256, 256)) * 1e-3 + 1e3
    std = x.std()
    x[0, 0, 0, 0] = x.mean() + first_z * std
    layer = nn.BatchNorm2d(1, momentum=None, dtype=np.float64)
    y = layer(x)
    mean, var = x.mean(), x.var()
    np.testing.assert_allclose(layer.running_mean, [mean], rtol=1e-15)
    np.testing.assert_allclose(layer.running_var, [x.var(ddof=1)], rtol=1e-13)
    want = (x - mean) / np.sqrt(var + layer.eps)
    # x - mean is known to an ulp of x (1e3 here), which the division by the
    # standard deviation (1e-3) magnifies: 1e-10 in the reference itself
    np.testing.assert_allclose(y, want, rtol=0, atol=8 * np.spacing(1e3) / np.sqrt(var))


def test_big_endian_and_strided_inputs_give_the_native_results():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 4, 6, 6)).astype(np.float32)
    g = rng.standard_normal((2, 4, 3, 6)).astype(np.float32)
    layer = nn.GroupNorm(2, 4)
    y = layer(x[:, :, ::2])
    gx = layer.backward(g)
    gw = layer.weight.grad.copy()
    layer.zero_grad()
    y2 = layer(np.ascontiguousarray(x[:, :, ::2]).astype(">f4"))
    gx2 = layer.backward(g.astype(">f4"))
    np.testing.assert_array_equal(y, y2)
    np.testing.assert_array_equal(gx, gx2)
    np.testing.assert_array_equal(gw, layer.weight.grad)
    assert y2.dtype == np.float32 and y2.dtype.isnative


def test_infinite_input_in_eval_mode_keeps_a_finite_gradient():
    layer = nn.BatchNorm1d(2).eval()
    x = np.array([[np.inf, 1.0], [0.0, 2.0]], dtype=np.float32)
    layer(x)
    gx = layer.backward(np.ones((2, 2), dtype=np.float32))
    np.testing.assert_allclose(gx, np.full((2, 2), 1 / np.sqrt(1 + 1e-5)), rtol=1e-6)


# ---------------------------------------------------------------------------
# ReLU, L1, Adam: the one-pass kernels against NumPy
# ---------------------------------------------------------------------------

_SPECIAL = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-30, -1e-30]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_kernel_is_numpy_maximum_and_a_select(dtype):
    rng = np.random.default_rng(5)
    x = np.concatenate([rng.standard_normal(39998), _SPECIAL]).astype(dtype)
    g = np.concatenate([rng.standard_normal(39998), [np.inf, np.nan, 1, 2, 3, np.inf, 4]])
    g = g.astype(dtype)
    relu = nn.ReLU()
    y = relu(x.reshape(-1, 7))
    np.testing.assert_array_equal(y.reshape(-1), np.maximum(x, 0))
    assert y.dtype == dtype
    gx = relu.backward(g.reshape(-1, 7))
    np.testing.assert_array_equal(gx.reshape(-1), np.where(x > 0, g, dtype(0)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_l1_kernel_matches_numpy(dtype, reduction):
    rng = np.random.default_rng(6)
    p = rng.standard_normal(50001).astype(dtype)
    t = rng.standard_normal(50001).astype(dtype)
    t[:5] = p[:5]                                  # d = 0: sign 0
    p[5] = -0.0
    t[5] = 0.0
    loss = nn.L1Loss(reduction=reduction)
    value = loss(p, t)
    d = p - t
    want = np.sum(np.abs(d), dtype=np.float64) / (d.size if reduction == "mean" else 1)
    assert value == pytest.approx(float(want), rel=1e-12)
    g = 1.0 / d.size if reduction == "mean" else 1.0
    np.testing.assert_array_equal(loss.backward(), np.sign(d) * g)


def test_l1_kernel_propagates_nan():
    p = np.array([np.nan, 1.0, np.inf], dtype=np.float32)
    t = np.array([0.0, np.nan, np.inf], dtype=np.float32)
    loss = nn.L1Loss()
    assert np.isnan(loss(p, t))
    assert np.isnan(loss.backward()).all()


def _adam_run(cls, dtype, beta1, weight_decay, fast, monkeypatch):
    class P:
        def __init__(self, data):
            self.data, self.grad = data, np.zeros_like(data)
    if not fast:
        monkeypatch.setattr(elementwise, "adam_ready", lambda *arrays: False)
    p = P(np.random.default_rng(7).standard_normal((70, 300)).astype(dtype))
    opt = cls([p], lr=1e-2, betas=(beta1, 0.999), weight_decay=weight_decay)
    rng = np.random.default_rng(8)
    for _ in range(4):
        p.grad[...] = rng.standard_normal(p.data.shape)
        opt.step()
    monkeypatch.undo()
    return p.data, opt.state[0]["exp_avg"], opt.state[0]["exp_avg_sq"]


@pytest.mark.parametrize("cls", [optim.Adam, optim.AdamW])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("beta1", [0.9, 0.3])            # both lerp formulas
@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
def test_adam_kernel_is_bitwise_the_numpy_update(cls, dtype, beta1, weight_decay, monkeypatch):
    fast = _adam_run(cls, dtype, beta1, weight_decay, True, monkeypatch)
    slow = _adam_run(cls, dtype, beta1, weight_decay, False, monkeypatch)
    for a, b in zip(fast, slow):
        assert a.dtype == dtype
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------
# bitwise identical for any thread count
# ---------------------------------------------------------------------------

_DETERMINISM_SCRIPT = r"""
import hashlib, json
import numpy as np
from deconv import nn, optim
rng = np.random.default_rng(9)
outs = []
def run(layer, x):
    y = layer(x)
    gx = layer.backward(rng.standard_normal(y.shape).astype(y.dtype))
    outs.extend([y, gx] + [p.grad for p in layer.parameters()])
for dt in (np.float32, np.float64):
    x = (rng.standard_normal((5, 12, 9, 7)) + 3).astype(dt)
    run(nn.GroupNorm(3, 12, dtype=dt), x)
    run(nn.BatchNorm2d(12, dtype=dt), x)
    run(nn.BatchNorm2d(12, dtype=dt).eval(), x)
    run(nn.InstanceNorm2d(12, affine=True, dtype=dt), x)
    run(nn.LayerNorm((9, 7), dtype=dt), x)
    run(nn.ReLU(), x - 3)
    loss = nn.L1Loss()
    outs.append(np.array(loss(x, x[::-1])))
    outs.append(loss.backward())
    w = nn.Parameter(rng.standard_normal(70000).astype(dt))
    opt = optim.Adam([w])
    for _ in range(3):
        w.grad[...] = rng.standard_normal(w.shape)
        opt.step()
    outs.append(w.data)
print(json.dumps([hashlib.sha256(np.ascontiguousarray(o).tobytes()).hexdigest() for o in outs]))
"""


def test_bitwise_identical_across_thread_counts():
    assert run_hashes(_DETERMINISM_SCRIPT, NUMBA_NUM_THREADS=1) == \
        run_hashes(_DETERMINISM_SCRIPT, NUMBA_NUM_THREADS=2)
