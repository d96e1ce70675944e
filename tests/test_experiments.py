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


#: The families' first versions (models.build, data of their first recipe), which the
#: notebooks use: family -> (data loader, learning rate, headline metric). The recipes of
#: ``deconv train`` on real data have their own brief-training tests
#: (tests/test_models_skip.py, _text.py, _classifier.py, _autoencoder.py, _fsrcnn.py).
FIRST_VERSIONS = {
    "skip": (data.digits_denoising, 3e-3, "psnr"),
    "text": (data.text, 1e-3, "accuracy_corrupted"),
    "classifier": (data.digits, 1e-3, "accuracy"),
    "autoencoder": (data.patches, 2e-3, "psnr"),
}


@pytest.fixture
def digits_skip_recipe(monkeypatch):
    """``skip`` as its first recipe (digits, no schedule, no quick variant): a cheap run whose
    longer continuation may resume a shorter one, for the run/resume mechanics, which do not
    depend on the family."""
    monkeypatch.setitem(experiments.RECIPES, "skip", experiments.Recipe(
        lambda: data.digits_denoising(), epochs=40, batch_size=32, lr=3e-3, headline="psnr"))


@pytest.mark.parametrize("name", sorted(FIRST_VERSIONS))
def test_brief_training_improves_the_validation_metric(name):
    load, lr, headline = FIRST_VERSIONS[name]
    dataset = load()
    train, val = _subset(dataset.train, 256), _subset(dataset.val, 128)
    model = models.build(name, rng=0)
    trainer = Trainer(model, models.loss(name), optim.Adam(model.parameters(), lr=lr),
                      batch_size=32, epochs=3, seed=0, progress="none")
    before = models.evaluate(name, trainer.predict(val.x), val)[headline]
    trainer.fit(train.x, train.y, val.x, val.y)
    after = models.evaluate(name, trainer.predict(val.x), val)[headline]
    assert after > before, (name, before, after)


def test_run_writes_checkpoint_and_figure_and_resumes(tmp_path, digits_skip_recipe):
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


def test_command_line(tmp_path, capsys, digits_skip_recipe):
    status = main(["train", "skip", "--epochs", "3", "--out", str(tmp_path)])
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
