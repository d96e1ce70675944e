"""Evaluation metrics: PSNR, mean absolute error, accuracy.

Each takes whole arrays (a validation set at once) and returns a Python
float computed in float64. They are what ``deconv train`` reports next to
its baselines (:func:`deconv.models.evaluate`, :func:`deconv.models.baseline`).

Examples
--------
>>> import numpy as np
>>> from deconv import metrics
>>> round(metrics.psnr(np.full(4, 0.5), np.full(4, 0.6)), 6)      # MSE 0.01 -> 20 dB
20.0
>>> metrics.mae(np.array([0.0, 1.0]), np.array([0.5, 0.5]))
0.5
>>> metrics.accuracy(np.array([[2.0, 1.0], [0.0, 3.0]]), np.array([0, 0]))   # logits (N, C)
0.5
"""

import math

import numpy as np

from deconv.functional.validation import as_int_at_least, as_real

__all__ = ["mse", "psnr", "psnr_y", "mae", "accuracy"]


def _pair(prediction, target):
    p = np.asarray(prediction, dtype=np.float64)
    t = np.asarray(target, dtype=np.float64)
    if p.shape != t.shape:
        raise ValueError(f"prediction shape {p.shape} must equal the target shape {t.shape}")
    if p.size == 0:
        raise ValueError("empty arrays have no mean")
    return p, t


def mse(prediction, target):
    """Mean squared error over all elements."""
    p, t = _pair(prediction, target)
    return float(np.mean(np.square(p - t)))


def psnr(prediction, target, data_range=1.0):
    """Peak signal-to-noise ratio in dB: ``10 log10(data_range**2 / MSE)``.

    The MSE is taken over all elements of the arrays (the whole set at
    once, not a mean of per-image PSNRs, which would let a few near-perfect
    images dominate); ``inf`` when the arrays are equal. ``data_range`` is
    1 for images in ``[0, 1]``.
    """
    data_range = as_real(data_range, "data_range", 0, low_open=True)
    m = mse(prediction, target)
    return math.inf if m == 0 else float(10.0 * math.log10(data_range**2 / m))


def psnr_y(prediction, target, border=0, data_range=1.0):
    """PSNR of the luminance of one image, ``border`` pixels cropped on every side.

    Parameters
    ----------
    prediction, target : ndarray, shape (C, H, W), C = 3 (RGB) or 1 (luminance already)
        Values in ``[0, 1]``; the prediction is not clipped here (the
        caller decides, :func:`deconv.models.evaluate` does).
    border : int, default 0
        Rows and columns dropped on each side before the MSE (the
        super-resolution convention: ``border = scale``, the pixels whose
        filters reached past the image).
    data_range : float, default 1.0

    Returns
    -------
    float
        ``10 log10(data_range**2 / MSE)`` over the ``(H - 2 b) (W - 2 b)``
        kept luminance values, in float64.

    Notes
    -----
    RGB images go through :func:`deconv.models.images.luminance` (ITU-R
    BT.601 Y, from 16/255 to 235/255); one-channel images are taken as
    that Y already. This is the measure of the SRCNN, FSRCNN and ESPCN
    papers (MATLAB's ``rgb2ycbcr``, then ``shave`` by the scale).

    >>> a, b = np.zeros((1, 6, 6)), np.zeros((1, 6, 6))
    >>> b[0, 0, 0] = 1.0                    # one wrong pixel, in the border
    >>> psnr_y(a, b, border=1)
    inf
    >>> round(psnr_y(a, b, border=0), 4)    # MSE 1/36
    15.563
    """
    from deconv.models.images import luminance

    b = as_int_at_least(border, "border", 0)
    p, t = _pair(prediction, target)
    if p.ndim != 3 or p.shape[0] not in (1, 3):
        raise ValueError(f"prediction and target must have shape (C, H, W) with C = 1 or 3, "
                         f"got {p.shape}")
    H, W = p.shape[1:]
    if 2 * b >= min(H, W):
        raise ValueError(f"border={b} leaves nothing of a {H}x{W} image")
    if p.shape[0] == 3:
        p, t = luminance(p), luminance(t)
    crop = (slice(None), slice(b, H - b), slice(b, W - b))
    return psnr(p[crop], t[crop], data_range)


def mae(prediction, target):
    """Mean absolute error over all elements."""
    p, t = _pair(prediction, target)
    return float(np.mean(np.abs(p - t)))


def accuracy(prediction, target, mask=None):
    """Fraction of positions where the predicted class equals the target.

    Parameters
    ----------
    prediction : ndarray
        Either scores with the class axis 1, ``(N, C, *d)`` for targets
        ``(N, *d)`` (logits or probabilities: the argmax over axis 1 is the
        prediction), or class indices of the target's shape.
    target : int array, shape (N, *d)
    mask : bool array of the target's shape, optional
        Count only the positions where it is True (e.g. the corrupted
        characters of :func:`deconv.data.text`).

    Returns
    -------
    float
        NaN if no position is counted.
    """
    prediction = np.asarray(prediction)
    target = np.asarray(target)
    if prediction.ndim == target.ndim + 1:
        if prediction.shape[:1] + prediction.shape[2:] != target.shape:
            raise ValueError(f"scores of shape {prediction.shape} do not match targets of shape "
                             f"{target.shape} (expected the class axis at position 1)")
        prediction = np.argmax(prediction, axis=1)
    elif prediction.shape != target.shape:
        raise ValueError(f"prediction shape {prediction.shape} must be the target shape "
                         f"{target.shape} (class indices) or have an extra class axis 1 (scores)")
    correct = prediction == target
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != target.shape:
            raise ValueError(f"mask shape {mask.shape} must equal the target shape "
                             f"{target.shape}")
        correct = correct[mask]
    return float(np.mean(correct)) if correct.size else math.nan
