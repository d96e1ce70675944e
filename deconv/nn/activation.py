"""Elementwise activations (any input shape): ReLU, LeakyReLU, Sigmoid, Tanh, PReLU, ELU, GELU,
Softplus, Hardtanh.

At a kink the gradient is the one torch's backward kernel takes (its
comparison decides the side); NaN inputs take the branch torch's comparison
gives them, so gradients agree with torch's NaN for NaN.
"""

import math

import numpy as np
from scipy import special

from deconv.functional import elementwise as _ew
from deconv.functional.validation import as_choice, as_float_dtype, as_positive_int, as_real
from deconv.nn.module import Module, Parameter, check_parameter_bytes, prefixed

__all__ = ["ReLU", "LeakyReLU", "Sigmoid", "Tanh", "PReLU", "ELU", "GELU", "Softplus", "Hardtanh"]


class ReLU(Module):
    """``max(x, 0)``, as ``torch.nn.ReLU``; the gradient at 0 is 0.

    Notes
    -----
    Any input shape; the output has the input's shape and dtype.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> nn.ReLU()(np.array([-1., 0., 2.]))
    array([0., 0., 2.])
    """

    def forward(self, x):
        """Elementwise, any shape.

        Parameters
        ----------
        x : ndarray or array-like, any shape
            float32 or float64.

        Returns
        -------
        y : ndarray, shape and dtype of ``x``
        """
        x = self._input(x, like_input=(None, np.bool_))
        y = _ew.relu(x)
        # the backward's mask is y > 0, read from y itself: no mask is written
        # (torch's threshold_backward reads the output too); as with every
        # saved array, y must not be changed in place before the backward
        self._save(y, y=y)
        return y

    def backward(self, grad_output):
        """``grad_output * (x > 0)``.

        Parameters
        ----------
        grad_output : ndarray or array-like, shape and dtype of the last output

        Returns
        -------
        grad_input : ndarray, shape of the last input
        """
        c, g = self._saved_and_grad(grad_output)
        # torch's threshold_backward is a select: an infinite or NaN gradient where
        # x <= 0 gives 0 there, not 0 * inf; the kernel selects, in one pass
        return _ew.relu_backward(g, c["y"])


class LeakyReLU(Module):
    """``x`` if ``x > 0`` else ``negative_slope * x``, as ``torch.nn.LeakyReLU``.

    Parameters
    ----------
    negative_slope : float, default 0.01

    Notes
    -----
    The gradient at 0 is ``negative_slope`` (torch's choice).

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> nn.LeakyReLU(0.5)(np.array([-2., 3.]))
    array([-1.,  3.])
    """

    def __init__(self, negative_slope=0.01):
        """Check and store ``negative_slope``."""
        super().__init__()
        if isinstance(negative_slope, (bool, np.bool_)) or not isinstance(
                negative_slope, (int, float, np.integer, np.floating)):
            raise TypeError(f"LeakyReLU: negative_slope must be a float, got {negative_slope!r}")
        try:
            slope = float(negative_slope)
        except OverflowError:                    # an int beyond the float range
            slope = math.inf
        if not math.isfinite(slope):
            shown = f"an int of {len(str(negative_slope))} digits" if math.isinf(slope) and \
                isinstance(negative_slope, int) else repr(negative_slope)
            raise ValueError(f"LeakyReLU: negative_slope must be finite, got {shown}")
        self.negative_slope = slope

    def extra_repr(self):
        """The slope."""
        return f"negative_slope={self.negative_slope}"

    def forward(self, x):
        """Elementwise, any shape.

        Parameters
        ----------
        x : ndarray or array-like, any shape
            float32 or float64.

        Returns
        -------
        y : ndarray, shape and dtype of ``x``
        """
        x = self._input(x, like_input=(None, np.bool_, None))
        positive = x > 0
        self._save(x, positive=positive)
        return np.where(positive, x, x * self.negative_slope)

    def backward(self, grad_output):
        """``grad_output`` where ``x > 0``, ``negative_slope * grad_output`` elsewhere.

        Parameters
        ----------
        grad_output : ndarray or array-like, shape and dtype of the last output

        Returns
        -------
        grad_input : ndarray, shape of the last input
        """
        c, g = self._saved_and_grad(grad_output)
        return np.where(c["positive"], g, g * self.negative_slope)


class Sigmoid(Module):
    """``1 / (1 + exp(-x))`` (``scipy.special.expit``, stable for large ``|x|``).

    Notes
    -----
    Any input shape; the output has the input's shape and dtype. The
    backward uses the saved output: ``y' = y (1 - y)``.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> nn.Sigmoid()(np.array([0.0]))
    array([0.5])
    """

    def forward(self, x):
        """Elementwise, any shape.

        Parameters
        ----------
        x : ndarray or array-like, any shape
            float32 or float64.

        Returns
        -------
        y : ndarray, shape and dtype of ``x``
        """
        x = self._input(x, like_input=(None,))
        y = special.expit(x)
        self._save(y, y=y)
        return y

    def backward(self, grad_output):
        """``grad_output * y * (1 - y)``.

        Parameters
        ----------
        grad_output : ndarray or array-like, shape and dtype of the last output

        Returns
        -------
        grad_input : ndarray, shape of the last input
        """
        c, g = self._saved_and_grad(grad_output)
        y = c["y"]
        return g * (y * (1 - y))


class Tanh(Module):
    """Hyperbolic tangent, as ``torch.nn.Tanh``.

    Notes
    -----
    Any input shape; the output has the input's shape and dtype. The
    backward uses the saved output: ``y' = 1 - y**2``.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> nn.Tanh()(np.array([0.0]))
    array([0.])
    """

    def forward(self, x):
        """Elementwise, any shape.

        Parameters
        ----------
        x : ndarray or array-like, any shape
            float32 or float64.

        Returns
        -------
        y : ndarray, shape and dtype of ``x``
        """
        x = self._input(x, like_input=(None,))
        y = np.tanh(x)
        self._save(y, y=y)
        return y

    def backward(self, grad_output):
        """``grad_output * (1 - y**2)``.

        Parameters
        ----------
        grad_output : ndarray or array-like, shape and dtype of the last output

        Returns
        -------
        grad_input : ndarray, shape of the last input
        """
        c, g = self._saved_and_grad(grad_output)
        y = c["y"]
        return g * (1 - y * y)




class PReLU(Module):
    """``x`` if ``x > 0`` else ``a * x`` with a learnt slope ``a``, as ``torch.nn.PReLU``.

    Parameters
    ----------
    num_parameters : int, default 1
        1 (one slope for every element) or the number of channels ``C``
        (one slope per channel, the channel axis being axis 1 as in torch:
        ``(N, C)``, ``(N, C, L)``, ``(N, C, H, W)``...).
    init : float, default 0.25
        Initial value of every slope.
    dtype : np.float32 (default) or np.float64
        dtype of ``weight``; inputs must have it.

    Attributes
    ----------
    weight : Parameter, shape (num_parameters,)

    Notes
    -----
    Forward ``y = x`` where ``x > 0``, ``y = a_c x`` elsewhere (``a_c`` the
    slope of the element's channel). Backward (torch's choice at 0 and for
    NaN: the side ``x > 0`` is false)::

        grad_x = grad_y            where x > 0, a_c * grad_y elsewhere
        grad_a_c += sum over every axis but 1 of (x * grad_y where x <= 0)

    With ``num_parameters = 1`` the input may have any shape (0-d included);
    with more, it needs ``x.ndim >= 2`` and ``x.shape[1] == num_parameters``
    (torch raises a RuntimeError for a mismatch; this is a ValueError).

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> prelu = nn.PReLU(2, init=0.5, dtype=np.float64)
    >>> prelu(np.array([[-2., -2.], [4., 4.]]))
    array([[-1., -1.],
           [ 4.,  4.]])
    >>> prelu.backward(np.ones((2, 2)))
    array([[0.5, 0.5],
           [1. , 1. ]])
    >>> prelu.weight.grad
    array([-2., -2.])
    """

    def __init__(self, num_parameters=1, init=0.25, *, dtype=np.float32):
        """Check the arguments; ``weight`` is ``num_parameters`` copies of ``init``."""
        super().__init__()
        with prefixed("PReLU"):
            self.num_parameters = as_positive_int(num_parameters, "num_parameters")
            init = as_real(init, "init")
            dt = as_float_dtype(dtype)
            check_parameter_bytes((self.num_parameters,), dt)
        self.weight = Parameter(np.full(self.num_parameters, init, dtype=dt))

    def extra_repr(self):
        """The number of slopes."""
        return f"num_parameters={self.num_parameters}"

    def _channel_view(self, a, ndim):
        """``a`` (one value per slope) shaped to broadcast against an input of ``ndim`` axes."""
        if self.num_parameters == 1:
            return a.reshape(())
        return a.reshape((1, -1) + (1,) * (ndim - 2))

    def forward(self, x):
        """Elementwise with the slope of each element's channel.

        Parameters
        ----------
        x : ndarray or array-like, any shape (axis 1 of size ``num_parameters`` if > 1)
            The dtype of ``weight``.

        Returns
        -------
        y : ndarray, shape and dtype of ``x``
        """
        x = self._input(x)
        self._check_parameter_dtype(x, self.weight.dtype)
        if self.num_parameters > 1 and (x.ndim < 2 or x.shape[1] != self.num_parameters):
            raise ValueError(
                f"{self._short_repr()}: input must have its channel axis 1 of size "
                f"num_parameters={self.num_parameters}, got shape {x.shape}")
        self._check_bytes("output", (x.shape, np.bool_), (x.shape, x.dtype))
        slope = self._channel_view(self.weight.data, x.ndim)
        positive = x > 0
        self._save(x, x=x, positive=positive, slope=slope.copy())
        return np.where(positive, x, slope * x)

    def backward(self, grad_output):
        """``grad_output`` where ``x > 0``, ``a * grad_output`` elsewhere; adds ``weight.grad``.

        Parameters
        ----------
        grad_output : ndarray or array-like, shape and dtype of the last output

        Returns
        -------
        grad_input : ndarray, shape of the last input
        """
        c, g = self._saved_and_grad(grad_output)
        x, positive = c["x"], c["positive"]
        zero = g.dtype.type(0)
        slope_grad = np.where(positive, zero, x * g)
        if self.num_parameters == 1:
            self.weight.grad += slope_grad.sum(dtype=g.dtype)
        else:                                       # (N, C, ...) -> (C,)
            axes = (0,) + tuple(range(2, x.ndim))
            self.weight.grad += slope_grad.sum(axis=axes, dtype=g.dtype)
        return np.where(positive, g, c["slope"] * g)


class ELU(Module):
    """``x`` if ``x > 0`` else ``alpha * (exp(x) - 1)``, as ``torch.nn.ELU``.

    Parameters
    ----------
    alpha : float, default 1.0
        Any finite number (torch does not bound it either).

    Notes
    -----
    Forward ``y = x`` for ``x > 0``, ``y = alpha * expm1(x)`` for ``x <= 0``.
    Backward ``grad_x = grad_y`` for ``x > 0`` and ``alpha * exp(x) * grad_y``
    for ``x <= 0``: at 0 the gradient is ``alpha`` (torch's ``x <= 0``
    branch), not 1. A NaN input takes the ``x > 0`` branch of the backward
    (its gradient is ``grad_y``), as in torch. torch's ``inplace`` argument
    is not offered (inputs are never written to).

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> elu = nn.ELU(alpha=2.0)
    >>> elu(np.array([-np.inf, 0.0, 3.0]))
    array([-2.,  0.,  3.])
    >>> elu.backward(np.ones(3))
    array([0., 2., 1.])
    """

    def __init__(self, alpha=1.0):
        """Check and store ``alpha``."""
        super().__init__()
        with prefixed("ELU"):
            self.alpha = as_real(alpha, "alpha")

    def extra_repr(self):
        """The scale of the negative side."""
        return f"alpha={self.alpha}"

    def forward(self, x):
        """Elementwise, any shape.

        Parameters
        ----------
        x : ndarray or array-like, any shape
            float32 or float64.

        Returns
        -------
        y : ndarray, shape and dtype of ``x``
        """
        x = self._input(x, like_input=(np.bool_, None, None))
        negative = x <= 0
        self._save(x, x=x, negative=negative)
        with np.errstate(over="ignore", invalid="ignore"):
            return np.where(negative, np.expm1(x) * self.alpha, x)

    def backward(self, grad_output):
        """``grad_output`` where ``x > 0``, ``alpha * exp(x) * grad_output`` where ``x <= 0``.

        Parameters
        ----------
        grad_output : ndarray or array-like, shape and dtype of the last output

        Returns
        -------
        grad_input : ndarray, shape of the last input
        """
        c, g = self._saved_and_grad(grad_output)
        with np.errstate(over="ignore", invalid="ignore"):
            return np.where(c["negative"], g * (np.exp(c["x"]) * self.alpha), g)


class GELU(Module):
    """Gaussian error linear unit ``x * Phi(x)``, as ``torch.nn.GELU``.

    Parameters
    ----------
    approximate : {'none', 'tanh'}, default 'none'
        'none': the exact ``Phi(x) = (1 + erf(x / sqrt 2)) / 2``; 'tanh':
        ``Phi(x) ~ (1 + tanh(sqrt(2/pi) (x + 0.044715 x**3))) / 2``.

    Notes
    -----
    Exact form, with ``phi(x) = exp(-x**2 / 2) / sqrt(2 pi)``::

        y = x Phi(x),    grad_x = grad_y * (Phi(x) + x phi(x))

    tanh form, with ``u = sqrt(2/pi) (x + 0.044715 x**3)`` and ``t = tanh(u)``::

        y = x (1 + t) / 2
        grad_x = grad_y * ((1 + t) / 2 + x (1 - t**2) sqrt(2/pi) (1 + 3 * 0.044715 x**2) / 2)

    ``erf`` is the C library's (``math.erf`` in a Numba kernel,
    :mod:`deconv.kernels.elementwise`), one parallel pass for the output and
    ``Phi(x)``.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> gelu = nn.GELU()
    >>> gelu(np.array([0.0, 1.0])).round(6)
    array([0.      , 0.841345])
    >>> gelu.backward(np.ones(2)).round(6)
    array([0.5     , 1.083315])
    """

    _SQRT_2_OVER_PI = math.sqrt(2 / math.pi)
    _CUBIC = 0.044715

    def __init__(self, approximate="none"):
        """Check and store ``approximate``."""
        super().__init__()
        with prefixed("GELU"):
            self.approximate = as_choice(approximate, "approximate", ("none", "tanh"))

    def extra_repr(self):
        """The form (exact or tanh)."""
        return f"approximate={self.approximate!r}"

    def forward(self, x):
        """Elementwise, any shape.

        Parameters
        ----------
        x : ndarray or array-like, any shape
            float32 or float64.

        Returns
        -------
        y : ndarray, shape and dtype of ``x``
        """
        x = self._input(x, like_input=(None, None, None))
        with np.errstate(over="ignore", invalid="ignore"):
            if self.approximate == "tanh":
                t = np.tanh((x + x * x * x * self._CUBIC) * self._SQRT_2_OVER_PI)
                self._save(x, x=x, t=t)
                return x * (t + 1) * 0.5
            y, cdf = _ew.gelu(x)           # one pass: the output and Phi(x)
            self._save(x, x=x, cdf=cdf)
            return y

    def backward(self, grad_output):
        """``grad_output`` times the derivative of the chosen form (see Notes).

        Parameters
        ----------
        grad_output : ndarray or array-like, shape and dtype of the last output

        Returns
        -------
        grad_input : ndarray, shape of the last input
        """
        c, g = self._saved_and_grad(grad_output)
        x = c["x"]
        with np.errstate(over="ignore", invalid="ignore"):
            if self.approximate == "tanh":
                t = c["t"]
                du = (x * x * (3 * self._CUBIC) + 1) * self._SQRT_2_OVER_PI
                return g * ((t + 1) * 0.5 + x * (1 - t * t) * du * 0.5)
            pdf = np.exp(x * x * -0.5) * (1 / math.sqrt(2 * math.pi))
            return g * (c["cdf"] + x * pdf)


class Softplus(Module):
    """``log(1 + exp(beta x)) / beta``, linear above a threshold, as ``torch.nn.Softplus``.

    Parameters
    ----------
    beta : float, default 1.0
        Any finite non-zero number (torch accepts 0 and returns inf).
    threshold : float, default 20.0
        Where ``beta * x > threshold`` the output is ``x`` itself.

    Notes
    -----
    With ``z = beta x``::

        y = x                       where z > threshold
        y = log(1 + exp(z)) / beta  elsewhere
        grad_x = grad_y             where z > threshold
        grad_x = grad_y * sigmoid(z) elsewhere

    At ``z == threshold`` the smooth branch is taken (torch's ``>``). The
    smooth branch is evaluated as ``logaddexp(0, z) / beta`` and
    ``expit(z)``: the values torch computes as ``log1p(exp(z))`` and
    ``exp(z) / (exp(z) + 1)``, except that for a threshold beyond the range
    of ``exp`` (above ~88 in float32, ~709 in float64) they stay finite
    where torch's overflow to inf and NaN.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> sp = nn.Softplus(beta=2.0, threshold=10.0)
    >>> sp(np.array([0.0, 6.0])).round(6)
    array([0.346574, 6.      ])
    >>> sp.backward(np.ones(2))
    array([0.5, 1. ])
    """

    def __init__(self, beta=1.0, threshold=20.0):
        """Check and store ``beta`` and ``threshold``."""
        super().__init__()
        with prefixed("Softplus"):
            self.beta = as_real(beta, "beta")
            self.threshold = as_real(threshold, "threshold")
            if self.beta == 0:
                raise ValueError("beta must be a finite non-zero number (y divides by beta), "
                                 "got 0.0")

    def extra_repr(self):
        """The sharpness and the threshold."""
        return f"beta={self.beta}, threshold={self.threshold}"

    def forward(self, x):
        """Elementwise, any shape.

        Parameters
        ----------
        x : ndarray or array-like, any shape
            float32 or float64.

        Returns
        -------
        y : ndarray, shape and dtype of ``x``
        """
        x = self._input(x, like_input=(None, np.bool_, None))
        with np.errstate(over="ignore", invalid="ignore"):
            z = x * self.beta
            linear = z > self.threshold
            self._save(x, z=z, linear=linear)
            return np.where(linear, x, np.logaddexp(z.dtype.type(0), z) / self.beta)

    def backward(self, grad_output):
        """``grad_output`` where linear, ``grad_output * sigmoid(beta x)`` elsewhere.

        Parameters
        ----------
        grad_output : ndarray or array-like, shape and dtype of the last output

        Returns
        -------
        grad_input : ndarray, shape of the last input
        """
        c, g = self._saved_and_grad(grad_output)
        with np.errstate(over="ignore", invalid="ignore"):
            return np.where(c["linear"], g, g * special.expit(c["z"]))


class Hardtanh(Module):
    """``x`` clamped to ``[min_val, max_val]``, as ``torch.nn.Hardtanh``.

    Parameters
    ----------
    min_val, max_val : float, default -1.0 and 1.0
        ``min_val < max_val`` (torch asserts it; this is a ValueError).

    Notes
    -----
    Forward ``y = min(max(x, min_val), max_val)``. Backward, torch's choice
    at the kinks: ``grad_x = 0`` where ``x <= min_val`` or ``x >= max_val``
    (the kinks themselves included), ``grad_y`` elsewhere; a NaN input
    gives a NaN output and passes ``grad_y``, as in torch.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> ht = nn.Hardtanh(-1.0, 2.0)
    >>> ht(np.array([-3.0, -1.0, 0.5, 2.0, 3.0]))
    array([-1. , -1. ,  0.5,  2. ,  2. ])
    >>> ht.backward(np.ones(5))
    array([0., 0., 1., 0., 0.])
    """

    def __init__(self, min_val=-1.0, max_val=1.0):
        """Check and store the bounds."""
        super().__init__()
        with prefixed("Hardtanh"):
            self.min_val = as_real(min_val, "min_val")
            self.max_val = as_real(max_val, "max_val")
            if not self.max_val > self.min_val:
                raise ValueError(f"max_val must be greater than min_val={self.min_val}, got "
                                 f"max_val={self.max_val}")

    def extra_repr(self):
        """The bounds."""
        return f"min_val={self.min_val}, max_val={self.max_val}"

    def forward(self, x):
        """Elementwise, any shape.

        Parameters
        ----------
        x : ndarray or array-like, any shape
            float32 or float64.

        Returns
        -------
        y : ndarray, shape and dtype of ``x``
        """
        x = self._input(x, like_input=(np.bool_, None))
        # float32 input: bounds beyond its range round to +-inf, as torch's cast does
        with np.errstate(over="ignore"):
            clamped = (x <= self.min_val) | (x >= self.max_val)
            self._save(x, clamped=clamped)
            return np.clip(x, self.min_val, self.max_val)    # float32 stays float32, NaN stays

    def backward(self, grad_output):
        """0 where ``x`` was at or beyond a bound, ``grad_output`` elsewhere.

        Parameters
        ----------
        grad_output : ndarray or array-like, shape and dtype of the last output

        Returns
        -------
        grad_input : ndarray, shape of the last input
        """
        c, g = self._saved_and_grad(grad_output)
        return np.where(c["clamped"], g.dtype.type(0), g)
