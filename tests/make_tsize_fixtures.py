"""Record PyTorch (CPU, float64) transposed convolutions given an output size.

Run from the repository root with a Python that has torch installed:

    python tests/make_tsize_fixtures.py

Writes ``tests/data/tsize_cases.npz``. For every case ``cNNN`` the archive
holds ``cNNN/config`` (a JSON string) and float64 arrays ``cNNN/<name>``:
``torch.nn.ConvTranspose1d/2d(...)`` with the recorded ``weight`` and
``bias``, called as ``layer(x, output_size=...)``: inputs ``x``,
``grad_output``; results ``out``, ``grad_x``, ``grad_weight``, ``grad_bias``
(autograd); and ``accepted`` (int64, shape (nd, 40)): along each axis, 1
where torch accepts that output length (1 to 40, the other axes at their
recorded size), else 0 - torch's range rule, dilation included.

This script depends only on torch and numpy (never on deconv), so the
fixture is an independent record of PyTorch's behaviour.
"""

import json
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_PATH = os.path.join(HERE, "data", "tsize_cases.npz")
PROBED = 40     # output lengths 1..PROBED are tried along each axis


def case(layer, shape, out_channels, kernel_size, output_size, **kw):
    return dict(layer=layer, shape=shape, out_channels=out_channels, kernel_size=kernel_size,
                output_size=output_size, kwargs=kw)


CASES = [
    # ---- 1-D: spatial or full output_size, each end of the range
    case("ConvTranspose1d", [2, 3, 5], 2, 3, [11], stride=2),
    case("ConvTranspose1d", [2, 3, 5], 2, 3, [2, 2, 17], stride=3),
    case("ConvTranspose1d", [1, 2, 4], 4, 4, [13], stride=3, padding=1, groups=2),
    case("ConvTranspose1d", [2, 1, 6], 3, 2, [8], stride=1, dilation=2),
    # dilation larger than the stride: the layer still allows stride-1 extra
    case("ConvTranspose1d", [1, 2, 5], 2, 3, [14], stride=2, dilation=3, padding=1),
    # the layer's own output_padding is ignored when output_size is given
    case("ConvTranspose1d", [2, 2, 3], 2, 3, [10], stride=3, output_padding=2, bias=False),
    # the smallest size is below 1: only the sizes >= 1 of the range remain
    case("ConvTranspose1d", [1, 1, 1], 1, 1, [1], stride=3, padding=1),
    # ---- 2-D
    case("ConvTranspose2d", [2, 3, 4, 5], 2, 3, [9, 12], stride=2),
    case("ConvTranspose2d", [1, 2, 3, 4], 4, (3, 2), [1, 4, 9, 8], stride=(3, 2), padding=(1, 0),
         groups=2),
    case("ConvTranspose2d", [2, 2, 5, 3], 3, 3, [10, 11], stride=(2, 3), padding=1,
         dilation=(1, 2)),
    case("ConvTranspose2d", [1, 1, 4, 4], 2, 2, [13, 14], stride=4, dilation=3, padding=2),
    case("ConvTranspose2d", [2, 3, 3, 3], 3, 1, [5, 6], stride=2, output_padding=1, bias=False),
    case("ConvTranspose2d", [1, 2, 6, 2], 2, (2, 3), [7, 2], stride=1, padding=(0, 1)),
]


def accepted(layer, x, output_size):
    """(nd, PROBED) 0/1: which output lengths torch's ConvTranspose accepts per axis."""
    import torch
    nd = x.dim() - 2
    spatial = list(output_size[-nd:])
    table = np.zeros((nd, PROBED), dtype=np.int64)
    with torch.no_grad():
        for axis in range(nd):
            for size in range(1, PROBED + 1):
                trial = list(spatial)
                trial[axis] = size
                try:
                    layer(x, output_size=trial)
                except (ValueError, RuntimeError):
                    continue
                table[axis, size - 1] = 1
    return table


def run(case_, rng):
    import torch
    kw = {k: tuple(v) if isinstance(v, list) else v for k, v in case_["kwargs"].items()}
    ksize = case_["kernel_size"]
    ksize = tuple(ksize) if isinstance(ksize, list) else ksize
    cls = getattr(torch.nn, case_["layer"])
    layer = cls(case_["shape"][1], case_["out_channels"], ksize, dtype=torch.float64, **kw)
    x = torch.tensor(rng.standard_normal(case_["shape"]), requires_grad=True)
    out = layer(x, output_size=case_["output_size"])
    g = torch.tensor(rng.standard_normal(tuple(out.shape)))
    out.backward(g)
    bias = layer.bias if layer.bias is not None else torch.zeros(case_["out_channels"])
    grad_bias = layer.bias.grad if layer.bias is not None else g.sum(
        dim=(0,) + tuple(range(2, g.dim())))
    return dict(x=x, weight=layer.weight, bias=bias, grad_output=g, out=out, grad_x=x.grad,
                grad_weight=layer.weight.grad, grad_bias=grad_bias,
                accepted=torch.tensor(accepted(layer, x.detach(), case_["output_size"])))


def main():
    import torch
    torch.manual_seed(0)
    rng = np.random.default_rng(13)
    store = {}
    for i, case_ in enumerate(CASES):
        arrays = run(case_, rng)
        key = f"c{i:03d}"
        store[f"{key}/config"] = np.array(json.dumps(dict(case_, arrays=sorted(arrays)),
                                                     sort_keys=True))
        for name, a in arrays.items():
            a = a.detach().numpy()
            store[f"{key}/{name}"] = a if name == "accepted" else a.astype(np.float64)
    store["meta"] = np.array(json.dumps(dict(torch=torch.__version__, numpy=np.__version__,
                                            n_cases=len(CASES), probed=PROBED)))
    os.makedirs(os.path.dirname(OUT_PATH), exist_ok=True)
    np.savez_compressed(OUT_PATH, **store)
    print(f"wrote {len(CASES)} cases to {OUT_PATH} ({os.path.getsize(OUT_PATH)} bytes), "
          f"torch {torch.__version__}")


if __name__ == "__main__":
    main()
