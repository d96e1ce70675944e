"""The argument checks that optim, train and models share (deconv.functional.validation):
each names the argument, the value and what was expected."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from deconv.functional.validation import (
    as_choice, as_float_dtype, as_generator, as_int_at_least, as_real, as_samples,
)


def test_as_int_at_least():
    assert as_int_at_least(np.int32(3), "n", 1) == 3 and type(as_int_at_least(3, "n", 1)) is int
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        as_int_at_least(0, "batch_size", 1)
    for bad in (2.0, True, "3", None):
        with pytest.raises(TypeError, match=r"epochs must be an int, got"):
            as_int_at_least(bad, "epochs", 0)


@pytest.mark.parametrize("kwargs, value, message", [
    (dict(), float("nan"), "x must be a finite number, got nan"),
    (dict(low=0), -0.5, "x must be a finite number >= 0, got -0.5"),
    (dict(low=0, low_open=True), 0, "x must be a finite number > 0, got 0.0"),
    (dict(high=1), 2, "x must be a finite number <= 1, got 2.0"),
    (dict(high=1, high_open=True), 1, "x must be a finite number < 1, got 1.0"),
    (dict(low=0, high=1, high_open=True), 1.0, r"x must be a finite number in \[0, 1\), got 1.0"),
    (dict(low=0, high=1, low_open=True), 0.0, r"x must be a finite number in \(0, 1\], got 0.0"),
    (dict(low=0), float("inf"), "x must be a finite number >= 0, got inf"),
])
def test_as_real_states_the_interval(kwargs, value, message):
    with pytest.raises(ValueError, match=message):
        as_real(value, "x", **kwargs)


@given(st.floats(0, 1, exclude_max=True))
def test_as_real_accepts_the_interval_and_returns_a_float(value):
    out = as_real(np.float32(value), "x", 0, 1, high_open=np.float32(value) < 1)
    assert type(out) is float and out == float(np.float32(value))


def test_as_real_refuses_non_numbers():
    for bad in (True, "0.1", None, 1j, np.array([0.1])):
        with pytest.raises(TypeError, match="lr must be a real number"):
            as_real(bad, "lr", 0)


def test_as_choice():
    assert as_choice("sgd", "optimizer", ("adam", "sgd")) == "sgd"
    assert as_choice(None, "progress", ("bar", None)) is None
    with pytest.raises(ValueError, match="optimizer must be one of 'adam', 'sgd', got 'rmsprop'"):
        as_choice("rmsprop", "optimizer", ("adam", "sgd"))
    with pytest.raises(ValueError, match="got True"):
        as_choice(True, "scale", (1, 2))                    # True == 1, but it is no scale


def test_as_float_dtype():
    assert as_float_dtype(np.float32) == np.dtype(np.float32)
    assert as_float_dtype("float64") == np.dtype(np.float64)
    with pytest.raises(TypeError, match="dtype must be np.float32 or np.float64, got int64"):
        as_float_dtype(np.int64)
    with pytest.raises(TypeError, match="dtype must be np.float32 or np.float64, got 'fancy'"):
        as_float_dtype("fancy")


def test_as_generator():
    g = np.random.default_rng(5)
    assert as_generator(g) is g
    assert as_generator(7).random() == np.random.default_rng(7).random()
    assert isinstance(as_generator(None), np.random.Generator)
    with pytest.raises(ValueError, match="rng seed must be >= 0, got -1"):
        as_generator(-1)
    for bad in (True, 1.5, "0"):
        with pytest.raises(TypeError, match="rng must be None, an int seed or a np.random.Gen"):
            as_generator(bad)


def test_as_samples():
    assert as_samples([[1, 2], [3, 4]], "x").shape == (2, 2)
    with pytest.raises(TypeError, match="y_train must be an array, got None"):
        as_samples(None, "y_train")
    with pytest.raises(ValueError, match="x must have a sample axis 0"):
        as_samples(3.0, "x")
    with pytest.raises(TypeError, match="dtype object"):
        as_samples(np.array([object()]), "x")
