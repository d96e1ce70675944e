"""Hypothesis profiles: 'ci' is derandomized (the same examples every run)."""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    deadline=None,
    derandomize=True,
    max_examples=40,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.register_profile(
    "dev",
    deadline=None,
    max_examples=40,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "thorough",
    deadline=None,
    max_examples=500,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

# Scripts that regenerate the fixtures in tests/data need PyTorch, so they are not collected.
collect_ignore = [
    "make_torch_fixtures.py", "make_optim_fixtures.py", "make_norm_fixtures.py",
    "make_weights_fixtures.py", "make_act_fixtures.py", "make_loss_fixtures.py",
]
collect_ignore += ["make_adaptive_fixtures.py"]  # issue 13: adaptive pooling
collect_ignore.append("make_pad_fixtures.py")  # issue 13: padding
collect_ignore.append("make_interp_fixtures.py")  # issue 13: interpolate


def pytest_terminal_summary(terminalreporter):
    """The fuzz test's outcome counts (tests/test_fuzz.py), when it ran."""
    import sys
    fuzzing = sys.modules.get("fuzzing")
    if fuzzing is None or not fuzzing.OUTCOMES:
        return
    totals = {}
    for (_, outcome), n in fuzzing.OUTCOMES.items():
        totals[outcome] = totals.get(outcome, 0) + n
    targets = len({t for t, _ in fuzzing.OUTCOMES})
    terminalreporter.write_line(
        f"fuzz: {sum(totals.values())} calls over {targets} targets: "
        + ", ".join(f"{n} {k}" for k, n in sorted(totals.items())))

# issue 13: fold / unfold
collect_ignore += ["make_fold_fixtures.py"]
collect_ignore.append("make_tsize_fixtures.py")  # issue 13: transposed-conv output sizes
collect_ignore.append("make_3d_fixtures.py")  # issue 13: the 3-D family
