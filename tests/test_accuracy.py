"""Long float32 reductions (issue 12): blocked accumulation keeps a conv's float32
error at PyTorch's level where one running sum of every product would not.

A conv2d with C_in = 1024 and a 3x3 kernel sums 9,216 products per output (the
forward and the input gradient), its weight gradient N x H_out x W_out per
weight. Each pass of deconv in float32 is compared with the same sums in float64
by NumPy (windows of the padded input, tensordot): max|error| / max|reference|
at most 5e-7 (PyTorch's oneDNN: 2.8-4.1e-7 forward, 3.1-3.9e-7 input gradient on
such layers; a single running float32 sum: 3.6e-6 forward)."""

import numpy as np
import pytest

import deconv

TOLERANCE = 5e-7


def _rel(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def _windows(a):
    """(N, C, H, W) -> (N, C, H, W, 3, 3): the 3x3 neighbourhoods of a, zero-padded by 1."""
    return np.lib.stride_tricks.sliding_window_view(np.pad(a, ((0, 0), (0, 0), (1, 1), (1, 1))),
                                                    (3, 3), axis=(2, 3))


def _conv3x3(a, w):
    """y[n, o, h, w] = sum_{c, i, j} a_pad[n, c, h + i, w + j] * w[o, c, i, j], float64."""
    return np.tensordot(_windows(a), w, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2)


@pytest.mark.parametrize("c_in, size, batch", [(1024, 12, 1), (1024, 7, 2), (64, 40, 16)])
def test_float32_conv_long_sums_in_every_pass(c_in, size, batch):
    """(1024, 12): the pixel-vector tile; (1024, 7): 7x7 planes, the channel-vector
    tile; (64, 40) x 16 samples: 25,600 pixels per weight-gradient sum."""
    rng = np.random.default_rng(c_in + size)
    x = rng.standard_normal((batch, c_in, size, size)).astype(np.float32)
    w = rng.standard_normal((16, c_in, 3, 3)).astype(np.float32)
    gy = rng.standard_normal((batch, 16, size, size)).astype(np.float32)
    x64, w64, gy64 = (a.astype(np.float64) for a in (x, w, gy))
    y = deconv.conv2d(x, w, padding=1)
    gx, gw = deconv.conv2d_backward(gy, x, w, padding=1)[:2]
    # input gradient: the conv of grad_output with the weight flipped and transposed
    gx64 = _conv3x3(gy64, w64[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
    gw64 = np.tensordot(gy64, _windows(x64), axes=([0, 2, 3], [0, 2, 3]))
    errors = {"forward": _rel(y, _conv3x3(x64, w64)),
              "input grad": _rel(gx, gx64), "weight grad": _rel(gw, gw64)}
    assert y.dtype == gx.dtype == gw.dtype == np.float32
    assert max(errors.values()) <= TOLERANCE, errors
