"""``deconv train`` on the command line: options that do not apply are refused (exit 2),
runs of different settings get different folders, ``--resume`` finds a run's folder."""

import math
import os

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from deconv import data
from deconv.cli import main
from deconv.models import recipes


def _refused(argv, capsys):
    with pytest.raises(SystemExit) as err:
        main(argv)
    assert err.value.code == 2
    return capsys.readouterr().err


# ---------------------------------------------------------------------------
# refused, before any data is loaded or folder made
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("argv, words", [
    (["classifier", "--scale", "4"], ["--scale", "superres only", "classifier"]),
    (["text", "--upsample", "pixelshuffle"], ["--upsample", "superres only", "text"]),
    (["skip", "--scale", "2"], ["--scale", "skip"]),          # even at its superres default
    (["superres", "--momentum", "0.9"], ["--momentum", "--optimizer sgd only", "adam"]),
    (["autoencoder", "--optimizer", "adam", "--momentum", "0"], ["--momentum", "adam"]),
])
def test_options_that_do_not_apply_are_refused(argv, words, tmp_path, capsys):
    message = _refused(["train", *argv, "--out", str(tmp_path)], capsys)
    assert "deconv train: error:" in message
    for word in words:
        assert word in message, (word, message)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("argv, words", [
    (["--batch-size", "0"], ["--batch-size", ">= 1", "got 0"]),
    (["--epochs", "-1"], ["--epochs", ">= 0", "got -1"]),
    (["--lr", "0"], ["--lr", "> 0", "got 0.0"]),
    (["--lr", "nan"], ["--lr", "finite", "got nan"]),
    (["--seed", "-2"], ["--seed", ">= 0", "got -2"]),
    (["--optimizer", "sgd", "--momentum", "-0.5"], ["--momentum", ">= 0", "got -0.5"]),
])
def test_bad_values_are_refused(argv, words, tmp_path, capsys):
    message = _refused(["train", "classifier", *argv, "--out", str(tmp_path)], capsys)
    for word in words:
        assert word in message, (word, message)
    assert not any(tmp_path.iterdir())


def test_resume_from_nothing_is_refused(tmp_path, capsys):
    message = _refused(["train", "classifier", "--out", str(tmp_path / "runs"),
                        "--resume", str(tmp_path / "nowhere")], capsys)
    assert "--resume" in message and "no checkpoint" in message
    assert not (tmp_path / "runs").exists()


def test_sgd_takes_a_momentum():
    settings = recipes.resolve_settings("classifier", optimizer="sgd", momentum=0.9)
    assert settings["optimizer"] == "sgd" and settings["momentum"] == 0.9
    assert recipes.resolve_settings("classifier", optimizer="sgd")["momentum"] == 0.0
    assert recipes.resolve_settings("classifier")["momentum"] is None


# ---------------------------------------------------------------------------
# the run's folder
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(recipes.RECIPES))
def test_default_settings_keep_the_plain_folder(name):
    # the README's quick start names runs/superres/checkpoint.npz
    assert recipes.run_name(recipes.resolve_settings(name)) == name
    recipe = recipes.RECIPES[name]
    same = recipes.resolve_settings(name, epochs=recipe.epochs, lr=recipe.lr,
                                    batch_size=recipe.batch_size, seed=0, **recipe.options)
    assert recipes.run_name(same) == name


def test_folder_names_say_the_settings():
    def name(**kw):
        return recipes.run_name(recipes.resolve_settings(**kw))
    assert name(name="superres", scale=4, upsample="pixelshuffle") == "superres-x4-pixelshuffle"
    assert name(name="superres", scale=2, upsample="pixelshuffle") == "superres-pixelshuffle"
    assert name(name="classifier", seed=1) == "classifier-seed1"
    assert name(name="classifier", optimizer="sgd") == "classifier-sgd"
    assert (name(name="skip", optimizer="sgd", momentum=0.9, lr=0.01, batch_size=8, epochs=3)
            == "skip-sgd-lr0.01-momentum0.9-batch8-epochs3")


@st.composite
def settings(draw):
    """Valid settings of any family, drawn directly (every value in range)."""
    name = draw(st.sampled_from(list(recipes.RECIPES)))
    kw = {}
    if name == "superres":
        kw["scale"] = draw(st.sampled_from([2, 4]))
        kw["upsample"] = draw(st.sampled_from(["deconv", "pixelshuffle"]))
    kw["optimizer"] = draw(st.sampled_from(["adam", "sgd"]))
    if kw["optimizer"] == "sgd":
        kw["momentum"] = draw(st.sampled_from([0.0, 0.5, 0.9, 1e-5]))
    kw["lr"] = draw(st.sampled_from([1e-3, 2e-3, 3e-3, 1e-2, 1e-5, 0.1 + 0.2, 0.3]))
    kw["batch_size"] = draw(st.integers(1, 64))
    kw["epochs"] = draw(st.integers(0, 50))
    kw["seed"] = draw(st.integers(0, 2**31 - 1))
    return recipes.resolve_settings(name, **kw)


@given(settings(), settings())
def test_different_settings_never_share_a_folder(a, b):
    assert (recipes.run_name(a) == recipes.run_name(b)) == (a == b)


@given(settings())
def test_folder_name_is_one_path_component(s):
    name = recipes.run_name(s)
    assert name.startswith(s["name"]) and os.sep not in name and name == name.strip()
    assert recipes.run_name(dict(s)) == name               # the same settings find it again


# ---------------------------------------------------------------------------
# whole runs: two seeds, then a resumed run
# ---------------------------------------------------------------------------

@pytest.fixture
def digits_skip_recipe(monkeypatch):
    """``skip`` as its first recipe (digits, no schedule): cheap, and resumable into a longer run."""
    monkeypatch.setitem(recipes.RECIPES, "skip", recipes.Recipe(
        lambda: data.digits_denoising(), epochs=40, batch_size=32, lr=3e-3, headline="psnr"))


def _arrays(path):
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def test_runs_of_two_seeds_and_a_resumed_run_keep_their_folders(tmp_path, capsys,
                                                                  digits_skip_recipe):
    # skip as its first, digits recipe: no learning-rate schedule, so that a longer run may
    # resume a shorter one (a cosine schedule spans its run: tests/test_recipes_superres.py)
    runs = tmp_path / "runs"
    common = ["train", "skip", "--epochs", "1", "--out", str(runs)]
    assert main(common) in (0, 1)
    assert main(common + ["--seed", "1"]) in (0, 1)
    first, second = runs / "skip-epochs1", runs / "skip-epochs1-seed1"
    assert sorted(p.name for p in runs.iterdir()) == [first.name, second.name]
    a, b = _arrays(first / "checkpoint.npz"), _arrays(second / "checkpoint.npz")
    assert int(a["seed"]) == 0 and int(b["seed"]) == 1
    assert not np.array_equal(a["model.1.weight"], b["model.1.weight"])
    with open(first / "checkpoint.npz", "rb") as f:
        first_bytes = f.read()
    capsys.readouterr()

    # --resume takes the run's folder; two epochs in all go to the folder of two epochs
    assert main(["train", "skip", "--epochs", "2", "--out", str(runs),
                 "--resume", str(first)]) in (0, 1)
    assert str(runs / "skip-epochs2" / "checkpoint.npz") in capsys.readouterr().out
    resumed = _arrays(runs / "skip-epochs2" / "checkpoint.npz")
    assert resumed["history.epoch"].tolist() == [1, 2] and int(resumed["epoch"]) == 2
    with open(first / "checkpoint.npz", "rb") as f:
        assert f.read() == first_bytes                     # the one-epoch run is still there

    # a checkpoint of another seed, learning rate or model is refused, not half-used
    message = _refused(common[:-2] + ["--out", str(tmp_path / "other"), "--resume",
                                      str(second)], capsys)
    assert "--resume" in message and "seed 0" in message and "1" in message
    message = _refused(common[:-2] + ["--lr", "0.01", "--out", str(tmp_path / "other"),
                                      "--resume", str(first)], capsys)
    assert "lr 0.01" in message and "0.003" in message
    message = _refused(["train", "classifier", "--out", str(tmp_path / "other"), "--resume",
                        str(first / "checkpoint.npz")], capsys)
    assert "--resume" in message and "parameters do not match" in message
    assert not (tmp_path / "other").exists()
    assert math.isfinite(float(resumed["history.train_loss"][-1]))
