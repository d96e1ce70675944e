"""The losses of deconv.nn (issue 14): every loss x reduction against torch, gradcheck, errors.

* twins: ``tests/data/loss_cases.npz`` (written by ``tests/make_loss_fixtures.py``
  with torch 2.13, never needed here) holds torch's values and gradients of
  every loss and reduction, edge cases included (all targets ignored, label
  smoothing with ignore_index and class weights, logits of +-1e4,
  probabilities of exactly 0 and 1); float64 must match to 1e-10, float32
  within tests/tolerances.py;
* float64 central differences (deconv.gradcheck) of every loss and
  reduction, 'none' through a random upstream gradient;
* identities between losses (cross-entropy = NLL of the log-softmax,
  Huber = beta * SmoothL1, 'sum' = the sum of 'none');
* bad input: every error names its argument.
"""

import json
import math
import os
import re
import warnings

import numpy as np
import pytest
from hypothesis import given, strategies as st

from deconv import nn
from deconv.gradcheck import gradcheck, numerical_gradient
from tolerances import FINITE_DIFFERENCE, assert_close

HERE = os.path.dirname(os.path.abspath(__file__))
with np.load(os.path.join(HERE, "data", "loss_cases.npz")) as _archive:
    DATA = dict(_archive)
CASES = sorted({key.split("/")[0] for key in DATA})
SPECS = {name: json.loads(str(DATA[f"{name}/spec"])) for name in CASES}
RUNS = [(name, r) for name in CASES for r in SPECS[name]["reductions"]]
LOSSES = ["MSELoss", "L1Loss", "SmoothL1Loss", "HuberLoss", "BCELoss", "BCEWithLogitsLoss",
          "NLLLoss", "CrossEntropyLoss", "KLDivLoss"]


def make(name, reduction, dtype=np.float64):
    """The deconv twin of case ``name`` with ``reduction``."""
    spec = SPECS[name]
    options = dict(spec["kwargs"], reduction=reduction)
    for key in ("weight", "pos_weight"):
        if f"{name}/{key}" in DATA:
            options[key] = DATA[f"{name}/{key}"].astype(dtype)
    return getattr(nn, spec["cls"])(**options)


def inputs(name, dtype=np.float64):
    """The case's prediction (in ``dtype``) and target (floats in ``dtype``, labels as they are)."""
    target = DATA[f"{name}/target"]
    if target.dtype.kind == "f":
        target = target.astype(dtype)
    return DATA[f"{name}/prediction"].astype(dtype), target


def run(loss, prediction, target, grad_output):
    """Forward and backward (with ``grad_output`` only for 'none'); KLDiv's 'mean' warning hushed."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        value = loss(prediction, target)
    grad = loss.backward(grad_output) if loss.reduction == "none" else loss.backward()
    return value, grad


def test_the_fixtures_cover_every_loss_and_reduction():
    covered = {(SPECS[n]["cls"], r) for n, r in RUNS}
    for cls in LOSSES:
        for r in ("mean", "sum", "none"):
            assert (cls, r) in covered
    assert ("KLDivLoss", "batchmean") in covered
    assert len(RUNS) >= 90


@pytest.mark.parametrize("name, reduction", RUNS, ids=[f"{n}-{r}" for n, r in RUNS])
def test_float64_twin_of_torch(name, reduction):
    loss = make(name, reduction)
    prediction, target = inputs(name)
    before = (prediction.copy(), target.copy())
    upstream = DATA[f"{name}/{reduction}/grad_output"]
    value, grad = run(loss, prediction, target, upstream)
    expected_value = DATA[f"{name}/{reduction}/value"]
    if reduction == "none":
        assert isinstance(value, np.ndarray) and value.dtype == np.float64
    else:
        assert isinstance(value, float)
    np.testing.assert_allclose(value, expected_value, rtol=1e-10, atol=1e-10)
    assert grad.dtype == np.float64 and grad.shape == prediction.shape
    np.testing.assert_allclose(grad, DATA[f"{name}/{reduction}/grad"], rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(prediction, before[0])
    np.testing.assert_array_equal(target, before[1])


@pytest.mark.parametrize("name, reduction", RUNS, ids=[f"{n}-{r}" for n, r in RUNS])
def test_float32_twin_of_torch(name, reduction):
    loss = make(name, reduction, np.float32)
    prediction, target = inputs(name, np.float32)
    upstream = DATA[f"{name}/{reduction}/grad_output"].astype(np.float32)
    value, grad = run(loss, prediction, target, upstream)
    expected_value = DATA[f"{name}/{reduction}/value"]
    if reduction == "none":
        assert value.dtype == np.float32
        assert_close(value, expected_value)
    else:
        assert isinstance(value, float)
        assert_close(np.float32(value), expected_value)
    assert grad.dtype == np.float32
    assert_close(grad, DATA[f"{name}/{reduction}/grad"])


# cases at points where finite differences do not see the backward's value:
# the clamped logs of BCE at 0 and 1, the saturated +-1e4 logits, and a mean
# that is NaN (every target ignored)
NOT_DIFFERENTIABLE = ("bce_clamped", "bce_logits_extreme", "ce_extreme")
GRADCHECK_RUNS = [(n, r) for n, r in RUNS if n not in NOT_DIFFERENTIABLE
                  and not ("all_ignored" in n and r in ("mean", "batchmean"))]


@pytest.mark.parametrize("name, reduction", GRADCHECK_RUNS,
                         ids=[f"{n}-{r}" for n, r in GRADCHECK_RUNS])
def test_gradcheck_float64(name, reduction):
    loss = make(name, reduction)
    prediction, target = inputs(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        if reduction != "none":
            report = gradcheck(loss, prediction, target)
            assert [c.name for c in report.checks] == ["prediction"]
            return
        # 'none': L = <loss(x), r> for a random upstream r, whose gradient is backward(r)
        x = prediction.copy()
        r = np.random.default_rng(7).standard_normal(loss(x, target).shape)
        analytic = loss.backward(r)
        numeric = numerical_gradient(lambda: float(np.vdot(loss(x, target), r)), x,
                                     FINITE_DIFFERENCE["eps"])
    np.testing.assert_allclose(analytic, numeric, rtol=FINITE_DIFFERENCE["rtol"],
                               atol=FINITE_DIFFERENCE["atol"] * max(1.0, np.abs(numeric).max()))


@pytest.mark.parametrize("name", CASES)
def test_sum_is_the_sum_of_none_and_mean_divides_it(name):
    prediction, target = inputs(name)
    rows = {}
    for reduction in SPECS[name]["reductions"]:
        loss = make(name, reduction)
        upstream = np.ones(DATA[f"{name}/none/value"].shape)
        rows[reduction] = run(loss, prediction, target, upstream)
    none_value, none_grad = rows["none"]
    assert rows["sum"][0] == pytest.approx(float(none_value.sum()), rel=1e-12, abs=1e-12)
    np.testing.assert_allclose(rows["sum"][1], none_grad, rtol=1e-12, atol=1e-12)
    ratio = rows["sum"][0] / rows["mean"][0] if rows["mean"][0] else math.nan
    if np.isfinite(ratio):          # the gradients scale by the same denominator
        np.testing.assert_allclose(rows["mean"][1] * ratio, rows["sum"][1], rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------------------
# identities and properties
# ---------------------------------------------------------------------------

def _randn(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _log_softmax(z):
    """Row-wise log-softmax along axis 1 with plain NumPy (the reference)."""
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_is_nll_of_the_log_softmax(reduction):
    z = _randn(3, 4, 2)
    t = np.array([[0, 3], [-100, 1], [2, 2]])
    w = np.array([0.5, 1.0, 2.0, 1.5])
    ce = nn.CrossEntropyLoss(weight=w, reduction=reduction)
    nll = nn.NLLLoss(weight=w, reduction=reduction)
    log_p = _log_softmax(z)
    np.testing.assert_allclose(ce(z, t), nll(log_p, t), rtol=1e-13)
    g = _randn(3, 2, seed=1) if reduction == "none" else None
    grad_log_p = nll.backward(g) if g is not None else nll.backward()
    # chain rule through the log-softmax: dz = dlogp - softmax * sum_c dlogp
    expected = grad_log_p - np.exp(log_p) * grad_log_p.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(ce.backward(g) if g is not None else ce.backward(), expected,
                               rtol=1e-12, atol=1e-15)


def _ce_smoothed_direct(z, t, weight, ignore_index, eps):
    """torch's documented formula, position by position in plain Python: (sum, denominator)."""
    n, c = z.shape
    total = denom = 0.0
    for i in range(n):
        if t[i] == ignore_index:
            continue
        log_p = [z[i, j] - math.log(sum(math.exp(v) for v in z[i])) for j in range(c)]
        total += (1 - eps) * weight[t[i]] * -log_p[t[i]]
        total += eps / c * sum(weight[j] * -log_p[j] for j in range(c))
        denom += weight[t[i]]
    return total, denom


@given(st.data())
def test_cross_entropy_with_weight_ignore_index_and_smoothing_against_a_direct_sum(data):
    n, c = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 4))
    seed = data.draw(st.integers(0, 2**16))
    ignore_index = data.draw(st.sampled_from([-100, 0, c - 1]))
    t = np.array(data.draw(st.lists(st.sampled_from(list(range(c)) + [ignore_index]),
                                    min_size=n, max_size=n)))
    eps = data.draw(st.sampled_from([0.0, 0.1, 0.5, 1.0]))
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, c)) * 3
    weight = rng.uniform(0.1, 2.0, c)
    total, denom = _ce_smoothed_direct(z, t, weight, ignore_index, eps)
    options = dict(weight=weight, ignore_index=ignore_index, label_smoothing=eps)
    assert nn.CrossEntropyLoss(reduction="sum", **options)(z, t) == pytest.approx(
        total, rel=1e-12, abs=1e-12)
    mean = nn.CrossEntropyLoss(**options)(z, t)
    if denom == 0:
        assert math.isnan(mean)
    else:
        assert mean == pytest.approx(total / denom, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("beta", [0.25, 1.0, 3.0])
def test_huber_is_beta_times_smooth_l1(reduction, beta):
    p, t = 2 * _randn(4, 3), _randn(4, 3, seed=1)
    huber = nn.HuberLoss(reduction=reduction, delta=beta)
    smooth = nn.SmoothL1Loss(reduction=reduction, beta=beta)
    np.testing.assert_allclose(huber(p, t), beta * np.asarray(smooth(p, t)), rtol=1e-13)
    g = _randn(4, 3, seed=2) if reduction == "none" else None
    args = () if g is None else (g,)
    np.testing.assert_allclose(huber.backward(*args), beta * smooth.backward(*args), rtol=1e-13)


def test_smooth_l1_with_beta_zero_is_l1():
    p, t = _randn(3, 4), _randn(3, 4, seed=1)
    p[0, 0] = t[0, 0]                      # d = 0: sign(0) = 0 in both
    smooth, l1 = nn.SmoothL1Loss(beta=0.0), nn.L1Loss()
    assert smooth(p, t) == l1(p, t)
    np.testing.assert_array_equal(smooth.backward(), l1.backward())


def test_bce_with_logits_is_bce_of_the_sigmoid_where_both_are_accurate():
    x, t = _randn(3, 4), np.random.default_rng(1).uniform(0, 1, (3, 4))
    pw = np.array([0.5, 1.0, 2.0, 3.0])
    s = 1 / (1 + np.exp(-x))
    direct = -(pw * t * np.log(s) + (1 - t) * np.log(1 - s))
    loss = nn.BCEWithLogitsLoss(reduction="none", pos_weight=pw)
    np.testing.assert_allclose(loss(x, t), direct, rtol=1e-12)
    np.testing.assert_allclose(nn.BCELoss(reduction="none")(s, t),
                               -(t * np.log(s) + (1 - t) * np.log(1 - s)), rtol=1e-12)


def test_bce_with_logits_does_not_overflow_at_1e4():
    x = np.array([1e4, -1e4, 1e4, -1e4], dtype=np.float32)
    t = np.array([0.0, 1.0, 1.0, 0.0], dtype=np.float32)
    loss = nn.BCEWithLogitsLoss(reduction="none")
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        value = loss(x, t)
        grad = loss.backward(np.ones(4, dtype=np.float32))
    np.testing.assert_array_equal(value, [1e4, 1e4, 0.0, 0.0])
    np.testing.assert_array_equal(grad, [1.0, -1.0, 0.0, 0.0])
    assert value.dtype == grad.dtype == np.float32


def test_kl_div_mean_warns_as_torch_and_batchmean_does_not():
    x, t = _log_softmax(_randn(2, 3)), np.full((2, 3), 1 / 3)
    with pytest.warns(UserWarning, match="'batchmean' divides only by the batch size"):
        mean = nn.KLDivLoss()(x, t)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        batchmean = nn.KLDivLoss(reduction="batchmean")(x, t)
    assert batchmean == pytest.approx(3 * mean, rel=1e-14)   # (N C) vs N
    assert nn.KLDivLoss(reduction="sum")(x, t) == pytest.approx(2 * batchmean, rel=1e-14)


def test_all_targets_ignored_gives_nan_mean_and_zero_gradient():
    for loss in (nn.CrossEntropyLoss(label_smoothing=0.1), nn.NLLLoss(weight=[1.0, 2.0])):
        value = loss(_randn(3, 2), np.full(3, -100))
        assert math.isnan(value)
        np.testing.assert_array_equal(loss.backward(), np.zeros((3, 2)))


@pytest.mark.parametrize("name", LOSSES)
def test_float32_in_float32_out_and_inputs_untouched(name):
    loss, prediction, target = _valid(name, np.float32)
    saved = prediction.copy(), target.copy()
    for reduction in ("mean", "sum", "none"):
        loss.reduction = reduction
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)      # KLDivLoss's 'mean'
            value = loss(prediction, target)
        if reduction == "none":
            assert value.dtype == np.float32
            grad = loss.backward(np.ones_like(value))
        else:
            assert isinstance(value, float)
            grad = loss.backward()
        assert grad.dtype == np.float32 and grad.shape == prediction.shape
    np.testing.assert_array_equal(prediction, saved[0])
    np.testing.assert_array_equal(target, saved[1])


# ---------------------------------------------------------------------------
# errors name their argument
# ---------------------------------------------------------------------------

def _valid(name, dtype=np.float64):
    """A loss of class ``name`` and a valid (prediction, target) for it."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3)).astype(dtype)
    if name in ("NLLLoss", "CrossEntropyLoss"):
        return getattr(nn, name)(), x, np.array([0, 2])
    if name == "BCELoss":
        return nn.BCELoss(), rng.uniform(0.1, 0.9, (2, 3)).astype(dtype), \
            rng.uniform(0, 1, (2, 3)).astype(dtype)
    if name == "KLDivLoss":
        return nn.KLDivLoss(reduction="batchmean"), x, np.full((2, 3), 1 / 3, dtype)
    return getattr(nn, name)(), x, rng.standard_normal((2, 3)).astype(dtype)


@pytest.mark.parametrize("name", LOSSES)
def test_backward_takes_grad_output_only_with_reduction_none(name):
    loss, prediction, target = _valid(name)
    with pytest.raises(RuntimeError, match=rf"^{name}\.backward\(\) called before forward"):
        loss.backward()
    loss(prediction, target)
    with pytest.raises(TypeError, match=rf"^{name}\.backward\(\) takes no grad_output with "
                                        r"reduction='(mean|batchmean)'"):
        loss.backward(np.ones(1))
    loss.reduction = "none"
    value = loss(prediction, target)
    with pytest.raises(TypeError, match=rf"^{name}\.backward\(\) missing grad_output"):
        loss.backward()
    with pytest.raises(ValueError, match=rf"^{name}: grad_output must have the shape of the "
                                         rf"per-element loss {re.escape(str(value.shape))}"):
        loss.backward(np.ones((7,)))
    with pytest.raises(TypeError, match=rf"^{name}: grad_output must have the dtype of the "
                                        r"per-element loss \(float64\), got float32"):
        loss.backward(np.ones(value.shape, np.float32))
    with pytest.raises(TypeError, match=rf"^{name}: grad_output must have dtype float32 or float64"):
        loss.backward(np.ones(value.shape, np.int64))
    assert loss.backward(np.ones(value.shape).tolist()).shape == prediction.shape


@pytest.mark.parametrize("make, exc, message", [
    (lambda: nn.MSELoss(reduction="batchmean"), ValueError,
     "MSELoss: reduction must be one of 'mean', 'sum', 'none', got 'batchmean'"),
    (lambda: nn.KLDivLoss(reduction="avg"), ValueError,
     "KLDivLoss: reduction must be one of 'mean', 'batchmean', 'sum', 'none'"),
    (lambda: nn.KLDivLoss(log_target=1), TypeError, "KLDivLoss: log_target must be a bool"),
    (lambda: nn.SmoothL1Loss(beta=-0.5), ValueError, "SmoothL1Loss: beta must be a finite number >= 0"),
    (lambda: nn.SmoothL1Loss(beta=math.nan), ValueError, "SmoothL1Loss: beta must be a finite"),
    (lambda: nn.HuberLoss(delta=0.0), ValueError, "HuberLoss: delta must be a finite number > 0"),
    (lambda: nn.HuberLoss(delta=math.inf), ValueError, "HuberLoss: delta must be a finite"),
    (lambda: nn.HuberLoss(delta="1"), TypeError, "HuberLoss: delta must be a real number"),
    (lambda: nn.CrossEntropyLoss(label_smoothing=1.5), ValueError,
     "CrossEntropyLoss: label_smoothing must be a finite number in [0.0, 1.0], got 1.5"),
    (lambda: nn.CrossEntropyLoss(label_smoothing=math.nan), ValueError,
     "CrossEntropyLoss: label_smoothing must be a finite"),
    (lambda: nn.CrossEntropyLoss(weight=[1.0, math.inf]), ValueError,
     "CrossEntropyLoss: weight must hold finite numbers, got inf"),
    (lambda: nn.CrossEntropyLoss(weight=np.ones((2, 2))), ValueError,
     "CrossEntropyLoss: weight must be a 1-D array"),
    (lambda: nn.NLLLoss(weight=["a"]), TypeError, "NLLLoss: weight must be an array of finite"),
    (lambda: nn.NLLLoss(ignore_index=1.0), TypeError, "NLLLoss: ignore_index must be an int"),
    (lambda: nn.BCELoss(weight=[1.0, math.nan]), ValueError, "BCELoss: weight must hold finite"),
    (lambda: nn.BCEWithLogitsLoss(pos_weight=[True]), TypeError,
     "BCEWithLogitsLoss: pos_weight must be an array of finite real numbers, got dtype bool"),
    (lambda: nn.BCEWithLogitsLoss(pos_weight=[-math.inf]), ValueError,
     "BCEWithLogitsLoss: pos_weight must hold finite"),
], ids=lambda v: v.split(":")[0] if isinstance(v, str) else None)
def test_constructor_errors_name_the_argument(make, exc, message):
    with pytest.raises(exc) as info:
        make()
    assert str(info.value).startswith(message), str(info.value)


@pytest.mark.parametrize("call, exc, pattern", [
    (lambda: nn.BCELoss()(np.array([0.5, 1.5]), np.array([1.0, 0.0])), ValueError,
     r"^BCELoss: every element of prediction \(probabilities\) must lie in \[0, 1\], got 1.5"),
    (lambda: nn.BCELoss()(np.array([0.5, math.nan]), np.array([1.0, 0.0])), ValueError,
     r"^BCELoss: every element of prediction \(probabilities\) must lie in \[0, 1\], got nan"),
    (lambda: nn.BCELoss()(np.array([0.5, 0.5]), np.array([1.0, -0.5])), ValueError,
     r"^BCELoss: every element of target must lie in \[0, 1\], got -0.5"),
    (lambda: nn.BCELoss(weight=np.ones(4))(np.full((2, 3), 0.5), np.ones((2, 3))), ValueError,
     r"^BCELoss: weight of shape \(4,\) must broadcast to the prediction shape \(2, 3\)"),
    (lambda: nn.BCEWithLogitsLoss(pos_weight=np.ones((2, 1, 3)))(np.zeros((2, 3)), np.ones((2, 3))),
     ValueError, r"^BCEWithLogitsLoss: pos_weight of shape \(2, 1, 3\) must broadcast"),
    (lambda: nn.BCEWithLogitsLoss()(np.zeros((2, 3)), np.ones((3, 2))), ValueError,
     r"^BCEWithLogitsLoss: target shape \(3, 2\) must equal the prediction shape \(2, 3\)"),
    (lambda: nn.HuberLoss()(np.zeros(2), np.array([1j, 2j])), TypeError,
     r"^HuberLoss: target must be an array of real numbers \(float or int\), got dtype complex"),
    (lambda: nn.SmoothL1Loss()(np.zeros(2, np.float16), np.zeros(2)), TypeError,
     r"^SmoothL1Loss: prediction must have dtype float32 or float64"),
    (lambda: nn.KLDivLoss(reduction="sum")(np.zeros((2, 3)), np.zeros((2, 2))), ValueError,
     r"^KLDivLoss: target shape \(2, 2\) must equal the prediction shape \(2, 3\)"),
    (lambda: nn.NLLLoss()(np.zeros((2, 3)), np.array([0, 3])), ValueError,
     r"^NLLLoss: target values must lie in \[0, 3\) .*got 3"),
    (lambda: nn.NLLLoss()(np.zeros(3), np.array([0])), ValueError,
     r"^NLLLoss: prediction \(log-probabilities\) must have shape \(N, C\)"),
    (lambda: nn.NLLLoss()(np.zeros((2, 3)), np.array([0.0, 1.0])), TypeError,
     r"^NLLLoss: target must be an integer array of class indices"),
    (lambda: nn.NLLLoss(weight=np.ones(2))(np.zeros((2, 3)), np.array([0, 1])), ValueError,
     r"^NLLLoss: weight has shape \(2,\), expected \(3,\)"),
    (lambda: nn.CrossEntropyLoss(label_smoothing=0.1)(np.zeros((2, 3, 4)), np.zeros((2, 3), int)),
     ValueError, r"^CrossEntropyLoss: target shape \(2, 3\) does not match .*expected \(2, 4\)"),
], ids=["bce-x", "bce-nan", "bce-t", "bce-weight", "pos_weight", "logits-shape", "huber-complex",
        "float16", "kl-shape", "nll-range", "nll-ndim", "nll-float-target", "nll-weight",
        "ce-shape"])
def test_forward_errors_name_the_argument(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


def test_gradcheck_takes_a_loss_with_reduction_none():
    from deconv import gradcheck
    rng = np.random.default_rng(0)
    pred, target = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    for loss in (nn.MSELoss(reduction="none"), nn.HuberLoss(reduction="none", delta=0.5)):
        report = gradcheck.gradcheck(loss, pred, target=target)
        assert report.passed, report
    # and it can fail: a backward that drops the upstream gradient
    broken = nn.MSELoss(reduction="none")
    broken._backward = lambda cache, g: 2 * cache["d"] if "d" in cache else None
    with pytest.raises(gradcheck.GradcheckError):
        gradcheck.gradcheck(broken, pred, target=target)
