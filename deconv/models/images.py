"""The image corpus: every picture that ships inside an installed package, with a fixed split.

Nothing is downloaded: each image is read from a file inside the wheel of
scikit-image (``skimage/data/*.png|jpg``, through the ``skimage.data``
functions that need no ``pooch``), PyWavelets (``pywt/data/*.npz``),
matplotlib (``mpl-data/sample_data``) or scikit-learn
(``sklearn/datasets/images``). These are the ``train`` extra.

Which images count as photographs
---------------------------------
A *photograph* here is a picture taken by an ordinary camera of an everyday
scene or object, printed nowhere and processed no further than a camera
does: its statistics (smooth regions, edges at every orientation, fine
texture, 1/f spectrum) are those a super-resolution or denoising model will
meet. The other kinds stay apart because their statistics differ:

============  ==================================================================
kind          images
============  ==================================================================
photograph    astronaut, coffee, chelsea, camera (the validation set); rocket,
              coins, clock (motion-blurred), motorcycle_left, motorcycle_right
              (scikit-image); ascent, aero (PyWavelets); grace_hopper
              (matplotlib); china, flower (scikit-learn)
texture       brick, grass, gravel (scikit-image): photographs of one
              stationary texture filling the frame, good training material for
              fine detail but not scenes
scan          retina, microaneurysms (fundus camera), hubble_deep_field
              (telescope), immunohistochemistry (microscope), moon (telescope),
              page, text (scanned print), mri (matplotlib's MRI slice):
              instruments, not cameras, with their own noise and point spread
============  ==================================================================

Left out on purpose: the synthetic pictures (colorwheel,
shepp_logan_phantom, horse, logo, binary_blobs: no natural statistics),
scikit-image's ``cat`` (the very same array as ``chelsea``, a validation
image) and PyWavelets' ``camera`` (the same photograph as scikit-image's
``camera``, also a validation image), and every image that needs a
download (eagle, lily, kidney, cells3d, skin, ...).

The split
---------
Fixed and by image, never by patch: :data:`VALIDATION` (astronaut, coffee,
chelsea, camera) validates; every other catalogued image may train.

Values
------
Images are float arrays ``(C, H, W)`` in ``[0, 1]`` (8-bit values divided
by 255), ``C = 3`` for colour and 1 for grey. Grey tasks use the luminance
(:func:`luminance`, the Y of ITU-R BT.601 YCbCr, as super-resolution papers
measure PSNR).

Examples
--------
>>> from deconv.models import images
>>> images.VALIDATION
('astronaut', 'coffee', 'chelsea', 'camera')
>>> images.load("camera").shape
(1, 512, 512)
>>> set(images.names(split="train")) & set(images.VALIDATION)
set()
"""

from typing import Callable, NamedTuple

import numpy as np

from deconv.functional.validation import as_choice, as_float_dtype, as_int_at_least

__all__ = ["Entry", "CATALOGUE", "KINDS", "VALIDATION", "names", "load", "load_all",
           "luminance", "modcrop", "sample_positions", "dihedral"]

_INSTALL_HINT = "pip install 'deconv-numba[train]'"

#: The kinds of :data:`CATALOGUE`, in the order the module's table gives them.
KINDS = ("photograph", "texture", "scan")

#: The validation images of every image task (the issue's fixed choice).
VALIDATION = ("astronaut", "coffee", "chelsea", "camera")


def _import(module, package):
    """``module`` imported, or an ImportError naming the extra that installs ``package``."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(f"the image corpus needs {package} (an optional dependency); "
                          f"install it with:  {_INSTALL_HINT}") from err


def _skimage(name, index=None):
    def read():
        out = getattr(_import("skimage.data", "scikit-image"), name)()
        return out if index is None else out[index]
    return read


def _pywt(name):
    return lambda: getattr(_import("pywt.data", "PyWavelets"), name)()


def _matplotlib_jpeg(filename):
    def read():
        cbook = _import("matplotlib.cbook", "matplotlib")
        image = _import("PIL.Image", "Pillow (a dependency of matplotlib)")
        with cbook.get_sample_data(filename) as f:
            return np.asarray(image.open(f).convert("RGB"))
    return read


def _matplotlib_mri():
    cbook = _import("matplotlib.cbook", "matplotlib")
    with cbook.get_sample_data("s1045.ima.gz") as f:       # gunzipped on the fly
        raw = f.read()
    # 256 x 256 big-endian 16-bit words whose values are 8-bit grey levels (0..215)
    return np.frombuffer(raw, dtype=">u2").reshape(256, 256).astype(np.uint8)


def _sklearn(filename):
    def read():
        bunch = _import("sklearn.datasets", "scikit-learn").load_sample_images()
        for path, im in zip(bunch.filenames, bunch.images):
            if path.replace("\\", "/").rsplit("/", 1)[-1] == filename:
                return im
        raise LookupError(f"scikit-learn's sample images have no {filename}")
    return read


class Entry(NamedTuple):
    """One image of the corpus: its name, kind, origin and reader."""

    name: str
    kind: str                  # one of KINDS
    source: str                # "package: what it shows"
    read: Callable             # () -> uint8 array (H, W) or (H, W, 3)


#: Every image the corpus knows, in a fixed order (the order of :func:`names`).
CATALOGUE = (
    Entry("astronaut", "photograph", "scikit-image: Eileen Collins, NASA portrait",
          _skimage("astronaut")),
    Entry("coffee", "photograph", "scikit-image: a cup of coffee", _skimage("coffee")),
    Entry("chelsea", "photograph", "scikit-image: Chelsea the cat", _skimage("chelsea")),
    Entry("camera", "photograph", "scikit-image: the cameraman (grey)", _skimage("camera")),
    Entry("rocket", "photograph", "scikit-image: a rocket on its launch pad", _skimage("rocket")),
    Entry("coins", "photograph", "scikit-image: Greek coins (grey)", _skimage("coins")),
    Entry("clock", "photograph", "scikit-image: a wall clock, motion-blurred (grey)",
          _skimage("clock")),
    Entry("motorcycle_left", "photograph", "scikit-image: a motorcycle, left stereo view",
          _skimage("stereo_motorcycle", 0)),
    Entry("motorcycle_right", "photograph", "scikit-image: a motorcycle, right stereo view",
          _skimage("stereo_motorcycle", 1)),
    Entry("ascent", "photograph", "PyWavelets: people on a stair (grey)", _pywt("ascent")),
    Entry("aero", "photograph", "PyWavelets: an aerial photograph (grey)", _pywt("aero")),
    Entry("grace_hopper", "photograph", "matplotlib: Grace Hopper's portrait",
          _matplotlib_jpeg("grace_hopper.jpg")),
    Entry("china", "photograph", "scikit-learn: a temple in China", _sklearn("china.jpg")),
    Entry("flower", "photograph", "scikit-learn: a flower", _sklearn("flower.jpg")),
    Entry("brick", "texture", "scikit-image: a brick wall (grey)", _skimage("brick")),
    Entry("grass", "texture", "scikit-image: grass (grey)", _skimage("grass")),
    Entry("gravel", "texture", "scikit-image: gravel (grey)", _skimage("gravel")),
    Entry("retina", "scan", "scikit-image: a human retina, fundus camera", _skimage("retina")),
    Entry("microaneurysms", "scan", "scikit-image: a retina detail (grey)",
          _skimage("microaneurysms")),
    Entry("hubble_deep_field", "scan", "scikit-image: Hubble eXtreme Deep Field",
          _skimage("hubble_deep_field")),
    Entry("immunohistochemistry", "scan", "scikit-image: stained tissue, microscope",
          _skimage("immunohistochemistry")),
    Entry("moon", "scan", "scikit-image: the moon's surface (grey)", _skimage("moon")),
    Entry("page", "scan", "scikit-image: a scanned page of text (grey)", _skimage("page")),
    Entry("text", "scan", "scikit-image: photographed text (grey)", _skimage("text")),
    Entry("mri", "scan", "matplotlib: an MRI slice (grey)", _matplotlib_mri),
)
_BY_NAME = {e.name: e for e in CATALOGUE}


def names(kinds=KINDS, split="all"):
    """Names of the catalogued images of the given kinds, in catalogue order.

    Parameters
    ----------
    kinds : str or tuple of str, default all of :data:`KINDS`
    split : {'all', 'train', 'val'}
        'val': the :data:`VALIDATION` images (whatever ``kinds`` says: they
        are photographs); 'train': every other image of ``kinds``.

    >>> names("texture")
    ('brick', 'grass', 'gravel')
    """
    kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    for k in kinds:
        as_choice(k, "kinds", KINDS)
    as_choice(split, "split", ("all", "train", "val"))
    if split == "val":
        return VALIDATION
    return tuple(e.name for e in CATALOGUE if e.kind in kinds
                 and (split == "all" or e.name not in VALIDATION))


def load(name, dtype=np.float32):
    """Image ``name`` of :data:`CATALOGUE` as a ``(C, H, W)`` array in ``[0, 1]``.

    ``C`` is 3 for colour images and 1 for grey ones; 8-bit values divided
    by 255 (computed in float64, then cast to ``dtype``). A new array on
    every call.
    """
    entry = _BY_NAME.get(name) if isinstance(name, str) else None
    if entry is None:
        raise ValueError(f"unknown image {name!r}; expected one of {', '.join(_BY_NAME)}")
    dt = as_float_dtype(dtype)
    raw = np.asarray(entry.read())
    if raw.dtype != np.uint8:
        raise TypeError(f"image {name!r} was expected as 8-bit values, got dtype {raw.dtype}")
    chw = raw[None] if raw.ndim == 2 else raw.transpose(2, 0, 1)      # (C, H, W)
    return np.ascontiguousarray((chw.astype(np.float64) / 255.0).astype(dt))


def load_all(image_names, dtype=np.float32):
    """:func:`load` of each name: a tuple of arrays in the same order."""
    return tuple(load(n, dtype) for n in image_names)


#: ITU-R BT.601 Y' for R'G'B' in [0, 1], "studio swing" (black 16/255, white 235/255),
#: the Y of MATLAB's ``rgb2ycbcr`` on which super-resolution papers compute PSNR.
BT601_OFFSET = 16.0 / 255.0
BT601_WEIGHTS = np.array([65.481, 128.553, 24.966]) / 255.0


def luminance(image):
    """The luminance Y (ITU-R BT.601) of an image ``(C, H, W)`` or a batch ``(N, C, H, W)``.

    Parameters
    ----------
    image : ndarray, shape (..., C, H, W), C = 3 (R, G, B) or 1 (grey), values in [0, 1]

    Returns
    -------
    ndarray, shape (..., 1, H, W)
        Same float dtype as ``image`` (float64 for integer input).

    Notes
    -----
    ``Y = 16/255 + (65.481 R + 128.553 G + 24.966 B) / 255`` with R, G, B
    in ``[0, 1]``, so Y lies in ``[16/255, 235/255]``. A grey image is
    taken as ``R = G = B``: ``Y = (16 + 219 g) / 255``. The arithmetic is
    float64; the result is cast back.

    >>> float(luminance(np.ones((3, 1, 1)))[0, 0, 0] * 255)
    235.0
    >>> float(luminance(np.zeros((1, 1, 1)))[0, 0, 0] * 255)
    16.0
    """
    a = np.asarray(image)
    if a.ndim < 3 or a.shape[-3] not in (1, 3):
        raise ValueError(f"image must have shape (..., C, H, W) with C = 1 or 3, got {a.shape}")
    out_dtype = a.dtype if a.dtype.kind == "f" else np.float64
    x = a.astype(np.float64)
    if a.shape[-3] == 1:
        y = BT601_OFFSET + BT601_WEIGHTS.sum() * x
    else:
        r, g, b = x[..., 0:1, :, :], x[..., 1:2, :, :], x[..., 2:3, :, :]
        y = BT601_OFFSET + BT601_WEIGHTS[0] * r + BT601_WEIGHTS[1] * g + BT601_WEIGHTS[2] * b
    return y.astype(out_dtype)


def modcrop(image, multiple):
    """``image[..., :H - H % m, :W - W % m]``: height and width cut to multiples of ``m``.

    The first rows and columns are kept (the papers' ``modcrop``), so a
    low-resolution pixel ``(i, j)`` covers exactly the block of rows
    ``m i .. m i + m - 1`` and columns ``m j .. m j + m - 1``.

    >>> modcrop(np.zeros((1, 7, 10)), 4).shape
    (1, 4, 8)
    """
    m = as_int_at_least(multiple, "multiple", 1)
    a = np.asarray(image)
    H, W = a.shape[-2:]
    if H < m or W < m:
        raise ValueError(f"image of size {H}x{W} is smaller than multiple={m}")
    return a[..., :H - H % m, :W - W % m]


def sample_positions(sizes, count, patch_size, seed):
    """Seeded top-left corners of ``count`` patches, spread over images by their area.

    Parameters
    ----------
    sizes : sequence of (H, W)
        The images' heights and widths.
    count : int
        Patches to draw.
    patch_size : int
        Side of a square patch; every image must be at least that large.
    seed : int
        ``np.random.default_rng(seed)`` draws everything.

    Returns
    -------
    int64 array, shape (count, 4)
        Rows ``(image index, top row, left column, d)``: ``d`` in ``0..7``
        names one of the eight symmetries of the square (:func:`dihedral`).

    Notes
    -----
    Each patch picks its image with probability proportional to the
    number of positions the patch can take in it, then a position
    uniformly: every possible patch of every image is equally likely, so
    a large image is not under-sampled and a small one not over-sampled.
    The same arguments always give the same patches.

    >>> sample_positions([(10, 10), (20, 30)], 3, 8, seed=0).shape
    (3, 4)
    """
    p = as_int_at_least(patch_size, "patch_size", 1)
    count = as_int_at_least(count, "count", 0)
    sizes = [(int(h), int(w)) for h, w in sizes]
    if not sizes:
        raise ValueError("sizes is empty: there is no image to take patches from")
    small = [i for i, (h, w) in enumerate(sizes) if h < p or w < p]
    if small:
        raise ValueError(f"patch_size={p} does not fit image(s) {small} of sizes "
                         f"{[sizes[i] for i in small]}")
    rng = np.random.default_rng(as_int_at_least(seed, "seed", 0))
    positions = np.array([(h - p + 1) * (w - p + 1) for h, w in sizes], dtype=np.float64)
    which = rng.choice(len(sizes), size=count, p=positions / positions.sum())
    rows_max = np.array([h - p + 1 for h, _ in sizes])[which]
    cols_max = np.array([w - p + 1 for _, w in sizes])[which]
    rows = (rng.random(count) * rows_max).astype(np.int64)
    cols = (rng.random(count) * cols_max).astype(np.int64)
    sym = rng.integers(0, 8, size=count)
    return np.stack([which, rows, cols, sym], axis=1).astype(np.int64)


def dihedral(a, d):
    """Symmetry ``d`` (0..7) of the square applied to the last two axes of ``a``.

    ``d & 3`` quarter turns (:func:`np.rot90`), then a left-right flip when
    ``d & 4``; 0 is the identity. Returns a view.

    >>> dihedral(np.arange(4).reshape(2, 2), 5).tolist()
    [[3, 1], [2, 0]]
    """
    out = np.rot90(a, int(d) & 3, axes=(-2, -1))
    return out[..., ::-1] if int(d) & 4 else out
