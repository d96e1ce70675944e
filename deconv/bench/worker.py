"""Worker processes of ``deconv bench`` (private), and the case definitions they share.

The parent (:mod:`deconv.bench`) runs this file as a *script*,
``python .../deconv/_bench_worker.py JOB.json``, never with ``-m``: running
a module of the package would import ``deconv/__init__`` and with it Numba,
and the PyTorch worker must import neither (two OpenMP runtimes in one
process compete for the cores and distort both timings). Each worker runs
one implementation ("lib") in one mode:

========  ==========================================================
lib       what it runs
========  ==========================================================
deconv    the package's public functions (imports deconv, numba)
torch     ``torch.nn.functional`` and autograd (imports torch only;
          works without NumPy: arrays travel as raw bytes)
numpy     an im2col + matmul baseline of the conv ops written here,
          and the "limit": ``np.matmul`` on the conv's GEMM shapes
scipy     :mod:`deconv.reference` (scipy.signal / NumPy), loaded from
          its file so that Numba is not imported
========  ==========================================================

========  ==========================================================
mode      what it does
========  ==========================================================
check     computes every case's outputs once and writes them to disk,
          for the parent to compare with the float64 reference
time      first call timed apart, warm-up calls, then timed repeats
memory    bytes allocated by one warm conv call (deconv only)
startup   ``import deconv`` + first calls in a fresh process (deconv)
========  ==========================================================

The job (a JSON file written by the parent) names the inputs, raw binary
files that the parent generated from a fixed seed, so every implementation
computes exactly the same thing. The worker writes its result as JSON to
the path the job names.

Nothing here imports NumPy, torch or deconv at module level: each is
imported only by the worker that needs it.
"""

import json
import os
import statistics
import sys
import time

if __name__ == "__main__":
    # Run as a script, Python puts this file's directory -- the deconv package
    # itself -- first on sys.path, where deconv's modules (data, nn, optim, ...)
    # would shadow top-level modules of the same name in torch's or NumPy's
    # imports. Drop it; `import deconv` comes from PYTHONPATH (set by the parent).
    _here = os.path.dirname(os.path.abspath(__file__))
    if sys.path and os.path.abspath(sys.path[0] or os.curdir) == _here:
        del sys.path[0]

THREAD_ENV_VARS = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                   "MKL_NUM_THREADS")
CONV_OPS = ("conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d")
POOL_OPS = ("max_pool2d", "max_unpool2d", "avg_pool2d", "upsample_nearest2d",
            "upsample_bilinear2d", "pixel_shuffle")
TRAIN_OP = "superres_train"
PASSES = ("fwd", "bwd")


# ---------------------------------------------------------------------------
# case definitions (pure Python: shapes, call arguments, FLOP counts)
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


def superres_params(channels, in_channels=3, scale=2):
    """``(name, shape)`` of the parameters of ``models.superres`` (residual, 'deconv'),
    in the order of its ``parameters()``."""
    C, c = channels
    k = 2 * scale
    return [("body.0.weight", (C, in_channels, 5, 5)), ("body.0.bias", (C,)),
            ("body.2.weight", (c, C, 1, 1)), ("body.2.bias", (c,)),
            ("body.4.weight", (c, c, 3, 3)), ("body.4.bias", (c,)),
            ("body.6.weight", (c, in_channels, k, k)), ("body.6.bias", (in_channels,)),
            ("head.weight", (in_channels, 2 * in_channels, 1, 1)),
            ("head.bias", (in_channels,))]


def train_case(name, N, h, channels, **extra):
    """A training step of the x2 super-resolution model on ``(N, 3, h, h)`` inputs."""
    shapes = dict(x=(N, 3, h, h), t=(N, 3, 2 * h, 2 * h))
    for i, (_, shape) in enumerate(superres_params(channels)):
        shapes[f"p{i}"] = shape
    case = dict(name=name, op=TRAIN_OP, family="train", shapes=shapes, kw={},
                geometry=dict(N=N, h=h, channels=tuple(channels)), dtypes=("float32",),
                large=False, limit_target=False, sweep=None)
    case.update(extra)
    return case


SWEEP_BATCHES = (8, 16, 32, 64)
SWEEP_IMAGES = (16, 32, 48, 64)


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
        conv_case("conv1d", "conv1d", n, 2 * c, 2 * c, (16 if tiny else 256,), 5, padding=2,
                  large=True, limit_target=True),
        conv_case("conv_transpose1d", "conv_transpose1d", n, 2 * c, 2 * c,
                  (16 if tiny else 256,), 5, padding=2, large=True),
    ]
    cases += [pool_case(op, op, n, c, s, s) for op in POOL_OPS]
    cases.append(train_case(TRAIN_OP, n, 8 if tiny else 16, (8, 4) if tiny else (32, 16)))
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
        g = case["geometry"]
        C, c = g["channels"]
        small = train_case(case["name"], min(2, g["N"]), g["h"],
                           (min(C, channel_cap), min(c, channel_cap // 2)))
    else:
        raise ValueError(f"no check version for family {case['family']!r}")
    for key in ("dtypes", "large", "limit_target", "sweep"):
        small[key] = case[key]
    return small


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
# small helpers
# ---------------------------------------------------------------------------

def summarize(times_s):
    """Median / min / max / quartiles, in milliseconds, of a list of seconds."""
    ms = sorted(t * 1e3 for t in times_s)
    q = statistics.quantiles(ms, n=4) if len(ms) >= 2 else [ms[0]] * 3
    return {"median": statistics.median(ms), "min": ms[0], "max": ms[-1],
            "q1": q[0], "q3": q[2], "n": len(ms)}


def time_pair(fwd, bwd, warmup, repeats, budget_s, min_repeats=3):
    """Time a forward and a backward, alternating, after warm-up calls.

    Each repeat runs ``fwd`` then ``bwd`` (as training does) and times them
    separately. Stops after ``repeats`` repeats, or earlier once
    ``min_repeats`` are done and ``budget_s`` seconds have been spent.

    Returns
    -------
    dict
        ``fwd`` and ``bwd`` summaries (see :func:`summarize`), each with
        ``cpu_per_wall``: process CPU time over wall time, about the number
        of busy threads (spin-waiting threads count).
    """
    for _ in range(warmup):
        fwd()
        bwd()
    times = {"fwd": [], "bwd": []}
    cpu = {"fwd": 0.0, "bwd": 0.0}
    start = time.perf_counter()
    while len(times["fwd"]) < repeats:
        for name, fn in (("fwd", fwd), ("bwd", bwd)):
            c0 = time.process_time()
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
            cpu[name] += time.process_time() - c0
        if len(times["fwd"]) >= min_repeats and time.perf_counter() - start > budget_s:
            break
    out = {}
    for name in PASSES:
        out[name] = summarize(times[name])
        out[name]["cpu_per_wall"] = cpu[name] / max(sum(times[name]), 1e-12)
    return out


def _openblas_threads():
    """Threads of every OpenBLAS loaded in this process (library -> count); a
    fallback for when threadpoolctl is not installed."""
    import ctypes
    found = {}
    try:
        with open("/proc/self/maps") as f:
            libs = sorted({line.split()[-1] for line in f
                           if "openblas" in line.lower() and ".so" in line})
    except OSError:
        return found
    for lib in libs:
        try:
            handle = ctypes.CDLL(lib)
        except OSError:
            continue
        for sym in ("openblas_get_num_threads", "scipy_openblas_get_num_threads",
                    "scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_"):
            fn = getattr(handle, sym, None)
            if fn is not None:
                found[os.path.basename(lib)] = int(fn())
                break
    return found


def thread_info():
    """Thread settings as this process sees them: environment, the libraries'
    own counts, and the thread pools threadpoolctl finds (BLAS, OpenMP)."""
    info = {"env": {k: os.environ[k] for k in THREAD_ENV_VARS + ("OPENBLAS_CORETYPE",)
                    if k in os.environ}}
    if "numba" in sys.modules:
        numba = sys.modules["numba"]
        info["numba_threads"] = numba.get_num_threads()
        try:
            info["numba_threading_layer"] = numba.threading_layer()
        except ValueError:
            info["numba_threading_layer"] = "not initialised"
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        info["torch_threads"] = torch.get_num_threads()
        info["torch_interop_threads"] = torch.get_num_interop_threads()
    try:
        import threadpoolctl
    except ImportError:
        info["threadpoolctl"] = None
        info["openblas"] = _openblas_threads()
    else:
        info["threadpoolctl"] = [
            {k: p.get(k) for k in ("user_api", "internal_api", "prefix", "version",
                                   "num_threads", "threading_layer", "architecture")}
            for p in threadpoolctl.threadpool_info()]
    return info


def versions():
    """Versions of the libraries loaded in this process."""
    out = {"python": sys.version.split()[0]}
    for name in ("numpy", "scipy", "numba", "torch", "deconv"):
        mod = sys.modules.get(name)
        if mod is not None:
            out[name] = getattr(mod, "__version__", "?")
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        out["torch_mkldnn"] = bool(torch.backends.mkldnn.is_available())
    return out


def load_reference_module():
    """:mod:`deconv.reference` loaded from its file, without importing the deconv package.

    It imports only NumPy and scipy, and the scipy worker must not pay for
    (or be disturbed by) Numba.
    """
    if "deconv.reference" in sys.modules:
        return sys.modules["deconv.reference"]
    import importlib.util
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference.py")
    spec = importlib.util.spec_from_file_location("_deconv_reference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------------
# implementations: each builder returns (fwd, bwd, fwd_names, bwd_names)
# ---------------------------------------------------------------------------

def api_impl(module, case, a):
    """deconv's public functions, or :mod:`deconv.reference` (same signatures).

    ``a`` maps input names to NumPy arrays. ``fwd()`` and ``bwd()`` return
    tuples of arrays named by ``fwd_names`` and ``bwd_names``.
    """
    op, kw = case["op"], case["kw"]
    if op in CONV_OPS:
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
    if op == "pixel_shuffle":
        return (lambda: (module.pixel_shuffle(x, **kw),),
                lambda: (module.pixel_shuffle_backward(gy, **kw),), ("y",), ("gx",))
    raise ValueError(f"no implementation of {op!r} here")


def deconv_train_impl(case, a):
    """A training step of ``deconv.models.superres``: forward + L1 loss, then
    backward + Adam step, with the job's parameters."""
    import numpy as np
    import deconv
    from deconv import models, nn, optim
    g = case["geometry"]
    dtype = a["x"].dtype
    model = models.superres(scale=2, channels=g["channels"], dtype=dtype, rng=0)
    params = model.parameters()
    spec = superres_params(g["channels"])
    if [p.shape for p in params] != [shape for _, shape in spec]:
        raise RuntimeError(f"deconv.models.superres parameters {[p.shape for p in params]} "
                           f"differ from the benchmark's {[s for _, s in spec]}")
    for i, p in enumerate(params):
        p.data[...] = a[f"p{i}"]
    loss_fn = nn.L1Loss()
    opt = optim.Adam(params, lr=1e-3)
    x, t = a["x"], a["t"]
    state = {}

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

    del deconv
    return fwd, bwd, ("y", "loss"), tuple(f"g{i}" for i in range(len(spec)))


def reference_train_step(case, a):
    """The training step's forward and gradients in float64 from :mod:`deconv.reference`
    (the oracle of the check; no optimizer step).

    Returns
    -------
    dict
        ``y``, ``loss`` and ``g0``... (gradients of the parameters in the
        order of :func:`superres_params`).
    """
    import numpy as np
    R = load_reference_module()
    f64 = {k: np.asarray(v, dtype=np.float64) for k, v in a.items()}
    x, t = f64["x"], f64["t"]
    W = [f64[f"p{i}"] for i in range(10)]
    h0 = R.conv2d(x, W[0], W[1], padding=2)
    a0 = np.maximum(h0, 0)
    h1 = R.conv2d(a0, W[2], W[3])
    a1 = np.maximum(h1, 0)
    h2 = R.conv2d(a1, W[4], W[5], padding=1)
    a2 = np.maximum(h2, 0)
    h3 = R.conv_transpose2d(a2, W[6], W[7], stride=2, padding=1)
    up = R.upsample_bilinear2d(x, scale_factor=2)
    cat = np.concatenate([up, h3], axis=1)
    y = R.conv2d(cat, W[8], W[9])
    d = y - t
    loss = np.abs(d).mean()
    gy = np.sign(d) / d.size
    gcat, g8, g9 = R.conv2d_backward(gy, cat, W[8])
    ga2, g6, g7 = R.conv_transpose2d_backward(gcat[:, up.shape[1]:], a2, W[6], stride=2,
                                              padding=1)
    ga1, g4, g5 = R.conv2d_backward(ga2 * (h2 > 0), a1, W[4], padding=1)
    ga0, g2, g3 = R.conv2d_backward(ga1 * (h1 > 0), a0, W[2])
    _, g0, g1 = R.conv2d_backward(ga0 * (h0 > 0), x, W[0], padding=2)
    out = {"y": y, "loss": np.array([loss])}
    out.update({f"g{i}": g for i, g in enumerate((g0, g1, g2, g3, g4, g5, g6, g7, g8, g9))})
    return out


def reference_outputs(case, a):
    """Every output of a case (forward and backward) from the float64 reference."""
    import numpy as np
    if case["op"] == TRAIN_OP:
        return reference_train_step(case, a)
    f64 = {k: (v if v.dtype.kind == "i" else np.asarray(v, dtype=np.float64))
           for k, v in a.items()}
    fwd, bwd, fn, bn = api_impl(load_reference_module(), case, f64)
    return dict(zip(fn + bn, fwd() + bwd()))


# --- NumPy im2col + matmul baseline ----------------------------------------

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
    N, C, Ho, Wo = gy.shape
    return gy.reshape(N, groups, C // groups, Ho, Wo).transpose(1, 2, 0, 3, 4).reshape(
        groups, C // groups, N * Ho * Wo)


def np_conv_forward(x, w, stride, padding, groups):
    """Conv forward, NCHW, by im2col + batched matmul (one GEMM per group)."""
    import numpy as np
    N, C, H, W = x.shape
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
    for name, gemms in limit_gemms(case).items():
        ops = [(rng.standard_normal((b, m, k)).astype(dtype),
                rng.standard_normal((b, k, n)).astype(dtype),
                np.empty((b, m, n), dtype=dtype)) for b, m, k, n in gemms]

        def call(ops=ops):
            for left, right, out in ops:
                np.matmul(left, right, out=out)
        calls[name] = call
    return calls["fwd"], calls["bwd"]


# --- PyTorch -------------------------------------------------------------

def torch_impl(case, a, torch):
    """``torch.nn.functional`` forward under ``no_grad``; backward by
    ``torch.autograd.grad`` on a graph built once (``retain_graph=True``),
    so the forward is outside the backward's timing."""
    F = torch.nn.functional
    op, kw = case["op"], case["kw"]

    def leaf(t):
        return t.detach().clone().requires_grad_(True)

    if op in CONV_OPS:
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
    """The same training step in PyTorch: ``torch.nn`` layers holding the job's
    parameters, ``L1Loss``, ``loss.backward()``, ``torch.optim.Adam`` (defaults)."""
    nn, F = torch.nn, torch.nn.functional
    C, c = case["geometry"]["channels"]

    class SuperRes(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(3, C, 5, padding=2), nn.ReLU(), nn.Conv2d(C, c, 1), nn.ReLU(),
                nn.Conv2d(c, c, 3, padding=1), nn.ReLU(),
                nn.ConvTranspose2d(c, 3, 4, stride=2, padding=1))
            self.head = nn.Conv2d(6, 3, 1)

        def forward(self, x):
            up = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            return self.head(torch.cat([up, self.body(x)], dim=1))

    model = SuperRes().to(a["x"].dtype)
    names = [n for n, _ in superres_params((C, c))]
    params = dict(model.named_parameters())
    if list(params) != names:
        raise RuntimeError(f"torch model parameters {list(params)} differ from {names}")
    with torch.no_grad():
        for i, n in enumerate(names):
            params[n].copy_(a[f"p{i}"])
    ordered = [params[n] for n in names]
    loss_fn = nn.L1Loss()
    opt = torch.optim.Adam(ordered, lr=1e-3)
    x, t = a["x"], a["t"]
    state = {}

    def fwd():
        y = model(x)
        state["loss"] = loss_fn(y, t)
        return y, state["loss"].detach().reshape(1).double()

    def bwd():
        state["loss"].backward()
        grads = tuple(p.grad for p in ordered)
        opt.step()
        opt.zero_grad()          # set_to_none: the returned grads stay valid
        return grads

    return fwd, bwd, ("y", "loss"), tuple(f"g{i}" for i in range(len(names)))


# ---------------------------------------------------------------------------
# array I/O (raw bytes, so that the torch worker needs no NumPy)
# ---------------------------------------------------------------------------

def _load_numpy(spec):
    import numpy as np
    return np.fromfile(spec["file"], dtype=spec["dtype"]).reshape(spec["shape"])


def _load_torch(spec, torch):
    dtypes = {"float32": torch.float32, "float64": torch.float64, "int64": torch.int64}
    dtype = dtypes[spec["dtype"]]
    with open(spec["file"], "rb") as f:
        buf = bytearray(f.read())
    return torch.frombuffer(buf, dtype=dtype).reshape(spec["shape"]).clone()


def _save(value, path, lib):
    """Write one output as raw bytes; return its dtype and shape."""
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


def _nbytes(values):
    total = 0
    for v in values:
        total += v.numel() * v.element_size() if hasattr(v, "element_size") else v.nbytes
    return total


# ---------------------------------------------------------------------------
# the worker
# ---------------------------------------------------------------------------

def _builder(lib, job):
    """(loader, implementation builder) of one lib; imports only what that lib needs."""
    if lib == "torch":
        import torch
        torch.set_num_threads(int(job["threads"]))

        def build(case, a):
            if case["op"] == TRAIN_OP:
                return torch_train_impl(case, a, torch)
            return torch_impl(case, a, torch)
        return (lambda spec: _load_torch(spec, torch)), build
    if lib == "deconv":
        import deconv

        def build(case, a):
            if case["op"] == TRAIN_OP:
                return deconv_train_impl(case, a)
            return api_impl(deconv, case, a)
        return _load_numpy, build
    if lib == "numpy":
        def build(case, a):
            if case["family"] != "conv":
                raise ValueError(f"the NumPy baseline has no {case['op']!r}")
            return numpy_conv_impl(case, a)
        return _load_numpy, build
    if lib == "scipy":
        reference = load_reference_module()

        def build(case, a):
            return api_impl(reference, case, a)
        return _load_numpy, build
    raise ValueError(f"unknown lib {lib!r}")


def _run_case(job, entry, load, build):
    """One case of a check / time / memory job; returns its result dict."""
    case = entry["case"]
    arrays = {k: load(spec) for k, spec in entry["arrays"].items()}
    fwd, bwd, fwd_names, bwd_names = build(case, arrays)
    res = {}
    t = time.perf_counter()
    out_f = fwd()
    res["first_fwd_s"] = time.perf_counter() - t
    t = time.perf_counter()
    out_b = bwd()
    res["first_bwd_s"] = time.perf_counter() - t
    mode = job["mode"]
    if mode == "check":
        outs = dict(zip(fwd_names + bwd_names, tuple(out_f) + tuple(out_b)))
        if case["name"] in job.get("perturb", ()):
            # test hook: a deliberately wrong implementation must fail the check
            outs["y"] = outs["y"] * 1.01
        res["outputs"] = {k: _save(v, os.path.join(job["out_dir"], f"{entry['key']}__{k}.bin"),
                                   job["lib"]) for k, v in outs.items()}
    elif mode == "time":
        res.update(time_pair(fwd, bwd, job["warmup"], job["repeats"], job["budget_s"],
                             job.get("min_repeats", 3)))
        if entry.get("limit"):
            import numpy as np
            lf, lb = limit_impl(case, np.dtype(entry["dtype"]))
            lf()
            lb()
            res["limit"] = time_pair(lf, lb, job["warmup"], job["repeats"], job["budget_s"],
                                     job.get("min_repeats", 3))
    elif mode == "memory":
        del out_f, out_b
        fwd()
        bwd()                       # warm: compiled, thread pool up
        res["memory"] = {"fwd": measure_memory(fwd), "bwd": measure_memory(bwd)}
    return res


def _read_status():
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) * 1024
    return out


def measure_memory(fn):
    """Bytes allocated by one call of ``fn`` beyond the arrays it returns.

    Three views, because none sees everything:

    * ``tracemalloc`` peak: NumPy reports its array buffers to tracemalloc,
      so this counts every NumPy allocation made during the call, freed or
      not;
    * Numba's NRT allocation count (``NUMBA_NRT_STATS=1``): arrays created
      inside compiled code are invisible to tracemalloc; a nonzero count
      says they exist (NRT counts allocations, not bytes);
    * peak RSS growth: ``/proc/self/clear_refs`` resets the high-water mark,
      which then includes NRT arrays, as touched pages. The parent runs this
      worker with ``MALLOC_MMAP_THRESHOLD_`` low so that large blocks are
      fresh mappings returned on free, not recycled heap pages that would
      hide them.

    Returns
    -------
    dict
        ``output_bytes``, ``tracemalloc_peak``, ``rss_peak_growth`` (None
        where unavailable), ``nrt_allocs``, ``extra_bytes`` = the larger
        peak minus ``output_bytes`` (at least 0), ``extra_over_output``.
    """
    import tracemalloc
    nrt = None
    try:
        from numba.core.runtime import rtsys
        nrt = rtsys.get_allocation_stats().alloc
    except Exception:          # stats disabled (NUMBA_NRT_STATS unset) or no numba
        pass
    rss_ok = True
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        rss0 = _read_status()["VmRSS"]
    except OSError:
        rss_ok = False
    tracemalloc.start()
    out = fn()
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_growth = _read_status()["VmHWM"] - rss0 if rss_ok else None
    nrt_allocs = None
    if nrt is not None:
        from numba.core.runtime import rtsys
        nrt_allocs = rtsys.get_allocation_stats().alloc - nrt
    out_bytes = _nbytes(out)
    peak = max(traced_peak, rss_growth or 0)
    extra = max(0, peak - out_bytes)
    return {"output_bytes": out_bytes, "tracemalloc_peak": traced_peak,
            "rss_peak_growth": rss_growth, "nrt_allocs": nrt_allocs, "extra_bytes": extra,
            "extra_over_output": extra / out_bytes if out_bytes else 0.0}


def run_job(job):
    """Run one job (a dict, see the module docstring) and return its result dict."""
    lib = job["lib"]
    t0 = time.perf_counter()
    if job["mode"] == "startup":
        return startup_worker(job)
    try:
        load, build = _builder(lib, job)
    except ImportError as e:
        if lib != "torch":
            raise
        # PyTorch is optional: say so, and the parent drops its column
        return {"lib": lib, "mode": job["mode"], "unavailable": f"{type(e).__name__}: {e}"}
    result = {"lib": lib, "mode": job["mode"], "import_s": time.perf_counter() - t0,
              "cases": {}}
    for entry in job["entries"]:
        try:
            result["cases"][entry["key"]] = _run_case(job, entry, load, build)
        except Exception as e:     # report per case; the parent decides what fails
            import traceback
            result["cases"][entry["key"]] = {
                "error": f"{type(e).__name__}: {e}",
                "traceback": traceback.format_exc(limit=6)}
    forbidden = {"torch": ("deconv", "numba"), "deconv": ("torch",),
                 "numpy": ("deconv", "numba", "torch"), "scipy": ("deconv", "numba", "torch")}
    leaked = [m for m in forbidden[lib] if m in sys.modules]
    if leaked:
        raise RuntimeError(f"the {lib} worker imported {leaked}")
    result["threads"] = thread_info()
    result["versions"] = versions()
    if lib == "deconv":
        import deconv
        result["deconv_file"] = deconv.__file__
    return result


# ---------------------------------------------------------------------------
# start-up worker (deconv only)
# ---------------------------------------------------------------------------

def api_calls(deconv, np, dtype):
    """``(name, thunk)`` for one forward+backward of each public function present.

    Arguments are bound by parameter name from the signature; a function
    whose signature cannot be satisfied is reported as an error, not
    skipped silently.
    """
    import inspect
    rng = np.random.default_rng(0)
    C = 4

    def rand(*shape):
        return rng.standard_normal(shape).astype(dtype)

    def x_for(name):
        return rand(2, C, 8) if "1d" in name else rand(2, C, 8, 8)

    def bind(fn, values, fixed):
        kw = {}
        for p in inspect.signature(fn).parameters.values():
            if p.name in fixed:
                kw[p.name] = fixed[p.name]
            elif p.name in values:
                kw[p.name] = values[p.name]
            elif p.default is inspect.Parameter.empty:
                raise TypeError(f"{fn.__name__}: no value for required parameter {p.name!r}")
        return kw

    fixed_by_family = {
        "conv": {"padding": 1},
        "max_pool": {"kernel_size": 2},
        "avg_pool": {"kernel_size": 2},
        "max_unpool": {"kernel_size": 2},
        "upsample": {"scale_factor": 2},
        "pixel_shuffle": {"upscale_factor": 2},
        "pixel_unshuffle": {"downscale_factor": 2},
    }
    # 2-D first: the 1-D functions run the 2-D kernels, so they then show
    # only their own (wrapper) cost
    forward_names = [
        "conv2d", "conv1d", "conv_transpose2d", "conv_transpose1d",
        "max_pool2d", "max_pool1d", "avg_pool2d", "avg_pool1d",
        "max_unpool2d", "max_unpool1d",
        "upsample_nearest2d", "upsample_nearest1d", "upsample_bilinear2d",
        "upsample_linear1d", "pixel_shuffle", "pixel_unshuffle",
    ]
    calls = []
    for name in forward_names:
        if not hasattr(deconv, name):
            continue
        family = next(f for f in fixed_by_family if name.startswith(f))
        fixed = fixed_by_family[family]

        def thunk(name=name, fixed=fixed):
            fn = getattr(deconv, name)
            x = x_for(name)
            values = {"x": x, "input": x, "bias": rand(C),
                      "weight": rand(C, C, 3) if "1d" in name else rand(C, C, 3, 3)}
            if name.startswith("max_unpool"):
                pooled, idx = getattr(deconv, name.replace("unpool", "pool"))(x, kernel_size=2)
                values.update(x=pooled, input=pooled, indices=idx)
            out = fn(**bind(fn, values, fixed))
            y, extra = (out[0], out[1]) if isinstance(out, tuple) else (out, None)
            bname = name + "_backward"
            if not hasattr(deconv, bname):
                return "forward only"
            bfn = getattr(deconv, bname)
            values.update(grad_output=rand(*y.shape), input_shape=values["x"].shape)
            if extra is not None:
                values["indices"] = extra
            bfn(**bind(bfn, values, fixed))
            return "ok"

        calls.append((name, thunk))
    return calls


def startup_worker(job):
    """``import deconv``, then the first conv2d forward+backward ('conv2d') or one
    forward+backward of every public op in float32 and float64 ('api')."""
    t0 = time.perf_counter()
    import numpy as np
    import deconv
    res = {"import_s": time.perf_counter() - t0, "deconv_file": deconv.__file__}
    if job["what"] == "conv2d":
        rng = np.random.default_rng(0)
        x = rng.standard_normal((2, 4, 8, 8)).astype(np.float32)
        w = rng.standard_normal((4, 4, 3, 3)).astype(np.float32)
        b = rng.standard_normal(4).astype(np.float32)
        t = time.perf_counter()
        y = deconv.conv2d(x, w, b, padding=1)
        res["first_fwd_s"] = time.perf_counter() - t
        t = time.perf_counter()
        deconv.conv2d_backward(y, x, w, padding=1)
        res["first_bwd_s"] = time.perf_counter() - t
    else:
        res["calls"], res["errors"] = {}, {}
        for dtype in ("float32", "float64"):
            for name, thunk in api_calls(deconv, np, np.dtype(dtype)):
                t = time.perf_counter()
                try:
                    status = thunk()
                except Exception as e:   # report, keep going
                    res["errors"][f"{name}/{dtype}"] = f"{type(e).__name__}: {e}"
                    continue
                res["calls"][f"{name}/{dtype}"] = {"s": time.perf_counter() - t,
                                                   "status": status}
    res["total_in_process_s"] = time.perf_counter() - t0
    return res


def main(argv=None):
    """``_bench_worker.py JOB.json``: run the job, write its result where it says."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: _bench_worker.py JOB.json (started by `deconv bench`)", file=sys.stderr)
        return 2
    with open(argv[0]) as f:
        job = json.load(f)
    result = run_job(job)
    with open(job["result_path"], "w") as f:
        json.dump(result, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
