"""The models suite of ``deconv bench``: a training step of each family of ``deconv train``.

Each row's deconv network must be the family's own (the builder ``deconv train``
calls, its defaults, the recipe's batch size); its check version must match the
float64 reference built from the network's layer list; the reference itself is
checked against float64 central differences; the PyTorch twin, where torch is
installed, must hold the same parameter shapes in the same order and compute the
same step. No timing is asserted.
"""

import json

import numpy as np
import pytest

from deconv import bench, models, nn
from deconv.bench import blocks, networks, peers
from deconv.bench import cases as C
from deconv.bench.runner import select_cases
from deconv.models import generator as gan
from deconv.models import recipes
from test_bench import assert_tiny_run_times_training_steps

FULL = {c["op"]: c for c in C.model_cases()}
TINY = C.model_cases(tiny=True)


def _param_shapes(case):
    return [case["shapes"][f"p{i}"] for i in range(len(case["shapes"]) - 2)]


def _family_network(family):
    """The network ``deconv train FAMILY`` trains, built the way the recipe builds it."""
    if family == "generator":
        s = gan.DEFAULTS
        return nn.Sequential(gan.generator(s.latent, s.channels, s.image_size, rng=0),
                             gan.discriminator(s.channels, s.image_size, rng=0))
    recipe = recipes.RECIPES[family]
    return recipe.build(rng=0, **recipe.options)


def test_every_family_of_deconv_train_has_one_row():
    assert set(blocks.FAMILY_ROWS.values()) == set(models.FAMILIES) | {"generator"}
    assert list(FULL) == list(blocks.FAMILY_ROWS)
    assert [c["op"] for c in TINY] == list(blocks.FAMILY_ROWS)
    for case in list(FULL.values()) + TINY:
        assert case["family"] == "train" and case["suite"] == "models" and case["network"]


@pytest.mark.parametrize("op", list(blocks.FAMILY_ROWS))
def test_row_is_the_network_the_family_trains_at_its_batch_size(op):
    family, case = blocks.FAMILY_ROWS[op], FULL[op]
    net = _family_network(family)
    assert _param_shapes(case) == [p.shape for p in net.parameters()]
    batch = gan.DEFAULTS.batch_size if family == "generator" else \
        recipes.RECIPES[family].batch_size
    assert case["shapes"]["x"][0] == case["shapes"]["t"][0] == batch
    # the target has the shape of what the network makes from x
    x = np.zeros((2,) + case["shapes"]["x"][1:],
                 dtype=np.int64 if case["geometry"]["x_vocab"] else np.float32)
    net.eval()
    assert net(x).shape[1:] == case["shapes"]["t"][1:]


def test_rows_shapes_of_the_families():
    assert FULL["skip_step"]["shapes"]["x"] == (16, 1, 48, 48)
    assert FULL["text_step"]["shapes"]["x"] == (32, 64)
    assert FULL["text_step"]["shapes"]["t"] == (32, 97, 64)
    assert FULL["classifier_step"]["shapes"]["t"] == (64, 10)
    assert FULL["autoencoder_step"]["shapes"]["x"] == (32, 3, 32, 32)
    assert FULL["fsrcnn_step"]["shapes"]["t"] == (32, 1, 48, 48)
    assert FULL["generator_step"]["shapes"]["x"] == (64, 64, 1, 1)
    assert FULL["generator_step"]["shapes"]["t"] == (64, 1)


def test_text_row_feeds_indices():
    small = C.check_version(FULL["text_step"])
    a = C.make_inputs(small, "check")
    assert a["x"].dtype == np.int64 and 0 <= a["x"].min() and a["x"].max() < 97


@pytest.mark.parametrize("op", list(blocks.FAMILY_ROWS))
def test_layer_list_holds_the_module_parameters_in_order(op):
    # the deconv/reference part, which runs without torch
    for case in (FULL[op], C.check_version(FULL[op])):
        model = blocks.TRAIN_BLOCKS[op].deconv(case["geometry"], np.float32)
        shapes = [p.shape for p in model.parameters()]
        assert shapes == _param_shapes(case)
        assert [tuple(s) for s in networks.parameter_shapes(case["geometry"]["layers"])] == shapes


@pytest.mark.parametrize("op", list(blocks.FAMILY_ROWS))
def test_torch_twin_has_the_parameter_shapes_in_order(op):
    for case in (FULL[op], C.check_version(FULL[op])):
        assert [tuple(s) for s in networks.parameter_shapes(case["geometry"]["layers"])] == \
            _param_shapes(case)
    torch = pytest.importorskip("torch")
    for case in (FULL[op], C.check_version(FULL[op])):
        twin = blocks.TRAIN_BLOCKS[op].torch(case["geometry"], torch)
        assert [tuple(p.shape) for p in twin.parameters()] == _param_shapes(case)


def _step(impl, case, a):
    fwd, bwd, fwd_names, bwd_names = impl(case, a)
    return dict(zip(fwd_names + bwd_names, tuple(fwd()) + tuple(bwd())))


@pytest.mark.parametrize("case", TINY, ids=lambda c: c["op"])
def test_check_version_of_each_family_row_matches_the_reference(case):
    small = C.check_version(case)
    a = C.make_inputs(small, "check")
    ref = peers.reference_outputs(small, a)
    assert set(ref) == {"y", "loss"} | {f"g{i}" for i in range(len(a) - 2)}
    got = _step(peers.deconv_train_impl, small, a)                       # float64
    assert set(got) == set(ref)
    for k in ref:
        np.testing.assert_allclose(got[k], ref[k], rtol=1e-9, atol=1e-12, err_msg=k)
    a32 = {k: (v.astype(np.float32) if v.dtype.kind == "f" else v) for k, v in a.items()}
    got = _step(peers.deconv_train_impl, small, a32)
    rep = bench.compare_outputs(got, ref, "float32")
    assert all(r["ok"] for r in rep.values()), rep
    assert all(got[k].dtype == np.float32 for k in got if k != "loss")


@pytest.mark.parametrize("case", TINY, ids=lambda c: c["op"])
def test_torch_twin_step_matches_the_reference(case):
    small = C.check_version(case)
    a = C.make_inputs(small, "check")
    ref = peers.reference_outputs(small, a)
    torch = pytest.importorskip("torch")
    ta = {k: torch.from_numpy(v.astype(np.float32) if v.dtype.kind == "f" else v)
          for k, v in a.items()}
    got = {k: v.detach().numpy() for k, v in _step(
        lambda c, arrays: peers.torch_train_impl(c, arrays, torch), small, ta).items()}
    rep = bench.compare_outputs(got, ref, "float32")
    assert all(r["ok"] for r in rep.values()), rep


def _loss_of(case, a, values):
    return peers.reference_outputs(case, dict(a, **values))["loss"][0]


@pytest.mark.parametrize("op", ["classifier_step", "text_step", "generator_step",
                                "fsrcnn_step", "skip_step"])
def test_layer_list_reference_matches_central_differences(op):
    # the oracle itself: every layer kind of the families (upsample, batch norm, max pool,
    # dropout p=0, flatten, linear, embedding, permute, conv1d, transposed convs, PReLU,
    # LeakyReLU, tanh, concat, and the text family's group norm and GELU) against float64 central differences of its own loss
    case = C.train_case("fd", op, **blocks.family_geometry(blocks.FAMILY_ROWS[op], 2, 4))
    a = C.make_inputs(case, "check")
    ref = peers.reference_outputs(case, a)
    rng = np.random.default_rng(1)
    eps = 1e-6
    for i in range(len(a) - 2):
        p = a[f"p{i}"]
        for flat in rng.choice(p.size, size=1):
            plus, minus = p.copy(), p.copy()
            plus.flat[flat] += eps
            minus.flat[flat] -= eps
            numeric = (_loss_of(case, a, {f"p{i}": plus}) -
                       _loss_of(case, a, {f"p{i}": minus})) / (2 * eps)
            assert ref[f"g{i}"].flat[flat] == pytest.approx(numeric, rel=1e-4, abs=1e-8), \
                (i, flat)


def test_describe_names_a_layer_it_cannot_write_down():
    with pytest.raises(networks.UnknownLayer, match="LayerNorm"):
        networks.describe(nn.Sequential(nn.Conv2d(2, 4, 3, rng=0), nn.LayerNorm(4)))
    with pytest.raises(networks.UnknownLayer, match="GroupNorm without its weight and bias"):
        networks.describe(nn.GroupNorm(2, 4, affine=False))
    with pytest.raises(networks.UnknownLayer, match="approximate='tanh'"):
        networks.describe(nn.GELU(approximate="tanh"))
    with pytest.raises(networks.UnknownLayer, match="padding='same'"):
        networks.describe(nn.Conv2d(2, 4, 3, padding="same", rng=0))


def test_layer_list_is_json():
    for case in FULL.values():
        assert json.loads(json.dumps(case["geometry"]["layers"])) == case["geometry"]["layers"]


def test_models_suite_is_selected_by_name():
    names = [c["name"] for c in select_cases(suite="models", size="tiny")]
    assert names == list(blocks.FAMILY_ROWS)
    every = [c["name"] for c in select_cases(suite="all", size="tiny")]
    assert set(names) < set(every) and "conv2d" in every
    assert not set(names) & {c["name"] for c in select_cases(size="tiny")}


def test_tiny_run_of_the_models_suite(tmp_path):
    # end to end through the workers: int64 indices (text), D(G(z)) (generator)
    assert_tiny_run_times_training_steps(tmp_path, ["text_step", "generator_step"],
                                         peers=("torch",), suite="models")
