"""Record torch's activations, initialisation gains, fans and gradient clipping for deconv's tests.

Run from the repository root with a Python that has torch installed:

    python tests/make_act_fixtures.py

Writes ``tests/data/act_cases.npz``:

* ``act/<case>/x``, ``act/<case>/grad_y``: a float64 input (float32-exact
  values, kinks included) and an upstream gradient;
  ``act/<case>/y``, ``act/<case>/grad_x``: torch's float64 output and input
  gradient (for PReLU, ``act/<case>/weight``, torch's float32 slopes as
  float64, and ``act/<case>/grad_weight``); ``act/<case>/config``:
  the layer's name and keyword arguments as a JSON string;
* ``gain/<nonlinearity>/<param>``: ``torch.nn.init.calculate_gain``;
* ``fan/<shape>``: ``(fan_in, fan_out)`` of ``_calculate_fan_in_and_fan_out``;
* ``clip/<case>/grad<i>``, ``clip/<case>/clipped<i>``, ``clip/<case>/total``,
  ``clip/<case>/config``: gradients before and after
  ``clip_grad_norm_``/``clip_grad_value_`` (float64) and the returned norm.

This script depends only on torch and numpy (never on deconv). torch is
imported inside :func:`main`, so that pytest's doctest collection can
import this file without it.
"""

import json
import math
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_PATH = os.path.join(HERE, "data", "act_cases.npz")

KINKS = [-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 10.0, 10.5, 9.5, -20.0, 25.0]

ACTIVATIONS = {   # case -> (layer name, kwargs, the input's shape)
    "prelu_one": ("PReLU", {"num_parameters": 1, "init": 0.25}, (2, 3, 4)),
    "prelu_channels": ("PReLU", {"num_parameters": 3, "init": -0.5}, (2, 3, 2, 2)),
    "prelu_2d": ("PReLU", {"num_parameters": 4, "init": 0.1}, (3, 4)),
    "elu": ("ELU", {}, (2, 12)),
    "elu_alpha": ("ELU", {"alpha": 1.5}, (2, 12)),
    "gelu": ("GELU", {}, (2, 12)),
    "gelu_tanh": ("GELU", {"approximate": "tanh"}, (2, 12)),
    "softplus": ("Softplus", {}, (2, 12)),
    "softplus_beta": ("Softplus", {"beta": 2.0, "threshold": 20.0}, (2, 12)),
    "softplus_negative_beta": ("Softplus", {"beta": -0.5, "threshold": 3.0}, (2, 12)),
    "hardtanh": ("Hardtanh", {}, (2, 12)),
    "hardtanh_bounds": ("Hardtanh", {"min_val": -0.5, "max_val": 2.0}, (2, 12)),
}

GAINS = [("linear", None), ("conv1d", None), ("conv2d", None), ("conv3d", None),
         ("conv_transpose1d", None), ("conv_transpose2d", None), ("conv_transpose3d", None),
         ("sigmoid", None), ("tanh", None), ("relu", None), ("selu", None),
         ("leaky_relu", None), ("leaky_relu", 0.0), ("leaky_relu", 0.2),
         ("leaky_relu", math.sqrt(5)), ("leaky_relu", -1.0), ("leaky_relu", 3)]

FANS = [(3, 4), (8, 3, 5), (16, 4, 3, 3), (4, 8, 2, 3, 3), (1, 1), (5, 0, 3)]


def _inputs(shape, seed):
    """Values of ``shape``: the kinks first, then float32-exact normal draws times 3."""
    rng = np.random.default_rng(seed)
    n = math.prod(shape)
    values = np.concatenate([KINKS, rng.standard_normal(max(n - len(KINKS), 0)) * 3])[:n]
    return rng.permutation(values).astype(np.float32).astype(np.float64).reshape(shape)


def main():
    import torch

    arrays = {}
    for i, (case, (name, kwargs, shape)) in enumerate(sorted(ACTIVATIONS.items())):
        layer = getattr(torch.nn, name)(**kwargs).double()
        x_np = _inputs(shape, i)
        if case == "elu":
            x_np.flat[-1] = np.nan               # torch's branch for NaN
        g_np = np.random.default_rng(100 + i).standard_normal(shape)
        x = torch.tensor(x_np, requires_grad=True)
        y = layer(x)
        y.backward(torch.tensor(g_np))
        prefix = f"act/{case}/"
        arrays[prefix + "config"] = np.array(json.dumps([name, kwargs]))
        arrays[prefix + "x"] = x_np
        arrays[prefix + "grad_y"] = g_np
        arrays[prefix + "y"] = y.detach().numpy()
        arrays[prefix + "grad_x"] = x.grad.numpy()
        if name == "PReLU":   # the float32 init, made float64 by .double()
            arrays[prefix + "weight"] = layer.weight.detach().numpy().copy()
            arrays[prefix + "grad_weight"] = layer.weight.grad.numpy()
    for nonlinearity, param in GAINS:
        arrays[f"gain/{nonlinearity}/{param!r}"] = np.array(
            torch.nn.init.calculate_gain(nonlinearity, param))
    for shape in FANS:
        fans = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
        arrays["fan/" + ",".join(map(str, shape))] = np.array(fans)
    rng = np.random.default_rng(7)
    clips = {   # case -> (function, kwargs, shapes of the gradients, scale, non-finite entry)
        "norm2": ("clip_grad_norm_", {"max_norm": 1.0}, [(3, 4), (5,)], 1.0, None),
        "norm2_no_clip": ("clip_grad_norm_", {"max_norm": 100.0}, [(3, 4), (5,)], 1.0, None),
        "norm1": ("clip_grad_norm_", {"max_norm": 2.0, "norm_type": 1.0}, [(4,), (2, 3)], 1.0,
                  None),
        "norm_inf": ("clip_grad_norm_", {"max_norm": 0.5, "norm_type": math.inf},
                     [(4,), (2, 3)], 1.0, None),
        "norm_3_5": ("clip_grad_norm_", {"max_norm": 0.3, "norm_type": 3.5}, [(6,), (2, 2)],
                     1.0, None),
        "norm_zero_max": ("clip_grad_norm_", {"max_norm": 0.0}, [(3,)], 1.0, None),
        "norm_inf_grad": ("clip_grad_norm_", {"max_norm": 1.0}, [(3,), (2,)], 1.0, math.inf),
        "norm_nan_grad": ("clip_grad_norm_", {"max_norm": 1.0}, [(3,), (2,)], 1.0, math.nan),
        "value": ("clip_grad_value_", {"clip_value": 0.7}, [(3, 4), (5,)], 1.0, None),
        "value_nan": ("clip_grad_value_", {"clip_value": 0.1}, [(4,)], 1.0, math.nan),
    }
    for case, (fn, kwargs, shapes, scale, bad) in clips.items():
        params = []
        prefix = f"clip/{case}/"
        for j, shape in enumerate(shapes):
            g = rng.standard_normal(shape) * scale
            if bad is not None and j == 0:
                g.flat[1] = bad
            arrays[prefix + f"grad{j}"] = g
            p = torch.zeros(shape, dtype=torch.float64, requires_grad=True)
            p.grad = torch.tensor(g)
            params.append(p)
        out = getattr(torch.nn.utils, fn)(params, **kwargs)
        arrays[prefix + "config"] = np.array(json.dumps([fn, kwargs]))
        arrays[prefix + "total"] = np.array(np.nan if out is None else float(out))
        for j, p in enumerate(params):
            arrays[prefix + f"clipped{j}"] = p.grad.numpy()
    arrays["torch_version"] = np.array(torch.__version__)
    np.savez_compressed(OUT_PATH, **arrays)
    print(f"wrote {len(arrays)} arrays to {OUT_PATH} ({os.path.getsize(OUT_PATH)} bytes)")


if __name__ == "__main__":
    main()
