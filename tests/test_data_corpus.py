"""The standard-library text corpus (deconv.models.corpus) and its windows
(deconv.data.stdlib_text): fixed files, fixed order, a named validation set,
no file on both sides."""

import os

import numpy as np
import pytest

from deconv import data
from deconv.models import corpus


@pytest.fixture(scope="module")
def files():
    return corpus.stdlib_files()


@pytest.fixture(scope="module")
def windows():
    return data.stdlib_text()


def test_validation_files_are_the_named_ones(files):
    train, val = files
    assert val == tuple(sorted(corpus.VALIDATION_FILES))
    assert corpus.VALIDATION_FILES == (
        "argparse.py", "calendar.py", "csv.py", "difflib.py", "fractions.py", "heapq.py",
        "json/decoder.py", "json/encoder.py", "shlex.py", "textwrap.py")
    assert set(train).isdisjoint(val)


def test_files_are_sorted_python_sources_outside_the_excluded_directories(files):
    train, _ = files
    assert list(train) == sorted(train)
    assert all(f.endswith(".py") for f in train)
    for f in train:
        assert not set(f.split("/")[:-1]) & corpus.EXCLUDED_DIRS, f
    assert "os.py" in train and "collections/__init__.py" in train
    root = corpus.stdlib_root()
    size = sum(os.path.getsize(os.path.join(root, f)) for f in train)
    assert 5e6 < size < 20e6                                  # "about 10 MB"


def test_the_texts_are_the_files_joined_in_order(files):
    root = corpus.stdlib_root()
    train_text, val_text = corpus.stdlib_text()
    expected = []
    for f in files[1]:
        with open(os.path.join(root, f), encoding="utf-8") as fh:
            expected.append(fh.read())
    assert val_text == "".join(expected)
    with open(os.path.join(root, files[0][0]), encoding="utf-8") as fh:
        assert train_text.startswith(fh.read())


def test_a_small_tree(tmp_path):
    def write(rel, text):
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    for f in corpus.VALIDATION_FILES:
        write(f, f"# {f}\n")
    write("b.py", "b\n")
    write("a/z.py", "z\n")
    write("a/test/t.py", "never\n")
    write("encodings/cp.py", "never\n")
    write("tests.py", "a module named tests is kept\n")
    write("notes.txt", "not python\n")
    write("bad.py", "")
    (tmp_path / "bad.py").write_bytes(b"\xff\xfe not utf-8\n")
    train, val = corpus.stdlib_files(tmp_path)
    assert train == ("a/z.py", "b.py", "bad.py", "tests.py")
    train_text, val_text = corpus.stdlib_text(tmp_path)
    assert train_text == "z\nb\na module named tests is kept\n"         # bad.py skipped
    assert val_text.startswith("# argparse.py\n# calendar.py\n")
    os.remove(tmp_path / "csv.py")
    with pytest.raises(FileNotFoundError, match="csv.py"):
        corpus.stdlib_files(tmp_path)


def test_stdlib_windows(windows):
    train_text, val_text = corpus.stdlib_text()
    train, val = windows
    assert len(train) == len(train_text) // 64 and len(val) == len(val_text) // 64
    np.testing.assert_array_equal(val.y.ravel(), data.encode(val_text)[:len(val) * 64])
    np.testing.assert_array_equal(train.y[:3].ravel(), data.encode(train_text)[:192])
    for s in windows:
        np.testing.assert_array_equal(s.mask, s.x != s.y)
        np.testing.assert_array_equal(s.mask.sum(axis=1), 10)
    assert np.mean(train.y == data.UNK) < 0.001
    small = data.stdlib_text(window=32, rate=0.25, seed=1)
    assert small.val.x.shape[1] == 32 and not np.array_equal(small.val.x[:10], val.x[:10, :32])
    again = data.stdlib_text()
    np.testing.assert_array_equal(again.val.x, val.x)
