"""The networks of the training-step rows of ``deconv bench``: one table of block builders.

Each training-step row times one step of a small network: forward + L1
loss, then backward + Adam step (the loss, the optimizer and the timing
are shared, in :mod:`deconv.bench.peers`). A network is described once per
implementation, by the four builders of its :class:`Block`:

==============  ============================================================
builder         what it builds
==============  ============================================================
``shapes``      ``geometry -> (x shape, target shape)``
``deconv``      ``(geometry, dtype) -> deconv.nn`` module (the product)
``torch``       ``(geometry, torch) -> torch.nn.Module``: its twin in the
                peer's own layers (parameters in the same order)
``reference``   ``(geometry, x, W) -> (y, backward)`` in float64 from
                :mod:`deconv.reference` (convolutions) and plain NumPy (the
                rest); ``backward(grad_y)`` returns the gradients of ``W``.
                Never through :mod:`deconv.nn`, whose layers it checks.
``reduce``      ``(geometry, channel_cap) -> geometry`` of the check version
==============  ============================================================

``W`` is the list of parameters in ``parameters()`` order of the deconv
module; the case's inputs ``p0``, ``p1``, ... hold them.

=====================  =====================================================
op                     network
=====================  =====================================================
``superres_train``     :func:`deconv.models.superres` (x2, 'deconv'
                       upsampling, residual) on ``(N, 3, h, h)``
``dcgan_block_train``  ConvTranspose2d(C_in -> C_out, k4, s2, p1, no bias)
                       -> BatchNorm2d(C_out) -> ReLU on ``(N, C_in, h, h)``,
                       the middle block of a DCGAN generator
``unet_block_train``   Conv2d(C -> C, k3, p1) -> GroupNorm(G, C) -> ReLU on
                       ``(N, C, h, h)``, a U-Net block
=====================  =====================================================

The models suite (:func:`deconv.bench.cases.model_cases`) adds one row per
family of ``deconv train`` (:data:`FAMILY_ROWS`): the network the family's
builder returns with its defaults, at its recipe's batch size. Those rows
share one :class:`Block` whose ``describe`` reads the module's layer list
(:mod:`deconv.bench.networks`), from which the torch twin and the float64
reference are built, so a change of a family's channels or depth needs no
change here. The check version is the same builder with at most
``channel_cap`` channels a layer (and no dropout).

===================  =======================================================
op                   network (x -> output), full size
===================  =======================================================
``skip_step``        :func:`deconv.models.denoising.unet`,
                     ``(16, 1, 48, 48) -> (16, 1, 48, 48)``
``text_step``        :func:`deconv.models.text_restoration.conv_stack`,
                     int64 ``(32, 64) -> (32, 97, 64)`` logits
``classifier_step``  :func:`deconv.models.recognition.digit_classifier`,
                     ``(64, 1, 8, 8) -> (64, 10)`` (dropout 0.3 on both sides)
``autoencoder_step`` :func:`deconv.models.compression.patch_autoencoder`,
                     ``(32, 3, 32, 32) -> (32, 3, 32, 32)``
``fsrcnn_step``      :func:`deconv.models.fsrcnn` x2 'deconv' (what ``deconv
                     train superres`` trains), ``(32, 1, 24, 24) -> (32, 1,
                     48, 48)``
``generator_step``   ``Sequential(generator(), discriminator())`` of
                     :mod:`deconv.models.generator`: ``D(G(z))``,
                     ``(64, 64, 1, 1) -> (64, 1)``
===================  =======================================================

Every row's loss is the shared L1 loss against a random target of the
output's shape, not the family's own (MSE, cross-entropy, BCE): a loss costs
a pass over the output, nothing next to the convolutions, and one loss keeps
the three implementations of the step in :mod:`deconv.bench.peers` single.
The generator's row is the generator's half of an adversarial step (G
forward, D on the fakes, backward through D into G), with Adam stepping
both networks; the family's full step also runs D on the real batch and
steps D and G apart.

Imported by the worker processes (as a sibling module): nothing here
imports NumPy, torch or deconv at module level.
"""

from typing import Callable, NamedTuple

#: eps of every normalization layer of the blocks (torch's default)
NORM_EPS = 1e-5


class Block(NamedTuple):
    """The builders of one training-step network (see the module docstring)."""
    shapes: Callable
    deconv: Callable
    torch: Callable
    reference: Callable
    reduce: Callable
    #: ``(geometry, module) -> dict`` of entries the parent adds to the geometry once it
    #: has built the deconv module (the family rows: its layer list, output and input kind)
    describe: Callable = None


def _reference_module():
    from .cases import load_reference_module
    return load_reference_module()


def _normalize(h, view, axes, gamma, beta, eps=NORM_EPS):
    """Training-mode normalization in float64 and its backward.

    ``h`` is standardised over ``axes`` of ``h.reshape(view)`` with the
    batch mean and the biased variance, then ``z = xhat * gamma + beta``
    per channel (axis 1 of ``h``).

    Returns
    -------
    z : ndarray, shape of ``h``
    backward : callable
        ``grad_z -> (grad_h, grad_gamma, grad_beta)``, from
        ``grad_h = (d - mean(d) - xhat * mean(d * xhat)) / sqrt(var + eps)``
        with ``d = grad_z * gamma`` (means over each group).
    """
    import numpy as np
    v = h.reshape(view)
    mean = v.mean(axis=axes, keepdims=True)
    var = ((v - mean) ** 2).mean(axis=axes, keepdims=True)
    inv_std = 1 / np.sqrt(var + eps)
    xhat = ((v - mean) * inv_std).reshape(h.shape)
    per_channel = (1, h.shape[1]) + (1,) * (h.ndim - 2)
    z = xhat * gamma.reshape(per_channel) + beta.reshape(per_channel)
    not_channel = (0,) + tuple(range(2, h.ndim))

    def backward(gz):
        d = (gz * gamma.reshape(per_channel)).reshape(view)
        xv = xhat.reshape(view)
        gh = (d - d.mean(axis=axes, keepdims=True)
              - xv * (d * xv).mean(axis=axes, keepdims=True)) * inv_std
        return gh.reshape(h.shape), (gz * xhat).sum(axis=not_channel), gz.sum(axis=not_channel)

    return z, backward


# ---------------------------------------------------------------------------
# superres_train: deconv.models.superres
# ---------------------------------------------------------------------------

def _superres_shapes(g):
    N, h = g["N"], g["h"]
    return (N, 3, h, h), (N, 3, 2 * h, 2 * h)


def _superres_deconv(g, dtype):
    from deconv import models
    return models.superres(scale=2, channels=tuple(g["channels"]), dtype=dtype, rng=0)


def _superres_torch(g, torch):
    nn, F = torch.nn, torch.nn.functional
    ch, c = g["channels"]

    class SuperRes(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(3, ch, 5, padding=2), nn.ReLU(), nn.Conv2d(ch, c, 1), nn.ReLU(),
                nn.Conv2d(c, c, 3, padding=1), nn.ReLU(),
                nn.ConvTranspose2d(c, 3, 4, stride=2, padding=1))
            self.head = nn.Conv2d(6, 3, 1)

        def forward(self, x):
            up = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            return self.head(torch.cat([up, self.body(x)], dim=1))

    return SuperRes()


def _superres_reference(g, x, W):
    """:func:`deconv.models.superres` written out a second time, on purpose (the oracle)."""
    import numpy as np
    R = _reference_module()
    h0 = R.conv2d(x, W[0], W[1], padding=2)                       # (N, C, h, h)
    a0 = np.maximum(h0, 0)
    h1 = R.conv2d(a0, W[2], W[3])                                  # (N, c, h, h)
    a1 = np.maximum(h1, 0)
    h2 = R.conv2d(a1, W[4], W[5], padding=1)                       # (N, c, h, h)
    a2 = np.maximum(h2, 0)
    h3 = R.conv_transpose2d(a2, W[6], W[7], stride=2, padding=1)   # (N, 3, 2h, 2h)
    up = R.upsample_bilinear2d(x, scale_factor=2)                  # (N, 3, 2h, 2h)
    cat = np.concatenate([up, h3], axis=1)                         # (N, 6, 2h, 2h)
    y = R.conv2d(cat, W[8], W[9])                                  # (N, 3, 2h, 2h)

    def backward(gy):
        gcat, g8, g9 = R.conv2d_backward(gy, cat, W[8])
        ga2, g6, g7 = R.conv_transpose2d_backward(gcat[:, up.shape[1]:], a2, W[6], stride=2,
                                                  padding=1)
        ga1, g4, g5 = R.conv2d_backward(ga2 * (h2 > 0), a1, W[4], padding=1)
        ga0, g2, g3 = R.conv2d_backward(ga1 * (h1 > 0), a0, W[2])
        _, g0, g1 = R.conv2d_backward(ga0 * (h0 > 0), x, W[0], padding=2)
        return [g0, g1, g2, g3, g4, g5, g6, g7, g8, g9]

    return y, backward


def _superres_reduce(g, cap):
    C, c = g["channels"]
    return dict(g, N=min(2, g["N"]), channels=(min(C, cap), min(c, cap // 2)))


# ---------------------------------------------------------------------------
# dcgan_block_train: ConvTranspose2d(k4, s2, p1, no bias) -> BatchNorm2d -> ReLU
# ---------------------------------------------------------------------------

def _dcgan_shapes(g):
    N, h = g["N"], g["h"]
    # (h - 1) * 2 - 2 + 4: a k4 s2 p1 transposed conv doubles the image
    return (N, g["C_in"], h, h), (N, g["C_out"], 2 * h, 2 * h)


def _dcgan_deconv(g, dtype):
    from deconv import nn
    return nn.Sequential(
        nn.ConvTranspose2d(g["C_in"], g["C_out"], 4, stride=2, padding=1, bias=False,
                           dtype=dtype, rng=0),
        nn.BatchNorm2d(g["C_out"], eps=NORM_EPS, dtype=dtype), nn.ReLU())


def _dcgan_torch(g, torch):
    nn = torch.nn
    return nn.Sequential(
        nn.ConvTranspose2d(g["C_in"], g["C_out"], 4, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(g["C_out"], eps=NORM_EPS), nn.ReLU())


def _dcgan_reference(g, x, W):
    import numpy as np
    R = _reference_module()
    h = R.conv_transpose2d(x, W[0], None, stride=2, padding=1)     # (N, C_out, 2h, 2h)
    # BatchNorm2d: statistics of each channel over (N, H, W)
    z, norm_backward = _normalize(h, h.shape, (0, 2, 3), W[1], W[2])
    y = np.maximum(z, 0)

    def backward(gy):
        gh, g1, g2 = norm_backward(gy * (z > 0))
        _, g0, _ = R.conv_transpose2d_backward(gh, x, W[0], stride=2, padding=1)
        return [g0, g1, g2]

    return y, backward


def _dcgan_reduce(g, cap):
    return dict(g, N=min(2, g["N"]), C_in=min(g["C_in"], cap), C_out=min(g["C_out"], cap))


# ---------------------------------------------------------------------------
# unet_block_train: Conv2d(k3, p1) -> GroupNorm -> ReLU
# ---------------------------------------------------------------------------

def _unet_shapes(g):
    shape = (g["N"], g["C"], g["h"], g["h"])
    return shape, shape


def _unet_deconv(g, dtype):
    from deconv import nn
    return nn.Sequential(nn.Conv2d(g["C"], g["C"], 3, padding=1, dtype=dtype, rng=0),
                         nn.GroupNorm(g["groups"], g["C"], eps=NORM_EPS, dtype=dtype),
                         nn.ReLU())


def _unet_torch(g, torch):
    nn = torch.nn
    return nn.Sequential(nn.Conv2d(g["C"], g["C"], 3, padding=1),
                         nn.GroupNorm(g["groups"], g["C"], eps=NORM_EPS), nn.ReLU())


def _unet_reference(g, x, W):
    import numpy as np
    R = _reference_module()
    h = R.conv2d(x, W[0], W[1], padding=1)                         # (N, C, H, W)
    # GroupNorm: statistics of each (sample, group) over its (C/G, H, W)
    z, norm_backward = _normalize(h, (h.shape[0], g["groups"], -1), (2,), W[2], W[3])
    y = np.maximum(z, 0)

    def backward(gy):
        gh, g2, g3 = norm_backward(gy * (z > 0))
        _, g0, g1 = R.conv2d_backward(gh, x, W[0], padding=1)
        return [g0, g1, g2, g3]

    return y, backward


def _unet_reduce(g, cap):
    C = min(g["C"], cap)
    # at least two channels per group, so that a group still spans channels
    return dict(g, N=min(2, g["N"]), C=C, groups=min(g["groups"], max(1, C // 2)))


# ---------------------------------------------------------------------------
# the model families of ``deconv train``: the network each builder returns
# ---------------------------------------------------------------------------

def _signature_default(fn, name):
    import inspect
    return inspect.signature(fn).parameters[name].default


def _gan_pair(dtype, latent=None, channels=None):
    """The generator's training step as one network: ``D(G(z))``."""
    from deconv import nn
    from deconv.models import generator as gan
    s = gan.DEFAULTS
    latent = s.latent if latent is None else latent
    channels = s.channels if channels is None else channels
    return nn.Sequential(
        gan.generator(latent, channels, s.image_size, dtype=dtype, rng=0),
        gan.discriminator(channels, s.image_size, dtype=dtype, rng=0))


def _family(name):
    """``(build(dtype, **kw), sample_shape(**kw), check_kw(cap), batch)`` of family ``name``.

    ``build`` is the family's own builder (the one ``deconv train`` calls);
    ``sample_shape`` one input's shape as the recipe's data has it;
    ``check_kw(cap)`` the builder's keywords of the check version (at most
    ``cap`` channels a layer, no dropout: the reference has no random mask);
    ``batch`` the recipe's batch size.
    """
    from deconv import models
    from deconv.models import compression, data, denoising, recipes, recognition
    from deconv.models import generator as gan
    from deconv.models import text_restoration as text
    if name == "generator":
        # (Z, 1, 1): the latent vector as the generator takes it
        return (_gan_pair, lambda latent=None, **_: (latent or gan.DEFAULTS.latent, 1, 1),
                lambda cap: dict(latent=cap, channels=max(1, cap // 2)),
                gan.DEFAULTS.batch_size)
    batch = recipes.RECIPES[name].batch_size
    if name == "skip":
        return (lambda dtype, **kw: denoising.unet(dtype=dtype, rng=0, **kw),
                lambda **_: (1, denoising.PATCH, denoising.PATCH),
                lambda cap: dict(channels=(max(1, cap // 2), max(1, cap // 2), cap)), batch)
    if name == "text":
        window = _signature_default(text.stdlib_corpus, "window")
        return (lambda dtype, **kw: text.conv_stack(dtype=dtype, rng=0, **kw),
                lambda **_: (window,),
                lambda cap: dict(embedding_dim=max(1, cap // 2), channels=cap), batch)
    if name == "classifier":
        size = _signature_default(recognition.digit_classifier, "image_size")
        return (lambda dtype, **kw: recognition.digit_classifier(dtype=dtype, rng=0, **kw),
                lambda **_: (1, size, size),
                lambda cap: dict(width=max(1, cap // 2), dropout=0.0), batch)
    if name == "autoencoder":
        return (lambda dtype, **kw: compression.patch_autoencoder(dtype=dtype, rng=0, **kw),
                lambda **_: (3, compression.PATCH, compression.PATCH),
                lambda cap: dict(channels=(max(1, cap // 2), cap)), batch)
    if name == "superres":
        options = recipes.RECIPES[name].options
        return (lambda dtype, **kw: models.fsrcnn(options["scale"], options["upsample"],
                                                  dtype=dtype, rng=0, **kw),
                lambda **_: (1, data.SUPERRES_PATCH, data.SUPERRES_PATCH),
                lambda cap: dict(channels=(cap, max(1, cap // 2))), batch)
    raise ValueError(f"no model family {name!r}")


#: op of each family's training-step row -> the family (``deconv train``'s name); the
#: superres family trains :func:`deconv.models.fsrcnn`, not the ``superres_train`` row's network
FAMILY_ROWS = {"skip_step": "skip", "text_step": "text", "classifier_step": "classifier",
               "autoencoder_step": "autoencoder", "fsrcnn_step": "superres",
               "generator_step": "generator"}


def family_geometry(name, N=None, check_cap=None):
    """The geometry of family ``name``'s row: the recipe's batch and the builder's defaults,
    or (``check_cap``) the small network of the check version, batch ``N``."""
    _, _, check_kw, batch = _family(name)
    return dict(model=name, N=batch if N is None else N,
                kw={} if check_cap is None else check_kw(check_cap))


def _family_shapes(g):
    sample = _family(g["model"])[1](**g["kw"])
    return (g["N"],) + tuple(sample), (g["N"],) + tuple(g["out"])


def _family_deconv(g, dtype):
    return _family(g["model"])[0](dtype, **g["kw"])


def _family_torch(g, torch):
    from .networks import torch_twin
    return torch_twin(g["layers"], torch)


def _family_reference(g, x, W):
    from .networks import reference
    return reference(g["layers"], x, W)


def _family_reduce(g, cap):
    return family_geometry(g["model"], min(2, g["N"]), cap)


def _family_describe(g, module):
    """The layer list, one sample's output shape, and ``x_vocab`` when the input is indices.

    The output shape is read off one forward of a single sample in eval mode
    (BatchNorm on its running statistics, no dropout): the network says
    what it makes, the benchmark holds no second description of it.
    """
    import numpy as np
    from .networks import describe
    layers = describe(module)
    sample = _family(g["model"])[1](**g["kw"])
    first = layers
    while first[0] == "sequential":
        first = first[1]["layers"][0]
    vocab = first[1]["num_embeddings"] if first[0] == "embedding" else None
    dtype = module.parameters()[0].dtype
    x = np.zeros((1,) + tuple(sample), dtype=np.int64 if vocab else dtype)
    module.eval()
    try:
        out = module(x).shape[1:]
    finally:
        module.train()
    return dict(layers=layers, out=list(out), x_vocab=vocab)


_FAMILY_BLOCK = Block(_family_shapes, _family_deconv, _family_torch, _family_reference,
                      _family_reduce, _family_describe)

#: op -> its builders
TRAIN_BLOCKS = {
    "superres_train": Block(_superres_shapes, _superres_deconv, _superres_torch,
                            _superres_reference, _superres_reduce),
    "dcgan_block_train": Block(_dcgan_shapes, _dcgan_deconv, _dcgan_torch, _dcgan_reference,
                               _dcgan_reduce),
    "unet_block_train": Block(_unet_shapes, _unet_deconv, _unet_torch, _unet_reference,
                              _unet_reduce),
    **{op: _FAMILY_BLOCK for op in FAMILY_ROWS},
}
