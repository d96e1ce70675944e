"""The machinery of ``deconv bench`` (no timing assertions): the NumPy im2col baseline
against the reference, FLOP counts, the target evaluation on synthetic numbers, the
ratio computation, a tiny end-to-end run, and a correctness check that stops the run."""

import contextlib
import io
import json
import os
import sys
import tempfile

import numpy as np
import pytest

from deconv import bench, cli
from deconv.bench import cases as C
from deconv.bench import blocks, peers, worker



def _random_inputs(case, seed=0):
    rng = np.random.default_rng(seed)
    return {k: rng.standard_normal(s) for k, s in case["shapes"].items()}


BASELINE_CASES = [
    C.conv_case("stride2_pad1", "conv2d", 2, 4, 6, (7, 8), 3, stride=2, padding=1),
    C.conv_case("groups2", "conv2d", 2, 4, 6, (7, 8), 3, groups=2),
    C.conv_case("depthwise", "conv2d", 2, 4, 4, (6, 6), 3, padding=1, groups=4),
    C.conv_case("transposed_s2_g2", "conv_transpose2d", 2, 4, 6, (5, 4), 4, stride=2,
                padding=1, groups=2),
    C.conv_case("conv1d_s2", "conv1d", 2, 4, 6, (11,), 5, stride=2, padding=2),
    C.conv_case("transposed1d_s3", "conv_transpose1d", 2, 4, 6, (9,), 3, stride=3, padding=1),
]


@pytest.mark.parametrize("case", BASELINE_CASES, ids=lambda c: c["name"])
def test_numpy_baseline_matches_reference(case):
    a = _random_inputs(case)
    ref = peers.reference_outputs(case, a)
    fwd, bwd, fwd_names, bwd_names = peers.numpy_conv_impl(case, a)
    got = dict(zip(fwd_names + bwd_names, fwd() + bwd()))
    assert set(got) == set(ref) == {"y", "gx", "gw", "gb"}
    for k in ref:
        np.testing.assert_allclose(got[k], ref[k], rtol=1e-12, atol=1e-12, err_msg=k)


def test_numpy_baseline_keeps_float32():
    case = BASELINE_CASES[0]
    a = {k: v.astype(np.float32) for k, v in _random_inputs(case).items()}
    fwd, bwd, _, _ = peers.numpy_conv_impl(case, a)
    assert all(o.dtype == np.float32 for o in fwd() + bwd())


def test_flops_and_limit_shapes():
    conv2d = C.build_cases()[0]
    # 2 * N * C_out * H_out * W_out * C_in * kH * kW
    assert C.flops(conv2d, "fwd") == 2 * 32 * 64 * 32 * 32 * 64 * 9
    assert C.flops(conv2d, "bwd") == 2 * C.flops(conv2d, "fwd")
    transposed = next(c for c in C.build_cases() if c["name"] == "conv_transpose2d")
    # the adjoint conv: 32 -> 64 channels, 4x4 kernel, 16x16 output, N=32
    assert C.flops(transposed, "fwd") == 2 * 32 * 64 * 16 * 16 * 32 * 16
    assert C.limit_gemms(transposed)["fwd"] == [(1, 32 * 16, 64, 32 * 16 * 16)]


def test_check_version_keeps_structure():
    depthwise = next(c for c in C.build_cases() if c["name"] == "conv2d_depthwise")
    small = C.check_version(depthwise)
    g = small["geometry"]
    assert (g["N"], g["C_in"], g["C_out"], g["groups"]) == (2, 8, 8, 8)
    assert g["spatial"] == depthwise["geometry"]["spatial"]
    assert small["shapes"]["w"] == (8, 1, 3, 3)


def test_select_cases():
    names = [c["name"] for c in bench.select_cases(["conv1d", "sweep_batch"])]
    assert names == ["conv1d"] + [f"sweep_batch_n{n}" for n in C.SWEEP_BATCHES]
    with pytest.raises(bench.BenchError, match="unknown case 'nope'"):
        bench.select_cases(["nope"])


def test_default_out_dir_is_new_and_outside_the_tree(tmp_path):
    import datetime
    when = datetime.datetime(2026, 12, 4, 9, 30, 0)
    first = bench.default_out_dir(when, base=str(tmp_path))
    assert first == str(tmp_path / "deconv-bench" / "20261204-093000")
    os.makedirs(first)
    assert bench.default_out_dir(when, base=str(tmp_path)) == first + "-2"
    assert bench.default_out_dir().startswith(os.path.join(tempfile.gettempdir(), "deconv-bench"))

def test_compare_outputs_flags_wrong_values_indices_and_shapes():
    ref = {"y": np.arange(6.0).reshape(2, 3), "idx": np.arange(4)}
    good = {"y": ref["y"].astype(np.float32), "idx": np.arange(4)}
    assert all(r["ok"] for r in bench.compare_outputs(good, ref, "float32").values())
    bad = {"y": ref["y"] * 1.01, "idx": np.array([0, 1, 3, 2])}
    rep = bench.compare_outputs(bad, ref, "float32")
    assert not rep["y"]["ok"] and rep["idx"]["error"] == 2 and not rep["idx"]["ok"]
    rep = bench.compare_outputs({"y": ref["y"][:1]}, ref, "float64")
    assert not rep["y"]["ok"] and "shape" in rep["y"]["why"] and rep["idx"]["why"] == "missing"


# --- aggregation and targets ------------------------------------------------

def _worker(key, fwd_ms, bwd_ms, limit=None):
    def summary(ms):
        return {"median": ms, "q1": ms, "q3": ms, "min": ms, "max": ms, "n": 3}
    case = {"first_fwd_s": 0.5, "first_bwd_s": 0.5, "fwd": summary(fwd_ms),
            "bwd": summary(bwd_ms)}
    if limit:
        case["limit"] = {"fwd": summary(limit[0]), "bwd": summary(limit[1])}
    return {"cases": {key: case}}


def test_aggregate_pairs_ratios_round_by_round():
    case = C.build_cases()[0]
    key = "conv2d|float32"
    timing = {
        (1, "deconv"): [_worker(key, 10.0, 30.0), _worker(key, 20.0, 30.0),
                        _worker(key, 12.0, 30.0)],
        (1, "torch"): [_worker(key, 5.0, 60.0), _worker(key, 20.0, 60.0),
                       _worker(key, 4.0, 60.0)],
        (1, "numpy"): [_worker(key, 40.0, 90.0, limit=(8.0, 15.0))],
    }
    rows = bench.aggregate([dict(case, dtypes=("float32",))], timing, [1])
    fwd = next(r for r in rows if r["pass"] == "fwd")
    bwd = next(r for r in rows if r["pass"] == "bwd")
    # pair by pair: 10/5, 20/20, 12/4 -> median 2.0 (the ratio of medians would be 12/5)
    assert fwd["ratio_torch"] == pytest.approx(2.0)
    assert fwd["deconv_ms"] == 12.0 and fwd["torch_ms"] == 5.0
    assert bwd["ratio_torch"] == pytest.approx(0.5)
    assert fwd["ratio_numpy"] == pytest.approx(12.0 / 40.0)
    assert fwd["fraction_of_limit"] == pytest.approx(8.0 / 12.0)
    assert fwd["gflops"] == pytest.approx(C.flops(case, "fwd") / 12e6)
    assert bwd["fraction_of_limit"] == pytest.approx(15.0 / 30.0)


def _row(case, pass_, threads, ms, ratio=None, frac=None, family="conv", sweep=None,
         units=None, large=False, limit_target=False, dtype="float32"):
    r = {"case": case, "family": family, "pass": pass_, "dtype": dtype, "threads": threads,
         "sweep": sweep, "large": large, "limit_target": limit_target, "deconv_ms": ms,
         "ratio_torch": ratio, "fraction_of_limit": frac}
    if units:
        r["ns_per_unit"] = ms * 1e6 / units
    return r


def _by(targets, name):
    return {t["item"]: t["status"] for t in targets if t["target"] == name}


def test_evaluate_targets_pass_and_fail():
    rows = [
        _row("conv2d", "fwd", 1, 100.0, ratio=0.9, frac=0.70, large=True, limit_target=True),
        _row("conv2d", "bwd", 1, 200.0, ratio=1.2, frac=0.45, large=True, limit_target=True),
        _row("conv2d", "fwd", 2, 55.0, ratio=1.0, frac=0.66, large=True, limit_target=True),
        _row("conv2d", "bwd", 2, 150.0, ratio=0.8, frac=0.60, large=True, limit_target=True),
        _row("max_pool2d", "fwd", 1, 1.0, ratio=3.0, family="pool"),
    ]
    # batch sweep: time per unit within 25% (fwd) and not (bwd)
    for i, n in enumerate((8, 16, 32, 64)):
        rows.append(_row(f"sweep_batch_n{n}", "fwd", 1, n * (1.0 + 0.05 * i), sweep="batch",
                         units=n))
        rows.append(_row(f"sweep_batch_n{n}", "bwd", 1, n * (1.0 + 0.2 * i), sweep="batch",
                         units=n))
    memory = {"conv2d|float32|1": {"fwd": {"extra_over_output": 0.3},
                                   "bwd": {"extra_over_output": 1.5}}}
    startup = {"conv2d": {"warm": [{"process_wall_s": 1.2}, {"process_wall_s": 1.4},
                                   {"process_wall_s": 9.0}]},
               "api": {"cold": [{"process_wall_s": 40.0}], "warm": []}}
    targets = bench.evaluate_targets(rows, memory, startup)
    assert _by(targets, "ratio_vs_torch") == {
        "conv2d fwd float32 T=1": "PASS", "conv2d bwd float32 T=1": "FAIL",
        "conv2d fwd float32 T=2": "PASS", "conv2d bwd float32 T=2": "PASS",
        "max_pool2d fwd float32 T=1": "FAIL"}
    assert _by(targets, "fraction_of_limit_fwd") == {"conv2d fwd T=1": "PASS",
                                                      "conv2d fwd T=2": "PASS"}
    assert _by(targets, "fraction_of_limit_bwd") == {"conv2d bwd T=1": "FAIL",
                                                      "conv2d bwd T=2": "PASS"}
    assert _by(targets, "sweep_linear") == {"batch sweep fwd T=1": "PASS",
                                             "batch sweep bwd T=1": "FAIL"}
    # 100/55 = 1.82 >= 1.7; 200/150 = 1.33 < 1.7
    assert _by(targets, "thread_speedup") == {"conv2d fwd": "PASS", "conv2d bwd": "FAIL"}
    assert _by(targets, "memory") == {"conv2d fwd float32 T=1": "PASS",
                                      "conv2d bwd float32 T=1": "FAIL"}
    warm = next(t for t in targets if t["target"] == "startup_warm")
    assert warm["value"] == 1.4 and warm["status"] == "PASS"      # the median
    assert next(t for t in targets if t["target"] == "startup_cold_api")["status"] == "INFO"


def test_evaluate_targets_without_torch_or_points():
    rows = [_row("conv2d", "fwd", 1, 10.0, large=True),
            _row("sweep_batch_n8", "fwd", 1, 8.0, sweep="batch", units=8)]
    targets = bench.evaluate_targets(rows, torch_available=False)
    status = {(t["target"], t["item"]): t["status"] for t in targets}
    assert status[("ratio_vs_torch", "all kernels")] == "N/A"
    assert status[("sweep_linear", "batch sweep fwd T=1")] == "N/A"
    assert status[("thread_speedup", "conv2d fwd")] == "N/A"
    assert not any(t["status"] in ("PASS", "FAIL") for t in targets)


# --- end to end -------------------------------------------------------------

def _tiny_run(tmp_path, cases, peers, **kw):
    out = io.StringIO()
    rc = bench.run(quick=True, threads=[1], cases=cases, rounds=1, repeats=2, warmup=0,
                   out=str(tmp_path), startup=False, peers=peers, size="tiny", stream=out, **kw)
    return rc, out.getvalue()


def test_tiny_run_writes_results(tmp_path):
    rc, text = _tiny_run(tmp_path, ["conv2d", "max_pool2d"], ("numpy",))
    assert rc == 0, text
    with open(tmp_path / "results.json") as f:
        res = json.load(f)
    for key in ("date", "machine", "settings", "threads", "libs", "correctness", "rows",
                "memory", "targets", "workers", "status"):
        assert key in res, key
    assert res["status"] == "ok" and res["libs"] == ["deconv", "numpy"]
    assert {"cpu", "cores", "versions"} <= set(res["machine"])
    worker = res["workers"]["deconv|1"][0]
    assert worker["threads"]["env"]["NUMBA_NUM_THREADS"] == "1"
    assert worker["threads"]["numba_threads"] == 1
    rows = {(r["case"], r["pass"], r["dtype"]): r for r in res["rows"]}
    assert set(rows) == {("conv2d", p, d) for p in ("fwd", "bwd") for d in ("float32", "float64")} \
        | {("max_pool2d", p, "float32") for p in ("fwd", "bwd")}
    conv = rows[("conv2d", "fwd", "float32")]
    assert conv["deconv_ms"] > 0 and conv["numpy_ms"] > 0 and conv["limit_ms"] > 0
    assert conv["ratio_numpy"] == pytest.approx(conv["deconv_ms"] / conv["numpy_ms"])
    assert "numpy_ms" not in rows[("max_pool2d", "fwd", "float32")]
    assert set(res["memory"]) == {"conv2d|float32|1", "conv2d|float64|1"}
    assert res["memory"]["conv2d|float32|1"]["fwd"]["output_bytes"] == 2 * 4 * 8 * 8 * 4
    assert {t["target"] for t in res["targets"]} >= {"ratio_vs_torch", "fraction_of_limit_fwd",
                                                    "memory"}
    assert (tmp_path / "results.md").read_text().count("| conv2d |") == 4
    assert "=== Targets" in text


def test_torch_column_absent_when_torch_does_not_import(tmp_path):
    # an interpreter without site-packages cannot import torch (the worker needs no more)
    fake = tmp_path / "python-without-torch"
    fake.write_text(f'#!/bin/sh\nexec "{sys.executable}" -S "$@"\n')
    fake.chmod(0o755)
    rc, text = _tiny_run(tmp_path, ["avg_pool2d"], ("torch",), torch_python=str(fake))
    assert rc == 0, text
    assert "PyTorch not importable" in text
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["libs"] == ["deconv"]
    assert all("torch_ms" not in r for r in res["rows"])
    assert {t["status"] for t in res["targets"] if t["target"] == "ratio_vs_torch"} == {"N/A"}
    assert "no chart" in text


def test_wrong_implementation_fails_the_check_before_timing(tmp_path):
    rc, text = _tiny_run(tmp_path, ["conv2d"], ("numpy",), perturb=["conv2d"])
    assert rc == 1
    assert "CORRECTNESS CHECK FAILED" in text and "MISMATCH y" in text
    assert "Timing" not in text
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["status"] == "correctness check failed"
    assert not res["correctness"]["conv2d|float32"]["deconv"]["y"]["ok"]
    assert res["correctness"]["conv2d|float32"]["numpy"]["y"]["ok"]


def test_cli_rejects_bad_arguments(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["bench", "--threads", "0"])
    assert e.value.code == 2
    with pytest.raises(SystemExit):
        cli.main(["bench", "--torch-python", "/nonexistent/python"])
    assert "not an executable" in capsys.readouterr().err
    assert cli.main(["bench", "--cases", "nope", "--no-startup"]) == 2
    assert "unknown case 'nope'" in capsys.readouterr().err


def test_worker_usage_error(capsys):
    assert worker.main([]) == 2
    assert "usage" in capsys.readouterr().err


# --- the model of the training step ------------------------------------------

def test_training_step_uses_models_superres_and_matches_the_reference():
    from deconv import models
    case = C.train_case("step", "superres_train", N=2, h=6, channels=(4, 2))
    model = models.superres(scale=2, channels=(4, 2), rng=0)
    # the case's parameter shapes are read off the model itself, in parameters() order
    assert [case["shapes"][f"p{i}"] for i in range(len(model.parameters()))] == \
        [p.shape for p in model.parameters()]
    a = C.make_inputs(case, "check")
    ref = peers.reference_outputs(case, a)
    fwd, bwd, fwd_names, bwd_names = peers.deconv_train_impl(case, a)     # float64 inputs
    got = dict(zip(fwd_names + bwd_names, tuple(fwd()) + tuple(bwd())))
    assert set(got) == set(ref)
    for k in ref:
        np.testing.assert_allclose(got[k], ref[k], rtol=1e-9, atol=1e-12, err_msg=k)


TRAIN_CASES = [c for c in C.build_cases("tiny") if c["family"] == "train"]


def test_every_train_block_has_a_row_at_both_sizes():
    for size in ("tiny", "full"):
        ops = [c["op"] for c in C.build_cases(size) if c["family"] == "train"]
        # the model families' rows are the models suite's (tests/test_bench_models.py)
        assert ops + list(blocks.FAMILY_ROWS) == list(blocks.TRAIN_BLOCKS)
    full = {c["op"]: c for c in C.build_cases() if c["family"] == "train"}
    # issue 14's blocks: a DCGAN generator's middle block, a U-Net block
    dcgan, unet = full["dcgan_block_train"], full["unet_block_train"]
    assert dcgan["shapes"]["x"] == (16, 256, 8, 8) and dcgan["shapes"]["t"] == (16, 128, 16, 16)
    assert dcgan["shapes"]["p0"] == (256, 128, 4, 4)                 # no bias: p1, p2 are BN's
    assert [dcgan["shapes"][k] for k in ("p1", "p2")] == [(128,), (128,)] and \
        "p3" not in dcgan["shapes"]
    assert unet["shapes"]["x"] == unet["shapes"]["t"] == (8, 64, 64, 64)
    assert unet["geometry"]["groups"] == 8 and unet["shapes"]["p0"] == (64, 64, 3, 3)


def test_train_case_rejects_an_unknown_op():
    with pytest.raises(ValueError, match="op must be one of .* got 'resnet_train'"):
        C.train_case("x", "resnet_train", N=1, h=4)


def test_train_inputs_start_norm_scales_near_one():
    unet = next(c for c in TRAIN_CASES if c["op"] == "unet_block_train")
    a = C.make_inputs(unet, "check")
    # p0 conv weight, p1 conv bias, p2 GroupNorm weight, p3 GroupNorm bias
    assert abs(a["p2"] - 1).max() < 0.5 and abs(a["p3"]).max() < 0.5
    fan_in = 8 * 3 * 3
    assert 0.5 < a["p0"].std() * fan_in ** 0.5 < 2


def test_check_versions_of_the_blocks_keep_their_structure():
    full = {c["op"]: c for c in C.build_cases() if c["family"] == "train"}
    dcgan = C.check_version(full["dcgan_block_train"])["geometry"]
    assert dcgan == dict(N=2, C_in=8, C_out=8, h=8)
    unet = C.check_version(full["unet_block_train"])["geometry"]
    # groups of two channels: the statistics still span several channels
    assert unet == dict(N=2, C=8, groups=4, h=64)


@pytest.mark.parametrize("case", TRAIN_CASES, ids=lambda c: c["op"])
def test_training_step_of_each_block_matches_the_reference(case):
    small = C.check_version(case)
    a = C.make_inputs(small, "check")
    ref = peers.reference_outputs(small, a)
    assert set(ref) == {"y", "loss"} | {f"g{i}" for i in range(len(a) - 2)}
    fwd, bwd, fwd_names, bwd_names = peers.deconv_train_impl(small, a)    # float64
    got = dict(zip(fwd_names + bwd_names, tuple(fwd()) + tuple(bwd())))
    assert set(got) == set(ref)
    for k in ref:
        np.testing.assert_allclose(got[k], ref[k], rtol=1e-9, atol=1e-12, err_msg=k)
    # float32 in, float32 out, within the bench's float32 tolerance of the reference
    a32 = {k: v.astype(np.float32) for k, v in a.items()}
    fwd, bwd, fwd_names, bwd_names = peers.deconv_train_impl(small, a32)
    got = dict(zip(fwd_names + bwd_names, tuple(fwd()) + tuple(bwd())))
    rep = bench.compare_outputs(got, ref, "float32")
    assert all(r["ok"] for r in rep.values()), rep
    assert all(got[k].dtype == np.float32 for k in got if k != "loss")


def _loss_of(case, a, values):
    return peers.reference_outputs(case, dict(a, **values))["loss"][0]


@pytest.mark.parametrize("op", ["dcgan_block_train", "unet_block_train"])
def test_block_references_match_central_differences(op):
    # the oracle itself, against float64 central differences of its own loss
    geometry = {"dcgan_block_train": dict(N=2, C_in=3, C_out=2, h=3),
                "unet_block_train": dict(N=2, C=4, groups=2, h=4)}[op]
    case = C.train_case("fd", op, **geometry)
    a = C.make_inputs(case, "check")
    ref = peers.reference_outputs(case, a)
    rng = np.random.default_rng(1)
    eps = 1e-6
    for i in range(len(a) - 2):
        p = a[f"p{i}"]
        for flat in rng.choice(p.size, size=min(4, p.size), replace=False):
            plus, minus = p.copy(), p.copy()
            plus.flat[flat] += eps
            minus.flat[flat] -= eps
            numeric = (_loss_of(case, a, {f"p{i}": plus}) -
                       _loss_of(case, a, {f"p{i}": minus})) / (2 * eps)
            assert ref[f"g{i}"].flat[flat] == pytest.approx(numeric, rel=1e-5, abs=1e-9), \
                (i, flat)


def assert_tiny_run_times_training_steps(tmp_path, names, peers=(), **kw):
    """A tiny run of the training-step rows ``names``: each checked and timed, both passes."""
    rc, text = _tiny_run(tmp_path, names, peers, **kw)
    assert rc == 0, text
    with open(tmp_path / "results.json") as f:
        res = json.load(f)
    assert res["status"] == "ok"
    rows = {(r["case"], r["pass"]): r for r in res["rows"]}
    assert set(rows) == {(n, p) for n in names for p in ("fwd", "bwd")}
    assert all(r["deconv_ms"] > 0 and r["family"] == "train" for r in rows.values())
    checked = {k.split("|")[0] for k in res["correctness"]}
    assert set(names) <= checked


def test_tiny_run_times_the_block_training_steps(tmp_path):
    assert_tiny_run_times_training_steps(tmp_path, ["dcgan_block_train", "unet_block_train"])


# --- the naive kernel set ----------------------------------------------------

def test_naive_and_numpy_cover_the_conv_cases_only():
    by_family = {c["family"]: c for c in C.build_cases("tiny")}
    assert peers.libs_for(by_family["conv"], peers.LIBS) == list(peers.LIBS)
    assert peers.libs_for(by_family["pool"], peers.LIBS) == ["deconv", "torch", "scipy"]
    assert peers.libs_for(by_family["train"], peers.LIBS) == ["deconv", "torch"]


class _StubKernelSets:
    """Stands in for deconv.kernels.use / active (a module-wide selection)."""

    def __init__(self):
        self.current = "tiled"
        self.entered = []

    def use(self, name):
        import contextlib

        @contextlib.contextmanager
        def selection():
            before, self.current = self.current, name
            self.entered.append(name)
            try:
                yield
            finally:
                self.current = before
        return selection()

    def active(self):
        return self.current


def test_naive_worker_runs_every_call_under_the_naive_kernel_set(tmp_path, monkeypatch):
    import deconv
    import deconv.kernels
    stub = _StubKernelSets()
    monkeypatch.setattr(deconv.kernels, "use", stub.use, raising=False)
    monkeypatch.setattr(deconv.kernels, "active", stub.active, raising=False)
    seen = []
    for name in ("conv2d", "conv2d_backward"):
        def spy(*args, _fn=getattr(deconv, name), _name=name, **kw):
            seen.append((_name, stub.active()))
            return _fn(*args, **kw)
        monkeypatch.setattr(deconv, name, spy)
    case = C.check_version(C.build_cases("tiny")[0])
    entries = [{"key": "conv2d|float32|check", "case": case, "dtype": "float32",
                "variant": "check"}]
    specs, _ = C.write_inputs(entries, str(tmp_path))
    job = {"lib": "naive", "mode": "check", "threads": 1, "out_dir": str(tmp_path),
           "warm_call": True,
           "entries": [{"key": "conv2d|float32", "case": case, "dtype": "float32",
                        "arrays": specs["conv2d|float32|check"]}]}
    res = worker.run_job(job)
    r = res["cases"]["conv2d|float32"]
    assert "error" not in r, r
    assert res["kernels"] == "naive" and stub.entered == ["naive"]
    assert stub.active() == "tiled"                      # the selection ended with the job
    # first forward, first backward, then the warm call the cost prediction uses
    assert seen == [("conv2d", "naive"), ("conv2d_backward", "naive")] * 2
    assert r["warm_s"] > 0 and set(r["outputs"]) == {"y", "gx", "gw", "gb"}
    bench.runner.require_kernel_set("naive", res)         # accepted by the parent


def test_parent_refuses_a_worker_on_the_wrong_kernel_set():
    check = bench.runner.require_kernel_set
    check("deconv", {"kernels": "tiled"})
    check("deconv", {"kernels": None})                    # a deconv without kernel sets
    check("numpy", {})
    for lib, got in (("naive", "tiled"), ("naive", None), ("deconv", "naive")):
        with pytest.raises(bench.WorkerError, match=f"the {lib} worker ran deconv's"):
            check(lib, {"kernels": got})


def test_naive_peer_without_kernel_sets_is_a_clear_worker_error(tmp_path, monkeypatch, capsys):
    import deconv.kernels
    monkeypatch.delattr(deconv.kernels, "use", raising=False)
    with pytest.raises(bench.WorkerError, match=r"needs deconv.kernels.use\('naive'\)"):
        _tiny_run(tmp_path, ["conv2d"], ("naive",))
    assert not (tmp_path / "results.json").exists()       # raised before any work
    assert cli.main(["bench", "--size", "tiny", "--cases", "conv2d", "--peers", "naive",
                     "--no-startup", "--out", str(tmp_path)]) == 1
    assert "leave 'naive' out of --peers" in capsys.readouterr().err


def test_budget_plan_predicts_from_the_reduced_case():
    cases = C.build_cases()
    conv = next(c for c in cases if c["name"] == "conv2d")
    pool = next(c for c in cases if c["name"] == "avg_pool2d")
    train = next(c for c in cases if c["family"] == "train")
    sweep = next(c for c in cases if c["sweep"])
    seconds = {"conv2d|float32": 0.01, "avg_pool2d|float32": 0.001,
               f"{train['name']}|float32": 0.1, f"{sweep['name']}|float32": 0.01}
    selected = [conv, pool, train, sweep]
    # conv2d: N 32 -> 2 and 64 -> 8 channels on each side: (32*64*64) / (2*8*8) = 1024 times
    assert C.cost_ratio(conv, C.check_version(conv)) == 1024
    naive = bench.runner.budget_plan("naive", selected, seconds, cap_s=5.0)
    assert naive == {"conv2d": {"predicted_s": pytest.approx(10.24), "run": False}}
    naive = bench.runner.budget_plan("naive", selected, seconds, cap_s=11.0)
    assert naive["conv2d"]["run"]
    scipy = bench.runner.budget_plan("scipy", selected, seconds, cap_s=5.0)
    assert set(scipy) == {"conv2d", "avg_pool2d"}                 # no train step, no sweep
    assert scipy["avg_pool2d"] == {"predicted_s": pytest.approx(0.001 * 32 * 64 / (2 * 8)),
                                   "run": True}


class _FakeRun:
    """Records the timing jobs instead of starting workers."""

    def __init__(self, settings):
        self.s = settings
        self.isa = "native"
        self.jobs = []

    def worker(self, python, job, env, label):
        self.jobs.append(dict(job, env_threads=env["NUMBA_NUM_THREADS"]))
        return {"cases": {e["key"]: {} for e in job["entries"]},
                "kernels": {"naive": "naive", "deconv": "tiled"}.get(job["lib"])}

    def say(self, *parts):
        pass

    def describe(self, res):
        return ""


def test_time_all_runs_the_naive_kernels_once_per_thread_count_where_planned():
    cases = C.build_cases("tiny")
    settings = bench.resolve_settings(rounds=3, repeats=10, warmup=2)
    run = _FakeRun(settings)
    specs = {f"{c['name']}|{dt}|full": {} for c in cases for dt in c["dtypes"]}
    plans = {"naive": {"conv2d": {"predicted_s": 1.0, "run": True},
                       "conv1d": {"predicted_s": 9.0, "run": False}}}
    bench.time_all(run, cases, ["deconv", "naive"], {"deconv": "py", "naive": "py"}, [1, 2],
                   specs, plans)
    naive = [j for j in run.jobs if j["lib"] == "naive"]
    deconv_jobs = [j for j in run.jobs if j["lib"] == "deconv"]
    assert len(deconv_jobs) == 6 and len(naive) == 2      # 3 rounds x 2 thread counts; 1 x 2
    assert [j["threads"] for j in naive] == [1, 2] and [j["env_threads"] for j in naive] == ["1", "2"]
    for j in naive:
        assert [e["key"] for e in j["entries"]] == ["conv2d|float32", "conv2d|float64"]
        assert j["warmup"] == 0 and j["repeats"] == 3 and j["min_repeats"] == 1
    assert deconv_jobs[0]["warmup"] == 2 and deconv_jobs[0]["repeats"] == 10


def test_aggregate_and_table_show_the_naive_time_and_the_speedup():
    cases = [c for c in C.build_cases("tiny") if c["name"] in ("conv2d", "conv1d", "avg_pool2d")]
    timing = {
        (1, "deconv"): [_worker("conv2d|float32", 2.0, 4.0), _worker("conv2d|float32", 2.0, 6.0)],
        (1, "naive"): [_worker("conv2d|float32", 50.0, 180.0)],
    }
    for res in timing[(1, "deconv")]:
        res["cases"].update(_worker("conv1d|float32", 1.0, 1.0)["cases"])
        res["cases"].update(_worker("avg_pool2d|float32", 1.0, 1.0)["cases"])
    rows = bench.aggregate([dict(c, dtypes=("float32",)) for c in cases], timing, [1])
    by = {(r["case"], r["pass"]): r for r in rows}
    assert by[("conv2d", "fwd")]["naive_ms"] == 50.0
    assert by[("conv2d", "fwd")]["tiled_speedup"] == pytest.approx(25.0)
    assert by[("conv2d", "bwd")]["tiled_speedup"] == pytest.approx(180.0 / 5.0)
    assert "tiled_speedup" not in by[("conv1d", "fwd")]          # not planned: not run
    naive_col = bench.TABLE_COLUMNS.index("naive ms")
    speedup_col = bench.TABLE_COLUMNS.index("naive/deconv")
    cells = {k: bench.table_cells(r) for k, r in by.items()}
    assert cells[("conv2d", "fwd")][naive_col:speedup_col + 1] == ("50.0", "25.0")
    assert cells[("conv1d", "fwd")][naive_col:speedup_col + 1] == ("-", "-")
    assert cells[("avg_pool2d", "fwd")][naive_col:speedup_col + 1] == ("same", "same")
    assert "| avg_pool2d | fwd | f32 | 1 | 1.00 | 0% | same | same |" in bench.markdown_table(rows)


# --- the breadth issue's rows: 3-D convs, padding, adaptive pooling, interpolate, unfold ---

BREADTH_ROWS = ["conv3d_unet", "conv_transpose3d_unet", "pad_reflect", "adaptive_avg_pool2d_1x1",
                "adaptive_avg_pool2d_7x7", "bicubic_x2", "trilinear_x2", "unfold_k3"]


def test_breadth_rows_are_checked_against_the_reference_and_timed(tmp_path):
    rc, text = _tiny_run(tmp_path, BREADTH_ROWS, ("scipy",))
    assert rc == 0, text
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["status"] == "ok"
    rows = {(r["case"], r["pass"]): r for r in res["rows"]}
    assert set(rows) == {(n, p) for n in BREADTH_ROWS for p in ("fwd", "bwd")}
    assert all(r["deconv_ms"] > 0 for r in rows.values())
    for name in BREADTH_ROWS:
        checks = res["correctness"][f"{name}|float32"]
        assert checks["deconv"] and all(v["ok"] for v in checks["deconv"].values()), name


def test_breadth_rows_shapes_match_the_reference_outputs():
    ref = C.load_reference_module()
    for size in ("tiny", "full"):
        cases = {c["name"]: c for c in C.build_cases(size)}
        for name in BREADTH_ROWS[2:]:
            case = cases[name]
            small = C.check_version(case)
            a = C.make_inputs(small, "check")
            y = getattr(ref, case["op"])(a["x"], **case["kw"])
            assert y.shape == small["shapes"]["gy"], (size, name)
            gx = getattr(ref, case["op"] + "_backward")(a["gy"], a["x"].shape, **case["bkw"])
            assert gx.shape == a["x"].shape, (size, name)


def test_numpy_baseline_leaves_out_the_3d_convs():
    cases = {c["name"]: c for c in C.build_cases("tiny")}
    assert "numpy" not in peers.libs_for(cases["conv3d_unet"], peers.LIBS)
    assert "naive" in peers.libs_for(cases["conv3d_unet"], peers.LIBS)
    assert peers.libs_for(cases["bicubic_x2"], peers.LIBS) == ["deconv", "torch", "scipy"]


# --- the layers suite and cases from the command line ------------------------

def test_layers_suite_covers_the_kinds_of_layer_it_names():
    layers = C.layer_cases()
    assert len(layers) >= 30 and len({c["name"] for c in layers}) == len(layers)
    assert all(c["suite"] == "layers" and c["network"] for c in layers)
    ops = {c["op"] for c in layers}
    assert ops == {"conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d"}
    g = [c["geometry"] for c in layers]
    assert any(x["kernel"] == 1 for x in g)                       # pointwise
    assert any(x["C_in"] == 3 and x["kernel"] >= 7 for x in g)    # stems
    assert any(x["dilation"] != 1 for x in g)
    assert any(x["groups"] == x["C_in"] > 1 for x in g)           # depthwise
    assert any(1 < x["groups"] < x["C_in"] for x in g)            # grouped
    assert any(x["N"] == 1 for x in g)
    assert any(c["op"] == "conv_transpose2d" and c["geometry"]["stride"] == 1 for c in layers)
    assert {c["dtypes"][0] for c in layers} == {"float32", "float64"}
    spatial = {x["spatial"][0] for x in g if len(x["spatial"]) == 2 and x["kernel"] == 3}
    assert {56, 28, 14, 7} <= spatial
    # the tiny suite keeps each layer's structure
    for big, small in zip(layers, C.layer_cases(tiny=True)):
        assert (big["name"], big["op"], big["dtypes"]) == (small["name"], small["op"],
                                                          small["dtypes"])
        assert (big["geometry"]["groups"] > 1) == (small["geometry"]["groups"] > 1)


def test_suites_select_their_cases():
    kernels = {c["name"] for c in bench.select_cases()}
    layers = {c["name"] for c in bench.select_cases(suite="layers")}
    assert "conv2d" in kernels and "resnet_56_3x3" in layers and not kernels & layers
    model_rows = {c["name"] for c in bench.select_cases(suite="models")}
    assert "fsrcnn_step" in model_rows and not (kernels | layers) & model_rows
    assert {c["name"] for c in bench.select_cases(suite="all")} == kernels | layers | model_rows
    with pytest.raises(bench.BenchError, match="unknown case 'conv2d' in --suite layers"):
        bench.select_cases(["conv2d"], suite="layers")
    with pytest.raises(bench.BenchError, match="--suite"):
        bench.select_cases(suite="nets")
    mine = C.parse_case("conv2d x=1,2,5,5 w=2,2,3,3", name="mine")
    assert [c["name"] for c in bench.select_cases(user_cases=[mine])] == ["mine"]
    assert [c["name"] for c in bench.select_cases(["conv2d"], user_cases=[mine])] == \
        ["conv2d", "mine"]
    with pytest.raises(bench.BenchError, match="two cases are named"):
        bench.select_cases(user_cases=[mine, mine])


def test_parse_case_builds_the_shapes_pytorch_would():
    c = C.parse_case("conv_transpose2d x=4,16,7,9 w=16,3,4,5 stride=2,3 padding=1 "
                     "output_padding=1,2 groups=2 dilation=1 dtype=float32,float64")
    # torch: (H-1)*s - 2p + d(k-1) + op + 1 per axis; C_out = w[1] * groups
    assert c["shapes"]["gy"] == (4, 6, (7 - 1) * 2 - 2 + 3 + 1 + 1, (9 - 1) * 3 - 2 + 4 + 2 + 1)
    assert c["kw"] == {"stride": (2, 3), "padding": 1, "groups": 2, "output_padding": (1, 2)}
    assert c["dtypes"] == ("float32", "float64") and not c["numpy_baseline"]
    d = C.parse_case("conv1d x=2,4,100 w=8,4,5 dilation=3 padding=6")
    assert d["shapes"]["gy"] == (2, 8, 100) and d["kw"]["dilation"] == 3
    assert "numpy" not in peers.libs_for(d, peers.LIBS)
    e = C.parse_case("conv3d x=1,2,6,6,6 w=4,2,3,3,3")
    assert e["shapes"]["gy"] == (1, 4, 4, 4, 4)


@pytest.mark.parametrize("spec, message", [
    ("", "empty case"),
    ("conv4d x=1,1,1 w=1,1,1", "op 'conv4d'"),
    ("conv2d x=1,2,5,5", "gives no w="),
    ("conv2d x=1,2,5,5 w=3,2,3", "takes x and w of 4 dimensions"),
    ("conv2d x=1,2,5,5 w=3,4,3,3", "does not fit"),
    ("conv2d x=1,2,5,5 w=3,2,3,3 padding=a", "padding='a'"),
    ("conv2d x=1,2,5,5 w=3,2,3,3 stride=1,1,1", "expected 1 or 2 ints"),
    ("conv2d x=1,2,5,5 w=3,2,3,3 stride=0", "stride='0'"),
    ("conv2d x=1,4,5,5 w=4,2,3,3 groups=3", "groups=3"),
    ("conv2d x=1,2,2,2 w=3,2,3,3", "output size"),
    ("conv2d x=1,2,5,5 w=3,2,3,3 dtype=float16", "dtype='float16'"),
    ("conv2d x=1,2,5,5 w=3,2,3,3 bias=1", "'bias=1'"),
    ("conv2d x=1,2,5,5 w=3,2,3,3 x=1,2,5,5", "x given twice"),
])
def test_parse_case_names_what_is_wrong(spec, message):
    with pytest.raises(C.CaseSpecError, match=message):
        C.parse_case(spec)


def test_case_file_and_cli(tmp_path, capsys):
    path = tmp_path / "cases.txt"
    path.write_text("# my network\nstem: conv2d x=1,3,12,12 w=4,3,3,3 stride=2\n\n"
                    "conv1d x=1,2,9 w=2,2,3  # a comment\n")
    cases = C.read_case_file(str(path))
    assert [c["name"] for c in cases] == ["stem", "conv1d x=1,2,9 w=2,2,3"]
    path.write_text("conv2d x=1,3,12,12 w=4,2,3,3\n")
    with pytest.raises(C.CaseSpecError, match="line 1"):
        C.read_case_file(str(path))
    assert cli.main(["bench", "--case", "conv2d x=1,2 w=1", "--no-startup"]) == 2
    assert "takes x and w of 4 dimensions" in capsys.readouterr().err
    assert cli.main(["bench", "--case-file", str(tmp_path / "absent.txt")]) == 2
    assert "absent.txt" in capsys.readouterr().err


def test_tiny_run_of_the_layers_suite_and_a_given_case(tmp_path):
    out = io.StringIO()
    mine = C.parse_case("conv_transpose1d x=1,2,5 w=2,3,4 stride=3 output_padding=1",
                        name="mine")
    rc = bench.run(quick=True, threads=[1], cases=["resnet_14_1x1s2", "fsrcnn_32_tconv9s2",
                                                   "melgan_tconv16s8_f64"],
                   rounds=1, repeats=2, warmup=0, out=str(tmp_path), startup=False,
                   peers=("scipy", "numpy"), size="tiny", stream=out, suite="layers",
                   user_cases=[mine])
    assert rc == 0, out.getvalue()
    res = json.loads((tmp_path / "results.json").read_text())
    rows = {(r["case"], r["dtype"]) for r in res["rows"]}
    assert rows == {("resnet_14_1x1s2", "float32"), ("fsrcnn_32_tconv9s2", "float32"),
                    ("melgan_tconv16s8_f64", "float64"), ("mine", "float32")}
    for key, libs in res["correctness"].items():
        assert all(v["ok"] for v in libs["deconv"].values()), key
    # the NumPy baseline ran where it applies (stride 2, no output padding) and only there
    timed = {r["case"] for r in res["rows"] if r.get("numpy_ms")}
    assert timed == {"resnet_14_1x1s2", "melgan_tconv16s8_f64"}


def test_a_run_without_a_chart_removes_a_stale_one(tmp_path):
    (tmp_path / "ratios.png").write_bytes(b"old")
    rc, text = _tiny_run(tmp_path, ["avg_pool2d"], ())
    assert rc == 0, text
    assert not (tmp_path / "ratios.png").exists()


# --- --isa ----------------------------------------------------------------------

def test_isa_env_sets_both_libraries_and_drops_the_parents(monkeypatch):
    from deconv.bench import processes
    monkeypatch.setenv("NUMBA_CPU_NAME", "znver4")          # the parent's own never leaks
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_AMX")
    env = processes.worker_env("deconv", 1, isa="avx2")
    assert env["NUMBA_CPU_NAME"] == "haswell"
    features = env["NUMBA_CPU_FEATURES"].split(",")
    assert "+avx2" in features and "+fma" in features
    assert not any("avx512" in f for f in features)
    assert env["NUMBA_CACHE_DIR"].endswith("deconv-numba-cache-avx2")
    assert "ONEDNN_MAX_CPU_ISA" not in env
    torch_env = processes.worker_env("torch", 1, isa="avx2")
    assert torch_env["ONEDNN_MAX_CPU_ISA"] == "AVX2" and torch_env["ATEN_CPU_CAPABILITY"] == "avx2"
    assert "NUMBA_CPU_NAME" not in torch_env
    native = processes.worker_env("deconv", 1)
    assert "NUMBA_CPU_NAME" not in native and "NUMBA_CACHE_DIR" not in native
    assert "+avx512f" in processes.isa_env("avx512", "deconv")["NUMBA_CPU_FEATURES"]
    assert processes.isa_env("generic", "naive") == {
        "NUMBA_CPU_NAME": "generic",
        "NUMBA_CACHE_DIR": os.path.join(tempfile.gettempdir(), "deconv-numba-cache-generic")}
    with pytest.raises(bench.BenchError, match="--isa"):
        bench.run(isa="sse9", cases=["conv2d"], size="tiny", startup=False, peers=())


def test_tiny_run_under_avx2_reports_what_ran(tmp_path):
    rc, text = _tiny_run(tmp_path, ["avg_pool2d"], (), isa="avx2")
    assert rc == 0, text
    assert "deconv: Numba compiles for cpu haswell with AVX2" in text
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["workers"]["deconv|1"][0]["isa"]["numba"]["vector_isa"] == "AVX2"


# --- the JAX peer ------------------------------------------------------------------

JAX_CASES = [
    C.conv_case("jax_t2d_op_g_d", "conv_transpose2d", 2, 4, 6, (5, 4), 3, stride=2, padding=1,
                groups=2, dilation=2, output_padding=1),
    # output_padding >= stride (allowed as it is < dilation): the cropped adjoint
    C.conv_case("jax_t2d_op_ge_s", "conv_transpose2d", 1, 2, 4, (4, 5), 3, stride=2, padding=1,
                dilation=3, output_padding=2),
    C.conv_case("jax_t1d_op", "conv_transpose1d", 2, 4, 6, (9,), 3, stride=3, padding=1,
                output_padding=2),
    C.conv_case("jax_t3d", "conv_transpose3d", 1, 4, 4, (3, 4, 3), 2, stride=2, groups=2),
    C.conv_case("jax_c2d_g_d", "conv2d", 2, 6, 4, (9, 8), 3, stride=2, padding=2, dilation=2,
                groups=2),
    C.conv_case("jax_c1d", "conv1d", 2, 4, 6, (11,), 5, stride=2, padding=2),
    C.conv_case("jax_c3d_depthwise", "conv3d", 1, 4, 4, (5, 6, 5), 3, padding=1, groups=4),
]


@pytest.mark.parametrize("case", JAX_CASES, ids=lambda c: c["name"])
def test_jax_peer_matches_reference(case):
    jax = pytest.importorskip("jax")       # a test dependency: '.[test]' installs it
    build = peers.builder("jax", 1)
    a = C.make_inputs(case, "check")
    ref = peers.reference_outputs(case, a)
    for dtype in ("float64", "float32"):
        fwd, bwd, fwd_names, bwd_names = build(case, {k: v.astype(dtype) for k, v in a.items()})
        got = dict(zip(fwd_names + bwd_names, fwd() + bwd()))
        assert all(isinstance(v, jax.Array) for v in got.values())
        outs = {k: np.asarray(v) for k, v in got.items()}
        assert all(v.dtype == dtype for v in outs.values())
        report = bench.compare_outputs(outs, ref, dtype)
        assert set(report) == {"y", "gx", "gw", "gb"}
        assert all(r["ok"] for r in report.values()), (dtype, report)


def test_jax_peer_runs_the_conv_ops_only():
    cases = {c["name"]: c for c in C.build_cases("tiny")}
    assert "jax" in peers.libs_for(cases["conv3d_unet"], peers.LIBS)
    for name in ("max_pool2d", "bicubic_x2", "superres_train"):
        assert "jax" not in peers.libs_for(cases[name], peers.LIBS), name
    assert peers.FORBIDDEN_IMPORTS["jax"] == ("deconv", "numba", "torch")


def test_tiny_run_with_jax_checks_and_times_it(tmp_path):
    pytest.importorskip("jax")
    mine = C.parse_case("conv_transpose2d x=2,4,5,4 w=4,3,3,3 stride=2 padding=1 "
                        "output_padding=1 groups=2 dilation=2 dtype=float32,float64",
                        name="mine")
    rc, text = _tiny_run(tmp_path, ["conv2d_depthwise", "avg_pool2d"], ("jax",),
                         user_cases=[mine])
    assert rc == 0, text
    assert "JAX 0." in text or "JAX 1." in text
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["libs"] == ["deconv", "jax"] and res["peer_versions"]["jax"]
    for key in ("conv2d_depthwise|float32", "mine|float32", "mine|float64"):
        checks = res["correctness"][key]["jax"]
        assert set(checks) == {"y", "gx", "gw", "gb"} and all(c["ok"] for c in checks.values())
    assert "jax" not in res["correctness"]["avg_pool2d|float32"]
    rows = {(r["case"], r["pass"], r["dtype"]): r for r in res["rows"]}
    conv = rows[("mine", "bwd", "float64")]
    assert conv["jax_ms"] > 0 and conv["jax_gflops"] > 0 and conv["ratio_jax"] > 0
    assert "jax_ms" not in rows[("avg_pool2d", "fwd", "float32")]
    # the table: jax columns, '-' on the pooling row; no torch column (not asked for)
    md = (tmp_path / "results.md").read_text()
    assert "| jax ms | deconv/jax |" in md and "torch ms" not in md
    pool_line = next(line for line in md.splitlines() if line.startswith("| avg_pool2d | fwd"))
    columns = bench.table_columns(res["rows"])
    cells = [c.strip() for c in pool_line.strip("|").split("|")]
    assert cells[columns.index("jax ms")] == cells[columns.index("deconv/jax")] == "-"
    jax_targets = [t for t in res["targets"] if t["target"] == "ratio_vs_jax"]
    assert {t["item"].split()[0] for t in jax_targets} == {"conv2d_depthwise", "mine"}
    assert all(t["status"] in ("PASS", "FAIL") for t in jax_targets)
    threads = res["workers"]["jax|1"][0]["threads"]
    assert threads["xla_flags"] == bench.xla_flags(1)
    assert threads["xla_pool_cpus"] >= 1
    assert res["workers"]["jax|1"][0]["versions"]["jax"]


def test_jax_column_absent_when_jax_does_not_import(tmp_path):
    # an interpreter without site-packages cannot import jax
    fake = tmp_path / "python-without-jax"
    fake.write_text(f'#!/bin/sh\nexec "{sys.executable}" -S "$@"\n')
    fake.chmod(0o755)
    rc, text = _tiny_run(tmp_path, ["conv1d"], ("jax",), jax_python=str(fake))
    assert rc == 0, text
    assert "JAX not importable" in text and "no jax column" in text
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["libs"] == ["deconv"] and res["jax_python"] is None
    assert all("jax_ms" not in r and "ratio_jax" not in r for r in res["rows"])
    assert not any(t["target"] == "ratio_vs_jax" for t in res["targets"])
    assert "jax ms" not in (tmp_path / "results.md").read_text()
    # with only a pooling case there is no jax check worker: a probe asks
    rc, text = _tiny_run(tmp_path, ["avg_pool2d"], ("jax",), jax_python=str(fake))
    assert rc == 0 and "JAX not importable" in text


def test_xla_flags_in_the_jax_workers_environment_only(monkeypatch):
    from deconv.bench import processes
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
    one = processes.worker_env("jax", 1)["XLA_FLAGS"]
    assert one == "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    assert processes.worker_env("jax", 2)["XLA_FLAGS"] == \
        "--xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads=2"
    for lib in ("deconv", "torch", "numpy"):
        assert "XLA_FLAGS" not in processes.worker_env(lib, 1), lib
    assert processes.worker_env("jax", 2)["OMP_NUM_THREADS"] == "2"
    # --isa: XLA's code generator held to it; no Numba variables in the jax worker
    env = processes.worker_env("jax", 1, isa="avx2")
    assert env["XLA_FLAGS"] == ("--xla_cpu_multi_thread_eigen=false --xla_cpu_max_isa=AVX2 "
                                "intra_op_parallelism_threads=1")
    assert "NUMBA_CPU_NAME" not in env


def test_aggregate_pairs_jax_ratios_round_by_round_and_targets_conv_rows_only():
    cases = [c for c in C.build_cases("tiny") if c["name"] in ("conv2d", "avg_pool2d")]
    timing = {
        (1, "deconv"): [_worker("conv2d|float32", 10.0, 30.0), _worker("conv2d|float32", 20.0, 30.0),
                        _worker("conv2d|float32", 12.0, 30.0)],
        (1, "jax"): [_worker("conv2d|float32", 5.0, 60.0), _worker("conv2d|float32", 20.0, 60.0),
                     _worker("conv2d|float32", 4.0, 60.0)],
    }
    for res in timing[(1, "deconv")]:
        res["cases"].update(_worker("avg_pool2d|float32", 1.0, 1.0)["cases"])
    rows = bench.aggregate([dict(c, dtypes=("float32",)) for c in cases], timing, [1])
    by = {(r["case"], r["pass"]): r for r in rows}
    assert by[("conv2d", "fwd")]["ratio_jax"] == pytest.approx(2.0)     # 10/5, 20/20, 12/4
    assert by[("conv2d", "bwd")]["ratio_jax"] == pytest.approx(0.5)
    assert by[("conv2d", "fwd")]["jax_gflops"] == pytest.approx(
        C.flops(cases[0], "fwd") / 5e6)
    assert "ratio_jax" not in by[("avg_pool2d", "fwd")]
    targets = bench.evaluate_targets(rows, torch_available=False, jax_available=True)
    assert _by(targets, "ratio_vs_jax") == {"conv2d fwd float32 T=1": "FAIL",
                                            "conv2d bwd float32 T=1": "PASS"}
    assert not _by(bench.evaluate_targets(rows, torch_available=False), "ratio_vs_jax")
    assert bench.table_columns(rows) == tuple(c for c in bench.TABLE_COLUMNS
                                              if c not in ("torch ms", "deconv/torch"))


def test_cli_knows_the_jax_peer_and_the_contended_mode(capsys):
    with pytest.raises(SystemExit):
        cli.main(["bench", "--jax-python", "/nonexistent/python"])
    assert "--jax-python '/nonexistent/python' is not an executable" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["bench", "--peers", "flax"])
    assert "'jax'" in capsys.readouterr().err
    assert cli.main(["bench", "--peers", "jax", "--contended", "--cases", "nope",
                     "--no-startup"]) == 2


# --- the roofline ------------------------------------------------------------------

def _roofline_rows():
    rows = []
    for threads, peak in ((1, 100.0), (2, 190.0)):
        for p in ("fwd", "bwd"):
            rows.append(dict(_row("conv2d", p, threads, 2.0), gflops=20.0 * threads,
                             torch_gflops=30.0, jax_gflops=25.0, peak_gflops=peak))
    rows.append(_row("avg_pool2d", "fwd", 1, 1.0, family="pool"))
    return rows


def test_roofline_written_or_skipped_with_a_reason(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    path = tmp_path / "roofline.png"
    assert bench.write_roofline(_roofline_rows(), str(path), "title") is None
    assert path.read_bytes().startswith(b"\x89PNG")
    pool_only = [r for r in _roofline_rows() if r["family"] == "pool"]
    assert bench.write_roofline(pool_only, str(tmp_path / "none.png"), "t") == "no conv row timed"
    monkeypatch.setitem(sys.modules, "matplotlib", None)       # as if not installed
    why = bench.write_roofline(_roofline_rows(), str(tmp_path / "no.png"), "t")
    assert "matplotlib is not installed" in why and not (tmp_path / "no.png").exists()


def test_tiny_run_writes_a_roofline_with_the_measured_ceiling(tmp_path):
    rc, text = _tiny_run(tmp_path, ["conv1d"], ("numpy",))
    assert rc == 0, text
    assert (tmp_path / "roofline.png").exists() and "roofline.png" in text
    res = json.loads((tmp_path / "results.json").read_text())
    rows = [r for r in res["rows"] if r["case"] == "conv1d"]
    # the deconv worker measured the ceiling at its thread count: one value for every row
    assert len({r["peak_gflops"] for r in rows}) == 1 and rows[0]["peak_gflops"] > 0
    assert all(r["numpy_gflops"] > 0 and r["deconv_gflops"] == r["gflops"] for r in rows)


def test_a_run_without_conv_rows_removes_a_stale_roofline(tmp_path):
    (tmp_path / "roofline.png").write_bytes(b"old")
    rc, text = _tiny_run(tmp_path, ["avg_pool2d"], ())
    assert rc == 0, text
    assert not (tmp_path / "roofline.png").exists()
    assert "no chart roofline.png: no conv row timed" in text


# --- --contended ---------------------------------------------------------------------

def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_busy_core_pins_a_spinning_process_and_kills_it_even_on_error():
    from deconv.bench import processes
    with pytest.raises(RuntimeError, match="inside"):
        with processes.busy_core() as (core, pid):
            assert core == max(os.sched_getaffinity(0))
            assert os.sched_getaffinity(pid) == {core} and _alive(pid)
            raise RuntimeError("inside")
    assert not _alive(pid)


def test_contended_summary_divides_contended_by_idle_per_row():
    idle = [dict(_row("conv2d", "fwd", 1, 2.0), torch_ms=4.0),
            dict(_row("conv2d", "bwd", 1, 3.0), torch_ms=6.0),
            _row("sweep_batch_n8", "fwd", 1, 1.0, sweep="batch")]
    busy = [dict(_row("conv2d", "fwd", 1, 3.0), torch_ms=4.0),
            _row("conv2d", "bwd", 1, 6.0)]                        # torch failed here
    out = bench.contended_summary(idle, busy, ["deconv", "torch"])
    assert out == [
        {"case": "conv2d", "pass": "fwd", "dtype": "float32", "threads": 1, "deconv": 1.5,
         "deconv_idle_ms": 2.0, "deconv_contended_ms": 3.0, "torch": 1.0,
         "torch_idle_ms": 4.0, "torch_contended_ms": 4.0},
        {"case": "conv2d", "pass": "bwd", "dtype": "float32", "threads": 1, "deconv": 2.0,
         "deconv_idle_ms": 3.0, "deconv_contended_ms": 6.0}]


def test_tiny_contended_run_reports_the_slowdowns(tmp_path, monkeypatch):
    from deconv.bench import runner
    pids = []
    real_busy_core = runner.busy_core

    def recording_busy_core(*args, **kw):
        with real_busy_core(*args, **kw) as (core, pid):
            pids.append(pid)
            yield core, pid
    monkeypatch.setattr(runner, "busy_core", contextlib.contextmanager(recording_busy_core))
    rc, text = _tiny_run(tmp_path, ["conv1d", "avg_pool2d"], ("scipy",), contended=True)
    assert rc == 0, text
    assert len(pids) == 1 and not _alive(pids[0])
    res = json.loads((tmp_path / "results.json").read_text())
    cont = res["contended"]
    assert cont["core"] == max(os.sched_getaffinity(0)) and cont["libs"] == ["deconv"]
    slow = {(s["case"], s["pass"], s["dtype"]): s for s in cont["slowdown"]}
    assert set(slow) == {("conv1d", p, "float32") for p in ("fwd", "bwd")} | \
        {("avg_pool2d", p, "float32") for p in ("fwd", "bwd")}
    idle = {(r["case"], r["pass"], r["dtype"]): r for r in res["rows"]}
    for key, s in slow.items():
        assert s["deconv_idle_ms"] == idle[key]["deconv_ms"]
        assert s["deconv"] == pytest.approx(s["deconv_contended_ms"] / s["deconv_idle_ms"])
    assert "Contended: the same rows timed again" in (tmp_path / "results.md").read_text()
    assert "deconv slowdown" in text
    # the targets come from the idle run only
    assert all("contended" not in t["item"] for t in res["targets"])


def test_contended_run_kills_its_busy_loop_when_a_worker_fails(tmp_path, monkeypatch):
    from deconv.bench import runner
    pids = []
    real_busy_core = runner.busy_core

    def recording_busy_core(*args, **kw):
        with real_busy_core(*args, **kw) as (core, pid):
            pids.append(pid)
            yield core, pid
    real_time_all = runner.time_all

    def failing_second_time(run, *args, **kw):
        if pids:
            raise bench.WorkerError("a worker died")
        return real_time_all(run, *args, **kw)
    monkeypatch.setattr(runner, "busy_core", contextlib.contextmanager(recording_busy_core))
    monkeypatch.setattr(runner, "time_all", failing_second_time)
    with pytest.raises(bench.WorkerError, match="a worker died"):
        _tiny_run(tmp_path, ["avg_pool2d"], (), contended=True)
    assert len(pids) == 1 and not _alive(pids[0])
