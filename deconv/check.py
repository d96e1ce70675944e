"""``deconv check``: every op against the reference, on random configurations.

For each op and each random configuration it runs four checks:

forward     the kernel's output against :mod:`deconv.reference` (float32 and float64)
backward    every input gradient against the reference's (float32 and float64)
adjoint     ``<f(x), r> == <x, df^T r>`` for each argument ``x`` (float64). Every
            op here is linear, or (max pooling, conv in x and in w) positively
            homogeneous of degree one in each argument, so the identity is exact.
gradcheck   the backward against float64 central differences along a random
            direction: ``(L(x + eps v) - L(x - eps v)) / 2eps == <dL/dx, v>``
            with ``L = <f(x), r>``.

Errors are reported relative to the size of the result, ``max|a - b| /
max(1, max|b|)``; max-pool indices must match exactly.
"""

import sys
import time
from dataclasses import dataclass, field

import numpy as np

import deconv
from deconv import reference

# max|a - b| / max(1, max|b|) allowed, by check and dtype
TOLERANCE = {
    ("forward", "float32"): 1e-5, ("forward", "float64"): 1e-12,
    ("backward", "float32"): 1e-5, ("backward", "float64"): 1e-12,
    ("adjoint", "float64"): 1e-12,
    ("gradcheck", "float64"): 1e-7,
}


@dataclass
class Case:
    """One random configuration of one op.

    ``inputs`` maps argument names to arrays; ``differentiable`` names those
    that get a gradient; ``forward(m, inputs)`` and ``backward(m, grad, inputs)``
    run the op with ``m`` = :mod:`deconv` or :mod:`deconv.reference`, the
    latter returning a dict of gradients.
    """
    inputs: dict
    differentiable: tuple
    forward: object
    backward: object
    description: str
    indices: object = None          # for max pooling: returns the indices
    extra: dict = field(default_factory=dict)


def _distinct(rng, shape, dtype):
    """Values at least 1e-2 apart: no near-ties for max pooling, in any dtype."""
    n = int(np.prod(shape))
    return ((rng.permutation(n) - n / 2) * 1e-2).reshape(shape).astype(dtype)


def _uniform(rng, shape, dtype):
    return rng.uniform(-1, 1, shape).astype(dtype)


def _conv_case(rng, dtype, nd, transposed):
    groups = int(rng.integers(1, 3))
    c_in = groups * int(rng.integers(1, 4))
    c_out = groups * int(rng.integers(1, 4))
    kernel = tuple(int(rng.integers(1, 5)) for _ in range(nd))
    stride = tuple(int(rng.integers(1, 4)) for _ in range(nd))
    dilation = tuple(int(rng.integers(1, 3)) for _ in range(nd))
    padding = tuple(int(rng.integers(0, 3)) for _ in range(nd))
    n = int(rng.integers(1, 4))
    if transposed:
        output_padding = tuple(int(rng.integers(0, max(s, d))) for s, d in zip(stride, dilation))
        size = tuple(max(1, -(-(2 * p - d * (k - 1) - op) // s) + 1) + int(rng.integers(0, 4))
                     for k, s, d, p, op in zip(kernel, stride, dilation, padding, output_padding))
        weight_shape = (c_in, c_out // groups) + kernel
        kw = dict(stride=stride, padding=padding, output_padding=output_padding, groups=groups,
                  dilation=dilation)
        name = f"conv_transpose{nd}d"
    else:
        size = tuple(max(1, d * (k - 1) + 1 - 2 * p) + int(rng.integers(0, 6))
                     for k, d, p in zip(kernel, dilation, padding))
        weight_shape = (c_out, c_in // groups) + kernel
        kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
        name = f"conv{nd}d"
    inputs = dict(x=_uniform(rng, (n, c_in) + size, dtype), weight=_uniform(rng, weight_shape, dtype),
                  bias=_uniform(rng, (c_out,), dtype))

    def forward(m, a):
        return getattr(m, name)(a["x"], a["weight"], a.get("bias"), **kw)

    def backward(m, grad, a):
        gx, gw, gb = getattr(m, name + "_backward")(grad, a["x"], a["weight"], **kw)
        return dict(x=gx, weight=gw, bias=gb)

    return Case(inputs, ("x", "weight", "bias"), forward, backward,
                f"x{inputs['x'].shape} w{weight_shape} {kw}")


def _pool_geometry(rng, nd, dilated):
    kernel = tuple(int(rng.integers(1, 4)) for _ in range(nd))
    stride = tuple(int(rng.integers(1, 4)) for _ in range(nd))
    padding = tuple(int(rng.integers(0, k // 2 + 1)) for k in kernel)
    dilation = tuple(int(rng.integers(1, 3)) if dilated else 1 for _ in range(nd))
    # long enough that every window sees the input
    size = tuple(d * (k - 1) + 1 + int(rng.integers(0, 6)) for k, d in zip(kernel, dilation))
    return kernel, stride, padding, dilation, size


def _max_pool_case(rng, dtype, nd):
    kernel, stride, padding, dilation, size = _pool_geometry(rng, nd, True)
    kw = dict(kernel_size=kernel, stride=stride, padding=padding, dilation=dilation,
              ceil_mode=bool(rng.integers(0, 2)))
    name = f"max_pool{nd}d"
    x = _distinct(rng, (int(rng.integers(1, 3)), int(rng.integers(1, 4))) + size, dtype)

    def forward(m, a):
        return getattr(m, name)(a["x"], **kw)[0]

    def indices(m, a):
        return getattr(m, name)(a["x"], **kw)[1]

    def backward(m, grad, a):
        idx = getattr(m, name)(a["x"], **kw)[1]
        return dict(x=getattr(m, name + "_backward")(grad, idx, a["x"].shape))

    return Case(dict(x=x), ("x",), forward, backward, f"x{x.shape} {kw}", indices=indices)


def _avg_pool_case(rng, dtype, nd):
    kernel, stride, padding, _, size = _pool_geometry(rng, nd, False)
    kw = dict(kernel_size=kernel, stride=stride, padding=padding,
              ceil_mode=bool(rng.integers(0, 2)), count_include_pad=bool(rng.integers(0, 2)),
              divisor_override=[None, 3][int(rng.integers(0, 2))])
    name = f"avg_pool{nd}d"
    x = _uniform(rng, (int(rng.integers(1, 3)), int(rng.integers(1, 4))) + size, dtype)

    def forward(m, a):
        return getattr(m, name)(a["x"], **kw)

    def backward(m, grad, a):
        return dict(x=getattr(m, name + "_backward")(grad, a["x"].shape, **kw))

    return Case(dict(x=x), ("x",), forward, backward, f"x{x.shape} {kw}")


def _max_unpool_case(rng, dtype, nd):
    kernel, stride, padding, _, size = _pool_geometry(rng, nd, False)
    n, c = int(rng.integers(1, 3)), int(rng.integers(1, 4))
    pooled, idx = getattr(reference, f"max_pool{nd}d")(
        _distinct(rng, (n, c) + size, np.float64), kernel, stride, padding)
    kw = dict(kernel_size=kernel, stride=stride, padding=padding, output_size=size)
    name = f"max_unpool{nd}d"
    x = _uniform(rng, pooled.shape, dtype)

    def forward(m, a):
        return getattr(m, name)(a["x"], idx, **kw)

    def backward(m, grad, a):
        return dict(x=getattr(m, name + "_backward")(grad, idx))

    return Case(dict(x=x), ("x",), forward, backward, f"x{x.shape} {kw}")


def _upsample_case(rng, dtype, nd, mode):
    n, c = int(rng.integers(1, 3)), int(rng.integers(1, 4))
    size_in = tuple(int(rng.integers(1, 7)) for _ in range(nd))
    if rng.integers(0, 2):
        scale = tuple(float(rng.choice([0.6, 1.0, 1.7, 2.0, 3.0, 2.5])) for _ in range(nd))
        scale = tuple(s if int(np.floor(L * s)) >= 1 else 2.0 for L, s in zip(size_in, scale))
        call = dict(scale_factor=scale)
    else:
        call = dict(size=tuple(int(rng.integers(1, 12)) for _ in range(nd)))
    x = _uniform(rng, (n, c) + size_in, dtype)
    if mode == "nearest":
        name = f"upsample_nearest{nd}d"
        bkw = dict(scale_factor=call.get("scale_factor"))
        fkw = dict(call)
    else:
        name = "upsample_bilinear2d" if nd == 2 else "upsample_trilinear3d"
        align = bool(rng.integers(0, 2))
        fkw = dict(call, align_corners=align)
        bkw = dict(align_corners=align, scale_factor=call.get("scale_factor"))

    def forward(m, a):
        return getattr(m, name)(a["x"], **fkw)

    def backward(m, grad, a):
        return dict(x=getattr(m, name + "_backward")(grad, a["x"].shape, **bkw))

    return Case(dict(x=x), ("x",), forward, backward, f"x{x.shape} {fkw}")


def _shuffle_case(rng, dtype, unshuffle):
    r = int(rng.integers(1, 4))
    n, c = int(rng.integers(1, 3)), int(rng.integers(1, 4))
    h, w = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    name = "pixel_unshuffle" if unshuffle else "pixel_shuffle"
    shape = (n, c, h * r, w * r) if unshuffle else (n, c * r * r, h, w)
    x = _uniform(rng, shape, dtype)

    def forward(m, a):
        return getattr(m, name)(a["x"], r)

    def backward(m, grad, a):
        return dict(x=getattr(m, name + "_backward")(grad, r))

    return Case(dict(x=x), ("x",), forward, backward, f"x{shape} r={r}")


def _adaptive_case(rng, dtype, nd, kind):
    """Output sizes below, equal to and above the input's (overlapping windows included)."""
    n, c = int(rng.integers(1, 3)), int(rng.integers(1, 4))
    size = tuple(int(rng.integers(1, 8)) for _ in range(nd))
    output_size = tuple(int(rng.integers(1, 9)) for _ in range(nd))
    name = f"adaptive_{kind}_pool{nd}d"
    x = (_distinct if kind == "max" else _uniform)(rng, (n, c) + size, dtype)

    def forward(m, a):
        out = getattr(m, name)(a["x"], output_size)
        return out[0] if kind == "max" else out

    def indices(m, a):
        return getattr(m, name)(a["x"], output_size)[1]

    def backward(m, grad, a):
        if kind == "max":
            idx = getattr(m, name)(a["x"], output_size)[1]
            return dict(x=getattr(m, name + "_backward")(grad, idx, a["x"].shape))
        return dict(x=getattr(m, name + "_backward")(grad, a["x"].shape))

    return Case(dict(x=x), ("x",), forward, backward, f"x{x.shape} output_size={output_size}",
                indices=indices if kind == "max" else None)


OPS = {
    "conv1d": lambda rng, dt: _conv_case(rng, dt, 1, False),
    "conv2d": lambda rng, dt: _conv_case(rng, dt, 2, False),
    "conv_transpose1d": lambda rng, dt: _conv_case(rng, dt, 1, True),
    "conv_transpose2d": lambda rng, dt: _conv_case(rng, dt, 2, True),
    "max_pool1d": lambda rng, dt: _max_pool_case(rng, dt, 1),
    "max_pool2d": lambda rng, dt: _max_pool_case(rng, dt, 2),
    "avg_pool1d": lambda rng, dt: _avg_pool_case(rng, dt, 1),
    "avg_pool2d": lambda rng, dt: _avg_pool_case(rng, dt, 2),
    "max_unpool1d": lambda rng, dt: _max_unpool_case(rng, dt, 1),
    "max_unpool2d": lambda rng, dt: _max_unpool_case(rng, dt, 2),
    "upsample_nearest1d": lambda rng, dt: _upsample_case(rng, dt, 1, "nearest"),
    "upsample_nearest2d": lambda rng, dt: _upsample_case(rng, dt, 2, "nearest"),
    "upsample_bilinear2d": lambda rng, dt: _upsample_case(rng, dt, 2, "bilinear"),
    "pixel_shuffle": lambda rng, dt: _shuffle_case(rng, dt, False),
    "pixel_unshuffle": lambda rng, dt: _shuffle_case(rng, dt, True),
}
# issue 13: adaptive pooling
OPS.update({f"adaptive_{kind}_pool{nd}d": (lambda rng, dt, nd=nd, kind=kind:
                                           _adaptive_case(rng, dt, nd, kind))
            for kind in ("avg", "max") for nd in (1, 2, 3)})


def _pad_case(rng, dtype, nd):
    """A pad in a random mode; constant mode fills with 0 (pad is then linear: the adjoint
    check holds) and may crop; the other modes stay within what each allows."""
    mode = str(rng.choice(["constant", "reflect", "replicate", "circular"]))
    size = tuple(int(rng.integers(1, 6)) for _ in range(nd))
    pad = []
    for L in size[::-1]:
        if mode == "reflect":
            before = int(rng.integers(-(L - 1), L))
            after = int(rng.integers(max(1 - L - before, -(L - 1)), L))
        elif mode == "circular":
            before, after = int(rng.integers(0, L + 1)), int(rng.integers(0, L + 1))
        else:
            before = int(rng.integers(-(L - 1), 4))
            after = int(rng.integers(max(1 - L - before, -(L - max(-before, 0))), 4))
        pad += [before, after]
    x = _uniform(rng, (int(rng.integers(1, 3)), int(rng.integers(1, 4))) + size, dtype)

    def forward(m, a):
        return m.pad(a["x"], tuple(pad), mode=mode)

    def backward(m, grad, a):
        return dict(x=m.pad_backward(grad, a["x"].shape, tuple(pad), mode=mode))

    return Case(dict(x=x), ("x",), forward, backward, f"x{x.shape} pad={tuple(pad)} {mode}")


OPS["pad"] = lambda rng, dt: _pad_case(rng, dt, int(rng.integers(1, 4)))   # issue 13: padding


def _rel_error(actual, expected):
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if actual.shape != expected.shape:
        return np.inf
    if actual.size == 0:
        return 0.0
    both_nan = np.isnan(actual) & np.isnan(expected)
    diff = np.where(both_nan, 0.0, np.abs(actual - expected))
    return float(np.max(diff) / max(1.0, float(np.max(np.abs(np.where(both_nan, 0, expected))))))


def _check_forward_backward(case, rng):
    """Largest forward and backward errors against the reference (and index mismatches)."""
    out = case.forward(deconv, case.inputs)
    ref = case.forward(reference, case.inputs)
    forward_err = _rel_error(out, ref)
    if out.dtype != case.inputs["x"].dtype:
        forward_err = np.inf
    if case.indices is not None and not np.array_equal(case.indices(deconv, case.inputs),
                                                       case.indices(reference, case.inputs)):
        forward_err = np.inf
    grad = rng.uniform(-1, 1, out.shape).astype(out.dtype)
    got = case.backward(deconv, grad, case.inputs)
    want = case.backward(reference, grad, case.inputs)
    backward_err = max((_rel_error(got[k], want[k]) for k in case.differentiable), default=0.0)
    return forward_err, backward_err


def _check_adjoint(case, rng):
    inputs = {k: v for k, v in case.inputs.items() if k != "bias"}
    out = case.forward(deconv, inputs)
    r = rng.standard_normal(out.shape)
    grads = case.backward(deconv, r, inputs)
    lhs = float(np.vdot(out, r))
    worst = 0.0
    for k in case.differentiable:
        if k in inputs:
            rhs = float(np.vdot(inputs[k], grads[k]))
            worst = max(worst, abs(lhs - rhs) / max(1.0, abs(lhs)))
    return worst


def _check_gradcheck(case, rng, eps=1e-6):
    inputs = {k: v.copy() for k, v in case.inputs.items()}
    out = case.forward(deconv, inputs)
    r = rng.standard_normal(out.shape)
    grads = case.backward(deconv, r, inputs)
    worst = 0.0
    for k in case.differentiable:
        v = rng.standard_normal(inputs[k].shape)
        base = inputs[k]
        values = []
        for sign in (1.0, -1.0):
            inputs[k] = base + sign * eps * v
            values.append(float(np.vdot(case.forward(deconv, inputs), r)))
        inputs[k] = base
        numeric = (values[0] - values[1]) / (2 * eps)
        analytic = float(np.vdot(grads[k], v))
        worst = max(worst, abs(numeric - analytic) / max(1.0, abs(analytic)))
    return worst


#: Long float32 reductions (issue 12): a conv2d whose every output sums C_in x 3 x 3
#: = 9,216 products; its weight gradient sums N x 12 x 12 pixels' products.
#: Each pass against :mod:`deconv.reference` on the same values in float64,
#: max|error| / max|reference|. A single running float32 sum gave 3.6e-6 on the
#: forward; PyTorch's oneDNN gives 2.8-4.1e-7 (forward) and 3.1-3.9e-7 (input
#: gradient) on such a layer (measured 2026-12-04, 4 seeds).
LONG_SUM_CHANNELS = 1024
LONG_SUM_TOLERANCE = 5e-7


def _check_long_sums(rng):
    """The errors of the three passes of the long float32 conv (see :data:`LONG_SUM_TOLERANCE`)."""
    x = rng.standard_normal((1, LONG_SUM_CHANNELS, 12, 12)).astype(np.float32)
    w = rng.standard_normal((16, LONG_SUM_CHANNELS, 3, 3)).astype(np.float32)
    gy = rng.standard_normal((1, 16, 12, 12)).astype(np.float32)
    x64, w64, gy64 = (a.astype(np.float64) for a in (x, w, gy))

    def rel(a, b):
        return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))

    y = deconv.conv2d(x, w, padding=1)
    gx, gw = deconv.conv2d_backward(gy, x, w, padding=1)[:2]
    gx64, gw64 = reference.conv2d_backward(gy64, x64, w64, padding=1)[:2]
    return {"forward": rel(y, reference.conv2d(x64, w64, padding=1)),
            "input grad": rel(gx, gx64), "weight grad": rel(gw, gw64)}


def run(configs=3, seed=0, ops=None, out=sys.stdout):
    """Run every check; print the table; return True when all pass."""
    rng = np.random.default_rng(seed)
    rows = []
    for name in ops or OPS:
        for dtype in (np.float32, np.float64):
            dt = np.dtype(dtype).name
            errors = {"forward": 0.0, "backward": 0.0}
            if dt == "float64":
                errors.update(adjoint=0.0, gradcheck=0.0)
            start = time.perf_counter()
            for _ in range(configs):
                case = OPS[name](rng, dtype)
                try:
                    f, b = _check_forward_backward(case, rng)
                    errors["forward"] = max(errors["forward"], f)
                    errors["backward"] = max(errors["backward"], b)
                    if dt == "float64":
                        errors["adjoint"] = max(errors["adjoint"], _check_adjoint(case, rng))
                        errors["gradcheck"] = max(errors["gradcheck"], _check_gradcheck(case, rng))
                except Exception as exc:  # a crash is a failure, reported with its configuration
                    print(f"{name} {dt} raised {type(exc).__name__}: {exc}\n  on {case.description}",
                          file=out)
                    errors = {k: np.inf for k in errors}
                    break
            elapsed = time.perf_counter() - start
            for check, err in errors.items():
                tol = TOLERANCE[(check, dt)]
                rows.append((name, dt, check, err, tol, err <= tol, elapsed))
    if ops is None or "conv2d" in ops:
        start = time.perf_counter()
        long_sums = _check_long_sums(rng)
        elapsed = time.perf_counter() - start
        for check, err in long_sums.items():
            rows.append((f"conv2d C_in={LONG_SUM_CHANNELS}", "float32", check, err,
                         LONG_SUM_TOLERANCE, err <= LONG_SUM_TOLERANCE, elapsed))
    header = f"{'op':<22}{'dtype':<9}{'check':<11}{'max error':>11}{'tolerance':>11}  {'result':<7}{'time (ms)':>10}"
    print(header, file=out)
    print("-" * len(header), file=out)
    for name, dt, check, err, tol, ok, elapsed in rows:
        print(f"{name:<22}{dt:<9}{check:<11}{err:>11.2e}{tol:>11.0e}  {'pass' if ok else 'FAIL':<7}"
              f"{elapsed * 1e3:>10.1f}", file=out)
    failed = [r for r in rows if not r[5]]
    print(f"\n{len(rows) - len(failed)} passed, {len(failed)} failed "
          f"({configs} random configurations per op and dtype, seed {seed})", file=out)
    return not failed


# --- issue 13: fold / unfold ---

def _block_case(rng, dtype, name):
    """unfold of an image, or fold of columns, with random block options."""
    kernel = tuple(int(rng.integers(1, 4)) for _ in range(2))
    dilation = tuple(int(rng.integers(1, 3)) for _ in range(2))
    padding = tuple(int(rng.integers(0, 3)) for _ in range(2))
    stride = tuple(int(rng.integers(1, 4)) for _ in range(2))
    # at least one block per axis
    size = tuple(max(1, d * (k - 1) + 1 - 2 * p) + int(rng.integers(0, 5))
                 for k, d, p in zip(kernel, dilation, padding))
    n, c = int(rng.integers(1, 3)), int(rng.integers(1, 4))
    kw = dict(kernel_size=kernel, dilation=dilation, padding=padding, stride=stride)
    image = (n, c) + size
    if name == "unfold":
        x = _uniform(rng, image, dtype)

        def forward(m, a):
            return m.unfold(a["x"], **kw)

        def backward(m, grad, a):
            return dict(x=m.unfold_backward(grad, a["x"].shape, **kw))
    else:
        blocks = [(L + 2 * p - d * (k - 1) - 1) // s + 1
                  for L, k, d, p, s in zip(size, kernel, dilation, padding, stride)]
        x = _uniform(rng, (n, c * kernel[0] * kernel[1], blocks[0] * blocks[1]), dtype)

        def forward(m, a):
            return m.fold(a["x"], size, **kw)

        def backward(m, grad, a):
            return dict(x=m.fold_backward(grad, **kw))

    return Case(dict(x=x), ("x",), forward, backward, f"x{x.shape} image{image} {kw}")


OPS["unfold"] = lambda rng, dt: _block_case(rng, dt, "unfold")
OPS["fold"] = lambda rng, dt: _block_case(rng, dt, "fold")


# issue 13: interpolate
def _interpolate_case(rng, dtype):
    """A random mode with a rank it takes; sizes or scale factors that shrink and grow."""
    mode = str(rng.choice(["nearest", "nearest-exact", "linear", "bilinear", "bicubic",
                           "trilinear", "area"]))
    nd = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}.get(mode)
    nd = nd or int(rng.integers(1, 4))
    n, c = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    size_in = tuple(int(rng.integers(1, 7)) for _ in range(nd))
    kw = dict(mode=mode)
    if rng.integers(0, 2):
        scale = tuple(float(rng.choice([0.6, 1.0, 1.7, 2.0, 2.5])) for _ in range(nd))
        kw["scale_factor"] = tuple(s if int(np.floor(L * s)) >= 1 else 2.0
                                   for L, s in zip(size_in, scale))
        if mode != "area" and rng.integers(0, 2):
            kw["recompute_scale_factor"] = True
    else:
        kw["size"] = tuple(int(rng.integers(1, 10)) for _ in range(nd))
    if mode in ("linear", "bilinear", "bicubic", "trilinear"):
        kw["align_corners"] = bool(rng.integers(0, 2))
    if mode in ("bilinear", "bicubic") and rng.integers(0, 2):
        kw["antialias"] = True
    x = _uniform(rng, (n, c) + size_in, dtype)

    def forward(m, a):
        return m.interpolate(a["x"], **kw)

    def backward(m, grad, a):
        return dict(x=m.interpolate_backward(grad, a["x"].shape, **kw))

    return Case(dict(x=x), ("x",), forward, backward, f"x{x.shape} {kw}")


OPS["interpolate"] = _interpolate_case


# issue 13: the 3-D family
OPS.update({
    "conv3d": lambda rng, dt: _conv_case(rng, dt, 3, False),
    "conv_transpose3d": lambda rng, dt: _conv_case(rng, dt, 3, True),
    "max_pool3d": lambda rng, dt: _max_pool_case(rng, dt, 3),
    "avg_pool3d": lambda rng, dt: _avg_pool_case(rng, dt, 3),
    "max_unpool3d": lambda rng, dt: _max_unpool_case(rng, dt, 3),
    "upsample_nearest3d": lambda rng, dt: _upsample_case(rng, dt, 3, "nearest"),
    "upsample_trilinear3d": lambda rng, dt: _upsample_case(rng, dt, 3, "trilinear"),
})
