"""unfold / fold (im2col / col2im), forward and backward, and their layers (issue 13).

Against independent oracles: PyTorch's outputs recorded in
``tests/data/fold_cases.npz`` (``tests/make_fold_fixtures.py``; torch is not
needed here), the explicit block loops of :mod:`deconv.reference` (hypothesis
property tests, both dtypes), the adjoint identity ``<unfold(x), y> ==
<x, fold(y)>``, float64 central differences, and deconv's own convolutions
through the identity the notebooks teach (a convolution is a matrix product
with the unfolded input; a transposed convolution folds a matrix product).
"""

import inspect
import json
import os

import numba
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import deconv
from deconv import nn, reference
from deconv.gradcheck import numerical_gradient
from deconv.kernels import fold as fold_kernels
from tolerances import FINITE_DIFFERENCE as FD
from tolerances import assert_close

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "fold_cases.npz")
DTYPES = [np.float32, np.float64]


# ---------------------------------------------------------------------------
# valid configurations, built directly
# ---------------------------------------------------------------------------

@st.composite
def block_configs(draw, max_size=4):
    """Block options and an image size with at least one block per axis -> dict."""
    k = tuple(draw(st.integers(1, 3)) for _ in range(2))
    d = tuple(draw(st.integers(1, 3)) for _ in range(2))
    p = tuple(draw(st.integers(0, 3)) for _ in range(2))
    s = tuple(draw(st.integers(1, 4)) for _ in range(2))
    size = tuple(max(1, di * (ki - 1) + 1 - 2 * pi) + draw(st.integers(0, max_size))
                 for ki, di, pi in zip(k, d, p))
    blocks = tuple((n + 2 * pi - di * (ki - 1) - 1) // si + 1
                   for n, ki, di, pi, si in zip(size, k, d, p, s))
    N, C = draw(st.integers(0, 2)), draw(st.integers(0, 3))
    return dict(kw=dict(kernel_size=k, dilation=d, padding=p, stride=s), size=size,
                image=(N, C) + size, columns=(N, C * k[0] * k[1], blocks[0] * blocks[1]),
                seed=draw(st.integers(0, 2**16)))


def _rand(cfg, shape, dtype=np.float64, salt=0):
    return np.random.default_rng(cfg["seed"] + salt).standard_normal(shape).astype(dtype)


# ---------------------------------------------------------------------------
# PyTorch fixtures
# ---------------------------------------------------------------------------

def _fixture_cases():
    with np.load(DATA) as data:
        names = sorted({k.split("/")[0] for k in data.files})
        return [(json.loads(str(data[f"{n}/config"])), {key: data[f"{n}/{key}"]
                 for key in ("x", "out", "grad_output", "grad_x")}) for n in names]


FIXTURES = _fixture_cases()


def _run(module, config, arrays, backward):
    kw = dict(config["kwargs"])
    if config["op"] == "unfold":
        if backward:
            return module.unfold_backward(arrays["grad_output"], arrays["x"].shape,
                                          kw.pop("kernel_size"), **kw)
        return module.unfold(arrays["x"], **kw)
    size = tuple(kw.pop("output_size"))
    if backward:
        return module.fold_backward(arrays["grad_output"], **kw)
    return module.fold(arrays["x"], size, **kw)


def test_the_fixture_covers_both_ops_with_every_option():
    ops = {c["op"] for c, _ in FIXTURES}
    assert ops == {"unfold", "fold"}
    for op in ops:
        used = set().union(*(c["kwargs"] for c, _ in FIXTURES if c["op"] == op))
        assert {"kernel_size", "dilation", "padding", "stride"} <= used
    assert os.path.getsize(DATA) < 300_000


@pytest.mark.parametrize("index", range(len(FIXTURES)))
def test_reference_matches_pytorch(index):
    config, arrays = FIXTURES[index]
    np.testing.assert_allclose(_run(reference, config, arrays, False), arrays["out"],
                               rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(_run(reference, config, arrays, True), arrays["grad_x"],
                               rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("index", range(len(FIXTURES)))
def test_deconv_matches_pytorch(index, dtype):
    config, arrays = FIXTURES[index]
    cast = {k: v.astype(dtype) for k, v in arrays.items()}
    out = _run(deconv, config, cast, False)
    grad = _run(deconv, config, cast, True)
    assert out.dtype == dtype and grad.dtype == dtype
    assert_close(out, arrays["out"], dtype)
    assert_close(grad, arrays["grad_x"], dtype)


# ---------------------------------------------------------------------------
# property tests against the reference
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@given(cfg=block_configs())
def test_unfold_and_its_backward_match_the_reference(cfg, dtype):
    x = _rand(cfg, cfg["image"], dtype)
    cols = deconv.unfold(x, **cfg["kw"])
    assert cols.dtype == dtype
    # a copy: exact in either dtype
    np.testing.assert_array_equal(cols, reference.unfold(x, **cfg["kw"]))
    g = _rand(cfg, cfg["columns"], dtype, salt=1)
    kw = dict(cfg["kw"])
    got = deconv.unfold_backward(g, x.shape, kw.pop("kernel_size"), **kw)
    assert got.dtype == dtype
    assert_close(got, reference.unfold_backward(g, x.shape, **cfg["kw"]), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@given(cfg=block_configs())
def test_fold_and_its_backward_match_the_reference(cfg, dtype):
    cols = _rand(cfg, cfg["columns"], dtype)
    out = deconv.fold(cols, cfg["size"], **cfg["kw"])
    assert out.dtype == dtype and out.shape == cfg["image"]
    assert_close(out, reference.fold(cols, cfg["size"], **cfg["kw"]), dtype)
    g = _rand(cfg, cfg["image"], dtype, salt=1)
    got = deconv.fold_backward(g, **cfg["kw"])
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, reference.fold_backward(g, **cfg["kw"]))


@given(cfg=block_configs())
def test_fold_is_the_adjoint_of_unfold(cfg):
    x = _rand(cfg, cfg["image"])
    y = _rand(cfg, cfg["columns"], salt=1)
    lhs = np.vdot(deconv.unfold(x, **cfg["kw"]), y)
    rhs = np.vdot(x, deconv.fold(y, cfg["size"], **cfg["kw"]))
    assert abs(lhs - rhs) <= 1e-12 * max(1.0, abs(lhs))


@given(cfg=block_configs())
def test_each_backward_is_the_other_op(cfg):
    kw = dict(cfg["kw"])
    k = kw.pop("kernel_size")
    y = _rand(cfg, cfg["columns"])
    np.testing.assert_array_equal(deconv.unfold_backward(y, cfg["image"], k, **kw),
                                  deconv.fold(y, cfg["size"], k, **kw))
    x = _rand(cfg, cfg["image"], salt=1)
    np.testing.assert_array_equal(deconv.fold_backward(x, k, **kw), deconv.unfold(x, k, **kw))


def test_row_order_is_channel_then_tap_row_then_tap_column():
    # x[n, c, h, w] = 1000c + 10h + w: each column entry says where it came from
    c, h, w = np.meshgrid(np.arange(2), np.arange(4), np.arange(5), indexing="ij")
    x = (1000.0 * c + 10 * h + w)[None]
    cols = deconv.unfold(x, (2, 3), stride=(2, 1), dilation=(1, 2))   # blocks 2 x 1
    assert cols.shape == (1, 2 * 2 * 3, 2)
    for ch in range(2):
        for i in range(2):
            for j in range(3):
                row = (ch * 2 + i) * 3 + j
                for oh in range(2):
                    assert cols[0, row, oh] == 1000 * ch + 10 * (2 * oh + i) + 2 * j


def test_fold_of_unfold_counts_the_blocks_covering_each_pixel():
    x = np.ones((1, 1, 4, 4))
    counts = deconv.fold(deconv.unfold(x, 2, padding=1), (4, 4), 2, padding=1)
    np.testing.assert_array_equal(counts[0, 0], np.full((4, 4), 4.0))
    counts = deconv.fold(deconv.unfold(x, 3, stride=2), (4, 4), 3, stride=2)   # one block
    np.testing.assert_array_equal(counts[0, 0], np.pad(np.ones((3, 3)), ((0, 1), (0, 1))))


def test_non_finite_values_land_only_where_they_are_copied_or_summed():
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 1, 2] = np.nan
    x[0, 0, 3, 0] = np.inf
    kw = dict(kernel_size=2, padding=1, stride=2)
    np.testing.assert_array_equal(deconv.unfold(x, **kw), reference.unfold(x, **kw))
    cols = reference.unfold(x, **kw)
    np.testing.assert_array_equal(deconv.fold(cols, (4, 4), **kw),
                                  reference.fold(cols, (4, 4), **kw))
    assert np.isnan(deconv.fold(cols, (4, 4), **kw)).sum() == 1


# ---------------------------------------------------------------------------
# float64 central differences
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("kw", [
    dict(kernel_size=2),
    dict(kernel_size=(3, 2), dilation=(1, 2), padding=(1, 0), stride=(2, 1)),
    dict(kernel_size=3, padding=2, stride=3),
])
def test_backwards_match_central_differences(kw):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 2, 5, 6))
    cols = deconv.unfold(x, **kw)
    r = rng.standard_normal(cols.shape)
    options = dict(kw)
    k = options.pop("kernel_size")
    num = numerical_gradient(lambda: np.vdot(deconv.unfold(x, **kw), r), x, eps=FD["eps"])
    np.testing.assert_allclose(deconv.unfold_backward(r, x.shape, k, **options), num,
                               rtol=FD["rtol"], atol=FD["atol"])
    y = rng.standard_normal(cols.shape)
    q = rng.standard_normal(x.shape)
    num = numerical_gradient(lambda: np.vdot(deconv.fold(y, (5, 6), **kw), q), y, eps=FD["eps"])
    np.testing.assert_allclose(deconv.fold_backward(q, k, **options), num,
                               rtol=FD["rtol"], atol=FD["atol"])


# ---------------------------------------------------------------------------
# the view the notebooks teach: convolution as a matrix product
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@given(cfg=block_configs(), c_out=st.integers(1, 3))
def test_conv2d_is_the_weight_matrix_times_the_unfolded_input(cfg, c_out, dtype):
    N, C = max(cfg["image"][0], 1), max(cfg["image"][1], 1)
    k, d, p, s = (cfg["kw"][n] for n in ("kernel_size", "dilation", "padding", "stride"))
    x = _rand(cfg, (N, C) + cfg["size"], dtype)
    w = _rand(cfg, (c_out, C) + k, dtype, salt=1)
    y = deconv.conv2d(x, w, stride=s, padding=p, dilation=d)
    cols = deconv.unfold(x, k, dilation=d, padding=p, stride=s)            # (N, C*kH*kW, L)
    product = (w.reshape(c_out, -1) @ cols).reshape(y.shape)               # (N, C_out, H_out, W_out)
    assert_close(product, y.astype(np.float64), dtype)


@st.composite
def transposed_configs(draw):
    """A conv_transpose2d configuration with output_padding < stride -> dict.

    The input size is built so that the output size is >= 1; that output then
    has exactly one sliding block per input position (output_padding < stride).
    """
    k = tuple(draw(st.integers(1, 3)) for _ in range(2))
    d = tuple(draw(st.integers(1, 3)) for _ in range(2))
    p = tuple(draw(st.integers(0, 3)) for _ in range(2))
    s = tuple(draw(st.integers(1, 4)) for _ in range(2))
    op = tuple(draw(st.integers(0, si - 1)) for si in s)
    size_in = tuple(max(1, -(-(2 * pi - di * (ki - 1) - opi) // si) + 1) + draw(st.integers(0, 3))
                    for ki, di, pi, si, opi in zip(k, d, p, s, op))
    return dict(k=k, d=d, p=p, s=s, op=op, size_in=size_in, N=draw(st.integers(1, 2)),
                C_in=draw(st.integers(1, 3)), seed=draw(st.integers(0, 2**16)))


@pytest.mark.parametrize("dtype", DTYPES)
@given(cfg=transposed_configs(), c_out=st.integers(1, 3))
def test_conv_transpose2d_is_the_fold_of_the_transposed_weight_times_the_input(cfg, c_out,
                                                                              dtype):
    k, d, p, s, op = cfg["k"], cfg["d"], cfg["p"], cfg["s"], cfg["op"]
    N, C_in = cfg["N"], cfg["C_in"]
    x = _rand(cfg, (N, C_in) + cfg["size_in"], dtype)
    w = _rand(cfg, (C_in, c_out) + k, dtype, salt=1)
    y = deconv.conv_transpose2d(x, w, stride=s, padding=p, output_padding=op, dilation=d)
    cols = w.reshape(C_in, -1).T @ x.reshape(N, C_in, -1)                 # (N, C_out*kH*kW, L)
    folded = deconv.fold(cols, y.shape[2:], k, dilation=d, padding=p, stride=s)
    assert_close(folded, y.astype(np.float64), dtype, scale=4)


# ---------------------------------------------------------------------------
# determinism, inputs, dtypes
# ---------------------------------------------------------------------------

def test_results_are_bitwise_identical_across_thread_counts():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 8, 40, 40)).astype(np.float32)
    kw = dict(kernel_size=5, padding=2, stride=1)
    cols = deconv.unfold(x, **kw)
    assert cols.size > 1 << 15                       # large enough to run in parallel
    results = []
    previous = numba.get_num_threads()
    try:
        for threads in sorted({1, numba.config.NUMBA_NUM_THREADS}):
            numba.set_num_threads(threads)
            results.append((deconv.unfold(x, **kw), deconv.fold(cols, (40, 40), **kw)))
    finally:
        numba.set_num_threads(previous)
    for u, f in results[1:]:
        assert u.tobytes() == results[0][0].tobytes()
        assert f.tobytes() == results[0][1].tobytes()


@pytest.mark.parametrize("dtype", DTYPES)
def test_inputs_are_not_written_and_odd_layouts_give_the_same_result(dtype):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 6, 7)).astype(dtype)
    kw = dict(kernel_size=(2, 3), padding=1, stride=(1, 2))
    cols = deconv.unfold(x, **kw)
    x_before, cols_before = x.copy(), cols.copy()
    image = deconv.fold(cols, (6, 7), **kw)
    np.testing.assert_array_equal(cols, cols_before)
    np.testing.assert_array_equal(deconv.unfold(x, **kw), cols)
    np.testing.assert_array_equal(x, x_before)
    fortran = np.asfortranarray(x)
    fortran.flags.writeable = False
    np.testing.assert_array_equal(deconv.unfold(fortran, **kw), cols)
    np.testing.assert_array_equal(deconv.fold(cols.astype(cols.dtype.newbyteorder(">")),
                                              (6, 7), **kw), image)


def test_empty_batch_and_channels():
    assert deconv.unfold(np.zeros((0, 2, 3, 3)), 2).shape == (0, 8, 4)
    assert deconv.unfold(np.zeros((2, 0, 3, 3)), 2).shape == (2, 0, 4)
    assert deconv.fold(np.zeros((0, 8, 4)), 3, 2).shape == (0, 2, 3, 3)
    assert deconv.fold(np.zeros((2, 0, 4)), 3, 2).shape == (2, 0, 3, 3)


def test_backward_options_are_keyword_only():
    for name in ("unfold_backward", "fold_backward"):
        params = inspect.signature(getattr(deconv, name)).parameters.values()
        keyword = {p.name for p in params if p.kind is p.KEYWORD_ONLY}
        assert keyword == {"dilation", "padding", "stride"}, name
    with pytest.raises(TypeError):
        deconv.fold_backward(np.zeros((1, 1, 3, 3)), 2, 1)


# ---------------------------------------------------------------------------
# bad input: an error naming the argument, before any work
# ---------------------------------------------------------------------------

@pytest.fixture
def no_kernels(monkeypatch):
    """The kernels fail the test if reached: every refusal comes first."""
    def refuse(*args):
        raise AssertionError("a kernel ran before the arguments were refused")
    monkeypatch.setattr(fold_kernels, "unfold_forward", refuse)
    monkeypatch.setattr(fold_kernels, "fold_forward", refuse)


X = np.zeros((1, 2, 4, 4))
COLS = np.zeros((1, 8, 9))          # unfold(X, 2)
HUGE = np.broadcast_to(np.zeros(()), (2**12, 2**10, 2**10))   # 2**32 elements, no memory

BAD = [
    (lambda: deconv.unfold(X[0], 2), ValueError,
     r"x must be 4-D .*got shape \(2, 4, 4\); for a single sample pass x\[None\]"),
    (lambda: deconv.unfold(X.astype(np.int64), 2), TypeError, r"x must have dtype float32"),
    (lambda: deconv.unfold(X, 0), ValueError, r"kernel_size must be >= 1"),
    (lambda: deconv.unfold(X, 2.0), TypeError, r"kernel_size must be an int"),
    (lambda: deconv.unfold(X, (2, 2, 2)), ValueError, r"kernel_size must be an int or a sequence of 2"),
    (lambda: deconv.unfold(X, 2, dilation=0), ValueError, r"dilation must be >= 1"),
    (lambda: deconv.unfold(X, 2, padding=-1), ValueError, r"padding must be >= 0"),
    (lambda: deconv.unfold(X, 2, stride=True), TypeError, r"stride must be an int"),
    (lambda: deconv.unfold(X, 5), ValueError,
     r"kernel_size=5 .*larger than the padded input .*axis H of x with shape \(1, 2, 4, 4\)"),
    (lambda: deconv.unfold(X, 1, padding=2**30), ValueError, r"output of shape .* over the cap"),
    (lambda: deconv.fold(COLS[0], 4, 2), ValueError,
     r"x must be 3-D with layout \(N, C\*kH\*kW, L\), .*pass x\[None\]"),
    (lambda: deconv.fold(COLS, 4, 3), ValueError,
     r"x must have a number of rows \(axis 1\) divisible by kH\*kW = 9 \(kernel_size=\(3, 3\)\)"),
    (lambda: deconv.fold(COLS, 5, 2), ValueError,
     r"x must have L = 4 \* 4 = 16 columns \(axis 2\), the sliding blocks of "
     r"output_size=\(5, 5\) with kernel_size=\(2, 2\), dilation=\(1, 1\), padding=\(0, 0\), "
     r"stride=\(1, 1\), got shape \(1, 8, 9\)"),
    (lambda: deconv.fold(COLS, 0, 2), ValueError, r"output_size must be >= 1"),
    (lambda: deconv.fold(COLS, None, 2), TypeError, r"output_size must be an int"),
    (lambda: deconv.fold(COLS, 1, 2), ValueError, r"kernel_size=2 .*axis H of output_size=\(1, 1\)"),
    (lambda: deconv.fold(HUGE, 4, 2), ValueError, r"x must have L = 3 \* 3 = 9 columns"),
    (lambda: deconv.fold(HUGE, 4, 3), ValueError, r"x must have a number of rows"),
    (lambda: deconv.unfold_backward(COLS, (1, 2, 4), 2), ValueError,
     r"input_shape must be a sequence of 4 ints.*\(1, \*input_shape\)"),
    (lambda: deconv.unfold_backward(COLS, (1, 2, 0, 4), 2), ValueError,
     r"input_shape must have spatial sizes >= 1"),
    (lambda: deconv.unfold_backward(COLS, (1, 3, 4, 4), 2), ValueError,
     r"grad_output must have shape \(1, 12, 9\) \(N, C\*kH\*kW, L\), the unfold output for "
     r"input_shape=\(1, 3, 4, 4\)"),
    (lambda: deconv.unfold_backward(COLS.astype(np.float16), X.shape, 2), TypeError,
     r"grad_output must have dtype float32 or float64"),
    (lambda: deconv.unfold_backward(HUGE, X.shape, 2), ValueError,
     r"grad_output must have shape \(1, 8, 9\)"),
    (lambda: deconv.fold_backward(X[0], 2), ValueError, r"grad_output must be 4-D .*grad_output\[None\]"),
    (lambda: deconv.fold_backward(X, 2, stride=0), ValueError, r"stride must be >= 1"),
    (lambda: deconv.fold_backward(X, 9), ValueError, r"axis H of grad_output with shape"),
]


@pytest.mark.parametrize("call, error, match", BAD)
def test_bad_input_is_refused_naming_the_argument_before_any_work(no_kernels, call, error,
                                                                  match):
    with pytest.raises(error, match=match):
        call()


# ---------------------------------------------------------------------------
# layers
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_layers_run_the_functional_ops_forward_and_backward(dtype):
    rng = np.random.default_rng(5)
    kw = dict(dilation=(1, 2), padding=1, stride=(2, 1))
    x = rng.standard_normal((2, 3, 6, 7)).astype(dtype)
    unfold = nn.Unfold((2, 3), **kw)
    cols = unfold(x)
    np.testing.assert_array_equal(cols, deconv.unfold(x, (2, 3), **kw))
    g = rng.standard_normal(cols.shape).astype(dtype)
    np.testing.assert_array_equal(unfold.backward(g),
                                  deconv.unfold_backward(g, x.shape, (2, 3), **kw))
    fold = nn.Fold((6, 7), (2, 3), **kw)
    image = fold(g)
    assert image.dtype == dtype
    np.testing.assert_array_equal(image, deconv.fold(g, (6, 7), (2, 3), **kw))
    np.testing.assert_array_equal(fold.backward(x), deconv.fold_backward(x, (2, 3), **kw))
    assert repr(fold) == ("Fold(output_size=(6, 7), kernel_size=(2, 3), dilation=(1, 2), "
                          "padding=(1, 1), stride=(2, 1))")
    assert repr(nn.Unfold(3)) == "Unfold(kernel_size=(3, 3))"


def test_layers_check_their_arguments_and_name_themselves():
    with pytest.raises(ValueError, match=r"^Unfold: kernel_size must be >= 1"):
        nn.Unfold(0)
    with pytest.raises(ValueError, match=r"^Fold: output_size must be >= 1"):
        nn.Fold(0, 2)
    with pytest.raises(TypeError, match=r"^Fold: padding must be an int"):
        nn.Fold(4, 2, padding=0.5)
    with pytest.raises(ValueError, match=r"^Fold\(output_size=\(4, 4\), kernel_size=\(2, 2\)\): "
                                         r"x must have L = 3 \* 3 = 9 columns"):
        nn.Fold(4, 2)(np.zeros((1, 8, 4)))
    with pytest.raises(ValueError, match=r"^Unfold\(kernel_size=\(2, 2\)\): x must be 4-D .*"
                                         r"pass x\[None\]"):
        nn.Unfold(2)(np.zeros((2, 4, 4)))
    layer = nn.Unfold(2)
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(np.zeros((1, 8, 9)))
    layer(X)
    with pytest.raises(ValueError, match=r"grad_output must have the shape of the last "
                                         r"forward's output \(1, 8, 9\)"):
        layer.backward(np.zeros((1, 8, 8)))


def test_unfold_then_fold_layers_pass_gradcheck():
    from deconv import gradcheck
    net = nn.Sequential(nn.Unfold(2, padding=1), nn.Fold(3, 2, padding=1))
    x = np.random.default_rng(6).standard_normal((2, 2, 3, 3))
    assert gradcheck(net, x)
