"""RMSprop and Adagrad, as ``torch.optim.RMSprop`` and ``torch.optim.Adagrad``."""

import numpy as np

from deconv.functional.validation import as_bool, as_real
from deconv.optim.optimizer import Optimizer

__all__ = ["RMSprop", "Adagrad"]


class RMSprop(Optimizer):
    r"""RMSprop (Hinton, 2012; Graves, 2013 when centered), as ``torch.optim.RMSprop``.

    Parameters
    ----------
    params : iterable of parameter objects, or iterable of dicts
        Each parameter with ``.data`` (floating ndarray, updated in place)
        and ``.grad`` (``None`` or an ndarray of the same shape and dtype);
        or parameter groups, dicts with ``'params'`` and any of the options
        below (see :class:`~deconv.optim.Optimizer`).
    lr : float, default 1e-2
        Learning rate :math:`\gamma \ge 0`.
    alpha : float, default 0.99
        Smoothing constant :math:`\alpha \ge 0` of the squared-gradient average.
    eps : float, default 1e-8
        :math:`\epsilon \ge 0`, added to the denominator.
    weight_decay : float, default 0
        L2 penalty :math:`\lambda \ge 0`, added to the gradient.
    momentum : float, default 0
        Momentum factor :math:`\mu \ge 0`; 0 disables the momentum buffer.
    centered : bool, default False
        Divide by the estimated standard deviation (subtract the square of
        the gradient average) instead of the root mean square.

    Raises
    ------
    ValueError
        For a negative or non-finite option, or an empty ``params``.

    Notes
    -----
    Per parameter, a step count, the average :math:`v` of squared gradients
    and (centered) the average :math:`a` of gradients and (momentum) a buffer
    :math:`b`, all starting at zero. At every :meth:`step`, for each
    parameter whose gradient :math:`g` is not ``None``:

    .. math::

        g &\leftarrow g + \lambda\,\theta
            && \text{(if } \lambda \ne 0\text{)} \\
        v &\leftarrow \alpha v + (1 - \alpha)\, g^2 \\
        a &\leftarrow a + (1 - \alpha)(g - a)
            && \text{(centered)} \\
        d &= \sqrt{v - a^2} + \epsilon \ \text{(centered), else }
            \sqrt{v} + \epsilon \\
        b &\leftarrow \mu b + g / d, \quad \theta \leftarrow \theta - \gamma b
            && \text{(if } \mu > 0\text{)} \\
        \theta &\leftarrow \theta - \gamma\, g / d
            && \text{(otherwise)}

    The momentum buffer starts at zero (unlike :class:`SGD`'s, which starts
    as the first gradient). Centered, :math:`v - a^2` can round below zero
    and give NaN, as in torch. torch does not bound ``alpha`` above; neither
    does this class (``alpha > 1`` makes :math:`v` negative and the step
    NaN). Scalars enter in the parameter's dtype, in torch's operation order.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv.optim import RMSprop
    >>> class P:
    ...     def __init__(self, data):
    ...         self.data, self.grad = data, np.zeros_like(data)
    >>> w = P(np.array([1.0, -2.0]))
    >>> opt = RMSprop([w], lr=0.01, alpha=0.75)
    >>> w.grad[:] = [2.0, -2.0]
    >>> opt.step()              # v = 0.25 * 4 = 1: the step is lr * g / (1 + eps)
    >>> np.round(w.data, 6)
    array([ 0.98, -1.98])
    """

    _OPTIONS = ("lr", "alpha", "eps", "weight_decay", "momentum", "centered")
    _BUFFERS = ("square_avg", "momentum_buffer", "grad_avg")
    _COUNTERS = ("step",)

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
                 centered=False):
        defaults = self._check_options(
            dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                 centered=centered), lambda k: k)
        super().__init__(params, defaults)

    def _check_options(self, options, name):
        out = {k: as_real(options[k], name(k), 0)
               for k in ("lr", "alpha", "eps", "weight_decay", "momentum")}
        out["centered"] = as_bool(options["centered"], name("centered"))
        return out

    def _state_names(self, options):
        names = {"step", "square_avg"}
        if options["momentum"] > 0:
            names.add("momentum_buffer")
        if options["centered"]:
            names.add("grad_avg")
        return names

    def _update(self, data, grad, state, o):
        # torch/optim/rmsprop.py, _single_tensor_rmsprop
        t = data.dtype.type
        for name in sorted(self._state_names(o)):      # new buffers (options may change)
            if name not in state:
                state[name] = 0 if name == "step" else np.zeros_like(data)
        state["step"] += 1
        square_avg = state["square_avg"]
        if o["weight_decay"] != 0:
            grad = grad + t(o["weight_decay"]) * data          # grad.add(param, alpha=wd)
        square_avg *= t(o["alpha"])                            # mul_(alpha)
        square_avg += t(1 - o["alpha"]) * grad * grad          # .addcmul_(g, g, 1 - alpha)
        if o["centered"]:
            grad_avg = state["grad_avg"]
            weight = t(1 - o["alpha"])                         # grad_avg.lerp_(grad, 1 - alpha)
            if abs(weight) < 0.5:
                grad_avg += weight * (grad - grad_avg)
            else:
                grad_avg[...] = grad - (grad - grad_avg) * (t(1) - weight)
            avg = np.sqrt(square_avg + t(-1) * grad_avg * grad_avg)
        else:
            avg = np.sqrt(square_avg)
        avg += t(o["eps"])
        if o["momentum"] > 0:
            buf = state["momentum_buffer"]
            buf *= t(o["momentum"])                            # buf.mul_(momentum)
            buf += grad / avg                                  # .addcdiv_(grad, avg)
            data += t(-o["lr"]) * buf                          # param.add_(buf, alpha=-lr)
        else:
            data += t(-o["lr"]) * grad / avg                   # param.addcdiv_(g, avg, -lr)


class Adagrad(Optimizer):
    r"""Adagrad (Duchi et al., 2011), as ``torch.optim.Adagrad``.

    Parameters
    ----------
    params : iterable of parameter objects, or iterable of dicts
        Each parameter with ``.data`` (floating ndarray, updated in place)
        and ``.grad`` (``None`` or an ndarray of the same shape and dtype);
        or parameter groups, dicts with ``'params'`` and any of the options
        below (see :class:`~deconv.optim.Optimizer`).
    lr : float, default 1e-2
        Learning rate :math:`\gamma \ge 0`.
    lr_decay : float, default 0
        :math:`\eta \ge 0`: the step :math:`t` uses
        :math:`\gamma / (1 + (t - 1)\eta)`.
    weight_decay : float, default 0
        L2 penalty :math:`\lambda \ge 0`, added to the gradient.
    initial_accumulator_value : float, default 0
        Starting value :math:`s_0 \ge 0` of the sum of squared gradients.
    eps : float, default 1e-10
        :math:`\epsilon \ge 0`, added to the denominator.

    Raises
    ------
    ValueError
        For a negative or non-finite option, or an empty ``params``.

    Notes
    -----
    Per parameter, a step count :math:`t` and the sum :math:`s` (starting at
    :math:`s_0`). At every :meth:`step`, for each parameter whose gradient
    :math:`g` is not ``None``:

    .. math::

        t &\leftarrow t + 1 \\
        g &\leftarrow g + \lambda\,\theta
            && \text{(if } \lambda \ne 0\text{)} \\
        \tilde\gamma &= \gamma / (1 + (t - 1)\,\eta) \\
        s &\leftarrow s + g^2 \\
        \theta &\leftarrow \theta - \tilde\gamma\, g / (\sqrt{s} + \epsilon)

    :math:`\tilde\gamma` is computed in float64 (Python floats), the arrays
    in the parameter's dtype. torch creates the sum when the optimizer is
    built; here it is created at the parameter's first update, from the
    group's ``initial_accumulator_value`` at that time, so that the state
    dict holds state only for parameters that were updated (as for the other
    optimizers). Sparse gradients do not exist here.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv.optim import Adagrad
    >>> class P:
    ...     def __init__(self, data):
    ...         self.data, self.grad = data, np.zeros_like(data)
    >>> w = P(np.array([1.0, -2.0]))
    >>> opt = Adagrad([w], lr=0.5)
    >>> w.grad[:] = [3.0, -4.0]
    >>> opt.step()              # the first step is lr * sign(g)
    >>> w.data
    array([ 0.5, -1.5])
    """

    _OPTIONS = ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps")
    _BUFFERS = ("sum",)
    _COUNTERS = ("step",)

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0,
                 eps=1e-10):
        defaults = self._check_options(
            dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                 initial_accumulator_value=initial_accumulator_value, eps=eps), lambda k: k)
        super().__init__(params, defaults)

    def _check_options(self, options, name):
        return {k: as_real(options[k], name(k), 0) for k in self._OPTIONS}

    def _update(self, data, grad, state, o):
        # torch/optim/adagrad.py, _single_tensor_adagrad (dense gradients)
        t = data.dtype.type
        if not state:
            state["step"] = 0
            state["sum"] = np.full_like(data, o["initial_accumulator_value"])
        state["step"] += 1
        step = state["step"]
        if o["weight_decay"] != 0:
            grad = grad + t(o["weight_decay"]) * data          # grad.add(param, alpha=wd)
        clr = o["lr"] / (1 + (step - 1) * o["lr_decay"])       # Python floats
        state_sum = state["sum"]
        state_sum += grad * grad                               # addcmul_(g, g, value=1)
        std = np.sqrt(state_sum)
        std += t(o["eps"])
        data += t(-clr) * grad / std                           # param.addcdiv_(g, std, -clr)
