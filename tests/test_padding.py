"""pad / pad_backward (constant, reflect, replicate, circular; 1-3 spatial axes), the
padding layers and the convolution layers' padding_mode: against the np.pad reference
(itself checked against outputs recorded from PyTorch), adjoint identities, float64
central differences, bitwise determinism across thread counts and argument errors."""

import json
import os

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import deconv
from deconv import nn, reference
from deconv.gradcheck import directional_derivative, numerical_gradient
from determinism import run_hashes
from tolerances import FINITE_DIFFERENCE, assert_close

DTYPES = [np.float32, np.float64]
MODES = ["constant", "reflect", "replicate", "circular"]
FD = FINITE_DIFFERENCE
DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "pad_cases.npz")


# ---------------------------------------------------------------------------
# strategies: every drawn configuration is valid by construction
# ---------------------------------------------------------------------------

def _axis_pads(draw, L, mode):
    """(before, after) for an axis of size L that ``mode`` accepts, output size >= 1."""
    if mode == "circular":
        # crops first, then pads of at most the kept size K
        crop_b = draw(st.integers(0, L - 1))
        crop_a = draw(st.integers(0, L - 1 - crop_b))
        K = L - crop_b - crop_a
        before = -crop_b if crop_b else draw(st.integers(0, K))
        after = -crop_a if crop_a else draw(st.integers(0, K))
        return before, after
    if mode == "reflect":
        before = draw(st.integers(-(L - 1), L - 1))
        return before, draw(st.integers(max(1 - L - before, -(L - 1)), L - 1))
    if mode == "replicate":
        before = draw(st.integers(-(L + 2), 4))
        return before, draw(st.integers(max(1 - L - before, -(L + 2)), 4))
    # constant: the crops fit in the input and leave an output of size >= 1
    before = draw(st.integers(-(L - 1), 3))
    return before, draw(st.integers(max(-(L - max(-before, 0)), 1 - L - before), 3))


def _leading_pads(draw, size):
    """(before, after) of the N or C axis (constant mode): crops that fit, small pads."""
    before = draw(st.integers(-size, 1))
    return before, draw(st.integers(-(size - max(-before, 0)), 1))


@st.composite
def pad_configs(draw, modes=tuple(MODES)):
    nd = draw(st.sampled_from([1, 2, 3]))
    mode = draw(st.sampled_from(modes))
    spatial = tuple(draw(st.integers(1, 5)) for _ in range(nd))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3))) + spatial
    pairs = [_axis_pads(draw, L, mode) for L in spatial]
    if mode == "constant":
        # the trailing axes PyTorch's tuple covers, then maybe C, then maybe N
        lead = draw(st.integers(0, 2))
        pairs = [_leading_pads(draw, size) for size in shape[2 - lead:2]] + pairs
        covered = draw(st.integers(0, nd)) if lead == 0 else nd
        pairs = pairs[len(pairs) - covered - lead:] if covered + lead else []
    pad = tuple(v for pair in pairs[::-1] for v in pair)
    value = draw(st.sampled_from([0.0, 1.5, -3.0])) if mode == "constant" else 0.0
    return dict(shape=shape, pad=pad, mode=mode, value=value,
                dtype=draw(st.sampled_from(DTYPES)), seed=draw(st.integers(0, 2**31 - 1)))


def _frozen(*arrays):
    """Read-only inputs prove the kernels never write to them."""
    for a in arrays:
        a.flags.writeable = False
    return arrays


# ---------------------------------------------------------------------------
# against the reference
# ---------------------------------------------------------------------------

@given(pad_configs())
def test_pad_forward_backward_match_reference(cfg):
    rng = np.random.default_rng(cfg["seed"])
    dt, kw = cfg["dtype"], dict(pad=cfg["pad"], mode=cfg["mode"])
    x, = _frozen(rng.standard_normal(cfg["shape"]).astype(dt))
    out = deconv.pad(x, value=cfg["value"], **kw)
    want = reference.pad(x, value=cfg["value"], **kw)
    assert out.dtype == dt
    assert_close(out, want, dt, err_msg=str(cfg))
    g, = _frozen(rng.standard_normal(out.shape).astype(dt))
    grad = deconv.pad_backward(g, x.shape, **kw)
    assert grad.dtype == dt
    assert_close(grad, reference.pad_backward(g, x.shape, **kw), dt, err_msg=str(cfg))


@given(pad_configs())
def test_pad_backward_is_the_adjoint(cfg):
    """<pad(x), g> == <x, pad_backward(g)> (value 0: pad is linear)."""
    rng = np.random.default_rng(cfg["seed"])
    kw = dict(pad=cfg["pad"], mode=cfg["mode"])
    x = rng.standard_normal(cfg["shape"])
    out = deconv.pad(x, **kw)
    g = rng.standard_normal(out.shape)
    lhs, rhs = np.vdot(out, g), np.vdot(x, deconv.pad_backward(g, x.shape, **kw))
    assert abs(lhs - rhs) <= 1e-12 * max(1.0, abs(lhs)), cfg


def _torch_cases(op):
    with np.load(DATA, allow_pickle=False) as z:
        keys = sorted({k.split("/")[0] for k in z.files if k != "meta"})
        cases = []
        for key in keys:
            config = json.loads(str(z[f"{key}/config"]))
            if config["op"] == op:
                cases.append(pytest.param(config, {n: z[f"{key}/{n}"] for n in config["arrays"]},
                                          id=key))
    return cases


@pytest.mark.parametrize("config, a", _torch_cases("pad"))
def test_reference_and_kernels_match_pytorch(config, a):
    kw = dict(pad=tuple(config["pad"]), mode=config["mode"])
    value = 0.0 if config["value"] is None else config["value"]
    np.testing.assert_allclose(reference.pad(a["x"], value=value, **kw), a["out"], rtol=0, atol=0)
    np.testing.assert_allclose(reference.pad_backward(a["grad_output"], a["x"].shape, **kw),
                               a["grad_x"], rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(deconv.pad(a["x"], value=value, **kw), a["out"])
    np.testing.assert_allclose(deconv.pad_backward(a["grad_output"], a["x"].shape, **kw),
                               a["grad_x"], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("config, a", _torch_cases("conv"))
def test_conv_layers_with_padding_mode_match_pytorch(config, a):
    kw = {k: tuple(v) if isinstance(v, list) else v for k, v in config["kwargs"].items()}
    layer = getattr(nn, config["layer"])(a["x"].shape[1], config["out_channels"],
                                         config["kernel_size"], padding_mode=config["padding_mode"],
                                         dtype=np.float64, **kw)
    layer.weight.data[...] = a["weight"]
    layer.bias.data[...] = a["bias"]
    assert_close(layer(a["x"]), a["out"], np.float64)
    assert_close(layer.backward(a["grad_output"]), a["grad_x"], np.float64)
    assert_close(layer.weight.grad, a["grad_weight"], np.float64, scale=10)
    assert_close(layer.bias.grad, a["grad_bias"], np.float64, scale=10)


# ---------------------------------------------------------------------------
# hand-worked cases and semantics
# ---------------------------------------------------------------------------

ROW = np.arange(5.0).reshape(1, 1, 5)


@pytest.mark.parametrize("pad, mode, expected", [
    ((2, 3), "reflect", [2, 1, 0, 1, 2, 3, 4, 3, 2, 1]),
    ((-1, 2), "reflect", [1, 2, 3, 4, 3, 2]),
    ((-6, 2), "reflect", [2]),                       # mirrored about the whole axis
    ((2, 3), "replicate", [0, 0, 0, 1, 2, 3, 4, 4, 4, 4]),
    ((-8, 4), "replicate", [4]),
    ((2, 3), "circular", [3, 4, 0, 1, 2, 3, 4, 0, 1, 2]),
    ((-1, 2), "circular", [1, 2, 3, 4, 1, 2]),       # wraps the cropped axis, as PyTorch
    ((1, -4), "circular", [0, 0]),
    ((5, 0), "circular", [0, 1, 2, 3, 4, 0, 1, 2, 3, 4]),
    ((3, -5), "constant", [7, 7, 7]),
    ((1, -2), "constant", [7, 0, 1, 2]),
])
def test_hand_worked_rows(pad, mode, expected):
    value = 7.0 if mode == "constant" else 0.0
    np.testing.assert_array_equal(deconv.pad(ROW, pad, mode=mode, value=value)[0, 0], expected)


def test_constant_mode_pads_and_crops_the_leading_axes():
    x = np.arange(12.0).reshape(2, 3, 2)
    out = deconv.pad(x, (0, 1, -1, 1, 1, -1), value=-1.0)
    assert out.shape == (2, 3, 3)
    np.testing.assert_array_equal(out[0], -1.0)                      # the new batch entry
    np.testing.assert_array_equal(out[1, :2, :2], x[0, 1:])          # C cropped by one, shifted
    np.testing.assert_array_equal(out[1, 2], -1.0)                   # the new channel
    np.testing.assert_array_equal(out[1, :, 2], -1.0)                # the new column
    g = np.arange(18.0).reshape(out.shape)
    gi = deconv.pad_backward(g, x.shape, (0, 1, -1, 1, 1, -1))
    np.testing.assert_array_equal(gi[0, 1:], g[1, :2, :2])
    np.testing.assert_array_equal(gi[0, 0], 0.0)                     # cropped: no gradient
    np.testing.assert_array_equal(gi[1], 0.0)


def test_nan_and_inf_fill_and_propagate():
    x = np.array([[[1.0, np.nan, np.inf]]], np.float32)
    out = deconv.pad(x, (1, 1), value=np.nan)
    assert out.dtype == np.float32 and np.isnan(out[0, 0, [0, 2, 4]]).all()
    assert out[0, 0, 3] == np.inf
    np.testing.assert_array_equal(deconv.pad(x, (2, 0), mode="reflect")[0, 0, :2], [np.inf, np.nan])


def test_every_layout_and_empty_batch_is_accepted():
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5))
    want = deconv.pad(x, (1, 2, 2, 1), mode="reflect")
    for variant in (np.asfortranarray(x), x[..., ::-1][..., ::-1], x.astype(">f8")):
        np.testing.assert_array_equal(deconv.pad(variant, (1, 2, 2, 1), mode="reflect"), want)
    assert deconv.pad(np.zeros((0, 3, 4)), (1, 1), mode="circular").shape == (0, 3, 6)
    assert deconv.pad_backward(np.zeros((0, 3, 6)), (0, 3, 4), (1, 1), "circular").shape == \
        (0, 3, 4)


# ---------------------------------------------------------------------------
# float64 central differences
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("shape, pad, mode", [
    ((2, 2, 5), (3, -1), "reflect"),
    ((1, 2, 4, 3), (2, 2, -1, 3), "replicate"),
    ((1, 1, 3, 4, 3), (1, 2, -1, 2, 3, 0), "circular"),
    ((2, 2, 3, 4), (1, -2, 2, 1, 1, 0), "constant"),
])
def test_backward_matches_central_differences(shape, pad, mode):
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape)
    r = rng.standard_normal(deconv.pad(x, pad, mode=mode).shape)
    num = numerical_gradient(lambda: np.vdot(deconv.pad(x, pad, mode=mode), r), x, eps=FD["eps"])
    np.testing.assert_allclose(deconv.pad_backward(r, shape, pad, mode), num,
                               rtol=FD["rtol"], atol=FD["atol"])


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("layer", ["Conv1d", "Conv2d", "ConvTranspose1d", "ConvTranspose2d"])
def test_conv_layers_with_padding_mode_match_central_differences(layer, mode):
    rng = np.random.default_rng(5)
    nd = 1 if layer.endswith("1d") else 2
    conv = getattr(nn, layer)(2, 3, 3, stride=2, padding=1, padding_mode=mode,
                              dtype=np.float64, rng=1)
    x = rng.standard_normal((2, 2) + (5,) * nd)
    r = rng.standard_normal(conv(x).shape)
    conv.zero_grad()
    conv(x)
    gx = conv.backward(r)
    for array, grad in ((x, gx), (conv.weight.data, conv.weight.grad),
                        (conv.bias.data, conv.bias.grad)):
        v = rng.standard_normal(array.shape)
        num = directional_derivative(lambda: np.vdot(conv(x), r), array, v, eps=FD["eps"])
        assert abs(num - np.vdot(grad, v)) <= FD["atol"] + FD["rtol"] * abs(num), (layer, mode)


# ---------------------------------------------------------------------------
# the padding_mode of the convolution layers
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("nd", [1, 2])
def test_conv_transpose_with_padding_mode_is_the_adjoint_of_conv(nd, mode):
    """<ConvTranspose(x), y> == <x, Conv(y)>: one weight, no bias, the same padding and mode."""
    rng = np.random.default_rng(7)
    kw = dict(kernel_size=3, stride=2, padding=(1, 2)[:nd], bias=False, padding_mode=mode,
              dtype=np.float64)
    conv = getattr(nn, f"Conv{nd}d")(4, 3, **kw)
    convt = getattr(nn, f"ConvTranspose{nd}d")(3, 4, output_padding=1, **kw)
    convt.weight.data[...] = conv.weight.data
    x = rng.standard_normal((2, 3) + (4, 3)[:nd])
    y = rng.standard_normal(convt(x).shape)
    lhs, rhs = np.vdot(convt(x), y), np.vdot(x, conv(y))
    assert abs(lhs - rhs) <= 1e-12 * max(1.0, abs(lhs))
    # the output size is that of zero padding
    zeros = getattr(nn, f"ConvTranspose{nd}d")(3, 4, output_padding=1, **dict(kw, padding_mode="zeros"))
    assert convt(x).shape == zeros(x).shape


@pytest.mark.parametrize("nd", [1, 2])
def test_conv_with_padding_mode_pads_then_convolves(nd):
    rng = np.random.default_rng(8)
    layer = getattr(nn, f"Conv{nd}d")(2, 3, 3, padding=2, padding_mode="circular", rng=0)
    x = rng.standard_normal((1, 2) + (5,) * nd).astype(np.float32)
    xp = deconv.pad(x, (2, 2) * nd, mode="circular")
    conv = deconv.conv1d if nd == 1 else deconv.conv2d
    np.testing.assert_array_equal(layer(x), conv(xp, layer.weight.data, layer.bias.data))
    assert layer(x).dtype == np.float32
    assert "padding_mode=circular" in repr(layer)


def test_conv_padding_same_with_a_mode_pads_asymmetrically():
    layer = nn.Conv1d(1, 1, 4, padding="same", padding_mode="replicate", bias=False,
                      dtype=np.float64, rng=0)
    x = np.random.default_rng(1).standard_normal((1, 1, 7))
    want = deconv.conv1d(deconv.pad(x, (1, 2), mode="replicate"), layer.weight.data)
    np.testing.assert_array_equal(layer(x), want)


def test_bad_padding_modes_name_the_argument():
    with pytest.raises(ValueError, match=r"Conv2d: padding_mode must be one of 'zeros', "
                                         r"'reflect', 'replicate', 'circular', got 'mirror'"):
        nn.Conv2d(1, 1, 3, padding_mode="mirror")
    with pytest.raises(ValueError, match=r"ConvTranspose1d: padding_mode must be one of"):
        nn.ConvTranspose1d(1, 1, 3, padding_mode=None)
    layer = nn.Conv1d(1, 1, 3, padding=4, padding_mode="reflect")
    with pytest.raises(ValueError, match=r"Conv1d\(.*\): padding=\(4, 4\) asks for a reflection"):
        layer(np.zeros((1, 1, 4), np.float32))


# ---------------------------------------------------------------------------
# the padding layers
# ---------------------------------------------------------------------------

LAYERS = {"Reflection": "reflect", "Replication": "replicate", "Circular": "circular",
          "Zero": "constant", "Constant": "constant"}


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_padding_layers_run_pad_and_pad_backward(kind, nd):
    rng = np.random.default_rng(9)
    cls = getattr(nn, f"{kind}Pad{nd}d")
    padding = tuple(int(v) for v in rng.integers(-1, 3, 2 * nd))
    layer = cls(padding, 2.5) if kind == "Constant" else cls(padding)
    x = rng.standard_normal((2, 3) + (4,) * nd).astype(np.float32)
    value = 2.5 if kind == "Constant" else 0.0
    y = layer(x)
    np.testing.assert_array_equal(y, deconv.pad(x, padding, mode=LAYERS[kind], value=value))
    g = rng.standard_normal(y.shape).astype(np.float32)
    np.testing.assert_array_equal(layer.backward(g),
                                  deconv.pad_backward(g, x.shape, padding, LAYERS[kind]))
    # an int pads every side
    int_layer = cls(1, 2.5) if kind == "Constant" else cls(1)
    assert int_layer.padding == (1,) * (2 * nd)


@pytest.mark.parametrize("make, match", [
    (lambda: nn.ReflectionPad2d((1, 2)), r"ReflectionPad2d: padding must be a sequence of 4 ints"),
    (lambda: nn.ZeroPad1d(1.5), r"ZeroPad1d: padding must be an int or a sequence of 2 ints"),
    (lambda: nn.ConstantPad3d(1, "0"), r"ConstantPad3d: value must be a real number"),
    (lambda: nn.CircularPad1d((1, True)), r"CircularPad1d: padding must be an int"),
])
def test_padding_layer_constructor_errors_name_the_class(make, match):
    with pytest.raises((TypeError, ValueError), match=match):
        make()


def test_padding_layer_forward_errors_name_the_layer_and_its_padding():
    with pytest.raises(ValueError, match=r"ReflectionPad1d\(\(3, 3\)\): padding=\(3, 3\) asks"):
        nn.ReflectionPad1d(3)(np.zeros((1, 1, 3)))
    with pytest.raises(ValueError, match=r"ZeroPad3d\(.*\): x must be 5-D with layout "
                                         r"\(N, C, D, H, W\)"):
        nn.ZeroPad3d(1)(np.zeros((1, 1, 3, 3)))
    with pytest.raises(ValueError, match=r"x\[None\]"):
        nn.ReplicationPad2d(1)(np.zeros((1, 3, 3)))


# ---------------------------------------------------------------------------
# bitwise determinism across thread counts
# ---------------------------------------------------------------------------

_DETERMINISM_SCRIPT = r"""
import hashlib, json, numpy as np, deconv
rng = np.random.default_rng(0)
outs = []
for dt in (np.float32, np.float64):
    x = rng.standard_normal((4, 16, 20, 24)).astype(dt)
    for mode, pad in (("reflect", (5, 7, 3, 19)), ("replicate", (30, 2, -3, 40)),
                      ("circular", (24, 24, 17, -3)), ("constant", (3, -2, 1, 1, 2, 0))):
        y = deconv.pad(x, pad, mode=mode)
        outs += [y, deconv.pad_backward(y, x.shape, pad, mode)]
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

X3 = np.zeros((2, 3, 5), np.float32)
X4 = np.zeros((2, 3, 4, 5), np.float32)

BAD_CALLS = [
    ("x int", lambda: deconv.pad(X3.astype(np.int64), (1, 1)), TypeError,
     r"x must have dtype float32 or float64"),
    ("x 2-D", lambda: deconv.pad(X3[0], (1, 1)), ValueError, r"x must be 3-D .*x\[None\]"),
    ("x 6-D", lambda: deconv.pad(np.zeros((1,) * 6), (1, 1)), ValueError, r"x must be 3-D"),
    ("x spatial 0", lambda: deconv.pad(X3[..., :0], (1, 1)), ValueError,
     r"x must have spatial sizes >= 1"),
    ("mode", lambda: deconv.pad(X3, (1, 1), mode="edge"), ValueError,
     r"mode must be one of 'constant', 'reflect', 'replicate', 'circular', got 'edge'"),
    ("pad odd", lambda: deconv.pad(X3, (1,)), ValueError, r"pad must be a sequence of an even"),
    ("pad too long", lambda: deconv.pad(X3, (1,) * 8), ValueError, r"at most 6"),
    ("pad int", lambda: deconv.pad(X3, 1), TypeError, r"pad must be a sequence"),
    ("pad array", lambda: deconv.pad(X3, np.array([1, 1])), TypeError, r"pad must be a sequence"),
    ("pad float", lambda: deconv.pad(X3, (1, 1.0)), TypeError, r"pad must be an int"),
    ("pad huge", lambda: deconv.pad(X3, (1, 2**40)), ValueError, r"pad must be at most"),
    ("reflect pad on 2 axes of 4-D", lambda: deconv.pad(X4, (1, 1), mode="reflect"),
     ValueError, r"pad must be a sequence of 4 ints"),
    ("reflect too far", lambda: deconv.pad(X3, (5, 0), mode="reflect"), ValueError,
     r"pad=\(5, 0\) asks for a reflection of \(5, 0\) along axis L .*smaller than the size 5"),
    ("circular twice", lambda: deconv.pad(X3, (6, 0), mode="circular"), ValueError,
     r"pad=\(6, 0\) wraps around more than once along axis L"),
    ("circular beyond the crop", lambda: deconv.pad(X3, (2, -4), mode="circular"), ValueError,
     r"wraps around more than once .*at most the 1 positions"),
    ("output 0", lambda: deconv.pad(X3, (-3, -2), mode="replicate"), ValueError,
     r"pad=\(-3, -2\) gives an output of size 0 along axis L"),
    ("constant crop too far", lambda: deconv.pad(X3, (-6, 2)), ValueError,
     r"pad=\(-6, 2\) crops 6 positions along axis L"),
    ("leading crop too far", lambda: deconv.pad(X3, (0, 0, 0, 0, -3, 0)), ValueError,
     r"crops 3 positions along axis N"),
    ("value with reflect", lambda: deconv.pad(X3, (1, 1), mode="reflect", value=1.0), ValueError,
     r"value=1.0: padding mode 'reflect' takes no fill value"),
    ("value overflows float32", lambda: deconv.pad(X3, (1, 1), value=1e300), ValueError,
     r"value=1e\+300 cannot be converted to float32"),
    ("value str", lambda: deconv.pad(X3, (1, 1), value="0"), TypeError,
     r"value must be a real number"),
    ("value bool", lambda: deconv.pad(X3, (1, 1), value=True), TypeError,
     r"value must be a real number"),
    ("output over the cap", lambda: deconv.pad(X3, (0, 2**31 - 1)), ValueError,
     r"output of shapes .* over the cap"),
    ("bwd grad_output shape", lambda: deconv.pad_backward(X3, (2, 3, 5), (1, 1)), ValueError,
     r"grad_output must have shape \(2, 3, 7\) \(the output of pad for input_shape"),
    ("bwd input_shape of another ndim", lambda: deconv.pad_backward(X3, (2, 3, 5, 1), (1, 1)),
     ValueError, r"grad_output must be 4-D like input_shape=\(2, 3, 5, 1\)"),
    ("bwd input_shape length", lambda: deconv.pad_backward(X3, (2, 3, 5, 1, 1, 1), (1, 1)),
     ValueError, r"input_shape must be a sequence of 3 ints"),
    ("bwd input_shape int", lambda: deconv.pad_backward(X3, 5, (1, 1)),
     ValueError, r"input_shape must be a sequence of 3 ints"),
    ("bwd input_shape zero", lambda: deconv.pad_backward(X3, (2, 3, 0), (1, 1)), ValueError,
     r"input_shape must have spatial sizes >= 1"),
    ("bwd input_shape float", lambda: deconv.pad_backward(X3, (2, 3, 3.0), (1, 1)), TypeError,
     r"input_shape must be an int"),
    ("bwd reflect too far", lambda: deconv.pad_backward(X3, (2, 3, 2), (2, 1), "reflect"),
     ValueError, r"pad=\(2, 1\) asks for a reflection .*axis L of input_shape"),
    ("bwd grad_output int", lambda: deconv.pad_backward(X3.astype(int), (2, 3, 3), (1, 1)),
     TypeError, r"grad_output must have dtype"),
]


@pytest.mark.parametrize("call, exc, match", [c[1:] for c in BAD_CALLS],
                         ids=[c[0] for c in BAD_CALLS])
def test_bad_arguments_raise_naming_the_argument(call, exc, match, monkeypatch):
    """Raised before any kernel runs or any output is allocated."""
    from deconv.kernels import pad as kernels

    def no_work(*args):
        raise AssertionError("a kernel ran before the arguments were checked")

    monkeypatch.setattr(kernels, "pad_forward", no_work)
    monkeypatch.setattr(kernels, "pad_backward", no_work)
    with pytest.raises(exc, match=match):
        call()


def test_each_kernel_compiles_one_signature_per_dtype():
    """Odd layouts, read-only and big-endian inputs, fills and crops add no signature."""
    from deconv.kernels import pad as kernels
    rng = np.random.default_rng(4)
    for dt in DTYPES:
        x = np.asfortranarray(rng.standard_normal((2, 3, 4, 5)).astype(dt))
        x.flags.writeable = False
        for mode in MODES:
            y = deconv.pad(x[..., ::-1], (1, 2, 2, -1), mode=mode)
            deconv.pad_backward(y.astype(y.dtype.newbyteorder(">")), x.shape, (1, 2, 2, -1), mode)
        deconv.pad(x[0], (1, 1, 0, 0, -1, 1), value=np.inf)
    assert len(kernels.pad_forward.signatures) == 2
    assert len(kernels.pad_backward.signatures) == 2
