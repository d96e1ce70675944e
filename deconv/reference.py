"""Slow, deliberately simple reference implementations used as test oracles.

Every operator of ``deconv`` (convolution, transposed convolution, pooling,
unpooling, upsampling, pixel shuffle and all their backward passes) is
re-implemented here in the most obvious way we could think of:

* convolutions are built from ``scipy.signal.correlate`` / ``convolve``
  (``method='direct'``), one call per output / input channel plane;
* transposed convolutions insert ``stride - 1`` zeros between input samples
  and take a FULL convolution with the dilated kernel;
* pooling gathers every window tap explicitly and reduces it with NumPy;
* upsampling / pixel shuffle use explicit index maps and fancy indexing.

The module is intentionally *independent* of the code under test: it imports
nothing from ``deconv`` and derives all output sizes from the math itself.
Speed does not matter beyond keeping tiny test cases fast.

Semantics follow ``torch.nn.functional`` (PyTorch CPU).  Layouts are NCL for
1-D and NCHW for 2-D ops.  Conv weights are ``(C_out, C_in/groups, *k)``,
transposed-conv weights ``(C_in, C_out/groups, *k)``.  All arithmetic is done
in float64 and float64 arrays are returned (index arrays are int64); the only
exception is the *source index / weight* computation of the upsampling ops,
which mirrors PyTorch's arithmetic dtype so that the index maps agree exactly.
Inputs are never modified.

Limitation: NaN footprints. Zero insertion (stride, dilation) and scipy's
habit of swapping the operands of a full correlation make NaN * 0 reach
positions that cannot depend on a NaN input; finite values are exact. The
kernels' NaN patterns are tested against hand-worked footprints instead.
"""

import fractions
import itertools
import math

import numpy as np
from scipy import signal

__all__ = [
    "conv1d", "conv2d", "conv1d_backward", "conv2d_backward",
    "conv_transpose1d", "conv_transpose2d",
    "conv_transpose1d_backward", "conv_transpose2d_backward",
    "max_pool1d", "max_pool2d", "max_pool1d_backward", "max_pool2d_backward",
    "avg_pool1d", "avg_pool2d", "avg_pool1d_backward", "avg_pool2d_backward",
    "max_unpool1d", "max_unpool2d",
    "max_unpool1d_backward", "max_unpool2d_backward",
    "upsample_nearest1d", "upsample_nearest2d",
    "upsample_nearest1d_backward", "upsample_nearest2d_backward",
    "upsample_bilinear2d", "upsample_bilinear2d_backward",
    "pixel_shuffle", "pixel_unshuffle",
    "pixel_shuffle_backward", "pixel_unshuffle_backward",
]
# issue 13: adaptive pooling
__all__ += [f"adaptive_{kind}_pool{nd}d{suffix}" for kind in ("avg", "max") for nd in (1, 2, 3)
            for suffix in ("", "_backward")]


# --------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------

def _tup(v, n):
    """int -> (v,)*n ; sequence -> tuple of ints (length 1 is broadcast)."""
    if isinstance(v, (int, np.integer)):
        return (int(v),) * n
    t = tuple(int(a) for a in v)
    if len(t) == 1:
        t = t * n
    if len(t) != n:
        raise ValueError(f"expected {n} values, got {v!r}")
    return t


def _f64(a):
    return np.asarray(a, dtype=np.float64)


def _spread(a, step):
    """Insert ``step[i] - 1`` zeros between neighbouring samples along each of
    the trailing ``len(step)`` axes (kernel dilation / stride zero insertion):
    out[..., i*step] = a[..., i]."""
    nd = len(step)
    lead, sizes = a.shape[:-nd], a.shape[-nd:]
    out = np.zeros(lead + tuple(s * (n - 1) + 1 for n, s in zip(sizes, step)))
    out[(Ellipsis,) + tuple(slice(None, None, s) for s in step)] = a
    return out


def _sp(nd, slices):
    """Index tuple selecting ``slices`` on the trailing ``nd`` axes."""
    return (Ellipsis,) + tuple(slices)


# --------------------------------------------------------------------------
# convolution
# --------------------------------------------------------------------------

def _conv_pads(padding, ksize, dilation, stride, nd):
    """List of (before, after) zero pads per spatial dim."""
    if isinstance(padding, str):
        if padding == "valid":
            return [(0, 0)] * nd
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError("padding='same' requires stride 1")
            pads = []
            for k, d in zip(ksize, dilation):
                total = d * (k - 1)
                pads.append((total // 2, total - total // 2))  # odd extra -> end
            return pads
        raise ValueError(f"unknown padding {padding!r}")
    return [(p, p) for p in _tup(padding, nd)]


def _conv_nd(x, weight, bias, stride, padding, dilation, groups, nd):
    """y[n, co] = b[co] + sum_{ci in group(co)} correlate(pad(x)[n, ci], w_dil[co, ci])[::stride]"""
    x, w = _f64(x), _f64(weight)
    stride, dilation = _tup(stride, nd), _tup(dilation, nd)
    pads = _conv_pads(padding, w.shape[2:], dilation, stride, nd)
    xp = np.pad(x, [(0, 0), (0, 0)] + pads)
    wd = _spread(w, dilation)
    N, C_in = x.shape[:2]
    C_out = w.shape[0]
    cin_g, cout_g = C_in // groups, C_out // groups
    take = _sp(nd, [slice(None, None, s) for s in stride])
    # the number of window positions along each axis, then every stride-th one
    out_sp = tuple(len(range(0, P - K + 1, s))
                   for P, K, s in zip(xp.shape[2:], wd.shape[2:], stride))
    out = np.zeros((N, C_out) + out_sp)
    for n in range(N):
        for co in range(C_out):
            g = co // cout_g
            # correlating (cin_g, *S) with (cin_g, *k) in 'valid' mode leaves a
            # length-1 channel axis holding the sum over input channels.
            r = signal.correlate(xp[n, g * cin_g:(g + 1) * cin_g], wd[co],
                                 mode="valid", method="direct")[0]
            out[n, co] = r[take]
    if bias is not None:
        out += _f64(bias).reshape((1, -1) + (1,) * nd)
    return out


def _conv_nd_backward(grad_output, x, weight, stride, padding, dilation, groups, nd):
    """Gradients of y = conv(x, w) + b.

    Let g_s = grad_output with stride-1 zeros inserted (g_s[o*s] = g[o]) and
    w_d the dilated kernel. Then
      grad_xpad[n, ci] = sum_co convolve_full(g_s[n, co], w_d[co, ci])  (zero past its end)
      grad_x = grad_xpad cropped by the padding
      grad_w[co, ci, j] = sum_n correlate_valid(xpad[n, ci], g_s[n, co])[j*d]
      grad_b[co] = sum_{n, spatial} g[n, co]
    """
    g, x, w = _f64(grad_output), _f64(x), _f64(weight)
    stride, dilation = _tup(stride, nd), _tup(dilation, nd)
    ksize = w.shape[2:]
    pads = _conv_pads(padding, ksize, dilation, stride, nd)
    xp = np.pad(x, [(0, 0), (0, 0)] + pads)
    wd = _spread(w, dilation)
    gs = _spread(g, stride)
    N, C_in = x.shape[:2]
    C_out = w.shape[0]
    cin_g, cout_g = C_in // groups, C_out // groups

    # grad input (in padded coordinates); the tail never touched by a window
    # stays zero because the full convolution is shorter than the padded input.
    gxp = np.zeros(xp.shape)
    for n in range(N):
        for co in range(C_out):
            g0 = co // cout_g
            # (1, *G) conv (cin_g, *k) 'full' -> (cin_g, *F): one plane per ci
            full = signal.convolve(gs[n, co][None], wd[co], mode="full", method="direct")
            region = (n, slice(g0 * cin_g, (g0 + 1) * cin_g)) + tuple(slice(0, f) for f in full.shape[1:])
            gxp[region] += full
    crop = _sp(nd, [slice(b, b + L) for (b, _), L in zip(pads, x.shape[2:])])
    grad_x = gxp[crop]

    # grad weight
    grad_w = np.zeros(w.shape)
    tap = _sp(nd, [slice(0, d * (k - 1) + 1, d) for k, d in zip(ksize, dilation)])
    for co in range(C_out):
        g0 = co // cout_g
        # (N, cin_g, *P) corr (N, 1, *G) 'valid' -> (1, cin_g, *D): the batch
        # axis collapses to the sum over n.
        r = signal.correlate(xp[:, g0 * cin_g:(g0 + 1) * cin_g], gs[:, co][:, None],
                             mode="valid", method="direct")[0]
        grad_w[co] = r[tap]

    grad_b = g.sum(axis=(0,) + tuple(range(2, 2 + nd)))
    return grad_x, grad_w, grad_b


def conv1d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-D cross-correlation, PyTorch ``F.conv1d`` semantics (NCL).

    y[n,co,o] = b[co] + sum_{ci,j} xpad[n, ci, o*s + j*d] * w[co, ci, j]
    padding: int, tuple, 'valid' or 'same' (stride 1; odd extra pad at the end)."""
    return _conv_nd(x, weight, bias, stride, padding, dilation, groups, 1)


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D cross-correlation, PyTorch ``F.conv2d`` semantics (NCHW).

    y[n,co,oh,ow] = b[co] + sum_{ci,i,j} xpad[n,ci,oh*sh+i*dh,ow*sw+j*dw] * w[co,ci,i,j]"""
    return _conv_nd(x, weight, bias, stride, padding, dilation, groups, 2)


def conv1d_backward(grad_output, x, weight, stride=1, padding=0, dilation=1, groups=1):
    """(grad_input, grad_weight, grad_bias) of :func:`conv1d`."""
    return _conv_nd_backward(grad_output, x, weight, stride, padding, dilation, groups, 1)


def conv2d_backward(grad_output, x, weight, stride=1, padding=0, dilation=1, groups=1):
    """(grad_input, grad_weight, grad_bias) of :func:`conv2d`."""
    return _conv_nd_backward(grad_output, x, weight, stride, padding, dilation, groups, 2)


# --------------------------------------------------------------------------
# transposed convolution
# --------------------------------------------------------------------------

def _conv_transpose_nd(x, weight, bias, stride, padding, output_padding, groups, dilation, nd):
    """full[n, co] = sum_{ci in group(co)} convolve_full(x_s[n, ci], w_d[ci, co])
    with x_s = x with stride-1 zeros inserted, w_d the dilated kernel
    (length F = (L-1)*s + d*(k-1) + 1).  The output is full[p : p + out] with
    out = F - 2p + output_padding; positions past F are zero."""
    x, w = _f64(x), _f64(weight)
    stride, padding = _tup(stride, nd), _tup(padding, nd)
    output_padding, dilation = _tup(output_padding, nd), _tup(dilation, nd)
    xs = _spread(x, stride)
    wd = _spread(w, dilation)
    N, C_in = x.shape[:2]
    cout_g = w.shape[1]
    cin_g = C_in // groups
    F = tuple(a + b - 1 for a, b in zip(xs.shape[2:], wd.shape[2:]))
    full = np.zeros((N, cout_g * groups) + F)
    for n in range(N):
        for ci in range(C_in):
            g = ci // cin_g
            # (1, *Ls) conv (cout_g, *k) 'full' -> (cout_g, *F)
            full[n, g * cout_g:(g + 1) * cout_g] += signal.convolve(
                xs[n, ci][None], wd[ci], mode="full", method="direct")
    out_sz = [f - 2 * p + op for f, p, op in zip(F, padding, output_padding)]
    full = np.pad(full, [(0, 0), (0, 0)] + [(0, max(0, op - p)) for p, op in zip(padding, output_padding)])
    out = full[_sp(nd, [slice(p, p + o) for p, o in zip(padding, out_sz)])].copy()
    if bias is not None:
        out += _f64(bias).reshape((1, -1) + (1,) * nd)
    return out


def _conv_transpose_nd_backward(grad_output, x, weight, stride, padding, output_padding,
                                groups, dilation, nd):
    """Gradients of y = conv_transpose(x, w) + b.

    Put grad_output back into the un-cropped 'full' frame: G[p + o] = g[o]
    (length F; entries past F have no preimage). Then
      grad_x[n, ci, i] = sum_{co, j} G[n, co, i*s + j*d] * w[ci, co, j]
                       = (sum_co correlate_valid(G[n, co], w_d[ci, co]))[::s]
      grad_w[ci, co, j] = sum_{n, i} x[n, ci, i] * G[n, co, i*s + j*d]
                        = (sum_n correlate_valid(G[n, co], x_s[n, ci]))[::d]
      grad_b[co] = sum_{n, spatial} g[n, co]
    """
    g, x, w = _f64(grad_output), _f64(x), _f64(weight)
    stride, padding = _tup(stride, nd), _tup(padding, nd)
    output_padding, dilation = _tup(output_padding, nd), _tup(dilation, nd)
    xs = _spread(x, stride)
    wd = _spread(w, dilation)
    N, C_in = x.shape[:2]
    cout_g = w.shape[1]
    cin_g = C_in // groups
    F = tuple(a + b - 1 for a, b in zip(xs.shape[2:], wd.shape[2:]))
    G = np.zeros((N, cout_g * groups) + F)
    keep = [min(o, f - p) for o, f, p in zip(g.shape[2:], F, padding)]
    G[_sp(nd, [slice(p, p + k) for p, k in zip(padding, keep)])] = g[_sp(nd, [slice(0, k) for k in keep])]

    step = _sp(nd, [slice(None, None, s) for s in stride])
    grad_x = np.zeros(x.shape)
    for n in range(N):
        for ci in range(C_in):
            g0 = ci // cin_g
            # (cout_g, *F) corr (cout_g, *k) 'valid' -> (1, *Ls): sum over co
            r = signal.correlate(G[n, g0 * cout_g:(g0 + 1) * cout_g], wd[ci],
                                 mode="valid", method="direct")[0]
            grad_x[n, ci] = r[step]

    tap = _sp(nd, [slice(None, None, d) for d in dilation])
    grad_w = np.zeros(w.shape)
    for ci in range(C_in):
        g0 = ci // cin_g
        # (N, cout_g, *F) corr (N, 1, *Ls) 'valid' -> (1, cout_g, *Kd): sum over n
        r = signal.correlate(G[:, g0 * cout_g:(g0 + 1) * cout_g], xs[:, ci][:, None],
                             mode="valid", method="direct")[0]
        grad_w[ci] = r[tap]

    grad_b = g.sum(axis=(0,) + tuple(range(2, 2 + nd)))
    return grad_x, grad_w, grad_b


def conv_transpose1d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """1-D transposed convolution (``F.conv_transpose1d``).

    L_out = (L-1)*s - 2p + d*(k-1) + output_padding + 1;
    y[n, co, i*s + j*d - p] += x[n, ci, i] * w[ci, co, j]."""
    return _conv_transpose_nd(x, weight, bias, stride, padding, output_padding, groups, dilation, 1)


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """2-D transposed convolution (``F.conv_transpose2d``); per-dim sizes as in 1-D."""
    return _conv_transpose_nd(x, weight, bias, stride, padding, output_padding, groups, dilation, 2)


def conv_transpose1d_backward(grad_output, x, weight, stride=1, padding=0, output_padding=0,
                              groups=1, dilation=1):
    """(grad_input, grad_weight, grad_bias) of :func:`conv_transpose1d`."""
    return _conv_transpose_nd_backward(grad_output, x, weight, stride, padding, output_padding,
                                       groups, dilation, 1)


def conv_transpose2d_backward(grad_output, x, weight, stride=1, padding=0, output_padding=0,
                              groups=1, dilation=1):
    """(grad_input, grad_weight, grad_bias) of :func:`conv_transpose2d`."""
    return _conv_transpose_nd_backward(grad_output, x, weight, stride, padding, output_padding,
                                       groups, dilation, 2)


# --------------------------------------------------------------------------
# pooling
# --------------------------------------------------------------------------

def _pool_out_size(L, k, s, p, d, ceil_mode):
    """floor-or-ceil((L + 2p - d*(k-1) - 1) / s) + 1; with ceil_mode the last
    window is dropped if it starts at or beyond L + p (padded coordinates)."""
    num = L + 2 * p - d * (k - 1) - 1
    out = (-(-num // s) if ceil_mode else num // s) + 1
    if ceil_mode and (out - 1) * s >= L + p:
        out -= 1
    return out


def _pool_stride(stride, k, nd):
    """stride None (or an empty sequence, as torch allows) means stride = kernel_size."""
    if stride is None or (not isinstance(stride, (int, np.integer)) and len(stride) == 0):
        return k
    return _tup(stride, nd)


def _window_taps(L, out, k, s, p, d):
    """Input positions pos[o, j] = o*s - p + j*d of every window tap."""
    return np.arange(out)[:, None] * s - p + np.arange(k)[None, :] * d


def _max_pool_nd(x, kernel_size, stride, padding, dilation, ceil_mode, nd):
    """out = max over in-bounds taps of each window (padding = -inf, never chosen).

    Ties -> first tap in row-major window order; a NaN tap beats everything
    (first NaN wins); an all -inf window reports its first in-bounds tap.
    indices = flat position inside the (n, c) input plane."""
    x = _f64(x)
    k = _tup(kernel_size, nd)
    s = _pool_stride(stride, k, nd)
    p, d = _tup(padding, nd), _tup(dilation, nd)
    L = x.shape[2:]
    out = [_pool_out_size(L[i], k[i], s[i], p[i], d[i], ceil_mode) for i in range(nd)]

    # broadcast tap positions: dim i has shape (.., out_i at axis i, .., k_i at axis nd+i, ..)
    pos, valid = [], []
    flat = 0
    for i in range(nd):
        t = _window_taps(L[i], out[i], k[i], s[i], p[i], d[i])
        shape = [1] * (2 * nd)
        shape[i], shape[nd + i] = out[i], k[i]
        t = t.reshape(shape)
        valid.append((t >= 0) & (t < L[i]))
        pos.append(np.clip(t, 0, L[i] - 1))
        flat = flat * L[i] + t
    mask = np.logical_and.reduce(np.broadcast_arrays(*valid))
    flat = np.broadcast_to(flat, mask.shape)
    vals = x[(slice(None), slice(None)) + tuple(pos)]              # (N, C, *out, *k)
    N, C = x.shape[:2]
    K = int(np.prod(k))
    vals = vals.reshape((N, C) + tuple(out) + (K,))
    mask = mask.reshape(tuple(out) + (K,))
    flat = flat.reshape(tuple(out) + (K,))

    v = np.where(mask, vals, -np.inf)
    isnan = np.isnan(v)
    has_nan = isnan.any(axis=-1, keepdims=True)
    m = np.where(isnan, -np.inf, v).max(axis=-1, keepdims=True)
    candidates = np.where(has_nan, isnan, mask & (v == m))
    sel = np.argmax(candidates, axis=-1)[..., None]                # first candidate
    value = np.take_along_axis(v, sel, axis=-1)[..., 0]
    index = np.take_along_axis(np.broadcast_to(flat, v.shape), sel, axis=-1)[..., 0]
    return value, index.astype(np.int64)


def _max_pool_nd_backward(grad_output, indices, input_shape, nd):
    """grad_in[n, c, indices[n, c, o]] += grad_out[n, c, o] (scatter-add)."""
    g = _f64(grad_output)
    N, C = g.shape[:2]
    spatial = tuple(int(a) for a in input_shape[-nd:])
    gi = np.zeros((N * C, int(np.prod(spatial))))
    rows = np.arange(N * C)[:, None]
    idx = np.asarray(indices, dtype=np.int64).reshape(N * C, -1)
    np.add.at(gi, (np.broadcast_to(rows, idx.shape), idx), g.reshape(N * C, -1))
    return gi.reshape((N, C) + spatial)


def max_pool1d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """1-D max pooling -> (output, indices); see :func:`max_pool2d`."""
    return _max_pool_nd(x, kernel_size, stride, padding, dilation, ceil_mode, 1)


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """2-D max pooling -> (output, indices), indices = h*W + w of the chosen tap.

    Window (oh, ow) taps (oh*sh - ph + i*dh, ow*sw - pw + j*dw)."""
    return _max_pool_nd(x, kernel_size, stride, padding, dilation, ceil_mode, 2)


def max_pool1d_backward(grad_output, indices, input_shape):
    """grad_input of :func:`max_pool1d` (scatter-add through indices)."""
    return _max_pool_nd_backward(grad_output, indices, input_shape, 1)


def max_pool2d_backward(grad_output, indices, input_shape):
    """grad_input of :func:`max_pool2d` (scatter-add through indices)."""
    return _max_pool_nd_backward(grad_output, indices, input_shape, 2)


def _avg_windows(L, k, s, p, ceil_mode):
    """Per output o: start = o*s - p, end = min(start + k, L + p),
    size = end - start (incl. padding), then clip to [0, L]."""
    out = _pool_out_size(L, k, s, p, 1, ceil_mode)
    wins = []
    for o in range(out):
        start = o * s - p
        end = min(start + k, L + p)
        size = end - start
        wins.append((max(start, 0), min(end, L), size))
    return wins


def _avg_setup(spatial, kernel_size, stride, padding, ceil_mode, nd):
    k = _tup(kernel_size, nd)
    s = _pool_stride(stride, k, nd)
    p = _tup(padding, nd)
    return [_avg_windows(spatial[i], k[i], s[i], p[i], ceil_mode) for i in range(nd)]


def _avg_divisor(win, count_include_pad, divisor_override):
    if divisor_override is not None:
        return divisor_override
    if count_include_pad:
        return math.prod(w[2] for w in win)
    return math.prod(w[1] - w[0] for w in win)


def _avg_pool_nd(x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, nd):
    """out[o] = sum(x[clipped window]) / divisor (PyTorch CPU rules)."""
    x = _f64(x)
    wins = _avg_setup(x.shape[2:], kernel_size, stride, padding, ceil_mode, nd)
    out = np.zeros(x.shape[:2] + tuple(len(w) for w in wins))
    axes = tuple(range(2, 2 + nd))
    for o in itertools.product(*[range(len(w)) for w in wins]):
        win = [wins[i][o[i]] for i in range(nd)]
        if any(a >= b for a, b, _ in win):
            continue  # empty window -> 0
        region = _sp(nd, [slice(a, b) for a, b, _ in win])
        div = _avg_divisor(win, count_include_pad, divisor_override)
        out[_sp(nd, o)] = x[region].sum(axis=axes) / div
    return out


def _avg_pool_nd_backward(grad_output, input_shape, kernel_size, stride, padding, ceil_mode,
                          count_include_pad, divisor_override, nd):
    """grad_in[clipped window(o)] += grad_out[o] / divisor(o)."""
    g = _f64(grad_output)
    spatial = tuple(int(a) for a in input_shape[-nd:])
    wins = _avg_setup(spatial, kernel_size, stride, padding, ceil_mode, nd)
    gi = np.zeros(g.shape[:2] + spatial)
    for o in itertools.product(*[range(len(w)) for w in wins]):
        win = [wins[i][o[i]] for i in range(nd)]
        if any(a >= b for a, b, _ in win):
            continue
        region = _sp(nd, [slice(a, b) for a, b, _ in win])
        div = _avg_divisor(win, count_include_pad, divisor_override)
        gi[region] += (g[_sp(nd, o)] / div).reshape(g.shape[:2] + (1,) * nd)
    return gi


def avg_pool1d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """1-D average pooling (PyTorch CPU avg_pool2d rules on one axis)."""
    return _avg_pool_nd(x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, 1)


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """2-D average pooling. Per dim: start = o*s - p, end = min(start+k, L+p),
    pool_size = prod(end - start); clip to [0, L); divisor = divisor_override
    or pool_size (count_include_pad) or prod(clipped extents)."""
    return _avg_pool_nd(x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, 2)


def avg_pool1d_backward(grad_output, input_shape, kernel_size, stride=None, padding=0, ceil_mode=False,
                        count_include_pad=True, divisor_override=None):
    """grad_input of :func:`avg_pool1d`."""
    return _avg_pool_nd_backward(grad_output, input_shape, kernel_size, stride, padding, ceil_mode,
                                 count_include_pad, divisor_override, 1)


def avg_pool2d_backward(grad_output, input_shape, kernel_size, stride=None, padding=0, ceil_mode=False,
                        count_include_pad=True, divisor_override=None):
    """grad_input of :func:`avg_pool2d`."""
    return _avg_pool_nd_backward(grad_output, input_shape, kernel_size, stride, padding, ceil_mode,
                                 count_include_pad, divisor_override, 2)


# --------------------------------------------------------------------------
# max unpooling
# --------------------------------------------------------------------------

def _max_unpool_nd(x, indices, kernel_size, stride, padding, output_size, nd):
    """out = zeros(out_size); out_plane[indices[i]] = x_plane[i] (last write wins).
    Default out_size per dim: (L-1)*s - 2p + k."""
    x = _f64(x)
    k = _tup(kernel_size, nd)
    s = _pool_stride(stride, k, nd)
    p = _tup(padding, nd)
    if output_size is None:
        size = tuple((L - 1) * s_ - 2 * p_ + k_ for L, k_, s_, p_ in zip(x.shape[2:], k, s, p))
    else:
        size = tuple(int(a) for a in output_size)
        if len(size) == nd + 2:
            size = size[2:]
    N, C = x.shape[:2]
    xf = x.reshape(N * C, -1)
    idx = np.asarray(indices, dtype=np.int64).reshape(N * C, -1)
    out = np.zeros((N * C, int(np.prod(size))))
    for r in range(N * C):
        # first occurrence in the reversed list == last occurrence in x order
        rev = idx[r, ::-1]
        uniq, first = np.unique(rev, return_index=True)
        out[r, uniq] = xf[r, ::-1][first]
    return out.reshape((N, C) + size)


def _max_unpool_nd_backward(grad_output, indices):
    """grad_in[n, c, i] = grad_out_plane[n, c][indices[n, c, i]] if x[n, c, i] is the value the
    forward kept there (the last of repeated indices in row-major order), else 0: the exact
    derivative of "last wins". (torch gathers for every duplicate.)"""
    g = _f64(grad_output)
    idx = np.asarray(indices, dtype=np.int64)
    N, C = g.shape[:2]
    g2, idx2 = g.reshape(N * C, -1), idx.reshape(N * C, -1)
    gi = np.zeros(idx2.shape)
    for plane in range(N * C):
        # position of the last occurrence of every target index
        _, first_in_reversed = np.unique(idx2[plane][::-1], return_index=True)
        kept = idx2.shape[1] - 1 - first_in_reversed
        gi[plane, kept] = g2[plane, idx2[plane, kept]]
    return gi.reshape(idx.shape)


def max_unpool1d(x, indices, kernel_size, stride=None, padding=0, output_size=None):
    """1-D max unpooling (``F.max_unpool1d``)."""
    return _max_unpool_nd(x, indices, kernel_size, stride, padding, output_size, 1)


def max_unpool2d(x, indices, kernel_size, stride=None, padding=0, output_size=None):
    """2-D max unpooling (``F.max_unpool2d``); indices are h*W_out + w."""
    return _max_unpool_nd(x, indices, kernel_size, stride, padding, output_size, 2)


def max_unpool1d_backward(grad_output, indices):
    """grad_input of :func:`max_unpool1d`."""
    return _max_unpool_nd_backward(grad_output, indices)


def max_unpool2d_backward(grad_output, indices):
    """grad_input of :func:`max_unpool2d`."""
    return _max_unpool_nd_backward(grad_output, indices)


# --------------------------------------------------------------------------
# upsampling
# --------------------------------------------------------------------------

def _scales(scale_factor, nd):
    if scale_factor is None:
        return (None,) * nd
    if isinstance(scale_factor, (int, float, np.integer, np.floating)):
        return (float(scale_factor),) * nd
    t = tuple(None if a is None else float(a) for a in scale_factor)
    return t * nd if len(t) == 1 else t


def _upsample_out_size(spatial, size, scale_factor, nd):
    """size, or floor(L * scale_factor) in float64."""
    if size is not None:
        return _tup(size, nd)
    sc = _scales(scale_factor, nd)
    return tuple(int(math.floor(L * f)) for L, f in zip(spatial, sc))


def _nearest_src(in_size, out_size, scale_factor, shortcut=True):
    """Source index map of PyTorch 'nearest' for one dim.

    General rule: src = min(floor(float32(dst) * scale), in - 1), evaluated in
    float32, with scale = float32(1/scale_factor) if scale_factor was given,
    else float32(in) / float32(out).

    ``shortcut`` mirrors ATen's ``nearest_idx``: if out == in the map is the
    identity and if out == 2*in it is dst >> 1, whatever the scale_factor.
    The two only differ when a scale_factor is given whose floor(in * sf)
    lands on in or 2*in (e.g. 1.05 or 2.05 for in = 10).  Measured on
    torch 2.13 CPU: upsample_nearest2d forward and backward and
    upsample_nearest1d *backward* use the shortcut (per dim), while
    upsample_nearest1d *forward* does not -- so in that corner case torch's
    1-D backward is not the adjoint of its forward.  (Measured later: the
    2-D forward also drops the shortcut when H_out + W_out > 128.)  deconv
    uses the shortcut everywhere, so its forward and backward agree."""
    dst = np.arange(out_size)
    if shortcut and out_size == in_size:
        return dst
    if shortcut and out_size == 2 * in_size:
        return dst >> 1
    if scale_factor is not None and scale_factor > 0:
        scale = np.float32(1.0 / scale_factor)
    else:
        scale = np.float32(in_size) / np.float32(out_size)
    src = np.floor(dst.astype(np.float32) * scale).astype(np.int64)
    return np.minimum(src, in_size - 1)


def _nearest_maps(in_sp, out_sp, scale_factor, nd, shortcut):
    sc = _scales(scale_factor, nd)
    return [_nearest_src(in_sp[i], out_sp[i], sc[i], shortcut) for i in range(nd)]


def _upsample_nearest_nd(x, size, scale_factor, nd, shortcut):
    x = _f64(x)
    out_sp = _upsample_out_size(x.shape[2:], size, scale_factor, nd)
    maps = _nearest_maps(x.shape[2:], out_sp, scale_factor, nd, shortcut)
    out = x
    for i, m in enumerate(maps):
        out = np.take(out, m, axis=2 + i)
    return out.copy()


def _upsample_nearest_nd_backward(grad_output, input_shape, scale_factor, nd):
    g = _f64(grad_output)
    in_sp = tuple(int(a) for a in input_shape[-nd:])
    maps = _nearest_maps(in_sp, g.shape[2:], scale_factor, nd, shortcut=True)
    for i, m in enumerate(maps):
        shape = list(g.shape)
        shape[2 + i] = in_sp[i]
        acc = np.zeros(shape)
        np.add.at(acc, (slice(None),) * (2 + i) + (m,), g)
        g = acc
    return g


def upsample_nearest1d(x, size=None, scale_factor=None):
    """Nearest upsampling: out[..., o] = x[..., src(o)] (see ``_nearest_src``).

    deconv applies ATen's ``nearest_idx`` (with its out == in / out == 2*in
    shortcuts) in every direction; torch's 1-D forward skips the shortcuts,
    so its forward and backward disagree for factors like 1.05 (a documented
    deviation, see tests/test_reference_vs_torch.py)."""
    return _upsample_nearest_nd(x, size, scale_factor, 1, shortcut=True)


def upsample_nearest2d(x, size=None, scale_factor=None):
    """Nearest upsampling: out[..., oh, ow] = x[..., src_h(oh), src_w(ow)]."""
    return _upsample_nearest_nd(x, size, scale_factor, 2, shortcut=True)


def upsample_nearest1d_backward(grad_output, input_shape, scale_factor=None):
    """grad_in[..., src(o)] += grad_out[..., o]; pass the forward's scale_factor."""
    return _upsample_nearest_nd_backward(grad_output, input_shape, scale_factor, 1)


def upsample_nearest2d_backward(grad_output, input_shape, scale_factor=None):
    """grad_in[..., src_h(oh), src_w(ow)] += grad_out[..., oh, ow]."""
    return _upsample_nearest_nd_backward(grad_output, input_shape, scale_factor, 2)


def _linear_weights(in_size, out_size, align_corners, scale_factor, T):
    """PyTorch ``compute_source_index_and_lambda`` in arithmetic type T.

    scale = (in-1)/(out-1) (0 if out == 1) if align_corners, else 1/scale_factor
    if given, else in/out.  src = scale*dst (align_corners) or
    max(scale*(dst+0.5) - 0.5, 0); i0 = min(floor(src), in-1) (ATen uses floorf),
    i1 = i0 + (i0 < in-1), l1 = clip(src - i0, 0, 1), l0 = 1 - l1.
    If out == in and not align_corners: identity (i0 = i1 = dst, l0 = 1)."""
    if align_corners:
        scale = T(in_size - 1) / T(out_size - 1) if out_size > 1 else T(0)
    elif scale_factor is not None and scale_factor > 0:
        scale = T(1.0 / scale_factor)
    else:
        scale = T(in_size) / T(out_size)
    i0 = np.zeros(out_size, np.int64)
    i1 = np.zeros(out_size, np.int64)
    l0 = np.zeros(out_size, np.float64)
    l1 = np.zeros(out_size, np.float64)
    for dst in range(out_size):
        if out_size == in_size and not align_corners:
            i0[dst] = i1[dst] = dst
            l0[dst], l1[dst] = 1.0, 0.0
            continue
        if align_corners:
            src = T(scale * T(dst))
        else:
            src = T(scale * (T(dst) + T(0.5)) - T(0.5))
            if src < 0:
                src = T(0)
        a = min(int(math.floor(np.float32(src))), in_size - 1)
        lam1 = T(min(max(src - T(a), T(0)), T(1)))
        i0[dst] = a
        i1[dst] = a + (1 if a < in_size - 1 else 0)
        l1[dst] = lam1
        l0[dst] = T(T(1) - lam1)
    return i0, i1, l0, l1


def _bilinear_setup(in_sp, out_sp, align_corners, scale_factor, dtype):
    T = np.float64 if dtype == np.float64 else np.float32
    sc = _scales(scale_factor, 2)
    return [_linear_weights(in_sp[i], out_sp[i], align_corners, sc[i], T) for i in range(2)]


def upsample_bilinear2d(x, size=None, scale_factor=None, align_corners=False):
    """Bilinear upsampling (``F.interpolate(mode='bilinear')``):
    out[oh, ow] = sum_{a,b in {0,1}} lh_a(oh) lw_b(ow) x[ih_a(oh), iw_b(ow)].
    Index/weight arithmetic in x's dtype (float32 unless float64), sum in float64."""
    dtype = np.asarray(x).dtype
    x = _f64(x)
    out_sp = _upsample_out_size(x.shape[2:], size, scale_factor, 2)
    (h0, h1, lh0, lh1), (w0, w1, lw0, lw1) = _bilinear_setup(x.shape[2:], out_sp, align_corners,
                                                             scale_factor, dtype)
    out = np.zeros(x.shape[:2] + tuple(out_sp))
    for hi, lh in ((h0, lh0), (h1, lh1)):
        for wi, lw in ((w0, lw0), (w1, lw1)):
            out += lh[:, None] * lw[None, :] * x[:, :, hi[:, None], wi[None, :]]
    return out


def upsample_bilinear2d_backward(grad_output, input_shape, align_corners=False, scale_factor=None):
    """Adjoint of :func:`upsample_bilinear2d`:
    grad_in[ih_a(oh), iw_b(ow)] += lh_a(oh) lw_b(ow) grad_out[oh, ow].
    Weight arithmetic in grad_output's dtype (as the forward, in x's dtype)."""
    dtype = np.asarray(grad_output).dtype
    g = _f64(grad_output)
    in_sp = tuple(int(a) for a in input_shape[-2:])
    (h0, h1, lh0, lh1), (w0, w1, lw0, lw1) = _bilinear_setup(in_sp, g.shape[2:], align_corners,
                                                             scale_factor, dtype)
    gi = np.zeros(g.shape[:2] + in_sp)
    for hi, lh in ((h0, lh0), (h1, lh1)):
        for wi, lw in ((w0, lw0), (w1, lw1)):
            hh = np.broadcast_to(hi[:, None], g.shape[2:])
            ww = np.broadcast_to(wi[None, :], g.shape[2:])
            np.add.at(gi, (slice(None), slice(None), hh, ww), lh[:, None] * lw[None, :] * g)
    return gi


# --------------------------------------------------------------------------
# pixel shuffle
# --------------------------------------------------------------------------

def pixel_shuffle(x, upscale_factor):
    """(N, C*r*r, H, W) -> (N, C, H*r, W*r): out[n,c,h*r+i,w*r+j] = x[n,c*r*r+i*r+j,h,w]."""
    x = _f64(x)
    r = int(upscale_factor)
    N, Crr, H, W = x.shape
    C = Crr // (r * r)
    out = np.zeros((N, C, H * r, W * r))
    for i in range(r):
        for j in range(r):
            out[:, :, i::r, j::r] = x[:, np.arange(C) * r * r + i * r + j]
    return out


def pixel_unshuffle(x, downscale_factor):
    """(N, C, H*r, W*r) -> (N, C*r*r, H, W): out[n,c*r*r+i*r+j,h,w] = x[n,c,h*r+i,w*r+j]."""
    x = _f64(x)
    r = int(downscale_factor)
    N, C, Hr, Wr = x.shape
    out = np.zeros((N, C * r * r, Hr // r, Wr // r))
    for i in range(r):
        for j in range(r):
            out[:, np.arange(C) * r * r + i * r + j] = x[:, :, i::r, j::r]
    return out


def pixel_shuffle_backward(grad_output, upscale_factor):
    """grad_input of :func:`pixel_shuffle` (= pixel_unshuffle of grad_output)."""
    return pixel_unshuffle(grad_output, upscale_factor)


def pixel_unshuffle_backward(grad_output, downscale_factor):
    """grad_input of :func:`pixel_unshuffle` (= pixel_shuffle of grad_output)."""
    return pixel_shuffle(grad_output, downscale_factor)


# --------------------------------------------------------------------------
# unfold / fold (issue 13): one explicit loop over the blocks of a zero-padded image
# --------------------------------------------------------------------------

__all__ += ["unfold", "fold", "unfold_backward", "fold_backward"]


def _block_grid(size, kernel_size, dilation, padding, stride):
    """Per axis: block count, and the slice a block at the origin covers in the padded image."""
    k, d, p, s = (_tup(v, 2) for v in (kernel_size, dilation, padding, stride))
    counts = tuple((L + 2 * pp - dd * (kk - 1) - 1) // ss + 1
                   for L, kk, dd, pp, ss in zip(size, k, d, p, s))
    return k, d, p, s, counts


def unfold(x, kernel_size, dilation=1, padding=0, stride=1):
    """(N, C, H, W) -> (N, C*kH*kW, L): block (oh, ow) of the padded image as column oh*W_out + ow,
    its rows in (c, i, j) order."""
    x = _f64(x)
    N, C, H, W = x.shape
    k, d, p, s, (H_out, W_out) = _block_grid((H, W), kernel_size, dilation, padding, stride)
    padded = np.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])))
    out = np.zeros((N, C * k[0] * k[1], H_out * W_out))
    for oh in range(H_out):
        for ow in range(W_out):
            h0, w0 = oh * s[0], ow * s[1]
            block = padded[:, :, h0:h0 + d[0] * (k[0] - 1) + 1:d[0],
                           w0:w0 + d[1] * (k[1] - 1) + 1:d[1]]       # (N, C, kH, kW)
            out[:, :, oh * W_out + ow] = block.reshape(N, C * k[0] * k[1])
    return out


def fold(x, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """(N, C*kH*kW, L) -> (N, C, H, W): every column added back where :func:`unfold` took it."""
    x = _f64(x)
    H, W = _tup(output_size, 2)
    k, d, p, s, (H_out, W_out) = _block_grid((H, W), kernel_size, dilation, padding, stride)
    N, K, L = x.shape
    if L != H_out * W_out or K % (k[0] * k[1]):
        raise ValueError(f"columns of shape {x.shape} do not fit output_size {(H, W)}")
    C = K // (k[0] * k[1])
    padded = np.zeros((N, C, H + 2 * p[0], W + 2 * p[1]))
    for oh in range(H_out):
        for ow in range(W_out):
            h0, w0 = oh * s[0], ow * s[1]
            padded[:, :, h0:h0 + d[0] * (k[0] - 1) + 1:d[0],
                   w0:w0 + d[1] * (k[1] - 1) + 1:d[1]] += \
                x[:, :, oh * W_out + ow].reshape(N, C, k[0], k[1])
    return padded[:, :, p[0]:p[0] + H, p[1]:p[1] + W].copy()


def unfold_backward(grad_output, input_shape, kernel_size, dilation=1, padding=0, stride=1):
    """grad_input of :func:`unfold` (= fold of grad_output to the input's size)."""
    return fold(grad_output, tuple(input_shape[2:]), kernel_size, dilation, padding, stride)


def fold_backward(grad_output, kernel_size, dilation=1, padding=0, stride=1):
    """grad_input of :func:`fold` (= unfold of grad_output)."""
    return unfold(grad_output, kernel_size, dilation, padding, stride)


# adaptive pooling (issue 13)
# --------------------------------------------------------------------------

def _adaptive_sizes(spatial, output_size):
    """output_size (int, or a sequence with None = keep that input size) -> tuple of ints."""
    nd = len(spatial)
    if isinstance(output_size, (int, np.integer)):
        return (int(output_size),) * nd
    sizes = tuple(output_size)
    return tuple(L if o is None else int(o) for L, o in zip(spatial, sizes))


def _adaptive_ranges(L, out):
    """Per output o: range(floor(o*L/out), ceil((o+1)*L/out)), in exact rationals."""
    return [range(math.floor(fractions.Fraction(o * L, out)),
                  math.ceil(fractions.Fraction((o + 1) * L, out))) for o in range(out)]


def _adaptive_windows(spatial, output_size):
    """Every output position with its per-axis input ranges."""
    out = _adaptive_sizes(spatial, output_size)
    per_axis = [_adaptive_ranges(L, o) for L, o in zip(spatial, out)]
    for o in itertools.product(*[range(n) for n in out]):
        yield o, [per_axis[i][o[i]] for i in range(len(spatial))]


def _adaptive_avg_pool_nd(x, output_size):
    """out[o] = mean of x over window o."""
    x = _f64(x)
    spatial = x.shape[2:]
    out = np.zeros(x.shape[:2] + _adaptive_sizes(spatial, output_size))
    axes = tuple(range(2, x.ndim))
    for o, win in _adaptive_windows(spatial, output_size):
        region = x[(slice(None), slice(None)) + tuple(slice(r.start, r.stop) for r in win)]
        out[(slice(None), slice(None)) + o] = region.sum(axis=axes) / math.prod(len(r) for r in win)
    return out


def _adaptive_avg_pool_nd_backward(grad_output, input_shape):
    """grad_in[window o] += grad_out[o] / |window o|."""
    g = _f64(grad_output)
    nd = g.ndim - 2
    spatial = tuple(int(a) for a in input_shape[-nd:])
    gi = np.zeros(g.shape[:2] + spatial)
    for o, win in _adaptive_windows(spatial, g.shape[2:]):
        share = g[(slice(None), slice(None)) + o] / math.prod(len(r) for r in win)
        gi[(slice(None), slice(None)) + tuple(slice(r.start, r.stop) for r in win)] += \
            share.reshape(g.shape[:2] + (1,) * nd)
    return gi


def _adaptive_max_pool_nd(x, output_size):
    """out[o] = max over window o, indices = flat position in the (n, c) plane.

    Ties -> first element in row-major order; a NaN beats everything and the
    first NaN wins."""
    x = _f64(x)
    N, C = x.shape[:2]
    spatial = x.shape[2:]
    out_sizes = _adaptive_sizes(spatial, output_size)
    out = np.zeros((N, C) + out_sizes)
    ind = np.zeros((N, C) + out_sizes, dtype=np.int64)
    for o, win in _adaptive_windows(spatial, output_size):
        positions = list(itertools.product(*win))                     # row-major
        flat = np.array([np.ravel_multi_index(q, spatial) for q in positions])
        vals = x.reshape(N, C, -1)[:, :, flat]                        # (N, C, |window|)
        isnan = np.isnan(vals)
        best = np.where(isnan.any(axis=-1, keepdims=True), isnan,
                        vals == np.nanmax(np.where(isnan, -np.inf, vals), axis=-1, keepdims=True))
        first = np.argmax(best, axis=-1)                              # (N, C)
        out[(slice(None), slice(None)) + o] = np.take_along_axis(vals, first[..., None], -1)[..., 0]
        ind[(slice(None), slice(None)) + o] = flat[first]
    return out, ind


def adaptive_avg_pool1d(x, output_size):
    """1-D adaptive average pooling: windows [floor(o*L/out), ceil((o+1)*L/out))."""
    return _adaptive_avg_pool_nd(x, output_size)


def adaptive_avg_pool2d(x, output_size):
    """2-D adaptive average pooling (the 1-D windows on each axis)."""
    return _adaptive_avg_pool_nd(x, output_size)


def adaptive_avg_pool3d(x, output_size):
    """3-D adaptive average pooling (the 1-D windows on each axis)."""
    return _adaptive_avg_pool_nd(x, output_size)


def adaptive_avg_pool1d_backward(grad_output, input_shape):
    """grad_input of :func:`adaptive_avg_pool1d`."""
    return _adaptive_avg_pool_nd_backward(grad_output, input_shape)


def adaptive_avg_pool2d_backward(grad_output, input_shape):
    """grad_input of :func:`adaptive_avg_pool2d`."""
    return _adaptive_avg_pool_nd_backward(grad_output, input_shape)


def adaptive_avg_pool3d_backward(grad_output, input_shape):
    """grad_input of :func:`adaptive_avg_pool3d`."""
    return _adaptive_avg_pool_nd_backward(grad_output, input_shape)


def adaptive_max_pool1d(x, output_size, return_indices=True):
    """1-D adaptive max pooling -> (output, indices) (output alone without return_indices)."""
    out, ind = _adaptive_max_pool_nd(x, output_size)
    return (out, ind) if return_indices else out


def adaptive_max_pool2d(x, output_size, return_indices=True):
    """2-D adaptive max pooling -> (output, indices), indices = h*W + w."""
    out, ind = _adaptive_max_pool_nd(x, output_size)
    return (out, ind) if return_indices else out


def adaptive_max_pool3d(x, output_size, return_indices=True):
    """3-D adaptive max pooling -> (output, indices), indices = (d*H + h)*W + w."""
    out, ind = _adaptive_max_pool_nd(x, output_size)
    return (out, ind) if return_indices else out


def adaptive_max_pool1d_backward(grad_output, indices, input_shape):
    """grad_input of :func:`adaptive_max_pool1d` (scatter-add through indices)."""
    return _max_pool_nd_backward(grad_output, indices, input_shape, 1)


def adaptive_max_pool2d_backward(grad_output, indices, input_shape):
    """grad_input of :func:`adaptive_max_pool2d` (scatter-add through indices)."""
    return _max_pool_nd_backward(grad_output, indices, input_shape, 2)


def adaptive_max_pool3d_backward(grad_output, indices, input_shape):
    """grad_input of :func:`adaptive_max_pool3d` (scatter-add through indices)."""
    return _max_pool_nd_backward(grad_output, indices, input_shape, 3)


# padding (issue 13)
# --------------------------------------------------------------------------

_NP_PAD_MODE = {"constant": "constant", "reflect": "reflect", "replicate": "edge",
                "circular": "wrap"}


def _pad_array(a, pad, mode, value):
    """``np.pad`` with PyTorch's pad tuple (last axis first, negative entries crop).

    reflect/replicate mirror or repeat about the edges of the *whole* axis
    (grow, then crop); circular wraps the *cropped* axis (crop, then grow),
    as PyTorch does.
    """
    pairs = [(pad[2 * i], pad[2 * i + 1]) for i in range(len(pad) // 2)][::-1]
    pairs = [(0, 0)] * (a.ndim - len(pairs)) + pairs
    grow = [(max(b, 0), max(e, 0)) for b, e in pairs]

    def crop(arr):
        return arr[tuple(slice(max(-b, 0), arr.shape[i] - max(-e, 0))
                         for i, (b, e) in enumerate(pairs))]

    extra = dict(constant_values=value) if mode == "constant" else {}
    if mode == "circular":
        return np.pad(crop(a), grow, mode="wrap")
    return crop(np.pad(a, grow, mode=_NP_PAD_MODE[mode], **extra))


def pad(x, pad, mode="constant", value=0.0):
    """``F.pad``: np.pad per mode (constant, reflect, edge, wrap) after or before the crops."""
    return _pad_array(_f64(x), tuple(pad), mode, value)


def pad_backward(grad_output, input_shape, pad, mode="constant"):
    """grad_input of :func:`pad`: pad the *positions* of the input the same way
    (fill -1), then add each output gradient into the position it holds."""
    positions = np.arange(math.prod(input_shape), dtype=np.int64).reshape(input_shape)
    source = _pad_array(positions, tuple(pad), mode, -1)
    g = _f64(grad_output)
    gi = np.zeros(math.prod(input_shape))
    read = source >= 0
    np.add.at(gi, source[read], g[read])
    return gi.reshape(input_shape)


# --------------------------------------------------------------------------
# interpolate (issue 13)
# --------------------------------------------------------------------------

__all__ += ["interpolate", "interpolate_backward"]


def _cubic_kernel(s, a):
    """Keys' cubic convolution kernel at distance s (any sign)."""
    s = abs(s)
    if s <= 1:
        return (a + 2) * s ** 3 - (a + 3) * s ** 2 + 1
    if s < 2:
        return a * s ** 3 - 5 * a * s ** 2 + 8 * a * s - 4 * a
    return 0.0


def _interp_geometry(spatial, size, scale_factor, mode, recompute):
    """(out_sp, per-axis scale factors entering the maps, or Nones)."""
    nd = len(spatial)
    out_sp = _upsample_out_size(spatial, size, scale_factor, nd)
    if size is not None or recompute or mode == "area":
        return out_sp, (None,) * nd
    return out_sp, _scales(scale_factor, nd)


def _interp_matrix(L, out, mode, align_corners, sf, antialias, T):
    """The (out, L) matrix of one axis's resampling, built tap by tap in float64."""
    M = np.zeros((out, L))
    if mode == "nearest":
        M[np.arange(out), _nearest_src(L, out, sf)] = 1.0
        return M
    if align_corners and mode not in ("nearest-exact",):
        scale = T(L - 1) / T(out - 1) if out > 1 else T(0)
    elif sf is not None:
        scale = T(1.0 / sf)
    else:
        scale = T(L) / T(out)
    if mode == "nearest-exact":
        for o in range(out):
            M[o, min(int(math.floor(np.float32((o + 0.5) * float(np.float32(scale))))), L - 1)] = 1.0
        return M
    if antialias:
        if L == out:
            return np.eye(L)
        scale = float(scale)
        width = 2.0 if mode == "bicubic" else 1.0      # half the support before stretching
        stretch = max(scale, 1.0)
        for o in range(out):
            centre = scale * (o + 0.5)
            lo = max(int(centre - width * stretch + 0.5), 0)
            hi = min(int(centre + width * stretch + 0.5), L)
            for i in range(lo, hi):
                s = (i + 0.5 - centre) / stretch
                M[o, i] = (_cubic_kernel(s, -0.5) if mode == "bicubic"
                           else max(0.0, 1.0 - abs(s)))
            total = M[o].sum()
            if total != 0.0:
                M[o] /= total
        return M.astype(T).astype(np.float64)
    if mode == "bicubic":
        for o in range(out):
            src = T(scale * T(o)) if align_corners else T(scale * (T(o) + T(0.5)) - T(0.5))
            i0 = min(int(math.floor(np.float32(src))), L - 1)
            t = T(min(max(src - T(i0), T(0)), T(1)))
            for k in range(-1, 3):
                M[o, min(max(i0 + k, 0), L - 1)] += float(T(_cubic_kernel(float(t) - k, -0.75)))
        return M
    i0, i1, l0, l1 = _linear_weights(L, out, align_corners, sf, T)
    for o in range(out):
        M[o, i0[o]] += l0[o]
        M[o, i1[o]] += l1[o]
    return M


def _interp_apply(a, matrices):
    """Contract axis 2 + k of ``a`` with ``matrices[k]`` for every k."""
    for k, M in enumerate(matrices):
        a = np.moveaxis(np.tensordot(M, np.moveaxis(a, 2 + k, 0), axes=(1, 0)), 0, 2 + k)
    return np.ascontiguousarray(a)


def _interp_matrices(in_sp, out_sp, scales, mode, align_corners, antialias, dtype):
    T = np.float64 if dtype == np.float64 else np.float32
    return [_interp_matrix(L, o, mode, bool(align_corners), f, antialias, T)
            for L, o, f in zip(in_sp, out_sp, scales)]


def interpolate(x, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    """``F.interpolate``: one dense (out, in) matrix per axis (area: adaptive average
    pooling), applied axis by axis in float64."""
    dtype = np.asarray(x).dtype
    x = _f64(x)
    out_sp, scales = _interp_geometry(x.shape[2:], size, scale_factor, mode,
                                      recompute_scale_factor)
    if mode == "area":
        return _adaptive_avg_pool_nd(x, out_sp)
    return _interp_apply(x, _interp_matrices(x.shape[2:], out_sp, scales, mode, align_corners,
                                             antialias, dtype))


def interpolate_backward(grad_output, input_shape, size=None, scale_factor=None, mode="nearest",
                         align_corners=None, recompute_scale_factor=None, antialias=False):
    """Adjoint of :func:`interpolate`: the transposed matrices."""
    dtype = np.asarray(grad_output).dtype
    g = _f64(grad_output)
    in_sp = tuple(int(a) for a in input_shape[2:])
    out_sp, scales = _interp_geometry(in_sp, size, scale_factor, mode, recompute_scale_factor)
    if mode == "area":
        return _adaptive_avg_pool_nd_backward(g, tuple(input_shape))
    mats = _interp_matrices(in_sp, out_sp, scales, mode, align_corners, antialias, dtype)
    return _interp_apply(g, [M.T for M in mats])


# issue 13: the 3-D family
def conv3d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """3-D cross-correlation, PyTorch ``F.conv3d`` semantics (NCDHW)."""
    return _conv_nd(x, weight, bias, stride, padding, dilation, groups, 3)


def conv3d_backward(grad_output, x, weight, stride=1, padding=0, dilation=1, groups=1):
    """(grad_input, grad_weight, grad_bias) of :func:`conv3d`."""
    return _conv_nd_backward(grad_output, x, weight, stride, padding, dilation, groups, 3)


def conv_transpose3d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """3-D transposed convolution, PyTorch ``F.conv_transpose3d`` semantics."""
    return _conv_transpose_nd(x, weight, bias, stride, padding, output_padding, groups, dilation, 3)


def conv_transpose3d_backward(grad_output, x, weight, stride=1, padding=0, output_padding=0,
                              groups=1, dilation=1):
    """(grad_input, grad_weight, grad_bias) of :func:`conv_transpose3d`."""
    return _conv_transpose_nd_backward(grad_output, x, weight, stride, padding, output_padding,
                                       groups, dilation, 3)


def max_pool3d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """3-D max pooling -> (output, indices), indices = (d*H + h)*W + w of the chosen tap."""
    return _max_pool_nd(x, kernel_size, stride, padding, dilation, ceil_mode, 3)


def max_pool3d_backward(grad_output, indices, input_shape):
    """grad_input of :func:`max_pool3d` (scatter-add through indices)."""
    return _max_pool_nd_backward(grad_output, indices, input_shape, 3)


def avg_pool3d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """3-D average pooling (``F.avg_pool3d``)."""
    return _avg_pool_nd(x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                        divisor_override, 3)


def avg_pool3d_backward(grad_output, input_shape, kernel_size, stride=None, padding=0,
                        ceil_mode=False, count_include_pad=True, divisor_override=None):
    """grad_input of :func:`avg_pool3d`."""
    return _avg_pool_nd_backward(grad_output, input_shape, kernel_size, stride, padding,
                                 ceil_mode, count_include_pad, divisor_override, 3)


def max_unpool3d(x, indices, kernel_size, stride=None, padding=0, output_size=None):
    """3-D max unpooling (``F.max_unpool3d``); indices are (d*H_out + h)*W_out + w."""
    return _max_unpool_nd(x, indices, kernel_size, stride, padding, output_size, 3)


def max_unpool3d_backward(grad_output, indices):
    """grad_input of :func:`max_unpool3d`."""
    return _max_unpool_nd_backward(grad_output, indices)


def upsample_nearest3d(x, size=None, scale_factor=None):
    """Nearest upsampling along D, H and W (``F.interpolate(mode='nearest')``)."""
    return _upsample_nearest_nd(x, size, scale_factor, 3, shortcut=True)


def upsample_nearest3d_backward(grad_output, input_shape, scale_factor=None):
    """grad_in[..., src_d, src_h, src_w] += grad_out[..., od, oh, ow]."""
    return _upsample_nearest_nd_backward(grad_output, input_shape, scale_factor, 3)


def _linear_matrix(in_size, out_size, align_corners, scale_factor, T):
    """(out, in) matrix of 1-D linear interpolation: row o holds l0 at i0 and l1 at i1."""
    i0, i1, l0, l1 = _linear_weights(in_size, out_size, align_corners, scale_factor, T)
    m = np.zeros((out_size, in_size))
    np.add.at(m, (np.arange(out_size), i0), l0)
    np.add.at(m, (np.arange(out_size), i1), l1)
    return m


def _trilinear_matrices(in_sp, out_sp, align_corners, scale_factor, dtype):
    T = np.float64 if dtype == np.float64 else np.float32
    sc = _scales(scale_factor, 3)
    return [_linear_matrix(in_sp[i], out_sp[i], align_corners, sc[i], T) for i in range(3)]


def upsample_trilinear3d(x, size=None, scale_factor=None, align_corners=False):
    """Trilinear upsampling (``F.interpolate(mode='trilinear')``): the tensor product
    of three 1-D linear interpolations, out = x contracted with M_D, M_H, M_W
    (weights as in :func:`upsample_bilinear2d`)."""
    dtype = np.asarray(x).dtype
    x = _f64(x)
    out_sp = _upsample_out_size(x.shape[2:], size, scale_factor, 3)
    md, mh, mw = _trilinear_matrices(x.shape[2:], out_sp, align_corners, scale_factor, dtype)
    return np.einsum("ncdhw,ad,bh,ew->ncabe", x, md, mh, mw)


def upsample_trilinear3d_backward(grad_output, input_shape, align_corners=False,
                                  scale_factor=None):
    """Adjoint of :func:`upsample_trilinear3d`: the transposed matrices."""
    dtype = np.asarray(grad_output).dtype
    g = _f64(grad_output)
    in_sp = tuple(int(a) for a in input_shape[-3:])
    md, mh, mw = _trilinear_matrices(in_sp, g.shape[2:], align_corners, scale_factor, dtype)
    return np.einsum("ncabe,ad,bh,ew->ncdhw", g, md, mh, mw)
