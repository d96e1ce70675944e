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


# The rooms in order; a module may import its own room and the rooms before it.
_ROOM_ORDER = ["kernels", "functional", "nn", "optim train models", "bench cli"]


def _room_of(module):
    """The rank of a module ``deconv.X...`` in _ROOM_ORDER (the package itself: functional)."""
    parts = module.split(".")
    if len(parts) == 1:
        return 1                        # `import deconv` gives the ops
    top = parts[1]
    if top in ("conv", "pooling", "upsampling", "shapes"):
        return 1
    if top in ("data", "metrics", "experiments"):
        return 3
    if top in ("gradcheck",):
        return 2                        # an oracle for layers: it may use nn, nothing above
    if top in ("reference", "check", "__main__"):
        return {"reference": -1, "check": 2, "__main__": 4}[top]
    for rank, names in enumerate(_ROOM_ORDER):
        if top in names.split():
            return rank
    raise AssertionError(f"{module} is in no room")


def _deconv_imports(path, module):
    import ast
    tree = ast.parse(open(path).read())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "deconv")
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "deconv":
                found.update(f"deconv.{a.name}" for a in node.names)
            elif node.module.startswith("deconv."):
                found.add(node.module)
    return found


def _package_modules():
    root = os.path.join(os.path.dirname(HERE), "deconv")
    for dirpath, _, files in os.walk(root):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(dirpath, f)
                rel = os.path.relpath(path, os.path.dirname(root))[:-3].replace(os.sep, ".")
                yield path, rel[:-len(".__init__")] if rel.endswith(".__init__") else rel


def test_rooms_import_only_their_own_and_the_rooms_before():
    import deconv
    wrong = []
    for path, module in _package_modules():
        if module == "deconv":
            continue                    # the facade: it names every room (lazily)
        rank = _room_of(module)
        for imported in _deconv_imports(path, module):
            if imported.split(".")[1:2] and f"deconv.{imported.split('.')[1]}" not in deconv.MOVED \
                    and imported.split(".")[1] not in deconv._LAZY + ("shapes",) \
                    and not os.path.exists(os.path.join(os.path.dirname(HERE), *imported.split("."))):
                # `from deconv import conv1d` and the like: the ops
                imported = "deconv"
            if rank == -1 or _room_of(imported) > rank:
                wrong.append(f"{module} imports {imported}")
    assert not wrong, "\n".join(wrong)
