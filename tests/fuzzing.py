"""Valid calls of every public function, and the bad arguments that perturb them.

Used by ``tests/test_fuzz.py``. Each :class:`Target` draws a *valid* call
(small shapes, built directly) as an ordered mapping ``name -> Arg(value,
kind)``; the test replaces one or two arguments by a bad value of their kind
(:func:`bad_value`) and runs the call under :func:`guarded`. The only
acceptable outcomes are a result or a ``ValueError``/``TypeError`` whose
message names a perturbed argument (:func:`names_argument`).

A valid call builds its output gradients and indices with deconv's own
forwards: the fuzz checks that bad input fails cleanly, not the numbers (the
property tests do that against the references).
"""

import collections
import io
import math
import os
import re
import resource
import faulthandler
import time
from typing import Callable, NamedTuple

import numpy as np
from hypothesis import strategies as st

import deconv
from deconv import nn, optim
from deconv.train import Trainer

Arg = collections.namedtuple("Arg", "value kind")

# per-call limits: memory the call may map beyond what the process maps before
# it, wall time it may take (first calls include JIT compilation), and the
# byte cap the ops run under (valid calls with big outputs meet it and are
# refused, naming the output)
MEMORY_HEADROOM = 3 * 2**30
CALL_SECONDS = 60
HANG_SECONDS = 300
FUZZ_BYTE_CAP = 2**28

# outcomes of all calls in this process, by (target, outcome): read by the
# terminal summary (conftest.py)
OUTCOMES = collections.Counter()

NAN, INF = float("nan"), float("inf")


class Follow:
    """An output gradient that follows the forward: the valid one while the
    output keeps its shape and dtype, else ones like the output (so that a
    perturbed input that is still valid is not blamed on grad_output)."""

    def __init__(self, array):
        self.array = array

    def like(self, y):
        y = np.asarray(y)
        if self.array.shape == y.shape and self.array.dtype == y.dtype:
            return self.array
        # a view: y may be a broadcast view far larger than its memory
        return np.broadcast_to(np.ones((), y.dtype), y.shape)

    def __repr__(self):
        return f"Follow({self.array!r})"


def _grad(g, y):
    return g.like(y) if isinstance(g, Follow) else g


class Target(NamedTuple):
    name: str
    build: Callable      # draw -> {name: Arg}
    run: Callable        # {name: value} -> result


# ---------------------------------------------------------------------------
# bad values by kind
# ---------------------------------------------------------------------------

class _Opaque:
    def __repr__(self):
        return "<opaque object>"


ANY_BAD = [None, "1", b"1", _Opaque(), [], (), {}, 1.5, NAN, INF, -INF, 1j, True, -1, 0,
           2**63, -2**63 - 1, 10**400, np.array([1, 2]), Ellipsis]
INT_BAD = [0, -1, -7, 2**31 - 1, 2**31, 2**62, 2**63 - 1, 2**63, 2**64, -2**63, 1.0, 2.5,
           np.float32(2), np.int8(3), np.uint64(2**63), np.int64(2**62), True, False, "2",
           NAN, INF, np.array(2), np.array([2])]
REAL_BAD = [NAN, INF, -INF, -1.0, 0.0, 1.0, 1.5, 1e308, -1e-300, 2.0**1023, 10**400, "0.1",
            None, True, 1j, np.float16(0.1), np.float32(NAN), (0.1,), []]
BOOL_BAD = [2, -1, 0.5, "True", "false", None, np.bool_(True), 1, 0, NAN, [], np.array([True])]
CHOICE_BAD = ["", "bogus", "NEAREST", "Mean", " mean", None, 1, b"mean", ["mean"], True]


def _ints_bad(nd):
    seqs = [(2,) * (nd + 1), (2,) * (nd - 1), (0,) * nd, (-1,) * nd, (2**31,) * nd,
            (2**63,) * nd, (2**31 - 1,) * nd, (1.5,) * nd, [2] * nd, np.array([2] * nd),
            (None,) * nd, ("2",) * nd, (True,) * nd, ((2,),) * nd, (2, 2**40)[:nd]]
    return INT_BAD + seqs


def _shape_bad(shape):
    shape = tuple(shape)
    n = len(shape)
    head = shape[:2] if n > 2 else ()
    return [shape[:-1], shape + (1,), (-1,) * n, (0,) * n, head + (0,) * (n - len(head)),
            (2**31,) * n, head + (2**31 - 1,) * (n - len(head)), (2**63,) * n, (2**64,) * n,
            tuple(float(s) for s in shape), tuple(str(s) for s in shape), "1,2", None, 3,
            list(shape), np.array(shape), (shape[0] + 1,) + shape[1:],
            tuple(s + 1 for s in shape), shape[-1:], tuple(np.int64(s) for s in shape),
            shape[:-1] + (NAN,)]


def _scale_bad(nd):
    return [0, 0.0, -1.0, -2, NAN, INF, 1e308, 1.7976931348623157e308, 2.0**1023, 10**400,
            1e-300, 1e-3, 0.49, float(2**31), (2.0,) * (nd + 1), (2.0, NAN)[:nd] + (2.0,) * (nd - 2),
            "2", True, 1j, [], (INF,) * nd, (0.5, 2**40)[:nd]]


def _size_bad(nd):
    return _ints_bad(nd) + [(2**31 - 1,) * nd, (2**30,) * nd, (65536,) * nd, (1,) * nd]


def _huge_view(ndim, dtype):
    """A read-only broadcast view of 2**33 elements with ``ndim`` axes."""
    per = [33 // ndim + (1 if i < 33 % ndim else 0) for i in range(ndim)]
    return np.broadcast_to(np.asarray(1, dtype=dtype), tuple(2**p for p in per))


def _array_bad(a):
    """Bad (and some valid but unusual) variants of the float array ``a``."""
    with np.errstate(over="ignore"):                # a * 1e38 overflows float32 to inf
        return _array_bad_values(a)


def _array_bad_values(a):
    out = [a[None], a.reshape(-1), np.float64(1.0), 1.0, None, "x", a.tolist(),
           a[:0], a[..., :0], np.ascontiguousarray(a[..., ::-1]), a[..., ::2], np.asfortranarray(a),
           _huge_view(a.ndim + 1, a.dtype), _huge_view(max(a.ndim - 1, 1), a.dtype),
           np.full_like(a, NAN), np.full_like(a, INF), np.full_like(a, -INF),
           np.zeros_like(a), a * 1e38, a.astype(a.dtype.newbyteorder(">"))]
    if a.ndim > 1:
        out += [a[0], a[:, :0], np.concatenate([a, a[:, :1]], axis=1), a[:, :-1] if a.shape[1] > 1
                else a[:, :0], np.swapaxes(a, 0, 1), np.broadcast_to(a[:1], (3,) + a.shape[1:])]
        big = (2**14, a.shape[1]) + (2**12,) * (a.ndim - 2)
        out.append(np.broadcast_to(a[:1, :, *([slice(0, 1)] * (a.ndim - 2))], big))
    for dtype in (np.int32, np.int64, np.bool_, np.complex64, np.complex128, np.float16,
                  object, np.uint8, np.float32, np.float64):
        if np.dtype(dtype) != a.dtype:
            out.append(a.astype(dtype))
    return out


def _index_bad(idx, plane):
    out = [idx.astype(np.float32), idx.astype(np.float64), idx.astype(np.int32),
           idx.astype(np.uint64), idx.astype(np.bool_), idx[None], idx.reshape(-1), idx[:0],
           np.full_like(idx, -1), np.full_like(idx, plane), np.full_like(idx, 2**62),
           np.full_like(idx, -2**63), idx[..., ::-1], np.asfortranarray(idx), None, idx.tolist(),
           _huge_view(idx.ndim + 1, np.int64), np.zeros_like(idx)]
    if idx.ndim > 1:
        out += [idx[:, :0], np.concatenate([idx, idx[:, :1]], axis=1), idx[0]]
    return out


def bad_value(kind, value):
    """The strategy of bad values for an argument of ``kind`` whose valid value is ``value``."""
    if kind == "array":
        if isinstance(value, Follow):
            value = value.array
        pool = _array_bad(value) if isinstance(value, np.ndarray) else []
    elif kind == "bias":
        pool = (_array_bad(value) if value is not None else []) + [np.zeros(()), np.zeros((1,)),
                                                                  np.zeros((2, 3))]
    elif kind == "indices":
        pool = _index_bad(*value)
    elif kind.startswith("ints"):
        pool = _ints_bad(int(kind[4:]))
    elif kind == "int":
        pool = INT_BAD
    elif kind == "real":
        pool = REAL_BAD
    elif kind == "bool":
        pool = BOOL_BAD
    elif kind == "choice":
        pool = CHOICE_BAD
    elif kind == "shape":
        pool = _shape_bad(value)
    elif kind.startswith("size"):
        pool = _size_bad(int(kind[4:]))
    elif kind.startswith("scale"):
        pool = _scale_bad(int(kind[5:]))
    elif kind == "betas":
        pool = [(1.0, 0.999), (0.9, 1.0), (-0.1, 0.9), (NAN, 0.9), (0.9,), (0.9, 0.9, 0.9), 0.9,
                "0.9", (0.9, "0.9"), (0.9, None), (INF, 0.5)]
    elif kind == "module":
        pool = [nn.ReLU, np.ones(3), "relu", lambda x: x, nn.Linear(3, 3), nn.MSELoss()]
    elif kind == "params":
        pool = [[], [np.ones(3)], "w", [None], [nn.Parameter(np.ones(3)), "w"], np.ones(3),
                [nn.Parameter(np.ones(3, np.float16))] if False else [object()],
                iter([]), {"lr": 0.1}]
    elif kind == "callable":
        pool = [1, "accuracy", np.ones(3)]
    elif kind == "path":
        pool = [1, 2.5, b"\0", "bad\0path", ["dir"]]
    elif kind == "stream":
        pool = [1, "stdout", np.ones(3)]
    elif kind == "labels":
        value, classes = value
        pool = [value.astype(np.float32), value.astype(np.float64) + 0.5, np.full_like(value, classes),
                np.full_like(value, -1), np.full_like(value, 2**62), value[:-1], value[None],
                value.astype(np.bool_), value.astype(np.complex64), np.full_like(value, -100)]
    else:
        raise AssertionError(kind)
    return st.sampled_from(pool + ANY_BAD)


# ---------------------------------------------------------------------------
# the call guard and the outcome rule
# ---------------------------------------------------------------------------

_CAP = re.compile(r"would take [\d.e+]+ [KMGT]?i?B \(\d+ bytes\), over the cap of")


def names_argument(message, names):
    """Whether ``message`` names one of ``names`` as a word (``x`` in
    ``x must be 4-D``, ``weight.shape[1]``, ``betas[0]``)."""
    return any(re.search(rf"(?<![\w.]){re.escape(n)}(?![\w])", message) for n in names)


def _mapped_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * resource.getpagesize()


class guarded:
    """Run a block under an address-space limit (what the process maps now
    plus :data:`MEMORY_HEADROOM`), a hang guard that ends the process with
    every thread's traceback, and the fuzz byte cap."""

    def __enter__(self):
        from deconv.functional.validation import byte_cap
        self.old = resource.getrlimit(resource.RLIMIT_AS)
        limit = _mapped_bytes() + MEMORY_HEADROOM
        if self.old[1] != resource.RLIM_INFINITY:
            limit = min(limit, self.old[1])
        resource.setrlimit(resource.RLIMIT_AS, (limit, self.old[1]))
        faulthandler.dump_traceback_later(HANG_SECONDS, exit=True)
        self.cap = byte_cap(FUZZ_BYTE_CAP)
        self.cap.__enter__()
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
        self.cap.__exit__(*exc)
        faulthandler.cancel_dump_traceback_later()
        resource.setrlimit(resource.RLIMIT_AS, self.old)
        return False


# ---------------------------------------------------------------------------
# valid calls
# ---------------------------------------------------------------------------

def _dtype(draw):
    return np.dtype(draw(st.sampled_from([np.float32, np.float64])))


def _rand(draw, shape, dtype):
    seed = draw(st.integers(0, 2**16))
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _tuple_or_int(draw, values):
    """An int or a tuple of ints as PyTorch takes them."""
    if len(set(values)) == 1 and draw(st.booleans()):
        return values[0]
    return tuple(values)


def _conv_geometry(draw, nd, transposed):
    k = [draw(st.integers(1, 3)) for _ in range(nd)]
    s = [draw(st.integers(1, 2)) for _ in range(nd)]
    d = [draw(st.integers(1, 2)) for _ in range(nd)]
    p = [draw(st.integers(0, 2)) for _ in range(nd)]
    if transposed:
        op = [draw(st.integers(0, max(si, di) - 1)) for si, di in zip(s, d)]
        # the output (n - 1) s - 2 p + d (k - 1) + op + 1 must be positive
        size = [max(1, -(-(2 * pi - di * (ki - 1) - opi) // si) + 1) + draw(st.integers(0, 3))
                for ki, si, di, pi, opi in zip(k, s, d, p, op)]
        out = [(n - 1) * si - 2 * pi + di * (ki - 1) + opi + 1
               for n, ki, si, di, pi, opi in zip(size, k, s, d, p, op)]
    else:
        op = None
        size = [max(1, di * (ki - 1) + 1 - 2 * pi) + draw(st.integers(0, 3))
                for ki, di, pi in zip(k, d, p)]
        out = [(n + 2 * pi - di * (ki - 1) - 1) // si + 1
               for n, ki, si, di, pi in zip(size, k, s, d, p)]
    return k, s, d, p, op, size, out


def conv_call(nd, transposed, backward):
    conv = getattr(deconv, f"conv_transpose{nd}d" if transposed else f"conv{nd}d")
    fn = getattr(deconv, conv.__name__ + "_backward") if backward else conv
    names = ["stride", "padding", "dilation", "groups"] + (["output_padding"] if transposed else [])

    def build(draw):
        dtype = _dtype(draw)
        N, G = draw(st.integers(1, 2)), draw(st.integers(1, 2))
        c_in_g, c_out_g = draw(st.integers(1, 3)), draw(st.integers(1, 3))
        k, s, d, p, op, size, out = _conv_geometry(draw, nd, transposed)
        x = _rand(draw, (N, G * c_in_g) + tuple(size), dtype)
        w_shape = (G * c_in_g, c_out_g) if transposed else (G * c_out_g, c_in_g)
        w = _rand(draw, w_shape + tuple(k), dtype)
        args = {}
        if backward:
            args["grad_output"] = Arg(_rand(draw, (N, G * c_out_g) + tuple(out), dtype), "array")
        args["x"] = Arg(x, "array")
        args["weight"] = Arg(w, "array")
        if not backward:
            bias = _rand(draw, (G * c_out_g,), dtype) if draw(st.booleans()) else None
            args["bias"] = Arg(bias, "bias")
        kind = f"ints{nd}"
        args["stride"] = Arg(_tuple_or_int(draw, s), kind)
        args["padding"] = Arg(_tuple_or_int(draw, p), kind)
        args["dilation"] = Arg(_tuple_or_int(draw, d), kind)
        args["groups"] = Arg(G, "int")
        if transposed:
            args["output_padding"] = Arg(_tuple_or_int(draw, op), kind)
        return args

    def run(a):
        if backward:
            return fn(a["grad_output"], a["x"], a["weight"], **{n: a[n] for n in names})
        return fn(a["x"], a["weight"], a["bias"], **{n: a[n] for n in names})

    return Target(fn.__name__, build, run)


def _pool_geometry(draw, nd, dilated):
    k = [draw(st.integers(1, 3)) for _ in range(nd)]
    s = [draw(st.integers(1, 3)) for _ in range(nd)]
    p = [draw(st.integers(0, ki // 2)) for ki in k]
    d = [draw(st.integers(1, 2)) if dilated else 1 for _ in range(nd)]
    size = [di * (ki - 1) + 1 + draw(st.integers(0, 4)) for ki, di in zip(k, d)]
    return k, s, p, d, size


def pool_call(nd, kind, backward):
    fwd = getattr(deconv, f"{kind}_pool{nd}d")
    fn = getattr(deconv, f"{kind}_pool{nd}d_backward") if backward else fwd
    ints = f"ints{nd}"

    def build(draw):
        dtype = _dtype(draw)
        k, s, p, d, size = _pool_geometry(draw, nd, kind == "max")
        shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3))) + tuple(size)
        x = _rand(draw, shape, dtype)
        opts = {"kernel_size": Arg(_tuple_or_int(draw, k), ints),
                "stride": Arg(_tuple_or_int(draw, s) if draw(st.booleans()) else None, ints),
                "padding": Arg(_tuple_or_int(draw, p), ints)}
        if kind == "max":
            opts["dilation"] = Arg(_tuple_or_int(draw, d), ints)
            # ceil_mode only without dilation: no window may start in the padding alone
            opts["ceil_mode"] = Arg(draw(st.booleans()) and max(d) == 1, "bool")
        else:
            opts["ceil_mode"] = Arg(draw(st.booleans()), "bool")
            opts["count_include_pad"] = Arg(draw(st.booleans()), "bool")
            opts["divisor_override"] = Arg(draw(st.sampled_from([None, 1, 3])), "int")
        if not backward:
            return {"x": Arg(x, "array"), **opts}
        values = {n: v.value for n, v in opts.items()}
        if kind == "max":
            y, idx = fwd(x, **values)
            plane = math.prod(size)
            return {"grad_output": Arg(_rand(draw, y.shape, dtype), "array"),
                    "indices": Arg((idx, plane), "indices"), "input_shape": Arg(shape, "shape")}
        y = fwd(x, **values)
        return {"grad_output": Arg(_rand(draw, y.shape, dtype), "array"),
                "input_shape": Arg(shape, "shape"), **opts}

    def run(a):
        if not backward:
            return fn(a.pop("x"), **a)
        if kind == "max":
            return fn(a["grad_output"], _indices(a["indices"]), a["input_shape"])
        return fn(a.pop("grad_output"), a.pop("input_shape"), a.pop("kernel_size"), **a)

    return Target(fn.__name__, build, run)


def _indices(value):
    return value[0] if isinstance(value, tuple) and len(value) == 2 and \
        isinstance(value[0], np.ndarray) and isinstance(value[1], int) else value


def unpool_call(nd, backward):
    fn = getattr(deconv, f"max_unpool{nd}d" + ("_backward" if backward else ""))
    pool = getattr(deconv, f"max_pool{nd}d")
    ints = f"ints{nd}"

    def build(draw):
        dtype = _dtype(draw)
        k, s, p, _, size = _pool_geometry(draw, nd, False)
        shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3))) + tuple(size)
        y, idx = pool(_rand(draw, shape, dtype), k, s, p)
        plane = math.prod(size)
        if backward:
            return {"grad_output": Arg(_rand(draw, shape, dtype), "array"),
                    "indices": Arg((idx, plane), "indices")}
        default = tuple((n - 1) * si - 2 * pi + ki for n, si, pi, ki in zip(y.shape[2:], s, p, k))
        output_size = draw(st.sampled_from([shape, shape[2:]] + ([None] if default == tuple(size)
                                                                else [])))
        return {"x": Arg(y, "array"), "indices": Arg((idx, plane), "indices"),
                "kernel_size": Arg(_tuple_or_int(draw, k), ints),
                "stride": Arg(tuple(s), ints), "padding": Arg(tuple(p), ints),
                "output_size": Arg(output_size, "shape" if output_size else f"size{nd}")}

    def run(a):
        a["indices"] = _indices(a["indices"])
        if backward:
            return fn(a["grad_output"], a["indices"])
        return fn(a.pop("x"), a.pop("indices"), a.pop("kernel_size"), **a)

    return Target(fn.__name__, build, run)


def upsample_call(name, backward):
    nd = int(name[-2])
    fwd = getattr(deconv, name)
    fn = getattr(deconv, name + "_backward") if backward else fwd
    bilinear = "linear" in name          # bilinear or trilinear: align_corners

    def build(draw):
        dtype = _dtype(draw)
        shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3))) + tuple(
            draw(st.integers(1, 5)) for _ in range(nd))
        x = _rand(draw, shape, dtype)
        if draw(st.booleans()):
            size = tuple(draw(st.integers(1, 9)) for _ in range(nd))
            opts = {"size": Arg(size, f"size{nd}"), "scale_factor": Arg(None, f"scale{nd}")}
        else:
            scale = draw(st.sampled_from([2, 2.0, 1.5, 1, 3]))
            opts = {"size": Arg(None, f"size{nd}"), "scale_factor": Arg(scale, f"scale{nd}")}
        if bilinear:
            opts["align_corners"] = Arg(draw(st.booleans()), "bool")
        if not backward:
            return {"x": Arg(x, "array"), **opts}
        y = fwd(x, **{n: v.value for n, v in opts.items()})
        out = {"grad_output": Arg(_rand(draw, y.shape, dtype), "array"),
               "input_shape": Arg(shape, "shape")}
        if opts["scale_factor"].value is not None:
            out["scale_factor"] = opts["scale_factor"]
        if bilinear:
            out["align_corners"] = opts["align_corners"]
        return out

    def run(a):
        if backward:
            return fn(a.pop("grad_output"), a.pop("input_shape"), **a)
        return fn(a.pop("x"), **a)

    return Target(fn.__name__, build, run)


def shuffle_call(name, backward):
    fn = getattr(deconv, name + ("_backward" if backward else ""))
    factor_name = "upscale_factor" if name == "pixel_shuffle" else "downscale_factor"
    array_name = "grad_output" if backward else "x"

    def build(draw):
        dtype = _dtype(draw)
        r = draw(st.integers(1, 3))
        N, C, H, W = (draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 3)),
                      draw(st.integers(1, 3)))
        up = (name == "pixel_shuffle") != backward
        shape = (N, C * r * r, H, W) if up else (N, C, H * r, W * r)
        return {array_name: Arg(_rand(draw, shape, dtype), "array"), factor_name: Arg(r, "int")}

    def run(a):
        return fn(a[array_name], a[factor_name])

    return Target(fn.__name__, build, run)


# --- layers ------------------------------------------------------------------

def layer_call(name, make_args, uses_input=True):
    """A layer: construct from the drawn constructor arguments, forward x,
    backward grad_output (built from the valid call's forward)."""
    cls = getattr(nn, name)

    def build(draw):
        ctor, x = make_args(draw)
        args = dict(ctor)
        args["x"] = Arg(x, "array")
        layer = cls(**{n: v.value for n, v in ctor.items()})
        y = layer(x)
        args["grad_output"] = Arg(Follow(_rand(draw, np.shape(y), np.asarray(y).dtype)), "array")
        return args

    def run(a):
        x, g = a.pop("x"), a.pop("grad_output")
        layer = cls(**a)
        return layer.backward(_grad(g, layer(x)))

    return Target(f"nn.{name}", build, run)


def _conv_layer_args(nd, transposed):
    def make(draw):
        dtype = _dtype(draw)
        G = draw(st.integers(1, 2))
        c_in, c_out = G * draw(st.integers(1, 3)), G * draw(st.integers(1, 3))
        k, s, d, p, op, size, _ = _conv_geometry(draw, nd, transposed)
        ints = f"ints{nd}"
        ctor = {"in_channels": Arg(c_in, "int"), "out_channels": Arg(c_out, "int"),
                "kernel_size": Arg(_tuple_or_int(draw, k), ints),
                "stride": Arg(_tuple_or_int(draw, s), ints),
                "padding": Arg(_tuple_or_int(draw, p), ints),
                "dilation": Arg(_tuple_or_int(draw, d), ints), "groups": Arg(G, "int"),
                "bias": Arg(draw(st.booleans()), "bool"), "dtype": Arg(dtype, "choice")}
        if transposed:
            ctor["output_padding"] = Arg(_tuple_or_int(draw, op), ints)
        x = _rand(draw, (draw(st.integers(1, 2)), c_in) + tuple(size), dtype)
        return ctor, x
    return make


def _pool_layer_args(nd, kind):
    def make(draw):
        k, s, p, d, size = _pool_geometry(draw, nd, kind == "Max")
        ints = f"ints{nd}"
        ctor = {"kernel_size": Arg(_tuple_or_int(draw, k), ints),
                "stride": Arg(_tuple_or_int(draw, s), ints), "padding": Arg(tuple(p), ints)}
        if kind == "Max":
            ctor["dilation"] = Arg(tuple(d), ints)
            ctor["ceil_mode"] = Arg(draw(st.booleans()) and max(d) == 1, "bool")
        else:
            ctor["ceil_mode"] = Arg(draw(st.booleans()), "bool")
            ctor["count_include_pad"] = Arg(draw(st.booleans()), "bool")
            ctor["divisor_override"] = Arg(draw(st.sampled_from([None, 2])), "int")
        x = _rand(draw, (1, draw(st.integers(1, 3))) + tuple(size), _dtype(draw))
        return ctor, x
    return make


def _upsample_layer_args(draw):
    mode = draw(st.sampled_from(["nearest", "bilinear"]))
    nd = 2 if mode == "bilinear" else draw(st.sampled_from([1, 2]))
    if draw(st.booleans()):
        ctor = {"size": Arg(tuple(draw(st.integers(1, 7)) for _ in range(nd)), f"size{nd}")}
    else:
        ctor = {"scale_factor": Arg(draw(st.sampled_from([2, 1.5, 1])), f"scale{nd}")}
    ctor["mode"] = Arg(mode, "choice")
    if mode == "bilinear":
        ctor["align_corners"] = Arg(draw(st.booleans()), "bool")
    x = _rand(draw, (1, 2) + (draw(st.integers(1, 4)),) * nd, _dtype(draw))
    return ctor, x


def _shuffle_layer_args(name):
    def make(draw):
        r = draw(st.integers(1, 3))
        n = "upscale_factor" if name == "PixelShuffle" else "downscale_factor"
        shape = (1, 2 * r * r, 2, 3) if name == "PixelShuffle" else (1, 2, 2 * r, 3 * r)
        return {n: Arg(r, "int")}, _rand(draw, shape, _dtype(draw))
    return make


def _linear_args(draw):
    dtype = _dtype(draw)
    i, o = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    ctor = {"in_features": Arg(i, "int"), "out_features": Arg(o, "int"),
            "bias": Arg(draw(st.booleans()), "bool"), "dtype": Arg(dtype, "choice")}
    return ctor, _rand(draw, (draw(st.integers(1, 3)), i), dtype)


def _plain_args(extra):
    def make(draw):
        shape = tuple(draw(st.integers(1, 3)) for _ in range(draw(st.integers(2, 4))))
        return {n: Arg(draw(v), k) for n, (v, k) in extra.items()}, _rand(draw, shape, _dtype(draw))
    return make


def _permute_args(draw):
    ndim = draw(st.integers(2, 4))
    dims = tuple(draw(st.permutations(range(ndim))))
    return {"dims": Arg(dims, f"ints{ndim}")}, _rand(draw, (2, 3, 1, 2)[:ndim], _dtype(draw))


def unpool_layer_call(nd):
    pool_cls, cls = getattr(nn, f"MaxPool{nd}d"), getattr(nn, f"MaxUnpool{nd}d")

    def build(draw):
        k, s, p, _, size = _pool_geometry(draw, nd, False)
        x = _rand(draw, (1, 2) + tuple(size), _dtype(draw))
        pool = pool_cls(k, s, p)
        y = pool(x)
        z = cls(pool)(y)
        return {"pool": Arg(pool, "module"), "x": Arg(y, "array"),
                "grad_output": Arg(Follow(_rand(draw, z.shape, z.dtype)), "array")}

    def run(a):
        layer = cls(a["pool"])
        return layer.backward(_grad(a["grad_output"], layer(a["x"])))

    return Target(f"nn.MaxUnpool{nd}d", build, run)


def embedding_call():
    def build(draw):
        n, dim = draw(st.integers(1, 5)), draw(st.integers(1, 4))
        pad = draw(st.sampled_from([None, 0, -1]))
        idx = np.asarray(draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=6)))
        dtype = _dtype(draw)
        return {"num_embeddings": Arg(n, "int"), "embedding_dim": Arg(dim, "int"),
                "padding_idx": Arg(pad, "int"), "dtype": Arg(dtype, "choice"),
                "indices": Arg((idx, n), "labels"),
                "grad_output": Arg(Follow(_rand(draw, idx.shape + (dim,), dtype)), "array")}

    def run(a):
        idx, g = _labels(a.pop("indices")), a.pop("grad_output")
        layer = nn.Embedding(**a)
        return layer.backward(_grad(g, layer(idx)))

    return Target("nn.Embedding", build, run)


def _labels(value):
    return value[0] if isinstance(value, tuple) and len(value) == 2 and \
        isinstance(value[0], np.ndarray) and isinstance(value[1], int) else value


def container_call(name):
    cls = getattr(nn, name)

    def build(draw):
        dtype = _dtype(draw)
        width = draw(st.integers(1, 3))
        mods = [nn.Linear(width, width, dtype=dtype), nn.ReLU()][:draw(st.integers(1, 2))]
        x = _rand(draw, (2, width), dtype)
        y = cls(*mods)(x)
        args = {f"module{i}": Arg(m, "module") for i, m in enumerate(mods)}
        args["x"] = Arg(x, "array")
        args["grad_output"] = Arg(Follow(_rand(draw, y.shape, dtype)), "array")
        return args

    def run(a):
        mods = [a.pop(n) for n in list(a) if n.startswith("module")]
        layer = cls(*mods)
        return layer.backward(_grad(a["grad_output"], layer(a["x"])))

    return Target(f"nn.{name}", build, run)


def loss_call(name):
    cls = getattr(nn, name)

    def build(draw):
        dtype = _dtype(draw)
        N, C = draw(st.integers(1, 3)), draw(st.integers(1, 4))
        args = {"reduction": Arg(draw(st.sampled_from(["mean", "sum"])), "choice"),
                "prediction": Arg(_rand(draw, (N, C), dtype), "array")}
        if name == "CrossEntropyLoss":
            labels = np.asarray(draw(st.lists(st.integers(0, C - 1), min_size=N, max_size=N)))
            args["target"] = Arg((labels, C), "labels")
            args["weight"] = Arg(np.abs(_rand(draw, (C,), dtype)) if draw(st.booleans()) else None,
                                 "bias")
            args["ignore_index"] = Arg(draw(st.sampled_from([-100, 0])), "int")
        else:
            args["target"] = Arg(_rand(draw, (N, C), dtype), "array")
        return args

    def run(a):
        prediction, target = a.pop("prediction"), _labels(a.pop("target"))
        loss = cls(**a)
        value = loss(prediction, target)
        grad = loss.backward()
        return value, grad

    return Target(f"nn.{name}", build, run)


def optimizer_call(name):
    cls = getattr(optim, name)

    def build(draw):
        dtype = _dtype(draw)
        p = nn.Parameter(_rand(draw, (draw(st.integers(1, 4)),), dtype))
        p.grad[...] = _rand(draw, p.data.shape, dtype)
        args = {"params": Arg([p], "params"), "lr": Arg(draw(st.sampled_from([0.1, 1e-3])), "real")}
        if name == "SGD":
            args["momentum"] = Arg(draw(st.sampled_from([0, 0.9])), "real")
            args["dampening"] = Arg(draw(st.sampled_from([0, 0.1])), "real")
            args["weight_decay"] = Arg(draw(st.sampled_from([0, 1e-4])), "real")
            args["nesterov"] = Arg(False, "bool")
        else:
            args["betas"] = Arg((0.9, 0.999), "betas")
            args["eps"] = Arg(draw(st.sampled_from([1e-8, 1e-6])), "real")
            args["weight_decay"] = Arg(draw(st.sampled_from([0, 1e-4])), "real")
        return args

    def run(a):
        opt = cls(**a)
        opt.step()
        opt.step()
        opt.zero_grad()
        return opt

    return Target(f"optim.{name}", build, run)


def trainer_call():
    def build(draw):
        dtype = np.dtype(np.float64)
        n = draw(st.integers(2, 5))
        model = nn.Sequential(nn.Linear(3, 2, dtype=dtype))
        return {
            "model": Arg(model, "module"), "loss": Arg(nn.MSELoss(), "module"),
            "optimizer": Arg(optim.SGD(model.parameters(), lr=0.1), "module"),
            "batch_size": Arg(draw(st.integers(1, 3)), "int"),
            "epochs": Arg(draw(st.integers(1, 2)), "int"), "seed": Arg(0, "int"),
            "metric": Arg(None, "callable"), "checkpoint_every": Arg(1, "int"),
            "progress": Arg("none", "choice"), "stream": Arg(io.StringIO(), "stream"),
            "clip_grad_norm": Arg(1.0, "real"), "clip_grad_value": Arg(None, "real"),
            "scheduler_interval": Arg("epoch", "choice"), "scheduler": Arg(None, "module"),
            "x_train": Arg(_rand(draw, (n, 3), dtype), "array"),
            "y_train": Arg(_rand(draw, (n, 2), dtype), "array"),
            "x_val": Arg(_rand(draw, (2, 3), dtype), "array"),
            "y_val": Arg(_rand(draw, (2, 2), dtype), "array"),
        }

    def run(a):
        data = {n: a.pop(n) for n in ("x_train", "y_train", "x_val", "y_val")}
        trainer = Trainer(a.pop("model"), a.pop("loss"), a.pop("optimizer"), **a)
        return trainer.fit(**data)

    return Target("train.Trainer", build, run)


# issue 13: adaptive pooling
def _adaptive_output_size(draw, nd, spatial):
    """An output_size as torch takes it: an int, a tuple, or (2-D, 3-D) a tuple with
    None entries; the resolved sizes."""
    out = [draw(st.integers(1, 7)) for _ in range(nd)]
    form = draw(st.sampled_from(["int", "tuple", "none"] if nd > 1 else ["int", "tuple"]))
    if form == "int":
        return out[0], (out[0],) * nd
    if form == "tuple":
        return tuple(out), tuple(out)
    keep = [draw(st.booleans()) for _ in range(nd)]
    return (tuple(None if k else o for k, o in zip(keep, out)),
            tuple(L if k else o for L, k, o in zip(spatial, keep, out)))


def adaptive_call(nd, kind, backward):
    fwd = getattr(deconv, f"adaptive_{kind}_pool{nd}d")
    fn = getattr(deconv, f"adaptive_{kind}_pool{nd}d_backward") if backward else fwd

    def build(draw):
        dtype = _dtype(draw)
        spatial = tuple(draw(st.integers(1, 6)) for _ in range(nd))
        shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3))) + spatial
        output_size, out = _adaptive_output_size(draw, nd, spatial)
        x = _rand(draw, shape, dtype)
        if not backward:
            args = {"x": Arg(x, "array"), "output_size": Arg(output_size, f"size{nd}")}
            if kind == "max":
                args["return_indices"] = Arg(draw(st.booleans()), "bool")
            return args
        grad = Arg(_rand(draw, shape[:2] + out, dtype), "array")
        if kind == "max":
            _, idx = fwd(x, output_size)
            return {"grad_output": grad, "indices": Arg((idx, math.prod(spatial)), "indices"),
                    "input_shape": Arg(shape, "shape")}
        return {"grad_output": grad, "input_shape": Arg(shape, "shape")}

    def run(a):
        if not backward:
            return fn(a.pop("x"), **a)
        if kind == "max":
            return fn(a["grad_output"], _indices(a["indices"]), a["input_shape"])
        return fn(a["grad_output"], a["input_shape"])

    return Target(fn.__name__, build, run)


# --- issue 13: padding ---------------------------------------------------------

PAD_MODES = ("constant", "reflect", "replicate", "circular")


def _pad_pairs(draw, spatial, mode):
    """Valid (before, after) per spatial axis, last axis first, as a flat pad tuple."""
    pad = []
    for L in spatial[::-1]:
        if mode == "reflect":
            pad += [draw(st.integers(0, L - 1)), draw(st.integers(0, L - 1))]
        elif mode == "circular":
            pad += [draw(st.integers(0, L)), draw(st.integers(0, L))]
        elif mode == "replicate":
            pad += [draw(st.integers(0, 3)), draw(st.integers(0, 3))]
        else:
            before = draw(st.integers(-(L - 1), 2))
            pad += [before, draw(st.integers(max(1 - L - before, -(L - max(-before, 0))), 2))]
    return tuple(pad)


def pad_call(backward):
    fn = deconv.pad_backward if backward else deconv.pad

    def build(draw):
        dtype = _dtype(draw)
        nd = draw(st.integers(1, 3))
        mode = draw(st.sampled_from(PAD_MODES))
        shape = (draw(st.integers(1, 2)), draw(st.integers(1, 2))) + tuple(
            draw(st.integers(1, 4)) for _ in range(nd))
        pad = _pad_pairs(draw, shape[2:], mode)
        kind = f"ints{len(pad)}"
        if not backward:
            value = draw(st.sampled_from([0.0, 1.5])) if mode == "constant" else 0.0
            return {"x": Arg(_rand(draw, shape, dtype), "array"), "pad": Arg(pad, kind),
                    "mode": Arg(mode, "choice"), "value": Arg(value, "real")}
        y = deconv.pad(np.zeros(shape, dtype), pad, mode=mode)
        return {"grad_output": Arg(_rand(draw, y.shape, dtype), "array"),
                "input_shape": Arg(shape, "shape"), "pad": Arg(pad, kind),
                "mode": Arg(mode, "choice")}

    def run(a):
        if backward:
            return fn(a["grad_output"], a["input_shape"], a["pad"], mode=a["mode"])
        return fn(a["x"], a["pad"], mode=a["mode"], value=a["value"])

    return Target(fn.__name__, build, run)


def adaptive_layer_call(nd, kind):
    """An adaptive pooling layer; with return_indices the forward gives (y, indices)."""
    cls = getattr(nn, f"Adaptive{kind}Pool{nd}d")

    def values(layer, x):
        y = layer(x)
        return y[0] if getattr(layer, "return_indices", False) else y

    def build(draw):
        spatial = tuple(draw(st.integers(1, 5)) for _ in range(nd))
        x = _rand(draw, (draw(st.integers(1, 2)), draw(st.integers(1, 3))) + spatial,
                  _dtype(draw))
        ctor = {"output_size": Arg(_adaptive_output_size(draw, nd, spatial)[0], f"size{nd}")}
        if kind == "Max":
            ctor["return_indices"] = Arg(draw(st.booleans()), "bool")
        y = values(cls(**{n: v.value for n, v in ctor.items()}), x)
        return {**ctor, "x": Arg(x, "array"),
                "grad_output": Arg(Follow(_rand(draw, y.shape, y.dtype)), "array")}

    def run(a):
        x, g = a.pop("x"), a.pop("grad_output")
        layer = cls(**a)
        return layer.backward(_grad(g, values(layer, x)))

    return Target(f"nn.{cls.__name__}", build, run)


# --- issue 14: activations, channel dropout, init, clipping --------------------

def _prelu_args(draw):
    dtype = _dtype(draw)
    n = draw(st.sampled_from([1, 2, 3]))
    shape = (draw(st.integers(1, 2)), n) + tuple(draw(st.integers(1, 3))
                                                  for _ in range(draw(st.integers(0, 2))))
    ctor = {"num_parameters": Arg(n, "int"), "init": Arg(draw(st.sampled_from([0.25, -0.5])), "real"),
            "dtype": Arg(dtype, "choice")}
    return ctor, _rand(draw, shape, dtype)


def _channel_dropout_args(spatial):
    def make(draw):
        shape = tuple(draw(st.integers(1, 3)) for _ in range(spatial + 2))
        return {"p": Arg(draw(st.sampled_from([0.0, 0.5, 1.0])), "real")}, \
            _rand(draw, shape, _dtype(draw))
    return make


def init_call(name):
    fn = getattr(nn.init, name)
    options = {   # argument -> (strategy, kind)
        "uniform_": {"a": (st.sampled_from([-1.0, 0.0]), "real"), "b": (st.sampled_from([1.0, 2.0]), "real")},
        "normal_": {"mean": (st.sampled_from([0.0, 1.5]), "real"), "std": (st.sampled_from([0.0, 1.0]), "real")},
        "constant_": {"val": (st.sampled_from([0.0, -2.5]), "real")},
        "xavier_uniform_": {"gain": (st.sampled_from([1.0, 2.0]), "real")},
        "xavier_normal_": {"gain": (st.sampled_from([1.0, 0.5]), "real")},
        "kaiming_uniform_": {"a": (st.sampled_from([0.0, 5 ** 0.5]), "real"),
                             "mode": (st.sampled_from(["fan_in", "fan_out"]), "choice"),
                             "nonlinearity": (st.sampled_from(["leaky_relu", "relu", "tanh"]), "choice")},
        "kaiming_normal_": {"a": (st.sampled_from([0.0, 0.2]), "real"),
                            "mode": (st.sampled_from(["fan_in", "fan_out"]), "choice"),
                            "nonlinearity": (st.sampled_from(["leaky_relu", "linear"]), "choice")},
        "orthogonal_": {"gain": (st.sampled_from([1.0, 1.5]), "real")},
    }[name]
    random = name not in ("constant_",)

    def build(draw):
        shape = tuple(draw(st.integers(1, 4)) for _ in range(draw(st.integers(2, 4))))
        args = {"tensor": Arg(_rand(draw, shape, _dtype(draw)), "array")}
        args.update({n: Arg(draw(v), k) for n, (v, k) in options.items()})
        if random:
            args["rng"] = Arg(draw(st.integers(0, 2**16)), "int")
        return args

    def run(a):
        tensor = a.pop("tensor")
        # the fill is in place by design: a writeable array is filled as a copy, so the
        # fuzz's check that inputs are left unchanged still holds for every other argument
        if isinstance(tensor, np.ndarray) and tensor.flags.writeable:
            tensor = tensor.copy()
        return fn(tensor, **a)

    return Target(f"nn.init.{name}", build, run)


def clip_call(name):
    fn = getattr(nn.utils, name)

    def build(draw):
        dtype = _dtype(draw)
        params = []
        for _ in range(draw(st.integers(1, 3))):
            p = nn.Parameter(_rand(draw, (draw(st.integers(1, 4)),), dtype))
            p.grad[...] = _rand(draw, p.data.shape, dtype)
            params.append(p)
        args = {"parameters": Arg(params, "params")}
        if name == "clip_grad_norm_":
            args["max_norm"] = Arg(draw(st.sampled_from([0.0, 0.5, 10.0])), "real")
            args["norm_type"] = Arg(draw(st.sampled_from([1.0, 2.0, 3.5, INF])), "real")
            args["error_if_nonfinite"] = Arg(draw(st.booleans()), "bool")
        else:
            args["clip_value"] = Arg(draw(st.sampled_from([0.0, 0.5, 10.0])), "real")
        args["foreach"] = Arg(draw(st.sampled_from([None, False, True])), "bool")
        return args

    def run(a):
        return fn(**a)

    return Target(f"nn.utils.{name}", build, run)


def _padding_layer_args(kind, nd):
    mode = {"Reflection": "reflect", "Replication": "replicate", "Circular": "circular"}.get(
        kind, "constant")

    def make(draw):
        spatial = tuple(draw(st.integers(1, 4)) for _ in range(nd))
        pad = _pad_pairs(draw, spatial, mode)
        ctor = {"padding": Arg(_tuple_or_int(draw, pad) if min(spatial) > max(pad) else pad,
                               f"ints{2 * nd}")}
        if kind == "Constant":
            ctor["value"] = Arg(draw(st.sampled_from([0.0, -2.0, 3.5])), "real")
        x = _rand(draw, (draw(st.integers(1, 2)), draw(st.integers(1, 3))) + spatial,
                  _dtype(draw))
        return ctor, x
    return make


def _conv_padding_mode_args(nd, transposed):
    conv_args = _conv_layer_args(nd, transposed)

    def make(draw):
        ctor, x = conv_args(draw)
        ctor["padding_mode"] = Arg(draw(st.sampled_from(["zeros", "reflect", "replicate",
                                                         "circular"])), "choice")
        # reflection needs padding < the padded size (the input of a conv, the output of
        # a transposed conv), circular padding <= it: a valid call keeps to that
        p, k, s, d = (ctor[n].value for n in ("padding", "kernel_size", "stride", "dilation"))
        p, k, s, d = ((v if isinstance(v, tuple) else (v,) * nd) for v in (p, k, s, d))
        size = x.shape[2:]
        if transposed:
            op = ctor["output_padding"].value
            op = op if isinstance(op, tuple) else (op,) * nd
            size = [deconv.shapes.conv_transpose_output_size(*a) for a in zip(size, k, s, p, op, d)]
        mode = ctor["padding_mode"].value
        if (mode == "reflect" and any(pi >= L for pi, L in zip(p, size))) or (
                mode == "circular" and any(pi > L for pi, L in zip(p, size))):
            ctor["padding_mode"] = Arg("replicate", "choice")
        return ctor, x
    return make
# issue 14: losses
def loss_reduction_call(name, tag=""):
    """Every loss with its options and every reduction ('none' with an upstream gradient)."""
    cls = getattr(nn, name)
    classes = name in ("NLLLoss", "CrossEntropyLoss")
    reductions = ["batchmean", "sum", "none"] if name == "KLDivLoss" else ["mean", "sum", "none"]

    def build(draw):
        dtype = _dtype(draw)
        N, C = draw(st.integers(1, 3)), draw(st.integers(1, 4))
        shape = (N, C) + ((draw(st.integers(1, 3)),) if draw(st.booleans()) else ())
        reduction = "none" if tag == "[none]" else draw(st.sampled_from(reductions))
        args = {"reduction": Arg(reduction, "choice")}
        rng = np.random.default_rng(draw(st.integers(0, 2**16)))
        if name == "BCELoss":
            prediction = rng.uniform(0, 1, shape).astype(dtype)
        else:
            prediction = _rand(draw, shape, dtype)
        args["prediction"] = Arg(prediction, "array")
        loss_shape = shape
        if classes:
            labels = rng.integers(0, C, shape[:1] + shape[2:])
            loss_shape = labels.shape
            args["target"] = Arg((labels, C), "labels")
            weight = np.abs(_rand(draw, (C,), dtype)) if draw(st.booleans()) else None
            args["weight"] = Arg(weight, "bias")
            args["ignore_index"] = Arg(draw(st.sampled_from([-100, 0])), "int")
            if name == "CrossEntropyLoss":
                args["label_smoothing"] = Arg(draw(st.sampled_from([0.0, 0.1, 1.0])), "real")
        elif name in ("BCELoss", "BCEWithLogitsLoss", "KLDivLoss"):
            args["target"] = Arg(rng.uniform(0, 1, shape).astype(dtype), "array")
        else:
            args["target"] = Arg(_rand(draw, shape, dtype), "array")
        if name in ("BCELoss", "BCEWithLogitsLoss"):
            weight = rng.uniform(0, 2, shape[-1:]).astype(dtype) if draw(st.booleans()) else None
            args["weight"] = Arg(weight, "bias")
        if name == "BCEWithLogitsLoss":
            pos_weight = rng.uniform(0, 3, shape[-1:]) if draw(st.booleans()) else None
            args["pos_weight"] = Arg(pos_weight, "bias")
        if name == "SmoothL1Loss":
            args["beta"] = Arg(draw(st.sampled_from([0.0, 0.5, 1.0])), "real")
        if name == "HuberLoss":
            args["delta"] = Arg(draw(st.sampled_from([0.5, 1.0])), "real")
        if name == "KLDivLoss":
            args["log_target"] = Arg(draw(st.booleans()), "bool")
        args["grad_output"] = Arg(Follow(_rand(draw, loss_shape, dtype)), "array")
        return args

    def run(a):
        prediction, target = a.pop("prediction"), _labels(a.pop("target"))
        grad_output = a.pop("grad_output")
        loss = cls(**a)
        value = loss(prediction, target)
        if loss.reduction == "none":
            return value, loss.backward(_grad(grad_output, value))
        return value, loss.backward()

    return Target(f"nn.{name}{tag}", build, run)
# -- issue 14: optimizers, parameter groups, learning-rate schedulers -------------


def _fuzz_params(draw, n=1):
    dtype = _dtype(draw)
    params = []
    for _ in range(n):
        p = nn.Parameter(_rand(draw, (draw(st.integers(1, 4)),), dtype))
        p.grad[...] = _rand(draw, p.data.shape, dtype)
        params.append(p)
    return params


def more_optimizer_call(name, options):
    """AdamW, RMSprop, Adagrad: ``options`` maps argument -> (strategy, kind)."""
    cls = getattr(optim, name)

    def build(draw):
        args = {"params": Arg(_fuzz_params(draw), "params")}
        args.update({k: Arg(draw(v), kind) for k, (v, kind) in options.items()})
        return args

    def run(a):
        opt = cls(**a)
        for _ in range(2):
            opt.step()
        opt.zero_grad()
        return opt

    return Target(f"optim.{name}", build, run)


def param_groups_call():
    """SGD over two parameter groups, then a third added."""
    def build(draw):
        p, q, r = _fuzz_params(draw, 3)
        return {"params": Arg([{"params": [p]}, {"params": [q], "lr": 0.01, "momentum": 0.5}],
                              "params"),
                "lr": Arg(draw(st.sampled_from([0.1, 1e-3])), "real"),
                "momentum": Arg(draw(st.sampled_from([0, 0.9])), "real"),
                "param_group": Arg({"params": [r], "weight_decay": 1e-4}, "params")}

    def run(a):
        group = a.pop("param_group")
        opt = optim.SGD(**a)
        opt.add_param_group(group)
        opt.step()
        return opt

    return Target("optim.param_groups", build, run)


def scheduler_call(name, options, optimizer="SGD", metric=False):
    """A scheduler on a fresh optimizer, stepped three times after the optimizer."""
    cls = getattr(optim.lr_scheduler, name)

    def build(draw):
        params = _fuzz_params(draw)
        opt = (optim.SGD(params, lr=0.1, momentum=0.9) if optimizer == "SGD"
               else getattr(optim, optimizer)(params, lr=0.1))
        args = {"optimizer": Arg(opt, "module")}
        args.update({k: Arg(draw(v), kind) for k, (v, kind) in options(opt).items()})
        return args

    def run(a):
        opt = a["optimizer"]
        sched = cls(**a)
        for k in range(3):
            opt.step()
            sched.step(float(3 - k) if k != 1 else 3.0) if metric else sched.step()
        return sched.get_last_lr()

    return Target(f"optim.lr_scheduler.{name}", build, run)


def _real(*values):
    return (st.sampled_from(values), "real")


def _sub_schedulers(opt):
    return {"schedulers": (st.just([optim.lr_scheduler.LinearLR(opt, total_iters=2),
                                    optim.lr_scheduler.ExponentialLR(opt, gamma=0.5)]),
                           "module"),
            "milestones": (st.sampled_from([(2,), (1,)]), "ints1"),
            "last_epoch": (st.just(-1), "int")}


SCHEDULER_OPTIONS = [
    ("StepLR", lambda o: {"step_size": (st.integers(1, 3), "int"), "gamma": _real(0.1, 0.5),
                          "last_epoch": (st.just(-1), "int")}, "SGD"),
    ("MultiStepLR", lambda o: {"milestones": (st.sampled_from([(1, 2), (2, 2)]), "ints2"),
                               "gamma": _real(0.1, 2.0)}, "Adam"),
    ("ExponentialLR", lambda o: {"gamma": _real(0.9, 1.1)}, "RMSprop"),
    ("CosineAnnealingLR", lambda o: {"T_max": (st.integers(1, 5), "int"),
                                     "eta_min": _real(0.0, 1e-3)}, "SGD"),
    ("LinearLR", lambda o: {"start_factor": _real(0.25, 1.0), "end_factor": _real(1.0, 0.5),
                            "total_iters": (st.integers(1, 4), "int")}, "Adagrad"),
    ("OneCycleLR", lambda o: {"max_lr": _real(1.0, 0.01),
                              "total_steps": (st.integers(5, 12), "int"),
                              "pct_start": _real(0.3, 0.5),
                              "anneal_strategy": (st.sampled_from(["cos", "linear"]), "choice"),
                              "cycle_momentum": (st.booleans(), "bool"),
                              "base_momentum": _real(0.85), "max_momentum": _real(0.95),
                              "div_factor": _real(25.0), "final_div_factor": _real(1e4),
                              "three_phase": (st.booleans(), "bool"),
                              "last_epoch": (st.just(-1), "int")}, "AdamW"),
    ("SequentialLR", _sub_schedulers, "SGD"),
]


def all_targets():
    targets = []
    for nd in (1, 2):
        for transposed in (False, True):
            for backward in (False, True):
                targets.append(conv_call(nd, transposed, backward))
        for kind in ("max", "avg"):
            for backward in (False, True):
                targets.append(pool_call(nd, kind, backward))
        for backward in (False, True):
            targets.append(unpool_call(nd, backward))
    for name in ("upsample_nearest1d", "upsample_nearest2d", "upsample_bilinear2d"):
        for backward in (False, True):
            targets.append(upsample_call(name, backward))
    for name in ("pixel_shuffle", "pixel_unshuffle"):
        for backward in (False, True):
            targets.append(shuffle_call(name, backward))
    for nd in (1, 2):
        targets.append(layer_call(f"Conv{nd}d", _conv_layer_args(nd, False)))
        targets.append(layer_call(f"ConvTranspose{nd}d", _conv_layer_args(nd, True)))
        for kind in ("Max", "Avg"):
            targets.append(layer_call(f"{kind}Pool{nd}d", _pool_layer_args(nd, kind)))
        targets.append(unpool_layer_call(nd))
    targets.append(layer_call("Upsample", _upsample_layer_args))
    for name in ("PixelShuffle", "PixelUnshuffle"):
        targets.append(layer_call(name, _shuffle_layer_args(name)))
    targets.append(layer_call("Linear", _linear_args))
    targets.append(layer_call("Flatten", _plain_args(
        {"start_dim": (st.sampled_from([0, 1]), "int"), "end_dim": (st.sampled_from([-1]), "int")})))
    targets.append(layer_call("Permute", _permute_args))
    for name in ("ReLU", "Sigmoid", "Tanh", "Identity"):
        targets.append(layer_call(name, _plain_args({})))
    targets.append(layer_call("LeakyReLU", _plain_args(
        {"negative_slope": (st.sampled_from([0.01, 0.2]), "real")})))
    targets.append(layer_call("Dropout", _plain_args({"p": (st.sampled_from([0.0, 0.5]), "real")})))
    targets.append(embedding_call())
    targets.append(container_call("Sequential"))
    targets.append(container_call("Concat"))
    for name in ("MSELoss", "L1Loss", "CrossEntropyLoss"):
        targets.append(loss_call(name))
    for name in ("SGD", "Adam"):
        targets.append(optimizer_call(name))
    targets.append(trainer_call())
    # issue 14: normalization layers
    for nd in (1, 2, 3):
        targets.append(layer_call(f"BatchNorm{nd}d", _norm_args("batch", nd)))
        targets.append(layer_call(f"InstanceNorm{nd}d", _norm_args("instance", nd)))
    targets.append(layer_call("GroupNorm", _group_norm_args))
    targets.append(layer_call("LayerNorm", _layer_norm_args))
    # issue 14: weights in and out
    targets.append(weights_call("save"))
    targets.append(weights_call("load"))
    # issue 13: fold / unfold
    for name in ("unfold", "fold"):
        for backward in (False, True):
            targets.append(block_call(name, backward))
        targets.append(layer_call(name.capitalize(), _block_layer_args(name)))
    # issue 13: adaptive pooling
    for nd in (1, 2, 3):
        for kind in ("avg", "max"):
            for backward in (False, True):
                targets.append(adaptive_call(nd, kind, backward))
            targets.append(adaptive_layer_call(nd, kind.capitalize()))


    # issue 14: activations, channel dropout, init, clipping
    targets.append(layer_call("PReLU", _prelu_args))
    targets.append(layer_call("ELU", _plain_args({"alpha": (st.sampled_from([1.0, 0.5]), "real")})))
    targets.append(layer_call("GELU", _plain_args(
        {"approximate": (st.sampled_from(["none", "tanh"]), "choice")})))
    targets.append(layer_call("Softplus", _plain_args(
        {"beta": (st.sampled_from([1.0, 2.0]), "real"),
         "threshold": (st.sampled_from([20.0, 1.0]), "real")})))
    targets.append(layer_call("Hardtanh", _plain_args(
        {"min_val": (st.sampled_from([-1.0, -2.0]), "real"),
         "max_val": (st.sampled_from([1.0, 0.5]), "real")})))
    for spatial in (1, 2, 3):
        targets.append(layer_call(f"Dropout{spatial}d", _channel_dropout_args(spatial)))
    for name in ("uniform_", "normal_", "constant_", "xavier_uniform_", "xavier_normal_",
                 "kaiming_uniform_", "kaiming_normal_", "orthogonal_"):
        targets.append(init_call(name))
    for name in ("clip_grad_norm_", "clip_grad_value_"):
        targets.append(clip_call(name))
    # issue 13: padding
    for backward in (False, True):
        targets.append(pad_call(backward))
    for kind in ("Reflection", "Replication", "Zero", "Circular", "Constant"):
        for nd in (1, 2, 3):
            targets.append(layer_call(f"{kind}Pad{nd}d", _padding_layer_args(kind, nd)))
    for nd in (1, 2):
        for transposed in (False, True):
            name = f"ConvTranspose{nd}d" if transposed else f"Conv{nd}d"
            targets.append(layer_call(name, _conv_padding_mode_args(nd, transposed))._replace(
                name=f"nn.{name}(padding_mode)"))
    # issue 14: losses
    for name in ("NLLLoss", "BCELoss", "BCEWithLogitsLoss", "SmoothL1Loss", "HuberLoss",
                 "KLDivLoss", "CrossEntropyLoss"):
        targets.append(loss_reduction_call(name, "" if name != "CrossEntropyLoss" else "[options]"))
    for name in ("MSELoss", "L1Loss", "CrossEntropyLoss"):
        targets.append(loss_reduction_call(name, "[none]"))
    # issue 14: optimizers and schedulers
    targets.append(more_optimizer_call("AdamW", {
        "lr": _real(1e-3, 0.1), "betas": (st.just((0.9, 0.999)), "betas"),
        "eps": _real(1e-8), "weight_decay": _real(1e-2, 0.0),
        "amsgrad": (st.booleans(), "bool")}))
    targets.append(more_optimizer_call("RMSprop", {
        "lr": _real(1e-2), "alpha": _real(0.99, 0.5), "eps": _real(1e-8),
        "weight_decay": _real(0.0, 1e-4), "momentum": _real(0.0, 0.9),
        "centered": (st.booleans(), "bool")}))
    targets.append(more_optimizer_call("Adagrad", {
        "lr": _real(1e-2), "lr_decay": _real(0.0, 0.1), "weight_decay": _real(0.0, 1e-4),
        "initial_accumulator_value": _real(0.0, 0.1), "eps": _real(1e-10)}))
    targets.append(param_groups_call())
    for name, options, optimizer in SCHEDULER_OPTIONS:
        targets.append(scheduler_call(name, options, optimizer))
    targets.append(scheduler_call("ReduceLROnPlateau", lambda o: {
        "mode": (st.sampled_from(["min", "max"]), "choice"), "factor": _real(0.1, 0.5),
        "patience": (st.integers(0, 2), "int"), "threshold": _real(1e-4),
        "threshold_mode": (st.sampled_from(["rel", "abs"]), "choice"),
        "cooldown": (st.integers(0, 1), "int"), "min_lr": _real(0.0, 1e-3),
        "eps": _real(1e-8)}, metric=True))
    # issue 13: transposed-conv output sizes
    for nd in (1, 2):
        for same in (False, True):
            for backward in (False, True):
                targets.append(tsize_call(nd, backward, same))
            targets.append(tsize_layer_call(nd, same))


    # issue 13: interpolate
    targets += _interpolate_targets()


    # issue 13: the 3-D family
    for transposed in (False, True):
        for backward in (False, True):
            targets.append(conv_call(3, transposed, backward))
        name = "ConvTranspose3d" if transposed else "Conv3d"
        targets.append(layer_call(name, _conv_layer_args(3, transposed)))
        targets.append(layer_call(name, _conv_padding_mode_args(3, transposed))._replace(
            name=f"nn.{name}(padding_mode)"))
    for kind in ("max", "avg"):
        for backward in (False, True):
            targets.append(pool_call(3, kind, backward))
        targets.append(layer_call(f"{kind.capitalize()}Pool3d", _pool_layer_args(3, kind.capitalize())))
    for backward in (False, True):
        targets.append(unpool_call(3, backward))
    targets.append(unpool_layer_call(3))
    for name in ("upsample_nearest3d", "upsample_trilinear3d"):
        for backward in (False, True):
            targets.append(upsample_call(name, backward))
    targets.append(layer_call("Upsample", _upsample3d_layer_args)._replace(name="nn.Upsample(5-D)"))
    return targets


def _norm_args(kind, nd):
    """BatchNorm/InstanceNorm: a batch of at least 2 (or 2 positions) so training works."""
    def make(draw):
        dtype = _dtype(draw)
        c = draw(st.integers(1, 3))
        ctor = {"num_features": Arg(c, "int"), "eps": Arg(draw(st.sampled_from([1e-5, 0.1])), "real"),
                "momentum": Arg(draw(st.sampled_from([0.1, 0.5])), "real"),
                "affine": Arg(draw(st.booleans()), "bool"),
                "track_running_stats": Arg(draw(st.booleans()), "bool"),
                "bias": Arg(draw(st.booleans()), "bool"), "dtype": Arg(dtype, "choice")}
        ndim = 2 + nd if not (kind == "batch" and nd == 1 and draw(st.booleans())) else 2
        space = tuple(draw(st.integers(1, 3)) for _ in range(ndim - 2))
        if kind == "instance":
            space = (space[0] + 1,) + space[1:]
        return ctor, _rand(draw, (draw(st.integers(2, 3)), c) + space, dtype)
    return make


def _group_norm_args(draw):
    dtype = _dtype(draw)
    g = draw(st.integers(1, 3))
    c = g * draw(st.integers(1, 2))
    ctor = {"num_groups": Arg(g, "int"), "num_channels": Arg(c, "int"),
            "eps": Arg(1e-5, "real"), "affine": Arg(draw(st.booleans()), "bool"),
            "bias": Arg(draw(st.booleans()), "bool"), "dtype": Arg(dtype, "choice")}
    shape = (draw(st.integers(1, 2)), c) + tuple(draw(st.integers(1, 3))
                                                 for _ in range(draw(st.integers(0, 2))))
    return ctor, _rand(draw, shape, dtype)


def _layer_norm_args(draw):
    dtype = _dtype(draw)
    shape = tuple(draw(st.integers(1, 3)) for _ in range(draw(st.integers(1, 4))))
    k = draw(st.integers(1, len(shape)))
    normalized = shape[len(shape) - k:]
    ctor = {"normalized_shape": Arg(normalized if k > 1 or draw(st.booleans()) else normalized[0],
                                    f"ints{k}" if k > 1 else "int"),
            "eps": Arg(1e-5, "real"), "elementwise_affine": Arg(draw(st.booleans()), "bool"),
            "bias": Arg(draw(st.booleans()), "bool"), "dtype": Arg(dtype, "choice")}
    return ctor, _rand(draw, shape, dtype)


def weights_call(which):
    """nn.save_weights then nn.load_weights into the model, in a fresh temporary
    directory; ``which`` names the target (the perturbed path reaches save_weights
    first, and load_weights through the file it names)."""
    import tempfile

    def build(draw):
        dtype = _dtype(draw)
        model = nn.Sequential(nn.Linear(3, 2, dtype=dtype, rng=0), nn.BatchNorm1d(2).to(dtype))
        name = "w" + draw(st.sampled_from([".npz", ".safetensors"]))
        return {"weights": Arg(model, "module"), "path": Arg(name, "path")}

    def run(a):
        with tempfile.TemporaryDirectory() as tmp:
            path = a["path"]
            if isinstance(path, str) and "\0" not in path:
                path = os.path.join(tmp, path)
            if which == "load":
                if isinstance(path, str) and path.endswith((".npz", ".safetensors")):
                    nn.save_weights(nn.Linear(3, 2, rng=0), path)
                return nn.load_weights(path)
            saved = nn.save_weights(a["weights"], path)
            state = nn.load_weights(saved)
            if isinstance(a["weights"], nn.Module):
                a["weights"].load_state_dict(state)
            return state

    return Target(f"nn.{which}_weights", build, run)


# --- issue 13: fold / unfold ---

def _block_geometry(draw):
    """Block options (kernel, dilation, padding, stride), an image size with >= 1 block per
    axis, and the block counts."""
    k = [draw(st.integers(1, 3)) for _ in range(2)]
    d = [draw(st.integers(1, 2)) for _ in range(2)]
    p = [draw(st.integers(0, 2)) for _ in range(2)]
    s = [draw(st.integers(1, 3)) for _ in range(2)]
    size = [max(1, di * (ki - 1) + 1 - 2 * pi) + draw(st.integers(0, 3))
            for ki, di, pi in zip(k, d, p)]
    blocks = [(n + 2 * pi - di * (ki - 1) - 1) // si + 1
              for n, ki, di, pi, si in zip(size, k, d, p, s)]
    return k, d, p, s, tuple(size), blocks


def _block_options(draw, k, d, p, s):
    return {"kernel_size": Arg(_tuple_or_int(draw, k), "ints2"),
            "dilation": Arg(_tuple_or_int(draw, d), "ints2"),
            "padding": Arg(_tuple_or_int(draw, p), "ints2"),
            "stride": Arg(_tuple_or_int(draw, s), "ints2")}


def block_call(name, backward):
    """unfold, fold and their backwards: images (N, C, H, W) and columns (N, C*kH*kW, L)."""
    fn = getattr(deconv, name + ("_backward" if backward else ""))

    def build(draw):
        dtype = _dtype(draw)
        k, d, p, s, size, blocks = _block_geometry(draw)
        N, C = draw(st.integers(1, 2)), draw(st.integers(1, 3))
        image = (N, C) + size
        columns = (N, C * k[0] * k[1], blocks[0] * blocks[1])
        opts = _block_options(draw, k, d, p, s)
        takes_image = (name == "unfold") != backward
        array = _rand(draw, image if takes_image else columns, dtype)
        args = {("grad_output" if backward else "x"): Arg(array, "array")}
        if name == "fold" and not backward:
            args["output_size"] = Arg(_tuple_or_int(draw, list(size)), "size2")
        if name == "unfold" and backward:
            args["input_shape"] = Arg(image, "shape")
        return {**args, **opts}

    def run(a):
        first = a.pop("grad_output" if backward else "x")
        if name == "fold" and not backward:
            return fn(first, a.pop("output_size"), **a)
        if name == "unfold" and backward:
            return fn(first, a.pop("input_shape"), a.pop("kernel_size"), **a)
        return fn(first, a.pop("kernel_size"), **a)

    return Target(fn.__name__, build, run)


def _block_layer_args(name):
    def make(draw):
        dtype = _dtype(draw)
        k, d, p, s, size, blocks = _block_geometry(draw)
        ctor = _block_options(draw, k, d, p, s)
        C = draw(st.integers(1, 3))
        if name == "fold":
            ctor = {"output_size": Arg(_tuple_or_int(draw, list(size)), "size2"), **ctor}
            x = _rand(draw, (1, C * k[0] * k[1], blocks[0] * blocks[1]), dtype)
        else:
            x = _rand(draw, (1, C) + size, dtype)
        return ctor, x
    return make


# --- issue 13: transposed-conv output sizes ---

def _tsize_geometry(draw, nd, same):
    """A transposed conv's geometry and a valid output: with ``same``, stride 1 and
    padding 'same' (the output has the input's size); else an ``output_size``
    drawn inside [smallest, smallest + stride - 1] per axis."""
    k = [draw(st.integers(1, 3)) for _ in range(nd)]
    d = [draw(st.integers(1, 2)) for _ in range(nd)]
    if same:
        size = [draw(st.integers(1, 4)) for _ in range(nd)]
        return k, [1] * nd, d, "same", size, size
    s = [draw(st.integers(1, 3)) for _ in range(nd)]
    p = [draw(st.integers(0, 2)) for _ in range(nd)]
    # the smallest output (n - 1) s - 2 p + d (k - 1) + 1 must be >= 1
    size = [max(1, -(-(2 * pi - di * (ki - 1)) // si) + 1) + draw(st.integers(0, 2))
            for ki, si, di, pi in zip(k, s, d, p)]
    out = [(n - 1) * si - 2 * pi + di * (ki - 1) + 1 + draw(st.integers(0, si - 1))
           for n, ki, si, di, pi in zip(size, k, s, d, p)]
    return k, s, d, p, size, out


def _tsize_options(draw, nd, same, k, s, d, p, N, c_out, out):
    ints = f"ints{nd}"
    opts = {"stride": Arg(_tuple_or_int(draw, s), ints),
            "padding": Arg("same", "choice") if same else Arg(_tuple_or_int(draw, p), ints),
            "dilation": Arg(_tuple_or_int(draw, d), ints)}
    if not same:
        if draw(st.booleans()):
            opts["output_size"] = Arg((N, c_out) + tuple(out), "shape")
        else:
            opts["output_size"] = Arg(list(out) if draw(st.booleans()) else tuple(out), f"size{nd}")
    return opts


def tsize_call(nd, backward, same):
    """conv_transpose{1,2}d (and backward) given output_size, or with padding='same'."""
    fn = getattr(deconv, f"conv_transpose{nd}d" + ("_backward" if backward else ""))

    def build(draw):
        dtype = _dtype(draw)
        N, G = draw(st.integers(1, 2)), draw(st.integers(1, 2))
        c_in_g, c_out_g = draw(st.integers(1, 3)), draw(st.integers(1, 3))
        k, s, d, p, size, out = _tsize_geometry(draw, nd, same)
        args = {}
        if backward:
            args["grad_output"] = Arg(_rand(draw, (N, G * c_out_g) + tuple(out), dtype), "array")
        args["x"] = Arg(_rand(draw, (N, G * c_in_g) + tuple(size), dtype), "array")
        args["weight"] = Arg(_rand(draw, (G * c_in_g, c_out_g) + tuple(k), dtype), "array")
        if not backward:
            bias = _rand(draw, (G * c_out_g,), dtype) if draw(st.booleans()) else None
            args["bias"] = Arg(bias, "bias")
        args.update(_tsize_options(draw, nd, same, k, s, d, p, N, G * c_out_g, out))
        args["groups"] = Arg(G, "int")
        return args

    def run(a):
        first = a.pop("grad_output") if backward else None
        x, w = a.pop("x"), a.pop("weight")
        if backward:
            return fn(first, x, w, **a)
        return fn(x, w, a.pop("bias"), **a)

    tag = "(padding='same')" if same else "(output_size)"
    return Target(fn.__name__ + tag, build, run)


def tsize_layer_call(nd, same):
    """nn.ConvTranspose{1,2}d: forward(x, output_size) or padding='same', then backward."""
    cls = getattr(nn, f"ConvTranspose{nd}d")

    def build(draw):
        dtype = _dtype(draw)
        N, G = draw(st.integers(1, 2)), draw(st.integers(1, 2))
        c_in, c_out = G * draw(st.integers(1, 3)), G * draw(st.integers(1, 3))
        k, s, d, p, size, out = _tsize_geometry(draw, nd, same)
        opts = _tsize_options(draw, nd, same, k, s, d, p, N, c_out, out)
        output_size = opts.pop("output_size", None)
        ctor = {"in_channels": Arg(c_in, "int"), "out_channels": Arg(c_out, "int"),
                "kernel_size": Arg(_tuple_or_int(draw, k), f"ints{nd}"), **opts,
                "groups": Arg(G, "int"), "bias": Arg(draw(st.booleans()), "bool"),
                "dtype": Arg(dtype, "choice")}
        if same:
            ctor["padding_mode"] = Arg(draw(st.sampled_from(["zeros", "replicate"])), "choice")
        x = _rand(draw, (N, c_in) + tuple(size), dtype)
        args = dict(ctor, x=Arg(x, "array"))
        if output_size is not None:
            args["output_size"] = output_size
        layer = cls(**{n: v.value for n, v in ctor.items()})
        y = layer(x, None if output_size is None else output_size.value)
        args["grad_output"] = Arg(Follow(_rand(draw, y.shape, y.dtype)), "array")
        return args

    def run(a):
        x, g = a.pop("x"), a.pop("grad_output")
        output_size = a.pop("output_size", None)
        layer = cls(**a)
        return layer.backward(_grad(g, layer(x, output_size)))

    tag = "(padding='same')" if same else "(output_size)"
    return Target(f"nn.ConvTranspose{nd}d{tag}", build, run)


# issue 13: interpolate
_INTERP_RANK = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}


def _interp_options(draw, spatial_choices=(1, 2, 3)):
    """(nd, the interpolate keyword Args) of a valid call in a random mode."""
    mode = draw(st.sampled_from(["nearest", "nearest-exact", "linear", "bilinear", "bicubic",
                                 "trilinear", "area"]))
    nd = _INTERP_RANK.get(mode) or draw(st.sampled_from(spatial_choices))
    opts = {"mode": Arg(mode, "choice")}
    if draw(st.booleans()):
        opts["size"] = Arg(tuple(draw(st.integers(1, 7)) for _ in range(nd)), f"size{nd}")
        opts["scale_factor"] = Arg(None, f"scale{nd}")
        opts["recompute_scale_factor"] = Arg(None, "bool")
    else:
        opts["size"] = Arg(None, f"size{nd}")
        opts["scale_factor"] = Arg(draw(st.sampled_from([2, 2.0, 1.5, 1, 3])), f"scale{nd}")
        opts["recompute_scale_factor"] = Arg(draw(st.sampled_from([None, True, False])), "bool")
    interpolating = mode in _INTERP_RANK
    opts["align_corners"] = Arg(draw(st.booleans()) if interpolating else None, "bool")
    return nd, opts


def interpolate_call(backward):
    fn = deconv.interpolate_backward if backward else deconv.interpolate

    def build(draw):
        dtype = _dtype(draw)
        nd, opts = _interp_options(draw)
        mode = opts["mode"].value
        opts["antialias"] = Arg(mode in ("bilinear", "bicubic") and draw(st.booleans()), "bool")
        shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3))) + tuple(
            draw(st.integers(1, 5)) for _ in range(nd))
        x = _rand(draw, shape, dtype)
        if not backward:
            return {"x": Arg(x, "array"), **opts}
        y = deconv.interpolate(x, **{n: v.value for n, v in opts.items()})
        return {"grad_output": Arg(_rand(draw, y.shape, dtype), "array"),
                "input_shape": Arg(shape, "shape"), **opts}

    def run(a):
        if backward:
            return fn(a.pop("grad_output"), a.pop("input_shape"), **a)
        return fn(a.pop("x"), **a)

    return Target(fn.__name__, build, run)


def _upsample_mode_layer_args(draw):
    nd, opts = _interp_options(draw)
    x = _rand(draw, (1, draw(st.integers(1, 2))) + tuple(draw(st.integers(1, 4)) for _ in range(nd)),
              _dtype(draw))
    ctor = {n: v for n, v in opts.items() if v.value is not None}
    return ctor, x


def _interpolate_targets():
    targets = [interpolate_call(backward) for backward in (False, True)]
    targets.append(layer_call("Upsample", _upsample_mode_layer_args)._replace(
        name="nn.Upsample(modes)"))
    return targets


# --- issue 13: the 3-D family ---

def _upsample3d_layer_args(draw):
    """Upsample on (N, C, D, H, W): nearest or trilinear."""
    mode = draw(st.sampled_from(["nearest", "trilinear"]))
    if draw(st.booleans()):
        ctor = {"size": Arg(tuple(draw(st.integers(1, 5)) for _ in range(3)), "size3")}
    else:
        ctor = {"scale_factor": Arg(draw(st.sampled_from([2, 1.5, 1])), "scale3")}
    ctor["mode"] = Arg(mode, "choice")
    if mode == "trilinear":
        ctor["align_corners"] = Arg(draw(st.booleans()), "bool")
    x = _rand(draw, (1, 2) + tuple(draw(st.integers(1, 3)) for _ in range(3)), _dtype(draw))
    return ctor, x
