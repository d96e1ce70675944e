"""state_dict / load_state_dict: PyTorch's key names, weights from PyTorch twins, the rules.

tests/data/nn_state_dicts.npz was recorded from PyTorch by
tests/make_nn_fixtures.py (weights, an input, the output, a loss and its
gradients). Each test builds the deconv twin, loads the weights and compares
the key list, the output, the loss and every gradient: float64 to 1e-10, a
float32 twin to the float32 row of tests/tolerances.py. PyTorch is not needed.
"""

import os

import numpy as np
import pytest

from deconv import nn
from tolerances import assert_close

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = np.load(os.path.join(HERE, "data", "nn_state_dicts.npz"))
F64 = dict(rtol=1e-10, atol=1e-10)


def _fixture(name):
    """The arrays of one recorded network: {'keys': [...], 'state': {...}, 'input': ..., ...}."""
    out = {"state": {}, "grad": {}}
    for full in FIXTURES.files:
        net, _, rest = full.partition("/")
        if net != name:
            continue
        kind, _, key = rest.partition("/")
        if key:
            out[kind][key] = FIXTURES[full]
        else:
            out[kind] = FIXTURES[full]
    out["keys"] = [str(k) for k in out["keys"]]
    return out


def _seq(dtype):
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1, dtype=dtype, rng=0), nn.ReLU(), nn.MaxPool2d(2),
        nn.ConvTranspose2d(4, 3, 3, stride=2, padding=1, output_padding=1, dtype=dtype, rng=1),
        nn.LeakyReLU(0.1), nn.AvgPool2d(2),
        nn.Upsample(scale_factor=2, mode="bilinear"),
        nn.Conv2d(3, 4, 1, dtype=dtype, rng=2), nn.PixelShuffle(2), nn.Tanh(),
    )


class _Nested(nn.Module):
    """The deconv twin of the fixture's ``Nested``: attribute-named children, hand-written backward."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1, dtype=np.float64, rng=0),
                                     nn.Conv2d(3, 3, 3, stride=2, padding=1, dtype=np.float64,
                                               rng=1),
                                     nn.ReLU())
        self.decoder = nn.Sequential(nn.ConvTranspose2d(3, 2, 4, stride=2, padding=1,
                                                        dtype=np.float64, rng=2),
                                     nn.Sigmoid())
        self.head = nn.Conv2d(2, 3, 1, dtype=np.float64, rng=3)

    def forward(self, x):
        self._save(done=True)
        return self.head(self.decoder(self.encoder(x)))

    def backward(self, grad_output):
        self._saved()
        return self.encoder.backward(self.decoder.backward(self.head.backward(grad_output)))


TWINS = {
    "seq": (lambda: _seq(np.float64), nn.MSELoss),
    "nested": (_Nested, nn.CrossEntropyLoss),
    "conv1d": (lambda: nn.Sequential(
        nn.Conv1d(3, 4, 3, padding=1, dtype=np.float64, rng=0), nn.ReLU(),
        nn.ConvTranspose1d(4, 2, 4, stride=2, padding=1, dtype=np.float64, rng=1),
        nn.MaxPool1d(2), nn.AvgPool1d(2, stride=1), nn.Upsample(scale_factor=2)), nn.L1Loss),
    "text": (lambda: nn.Sequential(
        nn.Embedding(10, 4, padding_idx=0, dtype=np.float64, rng=0), nn.Flatten(),
        nn.Linear(20, 6, dtype=np.float64, rng=1), nn.Tanh(),
        nn.Linear(6, 3, dtype=np.float64, rng=2)), nn.CrossEntropyLoss),
}


@pytest.mark.parametrize("name", sorted(TWINS))
def test_pytorch_weights_load_and_give_pytorch_outputs_losses_and_gradients(name):
    make, make_loss = TWINS[name]
    fx = _fixture(name)
    net = make()
    assert list(net.state_dict()) == fx["keys"]                     # same names, same order
    assert [k for k, _ in net.named_parameters()] == fx["keys"]
    assert net.load_state_dict(fx["state"]) == ([], [])
    for key, value in net.state_dict().items():
        np.testing.assert_array_equal(value, fx["state"][key])
    y = net(fx["input"])
    np.testing.assert_allclose(y, fx["output"], **F64)
    loss = make_loss()
    assert loss(y, fx["target"]) == pytest.approx(float(fx["loss"]), rel=1e-10, abs=1e-12)
    grad_input = net.backward(loss.backward())
    if "grad_input" in fx:
        np.testing.assert_allclose(grad_input, fx["grad_input"], **F64)
    else:
        assert grad_input is None                                    # token input: no gradient
    named = dict(net.named_parameters())
    assert sorted(fx["grad"]) == sorted(named)
    for key, grad in fx["grad"].items():
        np.testing.assert_allclose(named[key].grad, grad, err_msg=key, **F64)


def test_float32_twin_matches_the_float64_result_within_the_float32_tolerance():
    fx = _fixture("f32")
    net = _seq(np.float32)
    net.load_state_dict(fx["state"])
    y = net(fx["input"])
    assert y.dtype == np.float32
    assert_close(y, fx["output64"], dtype=np.float32)
    assert_close(fx["output"], fx["output64"], dtype=np.float32)    # torch's float32, same table


def test_float32_weights_load_exactly_into_a_float64_model():
    """The model's dtype decides: float32 values cast to float64 are exact, so 1e-10 holds."""
    fx = _fixture("f32")
    net = _seq(np.float64)
    net.load_state_dict(fx["state"])
    assert all(p.dtype == np.float64 for p in net.parameters())
    np.testing.assert_allclose(net(fx["input"].astype(np.float64)), fx["output64"], **F64)


def test_float64_weights_are_rounded_into_a_float32_model():
    fx = _fixture("seq")
    net = _seq(np.float32)
    net.load_state_dict(fx["state"])
    for key, value in net.state_dict().items():
        assert value.dtype == np.float32
        np.testing.assert_array_equal(value, fx["state"][key].astype(np.float32))


def test_state_dict_returns_copies_and_load_copies_into_the_same_arrays():
    net = nn.Sequential(nn.Linear(3, 2, rng=0), nn.ReLU(), nn.Linear(2, 1, rng=1))
    arrays = [p.data for p in net.parameters()]
    saved = net.state_dict()
    before = {k: v.copy() for k, v in saved.items()}
    x = np.ones((4, 3), dtype=np.float32)
    net.backward(np.ones_like(net(x)))
    for p in net.parameters():                      # an optimizer step changes the parameters...
        p.data -= 0.1 * p.grad
    for key, value in saved.items():                # ...but not the dict saved before it
        np.testing.assert_array_equal(value, before[key])
    net.load_state_dict(saved)
    for p, array, value in zip(net.parameters(), arrays, saved.values()):
        assert p.data is array                      # loaded in place: an optimizer keeps them
        np.testing.assert_array_equal(p.data, value)
    saved["0.weight"][...] = 7                      # the loaded model does not alias the dict
    assert not (net[0].weight.data == 7).any()


def test_state_dict_round_trips_through_an_npz_file(tmp_path):
    a = nn.Sequential(nn.Conv1d(2, 3, 3, rng=0), nn.Tanh(), nn.ConvTranspose1d(3, 2, 3, rng=1))
    b = nn.Sequential(nn.Conv1d(2, 3, 3, rng=5), nn.Tanh(), nn.ConvTranspose1d(3, 2, 3, rng=6))
    path = tmp_path / "weights.npz"
    np.savez(path, **a.state_dict())
    with np.load(path) as archive:
        b.load_state_dict(archive)
    x = np.random.default_rng(0).standard_normal((2, 2, 7)).astype(np.float32)
    np.testing.assert_array_equal(a(x), b(x))


def test_shared_parameters_are_listed_under_every_name_as_in_torch():
    a, b = nn.Linear(2, 2, rng=0), nn.Linear(2, 2, rng=1)
    b.weight = a.weight                            # re-assigned in place: order kept, as torch
    net = nn.Sequential(a, b)
    assert list(net.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias"]
    assert [k for k, _ in net.named_parameters()] == ["0.weight", "0.bias", "1.bias"]
    state = net.state_dict()
    state["0.weight"] = state["1.weight"] = np.full((2, 2), 3.0)
    net.load_state_dict(state)
    assert (a.weight.data == 3).all() and b.weight is a.weight
    state["1.weight"] = np.full((2, 2), 4.0)
    with pytest.raises(ValueError, match="'0.weight' and '1.weight' name one shared parameter"):
        net.load_state_dict(state)


@pytest.mark.parametrize("change, exc, pattern", [
    (lambda s: s.pop("2.bias"), ValueError, r"missing keys \['2.bias'\]"),
    (lambda s: s.update({"3.weight": np.ones(1)}), ValueError, r"unexpected keys \['3.weight'\]"),
    (lambda s: s.update({"0.weight": np.ones((3, 2))}), ValueError,
     r"'0.weight' has shape \(3, 2\) but the parameter has shape \(2, 3\).*never reshaped"),
    (lambda s: s.update({"0.weight": np.ones(6)}), ValueError, r"'0.weight' has shape \(6,\)"),
    (lambda s: s.update({"0.bias": np.ones(2, dtype=np.int64)}), TypeError,
     r"'0.bias' must be a float32 or float64 array, got dtype int64"),
    (lambda s: s.update({"0.bias": np.ones(2, dtype=np.float16)}), TypeError, r"'0.bias'.*float16"),
    (lambda s: s.update({3: np.ones(2)}), TypeError, r"keys must be str"),
], ids=["missing", "unexpected", "transposed", "flat", "int", "float16", "non-str-key"])
def test_a_bad_state_dict_is_refused_naming_the_key_and_nothing_changes(change, exc, pattern):
    net = nn.Sequential(nn.Linear(3, 2, rng=0), nn.ReLU(), nn.Linear(2, 1, rng=1))
    before = net.state_dict()
    state = {k: np.full_like(v, 9.0) for k, v in before.items()}   # would change every value
    change(state)
    with pytest.raises(exc, match=pattern) as info:
        net.load_state_dict(state)
    assert str(info.value).startswith("Sequential.load_state_dict: ")
    for key, value in net.state_dict().items():
        np.testing.assert_array_equal(value, before[key])


def test_non_strict_loads_the_matching_keys_and_reports_the_rest():
    net = nn.Sequential(nn.Linear(3, 2, rng=0), nn.ReLU(), nn.Linear(2, 1, rng=1))
    before = net.state_dict()
    result = net.load_state_dict({"0.weight": np.zeros((2, 3)), "9.bias": np.zeros(1)},
                                 strict=False)
    assert result.missing_keys == ["0.bias", "2.weight", "2.bias"]
    assert result.unexpected_keys == ["9.bias"]
    assert not net[0].weight.data.any()
    np.testing.assert_array_equal(net[2].weight.data, before["2.weight"])
    with pytest.raises(ValueError, match="'0.weight' has shape"):   # shapes checked even so
        net.load_state_dict({"0.weight": np.zeros((3, 2))}, strict=False)
    with pytest.raises(TypeError, match="strict must be a bool"):
        net.load_state_dict(before, strict=1)
    with pytest.raises(TypeError, match="mapping"):
        net.load_state_dict([("0.weight", np.zeros((2, 3)))])


def test_array_likes_load_like_arrays():
    """Values go through np.asarray (a torch CPU tensor converts the same way)."""
    net = nn.Linear(2, 1, rng=0)
    net.load_state_dict({"weight": [[1.0, 2.0]], "bias": (0.5,)})
    np.testing.assert_array_equal(net.weight.data, [[1, 2]])
    assert net.weight.dtype == np.float32 and net.bias.data[0] == 0.5
