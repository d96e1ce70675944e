"""``deconv train skip``: a U-Net-style skip encoder-decoder denoising held-out photographs.

The task (issue 15): additive white Gaussian noise of standard deviation
``sigma = 25/255`` on the grey level of a photograph (values in ``[0, 1]``),
removed by a fully convolutional network that sees the noisy image only.

* Data (:func:`denoising_corpus`): seeded ``48 x 48`` patches of the grey
  training images of :mod:`deconv.models.images` (photographs and
  textures, never a validation image), each with its own fixed noise;
  validation on the four held-out photographs whole (astronaut, coffee,
  chelsea, camera, cut to multiples of 4) with a fixed noise seed.
* Network (:func:`unet`): two pooling levels with concatenated skips,
  transposed convolutions to come back up, predicting the noise (as DnCNN
  does) which a final 1x1 conv subtracts from the input.
* Metric (:func:`evaluate`): PSNR of each whole image (the prediction
  clipped to ``[0, 1]``), averaged over the four images.
* Baselines (:func:`baselines`): the noisy input, and the best
  ``scipy.ndimage.gaussian_filter``, ``scipy.signal.wiener`` and
  ``skimage.restoration.denoise_tv_chambolle``, each with the one parameter
  (of :data:`GAUSSIAN_SIGMAS`, :data:`WIENER_WINDOWS`, :data:`TV_WEIGHTS`)
  that maximises the mean validation PSNR: the oracle choice, the strongest
  each filter can be.

Grey means the full-range luma of ITU-R BT.601,
``0.299 R + 0.587 G + 0.114 B`` (:func:`grey`: the luminance of
:func:`deconv.models.images.luminance` stretched back to ``[0, 1]``); a
grey photograph is its own grey level. The noise is not clipped (the
convention of the denoising papers), so a noisy value can leave ``[0, 1]``.
"""

import numpy as np

from deconv import nn
from deconv.functional.validation import (
    as_float_dtype, as_int_at_least, as_real, as_generator,
)
from deconv.models import metrics

__all__ = ["SIGMA", "PATCH", "COUNT", "KINDS", "MULTIPLE", "GAUSSIAN_SIGMAS", "WIENER_WINDOWS",
           "TV_WEIGHTS", "grey", "add_noise", "denoising_corpus", "unet", "evaluate",
           "baselines", "figure"]

#: The noise's standard deviation, for values in [0, 1] (25 grey levels of 255).
SIGMA = 25.0 / 255.0
#: Side of a training patch, patches drawn by default.
PATCH = 48
COUNT = 32768
#: The kinds of :mod:`deconv.models.images` that train.
KINDS = ("photograph", "texture")
#: Validation images are cut to multiples of this (two 2x2 poolings and their way back up).
MULTIPLE = 4
#: The parameter grids the baselines are tuned over (each optimum lies inside its grid).
GAUSSIAN_SIGMAS = (0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4)
WIENER_WINDOWS = (3, 5, 7, 9)
TV_WEIGHTS = (0.05, 0.06, 0.07, 0.08, 0.09, 0.10, 0.11, 0.12)


def grey(image):
    """The full-range BT.601 luma ``0.299 R + 0.587 G + 0.114 B`` of ``(C, H, W)``, ``(1, H, W)``.

    The studio-swing luminance of :func:`deconv.models.images.luminance`
    (``16/255`` to ``235/255``) mapped back to ``[0, 1]``: a grey image
    comes back unchanged.

    >>> round(float(grey(np.array([[[1.0]], [[0.0]], [[0.0]]]))[0, 0, 0]), 12)    # pure red
    0.299
    """
    from deconv.models.images import BT601_OFFSET, BT601_WEIGHTS, luminance

    return (luminance(image) - BT601_OFFSET) / BT601_WEIGHTS.sum()


def add_noise(clean, sigma, rng):
    """``clean + sigma * N(0, 1)``, drawn in float64 from ``rng``, cast to ``clean``'s dtype."""
    noise = as_generator(rng).standard_normal(np.shape(clean))
    return (clean + sigma * noise).astype(np.asarray(clean).dtype)


def denoising_corpus(count=COUNT, patch_size=PATCH, sigma=SIGMA, kinds=KINDS, seed=0,
                     dtype=np.float32):
    """Noisy and clean grey patches to train, the four noisy validation photographs whole.

    Parameters
    ----------
    count : int, default 32768
        Training patches drawn.
    patch_size : int, default 48
        ``p``, their side.
    sigma : float, default 25/255
        The noise's standard deviation.
    kinds : tuple of str, default ('photograph', 'texture')
        The kinds of :mod:`deconv.models.images` that train.
    seed : int, default 0
        Patch positions and symmetries come from
        :func:`deconv.models.images.sample_positions` with this seed, the
        training noise from ``default_rng([seed, 0])`` and the validation
        noise from ``default_rng([seed, 1 + i])`` for image ``i``.
    dtype : np.float32 (default) or np.float64

    Returns
    -------
    deconv.data.ImageDataset
        ``train.x`` noisy, ``train.y`` clean, both ``(count, 1, p, p)``;
        ``val.x`` noisy, ``val.y`` clean: tuples of four ``(1, H, W)``
        images (astronaut 512x512, coffee 400x600, chelsea 300x448, camera
        512x512); ``names``: :data:`deconv.models.images.VALIDATION`.

    Notes
    -----
    Each patch is a window of one training image's grey level
    (:func:`grey`), turned by one of the eight symmetries of the square,
    with a noise drawn once: every epoch sees the same noisy patches. The
    validation images are cut to multiples of :data:`MULTIPLE` (``modcrop``,
    top-left kept; only chelsea loses 3 columns).
    """
    from deconv.models import images
    from deconv.models.data import ImageDataset, Split

    p = as_int_at_least(patch_size, "patch_size", 1)
    count = as_int_at_least(count, "count", 0)
    sigma = as_real(sigma, "sigma", 0)
    seed = as_int_at_least(seed, "seed", 0)
    dt = as_float_dtype(dtype)
    train_images = [grey(im) for im in
                    images.load_all(images.names(tuple(kinds), split="train"), np.float64)]
    positions = images.sample_positions([im.shape[-2:] for im in train_images], count, p, seed)
    clean = np.empty((count, 1, p, p), dtype=np.float64)
    for k, (i, row, col, sym) in enumerate(positions):
        clean[k] = images.dihedral(train_images[i][:, row:row + p, col:col + p], sym)
    noisy = add_noise(clean, sigma, np.random.default_rng([seed, 0]))
    val_clean = [np.ascontiguousarray(images.modcrop(grey(im), MULTIPLE))
                 for im in images.load_all(images.VALIDATION, np.float64)]
    val_noisy = [add_noise(im, sigma, np.random.default_rng([seed, 1 + i]))
                 for i, im in enumerate(val_clean)]
    return ImageDataset(Split(noisy.astype(dt), clean.astype(dt)),
                        Split(tuple(im.astype(dt) for im in val_noisy),
                              tuple(im.astype(dt) for im in val_clean)),
                        images.VALIDATION)


def unet(channels=(16, 32, 64), *, dtype=np.float32, rng=None):
    """Skip encoder-decoder with two pooling levels that predicts the noise and subtracts it.

    Parameters
    ----------
    channels : (int, int, int), default (16, 32, 64)
        ``C0, C1, C2``: widths at full, half and quarter resolution.
    dtype : np.float32 (default) or np.float64
    rng : int, np.random.Generator or None

    Returns
    -------
    nn.Sequential
        For a noisy grey image ``(N, 1, H, W)``, ``H`` and ``W`` multiples
        of 4 (every conv 3x3 with padding 1 unless said; ReLU after every
        conv but the last of ``noise``)::

            input                                              (N, 1, H, W)
            0  Concat(
                 0  Identity                                   (N, 1, H, W)     the noisy image
                 1  noise: Sequential(
                      Conv2d(1, C0), Conv2d(C0, C0)            (N, C0, H, W)
                      Concat(Identity,                         (N, C0, H, W)    skip 0
                        Sequential(MaxPool2d(2),               (N, C0, H/2, W/2)
                          Conv2d(C0, C1), Conv2d(C1, C1)       (N, C1, H/2, W/2)
                          Concat(Identity,                     (N, C1, H/2, W/2) skip 1
                            Sequential(MaxPool2d(2),           (N, C1, H/4, W/4)
                              Conv2d(C1, C2), Conv2d(C2, C2)   (N, C2, H/4, W/4)
                              ConvTranspose2d(C2, C1, 2,
                                              stride=2)))      (N, C1, H/2, W/2)
                                                            -> (N, 2 C1, H/2, W/2)
                          Conv2d(2 C1, C1)                     (N, C1, H/2, W/2)
                          ConvTranspose2d(C1, C0, 2,
                                          stride=2)))          (N, C0, H, W)
                                                            -> (N, 2 C0, H, W)
                      Conv2d(2 C0, C0)                         (N, C0, H, W)
                      Conv2d(C0, 1)                            (N, 1, H, W)     the noise
                    ))                                      -> (N, 2, H, W)
            1  Conv2d(2, 1, 1)                                 (N, 1, H, W)     clean estimate

    Notes
    -----
    Residual learning (DnCNN, Zhang et al. 2017): the noise is white and
    has the same statistics everywhere, an easier target than the image.
    The last conv of ``noise`` starts at zero and the 1x1 head at weights
    ``[1, -1]``, bias 0: the untrained network returns its input (the
    noisy-input baseline) and training only moves it away from there.
    Each 2x2 transposed conv of stride 2 paints one 2x2 block from one
    coarse position (no overlap, so no checkerboard); the 3x3 conv after
    each concatenation mixes it with the skip's full-resolution features.
    The receptive field is 41 pixels across.
    """
    gen = as_generator(rng)
    kw = dict(dtype=dtype, rng=gen)
    c0, c1, c2 = (as_int_at_least(c, "channels", 1) for c in channels)

    def conv(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1, **kw), nn.ReLU()]

    quarter = nn.Sequential(nn.MaxPool2d(2), *conv(c1, c2), *conv(c2, c2),
                            nn.ConvTranspose2d(c2, c1, 2, stride=2, **kw), nn.ReLU())
    half = nn.Sequential(nn.MaxPool2d(2), *conv(c0, c1), *conv(c1, c1),
                         nn.Concat(nn.Identity(), quarter), *conv(2 * c1, c1),
                         nn.ConvTranspose2d(c1, c0, 2, stride=2, **kw), nn.ReLU())
    last = nn.Conv2d(c0, 1, 3, padding=1, **kw)
    noise = nn.Sequential(*conv(1, c0), *conv(c0, c0), nn.Concat(nn.Identity(), half),
                          *conv(2 * c0, c0), last)
    last.weight.data[...] = 0
    last.bias.data[...] = 0
    head = nn.Conv2d(2, 1, 1, **kw)
    head.weight.data[...] = np.array([1.0, -1.0]).reshape(1, 2, 1, 1)
    head.bias.data[...] = 0
    return nn.Sequential(nn.Concat(nn.Identity(), noise), head)


def evaluate(prediction, split):
    """``{"psnr", "psnr_each", "mae"}`` of denoised whole images against ``split.y``.

    Each prediction is clipped to ``[0, 1]`` (the clean images' range);
    ``psnr_each`` holds each image's :func:`deconv.models.metrics.psnr`,
    ``psnr`` their mean, ``mae`` the mean of each image's mean absolute error.
    """
    if len(prediction) != len(split.y):
        raise ValueError(f"{len(prediction)} predictions for {len(split.y)} images")
    each, maes = [], []
    for pred, clean in zip(prediction, split.y):
        p = np.clip(np.asarray(pred, dtype=np.float64).reshape(np.shape(clean)), 0.0, 1.0)
        each.append(metrics.psnr(p, clean))
        maes.append(metrics.mae(p, clean))
    return {"psnr": float(np.mean(each)), "psnr_each": tuple(each), "mae": float(np.mean(maes))}


def _filters():
    """label -> (parameter name, grid, (noisy (H, W) float64, parameter) -> denoised)."""
    import scipy.ndimage
    import scipy.signal

    from deconv.models.images import _import

    restoration = _import("skimage.restoration", "scikit-image")
    return {
        "gaussian": ("sigma", GAUSSIAN_SIGMAS,
                     lambda im, s: scipy.ndimage.gaussian_filter(im, s)),
        "wiener": ("window", WIENER_WINDOWS, lambda im, w: scipy.signal.wiener(im, w)),
        "tv": ("weight", TV_WEIGHTS,
               lambda im, w: restoration.denoise_tv_chambolle(im, weight=w)),
    }


def baselines(dataset):
    """The noisy input and three classical denoisers on ``dataset.val``, each at its best.

    Returns
    -------
    dict of str -> dict
        ``"noisy input"``: :func:`evaluate` of the input itself;
        ``"gaussian"``: ``scipy.ndimage.gaussian_filter(noisy, sigma)``;
        ``"wiener"``: ``scipy.signal.wiener(noisy, window)`` (scipy's own
        noise estimate: the mean local variance, which did better than the
        true ``sigma**2`` here); ``"tv"``:
        ``skimage.restoration.denoise_tv_chambolle(noisy, weight=weight)``.
        Each filter runs on every noisy grey image ``(H, W)`` in float64 at
        each value of its grid; the value with the highest mean PSNR over
        the validation images is kept (the oracle choice: no filter can do
        better on these images with one setting) and stored in the entry
        under its name (``"sigma"``, ``"window"``, ``"weight"``).
    """
    val = dataset.val
    noisy = [np.asarray(im, dtype=np.float64)[0] for im in val.x]
    out = {"noisy input": evaluate(val.x, val)}
    for label, (param, grid, apply) in _filters().items():
        best = None
        for value in grid:
            result = evaluate([apply(im, value)[None] for im in noisy], val)
            if best is None or result["psnr"] > best["psnr"]:
                best = dict(result, **{param: value})
        out[label] = best
    return out


def _show(ax, image, title):
    ax.imshow(np.clip(image, 0, 1), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_title(title, fontsize=8)
    ax.axis("off")


#: Side of the crops the figure shows.
CROP = 128


def figure(dataset, prediction, result, baseline_metrics, path):
    """Per validation image, a crop of: noisy, Wiener, TV, model, clean, with each PSNR.

    The crop is the ``CROP x CROP`` window (on a grid of step ``CROP / 2``)
    with the most detail (largest variance of the clean image): flat sky
    shows nothing. Returns ``path``, or None without matplotlib.
    """
    from deconv.models.recipes import _pyplot

    plt = _pyplot()
    if plt is None:
        return None
    filters = _filters()
    val, names = dataset.val, dataset.names
    columns = ("noisy input", "wiener", "tv", "model", "clean")
    fig, axes = plt.subplots(len(names), len(columns),
                             figsize=(2.3 * len(columns), 2.5 * len(names)))
    axes = np.atleast_2d(axes)
    for i, (noisy, clean) in enumerate(zip(val.x, val.y)):
        H, W = clean.shape[-2:]
        z = min(CROP, H, W)
        step = max(1, z // 2)
        corners = [(t, l) for t in range(0, H - z + 1, step) for l in range(0, W - z + 1, step)]
        top, left = max(corners, key=lambda c: float(clean[0, c[0]:c[0] + z, c[1]:c[1] + z].var()))
        crop = (0, slice(top, top + z), slice(left, left + z))
        noisy64 = np.asarray(noisy, dtype=np.float64)[0]
        shown = {"noisy input": noisy, "model": prediction[i], "clean": clean}
        for label in ("wiener", "tv"):
            param, _, apply = filters[label]
            shown[label] = apply(noisy64, baseline_metrics[label][param])[None]
        for j, label in enumerate(columns):
            if label == "clean":
                title = f"{names[i]}: clean"
            else:
                psnr = (result if label == "model" else baseline_metrics[label])["psnr_each"][i]
                title = f"{label} {psnr:.2f} dB"
            _show(axes[i, j], np.asarray(shown[label])[crop], title)
    sigma = round(float(np.std(np.asarray(val.x[0], np.float64) - val.y[0])) * 255)
    fig.suptitle(f"deconv train skip: grey held-out photographs, noise sigma ~{sigma}/255; "
                 f"PSNR of the whole image (crops shown): model {result['psnr']:.2f} dB, "
                 f"wiener {baseline_metrics['wiener']['psnr']:.2f}, "
                 f"tv {baseline_metrics['tv']['psnr']:.2f}", fontsize=9)
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)
    return path
