"""deconv.optim.lr_scheduler against torch's learning-rate sequences, state dicts, bad input.

The sequences in ``schedules`` of ``data/optim_trajectories.json`` were
recorded from torch 2.13 by ``make_optim_fixtures.py``: the rates of both
groups of an optimizer right after the scheduler's construction and after
each of 30 steps (ReduceLROnPlateau fed a fixed metric sequence, NaN
included), and the cycled momenta.
"""

import json
import math
import os

import numpy as np
import pytest

from deconv import nn
from deconv.optim import SGD, Adagrad, Adam, lr_scheduler as ls

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "data", "optim_trajectories.json")) as _f:
    TORCH = json.load(_f)

OPTIMIZERS = {"SGD": lambda g: SGD(g, lr=0.1, momentum=0.9), "Adam": lambda g: Adam(g, lr=0.1),
              "Adagrad": lambda g: Adagrad(g, lr=0.1)}


def _optimizer(spec):
    ps = [nn.Parameter(np.zeros(2)), nn.Parameter(np.zeros(1))]
    return OPTIMIZERS[spec["optimizer"]]([{"params": [p], **g} for p, g in zip(ps, spec["groups"])])


def _scheduler(spec, opt):
    if spec["name"] == "SequentialLR":
        subs = [getattr(ls, n)(opt, **kw) for n, kw in spec["extra"]]
        return ls.SequentialLR(opt, subs, **spec["kwargs"])
    return getattr(ls, spec["name"])(opt, **spec["kwargs"])


def _step(spec, sched, k):
    if spec["name"] == "ReduceLROnPlateau":
        sched.step(spec["extra"][k])
    else:
        sched.step()


def _momenta(opt):
    return [g["betas"][0] if "betas" in g else g.get("momentum", 0.0) for g in opt.param_groups]


def _spec_id(spec):
    kw = ",".join(f"{k}={v}" for k, v in spec["kwargs"].items())
    return f"{spec['name']}({kw})-{spec['optimizer']}"


@pytest.mark.parametrize("spec", TORCH["schedules"], ids=_spec_id)
def test_matches_torch_sequence(spec):
    opt = _optimizer(spec)
    sched = _scheduler(spec, opt)
    lrs, momenta = [sched.get_last_lr()], [_momenta(opt)]
    for k in range(TORCH["schedule_steps"]):
        opt.step()
        _step(spec, sched, k)
        lrs.append(sched.get_last_lr())
        momenta.append(_momenta(opt))
        assert [g["lr"] for g in opt.param_groups] == lrs[-1]
    np.testing.assert_allclose(lrs, spec["lrs"], rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(momenta, spec["momenta"], rtol=1e-12, atol=0)


def test_fixture_covers_every_scheduler():
    names = {s["name"] for s in TORCH["schedules"]}
    assert names == set(ls.__all__) - {"LRScheduler"}
    assert TORCH["schedule_steps"] == 30
    plateau = [s for s in TORCH["schedules"] if s["name"] == "ReduceLROnPlateau"]
    assert any(any(math.isnan(x) for x in s["extra"]) for s in plateau)
    assert {s["kwargs"].get("mode", "min") for s in plateau} == {"min", "max"}


def test_lr_after_construction_and_initial_lr():
    opt = SGD([nn.Parameter(np.zeros(1))], lr=0.3)
    sched = ls.LinearLR(opt, start_factor=0.5)
    assert opt.param_groups[0]["lr"] == 0.15 and opt.param_groups[0]["initial_lr"] == 0.3
    assert sched.last_epoch == 0 and sched.base_lrs == [0.3]
    assert sched.get_last_lr() == [0.15] and sched.get_last_lr() is not sched._last_lr


def test_resuming_with_last_epoch():
    opt = SGD([nn.Parameter(np.zeros(1))], lr=1.0)
    with pytest.raises(ValueError, match=r"last_epoch=4 .*initial_lr"):
        ls.StepLR(opt, step_size=2, last_epoch=4)
    assert "initial_lr" not in opt.param_groups[0]
    opt.param_groups[0]["initial_lr"] = 1.0
    opt.param_groups[0]["lr"] = 0.25                      # epoch 4 of StepLR(2, 0.5)
    sched = ls.StepLR(opt, step_size=2, gamma=0.5, last_epoch=4)
    assert sched.last_epoch == 5 and sched.get_last_lr() == [0.25]
    sched.step()
    assert sched.get_last_lr() == [0.125]


# ---------------------------------------------------------------------------
# state dicts: resume mid-way and continue identically
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("via_npz", [False, True], ids=["dict", "npz"])
@pytest.mark.parametrize("spec", TORCH["schedules"], ids=_spec_id)
def test_state_dict_round_trip_mid_way(spec, via_npz, tmp_path):
    steps, cut = TORCH["schedule_steps"], 13
    opt = _optimizer(spec)
    sched = _scheduler(spec, opt)
    for k in range(cut):
        _step(spec, sched, k)
    opt_state, sched_state = opt.state_dict(), sched.state_dict()
    for key, value in sched_state.items():
        assert isinstance(value, (np.ndarray, str)) or type(value) in (int, float, bool), key
    if via_npz:
        np.savez(tmp_path / "s.npz", **sched_state)
        with np.load(tmp_path / "s.npz", allow_pickle=False) as f:
            sched_state = {k: f[k] for k in f.files}
    straight = []
    for k in range(cut, steps):
        _step(spec, sched, k)
        straight.append((sched.get_last_lr(), _momenta(opt)))

    other_opt = _optimizer(spec)
    other = _scheduler(spec, other_opt)             # as at the start, then both state dicts
    other_opt.load_state_dict(opt_state)
    other.load_state_dict(sched_state)
    resumed = []
    for k in range(cut, steps):
        _step(spec, other, k)
        resumed.append((other.get_last_lr(), _momenta(other_opt)))
    assert resumed == straight
    final = other.state_dict()
    for key, value in sched.state_dict().items():
        np.testing.assert_array_equal(final[key], value, err_msg=key)


def test_load_state_dict_checks_before_changing():
    opt = SGD([nn.Parameter(np.zeros(1))], lr=1.0)
    sched = ls.StepLR(opt, step_size=2)
    good = sched.state_dict()
    for bad, error, match in [
        ({**good, "gamma": -1.0}, ValueError, r"state_dict\['gamma'\]"),
        ({**good, "step_size": 0}, ValueError, "step_size"),
        ({**good, "base_lrs": np.array([1.0, 2.0])}, ValueError, "parameter groups"),
        ({**good, "extra": 1}, ValueError, "unexpected"),
        ({k: v for k, v in good.items() if k != "last_epoch"}, ValueError, "missing"),
        ({**good, "last_epoch": 1.5}, TypeError, "last_epoch"),
        ([1], TypeError, "dict"),
    ]:
        with pytest.raises(error, match=match):
            sched.load_state_dict(bad)
        assert sched.state_dict().keys() == good.keys()
        assert sched.gamma == 0.1 and sched.step_size == 2 and sched.last_epoch == 0
    seq = ls.SequentialLR(opt, [ls.ExponentialLR(opt, 0.5), ls.StepLR(opt, 2)], milestones=[3])
    state = seq.state_dict()
    with pytest.raises(ValueError, match=r"_schedulers.1.gamma"):
        seq.load_state_dict({**state, "_schedulers.1.gamma": -2.0})
    with pytest.raises(ValueError, match="_milestones"):
        seq.load_state_dict({**state, "_milestones": np.array([4])})
    assert seq._schedulers[1].gamma == 0.1


# ---------------------------------------------------------------------------
# bad arguments
# ---------------------------------------------------------------------------


def _opt(**kwargs):
    return SGD([nn.Parameter(np.zeros(1))], lr=0.1, **kwargs)


CONSTRUCTORS = {
    "StepLR": lambda o: ls.StepLR(o, step_size=2),
    "MultiStepLR": lambda o: ls.MultiStepLR(o, milestones=[1]),
    "ExponentialLR": lambda o: ls.ExponentialLR(o, gamma=0.5),
    "CosineAnnealingLR": lambda o: ls.CosineAnnealingLR(o, T_max=3),
    "LinearLR": lambda o: ls.LinearLR(o),
    "OneCycleLR": lambda o: ls.OneCycleLR(o, max_lr=1.0, total_steps=10),
    "ReduceLROnPlateau": lambda o: ls.ReduceLROnPlateau(o),
    "SequentialLR": lambda o: ls.SequentialLR(o, [], milestones=[]),
}


@pytest.mark.parametrize("name", sorted(CONSTRUCTORS))
@pytest.mark.parametrize("bad", [None, "sgd", nn.Linear(2, 2), SGD])
def test_not_an_optimizer_is_a_type_error_naming_optimizer(name, bad):
    with pytest.raises(TypeError, match=r"^optimizer must be a deconv.optim.Optimizer"):
        CONSTRUCTORS[name](bad)


@pytest.mark.parametrize("make,error,match", [
    (lambda o: ls.StepLR(o, step_size=0), ValueError, "step_size"),
    (lambda o: ls.StepLR(o, step_size=2.0), TypeError, "step_size"),
    (lambda o: ls.StepLR(o, step_size=2, gamma=-0.5), ValueError, "gamma"),
    (lambda o: ls.StepLR(o, step_size=2, last_epoch=-2), ValueError, "last_epoch"),
    (lambda o: ls.MultiStepLR(o, milestones=3), TypeError, "milestones"),
    (lambda o: ls.MultiStepLR(o, milestones=[1, -1]), ValueError, r"milestones\[1\]"),
    (lambda o: ls.MultiStepLR(o, milestones=[1, 2.5]), TypeError, r"milestones\[1\]"),
    (lambda o: ls.ExponentialLR(o, gamma=float("nan")), ValueError, "gamma"),
    (lambda o: ls.CosineAnnealingLR(o, T_max=0), ValueError, "T_max"),
    (lambda o: ls.CosineAnnealingLR(o, T_max=3, eta_min=-1.0), ValueError, "eta_min"),
    (lambda o: ls.LinearLR(o, start_factor=0.0), ValueError, "start_factor"),
    (lambda o: ls.LinearLR(o, end_factor=1.5), ValueError, "end_factor"),
    (lambda o: ls.LinearLR(o, total_iters=0), ValueError, "total_iters"),
    (lambda o: ls.OneCycleLR(o, max_lr=1.0), ValueError, "total_steps"),
    (lambda o: ls.OneCycleLR(o, max_lr=1.0, epochs=2), ValueError, "steps_per_epoch"),
    (lambda o: ls.OneCycleLR(o, max_lr=0.0, total_steps=10), ValueError, "max_lr"),
    (lambda o: ls.OneCycleLR(o, max_lr=[1.0, 2.0], total_steps=10), ValueError, "max_lr"),
    (lambda o: ls.OneCycleLR(o, max_lr=1.0, total_steps=10, pct_start=1.5), ValueError,
     "pct_start"),
    (lambda o: ls.OneCycleLR(o, max_lr=1.0, total_steps=10, pct_start=0.1), ValueError,
     "pct_start=0.1 with total_steps=10 gives a phase of zero length"),
    (lambda o: ls.OneCycleLR(o, max_lr=1.0, total_steps=10, anneal_strategy="exp"),
     ValueError, "anneal_strategy"),
    (lambda o: ls.OneCycleLR(o, max_lr=1.0, total_steps=10, div_factor=0), ValueError,
     "div_factor"),
    (lambda o: ls.OneCycleLR(o, max_lr=1.0, total_steps=10, three_phase=1), TypeError,
     "three_phase"),
    (lambda o: ls.ReduceLROnPlateau(o, mode="avg"), ValueError, "mode"),
    (lambda o: ls.ReduceLROnPlateau(o, factor=1.0), ValueError, "factor"),
    (lambda o: ls.ReduceLROnPlateau(o, patience=-1), ValueError, "patience"),
    (lambda o: ls.ReduceLROnPlateau(o, threshold_mode="relative"), ValueError,
     "threshold_mode"),
    (lambda o: ls.ReduceLROnPlateau(o, min_lr=[0.1, 0.2]), ValueError, "min_lr"),
    (lambda o: ls.ReduceLROnPlateau(o, cooldown=0.5), TypeError, "cooldown"),
    (lambda o: ls.SequentialLR(o, [], milestones=[]), ValueError, "schedulers"),
    (lambda o: ls.SequentialLR(o, [ls.ReduceLROnPlateau(o)], milestones=[]), ValueError,
     r"schedulers\[0\]"),
    (lambda o: ls.SequentialLR(o, [ls.StepLR(o, 2), ls.StepLR(o, 3)], milestones=[]),
     ValueError, "milestones"),
    (lambda o: ls.SequentialLR(o, [ls.StepLR(o, 2), ls.StepLR(o, 3), ls.StepLR(o, 4)],
                               milestones=[5, 5]), ValueError, "increasing"),
    (lambda o: ls.SequentialLR(o, [ls.StepLR(_opt(), 2)], milestones=[]), ValueError,
     r"schedulers\[0\] was built on another optimizer"),
    (lambda o: ls.SequentialLR(o, ["StepLR"], milestones=[]), TypeError, r"schedulers\[0\]"),
])
def test_bad_arguments_name_them(make, error, match):
    opt = _opt()
    with pytest.raises(error, match=match):
        make(opt)


def test_failed_constructors_leave_the_optimizer_alone():
    opt = _opt(momentum=0.5)
    with pytest.raises(ValueError):
        ls.OneCycleLR(opt, max_lr=1.0, total_steps=10, final_div_factor=-1)
    assert opt.param_groups[0] == {"params": opt.params, "lr": 0.1, "momentum": 0.5,
                                   "dampening": 0.0, "weight_decay": 0.0, "nesterov": False}
    with pytest.raises(ValueError, match="cycle_momentum"):
        ls.OneCycleLR(Adagrad([nn.Parameter(np.zeros(1))]), max_lr=1.0, total_steps=10)


def test_one_cycle_refuses_to_step_past_total_steps():
    opt = _opt()
    sched = ls.OneCycleLR(opt, max_lr=1.0, total_steps=4, pct_start=0.5)
    for _ in range(4):
        sched.step()
    with pytest.raises(ValueError, match="stepped 5 times; its total_steps is 4"):
        sched.step()


def test_plateau_metrics_must_be_a_number():
    sched = ls.ReduceLROnPlateau(_opt(), patience=0)
    for bad in ["1.0", None, [1.0], True]:
        with pytest.raises(TypeError, match="metrics"):
            sched.step(bad)
    assert sched.last_epoch == 0
    sched.step(np.array(2.0))                               # a 0-d array, as np.load gives
    sched.step(float("inf"))                                # counts as a bad epoch
    assert sched.get_last_lr() == [pytest.approx(0.01)]


def test_a_rate_made_invalid_by_hand_is_named():
    opt = _opt()
    sched = ls.ExponentialLR(opt, gamma=0.5)
    opt.param_groups[0]["lr"] = "fast"
    with pytest.raises(TypeError, match=r"optimizer.param_groups\[0\]\['lr'\]"):
        sched.step()
    opt.param_groups[0]["lr"] = 0.1
    opt.add_param_group({"params": [nn.Parameter(np.zeros(1))]})
    with pytest.raises(ValueError, match="2 parameter groups, the scheduler was built for 1"):
        sched.step()


def test_a_diverging_schedule_is_refused_before_it_changes_anything():
    opt = _opt()
    sched = ls.ExponentialLR(opt, gamma=1e300)
    sched.step()
    state, groups = sched.state_dict(), [dict(g) for g in opt.param_groups]
    with pytest.raises(ValueError, match=r"ExponentialLR: .* would become inf .*gamma=1e\+300"):
        sched.step()
    assert [dict(g) for g in opt.param_groups] == groups
    for key, value in sched.state_dict().items():
        np.testing.assert_array_equal(value, state[key])
    multi = ls.MultiStepLR(_opt(), milestones=[1, 1, 1], gamma=1e300)   # gamma ** 3 overflows
    with pytest.raises(ValueError, match="beyond the float range.*gamma=1e\\+300"):
        multi.step()
    assert multi.last_epoch == 0 and multi._step_count == 1
