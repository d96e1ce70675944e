"""deconv.data: shapes, dtypes, ranges, determinism, disjoint splits, the text
vocabulary and corruption, and the clear error without scikit-learn."""

import sys

import numpy as np
import pytest

from deconv import data



@pytest.fixture(scope="module")
def digits():
    return data.digits()


@pytest.fixture(scope="module")
def denoising():
    return data.digits_denoising()


@pytest.fixture(scope="module")
def text():
    return data.text()


def _assert_equal_datasets(a, b):
    for sa, sb in zip(a, b):
        for fa, fb in zip(sa, sb):
            if fa is None:
                assert fb is None
            else:
                assert fa.dtype == fb.dtype
                np.testing.assert_array_equal(fa, fb)


# ---------------------------------------------------------------------------
# digits
# ---------------------------------------------------------------------------

def test_digits_shapes_dtypes_ranges(digits):
    train, val = digits
    assert (len(train), len(val)) == (1437, 360)
    for s in digits:
        assert s.x.shape == (len(s), 1, 8, 8) and s.x.dtype == np.float32
        assert s.y.shape == (len(s),) and s.y.dtype == np.int64
        assert s.mask is None
        assert s.x.min() == 0.0 and s.x.max() == 1.0
        assert set(np.unique(s.y)) == set(range(10))
        # grey levels 0..16 divided by 16
        np.testing.assert_array_equal(s.x * 16, np.round(s.x * 16))
    assert data.digits(dtype=np.float64).train.x.dtype == np.float64


def test_digits_split_is_the_fixed_index_range(digits):
    from sklearn.datasets import load_digits

    images = load_digits().images
    np.testing.assert_array_equal(digits.train.x[:, 0] * 16, images[:1437])
    np.testing.assert_array_equal(digits.val.x[:, 0] * 16, images[1437:])


def test_denoising_pairs(digits, denoising):
    for clean, noisy in zip(digits, denoising):
        np.testing.assert_array_equal(noisy.y, clean.x)          # clean targets
        assert noisy.x.shape == noisy.y.shape and noisy.x.dtype == np.float32
        assert noisy.x.min() >= 0 and noisy.x.max() <= 1           # clipped
        residual = (noisy.x - noisy.y)[(noisy.y > 0.35) & (noisy.y < 0.65)]
        assert 0.2 < residual.std() < 0.35                         # sigma 0.3, little clipping
    other = data.digits_denoising(seed=1)
    assert not np.array_equal(other.train.x, denoising.train.x)
    assert np.array_equal(data.digits_denoising(sigma=0).val.x, digits.val.x)


# ---------------------------------------------------------------------------
# photographs
# ---------------------------------------------------------------------------

def test_sample_photos():
    photos = data.sample_photos()
    assert photos.shape == (2, 3, 427, 640) and photos.dtype == np.float32
    assert photos.min() >= 0 and photos.max() <= 1
    assert photos.flags.c_contiguous


def test_patches_shapes():
    ds = data.patches()
    assert (len(ds.train), len(ds.val)) == (1450, 450)
    for s in ds:
        assert s.x.shape == (len(s), 3, 32, 32) and s.x.dtype == np.float32
        assert s.y is s.x
        assert s.x.min() >= 0 and s.x.max() <= 1
    small = data.patches(patch_size=16, stride=16, dtype=np.float64)
    assert small.train.x.shape == (2 * 26 * 30, 3, 16, 16) and small.train.x.dtype == np.float64


def test_patch_regions_are_disjoint(monkeypatch):
    # photographs whose every pixel holds its own column index: the patches reveal where they came
    # from
    cols = np.broadcast_to(np.arange(640, dtype=np.float64), (2, 3, 427, 640)).copy()
    monkeypatch.setattr(data, "sample_photos", lambda dtype=np.float32: cols.astype(dtype))
    ds = data.patches()
    assert ds.train.x.max() < 480 <= ds.val.x.min()
    assert ds.val.x.max() == 639


def test_no_validation_patch_is_a_training_patch():
    ds = data.patches(stride=8)
    train = {p.tobytes() for p in ds.train.x}
    assert not any(p.tobytes() in train for p in ds.val.x)


def test_extract_patches_positions():
    img = np.arange(2 * 1 * 5 * 7, dtype=np.float64).reshape(2, 1, 5, 7)
    p = data.extract_patches(img, 3, 2)                     # rows 0, 2; columns 0, 2, 4
    assert p.shape == (2 * 2 * 3, 1, 3, 3)
    np.testing.assert_array_equal(p[4], img[0, :, 2:5, 2:5])
    np.testing.assert_array_equal(p[6], img[1, :, 0:3, 0:3])
    with pytest.raises(ValueError, match="does not fit"):
        data.extract_patches(img, 6, 1)


@pytest.mark.parametrize("scale", [2, 4])
def test_superres_pairs(scale):
    ds = data.superres(scale)
    hr = data.patches()
    for s, h in zip(ds, hr):
        np.testing.assert_array_equal(s.y, h.y)
        assert s.x.shape == (len(s), 3, 32 // scale, 32 // scale) and s.x.dtype == np.float32
        # box average of every scale x scale block
        blocks = s.y.astype(np.float64).reshape(len(s), 3, 32 // scale, scale, 32 // scale, scale)
        np.testing.assert_allclose(s.x, blocks.mean(axis=(3, 5)), atol=1e-6)
    with pytest.raises(ValueError, match="divisor"):
        data.superres(3)


def test_determinism(digits, denoising, text):
    _assert_equal_datasets(digits, data.digits())
    _assert_equal_datasets(denoising, data.digits_denoising())
    _assert_equal_datasets(text, data.text())
    _assert_equal_datasets(data.superres(2, stride=32), data.superres(2, stride=32))


# ---------------------------------------------------------------------------
# text
# ---------------------------------------------------------------------------

def test_vocabulary_round_trip():
    assert data.VOCAB_SIZE == len(data.VOCAB) == 97
    assert data.VOCAB[data.UNK] == "<unk>"
    s = "".join(data.VOCAB[1:]) + "def f(x):\n    return x ** 2  # ~!"
    codes = data.encode(s)
    assert codes.dtype == np.int64 and codes.shape == (len(s),)
    assert codes.min() >= 1
    assert data.decode(codes) == s
    assert data.encode("").shape == (0,) and data.decode(np.zeros(0, np.int64)) == ""
    # anything else is <unk>, decoded as the replacement character
    odd = data.encode("a’\tb😀")
    assert odd.tolist() == [data.encode("a")[0], 0, 0, data.encode("b")[0], 0]
    assert data.decode(odd) == "a" + data.UNK_CHAR * 2 + "b" + data.UNK_CHAR
    with pytest.raises(ValueError):
        data.decode(np.array([97]))


def test_corpus_is_python_help_text():
    from pydoc_data.topics import topics

    corpus = data.text_corpus()
    assert corpus == "".join(topics[k] for k in sorted(topics))
    assert np.mean(data.encode(corpus) == data.UNK) < 0.002


def test_text_windows(text):
    codes = data.encode(data.text_corpus())
    cut = int(len(codes) * 0.9)
    train, val = text
    assert len(train) == cut // 64 and len(val) == (len(codes) - cut) // 64
    for s in text:
        assert s.x.shape == s.y.shape == s.mask.shape == (len(s), 64)
        assert s.x.dtype == s.y.dtype == np.int64 and s.mask.dtype == bool
        assert s.x.min() >= 0 and s.x.max() < data.VOCAB_SIZE
    # consecutive, non-overlapping windows on either side of the cut
    np.testing.assert_array_equal(train.y.ravel(), codes[:len(train) * 64])
    np.testing.assert_array_equal(val.y.ravel(), codes[cut:cut + len(val) * 64])


def test_text_corruption(text):
    for s in text:
        np.testing.assert_array_equal(s.mask, s.x != s.y)            # the mask is exact
        np.testing.assert_array_equal(s.mask.sum(axis=1), 10)        # round(0.15 * 64)
        assert (s.x[s.mask] != data.UNK).all()
        assert abs(s.mask.mean() - 0.15) < 0.01
    # replacement characters are spread over the vocabulary
    assert len(np.unique(text.train.x[text.train.mask])) == data.VOCAB_SIZE - 1
    assert not np.array_equal(data.text(seed=1).train.x, text.train.x)


@pytest.mark.parametrize("rate", [0.0, 0.05, 0.5, 1.0])
def test_corrupt_rate_and_mask(rate):
    clean = np.random.default_rng(0).integers(0, data.VOCAB_SIZE, size=(300, 40))
    noisy, mask = data.corrupt(clean, rate, rng=1)
    np.testing.assert_array_equal(mask, noisy != clean)
    np.testing.assert_array_equal(mask.sum(axis=1), round(rate * 40))
    assert (noisy[mask] >= 1).all()
    np.testing.assert_array_equal(clean, np.random.default_rng(0).integers(
        0, data.VOCAB_SIZE, size=(300, 40)))                         # input untouched
    # positions are uniform: every column is hit about equally often
    if 0 < rate < 1:
        per_column = mask.mean(axis=0)
        assert np.abs(per_column - rate).max() < 5 * np.sqrt(rate * (1 - rate) / 300)


def test_text_rate_and_window_arguments():
    ds = data.text(window=32, rate=0.25)
    assert ds.train.x.shape[1] == 32
    np.testing.assert_array_equal(ds.val.mask.sum(axis=1), 8)


# ---------------------------------------------------------------------------
# scikit-learn is optional
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("loader", [data.digits, data.digits_denoising, data.patches,
                                    data.superres, data.sample_photos])
def test_clear_error_without_scikit_learn(monkeypatch, loader):
    for name in [m for m in sys.modules if m == "sklearn" or m.startswith("sklearn.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "sklearn", None)               # `import sklearn` fails
    with pytest.raises(ImportError, match=r"pip install 'deconv-numba\[train\]'"):
        loader()
    assert data.text(window=1024).train.x.shape[1] == 1024          # the text needs no sklearn
