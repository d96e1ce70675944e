"""Transposed-convolution output sizes (issue 13): ``output_size=`` on
conv_transpose1d/2d, their backwards and the ConvTranspose layers' forward, and
``padding='valid'/'same'``.

``output_size`` is checked against layers recorded from PyTorch
(``tests/data/tsize_cases.npz``, written by ``tests/make_tsize_fixtures.py``):
results, gradients and which sizes torch accepts; and, in hypothesis
property tests, against the NumPy reference with the ``output_padding`` it
stands for. The transposed ``'same'`` (not in PyTorch) is checked as the
exact adjoint of conv's ``'same'`` (``<convT(x), y> == <x, conv(y)>``), against
the reference's full transposed conv cropped as conv's ``'same'`` pads, and
by float64 central differences.
"""

import json
import os

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import deconv
from deconv import kernels, nn, reference, shapes
from deconv.functional.validation import byte_cap
from deconv.gradcheck import numerical_gradient
from tolerances import FINITE_DIFFERENCE, assert_close

DTYPES = [np.float32, np.float64]
DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "tsize_cases.npz")

CONVT = {1: deconv.conv_transpose1d, 2: deconv.conv_transpose2d}
CONVT_BWD = {1: deconv.conv_transpose1d_backward, 2: deconv.conv_transpose2d_backward}
CONV = {1: deconv.conv1d, 2: deconv.conv2d}
LAYER = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d}


def _ref(name, nd):
    return getattr(reference, f"{name}{nd}d")


def _param(draw, values):
    """An axis parameter as an int (if all axes agree, sometimes) or a tuple."""
    if len(set(values)) == 1 and draw(st.booleans()):
        return values[0]
    return tuple(values)


def _rand(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


# ---------------------------------------------------------------------------
# strategies: every drawn configuration is valid by construction
# ---------------------------------------------------------------------------

@st.composite
def output_size_configs(draw):
    """A transposed conv with an ``output_size`` drawn inside torch's range, and the
    ``output_padding`` it stands for (worked out here from the size formula)."""
    nd = draw(st.sampled_from([1, 2]))
    dtype = draw(st.sampled_from(DTYPES))
    G = draw(st.integers(1, 2))
    c_in, c_out_g = G * draw(st.integers(1, 3)), draw(st.integers(1, 3))
    k = [draw(st.integers(1, 4)) for _ in range(nd)]
    s = [draw(st.integers(1, 4)) for _ in range(nd)]
    d = [draw(st.integers(1, 3)) for _ in range(nd)]
    p = [draw(st.integers(0, 2)) for _ in range(nd)]
    extra = [draw(st.integers(0, si - 1)) for si in s]
    # the smallest output (L-1)*s - 2p + d*(k-1) + 1 must be >= 1
    size = [max(1, -(-(2 * pi - di * (ki - 1)) // si) + 1) + draw(st.integers(0, 3))
            for ki, si, di, pi in zip(k, s, d, p)]
    smallest = [(L - 1) * si - 2 * pi + di * (ki - 1) + 1
                for L, ki, si, di, pi in zip(size, k, s, d, p)]
    out = [m + e for m, e in zip(smallest, extra)]
    N = draw(st.integers(1, 2))
    full = draw(st.booleans())
    output_size = [N, G * c_out_g] + out if full else out
    if draw(st.booleans()):
        output_size = tuple(output_size)
    seed = draw(st.integers(0, 2**16))
    kw = dict(stride=_param(draw, s), padding=_param(draw, p), dilation=_param(draw, d),
              groups=G)
    return dict(nd=nd, dtype=dtype, x_shape=(N, c_in) + tuple(size),
                w_shape=(c_in, c_out_g) + tuple(k), bias=draw(st.booleans()), kw=kw,
                output_size=output_size, output_padding=tuple(extra),
                out_shape=(N, G * c_out_g) + tuple(out), seed=seed)


@st.composite
def same_configs(draw):
    """A stride-1 transposed conv with padding='same' (any kernel, dilation, groups)."""
    nd = draw(st.sampled_from([1, 2]))
    G = draw(st.integers(1, 2))
    k = [draw(st.integers(1, 5)) for _ in range(nd)]
    d = [draw(st.integers(1, 3)) for _ in range(nd)]
    size = tuple(draw(st.integers(1, 7)) for _ in range(nd))
    N = draw(st.integers(1, 2))
    c_in, c_out_g = G * draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kw = dict(padding="same", dilation=_param(draw, d), groups=G)
    if draw(st.booleans()):
        kw["stride"] = _param(draw, [1] * nd)
    return dict(nd=nd, dtype=draw(st.sampled_from(DTYPES)), x_shape=(N, c_in) + size,
                w_shape=(c_in, c_out_g) + tuple(k), k=k, d=d, kw=kw,
                bias=draw(st.booleans()), seed=draw(st.integers(0, 2**16)))


def _arrays(cfg):
    rng = np.random.default_rng(cfg["seed"])
    x = _rand(rng, cfg["x_shape"], cfg["dtype"])
    w = _rand(rng, cfg["w_shape"], cfg["dtype"])
    c_out = cfg["w_shape"][1] * cfg["kw"]["groups"]
    b = _rand(rng, (c_out,), cfg["dtype"]) if cfg["bias"] else None
    return rng, x, w, b


# ---------------------------------------------------------------------------
# output_size against the reference
# ---------------------------------------------------------------------------

@given(cfg=output_size_configs())
def test_output_size_forward_backward_match_the_reference_with_its_output_padding(cfg):
    nd = cfg["nd"]
    rng, x, w, b = _arrays(cfg)
    y = CONVT[nd](x, w, b, **cfg["kw"], output_size=cfg["output_size"])
    assert y.shape == cfg["out_shape"] and y.dtype == cfg["dtype"]
    op = cfg["output_padding"]
    assert_close(y, _ref("conv_transpose", nd)(x, w, b, **cfg["kw"], output_padding=op),
                 scale=10)
    g = _rand(rng, y.shape, cfg["dtype"])
    grads = CONVT_BWD[nd](g, x, w, **cfg["kw"], output_size=cfg["output_size"])
    expected = getattr(reference, f"conv_transpose{nd}d_backward")(
        g, x, w, **cfg["kw"], output_padding=op)
    for got, want in zip(grads, expected):
        assert_close(got, want, scale=100)
    # output_size and the output_padding it stands for are one call
    np.testing.assert_array_equal(y, CONVT[nd](x, w, b, **cfg["kw"], output_padding=op))


@given(cfg=output_size_configs())
def test_layer_forward_with_output_size_matches_the_functional_op(cfg):
    nd = cfg["nd"]
    rng, x, w, b = _arrays(cfg)
    kw = cfg["kw"]
    layer = LAYER[nd](x.shape[1], cfg["out_shape"][1], cfg["w_shape"][2:], bias=cfg["bias"],
                      dtype=cfg["dtype"], rng=0, **kw)
    layer.weight.data[...] = w
    if b is not None:
        layer.bias.data[...] = b
    y = layer(x, output_size=cfg["output_size"])
    np.testing.assert_array_equal(y, CONVT[nd](x, w, b, **kw, output_size=cfg["output_size"]))
    g = _rand(rng, y.shape, cfg["dtype"])
    gx = layer.backward(g)
    gx_f, gw_f, gb_f = CONVT_BWD[nd](g, x, w, **kw, output_size=cfg["output_size"])
    np.testing.assert_array_equal(gx, gx_f)
    np.testing.assert_array_equal(layer.weight.grad, gw_f)
    if b is not None:
        np.testing.assert_array_equal(layer.bias.grad, gb_f)
    # the next forward without output_size goes back to the layer's output_padding
    assert layer(x).shape == CONVT[nd](x, w, b, **kw).shape


def _fixture_cases():
    with np.load(DATA, allow_pickle=False) as z:
        n = json.loads(str(z["meta"]))["n_cases"]
        cases = []
        for i in range(n):
            key = f"c{i:03d}"
            config = json.loads(str(z[f"{key}/config"]))
            cases.append((config, {name: z[f"{key}/{name}"] for name in config["arrays"]}))
    return cases


FIXTURES = _fixture_cases()


def _torch_layer(config, a, dtype):
    nd = len(config["shape"]) - 2
    kw = {k: tuple(v) if isinstance(v, list) else v for k, v in config["kwargs"].items()}
    ksize = config["kernel_size"]
    layer = LAYER[nd](config["shape"][1], config["out_channels"],
                      tuple(ksize) if isinstance(ksize, list) else ksize, dtype=dtype, rng=0, **kw)
    layer.weight.data[...] = a["weight"]
    if layer.bias is not None:
        layer.bias.data[...] = a["bias"]
    return layer


def test_the_fixture_holds_every_case():
    assert len(FIXTURES) == 13
    assert {c["layer"] for c, _ in FIXTURES} == {"ConvTranspose1d", "ConvTranspose2d"}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("index", range(len(FIXTURES)))
def test_layers_match_recorded_pytorch_forward_with_output_size(index, dtype):
    config, a = FIXTURES[index]
    layer = _torch_layer(config, a, dtype)
    x = a["x"].astype(dtype)
    y = layer(x, output_size=config["output_size"])
    assert_close(y, a["out"], scale=10)
    gx = layer.backward(a["grad_output"].astype(dtype))
    assert_close(gx, a["grad_x"], scale=10)
    assert_close(layer.weight.grad, a["grad_weight"], scale=100)
    if layer.bias is not None:
        assert_close(layer.bias.grad, a["grad_bias"], scale=100)


@pytest.mark.parametrize("index", range(len(FIXTURES)))
def test_accepted_sizes_are_exactly_the_ones_pytorch_accepts(index):
    """Along each axis, the sizes 1..40 that torch's layer takes (dilation or
    not) are those of shapes.conv_transpose_size_range, and the functional op
    takes exactly those."""
    config, a = FIXTURES[index]
    nd = len(config["shape"]) - 2
    layer = _torch_layer(config, a, np.float64)
    x = a["x"][:1]
    spatial = list(config["output_size"][-nd:])
    for axis in range(nd):
        L, k = x.shape[2 + axis], layer.kernel_size[axis]
        s, p, d = layer.stride[axis], layer.padding[axis], layer.dilation[axis]
        low, high = shapes.conv_transpose_size_range(L, k, s, p, d)
        torch_accepts = set(np.flatnonzero(a["accepted"][axis]) + 1)
        assert torch_accepts == set(range(low, high + 1))
        ours = set()
        for size in range(1, a["accepted"].shape[1] + 1):
            trial = list(spatial)
            trial[axis] = size
            try:
                y = layer(x, output_size=trial)
            except ValueError as err:
                assert "output_size" in str(err) and f"[{low}, {high}]" in str(err)
                continue
            assert y.shape[2:] == tuple(trial)
            ours.add(size)
        assert ours == torch_accepts


# ---------------------------------------------------------------------------
# padding='same' / 'valid'
# ---------------------------------------------------------------------------

def _crop_same(full, k, d):
    """The reference's padding-0 transposed conv, cropped where conv's 'same' pads:
    d*(k-1) in all, the odd one at the end."""
    index = [slice(None), slice(None)]
    for axis, (kk, dd) in enumerate(zip(k, d)):
        total = dd * (kk - 1)
        before = total // 2
        L = full.shape[2 + axis] - total
        index.append(slice(before, before + L))
    return full[tuple(index)]


@given(cfg=same_configs())
def test_same_keeps_the_size_and_matches_the_cropped_reference(cfg):
    nd = cfg["nd"]
    rng, x, w, b = _arrays(cfg)
    kw = {k: v for k, v in cfg["kw"].items() if k != "padding"}
    y = CONVT[nd](x, w, b, **cfg["kw"])
    assert y.shape[2:] == x.shape[2:] and y.dtype == cfg["dtype"]
    full = _ref("conv_transpose", nd)(x, w, b, **kw)
    assert_close(y, _crop_same(full, cfg["k"], cfg["d"]), scale=10)
    with kernels.use("naive"):
        assert_close(CONVT[nd](x, w, b, **cfg["kw"]), _crop_same(full, cfg["k"], cfg["d"]),
                     scale=10)


@given(cfg=same_configs())
def test_same_is_the_adjoint_of_conv_same(cfg):
    """<conv_transpose(x, w, 'same'), y> == <x, conv(y, w, 'same')>: the
    transposed weight (C_in, C_out/groups, k) is the conv weight of that conv."""
    nd = cfg["nd"]
    rng, x, w, _ = _arrays(cfg)
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    y = rng.standard_normal(CONVT[nd](x64, w64, **cfg["kw"]).shape)
    lhs = np.vdot(CONVT[nd](x64, w64, **cfg["kw"]), y)
    rhs = np.vdot(x64, CONV[nd](y, w64, **cfg["kw"]))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-11, atol=1e-11)


@given(cfg=same_configs())
def test_same_backward_matches_the_reference(cfg):
    """grad_input is conv's 'same' of grad_output; grad_weight and grad_bias those of
    the padding-0 transposed conv whose output is cropped."""
    nd = cfg["nd"]
    rng, x, w, _ = _arrays(cfg)
    kw = {k: v for k, v in cfg["kw"].items() if k != "padding"}
    g = _rand(rng, x.shape[:1] + (w.shape[1] * kw["groups"],) + x.shape[2:], cfg["dtype"])
    gx, gw, gb = CONVT_BWD[nd](g, x, w, **cfg["kw"])
    ref_conv = _ref("conv", nd)(g, w, None, padding="same", dilation=kw["dilation"],
                                groups=kw["groups"])
    assert_close(gx, ref_conv, scale=10)
    # the cropped rows get zero gradient: pad g back to the full output
    full_shape = _ref("conv_transpose", nd)(x, w, None, **kw).shape
    g_full = np.zeros(full_shape)
    index = [slice(None), slice(None)]
    for kk, dd, L in zip(cfg["k"], cfg["d"], x.shape[2:]):
        before = dd * (kk - 1) // 2
        index.append(slice(before, before + L))
    g_full[tuple(index)] = g
    _, ref_gw, ref_gb = getattr(reference, f"conv_transpose{nd}d_backward")(g_full, x, w, **kw)
    assert_close(gw, ref_gw, scale=100)
    assert_close(gb, ref_gb, scale=100)


@pytest.mark.parametrize("nd, kw, size", [
    (1, dict(padding="same"), (6,)),
    (1, dict(padding="same", dilation=2, groups=2), (5,)),
    (2, dict(padding="same", dilation=(1, 3)), (4, 5)),
    (2, dict(stride=2, padding=1, output_size=(7, 9)), (4, 5)),
    (1, dict(stride=3, dilation=2, output_size=(2, 4, 17)), (4,)),
])
def test_backward_matches_finite_differences(nd, kw, size):
    FD = FINITE_DIFFERENCE
    rng = np.random.default_rng(3)
    groups = kw.get("groups", 1)
    x = rng.standard_normal((2, 2) + size)
    w = rng.standard_normal((2, 4 // groups) + ((4,) if nd == 1 else (2, 3)))
    b = rng.standard_normal(4)
    y = CONVT[nd](x, w, b, **kw)
    r = rng.standard_normal(y.shape)
    gx, gw, gb = CONVT_BWD[nd](r, x, w, **kw)
    loss = lambda: np.vdot(CONVT[nd](x, w, b, **kw), r)         # noqa: E731
    for got, array in ((gx, x), (gw, w), (gb, b)):
        np.testing.assert_allclose(got, numerical_gradient(loss, array, eps=FD["eps"]),
                                   rtol=FD["rtol"], atol=FD["atol"])


@pytest.mark.parametrize("nd", [1, 2])
def test_valid_is_padding_zero_at_any_stride(nd):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1, 2) + (4,) * nd)
    w = rng.standard_normal((2, 3) + (3,) * nd)
    np.testing.assert_array_equal(CONVT[nd](x, w, padding="valid", stride=2),
                                  CONVT[nd](x, w, padding=0, stride=2))
    g = rng.standard_normal(CONVT[nd](x, w, stride=2).shape)
    for got, want in zip(CONVT_BWD[nd](g, x, w, padding="valid", stride=2),
                         CONVT_BWD[nd](g, x, w, stride=2)):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("nd", [1, 2])
@pytest.mark.parametrize("mode", ["zeros", "reflect", "circular"])
def test_same_layer_is_the_adjoint_of_the_same_conv_layer(nd, mode):
    """ConvTranspose(padding='same') with a padding mode is the adjoint of the Conv layer
    with that padding and mode (one weight, no bias), and keeps the size."""
    rng = np.random.default_rng(5)
    k = (4,) if nd == 1 else (3, 4)
    conv = (nn.Conv1d if nd == 1 else nn.Conv2d)(2, 3, k, padding="same", dilation=2,
                                                  bias=False, padding_mode=mode,
                                                  dtype=np.float64)
    convt = LAYER[nd](3, 2, k, padding="same", dilation=2, bias=False, padding_mode=mode,
                      dtype=np.float64)
    convt.weight.data[...] = conv.weight.data
    x = rng.standard_normal((2, 3) + (9,) * nd)
    y = rng.standard_normal((2, 2) + (9,) * nd)
    out = convt(x)
    assert out.shape == y.shape
    np.testing.assert_allclose(np.vdot(out, y), np.vdot(x, conv(y)), rtol=1e-11)
    # and its backward is that of the functional op (zeros) or of the fold (others)
    gx = convt.backward(y)
    np.testing.assert_allclose(np.vdot(gx, x), np.vdot(y, out), rtol=1e-11)


def test_layer_output_size_ignores_the_layers_output_padding_as_torch():
    rng = np.random.default_rng(6)
    layer = nn.ConvTranspose1d(2, 2, 3, stride=3, output_padding=2, dtype=np.float64, rng=0)
    x = rng.standard_normal((1, 2, 4))
    assert layer(x).shape == (1, 2, 14)
    assert layer(x, (12,)).shape == (1, 2, 12)
    assert layer(x, output_size=[1, 2, 13]).shape == (1, 2, 13)


def test_output_size_and_same_are_bitwise_identical_across_thread_counts():
    from determinism import run_hashes
    script = """
import hashlib, json
import numpy as np, deconv
rng = np.random.default_rng(0)
x = rng.standard_normal((2, 4, 9, 8)).astype(np.float32)
w = rng.standard_normal((4, 3, 3, 4)).astype(np.float32)
y1 = deconv.conv_transpose2d(x, w, stride=2, padding=1, output_size=(18, 17))
y2 = deconv.conv_transpose2d(x, w, padding="same", dilation=2)
g = deconv.conv_transpose2d_backward(y2, x, w, padding="same", dilation=2)
print(json.dumps([hashlib.sha256(a.tobytes()).hexdigest() for a in (y1, y2) + g]))
"""
    one = run_hashes(script, NUMBA_NUM_THREADS=1, OPENBLAS_NUM_THREADS=1)
    two = run_hashes(script, NUMBA_NUM_THREADS=2, OPENBLAS_NUM_THREADS=2)
    assert one == two


# ---------------------------------------------------------------------------
# bad input: a ValueError/TypeError naming the argument, before any work
# ---------------------------------------------------------------------------

X3 = np.zeros((2, 4, 5))
X4 = np.zeros((2, 4, 5, 3))
W3 = np.zeros((4, 3, 3))
W4 = np.zeros((4, 3, 3, 3))

BAD_CALLS = [
    ("impossible size names the range",
     lambda: deconv.conv_transpose2d(X4, W4, stride=2, output_size=(20, 7)), ValueError,
     r"output_size=\(20, 7\) along axis H .*expected a size in \[11, 12\]"),
    ("too small", lambda: deconv.conv_transpose1d(X3, W3, stride=2, output_size=[10]),
     ValueError, r"output_size=\[10\] along axis L .*\[11, 12\]"),
    ("dilation does not widen the range",
     lambda: deconv.conv_transpose1d(X3, W3, stride=2, dilation=3, output_size=[17]),
     ValueError, r"output_size.*expected a size in \[15, 16\]"),
    ("range below 1",
     lambda: deconv.conv_transpose1d(np.zeros((1, 4, 1)), W3[:, :, :1], stride=3, padding=2,
                                     output_size=[1]),
     ValueError, r"output_size.*no output size >= 1"),
    ("backward too", lambda: deconv.conv_transpose2d_backward(
        np.zeros((2, 3, 11, 7)), X4, W4, stride=2, output_size=(11, 9)), ValueError,
     r"output_size=\(11, 9\) along axis W .*\[7, 8\]"),
    ("wrong length", lambda: deconv.conv_transpose2d(X4, W4, output_size=(7,)), ValueError,
     r"output_size must have 2 entries .* or 4"),
    ("wrong batch", lambda: deconv.conv_transpose2d(X4, W4, output_size=(3, 3, 7, 5)),
     ValueError, r"output_size=\(3, 3, 7, 5\) must start with .*\(N, C_out\) = \(x.shape\[0\], "
     r"weight.shape\[1\] \* groups\) = \(2, 3\)"),
    ("not a sequence", lambda: deconv.conv_transpose1d(X3, W3, output_size=7), TypeError,
     r"output_size must be a sequence"),
    ("float entry", lambda: deconv.conv_transpose1d(X3, W3, output_size=[7.0]), TypeError,
     r"output_size must be an int"),
    ("zero entry", lambda: deconv.conv_transpose1d(X3, W3, output_size=[0]), ValueError,
     r"output_size must have spatial sizes >= 1"),
    ("both output_padding and output_size",
     lambda: deconv.conv_transpose1d(X3, W3, stride=2, output_padding=1, output_size=[12]),
     ValueError, r"output_padding=1 and output_size=\[12\] both"),
    ("same with stride 2", lambda: deconv.conv_transpose2d(X4, W4, stride=2, padding="same"),
     ValueError, r"padding='same' needs stride 1 .*stride=\(2, 2\): .*never its size"),
    ("same with output_padding",
     lambda: deconv.conv_transpose1d(X3, W3, dilation=2, padding="same", output_padding=1),
     ValueError, r"output_padding=1 must be 0 with padding='same'"),
    ("unknown padding string", lambda: deconv.conv_transpose1d(X3, W3, padding="full"),
     ValueError, r"padding must be an int, a tuple of 1 ints, 'valid' or 'same', got 'full'"),
    ("same backward stride 2", lambda: deconv.conv_transpose1d_backward(
        np.zeros((2, 3, 5)), X3, W3, stride=2, padding="same"), ValueError,
     r"padding='same' needs stride 1"),
    ("same grad_output shape", lambda: deconv.conv_transpose1d_backward(
        np.zeros((2, 3, 7)), X3, W3, padding="same"), ValueError,
     r"grad_output must have shape \(2, 3, 5\)"),
    ("layer impossible size", lambda: nn.ConvTranspose2d(4, 3, 3, stride=2)(
        X4.astype(np.float32), (3, 3)), ValueError,
     r"^ConvTranspose2d\(.*\): output_size=\(3, 3\) along axis H .*\[11, 12\]"),
    ("layer full shape channels", lambda: nn.ConvTranspose1d(4, 3, 3)(
        X3.astype(np.float32), output_size=(2, 5, 7)), ValueError,
     r"^ConvTranspose1d\(.*\): output_size=\(2, 5, 7\) must start with"),
    ("layer same stride 2", lambda: nn.ConvTranspose1d(4, 3, 3, stride=2, padding="same"),
     ValueError, r"^ConvTranspose1d: padding='same' is not supported for strided"),
    ("layer same output_padding", lambda: nn.ConvTranspose1d(
        4, 3, 3, dilation=2, padding="same", output_padding=1), ValueError,
     r"^ConvTranspose1d: output_padding=1 must be 0 with padding='same'"),
]


@pytest.mark.parametrize("call, exc, match", [c[1:] for c in BAD_CALLS],
                         ids=[c[0] for c in BAD_CALLS])
def test_bad_arguments_raise_naming_the_argument(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_a_bad_output_size_is_refused_before_any_work():
    """On a broadcast view of 2**33 elements and under a tiny byte cap, the output_size
    error comes first: nothing was copied or allocated."""
    x = np.broadcast_to(np.zeros((), np.float32), (2**11, 4, 2**10, 2**10))
    w = np.zeros((4, 3, 3, 3), np.float32)
    with byte_cap(1024):
        with pytest.raises(ValueError,
                           match=r"output_size=\(5, 5\) along axis H \(L = x.shape\[2\]"):
            deconv.conv_transpose2d(x, w, stride=2, output_size=(5, 5))
        with pytest.raises(ValueError, match="padding='same' needs stride 1"):
            deconv.conv_transpose2d(x, w, stride=2, padding="same")
        # a valid output_size then meets the cap, naming the output
        with pytest.raises(ValueError, match="output"):
            deconv.conv_transpose2d(x, w, stride=2, output_size=(2048, 2048))


@pytest.mark.parametrize("nd", [1, 2])
@pytest.mark.parametrize("mode", ["zeros", "replicate", "circular"])
def test_output_size_layer_is_the_adjoint_of_the_strided_conv_layer(nd, mode):
    """Every size a stride-3 conv maps to the same output: forward(x, output_size=size)
    is the adjoint of the Conv layer (same options and padding mode) on that size."""
    rng = np.random.default_rng(7)
    k = (3,) if nd == 1 else (3, 2)
    conv_cls = nn.Conv1d if nd == 1 else nn.Conv2d
    for size in (10, 11, 12):
        spatial = (size,) * nd
        conv = conv_cls(2, 3, k, stride=3, padding=1, bias=False, padding_mode=mode,
                        dtype=np.float64, rng=0)
        convt = LAYER[nd](3, 2, k, stride=3, padding=1, bias=False, padding_mode=mode,
                          dtype=np.float64)
        convt.weight.data[...] = conv.weight.data
        y = rng.standard_normal((2, 2) + spatial)
        cy = conv(y)
        x = rng.standard_normal(cy.shape)
        out = convt(x, output_size=spatial)
        assert out.shape == y.shape
        np.testing.assert_allclose(np.vdot(out, y), np.vdot(x, cy), rtol=1e-11)
        # the input gradient of the adjoint is the conv itself
        np.testing.assert_allclose(convt.backward(y), cy, rtol=1e-11, atol=1e-12)
