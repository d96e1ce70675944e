"""Likelihood losses: NLLLoss, CrossEntropyLoss, BCELoss, BCEWithLogitsLoss, KLDivLoss.

Each follows :class:`~deconv.nn.loss.Loss`: ``forward(prediction, target)``
reduces the per-element loss as ``reduction`` says ('mean', 'sum' or
'none'), ``backward([grad_output])`` returns the gradient with respect to
the prediction. The class losses (NLLLoss, CrossEntropyLoss) take the
prediction ``(N, C, d1, ...)`` with the classes on axis 1 and integer
targets ``(N, d1, ...)``; their 'mean' divides by the sum of the weights of
the targets not ignored, as torch.
"""

import math
import warnings

import numpy as np

from deconv.functional.validation import (
    as_bool, as_finite_real_array, as_float_array, as_int, as_integer_array, as_real, check_bytes,
)
from deconv.nn.loss import Loss
from deconv.nn.module import prefixed

__all__ = ["NLLLoss", "CrossEntropyLoss", "BCELoss", "BCEWithLogitsLoss", "KLDivLoss"]


def _class_weight(name, weight):
    """None, or ``weight`` as a float64 vector of finite per-class weights."""
    if weight is None:
        return None
    with prefixed(name):
        weight = as_finite_real_array(weight, "weight")
    if weight.ndim != 1:
        raise ValueError(f"{name}: weight must be a 1-D array of one weight per class, got "
                         f"shape {weight.shape}")
    return weight


def _broadcast_weight(name, weight, arg, shape):
    """``weight`` (float64, or None) broadcast to ``shape``; the error names ``arg``."""
    if weight is None:
        return None
    try:
        if np.broadcast_shapes(weight.shape, shape) == shape:
            return np.broadcast_to(weight, shape)
    except ValueError:
        pass
    raise ValueError(f"{name}: {arg} of shape {weight.shape} must broadcast to the prediction "
                     f"shape {shape} (NumPy's rule: trailing axes align)")


class _ClassLoss(Loss):
    """The common part of NLLLoss and CrossEntropyLoss: options, shapes, targets."""

    _what = "log-probabilities"

    def __init__(self, weight=None, ignore_index=-100, reduction="mean"):
        """Check and store the options; errors start with the class name."""
        super().__init__(reduction)
        name = type(self).__name__
        self.weight = _class_weight(name, weight)
        with prefixed(name):
            self.ignore_index = as_int(ignore_index, "ignore_index")

    def _classes(self, prediction, target):
        """Checked ``(M, C)`` scores, targets (0 where ignored), mask and weights of the targets."""
        name, what = type(self).__name__, self._what
        with prefixed(name):
            scores = as_float_array(prediction, f"prediction ({what})")
        if scores.ndim < 2 or scores.shape[1] < 1:
            raise ValueError(
                f"{name}: prediction ({what}) must have shape (N, C) or (N, C, d1, ...) with "
                f"C >= 1, got shape {scores.shape}")
        with prefixed(name):
            target = as_integer_array(target, "target", what="class indices "
                                      "(probability targets are not supported)")
        C = scores.shape[1]
        expected = scores.shape[:1] + scores.shape[2:]
        if target.shape != expected:
            raise ValueError(
                f"{name}: target shape {target.shape} does not match the prediction ({what}) "
                f"shape {scores.shape}; expected {expected} (the {what}' shape without "
                f"the class axis 1)")
        with prefixed(name):
            # the scores' temporaries (they may be a broadcast view) and the gradient
            check_bytes("intermediates", *[(scores.shape, scores.dtype)] * 4,
                        *[(target.shape, np.int64)] * 3)
        if self.weight is not None and self.weight.shape != (C,):
            raise ValueError(
                f"{name}: weight has shape {self.weight.shape}, expected ({C},) for the {C} "
                f"classes of the prediction ({what}) of shape {scores.shape}")
        t = target.reshape(-1).astype(np.int64)               # (M,)
        valid = t != self.ignore_index                        # (M,)
        bad = valid & ((t < 0) | (t >= C))
        if bad.any():
            raise ValueError(
                f"{name}: target values must lie in [0, {C}) (C = prediction.shape[1]) or "
                f"equal ignore_index={self.ignore_index}, got {int(t[bad][0])}")
        t = np.where(valid, t, 0)                             # (M,)
        z = np.moveaxis(scores, 1, -1).reshape(-1, C)         # (M, C)
        if self.weight is None:
            w = valid.astype(np.float64)                      # (M,)
        else:
            w = np.where(valid, self.weight[t], 0.0)          # (M,)
        return z, t, valid, w, scores.shape

    def _unflatten(self, g, shape):
        """``(M, C)`` rows back to the prediction's layout ``(N, C, d1, ...)``."""
        g = g.reshape(shape[:1] + shape[2:] + shape[1:2])     # (N, *d, C)
        return np.ascontiguousarray(np.moveaxis(g, -1, 1))    # (N, C, *d)

    def __repr__(self):
        """The options, the weight elided."""
        return (f"{type(self).__name__}(ignore_index={self.ignore_index}, "
                f"reduction={self.reduction!r}{', weight=...' if self.weight is not None else ''})")


class NLLLoss(_ClassLoss):
    """Negative log-likelihood of integer class targets, as ``torch.nn.NLLLoss``.

    Parameters
    ----------
    weight : array-like, shape (C,), optional
        Per-class weights (finite reals).
    ignore_index : int, default -100
        Positions whose target equals it contribute nothing and are not
        counted in the mean.
    reduction : {'mean', 'sum', 'none'}

    Notes
    -----
    The prediction ``x`` holds log-probabilities ``(N, C)`` or
    ``(N, C, d1, ...)`` (e.g. a log-softmax's output); the targets ``t`` are
    ``(N,)`` or ``(N, d1, ...)`` integers in ``[0, C)`` or ``ignore_index``.
    Per position ``i`` (``w = 1`` without ``weight``)::

        l_i = -w[t_i] x[i, t_i]       (0 where t_i == ignore_index)
        'mean':  sum_i l_i / sum_{i not ignored} w[t_i]

    so an all-ignored batch has mean NaN (0/0), as torch. Backward: the only
    non-zero entry of row ``i`` is ``dL/dx[i, t_i] = -w[t_i] g_i`` (``g``:
    ``1/denominator``, 1 or ``grad_output``); ignored rows get exactly 0
    (also when the denominator is 0, as torch). Unlike torch, the unbatched
    ``(C,)`` prediction is refused (deconv wants the batch axis).

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> loss = nn.NLLLoss()
    >>> logp = np.log(np.array([[0.5, 0.5], [0.25, 0.75]]))
    >>> round(loss(logp, np.array([0, 1])), 6)   # -(log 0.5 + log 0.75) / 2
    0.490415
    >>> loss.backward()
    array([[-0.5,  0. ],
           [ 0. , -0.5]])
    """

    def forward(self, prediction, target):
        """Log-probabilities ``(N, C, *d)`` and integer targets ``(N, *d)`` -> float or array.

        Parameters
        ----------
        prediction : ndarray or array-like, shape (N, C) or (N, C, d1, ...)
            Log-probabilities, float32 or float64.
        target : ndarray or array-like of int, shape (N,) or (N, d1, ...)
            Class indices in ``[0, C)`` or ``ignore_index``.

        Returns
        -------
        loss : float, or ndarray of shape (N, d1, ...) and the prediction's dtype ('none')
        """
        z, t, valid, w, shape = self._classes(prediction, target)
        wz = w.astype(z.dtype)
        with np.errstate(invalid="ignore", over="ignore"):
            loss = np.where(valid, -(wz * z[np.arange(t.size), t]), 0).astype(z.dtype)
        return self._reduce(loss.reshape(shape[:1] + shape[2:]), denominator=float(w.sum()),
                            t=t, valid=valid, wz=wz, shape=shape)

    def _backward(self, cache, g):
        """``-w[t_i] g_i`` at ``(i, t_i)``, 0 elsewhere and on ignored rows."""
        t, valid, wz, shape = cache["t"], cache["valid"], cache["wz"], cache["shape"]
        g = np.broadcast_to(np.asarray(g, dtype=wz.dtype), cache["loss_like"][0]).reshape(-1)
        grad = np.zeros((t.size, shape[1]), dtype=wz.dtype)   # (M, C)
        grad[np.arange(t.size), t] = np.where(valid, -(wz * g), 0)
        return self._unflatten(grad, shape)


class CrossEntropyLoss(_ClassLoss):
    """Softmax cross-entropy on logits with integer class targets, as ``torch.nn.CrossEntropyLoss``.

    Parameters
    ----------
    weight : array-like, shape (C,), optional
        Per-class weights (finite reals).
    ignore_index : int, default -100
        Positions whose target equals it contribute nothing (and are not
        counted in the mean).
    reduction : {'mean', 'sum', 'none'}
    label_smoothing : float in [0, 1], default 0.0
        Mixes the one-hot target with the uniform distribution over the
        ``C`` classes.

    Notes
    -----
    Logits ``z`` of shape ``(N, C)`` or ``(N, C, d1, ...)`` (float32 or
    float64); targets ``(N,)`` or ``(N, d1, ...)``, integers in ``[0, C)``
    or ``ignore_index``. With ``log p = log_softmax(z)`` along axis 1
    (computed as ``z - max z - log sum exp(z - max z)``), ``w = 1`` without
    ``weight`` and ``eps = label_smoothing``, per position ``i``::

        l_i = (1 - eps) w[t_i] (-log p[i, t_i]) + eps / C sum_c w[c] (-log p[i, c])
        'mean':  sum_i l_i / sum_{i not ignored} w[t_i]

    with ``l_i = 0`` where ``t_i == ignore_index``. This is torch's rule,
    which is surprising in one point: the smoothing term is weighted by
    *every* class weight but the denominator only sums the weights of the
    targets, so with weights and smoothing the mean is not a weighted
    average. All positions ignored: the mean is NaN (0/0) and the gradient
    0, as torch. Backward, with ``p = softmax(z)``, ``W = sum_c w[c]``::

        dL/dz[i, j] = g_i ((1 - eps) w[t_i] (p[i, j] - [j == t_i]) + eps / C (W p[i, j] - w[j]))

    (``g``: ``1/denominator``, 1 or ``grad_output``; ignored rows 0).
    Probability ("soft") targets and unbatched ``(C,)`` logits are not
    implemented.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> loss = nn.CrossEntropyLoss()
    >>> round(loss(np.array([[0.0, 0.0]]), np.array([1])), 6)   # log 2
    0.693147
    >>> loss.backward()
    array([[ 0.5, -0.5]])
    >>> smooth = nn.CrossEntropyLoss(label_smoothing=0.2, reduction="none")
    >>> smooth(np.array([[0.0, 0.0], [1.0, -1.0]]), np.array([1, -100])).round(6)
    array([0.693147, 0.      ])
    """

    _what = "logits"

    def __init__(self, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
        """Check and store the options; errors start with ``CrossEntropyLoss:``."""
        super().__init__(weight, ignore_index, reduction)
        with prefixed("CrossEntropyLoss"):
            self.label_smoothing = as_real(label_smoothing, "label_smoothing", 0.0, 1.0)

    def __repr__(self):
        """The options, the weight elided."""
        smoothing = f", label_smoothing={self.label_smoothing}" if self.label_smoothing else ""
        return super().__repr__()[:-1] + smoothing + ")"

    def forward(self, prediction, target):
        """Logits ``(N, C, *d)`` and integer targets ``(N, *d)`` -> float or array.

        Parameters
        ----------
        prediction : ndarray or array-like, shape (N, C) or (N, C, d1, ...)
            Logits, float32 or float64.
        target : ndarray or array-like of int, shape (N,) or (N, d1, ...)
            Class indices in ``[0, C)`` or ``ignore_index``.

        Returns
        -------
        loss : float, or ndarray of shape (N, d1, ...) and the prediction's dtype ('none')
        """
        z, t, valid, w, shape = self._classes(prediction, target)
        eps, C = self.label_smoothing, shape[1]
        wz = w.astype(z.dtype)
        with np.errstate(invalid="ignore", over="ignore", under="ignore", divide="ignore"):
            shifted = z - z.max(axis=1, keepdims=True)        # (M, C)
            e = np.exp(shifted)                               # (M, C)
            s = e.sum(axis=1, keepdims=True)                  # (M, 1)
            log_p = shifted - np.log(s)                       # (M, C) log-softmax
            loss = wz * -log_p[np.arange(t.size), t]          # (M,)
            if eps:
                cw = self._class_weights(C, z.dtype)          # (C,)
                loss = (1 - eps) * loss - (eps / C) * (log_p @ cw)
            loss = np.where(valid, loss, 0).astype(z.dtype)
        return self._reduce(loss.reshape(shape[:1] + shape[2:]), denominator=float(w.sum()),
                            e=e, s=s, t=t, valid=valid, wz=wz, shape=shape)

    def _class_weights(self, C, dtype):
        """``w[c]`` of every class, ones without ``weight``."""
        return np.ones(C, dtype) if self.weight is None else self.weight.astype(dtype)

    def _backward(self, cache, g):
        """``g_i ((1-eps) w[t_i] (p_i - onehot(t_i)) + eps/C (W p_i - w))`` row by row."""
        e, s, t, valid, wz, shape = (cache[k] for k in ("e", "s", "t", "valid", "wz", "shape"))
        eps, C = self.label_smoothing, shape[1]
        g = np.broadcast_to(np.asarray(g, dtype=wz.dtype), cache["loss_like"][0]).reshape(-1)
        grad = e / s                                          # (M, C) softmax
        p = grad.copy() if eps else None
        grad[np.arange(t.size), t] -= 1
        grad *= ((1 - eps) * wz)[:, None]
        if eps:
            cw = self._class_weights(C, wz.dtype)
            grad += (eps / C) * (float(cw.sum(dtype=np.float64)) * p - cw)
        grad *= np.where(valid, g, 0).astype(wz.dtype)[:, None]
        return self._unflatten(grad, shape)


def _check_unit_interval(name, array, arg):
    """Every element of ``array`` in [0, 1] (NaN is not): torch refuses the others."""
    with np.errstate(invalid="ignore"):
        outside = ~((array >= 0) & (array <= 1))
    if outside.any():
        raise ValueError(f"{name}: every element of {arg} must lie in [0, 1], got "
                         f"{float(array[outside].flat[0])!r}")


class BCELoss(Loss):
    """Binary cross-entropy of probabilities, as ``torch.nn.BCELoss``.

    Parameters
    ----------
    weight : array-like, optional
        Finite real weights broadcast to the prediction's shape (NumPy's
        rule: trailing axes align), multiplying the per-element loss.
    reduction : {'mean', 'sum', 'none'}

    Notes
    -----
    With probabilities ``x`` and targets ``t`` (both in ``[0, 1]``; torch
    refuses anything else, NaN included, and so does this), per element::

        l = -w (t max(log x, -100) + (1 - t) max(log1p(-x), -100))

    The logarithms are clamped at -100 as in torch, so ``x = 0`` or ``1``
    gives a finite loss (100 per wrong certainty). Backward, torch's
    formula::

        dL/dx = g w (x - t) / max(x (1 - x), 1e-12)

    which is the derivative of the unclamped loss wherever ``x (1 - x) >=
    1e-12`` and a bounded slope (``+-1e12``) at the clamped ends; the
    ``1e-12`` is torch's float32 constant (``9.99999996e-13`` in float64) (``g``:
    ``1/n``, 1 or ``grad_output``). :class:`BCEWithLogitsLoss` is the
    numerically safe form on logits.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> loss = nn.BCELoss()
    >>> round(loss(np.array([0.5, 0.8]), np.array([1.0, 1.0])), 6)   # -(log .5 + log .8) / 2
    0.458145
    >>> loss.backward()
    array([-1.   , -0.625])
    >>> nn.BCELoss(reduction="none")(np.array([0.0]), np.array([1.0]))   # log clamped
    array([100.])
    """

    def __init__(self, weight=None, reduction="mean"):
        """Check and store the options; errors start with ``BCELoss:``."""
        super().__init__(reduction)
        if weight is not None:
            with prefixed(type(self).__name__):
                weight = as_finite_real_array(weight, "weight")
        self.weight = weight

    def __repr__(self):
        """The options, the weight elided."""
        return (f"{type(self).__name__}(reduction={self.reduction!r}"
                f"{', weight=...' if self.weight is not None else ''})")

    def forward(self, prediction, target):
        """Probabilities and targets of one shape -> float or per-element array.

        Parameters
        ----------
        prediction : ndarray or array-like, float32 or float64, any shape
            Probabilities in [0, 1].
        target : ndarray or array-like, shape of ``prediction``
            Real values in [0, 1], cast to the prediction's dtype.

        Returns
        -------
        loss : float, or ndarray of the prediction's shape and dtype ('none')
        """
        name = type(self).__name__
        x, t = self._prediction_and_target(prediction, target)
        w = _broadcast_weight(name, self.weight, "weight", x.shape)
        _check_unit_interval(name, x, "prediction (probabilities)")
        _check_unit_interval(name, t, "target")
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            log_x = np.maximum(np.log(x), -100)
            log_1mx = np.maximum(np.log1p(-x), -100)
            loss = (t - 1) * log_1mx - t * log_x
            if w is not None:
                loss = (loss * w).astype(x.dtype)
        return self._reduce(loss, x=x, t=t, w=w)

    def _backward(self, cache, g):
        """``g w (x - t) / max(x (1 - x), 1e-12)``."""
        x, t, w = cache["x"], cache["t"], cache["w"]
        # torch's EPSILON is the float32 1e-12 (9.99999996e-13), in float64 too
        grad = g * (x - t) / np.maximum((1 - x) * x, x.dtype.type(np.float32(1e-12)))
        return grad if w is None else (grad * w).astype(x.dtype)


class BCEWithLogitsLoss(BCELoss):
    """Binary cross-entropy on logits (a sigmoid and :class:`BCELoss` in one stable formula),
    as ``torch.nn.BCEWithLogitsLoss``.

    Parameters
    ----------
    weight : array-like, optional
        Finite real weights broadcast to the prediction's shape, multiplying
        the per-element loss.
    reduction : {'mean', 'sum', 'none'}
    pos_weight : array-like, optional
        Finite real weights of the positive term, broadcast to the
        prediction's shape (NumPy's rule: trailing axes align, so a vector
        of one weight per class fits ``(N, C)``; for ``(N, C, H, W)`` pass
        shape ``(C, 1, 1)``, as in torch).

    Notes
    -----
    With logits ``x``, targets ``t``, ``p = pos_weight`` (1 if not given)
    and ``softplus(y) = log(1 + e**y) = max(y, 0) + log1p(e**-|y|)`` (never
    overflows; ``-log sigmoid(x) = softplus(-x)``), per element::

        l = w ((1 - t) x + (1 + (p - 1) t) softplus(-x))

    which is ``-w (p t log sigmoid(x) + (1 - t) log(1 - sigmoid(x)))``
    without ever forming ``sigmoid(x)``; logits of ``+-1e4`` give finite
    losses and gradients. Backward, with ``sigmoid`` computed from
    ``e**-|x|``::

        dL/dx = g w ((p t + 1 - t) sigmoid(x) - p t)

    (``g``: ``1/n``, 1 or ``grad_output``). Targets are not range-checked
    (torch does not either; soft targets in [0, 1] are the meaningful ones).

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> loss = nn.BCEWithLogitsLoss(reduction="none")
    >>> loss(np.array([0.0, 1e4, -1e4]), np.array([1.0, 1.0, 1.0]))
    array([6.93147181e-01, 0.00000000e+00, 1.00000000e+04])
    >>> loss.backward(np.ones(3))
    array([-0.5,  0. , -1. ])
    """

    def __init__(self, weight=None, reduction="mean", pos_weight=None):
        """Check and store the options; errors start with ``BCEWithLogitsLoss:``."""
        super().__init__(weight, reduction)
        if pos_weight is not None:
            with prefixed("BCEWithLogitsLoss"):
                pos_weight = as_finite_real_array(pos_weight, "pos_weight")
        self.pos_weight = pos_weight

    def __repr__(self):
        """The options, the weights elided."""
        return (super().__repr__()[:-1]
                + f"{', pos_weight=...' if self.pos_weight is not None else ''})")

    def forward(self, prediction, target):
        """Logits and targets of one shape -> float or per-element array.

        Parameters
        ----------
        prediction : ndarray or array-like, float32 or float64, any shape
            Logits.
        target : ndarray or array-like, shape of ``prediction``
            Real values (probabilities of the positive class), cast to the
            prediction's dtype.

        Returns
        -------
        loss : float, or ndarray of the prediction's shape and dtype ('none')
        """
        name = type(self).__name__
        x, t = self._prediction_and_target(prediction, target)
        w = _broadcast_weight(name, self.weight, "weight", x.shape)
        p = _broadcast_weight(name, self.pos_weight, "pos_weight", x.shape)
        with np.errstate(invalid="ignore", over="ignore", under="ignore"):
            small = np.exp(-np.abs(x))                        # e**-|x| in (0, 1]
            softplus = np.maximum(-x, 0) + np.log1p(small)    # -log sigmoid(x)
            positive = 1 if p is None else (p * t + 1 - t).astype(x.dtype)
            loss = (1 - t) * x + positive * softplus
            if w is not None:
                loss = (loss * w).astype(x.dtype)
            sigmoid = np.where(x >= 0, 1 / (1 + small), small / (1 + small))
        return self._reduce(loss, sigmoid=sigmoid, t=t, w=w, p=p, positive=positive)

    def _backward(self, cache, g):
        """``g w ((p t + 1 - t) sigmoid(x) - p t)``."""
        sigmoid, t, w, p = cache["sigmoid"], cache["t"], cache["w"], cache["p"]
        if p is None:
            local = sigmoid - t
        else:
            local = (cache["positive"] * sigmoid - p * t).astype(t.dtype)
        grad = local * g
        return grad if w is None else (grad * w).astype(t.dtype)


class KLDivLoss(Loss):
    """Kullback-Leibler divergence of a target from log-probabilities, as ``torch.nn.KLDivLoss``.

    Parameters
    ----------
    reduction : {'mean', 'batchmean', 'sum', 'none'}
        'batchmean' divides the sum by the batch size ``prediction.shape[0]``
        (1 for a 0-d prediction): the mathematical KL divergence per
        sample. 'mean' divides by the number of elements (torch's default,
        kept for compatibility) and warns, as torch does at every call.
    log_target : bool, default False
        The target holds log-probabilities instead of probabilities.

    Notes
    -----
    With the prediction ``x`` (log-probabilities) and target ``t``, per
    element::

        l = t log t - t x           (t log t = 0 at t = 0)   log_target=False
        l = e**t (t - x)                                     log_target=True

    Backward: ``dL/dx = -t g``, resp. ``-e**t g`` (``g``: ``1/denominator``,
    1 or ``grad_output``). As torch: a negative probability target gives
    NaN (not an error), and ``t = 0`` with ``x = -inf`` gives NaN (``0 *
    inf``). With ``reduction='mean'`` each forward warns (UserWarning, the
    message of torch): 'mean' divides by the batch size *and* the support
    size, 'batchmean' is the KL divergence.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> loss = nn.KLDivLoss(reduction="batchmean")
    >>> logq = np.log(np.array([[0.5, 0.5]]))
    >>> round(loss(logq, np.array([[0.25, 0.75]])), 6)   # KL(t || q)
    0.130812
    >>> loss.backward()
    array([[-0.25, -0.75]])
    """

    _reductions = ("mean", "batchmean", "sum", "none")

    def __init__(self, reduction="mean", log_target=False):
        """Check and store the options; errors start with ``KLDivLoss:``."""
        super().__init__(reduction)
        with prefixed("KLDivLoss"):
            self.log_target = as_bool(log_target, "log_target")

    def __repr__(self):
        """``KLDivLoss(reduction='mean', log_target=False)``."""
        return f"KLDivLoss(reduction={self.reduction!r}, log_target={self.log_target})"

    def forward(self, prediction, target):
        """Log-probabilities and targets of one shape -> float or per-element array.

        Parameters
        ----------
        prediction : ndarray or array-like, float32 or float64, any shape
            Log-probabilities.
        target : ndarray or array-like, shape of ``prediction``
            Probabilities (log-probabilities with ``log_target=True``),
            cast to the prediction's dtype.

        Returns
        -------
        loss : float, or ndarray of the prediction's shape and dtype ('none')
        """
        x, t = self._prediction_and_target(prediction, target)
        if self.reduction == "mean":
            warnings.warn(
                "reduction: 'mean' divides the total loss by both the batch size and the support "
                "size.'batchmean' divides only by the batch size, and aligns with the KL div math "
                "definition.'mean' will be changed to behave the same as 'batchmean' in the next "
                "major release.", UserWarning, stacklevel=2)
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            if self.log_target:
                slope = np.exp(t)
                loss = slope * (t - x)
            else:
                slope = t
                loss = np.where(t == 0, 0, t * np.log(t)).astype(x.dtype) - t * x
        batch = x.shape[0] if x.ndim else 1
        return self._reduce(loss, denominator=batch if self.reduction == "batchmean" else None,
                            slope=slope)

    def _backward(self, cache, g):
        """``-t g`` (``-e**t g`` with ``log_target``)."""
        return -cache["slope"] * g
