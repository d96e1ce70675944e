"""Adam and AdamW, as ``torch.optim.Adam`` and ``torch.optim.AdamW``."""

import numpy as np

from deconv.functional import elementwise as _ew
from deconv.functional.validation import as_bool, as_real
from deconv.optim.optimizer import Optimizer

__all__ = ["Adam", "AdamW"]


def check_betas(betas, name):
    """A pair ``(beta1, beta2)`` of numbers in [0, 1)."""
    if isinstance(betas, (str, bytes)) or not hasattr(betas, "__len__") or len(betas) != 2:
        raise TypeError(f"{name} must be a pair of numbers, got {betas!r:.80}")
    return (as_real(betas[0], f"{name}[0]", 0, 1, high_open=True),
            as_real(betas[1], f"{name}[1]", 0, 1, high_open=True))


class Adam(Optimizer):
    r"""Adam (Kingma & Ba, 2015), as ``torch.optim.Adam``.

    Parameters
    ----------
    params : iterable of parameter objects, or iterable of dicts
        Each parameter with ``.data`` (floating ndarray, updated in place)
        and ``.grad`` (``None`` or an ndarray of the same shape and dtype);
        or parameter groups, dicts with ``'params'`` and any of the options
        below (see :class:`~deconv.optim.Optimizer`).
    lr : float, default 1e-3
        Learning rate :math:`\gamma \ge 0`.
    betas : (float, float), default (0.9, 0.999)
        Decay rates :math:`\beta_1, \beta_2 \in [0, 1)` of the first and
        second moment estimates.
    eps : float, default 1e-8
        :math:`\epsilon \ge 0`, added to the denominator.
    weight_decay : float, default 0
        :math:`\lambda \ge 0`: Adam's L2 penalty added to the gradient
        (:class:`AdamW`'s decoupled decay instead shrinks the parameter).
    amsgrad : bool, default False
        Divide by the running maximum of the second moment (AMSGrad, Reddi
        et al., 2018) instead of the second moment itself.

    Raises
    ------
    ValueError
        For a negative ``lr``, ``eps`` or ``weight_decay``, a beta outside
        [0, 1), a non-finite option, or an empty ``params``.

    Notes
    -----
    Each parameter :math:`\theta` has its own step count :math:`t`, first
    moment :math:`m` and second moment :math:`v` (both start at zero), and
    with ``amsgrad`` the running maximum :math:`\hat v` (starts at zero). At
    every :meth:`step`, for each parameter whose gradient :math:`g` is not
    ``None``:

    .. math::

        t &\leftarrow t + 1 \\
        g &\leftarrow g + \lambda\,\theta
            && \text{(Adam, if } \lambda \ne 0\text{)} \\
        \theta &\leftarrow (1 - \gamma\lambda)\,\theta
            && \text{(AdamW, if } \lambda \ne 0\text{)} \\
        m &\leftarrow m + (1 - \beta_1)(g - m)
            && (= \beta_1 m + (1 - \beta_1) g) \\
        v &\leftarrow \beta_2 v + (1 - \beta_2)\, g^2 \\
        \hat v &\leftarrow \max(\hat v, v)
            && \text{(amsgrad; then } \hat v \text{ replaces } v \text{ below)} \\
        \hat\gamma &= \gamma / (1 - \beta_1^t) \\
        d &= \sqrt{v} / \sqrt{1 - \beta_2^t} + \epsilon \\
        \theta &\leftarrow \theta - \hat\gamma\, m / d

    This is torch's arrangement of the bias corrections: :math:`\epsilon` is
    added after dividing :math:`\sqrt{v}` by :math:`\sqrt{1-\beta_2^t}`,
    which is the paper's :math:`\hat m / (\sqrt{\hat v} + \epsilon)`. The
    bias corrections and :math:`1 - \gamma\lambda` are computed in float64
    (Python floats); the array arithmetic runs in the parameter's dtype with
    torch's operation order, including ``lerp``'s formula for :math:`m`
    (which switches to :math:`g - (g - m)\,\beta_1` when
    :math:`1 - \beta_1 \ge 0.5`). The maximum propagates NaN, as
    ``torch.maximum`` does.

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

    _OPTIONS = ("lr", "betas", "eps", "weight_decay", "amsgrad")
    _BUFFERS = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
    _COUNTERS = ("step",)
    #: AdamW: weight decay shrinks the parameter instead of adding to the gradient
    _DECOUPLED = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 amsgrad=False):
        defaults = self._check_options(
            dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad),
            lambda k: k)
        super().__init__(params, defaults)

    @property
    def betas(self):
        """``(beta1, beta2)`` of every parameter group (all must agree)."""
        return (self.beta1, self.beta2)

    def _check_options(self, options, name):
        return dict(lr=as_real(options["lr"], name("lr"), 0),
                    betas=check_betas(options["betas"], name("betas")),
                    eps=as_real(options["eps"], name("eps"), 0),
                    weight_decay=as_real(options["weight_decay"], name("weight_decay"), 0),
                    amsgrad=as_bool(options["amsgrad"], name("amsgrad")))

    def _state_names(self, options):
        names = {"step", "exp_avg", "exp_avg_sq"}
        return names | {"max_exp_avg_sq"} if options["amsgrad"] else names

    def _update(self, data, grad, state, o):
        # torch/optim/adam.py, _single_tensor_adam (capturable=False)
        t = data.dtype.type
        beta1, beta2 = o["betas"]
        if "step" not in state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(data)
            state["exp_avg_sq"] = np.zeros_like(data)
        if o["amsgrad"] and "max_exp_avg_sq" not in state:
            state["max_exp_avg_sq"] = np.zeros_like(data)
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        state["step"] += 1
        step = state["step"]

        if o["weight_decay"] != 0 and self._DECOUPLED:
            data *= t(1 - o["lr"] * o["weight_decay"])         # param.mul_(1 - lr * wd)
        bias_correction1 = 1 - beta1**step                     # Python floats
        bias_correction2 = 1 - beta2**step
        step_size = o["lr"] / bias_correction1
        bias_correction2_sqrt = bias_correction2**0.5
        decay_grad = o["weight_decay"] != 0 and not self._DECOUPLED
        if not o["amsgrad"] and _ew.adam_ready(data, grad, exp_avg, exp_avg_sq):
            # the lines below in one pass (deconv.kernels.elementwise.adam_update)
            _ew.adam_update(data, grad, exp_avg, exp_avg_sq, weight_decay=o["weight_decay"],
                            beta1=beta1, beta2=beta2, eps=o["eps"], step_size=step_size,
                            bias_correction2_sqrt=bias_correction2_sqrt, decay_grad=decay_grad)
            return
        if decay_grad:
            grad = grad + t(o["weight_decay"]) * data          # grad.add(param, alpha=wd)

        # exp_avg.lerp_(grad, 1 - beta1), with ATen's two-sided lerp formula
        weight = t(1 - beta1)
        if abs(weight) < 0.5:
            exp_avg += weight * (grad - exp_avg)
        else:
            exp_avg[...] = grad - (grad - exp_avg) * (t(1) - weight)
        # exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        exp_avg_sq *= t(beta2)
        exp_avg_sq += t(1 - beta2) * grad * grad

        if o["amsgrad"]:
            second = state["max_exp_avg_sq"]
            np.maximum(second, exp_avg_sq, out=second)         # torch.maximum(..., out=)
        else:
            second = exp_avg_sq
        denom = np.sqrt(second) / t(bias_correction2_sqrt)
        denom += t(o["eps"])
        # param.addcdiv_(exp_avg, denom, value=-step_size): (value * m) / d
        data += t(-step_size) * exp_avg / denom


class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov & Hutter, 2019), as ``torch.optim.AdamW``.

    Parameters
    ----------
    params : iterable of parameter objects, or iterable of dicts
        As for :class:`Adam`.
    lr : float, default 1e-3
        Learning rate :math:`\gamma \ge 0`.
    betas : (float, float), default (0.9, 0.999)
        :math:`\beta_1, \beta_2 \in [0, 1)`.
    eps : float, default 1e-8
        :math:`\epsilon \ge 0`.
    weight_decay : float, default 1e-2
        :math:`\lambda \ge 0`: each step first multiplies the parameter by
        :math:`1 - \gamma\lambda`; the gradient and the moments never see it.
    amsgrad : bool, default False
        As for :class:`Adam`.

    Raises
    ------
    ValueError
        As :class:`Adam`.

    Notes
    -----
    The update is :class:`Adam`'s with the decay line
    :math:`\theta \leftarrow (1 - \gamma\lambda)\,\theta` in place of
    :math:`g \leftarrow g + \lambda\theta`, applied before the moments are
    updated (torch's order), with the factor computed in float64 and the
    product in the parameter's dtype. The decay uses the group's current
    :math:`\gamma` (so a scheduler scales it too), not the bias-corrected
    step size. A checkpoint of an AdamW loads only into an AdamW.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv.optim import AdamW
    >>> class P:
    ...     def __init__(self, data):
    ...         self.data, self.grad = data, np.zeros_like(data)
    >>> w = P(np.array([1.0, -2.0]))
    >>> opt = AdamW([w], lr=0.1, weight_decay=0.5)
    >>> opt.step()              # zero gradient: only the decay acts
    >>> w.data                  # (1 - 0.1 * 0.5) * [1, -2]
    array([ 0.95, -1.9 ])
    """

    _DECOUPLED = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad)
