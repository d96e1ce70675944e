"""The colour-patch autoencoder (deconv.models.compression): a by-image split, a code of as
many numbers as the baselines keep, the baselines computed as stated (checked against
scikit-learn's PCA and scikit-image's resize), and brief training that improves the
held-out PSNR."""

import numpy as np
import pytest

from deconv import models, optim
from deconv.models import compression, images
from deconv.train import Trainer


@pytest.fixture(scope="module")
def small():
    """16x16 patches: 2 x 2 codes of 3 channels, 12 numbers; a 12-component PCA."""
    return compression.colour_patches(count=384, patch_size=16)


def test_split_is_by_image_and_colour_only():
    assert not set(compression.TRAIN_IMAGES) & set(images.VALIDATION)
    assert set(compression.VALIDATION_IMAGES) == set(images.VALIDATION) - {"camera"}
    for name in compression.TRAIN_IMAGES + compression.VALIDATION_IMAGES:
        assert images.load(name).shape[0] == 3
    assert set(compression.TRAIN_IMAGES) <= set(images.names("photograph", split="train"))


def test_validation_patches_are_the_grid_of_the_held_out_images(small):
    expected = []
    for name in compression.VALIDATION_IMAGES:
        im = images.load(name)
        H, W = im.shape[-2:]
        expected += [im[:, r:r + 16, c:c + 16] for r in range(0, H - 15, 16)
                     for c in range(0, W - 15, 16)]
    np.testing.assert_array_equal(small.val.x, np.stack(expected))
    assert small.train.x.shape == (384, 3, 16, 16) and small.components.shape == (12, 768)


def test_code_holds_as_many_numbers_as_each_baseline():
    net = compression.patch_autoencoder(channels=(4, 4), rng=0)
    assert compression.code_values(net, 32) == 48 == 3 * (32 // 8) ** 2
    assert len(compression.colour_patches(count=64, patch_size=8).components) == 3


def test_principal_components_match_scikit_learn():
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(3)
    x = (rng.standard_normal((800, 120)) * np.arange(1, 121) ** -1.0) @ \
        np.linalg.qr(rng.standard_normal((120, 120)))[0]
    mean, V = compression.principal_components(x, 10)
    pca = PCA(10, svd_solver="full").fit(x)
    np.testing.assert_allclose(mean, pca.mean_, atol=1e-12)
    np.testing.assert_allclose(np.abs(V @ pca.components_.T), np.eye(10), atol=1e-8)
    np.testing.assert_allclose(mean + ((x - mean) @ V.T) @ V,
                               pca.inverse_transform(pca.transform(x)), atol=1e-8)


def test_baselines_are_computed_as_stated(small):
    from sklearn.decomposition import PCA
    from skimage.transform import resize

    val = small.val.x.astype(np.float64)
    got = models.baseline("autoencoder", small)
    assert set(got) == {"bilinear from 2x2", "PCA (12 components)"}

    def measured(pred):
        p = np.clip(pred, 0, 1)
        return {"psnr": 10 * np.log10(1 / np.mean((p - val) ** 2)),
                "mae": np.mean(np.abs(p - val))}

    # box means of the 8x8 blocks, then half-pixel bilinear with clamped edges (skimage, order 1)
    low = val.reshape(len(val), 3, 2, 8, 2, 8).mean(axis=(3, 5))
    bilinear = np.stack([resize(im, (3, 16, 16), order=1, mode="edge", anti_aliasing=False)
                         for im in low])
    train = small.train.x.reshape(len(small.train), -1).astype(np.float64)
    pca = PCA(12, svd_solver="full").fit(train)
    projected = pca.inverse_transform(pca.transform(val.reshape(len(val), -1))).reshape(val.shape)
    for label, pred in (("bilinear from 2x2", bilinear), ("PCA (12 components)", projected)):
        expected = measured(pred)
        assert got[label]["psnr"] == pytest.approx(expected["psnr"], abs=1e-4), label
        assert got[label]["mae"] == pytest.approx(expected["mae"], abs=1e-6), label
    assert got["PCA (12 components)"]["psnr"] > got["bilinear from 2x2"]["psnr"]


def test_brief_training_improves_the_held_out_psnr(small):
    net = compression.patch_autoencoder(channels=(8, 8), kernel_size=3, rng=0)
    trainer = Trainer(net, models.loss("autoencoder"), optim.Adam(net.parameters(), lr=3e-3),
                      batch_size=32, epochs=4, seed=0, progress="none")
    before = models.evaluate("autoencoder", trainer.predict(small.val.x), small.val)
    history = trainer.fit(small.train.x, small.train.y, small.val.x, small.val.y)
    after = models.evaluate("autoencoder", trainer.predict(small.val.x), small.val)
    assert history["val_metric"][-1] < history["val_metric"][0]
    assert after["psnr"] > before["psnr"] + 3 and after["mae"] < before["mae"], (before, after)


def test_figure_is_a_png(small, tmp_path):
    path = compression.figure(small, small.val.x, str(tmp_path / "samples.png"))
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("weight", [0.0, 0.1, 2.5])
def test_squared_plus_absolute_error_is_the_stated_sum(weight):
    rng = np.random.default_rng(1)
    p = rng.standard_normal((3, 2, 4, 5))
    t = rng.standard_normal((3, 2, 4, 5))
    loss = compression.SquaredPlusAbsoluteError(weight)
    e = p - t
    assert loss(p, t) == pytest.approx(np.mean(e ** 2) + weight * np.mean(np.abs(e)), rel=1e-12)
    np.testing.assert_allclose(loss.backward(), (2 * e + weight * np.sign(e)) / e.size,
                               rtol=1e-12)


def test_squared_plus_absolute_error_gradient_matches_central_differences():
    rng = np.random.default_rng(2)
    p = rng.standard_normal((2, 3, 3, 3))
    t = p + rng.choice([-1, 1], p.shape) * rng.uniform(0.05, 1.0, p.shape)   # no |e| near 0
    loss = compression.SquaredPlusAbsoluteError(0.3)
    loss(p, t)
    grad = loss.backward()
    h = 1e-6
    numeric = np.empty_like(p)
    for i in np.ndindex(p.shape):
        up, down = p.copy(), p.copy()
        up[i] += h
        down[i] -= h
        numeric[i] = (loss(up, t) - loss(down, t)) / (2 * h)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-10)


def test_squared_plus_absolute_error_keeps_float32_and_refuses_a_negative_weight():
    p = np.linspace(0, 1, 12, dtype=np.float32).reshape(1, 3, 2, 2)
    loss = compression.patch_loss()
    assert loss.l1_weight == compression.L1_WEIGHT
    loss(p, np.zeros_like(p))
    assert loss.backward().dtype == np.float32
    with pytest.raises(ValueError, match="l1_weight"):
        compression.SquaredPlusAbsoluteError(-0.1)
