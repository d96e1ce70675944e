"""Record PyTorch (CPU, float64) unfold / fold outputs and gradients for deconv's tests.

Run from the repository root with a Python that has torch installed:

    python tests/make_fold_fixtures.py

Writes ``tests/data/fold_cases.npz``. For every case ``cNNN`` the archive
holds ``cNNN/config`` (a JSON string: op and its keyword arguments) and
float64 arrays ``cNNN/x`` (input), ``cNNN/out`` (torch's result),
``cNNN/grad_output`` (a random upstream gradient) and ``cNNN/grad_x``
(torch's input gradient, via autograd).

This script depends only on torch and numpy (never on deconv), so the
fixture is an independent record of PyTorch's behaviour.
"""

import json
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_PATH = os.path.join(HERE, "data", "fold_cases.npz")

# (op, input shape for unfold / image shape for fold, keyword arguments)
CASES = [
    ("unfold", (2, 3, 5, 6), dict(kernel_size=2)),
    ("unfold", (1, 2, 7, 5), dict(kernel_size=(3, 2), stride=(2, 1))),
    ("unfold", (2, 1, 6, 7), dict(kernel_size=3, padding=1, dilation=2)),
    ("unfold", (1, 2, 4, 6), dict(kernel_size=(2, 3), padding=(2, 0), stride=(3, 2), dilation=(1, 2))),
    ("unfold", (3, 2, 3, 3), dict(kernel_size=1, stride=2)),
    ("unfold", (1, 1, 2, 3), dict(kernel_size=4, padding=2, stride=5)),      # one block, mostly padding
    ("unfold", (2, 4, 8, 8), dict(kernel_size=3, padding=1, stride=2)),
    ("fold", (2, 3, 5, 6), dict(kernel_size=2)),
    ("fold", (1, 2, 7, 5), dict(kernel_size=(3, 2), stride=(2, 1))),
    ("fold", (2, 1, 6, 7), dict(kernel_size=3, padding=1, dilation=2)),
    ("fold", (1, 2, 4, 6), dict(kernel_size=(2, 3), padding=(2, 0), stride=(3, 2), dilation=(1, 2))),
    ("fold", (3, 2, 3, 3), dict(kernel_size=1, stride=2)),                  # pixels no block covers
    ("fold", (1, 1, 2, 3), dict(kernel_size=4, padding=2, stride=5)),
    ("fold", (2, 4, 8, 8), dict(kernel_size=3, padding=1, stride=2)),
    ("fold", (1, 3, 9, 4), dict(kernel_size=(4, 2), stride=(1, 3), padding=(0, 1))),
]


def _t(v):
    return tuple(v) if isinstance(v, (list, tuple)) else v


def main():
    import torch
    import torch.nn.functional as F

    torch.manual_seed(0)
    rng = np.random.default_rng(13)
    arrays = {}
    for i, (op, shape, kw) in enumerate(CASES):
        kw_t = {k: _t(v) for k, v in kw.items()}
        name = f"c{i:03d}"
        if op == "unfold":
            x = rng.standard_normal(shape)
            config = dict(op=op, kwargs=kw)
        else:
            # columns of the right shape: those of an image of this size
            cols_shape = F.unfold(torch.zeros(shape, dtype=torch.float64), **kw_t).shape
            x = rng.standard_normal(tuple(cols_shape))
            config = dict(op=op, kwargs=dict(kw, output_size=list(shape[2:])))
        xt = torch.tensor(x, requires_grad=True)
        if op == "unfold":
            out = F.unfold(xt, **kw_t)
        else:
            out = F.fold(xt, output_size=tuple(shape[2:]), **kw_t)
        grad_output = rng.standard_normal(tuple(out.shape))
        out.backward(torch.tensor(grad_output))
        arrays[f"{name}/config"] = np.array(json.dumps(config))
        arrays[f"{name}/x"] = x
        arrays[f"{name}/out"] = out.detach().numpy()
        arrays[f"{name}/grad_output"] = grad_output
        arrays[f"{name}/grad_x"] = xt.grad.numpy()
    np.savez_compressed(OUT_PATH, **arrays)
    print(f"wrote {len(CASES)} cases to {OUT_PATH} ({os.path.getsize(OUT_PATH)} bytes)")


if __name__ == "__main__":
    main()
