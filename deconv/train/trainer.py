"""A small, honest training loop with bitwise-resumable checkpoints.

:class:`Trainer` runs the textbook loop -- seeded shuffle, mini-batches,
forward, loss, backward, optimizer step -- and nothing else: no hidden
learning-rate schedule, no gradient clipping, no mixed precision. What it adds
is what makes a run trustworthy:

* **Reproducibility.** The only randomness the trainer owns is one
  ``np.random.Generator`` seeded with ``seed`` that draws one permutation of
  the training set per epoch. Together with deterministic kernels this makes
  two runs with the same seed bitwise identical.
* **Checkpoints** (:mod:`deconv.train.checkpoint`): one
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

import math
import os
import sys
import time

import numpy as np

from deconv.functional.validation import as_choice, as_int_at_least, as_real, as_samples
from deconv.nn.utils import clip_grad_norm_, clip_grad_value_
from deconv.train.checkpoint import (
    CHECKPOINT_NAME, HISTORY_KEYS, empty_history, load_checkpoint, model_generators,
    save_checkpoint,
)

__all__ = ["Trainer", "NonFiniteError"]

_PROGRESS_MODES = ("bar", "lines", "none")


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

def _check_lr(optimizer):
    """Refuse lr <= 0: torch's optimizers accept lr=0, but training with it is always a mistake."""
    lr = getattr(optimizer, "lr", None)
    if lr is not None:     # an optimizer without a global lr (user-defined): nothing to check
        as_real(lr, "lr (optimizer.lr)", 0, low_open=True)


def _check_pair(x, y, xname, yname):
    x, y = as_samples(x, xname), as_samples(y, yname)
    if len(x) != len(y):
        raise ValueError(
            f"{xname} and {yname} must have the same number of samples (axis 0), got "
            f"{len(x)} inputs and {len(y)} targets")
    if len(x) == 0:
        raise ValueError(f"{xname} is empty (0 samples)")
    for name, data in ((xname, x), (yname, y)):
        _check_finite(data, name)
    return x, y


def _check_finite(data, name):
    """NaN or inf in the data would only surface as a NonFiniteError mid-epoch:
    refuse it up front, naming the first bad position. Checked a block of
    samples at a time (data may be a broadcast view far larger than its memory)."""
    if data.dtype.kind not in "fc":
        return
    step = max(1, 2**20 // max(1, data[0].size))
    for start in range(0, len(data), step):
        bad = ~np.isfinite(data[start:start + step])
        if bad.any():
            pos = np.unravel_index(int(np.argmax(bad)), bad.shape)
            pos = (pos[0] + start,) + tuple(pos[1:])
            raise ValueError(f"{name} must be finite, got {data[pos]} at position "
                             f"{tuple(int(i) for i in pos)}")


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

def _is_plateau(scheduler):
    from deconv.optim.lr_scheduler import ReduceLROnPlateau
    return isinstance(scheduler, ReduceLROnPlateau)


def _check_scheduler(scheduler, optimizer):
    """None, or a deconv scheduler made over ``optimizer`` (TypeError/ValueError naming it)."""
    if scheduler is None:
        return None
    from deconv.optim.lr_scheduler import LRScheduler
    if not isinstance(scheduler, LRScheduler):
        kind = f"the class {scheduler.__name__}" if isinstance(scheduler, type) else \
            f"a {type(scheduler).__name__}"
        raise TypeError(f"scheduler must be a deconv.optim.lr_scheduler scheduler (StepLR, "
                        f"OneCycleLR, ReduceLROnPlateau, ...) or None, got {kind}")
    if getattr(scheduler, "optimizer", None) is not optimizer:
        raise ValueError("scheduler was made for another optimizer than the trainer's: build "
                         "it over the optimizer passed to Trainer")
    return scheduler


def _check_parts(model, loss, optimizer):
    """The model, loss and optimizer are instances of deconv's classes (not the
    classes themselves, nor arrays): TypeError naming the argument."""
    from deconv import nn, optim
    for name, value, cls, what in (("model", model, nn.Module, "deconv.nn.Module"),
                                   ("loss", loss, nn.Loss, "deconv.nn.Loss (MSELoss, ...)"),
                                   ("optimizer", optimizer, optim.Optimizer,
                                    "deconv.optim.Optimizer (SGD, Adam)")):
        if not isinstance(value, cls):
            kind = f"the class {value.__name__}" if isinstance(value, type) else \
                f"a {type(value).__name__}"
            raise TypeError(f"{name} must be an instance of {what}, got {kind}")
    if getattr(loss, "reduction", None) == "none":
        raise ValueError("loss must reduce each batch to a number: its reduction is 'none'; "
                         "use reduction='mean' (or 'sum')")


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
    scheduler : deconv.optim.lr_scheduler scheduler, optional
        Made over ``optimizer``; stepped after every optimizer step
        (``scheduler_interval='batch'``, e.g. OneCycleLR, warm-up) or after
        every epoch's validation (``'epoch'``, the default). ReduceLROnPlateau
        steps per epoch on the validation metric (the epoch's train loss
        without a validation set). Its state goes into the checkpoints.
    scheduler_interval : {'epoch', 'batch'}, default 'epoch'
    clip_grad_norm : float, optional
        If given (> 0), :func:`deconv.nn.utils.clip_grad_norm_` scales the
        gradients of the model's parameters to this total 2-norm before each
        step (after the finiteness checks).
    clip_grad_value : float, optional
        If given (> 0), :func:`deconv.nn.utils.clip_grad_value_` clamps each
        gradient element to ``[-v, v]`` before each step (before the norm
        clipping when both are given).

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
    finiteness checks, ``optimizer.step()``. The backward runs with the
    model's ``input_grad`` False (restored after it): the batch is data,
    whose gradient nobody uses, so the first layer skips that pass (see
    :class:`deconv.nn.Module`). The model is in training mode
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
                 out_dir=None, checkpoint_every=1, progress=None, stream=None, scheduler=None,
                 scheduler_interval="epoch", clip_grad_norm=None, clip_grad_value=None):
        _check_parts(model, loss, optimizer)
        self.scheduler = _check_scheduler(scheduler, optimizer)
        self.scheduler_interval = as_choice(scheduler_interval, "scheduler_interval",
                                            ("epoch", "batch"))
        if self.scheduler_interval == "batch" and _is_plateau(self.scheduler):
            raise ValueError("scheduler_interval='batch' with ReduceLROnPlateau: it steps on "
                             "an epoch's metric; use scheduler_interval='epoch'")
        self.clip_grad_norm = None if clip_grad_norm is None else as_real(
            clip_grad_norm, "clip_grad_norm", 0, low_open=True)
        self.clip_grad_value = None if clip_grad_value is None else as_real(
            clip_grad_value, "clip_grad_value", 0, low_open=True)
        self.model = model
        self.loss = loss
        self.optimizer = optimizer
        self.batch_size = batch_size
        self.epochs = epochs
        self.seed = as_int_at_least(seed, "seed", 0)
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
        self.history = empty_history()

    # -- checks ----------------------------------------------------------------

    def _check_settings(self):
        """The hyper-parameters; run again by fit() because attributes may change in between."""
        self.batch_size = as_int_at_least(self.batch_size, "batch_size", 1)
        self.epochs = as_int_at_least(self.epochs, "epochs", 0)
        self.checkpoint_every = as_int_at_least(self.checkpoint_every, "checkpoint_every", 1)
        as_choice(self.progress, "progress", _PROGRESS_MODES + (None,))
        _check_lr(self.optimizer)

    def _probe(self, x, y, xname, yname):
        """Run the model on two samples and let the loss check their targets.

        Done in eval mode (Dropout draws nothing) and with the model's
        generators saved and restored around it, so that the streams used by
        training are exactly where they were; only forward passes run, so no
        gradient is touched.
        """
        k = min(2, len(x))
        gens = model_generators(self.model)
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
                        rng=self.rng, seed=self.seed, history=self.history,
                        scheduler=self.scheduler)
        return path

    def load_checkpoint(self, path):
        """Restore model, optimizer, generators, counters and history from ``path``.

        Returns the dict of :func:`load_checkpoint`. The shuffling generator
        takes the saved state (the ``seed`` argument only matters for a fresh
        start).
        """
        info = load_checkpoint(path, self.model, self.optimizer, rng=self.rng,
                               scheduler=self.scheduler)
        self.epoch = info["epoch"]
        self.step = info["step"]
        self.history = info["history"]
        return info

    # -- running -------------------------------------------------------------

    def predict(self, x, batch_size=None):
        """The model's output on ``x`` in eval mode, in batches, joined along axis 0."""
        x = as_samples(x, "x")
        bs = (self.batch_size if batch_size is None
              else as_int_at_least(batch_size, "batch_size", 1))
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
        params = [p for _, p in named]
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
            # the data needs no gradient: the first layer skips its input-gradient pass
            wanted = self.model.input_grad
            self.model.input_grad = False
            try:
                self.model.backward(self.loss.backward())
            finally:
                self.model.input_grad = wanted
            for name, p in named:
                if p.grad is not None and not np.isfinite(p.grad).all():
                    raise NonFiniteError(
                        f"the gradient of parameter {name!r} contains NaN or inf at {where} "
                        f"(loss {value:.6g}); the optimizer step was not taken (parameters are "
                        f"those after step {self.step})" + self._checkpoint_note(),
                        epoch=epoch, step=self.step + 1, tensor=f"gradient of {name!r}")
            if self.clip_grad_value is not None:
                clip_grad_value_(params, self.clip_grad_value)
            if self.clip_grad_norm is not None:
                clip_grad_norm_(params, self.clip_grad_norm)
            self.optimizer.step()
            self.step += 1
            if self.scheduler is not None and self.scheduler_interval == "batch":
                self.scheduler.step()
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
        if self.scheduler is not None and self.scheduler_interval == "epoch":
            if _is_plateau(self.scheduler):
                self.scheduler.step(train_loss if val_metric is None else val_metric)
            else:
                self.scheduler.step()
        seconds = time.perf_counter() - t0

        self.epoch = epoch
        for key, value in zip(HISTORY_KEYS, (epoch, self.step, train_loss, val_metric, seconds)):
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
