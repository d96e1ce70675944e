"""Padding layers: Reflection-, Replication-, Zero-, Circular- and ConstantPad{1,2,3}d.

One class, :class:`_PadNd`, holds the arguments, the forward and the
backward of all fifteen; a subclass fixes the number of spatial axes and the
mode of :func:`deconv.pad` (the computation is that of
:mod:`deconv.functional.padding`).
"""

import numpy as np

from deconv.functional import padding as _padding
from deconv.functional.validation import as_fill_value, as_int, as_pad_tuple, check_ndim
from deconv.nn.module import Module, prefixed

__all__ = [
    "ReflectionPad1d", "ReflectionPad2d", "ReflectionPad3d",
    "ReplicationPad1d", "ReplicationPad2d", "ReplicationPad3d",
    "ZeroPad1d", "ZeroPad2d", "ZeroPad3d",
    "CircularPad1d", "CircularPad2d", "CircularPad3d",
    "ConstantPad1d", "ConstantPad2d", "ConstantPad3d",
]


def as_padding(padding, nd):
    """A layer's ``padding``: an int (every side) or ``2 * nd`` ints, last axis first."""
    if isinstance(padding, (list, tuple)):
        return as_pad_tuple(padding, "padding", nd, exact_pairs=nd)
    try:
        return (as_int(padding, "padding"),) * (2 * nd)
    except TypeError:
        raise TypeError(f"padding must be an int or a sequence of {2 * nd} ints, "
                        f"got {padding!r}") from None


class _PadNd(Module):
    """The shared body of the padding layers: ``_nd`` spatial axes, ``_mode`` of
    :func:`deconv.pad`."""

    _nd = 2
    _mode = "constant"
    _kind = "zeros"     # a key of _WHAT: ZeroPad prints no value, as in torch

    def __init__(self, padding, value=0.0):
        """Check and store the arguments; errors name the public class."""
        super().__init__()
        with prefixed(type(self).__name__):
            self.padding = as_padding(padding, self._nd)
            # a fill must be a real number a float64 can hold; the input's dtype is checked
            # by the forward (a float32 input cannot take 1e300)
            self.value = float(as_fill_value(value, "value", np.float64))

    def extra_repr(self):
        """The pad tuple (and the fill of the constant modes), as torch prints them."""
        if self._kind == "constant":
            return f"padding={self.padding}, value={self.value}"
        return f"{self.padding}"

    def forward(self, x):
        """Pad ``x``.

        Parameters
        ----------
        x : ndarray, shape (N, C, *spatial)

        Returns
        -------
        y : ndarray, shape (N, C, *spatial_out)
        """
        x = self._input(x)
        with prefixed(self):
            check_ndim(x, "x", self._nd + 2, _LAYOUT[self._nd][0])
            y = _padding.padded(x, pad=self.padding, mode=self._mode, value=self.value,
                                pad_name="padding")
        self._save(y, input_shape=x.shape)
        return y

    def backward(self, grad_output):
        """Fold the border's gradient back onto the positions it copied.

        Returns
        -------
        grad_input : ndarray, shape of the last input
        """
        c, g = self._saved_and_grad(grad_output)
        with prefixed(self):
            return _padding.padded_backward(g, input_shape=c["input_shape"], pad=self.padding,
                                            mode=self._mode, pad_name="padding")


_LAYOUT = {1: ("(N, C, L)", "(N, C, L_out)", "(left, right)"),
           2: ("(N, C, H, W)", "(N, C, H_out, W_out)", "(left, right, top, bottom)"),
           3: ("(N, C, D, H, W)", "(N, C, D_out, H_out, W_out)",
               "(left, right, top, bottom, front, back)")}
_WHAT = {
    "reflect": "Pads by reflecting ``x`` about its edges (the edge itself is not "
               "repeated);\n    each pad must be smaller than its axis.",
    "replicate": "Pads by repeating the edge values of ``x``.",
    "circular": "Pads by wrapping ``x`` around (periodic); each pad must be at most\n    "
                "the part of the axis the crops keep.",
    "zeros": "Pads with zeros.",
    "constant": "Pads with the constant ``value``.",
}
_DOC = """{kind}, as ``torch.nn.{name}``, through :func:`deconv.pad` (``mode='{mode}'``).

    {what}

    Parameters
    ----------
    padding : int or tuple of {n} ints
        ``{order}``: an int pads every side by that much. Negative entries
        crop that side.
    {value}
    Notes
    -----
    Input ``{layout_in}``, output ``{layout_out}`` with, per axis,
    ``out = L + before + after``. The backward is :func:`deconv.pad_backward`:
    the gradient of every copied position folds back onto its source.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> layer = nn.{name}({example_args})
    >>> y = layer(np.arange(4, dtype=np.float32).reshape{shape})
    >>> y{index}
    {example_out}
    >>> layer.backward(np.ones_like(y)){index}
    {example_grad}
    """


# the examples pad the last axis of [0, 1, 2, 3] by one on each side: output, then
# the gradient of the sum (how many outputs read each input)
_EXAMPLE = {
    "reflect": ("[1., 0., 1., 2., 3., 2.]", "[1., 2., 2., 1.]"),
    "replicate": ("[0., 0., 1., 2., 3., 3.]", "[2., 1., 1., 2.]"),
    "circular": ("[3., 0., 1., 2., 3., 0.]", "[2., 1., 1., 2.]"),
    "zeros": ("[0., 0., 1., 2., 3., 0.]", "[1., 1., 1., 1.]"),
    "constant": ("[-1.,  0.,  1.,  2.,  3., -1.]", "[1., 1., 1., 1.]"),
}


def _document(cls, kind):
    """Fill ``cls.__doc__`` from the template."""
    nd = cls._nd
    layout_in, layout_out, order = _LAYOUT[nd]
    padding = "1" if nd == 1 else str((1, 1) + (0, 0) * (nd - 1))
    out, grad = _EXAMPLE[kind]
    value = ("value : float\n        The fill (NaN and infinities allowed).\n"
             if kind == "constant" else "")
    cls.__doc__ = _DOC.format(
        kind=f"{nd}-D {kind} padding layer", name=cls.__name__, mode=cls._mode,
        what=_WHAT[kind], n=2 * nd, order=order, value=value, layout_in=layout_in,
        layout_out=layout_out,
        example_args=padding + (", value=-1.0" if kind == "constant" else ""),
        shape=(1,) * (nd + 1) + (4,), index="[0, 0" + ", 0" * (nd - 1) + "]",
        example_out=f"array({out}, dtype=float32)", example_grad=f"array({grad}, dtype=float32)")


def _layer(name, nd, mode, kind):
    """A padding layer class ``name`` (``nd`` axes, ``mode``) with torch's constructor."""
    if kind == "constant":
        def __init__(self, padding, value):
            """See the class docstring."""
            _PadNd.__init__(self, padding, value)
    else:
        def __init__(self, padding):
            """See the class docstring."""
            _PadNd.__init__(self, padding, 0.0)
    cls = type(name, (_PadNd,), {"_nd": nd, "_mode": mode, "_kind": kind, "__init__": __init__,
                                  "__module__": __name__})
    cls.__qualname__ = name
    _document(cls, kind)
    return cls


ReflectionPad1d = _layer("ReflectionPad1d", 1, "reflect", "reflect")
ReflectionPad2d = _layer("ReflectionPad2d", 2, "reflect", "reflect")
ReflectionPad3d = _layer("ReflectionPad3d", 3, "reflect", "reflect")
ReplicationPad1d = _layer("ReplicationPad1d", 1, "replicate", "replicate")
ReplicationPad2d = _layer("ReplicationPad2d", 2, "replicate", "replicate")
ReplicationPad3d = _layer("ReplicationPad3d", 3, "replicate", "replicate")
ZeroPad1d = _layer("ZeroPad1d", 1, "constant", "zeros")
ZeroPad2d = _layer("ZeroPad2d", 2, "constant", "zeros")
ZeroPad3d = _layer("ZeroPad3d", 3, "constant", "zeros")
CircularPad1d = _layer("CircularPad1d", 1, "circular", "circular")
CircularPad2d = _layer("CircularPad2d", 2, "circular", "circular")
CircularPad3d = _layer("CircularPad3d", 3, "circular", "circular")
ConstantPad1d = _layer("ConstantPad1d", 1, "constant", "constant")
ConstantPad2d = _layer("ConstantPad2d", 2, "constant", "constant")
ConstantPad3d = _layer("ConstantPad3d", 3, "constant", "constant")
