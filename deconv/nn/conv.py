"""Convolution layers: Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d.

One class, :class:`_ConvNd`, holds the arguments, the initialisation, the
input checks and the forward/backward for all four; a subclass fixes the
number of spatial axes, whether the convolution is transposed and which pair
of functional ops runs it (:mod:`deconv.functional.conv`).
"""

import math

import numpy as np

from deconv.functional import conv as _conv
from deconv.functional import padding as _padding
from deconv.functional import shapes
from deconv.functional.validation import (
    as_bool, as_choice, as_float_dtype, as_generator, as_positive_int, as_tuple,
)
from deconv.nn.module import (
    Module, Parameter, check_parameter_bytes, prefixed, torch_uniform_bounds,
)

__all__ = ["Conv1d", "Conv2d", "ConvTranspose1d", "ConvTranspose2d"]

# 'zeros' is the convolution's own padding; the others pad with deconv.pad first
PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


class _ConvNd(Module):
    """The shared body of the convolution layers (see :class:`Conv2d` for the arguments).

    Subclasses set ``_nd`` (1, 2 or 3 spatial axes), ``_transposed`` and
    ``_functional`` = (forward op, backward op).
    """

    _nd = 2
    _transposed = False

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation,
                 groups, bias, padding_mode, dtype, rng, output_padding=0):
        """Check and store the arguments (errors name the public class); draw the weights."""
        super().__init__()
        nd, name = self._nd, type(self).__name__
        with prefixed(name):
            self.in_channels = as_positive_int(in_channels, "in_channels")
            self.out_channels = as_positive_int(out_channels, "out_channels")
            self.kernel_size = as_tuple(kernel_size, nd, "kernel_size", minimum=1)
            self.stride = as_tuple(stride, nd, "stride", minimum=1)
            self.dilation = as_tuple(dilation, nd, "dilation", minimum=1)
            output_padding_tuple = as_tuple(output_padding, nd, "output_padding", minimum=0)
            self.groups = as_positive_int(groups, "groups")
            if self.in_channels % self.groups:
                raise ValueError(
                    f"in_channels={self.in_channels} must be divisible by groups={self.groups}")
            if self.out_channels % self.groups:
                raise ValueError(
                    f"out_channels={self.out_channels} must be divisible by groups={self.groups}")
            if isinstance(padding, str):
                if padding not in ("valid", "same"):
                    raise ValueError(
                        f"padding must be an int, a tuple of {nd} ints, 'valid' or 'same', "
                        f"got {padding!r}")
                if padding == "same" and any(s != 1 for s in self.stride):
                    raise ValueError(
                        f"padding='same' is not supported for strided convolutions "
                        f"(stride={self.stride})")
                if padding == "same" and self._transposed and any(output_padding_tuple):
                    raise ValueError(
                        f"output_padding={output_padding!r} must be 0 with padding='same' "
                        f"(the output has the input's size)")
                self.padding = padding
            else:
                self.padding = as_tuple(padding, nd, "padding", minimum=0)
            self.output_padding = output_padding_tuple
            for op, s, d in zip(self.output_padding, self.stride, self.dilation):
                if op >= max(s, d):
                    raise ValueError(
                        f"output_padding={self.output_padding} must be smaller than "
                        f"max(stride, dilation) per dimension (stride={self.stride}, "
                        f"dilation={self.dilation})")
            bias = as_bool(bias, "bias")
            self.padding_mode = as_choice(padding_mode, "padding_mode", PADDING_MODES)
            dt = as_float_dtype(dtype)
            gen = as_generator(rng)
        if self._transposed:
            # (C_in, C_out/groups, k...)
            shape = (self.in_channels, self.out_channels // self.groups) + self.kernel_size
        else:
            # (C_out, C_in/groups, k...)
            shape = (self.out_channels, self.in_channels // self.groups) + self.kernel_size
        # torch's _calculate_fan_in_and_fan_out: weight.shape[1] * prod(kernel),
        # for transposed convs too (there weight.shape[1] = C_out/groups).
        with prefixed(name):
            check_parameter_bytes(shape, dt)
        fan_in = shape[1] * math.prod(self.kernel_size)
        w_bound, b_bound = torch_uniform_bounds(fan_in)
        self.weight = Parameter(gen.uniform(-w_bound, w_bound, size=shape).astype(dt))
        if bias:
            self.bias = Parameter(gen.uniform(-b_bound, b_bound, size=self.out_channels).astype(dt))
        else:
            self.bias = None

    def extra_repr(self):
        """Arguments that differ from the defaults, in torch's format."""
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
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        if self.weight.dtype != np.float32:
            s += f", dtype={self.weight.dtype}"
        return s

    def _check_input(self, x):
        """``x`` as a float array of layout ``(N, in_channels, *spatial)`` in the parameters' dtype."""
        x = self._input(x, self._nd + 2)
        if x.shape[1] != self.in_channels:
            spatial = {1: "L", 2: "H, W", 3: "D, H, W"}[self._nd]
            raise ValueError(
                f"{self._short_repr()} expects input of shape (N, in_channels={self.in_channels}, "
                f"{spatial}), got shape {x.shape}")
        self._check_parameter_dtype(x, self.weight.dtype)
        return x

    def _kwargs(self, padding=None, output_padding=None):
        """The options of the functional ops, by keyword (``padding`` and
        ``output_padding`` replace the layer's)."""
        kw = dict(stride=self.stride, padding=self.padding if padding is None else padding,
                  dilation=self.dilation, groups=self.groups)
        if self._transposed:
            kw["output_padding"] = (self.output_padding if output_padding is None
                                    else output_padding)
        return kw

    def _pad_pairs(self):
        """``(before, after)`` zero padding (conv) or cropping (transposed) per axis."""
        if self.padding == "valid":
            return [(0, 0)] * self._nd
        if self.padding == "same":
            return [shapes.same_padding(k, d) for k, d in zip(self.kernel_size, self.dilation)]
        return [(p, p) for p in self.padding]

    def _mode_pad(self):
        """The pad tuple of ``padding_mode`` (last axis first), or None when the
        convolution pads with zeros itself."""
        if self.padding_mode == "zeros" or self.padding == "valid":
            return None
        return tuple(v for pair in self._pad_pairs()[::-1] for v in pair)

    def _output_padding(self, x, output_size):
        """The layer's output_padding, or the one that gives ``output_size``
        (as torch, which then ignores the layer's)."""
        if output_size is None:
            return self.output_padding
        pairs = self._pad_pairs()
        with prefixed(self):
            return _conv.output_padding_for(
                output_size, x.shape, self.out_channels, self.kernel_size, self.stride,
                tuple(p[0] for p in pairs), tuple(p[1] for p in pairs), self.dilation)

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
        return self._forward(x, None)

    def _forward(self, x, output_size):
        """The forward of both kinds; ``output_size`` (transposed only) or None."""
        x = self._check_input(x)
        w = self.weight.data
        b = None if self.bias is None else self.bias.data
        fn = self._functional[0]
        pad = self._mode_pad()
        op = self._output_padding(x, output_size) if self._transposed else None
        if pad is None:
            with prefixed(self):
                y = fn(x, w, bias=b, **self._kwargs(output_padding=op))  # (N, C_out, *spatial_out)
            self._save(y, x=x, w=w, output_padding=op)
        elif not self._transposed:
            with prefixed(self):
                xp = _padding.padded(x, pad=pad, mode=self.padding_mode, value=0.0,
                                     pad_name="padding")   # (N, C_in, *padded)
                y = fn(xp, w, bias=b, **self._kwargs(padding=0))
            self._save(y, x=xp, w=w, input_shape=x.shape)
        else:
            with prefixed(self):
                out_shape = x.shape[:1] + (self.out_channels,) + tuple(
                    shapes.conv_transpose_output_size(L, k, s, pair, opi, d)
                    for L, k, s, pair, opi, d in zip(x.shape[2:], self.kernel_size, self.stride,
                                                     self._pad_pairs(), op, self.dilation))
                # (N, C_out, *padded)
                yp = fn(x, w, bias=None, **self._kwargs(padding=0, output_padding=op))
                # the adjoint of padding: the border folds back onto what it copied
                y = _padding.padded_backward(yp, input_shape=out_shape, pad=pad,
                                             mode=self.padding_mode, pad_name="padding")
            if b is not None:
                y += b.reshape((1, -1) + (1,) * self._nd)
            self._save(y, x=x, w=w, output_padding=op)
        return y

    def backward(self, grad_output):
        """Input gradient; adds the weight (and bias) gradients into ``.grad``.

        Parameters
        ----------
        grad_output : ndarray, shape of the last output

        Returns
        -------
        grad_input : ndarray, shape of the last input, or None
            None with ``input_grad`` False: the input-gradient pass is skipped
            (the functional backward's ``input_grad=False``).
        """
        c, g = self._saved_and_grad(grad_output)
        fn = self._functional[1]
        pad = self._mode_pad()
        op = c.get("output_padding")
        wanted = self.input_grad
        with prefixed(self):
            if pad is None:
                gi, gw, gb = fn(g, c["x"], c["w"], **self._kwargs(output_padding=op),
                                input_grad=wanted)
            elif not self._transposed:
                gxp, gw, gb = fn(g, c["x"], c["w"], **self._kwargs(padding=0), input_grad=wanted)
                gi = None if gxp is None else _padding.padded_backward(
                    gxp, input_shape=c["input_shape"], pad=pad, mode=self.padding_mode,
                    pad_name="padding")
            else:
                gp = _padding.padded(g, pad=pad, mode=self.padding_mode, value=0.0,
                                     pad_name="padding")
                gi, gw, _ = fn(gp, c["x"], c["w"], **self._kwargs(padding=0, output_padding=op),
                               input_grad=wanted)
                # the bias was added after the fold: its gradient sums g, not gp
                gb = g.sum(axis=(0,) + tuple(range(2, g.ndim)))
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
    padding_mode : {{'zeros', 'reflect', 'replicate', 'circular'}}, default 'zeros'
        {padding_mode}
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
{mode_note}
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
        """See the class docstring."""
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, dtype, rng)


class Conv2d(_ConvNd):
    _nd = 2
    _functional = (_conv.conv2d, _conv.conv2d_backward)

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", *, dtype=np.float32, rng=None):
        """See the class docstring."""
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, dtype, rng)


class _ConvTransposeNd(_ConvNd):
    """The transposed layers' forward, which (as torch's) may be given the output size."""

    _transposed = True

    def __call__(self, x, output_size=None):
        """``layer(x, output_size)`` is ``layer.forward(x, output_size)``."""
        return self.forward(x, output_size)

    def forward(self, x, output_size=None):
        """Apply the transposed convolution.

        Parameters
        ----------
        x : ndarray, shape (N, in_channels, *spatial)
            dtype of the parameters.
        output_size : sequence of ints, optional
            The output's spatial size, or its full shape ``(N, out_channels,
            *spatial_out)``, as torch's ``forward(input, output_size)``: it
            picks the ``output_padding`` of this call (the layer's own is then
            ignored, as in torch). Per axis the size must lie in ``[out_min,
            out_min + stride - 1]``, ``out_min`` the size for
            ``output_padding=0``.

        Returns
        -------
        y : ndarray, shape (N, out_channels, *spatial_out)
        """
        return self._forward(x, output_size)


class ConvTranspose1d(_ConvTransposeNd):
    _nd = 1
    _functional = (_conv.conv_transpose1d, _conv.conv_transpose1d_backward)

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros", *,
                 dtype=np.float32, rng=None):
        """See the class docstring."""
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, dtype, rng, output_padding)


class ConvTranspose2d(_ConvTransposeNd):
    _nd = 2
    _functional = (_conv.conv_transpose2d, _conv.conv_transpose2d_backward)

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros", *,
                 dtype=np.float32, rng=None):
        """See the class docstring."""
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, dtype, rng, output_padding)


_CONV_SIZE = ("per axis\n    ``out = floor((L + 2p - d*(k-1) - 1)/s) + 1``\n    "
              "(:func:`deconv.shapes.conv_output_size`; ``'same'`` keeps the size and\n    "
              "puts an odd extra pad at the end).")
_CONVT_SIZE = ("per axis\n    ``out = (L-1)*s - 2p + d*(k-1) + output_padding + 1``;\n    "
               ":func:`deconv.shapes.inverse_output_padding` gives the\n    "
               "``output_padding`` that undoes a strided conv, and\n    "
               "``forward(x, output_size)`` picks it from the wanted size\n    "
               "(in ``[out_min, out_min + s - 1]``, as torch). ``'same'``\n    "
               "(stride 1; not in torch) keeps the size: the adjoint of the\n    "
               "conv's ``'same'``, it crops an odd extra element at the end.")
_CONVT_FAN = ",\n    since torch takes ``weight.shape[1]`` for transposed convs too"
_OUTPUT_PADDING = "output_padding : {}\n        ``< max(stride, dilation)`` per axis.\n    "
_CONV_MODE = ("``'zeros'``: the convolution's own zero padding. The others pad ``x``\n"
              "        with :func:`deconv.pad` in that mode and convolve with padding 0, as\n"
              "        ``torch.nn`` does; the backward goes back through\n"
              "        :func:`deconv.pad_backward`.")
_CONVT_MODE = ("``'zeros'``: the transposed convolution's own cropping. PyTorch\n"
               "        refuses the others; here they give the adjoint of the convolution\n"
               "        with that padding mode (see Notes).")
_CONVT_MODE_NOTE = """
    With a ``padding_mode`` other than ``'zeros'`` the layer is the adjoint
    of the convolution that pads its input with :func:`deconv.pad` in that
    mode: the transposed convolution with padding 0, then
    :func:`deconv.pad_backward` (the border of its output folds back onto
    the positions the padding copied), then the bias. So
    ``<ConvTranspose(x), y> == <x, Conv(y)>`` for the two layers with one
    weight, no bias, and the same ``padding`` and ``padding_mode``. The
    output size is that of ``'zeros'``.
"""
Conv1d.__doc__ = _CONV_DOC.format(
    padding_mode=_CONV_MODE, mode_note="",
    kind="1-D convolution layer", name="Conv1d", fn="conv1d", tuple_kind="int or (int,)",
    padding="int, (int,), 'valid' or 'same'\n        ``'same'`` needs stride 1.",
    output_padding="", wshape="(out_channels, in_channels/groups, kL)",
    fan_in="in_channels/groups * kL", fan_note="",
    layout_in="(N, in_channels, L)", layout_out="(N, out_channels, L_out)", size_note=_CONV_SIZE,
    example_kw="padding='same', ", wshape_example="(8, 3, 3)", x_example="(2, 3, 10)",
    y_example="(2, 8, 10)")
Conv2d.__doc__ = _CONV_DOC.format(
    padding_mode=_CONV_MODE, mode_note="",
    kind="2-D convolution layer", name="Conv2d", fn="conv2d", tuple_kind="int or (int, int)",
    padding="int, (int, int), 'valid' or 'same'\n        ``'same'`` needs stride 1.",
    output_padding="", wshape="(out_channels, in_channels/groups, kH, kW)",
    fan_in="in_channels/groups * kH * kW", fan_note="",
    layout_in="(N, in_channels, H, W)", layout_out="(N, out_channels, H_out, W_out)",
    size_note=_CONV_SIZE, example_kw="stride=2, padding=1, ", wshape_example="(8, 3, 3, 3)",
    x_example="(2, 3, 8, 8)", y_example="(2, 8, 4, 4)")
ConvTranspose1d.__doc__ = _CONV_DOC.format(
    padding_mode=_CONVT_MODE, mode_note=_CONVT_MODE_NOTE,
    kind="1-D transposed convolution layer", name="ConvTranspose1d", fn="conv_transpose1d",
    tuple_kind="int or (int,)",
    padding="int, (int,), 'valid' or 'same'\n        ``'same'`` needs stride 1.",
    output_padding=_OUTPUT_PADDING.format("int or (int,)"),
    wshape="(in_channels, out_channels/groups, kL)", fan_in="out_channels/groups * kL",
    fan_note=_CONVT_FAN, layout_in="(N, in_channels, L)", layout_out="(N, out_channels, L_out)",
    size_note=_CONVT_SIZE, example_kw="stride=2, ", wshape_example="(3, 8, 3)",
    x_example="(2, 3, 10)", y_example="(2, 8, 21)")
ConvTranspose2d.__doc__ = _CONV_DOC.format(
    padding_mode=_CONVT_MODE, mode_note=_CONVT_MODE_NOTE,
    kind='2-D transposed convolution ("deconvolution") layer', name="ConvTranspose2d",
    fn="conv_transpose2d", tuple_kind="int or (int, int)",
    padding="int, (int, int), 'valid' or 'same'\n        ``'same'`` needs stride 1.",
    output_padding=_OUTPUT_PADDING.format("int or (int, int)"),
    wshape="(in_channels, out_channels/groups, kH, kW)", fan_in="out_channels/groups * kH * kW",
    fan_note=_CONVT_FAN, layout_in="(N, in_channels, H, W)",
    layout_out="(N, out_channels, H_out, W_out)", size_note=_CONVT_SIZE,
    example_kw="stride=2, padding=1, output_padding=1, ", wshape_example="(3, 8, 3, 3)",
    x_example="(2, 3, 4, 4)", y_example="(2, 8, 8, 8)")




# issue 13: the 3-D family
class Conv3d(_ConvNd):
    _nd = 3
    _functional = (_conv.conv3d, _conv.conv3d_backward)

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", *, dtype=np.float32, rng=None):
        """See the class docstring."""
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, dtype, rng)


class ConvTranspose3d(_ConvNd):
    _nd = 3
    _transposed = True
    _functional = (_conv.conv_transpose3d, _conv.conv_transpose3d_backward)

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros", *,
                 dtype=np.float32, rng=None):
        """See the class docstring."""
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, dtype, rng, output_padding)


Conv3d.__doc__ = _CONV_DOC.format(
    padding_mode=_CONV_MODE, mode_note="",
    kind="3-D convolution layer", name="Conv3d", fn="conv3d",
    tuple_kind="int or (int, int, int)",
    padding="int, (int, int, int), 'valid' or 'same'\n        ``'same'`` needs stride 1.",
    output_padding="", wshape="(out_channels, in_channels/groups, kD, kH, kW)",
    fan_in="in_channels/groups * kD * kH * kW", fan_note="",
    layout_in="(N, in_channels, D, H, W)", layout_out="(N, out_channels, D_out, H_out, W_out)",
    size_note=_CONV_SIZE, example_kw="stride=2, padding=1, ", wshape_example="(8, 3, 3, 3, 3)",
    x_example="(2, 3, 4, 6, 6)", y_example="(2, 8, 2, 3, 3)")
ConvTranspose3d.__doc__ = _CONV_DOC.format(
    padding_mode=_CONVT_MODE, mode_note=_CONVT_MODE_NOTE,
    kind="3-D transposed convolution layer", name="ConvTranspose3d", fn="conv_transpose3d",
    tuple_kind="int or (int, int, int)", padding="int or (int, int, int)",
    output_padding=_OUTPUT_PADDING.format("int or (int, int, int)"),
    wshape="(in_channels, out_channels/groups, kD, kH, kW)",
    fan_in="out_channels/groups * kD * kH * kW",
    fan_note=_CONVT_FAN, layout_in="(N, in_channels, D, H, W)",
    layout_out="(N, out_channels, D_out, H_out, W_out)", size_note=_CONVT_SIZE,
    example_kw="stride=2, padding=1, output_padding=1, ", wshape_example="(3, 8, 3, 3, 3)",
    x_example="(2, 3, 2, 3, 3)", y_example="(2, 8, 4, 6, 6)")
__all__ += ["Conv3d", "ConvTranspose3d"]
