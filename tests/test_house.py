"""The package's rooms: every public name of the flat layout (recorded in
tests/data/public_names.json before the move) still imports from the same
place, old module paths give the very module of the room, and ``import
deconv`` loads the kernels and the ops only."""

import importlib
import json
import os
import subprocess
import sys
import textwrap

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "data", "public_names.json")) as f:
    PUBLIC_NAMES = json.load(f)


@pytest.mark.parametrize("module", sorted(PUBLIC_NAMES))
def test_public_names_still_import_from_the_same_place(module):
    mod = importlib.import_module(module)
    missing = [n for n in PUBLIC_NAMES[module] if not hasattr(mod, n)]
    assert not missing, f"{module} lost {missing}"
    # `from module import name` goes through the same attribute look-up
    exec(f"from {module} import {', '.join(PUBLIC_NAMES[module])}", {})


@pytest.mark.parametrize("old, new", [
    ("deconv.conv", "deconv.functional.conv"),
    ("deconv.pooling", "deconv.functional.pooling"),
    ("deconv.upsampling", "deconv.functional.upsampling"),
    ("deconv.shapes", "deconv.functional.shapes"),
    ("deconv.data", "deconv.models.data"),
    ("deconv.metrics", "deconv.models.metrics"),
    ("deconv.experiments", "deconv.models.recipes"),
])
def test_old_module_paths_are_the_rooms_modules(old, new):
    import deconv
    old_mod, new_mod = importlib.import_module(old), importlib.import_module(new)
    assert old_mod is new_mod
    assert getattr(deconv, old.split(".", 1)[1]) is new_mod
    assert new_mod.__spec__.name == new          # the alias left the module's own spec alone


def test_import_deconv_loads_no_training_plotting_or_benchmark_code():
    script = textwrap.dedent("""
        import sys, json
        import deconv
        print(json.dumps(sorted(m for m in sys.modules)))
    """)
    out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True,
                         text=True, timeout=300)
    loaded = set(json.loads(out.stdout))
    ours = {m for m in loaded if m.startswith("deconv")}
    assert ours <= {"deconv"} | {m for m in ours if m.startswith(("deconv.kernels", "deconv.functional"))}, ours
    for heavy in ("matplotlib", "sklearn", "tqdm", "scipy.special", "scipy.signal", "torch"):
        assert heavy not in loaded, heavy
    # and the rooms are there on first use
    import deconv
    assert deconv.nn.Conv2d and deconv.optim.Adam and deconv.train.Trainer and deconv.models.superres
