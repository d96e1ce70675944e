"""deconv.shapes against brute-force enumeration of windows."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deconv import shapes

small = st.integers(1, 5)


def count_conv_windows(L, k, s, before, after, d):
    """Window starts o*s (in padded coordinates) whose last tap stays inside the padded input."""
    padded = L + before + after
    return sum(1 for start in range(0, padded, s) if start + d * (k - 1) <= padded - 1)


@given(L=st.integers(1, 40), k=small, s=small, before=st.integers(0, 4), after=st.integers(0, 4),
       d=small)
def test_conv_output_size_counts_windows(L, k, s, before, after, d):
    expected = count_conv_windows(L, k, s, before, after, d)
    if expected == 0:
        with pytest.raises(ValueError, match="larger than the padded input"):
            shapes.conv_output_size(L, k, s, (before, after), d)
    else:
        assert shapes.conv_output_size(L, k, s, (before, after), d) == expected
        if before == after:
            assert shapes.conv_output_size(L, k, s, before, d) == expected


@given(k=st.integers(1, 9), d=small, L=st.integers(1, 30))
def test_same_padding_keeps_the_size(k, d, L):
    before, after = shapes.same_padding(k, d)
    assert before + after == d * (k - 1) and after - before in (0, 1)
    if L + before + after >= d * (k - 1) + 1:
        assert shapes.conv_output_size(L, k, 1, (before, after), d) == L


@given(L=st.integers(1, 40), k=small, s=small, p=st.integers(0, 3), d=small)
def test_conv_transpose_size_inverts_conv_size(L, k, s, p, d):
    """Transposed sizes with output_padding 0..s-1 are exactly the input lengths a strided
    conv maps to the same output length, and inverse_output_padding finds L among them."""
    if count_conv_windows(L, k, s, p, p, d) == 0:
        return
    out = shapes.conv_output_size(L, k, s, p, d)
    op = shapes.inverse_output_padding(L, k, s, p, d)
    assert 0 <= op < max(s, d)
    assert shapes.conv_transpose_output_size(out, k, s, p, op, d) == L
    reachable = set()
    for output_padding in range(s):
        try:
            reachable.add(shapes.conv_transpose_output_size(out, k, s, p, output_padding, d))
        except ValueError:          # sizes < 1 for heavy padding
            continue
    preimage = {n for n in range(1, L + 2 * s + 1) if count_conv_windows(n, k, s, p, p, d) == out}
    assert reachable == preimage


def brute_force_pool(L, k, s, p, d, ceil_mode):
    """Count windows starting at -p, -p+s, ... (input coordinates): every window that fits in
    the padded input; in ceil mode one more partial window if the padded input is not covered
    and that window starts inside the input (not in the right padding)."""
    extent = d * (k - 1) + 1
    starts = []
    start = -p
    while start + extent <= L + p:
        starts.append(start)
        start += s
    if ceil_mode and starts[-1] + extent < L + p and start < L:
        starts.append(start)
    return len(starts)


@given(k=small, s=small, d=st.integers(1, 3), extra=st.integers(0, 20), ceil_mode=st.booleans(),
       data=st.data())
def test_pool_output_size_counts_windows(k, s, d, extra, ceil_mode, data):
    p = data.draw(st.integers(0, k // 2))
    L = max(1, d * (k - 1) + 1 - 2 * p) + extra
    assert shapes.pool_output_size(L, k, s, p, d, ceil_mode) == brute_force_pool(L, k, s, p, d, ceil_mode)


def test_pool_padding_limit_and_stride_default():
    assert shapes.pool_output_size(8, 2) == 4
    with pytest.raises(ValueError, match=r"padding=2 must be at most half of kernel_size=3"):
        shapes.pool_output_size(8, 3, 1, 2)


def test_pool_window_has_input_detects_padding_only_windows():
    # L=2, k=2, d=3, p=1: the only window has taps at -1 and 2, both outside the input
    assert shapes.pool_output_size(2, 2, 1, 1, 3) == 1
    assert not shapes.pool_window_has_input(2, 1, 2, 1, 1, 3)
    assert shapes.pool_window_has_input(4, 2, 2, 2, 1, 1)


@given(L=st.integers(1, 30), k=small, s=small, data=st.data())
def test_unpool_output_size_inverts_pool_size(L, k, s, data):
    p = data.draw(st.integers(0, k // 2))
    if L + 2 * p < k:
        return
    pooled = shapes.pool_output_size(L, k, s, p)
    default = shapes.unpool_output_size(pooled, k, s, p)
    # the default unpooled size is the smallest input size that pools to `pooled`
    assert default <= L < default + s
    assert shapes.pool_output_size(default, k, s, p) == pooled


def test_upsample_output_size():
    assert shapes.upsample_output_size(5, scale_factor=1.7) == 8
    assert shapes.upsample_output_size(5, size=3) == 3
    assert shapes.upsample_output_size(3, scale_factor=0.5) == 1
