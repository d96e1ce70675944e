"""Skipping the input gradient (issue 14): ``input_grad=False`` on the conv backwards,
``Module.input_grad`` on the layers and containers, and the Trainer's use of it.

What is still computed must be bitwise what the full backward computes; what
is skipped is None; the flag is a bool (TypeError otherwise) checked before
any work.
"""

import numpy as np
import pytest

import deconv
from deconv import nn, optim
from deconv.train import Trainer

_RNG = np.random.default_rng(12)


def _normal(*shape):
    return _RNG.standard_normal(shape).astype(np.float32)


# (backward, x shape, weight shape, options)
_CASES = [
    (deconv.conv1d_backward, (2, 4, 9), (6, 2, 3), dict(stride=2, groups=2)),
    (deconv.conv2d_backward, (2, 3, 7, 6), (5, 3, 3, 2), dict(padding=1)),
    (deconv.conv3d_backward, (1, 2, 4, 5, 5), (3, 2, 2, 3, 3), {}),
    (deconv.conv_transpose1d_backward, (2, 4, 5), (4, 3, 4),
     dict(stride=2, padding=1)),
    (deconv.conv_transpose2d_backward, (2, 4, 5, 4), (4, 2, 4, 4),
     dict(stride=2, padding=1)),
    (deconv.conv_transpose3d_backward, (1, 2, 3, 3, 3), (2, 3, 2, 2, 2), {}),
]


# the naive kernel set has the 1-D and 2-D passes (the 3-D ops have one form)
_RUNS = [(case, kernel_set) for case in _CASES
         for kernel_set in (("tiled", "naive") if len(case[1]) < 5 else ("tiled",))]


@pytest.mark.parametrize("case, kernel_set", _RUNS,
                         ids=[f"{c[0].__name__}-{k}" for c, k in _RUNS])
def test_functional_backward_skips_only_the_input_gradient(case, kernel_set):
    backward, xs, ws, kw = case
    x, w = _normal(*xs), _normal(*ws)
    forward = getattr(deconv, backward.__name__[:-len("_backward")])
    g = _normal(*forward(x, w, **kw).shape)
    with deconv.kernels.use(kernel_set):
        gx, gw, gb = backward(g, x, w, **kw)
        none, gw2, gb2 = backward(g, x, w, **kw, input_grad=False)
    assert gx.shape == xs and none is None
    np.testing.assert_array_equal(gw, gw2)
    np.testing.assert_array_equal(gb, gb2)


@pytest.mark.parametrize("value", [0, 1, None, "no", np.array([False])])
def test_input_grad_must_be_a_bool(value):
    x, w = _normal(1, 1, 4, 4), _normal(1, 1, 3, 3)
    with pytest.raises(TypeError, match="input_grad must be a bool"):
        deconv.conv2d_backward(_normal(1, 1, 2, 2), x, w, input_grad=value)
    with pytest.raises(TypeError, match="input_grad"):
        nn.ReLU().input_grad = value


def _block():
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, padding_mode="reflect", rng=0),
                         nn.GroupNorm(2, 8), nn.ReLU(),
                         nn.ConvTranspose2d(8, 4, 4, stride=2, padding=1, bias=False, rng=1),
                         nn.BatchNorm2d(4), nn.ReLU())


def _grads(net, x, g, input_grad):
    net.zero_grad()
    net.input_grad = input_grad
    y = net(x)
    gx = net.backward(g)
    return gx, y, [p.grad.copy() for p in net.parameters()]


def test_sequential_hands_the_skip_to_its_first_layer_and_keeps_the_gradients():
    net = _block()
    x, g = _normal(2, 3, 6, 6), _normal(2, 4, 12, 12)
    gx, y, full = _grads(net, x, g, True)
    none, y2, skipped = _grads(net, x, g, False)
    assert gx.shape == x.shape and none is None
    np.testing.assert_array_equal(y, y2)
    for a, b in zip(full, skipped):
        np.testing.assert_array_equal(a, b)
    # the first layer's own flag is the user's again after the backward
    assert net[0].input_grad is True and net.input_grad is False


def test_first_conv_skips_its_input_gradient_pass(monkeypatch):
    net = _block()
    seen = []
    original = deconv.functional.conv._conv_backward

    def spy(*args):
        seen.append(args[-1])
        return original(*args)

    monkeypatch.setattr(deconv.functional.conv, "_conv_backward", spy)
    x, g = _normal(2, 3, 6, 6), _normal(2, 4, 12, 12)
    _grads(net, x, g, False)
    assert seen == [False]            # the first (and only plain) conv was asked not to
    _grads(net, x, g, True)
    assert seen == [False, True]


def test_a_layer_and_a_concat_return_none_when_asked():
    conv = nn.Conv1d(2, 3, 3, rng=0)
    x = _normal(2, 2, 7)
    y = conv(x)
    conv.input_grad = False
    assert conv.backward(np.ones_like(y)) is None
    cat = nn.Concat(nn.Identity(), nn.Conv2d(2, 3, 3, padding=1, rng=1))
    x = _normal(1, 2, 4, 4)
    y = cat(x)
    full = cat.backward(np.ones_like(y))
    gw = cat[1].weight.grad.copy()
    cat.zero_grad()
    cat.input_grad = False
    assert full.shape == x.shape and cat.backward(np.ones_like(y)) is None
    np.testing.assert_array_equal(gw, cat[1].weight.grad)
    assert cat[1].input_grad is True


def test_trainer_skips_the_input_gradient_and_trains_bitwise_as_a_manual_loop(monkeypatch):
    x = _normal(8, 3, 6, 6)
    y = _normal(8, 4, 12, 12)

    def parts():
        net = _block()
        return net, nn.L1Loss(), optim.Adam(net.parameters(), lr=1e-2)

    net, loss, opt = parts()
    seen = []
    original = deconv.functional.conv._conv_backward
    monkeypatch.setattr(deconv.functional.conv, "_conv_backward",
                        lambda *args: seen.append(args[-1]) or original(*args))
    Trainer(net, loss, opt, batch_size=4, epochs=1, seed=0, progress="none").fit(x, y)
    monkeypatch.undo()
    assert seen == [False, False]                     # two steps, the first conv skipped
    assert net.input_grad is True                     # restored after each step
    manual, loss2, opt2 = parts()
    order = np.random.default_rng(0).permutation(8)
    manual.train()
    for b in range(2):
        idx = order[b * 4:(b + 1) * 4]
        manual.zero_grad()
        loss2(manual(x[idx]), y[idx])
        manual.backward(loss2.backward())
        opt2.step()
    for (name, a), b in zip(net.named_parameters(), manual.parameters()):
        np.testing.assert_array_equal(a.data, b.data, err_msg=name)
