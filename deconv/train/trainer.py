"""A small, honest training loop with bitwise-resumable checkpoints.

:class:`Trainer` runs the textbook loop -- seeded shuffle, mini-batches,
forward, loss, backward, optimizer step -- and nothing else: no hidden
learning-rate schedule, no gradient clipping, no mixed precision. What it adds
is what makes a run trustworthy:

* **Reproducibility.** The only randomness the trainer owns is one
  ``np.random.Generator`` seeded with ``seed`` that draws one permutation of
  the training set per epoch. Together with deterministic kernels this makes
  two runs with the same seed bitwise identical.
* **Checkpoints** (:func:`save_checkpoint`, :func:`load_checkpoint`): one
  ``.npz`` file with the parameters, the optimizer state, the epoch and step
  counters, the state of the shuffling generator *and* of every
  ``np.random.Generator`` held by a module of the model (Dropout's ``rng``),
  the history and a format version. Written atomically, read with
  ``allow_pickle=False``. Training ``N`` epochs in one go, or ``k`` epochs,
  then loading the checkpoint into *fresh* model and optimizer objects and
  training the remaining ``N - k``, gives bitwise the same parameters and
  history (apart from the wall times).
* **Fail fast, fail clean.** Bad hyper-parameters and targets that do not fit
  the model's output are refused before the first step; a NaN or infinite
  loss or gradient raises :class:`NonFiniteError` *before* the optimizer
  step, and the last checkpoint on disk is never touched by a failing run.

Examples
--------
>>> import io
>>> import numpy as np
>>> from deconv import nn, optim
>>> from deconv.train import Trainer
>>> rng = np.random.default_rng(0)
>>> x = rng.standard_normal((64, 3)).astype(np.float32)
>>> y = x @ np.array([[1.0], [-2.0], [0.5]], dtype=np.float32)
>>> model = nn.Linear(3, 1, rng=0)
>>> trainer = Trainer(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.1),
...                   batch_size=16, epochs=30, seed=0, progress="none")
>>> history = trainer.fit(x, y, x[:16], y[:16])
>>> history["val_metric"][-1] < 1e-4
True
>>> sorted(history)
['epoch', 'seconds', 'steps', 'train_loss', 'val_metric']
"""

import contextlib
import json
import math
import numbers
import os
import secrets
import sys
import time

import numpy as np

__all__ = [
    "Trainer", "NonFiniteError", "save_checkpoint", "load_checkpoint",
    "CHECKPOINT_FORMAT", "CHECKPOINT_VERSION", "CHECKPOINT_NAME",
]

#: value of the ``format`` entry of every checkpoint
CHECKPOINT_FORMAT = "deconv.train.checkpoint"
#: version of the layout described in :func:`save_checkpoint`; bumped on any incompatible change
CHECKPOINT_VERSION = 1
#: file name of the checkpoint that :class:`Trainer` keeps in ``out_dir``
CHECKPOINT_NAME = "checkpoint.npz"

_PROGRESS_MODES = ("bar", "lines", "none")
_HISTORY_KEYS = ("epoch", "steps", "train_loss", "val_metric", "seconds")


class NonFiniteError(FloatingPointError):
    """Training met a NaN or infinite value; raised before the optimizer step that would use it.

    Attributes
    ----------
    epoch : int
        1-based epoch in which it happened.
    step : int
        1-based number of the optimizer step that was about to be taken
        (``Trainer.step + 1``), or that was just taken for ``tensor`` names
        starting with ``"parameter"``.
    tensor : str
        What was not finite: ``"loss"``, ``"gradient of '<name>'"`` or
        ``"parameter '<name>'"`` (an update that overflowed).
    """

    def __init__(self, message, *, epoch, step, tensor):
        super().__init__(message)
        self.epoch = epoch
        self.step = step
        self.tensor = tensor


# ---------------------------------------------------------------------------
# argument checking
# ---------------------------------------------------------------------------

def _int_arg(value, name, minimum):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r}")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def _check_lr(optimizer):
    """Refuse lr <= 0: torch's optimizers accept lr=0, but training with it is always a mistake."""
    lr = getattr(optimizer, "lr", None)
    if lr is None:         # an optimizer without a global lr (user-defined): nothing to check
        return
    if isinstance(lr, (bool, np.bool_)) or not isinstance(lr, numbers.Real):
        raise TypeError(f"lr (optimizer.lr) must be a real number, got {lr!r}")
    if not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr (optimizer.lr) must be a finite number > 0, got {lr!r}")


def _as_data(value, name):
    if value is None:
        raise TypeError(f"{name} must be an array, got None")
    value = np.asarray(value)
    if value.ndim == 0:
        raise ValueError(f"{name} must have a sample axis 0, got a 0-d array")
    if value.dtype == object:
        raise TypeError(f"{name} must be a numeric array, got dtype object")
    return value


def _check_pair(x, y, xname, yname):
    x, y = _as_data(x, xname), _as_data(y, yname)
    if len(x) != len(y):
        raise ValueError(
            f"{xname} and {yname} must have the same number of samples (axis 0), got "
            f"{len(x)} inputs and {len(y)} targets")
    if len(x) == 0:
        raise ValueError(f"{xname} is empty (0 samples)")
    return x, y


# ---------------------------------------------------------------------------
# random generators: finding them and writing their state without pickle
# ---------------------------------------------------------------------------

def _model_generators(model):
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
    history = _empty_history() if history is None else history
    n = len(history["epoch"])
    for k in _HISTORY_KEYS:
        if k not in history or len(history[k]) != n:
            raise ValueError(f"history must have the keys {_HISTORY_KEYS}, each a list of "
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


def _empty_history():
    return {k: [] for k in _HISTORY_KEYS}


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
                    history=None):
    """Write a training checkpoint to one ``.npz`` file, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Destination, written exactly there (no suffix is added). The directory
        must exist. An existing file is replaced only once the new one is
        complete: a failure at any point leaves it as it was.
    model : deconv.nn.Module
        Its parameters (by :meth:`~deconv.nn.Module.named_parameters` name)
        and the state of every ``np.random.Generator`` its modules hold.
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

    Notes
    -----
    Format version 1 (:data:`CHECKPOINT_VERSION`); every entry is a plain
    array, so ``np.load(path, allow_pickle=False)`` reads it:

    ============================ =================================================
    ``format``                   0-d str, ``"deconv.train.checkpoint"``
    ``format_version``           0-d int64, ``1``
    ``epoch``, ``step``          0-d int64: completed epochs, optimizer steps
    ``seed``                     0-d int64 (``-1`` if not given)
    ``model.<name>``             each parameter, its shape and dtype
    ``optimizer``                0-d str, the optimizer's class name (absent if none)
    ``optimizer.<key>``          each ``state_dict()`` entry; numbers as 0-d arrays
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
        "epoch": np.array(_int_arg(epoch, "epoch", 0), dtype=np.int64),
        "step": np.array(_int_arg(step, "step", 0), dtype=np.int64),
        "seed": np.array(-1 if seed is None else _int_arg(seed, "seed", 0), dtype=np.int64),
    }
    for name, p in model.named_parameters():
        arrays[f"model.{name}"] = p.data
    if optimizer is not None:
        arrays["optimizer"] = np.array(type(optimizer).__name__)
        for key, value in optimizer.state_dict().items():
            value = np.asarray(value)
            if value.dtype.kind not in "biufU":
                raise TypeError(f"optimizer.state_dict()[{key!r}] is not a number or a numeric "
                                f"array ({value.dtype}); it cannot be stored without pickle")
            arrays[f"optimizer.{key}"] = value
    if rng is not None:
        arrays["rng.shuffle"] = _encode_rng_state(rng.bit_generator.state)
    for name, gen in _model_generators(model):
        arrays[f"rng.model.{name}"] = _encode_rng_state(gen.bit_generator.state)
    arrays.update(_history_arrays(history))
    _atomic_savez(path, arrays)


def load_checkpoint(path, model, optimizer=None, rng=None):
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
    if version != CHECKPOINT_VERSION:
        raise ValueError(f"{path} has checkpoint format version {version!r}; this version of "
                         f"deconv reads version {CHECKPOINT_VERSION} only")
    for key in ("epoch", "step", "seed"):
        if key not in arrays:
            raise ValueError(f"{path}: checkpoint is missing the entry {key!r}")
    epoch, step, seed = (int(_scalar(arrays[k], k)) for k in ("epoch", "step", "seed"))

    # -- parameters
    params = dict(model.named_parameters())
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
        if a.shape != p.data.shape or a.dtype != p.data.dtype:
            raise ValueError(
                f"{path}: parameter {name!r} is saved with shape {a.shape} and dtype {a.dtype}, "
                f"the model's has shape {p.data.shape} and dtype {p.data.dtype}")

    # -- generators of the model
    gens = dict(_model_generators(model))
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

    for name, p in params.items():
        p.data[...] = saved[name]          # in place: layers and optimizer hold these arrays
    for name, gen in gens.items():
        gen.bit_generator.state = gen_states[name]
    if rng is not None:
        rng.bit_generator.state = rng_state
    return {
        "format_version": version, "epoch": epoch, "step": step,
        "seed": None if seed < 0 else seed, "rng_state": rng_state, "history": history,
    }


# ---------------------------------------------------------------------------
# progress reporting
# ---------------------------------------------------------------------------

def _metric_name(metric):
    if metric is None:
        return "val loss"
    name = getattr(metric, "__name__", None)
    return f"val {name}" if name and name.isidentifier() else "val metric"


def _format_value(value):
    return "-" if value is None else f"{value:.6g}"


class _Progress:
    """Reports training: a tqdm bar per epoch, one plain line per epoch, or nothing."""

    def __init__(self, mode, stream, epochs, metric_name):
        self.stream = stream
        self.epochs = epochs
        self.metric_name = metric_name
        self.tqdm = None
        if mode == "bar":
            try:
                from tqdm import tqdm  # optional dependency, imported only when wanted
            except ImportError:
                mode = "lines"
            else:
                self.tqdm = tqdm
        self.mode = mode
        self.bar = None

    def start_epoch(self, epoch, n_batches):
        if self.mode == "bar":
            self.bar = self.tqdm(total=n_batches, desc=f"epoch {epoch}/{self.epochs}",
                                 file=self.stream, leave=True, unit="batch",
                                 dynamic_ncols=True)

    def batch(self, running_loss):
        if self.bar is not None:
            self.bar.set_postfix_str(f"train loss {running_loss:.4g}", refresh=False)
            self.bar.update(1)

    def end_epoch(self, epoch, train_loss, val_metric, seconds):
        summary = (f"train loss {_format_value(train_loss)}, "
                   f"{self.metric_name} {_format_value(val_metric)}")
        if self.bar is not None:
            self.bar.set_postfix_str(summary)
            self.bar.close()
            self.bar = None
        elif self.mode == "lines":
            self.stream.write(f"epoch {epoch}/{self.epochs}: {summary}, {seconds:.2f} s\n")
            self.stream.flush()

    def close(self):
        if self.bar is not None:        # an exception in mid-epoch: do not leave a bar behind
            self.bar.close()
            self.bar = None


def _auto_progress(stream):
    isatty = getattr(stream, "isatty", None)
    try:
        tty = bool(isatty()) if isatty is not None else False
    except (OSError, ValueError):      # closed or detached stream
        tty = False
    return "bar" if tty else "lines"


# ---------------------------------------------------------------------------
# the trainer
# ---------------------------------------------------------------------------

class Trainer:
    """Mini-batch training of a :class:`deconv.nn.Module` with a loss and an optimizer.

    Parameters
    ----------
    model : deconv.nn.Module
    loss : deconv.nn.Loss
        ``forward(prediction, target) -> float`` and ``backward()``. The
        training loss is its value on each mini-batch.
    optimizer : deconv.optim.Optimizer
        Over (a subset of) the model's parameters; parameters it does not
        hold are frozen but still saved in checkpoints.
    batch_size : int
        Samples per step, >= 1; the last batch of an epoch holds the
        remainder (no sample is dropped).
    epochs : int
        Total number of epochs, >= 0, counting those restored from a
        checkpoint: :meth:`fit` trains epochs ``epoch + 1 .. epochs``.
    seed : int
        Seed (>= 0) of the generator that shuffles the training set, one
        fresh permutation per epoch. The model's own generators (Dropout)
        are seeded when the model is built.
    metric : callable, optional
        ``metric(prediction, target) -> float`` on the whole validation set
        (predictions of all batches joined), e.g. accuracy or PSNR. Default:
        ``loss`` on the validation set.
    out_dir : str or os.PathLike, optional
        Directory (created if needed) where :data:`CHECKPOINT_NAME` is
        written after every ``checkpoint_every``-th epoch and after the
        last one. None: no checkpoints.
    checkpoint_every : int, default 1
        Epochs between checkpoints, >= 1.
    progress : {'bar', 'lines', 'none'} or None
        'bar': a tqdm bar per epoch (falls back to 'lines' if tqdm is not
        installed); 'lines': one line per epoch (epoch, train loss,
        validation metric, seconds); 'none': silent. None (default): 'bar'
        if ``stream`` is a terminal, else 'lines' -- logs never get bar
        redraws.
    stream : file-like, optional
        Where progress goes; default ``sys.stderr`` (looked up at each
        :meth:`fit`).

    Attributes
    ----------
    epoch : int
        Completed epochs.
    step : int
        Optimizer steps taken.
    history : dict of lists
        One entry per completed epoch: ``epoch`` (1-based), ``steps``
        (optimizer steps so far), ``train_loss`` (mean over the epoch's
        samples of the mini-batch losses, each weighted by its batch size,
        measured during the epoch), ``val_metric`` (None without a
        validation set) and ``seconds`` (wall time of training and
        validation).
    rng : np.random.Generator
        The shuffling generator (PCG64).

    Raises
    ------
    ValueError
        ``batch_size < 1``, ``epochs < 0``, ``lr <= 0`` (read from
        ``optimizer.lr``), ``seed < 0``, ``checkpoint_every < 1``, an unknown
        ``progress``, or an optimizer holding parameters that are not the
        model's. :meth:`fit` also refuses inputs and targets of different
        lengths and targets that the loss cannot compare with the model's
        output.

    Notes
    -----
    One step is: ``model.zero_grad()``, ``out = model(x_batch)``,
    ``value = loss(out, y_batch)``, ``model.backward(loss.backward())``,
    finiteness checks, ``optimizer.step()``. The model is in training mode
    during the epoch and in eval mode for validation, which runs only
    forward passes (no gradients are touched) in batches of ``batch_size``.
    :meth:`fit` leaves the model in eval mode.

    A NaN or infinite loss or gradient raises :class:`NonFiniteError`
    before the step, so the parameters are those after the last good step
    and the checkpoint on disk is the last good one. An update that
    overflows finite parameters to inf is caught right after the step
    (the in-memory model is then damaged, the file is not).

    To resume, build the model and optimizer as before, create a Trainer
    with the same settings, call :meth:`load_checkpoint`, then :meth:`fit`.
    Resuming is bitwise exact when the model's randomness lives in
    ``np.random.Generator`` attributes of its modules (as in deconv.nn).
    """

    def __init__(self, model, loss, optimizer, *, batch_size, epochs, seed, metric=None,
                 out_dir=None, checkpoint_every=1, progress=None, stream=None):
        self.model = model
        self.loss = loss
        self.optimizer = optimizer
        self.batch_size = batch_size
        self.epochs = epochs
        self.seed = _int_arg(seed, "seed", 0)
        if metric is not None and not callable(metric):
            raise TypeError(f"metric must be callable (metric(prediction, target) -> float) "
                            f"or None, got {metric!r}")
        self.metric = metric
        self.out_dir = None if out_dir is None else os.fspath(out_dir)
        self.checkpoint_every = checkpoint_every
        self.progress = progress
        self.stream = stream
        self._check_settings()
        own = {id(p) for p in model.parameters()}
        foreign = [i for i, p in enumerate(getattr(optimizer, "params", ())) if id(p) not in own]
        if foreign:
            raise ValueError(
                f"optimizer holds parameters that are not the model's (positions {foreign}); "
                f"they would be updated but not checkpointed")
        self.rng = np.random.default_rng(self.seed)
        self.epoch = 0
        self.step = 0
        self.history = _empty_history()

    # -- checks ----------------------------------------------------------------

    def _check_settings(self):
        """The hyper-parameters; run again by fit() because attributes may change in between."""
        self.batch_size = _int_arg(self.batch_size, "batch_size", 1)
        self.epochs = _int_arg(self.epochs, "epochs", 0)
        self.checkpoint_every = _int_arg(self.checkpoint_every, "checkpoint_every", 1)
        if self.progress is not None and self.progress not in _PROGRESS_MODES:
            raise ValueError(f"progress must be one of {_PROGRESS_MODES} or None (automatic), "
                             f"got {self.progress!r}")
        _check_lr(self.optimizer)

    def _probe(self, x, y, xname, yname):
        """Run the model on two samples and let the loss check their targets.

        Done in eval mode (Dropout draws nothing) and with the model's
        generators saved and restored around it, so that the streams used by
        training are exactly where they were; only forward passes run, so no
        gradient is touched.
        """
        k = min(2, len(x))
        gens = _model_generators(self.model)
        states = [g.bit_generator.state for _, g in gens]
        self.model.eval()
        try:
            try:
                out = self.model(x[:k])
            except (TypeError, ValueError) as err:
                raise type(err)(f"the model fails on {xname}[:{k}] (shape {x[:k].shape}): "
                                f"{err}") from None
            try:
                self.loss.forward(out, y[:k])
            except (TypeError, ValueError) as err:
                raise type(err)(
                    f"{yname} does not fit the model's output for {type(self.loss).__name__}: "
                    f"the model maps {xname}[:{k}] to shape {np.shape(out)}, and {yname}[:{k}] "
                    f"has shape {y[:k].shape} (dtype {y.dtype}): {err}") from None
        finally:
            for (_, g), s in zip(gens, states):
                g.bit_generator.state = s

    # -- checkpoints --------------------------------------------------------------

    @property
    def checkpoint_path(self):
        """``out_dir/checkpoint.npz``, or None without ``out_dir``."""
        return None if self.out_dir is None else os.path.join(self.out_dir, CHECKPOINT_NAME)

    def save_checkpoint(self, path=None):
        """Write the current state with :func:`save_checkpoint`; returns the path.

        Default path: :attr:`checkpoint_path`.
        """
        path = self.checkpoint_path if path is None else path
        if path is None:
            raise ValueError("save_checkpoint needs a path (this Trainer has no out_dir)")
        save_checkpoint(path, self.model, self.optimizer, epoch=self.epoch, step=self.step,
                        rng=self.rng, seed=self.seed, history=self.history)
        return path

    def load_checkpoint(self, path):
        """Restore model, optimizer, generators, counters and history from ``path``.

        Returns the dict of :func:`load_checkpoint`. The shuffling generator
        takes the saved state (the ``seed`` argument only matters for a fresh
        start).
        """
        info = load_checkpoint(path, self.model, self.optimizer, rng=self.rng)
        self.epoch = info["epoch"]
        self.step = info["step"]
        self.history = info["history"]
        return info

    # -- running -------------------------------------------------------------

    def predict(self, x, batch_size=None):
        """The model's output on ``x`` in eval mode, in batches, joined along axis 0."""
        x = _as_data(x, "x")
        bs = self.batch_size if batch_size is None else _int_arg(batch_size, "batch_size", 1)
        self.model.eval()
        outs = [self.model(x[i:i + bs]) for i in range(0, len(x), bs)]
        return np.concatenate(outs, axis=0)

    def fit(self, x_train, y_train, x_val=None, y_val=None):
        """Train from epoch ``self.epoch + 1`` to ``self.epochs``.

        Parameters
        ----------
        x_train, y_train : array_like
            Inputs and targets, samples along axis 0.
        x_val, y_val : array_like, optional
            Validation set (both or neither), scored with ``metric`` after
            every epoch.

        Returns
        -------
        dict of lists
            A copy of :attr:`history`.

        Raises
        ------
        ValueError
            Bad settings (see the class), mismatched lengths, or targets
            that do not fit the model's output -- all before any step.
        NonFiniteError
            A NaN/inf loss or gradient (before the step using it) or
            parameter (after an overflowing step).
        """
        self._check_settings()
        x_train, y_train = _check_pair(x_train, y_train, "x_train", "y_train")
        if (x_val is None) != (y_val is None):
            raise ValueError("give both x_val and y_val, or neither")
        if x_val is not None:
            x_val, y_val = _check_pair(x_val, y_val, "x_val", "y_val")
        if self.epoch > self.epochs:
            raise ValueError(f"epochs={self.epochs} is less than the {self.epoch} epochs "
                             f"already done (restored from a checkpoint?)")
        self._probe(x_train, y_train, "x_train", "y_train")
        if x_val is not None and self.metric is None:
            # with a custom metric the validation targets are the metric's business
            self._probe(x_val, y_val, "x_val", "y_val")
        if self.out_dir is not None:
            os.makedirs(self.out_dir, exist_ok=True)

        mode = self.progress
        stream = sys.stderr if self.stream is None else self.stream
        if mode is None:
            mode = _auto_progress(stream)
        progress = _Progress(mode, stream, self.epochs, _metric_name(self.metric))
        try:
            while self.epoch < self.epochs:
                self._run_epoch(x_train, y_train, x_val, y_val, progress)
        finally:
            progress.close()
            self.model.eval()
        return {k: list(v) for k, v in self.history.items()}

    def _run_epoch(self, x_train, y_train, x_val, y_val, progress):
        epoch = self.epoch + 1
        n, bs = len(x_train), self.batch_size
        n_batches = -(-n // bs)
        named = self.model.named_parameters()
        t0 = time.perf_counter()
        progress.start_epoch(epoch, n_batches)
        order = self.rng.permutation(n)
        self.model.train()
        total = 0.0                        # float64 sum of batch_loss * batch_size
        for b in range(n_batches):
            idx = order[b * bs:(b + 1) * bs]
            xb, yb = x_train[idx], y_train[idx]
            self.model.zero_grad()
            out = self.model(xb)
            value = float(self.loss.forward(out, yb))
            where = f"epoch {epoch}, step {self.step + 1} (batch {b + 1}/{n_batches})"
            if not math.isfinite(value):
                raise NonFiniteError(
                    f"the loss is {value} at {where}; the optimizer step was not taken "
                    f"(parameters are those after step {self.step})"
                    + self._checkpoint_note(),
                    epoch=epoch, step=self.step + 1, tensor="loss")
            self.model.backward(self.loss.backward())
            for name, p in named:
                if p.grad is not None and not np.isfinite(p.grad).all():
                    raise NonFiniteError(
                        f"the gradient of parameter {name!r} contains NaN or inf at {where} "
                        f"(loss {value:.6g}); the optimizer step was not taken (parameters are "
                        f"those after step {self.step})" + self._checkpoint_note(),
                        epoch=epoch, step=self.step + 1, tensor=f"gradient of {name!r}")
            self.optimizer.step()
            self.step += 1
            # finite gradients can still overflow an update (a huge lr): stop before
            # such parameters could reach a checkpoint
            for name, p in named:
                if not np.isfinite(p.data).all():
                    raise NonFiniteError(
                        f"parameter {name!r} became NaN or inf after the optimizer step at "
                        f"{where}: the update overflowed (is lr too large?)"
                        + self._checkpoint_note(),
                        epoch=epoch, step=self.step, tensor=f"parameter {name!r}")
            total += value * len(idx)
            progress.batch(total / min(n, (b + 1) * bs))
        train_loss = total / n

        val_metric = None
        if x_val is not None:
            pred = self.predict(x_val)
            scorer = self.loss.forward if self.metric is None else self.metric
            val_metric = float(scorer(pred, y_val))
        seconds = time.perf_counter() - t0

        self.epoch = epoch
        for key, value in zip(_HISTORY_KEYS, (epoch, self.step, train_loss, val_metric, seconds)):
            self.history[key].append(value)
        progress.end_epoch(epoch, train_loss, val_metric, seconds)
        if self.out_dir is not None and (epoch % self.checkpoint_every == 0
                                         or epoch == self.epochs):
            self.save_checkpoint()

    def _checkpoint_note(self):
        path = self.checkpoint_path
        if path is None or not os.path.exists(path):
            return ""
        return f"; the last good checkpoint, {path}, is left as it was"
