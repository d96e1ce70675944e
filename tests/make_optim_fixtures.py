"""Record torch.optim.SGD / Adam trajectories for tests/test_optim.py.

Run from the repository root with a Python that has torch (numpy is not
needed and not used):

    python tests/make_optim_fixtures.py

Writes ``tests/data/optim_trajectories.json``: for every configuration and
dtype (float64, float32), three parameters of shapes (3,), (2, 2) and (), their
initial values, the gradient fed at each of ``STEPS`` steps (``null`` = the
parameter's grad is None at that step, so torch skips it) and the parameter
values torch produces after each step. All numbers are the exact values of
the tensors (float32 values are written as the doubles they equal), so the
test replays the very same inputs.

This script depends only on torch (never on deconv), so the fixture is an
independent record of PyTorch's behaviour.
"""

import json
import os

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_PATH = os.path.join(HERE, "data", "optim_trajectories.json")

STEPS = 5
SHAPES = [(3,), (2, 2), ()]
# (step, parameter index) at which the gradient is None, for the "skip" cases
SKIPS = [[1, 1], [2, 1], [3, 0], [0, 2]]

CASES = [
    ("SGD", dict(lr=0.1), False),
    ("SGD", dict(lr=0.1, momentum=0.9), False),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3), False),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True), False),
    ("SGD", dict(lr=0.1, weight_decay=0.01), False),
    ("SGD", dict(lr=0.1, momentum=0.8, dampening=0.5, weight_decay=0.1), False),
    ("SGD", dict(lr=0.1, momentum=0.9, weight_decay=0.05, nesterov=True), False),
    ("SGD", dict(lr=0.0, momentum=0.9), False),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True), True),
    ("Adam", dict(), False),
    ("Adam", dict(lr=0.1), False),
    ("Adam", dict(lr=0.1, betas=[0.8, 0.99], eps=1e-3), False),
    ("Adam", dict(lr=0.05, weight_decay=0.1), False),
    ("Adam", dict(lr=0.1, betas=[0.3, 0.5]), False),   # 1 - beta1 >= 0.5: lerp's other branch
    ("Adam", dict(lr=0.1, betas=[0.0, 0.0]), False),
    ("Adam", dict(lr=0.1, weight_decay=0.01), True),
]


def main():
    torch.manual_seed(20240603)
    cases = []
    for name, kwargs, skip in CASES:
        init64 = [torch.randn(s, dtype=torch.float64) for s in SHAPES]
        grads64 = [
            [torch.randn(s, dtype=torch.float64) * 2.0 for s in SHAPES] for _ in range(STEPS)
        ]
        skips = SKIPS if skip else []
        for dtype in (torch.float64, torch.float32):
            params = [x.to(dtype).clone().requires_grad_(False) for x in init64]
            init = [p.tolist() for p in params]
            torch_kwargs = dict(kwargs)
            if "betas" in torch_kwargs:
                torch_kwargs["betas"] = tuple(torch_kwargs["betas"])
            opt = getattr(torch.optim, name)(params, foreach=False, **torch_kwargs)
            grads, trajectory = [], []
            for step in range(STEPS):
                row = []
                for i, p in enumerate(params):
                    if [step, i] in skips:
                        p.grad = None
                        row.append(None)
                    else:
                        p.grad = grads64[step][i].to(dtype).clone()
                        row.append(p.grad.tolist())
                grads.append(row)
                opt.step()
                trajectory.append([p.detach().tolist() for p in params])
            cases.append(
                dict(
                    optimizer=name,
                    kwargs=kwargs,
                    dtype=str(dtype).replace("torch.", ""),
                    shapes=[list(s) for s in SHAPES],
                    init=init,
                    grads=grads,
                    trajectory=trajectory,
                )
            )
    os.makedirs(os.path.dirname(OUT_PATH), exist_ok=True)
    with open(OUT_PATH, "w") as f:
        json.dump(dict(torch_version=torch.__version__, steps=STEPS, cases=cases), f)
        f.write("\n")
    print(f"wrote {len(cases)} cases to {OUT_PATH}")


if __name__ == "__main__":
    main()
