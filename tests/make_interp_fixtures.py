"""Record PyTorch (CPU) ``F.interpolate`` results for deconv's interpolate tests.

Run from the repository root with a Python that has torch installed:

    python tests/make_interp_fixtures.py

Writes ``tests/data/interp_cases.npz``. For every case ``cNNN`` the archive
holds ``cNNN/config`` (a JSON string: the interpolate keyword arguments and
the dtype) and the arrays ``cNNN/x``, ``cNNN/grad_output`` (a random
upstream gradient), ``cNNN/out`` and ``cNNN/grad_x`` (autograd).

This script depends only on torch and numpy (never on deconv), so the
fixture is an independent record of PyTorch's behaviour.
"""

import json
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_PATH = os.path.join(HERE, "data", "interp_cases.npz")


def case(shape, dtype="float64", **kwargs):
    return dict(shape=shape, dtype=dtype, kwargs=kwargs)


CASES = []
for dtype in ("float64", "float32"):
    CASES += [
        # nearest, 1-D / 2-D / 3-D, sizes and scale factors (1.7, 0.6, 2.5 and the 1.1 copy)
        case([2, 2, 5], dtype, size=9, mode="nearest"),
        case([1, 2, 7], dtype, scale_factor=0.6, mode="nearest"),
        case([1, 2, 4, 5], dtype, scale_factor=(1.7, 2.5), mode="nearest"),
        case([1, 2, 3, 4, 5], dtype, size=(5, 7, 3), mode="nearest"),
        case([1, 1, 3, 4, 5], dtype, scale_factor=(2.0, 1.5, 0.7), mode="nearest"),
        case([1, 1, 3, 4, 5], dtype, scale_factor=1.7, mode="nearest", recompute_scale_factor=True),
        # nearest-exact
        case([2, 2, 5], dtype, size=8, mode="nearest-exact"),
        case([1, 2, 7], dtype, scale_factor=0.45, mode="nearest-exact"),
        case([1, 2, 4, 5], dtype, scale_factor=(1.7, 2.5), mode="nearest-exact"),
        case([1, 2, 6, 3], dtype, size=(4, 7), mode="nearest-exact"),
        case([1, 1, 3, 4, 5], dtype, size=(5, 2, 9), mode="nearest-exact"),
        # linear
        case([2, 2, 5], dtype, size=9, mode="linear"),
        case([1, 2, 7], dtype, scale_factor=1.7, mode="linear"),
        case([1, 2, 8], dtype, size=3, mode="linear", align_corners=True),
        case([1, 2, 6], dtype, scale_factor=0.6, mode="linear", align_corners=False),
        case([1, 2, 6], dtype, scale_factor=2.3, mode="linear", recompute_scale_factor=True),
        # bilinear
        case([1, 2, 4, 5], dtype, scale_factor=(1.7, 2.5), mode="bilinear"),
        case([1, 2, 6, 5], dtype, size=(3, 9), mode="bilinear", align_corners=True),
        # trilinear
        case([1, 2, 3, 4, 5], dtype, size=(5, 7, 3), mode="trilinear"),
        case([1, 1, 3, 4, 5], dtype, scale_factor=(2.0, 1.5, 0.7), mode="trilinear"),
        case([1, 1, 4, 3, 5], dtype, size=(2, 6, 4), mode="trilinear", align_corners=True),
        # bicubic
        case([1, 2, 4, 5], dtype, size=(9, 7), mode="bicubic"),
        case([1, 2, 5, 6], dtype, scale_factor=(1.7, 0.6), mode="bicubic"),
        case([1, 2, 5, 6], dtype, size=(8, 3), mode="bicubic", align_corners=True),
        case([1, 1, 3, 3], dtype, size=(1, 5), mode="bicubic"),
        # area
        case([2, 2, 7], dtype, size=3, mode="area"),
        case([1, 2, 5, 7], dtype, scale_factor=(0.5, 1.5), mode="area"),
        case([1, 1, 4, 5, 6], dtype, size=(2, 3, 4), mode="area"),
        # antialias (downsampling, and mixed up/down)
        case([1, 2, 12, 10], dtype, size=(5, 3), mode="bilinear", antialias=True),
        case([1, 2, 9, 8], dtype, scale_factor=(0.4, 1.5), mode="bilinear", antialias=True),
        case([1, 2, 11, 9], dtype, size=(4, 4), mode="bilinear", antialias=True,
             align_corners=True),
        case([1, 2, 12, 10], dtype, size=(5, 3), mode="bicubic", antialias=True),
        case([1, 2, 9, 13], dtype, scale_factor=(0.3, 0.7), mode="bicubic", antialias=True),
        case([1, 1, 8, 7], dtype, size=(3, 12), mode="bicubic", antialias=True,
             align_corners=True),
    ]


def run_case(rng, c):
    import torch
    import torch.nn.functional as F

    x_np = rng.standard_normal(c["shape"]).astype(c["dtype"])
    x = torch.tensor(x_np, requires_grad=True)
    kw = dict(c["kwargs"])
    for k in ("size", "scale_factor"):
        if isinstance(kw.get(k), list):
            kw[k] = tuple(kw[k])
    out = F.interpolate(x, **kw)
    g_np = rng.standard_normal(tuple(out.shape)).astype(c["dtype"])
    out.backward(torch.tensor(g_np))
    return dict(x=x_np, grad_output=g_np, out=out.detach().numpy(), grad_x=x.grad.numpy())


def main():
    import torch

    torch.set_num_threads(1)
    rng = np.random.default_rng(20261204)
    arrays = {}
    for i, c in enumerate(CASES):
        key = f"c{i:03d}"
        for name, value in run_case(rng, c).items():
            arrays[f"{key}/{name}"] = value
        arrays[f"{key}/config"] = np.array(json.dumps(c))
    np.savez_compressed(OUT_PATH, **arrays)
    print(f"wrote {len(CASES)} cases to {OUT_PATH} ({os.path.getsize(OUT_PATH)} bytes)")


if __name__ == "__main__":
    main()
