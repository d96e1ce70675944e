"""Small data sets that ship offline, with fixed train/validation splits.

Nothing is downloaded and nothing is cached on disk: every function builds
its arrays in memory from data installed with scikit-learn (the 8x8 digits
and the two sample photographs), with the image corpus of
:mod:`deconv.models.images` (the pictures bundled in scikit-image,
PyWavelets, matplotlib and scikit-learn) or with Python itself (the text of
``pydoc_data.topics``, and the standard library's source:
:mod:`deconv.models.corpus`). Two calls with the same arguments return equal
arrays: the splits are fixed index ranges or fixed image regions, and every
random choice (noise, corruption) comes from a documented seed.

Images are float arrays in ``[0, 1]`` in NCHW layout (float32 by default,
``dtype=np.float64`` for gradient checks); labels and character indices
are int64. Every loader returns a :class:`Dataset` ``(train, val)`` of two
:class:`Split` ``(x, y, mask)``: ``x`` is the model's input, ``y`` its
target and ``mask`` (text only) marks the corrupted positions.

========================  ===================  ==================  =============  ===========
loader                    x                    y                   train N        val N
========================  ===================  ==================  =============  ===========
:func:`digits`            (N, 1, 8, 8)         (N,) int64 0..9     1437           360
:func:`digits_denoising`  (N, 1, 8, 8) noisy   (N, 1, 8, 8) clean  1437           360
:func:`patches`           (N, 3, 32, 32)       x itself            1450           450
:func:`superres`          (N, 3, 32/r, 32/r)   (N, 3, 32, 32)      1450           450
:func:`superres_corpus`   (N, 1, 24, 24) Y     (N, 1, 24r, 24r)    8192           4 images
:func:`text`              (N, 64) int64        (N, 64) int64       6538 (3.11)    726 (3.11)
:func:`stdlib_text`       (N, 64) int64        (N, 64) int64       150148 (3.11)  5267 (3.11)
========================  ===================  ==================  =============  ===========

:func:`superres_corpus` returns an :class:`ImageDataset`, whose validation split
holds whole images of different sizes (tuples, not arrays).

(patch sizes and strides, window length and corruption rate are arguments;
the sizes above are the defaults. The text's N depends on the Python
version, whose documentation it is.)

scikit-learn is an optional dependency (the ``train`` extra): it is
imported inside the functions that need it, which raise an ImportError
saying ``pip install 'deconv-numba[train]'`` when it is missing. The text
needs only the standard library.

Examples
--------
>>> from deconv import data
>>> s = "print('hi')\\n"
>>> data.decode(data.encode(s)) == s
True
>>> data.VOCAB_SIZE
97
"""

from typing import NamedTuple, Optional

import numpy as np

from deconv.functional.validation import (
    as_float_dtype, as_generator, as_int, as_int_at_least, as_real,
)

__all__ = [
    "Split", "Dataset",
    "digits", "digits_denoising",
    "sample_photos", "extract_patches", "downsample", "patches",
    "superres", "downscale", "ImageDataset", "superres_pair", "superres_corpus",
    "VOCAB", "VOCAB_SIZE", "UNK", "UNK_CHAR", "encode", "decode", "corrupt", "text_corpus",
    "text", "stdlib_text",
]

_INSTALL_HINT = "pip install 'deconv-numba[train]'"


class Split(NamedTuple):
    """One part (train or validation) of a data set.

    Attributes
    ----------
    x : ndarray
        Model inputs, first axis = examples.
    y : ndarray
        Targets, first axis = examples (for :func:`patches`, ``x`` itself).
    mask : ndarray of bool or None
        :func:`text` only: True where ``x`` was corrupted (shape of ``x``).
    """

    x: np.ndarray
    y: np.ndarray
    mask: Optional[np.ndarray] = None

    def __len__(self):          # the number of examples (not the tuple's 3 fields)
        return len(self.x)


class Dataset(NamedTuple):
    """``(train, val)``: two :class:`Split`, never overlapping."""

    train: Split
    val: Split


def _sklearn_datasets():
    """``sklearn.datasets``, imported on first use, or a clear ImportError."""
    try:
        import sklearn.datasets
    except ImportError as err:
        raise ImportError(
            f"deconv.data needs scikit-learn for the digits and the sample photographs "
            f"(it is an optional dependency); install it with:  {_INSTALL_HINT}") from err
    return sklearn.datasets


def _seeded(seed, stream):
    """An independent Generator per (seed, stream): train and val noise never depend on sizes."""
    return np.random.default_rng([as_int_at_least(seed, "seed", 0), stream])


# ---------------------------------------------------------------------------
# digits
# ---------------------------------------------------------------------------

#: Digits ``[0, 1437)`` are the training set, ``[1437, 1797)`` the validation set.
DIGITS_TRAIN = 1437


def _digits_arrays(dtype):
    bunch = _sklearn_datasets().load_digits()
    images = (bunch.images / 16.0).astype(as_float_dtype(dtype))[:, None]    # (1797, 1, 8, 8)
    labels = bunch.target.astype(np.int64)                                  # (1797,)
    return images, labels


def digits(dtype=np.float32):
    """The 8x8 handwritten digits of scikit-learn, for classification.

    Parameters
    ----------
    dtype : np.float32 (default) or np.float64

    Returns
    -------
    Dataset
        ``train.x`` (1437, 1, 8, 8), ``val.x`` (360, 1, 8, 8): grey levels
        0..16 divided by 16, so in ``[0, 1]``; ``y`` int64 labels 0..9.

    Notes
    -----
    ``sklearn.datasets.load_digits()`` (1797 images, UCI "optical
    recognition of handwritten digits", 43 writers) in its stored order;
    the split is by index: the first 1437 (80 %) for training, the last 360
    for validation. The stored order groups images by writer, so the
    validation digits come mostly from writers not seen in training. Every
    class has 33..37 validation images.
    """
    images, labels = _digits_arrays(dtype)
    n = DIGITS_TRAIN
    return Dataset(Split(images[:n], labels[:n]), Split(images[n:], labels[n:]))


def digits_denoising(sigma=0.3, seed=0, dtype=np.float32):
    """Noisy digits (input) and the clean digits (target), for denoising.

    Parameters
    ----------
    sigma : float, default 0.3
        Standard deviation of the added Gaussian noise (the image range is
        ``[0, 1]``).
    seed : int, default 0
        The noise of the training images comes from
        ``np.random.default_rng([seed, 0])``, that of the validation images
        from ``default_rng([seed, 1])``.
    dtype : np.float32 (default) or np.float64

    Returns
    -------
    Dataset
        ``x`` = ``clip(clean + sigma * N(0, 1), 0, 1)``, ``y`` = clean,
        both ``(N, 1, 8, 8)``; the split of :func:`digits` (1437 / 360).

    Notes
    -----
    The noise is drawn once (in float64, then converted): every epoch sees
    the same noisy training images. Clipping keeps the input a valid image;
    it makes the noise on the black background one-sided (mean about
    ``0.4 * sigma``), which a model must learn to remove too. With the
    defaults the noisy validation input has a PSNR of about 12.9 dB against
    the clean images.
    """
    sigma = as_real(sigma, "sigma", 0)
    dt = as_float_dtype(dtype)
    images, _ = _digits_arrays(np.float64)
    n = DIGITS_TRAIN
    out = []
    for stream, clean in enumerate((images[:n], images[n:])):
        noise = _seeded(seed, stream).standard_normal(clean.shape)
        noisy = np.clip(clean + sigma * noise, 0.0, 1.0)
        out.append(Split(noisy.astype(dt), clean.astype(dt)))
    return Dataset(*out)


# ---------------------------------------------------------------------------
# colour photographs: patches for the autoencoder and for super-resolution
# ---------------------------------------------------------------------------

#: Columns ``[0, 480)`` of each photograph are for training, ``[480, 640)`` for validation.
PHOTO_TRAIN_COLUMNS = 480


def sample_photos(dtype=np.float32):
    """scikit-learn's two sample photographs as one ``(2, 3, 427, 640)`` array in ``[0, 1]``.

    Index 0 is ``china.jpg`` (a temple), 1 is ``flower.jpg``; 8-bit RGB
    values divided by 255.
    """
    bunch = _sklearn_datasets().load_sample_images()
    by_name = {name.replace("\\", "/").rsplit("/", 1)[-1]: im
               for name, im in zip(bunch.filenames, bunch.images)}
    images = np.stack([by_name["china.jpg"], by_name["flower.jpg"]])    # (2, 427, 640, 3) uint8
    images = images.transpose(0, 3, 1, 2).astype(np.float64) / 255.0
    return np.ascontiguousarray(images.astype(as_float_dtype(dtype)))


def extract_patches(images, size, stride):
    """Every ``size x size`` patch of ``images`` (N, C, H, W) on a grid of step ``stride``.

    Patches start at rows and columns ``0, stride, 2*stride, ...`` while
    they fit (a remainder at the bottom and right is dropped); order:
    image, then row, then column. Returns a new array ``(M, C, size, size)``.

    >>> extract_patches(np.zeros((2, 3, 10, 12)), 4, 4).shape     # 2 x (2 rows x 3 columns)
    (12, 3, 4, 4)
    """
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"images must have shape (N, C, H, W), got {images.shape}")
    size, stride = as_int_at_least(size, "size", 1), as_int_at_least(stride, "stride", 1)
    N, C, H, W = images.shape
    if size > H or size > W:
        raise ValueError(f"patch size {size} does not fit images of size {H}x{W}")
    rows = range(0, H - size + 1, stride)
    cols = range(0, W - size + 1, stride)
    out = np.empty((N * len(rows) * len(cols), C, size, size), dtype=images.dtype)
    k = 0
    for n in range(N):
        for r in rows:
            for c in cols:
                out[k] = images[n, :, r:r + size, c:c + size]
                k += 1
    return out


def downsample(images, factor):
    """Box downsampling: the mean of each ``factor x factor`` block (:func:`deconv.avg_pool2d`).

    ``(N, C, H, W) -> (N, C, H // factor, W // factor)``; the inputs of
    :func:`superres` and the autoencoder's baselines (:func:`superres_corpus`
    uses :func:`downscale`).

    >>> downsample(np.arange(16.0).reshape(1, 1, 4, 4), 2)[0, 0]
    array([[ 2.5,  4.5],
           [10.5, 12.5]])
    """
    from deconv.pooling import avg_pool2d

    factor = as_int_at_least(factor, "factor", 1)
    return avg_pool2d(images, factor)


def _photo_regions(dtype):
    photos = sample_photos(dtype)                           # (2, 3, 427, 640)
    c = PHOTO_TRAIN_COLUMNS
    return photos[:, :, :, :c], photos[:, :, :, c:]


def patches(patch_size=32, stride=16, dtype=np.float32):
    """Colour patches of the two sample photographs, for the autoencoder.

    Parameters
    ----------
    patch_size : int, default 32
    stride : int, default 16
        Step of the patch grid (patches overlap when ``stride <
        patch_size``), the same in both regions.
    dtype : np.float32 (default) or np.float64

    Returns
    -------
    Dataset
        ``x`` = ``y`` (the same array): ``(N, 3, patch_size, patch_size)``
        in ``[0, 1]``. With the defaults: 1450 training patches (2 photos x
        25 rows x 29 columns) and 450 validation patches (2 x 25 x 9).

    Notes
    -----
    Both photographs (:func:`sample_photos`) are cut at column 480:
    training patches lie entirely in columns ``[0, 480)``, validation
    patches entirely in ``[480, 640)``, so no training pixel is ever seen
    in validation. Patches are taken on a grid from the top-left corner of
    each region (:func:`extract_patches`).
    """
    train_region, val_region = _photo_regions(dtype)
    tr = extract_patches(train_region, patch_size, stride)
    va = extract_patches(val_region, patch_size, stride)
    return Dataset(Split(tr, tr), Split(va, va))


def superres(scale=2, patch_size=32, stride=16, dtype=np.float32):
    """Low-resolution patches (input) and the high-resolution patches (target), box-downsampled.

    The RGB patch data of notebook 6 and :func:`deconv.models.superres`;
    ``deconv train superres`` uses :func:`superres_corpus`.

    Parameters
    ----------
    scale : int, default 2
        Downsampling factor (2 and 4 are the ones used); must divide
        ``patch_size``.
    patch_size, stride, dtype
        As in :func:`patches` (the high-resolution patches are exactly
        those of :func:`patches`).

    Returns
    -------
    Dataset
        ``x``: ``(N, 3, patch_size/scale, patch_size/scale)``, ``y``:
        ``(N, 3, patch_size, patch_size)``; 1450 training and 450
        validation pairs with the defaults (the regions of :func:`patches`).

    Notes
    -----
    The low-resolution image is the box average of every ``scale x scale``
    block of the target (:func:`downsample`, i.e. ``avg_pool2d`` with kernel
    and stride ``scale``): the camera model of a sensor with bigger pixels,
    with no aliasing from skipped pixels.
    """
    scale, patch_size = as_int(scale, "scale"), as_int(patch_size, "patch_size")
    if scale < 1 or patch_size % scale:
        raise ValueError(f"scale must be a positive divisor of patch_size={patch_size}, "
                         f"got {scale}")
    ds = patches(patch_size, stride, dtype)
    return Dataset(*(Split(downsample(s.y, scale), s.y) for s in ds))


def downscale(images, scale):
    """Bicubic downsampling with antialiasing by an integer ``scale``: the low-resolution inputs.

    Parameters
    ----------
    images : ndarray, shape (N, C, H, W) or (C, H, W)
        float32 or float64; ``H`` and ``W`` multiples of ``scale``
        (:func:`deconv.models.images.modcrop`).
    scale : int

    Returns
    -------
    ndarray, shape (N, C, H / scale, W / scale) or (C, H / scale, W / scale)

    Notes
    -----
    :func:`deconv.interpolate` with ``mode='bicubic', antialias=True``: the
    cubic kernel (``a = -0.5``) stretched by ``scale``, i.e. MATLAB's
    ``imresize`` and Pillow's ``BICUBIC`` resize, the way the
    super-resolution papers make their inputs. On camera, coins and
    astronaut it agrees with Pillow's float ("F" mode) resize to 1e-7, and
    with its 8-bit resize to within 3 grey levels at x2 and 5 at x4 at
    most, 0.26 to 0.31 of a level on average (Pillow rounds to 8 bits
    between its two passes); tests/test_data_images.py measures it. The result is not clipped: the cubic filter overshoots
    at strong edges by a few percent, as it does in the papers.
    """
    from deconv.functional.interpolate import interpolate

    r = as_int_at_least(scale, "scale", 1)
    a = np.asarray(images)
    if a.ndim not in (3, 4):
        raise ValueError(f"images must have shape (N, C, H, W) or (C, H, W), got {a.shape}")
    H, W = a.shape[-2:]
    if H % r or W % r:
        raise ValueError(f"images of size {H}x{W} are not multiples of scale={r}: modcrop them "
                         f"first (deconv.models.images.modcrop)")
    batch = a if a.ndim == 4 else a[None]
    out = interpolate(batch, size=(H // r, W // r), mode="bicubic", antialias=True)
    return out if a.ndim == 4 else out[0]


class ImageDataset(NamedTuple):
    """Training patches and whole validation images.

    Attributes
    ----------
    train : Split
        ``x``, ``y``: arrays of patches, first axis = examples.
    val : Split
        ``x``, ``y``: tuples of whole images ``(C, h, w)``, one per name,
        of different sizes (a fully convolutional model takes each whole).
    names : tuple of str
        The validation images' names, in the order of ``val``.
    """

    train: Split
    val: Split
    names: tuple


#: Low-resolution side of a training patch of :func:`superres_corpus`, and patches drawn.
SUPERRES_PATCH = 24
SUPERRES_COUNT = 8192
#: The kinds of images super-resolution trains on (deconv.models.images.KINDS).
SUPERRES_KINDS = ("photograph", "texture")


def superres_pair(image, scale):
    """``(low, high)``: the luminance of ``image`` cut to multiples of ``scale``, and its
    :func:`downscale`. ``image`` is ``(C, H, W)``; both results ``(1, ., .)``."""
    from deconv.models.images import luminance, modcrop

    high = modcrop(luminance(image), scale)
    return downscale(high, scale), np.ascontiguousarray(high)


def superres_corpus(scale=2, patch_size=SUPERRES_PATCH, count=SUPERRES_COUNT,
                    kinds=SUPERRES_KINDS, seed=0, dtype=np.float32):
    """Super-resolution on the image corpus: luminance patches to train, whole images to validate.

    Parameters
    ----------
    scale : int, default 2
        ``r``.
    patch_size : int, default 24
        ``p``, the low-resolution side of a training patch (the target's is
        ``r p``).
    count : int, default 8192
        Training patches drawn.
    kinds : tuple of str, default ('photograph', 'texture')
        The kinds of :mod:`deconv.models.images` that train.
    seed : int, default 0
        Seed of the patch positions and symmetries
        (:func:`deconv.models.images.sample_positions`).
    dtype : np.float32 (default) or np.float64

    Returns
    -------
    ImageDataset
        ``train.x`` ``(count, 1, p, p)``, ``train.y`` ``(count, 1, r p, r p)``;
        ``val.x``, ``val.y``: the four validation images whole, ``(1, h, w)``
        and ``(1, r h, r w)``; ``names``: their names
        (:data:`deconv.models.images.VALIDATION`).

    Notes
    -----
    Each image (training and validation alike) is turned into its
    luminance Y (ITU-R BT.601, :func:`deconv.models.images.luminance`; the
    FSRCNN and ESPCN papers train and measure on Y), cut to multiples of
    ``r`` (``modcrop``) and downscaled whole by :func:`downscale`. A
    training pair is a ``p x p`` window of the low-resolution image and the
    ``r p x r p`` window of the high-resolution one above it, both turned
    by the same one of the eight symmetries of the square (flips and
    quarter turns commute with the separable, symmetric filter: the pair
    stays exact). No validation image is ever cut into training patches.
    """
    from deconv.models import images as corpus

    r = as_int_at_least(scale, "scale", 1)
    p = as_int_at_least(patch_size, "patch_size", 1)
    dt = as_float_dtype(dtype)
    kinds = tuple(kinds)
    train_pairs = [superres_pair(im, r) for im in
                   corpus.load_all(corpus.names(kinds, split="train"), np.float64)]
    positions = corpus.sample_positions([lo.shape[-2:] for lo, _ in train_pairs], count, p, seed)
    lows = np.empty((len(positions), 1, p, p), dtype=dt)
    highs = np.empty((len(positions), 1, r * p, r * p), dtype=dt)
    for k, (i, row, col, sym) in enumerate(positions):
        lo, hi = train_pairs[i]
        lows[k] = corpus.dihedral(lo[:, row:row + p, col:col + p], sym)
        highs[k] = corpus.dihedral(hi[:, r * row:r * (row + p), r * col:r * (col + p)], sym)
    val_pairs = [superres_pair(im, r) for im in corpus.load_all(corpus.VALIDATION, np.float64)]
    val = Split(tuple(lo.astype(dt) for lo, _ in val_pairs),
                tuple(hi.astype(dt) for _, hi in val_pairs))
    return ImageDataset(Split(lows, highs), val, corpus.VALIDATION)


# ---------------------------------------------------------------------------
# text
# ---------------------------------------------------------------------------

#: Index 0 is ``<unk>`` (any character not in the vocabulary), 1 is ``"\n"``, then the 95
#: printable ASCII characters from ``" "`` (2) to ``"~"`` (96).
VOCAB = ("<unk>", "\n") + tuple(chr(c) for c in range(32, 127))
VOCAB_SIZE = len(VOCAB)
UNK = 0
#: What :func:`decode` writes for ``<unk>``.
UNK_CHAR = "\ufffd"
_LOOKUP = np.zeros(128, dtype=np.int64)                     # ASCII code -> index (0 = <unk>)
_LOOKUP[ord("\n")] = 1
_LOOKUP[32:127] = np.arange(2, VOCAB_SIZE)
_CHARS = np.array([UNK_CHAR] + list(VOCAB[1:]))


def encode(s):
    """A string -> int64 indices into :data:`VOCAB` (characters outside it -> :data:`UNK`).

    >>> encode("a\\n~").tolist()
    [67, 1, 96]
    """
    if not isinstance(s, str):
        raise TypeError(f"encode expects a str, got {type(s).__name__}")
    codes = np.frombuffer(s.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
    out = np.zeros(codes.shape, dtype=np.int64)
    ascii_ = codes < 128
    out[ascii_] = _LOOKUP[codes[ascii_]]
    return out


def decode(indices):
    """Indices into :data:`VOCAB` -> a string (``<unk>`` becomes :data:`UNK_CHAR`).

    A 1-D array gives one string; use a loop for a batch. Inverts
    :func:`encode` on text made of vocabulary characters.
    """
    indices = np.asarray(indices)
    if indices.dtype.kind not in "iu" or indices.ndim != 1:
        raise ValueError(f"decode expects a 1-D integer array, got dtype {indices.dtype} and "
                         f"shape {indices.shape}")
    if indices.size and (indices.min() < 0 or indices.max() >= VOCAB_SIZE):
        raise ValueError(f"indices must lie in [0, {VOCAB_SIZE}), got values in "
                         f"[{indices.min()}, {indices.max()}]")
    return "".join(_CHARS[indices])


def corrupt(indices, rate=0.15, rng=0):
    """Replace a fraction of the characters of each window by other, random characters.

    Parameters
    ----------
    indices : int array (N, L)
        Windows of vocabulary indices.
    rate : float in [0, 1], default 0.15
        In every window exactly ``round(rate * L)`` positions, chosen
        uniformly without replacement, are replaced.
    rng : int or np.random.Generator, default 0

    Returns
    -------
    corrupted : int64 array (N, L)
        A copy of ``indices`` with the chosen positions replaced by a
        character drawn uniformly from the ``VOCAB_SIZE - 2 = 95``
        vocabulary characters other than ``<unk>`` and the original one,
        so every chosen position really changes.
    mask : bool array (N, L)
        True exactly where ``corrupted != indices``.
    """
    x = np.asarray(indices)
    if x.ndim != 2 or x.dtype.kind not in "iu":
        raise ValueError(f"indices must be a 2-D integer array (N, L), got dtype {x.dtype} and "
                         f"shape {x.shape}")
    rate = as_real(rate, "rate", 0, 1)
    gen = as_generator(rng)
    N, L = x.shape
    k = int(round(rate * L))
    order = np.argsort(gen.random((N, L)), axis=1, kind="stable")
    mask = np.zeros((N, L), dtype=bool)
    np.put_along_axis(mask, order[:, :k], True, axis=1)
    # real characters are 1..V-1; shift the original by 1..V-2 places around that cycle
    n_real = VOCAB_SIZE - 1
    shift = gen.integers(1, n_real, size=(N, L))
    replaced = 1 + (np.maximum(x, 1) - 1 + shift) % n_real
    corrupted = np.where(mask, replaced, x).astype(np.int64)
    # <unk> (0) becomes a real character; any real original differs from its replacement
    return corrupted, mask


def text_corpus():
    """The text of ``pydoc_data.topics.topics`` (Python's help topics) as one string.

    The topics are joined in sorted order of their keys, with nothing in
    between. About 465,000 characters on Python 3.11 (the text is that of
    the running Python's documentation); 97.5 % of them are letters, digits,
    punctuation or spaces, 2.4 % newlines, and under 0.2 % fall outside
    :data:`VOCAB` (typographic quotes and dashes).
    """
    from pydoc_data.topics import topics

    return "".join(topics[key] for key in sorted(topics))


#: The first 90 % of the text (by position) is for training, the rest for validation.
TEXT_TRAIN_FRACTION = 0.9


def text(window=64, rate=0.15, seed=0):
    """Corrupted windows of Python's help text (input), the originals (target) and the mask.

    Parameters
    ----------
    window : int, default 64
        Characters per example ``L``.
    rate : float, default 0.15
        Fraction of each window replaced (:func:`corrupt`).
    seed : int, default 0
        Training windows are corrupted with ``default_rng([seed, 0])``,
        validation windows with ``default_rng([seed, 1])``.

    Returns
    -------
    Dataset
        ``x``: corrupted windows, ``y``: original windows, int64 ``(N, L)``
        indices into :data:`VOCAB`; ``mask``: bool ``(N, L)``, True at the
        corrupted positions. On Python 3.11 with the defaults: 6538
        training and 726 validation windows. The corruption rate is exactly
        ``round(rate * L) / L`` in every window (10 / 64 = 15.6 % by default).

    Notes
    -----
    :func:`text_corpus` is encoded (:func:`encode`) and cut at 90 % of its
    length: the training windows are the consecutive, non-overlapping
    windows of the first part, the validation windows those of the second,
    starting at the cut (a remainder shorter than a window is dropped), so
    no character is in both. The corruption is drawn once: every epoch sees
    the same corrupted training windows.
    """
    window = as_int_at_least(window, "window", 1)
    codes = encode(text_corpus())
    cut = int(len(codes) * TEXT_TRAIN_FRACTION)
    return _windows((codes[:cut], codes[cut:]), window, rate, seed)


def _windows(parts, window, rate, seed):
    """Consecutive windows of each encoded part, corrupted with the part's own stream."""
    out = []
    for stream, part in enumerate(parts):
        n = len(part) // window
        clean = part[:n * window].reshape(n, window).copy()
        noisy, mask = corrupt(clean, rate, _seeded(seed, stream))
        out.append(Split(noisy, clean, mask))
    return Dataset(*out)


def stdlib_text(window=64, rate=0.15, seed=0, root=None):
    """Corrupted windows of the standard library's source, split by file.

    Parameters
    ----------
    window, rate, seed
        As in :func:`text` (training windows corrupted with
        ``default_rng([seed, 0])``, validation windows with
        ``default_rng([seed, 1])``).
    root : str, optional
        The library's directory (default: the running interpreter's;
        :func:`deconv.models.corpus.stdlib_root`).

    Returns
    -------
    Dataset
        As :func:`text`: ``x`` corrupted, ``y`` original windows, ``mask``.
        On CPython 3.11 with the defaults: 150,148 training windows (590
        files, 9.6 MB) and 5,267 validation windows (the 10 files of
        :data:`deconv.models.corpus.VALIDATION_FILES`, 0.34 MB).

    Notes
    -----
    The training files' texts are joined in their fixed order
    (:func:`deconv.models.corpus.stdlib_text`) and cut into consecutive,
    non-overlapping windows; so are the validation files'. No file is on
    both sides. About 0.01 % of the characters (non-ASCII letters in
    comments and strings) are :data:`UNK`.
    """
    from deconv.models import corpus

    window = as_int_at_least(window, "window", 1)
    train, val = corpus.stdlib_text(root)
    return _windows((encode(train), encode(val)), window, rate, seed)
