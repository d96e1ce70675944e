"""Adaptive average and max pooling (1-D, 2-D, 3-D): forward and backward against
the NumPy reference (itself checked against outputs recorded from PyTorch),
adjoint identities, float64 central differences, NaN and tie rules, edge
cases, bitwise determinism across thread counts, argument errors and the
layers."""

import json
import os

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import deconv
from deconv import nn, reference, shapes
from deconv.functional.validation import byte_cap
from deconv.gradcheck import numerical_gradient
from determinism import run_hashes
from tolerances import FINITE_DIFFERENCE as FD
from tolerances import assert_close

DTYPES = [np.float32, np.float64]
ND = [1, 2, 3]


def _op(kind, nd, backward=False):
    return getattr(deconv, f"adaptive_{kind}_pool{nd}d" + ("_backward" if backward else ""))


def _ref(kind, nd, backward=False):
    return getattr(reference, f"adaptive_{kind}_pool{nd}d" + ("_backward" if backward else ""))


# ---------------------------------------------------------------------------
# strategies: every drawn configuration is valid by construction
# ---------------------------------------------------------------------------

@st.composite
def adaptive_configs(draw, nd=None):
    """Input shape and output_size: smaller, equal, larger than the input (and
    not dividing it), as an int, a tuple, or (2-D, 3-D) with None entries."""
    nd = draw(st.sampled_from(ND)) if nd is None else nd
    spatial = tuple(draw(st.integers(1, 7)) for _ in range(nd))
    out = tuple(draw(st.integers(1, 9)) for _ in range(nd))
    form = draw(st.sampled_from(["tuple", "int", "none"] if nd > 1 else ["tuple", "int"]))
    if form == "int":
        output_size = out[0]
        out = (out[0],) * nd
    elif form == "none":
        keep = [draw(st.booleans()) for _ in range(nd)]
        output_size = tuple(None if k else o for k, o in zip(keep, out))
        out = tuple(L if k else o for L, k, o in zip(spatial, keep, out))
    else:
        output_size = out
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3))) + spatial
    return dict(nd=nd, shape=shape, output_size=output_size, out=out,
                dtype=draw(st.sampled_from(DTYPES)), seed=draw(st.integers(0, 2**31 - 1)))


def _data(cfg, shape=None):
    rng = np.random.default_rng(cfg["seed"])
    return rng, rng.standard_normal(shape or cfg["shape"]).astype(cfg["dtype"])


# ---------------------------------------------------------------------------
# against the reference
# ---------------------------------------------------------------------------

@given(adaptive_configs())
def test_avg_forward_backward_match_reference(cfg):
    nd, dt = cfg["nd"], np.dtype(cfg["dtype"])
    rng, x = _data(cfg)
    y = _op("avg", nd)(x, cfg["output_size"])
    assert y.dtype == dt and y.shape == cfg["shape"][:2] + cfg["out"]
    assert_close(y, _ref("avg", nd)(x, cfg["output_size"]))
    g = rng.standard_normal(y.shape).astype(dt)
    gx = _op("avg", nd, True)(g, x.shape)
    assert gx.dtype == dt and gx.shape == x.shape
    assert_close(gx, _ref("avg", nd, True)(g, x.shape))


@given(adaptive_configs())
def test_max_forward_backward_match_reference(cfg):
    nd, dt = cfg["nd"], np.dtype(cfg["dtype"])
    rng, x = _data(cfg)
    y, idx = _op("max", nd)(x, cfg["output_size"])
    ry, ridx = _ref("max", nd)(x, cfg["output_size"])
    assert y.dtype == dt and idx.dtype == np.int64 and y.shape == cfg["shape"][:2] + cfg["out"]
    np.testing.assert_array_equal(idx, ridx)
    np.testing.assert_array_equal(y.astype(np.float64), ry)   # a maximum is an input value
    g = rng.standard_normal(y.shape).astype(dt)
    gx = _op("max", nd, True)(g, idx, x.shape)
    assert gx.dtype == dt
    assert_close(gx, _ref("max", nd, True)(g, idx, x.shape))


@given(adaptive_configs(), st.booleans())
def test_return_indices_false_gives_the_values_alone(cfg, as_keyword):
    _, x = _data(cfg)
    fn = _op("max", cfg["nd"])
    alone = fn(x, cfg["output_size"], return_indices=False) if as_keyword else \
        fn(x, cfg["output_size"], False)
    np.testing.assert_array_equal(alone, fn(x, cfg["output_size"])[0])


def _torch_cases():
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "adaptive_cases.npz")
    cases = []
    with np.load(path, allow_pickle=False) as z:
        for key in sorted({k.split("/")[0] for k in z.files if k != "meta"}):
            config = json.loads(str(z[f"{key}/config"]))
            arrays = {k.split("/")[1]: z[k] for k in z.files if k.startswith(key + "/")
                      and not k.endswith("/config")}
            size = config["output_size"]
            size = tuple(size) if isinstance(size, list) else size
            cases.append(pytest.param(config["op"], size, arrays,
                                      id=f"{key}-{config['op']}-{config['data']}"))
    return cases


TORCH_CASES = _torch_cases()


def test_the_recorded_pytorch_cases_are_all_there():
    assert len(TORCH_CASES) == 44


@pytest.mark.parametrize("op, size, a", TORCH_CASES)
def test_reference_matches_recorded_pytorch_outputs(op, size, a):
    fwd, bwd = getattr(reference, op), getattr(reference, op + "_backward")
    x, go = a["x"], a["grad_output"]
    if "max" in op:
        out, idx = fwd(x, size)
        np.testing.assert_array_equal(idx, a["out_indices"])
        gx = bwd(go, idx, x.shape)
    else:
        out = fwd(x, size)
        gx = bwd(go, x.shape)
    np.testing.assert_allclose(out, a["out"], rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(gx, a["grad_x"], rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op, size, a", TORCH_CASES)
def test_matches_recorded_pytorch_outputs(op, size, a, dtype):
    fwd, bwd = getattr(deconv, op), getattr(deconv, op + "_backward")
    x, go = a["x"].astype(dtype), a["grad_output"].astype(dtype)
    if "max" in op:
        out, idx = fwd(x, size)
        np.testing.assert_array_equal(idx, a["out_indices"])
        gx = bwd(go, idx, x.shape)
    else:
        out = fwd(x, size)
        gx = bwd(go, x.shape)
    assert out.dtype == gx.dtype == np.dtype(dtype)
    assert_close(out, a["out"])
    assert_close(gx, a["grad_x"])


# ---------------------------------------------------------------------------
# adjoint identities and central differences (float64)
# ---------------------------------------------------------------------------

def _rel(a, b):
    return abs(a - b) / max(1.0, abs(a), abs(b))


def _gather(x, idx):
    P = x.shape[0] * x.shape[1]
    return np.take_along_axis(x.reshape(P, -1), idx.reshape(P, -1), axis=1).reshape(idx.shape)


@given(adaptive_configs())
def test_avg_backward_is_the_adjoint(cfg):
    nd = cfg["nd"]
    rng, x = _data(dict(cfg, dtype=np.float64))
    y = _op("avg", nd)(x, cfg["output_size"])
    r = rng.standard_normal(y.shape)
    assert _rel(np.vdot(y, r), np.vdot(x, _op("avg", nd, True)(r, x.shape))) < 1e-12


@given(adaptive_configs())
def test_max_backward_is_the_adjoint_of_gathering_at_indices(cfg):
    nd = cfg["nd"]
    rng, x = _data(dict(cfg, dtype=np.float64))
    out, idx = _op("max", nd)(x, cfg["output_size"])
    np.testing.assert_array_equal(_gather(x, idx), out)
    v = rng.standard_normal(x.shape)
    r = rng.standard_normal(out.shape)
    assert _rel(np.vdot(_gather(v, idx), r), np.vdot(v, _op("max", nd, True)(r, idx, x.shape))) \
        < 1e-12


@pytest.mark.parametrize("nd, shape, size", [
    (1, (2, 2, 7), 3), (1, (1, 2, 3), 5),
    (2, (1, 2, 5, 7), (3, None)), (2, (2, 1, 3, 4), (4, 3)),
    (3, (1, 2, 3, 4, 5), (2, 3, 2)), (3, (1, 1, 2, 3, 2), (3, None, 3)),
])
@pytest.mark.parametrize("kind", ["avg", "max"])
def test_backward_matches_central_differences(kind, nd, shape, size):
    rng = np.random.default_rng(sum(shape))
    # distinct values well apart: no tie flips under the eps perturbation
    x = (rng.permutation(int(np.prod(shape))) * 0.1 - 1.0).reshape(shape)
    fwd = _op(kind, nd)

    def value():
        y = fwd(x, size)
        return y[0] if kind == "max" else y

    r = rng.standard_normal(value().shape)
    num = numerical_gradient(lambda: np.vdot(value(), r), x, eps=FD["eps"])
    if kind == "max":
        got = _op(kind, nd, True)(r, fwd(x, size)[1], shape)
    else:
        got = _op(kind, nd, True)(r, shape)
    np.testing.assert_allclose(got, num, rtol=FD["rtol"], atol=FD["atol"])


# ---------------------------------------------------------------------------
# the windows, ties, NaN and edge cases
# ---------------------------------------------------------------------------

@given(st.integers(1, 60), st.integers(1, 60))
def test_windows_cover_the_input_in_order_and_never_empty(L, out):
    wins = [shapes.adaptive_pool_window(o, L, out) for o in range(out)]
    assert wins[0][0] == 0 and wins[-1][1] == L
    for (s0, e0), (s1, e1) in zip(wins, wins[1:]):
        assert s0 <= s1 and e0 <= e1 and s1 <= e0     # ordered, no gap between neighbours
    for o, (s, e) in enumerate(wins):
        assert s < e
        # start = floor(o*L/out), end = ceil((o+1)*L/out), by real division
        assert s * out <= o * L < (s + 1) * out
        assert (e - 1) * out < (o + 1) * L <= e * out


def test_window_arithmetic_is_exact_at_the_largest_sizes():
    import fractions
    import math
    L = 2**31 - 1
    for out in (L, L - 1, 3, 2**30 + 7):
        for o in (0, 1, out // 2, out - 2, out - 1):
            want = (math.floor(fractions.Fraction(o * L, out)),
                    math.ceil(fractions.Fraction((o + 1) * L, out)))
            assert shapes.adaptive_pool_window(o, L, out) == want


def test_global_pooling_is_the_plane_mean_and_max():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 5, 6))
    np.testing.assert_allclose(deconv.adaptive_avg_pool2d(x, 1)[..., 0, 0], x.mean(axis=(2, 3)),
                               rtol=1e-14)
    out, idx = deconv.adaptive_max_pool2d(x, (1, 1))
    np.testing.assert_array_equal(out[..., 0, 0], x.max(axis=(2, 3)))
    np.testing.assert_array_equal(idx[..., 0, 0], x.reshape(2, 3, -1).argmax(axis=2))


@pytest.mark.parametrize("nd", ND)
def test_output_size_equal_to_the_input_is_the_identity(nd):
    x = np.random.default_rng(nd).standard_normal((2, 2) + (3, 4, 5)[:nd]).astype(np.float32)
    np.testing.assert_array_equal(_op("avg", nd)(x, x.shape[2:]), x)
    out, idx = _op("max", nd)(x, x.shape[2:])
    np.testing.assert_array_equal(out, x)
    np.testing.assert_array_equal(idx.reshape(4, -1), np.tile(np.arange(x[0, 0].size), (4, 1)))
    if nd > 1:
        np.testing.assert_array_equal(_op("avg", nd)(x, (None,) * nd), x)


def test_ties_go_to_the_first_maximum_in_row_major_order():
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 1, 2] = x[0, 0, 2, 0] = 1.0
    out, idx = deconv.adaptive_max_pool2d(x, 1)
    assert out.item() == 1.0 and idx.item() == 5
    out, idx = deconv.adaptive_max_pool3d(np.full((1, 1, 2, 2, 2), 7.0), 1)
    assert idx.item() == 0


def test_nan_wins_and_the_first_nan_takes_the_gradient():
    x = np.array([[[1.0, np.nan, 5.0, np.nan, 2.0, 0.0]]])
    out, idx = deconv.adaptive_max_pool1d(x, 2)        # windows [0, 3) and [3, 6)
    assert np.isnan(out).all()
    np.testing.assert_array_equal(idx, [[[1, 3]]])
    out, idx = deconv.adaptive_max_pool1d(x, 1)
    assert idx.item() == 1                              # PyTorch's CPU kernel reports 3
    g = deconv.adaptive_max_pool1d_backward(np.ones((1, 1, 1)), idx, x.shape)
    np.testing.assert_array_equal(g, [[[0, 1, 0, 0, 0, 0]]])
    avg = deconv.adaptive_avg_pool1d(x, 3)              # windows [0,2) [2,4) [4,6)
    np.testing.assert_array_equal(np.isnan(avg), [[[True, True, False]]])


def test_all_minus_inf_windows_report_their_first_element():
    x = np.full((1, 1, 2, 4), -np.inf, np.float32)
    x[0, 0, 1, 3] = 0.0
    out, idx = deconv.adaptive_max_pool2d(x, (1, 2))
    np.testing.assert_array_equal(out, [[[[-np.inf, 0.0]]]])
    np.testing.assert_array_equal(idx, [[[[0, 7]]]])


@pytest.mark.parametrize("nd", ND)
@pytest.mark.parametrize("dtype", DTYPES)
def test_empty_batch_and_channels(nd, dtype):
    for head in ((0, 2), (2, 0)):
        x = np.zeros(head + (3,) * nd, dtype)
        y = _op("avg", nd)(x, 2)
        assert y.shape == head + (2,) * nd and y.dtype == dtype
        assert _op("avg", nd, True)(y, x.shape).shape == x.shape
        out, idx = _op("max", nd)(x, 2)
        assert out.shape == idx.shape == head + (2,) * nd
        assert _op("max", nd, True)(out, idx, x.shape).shape == x.shape


def test_overlapping_windows_accumulate_in_backward():
    # output 3 over input 2: windows [0,1) [0,2) [1,2)
    g = deconv.adaptive_avg_pool1d_backward(np.array([[[1.0, 2.0, 4.0]]]), (1, 1, 2))
    np.testing.assert_array_equal(g, [[[2.0, 5.0]]])
    out, idx = deconv.adaptive_max_pool1d(np.array([[[3.0, 1.0]]]), 3)
    np.testing.assert_array_equal(idx, [[[0, 0, 1]]])
    g = deconv.adaptive_max_pool1d_backward(np.array([[[1.0, 2.0, 4.0]]]), idx, (1, 1, 2))
    np.testing.assert_array_equal(g, [[[3.0, 4.0]]])


@pytest.mark.parametrize("nd", ND)
def test_any_memory_layout_gives_the_contiguous_result(nd):
    rng = np.random.default_rng(5)
    base = rng.standard_normal((3, 4) + (6, 7, 8)[:nd])
    odd = base[::-1, :, ..., ::2]
    odd.flags.writeable = False
    ref = np.ascontiguousarray(odd)
    np.testing.assert_array_equal(_op("avg", nd)(odd, 2), _op("avg", nd)(ref, 2))
    out, idx = _op("max", nd)(odd, 3)
    np.testing.assert_array_equal(idx, _op("max", nd)(ref, 3)[1])
    g = np.asfortranarray(out)
    np.testing.assert_array_equal(_op("max", nd, True)(g, idx[..., ::1], ref.shape),
                                  _op("max", nd, True)(np.ascontiguousarray(g), idx, ref.shape))
    np.testing.assert_array_equal(odd, ref)             # not mutated


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, size", [
    ((16, 32, 7, 7), 1),            # global pooling: one plane-wide window
    ((2, 3, 4, 5, 6), 1),
    ((16, 32, 20, 20), 5),          # windows that partition the plane
    ((16, 32, 20, 20), 7),          # overlapping windows, several planes per task
    ((2, 3, 5, 9, 7), (3, 4, 5)),   # overlapping along every axis, one plane per task
    ((3, 2, 4, 3), (6, 5)),         # more outputs than inputs
])
def test_avg_branches_match_the_reference(shape, size, dtype):
    rng = np.random.default_rng(7)
    x = rng.standard_normal(shape)
    nd = len(shape) - 2
    f, fb = _op("avg", nd), getattr(deconv, f"adaptive_avg_pool{nd}d_backward")
    y = getattr(reference, f"adaptive_avg_pool{nd}d")(x, size)
    g = rng.standard_normal(y.shape)
    gx = getattr(reference, f"adaptive_avg_pool{nd}d_backward")(g, shape)
    assert_close(f(x.astype(dtype), size), y, dtype)
    assert_close(fb(g.astype(dtype), shape), gx, dtype)


# ---------------------------------------------------------------------------
# bitwise determinism across thread counts
# ---------------------------------------------------------------------------

_DETERMINISM_SCRIPT = r"""
import hashlib, json, numpy as np, deconv
rng = np.random.default_rng(0)
outs = []
for dt in (np.float32, np.float64):
    x = rng.standard_normal((4, 8, 9, 10, 11)).astype(dt)
    for nd, xs, size in ((1, x.reshape(4, 8, -1), 37), (2, x.reshape(4, 8, 90, 11), (13, 4)),
                         (3, x, (4, 13, 5))):
        a = getattr(deconv, f"adaptive_avg_pool{nd}d")(xs, size)
        m, i = getattr(deconv, f"adaptive_max_pool{nd}d")(xs, size)
        outs += [a, getattr(deconv, f"adaptive_avg_pool{nd}d_backward")(a, xs.shape), m, i,
                 getattr(deconv, f"adaptive_max_pool{nd}d_backward")(m, i, xs.shape)]
    # 512 planes: global pooling, windows that partition the plane, overlapping windows
    # on tasks of several planes
    big = rng.standard_normal((16, 32, 20, 20)).astype(dt)
    for size in (1, 5, 7):
        a = deconv.adaptive_avg_pool2d(big, size)
        outs += [a, deconv.adaptive_avg_pool2d_backward(a, big.shape)]
digest = json.dumps([hashlib.sha256(o.tobytes()).hexdigest() for o in outs])
print(digest)
"""


def test_bitwise_identical_across_thread_counts():
    one = run_hashes(_DETERMINISM_SCRIPT, NUMBA_NUM_THREADS=1)
    two = run_hashes(_DETERMINISM_SCRIPT, NUMBA_NUM_THREADS=2)
    assert one == two


# ---------------------------------------------------------------------------
# argument errors: raised before any work, naming the argument
# ---------------------------------------------------------------------------

X3 = np.zeros((2, 3, 6), np.float32)
X4 = np.zeros((2, 3, 6, 6), np.float32)
X5 = np.zeros((2, 3, 4, 4, 4), np.float32)
G4 = np.zeros((2, 3, 3, 3), np.float32)
I4 = np.zeros((2, 3, 3, 3), np.int64)

BAD_CALLS = [
    ("x 3-D for 2-D op", lambda: deconv.adaptive_avg_pool2d(X3, 2), ValueError, r"x must be 4-D"),
    ("x 4-D for 3-D op", lambda: deconv.adaptive_max_pool3d(X4, 2), ValueError,
     r"x must be 5-D.*\(N, C, D, H, W\)"),
    ("x 5-D for 1-D op", lambda: deconv.adaptive_max_pool1d(X5, 2), ValueError, r"x must be 3-D"),
    ("x empty axis", lambda: deconv.adaptive_avg_pool2d(np.zeros((1, 1, 0, 3)), 2), ValueError,
     r"x must have spatial sizes >= 1"),
    ("x int dtype", lambda: deconv.adaptive_avg_pool1d(X3.astype(np.int32), 2), TypeError, r"x must"),
    ("output_size 0", lambda: deconv.adaptive_avg_pool2d(X4, 0), ValueError,
     r"output_size must have sizes >= 1 \(or None\), got 0"),
    ("output_size negative entry", lambda: deconv.adaptive_max_pool3d(X5, (2, -1, 2)), ValueError,
     r"output_size must have sizes >= 1"),
    ("output_size length", lambda: deconv.adaptive_avg_pool2d(X4, (2, 2, 2)), ValueError,
     r"output_size must be an int or a sequence of 2 ints or None"),
    ("output_size one entry for 2-D (as torch)", lambda: deconv.adaptive_max_pool2d(X4, (2,)),
     ValueError, r"output_size must be .* sequence of 2 ints.*\(1 entries\)"),
    ("output_size None", lambda: deconv.adaptive_avg_pool2d(X4, None), TypeError,
     r"output_size must be .*None only as an entry"),
    ("output_size None in 1-D (as torch)", lambda: deconv.adaptive_avg_pool1d(X3, (None,)),
     TypeError, r"output_size must be an int or a sequence of 1 ints \(None is allowed in 2-D"),
    ("output_size float", lambda: deconv.adaptive_max_pool1d(X3, 2.0), TypeError,
     r"output_size must be an int"),
    ("output_size float entry", lambda: deconv.adaptive_max_pool2d(X4, (2, 2.0)), TypeError,
     r"output_size must be an int"),
    ("output_size bool", lambda: deconv.adaptive_avg_pool1d(X3, True), TypeError,
     r"output_size must be an int"),
    ("output_size huge", lambda: deconv.adaptive_avg_pool1d(X3, 2**40), ValueError,
     r"output_size must be at most 2147483647"),
    ("return_indices not a bool", lambda: deconv.adaptive_max_pool2d(X4, 2, return_indices=1),
     TypeError, r"return_indices must be a bool"),
    ("output over the byte cap", lambda: deconv.adaptive_max_pool2d(X4, 2**20), ValueError,
     r"outputs \(values, indices\) of shapes \(2, 3, 1048576, 1048576\) .* would take"),
    ("avg bwd input_shape ndim", lambda: deconv.adaptive_avg_pool2d_backward(G4, (2, 3, 6)),
     ValueError, r"input_shape must be a sequence of 4 ints"),
    ("avg bwd input_shape batch", lambda: deconv.adaptive_avg_pool2d_backward(G4, (1, 3, 6, 6)),
     ValueError, r"input_shape.*inconsistent with grad_output"),
    ("avg bwd input_shape 0", lambda: deconv.adaptive_avg_pool2d_backward(G4, (2, 3, 0, 6)),
     ValueError, r"input_shape must have spatial sizes >= 1"),
    ("avg bwd grad_output ndim", lambda: deconv.adaptive_avg_pool3d_backward(G4, (2, 3, 4, 4, 4)),
     ValueError, r"grad_output must be 5-D"),
    ("max bwd indices shape", lambda: deconv.adaptive_max_pool2d_backward(G4, I4[..., :2],
                                                                          (2, 3, 6, 6)),
     ValueError, r"indices must have shape"),
    ("max bwd indices dtype", lambda: deconv.adaptive_max_pool2d_backward(G4, G4, (2, 3, 6, 6)),
     TypeError, r"indices must have dtype int64"),
    ("max bwd indices range", lambda: deconv.adaptive_max_pool2d_backward(G4, I4 + 36,
                                                                          (2, 3, 6, 6)),
     ValueError, r"indices must lie in \[0, 36\).*got 36"),
    ("max bwd negative index", lambda: deconv.adaptive_max_pool1d_backward(
        np.zeros((1, 1, 2)), np.array([[[0, -1]]]), (1, 1, 4)),
     ValueError, r"indices must lie in \[0, 4\).*got -1 at position \(0, 0, 1\)"),
]


@pytest.mark.parametrize("call, exc, match", [c[1:] for c in BAD_CALLS],
                         ids=[c[0] for c in BAD_CALLS])
def test_bad_arguments_raise_naming_the_argument(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_checks_run_before_any_copy_or_allocation():
    """A broadcast view of 2**36 float64 elements is refused by its checks alone."""
    huge = np.broadcast_to(np.zeros(()), (2**12, 2**12, 2**6, 2**6))
    with pytest.raises(ValueError, match=r"output_size must have sizes >= 1"):
        deconv.adaptive_avg_pool2d(huge, (0, 1))
    with byte_cap(2**20), pytest.raises(ValueError, match=r"output of shape .* would take"):
        deconv.adaptive_avg_pool2d(huge, 1)


# ---------------------------------------------------------------------------
# layers
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("nd", ND)
@pytest.mark.parametrize("dtype", DTYPES)
def test_layers_match_the_functional_ops(nd, dtype):
    rng = np.random.default_rng(nd)
    x = rng.standard_normal((2, 3) + (5, 6, 7)[:nd]).astype(dtype)
    size = (3, None, 4)[:nd] if nd > 1 else 4
    avg = getattr(nn, f"AdaptiveAvgPool{nd}d")(size)
    y = avg(x)
    np.testing.assert_array_equal(y, _op("avg", nd)(x, size))
    g = rng.standard_normal(y.shape).astype(dtype)
    np.testing.assert_array_equal(avg.backward(g), _op("avg", nd, True)(g, x.shape))
    mx = getattr(nn, f"AdaptiveMaxPool{nd}d")(size)
    y = mx(x)
    out, idx = _op("max", nd)(x, size)
    np.testing.assert_array_equal(y, out)
    np.testing.assert_array_equal(mx.last_indices, idx)
    np.testing.assert_array_equal(mx.backward(g), _op("max", nd, True)(g, idx, x.shape))
    both = getattr(nn, f"AdaptiveMaxPool{nd}d")(size, return_indices=True)
    y2, idx2 = both(x)
    np.testing.assert_array_equal(y2, out)
    np.testing.assert_array_equal(idx2, idx)
    np.testing.assert_array_equal(both.backward(g), mx.backward(g))


def test_layer_errors_name_the_layer_and_the_argument():
    with pytest.raises(ValueError, match=r"AdaptiveAvgPool2d: output_size must have sizes >= 1"):
        nn.AdaptiveAvgPool2d((0, 2))
    with pytest.raises(TypeError, match=r"AdaptiveMaxPool1d: return_indices must be a bool"):
        nn.AdaptiveMaxPool1d(2, return_indices="yes")
    with pytest.raises(ValueError, match=r"AdaptiveMaxPool3d.*x must be 5-D"):
        nn.AdaptiveMaxPool3d(2)(X4)
    layer = nn.AdaptiveAvgPool1d(3)
    with pytest.raises(RuntimeError, match=r"backward\(\) called before forward"):
        layer.backward(np.zeros((2, 3, 3)))
    layer(X3)
    with pytest.raises(ValueError, match=r"AdaptiveAvgPool1d.*grad_output must have the shape"):
        layer.backward(np.zeros((2, 3, 4), np.float32))


def test_layer_repr_and_sequential_use():
    model = nn.Sequential(nn.AdaptiveMaxPool2d((2, None)), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    assert "AdaptiveMaxPool2d(output_size=(2, None))" in repr(model)
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5))
    y = model(x)
    assert y.shape == (2, 3)
    gx = model.backward(np.ones_like(y))
    assert gx.shape == x.shape
    # each (n, c) plane sends 1/5 to the maximum of each of its two row-windows' columns
    np.testing.assert_allclose(gx.reshape(6, -1).sum(axis=1), 1.0)


_SIGNATURES_SCRIPT = r"""
import json, numpy as np, deconv
from deconv.kernels import adaptive as kernels
rng = np.random.default_rng(0)
for dt in (np.float32, np.float64):
    x = np.asfortranarray(rng.standard_normal((2, 3, 6, 7)).astype(dt))
    x.flags.writeable = False
    deconv.adaptive_avg_pool2d(x[:, :, ::2], 3)
    deconv.adaptive_avg_pool3d_backward(x[:, :, None].astype(x.dtype.newbyteorder(">")),
                                        (2, 3, 1, 6, 7))
    out, idx = deconv.adaptive_max_pool2d(x, (3, None))
    deconv.adaptive_max_pool1d(x[:, :, 0], 4)
print(json.dumps({name: [str(s) for s in getattr(kernels, name).signatures]
                  for name in ("adaptive_avg_pool3d_forward", "adaptive_avg_pool3d_backward",
                               "adaptive_max_pool3d_forward")}))
"""


def test_each_kernel_compiles_one_signature_per_dtype():
    """Odd layouts, read-only and big-endian inputs and every nd reach the kernels as
    C-contiguous native arrays of one rank: one compilation per dtype."""
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-c", _SIGNATURES_SCRIPT], check=True,
                         capture_output=True, text=True, timeout=900,
                         env=dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(
                             os.path.abspath(deconv.__file__)))))
    for name, sigs in json.loads(out.stdout).items():
        assert len(sigs) == 2, (name, sigs)
        assert {s.split(",")[0] for s in sigs} == {"(Array(float32", "(Array(float64"}, name
