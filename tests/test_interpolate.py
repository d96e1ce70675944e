"""interpolate / interpolate_backward in every mode: against the NumPy reference (itself
checked against outputs recorded from PyTorch), adjoint identities, float64 central
differences, the ops it delegates to, nn.Upsample, determinism across thread counts and
argument errors."""

import json
import math
import os

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import deconv
from deconv import nn, reference
from deconv.gradcheck import numerical_gradient
from determinism import run_hashes
from tolerances import FINITE_DIFFERENCE as FD
from tolerances import assert_close

DTYPES = [np.float32, np.float64]
MODES = ["nearest", "nearest-exact", "linear", "bilinear", "bicubic", "trilinear", "area"]
RANK = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}
SCALES = [0.3, 0.5, 0.6, 1.0, 1.1, 1.5, 1.7, 2.0, 2.5, 3.0]


# ---------------------------------------------------------------------------
# strategies: every drawn configuration is valid by construction
# ---------------------------------------------------------------------------

@st.composite
def interp_configs(draw, modes=tuple(MODES), antialias=None):
    """A mode with an input rank it takes, a size or scale factors giving outputs >= 1,
    and the options that mode allows."""
    mode = draw(st.sampled_from(modes))
    nd = RANK.get(mode) or draw(st.integers(1, 3))
    spatial = tuple(draw(st.integers(1, 7)) for _ in range(nd))
    kw = dict(mode=mode)
    if draw(st.booleans()):
        kw["size"] = tuple(draw(st.integers(1, 9)) for _ in range(nd))
        if nd > 0 and draw(st.booleans()) and len(set(kw["size"])) == 1:
            kw["size"] = kw["size"][0]
    else:
        # only factors that leave at least one output along the axis
        kw["scale_factor"] = tuple(draw(st.sampled_from([s for s in SCALES if math.floor(L * s)]))
                                   for L in spatial)
        if draw(st.booleans()):
            kw["recompute_scale_factor"] = draw(st.booleans())
    if mode in RANK:
        kw["align_corners"] = draw(st.booleans())
    if mode in ("bilinear", "bicubic"):
        kw["antialias"] = draw(st.booleans()) if antialias is None else antialias
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3))) + spatial
    return dict(shape=shape, kw=kw, dtype=draw(st.sampled_from(DTYPES)),
                seed=draw(st.integers(0, 2**31 - 1)))


def _inputs(cfg):
    rng = np.random.default_rng(cfg["seed"])
    x = rng.standard_normal(cfg["shape"]).astype(cfg["dtype"])
    y = deconv.interpolate(x, **cfg["kw"])
    g = rng.standard_normal(y.shape).astype(cfg["dtype"])
    return x, y, g


# ---------------------------------------------------------------------------
# against the reference
# ---------------------------------------------------------------------------

@given(interp_configs())
def test_forward_and_backward_match_the_reference(cfg):
    x, y, g = _inputs(cfg)
    x_before, g_before = x.copy(), g.copy()
    assert y.dtype == x.dtype
    assert_close(y, reference.interpolate(x, **cfg["kw"]), err_msg=str(cfg["kw"]))
    gi = deconv.interpolate_backward(g, x.shape, **cfg["kw"])
    assert gi.dtype == g.dtype and gi.shape == x.shape
    assert_close(gi, reference.interpolate_backward(g, x.shape, **cfg["kw"]),
                 err_msg=str(cfg["kw"]))
    np.testing.assert_array_equal(x, x_before)          # inputs are never written to
    np.testing.assert_array_equal(g, g_before)


@given(interp_configs(modes=("bilinear", "bicubic"), antialias=True))
def test_antialias_matches_the_reference(cfg):
    x, y, g = _inputs(cfg)
    assert_close(y, reference.interpolate(x, **cfg["kw"]), err_msg=str(cfg["kw"]))
    assert_close(deconv.interpolate_backward(g, x.shape, **cfg["kw"]),
                 reference.interpolate_backward(g, x.shape, **cfg["kw"]), err_msg=str(cfg["kw"]))


def _torch_cases():
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "interp_cases.npz")
    data = np.load(path)
    keys = sorted({k.split("/")[0] for k in data.files})
    cases = []
    for k in keys:
        c = json.loads(str(data[k + "/config"]))
        kw = {n: tuple(v) if isinstance(v, list) else v for n, v in c["kwargs"].items()}
        arrays = {n: data[f"{k}/{n}"] for n in ("x", "grad_output", "out", "grad_x")}
        cases.append(pytest.param(kw, arrays, id=f"{k}-{c['dtype']}-{kw['mode']}"
                                  + ("-aa" if kw.get("antialias") else "")))
    return cases


TORCH_CASES = _torch_cases()


def test_the_recorded_cases_cover_every_mode_and_antialias():
    kws = [p.values[0] for p in TORCH_CASES]
    assert {kw["mode"] for kw in kws} == set(MODES)
    assert {kw["mode"] for kw in kws if kw.get("antialias")} == {"bilinear", "bicubic"}
    assert {p.values[1]["x"].dtype for p in TORCH_CASES} == {np.dtype(np.float32),
                                                             np.dtype(np.float64)}


@pytest.mark.parametrize("kw, a", TORCH_CASES)
def test_deconv_and_the_reference_match_recorded_pytorch_outputs(kw, a):
    x, g = a["x"], a["grad_output"]
    for m in (deconv, reference):
        y = m.interpolate(x, **kw)
        gi = m.interpolate_backward(g, x.shape, **kw)
        assert_close(y, a["out"], dtype=x.dtype, err_msg=f"{m.__name__} {kw}")
        assert_close(gi, a["grad_x"], dtype=x.dtype, err_msg=f"{m.__name__} {kw}")
    assert deconv.interpolate(x, **kw).dtype == x.dtype


# ---------------------------------------------------------------------------
# adjoint and finite differences (float64)
# ---------------------------------------------------------------------------

@given(interp_configs())
def test_backward_is_the_adjoint_of_the_forward(cfg):
    cfg = dict(cfg, dtype=np.float64)
    x, y, r = _inputs(cfg)
    lhs = np.vdot(y, r)
    rhs = np.vdot(x, deconv.interpolate_backward(r, x.shape, **cfg["kw"]))
    assert abs(lhs - rhs) <= 1e-12 * max(1.0, np.abs(y).sum() * np.abs(r).max())


FD_CASES = [
    ((1, 2, 5), dict(mode="linear", scale_factor=1.7)),
    ((1, 1, 3, 4), dict(mode="bicubic", size=(5, 3), align_corners=True)),
    ((1, 1, 7, 6), dict(mode="bicubic", size=(3, 4), antialias=True)),
    ((1, 2, 6, 5), dict(mode="bilinear", scale_factor=0.5, antialias=True)),
    ((1, 1, 2, 3, 4), dict(mode="trilinear", size=(3, 2, 5))),
    ((1, 2, 2, 3, 3), dict(mode="area", size=(1, 2, 2))),
    ((2, 1, 3, 4, 2), dict(mode="nearest", scale_factor=(2.0, 0.5, 1.5))),
    ((1, 2, 5, 4), dict(mode="nearest-exact", size=(3, 7))),
]


@pytest.mark.parametrize("shape, kw", FD_CASES, ids=[kw["mode"] for _, kw in FD_CASES])
def test_backward_matches_float64_central_differences(shape, kw):
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape)
    r = rng.standard_normal(deconv.interpolate(x, **kw).shape)
    num = numerical_gradient(lambda: np.vdot(deconv.interpolate(x, **kw), r), x, eps=FD["eps"])
    np.testing.assert_allclose(deconv.interpolate_backward(r, x.shape, **kw), num,
                               rtol=FD["rtol"], atol=FD["atol"])


# ---------------------------------------------------------------------------
# what it delegates to, and properties of the maps
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("dt", DTYPES)
def test_nearest_bilinear_and_area_are_the_existing_ops(dt):
    rng = np.random.default_rng(0)
    x1 = rng.standard_normal((2, 3, 5)).astype(dt)
    x2 = rng.standard_normal((2, 3, 5, 4)).astype(dt)
    x3 = rng.standard_normal((1, 2, 5, 4, 3)).astype(dt)
    np.testing.assert_array_equal(deconv.interpolate(x1, scale_factor=1.7),
                                  deconv.upsample_nearest1d(x1, scale_factor=1.7))
    np.testing.assert_array_equal(deconv.interpolate(x2, size=(7, 3)),
                                  deconv.upsample_nearest2d(x2, size=(7, 3)))
    np.testing.assert_array_equal(
        deconv.interpolate(x2, scale_factor=2.5, mode="bilinear", align_corners=True),
        deconv.upsample_bilinear2d(x2, scale_factor=2.5, align_corners=True))
    np.testing.assert_array_equal(deconv.interpolate(x3, size=(2, 3, 2), mode="area"),
                                  deconv.adaptive_avg_pool3d(x3, (2, 3, 2)))
    # area always recomputes: a scale factor only sets the size
    np.testing.assert_array_equal(deconv.interpolate(x1, scale_factor=0.5, mode="area"),
                                  deconv.adaptive_avg_pool1d(x1, 2))


def test_recompute_scale_factor_uses_the_sizes_ratio():
    x = np.arange(5.0)[None, None]
    given = deconv.interpolate(x, scale_factor=1.7, mode="linear")
    recomputed = deconv.interpolate(x, scale_factor=1.7, mode="linear", recompute_scale_factor=True)
    np.testing.assert_array_equal(recomputed, deconv.interpolate(x, size=8, mode="linear"))
    assert not np.array_equal(given, recomputed)
    # False is the same as unset
    np.testing.assert_array_equal(
        given, deconv.interpolate(x, scale_factor=1.7, mode="linear", recompute_scale_factor=False))


def test_nearest_exact_rounds_to_the_closest_centre():
    x = np.arange(4.0)[None, None]
    np.testing.assert_array_equal(deconv.interpolate(x, size=2, mode="nearest-exact")[0, 0], [1, 3])
    np.testing.assert_array_equal(deconv.interpolate(x, size=2, mode="nearest")[0, 0], [0, 2])
    np.testing.assert_array_equal(deconv.interpolate(x, size=8, mode="nearest-exact")[0, 0],
                                  [0, 0, 1, 1, 2, 2, 3, 3])


@pytest.mark.parametrize("kw", [dict(mode="bicubic", size=(7, 2)),
                                dict(mode="bicubic", size=(3, 9), antialias=True),
                                dict(mode="bilinear", size=(2, 3), antialias=True),
                                dict(mode="bicubic", scale_factor=1.5, align_corners=True)])
def test_weights_sum_to_one_so_constants_stay(kw):
    x = np.full((1, 1, 6, 5), 2.5)
    np.testing.assert_allclose(deconv.interpolate(x, **kw), 2.5, rtol=1e-14)


def test_bicubic_uses_a_minus_075_with_clamped_borders():
    x = np.zeros((1, 1, 1, 4))
    x[..., 2] = 1.0
    # align_corners with 7 outputs: output 3 sits at 1.5, t = 0.5 between inputs 1 and 2
    y = deconv.interpolate(x, size=(1, 7), mode="bicubic", align_corners=True)[0, 0, 0]
    a, t = -0.75, 0.5
    near = (a + 2) * t ** 3 - (a + 3) * t ** 2 + 1
    assert y[3] == pytest.approx(near)
    # output 0 sits at input 0: taps -1 (clamped to 0), 0, 1, 2 with weights for t = 0
    assert y[0] == pytest.approx(0.0)
    assert y[6] == pytest.approx(0.0)


def test_antialias_leaves_an_axis_of_unchanged_size_alone():
    x = np.random.default_rng(1).standard_normal((1, 2, 6, 5))
    # rows that are all the same: shrinking H averages equal rows, W must stay as it is
    rows = np.broadcast_to(x[:, :, :1], x.shape)
    y = deconv.interpolate(rows, size=(3, 5), mode="bicubic", antialias=True)
    np.testing.assert_allclose(y, np.broadcast_to(x[:, :, :1], y.shape), rtol=1e-14, atol=1e-15)
    # a 1.1 factor keeps the size 5 and copies that axis, forward and backward
    z = deconv.interpolate(x, scale_factor=(0.5, 1.1), mode="bilinear", antialias=True)
    np.testing.assert_array_equal(z, deconv.interpolate(x, size=(3, 5), mode="bilinear",
                                                        antialias=True))
    g = np.ones_like(z)
    gi = deconv.interpolate_backward(g, x.shape, scale_factor=(0.5, 1.1), mode="bilinear",
                                     antialias=True)
    np.testing.assert_allclose(gi.sum(axis=2), np.ones((1, 2, 5)) * 3, rtol=1e-14)


def test_antialias_differs_from_plain_bilinear_when_shrinking():
    x = np.random.default_rng(2).standard_normal((1, 1, 12, 12))
    plain = deconv.interpolate(x, size=(3, 3), mode="bilinear")
    smooth = deconv.interpolate(x, size=(3, 3), mode="bilinear", antialias=True)
    assert not np.allclose(plain, smooth)
    # each antialiased output averages a 4x4-pixel-wide triangle: its weights cover 8 inputs
    e = np.zeros((1, 1, 12, 12))
    e[0, 0, 4, 4] = 1.0
    assert deconv.interpolate(e, size=(3, 3), mode="bilinear", antialias=True)[0, 0, 1, 1] > 0


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("mode", MODES)
def test_empty_batch(mode, dt):
    nd = RANK.get(mode, 3)
    x = np.zeros((0, 2) + (3,) * nd, dt)
    y = deconv.interpolate(x, size=5, mode=mode)
    assert y.shape == (0, 2) + (5,) * nd and y.dtype == dt
    gi = deconv.interpolate_backward(y, x.shape, size=5, mode=mode)
    assert gi.shape == x.shape and gi.dtype == dt


def test_any_memory_layout_gives_the_contiguous_result():
    x = np.random.default_rng(4).standard_normal((2, 3, 6, 5))
    for kw in (dict(mode="bicubic", size=(4, 7)), dict(mode="nearest-exact", scale_factor=1.5)):
        want = deconv.interpolate(x, **kw)
        for a in (np.asfortranarray(x), x[..., ::-1].copy()[..., ::-1], x.astype(">f8")):
            np.testing.assert_array_equal(deconv.interpolate(a, **kw), want)
        ro = x.copy()
        ro.flags.writeable = False
        np.testing.assert_array_equal(deconv.interpolate(ro, **kw), want)


# ---------------------------------------------------------------------------
# nn.Upsample in every mode
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("kw, shape", [
    (dict(scale_factor=2, mode="nearest-exact"), (1, 2, 3, 4, 2)),
    (dict(size=7, mode="linear", align_corners=True), (2, 1, 4)),
    (dict(size=(5, 3), mode="bicubic"), (1, 2, 4, 4)),
    (dict(scale_factor=(1.5, 2, 0.5), mode="trilinear"), (1, 1, 2, 3, 4)),
    (dict(size=(2, 3), mode="area"), (1, 3, 5, 7)),
    (dict(scale_factor=1.7, mode="linear", recompute_scale_factor=True), (1, 2, 5)),
    (dict(size=(2, 3, 2)), (1, 1, 3, 4, 5)),
])
def test_upsample_layer_is_interpolate(kw, shape):
    rng = np.random.default_rng(5)
    x = rng.standard_normal(shape)
    layer = nn.Upsample(**kw)
    y = layer(x)
    np.testing.assert_array_equal(y, deconv.interpolate(x, **kw))
    g = rng.standard_normal(y.shape)
    np.testing.assert_array_equal(layer.backward(g), deconv.interpolate_backward(g, shape, **kw))
    assert f"mode={kw.get('mode', 'nearest')!r}" in repr(layer)


def test_upsample_layer_errors_name_it_and_the_argument():
    with pytest.raises(ValueError, match=r"^Upsample: mode must be one of"):
        nn.Upsample(scale_factor=2, mode="cubic")
    with pytest.raises(ValueError, match=r"^Upsample: align_corners can only be set"):
        nn.Upsample(scale_factor=2, mode="area", align_corners=True)
    with pytest.raises(ValueError, match=r"^Upsample: recompute_scale_factor=True is not"):
        nn.Upsample(size=3, mode="linear", recompute_scale_factor=True)
    with pytest.raises(ValueError, match=r"^Upsample\(size=4, mode='trilinear'\): mode='trilinear'"
                                         r" needs a 5-D x"):
        nn.Upsample(size=4, mode="trilinear")(np.zeros((1, 1, 2, 2)))
    # False with nearest is taken for None, as deconv's Upsample always did
    assert nn.Upsample(scale_factor=2, align_corners=False).align_corners is None


# ---------------------------------------------------------------------------
# determinism
# ---------------------------------------------------------------------------

_DETERMINISM_SCRIPT = r"""
import hashlib, json
import numpy as np
import deconv
rng = np.random.default_rng(0)
outs = []
for dt in (np.float32, np.float64):
    x = rng.standard_normal((3, 5, 17, 13)).astype(dt)
    x3 = rng.standard_normal((2, 3, 6, 7, 5)).astype(dt)
    for xx, kw in ((x, dict(mode="bicubic", size=(31, 9))),
                   (x, dict(mode="bilinear", size=(5, 6), antialias=True)),
                   (x, dict(mode="bicubic", scale_factor=(0.4, 1.5), antialias=True)),
                   (x, dict(mode="nearest-exact", scale_factor=1.7)),
                   (x3, dict(mode="trilinear", size=(11, 4, 9), align_corners=True)),
                   (x3, dict(mode="nearest", scale_factor=(2.0, 0.7, 1.5)))):
        y = deconv.interpolate(xx, **kw)
        outs += [y, deconv.interpolate_backward(y, xx.shape, **kw)]
digest = json.dumps([hashlib.sha256(o.tobytes()).hexdigest() for o in outs])
print(digest)
"""


def test_bitwise_identical_across_thread_counts():
    one = run_hashes(_DETERMINISM_SCRIPT, NUMBA_NUM_THREADS=1)
    two = run_hashes(_DETERMINISM_SCRIPT, NUMBA_NUM_THREADS=2)
    assert one == two
    namespace = {}
    exec(_DETERMINISM_SCRIPT, namespace)
    assert json.loads(namespace["digest"]) == one


# ---------------------------------------------------------------------------
# argument errors: raised before any work, naming the argument
# ---------------------------------------------------------------------------

X3 = np.zeros((1, 2, 4), np.float32)
X4 = np.zeros((1, 2, 4, 4), np.float32)
X5 = np.zeros((1, 2, 2, 2, 2), np.float32)
G4 = np.zeros((1, 2, 8, 8), np.float32)
I = deconv.interpolate
IB = deconv.interpolate_backward

BAD_CALLS = [
    ("align_corners with nearest", lambda: I(X4, scale_factor=2, align_corners=False),
     ValueError, r"align_corners can only be set.*mode='nearest'"),
    ("align_corners with area", lambda: I(X4, size=2, mode="area", align_corners=True),
     ValueError, r"align_corners can only be set"),
    ("align_corners not a bool", lambda: I(X3, size=2, mode="linear", align_corners=1),
     TypeError, r"align_corners must be a bool"),
    ("bicubic on 3-D", lambda: I(X3, size=2, mode="bicubic"), ValueError,
     r"mode='bicubic' needs a 4-D x"),
    ("linear on 4-D", lambda: I(X4, size=2, mode="linear"), ValueError,
     r"mode='linear' needs a 3-D x"),
    ("bilinear on 5-D", lambda: I(X5, size=2, mode="bilinear"), ValueError,
     r"mode='bilinear' needs a 4-D x"),
    ("trilinear on 4-D", lambda: I(X4, size=2, mode="trilinear"), ValueError,
     r"mode='trilinear' needs a 5-D x"),
    ("unknown mode", lambda: I(X4, size=2, mode="cubic"), ValueError, r"mode must be one of"),
    ("mode not a string", lambda: I(X4, size=2, mode=None), ValueError, r"mode must be one of"),
    ("antialias with nearest", lambda: I(X4, size=2, antialias=True), ValueError,
     r"antialias=True is only for mode='bilinear' and mode='bicubic'"),
    ("antialias on 3-D linear", lambda: I(X3, size=2, mode="linear", antialias=True), ValueError,
     r"antialias=True is only"),
    ("antialias not a bool", lambda: I(X4, size=2, mode="bilinear", antialias="yes"), TypeError,
     r"antialias must be a bool"),
    ("recompute with size", lambda: I(X4, size=2, recompute_scale_factor=True), ValueError,
     r"recompute_scale_factor=True is not meaningful with an explicit size"),
    ("recompute not a bool", lambda: I(X4, scale_factor=2, recompute_scale_factor=1), TypeError,
     r"recompute_scale_factor must be a bool"),
    ("both size and scale", lambda: I(X4, size=2, scale_factor=2), ValueError,
     r"exactly one of size and scale_factor"),
    ("neither", lambda: I(X4), ValueError, r"exactly one of size and scale_factor"),
    ("size of another rank", lambda: I(X5, size=(2, 2)), ValueError,
     r"size must be an int or a sequence of 3 ints"),
    ("size 0", lambda: I(X4, size=0, mode="bicubic"), ValueError, r"size must be >= 1"),
    ("scale to nothing", lambda: I(X4, scale_factor=0.1, mode="bilinear", antialias=True),
     ValueError, r"scale_factor=0.1 gives output size floor\(4 \* 0.1\) = 0"),
    ("scale negative", lambda: I(X3, scale_factor=-2.0, mode="linear"), ValueError,
     r"scale_factor must be a positive finite float"),
    ("x 2-D", lambda: I(np.zeros((2, 4)), size=3), ValueError,
     r"x must be 3-D with layout \(N, C, L\).*x\[None\]"),
    ("x 6-D", lambda: I(np.zeros((1,) * 6), size=3), ValueError, r"x must be 3-D .* or 5-D"),
    ("x integer", lambda: I(np.zeros((1, 1, 3), np.int64), size=3), TypeError, r"x must"),
    ("x too large output", lambda: I(X5, size=2**20, mode="nearest-exact"), ValueError,
     r"output of shape"),
    # backward
    ("bwd size mismatch", lambda: IB(G4, X4.shape, size=7, mode="bicubic"), ValueError,
     r"input_shape=\(1, 2, 4, 4\) with size=7 gives the output size \(7, 7\), but grad_output"),
    ("bwd scale mismatch", lambda: IB(G4, X4.shape, scale_factor=3.0, mode="bilinear",
                                      antialias=True), ValueError, r"with scale_factor=3.0 gives"),
    ("bwd grad_output rank", lambda: IB(G4, (1, 2, 4), size=8, mode="nearest"), ValueError,
     r"grad_output has shape \(1, 2, 8, 8\), but input_shape=\(1, 2, 4\) has 3 axes"),
    ("bwd input_shape rank for mode", lambda: IB(G4, (1, 2, 4), size=8, mode="bicubic"),
     ValueError, r"mode='bicubic' needs a 4-D input .*input_shape=\(1, 2, 4\)"),
    ("bwd input_shape not a shape", lambda: IB(G4, 4, size=8), ValueError,
     r"input_shape must be a sequence of 3, 4 or 5 ints"),
    ("bwd batch mismatch", lambda: IB(G4, (2, 2, 4, 4), size=8), ValueError,
     r"input_shape=\(2, 2, 4, 4\) is inconsistent with grad_output"),
    ("bwd align_corners with nearest-exact", lambda: IB(G4, X4.shape, size=8,
                                                        mode="nearest-exact", align_corners=True),
     ValueError, r"align_corners can only be set"),
]


@pytest.mark.parametrize("call, exc, match", [c[1:] for c in BAD_CALLS],
                         ids=[c[0] for c in BAD_CALLS])
def test_bad_arguments_raise_naming_the_argument(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_a_refused_call_does_no_work_on_a_huge_view():
    # a 2**33-element broadcast view: checks run on the object given, before any copy
    huge = np.broadcast_to(np.zeros((1, 1, 1, 1)), (2**11, 2**10, 2**6, 2**6))
    with pytest.raises(ValueError, match=r"mode='linear' needs a 3-D x"):
        deconv.interpolate(huge, size=2, mode="linear")
    with pytest.raises(ValueError, match=r"over the cap"):
        deconv.interpolate(huge, size=(2, 2), mode="bicubic")


def test_the_kernel_compiles_once_per_dtype_whatever_the_layout_or_mode():
    from deconv.kernels import interpolate as kernels
    rng = np.random.default_rng(6)
    for dt in DTYPES:
        x = rng.standard_normal((2, 2, 5, 6)).astype(dt)
        for a in (x, np.asfortranarray(x), x.astype(np.dtype(dt).newbyteorder(">")), x[..., ::-1]):
            for kw in (dict(mode="bicubic", size=3), dict(mode="nearest-exact", scale_factor=1.5),
                       dict(mode="bilinear", size=(2, 9), antialias=True)):
                y = deconv.interpolate(a, **kw)
                deconv.interpolate_backward(y[..., ::-1], a.shape, **kw)
        deconv.interpolate(rng.standard_normal((1, 1, 3, 2, 4)).astype(dt), size=2,
                           mode="trilinear")
    assert len(kernels.resample_axis.signatures) == 2, kernels.resample_axis.signatures
