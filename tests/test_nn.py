"""deconv.nn layers and losses, and the public deconv.gradcheck.gradcheck.

Every layer, loss and composition passes gradcheck in float64; forwards equal
the functional ops (or NumPy formulas); initialisation follows torch's
scheme; parameters(), zero_grad, gradient accumulation and train/eval behave
as in torch; bad arguments raise errors naming them; gradcheck reports a
wrong backward.
"""

import math
from collections import OrderedDict

import numpy as np
import pytest

import deconv
from deconv import nn
from deconv.gradcheck import GradcheckReport, gradcheck


def _randn(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _distinct(*shape, seed=0):
    """Values at least 0.05 apart (no max-pool ties, even after eps perturbations)."""
    n = math.prod(shape)
    return np.random.default_rng(seed).permutation(n).reshape(shape) * 0.05 - n * 0.025


# ---------------------------------------------------------------------------
# every layer passes gradcheck in float64
# ---------------------------------------------------------------------------

LAYER_CASES = {
    "conv1d": (lambda: nn.Conv1d(2, 3, 3, stride=2, padding=1, rng=0), lambda: _randn(2, 2, 7)),
    "conv1d_same_dilated_groups": (
        lambda: nn.Conv1d(4, 2, 4, padding="same", dilation=2, groups=2, rng=0),
        lambda: _randn(2, 4, 6)),
    "conv2d": (lambda: nn.Conv2d(2, 3, 3, padding=1, rng=0), lambda: _randn(2, 2, 5, 4)),
    "conv2d_strided_groups_nobias": (
        lambda: nn.Conv2d(4, 2, (2, 3), stride=(2, 1), dilation=(1, 2), groups=2, bias=False,
                          rng=0),
        lambda: _randn(1, 4, 5, 6)),
    "conv2d_same_even_kernel": (lambda: nn.Conv2d(2, 2, 2, padding="same", rng=0),
                                lambda: _randn(1, 2, 4, 5)),
    "conv_transpose1d": (
        lambda: nn.ConvTranspose1d(2, 3, 3, stride=2, padding=1, output_padding=1, rng=0),
        lambda: _randn(2, 2, 4)),
    "conv_transpose2d": (
        lambda: nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1, groups=2,
                                   rng=0),
        lambda: _randn(1, 4, 3, 3)),
    "conv_transpose2d_dilated": (
        lambda: nn.ConvTranspose2d(2, 2, 2, stride=(1, 2), dilation=2, output_padding=(1, 0),
                                   bias=False, rng=0),
        lambda: _randn(1, 2, 3, 3)),
    "max_pool1d": (lambda: nn.MaxPool1d(3, stride=2, padding=1), lambda: _distinct(2, 2, 7)),
    "max_pool2d": (lambda: nn.MaxPool2d(2), lambda: _distinct(2, 2, 4, 5)),
    "max_pool2d_overlapping_ceil": (
        lambda: nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True),
        lambda: _distinct(1, 2, 6, 6)),
    "max_pool2d_dilated": (lambda: nn.MaxPool2d(2, stride=1, dilation=2),
                           lambda: _distinct(1, 1, 5, 5)),
    "avg_pool1d": (lambda: nn.AvgPool1d(3, stride=2, padding=1, count_include_pad=False),
                   lambda: _randn(2, 2, 7)),
    "avg_pool2d": (lambda: nn.AvgPool2d(2, ceil_mode=True), lambda: _randn(1, 2, 5, 5)),
    "avg_pool2d_divisor": (lambda: nn.AvgPool2d(3, stride=1, padding=1, divisor_override=4),
                           lambda: _randn(1, 2, 4, 4)),
    "upsample_nearest1d": (lambda: nn.Upsample(scale_factor=2.5), lambda: _randn(2, 2, 3)),
    "upsample_nearest2d": (lambda: nn.Upsample(size=(5, 7)), lambda: _randn(1, 2, 3, 3)),
    "upsample_bilinear": (lambda: nn.Upsample(scale_factor=1.5, mode="bilinear"),
                          lambda: _randn(1, 2, 3, 4)),
    "upsample_bilinear_align_corners": (
        lambda: nn.Upsample(size=(5, 6), mode="bilinear", align_corners=True),
        lambda: _randn(1, 2, 3, 4)),
    "pixel_shuffle": (lambda: nn.PixelShuffle(2), lambda: _randn(1, 8, 2, 3)),
    "pixel_unshuffle": (lambda: nn.PixelUnshuffle(2), lambda: _randn(1, 2, 4, 2)),
    "linear": (lambda: nn.Linear(5, 3, rng=0), lambda: _randn(4, 5)),
    "linear_3d_input_nobias": (lambda: nn.Linear(4, 3, bias=False, rng=0), lambda: _randn(2, 3, 4)),
    "flatten": (lambda: nn.Flatten(), lambda: _randn(2, 3, 2, 2)),
    "flatten_middle": (lambda: nn.Flatten(1, 2), lambda: _randn(2, 3, 2, 2)),
    "permute": (lambda: nn.Permute((0, 2, 1)), lambda: _randn(2, 3, 4)),
    "relu": (lambda: nn.ReLU(), lambda: _randn(3, 4, 5)),
    "leaky_relu": (lambda: nn.LeakyReLU(0.2), lambda: _randn(3, 4, 5)),
    "sigmoid": (lambda: nn.Sigmoid(), lambda: _randn(3, 4, 5)),
    "tanh": (lambda: nn.Tanh(), lambda: _randn(3, 4, 5)),
    "identity": (lambda: nn.Identity(), lambda: _randn(3, 4)),
    "dropout_train": (lambda: nn.Dropout(0.3, rng=0), lambda: _randn(4, 6)),
    "dropout_eval": (lambda: nn.Dropout(0.3, rng=0).eval(), lambda: _randn(4, 6)),
    "embedding": (lambda: nn.Embedding(6, 3, rng=0),
                  lambda: np.array([[0, 2, 2, 5], [1, 1, 4, 0]])),
    "embedding_padding_idx_unused": (lambda: nn.Embedding(5, 2, padding_idx=1, rng=0),
                                     lambda: np.array([[0, 2, 3], [3, 4, 4]])),
}


@pytest.mark.parametrize("case", sorted(LAYER_CASES))
def test_every_layer_passes_gradcheck(case):
    make_layer, make_input = LAYER_CASES[case]
    layer = make_layer()
    report = gradcheck(layer, make_input())
    report.assert_passed()
    names = [c.name for c in report.checks]
    expected = [n for n, _ in layer.named_parameters()]
    if np.issubdtype(make_input().dtype, np.floating):
        expected = ["input"] + expected
    assert names == expected


@pytest.mark.parametrize("nd", [1, 2])
@pytest.mark.parametrize("pool_kw", [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1),
                                     dict(kernel_size=3, stride=1)])
def test_max_unpool_passes_gradcheck_with_the_pool_switches(nd, pool_kw):
    pool = (nn.MaxPool1d if nd == 1 else nn.MaxPool2d)(**pool_kw)
    unpool = (nn.MaxUnpool1d if nd == 1 else nn.MaxUnpool2d)(pool)
    x = _distinct(2, 2, 7) if nd == 1 else _distinct(1, 2, 5, 7)
    pooled = pool(x)
    y = unpool(_randn(*pooled.shape))
    assert y.shape == x.shape
    gradcheck(unpool, _randn(*pooled.shape, seed=1)).assert_passed()


@pytest.mark.parametrize("case", [
    ("mse", nn.MSELoss(), _randn(3, 4), _randn(3, 4, seed=1)),
    ("mse_sum", nn.MSELoss(reduction="sum"), _randn(2, 3), _randn(2, 3, seed=1)),
    ("l1", nn.L1Loss(), _randn(3, 4), _randn(3, 4, seed=1)),
    ("ce_2d", nn.CrossEntropyLoss(), _randn(4, 5), np.array([0, 4, 2, 2])),
    ("ce_3d", nn.CrossEntropyLoss(), _randn(2, 4, 3), np.array([[0, 3, 1], [2, 2, 0]])),
    ("ce_4d", nn.CrossEntropyLoss(), _randn(2, 3, 2, 2),
     np.array([[[0, 1], [2, 2]], [[1, 0], [0, 2]]])),
    ("ce_weight_ignore", nn.CrossEntropyLoss(weight=np.array([1.0, 2.0, 0.5]), ignore_index=-1),
     _randn(2, 3, 4), np.array([[0, -1, 1, 2], [2, 2, -1, 0]])),
], ids=lambda c: c[0])
def test_every_loss_passes_gradcheck(case):
    _, loss, prediction, target = case
    report = gradcheck(loss, prediction, target)
    report.assert_passed()
    assert [c.name for c in report.checks] == ["prediction"]


def _unet_block(seed=0):
    """conv + ReLU, then [skip | pool -> conv -> upsample] joined on channels, then a 1x1 conv."""
    return nn.Sequential(
        nn.Conv2d(2, 3, 3, padding=1, rng=seed),
        nn.ReLU(),
        nn.Concat(
            nn.Identity(),
            nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(3, 4, 3, padding=1, rng=seed + 1),
                          nn.LeakyReLU(), nn.Upsample(scale_factor=2)),
        ),
        nn.Conv2d(7, 2, 1, rng=seed + 2),
    )


def test_unet_like_skip_block_passes_gradcheck():
    block = _unet_block()
    x = _randn(2, 2, 6, 6)
    assert block(x.astype(np.float32)).shape == (2, 2, 6, 6)
    report = gradcheck(block, x)
    report.assert_passed()
    assert [c.name for c in report.checks] == [
        "input", "0.weight", "0.bias", "2.1.1.weight", "2.1.1.bias", "3.weight", "3.bias"]


@pytest.mark.parametrize("pool_kw", [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1),
                                     dict(kernel_size=3, stride=1)],
                         ids=["non-overlapping", "overlapping-padded", "overlapping-stride1"])
def test_conv_pool_unpool_deconv_chain_passes_gradcheck(pool_kw):
    """Zeiler & Fergus: conv -> pool -> unpool(switches) -> transposed conv to the input size."""
    pool = nn.MaxPool2d(**pool_kw)
    net = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1, rng=0), pool, nn.MaxUnpool2d(pool),
                        nn.ConvTranspose2d(3, 2, 3, padding=1, rng=1))
    x = _randn(2, 2, 7, 7)          # odd size: the unpool restores 7, not the default 6
    assert net(x.astype(np.float32)).shape == x.shape
    report = gradcheck(net, x)
    report.assert_passed()
    # the pool and unpool have no parameters; the pool is not counted twice
    assert [n for n, _ in net.named_parameters()] == ["0.weight", "0.bias", "3.weight", "3.bias"]


def test_1d_chain_with_dilated_pool_restores_size_and_passes_gradcheck():
    pool = nn.MaxPool1d(3, dilation=2)   # the unpool's default size range would exclude 10
    net = nn.Sequential(nn.Conv1d(1, 2, 3, padding=1, rng=0), pool, nn.MaxUnpool1d(pool),
                        nn.ConvTranspose1d(2, 1, 3, padding=1, rng=1))
    x = _randn(2, 1, 10)
    assert net(x.astype(np.float32)).shape == x.shape
    gradcheck(net, x).assert_passed()


def test_whole_model_with_loss_passes_gradcheck():
    """A small classifier: conv, ReLU, transposed conv, pool, flatten, linear, cross-entropy."""
    net = nn.Sequential(
        nn.Conv2d(1, 2, 3, padding=1, rng=0), nn.ReLU(),
        nn.ConvTranspose2d(2, 2, 3, stride=2, padding=1, output_padding=1, rng=1),
        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(2 * 4 * 4, 3, rng=2),
    )
    x = _randn(3, 1, 4, 4)
    target = np.array([0, 2, 1])
    report = gradcheck(net, x, target, loss=nn.CrossEntropyLoss(), max_full_size=48)
    report.assert_passed()
    assert "directions" in report["5.weight"].method and report["input"].method == "full"


def test_text_like_model_with_embedding_passes_gradcheck():
    net = nn.Sequential(nn.Embedding(7, 3, rng=0), nn.Permute((0, 2, 1)),
                        nn.Conv1d(3, 4, 3, padding=1, rng=1), nn.ReLU(),
                        nn.ConvTranspose1d(4, 7, 3, padding=1, rng=2))
    tokens = np.array([[1, 5, 0, 6, 2], [3, 3, 4, 0, 1]])
    targets = np.array([[1, 5, 2, 6, 2], [3, 0, 4, 0, 1]])
    logits = net(tokens)
    assert logits.shape == (2, 7, 5)
    report = gradcheck(net, tokens, targets, loss=nn.CrossEntropyLoss())
    report.assert_passed()
    assert report.checks[0].name == "0.weight"     # integer input: no input row


# ---------------------------------------------------------------------------
# gradcheck itself
# ---------------------------------------------------------------------------

class _Scale(nn.Module):
    """y = x * w (w broadcast over the batch), with an optional deliberate backward bug."""

    def __init__(self, bug=None):
        super().__init__()
        self.w = nn.Parameter(np.array([0.5, -1.0, 2.0]))
        self.bug = bug

    def forward(self, x):
        self._save(x=x)
        return x * self.w.data

    def backward(self, grad_output):
        x = self._saved()["x"]
        gw = (grad_output * x).sum(axis=0)
        if self.bug == "weight":
            gw = gw * 1.01
        self.w.grad += gw
        if self.bug == "shape":
            return grad_output[:, :2]
        return grad_output * self.w.data


def test_gradcheck_report_fails_on_a_wrong_backward():
    report = gradcheck(_Scale(bug="weight"), _randn(4, 3), raise_exception=False)
    assert isinstance(report, GradcheckReport)
    assert not report.passed and not report
    assert report["input"].passed and not report["w"].passed
    assert report.failures == [report["w"]]
    assert report["w"].rel_error > 1e-3
    text = str(report)
    assert "FAILED" in text and "NO" in text
    assert "w " in text and "max abs err" in text and "rel err" in text and "tol" in text
    with pytest.raises(AssertionError, match="gradcheck failed"):
        report.assert_passed()
    good = gradcheck(_Scale(), _randn(4, 3))
    assert good.passed and "PASSED" in str(good)


def test_gradcheck_reports_a_gradient_of_the_wrong_shape():
    report = gradcheck(_Scale(bug="shape"), _randn(4, 3), raise_exception=False)
    assert not report["input"].passed
    assert "expected shape (4, 3)" in report["input"].note
    assert "expected shape (4, 3)" in str(report)


def test_gradcheck_along_directions_for_large_tensors_catches_a_bug():
    assert gradcheck(_Scale(), _randn(4, 3), max_full_size=0).passed
    report = gradcheck(_Scale(bug="weight"), _randn(4, 3), max_full_size=0, n_directions=2,
                       raise_exception=False)
    assert report["w"].method == "2 directions" and not report["w"].passed
    assert report["input"].passed


def test_gradcheck_restores_parameters_grads_and_dtype():
    net = _unet_block()
    params = net.parameters()
    for p in params:
        p.grad += 1.5                      # accumulated gradients must survive
    before = [(p.data, p.data.copy(), p.grad) for p in params]
    report = gradcheck(net, _randn(1, 2, 4, 4).astype(np.float32))
    report.assert_passed()
    for p, (data, values, grad) in zip(net.parameters(), before):
        assert p.data is data and p.grad is grad
        assert p.data.dtype == np.float32
        np.testing.assert_array_equal(p.data, values)
        np.testing.assert_array_equal(p.grad, 1.5)


def test_gradcheck_restores_parameters_after_an_error():
    class Broken(_Scale):
        def backward(self, grad_output):
            raise ZeroDivisionError("boom")

    m = Broken()
    data = m.w.data
    with pytest.raises(ZeroDivisionError):
        gradcheck(m, _randn(2, 3))
    assert m.w.data is data and m.w.data.dtype == np.float64


def test_gradcheck_fixes_the_dropout_mask_and_consumes_no_randomness():
    drop = nn.Dropout(0.5, rng=7)
    state = drop.rng.bit_generator.state
    net = nn.Sequential(nn.Linear(6, 6, rng=0), drop, nn.Tanh())
    gradcheck(net, _randn(3, 6)).assert_passed()
    assert drop.rng.bit_generator.state == state
    assert drop.training


def test_gradcheck_refuses_a_module_that_does_not_keep_float64():
    class Downcast(nn.Module):
        def forward(self, x):
            self._save()
            return x.astype(np.float32)

        def backward(self, g):
            return g

    with pytest.raises(TypeError, match="float64"):
        gradcheck(Downcast(), _randn(2, 2))


def test_gradcheck_argument_errors():
    with pytest.raises(ValueError, match="target"):
        gradcheck(nn.MSELoss(), _randn(2))
    with pytest.raises(ValueError, match="target"):
        gradcheck(nn.Linear(2, 2, rng=0), _randn(2, 2), loss=nn.MSELoss())
    with pytest.raises(TypeError, match="Module or deconv.nn.Loss"):
        gradcheck(lambda x: x, _randn(2))
    with pytest.raises(ValueError, match="eps"):
        gradcheck(nn.ReLU(), _randn(2), eps=0)
    with pytest.raises(ValueError, match="nothing to check"):
        gradcheck(nn.ReLU(), _randn(2), check_input=False)


def test_gradcheck_with_a_loss_on_a_float32_model():
    net = nn.Sequential(nn.Conv1d(2, 2, 3, padding=1, rng=0), nn.Sigmoid())
    x = _randn(2, 2, 5).astype(np.float32)
    report = gradcheck(net, x, _randn(2, 2, 5, seed=3), loss=nn.MSELoss())
    report.assert_passed()
    assert "MSELoss" in report.subject


# ---------------------------------------------------------------------------
# forward equals the functional op / NumPy formula; dtype is kept; inputs untouched
# ---------------------------------------------------------------------------

def _forward_cases():
    x1, x2 = _randn(2, 4, 9, seed=1), _randn(2, 4, 6, 7, seed=2)
    w = lambda layer: layer.weight.data  # noqa: E731
    b = lambda layer: layer.bias.data    # noqa: E731
    c1 = nn.Conv1d(4, 6, 3, stride=2, padding=1, dilation=1, groups=2, dtype=np.float64, rng=0)
    c2 = nn.Conv2d(4, 2, (3, 2), padding="same", dilation=(2, 1), dtype=np.float64, rng=0)
    t1 = nn.ConvTranspose1d(4, 2, 4, stride=3, padding=1, output_padding=2, dtype=np.float64, rng=0)
    t2 = nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2,
                            dtype=np.float64, rng=0)
    return [
        ("conv1d", c1, x1, lambda: deconv.conv1d(x1, w(c1), b(c1), 2, 1, 1, 2)),
        ("conv2d", c2, x2,
         lambda: deconv.conv2d(x2, w(c2), b(c2), padding="same", dilation=(2, 1))),
        ("conv_transpose1d", t1, x1,
         lambda: deconv.conv_transpose1d(x1, w(t1), b(t1), 3, 1, 2)),
        ("conv_transpose2d", t2, x2,
         lambda: deconv.conv_transpose2d(x2, w(t2), b(t2), 2, 1, 1, groups=2)),
        ("max_pool1d", nn.MaxPool1d(3, 2, 1), x1, lambda: deconv.max_pool1d(x1, 3, 2, 1)[0]),
        ("max_pool2d", nn.MaxPool2d(2, ceil_mode=True), x2,
         lambda: deconv.max_pool2d(x2, 2, ceil_mode=True)[0]),
        ("avg_pool1d", nn.AvgPool1d(2, 1), x1, lambda: deconv.avg_pool1d(x1, 2, 1)),
        ("avg_pool2d", nn.AvgPool2d(3, 2, 1, count_include_pad=False), x2,
         lambda: deconv.avg_pool2d(x2, 3, 2, 1, count_include_pad=False)),
        ("upsample_nearest1d", nn.Upsample(size=13), x1,
         lambda: deconv.upsample_nearest1d(x1, size=13)),
        ("upsample_nearest2d", nn.Upsample(scale_factor=(2, 1.5)), x2,
         lambda: deconv.upsample_nearest2d(x2, scale_factor=(2, 1.5))),
        ("upsample_bilinear2d", nn.Upsample(scale_factor=1.7, mode="bilinear", align_corners=True),
         x2, lambda: deconv.upsample_bilinear2d(x2, scale_factor=1.7, align_corners=True)),
        ("pixel_shuffle", nn.PixelShuffle(2), x2, lambda: deconv.pixel_shuffle(x2, 2)),
        ("pixel_unshuffle", nn.PixelUnshuffle(3), _randn(1, 2, 6, 3, seed=4),
         lambda: deconv.pixel_unshuffle(_randn(1, 2, 6, 3, seed=4), 3)),
    ]


@pytest.mark.parametrize("case", _forward_cases(), ids=lambda c: c[0])
def test_layer_forward_equals_functional_op(case):
    _, layer, x, expected = case
    np.testing.assert_array_equal(layer(x), expected())


def test_max_unpool_forward_and_backward_equal_functional_ops():
    x = _distinct(2, 3, 7, 6)
    pool = nn.MaxPool2d(3, stride=2, padding=1)
    unpool = nn.MaxUnpool2d(pool)
    p = pool(x)
    ref_p, idx = deconv.max_pool2d(x, 3, 2, 1)
    np.testing.assert_array_equal(p, ref_p)
    np.testing.assert_array_equal(pool.last_indices, idx)
    u = unpool(p)
    np.testing.assert_array_equal(u, deconv.max_unpool2d(p, idx, 3, 2, 1, output_size=(7, 6)))
    g = _randn(*u.shape)
    np.testing.assert_array_equal(unpool.backward(g), deconv.max_unpool2d_backward(g, idx))


def test_conv_backward_equals_functional_and_accumulates():
    layer = nn.Conv2d(3, 4, 3, stride=2, padding=1, dtype=np.float64, rng=0)
    x = _randn(2, 3, 7, 7)
    y = layer(x)
    g = _randn(*y.shape, seed=1)
    gi = layer.backward(g)
    ref = deconv.conv2d_backward(g, x, layer.weight.data, stride=2, padding=1)
    np.testing.assert_array_equal(gi, ref[0])
    np.testing.assert_array_equal(layer.weight.grad, ref[1])
    np.testing.assert_array_equal(layer.bias.grad, ref[2])
    layer.backward(g)
    np.testing.assert_allclose(layer.weight.grad, 2 * ref[1], rtol=1e-15)
    np.testing.assert_allclose(layer.bias.grad, 2 * ref[2], rtol=1e-15)
    layer.zero_grad()
    assert not layer.weight.grad.any() and not layer.bias.grad.any()


def test_linear_and_activations_equal_numpy_formulas():
    x = _randn(3, 5)
    lin = nn.Linear(5, 2, dtype=np.float64, rng=0)
    np.testing.assert_allclose(lin(x), x @ lin.weight.data.T + lin.bias.data, rtol=1e-14)
    g = _randn(3, 2, seed=1)
    np.testing.assert_allclose(lin.backward(g), g @ lin.weight.data, rtol=1e-14)
    np.testing.assert_allclose(lin.weight.grad, g.T @ x, rtol=1e-14)
    np.testing.assert_allclose(lin.bias.grad, g.sum(0), rtol=1e-14)

    z = np.array([-2.0, -0.5, 0.0, 0.5, 3.0])
    np.testing.assert_array_equal(nn.ReLU()(z), [0, 0, 0, 0.5, 3])
    np.testing.assert_allclose(nn.LeakyReLU()(z), np.where(z > 0, z, 0.01 * z))
    np.testing.assert_allclose(nn.Sigmoid()(z), 1 / (1 + np.exp(-z)), rtol=1e-15)
    np.testing.assert_allclose(nn.Tanh()(z), np.tanh(z))
    # torch's choices at 0: ReLU' = 0, LeakyReLU' = negative_slope
    relu, leaky = nn.ReLU(), nn.LeakyReLU(0.1)
    relu(z), leaky(z)
    np.testing.assert_array_equal(relu.backward(np.ones(5)), [0, 0, 0, 1, 1])
    np.testing.assert_allclose(leaky.backward(np.ones(5)), [0.1, 0.1, 0.1, 1, 1])
    # stable for large |x|
    with np.errstate(over="raise"):
        np.testing.assert_array_equal(nn.Sigmoid()(np.array([-1000.0, 1000.0])), [0.0, 1.0])


def test_flatten_embedding_and_identity():
    x = _randn(2, 3, 4, 5)
    np.testing.assert_array_equal(nn.Flatten()(x), x.reshape(2, 60))
    np.testing.assert_array_equal(nn.Flatten(0, 1)(x), x.reshape(6, 4, 5))
    emb = nn.Embedding(4, 3, rng=0)
    idx = np.array([[3, 0, 3]])
    np.testing.assert_array_equal(emb(idx), emb.weight.data[idx])
    assert emb.backward(np.ones((1, 3, 3), dtype=np.float32)) is None
    np.testing.assert_array_equal(emb.weight.grad, [[1] * 3, [0] * 3, [0] * 3, [2] * 3])
    ident = nn.Identity()
    assert ident(x) is x
    # padding_idx: the row is looked up but, as in torch, never receives gradient
    pad = nn.Embedding(4, 2, padding_idx=1, dtype=np.float64, rng=0)
    y = pad(np.array([[1, 2, 1]]))
    assert not y[0, 0].any()
    pad.backward(np.ones_like(y))
    np.testing.assert_array_equal(pad.weight.grad, [[0, 0], [0, 0], [1, 1], [0, 0]])


def test_dropout_train_and_eval():
    x = np.ones((200, 100), dtype=np.float32)
    drop = nn.Dropout(0.25, rng=0)
    y = drop(x)
    assert y.dtype == np.float32
    assert set(np.unique(y)) == {0.0, np.float32(1 / 0.75)}
    assert abs((y == 0).mean() - 0.25) < 0.01
    g = drop.backward(np.ones_like(y))
    np.testing.assert_array_equal(g, y)            # same mask in the backward
    assert not np.array_equal(drop(x), y)          # a new mask each forward
    net = nn.Sequential(nn.Linear(100, 100, rng=0), nn.Sequential(drop))
    net.eval()
    assert not drop.training and not net.training
    np.testing.assert_array_equal(drop(x), x)
    net.train()
    assert drop.training
    assert not nn.Dropout(1.0, rng=0)(x).any()
    np.testing.assert_array_equal(nn.Dropout(0.0, rng=0)(x), x)
    # the same seed gives the same mask
    np.testing.assert_array_equal(nn.Dropout(0.5, rng=3)(x), nn.Dropout(0.5, rng=3)(x))


def test_concat_splits_gradient_and_sums_branch_input_gradients():
    a = nn.Conv2d(2, 3, 1, bias=False, dtype=np.float64, rng=0)
    b = nn.Conv2d(2, 1, 1, bias=False, dtype=np.float64, rng=1)
    cat = nn.Concat(nn.Identity(), a, b)
    x = _randn(1, 2, 3, 3)
    y = cat(x)
    assert y.shape == (1, 6, 3, 3)
    np.testing.assert_array_equal(y[:, :2], x)
    g = _randn(*y.shape, seed=1)
    g_copy = g.copy()
    gi = cat.backward(g)
    expected = (g[:, :2] + np.einsum("oc,nohw->nchw", a.weight.data[:, :, 0, 0], g[:, 2:5])
                + np.einsum("oc,nohw->nchw", b.weight.data[:, :, 0, 0], g[:, 5:]))
    np.testing.assert_allclose(gi, expected, rtol=1e-13)
    np.testing.assert_array_equal(g, g_copy)       # the upstream gradient is not modified
    with pytest.raises(ValueError, match="channel axis"):
        nn.Concat(nn.Identity(), nn.MaxPool2d(2))(x[:, :, :2, :2].copy())


@pytest.mark.parametrize("case", sorted(LAYER_CASES))
def test_float32_in_float32_out_and_inputs_never_written(case):
    make_layer, make_input = LAYER_CASES[case]
    layer = make_layer()
    x = make_input()
    if np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float32)
    for p in layer.parameters():
        assert p.dtype == np.float32
    x.flags.writeable = False                       # any write would raise
    y = layer(x)
    assert y.dtype == np.float32
    g = np.ones_like(y)
    g.flags.writeable = False
    gi = layer.backward(g)
    if np.issubdtype(x.dtype, np.floating):
        assert gi.dtype == np.float32 and gi.shape == x.shape
    for p in layer.parameters():
        assert p.grad.dtype == np.float32


def test_max_unpool_float32_and_read_only_input():
    pool = nn.MaxPool2d(2)
    unpool = nn.MaxUnpool2d(pool)
    x = _distinct(1, 2, 5, 5).astype(np.float32)
    x.flags.writeable = False
    p = pool(x)
    p.flags.writeable = False
    u = unpool(p)
    assert u.dtype == np.float32 and u.shape == x.shape
    assert unpool.backward(np.ones_like(u)).dtype == np.float32


# ---------------------------------------------------------------------------
# losses: hand-computed values, direct formulas
# ---------------------------------------------------------------------------

def test_mse_and_l1_hand_computed():
    p = np.array([[1.0, -2.0], [0.5, 3.0]])
    t = np.array([[0.0, 0.0], [0.5, 1.0]])
    mse = nn.MSELoss()
    assert mse(p, t) == pytest.approx((1 + 4 + 0 + 4) / 4, rel=1e-15)
    np.testing.assert_allclose(mse.backward(), 2 * (p - t) / 4)
    assert nn.MSELoss(reduction="sum")(p, t) == pytest.approx(9.0)
    l1 = nn.L1Loss()
    assert l1(p, t) == pytest.approx((1 + 2 + 0 + 2) / 4, rel=1e-15)
    np.testing.assert_array_equal(l1.backward(), [[0.25, -0.25], [0.0, 0.25]])   # sign(0) = 0
    p32 = p.astype(np.float32)
    assert isinstance(mse(p32, t), float) and mse.backward().dtype == np.float32
    assert l1(p32, t) == pytest.approx(1.25) and l1.backward().dtype == np.float32


def _ce_direct(logits, target):
    """-mean log softmax, position by position, with plain Python loops."""
    n, c = logits.shape[:2]
    z = np.moveaxis(logits, 1, -1).reshape(-1, c)
    t = target.reshape(-1)
    losses = [math.log(sum(math.exp(v) for v in row)) - row[k] for row, k in zip(z, t)]
    return sum(losses) / len(losses)


def test_cross_entropy_hand_computed_and_direct_formula():
    ce = nn.CrossEntropyLoss()
    # two classes with equal logits: log 2; gradient softmax - onehot, averaged over N
    assert ce(np.zeros((2, 2)), np.array([0, 1])) == pytest.approx(math.log(2), rel=1e-15)
    np.testing.assert_allclose(ce.backward(), [[-0.25, 0.25], [0.25, -0.25]])
    logits = _randn(4, 5)
    target = np.array([4, 0, 1, 1])
    assert ce(logits, target) == pytest.approx(_ce_direct(logits, target), rel=1e-13)
    sm = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    np.testing.assert_allclose(ce.backward(), (sm - np.eye(5)[target]) / 4, rtol=1e-13)
    # (N, C, L): mean over all N*L positions, gradient in the logits' layout
    logits3 = _randn(2, 3, 4, seed=1)
    target3 = np.array([[0, 2, 1, 1], [2, 2, 0, 1]])
    assert ce(logits3, target3) == pytest.approx(_ce_direct(logits3, target3), rel=1e-13)
    g = ce.backward()
    assert g.shape == logits3.shape
    sm3 = np.exp(logits3) / np.exp(logits3).sum(1, keepdims=True)
    onehot = np.moveaxis(np.eye(3)[target3], -1, 1)
    np.testing.assert_allclose(g, (sm3 - onehot) / 8, rtol=1e-13)


def test_cross_entropy_is_stable_and_keeps_float32():
    ce = nn.CrossEntropyLoss()
    big = np.array([[1000.0, 0.0], [0.0, -1000.0]], dtype=np.float32)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        value = ce(big, np.array([1, 0]))
        g = ce.backward()
    assert value == pytest.approx(500.0)
    assert g.dtype == np.float32 and np.isfinite(g).all()


def test_cross_entropy_weight_and_ignore_index():
    logits = _randn(4, 3)
    target = np.array([0, 2, -100, 1])
    weight = np.array([1.0, 2.0, 3.0])
    ce = nn.CrossEntropyLoss(weight=weight)
    logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    keep = [0, 1, 3]
    expected = (-sum(weight[target[i]] * logp[i, target[i]] for i in keep)
                / weight[target[keep]].sum())
    assert ce(logits, target) == pytest.approx(expected, rel=1e-13)
    assert not ce.backward()[2].any()
    assert nn.CrossEntropyLoss(ignore_index=2)(logits, np.array([0, 2, 2, 1])) == pytest.approx(
        _ce_direct(logits[[0, 3]], np.array([0, 1])), rel=1e-13)


# ---------------------------------------------------------------------------
# initialisation (torch's scheme)
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("make, fan_in", [
    (lambda: nn.Conv2d(64, 32, 5, rng=0), 64 * 25),
    (lambda: nn.Conv2d(64, 32, 5, groups=4, rng=0), 16 * 25),
    (lambda: nn.Conv1d(40, 50, 7, rng=0), 40 * 7),
    # transposed: weight (C_in, C_out/groups, k...), torch's fan_in = C_out/groups * prod(k)
    (lambda: nn.ConvTranspose2d(64, 48, 4, groups=2, rng=0), 24 * 16),
    (lambda: nn.ConvTranspose1d(30, 60, 5, rng=0), 60 * 5),
    (lambda: nn.Linear(300, 200, rng=0), 300),
], ids=["conv2d", "conv2d_groups", "conv1d", "conv_transpose2d_groups", "conv_transpose1d",
        "linear"])
def test_init_is_torch_default_uniform(make, fan_in):
    layer = make()
    bound = 1 / math.sqrt(fan_in)
    w = layer.weight.data
    assert w.dtype == np.float32
    assert np.abs(w).max() <= np.float32(bound)
    assert np.abs(w).max() > 0.99 * bound and w.min() < -0.99 * bound
    assert abs(w.mean()) < 0.02 * bound
    assert w.std() == pytest.approx(bound / math.sqrt(3), rel=0.02)
    b = layer.bias.data
    assert np.abs(b).max() <= np.float32(bound) and np.abs(b).max() > 0.5 * bound


def test_init_shapes_seed_and_dtype():
    assert nn.Conv2d(6, 4, (3, 2), groups=2, rng=0).weight.shape == (4, 3, 3, 2)
    assert nn.ConvTranspose2d(6, 4, (3, 2), groups=2, rng=0).weight.shape == (6, 2, 3, 2)
    assert nn.Conv1d(3, 5, 4, bias=False, rng=0).bias is None
    a, b = nn.Conv2d(3, 4, 3, rng=5), nn.Conv2d(3, 4, 3, rng=5)
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
    np.testing.assert_array_equal(a.bias.data, b.bias.data)
    gen = np.random.default_rng(5)
    c = nn.Conv2d(3, 4, 3, rng=gen)
    d = nn.Conv2d(3, 4, 3, rng=gen)                 # a shared Generator advances
    np.testing.assert_array_equal(c.weight.data, a.weight.data)
    assert not np.array_equal(c.weight.data, d.weight.data)
    assert not np.array_equal(nn.Conv2d(3, 4, 3).weight.data, nn.Conv2d(3, 4, 3).weight.data)
    e = nn.Conv2d(3, 4, 3, dtype=np.float64, rng=5)
    assert e.weight.dtype == e.bias.dtype == e.weight.grad.dtype == np.float64
    np.testing.assert_allclose(e.weight.data, a.weight.data, rtol=1e-7)
    lin = nn.Linear(3, 2, dtype=np.float64, rng=1)
    assert lin.weight.shape == (2, 3) and lin.weight.dtype == np.float64
    for p in e.parameters():
        assert p.grad.shape == p.shape and not p.grad.any()


def test_embedding_init_is_standard_normal():
    emb = nn.Embedding(1000, 50, rng=0)
    w = emb.weight.data
    assert w.dtype == np.float32
    assert abs(w.mean()) < 0.01 and w.std() == pytest.approx(1.0, rel=0.01)
    pad = nn.Embedding(5, 3, padding_idx=-1, dtype=np.float64, rng=0)
    assert pad.padding_idx == 4 and not pad.weight.data[4].any()


# ---------------------------------------------------------------------------
# Module structure: parameters, names, zero_grad, accumulation, modes
# ---------------------------------------------------------------------------

def test_named_parameters_order_as_torch_for_nested_sequential():
    net = nn.Sequential(
        nn.Conv2d(1, 2, 3, rng=0),
        nn.ReLU(),
        nn.Sequential(nn.Conv2d(2, 2, 3, bias=False, rng=0),
                      nn.Concat(nn.Identity(), nn.Conv2d(2, 2, 1, rng=0))),
        nn.Flatten(),
        nn.Linear(4, 3, rng=0),
    )
    names = [n for n, _ in net.named_parameters()]
    # torch.nn.Sequential with the same nesting (Concat children "0", "1") names them so
    assert names == ["0.weight", "0.bias", "2.0.weight", "2.1.1.weight", "2.1.1.bias",
                     "4.weight", "4.bias"]
    assert net.parameters() == [p for _, p in net.named_parameters()]
    assert net.parameters()[0] is net[0].weight and net.parameters()[-1] is net[4].bias
    assert [n for n, _ in net.named_parameters()] == names          # deterministic
    assert [n for n, _ in net.named_modules()][:4] == ["", "0", "1", "2"]
    assert len(net) == 5 and list(net)[1] is net[1] and net[-1] is net[4]
    sub = net[2:5]
    assert isinstance(sub, nn.Sequential) and sub[0] is net[2]
    assert [n for n, _ in sub.named_parameters()][0] == "2.0.weight"   # names kept, as torch


def test_own_parameters_come_before_children_and_shared_parameters_once():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = nn.Linear(2, 2, rng=0)
            self.scale = nn.Parameter(np.ones(2))

    assert [n for n, _ in Block().named_parameters()] == ["scale", "inner.weight", "inner.bias"]
    a = nn.Linear(2, 2, rng=0)
    b = nn.Linear(2, 2, rng=1)
    b.weight = a.weight                              # tied weights
    net = nn.Sequential(a, b)
    assert [n for n, _ in net.named_parameters()] == ["0.weight", "0.bias", "1.bias"]
    x = _randn(3, 2).astype(np.float32)
    net.backward(np.ones_like(net(x)))
    gradcheck(net, x).assert_passed()                # both uses accumulate into one grad
    net = nn.Sequential(OrderedDict(enc=nn.Linear(2, 3, rng=0), act=nn.ReLU()))
    assert [n for n, _ in net.named_parameters()] == ["enc.weight", "enc.bias"]


def test_zero_grad_and_accumulation_across_backward_calls():
    net = _unet_block()
    x = _randn(2, 2, 4, 4).astype(np.float32)
    y = net(x)
    g = _randn(*y.shape, seed=1).astype(np.float32)
    gi1 = net.backward(g)
    first = [p.grad.copy() for p in net.parameters()]
    gi2 = net.backward(g)
    np.testing.assert_array_equal(gi1, gi2)
    for p, f in zip(net.parameters(), first):
        np.testing.assert_allclose(p.grad, 2 * f, rtol=1e-6, atol=1e-6)
    grads = [p.grad for p in net.parameters()]
    net.zero_grad()
    for p, grad in zip(net.parameters(), grads):
        assert p.grad is grad and not p.grad.any()   # zeroed in place


def test_train_eval_propagate_and_to_dtype():
    net = _unet_block()
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    params = net.parameters()
    net.to(np.float64)
    assert net.parameters() == params and all(p.dtype == np.float64 for p in params)
    assert net(_randn(1, 2, 4, 4)).dtype == np.float64


def test_repr_is_torch_like():
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, rng=0), nn.ReLU())
    assert repr(net) == ("Sequential(\n"
                         "  (0): Conv2d(1, 2, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))\n"
                         "  (1): ReLU()\n)")


# ---------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("make, exc, pattern", [
    (lambda: nn.Conv2d(0, 8, 3), ValueError, "in_channels"),
    (lambda: nn.Conv2d(3, 8, 0), ValueError, "kernel_size"),
    (lambda: nn.Conv2d(3, 8, (3, 3, 3)), ValueError, "kernel_size"),
    (lambda: nn.Conv2d(3, 8, 3, stride=0), ValueError, "stride"),
    (lambda: nn.Conv2d(3, 8, 3, groups=2), ValueError,
     "in_channels=3 must be divisible by groups=2"),
    (lambda: nn.Conv2d(4, 6, 3, groups=4), ValueError, "out_channels=6"),
    (lambda: nn.Conv2d(3, 8, 3, padding="full"), ValueError, "padding"),
    (lambda: nn.Conv2d(3, 8, 3, stride=2, padding="same"), ValueError, "padding='same'"),
    (lambda: nn.Conv2d(3, 8, 3, padding=-1), ValueError, "padding"),
    (lambda: nn.Conv2d(3, 8, 3, padding_mode="mirror"), ValueError, "padding_mode"),
    (lambda: nn.Conv2d(3, 8, 3, dtype=np.int32), TypeError, "dtype"),
    (lambda: nn.Conv2d(3, 8, 3, dtype=np.float16), TypeError, "dtype"),
    (lambda: nn.Conv2d(3, 8, 3, rng="seed"), TypeError, "rng"),
    (lambda: nn.Conv2d(3, 8, 3, bias=1), TypeError, "bias"),
    (lambda: nn.ConvTranspose2d(3, 8, 3, stride=2, output_padding=2), ValueError, "output_padding"),
    (lambda: nn.ConvTranspose1d(3, 8, 3, stride=2, padding="same"), ValueError, "padding"),
    (lambda: nn.MaxPool2d(2, padding=2), ValueError, "padding"),
    (lambda: nn.MaxPool1d(0), ValueError, "kernel_size"),
    (lambda: nn.AvgPool2d(2, divisor_override=0), ValueError, "divisor_override"),
    (lambda: nn.AvgPool1d(2, ceil_mode="yes"), TypeError, "ceil_mode"),
    (lambda: nn.MaxUnpool2d(nn.MaxPool1d(2)), TypeError, "pool"),
    (lambda: nn.MaxUnpool2d(nn.AvgPool2d(2)), TypeError, "pool"),
    (lambda: nn.Upsample(), ValueError, "size and scale_factor"),
    (lambda: nn.Upsample(size=4, scale_factor=2), ValueError, "size and scale_factor"),
    (lambda: nn.Upsample(scale_factor=2, mode="cubic"), ValueError, "mode"),
    (lambda: nn.Upsample(scale_factor=2, align_corners=True), ValueError, "align_corners"),
    (lambda: nn.Upsample(scale_factor="2"), TypeError, "scale_factor"),
    (lambda: nn.PixelShuffle(0), ValueError, "upscale_factor"),
    (lambda: nn.Linear(0, 3), ValueError, "in_features"),
    (lambda: nn.Linear(3, 2.5), TypeError, "out_features"),
    (lambda: nn.LeakyReLU("x"), TypeError, "negative_slope"),
    (lambda: nn.Dropout(1.5), ValueError, "p=1.5"),
    (lambda: nn.Dropout(-0.1), ValueError, "p="),
    (lambda: nn.Embedding(5, 0), ValueError, "embedding_dim"),
    (lambda: nn.Embedding(5, 2, padding_idx=5), ValueError, "padding_idx"),
    (lambda: nn.Permute((0, 0, 1)), ValueError, "dims"),
    (lambda: nn.Sequential(nn.ReLU(), "relu"), TypeError, "position 1"),
    (lambda: nn.Concat(), ValueError, "branch"),
    (lambda: nn.MSELoss(reduction="batchmean"), ValueError, "reduction"),
    (lambda: nn.CrossEntropyLoss(weight=np.ones((2, 2))), ValueError, "weight"),
    (lambda: nn.Parameter([1.0, 2.0]), TypeError, "Parameter"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_bad_constructor_arguments_raise_naming_them(make, exc, pattern):
    with pytest.raises(exc, match=pattern):
        make()


def test_reusing_a_module_instance_is_refused():
    relu = nn.ReLU()
    with pytest.raises(ValueError, match="appears twice"):
        nn.Sequential(nn.Linear(2, 2, rng=0), relu, nn.Linear(2, 2, rng=0), relu)
    inner = nn.Sequential(relu)
    with pytest.raises(ValueError, match="appears twice"):
        nn.Concat(inner, nn.Sequential(relu))
    net = nn.Sequential(relu)
    with pytest.raises(ValueError, match="appears twice"):
        net.append(relu)
    assert len(net) == 1


def test_wrong_input_channels_name_in_channels_and_shape():
    layer = nn.Conv2d(3, 8, 3, rng=0)
    with pytest.raises(ValueError, match=r"in_channels=3.*\(2, 4, 8, 8\)"):
        layer(np.zeros((2, 4, 8, 8), dtype=np.float32))
    # one unbatched sample is refused with the fix (the rule of tests/test_nn_habits.py)
    with pytest.raises(ValueError, match=r"x must be 4-D with layout .*\(3, 8, 8\); for a single sample pass x\[None\]"):
        layer(np.zeros((3, 8, 8), dtype=np.float32))
    with pytest.raises(TypeError, match="float32 parameters.*float64"):
        layer(np.zeros((2, 3, 8, 8)))
    with pytest.raises(ValueError, match=r"ConvTranspose1d.*in_channels=2"):
        nn.ConvTranspose1d(2, 3, 3, rng=0)(np.zeros((1, 3, 5), dtype=np.float32))
    with pytest.raises(ValueError, match=r"in_features=4.*\(2, 5\)"):
        nn.Linear(4, 3, rng=0)(np.zeros((2, 5), dtype=np.float32))
    # errors of the functional ops carry the layer's description
    with pytest.raises(ValueError, match=r"^Conv2d\(3, 8, kernel_size=\(3, 3\).*"):
        layer(np.zeros((1, 3, 2, 2), dtype=np.float32))
    with pytest.raises(ValueError, match=r"^MaxPool2d\(kernel_size=\(2, 2\).*4-D"):
        nn.MaxPool2d(2)(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="bilinear.*4-D"):
        nn.Upsample(scale_factor=2, mode="bilinear")(np.zeros((1, 2, 3)))
    with pytest.raises(ValueError, match="PixelShuffle"):
        nn.PixelShuffle(2)(np.zeros((1, 3, 2, 2)))


def test_backward_before_forward_and_bad_grad_output():
    for layer in (nn.Conv2d(1, 1, 1, rng=0), nn.ReLU(), nn.Identity(), nn.MaxPool2d(2),
                  nn.Sequential(nn.ReLU()), nn.Concat(nn.Identity()), nn.Embedding(2, 2, rng=0)):
        with pytest.raises(RuntimeError, match="before forward"):
            layer.backward(np.zeros((1, 1, 2, 2)))
    for loss in (nn.MSELoss(), nn.L1Loss(), nn.CrossEntropyLoss()):
        with pytest.raises(RuntimeError, match="before forward"):
            loss.backward()
    relu = nn.ReLU()
    relu(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"grad_output must have the shape.*\(2, 3\)"):
        relu.backward(np.zeros((3, 2)))


def test_unpool_errors():
    pool = nn.MaxPool2d(2)
    unpool = nn.MaxUnpool2d(pool)
    with pytest.raises(RuntimeError, match="has not run"):
        unpool(np.zeros((1, 1, 2, 2)))
    pool(_distinct(1, 2, 4, 4))
    with pytest.raises(ValueError, match=r"\(1, 3, 2, 2\).*\(1, 2, 2, 2\)"):
        unpool(np.zeros((1, 3, 2, 2)))


def test_loss_argument_errors():
    ce = nn.CrossEntropyLoss()
    with pytest.raises(ValueError, match=r"target values must lie in \[0, 3\).*got 3"):
        ce(_randn(2, 3), np.array([0, 3]))
    with pytest.raises(ValueError, match=r"got -2"):
        ce(_randn(2, 3), np.array([0, -2]))
    with pytest.raises(ValueError, match=r"target shape \(2, 4\).*expected \(2, 5\)"):
        ce(_randn(2, 3, 5), np.zeros((2, 4), dtype=int))
    with pytest.raises(TypeError, match="integer"):
        ce(_randn(2, 3), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"\(N, C\)"):
        ce(_randn(3), np.array([0]))
    with pytest.raises(ValueError, match="weight has shape"):
        nn.CrossEntropyLoss(weight=np.ones(2))(_randn(2, 3), np.array([0, 1]))
    with pytest.raises(ValueError, match=r"MSELoss: target shape \(3,\).*\(2,\)"):
        nn.MSELoss()(_randn(2), _randn(3))
    with pytest.raises(TypeError, match="prediction"):
        nn.L1Loss()(np.array([1, 2]), np.array([1, 2]))


def test_embedding_input_errors():
    emb = nn.Embedding(4, 2, rng=0)
    with pytest.raises(ValueError, match=r"num_embeddings=4\), got 4"):
        emb(np.array([[0, 4]]))
    with pytest.raises(ValueError, match=r"got -1"):
        emb(np.array([[-1, 0]]))
    with pytest.raises(TypeError, match="integer"):
        emb(np.array([[0.0, 1.0]]))


def test_module_subclass_must_call_init_first():
    class Forgetful(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(np.ones(2))

    with pytest.raises(AttributeError, match="super"):
        Forgetful()
