"""``deconv train``: each family trains briefly and its validation metric improves; the
command writes a checkpoint and a figure, resumes, and reports against the baselines."""

import io
import os

import numpy as np
import pytest

from deconv import data, experiments, models, optim
from deconv.cli import main
from deconv.train import Trainer


def _subset(split, n):
    return type(split)(*(None if a is None else a[:n] for a in split))


@pytest.mark.parametrize("name", [n for n in experiments.RECIPES if n != "superres"])
def test_brief_training_improves_the_validation_metric(name):
    """(superres, validated on whole images, has its own: tests/test_recipes_superres.py)"""
    recipe = experiments.RECIPES[name]
    dataset = recipe.load(**recipe.options)
    train, val = _subset(dataset.train, 256), _subset(dataset.val, 128)
    model = models.build(name, rng=0)
    trainer = Trainer(model, models.loss(name), optim.Adam(model.parameters(), lr=recipe.lr),
                      batch_size=32, epochs=3, seed=0, progress="none")
    before = models.evaluate(name, trainer.predict(val.x), val)[recipe.headline]
    trainer.fit(train.x, train.y, val.x, val.y)
    after = models.evaluate(name, trainer.predict(val.x), val)[recipe.headline]
    assert after > before, (name, before, after)


def test_run_writes_checkpoint_and_figure_and_resumes(tmp_path):
    # skip: no learning-rate schedule, so a longer run may resume a shorter one
    out = io.StringIO()
    result = experiments.run("skip", epochs=2, out=str(tmp_path), progress="none",
                             stream=out)
    text = out.getvalue()
    assert "noisy input" in text and "psnr" in text
    # 2 epochs is not the recipe's 40: the run's folder says so
    run_dir = tmp_path / "skip-epochs2"
    assert result["checkpoint"] == str(run_dir / "checkpoint.npz")
    assert os.path.exists(run_dir / "checkpoint.npz")
    assert os.path.exists(run_dir / "samples.png")
    with open(run_dir / "samples.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert len(result["history"]["epoch"]) == 2
    # resuming continues from epoch 2 to 3, and equals an uninterrupted 3-epoch run
    resumed = experiments.run("skip", epochs=3, out=str(tmp_path / "b"), progress="none",
                              stream=io.StringIO(), figure=False,
                              resume=str(run_dir / "checkpoint.npz"))
    experiments.run("skip", epochs=3, out=str(tmp_path / "c"), progress="none",
                    stream=io.StringIO(), figure=False)
    assert resumed["history"]["epoch"] == [1, 2, 3]
    a = np.load(tmp_path / "b" / "skip-epochs3" / "checkpoint.npz", allow_pickle=False)
    b = np.load(tmp_path / "c" / "skip-epochs3" / "checkpoint.npz", allow_pickle=False)
    weights = [k for k in a.files if k.startswith("model.")]
    assert weights and all(np.array_equal(a[k], b[k]) for k in weights)


def test_command_line(tmp_path, capsys):
    status = main(["train", "classifier", "--epochs", "3", "--out", str(tmp_path)])
    assert status == 0
    assert "beats the best baseline" in capsys.readouterr().out
    with pytest.raises(SystemExit) as err:
        main(["train", "resnet"])
    assert err.value.code == 2


@pytest.mark.parametrize("kwargs, match", [
    (dict(lr=0.0), r"lr"),
    (dict(batch_size=0), r"batch_size"),
    (dict(optimizer="adam", momentum=0.9), r"--momentum"),
])
def test_bad_hyper_parameters_are_refused_before_training(tmp_path, kwargs, match):
    with pytest.raises(experiments.SettingsError, match=match):
        experiments.run("classifier", out=str(tmp_path), progress="none", stream=io.StringIO(),
                        **kwargs)
    assert not any(tmp_path.iterdir())          # no run folder was made


def test_data_subset_helper_keeps_the_mask():
    split = data.text(window=64).val
    small = _subset(split, 3)
    assert small.mask.shape[0] == 3
