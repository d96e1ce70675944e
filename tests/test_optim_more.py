"""deconv.optim (issue 14): AdamW, RMSprop, Adagrad, amsgrad, parameter groups.

Trajectories are compared with ``more_cases`` of ``data/optim_trajectories.json``
(recorded from torch 2.13 by ``make_optim_fixtures.py``; some cases drive the
learning rate with a scheduler stepped after every optimizer step). State
dicts are checked by round trips that must continue bitwise.
"""

import json
import os

import numpy as np
import pytest

from deconv import nn
from deconv.optim import SGD, Adagrad, Adam, AdamW, Optimizer, RMSprop, lr_scheduler
from tolerances import tolerance

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "data", "optim_trajectories.json")) as _f:
    TORCH = json.load(_f)

CLASSES = {"SGD": SGD, "Adam": Adam, "AdamW": AdamW, "RMSprop": RMSprop, "Adagrad": Adagrad}


class P:
    """Stand-in for deconv.nn.Parameter: just .data and .grad."""

    def __init__(self, data, grad=None):
        self.data = np.asarray(data)
        self.grad = grad


def _options(options):
    return {k: tuple(v) if k == "betas" else v for k, v in options.items()}


def _build(case, params):
    """The case's optimizer (and scheduler) over ``params``."""
    if case["groups"] is None:
        arg = params
    else:
        arg = [{"params": [params[i] for i in idx], **_options(opts)} for idx, opts in case["groups"]]
    opt = CLASSES[case["optimizer"]](arg, **_options(case["kwargs"]))
    sched = None
    if case["scheduler"]:
        name, kwargs = case["scheduler"]
        sched = getattr(lr_scheduler, name)(opt, **kwargs)
    return opt, sched


def _case_id(case):
    kw = ",".join(f"{k}={v}" for k, v in case["kwargs"].items())
    groups = f"-{len(case['groups'])}groups" if case["groups"] else ""
    sched = f"-{case['scheduler'][0]}" if case["scheduler"] else ""
    skip = "-skip" if any(g is None for row in case["grads"] for g in row) else ""
    return f"{case['optimizer']}({kw}){groups}{sched}{skip}-{case['dtype']}"


@pytest.mark.parametrize("case", TORCH["more_cases"], ids=_case_id)
def test_matches_torch_trajectory(case):
    dtype = np.dtype(case["dtype"])
    params = [P(np.array(x, dtype=dtype)) for x in case["init"]]
    opt, sched = _build(case, params)
    for step, (row, theirs) in enumerate(zip(case["grads"], case["trajectory"])):
        for p, g in zip(params, row):
            p.grad = None if g is None else np.array(g, dtype=dtype)
        opt.step()
        if sched is not None and step < len(case["grads"]) - 1:
            sched.step()
        lrs = [g["lr"] for g in opt.param_groups]
        np.testing.assert_allclose(lrs, case["lrs"][step], rtol=1e-12, atol=0)
        for i, (p, b) in enumerate(zip(params, theirs)):
            b = np.array(b, dtype=np.float64)
            assert p.data.dtype == dtype
            if dtype == np.float64:
                tol = dict(rtol=1e-12, atol=1e-12 * np.abs(b).max())
            else:
                tol = tolerance(dtype)
            np.testing.assert_allclose(p.data.astype(np.float64), b, **tol,
                                       err_msg=f"step {step + 1}, parameter {i}")


def test_fixture_covers_every_optimizer_groups_and_options():
    cases = TORCH["more_cases"]
    assert TORCH["more_steps"] == 10
    assert {c["optimizer"] for c in cases} == set(CLASSES)
    seen = {(c["optimizer"], k) for c in cases for k in c["kwargs"]}
    seen |= {(c["optimizer"], k) for c in cases for _, o in (c["groups"] or []) for k in o}
    for name, keys in [("Adam", ["amsgrad", "weight_decay", "betas"]),
                       ("AdamW", ["amsgrad", "weight_decay", "betas", "lr"]),
                       ("RMSprop", ["momentum", "centered", "alpha", "weight_decay", "eps"]),
                       ("Adagrad", ["lr_decay", "weight_decay", "initial_accumulator_value",
                                    "eps"]),
                       ("SGD", ["momentum", "nesterov"])]:
        for key in keys:
            assert (name, key) in seen, (name, key)
    for name in CLASSES:
        assert any(c["optimizer"] == name and c["groups"] for c in cases), name
    assert {c["dtype"] for c in cases} == {"float32", "float64"}
    assert any(c["scheduler"] for c in cases)


# ---------------------------------------------------------------------------
# hand-checked steps
# ---------------------------------------------------------------------------


def test_adamw_decays_the_parameter_not_the_gradient():
    # zero gradient: Adam's L2 term would move the parameter through the moments,
    # AdamW's only shrinks it by (1 - lr * wd)
    w = P(np.array([2.0, -4.0]), np.zeros(2))
    AdamW([w], lr=0.5, weight_decay=0.1).step()
    assert w.data.tolist() == [2.0 * 0.95, -4.0 * 0.95]
    v = P(np.array([2.0, -4.0]), np.zeros(2))
    Adam([v], lr=0.5, weight_decay=0.1).step()
    np.testing.assert_allclose(v.data, [1.5, -3.5], rtol=1e-7)      # a full Adam step of lr


def test_amsgrad_keeps_the_running_maximum():
    w = P(np.zeros(3))
    opt = Adam([w], lr=0.1, betas=(0.5, 0.5), amsgrad=True)
    for g in ([4.0, 1.0, 0.0], [0.0, 2.0, 1.0], [0.0, 0.0, 0.0]):
        w.grad = np.array(g)
        opt.step()
        st = opt.state[0]
        assert np.all(st["max_exp_avg_sq"] >= st["exp_avg_sq"])
    np.testing.assert_array_equal(opt.state[0]["max_exp_avg_sq"], [8.0, 2.25, 0.5])
    assert "max_exp_avg_sq" not in Adam([P(np.zeros(1), np.ones(1))]).state[0]


def test_adagrad_first_step_and_lr_decay():
    w = P(np.array([1.0, 1.0]), np.array([3.0, -0.5]))
    opt = Adagrad([w], lr=0.5, lr_decay=1.0, eps=0.0)
    opt.step()
    np.testing.assert_array_equal(w.data, [0.5, 1.5])               # lr * sign(g)
    opt.step()                                                      # lr / 2, g / (sqrt(2)|g|)
    np.testing.assert_allclose(w.data, [0.5 - 0.25 / 2**0.5, 1.5 + 0.25 / 2**0.5])


def test_rmsprop_momentum_buffer_starts_at_zero():
    w = P(np.array([0.0]), np.array([2.0]))
    opt = RMSprop([w], lr=1.0, alpha=0.0, eps=0.0, momentum=0.5)
    opt.step()                                                      # buf = 0 + g / |g|
    opt.step()                                                      # buf = 0.5 + 1
    assert w.data.tolist() == [-2.5]
    assert opt.state[0]["momentum_buffer"].tolist() == [1.5]


@pytest.mark.parametrize("cls,kwargs", [
    (AdamW, dict(lr=0.1, amsgrad=True)),
    (RMSprop, dict(lr=0.1, momentum=0.9, centered=True, weight_decay=0.1)),
    (Adagrad, dict(lr=0.1, weight_decay=0.1, initial_accumulator_value=0.1)),
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_in_place_dtype_kept_grad_untouched(cls, kwargs, dtype):
    data = np.array([[1.0, -2.0], [0.5, 3.0]], dtype=dtype)
    grad = np.array([[0.1, 0.2], [-0.3, 0.4]], dtype=dtype)
    before = grad.copy()
    p = P(data, grad)
    opt = cls([p], **kwargs)
    for _ in range(3):
        opt.step()
    assert p.data is data and data.dtype == dtype and not np.array_equal(data[0], [1.0, -2.0])
    np.testing.assert_array_equal(grad, before)
    for value in opt.state[0].values():
        if isinstance(value, np.ndarray):
            assert value.dtype == dtype and value is not grad


# ---------------------------------------------------------------------------
# parameter groups
# ---------------------------------------------------------------------------


def test_param_groups_fill_defaults_and_keep_torch_keys():
    a, b, c = P(np.zeros(2)), P(np.zeros(1)), P(np.zeros(3))
    opt = Adam([{"params": [a, b]}, {"params": c, "lr": 0.5, "betas": (0.5, 0.6)}], lr=0.1)
    g0, g1 = opt.param_groups
    assert g0 == {"params": [a, b], "lr": 0.1, "betas": (0.9, 0.999), "eps": 1e-8,
                  "weight_decay": 0.0, "amsgrad": False}
    assert g1["params"] == [c] and g1["lr"] == 0.5 and g1["betas"] == (0.5, 0.6)
    assert opt.defaults["lr"] == 0.1
    assert opt.params == [a, b, c] and len(opt.state) == 3
    assert opt.eps == 1e-8                                          # shared by all groups
    with pytest.raises(AttributeError, match=r"different values of lr"):
        opt.lr
    with pytest.raises(AttributeError, match="beta1"):
        opt.betas
    opt.lr = 0.25                                                   # sets every group
    assert [g["lr"] for g in opt.param_groups] == [0.25, 0.25] and opt.lr == 0.25
    with pytest.raises(ValueError, match=r"^lr must be a finite number >= 0"):
        opt.lr = -1.0
    assert opt.lr == 0.25
    assert "2 groups" in repr(opt)


def test_each_group_uses_its_own_options():
    a, b = P(np.array([1.0]), np.array([1.0])), P(np.array([1.0]), np.array([1.0]))
    opt = SGD([{"params": [a]}, {"params": [b], "lr": 0.5, "weight_decay": 1.0}], lr=0.1)
    opt.step()
    assert a.data.tolist() == [0.9] and b.data.tolist() == [0.0]    # 1 - 0.5 * (1 + 1)
    opt.param_groups[0]["lr"] = 0.2                                 # as a scheduler does
    opt.step()
    assert a.data.tolist() == [pytest.approx(0.7)]


def test_add_param_group():
    a, b = P(np.zeros(2), np.ones(2)), P(np.zeros(1), np.ones(1))
    opt = RMSprop([a], lr=0.1, momentum=0.5)
    opt.add_param_group({"params": [b], "lr": 0.01, "centered": True})
    assert len(opt.param_groups) == 2 and opt.param_groups[1]["momentum"] == 0.5
    opt.step()
    assert set(opt.state[1]) == {"step", "square_avg", "momentum_buffer", "grad_avg"}
    with pytest.raises(ValueError, match=r"param_group\['params'\]\[0\] appears more than once"):
        opt.add_param_group({"params": [a]})
    with pytest.raises(ValueError, match=r"param_group\['lr'\]"):
        opt.add_param_group({"params": [P(np.zeros(1))], "lr": -1})
    with pytest.raises(TypeError, match="param_group must be a dict"):
        opt.add_param_group([P(np.zeros(1))])
    with pytest.raises(ValueError, match="'params' entry"):
        opt.add_param_group({"lr": 0.1})
    assert len(opt.param_groups) == 2 and len(opt.state) == 2       # nothing was added


def test_bad_groups_name_the_argument():
    a, b = P(np.zeros(2)), P(np.zeros(1))
    with pytest.raises(ValueError, match=r"params\[1\]\['params'\]\[0\] appears more than once"):
        SGD([{"params": [a]}, {"params": [a, b]}], lr=0.1)
    with pytest.raises(ValueError, match=r"params\[1\]\['momentum'\]"):
        SGD([{"params": [a]}, {"params": [b], "momentum": -1}], lr=0.1)
    with pytest.raises(ValueError, match=r"params\[0\]\['nesterov'\]"):
        SGD([{"params": [a], "nesterov": True}], lr=0.1)
    with pytest.raises(TypeError, match=r"params\[0\]\['betas'\]"):
        Adam([{"params": [a], "betas": 0.9}])
    with pytest.raises(TypeError, match=r"params\[0\]\['name'\]"):
        Adam([{"params": [a], "name": "encoder"}])               # extras must be numbers
    with pytest.raises(TypeError, match=r"params\[0\]\['params'\]"):
        Adam([{"params": {a}}])                                  # a set has no order
    with pytest.raises(ValueError, match=r"params\[0\]\['params'\] is an empty"):
        Adam([{"params": []}])
    with pytest.raises(TypeError, match="mix"):
        Adam([a, {"params": [b]}])
    opt = Adam([{"params": [a], "warmup_epochs": 3}])             # a number: kept, as torch does
    assert opt.param_groups[0]["warmup_epochs"] == 3.0
    assert opt.state_dict()["warmup_epochs"] == 3.0


def test_step_checks_every_group_before_changing_anything():
    a, b = P(np.ones(2), np.ones(2)), P(np.ones(1), np.ones(1))
    opt = Adam([{"params": [a]}, {"params": [b]}], lr=0.1)
    opt.param_groups[1]["lr"] = float("nan")
    with pytest.raises(ValueError, match=r"param_groups\[1\]\['lr'\]"):
        opt.step()
    opt.param_groups[1]["lr"] = 0.1
    b.grad = np.ones(3)
    with pytest.raises(ValueError, match=r"params\[1\]\.grad"):
        opt.step()
    assert a.data.tolist() == [1.0, 1.0] and opt.state == [{}, {}]


# ---------------------------------------------------------------------------
# state dicts
# ---------------------------------------------------------------------------


def _params(dtype, rng):
    return [P(rng.standard_normal(s).astype(dtype)) for s in [(3,), (2, 2), ()]]


def _grads(dtype, rng, steps):
    return [[None if (t, i) in {(0, 2), (1, 2), (4, 1)} else
             rng.standard_normal(s).astype(dtype) for i, s in enumerate([(3,), (2, 2), ()])]
            for t in range(steps)]


def _run(opt, params, grads):
    out = []
    for row in grads:
        for p, g in zip(params, row):
            p.grad = g
        opt.step()
        out.append([p.data.copy() for p in params])
    return out


def _grouped(cls, kwargs, params):
    return cls([{"params": params[:2], **kwargs}, {"params": params[2:], "lr": 0.05}],
               **({"lr": 0.1} if cls is SGD else {}))


ROUND_TRIPS = [
    (AdamW, dict(lr=0.1, amsgrad=True, weight_decay=0.1)),
    (Adam, dict(lr=0.1, amsgrad=True)),
    (RMSprop, dict(lr=0.01, momentum=0.9, centered=True)),
    (Adagrad, dict(lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1)),
    (SGD, dict(lr=0.1, momentum=0.9, nesterov=True)),
]


@pytest.mark.parametrize("via_npz", [False, True], ids=["dict", "npz"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cls,kwargs", ROUND_TRIPS, ids=lambda v: getattr(v, "__name__", ""))
def test_state_dict_round_trip_with_groups_is_bitwise(cls, kwargs, dtype, via_npz, tmp_path):
    rng = np.random.default_rng(3)
    params = _params(dtype, rng)
    grads = _grads(dtype, rng, 7)
    opt = _grouped(cls, kwargs, params)
    _run(opt, params, grads[:3])
    opt.param_groups[0]["initial_lr"] = 0.125                      # what a scheduler leaves
    state = opt.state_dict()
    for key, value in state.items():
        assert isinstance(value, np.ndarray) or type(value) in (int, float, bool), key
    assert state["num_groups"] == 2 and state["group.1.num_params"] == 1
    assert state["group.1.lr"] == 0.05 and state["initial_lr"] == 0.125
    if via_npz:
        np.savez(tmp_path / "opt.npz", **state)
        with np.load(tmp_path / "opt.npz", allow_pickle=False) as f:
            state = {k: f[k] for k in f.files}
    saved = [p.data.copy() for p in params]
    straight = _run(opt, params, grads[3:])

    fresh = [P(x.copy()) for x in saved]
    other = cls([{"params": fresh[:2]}, {"params": fresh[2:]}], lr=7.0)
    other.load_state_dict(state)
    assert other.param_groups[0]["initial_lr"] == 0.125
    for g_a, g_b in zip(opt.param_groups, other.param_groups):
        assert {k: v for k, v in g_a.items() if k != "params"} == \
               {k: v for k, v in g_b.items() if k != "params"}
    resumed = _run(other, fresh, grads[3:])
    for a_step, b_step in zip(straight, resumed):
        for a, b in zip(a_step, b_step):
            assert a.dtype == b.dtype == dtype and a.tobytes() == b.tobytes()


def test_load_state_dict_refuses_other_groupings_and_changes_nothing():
    a, b, c = P(np.zeros(2), np.ones(2)), P(np.zeros(1), np.ones(1)), P(np.zeros(3), np.ones(3))
    opt = Adam([{"params": [a, b]}, {"params": [c], "lr": 0.5}])
    opt.step()
    good = opt.state_dict()

    def fresh():
        x, y, z = P(np.zeros(2)), P(np.zeros(1)), P(np.zeros(3))
        return Adam([{"params": [x, y]}, {"params": [z], "lr": 0.5}], lr=0.3)

    bad_cases = [
        ({k: v for k, v in good.items() if k != "num_groups"}, ValueError, "1 parameter groups"),
        ({**good, "group.1.num_params": 2}, ValueError, "2 parameters in group 1"),
        ({**good, "group.1.lr": -0.5}, ValueError, r"state_dict\['group.1.lr'\]"),
        ({**good, "group.1.amsgrad": "no"}, TypeError, "group.1.amsgrad"),
        ({**good, "amsgrad": 0.5}, TypeError, r"state_dict\['amsgrad'\] must be a bool"),
        ({k: v for k, v in good.items() if k != "group.1.eps"}, ValueError, "group.1.eps"),
        ({**good, "group.2.lr": 0.1}, ValueError, "unexpected key 'group.2.lr'"),
        ({**good, "state.2.max_exp_avg_sq": np.zeros(3)}, ValueError, None),
        ({**good, "state.1.exp_avg": np.zeros(2)}, ValueError, "shape"),
    ]
    for bad, error, match in bad_cases:
        target = fresh()
        if match is None:       # amsgrad is off: the extra buffer is allowed, and ignored
            target.load_state_dict(bad)
            continue
        with pytest.raises(error, match=match):
            target.load_state_dict(bad)
        assert [g["lr"] for g in target.param_groups] == [0.3, 0.5]
        assert target.state == [{}, {}, {}]
    with pytest.raises(ValueError, match="missing"):
        fresh().load_state_dict(SGD([P(np.zeros(1))], lr=0.1).state_dict())


def test_checkpoint_carries_groups(tmp_path):
    from deconv.train.checkpoint import load_checkpoint, save_checkpoint
    rng = np.random.default_rng(0)

    def build():
        model = nn.Sequential(nn.Linear(3, 2, dtype=np.float64))
        weight, bias = model.parameters()
        opt = AdamW([{"params": [weight]}, {"params": [bias], "weight_decay": 0.0}], lr=0.05,
                    amsgrad=True)
        return model, opt

    model, opt = build()
    sched = lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    for _ in range(3):
        for p in opt.params:
            p.grad[...] = rng.standard_normal(p.data.shape)
        opt.step()
        sched.step()
    path = tmp_path / "ck.npz"
    save_checkpoint(path, model, opt)
    other_model, other = build()
    load_checkpoint(path, other_model, other)
    assert other.param_groups[1]["weight_decay"] == 0.0 and other.param_groups[0]["lr"] == 0.025
    assert other.param_groups[0]["initial_lr"] == 0.05
    for key, value in opt.state_dict().items():
        np.testing.assert_array_equal(other.state_dict()[key], value)


# ---------------------------------------------------------------------------
# bad arguments
# ---------------------------------------------------------------------------


def _one():
    return [P(np.zeros(2), np.ones(2))]


@pytest.mark.parametrize("cls,kwargs,error,match", [
    (AdamW, dict(weight_decay=-0.1), ValueError, "weight_decay"),
    (AdamW, dict(betas=(0.9, 1.0)), ValueError, r"betas\[1\]"),
    (AdamW, dict(amsgrad=1), TypeError, "amsgrad"),
    (Adam, dict(amsgrad="yes"), TypeError, "amsgrad"),
    (RMSprop, dict(alpha=-0.5), ValueError, "alpha"),
    (RMSprop, dict(momentum=float("inf")), ValueError, "momentum"),
    (RMSprop, dict(eps=-1e-8), ValueError, "eps"),
    (RMSprop, dict(centered=0), TypeError, "centered"),
    (RMSprop, dict(lr=None), TypeError, "lr"),
    (Adagrad, dict(lr_decay=-0.1), ValueError, "lr_decay"),
    (Adagrad, dict(initial_accumulator_value=-1.0), ValueError, "initial_accumulator_value"),
    (Adagrad, dict(eps="1e-10"), TypeError, "eps"),
    (Adagrad, dict(weight_decay=float("nan")), ValueError, "weight_decay"),
])
def test_bad_options_name_the_argument(cls, kwargs, error, match):
    with pytest.raises(error, match=match):
        cls(_one(), **kwargs)


@pytest.mark.parametrize("cls", [AdamW, RMSprop, Adagrad])
def test_bad_params(cls):
    with pytest.raises(ValueError, match="empty parameter list"):
        cls([])
    with pytest.raises(TypeError, match="single"):
        cls(P(np.zeros(2)))
    with pytest.raises(TypeError, match=r"params\[0\]"):
        cls([object()])
    p = P(np.zeros(2))
    with pytest.raises(ValueError, match="more than once"):
        cls([p, p])
    assert isinstance(cls([p]), Optimizer)


def test_defaults_are_torchs():
    import inspect
    expected = {
        AdamW: dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False),
        Adam: dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False),
        RMSprop: dict(lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
                      centered=False),
        Adagrad: dict(lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0,
                      eps=1e-10),
    }
    for cls, defaults in expected.items():
        sig = inspect.signature(cls)
        assert list(sig.parameters)[1:] == list(defaults), cls
        assert {k: sig.parameters[k].default for k in defaults} == defaults, cls
