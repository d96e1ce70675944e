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

CONV_OPS = ("conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d")
POOL_OPS = ("max_pool2d", "max_unpool2d", "avg_pool2d", "upsample_nearest2d",
            "upsample_bilinear2d", "pixel_shuffle")
PASSES = ("fwd", "bwd")
SWEEP_BATCHES = (8, 16, 32, 64)
SWEEP_IMAGES = (16, 32, 48, 64)
SEED = 20240601


# ---------------------------------------------------------------------------
# one case of each family
# ---------------------------------------------------------------------------

def _conv_out(size, k, s, p):
    return (size + 2 * p - k) // s + 1


def _conv_transpose_out(size, k, s, p):
    return (size - 1) * s - 2 * p + k


def conv_case(name, op, N, C_in, C_out, spatial, kernel, stride=1, padding=0, groups=1, **extra):
    """One convolution case: shapes of x, weight, bias, grad_output, and the call's keywords.

    Parameters
    ----------
    name : str
    op : {'conv1d', 'conv2d', 'conv_transpose1d', 'conv_transpose2d'}
    N, C_in, C_out : int
        Batch and channels of the op (for a transposed conv, ``C_in`` is
        its input's channels, as in ``torch.nn.ConvTranspose2d``).
    spatial : tuple of int
        Input size, ``(L,)`` or ``(H, W)``.
    kernel, stride, padding, groups : int
        The same along every spatial axis.
    **extra
        Stored on the case: ``dtypes``, ``large``, ``limit_target``,
        ``sweep``, ``sweep_value``.

    Returns
    -------
    dict
    """
    transposed = op.startswith("conv_transpose")
    out_fn = _conv_transpose_out if transposed else _conv_out
    out = tuple(out_fn(s, kernel, stride, padding) for s in spatial)
    k = (kernel,) * len(spatial)
    w = (C_in, C_out // groups) + k if transposed else (C_out, C_in // groups) + k
    case = dict(name=name, op=op, family="conv",
                shapes=dict(x=(N, C_in) + tuple(spatial), w=w, b=(C_out,),
                            gy=(N, C_out) + out),
                kw=dict(stride=stride, padding=padding, groups=groups),
                geometry=dict(N=N, C_in=C_in, C_out=C_out, spatial=tuple(spatial), kernel=kernel,
                              stride=stride, padding=padding, groups=groups, out=out),
                dtypes=("float32",), large=False, limit_target=False, sweep=None)
    case.update(extra)
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
                limit_target=False, sweep=None)
    case.update(extra)
    return case


def train_case(name, op, **geometry):
    """A training step of one network of :data:`deconv.bench.blocks.TRAIN_BLOCKS`.

    Parameters
    ----------
    name : str
    op : str
        A key of ``TRAIN_BLOCKS``.
    **geometry
        The numbers the block's builders take (``N``, ``h`` and its
        channels); ``dtypes``, ``large``, ``limit_target``, ``sweep`` are
        stored on the case instead.

    Notes
    -----
    The inputs are ``x``, the target ``t`` and the parameters ``p0``,
    ``p1``, ... in the order of the deconv module's ``parameters()``; their
    shapes are read off that module itself, so that the benchmark holds no
    second description of the network. ``init`` gives each parameter's
    ``(loc, scale)`` of a normal draw: ``1/sqrt(fan_in)`` for weights (as
    torch's default initialisation, so that activations stay of order one),
    ``1 +- 0.1`` for the scales of normalization layers (``weight`` of a 1-D
    parameter) and ``1/16`` for biases.
    """
    import numpy as np
    from .blocks import TRAIN_BLOCKS
    if op not in TRAIN_BLOCKS:
        raise ValueError(f"op must be one of {sorted(TRAIN_BLOCKS)}, got {op!r}")
    extra = {k: geometry.pop(k) for k in ("dtypes", "large", "limit_target", "sweep")
             if k in geometry}
    block = TRAIN_BLOCKS[op]
    x_shape, t_shape = block.shapes(geometry)
    shapes, init = dict(x=x_shape, t=t_shape), {}
    for i, (pname, p) in enumerate(block.deconv(geometry, np.float64).named_parameters()):
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
                sweep=None)
    case.update(extra)
    return case


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
        # the transposed conv of a DCGAN generator's middle block: 256 -> 128, 8x8 -> 16x16
        conv_case("conv_transpose2d_dcgan", "conv_transpose2d", 2 if tiny else 16,
                  8 if tiny else 256, 4 if tiny else 128, (4, 4) if tiny else (8, 8), 4,
                  stride=2, padding=1),
        # a ResNet stage-3 conv: 256 -> 256 channels on 14x14 planes
        conv_case("conv2d_14x14_c256", "conv2d", 2 if tiny else 8, 8 if tiny else 256,
                  8 if tiny else 256, (6, 6) if tiny else (14, 14), 3, padding=1),
        conv_case("conv1d", "conv1d", n, 2 * c, 2 * c, (16 if tiny else 256,), 5, padding=2,
                  large=True, limit_target=True),
        conv_case("conv_transpose1d", "conv_transpose1d", n, 2 * c, 2 * c,
                  (16 if tiny else 256,), 5, padding=2, large=True),
    ]
    cases += [pool_case(op, op, n, c, s, s) for op in POOL_OPS]
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
                          g["padding"], groups)
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
    for key in ("dtypes", "large", "limit_target", "sweep"):
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
    ksize = g["kernel"] ** len(g["spatial"])
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
        a["x"] = rng.uniform(0, 1, shapes["x"])
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
