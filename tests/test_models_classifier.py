"""The digits classifier (deconv.models.recognition): shifted training digits, the
scikit-learn baselines computed as stated, brief training that improves the held-out
accuracy, the confusion matrix and the figure of errors."""

import numpy as np
import pytest

from deconv import data, models, optim
from deconv.models import recognition
from deconv.train import Trainer



def _rolled(images, dy, dx):
    """Independent shift: np.roll, then zero the wrapped rows and columns."""
    out = np.roll(images, (dy, dx), axis=(-2, -1)).copy()
    if dy > 0:
        out[..., :dy, :] = 0
    elif dy < 0:
        out[..., dy:, :] = 0
    if dx > 0:
        out[..., :, :dx] = 0
    elif dx < 0:
        out[..., :, dx:] = 0
    return out


@pytest.mark.parametrize("dy, dx", [(0, 0), (1, 0), (0, -1), (-1, 1), (2, -3)])
def test_shift_images_matches_a_rolled_copy_with_zeros_coming_in(dy, dx):
    x = np.random.default_rng(0).random((3, 1, 8, 8)).astype(np.float32)
    np.testing.assert_array_equal(recognition.shift_images(x, dy, dx), _rolled(x, dy, dx))


def test_shifted_digits_keep_the_split_and_the_labels():
    plain = data.digits()
    ds = recognition.shifted_digits(1)
    n = len(plain.train)
    assert ds.train.x.shape == (9 * n, 1, 8, 8) and ds.train.y.shape == (9 * n,)
    np.testing.assert_array_equal(ds.train.x[:n], plain.train.x)        # unshifted first
    np.testing.assert_array_equal(ds.val.x, plain.val.x)                 # held out untouched
    np.testing.assert_array_equal(ds.plain.x, plain.train.x)
    for k in range(9):
        np.testing.assert_array_equal(ds.train.y[k * n:(k + 1) * n], plain.train.y)
    offsets = {(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)}
    found = set()
    for k in range(9):
        block = ds.train.x[k * n:(k + 1) * n]
        found |= {o for o in offsets if np.array_equal(block, _rolled(plain.train.x, *o))}
    assert found == offsets


def _leaned(images, rows):
    """Independent slant: row r rolled by rows[r] with the wrapped pixels zeroed."""
    out = np.zeros_like(images)
    for r, dx in enumerate(rows):
        out[..., r, :] = _rolled(images[..., r:r + 1, :], 0, dx)[..., 0, :]
    return out


@pytest.mark.parametrize("lean, rows", [
    (0, [0] * 8), (2, [1, 1, 0, 0, 0, 0, -1, -1]), (-2, [-1, -1, 0, 0, 0, 0, 1, 1]),
    (4, [2, 1, 1, 0, 0, -1, -1, -2]),
])
def test_slant_images_moves_each_row_as_stated(lean, rows):
    x = np.random.default_rng(3).random((2, 1, 8, 8)).astype(np.float32)
    got = recognition.slant_images(x, lean)
    np.testing.assert_array_equal(got, _leaned(x, rows))
    assert got.dtype == np.float32 and not np.shares_memory(got, x)


def test_slanted_copies_follow_the_shifted_ones():
    plain = data.digits()
    n = len(plain.train)
    ds = recognition.shifted_digits(1, slant=2)
    assert ds.train.x.shape == (11 * n, 1, 8, 8)
    np.testing.assert_array_equal(ds.train.x[:9 * n], recognition.shifted_digits(1).train.x)
    np.testing.assert_array_equal(ds.train.x[9 * n:10 * n],
                                  _leaned(plain.train.x, [-1, -1, 0, 0, 0, 0, 1, 1]))
    np.testing.assert_array_equal(ds.train.x[10 * n:],
                                  _leaned(plain.train.x, [1, 1, 0, 0, 0, 0, -1, -1]))
    np.testing.assert_array_equal(ds.train.y, np.tile(plain.train.y, 11))
    np.testing.assert_array_equal(ds.val.x, plain.val.x)


def test_baselines_are_scikit_learns_models_on_the_plain_training_digits():
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import SVC

    plain = data.digits()
    # the baselines fit float64 pixels (the grey levels / 16 are exact in either precision;
    # scikit-learn's solvers compute in the precision they are given)
    x_train = data.digits(np.float64).train.x.reshape(len(plain.train), -1)
    x_val = data.digits(np.float64).val.x.reshape(len(plain.val), -1)
    expected = {
        "logistic regression": LogisticRegression(max_iter=5000).fit(
            x_train, plain.train.y).score(x_val, plain.val.y),
        "RBF SVM": SVC(kernel="rbf").fit(x_train, plain.train.y).score(x_val, plain.val.y),
    }
    got = models.baseline("classifier", recognition.shifted_digits(1))
    assert set(got) == {"majority class", "logistic regression", "RBF SVM"}
    for label, accuracy in expected.items():
        assert got[label]["accuracy"] == pytest.approx(accuracy, abs=1e-12)
    # on the shifted set the baselines fit the plain digits, not the shifted copies
    assert got == models.baseline("classifier", plain)
    assert 0.85 < expected["logistic regression"] < expected["RBF SVM"] < 0.97


def test_network_shape_and_layers():
    net = recognition.digit_classifier(width=4, rng=0)
    assert net(np.zeros((3, 1, 8, 8), np.float32)).shape == (3, 10)
    kinds = {type(m).__name__ for m in net}
    assert {"Conv2d", "ConvTranspose2d", "MaxPool2d", "Linear", "Upsample"} <= kinds


def test_brief_training_improves_the_held_out_accuracy():
    ds = recognition.shifted_digits(1)
    pick = np.random.default_rng(0).permutation(len(ds.train))[:768]
    x, y = ds.train.x[pick], ds.train.y[pick]
    net = recognition.digit_classifier(width=6, rng=0)
    trainer = Trainer(net, recognition.classifier_loss(), optim.Adam(net.parameters(), lr=3e-3),
                      batch_size=32, epochs=3, seed=0, progress="none",
                      metric=lambda p, t: models.metrics.accuracy(p, t))
    before = models.evaluate("classifier", trainer.predict(ds.val.x), ds.val)["accuracy"]
    history = trainer.fit(x, y, ds.val.x, ds.val.y)
    after = models.evaluate("classifier", trainer.predict(ds.val.x), ds.val)["accuracy"]
    assert history["val_metric"][-1] == pytest.approx(after)
    assert before < 0.3 and after > 0.8, (before, after)


def test_confusion_matrix_matches_scikit_learn():
    from sklearn.metrics import confusion_matrix

    rng = np.random.default_rng(1)
    t, p = rng.integers(0, 10, 200), rng.integers(0, 10, 200)
    np.testing.assert_array_equal(recognition.confusion_matrix(p, t),
                                  confusion_matrix(t, p, labels=range(10)))


def test_figure_of_errors_is_a_png(tmp_path):
    val = data.digits().val
    logits = np.eye(10)[val.y]
    logits[:5] = np.eye(10)[(val.y[:5] + 1) % 10]                  # five errors
    path = recognition.figure(val, logits, str(tmp_path / "samples.png"))
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
