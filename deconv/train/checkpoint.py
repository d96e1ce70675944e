"""Training checkpoints: one ``.npz`` file, written atomically, read without pickle.

:func:`save_checkpoint` stores a model's parameters and buffers (a norm
layer's running statistics), an optimizer's state, a learning-rate
scheduler's state, the epoch and step counters, the state of the trainer's shuffling generator and of
every ``np.random.Generator`` held by a module of the model (Dropout's
``rng``), the history and a format version; :func:`load_checkpoint` checks
all of it against the model and optimizer before changing anything.
:class:`deconv.train.Trainer` writes one after every epoch; loading it into
fresh objects and training on gives bitwise the run that never stopped.
"""

import contextlib
import json
import os
import secrets

import numpy as np

from deconv.functional.validation import as_int_at_least

__all__ = [
    "save_checkpoint", "load_checkpoint", "CHECKPOINT_FORMAT", "CHECKPOINT_VERSION",
    "CHECKPOINT_NAME",
]

#: value of the ``format`` entry of every checkpoint
CHECKPOINT_FORMAT = "deconv.train.checkpoint"
#: version of the layout described in :func:`save_checkpoint`; bumped on any incompatible change
CHECKPOINT_VERSION = 2
#: the versions :func:`load_checkpoint` reads (version 1 had no buffers and no scheduler)
READABLE_VERSIONS = (1, 2)
#: file name of the checkpoint that :class:`Trainer` keeps in ``out_dir``
CHECKPOINT_NAME = "checkpoint.npz"
#: the columns of a training history (:attr:`deconv.train.Trainer.history`)
HISTORY_KEYS = ("epoch", "steps", "train_loss", "val_metric", "seconds")


# ---------------------------------------------------------------------------
# random generators: finding them and writing their state without pickle
# ---------------------------------------------------------------------------

def model_generators(model):
    """``[(name, Generator)]``: every np.random.Generator held as an attribute by a module.

    Names are ``"<module path>.<attribute>"`` (``"2.rng"``; just the attribute
    for the root module), in the depth-first order of ``named_modules``; a
    generator shared by several modules is listed once, under its first name.
    """
    out, seen = [], set()
    for mod_name, module in model.named_modules():
        for attr, value in vars(module).items():
            if isinstance(value, np.random.Generator) and id(value) not in seen:
                seen.add(id(value))
                out.append((f"{mod_name}.{attr}" if mod_name else attr, value))
    return out


def _json_default(value):
    # bit_generator.state holds ndarrays for MT19937, Philox and SFC64 (PCG64 has only ints)
    if isinstance(value, np.ndarray):
        return {"__ndarray__": value.dtype.str, "data": value.tolist()}
    if isinstance(value, np.integer):
        return int(value)
    raise TypeError(f"cannot store {type(value).__name__} in a generator state")


def _json_hook(obj):
    if set(obj) == {"__ndarray__", "data"}:
        return np.array(obj["data"], dtype=np.dtype(obj["__ndarray__"]))
    return obj


def _encode_rng_state(state):
    """A bit_generator state dict as a 0-d unicode array of JSON.

    JSON writes Python ints in full decimal, so PCG64's 128-bit ``state`` and
    ``inc`` survive exactly (a float64 or int64 array would truncate them).
    """
    return np.array(json.dumps(state, default=_json_default, sort_keys=True))


def _decode_rng_state(array, key):
    if not (isinstance(array, np.ndarray) and array.ndim == 0 and array.dtype.kind == "U"):
        raise ValueError(f"checkpoint entry {key!r} must be a 0-d unicode array (JSON text)")
    try:
        state = json.loads(str(array[()]), object_hook=_json_hook)
    except ValueError as err:
        raise ValueError(f"checkpoint entry {key!r} is not valid JSON: {err}") from None
    if not isinstance(state, dict) or not isinstance(state.get("bit_generator"), str):
        raise ValueError(f"checkpoint entry {key!r} is not a bit generator state")
    return state


def _check_rng_fits(generator, state, what):
    name = type(generator.bit_generator).__name__
    if state["bit_generator"] != name:
        raise ValueError(
            f"{what}: the checkpoint holds a {state['bit_generator']} state, the generator is "
            f"a {name}")


# ---------------------------------------------------------------------------
# checkpoints
# ---------------------------------------------------------------------------

def _scalar(value, key):
    if not (isinstance(value, np.ndarray) and value.ndim == 0):
        raise ValueError(f"checkpoint entry {key!r} must be a 0-d array, got {value!r:.80}")
    return value.item()


def _history_arrays(history):
    """The history dict (lists) as the ``history.*`` arrays of a checkpoint."""
    history = empty_history() if history is None else history
    n = len(history["epoch"])
    for k in HISTORY_KEYS:
        if k not in history or len(history[k]) != n:
            raise ValueError(f"history must have the keys {HISTORY_KEYS}, each a list of "
                             f"{n} entries")
    vm = history["val_metric"]
    return {
        "history.epoch": np.array(history["epoch"], dtype=np.int64).reshape(n),
        "history.steps": np.array(history["steps"], dtype=np.int64).reshape(n),
        "history.train_loss": np.array(history["train_loss"], dtype=np.float64).reshape(n),
        # None (no validation set) is stored as NaN plus a mask, so a metric that
        # really was NaN is told apart from one that was never measured
        "history.val_metric": np.array([np.nan if v is None else v for v in vm],
                                       dtype=np.float64).reshape(n),
        "history.val_measured": np.array([v is not None for v in vm], dtype=bool).reshape(n),
        "history.seconds": np.array(history["seconds"], dtype=np.float64).reshape(n),
    }


def _history_from_arrays(arrays):
    keys = ("epoch", "steps", "train_loss", "val_metric", "val_measured", "seconds")
    missing = [f"history.{k}" for k in keys if f"history.{k}" not in arrays]
    if missing:
        raise ValueError(f"checkpoint is missing {missing}")
    cols = {k: arrays[f"history.{k}"] for k in keys}
    n = len(cols["epoch"])
    if any(c.ndim != 1 or len(c) != n for c in cols.values()):
        raise ValueError("checkpoint history entries must be 1-D arrays of one length")
    return {
        "epoch": [int(v) for v in cols["epoch"]],
        "steps": [int(v) for v in cols["steps"]],
        "train_loss": [float(v) for v in cols["train_loss"]],
        "val_metric": [float(v) if m else None
                       for v, m in zip(cols["val_metric"], cols["val_measured"])],
        "seconds": [float(v) for v in cols["seconds"]],
    }


def empty_history():
    return {k: [] for k in HISTORY_KEYS}


def _atomic_savez(path, arrays):
    """Write ``arrays`` to ``path`` with np.savez so that ``path`` is always a complete file.

    The archive goes to a temporary file in the same directory (a rename is
    atomic only within one file system), is flushed and fsync'ed (so that a
    power cut after the rename cannot leave a renamed but empty file), then
    replaces ``path`` with ``os.replace``. On any failure the temporary file
    is removed and ``path`` is untouched.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    # open(..., "xb") rather than mkstemp: the file gets the usual umask-based
    # permissions instead of mkstemp's 0600
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{secrets.token_hex(6)}.tmp")
    try:
        with open(tmp, "xb") as f:
            np.savez(f, **arrays)   # to a file object: savez does not append ".npz"
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    # make the rename itself durable; not possible on every platform/file system
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def save_checkpoint(path, model, optimizer=None, *, epoch=0, step=0, rng=None, seed=None,
                    history=None, scheduler=None):
    """Write a training checkpoint to one ``.npz`` file, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Destination, written exactly there (no suffix is added). The directory
        must exist. An existing file is replaced only once the new one is
        complete: a failure at any point leaves it as it was.
    model : deconv.nn.Module
        Its parameters and buffers (by :meth:`~deconv.nn.Module.named_parameters`
        and :meth:`~deconv.nn.Module.named_buffers` name) and the state of
        every ``np.random.Generator`` its modules hold.
    optimizer : deconv.optim.Optimizer, optional
        Its ``state_dict()`` (numbers and arrays only) and class name.
    epoch, step : int
        Completed epochs and optimizer steps.
    rng : np.random.Generator, optional
        The trainer's shuffling generator.
    seed : int, optional
        The seed the run started from (informative; resuming uses ``rng``).
    history : dict of lists, optional
        As :attr:`Trainer.history`.
    scheduler : deconv.optim.lr_scheduler.LRScheduler, optional
        Its ``state_dict()`` (numbers, strings and arrays) and class name.

    Notes
    -----
    Format version 2 (:data:`CHECKPOINT_VERSION`; version 1 files, which
    have no buffers and no scheduler, are still read); every entry is a plain
    array, so ``np.load(path, allow_pickle=False)`` reads it:

    ============================ =================================================
    ``format``                   0-d str, ``"deconv.train.checkpoint"``
    ``format_version``           0-d int64, ``1``
    ``epoch``, ``step``          0-d int64: completed epochs, optimizer steps
    ``seed``                     0-d int64 (``-1`` if not given)
    ``model.<name>``             each parameter and buffer, its shape and dtype
    ``optimizer``                0-d str, the optimizer's class name (absent if none)
    ``optimizer.<key>``          each ``state_dict()`` entry; numbers as 0-d arrays
    ``scheduler``                0-d str, the scheduler's class name (absent if none)
    ``scheduler.<key>``          each of its ``state_dict()`` entries
    ``rng.shuffle``              0-d str, JSON of ``rng.bit_generator.state``
    ``rng.model.<module>.<attr>`` the same for each generator held by a module
    ``history.<column>``         1-D arrays, one entry per epoch: ``epoch``,
                                 ``steps``, ``train_loss``, ``val_metric`` (NaN
                                 where not measured), ``val_measured`` (bool),
                                 ``seconds``
    ============================ =================================================

    Generator states are JSON because Python ints are written there in full:
    PCG64's 128-bit ``state`` and ``inc`` are stored exactly.
    """
    arrays = {
        "format": np.array(CHECKPOINT_FORMAT),
        "format_version": np.array(CHECKPOINT_VERSION, dtype=np.int64),
        "epoch": np.array(as_int_at_least(epoch, "epoch", 0), dtype=np.int64),
        "step": np.array(as_int_at_least(step, "step", 0), dtype=np.int64),
        "seed": np.array(-1 if seed is None else as_int_at_least(seed, "seed", 0), dtype=np.int64),
    }
    for name, p in model.named_parameters():
        arrays[f"model.{name}"] = p.data
    for name, b in model.named_buffers():
        arrays[f"model.{name}"] = b
    if optimizer is not None:
        arrays["optimizer"] = np.array(type(optimizer).__name__)
        for key, value in optimizer.state_dict().items():
            value = np.asarray(value)
            if value.dtype.kind not in "biufU":
                raise TypeError(f"optimizer.state_dict()[{key!r}] is not a number or a numeric "
                                f"array ({value.dtype}); it cannot be stored without pickle")
            arrays[f"optimizer.{key}"] = value
    if scheduler is not None:
        arrays["scheduler"] = np.array(type(scheduler).__name__)
        for key, value in scheduler.state_dict().items():
            value = np.asarray(value)
            if value.dtype.kind not in "biufU":
                raise TypeError(f"scheduler.state_dict()[{key!r}] is not a number, a string or "
                                f"a numeric array ({value.dtype}); it cannot be stored without "
                                f"pickle")
            arrays[f"scheduler.{key}"] = value
    if rng is not None:
        arrays["rng.shuffle"] = _encode_rng_state(rng.bit_generator.state)
    for name, gen in model_generators(model):
        arrays[f"rng.model.{name}"] = _encode_rng_state(gen.bit_generator.state)
    arrays.update(_history_arrays(history))
    _atomic_savez(path, arrays)


def load_checkpoint(path, model, optimizer=None, rng=None, scheduler=None):
    """Load a checkpoint written by :func:`save_checkpoint` into ``model`` (and ``optimizer``).

    Everything is checked before anything is changed: on any error the
    model, its generators, the optimizer and ``rng`` are left as they were.

    Parameters
    ----------
    path : str or os.PathLike
    model : deconv.nn.Module
        Must have exactly the checkpoint's parameter names, shapes and
        dtypes. Values are copied into the existing arrays, so layers and the
        optimizer keep working on them. Every ``np.random.Generator`` held by
        its modules is set to the saved state (names must match too).
    optimizer : deconv.optim.Optimizer, optional
        Same class as the saved one, over the same parameters in the same
        order; gets the saved ``state_dict``. None: the optimizer part of the
        file is ignored (e.g. to load weights for inference).
    rng : np.random.Generator, optional
        Gets the saved state of the shuffling generator (``rng.shuffle``),
        which the checkpoint must then hold.
    scheduler : deconv.optim.lr_scheduler.LRScheduler, optional
        Same class as the saved one, built over ``optimizer`` as when it was
        saved; gets the saved ``state_dict``. None: the scheduler part of the
        file is ignored.

    Returns
    -------
    dict
        ``format_version``, ``epoch``, ``step``, ``seed`` (None if not
        saved), ``rng_state`` (the shuffling generator's
        ``bit_generator.state``, or None) and ``history`` (dict of lists).

    Raises
    ------
    ValueError
        The file is not a deconv checkpoint, has another format version,
        has missing or extra parameter names or generators, a parameter of
        another shape or dtype, or an optimizer state of another class or
        layout.
    """
    path = os.fspath(path)
    with np.load(path, allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files}

    fmt = arrays.get("format")
    if fmt is None or fmt.dtype.kind != "U" or fmt.ndim != 0 or str(fmt) != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a deconv training checkpoint (its 'format' entry is "
                         f"{None if fmt is None else str(fmt)!r}, expected {CHECKPOINT_FORMAT!r})")
    version = _scalar(arrays.get("format_version", np.array(None)), "format_version")
    if version not in READABLE_VERSIONS:
        raise ValueError(f"{path} has checkpoint format version {version!r}; this version of "
                         f"deconv reads versions {READABLE_VERSIONS}")
    for key in ("epoch", "step", "seed"):
        if key not in arrays:
            raise ValueError(f"{path}: checkpoint is missing the entry {key!r}")
    epoch, step, seed = (int(_scalar(arrays[k], k)) for k in ("epoch", "step", "seed"))

    # -- parameters and buffers (in place, both: layers and the optimizer hold these arrays)
    params = {name: p.data for name, p in model.named_parameters()}
    params.update(model.named_buffers())
    saved = {k[len("model."):]: v for k, v in arrays.items() if k.startswith("model.")}
    missing = [n for n in params if n not in saved]
    extra = [n for n in saved if n not in params]
    if missing or extra:
        raise ValueError(
            f"{path}: the checkpoint's parameters do not match the model's: "
            + "; ".join(s for s in (
                f"missing from the checkpoint: {missing}" if missing else "",
                f"not in the model: {extra}" if extra else "") if s))
    for name, p in params.items():
        a = saved[name]
        if a.shape != p.shape or a.dtype != p.dtype:
            raise ValueError(
                f"{path}: parameter {name!r} is saved with shape {a.shape} and dtype {a.dtype}, "
                f"the model's has shape {p.shape} and dtype {p.dtype}")

    # -- generators of the model
    gens = dict(model_generators(model))
    saved_gens = {k[len("rng.model."):]: v for k, v in arrays.items()
                  if k.startswith("rng.model.")}
    missing = [n for n in gens if n not in saved_gens]
    extra = [n for n in saved_gens if n not in gens]
    if missing or extra:
        raise ValueError(
            f"{path}: the checkpoint's random generators do not match the model's "
            f"(np.random.Generator attributes of its modules, e.g. Dropout.rng): "
            f"missing from the checkpoint: {missing}; not in the model: {extra}")
    gen_states = {}
    for name, gen in gens.items():
        state = _decode_rng_state(saved_gens[name], f"rng.model.{name}")
        _check_rng_fits(gen, state, f"{path}: generator {name!r}")
        gen_states[name] = state
    rng_state = (_decode_rng_state(arrays["rng.shuffle"], "rng.shuffle")
                 if "rng.shuffle" in arrays else None)
    if rng is not None:
        if rng_state is None:
            raise ValueError(f"{path}: the checkpoint holds no shuffling generator state "
                             f"(rng.shuffle)")
        _check_rng_fits(rng, rng_state, f"{path}: shuffling generator")

    history = _history_from_arrays(arrays)

    # -- scheduler: loaded after the optimizer (it reads the optimizer's groups), so its
    # class and keys are checked here, before anything changes
    scheduler_state = None
    if scheduler is not None:
        if "scheduler" not in arrays:
            raise ValueError(f"{path}: the checkpoint holds no scheduler state")
        saved_type = str(arrays["scheduler"])
        if saved_type != type(scheduler).__name__:
            raise ValueError(f"{path}: the checkpoint holds a {saved_type} state, the scheduler "
                             f"is a {type(scheduler).__name__}")
        scheduler_state = {k[len("scheduler."):]: v for k, v in arrays.items()
                           if k.startswith("scheduler.")}
        expected = set(scheduler.state_dict())
        if set(scheduler_state) != expected:
            raise ValueError(f"{path}: the scheduler state's keys {sorted(scheduler_state)} are "
                             f"not those of this {type(scheduler).__name__} {sorted(expected)}")

    # -- optimizer: load_state_dict validates everything before changing anything,
    # so it goes first; nothing below can fail on checked input
    if optimizer is not None:
        if "optimizer" not in arrays:
            raise ValueError(f"{path}: the checkpoint holds no optimizer state")
        saved_type = str(arrays["optimizer"])
        if saved_type != type(optimizer).__name__:
            raise ValueError(f"{path}: the checkpoint holds a {saved_type} state, the optimizer "
                             f"is a {type(optimizer).__name__}")
        state_dict = {k[len("optimizer."):]: v for k, v in arrays.items()
                      if k.startswith("optimizer.")}
        try:
            optimizer.load_state_dict(state_dict)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{path}: optimizer state does not fit the optimizer: {err}") from None
    if scheduler is not None:
        try:
            scheduler.load_state_dict(scheduler_state)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{path}: scheduler state does not fit the scheduler: {err}") from None
    for name, p in params.items():
        p[...] = saved[name]               # in place: layers and optimizer hold these arrays
    for name, gen in gens.items():
        gen.bit_generator.state = gen_states[name]
    if rng is not None:
        rng.bit_generator.state = rng_state
    return {
        "format_version": version, "epoch": epoch, "step": step,
        "seed": None if seed < 0 else seed, "rng_state": rng_state, "history": history,
    }
