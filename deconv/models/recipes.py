"""``deconv train MODEL``: train one of the five model families on its data.

A recipe per family says which data it trains on and its default
hyper-parameters; :func:`run` builds the model, trains it with
:class:`deconv.train.Trainer`, prints the final validation metrics next to the
family's baselines, and writes the checkpoint and a PNG figure of samples.
"""

import os
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from deconv import models, optim
from deconv.functional.validation import as_choice, as_int_at_least, as_real
from deconv.models import data
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


RECIPES = {
    "skip": Recipe(lambda: data.digits_denoising(), epochs=40, batch_size=32, lr=3e-3,
                   headline="psnr"),
    "text": Recipe(lambda: data.text(), epochs=6, batch_size=32, lr=1e-3,
                   headline="accuracy_corrupted"),
    "classifier": Recipe(lambda: data.digits(), epochs=15, batch_size=32, lr=1e-3,
                         headline="accuracy"),
    "autoencoder": Recipe(lambda: data.patches(), epochs=20, batch_size=32, lr=2e-3,
                          headline="psnr"),
    "superres": Recipe(lambda scale, upsample: data.superres(scale=scale), epochs=15,
                       batch_size=32, lr=1e-3, headline="psnr",
                       options={"scale": 2, "upsample": "deconv"}),
}

#: The optimizers of ``deconv train --optimizer``.
OPTIMIZERS = ("adam", "sgd")


class SettingsError(ValueError):
    """A setting of :func:`run` that is out of range, does not apply to the model or
    contradicts the checkpoint being resumed; raised before any training (the
    command line reports it as a usage error, exit status 2)."""


def resolve_settings(name, *, epochs=None, batch_size=None, lr=None, optimizer="adam",
                     momentum=None, seed=0, scale=None, upsample=None):
    """The checked settings of a run of family ``name``, with the recipe's defaults filled in.

    ``None`` means "the default" (the family's recipe, momentum 0 for SGD).
    An option that does not apply is refused, not ignored: ``scale`` and
    ``upsample`` belong to 'superres' only, ``momentum`` to ``optimizer='sgd'``
    only. Returns a dict with the keys ``name``, ``epochs``, ``batch_size``,
    ``lr``, ``optimizer``, ``momentum`` (None for Adam), ``seed`` and the
    family's options (``scale``, ``upsample`` for 'superres').

    Raises
    ------
    SettingsError
        Naming the argument, its command-line option and the value.
    """
    try:
        return _resolve(name, epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer,
                        momentum=momentum, seed=seed, scale=scale, upsample=upsample)
    except (TypeError, ValueError) as err:
        raise SettingsError(str(err)) from None


def _resolve(name, *, epochs, batch_size, lr, optimizer, momentum, seed, **options):
    models._check_family(name)
    recipe = RECIPES[name]
    for option, value in options.items():
        if value is not None and option not in recipe.options:
            families = [f for f, r in RECIPES.items() if option in r.options]
            raise ValueError(f"{option} (--{option}) applies to {' and '.join(families)} only, "
                             f"not to {name}")
    out = {"name": name}
    out["epochs"] = as_int_at_least(recipe.epochs if epochs is None else epochs,
                                    "epochs (--epochs)", 0)
    out["batch_size"] = as_int_at_least(recipe.batch_size if batch_size is None else batch_size,
                                        "batch_size (--batch-size)", 1)
    out["lr"] = as_real(recipe.lr if lr is None else lr, "lr (--lr)", 0, low_open=True)
    out["optimizer"] = as_choice(optimizer, "optimizer (--optimizer)", OPTIMIZERS)
    if optimizer == "sgd":
        out["momentum"] = as_real(0.0 if momentum is None else momentum,
                                  "momentum (--momentum)", 0)
    elif momentum is not None:
        raise ValueError(f"momentum (--momentum) applies to --optimizer sgd only, "
                         f"not to {optimizer}")
    else:
        out["momentum"] = None
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
    ("scale", "x{}"), ("upsample", "{}"), ("optimizer", "{}"), ("lr", "lr{!r}"),
    ("momentum", "momentum{!r}"), ("batch_size", "batch{}"), ("epochs", "epochs{}"),
    ("seed", "seed{}"),
)


def run_name(settings):
    """The folder name of a run: the family, then each setting that is not its default.

    ``settings`` is a dict from :func:`resolve_settings`. The default settings
    give the family's name alone (``"superres"``); others add one part each,
    e.g. ``"superres-x4-pixelshuffle"`` or ``"classifier-sgd-momentum0.9-seed1"``
    (SGD's default momentum, 0, adds nothing),
    so runs of different settings never share a folder and the same settings
    always find theirs again.

    >>> run_name(resolve_settings("superres", scale=4, upsample="pixelshuffle"))
    'superres-x4-pixelshuffle'
    >>> run_name(resolve_settings("classifier", epochs=30, seed=1))
    'classifier-epochs30-seed1'
    """
    name = settings["name"]
    defaults = resolve_settings(name, optimizer=settings["optimizer"])   # SGD: momentum 0
    defaults["optimizer"] = resolve_settings(name)["optimizer"]
    parts = [name]
    for key, form in _NAME_PARTS:
        if key in settings and settings[key] != defaults[key]:
            parts.append(form.format(settings[key]))
    return "-".join(parts)


def _optimizer(settings, params):
    if settings["optimizer"] == "adam":
        return optim.Adam(params, lr=settings["lr"])
    return optim.SGD(params, lr=settings["lr"], momentum=settings["momentum"])


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
    the learning rate, momentum and seed asked must be the ones it holds."""
    asked = {"lr": settings["lr"]}
    if settings["momentum"] is not None:
        asked["momentum"] = settings["momentum"]
    held = trainer.optimizer.hyperparameters()
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
        parts.append(f"{key} {value:.2f} dB" if key == "psnr" else
                     f"{key} {value * 100:.1f}%" if key.startswith("accuracy") else
                     f"{key} {value:.4f}")
    return ", ".join(parts)


def run(name, *, epochs=None, batch_size=None, lr=None, momentum=None, optimizer="adam", seed=0,
        out="runs", resume=None, scale=None, upsample=None, progress=None, stream=None,
        figure=True):
    """Train family ``name``; return ``{"metrics", "baselines", "history", "seconds", ...}``.

    ``epochs``, ``batch_size`` and ``lr`` default to the family's recipe;
    ``scale`` and ``upsample`` apply to 'superres' only and ``momentum`` to
    ``optimizer='sgd'`` only (see :func:`resolve_settings`). The checkpoint
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
    settings = resolve_settings(name, epochs=epochs, batch_size=batch_size, lr=lr,
                                optimizer=optimizer, momentum=momentum, seed=seed, scale=scale,
                                upsample=upsample)
    resume = None if resume is None else _checkpoint_file(resume)
    stream = sys.stdout if stream is None else stream
    recipe = RECIPES[name]
    options = {k: settings[k] for k in recipe.options}
    dataset = recipe.load(**options)
    model = models.build(name, rng=settings["seed"], **options)
    loss = models.loss(name)
    opt = _optimizer(settings, model.parameters())
    out_dir = os.path.join(out, run_name(settings))
    trainer = Trainer(model, loss, opt, batch_size=settings["batch_size"],
                      epochs=settings["epochs"], seed=settings["seed"], out_dir=out_dir,
                      progress=progress, stream=stream)
    if resume is not None:
        try:
            info = trainer.load_checkpoint(resume)
        except ValueError as err:
            raise SettingsError(f"resume (--resume): {err}") from None
        _check_resumed(settings, trainer, info, resume)
    os.makedirs(out_dir, exist_ok=True)
    start = time.perf_counter()
    history = trainer.fit(dataset.train.x, dataset.train.y, dataset.val.x, dataset.val.y)
    seconds = time.perf_counter() - start
    prediction = trainer.predict(dataset.val.x)
    result = models.evaluate(name, prediction, dataset.val)
    baselines = models.baseline(name, dataset)
    print(f"\n{name}: {trainer.epoch} epochs in {seconds:.1f} s", file=stream)
    print(f"  model      {_format(result)}", file=stream)
    for label, metrics in baselines.items():
        print(f"  {label:<10} {_format(metrics)}", file=stream)
    best = max(m[recipe.headline] for m in baselines.values())
    beats = result[recipe.headline] > best
    print(f"  {recipe.headline}: {'beats' if beats else 'does NOT beat'} the best baseline "
          f"({result[recipe.headline]:.4g} vs {best:.4g})", file=stream)
    figure_path = None
    if figure:
        figure_path = _figure(name, dataset.val, prediction, os.path.join(out_dir, "samples.png"))
    print(f"  checkpoint {trainer.checkpoint_path}", file=stream)
    if figure_path:
        print(f"  figure     {figure_path}", file=stream)
    return dict(metrics=result, baselines=baselines, history=history, seconds=seconds,
                beats_baseline=beats, checkpoint=trainer.checkpoint_path, figure=figure_path)


def _figure(name, split, prediction, path, count=6):
    """A PNG of a few validation samples: input, model output, target."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    count = min(count, len(split))
    if name == "text":
        fig, ax = plt.subplots(figsize=(10, 0.9 * count + 0.5))
        ax.axis("off")
        lines = []
        for i in range(count):
            lines += [f"input : {data.decode(split.x[i])!r}",
                      f"model : {data.decode(prediction[i].argmax(axis=0))!r}", ""]
        ax.text(0, 1, "\n".join(lines), family="monospace", fontsize=7, va="top")
    elif name == "classifier":
        fig, axes = plt.subplots(1, count, figsize=(1.6 * count, 2))
        for i, ax in enumerate(axes):
            ax.imshow(split.x[i, 0], cmap="gray")
            ax.set_title(f"{prediction[i].argmax()} ({split.y[i]})", fontsize=9)
            ax.axis("off")
    else:
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
    what = "prediction (label)" if name == "classifier" else "validation samples"
    fig.suptitle(f"deconv train {name}: {what}", fontsize=10)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path
