"""3-D convolutions whose windows tile without overlap (kernel == stride, no
padding, no dilation: a 3-D U-Net's k2 s2 down- and up-sampling): the
pointwise path over patches moved into channels. Checked against the NumPy/
SciPy reference, the general depth walk (the same ops with a zero padding
that changes nothing is not this path) and across thread counts."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import deconv
from deconv import reference
from deconv.functional import conv as fconv
from determinism import run_hashes
from tolerances import assert_close
from workspace import extra_over_result


@st.composite
def patch_geometries(draw):
    """kernel == stride per axis, sizes with remainders past the last patch,
    groups, and an output_padding for the transposed conv."""
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(3))
    size = tuple(draw(st.integers(k, 2 * k + 1)) for k in kernel)
    groups = draw(st.integers(1, 2))
    c_in, c_out = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
    output_padding = tuple(draw(st.integers(0, k - 1)) for k in kernel)
    return dict(N=draw(st.integers(1, 2)), c_in=c_in, c_out=c_out, size=size, kernel=kernel,
                groups=groups, output_padding=output_padding,
                dtype=draw(st.sampled_from([np.float32, np.float64])),
                seed=draw(st.integers(0, 2**16)))


@given(patch_geometries())
def test_patch_convs_match_the_reference(g):
    rng = np.random.default_rng(g["seed"])
    dt, k, groups = g["dtype"], g["kernel"], g["groups"]
    x = rng.standard_normal((g["N"], g["c_in"]) + g["size"])
    w = rng.standard_normal((g["c_out"], g["c_in"] // groups) + k)
    b = rng.standard_normal(g["c_out"])
    kw = dict(stride=k, groups=groups)
    y = reference.conv3d(x, w, b, **kw)
    gy = rng.standard_normal(y.shape)
    assert_close(deconv.conv3d(x.astype(dt), w.astype(dt), b.astype(dt), **kw), y, dt)
    got = deconv.conv3d_backward(gy.astype(dt), x.astype(dt), w.astype(dt), **kw)
    for a, r in zip(got, reference.conv3d_backward(gy, x, w, **kw)):
        assert_close(a, r, dt)
    # the transposed conv with the conv's weight array read as (C_in, C_out/groups, k)
    wt = rng.standard_normal((g["c_in"], g["c_out"] // groups) + k)
    bt = rng.standard_normal(g["c_out"])
    kt = dict(kw, output_padding=g["output_padding"])
    yt = reference.conv_transpose3d(x, wt, bt, **kt)
    gyt = rng.standard_normal(yt.shape)
    assert_close(deconv.conv_transpose3d(x.astype(dt), wt.astype(dt), bt.astype(dt), **kt), yt,
                 dt)
    got = deconv.conv_transpose3d_backward(gyt.astype(dt), x.astype(dt), wt.astype(dt), **kt)
    for a, r in zip(got, reference.conv_transpose3d_backward(gyt, x, wt, **kt)):
        assert_close(a, r, dt)


def test_the_patch_path_runs_exactly_where_windows_tile(monkeypatch):
    calls = []
    real = fconv._patch_conv

    def spy(*args, **kwargs):
        calls.append(args[3].kernel)
        return real(*args, **kwargs)

    monkeypatch.setattr(fconv, "_patch_conv", spy)
    x = np.ones((1, 2, 4, 4, 4))
    deconv.conv3d(x, np.ones((3, 2, 2, 2, 2)), stride=2)
    deconv.conv3d(x, np.ones((3, 2, 2, 1, 2)), stride=(2, 1, 2))
    assert calls == [(2, 2, 2), (2, 1, 2)]
    deconv.conv3d(x, np.ones((3, 2, 2, 2, 2)), stride=2, padding=1)       # padding
    deconv.conv3d(x, np.ones((3, 2, 2, 2, 2)), stride=1)                  # overlap
    deconv.conv3d(x, np.ones((3, 2, 2, 2, 2)), stride=2, dilation=(1, 1, 2))
    assert len(calls) == 2


def test_patch_workspaces_stay_within_the_result():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 16, 16, 16, 16)).astype(np.float32)
    w = rng.standard_normal((16, 16, 2, 2, 2)).astype(np.float32)
    small = rng.standard_normal((2, 16, 8, 8, 8)).astype(np.float32)
    calls = {"conv3d": lambda: deconv.conv3d(x, w, stride=2),
             "conv3d_backward": lambda: deconv.conv3d_backward(small, x, w, stride=2),
             "conv_transpose3d": lambda: deconv.conv_transpose3d(small, w, stride=2),
             "conv_transpose3d_backward": lambda: deconv.conv_transpose3d_backward(
                 x, small, w, stride=2)}
    for name, fn in calls.items():
        assert extra_over_result(fn) <= 1.0, name


def test_patch_paths_are_bitwise_identical_across_thread_counts():
    script = r"""
import hashlib, json, numpy as np, deconv
rng = np.random.default_rng(5)
outs = []
for dt in (np.float32, np.float64):
    x = rng.standard_normal((2, 6, 9, 8, 7)).astype(dt)
    w = rng.standard_normal((4, 3, 2, 2, 3)).astype(dt)
    kw = dict(stride=(2, 2, 3), groups=2)
    y = deconv.conv3d(x, w, **kw)
    outs += [y, *deconv.conv3d_backward(y[:, :4], x, w, **kw)]
    wt = rng.standard_normal((6, 2, 2, 2, 3)).astype(dt)
    kt = dict(kw, output_padding=(1, 0, 2))
    yt = deconv.conv_transpose3d(x, wt, **kt)
    outs += [yt, *deconv.conv_transpose3d_backward(yt, x, wt, **kt)]
print(json.dumps([hashlib.sha256(np.ascontiguousarray(o).tobytes()).hexdigest() for o in outs]))
"""
    assert run_hashes(script, NUMBA_NUM_THREADS=1) == run_hashes(script, NUMBA_NUM_THREADS=2)


@pytest.mark.parametrize("kernel_set", ["naive", "tiled"])
def test_patch_path_under_either_kernel_set(kernel_set):
    rng = np.random.default_rng(8)
    x = rng.standard_normal((1, 3, 4, 6, 4))
    w = rng.standard_normal((2, 3, 2, 3, 2))
    gy = rng.standard_normal((1, 2, 2, 2, 2))
    with deconv.kernels.use(kernel_set):
        y = deconv.conv3d(x, w, stride=(2, 3, 2))
        grads = deconv.conv3d_backward(gy, x, w, stride=(2, 3, 2))
    assert_close(y, reference.conv3d(x, w, stride=(2, 3, 2)), np.float64)
    for a, r in zip(grads, reference.conv3d_backward(gy, x, w, stride=(2, 3, 2))):
        assert_close(a, r, np.float64)
