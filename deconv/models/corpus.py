"""The text corpus: the Python standard library's own source, read from the running interpreter.

About 10 MB of ``.py`` files (10.6 MB on CPython 3.11) that every Python
installation carries, so nothing is downloaded. Which files, and in which
order, is fixed:

* every ``*.py`` file under ``sysconfig.get_paths()["stdlib"]``, walked in
  sorted order of the POSIX relative path (``argparse.py`` before
  ``asyncio/__init__.py``);
* except the directories :data:`EXCLUDED_DIRS`: the test suites (``test``,
  ``tests``, ``idle_test``: generated and repetitive), ``encodings`` (codec
  tables, mostly ``\\uXXXX`` escapes), ``pydoc_data`` (documentation, not
  code: the corpus of :func:`deconv.data.text`), installed packages
  (``site-packages``, ``dist-packages``) and ``__pycache__``.

The split is by file: :data:`VALIDATION_FILES` (ten modules present in
every CPython from 3.10 on) validate, every other file trains. Files are
read as UTF-8; a file that is not valid UTF-8 is skipped (none is, in
CPython 3.10-3.13).

Examples
--------
>>> from deconv.models import corpus
>>> "argparse.py" in corpus.VALIDATION_FILES
True
>>> train, val = corpus.stdlib_files()
>>> set(train).isdisjoint(val) and len(val) == len(corpus.VALIDATION_FILES)
True
"""

import os
import sysconfig

__all__ = ["EXCLUDED_DIRS", "VALIDATION_FILES", "stdlib_root", "stdlib_files", "stdlib_text"]

#: Directory names never entered (anywhere in the tree).
EXCLUDED_DIRS = frozenset({"test", "tests", "idle_test", "encodings", "pydoc_data",
                           "site-packages", "dist-packages", "__pycache__"})

#: The validation files, POSIX paths relative to the standard library's directory.
VALIDATION_FILES = (
    "argparse.py", "calendar.py", "csv.py", "difflib.py", "fractions.py", "heapq.py",
    "json/decoder.py", "json/encoder.py", "shlex.py", "textwrap.py",
)


def stdlib_root():
    """The running interpreter's standard-library directory."""
    return sysconfig.get_paths()["stdlib"]


def stdlib_files(root=None):
    """``(train, val)``: the corpus' files as sorted tuples of POSIX relative paths.

    ``root`` defaults to :func:`stdlib_root` (tests pass a small tree).
    Raises FileNotFoundError if a validation file is missing (the split
    would silently change otherwise).
    """
    root = stdlib_root() if root is None else os.fspath(root)
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in EXCLUDED_DIRS)
        rel = os.path.relpath(dirpath, root)
        for f in filenames:
            if f.endswith(".py"):
                path = f if rel == "." else os.path.join(rel, f)
                found.append(path.replace(os.sep, "/"))
    found.sort()
    missing = [f for f in VALIDATION_FILES if f not in found]
    if missing:
        raise FileNotFoundError(f"the standard library at {root} lacks the validation "
                                f"file(s) {missing}")
    val = set(VALIDATION_FILES)
    return (tuple(f for f in found if f not in val),
            tuple(f for f in found if f in val))


def _read(root, files):
    parts = []
    for rel in files:
        try:
            with open(os.path.join(root, *rel.split("/")), encoding="utf-8") as f:
                parts.append(f.read())
        except UnicodeDecodeError:
            continue
    return "".join(parts)


def stdlib_text(root=None):
    """``(train, val)``: the texts of :func:`stdlib_files`, each file's text joined in order.

    Files are joined with nothing in between (each ends with a newline);
    line endings are normalised to ``"\\n"`` by text-mode reading.
    """
    root = stdlib_root() if root is None else os.fspath(root)
    train, val = stdlib_files(root)
    return _read(root, train), _read(root, val)
