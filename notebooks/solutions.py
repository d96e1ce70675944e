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


# --- notebook 8 ---

def batch_norm_train_forward(x, gamma, b, eps):
    """E8.1: x (N, C, H, W), gamma and b (C,) -> y (N, C, H, W), with the statistics of the batch.

    For each channel c: mu = (1/m) sum over (n, h, l) of x, var = (1/m) sum of (x - mu)^2
    (biased: the divisor is m = N H W), xhat = (x - mu) / sqrt(var + eps), y = gamma xhat + b.
    """
    N, C, H, W = x.shape
    m = N * H * W
    y = np.empty_like(x)
    for c in range(C):
        values = x[:, c]                                            # (N, H, W): one statistic
        mu = values.sum() / m
        var = ((values - mu) ** 2).sum() / m
        y[:, c] = gamma[c] * (values - mu) / np.sqrt(var + eps) + b[c]
    return y


def batch_norm_backward_staged(dy, x, gamma, eps):
    """E8.2: dx (N, C, H, W) by the chain rule through the graph x -> (mu, var) -> xhat -> y,
    one node at a time (Ioffe & Szegedy 2015, section 3), per channel over its m = N H W values."""
    N, C, H, W = x.shape
    m = N * H * W
    axes = (0, 2, 3)
    mu = x.mean(axis=axes, keepdims=True)                           # (1, C, 1, 1)
    var = ((x - mu) ** 2).mean(axis=axes, keepdims=True)
    sigma = np.sqrt(var + eps)
    g = gamma.reshape(1, C, 1, 1)
    dxhat = dy * g                                                  # y = gamma xhat + b
    dvar = np.sum(dxhat * (x - mu), axis=axes, keepdims=True) * -0.5 * sigma ** -3
    dmu = -np.sum(dxhat, axis=axes, keepdims=True) / sigma \
        + dvar * np.sum(-2 * (x - mu), axis=axes, keepdims=True) / m   # the second sum is 0
    return dxhat / sigma + dvar * 2 * (x - mu) / m + dmu / m


def group_norm_by_reshape(x, G, gamma, b, eps):
    """E8.3: x (N, C, H, W) -> y: view as (N, G, C/G, H, W), standardise over its last three
    axes (one statistic per sample and group), view back, then the per-channel affine map."""
    N, C, H, W = x.shape
    groups = x.reshape(N, G, C // G, H, W)
    mu = groups.mean(axis=(2, 3, 4), keepdims=True)                 # (N, G, 1, 1, 1)
    var = groups.var(axis=(2, 3, 4), keepdims=True)                 # biased
    xhat = ((groups - mu) / np.sqrt(var + eps)).reshape(N, C, H, W)
    return gamma.reshape(1, C, 1, 1) * xhat + b.reshape(1, C, 1, 1)
