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

Issue 14 added two more lists (the first list is unchanged, drawn first
from the same seed): ``more_cases``, trajectories of ``MORE_STEPS`` steps of
Adam (amsgrad), AdamW, RMSprop, Adagrad and SGD with parameter groups (each
group lists the indices of its parameters and its options), some with a
scheduler stepped after every optimizer step; and ``schedules``, the learning
rates (and cycled momenta) of every scheduler over ``SCHEDULE_STEPS`` steps on
an optimizer with two groups, ReduceLROnPlateau fed a fixed metric sequence.

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


# -- issue 14: more optimizers, parameter groups, schedulers ------------------

MORE_STEPS = 10
SCHEDULE_STEPS = 30

# (optimizer, defaults, groups, scheduler, skip); groups: None = one list of all
# parameters, else [(parameter indices, options)]; scheduler: (name, kwargs) stepped
# after every optimizer step, or None
MORE_CASES = [
    ("Adam", dict(lr=0.1, amsgrad=True), None, None, False),
    ("Adam", dict(lr=0.05, weight_decay=0.1, amsgrad=True),
     [([0, 2], {}), ([1], dict(lr=0.01, betas=[0.5, 0.9], amsgrad=False))], None, True),
    ("AdamW", dict(lr=0.1), None, None, False),
    ("AdamW", dict(lr=0.1, weight_decay=0.3, amsgrad=True, betas=[0.3, 0.5]), None, None, True),
    ("AdamW", dict(lr=0.1), [([1], dict(weight_decay=0.0)), ([2, 0], dict(lr=0.2))], None, False),
    ("RMSprop", dict(), None, None, False),
    ("RMSprop", dict(lr=0.01, momentum=0.9), None, None, True),
    ("RMSprop", dict(lr=0.01, centered=True), None, None, False),
    ("RMSprop", dict(lr=0.01, alpha=0.3, centered=True, momentum=0.5, weight_decay=0.1),
     None, None, False),
    ("RMSprop", dict(lr=0.01, eps=1e-3),
     [([0], dict(centered=True)), ([1, 2], dict(momentum=0.8, lr=0.05))], None, False),
    ("Adagrad", dict(), None, None, False),
    ("Adagrad", dict(lr=0.1, lr_decay=0.1, weight_decay=0.1, initial_accumulator_value=0.5),
     None, None, True),
    ("Adagrad", dict(lr=0.1, eps=1e-3), [([2], dict(lr_decay=0.5)), ([0, 1], {})], None, False),
    ("SGD", dict(lr=0.01),
     [([0], dict(lr=0.1, momentum=0.9)), ([1, 2], dict(momentum=0.5, nesterov=True))],
     None, True),
    ("SGD", dict(lr=0.1, momentum=0.9), [([0, 1], {}), ([2], dict(lr=0.05))],
     ("OneCycleLR", dict(max_lr=[0.5, 0.2], total_steps=MORE_STEPS)), False),
    ("Adam", dict(lr=0.1), [([0], {}), ([1, 2], dict(weight_decay=0.01))],
     ("OneCycleLR", dict(max_lr=0.3, total_steps=MORE_STEPS, anneal_strategy="linear")), False),
    ("RMSprop", dict(lr=0.01, momentum=0.5), None, ("StepLR", dict(step_size=3, gamma=0.5)),
     False),
]

_TWO_GROUPS = [dict(lr=0.1), dict(lr=0.05)]

# (name, kwargs, optimizer, metrics for ReduceLROnPlateau or sub-schedulers for SequentialLR)
SCHEDULES = [
    ("StepLR", dict(step_size=3, gamma=0.5), "SGD", None),
    ("MultiStepLR", dict(milestones=[2, 5, 5, 9], gamma=0.3), "SGD", None),
    ("MultiStepLR", dict(milestones=[4, 0]), "SGD", None),
    ("ExponentialLR", dict(gamma=0.9), "SGD", None),
    ("CosineAnnealingLR", dict(T_max=7, eta_min=0.001), "SGD", None),
    ("CosineAnnealingLR", dict(T_max=3), "Adam", None),
    ("LinearLR", dict(), "SGD", None),
    ("LinearLR", dict(start_factor=0.1, end_factor=0.8, total_iters=4), "SGD", None),
    ("OneCycleLR", dict(max_lr=[1.0, 0.5], total_steps=SCHEDULE_STEPS), "SGD", None),
    ("OneCycleLR", dict(max_lr=0.4, epochs=6, steps_per_epoch=5, anneal_strategy="linear",
                        three_phase=True, div_factor=10.0, final_div_factor=100.0), "SGD", None),
    ("OneCycleLR", dict(max_lr=0.4, total_steps=SCHEDULE_STEPS, pct_start=0.25,
                        base_momentum=0.8, max_momentum=[0.9, 0.95]), "Adam", None),
    ("OneCycleLR", dict(max_lr=0.4, total_steps=SCHEDULE_STEPS, cycle_momentum=False),
     "Adagrad", None),
    ("ReduceLROnPlateau", dict(patience=2, cooldown=1, factor=0.5, min_lr=[0.001, 0.02]), "SGD",
     [5.0, 4.0, 4.0, 4.0, 4.0, 3.9999, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 2.0, float("nan"), 2.0,
      2.0, 2.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]),
    ("ReduceLROnPlateau", dict(mode="max", threshold_mode="abs", threshold=0.1, patience=1),
     "SGD", [0.1, 0.5, 0.55, 0.58, 0.7, 0.75, 0.75, 0.9, 0.9, 0.9] * 3),
    ("ReduceLROnPlateau", dict(mode="max", patience=0, factor=0.9, eps=1e-3), "Adam",
     [float(k % 4) for k in range(SCHEDULE_STEPS)]),
    ("SequentialLR", dict(milestones=[5]), "SGD",
     [("LinearLR", dict(start_factor=0.25, total_iters=4)),
      ("CosineAnnealingLR", dict(T_max=10))]),
    ("SequentialLR", dict(milestones=[4, 10]), "SGD",
     [("ExponentialLR", dict(gamma=0.9)), ("StepLR", dict(step_size=2, gamma=0.5)),
      ("MultiStepLR", dict(milestones=[3, 7], gamma=0.5))]),
]


def _momenta(opt):
    return [g["betas"][0] if "betas" in g else g.get("momentum", 0.0) for g in opt.param_groups]


def _more_case(name, defaults, groups, scheduler, skip):
    """The same case in float64 and float32 (one draw of values for both)."""
    init64 = [torch.randn(s, dtype=torch.float64) for s in SHAPES]
    grads64 = [[torch.randn(s, dtype=torch.float64) * 2.0 for s in SHAPES]
               for _ in range(MORE_STEPS)]
    skips = SKIPS if skip else []
    out = []
    for dtype in (torch.float64, torch.float32):
        params = [x.to(dtype).clone() for x in init64]
        kwargs = {k: tuple(v) if k == "betas" else v for k, v in defaults.items()}
        if groups is None:
            arg = params
        else:
            arg = [{"params": [params[i] for i in idx],
                    **{k: tuple(v) if k == "betas" else v for k, v in opts.items()}}
                   for idx, opts in groups]
        opt = getattr(torch.optim, name)(arg, foreach=False, **kwargs)
        sched = (getattr(torch.optim.lr_scheduler, scheduler[0])(opt, **scheduler[1])
                 if scheduler else None)
        grads, trajectory, lrs = [], [], []
        for step in range(MORE_STEPS):
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
            if sched is not None and step < MORE_STEPS - 1:
                sched.step()
            lrs.append([g["lr"] for g in opt.param_groups])
        out.append(dict(optimizer=name, kwargs=defaults,
                        groups=None if groups is None else [[idx, o] for idx, o in groups],
                        scheduler=None if scheduler is None else list(scheduler),
                        dtype=str(dtype).replace("torch.", ""), shapes=[list(s) for s in SHAPES],
                        init=[p.tolist() for p in (x.to(dtype) for x in init64)],
                        grads=grads, trajectory=trajectory, lrs=lrs))
    return out


def _schedule(spec):
    name, kwargs, opt_name, extra = spec
    ps = [torch.zeros(2, requires_grad=True), torch.zeros(1, requires_grad=True)]
    groups = [{"params": [p], **g} for p, g in zip(ps, _TWO_GROUPS)]
    opt_kwargs = dict(momentum=0.9) if opt_name == "SGD" else {}
    opt = getattr(torch.optim, opt_name)(groups, lr=0.1, **opt_kwargs)
    lr_scheduler = torch.optim.lr_scheduler
    if name == "SequentialLR":
        subs = [getattr(lr_scheduler, n)(opt, **kw) for n, kw in extra]
        sched = lr_scheduler.SequentialLR(opt, subs, **kwargs)
    else:
        sched = getattr(lr_scheduler, name)(opt, **kwargs)
    lrs, momenta = [sched.get_last_lr()], [_momenta(opt)]
    for step in range(SCHEDULE_STEPS):
        opt.step()
        if name == "ReduceLROnPlateau":
            sched.step(extra[step])
        else:
            sched.step()
        lrs.append(sched.get_last_lr())
        momenta.append(_momenta(opt))
    return dict(name=name, kwargs=kwargs, optimizer=opt_name, extra=extra,
                groups=_TWO_GROUPS, lrs=[[float(x) for x in row] for row in lrs],
                momenta=momenta)


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
    more_cases = [c for spec in MORE_CASES for c in _more_case(*spec)]
    schedules = [_schedule(spec) for spec in SCHEDULES]
    os.makedirs(os.path.dirname(OUT_PATH), exist_ok=True)
    with open(OUT_PATH, "w") as f:
        json.dump(dict(torch_version=torch.__version__, steps=STEPS, cases=cases,
                       more_steps=MORE_STEPS, more_cases=more_cases,
                       schedule_steps=SCHEDULE_STEPS, schedules=schedules), f)
        f.write("\n")
    print(f"wrote {len(cases)} + {len(more_cases)} cases and {len(schedules)} schedules "
          f"to {OUT_PATH}")


if __name__ == "__main__":
    main()
