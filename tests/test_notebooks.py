"""Every notebook executes without error, and its committed .ipynb matches its text source.

The notebooks state their numeric checks as ``assert``s (mostly through
``deconv.gradcheck.compare``), so executing one is a test of what it claims.
"""

import importlib.util
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"

EXPECTED = [
    "01_convolution_arithmetic",
    "02_backpropagation",
    "03_transposed_convolution",
    "04_checkerboard_artifacts",
    "05_unpooling_deconvnet",
    "06_super_resolution",
]

nbclient = pytest.importorskip("nbclient", reason="the notebooks extra is not installed")
jupytext = pytest.importorskip("jupytext", reason="the notebooks extra is not installed")


def _runner():
    spec = importlib.util.spec_from_file_location("notebook_runner", NOTEBOOKS / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _code(notebook):
    return "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")


def _markdown(notebook):
    return "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "markdown")


def test_the_six_notebooks_exist():
    assert [p.stem for p in _runner().sources()] == EXPECTED


@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_executes(name):
    runner = _runner()
    notebook, seconds = runner.execute(NOTEBOOKS / f"{name}.py")
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), f"{name} shows no figure"
    print(f"{name}: {seconds:.1f} s")


@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_states_checks_and_cites(name):
    notebook = jupytext.read(NOTEBOOKS / f"{name}.py")
    code = _code(notebook)
    assert re.search(r"^\s*(assert\b|compare\()", code, re.M), f"{name} asserts nothing"
    text = _markdown(notebook)
    assert re.search(r"^#+ *References", text, re.M), f"{name} has no References section"
    assert re.search(r"\(?(19|20)\d\d\)?", text), f"{name} cites no dated work"


@pytest.mark.parametrize("name", EXPECTED)
def test_committed_ipynb_matches_its_source_and_has_outputs(name):
    source = jupytext.read(NOTEBOOKS / f"{name}.py")
    committed = jupytext.read(NOTEBOOKS / f"{name}.ipynb")
    assert [(c.cell_type, c.source) for c in committed.cells] == \
        [(c.cell_type, c.source) for c in source.cells], \
        f"{name}.ipynb is stale: run python notebooks/run.py {name[:2]}"
    code_cells = [c for c in committed.cells if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in code_cells), f"{name}.ipynb was not executed"
    assert any("image/png" in o.get("data", {}) for c in code_cells for o in c.outputs)
    assert not [o for c in code_cells for o in c.outputs if o.output_type == "error"]
