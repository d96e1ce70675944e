"""The five model families, ready to train, their losses, metrics and baselines.

Each builder returns a :class:`deconv.nn.Sequential` made of
:mod:`deconv.nn` layers (float32 by default; ``dtype=np.float64`` for
gradient checks) whose initial weights come from ``rng`` (an int seed, a
``np.random.Generator`` shared by the layers in order, or None for fresh
randomness, as the layers themselves):

============  ==========================================  ===================  ===========
family        builder                                     data                 loss
============  ==========================================  ===================  ===========
skip          :func:`skip`: denoising skip encoder-decoder  digits_denoising     MSE
text          :func:`text`: embedding, conv1d, deconv1d     text                 cross-entropy
classifier    :func:`classifier`: conv, deconv, pool,       digits               cross-entropy
              linear
autoencoder   :func:`autoencoder`: 3 strided convs, 3       patches              MSE
              stride-2 deconvs
superres      :func:`superres`: features, then deconv or    superres (x2, x4)    L1
              pixel-shuffle upsampling, residual on
              bilinear (RGB patches, notebook 6);
              :func:`fsrcnn`: FSRCNN on luminance,      superres_corpus      MSE
              residual on bicubic (``deconv train``)
============  ==========================================  ===================  ===========

``deconv train skip`` and ``deconv train text`` train the larger networks
of issue 15 on real data: :func:`deconv.models.denoising.unet` on grey
photographs (:mod:`deconv.models.denoising`) and
:func:`deconv.models.text_restoration.conv_stack` on the standard library's
source (:mod:`deconv.models.text_restoration`); :func:`skip` and
:func:`text` are the small first versions the notebooks and tests build.

(data loaders in :mod:`deconv.data`). :func:`loss` gives each family's
loss, :func:`evaluate` its validation metrics from a prediction, and
:func:`baseline` the same metrics for the trivial predictors the trained
model must beat (majority class, the noisy input, copying the corrupted
text, nearest, bilinear and bicubic upsampling).

Examples
--------
>>> import numpy as np
>>> from deconv import models
>>> net = models.superres(scale=2, upsample="pixelshuffle", rng=0)
>>> net(np.zeros((1, 3, 16, 16), dtype=np.float32)).shape
(1, 3, 32, 32)
>>> models.fsrcnn(scale=4, rng=0)(np.zeros((1, 1, 16, 16), dtype=np.float32)).shape
(1, 1, 64, 64)
"""

import numpy as np

from deconv import nn
from deconv.models import metrics
from deconv.functional import shapes
from deconv.models.data import VOCAB_SIZE
from deconv.functional.upsampling import upsample_bilinear2d, upsample_nearest2d
from deconv.functional.validation import as_choice, as_generator, as_int_at_least

__all__ = ["FAMILIES", "UPSAMPLERS", "skip", "text", "classifier", "autoencoder", "superres",
           "fsrcnn", "fsrcnn_loss", "build", "loss", "evaluate", "baseline", "predict_images",
           "SUPERRES_BASELINES"]

#: The command-line names of the five families.
FAMILIES = ("skip", "text", "classifier", "autoencoder", "superres")
#: The two ways :func:`superres` and :func:`fsrcnn` upsample (their ``upsample`` argument).
UPSAMPLERS = ("deconv", "pixelshuffle")


# ---------------------------------------------------------------------------
# 1. skip encoder-decoder (denoising digits)
# ---------------------------------------------------------------------------

def skip(in_channels=1, channels=(16, 32), *, dtype=np.float32, rng=None):
    """Skip encoder-decoder: conv, pool, upsample, concatenated with its input, conv, pool, deconv.

    Trained with MSE to denoise digits (:func:`deconv.data.digits_denoising`).

    Parameters
    ----------
    in_channels : int, default 1
        Channels of the image (also of the output).
    channels : (int, int), default (16, 32)
        ``C1``, ``C2`` below.
    dtype : np.float32 (default) or np.float64
    rng : int, np.random.Generator or None

    Returns
    -------
    nn.Sequential
        Shapes for an ``(N, 1, 8, 8)`` input (any even ``H, W`` work)::

            input                                         (N, 1, 8, 8)
            0  Concat(                                     -> (N, 1 + C1, 8, 8)
                 0  Identity                               (N, 1, 8, 8)    the skip
                 1  Sequential(                            the block:
                      0  Conv2d(1, C1, 3, padding='same')  (N, C1, 8, 8)
                      1  ReLU
                      2  MaxPool2d(2)                      (N, C1, 4, 4)
                      3  Upsample(scale_factor=2)          (N, C1, 8, 8)   nearest
                    ))
            1  Conv2d(1 + C1, C2, 3, padding=1)           (N, C2, 8, 8)
            2  ReLU
            3  MaxPool2d(2)                               (N, C2, 4, 4)
            4  ConvTranspose2d(C2, 1, 2, stride=2)        (N, 1, 8, 8)

    Notes
    -----
    The block's pooled-and-upsampled features are coarse (one value per
    2x2 block); concatenating the block's input puts the full-resolution
    pixels back next to them, as the skip connections of a U-Net do. The
    last layer, a 2x2 transposed conv of stride 2, paints every 2x2 output
    block from the ``C2`` features of one pooled position (the windows do
    not overlap). The output is linear (no final activation).
    """
    gen = as_generator(rng)
    c1, c2 = channels
    kw = dict(dtype=dtype, rng=gen)
    return nn.Sequential(
        nn.Concat(
            nn.Identity(),
            nn.Sequential(
                nn.Conv2d(in_channels, c1, 3, padding="same", **kw),
                nn.ReLU(),
                nn.MaxPool2d(2),
                nn.Upsample(scale_factor=2, mode="nearest"),
            ),
        ),
        nn.Conv2d(in_channels + c1, c2, 3, padding=1, **kw),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.ConvTranspose2d(c2, in_channels, 2, stride=2, **kw),
    )


# ---------------------------------------------------------------------------
# 2. text conv/deconv (restoring corrupted characters)
# ---------------------------------------------------------------------------

def text(vocab_size=VOCAB_SIZE, embedding_dim=32, channels=128, kernel_size=9, *,
         dtype=np.float32, rng=None):
    """Text conv/deconv: embedding, conv1d, ReLU, transposed conv1d to per-position logits.

    Trained with cross-entropy to restore corrupted characters
    (:func:`deconv.data.text`).

    Parameters
    ----------
    vocab_size : int, default ``deconv.data.VOCAB_SIZE`` (97)
        ``V``.
    embedding_dim : int, default 32
        ``D``.
    channels : int, default 128
        ``C``, the hidden channels.
    kernel_size : int, default 9
        ``k``, odd; both convolutions pad by ``(k - 1) / 2`` so that every
        length is kept. Each output position sees ``2 (k - 1) + 1``
        characters (17 by default) centred on it.
    dtype : np.float32 (default) or np.float64
    rng : int, np.random.Generator or None

    Returns
    -------
    nn.Sequential
        Shapes for an int64 input of ``N`` windows of ``L`` characters::

            input                                        (N, L)  int64 indices
            0  Embedding(V, D)                           (N, L, D)
            1  Permute((0, 2, 1))                        (N, D, L)
            2  Conv1d(D, C, k, padding=(k-1)/2)          (N, C, L)
            3  ReLU
            4  ConvTranspose1d(C, V, k, padding=(k-1)/2) (N, V, L)  logits

        The logits go to :class:`deconv.nn.CrossEntropyLoss` with the
        original windows ``(N, L)`` as targets.
    """
    k = as_int_at_least(kernel_size, "kernel_size", 1)
    if k % 2 == 0:
        raise ValueError(f"kernel_size must be odd and positive, got {kernel_size!r}")
    gen = as_generator(rng)
    kw = dict(dtype=dtype, rng=gen)
    p = (k - 1) // 2
    return nn.Sequential(
        nn.Embedding(vocab_size, embedding_dim, **kw),
        nn.Permute((0, 2, 1)),
        nn.Conv1d(embedding_dim, channels, k, padding=p, **kw),
        nn.ReLU(),
        nn.ConvTranspose1d(channels, vocab_size, k, padding=p, **kw),
    )


# ---------------------------------------------------------------------------
# 3. conv-deconv classifier (digits)
# ---------------------------------------------------------------------------

def classifier(in_channels=1, image_size=8, num_classes=10, channels=(16, 16), *,
               dtype=np.float32, rng=None):
    """Conv-deconv classifier: conv, ReLU, transposed conv x2, max-pool, flatten, linear.

    Trained with softmax cross-entropy on the digits (:func:`deconv.data.digits`).

    Parameters
    ----------
    in_channels : int, default 1
    image_size : int, default 8
        ``S``, the height and width of the input (fixes the linear layer).
    num_classes : int, default 10
    channels : (int, int), default (16, 16)
        ``C1``, ``C2`` below.
    dtype : np.float32 (default) or np.float64
    rng : int, np.random.Generator or None

    Returns
    -------
    nn.Sequential
        Shapes for an ``(N, 1, 8, 8)`` input::

            input                                             (N, 1, 8, 8)
            0  Conv2d(1, C1, 3, padding=1)                    (N, C1, 8, 8)
            1  ReLU
            2  ConvTranspose2d(C1, C2, 3, stride=2,
                               padding=1, output_padding=1)   (N, C2, 16, 16)
            3  MaxPool2d(2)                                   (N, C2, 8, 8)
            4  Flatten                                        (N, C2 * 64)
            5  Linear(C2 * 64, 10)                            (N, 10)  logits

    Notes
    -----
    The transposed conv is 'same'-style: with ``padding = (3 - 1) / 2 = 1``
    and ``output_padding = stride - 1 = 1`` it maps ``S`` to exactly
    ``2 S`` (``(S - 1) * 2 - 2 + 3 + 1``); the max-pool brings the size back
    to ``S``, keeping the strongest of each 2x2 group of upsampled
    responses.
    """
    gen = as_generator(rng)
    kw = dict(dtype=dtype, rng=gen)
    c1, c2 = channels
    up = shapes.conv_transpose_output_size(image_size, 3, stride=2, padding=1, output_padding=1)
    pooled = shapes.pool_output_size(up, 2)
    return nn.Sequential(
        nn.Conv2d(in_channels, c1, 3, padding=1, **kw),
        nn.ReLU(),
        nn.ConvTranspose2d(c1, c2, 3, stride=2, padding=1, output_padding=1, **kw),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(c2 * pooled * pooled, num_classes, **kw),
    )


# ---------------------------------------------------------------------------
# 4. deep deconvolution autoencoder (colour patches)
# ---------------------------------------------------------------------------

def autoencoder(in_channels=3, image_size=32, channels=(32, 64, 128), *, dtype=np.float32,
                rng=None):
    """Three stride-2 convs down, three stride-2 transposed convs back up, sigmoid.

    Trained with MSE to reconstruct colour patches (:func:`deconv.data.patches`).

    Parameters
    ----------
    in_channels : int, default 3
    image_size : int, default 32
        ``S``, the input's height and width: each transposed conv's
        ``output_padding`` is chosen by
        :func:`deconv.shapes.inverse_output_padding` so that it restores
        exactly the size its mirror conv received (1 for even sizes, 0 for
        odd ones).
    channels : (int, int, int), default (32, 64, 128)
        ``C1, C2, C3``.
    dtype : np.float32 (default) or np.float64
    rng : int, np.random.Generator or None

    Returns
    -------
    nn.Sequential
        Shapes for an ``(N, 3, 32, 32)`` input (all kernels 3x3, padding 1)::

            input                                                  (N, 3, 32, 32)
            0   Conv2d(3, C1, 3, stride=2, padding=1)              (N, C1, 16, 16)
            1   ReLU
            2   Conv2d(C1, C2, 3, stride=2, padding=1)             (N, C2, 8, 8)
            3   ReLU
            4   Conv2d(C2, C3, 3, stride=2, padding=1)             (N, C3, 4, 4)  the code
            5   ReLU
            6   ConvTranspose2d(C3, C2, 3, stride=2, padding=1,
                                output_padding=1)                  (N, C2, 8, 8)
            7   ReLU
            8   ConvTranspose2d(C2, C1, ..., output_padding=1)     (N, C1, 16, 16)
            9   ReLU
            10  ConvTranspose2d(C1, 3, ..., output_padding=1)      (N, 3, 32, 32)
            11  Sigmoid                                            values in (0, 1)

    Notes
    -----
    The code holds ``C3 * (S/8)**2`` numbers (2048 by default) for the
    ``3 * S**2`` (3072) of the input.
    """
    gen = as_generator(rng)
    kw = dict(dtype=dtype, rng=gen)
    widths = (in_channels,) + tuple(channels)
    sizes = [as_int_at_least(image_size, "image_size", 1)]
    layers = []
    for cin, cout in zip(widths[:-1], widths[1:]):
        layers += [nn.Conv2d(cin, cout, 3, stride=2, padding=1, **kw), nn.ReLU()]
        sizes.append(shapes.conv_output_size(sizes[-1], 3, stride=2, padding=1))
    for i in range(len(widths) - 1, 0, -1):
        op = shapes.inverse_output_padding(sizes[i - 1], 3, stride=2, padding=1)
        layers.append(nn.ConvTranspose2d(widths[i], widths[i - 1], 3, stride=2, padding=1,
                                         output_padding=op, **kw))
        layers.append(nn.ReLU() if i > 1 else nn.Sigmoid())
    return nn.Sequential(*layers)


# ---------------------------------------------------------------------------
# 5. super-resolution (x2, x4)
# ---------------------------------------------------------------------------

def _residual_on(body, last, in_channels, r, mode, kw):
    """``body`` added to ``mode`` upsampling by ``r``: its last layer ``last`` zeroed and a 1x1
    head that sums the two, so the untrained network is exactly the interpolation."""
    last.weight.data[...] = 0
    last.bias.data[...] = 0
    head = nn.Conv2d(2 * in_channels, in_channels, 1, **kw)
    eye = np.eye(in_channels, dtype=head.weight.dtype)
    head.weight.data[...] = np.concatenate([eye, eye], axis=1)[:, :, None, None]
    head.bias.data[...] = 0
    return nn.Sequential(nn.Concat(nn.Upsample(scale_factor=r, mode=mode), body), head)


def superres(scale=2, upsample="deconv", residual=True, in_channels=3, channels=(32, 16), *,
             dtype=np.float32, rng=None):
    """Super-resolution: conv features of the low-resolution image, then upsampling by ``scale``.

    The RGB patch model of notebook 6: trained with L1 on
    :func:`deconv.data.superres` pairs; compared with nearest and bilinear
    upsampling (:func:`baseline`). ``deconv train superres`` trains the
    larger luminance model :func:`fsrcnn` on the image corpus.

    Parameters
    ----------
    scale : int, default 2
        ``r``, the upsampling factor (2 and 4 are the ones used).
    upsample : {'deconv', 'pixelshuffle'}
        'deconv' (FSRCNN-style, Dong et al. 2016): a transposed conv with
        kernel ``2r``, stride ``r`` and padding ``r/2`` (``r`` even; for odd
        ``r`` kernel ``r``, padding 0) upsamples the features straight to
        the image. 'pixelshuffle' (ESPCN-style, Shi et al. 2016): a conv to
        ``3 r**2`` channels at low resolution, then :class:`~deconv.nn.PixelShuffle`.
    residual : bool, default True
        Learn only what bilinear upsampling misses (as VDSR does): the
        network is ``head(concat(bilinear(x), body(x)))`` with a 1x1 conv
        ``head`` initialised to the sum of the two (weights ``[I, I]``, bias
        0) and the last layer of ``body`` initialised to zero, so that the
        untrained network *is* bilinear upsampling and training starts from
        the baseline. False: ``body`` alone, with torch's initialisation.
    in_channels : int, default 3
    channels : (int, int), default (32, 16)
        ``C``, ``c``: features, then the shrunk mapping width.
    dtype : np.float32 (default) or np.float64
    rng : int, np.random.Generator or None

    Returns
    -------
    nn.Sequential
        ``body``, for an ``(N, 3, h, w)`` low-resolution input; the first
        six layers (feature extraction, shrinking, mapping) are common::

            input                                        (N, 3, h, w)
            0  Conv2d(3, C, 5, padding=2)                (N, C, h, w)
            1  ReLU
            2  Conv2d(C, c, 1)                           (N, c, h, w)
            3  ReLU
            4  Conv2d(c, c, 3, padding=1)                (N, c, h, w)
            5  ReLU
          'deconv':
            6  ConvTranspose2d(c, 3, 2r, stride=r,
                               padding=r/2)              (N, 3, r h, r w)
          'pixelshuffle':
            6  Conv2d(c, 3 r**2, 3, padding=1)           (N, 3 r**2, h, w)
            7  PixelShuffle(r)                           (N, 3, r h, r w)

        With ``residual=True`` (the default) the network around it is::

            input                                        (N, 3, h, w)
            0  Concat(                                   -> (N, 6, r h, r w)
                 0  Upsample(scale_factor=r,
                             mode='bilinear')            (N, 3, r h, r w)
                 1  body                                 (N, 3, r h, r w)
               )
            1  Conv2d(6, 3, 1)                           (N, 3, r h, r w)

        The output is linear (no final activation); clip it to ``[0, 1]``
        to display it.

    Notes
    -----
    Both upsamplers produce every output pixel from learned weights; the
    transposed conv with kernel ``2r`` and stride ``r`` is exactly a
    pixel-shuffle of a conv over 2x2 low-resolution neighbourhoods, so the
    two variants differ in the reach of the last layer (2x2 against 3x3
    low-resolution pixels) and in its parameter count, not in kind.

    Why residual by default: on these small photographs bilinear upsampling
    is already good (about 26.3 dB at x2 on the validation patches), and a
    network that must first learn to reproduce it spends minutes below the
    baseline; starting from it, it improves on it within a few epochs. The
    zero initialisation matters: with random weights the body's ReLUs die
    while it learns to output nothing, and it never moves again.
    """
    r = as_int_at_least(scale, "scale", 1)
    as_choice(upsample, "upsample", UPSAMPLERS)
    gen = as_generator(rng)
    kw = dict(dtype=dtype, rng=gen)
    c_feat, c_map = channels
    layers = [
        nn.Conv2d(in_channels, c_feat, 5, padding=2, **kw), nn.ReLU(),
        nn.Conv2d(c_feat, c_map, 1, **kw), nn.ReLU(),
        nn.Conv2d(c_map, c_map, 3, padding=1, **kw), nn.ReLU(),
    ]
    if upsample == "deconv":
        k, p = (2 * r, r // 2) if r % 2 == 0 else (r, 0)
        last = nn.ConvTranspose2d(c_map, in_channels, k, stride=r, padding=p, **kw)
        layers.append(last)
    else:
        last = nn.Conv2d(c_map, in_channels * r * r, 3, padding=1, **kw)
        layers += [last, nn.PixelShuffle(r)]
    body = nn.Sequential(*layers)
    return _residual_on(body, last, in_channels, r, "bilinear", kw) if residual else body



# ---------------------------------------------------------------------------
# 5b. FSRCNN on luminance (deconv train superres)
# ---------------------------------------------------------------------------

def fsrcnn(scale=2, upsample="deconv", residual=True, in_channels=1, channels=(32, 12),
             mapping=3, *, dtype=np.float32, rng=None):
    """Super-resolution, FSRCNN-style: features of the low-resolution image, then upsampling.

    The network ``deconv train superres`` trains: MSE on the luminance
    patches of :func:`deconv.data.superres_corpus`, measured on whole
    held-out images against nearest, bilinear and bicubic upsampling
    (:func:`baseline`). (:func:`superres` is the smaller RGB patch model
    that notebook 6 studies.)

    Parameters
    ----------
    scale : int, default 2
        ``r``, the upsampling factor (2 and 4 are the ones trained).
    upsample : {'deconv', 'pixelshuffle'}
        'deconv' (FSRCNN, Dong et al. 2016): a 9x9 transposed conv of
        stride ``r`` (padding 4, output padding ``r - 1``) paints the image
        from the low-resolution features. 'pixelshuffle' (ESPCN, Shi et
        al. 2016): a 3x3 conv to ``C r**2`` channels at low resolution,
        then :class:`~deconv.nn.PixelShuffle`.
    residual : bool, default True
        Learn only what bicubic upsampling misses (as VDSR does): the
        network is ``head(concat(bicubic(x), body(x)))`` with a 1x1 conv
        ``head`` initialised to the sum of the two (weights ``[I, I]``, bias
        0) and the last layer of ``body`` initialised to zero, so that the
        untrained network *is* bicubic upsampling (:func:`deconv.interpolate`,
        ``mode='bicubic'``) and training starts from the best baseline.
        False: ``body`` alone, with torch's initialisation.
    in_channels : int, default 1
        ``C``: 1 for the luminance the papers train on, 3 for RGB.
    channels : (int, int), default (32, 12)
        ``d``, ``s``: feature width, then the shrunk mapping width.
    mapping : int, default 3
        ``m``, the 3x3 mapping layers at width ``s``.
    dtype : np.float32 (default) or np.float64
    rng : int, np.random.Generator or None

    Returns
    -------
    nn.Sequential
        ``body``, for an ``(N, C, h, w)`` low-resolution input; all but the
        upsampling layers are common (every activation a per-channel
        :class:`~deconv.nn.PReLU`)::

            input                                        (N, C, h, w)
            0  Conv2d(C, d, 5, padding=2)                (N, d, h, w)    feature extraction
            1  PReLU(d)
            2  Conv2d(d, s, 1)                           (N, s, h, w)    shrinking
            3  PReLU(s)
            4  Conv2d(s, s, 3, padding=1)                (N, s, h, w)    mapping, m times
            5  PReLU(s)
               ...
            4+2m  Conv2d(s, d, 1)                        (N, d, h, w)    expanding
            5+2m  PReLU(d)
          'deconv':
            6+2m  ConvTranspose2d(d, C, 9, stride=r,
                       padding=4, output_padding=r-1)    (N, C, r h, r w)
          'pixelshuffle':
            6+2m  Conv2d(d, C r**2, 3, padding=1)        (N, C r**2, h, w)
            7+2m  PixelShuffle(r)                        (N, C, r h, r w)

        With ``residual=True`` (the default) the network around it is::

            input                                        (N, C, h, w)
            0  Concat(                                   -> (N, 2C, r h, r w)
                 0  Upsample(scale_factor=r,
                             mode='bicubic')             (N, C, r h, r w)
                 1  body                                 (N, C, r h, r w)
               )
            1  Conv2d(2C, C, 1)                          (N, C, r h, r w)

        The output is linear (no final activation); clip it to ``[0, 1]``
        to display it. The network is fully convolutional: it takes whole
        images of any size.

    Notes
    -----
    The transposed conv's output size is ``(h - 1) r - 2 * 4 + 9 + (r - 1)
    = r h``. Both upsamplers make every output pixel from learned weights;
    a stride-``r`` transposed conv is a pixel shuffle of a conv over the
    low-resolution neighbourhood its kernel covers (``ceil(9 / r)`` pixels
    across), so the two variants differ in that reach and in parameter
    count, not in kind.

    Why residual by default: bicubic upsampling is already a good guess
    (32.4 dB at x2, 28.4 dB at x4 on the validation images), and a network that must
    first learn to reproduce it spends minutes below the baseline;
    starting from it, it improves on it within the first epoch. The zero
    initialisation matters: with random weights the body adds noise that
    it must first learn to cancel.
    """
    r = as_int_at_least(scale, "scale", 1)
    as_choice(upsample, "upsample", UPSAMPLERS)
    m = as_int_at_least(mapping, "mapping", 0)
    gen = as_generator(rng)
    kw = dict(dtype=dtype, rng=gen)
    d, s = channels
    layers = [nn.Conv2d(in_channels, d, 5, padding=2, **kw), nn.PReLU(d, dtype=dtype),
              nn.Conv2d(d, s, 1, **kw), nn.PReLU(s, dtype=dtype)]
    for _ in range(m):
        layers += [nn.Conv2d(s, s, 3, padding=1, **kw), nn.PReLU(s, dtype=dtype)]
    layers += [nn.Conv2d(s, d, 1, **kw), nn.PReLU(d, dtype=dtype)]
    if upsample == "deconv":
        last = nn.ConvTranspose2d(d, in_channels, 9, stride=r, padding=4, output_padding=r - 1,
                                  **kw)
        layers.append(last)
    else:
        last = nn.Conv2d(d, in_channels * r * r, 3, padding=1, **kw)
        layers += [last, nn.PixelShuffle(r)]
    body = nn.Sequential(*layers)
    return _residual_on(body, last, in_channels, r, "bicubic", kw) if residual else body


# ---------------------------------------------------------------------------
# families: builder, loss, metrics, baselines
# ---------------------------------------------------------------------------

def _check_family(name):
    if name not in FAMILIES:
        raise ValueError(f"unknown model family {name!r}; expected one of {', '.join(FAMILIES)}")


def build(name, **kwargs):
    """The network of family ``name`` (one of :data:`FAMILIES`); ``kwargs`` go to its builder."""
    _check_family(name)
    return {"skip": skip, "text": text, "classifier": classifier, "autoencoder": autoencoder,
            "superres": superres}[name](**kwargs)


def loss(name):
    """A new instance of the loss family ``name`` is trained with.

    MSE for 'skip' and 'autoencoder', cross-entropy for 'text' and
    'classifier', L1 for 'superres' (the patch model :func:`superres`; the
    recipe of ``deconv train superres`` trains :func:`fsrcnn` with
    :func:`fsrcnn_loss`).
    """
    _check_family(name)
    if name in ("skip", "autoencoder"):
        return nn.MSELoss()
    if name == "superres":
        return nn.L1Loss()
    return nn.CrossEntropyLoss()


def fsrcnn_loss():
    """MSE: the loss :func:`fsrcnn` trains with.

    Super-resolution is measured by PSNR, a function of the MSE, and trains
    on it: starting from bicubic upsampling, L1's sign-only gradient is
    dominated by the many flat pixels where bicubic is already right; it
    moved the validation PSNR by 0.003 dB in 200 steps where MSE moved it
    by 0.1 dB (x2, lr 1e-3).
    """
    return nn.MSELoss()


def predict_images(model, images):
    """``model`` in eval mode on each image ``(C, h, w)`` of ``images`` whole: a tuple of outputs.

    For fully convolutional models (superres) and validation images of
    different sizes, which cannot be stacked into one batch.
    """
    model.eval()
    return tuple(model(np.asarray(im)[None])[0] for im in images)


def _scale_of(low, high):
    """The integer factor from ``low`` (C, h, w) to ``high`` (C, r h, r w)."""
    r = high.shape[-1] // low.shape[-1]
    if r < 1 or high.shape[-2:] != (low.shape[-2] * r, low.shape[-1] * r):
        raise ValueError(f"superres data: target size {high.shape[-2:]} is not an integer "
                         f"multiple of the input size {low.shape[-2:]}")
    return r


def evaluate(name, prediction, split):
    """The validation metrics of family ``name`` for a model's output on ``split``.

    Parameters
    ----------
    name : str
        One of :data:`FAMILIES`.
    prediction : ndarray, or tuple of ndarray
        The network's output on ``split.x`` (logits for 'classifier' and
        'text'); for whole images (``split.x`` a tuple, as the validation
        split of :func:`deconv.data.superres`), a tuple of outputs
        (:func:`predict_images`).
    split : deconv.data.Split

    Returns
    -------
    dict
        'classifier': ``{"accuracy"}``; 'text': ``{"accuracy_corrupted"``
        (on the corrupted characters: the headline number), ``"accuracy"``
        (all characters)``}``; 'skip', 'autoencoder', 'superres' on patch
        arrays: ``{"psnr"`` (dB, :func:`deconv.metrics.psnr`), ``"mae"}``.
        Image predictions are clipped to ``[0, 1]`` first (the targets'
        range).

        'superres' on whole images: ``{"psnr"``: the mean over the images of
        each one's :func:`deconv.metrics.psnr_y` with a border of ``scale``
        pixels cropped (the papers' measure), ``"psnr_each"``: the tuple of
        those, ``"mae"``: the mean of each image's MAE on the same cropped
        luminance``}``.
    """
    _check_family(name)
    if name == "skip" and isinstance(split.x, tuple):      # whole photographs (issue 15)
        from deconv.models import denoising
        return denoising.evaluate(prediction, split)
    if name == "classifier":
        return {"accuracy": metrics.accuracy(prediction, split.y)}
    if name == "text":
        return {"accuracy_corrupted": metrics.accuracy(prediction, split.y, split.mask),
                "accuracy": metrics.accuracy(prediction, split.y)}
    if isinstance(split.x, tuple):
        if len(prediction) != len(split.y):
            raise ValueError(f"{len(prediction)} predictions for {len(split.y)} images")
        each, maes = [], []
        for low, pred, target in zip(split.x, prediction, split.y):
            r = _scale_of(low, target)
            p = np.clip(pred, 0.0, 1.0)
            each.append(metrics.psnr_y(p, target, border=r))
            crop = (slice(None), slice(r, -r), slice(r, -r))
            maes.append(metrics.mae(p[crop], target[crop]) if p.shape[0] == 1 else
                        metrics.mae(_luminance(p)[crop], _luminance(target)[crop]))
        return {"psnr": float(np.mean(each)), "psnr_each": tuple(each),
                "mae": float(np.mean(maes))}
    p = np.clip(prediction, 0.0, 1.0)
    return {"psnr": metrics.psnr(p, split.y), "mae": metrics.mae(p, split.y)}


def _luminance(image):
    from deconv.models.images import luminance
    return luminance(image)


def baseline(name, dataset, factor=8):
    """The metrics of :func:`evaluate` for the trivial predictors of family ``name``.

    Parameters
    ----------
    name : str
        One of :data:`FAMILIES`.
    dataset : deconv.data.Dataset
        The family's data; the baselines are measured on ``dataset.val``
        ('classifier' also reads ``dataset.train``).
    factor : int, default 8
        'autoencoder' only: the downsampling factor of its baselines.

    Returns
    -------
    dict of str -> dict
        One entry per baseline, each a dict as returned by :func:`evaluate`:

        * 'classifier': ``"majority class"`` (the most frequent training
          label, predicted for every image), ``"logistic regression"`` and
          ``"RBF SVM"`` (scikit-learn, fitted on the unshifted training
          digits: :func:`deconv.models.recognition.baselines`).
        * 'skip' on digits: ``"noisy input"`` (return the input unchanged);
          on whole photographs (:func:`deconv.models.denoising.denoising_corpus`):
          also the best Gaussian filter, Wiener filter and total-variation
          denoising (:func:`deconv.models.denoising.baselines`).
        * 'text': ``"copy input"`` (predict the corrupted character itself:
          0 on the corrupted positions by construction), ``"most
          frequent character"`` (the most frequent character of the
          training targets, the space, predicted everywhere) and ``"count
          model"`` (:func:`deconv.models.text_restoration.baselines`).
        * 'superres' on whole images (:func:`deconv.data.superres_corpus`):
          ``"nearest"``, ``"bilinear"`` and ``"bicubic"`` upsampling of each
          whole low-resolution validation image by the data's factor
          (:func:`deconv.interpolate` in that mode, ``align_corners=False``,
          no antialiasing: the papers' bicubic baseline), measured as the
          model is (:func:`evaluate`).
        * 'superres' on patches (:func:`deconv.data.superres`): ``"nearest"``
          and ``"bilinear"`` upsampling of the low-resolution input by the
          data's factor (:func:`deconv.upsample_nearest2d`,
          :func:`deconv.upsample_bilinear2d`, ``align_corners=False``).
        * 'autoencoder' on :func:`deconv.models.compression.colour_patches`
          (``deconv train autoencoder``): ``"bilinear from 4x4"`` and ``"PCA
          (48 components)"``, as many numbers as the code holds
          (:func:`deconv.models.compression.baselines`).
        * 'autoencoder' on :func:`deconv.data.patches`: ``"nearest xF"`` and
          ``"bilinear xF"``: the patch
          box-downsampled by ``F = factor`` (:func:`deconv.data.downsample`)
          and upsampled back; ``F = 8`` keeps the spatial size of the
          autoencoder's code (``S/8``), with ``3 (S/8)**2`` numbers against
          the code's ``C3 (S/8)**2``.
    """
    _check_family(name)
    val = dataset.val
    if name == "classifier":
        from deconv.models import recognition

        train = getattr(dataset, "plain", dataset.train)
        majority = np.bincount(train.y).argmax()
        return {"majority class": evaluate(name, np.full_like(val.y, majority), val),
                **recognition.baselines(dataset)}
    if name == "text":
        from deconv.models import text_restoration
        return text_restoration.baselines(dataset)
    if name == "skip" and isinstance(val.x, tuple):        # whole photographs (issue 15)
        from deconv.models import denoising
        return denoising.baselines(dataset)
    if name == "skip":
        return {"noisy input": evaluate(name, val.x, val)}
    if name == "autoencoder":
        from deconv.models import compression

        if isinstance(dataset, compression.ColourPatches):
            return compression.baselines(dataset, factor)
    if name == "superres" and isinstance(val.x, tuple):
        return _superres_baselines(val)
    if name == "superres":
        low, high = val.x, val.y
        r = high.shape[-1] // low.shape[-1]
        if high.shape[-2:] != (low.shape[-2] * r, low.shape[-1] * r):
            raise ValueError(f"superres data: target size {high.shape[-2:]} is not an integer "
                             f"multiple of the input size {low.shape[-2:]}")
    else:
        from deconv.models.data import downsample

        high = val.y
        r = as_int_at_least(factor, "factor", 1)
        low = downsample(high, r)
    suffix = "" if name == "superres" else f" x{r}"
    out = {}
    for label, up in (("nearest", upsample_nearest2d), ("bilinear", upsample_bilinear2d)):
        pred = up(low, size=high.shape[-2:])
        out[label + suffix] = evaluate(name, pred, val)
    return out


#: The interpolation baselines of super-resolution: label -> deconv.interpolate mode.
SUPERRES_BASELINES = {"nearest": "nearest", "bilinear": "bilinear", "bicubic": "bicubic"}


def _superres_baselines(val):
    """Each mode of :data:`SUPERRES_BASELINES` upsampling every low-resolution image whole."""
    from deconv.functional.interpolate import interpolate

    out = {}
    for label, mode in SUPERRES_BASELINES.items():
        pred = tuple(interpolate(low[None], scale_factor=_scale_of(low, high), mode=mode)[0]
                     for low, high in zip(val.x, val.y))
        out[label] = evaluate("superres", pred, val)
    return out
