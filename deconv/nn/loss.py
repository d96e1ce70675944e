"""Losses: MSELoss, L1Loss, CrossEntropyLoss.

A loss is not a :class:`~deconv.nn.Module` (it has no parameters and its
backward takes no upstream gradient): ``forward(prediction, target)``
returns a Python float and ``backward()`` the gradient with respect to
``prediction``.
"""

import numpy as np

from deconv.functional.validation import as_float_array, as_int, as_integer_array, check_bytes
from deconv.nn.module import prefixed

__all__ = ["Loss", "MSELoss", "L1Loss", "CrossEntropyLoss"]


class Loss:
    """Base class of the losses: ``forward(prediction, target) -> float`` and ``backward()``.

    ``backward()`` returns the gradient of the last forward's value with
    respect to ``prediction`` (shape and dtype of ``prediction``).

    Parameters
    ----------
    reduction : {'mean', 'sum'}
        'mean' (default) divides the sum by the number of elements, as
        torch.
    """

    def __init__(self, reduction="mean"):
        """Check and store ``reduction``; no forward saved yet."""
        if not any(isinstance(reduction, str) and reduction == r for r in ("mean", "sum")):
            raise ValueError(
                f"{type(self).__name__}: reduction must be 'mean' or 'sum', got {reduction!r}")
        self.reduction = reduction
        self._cache = None

    def __call__(self, prediction, target):
        """``loss(prediction, target)`` is ``loss.forward(prediction, target)``."""
        return self.forward(prediction, target)

    def forward(self, prediction, target):
        """The loss value (a float); remembers what :meth:`backward` needs.

        Parameters
        ----------
        prediction, target : ndarray or array-like

        Returns
        -------
        loss : float
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement forward()")

    def backward(self):
        """Gradient of the last forward's value with respect to ``prediction``.

        Returns
        -------
        grad_prediction : ndarray, shape and dtype of ``prediction``
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement backward()")

    def _saved(self):
        """The values the last forward saved; RuntimeError if there was none."""
        if self._cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward() called before forward()")
        return self._cache

    def _prediction_and_target(self, prediction, target):
        """A float ``prediction`` and a real ``target`` of its shape, cast to its dtype."""
        name = type(self).__name__
        with prefixed(name):
            prediction = as_float_array(prediction, "prediction")
        target = np.asarray(target)
        if target.dtype.kind not in "fiu":
            raise TypeError(f"{name}: target must be a real (float or int) array, got dtype "
                            f"{target.dtype}")
        if target.shape != prediction.shape:
            raise ValueError(f"{name}: target shape {target.shape} must equal the prediction "
                             f"shape {prediction.shape}")
        with prefixed(name):
            # the difference and its float64 square (either may be a broadcast view)
            check_bytes("intermediates", (prediction.shape, prediction.dtype),
                        (prediction.shape, np.float64))
        return prediction, target.astype(prediction.dtype, copy=False)

    def _divisor(self, n):
        """What the sum is divided by: ``n`` elements for 'mean', 1 for 'sum'."""
        return n if self.reduction == "mean" else 1

    def __repr__(self):
        """``Name(reduction='mean')``."""
        return f"{type(self).__name__}(reduction={self.reduction!r})"


class MSELoss(Loss):
    """Mean squared error, as ``torch.nn.MSELoss``.

    Notes
    -----
    ``loss = sum((prediction - target)**2) / n`` (``n`` = number of
    elements; ``reduction='sum'`` drops the division), gradient
    ``2 (prediction - target) / n``. Shapes must be equal (no broadcasting).
    The value is accumulated in float64.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> loss = nn.MSELoss()
    >>> loss(np.array([1.0, 2.0]), np.array([0.0, 0.0]))
    2.5
    >>> loss.backward()
    array([1., 2.])
    """

    def forward(self, prediction, target):
        """``prediction`` and ``target`` of one shape -> float.

        Parameters
        ----------
        prediction : ndarray or array-like, float32 or float64, any shape
        target : ndarray or array-like, shape of ``prediction``
            Real values, cast to the prediction's dtype.

        Returns
        -------
        loss : float
        """
        p, t = self._prediction_and_target(prediction, target)
        d = p - t
        div = self._divisor(d.size)
        with np.errstate(invalid="ignore", divide="ignore"):
            value = float(np.sum(np.square(d, dtype=np.float64)) / div)
        self._cache = dict(d=d, div=div)
        return value

    def backward(self):
        """``2 (prediction - target) / n``.

        Returns
        -------
        grad_prediction : ndarray, shape and dtype of ``prediction``
        """
        c = self._saved()
        with np.errstate(invalid="ignore", divide="ignore"):
            return c["d"] * (2.0 / c["div"]) if c["div"] else c["d"] * np.nan


class L1Loss(Loss):
    """Mean absolute error, as ``torch.nn.L1Loss``.

    Notes
    -----
    ``loss = sum|prediction - target| / n``, gradient
    ``sign(prediction - target) / n`` with ``sign(0) = 0`` (torch's choice).

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> loss = nn.L1Loss()
    >>> loss(np.array([1.0, -3.0, 2.0]), np.array([0.0, 0.0, 2.0]))
    1.3333333333333333
    >>> loss.backward()
    array([ 0.33333333, -0.33333333,  0.        ])
    """

    def forward(self, prediction, target):
        """``prediction`` and ``target`` of one shape -> float.

        Parameters
        ----------
        prediction : ndarray or array-like, float32 or float64, any shape
        target : ndarray or array-like, shape of ``prediction``
            Real values, cast to the prediction's dtype.

        Returns
        -------
        loss : float
        """
        p, t = self._prediction_and_target(prediction, target)
        d = p - t
        div = self._divisor(d.size)
        with np.errstate(invalid="ignore", divide="ignore"):
            value = float(np.sum(np.abs(d), dtype=np.float64) / div)
        self._cache = dict(d=d, div=div)
        return value

    def backward(self):
        """``sign(prediction - target) / n``.

        Returns
        -------
        grad_prediction : ndarray, shape and dtype of ``prediction``
        """
        c = self._saved()
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.sign(c["d"]) * (1.0 / c["div"]) if c["div"] else c["d"] * np.nan


class CrossEntropyLoss(Loss):
    """Softmax cross-entropy on logits with integer class targets, as ``torch.nn.CrossEntropyLoss``.

    Parameters
    ----------
    weight : ndarray, shape (C,), optional
        Per-class weights.
    ignore_index : int, default -100
        Positions whose target equals it contribute nothing (and are not
        counted in the mean).
    reduction : {'mean', 'sum'}

    Notes
    -----
    Logits ``(N, C)`` or ``(N, C, d1, d2, ...)`` (float32 or float64);
    targets ``(N,)`` or ``(N, d1, d2, ...)``, integers in ``[0, C)`` (or
    ``ignore_index``). With ``log_softmax`` computed stably
    (``z - max z - log sum exp(z - max z)``) along the class axis 1::

        loss = sum_i w[t_i] * (-log_softmax(z_i)[t_i]) / sum_i w[t_i]

    over all ``N * d1 * ...`` positions ``i`` not ignored (``w = 1`` without
    ``weight``, so the denominator is their count; ``reduction='sum'`` drops
    it). The gradient is ``w[t_i] (softmax(z_i) - onehot(t_i)) /
    denominator``. If every position is ignored the mean is NaN, as in
    torch. Probability ("soft") targets and label smoothing are not
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
    """

    def __init__(self, weight=None, ignore_index=-100, reduction="mean"):
        """Check and store the options; errors start with ``CrossEntropyLoss:``."""
        super().__init__(reduction)
        if weight is not None:
            weight = np.asarray(weight)
            if weight.ndim != 1 or weight.dtype.kind not in "fiu":
                raise ValueError(
                    f"CrossEntropyLoss: weight must be a 1-D real array of one weight per class, "
                    f"got shape {weight.shape} and dtype {weight.dtype}")
        self.weight = weight
        with prefixed("CrossEntropyLoss"):
            self.ignore_index = as_int(ignore_index, "ignore_index")

    def __repr__(self):
        """The options, the weight elided."""
        return (f"CrossEntropyLoss(ignore_index={self.ignore_index}, "
                f"reduction={self.reduction!r}{', weight=...' if self.weight is not None else ''})")

    def forward(self, prediction, target):
        """Logits ``(N, C, *d)`` and integer targets ``(N, *d)`` -> float.

        Parameters
        ----------
        prediction : ndarray or array-like, shape (N, C) or (N, C, d1, ...)
            Logits, float32 or float64.
        target : ndarray or array-like of int, shape (N,) or (N, d1, ...)
            Class indices in ``[0, C)`` or ``ignore_index``.

        Returns
        -------
        loss : float
        """
        with prefixed("CrossEntropyLoss"):
            logits = as_float_array(prediction, "prediction (logits)")
        if logits.ndim < 2 or logits.shape[1] < 1:
            raise ValueError(
                f"CrossEntropyLoss: prediction (logits) must have shape (N, C) or (N, C, d1, ...) "
                f"with C >= 1, "
                f"got shape {logits.shape}")
        with prefixed("CrossEntropyLoss"):
            target = as_integer_array(target, "target", what="class indices "
                                      "(probability targets are not supported)")
        C = logits.shape[1]
        expected = logits.shape[:1] + logits.shape[2:]
        if target.shape != expected:
            raise ValueError(
                f"CrossEntropyLoss: target shape {target.shape} does not match the prediction "
                f"(logits) shape {logits.shape}; expected {expected} (the logits' shape without "
                f"the class axis 1)")
        with prefixed("CrossEntropyLoss"):
            # the log-softmax's temporaries (the logits may be a broadcast view)
            check_bytes("intermediates", *[(logits.shape, d) for d in (logits.dtype,) * 3],
                        (target.shape, np.int64))
        if self.weight is not None and self.weight.shape != (C,):
            raise ValueError(
                f"CrossEntropyLoss: weight has shape {self.weight.shape}, expected ({C},) for "
                f"the {C} classes of the prediction (logits) of shape {logits.shape}")
        t = target.reshape(-1).astype(np.int64)               # (M,)
        valid = t != self.ignore_index                        # (M,)
        bad = valid & ((t < 0) | (t >= C))
        if bad.any():
            raise ValueError(
                f"CrossEntropyLoss: target values must lie in [0, {C}) (C = logits.shape[1]) or "
                f"equal ignore_index={self.ignore_index}, got {int(t[bad][0])}")
        t_safe = np.where(valid, t, 0)                        # (M,)
        z = np.moveaxis(logits, 1, -1).reshape(-1, C)         # (M, C)
        m = z.max(axis=1, keepdims=True)                      # (M, 1)
        with np.errstate(invalid="ignore", over="ignore", under="ignore"):
            shifted = z - m                                   # (M, C)
            e = np.exp(shifted)                               # (M, C)
            s = e.sum(axis=1, keepdims=True)                  # (M, 1)
            log_p = shifted - np.log(s)                       # (M, C) log-softmax
        nll = -log_p[np.arange(t.size), t_safe]               # (M,)
        if self.weight is None:
            w = valid.astype(np.float64)                      # (M,)
        else:
            w = np.where(valid, self.weight[t_safe].astype(np.float64), 0.0)
        denom = float(w.sum()) if self.reduction == "mean" else 1.0
        with np.errstate(invalid="ignore", divide="ignore"):
            value = float(np.sum(np.where(valid, w * nll, 0.0)) / denom)
        self._cache = dict(e=e, s=s, t=t_safe, w=w, denom=denom, shape=logits.shape)
        return value

    def backward(self):
        """``w_i (softmax(z_i) - onehot(t_i)) / denominator``, shape and dtype of the logits.

        Returns
        -------
        grad_prediction : ndarray, shape and dtype of the logits
        """
        c = self._saved()
        e, s, t, w, denom, shape = c["e"], c["s"], c["t"], c["w"], c["denom"], c["shape"]
        with np.errstate(invalid="ignore", divide="ignore"):
            g = e / s                                         # (M, C) softmax
            g[np.arange(t.size), t] -= 1
            scale = (w / denom).astype(g.dtype)               # (M,)
            g *= scale[:, None]
        g = g.reshape(shape[:1] + shape[2:] + shape[1:2])     # (N, *d, C)
        return np.ascontiguousarray(np.moveaxis(g, -1, 1))    # (N, C, *d)
