"""``deconv train MODEL``: train one of the five model families on its data.

A recipe per family says which data it trains on and its default
hyper-parameters; :func:`run` builds the model, trains it with
:class:`deconv.train.Trainer`, prints the final validation metrics next to the
family's baselines, and writes the checkpoint and a PNG figure of samples.
"""

import os
import sys
import time
from dataclasses import dataclass

import numpy as np

from deconv import models, optim
from deconv.models import data
from deconv.train import Trainer


@dataclass(frozen=True)
class Recipe:
    """Data and default hyper-parameters of one family (measured to beat its baseline)."""
    load: object          # () -> deconv.data.Dataset
    epochs: int
    batch_size: int
    lr: float
    headline: str         # the metric printed first and compared with the baselines


RECIPES = {
    "skip": Recipe(lambda: data.digits_denoising(), epochs=40, batch_size=32, lr=3e-3,
                   headline="psnr"),
    "text": Recipe(lambda: data.text(), epochs=6, batch_size=32, lr=1e-3,
                   headline="accuracy_corrupted"),
    "classifier": Recipe(lambda: data.digits(), epochs=15, batch_size=32, lr=1e-3,
                         headline="accuracy"),
    "autoencoder": Recipe(lambda: data.patches(), epochs=20, batch_size=32, lr=2e-3,
                          headline="psnr"),
    "superres": Recipe(lambda: data.superres(scale=2), epochs=15, batch_size=32, lr=1e-3,
                       headline="psnr"),
}


def _optimizer(name, params, lr, momentum):
    if name == "adam":
        if momentum:
            raise ValueError("--momentum applies to --optimizer sgd only")
        return optim.Adam(params, lr=lr)
    if name == "sgd":
        return optim.SGD(params, lr=lr, momentum=momentum)
    raise ValueError(f"optimizer must be 'adam' or 'sgd', got {name!r}")


def _format(metrics):
    parts = []
    for key, value in metrics.items():
        parts.append(f"{key} {value:.2f} dB" if key == "psnr" else
                     f"{key} {value * 100:.1f}%" if key.startswith("accuracy") else
                     f"{key} {value:.4f}")
    return ", ".join(parts)


def run(name, *, epochs=None, batch_size=None, lr=None, momentum=0.0, optimizer="adam", seed=0,
        out="runs", resume=None, scale=2, upsample="deconv", progress=None, stream=None,
        figure=True):
    """Train family ``name``; return ``{"metrics", "baselines", "history", "seconds", ...}``.

    ``epochs``, ``batch_size`` and ``lr`` default to the family's recipe;
    ``scale`` and ``upsample`` apply to 'superres' only. ``resume`` names a
    checkpoint to continue from (training goes on up to ``epochs`` in total).
    """
    if name not in RECIPES:
        raise ValueError(f"unknown model {name!r}; expected one of {', '.join(RECIPES)}")
    stream = sys.stdout if stream is None else stream
    recipe = RECIPES[name]
    epochs = recipe.epochs if epochs is None else epochs
    batch_size = recipe.batch_size if batch_size is None else batch_size
    lr = recipe.lr if lr is None else lr
    if name == "superres":
        dataset = data.superres(scale=scale)
        model = models.build(name, scale=scale, upsample=upsample, rng=seed)
    else:
        dataset = recipe.load()
        model = models.build(name, rng=seed)
    loss = models.loss(name)
    opt = _optimizer(optimizer, model.parameters(), lr, momentum)
    out_dir = os.path.join(out, name)
    os.makedirs(out_dir, exist_ok=True)
    trainer = Trainer(model, loss, opt, batch_size=batch_size, epochs=epochs, seed=seed,
                      out_dir=out_dir, progress=progress, stream=stream)
    if resume is not None:
        trainer.load_checkpoint(resume)
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
