"""An inf or NaN gives the same NaN/inf pattern on every kernel path (issue 11, reproducer 7).

The rule (see :mod:`deconv.kernels.naive` and the README's "Semantics"): a
gather pass (conv forward, the transposed conv's input gradient, both weight
gradients) reads a zero-padded array, so an inf weight over the padding
multiplies a zero and gives NaN there, as PyTorch does; a scatter pass (conv's
input gradient, the transposed conv forward) has no target in the padding,
so such a tap leaves no trace — again as PyTorch does. The tiled paths used
to break the rule both ways: the strided depthwise forward skipped the
padding's taps ([inf, 1, 1] over a padded [1, 1, 1] gave [0, inf] instead of
[nan, inf]), and the flipped-kernel input gradients gathered over a
zero-padded grad_output (NaN where the scatter has a finite value).

The hand-derived cases below are PyTorch 2.13's answers; hypothesis then puts
infs and NaNs anywhere in weights, inputs and output gradients of all six
passes and compares the pattern (and the finite values) with the naive loops.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import deconv
from deconv import kernels
from tolerances import assert_close

INF = np.inf
NAN = np.nan


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_strided_depthwise_forward_multiplies_the_padding(dtype):
    # outputs 0 and 1 read taps at (-1, 0, 1) and (1, 2, 3): the inf tap of
    # output 0 lies over the padding (inf * 0 = nan)
    x = np.ones((1, 1, 3), dtype)
    w = np.array([[[INF, 1, 1]]], dtype)
    np.testing.assert_array_equal(deconv.conv1d(x, w, stride=2, padding=1)[0, 0], [NAN, INF])
    np.testing.assert_array_equal(deconv.conv1d(x, w, padding=1)[0, 0], [NAN, INF, INF])
    # the same in 2-D, two output channels per group: the first row and column
    x2 = np.ones((1, 2, 3, 3), dtype)
    w2 = np.ones((4, 1, 3, 3), dtype)
    w2[1, 0, 0, 0] = -INF
    y = deconv.conv2d(x2, w2, stride=2, padding=1, groups=2)
    np.testing.assert_array_equal(y[0, 1], [[NAN, NAN], [NAN, -INF]])
    # every 3x3 window at stride 2 over the padded 3x3 ones holds four of them
    np.testing.assert_array_equal(y[0, [0, 2, 3]], np.full((3, 2, 2), 4))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_transposed_conv_and_input_gradient_scatter_without_the_padding(dtype):
    # 8 output channels take the flipped-kernel path for finite weights; the
    # inf tap 0 reaches outputs 0..2 only
    x = np.ones((1, 1, 3), dtype)
    w = np.ones((1, 8, 3), dtype)
    w[0, 0, 0] = INF
    y = deconv.conv_transpose1d(x, w)
    np.testing.assert_array_equal(y[0, 0], [INF, INF, INF, 2, 1])
    np.testing.assert_array_equal(y[0, 1:], np.tile([1, 2, 3, 2, 1], (7, 1)))
    # conv's input gradient with 8 input channels, padding 1: tap 0 of output
    # o reaches input o - 1, so input 3 has no inf and input -1 does not exist
    wc = np.ones((1, 8, 3), dtype)
    wc[0, 0, 0] = INF
    xc = np.ones((1, 8, 4), dtype)
    gx, gw, _ = deconv.conv1d_backward(np.ones((1, 1, 4), dtype), xc, wc, padding=1)
    np.testing.assert_array_equal(gx[0, 0], [INF, INF, INF, 2])
    np.testing.assert_array_equal(gx[0, 1:], np.tile([2, 3, 3, 2], (7, 1)))
    np.testing.assert_array_equal(gw, np.tile([3, 4, 3], (1, 8, 1)))
    # the stride-1 depthwise input gradient (the flipped direct kernel for finite weights)
    wd = np.array([[[1, 1, INF]]], dtype)
    gxd, _, _ = deconv.conv1d_backward(np.ones((1, 1, 3), dtype), np.ones((1, 1, 3), dtype), wd,
                                    padding=1)
    np.testing.assert_array_equal(gxd[0, 0], [2, INF, INF])


@pytest.mark.parametrize("spot", [None, 0, -1, 70000])
def test_the_phases_packing_sends_an_inf_weight_to_the_scatter(spot, monkeypatch):
    # DCGAN's block, narrowed: its stride phases run in one channel-vector call
    # whose weight packing also checks the weight (rather than a pass of its
    # own); an inf found there must send the transposed conv to the scatter,
    # before anything is computed with it. The spy shows which way it went.
    from deconv.functional import conv as fconv
    seen = []
    pack = fconv._pack_phases

    def spy(*args):
        seen.append(pack(*args))
        return seen[-1]
    monkeypatch.setattr(fconv, "_pack_phases", spy)
    # the channel-vector tile whatever the plan would choose on this CPU (a
    # choice of speed: AVX2's vectors keep these phases on the pixel tile)
    monkeypatch.setattr(fconv, "_forward_kernel", lambda *a: "broadcast")
    rng = np.random.default_rng(12)
    x = rng.standard_normal((8, 128, 8, 8)).astype(np.float32)
    w = rng.standard_normal((128, 64, 4, 4)).astype(np.float32)
    if spot is not None:
        w.reshape(-1)[spot] = INF
    z, z_naive = _both(lambda: deconv.conv_transpose2d(x, w, stride=2, padding=1))
    assert seen == [spot is None]
    _same_pattern(z, z_naive, "transposed forward")
    assert np.isinf(z).any() == (spot is not None)


# ---------------------------------------------------------------------------
# hypothesis: every pass, against the naive loops
# ---------------------------------------------------------------------------

@st.composite
def axis(draw):
    """(size, k, s, p, d) of one axis with at least one conv output."""
    k = draw(st.integers(1, 3))
    s = draw(st.integers(1, 3))
    d = draw(st.integers(1, 2))
    p = draw(st.integers(0, d * (k - 1) + 1))
    size = draw(st.integers(max(1, d * (k - 1) + 1 - 2 * p), 7))
    return size, k, s, p, d


@st.composite
def configs(draw):
    nd = draw(st.sampled_from([1, 2]))
    axes = [draw(axis()) for _ in range(nd)]
    groups = draw(st.sampled_from([1, 2]))
    # 1-2 channels per group take the direct and GEMM paths, 8-9 the tiles and phases
    c_in_g = draw(st.sampled_from([1, 2, 8, 9]))
    c_out_g = draw(st.sampled_from([1, 2, 8]))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    # where the non-finite values go: weight, input, output gradient
    operand = draw(st.sampled_from(["weight", "weight", "input", "grad"]))
    values = draw(st.lists(st.sampled_from([INF, -INF, NAN]), min_size=1, max_size=2))
    spots = draw(st.lists(st.integers(0, 2**20), min_size=2, max_size=2))
    return nd, axes, groups, c_in_g, c_out_g, dtype, operand, values, spots


def _poke(a, values, spots):
    flat = a.reshape(-1)
    for v, spot in zip(values, spots):
        flat[spot % flat.size] = v


def _same_pattern(got, want, what):
    for test in (np.isnan, np.isposinf, np.isneginf):
        np.testing.assert_array_equal(test(got), test(want), err_msg=f"{what}: {test.__name__}")
    finite = np.isfinite(want)
    assert_close(got[finite], want[finite], got.dtype, scale=10, err_msg=what)


def _both(fn):
    got = fn()
    with kernels.use("naive"):
        want = fn()
    return got, want


@given(configs())
def test_every_pass_gives_the_naive_nan_and_inf_pattern(cfg):
    nd, axes, groups, c_in_g, c_out_g, dtype, operand, values, spots = cfg
    rng = np.random.default_rng(len(str(cfg)))
    sizes, ks, ss, ps, ds = (tuple(a[i] for a in axes) for i in range(5))
    x = rng.standard_normal((2, c_in_g * groups) + sizes).astype(dtype)
    w = rng.standard_normal((c_out_g * groups, c_in_g) + ks).astype(dtype)
    wt = rng.standard_normal((c_out_g * groups, c_in_g) + ks).astype(dtype)
    kw = dict(stride=ss, padding=ps, dilation=ds, groups=groups)
    conv, conv_backward, conv_t, conv_t_backward = (
        (deconv.conv1d, deconv.conv1d_backward, deconv.conv_transpose1d,
         deconv.conv_transpose1d_backward) if nd == 1 else
        (deconv.conv2d, deconv.conv2d_backward, deconv.conv_transpose2d,
         deconv.conv_transpose2d_backward))
    if operand == "weight":
        _poke(w, values, spots)
        _poke(wt, values, spots[::-1])
    elif operand == "input":
        _poke(x, values, spots)
    y, y_naive = _both(lambda: conv(x, w, **kw))
    _same_pattern(y, y_naive, "conv forward")
    # a finite y for the transposed conv's input (its own non-finite values come from wt)
    y = rng.standard_normal(y.shape).astype(dtype)
    gy = rng.standard_normal(y.shape).astype(dtype)
    if operand == "grad":
        _poke(gy, values, spots)
    for name, g, g_naive in zip(("conv grad_input", "conv grad_weight", "conv grad_bias"),
                                *_both(lambda: conv_backward(gy, x, w, **kw))):
        _same_pattern(g, g_naive, name)
    # the transposed conv from y's size back to x's
    op = tuple((n + 2 * p - d * (k - 1) - 1) % s for n, k, s, p, d in axes)
    kwt = dict(stride=ss, padding=ps, output_padding=op, dilation=ds, groups=groups)
    z, z_naive = _both(lambda: conv_t(y, wt, **kwt))
    _same_pattern(z, z_naive, "transposed forward")
    gz = rng.standard_normal(z.shape).astype(dtype)
    if operand == "grad":
        _poke(gz, values, spots)
    for name, g, g_naive in zip(("transposed grad_input", "transposed grad_weight",
                                 "transposed grad_bias"),
                                *_both(lambda: conv_t_backward(gz, y, wt, **kwt))):
        _same_pattern(g, g_naive, name)
