"""Stochastic gradient descent, as ``torch.optim.SGD``."""

import numpy as np

from deconv.functional.validation import as_bool, as_real
from deconv.optim.optimizer import Optimizer

__all__ = ["SGD"]


class SGD(Optimizer):
    r"""Stochastic gradient descent with optional momentum, as ``torch.optim.SGD``.

    Parameters
    ----------
    params : iterable of parameter objects, or iterable of dicts
        Each parameter with ``.data`` (floating ndarray, updated in place)
        and ``.grad`` (``None`` or an ndarray of the same shape and dtype);
        or parameter groups, dicts with ``'params'`` and any of the options
        below (see :class:`~deconv.optim.Optimizer`).
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
        option, ``nesterov`` without momentum or with dampening (in any
        group), or an empty ``params``.

    Notes
    -----
    At every :meth:`step`, for each parameter :math:`\theta` whose gradient
    :math:`g` is not ``None`` (its step number :math:`t` counts only the
    steps at which it was updated), with its group's options:

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
    parameter's ``grad`` array itself is never modified. ``lr`` has no
    default (torch >= 2.6 defaults it to ``1e-3``).

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

    _OPTIONS = ("lr", "momentum", "dampening", "weight_decay", "nesterov")
    _BUFFERS = ("momentum_buffer",)

    def __init__(self, params, lr, momentum=0, dampening=0, weight_decay=0, nesterov=False):
        defaults = self._check_options(
            dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                 nesterov=nesterov), lambda k: k)
        super().__init__(params, defaults)

    def _check_options(self, options, name):
        lr = as_real(options["lr"], name("lr"), 0)
        momentum = as_real(options["momentum"], name("momentum"), 0)
        dampening = as_real(options["dampening"], name("dampening"))
        weight_decay = as_real(options["weight_decay"], name("weight_decay"), 0)
        nesterov = as_bool(options["nesterov"], name("nesterov"))
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError(
                f"{name('nesterov')}=True requires momentum > 0 and dampening == 0, got "
                f"momentum={momentum!r}, dampening={dampening!r}"
            )
        return dict(lr=lr, momentum=momentum, dampening=dampening,
                    weight_decay=weight_decay, nesterov=nesterov)

    def _state_names(self, options):
        return {"momentum_buffer"} if options["momentum"] != 0 else set()

    def _update(self, data, grad, state, o):
        # torch/optim/sgd.py, _single_tensor_sgd; scalars enter in the
        # parameter's dtype, like Python scalars in a float32 tensor op.
        t = data.dtype.type
        if o["weight_decay"] != 0:
            grad = grad + t(o["weight_decay"]) * data          # grad.add(param, alpha=wd)
        if o["momentum"] != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = np.array(grad, copy=True)                # clone: no dampening
                state["momentum_buffer"] = buf
            else:
                buf *= t(o["momentum"])                        # buf.mul_(momentum)
                buf += t(1 - o["dampening"]) * grad            # .add_(grad, alpha=1-dampening)
            if o["nesterov"]:
                grad = grad + t(o["momentum"]) * buf           # grad.add(buf, alpha=momentum)
            else:
                grad = buf
        data += t(-o["lr"]) * grad                             # param.add_(grad, alpha=-lr)
