"""Record torch.nn losses (values and gradients, every reduction) for tests/test_losses.py.

Run from the repository root with a Python that has torch installed:

    python tests/make_loss_fixtures.py

Writes ``tests/data/loss_cases.npz``. For every case ``NAME`` and reduction
``R`` the archive holds

* ``NAME/spec``: a JSON string ``{"cls": ..., "kwargs": {...}, "reductions": [...]}``
  (the constructor's scalar options, without ``reduction``);
* ``NAME/weight``, ``NAME/pos_weight``: array options, when the case has them;
* ``NAME/prediction``, ``NAME/target``: the inputs (every float is
  float32-exact, so one record serves float64 and float32 twins);
* ``NAME/R/grad_output``: the upstream gradient fed with ``reduction='none'``
  (ones for the float the other reductions return);
* ``NAME/R/value``: torch's float64 result (a 0-d array for 'mean'/'sum');
* ``NAME/R/grad``: the gradient with respect to the prediction (autograd).

This script depends only on torch and numpy (never on deconv). torch is
imported inside :func:`main`, so that pytest's doctest collection can
import this file without it.
"""

import json
import os
import warnings
import zlib

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_PATH = os.path.join(HERE, "data", "loss_cases.npz")
ALL = ["mean", "sum", "none"]


def f32(a):
    """``a`` rounded to float32 and back to float64 (exact in both dtypes)."""
    return np.asarray(a, dtype=np.float32).astype(np.float64)


def cases():
    """The cases: name -> (class name, scalar kwargs, array kwargs, prediction, target, reductions)."""
    rng = np.random.default_rng(14)
    randn = lambda *s: f32(rng.standard_normal(s))                       # noqa: E731
    unif = lambda lo, hi, *s: f32(rng.uniform(lo, hi, s))                # noqa: E731
    labels = lambda C, *s: rng.integers(0, C, s).astype(np.int64)         # noqa: E731

    def log_softmax(z):
        z = z - z.max(axis=1, keepdims=True)
        return f32(z - np.log(np.exp(z).sum(axis=1, keepdims=True)))

    def probs(*s):
        p = rng.uniform(0.05, 1.0, s)
        return f32(p / p.sum(axis=1, keepdims=True))

    out = {}
    out["mse"] = ("MSELoss", {}, {}, randn(3, 4), randn(3, 4), ALL)
    out["l1"] = ("L1Loss", {}, {}, randn(2, 3, 2), randn(2, 3, 2), ALL)
    for beta in (1.0, 0.5, 0.0):
        out[f"smooth_l1_beta{beta}"] = ("SmoothL1Loss", {"beta": beta}, {}, 2 * randn(3, 5),
                                        randn(3, 5), ALL)
    for delta in (1.0, 0.3, 2.5):
        out[f"huber_delta{delta}"] = ("HuberLoss", {"delta": delta}, {}, 2 * randn(3, 5),
                                      randn(3, 5), ALL)
    t = unif(0, 1, 3, 4)
    t[0, :2] = [0.0, 1.0]
    out["bce"] = ("BCELoss", {}, {}, unif(0.05, 0.95, 3, 4), t, ALL)
    out["bce_weight"] = ("BCELoss", {}, {"weight": unif(0.5, 2, 4)}, unif(0.05, 0.95, 3, 4),
                         unif(0, 1, 3, 4), ALL)
    out["bce_weight_column"] = ("BCELoss", {}, {"weight": unif(0.5, 2, 3, 1)},
                                unif(0.05, 0.95, 3, 4), (rng.random((3, 4)) < 0.5) * 1.0, ALL)
    # probabilities at 0 and 1: the logs clamped at -100, the gradient's denominator at 1e-12
    out["bce_clamped"] = ("BCELoss", {}, {}, np.array([0.0, 1.0, 0.0, 1.0, 0.5]),
                          np.array([1.0, 0.0, 0.0, 1.0, 0.25]), ALL)
    out["bce_logits"] = ("BCEWithLogitsLoss", {}, {}, 3 * randn(3, 4), unif(0, 1, 3, 4), ALL)
    out["bce_logits_weights"] = ("BCEWithLogitsLoss", {},
                                 {"weight": unif(0.5, 2, 3, 1), "pos_weight": unif(0.5, 3, 4)},
                                 3 * randn(3, 4), unif(0, 1, 3, 4), ALL)
    out["bce_logits_pos_weight_4d"] = ("BCEWithLogitsLoss", {}, {"pos_weight": unif(0.5, 3, 3, 1, 1)},
                                       randn(2, 3, 2, 2), (rng.random((2, 3, 2, 2)) < 0.5) * 1.0, ALL)
    out["bce_logits_extreme"] = ("BCEWithLogitsLoss", {}, {"pos_weight": np.array([2.0])},
                                 np.array([1e4, -1e4, 1e4, -1e4, 100.0, -100.0, 0.0]),
                                 np.array([0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.3]), ALL)
    out["nll"] = ("NLLLoss", {}, {}, log_softmax(randn(4, 5)), labels(5, 4), ALL)
    t = labels(3, 2, 4)
    t[0, 1] = t[1, 3] = -1
    out["nll_3d_weight_ignore"] = ("NLLLoss", {"ignore_index": -1}, {"weight": unif(0.5, 2, 3)},
                                   log_softmax(randn(2, 3, 4)), t, ALL)
    out["nll_all_ignored"] = ("NLLLoss", {}, {"weight": unif(0.5, 2, 3)},
                              log_softmax(randn(3, 3)), np.full(3, -100, dtype=np.int64), ALL)
    out["ce"] = ("CrossEntropyLoss", {}, {}, randn(4, 5), labels(5, 4), ALL)
    out["ce_4d"] = ("CrossEntropyLoss", {}, {}, randn(2, 3, 2, 2), labels(3, 2, 2, 2), ALL)
    out["ce_smoothing"] = ("CrossEntropyLoss", {"label_smoothing": 0.1}, {}, randn(4, 5),
                           labels(5, 4), ALL)
    t = labels(4, 3, 5)
    t[0, 0] = t[2, 3] = t[1, 1] = 2
    t[0, 2] = t[2, 4] = -100
    t2 = np.where(t == -100, 3, t)        # ignore_index=2: a class index ignored
    for name, kw, arr, tt in (
            ("ce_weight_ignore", {}, {"weight": unif(0.2, 3, 4)}, t),
            ("ce_ignore_smoothing", {"label_smoothing": 0.25}, {}, t),
            ("ce_weight_ignore_smoothing", {"label_smoothing": 0.3}, {"weight": unif(0.2, 3, 4)}, t),
            ("ce_weight_ignore2_smoothing", {"label_smoothing": 0.3, "ignore_index": 2},
             {"weight": unif(0.2, 3, 4)}, t2),
            ("ce_full_smoothing", {"label_smoothing": 1.0}, {"weight": unif(0.2, 3, 4)}, t)):
        out[name] = ("CrossEntropyLoss", kw, arr, randn(3, 4, 5), tt, ALL)
    out["ce_all_ignored"] = ("CrossEntropyLoss", {}, {}, randn(3, 4), np.full(3, -100, np.int64), ALL)
    out["ce_all_ignored_smoothing"] = ("CrossEntropyLoss", {"label_smoothing": 0.2},
                                       {"weight": unif(0.2, 3, 4)}, randn(3, 4),
                                       np.full(3, -100, np.int64), ALL)
    out["ce_extreme"] = ("CrossEntropyLoss", {"label_smoothing": 0.1}, {},
                         np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4], [0.0, 0.0, 0.0]]),
                         np.array([1, 0, 2]), ALL)
    kl_target = probs(3, 4)
    kl_target[0, 1] = 0.0
    for log_target in (False, True):
        target = f32(np.log(probs(3, 4))) if log_target else kl_target
        out[f"kl_log_target_{log_target}"] = ("KLDivLoss", {"log_target": log_target}, {},
                                              log_softmax(randn(3, 4)), target,
                                              ALL + ["batchmean"])
    return out


def record(name, spec, arrays, torch):
    """Run one case for each reduction and store inputs, values and gradients."""
    cls, kwargs, array_kwargs, prediction, target, reductions = spec
    arrays[f"{name}/spec"] = np.array(json.dumps({"cls": cls, "kwargs": kwargs,
                                                  "reductions": reductions}))
    for key, value in array_kwargs.items():
        arrays[f"{name}/{key}"] = np.asarray(value, dtype=np.float64)
    arrays[f"{name}/prediction"] = np.asarray(prediction, dtype=np.float64)
    arrays[f"{name}/target"] = np.asarray(target)
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    for reduction in reductions:
        options = dict(kwargs, reduction=reduction)
        options.update({k: torch.tensor(v, dtype=torch.float64) for k, v in array_kwargs.items()})
        loss = getattr(torch.nn, cls)(**options)
        x = torch.tensor(prediction, dtype=torch.float64, requires_grad=True)
        t = torch.tensor(target)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")     # KLDivLoss's 'mean' warning
            value = loss(x, t)
        if reduction == "none":
            upstream = f32(rng.standard_normal(tuple(value.shape)))
        else:
            upstream = np.array(1.0)
        value.backward(torch.tensor(upstream, dtype=torch.float64))
        arrays[f"{name}/{reduction}/grad_output"] = upstream
        arrays[f"{name}/{reduction}/value"] = value.detach().numpy()
        arrays[f"{name}/{reduction}/grad"] = x.grad.numpy()


def main():
    """Build, run and save every case."""
    import torch

    torch.use_deterministic_algorithms(True)
    arrays = {}
    for name, spec in cases().items():
        record(name, spec, arrays, torch)
    os.makedirs(os.path.dirname(OUT_PATH), exist_ok=True)
    np.savez_compressed(OUT_PATH, **arrays)
    print(f"wrote {len(arrays)} arrays to {OUT_PATH} (torch {torch.__version__})")


if __name__ == "__main__":
    main()
