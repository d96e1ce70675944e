"""``deconv train classifier``: digits recognised by conv, transposed conv, pool and linear layers.

The family of :func:`deconv.models.classifier`, grown to the size the task
needs (issue 15): scikit-learn's 8x8 digits on their fixed split
(:func:`deconv.data.digits`: the first 1437 images train, the last 360,
mostly from other writers, validate), each image upsampled inside the
network to 16x16 (:class:`deconv.nn.Upsample`, bilinear, i.e.
:func:`deconv.interpolate`), then two conv stages with BatchNorm and
max-pooling, a stride-2 transposed conv that paints the 4x4 features back to
8x8, a max-pool to 4x4 and a linear layer (:func:`digit_classifier`).

It trains on the training digits, their eight one-pixel shifts and two
copies leaning about 14 degrees left and right (:func:`shifted_digits`,
:func:`slant_images`), with label smoothing (:func:`classifier_loss`) and
a cosine learning-rate schedule, and is measured against logistic regression
and an RBF support-vector machine from scikit-learn fitted on the same 1437
unshifted training digits (:func:`baselines`). :func:`figure` draws every
misclassified held-out digit and the confusion matrix.

Examples
--------
>>> import numpy as np
>>> from deconv.models import recognition
>>> net = recognition.digit_classifier(width=8, rng=0)
>>> net(np.zeros((2, 1, 8, 8), dtype=np.float32)).shape
(2, 10)
>>> recognition.shift_images(np.arange(4.0).reshape(1, 1, 2, 2), 0, 1)[0, 0]
array([[0., 0.],
       [0., 2.]])
>>> recognition.slant_images(np.ones((1, 1, 3, 3)), 2)[0, 0]
array([[0., 1., 1.],
       [1., 1., 1.],
       [1., 1., 0.]])
"""

from typing import NamedTuple

import numpy as np

from deconv import nn
from deconv.functional import shapes
from deconv.functional.validation import as_generator, as_int_at_least, as_real
from deconv.models import data, metrics

__all__ = ["ShiftedDigits", "shift_images", "slant_images", "shifted_digits", "digit_classifier",
           "classifier_loss", "LABEL_SMOOTHING", "baselines", "confusion_matrix", "figure"]


class ShiftedDigits(NamedTuple):
    """The digits with shifted copies of the training images.

    Attributes
    ----------
    train : Split
        The training digits and their shifts (what the network trains on).
    val : Split
        The held-out digits, unchanged.
    plain : Split
        The training digits alone, unshifted: what the baselines fit.
    """

    train: data.Split
    val: data.Split
    plain: data.Split


def shift_images(images, dy, dx):
    """``images`` (N, C, H, W) moved down by ``dy`` and right by ``dx`` pixels, zeros coming in.

    Negative values move up and left; pixels pushed past the border are
    lost (the digits' border is background, 0). Returns a new array.
    """
    a = np.asarray(images)
    H, W = a.shape[-2:]
    dy, dx = int(dy), int(dx)
    out = np.zeros_like(a)
    if abs(dy) >= H or abs(dx) >= W:
        return out
    out[..., max(dy, 0):H + min(dy, 0), max(dx, 0):W + min(dx, 0)] = \
        a[..., max(-dy, 0):H - max(dy, 0), max(-dx, 0):W - max(dx, 0)]
    return out


def slant_images(images, lean):
    """``images`` (N, C, H, W) sheared by whole pixels: the top row moves right by about
    ``lean / 2`` pixels and the bottom row left by as much, zeros coming in.

    Row ``r`` (0 at the top) moves right by
    ``floor(lean (H - 1 - 2 r) / (2 (H - 1)) + 1/2)`` pixels
    (:func:`shift_images` of that row); a negative ``lean`` leans the other
    way. For ``H = 8`` and ``lean = 2`` the rows move by
    ``1, 1, 0, 0, 0, 0, -1, -1``: about 14 degrees. Returns a new array.
    """
    a = np.asarray(images)
    k = int(lean)
    H = a.shape[-2]
    out = np.zeros_like(a)
    for r in range(H):
        dx = int(np.floor(k * (H - 1 - 2 * r) / (2 * max(H - 1, 1)) + 0.5))
        out[..., r:r + 1, :] = shift_images(a[..., r:r + 1, :], 0, dx)
    return out


def shifted_digits(shift=1, slant=0, dtype=np.float32):
    """:func:`deconv.data.digits` with every training digit also shifted by up to ``shift``
    pixels, and slanted by ``slant``.

    Parameters
    ----------
    shift : int, default 1
        ``s``: each training image appears at the ``(2 s + 1)**2`` offsets
        ``(dy, dx)`` in ``[-s, s]**2`` (:func:`shift_images`), the unshifted
        one first; 0 gives the plain training set.
    slant : int, default 0
        ``k``: then each training image again, leaning by ``-k`` and by
        ``+k`` (:func:`slant_images`), unshifted; 0 adds none.
    dtype : np.float32 (default) or np.float64

    Returns
    -------
    ShiftedDigits
        ``train.x`` ``(((2 s + 1)**2 + 2 [k != 0]) * 1437, 1, 8, 8)`` with
        labels ``train.y``; ``val`` and ``plain``: the held-out and the
        training digits of :func:`deconv.data.digits`.

    Notes
    -----
    Writers place digits a pixel or so apart in the 8x8 grid, and lean
    them left or right; the shifted and slanted copies teach the network
    that such a digit is the same digit. Neither touches the validation
    digits.
    """
    s = as_int_at_least(shift, "shift", 0)
    k = as_int_at_least(slant, "slant", 0)
    ds = data.digits(dtype)
    offsets = [(0, 0)] + [(dy, dx) for dy in range(-s, s + 1) for dx in range(-s, s + 1)
                          if (dy, dx) != (0, 0)]
    copies = [shift_images(ds.train.x, dy, dx) for dy, dx in offsets]
    if k:
        copies += [slant_images(ds.train.x, -k), slant_images(ds.train.x, k)]
    x = np.concatenate(copies)
    y = np.tile(ds.train.y, len(copies))
    return ShiftedDigits(data.Split(x, y), ds.val, ds.train)


def digit_classifier(width=32, image_size=8, num_classes=10, upscale=2, dropout=0.3, *,
                     dtype=np.float32, rng=None):
    """Upsample, conv x3 with BatchNorm, max-pool x2, transposed conv, max-pool, linear.

    Parameters
    ----------
    width : int, default 32
        ``w``: the first stage's channels; the second and the transposed
        conv have ``2 w``.
    image_size : int, default 8
        ``S``, the input's height and width (fixes the linear layer).
    num_classes : int, default 10
    upscale : int, default 2
        ``u``: the input is first upsampled bilinearly by this factor.
    dropout : float, default 0.3
        Dropout before the linear layer (training only).
    dtype : np.float32 (default) or np.float64
    rng : int, np.random.Generator or None

    Returns
    -------
    nn.Sequential
        Shapes for an ``(N, 1, 8, 8)`` input with the defaults (every conv
        3x3, padding 1; each followed by BatchNorm2d and ReLU)::

            input                                              (N, 1, 8, 8)
            0   Upsample(scale_factor=u, mode='bilinear')      (N, 1, 16, 16)
            1   Conv2d(1, w, 3, padding=1)   BN ReLU           (N, w, 16, 16)
            4   Conv2d(w, w, 3, padding=1)   BN ReLU           (N, w, 16, 16)
            7   MaxPool2d(2)                                   (N, w, 8, 8)
            8   Conv2d(w, 2w, 3, padding=1)  BN ReLU           (N, 2w, 8, 8)
            11  MaxPool2d(2)                                   (N, 2w, 4, 4)
            12  ConvTranspose2d(2w, 2w, 3, stride=2, padding=1,
                                output_padding=1) BN ReLU      (N, 2w, 8, 8)
            15  MaxPool2d(2)                                   (N, 2w, 4, 4)
            16  Flatten                                        (N, 2w * 16)
            17  Dropout(p)
            18  Linear(2w * 16, 10)                            (N, 10)  logits

    Notes
    -----
    The layers of :func:`deconv.models.classifier` (conv, transposed
    conv, pool, linear), deeper and wider. A digit's strokes are one or two
    pixels wide at 8x8: upsampling first gives the 3x3 kernels room to see
    a stroke's two edges and its direction. The transposed conv paints each
    4x4 feature into an overlapping 3x3 neighbourhood at 8x8 and the
    max-pool keeps the strongest response of each 2x2 block, a learned
    non-linear mixing of neighbouring positions before the linear layer.
    """
    w = as_int_at_least(width, "width", 1)
    size = as_int_at_least(image_size, "image_size", 1)
    u = as_int_at_least(upscale, "upscale", 1)
    p = as_real(dropout, "dropout", 0, 1)
    gen = as_generator(rng)
    kw = dict(dtype=dtype, rng=gen)

    def block(conv, channels):
        return [conv, nn.BatchNorm2d(channels, dtype=dtype), nn.ReLU()]

    s = size * u
    s = shapes.pool_output_size(s, 2)
    s = shapes.pool_output_size(s, 2)
    s = shapes.conv_transpose_output_size(s, 3, stride=2, padding=1, output_padding=1)
    s = shapes.pool_output_size(s, 2)
    return nn.Sequential(
        nn.Upsample(scale_factor=u, mode="bilinear"),
        *block(nn.Conv2d(1, w, 3, padding=1, **kw), w),
        *block(nn.Conv2d(w, w, 3, padding=1, **kw), w),
        nn.MaxPool2d(2),
        *block(nn.Conv2d(w, 2 * w, 3, padding=1, **kw), 2 * w),
        nn.MaxPool2d(2),
        *block(nn.ConvTranspose2d(2 * w, 2 * w, 3, stride=2, padding=1, output_padding=1, **kw),
               2 * w),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Dropout(p, rng=gen),
        nn.Linear(2 * w * s * s, num_classes, **kw),
    )


#: The label smoothing of :func:`classifier_loss`.
LABEL_SMOOTHING = 0.1


def classifier_loss():
    """Cross-entropy with label smoothing :data:`LABEL_SMOOTHING` (the target puts
    ``1 - 0.1 + 0.1 / 10`` on the true class and ``0.01`` on each other one), so the
    network is not pushed to ever larger logits on the training digits it already gets right."""
    return nn.CrossEntropyLoss(label_smoothing=LABEL_SMOOTHING)


def baselines(dataset):
    """Logistic regression and an RBF SVM (scikit-learn) fitted on the training digits.

    Parameters
    ----------
    dataset : ShiftedDigits or deconv.data.Dataset
        The models fit ``dataset.plain`` (the unshifted training digits)
        when there is one, else ``dataset.train``, and are measured on
        ``dataset.val``.

    Returns
    -------
    dict
        ``{"logistic regression": {"accuracy"}, "RBF SVM": {"accuracy"}}``.

    Notes
    -----
    The inputs are the 64 pixel values of each image (grey levels / 16,
    in ``[0, 1]``), flattened, in float64. Logistic regression is
    ``sklearn.linear_model.LogisticRegression(max_iter=5000)`` (multinomial,
    L2 penalty ``C = 1``, lbfgs run to convergence), the SVM
    ``sklearn.svm.SVC(kernel='rbf')`` (``C = 1``, ``gamma='scale'``): the
    libraries' defaults, nothing tuned on the validation digits.
    """
    try:
        from sklearn.linear_model import LogisticRegression
        from sklearn.svm import SVC
    except ImportError as err:
        raise ImportError("the classifier's baselines need scikit-learn; install it with:  "
                          "pip install 'deconv-numba[train]'") from err
    train = getattr(dataset, "plain", dataset.train)
    val = dataset.val
    x_train = np.asarray(train.x, dtype=np.float64).reshape(len(train), -1)
    x_val = np.asarray(val.x, dtype=np.float64).reshape(len(val), -1)
    out = {}
    for label, model in (("logistic regression", LogisticRegression(max_iter=5000)),
                         ("RBF SVM", SVC(kernel="rbf"))):
        predicted = model.fit(x_train, train.y).predict(x_val)
        out[label] = {"accuracy": metrics.accuracy(predicted, val.y)}
    return out


def confusion_matrix(predicted, target, num_classes=10):
    """``C[i, j]``: the number of images of class ``i`` predicted as ``j`` (int64)."""
    out = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(out, (np.asarray(target), np.asarray(predicted)), 1)
    return out


def figure(split, prediction, path, max_errors=30):
    """Every misclassified held-out digit (true and predicted label) and the confusion matrix.

    ``prediction``: the logits ``(N, 10)`` on ``split.x``. Returns ``path``,
    or None without matplotlib.
    """
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    predicted = np.asarray(prediction).argmax(axis=1)
    wrong = np.flatnonzero(predicted != split.y)
    shown = wrong[:max_errors]
    cols = 6
    rows = max(1, -(-len(shown) // cols))
    fig = plt.figure(figsize=(12, max(4.5, 1.6 * rows + 1)))
    grid = fig.add_gridspec(rows, cols + 6)
    for k, i in enumerate(shown):
        ax = fig.add_subplot(grid[k // cols, k % cols])
        ax.imshow(split.x[i, 0], cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(f"true {split.y[i]}, said {predicted[i]}", fontsize=8, color="firebrick")
        ax.axis("off")
    if not len(shown):
        ax = fig.add_subplot(grid[0, :cols])
        ax.text(0.5, 0.5, "no errors", ha="center", va="center")
        ax.axis("off")
    cm = confusion_matrix(predicted, split.y)
    ax = fig.add_subplot(grid[:, cols + 1:])
    ax.imshow(cm, cmap="Blues")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if cm[i, j] > cm.max() / 2 else "black")
    ax.set_xticks(range(10))
    ax.set_yticks(range(10))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("confusion matrix (held-out digits)", fontsize=9)
    accuracy = 1 - len(wrong) / len(split.y)
    fig.suptitle(f"deconv train classifier: {len(wrong)} of {len(split.y)} held-out digits "
                 f"misclassified (accuracy {accuracy:.1%})"
                 + (f"; the first {len(shown)} shown" if len(shown) < len(wrong) else ""),
                 fontsize=10)
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)
    return path
