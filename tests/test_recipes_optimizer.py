"""A recipe's optimizer and weight decay (``deconv train --optimizer adamw --weight-decay``):
the recipe's defaults, the decay belonging to the recipe's optimizer only, the optimizer
built as asked, refusals before any work, and folder names that tell the settings apart."""

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deconv import nn, optim
from deconv.cli import main
from deconv.models import recipes


def _refused(argv, capsys):
    with pytest.raises(SystemExit) as err:
        main(argv)
    assert err.value.code == 2
    return capsys.readouterr().err


def test_each_recipe_names_one_of_the_optimizers_and_a_decay_of_at_least_zero():
    for name, recipe in recipes.RECIPES.items():
        assert recipe.optimizer in recipes.OPTIMIZERS, name
        assert recipe.weight_decay >= 0, name
        settings = recipes.resolve_settings(name)
        assert settings["optimizer"] == recipe.optimizer
        assert settings["weight_decay"] == recipe.weight_decay


@pytest.fixture
def decayed(monkeypatch):
    """The classifier's recipe with AdamW and a weight decay of 0.05 (whatever it holds)."""
    recipe = dataclasses.replace(recipes.RECIPES["classifier"], optimizer="adamw",
                                 weight_decay=0.05)
    monkeypatch.setitem(recipes.RECIPES, "classifier", recipe)
    return recipe


def test_the_recipes_decay_goes_with_its_optimizer_only(decayed):
    assert recipes.resolve_settings("classifier")["optimizer"] == "adamw"
    assert recipes.resolve_settings("classifier")["weight_decay"] == 0.05
    assert recipes.resolve_settings("classifier", optimizer="adamw")["weight_decay"] == 0.05
    for other in ("adam", "sgd"):
        assert recipes.resolve_settings("classifier", optimizer=other)["weight_decay"] == 0.0
    asked = recipes.resolve_settings("classifier", optimizer="sgd", momentum=0.9,
                                     weight_decay=1e-4)
    assert asked["weight_decay"] == 1e-4 and asked["momentum"] == 0.9
    assert recipes.resolve_settings("skip")["optimizer"] == "adam"
    assert recipes.resolve_settings("skip", weight_decay=0.5)["weight_decay"] == 0.5


@pytest.mark.parametrize("name, kind", [("adam", optim.Adam), ("adamw", optim.AdamW),
                                        ("sgd", optim.SGD)])
def test_the_optimizer_is_built_with_the_settings(name, kind):
    settings = recipes.resolve_settings("classifier", optimizer=name, lr=0.01,
                                        weight_decay=0.25)
    opt = recipes._optimizer(settings, nn.Linear(3, 2, rng=0).parameters())
    assert type(opt) is kind
    held = opt.hyperparameters()
    assert held["lr"] == 0.01 and held["weight_decay"] == 0.25


@pytest.mark.parametrize("argv, words", [
    (["classifier", "--weight-decay", "-0.1"], ["--weight-decay", ">= 0", "got -0.1"]),
    (["skip", "--weight-decay", "inf"], ["--weight-decay", "finite"]),
    (["classifier", "--optimizer", "adamw", "--momentum", "0.9"], ["--momentum", "adamw"]),
    (["generator", "--weight-decay", "0.01"], ["--weight-decay", "generator"]),
])
def test_bad_or_inapplicable_decay_and_momentum_are_refused(argv, words, tmp_path, capsys):
    message = _refused(["train", *argv, "--out", str(tmp_path)], capsys)
    for word in words:
        assert word in message, (word, message)
    assert not any(tmp_path.iterdir())


def test_the_command_line_offers_every_optimizer(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    usage = capsys.readouterr().out
    assert "{" + ",".join(recipes.OPTIMIZERS) + "}" in usage
    assert "--weight-decay" in usage


def test_folder_names_say_the_optimizer_and_a_decay_that_is_not_the_default(decayed):
    def name(**kw):
        return recipes.run_name(recipes.resolve_settings(**kw))
    assert name(name="classifier") == "classifier"
    assert name(name="classifier", optimizer="adamw", weight_decay=0.05) == "classifier"
    assert name(name="classifier", optimizer="adam") == "classifier-adam"
    assert name(name="classifier", weight_decay=0.0) == "classifier-wd0.0"
    assert name(name="skip", optimizer="adamw", weight_decay=0.01) == "skip-adamw-wd0.01"
    assert name(name="skip", optimizer="sgd", momentum=0.9, weight_decay=1e-4) == \
        "skip-sgd-momentum0.9-wd0.0001"


@st.composite
def settings(draw):
    """Settings of any family that differ in optimizer, momentum and decay, drawn valid."""
    name = draw(st.sampled_from(list(recipes.RECIPES)))
    kw = {"optimizer": draw(st.sampled_from(recipes.OPTIMIZERS))}
    if kw["optimizer"] == "sgd":
        kw["momentum"] = draw(st.sampled_from([0.0, 0.9]))
    kw["weight_decay"] = draw(st.sampled_from(
        [None, 0.0, 1e-4, 0.05, recipes.RECIPES[name].weight_decay]))
    kw["seed"] = draw(st.integers(0, 3))
    return recipes.resolve_settings(name, **kw)


@given(settings(), settings())
def test_different_optimizer_settings_never_share_a_folder(a, b):
    assert (recipes.run_name(a) == recipes.run_name(b)) == (a == b)
