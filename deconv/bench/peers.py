"""The implementations ``deconv bench`` compares ("libs"), and how each is loaded.

========  ==========================================================
lib       what it runs
========  ==========================================================
deconv    the package's public functions with its default (tiled)
          kernels; the training steps on :mod:`deconv.nn` networks
          (:mod:`deconv.bench.blocks`)
naive     the same public functions under ``deconv.kernels.use("naive")``:
          the plain loop nests the tiles replace (conv cases only)
torch     ``torch.nn.functional`` and autograd (imports torch only;
          works without NumPy: arrays travel as raw bytes)
jax       the conv ops in ``jax.lax`` under ``jax.jit`` (conv cases
          only): the transposed convs as linear transposes, the
          backward as ``jax.vjp``'s pullback
numpy     an im2col + matmul baseline of the conv ops written here,
          and the "limit": ``np.matmul`` on the conv's GEMM shapes
scipy     :mod:`deconv.reference` (scipy.signal / NumPy), loaded from
          its file so that Numba is not imported; in float64 it is the
          oracle every lib's outputs are checked against
========  ==========================================================

Each builder returns ``(fwd, bwd, fwd_names, bwd_names)``: two thunks
returning tuples of arrays, and the names of those arrays (``y``, ``gx``,
``gw``, ...), which the check compares by name.

Imported by the worker processes (as a sibling module, see
:mod:`deconv.bench.worker`): nothing here imports NumPy, torch or deconv at
module level; each is imported by the builder of the lib that needs it.
"""

import contextlib
import os
import sys

from . import cases as C
from .blocks import TRAIN_BLOCKS

#: every lib, in the order the workers of one round run
LIBS = ("deconv", "torch", "jax", "numpy", "scipy", "naive")

#: the peers that may not be installed: a worker that cannot import one says so,
#: and its columns leave the tables (:func:`deconv.bench.runner.run`)
OPTIONAL_LIBS = {"torch": "PyTorch", "jax": "JAX"}

#: what each lib's worker must not have imported (checked when it ends)
FORBIDDEN_IMPORTS = {"torch": ("deconv", "numba"), "jax": ("deconv", "numba", "torch"),
                     "deconv": ("torch",), "naive": ("torch",),
                     "numpy": ("deconv", "numba", "torch"),
                     "scipy": ("deconv", "numba", "torch")}


def libs_for(case, libs):
    """The libs among ``libs`` that implement ``case``.

    The NumPy baseline covers the 1-D and 2-D conv ops, the naive kernel
    set every conv op (the pooling, unpooling, upsampling, padding and
    unfold kernels have a single form, which is their naive one); JAX runs
    the conv ops only; the reference has no optimizer step.
    """
    family = case["family"]
    return [lib for lib in libs
            if not (lib in ("numpy", "naive", "jax") and family != "conv")
            and not (lib == "numpy" and not case.get("numpy_baseline", True))
            and not (lib == "scipy" and family == "train")]


# ---------------------------------------------------------------------------
# loading: the reference without the package; deconv's kernel sets
# ---------------------------------------------------------------------------


def naive_kernels_missing():
    """Why deconv's naive kernel set cannot be selected (a sentence), or None if it can."""
    import deconv.kernels as kernels
    absent = [name for name in ("use", "active") if not hasattr(kernels, name)]
    if not absent:
        return None
    return (f"the 'naive' peer needs deconv.kernels.use('naive') and deconv.kernels.active(), "
            f"but {kernels.__file__} has no {' or '.join(absent)} (the naive kernel set is not "
            f"in this deconv); leave 'naive' out of --peers")


def kernel_set(lib):
    """The context in which ``lib`` runs: the naive kernel set for 'naive', else nothing.

    Raises
    ------
    RuntimeError
        For 'naive' when deconv has no kernel sets (:func:`naive_kernels_missing`).
    """
    if lib != "naive":
        return contextlib.nullcontext()
    why = naive_kernels_missing()
    if why:
        raise RuntimeError(why)
    import deconv.kernels
    return deconv.kernels.use("naive")


def active_kernel_set():
    """``deconv.kernels.active()`` where deconv has kernel sets and is loaded, else None."""
    kernels = sys.modules.get("deconv.kernels")
    active = getattr(kernels, "active", None)
    return active() if active is not None else None


# ---------------------------------------------------------------------------
# arrays as raw files (so that the torch worker needs no NumPy)
# ---------------------------------------------------------------------------

def load_array(spec, lib):
    """One input (``{'file', 'dtype', 'shape'}``) as the array type of ``lib``."""
    if lib == "torch":
        import torch
        dtype = {"float32": torch.float32, "float64": torch.float64,
                 "int64": torch.int64}[spec["dtype"]]
        with open(spec["file"], "rb") as f:
            buf = bytearray(f.read())
        return torch.frombuffer(buf, dtype=dtype).reshape(spec["shape"]).clone()
    import numpy as np
    return np.fromfile(spec["file"], dtype=spec["dtype"]).reshape(spec["shape"])


def save_array(value, path, lib):
    """Write one output as raw bytes; return its ``{'file', 'dtype', 'shape'}``."""
    if lib == "torch":
        import ctypes
        t = value.detach().contiguous()
        raw = ctypes.string_at(t.data_ptr(), t.numel() * t.element_size())
        dtype = str(t.dtype).replace("torch.", "")
        shape = list(t.shape)
    else:
        import numpy as np
        arr = np.ascontiguousarray(value)
        raw, dtype, shape = arr.tobytes(), str(arr.dtype), list(arr.shape)
    with open(path, "wb") as f:
        f.write(raw)
    return {"file": path, "dtype": dtype, "shape": shape}


def builder(lib, threads):
    """``build(case, arrays) -> (fwd, bwd, fwd_names, bwd_names)`` of one lib.

    Imports what that lib needs (an ImportError says it is not installed).
    """
    if lib == "torch":
        import torch
        torch.set_num_threads(int(threads))
        return lambda case, a: (torch_train_impl(case, a, torch) if case["family"] == "train"
                                else torch_impl(case, a, torch))
    if lib == "jax":
        import jax
        # float64 cases need 64-bit arrays, which JAX makes only when asked
        jax.config.update("jax_enable_x64", True)

        def build(case, a):
            if case["family"] != "conv":
                raise ValueError(f"the JAX peer has no {case['op']!r}")
            return jax_conv_impl(case, a, jax)
        return build
    if lib in ("deconv", "naive"):
        import deconv
        return lambda case, a: (deconv_train_impl(case, a) if case["family"] == "train"
                                else api_impl(deconv, case, a))
    if lib == "numpy":
        def build(case, a):
            if case["family"] != "conv":
                raise ValueError(f"the NumPy baseline has no {case['op']!r}")
            return numpy_conv_impl(case, a)
        return build
    if lib == "scipy":
        reference = C.load_reference_module()
        return lambda case, a: api_impl(reference, case, a)
    raise ValueError(f"unknown lib {lib!r}")


# ---------------------------------------------------------------------------
# deconv (tiled or naive) and the reference: the same signatures
# ---------------------------------------------------------------------------

def api_impl(module, case, a):
    """deconv's public functions, or :mod:`deconv.reference` (same signatures).

    ``a`` maps input names to NumPy arrays. Options with defaults are
    passed by keyword (the backward functions take them keyword-only).
    """
    op, kw = case["op"], case["kw"]
    if op in C.CONV_OPS:
        f, fb = getattr(module, op), getattr(module, op + "_backward")
        x, w, b, gy = a["x"], a["w"], a["b"], a["gy"]
        return (lambda: (f(x, w, b, **kw),), lambda: tuple(fb(gy, x, w, **kw)),
                ("y",), ("gx", "gw", "gb"))
    x, gy = a.get("x"), a["gy"]
    if op == "max_pool2d":
        _, idx = module.max_pool2d(x, **kw)
        return (lambda: tuple(module.max_pool2d(x, **kw)),
                lambda: (module.max_pool2d_backward(gy, idx, x.shape),),
                ("y", "idx"), ("gx",))
    if op == "max_unpool2d":
        p, idx = a["p"], a["idx"]
        return (lambda: (module.max_unpool2d(p, idx, **kw),),
                lambda: (module.max_unpool2d_backward(gy, idx),), ("y",), ("gp",))
    if op in ("avg_pool2d", "upsample_nearest2d", "upsample_bilinear2d"):
        f, fb = getattr(module, op), getattr(module, op + "_backward")
        return (lambda: (f(x, **kw),), lambda: (fb(gy, x.shape, **kw),), ("y",), ("gx",))
    if op in C.MAP_OPS:
        f, fb, bkw = getattr(module, op), getattr(module, op + "_backward"), case["bkw"]
        return (lambda: (f(x, **kw),), lambda: (fb(gy, x.shape, **bkw),), ("y",), ("gx",))
    if op == "pixel_shuffle":
        return (lambda: (module.pixel_shuffle(x, **kw),),
                lambda: (module.pixel_shuffle_backward(gy, **kw),), ("y",), ("gx",))
    raise ValueError(f"no implementation of {op!r} here")


def _param_names(count):
    return tuple(f"g{i}" for i in range(count))


def _load_parameters(params, a, owner):
    """Copy the job's ``p0``, ``p1``, ... into ``params`` (arrays or tensors, in place).

    The parent read the shapes off the deconv module (:func:`deconv.bench.cases.train_case`);
    a mismatch means the job came from another version of deconv, or a twin
    that differs from it.
    """
    given = [a[f"p{i}"] for i in range(len(a) - 2)]          # every input but x and t
    have = [tuple(p.shape) for p in params]
    if have != [tuple(g.shape) for g in given]:
        raise RuntimeError(f"{owner} parameters {have} differ from the job's "
                           f"{[tuple(g.shape) for g in given]}")
    return given


def deconv_train_impl(case, a):
    """A training step of the case's :mod:`deconv.nn` network holding the job's
    parameters: forward + L1 loss, then backward + Adam step."""
    import numpy as np
    from deconv import nn, optim
    # the target's dtype: an embedding's input x is int64 indices
    model = TRAIN_BLOCKS[case["op"]].deconv(case["geometry"], a["t"].dtype)
    params = model.parameters()
    for p, g in zip(params, _load_parameters(params, a, f"deconv {case['op']}")):
        p.data[...] = g
    loss_fn = nn.L1Loss()
    opt = optim.Adam(params, lr=1e-3)
    x, t = a["x"], a["t"]
    state = {}
    # x is data: no input gradient, as for torch's x without requires_grad
    model.input_grad = False

    def fwd():
        y = model.forward(x)
        state["loss"] = loss_fn(y, t)
        return y, np.array([state["loss"]], dtype=np.float64)

    def bwd():
        model.zero_grad()
        model.backward(loss_fn.backward())
        grads = tuple(p.grad for p in params)
        opt.step()
        return grads

    return fwd, bwd, ("y", "loss"), _param_names(len(params))


def reference_train_step(case, a):
    """The training step's forward and gradients in float64 (the oracle of the check;
    no optimizer step): the block's reference builder
    (:mod:`deconv.bench.blocks`), then the L1 loss and its gradient.

    Returns
    -------
    dict
        ``y``, ``loss`` and ``g0``... (the gradients of ``p0``...).
    """
    import numpy as np
    f64 = {k: np.asarray(v, dtype=np.float64) for k, v in a.items()}
    W = [f64[f"p{i}"] for i in range(len(f64) - 2)]
    y, backward = TRAIN_BLOCKS[case["op"]].reference(case["geometry"], f64["x"], W)
    d = y - f64["t"]
    # L1Loss (mean): d|d|/dy = sign(d) / size
    grads = backward(np.sign(d) / d.size)
    out = {"y": y, "loss": np.array([np.abs(d).mean()])}
    out.update(zip(_param_names(len(W)), grads))
    return out


def reference_outputs(case, a):
    """Every output of a case (forward and backward) from the float64 reference."""
    import numpy as np
    if case["family"] == "train":
        return reference_train_step(case, a)
    f64 = {k: (v if v.dtype.kind == "i" else np.asarray(v, dtype=np.float64))
           for k, v in a.items()}
    fwd, bwd, fn, bn = api_impl(C.load_reference_module(), case, f64)
    return dict(zip(fn + bn, fwd() + bwd()))


# ---------------------------------------------------------------------------
# NumPy: im2col + matmul baseline, and the matmul limit
# ---------------------------------------------------------------------------

def _geometry_2d(case):
    """(stride, padding, groups) of a conv case, with 1-D ops seen as H = 1."""
    kw = case["kw"]
    s, p = kw["stride"], kw["padding"]
    if case["op"].endswith("1d"):
        return (1, s), (0, p), kw["groups"]
    return (s, s), (p, p), kw["groups"]


def _im2col(x, kh, kw_, stride, padding, out_hw, groups):
    """``(G, C/G * kh * kw, N * H_out * W_out)`` columns of a padded NCHW input."""
    import numpy as np
    N, C = x.shape[:2]
    (sh, sw), (ph, pw), (Ho, Wo) = stride, padding, out_hw
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw_), axis=(2, 3))
    win = win[:, :, ::sh, ::sw][:, :, :Ho, :Wo]          # (N, C, Ho, Wo, kh, kw), a view
    win = win.reshape(N, groups, C // groups, Ho, Wo, kh, kw_)
    # the reshape below copies: this is the im2col matrix
    return win.transpose(1, 2, 5, 6, 0, 3, 4).reshape(groups, C // groups * kh * kw_, N * Ho * Wo)


def _col2im(cols, x_shape, kh, kw_, stride, padding, out_hw, groups):
    """Adjoint of :func:`_im2col`: scatter-add columns back to an NCHW array."""
    import numpy as np
    N, C, H, W = x_shape
    (sh, sw), (ph, pw), (Ho, Wo) = stride, padding, out_hw
    d = cols.reshape(groups, C // groups, kh, kw_, N, Ho, Wo).transpose(4, 0, 1, 2, 3, 5, 6)
    d = d.reshape(N, C, kh, kw_, Ho, Wo)
    xp = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw_):
            xp[:, :, i:i + sh * (Ho - 1) + 1:sh, j:j + sw * (Wo - 1) + 1:sw] += d[:, :, i, j]
    return xp[:, :, ph:ph + H, pw:pw + W]


def _grad_rows(gy, groups):
    """``(G, C_out/G, N * H_out * W_out)`` view of an NCHW output gradient."""
    N, Co, Ho, Wo = gy.shape
    return gy.reshape(N, groups, Co // groups, Ho, Wo).transpose(1, 2, 0, 3, 4).reshape(
        groups, Co // groups, N * Ho * Wo)


def np_conv_forward(x, w, stride, padding, groups):
    """Conv forward, NCHW, by im2col + batched matmul (one GEMM per group)."""
    import numpy as np
    N, _, H, W = x.shape
    Co, _, kh, kw_ = w.shape
    Ho = (H + 2 * padding[0] - kh) // stride[0] + 1
    Wo = (W + 2 * padding[1] - kw_) // stride[1] + 1
    cols = _im2col(x, kh, kw_, stride, padding, (Ho, Wo), groups)
    y = np.matmul(w.reshape(groups, Co // groups, -1), cols)      # (G, Co/G, N*Ho*Wo)
    return np.ascontiguousarray(y.reshape(Co, N, Ho, Wo).transpose(1, 0, 2, 3))


def np_conv_input_grad(gy, w, x_shape, stride, padding, groups):
    """Gradient of the conv with respect to its input: ``W.T @ grad``, then col2im."""
    import numpy as np
    Co, _, kh, kw_ = w.shape
    cols = np.matmul(w.reshape(groups, Co // groups, -1).transpose(0, 2, 1),
                     _grad_rows(gy, groups))
    return np.ascontiguousarray(
        _col2im(cols, x_shape, kh, kw_, stride, padding, gy.shape[2:], groups))


def np_conv_weight_grad(gy, x, w_shape, stride, padding, groups):
    """Gradient of the conv with respect to its weight: ``grad @ col.T``."""
    import numpy as np
    kh, kw_ = w_shape[2:]
    cols = _im2col(x, kh, kw_, stride, padding, gy.shape[2:], groups)
    return np.matmul(_grad_rows(gy, groups), cols.transpose(0, 2, 1)).reshape(w_shape)


def numpy_conv_impl(case, a):
    """The im2col + matmul baseline for one conv case (1-D ops as H = 1)."""
    op = case["op"]
    one_d = op.endswith("1d")
    stride, padding, groups = _geometry_2d(case)

    def as2d(t):
        return t[:, :, None, :] if one_d else t

    def back(t):
        return t[:, :, 0, :] if one_d else t

    x, w, gy = (as2d(a[k]) for k in ("x", "w", "gy"))
    bias = a["b"].reshape(1, -1, 1, 1)
    if op.startswith("conv_transpose"):
        def fwd():
            y = np_conv_input_grad(x, w, (gy.shape[0], gy.shape[1]) + gy.shape[2:], stride,
                                   padding, groups)
            y += bias
            return (back(y),)

        def bwd():
            gx = np_conv_forward(gy, w, stride, padding, groups)
            gw = np_conv_weight_grad(x, gy, w.shape, stride, padding, groups)
            return back(gx), back(gw), gy.sum(axis=(0, 2, 3))
    else:
        def fwd():
            y = np_conv_forward(x, w, stride, padding, groups)
            y += bias
            return (back(y),)

        def bwd():
            gx = np_conv_input_grad(gy, w, x.shape, stride, padding, groups)
            gw = np_conv_weight_grad(gy, x, w.shape, stride, padding, groups)
            return back(gx), back(gw), gy.sum(axis=(0, 2, 3))
    return fwd, bwd, ("y",), ("gx", "gw", "gb")


def limit_impl(case, dtype, seed=0):
    """``np.matmul`` into preallocated outputs on the GEMM shapes of each pass."""
    import numpy as np
    rng = np.random.default_rng(seed)
    calls = {}
    for name, gemms in C.limit_gemms(case).items():
        ops = [(rng.standard_normal((b, m, k)).astype(dtype),
                rng.standard_normal((b, k, n)).astype(dtype),
                np.empty((b, m, n), dtype=dtype)) for b, m, k, n in gemms]

        def call(ops=ops):
            for left, right, out in ops:
                np.matmul(left, right, out=out)
        calls[name] = call
    return calls["fwd"], calls["bwd"]


# ---------------------------------------------------------------------------
# JAX
# ---------------------------------------------------------------------------

def jax_conv_impl(case, a, jax):
    """One conv case in JAX: ``jax.jit`` of ``lax.conv_general_dilated``.

    A transposed conv is, as in PyTorch, the linear transpose of the conv
    that maps its output ``(N, C_out, *out)`` to its input ``(N, C_in, *in)``
    with the same weight, read as ``(O, I, *k) = (C_in, C_out/groups, *k)``;
    that conv's output is cropped to ``in`` (the crop drops the
    ``output_padding`` rows, which the transpose refills with zeros). The
    backward is ``jax.jit`` of ``jax.vjp``'s pullback with respect to
    ``(x, w, b)``: XLA drops the forward, whose value the pullback of a
    linear op never reads. Both thunks return arrays already computed
    (``block_until_ready``), so the timer sees the work.
    """
    import numpy as np
    lax = jax.lax
    op, kw = case["op"], case["kw"]
    x_np, w_np, b_np, gy_np = (a[k] for k in ("x", "w", "b", "gy"))
    nd = x_np.ndim - 2
    stride, padding, dilation = (C.per_axis(kw.get(k, d), nd) for k, d in
                                 (("stride", 1), ("padding", 0), ("dilation", 1)))
    groups = kw.get("groups", 1)
    axes = "DHW"[3 - nd:]
    numbers = ("NC" + axes, "OI" + axes, "NC" + axes)

    def conv(z, w):
        # (N, C, *in) -> (N, O, *out): cross-correlation, as torch's conv
        return lax.conv_general_dilated(z, w, window_strides=stride,
                                        padding=[(p, p) for p in padding],
                                        rhs_dilation=dilation, dimension_numbers=numbers,
                                        feature_group_count=groups)

    bias_shape = (1, -1) + (1,) * nd
    if op.startswith("conv_transpose"):
        in_spatial = x_np.shape[2:]
        z_shape = jax.ShapeDtypeStruct(gy_np.shape, x_np.dtype)

        def forward(x, w, b):
            def adjoint_of(z):
                # (N, C_out, *out) -> (N, C_in, *in)
                return conv(z, w)[(slice(None), slice(None)) +
                                  tuple(slice(0, n) for n in in_spatial)]
            (y,) = jax.linear_transpose(adjoint_of, z_shape)(x)
            return y + b.reshape(bias_shape)
    else:
        def forward(x, w, b):
            return conv(x, w) + b.reshape(bias_shape)

    fwd_jit = jax.jit(forward)
    bwd_jit = jax.jit(lambda x, w, b, g: jax.vjp(forward, x, w, b)[1](g))
    x, w, b, gy = (jax.device_put(np.ascontiguousarray(t)) for t in (x_np, w_np, b_np, gy_np))

    def fwd():
        return (fwd_jit(x, w, b).block_until_ready(),)

    def bwd():
        return tuple(jax.block_until_ready(bwd_jit(x, w, b, gy)))

    return fwd, bwd, ("y",), ("gx", "gw", "gb")


# ---------------------------------------------------------------------------
# PyTorch
# ---------------------------------------------------------------------------

def torch_impl(case, a, torch):
    """``torch.nn.functional`` forward under ``no_grad``; backward by
    ``torch.autograd.grad`` on a graph built once (``retain_graph=True``),
    so the forward is outside the backward's timing."""
    F = torch.nn.functional
    op, kw = case["op"], case["kw"]

    def leaf(t):
        return t.detach().clone().requires_grad_(True)

    if op in C.CONV_OPS:
        f = getattr(F, op)
        x, w, b, gy = a["x"], a["w"], a["b"], a["gy"]
        xr, wr, br = leaf(x), leaf(w), leaf(b)
        y = f(xr, wr, br, **kw)

        def fwd():
            with torch.no_grad():
                return (f(x, w, b, **kw),)

        return (fwd, lambda: torch.autograd.grad(y, (xr, wr, br), gy, retain_graph=True),
                ("y",), ("gx", "gw", "gb"))
    gy = a["gy"]
    if op == "max_unpool2d":
        p, idx = a["p"], a["idx"]
        pr = leaf(p)
        y = F.max_unpool2d(pr, idx, **kw)

        def fwd():
            with torch.no_grad():
                return (F.max_unpool2d(p, idx, **kw),)
        return (fwd, lambda: torch.autograd.grad(y, (pr,), gy, retain_graph=True),
                ("y",), ("gp",))
    x = a["x"]
    if op == "max_pool2d":
        def f(t):
            return F.max_pool2d(t, return_indices=True, **kw)
        fwd_names = ("y", "idx")
    elif op == "avg_pool2d":
        def f(t):
            return F.avg_pool2d(t, **kw)
        fwd_names = ("y",)
    elif op == "upsample_nearest2d":
        def f(t):
            return F.interpolate(t, scale_factor=kw["scale_factor"], mode="nearest")
        fwd_names = ("y",)
    elif op == "upsample_bilinear2d":
        def f(t):
            return F.interpolate(t, scale_factor=kw["scale_factor"], mode="bilinear",
                                 align_corners=kw["align_corners"])
        fwd_names = ("y",)
    elif op == "pixel_shuffle":
        def f(t):
            return F.pixel_shuffle(t, **kw)
        fwd_names = ("y",)
    elif op in C.MAP_OPS:
        def f(t):
            return getattr(F, op)(t, **kw)
        fwd_names = ("y",)
    else:
        raise ValueError(f"no torch implementation of {op!r}")
    xr = leaf(x)
    out = f(xr)
    y = out[0] if isinstance(out, tuple) else out

    def fwd():
        with torch.no_grad():
            r = f(x)
        return r if isinstance(r, tuple) else (r,)

    return fwd, lambda: torch.autograd.grad(y, (xr,), gy, retain_graph=True), fwd_names, ("gx",)


def torch_train_impl(case, a, torch):
    """The same training step in PyTorch: the case's twin in ``torch.nn`` layers
    (:mod:`deconv.bench.blocks`) holding the job's parameter arrays; ``L1Loss``,
    ``loss.backward()``, ``torch.optim.Adam`` (defaults). The twin is written in
    torch because torch is the peer; its parameters must have the shapes of
    deconv's module, in order."""
    model = TRAIN_BLOCKS[case["op"]].torch(case["geometry"], torch).to(a["t"].dtype)
    params = list(model.parameters())
    given = _load_parameters(params, a, f"torch twin of {case['op']}")
    with torch.no_grad():
        for p, g in zip(params, given):
            p.copy_(g)
    loss_fn = torch.nn.L1Loss()
    opt = torch.optim.Adam(params, lr=1e-3)
    x, t = a["x"], a["t"]
    state = {}

    def fwd():
        y = model(x)
        state["loss"] = loss_fn(y, t)
        return y, state["loss"].detach().reshape(1).double()

    def bwd():
        state["loss"].backward()
        grads = tuple(p.grad for p in params)
        opt.step()
        opt.zero_grad()          # set_to_none: the returned grads stay valid
        return grads

    return fwd, bwd, ("y", "loss"), _param_names(len(params))
