"""Convolution and transposed convolution, 1-D and 2-D, forward and backward.

Public, validated wrappers around the kernels of :mod:`deconv.kernels.conv`.
Semantics, argument names and layouts are those of
``torch.nn.functional.conv{1,2}d`` and ``conv_transpose{1,2}d``:

* input ``(N, C_in, L)`` or ``(N, C_in, H, W)``;
* conv weight ``(C_out, C_in/groups, k...)``;
* transposed conv weight ``(C_in, C_out/groups, k...)``;
* "convolution" is cross-correlation (the kernel is not flipped);
* ``dilation=1`` means no dilation.

The 1-D functions run the 2-D kernels on a view with ``H = 1``; the 3-D
functions run them on batches of stacked depth slices (see the 3-D section).
"""

import functools

import numpy as np

from deconv import kernels
from deconv.kernels import conv as _k
from deconv.kernels import depth as _depth
from deconv.kernels import plan
from deconv.kernels.common import all_finite, compile_time
from deconv.functional import shapes
from deconv.functional.layout import aligned_empty, aligned_zeros, from_2d, to_2d
from deconv.kernels.threads import SMALL_WORK, call, kernel_chunks
from deconv.functional.validation import (
    LAYOUT,
    as_bool,
    as_float_array,
    as_output_size,
    as_positive_int,
    as_positive_tuple,
    as_tuple,
    check_bias,
    check_bytes,
    check_ndim,
    check_same_dtype,
    check_shape_equal,
    kernel_ready,
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
        # 3-D: the (H, W) part; the depth is walked by tap (see _depth_conv)
        return (self.stride[-2], self.stride[-1], self.pad_before[-2], self.pad_before[-1],
                self.dilation[-2], self.dilation[-1])


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
        raise ValueError(f"groups={groups} must divide the input channels C_in={c_in} (x.shape[1])")
    if c_out is not None and c_out % groups:
        raise ValueError(
            f"groups={groups} must divide the output channels C_out={c_out} (weight.shape[0])")
    return groups


def _conv_config(x, weight, bias, stride, padding, dilation, groups, nd):
    """Validate a convolution call; return (x, weight, bias, config, output spatial shape).

    The arrays come back checked, not yet copied: see :func:`_ready`."""
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
    check_bias(bias, c_out, "C_out = weight.shape[0]")
    cfg = _Config()
    cfg.nd = nd
    cfg.kernel = tuple(weight.shape[2:])
    cfg.stride = as_positive_tuple(stride, nd, "stride")
    cfg.dilation = as_positive_tuple(dilation, nd, "dilation")
    cfg.pad_before, cfg.pad_after = _conv_padding(padding, nd, cfg.kernel, cfg.dilation, cfg.stride)
    cfg.groups = groups
    cfg.output_padding = (0,) * nd
    try:
        out = tuple(
            shapes.conv_output_size(size, k, s, (pb, pa), d)
            for size, k, s, pb, pa, d in zip(x.shape[2:], cfg.kernel, cfg.stride,
                                               cfg.pad_before, cfg.pad_after, cfg.dilation)
        )
    except ValueError as err:               # the kernel size is the weight's
        raise ValueError(f"weight of shape {weight.shape} on x of shape {x.shape}: {err}") from None
    return x, weight, bias, cfg, out


def _conv_transpose_padding(padding, nd, kernel, dilation, stride):
    """Cropping as ``(before, after)`` tuples. 'same' is the adjoint of conv's
    'same': it crops what that conv pads, so the output keeps the input's size."""
    if not isinstance(padding, str):
        pad = as_tuple(padding, nd, "padding", minimum=0)
        return pad, pad
    if padding == "valid":
        return (0,) * nd, (0,) * nd
    if padding == "same":
        if any(s != 1 for s in stride):
            raise ValueError(
                f"padding='same' needs stride 1 for a transposed conv, got stride={stride}: "
                f"with stride s the output is about s times the input, never its size")
        pairs = [shapes.same_padding(k, d) for k, d in zip(kernel, dilation)]
        return tuple(p[0] for p in pairs), tuple(p[1] for p in pairs)
    raise ValueError(
        f"padding must be an int, a tuple of {nd} ints, 'valid' or 'same', got {padding!r}")


def output_padding_for(output_size, x_shape, c_out, kernel, stride, pad_before, pad_after,
                       dilation):
    """Per-axis output_padding that gives ``output_size`` (PyTorch's
    ConvTranspose rule: each size in [smallest, smallest + stride - 1]).

    The other arguments are normalised per-axis tuples; the ConvTranspose
    layers call this too (for their padding modes)."""
    nd = len(kernel)
    sizes = as_output_size(output_size, nd, (x_shape[0], c_out),
                           "(N, C_out) = (x.shape[0], weight.shape[1] * groups)")
    axes = ("L",) if nd == 1 else ("H", "W")
    out = []
    for i, (axis, size, L, k, s, pb, pa, d) in enumerate(zip(
            axes, sizes, x_shape[2:], kernel, stride, pad_before, pad_after, dilation)):
        try:
            out.append(shapes.conv_transpose_output_padding(
                size, L, k, s, pb if pb == pa else (pb, pa), d))
        except ValueError as err:
            raise ValueError(
                f"output_size={output_size!r} along axis {axis} (L = x.shape[{i + 2}], "
                f"kernel_size = weight.shape[{i + 2}]): {err}") from None
    return tuple(out)


def _conv_transpose_config(x, weight, bias, stride, padding, output_padding, groups, dilation, nd,
                           output_size=None):
    """Validate a transposed-convolution call; return (x, weight, bias, config, output
    spatial shape), the arrays checked, not yet copied (see :func:`_ready`)."""
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
    check_bias(bias, c_out, "C_out = weight.shape[1] * groups")
    cfg = _Config()
    cfg.nd = nd
    cfg.kernel = tuple(weight.shape[2:])
    cfg.stride = as_positive_tuple(stride, nd, "stride")
    cfg.dilation = as_positive_tuple(dilation, nd, "dilation")
    cfg.pad_before, cfg.pad_after = _conv_transpose_padding(padding, nd, cfg.kernel,
                                                            cfg.dilation, cfg.stride)
    cfg.output_padding = as_tuple(output_padding, nd, "output_padding", minimum=0)
    cfg.groups = groups
    if output_size is not None:
        if any(cfg.output_padding):
            raise ValueError(
                f"output_padding={output_padding!r} and output_size={output_size!r} both choose "
                f"the output size: give one (output_size sets output_padding)")
        cfg.output_padding = output_padding_for(output_size, x.shape, c_out, cfg.kernel,
                                                cfg.stride, cfg.pad_before, cfg.pad_after,
                                                cfg.dilation)
    elif isinstance(padding, str) and padding == "same" and any(cfg.output_padding):
        raise ValueError(
            f"output_padding={output_padding!r} must be 0 with padding='same' (the output "
            f"has the input's size)")
    out = tuple(
        shapes.conv_transpose_output_size(size, k, s, (pb, pa), op, d)
        for size, k, s, pb, pa, op, d in zip(x.shape[2:], cfg.kernel, cfg.stride, cfg.pad_before,
                                              cfg.pad_after, cfg.output_padding, cfg.dilation)
    )
    return x, weight, bias, cfg, out


def _ready(what, outputs, **arrays):
    """The last step of the checks: refuse ``outputs`` (``(shape, dtype)`` pairs,
    named by ``what``) over the byte cap, then make ``arrays`` (None passes through)
    kernel-ready, copying only now that every check of the call has passed."""
    check_bytes(what, *outputs)
    return [None if a is None else kernel_ready(a, name) for name, a in arrays.items()]


def _as_grad_output(grad_output, like, weight, expected_shape, cfg, op):
    """grad_output of ``op``'s output shape, which the message derives from x,
    weight and the options."""
    grad_output = as_float_array(grad_output, "grad_output")
    check_ndim(grad_output, "grad_output", like.ndim, LAYOUT[like.ndim - 2])
    check_same_dtype(grad_output=grad_output, x=like)
    padding = cfg.pad_before if cfg.pad_before == cfg.pad_after else \
        tuple(zip(cfg.pad_before, cfg.pad_after))
    options = f"stride={cfg.stride}, padding={padding}"
    if op.startswith("conv_transpose"):
        options += f", output_padding={cfg.output_padding}"
    options += f", dilation={cfg.dilation}, groups={cfg.groups}"
    check_shape_equal(grad_output, expected_shape, "grad_output",
                      f"{op}'s output for x of shape {like.shape}, weight of shape "
                      f"{weight.shape}, {options}")
    return grad_output


# ---------------------------------------------------------------------------
# work plans (deconv.kernels.plan) and the kernel calls: the operands packed
# for the kernels, tile shapes and workspaces taken from the plans (every tile
# and workspace size is defined in deconv.kernels.plan)
# ---------------------------------------------------------------------------

# 1x1 unpadded convs (ResNet's bottlenecks and shortcuts, MobileNet's
# pointwise layers): output pixel (i, j) reads input pixel (i*sH, j*sW) alone.
# A strided one is the stride-1 conv of the input's every sH-th row and sW-th
# column, and its input gradient that conv's, spread back; a stride-1 one
# treats each pixel alone, so its planes run re-cut into rows of whole vectors
# (plan.pointwise_rows: a batch of 28x28 planes as rows of 784, 49 full
# vectors, where 28 rows of 28 fill 7/8 of their vectors), and its forward
# reads the input in place (plan.reads_in_place).

#: the 1x1 geometry (sH, sW, pH, pW, dH, dW) of the pointwise passes
_POINTWISE = (1, 1, 0, 0, 1, 1)


def _unpadded_1x1(weight_shape, geometry):
    return tuple(weight_shape[2:]) == (1, 1) and tuple(geometry[2:4]) == (0, 0)


def _reads_inside(in_hw, out_hw, geometry):
    """Whether every output pixel of a 1x1 unpadded conv reads an input pixel
    (a phase of an input gradient may also read past the input's end, as
    zero)."""
    return all((n - 1) * s < size for n, s, size in zip(out_hw, geometry[:2], in_hw))


def _sampled(a, out_hw, stride):
    """a[:, :, ::sH, ::sW] cut to the out_hw pixels a 1x1 conv of that stride
    reads, C-contiguous: a view where it is one, else a copy."""
    (H_out, W_out), (sH, sW) = out_hw, stride
    view = a[:, :, :(H_out - 1) * sH + 1:sH, :(W_out - 1) * sW + 1:sW]
    if view.flags.c_contiguous:
        return view
    check_bytes("workspace", (view.shape, a.dtype))
    return np.ascontiguousarray(view)


def _recut(a, hw):
    """a (N, C, H, W), C-contiguous, as (N, C) + hw: the same pixels in order."""
    return a.reshape(a.shape[:2] + tuple(hw))


def _pointwise_route(weight_shape, geometry, in_hw, out_hw, a, *others):
    """Whether a pass of a conv reading ``a`` (its input, or the input
    gradient's grad_output) takes the 1x1 route: a 1x1 unpadded conv whose
    every output pixel reads an input pixel, on C-contiguous arrays (``a``
    and ``others``, the arrays re-cut with it: the 3-D passes' views would be
    copies). Small calls (the 3-D passes' boxes of patches, planned for their
    own workspace) run as they are: a call of fewer than ``SMALL_WORK``
    elements in ``a`` runs on one thread, where a re-cut gains little."""
    return (_unpadded_1x1(weight_shape, geometry) and a.size >= SMALL_WORK
            and _reads_inside(in_hw, out_hw, geometry)
            and all(b.flags.c_contiguous for b in (a,) + others))


def _pointwise_plan(a, weight_shape, geometry, out_hw, groups, *others):
    """For a 1x1 unpadded conv reading ``a`` (:func:`_pointwise_route`): (the
    pixels it reads, the re-cut (rows, columns) of its output planes); None
    for any other conv, and where both would be the arrays as they are."""
    if not _pointwise_route(weight_shape, geometry, a.shape[2:], out_hw, a, *others):
        return None
    sampled = _sampled(a, out_hw, geometry[:2])
    hw = plan.pointwise_rows(*out_hw, a.shape[0] * groups, a.dtype)
    if sampled.shape == a.shape and hw == tuple(out_hw):
        return None
    return sampled, hw


@functools.lru_cache(maxsize=None)
def _tile_constants(tile, lanes):
    """The tile shape and the vector width as compile-time constants of a kernel call
    (made once: small convs are called often)."""
    return compile_time(*tile, lanes)


def _forward_kernel(x, weight_shape, groups, geometry, out_hw, out_size):
    """Which kernel runs a conv forward: 'direct' (depthwise loops), 'naive'
    (planes far larger than the operands), 'broadcast' (the channel-vector
    tile, for planes whose rows would fill the pixel tile's vectors poorly)
    or 'pixel' (the pixel-vector tile)."""
    C_out, C_in_g = weight_shape[:2]
    C_out_g = C_out // groups
    if plan.direct(C_in_g, C_out_g):
        return "direct"
    if not plan.forward_fits(weight_shape, geometry, out_hw[1], x.size + out_size):
        return "naive"
    if plan.use_broadcast_forward(*out_hw, C_out_g, x.dtype):
        return "broadcast"
    return "pixel"


def _conv_forward(x, weight, bias, geometry, groups, out):
    """out[:] = conv(x, weight) + bias on the 2-D views; out: (N, C_out, H_out, W_out),
    C-contiguous."""
    N, C_out, H_out, W_out = out.shape
    weight_shape = _spec_shape(weight, groups)
    pointwise = _pointwise_plan(x, weight_shape, geometry, (H_out, W_out), groups, out)
    if pointwise is not None:
        sampled, hw = pointwise
        _conv_forward(_recut(sampled, hw), weight, bias, _POINTWISE, groups, _recut(out, hw))
        return out
    C_out_g = C_out // groups
    has_bias = bias is not None
    kernel = _forward_kernel(x, weight_shape, groups, geometry, (H_out, W_out), out.size)
    if kernel == "direct":
        b = bias if has_bias else np.zeros(0, dtype=x.dtype)
        wide = plan.depthwise_wide(x.shape[2:], out.shape[2:], weight_shape[2:], geometry)
        call(_k.depthwise_forward, x, _spec_weight(weight, groups), b, has_bias, *geometry,
             wide, out)
        return out
    if kernel == "naive":
        # a stride or dilation far beyond the input: the loop nest, no planes
        from deconv.kernels import naive
        out[:] = naive.conv2d_forward(x, _spec_weight(weight, groups), bias, *geometry, groups,
                                      H_out, W_out)
        return out
    if kernel == "broadcast":
        return _broadcast_forward(x, weight, bias, geometry, groups, out, (H_out, W_out))
    sH, sW, pH, pW, _, _ = geometry
    in_place = (x.flags.c_contiguous
                and plan.reads_in_place(weight_shape, geometry, x.shape[2:], (H_out, W_out),
                                        x.dtype))
    fwd = plan.forward_plan(N * groups, weight_shape, geometry, H_out, W_out, x.dtype, in_place)
    MR = fwd.tile.channels
    # (G, B, K, MR): MR output channels per block, tap-major, zero rows past C_out/G
    w_packed = _packed_weight(weight, groups, MR)
    b_packed = _packed_bias(bias if has_bias else None, groups, C_out_g, MR, x.dtype)
    with kernel_chunks(max(out.size, x.size)) as T:
        check_bytes("workspace", ((T, fwd.workspace), x.dtype))
        phase_ws = np.empty((T, fwd.workspace), dtype=x.dtype)
        _k.conv_forward_blocked(x, w_packed, b_packed, has_bias, sH, sW, pH, pW, fwd.offs,
                                fwd.rows, fwd.Hq, fwd.Wq, fwd.vectors, fwd.row_vectors,
                                fwd.k_block, fwd.span, in_place, out, phase_ws,
                                *_tile_constants(fwd.tile, fwd.lanes))
    return out


def _spec_shape(weight, groups):
    """The conv weight shape of a weight spec: a conv weight (C_out, C_in/G, kH, kW)
    as it is, or ``(conv weight, taps_h, taps_w)``, one stride phase of that conv's
    input gradient: a conv of grad_output with C_in/G outputs and C_out/G inputs
    per group whose tap (c, i, j) is the conv's weight[c, :, taps_h[i], taps_w[j]]
    (:func:`deconv.kernels.plan.phase_taps`; all taps reversed: the flipped
    kernel)."""
    if not isinstance(weight, tuple):
        return weight.shape
    w, taps_h, taps_w = weight
    return (groups * w.shape[1], w.shape[0] // groups, len(taps_h), len(taps_w))


def _spec_weight(weight, groups):
    """A weight spec (:func:`_spec_shape`) as a plain conv weight array (for the
    kernels that take one: the direct depthwise loops and the naive loop nests)."""
    if not isinstance(weight, tuple):
        return weight
    w, taps_h, taps_w = weight
    C_out, C_in_g, kH, kW = w.shape
    sub = w.reshape(groups, C_out // groups, C_in_g, kH, kW)[:, :, :, list(taps_h)]
    sub = sub[:, :, :, :, list(taps_w)].transpose(0, 2, 1, 3, 4)
    return np.ascontiguousarray(sub).reshape(_spec_shape(weight, groups))


def _packed_weight(weight, groups, R):
    """(G, B, K, R): a weight spec (:func:`_spec_shape`) packed for a tile of R
    lanes: B blocks of R output channels of the conv it specifies, tap-major,
    zero past its C_out/G. One copy from the weight, however it is specified
    (a gather or a padded intermediate cost two or three passes, a large part
    of a batch-1 layer's time)."""
    if isinstance(weight, tuple):
        # a phase's sub-kernel: its lanes are the weight's second axis, a
        # transpose (in parallel, each output channel's block of the weight in L1)
        w, taps_h, taps_w = weight
        C_out, C_in_g, kH, kW = w.shape
        blocks = -(-C_in_g // R)
        shape = (groups, blocks, C_out // groups, len(taps_h), len(taps_w), R)
        packed = aligned_empty(shape, dtype=w.dtype)
        _pack_phases(w, groups, plan.pack_table(((tuple(taps_h), tuple(taps_w), 0),), kW,
                                                C_out // groups, blocks, R),
                     blocks, R, packed.reshape(-1))
        return packed.reshape(groups, blocks, -1, R)
    w = weight
    C_out, C_in_g, kH, kW = w.shape
    # (G, L, M, th, tw): lanes = output channels, K = (input channel, i, j)
    view = w.reshape(groups, C_out // groups, C_in_g, kH, kW)
    G, L, M, th, tw = view.shape
    blocks, full = -(-L // R), L // R
    packed = aligned_empty((groups, blocks, M, th, tw, R), dtype=w.dtype)
    # whole blocks: lane r of block b is channel b*R + r
    square = plan.transpose_square(R, w.dtype)
    if full and w.flags.c_contiguous and R % square == 0:
        # the weight's rows are (K,) runs: transposed in registers, in parallel
        call(_k.pack_lanes_last, w.reshape(groups, L, M * th * tw),
             packed.reshape(groups, blocks, M * th * tw, R)[:, :full], compile_time(square))
    else:
        np.copyto(packed[:, :full],
                  view[:, :full * R].reshape(G, full, R, M, th, tw).transpose(0, 1, 3, 4, 5, 2))
    if full < blocks:
        tail = L - full * R
        packed[:, full, ..., tail:] = 0
        np.copyto(packed[:, full, ..., :tail], view[:, full * R:].transpose(0, 2, 3, 4, 1))
    return packed.reshape(groups, blocks, M * th * tw, R)


def _packs_whole_blocks(table, kernel_size):
    """Whether :func:`_pack_phases` moves every tap of the weight for ``table``
    (and so finds out whether the weight is finite on the way)."""
    kH, kW = kernel_size
    # The squares move every tap of a block: where the call needs fewer than
    # half of them (one of FCN-8s's 64 phases of 4 of 256 taps), a gather of
    # just those moves less, with no buffer to set up.
    return 2 * len(table) >= kH * kW


def _pack_phases(weight, groups, table, blocks, R, out):
    """Stride phases' sub-kernels of ``weight`` packed into ``out`` (1-D) as
    :func:`deconv.kernels.plan.pack_table` says (``pack_phase_lanes``).

    Returns whether every element of the weight is finite where it moves
    every tap (:func:`_packs_whole_blocks`), else None (not looked at)."""
    w = np.ascontiguousarray(weight)
    C_out, C_in_g, kH, kW = w.shape
    w5 = w.reshape(groups, C_out // groups, C_in_g, kH, kW)
    square = compile_time(plan.transpose_square(R, w.dtype))
    if not _packs_whole_blocks(table, (kH, kW)):
        call(_k.pack_phase_lanes, w5, table, blocks, R, out,
             np.empty((1, 0, 0), dtype=w.dtype), np.empty(1, dtype=np.bool_), square)
        return None
    with kernel_chunks(max(w.size, out.size)) as T:
        T = min(T, C_out)
        check_bytes("workspace", ((T, kH * kW, blocks * R), w.dtype))
        workspace = np.zeros((T, kH * kW, blocks * R), dtype=w.dtype)
        finite = np.empty(T, dtype=np.bool_)
        _k.pack_phase_lanes(w5, table, blocks, R, out, workspace, finite, square)
    return bool(finite.all())


def _packed_bias(bias, groups, per_group, R, dtype):
    """(G, B, R): the bias of a conv with ``per_group`` output channels per
    group, cut into B blocks of R (zero past them; all zero without a bias)."""
    blocks = -(-per_group // R)
    packed = np.zeros((groups, blocks * R), dtype=dtype)
    if bias is not None:
        packed[:, :per_group] = bias.reshape(groups, per_group)
    return packed.reshape(groups, blocks, R)


def _broadcast_forward(x, weight, bias, geometry, groups, out, out_hw, phase=(0, 0, 1, 1)):
    """conv(x, weight) + bias (output size ``out_hw``) by the channel-vector tile,
    written into out: (N, C_out, H_full, W_full) at rows h0, h0 + sH, ... and
    columns w0, w0 + sW, ... for ``phase`` = (h0, w0, sH, sW) (one stride phase
    of an input gradient, in place), the whole of out by default. ``weight``:
    the conv's, or (conv weight, taps_h, taps_w) for a phase of that conv's
    input gradient (see :func:`_spec_shape`)."""
    N, C_out, H_full, W_full = out.shape
    h0, w0, step_h, step_w = phase
    sH, sW, pH, pW, _, _ = geometry
    C_out_g = C_out // groups
    bp = plan.broadcast_plan(N, groups, _spec_shape(weight, groups), geometry, *out_hw,
                             (C_out * H_full * W_full, step_h, step_w, W_full), x.dtype)
    NR = bp.tile.vectors * bp.lanes
    w_packed = _packed_weight(weight, groups, NR)                  # (G, B, K, NR)
    b_packed = _packed_bias(bias, groups, C_out_g, NR, x.dtype)    # (G, B, NR)
    with kernel_chunks(max(out.size, x.size)) as T:
        check_bytes("workspace", ((T, bp.workspace), x.dtype))
        phase_ws = np.empty((T, bp.workspace), dtype=x.dtype)
        _k.conv_forward_broadcast(x, w_packed, b_packed, bias is not None, sH, sW, pH, pW,
                                  bp.offs, bp.rows, bp.Hq, bp.Wq, bp.samples, bp.pixels_in,
                                  bp.pixels_out, bp.k_chunk, *out_hw, out, h0 * W_full + w0, step_h,
                                  phase_ws, *_tile_constants(bp.tile, bp.lanes))
    return out


def _conv_input_grad(grad_output, weight, geometry, groups, shape, bias=None):
    """Conv's input gradient (= the transposed conv of grad_output), of ``shape``,
    plus ``bias`` per channel when given (the transposed conv's)."""
    if _pointwise_route(weight.shape, geometry, shape[2:], grad_output.shape[2:], grad_output):
        return _pointwise_input_grad(grad_output, weight, geometry, groups, shape, bias)
    return _conv_input_grad_planes(grad_output, weight, geometry, groups, shape, bias)


def _conv_input_grad_planes(grad_output, weight, geometry, groups, shape, bias):
    """:func:`_conv_input_grad` on the planes as they are."""
    C_out = grad_output.shape[1]
    C_in_g = weight.shape[1]
    C_out_g = C_out // groups
    # The flipped-kernel paths gather over a zero-padded grad_output, where an
    # inf or NaN weight meets zeros that the scatter never reads (0 * inf = NaN):
    # such a weight takes the scatter (GEMM and col2im, or the direct kernel),
    # which gives the naive kernels' NaN pattern.
    flip = C_in_g >= plan.FLIP_MIN_IN_PER_GROUP and not plan.direct(C_out_g, C_in_g)
    # the phases route checks the weight itself, mostly while packing it
    exact = None if flip else bool(all_finite(weight.reshape(-1)))
    # A strided depthwise conv (one input and one output channel per group)
    # goes by phases too, in one kernel that writes each phase in place.
    if exact and C_in_g == 1 and C_out_g == 1 and tuple(geometry[:2]) != (1, 1):
        grad_input = _depthwise_input_grad_phases(grad_output, weight, geometry, shape, bias)
        if grad_input is not None:
            return grad_input
    if flip:
        grad_input = _conv_input_grad_phases(grad_output, weight, geometry, groups, shape, bias)
        if grad_input is not None:
            return grad_input
        exact = False                 # the phases route declines only an inf or NaN weight
    grad_input = aligned_zeros(shape, dtype=grad_output.dtype)
    _conv_input_grad_small(grad_output, weight, geometry, groups, grad_input, flip_ok=exact)
    if bias is not None:
        call(_k.add_bias, grad_input, bias)
    return grad_input


def _covered(phases_h, phases_w, shape):
    """Whether the stride phases that some tap reaches hold every position of
    an input gradient of ``shape`` (N, C, H, W)."""
    return (sum(ph.count for ph in phases_h) == shape[2]
            and sum(ph.count for ph in phases_w) == shape[3])


def _depthwise_input_grad_phases(grad_output, weight, geometry, shape, bias):
    """:func:`_conv_input_grad` of a strided depthwise conv with one output
    channel per group, by stride phases written in place
    (``depthwise_input_grad_phases``); None where the zero-bordered copy of a
    plane would outgrow the planes (:data:`plan.WIDE_MAX_GROWTH`: a padding
    or dilation far beyond the input). MobileNetV2's stride-2 3x3 (N=8, 144
    channels, 56x56, float32, one thread): 5.35 ms by the scatter, 4.78 by
    stride-1 phase convs and spread_phase, 2.57 here, PyTorch about 2.35."""
    _, _, kH, kW = weight.shape
    sH, sW, pH, pW, dH, dW = geometry
    H_out, W_out = grad_output.shape[2:]
    phases_h = plan.phase_taps(kH, sH, pH, dH, shape[2])
    phases_w = plan.phase_taps(kW, sW, pW, dW, shape[3])
    margins = plan.phase_margins(phases_h, H_out) + plan.phase_margins(phases_w, W_out)
    bordered = (H_out + margins[0] + margins[1]) * (W_out + margins[2] + margins[3])
    if bordered > plan.WIDE_MAX_GROWTH * (shape[2] * shape[3] + H_out * W_out):
        return None
    margins = np.array(margins, dtype=np.int64)
    # the kernel writes every position some tap reaches: the rest must be zero
    grad_input = (aligned_empty if _covered(phases_h, phases_w, shape) else aligned_zeros)(
        shape, dtype=grad_output.dtype)
    if phases_h and phases_w:
        call(_k.depthwise_input_grad_phases, grad_output, weight, sH, sW,
             plan.phase_table(phases_h, kH), plan.phase_table(phases_w, kW), margins, grad_input)
    if bias is not None:
        call(_k.add_bias, grad_input, bias)
    return grad_input


def _pointwise_input_grad(grad_output, weight, geometry, groups, shape, bias):
    """:func:`_conv_input_grad` of a 1x1 unpadded conv: the stride-1 input
    gradient on re-cut planes, spread to every sH-th row and sW-th column
    (the rest: zero, plus the bias)."""
    N, C_in, H, W = shape
    H_out, W_out = grad_output.shape[2:]
    sH, sW = geometry[:2]
    hw = plan.pointwise_rows(H_out, W_out, N * groups, grad_output.dtype)
    # every input pixel is read, in order: the stride-1 gradient is the whole of it
    whole = all(n == size and (s == 1 or n == 1)
                for n, size, s in ((H_out, H, sH), (W_out, W, sW)))
    if whole and hw == (H_out, W_out):
        return _conv_input_grad_planes(grad_output, weight, _POINTWISE, groups, shape, bias)
    # (N, C_in) + hw: a fresh array, so that its reshape is a view
    part = _conv_input_grad_planes(_recut(grad_output, hw), weight, _POINTWISE, groups,
                                   (N, C_in) + hw, bias)
    if whole:
        return part.reshape(shape)
    grad_input = aligned_zeros(shape, dtype=grad_output.dtype)
    if bias is not None:
        grad_input += bias.reshape(-1, 1, 1)
    call(_k.spread_phase, part.reshape(N, C_in, H_out, W_out), grad_input, 0, 0, sH, sW)
    return grad_input


def _conv_input_grad_phases(grad_output, weight, geometry, groups, shape, bias):
    """Conv's input gradient as sH*sW stride-1 convs, one per phase.

    Each phase (the input positions congruent to given residues) is a
    correlation of grad_output with a sub-kernel, flipped and with its channel
    axes swapped per group (see :func:`deconv.kernels.plan.phase_taps`). It
    runs on the blocked forward, bias included, and is then spread into its
    place. With stride 1 this is the single flipped-kernel conv, written in
    place. Positions that no tap reaches are zero (plus the bias).

    Returns None for a weight with an inf or NaN, which the scatter must take
    (the caller's grad_input is then untouched: this one is its own).
    """
    N = grad_output.shape[0]
    _, C_in_g, kH, kW = weight.shape
    sH, sW, pH, pW, dH, dW = geometry
    H, W = shape[2:]
    phases_h = plan.phase_taps(kH, sH, pH, dH, H)
    phases_w = plan.phase_taps(kW, sW, pW, dW, W)
    grad_input = aligned_empty(shape, dtype=grad_output.dtype)
    if not _covered(phases_h, phases_w, shape):
        grad_input[:] = 0.0
        if bias is not None:
            grad_input += bias.reshape(-1, 1, 1)
    if (sH, sW) != (1, 1) and phases_h and phases_w and all(
            _phase_kernel(grad_output, weight, groups, ph, pw) == "broadcast"
            for ph in phases_h for pw in phases_w):
        # groups of phases whose packed sub-kernels take at most the gradient's size
        # (each call fills its own copies of grad_output: DCGAN's 4x4 s2 block,
        # whose packed weight is its batch of 16's gradient, ran 3% faster in one
        # call than in two)
        cut = plan.phase_groups(weight.shape, groups, phases_h, phases_w, grad_output.dtype,
                                grad_input.size)
        plans = [plan.phases_plan(N, groups, weight.shape, (sH, sW), pairs, tuple(shape),
                                  grad_output.dtype) for pairs in cut]
        if all(pp is not None for pp in plans):
            # the first call's packing reads every tap (DCGAN's) or none is checked yet
            if not (_packs_whole_blocks(plans[0].pack, (kH, kW))
                    or all_finite(weight.reshape(-1))):
                return None
            for pairs, pp in zip(cut, plans):
                if _broadcast_phases(grad_output, weight, groups, pairs, pp, grad_input,
                                     bias) is False:
                    return None
            return grad_input
    if not all_finite(weight.reshape(-1)):
        return None
    for h0, rows, taps_h, pad_h, dil_h in phases_h:
        for w0, cols, taps_w, pad_w, dil_w in phases_w:
            sub_geometry = (1, 1, pad_h, pad_w, dil_h, dil_w)
            # the phase's sub-kernel, packed straight from the conv's weight
            sub = (weight, taps_h, taps_w)
            if (sH, sW) != (1, 1) and _forward_kernel(
                    grad_output, _spec_shape(sub, groups), groups, sub_geometry, (rows, cols),
                    N * groups * C_in_g * rows * cols) == "broadcast":
                # the channel-vector tile writes the phase in place
                _broadcast_forward(grad_output, sub, bias, sub_geometry, groups, grad_input,
                                   (rows, cols), (h0, w0, sH, sW))
                continue
            if (sH, sW) == (1, 1):
                _conv_forward(grad_output, sub, bias, sub_geometry, groups, grad_input)
                continue
            phase = np.empty((N, groups * C_in_g, rows, cols), dtype=grad_output.dtype)
            _conv_forward(grad_output, sub, bias, sub_geometry, groups, phase)
            call(_k.spread_phase, phase, grad_input, h0, w0, sH, sW)
    return grad_input


def _phase_kernel(grad_output, weight, groups, ph, pw):
    """Which kernel runs the stride phase (ph, pw) (:func:`deconv.kernels.plan.phase_taps`
    of each axis) of conv's input gradient among all of them: that of
    :func:`_forward_kernel` for the phase's conv, but the channel-vector tile
    (``'broadcast'``) for a phase the pixel tile would run where
    :func:`deconv.kernels.plan.use_broadcast_phases` says so (the phases then
    run in one call, each written in place, rather than one call each, each
    into a temporary spread into place)."""
    N, C_in_g = grad_output.shape[0], weight.shape[1]
    kernel = _forward_kernel(grad_output, _spec_shape((weight, ph.taps, pw.taps), groups), groups,
                             (1, 1, ph.padding, pw.padding, ph.dilation, pw.dilation),
                             (ph.count, pw.count), N * groups * C_in_g * ph.count * pw.count)
    if kernel == "pixel" and plan.use_broadcast_phases(ph.count, pw.count, C_in_g,
                                                       grad_output.dtype):
        return "broadcast"
    return kernel


def _broadcast_phases(grad_output, weight, groups, pairs, pp, grad_input, bias):
    """Stride phases (``pairs``, one group of :func:`deconv.kernels.plan.phase_groups`)
    of conv's input gradient, written into grad_input in one call of the
    channel-vector tile over one copy of grad_output per item
    (``conv_input_grad_broadcast_phases``, :func:`deconv.kernels.plan.phases_plan`).
    Returns False, before any of it is written, where the packing found an
    inf or NaN in the weight."""
    C_in_g = weight.shape[1]
    NR = pp.tile.vectors * pp.lanes
    blocks = -(-C_in_g // NR)
    # every phase's sub-kernel packed (G, B, K_f, NR), one after another
    w_phases = aligned_empty(int(pp.phases[-1, 6] + groups * blocks * pp.phases[-1, 2] * NR),
                             dtype=grad_output.dtype)
    if _pack_phases(weight, groups, pp.pack, blocks, NR, w_phases) is False:
        return False                                   # an inf or NaN weight
    b_packed = _packed_bias(bias, groups, C_in_g, NR, grad_output.dtype)   # (G, B, NR)
    with kernel_chunks(max(grad_input.size, grad_output.size)) as T:
        check_bytes("workspace", ((T, pp.workspace), grad_output.dtype))
        phase_ws = np.empty((T, pp.workspace), dtype=grad_output.dtype)
        _k.conv_input_grad_broadcast_phases(grad_output, w_phases, b_packed, bias is not None,
                                            *pp.pad, pp.Hq, pp.Wq, pp.samples, pp.phases,
                                            pp.offs, pp.pixels_in, pp.pixels_out, pp.splits,
                                            pp.paired, pp.scratch_pixels, grad_input,
                                            phase_ws, *_tile_constants(pp.tile, pp.lanes))
    return grad_input


def _conv_input_grad_small(grad_output, weight, geometry, groups, grad_input, flip_ok=True):
    """grad_input += conv's input gradient, for few input channels per group
    (where the flipped conv would be a matrix-vector product): GEMM and
    col2im, or the direct depthwise kernels. grad_input comes zero-filled.
    ``flip_ok=False`` keeps to the scatters (for a weight with inf or NaN).
    """
    N, C_out, H_out, W_out = grad_output.shape
    _, C_in_g, kH, kW = weight.shape
    C_out_g = C_out // groups
    P = H_out * W_out
    pointwise = plan.is_pointwise(weight.shape, geometry, grad_input.shape[2:],
                                  grad_output.shape[2:])
    sH, sW, pH, pW, dH, dW = geometry
    direct = plan.direct(C_in_g, C_out_g)
    # (the flipped kernel of a depthwise conv has one input channel per group:
    # its input gradient is again a direct depthwise conv)
    flip = (flip_ok and not pointwise and (sH, sW) == (1, 1) and pH <= dH * (kH - 1) and pW <= dW * (kW - 1)
            and direct and C_out_g == 1)
    if direct and not flip:
        call(_k.depthwise_input_grad, grad_output, weight, *geometry, grad_input)
        return grad_input
    if flip:
        flipped = (weight, tuple(range(kH - 1, -1, -1)), tuple(range(kW - 1, -1, -1)))
        padding = (dH * (kH - 1) - pH, dW * (kW - 1) - pW)
        return _conv_forward(grad_output, flipped, None, (1, 1) + padding + (dH, dW), groups,
                             grad_input)
    c_block = C_in_g if pointwise else plan.channel_block(C_in_g, kH * kW, P,
                                                          plan.chunk_budget(grad_input.size))
    blocks = C_in_g // c_block
    # (G, blocks, Kb, C_out/G): each block's rows of W^T, contiguous for BLAS
    weight_t = np.ascontiguousarray(
        weight.reshape(groups, C_out_g, blocks, c_block * kH * kW).transpose(0, 2, 3, 1))
    with kernel_chunks(max(grad_input.size, grad_output.size), blas=True) as T:
        col_shape = (T, 0 if pointwise else c_block * kH * kW, P)
        check_bytes("workspace", (col_shape, grad_output.dtype))
        col_ws = np.empty(col_shape, dtype=grad_output.dtype)
        _k.conv_input_grad(grad_output, weight_t, kH, kW, *geometry, grad_input, pointwise, col_ws)
    return grad_input


def _sum_partials(partial):
    """partial[0] + partial[1] + ... in that order (the batch chunks' partial weight
    gradients: a fixed order, whatever the threads)."""
    total = partial[0]
    with np.errstate(invalid="ignore", over="ignore"):   # inf - inf is NaN here as in the kernels
        for b in range(1, partial.shape[0]):
            total += partial[b]
    return total


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
    pointwise = _pointwise_plan(x, weight_shape, geometry, (H_out, W_out), groups,
                                grad_output)
    if pointwise is not None:
        sampled, hw = pointwise
        return _conv_weight_grad(_recut(sampled, hw), _recut(grad_output, hw), _POINTWISE,
                                 groups, weight_shape, budget_elements)
    if not plan.reduce_fits(weight_shape, geometry, H_out, W_out, x.size + grad_output.size):
        # a stride or dilation far beyond the input: the loop nest, no planes
        from deconv.kernels import naive
        return naive.conv2d_weight_grad(grad_output, x, *geometry, groups, kH, kW)
    if plan.use_broadcast_reduce(H_out, W_out, C_out_g, x.dtype):
        return _broadcast_weight_grad(x, grad_output, geometry, groups, weight_shape,
                                      budget_elements)
    red = plan.reduce_plan(N, weight_shape, geometry, groups, H_out, W_out, x.dtype,
                           budget_elements)
    # (B, G, C_out/G, K): one partial gradient per batch chunk
    check_bytes("workspace", ((red.chunks, groups, C_out_g, K), x.dtype))
    partial = np.zeros((red.chunks, groups, C_out_g, K), dtype=x.dtype)
    with kernel_chunks(max(x.size, grad_output.size)) as T:
        check_bytes("workspace", ((T, red.workspace), x.dtype))
        phase_ws = np.empty((T, red.workspace), dtype=x.dtype)
        _k.conv_weight_grad_blocked(x, grad_output, sH, sW, pH, pW, red.offs, red.Hq, red.Wq,
                                    red.runs, red.full, red.samples, red.span,
                                    red.carry_taps, red.splits,
                                    partial, phase_ws, *_tile_constants(red.tile, red.lanes))
    grad_weight = _sum_partials(partial)
    return grad_weight.reshape(weight_shape)


def _broadcast_weight_grad(x, grad_output, geometry, groups, weight_shape, budget_elements):
    """The conv weight gradient by the channel-vector tile (rows of few pixels)."""
    N = x.shape[0]
    C_out, C_in_g, kH, kW = weight_shape
    C_out_g = C_out // groups
    H_out, W_out = grad_output.shape[2:]
    sH, sW, pH, pW, _, _ = geometry
    K = C_in_g * kH * kW
    red = plan.broadcast_reduce_plan(N, weight_shape, geometry, groups, H_out, W_out, x.dtype,
                                     budget_elements)
    NR = red.tile.vectors * red.lanes
    # (B, G, C_pad / NR, K, NR): one partial gradient per batch chunk, in blocks of channels
    check_bytes("workspace", ((red.chunks, groups, K, red.channels), x.dtype))
    partial = np.zeros((red.chunks, groups, red.channels // NR, K, NR), dtype=x.dtype)
    with kernel_chunks(max(x.size, grad_output.size)) as T:
        check_bytes("workspace", ((T, red.workspace), x.dtype))
        phase_ws = aligned_empty((T, red.workspace), dtype=x.dtype)
        _k.conv_weight_grad_broadcast(x, grad_output, sH, sW, pH, pW, red.offs, red.Hq, red.Wq,
                                      red.steps, red.samples, red.splits, red.planes,
                                      plan.BROADCAST_REDUCE_BLOCK, partial,
                                      phase_ws, *_tile_constants(red.tile, red.lanes))
    grad_weight = _sum_partials(partial)
    # (G, C_pad / NR, K, NR) -> (G, C_out/G, K)
    out = np.empty((groups, C_out_g, K), dtype=x.dtype)
    call(_k.unblock_channels, grad_weight, out, compile_time(plan.transpose_square(NR, x.dtype)))
    return out.reshape(weight_shape)


# ---------------------------------------------------------------------------
# shared bodies (nd = 1 or 2)
# ---------------------------------------------------------------------------

def _maybe_from_2d(a, nd):
    """:func:`from_2d`, passing through the None of a skipped input gradient."""
    return None if a is None else from_2d(a, nd)


def _conv(x, weight, bias, stride, padding, dilation, groups, nd):
    x, weight, bias, cfg, out = _conv_config(x, weight, bias, stride, padding, dilation, groups, nd)
    x, weight, bias = _ready("output", [((x.shape[0], weight.shape[0]) + out, x.dtype)],
                             x=x, weight=weight, bias=bias)
    H_out, W_out = (1,) + out if nd == 1 else out
    if kernels.active() == "naive":
        from deconv.kernels import naive
        y = naive.conv2d_forward(to_2d(x), to_2d(weight), bias, *cfg.as_2d(), cfg.groups,
                                 H_out, W_out)
        return from_2d(y, nd)
    y = aligned_empty((x.shape[0], weight.shape[0], H_out, W_out), dtype=x.dtype)
    _conv_forward(to_2d(x), to_2d(weight), bias, cfg.as_2d(), cfg.groups, y)
    return from_2d(y, nd)


def _conv_backward(grad_output, x, weight, stride, padding, dilation, groups, nd, input_grad):
    input_grad = as_bool(input_grad, "input_grad")
    x, weight, _, cfg, out = _conv_config(x, weight, None, stride, padding, dilation, groups, nd)
    grad_output = _as_grad_output(grad_output, x, weight, (x.shape[0], weight.shape[0]) + out,
                                  cfg, f"conv{nd}d")
    grad_output, x, weight = _ready(
        "outputs (grad_input, grad_weight, grad_bias)",
        [(x.shape, x.dtype), (weight.shape, x.dtype), ((weight.shape[0],), x.dtype)],
        grad_output=grad_output, x=x, weight=weight)
    x2, w2, gy2 = to_2d(x), to_2d(weight), to_2d(grad_output)
    geometry = cfg.as_2d()
    if kernels.active() == "naive":
        from deconv.kernels import naive
        grad_input = (naive.conv2d_input_grad(gy2, w2, *geometry, cfg.groups, *x2.shape[2:])
                      if input_grad else None)
        grad_weight = naive.conv2d_weight_grad(gy2, x2, *geometry, cfg.groups, *w2.shape[2:])
        grad_bias = naive.conv2d_bias_grad(gy2)
    else:
        grad_input = (_conv_input_grad(gy2, w2, geometry, cfg.groups, x2.shape)
                      if input_grad else None)
        grad_weight = _conv_weight_grad(x2, gy2, geometry, cfg.groups, w2.shape, x2.size)
        grad_bias = call(_k.bias_grad, gy2)
    return _maybe_from_2d(grad_input, nd), from_2d(grad_weight, nd), grad_bias


def _conv_transpose(x, weight, bias, stride, padding, output_padding, groups, dilation, nd,
                    output_size):
    x, weight, bias, cfg, out = _conv_transpose_config(
        x, weight, bias, stride, padding, output_padding, groups, dilation, nd, output_size)
    x, weight, bias = _ready("output", [((x.shape[0], weight.shape[1] * cfg.groups) + out, x.dtype)],
                             x=x, weight=weight, bias=bias)
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
                             dilation, nd, output_size, input_grad):
    input_grad = as_bool(input_grad, "input_grad")
    x, weight, _, cfg, out = _conv_transpose_config(
        x, weight, None, stride, padding, output_padding, groups, dilation, nd, output_size)
    c_out = weight.shape[1] * cfg.groups
    grad_output = _as_grad_output(grad_output, x, weight, (x.shape[0], c_out) + out, cfg,
                                  f"conv_transpose{nd}d")
    grad_output, x, weight = _ready(
        "outputs (grad_input, grad_weight, grad_bias)",
        [(x.shape, x.dtype), (weight.shape, x.dtype), ((c_out,), x.dtype)],
        grad_output=grad_output, x=x, weight=weight)
    x2, w2, gy2 = to_2d(x), to_2d(weight), to_2d(grad_output)
    geometry = cfg.as_2d()
    if kernels.active() == "naive":
        from deconv.kernels import naive
        grad_input = (naive.conv_transpose2d_input_grad(gy2, w2, *geometry, cfg.groups,
                                                        *x2.shape[2:])
                      if input_grad else None)
        grad_weight = naive.conv_transpose2d_weight_grad(gy2, x2, *geometry, cfg.groups,
                                                         *w2.shape[2:])
        grad_bias = naive.conv_transpose2d_bias_grad(gy2)
        return _maybe_from_2d(grad_input, nd), from_2d(grad_weight, nd), grad_bias
    # Adjoint of the adjoint: the input gradient is an ordinary conv of
    # grad_output, evaluated at exactly the input's size (with
    # output_padding >= stride the conv formula would give one more row).
    grad_input = (_conv_forward(gy2, w2, None, geometry, cfg.groups,
                                aligned_empty(x2.shape, dtype=x.dtype))
                  if input_grad else None)
    # One weight-gradient kernel serves both: here grad_output plays the
    # conv's input and x plays the conv's output gradient.
    grad_weight = _conv_weight_grad(gy2, x2, geometry, cfg.groups, w2.shape, x2.size)
    grad_bias = call(_k.bias_grad, gy2)
    return _maybe_from_2d(grad_input, nd), from_2d(grad_weight, nd), grad_bias


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
def conv2d_backward(grad_output, x, weight, *, stride=1, padding=0, dilation=1, groups=1,
                    input_grad=True):
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
    input_grad : bool, keyword-only, default True
        False when ``x`` needs no gradient (the data fed to a network;
        PyTorch: an input without ``requires_grad``, the ``output_mask`` of
        ``convolution_backward``): the input-gradient pass, as costly as the
        forward, is skipped and None is returned in its place.
        ``grad_weight`` and ``grad_bias`` are bitwise the same either way.

    Returns
    -------
    grad_input : ndarray, shape (N, C_in, H, W), or None (``input_grad=False``)
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
    return _conv_backward(grad_output, x, weight, stride, padding, dilation, groups, 2,
                          input_grad)


@refuse_positional_bias
def conv1d_backward(grad_output, x, weight, *, stride=1, padding=0, dilation=1, groups=1,
                    input_grad=True):
    """Gradients of :func:`conv1d` with respect to its input, weight and bias.

    Parameters
    ----------
    grad_output : ndarray, shape (N, C_out, L_out)
    x : ndarray, shape (N, C_in, L)
    weight : ndarray, shape (C_out, C_in/groups, kL)
    stride, padding, dilation, groups : keyword-only
        As given to :func:`conv1d` (no ``bias``: see :func:`conv2d_backward`).

    input_grad : bool, keyword-only, default True
        False skips the input gradient and returns None for it (see
        :func:`conv2d_backward`).

    Returns
    -------
    grad_input : ndarray, shape (N, C_in, L), or None
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
    return _conv_backward(grad_output, x, weight, stride, padding, dilation, groups, 1,
                          input_grad)


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1, *, output_size=None):
    """2-D transposed convolution ("deconvolution"), as ``torch.nn.functional.conv_transpose2d``.

    The adjoint of :func:`conv2d`: each input pixel scatters a copy of the
    kernel, scaled by its value, into the output at stride ``s``.

    Parameters
    ----------
    x : ndarray, shape (N, C_in, H, W)
    weight : ndarray, shape (C_in, C_out/groups, kH, kW)
    bias : ndarray, shape (C_out,), optional
    stride : int or (int, int)
    padding : int, (int, int), 'valid' or 'same'
        Removes ``padding`` rows/columns from both sides of the full output
        (the conv whose adjoint this is had this zero padding). ``'valid'``
        is 0. ``'same'`` (stride 1 only; not in PyTorch) is the adjoint of
        :func:`conv2d`'s ``'same'``: it crops ``d*(k-1)`` in all, the odd
        extra element at the bottom/right, so ``H_out = H`` and
        ``W_out = W``.
    output_padding : int or (int, int)
        Extra rows/columns added at the bottom/right, ``< max(stride, dilation)``;
        it picks which of the input sizes of the strided conv is produced.
    groups : int
    dilation : int or (int, int)
    output_size : (int, int) or (int, int, int, int), keyword-only, optional
        The output's spatial size, or its full shape ``(N, C_out, H_out,
        W_out)``, as ``torch.nn.ConvTranspose2d.forward(x, output_size)``:
        it sets ``output_padding`` (which must then be 0) per axis.

    Returns
    -------
    y : ndarray, shape (N, C_out, H_out, W_out)

    Notes
    -----
    ``H_out = (H-1)*sH - 2*pH + dH*(kH-1) + output_padding_H + 1``
    (likewise ``W_out``; with ``'same'`` ``pH_before + pH_after`` for
    ``2*pH``); see :func:`deconv.shapes.conv_transpose_output_size` and
    :func:`deconv.shapes.inverse_output_padding`.

    A given ``output_size`` must lie, per axis, in ``[H_min, H_min + sH - 1]``
    with ``H_min`` the size for ``output_padding=0`` (PyTorch's rule, with
    or without dilation; :func:`deconv.shapes.conv_transpose_size_range`),
    and ``output_padding_H = H_out - H_min``.

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
    >>> deconv.conv_transpose2d(x, w, stride=2, padding=1, output_size=(4, 4)).shape
    (1, 1, 4, 4)
    >>> deconv.conv_transpose2d(np.ones((1, 1, 3, 3)), np.ones((1, 1, 2, 2)), padding="same")[0, 0]
    array([[1., 2., 2.],
           [2., 4., 4.],
           [2., 4., 4.]])
    """
    return _conv_transpose(x, weight, bias, stride, padding, output_padding, groups, dilation, 2,
                           output_size)


def conv_transpose1d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1, *, output_size=None):
    """1-D transposed convolution, as ``torch.nn.functional.conv_transpose1d``.

    Parameters
    ----------
    x : ndarray, shape (N, C_in, L)
    weight : ndarray, shape (C_in, C_out/groups, kL)
    bias : ndarray, shape (C_out,), optional
    stride, output_padding, groups, dilation : int
        As in :func:`conv_transpose2d`.
    padding : int, (int,), 'valid' or 'same'
        As in :func:`conv_transpose2d` (``'same'``: stride 1, ``L_out = L``).
    output_size : (int,) or (int, int, int), keyword-only, optional
        ``(L_out,)`` or ``(N, C_out, L_out)``; sets ``output_padding``, as
        ``torch.nn.ConvTranspose1d.forward(x, output_size)``.

    Returns
    -------
    y : ndarray, shape (N, C_out, L_out)

    Notes
    -----
    ``L_out = (L-1)*s - 2p + d*(k-1) + output_padding + 1``. A given
    ``output_size`` must lie in ``[L_min, L_min + s - 1]``, ``L_min`` the
    size for ``output_padding=0``; then ``output_padding = L_out - L_min``.

    Examples
    --------
    >>> import numpy as np, deconv
    >>> deconv.conv_transpose1d(np.array([[[1.0, 2.0]]]), np.array([[[1.0, 1.0, 1.0]]]), stride=2)
    array([[[1., 1., 3., 2., 2.]]])
    >>> deconv.conv_transpose1d(np.array([[[1.0, 2.0]]]), np.array([[[1.0, 1.0, 1.0]]]), stride=2,
    ...                         output_size=[6])
    array([[[1., 1., 3., 2., 2., 0.]]])
    """
    return _conv_transpose(x, weight, bias, stride, padding, output_padding, groups, dilation, 1,
                           output_size)


@refuse_positional_bias
def conv_transpose2d_backward(grad_output, x, weight, *, stride=1, padding=0, output_padding=0,
                              groups=1, dilation=1, output_size=None, input_grad=True):
    """Gradients of :func:`conv_transpose2d` with respect to input, weight and bias.

    Parameters
    ----------
    grad_output : ndarray, shape (N, C_out, H_out, W_out)
    x : ndarray, shape (N, C_in, H, W)
    weight : ndarray, shape (C_in, C_out/groups, kH, kW)
    stride, padding, output_padding, groups, dilation, output_size : keyword-only
        As given to :func:`conv_transpose2d` (no ``bias``: see :func:`conv2d_backward`).

    input_grad : bool, keyword-only, default True
        False skips the input gradient and returns None for it (see
        :func:`conv2d_backward`).

    Returns
    -------
    grad_input : ndarray, shape (N, C_in, H, W), or None
        The ordinary convolution :func:`conv2d` of ``grad_output`` with ``weight``.
    grad_weight : ndarray, shape (C_in, C_out/groups, kH, kW)
    grad_bias : ndarray, shape (C_out,)

    Notes
    -----
    ``H_out = (H-1)*sH - 2*pH + dH*(kH-1) + output_padding_H + 1`` (likewise
    ``W_out``), as in :func:`conv_transpose2d`; ``output_size``, when given,
    sets ``output_padding`` as there.

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
                                    groups, dilation, 2, output_size, input_grad)


@refuse_positional_bias
def conv_transpose1d_backward(grad_output, x, weight, *, stride=1, padding=0, output_padding=0,
                              groups=1, dilation=1, output_size=None, input_grad=True):
    """Gradients of :func:`conv_transpose1d` with respect to input, weight and bias.

    Parameters
    ----------
    grad_output : ndarray, shape (N, C_out, L_out)
    x : ndarray, shape (N, C_in, L)
    weight : ndarray, shape (C_in, C_out/groups, kL)
    stride, padding, output_padding, groups, dilation, output_size : keyword-only
        As given to :func:`conv_transpose1d` (no ``bias``: see :func:`conv2d_backward`).

    input_grad : bool, keyword-only, default True
        False skips the input gradient and returns None for it (see
        :func:`conv2d_backward`).

    Returns
    -------
    grad_input : ndarray, shape (N, C_in, L), or None
    grad_weight : ndarray, shape (C_in, C_out/groups, kL)
    grad_bias : ndarray, shape (C_out,)

    Notes
    -----
    ``L_out = (L-1)*s - 2p + d*(k-1) + output_padding + 1``; ``output_size``,
    when given, sets ``output_padding`` as in :func:`conv_transpose1d`.

    Examples
    --------
    >>> import numpy as np, deconv
    >>> gx, gw, gb = deconv.conv_transpose1d_backward(
    ...     np.ones((1, 1, 5)), np.array([[[1.0, 2.0]]]), np.ones((1, 1, 3)), stride=2)
    >>> gx, gb
    (array([[[3., 3.]]]), array([5.]))
    """
    return _conv_transpose_backward(grad_output, x, weight, stride, padding, output_padding,
                                    groups, dilation, 1, output_size, input_grad)


# ---------------------------------------------------------------------------
# issue 13: the 3-D convolutions, on the 2-D passes above
#
# Output depth o of a conv reads input depth i = o*sD + kd*dD - pD through
# kernel depth tap kd. Every pass is run as a gather over depth: each depth
# slice of its result is written once, by one 2-D pass over a *stack*: the J
# slices it reads (J <= kD: the taps that reach the input, from
# shapes.depth_runs; the depth padding is never made) as one input of J*C
# channels, ordered (g, j, c), with the weight's depth taps as J*C/G input
# channels per group. The 3-D sum over (c, kd, kh, kw) is then the 2-D sum
# over ((j, c), kh, kw), K = J*C/G*kH*kW, with no read-add passes. A block
# of output depths is one batch of stacks, copied contiguous (the 2-D kernels
# compile one memory layout: tests/test_api.py) by a parallel plane copy.
#
# The input gradients (conv's grad_input, the transposed conv's forward) are
# gathers too: per depth phase (plan.phase_taps, as in 2-D) a stride-1
# correlation of grad_output with the phase's taps, in-plane the 2-D input
# gradient of a stack of grad_output slices. The weight gradient of a block
# of output depths is one 2-D weight gradient of the input's stacks, the
# blocks summed in a fixed order.
#
# Blocks of output depths keep each workspace within a quarter of the pass's
# result (_WORKSPACE_SHARE), and every element is summed in an order fixed by
# the shapes: bitwise the same for any thread count.
# ---------------------------------------------------------------------------

_WEIGHT_LAYOUT[3] = "(C_out, C_in/groups, kD, kH, kW)"
_T_WEIGHT_LAYOUT[3] = "(C_in, C_out/groups, kD, kH, kW)"

#: A 3-D pass's workspaces (stacks, blocks of results) stay within this
#: fraction of its result (at least one output depth's).
_WORKSPACE_SHARE = 4


def _budget(result_elements):
    return max(result_elements // _WORKSPACE_SHARE, 1)


def _copy(src, dst):
    """dst[...] = src, views of 4 or 5 axes (H, W last), a plane per parallel item."""
    if src.ndim == 4:
        src, dst = src[None], dst[None]
    call(_depth.copy_planes, src, dst)


def _stacks(src_n, start, count, taps, step, dilation, groups):
    """The stacks of slices ``start + m*step + j*dilation`` (m < count, j < taps)
    of one sample src_n (C, D, H, W): a contiguous batch (count, taps*C, H, W),
    channels (g, j, c)."""
    C, _, H, W = src_n.shape
    C_g = C // groups
    s = src_n.strides
    picked = np.lib.stride_tricks.as_strided(
        src_n[:, start], (count, groups, taps, C_g, H, W),
        (step * s[1], C_g * s[0], dilation * s[1], s[0], s[2], s[3]))
    check_bytes("workspace", ((count * taps * C, H, W), src_n.dtype))
    stacks = np.empty((count, groups, taps, C_g, H, W), dtype=src_n.dtype)
    for g in range(groups):
        _copy(picked[:, g], stacks[:, g])
    return stacks.reshape(count, taps * C, H, W)


def _forward_weight(weight, taps):
    """The conv weight (C_out, C_in/G, kD, kH, kW) of depth taps ``taps`` as a
    2-D weight over stacks: (C_out, J*C_in/G, kH, kW), inputs (j, c)."""
    C_out, C_g, _, kH, kW = weight.shape
    return np.ascontiguousarray(weight[:, :, list(taps)].transpose(0, 2, 1, 3, 4)).reshape(
        C_out, len(taps) * C_g, kH, kW)


def _input_grad_weight(weight, taps, groups):
    """The conv weight (C_out, C_in/G, kD, kH, kW) of depth taps ``taps`` as the
    2-D weight whose input gradient reads stacks of grad_output: (G*J*C_out/G,
    C_in/G, kH, kW), output channels (g, j, o)."""
    C_out, C_g, _, kH, kW = weight.shape
    w = weight.reshape(groups, C_out // groups, C_g, -1, kH, kW)[:, :, :, list(taps)]
    return np.ascontiguousarray(w.transpose(0, 3, 1, 2, 4, 5)).reshape(-1, C_g, kH, kW)


def _plane_conv(x2, w2, bias, geometry, groups, out_hw):
    """conv2d (+ bias) of a batch of planes: (B, C_out, H_out, W_out)."""
    if kernels.active() == "naive":
        from deconv.kernels import naive
        return naive.conv2d_forward(x2, w2, bias, *geometry, groups, *out_hw)
    out = aligned_empty((x2.shape[0], w2.shape[0]) + tuple(out_hw), dtype=x2.dtype)
    return _conv_forward(x2, w2, bias, geometry, groups, out)


def _plane_input_grad(gy2, w2, bias, geometry, groups, in_shape):
    """conv2d's input gradient (+ bias) of a batch of planes: in_shape (B, C_in, H, W)."""
    if kernels.active() == "naive":
        from deconv.kernels import naive
        return naive.conv_transpose2d_forward(gy2, w2, bias, *geometry, groups, *in_shape[2:])
    return _conv_input_grad(gy2, w2, geometry, groups, in_shape, bias)


def _plane_weight_grad(x2, gy2, geometry, groups, w_shape, budget):
    """conv2d's weight gradient (C_out, C_in/G, kH, kW) of a batch of planes."""
    if kernels.active() == "naive":
        from deconv.kernels import naive
        return naive.conv2d_weight_grad(gy2, x2, *geometry, groups, *w_shape[2:])
    return _conv_weight_grad(x2, gy2, geometry, groups, w_shape, budget)


def _fill_bias(dst, depths, bias):
    """dst[:, :, depths] = bias per channel (zeros without one): depths no tap reaches."""
    dst[:, :, depths] = 0.0 if bias is None else bias.reshape(-1, 1, 1, 1)


def _padding_term(weight, kernel_depth):
    """For a gather over the zero-padded input (conv forward, the transposed
    conv's input gradient): function(lo, hi) -> (C_out,) the sum of ``w * 0``
    over the depth taps outside [lo, hi), which lie over the padding, or None
    while it is all zeros. An inf or NaN weight there gives NaN, as in PyTorch
    and the 2-D passes in-plane (tests/test_nonfinite.py); None for a finite weight."""
    if all_finite(weight.reshape(-1)):
        return None

    def term(lo, hi):
        outside = [kd for kd in range(kernel_depth) if not lo <= kd < hi]
        with np.errstate(invalid="ignore"):
            t = (weight[:, :, outside] * 0).sum(axis=(1, 2, 3, 4))
        return t if np.isnan(t).any() else None
    return term


def _blocks(count, per_output, budget):
    """Output depths per block: the workspace of a block within ``budget``
    elements (at least one depth), the ``count`` depths cut into equal blocks."""
    M = max(1, min(count, budget // per_output))
    return -(-count // -(-count // M))


def _depth_gather(dst, place, src, runs, taps, step, dilation, pass_, bias, groups, budget,
                  padding_term=None):
    """dst[:, :, place(o)] = the 2-D pass of the stack output o reads, for every output o.

    dst: (N, C_dst, D_dst, H_dst, W_dst), written once per element; src:
    (N, C, D, H, W); place = (first, step) of the dst depths; runs:
    :func:`deconv.shapes.depth_runs` of the correlation (output o reads src
    depth ``start + m*step + j*dilation`` through kernel tap ``taps[lo + j]``);
    pass_ = (plane, weight_of): plane(stacks, w2, bias) gives (B, C_dst, H_dst,
    W_dst), weight_of(kernel taps) the 2-D weight; padding_term: see
    :func:`_padding_term`.
    """
    plane, weight_of = pass_
    N, C_src, _, H, W = src.shape
    per_output = C_src * H * W + dst.shape[1] * dst.shape[3] * dst.shape[4]
    first_dst, dst_step = place
    for first, count, lo, hi, start in runs:
        J = hi - lo
        d_first = first_dst + first * dst_step
        term = None if padding_term is None else padding_term(lo, hi)
        if J == 0:
            depths = slice(d_first, d_first + (count - 1) * dst_step + 1, dst_step)
            _fill_bias(dst, depths, bias)
            if term is not None:
                dst[:, :, depths] += term.reshape(-1, 1, 1, 1)
            continue
        w2 = weight_of(taps[lo:hi])
        M = _blocks(count, J * per_output, budget)
        for n in range(N):
            for m0 in range(0, count, M):
                b = min(M, count - m0)
                block = plane(_stacks(src[n], start + m0 * step, b, J, step, dilation, groups),
                              w2, bias)
                if term is not None:
                    block += term.reshape(-1, 1, 1)
                d0 = d_first + m0 * dst_step
                depths = slice(d0, d0 + (b - 1) * dst_step + 1, dst_step)
                _copy(block.transpose(1, 0, 2, 3), dst[n, :, depths])
    return dst


def _depth_weight_grad(x, gy, runs, step, dilation, geometry, groups, weight_shape, budget):
    """The weight gradient (C_out, C_in/G, kD, kH, kW) of the conv x -> gy whose
    depth runs are ``runs``: per block of output depths, the 2-D weight
    gradient of the block's stacks of x and its gy slices (depth-major), in a
    fixed order."""
    C_out, C_g, kD, kH, kW = weight_shape
    grad_weight = np.zeros(weight_shape, dtype=x.dtype)
    N = gy.shape[0]
    per_output = x.shape[1] * x.shape[3] * x.shape[4] + C_out * gy.shape[3] * gy.shape[4]
    for first, count, lo, hi, start in runs:
        J = hi - lo
        if J < kD:
            # the other taps read the depth padding: 0 * inf is NaN (see _padding_term)
            finite = np.isfinite(gy[:, :, first:first + count]).all(axis=(0, 2, 3, 4))
            if not finite.all():
                outside = [kd for kd in range(kD) if not lo <= kd < hi]
                grad_weight[np.ix_(~finite, np.arange(C_g), outside)] = np.nan
        if J == 0:
            continue
        # taps per pass: the 2-D pass holds phase planes of its stacks per
        # thread, so one depth's stack takes at most half the budget
        per_tap = max(1, min(J, budget // (2 * x.shape[1] * x.shape[3] * x.shape[4])))
        M = _blocks(count, per_tap * per_output, budget)
        for n in range(N):
            for m0 in range(0, count, M):
                b = min(M, count - m0)
                # (b, C_out, H_out, W_out)
                gy_block = np.empty((b, C_out) + gy.shape[3:], dtype=gy.dtype)
                _copy(gy[n, :, first + m0:first + m0 + b].transpose(1, 0, 2, 3), gy_block)
                for t0 in range(lo, hi, per_tap):
                    t1 = min(t0 + per_tap, hi)
                    stacks = _stacks(x[n], start + m0 * step + (t0 - lo) * dilation, b, t1 - t0,
                                     step, dilation, groups)
                    # (C_out, J*C_in/G, kH, kW), inputs (j, c)
                    part = _plane_weight_grad(stacks, gy_block, geometry, groups,
                                              (C_out, (t1 - t0) * C_g, kH, kW), budget)
                    part = part.reshape(C_out, t1 - t0, C_g, kH, kW).transpose(0, 2, 1, 3, 4)
                    with np.errstate(invalid="ignore", over="ignore"):
                        grad_weight[:, :, t0:t1] += part
    return grad_weight


def _grad_bias(grad_output):
    """grad_output (N, C, D, H, W) summed over all but the channels, by the 2-D kernel."""
    N, C, D, H, W = grad_output.shape
    return call(_k.bias_grad, grad_output.reshape(N, C, D * H, W))


def _forward_runs(cfg, in_depth, out_depth):
    """The depth runs of the conv that maps depth ``in_depth`` to ``out_depth``."""
    return shapes.depth_runs(in_depth, out_depth, cfg.kernel[0], cfg.stride[0],
                             cfg.pad_before[0], cfg.dilation[0])


def _forward_pass(geometry, groups, weight, out_hw):
    """(plane, weight_of) of :func:`_depth_gather` for a conv's forward."""
    return (lambda batch, w2, b: _plane_conv(batch, w2, b, geometry, groups, out_hw),
            lambda taps: _forward_weight(weight, taps))


def _depth_conv(src, weight, cfg, groups, dst, bias):
    """dst = conv3d(src, weight) + bias with cfg's geometry (the conv maps src's depth to dst's)."""
    runs = _forward_runs(cfg, src.shape[2], dst.shape[2])
    return _depth_gather(dst, (0, 1), src, runs, range(cfg.kernel[0]), cfg.stride[0],
                         cfg.dilation[0], _forward_pass(cfg.as_2d(), groups, weight,
                                                        dst.shape[3:]),
                         bias, groups, _budget(dst.size), _padding_term(weight, cfg.kernel[0]))


def _depth_conv_adjoint(gy, weight, cfg, groups, dst, bias):
    """dst = the input gradient of conv3d (weight, cfg's geometry) of gy, + bias.

    Per depth phase (:func:`deconv.kernels.plan.phase_taps`: the dst depths
    ``first + m*sD``) a stride-1 correlation of gy's depths with the phase's
    taps; depths no tap reaches hold the bias."""
    kD, sD, pD, dD = cfg.kernel[0], cfg.stride[0], cfg.pad_before[0], cfg.dilation[0]
    D = dst.shape[2]
    geometry = cfg.as_2d()
    C_dst, H, W = dst.shape[1], dst.shape[3], dst.shape[4]
    plane = (lambda batch, w2, b:
             _plane_input_grad(batch, w2, b, geometry, groups, (batch.shape[0], C_dst, H, W)))
    pass_ = (plane, lambda taps: _input_grad_weight(weight, taps, groups))
    phases = plan.phase_taps(kD, sD, pD, dD, D)
    reached = set()
    for ph in phases:
        runs = shapes.depth_runs(gy.shape[2], ph.count, len(ph.taps), 1, ph.padding,
                                 ph.dilation)
        _depth_gather(dst, (ph.first, sD), gy, runs, ph.taps, 1, ph.dilation, pass_, bias,
                      groups, _budget(dst.size))
        reached.update(range(ph.first, D, sD))
    missed = [d for d in range(D) if d not in reached]
    if missed:
        _fill_bias(dst, missed, bias)
    return dst


# ---------------------------------------------------------------------------
# Non-overlapping windows (kernel == stride, no padding, no dilation: a 3-D
# U-Net's k2 s2 down- and up-sampling, patch embeddings): every input element
# meets at most one tap, so the conv is a pointwise conv of the input's
# patches moved into channels ("space to depth"), and the transposed conv the
# pointwise input gradient moved back. The pointwise passes are 2-D 1x1 convs
# on (N, C*T, D_out*H_out, W_out) views, T = kD*kH*kW taps per patch.
# ---------------------------------------------------------------------------

def _is_patch(cfg, *arrays):
    """True when the windows tile without overlap or gaps: kernel == stride,
    no padding, no dilation, on every axis (and no array is empty: those take
    the general path, which returns at once)."""
    return (cfg.kernel == cfg.stride and set(cfg.pad_before) == {0}
            and set(cfg.pad_after) == {0} and set(cfg.dilation) == {1}
            and all(a.size for a in arrays))


def _to_patches(a, kernel, patches):
    """(N, C, D, H, W) -> (N, C*T, P_D, P_H, P_W): channel c*T + t holds tap t
    (row-major over the kernel) of each patch; a remainder past the last whole
    patch is left out, as the conv leaves it."""
    N, C = a.shape[:2]
    (kD, kH, kW), (PD, PH, PW) = kernel, patches
    v = a[:, :, :PD * kD, :PH * kH, :PW * kW].reshape(N, C, PD, kD, PH, kH, PW, kW)
    check_bytes("workspace", ((N, C * kD * kH * kW, PD, PH, PW), a.dtype))
    return np.ascontiguousarray(v.transpose(0, 1, 3, 5, 7, 2, 4, 6)).reshape(
        N, C * kD * kH * kW, PD, PH, PW)


def _from_patches(p, kernel, shape, fill):
    """The inverse move: p (N, C*T, P_D, P_H, P_W) into a new array of ``shape``
    (N, C, D, H, W); what no patch covers (a remainder, output padding) is ``fill``."""
    N, C = shape[:2]
    (kD, kH, kW), (PD, PH, PW) = kernel, p.shape[2:]
    moved = p.reshape(N, C, kD, kH, kW, PD, PH, PW).transpose(0, 1, 5, 2, 6, 3, 7, 4)
    covered = (PD * kD, PH * kH, PW * kW)
    if covered == tuple(shape[2:]):
        out = np.empty(shape, dtype=p.dtype)
        out.reshape(N, C, PD, kD, PH, kH, PW, kW)[...] = moved
        return out
    out = np.full(shape, fill, dtype=p.dtype)
    out[:, :, :covered[0], :covered[1], :covered[2]] = moved.reshape((N, C) + covered)
    return out


def _pointwise(a):
    """(N, C, P_D, P_H, P_W) as the 2-D batch (N, C, P_D*P_H, P_W) of the 1x1 passes."""
    return a.reshape(a.shape[:2] + (a.shape[2] * a.shape[3], a.shape[4]))


def _patch_weight(weight):
    """The weight (A, B, kD, kH, kW) as the 1x1 weight (A, B*T, 1, 1), inputs (b, t)."""
    return weight.reshape(weight.shape[0], int(np.prod(weight.shape[1:])), 1, 1)


def _patch_blocks(patches, per_patch, result_elements):
    """Boxes of patches (d0, d1, h0, h1) (all of W) whose workspace,
    ``per_patch`` elements a patch, stays within :func:`_budget` of the
    result: whole patch depths while one fits, else rows of one depth."""
    PD, PH, PW = patches
    budget = _budget(result_elements)
    per_depth = per_patch * PH * PW
    if per_depth <= budget or PH == 1:
        step = _blocks(PD, per_depth, budget)
        return [(d, min(d + step, PD), 0, PH) for d in range(0, PD, step)]
    rows = _blocks(PH, per_patch * PW, budget)
    return [(d, d + 1, h, min(h + rows, PH)) for d in range(PD) for h in range(0, PH, rows)]


def _patch_box(a, box, kernel):
    """The part of ``a`` (N, C, D, H, W) that the patches of ``box`` cover."""
    (d0, d1, h0, h1), (kD, kH, _) = box, kernel
    return a[:, :, d0 * kD:d1 * kD, h0 * kH:h1 * kH]


def _patch_conv(x, weight, bias, cfg, out):
    """conv3d with non-overlapping windows: x (N, C_in, D, H, W) -> (N, C_out, *out),
    in boxes of patches."""
    N, C_out = x.shape[0], weight.shape[0]
    w2 = _patch_weight(weight)
    y = aligned_empty((N, C_out) + tuple(out), dtype=x.dtype)
    for box in _patch_blocks(out, w2.shape[1] * cfg.groups * N, y.size):
        d0, d1, h0, h1 = box
        # (N, C_in*T, d1-d0, h1-h0, P_W)
        xp = _to_patches(_patch_box(x, box, cfg.kernel), cfg.kernel, (d1 - d0, h1 - h0, out[2]))
        yb = _plane_conv(_pointwise(xp), w2, bias, _POINTWISE, cfg.groups,
                         ((d1 - d0) * (h1 - h0), out[2]))
        y[:, :, d0:d1, h0:h1] = yb.reshape((N, C_out, d1 - d0, h1 - h0, out[2]))
    return y


def _patch_conv_adjoint(gy, weight, cfg, shape, bias):
    """The adjoint of :func:`_patch_conv` (conv3d's input gradient, the transposed
    conv's forward): gy (N, A, *patches) -> (N, C, *shape[2:]), bias added; in
    boxes of patches, each written once into its place."""
    N, patches = gy.shape[0], gy.shape[2:]
    w2 = _patch_weight(weight)
    C_mid = w2.shape[1] * cfg.groups
    covered = tuple(p * k for p, k in zip(patches, cfg.kernel))
    out = (aligned_empty if covered == tuple(shape[2:]) else aligned_zeros)(shape, dtype=gy.dtype)
    for box in _patch_blocks(patches, N * C_mid, out.size):
        d0, d1, h0, h1 = box
        block = np.ascontiguousarray(gy[:, :, d0:d1, h0:h1])
        gp = _plane_input_grad(_pointwise(block), w2, None, _POINTWISE, cfg.groups,
                               (N, C_mid, (d1 - d0) * (h1 - h0), patches[2]))
        dst = _patch_box(out, box, cfg.kernel)[..., :covered[2]]
        dst[...] = _from_patches(gp.reshape((N, C_mid, d1 - d0, h1 - h0, patches[2])),
                                 cfg.kernel, dst.shape, 0.0)
    if bias is not None:
        out += bias.reshape(1, -1, 1, 1, 1)
    return out


def _patch_backward(gy, x, weight, cfg, input_grad):
    """The transposed conv's input and weight gradients with non-overlapping
    windows, from one patch layout of ``gy`` per box (not one for each): gy
    (N, A, D, H, W) plays the conv's input, x (N, B, *patches) the conv's
    output gradient; returns (grad_x or None, grad_weight), bitwise what
    :func:`_patch_conv` of gy and :func:`_patch_weight_grad` of (gy, x) give."""
    N, patches = gy.shape[0], x.shape[2:]
    w2 = _patch_weight(weight)
    T_C = w2.shape[1] * cfg.groups
    grad_x = aligned_empty(x.shape, dtype=x.dtype) if input_grad else None
    grad = None
    for box in _patch_blocks(patches, N * T_C, x.size):
        d0, d1, h0, h1 = box
        rows = (d1 - d0) * (h1 - h0)
        # (N, A*T, rows, P_W)
        gp = _pointwise(_to_patches(_patch_box(gy, box, cfg.kernel), cfg.kernel,
                                    (d1 - d0, h1 - h0, patches[2])))
        xb = np.ascontiguousarray(x[:, :, d0:d1, h0:h1])   # (N, B, d1-d0, h1-h0, P_W)
        if input_grad:
            grad_x[:, :, d0:d1, h0:h1] = _plane_conv(
                gp, w2, None, _POINTWISE, cfg.groups, (rows, patches[2])).reshape(xb.shape)
        part = _plane_weight_grad(gp, _pointwise(xb), _POINTWISE, cfg.groups,
                                  (weight.shape[0], w2.shape[1], 1, 1), gp.size)
        grad = part if grad is None else grad + part
    return grad_x, grad.reshape(weight.shape)


def _patch_weight_grad(x, gy, cfg, weight_shape, result_elements):
    """grad_weight of :func:`_patch_conv`: x (N, C_in, D, H, W), gy (N, C_out, *patches);
    the boxes' sums added in box order; workspaces within the budget of a pass
    whose results hold ``result_elements``."""
    N, patches = x.shape[0], gy.shape[2:]
    T_C = int(np.prod(weight_shape[1:])) * cfg.groups
    w2_shape = (weight_shape[0], T_C // cfg.groups, 1, 1)
    grad = None
    for box in _patch_blocks(patches, N * T_C, result_elements):
        d0, d1, h0, h1 = box
        xp = _to_patches(_patch_box(x, box, cfg.kernel), cfg.kernel,
                         (d1 - d0, h1 - h0, patches[2]))
        gb = np.ascontiguousarray(gy[:, :, d0:d1, h0:h1])
        part = _plane_weight_grad(_pointwise(xp), _pointwise(gb), _POINTWISE, cfg.groups,
                                  w2_shape, xp.size)
        grad = part if grad is None else grad + part
    return grad.reshape(weight_shape)


def conv3d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """3-D convolution (cross-correlation), as ``torch.nn.functional.conv3d``.

    Parameters
    ----------
    x : ndarray, shape (N, C_in, D, H, W)
        float32 or float64.
    weight : ndarray, shape (C_out, C_in/groups, kD, kH, kW)
    bias : ndarray, shape (C_out,), optional
    stride, dilation : int or (int, int, int)
    padding : int, (int, int, int), 'valid' or 'same'
        ``'same'`` (stride 1 only) puts an odd extra pad at the end of an axis.
    groups : int

    Returns
    -------
    y : ndarray, shape (N, C_out, D_out, H_out, W_out), dtype of ``x``

    Notes
    -----
    ``y[n, o, t, i, j] = bias[o] + sum_{c, e, a, b} weight[o, c, e, a, b] *
    x_pad[n, g*C_in/groups + c, t*sD + e*dD, i*sH + a*dH, j*sW + b*dW]``, and
    per axis

    ``out = floor((L + p_before + p_after - d*(k-1) - 1) / s) + 1``.

    Each output depth ``t`` is one 2-D convolution (:func:`conv2d`'s kernels)
    of the stack of the input slices ``t*sD + e*dD - pD`` it reads (the taps
    ``e`` over the input) with the weight's taps as input channels.

    Examples
    --------
    >>> import numpy as np, deconv
    >>> x = np.ones((1, 1, 3, 3, 3), dtype=np.float32)
    >>> w = np.ones((1, 1, 2, 2, 2), dtype=np.float32)
    >>> deconv.conv3d(x, w, padding=1)[0, 0, 0]
    array([[1., 2., 2., 1.],
           [2., 4., 4., 2.],
           [2., 4., 4., 2.],
           [1., 2., 2., 1.]], dtype=float32)
    """
    x, weight, bias, cfg, out = _conv_config(x, weight, bias, stride, padding, dilation, groups, 3)
    N, C_out = x.shape[0], weight.shape[0]
    x, weight, bias = _ready("output", [((N, C_out) + out, x.dtype)], x=x, weight=weight, bias=bias)
    if _is_patch(cfg, x, weight) and np.prod(out):
        return _patch_conv(x, weight, bias, cfg, out)
    # (N, C_out, D_out, H_out, W_out)
    y = aligned_empty((N, C_out) + out, dtype=x.dtype)
    return _depth_conv(x, weight, cfg, cfg.groups, y, bias)


@refuse_positional_bias
def conv3d_backward(grad_output, x, weight, *, stride=1, padding=0, dilation=1, groups=1,
                    input_grad=True):
    """Gradients of :func:`conv3d` with respect to its input, weight and bias.

    Parameters
    ----------
    grad_output : ndarray, shape (N, C_out, D_out, H_out, W_out)
    x : ndarray, shape (N, C_in, D, H, W)
    weight : ndarray, shape (C_out, C_in/groups, kD, kH, kW)
    stride, padding, dilation, groups : keyword-only
        As given to :func:`conv3d` (no ``bias``: see :func:`conv2d_backward`).

    input_grad : bool, keyword-only, default True
        False skips the input gradient and returns None for it (see
        :func:`conv2d_backward`).

    Returns
    -------
    grad_input : ndarray, shape (N, C_in, D, H, W), or None
    grad_weight : ndarray, shape (C_out, C_in/groups, kD, kH, kW)
    grad_bias : ndarray, shape (C_out,)

    Notes
    -----
    ``out = floor((L + p_before + p_after - d*(k-1) - 1) / s) + 1`` per axis,
    as in :func:`conv3d`. Each depth of ``grad_input`` is one 2-D input
    gradient of the stack of grad_output slices that read it (per stride
    phase of the depth), and ``grad_weight[:, :, e]`` sums 2-D weight
    gradients over the output depths, in a fixed order.

    Examples
    --------
    >>> import numpy as np, deconv
    >>> x = np.ones((1, 1, 2, 2, 2)); w = np.ones((1, 1, 2, 2, 2))
    >>> gx, gw, gb = deconv.conv3d_backward(np.ones((1, 1, 1, 1, 1)), x, w)
    >>> gx[0, 0]
    array([[[1., 1.],
            [1., 1.]],
    <BLANKLINE>
           [[1., 1.],
            [1., 1.]]])
    >>> gb
    array([1.])
    """
    input_grad = as_bool(input_grad, "input_grad")
    x, weight, _, cfg, out = _conv_config(x, weight, None, stride, padding, dilation, groups, 3)
    grad_output = _as_grad_output(grad_output, x, weight, (x.shape[0], weight.shape[0]) + out,
                                  cfg, "conv3d")
    grad_output, x, weight = _ready(
        "outputs (grad_input, grad_weight, grad_bias)",
        [(x.shape, x.dtype), (weight.shape, x.dtype), ((weight.shape[0],), x.dtype)],
        grad_output=grad_output, x=x, weight=weight)
    grad_input = None
    if _is_patch(cfg, x, weight, grad_output):
        if input_grad:
            grad_input = _patch_conv_adjoint(grad_output, weight, cfg, x.shape, None)
        return (grad_input, _patch_weight_grad(x, grad_output, cfg, weight.shape, x.size),
                _grad_bias(grad_output))
    if input_grad:
        # (N, C_in, D, H, W)
        grad_input = _depth_conv_adjoint(grad_output, weight, cfg, cfg.groups,
                                         aligned_empty(x.shape, dtype=x.dtype), None)
    grad_weight = _depth_weight_grad(x, grad_output, _forward_runs(cfg, x.shape[2], out[0]),
                                     cfg.stride[0], cfg.dilation[0], cfg.as_2d(), cfg.groups,
                                     weight.shape, _budget(x.size))
    return grad_input, grad_weight, _grad_bias(grad_output)


def conv_transpose3d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """3-D transposed convolution, as ``torch.nn.functional.conv_transpose3d``.

    The adjoint of :func:`conv3d` (see :func:`conv_transpose2d`).

    Parameters
    ----------
    x : ndarray, shape (N, C_in, D, H, W)
    weight : ndarray, shape (C_in, C_out/groups, kD, kH, kW)
    bias : ndarray, shape (C_out,), optional
    stride, padding, output_padding, dilation : int or (int, int, int)
        ``output_padding < max(stride, dilation)`` per axis.
    groups : int

    Returns
    -------
    y : ndarray, shape (N, C_out, D_out, H_out, W_out)

    Notes
    -----
    Per axis ``out = (L-1)*s - 2p + d*(k-1) + output_padding + 1``. Output
    depth ``u`` receives input depth ``t`` through the kernel depth taps
    ``e`` with ``t*sD + e*dD - pD = u``: it is one 2-D transposed convolution
    of the stack of those input slices, written once (per stride phase).

    Examples
    --------
    >>> import numpy as np, deconv
    >>> x = np.ones((1, 1, 2, 1, 1)); w = np.ones((1, 1, 3, 1, 1))
    >>> deconv.conv_transpose3d(x, w, stride=2)[0, 0, :, 0, 0]
    array([1., 1., 2., 1., 1.])
    """
    x, weight, bias, cfg, out = _conv_transpose_config(
        x, weight, bias, stride, padding, output_padding, groups, dilation, 3)
    N, C_out = x.shape[0], weight.shape[1] * cfg.groups
    x, weight, bias = _ready("output", [((N, C_out) + out, x.dtype)], x=x, weight=weight, bias=bias)
    if _is_patch(cfg, x, weight):
        return _patch_conv_adjoint(x, weight, cfg, (N, C_out) + out, bias)
    # (N, C_out, D_out, H_out, W_out): the conv whose adjoint this is maps it to x
    y = aligned_empty((N, C_out) + out, dtype=x.dtype)
    return _depth_conv_adjoint(x, weight, cfg, cfg.groups, y, bias)


@refuse_positional_bias
def conv_transpose3d_backward(grad_output, x, weight, *, stride=1, padding=0, output_padding=0,
                              groups=1, dilation=1, input_grad=True):
    """Gradients of :func:`conv_transpose3d` with respect to input, weight and bias.

    Parameters
    ----------
    grad_output : ndarray, shape (N, C_out, D_out, H_out, W_out)
    x : ndarray, shape (N, C_in, D, H, W)
    weight : ndarray, shape (C_in, C_out/groups, kD, kH, kW)
    stride, padding, output_padding, groups, dilation : keyword-only
        As given to :func:`conv_transpose3d` (no ``bias``).

    input_grad : bool, keyword-only, default True
        False skips the input gradient and returns None for it (see
        :func:`conv2d_backward`).

    Returns
    -------
    grad_input : ndarray, shape (N, C_in, D, H, W), or None
        The convolution :func:`conv3d` of ``grad_output`` with ``weight``.
    grad_weight : ndarray, shape (C_in, C_out/groups, kD, kH, kW)
    grad_bias : ndarray, shape (C_out,)

    Notes
    -----
    Per axis ``out = (L-1)*s - 2p + d*(k-1) + output_padding + 1``, as in
    :func:`conv_transpose3d`.

    Examples
    --------
    >>> import numpy as np, deconv
    >>> x = np.ones((1, 1, 2, 1, 1)); w = np.ones((1, 1, 3, 1, 1))
    >>> gx, gw, gb = deconv.conv_transpose3d_backward(np.ones((1, 1, 5, 1, 1)), x, w, stride=2)
    >>> gx[0, 0, :, 0, 0], gb
    (array([3., 3.]), array([5.]))
    """
    input_grad = as_bool(input_grad, "input_grad")
    x, weight, _, cfg, out = _conv_transpose_config(
        x, weight, None, stride, padding, output_padding, groups, dilation, 3)
    c_out = weight.shape[1] * cfg.groups
    grad_output = _as_grad_output(grad_output, x, weight, (x.shape[0], c_out) + out, cfg,
                                  "conv_transpose3d")
    grad_output, x, weight = _ready(
        "outputs (grad_input, grad_weight, grad_bias)",
        [(x.shape, x.dtype), (weight.shape, x.dtype), ((c_out,), x.dtype)],
        grad_output=grad_output, x=x, weight=weight)
    grad_input = None
    if _is_patch(cfg, x, weight, grad_output):
        # grad_output plays the conv's input, x the conv's output gradient
        return _patch_backward(grad_output, x, weight, cfg, input_grad) + (
            _grad_bias(grad_output),)
    if input_grad:
        # adjoint of the adjoint: a conv of grad_output, at exactly x's size
        grad_input = _depth_conv(grad_output, weight, cfg, cfg.groups,
                                 aligned_empty(x.shape, dtype=x.dtype), None)
    # grad_output plays the conv's input, x the conv's output gradient
    grad_weight = _depth_weight_grad(grad_output, x, _forward_runs(cfg, out[0], x.shape[2]),
                                     cfg.stride[0], cfg.dilation[0], cfg.as_2d(), cfg.groups,
                                     weight.shape, _budget(x.size))
    return grad_input, grad_weight, _grad_bias(grad_output)


__all__ += ["conv3d", "conv3d_backward", "conv_transpose3d", "conv_transpose3d_backward"]
