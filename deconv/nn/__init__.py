"""Layers and losses with hand-written backward passes (no autograd), torch.nn style.

Every layer is a :class:`Module` with ``forward(x)`` (also ``module(x)``) and
``backward(grad_output) -> grad_input``. ``forward`` stores what the backward
needs (the input, the weights it used, max-pool switches, dropout masks...);
``backward`` computes the gradient with respect to the input of the *last*
forward and **adds** the gradients of the layer's parameters into their
``.grad`` arrays, as ``loss.backward()`` does in PyTorch. Call
:meth:`Module.zero_grad` (or the optimizer's) between steps.

Names, constructor arguments, parameter layouts and default initialisation
are those of ``torch.nn``; the convolution, pooling, unpooling and upsampling
layers call the functional kernels of :mod:`deconv` (forward and backward),
so they share their exact semantics (see the README). Linear, the
activations, dropout and the embedding are plain NumPy.

Losses (:class:`MSELoss`, :class:`L1Loss`, :class:`CrossEntropyLoss`) have
``forward(prediction, target) -> float`` and ``backward() -> grad_prediction``.

A network is a :class:`Sequential` of layers; :class:`Concat` runs several
branches on one input and joins their outputs along the channel axis, which
is how skip connections are written without autograd::

    block = nn.Sequential(
        nn.Concat(nn.Identity(), nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())),
        nn.Conv2d(16, 8, 1),
    )

Rules that follow from "no autograd":

* a module instance may appear only once in a network (its cache holds one
  forward); use separate instances, possibly sharing a :class:`Parameter`
  (gradients of a shared parameter accumulate correctly);
* do not modify an input array between a forward and its backward (layers
  keep a reference to it, as PyTorch would refuse to do after an in-place
  change);
* ``backward`` may be called more than once after one forward; each call
  adds to ``.grad`` again.

Every layer keeps the dtype of its input (float32 stays float32); layers
with parameters require the input to have the parameters' dtype. Inputs and
upstream gradients are never written to.
"""

import contextlib
import math
from collections import OrderedDict

import numpy as np
from scipy import special

from deconv.functional import conv as _conv
from deconv.functional import pooling as _pool
from deconv.functional import upsampling as _up
from deconv.functional.validation import as_bool, as_int, as_tuple

__all__ = [
    "Parameter", "Module",
    "Conv1d", "Conv2d", "ConvTranspose1d", "ConvTranspose2d",
    "MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d", "MaxUnpool1d", "MaxUnpool2d",
    "Upsample", "PixelShuffle", "PixelUnshuffle",
    "Linear", "Flatten", "Permute", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Identity", "Dropout",
    "Embedding", "Sequential", "Concat",
    "Loss", "MSELoss", "L1Loss", "CrossEntropyLoss",
]

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


# ---------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------

@contextlib.contextmanager
def _prefixed(where):
    """Re-raise TypeError/ValueError with ``where`` (the layer) in front of the message."""
    try:
        yield
    except (TypeError, ValueError) as err:
        raise type(err)(f"{where}: {err}") from None


def _positive_int(value, name):
    value = as_int(value, name)
    if value < 1:
        raise ValueError(f"{name} must be a positive int, got {value}")
    return value


def _float_dtype(dtype):
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be np.float32 or np.float64, got {dtype!r}") from None
    if dt not in _FLOAT_DTYPES:
        raise TypeError(f"dtype must be np.float32 or np.float64, got {dt}")
    return dt


def _as_generator(rng):
    """None -> a fresh ``default_rng()``; an int -> ``default_rng(seed)``; a Generator as is."""
    if rng is None:
        return np.random.default_rng()
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (bool, np.bool_)) or not isinstance(rng, (int, np.integer)):
        raise TypeError(f"rng must be None, an int seed or a np.random.Generator, got {rng!r}")
    if rng < 0:
        raise ValueError(f"rng seed must be >= 0, got {rng}")
    return np.random.default_rng(int(rng))


def _default_stride(stride):
    """None (and, as in torch, an empty sequence) means stride = kernel_size for pooling."""
    return stride is None or (isinstance(stride, (list, tuple)) and len(stride) == 0)


def _as_array(x, what):
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{what} must be a NumPy array, got {type(x).__name__}")
    return x


def _torch_uniform_bounds(fan_in):
    """Bounds of torch's default init: kaiming_uniform_(a=sqrt(5)) (weight), 1/sqrt(fan_in) (bias).

    Computed with the very float operations of ``torch.nn.init`` (both are
    ``1/sqrt(fan_in)`` up to one rounding).
    """
    gain = math.sqrt(2.0 / (1 + math.sqrt(5) ** 2))
    weight_bound = math.sqrt(3.0) * (gain / math.sqrt(fan_in))
    bias_bound = 1 / math.sqrt(fan_in)
    return weight_bound, bias_bound


# ---------------------------------------------------------------------------
# Parameter and Module
# ---------------------------------------------------------------------------

class Parameter:
    """A trainable array and its accumulated gradient.

    Parameters
    ----------
    data : ndarray of float32 or float64
        The values; stored as given (not copied).

    Attributes
    ----------
    data : ndarray
        Current values; layers read it at every forward.
    grad : ndarray, same shape and dtype as ``data``
        Sum of the gradients of every backward since the last
        :meth:`zero_grad`; starts at zero.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> p = nn.Parameter(np.ones((2, 3), dtype=np.float32))
    >>> p.grad.dtype, p.grad.shape, float(p.grad.sum())
    (dtype('float32'), (2, 3), 0.0)
    """

    __slots__ = ("data", "grad")

    def __init__(self, data):
        if not isinstance(data, np.ndarray) or data.dtype not in _FLOAT_DTYPES:
            raise TypeError(
                "Parameter data must be a NumPy array of float32 or float64, got "
                + (f"dtype {data.dtype}" if isinstance(data, np.ndarray) else type(data).__name__)
            )
        self.data = data
        self.grad = np.zeros_like(data)

    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def size(self):
        return self.data.size

    def zero_grad(self):
        """Set ``grad`` to zero in place."""
        self.grad[...] = 0

    def __repr__(self):
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype})"


class Module:
    """Base class of every layer and network.

    Subclasses call ``super().__init__()`` first, then assign
    :class:`Parameter` and :class:`Module` attributes, which are registered
    in assignment order (that order is the one of :meth:`parameters` and
    :meth:`named_parameters`, as in PyTorch). They implement
    :meth:`forward` and :meth:`backward`.

    Attributes
    ----------
    training : bool
        True after construction and :meth:`train`, False after :meth:`eval`.
    """

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_cache", None)

    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"cannot assign {name!r} before Module.__init__() is called; call "
                f"super().__init__() first in {type(self).__name__}.__init__"
            )
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        object.__delattr__(self, name)

    # -- computation ---------------------------------------------------------

    def forward(self, x):
        """Compute the output and remember what :meth:`backward` needs."""
        raise NotImplementedError(f"{type(self).__name__} does not implement forward()")

    def backward(self, grad_output):
        """Input gradient of the last forward; adds the parameter gradients to ``.grad``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement backward()")

    def __call__(self, x):
        return self.forward(x)

    def _save(self, **values):
        object.__setattr__(self, "_cache", values)

    def _saved(self):
        if self._cache is None:
            raise RuntimeError(
                f"{self._short_repr()}.backward() called before forward(): run a forward "
                f"pass first (backward differentiates the last forward)"
            )
        return self._cache

    def _check_grad_output(self, grad_output, shape):
        grad_output = _as_array(grad_output, f"{self._short_repr()}: grad_output")
        if grad_output.shape != tuple(shape):
            raise ValueError(
                f"{self._short_repr()}: grad_output must have the shape of the last forward's "
                f"output {tuple(shape)}, got {grad_output.shape}"
            )
        return grad_output

    # -- structure -----------------------------------------------------------

    def named_children(self):
        """Iterator over ``(name, module)`` of the direct sub-modules, in registration order."""
        return iter(self._modules.items())

    def children(self):
        """Iterator over the direct sub-modules."""
        return (m for _, m in self.named_children())

    def named_modules(self, prefix=""):
        """Iterator over ``(dotted_name, module)``: this module (named ``prefix``), then the
        sub-modules, depth-first."""
        seen = set()

        def walk(module, name):
            if id(module) in seen:
                return
            seen.add(id(module))
            yield name, module
            for child_name, child in module._modules.items():
                yield from walk(child, f"{name}.{child_name}" if name else child_name)

        return walk(self, prefix)

    def modules(self):
        """Iterator over this module and every sub-module, depth-first."""
        return (m for _, m in self.named_modules())

    def named_parameters(self, prefix=""):
        """``(dotted_name, Parameter)`` pairs, in PyTorch's order.

        A module's own parameters (in assignment order) come before those of
        its sub-modules, which follow depth-first; names are dotted paths
        (``"0.weight"``, ``"3.1.0.bias"``), as in ``torch.nn.Module``. A
        parameter shared by several modules is listed once, under its first
        name.

        Returns
        -------
        list of (str, Parameter)
        """
        out, seen = [], set()
        for mod_name, module in self.named_modules(prefix):
            for name, p in module._parameters.items():
                if id(p) not in seen:
                    seen.add(id(p))
                    out.append((f"{mod_name}.{name}" if mod_name else name, p))
        return out

    def parameters(self):
        """Every :class:`Parameter`, in the order of :meth:`named_parameters`.

        Returns
        -------
        list of Parameter
        """
        return [p for _, p in self.named_parameters()]

    def zero_grad(self):
        """Set the ``.grad`` of every parameter to zero (in place)."""
        for p in self.parameters():
            p.zero_grad()

    def train(self, mode=True):
        """Set the training flag of this module and every sub-module; returns ``self``."""
        mode = as_bool(mode, "mode")
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self):
        """Evaluation mode (``train(False)``): Dropout becomes the identity. Returns ``self``."""
        return self.train(False)

    def to(self, dtype):
        """Convert every parameter (values and gradients) to float32 or float64; returns ``self``.

        The :class:`Parameter` objects are kept (an optimizer holding them
        keeps working); their arrays are replaced.
        """
        dt = _float_dtype(dtype)
        for p in self.parameters():
            p.data = p.data.astype(dt)
            p.grad = p.grad.astype(dt)
        return self

    # -- printing ------------------------------------------------------------

    def extra_repr(self):
        """The text inside the parentheses of this module's one-line repr."""
        return ""

    def _short_repr(self):
        return f"{type(self).__name__}({self.extra_repr()})"

    def __repr__(self):
        if not self._modules:
            return self._short_repr()
        lines = [f"{type(self).__name__}("]
        if self.extra_repr():
            lines.append(f"  {self.extra_repr()}")
        for name, m in self._modules.items():
            child = repr(m).replace("\n", "\n  ")
            lines.append(f"  ({name}): {child}")
        lines.append(")")
        return "\n".join(lines)


# ---------------------------------------------------------------------------
# convolutions
# ---------------------------------------------------------------------------

class _ConvNd(Module):
    _nd = 2
    _transposed = False

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation,
                 groups, bias, padding_mode, dtype, rng, output_padding=0):
        super().__init__()
        nd, name = self._nd, type(self).__name__
        with _prefixed(name):
            self.in_channels = _positive_int(in_channels, "in_channels")
            self.out_channels = _positive_int(out_channels, "out_channels")
            self.kernel_size = as_tuple(kernel_size, nd, "kernel_size", minimum=1)
            self.stride = as_tuple(stride, nd, "stride", minimum=1)
            self.dilation = as_tuple(dilation, nd, "dilation", minimum=1)
            self.groups = _positive_int(groups, "groups")
            if self.in_channels % self.groups:
                raise ValueError(
                    f"in_channels={self.in_channels} must be divisible by groups={self.groups}")
            if self.out_channels % self.groups:
                raise ValueError(
                    f"out_channels={self.out_channels} must be divisible by groups={self.groups}")
            if isinstance(padding, str):
                if self._transposed:
                    raise ValueError(
                        f"padding must be an int or a tuple of {nd} ints for a transposed "
                        f"convolution, got {padding!r}")
                if padding not in ("valid", "same"):
                    raise ValueError(
                        f"padding must be an int, a tuple of {nd} ints, 'valid' or 'same', "
                        f"got {padding!r}")
                if padding == "same" and any(s != 1 for s in self.stride):
                    raise ValueError(
                        f"padding='same' is not supported for strided convolutions "
                        f"(stride={self.stride})")
                self.padding = padding
            else:
                self.padding = as_tuple(padding, nd, "padding", minimum=0)
            self.output_padding = as_tuple(output_padding, nd, "output_padding", minimum=0)
            for op, s, d in zip(self.output_padding, self.stride, self.dilation):
                if op >= max(s, d):
                    raise ValueError(
                        f"output_padding={self.output_padding} must be smaller than "
                        f"max(stride, dilation) per dimension (stride={self.stride}, "
                        f"dilation={self.dilation})")
            bias = as_bool(bias, "bias")
            if padding_mode != "zeros":
                raise ValueError(f"padding_mode must be 'zeros' (the only mode implemented), "
                                 f"got {padding_mode!r}")
            dt = _float_dtype(dtype)
            gen = _as_generator(rng)
        if self._transposed:
            # (C_in, C_out/groups, k...)
            shape = (self.in_channels, self.out_channels // self.groups) + self.kernel_size
        else:
            # (C_out, C_in/groups, k...)
            shape = (self.out_channels, self.in_channels // self.groups) + self.kernel_size
        # torch's _calculate_fan_in_and_fan_out: weight.shape[1] * prod(kernel),
        # for transposed convs too (there weight.shape[1] = C_out/groups).
        fan_in = shape[1] * math.prod(self.kernel_size)
        w_bound, b_bound = _torch_uniform_bounds(fan_in)
        self.weight = Parameter(gen.uniform(-w_bound, w_bound, size=shape).astype(dt))
        if bias:
            self.bias = Parameter(gen.uniform(-b_bound, b_bound, size=self.out_channels).astype(dt))
        else:
            self.bias = None

    def extra_repr(self):
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0,) * self._nd:
            s += f", padding={self.padding!r}"
        if self.dilation != (1,) * self._nd:
            s += f", dilation={self.dilation}"
        if self._transposed and self.output_padding != (0,) * self._nd:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.weight.dtype != np.float32:
            s += f", dtype={self.weight.dtype}"
        return s

    def _check_input(self, x):
        nd = self._nd
        x = _as_array(x, f"{self._short_repr()}: input")
        spatial = "L" if nd == 1 else "H, W"
        if x.ndim != nd + 2 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"{self._short_repr()} expects input of shape (N, in_channels={self.in_channels}, "
                f"{spatial}), got shape {x.shape}")
        if x.dtype != self.weight.dtype:
            raise TypeError(
                f"{self._short_repr()} has {self.weight.dtype} parameters but the input has "
                f"dtype {x.dtype}; convert the input (x.astype(np.{self.weight.dtype})) or the "
                f"layer (layer.to(np.{x.dtype}))" if x.dtype in _FLOAT_DTYPES else
                f"{self._short_repr()} expects a float input of dtype {self.weight.dtype}, got "
                f"dtype {x.dtype}")
        return x

    def _kwargs(self):
        kw = dict(stride=self.stride, padding=self.padding, dilation=self.dilation,
                  groups=self.groups)
        if self._transposed:
            kw["output_padding"] = self.output_padding
        return kw

    def forward(self, x):
        """Apply the convolution.

        Parameters
        ----------
        x : ndarray, shape (N, in_channels, *spatial)
            dtype of the parameters.

        Returns
        -------
        y : ndarray, shape (N, out_channels, *spatial_out)
        """
        x = self._check_input(x)
        w = self.weight.data
        b = None if self.bias is None else self.bias.data
        fn = self._functional[0]
        with _prefixed(self._short_repr()):
            y = fn(x, w, b, **self._kwargs())
        self._save(x=x, w=w, out_shape=y.shape)
        return y

    def backward(self, grad_output):
        """Input gradient; adds the weight (and bias) gradients into ``.grad``.

        Parameters
        ----------
        grad_output : ndarray, shape of the last output

        Returns
        -------
        grad_input : ndarray, shape of the last input
        """
        c = self._saved()
        g = self._check_grad_output(grad_output, c["out_shape"])
        fn = self._functional[1]
        with _prefixed(self._short_repr()):
            gi, gw, gb = fn(g, c["x"], c["w"], **self._kwargs())
        self.weight.grad += gw
        if self.bias is not None:
            self.bias.grad += gb
        return gi


_CONV_DOC = """{kind}, as ``torch.nn.{name}``.

    Forward and backward through :func:`deconv.{fn}` and
    :func:`deconv.{fn}_backward`.

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size, stride, dilation : {tuple_kind}
    padding : {padding}
    {output_padding}groups : int
        Must divide both ``in_channels`` and ``out_channels``.
    bias : bool, default True
    padding_mode : {{'zeros'}}
        Accepted for torch compatibility; only zero padding exists.
    dtype : np.float32 (default) or np.float64
    rng : np.random.Generator, int or None
        Source of the initial values (a seed makes them reproducible; a
        shared Generator is advanced). None: a fresh ``default_rng()``.

    Attributes
    ----------
    weight : Parameter, shape {wshape}
    bias : Parameter, shape (out_channels,), or None

    Notes
    -----
    Input ``{layout_in}`` in the parameters' dtype, output
    ``{layout_out}``, {size_note}

    PyTorch's default initialisation: ``weight`` and ``bias`` uniform on
    ``[-1/sqrt(fan_in), 1/sqrt(fan_in)]``, ``fan_in = weight.shape[1] *
    prod(kernel_size)``, here ``{fan_in}``{fan_note} (this is what
    ``kaiming_uniform_(a=sqrt(5))`` works out to). The weight is drawn
    first, then the bias.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> layer = nn.{name}(3, 8, 3, {example_kw}rng=0)
    >>> layer.weight.shape, layer.bias.shape
    ({wshape_example}, (8,))
    >>> layer(np.zeros({x_example}, dtype=np.float32)).shape
    {y_example}
    """


class Conv1d(_ConvNd):
    _nd = 1
    _functional = (_conv.conv1d, _conv.conv1d_backward)

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", *, dtype=np.float32, rng=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, dtype, rng)


class Conv2d(_ConvNd):
    _nd = 2
    _functional = (_conv.conv2d, _conv.conv2d_backward)

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", *, dtype=np.float32, rng=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, dtype, rng)


class ConvTranspose1d(_ConvNd):
    _nd = 1
    _transposed = True
    _functional = (_conv.conv_transpose1d, _conv.conv_transpose1d_backward)

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros", *,
                 dtype=np.float32, rng=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, dtype, rng, output_padding)


class ConvTranspose2d(_ConvNd):
    _nd = 2
    _transposed = True
    _functional = (_conv.conv_transpose2d, _conv.conv_transpose2d_backward)

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros", *,
                 dtype=np.float32, rng=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, dtype, rng, output_padding)


_CONV_SIZE = ("per axis\n    ``out = floor((L + 2p - d*(k-1) - 1)/s) + 1``\n    "
              "(:func:`deconv.shapes.conv_output_size`; ``'same'`` keeps the size and\n    "
              "puts an odd extra pad at the end).")
_CONVT_SIZE = ("per axis\n    ``out = (L-1)*s - 2p + d*(k-1) + output_padding + 1``;\n    "
               ":func:`deconv.shapes.inverse_output_padding` gives the\n    "
               "``output_padding`` that undoes a strided conv.")
_CONVT_FAN = ",\n    since torch takes ``weight.shape[1]`` for transposed convs too"
_OUTPUT_PADDING = "output_padding : {}\n        ``< max(stride, dilation)`` per axis.\n    "
Conv1d.__doc__ = _CONV_DOC.format(
    kind="1-D convolution layer", name="Conv1d", fn="conv1d", tuple_kind="int or (int,)",
    padding="int, (int,), 'valid' or 'same'\n        ``'same'`` needs stride 1.",
    output_padding="", wshape="(out_channels, in_channels/groups, kL)",
    fan_in="in_channels/groups * kL", fan_note="",
    layout_in="(N, in_channels, L)", layout_out="(N, out_channels, L_out)", size_note=_CONV_SIZE,
    example_kw="padding='same', ", wshape_example="(8, 3, 3)", x_example="(2, 3, 10)",
    y_example="(2, 8, 10)")
Conv2d.__doc__ = _CONV_DOC.format(
    kind="2-D convolution layer", name="Conv2d", fn="conv2d", tuple_kind="int or (int, int)",
    padding="int, (int, int), 'valid' or 'same'\n        ``'same'`` needs stride 1.",
    output_padding="", wshape="(out_channels, in_channels/groups, kH, kW)",
    fan_in="in_channels/groups * kH * kW", fan_note="",
    layout_in="(N, in_channels, H, W)", layout_out="(N, out_channels, H_out, W_out)",
    size_note=_CONV_SIZE, example_kw="stride=2, padding=1, ", wshape_example="(8, 3, 3, 3)",
    x_example="(2, 3, 8, 8)", y_example="(2, 8, 4, 4)")
ConvTranspose1d.__doc__ = _CONV_DOC.format(
    kind="1-D transposed convolution layer", name="ConvTranspose1d", fn="conv_transpose1d",
    tuple_kind="int or (int,)", padding="int or (int,)",
    output_padding=_OUTPUT_PADDING.format("int or (int,)"),
    wshape="(in_channels, out_channels/groups, kL)", fan_in="out_channels/groups * kL",
    fan_note=_CONVT_FAN, layout_in="(N, in_channels, L)", layout_out="(N, out_channels, L_out)",
    size_note=_CONVT_SIZE, example_kw="stride=2, ", wshape_example="(3, 8, 3)",
    x_example="(2, 3, 10)", y_example="(2, 8, 21)")
ConvTranspose2d.__doc__ = _CONV_DOC.format(
    kind='2-D transposed convolution ("deconvolution") layer', name="ConvTranspose2d",
    fn="conv_transpose2d", tuple_kind="int or (int, int)", padding="int or (int, int)",
    output_padding=_OUTPUT_PADDING.format("int or (int, int)"),
    wshape="(in_channels, out_channels/groups, kH, kW)", fan_in="out_channels/groups * kH * kW",
    fan_note=_CONVT_FAN, layout_in="(N, in_channels, H, W)",
    layout_out="(N, out_channels, H_out, W_out)", size_note=_CONVT_SIZE,
    example_kw="stride=2, padding=1, output_padding=1, ", wshape_example="(3, 8, 3, 3)",
    x_example="(2, 3, 4, 4)", y_example="(2, 8, 8, 8)")


# ---------------------------------------------------------------------------
# pooling and unpooling
# ---------------------------------------------------------------------------

class _MaxPoolNd(Module):
    _nd = 2

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
        super().__init__()
        nd = self._nd
        with _prefixed(type(self).__name__):
            self.kernel_size = as_tuple(kernel_size, nd, "kernel_size", minimum=1)
            self.stride = (self.kernel_size if _default_stride(stride)
                           else as_tuple(stride, nd, "stride", minimum=1))
            self.padding = as_tuple(padding, nd, "padding", minimum=0)
            for p, k in zip(self.padding, self.kernel_size):
                if p > k // 2:
                    raise ValueError(
                        f"padding={self.padding} must be at most half of kernel_size="
                        f"{self.kernel_size} per axis")
            self.dilation = as_tuple(dilation, nd, "dilation", minimum=1)
            self.ceil_mode = as_bool(ceil_mode, "ceil_mode")

    def extra_repr(self):
        s = f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
        if self.dilation != (1,) * self._nd:
            s += f", dilation={self.dilation}"
        if self.ceil_mode:
            s += ", ceil_mode=True"
        return s

    @property
    def last_indices(self):
        """int64 switches of the last forward, shape of its output (None before any forward)."""
        return None if self._cache is None else self._cache["indices"]

    @property
    def last_input_shape(self):
        """Shape of the last forward's input (None before any forward)."""
        return None if self._cache is None else self._cache["input_shape"]

    def forward(self, x):
        """Max-pool ``x`` and record the switches (argmax indices).

        Parameters
        ----------
        x : ndarray, shape (N, C, *spatial)

        Returns
        -------
        y : ndarray, shape (N, C, *spatial_out)
        """
        fn = _pool.max_pool1d if self._nd == 1 else _pool.max_pool2d
        with _prefixed(self._short_repr()):
            y, idx = fn(x, self.kernel_size, self.stride, self.padding, self.dilation,
                        self.ceil_mode)
        self._save(indices=idx, input_shape=tuple(np.shape(x)), out_shape=y.shape)
        return y

    def backward(self, grad_output):
        """Route each output gradient to its switch; overlapping windows accumulate.

        Returns
        -------
        grad_input : ndarray, shape of the last input
        """
        c = self._saved()
        g = self._check_grad_output(grad_output, c["out_shape"])
        fn = _pool.max_pool1d_backward if self._nd == 1 else _pool.max_pool2d_backward
        with _prefixed(self._short_repr()):
            return fn(g, c["indices"], c["input_shape"])


class MaxPool1d(_MaxPoolNd):
    """1-D max pooling, as ``torch.nn.MaxPool1d``, through :func:`deconv.max_pool1d`.

    Parameters
    ----------
    kernel_size : int or (int,)
    stride : int or (int,), optional
        Default ``kernel_size``.
    padding : int or (int,), default 0
        At most ``kernel_size // 2``.
    dilation : int or (int,), default 1
    ceil_mode : bool, default False

    Notes
    -----
    Input ``(N, C, L)``, output ``(N, C, L_out)`` with
    ``L_out = floor((L + 2p - d*(k-1) - 1)/s) + 1`` (ceil with ``ceil_mode``).
    The switches of the last forward are kept in :attr:`last_indices`
    (torch's ``return_indices`` is not needed: :class:`MaxUnpool1d` reads
    them from this layer).

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> pool = nn.MaxPool1d(2)
    >>> pool(np.array([[[1., 3., 2., 5., 4.]]]))
    array([[[3., 5.]]])
    >>> pool.last_indices
    array([[[1, 3]]])
    """
    _nd = 1


class MaxPool2d(_MaxPoolNd):
    """2-D max pooling, as ``torch.nn.MaxPool2d``, through :func:`deconv.max_pool2d`.

    Parameters
    ----------
    kernel_size : int or (int, int)
    stride : int or (int, int), optional
        Default ``kernel_size``.
    padding : int or (int, int), default 0
        At most ``kernel_size // 2`` per axis.
    dilation : int or (int, int), default 1
    ceil_mode : bool, default False

    Notes
    -----
    Input ``(N, C, H, W)``, output ``(N, C, H_out, W_out)`` with, per axis,
    ``out = floor((L + 2p - d*(k-1) - 1)/s) + 1`` (ceil with ``ceil_mode``).
    Ties go to the first maximum in row-major window order. The switches
    (flat positions ``h*W + w`` in each input plane) of the last forward are
    kept in :attr:`last_indices` for :class:`MaxUnpool2d`.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> pool = nn.MaxPool2d(2)
    >>> pool(np.arange(16.0).reshape(1, 1, 4, 4))[0, 0]
    array([[ 5.,  7.],
           [13., 15.]])
    """
    _nd = 2


class _AvgPoolNd(Module):
    _nd = 2

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None):
        super().__init__()
        nd = self._nd
        with _prefixed(type(self).__name__):
            self.kernel_size = as_tuple(kernel_size, nd, "kernel_size", minimum=1)
            self.stride = (self.kernel_size if _default_stride(stride)
                           else as_tuple(stride, nd, "stride", minimum=1))
            self.padding = as_tuple(padding, nd, "padding", minimum=0)
            for p, k in zip(self.padding, self.kernel_size):
                if p > k // 2:
                    raise ValueError(
                        f"padding={self.padding} must be at most half of kernel_size="
                        f"{self.kernel_size} per axis")
            self.ceil_mode = as_bool(ceil_mode, "ceil_mode")
            self.count_include_pad = as_bool(count_include_pad, "count_include_pad")
            if divisor_override is not None:
                divisor_override = _positive_int(divisor_override, "divisor_override")
            self.divisor_override = divisor_override

    def extra_repr(self):
        s = f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
        if self.ceil_mode:
            s += ", ceil_mode=True"
        if not self.count_include_pad:
            s += ", count_include_pad=False"
        if self.divisor_override is not None:
            s += f", divisor_override={self.divisor_override}"
        return s

    def _kwargs(self):
        return dict(stride=self.stride, padding=self.padding, ceil_mode=self.ceil_mode,
                    count_include_pad=self.count_include_pad,
                    divisor_override=self.divisor_override)

    def forward(self, x):
        """Average-pool ``x``: ``(N, C, *spatial) -> (N, C, *spatial_out)``."""
        fn = _pool.avg_pool1d if self._nd == 1 else _pool.avg_pool2d
        with _prefixed(self._short_repr()):
            y = fn(x, self.kernel_size, **self._kwargs())
        self._save(input_shape=tuple(np.shape(x)), out_shape=y.shape)
        return y

    def backward(self, grad_output):
        """Spread each output gradient evenly over its window (the adjoint)."""
        c = self._saved()
        g = self._check_grad_output(grad_output, c["out_shape"])
        fn = _pool.avg_pool1d_backward if self._nd == 1 else _pool.avg_pool2d_backward
        with _prefixed(self._short_repr()):
            return fn(g, c["input_shape"], self.kernel_size, **self._kwargs())


class AvgPool1d(_AvgPoolNd):
    """1-D average pooling, as ``torch.nn.AvgPool1d``, through :func:`deconv.avg_pool1d`.

    Parameters
    ----------
    kernel_size : int or (int,)
    stride : int or (int,), optional
        Default ``kernel_size``.
    padding : int or (int,), default 0
        Zero padding, at most ``kernel_size // 2``.
    ceil_mode : bool, default False
    count_include_pad : bool, default True
    divisor_override : int, optional
        (An extension: torch's AvgPool1d lacks it; the functional op has it.)

    Notes
    -----
    Input ``(N, C, L)``, output ``(N, C, L_out)``,
    ``L_out = floor((L + 2p - k)/s) + 1`` (ceil with ``ceil_mode``).

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> nn.AvgPool1d(2)(np.array([[[1., 3., 2., 6.]]]))
    array([[[2., 4.]]])
    """
    _nd = 1


class AvgPool2d(_AvgPoolNd):
    """2-D average pooling, as ``torch.nn.AvgPool2d``, through :func:`deconv.avg_pool2d`.

    Parameters
    ----------
    kernel_size : int or (int, int)
    stride : int or (int, int), optional
        Default ``kernel_size``.
    padding : int or (int, int), default 0
        Zero padding, at most ``kernel_size // 2`` per axis.
    ceil_mode : bool, default False
    count_include_pad : bool, default True
    divisor_override : int, optional

    Notes
    -----
    Input ``(N, C, H, W)``, output ``(N, C, H_out, W_out)``, per axis
    ``out = floor((L + 2p - k)/s) + 1`` (ceil with ``ceil_mode``).

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> nn.AvgPool2d(2)(np.arange(16.0).reshape(1, 1, 4, 4))[0, 0]
    array([[ 2.5,  4.5],
           [10.5, 12.5]])
    """
    _nd = 2


class _MaxUnpoolNd(Module):
    _nd = 2

    def __init__(self, pool):
        super().__init__()
        expected = MaxPool1d if self._nd == 1 else MaxPool2d
        if not isinstance(pool, expected):
            raise TypeError(
                f"{type(self).__name__}: pool must be the {expected.__name__} layer whose switches "
                f"are to be used, got {type(pool).__name__}")
        # Not registered as a sub-module: the pool lives elsewhere in the network.
        object.__setattr__(self, "pool", pool)

    def extra_repr(self):
        return f"pool={self.pool._short_repr()}"

    def forward(self, x):
        """Place each value of ``x`` at the switch its pool recorded; zeros elsewhere.

        Parameters
        ----------
        x : ndarray, shape of the pool's last output (N, C, *spatial_out)

        Returns
        -------
        y : ndarray, shape of the pool's last input (N, C, *spatial)
        """
        pool = self.pool
        if pool._cache is None:
            raise RuntimeError(
                f"{self._short_repr()}: the paired {type(pool).__name__} has not run yet; "
                f"its forward records the switches this layer uses")
        pc = pool._cache
        idx, in_shape = pc["indices"], pc["input_shape"]
        x = _as_array(x, f"{self._short_repr()}: input")
        if x.shape != idx.shape:
            raise ValueError(
                f"{self._short_repr()}: input shape {x.shape} must equal the shape of the paired "
                f"pool's last output {idx.shape} (its switches)")
        # The functional op checks output_size against kernel_size; with
        # dilation the pool's window spans d*(k-1)+1 inputs, and with that
        # extent the pool's input size is always an admissible output size.
        extent = tuple(d * (k - 1) + 1 for k, d in zip(pool.kernel_size, pool.dilation))
        fn = _pool.max_unpool1d if self._nd == 1 else _pool.max_unpool2d
        with _prefixed(self._short_repr()):
            y = fn(x, idx, extent, pool.stride, pool.padding, output_size=in_shape[2:])
        self._save(indices=idx, out_shape=y.shape)
        return y

    def backward(self, grad_output):
        """Gather the gradient at the switches used by the last forward.

        Returns
        -------
        grad_input : ndarray, shape of the last input
        """
        c = self._saved()
        g = self._check_grad_output(grad_output, c["out_shape"])
        fn = _pool.max_unpool1d_backward if self._nd == 1 else _pool.max_unpool2d_backward
        with _prefixed(self._short_repr()):
            return fn(g, c["indices"])


class MaxUnpool1d(_MaxUnpoolNd):
    """Max unpooling with the switches of a paired :class:`MaxPool1d` (Zeiler & Fergus's deconvnet).

    Parameters
    ----------
    pool : MaxPool1d
        The pooling layer whose last forward's switches (argmax indices),
        window and input size are used. It is *not* a sub-module of this
        layer (it appears in the network on its own).

    Notes
    -----
    Input: the shape of the pool's last output ``(N, C, L_out)``; output:
    the pool's last input shape ``(N, C, L)`` (``output_size`` is that size,
    so the round trip restores it exactly, also for odd sizes), zeros
    except at the switches. Unlike ``torch.nn.MaxUnpool1d`` it is built
    from the pool layer rather than from kernel sizes, and needs no indices
    argument. A pool with dilation works too.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> pool = nn.MaxPool1d(2)
    >>> unpool = nn.MaxUnpool1d(pool)
    >>> unpool(pool(np.array([[[1., 3., 2., 5., 4.]]])))
    array([[[0., 3., 0., 5., 0.]]])
    """
    _nd = 1


class MaxUnpool2d(_MaxUnpoolNd):
    """Max unpooling with the switches of a paired :class:`MaxPool2d` (Zeiler & Fergus's deconvnet).

    Parameters
    ----------
    pool : MaxPool2d
        The pooling layer whose last forward's switches, window and input
        size are used (not registered as a sub-module).

    Notes
    -----
    Input: the shape of the pool's last output ``(N, C, H_out, W_out)``;
    output: the pool's last input shape ``(N, C, H, W)``, zeros except at
    the switches. Raises RuntimeError if the pool has not run, ValueError
    if the input shape differs from the pool's output. With overlapping
    windows sharing a maximum, the last duplicate is kept and only it
    receives gradient (see :func:`deconv.max_unpool2d`).

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> pool = nn.MaxPool2d(2)
    >>> unpool = nn.MaxUnpool2d(pool)
    >>> unpool(pool(np.arange(9.0).reshape(1, 1, 3, 3)))[0, 0]
    array([[0., 0., 0.],
           [0., 4., 0.],
           [0., 0., 0.]])
    """
    _nd = 2


# ---------------------------------------------------------------------------
# upsampling
# ---------------------------------------------------------------------------

class Upsample(Module):
    """Nearest or bilinear upsampling, as ``torch.nn.Upsample``.

    Parameters
    ----------
    size : int or tuple of ints, optional
        Output spatial size.
    scale_factor : float or tuple of floats, optional
        Multiplier of the spatial size. Give exactly one of ``size`` and
        ``scale_factor``.
    mode : {'nearest', 'bilinear'}
        'nearest' for 3-D ``(N, C, L)`` and 4-D ``(N, C, H, W)`` inputs
        (:func:`deconv.upsample_nearest1d` / ``2d``), 'bilinear' for 4-D
        only (:func:`deconv.upsample_bilinear2d`).
    align_corners : bool, default False
        Only with 'bilinear' (True with 'nearest' is refused, as in torch);
        None means False.

    Notes
    -----
    Output size ``size``, or ``floor(L * scale_factor)`` per axis. A given
    ``scale_factor`` enters the index map (``recompute_scale_factor=None``
    in torch), forward and backward alike.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> nn.Upsample(scale_factor=2)(np.array([[[1., 2.]]]))
    array([[[1., 1., 2., 2.]]])
    >>> nn.Upsample(size=(1, 4), mode='bilinear')(np.array([[[[0., 1.]]]]))
    array([[[[0.  , 0.25, 0.75, 1.  ]]]])
    """

    def __init__(self, size=None, scale_factor=None, mode="nearest", align_corners=False):
        super().__init__()
        if (size is None) == (scale_factor is None):
            raise ValueError(
                f"Upsample: give exactly one of size and scale_factor, got size={size!r} and "
                f"scale_factor={scale_factor!r}")
        if mode not in ("nearest", "bilinear"):
            raise ValueError(f"Upsample: mode must be 'nearest' or 'bilinear', got {mode!r}")
        if align_corners is None:
            align_corners = False
        with _prefixed("Upsample"):
            align_corners = as_bool(align_corners, "align_corners")
        if align_corners and mode != "bilinear":
            raise ValueError(
                f"Upsample: align_corners can only be set with mode='bilinear', got "
                f"mode={mode!r} and align_corners=True")
        if scale_factor is not None:
            if isinstance(scale_factor, (list, tuple)):
                scale_factor = tuple(scale_factor)
            elif isinstance(scale_factor, (bool, np.bool_)) or not isinstance(
                    scale_factor, (int, float, np.integer, np.floating)):
                raise TypeError(
                    f"Upsample: scale_factor must be a positive float or a tuple of them, got "
                    f"{scale_factor!r}")
            else:
                scale_factor = float(scale_factor)
        if isinstance(size, list):
            size = tuple(size)
        self.size = size
        self.scale_factor = scale_factor
        self.mode = mode
        self.align_corners = align_corners

    def extra_repr(self):
        s = (f"size={self.size!r}" if self.size is not None
             else f"scale_factor={self.scale_factor!r}")
        s += f", mode={self.mode!r}"
        if self.align_corners:
            s += ", align_corners=True"
        return s

    def _functions(self, ndim):
        if self.mode == "bilinear":
            if ndim != 4:
                raise ValueError(
                    f"{self._short_repr()}: mode='bilinear' needs a 4-D input (N, C, H, W), got "
                    f"{ndim}-D")
            return _up.upsample_bilinear2d, _up.upsample_bilinear2d_backward
        if ndim == 3:
            return _up.upsample_nearest1d, _up.upsample_nearest1d_backward
        if ndim == 4:
            return _up.upsample_nearest2d, _up.upsample_nearest2d_backward
        raise ValueError(
            f"{self._short_repr()}: mode='nearest' needs a 3-D (N, C, L) or 4-D (N, C, H, W) "
            f"input, got {ndim}-D")

    def forward(self, x):
        """Upsample ``x``: ``(N, C, *spatial) -> (N, C, *spatial_out)``."""
        x = _as_array(x, f"{self._short_repr()}: input")
        fwd, _ = self._functions(x.ndim)
        kw = {"align_corners": self.align_corners} if self.mode == "bilinear" else {}
        with _prefixed(self._short_repr()):
            y = fwd(x, size=self.size, scale_factor=self.scale_factor, **kw)
        self._save(input_shape=x.shape, out_shape=y.shape)
        return y

    def backward(self, grad_output):
        """The adjoint of the forward's interpolation map."""
        c = self._saved()
        g = self._check_grad_output(grad_output, c["out_shape"])
        _, bwd = self._functions(g.ndim)
        kw = {"align_corners": self.align_corners} if self.mode == "bilinear" else {}
        with _prefixed(self._short_repr()):
            return bwd(g, c["input_shape"], scale_factor=self.scale_factor, **kw)


class PixelShuffle(Module):
    """``(N, C*r*r, H, W) -> (N, C, H*r, W*r)``, as ``torch.nn.PixelShuffle``.

    Parameters
    ----------
    upscale_factor : int
        ``r >= 1``.

    Notes
    -----
    ``y[n, c, h*r + i, w*r + j] = x[n, c*r*r + i*r + j, h, w]``; see
    :func:`deconv.pixel_shuffle`.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> nn.PixelShuffle(2)(np.arange(4.0).reshape(1, 4, 1, 1))[0, 0]
    array([[0., 1.],
           [2., 3.]])
    """

    def __init__(self, upscale_factor):
        super().__init__()
        with _prefixed("PixelShuffle"):
            self.upscale_factor = _positive_int(upscale_factor, "upscale_factor")

    def extra_repr(self):
        return f"upscale_factor={self.upscale_factor}"

    def forward(self, x):
        """Rearrange channels into space."""
        with _prefixed(self._short_repr()):
            y = _up.pixel_shuffle(x, self.upscale_factor)
        self._save(out_shape=y.shape)
        return y

    def backward(self, grad_output):
        """The inverse rearrangement (a permutation's adjoint)."""
        c = self._saved()
        g = self._check_grad_output(grad_output, c["out_shape"])
        with _prefixed(self._short_repr()):
            return _up.pixel_shuffle_backward(g, self.upscale_factor)


class PixelUnshuffle(Module):
    """``(N, C, H*r, W*r) -> (N, C*r*r, H, W)``, as ``torch.nn.PixelUnshuffle``.

    Parameters
    ----------
    downscale_factor : int
        ``r >= 1``; ``H`` and ``W`` of the input must be multiples of it.

    Notes
    -----
    The inverse of :class:`PixelShuffle`; see :func:`deconv.pixel_unshuffle`.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> nn.PixelUnshuffle(2)(np.arange(4.0).reshape(1, 1, 2, 2)).ravel()
    array([0., 1., 2., 3.])
    """

    def __init__(self, downscale_factor):
        super().__init__()
        with _prefixed("PixelUnshuffle"):
            self.downscale_factor = _positive_int(downscale_factor, "downscale_factor")

    def extra_repr(self):
        return f"downscale_factor={self.downscale_factor}"

    def forward(self, x):
        """Rearrange space into channels."""
        with _prefixed(self._short_repr()):
            y = _up.pixel_unshuffle(x, self.downscale_factor)
        self._save(out_shape=y.shape)
        return y

    def backward(self, grad_output):
        """The inverse rearrangement."""
        c = self._saved()
        g = self._check_grad_output(grad_output, c["out_shape"])
        with _prefixed(self._short_repr()):
            return _up.pixel_unshuffle_backward(g, self.downscale_factor)


# ---------------------------------------------------------------------------
# dense layers, reshaping, activations
# ---------------------------------------------------------------------------

def _check_float_input(module, x):
    x = _as_array(x, f"{module._short_repr()}: input")
    if x.dtype not in _FLOAT_DTYPES:
        raise TypeError(
            f"{module._short_repr()}: input must have dtype float32 or float64, got {x.dtype}")
    return x


class Linear(Module):
    """Affine map on the last axis, as ``torch.nn.Linear``: ``y = x @ weight.T + bias``.

    Parameters
    ----------
    in_features, out_features : int
    bias : bool, default True
    dtype : np.float32 (default) or np.float64
    rng : np.random.Generator, int or None
        As for :class:`Conv2d`.

    Attributes
    ----------
    weight : Parameter, shape (out_features, in_features)
    bias : Parameter, shape (out_features,), or None

    Notes
    -----
    Input ``(*, in_features)``, output ``(*, out_features)``. torch's default
    initialisation: weight and bias uniform on ``[-1/sqrt(in_features),
    1/sqrt(in_features)]``, weight drawn first.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> layer = nn.Linear(4, 3, rng=0)
    >>> layer(np.ones((2, 4), dtype=np.float32)).shape
    (2, 3)
    """

    def __init__(self, in_features, out_features, bias=True, *, dtype=np.float32, rng=None):
        super().__init__()
        with _prefixed("Linear"):
            self.in_features = _positive_int(in_features, "in_features")
            self.out_features = _positive_int(out_features, "out_features")
            bias = as_bool(bias, "bias")
            dt = _float_dtype(dtype)
            gen = _as_generator(rng)
        w_bound, b_bound = _torch_uniform_bounds(self.in_features)
        self.weight = Parameter(
            gen.uniform(-w_bound, w_bound, size=(self.out_features, self.in_features)).astype(dt))
        self.bias = (Parameter(gen.uniform(-b_bound, b_bound, size=self.out_features).astype(dt))
                     if bias else None)

    def extra_repr(self):
        s = f"in_features={self.in_features}, out_features={self.out_features}"
        if self.bias is None:
            s += ", bias=False"
        if self.weight.dtype != np.float32:
            s += f", dtype={self.weight.dtype}"
        return s

    def forward(self, x):
        """``(*, in_features) -> (*, out_features)``."""
        x = _as_array(x, f"{self._short_repr()}: input")
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"{self._short_repr()} expects input of shape (*, in_features={self.in_features}), "
                f"got shape {x.shape}")
        if x.dtype != self.weight.dtype:
            raise TypeError(
                f"{self._short_repr()} has {self.weight.dtype} parameters but the input has dtype "
                f"{x.dtype}")
        w = self.weight.data                     # (out, in)
        y = x @ w.T                              # (*, out)
        if self.bias is not None:
            y += self.bias.data
        self._save(x=x, w=w, out_shape=y.shape)
        return y

    def backward(self, grad_output):
        """``grad_input = g @ weight``; adds ``g^T x`` and ``sum g`` into the gradients."""
        c = self._saved()
        g = self._check_grad_output(grad_output, c["out_shape"])
        x, w = c["x"], c["w"]
        g2 = g.reshape(-1, self.out_features)    # (M, out)
        x2 = x.reshape(-1, self.in_features)     # (M, in)
        self.weight.grad += g2.T @ x2            # (out, in)
        if self.bias is not None:
            self.bias.grad += g2.sum(axis=0)     # (out,)
        return g @ w                             # (*, in)


class Flatten(Module):
    """Flatten axes ``start_dim..end_dim`` into one, as ``torch.nn.Flatten``.

    Parameters
    ----------
    start_dim : int, default 1
    end_dim : int, default -1

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> nn.Flatten()(np.zeros((2, 3, 4, 5))).shape
    (2, 60)
    """

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        with _prefixed("Flatten"):
            self.start_dim = as_int(start_dim, "start_dim")
            self.end_dim = as_int(end_dim, "end_dim")

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"

    def forward(self, x):
        """``(d0, .., d_start, .., d_end, ..) -> (d0, .., prod, ..)`` (a view when possible)."""
        x = _as_array(x, f"{self._short_repr()}: input")
        s = self.start_dim + x.ndim if self.start_dim < 0 else self.start_dim
        e = self.end_dim + x.ndim if self.end_dim < 0 else self.end_dim
        if not (0 <= s < max(x.ndim, 1) and 0 <= e < max(x.ndim, 1) and s <= e):
            raise ValueError(
                f"{self._short_repr()}: start_dim and end_dim must index axes of the input, "
                f"start <= end, got an input of shape {x.shape}")
        shape = x.shape[:s] + (math.prod(x.shape[s:e + 1]),) + x.shape[e + 1:]
        y = x.reshape(shape)
        self._save(input_shape=x.shape, out_shape=y.shape)
        return y

    def backward(self, grad_output):
        """Reshape the gradient back to the input's shape."""
        c = self._saved()
        g = self._check_grad_output(grad_output, c["out_shape"])
        return g.reshape(c["input_shape"])


class Permute(Module):
    """Reorder the axes, as ``torchvision.ops.Permute``: ``y = x.transpose(dims)``.

    Parameters
    ----------
    dims : sequence of int
        A permutation of ``range(x.ndim)``; e.g. ``(0, 2, 1)`` turns an
        embedding's ``(N, L, D)`` into the ``(N, D, L)`` of a Conv1d.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> nn.Permute((0, 2, 1))(np.zeros((2, 5, 3))).shape
    (2, 3, 5)
    """

    def __init__(self, dims):
        super().__init__()
        if not isinstance(dims, (list, tuple)):
            raise TypeError(f"Permute: dims must be a sequence of ints, got {dims!r}")
        with _prefixed("Permute"):
            dims = tuple(as_int(d, "dims") for d in dims)
        if sorted(dims) != list(range(len(dims))):
            raise ValueError(f"Permute: dims must be a permutation of 0..{len(dims) - 1}, "
                             f"got {dims!r}")
        self.dims = dims

    def extra_repr(self):
        return f"dims={self.dims}"

    def forward(self, x):
        """``x.transpose(dims)`` (a view)."""
        x = _as_array(x, f"{self._short_repr()}: input")
        if x.ndim != len(self.dims):
            raise ValueError(f"{self._short_repr()} expects a {len(self.dims)}-D input, got shape "
                             f"{x.shape}")
        y = x.transpose(self.dims)
        self._save(out_shape=y.shape)
        return y

    def backward(self, grad_output):
        """The inverse permutation of the gradient."""
        c = self._saved()
        g = self._check_grad_output(grad_output, c["out_shape"])
        return g.transpose(np.argsort(self.dims))


class Identity(Module):
    """Returns its input; backward returns the upstream gradient.

    Used as the skip branch of :class:`Concat`.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> nn.Identity()(np.ones(2))
    array([1., 1.])
    """

    def forward(self, x):
        """``x`` itself (not a copy)."""
        x = _as_array(x, f"{self._short_repr()}: input")
        self._save(out_shape=x.shape)
        return x

    def backward(self, grad_output):
        """``grad_output`` itself."""
        c = self._saved()
        return self._check_grad_output(grad_output, c["out_shape"])


class ReLU(Module):
    """``max(x, 0)``, as ``torch.nn.ReLU``; the gradient at 0 is 0.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> nn.ReLU()(np.array([-1., 0., 2.]))
    array([0., 0., 2.])
    """

    def forward(self, x):
        """Elementwise, any shape."""
        x = _check_float_input(self, x)
        self._save(positive=x > 0, out_shape=x.shape)
        return np.maximum(x, 0)

    def backward(self, grad_output):
        """``grad_output * (x > 0)``."""
        c = self._saved()
        g = self._check_grad_output(grad_output, c["out_shape"])
        return g * c["positive"]


class LeakyReLU(Module):
    """``x`` if ``x > 0`` else ``negative_slope * x``, as ``torch.nn.LeakyReLU``.

    Parameters
    ----------
    negative_slope : float, default 0.01

    Notes
    -----
    The gradient at 0 is ``negative_slope`` (torch's choice).

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> nn.LeakyReLU(0.5)(np.array([-2., 3.]))
    array([-1.,  3.])
    """

    def __init__(self, negative_slope=0.01):
        super().__init__()
        if isinstance(negative_slope, (bool, np.bool_)) or not isinstance(
                negative_slope, (int, float, np.integer, np.floating)):
            raise TypeError(f"LeakyReLU: negative_slope must be a float, got {negative_slope!r}")
        if not math.isfinite(negative_slope):
            raise ValueError(f"LeakyReLU: negative_slope must be finite, got {negative_slope!r}")
        self.negative_slope = float(negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"

    def forward(self, x):
        """Elementwise, any shape."""
        x = _check_float_input(self, x)
        positive = x > 0
        self._save(positive=positive, out_shape=x.shape)
        return np.where(positive, x, x * self.negative_slope)

    def backward(self, grad_output):
        """``grad_output`` where ``x > 0``, ``negative_slope * grad_output`` elsewhere."""
        c = self._saved()
        g = self._check_grad_output(grad_output, c["out_shape"])
        return np.where(c["positive"], g, g * self.negative_slope)


class Sigmoid(Module):
    """``1 / (1 + exp(-x))`` (``scipy.special.expit``, stable for large ``|x|``).

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> nn.Sigmoid()(np.array([0.0]))
    array([0.5])
    """

    def forward(self, x):
        """Elementwise, any shape."""
        x = _check_float_input(self, x)
        y = special.expit(x)
        self._save(y=y)
        return y

    def backward(self, grad_output):
        """``grad_output * y * (1 - y)``."""
        y = self._saved()["y"]
        g = self._check_grad_output(grad_output, y.shape)
        return g * (y * (1 - y))


class Tanh(Module):
    """Hyperbolic tangent.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> nn.Tanh()(np.array([0.0]))
    array([0.])
    """

    def forward(self, x):
        """Elementwise, any shape."""
        x = _check_float_input(self, x)
        y = np.tanh(x)
        self._save(y=y)
        return y

    def backward(self, grad_output):
        """``grad_output * (1 - y**2)``."""
        y = self._saved()["y"]
        g = self._check_grad_output(grad_output, y.shape)
        return g * (1 - y * y)


class Dropout(Module):
    """Inverted dropout, as ``torch.nn.Dropout``.

    Parameters
    ----------
    p : float, default 0.5
        Probability of zeroing an element, ``0 <= p <= 1``.
    rng : np.random.Generator, int or None
        Source of the masks (a fresh ``default_rng()`` if None).

    Notes
    -----
    In training mode each element is kept with probability ``1 - p`` and
    scaled by ``1 / (1 - p)`` (all zeros for ``p = 1``); the mask is drawn
    from ``rng.random(x.shape) >= p`` (float64 draws, so the mask does not
    depend on the dtype) and reused by the backward. In eval mode
    (:meth:`Module.eval`) it is the identity.
    :func:`deconv.gradcheck.gradcheck` rewinds ``rng`` before every
    evaluation, so a check in training mode sees one fixed mask.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> drop = nn.Dropout(0.5, rng=0)
    >>> sorted(set(drop(np.ones(1000)).tolist()))
    [0.0, 2.0]
    >>> drop.eval()(np.ones(3))
    array([1., 1., 1.])
    """

    def __init__(self, p=0.5, rng=None):
        super().__init__()
        if isinstance(p, (bool, np.bool_)) or not isinstance(
                p, (int, float, np.integer, np.floating)):
            raise TypeError(f"Dropout: p must be a float in [0, 1], got {p!r}")
        if not 0 <= p <= 1:
            raise ValueError(f"Dropout: p must be a probability in [0, 1], got p={p!r}")
        self.p = float(p)
        with _prefixed("Dropout"):
            self.rng = _as_generator(rng)

    def extra_repr(self):
        return f"p={self.p}"

    def forward(self, x):
        """Training: ``x * mask / (1 - p)``; eval: ``x``."""
        x = _check_float_input(self, x)
        if not self.training or self.p == 0:
            self._save(mask=None, out_shape=x.shape)
            return x
        if self.p == 1:
            mask = np.zeros(x.shape, dtype=x.dtype)
        else:
            keep = self.rng.random(x.shape) >= self.p
            mask = keep.astype(x.dtype) * x.dtype.type(1 / (1 - self.p))
        self._save(mask=mask, out_shape=x.shape)
        return x * mask

    def backward(self, grad_output):
        """``grad_output`` times the forward's scaled mask."""
        c = self._saved()
        g = self._check_grad_output(grad_output, c["out_shape"])
        return g if c["mask"] is None else g * c["mask"]


class Embedding(Module):
    """A lookup table, as ``torch.nn.Embedding``.

    Parameters
    ----------
    num_embeddings : int
        Vocabulary size ``V``.
    embedding_dim : int
        Vector size ``D``.
    padding_idx : int, optional
        A row initialised to zero that never receives gradient (negative
        values count from the end), as in torch; this is deliberately not
        the derivative, so a gradcheck whose input contains it fails.
    dtype : np.float32 (default) or np.float64
    rng : np.random.Generator, int or None

    Attributes
    ----------
    weight : Parameter, shape (num_embeddings, embedding_dim)
        Initialised from N(0, 1), as torch.

    Notes
    -----
    Input: an integer array of any shape, e.g. ``(N, L)``, values in
    ``[0, V)``; output ``(N, L, D)``. ``backward`` adds the gradient rows
    into ``weight.grad`` (repeated indices accumulate) and returns None:
    there is no gradient with respect to integer indices.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> emb = nn.Embedding(10, 4, rng=0)
    >>> emb(np.array([[1, 2, 1]])).shape
    (1, 3, 4)
    """

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, *, dtype=np.float32,
                 rng=None):
        super().__init__()
        with _prefixed("Embedding"):
            self.num_embeddings = _positive_int(num_embeddings, "num_embeddings")
            self.embedding_dim = _positive_int(embedding_dim, "embedding_dim")
            if padding_idx is not None:
                padding_idx = as_int(padding_idx, "padding_idx")
                if not -self.num_embeddings <= padding_idx < self.num_embeddings:
                    raise ValueError(
                        f"padding_idx must be in [-num_embeddings, num_embeddings) = "
                        f"[{-self.num_embeddings}, {self.num_embeddings}), got {padding_idx}")
                padding_idx %= self.num_embeddings
            dt = _float_dtype(dtype)
            gen = _as_generator(rng)
        self.padding_idx = padding_idx
        w = gen.standard_normal((self.num_embeddings, self.embedding_dim)).astype(dt)
        if padding_idx is not None:
            w[padding_idx] = 0
        self.weight = Parameter(w)

    def extra_repr(self):
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        return s

    def forward(self, indices):
        """``(*) int -> (*, embedding_dim)``: the rows of ``weight`` at ``indices``."""
        indices = _as_array(indices, f"{self._short_repr()}: input")
        if indices.dtype.kind not in "iu":
            raise TypeError(
                f"{self._short_repr()}: input must be an integer array of indices, got dtype "
                f"{indices.dtype}")
        if indices.size and (indices.min() < 0 or indices.max() >= self.num_embeddings):
            bad = indices[(indices < 0) | (indices >= self.num_embeddings)].ravel()[0]
            raise ValueError(
                f"{self._short_repr()}: input indices must lie in [0, num_embeddings="
                f"{self.num_embeddings}), got {int(bad)}")
        indices = indices.astype(np.intp, copy=True)
        y = self.weight.data[indices]            # (*, D)
        self._save(indices=indices, out_shape=y.shape)
        return y

    def backward(self, grad_output):
        """Add the gradient rows into ``weight.grad``; returns None."""
        c = self._saved()
        g = self._check_grad_output(grad_output, c["out_shape"])
        idx = c["indices"].ravel()
        rows = g.reshape(-1, self.embedding_dim)
        if self.padding_idx is not None:
            keep = idx != self.padding_idx
            idx, rows = idx[keep], rows[keep]
        np.add.at(self.weight.grad, idx, rows.astype(self.weight.grad.dtype, copy=False))
        return None


# ---------------------------------------------------------------------------
# containers
# ---------------------------------------------------------------------------

def _check_unique(container):
    """Refuse a module instance that appears twice in the tree (its cache holds one forward)."""
    seen = {}

    def walk(module, name):
        if id(module) in seen:
            raise ValueError(
                f"{type(container).__name__}: the module instance {module._short_repr()} appears "
                f"twice (as {seen[id(module)]!r} and {name!r}); without autograd a module holds "
                f"the cache of one forward only, so use separate instances (they may share a "
                f"Parameter)")
        seen[id(module)] = name
        for child_name, child in module._modules.items():
            walk(child, f"{name}.{child_name}" if name else child_name)

    walk(container, "")


class Sequential(Module):
    """Modules applied in order; backward runs them in reverse.

    Parameters
    ----------
    *modules : Module
        Registered as children ``"0"``, ``"1"``, ... (so parameter names are
        ``"0.weight"``, ...). A single ``OrderedDict`` of name -> module
        gives named children instead, as in torch.

    Notes
    -----
    Indexable (an int gives the module, a slice a new Sequential of the same
    modules under the same names), iterable, with ``len``. A module instance may appear only once
    in the whole tree (ValueError otherwise).

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, rng=0), nn.ReLU(), nn.MaxPool2d(2))
    >>> [name for name, _ in net.named_parameters()]
    ['0.weight', '0.bias']
    >>> y = net(np.ones((2, 1, 8, 8), dtype=np.float32))
    >>> y.shape, net.backward(np.ones_like(y)).shape
    ((2, 4, 4, 4), (2, 1, 8, 8))
    """

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            items = list(modules[0].items())
        else:
            items = [(str(i), m) for i, m in enumerate(modules)]
        for name, m in items:
            if not isinstance(m, Module):
                raise TypeError(
                    f"Sequential: every element must be a Module, got {type(m).__name__} at "
                    f"position {name}")
            setattr(self, name, m)
        _check_unique(self)

    def append(self, module):
        """Add ``module`` at the end; returns ``self``."""
        if not isinstance(module, Module):
            raise TypeError(f"Sequential.append: expected a Module, got {type(module).__name__}")
        setattr(self, str(len(self)), module)
        try:
            _check_unique(self)
        except ValueError:
            delattr(self, str(len(self) - 1))
            raise
        return self

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, index):
        items = list(self._modules.items())
        if isinstance(index, slice):
            return Sequential(OrderedDict(items[index]))   # keeps the names, as torch
        return items[index][1]

    def forward(self, x):
        """Apply every module in order."""
        for m in self._modules.values():
            x = m.forward(x)
        self._save(done=True)
        return x

    def backward(self, grad_output):
        """Every module's backward in reverse order; returns the first module's input gradient."""
        self._saved()
        g = grad_output
        for m in reversed(self._modules.values()):
            g = m.backward(g)
        return g


class Concat(Module):
    """Run several branches on one input and join their outputs on the channel axis (axis 1).

    Parameters
    ----------
    *branches : Module
        Children ``"0"``, ``"1"``, ... Every branch's output must agree
        with the others on every axis but the channel axis.

    Notes
    -----
    ``forward(x) = concatenate([b(x) for b in branches], axis=1)``;
    ``backward`` splits the gradient by each branch's channel count and
    returns the sum of the branches' input gradients. With
    ``Concat(Identity(), block)`` this is a U-Net-style skip connection::

        (N, C, H, W) -> (N, C + C_block, H, W)

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> skip = nn.Concat(nn.Identity(), nn.Conv2d(3, 5, 3, padding=1, rng=0))
    >>> x = np.ones((2, 3, 4, 4), dtype=np.float32)
    >>> y = skip(x)
    >>> y.shape, skip.backward(np.ones_like(y)).shape
    ((2, 8, 4, 4), (2, 3, 4, 4))
    """

    def __init__(self, *branches):
        super().__init__()
        if not branches:
            raise ValueError("Concat: give at least one branch")
        for i, m in enumerate(branches):
            if not isinstance(m, Module):
                raise TypeError(
                    f"Concat: every branch must be a Module, got {type(m).__name__} at "
                    f"position {i}")
            setattr(self, str(i), m)
        _check_unique(self)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, index):
        return list(self._modules.values())[index]

    def forward(self, x):
        """``(N, C, *spatial) -> (N, sum of the branches' channels, *spatial_out)``."""
        outs = [m.forward(x) for m in self._modules.values()]
        first = outs[0]
        for i, o in enumerate(outs):
            if (not isinstance(o, np.ndarray) or o.ndim < 2 or o.ndim != first.ndim
                    or o.shape[:1] + o.shape[2:] != first.shape[:1] + first.shape[2:]):
                shapes = ", ".join(f"branch {j}: {np.shape(a)}" for j, a in enumerate(outs))
                raise ValueError(
                    f"Concat: branch outputs must agree on every axis but the channel axis 1, "
                    f"got {shapes}")
        y = np.concatenate(outs, axis=1)
        self._save(channels=[o.shape[1] for o in outs], out_shape=y.shape)
        return y

    def backward(self, grad_output):
        """Split the gradient along axis 1 and sum the branches' input gradients."""
        c = self._saved()
        g = self._check_grad_output(grad_output, c["out_shape"])
        bounds = np.cumsum(c["channels"])[:-1]
        total = None
        for m, part in zip(self._modules.values(), np.split(g, bounds, axis=1)):
            gi = m.backward(part)
            if gi is None:
                continue
            if total is None:
                total = np.array(gi, copy=True)  # never add into a branch's (or the caller's) array
            else:
                total += gi
        return total


# ---------------------------------------------------------------------------
# losses
# ---------------------------------------------------------------------------

class Loss:
    """Base class of the losses: ``forward(prediction, target) -> float`` and ``backward()``.

    ``backward()`` returns the gradient of the last forward's value with
    respect to ``prediction`` (shape and dtype of ``prediction``).

    Parameters
    ----------
    reduction : {'mean', 'sum'}
        'mean' (default) divides the sum by the number of elements, as
        torch.
    """

    def __init__(self, reduction="mean"):
        if reduction not in ("mean", "sum"):
            raise ValueError(
                f"{type(self).__name__}: reduction must be 'mean' or 'sum', got {reduction!r}")
        self.reduction = reduction
        self._cache = None

    def __call__(self, prediction, target):
        return self.forward(prediction, target)

    def forward(self, prediction, target):
        raise NotImplementedError

    def backward(self):
        raise NotImplementedError

    def _saved(self):
        if self._cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward() called before forward()")
        return self._cache

    def _prediction_and_target(self, prediction, target):
        name = type(self).__name__
        prediction = _as_array(prediction, f"{name}: prediction")
        if prediction.dtype not in _FLOAT_DTYPES:
            raise TypeError(f"{name}: prediction must have dtype float32 or float64, got "
                            f"{prediction.dtype}")
        target = np.asarray(target)
        if target.dtype.kind not in "fiu":
            raise TypeError(f"{name}: target must be a real (float or int) array, got dtype "
                            f"{target.dtype}")
        if target.shape != prediction.shape:
            raise ValueError(f"{name}: target shape {target.shape} must equal the prediction "
                             f"shape {prediction.shape}")
        return prediction, target.astype(prediction.dtype, copy=False)

    def _divisor(self, n):
        return n if self.reduction == "mean" else 1

    def __repr__(self):
        return f"{type(self).__name__}(reduction={self.reduction!r})"


class MSELoss(Loss):
    """Mean squared error, as ``torch.nn.MSELoss``.

    Notes
    -----
    ``loss = sum((prediction - target)**2) / n`` (``n`` = number of
    elements; ``reduction='sum'`` drops the division), gradient
    ``2 (prediction - target) / n``. Shapes must be equal (no broadcasting).
    The value is accumulated in float64.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> loss = nn.MSELoss()
    >>> loss(np.array([1.0, 2.0]), np.array([0.0, 0.0]))
    2.5
    >>> loss.backward()
    array([1., 2.])
    """

    def forward(self, prediction, target):
        """``prediction`` and ``target`` of one shape -> float."""
        p, t = self._prediction_and_target(prediction, target)
        d = p - t
        div = self._divisor(d.size)
        with np.errstate(invalid="ignore", divide="ignore"):
            value = float(np.sum(np.square(d, dtype=np.float64)) / div)
        self._cache = dict(d=d, div=div)
        return value

    def backward(self):
        """``2 (prediction - target) / n``."""
        c = self._saved()
        with np.errstate(invalid="ignore", divide="ignore"):
            return c["d"] * (2.0 / c["div"]) if c["div"] else c["d"] * np.nan


class L1Loss(Loss):
    """Mean absolute error, as ``torch.nn.L1Loss``.

    Notes
    -----
    ``loss = sum|prediction - target| / n``, gradient
    ``sign(prediction - target) / n`` with ``sign(0) = 0`` (torch's choice).

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> loss = nn.L1Loss()
    >>> loss(np.array([1.0, -3.0, 2.0]), np.array([0.0, 0.0, 2.0]))
    1.3333333333333333
    >>> loss.backward()
    array([ 0.33333333, -0.33333333,  0.        ])
    """

    def forward(self, prediction, target):
        """``prediction`` and ``target`` of one shape -> float."""
        p, t = self._prediction_and_target(prediction, target)
        d = p - t
        div = self._divisor(d.size)
        with np.errstate(invalid="ignore", divide="ignore"):
            value = float(np.sum(np.abs(d), dtype=np.float64) / div)
        self._cache = dict(d=d, div=div)
        return value

    def backward(self):
        """``sign(prediction - target) / n``."""
        c = self._saved()
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.sign(c["d"]) * (1.0 / c["div"]) if c["div"] else c["d"] * np.nan


class CrossEntropyLoss(Loss):
    """Softmax cross-entropy on logits with integer class targets, as ``torch.nn.CrossEntropyLoss``.

    Parameters
    ----------
    weight : ndarray, shape (C,), optional
        Per-class weights.
    ignore_index : int, default -100
        Positions whose target equals it contribute nothing (and are not
        counted in the mean).
    reduction : {'mean', 'sum'}

    Notes
    -----
    Logits ``(N, C)`` or ``(N, C, d1, d2, ...)`` (float32 or float64);
    targets ``(N,)`` or ``(N, d1, d2, ...)``, integers in ``[0, C)`` (or
    ``ignore_index``). With ``log_softmax`` computed stably
    (``z - max z - log sum exp(z - max z)``) along the class axis 1::

        loss = sum_i w[t_i] * (-log_softmax(z_i)[t_i]) / sum_i w[t_i]

    over all ``N * d1 * ...`` positions ``i`` not ignored (``w = 1`` without
    ``weight``, so the denominator is their count; ``reduction='sum'`` drops
    it). The gradient is ``w[t_i] (softmax(z_i) - onehot(t_i)) /
    denominator``. If every position is ignored the mean is NaN, as in
    torch. Probability ("soft") targets and label smoothing are not
    implemented.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> loss = nn.CrossEntropyLoss()
    >>> round(loss(np.array([[0.0, 0.0]]), np.array([1])), 6)   # log 2
    0.693147
    >>> loss.backward()
    array([[ 0.5, -0.5]])
    """

    def __init__(self, weight=None, ignore_index=-100, reduction="mean"):
        super().__init__(reduction)
        if weight is not None:
            weight = _as_array(weight, "CrossEntropyLoss: weight")
            if weight.ndim != 1 or weight.dtype.kind not in "fiu":
                raise ValueError(
                    f"CrossEntropyLoss: weight must be a 1-D real array of one weight per class, "
                    f"got shape {weight.shape} and dtype {weight.dtype}")
        self.weight = weight
        with _prefixed("CrossEntropyLoss"):
            self.ignore_index = as_int(ignore_index, "ignore_index")

    def __repr__(self):
        return (f"CrossEntropyLoss(ignore_index={self.ignore_index}, "
                f"reduction={self.reduction!r}{', weight=...' if self.weight is not None else ''})")

    def forward(self, prediction, target):
        """Logits ``(N, C, *d)`` and integer targets ``(N, *d)`` -> float."""
        logits = _as_array(prediction, "CrossEntropyLoss: prediction (logits)")
        if logits.dtype not in _FLOAT_DTYPES:
            raise TypeError(f"CrossEntropyLoss: logits must have dtype float32 or float64, got "
                            f"{logits.dtype}")
        if logits.ndim < 2 or logits.shape[1] < 1:
            raise ValueError(
                f"CrossEntropyLoss: logits must have shape (N, C) or (N, C, d1, ...) with C >= 1, "
                f"got shape {logits.shape}")
        target = np.asarray(target)
        if target.dtype.kind not in "iu":
            raise TypeError(
                f"CrossEntropyLoss: target must be an integer array of class indices, got dtype "
                f"{target.dtype} (probability targets are not supported)")
        C = logits.shape[1]
        expected = logits.shape[:1] + logits.shape[2:]
        if target.shape != expected:
            raise ValueError(
                f"CrossEntropyLoss: target shape {target.shape} does not match logits shape "
                f"{logits.shape}; expected {expected} (the logits' shape without the class axis 1)")
        if self.weight is not None and self.weight.shape != (C,):
            raise ValueError(
                f"CrossEntropyLoss: weight has shape {self.weight.shape}, expected ({C},) for "
                f"{C} classes")
        t = target.reshape(-1).astype(np.int64)               # (M,)
        valid = t != self.ignore_index                        # (M,)
        bad = valid & ((t < 0) | (t >= C))
        if bad.any():
            raise ValueError(
                f"CrossEntropyLoss: target values must lie in [0, {C}) (C = logits.shape[1]) or "
                f"equal ignore_index={self.ignore_index}, got {int(t[bad][0])}")
        t_safe = np.where(valid, t, 0)                        # (M,)
        z = np.moveaxis(logits, 1, -1).reshape(-1, C)         # (M, C)
        m = z.max(axis=1, keepdims=True)                      # (M, 1)
        with np.errstate(invalid="ignore", over="ignore", under="ignore"):
            shifted = z - m                                   # (M, C)
            e = np.exp(shifted)                               # (M, C)
            s = e.sum(axis=1, keepdims=True)                  # (M, 1)
            log_p = shifted - np.log(s)                       # (M, C) log-softmax
        nll = -log_p[np.arange(t.size), t_safe]               # (M,)
        if self.weight is None:
            w = valid.astype(np.float64)                      # (M,)
        else:
            w = np.where(valid, self.weight[t_safe].astype(np.float64), 0.0)
        denom = float(w.sum()) if self.reduction == "mean" else 1.0
        with np.errstate(invalid="ignore", divide="ignore"):
            value = float(np.sum(np.where(valid, w * nll, 0.0)) / denom)
        self._cache = dict(e=e, s=s, t=t_safe, w=w, denom=denom, shape=logits.shape)
        return value

    def backward(self):
        """``w_i (softmax(z_i) - onehot(t_i)) / denominator``, shape and dtype of the logits."""
        c = self._saved()
        e, s, t, w, denom, shape = c["e"], c["s"], c["t"], c["w"], c["denom"], c["shape"]
        with np.errstate(invalid="ignore", divide="ignore"):
            g = e / s                                         # (M, C) softmax
            g[np.arange(t.size), t] -= 1
            scale = (w / denom).astype(g.dtype)               # (M,)
            g *= scale[:, None]
        g = g.reshape(shape[:1] + shape[2:] + shape[1:2])     # (N, *d, C)
        return np.ascontiguousarray(np.moveaxis(g, -1, 1))    # (N, C, *d)
