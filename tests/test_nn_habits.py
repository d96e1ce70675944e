"""deconv.nn with PyTorch's habits: array-likes as the ops take them, unbatched input refused
with a hint, errors that name the public class, options passed to the ops by keyword, and a
room of small documented files."""

import ast
import importlib
import inspect
import os

import numpy as np
import pytest

import deconv
from deconv import nn
from deconv.functional import conv as fconv
from deconv.functional import pooling as fpool
from deconv.functional import upsampling as fup

NN_DIR = os.path.dirname(nn.__file__)
NN_FILES = sorted(f for f in os.listdir(NN_DIR) if f.endswith(".py"))


def _outcome(call):
    """('ok', result) or ('error', exception type): what a call does with an input."""
    try:
        return "ok", call()
    except (TypeError, ValueError) as err:
        return "error", type(err)


def _same_outcome(a, b):
    assert a[0] == b[0], (a, b)
    if a[0] == "ok":
        assert a[1].dtype == b[1].dtype
        np.testing.assert_array_equal(a[1], b[1])
    else:
        assert a[1] is b[1]


class _HasArray:
    """An array-like that is not a list: NumPy's ``__array__`` protocol."""

    def __init__(self, array):
        self.array = array

    def __array__(self, dtype=None, copy=None):
        return self.array if dtype is None else self.array.astype(dtype)


_SAMPLE = np.arange(32.0).reshape(1, 2, 4, 4) * 0.1 - 1.0
ARRAY_LIKES = {
    "list": lambda: _SAMPLE.tolist(),
    "tuple": lambda: tuple(map(tuple, _SAMPLE[0, 0].tolist())),
    "float32_list": lambda: [[[[np.float32(v) for v in row] for row in plane]
                              for plane in _SAMPLE[0]]],
    "int_list": lambda: [[[[1, 2], [3, 4]]]],
    "bool_list": lambda: [[[[True, False], [False, True]]]],
    "__array__": lambda: _HasArray(_SAMPLE),
}
W64 = np.random.default_rng(0).standard_normal((3, 2, 3, 3))
PAIRS = {   # a layer and the functional op it runs, on the same input
    "max_pool2d": (lambda x: nn.MaxPool2d(2)(x), lambda x: deconv.max_pool2d(x, 2)[0]),
    "avg_pool2d": (lambda x: nn.AvgPool2d(2)(x), lambda x: deconv.avg_pool2d(x, 2)),
    "upsample_bilinear2d": (lambda x: nn.Upsample(scale_factor=2, mode="bilinear")(x),
                            lambda x: deconv.upsample_bilinear2d(x, scale_factor=2)),
    "conv2d_float64": (
        lambda x: _loaded_conv(np.float64)(x),
        lambda x: deconv.conv2d(x, W64, None, padding=1)),
    "conv2d_float32": (
        lambda x: _loaded_conv(np.float32)(x),
        lambda x: deconv.conv2d(x, W64.astype(np.float32), None, padding=1)),
}


def _loaded_conv(dtype):
    layer = nn.Conv2d(2, 3, 3, padding=1, bias=False, dtype=dtype, rng=0)
    layer.load_state_dict({"weight": W64})
    return layer


@pytest.mark.parametrize("pair", sorted(PAIRS))
@pytest.mark.parametrize("kind", sorted(ARRAY_LIKES))
def test_a_layer_treats_an_array_like_as_its_functional_op_does(kind, pair):
    layer, op = PAIRS[pair]
    _same_outcome(_outcome(lambda: layer(ARRAY_LIKES[kind]())),
                  _outcome(lambda: op(ARRAY_LIKES[kind]())))


def test_a_list_of_floats_is_float64_and_works_where_the_dtypes_agree():
    x = _SAMPLE.tolist()
    y = nn.MaxPool2d(2)(x)
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y, deconv.max_pool2d(_SAMPLE, 2)[0])
    np.testing.assert_array_equal(nn.ReLU()([-1.0, 2.0]), [0.0, 2.0])
    np.testing.assert_array_equal(_loaded_conv(np.float64)(x), deconv.conv2d(_SAMPLE, W64, padding=1))
    relu = nn.ReLU()
    relu([[-1.0, 2.0]])
    np.testing.assert_array_equal(relu.backward([[5.0, 5.0]]), [[0.0, 5.0]])   # grad as a list too
    emb = nn.Embedding(4, 2, rng=0)
    np.testing.assert_array_equal(emb([[3, 0]]), emb(np.array([[3, 0]])))      # token lists
    assert nn.CrossEntropyLoss()([[0.0, 0.0]], [1]) == pytest.approx(np.log(2))


def test_a_float32_layer_refuses_float64_data_and_says_how_to_fix_it():
    layer = _loaded_conv(np.float32)
    with pytest.raises(TypeError, match=r"^Conv2d\(2, 3, .*float32 parameters but the input has "
                                        r"dtype float64; convert the input \(x.astype\(np.float32\)\) "
                                        r"or the layer \(layer.to\(np.float64\)\)"):
        layer(_SAMPLE.tolist())
    with pytest.raises(TypeError, match=r"^Linear\(.*float32 parameters.*float64"):
        nn.Linear(2, 1, rng=0)([[1.0, 2.0]])
    with pytest.raises(TypeError, match=r"^ReLU\(\): input must have dtype float32 or float64"):
        nn.ReLU()([1, 2])
    relu = nn.ReLU()
    relu(np.ones(2, dtype=np.float32))
    with pytest.raises(TypeError, match=r"^ReLU\(\): grad_output must have the dtype of the last "
                                        r"forward's output \(float32\), got float64"):
        relu.backward(np.ones(2))


UNBATCHED = [   # (layer, one sample, expected dimensions, layout)
    (lambda: nn.Conv2d(3, 4, 3, rng=0), (3, 8, 8), 4, "(N, C, H, W)"),
    (lambda: nn.ConvTranspose2d(3, 4, 3, rng=0), (3, 8, 8), 4, "(N, C, H, W)"),
    (lambda: nn.Conv1d(3, 4, 3, rng=0), (3, 8), 3, "(N, C, L)"),
    (lambda: nn.ConvTranspose1d(3, 4, 3, rng=0), (3, 8), 3, "(N, C, L)"),
    (lambda: nn.MaxPool2d(2), (3, 8, 8), 4, "(N, C, H, W)"),
    (lambda: nn.MaxPool1d(2), (3, 8), 3, "(N, C, L)"),
    (lambda: nn.AvgPool2d(2), (3, 8, 8), 4, "(N, C, H, W)"),
    (lambda: nn.AvgPool1d(2), (3, 8), 3, "(N, C, L)"),
    (lambda: nn.Upsample(scale_factor=2, mode="bilinear"), (3, 8, 8), 4, "(N, C, H, W)"),
    (lambda: nn.Upsample(scale_factor=2), (3, 8), 3, "(N, C, L)"),
    (lambda: nn.PixelShuffle(2), (4, 8, 8), 4, "(N, C, H, W)"),
    (lambda: nn.PixelUnshuffle(2), (4, 8, 8), 4, "(N, C, H, W)"),
]


@pytest.mark.parametrize("make, shape, ndim, layout", UNBATCHED,
                         ids=lambda v: v if isinstance(v, str) else None)
def test_unbatched_input_is_refused_with_the_fix(make, shape, ndim, layout):
    layer = make()
    name = type(layer).__name__
    expected = (f"x must be {ndim}-D with layout {layout}, got shape {shape}; "
                f"for a single sample pass x[None] (deconv does not accept unbatched input)")
    with pytest.raises(ValueError, match=rf"^{name}\(") as info:
        layer(np.zeros(shape, dtype=np.float32))
    assert str(info.value).endswith(expected)
    assert layer(np.zeros(shape, dtype=np.float32)[None]).shape[0] == 1    # the fix works


def test_unbatched_input_to_a_max_unpool_and_a_network():
    pool = nn.MaxPool2d(2)
    unpool = nn.MaxUnpool2d(pool)
    pool(np.arange(16.0).reshape(1, 1, 4, 4))
    with pytest.raises(ValueError, match=r"^MaxUnpool2d\(.*for a single sample pass x\[None\]"):
        unpool(np.zeros((1, 2, 2)))
    net = nn.Sequential(nn.Conv2d(3, 2, 3, rng=0), nn.ReLU())
    with pytest.raises(ValueError, match=r"^Conv2d\(3, 2, .*x must be 4-D with layout \(N, C, H, W\), "
                                         r"got shape \(3, 8, 8\); for a single sample pass x\[None\]"):
        net(np.zeros((3, 8, 8), dtype=np.float32))


@pytest.mark.parametrize("make, message", [
    (lambda: nn.MaxPool2d(kernel_size=0), "MaxPool2d: kernel_size must be >= 1, got 0"),
    (lambda: nn.MaxPool1d(2, padding=3), "MaxPool1d: padding=(3,) must be at most half"),
    (lambda: nn.AvgPool2d(2, stride=0), "AvgPool2d: stride must be >= 1"),
    (lambda: nn.AvgPool1d(2, divisor_override=0), "AvgPool1d: divisor_override must be an int >= 1"),
    (lambda: nn.Conv2d(3, 8, 0), "Conv2d: kernel_size must be >= 1"),
    (lambda: nn.ConvTranspose2d(3, 8, 3, groups=2), "ConvTranspose2d: in_channels=3 must be"),
    (lambda: nn.Conv1d(3, 8, 3, dtype=np.int64), "Conv1d: dtype must be np.float32 or np.float64"),
    (lambda: nn.ConvTranspose1d(3, 8, 3, rng=-1), "ConvTranspose1d: rng seed must be >= 0"),
    (lambda: nn.Linear(3, 0), "Linear: out_features must be an int >= 1, got 0"),
    (lambda: nn.Embedding(0, 2), "Embedding: num_embeddings must be an int >= 1"),
    (lambda: nn.Dropout(0.5, rng="x"), "Dropout: rng must be None, an int seed"),
    (lambda: nn.PixelUnshuffle(0), "PixelUnshuffle: downscale_factor must be an int >= 1"),
    (lambda: nn.MaxUnpool1d(nn.MaxPool2d(2)), "MaxUnpool1d: pool must be the MaxPool1d layer"),
    (lambda: nn.Upsample(scale_factor=2, align_corners=1), "Upsample: align_corners must be a bool"),
    (lambda: nn.Flatten(start_dim=1.5), "Flatten: start_dim must be an int"),
    (lambda: nn.CrossEntropyLoss(ignore_index="a"), "CrossEntropyLoss: ignore_index must be an int"),
    (lambda: nn.Sequential(nn.ReLU()).to(np.int32), "Sequential.to: dtype must be np.float32"),
    (lambda: nn.ReLU().train(1), "ReLU.train: mode must be a bool"),
], ids=lambda v: v.split(":")[0] if isinstance(v, str) else None)
def test_constructor_and_method_errors_name_the_public_class(make, message):
    with pytest.raises((TypeError, ValueError)) as info:
        make()
    text = str(info.value)
    assert text.startswith(message), text
    assert "Nd" not in text.split(":")[0] and "__init__" not in text


@pytest.mark.parametrize("run, pattern", [
    (lambda: nn.MaxPool1d(2)(np.zeros((1, 1, 4, 4))),
     r"^MaxPool1d\(kernel_size=\(2,\).*x must be 3-D with layout \(N, C, L\), got shape \(1, 1, 4, 4\)$"),
    (lambda: nn.AvgPool2d(3)(np.zeros((1, 1, 2, 2))), r"^AvgPool2d\(kernel_size=\(3, 3\)"),
    (lambda: nn.ConvTranspose1d(2, 3, 3, rng=0)(np.zeros((1, 3, 5), dtype=np.float32)),
     r"^ConvTranspose1d\(2, 3, .*in_channels=2"),
    (lambda: nn.Upsample(size=(2, 2))(np.zeros((1, 1, 2, 2, 2, 2))),  # 5-D is 3-D nearest
     r"^Upsample\(size=\(2, 2\), mode='nearest'\): mode='nearest' needs a 3-D"),
    (lambda: nn.Flatten(3)(np.zeros((2, 3))), r"^Flatten\(start_dim=3, end_dim=-1\)"),
    (lambda: nn.Embedding(3, 2, rng=0)([[0.5]]), r"^Embedding\(3, 2\): input must be an integer"),
    (lambda: nn.MSELoss()([1, 2], [1, 2]), r"^MSELoss: prediction must have dtype float32"),
], ids=["MaxPool1d", "AvgPool2d", "ConvTranspose1d", "Upsample", "Flatten", "Embedding",
        "MSELoss"])
def test_forward_errors_name_the_layer(run, pattern):
    with pytest.raises((TypeError, ValueError), match=pattern):
        run()


def test_backward_errors_name_the_layer():
    pool = nn.MaxPool2d(2)
    pool(np.zeros((1, 1, 4, 4)))
    with pytest.raises(ValueError, match=r"^MaxPool2d\(kernel_size=\(2, 2\).*: grad_output must "
                                         r"have the shape of the last forward's output"):
        pool.backward(np.zeros((1, 1, 4, 4)))
    conv = nn.Conv1d(1, 1, 1, rng=0)
    with pytest.raises(RuntimeError, match=r"^Conv1d\(1, 1, .*\.backward\(\) called before"):
        conv.backward(np.zeros((1, 1, 3), dtype=np.float32))
    conv(np.zeros((1, 1, 3), dtype=np.float32))
    with pytest.raises(TypeError, match=r"^Conv1d\(1, 1, .*: grad_output must be|"
                                        r"^Conv1d\(1, 1, .*: grad_output must have dtype"):
        conv.backward(np.zeros((1, 1, 3), dtype=np.int64))


# ---------------------------------------------------------------------------
# every call into deconv.functional passes its options by keyword
# ---------------------------------------------------------------------------

def _keyword_options_only(fn):
    """``fn`` that fails when an argument with a default arrives by position."""
    params = inspect.signature(fn).parameters.values()
    required = sum(1 for p in params if p.default is inspect.Parameter.empty
                   and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))

    def strict(*args, **kwargs):
        assert len(args) <= required, (
            f"{fn.__name__} got {len(args)} positional arguments; options must be keywords")
        return fn(*args, **kwargs)

    return strict


def test_every_call_into_the_functional_ops_passes_options_by_keyword(monkeypatch):
    from test_nn import LAYER_CASES

    for module in (fconv, fpool, fup):
        for name in module.__all__:
            monkeypatch.setattr(module, name, _keyword_options_only(getattr(module, name)))
    for cls in (nn.Conv1d, nn.Conv2d, nn.ConvTranspose1d, nn.ConvTranspose2d):
        monkeypatch.setattr(cls, "_functional", tuple(map(_keyword_options_only, cls._functional)))
    ran = 0
    for case in sorted(LAYER_CASES):
        layer_factory, make_input = LAYER_CASES[case]
        layer = layer_factory()
        x = make_input()
        if np.issubdtype(x.dtype, np.floating):
            x = x.astype(np.float32)
        y = layer(x)
        layer.backward(np.ones_like(y))
        ran += 1
    for nd, shape in ((1, (1, 2, 7)), (2, (1, 2, 5, 6))):
        pool = (nn.MaxPool1d if nd == 1 else nn.MaxPool2d)(3, stride=2, padding=1)
        unpool = (nn.MaxUnpool1d if nd == 1 else nn.MaxUnpool2d)(pool)
        u = unpool(pool(np.random.default_rng(0).standard_normal(shape)))
        unpool.backward(np.ones_like(u))
    assert ran == len(LAYER_CASES)
    with pytest.raises(AssertionError, match="options must be keywords"):   # the wrapper bites
        fpool.avg_pool2d(np.zeros((1, 1, 2, 2)), 2, 2)


# ---------------------------------------------------------------------------
# the room: small files, every function documented, an example per layer class
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("filename", NN_FILES)
def test_each_file_is_small_and_every_function_has_a_docstring(filename):
    with open(os.path.join(NN_DIR, filename)) as f:
        source = f.read()
    assert source.count("\n") < 800
    tree = ast.parse(source)
    assert ast.get_docstring(tree), f"{filename} has no module docstring"
    undocumented = [node.name for node in ast.walk(tree)
                    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                    and not ast.get_docstring(node)]
    # classes at run time: the convolutions' docstrings are filled from one template
    module = importlib.import_module(f"deconv.nn.{filename[:-3]}".replace(".__init__", ""))
    undocumented += [node.name for node in tree.body if isinstance(node, ast.ClassDef)
                     and not (getattr(module, node.name).__doc__ or "").strip()]
    assert not undocumented, f"{filename}: {undocumented}"


@pytest.mark.parametrize("name", sorted(set(nn.__all__) - {"Parameter", "Module", "Loss"}))
def test_every_layer_and_loss_documents_parameters_notes_and_a_runnable_example(name):
    doc = getattr(nn, name).__doc__
    assert "Examples\n    --------\n    >>> " in doc
    assert "Notes\n    -----" in doc


def test_big_endian_input_is_the_same_numbers_to_a_layer():
    layer = nn.Conv2d(2, 3, 3, padding=1, rng=0)
    x = np.random.default_rng(0).standard_normal((1, 2, 5, 5)).astype(np.float32)
    np.testing.assert_array_equal(layer(x.astype(">f4")), layer(x))
