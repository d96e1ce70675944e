"""``deconv train autoencoder``: colour patches squeezed through a 48-number code and painted back.

The family of :func:`deconv.models.autoencoder` (three stride-2 convs down,
three stride-2 transposed convs up) on the image corpus of
:mod:`deconv.models.images` (issue 15): it trains on 32x32 patches of the
colour photographs that train (:data:`TRAIN_IMAGES`) and is measured on
every non-overlapping 32x32 patch of the colour validation photographs
astronaut, coffee and chelsea (:func:`colour_patches`; camera, the fourth
validation image, is grey and left out, as are the grey training images:
the task is colour). It is measured on PSNR and on the mean absolute error,
and trains on the sum of the squared and a tenth of the absolute error
(:func:`patch_loss`).

The code is ``3 x 4 x 4 = 48`` numbers for the ``3 x 32 x 32 = 3072`` of a
patch (1/64), exactly as many as the two baselines keep (:func:`baselines`):

* **bilinear from the code's size**: the patch box-downsampled to 4x4
  (the mean of each 8x8 block, :func:`deconv.data.downsample`; 3 x 16 = 48
  numbers) and upsampled back bilinearly (:func:`deconv.interpolate`,
  ``align_corners=False``);
* **PCA with 48 components**: the patch projected on the 48 leading
  principal components of the training patches (fitted by the loader,
  :func:`principal_components`) and reconstructed from them, the best any
  *linear* 48-number code can do in mean squared error.

Examples
--------
>>> import numpy as np
>>> from deconv.models import compression
>>> net = compression.patch_autoencoder(channels=(8, 8), rng=0)
>>> net(np.zeros((2, 3, 32, 32), dtype=np.float32)).shape
(2, 3, 32, 32)
>>> compression.code_values(net, 32)
48
"""

from typing import NamedTuple

import numpy as np

from deconv import nn
from deconv.functional.validation import as_float_dtype, as_generator, as_int_at_least, as_real
from deconv.models import data, metrics

__all__ = ["TRAIN_IMAGES", "VALIDATION_IMAGES", "PATCH", "CODE_CHANNELS", "DOWNSCALE",
           "L1_WEIGHT", "ColourPatches", "grid_patches", "principal_components",
           "colour_patches", "patch_autoencoder", "code_values", "SquaredPlusAbsoluteError",
           "patch_loss", "reconstructions", "baselines", "figure"]

#: The colour photographs of :mod:`deconv.models.images` that train (every other colour
#: photograph of the training split; the colour scans are instruments, left out).
TRAIN_IMAGES = ("rocket", "motorcycle_left", "motorcycle_right", "grace_hopper", "china",
                "flower")
#: The colour validation photographs (camera, the fourth, is grey).
VALIDATION_IMAGES = ("astronaut", "coffee", "chelsea")
#: Side of a patch, channels of the code, and the factor from a patch to its code's size.
PATCH = 32
CODE_CHANNELS = 3
DOWNSCALE = 8
#: Training patches drawn by default.
COUNT = 8192


class ColourPatches(NamedTuple):
    """Training and validation patches, and the training patches' principal components.

    Attributes
    ----------
    train, val : Split
        ``x`` = ``y``: ``(N, 3, P, P)`` patches in ``[0, 1]``.
    names : tuple of str
        The validation images, in the order their patches come.
    mean : ndarray, shape (3 P P,)
        The training patches' mean (float64).
    components : ndarray, shape (K, 3 P P)
        Their ``K`` leading principal directions, orthonormal rows (float64).
    """

    train: data.Split
    val: data.Split
    names: tuple
    mean: np.ndarray
    components: np.ndarray


def grid_patches(image, size):
    """Every non-overlapping ``size x size`` patch of ``image`` (C, H, W), row by row from the
    top-left corner (a remainder at the bottom and right is dropped): ``(M, C, size, size)``."""
    return data.extract_patches(np.asarray(image)[None], size, size)


def principal_components(x, count, oversample=16, tol=1e-12, max_iter=500):
    """Mean and ``count`` leading principal directions of the rows of ``x`` (M, D), float64.

    The eigenvectors of the covariance ``S = (x - mean)^T (x - mean)`` with
    the largest eigenvalues, as orthonormal rows ``(count, D)`` (what
    ``sklearn.decomposition.PCA(count).fit(x).components_`` holds, up to
    signs). Reconstruction: ``mean + ((x - mean) @ V.T) @ V``.

    Notes
    -----
    Found by subspace iteration (Golub & Van Loan, alg. 8.2.7) on ``S``
    with ``count + oversample`` seeded starting vectors: ``Q <- qr(S Q)``
    until the ``count`` leading Rayleigh-Ritz values of ``Q^T S Q`` change
    by less than ``tol`` (relative) between two checks, then the
    eigenvectors of that small matrix rotate ``Q``. A full eigensolver
    (LAPACK's tridiagonal reduction of the 3072 x 3072 covariance of 32x32
    colour patches) costs several times as much for the 48 vectors needed;
    the covariance (not an SVD of the M x D data) because M >> D.
    """
    x = np.asarray(x, dtype=np.float64)
    k = as_int_at_least(count, "count", 1)
    if x.ndim != 2 or k > min(x.shape):
        raise ValueError(f"count={k} components need at least {k} samples of at least {k} "
                         f"values, got x of shape {x.shape}")
    mean = x.mean(axis=0)
    centred = x - mean
    cov = centred.T @ centred                                       # (D, D)
    D = cov.shape[0]
    width = min(D, k + as_int_at_least(oversample, "oversample", 0))
    Q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((D, width)))
    previous = None
    for it in range(as_int_at_least(max_iter, "max_iter", 1)):
        Q, _ = np.linalg.qr(cov @ Q)
        if it % 5 == 4:
            ritz = np.linalg.eigvalsh(Q.T @ cov @ Q)[::-1][:k]
            if previous is not None and np.all(np.abs(ritz - previous) <= tol * ritz[0]):
                break
            previous = ritz
    values, vectors = np.linalg.eigh(Q.T @ cov @ Q)
    order = np.argsort(values)[::-1][:k]
    return mean, np.ascontiguousarray((Q @ vectors[:, order]).T)


def colour_patches(count=COUNT, patch_size=PATCH, components=None, seed=0, dtype=np.float32):
    """Colour patches of the training photographs and of the held-out ones.

    Parameters
    ----------
    count : int, default 8192
        Training patches drawn (seeded, spread over the images by their
        area, each turned by one of the eight symmetries of the square:
        :func:`deconv.models.images.sample_positions`).
    patch_size : int, default 32
        ``P``.
    components : int, optional
        Principal components fitted (default: as many as the default code
        has values, ``CODE_CHANNELS * (P / 8)**2``, 48).
    seed : int, default 0
        Seed of the patch positions.
    dtype : np.float32 (default) or np.float64

    Returns
    -------
    ColourPatches
        ``train.x`` ``(count, 3, P, P)``; ``val.x``: every non-overlapping
        ``P x P`` patch of astronaut, coffee and chelsea (598 for ``P = 32``);
        ``x`` is ``y``. ``mean`` and ``components``: the PCA of the
        training patches (:func:`principal_components`).

    Notes
    -----
    The split is by image (:data:`TRAIN_IMAGES` against
    :data:`VALIDATION_IMAGES`): no validation pixel is ever in a training
    patch.
    """
    from deconv.models import images as corpus

    p = as_int_at_least(patch_size, "patch_size", 1)
    dt = as_float_dtype(dtype)
    k = (CODE_CHANNELS * (p // DOWNSCALE) ** 2 if components is None
         else as_int_at_least(components, "components", 1))
    photos = corpus.load_all(TRAIN_IMAGES, np.float64)
    positions = corpus.sample_positions([im.shape[-2:] for im in photos], count, p, seed)
    train = np.empty((len(positions), 3, p, p), dtype=dt)
    for n, (i, row, col, sym) in enumerate(positions):
        train[n] = corpus.dihedral(photos[i][:, row:row + p, col:col + p], sym)
    val = np.concatenate([grid_patches(im, p) for im in
                          corpus.load_all(VALIDATION_IMAGES, np.float64)]).astype(dt)
    mean, basis = principal_components(train.reshape(len(train), -1), k)
    return ColourPatches(data.Split(train, train), data.Split(val, val), VALIDATION_IMAGES,
                         mean, basis)


def patch_autoencoder(channels=(64, 128), code_channels=CODE_CHANNELS, kernel_size=5, *,
                      dtype=np.float32, rng=None):
    """Three stride-2 convs to a small linear code, three stride-2 transposed convs back.

    Parameters
    ----------
    channels : (int, int), default (64, 128)
        ``C1, C2``: the widths between the input and the code.
    code_channels : int, default 3
        ``K``: the code is ``(N, K, P/8, P/8)``.
    kernel_size : int, default 5
        ``k``, odd; every conv pads by ``(k - 1) / 2``, every transposed
        conv too, with ``output_padding = 1``, so each exactly halves or
        doubles an even size.
    dtype : np.float32 (default) or np.float64
    rng : int, np.random.Generator or None

    Returns
    -------
    nn.Sequential
        Shapes for an ``(N, 3, 32, 32)`` input with the defaults::

            input                                                (N, 3, 32, 32)
            0  Conv2d(3, C1, k, stride=2, padding=2)   ReLU      (N, C1, 16, 16)
            2  Conv2d(C1, C2, k, stride=2, padding=2)  ReLU      (N, C2, 8, 8)
            4  Conv2d(C2, K, k, stride=2, padding=2)             (N, K, 4, 4)   the code
            5  ConvTranspose2d(K, C2, k, stride=2, padding=2,
                               output_padding=1)       ReLU      (N, C2, 8, 8)
            7  ConvTranspose2d(C2, C1, ...)            ReLU      (N, C1, 16, 16)
            9  ConvTranspose2d(C1, 3, ...)                       (N, 3, 32, 32)

    Notes
    -----
    Unlike :func:`deconv.models.autoencoder` the code is linear (no ReLU:
    with only 48 numbers, half of them clipped to zero would be wasted) and
    so is the output (clipped to ``[0, 1]`` when measured). 5x5 kernels
    give each code number a view of 29x29 input pixels, nearly the whole
    patch, and each output pixel a view of the code around it.
    """
    c1, c2 = (as_int_at_least(c, "channels", 1) for c in channels)
    kc = as_int_at_least(code_channels, "code_channels", 1)
    k = as_int_at_least(kernel_size, "kernel_size", 1)
    if k % 2 == 0:
        raise ValueError(f"kernel_size must be odd, got {kernel_size!r}")
    pad = (k - 1) // 2
    gen = as_generator(rng)
    kw = dict(dtype=dtype, rng=gen)

    def down(cin, cout):
        return nn.Conv2d(cin, cout, k, stride=2, padding=pad, **kw)

    def up(cin, cout):
        return nn.ConvTranspose2d(cin, cout, k, stride=2, padding=pad, output_padding=1, **kw)

    return nn.Sequential(
        down(3, c1), nn.ReLU(), down(c1, c2), nn.ReLU(), down(c2, kc),
        up(kc, c2), nn.ReLU(), up(c2, c1), nn.ReLU(), up(c1, 3),
    )


def code_values(model, patch_size):
    """The numbers in the code of :func:`patch_autoencoder` ``model`` for one patch."""
    x = np.zeros((1, 3, patch_size, patch_size), dtype=model.parameters()[0].dtype)
    code = x
    for layer in model[:5]:
        code = layer(code)
    return int(code.size)


#: Weight of the mean absolute error next to the mean squared error in :func:`patch_loss`.
L1_WEIGHT = 0.1


class SquaredPlusAbsoluteError(nn.Loss):
    """``mean((p - t)**2) + w * mean(|p - t|)``: :class:`deconv.nn.MSELoss` plus ``w`` times
    :class:`deconv.nn.L1Loss` (both 'mean'), forward and backward.

    Parameters
    ----------
    l1_weight : float, default :data:`L1_WEIGHT`
        ``w >= 0``; 0 is the mean squared error alone.

    Notes
    -----
    Per element the gradient is ``(2 e + w sign(e)) / n`` for the error
    ``e = p - t``: the squared term pulls hardest on large errors (what
    PSNR counts), the absolute one as hard on every error however small
    (what the mean absolute error counts); with ``w = 0.1`` the two pull
    equally on an error of 0.05, about the typical error of a
    48-number code.

    Examples
    --------
    >>> import numpy as np
    >>> loss = SquaredPlusAbsoluteError(0.5)
    >>> loss(np.array([0.5, -1.0]), np.array([0.0, 0.0]))      # (0.25 + 1) / 2 + 0.5 * 0.75
    1.0
    >>> loss.backward()                                       # (2 e + 0.5 sign(e)) / 2
    array([ 0.75, -1.25])
    """

    def __init__(self, l1_weight=L1_WEIGHT):
        super().__init__()
        self.l1_weight = as_real(l1_weight, "l1_weight", 0)
        self._squared, self._absolute = nn.MSELoss(), nn.L1Loss()

    def forward(self, prediction, target):
        """``prediction`` and ``target`` of one shape -> the loss (a float)."""
        return (self._squared.forward(prediction, target)
                + self.l1_weight * self._absolute.forward(prediction, target))

    def backward(self):
        """The gradient of the last forward's loss with respect to ``prediction``."""
        return self._squared.backward() + self.l1_weight * self._absolute.backward()


def patch_loss():
    """The training loss of ``deconv train autoencoder``: :class:`SquaredPlusAbsoluteError`
    with :data:`L1_WEIGHT`, since the family is measured on PSNR and the mean absolute error."""
    return SquaredPlusAbsoluteError(L1_WEIGHT)


def reconstructions(dataset, factor=DOWNSCALE):
    """The baselines' reconstructions of ``dataset.val.x``: ``{label: (N, 3, P, P) array}``.

    ``"bilinear from P/F"``: box-downsampled by ``F = factor`` and upsampled
    back bilinearly; ``"PCA (K components)"``: projected on the
    ``dataset.components`` and reconstructed (float64, cast back).
    """
    from deconv.functional.interpolate import interpolate

    val = dataset.val.x
    P = val.shape[-1]
    f = as_int_at_least(factor, "factor", 1)
    low = data.downsample(val, f)
    bilinear = interpolate(low, size=val.shape[-2:], mode="bilinear", align_corners=False)
    flat = val.reshape(len(val), -1).astype(np.float64) - dataset.mean
    V = dataset.components
    pca = (dataset.mean + (flat @ V.T) @ V).reshape(val.shape).astype(val.dtype)
    return {f"bilinear from {P // f}x{P // f}": bilinear, f"PCA ({len(V)} components)": pca}


def baselines(dataset, factor=DOWNSCALE):
    """PSNR and MAE (:func:`deconv.models.evaluate`) of each of :func:`reconstructions`."""
    from deconv.models import evaluate

    return {label: evaluate("autoencoder", pred, dataset.val)
            for label, pred in reconstructions(dataset, factor).items()}


def figure(dataset, prediction, path, count=6):
    """The most textured validation patches: original, bilinear, PCA and model, PSNR on each."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    val = dataset.val.x
    rows = [("original", val)] + list(reconstructions(dataset).items()) + [("model", prediction)]
    variance = val.reshape(len(val), -1).var(axis=1)
    picks = np.argsort(-variance, kind="stable")[:count]
    fig, axes = plt.subplots(len(rows), count, figsize=(1.8 * count, 2.0 * len(rows)))
    for r, (label, images) in enumerate(rows):
        for c, i in enumerate(picks):
            shown = np.clip(images[i], 0, 1)
            ax = axes[r, c]
            ax.imshow(shown.transpose(1, 2, 0), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r:
                ax.set_title(f"{metrics.psnr(shown, val[i]):.2f} dB", fontsize=8)
            if c == 0:
                ax.set_ylabel(label, fontsize=8)
    whole = {label: metrics.psnr(np.clip(images, 0, 1), val) for label, images in rows[1:]}
    fig.suptitle("deconv train autoencoder: held-out patches (astronaut, coffee, chelsea); "
                 "PSNR over all: " + ", ".join(f"{k} {v:.2f} dB" for k, v in whole.items()),
                 fontsize=9)
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)
    return path
