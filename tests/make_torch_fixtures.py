"""Record PyTorch (CPU, float64) outputs and gradients for deconv's reference tests.

Run from the repository root with a Python that has torch installed:

    python tests/make_torch_fixtures.py

Writes ``tests/data/torch_cases.npz``.  For every case ``cNNN`` the archive
holds ``cNNN/config`` (a JSON string: op, kwargs, ...) and float64/int64
arrays ``cNNN/<name>``:

* inputs: ``x`` and, depending on the op, ``weight``, ``bias``, ``indices``
  (max_unpool input indices) and ``grad_output`` (random upstream gradient);
* torch results: ``out``, ``out_indices`` (max pool), ``grad_x``,
  ``grad_weight``, ``grad_bias`` (via autograd).

This script depends only on torch and numpy (never on deconv), so the
fixture is an independent record of PyTorch's behaviour.
"""

import json
import warnings
import os

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_PATH = os.path.join(HERE, "data", "torch_cases.npz")


def _t(v):
    """JSON lists -> tuples for torch keyword arguments."""
    return tuple(v) if isinstance(v, list) else v


# --------------------------------------------------------------------------
# case list
# --------------------------------------------------------------------------

def conv(op, shape, wshape, bias=True, **kw):
    return dict(op=op, shape=shape, wshape=wshape, bias=bias, kwargs=kw)


def pool(op, shape, data="randn", **kw):
    return dict(op=op, shape=shape, data=data, kwargs=kw)


CASES = [
    # ---- conv1d: (N, C_in, L), weight (C_out, C_in/groups, k)
    conv("conv1d", [2, 2, 10], [3, 2, 3]),
    conv("conv1d", [2, 3, 11], [4, 3, 3], stride=2, padding=1, dilation=2),
    conv("conv1d", [1, 4, 12], [6, 2, 2], stride=3, groups=2),            # tail untouched
    conv("conv1d", [2, 2, 9], [3, 2, 4], padding="same"),                 # asymmetric same
    conv("conv1d", [1, 4, 10], [4, 2, 3], padding="same", dilation=3, groups=2),
    conv("conv1d", [2, 3, 8], [6, 1, 3], bias=False, padding="valid", groups=3),
    # ---- conv2d
    conv("conv2d", [2, 3, 6, 7], [4, 3, 3, 3], padding=1),
    conv("conv2d", [1, 2, 9, 10], [3, 2, 3, 2], stride=[2, 3], padding=[1, 0], dilation=[1, 2]),
    conv("conv2d", [2, 4, 9, 8], [2, 2, 2, 2], stride=3, groups=2),       # tail untouched
    conv("conv2d", [1, 2, 7, 8], [3, 2, 4, 2], padding="same", dilation=[1, 2]),
    conv("conv2d", [1, 3, 6, 9], [2, 3, 2, 3], padding="same", dilation=3),
    conv("conv2d", [2, 4, 8, 8], [8, 1, 3, 3], stride=2, padding=2, groups=4),
    conv("conv2d", [1, 3, 5, 6], [2, 3, 1, 1], bias=False, stride=2),
    conv("conv2d", [1, 2, 7, 9], [3, 2, 3, 5], padding="valid"),
    # ---- conv_transpose1d: weight (C_in, C_out/groups, k)
    conv("conv_transpose1d", [2, 3, 5], [3, 2, 3], stride=2, padding=1, output_padding=1),
    conv("conv_transpose1d", [1, 4, 6], [4, 3, 3], stride=3, padding=2, output_padding=2,
         groups=2, dilation=2),
    conv("conv_transpose1d", [2, 2, 7], [2, 3, 4]),
    conv("conv_transpose1d", [1, 2, 4], [2, 2, 2], stride=3, output_padding=2),  # op > p
    conv("conv_transpose1d", [2, 3, 5], [3, 1, 3], bias=False, stride=2, padding=1,
         output_padding=2, dilation=3),                                      # op > p, op < d
    # ---- conv_transpose2d
    conv("conv_transpose2d", [2, 3, 4, 5], [3, 2, 3, 3], stride=2, padding=1, output_padding=1),
    conv("conv_transpose2d", [1, 4, 4, 3], [4, 2, 3, 3], stride=[2, 3], padding=[1, 2],
         output_padding=[1, 2], dilation=[2, 1], groups=2),
    conv("conv_transpose2d", [2, 2, 5, 4], [2, 3, 2, 4]),
    conv("conv_transpose2d", [1, 3, 4, 4], [3, 2, 3, 2], stride=2, output_padding=[0, 1], groups=3),
    conv("conv_transpose2d", [1, 2, 5, 5], [2, 2, 3, 3], stride=2, padding=3, output_padding=1,
         dilation=2),
    conv("conv_transpose2d", [2, 4, 3, 5], [4, 3, 2, 3], bias=False, stride=[1, 2],
         padding=[0, 1], groups=2),
    # ---- max_pool1d
    pool("max_pool1d", [2, 3, 11], kernel_size=3, stride=2),
    pool("max_pool1d", [2, 2, 5], kernel_size=2, stride=2, padding=1, ceil_mode=True),   # drop rule
    pool("max_pool1d", [1, 2, 8], kernel_size=3, stride=2, ceil_mode=True),             # window past end
    pool("max_pool1d", [2, 2, 10], kernel_size=3, stride=1, padding=1, dilation=3),
    pool("max_pool1d", [1, 2, 9], data="neginf", kernel_size=3, stride=1, padding=1),
    pool("max_pool1d", [2, 2, 12], data="ties_nan1d", kernel_size=3, stride=2, padding=1),
    # ---- max_pool2d
    pool("max_pool2d", [2, 3, 6, 6], kernel_size=2),
    pool("max_pool2d", [1, 2, 7, 8], kernel_size=3, stride=2, padding=1, ceil_mode=True),
    pool("max_pool2d", [2, 2, 9, 7], kernel_size=[3, 2], stride=[1, 2], padding=[1, 0],
         dilation=[2, 1]),
    pool("max_pool2d", [2, 3, 7, 7], data="ties", kernel_size=3, stride=2, padding=1),
    pool("max_pool2d", [1, 2, 6, 6], data="neginf", kernel_size=3, stride=1, padding=1),
    pool("max_pool2d", [1, 2, 8, 8], data="nan2d", kernel_size=3, stride=2, padding=1),
    pool("max_pool2d", [2, 2, 8, 9], kernel_size=2, stride=3, padding=1, dilation=2, ceil_mode=True),
    # ---- avg_pool1d (divisor_override is recorded through avg_pool2d on (N, C, 1, L))
    pool("avg_pool1d", [2, 3, 9], kernel_size=3, stride=2, padding=1),
    pool("avg_pool1d", [2, 2, 10], kernel_size=3, stride=2, padding=1, ceil_mode=True,
         count_include_pad=False),
    pool("avg_pool1d", [1, 2, 8], kernel_size=3, stride=2, padding=1, divisor_override=2),
    pool("avg_pool1d", [1, 3, 8], kernel_size=3, stride=2, ceil_mode=True),            # window past L+p
    pool("avg_pool1d", [2, 2, 9], kernel_size=4, stride=3, padding=2, ceil_mode=True),
    # ---- avg_pool2d
    pool("avg_pool2d", [2, 3, 6, 6], kernel_size=2),
    pool("avg_pool2d", [1, 2, 8, 7], kernel_size=3, stride=2, padding=1, ceil_mode=True),
    pool("avg_pool2d", [1, 2, 8, 7], kernel_size=3, stride=2, padding=1, ceil_mode=True,
         count_include_pad=False),
    pool("avg_pool2d", [2, 2, 7, 6], kernel_size=[3, 2], stride=[2, 1], padding=1, ceil_mode=True,
         divisor_override=3),
    pool("avg_pool2d", [1, 3, 6, 10], kernel_size=[2, 3], stride=[1, 3], padding=1,
         count_include_pad=False),
    pool("avg_pool2d", [1, 2, 8, 9], kernel_size=[3, 4], stride=[2, 3], padding=[0, 2],
         ceil_mode=True),
    # ---- max_unpool: indices come from torch max_pool (pool_kwargs) on a random input of
    #      shape pool_shape; the unpool input x is an independent random array (duplicated
    #      indices then carry different values: the last one must win).
    dict(op="max_unpool1d", pool_shape=[2, 3, 10], pool_kwargs=dict(kernel_size=2, stride=2),
         kwargs=dict(kernel_size=2, stride=2)),
    dict(op="max_unpool1d", pool_shape=[2, 2, 11], pool_kwargs=dict(kernel_size=3, stride=1, padding=1),
         kwargs=dict(kernel_size=3, stride=1, padding=1)),
    dict(op="max_unpool1d", pool_shape=[1, 2, 9], pool_kwargs=dict(kernel_size=3, stride=2),
         kwargs=dict(kernel_size=3, stride=2, output_size=[9])),
    dict(op="max_unpool2d", pool_shape=[2, 2, 6, 6], pool_kwargs=dict(kernel_size=2),
         kwargs=dict(kernel_size=2)),
    dict(op="max_unpool2d", pool_shape=[1, 3, 7, 7], pool_kwargs=dict(kernel_size=3, stride=2, padding=1),
         kwargs=dict(kernel_size=3, stride=2, padding=1)),
    dict(op="max_unpool2d", pool_shape=[2, 2, 7, 8], pool_kwargs=dict(kernel_size=2, stride=2),
         kwargs=dict(kernel_size=2, stride=2, output_size=[2, 2, 7, 8])),
    dict(op="max_unpool2d", pool_shape=[1, 2, 6, 7], pool_kwargs=dict(kernel_size=3, stride=1),
         kwargs=dict(kernel_size=3, stride=1, output_size=[6, 7])),
    # ---- nearest
    dict(op="upsample_nearest1d", shape=[2, 2, 5], kwargs=dict(scale_factor=1.7)),
    dict(op="upsample_nearest1d", shape=[1, 3, 10], kwargs=dict(scale_factor=0.6)),
    dict(op="upsample_nearest1d", shape=[2, 2, 5], kwargs=dict(size=7)),
    dict(op="upsample_nearest1d", shape=[1, 2, 10], kwargs=dict(size=3)),
    dict(op="upsample_nearest1d", shape=[1, 2, 10], kwargs=dict(scale_factor=2.05)),   # out == 2*in
    dict(op="upsample_nearest1d", shape=[1, 2, 10], kwargs=dict(scale_factor=1.05)),   # out == in
    dict(op="upsample_nearest1d", shape=[1, 2, 7], kwargs=dict(scale_factor=3.0)),
    dict(op="upsample_nearest2d", shape=[2, 2, 5, 6], kwargs=dict(scale_factor=[1.7, 0.6])),
    dict(op="upsample_nearest2d", shape=[1, 3, 4, 3], kwargs=dict(size=[7, 5])),
    dict(op="upsample_nearest2d", shape=[1, 2, 4, 5], kwargs=dict(scale_factor=2.0)),
    dict(op="upsample_nearest2d", shape=[1, 2, 10, 6], kwargs=dict(scale_factor=[1.05, 2.9])),
    dict(op="upsample_nearest2d", shape=[1, 2, 9, 8], kwargs=dict(size=[4, 3])),
    dict(op="upsample_nearest2d", shape=[1, 2, 10, 7], kwargs=dict(scale_factor=[2.05, 1.7])),  # out == 2*in
    # ---- bilinear
    dict(op="upsample_bilinear2d", shape=[2, 2, 4, 5], kwargs=dict(scale_factor=1.7, align_corners=False)),
    dict(op="upsample_bilinear2d", shape=[1, 2, 4, 3], kwargs=dict(size=[7, 5], align_corners=True)),
    dict(op="upsample_bilinear2d", shape=[1, 3, 7, 9], kwargs=dict(size=[3, 4], align_corners=False)),
    dict(op="upsample_bilinear2d", shape=[1, 2, 8, 7], kwargs=dict(scale_factor=0.6, align_corners=True)),
    dict(op="upsample_bilinear2d", shape=[1, 2, 10, 5], kwargs=dict(scale_factor=[1.05, 2.0],
                                                                   align_corners=False)),
    dict(op="upsample_bilinear2d", shape=[1, 2, 5, 4], kwargs=dict(size=[1, 6], align_corners=True)),
    dict(op="upsample_bilinear2d", shape=[2, 1, 3, 4], kwargs=dict(size=[8, 8], align_corners=False)),
    # ---- pixel shuffle
    dict(op="pixel_shuffle", shape=[2, 8, 3, 4], kwargs=dict(upscale_factor=2)),
    dict(op="pixel_shuffle", shape=[1, 9, 2, 3], kwargs=dict(upscale_factor=3)),
    dict(op="pixel_unshuffle", shape=[2, 2, 4, 6], kwargs=dict(downscale_factor=2)),
    dict(op="pixel_unshuffle", shape=[1, 1, 6, 3], kwargs=dict(downscale_factor=3)),
]


# --------------------------------------------------------------------------
# input generation
# --------------------------------------------------------------------------

def make_pool_input(rng, shape, data):
    x = rng.standard_normal(shape)
    if data == "ties":
        x = rng.integers(0, 3, size=shape).astype(np.float64)
    elif data == "neginf":
        # leading block of -inf so that some windows hold only -inf (+ padding)
        x = rng.integers(-2, 3, size=shape).astype(np.float64)
        x[..., :2] = -np.inf
        if len(shape) == 4:
            x[..., :2, :] = -np.inf
    elif data == "ties_nan1d":
        # integer values (ties) and NaNs at 3 and 9: never two in one window (k3, s2, p1)
        x = rng.integers(0, 3, size=shape).astype(np.float64)
        x[0, 0, 3] = np.nan
        x[1, 1, 9] = np.nan
        x[0, 1, 4] = np.inf
    elif data == "nan2d":
        # NaNs >= 4 apart in each dim: never two in one 3x3 window with stride 2
        x[0, 0, 1, 1] = np.nan
        x[0, 0, 5, 6] = np.nan
        x[0, 1, 3, 2] = np.nan
        x[0, 1, 7, 7] = -np.inf
    return x


def leaf(a):
    return torch.from_numpy(np.ascontiguousarray(a)).requires_grad_(True)


def run_case(i, case):
    rng = np.random.default_rng(1000 + i)
    op, kw = case["op"], case["kwargs"]
    tkw = {k: _t(v) for k, v in kw.items()}
    arrays = {}

    if op.startswith("conv"):
        x = rng.standard_normal(case["shape"])
        w = rng.standard_normal(case["wshape"])
        b = None
        if case["bias"]:
            ch = w.shape[0] if op.startswith("conv1d") or op.startswith("conv2d") \
                else w.shape[1] * kw.get("groups", 1)
            b = rng.standard_normal(ch)
        xt, wt = leaf(x), leaf(w)
        bt = leaf(b) if b is not None else None
        out = getattr(F, op)(xt, wt, bt, **tkw)
        go = rng.standard_normal(tuple(out.shape))
        out.backward(torch.from_numpy(go))
        arrays.update(x=x, weight=w, grad_output=go, out=out.detach().numpy(),
                      grad_x=xt.grad.numpy(), grad_weight=wt.grad.numpy())
        if b is not None:
            arrays.update(bias=b, grad_bias=bt.grad.numpy())

    elif op.startswith("max_pool"):
        x = make_pool_input(rng, case["shape"], case["data"])
        xt = leaf(x)
        out, idx = getattr(F, op)(xt, return_indices=True, **tkw)
        go = rng.standard_normal(tuple(out.shape))
        out.backward(torch.from_numpy(go))
        arrays.update(x=x, grad_output=go, out=out.detach().numpy(), out_indices=idx.numpy(),
                      grad_x=xt.grad.numpy())

    elif op.startswith("avg_pool"):
        x = rng.standard_normal(case["shape"])
        xt = leaf(x)
        if op == "avg_pool1d" and kw.get("divisor_override") is not None:
            # F.avg_pool1d has no divisor_override: use avg_pool2d on (N, C, 1, L)
            k = kw["kernel_size"]
            s = kw.get("stride", k)
            out = F.avg_pool2d(xt[:, :, None, :], (1, k), (1, s), (0, kw.get("padding", 0)),
                               kw.get("ceil_mode", False), kw.get("count_include_pad", True),
                               kw["divisor_override"])[:, :, 0, :]
        else:
            out = getattr(F, op)(xt, **tkw)
        go = rng.standard_normal(tuple(out.shape))
        out.backward(torch.from_numpy(go))
        arrays.update(x=x, grad_output=go, out=out.detach().numpy(), grad_x=xt.grad.numpy())

    elif op.startswith("max_unpool"):
        pool_fn = getattr(F, op.replace("unpool", "pool"))
        p_in = torch.from_numpy(rng.standard_normal(case["pool_shape"]))
        _, idx = pool_fn(p_in, return_indices=True, **case["pool_kwargs"])
        x = rng.standard_normal(tuple(idx.shape))
        xt = leaf(x)
        out = getattr(F, op)(xt, idx, **tkw)
        go = rng.standard_normal(tuple(out.shape))
        out.backward(torch.from_numpy(go))
        arrays.update(x=x, indices=idx.numpy(), grad_output=go, out=out.detach().numpy(),
                      grad_x=xt.grad.numpy())

    elif op.startswith("upsample"):
        x = rng.standard_normal(case["shape"])
        xt = leaf(x)
        mode = "bilinear" if "bilinear" in op else "nearest"
        out = F.interpolate(xt, mode=mode, **tkw)
        go = rng.standard_normal(tuple(out.shape))
        out.backward(torch.from_numpy(go))
        arrays.update(x=x, grad_output=go, out=out.detach().numpy(), grad_x=xt.grad.numpy())

    elif op in ("pixel_shuffle", "pixel_unshuffle"):
        x = rng.standard_normal(case["shape"])
        xt = leaf(x)
        out = getattr(F, op)(xt, *kw.values())
        go = rng.standard_normal(tuple(out.shape))
        out.backward(torch.from_numpy(go))
        arrays.update(x=x, grad_output=go, out=out.detach().numpy(), grad_x=xt.grad.numpy())

    else:
        raise ValueError(op)

    config = dict(case, arrays=sorted(arrays))
    return config, arrays


def main():
    # Single thread: CPU max_unpool parallelises over *all* elements, so with several
    # threads duplicated indices inside one plane are a write race (non-deterministic).
    # Single-threaded, the last duplicate in row-major input order wins.
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", message=".*padding=.same.*")
    torch.manual_seed(0)
    store = {}
    for i, case in enumerate(CASES):
        config, arrays = run_case(i, case)
        key = f"c{i:03d}"
        store[f"{key}/config"] = np.array(json.dumps(config, sort_keys=True))
        for name, a in arrays.items():
            a = np.asarray(a)
            store[f"{key}/{name}"] = a.astype(np.int64 if a.dtype.kind in "iu" else np.float64)
    store["meta"] = np.array(json.dumps(dict(torch=torch.__version__, numpy=np.__version__,
                                            n_cases=len(CASES))))
    os.makedirs(os.path.dirname(OUT_PATH), exist_ok=True)
    np.savez_compressed(OUT_PATH, **store)
    print(f"wrote {len(CASES)} cases to {OUT_PATH} ({os.path.getsize(OUT_PATH)} bytes), "
          f"torch {torch.__version__}")


if __name__ == "__main__":
    main()
