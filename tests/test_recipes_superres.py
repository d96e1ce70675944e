"""Super-resolution trained briefly on tiny data improves the validation PSNR (whole
held-out images, luminance, border cropped) over its starting point, bicubic; ``deconv
train superres --quick`` reports every baseline per image and draws the figure."""

import dataclasses
import io
import os

import numpy as np
import pytest

from deconv import data, models, optim
from deconv.cli import main
from deconv.models import recipes
from deconv.train import Trainer


@pytest.mark.parametrize("scale, upsample", [(2, "deconv"), (4, "pixelshuffle")])
def test_brief_training_beats_bicubic_on_the_held_out_images(scale, upsample):
    ds = data.superres_corpus(scale, count=512, patch_size=16)
    model = models.fsrcnn(scale, upsample, channels=(16, 8), mapping=1, rng=0)
    before = models.evaluate("superres", models.predict_images(model, ds.val.x), ds.val)
    bicubic = models.baseline("superres", ds)["bicubic"]
    assert before["psnr"] == pytest.approx(bicubic["psnr"], abs=1e-4)    # starts as bicubic
    trainer = Trainer(model, models.fsrcnn_loss(), optim.Adam(model.parameters(), lr=2e-3),
                      batch_size=16, epochs=4, seed=0, progress="none")
    x_val, y_val = recipes.monitor_crops(ds.val)
    history = trainer.fit(ds.train.x, ds.train.y, x_val, y_val)
    after = models.evaluate("superres", models.predict_images(model, ds.val.x), ds.val)
    assert history["val_metric"][-1] < history["val_metric"][0]
    assert after["psnr"] > bicubic["psnr"], (before, after)


def test_monitor_crops_are_aligned_centre_crops():
    lows = (np.arange(100.0).reshape(1, 10, 10), np.arange(60.0).reshape(1, 6, 10))
    highs = tuple(np.repeat(np.repeat(lo, 2, axis=1), 2, axis=2) for lo in lows)
    x, y = recipes.monitor_crops(data.Split(lows, highs), size=4)
    assert x.shape == (2, 1, 4, 4) and y.shape == (2, 1, 8, 8)
    np.testing.assert_array_equal(x[0], lows[0][:, 3:7, 3:7])
    np.testing.assert_array_equal(x[1], lows[1][:, 1:5, 3:7])
    np.testing.assert_array_equal(y[1], highs[1][:, 2:10, 6:14])
    x, _ = recipes.monitor_crops(data.Split(lows, highs), size=48)   # capped by the smallest
    assert x.shape == (2, 1, 6, 6)


def test_quick_run_reports_baselines_per_image_and_draws_the_figure(tmp_path):
    out = io.StringIO()
    result = recipes.run("superres", quick=True, epochs=1, out=str(tmp_path), progress="none",
                         stream=out)
    text = out.getvalue()
    for word in ("nearest", "bilinear", "bicubic", "astronaut", "coffee", "chelsea", "camera"):
        assert word in text
    assert set(result["baselines"]) == {"nearest", "bilinear", "bicubic"}
    assert len(result["metrics"]["psnr_each"]) == 4
    assert result["settings"]["quick"] and result["settings"]["epochs"] == 1
    run_dir = tmp_path / "superres-quick-epochs1"
    assert result["figure"] == str(run_dir / "samples.png")
    with open(run_dir / "samples.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert os.path.exists(run_dir / "checkpoint.npz")
    assert len(result["history"]["epoch"]) == 1
    # the cosine schedule spans the run: resuming into a longer one is refused before training
    with pytest.raises(recipes.SettingsError, match="schedule over 64 steps, and 2 epochs make 128"):
        recipes.run("superres", quick=True, epochs=2, out=str(tmp_path / "b"), progress="none",
                    stream=io.StringIO(), resume=str(run_dir))


def test_quick_settings(monkeypatch):
    # every family has a quick variant now; a recipe without one refuses --quick
    assert all(r.quick for r in recipes.RECIPES.values())
    monkeypatch.setitem(recipes.RECIPES, "skip",
                        dataclasses.replace(recipes.RECIPES["skip"], quick=None))
    quick = recipes.resolve_settings("superres", quick=True)
    full = recipes.resolve_settings("superres")
    assert quick["epochs"] < full["epochs"] and not full["quick"]
    assert recipes.run_name(quick) == "superres-quick"
    assert recipes.run_name(recipes.resolve_settings("superres", quick=True, epochs=2)) == \
        "superres-quick-epochs2"
    with pytest.raises(recipes.SettingsError,
                       match=r"--quick\) applies to .*only, not to skip"):
        recipes.resolve_settings("skip", quick=True)


def test_command_line_quick_is_refused_where_it_does_not_apply(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(recipes.RECIPES, "skip",
                        dataclasses.replace(recipes.RECIPES["skip"], quick=None))
    with pytest.raises(SystemExit) as err:
        main(["train", "skip", "--quick", "--out", str(tmp_path)])
    assert err.value.code == 2
    assert "--quick" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
