"""Execute the notebooks and write each one's .ipynb with its outputs.

Each notebook's source is the paired text file ``NN_name.py`` (jupytext
"percent" format: ``# %%`` starts a code cell, ``# %% [markdown]`` a text
cell), which reviews well in a diff. This script runs it top to bottom in a
fresh Python kernel (nbclient, matplotlib's inline backend, so no screen is
needed) and writes ``NN_name.ipynb`` beside it, figures included, for reading
on the repository host. A failing cell, an ``assert`` included, stops the
notebook and makes this script exit with status 1.

    python notebooks/run.py            # all of them
    python notebooks/run.py 03 04      # those whose names start so
    python notebooks/run.py --check    # execute without writing

Needs the ``notebooks`` extra: ``pip install '.[notebooks]'``.
"""

import argparse
import os
import pathlib
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
REPOSITORY = HERE.parent
TIMEOUT_PER_CELL = 600  # seconds; a notebook is meant to take under 90 s in all


def sources(prefixes=()):
    """The notebooks' paired text files, in order, optionally filtered by name prefix."""
    found = sorted(p for p in HERE.glob("[0-9][0-9]_*.py"))
    if prefixes:
        found = [p for p in found if any(p.name.startswith(prefix) for prefix in prefixes)]
    return found


def execute(source, timeout=TIMEOUT_PER_CELL):
    """Run one paired text file in a new kernel; return (notebook with outputs, seconds)."""
    import jupytext
    from nbclient import NotebookClient

    notebook = jupytext.read(source)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(source.parent)}})
    # The kernel imports this checkout's deconv (and shares its warm Numba cache with the tests).
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPOSITORY), env.get("PYTHONPATH")]))
    env.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    start = time.perf_counter()
    client.execute(env=env)
    seconds = time.perf_counter() - start
    # Stable cell ids and no timestamps, so that re-running changes only what the outputs changed.
    for index, cell in enumerate(notebook.cells):
        cell.id = f"cell-{index:03d}"
        cell.metadata.pop("execution", None)
    return notebook, seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prefixes", nargs="*", help="run only the notebooks whose names start so")
    parser.add_argument("--check", action="store_true", help="execute without writing the .ipynb files")
    args = parser.parse_args(argv)

    import jupytext
    from nbclient.exceptions import CellExecutionError

    paths = sources(args.prefixes)
    if not paths:
        parser.error(f"no notebook matches {args.prefixes}")
    failed = []
    for source in paths:
        try:
            notebook, seconds = execute(source)
        except CellExecutionError as error:
            print(f"FAILED  {source.name}\n{error}", file=sys.stderr)
            failed.append(source.name)
            continue
        if not args.check:
            jupytext.write(notebook, source.with_suffix(".ipynb"))
        print(f"ok      {source.name}  {seconds:5.1f} s", flush=True)
    if failed:
        print(f"{len(failed)} notebook(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
