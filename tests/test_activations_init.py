"""Issue 14, activations / channel dropout / init / gradient clipping.

PReLU, ELU, GELU, Softplus and Hardtanh against torch's outputs and
gradients recorded in tests/data/act_cases.npz (kinks and NaN included:
float64 to 1e-10, float32 to the tolerance table) and float64 gradcheck away
from the kinks; Dropout1d/2d/3d statistics and masks; deconv.nn.init against
its exact laws (bounds, standard deviations, Kolmogorov-Smirnov tests with a
fixed seed), torch's gains and fans, orthonormality; clip_grad_norm_ and
clip_grad_value_ against torch; bad arguments named in the errors.
"""

import json
import math
import os

import numpy as np
import pytest
from scipy import stats

from deconv import nn
from deconv.gradcheck import gradcheck
from deconv.nn import init
from deconv.nn.utils import NonFiniteNormError, clip_grad_norm_, clip_grad_value_
from tolerances import assert_close

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = dict(np.load(os.path.join(HERE, "data", "act_cases.npz")))
ACT_CASES = sorted({k.split("/")[1] for k in CASES if k.startswith("act/")})
CLIP_CASES = sorted({k.split("/")[1] for k in CASES if k.startswith("clip/")})
F64 = dict(rtol=1e-10, atol=1e-12)


def _layer(case, dtype):
    name, kwargs = json.loads(str(CASES[f"act/{case}/config"]))
    if name == "PReLU":
        kwargs = dict(kwargs, dtype=dtype)
    layer = getattr(nn, name)(**kwargs)
    if name == "PReLU":       # torch's slopes are float32(init), also in its float64 twin
        layer.load_state_dict({"weight": CASES[f"act/{case}/weight"]})
    return layer


# ---------------------------------------------------------------------------
# activations: twins of torch (kinks and NaN included)
# ---------------------------------------------------------------------------

def test_the_fixtures_hold_every_activation_and_its_kinks():
    names = {json.loads(str(CASES[f"act/{c}/config"]))[0] for c in ACT_CASES}
    assert names == {"PReLU", "ELU", "GELU", "Softplus", "Hardtanh"}
    x = CASES["act/hardtanh_bounds/x"]
    assert {-0.5, 2.0} <= set(x.ravel().tolist())          # both bounds of the case
    assert 0.0 in CASES["act/elu/x"] and np.isnan(CASES["act/elu/x"]).any()


@pytest.mark.parametrize("case", ACT_CASES)
def test_activation_float64_equals_torch(case):
    layer = _layer(case, np.float64)
    x, g = CASES[f"act/{case}/x"], CASES[f"act/{case}/grad_y"]
    x_before = x.copy()
    y = layer(x)
    np.testing.assert_allclose(y, CASES[f"act/{case}/y"], **F64)
    np.testing.assert_allclose(layer.backward(g), CASES[f"act/{case}/grad_x"], **F64)
    if f"act/{case}/grad_weight" in CASES:
        np.testing.assert_allclose(layer.weight.grad, CASES[f"act/{case}/grad_weight"], **F64)
    np.testing.assert_array_equal(x, x_before)                # inputs never written to


@pytest.mark.parametrize("case", ACT_CASES)
def test_activation_float32_stays_float32_and_is_close_to_torch(case):
    layer = _layer(case, np.float32)
    x = CASES[f"act/{case}/x"].astype(np.float32)             # float32-exact values
    g = CASES[f"act/{case}/grad_y"].astype(np.float32)
    y = layer(x)
    grad_x = layer.backward(g)
    assert y.dtype == grad_x.dtype == np.float32
    assert_close(y, CASES[f"act/{case}/y"], np.float32)
    assert_close(grad_x, CASES[f"act/{case}/grad_x"], np.float32, scale=4)
    if f"act/{case}/grad_weight" in CASES:
        assert layer.weight.grad.dtype == np.float32
        assert_close(layer.weight.grad, CASES[f"act/{case}/grad_weight"], np.float32, scale=10)


@pytest.mark.parametrize("make, x, y, grad", [
    (lambda: nn.PReLU(init=0.1, dtype=np.float64), [0.0], [0.0], [0.1]),
    (lambda: nn.ELU(alpha=2.0), [0.0], [0.0], [2.0]),
    (lambda: nn.Hardtanh(-1.0, 1.0), [-1.0, 1.0], [-1.0, 1.0], [0.0, 0.0]),
    (lambda: nn.Softplus(beta=2.0, threshold=4.0), [2.0, 2.5],
     [math.log1p(math.exp(4.0)) / 2, 2.5], [1 / (1 + math.exp(-4.0)), 1.0]),
], ids=["PReLU", "ELU", "Hardtanh", "Softplus"])
def test_the_gradient_at_a_kink_is_the_side_torch_takes(make, x, y, grad):
    layer = make()
    np.testing.assert_allclose(layer(np.array(x)), y, rtol=1e-15)
    np.testing.assert_allclose(layer.backward(np.ones(len(x))), grad, rtol=1e-15)


GRADCHECK = {   # inputs at least 0.05 away from every kink
    "prelu_one": (lambda: nn.PReLU(init=0.3, dtype=np.float64), (2, 3, 4)),
    "prelu_channels": (lambda: nn.PReLU(3, init=-0.2, dtype=np.float64), (2, 3, 2, 2)),
    "elu": (lambda: nn.ELU(1.3), (3, 5)),
    "gelu": (lambda: nn.GELU(), (3, 5)),
    "gelu_tanh": (lambda: nn.GELU("tanh"), (3, 5)),
    "softplus": (lambda: nn.Softplus(beta=1.5, threshold=2.0), (3, 5)),
    "hardtanh": (lambda: nn.Hardtanh(-0.7, 0.9), (3, 5)),
    "dropout1d": (lambda: nn.Dropout1d(0.4, rng=1), (3, 4, 2)),
    "dropout2d": (lambda: nn.Dropout2d(0.4, rng=1), (3, 4, 2, 2)),
    "dropout3d": (lambda: nn.Dropout3d(0.4, rng=1), (2, 3, 2, 1, 2)),
    "dropout2d_eval": (lambda: nn.Dropout2d(0.4, rng=1).eval(), (2, 2, 2, 2)),
}
KINKS = (-0.7, 0.0, 0.9, 2.0 / 1.5)


def _away_from_kinks(shape, seed=0):
    x = np.random.default_rng(seed).uniform(-2.5, 2.5, shape)
    for k in KINKS:
        near = np.abs(x - k) < 0.05
        x[near] = k + 0.1
    return x


@pytest.mark.parametrize("case", sorted(GRADCHECK))
def test_gradcheck_float64(case):
    make, shape = GRADCHECK[case]
    layer = make()
    report = gradcheck(layer, _away_from_kinks(shape))
    report.assert_passed()
    assert [c.name for c in report.checks] == ["input"] + [n for n, _ in layer.named_parameters()]


def test_prelu_accumulates_its_weight_gradient_per_channel():
    layer = nn.PReLU(2, init=0.5, dtype=np.float64)
    x = np.array([[[-1.0, 2.0], [-3.0, -4.0]]])                # (N, C, L) = (1, 2, 2)
    layer(x)
    layer.backward(np.ones_like(x))
    layer.backward(np.ones_like(x))
    np.testing.assert_array_equal(layer.weight.grad, [-2.0, -14.0])
    assert layer.weight.data.shape == (2,) and nn.PReLU().weight.data.dtype == np.float32
    assert [n for n, _ in layer.named_parameters()] == ["weight"]
    np.testing.assert_array_equal(nn.PReLU(init=0.5)(np.float32(-2.0)), np.float32(-1.0))


# ---------------------------------------------------------------------------
# channel dropout
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("cls, spatial", [(nn.Dropout1d, (5,)), (nn.Dropout2d, (3, 4)),
                                          (nn.Dropout3d, (2, 2, 3))])
def test_channel_dropout_zeroes_whole_channels_at_rate_p_and_scales_the_rest(cls, spatial):
    p, n, c = 0.3, 200, 50
    drop = cls(p, rng=0)
    x = np.ones((n, c) + spatial, dtype=np.float32)
    y = drop(x)
    assert y.dtype == np.float32 and y.shape == x.shape
    per_channel = y.reshape(n, c, -1)
    assert (per_channel.min(axis=2) == per_channel.max(axis=2)).all()
    values = set(np.unique(per_channel).tolist())
    assert values == {0.0, float(np.float32(1 / (1 - p)))}
    zeroed = (per_channel[:, :, 0] == 0).mean()
    # 10,000 Bernoulli(0.3) channels: the standard deviation of the rate is 0.0046
    assert abs(zeroed - p) < 5 * math.sqrt(p * (1 - p) / (n * c))
    g = np.random.default_rng(1).standard_normal(x.shape).astype(np.float32)
    np.testing.assert_array_equal(drop.backward(g), g * (y / x))
    drop.eval()
    x2 = np.random.default_rng(2).standard_normal((2, 3) + spatial)
    assert drop(x2) is x2 or np.array_equal(drop(x2), x2)
    np.testing.assert_array_equal(drop.backward(np.ones_like(x2)), np.ones_like(x2))


def test_channel_dropout_masks_repeat_with_the_seed_and_ignore_the_dtype():
    x = np.ones((4, 6, 3, 3))
    a, b = nn.Dropout2d(0.5, rng=11)(x), nn.Dropout2d(0.5, rng=11)(x.astype(np.float32))
    np.testing.assert_array_equal(a, b)
    gen = np.random.default_rng(5)
    first = nn.Dropout2d(0.5, rng=gen)(x)
    assert not np.array_equal(first, nn.Dropout2d(0.5, rng=gen)(x))   # the generator advanced
    expected = (np.random.default_rng(11).random((4, 6)) >= 0.5) * 2.0
    np.testing.assert_array_equal(a[:, :, 0, 0], expected)
    assert not nn.Dropout2d(1.0, rng=0)(x).any()
    np.testing.assert_array_equal(nn.Dropout2d(0.0, rng=0)(x), x)


@pytest.mark.parametrize("cls, shape, ndim, layout", [
    (nn.Dropout1d, (3, 5), 3, "(N, C, L)"),
    (nn.Dropout2d, (3, 5, 5), 4, "(N, C, H, W)"),
    (nn.Dropout3d, (3, 2, 5, 5), 5, "(N, C, D, H, W)"),
])
def test_channel_dropout_refuses_unbatched_input_with_the_fix(cls, shape, ndim, layout):
    for mode in ("train", "eval"):
        drop = cls(0.5, rng=0) if mode == "train" else cls(0.5, rng=0).eval()
        with pytest.raises(ValueError) as info:
            drop(np.zeros(shape))
        assert str(info.value) == (
            f"{cls.__name__}(p=0.5): x must be {ndim}-D with layout {layout}, got shape {shape}; "
            f"for a single sample pass x[None] (deconv does not accept unbatched input)")
    assert drop(np.zeros(shape)[None]).shape == (1,) + shape


# ---------------------------------------------------------------------------
# init
# ---------------------------------------------------------------------------

def test_calculate_gain_equals_torch():
    gains = {k: float(v) for k, v in CASES.items() if k.startswith("gain/")}
    assert len(gains) == 17
    for key, expected in gains.items():
        _, nonlinearity, param = key.split("/")
        assert init.calculate_gain(nonlinearity, eval(param)) == expected, key


def test_fans_equal_torch():
    fans = {k: v for k, v in CASES.items() if k.startswith("fan/")}
    assert len(fans) == 6
    for key, expected in fans.items():
        shape = tuple(int(s) for s in key.split("/")[1].split(","))
        assert init._fans(np.empty(shape), "t") == tuple(expected.tolist()), key


def _ks_pvalue(sample, law):
    return stats.kstest(sample.ravel().astype(np.float64), law.cdf).pvalue


LAWS = {   # initialiser -> (call on a (64, 32, 3, 3) float32 array, the exact law)
    "uniform_": (lambda w: init.uniform_(w, -0.3, 0.7, rng=1), stats.uniform(-0.3, 1.0)),
    "normal_": (lambda w: init.normal_(w, 0.2, 1.5, rng=1), stats.norm(0.2, 1.5)),
    "xavier_uniform_": (lambda w: init.xavier_uniform_(w, gain=2.0, rng=1),
                        stats.uniform(-2 * math.sqrt(6 / 864), 4 * math.sqrt(6 / 864))),
    "xavier_normal_": (lambda w: init.xavier_normal_(w, gain=0.5, rng=1),
                       stats.norm(0, 0.5 * math.sqrt(2 / 864))),
    "kaiming_uniform_": (lambda w: init.kaiming_uniform_(w, a=math.sqrt(5), rng=1),
                         stats.uniform(-1 / math.sqrt(288), 2 / math.sqrt(288))),
    "kaiming_normal_fan_out_relu": (
        lambda w: init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu", rng=1),
        stats.norm(0, math.sqrt(2) / math.sqrt(576))),
    "kaiming_normal_leaky": (lambda w: init.kaiming_normal_(w, a=0.2, rng=1),
                             stats.norm(0, math.sqrt(2 / 1.04) / math.sqrt(288))),
}


@pytest.mark.parametrize("name", sorted(LAWS))
def test_an_initialiser_draws_its_exact_law(name):
    fill, law = LAWS[name]
    w = np.empty((64, 32, 3, 3), dtype=np.float32)              # fan_in 288, fan_out 576
    out = fill(w)
    assert out is w and w.dtype == np.float32
    lo, hi = law.support()
    assert lo <= w.min() and w.max() <= hi
    # 18,432 draws, a fixed seed: the right law passes, a law 5% too wide is rejected
    assert _ks_pvalue(w, law) > 0.01
    if law.dist.name == "uniform":
        wider = stats.uniform(lo - 0.025 * (hi - lo), 1.05 * (hi - lo))
    else:
        wider = stats.norm(law.mean(), 1.05 * law.std())
    assert _ks_pvalue(w, wider) < 1e-4
    np.testing.assert_array_equal(fill(np.empty_like(w)), w)   # the seed repeats the draw


def test_init_fills_a_parameters_data_in_place_and_returns_the_array():
    p = nn.Parameter(np.zeros((3, 4), dtype=np.float32))
    data = p.data
    out = init.ones_(p)
    assert out is data and (p.data == 1).all() and p.data.dtype == np.float32
    assert init.zeros_(p) is data and not p.data.any()
    np.testing.assert_array_equal(init.constant_(p, -2.5), np.full((3, 4), -2.5, np.float32))
    gen = np.random.default_rng(3)
    a = init.normal_(np.empty(5), rng=gen)
    b = init.normal_(np.empty(5), rng=gen)
    assert not np.array_equal(a, b)                            # the generator advanced
    np.testing.assert_array_equal(a, np.random.default_rng(3).normal(0, 1, 5))


@pytest.mark.parametrize("shape", [(3, 5), (5, 3), (4, 4), (6, 2, 3, 3), (2, 4, 3)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_orthogonal_gives_orthonormal_rows_or_columns_times_gain(shape, dtype):
    w = init.orthogonal_(np.empty(shape, dtype=dtype), gain=1.5, rng=0)
    assert w.dtype == dtype and w.shape == shape
    q = w.reshape(shape[0], -1).astype(np.float64) / 1.5
    gram = q @ q.T if q.shape[0] <= q.shape[1] else q.T @ q
    np.testing.assert_allclose(gram, np.eye(min(q.shape)), atol=1e-6 if dtype == np.float32 else 1e-12)


def test_zero_element_arrays_are_left_alone():
    for fill in (init.kaiming_uniform_, init.kaiming_normal_, init.xavier_uniform_,
                 init.orthogonal_, init.uniform_):
        w = np.empty((0, 3))
        assert fill(w) is w
    assert init.xavier_normal_(np.empty((3, 0, 2))).shape == (3, 0, 2)


@pytest.mark.parametrize("call, error, message", [
    (lambda: init.kaiming_uniform_(np.empty(3)), ValueError,
     "kaiming_uniform_: tensor must have at least 2 dimensions"),
    (lambda: init.orthogonal_(np.empty(3)), ValueError, "orthogonal_: tensor must have at least 2"),
    (lambda: init.xavier_normal_(np.empty(3)), ValueError, "xavier_normal_: tensor must"),
    (lambda: init.uniform_([1.0, 2.0]), TypeError, "uniform_: tensor must be an ndarray"),
    (lambda: init.normal_(np.empty(3, dtype=np.int64)), TypeError,
     "normal_: tensor must have dtype float32 or float64"),
    (lambda: init.ones_(np.broadcast_to(np.zeros(1), (3,))), ValueError, "constant_: tensor is read-only"),
    (lambda: init.normal_(np.empty(3), std=-1.0), ValueError, "normal_: std must be a finite number >= 0"),
    (lambda: init.uniform_(np.empty(3), 1.0, 0.0), ValueError, "uniform_: b must be >= a"),
    (lambda: init.kaiming_normal_(np.empty((2, 2)), mode="fan_avg"), ValueError,
     "kaiming_normal_: mode must be one of 'fan_in', 'fan_out'"),
    (lambda: init.kaiming_normal_(np.empty((2, 2)), nonlinearity="swish"), ValueError,
     "kaiming_normal_: nonlinearity must be one of"),
    (lambda: init.calculate_gain("leaky_relu", True), TypeError, "calculate_gain: param must be"),
    (lambda: init.calculate_gain("gelu"), ValueError, "calculate_gain: nonlinearity must be one"),
    (lambda: init.xavier_uniform_(np.empty((2, 2)), gain=math.nan), ValueError,
     "xavier_uniform_: gain must be a finite number"),
    (lambda: init.orthogonal_(np.empty((2, 2)), rng="x"), TypeError, "orthogonal_: rng must be"),
    (lambda: init.xavier_normal_(np.empty((2, 2)), gain=-1.0), ValueError,
     "xavier_normal_: gain must be a finite number >= 0, got -1.0"),
    (lambda: init.constant_(np.empty(2), None), TypeError, "constant_: val must be a real"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_init_errors_name_the_function_and_the_argument(call, error, message):
    with pytest.raises(error) as info:
        call()
    assert str(info.value).startswith(message), str(info.value)


# ---------------------------------------------------------------------------
# gradient clipping
# ---------------------------------------------------------------------------

def _clip_case(case, dtype=np.float64):
    fn, kwargs = json.loads(str(CASES[f"clip/{case}/config"]))
    n = sum(1 for k in CASES if k.startswith(f"clip/{case}/grad"))
    params = []
    for j in range(n):
        p = nn.Parameter(np.zeros(CASES[f"clip/{case}/grad{j}"].shape, dtype=dtype))
        p.grad[...] = CASES[f"clip/{case}/grad{j}"]
        params.append(p)
    return fn, kwargs, params


@pytest.mark.parametrize("case", CLIP_CASES)
def test_clipping_float64_equals_torch(case):
    fn, kwargs, params = _clip_case(case)
    out = {"clip_grad_norm_": clip_grad_norm_, "clip_grad_value_": clip_grad_value_}[fn](
        params, **kwargs)
    expected_total = float(CASES[f"clip/{case}/total"])
    if fn == "clip_grad_value_":
        assert out is None
    else:
        assert isinstance(out, float)
        np.testing.assert_allclose(out, expected_total, **F64)
    for j, p in enumerate(params):
        np.testing.assert_allclose(p.grad, CASES[f"clip/{case}/clipped{j}"], **F64)


@pytest.mark.parametrize("case", [c for c in CLIP_CASES if "nan" not in c and "inf_grad" not in c])
def test_clipping_float32_gradients_stay_float32(case):
    fn, kwargs, params = _clip_case(case, np.float32)
    {"clip_grad_norm_": clip_grad_norm_, "clip_grad_value_": clip_grad_value_}[fn](params, **kwargs)
    for j, p in enumerate(params):
        assert p.grad.dtype == np.float32
        assert_close(p.grad, CASES[f"clip/{case}/clipped{j}"], np.float32)


def test_a_nonfinite_norm_raises_on_request_before_any_gradient_changes():
    fn, kwargs, params = _clip_case("norm_inf_grad")
    before = [p.grad.copy() for p in params]
    with pytest.raises(NonFiniteNormError, match=r"^clip_grad_norm_: the total norm of order 2.0 "
                                                 r"of the gradients of parameters is inf"):
        clip_grad_norm_(params, 1.0, error_if_nonfinite=True)
    assert issubclass(NonFiniteNormError, ValueError) and issubclass(NonFiniteNormError, RuntimeError)
    for p, b in zip(params, before):
        np.testing.assert_array_equal(p.grad, b)


def test_clip_takes_one_parameter_skips_none_gradients_and_counts_a_shared_one_once():
    p = nn.Parameter(np.zeros(2))
    p.grad[...] = [3.0, 4.0]

    class NoGrad:
        grad = None

    assert clip_grad_norm_([p, p, NoGrad()], 10.0) == 5.0
    assert clip_grad_norm_(p, 10.0, foreach=True) == 5.0
    assert clip_grad_norm_([], 1.0) == 0.0 and clip_grad_norm_(iter([]), 1.0) == 0.0
    clip_grad_value_(p, 3.5)
    np.testing.assert_array_equal(p.grad, [3.0, 3.5])
    # the utilities are reachable as in torch
    assert nn.utils.clip_grad_norm_ is clip_grad_norm_ and nn.init.orthogonal_ is init.orthogonal_


@pytest.mark.parametrize("call, error, message", [
    (lambda p: clip_grad_norm_(p, -1.0), ValueError, "clip_grad_norm_: max_norm must be a finite number >= 0"),
    (lambda p: clip_grad_norm_(p, 1.0, norm_type=0), ValueError, "clip_grad_norm_: norm_type must be"),
    (lambda p: clip_grad_norm_(p, 1.0, norm_type="inf"), TypeError, "clip_grad_norm_: norm_type must be"),
    (lambda p: clip_grad_norm_(p, 1.0, error_if_nonfinite=1), TypeError,
     "clip_grad_norm_: error_if_nonfinite must be a bool"),
    (lambda p: clip_grad_norm_(p, 1.0, foreach="yes"), TypeError, "clip_grad_norm_: foreach must be"),
    (lambda p: clip_grad_norm_(np.ones(3), 1.0), TypeError, "clip_grad_norm_: parameters must be"),
    (lambda p: clip_grad_norm_([np.ones(3)], 1.0), TypeError, "clip_grad_norm_: parameters[0] must be"),
    (lambda p: clip_grad_norm_(5, 1.0), TypeError, "clip_grad_norm_: parameters must be"),
    (lambda p: clip_grad_value_(p, -0.5), ValueError, "clip_grad_value_: clip_value must be"),
    (lambda p: clip_grad_value_(p, math.inf), ValueError, "clip_grad_value_: clip_value must be"),
    (lambda p: clip_grad_value_("w", 1.0), TypeError, "clip_grad_value_: parameters must be"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_clip_errors_name_the_argument(call, error, message):
    p = nn.Parameter(np.zeros(3))
    p.grad[...] = [1.0, -2.0, 3.0]
    with pytest.raises(error) as info:
        call([p])
    assert str(info.value).startswith(message), str(info.value)
    np.testing.assert_array_equal(p.grad, [1.0, -2.0, 3.0])


# ---------------------------------------------------------------------------
# layer arguments and inputs
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("make, error, message", [
    (lambda: nn.PReLU(0), ValueError, "PReLU: num_parameters must be an int >= 1, got 0"),
    (lambda: nn.PReLU(2.0), TypeError, "PReLU: num_parameters must be an int"),
    (lambda: nn.PReLU(init=math.inf), ValueError, "PReLU: init must be a finite number"),
    (lambda: nn.PReLU(dtype=np.int32), TypeError, "PReLU: dtype must be np.float32 or np.float64"),
    (lambda: nn.ELU(alpha="1"), TypeError, "ELU: alpha must be a real number"),
    (lambda: nn.GELU("erf"), ValueError, "GELU: approximate must be one of 'none', 'tanh'"),
    (lambda: nn.Softplus(beta=0), ValueError, "Softplus: beta must be a finite non-zero number"),
    (lambda: nn.Softplus(threshold=math.nan), ValueError, "Softplus: threshold must be a finite"),
    (lambda: nn.Hardtanh(1.0, -1.0), ValueError,
     "Hardtanh: max_val must be greater than min_val=1.0, got max_val=-1.0"),
    (lambda: nn.Hardtanh(min_val=None), TypeError, "Hardtanh: min_val must be a real number"),
    (lambda: nn.Dropout2d(1.5), ValueError, "Dropout2d: p must be a probability in [0, 1]"),
    (lambda: nn.Dropout3d("0.5"), TypeError, "Dropout3d: p must be a float"),
    (lambda: nn.Dropout1d(0.5, rng=-1), ValueError, "Dropout1d: rng seed must be >= 0"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_constructor_errors_name_the_layer_and_the_argument(make, error, message):
    with pytest.raises(error) as info:
        make()
    assert str(info.value).startswith(message), str(info.value)


@pytest.mark.parametrize("run, error, pattern", [
    (lambda: nn.PReLU(3)(np.zeros((2, 4), np.float32)), ValueError,
     r"^PReLU\(num_parameters=3\): input must have its channel axis 1 of size num_parameters=3, "
     r"got shape \(2, 4\)"),
    (lambda: nn.PReLU(3)(np.zeros(3, np.float32)), ValueError, r"^PReLU\(num_parameters=3\): input"),
    (lambda: nn.PReLU()(np.zeros(3)), TypeError, r"^PReLU\(num_parameters=1\) has float32 parameters"),
    (lambda: nn.GELU()([1, 2]), TypeError, r"^GELU\(approximate='none'\): input must have dtype"),
    (lambda: nn.Softplus()(np.zeros(2, np.complex64)), TypeError, r"^Softplus\(beta=1.0, threshold=20.0\): input"),
    (lambda: nn.Hardtanh().backward(np.zeros(2)), RuntimeError, r"^Hardtanh\(.*backward\(\) called before"),
], ids=["prelu_channels", "prelu_1d", "prelu_dtype", "gelu_ints", "softplus_complex", "hardtanh_order"])
def test_forward_and_backward_errors_name_the_layer(run, error, pattern):
    with pytest.raises(error, match=pattern):
        run()


def test_elu_grad_output_must_match_the_output():
    elu = nn.ELU()
    elu(np.zeros(3, np.float32))
    with pytest.raises(TypeError, match=r"^ELU\(alpha=1.0\): grad_output must have the dtype"):
        elu.backward(np.zeros(3))
    with pytest.raises(ValueError, match=r"^ELU\(alpha=1.0\): grad_output must have the shape"):
        elu.backward(np.zeros(4, np.float32))
