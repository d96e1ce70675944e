"""Learning-rate schedulers with ``torch.optim.lr_scheduler`` semantics.

A scheduler sets ``group['lr']`` of every parameter group of a
:class:`deconv.optim.Optimizer`. Like torch's, a scheduler takes its first
step in the constructor (so the learning rate right after construction is
torch's), stores ``initial_lr`` in each group (the ``base_lrs``), and is
stepped once per epoch (or per batch) *after* ``optimizer.step()``:

>>> import numpy as np
>>> from deconv import nn, optim
>>> p = nn.Parameter(np.zeros(2))
>>> opt = optim.SGD([p], lr=1.0)
>>> sched = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
>>> lrs = []
>>> for epoch in range(5):
...     opt.step()
...     lrs.append(sched.get_last_lr()[0])
...     sched.step()
>>> lrs
[1.0, 1.0, 0.5, 0.5, 0.25]

Each scheduler's ``step()`` computes the next rate from the current one (the
"chainable" form torch uses), so the values are torch's to the last bit;
the closed forms are used only where torch uses them (when
:class:`SequentialLR` switches to the next scheduler).

State
-----
``state_dict()`` returns a flat ``dict`` of Python numbers, strings and
NumPy arrays (so it can go into an ``.npz`` without pickle), with torch's
attribute names (``last_epoch``, ``base_lrs``, ``_step_count``, ...);
``load_state_dict`` checks every entry before it changes anything. To
resume, build the optimizer and the scheduler as at the start (the
constructor's initial step changes the rates), then load the optimizer's
state dict (it holds the groups' ``lr``, ``initial_lr`` and the other
numbers schedulers keep there) and the scheduler's, as in torch.

Differences from torch
----------------------
* ``step()`` takes no ``epoch`` argument (deprecated in torch) and there is
  no public ``get_lr()`` (torch warns when it is called outside ``step``);
  use ``get_last_lr()``.
* No warnings about the order of ``optimizer.step()`` and ``scheduler.step()``
  (torch wraps ``optimizer.step`` to detect it; deconv does not touch the
  optimizer's methods).
* Arguments are checked (torch checks few): ``step_size``, ``T_max`` and
  ``total_iters`` are ints >= 1, factors and rates finite and >= 0,
  ``milestones`` non-negative ints (increasing for :class:`SequentialLR`),
  and a :class:`OneCycleLR` whose phase would have zero length (torch
  divides by zero) is refused.
"""

import math
from bisect import bisect_right

from deconv.functional.validation import as_list, as_positive_int, as_real
from deconv.optim.scheduler import (
    LRScheduler, _group_lrs, _int_list, _ints_at_least, _reals_at_least, _unwrap)
from deconv.optim.cyclic import OneCycleLR, ReduceLROnPlateau, SequentialLR

__all__ = ["LRScheduler", "StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR",
           "LinearLR", "OneCycleLR", "ReduceLROnPlateau", "SequentialLR"]


# ---------------------------------------------------------------------------
# the schedules
# ---------------------------------------------------------------------------


class StepLR(LRScheduler):
    r"""Multiply the learning rate by ``gamma`` every ``step_size`` epochs, as torch's ``StepLR``.

    Parameters
    ----------
    optimizer : deconv.optim.Optimizer
    step_size : int
        Period :math:`s \ge 1` of the decay, in epochs.
    gamma : float, default 0.1
        Factor :math:`\gamma \ge 0`.
    last_epoch : int, default -1
        See :class:`LRScheduler`.

    Notes
    -----
    At epoch :math:`e` (``last_epoch``) the rate becomes
    :math:`\eta \gamma` when :math:`e > 0` and :math:`s \mid e`, and is left
    as it is otherwise; from a fresh start that is
    :math:`\eta_e = \eta_0\, \gamma^{\lfloor e / s \rfloor}`.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn, optim
    >>> opt = optim.SGD([nn.Parameter(np.zeros(1))], lr=1.0)
    >>> sched = optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.1)
    >>> [sched.get_last_lr()[0] for _ in range(7) if sched.step() is None]
    [1.0, 1.0, 0.1, 0.1, 0.1, 0.010000000000000002, 0.010000000000000002]
    """

    _SETTINGS = (("step_size", _ints_at_least(1)), ("gamma", _reals_at_least(0)))

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        self._setup(optimizer, last_epoch)
        self.step_size = as_positive_int(step_size, "step_size")
        self.gamma = as_real(gamma, "gamma", 0)
        self._begin()

    def _get_lr(self):
        lrs = _group_lrs(self.optimizer)
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return lrs
        return [lr * self.gamma for lr in lrs]

    def _closed_form(self):
        return [base * self.gamma ** (self.last_epoch // self.step_size) for base in self.base_lrs]


class MultiStepLR(LRScheduler):
    r"""Multiply the learning rate by ``gamma`` at each milestone epoch, as torch's ``MultiStepLR``.

    Parameters
    ----------
    optimizer : deconv.optim.Optimizer
    milestones : iterable of int
        Epochs :math:`\ge 0`, in any order; a milestone given :math:`k`
        times multiplies by :math:`\gamma^k` (torch counts them too).
    gamma : float, default 0.1
        Factor :math:`\gamma \ge 0`.
    last_epoch : int, default -1
        See :class:`LRScheduler`.

    Notes
    -----
    At epoch :math:`e` the rate is multiplied by :math:`\gamma^{c(e)}`,
    :math:`c(e)` the number of times :math:`e` is a milestone; from a fresh
    start :math:`\eta_e = \eta_0 \gamma^{|\{m \le e\}|}`. A milestone 0
    applies at construction.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn, optim
    >>> opt = optim.SGD([nn.Parameter(np.zeros(1))], lr=1.0)
    >>> sched = optim.lr_scheduler.MultiStepLR(opt, milestones=[2, 4], gamma=0.5)
    >>> [sched.get_last_lr()[0] for _ in range(6) if sched.step() is None]
    [1.0, 0.5, 0.5, 0.25, 0.25, 0.25]
    """

    _SETTINGS = (("milestones", _int_list), ("gamma", _reals_at_least(0)))

    def __init__(self, optimizer, milestones, gamma=0.1, last_epoch=-1):
        self._setup(optimizer, last_epoch)
        self.milestones = _int_list(as_list(milestones, "milestones", "ints"), "milestones")
        self.gamma = as_real(gamma, "gamma", 0)
        self._begin()

    def _get_lr(self):
        lrs = _group_lrs(self.optimizer)
        count = self.milestones.count(self.last_epoch)
        if count == 0:
            return lrs
        return [lr * self.gamma ** count for lr in lrs]

    def _closed_form(self):
        return [base * self.gamma ** bisect_right(self.milestones, self.last_epoch)
                for base in self.base_lrs]


class ExponentialLR(LRScheduler):
    r"""Multiply the learning rate by ``gamma`` every epoch, as torch's ``ExponentialLR``.

    Parameters
    ----------
    optimizer : deconv.optim.Optimizer
    gamma : float
        Factor :math:`\gamma \ge 0`.
    last_epoch : int, default -1
        See :class:`LRScheduler`.

    Notes
    -----
    Every step after the initial one sets :math:`\eta \leftarrow \gamma\eta`;
    from a fresh start :math:`\eta_e = \eta_0\gamma^e` (computed by repeated
    multiplication, as torch does, not by the power).

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn, optim
    >>> opt = optim.SGD([nn.Parameter(np.zeros(1))], lr=1.0)
    >>> sched = optim.lr_scheduler.ExponentialLR(opt, gamma=0.5)
    >>> [sched.get_last_lr()[0] for _ in range(4) if sched.step() is None]
    [0.5, 0.25, 0.125, 0.0625]
    """

    _SETTINGS = (("gamma", _reals_at_least(0)),)

    def __init__(self, optimizer, gamma, last_epoch=-1):
        self._setup(optimizer, last_epoch)
        self.gamma = as_real(gamma, "gamma", 0)
        self._begin()

    def _get_lr(self):
        lrs = _group_lrs(self.optimizer)
        if self._is_initial:
            return lrs
        return [lr * self.gamma for lr in lrs]

    def _closed_form(self):
        return [base * self.gamma ** self.last_epoch for base in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    r"""Cosine annealing from the initial rate to ``eta_min`` over ``T_max`` epochs, as torch's.

    Parameters
    ----------
    optimizer : deconv.optim.Optimizer
    T_max : int
        Half period :math:`T \ge 1`, in epochs.
    eta_min : float, default 0
        Lowest rate :math:`\eta_{min} \ge 0`.
    last_epoch : int, default -1
        See :class:`LRScheduler`.

    Notes
    -----
    The schedule is
    :math:`\eta_e = \eta_{min} + (\eta_0 - \eta_{min})(1 + \cos(\pi e/T))/2`,
    which keeps going past :math:`T` (back up to :math:`\eta_0` at
    :math:`2T`: it is not SGDR's restart). As in torch each step computes it
    from the current rate,

    .. math::

        \eta_e = \frac{1 + \cos(\pi e / T)}{1 + \cos(\pi (e-1) / T)}
                 (\eta_{e-1} - \eta_{min}) + \eta_{min},

    except where the denominator vanishes (:math:`e - 1 - T` a multiple of
    :math:`2T`), where
    :math:`\eta_e = \eta_{e-1} + (\eta_0 - \eta_{min})(1 - \cos(\pi/T))/2`;
    so a rate changed by hand in between is followed, not overwritten.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn, optim
    >>> opt = optim.SGD([nn.Parameter(np.zeros(1))], lr=1.0)
    >>> sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=2)
    >>> [round(sched.get_last_lr()[0], 12) for _ in range(5) if sched.step() is None]
    [0.5, 0.0, 0.5, 1.0, 0.5]
    """

    _SETTINGS = (("T_max", _ints_at_least(1)), ("eta_min", _reals_at_least(0)))

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):
        self._setup(optimizer, last_epoch)
        self.T_max = as_positive_int(T_max, "T_max")
        self.eta_min = as_real(eta_min, "eta_min", 0)
        self._begin()

    def _get_lr(self):
        lrs = _group_lrs(self.optimizer)
        e, T, eta_min = self.last_epoch, self.T_max, self.eta_min
        if self._is_initial:
            return lrs
        if self._step_count == 1 and e > 0:
            return [eta_min + (base - eta_min) * (1 + math.cos(e * math.pi / T)) / 2
                    for base in self.base_lrs]
        if (e - 1 - T) % (2 * T) == 0:
            return [lr + (base - eta_min) * (1 - math.cos(math.pi / T)) / 2
                    for base, lr in zip(self.base_lrs, lrs)]
        return [(1 + math.cos(math.pi * e / T)) / (1 + math.cos(math.pi * (e - 1) / T))
                * (lr - eta_min) + eta_min for lr in lrs]

    def _closed_form(self):
        return [self.eta_min + (base - self.eta_min)
                * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
                for base in self.base_lrs]


class LinearLR(LRScheduler):
    r"""Scale the learning rate linearly from ``start_factor`` to ``end_factor``, as torch's.

    Parameters
    ----------
    optimizer : deconv.optim.Optimizer
    start_factor : float, default 1/3
        Factor :math:`a \in (0, 1]` at epoch 0.
    end_factor : float, default 1
        Factor :math:`b \in [0, 1]` from epoch ``total_iters`` on.
    total_iters : int, default 5
        Length :math:`n \ge 1` of the ramp, in epochs.
    last_epoch : int, default -1
        See :class:`LRScheduler`.

    Notes
    -----
    The schedule is :math:`\eta_e = \eta_0 (a + (b - a)\min(e, n)/n)`. As in
    torch the initial step multiplies the rate by :math:`a`, and step
    :math:`e \in [1, n]` multiplies the current rate by
    :math:`1 + (b - a) / (n a + (e - 1)(b - a))`; later steps leave it.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn, optim
    >>> opt = optim.SGD([nn.Parameter(np.zeros(1))], lr=1.0)
    >>> sched = optim.lr_scheduler.LinearLR(opt, start_factor=0.5, total_iters=2)
    >>> [sched.get_last_lr()[0] for _ in range(4) if sched.step() is None]
    [0.75, 1.0, 1.0, 1.0]
    """

    _SETTINGS = (("start_factor", lambda v, k: as_real(_unwrap(v), k, 0, 1, low_open=True)),
                 ("end_factor", lambda v, k: as_real(_unwrap(v), k, 0, 1)),
                 ("total_iters", _ints_at_least(1)))

    def __init__(self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5,
                 last_epoch=-1):
        self._setup(optimizer, last_epoch)
        self.start_factor = as_real(start_factor, "start_factor", 0, 1, low_open=True)
        self.end_factor = as_real(end_factor, "end_factor", 0, 1)
        self.total_iters = as_positive_int(total_iters, "total_iters")
        self._begin()

    def _get_lr(self):
        lrs = _group_lrs(self.optimizer)
        a, b, n = self.start_factor, self.end_factor, self.total_iters
        if self.last_epoch == 0:
            return [lr * a for lr in lrs]
        if self._is_initial or self.last_epoch > n:
            return lrs
        return [lr * (1.0 + (b - a) / (n * a + (self.last_epoch - 1) * (b - a))) for lr in lrs]

    def _closed_form(self):
        a, b, n = self.start_factor, self.end_factor, self.total_iters
        return [base * (a + (b - a) * min(n, self.last_epoch) / n) for base in self.base_lrs]
