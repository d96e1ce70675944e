"""Record PyTorch (CPU, float64) padding results for deconv's padding tests.

Run from the repository root with a Python that has torch installed:

    python tests/make_pad_fixtures.py

Writes ``tests/data/pad_cases.npz``. For every case ``cNNN`` the archive
holds ``cNNN/config`` (a JSON string) and float64 arrays ``cNNN/<name>``:

* ``op == "pad"``: ``F.pad(x, pad, mode, value)``: inputs ``x``,
  ``grad_output``; results ``out``, ``grad_x`` (autograd);
* ``op == "conv"``: ``torch.nn.Conv1d/Conv2d(..., padding_mode=...)`` with
  the recorded ``weight`` and ``bias``: results ``out``, ``grad_x``,
  ``grad_weight``, ``grad_bias``.

This script depends only on torch and numpy (never on deconv), so the
fixture is an independent record of PyTorch's behaviour.
"""

import json
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_PATH = os.path.join(HERE, "data", "pad_cases.npz")


def pad_case(shape, pad, mode, value=None):
    return dict(op="pad", shape=shape, pad=pad, mode=mode, value=value)


def conv_case(layer, shape, out_channels, kernel_size, padding_mode, **kw):
    return dict(op="conv", layer=layer, shape=shape, out_channels=out_channels,
                kernel_size=kernel_size, padding_mode=padding_mode, kwargs=kw)


CASES = [
    # ---- 1-D
    pad_case([2, 3, 5], [2, 3], "constant", 1.5),
    pad_case([2, 3, 5], [-1, 2], "constant", -2.0),
    pad_case([1, 2, 5], [3, -5], "constant", 4.0),           # all fill
    pad_case([2, 1, 5], [1, 2, -1, 1, 1, 0], "constant", 7.0),  # C and N too
    pad_case([2, 3, 5], [4, 3], "reflect"),
    pad_case([2, 3, 5], [-2, 4], "reflect"),
    pad_case([1, 2, 5], [-6, 2], "reflect"),                 # reflects about the whole axis
    pad_case([2, 3, 4], [6, 2], "replicate"),
    pad_case([2, 3, 5], [-3, 7], "replicate"),
    pad_case([2, 3, 5], [5, 3], "circular"),
    pad_case([2, 3, 6], [-2, 3], "circular"),                # wraps the cropped axis
    pad_case([1, 2, 5], [1, -4], "circular"),
    # ---- 2-D
    pad_case([2, 2, 4, 5], [1, 2, 0, 3], "constant", 0.25),
    pad_case([1, 2, 4, 5], [-1, 1, 2, -2], "constant", 0.0),
    pad_case([2, 2, 4, 5], [4, 2, 3, 1], "reflect"),
    pad_case([1, 3, 4, 5], [-2, 3, 2, -1], "reflect"),
    pad_case([2, 2, 3, 4], [5, 1, 0, 4], "replicate"),
    pad_case([1, 2, 4, 5], [-1, -1, 3, -2], "replicate"),
    pad_case([2, 2, 4, 5], [5, 2, 4, 1], "circular"),
    pad_case([1, 2, 5, 6], [-2, 4, 2, -1], "circular"),
    # ---- 3-D
    pad_case([1, 2, 3, 4, 5], [1, 2, 0, 1, 2, 1], "constant", -1.0),
    pad_case([2, 1, 3, 4, 5], [2, 4, 3, 1, 2, 2], "reflect"),
    pad_case([1, 2, 3, 4, 3], [2, -1, 1, 3, 3, 0], "replicate"),
    pad_case([1, 2, 3, 4, 5], [3, -2, 1, 4, 3, 2], "circular"),
    # ---- conv layers with a padding mode (torch pads with F.pad, then convolves)
    conv_case("Conv1d", [2, 3, 7], 4, 3, "reflect", padding=2),
    conv_case("Conv1d", [2, 2, 6], 2, 3, "circular", padding=1, stride=2, groups=2),
    conv_case("Conv1d", [1, 3, 8], 2, 4, "replicate", padding="same", dilation=2),
    conv_case("Conv2d", [2, 3, 5, 6], 4, 3, "reflect", padding=(1, 2)),
    conv_case("Conv2d", [1, 2, 6, 5], 3, (2, 3), "replicate", padding=(3, 1), stride=(2, 1)),
    conv_case("Conv2d", [2, 4, 5, 5], 4, 3, "circular", padding=2, groups=2, dilation=(2, 1)),
    conv_case("Conv2d", [1, 2, 6, 7], 3, (4, 3), "reflect", padding="same"),
]


def run_pad(case, rng):
    import torch
    import torch.nn.functional as F
    x = torch.tensor(rng.standard_normal(case["shape"]), requires_grad=True)
    kw = {} if case["value"] is None else {"value": case["value"]}
    out = F.pad(x, tuple(case["pad"]), mode=case["mode"], **kw)
    g = torch.tensor(rng.standard_normal(tuple(out.shape)))
    out.backward(g)
    return dict(x=x, grad_output=g, out=out, grad_x=x.grad)


def run_conv(case, rng):
    import torch
    kw = {k: tuple(v) if isinstance(v, list) else v for k, v in case["kwargs"].items()}
    cls = getattr(torch.nn, case["layer"])
    layer = cls(case["shape"][1], case["out_channels"], case["kernel_size"],
                padding_mode=case["padding_mode"], dtype=torch.float64, **kw)
    x = torch.tensor(rng.standard_normal(case["shape"]), requires_grad=True)
    out = layer(x)
    g = torch.tensor(rng.standard_normal(tuple(out.shape)))
    out.backward(g)
    return dict(x=x, weight=layer.weight, bias=layer.bias, grad_output=g, out=out,
                grad_x=x.grad, grad_weight=layer.weight.grad, grad_bias=layer.bias.grad)


def main():
    import torch
    torch.manual_seed(0)
    rng = np.random.default_rng(13)
    store = {}
    for i, case in enumerate(CASES):
        arrays = (run_pad if case["op"] == "pad" else run_conv)(case, rng)
        key = f"c{i:03d}"
        config = dict(case, arrays=sorted(arrays))
        store[f"{key}/config"] = np.array(json.dumps(config, sort_keys=True))
        for name, a in arrays.items():
            store[f"{key}/{name}"] = a.detach().numpy().astype(np.float64)
    store["meta"] = np.array(json.dumps(dict(torch=torch.__version__, numpy=np.__version__,
                                            n_cases=len(CASES))))
    os.makedirs(os.path.dirname(OUT_PATH), exist_ok=True)
    np.savez_compressed(OUT_PATH, **store)
    print(f"wrote {len(CASES)} cases to {OUT_PATH} ({os.path.getsize(OUT_PATH)} bytes), "
          f"torch {torch.__version__}")


if __name__ == "__main__":
    main()
