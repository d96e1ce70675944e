"""A DCGAN-style digit generator trained adversarially, and how it is judged (issue 15).

The generator paints an image from a latent vector with transposed
convolutions (Radford, Metz & Chintala 2016: transposed conv -> BatchNorm ->
ReLU blocks, a Tanh output, N(0, 0.02) weights); a convolutional
discriminator with LeakyReLU scores images as real or generated. Both are
trained with binary cross-entropy on logits (Adam, lr 2e-4, beta1 0.5; the
real images' target smoothed to 0.9, Salimans et al. 2016) on the training
split of scikit-learn's 8x8 digits (:func:`deconv.data.digits`, the first
1437 images; the 360 held-out images, mostly from other writers, are
never seen by the generator).

The samples are judged with tools that never saw them and that are fitted on
the training split only:

* a small conv classifier (:func:`judge`), whose accuracy and confidence on
  the held-out real digits show it is a good judge: the share of samples it
  classifies with probability >= 0.9, and the share of each class;
* the Fréchet distance (:func:`frechet_distance`) between held-out real
  digits and samples in the judge's penultimate features, against the same
  distance for samples of a Gaussian fitted to the training images
  (:func:`fit_gaussian`, full covariance);
* a memorisation check (:func:`memorisation`): the median distance from a
  sample to its nearest training image must not be below the median distance
  from a held-out digit to its nearest training image.

:func:`run` is ``deconv train generator``: it trains, prints these numbers
and writes ``checkpoint.npz`` (both networks' weights) and ``samples.png``.

Examples
--------
>>> import numpy as np
>>> from deconv.models import generator as gan
>>> net = gan.generator(latent=16, channels=8, rng=0)
>>> net(np.zeros((2, 16, 1, 1), dtype=np.float32)).shape
(2, 1, 8, 8)
>>> gan.discriminator(channels=8, rng=0)(np.zeros((2, 1, 8, 8), dtype=np.float32)).shape
(2, 1)
>>> gan.frechet_distance(np.zeros(2), np.eye(2), np.ones(2), 4 * np.eye(2))   # 2 + 2 (2 - 1)**2
4.0
"""

import os
import sys
import time
from typing import NamedTuple

import numpy as np

from deconv import nn, optim
from deconv.functional.interpolate import interpolate
from deconv.functional.pooling import avg_pool2d
from deconv.functional.validation import (
    as_bool, as_choice, as_generator, as_int_at_least, as_real, as_samples,
)
from deconv.models import data
from deconv.train import Trainer

__all__ = [
    "generator", "discriminator", "judge", "dcgan_init_", "GanSettings", "DEFAULTS", "QUICK",
    "train", "sample", "to_model_space", "train_judge", "judge_outputs", "frechet_distance",
    "frechet_distance_of", "fit_gaussian", "gaussian_samples", "nearest_distances",
    "memorisation", "evaluate", "run", "run_name", "IMAGE_SIZES", "CONFIDENT",
]

#: Side of the images the networks work on: the digits' own 8, or 16 (digits upsampled
#: bilinearly for training; samples averaged back over 2x2 blocks for judging).
IMAGE_SIZES = (8, 16)
#: The judge's confidence threshold: a sample counts as a clear digit when the judge gives
#: its most likely class at least this probability.
CONFIDENT = 0.9
#: Number of digit classes.
CLASSES = 10


# ---------------------------------------------------------------------------
# the networks
# ---------------------------------------------------------------------------

def _stage_sizes(image_size):
    """Sides of the feature maps from 4 up to ``image_size``, doubling: (4, 8) or (4, 8, 16)."""
    size = as_choice(image_size, "image_size", IMAGE_SIZES)
    sizes = [4]
    while sizes[-1] < size:
        sizes.append(2 * sizes[-1])
    return sizes


def generator(latent=64, channels=32, image_size=8, *, dtype=np.float32, rng=None):
    """The generator: a latent vector to an image by transposed convolutions.

    Parameters
    ----------
    latent : int, default 64
        ``Z``, the length of the latent vector, passed as ``(N, Z, 1, 1)``.
    channels : int, default 32
        ``C``, the width of the last block; each block before it is twice as
        wide.
    image_size : {8, 16}, default 8
        ``S``, the side of the output.
    dtype : np.float32 (default) or np.float64
    rng : int, np.random.Generator or None
        Seeds the DCGAN initialisation (:func:`dcgan_init_`).

    Returns
    -------
    nn.Sequential
        For ``S = 8`` (``S = 16`` adds one stride-2 block of width ``C``
        and doubles the widths before it)::

            input                                         (N, Z, 1, 1)
            0  ConvTranspose2d(Z, 2C, 4, bias=False)      (N, 2C, 4, 4)
            1  BatchNorm2d(2C)
            2  ReLU
            3  ConvTranspose2d(2C, C, 4, stride=2,
                               padding=1, bias=False)     (N, C, 8, 8)
            4  BatchNorm2d(C)
            5  ReLU
            6  ConvTranspose2d(C, 1, 3, padding=1)        (N, 1, S, S)
            7  Tanh                                       values in (-1, 1)

    Notes
    -----
    A 4x4 kernel of stride 2 and padding 1 doubles the side exactly
    (``(L - 1) 2 - 2 + 4 = 2 L``), and since the stride divides the kernel
    every output pixel gets the same number of taps: no checkerboard from
    uneven overlap (Odena et al. 2016, notebook 4). The convolutions
    followed by BatchNorm have no bias (its shift would be subtracted
    again), as in DCGAN. The last layer maps to the image at full
    resolution with a 3x3 kernel, so no pixel depends on the stride-2
    phase alone.
    """
    latent = as_int_at_least(latent, "latent", 1)
    channels = as_int_at_least(channels, "channels", 1)
    sizes = _stage_sizes(image_size)
    widths = [channels * 2 ** (len(sizes) - 1 - i) for i in range(len(sizes))]
    kw = dict(dtype=dtype)
    layers = [nn.ConvTranspose2d(latent, widths[0], 4, bias=False, **kw),
              nn.BatchNorm2d(widths[0], dtype=dtype), nn.ReLU()]
    for cin, cout in zip(widths[:-1], widths[1:]):
        layers += [nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1, bias=False, **kw),
                   nn.BatchNorm2d(cout, dtype=dtype), nn.ReLU()]
    layers += [nn.ConvTranspose2d(widths[-1], 1, 3, padding=1, **kw), nn.Tanh()]
    return dcgan_init_(nn.Sequential(*layers), rng)


def discriminator(channels=32, image_size=8, *, dtype=np.float32, rng=None):
    """The discriminator: an image to one logit (real vs generated), the generator's mirror.

    Parameters
    ----------
    channels : int, default 32
        ``C``, the width of the first block; each stride-2 block doubles it.
    image_size : {8, 16}, default 8
        ``S``.
    dtype : np.float32 (default) or np.float64
    rng : int, np.random.Generator or None

    Returns
    -------
    nn.Sequential
        For ``S = 8`` (``S = 16`` adds one stride-2 block)::

            input                                        (N, 1, S, S)  in [-1, 1]
            0  Conv2d(1, C, 3, padding=1)                (N, C, 8, 8)
            1  LeakyReLU(0.2)
            2  Conv2d(C, 2C, 4, stride=2, padding=1,
                      bias=False)                        (N, 2C, 4, 4)
            3  BatchNorm2d(2C)
            4  LeakyReLU(0.2)
            5  Conv2d(2C, 1, 4)                          (N, 1, 1, 1)
            6  Flatten                                   (N, 1)  logits

    Notes
    -----
    As in DCGAN, the first layer has no BatchNorm (it would normalise the
    images themselves) and LeakyReLU of slope 0.2 lets a gradient through
    for negative responses, so the generator still learns where the
    discriminator is sure.
    """
    channels = as_int_at_least(channels, "channels", 1)
    sizes = _stage_sizes(image_size)[::-1]
    kw = dict(dtype=dtype)
    layers = [nn.Conv2d(1, channels, 3, padding=1, **kw), nn.LeakyReLU(0.2)]
    width = channels
    for _ in sizes[1:]:
        layers += [nn.Conv2d(width, 2 * width, 4, stride=2, padding=1, bias=False, **kw),
                   nn.BatchNorm2d(2 * width, dtype=dtype), nn.LeakyReLU(0.2)]
        width *= 2
    layers += [nn.Conv2d(width, 1, 4, **kw), nn.Flatten()]
    return dcgan_init_(nn.Sequential(*layers), rng)


def dcgan_init_(model, rng=None):
    """DCGAN's initialisation, in place: conv weights N(0, 0.02), BatchNorm scale N(1, 0.02).

    Biases of the convolutions and of BatchNorm start at zero. The layers
    are filled in order from one generator, so a seed gives one network.

    Parameters
    ----------
    model : nn.Module
    rng : int, np.random.Generator or None

    Returns
    -------
    model : nn.Module
    """
    gen = as_generator(rng)
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(module.weight, 0.0, 0.02, rng=gen)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.normal_(module.weight, 1.0, 0.02, rng=gen)
        else:
            continue
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    return model


def judge(channels=(16, 32), features=64, *, dtype=np.float32, rng=None):
    """The held-out digits classifier that judges the samples (8x8 digits in [0, 1]).

    Parameters
    ----------
    channels : (int, int), default (16, 32)
        ``C1, C2``.
    features : int, default 64
        ``F``, the width of the penultimate layer, whose activations are
        the feature space of the Fréchet distance.
    dtype : np.float32 (default) or np.float64
    rng : int, np.random.Generator or None

    Returns
    -------
    nn.Sequential
        ::

            input                              (N, 1, 8, 8)
            0  Conv2d(1, C1, 3, padding=1)     (N, C1, 8, 8)
            1  ReLU
            2  MaxPool2d(2)                    (N, C1, 4, 4)
            3  Conv2d(C1, C2, 3, padding=1)    (N, C2, 4, 4)
            4  ReLU
            5  MaxPool2d(2)                    (N, C2, 2, 2)
            6  Flatten                         (N, 4 C2)
            7  Linear(4 C2, F)                 (N, F)
            8  ReLU                            (N, F)  the features
            9  Linear(F, 10)                   (N, 10) logits
    """
    gen = as_generator(rng)
    c1, c2 = channels
    kw = dict(dtype=dtype, rng=gen)
    return nn.Sequential(
        nn.Conv2d(1, c1, 3, padding=1, **kw), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(c1, c2, 3, padding=1, **kw), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(4 * c2, features, **kw), nn.ReLU(),
        nn.Linear(features, CLASSES, **kw),
    )


# ---------------------------------------------------------------------------
# adversarial training
# ---------------------------------------------------------------------------

class GanSettings(NamedTuple):
    """Hyper-parameters of an adversarial run (:func:`train`)."""
    epochs: int = 300
    batch_size: int = 64
    lr: float = 2e-4
    beta1: float = 0.5
    latent: int = 64
    channels: int = 32
    image_size: int = 8
    seed: int = 0
    # the sampled generator's weights: an exponential moving average of the trained ones with
    # this decay per step (0: the trained weights themselves)
    ema: float = 0.999
    # the discriminator's target for real images: below 1, one-sided label smoothing
    # (Salimans et al. 2016); the generated images' target stays 0 and the generator's 1
    real_target: float = 1.0


#: ``deconv train generator``: 400 epochs with the real images' target smoothed to 0.9,
#: which keeps the discriminator from saturating on real digits. Measured (seed 0): 82.9 %
#: of samples judged clear, Frechet 7.68; re-run on the final kernels (blocked float32
#: sums), 80.8 %, Frechet 7.00 (4.7 min, 1 thread, shared machine); without the smoothing 79.3 / 79.6 / 80.5 % at 200
#: / 300 / 350 epochs against 81.5 / 82.2 / 83.1 % with it (the average taken per epoch).
DEFAULTS = GanSettings(epochs=400, real_target=0.9)
#: ``deconv train generator --quick``: under a minute on 2 cores; a higher learning rate and
#: a shorter average (about the last 100 steps) for its 550 steps.
QUICK = GanSettings(epochs=25, lr=1e-3, ema=0.99, real_target=0.9)


def to_model_space(images, image_size):
    """Digits in [0, 1], ``(N, 1, 8, 8)`` -> the networks' input: ``(N, 1, S, S)`` in [-1, 1].

    ``S = 16`` upsamples bilinearly (:func:`deconv.interpolate`).
    """
    size = as_choice(image_size, "image_size", IMAGE_SIZES)
    x = np.asarray(images)
    if size != x.shape[-1]:
        x = interpolate(x, size=(size, size), mode="bilinear")
    return 2 * x - 1


def _to_digit_space(output):
    """The generator's output ``(N, 1, S, S)`` in (-1, 1) -> ``(N, 1, 8, 8)`` in (0, 1).

    For ``S = 16``, the mean of each 2x2 block: the judge, the baseline and the nearest
    training images all live at the digits' own 8x8.
    """
    x = (output + 1) / 2
    while x.shape[-1] > 8:
        x = avg_pool2d(x, 2)
    return x


def _latents(gen, count, latent, dtype):
    """``count`` latent vectors of N(0, 1): ``(count, Z, 1, 1)``."""
    return gen.standard_normal((count, latent, 1, 1)).astype(dtype)


def train(images, settings=DEFAULTS, *, stream=None, progress=True, on_epoch=None):
    """Train a generator and a discriminator adversarially on ``images``.

    Parameters
    ----------
    images : ndarray, shape (N, 1, 8, 8), float32 or float64, values in [0, 1]
        The real digits (the training split).
    settings : GanSettings
    stream : file-like, optional
        Where the per-epoch lines go (default ``sys.stderr``).
    progress : bool, default True
        Print one line per epoch.
    on_epoch : callable, optional
        ``on_epoch(epoch, G, D)`` after every epoch (e.g. to judge samples
        as training goes); it must leave ``G`` and ``D`` in train mode.

    Returns
    -------
    G, D : nn.Sequential
        The generator to sample from, in eval mode (BatchNorm on its
        running statistics), and the discriminator. With ``settings.ema > 0``
        ``G`` holds the moving average of the trained generator's weights,
        and BatchNorm statistics measured for those weights.
    history : dict of lists, one entry per epoch
        ``d_loss`` (the discriminator's BCE on real plus generated, averaged
        over the epoch's steps), ``g_loss`` (the generator's non-saturating
        BCE), ``d_real`` and ``d_fake`` (mean ``sigmoid`` of the logits on
        real and on generated images, before each discriminator update),
        ``seconds``.

    Notes
    -----
    Each step, with a batch ``x`` of ``B`` real images and ``z`` of ``B``
    latents (Goodfellow et al. 2014, DCGAN's recipe):

    1. discriminator: ``-t log D(x) - (1 - t) log(1 - D(x)) - log(1 - D(G(z)))``,
       as two BCE terms with targets ``t`` (``settings.real_target``: 1, or
       below 1 for one-sided label smoothing) and 0, their gradients added,
       one Adam step;
    2. generator: ``-log D(G(z))`` (the non-saturating loss: BCE with
       target 1 on the generated batch) through the updated discriminator,
       whose input gradient goes back through ``G``, one Adam step.

    The gradients that step 2 leaves in the discriminator are cleared
    before its next update. After each step the averaged weights move
    ``w_avg = ema w_avg + (1 - ema) w`` (Polyak averaging of the generator,
    Yazıcı et al. 2019: it smooths the oscillation of adversarial training
    and gives cleaner samples than the last iterate). The trained
    generator's BatchNorm statistics belong to its own weights, so at the
    end those of the averaged one are measured afresh: their plain average
    over 16 batches of latents in train mode. Each epoch visits a fresh permutation of the
    images in ``N // B`` full batches (a short last batch would give
    BatchNorm noisy statistics). Shuffling, latents and both
    initialisations come from ``settings.seed``, so a run is reproducible
    bit for bit.
    """
    x_all = as_samples(images, "images")
    s = settings
    epochs = as_int_at_least(s.epochs, "epochs", 0)
    batch = as_int_at_least(s.batch_size, "batch_size", 1)
    if batch > len(x_all):
        raise ValueError(f"batch_size must be at most the number of images ({len(x_all)}), "
                         f"got {batch}")
    lr = as_real(s.lr, "lr", 0, low_open=True)
    beta1 = as_real(s.beta1, "beta1", 0, 1, high_open=True)
    ema = as_real(s.ema, "ema", 0, 1, high_open=True)
    real_target = as_real(s.real_target, "real_target", 0.5, 1)
    progress = as_bool(progress, "progress")
    stream = sys.stderr if stream is None else stream
    dtype = x_all.dtype
    real = to_model_space(x_all, s.image_size).astype(dtype)
    seeds = np.random.SeedSequence(as_int_at_least(s.seed, "seed", 0)).spawn(5)
    G = generator(s.latent, s.channels, s.image_size, dtype=dtype, rng=np.random.default_rng(seeds[0]))
    D = discriminator(s.channels, s.image_size, dtype=dtype, rng=np.random.default_rng(seeds[1]))
    shuffle, noise = np.random.default_rng(seeds[2]), np.random.default_rng(seeds[3])
    opt_g = optim.Adam(G.parameters(), lr=lr, betas=(beta1, 0.999))
    averaged = [p.data.copy() for p in G.parameters()] if ema else None
    opt_d = optim.Adam(D.parameters(), lr=lr, betas=(beta1, 0.999))
    bce = nn.BCEWithLogitsLoss()
    ones, zeros = np.ones((batch, 1), dtype), np.zeros((batch, 1), dtype)
    real_targets = np.full((batch, 1), real_target, dtype)
    history = {k: [] for k in ("d_loss", "g_loss", "d_real", "d_fake", "seconds")}
    G.train()
    D.train()
    steps = len(real) // batch
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        sums = np.zeros(4)
        order = shuffle.permutation(len(real))
        for i in range(steps):
            x = real[order[i * batch:(i + 1) * batch]]                 # (B, 1, S, S)
            z = _latents(noise, batch, s.latent, dtype)                # (B, Z, 1, 1)
            # 1. the discriminator: real -> 1, generated -> 0
            opt_d.zero_grad()
            logits_real = D(x)                                          # (B, 1)
            loss_real = bce(logits_real, real_targets)
            D.backward(bce.backward())
            fake = G(z)                                                 # (B, 1, S, S)
            logits_fake = D(fake)
            loss_fake = bce(logits_fake, zeros)
            D.backward(bce.backward())
            opt_d.step()
            # 2. the generator: make the updated discriminator say 1
            opt_g.zero_grad()
            loss_g = bce(D(fake), ones)
            G.backward(D.backward(bce.backward()))       # G still holds this fake's forward
            opt_g.step()
            if averaged is not None:
                for avg, p in zip(averaged, G.parameters()):
                    avg *= ema
                    avg += (1 - ema) * p.data
            sums += (loss_real + loss_fake, loss_g, _mean_sigmoid(logits_real),
                     _mean_sigmoid(logits_fake))
        means = sums / max(steps, 1)
        for key, value in zip(("d_loss", "g_loss", "d_real", "d_fake"), means):
            history[key].append(float(value))
        history["seconds"].append(time.perf_counter() - start)
        if progress:
            print(f"epoch {epoch}/{epochs}: D loss {means[0]:.4f}, G loss {means[1]:.4f}, "
                  f"D(x) {means[2]:.3f}, D(G(z)) {means[3]:.3f}, "
                  f"{history['seconds'][-1]:.2f} s", file=stream, flush=True)
        if on_epoch is not None:
            on_epoch(epoch, G, D)
    if averaged is not None:
        G = _averaged_generator(G, averaged, s, np.random.default_rng(seeds[4]), batch)
    G.eval()
    return G, D, history


def _averaged_generator(G, averaged, s, gen, batch, batches=16):
    """A generator holding the ``averaged`` weights, its BatchNorm statistics the plain mean
    over ``batches`` forward passes of ``batch`` latents (momentum None) in train mode."""
    out = generator(s.latent, s.channels, s.image_size, dtype=averaged[0].dtype, rng=0)
    for p, avg in zip(out.parameters(), averaged):
        p.data[...] = avg
    norms = [m for m in out.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in norms:
        m.momentum = None        # the cumulative average, from the first batch on
    out.train()
    for _ in range(batches):
        out(_latents(gen, batch, s.latent, out[0].weight.dtype))
    for m in norms:
        m.momentum = 0.1
    return out


def _mean_sigmoid(logits):
    return float(np.mean(1.0 / (1.0 + np.exp(-logits.astype(np.float64)))))


def sample(G, count, latent, *, seed=0, batch_size=256):
    """``count`` digits from generator ``G``: ``(count, 1, 8, 8)`` in (0, 1), G's dtype.

    Latents are ``N(0, 1)`` from ``np.random.default_rng(seed)``; ``G``
    runs in eval mode (BatchNorm on its running statistics, so a sample
    does not depend on the others drawn with it). 16x16 outputs are
    averaged over 2x2 blocks back to the digits' 8x8.
    """
    count = as_int_at_least(count, "count", 1)
    gen = as_generator(seed, "seed")
    dtype = G[0].weight.dtype
    z = _latents(gen, count, as_int_at_least(latent, "latent", 1), dtype)
    G.eval()
    out = [G(z[i:i + batch_size]) for i in range(0, count, batch_size)]
    return _to_digit_space(np.concatenate(out))


# ---------------------------------------------------------------------------
# judging: the classifier, the Fréchet distance, the Gaussian baseline, memorisation
# ---------------------------------------------------------------------------

def train_judge(dataset, *, epochs=60, seed=0):
    """Train :func:`judge` on ``dataset.train`` (the real training digits) with cross-entropy.

    Adam (lr 1e-3), batches of 32, ``epochs`` epochs; weights and shuffling
    from ``seed``. Returns the network in eval mode.
    """
    net = judge(rng=seed, dtype=dataset.train.x.dtype)
    trainer = Trainer(net, nn.CrossEntropyLoss(), optim.Adam(net.parameters(), lr=1e-3),
                      batch_size=32, epochs=epochs, seed=seed, progress="none")
    trainer.fit(dataset.train.x, dataset.train.y)
    net.eval()
    return net


def judge_outputs(net, images, batch_size=512):
    """The judge's class probabilities ``(N, 10)`` and penultimate features ``(N, F)``.

    Both in float64; probabilities are the softmax of the logits.
    """
    x = as_samples(images, "images")
    net.eval()
    feats, logits = [], []
    body, head = net[:-1], net[len(net) - 1]
    for i in range(0, len(x), batch_size):
        f = body(x[i:i + batch_size])
        feats.append(f)
        logits.append(head(f))
    logits = np.concatenate(logits).astype(np.float64)
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True), np.concatenate(feats).astype(np.float64)


def frechet_distance(mean1, cov1, mean2, cov2):
    """Fréchet (2-Wasserstein squared) distance between two Gaussians.

    Parameters
    ----------
    mean1, mean2 : array_like, shape (F,)
    cov1, cov2 : array_like, shape (F, F)
        Symmetric positive semi-definite.

    Returns
    -------
    float

    Notes
    -----
    ``d**2 = |m1 - m2|**2 + tr(S1 + S2 - 2 (S1 S2)**(1/2))`` (Dowson &
    Landau 1982; the FID of Heusel et al. 2017 in other features). The
    trace of the matrix square root is taken as
    ``sum_i sqrt(lambda_i)``, ``lambda_i`` the eigenvalues of the symmetric
    ``S1**(1/2) S2 S1**(1/2)``, which has the same spectrum as ``S1 S2``;
    eigenvalues that rounding makes slightly negative count as 0.

    Examples
    --------
    >>> frechet_distance([0.0], [[4.0]], [3.0], [[1.0]])      # 3**2 + (2 - 1)**2
    10.0
    """
    m1, m2 = (np.asarray(m, dtype=np.float64) for m in (mean1, mean2))
    s1, s2 = (np.asarray(c, dtype=np.float64) for c in (cov1, cov2))
    f = m1.shape[0] if m1.ndim == 1 else -1
    for name, arr, shape in (("mean1", m1, (f,)), ("mean2", m2, (f,)), ("cov1", s1, (f, f)),
                             ("cov2", s2, (f, f))):
        if arr.shape != shape:
            raise ValueError(f"{name} must have shape {shape} (means (F,), covariances (F, F)), "
                             f"got {arr.shape}")
    w, v = np.linalg.eigh((s1 + s1.T) / 2)
    root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    inner = root1 @ ((s2 + s2.T) / 2) @ root1
    trace_root = np.sqrt(np.clip(np.linalg.eigvalsh((inner + inner.T) / 2), 0, None)).sum()
    d2 = np.sum(np.square(m1 - m2)) + np.trace(s1) + np.trace(s2) - 2 * trace_root
    return float(max(d2, 0.0))


def frechet_distance_of(features1, features2):
    """:func:`frechet_distance` between Gaussians fitted to two sets of feature rows.

    Means and covariances (``np.cov``, unbiased) of ``(N1, F)`` and ``(N2, F)``.
    """
    a, b = (np.asarray(f, dtype=np.float64) for f in (features1, features2))
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError(f"features1 and features2 must be (N, F) arrays of the same F with at "
                         f"least 2 rows each, got {a.shape} and {b.shape}")
    return frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))


def fit_gaussian(images):
    """Mean ``(P,)`` and full covariance ``(P, P)`` (unbiased) of images flattened to ``P`` pixels."""
    x = as_samples(images, "images")
    flat = x.reshape(len(x), -1).astype(np.float64)
    return flat.mean(axis=0), np.cov(flat, rowvar=False)


def gaussian_samples(mean, cov, count, shape, *, seed=0, dtype=np.float32):
    """``count`` draws of ``N(mean, cov)`` reshaped to ``(count, *shape)``.

    ``mean + A e`` with ``e ~ N(0, I)`` from ``np.random.default_rng(seed)``
    and ``A = V diag(sqrt(w))`` from the eigendecomposition ``cov = V diag(w)
    V^T`` (``A A^T = cov``; unlike a Cholesky factor it exists for the
    singular covariances of digits, whose corner pixels never vary).
    Not clipped to the pixel range: the baseline is the Gaussian as fitted.
    """
    mean, cov = np.asarray(mean, np.float64), np.asarray(cov, np.float64)
    count = as_int_at_least(count, "count", 1)
    w, v = np.linalg.eigh((cov + cov.T) / 2)
    factor = v * np.sqrt(np.clip(w, 0, None))
    e = as_generator(seed, "seed").standard_normal((count, mean.shape[0]))
    return (mean + e @ factor.T).reshape((count,) + tuple(shape)).astype(dtype)


def nearest_distances(samples, references, batch_size=1024, *, return_index=False):
    """Euclidean distance from each sample to its nearest reference, ``(N,)`` float64.

    Both are flattened; computed in float64 as
    ``sqrt(max(|a|**2 + |b|**2 - 2 a.b, 0))`` a block of samples at a time.
    With ``return_index``, also the index of that reference, ``(N,)`` int64
    (the first one on a tie).
    """
    a = np.asarray(samples, np.float64).reshape(len(samples), -1)
    b = np.asarray(references, np.float64).reshape(len(references), -1)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"samples and references must have the same number of values per item, "
                         f"got {a.shape[1]} and {b.shape[1]}")
    bb = np.sum(b * b, axis=1)
    out, index = np.empty(len(a)), np.empty(len(a), dtype=np.int64)
    for i in range(0, len(a), batch_size):
        block = a[i:i + batch_size]
        d2 = np.sum(block * block, axis=1)[:, None] + bb[None, :] - 2 * block @ b.T
        index[i:i + batch_size] = d2.argmin(axis=1)
        out[i:i + batch_size] = np.sqrt(np.clip(d2.min(axis=1), 0, None))
    return (out, index) if return_index else out


def memorisation(samples, train_images, held_out_images):
    """The memorisation check: do samples sit closer to the training images than new digits do?

    Returns
    -------
    dict
        ``sample_median``: median distance from a sample to its nearest
        training image; ``held_out_median``: the same for the held-out real
        digits; ``memorises``: ``sample_median < held_out_median``.

    Notes
    -----
    A held-out digit is a fresh draw of a digit, so its distance to the
    nearest training image is what a generator that models the
    distribution, rather than its sample, should show; copies of training
    images give 0. The held-out digits of :func:`deconv.data.digits` come
    mostly from writers absent from the training split, which makes their
    distances larger than those of new digits by the training writers: the
    check errs on the strict side.
    """
    sample_median = float(np.median(nearest_distances(samples, train_images)))
    held_out_median = float(np.median(nearest_distances(held_out_images, train_images)))
    return {"sample_median": sample_median, "held_out_median": held_out_median,
            "memorises": sample_median < held_out_median}


def evaluate(samples, net, dataset):
    """Judge ``samples`` (``(N, 1, 8, 8)`` in [0, 1]) against the held-out digits.

    Returns
    -------
    dict
        ``confident``: share of samples whose most likely class has
        probability >= 0.9; ``class_shares``: tuple of the share of samples
        given each class 0..9 (most likely class, any confidence);
        ``min_class_share``; ``frechet``: Fréchet distance between the
        judge's features of the held-out digits and of the samples;
        ``sample_median``, ``held_out_median``, ``memorises``
        (:func:`memorisation`).
    """
    probs, feats = judge_outputs(net, samples)
    _, feats_real = judge_outputs(net, dataset.val.x)
    shares = np.bincount(probs.argmax(axis=1), minlength=CLASSES) / len(probs)
    out = {"confident": float(np.mean(probs.max(axis=1) >= CONFIDENT)),
           "class_shares": tuple(float(s) for s in shares),
           "min_class_share": float(shares.min()),
           "frechet": frechet_distance_of(feats_real, feats)}
    out.update(memorisation(samples, dataset.train.x, dataset.val.x))
    return out


# ---------------------------------------------------------------------------
# deconv train generator
# ---------------------------------------------------------------------------

#: Samples drawn for judging (the held-out set has 360 digits).
EVAL_SAMPLES = 1000
#: Seeds of the judged samples and of the Gaussian baseline's, apart from the training seed.
EVAL_SEED = 12345


def _settings(epochs, batch_size, lr, seed, quick, refused):
    """The run's GanSettings; options of ``deconv train`` that a GAN has no use for refused."""
    from deconv.models.recipes import SettingsError

    try:
        for option, value in refused.items():
            if value is not None and value is not False:
                raise ValueError(f"{option} (--{option}) does not apply to generator")
        base = QUICK if as_bool(quick, "quick (--quick)") else DEFAULTS
        return base._replace(
            epochs=as_int_at_least(base.epochs if epochs is None else epochs,
                                   "epochs (--epochs)", 0),
            batch_size=as_int_at_least(base.batch_size if batch_size is None else batch_size,
                                       "batch_size (--batch-size)", 1),
            lr=as_real(base.lr if lr is None else lr, "lr (--lr)", 0, low_open=True),
            seed=as_int_at_least(seed, "seed (--seed)", 0))
    except (TypeError, ValueError) as err:
        raise SettingsError(str(err)) from None


def run_name(settings, quick=False):
    """``generator``, then ``quick`` and each setting that differs from its default
    (``generator-epochs50-seed1``), in the form of :func:`deconv.models.recipes.run_name`."""
    base = QUICK if quick else DEFAULTS
    parts = ["generator"] + (["quick"] if quick else [])
    for key, form in (("lr", "lr{!r}"), ("batch_size", "batch{}"), ("epochs", "epochs{}"),
                      ("seed", "seed{}")):
        if getattr(settings, key) != getattr(base, key):
            parts.append(form.format(getattr(settings, key)))
    return "-".join(parts)


def run(*, epochs=None, batch_size=None, lr=None, seed=0, quick=False, out="runs",
        progress=None, stream=None, figure=True, optimizer="adam", momentum=None, resume=None,
        scale=None, upsample=None):
    """``deconv train generator``: train, judge, print, write the weights and ``samples.png``.

    ``epochs``, ``batch_size`` and ``lr`` default to :data:`DEFAULTS`
    (:data:`QUICK` with ``quick=True``). ``optimizer`` must be 'adam' (with
    beta1 0.5); ``momentum``, ``resume``, ``scale`` and ``upsample`` do not
    apply and are refused (:class:`deconv.models.recipes.SettingsError`),
    before any work. ``progress='none'`` prints no line per epoch (any other
    value, None included, prints one).

    Returns
    -------
    dict
        ``metrics`` (:func:`evaluate` of the samples), ``baselines``
        (``{"gaussian": ..., "held-out": ...}``: the Gaussian's samples and
        the held-out digits themselves judged the same way; the held-out
        Fréchet distance is against the training digits' features),
        ``judge_accuracy`` (on the held-out digits), ``history``,
        ``seconds``, ``beats_baseline`` (the targets: >= 80 % confident,
        every class >= 5 %, Fréchet distance below the Gaussian's, no
        memorisation), ``checkpoint``, ``figure``, ``settings``.
    """
    refused = {"momentum": momentum, "resume": resume, "scale": scale, "upsample": upsample}
    if optimizer != "adam":
        refused["optimizer"] = optimizer
    settings = _settings(epochs, batch_size, lr, seed, quick, refused)
    stream = sys.stdout if stream is None else stream
    out_dir = os.path.join(out, run_name(settings, bool(quick)))
    dataset = data.digits()
    start = time.perf_counter()
    G, D, history = train(dataset.train.x, settings, stream=stream, progress=progress != "none")
    seconds = time.perf_counter() - start
    net = train_judge(dataset, seed=settings.seed)
    _, feats_train = judge_outputs(net, dataset.train.x)
    val_probs, feats_val = judge_outputs(net, dataset.val.x)
    judge_accuracy = float(np.mean(val_probs.argmax(axis=1) == dataset.val.y))
    samples = sample(G, EVAL_SAMPLES, settings.latent, seed=EVAL_SEED)
    result = evaluate(samples, net, dataset)
    mean, cov = fit_gaussian(dataset.train.x)
    gauss = gaussian_samples(mean, cov, EVAL_SAMPLES, dataset.train.x.shape[1:], seed=EVAL_SEED)
    baselines = {"gaussian": evaluate(gauss, net, dataset)}
    held_out = evaluate(dataset.val.x, net, dataset)
    held_out["frechet"] = frechet_distance_of(feats_train, feats_val)
    baselines["held-out"] = held_out
    checks = _targets(result, baselines["gaussian"])
    print(f"\ngenerator: {len(history['d_loss'])} epochs in {seconds:.1f} s; judge accuracy on "
          f"the held-out digits {judge_accuracy * 100:.1f}%", file=stream)
    for label, m in (("model", result), ("gaussian", baselines["gaussian"]),
                     ("held-out", held_out)):
        print(f"  {label:<9} {_format(m)}", file=stream)
    for what, ok in checks.items():
        print(f"  {what}: {'yes' if ok else 'NO'}", file=stream)
    os.makedirs(out_dir, exist_ok=True)
    weights = {f"generator.{k}": v for k, v in G.state_dict().items()}
    weights.update({f"discriminator.{k}": v for k, v in D.state_dict().items()})
    checkpoint = nn.save_weights(weights, os.path.join(out_dir, "checkpoint.npz"))
    figure_path = None
    if figure:
        figure_path = _figure(samples, judge_outputs(net, samples)[0], dataset.train.x,
                              result, os.path.join(out_dir, "samples.png"))
    print(f"  checkpoint {checkpoint}", file=stream)
    if figure_path:
        print(f"  figure     {figure_path}", file=stream)
    return dict(metrics=result, baselines=baselines, judge_accuracy=judge_accuracy,
                history=history, seconds=seconds, beats_baseline=all(checks.values()),
                checks=checks, checkpoint=checkpoint, figure=figure_path, settings=settings)


def _targets(result, gaussian):
    return {"confident >= 80%": result["confident"] >= 0.8,
            "every class >= 5%": result["min_class_share"] >= 0.05,
            "Frechet below the Gaussian's": result["frechet"] < gaussian["frechet"],
            "no memorisation": not result["memorises"]}


def _format(m):
    shares = " ".join(f"{s * 100:.0f}" for s in m["class_shares"])
    return (f"confident {m['confident'] * 100:.1f}%, classes (%) [{shares}], Frechet "
            f"{m['frechet']:.3f}, NN median {m['sample_median']:.3f} (held-out "
            f"{m['held_out_median']:.3f})")


def _figure(samples, probs, train_images, result, path, rows=8, cols=10, pairs=8):
    """samples.png: a grid of samples (judge's class and confidence above each), then a few
    samples beside their nearest training image."""
    from deconv.models.recipes import _pyplot

    plt = _pyplot()
    if plt is None:
        return None
    shown = min(rows * cols, len(samples))
    fig, axes = plt.subplots(rows + 2, cols, figsize=(1.1 * cols, 1.25 * (rows + 2)))
    grey = dict(cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    for k, ax in enumerate(axes[:rows].ravel()):
        ax.axis("off")
        if k < shown:
            ax.imshow(samples[k, 0], **grey)
            ax.set_title(f"{probs[k].argmax()} ({probs[k].max():.2f})", fontsize=7)
    for ax in axes[rows:].ravel():
        ax.axis("off")
    per_row = cols // 2
    count = min(pairs, 2 * per_row, len(samples))
    distance, nearest = nearest_distances(samples[:count], train_images, return_index=True)
    for k in range(count):
        r, c = rows + k // per_row, 2 * (k % per_row)
        axes[r, c].imshow(samples[k, 0], **grey)
        axes[r, c].set_title(f"sample {k}", fontsize=7)
        axes[r, c + 1].imshow(train_images[nearest[k], 0], **grey)
        axes[r, c + 1].set_title(f"nearest: {distance[k]:.2f}", fontsize=7)
    fig.suptitle(f"deconv train generator: {result['confident'] * 100:.0f}% confident, Fréchet "
                 f"{result['frechet']:.2f}; last rows: sample, nearest training image (distance)",
                 fontsize=9)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path
