"""The functional API meets the habits of a PyTorch user.

One test (or one small group) per habit: backward options are keyword-only
and a conv backward given the forward's bias says so; ``deconv.gradcheck`` is
callable and raises or prints as asked; lists, tuples, memoryviews and
objects with ``__array__`` are arrays to every op; an unbatched input is
refused with a hint; and one mistake gets one message from every op, since
every check lives in :mod:`deconv.functional.validation`.
"""

import inspect

import numpy as np
import pytest

import deconv
from deconv import nn

FORWARDS = [
    "conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d",
    "max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d",
    "max_unpool1d", "max_unpool2d",
    "upsample_nearest1d", "upsample_nearest2d", "upsample_bilinear2d",
    "pixel_shuffle", "pixel_unshuffle",
]
# what a backward takes positionally besides grad_output and the forward's required arguments
BACKWARD_EXTRA = {"max_pool": ["indices", "input_shape"], "avg_pool": ["input_shape"],
                  "upsample": ["input_shape"]}

RNG = np.random.default_rng(0)


def _randn(*shape):
    return RNG.standard_normal(shape)


# ---------------------------------------------------------------------------
# habit 1: backward options are keyword-only
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", FORWARDS)
def test_backward_takes_arrays_positionally_and_options_by_keyword(name):
    forward = inspect.signature(getattr(deconv, name)).parameters.values()
    backward = inspect.signature(getattr(deconv, name + "_backward")).parameters.values()
    required = [p.name for p in forward if p.default is inspect.Parameter.empty]
    options = {p.name for p in forward if p.default is not inspect.Parameter.empty}
    positional = [p.name for p in backward if p.kind is p.POSITIONAL_OR_KEYWORD]
    keyword = [p for p in backward if p.kind is p.KEYWORD_ONLY]
    extra = next((v for k, v in BACKWARD_EXTRA.items() if name.startswith(k)), [])
    assert positional[0] == "grad_output"
    assert all(p.default is inspect.Parameter.empty
               for p in backward if p.kind is p.POSITIONAL_OR_KEYWORD), name
    assert all(p.default is not inspect.Parameter.empty for p in keyword), name
    assert len(positional) + len(keyword) == len(backward)
    # what the forward required (x's shape alone, input_shape, where that suffices; max
    # pooling's indices stand for its window), never an option
    assert set(positional[1:]) <= set(extra) | set(required), name
    assert not set(positional) & options, name
    # input_grad (the conv backwards): the backward's own switch, "x needs no gradient"
    assert {p.name for p in keyword} - {"input_grad"} <= options, name


def test_a_positional_option_is_refused_by_python_and_a_bias_is_named():
    x, w = _randn(2, 3, 6, 6), _randn(4, 3, 3, 3)
    b = _randn(4)
    g = deconv.conv2d(x, w, b, padding=1)
    with pytest.raises(TypeError, match=r"conv2d_backward\(\) takes 3 positional arguments but 4 "
                                        r"were given"):
        deconv.conv2d_backward(g, x, w, 1)
    for bias in (b, None, b.tolist()):
        with pytest.raises(TypeError, match=r"conv2d_backward\(\) takes 3 positional arguments "
                                            r"\(grad_output, x, weight\) but 4 were given; .*looks "
                                            r"like the forward's bias.*returns grad_bias"):
            deconv.conv2d_backward(g, x, w, bias, padding=1)
    wt = _randn(3, 2, 3, 3)
    gt = deconv.conv_transpose2d(x, wt, stride=2)
    with pytest.raises(TypeError, match=r"conv_transpose2d_backward\(\).*forward's bias"):
        deconv.conv_transpose2d_backward(gt, x, wt, np.zeros(2), stride=2)
    with pytest.raises(TypeError, match=r"conv1d_backward\(\).*forward's bias"):
        deconv.conv1d_backward(g[..., 0], x[..., 0], w[..., 0], b)
    # by keyword, the same call works
    gx, gw, gb = deconv.conv2d_backward(g, x, w, padding=1)
    np.testing.assert_allclose(gb, g.sum(axis=(0, 2, 3)), rtol=1e-12)


def test_bilinear_backward_options_are_named_not_ordered():
    x = _randn(1, 2, 3, 4)
    g = _randn(1, 2, 6, 8)
    with pytest.raises(TypeError, match=r"takes 2 positional arguments but 3 were given"):
        deconv.upsample_bilinear2d_backward(g, x.shape, True)
    # the gradient of the forward called with the same keywords (the adjoint identity)
    for kw in (dict(scale_factor=2.0, align_corners=True), dict(scale_factor=2.0),
               dict(align_corners=True)):
        fkw = dict(kw) if "scale_factor" in kw else dict(kw, size=(6, 8))
        y = deconv.upsample_bilinear2d(x, **fkw)
        gi = deconv.upsample_bilinear2d_backward(g, x.shape, **kw)
        np.testing.assert_allclose(np.vdot(y, g), np.vdot(x, gi), rtol=1e-12)


# ---------------------------------------------------------------------------
# habit 2: deconv.gradcheck is a function too
# ---------------------------------------------------------------------------

def _wrong_backward(layer):
    right = layer.backward
    layer.backward = lambda grad_output: 2.0 * right(grad_output)
    return layer


def test_gradcheck_is_callable_raises_by_default_and_prints_when_asked(capsys):
    import deconv.gradcheck as g
    from deconv.gradcheck import GradcheckError, GradcheckReport, compare, gradcheck

    x = np.linspace(-1.0, 1.0, 5)
    for check in (deconv.gradcheck, g, gradcheck, g.gradcheck):
        report = check(nn.Tanh(), x)
        assert isinstance(report, GradcheckReport) and report.passed and report
    assert capsys.readouterr().out == ""
    assert inspect.signature(deconv.gradcheck) == inspect.signature(gradcheck)
    assert compare("same", x, x.copy()) == 0.0
    assert capsys.readouterr().out.startswith("same | exact: True")

    report = deconv.gradcheck(nn.Conv1d(2, 3, 3, rng=0), _randn(2, 2, 5), verbose=True)
    printed = capsys.readouterr().out
    assert printed == str(report) + "\n"
    assert printed.startswith("gradcheck of Conv1d") and "PASSED" in printed

    with pytest.raises(GradcheckError, match=r"gradcheck failed:\ngradcheck of .*FAILED") as err:
        deconv.gradcheck(_wrong_backward(nn.Tanh()), x)
    assert isinstance(err.value, AssertionError)
    assert not err.value.report.passed and not err.value.report["input"].passed
    failing = deconv.gradcheck(_wrong_backward(nn.Tanh()), x, raise_exception=False,
                               verbose=True)
    assert not failing and "FAILED" in capsys.readouterr().out
    with pytest.raises(TypeError, match=r"verbose must be a bool, got 1"):
        deconv.gradcheck(nn.Tanh(), x, verbose=1)
    with pytest.raises(TypeError, match=r"raise_exception must be a bool, got None"):
        g(nn.Tanh(), x, raise_exception=None)


# ---------------------------------------------------------------------------
# habit 3: array-likes are arrays
# ---------------------------------------------------------------------------

class _HasArray:
    """An object with ``__array__`` only (as a pandas or xarray object has)."""

    def __init__(self, array):
        self._array = array

    def __array__(self, dtype=None, copy=None):
        return self._array if dtype is None else self._array.astype(dtype)


def _nested_tuple(value):
    return tuple(_nested_tuple(v) for v in value) if isinstance(value, list) else value


CONVERTERS = {
    "list": lambda a: a.tolist(),
    "tuple": lambda a: _nested_tuple(a.tolist()),
    "__array__": _HasArray,
    "memoryview": lambda a: memoryview(np.ascontiguousarray(a)),
}

X4, X3 = _randn(2, 4, 6, 6), _randn(2, 4, 6)
W4, W3, B = _randn(3, 4, 3, 3), _randn(3, 4, 3), _randn(3)
P4, I4 = deconv.max_pool2d(X4, 2)
P3, I3 = deconv.max_pool1d(X3, 2)

G = {shape: _randn(*shape) for shape in [
    (2, 3, 6, 6), (2, 3, 4), (2, 4, 13, 13), (4,), (2, 4, 8), (2, 4, 9, 9), (2, 4, 7), (2, 4, 5, 8)]}

# each op family, forward and backward: a call taking a converter for every array argument
FAMILIES = {
    "conv": [
        lambda c: deconv.conv2d(c(X4), c(W4), c(B), padding=1),
        lambda c: deconv.conv2d_backward(c(G[(2, 3, 6, 6)]), c(X4), c(W4), padding=1),
        lambda c: deconv.conv1d(c(X3), c(W3), c(B)),
        lambda c: deconv.conv1d_backward(c(G[(2, 3, 4)]), c(X3), c(W3)),
    ],
    "conv_transpose": [
        lambda c: deconv.conv_transpose2d(c(X4), c(W4.transpose(1, 0, 2, 3)), stride=2),
        lambda c: deconv.conv_transpose2d_backward(c(G[(2, 4, 13, 13)]), c(X4[:, :3]),
                                                   c(W4), stride=2),
        lambda c: deconv.conv_transpose1d(c(X3[:, :3]), c(W3), c(G[(4,)])),
        lambda c: deconv.conv_transpose1d_backward(c(G[(2, 4, 8)]), c(X3[:, :3]), c(W3)),
    ],
    "max_pool": [
        lambda c: deconv.max_pool2d(c(X4), 2)[0],
        lambda c: deconv.max_pool2d_backward(c(P4), c(I4), X4.shape),
        lambda c: deconv.max_pool1d(c(X3), 3, stride=1)[1],
        lambda c: deconv.max_pool1d_backward(c(P3), c(I3), X3.shape),
    ],
    "avg_pool": [
        lambda c: deconv.avg_pool2d(c(X4), 3, stride=1, padding=1),
        lambda c: deconv.avg_pool2d_backward(c(P4), X4.shape, 2),
        lambda c: deconv.avg_pool1d(c(X3), 2),
        lambda c: deconv.avg_pool1d_backward(c(P3), X3.shape, 2),
    ],
    "max_unpool": [
        lambda c: deconv.max_unpool2d(c(P4), c(I4), 2),
        lambda c: deconv.max_unpool2d_backward(c(X4), c(I4)),
        lambda c: deconv.max_unpool1d(c(P3), c(I3), 2),
        lambda c: deconv.max_unpool1d_backward(c(X3), c(I3)),
    ],
    "upsample": [
        lambda c: deconv.upsample_nearest2d(c(X4), scale_factor=1.5),
        lambda c: deconv.upsample_nearest2d_backward(c(G[(2, 4, 9, 9)]), X4.shape,
                                                     scale_factor=1.5),
        lambda c: deconv.upsample_nearest1d(c(X3), size=7),
        lambda c: deconv.upsample_nearest1d_backward(c(G[(2, 4, 7)]), X3.shape),
        lambda c: deconv.upsample_bilinear2d(c(X4), size=(5, 8), align_corners=True),
        lambda c: deconv.upsample_bilinear2d_backward(c(G[(2, 4, 5, 8)]), X4.shape,
                                                      align_corners=True),
    ],
    "pixel_shuffle": [
        lambda c: deconv.pixel_shuffle(c(X4), 2),
        lambda c: deconv.pixel_shuffle_backward(c(X4), 2),
        lambda c: deconv.pixel_unshuffle(c(X4), 2),
        lambda c: deconv.pixel_unshuffle_backward(c(X4), 2),
    ],
}


@pytest.mark.parametrize("converter", CONVERTERS)
@pytest.mark.parametrize("family", FAMILIES)
def test_every_op_takes_array_likes_as_numpy_would(family, converter):
    convert = CONVERTERS[converter]
    for call in FAMILIES[family]:
        expected = call(lambda a: a)
        got = call(convert)
        for e, a in zip(expected if isinstance(expected, tuple) else (expected,),
                        got if isinstance(got, tuple) else (got,)):
            assert a.dtype == e.dtype               # float64: NumPy's dtype for Python floats
            np.testing.assert_array_equal(a, e)


@pytest.mark.parametrize("value, match", [
    ([[[[1, 2], [3, 4]]]], r"x must have dtype float32 or float64, got int64 \(list\); "
                           r"convert with np.asarray\(x, dtype=np.float32\) \(or np.float64\)"),
    (((True,),), r"x must have dtype .*got bool \(tuple\); convert with"),
    (np.zeros((1, 1, 2, 2), np.float16), r"x must have dtype .*got float16 .*convert with"),
    (_HasArray(np.zeros((1, 1, 2, 2), np.complex128)),
     r"x must have dtype .*complex128 \(_HasArray\); deconv computes on real numbers"),
    (None, r"x must be a NumPy array or an array-like .*got NoneType"),
])
def test_array_likes_of_the_wrong_kind_are_refused_with_a_conversion_hint(value, match):
    for op in (lambda v: deconv.max_pool2d(v, 1), lambda v: deconv.upsample_nearest2d(v, size=2),
               lambda v: deconv.conv2d(v, np.zeros((1, 1, 1, 1)))):
        with pytest.raises(TypeError, match=match):
            op(value)


def test_indices_as_a_list_of_ints_and_refused_otherwise():
    out = deconv.max_unpool2d(P4, I4.tolist(), 2)
    np.testing.assert_array_equal(out, deconv.max_unpool2d(P4, I4, 2))
    with pytest.raises(TypeError, match=r"indices must have dtype int64 .*got int32; "
                                        r"convert with np.asarray\(indices, dtype=np.int64\)"):
        deconv.max_unpool2d(P4, I4.astype(np.int32), 2)
    with pytest.raises(ValueError, match=r"x must be float32 or float64 numbers, got a list NumPy "
                                         r"cannot turn into an array"):
        deconv.avg_pool1d([[[1.0, 2.0], [3.0]]], 1)


# ---------------------------------------------------------------------------
# habit 4: unbatched input is refused with a hint
# ---------------------------------------------------------------------------

UNBATCHED = [
    (lambda: deconv.conv2d(X4[0], W4), "x", (4, 6, 6)),
    (lambda: deconv.conv1d(X3[0], W3), "x", (4, 6)),
    (lambda: deconv.conv_transpose2d(X4[0, :3], W4), "x", (3, 6, 6)),
    (lambda: deconv.conv2d_backward(_randn(3, 4, 4), X4, W4), "grad_output", (3, 4, 4)),
    (lambda: deconv.conv_transpose1d_backward(_randn(4, 8), X3[:, :3], W3), "grad_output",
     (4, 8)),
    (lambda: deconv.max_pool2d(X4[0], 2), "x", (4, 6, 6)),
    (lambda: deconv.max_pool1d_backward(P3[0], I3, X3.shape), "grad_output", (4, 3)),
    (lambda: deconv.avg_pool1d(X3[0], 2), "x", (4, 6)),
    (lambda: deconv.avg_pool2d_backward(P4[0], X4.shape, 2), "grad_output", (4, 3, 3)),
    (lambda: deconv.max_unpool2d(P4[0], I4[0], 2), "x", (4, 3, 3)),
    (lambda: deconv.max_unpool1d_backward(X3, I3[0]), "indices", (4, 3)),
    (lambda: deconv.upsample_nearest2d(X4[0], size=3), "x", (4, 6, 6)),
    (lambda: deconv.upsample_bilinear2d_backward(X4[0], X4.shape), "grad_output", (4, 6, 6)),
    (lambda: deconv.upsample_nearest1d_backward(X3[0], X3.shape), "grad_output", (4, 6)),
    (lambda: deconv.pixel_shuffle(X4[0], 2), "x", (4, 6, 6)),
    (lambda: deconv.pixel_unshuffle_backward(X4[0], 1), "grad_output", (4, 6, 6)),
]


@pytest.mark.parametrize("call, name, shape", UNBATCHED)
def test_unbatched_input_is_refused_with_a_hint(call, name, shape):
    with pytest.raises(ValueError, match=rf"{name} must be {len(shape) + 1}-D with layout \(N, C.*"
                                         rf"got shape {re_tuple(shape)}; for a single sample pass "
                                         rf"{name}\[None\] \(deconv does not accept unbatched "
                                         rf"input\)"):
        call()


def re_tuple(shape):
    return str(shape).replace("(", r"\(").replace(")", r"\)")


def test_unbatched_messages_as_promised_and_only_for_activations():
    with pytest.raises(ValueError) as err:
        deconv.conv2d(np.zeros((3, 8, 8)), np.zeros((2, 3, 3, 3)))
    assert str(err.value) == ("x must be 4-D with layout (N, C, H, W), got shape (3, 8, 8); for a "
                              "single sample pass x[None] (deconv does not accept unbatched input)")
    with pytest.raises(ValueError) as err:
        deconv.max_pool2d_backward(P4, I4, (4, 6, 6))
    assert str(err.value) == ("input_shape must be a sequence of 4 ints, got (4, 6, 6) (layout "
                              "(N, C, H, W)); for a single sample pass (1, *input_shape) (deconv "
                              "does not accept unbatched input)")
    # a weight has no batch axis: no hint
    with pytest.raises(ValueError, match=r"weight must be 4-D") as err:
        deconv.conv2d(X4, W4[0])
    assert "single sample" not in str(err.value)
    # an input two axes short is not a sample without its batch: no hint
    with pytest.raises(ValueError, match=r"x must be 4-D") as err:
        deconv.max_pool2d(X4[0, 0], 2)
    assert "single sample" not in str(err.value)


# ---------------------------------------------------------------------------
# habit 5: one validation module, so one mistake reads the same everywhere
# ---------------------------------------------------------------------------

def _message(call):
    with pytest.raises((TypeError, ValueError)) as err:
        call()
    return str(err.value)


def test_one_mistake_one_message_across_op_families():
    # an input_shape of the wrong batch, given to every backward that takes one
    wrong = (3, 4, 6, 6)
    messages = {_message(lambda: deconv.max_pool2d_backward(P4, I4, wrong)),
                _message(lambda: deconv.avg_pool2d_backward(P4, wrong, 2)),
                _message(lambda: deconv.upsample_nearest2d_backward(P4, wrong)),
                _message(lambda: deconv.upsample_bilinear2d_backward(P4, wrong))}
    assert messages == {"input_shape=(3, 4, 6, 6) is inconsistent with grad_output of shape "
                        "(2, 4, 3, 3): expected the same batch and channel sizes (N, C) = (2, 4)"}
    # an empty spatial axis
    empty = np.zeros((1, 1, 0, 3))
    assert len({_message(lambda: deconv.max_pool2d(empty, 1)),
                _message(lambda: deconv.avg_pool2d(empty, 1)),
                _message(lambda: deconv.upsample_nearest2d(empty, size=2)),
                _message(lambda: deconv.upsample_bilinear2d(empty, size=2))}) == 1
    # a factor or a number of groups below 1
    assert _message(lambda: deconv.pixel_shuffle(X4, 0)) == "upscale_factor must be an int >= 1, got 0"
    assert _message(lambda: deconv.conv2d(X4, W4, groups=0)) == "groups must be an int >= 1, got 0"
    assert (_message(lambda: deconv.conv_transpose2d(X4[:, :3], W4, groups=0))
            == "groups must be an int >= 1, got 0")
    # the per-module copies are gone
    from deconv.functional import conv, pooling, upsampling
    for module, name in ((pooling, "_input"), (pooling, "_check_batch"),
                         (upsampling, "_check_factor"), (upsampling, "_check_spatial")):
        assert not hasattr(module, name), (module.__name__, name)
    assert not hasattr(conv, "as_int")      # groups go through _check_groups alone
