"""Record PyTorch (CPU, float64) results of the 3-D family for deconv's reference tests.

Run from the repository root with a Python that has torch installed:

    python tests/make_3d_fixtures.py

Writes ``tests/data/3d_cases.npz``. Case ``cNNN`` holds ``cNNN/config`` (JSON:
op and keyword arguments), the inputs (``x``, ``weight``, ``bias``,
``indices`` for max_unpool3d, ``grad_output``) and torch's results (``out``,
``out_indices`` for max_pool3d, ``grad_x``, ``grad_weight``, ``grad_bias``).
It imports torch and numpy only (never deconv): an independent record.
"""

import json
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_PATH = os.path.join(HERE, "data", "3d_cases.npz")

CASES = [
    dict(op="conv3d", shape=[2, 2, 4, 5, 4], wshape=[3, 2, 2, 3, 2], kwargs={}),
    dict(op="conv3d", shape=[1, 4, 7, 6, 5], wshape=[4, 2, 3, 2, 3],
         kwargs=dict(stride=[2, 1, 2], padding=[1, 0, 2], dilation=[2, 1, 1], groups=2)),
    dict(op="conv3d", shape=[1, 2, 5, 4, 6], wshape=[2, 2, 2, 3, 4], kwargs=dict(padding="same")),
    dict(op="conv3d", shape=[2, 3, 5, 5, 5], wshape=[3, 1, 3, 3, 3],
         kwargs=dict(padding="valid", groups=3, stride=3)),
    dict(op="conv_transpose3d", shape=[2, 2, 3, 3, 2], wshape=[2, 3, 3, 2, 2],
         kwargs=dict(stride=2, padding=1, output_padding=1)),
    dict(op="conv_transpose3d", shape=[1, 4, 2, 3, 3], wshape=[4, 1, 2, 3, 2],
         kwargs=dict(stride=[3, 1, 2], padding=[0, 1, 1], output_padding=[2, 0, 1], groups=2,
                     dilation=[1, 2, 1])),
    dict(op="max_pool3d", shape=[2, 2, 5, 6, 5], kwargs=dict(kernel_size=2)),
    dict(op="max_pool3d", shape=[1, 2, 7, 6, 7],
         kwargs=dict(kernel_size=[3, 2, 3], stride=[2, 2, 3], padding=1, dilation=[1, 2, 1],
                     ceil_mode=True)),
    dict(op="avg_pool3d", shape=[2, 2, 5, 6, 5], kwargs=dict(kernel_size=3, stride=2, padding=1)),
    dict(op="avg_pool3d", shape=[1, 2, 6, 5, 7],
         kwargs=dict(kernel_size=[2, 3, 3], stride=[2, 2, 3], padding=[1, 1, 0], ceil_mode=True,
                     count_include_pad=False)),
    dict(op="avg_pool3d", shape=[1, 1, 4, 5, 5],
         kwargs=dict(kernel_size=2, padding=1, ceil_mode=True, divisor_override=3)),
    dict(op="max_unpool3d", shape=[2, 2, 4, 6, 4], kwargs=dict(kernel_size=2)),
    dict(op="max_unpool3d", shape=[1, 2, 7, 7, 6],
         kwargs=dict(kernel_size=3, stride=3, padding=1, output_size=[7, 7, 6])),
    dict(op="upsample_nearest3d", shape=[1, 2, 2, 3, 4], kwargs=dict(scale_factor=2)),
    dict(op="upsample_nearest3d", shape=[2, 1, 3, 4, 5], kwargs=dict(size=[5, 7, 3])),
    dict(op="upsample_trilinear3d", shape=[1, 2, 2, 3, 4],
         kwargs=dict(scale_factor=2, align_corners=False)),
    dict(op="upsample_trilinear3d", shape=[2, 1, 3, 4, 2],
         kwargs=dict(size=[5, 6, 5], align_corners=True)),
    dict(op="upsample_trilinear3d", shape=[1, 1, 4, 3, 5],
         kwargs=dict(scale_factor=[1.5, 0.7, 2.3], align_corners=False)),
]


def _t(v):
    return tuple(v) if isinstance(v, list) else v


def main():
    import torch
    import torch.nn.functional as F

    torch.manual_seed(0)
    rng = np.random.default_rng(1300)
    arrays = {}
    for i, case in enumerate(CASES):
        key = f"c{i:03d}"
        op, kw = case["op"], {k: _t(v) for k, v in case["kwargs"].items()}
        x_np = rng.standard_normal(case["shape"])
        x = torch.tensor(x_np, requires_grad=True)
        rec = dict(x=x_np)
        leaves = [("x", x)]
        if op.startswith("conv"):
            w_np = rng.standard_normal(case["wshape"])
            b_np = rng.standard_normal(case["wshape"][1 if "transpose" in op else 0]
                                       * (kw.get("groups", 1) if "transpose" in op else 1))
            w = torch.tensor(w_np, requires_grad=True)
            b = torch.tensor(b_np, requires_grad=True)
            out = getattr(F, op)(x, w, b, **kw)
            rec.update(weight=w_np, bias=b_np)
            leaves += [("weight", w), ("bias", b)]
        elif op == "max_pool3d":
            out, idx = F.max_pool3d(x, return_indices=True, **kw)
            rec["out_indices"] = idx.numpy()
        elif op == "avg_pool3d":
            out = F.avg_pool3d(x, **kw)
        elif op == "max_unpool3d":
            pool_kw = {k: v for k, v in kw.items() if k != "output_size"}
            pooled, idx = F.max_pool3d(x.detach(), return_indices=True, **pool_kw)
            v_np = rng.standard_normal(pooled.shape)
            v = torch.tensor(v_np, requires_grad=True)
            out = F.max_unpool3d(v, idx, **kw)
            rec.update(x=v_np, indices=idx.numpy())
            leaves = [("x", v)]
        else:
            mode = "nearest" if op == "upsample_nearest3d" else "trilinear"
            out = F.interpolate(x, mode=mode, **kw)
        gy_np = rng.standard_normal(tuple(out.shape))
        out.backward(torch.tensor(gy_np))
        rec.update(out=out.detach().numpy(), grad_output=gy_np)
        for name, leaf in leaves:
            rec[f"grad_{name}"] = leaf.grad.numpy()
        arrays[f"{key}/config"] = np.array(json.dumps(case))
        for name, value in rec.items():
            arrays[f"{key}/{name}"] = np.asarray(value)
    np.savez_compressed(OUT_PATH, **arrays)
    print(f"wrote {len(CASES)} cases to {OUT_PATH} ({os.path.getsize(OUT_PATH)} bytes)")


if __name__ == "__main__":
    main()
