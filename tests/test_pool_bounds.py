"""Pooling costs what the input holds, not what kernel_size says (issue 11).

A window of ``kernel_size = 65537`` or ``2**31 - 1`` over a 1x1 input reads
one element; the kernels used to visit every tap of it (minutes of work).
The reproducers of the issue run here in a child process under a generous
hang guard (no timing is asserted) and their results are derived by hand: the
only input element a window meets is its maximum, and the average is it over
the window's divisor. Hypothesis then draws big kernels on small inputs
(every configuration valid by construction) and compares with
:mod:`deconv.reference`, and the tap set the kernels keep is checked against
its brute-force definition.
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import deconv
from deconv import reference
from deconv.functional import shapes
from deconv.kernels import pool
from tolerances import assert_close

DTYPES = [np.float32, np.float64]
BIG = [(65537, 32768), (2**31 - 1, 2**30 - 1)]  # (kernel_size, padding) of the issue

# A hang guard, not a timing: the fixed calls take milliseconds after
# compilation; before the fix the first of them ran for minutes.
HANG_GUARD_SECONDS = 240


def _run_child(script, tmp_path):
    """Run ``script`` in a fresh interpreter that imports this deconv; it saves to out.npz."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(deconv.__file__)))
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    out = tmp_path / "out.npz"
    script = f"OUT = {str(out)!r}\n" + textwrap.dedent(script)
    subprocess.run([sys.executable, "-c", script], env=dict(os.environ, PYTHONPATH=path),
                   check=True, capture_output=True, text=True, timeout=HANG_GUARD_SECONDS)
    with np.load(out) as saved:
        return dict(saved)


# ---------------------------------------------------------------------------
# the reproducers of the issue, 1x1 input: the window holds one input pixel
# ---------------------------------------------------------------------------

_REPRODUCER = """
    import numpy as np
    import deconv
    BIG = {big!r}
    res = {{}}
    for dt in (np.float32, np.float64):
        name = np.dtype(dt).name
        for nd in (1, 2):
            x = np.full((1, 2) + (1,) * nd, -2.5, dt)
            x[0, 1] = 7.0
            g = np.full(x.shape, 0.75, dt)
            for k, p in BIG:
                key = f"{{name}}-{{nd}}-{{k}}"
                if "{op}" == "max":
                    out, idx = getattr(deconv, f"max_pool{{nd}}d")(x, k, padding=p)
                    res["out-" + key], res["idx-" + key] = out, idx
                    res["grad-" + key] = getattr(deconv, f"max_pool{{nd}}d_backward")(
                        g, idx, x.shape)
                    # 2-D: dilation on a second, small axis; 1-D: a stride of k in
                    # ceil mode, and (k = 65537, over as many elements) dilation 2
                    cases = {{}}
                    if nd == 2:
                        xd = np.arange(7, dtype=dt)[::-1].reshape(1, 1, 1, 7).copy()
                        cases["dil-"] = xd, dict(kernel_size=(k, 3), stride=1,
                                                 padding=(p, 1), dilation=(1, 3))
                    else:
                        xd = np.arange(7, dtype=dt).reshape(1, 1, 7)
                        cases["stride-"] = xd, dict(kernel_size=k, stride=k, padding=p,
                                                    ceil_mode=True)
                        if k == 65537:
                            xd = np.arange(k, dtype=dt).reshape(1, 1, k)
                            cases["dil-"] = xd, dict(kernel_size=k, padding=p, dilation=2)
                    for case, (xd, kw) in cases.items():
                        out, idx = getattr(deconv, f"max_pool{{nd}}d")(xd, **kw)
                        res[case + "out-" + key], res[case + "idx-" + key] = out, idx
                        res[case + "grad-" + key] = getattr(
                            deconv, f"max_pool{{nd}}d_backward")(np.ones_like(out), idx,
                                                                 xd.shape)
                else:
                    for opts in ("pad", "nopad", "override"):
                        kw = dict(padding=p, count_include_pad=opts == "pad",
                                  divisor_override=3 if opts == "override" else None)
                        res[f"out-{{opts}}-" + key] = getattr(deconv, f"avg_pool{{nd}}d")(
                            x, k, **kw)
                        res[f"grad-{{opts}}-" + key] = getattr(
                            deconv, f"avg_pool{{nd}}d_backward")(g, x.shape, k, **kw)
    np.savez(OUT, **res)
"""


@pytest.fixture(scope="module")
def reproduced(tmp_path_factory):
    """Both children's results: {"max": {...}, "avg": {...}}."""
    results = {}
    for op in ("max", "avg"):
        results[op] = _run_child(_REPRODUCER.format(big=BIG, op=op),
                                 tmp_path_factory.mktemp(op))
    return results


def _one_pixel(dt, nd):
    x = np.full((1, 2) + (1,) * nd, -2.5, dt)
    x[0, 1] = 7.0
    return x


@pytest.mark.parametrize("k, p", BIG)
@pytest.mark.parametrize("nd", [1, 2])
@pytest.mark.parametrize("dt", DTYPES)
def test_max_pool_with_a_huge_window_on_a_one_pixel_input(reproduced, dt, nd, k, p):
    res = reproduced["max"]
    key = f"{np.dtype(dt).name}-{nd}-{k}"
    x = _one_pixel(dt, nd)
    # (k + 2p - k) // k + 1 = 1 output; its window meets the pixel, its maximum
    out, idx, grad = res["out-" + key], res["idx-" + key], res["grad-" + key]
    assert out.dtype == dt and idx.dtype == np.int64 and grad.dtype == dt
    np.testing.assert_array_equal(out, x)
    np.testing.assert_array_equal(idx, np.zeros(x.shape, np.int64))
    np.testing.assert_array_equal(grad, np.full(x.shape, 0.75, dt))


@pytest.mark.parametrize("case, nd, k", [
    ("dil-", 2, BIG[0][0]), ("dil-", 2, BIG[1][0]),
    ("stride-", 1, BIG[0][0]), ("stride-", 1, BIG[1][0]), ("dil-", 1, BIG[0][0]),
])
@pytest.mark.parametrize("dt", DTYPES)
def test_max_pool_with_a_huge_window_and_dilation_or_stride(reproduced, dt, case, nd, k):
    res = reproduced["max"]
    key = f"{np.dtype(dt).name}-{nd}-{k}"
    out, idx, grad = (res[case + name + key] for name in ("out-", "idx-", "grad-"))
    if nd == 2:
        # H = 1: every window's only row is row 0, so the W axis alone decides:
        # kernel 3, dilation 3, padding 1, stride 1 over the 7 values 6..0.
        xd = np.arange(7, dtype=dt)[::-1].reshape(1, 1, 7).copy()
        r_out, r_idx = reference.max_pool1d(xd, 3, stride=1, padding=1, dilation=3)
        r_grad = reference.max_pool1d_backward(np.ones(r_out.shape), r_idx, xd.shape)
        expected = (r_out.reshape(1, 1, 1, 3), r_idx.reshape(1, 1, 1, 3),
                    r_grad.reshape(1, 1, 1, 7))
    elif case == "stride-":
        # stride k: window 0 covers [-p, k - p) which holds the whole input
        # (p + 7 <= k - p), window 1 would start in the right padding (dropped
        # in ceil mode): one output, the last of the increasing values 0..6.
        expected = (np.full((1, 1, 1), 6.0), np.full((1, 1, 1), 6),
                    np.eye(7)[6].reshape(1, 1, 7))
    else:
        # one window, taps at -p + 2j = -32768 + 2j: the even positions of the
        # increasing values 0..k-1, the last of which (k - 1, even) is largest
        expected = (np.full((1, 1, 1), k - 1.0), np.full((1, 1, 1), k - 1),
                    np.eye(1, k, k - 1).reshape(1, 1, k))
    assert out.dtype == dt and grad.dtype == dt
    np.testing.assert_array_equal(out, expected[0].astype(dt))
    np.testing.assert_array_equal(idx, expected[1])
    np.testing.assert_array_equal(grad, expected[2].astype(dt))


@pytest.mark.parametrize("opts", ["pad", "nopad", "override"])
@pytest.mark.parametrize("k, p", BIG)
@pytest.mark.parametrize("nd", [1, 2])
@pytest.mark.parametrize("dt", DTYPES)
def test_avg_pool_with_a_huge_window_on_a_one_pixel_input(reproduced, dt, nd, k, p, opts):
    res = reproduced["avg"]
    key = f"{opts}-{np.dtype(dt).name}-{nd}-{k}"
    x = _one_pixel(dt, nd)
    # The window [-p, min(k - p, 1 + p)) = [-p, p + 1) has k = 2p + 1 taps per
    # axis, one of them on the pixel: count_include_pad divides by k**nd, the
    # clipped window by 1, the override by 3; the sum is accumulated in
    # float64 and rounded once.
    divisor = {"pad": k**nd, "nopad": 1, "override": 3}[opts]
    out, grad = res["out-" + key], res["grad-" + key]
    assert out.dtype == dt and grad.dtype == dt
    np.testing.assert_array_equal(out, (x.astype(np.float64) / divisor).astype(dt))
    np.testing.assert_array_equal(grad, np.full(x.shape, 0.75 / divisor).astype(dt))


def test_a_window_check_with_a_huge_kernel_is_arithmetic(tmp_path):
    """pool_window_has_input walks the outputs, not the kernel's taps."""
    res = _run_child("""
        import numpy as np
        from deconv.functional import shapes
        k = 2**31 - 1
        # taps at -p + 2j: odd -p never lands on position 0 of a length-1 input
        np.savez(OUT, odd=shapes.pool_window_has_input(1, 1, k, 1, 2**30 - 1, 2),
                 even=shapes.pool_window_has_input(1, 1, k, 1, 2**30 - 2, 2),
                 dilated=shapes.pool_window_has_input(3, 2, k, 1, 2**30 - 1, 2**40))
    """, tmp_path)
    assert not res["odd"] and res["even"]
    # taps 2**40 apart: tap 0 of each window lies left of the input, tap 1
    # right of it, so no window holds an input element
    assert not res["dilated"]


# ---------------------------------------------------------------------------
# the tap set the kernels visit
# ---------------------------------------------------------------------------

@given(L=st.integers(1, 12), L_out=st.integers(0, 12), k=st.integers(1, 40),
       s=st.integers(1, 6), p=st.integers(-5, 30), d=st.integers(1, 6))
def test_taps_with_input_are_the_taps_some_window_reads_inside_the_input(L, L_out, k, s, p, d):
    taps = pool._taps_with_input(L, L_out, k, s, p, d)
    expected = [i for i in range(k)
                if any(0 <= o * s - p + i * d < L for o in range(L_out))]
    assert taps.dtype == np.int64
    assert taps.tolist() == expected


def test_taps_with_input_of_a_huge_window_are_few():
    # one output over a 1x1 input: the single tap on the pixel
    assert pool._taps_with_input(1, 1, 2**31 - 1, 1, 2**30 - 1, 1).tolist() == [2**30 - 1]
    # three outputs 5 apart over 4 elements, dilation 2: at most 2 taps each
    taps = pool._taps_with_input(4, 3, 2**31 - 1, 5, 2**30 - 1, 2)
    assert len(taps) <= 3 * 2
    assert all(any(0 <= o * 5 - (2**30 - 1) + i * 2 < 4 for o in range(3)) for i in taps)


# ---------------------------------------------------------------------------
# big kernels on small inputs against the reference
# ---------------------------------------------------------------------------

@st.composite
def big_window_axis(draw, kind, k_max):
    """(k, s, p, d, L) of one axis: a big window on an input as small as it allows."""
    k = draw(st.integers(1, k_max))
    d = draw(st.integers(1, 3)) if kind == "max" else 1
    # padding near its cap k // 2 makes the smallest inputs
    p = draw(st.one_of(st.integers(0, k // 2), st.integers(max(0, k // 2 - 2), k // 2)))
    s = draw(st.one_of(st.integers(1, 3), st.integers(1, 2 * k + 2)))
    # The dilated kernel fits in the padded input; L >= d puts an input
    # element in every max-pooling window (taps d apart, the first < L, the
    # last >= 0 since d*(k-1) >= k//2 >= p).
    smallest = max(1, d * (k - 1) + 1 - 2 * p, d if kind == "max" else 1)
    return k, s, p, d, smallest + draw(st.integers(0, 3))


@st.composite
def big_window_configs(draw, kind):
    nd = draw(st.sampled_from([1, 2]))
    # the reference gathers every tap of every window: (N, C, *out, *k)
    axes = [draw(big_window_axis(kind, 3000 if nd == 1 else 80)) for _ in range(nd)]
    k, s, p, d, size = (tuple(a[i] for a in axes) for i in range(5))
    kwargs = dict(kernel_size=k, stride=s, padding=p, ceil_mode=draw(st.booleans()))
    if kind == "max":
        kwargs["dilation"] = d
    else:
        kwargs["count_include_pad"] = draw(st.booleans())
        kwargs["divisor_override"] = draw(st.sampled_from([None, None, 1, 3, 7]))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 2))) + size
    return dict(nd=nd, shape=shape, kwargs=kwargs, dtype=draw(st.sampled_from(DTYPES)),
                seed=draw(st.integers(0, 2**31 - 1)))


@given(big_window_configs("max"))
def test_max_pool_with_big_windows_matches_reference(cfg):
    nd, dt, kw = cfg["nd"], cfg["dtype"], cfg["kwargs"]
    rng = np.random.default_rng(cfg["seed"])
    n = int(np.prod(cfg["shape"]))
    x = ((rng.permutation(n) - n / 2) * 1e-3).reshape(cfg["shape"]).astype(dt)
    out, idx = getattr(deconv, f"max_pool{nd}d")(x, **kw)
    r_out, r_idx = getattr(reference, f"max_pool{nd}d")(x, **kw)
    # a maximum is one of the inputs, so the match is exact
    assert out.dtype == dt
    np.testing.assert_array_equal(out, r_out.astype(dt))
    np.testing.assert_array_equal(idx, r_idx)
    go = rng.uniform(-1, 1, out.shape).astype(dt)
    gx = getattr(deconv, f"max_pool{nd}d_backward")(go, idx, x.shape)
    assert_close(gx, getattr(reference, f"max_pool{nd}d_backward")(go, idx, x.shape))


@given(big_window_configs("avg"))
def test_avg_pool_with_big_windows_matches_reference(cfg):
    nd, dt, kw = cfg["nd"], cfg["dtype"], cfg["kwargs"]
    rng = np.random.default_rng(cfg["seed"])
    # small integers: every window sum is exact in float64 whatever the
    # order, so forward and reference divide the same numbers (bitwise)
    x = rng.integers(-8, 9, cfg["shape"]).astype(dt)
    out = getattr(deconv, f"avg_pool{nd}d")(x, **kw)
    assert out.dtype == dt
    np.testing.assert_array_equal(out, getattr(reference, f"avg_pool{nd}d")(x, **kw).astype(dt))
    go = rng.uniform(-1, 1, out.shape).astype(dt)
    gx = getattr(deconv, f"avg_pool{nd}d_backward")(go, x.shape, **kw)
    assert gx.dtype == dt
    assert_close(gx, getattr(reference, f"avg_pool{nd}d_backward")(go, x.shape, **kw))


@given(big_window_configs("max"))
def test_window_check_matches_its_definition_on_big_dilated_windows(cfg):
    kw = cfg["kwargs"]
    nd = cfg["nd"]
    for i in range(nd):
        L = cfg["shape"][2 + i]
        k, s, p, d = (kw[name][i] for name in ("kernel_size", "stride", "padding", "dilation"))
        out = shapes.pool_output_size(L, k, s, p, d, kw["ceil_mode"])
        for shift in (0, 1):  # shift 1: a shorter input whose windows may miss it
            Ls = max(1, L - shift * d)
            expected = all(any(0 <= o * s - p + j * d < Ls for j in range(k))
                           for o in range(out))
            assert shapes.pool_window_has_input(Ls, out, k, s, p, d) == expected
