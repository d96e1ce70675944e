"""``deconv train MODEL``: train one of the five model families on its data.

A recipe per family says which data it trains on and its default
hyper-parameters; :func:`run` builds the model, trains it with
:class:`deconv.train.Trainer`, prints the final validation metrics next to the
family's baselines, and writes the checkpoint and a PNG figure of samples.
A recipe may also name a learning-rate schedule and a ``--quick`` variant
(fewer epochs and examples, under a minute on 2 cores).

Super-resolution validates on whole held-out images of different sizes
(:func:`deconv.data.superres_corpus`): the trainer's per-epoch validation loss is
measured on a centre crop of each (:func:`monitor_crops`), and the final
metrics on the whole images (:func:`deconv.models.predict_images`).
"""

import os
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from deconv import models, optim
from deconv.functional.validation import as_bool, as_choice, as_int_at_least, as_real
from deconv.models import compression, data, denoising, recognition, text_restoration
from deconv.train import CHECKPOINT_NAME, Trainer


@dataclass(frozen=True)
class Recipe:
    """Data and default hyper-parameters of one family (measured to beat its baseline)."""
    load: object          # (**options) -> deconv.data.Dataset
    epochs: int
    batch_size: int
    lr: float
    headline: str         # the metric printed first and compared with the baselines
    # the family's own options of ``deconv train`` and their defaults; they go to
    # ``load`` and to the model's builder
    options: dict = field(default_factory=dict)
    # "cosine": the learning rate follows a half cosine from lr to 0 over every step of the
    # run (CosineAnnealingLR stepped per batch); None: constant
    schedule: object = None
    # --quick: overrides of epochs / batch_size / lr, and keyword arguments of ``load``
    # under "data"; None: the family has no quick variant
    quick: object = None
    # (rng, **options) -> the model, and () -> the loss; None: models.build(name) and
    # models.loss(name)
    build: object = None
    loss: object = None
    # the default optimizer (one of OPTIMIZERS) and its weight decay; the decay is the
    # recipe's for that optimizer only: another ``--optimizer`` starts from 0, since
    # Adam's and SGD's decay is an L2 penalty on the gradient and AdamW's shrinks the
    # weights directly, so one number does not mean the same thing to both
    optimizer: str = "adam"
    weight_decay: float = 0.0


RECIPES = {
    # grey held-out photographs at sigma 25/255 (deconv.models.denoising); measured on the
    # 2-core machine (idle at first, then shared): 30.25 dB in 5.9 min (wiener 28.02, tv 28.98);
    # re-run on the final kernels (blocked float32 sums): 30.16 dB in 4.6 min, 1 thread,
    # shared; --quick 28.99 dB in 16 s
    "skip": Recipe(lambda count=denoising.COUNT: denoising.denoising_corpus(count=count),
                   epochs=2, batch_size=16, lr=2e-3, headline="psnr", schedule="cosine",
                   quick={"epochs": 1, "data": {"count": 4096}},
                   build=lambda rng: denoising.unet(rng=rng)),
    # held-out standard-library files, 15 % corrupted (deconv.models.text_restoration): five
    # residual dilated blocks (GroupNorm, GELU, conv) that see the whole window, the corrupted
    # positions weighted 8 times in the loss, every training window twice: 68.8 % restored
    # (91.4 % of all characters) against the count model's 57.3 %, 14.1 min on one thread of
    # the shared machine (12.4 min of CPU); target 75 %: not met. 3 epochs: 69.9 % (25.5 min,
    # about 19 min of CPU: over the budget). Before (ReLU blocks, plain cross-entropy):
    # 63.2 %. Re-run on the final code (the Numba GELU): 69.2 % (91.5 %) in 6.5 min, 2 threads,
    # idle machine; --quick 54.4 % (88.0 %) in 32 s the whole run. On the branch:
    # --quick 54.6 % (88.0 %) in 47 s of training, 59 s the whole run, one thread
    "text": Recipe(lambda count=text_restoration.COUNT:
                   text_restoration.stdlib_corpus(count, marked=True),
                   epochs=2, batch_size=32, lr=4e-3, headline="accuracy_corrupted",
                   schedule="cosine", quick={"epochs": 1, "data": {"count": 16384}},
                   build=lambda rng: text_restoration.conv_stack(rng=rng),
                   loss=text_restoration.RestorationLoss),
    # conv + transposed conv + pool + linear on the digits, their one-pixel shifts and two
    # copies slanted ~14 degrees left and right (deconv.models.recognition); baselines:
    # logistic regression 90.0 %, RBF SVM 94.2 %. Measured on 2 shared cores, 1 thread:
    # seeds 0 / 1 / 2: 98.89 / 98.89 / 99.17 % (4, 4, 3 errors of 360), mean 98.98 %
    # (target >= 98.5 %; without the slanted copies 98.33 / 98.61 / 98.33 %); 6 min a run
    # on the loaded machine (an estimated 75 s idle); --quick 99.44 % (seed 0) in 52 s
    "classifier": Recipe(lambda shift=1, slant=2: recognition.shifted_digits(shift, slant),
                         epochs=10, batch_size=64, lr=2e-3, headline="accuracy",
                         schedule="cosine",
                         quick={"epochs": 2},
                         build=lambda rng: recognition.digit_classifier(rng=rng),
                         loss=recognition.classifier_loss),
    # three stride-2 convs to a 48-number code and back, on colour patches of the image
    # corpus (deconv.models.compression); baselines: bilinear from 4x4 22.25 dB / MAE 0.0443,
    # PCA with 48 components 24.87 / 0.0335. Channels 64/128 and squared + 0.1 absolute error,
    # 24 epochs, measured on 2 shared cores: 24.57 dB / 0.0361 (target, beat both: NOT met,
    # PCA leads by 0.30 dB); 36 min on the loaded machine, 16 s an epoch once it was idle
    # (about 7 min, 1 thread); the validation loss was flat over the last 5 epochs. Re-run
    # on the final kernels: 24.56 / 0.0364 in 7.1 min (1 thread, shared). 32768 patches x
    # 12 epochs (twice the steps, over the budget): 24.69 / 0.0350 against PCA 24.91 /
    # 0.0332 fitted on those patches, 17.4 min on the loaded machine. Ranked on short
    # PyTorch runs and not kept: 3x3 residual blocks in the decoder, a stride-1 conv on each
    # side of the code, He initialisation. Before:
    # channels 48/96, MSE, 12 epochs: 24.37 / 0.0383. --quick: 7 epochs of 4096 patches in
    # batches of 16 (1792 steps; 128 steps gave 14.50 dB): 22.52 dB / MAE 0.0479 in 41 s on
    # 2 idle cores, above bilinear's PSNR (22.25), not its MAE (0.0443); lr 4e-3: 21.89 dB
    "autoencoder": Recipe(lambda count=compression.COUNT: compression.colour_patches(count),
                          epochs=24, batch_size=32, lr=2e-3, headline="psnr", schedule="cosine",
                          quick={"epochs": 7, "batch_size": 16, "data": {"count": 4096}},
                          build=lambda rng: compression.patch_autoencoder(rng=rng),
                          loss=compression.patch_loss),
    # FSRCNN on the luminance of the image corpus, validated on whole held-out images;
    # measured on 2 shared cores: x2 33.90 dB (bicubic 32.38) in 4.5 min, x4 29.43 dB
    # (bicubic 28.41) in 4.8 min; --quick 32.91 / 28.89 dB in 39 s
    "superres": Recipe(lambda scale, upsample, count=data.SUPERRES_COUNT:
                       data.superres_corpus(scale=scale, count=count),
                       epochs=30, batch_size=32, lr=1e-3, headline="psnr",
                       options={"scale": 2, "upsample": "deconv"}, schedule="cosine",
                       quick={"epochs": 10, "data": {"count": 2048}},
                       build=lambda rng, scale, upsample: models.fsrcnn(scale, upsample, rng=rng),
                       loss=models.fsrcnn_loss),
}

#: The optimizers of ``deconv train --optimizer``: :class:`deconv.optim.Adam`,
#: :class:`deconv.optim.AdamW` (decoupled weight decay), :class:`deconv.optim.SGD`.
OPTIMIZERS = ("adam", "adamw", "sgd")


class SettingsError(ValueError):
    """A setting of :func:`run` that is out of range, does not apply to the model or
    contradicts the checkpoint being resumed; raised before any training (the
    command line reports it as a usage error, exit status 2)."""


def resolve_settings(name, *, epochs=None, batch_size=None, lr=None, optimizer=None,
                     momentum=None, weight_decay=None, seed=0, scale=None, upsample=None,
                     quick=False):
    """The checked settings of a run of family ``name``, with the recipe's defaults filled in.

    ``None`` means "the default" (the family's recipe, or its quick variant
    with ``quick=True``; momentum 0 for SGD; the recipe's weight decay with
    the recipe's optimizer, 0 with another one).
    An option that does not apply is refused, not ignored: ``scale`` and
    ``upsample`` belong to 'superres' only, ``momentum`` to ``optimizer='sgd'``
    only; ``quick`` to families with a quick variant only. Returns a dict
    with the keys ``name``, ``quick``, ``epochs``, ``batch_size``, ``lr``,
    ``optimizer``, ``momentum`` (None for Adam and AdamW), ``weight_decay``,
    ``seed`` and the family's options (``scale``, ``upsample`` for 'superres').

    >>> s = resolve_settings("skip", optimizer="adamw", weight_decay=0.01)
    >>> s["optimizer"], s["weight_decay"], s["momentum"]
    ('adamw', 0.01, None)

    Raises
    ------
    SettingsError
        Naming the argument, its command-line option and the value.
    """
    try:
        return _resolve(name, epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer,
                        momentum=momentum, weight_decay=weight_decay, seed=seed, quick=quick,
                        scale=scale, upsample=upsample)
    except (TypeError, ValueError) as err:
        raise SettingsError(str(err)) from None


def _defaults(recipe, quick):
    """The recipe's epochs, batch size and lr, with the quick variant's overrides."""
    out = {"epochs": recipe.epochs, "batch_size": recipe.batch_size, "lr": recipe.lr}
    if quick:
        out.update({k: v for k, v in recipe.quick.items() if k in out})
    return out


def _resolve(name, *, epochs, batch_size, lr, optimizer, momentum, weight_decay, seed, quick,
             **options):
    models._check_family(name)
    recipe = RECIPES[name]
    quick = as_bool(quick, "quick (--quick)")
    if quick and recipe.quick is None:
        families = [f for f, r in RECIPES.items() if r.quick is not None]
        raise ValueError(f"quick (--quick) applies to {' and '.join(families)} only, not to "
                         f"{name}")
    for option, value in options.items():
        if value is not None and option not in recipe.options:
            families = [f for f, r in RECIPES.items() if option in r.options]
            raise ValueError(f"{option} (--{option}) applies to {' and '.join(families)} only, "
                             f"not to {name}")
    default = _defaults(recipe, quick)
    out = {"name": name, "quick": quick}
    out["epochs"] = as_int_at_least(default["epochs"] if epochs is None else epochs,
                                    "epochs (--epochs)", 0)
    out["batch_size"] = as_int_at_least(default["batch_size"] if batch_size is None
                                        else batch_size, "batch_size (--batch-size)", 1)
    out["lr"] = as_real(default["lr"] if lr is None else lr, "lr (--lr)", 0, low_open=True)
    optimizer = recipe.optimizer if optimizer is None else optimizer
    out["optimizer"] = as_choice(optimizer, "optimizer (--optimizer)", OPTIMIZERS)
    if optimizer == "sgd":
        out["momentum"] = as_real(0.0 if momentum is None else momentum,
                                  "momentum (--momentum)", 0)
    elif momentum is not None:
        raise ValueError(f"momentum (--momentum) applies to --optimizer sgd only, "
                         f"not to {optimizer}")
    else:
        out["momentum"] = None
    if weight_decay is None:
        weight_decay = recipe.weight_decay if optimizer == recipe.optimizer else 0.0
    out["weight_decay"] = as_real(weight_decay, "weight_decay (--weight-decay)", 0)
    out["seed"] = as_int_at_least(seed, "seed (--seed)", 0)
    for option, default in recipe.options.items():
        out[option] = default if options[option] is None else options[option]
    if "scale" in out:
        out["scale"] = as_int_at_least(out["scale"], "scale (--scale)", 1)
    if "upsample" in out:
        as_choice(out["upsample"], "upsample (--upsample)", models.UPSAMPLERS)
    return out


# How each setting that differs from its default shows in the name of a run's folder,
# in this order; floats by repr, which tells every two different floats apart.
_NAME_PARTS = (
    ("quick", "quick"), ("scale", "x{}"), ("upsample", "{}"), ("optimizer", "{}"),
    ("lr", "lr{!r}"), ("momentum", "momentum{!r}"), ("weight_decay", "wd{!r}"),
    ("batch_size", "batch{}"), ("epochs", "epochs{}"),
    ("seed", "seed{}"),
)


def run_name(settings):
    """The folder name of a run: the family, then each setting that is not its default.

    ``settings`` is a dict from :func:`resolve_settings`. The default settings
    give the family's name alone (``"superres"``); others add one part each,
    e.g. ``"superres-x4-pixelshuffle"`` or ``"classifier-sgd-momentum0.9-seed1"``
    (SGD's default momentum, 0, adds nothing, as does the default weight decay
    of the optimizer asked; with ``quick`` the quick variant's epochs, batch
    size and lr are the defaults),
    so runs of different settings never share a folder and the same settings
    always find theirs again.

    >>> run_name(resolve_settings("superres", scale=4, upsample="pixelshuffle"))
    'superres-x4-pixelshuffle'
    >>> run_name(resolve_settings("classifier", epochs=30, seed=1))
    'classifier-epochs30-seed1'
    >>> run_name(resolve_settings("superres", quick=True))
    'superres-quick'
    """
    name = settings["name"]
    quick = settings.get("quick", False)
    # the defaults of the optimizer asked: SGD's momentum 0, its weight decay
    defaults = resolve_settings(name, optimizer=settings["optimizer"], quick=quick)
    defaults["optimizer"] = resolve_settings(name)["optimizer"]
    defaults["quick"] = False
    parts = [name]
    for key, form in _NAME_PARTS:
        if key in settings and settings[key] != defaults[key]:
            parts.append(form.format(settings[key]))
    return "-".join(parts)


def _optimizer(settings, params):
    lr, decay = settings["lr"], settings["weight_decay"]
    if settings["optimizer"] == "adam":
        return optim.Adam(params, lr=lr, weight_decay=decay)
    if settings["optimizer"] == "adamw":
        return optim.AdamW(params, lr=lr, weight_decay=decay)
    return optim.SGD(params, lr=lr, momentum=settings["momentum"], weight_decay=decay)


def _checkpoint_file(resume):
    """``resume`` as a checkpoint file: a file as is, a run's folder -> its checkpoint."""
    path = os.fspath(resume)
    if os.path.isdir(path):
        path = os.path.join(path, CHECKPOINT_NAME)
    if not os.path.isfile(path):
        raise SettingsError(f"resume (--resume): there is no checkpoint at {path}")
    return path


def _check_resumed(settings, trainer, info, path):
    """A resumed run continues with the checkpoint's optimizer and shuffling state:
    the learning rate, momentum, weight decay and seed asked must be the ones it holds."""
    asked = {"lr": settings["lr"], "weight_decay": settings["weight_decay"]}
    if settings["momentum"] is not None:
        asked["momentum"] = settings["momentum"]
    held = trainer.optimizer.hyperparameters()
    # under a schedule the optimizer's lr moves; the run was asked for its starting value
    held["lr"] = trainer.optimizer.param_groups[0].get("initial_lr", held["lr"])
    if info["seed"] is not None:
        asked["seed"], held["seed"] = settings["seed"], info["seed"]
    differ = [f"{k} {asked[k]!r} (the checkpoint's: {held[k]!r})" for k in asked
              if asked[k] != held[k]]
    if differ:
        raise SettingsError(f"resume (--resume): {path} was trained with other settings: "
                            f"{', '.join(differ)}; resume with the settings of that run")


def _format(metrics):
    parts = []
    for key, value in metrics.items():
        if isinstance(value, tuple):        # per-image values: shown by the figure and the result
            continue
        parts.append(f"{key} {value:.2f} dB" if key == "psnr" else
                     f"{key} {value * 100:.1f}%" if key.startswith("accuracy") else
                     f"{key} {value:.4f}")
    return ", ".join(parts)


#: Side of the low-resolution centre crop of each validation image that the trainer scores
#: after every epoch (the final metrics use the whole images).
MONITOR_CROP = 48


def monitor_crops(split, size=MONITOR_CROP):
    """The centre ``size x size`` crop of every low-resolution image of ``split`` and the
    matching crop of its target, stacked: ``(x, y)`` arrays for the trainer's validation.

    ``split`` holds tuples of whole images (:class:`deconv.data.ImageDataset`);
    images smaller than ``size`` give their whole width or height (the
    smallest over the images, so that the crops stack).
    """
    size = min([as_int_at_least(size, "size", 1)] + [min(lo.shape[-2:]) for lo in split.x])
    xs, ys = [], []
    for lo, hi in zip(split.x, split.y):
        r = hi.shape[-1] // lo.shape[-1]
        top, left = (lo.shape[-2] - size) // 2, (lo.shape[-1] - size) // 2
        xs.append(lo[:, top:top + size, left:left + size])
        ys.append(hi[:, r * top:r * (top + size), r * left:r * (left + size)])
    return np.stack(xs), np.stack(ys)


def _scheduler(recipe, settings, opt, steps_per_epoch):
    if recipe.schedule is None:
        return None, "epoch"
    total = max(1, settings["epochs"] * steps_per_epoch)
    return optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total), "batch"


def run(name, *, epochs=None, batch_size=None, lr=None, momentum=None, optimizer=None,
        weight_decay=None, seed=0, out="runs", resume=None, scale=None, upsample=None,
        quick=False, progress=None, stream=None, figure=True):
    """Train family ``name``; return ``{"metrics", "baselines", "history", "seconds", ...}``.

    ``epochs``, ``batch_size`` and ``lr`` default to the family's recipe (its
    quick variant with ``quick=True``: 'skip', 'text' and 'superres' only); ``scale`` and
    ``upsample`` apply to 'superres' only and ``momentum`` to
    ``optimizer='sgd'`` only; ``optimizer`` and ``weight_decay`` default to
    the recipe's (see :func:`resolve_settings`). The checkpoint
    and figure go to ``out/<run_name>/`` (:func:`run_name`: ``out/superres``
    for the default settings). ``resume`` names a checkpoint, or the folder
    of a run, to continue from (training goes on up to ``epochs`` in total);
    its learning rate, momentum and seed must be those asked.

    Raises
    ------
    SettingsError
        Before any training, for a setting that is out of range or does not
        apply, a missing checkpoint, or one that does not fit the settings.
    """
    if name == "generator":   # adversarial, with its own loop and judge (issue 15)
        from deconv.models import generator
        if weight_decay is not None:
            raise SettingsError(f"weight_decay (--weight-decay) does not apply to generator, "
                                f"got {weight_decay!r}")
        return generator.run(epochs=epochs, batch_size=batch_size, lr=lr, momentum=momentum,
                             optimizer="adam" if optimizer is None else optimizer, seed=seed, out=out, resume=resume, scale=scale,
                             upsample=upsample, quick=quick, progress=progress, stream=stream,
                             figure=figure)
    settings = resolve_settings(name, epochs=epochs, batch_size=batch_size, lr=lr,
                                optimizer=optimizer, momentum=momentum,
                                weight_decay=weight_decay, seed=seed, scale=scale,
                                upsample=upsample, quick=quick)
    resume = None if resume is None else _checkpoint_file(resume)
    stream = sys.stdout if stream is None else stream
    recipe = RECIPES[name]
    options = {k: settings[k] for k in recipe.options}
    data_options = recipe.quick.get("data", {}) if settings["quick"] else {}
    dataset = recipe.load(**options, **data_options)
    if recipe.build is None:
        model = models.build(name, rng=settings["seed"], **options)
    else:
        model = recipe.build(rng=settings["seed"], **options)
    loss = models.loss(name) if recipe.loss is None else recipe.loss()
    opt = _optimizer(settings, model.parameters())
    steps_per_epoch = -(-len(dataset.train) // settings["batch_size"])
    scheduler, interval = _scheduler(recipe, settings, opt, steps_per_epoch)
    out_dir = os.path.join(out, run_name(settings))
    trainer = Trainer(model, loss, opt, batch_size=settings["batch_size"],
                      epochs=settings["epochs"], seed=settings["seed"], out_dir=out_dir,
                      progress=progress, stream=stream, scheduler=scheduler,
                      scheduler_interval=interval)
    if resume is not None:
        planned = getattr(scheduler, "T_max", None)
        try:
            info = trainer.load_checkpoint(resume)
        except ValueError as err:
            raise SettingsError(f"resume (--resume): {err}") from None
        _check_resumed(settings, trainer, info, resume)
        if planned is not None and trainer.scheduler.T_max != planned:
            # the cosine spans the whole run: a longer run would climb back up past it
            raise SettingsError(
                f"resume (--resume): {resume} follows a learning-rate schedule over "
                f"{trainer.scheduler.T_max} steps, and {settings['epochs']} epochs make "
                f"{planned}; resume an interrupted run with its own --epochs")
    os.makedirs(out_dir, exist_ok=True)
    whole_images = isinstance(dataset.val.x, tuple)
    x_val, y_val = monitor_crops(dataset.val) if whole_images else dataset.val[:2]
    start = time.perf_counter()
    history = trainer.fit(dataset.train.x, dataset.train.y, x_val, y_val)
    seconds = time.perf_counter() - start
    if whole_images:
        prediction = models.predict_images(model, dataset.val.x)
    else:
        prediction = trainer.predict(dataset.val.x)
    result = models.evaluate(name, prediction, dataset.val)
    baselines = models.baseline(name, dataset)
    print(f"\n{name}: {trainer.epoch} epochs in {seconds:.1f} s", file=stream)
    print(f"  model      {_format(result)}", file=stream)
    for label, metrics in baselines.items():
        print(f"  {label:<10} {_format(metrics)}", file=stream)
    if "psnr_each" in result:
        names = getattr(dataset, "names", ())
        for i, image in enumerate(names):
            row = ", ".join(f"{label} {m['psnr_each'][i]:.2f}" for label, m in
                            [("model", result)] + list(baselines.items()))
            print(f"  {image:<10} PSNR (dB): {row}", file=stream)
    best = max(m[recipe.headline] for m in baselines.values())
    beats = result[recipe.headline] > best
    print(f"  {recipe.headline}: {'beats' if beats else 'does NOT beat'} the best baseline "
          f"({result[recipe.headline]:.4g} vs {best:.4g})", file=stream)
    figure_path = None
    if figure:
        path = os.path.join(out_dir, "samples.png")
        if name == "skip" and whole_images:
            figure_path = denoising.figure(dataset, prediction, result, baselines, path)
        elif whole_images:
            figure_path = _superres_figure(dataset, prediction, result, baselines, path)
        elif name == "autoencoder" and isinstance(dataset, compression.ColourPatches):
            figure_path = compression.figure(dataset, prediction, path)
        else:
            figure_path = _figure(name, dataset.val, prediction, path)
    print(f"  checkpoint {trainer.checkpoint_path}", file=stream)
    if figure_path:
        print(f"  figure     {figure_path}", file=stream)
    return dict(metrics=result, baselines=baselines, history=history, seconds=seconds,
                beats_baseline=beats, checkpoint=trainer.checkpoint_path, figure=figure_path,
                settings=settings)


def _pyplot():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


#: Side of the zoomed crops of the super-resolution figure, in high-resolution pixels.
ZOOM = 96


def _worst_window(error, size):
    """Top-left corner of the ``size x size`` window (on a grid of step ``size / 2``) of a
    ``(H, W)`` map of squared errors where their sum is largest: where the baseline fails."""
    H, W = error.shape
    size = min(size, H, W)
    step = max(1, size // 2)
    best, corner = -1.0, (0, 0)
    for top in range(0, H - size + 1, step):
        for left in range(0, W - size + 1, step):
            v = float(error[top:top + size, left:left + size].sum())
            if v > best:
                best, corner = v, (top, left)
    return corner, size


def _superres_figure(dataset, prediction, result, baselines, path):
    """Per validation image: bicubic and model whole (PSNR in the titles), then zoomed crops
    of bicubic, model and truth where bicubic errs most, and both error maps there."""
    from deconv.functional.interpolate import interpolate

    plt = _pyplot()
    if plt is None:
        return None
    val, names = dataset.val, dataset.names
    columns = ("bicubic", "model", "bicubic (zoom)", "model (zoom)", "truth (zoom)",
               "|bicubic - truth|", "|model - truth|")
    fig, axes = plt.subplots(len(names), len(columns),
                             figsize=(2.4 * len(columns), 2.5 * len(names)))
    axes = np.atleast_2d(axes)
    grey = dict(cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    for i, (low, high) in enumerate(zip(val.x, val.y)):
        r = high.shape[-1] // low.shape[-1]
        bicubic = np.clip(interpolate(low[None], scale_factor=r, mode="bicubic")[0], 0, 1)
        model = np.clip(prediction[i], 0, 1)
        (top, left), z = _worst_window(np.square(bicubic[0] - high[0]), ZOOM)
        crop = (0, slice(top, top + z), slice(left, left + z))
        panels = (bicubic[0], model[0], bicubic[crop], model[crop], high[crop])
        titles = (f"{names[i]}: bicubic {baselines['bicubic']['psnr_each'][i]:.2f} dB",
                  f"model {result['psnr_each'][i]:.2f} dB", *columns[2:5])
        for j, (img, title) in enumerate(zip(panels, titles)):
            axes[i, j].imshow(img, **grey)
            axes[i, j].set_title(title, fontsize=8)
        for j in (0, 1):
            axes[i, j].add_patch(plt.Rectangle((left, top), z, z, fill=False, edgecolor="red"))
        for j, img in ((5, bicubic), (6, model)):
            shown = axes[i, j].imshow(np.abs(img[crop] - high[crop]), cmap="magma", vmin=0,
                                      vmax=0.1, interpolation="nearest")
            axes[i, j].set_title(columns[j], fontsize=8)
        fig.colorbar(shown, ax=axes[i, 6], fraction=0.046)
        for ax in axes[i]:
            ax.axis("off")
    r = val.y[0].shape[-1] // val.x[0].shape[-1]
    fig.suptitle(f"deconv train superres x{r}: luminance of the held-out images; PSNR with "
                 f"{r} px border cropped: model {result['psnr']:.2f} dB, bicubic "
                 f"{baselines['bicubic']['psnr']:.2f} dB (mean over the images)", fontsize=10)
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)
    return path


def _figure(name, split, prediction, path, count=6):
    """A PNG of a few validation samples: input, model output, target."""
    if name == "classifier":     # the errors and the confusion matrix
        return recognition.figure(split, prediction, path)
    plt = _pyplot()
    if plt is None:
        return None
    count = min(count, len(split))
    if name == "text":
        return text_restoration.figure(split, prediction, path)

    def show(a):
        a = np.clip(a, 0, 1)
        return a[0] if a.shape[0] == 1 else a.transpose(1, 2, 0)
    # the most textured targets: flat patches (sky) show nothing
    variance = split.y.reshape(len(split), -1).var(axis=1)
    picks = np.argsort(-variance, kind="stable")[:count]
    fig, axes = plt.subplots(3, count, figsize=(1.6 * count, 5))
    for i, k in enumerate(picks):
        for row, (label, img) in enumerate((("input", split.x[k]), ("model", prediction[k]),
                                            ("target", split.y[k]))):
            axes[row, i].imshow(show(img), cmap="gray" if img.shape[0] == 1 else None,
                                interpolation="nearest")
            axes[row, i].axis("off")
            if i == 0:
                axes[row, i].set_title(label, fontsize=9, loc="left")
    fig.suptitle(f"deconv train {name}: validation samples", fontsize=10)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path
