"""Convolutions cost what their inputs and outputs hold, not what stride and dilation say (issue 11).

A stride of 2**16 on a 5x5 input, or a dilation of 2**14 with the padding to
match on a 1x1 input, makes tiny outputs; the tiled kernels' phase planes
used to grow with stride**2 and dilation**2 (128 GiB refused by the byte
cap; 8.35 GB and 15 s). Past a bound on the planes tied to the operands
(:func:`deconv.kernels.plan.forward_fits`, :func:`~deconv.kernels.plan.reduce_fits`)
the passes run the naive loop nests, and the input gradient's phases are
only those a tap reaches (at most k of the s).

The issue's reproducers run in a child process under an address-space limit
and a hang guard (no timing is asserted); hypothesis then draws huge strides,
dilations and paddings on small inputs, all six passes, against the naive
kernels (themselves tested against :mod:`deconv.reference`).
"""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import deconv
from deconv import kernels
from deconv.kernels import plan
from tolerances import assert_close

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HANG_GUARD_SECONDS = 300


def test_the_issue_reproducers_2_and_3_within_a_memory_limit():
    """Every pass of the reproducers, forward and backward, conv and transposed,
    in a process that may map 2 GiB more than it has after importing: before the
    fix the first call asked for 128 GiB and the second for 8.35 GB."""
    script = textwrap.dedent("""
        import resource
        import numpy as np
        import deconv
        f32 = np.float32
        x = np.arange(1, 1 + 8 * 25, dtype=f32).reshape(1, 8, 5, 5)
        w = np.arange(64, dtype=f32).reshape(8, 8, 1, 1) / 64
        x1 = np.arange(1, 9, dtype=f32).reshape(1, 8, 1, 1)
        w2 = np.ones((8, 8, 2, 2), f32)
        xd = np.ones((1, 1, 1, 1), f32)
        wd = np.ones((1, 1, 2, 2), f32)
        # compile first: Numba reserves address space as it compiles
        for _ in range(2):
            used = int(open("/proc/self/statm").read().split()[0]) * resource.getpagesize()
            if _:
                resource.setrlimit(resource.RLIMIT_AS, (used + 2 * 2**30, used + 2 * 2**30))
            y = deconv.conv2d(x, w, stride=2**16)
            gx, gw, gb = deconv.conv2d_backward(np.ones_like(y), x, w, stride=2**16)
            yt = deconv.conv_transpose2d(x1, w.transpose(1, 0, 2, 3).copy(), stride=2**16)
            gtx, gtw, gtb = deconv.conv_transpose2d_backward(np.ones_like(yt), x1,
                                                              w.transpose(1, 0, 2, 3).copy(),
                                                              stride=2**16)
            y2 = deconv.conv2d(x1, w2, dilation=2**14, padding=2**13)
            g2 = deconv.conv2d_backward(np.ones_like(y2), x1, w2, dilation=2**14, padding=2**13)
            y3 = deconv.conv2d(xd, wd, dilation=2**20, padding=2**19)
            g3 = deconv.conv2d_backward(np.ones_like(y3), xd, wd, dilation=2**20, padding=2**19)
        np.savez(OUT, y=y, gx=gx, gw=gw, gb=gb, yt=yt, gtx=gtx, gtw=gtw, gtb=gtb, y2=y2,
                 g2x=g2[0], g2w=g2[1], y3=y3, g3x=g3[0], g3w=g3[1])
    """)
    out = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"huge_geometry_{os.getpid()}.npz")
    proc = subprocess.run([sys.executable, "-c", f"OUT = {out!r}\n" + script], cwd=ROOT,
                          env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True, text=True,
                          timeout=HANG_GUARD_SECONDS)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with np.load(out) as saved:
        r = dict(saved)
    os.remove(out)
    x = np.arange(1, 1 + 8 * 25, dtype=np.float64).reshape(1, 8, 5, 5)
    w = np.arange(64, dtype=np.float64).reshape(8, 8) / 64
    # stride 2**16 on 5x5: one window, at the top-left pixel
    assert r["y"].shape == (1, 8, 1, 1)
    assert_close(r["y"][0, :, 0, 0], w @ x[0, :, 0, 0])
    expected_gx = np.zeros((1, 8, 5, 5))
    expected_gx[0, :, 0, 0] = w.sum(axis=0)
    assert_close(r["gx"], expected_gx)
    assert_close(r["gw"][:, :, 0, 0], np.broadcast_to(x[0, :, 0, 0], (8, 8)))
    assert_close(r["gb"], np.ones(8))
    # the transposed conv of a 1x1 input: its one pixel times the weight
    assert r["yt"].shape == (1, 8, 1, 1)
    x1 = np.arange(1, 9.0)
    assert_close(r["yt"][0, :, 0, 0], w @ x1)
    assert_close(r["gtx"][0, :, 0, 0], w.sum(axis=0))
    assert_close(r["gtw"][:, :, 0, 0], np.broadcast_to(x1[:, None], (8, 8)))
    # dilation 2**14 with padding 2**13 on 1x1: the four taps straddle the pixel
    assert r["y2"].shape == (1, 8, 1, 1) and not r["y2"].any()
    assert not r["g2x"].any() and not r["g2w"].any()
    assert r["y3"].shape == (1, 1, 1, 1) and not r["y3"].any()
    assert not r["g3x"].any() and not r["g3w"].any()


def test_tiled_plans_refuse_the_planes_of_huge_strides_and_keep_real_layers():
    # the issue's stride: planes of 8 * 2**32 elements for 208 operand elements
    assert not plan.forward_fits((8, 8, 1, 1), (2**16, 2**16, 0, 0, 1, 1), 1, 8 * 25 + 8)
    assert not plan.reduce_fits((8, 8, 1, 1), (2**16, 2**16, 0, 0, 1, 1), 1, 1, 8 * 25 + 8)
    # layers of real networks keep the tiles: (C_in, H, k, s, p, d)
    for c_in, size, k, s, p, d in [(3, 224, 7, 2, 3, 1), (64, 56, 3, 1, 1, 1), (64, 56, 1, 2, 0, 1),
                                   (128, 14, 3, 2, 1, 1), (256, 8, 4, 2, 1, 1), (64, 32, 3, 1, 4, 4),
                                   (512, 7, 3, 1, 1, 1), (1, 28, 5, 1, 2, 1), (16, 4, 3, 4, 0, 1)]:
        out = (size + 2 * p - d * (k - 1) - 1) // s + 1
        geometry = (s, s, p, p, d, d)
        operands = c_in * size * size + c_in * out * out
        assert plan.forward_fits((c_in, c_in, k, k), geometry, out, operands), (c_in, size, k, s)
        assert plan.reduce_fits((c_in, c_in, k, k), geometry, out, out, operands), (c_in, size, k, s)


def test_input_gradient_phases_are_the_ones_a_tap_reaches():
    # s = 2**30 phases, of which the 3 taps reach 3: the plan lists only those
    phases = plan.phase_taps(3, 2**30, 0, 1, 5)
    assert [ph.first for ph in phases] == [0, 1, 2] and all(ph.count == 1 for ph in phases)


# ---------------------------------------------------------------------------
# hypothesis: huge strides, dilations and paddings on small inputs
# ---------------------------------------------------------------------------

HUGE = [1, 2, 3, 7, 2**10, 2**16, 2**20, 2**30]


@st.composite
def huge_axis(draw):
    """(size, k, s, p, d) of one axis with at least one output: the padding
    is drawn from what the window needs (it may be huge) plus a little."""
    size = draw(st.integers(1, 4))
    k = draw(st.integers(1, 3))
    s = draw(st.sampled_from(HUGE))
    d = draw(st.sampled_from(HUGE))
    need = max(0, -(-(d * (k - 1) + 1 - size) // 2))
    p = need + draw(st.integers(0, 2))
    return size, k, s, p, d


@st.composite
def huge_configs(draw):
    nd = draw(st.sampled_from([1, 2]))
    axes = [draw(huge_axis()) for _ in range(nd)]
    groups = draw(st.sampled_from([1, 2]))
    c_in_g = draw(st.sampled_from([1, 2, 8, 9]))
    c_out_g = draw(st.sampled_from([1, 2, 8]))
    N = draw(st.integers(1, 2))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    return nd, axes, groups, c_in_g, c_out_g, N, dtype


def _run_both(fn):
    got = fn()
    with kernels.use("naive"):
        want = fn()
    return got, want


@given(huge_configs())
def test_huge_strides_dilations_and_paddings_match_the_naive_kernels(cfg):
    nd, axes, groups, c_in_g, c_out_g, N, dtype = cfg
    rng = np.random.default_rng(len(str(cfg)))
    sizes, ks, ss, ps, ds = (tuple(a[i] for a in axes) for i in range(5))
    x = rng.standard_normal((N, c_in_g * groups) + sizes).astype(dtype)
    w = rng.standard_normal((c_out_g * groups, c_in_g) + ks).astype(dtype)
    kw = dict(stride=ss, padding=ps, dilation=ds, groups=groups)
    conv, conv_backward = (deconv.conv1d, deconv.conv1d_backward) if nd == 1 else \
        (deconv.conv2d, deconv.conv2d_backward)
    y, y_naive = _run_both(lambda: conv(x, w, **kw))
    assert y.shape == y_naive.shape and y.size <= N * c_out_g * groups * 4**nd
    assert_close(y, y_naive, dtype, scale=10)
    gy = rng.standard_normal(y.shape).astype(dtype)
    grads, grads_naive = _run_both(lambda: conv_backward(gy, x, w, **kw))
    for g, g_naive in zip(grads, grads_naive):
        assert_close(g, g_naive, dtype, scale=10)
    # the transposed conv back from y's size to x's: output_padding makes up
    # what the floor of the conv's size formula dropped (always < stride)
    op = tuple((n + 2 * p - d * (k - 1) - 1) % s for n, k, s, p, d in axes)
    conv_t, conv_t_backward = (deconv.conv_transpose1d, deconv.conv_transpose1d_backward) \
        if nd == 1 else (deconv.conv_transpose2d, deconv.conv_transpose2d_backward)
    wt = rng.standard_normal((c_out_g * groups, c_in_g) + ks).astype(dtype)
    kwt = dict(stride=ss, padding=ps, output_padding=op, dilation=ds, groups=groups)
    z, z_naive = _run_both(lambda: conv_t(y, wt, **kwt))
    assert z.shape == x.shape[:1] + (c_in_g * groups,) + sizes
    assert_close(z, z_naive, dtype, scale=10)
    gz = rng.standard_normal(z.shape).astype(dtype)
    grads, grads_naive = _run_both(lambda: conv_t_backward(gz, y, wt, **kwt))
    for g, g_naive in zip(grads, grads_naive):
        assert_close(g, g_naive, dtype, scale=10)
