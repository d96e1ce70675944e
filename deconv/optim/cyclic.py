"""OneCycleLR, ReduceLROnPlateau and SequentialLR.

Re-exported by :mod:`deconv.optim.lr_scheduler`, where they belong.
"""

import math
from bisect import bisect_right

from deconv.functional.validation import (
    as_bool, as_choice, as_int_at_least, as_list, as_metric, as_positive_int, as_real)
from deconv.optim.scheduler import (
    LRScheduler, _check_optimizer, _flag, _group_lrs, _int_list, _ints_at_least, _per_group,
    _real_list, _reals_at_least, _text, _unwrap)

__all__ = ["OneCycleLR", "ReduceLROnPlateau", "SequentialLR"]


class OneCycleLR(LRScheduler):
    r"""The 1cycle policy (Smith & Topin, 2017), as torch's ``OneCycleLR``; stepped per batch.

    Parameters
    ----------
    optimizer : deconv.optim.Optimizer
    max_lr : float or sequence of float
        Peak rate :math:`\eta_{max} > 0` (one per group, or one for all).
    total_steps : int, optional
        Number :math:`N \ge 1` of steps of the cycle; if None,
        ``epochs * steps_per_epoch``.
    epochs, steps_per_epoch : int, optional
        Used (both ints >= 1) when ``total_steps`` is None.
    pct_start : float, default 0.3
        Fraction :math:`p \in [0, 1]` of the cycle spent increasing the rate.
    anneal_strategy : {'cos', 'linear'}, default 'cos'
    cycle_momentum : bool, default True
        Also cycle the momentum (``'momentum'`` of SGD and RMSprop groups,
        ``beta1`` of Adam's ``'betas'``) inversely, between
        ``base_momentum`` and ``max_momentum``.
    base_momentum, max_momentum : float or sequence of float, default 0.85, 0.95
        Momentum bounds :math:`\ge 0`, below 1 for Adam's ``beta1`` (one per
        group, or one for all).
    div_factor : float, default 25
        :math:`d > 0`: the initial rate is :math:`\eta_{max}/d`.
    final_div_factor : float, default 1e4
        :math:`f > 0`: the final rate is :math:`\eta_{max}/(d f)`.
    three_phase : bool, default False
        Go back down to the initial rate symmetrically before annealing to
        the final one.
    last_epoch : int, default -1
        The index of the last *step* (see :class:`LRScheduler`).

    Notes
    -----
    With :math:`\eta_0 = \eta_{max}/d` and :math:`\eta_{end} = \eta_0/f`
    stored in each group as ``initial_lr``, ``max_lr`` and ``min_lr`` (and
    ``max_momentum``, ``base_momentum``), the two phases end at steps
    :math:`pN - 1` and :math:`N - 1` (three phases: :math:`pN - 1`,
    :math:`2pN - 2`, :math:`N - 1`). In a phase from step :math:`s_0` to
    :math:`s_1` the rate goes from its start to its end value :math:`a \to b`
    with :math:`t = (e - s_0)/(s_1 - s_0)` as
    :math:`b + (a - b)(1 + \cos\pi t)/2` (cos) or :math:`(b - a)t + a`
    (linear); the momentum goes the other way. As in torch, the step to
    :math:`e = N` is allowed and extrapolates the last phase past its end
    (:math:`t > 1`: with ``'linear'`` the rate goes below
    :math:`\eta_{end}`, possibly below zero, which the optimizer then
    refuses); stepping past :math:`N` is a ValueError. A phase of zero
    length (e.g. :math:`pN = 1`, where torch divides by zero) is refused at
    construction.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn, optim
    >>> opt = optim.SGD([nn.Parameter(np.zeros(1))], lr=0.1, momentum=0.9)
    >>> sched = optim.lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=4,
    ...                                        anneal_strategy="linear", pct_start=0.5)
    >>> lrs = [sched.get_last_lr()[0]] + [sched.get_last_lr()[0] for _ in range(3)
    ...                                   if sched.step() is None]
    >>> [round(lr, 6) for lr in lrs]
    [0.04, 1.0, 0.500002, 4e-06]
    >>> round(opt.param_groups[0]["momentum"], 6)   # back up at the end of the cycle
    0.95
    """

    _SETTINGS = (("total_steps", _ints_at_least(1)),
                 ("pct_start", lambda v, k: as_real(_unwrap(v), k, 0, 1)),
                 ("anneal_strategy", _text("cos", "linear")), ("cycle_momentum", _flag),
                 ("use_beta1", _flag), ("three_phase", _flag))

    def __init__(self, optimizer, max_lr, total_steps=None, epochs=None, steps_per_epoch=None,
                 pct_start=0.3, anneal_strategy="cos", cycle_momentum=True, base_momentum=0.85,
                 max_momentum=0.95, div_factor=25.0, final_div_factor=1e4, three_phase=False,
                 last_epoch=-1):
        self._setup(optimizer, last_epoch)
        if total_steps is not None:
            self.total_steps = as_positive_int(total_steps, "total_steps")
        elif epochs is not None and steps_per_epoch is not None:
            self.total_steps = (as_positive_int(epochs, "epochs")
                                * as_positive_int(steps_per_epoch, "steps_per_epoch"))
        else:
            raise ValueError("total_steps must be given, or both epochs and steps_per_epoch "
                             f"(got total_steps=None, epochs={epochs!r:.40}, "
                             f"steps_per_epoch={steps_per_epoch!r:.40})")
        self.pct_start = as_real(pct_start, "pct_start", 0, 1)
        self.anneal_strategy = as_choice(anneal_strategy, "anneal_strategy", ("cos", "linear"))
        self.three_phase = as_bool(three_phase, "three_phase")
        self.cycle_momentum = as_bool(cycle_momentum, "cycle_momentum")
        max_lrs = _per_group(max_lr, "max_lr", optimizer,
                             lambda v, k: as_real(v, k, 0, low_open=True))
        div_factor = as_real(div_factor, "div_factor", 0, low_open=True)
        final_div_factor = as_real(final_div_factor, "final_div_factor", 0, low_open=True)
        self._phases = self._make_phases()
        ends = [phase[0] for phase in self._phases]
        if any(end == start for start, end in zip([0.0] + ends, ends)):
            raise ValueError(f"pct_start={self.pct_start} with total_steps={self.total_steps} "
                             "gives a phase of zero length (phases from step 0 end at steps "
                             f"{ends}); change pct_start or total_steps")
        self.use_beta1 = False
        if self.cycle_momentum:
            if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
                raise ValueError(f"cycle_momentum=True needs an optimizer with momentum or "
                                 f"betas; {type(optimizer).__name__} has neither")
            self.use_beta1 = "betas" in optimizer.defaults
            # a momentum becomes beta1, which must lie in [0, 1)
            high = dict(high=1, high_open=True) if self.use_beta1 else {}
            max_momentums = _per_group(max_momentum, "max_momentum", optimizer,
                                       lambda v, k: as_real(v, k, 0, **high))
            base_momentums = _per_group(base_momentum, "base_momentum", optimizer,
                                        lambda v, k: as_real(v, k, 0, **high))
        if self._start_epoch == -1:
            for g, group in enumerate(optimizer.param_groups):
                group["initial_lr"] = max_lrs[g] / div_factor
                group["max_lr"] = max_lrs[g]
                group["min_lr"] = group["initial_lr"] / final_div_factor
                if self.cycle_momentum:
                    self._set_momentum(group, max_momentums[g])
                    group["max_momentum"] = max_momentums[g]
                    group["base_momentum"] = base_momentums[g]
        self._begin()

    def _make_phases(self):
        """(end step, start lr key, end lr key, start momentum key, end momentum key) per phase."""
        p, n = self.pct_start, self.total_steps
        if self.three_phase:
            return [(float(p * n) - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                    (float(2 * p * n) - 2, "max_lr", "initial_lr", "base_momentum",
                     "max_momentum"),
                    (n - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum")]
        return [(float(p * n) - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                (n - 1, "max_lr", "min_lr", "base_momentum", "max_momentum")]

    def _set_momentum(self, group, value):
        if self.use_beta1:
            group["betas"] = (value, *group["betas"][1:])
        else:
            group["momentum"] = value

    def _anneal(self, start, end, pct):
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def _get_lr(self):
        step = self.last_epoch
        if step > self.total_steps:
            raise ValueError(f"OneCycleLR was stepped {step} times; its total_steps is "
                             f"{self.total_steps}")
        lrs = []
        for group in self.optimizer.param_groups:
            start_step = 0.0
            for i, (end_step, lr0, lr1, m0, m1) in enumerate(self._phases):
                if step <= end_step or i == len(self._phases) - 1:
                    pct = (step - start_step) / (end_step - start_step)
                    lrs.append(self._anneal(group[lr0], group[lr1], pct))
                    if self.cycle_momentum:
                        self._set_momentum(group, self._anneal(group[m0], group[m1], pct))
                    break
                start_step = end_step
        return lrs

    def _apply(self, values):
        super()._apply(values)
        self._phases = self._make_phases()


class ReduceLROnPlateau(LRScheduler):
    r"""Reduce the learning rate when a metric stops improving, as torch's ``ReduceLROnPlateau``.

    Parameters
    ----------
    optimizer : deconv.optim.Optimizer
    mode : {'min', 'max'}, default 'min'
        Whether the metric should decrease (a loss) or increase (an accuracy).
    factor : float, default 0.1
        :math:`\phi \in [0, 1)`: a reduction sets :math:`\eta \leftarrow
        \max(\phi\eta, \eta_{min})`.
    patience : int, default 10
        Number of epochs :math:`\ge 0` without improvement tolerated; the
        next one reduces the rate.
    threshold : float, default 1e-4
        :math:`\tau \ge 0`: the least improvement that counts.
    threshold_mode : {'rel', 'abs'}, default 'rel'
        Whether :math:`\tau` is relative to the best value or absolute.
    cooldown : int, default 0
        Epochs :math:`\ge 0` after a reduction during which bad epochs are
        not counted.
    min_lr : float or sequence of float, default 0
        :math:`\eta_{min} \ge 0` (one per group, or one for all).
    eps : float, default 1e-8
        A reduction smaller than :math:`\epsilon \ge 0` is not applied.

    Notes
    -----
    :meth:`step` takes the epoch's metric :math:`x`. It is an improvement
    over the best value :math:`x^*` when (``min``/``rel``)
    :math:`x < x^*(1 - \tau)`, (``min``/``abs``) :math:`x < x^* - \tau`,
    (``max``/``rel``) :math:`x > x^*(1 + \tau)`, (``max``/``abs``)
    :math:`x > x^* + \tau`; :math:`x^*` starts at :math:`\pm\infty`. An
    improvement resets the count of bad epochs, anything else (NaN
    included) adds one; during cooldown the count stays at zero. When the
    count exceeds ``patience`` every group with
    :math:`\eta - \max(\phi\eta, \eta_{min}) > \epsilon` is reduced, the
    cooldown starts and the count resets. The constructor changes no rate.
    The optimizer must keep its number of groups (torch re-broadcasts a
    single ``min_lr`` over groups added later; here that is a ValueError).

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn, optim
    >>> opt = optim.SGD([nn.Parameter(np.zeros(1))], lr=1.0)
    >>> sched = optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=1)
    >>> for loss in [3.0, 2.0, 2.0, 2.0, 1.0, 1.0, 1.0]:
    ...     sched.step(loss)
    >>> sched.get_last_lr()
    [0.25]
    """

    _SETTINGS = (("mode", _text("min", "max")),
                 ("factor", lambda v, k: as_real(_unwrap(v), k, 0, 1, high_open=True)),
                 ("patience", _ints_at_least(0)), ("threshold", _reals_at_least(0)),
                 ("threshold_mode", _text("rel", "abs")), ("cooldown", _ints_at_least(0)),
                 ("min_lrs", _real_list), ("eps", _reals_at_least(0)),
                 ("best", lambda v, k: as_metric(_unwrap(v), k)),
                 ("cooldown_counter", _ints_at_least(0)), ("num_bad_epochs", _ints_at_least(0)))

    def __init__(self, optimizer, mode="min", factor=0.1, patience=10, threshold=1e-4,
                 threshold_mode="rel", cooldown=0, min_lr=0, eps=1e-8):
        self.optimizer = _check_optimizer(optimizer)
        self.mode = as_choice(mode, "mode", ("min", "max"))
        self.factor = as_real(factor, "factor", 0, 1, high_open=True)
        self.patience = as_int_at_least(patience, "patience", 0)
        self.threshold = as_real(threshold, "threshold", 0)
        self.threshold_mode = as_choice(threshold_mode, "threshold_mode", ("rel", "abs"))
        self.cooldown = as_int_at_least(cooldown, "cooldown", 0)
        self.min_lrs = _per_group(min_lr, "min_lr", optimizer, lambda v, k: as_real(v, k, 0))
        self.eps = as_real(eps, "eps", 0)
        self.last_epoch = 0
        self._last_lr = _group_lrs(optimizer)
        self.best = math.inf if self.mode == "min" else -math.inf
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    def _saved(self):
        return (("last_epoch", _ints_at_least(0)), ("_last_lr", _real_list)) + self._SETTINGS

    def _is_better(self, a, best):
        if self.mode == "min" and self.threshold_mode == "rel":
            return a < best * (1.0 - self.threshold)
        if self.mode == "min":
            return a < best - self.threshold
        if self.threshold_mode == "rel":
            return a > best * (self.threshold + 1.0)
        return a > best + self.threshold

    def step(self, metrics):
        """Record the epoch's metric and reduce the rates after too many bad epochs.

        Parameters
        ----------
        metrics : float
            The monitored value (a real number or a 0-d array; inf and NaN
            count as no improvement).
        """
        current = as_metric(metrics, "metrics")
        lrs = _group_lrs(self.optimizer)
        if len(lrs) != len(self.min_lrs):
            raise ValueError(f"the optimizer has {len(lrs)} parameter groups, the scheduler "
                             f"was built for {len(self.min_lrs)}")
        self.last_epoch += 1
        if self._is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            for group, old_lr, min_lr in zip(self.optimizer.param_groups, lrs, self.min_lrs):
                new_lr = max(old_lr * self.factor, min_lr)
                if old_lr - new_lr > self.eps:
                    group["lr"] = new_lr
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]


class SequentialLR(LRScheduler):
    r"""Run schedulers one after the other, switching at milestones, as torch's ``SequentialLR``.

    Parameters
    ----------
    optimizer : deconv.optim.Optimizer
        The optimizer every scheduler of ``schedulers`` was built on.
    schedulers : sequence of LRScheduler
        At least one; not :class:`ReduceLROnPlateau` (its step needs a metric).
    milestones : sequence of int
        ``len(schedulers) - 1`` increasing epochs :math:`\ge 0`: scheduler
        :math:`k` runs from milestone :math:`k-1` on.
    last_epoch : int, default -1

    Notes
    -----
    The constructor resets every group's rate to its ``initial_lr``, takes
    one epoch back from every scheduler (their constructors already took
    their initial steps) and redoes the initial step of the first one. At a
    milestone, the next scheduler is set to epoch 0 with its closed form
    (:math:`\eta_0` times its factor at 0, from ``base_lrs``); between
    milestones the current scheduler steps normally. As in torch, a
    scheduler's epochs count from its own milestone.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn, optim
    >>> from deconv.optim import lr_scheduler as ls
    >>> opt = optim.SGD([nn.Parameter(np.zeros(1))], lr=1.0)
    >>> warmup = ls.LinearLR(opt, start_factor=0.25, total_iters=3)
    >>> decay = ls.ExponentialLR(opt, gamma=0.5)
    >>> sched = ls.SequentialLR(opt, [warmup, decay], milestones=[3])
    >>> [sched.get_last_lr()[0]] + [sched.get_last_lr()[0] for _ in range(5)
    ...                             if sched.step() is None]
    [0.25, 0.5, 0.75, 1.0, 0.5, 0.25]
    """

    def __init__(self, optimizer, schedulers, milestones, last_epoch=-1):
        optimizer = _check_optimizer(optimizer)
        last_epoch = as_int_at_least(last_epoch, "last_epoch", -1)
        schedulers = as_list(schedulers, "schedulers", "schedulers")
        if not schedulers:
            raise ValueError("schedulers must hold at least one scheduler, got none")
        for k, s in enumerate(schedulers):
            if not isinstance(s, LRScheduler):
                raise TypeError(f"schedulers[{k}] must be a deconv.optim.lr_scheduler "
                                f"scheduler, got {type(s).__name__}")
            if isinstance(s, ReduceLROnPlateau):
                raise ValueError(f"schedulers[{k}] is a ReduceLROnPlateau, which SequentialLR "
                                 "cannot step (it needs a metric)")
            if s.optimizer is not optimizer:
                raise ValueError(f"schedulers[{k}] was built on another optimizer than "
                                 "optimizer")
        milestones = [as_int_at_least(m, f"milestones[{i}]", 0)
                      for i, m in enumerate(as_list(milestones, "milestones", "ints"))]
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(f"milestones must have len(schedulers) - 1 = {len(schedulers) - 1} "
                             f"entries, got {len(milestones)}")
        if any(b <= a for a, b in zip(milestones, milestones[1:])):
            raise ValueError(f"milestones must be increasing, got {milestones}")
        self.optimizer = optimizer
        self._schedulers = schedulers
        self._milestones = milestones
        self.last_epoch = last_epoch + 1
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"]
        self._undo(self)
        idx = bisect_right(milestones, 0)
        schedulers[idx]._initial_step()
        self._last_lr = schedulers[idx].get_last_lr()

    def _undo(self, scheduler):
        """Take one epoch back from every scheduler inside (recursively)."""
        if isinstance(scheduler, SequentialLR):
            for s in scheduler._schedulers:
                self._undo(s)
        else:
            scheduler.last_epoch -= 1

    def step(self):
        """Advance the current scheduler (or start the next one at its milestone)."""
        self.last_epoch += 1
        idx = bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[idx]
        if idx > 0 and self._milestones[idx - 1] == self.last_epoch:
            scheduler._update_lr(0)
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()

    def _saved(self):
        return (("last_epoch", _ints_at_least(0)), ("_last_lr", _real_list),
                ("_milestones", _int_list))

    def state_dict(self):
        """Its own state and each scheduler's, under ``"_schedulers.{k}."``."""
        out = super().state_dict()
        for k, s in enumerate(self._schedulers):
            out.update({f"_schedulers.{k}.{key}": v for key, v in s.state_dict().items()})
        return out

    def _parse(self, state_dict, prefix=""):
        if not isinstance(state_dict, dict):
            raise TypeError(f"state_dict must be a dict, got {type(state_dict).__name__}")
        own, parts = {}, [{} for _ in self._schedulers]
        for key, value in state_dict.items():
            pieces = key.split(".", 2) if isinstance(key, str) else [key]
            if (len(pieces) == 3 and pieces[0] == "_schedulers" and pieces[1].isdigit()
                    and int(pieces[1]) < len(parts)):
                parts[int(pieces[1])][pieces[2]] = value
            else:
                own[key] = value
        values = super()._parse(own, prefix)
        if values["_milestones"] != self._milestones:
            raise ValueError(f"state_dict[{prefix + '_milestones'!r}] is "
                             f"{values['_milestones']}, this SequentialLR has {self._milestones}")
        nested = [s._parse(p, f"{prefix}_schedulers.{k}.")
                  for k, (s, p) in enumerate(zip(self._schedulers, parts))]
        return values, nested

    def _apply(self, parsed):
        values, nested = parsed
        super()._apply(values)
        for s, v in zip(self._schedulers, nested):
            s._apply(v)
