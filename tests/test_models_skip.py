"""The skip family on real photographs (issue 15): grey held-out photographs denoised at
sigma = 25/255. Brief training improves the validation PSNR from its starting point (the
noisy input); every baseline is recomputed here with scipy / scikit-image directly."""

import io
import math

import numpy as np
import pytest

from deconv import models, nn, optim
from deconv.models import denoising, images, recipes
from deconv.train import Trainer


@pytest.fixture(scope="module")
def corpus():
    return denoising.denoising_corpus(count=48, patch_size=32)


def _psnr(a, b):
    """PSNR of one image, from its definition (values clipped to [0, 1] first)."""
    mse = np.mean((np.clip(np.asarray(a, np.float64), 0, 1) - np.asarray(b, np.float64)) ** 2)
    return 10 * math.log10(1 / mse)


def test_data_is_grey_noisy_and_split_by_image(corpus):
    assert corpus.names == images.VALIDATION
    assert corpus.train.x.shape == corpus.train.y.shape == (48, 1, 32, 32)
    assert corpus.train.x.dtype == np.float32
    # the grey level is full-range BT.601 luma, and a grey photograph is its own grey level
    rgb = images.load("astronaut", np.float64)
    luma = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    np.testing.assert_allclose(corpus.val.y[0][0], luma, atol=1e-6)
    np.testing.assert_allclose(corpus.val.y[3], images.load("camera"), atol=1e-6)
    for noisy, clean in zip(corpus.val.x, corpus.val.y):
        assert noisy.shape == clean.shape and clean.shape[-2] % 4 == 0 == clean.shape[-1] % 4
        noise = noisy.astype(np.float64) - clean
        assert abs(noise.std() - 25 / 255) < 0.002 and abs(noise.mean()) < 0.002
    noise = corpus.train.x.astype(np.float64) - corpus.train.y
    assert abs(noise.std() - 25 / 255) < 0.003
    assert corpus.val.y[2].shape == (1, 300, 448)                  # chelsea, modcropped
    # fixed seeds: the same noise every time, another seed other noise
    again = denoising.denoising_corpus(count=4, patch_size=32)
    np.testing.assert_array_equal(again.val.x[1], corpus.val.x[1])
    other = denoising.denoising_corpus(count=4, patch_size=32, seed=1)
    assert not np.array_equal(other.val.x[1], corpus.val.x[1])
    # every training patch lies in a training image (none is a validation image)
    assert not set(images.names(denoising.KINDS, split="train")) & set(images.VALIDATION)


def test_untrained_network_is_the_noisy_input_and_brief_training_improves_it(corpus):
    model = denoising.unet(channels=(8, 8, 8), rng=0)
    before = models.evaluate("skip", models.predict_images(model, corpus.val.x), corpus.val)
    noisy = models.evaluate("skip", corpus.val.x, corpus.val)
    assert before["psnr"] == pytest.approx(noisy["psnr"], abs=1e-4)
    trainer = Trainer(model, nn.MSELoss(), optim.Adam(model.parameters(), lr=3e-3),
                      batch_size=8, epochs=4, seed=0, progress="none")
    x_val, y_val = recipes.monitor_crops(corpus.val)
    history = trainer.fit(corpus.train.x, corpus.train.y, x_val, y_val)
    after = models.evaluate("skip", models.predict_images(model, corpus.val.x), corpus.val)
    assert history["val_metric"][-1] < history["val_metric"][0]
    assert after["psnr"] > noisy["psnr"] + 1.0, (noisy, after)


def test_evaluate_is_the_mean_psnr_of_the_images(corpus):
    pred = tuple(im + 0.01 for im in corpus.val.y)
    r = models.evaluate("skip", pred, corpus.val)
    expected = [_psnr(p, c) for p, c in zip(pred, corpus.val.y)]
    assert r["psnr_each"] == pytest.approx(expected)
    assert r["psnr"] == pytest.approx(np.mean(expected))
    assert r["mae"] == pytest.approx(np.mean([np.abs(np.clip(p, 0, 1) - c).mean()
                                              for p, c in zip(pred, corpus.val.y)]), rel=1e-5)


def test_baselines_are_the_oracle_best_of_each_filter(corpus):
    import scipy.ndimage
    import scipy.signal
    import skimage.restoration

    b = models.baseline("skip", corpus)
    assert list(b) == ["noisy input", "gaussian", "wiener", "tv"]
    noisy = [np.asarray(im, np.float64)[0] for im in corpus.val.x]
    clean = [im[0] for im in corpus.val.y]
    assert b["noisy input"]["psnr"] == pytest.approx(np.mean([_psnr(n, c) for n, c in
                                                              zip(noisy, clean)]))
    filters = {
        "gaussian": ("sigma", denoising.GAUSSIAN_SIGMAS, scipy.ndimage.gaussian_filter),
        "wiener": ("window", denoising.WIENER_WINDOWS, scipy.signal.wiener),
        "tv": ("weight", denoising.TV_WEIGHTS,
               lambda im, w: skimage.restoration.denoise_tv_chambolle(im, weight=w)),
    }
    for label, (param, grid, apply) in filters.items():
        scores = [np.mean([_psnr(apply(n, v), c) for n, c in zip(noisy, clean)]) for v in grid]
        best = int(np.argmax(scores))
        assert b[label][param] == grid[best], (label, scores)
        assert b[label]["psnr"] == pytest.approx(scores[best], abs=1e-9)
        assert 0 < best < len(grid) - 1, (label, scores)      # the optimum is inside the grid
    # the figures the target is measured against (CPython-independent data)
    assert 20.4 < b["noisy input"]["psnr"] < 20.6
    assert b["tv"]["psnr"] > max(b["gaussian"]["psnr"], b["wiener"]["psnr"])


def test_quick_run_prints_every_baseline_and_draws_the_figure(tmp_path):
    out = io.StringIO()
    result = recipes.run("skip", quick=True, epochs=1, out=str(tmp_path), progress="none",
                         stream=out)
    text = out.getvalue()
    for word in ("noisy input", "gaussian", "wiener", "tv", "astronaut", "camera"):
        assert word in text
    assert set(result["baselines"]) == {"noisy input", "gaussian", "wiener", "tv"}
    assert result["metrics"]["psnr"] > result["baselines"]["noisy input"]["psnr"]
    with open(result["figure"], "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
