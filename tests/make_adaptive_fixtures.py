"""Record PyTorch (CPU, float64) adaptive pooling results for deconv's reference tests.

Run from the repository root with a Python that has torch installed:

    python tests/make_adaptive_fixtures.py

Writes ``tests/data/adaptive_cases.npz``. For every case ``cNNN`` the archive
holds ``cNNN/config`` (a JSON string: op, output_size, data) and the arrays
``cNNN/x``, ``cNNN/grad_output`` (random upstream gradient), ``cNNN/out``,
``cNNN/out_indices`` (max pooling) and ``cNNN/grad_x`` (autograd).

This script depends only on torch and numpy (never on deconv), so the
fixture is an independent record of PyTorch's behaviour.
"""

import json
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_PATH = os.path.join(HERE, "data", "adaptive_cases.npz")


def case(op, shape, output_size, data="randn"):
    return dict(op=op, shape=shape, output_size=output_size, data=data)


# output sizes that divide the input, that do not (overlapping windows), that
# exceed it (repeated elements), None entries, and 1 (global pooling)
_GEOMETRIES = {
    1: [([2, 3, 10], 5), ([2, 2, 7], 3), ([1, 3, 5], 8), ([2, 1, 9], [9]), ([1, 2, 6], 1),
        ([1, 1, 1], 4), ([3, 2, 13], [4])],
    2: [([2, 3, 8, 8], 4), ([2, 2, 7, 5], [3, 2]), ([1, 2, 3, 4], [5, 7]),
        ([1, 3, 6, 7], [None, 3]), ([2, 1, 9, 4], [2, None]), ([1, 2, 5, 5], 1),
        ([1, 1, 1, 3], [2, 2])],
    3: [([1, 2, 4, 6, 6], 2), ([2, 1, 5, 3, 7], [2, 3, 4]), ([1, 2, 2, 3, 3], [3, 4, 5]),
        ([1, 1, 4, 5, 6], [None, 2, None]), ([1, 2, 3, 3, 3], 1)],
}

CASES = [case(f"adaptive_{kind}_pool{nd}d", shape, size)
         for kind in ("avg", "max") for nd in (1, 2, 3) for shape, size in _GEOMETRIES[nd]]
CASES += [
    # ties: integer data with many equal values (the first maximum wins)
    case("adaptive_max_pool1d", [2, 2, 11], 4, data="ties"),
    case("adaptive_max_pool2d", [1, 3, 7, 6], [3, 4], data="ties"),
    case("adaptive_max_pool3d", [1, 2, 4, 5, 3], [2, 3, 2], data="ties"),
    # one NaN per input plane: it is the maximum of every window holding it
    case("adaptive_max_pool2d", [2, 2, 6, 5], [3, 2], data="nan"),
    case("adaptive_avg_pool2d", [1, 2, 5, 6], [2, 4], data="nan"),
    # -inf everywhere in some windows
    case("adaptive_max_pool1d", [1, 2, 8], 3, data="neginf"),
]


def make_input(rng, shape, data):
    if data == "ties":
        return rng.integers(0, 3, shape).astype(np.float64)
    x = rng.standard_normal(shape)
    planes = x.reshape(-1, int(np.prod(shape[2:])))
    if data == "nan":
        planes[np.arange(planes.shape[0]), rng.integers(0, planes.shape[1], planes.shape[0])] = np.nan
    elif data == "neginf":
        planes[:, : planes.shape[1] // 2] = -np.inf
    return x


def run_case(rng, c):
    import torch
    import torch.nn.functional as F

    x_np = make_input(rng, c["shape"], c["data"])
    x = torch.tensor(x_np, requires_grad=True)
    size = c["output_size"]
    size = tuple(size) if isinstance(size, list) else size
    fn = getattr(F, c["op"])
    arrays = dict(x=x_np)
    if "max" in c["op"]:
        out, idx = fn(x, size, return_indices=True)
        arrays["out_indices"] = idx.numpy()
    else:
        out = fn(x, size)
    g = rng.standard_normal(tuple(out.shape))
    out.backward(torch.tensor(g))
    arrays.update(out=out.detach().numpy(), grad_output=g, grad_x=x.grad.numpy())
    return arrays


def main():
    import torch

    torch.set_num_threads(1)
    rng = np.random.default_rng(13)
    store = {}
    for i, c in enumerate(CASES):
        arrays = run_case(rng, c)
        key = f"c{i:03d}"
        store[f"{key}/config"] = np.array(json.dumps(c, sort_keys=True))
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
