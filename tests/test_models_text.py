"""The text family on the standard library's source (issue 15): 15 % of the characters of
held-out files corrupted and restored. The count model is checked against a dictionary
implementation of its definition; brief training improves the validation accuracy."""

import io
from collections import Counter, defaultdict

import numpy as np
import pytest

from deconv import models, nn, optim
from deconv.models import data, metrics, recipes, text_restoration
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
