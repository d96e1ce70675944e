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


# --- notebook 4 ---------------------------------------------------------------------------

def phase_tap_counts(k, s):
    """E4.1: n_r for r = 0 .. s-1: tap alpha lands on phase r exactly when alpha = r (mod s)."""
    counts = np.zeros(s)
    for alpha in range(k):
        counts[alpha % s] += 1
    return counts


def resize_conv(x, w):
    """E4.2: x (H, W), w (3, 3) -> (2H, 2W): repeat every pixel 2x2, pad by 1, correlate with w."""
    up = np.repeat(np.repeat(x, 2, axis=0), 2, axis=1)             # nearest x2, (2H, 2W)
    canvas = np.pad(up, 1)                                          # (2H + 2, 2W + 2)
    H_out, W_out = up.shape
    y = np.zeros((H_out, W_out))
    for u in range(H_out):
        for v in range(W_out):
            y[u, v] = np.sum(canvas[u:u + 3, v:v + 3] * w)
    return y


def pixel_shuffle_by_hand(z, r):
    """E4.3: z (C r^2, H, W) -> (C, rH, rW); channel c r^2 + a r + b becomes phase (a, b) of channel c."""
    Cr2, H, W = z.shape
    C = Cr2 // (r * r)
    y = np.zeros((C, r * H, r * W))
    for c in range(C):
        for a in range(r):
            for b in range(r):
                y[c, a::r, b::r] = z[c * r * r + a * r + b]
    return y


# --- notebook 5 ---------------------------------------------------------------------------

def max_unpool_from_switches(r, switches, out_hw):
    """E5.1: r and switches (N, C, H', W') -> (N, C, H, W): r's values at their switches, zeros elsewhere."""
    N, C = r.shape[:2]
    H, W = out_hw
    out = np.zeros((N, C, H * W))
    for n in range(N):
        for c in range(C):
            out[n, c, switches[n, c].ravel()] = r[n, c].ravel()    # windows do not overlap: no collision
    return out.reshape(N, C, H, W)


def deconvnet_layer_down(r, F, p):
    """E5.2: rectify the signal r (N, C_out, H, W), then scatter it through the filters F
    (C_out, C_in, k, k) of a stride-1 convolution with padding p -> (N, C_in, H + k - 1 - 2p, ...)."""
    r = np.maximum(r, 0)                                            # the deconvnet's ReLU rule
    N, C_out, H, W = r.shape
    k = F.shape[2]
    canvas = np.zeros((N, F.shape[1], H + k - 1, W + k - 1))        # before the crop of p a side
    for alpha in range(k):
        for beta in range(k):
            # every r[n, o, y, x] paints F[o, :, alpha, beta] at (y + alpha, x + beta)
            canvas[:, :, alpha:alpha + H, beta:beta + W] += np.einsum("noyx,oc->ncyx", r, F[:, :, alpha, beta])
    return canvas[:, :, p:canvas.shape[2] - p, p:canvas.shape[3] - p]

# --- notebook 3, misnomer ---------------------------------------------------------------------

def _convolve_same(image, psf):
    """True convolution of (H, W) with an odd (k, k) PSF, zeros outside, output (H, W)."""
    k = psf.shape[0]
    c = k // 2
    padded = np.pad(image, c)                                       # (H + 2c, W + 2c)
    H, W = image.shape
    out = np.zeros((H, W))
    for alpha in range(k):
        for beta in range(k):
            # out[h, l] += psf[alpha, beta] * image[h - alpha + c, l - beta + c]
            out += psf[alpha, beta] * padded[2 * c - alpha:2 * c - alpha + H, 2 * c - beta:2 * c - beta + W]
    return out


def richardson_lucy_step(estimate, observed, psf):
    """E3.3: x * A^T(y / A x); A^T is the convolution with the mirrored PSF (the transposed conv)."""
    ratio = observed / _convolve_same(estimate, psf)
    return estimate * _convolve_same(ratio, psf[::-1, ::-1])


# --- notebook 6 -------------------------------------------------------------------------------

def pixel_shuffle_by_reshape(z, r):
    """E6.1: channel c r^2 + phi_h r + phi_w of LR pixel (i, j) -> HR pixel (r i + phi_h, r j + phi_w)."""
    N, Crr, h, w = z.shape
    C = Crr // (r * r)
    split = z.reshape(N, C, r, r, h, w)                             # (N, C, phi_h, phi_w, i, j)
    return split.transpose(0, 1, 4, 2, 5, 3).reshape(N, C, h * r, w * r)     # (N, C, i, phi_h, j, phi_w)


def fsrcnn_subpixel_weight(w, r):
    """E6.2: V[o r^2 + phi_h r + phi_w, c, delta_h + D, delta_w + D] = w[c, o, alpha, beta] with
    alpha = phi_h + 4 - delta_h r (and beta likewise), 0 where the tap is outside 0..8; D = 4 // r."""
    c_in, c_out, k, _ = w.shape
    reach = 4 // r
    size = 2 * reach + 1
    v = np.zeros((c_out * r * r, c_in, size, size))
    for o in range(c_out):
        for phi_h in range(r):
            for phi_w in range(r):
                for delta_h in range(-reach, reach + 1):
                    for delta_w in range(-reach, reach + 1):
                        alpha, beta = phi_h + 4 - delta_h * r, phi_w + 4 - delta_w * r
                        if 0 <= alpha < k and 0 <= beta < k:
                            v[o * r * r + phi_h * r + phi_w, :, delta_h + reach, delta_w + reach] = \
                                w[:, o, alpha, beta]
    return v


def psnr_y_cropped(prediction, target, border):
    """E6.3: BT.601 luminance, `border` pixels cropped on each side, 10 log10(1 / MSE)."""
    weights = np.array([65.481, 128.553, 24.966]) / 255.0

    def luminance(image):                                           # (3, H, W) -> (H, W)
        return 16.0 / 255.0 + np.tensordot(weights, image, axes=1)

    H, W = target.shape[1:]
    inner = (slice(border, H - border), slice(border, W - border))
    error = luminance(prediction)[inner] - luminance(target)[inner]
    return 10 * np.log10(1.0 / np.mean(error ** 2))

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
