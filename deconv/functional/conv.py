"""Convolution and transposed convolution, 1-D and 2-D, forward and backward.

Public, validated wrappers around the kernels of :mod:`deconv.kernels.conv`.
Semantics, argument names and layouts are those of
``torch.nn.functional.conv{1,2}d`` and ``conv_transpose{1,2}d``:

* input ``(N, C_in, L)`` or ``(N, C_in, H, W)``;
* conv weight ``(C_out, C_in/groups, k...)``;
* transposed conv weight ``(C_in, C_out/groups, k...)``;
* "convolution" is cross-correlation (the kernel is not flipped);
* ``dilation=1`` means no dilation.

The 1-D functions run the 2-D kernels on a view with ``H = 1``.
"""

import functools

import numpy as np

from deconv import kernels
from deconv.kernels import conv as _k
from deconv.functional import shapes
from deconv.functional.layout import from_2d, to_2d
from deconv.kernels.threads import call, kernel_chunks
from deconv.functional.validation import (
    LAYOUT,
    as_float_array,
    as_positive_int,
    as_positive_tuple,
    as_tuple,
    check_ndim,
    check_same_dtype,
    check_shape_equal,
    refuse_positional_bias,
)

__all__ = [
    "conv1d", "conv2d", "conv1d_backward", "conv2d_backward",
    "conv_transpose1d", "conv_transpose2d",
    "conv_transpose1d_backward", "conv_transpose2d_backward",
]

_WEIGHT_LAYOUT = {1: "(C_out, C_in/groups, kL)", 2: "(C_out, C_in/groups, kH, kW)"}
_T_WEIGHT_LAYOUT = {1: "(C_in, C_out/groups, kL)", 2: "(C_in, C_out/groups, kH, kW)"}


# ---------------------------------------------------------------------------
# argument normalisation
# ---------------------------------------------------------------------------

class _Config:
    """Normalised arguments of one call: per-dimension tuples of plain ints."""

    __slots__ = ("nd", "stride", "pad_before", "pad_after", "dilation", "groups",
                 "output_padding", "kernel")

    def as_2d(self):
        """(sH, sW, pH, pW, dH, dW) for the kernels; 1-D gets the identity along H."""
        if self.nd == 1:
            return (1, self.stride[0], 0, self.pad_before[0], 1, self.dilation[0])
        return (self.stride[0], self.stride[1], self.pad_before[0], self.pad_before[1],
                self.dilation[0], self.dilation[1])


def _conv_padding(padding, nd, kernel, dilation, stride):
    """Padding as ``(before, after)`` tuples; 'same' may be asymmetric."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0,) * nd, (0,) * nd
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(
                    f"padding='same' is only supported with stride 1, got stride={stride}"
                )
            pairs = [shapes.same_padding(k, d) for k, d in zip(kernel, dilation)]
            return tuple(p[0] for p in pairs), tuple(p[1] for p in pairs)
        raise ValueError(f"padding must be an int, a tuple of ints, 'valid' or 'same', got {padding!r}")
    pad = as_tuple(padding, nd, "padding", minimum=0)
    return pad, pad


def _check_groups(groups, c_in, c_out=None):
    """``groups`` divides the input channels and (if given: a transposed conv
    derives them) the output channels."""
    groups = as_positive_int(groups, "groups")
    if c_in % groups:
        raise ValueError(f"groups={groups} must divide the input channels C_in={c_in}")
    if c_out is not None and c_out % groups:
        raise ValueError(f"groups={groups} must divide the output channels C_out={c_out}")
    return groups


def _conv_config(x, weight, bias, stride, padding, dilation, groups, nd):
    """Validate a convolution call; return (x, weight, bias, config, output spatial shape)."""
    x = as_float_array(x, "x")
    weight = as_float_array(weight, "weight")
    check_ndim(x, "x", nd + 2, LAYOUT[nd])
    check_ndim(weight, "weight", nd + 2, _WEIGHT_LAYOUT[nd])
    if bias is not None:
        bias = as_float_array(bias, "bias")
    check_same_dtype(x=x, weight=weight, bias=bias)
    c_in, c_out = x.shape[1], weight.shape[0]
    if c_in < 1:
        raise ValueError(f"x must have at least one channel, got shape {x.shape}")
    if c_out < 1 or any(k < 1 for k in weight.shape[2:]):
        raise ValueError(f"weight must have C_out >= 1 and kernel sizes >= 1, got shape {weight.shape}")
    groups = _check_groups(groups, c_in, c_out)
    if weight.shape[1] * groups != c_in:
        raise ValueError(
            f"weight.shape[1]={weight.shape[1]} must equal C_in/groups={c_in}/{groups}"
            f" (weight shape {weight.shape}, x shape {x.shape})"
        )
    if bias is not None and bias.shape != (c_out,):
        raise ValueError(f"bias must have shape ({c_out},) (C_out), got {bias.shape}")
    cfg = _Config()
    cfg.nd = nd
    cfg.kernel = tuple(weight.shape[2:])
    cfg.stride = as_positive_tuple(stride, nd, "stride")
    cfg.dilation = as_positive_tuple(dilation, nd, "dilation")
    cfg.pad_before, cfg.pad_after = _conv_padding(padding, nd, cfg.kernel, cfg.dilation, cfg.stride)
    cfg.groups = groups
    cfg.output_padding = (0,) * nd
    out = tuple(
        shapes.conv_output_size(size, k, s, (pb, pa), d)
        for size, k, s, pb, pa, d in zip(x.shape[2:], cfg.kernel, cfg.stride,
                                           cfg.pad_before, cfg.pad_after, cfg.dilation)
    )
    return x, weight, bias, cfg, out


def _conv_transpose_config(x, weight, bias, stride, padding, output_padding, groups, dilation, nd):
    """Validate a transposed-convolution call; return (x, weight, bias, config, output spatial shape)."""
    x = as_float_array(x, "x")
    weight = as_float_array(weight, "weight")
    check_ndim(x, "x", nd + 2, LAYOUT[nd])
    check_ndim(weight, "weight", nd + 2, _T_WEIGHT_LAYOUT[nd])
    if bias is not None:
        bias = as_float_array(bias, "bias")
    check_same_dtype(x=x, weight=weight, bias=bias)
    c_in = x.shape[1]
    if c_in < 1:
        raise ValueError(f"x must have at least one channel, got shape {x.shape}")
    if weight.shape[1] < 1 or any(k < 1 for k in weight.shape[2:]):
        raise ValueError(f"weight must have C_out/groups >= 1 and kernel sizes >= 1, got shape {weight.shape}")
    if weight.shape[0] != c_in:
        raise ValueError(
            f"weight.shape[0]={weight.shape[0]} must equal the input channels C_in={c_in} "
            f"(transposed conv weight layout {_T_WEIGHT_LAYOUT[nd]}; x shape {x.shape})"
        )
    groups = _check_groups(groups, c_in)
    c_out = weight.shape[1] * groups
    if bias is not None and bias.shape != (c_out,):
        raise ValueError(
            f"bias must have shape ({c_out},) (C_out = weight.shape[1] * groups), got {bias.shape}"
        )
    if isinstance(padding, str):
        raise ValueError(f"padding must be an int or a tuple of ints for a transposed conv, got {padding!r}")
    cfg = _Config()
    cfg.nd = nd
    cfg.kernel = tuple(weight.shape[2:])
    cfg.stride = as_positive_tuple(stride, nd, "stride")
    cfg.dilation = as_positive_tuple(dilation, nd, "dilation")
    cfg.pad_before = cfg.pad_after = as_tuple(padding, nd, "padding", minimum=0)
    cfg.output_padding = as_tuple(output_padding, nd, "output_padding", minimum=0)
    cfg.groups = groups
    out = tuple(
        shapes.conv_transpose_output_size(size, k, s, p, op, d)
        for size, k, s, p, op, d in zip(x.shape[2:], cfg.kernel, cfg.stride, cfg.pad_before,
                                          cfg.output_padding, cfg.dilation)
    )
    return x, weight, bias, cfg, out


def _as_grad_output(grad_output, like, expected_shape):
    grad_output = as_float_array(grad_output, "grad_output")
    check_ndim(grad_output, "grad_output", like.ndim, LAYOUT[like.ndim - 2])
    check_same_dtype(grad_output=grad_output, x=like)
    check_shape_equal(grad_output, expected_shape, "grad_output")
    return grad_output


# ---------------------------------------------------------------------------
# work plans: tiles and workspaces. They depend on the shapes alone, never on
# the number of threads (and no output element's sum depends on the plan's
# cut into items), so results are bitwise the same for any thread count.
# ---------------------------------------------------------------------------

# Batch chunks of the weight gradient, whose partial sums are added in order:
# enough for a few threads, few enough that the partials stay small.
_MAX_BATCH_CHUNKS = 8


def _chunk_budget(output_elements):
    """Elements one chunk's workspace may hold: half the call's output, so that
    on two threads the workspace is no larger than the output."""
    return max(output_elements // 2, 1)


def _is_pointwise(weight_shape, geometry, in_hw, out_hw):
    """A 1x1, stride-1, unpadded conv over the whole input needs no unfolding:
    the input plane itself is the (K, P) matrix. (A transposed conv with
    dilation can ask for fewer output rows than the input has; not that.)"""
    sH, sW, pH, pW, _, _ = geometry
    return (weight_shape[2:] == (1, 1) and (sH, sW, pH, pW) == (1, 1, 0, 0)
            and tuple(in_hw) == tuple(out_hw))


# Direct loops beat register tiles of one input channel per group while the
# output channels per group are few (a tile of 8 or 16 channels would be mostly
# empty). Measured on the reference machine (N=32, 64 groups, 32x32, 3x3): at 1
# output per group direct 1.6 ms against 3.3 forward; at 2 even; at 3 or more
# the tiles win.
_DIRECT_MAX_OUT_PER_GROUP = 2


# The input gradient as a flipped-kernel conv has C_in/G outputs per group;
# with fewer than this, its register tiles would be mostly empty, and GEMM +
# col2im is faster.
_FLIP_MIN_IN_PER_GROUP = 8


def _direct(c_in_g, c_out_g):
    """Whether a conv with these channels per group runs the direct depthwise kernels."""
    return c_in_g == 1 and c_out_g <= _DIRECT_MAX_OUT_PER_GROUP


def _channel_block(c_in_g, taps, pixels, budget):
    """The largest divisor of C_in/G whose unfolded block (block * taps rows of
    ``pixels``) fits in ``budget`` elements; at least 1."""
    for block in range(c_in_g, 0, -1):
        if c_in_g % block == 0 and block * taps * pixels <= budget:
            return block
    return 1


# An item of the blocked forward copies the input rows it needs into a buffer of
# at most about this many elements (512 KB of float32), which stays in a core's
# L2 cache while every block of output channels streams over it.
_BLOCKED_ITEM_ELEMENTS = 1 << 17
# Items wanted per call, so that small batches still share out among threads.
_BLOCKED_MIN_ITEMS = 8
# Output channels of a forward register tile (by two vectors of outputs).
_FORWARD_TILE_CHANNELS = 8
# Weight-gradient tiles: output channels x taps (24 vector accumulators), and
# for one output channel per group (depthwise) 1 x 12.
_REDUCE_TILE, _REDUCE_TILE_DEPTHWISE = (4, 6), (1, 12)
# Pixel vectors a weight-gradient tile sums before its final reduction (the
# samples of a 1-D conv are few pixels each: several go into one tile).
_REDUCE_MIN_RUNS = 128
# ... and at most about this many elements of phase planes for those samples
# (1 MB of float32, a core's L2 on the reference machine): 1-D samples are
# small, and more of them per tile ran the conv1d case's weight gradient 7% faster.
_REDUCE_ITEM_ELEMENTS = 1 << 18


@functools.lru_cache(maxsize=256)
def _blocked_plan(n_items, weight_shape, geometry, h_out, w_out, whole_sample=False):
    """(rows per item, Hq, Wq, offs) of the blocked forward; see
    ``conv_forward_blocked``. ``whole_sample``: items are whole samples (the
    weight gradient's). Cached (small convs are called often); offs is shared:
    never written."""
    _, c_in_g, kH, kW = weight_shape
    sH, sW, _, _, dH, dW = geometry
    qh, qw = (kH - 1) * dH // sH, (kW - 1) * dW // sW
    Wq = w_out + qw
    tiles = min(h_out, -(-_BLOCKED_MIN_ITEMS // max(n_items, 1)))
    fit = _BLOCKED_ITEM_ELEMENTS // (c_in_g * sH * sW * Wq) - qh
    tiles = max(tiles, -(-h_out // max(fit, 1)))
    rows = h_out if whole_sample else -(-h_out // tiles)
    Hq = rows + qh
    i, j = np.divmod(np.arange(kH) * dH, sH), np.divmod(np.arange(kW) * dW, sW)
    # tap (c, i, j) reads phase (i*dH % sH, j*dW % sW) at row i*dH // sH, column j*dW // sW
    phase = (i[1][:, None] * sW + j[1][None, :]) * (Hq * Wq)
    shift = i[0][:, None] * Wq + j[0][None, :]
    plane = np.arange(c_in_g)[:, None, None] * (sH * sW * Hq * Wq)
    offs = (plane + (phase + shift)[None]).reshape(-1).astype(np.int64)
    return rows, Hq, Wq, offs


def _conv_forward(x, weight, bias, geometry, groups, out):
    """out[:] = conv(x, weight) + bias on the 2-D views; out: (N, C_out, H_out, W_out)."""
    N, C_out, H_out, W_out = out.shape
    _, C_in_g, kH, kW = weight.shape
    C_out_g = C_out // groups
    K = C_in_g * kH * kW
    has_bias = bias is not None
    if _direct(C_in_g, C_out_g):
        b = bias if has_bias else np.zeros(0, dtype=x.dtype)
        call(_k.depthwise_forward, x, weight, b, has_bias, *geometry, out)
        return out
    sH, sW, pH, pW, _, _ = geometry
    MR = _FORWARD_TILE_CHANNELS
    NR = 2 * 64 // x.dtype.itemsize
    blocks = -(-C_out_g // MR)
    # (G, B, K, MR): MR output channels per block, tap-major, zero rows past C_out/G
    w_packed = np.zeros((groups, blocks * MR, K), dtype=x.dtype)
    w_packed[:, :C_out_g] = weight.reshape(groups, C_out_g, K)
    w_packed = np.ascontiguousarray(w_packed.reshape(groups, blocks, MR, K).transpose(0, 1, 3, 2))
    b_packed = np.zeros((groups, blocks * MR), dtype=x.dtype)
    if has_bias:
        b_packed[:, :C_out_g] = bias.reshape(groups, C_out_g)
    b_packed = b_packed.reshape(groups, blocks, MR)
    rows, Hq, Wq, offs = _blocked_plan(N * groups, weight.shape, geometry, H_out, W_out)
    with kernel_chunks(max(out.size, x.size)) as T:
        phase_ws = np.empty((T, C_in_g * sH * sW * Hq * Wq + NR + Wq), dtype=x.dtype)
        _k.conv_forward_blocked(x, w_packed, b_packed, has_bias, sH, sW, pH, pW, offs, rows,
                                Hq, Wq, out, phase_ws)
    return out


@functools.lru_cache(maxsize=256)
def _phase_taps(k, s, p, d, size):
    """The 1-D plan of one axis of the input gradient cut into its s phases.

    An input position i (padded: u = i + p) receives grad_output[o] * w[t] for
    u = o*s + t*d, so the taps of phase rho = u mod s are those with
    t*d = rho (mod s), and within a phase the sum is a stride-1 correlation of
    grad_output with those taps in reverse. Returns, for each phase with at
    least one tap and one position: (first position i0, number of positions,
    taps reversed, padding, dilation) of that correlation, whose outputs are
    positions i0, i0 + s, ...
    """
    plans = []
    for rho in range(s):
        taps = [t for t in range(k) if (t * d) % s == rho]
        i0 = (rho - p) % s
        count = len(range(i0, size, s))
        if not taps or count == 0:
            continue
        q = [(t * d - rho) // s for t in taps]
        dil = q[1] - q[0] if len(q) > 1 else 1
        m0 = (i0 + p - rho) // s
        plans.append((i0, count, taps[::-1], q[0] + (len(q) - 1) * dil - m0, dil))
    return plans


def _conv_input_grad(grad_output, weight, geometry, groups, shape, bias=None):
    """Conv's input gradient (= the transposed conv of grad_output), of ``shape``,
    plus ``bias`` per channel when given (the transposed conv's)."""
    C_out = grad_output.shape[1]
    C_in_g = weight.shape[1]
    C_out_g = C_out // groups
    if C_in_g >= _FLIP_MIN_IN_PER_GROUP and not _direct(C_out_g, C_in_g):
        return _conv_input_grad_phases(grad_output, weight, geometry, groups, shape, bias)
    grad_input = np.zeros(shape, dtype=grad_output.dtype)
    _conv_input_grad_small(grad_output, weight, geometry, groups, grad_input)
    if bias is not None:
        call(_k.add_bias, grad_input, bias)
    return grad_input


def _conv_input_grad_phases(grad_output, weight, geometry, groups, shape, bias):
    """Conv's input gradient as sH*sW stride-1 convs, one per phase.

    Each phase (the input positions congruent to given residues) is a
    correlation of grad_output with a sub-kernel, flipped and with its channel
    axes swapped per group (see ``_phase_taps``). It runs on the blocked
    forward, bias included, and is then spread into its place. With stride 1
    this is the single flipped-kernel conv, written in place. Positions that
    no tap reaches are zero (plus the bias).
    """
    N = grad_output.shape[0]
    C_out, C_in_g, kH, kW = weight.shape
    C_out_g = C_out // groups
    sH, sW, pH, pW, dH, dW = geometry
    H, W = shape[2:]
    plans_h = _phase_taps(kH, sH, pH, dH, H)
    plans_w = _phase_taps(kW, sW, pW, dW, W)
    covered = (sum(plan[1] for plan in plans_h) == H and sum(plan[1] for plan in plans_w) == W)
    grad_input = np.empty(shape, dtype=grad_output.dtype)
    if not covered:
        grad_input[:] = 0.0
        if bias is not None:
            grad_input += bias.reshape(-1, 1, 1)
    w_g = weight.reshape(groups, C_out_g, C_in_g, kH, kW)
    for h0, rows, taps_h, pad_h, dil_h in plans_h:
        for w0, cols, taps_w, pad_w, dil_w in plans_w:
            sub = w_g[:, :, :, taps_h][:, :, :, :, taps_w]
            sub = np.ascontiguousarray(sub.transpose(0, 2, 1, 3, 4)).reshape(
                groups * C_in_g, C_out_g, len(taps_h), len(taps_w))
            sub_geometry = (1, 1, pad_h, pad_w, dil_h, dil_w)
            if (sH, sW) == (1, 1):
                _conv_forward(grad_output, sub, bias, sub_geometry, groups, grad_input)
                continue
            phase = np.empty((N, groups * C_in_g, rows, cols), dtype=grad_output.dtype)
            _conv_forward(grad_output, sub, bias, sub_geometry, groups, phase)
            call(_k.spread_phase, phase, grad_input, h0, w0, sH, sW)
    return grad_input


def _conv_input_grad_small(grad_output, weight, geometry, groups, grad_input):
    """grad_input += conv's input gradient, for few input channels per group
    (where the flipped conv would be a matrix-vector product): GEMM and
    col2im, or the direct depthwise kernels. grad_input comes zero-filled.
    """
    N, C_out, H_out, W_out = grad_output.shape
    _, C_in_g, kH, kW = weight.shape
    C_out_g = C_out // groups
    P = H_out * W_out
    pointwise = _is_pointwise(weight.shape, geometry, grad_input.shape[2:], grad_output.shape[2:])
    sH, sW, pH, pW, dH, dW = geometry
    direct = _direct(C_in_g, C_out_g)
    # (the flipped kernel of a depthwise conv has one input channel per group:
    # its input gradient is again a direct depthwise conv)
    flip = (not pointwise and (sH, sW) == (1, 1) and pH <= dH * (kH - 1) and pW <= dW * (kW - 1)
            and direct and C_out_g == 1)
    if direct and not flip:
        call(_k.depthwise_input_grad, grad_output, weight, *geometry, grad_input)
        return grad_input
    if flip:
        flipped = np.ascontiguousarray(
            weight.reshape(groups, C_out_g, C_in_g, kH, kW)[:, :, :, ::-1, ::-1]
            .transpose(0, 2, 1, 3, 4)).reshape(groups * C_in_g, C_out_g, kH, kW)
        padding = (dH * (kH - 1) - pH, dW * (kW - 1) - pW)
        return _conv_forward(grad_output, flipped, None, (1, 1) + padding + (dH, dW), groups,
                             grad_input)
    c_block = C_in_g if pointwise else _channel_block(C_in_g, kH * kW, P,
                                                      _chunk_budget(grad_input.size))
    blocks = C_in_g // c_block
    # (G, blocks, Kb, C_out/G): each block's rows of W^T, contiguous for BLAS
    weight_t = np.ascontiguousarray(
        weight.reshape(groups, C_out_g, blocks, c_block * kH * kW).transpose(0, 2, 3, 1))
    with kernel_chunks(max(grad_input.size, grad_output.size)) as T:
        col_ws = np.empty((T, 0 if pointwise else c_block * kH * kW, P), dtype=grad_output.dtype)
        _k.conv_input_grad(grad_output, weight_t, kH, kW, *geometry, grad_input, pointwise, col_ws)
    return grad_input


@functools.lru_cache(maxsize=256)
def _reduce_plan(N, weight_shape, geometry, groups, H_out, W_out, itemsize, budget_elements):
    """The weight gradient's plan (shapes only, cached: small convs are called
    often): (MR, NK, chunks, Hq, Wq, offs, S, runs, full, splits); see
    ``conv_weight_grad_blocked``. The arrays are shared: never written."""
    C_out, C_in_g, kH, kW = weight_shape
    C_out_g = C_out // groups
    P = H_out * W_out
    sH, sW = geometry[:2]
    MR, NK = _REDUCE_TILE_DEPTHWISE if C_out_g == 1 else _REDUCE_TILE
    # partial sums: at most a quarter of the budget
    chunks = max(1, min(N, _MAX_BATCH_CHUNKS,
                        budget_elements // (4 * C_out * C_in_g * kH * kW)))
    if chunks > 1 and (chunks * groups) % 2:
        chunks -= 1                 # an even number of items: equal shares on 2 threads
    _, Hq, Wq, offs = _blocked_plan(N, weight_shape, geometry, H_out, W_out, whole_sample=True)
    offs = np.concatenate([offs, np.zeros(NK, dtype=np.int64)])
    lanes = 64 // itemsize
    # (dy_off, x_off, length) of each vector of output pixels, row by row, for
    # S samples at a time
    per_row = -(-W_out // lanes)
    sample_len = C_in_g * sH * sW * Hq * Wq
    # (and each thread's planes of S samples at most a quarter of the budget)
    S = max(1, min(N, _REDUCE_MIN_RUNS // (H_out * per_row), _REDUCE_ITEM_ELEMENTS // sample_len,
                   budget_elements // (4 * sample_len)))
    s, oh, ow0 = np.unravel_index(np.arange(S * H_out * per_row), (S, H_out, per_row))
    ow0 = ow0 * lanes
    runs = np.stack([s * (C_out * P) + oh * W_out + ow0,
                     s * sample_len + oh * Wq + ow0,
                     np.minimum(lanes, W_out - ow0)], axis=1)
    # whole vectors first, then the short ones (loaded with masks)
    is_full = runs[:, 2] == lanes
    full = int(is_full.sum()) // S
    runs = np.ascontiguousarray(np.concatenate([runs[is_full], runs[~is_full]]), dtype=np.int64)
    co_blocks = -(-C_out_g // MR)
    # a single item (one chunk, one group) is split in two ranges of channel
    # blocks, for two threads; a split costs a second copy of the samples' planes
    splits = 2 if chunks * groups == 1 and co_blocks > 1 else 1
    return MR, NK, chunks, Hq, Wq, offs, S, runs, full, splits


def _conv_weight_grad(x, grad_output, geometry, groups, weight_shape, budget_elements):
    """The conv weight gradient (weight_shape) of input x and grad_output.

    ``budget_elements``: the size of the backward's own output (its grad_input),
    which bounds the workspace.
    """
    N = x.shape[0]
    C_out, C_in_g, kH, kW = weight_shape
    C_out_g = C_out // groups
    H_out, W_out = grad_output.shape[2:]
    sH, sW, pH, pW, _, _ = geometry
    K = C_in_g * kH * kW
    MR, NK, chunks, Hq, Wq, offs, S, runs, full, splits = _reduce_plan(
        N, weight_shape, geometry, groups, H_out, W_out, x.dtype.itemsize, budget_elements)
    lanes = 64 // x.dtype.itemsize
    partial = np.zeros((chunks, groups, C_out_g, K), dtype=x.dtype)
    with kernel_chunks(max(x.size, grad_output.size)) as T:
        phase_ws = np.empty((T, S * C_in_g * sH * sW * Hq * Wq + lanes + Wq), dtype=x.dtype)
        _k.conv_weight_grad_blocked(x, grad_output, sH, sW, pH, pW, offs, Hq, Wq, runs, full, S,
                                    splits, partial, phase_ws, MR, NK)
    grad_weight = partial[0]
    for b in range(1, chunks):
        grad_weight += partial[b]
    return grad_weight.reshape(weight_shape)


# ---------------------------------------------------------------------------
# shared bodies (nd = 1 or 2)
# ---------------------------------------------------------------------------

def _conv(x, weight, bias, stride, padding, dilation, groups, nd):
    x, weight, bias, cfg, out = _conv_config(x, weight, bias, stride, padding, dilation, groups, nd)
    H_out, W_out = (1,) + out if nd == 1 else out
    if kernels.active() == "naive":
        from deconv.kernels import naive
        y = naive.conv2d_forward(to_2d(x), to_2d(weight), bias, *cfg.as_2d(), cfg.groups,
                                 H_out, W_out)
        return from_2d(y, nd)
    y = np.empty((x.shape[0], weight.shape[0], H_out, W_out), dtype=x.dtype)
    _conv_forward(to_2d(x), to_2d(weight), bias, cfg.as_2d(), cfg.groups, y)
    return from_2d(y, nd)


def _conv_backward(grad_output, x, weight, stride, padding, dilation, groups, nd):
    x, weight, _, cfg, out = _conv_config(x, weight, None, stride, padding, dilation, groups, nd)
    grad_output = _as_grad_output(grad_output, x, (x.shape[0], weight.shape[0]) + out)
    x2, w2, gy2 = to_2d(x), to_2d(weight), to_2d(grad_output)
    geometry = cfg.as_2d()
    if kernels.active() == "naive":
        from deconv.kernels import naive
        grad_input = naive.conv2d_input_grad(gy2, w2, *geometry, cfg.groups, *x2.shape[2:])
        grad_weight = naive.conv2d_weight_grad(gy2, x2, *geometry, cfg.groups, *w2.shape[2:])
        grad_bias = naive.conv2d_bias_grad(gy2)
        return from_2d(grad_input, nd), from_2d(grad_weight, nd), grad_bias
    grad_input = _conv_input_grad(gy2, w2, geometry, cfg.groups, x2.shape)
    grad_weight = _conv_weight_grad(x2, gy2, geometry, cfg.groups, w2.shape, x2.size)
    grad_bias = call(_k.bias_grad, gy2)
    return from_2d(grad_input, nd), from_2d(grad_weight, nd), grad_bias


def _conv_transpose(x, weight, bias, stride, padding, output_padding, groups, dilation, nd):
    x, weight, bias, cfg, out = _conv_transpose_config(
        x, weight, bias, stride, padding, output_padding, groups, dilation, nd)
    H_out, W_out = (1,) + out if nd == 1 else out
    if kernels.active() == "naive":
        from deconv.kernels import naive
        y = naive.conv_transpose2d_forward(to_2d(x), to_2d(weight), bias, *cfg.as_2d(),
                                           cfg.groups, H_out, W_out)
        return from_2d(y, nd)
    # The transposed conv is the adjoint of the conv whose weight has this
    # very layout: (C_in of the transposed conv = C_out of that conv, ...).
    y = _conv_input_grad(to_2d(x), to_2d(weight), cfg.as_2d(), cfg.groups,
                         (x.shape[0], weight.shape[1] * cfg.groups, H_out, W_out), bias)
    return from_2d(y, nd)


def _conv_transpose_backward(grad_output, x, weight, stride, padding, output_padding, groups,
                             dilation, nd):
    x, weight, _, cfg, out = _conv_transpose_config(
        x, weight, None, stride, padding, output_padding, groups, dilation, nd)
    c_out = weight.shape[1] * cfg.groups
    grad_output = _as_grad_output(grad_output, x, (x.shape[0], c_out) + out)
    x2, w2, gy2 = to_2d(x), to_2d(weight), to_2d(grad_output)
    geometry = cfg.as_2d()
    if kernels.active() == "naive":
        from deconv.kernels import naive
        grad_input = naive.conv_transpose2d_input_grad(gy2, w2, *geometry, cfg.groups,
                                                       *x2.shape[2:])
        grad_weight = naive.conv_transpose2d_weight_grad(gy2, x2, *geometry, cfg.groups,
                                                         *w2.shape[2:])
        grad_bias = naive.conv_transpose2d_bias_grad(gy2)
        return from_2d(grad_input, nd), from_2d(grad_weight, nd), grad_bias
    # Adjoint of the adjoint: the input gradient is an ordinary conv of
    # grad_output, evaluated at exactly the input's size (with
    # output_padding >= stride the conv formula would give one more row).
    grad_input = _conv_forward(gy2, w2, None, geometry, cfg.groups,
                               np.empty(x2.shape, dtype=x.dtype))
    # One weight-gradient kernel serves both: here grad_output plays the
    # conv's input and x plays the conv's output gradient.
    grad_weight = _conv_weight_grad(gy2, x2, geometry, cfg.groups, w2.shape, x2.size)
    grad_bias = call(_k.bias_grad, gy2)
    return from_2d(grad_input, nd), from_2d(grad_weight, nd), grad_bias


# ---------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------

def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution (cross-correlation), as ``torch.nn.functional.conv2d``.

    Parameters
    ----------
    x : ndarray, shape (N, C_in, H, W)
        float32 or float64.
    weight : ndarray, shape (C_out, C_in/groups, kH, kW)
    bias : ndarray, shape (C_out,), optional
    stride : int or (int, int)
    padding : int, (int, int), 'valid' or 'same'
        Zero padding on both sides. ``'same'`` (stride 1 only) pads
        ``d*(k-1)`` in total, the odd extra element at the bottom/right.
    dilation : int or (int, int)
        Spacing between kernel taps; 1 means none.
    groups : int
        Channels are split into ``groups`` independent convolutions.

    Returns
    -------
    y : ndarray, shape (N, C_out, H_out, W_out), dtype of ``x``

    Notes
    -----
    ``y[n, o, i, j] = bias[o] + sum_{c, a, b} weight[o, c, a, b] *
    x_pad[n, g*C_in/groups + c, i*sH + a*dH, j*sW + b*dW]`` with ``g`` the
    group of ``o``, and

    ``H_out = floor((H + pH_before + pH_after - dH*(kH-1) - 1) / sH) + 1``

    (likewise ``W_out``); see :func:`deconv.shapes.conv_output_size`.

    Examples
    --------
    >>> import numpy as np, deconv
    >>> x = np.ones((1, 1, 4, 4), dtype=np.float32)
    >>> w = np.ones((2, 1, 3, 3), dtype=np.float32)
    >>> deconv.conv2d(x, w, padding=1)[0, 0]
    array([[4., 6., 6., 4.],
           [6., 9., 9., 6.],
           [6., 9., 9., 6.],
           [4., 6., 6., 4.]], dtype=float32)
    """
    return _conv(x, weight, bias, stride, padding, dilation, groups, 2)


def conv1d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-D convolution (cross-correlation), as ``torch.nn.functional.conv1d``.

    Parameters
    ----------
    x : ndarray, shape (N, C_in, L)
    weight : ndarray, shape (C_out, C_in/groups, kL)
    bias : ndarray, shape (C_out,), optional
    stride, dilation, groups : int
    padding : int, (int,), 'valid' or 'same'
        ``'same'`` (stride 1 only) puts the odd extra element on the right.

    Returns
    -------
    y : ndarray, shape (N, C_out, L_out)

    Notes
    -----
    ``L_out = floor((L + p_before + p_after - d*(k-1) - 1) / s) + 1``.

    Examples
    --------
    >>> import numpy as np, deconv
    >>> deconv.conv1d(np.arange(5.0).reshape(1, 1, 5), np.array([[[1.0, -1.0]]]))
    array([[[-1., -1., -1., -1.]]])
    """
    return _conv(x, weight, bias, stride, padding, dilation, groups, 1)


@refuse_positional_bias
def conv2d_backward(grad_output, x, weight, *, stride=1, padding=0, dilation=1, groups=1):
    """Gradients of :func:`conv2d` with respect to its input, weight and bias.

    Parameters
    ----------
    grad_output : ndarray, shape (N, C_out, H_out, W_out)
        Gradient of the loss with respect to ``conv2d(x, weight, ...)``.
    x : ndarray, shape (N, C_in, H, W)
    weight : ndarray, shape (C_out, C_in/groups, kH, kW)
    stride, padding, dilation, groups : keyword-only
        As given to :func:`conv2d`. The backward takes no ``bias``: the
        gradients do not depend on it, and ``grad_bias`` is always returned.

    Returns
    -------
    grad_input : ndarray, shape (N, C_in, H, W)
    grad_weight : ndarray, shape (C_out, C_in/groups, kH, kW)
    grad_bias : ndarray, shape (C_out,)

    Notes
    -----
    ``H_out = floor((H + pH_before + pH_after - dH*(kH-1) - 1) / sH) + 1``
    (likewise ``W_out``), as in :func:`conv2d`.

    ``grad_input`` is the transposed convolution of ``grad_output`` with the
    same weight (rows of ``x`` that no window reaches get zero);
    ``grad_weight[o, c, a, b] = sum_{n, i, j} grad_output[n, o, i, j] *
    x_pad[n, c', i*sH + a*dH, j*sW + b*dW]``; ``grad_bias`` sums
    ``grad_output`` over the batch and the image.

    Examples
    --------
    >>> import numpy as np, deconv
    >>> x = np.ones((1, 1, 3, 3)); w = np.ones((1, 1, 2, 2))
    >>> gx, gw, gb = deconv.conv2d_backward(np.ones((1, 1, 2, 2)), x, w)
    >>> gx[0, 0]
    array([[1., 2., 1.],
           [2., 4., 2.],
           [1., 2., 1.]])
    >>> gb
    array([4.])
    """
    return _conv_backward(grad_output, x, weight, stride, padding, dilation, groups, 2)


@refuse_positional_bias
def conv1d_backward(grad_output, x, weight, *, stride=1, padding=0, dilation=1, groups=1):
    """Gradients of :func:`conv1d` with respect to its input, weight and bias.

    Parameters
    ----------
    grad_output : ndarray, shape (N, C_out, L_out)
    x : ndarray, shape (N, C_in, L)
    weight : ndarray, shape (C_out, C_in/groups, kL)
    stride, padding, dilation, groups : keyword-only
        As given to :func:`conv1d` (no ``bias``: see :func:`conv2d_backward`).

    Returns
    -------
    grad_input : ndarray, shape (N, C_in, L)
    grad_weight : ndarray, shape (C_out, C_in/groups, kL)
    grad_bias : ndarray, shape (C_out,)

    Notes
    -----
    ``L_out = floor((L + p_before + p_after - d*(k-1) - 1) / s) + 1``, as in
    :func:`conv1d`.

    See :func:`conv2d_backward`; ``L_out`` as in :func:`conv1d`.

    Examples
    --------
    >>> import numpy as np, deconv
    >>> gx, gw, gb = deconv.conv1d_backward(np.ones((1, 1, 4)), np.ones((1, 1, 5)),
    ...                                     np.array([[[1.0, -1.0]]]))
    >>> gx
    array([[[ 1.,  0.,  0.,  0., -1.]]])
    """
    return _conv_backward(grad_output, x, weight, stride, padding, dilation, groups, 1)


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """2-D transposed convolution ("deconvolution"), as ``torch.nn.functional.conv_transpose2d``.

    The adjoint of :func:`conv2d`: each input pixel scatters a copy of the
    kernel, scaled by its value, into the output at stride ``s``.

    Parameters
    ----------
    x : ndarray, shape (N, C_in, H, W)
    weight : ndarray, shape (C_in, C_out/groups, kH, kW)
    bias : ndarray, shape (C_out,), optional
    stride : int or (int, int)
    padding : int or (int, int)
        Removes ``padding`` rows/columns from both sides of the full output
        (the conv whose adjoint this is had this zero padding).
    output_padding : int or (int, int)
        Extra rows/columns added at the bottom/right, ``< max(stride, dilation)``;
        it picks which of the input sizes of the strided conv is produced.
    groups : int
    dilation : int or (int, int)

    Returns
    -------
    y : ndarray, shape (N, C_out, H_out, W_out)

    Notes
    -----
    ``H_out = (H-1)*sH - 2*pH + dH*(kH-1) + output_padding_H + 1``
    (likewise ``W_out``); see :func:`deconv.shapes.conv_transpose_output_size`
    and :func:`deconv.shapes.inverse_output_padding`.

    Examples
    --------
    >>> import numpy as np, deconv
    >>> x = np.ones((1, 1, 2, 2)); w = np.ones((1, 1, 3, 3))
    >>> deconv.conv_transpose2d(x, w, stride=2)[0, 0]
    array([[1., 1., 2., 1., 1.],
           [1., 1., 2., 1., 1.],
           [2., 2., 4., 2., 2.],
           [1., 1., 2., 1., 1.],
           [1., 1., 2., 1., 1.]])
    """
    return _conv_transpose(x, weight, bias, stride, padding, output_padding, groups, dilation, 2)


def conv_transpose1d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """1-D transposed convolution, as ``torch.nn.functional.conv_transpose1d``.

    Parameters
    ----------
    x : ndarray, shape (N, C_in, L)
    weight : ndarray, shape (C_in, C_out/groups, kL)
    bias : ndarray, shape (C_out,), optional
    stride, padding, output_padding, groups, dilation : int
        As in :func:`conv_transpose2d`.

    Returns
    -------
    y : ndarray, shape (N, C_out, L_out)

    Notes
    -----
    ``L_out = (L-1)*s - 2p + d*(k-1) + output_padding + 1``.

    Examples
    --------
    >>> import numpy as np, deconv
    >>> deconv.conv_transpose1d(np.array([[[1.0, 2.0]]]), np.array([[[1.0, 1.0, 1.0]]]), stride=2)
    array([[[1., 1., 3., 2., 2.]]])
    """
    return _conv_transpose(x, weight, bias, stride, padding, output_padding, groups, dilation, 1)


@refuse_positional_bias
def conv_transpose2d_backward(grad_output, x, weight, *, stride=1, padding=0, output_padding=0,
                              groups=1, dilation=1):
    """Gradients of :func:`conv_transpose2d` with respect to input, weight and bias.

    Parameters
    ----------
    grad_output : ndarray, shape (N, C_out, H_out, W_out)
    x : ndarray, shape (N, C_in, H, W)
    weight : ndarray, shape (C_in, C_out/groups, kH, kW)
    stride, padding, output_padding, groups, dilation : keyword-only
        As given to :func:`conv_transpose2d` (no ``bias``: see :func:`conv2d_backward`).

    Returns
    -------
    grad_input : ndarray, shape (N, C_in, H, W)
        The ordinary convolution :func:`conv2d` of ``grad_output`` with ``weight``.
    grad_weight : ndarray, shape (C_in, C_out/groups, kH, kW)
    grad_bias : ndarray, shape (C_out,)

    Notes
    -----
    ``H_out = (H-1)*sH - 2*pH + dH*(kH-1) + output_padding_H + 1`` (likewise
    ``W_out``), as in :func:`conv_transpose2d`.

    Examples
    --------
    >>> import numpy as np, deconv
    >>> x = np.ones((1, 1, 2, 2)); w = np.ones((1, 1, 3, 3))
    >>> gx, gw, gb = deconv.conv_transpose2d_backward(np.ones((1, 1, 5, 5)), x, w, stride=2)
    >>> gx[0, 0]
    array([[9., 9.],
           [9., 9.]])
    """
    return _conv_transpose_backward(grad_output, x, weight, stride, padding, output_padding,
                                    groups, dilation, 2)


@refuse_positional_bias
def conv_transpose1d_backward(grad_output, x, weight, *, stride=1, padding=0, output_padding=0,
                              groups=1, dilation=1):
    """Gradients of :func:`conv_transpose1d` with respect to input, weight and bias.

    Parameters
    ----------
    grad_output : ndarray, shape (N, C_out, L_out)
    x : ndarray, shape (N, C_in, L)
    weight : ndarray, shape (C_in, C_out/groups, kL)
    stride, padding, output_padding, groups, dilation : keyword-only
        As given to :func:`conv_transpose1d` (no ``bias``: see :func:`conv2d_backward`).

    Returns
    -------
    grad_input : ndarray, shape (N, C_in, L)
    grad_weight : ndarray, shape (C_in, C_out/groups, kL)
    grad_bias : ndarray, shape (C_out,)

    Notes
    -----
    ``L_out = (L-1)*s - 2p + d*(k-1) + output_padding + 1``.

    Examples
    --------
    >>> import numpy as np, deconv
    >>> gx, gw, gb = deconv.conv_transpose1d_backward(
    ...     np.ones((1, 1, 5)), np.array([[[1.0, 2.0]]]), np.ones((1, 1, 3)), stride=2)
    >>> gx, gb
    (array([[[3., 3.]]]), array([5.]))
    """
    return _conv_transpose_backward(grad_output, x, weight, stride, padding, output_padding,
                                    groups, dilation, 1)
