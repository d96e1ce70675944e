"""Optimizers with ``torch.optim`` semantics: :class:`SGD` and :class:`Adam`.

Both follow the single-tensor ("for-loop") implementations of
``torch.optim.SGD`` and ``torch.optim.Adam`` step for step, operation for
operation, in the parameter's own dtype (a float32 parameter is updated in
float32 arithmetic, as a float32 tensor is by torch).

Parameters
----------
An optimizer receives an iterable of *parameter objects*, each with two
attributes:

``data``
    a float32 or float64 ndarray, updated **in place** by :meth:`step` (layers
    and user code keep references to it);
``grad``
    ``None`` or an ndarray of the same shape and dtype. A parameter whose
    ``grad`` is ``None`` is skipped by :meth:`step`, as in torch (its
    momentum buffer or Adam moments and step count are left untouched).

:class:`deconv.nn.Parameter` is such an object; so is any small class with
the two attributes.

State
-----
:meth:`~SGD.state_dict` returns a flat ``dict`` whose values are only NumPy
arrays and Python numbers (``int``, ``float``, ``bool``), so that it can be
stored in an ``.npz`` archive and loaded back without pickle;
:meth:`~SGD.load_state_dict` also accepts the 0-d arrays that ``np.savez``
turns numbers into. Per-parameter entries are keyed by the parameter's
position in the list given to the constructor (``"state.0.exp_avg"``, ...).
Saving, loading into a fresh optimizer over the same parameters and
continuing gives bitwise the same steps as never stopping.

Differences from torch
----------------------
* No parameter groups, closures, ``maximize``, ``amsgrad``, ``foreach`` or
  ``fused`` options.
* ``SGD`` needs ``lr`` (torch >= 2.6 defaults it to ``1e-3``).
* ``zero_grad()`` fills the gradients with zeros in place by default
  (``set_to_none=False``), because deconv layers accumulate into an existing
  ``grad`` array; ``zero_grad(set_to_none=True)`` behaves like torch's default.
* ``state_dict()`` returns copies (torch returns references to the live
  buffers, which later steps keep modifying).
* Hyper-parameters must be finite (torch accepts ``lr=nan`` in SGD), betas
  may be given as ints, and a parameter listed twice is an error (torch
  warns and then updates it twice).
"""

import numbers

import numpy as np

from deconv.functional.validation import FLOAT_DTYPES, as_bool, as_real

__all__ = ["Optimizer", "SGD", "Adam"]


# ---------------------------------------------------------------------------
# argument checking
# ---------------------------------------------------------------------------


def _scalar_from_state(value, key):
    """A number from a state dict: a Python/NumPy number or a 0-d array (``np.savez``)."""
    if isinstance(value, np.ndarray):
        if value.ndim != 0 or value.dtype.kind not in "biuf":
            raise ValueError(
                f"state_dict[{key!r}] must be a number, got an array of shape "
                f"{value.shape} and dtype {value.dtype}"
            )
        value = value.item()
    elif isinstance(value, np.generic):
        value = value.item()
    if not isinstance(value, numbers.Real):
        raise TypeError(f"state_dict[{key!r}] must be a number, got {value!r}")
    return value


def _check_params(params):
    """The constructor's ``params`` argument as a list of parameter objects."""
    if isinstance(params, np.ndarray) or hasattr(params, "data"):
        raise TypeError(
            "params must be an iterable of parameter objects (each with .data and .grad), "
            f"got a single {type(params).__name__}; wrap it in a list"
        )
    try:
        params = list(params)
    except TypeError:
        raise TypeError(
            "params must be an iterable of parameter objects (each with .data and .grad), "
            f"got {type(params).__name__}"
        ) from None
    if not params:
        raise ValueError("optimizer got an empty parameter list (params)")
    seen = set()
    for i, p in enumerate(params):
        if isinstance(p, dict):
            raise TypeError("params: parameter groups (dicts) are not supported")
        if not (hasattr(p, "data") and hasattr(p, "grad")):
            raise TypeError(
                f"params[{i}] must have .data and .grad attributes, got {type(p).__name__}"
            )
        if not isinstance(p.data, np.ndarray) or p.data.dtype not in FLOAT_DTYPES:
            raise TypeError(
                f"params[{i}].data must be a float32 or float64 ndarray, got {p.data!r:.80}"
            )
        if id(p) in seen:
            raise ValueError(f"params[{i}] appears more than once in params")
        seen.add(id(p))
    return params


# ---------------------------------------------------------------------------
# base class
# ---------------------------------------------------------------------------


class Optimizer:
    """Base class: holds the parameters, per-parameter state and hyper-parameters.

    Subclasses define ``_HYPER`` (names of the hyper-parameters, in order),
    ``_BUFFERS`` (names of the per-parameter arrays), ``_COUNTERS`` (names of
    per-parameter integers), ``_set_hyper(**values)`` (validate and store)
    and ``_update(param, grad, state)``.
    """

    _HYPER = ()
    _BUFFERS = ()
    _COUNTERS = ()

    def __init__(self, params):
        self.params = _check_params(params)
        #: one dict per parameter position; empty until its first update
        self.state = [{} for _ in self.params]

    # -- the public protocol -------------------------------------------------

    def step(self):
        """Update every parameter whose ``grad`` is not ``None``, in place."""
        for i, p in enumerate(self.params):
            grad = p.grad
            if grad is None:
                continue
            data = p.data
            if (
                not isinstance(grad, np.ndarray)
                or grad.shape != data.shape
                or grad.dtype != data.dtype
            ):
                raise ValueError(
                    f"params[{i}].grad must be None or an ndarray of the parameter's shape "
                    f"{data.shape} and dtype {data.dtype}, got "
                    + (
                        f"shape {grad.shape} and dtype {grad.dtype}"
                        if isinstance(grad, np.ndarray)
                        else repr(type(grad).__name__)
                    )
                )
            self._update(data, grad, self.state[i])

    def zero_grad(self, set_to_none=False):
        """Reset the gradients of all parameters.

        Parameters
        ----------
        set_to_none : bool, default False
            If False, fill every existing ``grad`` array with zeros in place
            (the array object is kept). If True, set ``grad`` to ``None``
            (torch's default), so that the next :meth:`step` skips the
            parameter unless a new gradient is assigned.
        """
        set_to_none = as_bool(set_to_none, "set_to_none")
        for p in self.params:
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                p.grad[...] = 0

    def hyperparameters(self):
        """The hyper-parameters as a ``dict`` of Python numbers."""
        return {name: getattr(self, name) for name in self._HYPER}

    def state_dict(self):
        """A flat ``dict`` of copies of the hyper-parameters and per-parameter state.

        Keys are the hyper-parameter names, ``"num_params"``, and
        ``"state.{i}.{name}"`` for the state of the parameter at position
        ``i`` (absent until that parameter is first updated). Values are
        NumPy arrays and Python numbers only.
        """
        out = dict(self.hyperparameters())
        out["num_params"] = len(self.params)
        for i, st in enumerate(self.state):
            for name in self._COUNTERS:
                if name in st:
                    out[f"state.{i}.{name}"] = int(st[name])
            for name in self._BUFFERS:
                if name in st:
                    out[f"state.{i}.{name}"] = st[name].copy()
        return out

    def load_state_dict(self, state_dict):
        """Restore hyper-parameters and state saved by :meth:`state_dict`.

        The optimizer must be over parameters of the same number, order and
        shapes. Numbers may also be 0-d arrays (as ``np.load`` returns them).
        Buffers are copied and cast to their parameter's dtype (as torch
        does). Everything is checked before anything is changed.
        """
        if not isinstance(state_dict, dict):
            raise TypeError(f"state_dict must be a dict, got {type(state_dict).__name__}")
        missing = [k for k in (*self._HYPER, "num_params") if k not in state_dict]
        if missing:
            raise ValueError(
                f"state_dict is missing {missing} (is it from a {type(self).__name__}?)"
            )
        num_params = _scalar_from_state(state_dict["num_params"], "num_params")
        if num_params != len(self.params):
            raise ValueError(
                f"state_dict is for {num_params} parameters, this optimizer has "
                f"{len(self.params)}"
            )
        hyper = {}
        for name in self._HYPER:
            value = _scalar_from_state(state_dict[name], name)
            if isinstance(getattr(self, name), bool):
                value = bool(value)
            hyper[name] = value
        # validate on a scratch object so that a bad dict changes nothing
        scratch = object.__new__(type(self))
        scratch._set_hyper(**hyper)

        per_param = set(self._COUNTERS) | set(self._BUFFERS)
        new_state = [{} for _ in self.params]
        for key, value in state_dict.items():
            if key in hyper or key == "num_params":
                continue
            parts = key.split(".")
            if (
                len(parts) != 3
                or parts[0] != "state"
                or not parts[1].isdigit()
                or parts[2] not in per_param
                or int(parts[1]) >= len(self.params)
            ):
                raise ValueError(f"state_dict has an unexpected key {key!r}")
            i, name = int(parts[1]), parts[2]
            data = self.params[i].data
            if name in self._COUNTERS:
                count = _scalar_from_state(value, key)
                if count != int(count) or count < 0:
                    raise ValueError(f"state_dict[{key!r}] must be an integer >= 0, got {count!r}")
                new_state[i][name] = int(count)
            else:
                if not isinstance(value, np.ndarray) or value.shape != data.shape:
                    raise ValueError(
                        f"state_dict[{key!r}] must be an array of shape {data.shape} "
                        f"(params[{i}]), got {value!r:.80}"
                    )
                new_state[i][name] = np.array(value, dtype=data.dtype, copy=True)
        for i, st in enumerate(new_state):
            if st and set(st) != per_param:
                raise ValueError(
                    f"state_dict has an incomplete state for params[{i}]: "
                    f"{sorted(st)} instead of {sorted(per_param)}"
                )
        self._set_hyper(**hyper)
        self.state = new_state

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters().items())
        return f"{type(self).__name__}(<{len(self.params)} parameters>, {args})"


# ---------------------------------------------------------------------------
# SGD
# ---------------------------------------------------------------------------


class SGD(Optimizer):
    r"""Stochastic gradient descent with optional momentum, as ``torch.optim.SGD``.

    Parameters
    ----------
    params : iterable of parameter objects
        Each with ``.data`` (floating ndarray, updated in place) and
        ``.grad`` (``None`` or an ndarray of the same shape and dtype).
    lr : float
        Learning rate :math:`\gamma \ge 0`.
    momentum : float, default 0
        Momentum factor :math:`\mu \ge 0`; 0 disables the momentum buffer.
    dampening : float, default 0
        Dampening :math:`\tau` of the gradient added to the buffer.
    weight_decay : float, default 0
        L2 penalty :math:`\lambda \ge 0`, added to the gradient.
    nesterov : bool, default False
        Nesterov momentum; needs ``momentum > 0`` and ``dampening == 0``.

    Raises
    ------
    ValueError
        For a negative ``lr``, ``momentum`` or ``weight_decay``, a non-finite
        hyper-parameter, ``nesterov`` without momentum or with dampening, or
        an empty ``params``.

    Notes
    -----
    At every :meth:`step`, for each parameter :math:`\theta` whose gradient
    :math:`g` is not ``None`` (its step number :math:`t` counts only the
    steps at which it was updated):

    .. math::

        g &\leftarrow g + \lambda\,\theta
            && \text{(if } \lambda \ne 0\text{)} \\
        b_t &= \begin{cases} g & t = 1 \\
              \mu\, b_{t-1} + (1 - \tau)\, g & t > 1 \end{cases}
            && \text{(if } \mu \ne 0\text{)} \\
        g &\leftarrow \begin{cases} g + \mu\, b_t & \text{nesterov} \\
              b_t & \text{otherwise} \end{cases}
            && \text{(if } \mu \ne 0\text{)} \\
        \theta &\leftarrow \theta - \gamma\, g

    The first momentum step copies the gradient into the buffer *without*
    dampening (torch's rule, not an exponential average started at zero).
    Weight decay is classic L2 regularisation folded into the gradient (and
    hence into the momentum buffer), not decoupled weight decay. Each line is
    evaluated in the parameter's dtype in this order, as torch does; the
    parameter's ``grad`` array itself is never modified.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv.optim import SGD
    >>> class P:  # any object with .data and .grad
    ...     def __init__(self, data):
    ...         self.data, self.grad = data, np.zeros_like(data)
    >>> w = P(np.array([1.0, -2.0]))
    >>> opt = SGD([w], lr=0.5, momentum=0.5)
    >>> for _ in range(2):
    ...     opt.zero_grad()
    ...     w.grad += np.array([1.0, 1.0])   # a constant gradient
    ...     opt.step()
    >>> w.data                  # 1 - 0.5*1 - 0.5*(0.5*1 + 1)
    array([-0.25, -3.25])
    >>> opt.state_dict()["state.0.momentum_buffer"]
    array([1.5, 1.5])
    """

    _HYPER = ("lr", "momentum", "dampening", "weight_decay", "nesterov")
    _BUFFERS = ("momentum_buffer",)

    def __init__(self, params, lr, momentum=0, dampening=0, weight_decay=0, nesterov=False):
        self._set_hyper(
            lr=lr, momentum=momentum, dampening=dampening,
            weight_decay=weight_decay, nesterov=nesterov,
        )
        super().__init__(params)

    def _set_hyper(self, lr, momentum, dampening, weight_decay, nesterov):
        lr = as_real(lr, "lr", 0)
        momentum = as_real(momentum, "momentum", 0)
        dampening = as_real(dampening, "dampening")
        weight_decay = as_real(weight_decay, "weight_decay", 0)
        nesterov = as_bool(nesterov, "nesterov")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError(
                "nesterov=True requires momentum > 0 and dampening == 0, got "
                f"momentum={momentum!r}, dampening={dampening!r}"
            )
        self.lr, self.momentum, self.dampening = lr, momentum, dampening
        self.weight_decay, self.nesterov = weight_decay, nesterov

    def _update(self, data, grad, state):
        # torch/optim/sgd.py, _single_tensor_sgd; scalars enter in the
        # parameter's dtype, like Python scalars in a float32 tensor op.
        t = data.dtype.type
        if self.weight_decay != 0:
            grad = grad + t(self.weight_decay) * data          # grad.add(param, alpha=wd)
        if self.momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = np.array(grad, copy=True)                # clone: no dampening
                state["momentum_buffer"] = buf
            else:
                buf *= t(self.momentum)                        # buf.mul_(momentum)
                buf += t(1 - self.dampening) * grad            # .add_(grad, alpha=1-dampening)
            if self.nesterov:
                grad = grad + t(self.momentum) * buf           # grad.add(buf, alpha=momentum)
            else:
                grad = buf
        data += t(-self.lr) * grad                             # param.add_(grad, alpha=-lr)


# ---------------------------------------------------------------------------
# Adam
# ---------------------------------------------------------------------------


class Adam(Optimizer):
    r"""Adam (Kingma & Ba, 2015), as ``torch.optim.Adam``.

    Parameters
    ----------
    params : iterable of parameter objects
        Each with ``.data`` (floating ndarray, updated in place) and
        ``.grad`` (``None`` or an ndarray of the same shape and dtype).
    lr : float, default 1e-3
        Learning rate :math:`\gamma \ge 0`.
    betas : (float, float), default (0.9, 0.999)
        Decay rates :math:`\beta_1, \beta_2 \in [0, 1)` of the first and
        second moment estimates.
    eps : float, default 1e-8
        :math:`\epsilon \ge 0`, added to the denominator.
    weight_decay : float, default 0
        L2 penalty :math:`\lambda \ge 0`, added to the gradient (this is
        Adam's L2 regularisation, not AdamW's decoupled decay).

    Raises
    ------
    ValueError
        For a negative ``lr``, ``eps`` or ``weight_decay``, a beta outside
        [0, 1), a non-finite hyper-parameter, or an empty ``params``.

    Notes
    -----
    Each parameter :math:`\theta` has its own step count :math:`t`, first
    moment :math:`m` and second moment :math:`v` (both start at zero). At
    every :meth:`step`, for each parameter whose gradient :math:`g` is not
    ``None``:

    .. math::

        t &\leftarrow t + 1 \\
        g &\leftarrow g + \lambda\,\theta
            && \text{(if } \lambda \ne 0\text{)} \\
        m &\leftarrow m + (1 - \beta_1)(g - m)
            && (= \beta_1 m + (1 - \beta_1) g) \\
        v &\leftarrow \beta_2 v + (1 - \beta_2)\, g^2 \\
        \hat\gamma &= \gamma / (1 - \beta_1^t) \\
        d &= \sqrt{v} / \sqrt{1 - \beta_2^t} + \epsilon \\
        \theta &\leftarrow \theta - \hat\gamma\, m / d

    This is torch's arrangement of the bias corrections: :math:`\epsilon` is
    added after dividing :math:`\sqrt{v}` by :math:`\sqrt{1-\beta_2^t}`,
    which is the paper's :math:`\hat m / (\sqrt{\hat v} + \epsilon)`. The
    bias corrections are computed in float64 (Python floats); the array
    arithmetic runs in the parameter's dtype with torch's operation order,
    including ``lerp``'s formula for :math:`m` (which switches to
    :math:`g - (g - m)\,\beta_1` when :math:`1 - \beta_1 \ge 0.5`).

    Examples
    --------
    >>> import numpy as np
    >>> from deconv.optim import Adam
    >>> class P:  # any object with .data and .grad
    ...     def __init__(self, data):
    ...         self.data, self.grad = data, np.zeros_like(data)
    >>> w = P(np.array([1.0, -2.0]))
    >>> opt = Adam([w], lr=0.1)
    >>> w.grad[:] = [3.0, -0.5]
    >>> opt.step()              # the first step moves each entry by about lr
    >>> np.round(w.data, 6)
    array([ 0.9, -1.9])
    >>> opt.state_dict()["state.0.step"]
    1
    """

    _HYPER = ("lr", "beta1", "beta2", "eps", "weight_decay")
    _BUFFERS = ("exp_avg", "exp_avg_sq")
    _COUNTERS = ("step",)

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0):
        if isinstance(betas, (str, bytes)) or not hasattr(betas, "__len__") or len(betas) != 2:
            raise TypeError(f"betas must be a pair of numbers, got {betas!r}")
        self._set_hyper(lr=lr, beta1=betas[0], beta2=betas[1], eps=eps, weight_decay=weight_decay)
        super().__init__(params)

    @property
    def betas(self):
        """``(beta1, beta2)``."""
        return (self.beta1, self.beta2)

    def _set_hyper(self, lr, beta1, beta2, eps, weight_decay):
        lr = as_real(lr, "lr", 0)
        beta1 = as_real(beta1, "betas[0]", 0, 1, high_open=True)
        beta2 = as_real(beta2, "betas[1]", 0, 1, high_open=True)
        eps = as_real(eps, "eps", 0)
        weight_decay = as_real(weight_decay, "weight_decay", 0)
        self.lr, self.beta1, self.beta2 = lr, beta1, beta2
        self.eps, self.weight_decay = eps, weight_decay

    def _update(self, data, grad, state):
        # torch/optim/adam.py, _single_tensor_adam (capturable=False, amsgrad=False)
        t = data.dtype.type
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(data)
            state["exp_avg_sq"] = np.zeros_like(data)
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        state["step"] += 1
        step = state["step"]

        if self.weight_decay != 0:
            grad = grad + t(self.weight_decay) * data          # grad.add(param, alpha=wd)

        # exp_avg.lerp_(grad, 1 - beta1), with ATen's two-sided lerp formula
        weight = t(1 - self.beta1)
        if abs(weight) < 0.5:
            exp_avg += weight * (grad - exp_avg)
        else:
            exp_avg[...] = grad - (grad - exp_avg) * (t(1) - weight)
        # exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        exp_avg_sq *= t(self.beta2)
        exp_avg_sq += t(1 - self.beta2) * grad * grad

        bias_correction1 = 1 - self.beta1**step                # Python floats
        bias_correction2 = 1 - self.beta2**step
        step_size = self.lr / bias_correction1
        bias_correction2_sqrt = bias_correction2**0.5

        denom = np.sqrt(exp_avg_sq) / t(bias_correction2_sqrt)
        denom += t(self.eps)
        # param.addcdiv_(exp_avg, denom, value=-step_size): (value * m) / d
        data += t(-step_size) * exp_avg / denom
