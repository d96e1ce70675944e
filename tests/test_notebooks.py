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
    "07_loops_to_registers",
    "08_normalization_backward",
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


def test_the_eight_notebooks_exist():
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


# Notebooks 1-3: exercises, notation, problems and GIFs -----------------------------------------

WORKED = EXPECTED[:3]
# notebooks with fill-in exercises and Problems (notebook 8 has no animation)
EXERCISED = EXPECTED                 # every notebook has exercises, notation and Problems


def _notebook_module(name):
    """Import notebooks/<name>.py as a module, as the notebooks' kernel does (its cwd is notebooks/)."""
    spec = importlib.util.spec_from_file_location(f"notebooks_{name}", NOTEBOOKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def exercise():
    return _notebook_module("exercise")


@pytest.fixture(scope="module")
def solutions():
    return _notebook_module("solutions")


def test_every_solution_passes_its_exercise(exercise, solutions):
    for number, item in exercise.EXERCISES.items():
        assert exercise.check_exercise(number, getattr(solutions, item.function), quiet=True) == "PASS", number


def test_the_placeholder_is_reported_not_done(exercise, capsys):
    def placeholder(*args):
        return ...

    for number in exercise.EXERCISES:
        assert exercise.check_exercise(number, placeholder) == "TODO"
    assert capsys.readouterr().out.count("not done yet") == len(exercise.EXERCISES)


def test_a_wrong_answer_is_reported_with_its_case(exercise, solutions, capsys):
    def off_by_one(i, k, s, p, d):
        return solutions.conv_output_size(i, k, s, p, d) + (i == 7)   # wrong on some cases only

    def unflipped(x, w, s):
        return solutions.conv_transpose_by_zero_insertion(x, w[::-1, ::-1], s)

    def crashes(dy, switches, x_shape):
        raise IndexError("out of bounds")

    assert exercise.check_exercise("E1.1", off_by_one) == "FAIL"
    assert exercise.check_exercise("E3.1", unflipped) == "FAIL"
    assert exercise.check_exercise("E2.2", crashes) == "FAIL"
    lines = capsys.readouterr().out.splitlines()
    assert "FAIL on case" in lines[0] and "(7, " in lines[0]              # names the failing arguments
    assert "largest difference at index" in lines[1]
    assert "IndexError: out of bounds" in lines[2]


@pytest.mark.parametrize("name", EXERCISED)
def test_notebook_has_its_exercises_notation_and_problems(name, exercise):
    notebook = jupytext.read(NOTEBOOKS / f"{name}.py")
    code, text = _code(notebook), _markdown(notebook)
    number = str(int(name[:2]))
    own = sorted(n for n in exercise.EXERCISES if n[1:].split(".")[0] == number)
    assert own, f"{name} has no exercises"
    assert sorted(re.findall(r'check_exercise\("(E[\d.]+)"', code)) == own
    for n in own:                                              # each fill-in starts as the placeholder
        function = exercise.EXERCISES[n].function
        assert re.search(rf"def {function}\(.*?\n(?:    .*\n)*?    return \.\.\.", code), n
        assert f"`{function}` in\n# [solutions.py](solutions.py)" in "\n".join(
            "# " + line for line in text.splitlines()) or "[solutions.py](solutions.py)" in text
    assert "[NOTATION.md](NOTATION.md)" in text and (NOTEBOOKS / "NOTATION.md").exists()
    problems = text.split("## Problems", 1)
    assert len(problems) == 2, f"{name} has no Problems section"
    numbered = re.findall(r"^\d\. ", problems[1].split("## References")[0], re.M)
    assert 3 <= len(numbered) <= 5


@pytest.mark.parametrize("name", WORKED)
def test_notebook_gifs_are_written_by_it_and_small(name):
    notebook = jupytext.read(NOTEBOOKS / f"{name}.py")
    code, text = _code(notebook), _markdown(notebook)
    shown = re.findall(r"!\[[^\]]*\]\(figures/([\w.-]+\.gif)\)", text)
    assert shown, f"{name} shows no animation"
    for gif in shown:
        assert f'"{gif}"' in code, f"{gif} is not written by {name}"
        path = NOTEBOOKS / "figures" / gif
        assert path.exists() and 0 < path.stat().st_size < 1_000_000
        assert path.read_bytes()[:6] in (b"GIF87a", b"GIF89a")
