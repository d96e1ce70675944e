"""deconv.train: the loop, checkpoints, bitwise resume, the NaN stop, argument errors, progress."""

import io
import os
import sys

import numpy as np
import pytest

from deconv import nn, optim
from deconv.train import (
    CHECKPOINT_VERSION, NonFiniteError, Trainer, load_checkpoint, save_checkpoint,
)

# ---------------------------------------------------------------------------
# tiny problems
# ---------------------------------------------------------------------------


def regression_data(n=50, seed=0):
    """y = x W + b (+ a little noise), 3 -> 2, float32."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3)).astype(np.float32)
    w = np.array([[1.0, -2.0], [0.5, 0.0], [-1.0, 3.0]], dtype=np.float32)
    y = (x @ w + np.array([0.3, -0.7], dtype=np.float32)
         + 0.01 * rng.standard_normal((n, 2)).astype(np.float32))
    return x, y


def linear_trainer(seed=0, epochs=3, lr=0.1, batch_size=16, **kw):
    model = nn.Linear(3, 2, rng=0)
    opt = optim.SGD(model.parameters(), lr=lr)
    kw.setdefault("progress", "none")
    return Trainer(model, nn.MSELoss(), opt, batch_size=batch_size, epochs=epochs, seed=seed,
                   **kw)


def image_data(n=22, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 1, 6, 6)).astype(np.float32)
    y = rng.integers(0, 3, size=n)
    return x, y


def conv_net(init_seed):
    """Conv + ReLU + Dropout + pool + linear, 3 classes: has a generator to checkpoint."""
    return nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1, rng=init_seed),
        nn.ReLU(),
        nn.Dropout(0.3, rng=init_seed + 1),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(3 * 3 * 3, 3, rng=init_seed + 2),
    )


OPTIMIZERS = {
    "sgd": lambda ps: optim.SGD(ps, lr=0.05),
    "sgd-momentum": lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True),
    "adam": lambda ps: optim.Adam(ps, lr=0.01),
}


def conv_trainer(opt_name, init_seed=0, epochs=3, **kw):
    model = conv_net(init_seed)
    kw.setdefault("progress", "none")
    return Trainer(model, nn.CrossEntropyLoss(), OPTIMIZERS[opt_name](model.parameters()),
                   batch_size=5, epochs=epochs, seed=7, **kw)


def params_of(model):
    return {name: p.data.copy() for name, p in model.named_parameters()}


def assert_params_equal(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype
        np.testing.assert_array_equal(a[k], b[k], err_msg=k, strict=True)


def without_seconds(history):
    return {k: v for k, v in history.items() if k != "seconds"}


class Recorder(nn.Module):
    """Identity that records what it sees: (kind, training flag, copy of the input)."""

    def __init__(self):
        super().__init__()
        self.log = []

    def forward(self, x):
        self.log.append(("forward", self.training, x.copy()))
        return x

    def backward(self, grad_output):
        self.log.append(("backward", self.training, None))
        return grad_output


# ---------------------------------------------------------------------------
# the loop
# ---------------------------------------------------------------------------


def test_learns_linear_regression_and_history():
    x, y = regression_data(200)
    xv, yv = regression_data(40, seed=1)
    tr = linear_trainer(epochs=25, batch_size=16)
    history = tr.fit(x, y, xv, yv)
    assert history == tr.history and history is not tr.history
    assert history["epoch"] == list(range(1, 26))
    assert history["steps"] == [13 * e for e in range(1, 26)]       # ceil(200 / 16) = 13
    assert tr.epoch == 25 and tr.step == 13 * 25
    assert all(type(v) is float for k in ("train_loss", "val_metric", "seconds")
               for v in history[k])
    assert all(s >= 0 for s in history["seconds"])
    assert history["train_loss"][-1] < 1e-3 < history["train_loss"][0]
    assert history["val_metric"][-1] < 1e-3
    # default metric = validation loss on the whole set, in eval mode
    np.testing.assert_allclose(
        history["val_metric"][-1], nn.MSELoss()(tr.model(xv), yv), rtol=1e-12)
    assert tr.model.training is False


def test_batches_shuffle_and_cover_every_sample_once_per_epoch():
    x, y = regression_data(50)
    x[:, 0] = np.arange(50)                           # an id per sample
    rec = Recorder()
    model = nn.Sequential(rec, nn.Linear(3, 2, rng=0))
    tr = Trainer(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=1e-4), batch_size=16,
                 epochs=2, seed=3, progress="none")
    tr.fit(x, y, x[:7], y[:7])
    train = [v for kind, training, v in rec.log if kind == "forward" and training]
    assert [len(b) for b in train] == [16, 16, 16, 2] * 2      # the partial batch is kept
    orders = [np.concatenate(train[:4])[:, 0], np.concatenate(train[4:])[:, 0]]
    for order in orders:
        assert sorted(order.astype(int).tolist()) == list(range(50))
    assert not np.array_equal(orders[0], orders[1])            # a new permutation each epoch
    assert not np.array_equal(orders[0], np.arange(50))
    # validation (and the pre-flight probe) run forward only, in eval mode
    assert all(training for kind, training, _ in rec.log if kind == "backward")
    evals = [v for kind, training, v in rec.log if kind == "forward" and not training]
    assert sum(len(v) for v in evals) == 2 + 2 + 2 * 7     # probes of 2 (train, val) + 7 per epoch
    assert sum(kind == "backward" for kind, _, _ in rec.log) == 8


def test_seeded_runs_are_bitwise_reproducible_and_seeds_differ():
    x, y = regression_data(50)
    runs = []
    for seed in (0, 0, 1):
        tr = linear_trainer(seed=seed)
        runs.append((tr.fit(x, y, x[:10], y[:10]), params_of(tr.model)))
    assert without_seconds(runs[0][0]) == without_seconds(runs[1][0])
    assert_params_equal(runs[0][1], runs[1][1])
    assert not np.array_equal(runs[0][1]["weight"], runs[2][1]["weight"])
    assert runs[0][0]["train_loss"] != runs[2][0]["train_loss"]


def test_no_validation_set_and_custom_metric():
    x, y = regression_data(30)
    h = linear_trainer(epochs=2).fit(x, y)
    assert h["val_metric"] == [None, None]

    def max_error(pred, target):
        return float(np.abs(pred - target).max())

    tr = linear_trainer(epochs=2, metric=max_error)
    h = tr.fit(x, y, x[:9], y[:9])
    assert h["val_metric"][-1] == max_error(tr.model(x[:9]), y[:9])
    with pytest.raises(ValueError, match="both x_val and y_val"):
        linear_trainer().fit(x, y, x)


def test_fit_continues_when_epochs_is_raised_and_zero_epochs_does_nothing():
    x, y = regression_data(30)
    tr = linear_trainer(epochs=0)
    before = params_of(tr.model)
    assert tr.fit(x, y)["epoch"] == []
    assert_params_equal(before, params_of(tr.model))
    tr.epochs = 2
    tr.fit(x, y)
    tr.epochs = 3
    assert tr.fit(x, y)["epoch"] == [1, 2, 3]
    one_go = linear_trainer(epochs=3)
    one_go.fit(x, y)
    assert_params_equal(params_of(one_go.model), params_of(tr.model))


# ---------------------------------------------------------------------------
# checkpoints
# ---------------------------------------------------------------------------


def test_checkpoint_round_trip(tmp_path):
    x, y = image_data()
    tr = conv_trainer("adam", epochs=2, out_dir=tmp_path / "run")
    tr.fit(x, y, x[:6], y[:6])
    path = tr.checkpoint_path
    assert os.listdir(tmp_path / "run") == ["checkpoint.npz"]   # one file, no temp left

    with np.load(path, allow_pickle=False) as z:
        files = {k: z[k] for k in z.files}
    assert all(a.dtype != object for a in files.values())
    assert int(files["format_version"]) == CHECKPOINT_VERSION
    assert str(files["format"]) == "deconv.train.checkpoint"
    assert int(files["epoch"]) == 2 and int(files["step"]) == tr.step == 10
    for name, p in tr.model.named_parameters():
        np.testing.assert_array_equal(files[f"model.{name}"], p.data, strict=True)
    for key, value in tr.optimizer.state_dict().items():
        np.testing.assert_array_equal(files[f"optimizer.{key}"], value)
    assert {k for k in files if k.startswith("rng.")} == {"rng.shuffle", "rng.model.2.rng"}

    fresh = conv_trainer("adam", init_seed=5, epochs=2)
    info = fresh.load_checkpoint(path)
    assert info["epoch"] == 2 and info["step"] == 10 and info["seed"] == 7
    assert_params_equal(params_of(tr.model), params_of(fresh.model))
    sd_a, sd_b = tr.optimizer.state_dict(), fresh.optimizer.state_dict()
    assert sd_a.keys() == sd_b.keys()
    for k in sd_a:
        np.testing.assert_array_equal(sd_a[k], sd_b[k], strict=True)
    assert fresh.history == tr.history                # seconds included: stored exactly
    assert fresh.rng.bit_generator.state == tr.rng.bit_generator.state
    assert fresh.model[2].rng.bit_generator.state == tr.model[2].rng.bit_generator.state


def test_rng_states_of_every_bit_generator_survive(tmp_path):
    # PCG64 (128-bit ints), and generators whose state holds arrays
    model = nn.Sequential(*(nn.Dropout(0.5, rng=np.random.Generator(bg)) for bg in (
        np.random.PCG64(1), np.random.MT19937(2), np.random.Philox(3), np.random.SFC64(4))))
    for m in model:
        m.rng.random(3)
    rng = np.random.default_rng(2**100)
    rng.random(5)
    save_checkpoint(tmp_path / "c.npz", model, rng=rng)
    expected = [m.rng.random(4) for m in model] + [rng.random(4)]
    fresh = nn.Sequential(*(nn.Dropout(0.5, rng=np.random.Generator(type(m.rng.bit_generator)()))
                            for m in model))
    rng2 = np.random.default_rng()
    load_checkpoint(tmp_path / "c.npz", fresh, rng=rng2)
    got = [m.rng.random(4) for m in fresh] + [rng2.random(4)]
    for a, b in zip(expected, got):
        np.testing.assert_array_equal(a, b)


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    x, y = regression_data(30)
    tr = linear_trainer(epochs=1)
    tr.fit(x, y)
    path = tmp_path / "ckpt.npz"
    tr.save_checkpoint(path)
    before = path.read_bytes()

    tr.epochs = 2
    tr.fit(x, y)

    def broken_savez(file, *args, **kwds):
        file.write(b"half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        tr.save_checkpoint(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["ckpt.npz"]          # the temporary file is gone
    monkeypatch.undo()
    assert load_checkpoint(path, linear_trainer().model)["epoch"] == 1


def test_load_checkpoint_errors_change_nothing(tmp_path):
    x, y = regression_data(30)
    tr = linear_trainer(epochs=1)
    tr.fit(x, y)
    path = tmp_path / "c.npz"
    tr.save_checkpoint(path)
    with np.load(path, allow_pickle=False) as z:
        files = {k: z[k] for k in z.files}

    def variant(name, **changes):
        d = {**files, **changes}
        for k in [k for k, v in changes.items() if v is None]:
            del d[k]
        p = tmp_path / name
        with open(p, "wb") as f:
            np.savez(f, **d)
        return p

    def fresh(model=None):
        model = nn.Linear(3, 2, rng=9) if model is None else model
        return model, optim.SGD(model.parameters(), lr=0.5, momentum=0.1)

    cases = [
        (variant("v.npz", format_version=np.array(99)), None, "format version 99"),
        (variant("f.npz", format=np.array("something else")), None, "not a deconv training"),
        (path, nn.Sequential(nn.Linear(3, 2)), r"missing from the checkpoint: \['0.weight'"),
        (path, nn.Linear(3, 2, bias=False), r"not in the model: \['bias'\]"),
        (path, nn.Linear(3, 4), r"'weight' is saved with shape \(2, 3\)"),
        (path, nn.Linear(3, 2, dtype=np.float64), "dtype float32"),
        (variant("o.npz", **{"optimizer.num_params": np.array(5)}), None, "5 parameters"),
        (variant("g.npz", **{"rng.model.0.rng": np.array("{}")}), None, "not in the model"),
    ]
    for p, model, match in cases:
        model, opt = fresh(model)
        before = params_of(model)
        sd = opt.state_dict()
        with pytest.raises(ValueError, match=match):
            load_checkpoint(p, model, opt)
        assert_params_equal(before, params_of(model))
        assert opt.state_dict() == sd

    model = nn.Linear(3, 2)
    with pytest.raises(ValueError, match="holds a SGD state, the optimizer is a Adam"):
        load_checkpoint(path, model, optim.Adam(model.parameters()))
    # weights only, for inference
    model = nn.Linear(3, 2, rng=4)
    load_checkpoint(path, model)
    assert_params_equal(params_of(model), params_of(tr.model))


# ---------------------------------------------------------------------------
# bitwise resume
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("opt_name", sorted(OPTIMIZERS))
def test_resume_is_bitwise(opt_name, tmp_path):
    x, y = image_data()
    xv, yv = image_data(8, seed=2)
    straight = conv_trainer(opt_name, epochs=3)
    straight.fit(x, y, xv, yv)

    first = conv_trainer(opt_name, epochs=3, out_dir=tmp_path, checkpoint_every=1)
    first.epochs = 1                       # stop after one epoch, as if interrupted
    first.fit(x, y, xv, yv)
    # fresh objects with other initial weights and another dropout seed: all must be restored
    resumed = conv_trainer(opt_name, init_seed=11, epochs=3)
    resumed.load_checkpoint(first.checkpoint_path)
    history = resumed.fit(x, y, xv, yv)

    assert_params_equal(params_of(straight.model), params_of(resumed.model))
    assert without_seconds(history) == without_seconds(straight.history)
    assert resumed.step == straight.step == 15
    sd_a, sd_b = straight.optimizer.state_dict(), resumed.optimizer.state_dict()
    for k in sd_a:
        np.testing.assert_array_equal(sd_a[k], sd_b[k], strict=True)

    if opt_name == "adam":
        # the test can tell: continuing without the dropout generator's state diverges
        resumed_no_rng = conv_trainer(opt_name, init_seed=11, epochs=3)
        resumed_no_rng.load_checkpoint(first.checkpoint_path)
        resumed_no_rng.model[2].rng = np.random.default_rng(1)
        resumed_no_rng.fit(x, y, xv, yv)
        assert not np.array_equal(resumed_no_rng.model[0].weight.data,
                                  straight.model[0].weight.data)


def test_resume_refuses_fewer_epochs_than_done(tmp_path):
    x, y = regression_data(30)
    tr = linear_trainer(epochs=3, out_dir=tmp_path)
    tr.fit(x, y)
    other = linear_trainer(epochs=2)
    other.load_checkpoint(tr.checkpoint_path)
    with pytest.raises(ValueError, match="epochs=2 is less than the 3 epochs already done"):
        other.fit(x, y)


# ---------------------------------------------------------------------------
# NaN / inf
# ---------------------------------------------------------------------------


def _trained_with_checkpoint(tmp_path, opt_name="adam"):
    x, y = image_data()
    tr = conv_trainer(opt_name, epochs=2, out_dir=tmp_path)
    tr.fit(x, y, x[:4], y[:4])
    return tr, x, y, tr.checkpoint_path


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy reports the overflow too
class InfCrossEntropy(nn.CrossEntropyLoss):
    """A cross-entropy whose value is inf on every batch (finite data can still overflow a loss)."""

    def forward(self, prediction, target):
        super().forward(prediction, target)
        return float("inf")


def test_inf_loss_stops_before_the_step_and_keeps_the_checkpoint(tmp_path):
    tr, x, y, path = _trained_with_checkpoint(tmp_path)
    on_disk = open(path, "rb").read()
    good = params_of(tr.model)
    good_opt = tr.optimizer.state_dict()
    tr.loss = InfCrossEntropy()                        # every batch of epoch 3 is poisoned
    tr.epochs = 4
    with pytest.raises(NonFiniteError) as info:
        tr.fit(x, y, x[:4], y[:4])
    err = info.value
    assert (err.epoch, err.step, err.tensor) == (3, 11, "loss")
    assert "epoch 3, step 11" in str(err) and "left as it was" in str(err)
    assert_params_equal(good, params_of(tr.model))          # no update was made
    assert tr.optimizer.state_dict()["state.0.step"] == good_opt["state.0.step"]
    assert tr.epoch == 2 and tr.step == 10 and len(tr.history["epoch"]) == 2
    assert open(path, "rb").read() == on_disk
    fresh = conv_trainer("adam", epochs=4)
    assert fresh.load_checkpoint(path)["epoch"] == 2
    assert_params_equal(good, params_of(fresh.model))
    assert os.listdir(tmp_path) == ["checkpoint.npz"]


class NaNGradMSE(nn.MSELoss):
    """A finite loss whose gradient turns NaN from the ``bad_from``-th backward on."""

    def __init__(self, bad_from):
        super().__init__()
        self.calls, self.bad_from = 0, bad_from

    def backward(self):
        self.calls += 1
        g = super().backward()
        if self.calls >= self.bad_from:
            g = g.copy()
            g[0, 0] = np.nan
        return g


def test_inf_or_nan_data_is_refused_before_the_first_step(tmp_path):
    tr, x, y, path = _trained_with_checkpoint(tmp_path)
    good = params_of(tr.model)
    x_bad = x.copy()
    x_bad[5, 0] = np.inf
    tr.epochs = 4
    with pytest.raises(ValueError, match=r"x_train must be finite, got inf at position \(5, 0"):
        tr.fit(x_bad, y, x[:4], y[:4])
    with pytest.raises(ValueError, match=r"x_val must be finite, got nan"):
        tr.fit(x, y, np.full_like(x[:4], np.nan), y[:4])
    assert_params_equal(good, params_of(tr.model))
    assert tr.epoch == 2


def test_nan_gradient_names_the_parameter(tmp_path):
    x, y = regression_data(30)
    model = nn.Linear(3, 2, rng=0)
    tr = Trainer(model, NaNGradMSE(bad_from=5), optim.SGD(model.parameters(), lr=0.1),
                 batch_size=10, epochs=3, seed=0, out_dir=tmp_path, progress="none")
    before_step_5 = []
    orig_step = tr.optimizer.step

    def spy():
        orig_step()
        before_step_5[:] = [params_of(model)]

    tr.optimizer.step = spy
    with pytest.raises(NonFiniteError, match="gradient of parameter 'weight'") as info:
        tr.fit(x, y)
    assert (info.value.epoch, info.value.step, info.value.tensor) == (2, 5, "gradient of 'weight'")
    assert_params_equal(before_step_5[0], params_of(model))
    assert load_checkpoint(tr.checkpoint_path, nn.Linear(3, 2))["epoch"] == 1


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy reports the overflow too
def test_overflowing_update_is_caught_and_checkpoint_kept(tmp_path):
    x, y = regression_data(30)
    tr = linear_trainer(epochs=1, out_dir=tmp_path)
    tr.fit(x, y)
    on_disk = open(tr.checkpoint_path, "rb").read()
    tr.optimizer.lr = 1e38                                      # blows up mid-training
    tr.epochs = 5
    with pytest.raises(NonFiniteError):
        tr.fit(x, y)
    assert open(tr.checkpoint_path, "rb").read() == on_disk
    assert load_checkpoint(tr.checkpoint_path, nn.Linear(3, 2))["epoch"] == 1


# ---------------------------------------------------------------------------
# bad arguments, refused before training
# ---------------------------------------------------------------------------


def test_bad_hyper_parameters():
    x, y = regression_data(20)
    model = nn.Linear(3, 2)
    loss = nn.MSELoss()
    sgd = optim.SGD(model.parameters(), lr=0.1)
    ok = dict(batch_size=4, epochs=2, seed=0)
    cases = [
        (dict(batch_size=0), ValueError, "batch_size must be >= 1, got 0"),
        (dict(epochs=-1), ValueError, "epochs must be >= 0, got -1"),
        (dict(seed=-3), ValueError, "seed must be >= 0"),
        (dict(checkpoint_every=0), ValueError, "checkpoint_every must be >= 1"),
        (dict(progress="fancy"), ValueError, "progress must be one of"),
        (dict(batch_size=2.0), TypeError, "batch_size must be an int"),
        (dict(metric="accuracy"), TypeError, "metric must be callable"),
    ]
    for change, exc, match in cases:
        with pytest.raises(exc, match=match):
            Trainer(model, loss, sgd, **{**ok, **change})
    with pytest.raises(ValueError, match=r"lr \(optimizer.lr\) must be a finite number > 0, "
                                         r"got 0.0"):
        Trainer(model, loss, optim.SGD(model.parameters(), lr=0), **ok)
    with pytest.raises(ValueError, match="not the model's"):
        Trainer(model, loss, optim.SGD(nn.Linear(3, 2).parameters(), lr=0.1), **ok)

    # changed after construction: fit checks again, before any step
    tr = Trainer(model, loss, sgd, **ok)
    before = params_of(model)
    sgd.lr = 0.0
    with pytest.raises(ValueError, match="lr"):
        tr.fit(x, y)
    sgd.lr = 0.1
    tr.batch_size = 0
    with pytest.raises(ValueError, match="batch_size"):
        tr.fit(x, y)
    assert_params_equal(before, params_of(model))
    assert tr.step == 0


def test_bad_data_refused_before_the_first_step(tmp_path):
    x, y = regression_data(20)
    xi, yi = image_data()

    def trainer(model, loss):
        return Trainer(model, loss, optim.SGD(model.parameters(), lr=0.1), batch_size=4,
                       epochs=2, seed=0, out_dir=tmp_path / "never", progress="none")

    model = nn.Linear(3, 2)
    cases = [
        ((x, y[:19]), ValueError,
         r"x_train and y_train must have the same number of samples \(axis 0\), "
         "got 20 inputs and 19 targets"),
        ((x, y, x[:5], y[:4]), ValueError, "x_val and y_val must have the same number"),
        ((x, y[:, :1]), ValueError, r"y_train does not fit the model's output for MSELoss: "
                                    r"the model maps x_train\[:2\] to shape \(2, 2\)"),
        ((x, y, x[:5], y[:5, :1]), ValueError, "y_val does not fit"),
        ((x[:0], y[:0]), ValueError, "x_train is empty"),
        ((x[:, :2], y), ValueError, "the model fails on x_train"),
    ]
    for args, exc, match in cases:
        tr = trainer(model, nn.MSELoss())
        before = params_of(model)
        with pytest.raises(exc, match=match):
            tr.fit(*args)
        assert_params_equal(before, params_of(model))
        assert tr.step == 0 and not (tmp_path / "never").exists()

    # cross-entropy: the target shape is the logits' shape without the class axis
    net = conv_net(0)
    tr = trainer(net, nn.CrossEntropyLoss())
    rng_state = net[2].rng.bit_generator.state
    with pytest.raises(ValueError, match=r"expected \(2,\) \(the logits' shape without"):
        tr.fit(xi, yi[:, None])
    with pytest.raises(TypeError, match="integer array of class indices"):
        tr.fit(xi, yi.astype(np.float32))
    assert net[2].rng.bit_generator.state == rng_state      # the probe drew nothing
    assert all(not p.grad.any() for p in net.parameters())  # and touched no gradient


# ---------------------------------------------------------------------------
# progress
# ---------------------------------------------------------------------------


def test_progress_lines_none_and_auto(monkeypatch):
    x, y = regression_data(30)
    out = io.StringIO()
    linear_trainer(epochs=3, progress="lines", stream=out).fit(x, y, x[:5], y[:5])
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    for i, line in enumerate(lines, 1):
        assert line.startswith(f"epoch {i}/3: train loss ")
        assert ", val loss " in line and line.endswith(" s")

    out = io.StringIO()
    linear_trainer(epochs=2, progress="none", stream=out).fit(x, y, x[:5], y[:5])
    assert out.getvalue() == ""

    out = io.StringIO()                                  # auto, not a terminal: lines
    linear_trainer(epochs=2, progress=None, stream=out).fit(x, y)
    assert len(out.getvalue().splitlines()) == 2 and "val loss -" in out.getvalue()

    class FakeTTY(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setitem(sys.modules, "tqdm", None)       # tqdm not installed
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    out = FakeTTY()
    linear_trainer(epochs=2, progress=None, stream=out).fit(x, y)
    assert len(out.getvalue().splitlines()) == 2


def test_progress_bar_on_a_terminal():
    import tqdm  # noqa: F401  (in the 'test' extra: the bar must be exercised, not skipped)
    x, y = regression_data(30)

    class FakeTTY(io.StringIO):
        def isatty(self):
            return True

    out = FakeTTY()
    linear_trainer(epochs=2, progress=None, stream=out).fit(x, y, x[:5], y[:5])
    text = out.getvalue()
    assert "epoch 1/2" in text and "epoch 2/2" in text and "\r" in text
    assert "val loss" in text


# ---------------------------------------------------------------------------
# the README's loop by hand
# ---------------------------------------------------------------------------


def test_readme_training_loop_by_hand_runs_and_learns():
    """The loop of README.md's "The training loop by hand" (forward, loss_fn(pred, y),
    loss_fn.backward(), model.backward(g), opt.step()) runs and its loss falls as stated."""
    import re

    readme = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          "README.md")
    with open(readme, encoding="utf-8") as f:
        section = f.read().split("### The training loop by hand", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)
    for call in ("loss_fn(pred, y[batch])", "g = loss_fn.backward()", "model.backward(g)",
                 "opt.step()"):
        assert call in block
    namespace = {}
    exec(compile(block, "README.md", "exec"), namespace)
    losses = namespace["losses"]
    assert len(losses) == 8
    assert all(b < a for a, b in zip(losses, losses[1:]))       # falls every epoch
    assert round(losses[0], 2) == 0.32 and round(losses[-1], 3) == 0.010   # as the README says
