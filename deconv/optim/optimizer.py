"""The optimizer base class: parameter groups, per-parameter state, the flat state dict.

An optimizer holds ``param_groups``, a list of dicts as in torch: each has
``'params'`` (a list of parameter objects) and one value per option of the
algorithm (``'lr'``, ``'momentum'``, ``'betas'``, ...), plus any numbers a
learning-rate scheduler stores there (``'initial_lr'``, ``'max_lr'``, ...).
Options a group does not give fall back to the constructor's arguments
(``optimizer.defaults``). Subclasses define the options (``_OPTIONS``), how
to check them (``_check_options``), which state a parameter gets
(``_COUNTERS``, ``_BUFFERS``, ``_state_names``) and the update (``_update``).
"""

import numbers

import numpy as np

from deconv.functional.validation import FLOAT_DTYPES, as_bool, as_real

__all__ = ["Optimizer"]

# options stored as a pair in a group and as two numbers in the flat state dict
_PAIRS = {"betas": ("beta1", "beta2")}
# keys of the flat state dict that are not options of a group
_RESERVED = ("params", "num_params", "num_groups")


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
        raise TypeError(f"state_dict[{key!r}] must be a number, got {value!r:.80}")
    return value


def _check_param(p, name):
    """One parameter object: ``.data`` a float32/float64 ndarray, a ``.grad`` attribute."""
    if isinstance(p, dict):
        raise TypeError(f"{name} must be a parameter object, got a dict (parameter groups "
                        "are given as a list of dicts only, never mixed with parameters)")
    if not (hasattr(p, "data") and hasattr(p, "grad")):
        raise TypeError(f"{name} must have .data and .grad attributes, got {type(p).__name__}")
    if not isinstance(p.data, np.ndarray) or p.data.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name}.data must be a float32 or float64 ndarray, got {p.data!r:.80}")


def _as_list(params, name):
    """An iterable of parameters as a list (a single parameter or array is refused)."""
    if isinstance(params, np.ndarray) or hasattr(params, "data"):
        raise TypeError(
            f"{name} must be an iterable of parameter objects (each with .data and .grad), "
            f"got a single {type(params).__name__}; wrap it in a list"
        )
    if isinstance(params, (set, frozenset, dict, str, bytes)):
        raise TypeError(f"{name} must be an ordered iterable (a list) of parameter objects, "
                        f"got a {type(params).__name__}")
    try:
        return list(params)
    except TypeError:
        raise TypeError(
            f"{name} must be an iterable of parameter objects (each with .data and .grad), "
            f"got {type(params).__name__}"
        ) from None


def _check_extra(key, value, name):
    """A group entry that is not an option: a number, kept and saved (schedulers use them)."""
    if not isinstance(key, str) or not key.isidentifier() or key in _RESERVED:
        raise ValueError(f"{name} has the key {key!r}; a parameter group's keys are 'params', "
                         "the optimizer's options and identifiers naming numbers")
    return as_real(value, f"{name}[{key!r}]")


class Optimizer:
    """Base class of the optimizers: parameter groups, state, ``step`` and the state dict.

    Parameters
    ----------
    params : iterable of parameter objects, or iterable of dicts
        The parameters (each with ``.data`` and ``.grad``), or parameter
        groups: dicts with ``'params'`` (an iterable of parameters) and any
        options that differ from ``defaults`` for that group.
    defaults : dict
        The options of every group that does not set them, already checked
        by the subclass.

    Notes
    -----
    ``param_groups`` is a list of dicts as in torch; assigning
    ``group['lr'] = value`` (what schedulers do) takes effect at the next
    :meth:`step`, which checks every group's options before it changes
    anything. ``state`` is a list with one dict per parameter, in the order
    of the groups and of the parameters inside them (torch keys it by
    tensor); that position also numbers the parameters in the state dict.
    The options are also attributes (``optimizer.lr``): reading one gives
    the value all groups share (an ``AttributeError`` if they differ),
    assigning one sets it in every group.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv.optim import SGD
    >>> class P:
    ...     def __init__(self, data):
    ...         self.data, self.grad = data, np.ones_like(data)
    >>> a, b = P(np.zeros(2)), P(np.zeros(1))
    >>> opt = SGD([{"params": [a]}, {"params": [b], "lr": 1.0}], lr=0.1)
    >>> [g["lr"] for g in opt.param_groups]
    [0.1, 1.0]
    >>> opt.step()
    >>> a.data, b.data
    (array([-0.1, -0.1]), array([-1.]))
    """

    #: option names in torch's order
    _OPTIONS = ()
    #: names of per-parameter integers and arrays of the state (all that may appear)
    _COUNTERS = ()
    _BUFFERS = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name in cls._flat_names():
            if name not in cls.__dict__:
                setattr(cls, name, _option_property(name))

    @classmethod
    def _flat_names(cls):
        return tuple(n for key in cls._OPTIONS for n in _PAIRS.get(key, (key,)))

    def __init__(self, params, defaults):
        groups = self._groups_argument(params)
        self.defaults = dict(defaults)
        self.param_groups = []
        self.state = []
        seen = set()
        checked = [self._check_group(group, name, seen) for group, name in groups]
        for group in checked:
            self.param_groups.append(group)
            self.state.extend({} for _ in group["params"])

    # -- building and checking groups -----------------------------------------

    @staticmethod
    def _groups_argument(params):
        """``params`` as a list of (group dict, name for messages)."""
        items = _as_list(params, "params")
        if not items:
            raise ValueError("optimizer got an empty parameter list (params)")
        if all(isinstance(item, dict) for item in items):
            return [(item, f"params[{g}]") for g, item in enumerate(items)]
        if any(isinstance(item, dict) for item in items):
            raise TypeError("params must be all parameter objects or all dicts (parameter "
                            "groups), got a mix")
        return [({"params": items}, None)]

    def _check_group(self, group, name, seen):
        """A new group dict (options filled from the defaults), its parameters unseen so far."""
        where = name or "params"
        if not isinstance(group, dict):
            raise TypeError(f"{where} must be a dict with a 'params' entry, got "
                            f"{type(group).__name__}")
        if "params" not in group:
            raise ValueError(f"{where} must have a 'params' entry, got keys {sorted(group)}")
        params = group["params"]
        label = f"{name}['params']" if name else "params"
        if hasattr(params, "data") and not isinstance(params, np.ndarray):
            params = [params]                       # a single parameter, as torch allows
        params = _as_list(params, label)
        if not params:
            raise ValueError(f"{label} is an empty parameter list")
        for i, p in enumerate(params):
            _check_param(p, f"{label}[{i}]")
            if id(p) in seen:
                raise ValueError(f"{label}[{i}] appears more than once in params (a parameter "
                                 "may be in one group only, once)")
            seen.add(id(p))
        options = {k: v for k, v in group.items() if k in self._OPTIONS}
        options = self._check_options({**self.defaults, **options},
                                      lambda k: f"{name}[{k!r}]" if name else k)
        extras = {k: _check_extra(k, v, where) for k, v in group.items()
                  if k != "params" and k not in self._OPTIONS}
        return {"params": params, **options, **extras}

    def add_param_group(self, param_group):
        """Add a parameter group, as ``torch.optim.Optimizer.add_param_group``.

        Parameters
        ----------
        param_group : dict
            ``'params'`` (a parameter or an iterable of them, none already
            held by this optimizer) and options; missing options are taken
            from ``defaults``.

        Examples
        --------
        >>> import numpy as np
        >>> from deconv.optim import Adam
        >>> class P:
        ...     def __init__(self, data):
        ...         self.data, self.grad = data, None
        >>> opt = Adam([P(np.zeros(2))], lr=0.1)
        >>> opt.add_param_group({"params": [P(np.zeros(3))], "lr": 0.01})
        >>> [(len(g["params"]), g["lr"]) for g in opt.param_groups]
        [(1, 0.1), (1, 0.01)]
        """
        seen = {id(p) for p in self.params}
        group = self._check_group(param_group, "param_group", seen)
        self.param_groups.append(group)
        self.state.extend({} for _ in group["params"])

    def _options_of(self, g):
        """Group ``g``'s options as checked values (they may have been reassigned)."""
        group = self.param_groups[g]
        return self._check_options({k: group[k] for k in self._OPTIONS},
                                   lambda k: f"param_groups[{g}][{k!r}]")

    def _check_options(self, options, name):
        """Check a full dict of options; ``name(key)`` names an option in messages."""
        raise NotImplementedError

    def _state_names(self, options):
        """The state names a parameter updated under ``options`` has."""
        return set(self._COUNTERS) | set(self._BUFFERS)

    # -- the public protocol -------------------------------------------------

    @property
    def params(self):
        """All parameters, group after group (the positions of ``state``)."""
        return [p for group in self.param_groups for p in group["params"]]

    def step(self):
        """Update every parameter whose ``grad`` is not ``None``, in place.

        Every group's options and every gradient are checked first; an error
        leaves all parameters and state unchanged.
        """
        work = []
        i = 0
        for g, group in enumerate(self.param_groups):
            options = self._options_of(g)
            for p in group["params"]:
                grad, data = p.grad, p.data
                if grad is not None:
                    if (not isinstance(grad, np.ndarray) or grad.shape != data.shape
                            or grad.dtype != data.dtype):
                        got = (f"shape {grad.shape} and dtype {grad.dtype}"
                               if isinstance(grad, np.ndarray) else repr(type(grad).__name__))
                        raise ValueError(
                            f"params[{i}].grad must be None or an ndarray of the parameter's "
                            f"shape {data.shape} and dtype {data.dtype}, got {got}")
                    work.append((data, grad, self.state[i], options))
                i += 1
        # overflow and NaN propagate silently, as in torch (and in the layers); the
        # trainer checks the parameters after the step
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            for data, grad, state, options in work:
                self._update(data, grad, state, options)

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
        """The options of the first group as a ``dict`` of Python numbers (pairs split)."""
        return _flatten({k: self.param_groups[0][k] for k in self._OPTIONS})

    # -- state dict ------------------------------------------------------------

    def state_dict(self):
        """A flat ``dict`` of copies of the groups' options and the per-parameter state.

        The first group's options (and numbers such as ``initial_lr``) are
        top-level keys, ``"num_params"`` counts all parameters, and
        ``"state.{i}.{name}"`` is the state of the parameter at position
        ``i`` (absent until it is first updated). With more than one group,
        ``"num_groups"`` and, for every later group ``g``,
        ``"group.{g}.num_params"`` and ``"group.{g}.{option}"``. Values are
        NumPy arrays and Python numbers only, so that ``np.savez`` stores
        them without pickle.
        """
        out = {}
        for g, group in enumerate(self.param_groups):
            prefix = "" if g == 0 else f"group.{g}."
            entries = _flatten({k: v for k, v in group.items() if k != "params"})
            out.update({prefix + k: v for k, v in entries.items()})
            if g == 0:
                out["num_params"] = len(self.state)
            else:
                out[prefix + "num_params"] = len(group["params"])
        if len(self.param_groups) > 1:
            out["num_groups"] = len(self.param_groups)
        for i, st in enumerate(self.state):
            for name in self._COUNTERS:
                if name in st:
                    out[f"state.{i}.{name}"] = int(st[name])
            for name in self._BUFFERS:
                if name in st:
                    out[f"state.{i}.{name}"] = st[name].copy()
        return out

    def load_state_dict(self, state_dict):
        """Restore the groups' options and the state saved by :meth:`state_dict`.

        The optimizer must have groups of the same number and sizes, over
        parameters of the same shapes. Numbers may also be 0-d arrays (as
        ``np.load`` returns them). Buffers are copied and cast to their
        parameter's dtype (as torch does). Everything is checked before
        anything is changed.
        """
        if not isinstance(state_dict, dict):
            raise TypeError(f"state_dict must be a dict, got {type(state_dict).__name__}")
        flat = self._flat_names()
        missing = [k for k in (*flat, "num_params") if k not in state_dict]
        if missing:
            raise ValueError(
                f"state_dict is missing {missing} (is it from a {type(self).__name__}?)")
        num_groups = _scalar_from_state(state_dict.get("num_groups", 1), "num_groups")
        if num_groups != len(self.param_groups):
            raise ValueError(f"state_dict is for {num_groups} parameter groups, this optimizer "
                             f"has {len(self.param_groups)}")
        num_params = _scalar_from_state(state_dict["num_params"], "num_params")
        if num_params != len(self.state):
            raise ValueError(f"state_dict is for {num_params} parameters, this optimizer has "
                             f"{len(self.state)}")
        entries = [{} for _ in self.param_groups]          # per group: key -> number
        per_param = {}
        for key, value in state_dict.items():
            if key in ("num_groups", "num_params"):
                continue
            parts = key.split(".") if isinstance(key, str) else [None]
            if parts[0] == "state":
                per_param[key] = (parts, value)
            elif parts[0] == "group" and len(parts) == 3 and parts[1].isdigit() \
                    and 1 <= int(parts[1]) < len(self.param_groups):
                entries[int(parts[1])][parts[2]] = _scalar_from_state(value, key)
            elif len(parts) == 1 and parts[0] is not None:
                entries[0][key] = _scalar_from_state(value, key)
            else:
                raise ValueError(f"state_dict has an unexpected key {key!r}")
        new_groups = []
        for g, (group, values) in enumerate(zip(self.param_groups, entries)):
            size = values.pop("num_params", len(group["params"]) if g == 0 else None)
            if size != len(group["params"]):
                raise ValueError(f"state_dict has {size} parameters in group {g}, this "
                                 f"optimizer has {len(group['params'])}")
            lost = [k for k in flat if k not in values]
            if lost:
                raise ValueError(f"state_dict is missing {[f'group.{g}.{k}' for k in lost]}")
            for key in flat:           # np.savez keeps bools, a hand-made dict may give 0/1
                if isinstance(self.defaults.get(key), bool) and values[key] in (0, 1):
                    values[key] = bool(values[key])
            options = _unflatten({k: values.pop(k) for k in flat})
            prefix = "" if g == 0 else f"group.{g}."
            options = self._check_options(options, lambda k: f"state_dict[{prefix + k!r}]")
            extras = {k: _check_extra(k, v, "state_dict") for k, v in values.items()}
            new_groups.append({**options, **extras})
        options_at = [opt for group, opt in zip(self.param_groups, new_groups)
                      for _ in group["params"]]
        params = self.params
        allowed = set(self._COUNTERS) | set(self._BUFFERS)
        new_state = [{} for _ in params]
        for key, (parts, value) in per_param.items():
            if (len(parts) != 3 or not parts[1].isdigit() or parts[2] not in allowed
                    or int(parts[1]) >= len(params)):
                raise ValueError(f"state_dict has an unexpected key {key!r}")
            i, name = int(parts[1]), parts[2]
            data = params[i].data
            if name in self._COUNTERS:
                count = _scalar_from_state(value, key)
                if count != int(count) or count < 0:
                    raise ValueError(f"state_dict[{key!r}] must be an integer >= 0, got {count!r}")
                new_state[i][name] = int(count)
            else:
                if not isinstance(value, np.ndarray) or value.shape != data.shape \
                        or value.dtype.kind not in "biuf":
                    raise ValueError(f"state_dict[{key!r}] must be an array of shape "
                                     f"{data.shape} (params[{i}]), got {value!r:.80}")
                new_state[i][name] = np.array(value, dtype=data.dtype, copy=True)
        for i, st in enumerate(new_state):
            needed = self._state_names(options_at[i])
            if st and not needed <= set(st):
                raise ValueError(f"state_dict has an incomplete state for params[{i}]: "
                                 f"{sorted(st)} instead of {sorted(needed)}")
        for group, values in zip(self.param_groups, new_groups):
            params_of_group = group["params"]
            group.clear()
            group.update({"params": params_of_group, **values})
        self.state = new_state

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters().items())
        n = len(self.state)
        if len(self.param_groups) == 1:
            return f"{type(self).__name__}(<{n} parameters>, {args})"
        return (f"{type(self).__name__}(<{n} parameters in {len(self.param_groups)} groups>, "
                f"group 0: {args})")


def _flatten(options):
    """Options with pairs split into their two flat names (``betas`` -> ``beta1``, ``beta2``)."""
    out = {}
    for key, value in options.items():
        if key in _PAIRS:
            out.update(zip(_PAIRS[key], value))
        else:
            out[key] = value
    return out


def _unflatten(flat):
    out = dict(flat)
    for key, names in _PAIRS.items():
        if all(n in out for n in names):
            out[key] = tuple(out.pop(n) for n in names)
    return out


def _option_property(name):
    """``optimizer.<name>``: the value all groups share; assigning sets every group's."""
    pair = next(((key, names.index(name)) for key, names in _PAIRS.items() if name in names),
                None)

    def value_in(group):
        return group[pair[0]][pair[1]] if pair else group[name]

    def get(self):
        values = [value_in(group) for group in self.param_groups]
        if any(v != values[0] for v in values):
            raise AttributeError(
                f"the parameter groups have different values of {name} ({values}); read "
                f"optimizer.param_groups[i][{(pair[0] if pair else name)!r}]")
        return values[0]

    def set_(self, value):
        updated = []
        for g, group in enumerate(self.param_groups):
            options = {k: group[k] for k in self._OPTIONS}
            if pair:
                both = list(options[pair[0]])
                both[pair[1]] = value
                options[pair[0]] = tuple(both)
            else:
                options[name] = value
            own = pair[0] if pair else name
            updated.append(self._check_options(
                options, lambda k, g=g: k if k == own else f"param_groups[{g}][{k!r}]"))
        for group, options in zip(self.param_groups, updated):
            group.update(options)

    return property(get, set_, doc=f"``{name}`` of every parameter group (all must agree to "
                                   "read it; assigning sets it in every group).")
