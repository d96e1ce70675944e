"""Normalization layers and Module buffers.

Twins against tests/data/norm_cases.npz (recorded from torch by
tests/make_norm_fixtures.py: 3 training steps then an eval forward; outputs,
input and parameter gradients, running statistics), float64 gradchecks of
the input and every parameter (BatchNorm with its batch coupling and in eval
mode), torch's state_dict layout for a net with BatchNorm2d, buffers, and
bad input. PyTorch is not needed.
"""

import json
import os

import numpy as np
import pytest

from deconv import nn
from deconv.gradcheck import gradcheck
from tolerances import assert_close

HERE = os.path.dirname(os.path.abspath(__file__))
_PACKED = np.load(os.path.join(HERE, "data", "norm_cases.npz"))
_INDEX = json.loads(str(_PACKED["index"]))
F64 = dict(rtol=1e-10, atol=1e-10)


def _get(key):
    case, offset, shape, dtype = _INDEX[key]
    size = int(np.prod(shape))
    return _PACKED[case][offset:offset + size].reshape(shape).astype(dtype)


CASES = sorted({key.split("/")[0] for key in _INDEX if not key.startswith("net/")})


@pytest.mark.parametrize("case", CASES)
def test_twin_of_torch_over_three_training_steps_and_an_eval_forward(case):
    ctor = json.loads(_INDEX[f"{case}/ctor"])
    dtype = np.float32 if case.endswith("float32") else np.float64
    ref = "64" if dtype == np.float32 else ""
    layer = getattr(nn, ctor.pop("cls"))(**ctor, dtype=dtype)
    for name, p in layer.named_parameters():
        p.data[...] = _get(f"{case}/0/state{ref}/{name}")
    checked = 0
    for step in range(4):
        if step == 3:
            layer.eval()
        x, g = _get(f"{case}/{step}/input"), _get(f"{case}/{step}/grad_output")
        assert x.dtype == dtype
        x_before = x.copy()
        layer.zero_grad()
        y = layer(x)
        grad_input = layer.backward(g)
        np.testing.assert_array_equal(x, x_before)                  # inputs never mutated
        pairs = [(y, f"output{ref}"), (grad_input, f"grad_input{ref}")]
        pairs += [(p.grad, f"grad{ref}/{n}") for n, p in layer.named_parameters()]
        state = layer.state_dict()
        torch_keys = [k.split("/", 3)[3] for k in _INDEX
                      if k.startswith(f"{case}/{step}/state{ref}/")]
        assert list(state) == torch_keys
        pairs += [(state[k], f"state{ref}/{k}") for k in torch_keys]
        for actual, key in pairs:
            expected = _get(f"{case}/{step}/{key}")
            assert actual.shape == expected.shape, key
            if key.endswith("num_batches_tracked"):
                assert actual.dtype == np.int64 and actual == expected, key
            elif dtype == np.float64:
                assert actual.dtype == np.float64, key
                np.testing.assert_allclose(actual, expected, **F64, err_msg=f"{case} {step} {key}")
            else:
                assert actual.dtype == np.float32, key
                assert_close(actual, expected, np.float32, err_msg=f"{case} {step} {key}")
            checked += 1
    assert checked >= 8          # output and grad_input at every step at least


def test_state_dict_of_a_net_with_batchnorm_has_torchs_keys_shapes_and_dtypes():
    net = nn.Sequential(nn.Conv2d(1, 2, 3, rng=0), nn.BatchNorm2d(2), nn.ReLU(),
                        nn.Sequential(nn.BatchNorm1d(2)))
    state = net.state_dict()
    assert list(state) == [str(k) for k in _get_strings("net/keys")]
    assert [list(v.shape) for v in state.values()] == json.loads(_INDEX["net/shapes"])
    assert [str(v.dtype) for v in state.values()] == list(_INDEX["net/dtypes"])
    assert [n for n, _ in net.named_buffers()] == [
        "1.running_mean", "1.running_var", "1.num_batches_tracked",
        "3.0.running_mean", "3.0.running_var", "3.0.num_batches_tracked"]
    # a round trip through np.savez-like dicts; buffers load in place, int64 kept
    other = nn.Sequential(nn.Conv2d(1, 2, 3, rng=1), nn.BatchNorm2d(2), nn.ReLU(),
                          nn.Sequential(nn.BatchNorm1d(2)))
    net[1](np.random.default_rng(0).standard_normal((3, 2, 2, 2)).astype(np.float32))
    held = other[1].running_mean
    other.load_state_dict(net.state_dict())
    assert other[1].running_mean is held
    for (k, a), (_, b) in zip(net.state_dict().items(), other.state_dict().items()):
        assert a.dtype == b.dtype, k
        np.testing.assert_array_equal(a, b)
    assert int(other[1].num_batches_tracked) == 1


def _get_strings(key):
    return _INDEX[key]


def _randn(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape) * 1.5 + 0.3


def _with_params(layer, seed=1):
    for _, p in layer.named_parameters():
        p.data[...] = np.random.default_rng(seed).standard_normal(p.shape)
    return layer


GRADCHECK = {
    "bn1d_train_2d": (lambda: nn.BatchNorm1d(3, dtype=np.float64), (4, 3)),
    "bn1d_train_3d": (lambda: nn.BatchNorm1d(2, momentum=None, dtype=np.float64), (3, 2, 4)),
    "bn2d_train": (lambda: nn.BatchNorm2d(2, dtype=np.float64), (2, 2, 3, 3)),
    "bn2d_eval": (lambda: nn.BatchNorm2d(2, dtype=np.float64).eval(), (2, 2, 3, 3)),
    "bn2d_untracked_eval": (lambda: nn.BatchNorm2d(2, track_running_stats=False,
                                                   dtype=np.float64).eval(), (2, 2, 2, 3)),
    "bn3d_train_nobias": (lambda: nn.BatchNorm3d(2, bias=False, dtype=np.float64),
                          (2, 2, 2, 2, 2)),
    "in1d_affine": (lambda: nn.InstanceNorm1d(2, affine=True, dtype=np.float64), (2, 2, 5)),
    "in2d": (lambda: nn.InstanceNorm2d(2, dtype=np.float64), (2, 2, 3, 3)),
    "in2d_tracked_eval": (lambda: nn.InstanceNorm2d(2, affine=True, track_running_stats=True,
                                                    dtype=np.float64).eval(), (2, 2, 3, 3)),
    "in3d_affine": (lambda: nn.InstanceNorm3d(2, affine=True, dtype=np.float64),
                    (1, 2, 2, 2, 3)),
    "gn": (lambda: nn.GroupNorm(2, 4, dtype=np.float64), (2, 4, 3)),
    "gn_2d_input_eval": (lambda: nn.GroupNorm(1, 3, dtype=np.float64).eval(), (2, 3)),
    "ln": (lambda: nn.LayerNorm(4, dtype=np.float64), (3, 4)),
    "ln_2axes_nobias": (lambda: nn.LayerNorm((2, 3), bias=False, dtype=np.float64), (2, 2, 3)),
    "ln_noaffine": (lambda: nn.LayerNorm(5, elementwise_affine=False, dtype=np.float64), (3, 5)),
}


@pytest.mark.parametrize("case", sorted(GRADCHECK))
def test_every_normalization_passes_gradcheck_in_float64(case):
    make, shape = GRADCHECK[case]
    layer = _with_params(make())
    if "running_mean" in layer._buffers and layer.running_mean is not None:
        layer.running_mean[...] = [0.5, -0.25, 0.1][:layer.num_features]
        layer.running_var[...] = [2.0, 0.5, 1.5][:layer.num_features]
    report = gradcheck(layer, _randn(*shape), rtol=1e-6, atol=1e-8)
    assert [c.name for c in report.checks] == ["input"] + [n for n, _ in layer.named_parameters()]


def test_the_eval_backward_is_the_affine_map_and_the_train_backward_couples_the_batch():
    layer = _with_params(nn.BatchNorm1d(2, dtype=np.float64))
    x, g = _randn(5, 2), _randn(5, 2, seed=3)
    layer(x)
    coupled = layer.backward(g)
    assert abs(coupled.sum(axis=0)).max() < 1e-12        # d/dx of a centred output sums to 0
    layer.eval()
    layer(x)
    scale = layer.weight.data / np.sqrt(layer.running_var + layer.eps)
    np.testing.assert_allclose(layer.backward(g), g * scale, rtol=1e-15)


def test_cumulative_average_and_float32_buffers():
    layer = nn.BatchNorm1d(2, momentum=None)
    xs = [_randn(4, 2, seed=s).astype(np.float32) for s in range(3)]
    for x in xs:
        layer(x)
    means = np.mean([x.astype(np.float64).mean(axis=0) for x in xs], axis=0)
    assert layer.running_mean.dtype == np.float32
    assert_close(layer.running_mean, means, np.float32)
    assert layer.num_batches_tracked.dtype == np.int64 and int(layer.num_batches_tracked) == 3
    layer.to(np.float64)
    assert layer.running_mean.dtype == np.float64 and layer.num_batches_tracked.dtype == np.int64
    assert layer.state_dict()["running_var"].dtype == np.float64


def test_buffers_register_list_assign_and_refuse():
    m = nn.Module()
    m.register_buffer("count", np.array(0, dtype=np.int64))
    m.register_buffer("nothing", None)
    m.count = np.array(5, dtype=np.int64)
    assert m.named_buffers() == [("count", m.count)] and m.buffers() == [m.count]
    assert list(m.state_dict()) == ["count"]
    with pytest.raises(TypeError, match="buffer 'count'"):
        m.count = 3
    with pytest.raises(ValueError, match=r"register_buffer: name 'count'|name must"):
        m.register_buffer("a.b", None)
    with pytest.raises(ValueError, match="name 'training' is already an attribute"):
        m.register_buffer("training", None)
    with pytest.raises(TypeError, match="register_buffer: array must be"):
        m.register_buffer("flags", np.zeros(2, dtype=bool))
    with pytest.raises(TypeError, match="register_buffer: name must be a str"):
        m.register_buffer(3, None)
    with pytest.raises(TypeError, match=r"'count' is an integer buffer \(int64\) and must be an "
                                        r"integer array, got dtype float64"):
        m.load_state_dict({"count": np.array(1.0)})
    with pytest.raises(ValueError, match=r"'count' has shape \(1,\) but the buffer has shape"):
        m.load_state_dict({"count": np.array([1])})
    m.load_state_dict({"count": np.array(7, dtype=np.int32)})
    assert m.count.dtype == np.int64 and int(m.count) == 7
    bn = nn.BatchNorm2d(2)
    with pytest.raises(ValueError, match=r"missing keys \['num_batches_tracked'\]"):
        bn.load_state_dict({k: v for k, v in bn.state_dict().items() if k != "num_batches_tracked"})


@pytest.mark.parametrize("run, pattern, error", [
    (lambda: nn.BatchNorm2d(3)(np.zeros((2, 4, 2, 2), np.float32)),
     r"^BatchNorm2d\(3, .*x has 4 channels .* expects num_features=3", ValueError),
    (lambda: nn.BatchNorm1d(3)(np.zeros((2, 3, 2, 2), np.float32)),
     r"^BatchNorm1d\(3, .*x must be 2-D or 3-D", ValueError),
    (lambda: nn.BatchNorm2d(3)(np.zeros((3, 2, 2), np.float32)),
     r"^BatchNorm2d\(3, .*x must be 4-D .* pass x\[None\]", ValueError),
    (lambda: nn.BatchNorm2d(3)(np.zeros((1, 3, 1, 1), np.float32)),
     r"^BatchNorm2d\(3, .*Expected more than 1 value per channel when training", ValueError),
    (lambda: nn.InstanceNorm2d(3)(np.zeros((2, 3, 1, 1), np.float32)),
     r"^InstanceNorm2d\(3, .*Expected more than 1 spatial element when training", ValueError),
    (lambda: nn.InstanceNorm1d(3)(np.zeros((2, 4, 5), np.float32)),
     r"^InstanceNorm1d\(3, .*x has 4 channels", ValueError),
    (lambda: nn.GroupNorm(2, 3), r"^GroupNorm: num_channels \(3\) must be divisible by "
                                 r"num_groups \(2\)", ValueError),
    (lambda: nn.GroupNorm(2, 4)(np.zeros((2, 6, 3), np.float32)),
     r"^GroupNorm\(2, 4, .*x has 6 channels", ValueError),
    (lambda: nn.LayerNorm((2, 3))(np.zeros((2, 3, 2), np.float32)),
     r"^LayerNorm\(\(2, 3\), .*x must have shape \(\*, 2, 3\)", ValueError),
    (lambda: nn.LayerNorm(3)(np.zeros((2, 3))), r"^LayerNorm\(\(3,\).*float32 parameters", TypeError),
    (lambda: nn.LayerNorm([]), r"^LayerNorm: normalized_shape must be", ValueError),
    (lambda: nn.LayerNorm(0), r"^LayerNorm: normalized_shape must be an int >= 1", ValueError),
    (lambda: nn.BatchNorm1d(0), r"^BatchNorm1d: num_features must be an int >= 1", ValueError),
    (lambda: nn.BatchNorm1d(2, momentum=1.5), r"^BatchNorm1d: momentum must be", ValueError),
    (lambda: nn.BatchNorm1d(2, eps=-1.0), r"^BatchNorm1d: eps must be", ValueError),
    (lambda: nn.InstanceNorm3d(2, affine=1), r"^InstanceNorm3d: affine must be a bool", TypeError),
    (lambda: nn.GroupNorm(1, 2, dtype=np.int32), r"^GroupNorm: dtype must be", TypeError),
    (lambda: nn.BatchNorm2d(2)(np.zeros((0, 2, 2, 2), np.float32)),
     r"^BatchNorm2d\(2, .*x must not be empty", ValueError),
])
def test_bad_input_raises_an_error_naming_the_layer_and_argument(run, pattern, error):
    with pytest.raises(error, match=pattern):
        run()


def test_a_batch_of_one_is_fine_in_eval_mode_and_inputs_are_not_mutated():
    layer = nn.BatchNorm2d(2).eval()
    x = np.ones((1, 2, 1, 1), np.float32)
    y = layer(x)
    assert y.dtype == np.float32 and np.allclose(y, 1 / np.sqrt(1 + 1e-5))
    assert int(layer.num_batches_tracked) == 0
    big = nn.BatchNorm1d(2)
    xb = _randn(3, 2).astype(">f8")
    big.to(np.float64)
    out = big(xb)
    assert out.dtype == np.float64 and out.dtype.isnative
