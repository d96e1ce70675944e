"""Notebook 8's adversarial runs: one DCGAN-style generator with BatchNorm, one without.

Trains both on the training split of the 8x8 digits against the same kind of
discriminator (``deconv.models.generator.discriminator``), with the same seeds,
latents and batches, and writes beside this file

    08_dcgan_batchnorm.npz    both generators' final weights (keys ``bn.*``, ``plain.*``)
                              and, per epoch (epoch 0 is the initialisation), what the
                              notebook plots: the spread of each transposed convolution's
                              output, the samples' pixel spread and 1-NN digit classes,
                              D(x), D(G(z)) and the generator's first-layer gradient

The notebook imports :func:`generator`, :func:`probe` and :data:`SETTINGS` from
here (``runpy.run_path``, which does not train) and only reads the file, so
it stays within its time budget; it checks that the loaded generators
reproduce the last recorded epoch. Re-running this script writes the same
arrays (every random draw is seeded, the kernels are deterministic), in
about ten minutes on a busy 2-core machine:

    cd notebooks && PYTHONPATH=.. python checkpoints/08_dcgan_batchnorm.py
"""

import pathlib
import time
from typing import NamedTuple

import numpy as np

from deconv import nn, optim
from deconv.models import data
from deconv.models import generator as gan

HERE = pathlib.Path(__file__).resolve().parent
PATH = HERE / "08_dcgan_batchnorm.npz"


class Settings(NamedTuple):
    latent: int = 16          # Z
    channels: int = 16        # C, the last block's width (the first block has 2C)
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3          # deconv.models.generator.QUICK's rate for short runs
    beta1: float = 0.5
    probes: int = 512         # fixed latents the per-epoch statistics are measured on
    seed: int = 0


SETTINGS = Settings()


def generator(latent, channels, batch_norm, rng):
    """The generator of ``deconv.models.generator`` (8x8), with or without its BatchNorm layers.

    ``(N, Z, 1, 1) -> ConvT(Z, 2C, 4) [-> BN] -> ReLU -> ConvT(2C, C, 4, s=2, p=1) [-> BN] -> ReLU
    -> ConvT(C, 1, 3, p=1) -> Tanh -> (N, 1, 8, 8)``; without BatchNorm the first two
    transposed convolutions get the bias that BatchNorm's shift would otherwise cancel.
    DCGAN's initialisation: weights N(0, 0.02), BatchNorm scales N(1, 0.02).
    """
    def block(cin, cout, **kw):
        layers = [nn.ConvTranspose2d(cin, cout, 4, bias=not batch_norm, **kw)]
        return layers + ([nn.BatchNorm2d(cout)] if batch_norm else []) + [nn.ReLU()]

    layers = block(latent, 2 * channels) + block(2 * channels, channels, stride=2, padding=1)
    layers += [nn.ConvTranspose2d(channels, 1, 3, padding=1), nn.Tanh()]
    return gan.dcgan_init_(nn.Sequential(*layers), rng)


def probe_latents(settings=SETTINGS):
    """The fixed latents of :func:`probe`: ``(P, Z, 1, 1)`` float32, seeded by ``settings``."""
    gen = np.random.default_rng(settings.seed + 1)
    return gen.standard_normal((settings.probes, settings.latent, 1, 1)).astype(np.float32)


def probe(G, z, train_images, train_labels):
    """What the notebook tracks, measured on the fixed latents ``z`` in train mode.

    Returns a dict: ``layer_std`` (3,), the standard deviation of each transposed
    convolution's output over every sample, channel and pixel (before its
    BatchNorm); ``pixel_std``, the mean over the 64 pixels of the samples'
    standard deviation (diversity, in the digits' [0, 1] grey levels); ``classes`` (10,),
    how many samples' nearest training image (Euclidean, pixels) is each digit.
    Train mode, so that BatchNorm uses the statistics of these latents as it
    does in training (at initialisation the running ones are still 0 and 1); the
    running statistics are put back afterwards, so probing changes nothing.
    """
    was_training = G.training
    norms = [m for m in G if isinstance(m, nn.BatchNorm2d)]
    saved = [(m.running_mean.copy(), m.running_var.copy(), m.num_batches_tracked.copy())
             for m in norms]
    G.train()
    h, layer_std = z, []
    for layer in G:
        h = layer(h)
        if isinstance(layer, nn.ConvTranspose2d):
            layer_std.append(float(h.astype(np.float64).std()))
    for m, (mean, var, count) in zip(norms, saved):
        m.running_mean[...], m.running_var[...], m.num_batches_tracked[...] = mean, var, count
    G.train(was_training)
    images = (h.astype(np.float64) + 1) / 2                              # (P, 1, 8, 8) in (0, 1)
    flat, train = images.reshape(len(images), -1), train_images.reshape(len(train_images), -1)
    distances = (flat ** 2).sum(1)[:, None] - 2 * flat @ train.T + (train ** 2).sum(1)[None]
    nearest = train_labels[np.argmin(distances, axis=1)]
    return dict(layer_std=np.array(layer_std), pixel_std=float(images.std(axis=0).mean()),
                classes=np.bincount(nearest, minlength=10))


def train_pair(settings=SETTINGS, progress=True):
    """Train the generator with and without BatchNorm; return their states and histories."""
    s = settings
    digits = data.digits()
    train_x = digits.train.x.astype(np.float64)
    real = gan.to_model_space(digits.train.x, 8).astype(np.float32)       # (1437, 1, 8, 8) in [-1, 1]
    z_probe = probe_latents(s)
    states, histories = {}, {}
    for name, batch_norm in (("bn", True), ("plain", False)):
        G = generator(s.latent, s.channels, batch_norm, rng=s.seed + 2)
        D = gan.discriminator(s.channels, rng=s.seed + 3)
        shuffle, noise = np.random.default_rng(s.seed + 4), np.random.default_rng(s.seed + 5)
        opt_g = optim.Adam(G.parameters(), lr=s.lr, betas=(s.beta1, 0.999))
        opt_d = optim.Adam(D.parameters(), lr=s.lr, betas=(s.beta1, 0.999))
        bce = nn.BCEWithLogitsLoss()
        B = s.batch_size
        ones, zeros = np.ones((B, 1), np.float32), np.zeros((B, 1), np.float32)
        keys = ("layer_std", "pixel_std", "classes", "d_real", "d_fake", "grad_first")
        history = {k: [] for k in keys}

        def record(d_real, d_fake, grad_first):
            for key, value in probe(G, z_probe, train_x, digits.train.y).items():
                history[key].append(value)
            for key, value in zip(keys[3:], (d_real, d_fake, grad_first)):
                history[key].append(value)

        record(np.nan, np.nan, np.nan)                                       # epoch 0
        G.train()
        D.train()
        for epoch in range(1, s.epochs + 1):
            start = time.perf_counter()
            order = shuffle.permutation(len(real))
            sums = np.zeros(3)
            steps = len(real) // B
            for i in range(steps):
                x = real[order[i * B:(i + 1) * B]]                              # (B, 1, 8, 8)
                z = noise.standard_normal((B, s.latent, 1, 1)).astype(np.float32)
                opt_d.zero_grad()                                           # D: real -> 1, fake -> 0
                logits_real = D(x)
                bce(logits_real, ones)
                D.backward(bce.backward())
                fake = G(z)
                logits_fake = D(fake)
                bce(logits_fake, zeros)
                D.backward(bce.backward())
                opt_d.step()
                opt_g.zero_grad()                                           # G: make D say 1
                bce(D(fake), ones)
                G.backward(D.backward(bce.backward()))
                grad_first = float(np.sqrt(np.mean(G[0].weight.grad.astype(np.float64) ** 2)))
                opt_g.step()
                sigmoid = lambda t: float(np.mean(1 / (1 + np.exp(-t.astype(np.float64)))))
                sums += (sigmoid(logits_real), sigmoid(logits_fake), grad_first)
            record(*(sums / steps))
            if progress:
                print(f"{name} epoch {epoch}: D(x) {history['d_real'][-1]:.3f} D(G(z)) "
                      f"{history['d_fake'][-1]:.3f} pixel std {history['pixel_std'][-1]:.3f} "
                      f"classes {history['classes'][-1].tolist()} "
                      f"{time.perf_counter() - start:.1f} s", flush=True)
        G.eval()
        states[name] = G.state_dict()
        histories[name] = {k: np.array(v) for k, v in history.items()}
    return states, histories


def load(path=PATH, settings=SETTINGS):
    """The file's generators (eval mode) and histories: ``{"bn": G, "plain": G}``, and
    ``{"bn": {key: array with one entry per epoch, epoch 0 first}, "plain": ...}``."""
    with np.load(path, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    generators, histories = {}, {}
    for name, batch_norm in (("bn", True), ("plain", False)):
        G = generator(settings.latent, settings.channels, batch_norm, rng=0)
        G.load_state_dict({key[len(name) + 1:]: value for key, value in arrays.items()
                           if key.startswith(name + ".") and ".history." not in key})
        generators[name] = G.eval()
        histories[name] = {key.split(".history.")[1]: value for key, value in arrays.items()
                           if key.startswith(name + ".history.")}
    return generators, histories


def main():
    states, histories = train_pair()
    arrays = {f"{name}.{key}": value for name, state in states.items() for key, value in state.items()}
    arrays.update({f"{name}.history.{key}": value for name, history in histories.items()
                   for key, value in history.items()})
    arrays["settings"] = np.array(list(SETTINGS), dtype=np.float64)
    np.savez(PATH, **arrays)
    print(f"wrote {PATH} ({PATH.stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
