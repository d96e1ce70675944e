"""deconv.models and deconv.metrics: every family's shapes, its gradcheck in
float64 together with its loss, a short training smoke run on its real data,
the metrics and the baselines."""

import math

import numpy as np
import pytest

from deconv import data, metrics, models, nn, optim
from deconv.gradcheck import gradcheck


SUPERRES = [(2, "deconv"), (2, "pixelshuffle"), (4, "deconv"), (4, "pixelshuffle")]


def _randn(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


# ---------------------------------------------------------------------------
# architectures: shapes and dtypes
# ---------------------------------------------------------------------------

def test_skip_shapes():
    net = models.skip(rng=0)
    assert isinstance(net, nn.Sequential) and isinstance(net[0], nn.Concat)
    assert isinstance(net[0][0], nn.Identity)
    x = np.zeros((3, 1, 8, 8), np.float32)
    assert net[0](x).shape == (3, 17, 8, 8)
    y = net(x)
    assert y.shape == (3, 1, 8, 8) and y.dtype == np.float32


def test_text_shapes():
    net = models.text(rng=0)
    idx = np.zeros((2, 64), np.int64)
    y = net(idx)
    assert y.shape == (2, data.VOCAB_SIZE, 64) and y.dtype == np.float32
    assert net[:2](idx).shape == (2, 32, 64)          # Permute to (N, D, L)
    with pytest.raises(ValueError, match="odd"):
        models.text(kernel_size=4)


def test_classifier_shapes():
    net = models.classifier(rng=0)
    x = np.zeros((5, 1, 8, 8), np.float32)
    assert net[:3](x).shape == (5, 16, 16, 16)        # the transposed conv doubles 8 -> 16
    assert net[:4](x).shape == (5, 16, 8, 8)
    assert net(x).shape == (5, 10)


@pytest.mark.parametrize("size", [32, 12, 9, 15])
def test_autoencoder_restores_the_input_size(size):
    net = models.autoencoder(image_size=size, channels=(4, 4, 4), rng=0)
    x = np.random.default_rng(0).random((2, 3, size, size)).astype(np.float32)
    y = net(x)
    assert y.shape == x.shape and y.dtype == np.float32
    assert 0 < y.min() and y.max() < 1                # sigmoid
    assert net[:6](x).shape[2:] == (math.ceil(size / 8),) * 2


@pytest.mark.parametrize("scale, upsample", SUPERRES)
@pytest.mark.parametrize("residual", [True, False])
def test_superres_shapes(scale, upsample, residual):
    net = models.superres(scale, upsample, residual, rng=0)
    y = net(np.zeros((2, 3, 8, 6), np.float32))
    assert y.shape == (2, 3, 8 * scale, 6 * scale) and y.dtype == np.float32


@pytest.mark.parametrize("scale, upsample", SUPERRES)
def test_untrained_residual_superres_is_bilinear(scale, upsample):
    import deconv

    x = np.random.default_rng(0).random((2, 3, 5, 7))
    net = models.superres(scale, upsample, dtype=np.float64, rng=0)
    np.testing.assert_allclose(net(x), deconv.upsample_bilinear2d(x, scale_factor=scale),
                               rtol=0, atol=1e-12)


def test_dtype_and_seed():
    for name in models.FAMILIES:
        a = models.build(name, rng=1)
        b = models.build(name, rng=1)
        c = models.build(name, dtype=np.float64, rng=1)
        assert [p.dtype for p in c.parameters()] == [np.float64] * len(c.parameters())
        for pa, pb, pc in zip(a.parameters(), b.parameters(), c.parameters()):
            assert pa.dtype == np.float32
            np.testing.assert_array_equal(pa.data, pb.data)
            np.testing.assert_array_equal(pa.data, pc.data.astype(np.float32))
    with pytest.raises(ValueError, match="unknown model family"):
        models.build("unet")


def test_losses():
    assert type(models.loss("skip")) is nn.MSELoss
    assert type(models.loss("autoencoder")) is nn.MSELoss
    assert type(models.loss("superres")) is nn.L1Loss
    assert type(models.loss("text")) is nn.CrossEntropyLoss
    assert type(models.loss("classifier")) is nn.CrossEntropyLoss


# ---------------------------------------------------------------------------
# gradcheck in float64, model and loss together
# ---------------------------------------------------------------------------

def _unzero(net, seed=0):
    """Give zero-initialised parameters (the residual superres's last layer) random values, so
    that gradients flow into every layer and the check is not trivially 0 == 0."""
    rng = np.random.default_rng(seed)
    for p in net.parameters():
        if not p.data.any():
            p.data[...] = 0.3 * rng.standard_normal(p.shape)
    return net


def _gradcheck_cases():
    rng = np.random.default_rng(0)
    yield "skip", models.skip(rng=0), _randn(2, 1, 8, 8), rng.random((2, 1, 8, 8))
    yield ("classifier", models.classifier(rng=0), _randn(3, 1, 8, 8),
           rng.integers(0, 10, size=3))
    yield ("text", models.text(rng=0), rng.integers(0, data.VOCAB_SIZE, size=(2, 12)),
           rng.integers(0, data.VOCAB_SIZE, size=(2, 12)))
    yield ("autoencoder", models.autoencoder(image_size=8, channels=(4, 6, 8), rng=0),
           rng.random((2, 3, 8, 8)), rng.random((2, 3, 8, 8)))
    yield ("autoencoder", models.autoencoder(image_size=9, channels=(4, 6, 8), rng=0),
           rng.random((1, 3, 9, 9)), rng.random((1, 3, 9, 9)))
    for scale, upsample in SUPERRES:
        yield ("superres", _unzero(models.superres(scale, upsample, rng=0)),
               rng.random((1, 3, 3, 4)), rng.random((1, 3, 3 * scale, 4 * scale)))
    yield ("superres", models.superres(2, "deconv", residual=False, rng=0),
           rng.random((1, 3, 3, 4)), rng.random((1, 3, 6, 8)))


GRADCHECK_CASES = list(_gradcheck_cases())


@pytest.mark.parametrize("name, net, x, target", GRADCHECK_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(GRADCHECK_CASES)])
def test_gradcheck(name, net, x, target):
    report = gradcheck(net, x, target, loss=models.loss(name), max_full_size=64,
                       n_directions=3)
    report.assert_passed()
    n_params = len(net.parameters())
    assert len(report.checks) == n_params + (name != "text")     # int indices: no input check
    assert all(p.dtype == np.float32 for p in net.parameters())   # restored


# ---------------------------------------------------------------------------
# each family learns on a small batch of its real data
# ---------------------------------------------------------------------------

def _batch(name, scale=2):
    if name == "skip":
        return data.digits_denoising().train[:2]
    if name == "classifier":
        return data.digits().train[:2]
    if name == "autoencoder":
        return data.patches(stride=32).train[:2]
    if name == "superres":
        return data.superres(scale, stride=32).train[:2]
    return data.text().train[:2]


# the residual super-resolution network starts as bilinear upsampling: its loss is already low and
# falls only slowly (checked with a gentle step, and for any decrease); from scratch it falls fast
SMOKE = [("skip", {}), ("classifier", {}), ("text", {}), ("autoencoder", {})] + [
    ("superres", {"scale": s, "upsample": u, "residual": False}) for s, u in SUPERRES] + [
    ("superres", {"scale": s, "upsample": u, "residual": True}) for s, u in SUPERRES]


@pytest.mark.parametrize("name, kwargs", SMOKE,
                         ids=[n + "".join(f"-{v}" for v in k.values()) for n, k in SMOKE])
def test_loss_decreases_on_real_data(name, kwargs):
    """20 Adam steps on 32 examples of the family's training data (a smoke check)."""
    x, y = _batch(name, kwargs.get("scale", 2))
    pick = np.random.default_rng(0).permutation(len(x))[:32]
    x, y = x[pick], y[pick]
    net = models.build(name, rng=0, **kwargs)
    loss = models.loss(name)
    residual = kwargs.get("residual", False)
    opt = optim.Adam(net.parameters(), lr=3e-4 if residual else 3e-3)
    losses = []
    for _ in range(20):
        losses.append(loss(net(x), y))
        opt.zero_grad()
        net.backward(loss.backward())
        opt.step()
    final = loss(net(x), y)
    assert all(np.isfinite(losses)) and np.isfinite(final)
    assert final < (0.9995 if residual else 0.9) * losses[0], losses + [final]


# ---------------------------------------------------------------------------
# metrics and baselines
# ---------------------------------------------------------------------------

def test_metrics():
    a = np.zeros((2, 3), np.float32)
    b = np.full((2, 3), 0.1, np.float32)
    assert metrics.mse(a, b) == pytest.approx(0.01)
    assert metrics.psnr(a, b) == pytest.approx(20.0)
    assert metrics.psnr(a, b, data_range=255) == pytest.approx(20 + 20 * math.log10(255))
    assert metrics.psnr(a, a) == math.inf
    assert metrics.mae(a, b) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="shape"):
        metrics.mae(a, b[:1])
    logits = np.zeros((2, 3, 4))
    logits[0, 1] = 1                                  # example 0 predicts class 1 everywhere
    target = np.array([[1, 1, 0, 2], [0, 0, 0, 1]])   # example 1 predicts class 0 (first max)
    assert metrics.accuracy(logits, target) == 5 / 8
    assert metrics.accuracy(np.argmax(logits, axis=1), target) == 5 / 8
    mask = np.array([[True, False, True, False], [False] * 4])
    assert metrics.accuracy(logits, target, mask) == 0.5
    assert math.isnan(metrics.accuracy(logits, target, np.zeros_like(mask)))
    with pytest.raises(ValueError):
        metrics.accuracy(logits[:, :, :2], target)


def test_evaluate():
    split = data.Split(np.zeros((2, 1, 2, 2)), np.full((2, 1, 2, 2), 0.5))
    r = models.evaluate("skip", np.full((2, 1, 2, 2), 2.0), split)   # clipped to 1 first
    assert r == {"psnr": pytest.approx(10 * math.log10(4)), "mae": 0.5}
    logits = np.eye(3)[[0, 2]]                                        # predicts 0, 2
    assert models.evaluate("classifier", logits, data.Split(None, np.array([0, 1]))) == {
        "accuracy": 0.5}


def test_text_baselines():
    ds = data.text()
    b = models.baseline("text", ds)
    assert b["copy input"] == {"accuracy_corrupted": 0.0, "accuracy": 1 - 10 / 64}
    mf = b["most frequent character"]["accuracy_corrupted"]
    assert 0.1 < mf < 0.3                              # the space


def test_image_baselines():
    digits = data.digits()
    assert 0.08 < models.baseline("classifier", digits)["majority class"]["accuracy"] < 0.12
    noisy = models.baseline("skip", data.digits_denoising())["noisy input"]
    assert 12 < noisy["psnr"] < 14 and 0.1 < noisy["mae"] < 0.2
    sr2 = data.superres(2, stride=32)
    b2 = models.baseline("superres", sr2)
    assert set(b2) == {"nearest", "bilinear"}
    b4 = models.baseline("superres", data.superres(4, stride=32))
    assert b4["bilinear"]["psnr"] < b2["bilinear"]["psnr"]             # x4 is harder
    import deconv

    expected = models.evaluate("superres", deconv.upsample_bilinear2d(sr2.val.x, scale_factor=2),
                               sr2.val)
    assert b2["bilinear"] == expected
    ae = models.baseline("autoencoder", data.patches(stride=32))
    assert set(ae) == {"nearest x8", "bilinear x8"}
    assert set(models.baseline("autoencoder", data.patches(stride=32), factor=4)) == {
        "nearest x4", "bilinear x4"}
