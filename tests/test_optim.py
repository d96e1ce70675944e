"""deconv.optim: SGD and Adam against hand-computed steps and recorded torch.optim trajectories.

The trajectories in ``data/optim_trajectories.json`` were recorded by
``make_optim_fixtures.py`` (torch, single-tensor implementations). torch's
CPU kernels fuse some multiply-adds (FMA) while NumPy does not, so the replay
agrees to rounding (a few ulps), not bitwise.
"""

import json
import math
import os

import numpy as np
import pytest

from deconv.optim import SGD, Adam

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "data", "optim_trajectories.json")


class P:
    """Stand-in for deconv.nn.Parameter: just .data and .grad."""

    def __init__(self, data, grad=None):
        self.data = np.asarray(data)
        self.grad = grad


def run(opt, params, grads):
    """Feed ``grads[step][i]`` (None = no gradient) and return the values after each step."""
    out = []
    for row in grads:
        for p, g in zip(params, row):
            p.grad = None if g is None else np.array(g, dtype=p.data.dtype)
        opt.step()
        out.append([p.data.copy() for p in params])
    return out


# Two parameters, a 0-d scalar and a 2-vector, and three steps of gradients.
# All values are dyadic, so the SGD arithmetic below is exact in float64.
A0, B0 = 1.0, np.array([-2.0, 0.5])
GRADS = [
    [0.5, np.array([0.25, -1.0])],
    [-1.0, np.array([2.0, 0.125])],
    [0.25, np.array([-0.5, 0.75])],
]


def sgd_run(**kwargs):
    params = [P(np.array(A0)), P(B0.copy())]
    return run(SGD(params, **kwargs), params, GRADS)


def check_exact(got, expected):
    for (a, b), (ea, eb) in zip(got, expected):
        assert a.shape == () and a.dtype == np.float64
        assert a == ea
        np.testing.assert_array_equal(b, eb)


# ---------------------------------------------------------------------------
# hand-computed steps
# ---------------------------------------------------------------------------


def test_sgd_plain_by_hand():
    # theta <- theta - lr * g, lr = 0.5
    a1 = 1.0 - 0.5 * 0.5
    b1 = np.array([-2.0 - 0.5 * 0.25, 0.5 - 0.5 * -1.0])
    a2 = a1 - 0.5 * -1.0
    b2 = np.array([b1[0] - 0.5 * 2.0, b1[1] - 0.5 * 0.125])
    a3 = a2 - 0.5 * 0.25
    b3 = np.array([b2[0] - 0.5 * -0.5, b2[1] - 0.5 * 0.75])
    assert (a1, a2, a3) == (0.75, 1.25, 1.125)
    check_exact(sgd_run(lr=0.5), [(a1, b1), (a2, b2), (a3, b3)])


def test_sgd_momentum_by_hand():
    # buf_1 = g_1 (no dampening on the first step); buf_t = mu buf + g; theta -= lr buf
    lr, mu = 0.5, 0.5
    ma1 = 0.5
    mb1 = np.array([0.25, -1.0])
    a1, b1 = 1.0 - lr * ma1, B0 - lr * mb1
    ma2 = mu * ma1 + -1.0
    mb2 = np.array([mu * 0.25 + 2.0, mu * -1.0 + 0.125])
    a2, b2 = a1 - lr * ma2, b1 - lr * mb2
    ma3 = mu * ma2 + 0.25
    mb3 = np.array([mu * mb2[0] + -0.5, mu * mb2[1] + 0.75])
    a3, b3 = a2 - lr * ma3, b2 - lr * mb3
    assert (a1, a2, a3) == (0.75, 1.125, 1.1875)
    check_exact(sgd_run(lr=lr, momentum=mu), [(a1, b1), (a2, b2), (a3, b3)])


def test_sgd_dampening_by_hand():
    # buf_1 = g_1 (dampening NOT applied); buf_t = mu buf + (1 - tau) g
    lr, mu, tau = 0.5, 0.5, 0.75
    ma1 = 0.5
    a1 = 1.0 - lr * ma1
    ma2 = mu * ma1 + (1 - tau) * -1.0
    a2 = a1 - lr * ma2
    ma3 = mu * ma2 + (1 - tau) * 0.25
    a3 = a2 - lr * ma3
    mb1 = np.array([0.25, -1.0])
    mb2 = mu * mb1 + (1 - tau) * np.array([2.0, 0.125])
    mb3 = mu * mb2 + (1 - tau) * np.array([-0.5, 0.75])
    b1 = B0 - lr * mb1
    b2 = b1 - lr * mb2
    b3 = b2 - lr * mb3
    assert (ma2, a2) == (0.0, 0.75)
    check_exact(sgd_run(lr=lr, momentum=mu, dampening=tau), [(a1, b1), (a2, b2), (a3, b3)])


def test_sgd_nesterov_by_hand():
    # buf as with momentum; theta -= lr (g + mu buf)
    lr, mu = 0.5, 0.5
    ma1 = 0.5
    a1 = 1.0 - lr * (0.5 + mu * ma1)
    ma2 = mu * ma1 + -1.0
    a2 = a1 - lr * (-1.0 + mu * ma2)
    ma3 = mu * ma2 + 0.25
    a3 = a2 - lr * (0.25 + mu * ma3)
    g1, g2, g3 = np.array([0.25, -1.0]), np.array([2.0, 0.125]), np.array([-0.5, 0.75])
    mb1 = g1
    b1 = B0 - lr * (g1 + mu * mb1)
    mb2 = mu * mb1 + g2
    b2 = b1 - lr * (g2 + mu * mb2)
    mb3 = mu * mb2 + g3
    b3 = b2 - lr * (g3 + mu * mb3)
    assert (a1, a2, a3) == (0.625, 1.3125, 1.21875)
    check_exact(sgd_run(lr=lr, momentum=mu, nesterov=True), [(a1, b1), (a2, b2), (a3, b3)])


def test_sgd_weight_decay_by_hand():
    # L2: g <- g + lambda theta, then plain SGD
    lr, wd = 0.5, 0.25
    a1 = 1.0 - lr * (0.5 + wd * 1.0)
    a2 = a1 - lr * (-1.0 + wd * a1)
    a3 = a2 - lr * (0.25 + wd * a2)
    b1 = B0 - lr * (np.array([0.25, -1.0]) + wd * B0)
    b2 = b1 - lr * (np.array([2.0, 0.125]) + wd * b1)
    b3 = b2 - lr * (np.array([-0.5, 0.75]) + wd * b2)
    assert a1 == 0.625
    check_exact(sgd_run(lr=lr, weight_decay=wd), [(a1, b1), (a2, b2), (a3, b3)])


def test_sgd_weight_decay_goes_into_the_momentum_buffer_by_hand():
    # g <- g + lambda theta; buf_1 = g; buf_t = mu buf + (1 - tau) g; theta -= lr (g + mu buf)
    lr, mu, wd = 0.5, 0.5, 0.25
    ga1 = 0.5 + wd * 1.0
    ma1 = ga1
    a1 = 1.0 - lr * (ga1 + mu * ma1)
    ga2 = -1.0 + wd * a1
    ma2 = mu * ma1 + ga2
    a2 = a1 - lr * (ga2 + mu * ma2)
    ga3 = 0.25 + wd * a2
    ma3 = mu * ma2 + ga3
    a3 = a2 - lr * (ga3 + mu * ma3)
    got = sgd_run(lr=lr, momentum=mu, weight_decay=wd, nesterov=True)
    assert [step[0] for step in got] == [a1, a2, a3]


ADAM_A0 = 1.0
ADAM_GRADS_A = [0.5, -0.25, 1.0]


def adam_by_hand(lr, beta1, beta2, eps, wd):
    """Three Adam steps on a scalar, written out in torch's arrangement."""
    theta, m, v, out = ADAM_A0, 0.0, 0.0, []
    # step 1
    g = 0.5 + wd * theta
    m = m + (1 - beta1) * (g - m)
    v = beta2 * v + (1 - beta2) * g * g
    denom = math.sqrt(v) / math.sqrt(1 - beta2**1) + eps
    theta = theta - lr / (1 - beta1**1) * m / denom
    out.append(theta)
    # step 2
    g = -0.25 + wd * theta
    m = m + (1 - beta1) * (g - m)
    v = beta2 * v + (1 - beta2) * g * g
    denom = math.sqrt(v) / math.sqrt(1 - beta2**2) + eps
    theta = theta - lr / (1 - beta1**2) * m / denom
    out.append(theta)
    # step 3
    g = 1.0 + wd * theta
    m = m + (1 - beta1) * (g - m)
    v = beta2 * v + (1 - beta2) * g * g
    denom = math.sqrt(v) / math.sqrt(1 - beta2**3) + eps
    theta = theta - lr / (1 - beta1**3) * m / denom
    out.append(theta)
    return out


@pytest.mark.parametrize("wd", [0.0, 0.5])
def test_adam_by_hand(wd):
    lr, beta1, beta2, eps = 0.1, 0.9, 0.999, 1e-8
    expected = adam_by_hand(lr, beta1, beta2, eps, wd)
    p = P(np.array(ADAM_A0))
    got = run(Adam([p], lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=wd), [p],
              [[g] for g in ADAM_GRADS_A])
    np.testing.assert_allclose([s[0] for s in got], expected, rtol=1e-15, atol=0)
    if wd == 0:
        # first step: m_hat / sqrt(v_hat) = sign(g), so the step is lr (up to eps)
        assert abs(expected[0] - (ADAM_A0 - lr)) < 1e-8


def test_adam_first_step_matches_the_paper_form():
    # the paper: theta -= lr * m_hat / (sqrt(v_hat) + eps), m_hat = m / (1 - b1^t), ...
    lr, b1, b2, eps = 0.01, 0.8, 0.9, 0.1
    g = 0.5
    m, v = (1 - b1) * g, (1 - b2) * g * g
    m_hat, v_hat = m / (1 - b1), v / (1 - b2)
    expected = ADAM_A0 - lr * m_hat / (math.sqrt(v_hat) + eps)
    p = P(np.array(ADAM_A0), np.array(g))
    Adam([p], lr=lr, betas=(b1, b2), eps=eps).step()
    assert p.data == pytest.approx(expected, rel=1e-15)


def test_adam_vector_by_hand():
    lr, b1, b2, eps = 0.1, 0.5, 0.75, 1e-3
    grads = [np.array([0.5, -2.0]), np.array([1.0, 0.0])]
    m1 = (1 - b1) * grads[0]
    v1 = (1 - b2) * grads[0] ** 2
    t1 = B0 - lr / (1 - b1) * m1 / (np.sqrt(v1) / math.sqrt(1 - b2) + eps)
    m2 = m1 + (1 - b1) * (grads[1] - m1)
    v2 = b2 * v1 + (1 - b2) * grads[1] ** 2
    t2 = t1 - lr / (1 - b1**2) * m2 / (np.sqrt(v2) / math.sqrt(1 - b2**2) + eps)
    p = P(B0.copy())
    got = run(Adam([p], lr=lr, betas=(b1, b2), eps=eps), [p], [[g] for g in grads])
    np.testing.assert_allclose(got[0][0], t1, rtol=1e-15, atol=0)
    np.testing.assert_allclose(got[1][0], t2, rtol=1e-15, atol=0)


# ---------------------------------------------------------------------------
# torch trajectories
# ---------------------------------------------------------------------------

with open(FIXTURE) as _f:
    TORCH = json.load(_f)


def _case_id(case):
    kw = ",".join(f"{k}={v}" for k, v in case["kwargs"].items())
    skip = "-skip" if any(g is None for row in case["grads"] for g in row) else ""
    return f"{case['optimizer']}({kw}){skip}-{case['dtype']}"


@pytest.mark.parametrize("case", TORCH["cases"], ids=_case_id)
def test_matches_torch_trajectory(case):
    dtype = np.dtype(case["dtype"])
    params = [P(np.array(x, dtype=dtype)) for x in case["init"]]
    for p, shape in zip(params, case["shapes"]):
        assert p.data.shape == tuple(shape)
    kwargs = dict(case["kwargs"])
    if "betas" in kwargs:
        kwargs["betas"] = tuple(kwargs["betas"])
    opt = {"SGD": SGD, "Adam": Adam}[case["optimizer"]](params, **kwargs)
    got = run(opt, params, case["grads"])
    rtol = 1e-12 if dtype == np.float64 else 1e-6
    for step, (ours, theirs) in enumerate(zip(got, case["trajectory"])):
        for i, (a, b) in enumerate(zip(ours, theirs)):
            b = np.array(b, dtype=np.float64)
            assert a.dtype == dtype
            np.testing.assert_allclose(
                a.astype(np.float64), b, rtol=rtol, atol=rtol * np.abs(b).max(),
                err_msg=f"step {step + 1}, parameter {i}",
            )


def test_fixture_covers_the_configurations():
    assert TORCH["steps"] == 5
    seen = {(c["optimizer"], tuple(sorted(c["kwargs"])), c["dtype"]) for c in TORCH["cases"]}
    for dtype in ("float32", "float64"):
        for keys in [("lr",), ("lr", "momentum"), ("dampening", "lr", "momentum"),
                     ("lr", "momentum", "nesterov"), ("lr", "weight_decay")]:
            assert ("SGD", keys, dtype) in seen
        for keys in [(), ("betas", "eps", "lr"), ("lr", "weight_decay")]:
            assert ("Adam", keys, dtype) in seen
    assert any(g is None for c in TORCH["cases"] for row in c["grads"] for g in row)


# ---------------------------------------------------------------------------
# state_dict
# ---------------------------------------------------------------------------


def _params(dtype, rng):
    return [P(rng.standard_normal(s).astype(dtype)) for s in [(3,), (2, 2), ()]]


def _grads(dtype, rng, steps, skip=()):
    return [
        [None if (t, i) in skip else rng.standard_normal(s).astype(dtype)
         for i, s in enumerate([(3,), (2, 2), ()])]
        for t in range(steps)
    ]


OPTIMIZERS = [
    (SGD, dict(lr=0.1, momentum=0.9, weight_decay=0.01, nesterov=True)),
    (SGD, dict(lr=0.1, momentum=0.5, dampening=0.25)),
    (SGD, dict(lr=0.1)),
    (Adam, dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.1)),
]


def _check_plain(state):
    assert isinstance(state, dict)
    for key, value in state.items():
        assert isinstance(key, str)
        assert isinstance(value, np.ndarray) or type(value) in (int, float, bool), (key, value)


@pytest.mark.parametrize("via_npz", [False, True], ids=["dict", "npz"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cls,kwargs", OPTIMIZERS, ids=lambda v: getattr(v, "__name__", ""))
def test_state_dict_round_trip_is_bitwise(cls, kwargs, dtype, via_npz, tmp_path):
    rng = np.random.default_rng(7)
    params = _params(dtype, rng)
    # parameter 2 has no gradient before the save, so it has no state yet
    grads = _grads(dtype, rng, 6, skip={(0, 2), (1, 2), (2, 2), (4, 1)})
    opt = cls(params, **kwargs)
    run(opt, params, grads[:3])
    saved_params = [p.data.copy() for p in params]
    state = opt.state_dict()
    _check_plain(state)
    assert not any(k.startswith("state.2.") for k in state)
    if via_npz:
        np.savez(tmp_path / "opt.npz", **state)
        with np.load(tmp_path / "opt.npz", allow_pickle=False) as f:
            state = {k: f[k] for k in f.files}

    uninterrupted = run(opt, params, grads[3:])

    fresh = [P(x.copy()) for x in saved_params]
    other = cls(fresh, lr=123.0)  # hyper-parameters come from the state dict
    other.load_state_dict(state)
    assert other.hyperparameters() == opt.hyperparameters()
    resumed = run(other, fresh, grads[3:])
    for a_step, b_step in zip(uninterrupted, resumed):
        for a, b in zip(a_step, b_step):
            assert a.dtype == b.dtype == dtype
            assert a.tobytes() == b.tobytes()
    final = other.state_dict()
    _check_plain(final)
    has_state = kwargs.get("momentum", 0) != 0 or cls is Adam
    assert any(k.startswith("state.2.") for k in final) == has_state
    for key, value in opt.state_dict().items():
        if isinstance(value, np.ndarray):
            assert value.tobytes() == final[key].tobytes(), key
        else:
            assert value == final[key], key


def test_state_dict_contents_and_copies():
    p = P(np.array([1.0, 2.0]), np.array([0.5, 0.5]))
    opt = Adam([p], lr=0.1)
    state = opt.state_dict()
    assert state == {"lr": 0.1, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8,
                     "weight_decay": 0.0, "amsgrad": False, "num_params": 1}
    opt.step()
    opt.step()
    state = opt.state_dict()
    _check_plain(state)
    assert state["state.0.step"] == 2 and type(state["state.0.step"]) is int
    saved = state["state.0.exp_avg"].copy()
    opt.step()
    np.testing.assert_array_equal(state["state.0.exp_avg"], saved)  # a copy, not the live buffer

    q = P(np.array([1.0], dtype=np.float32), np.array([1.0], dtype=np.float32))
    sgd = SGD([q], lr=0.5, momentum=0.9, nesterov=True)
    sgd.step()
    state = sgd.state_dict()
    _check_plain(state)
    assert set(state) == {"lr", "momentum", "dampening", "weight_decay", "nesterov",
                          "num_params", "state.0.momentum_buffer"}
    assert state["nesterov"] is True
    assert state["state.0.momentum_buffer"].dtype == np.float32


def test_load_state_dict_refuses_mismatches_and_changes_nothing():
    p = P(np.array([1.0, 2.0]), np.array([0.5, -0.5]))
    opt = SGD([p], lr=0.1, momentum=0.9)
    opt.step()
    good = opt.state_dict()
    adam = Adam([P(np.zeros(2), np.ones(2))])
    adam.step()

    def fresh():
        return SGD([P(np.zeros(2))], lr=0.3, momentum=0.5)

    bad_cases = [
        (adam.state_dict(), "missing"),
        ({**good, "num_params": 2}, "2 parameters"),
        ({**good, "state.0.momentum_buffer": np.zeros(3)}, "shape"),
        ({**good, "state.1.momentum_buffer": np.zeros(2)}, "unexpected key"),
        ({**good, "state.0.exp_avg": np.zeros(2)}, "unexpected key"),
        ({**good, "lr": -1.0}, "lr"),
        ({**good, "nesterov": True, "momentum": 0.0}, "nesterov"),
        ({**good, "lr": np.zeros(2)}, "lr"),
    ]
    for bad, match in bad_cases:
        target = fresh()
        with pytest.raises(ValueError, match=match):
            target.load_state_dict(bad)
        assert (target.lr, target.momentum, target.state) == (0.3, 0.5, [{}])
    with pytest.raises(TypeError, match="dict"):
        fresh().load_state_dict([("lr", 0.1)])

    a = Adam([P(np.zeros(2))])
    incomplete = {k: v for k, v in adam.state_dict().items() if k != "state.0.exp_avg_sq"}
    with pytest.raises(ValueError, match="incomplete"):
        a.load_state_dict(incomplete)
    with pytest.raises(ValueError, match="integer"):
        a.load_state_dict({**adam.state_dict(), "state.0.step": 1.5})
    assert a.state == [{}]


def test_load_state_dict_casts_buffers_to_the_parameter_dtype():
    p64 = P(np.array([1.0, 2.0]), np.array([0.5, -0.5]))
    opt = Adam([p64])
    opt.step()
    p32 = P(np.array([1.0, 2.0], dtype=np.float32))
    other = Adam([p32])
    other.load_state_dict(opt.state_dict())
    assert other.state[0]["exp_avg"].dtype == np.float32
    assert other.state[0]["step"] == 1


# ---------------------------------------------------------------------------
# zero_grad, skipping, in place, dtype
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [SGD, Adam])
def test_zero_grad(cls):
    g = np.array([1.0, -2.0])
    a, b = P(np.zeros(2), g), P(np.zeros(3))
    opt = cls([a, b], lr=0.1)
    opt.zero_grad()
    assert a.grad is g and np.all(g == 0)  # filled in place, same array
    assert b.grad is None
    opt.zero_grad(set_to_none=True)
    assert a.grad is None and b.grad is None
    with pytest.raises(TypeError, match="set_to_none"):
        opt.zero_grad(1)


@pytest.mark.parametrize("cls,kwargs", [(SGD, dict(lr=0.1, momentum=0.9)), (Adam, dict(lr=0.1))])
def test_parameters_without_grad_are_skipped(cls, kwargs):
    a = P(np.array([1.0, 2.0]), np.array([1.0, 1.0]))
    b = P(np.array([3.0]))
    opt = cls([a, b], **kwargs)
    opt.step()
    opt.step()
    assert b.data.tolist() == [3.0]
    assert opt.state[1] == {}
    assert a.data.tolist() != [1.0, 2.0]
    if cls is Adam:
        b.grad = np.array([1.0])
        opt.step()
        state = opt.state_dict()
        assert (state["state.0.step"], state["state.1.step"]) == (3, 1)  # per-parameter counts
        assert b.data[0] == pytest.approx(3.0 - 0.1, abs=1e-7)  # a first step for b


@pytest.mark.parametrize("cls,kwargs", [
    (SGD, dict(lr=0.1, momentum=0.9, weight_decay=0.1, nesterov=True)),
    (SGD, dict(lr=0.1, weight_decay=0.1)),
    (Adam, dict(lr=0.1, weight_decay=0.1)),
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_update_is_in_place_and_keeps_dtype(cls, kwargs, dtype):
    data = np.array([[1.0, -2.0], [0.5, 3.0]], dtype=dtype)
    grad = np.array([[0.1, 0.2], [-0.3, 0.4]], dtype=dtype)
    grad_before = grad.copy()
    view = data[0]  # someone else's reference into the parameter
    p = P(data, grad)
    opt = cls([p], **kwargs)
    for _ in range(3):
        opt.step()
    assert p.data is data and p.grad is grad
    assert data.dtype == dtype
    assert view.tolist() == data[0].tolist() and view[0] != 1.0
    np.testing.assert_array_equal(grad, grad_before)  # weight decay does not write into grad
    for buf in opt.state[0].values():
        if isinstance(buf, np.ndarray):
            assert buf.dtype == dtype and buf is not grad


def test_sgd_without_momentum_keeps_no_state():
    p = P(np.array([1.0]), np.array([1.0]))
    opt = SGD([p], lr=0.1)
    opt.step()
    assert opt.state == [{}]
    assert set(opt.state_dict()) == {"lr", "momentum", "dampening", "weight_decay",
                                     "nesterov", "num_params"}


def test_first_momentum_buffer_is_a_copy_of_the_gradient():
    g = np.array([1.0, 2.0])
    p = P(np.zeros(2), g)
    opt = SGD([p], lr=0.1, momentum=0.9)
    opt.step()
    assert opt.state[0]["momentum_buffer"] is not g
    opt.step()
    assert g.tolist() == [1.0, 2.0]


def test_repr_and_betas():
    opt = Adam([P(np.zeros(1))], betas=(0.5, 0.75))
    assert opt.betas == (0.5, 0.75)
    assert "Adam(<1 parameters>" in repr(opt) and "beta1=0.5" in repr(opt)
    assert "nesterov=False" in repr(SGD([P(np.zeros(1))], lr=1))


# ---------------------------------------------------------------------------
# bad arguments
# ---------------------------------------------------------------------------


def _one():
    return [P(np.zeros(2), np.ones(2))]


@pytest.mark.parametrize("kwargs,match", [
    (dict(lr=-0.1), "lr"),
    (dict(lr=float("nan")), "lr"),
    (dict(lr=float("inf")), "lr"),
    (dict(lr=0.1, momentum=-0.5), "momentum"),
    (dict(lr=0.1, weight_decay=-1e-4), "weight_decay"),
    (dict(lr=0.1, nesterov=True), "nesterov"),
    (dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "nesterov"),
    (dict(lr=0.1, dampening=float("nan")), "dampening"),
])
def test_sgd_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SGD(_one(), **kwargs)


def test_sgd_value_in_message_and_torch_compatible_corners():
    with pytest.raises(ValueError, match=r"lr must be a finite number >= 0, got -0\.5"):
        SGD(_one(), lr=-0.5)
    with pytest.raises(TypeError, match="lr"):
        SGD(_one())  # lr has no default
    SGD(_one(), lr=0)  # allowed by torch; the trainer refuses lr <= 0 itself
    SGD(_one(), lr=0.1, dampening=-1.0)  # torch does not check dampening


@pytest.mark.parametrize("kwargs,match", [
    (dict(lr="0.1"), "lr"),
    (dict(lr=0.1, momentum=None), "momentum"),
    (dict(lr=0.1, nesterov=1), "nesterov"),
    (dict(lr=True), "lr"),
])
def test_sgd_bad_types(kwargs, match):
    with pytest.raises(TypeError, match=match):
        SGD(_one(), **kwargs)


@pytest.mark.parametrize("kwargs,match", [
    (dict(lr=-1e-3), "lr"),
    (dict(betas=(-0.1, 0.999)), r"betas\[0\]"),
    (dict(betas=(1.0, 0.999)), r"betas\[0\]"),
    (dict(betas=(0.9, 1.0)), r"betas\[1\]"),
    (dict(betas=(0.9, -1e-9)), r"betas\[1\]"),
    (dict(eps=-1e-8), "eps"),
    (dict(weight_decay=-0.1), "weight_decay"),
])
def test_adam_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Adam(_one(), **kwargs)


def test_adam_bad_types_and_corners():
    with pytest.raises(ValueError, match=r"betas\[0\] must be a finite number in \[0, 1\), got 1\.0"):
        Adam(_one(), betas=(1.0, 0.5))
    for betas in [(0.9,), 0.9, (0.9, 0.99, 0.5), "ab"]:
        with pytest.raises(TypeError, match="betas"):
            Adam(_one(), betas=betas)
    with pytest.raises(TypeError, match="eps"):
        Adam(_one(), eps=None)
    Adam(_one(), lr=0, betas=(0, 0), eps=0)  # the closed ends of the ranges are allowed


@pytest.mark.parametrize("cls", [SGD, Adam])
def test_bad_params(cls):
    with pytest.raises(ValueError, match="empty parameter list"):
        cls([], lr=0.1)
    with pytest.raises(ValueError, match="empty parameter list"):
        cls(iter([]), lr=0.1)
    p = P(np.zeros(2))
    with pytest.raises(TypeError, match="single"):
        cls(p, lr=0.1)
    with pytest.raises(TypeError, match="single"):
        cls(np.zeros(2), lr=0.1)
    with pytest.raises(TypeError, match="iterable"):
        cls(3, lr=0.1)
    with pytest.raises(TypeError, match="groups"):
        cls([{"params": [p]}, p], lr=0.1)           # groups and parameters mixed
    with pytest.raises(TypeError, match=r"params\[1\]"):
        cls([p, object()], lr=0.1)
    with pytest.raises(TypeError, match=r"params\[0\].data"):
        cls([P(np.zeros(2, dtype=np.int64))], lr=0.1)
    with pytest.raises(ValueError, match="more than once"):
        cls([p, p], lr=0.1)
    assert len(cls((q for q in [p, P(np.ones(1))]), lr=0.1).params) == 2  # generators are fine


@pytest.mark.parametrize("cls", [SGD, Adam])
def test_bad_grad_at_step(cls):
    p = P(np.zeros(2), np.ones(3))
    opt = cls([p], lr=0.1)
    with pytest.raises(ValueError, match=r"params\[0\].grad"):
        opt.step()
    p.grad = np.ones(2, dtype=np.float32)
    with pytest.raises(ValueError, match="dtype"):
        opt.step()
    p.grad = [1.0, 1.0]
    with pytest.raises(ValueError, match=r"params\[0\].grad"):
        opt.step()
    assert p.data.tolist() == [0.0, 0.0]
