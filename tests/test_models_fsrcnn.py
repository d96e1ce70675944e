"""deconv.models.fsrcnn, the network of ``deconv train superres``: FSRCNN layers on the
luminance, fully convolutional, starting as bicubic upsampling; gradcheck in float64 with
its loss; a smoke run on the image corpus."""

import numpy as np
import pytest

import deconv
from deconv import data, models, nn, optim
from deconv.gradcheck import gradcheck


SUPERRES = [(2, "deconv"), (2, "pixelshuffle"), (4, "deconv"), (4, "pixelshuffle")]


@pytest.mark.parametrize("scale, upsample", SUPERRES)
@pytest.mark.parametrize("residual", [True, False])
def test_shapes_any_size(scale, upsample, residual):
    net = models.fsrcnn(scale, upsample, residual, rng=0)
    y = net(np.zeros((2, 1, 8, 6), np.float32))
    assert y.shape == (2, 1, 8 * scale, 6 * scale) and y.dtype == np.float32
    assert net(np.zeros((1, 1, 13, 5), np.float32)).shape == (1, 1, 13 * scale, 5 * scale)
    rgb = models.fsrcnn(scale, upsample, residual, in_channels=3, mapping=1, rng=0)
    assert rgb(np.zeros((1, 3, 5, 7), np.float32)).shape == (1, 3, 5 * scale, 7 * scale)


def test_layers_are_fsrcnn():
    body = models.fsrcnn(2, "deconv", residual=False, channels=(20, 6), mapping=2, rng=0)
    convs = [m for m in body if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    assert [c.weight.shape for c in convs] == [
        (20, 1, 5, 5), (6, 20, 1, 1), (6, 6, 3, 3), (6, 6, 3, 3), (20, 6, 1, 1), (20, 1, 9, 9)]
    assert isinstance(convs[-1], nn.ConvTranspose2d) and convs[-1].stride == (2, 2)
    assert sum(isinstance(m, nn.PReLU) for m in body) == 5
    shuffle = models.fsrcnn(4, "pixelshuffle", residual=False, rng=0)
    assert isinstance(shuffle[-1], nn.PixelShuffle) and shuffle[-2].weight.shape[0] == 16


@pytest.mark.parametrize("scale, upsample", SUPERRES)
def test_untrained_residual_network_is_bicubic(scale, upsample):
    x = np.random.default_rng(0).random((2, 1, 5, 7))
    net = models.fsrcnn(scale, upsample, dtype=np.float64, rng=0)
    np.testing.assert_allclose(net(x), deconv.interpolate(x, scale_factor=scale, mode="bicubic"),
                               rtol=0, atol=1e-12)


def test_seeded_and_dtype():
    a, b = models.fsrcnn(rng=3), models.fsrcnn(rng=3)
    c = models.fsrcnn(rng=3, dtype=np.float64)
    for pa, pb, pc in zip(a.parameters(), b.parameters(), c.parameters()):
        np.testing.assert_array_equal(pa.data, pb.data)
        assert pa.dtype == np.float32 and pc.dtype == np.float64
    assert type(models.fsrcnn_loss()) is nn.MSELoss
    with pytest.raises(ValueError, match="upsample"):
        models.fsrcnn(upsample="nearest")


def _unzero(net, seed=0):
    """Random values for the zero-initialised last layer, so that every gradient is nonzero."""
    rng = np.random.default_rng(seed)
    for p in net.parameters():
        if not p.data.any():
            p.data[...] = 0.3 * rng.standard_normal(p.shape)
    return net


@pytest.mark.parametrize("scale, upsample", SUPERRES)
def test_gradcheck(scale, upsample):
    rng = np.random.default_rng(scale)
    net = _unzero(models.fsrcnn(scale, upsample, channels=(6, 4), mapping=1, rng=0))
    x, y = rng.random((1, 1, 3, 4)), rng.random((1, 1, 3 * scale, 4 * scale))
    report = gradcheck(net, x, y, loss=models.fsrcnn_loss(), max_full_size=64, n_directions=3)
    report.assert_passed()
    assert len(report.checks) == len(net.parameters()) + 1


@pytest.mark.parametrize("scale, upsample", SUPERRES)
def test_loss_decreases_on_the_image_corpus(scale, upsample):
    """20 gentle Adam steps on 32 patches (Adam's first steps move the zero-initialised last
    layer by lr per weight: a larger lr jumps up before it comes down)."""
    x, y = data.superres_corpus(scale, count=32).train[:2]
    net = models.fsrcnn(scale, upsample, rng=0)
    loss = models.fsrcnn_loss()
    opt = optim.Adam(net.parameters(), lr=1e-4)
    losses = []
    for _ in range(20):
        losses.append(loss(net(x), y))
        opt.zero_grad()
        net.backward(loss.backward())
        opt.step()
    final = loss(net(x), y)
    assert np.isfinite(losses).all() and final < 0.9998 * losses[0], losses + [final]
