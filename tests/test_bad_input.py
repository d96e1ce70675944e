"""Bad input is refused early and clearly (issue 11, reproducers 3, 4, 5, 6).

* upsampling scale factors whose output size overflows raise a ValueError
  naming ``scale_factor`` and its value, forward and backward, every mode;
* every check that can run on the object given runs before any copy: a
  broadcast view of 2**33 elements with the wrong ndim is refused at once
  (run in a subprocess under an address-space limit, so that a regression
  fails cleanly instead of exhausting the machine);
* outputs, workspaces and input copies over the byte cap
  (:func:`deconv.functional.validation.max_bytes`) are refused before
  anything is allocated;
* a 0-d bias is refused, and a wrong-length bias is reported as given.
"""

import os
import subprocess
import sys
import textwrap
import tracemalloc

import numpy as np
import pytest

import deconv
from deconv.functional import validation
from deconv.functional.validation import byte_cap, max_bytes

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# --- reproducer 4: scale factors that overflow ---

HUGE_FACTORS = [1.7976931348623157e308, 2.0**1023, 1e300, float(2**40), 10**400]
# (10**400 is an int beyond the float range)


@pytest.mark.parametrize("factor", HUGE_FACTORS)
@pytest.mark.parametrize("op, x", [
    (deconv.upsample_nearest1d, np.ones((1, 1, 3))),
    (deconv.upsample_nearest2d, np.ones((1, 1, 3, 3))),
    (deconv.upsample_bilinear2d, np.ones((1, 1, 3, 3))),
])
def test_forward_overflowing_scale_factor_names_it(op, x, factor):
    with pytest.raises(ValueError, match=r"scale_factor(=.*expected at most 2147483647| "
                                         r"must be a positive finite)") as info:
        op(x, scale_factor=factor)
    assert "scale_factor" in str(info.value)


@pytest.mark.parametrize("factor", HUGE_FACTORS)
@pytest.mark.parametrize("op, g, shape", [
    (deconv.upsample_nearest1d_backward, np.ones((1, 1, 4)), (1, 1, 2)),
    (deconv.upsample_nearest2d_backward, np.ones((1, 1, 4, 4)), (1, 1, 2, 2)),
    (deconv.upsample_bilinear2d_backward, np.ones((1, 1, 4, 4)), (1, 1, 2, 2)),
])
def test_backward_overflowing_scale_factor_names_it(op, g, shape, factor):
    with pytest.raises(ValueError, match=r"^scale_factor[= ]") as info:
        op(g, shape, scale_factor=factor)
    assert "overflow" not in str(info.value).lower()


def test_the_issue_reproducers_4():
    with pytest.raises(ValueError, match=r"scale_factor=1.797.*e\+308 .* along L"):
        deconv.upsample_nearest1d(np.ones((1, 1, 3)), scale_factor=1.7976931348623157e308)
    with pytest.raises(ValueError, match=r"scale_factor=8.98.*e\+307 .* along H"):
        deconv.upsample_nearest2d_backward(np.ones((1, 1, 4, 4)), (1, 1, 2, 2),
                                           scale_factor=2.0**1023)
    with pytest.raises(ValueError, match=r"scale_factor=1e\+300 gives output size .* along H"):
        deconv.upsample_bilinear2d(np.ones((1, 1, 3, 3)), scale_factor=1e300)


def test_infinite_scale_factor_names_it():
    for factor in (float("inf"), (2.0, float("inf"))):
        with pytest.raises(ValueError, match=r"scale_factor must be a positive finite float"):
            deconv.upsample_bilinear2d(np.ones((1, 1, 2, 2)), scale_factor=factor)


def test_largest_allowed_scaled_size_reaches_the_cap_not_overflow():
    # floor(1 * (2**31 - 1)) is a valid size: what stops it is the byte cap
    with pytest.raises(ValueError, match=r"output of shape \(1, 1, 2147483647\) would take"):
        with byte_cap(2**20):
            deconv.upsample_nearest1d(np.ones((1, 1, 1)), scale_factor=2.0**31 - 1)


def test_huge_size_meets_the_cap_in_every_mode():
    with byte_cap(2**20):
        for op, x, size in [
            (deconv.upsample_nearest1d, np.ones((1, 1, 3)), 2**31 - 1),
            (deconv.upsample_nearest2d, np.ones((1, 1, 3, 3)), (2**31 - 1, 2**31 - 1)),
            (deconv.upsample_bilinear2d, np.ones((1, 1, 3, 3)), (2**31 - 1, 2**31 - 1)),
        ]:
            with pytest.raises(ValueError, match=r"output of shape .* would take .* GiB"):
                op(x, size=size)


# --- reproducer 5: checks before copies ---

def _huge_view(ndim):
    """A read-only broadcast view of 2**33 float32 elements (32 GiB if copied)."""
    shape = {3: (2**11, 2**11, 2**11), 5: (2**7, 2**7, 2**7, 2**6, 2**6)}[ndim]
    return np.broadcast_to(np.float32(1.0), shape)


WRONG_NDIM_CALLS = {
    "conv2d": lambda v: deconv.conv2d(v, np.ones((1, 1, 1, 1), np.float32)),
    "conv_transpose2d": lambda v: deconv.conv_transpose2d(v, np.ones((1, 1, 1, 1), np.float32)),
    "conv2d_weight": lambda v: deconv.conv2d(np.ones((1, 1, 2, 2), np.float32), v),
    "max_pool2d": lambda v: deconv.max_pool2d(v, 2),
    "avg_pool2d": lambda v: deconv.avg_pool2d(v, 2),
    "max_unpool2d": lambda v: deconv.max_unpool2d(v, np.broadcast_to(np.int64(0), v.shape), 2),
    "upsample_nearest2d": lambda v: deconv.upsample_nearest2d(v, scale_factor=2),
    "upsample_bilinear2d": lambda v: deconv.upsample_bilinear2d(v, scale_factor=2),
    "pixel_shuffle": lambda v: deconv.pixel_shuffle(v, 2),
}


@pytest.mark.parametrize("ndim", [3, 5])
@pytest.mark.parametrize("name", sorted(WRONG_NDIM_CALLS))
def test_wrong_ndim_of_a_huge_view_is_refused_without_allocating(name, ndim):
    view = _huge_view(ndim)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"must be 4-D with layout"):
            WRONG_NDIM_CALLS[name](view)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2**20, f"{name} allocated {peak} bytes before refusing"


def test_the_issue_reproducer_5_in_a_memory_limited_process():
    """Under a 4 GiB address-space limit, the 32 GiB copy a regression would make
    fails with MemoryError inside the child instead of swapping the machine."""
    script = textwrap.dedent("""
        import resource
        import numpy as np
        import deconv
        # after the imports (Numba reserves address space as it loads)
        used = int(open("/proc/self/statm").read().split()[0]) * resource.getpagesize()
        resource.setrlimit(resource.RLIMIT_AS, (used + 4 * 2**30, used + 4 * 2**30))
        view = np.broadcast_to(np.float32(1.0), (2**11, 2**11, 2**11))
        weight = np.ones((1, 1, 1, 1), np.float32)
        for call in (lambda: deconv.conv2d(view, weight),
                     lambda: deconv.max_pool2d(view, 2),
                     lambda: deconv.upsample_nearest2d(view, scale_factor=2)):
            try:
                call()
            except ValueError as err:
                assert "x must be 4-D" in str(err), err
            else:
                raise SystemExit("no error")
        # right ndim, but the copy would be 32 GiB: the cap refuses it
        view4 = np.broadcast_to(np.float32(1.0), (2**3, 2**10, 2**10, 2**10))
        try:
            deconv.max_pool2d(view4, (1, 1))
        except ValueError as err:
            assert "would take" in str(err) and "GiB" in str(err), err
        else:
            raise SystemExit("no error")
        print("ok")
    """)
    env = dict(os.environ, PYTHONPATH=ROOT, DECONV_MAX_BYTES=str(2**30))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("ok")


def test_checks_run_on_the_object_given_before_the_copy():
    # a 0-d array: np.ascontiguousarray would make it (1,) and hide its shape
    with pytest.raises(ValueError, match=r"got shape \(\)"):
        deconv.max_pool1d(np.array(1.0), 1)
    # a Fortran-ordered input of the wrong ndim is refused as given
    with pytest.raises(ValueError, match=r"got shape \(3, 4, 5\)"):
        deconv.conv2d(np.asfortranarray(np.ones((3, 4, 5))), np.ones((1, 4, 1, 1)))


def test_inputs_that_are_views_still_compute_and_are_not_written():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 6, 8))
    view = x[:, :, ::-1, ::2]                  # negative and non-unit strides
    ro = np.broadcast_to(x[:1], (2, 3, 6, 8))  # read-only view
    w = rng.standard_normal((4, 3, 3, 3))
    before = x.copy()
    np.testing.assert_array_equal(deconv.conv2d(view, w), deconv.conv2d(view.copy(), w))
    np.testing.assert_array_equal(deconv.max_pool2d(ro, 2)[0],
                                  deconv.max_pool2d(np.ascontiguousarray(ro), 2)[0])
    big_endian = x.astype(">f8")
    np.testing.assert_array_equal(deconv.upsample_bilinear2d(big_endian, scale_factor=1.5),
                                  deconv.upsample_bilinear2d(x, scale_factor=1.5))
    np.testing.assert_array_equal(x, before)


# --- the byte cap ---

def test_default_cap_is_half_the_physical_memory(monkeypatch):
    monkeypatch.delenv("DECONV_MAX_BYTES", raising=False)
    expected = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    assert validation.DEFAULT_MAX_BYTES == expected
    assert max_bytes() == expected


def test_cap_from_the_environment_and_the_context_manager(monkeypatch):
    monkeypatch.setenv("DECONV_MAX_BYTES", "12345")
    assert max_bytes() == 12345
    with byte_cap(777) as limit:
        assert limit == 777 and max_bytes() == 777
        with byte_cap(None):
            assert max_bytes() == 12345
        assert max_bytes() == 777
    assert max_bytes() == 12345
    monkeypatch.setenv("DECONV_MAX_BYTES", "lots")
    with pytest.raises(ValueError, match=r"DECONV_MAX_BYTES must be an integer number of bytes, "
                                         r"got 'lots'"):
        max_bytes()
    with pytest.raises(ValueError, match=r"limit must be a number of bytes >= 0, got -1"):
        with byte_cap(-1):
            pass
    with pytest.raises(TypeError, match=r"limit must be an int"):
        with byte_cap(1.5):
            pass


def test_cap_from_the_environment_refuses_an_op(monkeypatch):
    monkeypatch.setenv("DECONV_MAX_BYTES", "1000")
    with pytest.raises(ValueError, match=r"over the cap of .* \(1000 bytes\) \(DECONV_MAX_BYTES"):
        deconv.conv1d(np.ones((1, 1, 200)), np.ones((1, 1, 3)))


CAP = 2**16  # bytes; every refused output below takes 2 MiB or more


def _ones(*shape):
    return np.ones(shape)


def _zeros_int(*shape):
    return np.zeros(shape, np.int64)


# name: (op, arguments built outside the traced region, keywords, message)
OVER_CAP_CALLS = {
    "conv2d": (deconv.conv2d, lambda: (_ones(1, 1, 513, 513), _ones(1, 1, 2, 2)), {},
               r"^output of shape \(1, 1, 512, 512\) would take 0.00195 GiB \(2097152 bytes\), "
               r"over the cap of 6.1e-05 GiB \(65536 bytes\) \(DECONV_MAX_BYTES"),
    "conv1d": (deconv.conv1d, lambda: (_ones(1, 1, 2**18 + 1), _ones(1, 1, 2)), {},
               r"^output of shape \(1, 1, 262144\) would take"),
    "conv_transpose2d": (deconv.conv_transpose2d, lambda: (_ones(1, 1, 256, 256),
                                                           _ones(1, 1, 2, 2)), {"stride": 2},
                         r"^output of shape \(1, 1, 512, 512\)"),
    "conv_transpose1d": (deconv.conv_transpose1d, lambda: (_ones(1, 1, 2**17), _ones(1, 1, 2)),
                         {"stride": 2}, r"^output of shape \(1, 1, 262144\)"),
    "conv2d_backward": (deconv.conv2d_backward,
                        lambda: (_ones(1, 1, 512, 512), _ones(1, 1, 513, 513), _ones(1, 1, 2, 2)),
                        {}, r"^outputs \(grad_input, grad_weight, grad_bias\) of shapes "
                            r"\(1, 1, 513, 513\) and \(1, 1, 2, 2\) and \(1,\) would take"),
    "conv_transpose2d_backward": (
        deconv.conv_transpose2d_backward,
        lambda: (_ones(1, 1, 1024, 1024), _ones(1, 1, 512, 512), _ones(1, 1, 2, 2)),
        {"stride": 2}, r"^outputs \(grad_input, grad_weight, grad_bias\) of shapes "
                       r"\(1, 1, 512, 512\)"),
    "max_pool2d": (deconv.max_pool2d, lambda: (_ones(1, 1, 1024, 1024), 2), {},
                   r"^outputs \(values, indices\) of shapes \(1, 1, 512, 512\) and "
                   r"\(1, 1, 512, 512\) would take 0.00391 GiB"),
    "avg_pool1d": (deconv.avg_pool1d, lambda: (_ones(1, 1, 2**19), 2), {},
                   r"^output of shape \(1, 1, 262144\)"),
    "avg_pool2d_backward": (deconv.avg_pool2d_backward,
                            lambda: (_ones(1, 1, 256, 256), (1, 1, 512, 512), 2), {},
                            r"^output of shape \(1, 1, 512, 512\)"),
    "max_pool2d_backward": (deconv.max_pool2d_backward,
                            lambda: (_ones(1, 1, 256, 256), _zeros_int(1, 1, 256, 256),
                                     (1, 1, 512, 512)), {},
                            r"^output of shape \(1, 1, 512, 512\)"),
    "max_unpool2d": (deconv.max_unpool2d,
                     lambda: (_ones(1, 1, 256, 256), _zeros_int(1, 1, 256, 256), 2), {},
                     r"^output of shape \(1, 1, 512, 512\)"),
    "max_unpool1d_backward": (deconv.max_unpool1d_backward,
                              lambda: (_ones(1, 1, 2**19), _zeros_int(1, 1, 2**18)), {},
                              r"^output of shape \(1, 1, 262144\)"),
    "upsample_nearest2d": (deconv.upsample_nearest2d, lambda: (_ones(1, 1, 256, 256),),
                           {"scale_factor": 2}, r"^output of shape \(1, 1, 512, 512\)"),
    "upsample_nearest1d": (deconv.upsample_nearest1d, lambda: (_ones(1, 1, 4),),
                           {"size": 2**18}, r"^output of shape \(1, 1, 262144\)"),
    "upsample_bilinear2d": (deconv.upsample_bilinear2d, lambda: (_ones(1, 1, 16, 16),),
                            {"size": 512}, r"^output of shape \(1, 1, 512, 512\)"),
    "upsample_nearest2d_backward": (deconv.upsample_nearest2d_backward,
                                    lambda: (_ones(1, 1, 2, 2), (1, 1, 512, 512)), {},
                                    r"^output of shape \(1, 1, 512, 512\)"),
    "upsample_bilinear2d_backward": (deconv.upsample_bilinear2d_backward,
                                     lambda: (_ones(1, 1, 2, 2), (1, 1, 512, 512)), {},
                                     r"^output of shape \(1, 1, 512, 512\)"),
    "pixel_shuffle": (deconv.pixel_shuffle, lambda: (_ones(1, 4, 256, 256), 2), {},
                      r"^output of shape \(1, 1, 512, 512\)"),
    "pixel_unshuffle_backward": (deconv.pixel_unshuffle_backward,
                                 lambda: (_ones(1, 4, 256, 256), 2), {},
                                 r"^output of shape \(1, 1, 512, 512\)"),
}


@pytest.mark.parametrize("name", sorted(OVER_CAP_CALLS))
def test_outputs_over_the_cap_are_refused_before_allocating(name):
    op, make_args, kwargs, message = OVER_CAP_CALLS[name]
    args = make_args()
    tracemalloc.start()
    try:
        with byte_cap(CAP), pytest.raises(ValueError, match=message):
            op(*args, **kwargs)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # the outputs of 2 MiB and more were never allocated (nor a copy of an input)
    assert peak < 2**17, f"{peak} bytes were allocated before the refusal"


def test_the_same_calls_run_under_the_default_cap():
    for name, (op, make_args, kwargs, _) in OVER_CAP_CALLS.items():
        if name != "max_unpool2d":   # (all indices 0 would be refused by the op itself)
            assert op(*make_args(), **kwargs) is not None, name


def test_copy_of_a_non_contiguous_input_over_the_cap_is_refused():
    x = np.broadcast_to(np.float32(1.0), (1, 1, 64, 64))   # 16 KiB if copied, 4 bytes as given
    with byte_cap(4 * 32 * 32 + 100):   # the (1, 1, 32, 32) output fits, the copy does not
        with pytest.raises(ValueError, match=r"the contiguous copy of x of shape \(1, 1, 64, 64\) "
                                             r"would take .* \(16384 bytes\), over the cap"):
            deconv.avg_pool2d(x, 2)
        # a contiguous input is not copied: the same call passes
        deconv.avg_pool2d(np.ones((1, 1, 64, 64), np.float32), 2)


def test_conv_workspace_over_the_cap_is_refused():
    # a blocked conv (more than a few channels) needs a workspace of phase planes
    x = np.ones((1, 64, 16, 16), np.float32)
    w = np.ones((8, 64, 3, 3), np.float32)
    out_bytes = 8 * 14 * 14 * 4   # the input's phase planes are larger than the output
    deconv.conv2d(x, w)
    with byte_cap(out_bytes + 8):
        with pytest.raises(ValueError, match=r"workspace of shape \(\d+, \d+\) would take"):
            deconv.conv2d(x, w)


def test_cap_counts_bytes_of_the_dtype():
    x64 = np.ones((1, 1, 32, 32))
    with byte_cap(32 * 32 * 4):   # the float32 output fits exactly, the float64 one does not
        deconv.upsample_nearest2d(x64.astype(np.float32), size=32)
        with pytest.raises(ValueError, match=r"\(8192 bytes\)"):
            deconv.upsample_nearest2d(x64, size=32)


# --- reproducer 6: bias ---

BIAS_OPS = [
    ("conv1d", deconv.conv1d, (2, 3, 8), (4, 3, 3)),
    ("conv2d", deconv.conv2d, (2, 3, 8, 8), (4, 3, 3, 3)),
    ("conv_transpose1d", deconv.conv_transpose1d, (2, 3, 8), (3, 4, 3)),
    ("conv_transpose2d", deconv.conv_transpose2d, (2, 3, 8, 8), (3, 4, 3, 3)),
]


@pytest.mark.parametrize("name, op, x_shape, w_shape", BIAS_OPS)
@pytest.mark.parametrize("bias", [np.array(1.0), np.float64(1.0), 1.0])
def test_zero_d_bias_is_refused(name, op, x_shape, w_shape, bias):
    with pytest.raises(ValueError, match=r"bias must have shape \(4,\) \(C_out.*\), got shape "
                                         r"\(\) \(a 0-d array"):
        op(np.ones(x_shape), np.ones(w_shape), bias)


@pytest.mark.parametrize("name, op, x_shape, w_shape", BIAS_OPS)
@pytest.mark.parametrize("bias_shape", [(1,), (3,), (5,), (4, 1), (1, 4)])
def test_wrong_bias_shape_is_reported_as_given(name, op, x_shape, w_shape, bias_shape):
    with pytest.raises(ValueError, match=rf"bias must have shape \(4,\) \(C_out.*\), got shape "
                                         rf"{re_shape(bias_shape)}$"):
        op(np.ones(x_shape), np.ones(w_shape), np.ones(bias_shape))


@pytest.mark.parametrize("name, op, x_shape, w_shape", BIAS_OPS)
def test_one_output_channel_refuses_a_zero_d_bias_too(name, op, x_shape, w_shape):
    # with C_out = 1 a 0-d bias used to pass (np.ascontiguousarray made it (1,))
    one = (1,) + w_shape[1:] if name.startswith("conv1d") or name == "conv2d" \
        else w_shape[:1] + (1,) + w_shape[2:]
    with pytest.raises(ValueError, match=r"bias must have shape \(1,\)"):
        op(np.ones(x_shape), np.ones(one), np.array(0.5))
    assert op(np.ones(x_shape), np.ones(one), np.array([0.5])).shape[1] == 1


def re_shape(shape):
    return str(shape).replace("(", r"\(").replace(")", r"\)")


# --- reproducer 3: a depthwise conv whose padding dwarfs its input ---

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("dilation, padding", [(2**20, 2**19), (2**14, 2**13), ((1, 2**20), (1, 2**19))])
def test_depthwise_conv_with_huge_dilation_and_padding(dtype, dilation, padding):
    # Every tap of the one output reads padding (the taps straddle the single
    # pixel), so the output is zero; the naive loop nests say the same. The
    # forward (and the input gradient, a flipped depthwise forward) used to
    # allocate the padded plane and die with a SystemError.
    x = np.ones((1, 1, 1, 1), dtype)
    w = np.ones((1, 1, 2, 2), dtype)
    y = deconv.conv2d(x, w, dilation=dilation, padding=padding)
    with deconv.kernels.use("naive"):
        y_naive = deconv.conv2d(x, w, dilation=dilation, padding=padding)
        grads_naive = deconv.conv2d_backward(np.ones_like(y), x, w, dilation=dilation,
                                             padding=padding)
    assert y.shape == y_naive.shape and y.dtype == dtype
    np.testing.assert_array_equal(y, y_naive)
    np.testing.assert_array_equal(y, np.zeros_like(y))
    # The weight gradient runs the naive loops past the planes' bound
    # (tests/test_huge_geometry.py): the naive gradients, no workspace.
    grads = deconv.conv2d_backward(np.ones_like(y), x, w, dilation=dilation, padding=padding)
    for g, g_naive in zip(grads, grads_naive):
        np.testing.assert_array_equal(g, g_naive)


def test_depthwise_wide_buffer_is_bounded_by_the_input_and_output():
    from deconv.kernels import plan
    # the benchmark's depthwise layer keeps its wide buffer ...
    assert plan.depthwise_wide((32, 32), (32, 32), (3, 3), (1, 1, 1, 1, 1, 1))
    # ... and MobileNet's stride-2 one its phase planes (4 of 17x17 for 32x32 -> 16x16) ...
    assert plan.depthwise_wide((32, 32), (16, 16), (3, 3), (2, 2, 1, 1, 1, 1))
    # ... a padding that dwarfs the planes does not, nor a stride far beyond the input
    assert not plan.depthwise_wide((1, 1), (1, 1), (2, 2), (1, 1, 2**19, 2**19, 2**20, 2**20))
    assert not plan.depthwise_wide((5, 5), (1, 1), (3, 3), (2**16, 2**16, 1, 1, 1, 1))


# --- found by the fuzz (tests/test_fuzz.py), each a clean error now ---

def _refused_without_allocating(call, exc, match):
    tracemalloc.start()
    try:
        with pytest.raises(exc, match=match):
            call()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2**24, f"allocated {peak} bytes before refusing"


def test_ints_beyond_the_float_range_are_refused_naming_the_argument():
    from deconv import nn, optim
    p = nn.Parameter(np.ones(3))
    for make, name in [(lambda: optim.SGD([p], lr=0.1, dampening=10**400), "dampening"),
                       (lambda: optim.Adam([p], lr=-10**400), "lr"),
                       (lambda: nn.LeakyReLU(10**400), "negative_slope"),
                       (lambda: nn.Upsample(scale_factor=10**400), "scale_factor")]:
        with pytest.raises(ValueError, match=rf"{name} must be .*finite"):
            make()


def test_an_array_where_a_choice_belongs_is_refused_naming_it():
    from deconv import nn
    from deconv.functional.validation import as_choice
    for make in (lambda: nn.L1Loss(reduction=np.array([1, 2])),
                 lambda: nn.MSELoss(reduction=np.array("mean"))):
        with pytest.raises(ValueError, match=r"reduction must be"):
            make()
    with pytest.raises(ValueError, match=r"mode must be"):
        nn.Upsample(scale_factor=2, mode=np.array(["nearest", "bilinear"]))
    # compared with choices of its own type only: True is not 1, an array is never one
    with pytest.raises(ValueError, match=r"progress must be one of"):
        as_choice(np.array(["bar"]), "progress", ("bar", None))
    assert as_choice(np.str_("bar"), "progress", ("bar", None)) == "bar"


@pytest.mark.parametrize("make", [
    lambda nn: nn.Linear(2**31 - 1, 1),
    lambda nn: nn.Conv2d(2**20, 2**20, 3),
    lambda nn: nn.ConvTranspose1d(2**16, 2**16, 2**10),
    lambda nn: nn.Embedding(2**30, 2**6),
], ids=["Linear", "Conv2d", "ConvTranspose1d", "Embedding"])
def test_layer_parameters_over_the_cap_are_refused_before_they_are_drawn(make):
    from deconv import nn
    _refused_without_allocating(lambda: make(nn), ValueError,
                                r"weight \(drawn in float64\) of shapes .* would take")


@pytest.mark.parametrize("name", ["ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Dropout"])
def test_elementwise_layers_refuse_a_huge_broadcast_view_before_allocating(name):
    from deconv import nn
    view = np.broadcast_to(np.float32(1.0), (2**11, 2**11, 2**11))   # 32 GiB if copied
    layer = getattr(nn, name)()
    _refused_without_allocating(lambda: layer(view), ValueError,
                                rf"{name}\(.*\): output of shapes? .* would take")


def test_other_layers_and_losses_refuse_huge_broadcast_views_before_allocating():
    from deconv import nn
    view = np.broadcast_to(np.float32(1.0), (2**22, 2**11))
    linear = nn.Linear(2**11, 2**11)
    _refused_without_allocating(lambda: linear(view), ValueError,
                                r"Linear\(.*\): output of shape \(4194304, 2048\) would take")
    _refused_without_allocating(lambda: nn.MSELoss()(view, view), ValueError,
                                r"MSELoss: intermediates of shapes .* would take")
    labels = np.zeros(2**22, np.int64)
    _refused_without_allocating(lambda: nn.CrossEntropyLoss()(view, labels),
                                ValueError, r"CrossEntropyLoss: intermediates .* would take")
    indices = np.broadcast_to(np.int64(0), (2**16, 2**16))
    _refused_without_allocating(lambda: nn.Embedding(3, 4)(indices), ValueError,
                                r"Embedding\(.*\): output of shapes .* would take")


def test_the_trainer_names_a_wrong_model_loss_or_optimizer_and_bad_data():
    from deconv import nn, optim
    from deconv.train import Trainer
    model = nn.Sequential(nn.Linear(3, 2))
    sgd = optim.SGD(model.parameters(), lr=0.1)
    kw = dict(batch_size=2, epochs=1, seed=0, progress="none")
    for args, match in [((model, np.ones(3), sgd), r"loss must be an instance of deconv.nn.Loss"),
                        ((model, nn.ReLU, sgd), r"loss must be .*got the class ReLU"),
                        ((np.ones(3), nn.MSELoss(), sgd), r"model must be an instance"),
                        ((model, nn.MSELoss(), "sgd"), r"optimizer must be an instance")]:
        with pytest.raises(TypeError, match=match):
            Trainer(*args, **kw)
    trainer = Trainer(model, nn.MSELoss(), sgd, **kw)
    x, y = np.ones((4, 3), np.float32), np.ones((4, 2), np.float32)
    x[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"x_train must be finite, got nan at position \(2, 1\)"):
        trainer.fit(x, y)
    with pytest.raises(TypeError, match=r"y_train must be a real .* got dtype complex"):
        trainer.fit(np.ones((4, 3), np.float32), y + 1j)


def test_a_layer_takes_a_native_gradient_after_a_big_endian_input():
    from deconv import nn
    x = np.arange(6, dtype=">f4").reshape(2, 3)
    for layer in (nn.Identity(), nn.Flatten(0), nn.ReLU()):
        y = layer(x)
        g = layer.backward(np.ones(y.shape, np.float32))
        assert g.shape == x.shape


def test_consistency_errors_name_what_the_expected_shape_comes_from():
    x = np.ones((1, 1, 5), np.float32)
    w = np.ones((1, 1, 3), np.float32)
    with pytest.raises(ValueError, match=r"grad_output must have shape \(1, 1, 2\) \(conv1d's "
                       r"output for x of shape \(1, 1, 5\), weight of shape \(1, 1, 3\), "
                       r"stride=\(2,\), padding=\(0,\), dilation=\(1,\), groups=1\), got"):
        deconv.conv1d_backward(np.ones((1, 1, 3), np.float32), x, w, stride=2)
    with pytest.raises(ValueError, match=r"weight of shape \(1, 1, 9\) on x of shape \(1, 1, 5\): "
                       r"kernel_size=9"):
        deconv.conv1d(x, np.ones((1, 1, 9), np.float32))
    with pytest.raises(ValueError, match=r"must divide the output channels C_out=3 "
                       r"\(weight.shape\[0\]\)"):
        deconv.conv1d(np.ones((1, 2, 5), np.float32), np.ones((3, 1, 3), np.float32), groups=2)
    with pytest.raises(ValueError, match=r"indices must have shape \(1, 1, 2\) \(that of "
                       r"grad_output\)"):
        deconv.max_pool1d_backward(np.ones((1, 1, 2)), np.zeros((1, 1, 3), np.int64), (1, 1, 4))
    with pytest.raises(ValueError, match=r"along L of input_shape"):
        deconv.upsample_nearest1d_backward(np.ones((1, 1, 4)), (1, 1, 2**31 - 1), scale_factor=2)
    with pytest.raises(ValueError, match=r"output_size=None: the default"):
        deconv.max_unpool1d(np.ones((1, 1, 1)), np.zeros((1, 1, 1), np.int64), 2, 3, padding=1)


def test_relu_backward_is_a_select_as_in_pytorch():
    # torch's threshold_backward: an infinite upstream gradient where x <= 0
    # gives 0 (a product would give 0 * inf = nan there)
    from deconv import nn
    relu = nn.ReLU()
    relu(np.array([-1.0, 0.0, 2.0], np.float32))
    g = relu.backward(np.array([np.inf, -np.inf, np.inf], np.float32))
    np.testing.assert_array_equal(g, [0.0, 0.0, np.inf])
    assert g.dtype == np.float32
