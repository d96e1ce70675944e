"""A :mod:`deconv.nn` network as a list of layers, and what the benchmark builds from that list.

The training-step rows of the model families (:mod:`deconv.bench.blocks`)
time the very network a family's builder returns. Its PyTorch twin and its
float64 reference are not written out by hand: the parent reads the deconv
module once into plain data (:func:`describe`), which travels to the
workers inside the JSON job, and each side builds its own from it:

===================  =========================================================
function             what it builds from the layer list
===================  =========================================================
:func:`describe`     ``deconv.nn`` module -> layer list (parent only: imports
                     deconv)
:func:`torch_twin`   layer list -> ``torch.nn`` module, parameters in the
                     deconv module's order (the torch worker: imports torch
                     only)
:func:`reference`    layer list, ``x``, parameters -> ``(y, backward)`` in
                     float64: the convolutions, pooling and interpolation of
                     :mod:`deconv.reference`, the rest plain NumPy, every
                     backward written by hand (never through ``deconv.nn``)
===================  =========================================================

So a change of a family's channels or depth changes the row, its twin and
its oracle together; a layer the list does not know stops :func:`describe`
with a message naming it.

A layer is a list ``[kind, options]`` (``options`` a dict of JSON values);
``sequential``, ``concat`` and ``residual`` (``x + body(x)``, one child) hold their
children in ``options["layers"]``.
Parameters are consumed in the order ``deconv.nn`` lists them (a layer's
``weight`` before its ``bias``, children in order), which is also torch's.

Imported by the worker processes (as a sibling module): nothing here imports
NumPy, torch or deconv at module level.
"""

#: deconv.nn class name -> the kind of layer in the list, for the layers that carry no
#: option beyond their class
_PLAIN = {"ReLU": "relu", "Tanh": "tanh", "Sigmoid": "sigmoid", "Identity": "identity"}


class UnknownLayer(ValueError):
    """A layer of a network that :func:`describe` cannot write down (the message names it)."""


def _conv_options(m, transposed):
    if isinstance(m.padding, str) or getattr(m, "padding_mode", "zeros") != "zeros":
        raise UnknownLayer(f"{type(m).__name__} with padding={m.padding!r}, padding_mode="
                           f"{getattr(m, 'padding_mode', 'zeros')!r}: the layer list knows "
                           f"integer zero padding only")
    opts = dict(in_channels=m.in_channels, out_channels=m.out_channels,
                kernel_size=list(m.kernel_size), stride=list(m.stride),
                padding=list(m.padding), dilation=list(m.dilation), groups=m.groups,
                bias=m.bias is not None)
    if transposed:
        opts["output_padding"] = list(m.output_padding)
    return opts


def describe(module):
    """The layer list of a :mod:`deconv.nn` module.

    Parameters
    ----------
    module : deconv.nn.Module
        Built from ``Sequential``, ``Concat``, ``Residual``, ``Identity``, ``Conv1d``,
        ``Conv2d``, ``ConvTranspose1d``, ``ConvTranspose2d``, ``Linear``,
        ``Embedding``, ``BatchNorm2d``, ``GroupNorm``, ``ReLU``, ``LeakyReLU``, ``PReLU``, ``GELU``,
        ``Tanh``, ``Sigmoid``, ``MaxPool2d``, ``Upsample``, ``PixelShuffle``,
        ``Flatten``, ``Permute``, ``Dropout``.

    Returns
    -------
    list
        ``[kind, options]`` (see the module docstring).

    Raises
    ------
    UnknownLayer
        Naming the first layer that is not one of those.
    """
    name = type(module).__name__
    if name in _PLAIN:
        return [_PLAIN[name], {}]
    if name in ("Sequential", "Concat"):
        return [name.lower(), {"layers": [describe(m) for m in module.children()]}]
    if name == "Residual":                  # x + body(x)
        return ["residual", {"layers": [describe(module.body)]}]
    if name in ("Conv1d", "Conv2d"):
        return [name.lower(), _conv_options(module, False)]
    if name in ("ConvTranspose1d", "ConvTranspose2d"):
        return ["conv_transpose" + name[-2:].lower(), _conv_options(module, True)]
    if name == "Linear":
        return ["linear", dict(in_features=module.in_features, out_features=module.out_features,
                               bias=module.bias is not None)]
    if name == "Embedding":
        return ["embedding", dict(num_embeddings=module.num_embeddings,
                                  embedding_dim=module.embedding_dim,
                                  padding_idx=module.padding_idx)]
    if name == "BatchNorm2d":
        if not module.affine or not module.track_running_stats:
            raise UnknownLayer("BatchNorm2d without affine parameters or running statistics")
        return ["batch_norm2d", dict(num_features=module.num_features, eps=module.eps,
                                     momentum=module.momentum)]
    if name == "GroupNorm":
        if not module.affine or module.bias is None:
            raise UnknownLayer("GroupNorm without its weight and bias")
        return ["group_norm", dict(num_groups=module.num_groups,
                                   num_channels=module.num_channels, eps=module.eps)]
    if name == "GELU":
        if module.approximate != "none":
            raise UnknownLayer(f"GELU(approximate={module.approximate!r}): the layer list knows "
                               f"the exact GELU only")
        return ["gelu", {}]
    if name == "LeakyReLU":
        return ["leaky_relu", dict(negative_slope=module.negative_slope)]
    if name == "PReLU":
        return ["prelu", dict(num_parameters=module.num_parameters)]
    if name == "MaxPool2d":
        return ["max_pool2d", dict(kernel_size=list(module.kernel_size),
                                   stride=list(module.stride), padding=list(module.padding),
                                   dilation=list(module.dilation), ceil_mode=module.ceil_mode)]
    if name == "Upsample":
        if module.size is not None:
            raise UnknownLayer("Upsample(size=...): the layer list knows scale_factor only")
        return ["upsample", dict(scale_factor=module.scale_factor, mode=module.mode,
                                 align_corners=module.align_corners)]
    if name == "PixelShuffle":
        return ["pixel_shuffle", dict(upscale_factor=module.upscale_factor)]
    if name == "Flatten":
        return ["flatten", dict(start_dim=module.start_dim, end_dim=module.end_dim)]
    if name == "Permute":
        return ["permute", dict(dims=list(module.dims))]
    if name == "Dropout":
        return ["dropout", dict(p=module.p)]
    raise UnknownLayer(f"no layer-list entry for {name}: add it to describe(), torch_twin() "
                       f"and reference() in deconv/bench/networks.py")


def parameter_shapes(layers):
    """Shapes of the parameters the layer list holds, in order (what a twin must have)."""
    kind, o = layers
    if kind in ("sequential", "concat", "residual"):
        return [s for child in o["layers"] for s in parameter_shapes(child)]
    if kind.startswith("conv"):
        k = tuple(o["kernel_size"])
        if kind.startswith("conv_transpose"):
            w = (o["in_channels"], o["out_channels"] // o["groups"]) + k
        else:
            w = (o["out_channels"], o["in_channels"] // o["groups"]) + k
        return [w] + ([(o["out_channels"],)] if o["bias"] else [])
    if kind == "linear":
        return [(o["out_features"], o["in_features"])] + \
            ([(o["out_features"],)] if o["bias"] else [])
    if kind == "embedding":
        return [(o["num_embeddings"], o["embedding_dim"])]
    if kind == "batch_norm2d":
        return [(o["num_features"],)] * 2
    if kind == "group_norm":
        return [(o["num_channels"],)] * 2
    if kind == "prelu":
        return [(o["num_parameters"],)]
    return []


# ---------------------------------------------------------------------------
# the PyTorch twin
# ---------------------------------------------------------------------------

def torch_twin(layers, torch):
    """The ``torch.nn`` module of a layer list (its parameters in the list's order).

    ``Concat`` and ``Permute`` have no ``torch.nn`` class: two small modules
    stand in (``torch.cat`` on axis 1, ``Tensor.permute``).
    """
    nn = torch.nn

    class Concat(nn.Module):
        def __init__(self, branches):
            super().__init__()
            self.branches = nn.ModuleList(branches)

        def forward(self, x):
            return torch.cat([b(x) for b in self.branches], dim=1)

    class Residual(nn.Module):
        def __init__(self, body):
            super().__init__()
            self.body = body

        def forward(self, x):
            return x + self.body(x)

    class Permute(nn.Module):
        def __init__(self, dims):
            super().__init__()
            self.dims = tuple(dims)

        def forward(self, x):
            return x.permute(self.dims)

    def build(layer):
        kind, o = layer
        if kind == "sequential":
            return nn.Sequential(*[build(c) for c in o["layers"]])
        if kind == "concat":
            return Concat([build(c) for c in o["layers"]])
        if kind == "residual":
            return Residual(build(o["layers"][0]))
        if kind.startswith("conv"):
            cls = {"conv1d": nn.Conv1d, "conv2d": nn.Conv2d, "conv_transpose1d": nn.ConvTranspose1d,
                   "conv_transpose2d": nn.ConvTranspose2d}[kind]
            kw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in o.items()
                  if k not in ("in_channels", "out_channels")}
            return cls(o["in_channels"], o["out_channels"], **kw)
        simple = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid,
                  "identity": nn.Identity, "gelu": nn.GELU}
        if kind in simple:
            return simple[kind]()
        if kind == "linear":
            return nn.Linear(o["in_features"], o["out_features"], bias=o["bias"])
        if kind == "embedding":
            return nn.Embedding(o["num_embeddings"], o["embedding_dim"],
                                padding_idx=o["padding_idx"])
        if kind == "batch_norm2d":
            return nn.BatchNorm2d(o["num_features"], eps=o["eps"], momentum=o["momentum"])
        if kind == "group_norm":
            return nn.GroupNorm(o["num_groups"], o["num_channels"], eps=o["eps"])
        if kind == "leaky_relu":
            return nn.LeakyReLU(o["negative_slope"])
        if kind == "prelu":
            return nn.PReLU(o["num_parameters"])
        if kind == "max_pool2d":
            return nn.MaxPool2d(tuple(o["kernel_size"]), tuple(o["stride"]), tuple(o["padding"]),
                                tuple(o["dilation"]), ceil_mode=o["ceil_mode"])
        if kind == "upsample":
            return nn.Upsample(scale_factor=o["scale_factor"], mode=o["mode"],
                               align_corners=o["align_corners"])
        if kind == "pixel_shuffle":
            return nn.PixelShuffle(o["upscale_factor"])
        if kind == "flatten":
            return nn.Flatten(o["start_dim"], o["end_dim"])
        if kind == "permute":
            return Permute(o["dims"])
        if kind == "dropout":
            return nn.Dropout(o["p"])
        raise ValueError(f"no torch layer for {kind!r}")

    return build(layers)


# ---------------------------------------------------------------------------
# the float64 reference
# ---------------------------------------------------------------------------

def _pointwise(kind, o, x, W):
    """Forward and backward of the layers without a spatial structure (plain NumPy)."""
    import numpy as np
    if kind == "identity":
        return x, lambda gy: (gy, [])
    if kind == "relu":
        return np.maximum(x, 0), lambda gy: (gy * (x > 0), [])
    if kind == "leaky_relu":
        slope = o["negative_slope"]
        return np.where(x > 0, x, slope * x), lambda gy: (np.where(x > 0, gy, slope * gy), [])
    if kind == "tanh":
        y = np.tanh(x)
        return y, lambda gy: (gy * (1 - y * y), [])
    if kind == "sigmoid":
        y = 1 / (1 + np.exp(-x))
        return y, lambda gy: (gy * y * (1 - y), [])
    if kind == "gelu":
        # x Phi(x), Phi the standard normal CDF (math.erf: no SciPy in the worker)
        import math
        phi_cdf = 0.5 * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))
        density = np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
        return x * phi_cdf, lambda gy: (gy * (phi_cdf + x * density), [])
    if kind == "prelu":
        # one slope per channel (axis 1), or one for all
        a = W.pop(0)
        shape = (1, -1) + (1,) * (x.ndim - 2) if a.size > 1 else (1,) * x.ndim
        slope = a.reshape(shape)
        neg = np.minimum(x, 0)

        def backward(gy):
            ga = gy * neg
            ga = ga.sum(axis=tuple(i for i in range(x.ndim) if i != 1)) if a.size > 1 \
                else np.array([ga.sum()])
            return np.where(x > 0, gy, slope * gy), [ga]
        return np.maximum(x, 0) + slope * neg, backward
    if kind == "dropout":
        if o["p"] != 0:
            raise ValueError(f"the reference has no random mask: dropout p must be 0 in a "
                             f"check version, got {o['p']}")
        return x, lambda gy: (gy, [])
    if kind == "flatten":
        end = o["end_dim"] % x.ndim
        shape = x.shape[:o["start_dim"]] + (-1,) + x.shape[end + 1:]
        return x.reshape(shape), lambda gy: (gy.reshape(x.shape), [])
    if kind == "permute":
        dims = o["dims"]
        return x.transpose(dims), lambda gy: (gy.transpose(np.argsort(dims)), [])
    if kind == "linear":
        w = W.pop(0)
        b = W.pop(0) if o["bias"] else None
        y = x @ w.T + (0 if b is None else b)                     # (N, out)

        def backward(gy):
            grads = [gy.T @ x] + ([gy.sum(axis=0)] if b is not None else [])
            return gy @ w, grads
        return y, backward
    if kind == "embedding":
        w = W.pop(0)
        idx = x.astype(np.int64)                                  # the check passes floats
        y = w[idx]                                                # (N, L, D)

        def backward(gy):
            gw = np.zeros_like(w)
            np.add.at(gw, idx, gy)
            if o["padding_idx"] is not None:
                gw[o["padding_idx"]] = 0
            return None, [gw]                                     # indices have no gradient
        return y, backward
    if kind == "batch_norm2d":
        from .blocks import _normalize
        gamma, beta = W.pop(0), W.pop(0)
        # training mode: statistics of each channel over (N, H, W)
        z, norm_backward = _normalize(x, x.shape, (0, 2, 3), gamma, beta, o["eps"])

        def backward(gy):
            gx, gg, gb = norm_backward(gy)
            return gx, [gg, gb]
        return z, backward
    if kind == "group_norm":
        from .blocks import _normalize
        gamma, beta = W.pop(0), W.pop(0)
        # statistics of each sample's group of channels, over those channels and all positions
        view = (x.shape[0], o["num_groups"], -1)
        z, norm_backward = _normalize(x, view, (2,), gamma, beta, o["eps"])

        def backward(gy):
            gx, gg, gb = norm_backward(gy)
            return gx, [gg, gb]
        return z, backward
    return None


def _bias_before_batch_norm(back):
    """A conv's backward whose bias feeds a training-mode BatchNorm: the bias gradient is 0.

    The batch mean subtracts any per-channel shift, so the loss does not
    depend on that bias at all; summed in floating point, the gradient
    would be rounding noise around zero, on which no relative error can be
    measured. The exact value is the oracle's answer.
    """
    import numpy as np

    def backward(gy):
        gx, (gw, gb) = back(gy)
        return gx, [gw, np.zeros_like(gb)]
    return backward


def _layer(layer, x, W, R):
    """Forward of one layer on ``x``, consuming its parameters from the front of ``W``.

    Returns ``(y, backward)``, ``backward(grad_y) -> (grad_x, [grads of its parameters])``.
    """
    import numpy as np
    kind, o = layer
    if kind == "sequential":
        steps = []
        children = o["layers"]
        for child, after in zip(children, children[1:] + [None]):
            x, back = _layer(child, x, W, R)
            if child[0].startswith("conv") and child[1]["bias"] and after is not None \
                    and after[0] == "batch_norm2d":
                back = _bias_before_batch_norm(back)
            steps.append(back)

        def backward(gy):
            grads = []
            for back in reversed(steps):
                gy, g = back(gy)
                grads = g + grads
            return gy, grads
        return x, backward
    if kind == "concat":
        outs, backs = zip(*[_layer(child, x, W, R) for child in o["layers"]])
        cuts = np.cumsum([y.shape[1] for y in outs])[:-1]

        def backward(gy):
            grads, gx = [], 0
            for back, part in zip(backs, np.split(gy, cuts, axis=1)):
                g_in, g = back(part)
                gx = gx + g_in
                grads += g
            return gx, grads
        return np.concatenate(outs, axis=1), backward
    if kind == "residual":
        y, back = _layer(o["layers"][0], x, W, R)

        def backward(gy):
            g_body, grads = back(gy)
            return gy + g_body, grads
        return x + y, backward
    if kind.startswith("conv"):
        transposed = kind.startswith("conv_transpose")
        nd = kind[-2:]
        w = W.pop(0)
        b = W.pop(0) if o["bias"] else None
        kw = dict(stride=tuple(o["stride"]), padding=tuple(o["padding"]),
                  dilation=tuple(o["dilation"]), groups=o["groups"])
        if transposed:
            kw["output_padding"] = tuple(o["output_padding"])
        fn = getattr(R, kind)
        grad_fn = getattr(R, kind + "_backward")
        if nd == "1d":
            kw = {k: (v[0] if isinstance(v, tuple) else v) for k, v in kw.items()}
        y = fn(x, w, b, **kw)

        def backward(gy):
            gx, gw, gb = grad_fn(gy, x, w, **kw)
            return gx, [gw] + ([gb] if b is not None else [])
        return y, backward
    if kind == "max_pool2d":
        kw = {k: tuple(o[k]) for k in ("kernel_size", "stride", "padding", "dilation")}
        y, idx = R.max_pool2d(x, ceil_mode=o["ceil_mode"], **kw)
        return y, lambda gy: (R.max_pool2d_backward(gy, idx, x.shape), [])
    if kind == "upsample":
        kw = dict(scale_factor=o["scale_factor"], mode=o["mode"],
                  align_corners=o["align_corners"])
        return (R.interpolate(x, **kw),
                lambda gy: (R.interpolate_backward(gy, x.shape, **kw), []))
    if kind == "pixel_shuffle":
        r = o["upscale_factor"]
        return R.pixel_shuffle(x, r), lambda gy: (R.pixel_shuffle_backward(gy, r), [])
    out = _pointwise(kind, o, x, W)
    if out is None:
        raise ValueError(f"no reference for layer {kind!r}")
    return out


def reference(layers, x, W):
    """The float64 forward of a layer list and its backward.

    Parameters
    ----------
    layers : list
        From :func:`describe`.
    x : ndarray
        The input (float64; an embedding's indices as whole numbers).
    W : list of ndarray
        The parameters in the list's order, float64.

    Returns
    -------
    y : ndarray
    backward : callable
        ``grad_y -> [gradients of W]`` (the input is data: no gradient).
    """
    from .cases import load_reference_module
    rest = list(W)
    y, back = _layer(layers, x, rest, load_reference_module())
    if rest:
        raise ValueError(f"{len(rest)} parameters left over: the layer list does not match them")
    return y, lambda gy: back(gy)[1]
