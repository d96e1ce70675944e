"""Losses: the :class:`Loss` base class and the regression losses MSELoss, L1Loss,
SmoothL1Loss and HuberLoss (the likelihood losses live in :mod:`.loss_likelihood`).

A loss is not a :class:`~deconv.nn.Module` (it has no parameters):
``forward(prediction, target)`` computes the per-element loss and reduces it
as ``reduction`` says. With ``'mean'`` (the default) or ``'sum'`` it returns a
Python float and ``backward()`` (no argument: the gradient of a scalar is 1)
returns the gradient with respect to ``prediction``; with ``'none'`` it returns
the per-element loss array and ``backward(grad_output)`` takes the upstream
gradient of that array, as ``loss.backward(grad_output)`` in torch.
"""

import numpy as np

from deconv.functional import elementwise as _ew
from deconv.functional.validation import (
    as_choice, as_float_array, as_real, as_real_array, check_bytes,
)
from deconv.nn.module import prefixed

__all__ = ["Loss", "MSELoss", "L1Loss", "SmoothL1Loss", "HuberLoss"]

# backward()'s default: tells "no grad_output given" from any value a caller may pass
_NOT_GIVEN = object()


class Loss:
    """Base class of the losses: ``forward(prediction, target)`` and ``backward([grad_output])``.

    ``backward`` returns the gradient of the last forward's result with
    respect to ``prediction`` (shape and dtype of ``prediction``).

    Parameters
    ----------
    reduction : {'mean', 'sum', 'none'}
        'mean' (default) divides the sum of the per-element losses by their
        number (the losses with class weights divide by the sum of the
        weights used, as torch); 'sum' returns the sum; both return a
        float. 'none' returns the per-element losses (an array in the
        prediction's dtype).

    Notes
    -----
    A subclass computes the per-element loss ``l`` and hands it to
    :meth:`_reduce`; its ``_backward(cache, g)`` returns ``dL/dprediction``
    given ``g = dL/dl``, which is ``grad_output`` ('none'), 1 ('sum') or
    ``1 / denominator`` ('mean'). The sums of 'mean' and 'sum' are
    accumulated in float64.
    """

    _reductions = ("mean", "sum", "none")

    def __init__(self, reduction="mean"):
        """Check and store ``reduction``; no forward saved yet."""
        with prefixed(type(self).__name__):
            self.reduction = as_choice(reduction, "reduction", self._reductions)
        self._cache = None

    def __call__(self, prediction, target):
        """``loss(prediction, target)`` is ``loss.forward(prediction, target)``."""
        return self.forward(prediction, target)

    def forward(self, prediction, target):
        """The reduced loss (a float) or, with ``reduction='none'``, the per-element losses.

        Parameters
        ----------
        prediction, target : ndarray or array-like

        Returns
        -------
        loss : float or ndarray
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement forward()")

    def backward(self, grad_output=_NOT_GIVEN):
        """Gradient of the last forward's result with respect to ``prediction``.

        Parameters
        ----------
        grad_output : ndarray or array-like, only with ``reduction='none'``
            The upstream gradient of the per-element loss (its shape and
            dtype). With 'mean' or 'sum' the result is a float whose
            gradient is 1: no argument is taken.

        Returns
        -------
        grad_prediction : ndarray, shape and dtype of ``prediction``
        """
        name = type(self).__name__
        cache = self._saved()
        if self.reduction == "none":
            shape, dtype = cache["loss_like"]
            if grad_output is _NOT_GIVEN:
                raise TypeError(
                    f"{name}.backward() missing grad_output: with reduction='none' the forward "
                    f"returned the per-element loss of shape {shape}, so backward takes its "
                    f"upstream gradient grad_output (shape {shape}, dtype {dtype})")
            with prefixed(name):
                g = as_float_array(grad_output, "grad_output")
            if g.shape != shape:
                raise ValueError(f"{name}: grad_output must have the shape of the per-element "
                                 f"loss {shape}, got {g.shape}")
            if g.dtype.newbyteorder("=") != dtype:
                raise TypeError(f"{name}: grad_output must have the dtype of the per-element "
                                f"loss ({dtype}), got {g.dtype}; convert it with "
                                f".astype(np.{dtype})")
        else:
            if grad_output is not _NOT_GIVEN:
                raise TypeError(
                    f"{name}.backward() takes no grad_output with reduction={self.reduction!r} "
                    f"(the loss is a float, its gradient is 1), got {type(grad_output).__name__}")
            with np.errstate(divide="ignore", invalid="ignore"):
                g = float(np.float64(1.0) / cache["denominator"])
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            return self._backward(cache, g)

    def _backward(self, cache, g):
        """``dL/dprediction`` from the saved values and ``g = dL/dl`` (float or array)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement backward()")

    def _saved(self):
        """The values the last forward saved; RuntimeError if there was none."""
        if self._cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward() called before forward()")
        return self._cache

    def _reduce(self, loss, denominator=None, **saved):
        """Reduce the per-element ``loss`` and save ``saved`` for the backward.

        ``denominator`` of 'mean': ``loss.size`` unless given (the weighted
        losses give their sum of weights).
        """
        if self.reduction == "none":
            self._remember(loss.shape, loss.dtype, denominator, saved)
            return loss
        with np.errstate(invalid="ignore", over="ignore"):
            total = np.sum(loss, dtype=np.float64)
        return self._reduced(total, loss.shape, loss.dtype, denominator, saved)

    def _remember(self, shape, dtype, denominator, saved):
        """Save ``saved``, the per-element loss's shape and dtype and the denominator
        (``prod(shape)`` unless given; 1 for 'sum'); returns the denominator."""
        if denominator is None:
            denominator = int(np.prod(shape, dtype=np.int64))
        if self.reduction == "sum":
            denominator = 1
        self._cache = dict(saved, loss_like=(shape, dtype.newbyteorder("=")),
                           denominator=denominator)
        return denominator

    def _reduced(self, total, shape, dtype, denominator, saved):
        """The 'mean' or 'sum' float from the float64 ``total`` of the per-element losses."""
        denominator = self._remember(shape, dtype, denominator, saved)
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            return float(np.float64(total) / np.float64(denominator))

    def _prediction_and_target(self, prediction, target):
        """A float ``prediction`` and a real ``target`` of its shape, cast to its dtype."""
        name = type(self).__name__
        with prefixed(name):
            prediction = as_float_array(prediction, "prediction")
            target = as_real_array(target, "target", "real numbers (float or int)")
        if target.shape != prediction.shape:
            raise ValueError(f"{name}: target shape {target.shape} must equal the prediction "
                             f"shape {prediction.shape}")
        with prefixed(name):
            # the difference, the loss and their float64 sums (either may be a broadcast view)
            check_bytes("intermediates", *[(prediction.shape, prediction.dtype)] * 3,
                        (prediction.shape, np.float64))
        return prediction, target.astype(prediction.dtype, copy=False)

    def __repr__(self):
        """``Name(reduction='mean')``."""
        return f"{type(self).__name__}(reduction={self.reduction!r})"


class MSELoss(Loss):
    """Squared error, as ``torch.nn.MSELoss``.

    Parameters
    ----------
    reduction : {'mean', 'sum', 'none'}

    Notes
    -----
    Per element ``l = (prediction - target)**2``; ``reduction='mean'``
    divides the sum by the number of elements ``n`` (an empty input gives
    NaN, as torch). Backward: ``dL/dprediction = 2 (prediction - target) g``
    with ``g = 1/n`` ('mean'), 1 ('sum') or ``grad_output`` ('none').
    Shapes must be equal (torch's deprecated broadcasting is refused).

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> loss = nn.MSELoss()
    >>> loss(np.array([1.0, 2.0]), np.array([0.0, 0.0]))
    2.5
    >>> loss.backward()
    array([1., 2.])
    >>> each = nn.MSELoss(reduction="none")
    >>> each(np.array([1.0, 2.0]), np.array([0.0, 0.0]))
    array([1., 4.])
    >>> each.backward(np.array([1.0, 0.5]))
    array([2., 2.])
    """

    def forward(self, prediction, target):
        """``prediction`` and ``target`` of one shape -> float (or per-element array).

        Parameters
        ----------
        prediction : ndarray or array-like, float32 or float64, any shape
        target : ndarray or array-like, shape of ``prediction``
            Real values, cast to the prediction's dtype.

        Returns
        -------
        loss : float, or ndarray of the prediction's shape and dtype ('none')
        """
        p, t = self._prediction_and_target(prediction, target)
        with np.errstate(invalid="ignore", over="ignore"):
            d = p - t
            return self._reduce(d * d, d=d)

    def _backward(self, cache, g):
        """``2 (prediction - target) g``."""
        return cache["d"] * 2.0 * g


class L1Loss(Loss):
    """Absolute error, as ``torch.nn.L1Loss``.

    Parameters
    ----------
    reduction : {'mean', 'sum', 'none'}

    Notes
    -----
    Per element ``l = |prediction - target|``. Backward:
    ``dL/dprediction = sign(prediction - target) g`` with ``sign(0) = 0``
    (torch's choice) and ``g`` as in :class:`MSELoss`.

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
        """``prediction`` and ``target`` of one shape -> float (or per-element array).

        Parameters
        ----------
        prediction : ndarray or array-like, float32 or float64, any shape
        target : ndarray or array-like, shape of ``prediction``
            Real values, cast to the prediction's dtype.

        Returns
        -------
        loss : float, or ndarray of the prediction's shape and dtype ('none')
        """
        return _l1_forward(self, prediction, target)

    def _backward(self, cache, g):
        """``sign(prediction - target) g``."""
        return _l1_backward(cache, g)


def _l1_forward(loss, prediction, target):
    """The forward of :class:`L1Loss`, for ``loss`` (also SmoothL1Loss with ``beta = 0``)."""
    p, t = loss._prediction_and_target(prediction, target)
    with np.errstate(invalid="ignore", over="ignore"):
        if loss.reduction == "none":
            d = p - t
            return loss._reduce(np.abs(d), d=d)
        # one pass, reading both (as torch, the backward takes the difference again)
        total, p_flat, t_flat = _ew.l1(p, t)
    return loss._reduced(total, p.shape, p.dtype, None, dict(p=p_flat, t=t_flat))


def _l1_backward(cache, g):
    """``sign(prediction - target) g``: one pass for a float ``g`` ('mean', 'sum')."""
    if "d" not in cache:
        return _ew.l1_backward(cache["p"], cache["t"], g, cache["loss_like"][0])
    return np.sign(cache["d"]) * g


class SmoothL1Loss(Loss):
    """Quadratic near zero, linear beyond ``beta``, as ``torch.nn.SmoothL1Loss``.

    Parameters
    ----------
    reduction : {'mean', 'sum', 'none'}
    beta : float, default 1.0
        Where the quadratic turns linear; finite and ``>= 0`` (torch
        refuses negative values). ``beta = 0`` is :class:`L1Loss`.

    Notes
    -----
    With ``d = prediction - target``, per element::

        l = 0.5 d**2 / beta    if |d| < beta
            |d| - 0.5 beta     otherwise

    Backward: ``dL/dprediction = g d / beta`` where ``|d| < beta``, else
    ``g sign(d)`` (both are ``+-g`` at ``|d| = beta``; ``sign(0) = 0``
    when ``beta = 0``, as torch, which then runs L1). ``g`` as in
    :class:`MSELoss`. :class:`HuberLoss` is ``beta`` times this loss with
    ``delta = beta``.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> loss = nn.SmoothL1Loss(beta=1.0, reduction="none")
    >>> loss(np.array([0.5, 3.0]), np.array([0.0, 0.0]))
    array([0.125, 2.5  ])
    >>> loss.backward(np.ones(2))
    array([0.5, 1. ])
    """

    def __init__(self, reduction="mean", beta=1.0):
        """Check and store the options; errors start with ``SmoothL1Loss:``."""
        super().__init__(reduction)
        with prefixed("SmoothL1Loss"):
            self.beta = as_real(beta, "beta", low=0.0)

    def __repr__(self):
        """``SmoothL1Loss(reduction='mean', beta=1.0)``."""
        return f"SmoothL1Loss(reduction={self.reduction!r}, beta={self.beta!r})"

    def forward(self, prediction, target):
        """``prediction`` and ``target`` of one shape -> float (or per-element array).

        Parameters
        ----------
        prediction : ndarray or array-like, float32 or float64, any shape
        target : ndarray or array-like, shape of ``prediction``
            Real values, cast to the prediction's dtype.

        Returns
        -------
        loss : float, or ndarray of the prediction's shape and dtype ('none')
        """
        beta = self.beta
        if beta == 0:
            return _l1_forward(self, prediction, target)      # torch's smooth_l1_loss too
        p, t = self._prediction_and_target(prediction, target)
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            d = p - t
            a = np.abs(d)
            loss = np.where(a < beta, (0.5 / beta) * d * d, a - 0.5 * beta).astype(d.dtype)
            return self._reduce(loss, d=d)

    def _backward(self, cache, g):
        """``g d / beta`` inside ``|d| < beta``, ``g sign(d)`` outside."""
        if self.beta == 0:
            return _l1_backward(cache, g)
        d, beta = cache["d"], self.beta
        return np.where(np.abs(d) < beta, d / beta, np.sign(d)).astype(d.dtype) * g


class HuberLoss(Loss):
    """Quadratic near zero, linear beyond ``delta``, as ``torch.nn.HuberLoss``.

    Parameters
    ----------
    reduction : {'mean', 'sum', 'none'}
    delta : float, default 1.0
        Where the quadratic turns linear; finite and ``> 0`` (torch refuses
        non-positive values).

    Notes
    -----
    With ``d = prediction - target``, per element::

        l = 0.5 d**2                  if |d| < delta
            delta (|d| - 0.5 delta)   otherwise

    Backward: ``dL/dprediction = g d`` where ``|d| < delta``, else
    ``g delta sign(d)``; ``g`` as in :class:`MSELoss`. Unlike
    :class:`SmoothL1Loss` the linear part has slope ``delta``, not 1.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> loss = nn.HuberLoss(delta=2.0, reduction="sum")
    >>> loss(np.array([1.0, -5.0]), np.array([0.0, 0.0]))
    8.5
    >>> loss.backward()
    array([ 1., -2.])
    """

    def __init__(self, reduction="mean", delta=1.0):
        """Check and store the options; errors start with ``HuberLoss:``."""
        super().__init__(reduction)
        with prefixed("HuberLoss"):
            self.delta = as_real(delta, "delta", low=0.0, low_open=True)

    def __repr__(self):
        """``HuberLoss(reduction='mean', delta=1.0)``."""
        return f"HuberLoss(reduction={self.reduction!r}, delta={self.delta!r})"

    def forward(self, prediction, target):
        """``prediction`` and ``target`` of one shape -> float (or per-element array).

        Parameters
        ----------
        prediction : ndarray or array-like, float32 or float64, any shape
        target : ndarray or array-like, shape of ``prediction``
            Real values, cast to the prediction's dtype.

        Returns
        -------
        loss : float, or ndarray of the prediction's shape and dtype ('none')
        """
        p, t = self._prediction_and_target(prediction, target)
        delta = self.delta
        with np.errstate(invalid="ignore", over="ignore"):
            d = p - t
            a = np.abs(d)
            loss = np.where(a < delta, 0.5 * d * d, delta * (a - 0.5 * delta)).astype(d.dtype)
            return self._reduce(loss, d=d)

    def _backward(self, cache, g):
        """``g d`` inside ``|d| < delta``, ``g delta sign(d)`` outside."""
        d, delta = cache["d"], self.delta
        return np.where(np.abs(d) < delta, d, delta * np.sign(d)).astype(d.dtype) * g
