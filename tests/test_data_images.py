"""The image corpus (deconv.models.images), the super-resolution data made from it, the
luminance PSNR and the super-resolution baselines: fixed splits, offline loading, the
downscaling checked against Pillow, the metric against a hand computation."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

import deconv
from deconv import data, metrics, models
from deconv.models import images


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def every_image():
    return {name: images.load(name, np.float64) for name in images.names()}


@pytest.fixture(scope="module")
def sr2():
    return data.superres_corpus(2, count=256)


# ---------------------------------------------------------------------------
# the catalogue and its split
# ---------------------------------------------------------------------------

def test_validation_names_are_exactly_the_issues():
    assert images.VALIDATION == ("astronaut", "coffee", "chelsea", "camera")
    assert images.names(split="val") == images.VALIDATION
    assert data.superres_corpus(2, count=1).names == images.VALIDATION


def test_no_image_on_both_sides():
    for kinds in [images.KINDS, ("photograph",), ("photograph", "texture")]:
        train = images.names(kinds, split="train")
        assert set(train).isdisjoint(images.VALIDATION)
        assert train  # something trains
    every = images.names()
    assert len(every) == len(set(every)) == len(images.CATALOGUE)
    assert set(images.names(split="train")) | set(images.VALIDATION) == set(every)


def test_no_training_image_is_a_validation_image_under_another_name(every_image):
    # the bundles repeat pictures (scikit-image's cat is chelsea, PyWavelets' camera is
    # scikit-image's): no training image may correlate with a validation image
    for name in images.names(split="train"):
        a = every_image[name]
        for v in images.VALIDATION:
            b = every_image[v]
            if a.shape[1:] == b.shape[1:]:
                ga, gb = a.mean(axis=0).ravel(), b.mean(axis=0).ravel()
                assert abs(np.corrcoef(ga, gb)[0, 1]) < 0.9, (name, v)


def test_duplicates_left_out_are_duplicates():
    import pywt.data
    import skimage.data

    np.testing.assert_array_equal(skimage.data.cat(), skimage.data.chelsea())
    cam = pywt.data.camera().astype(np.float64)
    assert np.corrcoef(cam.ravel(), skimage.data.camera().ravel())[0, 1] > 0.999


def test_images_load_as_documented(every_image):
    kinds = {e.name: e.kind for e in images.CATALOGUE}
    assert set(kinds.values()) == set(images.KINDS)
    assert images.names("texture") == ("brick", "grass", "gravel")
    for name, im in every_image.items():
        assert im.dtype == np.float64 and im.ndim == 3 and im.shape[0] in (1, 3), name
        assert 0 <= im.min() and im.max() <= 1, name
        assert min(im.shape[1:]) >= 100, name
        np.testing.assert_array_equal(np.round(im * 255), im * 255)      # 8-bit levels
    assert every_image["astronaut"].shape == (3, 512, 512)
    assert every_image["camera"].shape == (1, 512, 512)
    assert every_image["mri"].shape == (1, 256, 256)
    assert images.load("coffee").dtype == np.float32
    with pytest.raises(ValueError, match="unknown image 'lena'"):
        images.load("lena")
    with pytest.raises(ValueError, match="kinds"):
        images.names("drawing")


def test_everything_loads_with_the_network_impossible(tmp_path):
    """Every image and the text corpus, in a fresh interpreter without pooch, without sockets
    and with empty cache and home directories: nothing can be fetched."""
    code = r"""
import json, socket, sys
sys.modules["pooch"] = None
def refuse(*args, **kwargs):
    raise OSError("network access attempted")
socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse
from deconv.models import images, corpus
shapes = {n: images.load(n).shape for n in images.names()}
train, val = corpus.stdlib_text()
print(json.dumps({"shapes": shapes, "text": [len(train), len(val)]}))
"""
    env = dict(os.environ, PYTHONPATH=ROOT, HOME=str(tmp_path), XDG_CACHE_HOME=str(tmp_path),
               SKIMAGE_DATADIR=str(tmp_path / "skimage"))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          cwd=str(tmp_path), timeout=300)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(out["shapes"]) == set(images.names())
    assert out["text"][0] > 5_000_000 and out["text"][1] > 100_000
    # nothing was fetched into the empty home, cache or data directories
    assert not [f for f in tmp_path.rglob("*") if f.is_file()]


# ---------------------------------------------------------------------------
# luminance, modcrop, patch positions, symmetries
# ---------------------------------------------------------------------------

def test_luminance_by_hand():
    rgb = np.array([[[1.0, 0.0]], [[0.0, 0.5]], [[0.0, 0.25]]])          # (3, 1, 2)
    y = images.luminance(rgb)
    assert y.shape == (1, 1, 2)
    assert y[0, 0, 0] == pytest.approx((16 + 65.481) / 255, abs=1e-12)
    assert y[0, 0, 1] == pytest.approx((16 + 128.553 * 0.5 + 24.966 * 0.25) / 255, abs=1e-12)
    grey = np.array([[[0.0, 1.0, 0.5]]])
    np.testing.assert_allclose(images.luminance(grey)[0, 0], [16 / 255, 235 / 255,
                                                              (16 + 219 * 0.5) / 255])
    # a grey picture stored as RGB has the same luminance as stored as grey
    np.testing.assert_allclose(images.luminance(np.repeat(grey, 3, axis=0)),
                               images.luminance(grey), atol=1e-12)
    batch = np.random.default_rng(0).random((2, 3, 4, 5)).astype(np.float32)
    yb = images.luminance(batch)
    assert yb.shape == (2, 1, 4, 5) and yb.dtype == np.float32
    np.testing.assert_allclose(yb[1], images.luminance(batch[1]), rtol=1e-6)
    with pytest.raises(ValueError, match="C = 1 or 3"):
        images.luminance(np.zeros((2, 4, 4)))


def test_modcrop_keeps_the_top_left():
    a = np.arange(7 * 10).reshape(1, 7, 10)
    np.testing.assert_array_equal(images.modcrop(a, 4), a[:, :4, :8])
    assert images.modcrop(a, 1).shape == a.shape
    with pytest.raises(ValueError):
        images.modcrop(a, 8)


def test_sample_positions_are_seeded_in_bounds_and_spread_by_area():
    sizes = [(30, 40), (100, 100), (16, 16)]
    p = images.sample_positions(sizes, 20000, 16, seed=3)
    np.testing.assert_array_equal(p, images.sample_positions(sizes, 20000, 16, seed=3))
    assert not np.array_equal(p, images.sample_positions(sizes, 20000, 16, seed=4))
    which, rows, cols, sym = p.T
    h = np.array([s[0] for s in sizes])[which]
    w = np.array([s[1] for s in sizes])[which]
    assert (rows >= 0).all() and (rows + 16 <= h).all()
    assert (cols >= 0).all() and (cols + 16 <= w).all()
    assert set(sym) == set(range(8))
    # each image is chosen in proportion to its count of positions (15*25, 85*85, 1)
    counts = np.array([15 * 25, 85 * 85, 1])
    share = np.bincount(which, minlength=3) / len(which)
    np.testing.assert_allclose(share, counts / counts.sum(), atol=0.01)
    with pytest.raises(ValueError, match="does not fit"):
        images.sample_positions(sizes, 1, 17, seed=0)


def test_dihedral_gives_the_eight_symmetries():
    a = np.arange(9).reshape(3, 3)
    outs = {images.dihedral(a, d).tobytes() for d in range(8)}
    assert len(outs) == 8
    np.testing.assert_array_equal(images.dihedral(a, 0), a)
    np.testing.assert_array_equal(images.dihedral(a, 4), a[:, ::-1])


# ---------------------------------------------------------------------------
# the low-resolution inputs: deconv.interpolate(bicubic, antialias) against Pillow
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["camera", "coins", "astronaut"])
@pytest.mark.parametrize("scale", [2, 4])
def test_downscale_agrees_with_pillow_bicubic(name, scale):
    from PIL import Image

    img = images.modcrop(images.load(name, np.float64), scale)
    C, H, W = img.shape
    ours = data.downscale(img, scale)
    assert ours.shape == (C, H // scale, W // scale)
    size, worst_float, worst_8bit, mean_8bit = (W // scale, H // scale), 0.0, 0, 0.0
    for c in range(C):
        # Pillow's float mode runs the same filter without rounding: agreement to float32
        pil = np.asarray(Image.fromarray(img[c].astype(np.float32), mode="F").resize(
            size, Image.BICUBIC, reducing_gap=None))
        worst_float = max(worst_float, float(np.abs(ours[c] - pil).max()))
        # its 8-bit mode rounds between the two passes: agreement to a few grey levels
        pil8 = np.asarray(Image.fromarray(np.round(img[c] * 255).astype(np.uint8)).resize(
            size, Image.BICUBIC, reducing_gap=None)).astype(np.int64)
        ours8 = np.clip(np.round(ours[c] * 255), 0, 255).astype(np.int64)
        worst_8bit = max(worst_8bit, int(np.abs(ours8 - pil8).max()))
        mean_8bit = max(mean_8bit, float(np.abs(ours[c] * 255 - pil8).mean()))
    assert worst_float < 1e-6
    assert worst_8bit <= 6 and mean_8bit < 0.5


def test_downscale_checks_and_keeps_the_dtype():
    x = np.random.default_rng(0).random((2, 1, 8, 12)).astype(np.float32)
    out = data.downscale(x, 4)
    assert out.shape == (2, 1, 2, 3) and out.dtype == np.float32
    np.testing.assert_array_equal(out[1], data.downscale(x[1], 4))
    with pytest.raises(ValueError, match="multiples of scale=3"):
        data.downscale(x, 3)


# ---------------------------------------------------------------------------
# super-resolution data
# ---------------------------------------------------------------------------

def test_superres_dataset_shapes(sr2):
    assert sr2.train.x.shape == (256, 1, 24, 24) and sr2.train.x.dtype == np.float32
    assert sr2.train.y.shape == (256, 1, 48, 48)
    assert isinstance(sr2.val.x, tuple) and len(sr2.val.x) == len(sr2.val.y) == 4
    for name, lo, hi in zip(sr2.names, sr2.val.x, sr2.val.y):
        full = images.load(name)
        assert hi.shape == (1, full.shape[1] // 2 * 2, full.shape[2] // 2 * 2)
        assert lo.shape == (1, hi.shape[1] // 2, hi.shape[2] // 2)
        np.testing.assert_allclose(hi, images.modcrop(images.luminance(full), 2), atol=1e-6)
    four = data.superres_corpus(4, count=8, patch_size=10)
    assert four.train.x.shape == (8, 1, 10, 10) and four.train.y.shape == (8, 1, 40, 40)
    assert four.val.y[2].shape == (1, 300, 448)                   # chelsea 300x451, cut to 448


def test_superres_patches_are_windows_of_the_downscaled_training_images(sr2):
    train_names = images.names(data.SUPERRES_KINDS, split="train")
    pairs = [data.superres_pair(images.load(n, np.float64), 2) for n in train_names]
    positions = images.sample_positions([lo.shape[-2:] for lo, _ in pairs], 256, 24, seed=0)
    for k in [0, 1, 77, 255]:
        i, row, col, sym = positions[k]
        lo, hi = pairs[i]
        np.testing.assert_allclose(
            sr2.train.x[k], images.dihedral(lo[:, row:row + 24, col:col + 24], sym), atol=1e-6)
        np.testing.assert_allclose(
            sr2.train.y[k], images.dihedral(hi[:, 2 * row:2 * row + 48, 2 * col:2 * col + 48],
                                            sym), atol=1e-6)


def test_superres_training_patches_never_come_from_validation_images(monkeypatch):
    # every image filled with its own catalogue position: the patches tell where they came from
    order = {name: i for i, name in enumerate(images.names())}
    monkeypatch.setattr(images, "load", lambda name, dtype=np.float32:
                        np.full((1, 200, 200), order[name] / 100.0, dtype=dtype))
    ds = data.superres_corpus(2, count=500, kinds=images.KINDS)
    grey = np.round((ds.train.y * 255 - 16) / 219 * 100).astype(int)   # back from luminance
    found = {images.names()[i] for i in np.unique(grey)}
    assert found.isdisjoint(images.VALIDATION)
    assert found == set(images.names(split="train"))
    for v, hi in zip(ds.names, ds.val.y):
        assert round(float((hi[0, 0, 0] * 255 - 16) / 219 * 100)) == order[v]


def test_superres_is_deterministic(sr2):
    again = data.superres_corpus(2, count=256)
    np.testing.assert_array_equal(again.train.x, sr2.train.x)
    np.testing.assert_array_equal(again.train.y, sr2.train.y)
    for a, b in zip(again.val.y, sr2.val.y):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(data.superres_corpus(2, count=256, seed=1).train.x, sr2.train.x)


# ---------------------------------------------------------------------------
# PSNR on the luminance with the border cropped, and the baselines
# ---------------------------------------------------------------------------

def _psnr_by_hand(pred_rgb, true_rgb, border):
    """Per pixel: Y = (16 + 65.481 R + 128.553 G + 24.966 B) / 255, then the MSE over the
    pixels at least ``border`` away from the edges, then 10 log10(1 / MSE)."""
    C, H, W = true_rgb.shape
    total, n = 0.0, 0
    for i in range(border, H - border):
        for j in range(border, W - border):
            ys = []
            for im in (pred_rgb, true_rgb):
                r, g, b = (float(im[c, i, j]) for c in range(3))
                ys.append((16 + 65.481 * r + 128.553 * g + 24.966 * b) / 255)
            total += (ys[0] - ys[1]) ** 2
            n += 1
    return 10 * math.log10(1 / (total / n))


@pytest.mark.parametrize("border", [0, 2, 4])
def test_psnr_y_against_a_hand_computation(border):
    rng = np.random.default_rng(border)
    truth = rng.random((3, 13, 11))
    pred = np.clip(truth + 0.05 * rng.standard_normal(truth.shape), 0, 1)
    assert metrics.psnr_y(pred, truth, border) == pytest.approx(
        _psnr_by_hand(pred, truth, border), rel=1e-12)
    # one channel is taken as Y already
    y_true, y_pred = images.luminance(truth), images.luminance(pred)
    assert metrics.psnr_y(y_pred, y_true, border) == pytest.approx(
        metrics.psnr_y(pred, truth, border), rel=1e-12)
    with pytest.raises(ValueError, match="leaves nothing"):
        metrics.psnr_y(pred, truth, 6)


def test_superres_evaluate_is_the_mean_of_the_per_image_cropped_psnr():
    rng = np.random.default_rng(0)
    lows = (rng.random((1, 5, 6)), rng.random((1, 7, 4)))
    highs = tuple(rng.random((1, 2 * lo.shape[1], 2 * lo.shape[2])) for lo in lows)
    split = data.Split(lows, highs)
    preds = tuple(h + 0.1 * rng.standard_normal(h.shape) for h in highs)
    got = models.evaluate("superres", preds, split)
    each = []
    for p, h in zip(preds, highs):
        d = (np.clip(p, 0, 1) - h)[0, 2:-2, 2:-2]            # clipped, border 2 = scale
        each.append(10 * math.log10(1 / np.mean(d ** 2)))
    assert got["psnr_each"] == pytest.approx(each, rel=1e-12)
    assert got["psnr"] == pytest.approx(np.mean(each), rel=1e-12)


def test_superres_baselines_are_interpolation_of_each_whole_image(sr2):
    b = models.baseline("superres", sr2)
    assert list(b) == ["nearest", "bilinear", "bicubic"]
    for label in b:
        expected = []
        for lo, hi in zip(sr2.val.x, sr2.val.y):
            up = deconv.interpolate(lo[None].astype(np.float64), scale_factor=2, mode=label)[0]
            d = (np.clip(up, 0, 1) - hi)[0, 2:-2, 2:-2]
            expected.append(10 * math.log10(1 / np.mean(d.astype(np.float64) ** 2)))
        assert b[label]["psnr_each"] == pytest.approx(expected, abs=1e-4)
    # the order every paper reports, on every image
    for i in range(4):
        assert (b["nearest"]["psnr_each"][i] < b["bilinear"]["psnr_each"][i]
                < b["bicubic"]["psnr_each"][i])
    # the measured values (float32 data): x2 bicubic 32.38 dB on these four images
    assert b["bicubic"]["psnr"] == pytest.approx(32.38, abs=0.01)
