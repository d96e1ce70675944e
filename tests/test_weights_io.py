"""Weights in and out (deconv.nn.save_weights / load_weights), .npz and .safetensors.

Files PyTorch wrote (tests/make_weights_fixtures.py: a ConvTranspose2d ->
BatchNorm2d -> ReLU -> Conv2d network after two training steps) load into
the deconv twin and give PyTorch's eval-mode output; files deconv writes
carry exactly PyTorch's keys, shapes and dtypes (the listing PyTorch's
``load_state_dict(strict=True)`` checks), in both formats.
"""

import json
import os

import numpy as np
import pytest

from deconv import nn
from tolerances import assert_close

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
FORMATS = [".npz", ".safetensors"]


def _listing(state):
    return [[k, list(np.shape(v)), str(np.asarray(v).dtype)] for k, v in state.items()]


def _torch_listing():
    with open(os.path.join(DATA, "torch_weights_listing.json")) as f:
        return json.load(f)


def _twin():
    """The deconv twin of the fixture's torch network."""
    return nn.Sequential(
        nn.ConvTranspose2d(4, 3, 4, stride=2, padding=1, bias=False, rng=0),
        nn.BatchNorm2d(3),
        nn.ReLU(),
        nn.Conv2d(3, 2, 3, padding=1, rng=1),
    )


@pytest.mark.parametrize("suffix", FORMATS)
def test_files_pytorch_wrote_read_as_its_state_dict(suffix):
    state = nn.load_weights(os.path.join(DATA, "torch_weights" + suffix))
    assert sorted(_listing(state)) == sorted(_torch_listing())


@pytest.mark.parametrize("suffix", FORMATS)
def test_a_pytorch_file_loads_into_the_twin_and_gives_its_output(suffix):
    model = _twin()
    result = model.load_state_dict(nn.load_weights(os.path.join(DATA, "torch_weights" + suffix)))
    assert result == ([], [])
    model.eval()
    io = np.load(os.path.join(DATA, "torch_weights_io.npz"))
    y = model(io["x"])
    assert y.dtype == np.float32
    assert_close(y, io["y"], np.float32, scale=10)


@pytest.mark.parametrize("suffix", FORMATS)
def test_deconv_files_carry_pytorchs_keys_shapes_and_dtypes(tmp_path, suffix):
    model = _twin()
    model(np.ones((2, 4, 3, 3), np.float32))       # a training forward moves the statistics
    path = nn.save_weights(model, tmp_path / ("w" + suffix))
    listing = _listing(nn.load_weights(path))
    # .npz keeps the state_dict's order; safetensors stores its keys sorted
    assert (listing if suffix == ".npz" else sorted(listing)) == \
        (_torch_listing() if suffix == ".npz" else sorted(_torch_listing()))


@pytest.mark.parametrize("suffix", FORMATS)
def test_round_trip_is_exact_in_both_dtypes(tmp_path, suffix):
    for dtype in (np.float32, np.float64):
        a = nn.Sequential(nn.Conv2d(2, 3, 3, rng=0, dtype=dtype), nn.BatchNorm2d(3).to(dtype),
                          nn.Linear(4, 2, rng=1, dtype=dtype))
        a(np.random.default_rng(0).standard_normal((3, 2, 6, 6)).astype(dtype))
        path = nn.save_weights(a.state_dict(), tmp_path / (f"{np.dtype(dtype).name}" + suffix))
        loaded = nn.load_weights(path)
        for key, value in a.state_dict().items():
            assert loaded[key].dtype == value.dtype and loaded[key].shape == value.shape, key
            np.testing.assert_array_equal(loaded[key], value)


def test_bad_paths_and_weights_are_refused_naming_them(tmp_path):
    model = nn.Linear(2, 2, rng=0)
    with pytest.raises(ValueError, match=r"path must end in .npz or .safetensors"):
        nn.save_weights(model, tmp_path / "w.pt")
    with pytest.raises(TypeError, match=r"path must be a str or os.PathLike, got int"):
        nn.load_weights(3)
    with pytest.raises(TypeError, match=r"weights must be a deconv.nn.Module or a mapping"):
        nn.save_weights([np.ones(2)], tmp_path / "w.npz")
    with pytest.raises(TypeError, match=r"weights\['a'\] must be a real array, got dtype complex"):
        nn.save_weights({"a": np.ones(2) * 1j}, tmp_path / "w.npz")
    with pytest.raises(TypeError, match=r"weights keys must be str"):
        nn.save_weights({1: np.ones(2)}, tmp_path / "w.safetensors")
