"""The base of the learning-rate schedulers and the checks they share.

See :mod:`deconv.optim.lr_scheduler`, which re-exports :class:`LRScheduler`.
"""

import math

import numpy as np

from deconv.functional.validation import as_bool, as_choice, as_int_at_least, as_list, as_real
from deconv.optim.optimizer import Optimizer

__all__ = ["LRScheduler"]


# ---------------------------------------------------------------------------
# argument and state-dict checks
# ---------------------------------------------------------------------------


def _check_optimizer(optimizer):
    if not isinstance(optimizer, Optimizer):
        raise TypeError("optimizer must be a deconv.optim.Optimizer (SGD, Adam, ...), got "
                        f"{type(optimizer).__name__}")
    return optimizer


def _per_group(value, name, optimizer, check):
    """One value per parameter group: a sequence of that length, or one value for all."""
    n = len(optimizer.param_groups)
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"{name} must have one value per parameter group ({n}), got "
                             f"{len(value)}")
        return [check(v, f"{name}[{i}]") for i, v in enumerate(value)]
    return [check(value, name)] * n


def _unwrap(value):
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value.item()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _ints_at_least(low):
    return lambda v, k: as_int_at_least(_unwrap(v), k, low)


def _reals_at_least(low):
    return lambda v, k: as_real(_unwrap(v), k, low)


def _flag(v, k):
    return as_bool(_unwrap(v), k)


def _text(*choices):
    return lambda v, k: as_choice(_unwrap(v), k, choices)


def _real_list(v, k):
    """A sequence of finite reals >= 0 (learning rates) as a list of floats."""
    if not isinstance(v, (list, tuple, np.ndarray)) or np.ndim(v) != 1:
        raise ValueError(f"{k} must be a 1-d sequence of numbers, got {v!r:.80}")
    return [as_real(_unwrap(x), f"{k}[{i}]", 0) for i, x in enumerate(v)]


def _int_list(v, k):
    """A sequence of ints >= 0 (milestones) as a sorted list."""
    if not isinstance(v, (list, tuple, np.ndarray)) or np.ndim(v) != 1:
        raise ValueError(f"{k} must be a 1-d sequence of ints, got {v!r:.80}")
    return sorted(as_int_at_least(_unwrap(x), f"{k}[{i}]", 0) for i, x in enumerate(v))


def _group_lrs(optimizer):
    """The groups' current learning rates (they may have been reassigned by hand)."""
    return [as_real(group["lr"], f"optimizer.param_groups[{g}]['lr']", 0)
            for g, group in enumerate(optimizer.param_groups)]


# ---------------------------------------------------------------------------
# base class
# ---------------------------------------------------------------------------


class LRScheduler:
    """Base class of the epoch-indexed schedulers, as ``torch.optim.lr_scheduler.LRScheduler``.

    Parameters
    ----------
    optimizer : deconv.optim.Optimizer
        Its groups' ``'lr'`` are set at construction and at every :meth:`step`.
    last_epoch : int, default -1
        The index of the last epoch; -1 starts a new schedule (and sets each
        group's ``initial_lr`` to its ``lr`` unless already there). A value
        >= 0 resumes and needs ``initial_lr`` in every group.

    Notes
    -----
    The constructor checks every argument, then (fresh start) stores
    ``initial_lr``, sets ``base_lrs`` and takes the initial step:
    ``last_epoch`` becomes ``last_epoch + 1`` and the groups get the
    schedule's rate for it. Each :meth:`step` then adds one to
    ``last_epoch`` and sets the next rate.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn, optim
    >>> opt = optim.Adam([nn.Parameter(np.zeros(1))], lr=0.1)
    >>> sched = optim.lr_scheduler.ExponentialLR(opt, gamma=0.5)
    >>> isinstance(sched, optim.lr_scheduler.LRScheduler), sched.last_epoch
    (True, 0)
    """

    #: (attribute, converter) of the scheduler's own settings kept in the state dict
    _SETTINGS = ()
    _is_initial = False

    def _setup(self, optimizer, last_epoch):
        """Check the optimizer and ``last_epoch`` (nothing is changed yet)."""
        self.optimizer = _check_optimizer(optimizer)
        last_epoch = as_int_at_least(last_epoch, "last_epoch", -1)
        if last_epoch != -1:
            lacking = [g for g, group in enumerate(optimizer.param_groups)
                       if "initial_lr" not in group]
            if lacking:
                raise ValueError(
                    f"last_epoch={last_epoch} resumes a schedule, but optimizer.param_groups"
                    f"{lacking} have no 'initial_lr' (load the optimizer's state dict first, "
                    "or start with last_epoch=-1)")
        self._start_epoch = last_epoch

    def _begin(self):
        """Store ``initial_lr``, ``base_lrs`` and take the initial step."""
        if self._start_epoch == -1:
            for group in self.optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        self.base_lrs = [float(group["initial_lr"]) for group in self.optimizer.param_groups]
        self.last_epoch = self._start_epoch
        del self._start_epoch
        self._initial_step()

    def __init__(self, optimizer, last_epoch=-1):
        self._setup(optimizer, last_epoch)
        self._begin()

    def _initial_step(self):
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def step(self):
        """Advance the schedule by one epoch and set the groups' ``'lr'``.

        Raises
        ------
        ValueError
            If the schedule would give a rate that is not a finite number
            (e.g. ``gamma=1e300`` after a few steps); the scheduler and the
            optimizer are then left as they were.
        """
        self._step_count += 1
        try:
            self._update_lr(None)
        except BaseException:
            self._step_count -= 1
            raise

    def _update_lr(self, epoch):
        groups = self.optimizer.param_groups
        if len(groups) != len(self.base_lrs):
            raise ValueError(f"the optimizer has {len(groups)} parameter groups, the scheduler "
                             f"was built for {len(self.base_lrs)}")
        # _get_lr may write other entries (OneCycleLR's momenta): undone on error
        saved_epoch, saved_groups = self.last_epoch, [dict(group) for group in groups]
        try:
            if epoch is None:
                self.last_epoch += 1
                values = self._get_lr()
            else:
                self.last_epoch = epoch
                values = (self._closed_form() if hasattr(self, "_closed_form")
                          else self._get_lr())
            bad = [g for g, lr in enumerate(values) if not math.isfinite(lr)]
            if bad:
                raise ValueError(self._diverged(bad[0], values[bad[0]]))
        except OverflowError:                       # gamma ** k beyond the float range
            self._restore(saved_epoch, saved_groups)
            raise ValueError(self._diverged(0, "beyond the float range")) from None
        except BaseException:
            self._restore(saved_epoch, saved_groups)
            raise
        for group, lr in zip(groups, values):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in groups]

    def _diverged(self, g, lr):
        settings = ", ".join(f"{key}={getattr(self, key)!r}" for key, _ in self._SETTINGS)
        return (f"{type(self).__name__}: the learning rate of param_groups[{g}] would become "
                f"{lr} at epoch {self.last_epoch} ({settings}; base_lrs={self.base_lrs})")

    def _restore(self, epoch, groups):
        self.last_epoch = epoch
        for group, saved in zip(self.optimizer.param_groups, groups):
            group.clear()
            group.update(saved)

    def _get_lr(self):
        raise NotImplementedError

    def get_last_lr(self):
        """The learning rates the last :meth:`step` (or the constructor) set, one per group."""
        return list(self._last_lr)

    # -- state dict ------------------------------------------------------------

    def _saved(self):
        return (("last_epoch", _ints_at_least(-1)), ("_step_count", _ints_at_least(0)),
                ("base_lrs", _real_list), ("_last_lr", _real_list)) + self._SETTINGS

    def state_dict(self):
        """The schedule's state: a flat ``dict`` of Python numbers, strings and arrays.

        Returns
        -------
        dict
            torch's attribute names as keys; lists are ``float64`` (rates)
            or ``int64`` (milestones) arrays.
        """
        out = {}
        for key, convert in self._saved():
            value = getattr(self, key)
            if convert is _real_list:
                value = np.array(value, dtype=np.float64)
            elif convert is _int_list:
                value = np.array(value, dtype=np.int64)
            out[key] = value
        return out

    def _parse(self, state_dict, prefix=""):
        """The checked values of ``state_dict`` (nothing is changed)."""
        if not isinstance(state_dict, dict):
            raise TypeError(f"state_dict must be a dict, got {type(state_dict).__name__}")
        saved = dict(self._saved())
        unexpected = [k for k in state_dict if k not in saved]
        missing = [k for k in saved if k not in state_dict]
        if unexpected or missing:
            raise ValueError(f"state_dict does not fit a {type(self).__name__}: missing "
                             f"{[prefix + k for k in missing]}, unexpected "
                             f"{[prefix + k for k in unexpected]}")
        values = {k: saved[k](v, f"state_dict[{prefix + k!r}]") for k, v in state_dict.items()}
        n = len(self.optimizer.param_groups)
        for key in ("base_lrs", "_last_lr", "min_lrs"):
            if key in values and len(values[key]) != n:
                raise ValueError(f"state_dict[{prefix + key!r}] has {len(values[key])} values, "
                                 f"the optimizer has {n} parameter groups")
        return values

    def _apply(self, values):
        self.__dict__.update(values)

    def load_state_dict(self, state_dict):
        """Restore the state saved by :meth:`state_dict` (checked before anything changes).

        Parameters
        ----------
        state_dict : dict
            Numbers may be 0-d arrays, as ``np.load`` returns them.
        """
        self._apply(self._parse(state_dict))

    def __repr__(self):
        return f"{type(self).__name__}(last_epoch={self.last_epoch}, lr={self._last_lr})"
