"""The naive kernel set (deconv.kernels.naive) and the switch that routes to it
(deconv.kernels.use): every pass against the scipy reference, the adjoint
identities, float64 central differences, the 0 * inf = NaN semantics of
padded taps, the float32 summation order, and the switch's errors, nesting
and thread isolation. (The hypothesis property suite of test_conv.py runs
against both kernel sets as well.)"""

import subprocess
import sys
import threading

import numpy as np
import pytest

import deconv
from deconv import kernels, reference
from deconv.gradcheck import numerical_gradient
from deconv.kernels import naive
from tolerances import FINITE_DIFFERENCE, assert_close

DTYPES = [np.float32, np.float64]

# (nd, x shape, weight shape, keyword arguments): stride, asymmetric 'same'
# padding (even kernels), dilation, groups, a 1x1 kernel, 1-D.
CONV_CASES = [
    (2, (2, 4, 7, 8), (6, 2, 3, 2), dict(stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2)),
    (2, (1, 3, 6, 5), (2, 3, 4, 2), dict(padding="same", dilation=(2, 1))),
    (2, (2, 3, 5, 5), (3, 1, 1, 1), dict(stride=2, groups=3)),
    (2, (1, 2, 4, 9), (1, 2, 3, 3), dict(stride=3, padding=3)),
    (1, (2, 4, 11), (6, 2, 4), dict(stride=2, padding=2, dilation=3, groups=2)),
    (1, (1, 2, 6), (3, 2, 4), dict(padding="same")),
]
CONVT_CASES = [
    (2, (2, 4, 3, 4), (4, 3, 3, 2), dict(stride=(2, 3), padding=(1, 0), output_padding=(1, 2),
                                         dilation=(1, 2), groups=2)),
    (2, (1, 2, 4, 3), (2, 2, 2, 3), dict(stride=1, padding=1, output_padding=(1, 0), dilation=2)),
    (2, (2, 3, 2, 2), (3, 1, 3, 3), dict(stride=3, groups=3)),
    (1, (2, 4, 5), (4, 1, 3), dict(stride=3, padding=2, output_padding=2, dilation=2, groups=4)),
    (1, (1, 2, 3), (2, 3, 4), dict(stride=2, padding=1, output_padding=1)),
]

CONV = {1: deconv.conv1d, 2: deconv.conv2d}
CONV_BWD = {1: deconv.conv1d_backward, 2: deconv.conv2d_backward}
CONVT = {1: deconv.conv_transpose1d, 2: deconv.conv_transpose2d}
CONVT_BWD = {1: deconv.conv_transpose1d_backward, 2: deconv.conv_transpose2d_backward}
REF_CONV = {1: reference.conv1d, 2: reference.conv2d}
REF_CONV_BWD = {1: reference.conv1d_backward, 2: reference.conv2d_backward}
REF_CONVT = {1: reference.conv_transpose1d, 2: reference.conv_transpose2d}
REF_CONVT_BWD = {1: reference.conv_transpose1d_backward, 2: reference.conv_transpose2d_backward}


def _arrays(seed, dtype, *shapes):
    rng = np.random.default_rng(seed)
    return [rng.uniform(-1, 1, shape).astype(dtype) for shape in shapes]


def _naive(fn, *args, **kw):
    with kernels.use("naive"):
        return fn(*args, **kw)


# ---------------------------------------------------------------------------
# every pass against the scipy reference, through the public functions
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nd, x_shape, w_shape, kw", CONV_CASES)
def test_naive_conv_passes_match_reference(dtype, nd, x_shape, w_shape, kw):
    x, w, b = _arrays(1, dtype, x_shape, w_shape, w_shape[:1])
    y = _naive(CONV[nd], x, w, b, **kw)
    assert y.dtype == dtype
    assert_close(y, REF_CONV[nd](x, w, b, **kw))
    (gy,) = _arrays(2, dtype, y.shape)
    got = _naive(CONV_BWD[nd], gy, x, w, **kw)
    want = REF_CONV_BWD[nd](gy, x, w, **kw)
    for name, g, r in zip(("grad_input", "grad_weight", "grad_bias"), got, want):
        assert g.dtype == dtype
        assert_close(g, r, scale=4, err_msg=name)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nd, x_shape, w_shape, kw", CONVT_CASES)
def test_naive_conv_transpose_passes_match_reference(dtype, nd, x_shape, w_shape, kw):
    x, w, b = _arrays(3, dtype, x_shape, w_shape, (w_shape[1] * kw.get("groups", 1),))
    y = _naive(CONVT[nd], x, w, b, **kw)
    assert y.dtype == dtype
    assert_close(y, REF_CONVT[nd](x, w, b, **kw))
    (gy,) = _arrays(4, dtype, y.shape)
    got = _naive(CONVT_BWD[nd], gy, x, w, **kw)
    want = REF_CONVT_BWD[nd](gy, x, w, **kw)
    for name, g, r in zip(("grad_input", "grad_weight", "grad_bias"), got, want):
        assert g.dtype == dtype
        assert_close(g, r, scale=4, err_msg=name)


def test_the_switch_routes_every_pass_to_the_naive_functions():
    """Under use('naive') each public pass returns bitwise what its naive function
    returns when called directly with the validated geometry."""
    x, w, b = _arrays(5, np.float32, (2, 4, 7, 6), (6, 2, 3, 3), (6,))
    geometry = (2, 1, 1, 0, 1, 2)                   # sH, sW, pH, pW, dH, dW
    kw = dict(stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2)
    y = _naive(deconv.conv2d, x, w, b, **kw)
    assert np.array_equal(y, naive.conv2d_forward(x, w, b, *geometry, 2, *y.shape[2:]))
    (gy,) = _arrays(6, np.float32, y.shape)
    gx, gw, gb = _naive(deconv.conv2d_backward, gy, x, w, **kw)
    assert np.array_equal(gx, naive.conv2d_input_grad(gy, w, *geometry, 2, 7, 6))
    assert np.array_equal(gw, naive.conv2d_weight_grad(gy, x, *geometry, 2, 3, 3))
    assert np.array_equal(gb, naive.conv2d_bias_grad(gy))
    kt = dict(stride=(2, 1), padding=(1, 0), output_padding=(1, 0), dilation=(1, 2), groups=2)
    wt = _arrays(7, np.float32, (4, 3, 3, 3))[0]
    yt = _naive(deconv.conv_transpose2d, x, wt, b, **kt)
    assert np.array_equal(yt, naive.conv_transpose2d_forward(x, wt, b, *geometry, 2, *yt.shape[2:]))
    (gyt,) = _arrays(8, np.float32, yt.shape)
    gx, gw, gb = _naive(deconv.conv_transpose2d_backward, gyt, x, wt, **kt)
    assert np.array_equal(gx, naive.conv_transpose2d_input_grad(gyt, wt, *geometry, 2, 7, 6))
    assert np.array_equal(gw, naive.conv_transpose2d_weight_grad(gyt, x, *geometry, 2, 3, 3))
    assert np.array_equal(gb, naive.conv_transpose2d_bias_grad(gyt))
    # the tiled set computes the same numbers
    assert_close(deconv.conv2d(x, w, b, **kw), y.astype(np.float64))


def test_gather_and_scatter_forms_of_the_transposed_conv_agree():
    """conv2d_input_grad (each input pixel gathers) and conv_transpose2d_forward
    (each pixel scatters the kernel) are two loop forms of one sum."""
    gy, w = _arrays(9, np.float64, (2, 6, 4, 5), (6, 2, 3, 2))
    for geometry in [(1, 1, 0, 0, 1, 1), (2, 3, 1, 0, 1, 2), (3, 2, 2, 1, 2, 1)]:
        for H, W in [(6, 6), (9, 11), (10, 12)]:
            gathered = naive.conv2d_input_grad(gy, w, *geometry, 3, H, W)
            scattered = naive.conv_transpose2d_forward(gy, w, None, *geometry, 3, H, W)
            np.testing.assert_allclose(gathered, scattered, rtol=1e-13, atol=1e-14)


# ---------------------------------------------------------------------------
# adjoint identities and central differences (float64)
# ---------------------------------------------------------------------------

def _rel(a, b):
    return abs(a - b) / max(1.0, abs(a), abs(b))


@pytest.mark.parametrize("nd, x_shape, w_shape, kw", CONV_CASES)
def test_naive_conv_adjoint_identities(nd, x_shape, w_shape, kw):
    x, w = _arrays(10, np.float64, x_shape, w_shape)
    y = _naive(CONV[nd], x, w, **kw)
    (r,) = _arrays(11, np.float64, y.shape)
    gx, gw, _ = _naive(CONV_BWD[nd], r, x, w, **kw)
    # <conv(x, w), r> = <x, grad_input(r)> = <w, grad_weight(r)>
    assert _rel(np.vdot(y, r), np.vdot(x, gx)) < 1e-13
    assert _rel(np.vdot(y, r), np.vdot(w, gw)) < 1e-13


@pytest.mark.parametrize("nd, x_shape, w_shape, kw", CONVT_CASES)
def test_naive_conv_transpose_adjoint_identities(nd, x_shape, w_shape, kw):
    x, w = _arrays(12, np.float64, x_shape, w_shape)
    y = _naive(CONVT[nd], x, w, **kw)
    (z,) = _arrays(13, np.float64, y.shape)
    gx, gw, _ = _naive(CONVT_BWD[nd], z, x, w, **kw)
    assert _rel(np.vdot(y, z), np.vdot(x, gx)) < 1e-13
    assert _rel(np.vdot(y, z), np.vdot(w, gw)) < 1e-13
    # and the transposed conv is the adjoint of the naive conv with that geometry
    conv_kw = {k: v for k, v in kw.items() if k != "output_padding"}
    conv_z = _naive(CONV[nd], z, w, **conv_kw)
    conv_z = conv_z[(slice(None), slice(None)) + tuple(slice(0, s) for s in x_shape[2:])]
    assert _rel(np.vdot(y, z), np.vdot(x, conv_z)) < 1e-13


def _check_central_differences(forward, backward, x, w, b, seed):
    r = np.random.default_rng(seed).standard_normal(forward(x, w, b).shape)

    def loss():
        return float(np.sum(forward(x, w, b) * r))

    tol = dict(rtol=FINITE_DIFFERENCE["rtol"], atol=FINITE_DIFFERENCE["atol"])
    for name, analytic, array in zip(("x", "weight", "bias"), backward(r, x, w), (x, w, b)):
        np.testing.assert_allclose(analytic, numerical_gradient(loss, array), err_msg=name, **tol)


@pytest.mark.parametrize("case", [CONV_CASES[0], CONV_CASES[1], CONV_CASES[4]])
def test_naive_conv_gradients_match_central_differences(case):
    nd, x_shape, w_shape, kw = case
    x, w, b = _arrays(14, np.float64, x_shape, w_shape, w_shape[:1])
    with kernels.use("naive"):
        _check_central_differences(lambda x, w, b: CONV[nd](x, w, b, **kw),
                                   lambda r, x, w: CONV_BWD[nd](r, x, w, **kw), x, w, b, 15)


@pytest.mark.parametrize("case", [CONVT_CASES[0], CONVT_CASES[3]])
def test_naive_conv_transpose_gradients_match_central_differences(case):
    nd, x_shape, w_shape, kw = case
    x, w, b = _arrays(16, np.float64, x_shape, w_shape, (w_shape[1] * kw.get("groups", 1),))
    with kernels.use("naive"):
        _check_central_differences(lambda x, w, b: CONVT[nd](x, w, b, **kw),
                                   lambda r, x, w: CONVT_BWD[nd](r, x, w, **kw), x, w, b, 17)


# ---------------------------------------------------------------------------
# padded taps: a multiplication by zero in the gather passes, no product at
# all in the scatter passes (both as PyTorch's reference path, float64 on the
# CPU, computes them). The footprints are worked out by hand.
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_inf_weight_over_the_padding_gives_nan_in_the_conv_forward(dtype):
    """With padding 1, weight tap (0, 0) lies over the padding for the outputs of
    the first row or column: there inf * 0 = NaN; elsewhere it meets x > 0: inf."""
    x = np.full((1, 1, 4, 5), 0.5, dtype)
    w = np.full((2, 1, 3, 3), 0.25, dtype)
    w[1, 0, 0, 0] = np.inf
    y = _naive(deconv.conv2d, x, w, padding=1)
    nan = np.zeros(y.shape, bool)
    nan[0, 1, 0, :] = nan[0, 1, :, 0] = True
    np.testing.assert_array_equal(np.isnan(y), nan)
    assert np.isposinf(y[0, 1, 1:, 1:]).all() and np.isfinite(y[0, 0]).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_inf_in_grad_output_gives_nan_on_the_weight_taps_over_the_padding(dtype):
    x = np.full((1, 2, 4, 4), 0.5, dtype)
    w = np.full((3, 2, 3, 3), 0.25, dtype)
    gy = np.ones((1, 3, 4, 4), dtype)
    gy[0, 2, 0, 0] = np.inf                     # its window hangs over the top and left
    gx, gw, gb = _naive(deconv.conv2d_backward, gy, x, w, padding=1)
    nan = np.zeros(w.shape, bool)
    nan[2, :, 0, :] = nan[2, :, :, 0] = True
    np.testing.assert_array_equal(np.isnan(gw), nan)
    assert np.isposinf(gw[2, :, 1:, 1:]).all() and np.isfinite(gw[:2]).all()
    # grad_input scatters grad_output: the taps over the padding have no target
    assert not np.isnan(gx).any() and np.isposinf(gx[0, :, :2, :2]).all()
    assert np.isposinf(gb[2]) and np.isfinite(gb[:2]).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_inf_weight_over_the_padding_leaves_no_nan_in_the_scatter_passes(dtype):
    """The conv input gradient and the transposed conv forward drop the products
    that land in the padding: an inf weight there leaves +inf where it lands, never NaN."""
    w = np.full((2, 2, 3, 3), 0.25, dtype)
    w[1, 0, 0, 0] = np.inf
    gy = np.ones((1, 2, 4, 5), dtype)
    with kernels.use("naive"):
        gx, _, _ = deconv.conv2d_backward(gy, np.ones((1, 2, 4, 5), dtype), w, padding=1)
        yt = deconv.conv_transpose2d(gy, w, padding=1)
    assert not np.isnan(gx).any() and not np.isnan(yt).any()
    # tap (0, 0) of output 1 sends (i, j) to (i - 1, j - 1): rows/columns 0..2, 0..3 of x
    inf = np.zeros(gx.shape, bool)
    inf[0, 0, :3, :4] = True
    np.testing.assert_array_equal(np.isinf(gx), inf)
    # the transposed conv: input channel 1 scatters the inf tap into output channel 0
    inf_t = np.zeros(yt.shape, bool)
    inf_t[0, 0, :3, :4] = True
    np.testing.assert_array_equal(np.isinf(yt), inf_t)


@pytest.mark.parametrize("dtype", DTYPES)
def test_transposed_conv_gather_passes_multiply_the_padding_by_zero(dtype):
    """conv_transpose2d's input gradient reads grad_output padded (inf weight * 0 =
    NaN at the input pixels whose kernel copy was cut off there) and its weight
    gradient likewise (inf in x * 0 = NaN on the taps that were cut off)."""
    x = np.full((1, 2, 3, 3), 0.5, dtype)
    w = np.full((2, 1, 3, 3), 0.25, dtype)
    w[0, 0, 2, 2] = np.inf                      # lands at (i*2 + 2 - 1): past the end for i = 2
    kw = dict(stride=2, padding=1)              # output (3-1)*2 - 2 + 3 = 5
    gy = np.ones((1, 1, 5, 5), dtype)
    x_inf = x.copy()
    x_inf[0, 1, 0, 0] = np.inf                  # its copy is cut off at the top and left
    with kernels.use("naive"):
        gx, _, _ = deconv.conv_transpose2d_backward(gy, x, w, **kw)
        _, gw, _ = deconv.conv_transpose2d_backward(gy, x_inf, np.full(w.shape, 0.25, dtype), **kw)
    nan = np.zeros(gx.shape, bool)
    nan[0, 0, 2, :] = nan[0, 0, :, 2] = True
    np.testing.assert_array_equal(np.isnan(gx), nan)
    nan_w = np.zeros(gw.shape, bool)
    nan_w[1, 0, 0, :] = nan_w[1, 0, :, 0] = True
    np.testing.assert_array_equal(np.isnan(gw), nan_w)
    assert np.isposinf(gw[1, 0, 1:, 1:]).all() and np.isfinite(gw[0]).all()


# ---------------------------------------------------------------------------
# arithmetic: the dtype and the order of the sums
# ---------------------------------------------------------------------------

def test_float32_sums_in_float32_in_the_documented_order():
    """1e8 + 1 + 1 + 1 + 1 in float32, left to right, stays 1e8 (each 1 is below
    half an ulp); a float64 accumulator would give 100000004."""
    x = np.array([[[1e8, 1, 1, 1, 1]]], np.float32)
    ones = np.ones((1, 1, 5), np.float32)
    with kernels.use("naive"):
        assert _naive(deconv.conv1d, x, ones).item() == np.float32(1e8)
        _, gw, gb = deconv.conv1d_backward(np.ones((1, 1, 1), np.float32), x, ones)
        assert gb.dtype == np.float32
        # the bias comes first: 1e8 + ... then the taps, again 1e8
        assert deconv.conv1d(x, ones, np.array([1.0], np.float32)).item() == np.float32(1e8)
        # the weight gradient sums over the output positions in order
        _, gw, _ = deconv.conv1d_backward(np.array([[[1e8, 1, 1, 1, 1]]], np.float32),
                                          np.ones((1, 1, 5), np.float32),
                                          np.ones((1, 1, 1), np.float32))
        assert gw.item() == np.float32(1e8)
    # float64 keeps every 1
    assert _naive(deconv.conv1d, x.astype(np.float64), ones.astype(np.float64)).item() == 1e8 + 4


@pytest.mark.parametrize("dtype", DTYPES)
def test_naive_set_handles_empty_batches_and_leaves_inputs_alone(dtype):
    x = np.zeros((0, 2, 5, 5), dtype)
    w = np.ones((3, 2, 3, 3), dtype)
    with kernels.use("naive"):
        y = deconv.conv2d(x, w, padding=1)
        assert y.shape == (0, 3, 5, 5) and y.dtype == dtype
        gx, gw, gb = deconv.conv2d_backward(y, x, w, padding=1)
        assert gx.shape == x.shape and not gw.any() and not gb.any()
        yt = deconv.conv_transpose2d(x, np.ones((2, 3, 3, 3), dtype), stride=2)
        assert yt.shape == (0, 3, 11, 11)
        x, w, b = _arrays(18, dtype, (2, 2, 5, 4), (3, 2, 3, 3), (3,))
        copies = [a.copy() for a in (x, w, b)]
        y = deconv.conv2d(x, w, b, padding=1)
        deconv.conv2d_backward(y, x, w, padding=1)
        deconv.conv_transpose2d(y, w, padding=1)
        deconv.conv_transpose2d_backward(x, y, w, padding=1)
    for a, c in zip((x, w, b), copies):
        assert np.array_equal(a, c)


def test_naive_set_validates_like_the_tiled_set():
    """The switch acts after validation: the same errors, naming the argument."""
    x = np.zeros((2, 4, 6, 6), np.float32)
    with kernels.use("naive"):
        with pytest.raises(ValueError, match="groups=3 must divide"):
            deconv.conv2d(x, np.zeros((6, 2, 3, 3), np.float32), groups=3)
        with pytest.raises(TypeError, match="weight must have dtype float32 or float64"):
            deconv.conv2d(x, np.zeros((6, 4, 3, 3), np.int64))
        with pytest.raises(ValueError, match="grad_output"):
            deconv.conv_transpose2d_backward(np.zeros((2, 3, 5, 5), np.float32), x,
                                             np.zeros((4, 3, 3, 3), np.float32))


def test_pooling_and_upsampling_run_the_same_loops_under_both_sets():
    """They have no naive twins: their kernels are the plain loops; bitwise equal."""
    (x,) = _arrays(19, np.float32, (2, 3, 8, 7))
    calls = [
        lambda: deconv.max_pool2d(x, 3, stride=2, padding=1),
        lambda: deconv.avg_pool2d(x, 2, ceil_mode=True),
        lambda: deconv.upsample_bilinear2d(x, scale_factor=2),
        lambda: deconv.upsample_nearest2d(x, size=(5, 9)),
        lambda: deconv.pixel_shuffle(x[:, :1].repeat(4, axis=1), 2),
    ]
    for call in calls:
        tiled = call()
        with kernels.use("naive"):
            plain = call()
        for t, p in zip(*(r if isinstance(r, tuple) else (r,) for r in (tiled, plain))):
            assert np.array_equal(t, p)


# ---------------------------------------------------------------------------
# the switch
# ---------------------------------------------------------------------------

def test_tiled_is_the_default():
    assert kernels.active() == "tiled"
    assert kernels.KERNEL_SETS == ("tiled", "naive")


@pytest.mark.parametrize("name", ["fast", "Naive", "", None, 1, ("naive",)])
def test_use_rejects_unknown_names(name):
    with pytest.raises(ValueError, match=r"name must be one of \('tiled', 'naive'\), got"):
        with kernels.use(name):
            pass
    assert kernels.active() == "tiled"


def test_use_nests_and_restores_on_exit_and_on_error():
    with kernels.use("naive"):
        assert kernels.active() == "naive"
        with kernels.use("tiled"):
            assert kernels.active() == "tiled"
            with kernels.use("naive"):
                assert kernels.active() == "naive"
            assert kernels.active() == "tiled"
        assert kernels.active() == "naive"
        with pytest.raises(RuntimeError):
            with kernels.use("tiled"):
                raise RuntimeError
        assert kernels.active() == "naive"
    assert kernels.active() == "tiled"


def test_use_is_per_thread():
    """A thread inside use('naive') does not change what another thread runs."""
    entered, checked = threading.Event(), threading.Event()
    seen = {}

    def worker():
        with kernels.use("naive"):
            entered.set()
            checked.wait(10)
            seen["worker"] = kernels.active()
        seen["worker after"] = kernels.active()

    thread = threading.Thread(target=worker)
    thread.start()
    assert entered.wait(10)
    seen["main"] = kernels.active()
    with kernels.use("naive"):
        checked.set()
        thread.join(10)
        seen["main inside"] = kernels.active()
    assert seen == {"worker": "naive", "worker after": "tiled", "main": "tiled",
                    "main inside": "naive"}


def test_switch_is_reachable_after_import_deconv_and_loads_no_naive_kernel():
    script = (
        "import sys, deconv\n"
        "with deconv.kernels.use('naive'):\n"
        "    assert deconv.kernels.active() == 'naive'\n"
        "assert 'deconv.kernels.naive' not in sys.modules\n"
        "import numpy as np\n"
        "with deconv.kernels.use('naive'):\n"
        "    deconv.conv1d(np.ones((1, 1, 3)), np.ones((1, 1, 2)))\n"
        "assert 'deconv.kernels.naive' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=300,
                   env=_child_env())


def _child_env():
    import os

    root = os.path.dirname(os.path.dirname(os.path.abspath(deconv.__file__)))
    return dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (root, os.environ.get("PYTHONPATH")) if p))
