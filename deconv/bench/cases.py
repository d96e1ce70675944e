"""The cases of ``deconv bench``: their table, shapes, FLOP counts and inputs.

A case is a plain dict (it travels to the workers inside a JSON job):
``name``, ``op``, ``family`` ('conv', 'pool' or 'train'), ``shapes`` (input
name -> shape), ``kw`` (the call's keywords), ``geometry`` (the numbers it
was built from), ``dtypes``, and the flags ``large`` (thread-speedup
target), ``limit_target`` (fraction-of-limit target) and ``sweep``.

Importable by the worker processes: nothing here imports NumPy or deconv
at module level (the PyTorch worker has neither); the functions that do
(:func:`train_case`, :func:`make_inputs`, :func:`write_inputs`) run in the
parent only.
"""

import os
import sys
import zlib

CONV_OPS = ("conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
            "conv_transpose3d")
POOL_OPS = ("max_pool2d", "max_unpool2d", "avg_pool2d", "upsample_nearest2d",
            "upsample_bilinear2d", "pixel_shuffle")
#: ops whose call is ``op(x, **kw)`` and ``op_backward(grad_output, x.shape, **bkw)`` in
#: deconv and the reference, ``torch.nn.functional.op(x, **kw)`` in PyTorch
MAP_OPS = ("pad", "adaptive_avg_pool2d", "interpolate", "unfold")
PASSES = ("fwd", "bwd")
SWEEP_BATCHES = (8, 16, 32, 64)
SWEEP_IMAGES = (16, 32, 48, 64)
SEED = 20240601


# ---------------------------------------------------------------------------
# one case of each family
# ---------------------------------------------------------------------------

def per_axis(value, nd):
    """An int or a tuple of ``nd`` ints as a tuple of ``nd`` ints."""
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * nd


def _conv_out(size, k, s, p, d, op):
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def _conv_transpose_out(size, k, s, p, d, op):
    return (size - 1) * s - 2 * p + d * (k - 1) + op + 1


def _scalar_if_uniform(values):
    """``(3, 3)`` -> 3 (the form the built-in table and the NumPy baseline use)."""
    return values[0] if len(set(values)) == 1 else tuple(values)


def conv_case(name, op, N, C_in, C_out, spatial, kernel, stride=1, padding=0, groups=1,
              dilation=1, output_padding=0, **extra):
    """One convolution case: shapes of x, weight, bias, grad_output, and the call's keywords.

    Parameters
    ----------
    name : str
    op : str
        One of :data:`CONV_OPS`.
    N, C_in, C_out : int
        Batch and channels of the op (for a transposed conv, ``C_in`` is
        its input's channels, as in ``torch.nn.ConvTranspose2d``).
    spatial : tuple of int
        Input size, ``(L,)``, ``(H, W)`` or ``(D, H, W)``.
    kernel, stride, padding, dilation : int or tuple of int
        An int is the same along every spatial axis.
    groups : int
    output_padding : int or tuple of int
        Transposed convs only.
    **extra
        Stored on the case: ``dtypes``, ``large``, ``limit_target``,
        ``sweep``, ``sweep_value``, ``suite``, ``network``.

    Returns
    -------
    dict
        ``numpy_baseline`` says whether the NumPy im2col baseline covers it
        (1-D and 2-D, no dilation or output padding, the same stride and
        padding on both axes).
    """
    transposed = op.startswith("conv_transpose")
    nd = len(spatial)
    k, st, pd, dl = (per_axis(v, nd) for v in (kernel, stride, padding, dilation))
    opd = per_axis(output_padding, nd)
    out_fn = _conv_transpose_out if transposed else _conv_out
    out = tuple(out_fn(*a) for a in zip(spatial, k, st, pd, dl, opd))
    w = (C_in, C_out // groups) + k if transposed else (C_out, C_in // groups) + k
    kw = dict(stride=_scalar_if_uniform(st), padding=_scalar_if_uniform(pd), groups=groups)
    if set(dl) != {1}:
        kw["dilation"] = _scalar_if_uniform(dl)
    if set(opd) != {0}:
        kw["output_padding"] = _scalar_if_uniform(opd)
    case = dict(name=name, op=op, family="conv",
                shapes=dict(x=(N, C_in) + tuple(spatial), w=w, b=(C_out,),
                            gy=(N, C_out) + out),
                kw=kw,
                geometry=dict(N=N, C_in=C_in, C_out=C_out, spatial=tuple(spatial),
                              kernel=_scalar_if_uniform(k), stride=kw["stride"],
                              padding=kw["padding"], dilation=_scalar_if_uniform(dl),
                              output_padding=_scalar_if_uniform(opd), groups=groups, out=out),
                numpy_baseline=(nd <= 2 and set(dl) == {1} and set(opd) == {0}
                                and isinstance(kw["stride"], int)
                                and isinstance(kw["padding"], int)),
                dtypes=("float32",), large=False, limit_target=False, sweep=None,
                suite="kernels", network=None)
    case.update(extra)
    if min(out) < 1:
        raise ValueError(f"case {name!r}: output size {out} < 1")
    return case


def pool_case(name, op, N, C, H, W, **extra):
    """One pooling-family case on an ``(N, C, H, W)`` input (factor 2 everywhere)."""
    x = (N, C, H, W)
    if op in ("max_pool2d", "avg_pool2d"):
        kw = dict(kernel_size=2, stride=2)
        shapes = dict(x=x, gy=(N, C, H // 2, W // 2))
    elif op == "max_unpool2d":
        # x is the image that was pooled; the op's input is its pooled values
        # p and the switches idx, both made by the parent from x
        kw = dict(kernel_size=2)
        shapes = dict(x=x, p=(N, C, H // 2, W // 2), idx=(N, C, H // 2, W // 2), gy=x)
    elif op == "upsample_nearest2d":
        kw = dict(scale_factor=2)
        shapes = dict(x=x, gy=(N, C, 2 * H, 2 * W))
    elif op == "upsample_bilinear2d":
        kw = dict(scale_factor=2, align_corners=False)
        shapes = dict(x=x, gy=(N, C, 2 * H, 2 * W))
    elif op == "pixel_shuffle":
        kw = dict(upscale_factor=2)
        shapes = dict(x=x, gy=(N, C // 4, 2 * H, 2 * W))
    else:
        raise ValueError(f"unknown pooling-family op {op!r}")
    case = dict(name=name, op=op, family="pool", shapes=shapes, kw=kw,
                geometry=dict(N=N, C=C, H=H, W=W), dtypes=("float32",), large=False,
                limit_target=False, sweep=None, suite="kernels", network=None)
    case.update(extra)
    return case


def map_case(name, op, N, C, spatial, kw, out_spatial, out_channels=None, bkw=None, **extra):
    """One case of an op of :data:`MAP_OPS` on an ``(N, C, *spatial)`` input.

    Parameters
    ----------
    name : str
    op : str
        One of :data:`MAP_OPS`.
    N, C : int
    spatial, out_spatial : tuple of int
        Input and output sizes after the channel axis.
    kw : dict
        The forward's keywords, the same names in deconv, the reference
        and ``torch.nn.functional``.
    out_channels : int, optional
        Output channels (default ``C``; ``unfold`` makes ``C * prod(kernel)``).
    bkw : dict, optional
        The backward's keywords (default ``kw``).
    **extra
        As for :func:`conv_case`.
    """
    if op not in MAP_OPS:
        raise ValueError(f"op must be one of {MAP_OPS}, got {op!r}")
    out_channels = C if out_channels is None else out_channels
    case = dict(name=name, op=op, family="pool",
                shapes=dict(x=(N, C) + tuple(spatial), gy=(N, out_channels) + tuple(out_spatial)),
                kw=dict(kw), bkw=dict(kw if bkw is None else bkw),
                geometry=dict(N=N, C=C, spatial=tuple(spatial), out_spatial=tuple(out_spatial),
                              channel_factor=out_channels // C),
                dtypes=("float32",), large=False, limit_target=False, sweep=None,
                suite="kernels", network=None)
    case.update(extra)
    return case


def _map_cases(tiny):
    """The cases of :data:`MAP_OPS`: layers of the networks the breadth issue names.

    Reflect padding as CycleGAN's generator pads; adaptive average pooling
    as ResNet's head (7x7 -> 1x1) and torchvision's VGG/AlexNet head to
    7x7 from a size it does not divide (overlapping windows); bicubic x2
    as super-resolution upsamples; trilinear x2 as a 3-D U-Net decoder;
    unfold as im2col of a 3x3 'same' convolution.
    """
    if tiny:
        return [
            map_case("pad_reflect", "pad", 2, 3, (12, 12), dict(pad=(3, 3, 3, 3), mode="reflect"),
                     (18, 18), bkw=dict(pad=(3, 3, 3, 3), mode="reflect")),
            map_case("adaptive_avg_pool2d_1x1", "adaptive_avg_pool2d", 2, 8, (7, 7),
                     dict(output_size=1), (1, 1), bkw={}),
            map_case("adaptive_avg_pool2d_7x7", "adaptive_avg_pool2d", 2, 4, (10, 10),
                     dict(output_size=7), (7, 7), bkw={}),
            map_case("bicubic_x2", "interpolate", 2, 4, (8, 8),
                     dict(scale_factor=2, mode="bicubic", align_corners=False), (16, 16)),
            map_case("trilinear_x2", "interpolate", 1, 4, (4, 4, 4),
                     dict(scale_factor=2, mode="trilinear", align_corners=False), (8, 8, 8)),
            map_case("unfold_k3", "unfold", 2, 4, (8, 8), dict(kernel_size=3, padding=1), (64,),
                     out_channels=36),
        ]
    return [
        map_case("pad_reflect", "pad", 4, 16, (256, 256), dict(pad=(3, 3, 3, 3), mode="reflect"),
                 (262, 262), bkw=dict(pad=(3, 3, 3, 3), mode="reflect")),
        map_case("adaptive_avg_pool2d_1x1", "adaptive_avg_pool2d", 32, 512, (7, 7),
                 dict(output_size=1), (1, 1), bkw={}),
        map_case("adaptive_avg_pool2d_7x7", "adaptive_avg_pool2d", 8, 256, (20, 20),
                 dict(output_size=7), (7, 7), bkw={}),
        map_case("bicubic_x2", "interpolate", 32, 64, (32, 32),
                 dict(scale_factor=2, mode="bicubic", align_corners=False), (64, 64)),
        map_case("trilinear_x2", "interpolate", 2, 32, (16, 16, 16),
                 dict(scale_factor=2, mode="trilinear", align_corners=False), (32, 32, 32)),
        map_case("unfold_k3", "unfold", 8, 64, (32, 32), dict(kernel_size=3, padding=1),
                 (1024,), out_channels=576),
    ]


#: The layers suite: convolution layers of real networks, each naming where it
#: comes from. (name, network, op, N, C_in, C_out, input size, kernel, keywords);
#: float32, plus float64 where the name ends in ``_f64``.
LAYERS = (
    # ImageNet classifiers: stems, stages from 56x56 to 7x7, 1x1, strided, batch 1
    ("resnet_stem_7x7s2", "ResNet-18/50 stem", "conv2d", 8, 3, 64, (224, 224), 7,
     dict(stride=2, padding=3)),
    ("alexnet_stem_11x11s4", "AlexNet conv1", "conv2d", 8, 3, 64, (224, 224), 11,
     dict(stride=4, padding=2)),
    ("resnet_56_3x3", "ResNet-18 stage 1", "conv2d", 8, 64, 64, (56, 56), 3, dict(padding=1)),
    ("resnet_28_3x3", "ResNet-18 stage 2", "conv2d", 8, 128, 128, (28, 28), 3, dict(padding=1)),
    ("resnet_14_3x3", "ResNet-18 stage 3", "conv2d", 8, 256, 256, (14, 14), 3, dict(padding=1)),
    ("resnet_7_3x3", "ResNet-18 stage 4", "conv2d", 8, 512, 512, (7, 7), 3, dict(padding=1)),
    ("resnet_28_3x3_f64", "ResNet-18 stage 2, float64", "conv2d", 8, 128, 128, (28, 28), 3,
     dict(padding=1)),
    ("resnet_28_3x3s2", "ResNet-18 stage 3 entry (3x3, stride 2)", "conv2d", 8, 128, 256,
     (28, 28), 3, dict(stride=2, padding=1)),
    ("resnet_14_1x1s2", "ResNet-50 stage 4 shortcut (1x1, stride 2)", "conv2d", 8, 512, 1024,
     (14, 14), 1, dict(stride=2)),
    ("resnet50_56_1x1_expand", "ResNet-50 stage 1 bottleneck (1x1, 64 -> 256)", "conv2d", 8, 64,
     256, (56, 56), 1, {}),
    ("resnet50_28_1x1_reduce", "ResNet-50 stage 2 bottleneck (1x1, 512 -> 128)", "conv2d", 8,
     512, 128, (28, 28), 1, {}),
    ("vgg_112_3x3", "VGG-16 conv2_2", "conv2d", 1, 128, 128, (112, 112), 3, dict(padding=1)),
    ("resnet_56_3x3_batch1", "ResNet-18 stage 1, batch 1", "conv2d", 1, 64, 64, (56, 56), 3,
     dict(padding=1)),
    ("resnet_14_3x3_batch1", "ResNet-18 stage 3, batch 1", "conv2d", 1, 256, 256, (14, 14), 3,
     dict(padding=1)),
    # dilated, grouped, depthwise
    ("deeplab_aspp_3x3_d6", "DeepLabv3 ASPP (dilation 6)", "conv2d", 2, 256, 256, (28, 28), 3,
     dict(padding=6, dilation=6)),
    ("unet_dilated_3x3_d2", "dilated residual block (dilation 2)", "conv2d", 8, 64, 64,
     (56, 56), 3, dict(padding=2, dilation=2)),
    ("resnext_28_3x3_g32", "ResNeXt-50 32x4d stage 2 (groups 32)", "conv2d", 8, 256, 256,
     (28, 28), 3, dict(padding=1, groups=32)),
    ("mobilenetv2_56_dw3x3", "MobileNetV2 depthwise, 56x56", "conv2d", 8, 144, 144, (56, 56), 3,
     dict(padding=1, groups=144)),
    ("mobilenetv2_56_dw3x3s2", "MobileNetV2 depthwise, stride 2", "conv2d", 8, 144, 144,
     (56, 56), 3, dict(stride=2, padding=1, groups=144)),
    ("mobilenetv2_28_1x1", "MobileNetV2 pointwise projection", "conv2d", 8, 192, 32, (28, 28), 1,
     {}),
    # generators and decoders: transposed convs
    ("dcgan_8_tconv4s2", "DCGAN generator, 8x8 -> 16x16", "conv_transpose2d", 16, 256, 128,
     (8, 8), 4, dict(stride=2, padding=1)),
    ("dcgan_8_tconv4s2_f64", "DCGAN generator, 8x8 -> 16x16, float64", "conv_transpose2d", 16,
     256, 128, (8, 8), 4, dict(stride=2, padding=1)),
    ("dcgan_32_tconv4s2_rgb", "DCGAN generator output, 32x32 -> 64x64 RGB", "conv_transpose2d",
     16, 64, 3, (32, 32), 4, dict(stride=2, padding=1)),
    ("pix2pix_64_tconv4s2", "pix2pix U-Net decoder, 64x64 -> 128x128, batch 1",
     "conv_transpose2d", 1, 256, 64, (64, 64), 4, dict(stride=2, padding=1)),
    ("unet_64_tconv2s2", "U-Net up-convolution (k2 s2), 64x64 -> 128x128", "conv_transpose2d",
     4, 128, 64, (64, 64), 2, dict(stride=2)),
    ("fsrcnn_32_tconv9s2", "FSRCNN deconvolution (k9 s2), 56 -> 1 channels",
     "conv_transpose2d", 16, 56, 1, (32, 32), 9, dict(stride=2, padding=4, output_padding=1)),
    ("fcn8s_tconv16s8", "FCN-8s final upsampling (k16 s8), 21 classes", "conv_transpose2d", 1,
     21, 21, (28, 28), 16, dict(stride=8, padding=4)),
    ("autoencoder_32_tconv3s1", "stride-1 transposed conv (conv autoencoder decoder)",
     "conv_transpose2d", 8, 64, 64, (32, 32), 3, dict(padding=1)),
    # audio: long 1-D convs and their transposed upsamplers
    ("wav2vec_stem_k10s5", "wav2vec 2.0 feature encoder, first conv", "conv1d", 4, 1, 512,
     (16000,), 10, dict(stride=5)),
    ("melgan_in_k7", "MelGAN generator input (80 mel bins -> 512)", "conv1d", 4, 80, 512,
     (256,), 7, dict(padding=3)),
    ("wavenet_k3_d8", "WaveNet / TCN dilated conv (dilation 8)", "conv1d", 4, 128, 128,
     (4096,), 3, dict(padding=8, dilation=8)),
    ("demucs_k8s4", "Demucs encoder (k8 s4)", "conv1d", 4, 64, 128, (16384,), 8,
     dict(stride=4)),
    ("melgan_tconv16s8", "MelGAN upsampler x8, 512 -> 256", "conv_transpose1d", 4, 512, 256,
     (64,), 16, dict(stride=8, padding=4)),
    ("hifigan_tconv8s4", "HiFi-GAN V3 upsampler x4, 128 -> 64", "conv_transpose1d", 4, 128, 64,
     (2048,), 8, dict(stride=4, padding=2)),
    ("melgan_tconv16s8_f64", "MelGAN upsampler x8, float64", "conv_transpose1d", 4, 512, 256,
     (64,), 16, dict(stride=8, padding=4)),
)


def _tiny_layer(op, N, C_in, C_out, spatial, kernel, kw):
    """The same layer, small: batch <= 2, <= 4 channels a side (groups kept in
    proportion); a conv's input at most 3 strides longer than the dilated
    kernel (or 6), a transposed conv's at most 4."""
    groups = kw.get("groups", 1)
    depthwise = groups == C_in == C_out
    g = min(groups, 2)
    c_in = g if depthwise else g * max(1, min(C_in // groups, 2))
    c_out = g if depthwise else g * max(1, min(C_out // groups, 2))
    kw = dict(kw, groups=g) if groups > 1 else dict(kw)
    d = kw.get("dilation", 1)
    reach = d * (kernel - 1) + 1
    cap = 4 if op.startswith("conv_transpose") else max(reach + 3 * kw.get("stride", 1), 6)
    small = tuple(min(L, cap) for L in spatial)
    return min(N, 2), c_in, c_out, small, kernel, kw


def layer_cases(tiny=False):
    """The layers suite (:data:`LAYERS`) as cases, ``suite='layers'``."""
    out = []
    for name, network, op, N, C_in, C_out, spatial, kernel, kw in LAYERS:
        args = (N, C_in, C_out, spatial, kernel, kw)
        if tiny:
            args = _tiny_layer(op, *args)
        N, C_in, C_out, spatial, kernel, kw = args
        dtype = "float64" if name.endswith("_f64") else "float32"
        out.append(conv_case(name, op, N, C_in, C_out, spatial, kernel, dtypes=(dtype,),
                             suite="layers", network=network, **kw))
    return out


# ---------------------------------------------------------------------------
# cases from the command line: "conv2d x=8,64,56,56 w=64,64,3,3 padding=1"
# ---------------------------------------------------------------------------

#: keywords a spec may give, per family; tuples are comma-separated ints
_SPEC_CONV_KEYS = ("stride", "padding", "dilation", "groups", "output_padding")


class CaseSpecError(ValueError):
    """A case given on the command line that cannot be run (the message says why)."""


def _spec_ints(text, key, spec):
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise CaseSpecError(f"{key}={text!r} in {spec!r}: expected integers separated by "
                            f"commas") from None
    if any(v < 0 for v in values):
        raise CaseSpecError(f"{key}={text!r} in {spec!r}: expected integers >= 0")
    return values


def parse_case(spec, name=None):
    """A case from a one-line description, as ``deconv bench --case`` takes it.

    Parameters
    ----------
    spec : str
        ``"OP x=N,C,*size w=*shape [key=value ...]"``: OP one of
        :data:`CONV_OPS`; ``x`` the input shape, ``w`` the weight's
        (PyTorch layout: ``(C_out, C_in/groups, *k)``, transposed
        ``(C_in, C_out/groups, *k)``); keys ``stride``, ``padding``,
        ``dilation``, ``groups``, ``output_padding`` (an int or
        comma-separated ints, one per axis), ``dtype`` (``float32``,
        ``float64`` or ``float32,float64``).
    name : str, optional
        The row's name (default ``spec`` itself).

    Returns
    -------
    dict
        A conv case with ``suite='user'``.

    Raises
    ------
    CaseSpecError
        Naming the part of ``spec`` that is wrong.

    Examples
    --------
    >>> c = parse_case("conv2d x=8,64,56,56 w=64,64,3,3 padding=1")
    >>> c["shapes"]["gy"], c["kw"]
    ((8, 64, 56, 56), {'stride': 1, 'padding': 1, 'groups': 1})
    """
    words = spec.split()
    if not words:
        raise CaseSpecError("an empty case: expected 'OP x=... w=... [key=value ...]'")
    op, items = words[0], {}
    if op not in CONV_OPS:
        raise CaseSpecError(f"op {op!r} in {spec!r}: expected one of {', '.join(CONV_OPS)}")
    for word in words[1:]:
        key, sep, value = word.partition("=")
        if not sep or key not in ("x", "w", "dtype") + _SPEC_CONV_KEYS:
            raise CaseSpecError(f"{word!r} in {spec!r}: expected key=value with key one of "
                                f"x, w, dtype, {', '.join(_SPEC_CONV_KEYS)}")
        if key in items:
            raise CaseSpecError(f"{key} given twice in {spec!r}")
        items[key] = value
    for key in ("x", "w"):
        if key not in items:
            raise CaseSpecError(f"{spec!r} gives no {key}=...: expected x=N,C,*size and "
                                f"w=*weight_shape")
    x = _spec_ints(items["x"], "x", spec)
    w = _spec_ints(items["w"], "w", spec)
    nd = int(op[-2])
    if len(x) != nd + 2 or len(w) != nd + 2:
        raise CaseSpecError(f"{op} takes x and w of {nd + 2} dimensions, got x={x}, w={w} "
                            f"in {spec!r}")
    if min(x) < 1 or min(w) < 1:
        raise CaseSpecError(f"x={x} and w={w} in {spec!r}: every size must be >= 1")
    kw = {}
    for key in _SPEC_CONV_KEYS:
        if key in items:
            v = _spec_ints(items[key], key, spec)
            if len(v) not in (1, nd) or (key == "groups" and len(v) != 1):
                raise CaseSpecError(f"{key}={items[key]!r} in {spec!r}: expected "
                                    f"{'one int' if key == 'groups' else f'1 or {nd} ints'}")
            kw[key] = v[0] if len(v) == 1 else v
    groups = kw.pop("groups", 1)
    transposed = op.startswith("conv_transpose")
    if groups < 1 or x[1] % groups:
        raise CaseSpecError(f"groups={groups} in {spec!r} must be >= 1 and divide the input's "
                            f"{x[1]} channels")
    expected_c = w[0] if transposed else w[1] * groups
    if expected_c != x[1]:
        raise CaseSpecError(
            f"w={w} does not fit x={x} in {spec!r}: {op} wants w[{0 if transposed else 1}]"
            f"{'' if transposed else ' * groups'} == x's {x[1]} channels")
    if transposed and w[0] % groups:
        raise CaseSpecError(f"groups={groups} in {spec!r} must divide w[0]={w[0]}")
    C_out = w[1] * groups if transposed else w[0]
    dtypes = tuple(items.get("dtype", "float32").split(","))
    if not dtypes or any(d not in ("float32", "float64") for d in dtypes):
        raise CaseSpecError(f"dtype={items['dtype']!r} in {spec!r}: expected float32, float64 "
                            f"or float32,float64")
    for key in ("stride", "dilation"):
        if 0 in per_axis(kw.get(key, 1), nd):
            raise CaseSpecError(f"{key}={items[key]!r} in {spec!r} must be >= 1")
    try:
        return conv_case(name or spec, op, x[0], x[1], C_out, x[2:], w[2:], groups=groups,
                         dtypes=dtypes, suite="user", network="given on the command line", **kw)
    except ValueError as e:
        raise CaseSpecError(f"{spec!r}: {e}") from None


def read_case_file(path):
    """Cases from a file: one spec per line (:func:`parse_case`), optionally
    ``name: spec``; blank lines and ``#`` comments are skipped."""
    cases = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            name, sep, rest = line.partition(":")
            spec, name = (rest.strip(), name.strip()) if sep else (line, None)
            try:
                cases.append(parse_case(spec, name))
            except CaseSpecError as e:
                raise CaseSpecError(f"{path}, line {number}: {e}") from None
    return cases


def train_case(name, op, **geometry):
    """A training step of one network of :data:`deconv.bench.blocks.TRAIN_BLOCKS`.

    Parameters
    ----------
    name : str
    op : str
        A key of ``TRAIN_BLOCKS``.
    **geometry
        The numbers the block's builders take (``N``, ``h`` and its
        channels); ``dtypes``, ``large``, ``limit_target``, ``sweep``,
        ``suite``, ``network`` are stored on the case instead.

    Notes
    -----
    The inputs are ``x``, the target ``t`` and the parameters ``p0``,
    ``p1``, ... in the order of the deconv module's ``parameters()``; their
    shapes are read off that module itself, so that the benchmark holds no
    second description of the network. ``init`` gives each parameter's
    ``(loc, scale)`` of a normal draw: ``1/sqrt(fan_in)`` for weights (as
    torch's default initialisation, so that activations stay of order one),
    ``1 +- 0.1`` for the scales of normalization layers (``weight`` of a 1-D
    parameter) and ``1/16`` for biases. A block with a ``describe`` builder
    (the model families) adds what it says of the module to the geometry:
    its layer list, from which the torch twin and the reference are built.
    """
    import numpy as np
    from .blocks import TRAIN_BLOCKS
    if op not in TRAIN_BLOCKS:
        raise ValueError(f"op must be one of {sorted(TRAIN_BLOCKS)}, got {op!r}")
    extra = {k: geometry.pop(k) for k in ("dtypes", "large", "limit_target", "sweep", "suite",
                                          "network") if k in geometry}
    block = TRAIN_BLOCKS[op]
    model = block.deconv(geometry, np.float64)
    if block.describe is not None:
        geometry = dict(geometry, **block.describe(geometry, model))
    x_shape, t_shape = block.shapes(geometry)
    shapes, init = dict(x=x_shape, t=t_shape), {}
    for i, (pname, p) in enumerate(model.named_parameters()):
        key = f"p{i}"
        shapes[key] = tuple(p.shape)
        if len(p.shape) > 1:
            fan_in = 1
            for s in p.shape[1:]:
                fan_in *= s
            init[key] = (0.0, fan_in ** -0.5)
        elif pname.endswith("weight"):
            init[key] = (1.0, 0.1)
        else:
            init[key] = (0.0, 1 / 16)
    case = dict(name=name, op=op, family="train", shapes=shapes, kw={}, init=init,
                geometry=geometry, dtypes=("float32",), large=False, limit_target=False,
                sweep=None, suite="kernels", network=None)
    case.update(extra)
    return case


def model_cases(tiny=False):
    """The models suite: one training step of each family of ``deconv train``.

    Each row's network is the one the family's builder returns with its
    defaults (:data:`deconv.bench.blocks.FAMILY_ROWS`), at the batch size of
    the family's recipe; its torch twin and reference are built from its
    layer list (:mod:`deconv.bench.networks`). ``tiny`` gives each the
    small network of its check version, batch 2.
    """
    from .blocks import FAMILY_ROWS, family_geometry
    out = []
    for op, family in FAMILY_ROWS.items():
        geometry = family_geometry(family, 2, 8) if tiny else family_geometry(family)
        out.append(train_case(op, op, suite="models", network=_FAMILY_NETWORKS[family],
                              **geometry))
    return out


#: what each family's row trains, for the report
_FAMILY_NETWORKS = {
    "skip": "deconv train skip: models.denoising.unet",
    "text": "deconv train text: models.text_restoration.conv_stack",
    "classifier": "deconv train classifier: models.recognition.digit_classifier",
    "autoencoder": "deconv train autoencoder: models.compression.patch_autoencoder",
    "superres": "deconv train superres: models.fsrcnn (x2, deconv upsampling)",
    "generator": "deconv train generator: D(G(z)), the generator's step",
}


# ---------------------------------------------------------------------------
# the table
# ---------------------------------------------------------------------------

def build_cases(size="full"):
    """Every case of the suite, in table order.

    Parameters
    ----------
    size : {'full', 'tiny'}
        'tiny' keeps the structure (ops, strides, padding, groups) with
        small tensors; it exists for the tests of the machinery.

    Returns
    -------
    list of dict
    """
    if size not in ("full", "tiny"):
        raise ValueError(f"size must be 'full' or 'tiny', got {size!r}")
    tiny = size == "tiny"
    n, c, s = (2, 4, 8) if tiny else (32, 64, 32)
    cases = [
        conv_case("conv2d", "conv2d", n, c, c, (s, s), 3, padding=1,
                  dtypes=("float32", "float64"), large=True, limit_target=True),
        conv_case("conv2d_1to16_k5", "conv2d", 2 if tiny else 64, 1, 16 if not tiny else 4,
                  (12, 12) if tiny else (28, 28), 5),
        conv_case("conv2d_depthwise", "conv2d", n, c, c, (s, s), 3, padding=1, groups=c),
        conv_case("conv_transpose2d", "conv_transpose2d", n, c, c // 2, (s // 2, s // 2), 4,
                  stride=2, padding=1, large=True, limit_target=True),
        # (the DCGAN generator's 8x8 transposed conv and ResNet's 14x14 stage are rows of the
        # layers suite: dcgan_8_tconv4s2, resnet_14_3x3)
        conv_case("conv1d", "conv1d", n, 2 * c, 2 * c, (16 if tiny else 256,), 5, padding=2,
                  large=True, limit_target=True),
        conv_case("conv_transpose1d", "conv_transpose1d", n, 2 * c, 2 * c,
                  (16 if tiny else 256,), 5, padding=2, large=True),
    ]
    cases += [
        # a 3-D U-Net level: 32 -> 32 channels on 32^3, and its k2 s2 transposed conv from 16^3
        conv_case("conv3d_unet", "conv3d", 1 if tiny else 2, c, c, (4,) * 3 if tiny else (32,) * 3,
                  3, padding=1),
        conv_case("conv_transpose3d_unet", "conv_transpose3d", 1 if tiny else 2, c, c,
                  (2,) * 3 if tiny else (16,) * 3, 2, stride=2),
    ]
    cases += [pool_case(op, op, n, c, s, s) for op in POOL_OPS]
    cases += _map_cases(tiny)
    cases += [
        train_case("superres_train", "superres_train", N=n, h=8 if tiny else 16,
                   channels=(8, 4) if tiny else (32, 16)),
        # the middle block of a DCGAN generator: 256 -> 128 channels, 8x8 -> 16x16
        train_case("dcgan_block_train", "dcgan_block_train", N=2 if tiny else 16,
                   C_in=8 if tiny else 256, C_out=4 if tiny else 128, h=4 if tiny else 8),
        train_case("unet_block_train", "unet_block_train", N=2 if tiny else 8,
                   C=8 if tiny else 64, groups=4 if tiny else 8, h=8 if tiny else 64),
    ]
    batches = (1, 2, 3, 4) if tiny else SWEEP_BATCHES
    images = (4, 6, 8, 10) if tiny else SWEEP_IMAGES
    for b in batches:
        cases.append(conv_case(f"sweep_batch_n{b}", "conv2d", b, c, c, (s, s), 3, padding=1,
                               sweep="batch", sweep_value=b))
    for i in images:
        cases.append(conv_case(f"sweep_image_{i}", "conv2d", images[0] // 2 if tiny else 8,
                               c, c, (i, i), 3, padding=1, sweep="image", sweep_value=i))
    return cases


def check_version(case, channel_cap=8):
    """The reduced case on which outputs are compared with the reference.

    Batch 2 and at most ``channel_cap`` channels (per side, groups kept in
    proportion: a depthwise conv stays depthwise); strides, padding, kernel
    and image sizes are those of the case. scipy's direct correlation makes
    the reference's cost grow with ``N * C_in * C_out``: at full size its
    conv2d backward alone takes minutes.
    """
    if case["family"] == "conv":
        g = case["geometry"]
        groups = min(g["groups"], channel_cap)
        cin_g = min(g["C_in"] // g["groups"], max(1, channel_cap // groups))
        cout_g = min(g["C_out"] // g["groups"], max(1, channel_cap // groups))
        small = conv_case(case["name"], case["op"], min(2, g["N"]), cin_g * groups,
                          cout_g * groups, g["spatial"], g["kernel"], g["stride"],
                          g["padding"], groups, g["dilation"], g["output_padding"])
    elif case["op"] in MAP_OPS:
        g = case["geometry"]
        cap = min(g["C"], channel_cap)
        small = map_case(case["name"], case["op"], min(2, g["N"]), cap, g["spatial"],
                         case["kw"], g["out_spatial"], cap * g["channel_factor"], case["bkw"])
    elif case["family"] == "pool":
        g = case["geometry"]
        small = pool_case(case["name"], case["op"], min(2, g["N"]), min(g["C"], channel_cap),
                          g["H"], g["W"])
    elif case["family"] == "train":
        from .blocks import TRAIN_BLOCKS
        small = train_case(case["name"], case["op"],
                           **TRAIN_BLOCKS[case["op"]].reduce(case["geometry"], channel_cap))
    else:
        raise ValueError(f"no check version for family {case['family']!r}")
    for key in ("dtypes", "large", "limit_target", "sweep", "suite", "network"):
        small[key] = case[key]
    return small


def cost_ratio(case, small):
    """Work of a direct (untiled) implementation on ``case`` over its work on ``small``.

    ``small`` is :func:`check_version` of ``case``: the same image sizes and
    kernel, fewer samples and channels, so a loop nest over every
    multiply-add (the scipy reference, the naive kernels) costs in
    proportion to ``N * C_in * C_out / groups`` (a conv) or ``N * C``
    (the pooling family). Used to predict a full-size call from the
    measured reduced one.
    """
    g, h = case["geometry"], small["geometry"]
    if case["family"] == "conv":
        return (g["N"] * g["C_out"] * g["C_in"] / g["groups"]) / \
            (h["N"] * h["C_out"] * h["C_in"] / h["groups"])
    return (g["N"] * g["C"]) / (h["N"] * h["C"])


# ---------------------------------------------------------------------------
# FLOP counts: the GEMMs behind a conv
# ---------------------------------------------------------------------------

def conv_gemm(case):
    """``(batch, M, K, P)`` of the conv GEMM behind a conv case.

    A conv is ``Y = W @ col``: ``(M, K) @ (K, P)`` per group (``batch`` =
    groups), ``M = C_out/groups``, ``K = C_in/groups * prod(kernel)``,
    ``P = N * prod(output size)``. A transposed conv is the adjoint of the
    conv with the same weight array, so its triple is that conv's: ``M``
    its input channels, ``K = C_out/groups * prod(kernel)``, ``P = N *
    prod(input size)``.
    """
    g = case["geometry"]
    ksize = 1
    for k in per_axis(g["kernel"], len(g["spatial"])):
        ksize *= k
    prod = 1
    if case["op"].startswith("conv_transpose"):
        for s in g["spatial"]:
            prod *= s
        groups = g["groups"]
        return groups, g["C_in"] // groups, g["C_out"] // groups * ksize, g["N"] * prod
    for s in g["out"]:
        prod *= s
    return g["groups"], g["C_out"] // g["groups"], g["C_in"] // g["groups"] * ksize, g["N"] * prod


def limit_gemms(case):
    """GEMMs of the same shapes, hence the same FLOP count, as each pass of a conv case.

    Returns
    -------
    dict
        pass -> list of ``(batch, rows, inner, cols)``: ``(rows, inner) @
        (inner, cols)``, ``batch`` times. Forward of a conv: ``W @ col``;
        backward: ``W.T @ grad`` (input gradient) and ``grad @ col.T``
        (weight gradient). A transposed conv swaps the first two.
    """
    b, M, K, P = conv_gemm(case)
    conv_fwd, input_grad, weight_grad = (b, M, K, P), (b, K, M, P), (b, M, P, K)
    if case["op"].startswith("conv_transpose"):
        return {"fwd": [input_grad], "bwd": [conv_fwd, weight_grad]}
    return {"fwd": [conv_fwd], "bwd": [input_grad, weight_grad]}


def flops(case, pass_):
    """Multiply-adds times two of one pass of a conv case (bias terms left out)."""
    return sum(2 * b * m * k * n for b, m, k, n in limit_gemms(case)[pass_])


# ---------------------------------------------------------------------------
# inputs (parent only)
# ---------------------------------------------------------------------------

def _seed(case_name, variant):
    return SEED + zlib.crc32(f"{case_name}/{variant}".encode())


def load_reference_module():
    """:mod:`deconv.reference` loaded from its file, without importing the deconv package.

    It imports only NumPy and scipy, and the scipy worker must not pay for
    (or be disturbed by) Numba.
    """
    if "deconv.reference" in sys.modules:
        return sys.modules["deconv.reference"]
    if "_deconv_reference" in sys.modules:
        return sys.modules["_deconv_reference"]
    import importlib.util
    # this file is deconv/bench/cases.py; the reference is deconv/reference.py
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "reference.py")
    spec = importlib.util.spec_from_file_location("_deconv_reference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules["_deconv_reference"] = module
    return module


def make_inputs(case, variant):
    """float64 inputs of one case from its own seed (NumPy arrays; ``idx`` int64).

    The same values serve every dtype (cast when written), so the float32
    and float64 rows compute the same thing up to rounding.
    """
    import numpy as np
    rng = np.random.default_rng(_seed(case["name"], variant))
    shapes = case["shapes"]
    a = {}
    if case["family"] == "train":
        vocab = case["geometry"].get("x_vocab")
        # an embedding's input is indices (int64, kept so by write_inputs)
        a["x"] = (rng.integers(0, vocab, shapes["x"]) if vocab
                  else rng.uniform(0, 1, shapes["x"]))
        a["t"] = rng.uniform(0, 1, shapes["t"])
        for name, (loc, scale) in case["init"].items():
            a[name] = loc + scale * rng.standard_normal(shapes[name])
        return a
    for name, shape in shapes.items():
        if name in ("p", "idx"):
            continue
        a[name] = rng.standard_normal(shape)
    if case["op"] == "max_unpool2d":
        a["p"], a["idx"] = load_reference_module().max_pool2d(a.pop("x"), **case["kw"])
    return a


def write_inputs(entries, data_dir):
    """Write the inputs of every entry (case, dtype, variant) as raw files.

    Returns
    -------
    dict
        key -> {array name -> {'file', 'dtype', 'shape'}}, plus the float64
        arrays of the 'check' entries for the reference (key -> dict).
    """
    specs, check_arrays = {}, {}
    cache = {}
    # grouped by case and variant, so that each case's values are generated once
    for e in sorted(entries, key=lambda e: (e["case"]["name"], e["variant"])):
        case, dtype, variant = e["case"], e["dtype"], e["variant"]
        ck = (case["name"], variant)
        if ck not in cache:
            cache = {ck: make_inputs(case, variant)}    # keep one case in memory at a time
        base = cache[ck]
        spec, cast = {}, {}
        for name, arr in base.items():
            a = arr if arr.dtype.kind == "i" else arr.astype(dtype)
            path = os.path.join(data_dir, f"{e['key'].replace('|', '__')}__{name}.bin")
            a.tofile(path)
            spec[name] = {"file": path, "dtype": str(a.dtype), "shape": list(a.shape)}
            cast[name] = a
        specs[e["key"]] = spec
        if variant == "check":
            check_arrays[e["key"]] = cast
    return specs, check_arrays
