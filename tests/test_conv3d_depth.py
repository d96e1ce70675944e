"""The depth walk of the 3-D convolutions (issue 13, "Speed"): depth runs,
the gathers of stacked slices, their workspaces, the depth padding's
non-finite rule and depth geometries far beyond the input.

The paths are checked against the NumPy/SciPy reference and the naive
kernels; tests/test_3d.py covers the ops' semantics at large."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import deconv
from deconv import kernels, reference, shapes
from deconv.kernels import plan
from determinism import run_hashes
from tolerances import assert_close
from workspace import extra_over_result

INF = np.inf


# ---------------------------------------------------------------------------
# depth runs
# ---------------------------------------------------------------------------

@st.composite
def correlations(draw):
    """A 1-D correlation, its padding possibly negative (the input gradient's
    phases, plan.phase_taps, have such), and any number of outputs >= 1."""
    return dict(input_size=draw(st.integers(1, 12)), output_size=draw(st.integers(1, 12)),
                kernel=draw(st.integers(1, 5)), stride=draw(st.integers(1, 4)),
                padding=draw(st.integers(-3, 8)), dilation=draw(st.integers(1, 4)))


@given(correlations())
def test_depth_runs_give_each_output_the_taps_that_reach_the_input(c):
    runs = shapes.depth_runs(**c)
    seen = []
    for first, count, lo, hi, start in runs:
        assert count >= 1 and 0 <= lo <= hi <= c["kernel"]
        for m in range(count):
            o = first + m
            reach = [j for j in range(c["kernel"])
                     if 0 <= o * c["stride"] + j * c["dilation"] - c["padding"] < c["input_size"]]
            assert list(range(lo, hi)) == reach
            if reach:
                assert start + m * c["stride"] == o * c["stride"] + lo * c["dilation"] - c["padding"]
            seen.append(o)
    assert seen == list(range(c["output_size"]))
    # consecutive runs differ (they are as long as they can be)
    for a, b in zip(runs[:-1], runs[1:]):
        assert a[2:4] != b[2:4]


def test_depth_runs_skip_a_huge_padding_without_visiting_it():
    assert shapes.depth_runs(1, 1, 3, 1, 2**19, 2**19) == [(0, 1, 1, 2, 0)]
    # 2**20 outputs in four runs: outputs 0, 1 reach the input through tap 1,
    # outputs 2**19 and 2**19 + 1 through tap 0, the rest only the padding
    assert shapes.depth_runs(2, 2**20, 2, 1, 2**19, 2**19) == [
        (0, 2, 1, 2, 0), (2, 2**19 - 2, 0, 0, 0), (2**19, 2, 0, 1, 0),
        (2**19 + 2, 2**19 - 2, 0, 0, 0)]


# ---------------------------------------------------------------------------
# the paths: stacks of one or several taps, groups, phases; several blocks
# ---------------------------------------------------------------------------

PATHS = [
    # stride 1: consecutive stacks overlap; boundary depths have 2 of the 3 taps
    ("conv3d", (2, 4, 9, 5, 6), (3, 4, 3, 3, 2), dict(padding=1)),
    # groups and a depth dilation: stacks in (group, tap, channel) order
    ("conv3d", (2, 4, 9, 5, 4), (6, 2, 3, 2, 3), dict(padding=(2, 1, 0), dilation=(2, 1, 1),
                                                     groups=2)),
    # the U-Net's 2x2x2 stride 2 pair: two phases of one tap; the backward's
    # weight gradient runs tap by tap (its stacks would outgrow the budget)
    ("conv_transpose3d", (2, 6, 4, 4, 4), (6, 5, 2, 2, 2), dict(stride=2)),
    ("conv3d", (2, 5, 8, 8, 8), (6, 5, 2, 2, 2), dict(stride=2)),
    # strided depth with padding and an output padding
    ("conv_transpose3d", (1, 4, 5, 3, 4), (4, 3, 3, 2, 2), dict(stride=(2, 1, 2), padding=1,
                                                               output_padding=(1, 0, 0))),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name, x_shape, w_shape, kw", PATHS)
def test_paths_match_the_reference_and_the_naive_kernels(name, x_shape, w_shape, kw, dtype):
    rng = np.random.default_rng(20)
    x = rng.uniform(-1, 1, x_shape).astype(dtype)
    w = rng.uniform(-1, 1, w_shape).astype(dtype)
    c_out = w.shape[0] if name == "conv3d" else w.shape[1] * kw.get("groups", 1)
    b = rng.uniform(-1, 1, c_out).astype(dtype)
    op, backward = getattr(deconv, name), getattr(deconv, name + "_backward")
    y = op(x, w, b, **kw)
    assert y.dtype == dtype and y.flags.c_contiguous
    assert_close(y, getattr(reference, name)(x, w, b, **kw), scale=10)
    g = rng.uniform(-1, 1, y.shape).astype(dtype)
    got = backward(g, x, w, **kw)
    for a, r in zip(got, getattr(reference, name + "_backward")(g, x, w, **kw)):
        assert a.dtype == dtype
        assert_close(a, r, scale=30)
    with kernels.use("naive"):
        naive = [op(x, w, b, **kw), *backward(g, x, w, **kw)]
    tol = 1e-4 if dtype == np.float32 else 1e-11
    for a, r in zip([y, *got], naive):
        np.testing.assert_allclose(a, r, rtol=tol, atol=tol)


_DETERMINISM_SCRIPT = r"""
import hashlib, json, numpy as np, deconv
import sys
sys.path.insert(0, {tests!r})
from test_conv3d_depth import PATHS
rng = np.random.default_rng(0)
outs = []
for name, x_shape, w_shape, kw in PATHS:
    for dt in (np.float32, np.float64):
        x = rng.standard_normal(x_shape).astype(dt)
        w = rng.standard_normal(w_shape).astype(dt)
        y = getattr(deconv, name)(x, w, **kw)
        outs += [y, *getattr(deconv, name + "_backward")(y, x, w, **kw)]
print(json.dumps([hashlib.sha256(np.ascontiguousarray(o).tobytes()).hexdigest() for o in outs]))
"""


def test_every_path_is_bitwise_identical_across_thread_counts():
    import os
    script = _DETERMINISM_SCRIPT.format(tests=os.path.dirname(os.path.abspath(__file__)))
    assert run_hashes(script, NUMBA_NUM_THREADS=1) == run_hashes(script, NUMBA_NUM_THREADS=2)


def test_inputs_are_not_written():
    rng = np.random.default_rng(21)
    x = rng.standard_normal((2, 4, 6, 5, 5))
    w = rng.standard_normal((3, 4, 3, 3, 3))
    g = rng.standard_normal((2, 3, 6, 5, 5))
    copies = [a.copy() for a in (x, w, g)]
    deconv.conv3d(x, w, padding=1)
    deconv.conv3d_backward(g, x, w, padding=1)
    deconv.conv_transpose3d(g, w, padding=1)
    for a, c in zip((x, w, g), copies):
        np.testing.assert_array_equal(a, c)


# ---------------------------------------------------------------------------
# workspaces: a pass allocates its result plus at most as much again
# ---------------------------------------------------------------------------

def test_workspaces_stay_within_the_result():
    """The U-Net rows of the benchmark at half the channels and size."""
    rng = np.random.default_rng(22)
    x = rng.standard_normal((2, 32, 16, 16, 16)).astype(np.float32)
    w = rng.standard_normal((32, 32, 3, 3, 3)).astype(np.float32)
    xt = rng.standard_normal((2, 32, 8, 8, 8)).astype(np.float32)
    wt = rng.standard_normal((32, 32, 2, 2, 2)).astype(np.float32)
    b = rng.standard_normal(32).astype(np.float32)
    calls = {
        "conv3d": lambda: deconv.conv3d(x, w, b, padding=1),
        "conv3d_backward": lambda: deconv.conv3d_backward(x, x, w, padding=1),
        "conv_transpose3d": lambda: deconv.conv_transpose3d(xt, wt, b, stride=2),
        "conv_transpose3d_backward": lambda: deconv.conv_transpose3d_backward(x, xt, wt,
                                                                              stride=2),
    }
    for name, fn in calls.items():
        assert extra_over_result(fn) <= 1.0, name


# ---------------------------------------------------------------------------
# non-finite values over the depth padding (the rule of tests/test_nonfinite.py)
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_an_inf_tap_over_the_depth_padding_gives_nan_in_the_gathers(dtype):
    x = np.ones((1, 1, 3, 1, 1), dtype)
    w = np.array([INF, 1, 1], dtype).reshape(1, 1, 3, 1, 1)
    y = deconv.conv3d(x, w, padding=(1, 0, 0))
    np.testing.assert_array_equal(y.ravel(), [np.nan, INF, INF])
    np.testing.assert_array_equal(y, reference.conv3d(x, w, padding=(1, 0, 0)))
    # depths 0 and 4 read the padding alone, 1 and 2 put the inf tap over it;
    # depth 3 reads the one input through the inf tap
    y = deconv.conv3d(np.ones((1, 1, 1, 1, 1), dtype), w, np.array([0.5], dtype),
                      padding=(3, 0, 0))
    np.testing.assert_array_equal(y.ravel(), [np.nan, np.nan, np.nan, INF, np.nan])
    # the weight gradient: an inf grad_output over the padding
    g = np.array([INF, 1, 1], dtype).reshape(1, 1, 3, 1, 1)
    _, gw, _ = deconv.conv3d_backward(g, x, np.ones_like(w), padding=(1, 0, 0))
    _, rw, _ = reference.conv3d_backward(g, x, np.ones_like(w), padding=(1, 0, 0))
    np.testing.assert_array_equal(gw, rw.astype(dtype))
    # tap 0 of output 0 reads the padding: inf * 0; without it the sum would be 2
    assert np.isnan(gw.ravel()[0]) and list(gw.ravel()[1:]) == [INF, INF]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_scatters_leave_no_trace_of_the_depth_padding(dtype):
    """conv3d's input gradient and the transposed conv forward reach no padding
    (the values are PyTorch 2.13's; the SciPy reference's full convolution
    multiplies the padding and gives NaN at the end)."""
    w = np.array([INF, 1, 1], dtype).reshape(1, 1, 3, 1, 1)
    g = np.ones((1, 1, 3, 1, 1), dtype)
    gx, _, _ = deconv.conv3d_backward(g, np.ones_like(g), w, padding=(1, 0, 0))
    np.testing.assert_array_equal(gx.ravel(), [INF, INF, 2])
    y = deconv.conv_transpose3d(g, w, padding=(1, 0, 0))
    np.testing.assert_array_equal(y.ravel(), [INF, INF, 2])


# ---------------------------------------------------------------------------
# depth geometries far beyond the input: only the taps that reach it are run
# ---------------------------------------------------------------------------

def test_a_huge_depth_dilation_and_padding_run_the_one_tap_that_reaches():
    rng = np.random.default_rng(23)
    x = rng.standard_normal((2, 3, 1, 5, 4))
    w = rng.standard_normal((4, 3, 3, 2, 2))
    b = rng.standard_normal(4)
    kw = dict(padding=(2**19, 1, 0), dilation=(2**19, 1, 1))
    y = deconv.conv3d(x, w, b, **kw)
    assert y.shape == (2, 4, 1, 6, 3)
    np.testing.assert_allclose(y[:, :, 0], deconv.conv2d(x[:, :, 0], w[:, :, 1], b,
                                                        padding=(1, 0)), rtol=1e-12)
    g = rng.standard_normal(y.shape)
    gx, gw, gb = deconv.conv3d_backward(g, x, w, **kw)
    gx2, gw2, gb2 = deconv.conv2d_backward(g[:, :, 0], x[:, :, 0], w[:, :, 1], padding=(1, 0))
    np.testing.assert_allclose(gx[:, :, 0], gx2, rtol=1e-12)
    np.testing.assert_allclose(gw[:, :, 1], gw2, rtol=1e-12)
    np.testing.assert_array_equal(gw[:, :, [0, 2]], 0)
    np.testing.assert_allclose(gb, gb2, rtol=1e-12)


def test_a_huge_depth_stride_of_a_transposed_conv_writes_each_tap_once():
    rng = np.random.default_rng(24)
    x = rng.standard_normal((1, 2, 2, 3, 2))
    w = rng.standard_normal((2, 3, 2, 2, 2))
    b = rng.standard_normal(3)
    s = 2**16
    y = deconv.conv_transpose3d(x, w, b, stride=(s, 1, 1))
    assert y.shape == (1, 3, s + 2, 4, 3)
    for depth, i, kd in [(0, 0, 0), (1, 0, 1), (s, 1, 0), (s + 1, 1, 1)]:
        np.testing.assert_allclose(y[:, :, depth], deconv.conv_transpose2d(
            x[:, :, i], w[:, :, kd], b), rtol=1e-12)
    np.testing.assert_array_equal(y[:, :, 2:s], np.broadcast_to(
        b.reshape(1, 3, 1, 1, 1), (1, 3, s - 2, 4, 3)))
    g = rng.standard_normal(y.shape)
    gx, gw, _ = deconv.conv_transpose3d_backward(g, x, w, stride=(s, 1, 1))
    for i in range(2):
        want = sum(deconv.conv_transpose2d_backward(g[:, :, i * s + kd], x[:, :, i], w[:, :, kd])[0]
                   for kd in range(2))
        np.testing.assert_allclose(gx[:, :, i], want, rtol=1e-12)
    for kd in range(2):
        want = sum(deconv.conv_transpose2d_backward(g[:, :, i * s + kd], x[:, :, i], w[:, :, kd])[1]
                   for i in range(2))
        np.testing.assert_allclose(gw[:, :, kd], want, rtol=1e-12)


def test_the_depth_phases_come_from_the_2d_plan():
    """The input gradient walks plan.phase_taps along depth: a stride-3 conv whose
    kernel misses a phase leaves those depths zero."""
    assert [p.first for p in plan.phase_taps(2, 3, 0, 1, 7)] == [0, 1]
    rng = np.random.default_rng(25)
    x = rng.standard_normal((1, 2, 7, 3, 3))
    w = rng.standard_normal((2, 2, 2, 1, 1))
    g = rng.standard_normal(deconv.conv3d(x, w, stride=(3, 1, 1)).shape)
    gx, _, _ = deconv.conv3d_backward(g, x, w, stride=(3, 1, 1))
    np.testing.assert_array_equal(gx[:, :, [2, 5, 6]], 0)
    assert_close(gx, reference.conv3d_backward(g, x, w, stride=(3, 1, 1))[0])
