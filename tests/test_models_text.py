"""The text family on the standard library's source (issue 15): 15 % of the characters of
held-out files corrupted and restored. The count model is checked against a dictionary
implementation of its definition; brief training improves the validation accuracy."""

import io
from collections import Counter, defaultdict

import numpy as np
import pytest

from deconv import models, nn, optim
from deconv.models import data, metrics, recipes, text_restoration
from deconv.gradcheck import gradcheck
from deconv.train import Trainer


def _naive_count_predictions(train, windows, K):
    """The count model's definition, with dictionaries of tuples and plain loops."""
    unigram = Counter(train.ravel().tolist())
    top = max(unigram.items(), key=lambda kv: (kv[1], -kv[0]))[0]
    tables = {}
    for k in range(1, K + 1):
        counts = defaultdict(Counter)
        for w in train.tolist():
            for i in range(k, len(w) - k):
                counts[(tuple(w[i - k:i]), tuple(w[i + 1:i + k + 1]))][w[i]] += 1
        tables[k] = {ctx: max(c.items(), key=lambda kv: (kv[1], -kv[0]))[0]
                     for ctx, c in counts.items()}
    out = np.full(windows.shape, top, dtype=np.int64)
    for n, w in enumerate(windows.tolist()):
        L = len(w)
        for i in range(L):
            for k in range(min(K, i, L - 1 - i), 0, -1):
                ctx = (tuple(w[i - k:i]), tuple(w[i + 1:i + k + 1]))
                if ctx in tables[k]:
                    out[n, i] = tables[k][ctx]
                    break
    return out


@pytest.mark.parametrize("K", [0, 1, 2, 4])
def test_count_model_follows_its_definition(K):
    rng = np.random.default_rng(K)
    # a small alphabet so that contexts repeat, ties included
    train = rng.integers(2, 6, size=(40, 12))
    windows, _ = data.corrupt(rng.integers(2, 6, size=(15, 12)), 0.25, rng)
    got = text_restoration.CountModel(train, K).predict(windows)
    np.testing.assert_array_equal(got, _naive_count_predictions(train, windows, K))


def test_count_model_on_real_text_and_its_limits():
    ds = data.text()
    train, val = ds.train.y[:300], ds.val
    got = text_restoration.CountModel(train, 3).predict(val.x[:40])
    np.testing.assert_array_equal(got, _naive_count_predictions(train, val.x[:40], 3))
    with pytest.raises(ValueError, match="context must be one of"):
        text_restoration.CountModel(train, 5)
    with pytest.raises(ValueError, match="2-D integer"):
        text_restoration.CountModel(train.astype(np.float32), 2)


def test_baselines_as_stated():
    ds = data.text()
    b = models.baseline("text", ds)
    assert list(b) == ["copy input", "most frequent character", "count model"]
    assert b["copy input"]["accuracy_corrupted"] == 0.0
    common = Counter(ds.train.y.ravel().tolist()).most_common(1)[0][0]
    assert data.VOCAB[common] == " "
    assert b["most frequent character"]["accuracy_corrupted"] == pytest.approx(
        np.mean(ds.val.y[ds.val.mask] == common))
    counts = text_restoration.CountModel(ds.train.y, text_restoration.CONTEXT)
    assert b["count model"]["accuracy_corrupted"] == metrics.accuracy(
        counts.predict(ds.val.x), ds.val.y, ds.val.mask)
    assert (b["count model"]["accuracy_corrupted"]
            > b["most frequent character"]["accuracy_corrupted"])


def test_stdlib_corpus_subset_is_seeded_and_keeps_validation_whole():
    full = data.stdlib_text()
    sub = text_restoration.stdlib_corpus(count=500)
    assert len(sub.train) == 500 and len(sub.val) == len(full.val)
    np.testing.assert_array_equal(sub.val.x, full.val.x)
    np.testing.assert_array_equal(sub.counted, full.train.y)     # the baselines count it all
    again = text_restoration.stdlib_corpus(count=500)
    np.testing.assert_array_equal(sub.train.x, again.train.x)
    # the subset's rows are rows of the full training split, with their own corruption
    rows = {r.tobytes() for r in full.train.y}
    assert all(r.tobytes() in rows for r in sub.train.y)
    assert np.array_equal(sub.train.x != sub.train.y, sub.train.mask)


def test_residual_block_adds_its_input_and_matches_central_differences():
    rng = np.random.default_rng(5)
    conv = nn.Conv1d(3, 3, 3, dilation=2, padding=2, dtype=np.float64, rng=0)
    block = text_restoration.Residual(nn.Sequential(nn.ReLU(), conv))
    x = rng.standard_normal((2, 3, 9))
    # the body's output computed on its own: ReLU then the convolution, by NumPy
    relu = np.maximum(x, 0)
    padded = np.pad(relu, ((0, 0), (0, 0), (2, 2)))
    body = np.einsum("oik,nikl->nol", conv.weight.data,
                     np.stack([padded[:, :, 2 * t:2 * t + 9] for t in range(3)], axis=2))
    np.testing.assert_allclose(block(x), x + body + conv.bias.data[:, None], rtol=1e-12)
    gradcheck(block, x)                  # raises if any gradient is off
    with pytest.raises(ValueError, match="body must keep the input's shape"):
        text_restoration.Residual(nn.Conv1d(3, 4, 1, rng=0))(np.ones((1, 3, 5), np.float32))
    with pytest.raises(TypeError, match="body must be a Module"):
        text_restoration.Residual(np.ones(3))


def test_residual_block_without_input_gradient_gives_the_same_parameter_gradients():
    x = np.random.default_rng(6).standard_normal((2, 4, 7)).astype(np.float32)
    grads = []
    for input_grad in (True, False):
        block = text_restoration.Residual(nn.Sequential(nn.ReLU(), nn.Conv1d(4, 4, 3, padding=1,
                                                                             rng=1)))
        block.input_grad = input_grad
        y = block(x)
        g = block.backward(np.ones_like(y))
        assert (g is None) is (not input_grad)
        grads.append([p.grad.copy() for p in block.parameters()])
    for a, b in zip(*grads):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("residual, dilations, reach", [(True, (1, 2, 4, 8, 16), 35),
                                                        (False, (1, 2, 4), 11)])
def test_conv_stack_sees_the_characters_its_notes_say(residual, dilations, reach):
    # each output sees 2 (k - 1) + 2 sum(dilations) + 1 characters: ``reach`` on each side
    # (35 for the default, so that every position of a 64-character window sees all others)
    net = text_restoration.conv_stack(embedding_dim=4, channels=6, dilations=dilations,
                                      residual=residual, normalized=False, dtype=np.float64,
                                      rng=2)
    L = 2 * reach + 8
    x = np.zeros((1, L), dtype=np.int64)
    changed = x.copy()
    changed[0, 0] = 5
    moved = np.abs(net(changed) - net(x)).max(axis=1)[0]        # (L,)
    assert np.all(moved[:reach + 1] > 0) and np.all(moved[reach + 1:] == 0)
    assert net(x).shape == (1, data.VOCAB_SIZE, L)


def test_normalized_blocks_are_group_norm_and_gelu_and_see_the_whole_window():
    net = text_restoration.conv_stack(embedding_dim=4, channels=6, dilations=(1, 2),
                                      dtype=np.float64, rng=2)
    blocks = [m for m in net.children() if isinstance(m, text_restoration.Residual)]
    assert len(blocks) == 2
    for block in blocks:
        norm, act, conv = block.body.children()
        assert isinstance(norm, nn.GroupNorm) and norm.num_groups == 1
        assert isinstance(act, nn.GELU) and isinstance(conv, nn.Conv1d)
    # the conv reach is 2 (5 - 1) + 2 (1 + 2) = 14 each side; the one-group statistics
    # carry the change at position 0 to every position of a longer window
    x = np.zeros((1, 40), dtype=np.int64)
    changed = x.copy()
    changed[0, 0] = 5
    assert np.all(np.abs(net(changed) - net(x)).max(axis=1)[0] > 0)
    with pytest.raises(ValueError, match="normalized=True applies to the residual blocks"):
        text_restoration.conv_stack(residual=False)


def test_brief_training_improves_restoration_of_held_out_files():
    ds = text_restoration.stdlib_corpus(count=1024)
    val = data.Split(ds.val.x[:400], ds.val.y[:400], ds.val.mask[:400])
    model = text_restoration.conv_stack(embedding_dim=16, channels=32, dilations=(1, 2),
                                        rng=0)
    assert model(val.x[:2]).shape == (2, data.VOCAB_SIZE, 64)
    before = models.evaluate("text", model(val.x), val)["accuracy_corrupted"]
    trainer = Trainer(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=3e-3),
                      batch_size=32, epochs=2, seed=0, progress="none")
    history = trainer.fit(ds.train.x, ds.train.y, val.x, val.y)
    after = models.evaluate("text", trainer.predict(val.x), val)["accuracy_corrupted"]
    assert history["val_metric"][-1] < history["val_metric"][0]
    assert after > before + 0.2, (before, after)


def test_quick_run_prints_the_count_model_and_draws_the_figure(tmp_path):
    out = io.StringIO()
    result = recipes.run("text", quick=True, epochs=1, out=str(tmp_path), progress="none",
                         stream=out)
    assert "count model" in out.getvalue()
    assert set(result["baselines"]) == {"copy input", "most frequent character", "count model"}
    with open(result["figure"], "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def _weighted_cross_entropy(z, original, corrupted, w):
    """The restoration loss's definition in float64: log-softmax by hand, weighted mean."""
    z = z.astype(np.float64)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))          # (N, V, L)
    picked = np.take_along_axis(log_p, original[:, None, :], axis=1)[:, 0]   # (N, L)
    weight = np.where(corrupted, w, 1.0)
    return float((-picked * weight).sum() / weight.sum())


def test_restoration_loss_is_the_weighted_cross_entropy_and_its_gradient():
    rng = np.random.default_rng(0)
    V = 7
    z = rng.normal(size=(3, V, 5))
    original = rng.integers(0, V, size=(3, 5))
    corrupted = rng.random((3, 5)) < 0.3
    loss = text_restoration.RestorationLoss(corrupted_weight=4.0)
    marked = text_restoration.mark_corrupted(original, corrupted, classes=V)
    value = loss(z, marked)
    assert value == pytest.approx(_weighted_cross_entropy(z, original, corrupted, 4.0),
                                  rel=1e-12)
    analytic = loss.backward()
    numeric = np.zeros_like(z)
    for i in np.ndindex(z.shape):
        step = np.zeros_like(z)
        step[i] = 1e-6
        numeric[i] = (_weighted_cross_entropy(z + step, original, corrupted, 4.0)
                      - _weighted_cross_entropy(z - step, original, corrupted, 4.0)) / 2e-6
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-9)
    # float32 in, float32 out; plain (unmarked) targets are plain cross-entropy
    z32 = z.astype(np.float32)
    assert loss(z32, marked) == pytest.approx(value, rel=1e-5)
    assert loss.backward().dtype == np.float32
    assert loss(z, original) == pytest.approx(nn.CrossEntropyLoss()(z, original), rel=1e-12)
    # 'sum' and 'none': the weighted per-position losses
    each = text_restoration.RestorationLoss(4.0, reduction="none")(z, marked)
    assert each.shape == (3, 5)
    weight = np.where(corrupted, 4.0, 1.0)
    assert each.sum() / weight.sum() == pytest.approx(value, rel=1e-12)
    total = text_restoration.RestorationLoss(4.0, reduction="sum")
    assert total(z, marked) == pytest.approx(each.sum(), rel=1e-12)
    np.testing.assert_allclose(total.backward(), analytic * weight.sum(), rtol=1e-12)


def test_mark_corrupted_and_the_loss_refuse_what_they_cannot_read():
    y = np.array([[1, 2, 3]])
    mask = np.array([[True, False, False]])
    np.testing.assert_array_equal(text_restoration.mark_corrupted(y, mask),
                                  y + data.VOCAB_SIZE * mask)
    with pytest.raises(ValueError, match="mask must be a bool array"):
        text_restoration.mark_corrupted(y, mask.astype(int))
    with pytest.raises(ValueError, match=r"target must hold indices in \[0, 3\)"):
        text_restoration.mark_corrupted(y, mask, classes=3)
    with pytest.raises(TypeError, match="target must be an integer array"):
        text_restoration.mark_corrupted(y.astype(float), mask)
    loss = text_restoration.RestorationLoss()
    with pytest.raises(ValueError, match=r"marked indices in \[0, 4\) for 2 logits"):
        loss(np.zeros((1, 2, 3)), np.array([[0, 3, 4]]))
    with pytest.raises(ValueError, match="corrupted_weight"):
        text_restoration.RestorationLoss(corrupted_weight=0)


def test_marked_corpus_marks_the_training_targets_only():
    plain = text_restoration.stdlib_corpus(count=64)
    marked = text_restoration.stdlib_corpus(count=64, marked=True)
    np.testing.assert_array_equal(marked.train.x, plain.train.x)
    np.testing.assert_array_equal(marked.train.y % data.VOCAB_SIZE, plain.train.y)
    np.testing.assert_array_equal(marked.train.y >= data.VOCAB_SIZE, plain.train.mask)
    np.testing.assert_array_equal(marked.val.y, plain.val.y)
    np.testing.assert_array_equal(marked.counted, plain.counted)
