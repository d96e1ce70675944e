"""``deconv train text``: restoring corrupted characters of held-out standard-library files.

The task (issue 15): in every window of 64 characters of Python source,
15 % of the characters (10 of 64) are replaced by other, random characters
(:func:`deconv.data.corrupt`); the network sees the corrupted window and
must give back every original character. It is scored on the corrupted
positions (``accuracy_corrupted``), the headline number.

* Data (:func:`deconv.data.stdlib_text`): the standard library's own
  source (:mod:`deconv.models.corpus`), split by file: ten named modules
  validate (0.34 MB, 5,267 windows on CPython 3.11), the rest trains (9.6
  MB, 150,148 windows). The recipe trains on a seeded subset of the training
  windows per run (:func:`stdlib_corpus`).
* Network (:func:`conv_stack`): embedding, a stack of dilated conv1d
  residual blocks (GroupNorm, GELU, conv), and a transposed conv1d to
  per-position logits.
* Loss (:class:`RestorationLoss`): cross-entropy at every position, the
  corrupted positions weighted 8 times; only the loss knows which they are
  (the training targets are marked, :func:`mark_corrupted`).
* Baselines (:func:`baselines`): copying the input, the most frequent
  character, and a count model of the same window (:class:`CountModel`).
"""

from typing import NamedTuple

import numpy as np

from deconv import nn
from deconv.functional.validation import (
    as_bool, as_choice, as_generator, as_int, as_int_at_least, as_integer_array, as_real,
)
from deconv.models import data
from deconv.nn.module import prefixed

__all__ = ["CONTEXT", "MAX_CONTEXT", "COUNT", "CORRUPTED_WEIGHT", "CountModel", "TextDataset",
           "stdlib_corpus", "mark_corrupted", "RestorationLoss", "Residual", "conv_stack",
           "baselines", "figure"]

#: Characters on each side that the count model looks at, at most: 4 restored 57.3 % of the
#: corrupted validation characters, 3 57.2 %, 2 55.4 % (CPython 3.11).
CONTEXT = 4
#: Training windows a run of the recipe draws: None, every one (150,148 on CPython 3.11).
COUNT = None
#: How many times a corrupted position outweighs a clean one in the training loss
#: (:class:`RestorationLoss`).
CORRUPTED_WEIGHT = 8.0
#: The widest context whose keys (2 K + 1 digits of base 98) fit an int64.
MAX_CONTEXT = 4


def _hash_base():
    # one digit per vocabulary index plus one for "no character here" (past a window's edge)
    return data.VOCAB_SIZE + 1


class CountModel:
    """Predict each character from the characters around it, by counting the training text.

    Parameters
    ----------
    windows : int array (N, L)
        The clean training windows (:attr:`deconv.data.Split.y`).
    context : int, default :data:`CONTEXT` (4)
        ``K``, the most characters looked at on each side.

    Notes
    -----
    For ``k = K, K-1, ..., 1`` the model counts, over every position ``i``
    of every training window whose ``k`` left and ``k`` right neighbours
    lie inside the window, how often each centre character follows the
    context ``(w[i-k .. i-1], w[i+1 .. i+k])``, and keeps the most frequent
    one (the smallest index on a tie). To predict position ``i`` of a
    window it takes the largest ``k <= min(K, i, L-1-i)`` whose context,
    read from the (corrupted) input, was seen in training, and falls back
    to the most frequent character of the training text (``k = 0``) when
    no context was. It sees exactly what the network sees: the corrupted
    window and nothing outside it, and it never sees the centre character
    itself.
    """

    def __init__(self, windows, context=CONTEXT):
        w = np.asarray(windows)
        if w.ndim != 2 or w.dtype.kind not in "iu":
            raise ValueError(f"windows must be a 2-D integer array (N, L), got dtype {w.dtype} "
                             f"and shape {w.shape}")
        # its keys, 2 K + 1 digits of base V + 1, must fit an int64
        self.context = as_int(as_choice(context, "context", tuple(range(MAX_CONTEXT + 1))),
                              "context")
        counts = np.bincount(w.ravel(), minlength=data.VOCAB_SIZE)
        self.unigram = int(counts.argmax())
        # per k: sorted context keys and the centre character chosen for each
        self.tables = {}
        for k in range(1, self.context + 1):
            keys, centre = self._keys(w, k)
            if keys.size == 0:
                continue
            both = keys * data.VOCAB_SIZE + centre
            pairs, n = np.unique(both, return_counts=True)
            ctx, ch = pairs // data.VOCAB_SIZE, pairs % data.VOCAB_SIZE
            # within each context: highest count first, then smallest character
            order = np.lexsort((ch, -n, ctx))
            ctx, ch = ctx[order], ch[order]
            first = np.ones(ctx.size, dtype=bool)
            first[1:] = ctx[1:] != ctx[:-1]
            self.tables[k] = (ctx[first], ch[first])

    @staticmethod
    def _keys(w, k):
        """The context keys (int64) of every position ``k .. L-1-k`` of every window, and the
        centre characters there: ``(N * (L - 2k),)`` each."""
        L = w.shape[1]
        base = _hash_base()
        centre = w[:, k:L - k]
        key = np.zeros(centre.shape, dtype=np.int64)
        for off in list(range(-k, 0)) + list(range(1, k + 1)):
            key = key * base + w[:, k + off:L - k + off]
        return key.ravel(), centre.ravel()

    def predict(self, windows):
        """The predicted character index at every position: int64, the shape of ``windows``."""
        w = np.asarray(windows)
        N, L = w.shape
        out = np.full((N, L), self.unigram, dtype=np.int64)
        done = np.zeros((N, L), dtype=bool)
        for k in range(self.context, 0, -1):
            if k not in self.tables or L - 2 * k <= 0:
                continue
            ctx, ch = self.tables[k]
            keys, _ = self._keys(w, k)
            at = np.searchsorted(ctx, keys)
            at_clipped = np.minimum(at, ctx.size - 1)
            found = (at < ctx.size) & (ctx[at_clipped] == keys)
            found = found.reshape(N, L - 2 * k)
            inner = (slice(None), slice(k, L - k))
            take = found & ~done[inner]
            out[inner][take] = ch[at_clipped].reshape(N, L - 2 * k)[take]
            done[inner] |= take
        return out


class TextDataset(NamedTuple):
    """``(train, val, counted)``: a :class:`deconv.data.Dataset` whose network trains on a
    subset of the training windows, and ``counted``, every clean training window
    ``(N, L)``: what the baselines count (:func:`baselines`)."""

    train: data.Split
    val: data.Split
    counted: np.ndarray


def stdlib_corpus(count=None, window=64, rate=0.15, seed=0, root=None, marked=False):
    """:func:`deconv.data.stdlib_text`, its training windows cut to a seeded subset of ``count``.

    ``count`` None keeps every training window; otherwise ``count`` of them
    are drawn without replacement by ``default_rng([seed, 2])`` (in
    their corpus order). The validation split is always whole, and
    ``counted`` always holds every clean training window: the baselines
    count the whole training text whatever the network sees. ``marked``
    True gives training targets marked where the input was corrupted
    (:func:`mark_corrupted`), the targets of :class:`RestorationLoss`; the
    validation targets are never marked (the metrics compare them with
    predicted characters).
    """
    marked = as_bool(marked, "marked")
    ds = data.stdlib_text(window=window, rate=rate, seed=seed, root=root)
    n = len(ds.train)
    count = n if count is None else as_int_at_least(count, "count", 1)
    train = ds.train
    if count < n:
        pick = np.sort(np.random.default_rng([seed, 2]).choice(n, size=count, replace=False))
        train = data.Split(train.x[pick], train.y[pick], train.mask[pick])
    if marked:
        train = data.Split(train.x, mark_corrupted(train.y, train.mask), train.mask)
    return TextDataset(train, ds.val, ds.train.y)


def mark_corrupted(target, mask, classes=data.VOCAB_SIZE):
    """The targets of :class:`RestorationLoss`: ``target + classes`` where ``mask`` is True.

    Parameters
    ----------
    target : int array (N, L)
        Character indices in ``[0, classes)``.
    mask : bool array (N, L)
        True at the corrupted positions (:attr:`deconv.data.Split.mask`).
    classes : int, default ``VOCAB_SIZE`` (97)
        ``V``, the number of logits per position.

    Returns
    -------
    int64 array (N, L)
        In ``[0, V)`` at clean positions, ``[V, 2 V)`` at corrupted ones:
        the loss reads the position's kind from its target, so the network
        is never told which of its inputs were corrupted.

    Examples
    --------
    >>> mark_corrupted(np.array([[3, 4, 5]]), np.array([[False, True, False]]), classes=10)
    array([[ 3, 14,  5]])
    """
    classes = as_int_at_least(classes, "classes", 1)
    t = as_integer_array(target, "target", "character indices")
    m = np.asarray(mask)
    if m.dtype != bool or m.shape != t.shape:
        raise ValueError(f"mask must be a bool array of the target's shape {t.shape}, got "
                         f"dtype {m.dtype} and shape {m.shape}")
    if t.size and (t.min() < 0 or t.max() >= classes):
        raise ValueError(f"target must hold indices in [0, {classes}), got values in "
                         f"[{t.min()}, {t.max()}]")
    return t.astype(np.int64) + classes * m


class RestorationLoss(nn.Loss):
    """Cross-entropy at every position, a corrupted position weighing ``corrupted_weight``.

    Parameters
    ----------
    corrupted_weight : float > 0, default :data:`CORRUPTED_WEIGHT` (8)
        ``w``, the weight of a corrupted position (a clean one weighs 1).
    reduction : {'mean', 'sum', 'none'}
        As :class:`deconv.nn.CrossEntropyLoss`; 'mean' divides by the sum
        of the weights.

    Notes
    -----
    Logits ``z`` ``(N, V, L)``; targets ``(N, L)`` marked by
    :func:`mark_corrupted`: ``t`` in ``[0, V)`` at a clean position,
    ``t - V`` the original character at a corrupted one (plain targets are
    all clean: plain cross-entropy). With ``l_i = -log softmax(z_i)[c_i]``
    for the original character ``c_i`` and ``w_i = w`` (corrupted) or 1::

        'mean':  L = sum_i w_i l_i / sum_i w_i,   dL/dz_i = w_i / sum_j w_j  dl_i/dz_i

    Why: 85 % of the positions are clean and their target is the input
    character, which the network learns to copy within a few hundred
    steps; after that their gradient is small but their number still
    dilutes every batch. Weighting the corrupted ones 8 times puts more than
    half of the loss on restoration. Only the loss knows the
    positions' kind; the network sees the corrupted window alone, as the
    count model does.

    Examples
    --------
    >>> loss = RestorationLoss(corrupted_weight=3.0)
    >>> z = np.zeros((1, 2, 2))                       # two positions, two classes
    >>> round(loss(z, mark_corrupted(np.array([[0, 1]]), np.array([[False, True]]), 2)), 6)
    0.693147
    >>> loss.backward()[0, :, 1]                      # the corrupted position: 3/4 of it
    array([ 0.375, -0.375])
    """

    def __init__(self, corrupted_weight=CORRUPTED_WEIGHT, reduction="mean"):
        super().__init__(reduction)
        with prefixed("RestorationLoss"):
            self.corrupted_weight = as_real(corrupted_weight, "corrupted_weight", 0,
                                            low_open=True)
        self._cross_entropy = nn.CrossEntropyLoss(reduction="none")

    def __repr__(self):
        return (f"RestorationLoss(corrupted_weight={self.corrupted_weight}, "
                f"reduction={self.reduction!r})")

    def forward(self, prediction, target):
        """Logits ``(N, V, L)`` and marked targets ``(N, L)`` -> float, or ``(N, L)`` ('none')."""
        with prefixed("RestorationLoss"):
            t = as_integer_array(target, "target", "marked character indices")
        shape = np.shape(prediction)
        classes = shape[1] if len(shape) >= 2 else 0
        if t.size and (t.min() < 0 or t.max() >= 2 * classes):
            raise ValueError(f"RestorationLoss: target must hold marked indices in [0, "
                             f"{2 * classes}) for {classes} logits per position, got values in "
                             f"[{t.min()}, {t.max()}]")
        corrupted = t >= classes
        per_position = self._cross_entropy.forward(prediction, t - classes * corrupted)
        weight = np.where(corrupted, self.corrupted_weight, 1.0).astype(per_position.dtype)
        return self._reduce(per_position * weight,
                            denominator=float(weight.sum(dtype=np.float64)), weight=weight)

    def _backward(self, cache, g):
        """The cross-entropy's gradient with the upstream gradient ``g w_i`` at position i."""
        weight = cache["weight"]
        return self._cross_entropy.backward(weight * np.asarray(g, dtype=weight.dtype))


class Residual(nn.Module):
    """``x + body(x)``: a block whose output adds its input to what ``body`` makes of it.

    Parameters
    ----------
    body : nn.Module
        Must keep the shape of its input.

    Notes
    -----
    ``forward(x) = x + body(x)``; ``backward(g) = g + body.backward(g)``:
    the identity path hands every block's gradient straight to the layers
    below (He et al. 2016), which is what lets a stack of many dilated
    layers train as fast as a shallow one. Its parameters are the body's,
    named ``body.*`` (the PyTorch twin: a module with ``self.body`` and
    ``forward = x + self.body(x)``).

    Examples
    --------
    >>> import numpy as np
    >>> block = Residual(nn.Conv1d(2, 2, 3, padding=1, rng=0))
    >>> x = np.ones((1, 2, 5), dtype=np.float32)
    >>> y = block(x)
    >>> y.shape, block.backward(np.ones_like(y)).shape
    ((1, 2, 5), (1, 2, 5))
    """

    def __init__(self, body):
        super().__init__()
        if not isinstance(body, nn.Module):
            raise TypeError(f"Residual: body must be a Module, got {type(body).__name__}")
        self.body = body

    def forward(self, x):
        """``(N, C, L) -> (N, C, L)``, ``x + body(x)``."""
        x = self._input(x)
        out = self.body.forward(x)
        if out.shape != x.shape:
            raise ValueError(f"Residual: body must keep the input's shape {x.shape}, "
                             f"got {out.shape}")
        out = out + x
        self._save(out)
        return out

    def backward(self, grad_output):
        """The body's gradient plus the identity's: ``g + body.backward(g)``."""
        _, g = self._saved_and_grad(grad_output)
        if not self.input_grad:
            with self._without_input_grad(self.body):
                self.body.backward(g)
            return None
        return g + self.body.backward(g)


def conv_stack(vocab_size=data.VOCAB_SIZE, embedding_dim=32, channels=128,
               dilations=(1, 2, 4, 8, 16), kernel_size=5, residual=True, normalized=True, *,
               dtype=np.float32, rng=None):
    """Embedding, conv1d, dilated conv1d blocks, transposed conv1d: per-character logits.

    Parameters
    ----------
    vocab_size : int, default ``deconv.data.VOCAB_SIZE`` (97)
        ``V``.
    embedding_dim : int, default 32
        ``D``.
    channels : int, default 128
        ``C``, the width of every hidden layer.
    dilations : tuple of int, default (1, 2, 4, 8, 16)
        One 3-wide conv1d of width ``C`` per entry, with that dilation
        (padding = dilation, so the length is kept).
    kernel_size : int, default 5
        ``k``, odd: the first conv and the transposed conv (padding
        ``(k - 1) / 2``).
    residual : bool, default True
        Each dilated conv as a pre-activation residual block
        ``h + Conv1d(act(h))`` (:class:`Residual`); False: the plain
        ``ReLU(Conv1d(h))`` of the first version of the family.
    normalized : bool, default True
        The residual blocks' ``act``: ``GELU(GroupNorm(1, C)(h))`` (True)
        or ``ReLU(h)`` (False, the blocks of the second version). Only with
        ``residual=True``.
    dtype : np.float32 (default) or np.float64
    rng : int, np.random.Generator or None

    Returns
    -------
    nn.Sequential
        For an int64 input of ``N`` windows of ``L`` characters, with
        the defaults::

            input                                          (N, L) int64
            0  Embedding(V, D)                             (N, L, D)
            1  Permute((0, 2, 1))                          (N, D, L)
            2  Conv1d(D, C, k, padding=(k-1)/2)            (N, C, L)
               Residual(Sequential(GroupNorm(1, C), GELU,
                   Conv1d(C, C, 3, dilation=d, padding=d)))
                   for d in dilations                      (N, C, L)
            .  ReLU
            .  ConvTranspose1d(C, V, k, padding=(k-1)/2)   (N, V, L)  logits

        With ``normalized=False`` each block is ``Residual(Sequential(ReLU,
        Conv1d(...)))``; with ``residual=False`` a ReLU follows the first
        conv and each dilated conv, and the dilated convs are not wrapped.

    Notes
    -----
    Each output's convolutions reach ``2 (k - 1) + 2 sum(dilations) + 1``
    characters centred on it: 71 by default, the whole 64-character window
    from every position (the exponentially growing dilations of WaveNet and
    ByteNet, without their causal masking: restoration may look both
    ways). The residual blocks are those of ByteNet (Kalchbrenner et al.
    2016) without its bottleneck. The normalisation of the blocks standardises
    each window's features over all channels and positions (one group), so
    with ``normalized=True`` every output also depends, through those two
    statistics, on the whole input. A training step of the normalized stack
    costs about 1.3 times that of the ReLU blocks (batch 32, one thread).
    """
    k = as_int_at_least(kernel_size, "kernel_size", 1)
    if k % 2 == 0:
        raise ValueError(f"kernel_size must be odd and positive, got {kernel_size!r}")
    residual = as_bool(residual, "residual")
    normalized = as_bool(normalized, "normalized")
    if normalized and not residual:
        raise ValueError("normalized=True applies to the residual blocks only: give "
                         "residual=True, or normalized=False for the plain stack")
    gen = as_generator(rng)
    kw = dict(dtype=dtype, rng=gen)
    p = (k - 1) // 2
    layers = [nn.Embedding(vocab_size, embedding_dim, **kw), nn.Permute((0, 2, 1)),
              nn.Conv1d(embedding_dim, channels, k, padding=p, **kw)]
    for d in dilations:
        d = as_int_at_least(d, "dilations", 1)
        conv = nn.Conv1d(channels, channels, 3, dilation=d, padding=d, **kw)
        if not residual:
            layers += [nn.ReLU(), conv]
            continue
        act = [nn.GroupNorm(1, channels, dtype=dtype), nn.GELU()] if normalized else \
            [nn.ReLU()]
        layers.append(Residual(nn.Sequential(*act, conv)))
    layers += [nn.ReLU(), nn.ConvTranspose1d(channels, vocab_size, k, padding=p, **kw)]
    return nn.Sequential(*layers)


def baselines(dataset, context=CONTEXT):
    """The text family's baselines on ``dataset.val``, as :func:`deconv.models.evaluate` measures.

    Returns
    -------
    dict of str -> dict
        ``"copy input"`` (predict the corrupted character itself: 0 on the
        corrupted positions by construction), ``"most frequent character"``
        (of the training text, predicted everywhere) and ``"count model"``
        (:class:`CountModel` fitted on the clean training windows with
        ``context`` characters each side, predicting from the corrupted
        validation windows). The training text is ``dataset.counted`` (every
        training window of a :class:`TextDataset`, even when the network
        trains on a subset), else ``dataset.train.y``.
    """
    from deconv.models import evaluate

    val = dataset.val
    counts = CountModel(getattr(dataset, "counted", dataset.train.y), context)
    return {"copy input": evaluate("text", val.x, val),
            "most frequent character": evaluate("text", np.full_like(val.y, counts.unigram), val),
            "count model": evaluate("text", counts.predict(val.x), val)}


def _visible(indices):
    """A window as text, with newlines shown as the symbol of a line feed."""
    return data.decode(indices).replace("\n", "\u00b6")


def figure(split, prediction, path, count=8):
    """A text figure of validation windows: input (corrupted characters in red), model (its
    errors on corrupted characters in red, its right ones in green), truth."""
    from deconv.models.recipes import _pyplot

    plt = _pyplot()
    if plt is None:
        return None
    count = min(count, len(split))
    # windows that are mostly code, not blank lines: the densest ones, spread over the files
    picks = np.linspace(0, len(split) - 1, 4 * count).astype(np.int64)
    picks = sorted(picks, key=lambda i: -int((split.y[i] > 2).sum()))[:count]
    picks = sorted(picks)
    predicted = prediction.argmax(axis=1) if prediction.ndim == 3 else prediction
    L = split.x.shape[1]
    fig, ax = plt.subplots(figsize=(0.13 * L + 1.5, 0.62 * count + 0.6))
    ax.set_xlim(0, L + 8)
    ax.set_ylim(0, 4 * count)
    ax.axis("off")
    for row, i in enumerate(picks):
        top = 4 * count - 4 * row - 1
        lines = (("input", split.x[i]), ("model", predicted[i]), ("truth", split.y[i]))
        for j, (label, chars) in enumerate(lines):
            y = top - j
            ax.text(0, y, label, family="monospace", fontsize=7, va="center", color="grey")
            text = _visible(chars)
            for c, ch in enumerate(text):
                colour = "black"
                if split.mask[i, c] and label == "input":
                    colour = "red"
                elif split.mask[i, c] and label == "model":
                    colour = "green" if chars[c] == split.y[i, c] else "red"
                elif label == "model" and chars[c] != split.y[i, c]:
                    colour = "orange"
                ax.text(6 + c, y, ch, family="monospace", fontsize=7, va="center", color=colour)
    correct = float(np.mean((predicted == split.y)[split.mask]))
    ax.set_title("deconv train text: held-out standard-library windows; red in input: "
                 "corrupted; model: green restored, red missed, orange broke a clean "
                 f"character; {correct * 100:.1f}% of corrupted characters restored",
                 fontsize=8, loc="left")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path
