"""deconv.reference must agree with recorded PyTorch outputs and gradients.

The fixture ``tests/data/torch_cases.npz`` is produced by
``tests/make_torch_fixtures.py`` (needs torch); this test does not need torch.
"""

import json
import os

import numpy as np
import pytest

from deconv import reference as ref

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "torch_cases.npz")
RTOL, ATOL = 1e-10, 1e-12


def _load():
    with np.load(DATA, allow_pickle=False) as z:
        keys = sorted({k.split("/")[0] for k in z.files if k != "meta"})
        cases = []
        for key in keys:
            config = json.loads(str(z[f"{key}/config"]))
            arrays = {name: z[f"{key}/{name}"] for name in config["arrays"]}
            cases.append((key, config, arrays))
    return cases


CASES = _load()


def _tup(v):
    return tuple(v) if isinstance(v, list) else v


def run_reference(op, kw, a):
    """Return a dict with the reference's out / out_indices / grad_* arrays."""
    kw = {k: _tup(v) for k, v in kw.items()}
    x, go = a["x"], a["grad_output"]
    res = {}
    if op.startswith("conv"):
        fwd = getattr(ref, op)
        bwd = getattr(ref, op + "_backward")
        res["out"] = fwd(x, a["weight"], a.get("bias"), **kw)
        gx, gw, gb = bwd(go, x, a["weight"], **kw)
        res.update(grad_x=gx, grad_weight=gw, grad_bias=gb)
    elif op.startswith("max_pool"):
        out, idx = getattr(ref, op)(x, **kw)
        res.update(out=out, out_indices=idx)
        res["grad_x"] = getattr(ref, op + "_backward")(go, idx, x.shape)
    elif op.startswith("avg_pool"):
        res["out"] = getattr(ref, op)(x, **kw)
        res["grad_x"] = getattr(ref, op + "_backward")(go, x.shape, **kw)
    elif op.startswith("max_unpool"):
        res["out"] = getattr(ref, op)(x, a["indices"], **kw)
        res["grad_x"] = getattr(ref, op + "_backward")(go, a["indices"])
    elif op.startswith("upsample_nearest"):
        res["out"] = getattr(ref, op)(x, **kw)
        res["grad_x"] = getattr(ref, op + "_backward")(go, x.shape,
                                                       scale_factor=kw.get("scale_factor"))
    elif op == "upsample_bilinear2d":
        res["out"] = ref.upsample_bilinear2d(x, **kw)
        res["grad_x"] = ref.upsample_bilinear2d_backward(
            go, x.shape, align_corners=kw["align_corners"], scale_factor=kw.get("scale_factor"))
    elif op in ("pixel_shuffle", "pixel_unshuffle"):
        (r,) = kw.values()
        res["out"] = getattr(ref, op)(x, r)
        res["grad_x"] = getattr(ref, op + "_backward")(go, r)
    else:
        raise ValueError(op)
    return res


def test_fixture_is_complete():
    ops = {c["op"] for _, c, _ in CASES}
    expected = {
        "conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d",
        "max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d",
        "max_unpool1d", "max_unpool2d", "upsample_nearest1d", "upsample_nearest2d",
        "upsample_bilinear2d", "pixel_shuffle", "pixel_unshuffle",
    }
    assert ops == expected
    assert len(CASES) >= 60


def _torch_nearest1d_forward_skips_shortcut(config, arrays):
    """PyTorch's 1-D nearest *forward* skips ATen's out == in / out == 2*in shortcuts that its
    backward (and its 2-D forward) use; deconv uses them everywhere (README, Semantics)."""
    if config["op"] != "upsample_nearest1d" or "scale_factor" not in config["kwargs"]:
        return False
    L_in, L_out = arrays["x"].shape[-1], arrays["out"].shape[-1]
    return L_out in (L_in, 2 * L_in) and float(config["kwargs"]["scale_factor"]) not in (1.0, 2.0)


def test_documented_nearest1d_deviation_is_real():
    """The fixture holds the corner cases, torch's forward really differs there, and ours is
    the shortcut map (a copy, or every input twice)."""
    corner = [(c, a) for _, c, a in CASES if _torch_nearest1d_forward_skips_shortcut(c, a)]
    assert len(corner) >= 2
    for config, arrays in corner:
        ours = ref.upsample_nearest1d(arrays["x"], **{k: _tup(v) for k, v in config["kwargs"].items()})
        L_in, L_out = arrays["x"].shape[-1], ours.shape[-1]
        np.testing.assert_array_equal(ours, arrays["x"][..., np.arange(L_out) * L_in // L_out])
        assert not np.array_equal(ours, arrays["out"])


def _overwritten_duplicates(config, arrays):
    """Mask of unpool inputs whose target index repeats later in the plane (or None).

    The forward keeps the last of them; deconv gives the others no gradient (the exact
    derivative), torch's backward gathers for all of them (README, Semantics)."""
    if not config["op"].startswith("max_unpool"):
        return None
    idx = arrays["indices"]
    flat = idx.reshape(idx.shape[0] * idx.shape[1], -1)
    mask = np.zeros(flat.shape, bool)
    for plane, row in enumerate(flat):
        seen = set()
        for m in range(row.size - 1, -1, -1):
            mask[plane, m] = row[m] in seen
            seen.add(row[m])
    return mask.reshape(idx.shape) if mask.any() else None


def test_documented_unpool_duplicate_deviation_is_real():
    corner = [(c, a) for _, c, a in CASES if _overwritten_duplicates(c, a) is not None]
    assert len(corner) >= 2
    for config, arrays in corner:
        mask = _overwritten_duplicates(config, arrays)
        got = run_reference(config["op"], config["kwargs"], arrays)["grad_x"]
        assert np.all(got[mask] == 0) and np.any(arrays["grad_x"][mask] != 0)
        np.testing.assert_allclose(got[~mask], arrays["grad_x"][~mask], rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("key,config,arrays", CASES, ids=[f"{k}-{c['op']}" for k, c, _ in CASES])
def test_reference_matches_torch(key, config, arrays):
    x_before = arrays["x"].copy()
    got = run_reference(config["op"], config["kwargs"], arrays)
    np.testing.assert_array_equal(arrays["x"], x_before)  # inputs are not mutated
    expected_names = [n for n in ("out", "out_indices", "grad_x", "grad_weight", "grad_bias")
                      if n in arrays]
    if _torch_nearest1d_forward_skips_shortcut(config, arrays):
        expected_names.remove("out")    # see test_documented_nearest1d_deviation_is_real
    if _overwritten_duplicates(config, arrays) is not None:
        expected_names.remove("grad_x")  # see test_documented_unpool_duplicate_deviation_is_real
    for name in expected_names:
        want, have = arrays[name], np.asarray(got[name])
        assert have.shape == want.shape, (name, have.shape, want.shape)
        if name == "out_indices":
            assert have.dtype == np.int64
            np.testing.assert_array_equal(have, want, err_msg=name)
        else:
            assert have.dtype == np.float64, (name, have.dtype)
            np.testing.assert_allclose(have, want, rtol=RTOL, atol=ATOL, err_msg=name)
