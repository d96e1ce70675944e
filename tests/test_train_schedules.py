"""The trainer with schedules, clipping, BatchNorm and channel dropout (issue 14).

A model with BatchNorm2d (running statistics: buffers) and Dropout2d (a
generator), AdamW over two parameter groups, a cosine schedule with a linear
warm-up stepped per batch and gradient clipping: interrupted after one epoch
and resumed from the checkpoint into fresh objects, it ends bitwise where the
uninterrupted run ends — parameters, buffers, optimizer and scheduler state,
history. Each piece is also checked to act: the schedule sets the rates a
hand replay of it gives, clipping bounds the norm the optimizer sees,
validation runs in eval mode (running statistics, no dropout).
"""

import math

import numpy as np
import pytest

from deconv import nn, optim
from deconv.optim import lr_scheduler
from deconv.train import Trainer, load_checkpoint, save_checkpoint


def image_data(n=24, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 2, 6, 6)).astype(np.float32)
    y = rng.integers(0, 3, size=n)
    return x, y


def net(seed):
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1, bias=False, rng=seed),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Dropout2d(0.25, rng=seed + 1),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(4 * 3 * 3, 3, rng=seed + 2),
    )


def trainer(seed=0, epochs=3, **kw):
    model = net(seed)
    decay = [p for name, p in model.named_parameters() if name.endswith("weight") and
             p.data.ndim > 1]
    no_decay = [p for name, p in model.named_parameters() if not (name.endswith("weight") and
                                                                  p.data.ndim > 1)]
    opt = optim.AdamW([{"params": decay}, {"params": no_decay, "weight_decay": 0.0}], lr=0.02)
    steps_per_epoch = 24 // 5 + 1
    warmup = lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=3)
    cosine = lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * steps_per_epoch - 3)
    schedule = lr_scheduler.SequentialLR(opt, [warmup, cosine], milestones=[3])
    kw.setdefault("progress", "none")
    return Trainer(model, nn.CrossEntropyLoss(), opt, batch_size=5, epochs=epochs, seed=7,
                   scheduler=schedule, scheduler_interval="batch", clip_grad_norm=0.5, **kw)


def state_of(tr):
    out = {f"model.{k}": v for k, v in tr.model.state_dict().items()}
    out.update({f"opt.{k}": np.asarray(v) for k, v in tr.optimizer.state_dict().items()})
    out.update({f"sched.{k}": np.asarray(v) for k, v in tr.scheduler.state_dict().items()})
    return out


def test_resume_with_batchnorm_dropout2d_adamw_groups_warmup_cosine_and_clipping(tmp_path):
    x, y = image_data()
    xv, yv = image_data(8, seed=2)
    straight = trainer()
    straight.fit(x, y, xv, yv)

    first = trainer(out_dir=tmp_path)
    first.epochs = 1
    first.fit(x, y, xv, yv)
    resumed = trainer(seed=5)                 # other weights, other dropout seed: all restored
    resumed.load_checkpoint(first.checkpoint_path)
    history = resumed.fit(x, y, xv, yv)

    a, b = state_of(straight), state_of(resumed)
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], strict=True, err_msg=key)
    drop = lambda h: {k: v for k, v in h.items() if k != "seconds"}
    assert drop(history) == drop(straight.history)
    # the running statistics moved and were carried (not left at their initial values)
    assert int(resumed.model[1].num_batches_tracked) == straight.step == 15
    assert not np.allclose(resumed.model[1].running_var, 1.0)

    # the test can tell: resuming without the scheduler's state gives other rates
    no_sched = trainer(seed=5)
    info = load_checkpoint(first.checkpoint_path, no_sched.model, no_sched.optimizer,
                           rng=no_sched.rng)
    no_sched.epoch, no_sched.step, no_sched.history = info["epoch"], info["step"], info["history"]
    no_sched.fit(x, y, xv, yv)
    assert not np.array_equal(no_sched.model[0].weight.data, straight.model[0].weight.data)


def test_the_schedule_sets_the_rates_of_its_replay():
    x, y = image_data()
    tr = trainer(epochs=2)
    seen = []
    step = tr.optimizer.step

    def recording_step():
        seen.append([g["lr"] for g in tr.optimizer.param_groups])
        step()

    tr.optimizer.step = recording_step
    tr.fit(x, y)
    # a replay of the same schedule on a bare optimizer
    p = nn.Parameter(np.zeros(1))
    opt = optim.AdamW([{"params": [p]}, {"params": [nn.Parameter(np.zeros(1))]}], lr=0.02)
    warmup = lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=3)
    cosine = lr_scheduler.CosineAnnealingLR(opt, T_max=2 * 5 - 3)
    schedule = lr_scheduler.SequentialLR(opt, [warmup, cosine], milestones=[3])
    expected = []
    for _ in range(10):
        expected.append([g["lr"] for g in opt.param_groups])
        schedule.step()
    assert seen == expected
    assert seen[0][0] == pytest.approx(0.002) and seen[3][0] == pytest.approx(0.02)


def test_epoch_interval_and_plateau_on_the_validation_metric():
    x, y = image_data()
    model = net(0)
    opt = optim.SGD(model.parameters(), lr=0.1)
    step_lr = lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    tr = Trainer(model, nn.CrossEntropyLoss(), opt, batch_size=8, epochs=3, seed=0,
                 scheduler=step_lr, progress="none")
    tr.fit(x, y)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5**3)

    model = net(0)
    opt = optim.SGD(model.parameters(), lr=0.1)
    plateau = lr_scheduler.ReduceLROnPlateau(opt, mode="max", patience=0, factor=0.5)
    metrics = iter([0.5, 0.4, 0.3])              # never improves after the first
    tr = Trainer(model, nn.CrossEntropyLoss(), opt, batch_size=8, epochs=3, seed=0,
                 scheduler=plateau, metric=lambda p, t: next(metrics), progress="none")
    tr.fit(x, y, x[:4], y[:4])
    assert opt.param_groups[0]["lr"] == pytest.approx(0.025)


def test_clipping_bounds_the_norm_the_optimizer_sees():
    x, y = image_data()
    for kw, check in [
        (dict(clip_grad_norm=1e-3), lambda gs: math.sqrt(sum(float((g ** 2).sum()) for g in gs))
         <= 1e-3 * (1 + 1e-5)),
        (dict(clip_grad_value=1e-4), lambda gs: max(float(np.abs(g).max()) for g in gs)
         <= 1e-4),
    ]:
        model = net(0)
        opt = optim.SGD(model.parameters(), lr=0.1)
        tr = Trainer(model, nn.CrossEntropyLoss(), opt, batch_size=8, epochs=1, seed=0,
                     progress="none", **kw)
        grads = []
        step = opt.step

        def recording_step():
            grads.append([p.grad.astype(np.float64) for p in opt.params])
            step()

        opt.step = recording_step
        tr.fit(x, y)
        assert len(grads) == 3 and all(check(gs) for gs in grads), kw


def test_validation_runs_in_eval_mode_with_running_statistics():
    x, y = image_data()
    tr = trainer(epochs=1)
    seen = []

    def metric(prediction, target):
        seen.append(prediction)
        return 0.0

    tr.metric = metric
    tr.fit(x, y, x[:6], y[:6])
    tr.model.eval()
    # no dropout, running statistics (validation runs in batches: BLAS may round the last bit)
    np.testing.assert_allclose(seen[0], tr.model(x[:6]), rtol=1e-5, atol=1e-6)
    tr.model.train()
    assert not np.allclose(seen[0], tr.model(x[:6]), rtol=1e-3, atol=1e-3)


def test_checkpoints_carry_buffers_and_scheduler_and_read_version_1(tmp_path):
    tr = trainer(epochs=1)
    tr.fit(*image_data())
    path = tmp_path / "c.npz"
    save_checkpoint(path, tr.model, tr.optimizer, scheduler=tr.scheduler)
    files = np.load(path)
    assert "model.1.running_mean" in files and "model.1.num_batches_tracked" in files
    assert str(files["scheduler"]) == "SequentialLR" and "scheduler.last_epoch" in files
    other = trainer(seed=3, epochs=1)
    with pytest.raises(ValueError, match="scheduler state does not fit|holds a SequentialLR"):
        load_checkpoint(path, other.model, other.optimizer,
                        scheduler=lr_scheduler.StepLR(other.optimizer, 1))
    # a version-1 file (no buffers, no scheduler) of a model without buffers still loads
    plain = nn.Sequential(nn.Linear(3, 2, rng=0))
    save_checkpoint(tmp_path / "v1.npz", plain)
    arrays = dict(np.load(tmp_path / "v1.npz"))
    arrays["format_version"] = np.array(1, dtype=np.int64)
    np.savez(tmp_path / "v1.npz", **arrays)
    assert load_checkpoint(tmp_path / "v1.npz", nn.Sequential(nn.Linear(3, 2, rng=1)))[
        "format_version"] == 1


def test_bad_schedule_and_clipping_arguments_name_them():
    model = net(0)
    opt = optim.SGD(model.parameters(), lr=0.1)
    other = optim.SGD(net(1).parameters(), lr=0.1)
    kw = dict(batch_size=4, epochs=1, seed=0)
    cases = [
        (dict(scheduler=lr_scheduler.StepLR(other, 1)), ValueError, "scheduler was made for another"),
        (dict(scheduler=lr_scheduler.StepLR), TypeError, "scheduler must be .* got the class StepLR"),
        (dict(scheduler="cosine"), TypeError, "scheduler must be"),
        (dict(scheduler_interval="step"), ValueError, "scheduler_interval must be one of"),
        (dict(scheduler=lr_scheduler.ReduceLROnPlateau(opt), scheduler_interval="batch"),
         ValueError, "scheduler_interval='batch' with ReduceLROnPlateau"),
        (dict(clip_grad_norm=0), ValueError, "clip_grad_norm must be a finite number > 0"),
        (dict(clip_grad_value=float("nan")), ValueError, "clip_grad_value must be"),
        (dict(clip_grad_norm="1"), TypeError, "clip_grad_norm must be a real number"),
    ]
    for extra, exc, match in cases:
        with pytest.raises(exc, match=match):
            Trainer(model, nn.CrossEntropyLoss(), opt, **kw, **extra)
    with pytest.raises(ValueError, match="its reduction is 'none'"):
        Trainer(model, nn.CrossEntropyLoss(reduction="none"), opt, **kw)
