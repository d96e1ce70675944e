"""Record torch's normalization layers over 3 training steps and an eval forward.

Run from the repository root with a Python that has torch installed:

    python tests/make_norm_fixtures.py

Writes ``tests/data/norm_cases.npz`` (packed: see :func:`pack`). For every case ``NAME`` (a layer, its
constructor arguments as JSON in ``NAME/ctor``, float64 and float32) and
every step ``s`` in 0, 1, 2 (training) and 3 (eval):

* ``NAME/s/input``, ``NAME/s/grad_output``: the arrays fed to the layer;
* ``NAME/s/output``, ``NAME/s/grad_input``: torch's results (autograd);
* ``NAME/s/grad/<param>``: the parameter gradients of that step alone;
* ``NAME/s/state/<key>``: the state_dict after the step (running statistics).

The float32 cases hold the float32 inputs and, as ``NAME/s/output64``,
``grad_input64``, ``grad64/<param>`` and ``state64/<key>``, the float64
results of the same (float32-exact) inputs and parameters: the reference a
float32 result is compared with. ``net/keys``, ``net/shapes`` and ``net/dtypes`` list the state_dict of
a small network with BatchNorm2d. This script depends only on torch and
numpy (never on deconv); torch is imported inside :func:`main`.
"""

import json
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_PATH = os.path.join(HERE, "data", "norm_cases.npz")

# name -> (class, constructor kwargs, input shape)
CASES = {
    "bn1d_2d": ("BatchNorm1d", dict(num_features=3), (4, 3)),
    "bn1d_3d_cma": ("BatchNorm1d", dict(num_features=2, momentum=None), (3, 2, 4)),
    "bn2d": ("BatchNorm2d", dict(num_features=3, momentum=0.3), (2, 3, 3, 4)),
    "bn2d_noaffine_nobias": ("BatchNorm2d", dict(num_features=2, affine=True, bias=False,
                                                 eps=1e-3), (3, 2, 2, 2)),
    "bn2d_untracked": ("BatchNorm2d", dict(num_features=2, track_running_stats=False),
                       (2, 2, 3, 3)),
    "bn3d": ("BatchNorm3d", dict(num_features=2), (2, 2, 2, 3, 2)),
    "in1d": ("InstanceNorm1d", dict(num_features=3), (2, 3, 5)),
    "in2d_affine_tracked": ("InstanceNorm2d", dict(num_features=2, affine=True,
                                                   track_running_stats=True), (3, 2, 3, 3)),
    "in3d_tracked": ("InstanceNorm3d", dict(num_features=2, track_running_stats=True,
                                            momentum=0.5), (2, 2, 2, 2, 3)),
    "gn": ("GroupNorm", dict(num_groups=2, num_channels=4), (2, 4, 3, 3)),
    "gn_2d_input": ("GroupNorm", dict(num_groups=3, num_channels=6, eps=1e-2), (3, 6)),
    "ln": ("LayerNorm", dict(normalized_shape=4), (2, 3, 4)),
    "ln_2axes_nobias": ("LayerNorm", dict(normalized_shape=[3, 2], bias=False), (2, 2, 3, 2)),
    "ln_noaffine": ("LayerNorm", dict(normalized_shape=5, elementwise_affine=False), (3, 5)),
}


def run_case(torch, cls, kwargs, shape, dtype, gen):
    """Three training steps and an eval forward; the recorded arrays by suffix."""
    tdtype = torch.float64 if dtype == "float64" else torch.float32
    layer = getattr(torch.nn, cls)(**kwargs).to(tdtype)
    out = {}
    with torch.no_grad():            # non-trivial affine parameters
        for p in layer.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64))
    for step in range(4):
        if step == 3:
            layer.eval()
        x64 = torch.randn(shape, generator=gen, dtype=torch.float64) * 2 + 0.5
        g64 = torch.randn(shape, generator=gen, dtype=torch.float64)
        x = x64.to(tdtype).requires_grad_(True)
        g = g64.to(tdtype)
        layer.zero_grad()
        y = layer(x)
        y.backward(g)
        pre = f"{step}/"
        out[pre + "input"] = x.detach().numpy()
        out[pre + "grad_output"] = g.numpy()
        out[pre + "output"] = y.detach().numpy()
        out[pre + "grad_input"] = x.grad.numpy()
        for name, p in layer.named_parameters():
            out[pre + "grad/" + name] = p.grad.numpy().copy()
        for key, value in layer.state_dict().items():
            out[pre + "state/" + key] = value.numpy().copy()
    return out, layer


def pack(arrays):
    """One flat float64 array per case plus a JSON index (an npz entry costs ~300 bytes).

    ``index`` maps every name above to ``[case array, offset, shape, dtype]``
    (int64 and float32 values are exact in float64); strings are stored in
    the index as they are.
    """
    flat, index = {}, {}
    for key, value in arrays.items():
        if value.dtype.kind == "U":
            index[key] = value.tolist()
            continue
        case = key.split("/")[0]
        parts = flat.setdefault(case, [])
        offset = sum(part.size for part in parts)
        parts.append(value.astype(np.float64).ravel())
        index[key] = [case, offset, list(value.shape), str(value.dtype)]
    out = {case: np.concatenate(parts) for case, parts in flat.items()}
    out["index"] = np.array(json.dumps(index))
    return out


def main():
    import torch

    gen = torch.Generator().manual_seed(14)
    arrays = {}
    for name, (cls, kwargs, shape) in CASES.items():
        for dtype in ("float64", "float32"):
            case = f"{name}_{dtype}"
            state = gen.get_state()
            recorded, _ = run_case(torch, cls, kwargs, shape, dtype, gen)
            if dtype == "float64":
                arrays.update({f"{case}/{k}": v for k, v in recorded.items()})
            else:        # torch's float32 results are not the reference: the float64 ones are
                arrays.update({f"{case}/{k}": v for k, v in recorded.items()
                               if k.endswith(("/input", "/grad_output"))})
            arrays[f"{case}/ctor"] = np.array(json.dumps(dict(kwargs, cls=cls)))
            if dtype == "float32":
                # the float64 twin of the same float32-exact data: rerun in float64 from the
                # same generator state on the recorded float32 inputs
                gen.set_state(state)
                layer = getattr(torch.nn, cls)(**kwargs).double()
                with torch.no_grad():
                    for p in layer.parameters():
                        p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64)
                                .float().double())
                for step in range(4):
                    if step == 3:
                        layer.eval()
                    x = torch.from_numpy(recorded[f"{step}/input"].astype(np.float64))
                    x.requires_grad_(True)
                    g = torch.from_numpy(recorded[f"{step}/grad_output"].astype(np.float64))
                    layer.zero_grad()
                    y = layer(x)
                    y.backward(g)
                    arrays[f"{case}/{step}/output64"] = y.detach().numpy()
                    arrays[f"{case}/{step}/grad_input64"] = x.grad.numpy()
                    for pname, p in layer.named_parameters():
                        arrays[f"{case}/{step}/grad64/{pname}"] = p.grad.numpy().copy()
                    for key, value in layer.state_dict().items():
                        arrays[f"{case}/{step}/state64/{key}"] = value.numpy().copy()
                gen.set_state(state)
                run_case(torch, cls, kwargs, shape, dtype, gen)     # advance as before

    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2),
                              torch.nn.ReLU(), torch.nn.Sequential(torch.nn.BatchNorm1d(2)))
    sd = net.state_dict()
    arrays["net/keys"] = np.array(list(sd.keys()))
    arrays["net/shapes"] = np.array(json.dumps([list(v.shape) for v in sd.values()]))
    arrays["net/dtypes"] = np.array([str(v.dtype).replace("torch.", "") for v in sd.values()])
    np.savez_compressed(OUT_PATH, **pack(arrays))
    print(f"wrote {OUT_PATH}: {len(arrays)} arrays, {os.path.getsize(OUT_PATH)} bytes")


if __name__ == "__main__":
    main()
