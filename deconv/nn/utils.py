"""Gradient clipping, as ``torch.nn.utils.clip_grad_norm_`` and ``clip_grad_value_``.

Both act in place on the ``.grad`` arrays of the parameters given (after a
backward, before the optimizer's step)::

    loss.backward(); net.backward(loss_grad)
    nn.utils.clip_grad_norm_(net.parameters(), max_norm=1.0)
    optimizer.step()
"""

import math

import numpy as np

from deconv.functional.validation import as_bool, as_gradients, as_norm_order, as_real
from deconv.nn.module import prefixed

__all__ = ["clip_grad_norm_", "clip_grad_value_", "NonFiniteNormError"]


class NonFiniteNormError(ValueError, RuntimeError):
    """The total gradient norm is NaN or infinite and ``error_if_nonfinite=True``.

    A ValueError (the gradients given are not fit to clip) and a
    RuntimeError (what torch raises), so either ``except`` catches it.
    """


def _vector_norm(values, order):
    """``(sum |v|**order) ** (1 / order)`` in float64; the largest ``|v|`` for ``order = inf``."""
    if values.size == 0:
        return 0.0
    magnitudes = np.abs(values.astype(np.float64, copy=False))
    if math.isinf(order):
        return float(magnitudes.max())
    if order == 1:
        return float(magnitudes.sum())
    if order == 2:       # NumPy's pairwise sum, not a BLAS dot: the same bits on any thread count
        return float(np.sqrt(np.sum(magnitudes * magnitudes)))
    with np.errstate(over="ignore"):
        return float(np.sum(magnitudes ** order) ** (1.0 / order))


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """Scale all gradients together so that their joint norm is at most ``max_norm``.

    Parameters
    ----------
    parameters : Parameter or iterable of Parameter
        Whose ``.grad`` arrays are clipped in place (a ``.grad`` of None is
        skipped; a parameter listed twice counts once).
    max_norm : float
        ``>= 0``.
    norm_type : float, default 2.0
        The order ``p > 0`` of the norm, or ``math.inf`` (the largest
        ``|g|``).
    error_if_nonfinite : bool, default False
        Raise :class:`NonFiniteNormError` (before any gradient changes)
        when the total norm is NaN or infinite.
    foreach : bool or None, default None
        Accepted for torch's signature; there is one implementation.

    Returns
    -------
    total_norm : float
        The norm of all gradients taken together, before clipping (0.0 for
        no gradients).

    Raises
    ------
    NonFiniteNormError
        With ``error_if_nonfinite=True`` and a NaN or infinite total norm;
        torch raises a RuntimeError there, this error is both a ValueError
        and a RuntimeError.

    Notes
    -----
    As torch: the norm of the per-parameter norms,
    ``total = || (||g_1||_p, ..., ||g_k||_p) ||_p`` (the p-norm of the
    concatenated gradients), then every gradient is multiplied by
    ``min(max_norm / (total + 1e-6), 1)``; the multiplication happens even
    when the factor is 1, so a non-finite total without the error gives
    torch's results: ``total = inf`` turns finite gradients into 0 and
    infinite ones into NaN, ``total = NaN`` makes every gradient NaN.

    Differences from torch, on purpose: the norms are computed in float64
    and returned as a Python float (torch returns a 0-d tensor of the
    gradients' dtype, so for float32 gradients it differs by float32
    rounding); the factor is rounded once to each gradient's dtype.
    ``norm_type`` 0 and negative orders, which torch accepts though they
    are no norms, and a negative ``max_norm``, for which torch flips the
    gradients' sign, are refused.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> w = nn.Parameter(np.zeros(2))
    >>> w.grad[:] = [3.0, 4.0]
    >>> nn.utils.clip_grad_norm_([w], max_norm=1.0)
    5.0
    >>> w.grad.round(6)
    array([0.6, 0.8])
    """
    with prefixed("clip_grad_norm_"):
        grads = as_gradients(parameters, "parameters")
        max_norm = as_real(max_norm, "max_norm", low=0)
        order = as_norm_order(norm_type, "norm_type")
        error_if_nonfinite = as_bool(error_if_nonfinite, "error_if_nonfinite")
        if foreach is not None:
            as_bool(foreach, "foreach")
    if not grads:
        return 0.0
    per_parameter = np.array([_vector_norm(g, order) for g in grads])
    total = _vector_norm(per_parameter, order)
    if error_if_nonfinite and not math.isfinite(total):
        raise NonFiniteNormError(
            f"clip_grad_norm_: the total norm of order {order} of the gradients of parameters is "
            f"{total}, so it cannot be clipped; pass error_if_nonfinite=False to scale the "
            f"gradients by it anyway")
    with np.errstate(invalid="ignore", divide="ignore"):
        factor = np.float64(max_norm) / (np.float64(total) + 1e-6)
        factor = np.float64(1.0) if factor > 1 else factor    # NaN stays NaN, as torch's clamp
        for g in grads:
            g *= g.dtype.type(factor)
    return total


def clip_grad_value_(parameters, clip_value, foreach=None):
    """Clamp every gradient element to ``[-clip_value, clip_value]``, as torch.

    Parameters
    ----------
    parameters : Parameter or iterable of Parameter
        Whose ``.grad`` arrays are clamped in place (None skipped).
    clip_value : float
        ``>= 0``.
    foreach : bool or None, default None
        Accepted for torch's signature.

    Returns
    -------
    None
        As torch.

    Notes
    -----
    ``g = min(max(g, -clip_value), clip_value)`` elementwise; NaN stays
    NaN. ``clip_value`` is rounded to each gradient's dtype. torch accepts a
    negative ``clip_value`` (and then sets every element to
    ``-|clip_value|``); it is refused here.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> w = nn.Parameter(np.zeros(3))
    >>> w.grad[:] = [-5.0, 0.5, 5.0]
    >>> nn.utils.clip_grad_value_(w, 1.0)
    >>> w.grad
    array([-1. ,  0.5,  1. ])
    """
    with prefixed("clip_grad_value_"):
        grads = as_gradients(parameters, "parameters")
        clip_value = as_real(clip_value, "clip_value", low=0)
        if foreach is not None:
            as_bool(foreach, "foreach")
    with np.errstate(over="ignore"):         # a bound beyond float32's range is inf
        for g in grads:
            np.clip(g, -clip_value, clip_value, out=g)
