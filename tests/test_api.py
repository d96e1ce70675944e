"""The public surface: every op has a backward and a numpydoc docstring, each kernel
compiles one signature per dtype (and tile shape), and ``deconv check`` passes, prints its table and
fails (exit 1) when an op is wrong."""

import inspect
import re
import io
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import deconv
from deconv import check

FORWARDS = [
    "conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d",
    "max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d",
    "max_unpool1d", "max_unpool2d",
    "upsample_nearest1d", "upsample_nearest2d", "upsample_bilinear2d",
    "pixel_shuffle", "pixel_unshuffle",
]
FORWARDS += ["unfold", "fold"]  # issue 13: fold / unfold
# issue 13: adaptive pooling
FORWARDS += [f"adaptive_{kind}_pool{nd}d" for kind in ("avg", "max") for nd in (1, 2, 3)]
FORWARDS += ["pad"]  # issue 13: padding
FORWARDS += ["interpolate"]  # issue 13: interpolate
FORWARDS += ["conv3d", "conv_transpose3d", "max_pool3d", "avg_pool3d", "max_unpool3d",  # issue 13: 3-D
             "upsample_nearest3d", "upsample_trilinear3d"]
PUBLIC = FORWARDS + [f + "_backward" for f in FORWARDS]


@pytest.mark.parametrize("name", PUBLIC)
def test_public_function_has_numpydoc_docstring(name):
    doc = inspect.getdoc(getattr(deconv, name))
    for section in ("Parameters\n----------", "Returns\n-------", "Notes\n-----", "Examples\n--------"):
        assert section in doc, f"{name} lacks a {section.splitlines()[0]} section"
    # shapes are declared in the parameters
    assert "shape (N, C" in doc, name


@pytest.mark.parametrize("name", [f for f in PUBLIC if not f.startswith("pixel")])
def test_docstring_states_the_output_size_formula(name):
    notes = inspect.getdoc(getattr(deconv, name)).split("Notes\n-----")[1].split("Examples")[0]
    assert re.search(r"(\bout|_out)\b\s*=", notes), name


def test_every_op_is_checked_by_the_check_command():
    assert set(check.OPS) == set(FORWARDS)


_SIGNATURES_SCRIPT = textwrap.dedent(r"""
    import io, json, numpy as np, deconv
    from deconv import check
    from deconv.kernels import conv as _conv_kernels, pool as _pool_kernels, upsample as _upsample_kernels
    assert check.run(configs=2, out=io.StringIO())
    # odd layouts and read-only inputs must not add signatures
    rng = np.random.default_rng(0)
    for dt in (np.float32, np.float64):
        x = np.asfortranarray(rng.standard_normal((2, 3, 8, 8)).astype(dt))
        w = rng.standard_normal((4, 3, 3, 3)).astype(dt)[..., ::-1]
        x.flags.writeable = False
        y = deconv.conv2d(x, w, padding=1)
        deconv.conv2d_backward(y[:, :, ::-1], x, w, padding=1)
        # one output channel per group: the weight gradient's depthwise tile
        wd = w[:3, :1]
        deconv.conv2d_backward(deconv.conv2d(x, wd, padding=1, groups=3), x, wd, padding=1, groups=3)
        deconv.conv1d(rng.standard_normal((2, 3, 16)).astype(dt)[:, :, ::2], w[:, :, 0])
        p, i = deconv.max_pool2d(x, 2)
        deconv.max_unpool2d(p[..., ::-1], np.asfortranarray(i), 2)
        deconv.upsample_bilinear2d(x[:, :, ::2], scale_factor=2)
    counts = {}
    for mod in (_conv_kernels, _pool_kernels, _upsample_kernels):
        for name in dir(mod):
            sigs = getattr(getattr(mod, name), "signatures", None)
            if sigs:
                counts[mod.__name__ + "." + name] = [str(s) for s in sigs]
    print(json.dumps(counts))
""")


def test_each_kernel_compiles_one_signature_per_dtype_and_tile_shape():
    """Odd layouts and read-only inputs add no signature. The register-tiled kernels
    take their tile shape and vector width as compile-time literals: they compile
    once per dtype and tile of the plan, and their signatures differ in nothing else."""
    from deconv.kernels import plan
    out = subprocess.run([sys.executable, "-c", _SIGNATURES_SCRIPT], check=True,
                         capture_output=True, text=True, timeout=900)
    import json
    counts = json.loads(out.stdout)
    assert len(counts) >= 15
    literal = re.compile(r"Literal\[int\]\((\d+)\)")
    plan_tiles = {(*tile, plan.lanes(dt))
                  for tile in (plan.FORWARD_TILE, plan.REDUCE_TILE, plan.REDUCE_TILE_DEPTHWISE,
                                   plan.BROADCAST_TILE)
                  for dt in (np.float32, np.float64)}
    # the packing kernels' transposed squares: min(R, lanes) for the lanes R of a tile
    squares = {(plan.transpose_square(R, dt),)
               for dt in (np.float32, np.float64)
               for R in (plan.FORWARD_TILE.channels,
                         plan.BROADCAST_TILE.vectors * plan.lanes(dt))}
    packing = {"pack_lanes_last", "pack_phase_lanes", "unblock_channels"}
    tiled = set()
    for kernel, sigs in counts.items():
        first_args = [s.split(",")[0] for s in sigs]            # e.g. "(Array(float32"
        tiles = [tuple(int(v) for v in literal.findall(s)) for s in sigs]
        assert len(set(zip(first_args, tiles))) == len(sigs), (kernel, sigs)
        assert len(set(first_args)) <= 2, (kernel, sigs)
        name = kernel.rsplit(".", 1)[1]
        if name in packing:
            # one square per tile it packs for, per dtype
            assert {t for t in tiles} <= squares, (kernel, sigs)
            continue
        # with the literal values blanked, one signature per dtype
        assert len({literal.sub("Literal", s) for s in sigs}) == len(set(first_args)), (kernel, sigs)
        assert {t for t in tiles if t} <= plan_tiles, (kernel, sigs)
        if any(tiles):
            tiled.add(name)
    # (check's long float32 sums run on 12x12 planes: the channel-vector tiles may run too)
    assert ({"conv_forward_blocked", "conv_weight_grad_blocked"} <= tiled
            <= {"conv_forward_blocked", "conv_weight_grad_blocked", "conv_forward_broadcast",
                "conv_weight_grad_broadcast"})
    # both weight-gradient tiles were used, each once per dtype
    grad_sigs = counts["deconv.kernels.conv.conv_weight_grad_blocked"]
    assert len(grad_sigs) == 4, grad_sigs


def test_check_passes_and_prints_the_table():
    buf = io.StringIO()
    assert check.run(configs=1, seed=3, ops=["conv2d", "max_pool2d"], out=buf)
    text = buf.getvalue()
    assert text.splitlines()[0].split() == ["op", "dtype", "check", "max", "error", "tolerance",
                                            "result", "time", "(ms)"]
    rows = [line for line in text.splitlines() if line.startswith(("conv2d", "max_pool2d"))]
    # forward and backward per dtype, adjoint and gradcheck in float64; with conv2d, the
    # three passes of the long float32 sums
    assert len(rows) == 2 * (2 + 2 + 2) + 3
    assert [r.split()[3] for r in rows if r.startswith("conv2d C_in=")] == [
        "forward", "input", "weight"]
    assert all(" pass " in r for r in rows)
    assert "15 passed, 0 failed" in text


def test_check_fails_when_an_op_is_wrong(monkeypatch):
    real = deconv.avg_pool2d
    monkeypatch.setattr(deconv, "avg_pool2d", lambda *a, **k: real(*a, **k) * np.float32(1.001))
    buf = io.StringIO()
    assert not check.run(configs=1, ops=["avg_pool2d"], out=buf)
    assert "FAIL" in buf.getvalue()


def test_check_reports_a_crash_as_a_failure(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")
    monkeypatch.setattr(deconv, "pixel_shuffle_backward", broken)
    buf = io.StringIO()
    assert not check.run(configs=1, ops=["pixel_shuffle"], out=buf)
    assert "RuntimeError: boom" in buf.getvalue()


def test_command_line_exit_status():
    ok = subprocess.run([sys.executable, "-m", "deconv", "check", "--ops", "conv1d", "--configs", "1"],
                        capture_output=True, text=True, timeout=600)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "conv1d" in ok.stdout and "0 failed" in ok.stdout
    failing = textwrap.dedent("""
        import sys, deconv
        from deconv import cli
        real = deconv.upsample_nearest2d
        deconv.upsample_nearest2d = lambda *a, **k: real(*a, **k) + 1
        sys.exit(cli.main(["check", "--ops", "upsample_nearest2d", "--configs", "1"]))
    """)
    bad = subprocess.run([sys.executable, "-c", failing], capture_output=True, text=True, timeout=600)
    assert bad.returncode == 1 and "FAIL" in bad.stdout
    unknown = subprocess.run([sys.executable, "-m", "deconv", "check", "--ops", "conv4d"],
                             capture_output=True, text=True, timeout=600)
    assert unknown.returncode == 2 and "unknown op" in unknown.stderr


@pytest.mark.parametrize("name", FORWARDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_contiguous_writeable_inputs_are_not_mutated(name, dtype):
    """Inputs that reach the kernels as they are (contiguous, writeable) come back unchanged."""
    rng = np.random.default_rng(11)
    for _ in range(3):
        case = check.OPS[name](rng, dtype)
        for a in case.inputs.values():
            assert a.flags.c_contiguous and a.flags.writeable
        before = {k: v.copy() for k, v in case.inputs.items()}
        out = case.forward(deconv, case.inputs)
        grad = rng.standard_normal(out.shape).astype(out.dtype)
        grad_before = grad.copy()
        case.backward(deconv, grad, case.inputs)
        for k, v in case.inputs.items():
            np.testing.assert_array_equal(v, before[k], err_msg=f"{name}: {k} was modified")
        np.testing.assert_array_equal(grad, grad_before, err_msg=f"{name}: grad_output was modified")


X = np.zeros((1, 1, 4, 4), np.float32)
W = np.zeros((1, 1, 3, 3), np.float32)


@pytest.mark.parametrize("call, match", [
    (lambda: deconv.conv2d(X, W, stride=2**63), r"stride must be at most 2147483647"),
    (lambda: deconv.conv2d(X, W, stride=(2**64, 1)), r"stride must be at most"),
    (lambda: deconv.conv2d(X, W, padding=2**62), r"padding must be at most"),
    (lambda: deconv.conv_transpose2d(X, W, dilation=-2**40), r"dilation must be at most"),
    (lambda: deconv.max_pool2d(X, 2, stride=2**63), r"stride must be at most"),
    (lambda: deconv.avg_pool2d(X, 2, divisor_override=2**64), r"divisor_override must be at most"),
    (lambda: deconv.upsample_nearest2d(X, size=(2**40, 1)), r"size must be at most"),
    (lambda: deconv.pixel_shuffle(X, 2**70), r"upscale_factor must be at most"),
])
def test_huge_integer_arguments_are_refused(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_one_element_sequences_and_empty_stride_as_in_pytorch():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 2, 6, 6))
    w = rng.standard_normal((3, 2, 3, 3))
    np.testing.assert_array_equal(deconv.conv2d(x, w, stride=(2,), padding=[1]),
                                  deconv.conv2d(x, w, stride=2, padding=1))
    np.testing.assert_array_equal(deconv.max_pool2d(x, (2,), stride=())[0], deconv.max_pool2d(x, 2)[0])
    np.testing.assert_array_equal(deconv.avg_pool2d(x, [3], stride=[]), deconv.avg_pool2d(x, 3))


def test_non_native_byte_order_is_accepted():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 2, 5, 5)).astype(np.float32)
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    y = deconv.conv2d(x.astype(">f4"), w.astype(">f4"))
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, deconv.conv2d(x, w))


def test_compare_prints_one_line_and_raises_on_disagreement(capsys):
    from deconv.gradcheck import compare
    assert compare("same", np.array([1.0, np.nan]), np.array([1.0, np.nan])) == 0.0
    assert capsys.readouterr().out == "same | exact: True | approx: True | maxdiff: 0\n"
    maxdiff = compare("close", np.array([1.0]), np.array([1.0 + 1e-12]))
    assert 0 < maxdiff < 2e-12
    assert "exact: False | approx: True" in capsys.readouterr().out
    with pytest.raises(AssertionError, match=r"far: max \|difference\| 0.1"):
        compare("far", np.array([1.0, 2.0]), np.array([1.0, 2.1]))
    assert "approx: False" in capsys.readouterr().out
    with pytest.raises(AssertionError, match=r"shape \(2,\) != expected shape \(1, 2\)"):
        compare("shape", np.zeros(2), np.zeros((1, 2)))
    with pytest.raises(AssertionError):
        compare("nan where a number is expected", np.array([np.nan]), np.array([0.0]))


def test_small_calls_run_on_one_thread_and_restore_the_count():
    import numba
    from deconv.kernels import threads as _threads
    threads = numba.get_num_threads()
    seen = lambda *arrays: numba.get_num_threads()          # noqa: E731 (a stand-in kernel)
    assert _threads.call(seen, np.zeros(10), 3) == 1
    assert _threads.call(seen, np.zeros(_threads.SMALL_WORK)) == threads
    assert numba.get_num_threads() == threads

    def failing(*arrays):
        raise RuntimeError("kernel failed")
    with pytest.raises(RuntimeError):
        _threads.call(failing, np.zeros(10))
    assert numba.get_num_threads() == threads
    with _threads.kernel_chunks(10) as chunks:
        assert chunks == 1 and numba.get_num_threads() == 1
    assert numba.get_num_threads() == threads
