"""Nearest / bilinear upsampling and pixel (un)shuffle: forward and backward
against the NumPy reference, adjoint identities, float64 finite differences,
edge cases, bitwise determinism across thread counts and argument errors."""

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import deconv
from deconv import reference
from deconv.gradcheck import numerical_gradient
from determinism import run_hashes
from tolerances import FINITE_DIFFERENCE, assert_close

DTYPES = [np.float32, np.float64]

NEAREST = {1: deconv.upsample_nearest1d, 2: deconv.upsample_nearest2d}
NEAREST_BWD = {1: deconv.upsample_nearest1d_backward, 2: deconv.upsample_nearest2d_backward}
REF_NEAREST = {1: reference.upsample_nearest1d, 2: reference.upsample_nearest2d}
REF_NEAREST_BWD = {1: reference.upsample_nearest1d_backward,
                   2: reference.upsample_nearest2d_backward}


# ---------------------------------------------------------------------------
# strategies: every drawn configuration is valid by construction
# ---------------------------------------------------------------------------

@st.composite
def axis_scales(draw, L):
    """(L_out, scale_factor) for an input length L, with floor(L * scale_factor) = L_out.

    Integer factors, or ``(L_out + u) / L`` with ``u`` in [0.05, 0.95] so that
    rounding cannot move the floor; L_out ranges over downsampling, L_out == L
    and L_out == 2L with a non-integer factor (PyTorch's shortcut cases), and
    upsampling.
    """
    if draw(st.booleans()):
        s = draw(st.sampled_from([1, 2, 3, 1.0, 2.0, 4.0]))
        return int(L * s), s
    L_out = draw(st.sampled_from([L, 2 * L]) | st.integers(1, 3 * L + 2))
    u = draw(st.floats(0.05, 0.95))
    return L_out, (L_out + u) / L


@st.composite
def resize_configs(draw, nd):
    """Input shape, output spatial size and the kwargs (size or scale_factor) that give it."""
    spatial = tuple(draw(st.integers(1, 7)) for _ in range(nd))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3))) + spatial
    if draw(st.booleans()):
        out = tuple(draw(st.integers(1, 15)) for _ in range(nd))
        if len(set(out)) == 1 and draw(st.booleans()):
            size = out[0]
        else:
            size = out if draw(st.booleans()) else list(out)
        kwargs = dict(size=size)
        scale_factor = None
    elif draw(st.booleans()):
        # one factor for every axis, built on the shortest so no axis drops to 0
        _, scale_factor = draw(axis_scales(min(spatial)))
        out = tuple(int(np.floor(L * float(scale_factor))) for L in spatial)
        kwargs = dict(scale_factor=scale_factor)
    else:
        pairs = [draw(axis_scales(L)) for L in spatial]
        out = tuple(o for o, _ in pairs)
        scale_factor = tuple(s for _, s in pairs)
        if draw(st.booleans()):
            scale_factor = list(scale_factor)
        kwargs = dict(scale_factor=scale_factor)
    return dict(shape=shape, out=out, kwargs=kwargs, scale_factor=scale_factor,
                dtype=draw(st.sampled_from(DTYPES)), seed=draw(st.integers(0, 2**31 - 1)))


@st.composite
def shuffle_configs(draw):
    r = draw(st.integers(1, 3))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 4)),
             draw(st.integers(1, 4)))
    return dict(r=r, shape=shape, dtype=draw(st.sampled_from(DTYPES)),
                seed=draw(st.integers(0, 2**31 - 1)))


def _frozen(*arrays):
    """Read-only inputs prove the kernels never write to them."""
    for a in arrays:
        a.flags.writeable = False
    return arrays


def _expected_nearest_backward(nd, g, shape, kwargs, scale_factor):
    return REF_NEAREST_BWD[nd](g, shape, scale_factor)


# ---------------------------------------------------------------------------
# against the reference
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("nd", [1, 2])
@given(data=st.data())
def test_nearest_matches_reference(nd, data):
    cfg = data.draw(resize_configs(nd))
    dt, kw = cfg["dtype"], cfg["kwargs"]
    rng = np.random.default_rng(cfg["seed"])
    x, = _frozen(rng.standard_normal(cfg["shape"]).astype(dt))
    y = NEAREST[nd](x, **kw)
    assert y.dtype == dt and y.shape == cfg["shape"][:2] + cfg["out"]
    # A copy: exact, whatever the dtype.
    np.testing.assert_array_equal(y, REF_NEAREST[nd](x, **kw).astype(dt))
    g, = _frozen(rng.standard_normal(y.shape).astype(dt))
    gi = NEAREST_BWD[nd](g, x.shape, scale_factor=cfg["scale_factor"])
    assert gi.dtype == dt
    assert_close(gi, _expected_nearest_backward(nd, g, x.shape, kw, cfg["scale_factor"]), dt)


@given(resize_configs(2), st.booleans())
def test_bilinear_matches_reference(cfg, align_corners):
    dt, kw = cfg["dtype"], cfg["kwargs"]
    rng = np.random.default_rng(cfg["seed"])
    x, = _frozen(rng.standard_normal(cfg["shape"]).astype(dt))
    y = deconv.upsample_bilinear2d(x, align_corners=align_corners, **kw)
    assert y.dtype == dt and y.shape == cfg["shape"][:2] + cfg["out"]
    assert_close(y, reference.upsample_bilinear2d(x, align_corners=align_corners, **kw), dt)
    g, = _frozen(rng.standard_normal(y.shape).astype(dt))
    gi = deconv.upsample_bilinear2d_backward(
        g, x.shape, scale_factor=cfg["scale_factor"], align_corners=align_corners)
    assert gi.dtype == dt
    expected = reference.upsample_bilinear2d_backward(g, x.shape, align_corners,
                                                      cfg["scale_factor"])
    assert_close(gi, expected, dt, scale=4.0)


@given(shuffle_configs())
def test_pixel_shuffle_matches_reference(cfg):
    r, dt = cfg["r"], cfg["dtype"]
    n, c, h, w = cfg["shape"]
    rng = np.random.default_rng(cfg["seed"])
    # Permutations: exact in every dtype.
    x, = _frozen(rng.standard_normal((n, c * r * r, h, w)).astype(dt))
    y = deconv.pixel_shuffle(x, r)
    assert y.dtype == dt
    np.testing.assert_array_equal(y, reference.pixel_shuffle(x, r).astype(dt))
    np.testing.assert_array_equal(deconv.pixel_shuffle_backward(y, r),
                                  reference.pixel_shuffle_backward(y, r).astype(dt))
    z, = _frozen(rng.standard_normal((n, c, h * r, w * r)).astype(dt))
    u = deconv.pixel_unshuffle(z, r)
    assert u.dtype == dt
    np.testing.assert_array_equal(u, reference.pixel_unshuffle(z, r).astype(dt))
    np.testing.assert_array_equal(deconv.pixel_unshuffle_backward(u, r),
                                  reference.pixel_unshuffle_backward(u, r).astype(dt))


# ---------------------------------------------------------------------------
# adjoint (dot-product) identities: <f(x), g> == <x, f^T(g)>
# ---------------------------------------------------------------------------

def _adjoint_pairs():
    """(name, forward(x), backward(g), input shape) for every op, in float64."""
    S = (2, 3, 5, 7)
    S1 = (2, 3, 7)
    pairs = []
    for kw in [dict(scale_factor=2), dict(scale_factor=1.1), dict(scale_factor=(0.6, 1.7)),
               dict(scale_factor=(2.1, 3.3)), dict(size=(4, 11)), dict(size=1)]:
        sf = kw.get("scale_factor")
        pairs.append((f"nearest2d {kw}", lambda x, kw=kw: deconv.upsample_nearest2d(x, **kw),
                      lambda g, sf=sf: deconv.upsample_nearest2d_backward(g, S, scale_factor=sf), S))
        for ac in (False, True):
            pairs.append((f"bilinear {kw} ac={ac}",
                          lambda x, kw=kw, ac=ac: deconv.upsample_bilinear2d(
                              x, align_corners=ac, **kw),
                          lambda g, sf=sf, ac=ac: deconv.upsample_bilinear2d_backward(
                              g, S, scale_factor=sf, align_corners=ac),
                          S))
    # 1.1 and 2.05 hit PyTorch's out == in / out == 2*in cases (no shortcut in 1-D)
    for kw in [dict(scale_factor=2), dict(scale_factor=1.1), dict(scale_factor=2.05),
               dict(scale_factor=0.6), dict(scale_factor=3.3), dict(size=11), dict(size=1)]:
        sf = kw.get("scale_factor")
        pairs.append((f"nearest1d {kw}", lambda x, kw=kw: deconv.upsample_nearest1d(x, **kw),
                      lambda g, sf=sf: deconv.upsample_nearest1d_backward(g, S1, scale_factor=sf), S1))
    for r in (1, 2, 3):
        pairs.append((f"pixel_shuffle r={r}", lambda x, r=r: deconv.pixel_shuffle(x, r),
                      lambda g, r=r: deconv.pixel_shuffle_backward(g, r), (2, 2 * r * r, 3, 4)))
        pairs.append((f"pixel_unshuffle r={r}", lambda x, r=r: deconv.pixel_unshuffle(x, r),
                      lambda g, r=r: deconv.pixel_unshuffle_backward(g, r),
                      (2, 2, 2 * r, 3 * r)))
    return pairs


ADJOINT_PAIRS = _adjoint_pairs()


@pytest.mark.parametrize("name,forward,backward,shape", ADJOINT_PAIRS,
                         ids=[p[0] for p in ADJOINT_PAIRS])
def test_adjoint_identity(name, forward, backward, shape):
    rng = np.random.default_rng(7)
    x = rng.standard_normal(shape)
    y = forward(x)
    g = rng.standard_normal(y.shape)
    gi = backward(g)
    assert gi.shape == x.shape
    lhs, rhs = np.vdot(y, g), np.vdot(x, gi)
    np.testing.assert_allclose(lhs, rhs, rtol=1e-12, atol=1e-12)


def test_nearest_uses_one_index_map_in_1d_and_2d_forward_and_backward():
    # L = 5, scale_factor = 1.1: L_out = 5 == L_in, so ATen's nearest_idx copies.
    # (PyTorch's 1-D forward alone would copy 0, 0, 1, 2, 3 while its backward
    # treats the op as a copy; deconv's forward and backward agree.)
    x = np.arange(5.0).reshape(1, 1, 5)
    np.testing.assert_array_equal(deconv.upsample_nearest1d(x, scale_factor=1.1)[0, 0],
                                  [0, 1, 2, 3, 4])
    g = np.arange(1.0, 6.0).reshape(1, 1, 5)
    np.testing.assert_array_equal(deconv.upsample_nearest1d_backward(g, x.shape, scale_factor=1.1), g)
    # L_out == 2 L_in with a factor that is not 2: halving, in 1-D as in 2-D
    x = np.arange(10.0).reshape(1, 1, 10)
    y1 = deconv.upsample_nearest1d(x, scale_factor=2.05)
    np.testing.assert_array_equal(y1[0, 0], np.arange(20) // 2)
    y2 = deconv.upsample_nearest2d(x[:, :, None, :], scale_factor=(1.0, 2.05))
    np.testing.assert_array_equal(y2[:, :, 0, :], y1)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("r", [1, 2, 3])
def test_pixel_shuffle_round_trip_exact(dt, r):
    rng = np.random.default_rng(r)
    x = rng.standard_normal((2, 3 * r * r, 4, 5)).astype(dt)
    y = deconv.pixel_shuffle(x, r)
    assert y.shape == (2, 3, 4 * r, 5 * r)
    np.testing.assert_array_equal(deconv.pixel_unshuffle(y, r), x)
    np.testing.assert_array_equal(deconv.pixel_shuffle(deconv.pixel_unshuffle(y, r), r), y)
    np.testing.assert_array_equal(deconv.pixel_shuffle_backward(y, r), x)
    np.testing.assert_array_equal(deconv.pixel_unshuffle_backward(x, r), y)
    # the defining formula, checked directly
    i, j = r - 1, 0
    np.testing.assert_array_equal(y[:, 1, i::r, j::r], x[:, 1 * r * r + i * r + j])


# ---------------------------------------------------------------------------
# float64 central differences
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("kw,ac", [(dict(scale_factor=1.7), False), (dict(size=(5, 3)), True),
                                   (dict(scale_factor=(0.6, 2.0)), False)])
def test_bilinear_backward_finite_differences(kw, ac):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 2, 3, 4))
    g = rng.standard_normal(deconv.upsample_bilinear2d(x, align_corners=ac, **kw).shape)

    def loss():
        return float(np.vdot(deconv.upsample_bilinear2d(x, align_corners=ac, **kw), g))

    fd = FINITE_DIFFERENCE
    numeric = numerical_gradient(loss, x, eps=fd["eps"])
    analytic = deconv.upsample_bilinear2d_backward(g, x.shape, scale_factor=kw.get("scale_factor"),
                                                   align_corners=ac)
    np.testing.assert_allclose(analytic, numeric, rtol=fd["rtol"], atol=fd["atol"])


def test_nearest_backward_finite_differences():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1, 2, 3, 4))
    g = rng.standard_normal((1, 2, 5, 3))

    def loss():
        return float(np.vdot(deconv.upsample_nearest2d(x, scale_factor=(1.7, 0.8)), g))

    numeric = numerical_gradient(loss, x, eps=FINITE_DIFFERENCE["eps"])
    analytic = deconv.upsample_nearest2d_backward(g, x.shape, scale_factor=(1.7, 0.8))
    np.testing.assert_allclose(analytic, numeric, rtol=FINITE_DIFFERENCE["rtol"],
                               atol=FINITE_DIFFERENCE["atol"])


# ---------------------------------------------------------------------------
# edge cases
# ---------------------------------------------------------------------------

def _all_ops(shape=(2, 4, 3, 5)):
    """(name, callable(a)) for every forward and backward, for arrays ``a`` of ``shape``
    (H >= 2 and W >= 4; C divisible by 4)."""
    n, c = shape[:2]
    return [
        ("nearest1d", lambda a: deconv.upsample_nearest1d(a[:, :, 0], scale_factor=1.7)),
        ("nearest1d_bwd", lambda a: deconv.upsample_nearest1d_backward(a[:, :, 0], (n, c, 2),
                                                                       scale_factor=2.5)),
        ("nearest2d", lambda a: deconv.upsample_nearest2d(a, scale_factor=(2, 0.6))),
        ("nearest2d_bwd", lambda a: deconv.upsample_nearest2d_backward(a, (n, c, 2, 3))),
        ("bilinear", lambda a: deconv.upsample_bilinear2d(a, size=(4, 9))),
        ("bilinear_ac", lambda a: deconv.upsample_bilinear2d(a, scale_factor=1.5,
                                                             align_corners=True)),
        ("bilinear_bwd", lambda a: deconv.upsample_bilinear2d_backward(a, (n, c, 2, 2))),
        ("pixel_shuffle", lambda a: deconv.pixel_shuffle(a, 2)),
        ("pixel_unshuffle", lambda a: deconv.pixel_unshuffle(a[:, :, :2, :4], 2)),
        ("pixel_shuffle_bwd", lambda a: deconv.pixel_shuffle_backward(a[:, :, :2, :4], 2)),
        ("pixel_unshuffle_bwd", lambda a: deconv.pixel_unshuffle_backward(a, 2)),
    ]


@pytest.mark.parametrize("dt", DTYPES)
def test_layouts_read_only_and_dtype(dt):
    """Fortran order, negative strides, strided views and read-only inputs give
    the contiguous copy's result, keep the dtype and are never written."""
    rng = np.random.default_rng(0)
    base = rng.standard_normal((2, 4, 3, 5)).astype(dt)
    big = np.zeros((4, 8, 3, 10), dt)
    big[::2, ::2, :, ::2] = base
    variants = {
        "fortran": np.asfortranarray(base),
        "negative strides": base[::-1, :, ::-1, ::-1].copy()[::-1, :, ::-1, ::-1],
        "strided view": big[::2, ::2, :, ::2],
        "read-only": _frozen(base.copy())[0],
    }
    for name, op in _all_ops(base.shape):
        expected = op(np.ascontiguousarray(base))
        assert expected.dtype == dt, name
        for vname, v in variants.items():
            before = v.copy()
            got = op(v)
            assert got.dtype == dt, (name, vname)
            np.testing.assert_array_equal(got, expected, err_msg=f"{name} / {vname}")
            np.testing.assert_array_equal(v, before, err_msg=f"{name} mutated {vname}")


@pytest.mark.parametrize("dt", DTYPES)
def test_batch_of_zero(dt):
    for shape in [(0, 4, 3, 5), (2, 0, 3, 5)]:
        for name, op in _all_ops(shape):
            out = op(np.zeros(shape, dt))
            assert out.dtype == dt and out.size == 0, name


def test_batch_of_zero_shapes():
    x = np.zeros((0, 3, 4, 5), np.float32)
    assert deconv.upsample_nearest2d(x, scale_factor=2).shape == (0, 3, 8, 10)
    assert deconv.upsample_bilinear2d(x, size=7).shape == (0, 3, 7, 7)
    assert deconv.upsample_nearest1d(x[:, :, 0], size=9).shape == (0, 3, 9)
    assert deconv.upsample_bilinear2d_backward(x, (0, 3, 2, 2)).shape == (0, 3, 2, 2)
    assert deconv.pixel_shuffle(np.zeros((0, 8, 2, 3)), 2).shape == (0, 2, 4, 6)
    assert deconv.pixel_unshuffle(np.zeros((0, 2, 4, 6)), 2).shape == (0, 8, 2, 3)


@pytest.mark.parametrize("dt", DTYPES)
def test_one_by_one_input(dt):
    x = np.array([[[[3.5]]], [[[-1.0]]]], dt)  # (2, 1, 1, 1)
    for y in (deconv.upsample_nearest2d(x, size=(3, 4)),
              deconv.upsample_bilinear2d(x, scale_factor=2.5, align_corners=True)):
        assert y.dtype == dt
        np.testing.assert_array_equal(y, np.broadcast_to(x, y.shape))
    # both taps are the one pixel: l0*x + l1*x, x up to rounding
    y = deconv.upsample_bilinear2d(x, size=(3, 4))
    assert y.dtype == dt
    assert_close(y, np.broadcast_to(x, y.shape), dt)
    g = np.ones((2, 1, 3, 4), dt)
    np.testing.assert_array_equal(deconv.upsample_nearest2d_backward(g, x.shape),
                                  np.full(x.shape, 12, dt))
    for ac in (False, True):
        assert_close(deconv.upsample_bilinear2d_backward(g, x.shape, align_corners=ac),
                     np.full(x.shape, 12.0), dt)
    np.testing.assert_array_equal(deconv.upsample_nearest1d(x[:, :, 0], scale_factor=3),
                                  np.repeat(x[:, :, 0], 3, axis=-1))


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("r", [1, 2, 3])
def test_pixel_shuffle_one_by_one_input(dt, r):
    """A 1x1 input: shuffle spreads its r*r channels over one r x r block (r=1: identity);
    unshuffle of that r x r block gives the 1x1 input back."""
    rng = np.random.default_rng(6)
    x, = _frozen(rng.standard_normal((2, 3 * r * r, 1, 1)).astype(dt))
    y = deconv.pixel_shuffle(x, r)
    assert y.shape == (2, 3, r, r) and y.dtype == dt
    np.testing.assert_array_equal(y, reference.pixel_shuffle(x, r).astype(dt))
    np.testing.assert_array_equal(y, x.reshape(2, 3, r, r))  # channel c*r*r + i*r + j -> (i, j)
    np.testing.assert_array_equal(deconv.pixel_shuffle_backward(y, r),
                                  reference.pixel_shuffle_backward(y, r).astype(dt))
    u = deconv.pixel_unshuffle(y, r)
    assert u.shape == x.shape and u.dtype == dt
    np.testing.assert_array_equal(u, reference.pixel_unshuffle(y, r).astype(dt))
    np.testing.assert_array_equal(u, x)
    np.testing.assert_array_equal(deconv.pixel_unshuffle_backward(u, r),
                                  reference.pixel_unshuffle_backward(u, r).astype(dt))


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("shape", [(2, 3, 1, 1), (1, 1, 1, 1), (2, 4, 1, 5), (1, 2, 3, 1)])
def test_pixel_shuffle_factor_one_is_the_identity(dt, shape):
    rng = np.random.default_rng(7)
    x, = _frozen(rng.standard_normal(shape).astype(dt))
    for op, ref in ((deconv.pixel_shuffle, reference.pixel_shuffle),
                    (deconv.pixel_unshuffle, reference.pixel_unshuffle),
                    (deconv.pixel_shuffle_backward, reference.pixel_shuffle_backward),
                    (deconv.pixel_unshuffle_backward, reference.pixel_unshuffle_backward)):
        y = op(x, 1)
        assert y.dtype == dt and y.flags.writeable and not np.shares_memory(y, x)
        np.testing.assert_array_equal(y, ref(x, 1).astype(dt))
        np.testing.assert_array_equal(y, x)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("ac", [False, True])
def test_output_size_one(dt, ac):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 4, 5)).astype(dt)
    np.testing.assert_array_equal(deconv.upsample_nearest2d(x, size=1), x[:, :, :1, :1])
    y = deconv.upsample_bilinear2d(x, size=1, align_corners=ac)
    assert y.shape == (2, 3, 1, 1)
    assert_close(y, reference.upsample_bilinear2d(x, size=1, align_corners=ac), dt)
    if ac:
        np.testing.assert_array_equal(y, x[:, :, :1, :1])  # scale 0: the corner
    g = rng.standard_normal((2, 3, 1, 1)).astype(dt)
    assert_close(deconv.upsample_bilinear2d_backward(g, x.shape, align_corners=ac),
                 reference.upsample_bilinear2d_backward(g, x.shape, ac), dt)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("sf", [0.5, 0.3, (0.25, 0.9)])
def test_downsampling(dt, sf):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 2, 8, 9)).astype(dt)
    y = deconv.upsample_nearest2d(x, scale_factor=sf)
    np.testing.assert_array_equal(y, reference.upsample_nearest2d(x, scale_factor=sf).astype(dt))
    g = rng.standard_normal(y.shape).astype(dt)
    gi = deconv.upsample_nearest2d_backward(g, x.shape, scale_factor=sf)
    assert_close(gi, reference.upsample_nearest2d_backward(g, x.shape, sf), dt)
    assert np.count_nonzero(gi) == y.size  # skipped inputs get exactly 0
    for ac in (False, True):
        y = deconv.upsample_bilinear2d(x, scale_factor=sf, align_corners=ac)
        assert_close(y, reference.upsample_bilinear2d(x, scale_factor=sf, align_corners=ac), dt)
        gi = deconv.upsample_bilinear2d_backward(g, x.shape, scale_factor=sf, align_corners=ac)
        assert_close(gi, reference.upsample_bilinear2d_backward(g, x.shape, ac, sf), dt)


def test_integer_factor_two_is_repeat():
    x = np.random.default_rng(5).standard_normal((2, 3, 4, 6)).astype(np.float32)
    expected = x.repeat(2, axis=2).repeat(2, axis=3)
    np.testing.assert_array_equal(deconv.upsample_nearest2d(x, scale_factor=2), expected)
    np.testing.assert_array_equal(deconv.upsample_nearest2d(x, size=(8, 12)), expected)
    g = np.ones(expected.shape, np.float32)
    np.testing.assert_array_equal(deconv.upsample_nearest2d_backward(g, x.shape, scale_factor=2),
                                  np.full(x.shape, 4, np.float32))


@pytest.mark.parametrize("dt", DTYPES)
def test_nan_propagates(dt):
    x = np.arange(2 * 1 * 4 * 4, dtype=dt).reshape(2, 1, 4, 4)
    x[1, 0, 1, 2] = np.nan
    y = deconv.upsample_nearest2d(x, scale_factor=2)
    assert np.array_equal(np.isnan(y), np.isnan(x).repeat(2, 2).repeat(2, 3))
    for ac in (False, True):
        y = deconv.upsample_bilinear2d(x, scale_factor=1.5, align_corners=ac)
        ref = reference.upsample_bilinear2d(x, scale_factor=1.5, align_corners=ac)
        assert np.isnan(y).any() and not np.isnan(y[0]).any()
        np.testing.assert_array_equal(np.isnan(y), np.isnan(ref))
        g = np.ones(y.shape, dt)
        g[1, 0, 2, 3] = np.nan
        gi = deconv.upsample_bilinear2d_backward(g, x.shape, scale_factor=1.5, align_corners=ac)
        rgi = reference.upsample_bilinear2d_backward(g, x.shape, ac, 1.5)
        assert np.isnan(gi).any()
        np.testing.assert_array_equal(np.isnan(gi), np.isnan(rgi))
    g = np.ones((2, 1, 8, 8), dt)
    g[0, 0, 5, 0] = np.nan
    gi = deconv.upsample_nearest2d_backward(g, x.shape, scale_factor=2)
    assert np.array_equal(np.isnan(gi), np.arange(32).reshape(x.shape) == 8)
    y = deconv.pixel_shuffle(x.reshape(2, 4, 2, 2), 2)
    assert np.isnan(y).sum() == 1


# ---------------------------------------------------------------------------
# bitwise determinism across runs and thread counts
# ---------------------------------------------------------------------------

_DETERMINISM_SCRIPT = r"""
import hashlib, json, numpy as np, deconv
rng = np.random.default_rng(0)
outs = []
for dt in (np.float32, np.float64):
    x = rng.standard_normal((4, 16, 12, 10)).astype(dt)
    for sf in (2, (1.7, 0.6), 0.45):
        y = deconv.upsample_nearest2d(x, scale_factor=sf)
        outs += [y, deconv.upsample_nearest2d_backward(y, x.shape, scale_factor=sf)]
        for ac in (False, True):
            y = deconv.upsample_bilinear2d(x, scale_factor=sf, align_corners=ac)
            outs += [y, deconv.upsample_bilinear2d_backward(y, x.shape, scale_factor=sf, align_corners=ac)]
    x1 = x.reshape(4, 16, 120)
    y1 = deconv.upsample_nearest1d(x1, scale_factor=2.3)
    outs += [y1, deconv.upsample_nearest1d_backward(y1, x1.shape, scale_factor=2.3)]
    outs += [deconv.pixel_shuffle(x, 2), deconv.pixel_unshuffle(x, 2)]
digest = json.dumps([hashlib.sha256(o.tobytes()).hexdigest() for o in outs])
print(digest)
"""


def test_bitwise_identical_across_thread_counts():
    one = run_hashes(_DETERMINISM_SCRIPT, NUMBA_NUM_THREADS=1)
    two = run_hashes(_DETERMINISM_SCRIPT, NUMBA_NUM_THREADS=2)
    assert one == two
    namespace = {}
    exec(_DETERMINISM_SCRIPT, namespace)
    assert json.loads(namespace["digest"]) == one


# ---------------------------------------------------------------------------
# argument errors: raised before any work, naming the argument
# ---------------------------------------------------------------------------

X4 = np.zeros((2, 3, 4, 6), np.float32)
X3 = np.zeros((2, 3, 6), np.float32)
G4 = np.zeros((2, 3, 8, 12), np.float32)
G3 = np.zeros((2, 3, 12), np.float32)

BAD_CALLS = [
    # x: rank, dtype, spatial size
    ("x 3-D for 2-D op", lambda: deconv.upsample_nearest2d(X3, size=2), ValueError,
     r"x must be 4-D"),
    ("x 4-D for 1-D op", lambda: deconv.upsample_nearest1d(X4, size=2), ValueError,
     r"x must be 3-D"),
    ("x 3-D for bilinear", lambda: deconv.upsample_bilinear2d(X3, size=2), ValueError,
     r"x must be 4-D"),
    ("x int", lambda: deconv.upsample_nearest2d(X4.astype(np.int64), size=2), TypeError,
     r"x must have dtype float32 or float64, got int64"),
    ("x bool", lambda: deconv.upsample_bilinear2d(X4.astype(bool), size=2), TypeError,
     r"x must have dtype .*got bool"),
    ("x complex", lambda: deconv.upsample_nearest1d(X3.astype(np.complex64), size=2), TypeError,
     r"x must have dtype .*complex64"),
    ("x float16", lambda: deconv.pixel_shuffle(X4.astype(np.float16), 1), TypeError,
     r"x must have dtype .*float16"),
    ("x mixed object", lambda: deconv.upsample_nearest1d(np.array([[[1.0, "a"]]], object),
                                                         size=2), TypeError,
     r"x must have dtype .*object"),
    ("x not an array", lambda: deconv.upsample_bilinear2d({"a": 1}, size=2), TypeError,
     r"x must be a NumPy array"),
    ("x empty spatial", lambda: deconv.upsample_nearest2d(np.zeros((1, 1, 0, 3)), size=2),
     ValueError, r"x must have spatial sizes >= 1"),
    # size / scale_factor
    ("both size and scale_factor", lambda: deconv.upsample_nearest2d(X4, size=2, scale_factor=2),
     ValueError, r"exactly one of size and scale_factor"),
    ("neither", lambda: deconv.upsample_bilinear2d(X4), ValueError,
     r"exactly one of size and scale_factor.*size=None and scale_factor=None"),
    ("size 0", lambda: deconv.upsample_nearest2d(X4, size=(0, 3)), ValueError,
     r"size must be >= 1, got \(0, 3\)"),
    ("size negative", lambda: deconv.upsample_nearest1d(X3, size=-1), ValueError,
     r"size must be >= 1, got -1"),
    ("size float", lambda: deconv.upsample_bilinear2d(X4, size=4.0), TypeError,
     r"size must be an int or a sequence of 2 ints, got 4\.0"),
    ("size bool", lambda: deconv.upsample_nearest2d(X4, size=True), TypeError, r"size .*True"),
    ("size length", lambda: deconv.upsample_nearest2d(X4, size=(2, 2, 2)), ValueError,
     r"size must be an int or a sequence of 2 ints"),
    ("size length 1-D", lambda: deconv.upsample_nearest1d(X3, size=(2, 2)), ValueError,
     r"size must be an int or a sequence of 1 ints"),
    ("scale_factor 0", lambda: deconv.upsample_nearest2d(X4, scale_factor=0), ValueError,
     r"scale_factor must be a positive finite float.*got 0"),
    ("scale_factor negative", lambda: deconv.upsample_bilinear2d(X4, scale_factor=(2, -1.5)),
     ValueError, r"scale_factor must be .*got \(2, -1\.5\)"),
    ("scale_factor nan", lambda: deconv.upsample_nearest1d(X3, scale_factor=float("nan")),
     ValueError, r"scale_factor must be a positive finite float.*nan"),
    ("scale_factor inf", lambda: deconv.upsample_bilinear2d(X4, scale_factor=np.inf), ValueError,
     r"scale_factor must be a positive finite float.*inf"),
    ("scale_factor str", lambda: deconv.upsample_nearest2d(X4, scale_factor="2"), TypeError,
     r"scale_factor must be .*'2'"),
    ("scale_factor bool", lambda: deconv.upsample_nearest1d(X3, scale_factor=True), TypeError,
     r"scale_factor must be .*True"),
    ("scale_factor complex", lambda: deconv.upsample_nearest1d(X3, scale_factor=2j), TypeError,
     r"scale_factor must be .*2j"),
    ("scale_factor length", lambda: deconv.upsample_nearest2d(X4, scale_factor=(2, 2, 2)),
     ValueError, r"scale_factor must be .*sequence of 2 positive finite floats"),
    ("scale_factor length 1-D", lambda: deconv.upsample_nearest1d(X3, scale_factor=[2, 2]),
     ValueError, r"scale_factor must be .*sequence of 1 positive finite floats"),
    ("output size < 1", lambda: deconv.upsample_nearest2d(X4, scale_factor=(1, 0.1)), ValueError,
     r"scale_factor=\(1, 0\.1\) gives output size floor\(6 \* 0\.1\) = 0 along W"),
    ("output size < 1, 1-D", lambda: deconv.upsample_nearest1d(X3, scale_factor=0.16),
     ValueError, r"scale_factor=0\.16 gives output size .* = 0 along L"),
    ("output size < 1, empty batch", lambda: deconv.upsample_bilinear2d(
        np.zeros((0, 3, 4, 6)), scale_factor=0.2), ValueError, r"gives output size"),
    ("align_corners int", lambda: deconv.upsample_bilinear2d(X4, size=2, align_corners=1),
     TypeError, r"align_corners must be a bool, got 1"),
    ("align_corners None", lambda: deconv.upsample_bilinear2d_backward(G4, X4.shape, align_corners=None),
     TypeError, r"align_corners must be a bool, got None"),
    # backward: grad_output and input_shape
    ("bwd grad_output int", lambda: deconv.upsample_nearest2d_backward(
        G4.astype(np.int32), X4.shape), TypeError, r"grad_output must have dtype .*int32"),
    ("bwd grad_output ndim", lambda: deconv.upsample_nearest1d_backward(G4, X3.shape),
     ValueError, r"grad_output must be 3-D"),
    ("bwd grad_output empty spatial", lambda: deconv.upsample_bilinear2d_backward(
        np.zeros((2, 3, 0, 4)), X4.shape), ValueError, r"grad_output must have spatial sizes >= 1"),
    ("bwd input_shape length", lambda: deconv.upsample_nearest2d_backward(G4, (2, 3, 4)),
     ValueError, r"input_shape must be a sequence of 4 ints"),
    ("bwd input_shape not a sequence", lambda: deconv.upsample_nearest1d_backward(G3, 6),
     ValueError, r"input_shape must be a sequence of 3 ints, got 6"),
    ("bwd input_shape float", lambda: deconv.upsample_bilinear2d_backward(G4, (2, 3, 4.0, 6)),
     TypeError, r"input_shape must be an int"),
    ("bwd input_shape negative", lambda: deconv.upsample_nearest2d_backward(G4, (2, 3, -4, 6)),
     ValueError, r"input_shape must not contain negative sizes"),
    ("bwd input_shape zero", lambda: deconv.upsample_nearest1d_backward(G3, (2, 3, 0)),
     ValueError, r"input_shape must have spatial sizes >= 1"),
    ("bwd input_shape batch", lambda: deconv.upsample_bilinear2d_backward(G4, (3, 3, 4, 6)),
     ValueError, r"input_shape=\(3, 3, 4, 6\) is inconsistent with grad_output of shape \(2, 3, 8, 12\): "
     r"expected the same batch and channel sizes \(N, C\) = \(2, 3\)"),
    ("bwd input_shape channels", lambda: deconv.upsample_nearest1d_backward(G3, (2, 4, 6)),
     ValueError, r"input_shape=\(2, 4, 6\) is inconsistent with grad_output"),
    ("bwd scale_factor inconsistent", lambda: deconv.upsample_nearest2d_backward(
        G4, X4.shape, scale_factor=1.5), ValueError,
     r"input_shape=\(2, 3, 4, 6\) with scale_factor=1\.5 gives output size floor\(4 \* 1\.5\) "
     r"= 6 along H, but grad_output has shape \(2, 3, 8, 12\)"),
    ("bwd 1-D scale_factor inconsistent", lambda: deconv.upsample_nearest1d_backward(
        G3, X3.shape, scale_factor=3), ValueError, r"= 18 along L, but grad_output"),
    ("bwd bilinear scale_factor inconsistent", lambda: deconv.upsample_bilinear2d_backward(
        G4, X4.shape, scale_factor=(2, 1.5), align_corners=True), ValueError, r"= 9 along W, but grad_output"),
    ("bwd scale_factor nan", lambda: deconv.upsample_bilinear2d_backward(
        G4, X4.shape, scale_factor=float("nan")), ValueError, r"scale_factor must be a positive"),
    # pixel shuffle
    ("upscale_factor 0", lambda: deconv.pixel_shuffle(X4, 0), ValueError,
     r"upscale_factor must be an int >= 1, got 0"),
    ("upscale_factor float", lambda: deconv.pixel_shuffle(X4, 2.0), TypeError,
     r"upscale_factor must be an int, got 2\.0"),
    ("upscale_factor bool", lambda: deconv.pixel_shuffle(X4, True), TypeError,
     r"upscale_factor must be an int, got True"),
    ("downscale_factor negative", lambda: deconv.pixel_unshuffle(X4, -2), ValueError,
     r"downscale_factor must be an int >= 1, got -2"),
    ("downscale_factor str", lambda: deconv.pixel_unshuffle(X4, "2"), TypeError,
     r"downscale_factor must be an int"),
    ("shuffle channels", lambda: deconv.pixel_shuffle(X4, 2), ValueError,
     r"x has 3 channels, which is not divisible by upscale_factor\*\*2 = 4"),
    ("shuffle ndim", lambda: deconv.pixel_shuffle(X3, 1), ValueError, r"x must be 4-D"),
    ("unshuffle spatial", lambda: deconv.pixel_unshuffle(X4, 4), ValueError,
     r"x has spatial size \(4, 6\), which is not divisible by downscale_factor=4"),
    ("unshuffle ndim", lambda: deconv.pixel_unshuffle(X3, 1), ValueError, r"x must be 4-D"),
    ("shuffle bwd spatial", lambda: deconv.pixel_shuffle_backward(X4, 4), ValueError,
     r"grad_output has spatial size \(4, 6\), which is not divisible by upscale_factor=4"),
    ("unshuffle bwd channels", lambda: deconv.pixel_unshuffle_backward(X4, 2), ValueError,
     r"grad_output has 3 channels, which is not divisible by downscale_factor\*\*2 = 4"),
    ("shuffle bwd factor", lambda: deconv.pixel_shuffle_backward(X4, 0), ValueError,
     r"upscale_factor must be an int >= 1"),
    ("unshuffle bwd dtype", lambda: deconv.pixel_unshuffle_backward(X4.astype(int), 1),
     TypeError, r"grad_output must have dtype"),
]


@pytest.mark.parametrize("name,call,exc,match", BAD_CALLS, ids=[b[0] for b in BAD_CALLS])
def test_bad_arguments(name, call, exc, match):
    with pytest.raises(exc, match=match):
        call()
