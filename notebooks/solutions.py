"""Worked solutions of the fill-in exercises of notebooks 1-3.

Try the exercise first; each function here passes ``check_exercise`` (see
``exercise.py``), and ``tests/test_notebooks.py`` keeps it so. The notation
is that of ``NOTATION.md``: on one axis, input size i, output size o, kernel
size k, stride s, padding p, dilation d, output padding a; kernel taps
(alpha, beta). Only NumPy is used: no convolution, pooling or interpolation
routine, those being what the answers are checked against.
"""

import numpy as np


# Notebook 1 ---------------------------------------------------------------------------------

def conv_output_size(i, k, s, p, d):
    """E1.1: windows of extent d(k-1)+1 that fit in i + 2p cells, one every s cells."""
    extent = d * (k - 1) + 1
    return (i + 2 * p - extent) // s + 1


def conv_transpose_output_size(i, k, s, p, a, d):
    """E1.2: the input size of the convolution whose output size is i, its remainder being a."""
    return (i - 1) * s + d * (k - 1) + 1 - 2 * p + a


def conv2d_sliding_window(x, w, s, p):
    """E1.3: x (H, W), w (k, k) -> (H_out, W_out); the window slides by s over x padded by p."""
    k = w.shape[0]
    x_pad = np.pad(x, p)                                            # (H + 2p, W + 2p)
    H_out = (x_pad.shape[0] - k) // s + 1
    W_out = (x_pad.shape[1] - k) // s + 1
    y = np.zeros((H_out, W_out))
    for u in range(H_out):
        for v in range(W_out):
            window = x_pad[u * s:u * s + k, v * s:v * s + k]        # (k, k), no flip
            y[u, v] = np.sum(window * w)
    return y


# Notebook 2 ---------------------------------------------------------------------------------

def conv_input_grad_gather(dy, w, s, x_shape):
    """E2.1: dx[h, l] = sum over taps (alpha, beta) with h - alpha and l - beta multiples of s
    of dy[(h - alpha)/s, (l - beta)/s] * w[alpha, beta] (no padding, no dilation)."""
    H, W = x_shape
    H_out, W_out = dy.shape
    k = w.shape[0]
    dx = np.zeros((H, W))
    for h in range(H):
        for l in range(W):
            for alpha in range(k):
                for beta in range(k):
                    u, rest_u = divmod(h - alpha, s)                # the output whose window put
                    v, rest_v = divmod(l - beta, s)                 # tap (alpha, beta) on (h, l)
                    if rest_u == 0 and rest_v == 0 and 0 <= u < H_out and 0 <= v < W_out:
                        dx[h, l] += dy[u, v] * w[alpha, beta]
    return dx


def max_pool_backward_from_switches(dy, switches, x_shape):
    """E2.2: route each dy to its switch (flat index h*W + l of its plane), summing collisions."""
    N, C, H, W = x_shape
    dx = np.zeros((N, C, H * W))
    for n in range(N):
        for c in range(C):
            np.add.at(dx[n, c], switches[n, c].ravel(), dy[n, c].ravel())
    return dx.reshape(x_shape)


# Notebook 3 ---------------------------------------------------------------------------------

def conv_transpose_by_zero_insertion(x, w, s):
    """E3.1: insert s-1 zeros between pixels, pad by k-1, correlate with the flipped kernel."""
    H, W = x.shape
    k = w.shape[0]
    stretched = np.zeros(((H - 1) * s + 1, (W - 1) * s + 1))
    stretched[::s, ::s] = x
    canvas = np.pad(stretched, k - 1)                               # p' = d(k-1) - p = k-1 here
    flipped = w[::-1, ::-1]
    H_out, W_out = canvas.shape[0] - k + 1, canvas.shape[1] - k + 1
    y = np.zeros((H_out, W_out))
    for u in range(H_out):
        for v in range(W_out):
            y[u, v] = np.sum(canvas[u:u + k, v:v + k] * flipped)
    return y


def output_padding_that_restores(i, k, s, p, d):
    """E3.2: the remainder that the floor of the strided convolution dropped."""
    return (i + 2 * p - d * (k - 1) - 1) % s


# --- notebook 7 ---

def conv_arithmetic_intensity(N, C_in, C_out, H, W, k, s, p, itemsize):
    """E7.1: 2 FLOPs per multiply-add, C_in k^2 of them per output; x, w and y each moved once."""
    H_out = (H + 2 * p - k) // s + 1
    W_out = (W + 2 * p - k) // s + 1
    multiply_adds = N * C_out * H_out * W_out * C_in * k * k
    elements = N * C_in * H * W + C_out * C_in * k * k + N * C_out * H_out * W_out
    return 2 * multiply_adds / (itemsize * elements)


def im2col(x, k, s, p):
    """E7.2: row (c*k + alpha)*k + beta holds x_pad[c, u*s + alpha, v*s + beta] at column u*W_out + v."""
    C, H, W = x.shape
    x_pad = np.pad(x, ((0, 0), (p, p), (p, p)))                       # (C, H + 2p, W + 2p)
    H_out = (H + 2 * p - k) // s + 1
    W_out = (W + 2 * p - k) // s + 1
    col = np.empty((C, k, k, H_out, W_out), x.dtype)
    for alpha in range(k):
        for beta in range(k):
            col[:, alpha, beta] = x_pad[:, alpha:alpha + s * (H_out - 1) + 1:s,
                                        beta:beta + s * (W_out - 1) + 1:s]
    return col.reshape(C * k * k, H_out * W_out)


def lane_sum(values, lanes):
    """E7.3: lane j adds values[j], values[j + lanes], ... in float32, then lane 0 + lane 1 + ..."""
    partial = np.zeros(lanes, np.float32)
    for j, value in enumerate(values):
        partial[j % lanes] += value                                     # float32 + float32
    total = np.float32(0)
    for lane in partial:
        total += lane
    return total
