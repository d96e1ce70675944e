"""Initialisers that fill an array or a :class:`~deconv.nn.Parameter` in place, as ``torch.nn.init``.

Every function takes the array to fill (a Parameter's ``.data`` is filled
when a Parameter is given), fills it in place and returns it (the ndarray).
Random initialisers take ``rng``: a ``np.random.Generator`` (advanced by the
draw), an int seed or None (a fresh generator), so a seed gives the same
values on every run. The values are drawn in float64 and rounded once to
the array's dtype. Names, arguments, defaults and formulas are torch's
(its ``generator`` argument is ``rng`` here); the draws themselves are
NumPy's, so the values differ from torch's while their law is the same.

Fans follow torch's ``_calculate_fan_in_and_fan_out``: for a weight of shape
``(d0, d1, k...)``, ``fan_in = d1 * prod(k)`` and ``fan_out = d0 * prod(k)``
(a conv weight ``(C_out, C_in/groups, kH, kW)``, a linear weight
``(out_features, in_features)``; a transposed conv's weight ``(C_in,
C_out/groups, kH, kW)`` gets them swapped, as in torch).

A zero-element array is returned untouched (torch warns and does the same).
"""

import math

import numpy as np

from deconv.functional.validation import (
    as_choice, as_fillable_array, as_generator, as_real, check_bytes,
)
from deconv.nn.module import Parameter, prefixed

__all__ = ["calculate_gain", "uniform_", "normal_", "constant_", "zeros_", "ones_",
           "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_",
           "orthogonal_"]

NONLINEARITIES = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
                  "conv_transpose2d", "conv_transpose3d", "sigmoid", "tanh", "relu",
                  "leaky_relu", "selu")


def calculate_gain(nonlinearity, param=None):
    """The recommended gain for a nonlinearity, as ``torch.nn.init.calculate_gain``.

    Parameters
    ----------
    nonlinearity : str
        One of ``'linear'``, ``'conv1d'``, ``'conv2d'``, ``'conv3d'``,
        ``'conv_transpose1d'``, ``'conv_transpose2d'``,
        ``'conv_transpose3d'``, ``'sigmoid'``, ``'tanh'``, ``'relu'``,
        ``'leaky_relu'``, ``'selu'``.
    param : float or None
        The negative slope of ``'leaky_relu'`` (None means 0.01, torch's
        default); ignored by the others, as in torch.

    Returns
    -------
    gain : float

    Notes
    -----
    1 for the linear ones and sigmoid, ``5/3`` for tanh, ``sqrt(2)`` for
    relu, ``sqrt(2 / (1 + slope**2))`` for leaky_relu and ``3/4`` for selu.

    Examples
    --------
    >>> from deconv.nn import init
    >>> init.calculate_gain("tanh"), init.calculate_gain("leaky_relu", 0.0)
    (1.6666666666666667, 1.4142135623730951)
    """
    with prefixed("calculate_gain"):
        nonlinearity = as_choice(nonlinearity, "nonlinearity", NONLINEARITIES)
        if nonlinearity == "leaky_relu":
            slope = 0.01 if param is None else as_real(param, "param")
            return math.sqrt(2.0 / (1 + slope ** 2))
    return {"tanh": 5.0 / 3, "relu": math.sqrt(2.0), "selu": 3.0 / 4}.get(nonlinearity, 1.0)


def _target(tensor, where):
    """The ndarray to fill: ``tensor`` itself or a Parameter's ``.data``, checked."""
    with prefixed(where):
        return as_fillable_array(tensor.data if isinstance(tensor, Parameter) else tensor,
                                 "tensor")


def _fans(array, where):
    """``(fan_in, fan_out)`` of a weight of shape ``(d0, d1, k...)``: ``d1 * prod(k), d0 * prod(k)``."""
    if array.ndim < 2:
        raise ValueError(f"{where}: tensor must have at least 2 dimensions to have a fan in and "
                         f"a fan out, got shape {array.shape}")
    receptive = math.prod(array.shape[2:])
    return array.shape[1] * receptive, array.shape[0] * receptive


def _fill(array, draw, where):
    """Store ``draw(shape)`` (float64 values) into ``array``, refusing a draw over the byte cap."""
    if array.size:
        with prefixed(where):
            check_bytes("tensor (drawn in float64)", (array.shape, np.float64))
        with np.errstate(over="ignore"):     # huge draws round to +-inf in float32, as in torch
            array[...] = draw(array.shape)
    return array


def uniform_(tensor, a=0.0, b=1.0, *, rng=None):
    """Fill with draws of the uniform law on ``[a, b)``, as ``torch.nn.init.uniform_``.

    Parameters
    ----------
    tensor : ndarray or Parameter, float32 or float64, any shape
    a, b : float, default 0.0 and 1.0
        The bounds, ``a <= b``.
    rng : np.random.Generator, int or None

    Returns
    -------
    tensor : ndarray
        The filled array.

    Notes
    -----
    ``rng.uniform(a, b)`` in float64, rounded to the array's dtype (so a
    float32 value may round up to ``b``).

    Examples
    --------
    >>> import numpy as np
    >>> from deconv.nn import init
    >>> w = init.uniform_(np.empty((2, 3)), -1.0, 1.0, rng=0)
    >>> bool((np.abs(w) <= 1).all())
    True
    """
    where = "uniform_"
    array = _target(tensor, where)
    with prefixed(where):
        a, b = as_real(a, "a"), as_real(b, "b")
        if b < a:
            raise ValueError(f"b must be >= a={a}, got b={b}")
        gen = as_generator(rng)
    return _fill(array, lambda shape: gen.uniform(a, b, size=shape), where)


def normal_(tensor, mean=0.0, std=1.0, *, rng=None):
    """Fill with draws of the normal law ``N(mean, std**2)``, as ``torch.nn.init.normal_``.

    Parameters
    ----------
    tensor : ndarray or Parameter, float32 or float64, any shape
    mean : float, default 0.0
    std : float, default 1.0
        ``std >= 0`` (torch raises for a negative std too).
    rng : np.random.Generator, int or None

    Returns
    -------
    tensor : ndarray

    Notes
    -----
    ``rng.normal(mean, std)`` in float64, rounded to the array's dtype.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv.nn import init
    >>> init.normal_(np.empty(3), std=0.0, mean=2.0, rng=0)
    array([2., 2., 2.])
    """
    where = "normal_"
    array = _target(tensor, where)
    with prefixed(where):
        mean, std = as_real(mean, "mean"), as_real(std, "std", low=0)
        gen = as_generator(rng)
    return _fill(array, lambda shape: gen.normal(mean, std, size=shape), where)


def constant_(tensor, val):
    """Fill with ``val``, as ``torch.nn.init.constant_``.

    Parameters
    ----------
    tensor : ndarray or Parameter, float32 or float64, any shape
    val : float
        A finite number.

    Returns
    -------
    tensor : ndarray

    Notes
    -----
    ``val`` is rounded once to the array's dtype.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv.nn import init
    >>> init.constant_(np.empty(2, dtype=np.float32), 0.5)
    array([0.5, 0.5], dtype=float32)
    """
    array = _target(tensor, "constant_")
    with prefixed("constant_"):
        val = as_real(val, "val")
    with np.errstate(over="ignore"):         # 1e300 into float32 is inf, as torch's fill_
        array[...] = val
    return array


def zeros_(tensor):
    """Fill with 0, as ``torch.nn.init.zeros_``.

    Parameters
    ----------
    tensor : ndarray or Parameter, float32 or float64, any shape

    Returns
    -------
    tensor : ndarray

    Notes
    -----
    ``constant_(tensor, 0.0)``.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv.nn import init
    >>> init.zeros_(np.ones(2))
    array([0., 0.])
    """
    return constant_(tensor, 0.0)


def ones_(tensor):
    """Fill with 1, as ``torch.nn.init.ones_``.

    Parameters
    ----------
    tensor : ndarray or Parameter, float32 or float64, any shape

    Returns
    -------
    tensor : ndarray

    Notes
    -----
    ``constant_(tensor, 1.0)``.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv.nn import init
    >>> init.ones_(np.zeros(2))
    array([1., 1.])
    """
    return constant_(tensor, 1.0)


def _xavier_std(array, gain, where):
    """``gain * sqrt(2 / (fan_in + fan_out))`` (a zero-element array may have 0 fans).

    A negative gain is refused: torch's draw refuses the negative standard
    deviation (or the reversed bounds) it gives.
    """
    with prefixed(where):
        gain = as_real(gain, "gain", low=0)
    fan_in, fan_out = _fans(array, where)
    return gain * math.sqrt(2.0 / (fan_in + fan_out)) if fan_in + fan_out else 0.0


def xavier_uniform_(tensor, gain=1.0, *, rng=None):
    """Glorot uniform init, as ``torch.nn.init.xavier_uniform_``.

    Parameters
    ----------
    tensor : ndarray or Parameter, float32 or float64, at least 2-D
    gain : float, default 1.0
        ``>= 0``.
    rng : np.random.Generator, int or None

    Returns
    -------
    tensor : ndarray

    Notes
    -----
    Uniform on ``[-b, b)`` with ``b = gain * sqrt(6 / (fan_in + fan_out))``
    (the variance ``b**2 / 3`` is that of :func:`xavier_normal_`).

    Examples
    --------
    >>> import numpy as np
    >>> from deconv.nn import init
    >>> w = init.xavier_uniform_(np.empty((4, 2)), rng=0)
    >>> bool((np.abs(w) <= 1).all())          # b = sqrt(6 / 6)
    True
    """
    where = "xavier_uniform_"
    array = _target(tensor, where)
    bound = math.sqrt(3.0) * _xavier_std(array, gain, where)
    with prefixed(where):
        gen = as_generator(rng)
    return _fill(array, lambda shape: gen.uniform(-bound, bound, size=shape), where)


def xavier_normal_(tensor, gain=1.0, *, rng=None):
    """Glorot normal init, as ``torch.nn.init.xavier_normal_``.

    Parameters
    ----------
    tensor : ndarray or Parameter, float32 or float64, at least 2-D
    gain : float, default 1.0
        ``>= 0``.
    rng : np.random.Generator, int or None

    Returns
    -------
    tensor : ndarray

    Notes
    -----
    ``N(0, std**2)`` with ``std = gain * sqrt(2 / (fan_in + fan_out))``.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv.nn import init
    >>> init.xavier_normal_(np.empty((300, 200)), rng=0).std().round(2)   # sqrt(2 / 500)
    np.float64(0.06)
    """
    where = "xavier_normal_"
    array = _target(tensor, where)
    std = _xavier_std(array, gain, where)
    with prefixed(where):
        gen = as_generator(rng)
    return _fill(array, lambda shape: gen.normal(0.0, std, size=shape), where)


def _kaiming_std(array, a, mode, nonlinearity, where):
    """``gain / sqrt(fan)`` with the gain of ``nonlinearity`` (slope ``a``) and the chosen fan."""
    with prefixed(where):
        a = as_real(a, "a")
        mode = as_choice(mode, "mode", ("fan_in", "fan_out"))
        nonlinearity = as_choice(nonlinearity, "nonlinearity", NONLINEARITIES)
    fan_in, fan_out = _fans(array, where)
    fan = fan_in if mode == "fan_in" else fan_out
    if fan == 0:                    # a zero-element array: nothing is drawn
        return 0.0
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu", *, rng=None):
    """He uniform init, as ``torch.nn.init.kaiming_uniform_``.

    Parameters
    ----------
    tensor : ndarray or Parameter, float32 or float64, at least 2-D
    a : float, default 0.0
        The negative slope of the rectifier that follows (used by
        ``'leaky_relu'`` only).
    mode : {'fan_in', 'fan_out'}, default 'fan_in'
        Preserve the variance of the forward (fan_in) or of the backward.
    nonlinearity : str, default 'leaky_relu'
        A name of :func:`calculate_gain`.
    rng : np.random.Generator, int or None

    Returns
    -------
    tensor : ndarray

    Notes
    -----
    Uniform on ``[-b, b)``, ``b = sqrt(3) * gain / sqrt(fan)``, with
    ``gain = calculate_gain(nonlinearity, a)``. The default init of
    torch's Conv and Linear weights is ``kaiming_uniform_(w, a=sqrt(5))``,
    that is ``b = 1 / sqrt(fan_in)``.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv.nn import init
    >>> w = init.kaiming_uniform_(np.empty((8, 3, 3, 3), dtype=np.float32), a=5 ** 0.5, rng=0)
    >>> bool((np.abs(w) <= 1 / np.sqrt(27)).all()), w.dtype
    (True, dtype('float32'))
    """
    where = "kaiming_uniform_"
    array = _target(tensor, where)
    bound = math.sqrt(3.0) * _kaiming_std(array, a, mode, nonlinearity, where)
    with prefixed(where):
        gen = as_generator(rng)
    return _fill(array, lambda shape: gen.uniform(-bound, bound, size=shape), where)


def kaiming_normal_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu", *, rng=None):
    """He normal init, as ``torch.nn.init.kaiming_normal_``.

    Parameters
    ----------
    tensor : ndarray or Parameter, float32 or float64, at least 2-D
    a : float, default 0.0
        The negative slope of the rectifier that follows (``'leaky_relu'``).
    mode : {'fan_in', 'fan_out'}, default 'fan_in'
    nonlinearity : str, default 'leaky_relu'
    rng : np.random.Generator, int or None

    Returns
    -------
    tensor : ndarray

    Notes
    -----
    ``N(0, std**2)`` with ``std = calculate_gain(nonlinearity, a) / sqrt(fan)``.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv.nn import init
    >>> w = init.kaiming_normal_(np.empty((200, 50, 2, 2)), mode="fan_out", rng=0)
    >>> float(w.std().round(3))                            # sqrt(2 / 800)
    0.05
    """
    where = "kaiming_normal_"
    array = _target(tensor, where)
    std = _kaiming_std(array, a, mode, nonlinearity, where)
    with prefixed(where):
        gen = as_generator(rng)
    return _fill(array, lambda shape: gen.normal(0.0, std, size=shape), where)


def orthogonal_(tensor, gain=1.0, *, rng=None):
    """A (semi-)orthogonal matrix times ``gain``, as ``torch.nn.init.orthogonal_``.

    Parameters
    ----------
    tensor : ndarray or Parameter, float32 or float64, at least 2-D
        Seen as the matrix ``(d0, prod(other dims))``.
    gain : float, default 1.0
    rng : np.random.Generator, int or None

    Returns
    -------
    tensor : ndarray

    Notes
    -----
    Torch's construction: a ``(rows, cols)`` matrix of standard normal
    draws (transposed when ``rows < cols``) is factored ``Q R``
    (``np.linalg.qr``, reduced); ``Q``'s columns are multiplied by the signs
    of ``diag(R)`` (which makes ``Q`` Haar-distributed), transposed back if
    needed and scaled by ``gain``. The rows (``rows <= cols``) or the
    columns (``rows >= cols``) of the result are orthonormal times ``gain``.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv.nn import init
    >>> q = init.orthogonal_(np.empty((3, 5)), rng=0)
    >>> np.allclose(q @ q.T, np.eye(3))
    True
    """
    where = "orthogonal_"
    array = _target(tensor, where)
    if array.ndim < 2:
        raise ValueError(f"{where}: tensor must have at least 2 dimensions, got shape "
                         f"{array.shape}")
    with prefixed(where):
        gain = as_real(gain, "gain")
        gen = as_generator(rng)
    rows = array.shape[0]
    cols = array.size // rows if rows else 0

    def draw(shape):
        """The signed Q factor of a normal (rows, cols) matrix, reshaped to ``shape``."""
        flat = gen.standard_normal((rows, cols))
        if rows < cols:
            flat = flat.T
        q, r = np.linalg.qr(flat)
        q = q * np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        return (q * gain).reshape(shape)

    with prefixed(where):
        # the QR's workspace: the draw, Q and R, in float64
        check_bytes("tensor (factored in float64)", (array.shape, np.float64),
                    (array.shape, np.float64), ((min(rows, cols),) * 2, np.float64))
    return _fill(array, draw, where)
