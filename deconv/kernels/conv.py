"""Numba kernels for convolution and transposed convolution (2-D; 1-D is H = 1).

Dimension letters: N batch, C_in / C_out channels, G groups, H, W input
size, H_out, W_out output size, kH, kW kernel size, K = C_in/G * kH * kW the
length of one receptive field, P = H_out * W_out the number of output pixels,
T the number of parallel chunks.

Two register-tiled kernels serve all six convolution passes, through the
adjoint relations (Chainer's ``convolution_2d`` / ``deconvolution_2d`` reuse
their passes the same way):

=========================  =========================================================
conv forward               ``conv_forward_blocked``
conv grad_input            ``conv_forward_blocked``, once per stride phase
                           (:func:`deconv.functional.conv._conv_input_grad_phases`)
conv grad_weight           ``conv_weight_grad_blocked``
transposed conv forward    = conv grad_input (it *is* conv's adjoint)
transposed grad_input      = conv forward
transposed grad_weight     ``conv_weight_grad_blocked``, input and grad swapped
=========================  =========================================================

Both copy the input rows they need into *phase planes* (``_fill_phases``:
the zero-padded input, split by stride phase, so that every tap of the
receptive field is a contiguous run of one plane, at an offset from a
table; a pointwise forward whose rows are whole vectors reads the input
itself, ``in_place``), and both run on a multiply-add tile written in LLVM IR
(:mod:`deconv.kernels.microkernel`) that keeps its accumulators in vector
registers: no im2col matrix and no BLAS call. Where rows are short (planes of
8x8, 7x7 or 14x14 outputs, which fill half or 7/8 of a vector of outputs),
the plan (:func:`deconv.kernels.plan.use_broadcast_forward`) picks the
channel-vector kernels ``conv_forward_broadcast`` and
``conv_weight_grad_broadcast`` instead: their tile broadcasts the input and
keeps vectors of output channels, so its lanes are full whatever the plane
(and a stride phase of an input gradient is written in place). Input gradients with few input
channels per group (a flipped conv would have few outputs) keep GEMM and
col2im (``conv_input_grad``); depthwise convolutions with few outputs per
group use the direct loops ``depthwise_forward`` / ``depthwise_input_grad``.

Threads. The work is cut into items that write disjoint parts of the result
(tiles of output rows of a (sample, group); (batch chunk, group, range of
channel blocks) for the weight gradient, whose chunk partial sums are added
in a fixed order). ``prange`` runs T chunks of items. Every output element
is one tile's sum in a fixed order, and the cut depends on the shapes only,
so results are bitwise identical for any number of threads. Where BLAS is
still called (``conv_input_grad``), the caller has limited it to one thread
(:mod:`deconv.kernels.threads`), so that one thread pool is active at a time.

Workspaces (per chunk phase planes, ``col``) are allocated by the callers
with NumPy: fresh multi-MB allocations inside Numba page-fault on every call.

The kernels trust their arguments: shapes, dtypes and contiguity are checked
by the public wrappers in :mod:`deconv.functional.conv`. The tiles, the cut
into items and the workspace sizes come from :mod:`deconv.kernels.plan`; the
tile shape and the vector width arrive as compile-time literals (arguments
wrapped by :func:`deconv.kernels.common.compile_time`), which the kernels
hand on to the micro-kernels unchanged.
"""

import numpy as np
from numba import njit, prange

from deconv.kernels.common import all_finite, plane_sum, valid_range
from deconv.kernels.microkernel import (interleave_rows, register_tile, register_tile_broadcast,
                                        register_tile_reduce, transpose_square)
from deconv.kernels.plan import chunk


@njit(cache=True)
def _col2im(col, x, kH, kW, sH, sW, pH, pW, dH, dW, H_out, W_out):
    """Fold back, summing overlaps: x[c, ih, iw] += col[(c, i, j), (oh, ow)].

    The adjoint of :func:`_im2col` over all output rows; contributions that
    land in the padding are dropped. x: (C, H, W) accumulated into,
    col: (C*kH*kW, H_out*W_out).
    """
    C, H, W = x.shape
    for c in range(C):
        for i in range(kH):
            oh_lo, oh_hi = valid_range(i * dH - pH, sH, H_out, H)
            for j in range(kW):
                row = col[(c * kH + i) * kW + j]
                ow_lo, ow_hi = valid_range(j * dW - pW, sW, W_out, W)
                for oh in range(oh_lo, oh_hi):
                    dst = x[c, oh * sH + i * dH - pH][ow_lo * sW + j * dW - pW:]
                    src = row[oh * W_out + ow_lo:]
                    if sW == 1:
                        for t in range(ow_hi - ow_lo):
                            dst[t] += src[t]
                    elif sW == 2:
                        for t in range(ow_hi - ow_lo):
                            dst[2 * t] += src[t]
                    else:
                        for t in range(ow_hi - ow_lo):
                            dst[t * sW] += src[t]


# items [lo, hi) of chunk t of T (the plan's split, inlined)
_chunk = njit(cache=True, inline="always")(chunk)


@njit(cache=True)
def _fill_phases(x_c, buf, r0, sH, sW, pH, pW, Hq, Wq):
    """Phase planes of one zero-padded input plane, from padded row r0*sH on:
    buf[(a*sW + b)*Hq*Wq + i*Wq + j] = x_padded[(r0 + i)*sH + a, j*sW + b].

    With stride 1 there is one phase, the padded plane itself; with stride s
    every tap of a strided conv reads a contiguous run of one phase plane.
    x_c: (H, W); buf: (sH*sW*Hq*Wq,). One fill with zeros, then only the rows
    that hold input are copied: phase rows are short, and per-row work counts.
    """
    H, W = x_c.shape
    buf[:] = 0.0
    for a in range(sH):
        i_lo, i_hi = valid_range(r0 * sH + a - pH, sH, Hq, H)
        for b in range(sW):
            j_lo, j_hi = valid_range(b - pW, sW, Wq, W)
            n = j_hi - j_lo
            if n <= 0:
                continue
            plane = (a * sW + b) * Hq * Wq
            c0 = j_lo * sW + b - pW
            for i in range(i_lo, i_hi):
                ih = (r0 + i) * sH + a - pH
                o = plane + i * Wq + j_lo
                if sW == 1:
                    # views keep this copy vectorised (flat indices that might be
                    # negative would not be)
                    dst = buf[o:o + n]
                    src = x_c[ih, c0:c0 + n]
                    for j in range(n):
                        dst[j] = src[j]
                elif sW == 2:
                    # a constant stride and blocks of constant length: LLVM
                    # vectorises the de-interleave (2x faster than one loop of n)
                    dst = buf[o:o + n]
                    src = x_c[ih, c0:]
                    body = n - n % 8
                    for j0 in range(0, body, 8):
                        for j in range(j0, j0 + 8):
                            dst[j] = src[2 * j]
                    for j in range(body, n):
                        dst[j] = src[2 * j]
                else:
                    for j in range(n):
                        buf[o + j] = x_c[ih, c0 + j * sW]


@njit(cache=True)
def _fill_group(x_n, g, buf, r0, sH, sW, pH, pW, Hq, Wq):
    """The phase planes (``_fill_phases``) of the C_in/G input channels of group
    g of one sample, one after another in buf. x_n: (C_in, H, W)."""
    phase_len = sH * sW * Hq * Wq
    C_in_g = buf.shape[0] // phase_len
    for c in range(C_in_g):
        _fill_phases(x_n[g * C_in_g + c], buf[c * phase_len:(c + 1) * phase_len],
                     r0, sH, sW, pH, pW, Hq, Wq)


@njit(parallel=True, cache=True)
def conv_forward_blocked(x, w_packed, b_packed, has_bias, sH, sW, pH, pW, offs, rows, Hq, Wq,
                         vectors, row_vectors, k_block, span, in_place, out, phase_ws, MR, NV,
                         lanes):
    """out = conv(x, weight) + bias by register tiles, without im2col.

    x: (N, C_in, H, W); w_packed: (G, B, K, MR), the weight of each group cut
    into B blocks of MR output channels (zero rows past C_out/G) and stored
    tap-major; b_packed: (G, B, MR); offs: (K,), where tap k = (c, i, j) of
    the receptive field of the first output of a row reads the phase buffer;
    vectors: (V, 3), the vectors of an item's rows (``ForwardPlan.vectors``),
    row_vectors of them per row; span: vectors covered per block of taps
    (``ForwardPlan.span``); in_place: the tiles read x itself (a pointwise
    conv whose rows are whole vectors; ``ForwardPlan`` with offs over x's
    planes and no workspace), not phase planes; out: (N, C_out, H_out, W_out); phase_ws:
    (T, planes + slack); MR, NV, lanes: compile-time literals, the plan's
    tile (``ForwardPlan``).

    Items are (sample, group, tile of ``rows`` output rows). An item copies the
    input rows its outputs need into phase planes (``_fill_phases``, Hq x Wq
    each, C_in/G * sH * sW of them, in phase_ws[t]), then covers its outputs
    with register tiles of MR output channels by NV vectors of lanes
    (``register_tile``): the next NV vectors of the item's rows in row order,
    whatever rows they are in, so that only a row's last vector may be short
    (a row of 56 float32 outputs is 4 vectors, the last of 8). Tiles past the
    item's last vector or past the last channels store only their real part
    (masked stores). Each output's sum over the K taps runs in equal blocks
    of at most ``k_block`` taps, each summed from 0 in registers and added to
    the output in order (blocked accumulation): the cut into items does not
    change a bit.
    """
    N, C_in, H, W = x.shape
    groups, blocks, K, _ = w_packed.shape          # (G, B, K, MR)
    C_out, H_out, W_out = out.shape[1], out.shape[2], out.shape[3]
    C_in_g = C_in // groups
    C_out_g = C_out // groups
    size = x.itemsize
    zero = x.dtype.type(0)
    P = H_out * W_out
    phase_len = sH * sW * Hq * Wq
    n_tiles = (H_out + rows - 1) // rows
    items = N * groups * n_tiles
    # the K taps in equal blocks of at most k_block (147 taps: 74 + 73, not 128 + 19)
    k_blocks = (K + k_block - 1) // k_block
    k_step = (K + k_blocks - 1) // k_blocks
    T = phase_ws.shape[0]
    for t in prange(T):
        lo, hi = _chunk(items, t, T)
        buf = phase_ws[t]
        buf_addr = buf.ctypes.data
        offs_addr = offs.ctypes.data
        vec_addr = vectors.ctypes.data
        # slack past the planes, read by the lanes of a row's last vector
        buf[C_in_g * phase_len:] = 0.0
        for item in range(lo, hi):
            n = item // (groups * n_tiles)
            g = (item // n_tiles) % groups
            r0 = (item % n_tiles) * rows
            r1 = min(r0 + rows, H_out)
            if in_place:
                buf_addr = x[n, g * C_in_g].ctypes.data + r0 * W * size
            else:
                _fill_group(x[n], g, buf[:C_in_g * phase_len], r0, sH, sW, pH, pW, Hq, Wq)
            n_vec = (r1 - r0) * row_vectors
            # spans of output vectors outside (about one output row; fewer where
            # a block of taps would read more input than L1 holds), then blocks
            # of taps, channel blocks inside: the input a span reads for a block
            # of taps stays in L1 while the weight blocks stream from L2. Each
            # output still sums its blocks of taps in order.
            for s0 in range(0, n_vec, span):
                s1 = min(n_vec, s0 + span)
                for k0 in range(0, K, k_step):
                    k1 = min(K, k0 + k_step)
                    for blk in range(blocks):
                        a_addr = w_packed[g, blk].ctypes.data
                        bias_addr = b_packed[g, blk].ctypes.data
                        co0 = g * C_out_g + blk * MR
                        m_valid = min(MR, C_out_g - blk * MR)
                        out_addr = out[n, co0].ctypes.data + r0 * W_out * size
                        for v0 in range(s0, s1, NV):
                            register_tile(zero, out_addr, P, m_valid, s1 - v0,
                                          a_addr + k0 * MR * size, buf_addr, offs_addr + k0 * 8,
                                          k1 - k0, vec_addr + v0 * 3 * 8, bias_addr,
                                          has_bias and k1 == K, k0 > 0, MR, NV, lanes)


@njit(parallel=True, cache=True)
def conv_weight_grad_blocked(x, grad_output, sH, sW, pH, pW, offs, Hq, Wq, runs, full, S,
                             span, carry_taps, splits, partial, phase_ws, MR, NK, lanes):
    """Partial weight gradients by register tiles, one per (batch chunk, group).

    x: (N, C_in, H, W); grad_output: (N, C_out, H_out, W_out); offs: (K + NK,),
    the forward's tap offsets into the phase planes of a whole sample (Hq x Wq
    each; see ``conv_forward_blocked``), zero past K; partial:
    (B, G, C_out/G, K), zero-filled; chunk b sums samples [N*b//B,
    N*(b+1)//B) in order, S samples at a time: runs: (S * R, 3), the output
    pixels of S consecutive samples cut into vectors (see
    ``register_tile_reduce``), so that a tile sums enough pixels to pay for
    its final reduction: the ``full`` whole vectors of each sample for the S
    samples in turn, then the S samples' partial vectors. The whole vectors
    are summed in equal spans of at most ``span`` (``ReducePlan.span``), the
    partial vectors with the last: the span's operands stay in L1 while every
    tile of a block of ``carry_taps`` taps runs over them, each tile carrying
    its accumulator vectors to the next span (in the last carry_taps * MR *
    lanes elements of phase_ws[t]) and summing its lanes into ``partial``
    after the last; every lane sums the runs in order, as one pass over all of
    them would. Tiles are MR output
    channels x NK taps of vectors of ``lanes`` pixels, compile-time literals
    from the plan (``ReducePlan``: 4 x 6, or 1 x 12 for one output channel per
    group). Items are (chunk, group, one of ``splits`` ranges of channel
    blocks): each writes its own rows of ``partial``.
    """
    N, C_in, H, W = x.shape
    H_out, W_out = grad_output.shape[2], grad_output.shape[3]
    B, groups, C_out_g, K = partial.shape
    C_in_g = C_in // groups
    size = x.itemsize
    zero = x.dtype.type(0)
    P = H_out * W_out
    phase_len = sH * sW * Hq * Wq
    sample_len = C_in_g * phase_len
    tail = runs.shape[0] // S - full
    first_row = H_out - H_out      # a run-time 0: a literal would compile a second _fill_group
    co_blocks = (C_out_g + MR - 1) // MR
    items = B * groups * splits
    T = phase_ws.shape[0]
    for t in prange(T):
        lo, hi = _chunk(items, t, T)
        buf = phase_ws[t]
        buf_addr = buf.ctypes.data
        offs_addr = offs.ctypes.data
        runs_addr = runs.ctypes.data
        tail_addr = runs_addr + S * full * 3 * 8
        # the carries, where the whole runs of S samples make more than one span
        carry_len = carry_taps * MR * lanes if S * full > span else 0
        carry_addr = buf[buf.shape[0] - carry_len:].ctypes.data
        tile_len = MR * NK * lanes * size           # bytes of one tile's carry
        buf[S * sample_len:buf.shape[0] - carry_len] = 0.0
        for item in range(lo, hi):
            b = item // (groups * splits)
            g = (item // splits) % groups
            blk_lo, blk_hi = _chunk(co_blocks, item % splits, splits)
            n_end = N * (b + 1) // B
            for n0 in range(N * b // B, n_end, S):
                count = min(S, n_end - n0)
                for s in range(count):
                    _fill_group(x[n0 + s], g, buf[s * sample_len:(s + 1) * sample_len],
                                first_row, sH, sW, pH, pW, Hq, Wq)
                n_full = count * full
                # the whole runs in equal spans (at least one span, for the short runs)
                spans = max(1, (n_full + span - 1) // span)
                step = max(1, (n_full + spans - 1) // spans)
                for blk in range(blk_lo, blk_hi):
                    co0 = blk * MR
                    m_valid = min(MR, C_out_g - co0)
                    dy_addr = grad_output[n0, g * C_out_g + co0].ctypes.data
                    out_addr = partial[b, g, co0].ctypes.data
                    for kb in range(0, K, carry_taps):
                        for r0 in range(0, max(n_full, 1), step):
                            r1 = min(n_full, r0 + step)
                            last = r1 == n_full
                            n_tail = count * tail if last else 0
                            for k0 in range(kb, min(K, kb + carry_taps), NK):
                                register_tile_reduce(
                                    zero, out_addr + k0 * size, K, m_valid, min(NK, K - k0),
                                    dy_addr, P, buf_addr, offs_addr + k0 * 8,
                                    runs_addr + r0 * 3 * 8, r1 - r0, tail_addr, n_tail,
                                    carry_addr + (k0 - kb) // NK * tile_len, r0 > 0, not last,
                                    MR, NK, lanes)


@njit(cache=True, inline="always")
def _broadcast_block_tiles(scratch_addr, blk, w_addr, K, k_chunk, b_group, n_valid, n_pix,
                           buf_addr, pin_addr, offs_addr, has_bias, zero, MR, NV, lanes):
    """Block ``blk`` of NR channels (n_valid of them real) of n_pix pixels into
    the pixel-major scratch (Q, NR) at scratch_addr: its sum over K taps in
    calls of k_chunk taps, each over every tile of MR pixels, so that the
    chunk's weights stay in cache meanwhile (see :func:`_broadcast_blocks`)."""
    size = b_group.itemsize
    NR = b_group.shape[1]
    a_addr = w_addr + blk * K * NR * size
    bias_addr = b_group[blk].ctypes.data
    for k0 in range(0, K, k_chunk):
        k1 = min(K, k0 + k_chunk)
        for p0 in range(0, n_pix, MR):
            register_tile_broadcast(zero, scratch_addr + p0 * NR * size, NR,
                                    min(MR, n_pix - p0), n_valid,
                                    a_addr + k0 * NR * size, NR, buf_addr,
                                    pin_addr + p0 * 8, offs_addr + k0 * 8, k1 - k0,
                                    bias_addr, has_bias and k1 == K, k0 > 0, MR, NV, lanes)


@njit(cache=True, inline="always")
def _broadcast_blocks(out_flat, base, HW, pixels_out, w_addr, K, k_chunk, b_group, C_g, n_pix,
                      buf_addr, scratch, pin_addr, offs_addr, has_bias, MR, NV, lanes):
    """One item's pixels for every block of NR output channels of one group, by
    channel-vector tiles (the body shared by ``conv_forward_broadcast`` and
    ``conv_input_grad_broadcast_phases``): each block's sum over K taps runs in
    calls of k_chunk taps, each over every tile of MR of the n_pix pixels
    (``pin_addr``: their offsets into the planes at ``buf_addr``; ``offs_addr``:
    the taps'), so that the chunk's weights stay in cache meanwhile, into the
    pixel-major scratch (Q, NR); the block is then copied into out_flat, channel
    c of block b at ``base + (b*NR + c)*HW + pixels_out[p]`` (a scattered store
    per vector, channels HW apart, costs more than the copy). w_addr: the
    group's packed weight (B, K, NR); b_group: its packed bias (B, NR); C_g:
    its output channels. Inlined, so that the tile's literals stay literals."""
    zero = scratch.dtype.type(0)
    blocks, NR = b_group.shape
    scratch_addr = scratch.ctypes.data
    for blk in range(blocks):
        n_valid = min(NR, C_g - blk * NR)
        _broadcast_block_tiles(scratch_addr, blk, w_addr, K, k_chunk, b_group, n_valid, n_pix,
                               buf_addr, pin_addr, offs_addr, has_bias, zero, MR, NV, lanes)
        for c in range(n_valid):
            dst = base + (blk * NR + c) * HW
            for p in range(n_pix):
                out_flat[dst + pixels_out[p]] = scratch[p * NR + c]


@njit(cache=True, inline="always")
def _broadcast_blocks_paired(out_flat, base, HW, pixels_out, b_group, C_g, n_pix, buf_addr,
                             scratch, Q, w_lo, K_lo, kc_lo, pin_lo, offs_lo, w_hi, K_hi, kc_hi,
                             pin_hi, offs_hi, has_bias, MR, NV, lanes):
    """:func:`_broadcast_blocks` for a pair of stride-2 column phases with the
    same positions (``plan.pairs_interleave``), ``lo`` the one whose positions
    come one column first (``base`` is its), ``hi`` the other: each block is
    summed for both, into two pixel-major scratches (Q, NR), then written
    squares of lanes channels x lanes pixels at a time, each scratch's square
    transposed in registers and the two interleaved (``interleave_rows``)
    into two runs of lanes elements of an output row per channel (whole
    lines), the edges one element at a time. scratch: (2 * Q * NR + 2 *
    lanes * lanes,)."""
    zero = scratch.dtype.type(0)
    size = scratch.itemsize
    blocks, NR = b_group.shape
    s_lo = scratch[:Q * NR]
    s_hi = scratch[Q * NR:2 * Q * NR]
    t_lo = scratch[2 * Q * NR:].ctypes.data                     # (lanes, lanes)
    t_hi = t_lo + lanes * lanes * size
    out_addr = out_flat.ctypes.data
    half = lanes // 2
    p_body = n_pix - n_pix % lanes
    for blk in range(blocks):
        n_valid = min(NR, C_g - blk * NR)
        _broadcast_block_tiles(s_lo.ctypes.data, blk, w_lo, K_lo, kc_lo, b_group, n_valid, n_pix,
                               buf_addr, pin_lo, offs_lo, has_bias, zero, MR, NV, lanes)
        _broadcast_block_tiles(s_hi.ctypes.data, blk, w_hi, K_hi, kc_hi, b_group, n_valid, n_pix,
                               buf_addr, pin_hi, offs_hi, has_bias, zero, MR, NV, lanes)
        c_body = n_valid - n_valid % lanes
        for c0 in range(0, c_body, lanes):
            row = base + (blk * NR + c0) * HW
            for p0 in range(0, p_body, lanes):
                transpose_square(zero, s_lo[p0 * NR + c0:].ctypes.data, NR, t_lo, lanes, lanes)
                transpose_square(zero, s_hi[p0 * NR + c0:].ctypes.data, NR, t_hi, lanes, lanes)
                interleave_rows(zero, t_lo, t_hi, lanes, out_addr + (row + pixels_out[p0]) * size,
                                out_addr + (row + pixels_out[p0 + half]) * size, HW, lanes)
        for c in range(n_valid):
            dst = base + (blk * NR + c) * HW
            for p in range(p_body if c < c_body else 0, n_pix):
                out_flat[dst + pixels_out[p]] = s_lo[p * NR + c]
                out_flat[dst + pixels_out[p] + 1] = s_hi[p * NR + c]


@njit(parallel=True, cache=True)
def conv_forward_broadcast(x, w_packed, b_packed, has_bias, sH, sW, pH, pW, offs, rows, Hq, Wq,
                           S, pixels_in, pixels_out, k_chunk, h_out, w_out, out, first,
                           row_step, phase_ws, MR, NV, lanes):
    """conv(x, weight) + bias by channel-vector tiles, for small planes.

    The tile (``register_tile_broadcast``) keeps MR output pixels x NV vectors
    of output channels: each step broadcasts one input value per pixel and
    loads NV vectors of the weight, so its lanes are full whatever the width
    of a row (8x8 or 7x7 planes fill half a vector of ``register_tile``).

    x: (N, C_in, H, W); w_packed: (G, B, K, NR), NR = NV * lanes, the weight
    of each group cut into B blocks of NR output channels (zero past C_out/G),
    tap-major; b_packed: (G, B, NR); offs: (K,), the taps' offsets into a
    sample's phase planes; k_chunk: taps per tile call (the sum over K runs
    in calls of k_chunk taps, each carried into the next); out:
    (N, C_out, H_full, W_full), where output
    (n, c, oh, ow) of this conv (h_out x w_out) goes to element
    ``first + pixels_out[...]`` of plane (n, c), ``row_step`` rows of out
    per output row: the whole array for a conv, every s-th row and column
    for one stride phase of an input gradient. phase_ws: (T, S * planes +
    Q * NR), Q = len(pixels_in).

    Items are (chunk of S samples, group, tile of ``rows`` output rows), as
    :class:`deconv.kernels.plan.BroadcastPlan` plans them: an item fills its
    samples' phase planes (``_fill_group``), covers its pixels, in (sample,
    row, column) order, with tiles of MR pixels into a pixel-major scratch
    (Q, NR) for each block of channels, and copies that block into out (a
    scattered store per vector, channels H*W apart, costs more than the
    copy). Each output is one tile's sum over k in order: the cut into items
    does not change a bit.
    """
    N, C_in = x.shape[0], x.shape[1]
    groups, blocks, K, NR = w_packed.shape          # (G, B, K, NR)
    C_out, H_full, W_full = out.shape[1], out.shape[2], out.shape[3]
    C_out_g = C_out // groups
    HW = H_full * W_full
    planes = Hq * Wq * sH * sW * (C_in // groups)
    Q = pixels_in.shape[0]
    n_tiles = (h_out + rows - 1) // rows
    n_chunks = (N + S - 1) // S
    items = n_chunks * groups * n_tiles
    out_flat = out.reshape(out.size)
    T = phase_ws.shape[0]
    for t in prange(T):
        lo, hi = _chunk(items, t, T)
        buf = phase_ws[t]
        buf_addr = buf.ctypes.data
        scratch = buf[S * planes:S * planes + Q * NR]           # (Q, NR), pixel-major
        offs_addr = offs.ctypes.data
        pin_addr = pixels_in.ctypes.data
        for item in range(lo, hi):
            n0 = (item // (groups * n_tiles)) * S
            g = (item // n_tiles) % groups
            r0 = (item % n_tiles) * rows
            r1 = min(r0 + rows, h_out)
            count = min(S, N - n0)
            for s in range(count):
                _fill_group(x[n0 + s], g, buf[s * planes:(s + 1) * planes], r0, sH, sW, pH,
                            pW, Hq, Wq)
            # S > 1 only with whole planes (r1 - r0 = rows): the pixels are a prefix
            # of the plan's (sample, row, column) list
            n_pix = count * (r1 - r0) * w_out
            _broadcast_blocks(out_flat, (n0 * C_out + g * C_out_g) * HW + first
                              + r0 * row_step * W_full, HW, pixels_out,
                              w_packed[g].ctypes.data, K, k_chunk, b_packed[g], C_out_g, n_pix,
                              buf_addr, scratch, pin_addr, offs_addr, has_bias, MR, NV, lanes)


@njit(parallel=True, cache=True)
def conv_input_grad_broadcast_phases(x, w_phases, b_packed, has_bias, pH, pW, Hq, Wq, S,
                                     phases, offs, pixels_in, pixels_out, splits, paired, Q,
                                     out, phase_ws, MR, NV, lanes):
    """Every stride phase of a conv's input gradient by channel-vector tiles,
    each written in place, over one copy of grad_output per item.

    As ``conv_forward_broadcast`` run once per phase (x is grad_output, the
    phases' sub-kernels are packed in w_phases), but an item fills its
    samples' planes once for all the phases: zero-padded by (pH, pW), the
    most any phase pads, each phase reading them from its own shift (its
    ``offs``). The fill, a short copy per row of small planes, was a tenth
    of the time of DCGAN's stride-2 4x4 transposed conv (8x8 -> 16x16) when
    every phase made its own.

    x: (N, C, Hg, Wg); w_phases: the concatenation, phase after phase, of
    each phase's (G, B, K_f, NR) packed weight; b_packed: (G, B, NR); phases,
    offs, pixels_in, pixels_out, splits, paired, Q (scratch_pixels):
    :class:`deconv.kernels.plan.PhasesPlan`'s;
    out: (N, C_in, H, W); phase_ws: (T, workspace), PhasesPlan's.

    Items are (chunk of S samples, group, one of ``splits`` ranges of the
    phases, or of pairs of them), each filling its own copy. For each phase,
    each block of NR channels is summed over the phase's taps in calls of its
    k_chunk taps into a pixel-major scratch, then copied into the phase's
    positions of out; paired, both phases of a pair are summed, then written
    together as whole runs of output rows (:func:`_broadcast_blocks_paired`).
    Each output is one tile's sum over its phase's taps in order: the cut
    into items does not change a bit.
    """
    N, C = x.shape[0], x.shape[1]
    groups, blocks, NR = b_packed.shape
    C_in, H, W = out.shape[1], out.shape[2], out.shape[3]
    C_in_g = C_in // groups
    m = C // groups
    HW = H * W
    size = x.itemsize
    planes = m * Hq * Wq
    n_chunks = (N + S - 1) // S
    items = n_chunks * groups * splits
    out_flat = out.reshape(out.size)
    w_addr = w_phases.ctypes.data
    # run-time 0 and 1 (literals would compile a second _fill_group): the planes
    # are whole, unstrided
    first_row = H - H
    one = first_row + 1
    pin_addr = pixels_in.ctypes.data
    offs_addr = offs.ctypes.data
    step = 2 if paired else 1                  # phases per unit of a split
    T = phase_ws.shape[0]
    for t in prange(T):
        lo, hi = _chunk(items, t, T)
        buf = phase_ws[t]
        buf_addr = buf.ctypes.data
        scratch = buf[S * planes:]                     # (Q, NR), pixel-major; paired, two
        for item in range(lo, hi):
            n0 = (item // (groups * splits)) * S
            g = (item // splits) % groups
            f_lo, f_hi = _chunk(phases.shape[0] // step, item % splits, splits)
            f_lo, f_hi = f_lo * step, f_hi * step
            count = min(S, N - n0)
            for s in range(count):
                _fill_group(x[n0 + s], g, buf[s * planes:(s + 1) * planes], first_row, one, one,
                            pH, pW, Hq, Wq)
            if paired:
                for f in range(f_lo, f_hi, 2):
                    # a: the phase whose positions come one column first, b: the other
                    a = f + 1 if phases[f + 1, 0] < phases[f, 0] else f
                    b = 2 * f + 1 - a
                    _broadcast_blocks_paired(
                        out_flat, (n0 * C_in + g * C_in_g) * HW + phases[a, 0], HW,
                        pixels_out[phases[a, 5]:], b_packed[g], C_in_g, count * phases[a, 1],
                        buf_addr, scratch, Q,
                        w_addr + (phases[a, 6] + g * blocks * phases[a, 2] * NR) * size,
                        phases[a, 2], phases[a, 3], pin_addr + phases[a, 5] * 8,
                        offs_addr + phases[a, 4] * 8,
                        w_addr + (phases[b, 6] + g * blocks * phases[b, 2] * NR) * size,
                        phases[b, 2], phases[b, 3], pin_addr + phases[b, 5] * 8,
                        offs_addr + phases[b, 4] * 8, has_bias, MR, NV, lanes)
                continue
            for f in range(f_lo, f_hi):
                first, per_sample, K, k_chunk, o0, p_0, w0 = (
                    phases[f, 0], phases[f, 1], phases[f, 2], phases[f, 3], phases[f, 4],
                    phases[f, 5], phases[f, 6])
                _broadcast_blocks(out_flat, (n0 * C_in + g * C_in_g) * HW + first, HW,
                                  pixels_out[p_0:], w_addr + (w0 + g * blocks * K * NR) * size,
                                  K, k_chunk, b_packed[g], C_in_g, count * per_sample, buf_addr,
                                  scratch, pin_addr + p_0 * 8, offs_addr + o0 * 8, has_bias,
                                  MR, NV, lanes)


@njit(parallel=True, cache=True)
def conv_weight_grad_broadcast(x, grad_output, sH, sW, pH, pW, offs, Hq, Wq, steps, S, splits,
                               planes, block, partial, phase_ws, MR, NV, lanes):
    """Partial weight gradients by channel-vector tiles, one per (batch chunk, group).

    As ``conv_weight_grad_blocked``, with the tile's vectors along the output
    channels: a tile of MR taps x NV vectors of channels sums, pixel after
    pixel, the broadcast input value of each tap times NV vectors of
    grad_output at that pixel, so pixels need not come in whole vectors
    (rows of 8 or 7 would fill half of one).

    x: (N, C_in, H, W); grad_output: (N, C_out, H_out, W_out); offs: (K + MR,),
    the taps' offsets into a sample's planes, zero past K; steps: (S * P,),
    the offsets of the pixels of S samples in their planes; block: the most
    pixels a tile sums in one chain before adding to partial; partial:
    (B, G, C_pad / NR, K, NR), zero-filled, a block of channels after another (a
    tile's rows are contiguous, and the tiles of a block one after another);
    phase_ws:
    (T, workspace): S samples' planes (``planes`` elements), then grad_output
    of the S samples channels-last in blocks of NR channels, (C_pad / NR, S * P, NR). Items are (chunk, group,
    one of ``splits`` ranges of channel blocks); a chunk sums its samples S
    at a time, in order, into its own partial.
    """
    N, C_in, H, W = x.shape
    H_out, W_out = grad_output.shape[2], grad_output.shape[3]
    B, groups, co_blocks, K, NR = partial.shape
    c_pad = co_blocks * NR
    C_out_g = grad_output.shape[1] // groups
    C_in_g = C_in // groups
    P = H_out * W_out
    size = x.itemsize
    zero = x.dtype.type(0)
    sample_len = planes // S
    first_row = H_out - H_out      # a run-time 0: a literal would compile a second _fill_group
    items = B * groups * splits
    T = phase_ws.shape[0]
    for t in prange(T):
        lo, hi = _chunk(items, t, T)
        buf = phase_ws[t]
        buf_addr = buf.ctypes.data
        # grad_output of S samples, channels last, cut into blocks of NR channels:
        # (blocks, S * P, NR), so that a tile streams one contiguous block
        dyt = buf[planes:planes + S * P * c_pad].reshape((co_blocks, S * P, NR))
        dyt_addr = dyt.ctypes.data
        # the channels past C_out/G are read by the last block's lanes and dropped
        dyt[co_blocks - 1, :, C_out_g - (co_blocks - 1) * NR:] = 0.0
        offs_addr = offs.ctypes.data
        steps_addr = steps.ctypes.data
        for item in range(lo, hi):
            b = item // (groups * splits)
            g = (item // splits) % groups
            blk_lo, blk_hi = _chunk(co_blocks, item % splits, splits)
            n_end = N * (b + 1) // B
            for n0 in range(N * b // B, n_end, S):
                count = min(S, n_end - n0)
                for s in range(count):
                    _fill_group(x[n0 + s], g, buf[s * sample_len:(s + 1) * sample_len],
                                first_row, sH, sW, pH, pW, Hq, Wq)
                    # grad_output of sample s, channels last: dyt[c // NR, s*P + p, c % NR],
                    # by squares of lanes channels x lanes pixels transposed in
                    # registers (rather than a strided store per element), the
                    # edges one element at a time
                    c_body = C_out_g - C_out_g % lanes
                    p_body = P - P % lanes
                    for c0 in range(0, c_body, lanes):
                        src_addr = grad_output[n0 + s, g * C_out_g + c0].ctypes.data
                        dst_addr = dyt[c0 // NR, s * P, c0 % NR:].ctypes.data
                        for p0 in range(0, p_body, lanes):
                            transpose_square(zero, src_addr + p0 * size, P,
                                             dst_addr + p0 * NR * size, NR, lanes)
                    for c in range(C_out_g):
                        src = grad_output[n0 + s, g * C_out_g + c].reshape(P)
                        dst = dyt[c // NR, s * P:(s + 1) * P, c % NR]
                        for p in range(p_body if c < c_body else 0, P):
                            dst[p] = src[p]
                # the S samples' pixels in equal blocks of at most ``block``
                # (plan.BROADCAST_REDUCE_BLOCK), each summed from 0 and added to
                # the partial: one chain of multiply-adds over a 40x40 plane
                # erred 6.3e-7 of the largest value in float32 (AVX2, 16 samples)
                n_pix = count * P
                n_blocks = (n_pix + block - 1) // block
                step = (n_pix + n_blocks - 1) // n_blocks
                for blk in range(blk_lo, blk_hi):
                    co0 = blk * NR
                    n_valid = min(NR, C_out_g - co0)
                    for k0 in range(0, K, MR):
                        for p0 in range(0, n_pix, step):
                            register_tile_broadcast(zero, partial[b, g, blk, k0].ctypes.data,
                                                    NR, min(MR, K - k0), n_valid,
                                                    dyt_addr + (blk * S * P + p0) * NR * size,
                                                    NR, buf_addr, offs_addr + k0 * 8,
                                                    steps_addr + p0 * 8, min(step, n_pix - p0),
                                                    dyt_addr, False, True, MR, NV, lanes)


@njit(parallel=True, cache=True)
def pack_lanes_last(w, out, S):
    """out[g, b, k, r] = w[g, b*R + r, k] for the whole blocks b < B of ``out``.

    w: (G, L, K), C-contiguous, L >= B*R; out: (G, B, K, R), R a multiple of
    the compile-time S. Items are strips of S lanes of one block: each walks
    its S rows of w in squares of S x S (``transpose_square``: S vector loads,
    shuffles, S vector stores), then the last K % S taps one by one. The
    strips write disjoint parts of out.
    """
    G, B, K, R = out.shape
    L = w.shape[1]
    strips = R // S
    size = w.itemsize
    zero = w.dtype.type(0)
    body = K - K % S
    for item in prange(G * B * strips):
        g = item // (B * strips)
        b = (item // strips) % B
        r0 = (item % strips) * S
        src = w[g, b * R + r0].ctypes.data                  # row b*R + r0 of group g
        dst = out[g, b].ctypes.data + r0 * size             # (K, R) from lane r0
        for k0 in range(0, body, S):
            transpose_square(zero, src + k0 * size, K, dst + k0 * R * size, R, S)
        for k in range(body, K):
            for r in range(S):
                out[g, b, k, r0 + r] = w[g, b * R + r0 + r, k]


@njit(parallel=True, cache=True)
def pack_phase_lanes(w5, table, blocks, R, out, workspace, finite, S):
    """The sub-kernels of some stride phases of a conv's input gradient,
    packed for a tile of R lanes (the conv's input channels in the lanes; its
    output channels and the phase's taps along K), one after another in out:
    for each row (kk, base, per, b_step) of table (``plan.pack_table``),

        out[base + (g*B*M + m)*per + b*b_step + r] = w5[g, m, b*R + r].flat[kk]

    for r < R, 0 where b*R + r >= L.

    w5: (G, M, L, kH, kW), C-contiguous; out: 1-D; workspace: (T, kH*kW,
    B*R), zero past L; finite: (T,), written. Items are (g, m), cut into T
    ranges: each checks that its (L, kH*kW) block of the weight is finite
    (``all_finite``, which leaves the block in L1; finite[t] is whether all of
    range t's are), transposes it into its range's (kH*kW, B*R) buffer, which
    stays in L1, by S x S squares through the registers (the leftover rows and
    taps one by one), then copies the table's rows out whole. Checking here
    spares the transposed conv a pass over a weight that another thread has
    just updated: DCGAN's, in a training step, 0.15 ms of 4.4 (2 threads).
    With an empty workspace, (T, 0, 0), each (g, m) gathers only the table's
    taps straight into out instead, and finite is left alone. One call packs every phase of a call of
    ``conv_input_grad_broadcast_phases``, reading the weight once: DCGAN's
    256 -> 128, 4x4, stride 2, one thread, 0.37 ms by one gather per phase
    (strided reads, one element at a time), 0.16 here.
    """
    G, M, L = w5.shape[0], w5.shape[1], w5.shape[2]
    KK = w5.shape[3] * w5.shape[4]
    F = table.shape[0]
    items = w5.reshape((G * M, L * KK))
    zero = w5.dtype.type(0)
    size = w5.itemsize
    Lp = blocks * R
    l_body = L - L % S
    k_body = KK - KK % S
    if workspace.shape[1] == 0:
        # the taps gathered straight into out, one element at a time
        for item in prange(G * M):
            g = item // M
            m = item % M
            block = items[item]                           # (L, kH*kW)
            for q in range(F):
                kk = table[q, 0]
                first = table[q, 1] + (g * blocks * M + m) * table[q, 2]
                for b in range(blocks):
                    dst = out[first + b * table[q, 3]:]
                    for r in range(R):
                        lane = b * R + r
                        dst[r] = block[lane * KK + kk] if lane < L else zero
        return
    T = workspace.shape[0]
    for t in prange(T):
        lo, hi = _chunk(G * M, t, T)
        taps = workspace[t]                               # (kH*kW, B*R)
        taps_addr = taps.ctypes.data
        ok = True
        for item in range(lo, hi):
            g = item // M
            m = item % M
            block = items[item]                           # (L, kH*kW)
            ok = all_finite(block) and ok
            src = block.ctypes.data
            for r0 in range(0, l_body, S):
                for c0 in range(0, k_body, S):
                    transpose_square(zero, src + (r0 * KK + c0) * size, KK,
                                     taps_addr + (c0 * Lp + r0) * size, Lp, S)
                for c in range(k_body, KK):
                    for r in range(r0, r0 + S):
                        taps[c, r] = block[r * KK + c]
            for r in range(l_body, L):
                for c in range(KK):
                    taps[c, r] = block[r * KK + c]
            for q in range(F):
                row = taps[table[q, 0]]
                first = table[q, 1] + (g * blocks * M + m) * table[q, 2]
                for b in range(blocks):
                    dst = out[first + b * table[q, 3]:]
                    src_row = row[b * R:]
                    for r in range(R):
                        dst[r] = src_row[r]
        finite[t] = ok


@njit(parallel=True, cache=True)
def unblock_channels(blocked, out, S):
    """out[g, c, k] = blocked[g, c // NR, k, c % NR] for c < C_out/G: the weight
    gradient of ``conv_weight_grad_broadcast`` (blocks of NR channels, channels
    last) in the weight's layout. blocked: (G, B, K, NR); out: (G, C_out/G, K),
    C-contiguous; NR a multiple of the compile-time S. In squares of S taps x S
    channels transposed in registers (``transpose_square``); the channels of a
    block's last partial square and the last K % S taps one by one."""
    groups, blocks, K, NR = blocked.shape
    C_out_g = out.shape[1]
    size = out.itemsize
    zero = out.dtype.type(0)
    body = K - K % S
    for item in prange(groups * blocks):
        g = item // blocks
        blk = item % blocks
        n_valid = min(NR, C_out_g - blk * NR)
        src = blocked[g, blk].ctypes.data                    # (K, NR)
        for c0 in range(0, n_valid, S):
            if c0 + S <= n_valid:
                dst = out[g, blk * NR + c0].ctypes.data     # S rows of K from here
                for k0 in range(0, body, S):
                    transpose_square(zero, src + (k0 * NR + c0) * size, NR,
                                     dst + k0 * size, K, S)
                k_lo = body
            else:
                k_lo = 0
            for c in range(c0, min(c0 + S, n_valid)):
                row = out[g, blk * NR + c]
                for k in range(k_lo, K):
                    row[k] = blocked[g, blk, k, c]


@njit(parallel=True, cache=True)
def conv_input_grad(grad_output, weight_t, kH, kW, sH, sW, pH, pW, dH, dW, grad_input,
                    pointwise, col_ws):
    """grad_input of conv = transposed conv of grad_output: col2im(W^T @ dY).

    grad_output: (N, C_out, H_out, W_out); weight_t: (G, B, Kb, C_out/G), the
    conv weight (C_out, C_in/G, kH, kW) transposed per group and cut into B
    blocks of C_in/(G*B) input channels (Kb = C_in/(G*B) * kH * kW rows);
    grad_input: (N, C_in, H, W), zero-filled by the caller and accumulated
    into; col_ws: (T, Kb, H_out*W_out). Items are (sample, group, channel
    block): each writes only its own channels. Input positions that no window
    touches stay 0.
    """
    N, C_out, H_out, W_out = grad_output.shape
    groups, blocks, Kb, C_out_g = weight_t.shape
    H, W = grad_input.shape[2], grad_input.shape[3]
    C_b = Kb // (kH * kW)
    P = H_out * W_out
    T = col_ws.shape[0]
    gy_g = grad_output.reshape((N, groups, C_out_g, P))               # (N, G, C_out/G, P)
    gx_b = grad_input.reshape((N, groups, blocks, C_b, H, W))         # (N, G, B, C_b, H, W)
    items = N * groups * blocks
    for t in prange(T):
        lo, hi = _chunk(items, t, T)
        col = col_ws[t]                                               # (Kb, P)
        for item in range(lo, hi):
            n = item // (groups * blocks)
            g = (item // blocks) % groups
            blk = item % blocks
            if pointwise:
                np.dot(weight_t[g, blk], gy_g[n, g], gx_b[n, g, blk].reshape((Kb, P)))
            else:
                np.dot(weight_t[g, blk], gy_g[n, g], col)
                _col2im(col, gx_b[n, g, blk], kH, kW, sH, sW, pH, pW, dH, dW, H_out, W_out)


@njit(cache=True, inline="always")
def _tap_shift(tap, kW, dH, dW, sH, sW, Hq, Wq):
    """Where tap (i, j) of the first output reads the phase planes of
    ``_fill_phases``: phase (i*dH % sH, j*dW % sW), row i*dH // sH, column
    j*dW // sW (with stride 1, the padded plane at i*dH, j*dW)."""
    i = (tap // kW) * dH
    j = (tap % kW) * dW
    return ((i % sH) * sW + j % sW) * Hq * Wq + (i // sH) * Wq + j // sW


@njit(cache=True)
def _wide_taps(acc, planes, w, dH, dW, sH, sW, Hq, Wq, Q):
    """acc[q] += sum over taps of w[tap] * planes[q + shift(tap)], taps in order.

    Three taps per pass over acc: a pass per tap would be bound by loading and
    storing acc, not by the multiply-adds. w: (kH, kW); planes: the phase
    planes of one input plane (``_fill_phases``), Hq x Wq each.
    """
    kH, kW = w.shape
    taps = kH * kW
    for t0 in range(0, taps, 3):
        left = taps - t0
        w0 = w[t0 // kW, t0 % kW]
        s0 = planes[_tap_shift(t0, kW, dH, dW, sH, sW, Hq, Wq):]
        if left >= 3:
            w1 = w[(t0 + 1) // kW, (t0 + 1) % kW]
            w2 = w[(t0 + 2) // kW, (t0 + 2) % kW]
            s1 = planes[_tap_shift(t0 + 1, kW, dH, dW, sH, sW, Hq, Wq):]
            s2 = planes[_tap_shift(t0 + 2, kW, dH, dW, sH, sW, Hq, Wq):]
            for q in range(Q):
                acc[q] += w0 * s0[q] + w1 * s1[q] + w2 * s2[q]
        elif left == 2:
            w1 = w[(t0 + 1) // kW, (t0 + 1) % kW]
            s1 = planes[_tap_shift(t0 + 1, kW, dH, dW, sH, sW, Hq, Wq):]
            for q in range(Q):
                acc[q] += w0 * s0[q] + w1 * s1[q]
        else:
            for q in range(Q):
                acc[q] += w0 * s0[q]


@njit(cache=True, inline="always")
def _add_outside(y, value, oh_lo, oh_hi, ow_lo, ow_hi):
    """y[oh, ow] += value wherever (oh, ow) is outside [oh_lo, oh_hi) x [ow_lo, ow_hi)."""
    H_out, W_out = y.shape
    for oh in range(H_out):
        inside = oh_lo <= oh < oh_hi
        for ow in range(W_out):
            if not (inside and ow_lo <= ow < ow_hi):
                y[oh, ow] += value


@njit(parallel=True, cache=True)
def depthwise_forward(x, weight, bias, has_bias, sH, sW, pH, pW, dH, dW, wide, out):
    """out = conv(x, weight) + bias for one input channel per group (C_in/G = 1).

    x: (N, G, H, W), weight: (C_out, 1, kH, kW) with C_out = G * M, out:
    (N, C_out, H_out, W_out). Direct loops, one (sample, output channel)
    plane per item; each output element accumulates the taps in a fixed order.

    ``wide`` (:func:`deconv.kernels.plan.depthwise_wide`): the input plane
    is copied into its zero-padded phase planes (``_fill_phases``: one plane
    Hq x Wq per stride phase, Hq = H_out + (kH-1)*dH // sH, Wq = W_out +
    (kW-1)*dW // sW; with stride 1 the padded plane itself), where every tap
    reads a contiguous run: each tap is then one multiply-add over the whole
    output plane laid out with row stride Wq (the last Wq - W_out columns of
    each wide row are computed and dropped), instead of one short loop per
    row, strided where the conv is.
    """
    N, groups, H, W = x.shape
    C_out, _, kH, kW = weight.shape
    H_out, W_out = out.shape[2], out.shape[3]
    M = C_out // groups
    Hq = H_out + dH * (kH - 1) // sH if wide else 0
    Wq = W_out + dW * (kW - 1) // sW if wide else 0
    Q = (H_out - 1) * Wq + W_out if wide else 0
    first_row = H_out - H_out      # a run-time 0: a literal would compile another _fill_phases
    items = N * C_out
    T = min(items, 64)
    for t in prange(T):
        planes = np.empty(sH * sW * Hq * Wq, dtype=x.dtype)   # (sH * sW * Hq * Wq,)
        acc = np.empty(Q, dtype=x.dtype)                     # (Q,)
        for item in range(items * t // T, items * (t + 1) // T):
            n = item // C_out
            co = item % C_out
            plane = x[n, co // M]                        # (H, W)
            y = out[n, co]                               # (H_out, W_out)
            b = bias[co] if has_bias else 0.0
            if wide:
                _fill_phases(plane, planes, first_row, sH, sW, pH, pW, Hq, Wq)
                acc[:] = b
                _wide_taps(acc, planes, weight[co, 0], dH, dW, sH, sW, Hq, Wq, Q)
                for oh in range(H_out):
                    row = acc[oh * Wq:]
                    y_row = y[oh]
                    for ow in range(W_out):
                        y_row[ow] = row[ow]
                continue
            for oh in range(H_out):
                for ow in range(W_out):
                    y[oh, ow] = b
            for i in range(kH):
                oh_lo, oh_hi = valid_range(i * dH - pH, sH, H_out, H)
                for j in range(kW):
                    w = weight[co, 0, i, j]
                    ow_lo, ow_hi = valid_range(j * dW - pW, sW, W_out, W)
                    for oh in range(oh_lo, oh_hi):
                        src = plane[oh * sH + i * dH - pH][ow_lo * sW + j * dW - pW:]
                        dst = y[oh][ow_lo:]
                        for t2 in range(ow_hi - ow_lo):
                            dst[t2] += w * src[t2 * sW]
                    if not np.isfinite(w):
                        # the skipped taps multiply w by the padding's zeros:
                        # 0 * inf is NaN, as in the wide path and the naive loops
                        _add_outside(y, w * 0.0, oh_lo, oh_hi, ow_lo, ow_hi)


@njit(parallel=True, cache=True)
def depthwise_input_grad_phases(grad_output, weight, sH, sW, phases_h, phases_w, margins,
                                grad_input):
    """grad_input = the input gradient of a depthwise conv with one output
    channel per group, by stride phases, each written straight into place.

    grad_output: (N, C, H_out, W_out); weight: (C, 1, kH, kW); grad_input:
    (N, C, H, W), every position some tap reaches written (the caller
    zero-fills it where taps leave positions out). phases_h: (R, 5 + kH) int64, one row per phase of the rows that
    some tap reaches (:func:`deconv.kernels.plan.phase_taps`): first, count,
    padding, dilation, number of taps, then those taps (reversed, as there);
    phases_w likewise for the columns; margins: (top, bottom, left, right),
    the zeros around grad_output within which every phase's correlation
    reads (:func:`deconv.kernels.plan.phase_margins`).

    An item is one (sample, channel) plane: grad_output's plane is copied
    once into a zero-bordered buffer (Hb x Wb); for each phase, every tap is
    one multiply-add over a contiguous run of it (row stride Wb, the extra
    columns computed and dropped), taps in order, and the phase's values go
    to rows first + m*sH, columns first + m*sW of grad_input. (The scatter,
    ``depthwise_input_grad``, strides through grad_input once per tap; stride-1
    phase convs and ``spread_phase`` would write and read a phase array as
    large as grad_input.)
    """
    N, C, H_out, W_out = grad_output.shape
    top, bottom, left, right = margins[0], margins[1], margins[2], margins[3]
    Hb = top + H_out + bottom
    Wb = left + W_out + right
    # run-time 0 and 1: literals would compile another _fill_phases
    zero_row = H_out - H_out
    one = zero_row + 1
    Q = 0
    for a in range(phases_h.shape[0]):
        for b in range(phases_w.shape[0]):
            Q = max(Q, (phases_h[a, 1] - 1) * Wb + phases_w[b, 1])
    items = N * C
    T = min(items, 64)
    for t in prange(T):
        buf = np.empty(Hb * Wb, dtype=grad_output.dtype)     # (Hb * Wb,)
        acc = np.empty(Q, dtype=grad_output.dtype)           # (Q,)
        for item in range(items * t // T, items * (t + 1) // T):
            n = item // C
            c = item % C
            gy = grad_output[n, c]                   # (H_out, W_out)
            gx = grad_input[n, c]                    # (H, W)
            w = weight[c, 0]                         # (kH, kW)
            # grad_output's plane inside its zero border: the one phase plane
            # of a stride-1 conv padded by (top, left)
            _fill_phases(gy, buf, zero_row, one, one, top, left, Hb, Wb)
            for a in range(phases_h.shape[0]):
                first_h, count_h, pad_h, dil_h, taps_h = phases_h[a, :5]
                for b in range(phases_w.shape[0]):
                    first_w, count_w, pad_w, dil_w, taps_w = phases_w[b, :5]
                    Qp = (count_h - 1) * Wb + count_w
                    acc[:Qp] = 0.0
                    for jh in range(taps_h):
                        for jw in range(taps_w):
                            wv = w[phases_h[a, 5 + jh], phases_w[b, 5 + jw]]
                            src = buf[(top - pad_h + jh * dil_h) * Wb + left - pad_w
                                      + jw * dil_w:]
                            for q in range(Qp):
                                acc[q] += wv * src[q]
                    for m in range(count_h):
                        row = acc[m * Wb:]
                        dst = gx[first_h + m * sH]
                        for mw in range(count_w):
                            dst[first_w + mw * sW] = row[mw]


@njit(parallel=True, cache=True)
def depthwise_input_grad(grad_output, weight, sH, sW, pH, pW, dH, dW, grad_input):
    """grad_input += the input gradient of :func:`depthwise_forward`.

    grad_output: (N, C_out, H_out, W_out), weight: (C_out, 1, kH, kW),
    grad_input: (N, G, H, W), zero-filled by the caller. One (sample, input
    channel) plane per item, gathering its M output channels in order.
    (With stride 1 and one output channel per group the callers use the
    flipped-kernel forward instead.)
    """
    N, C_out, H_out, W_out = grad_output.shape
    _, _, kH, kW = weight.shape
    groups, H, W = grad_input.shape[1], grad_input.shape[2], grad_input.shape[3]
    M = C_out // groups
    for item in prange(N * groups):
        n = item // groups
        g = item % groups
        gx = grad_input[n, g]                   # (H, W)
        for co in range(g * M, (g + 1) * M):
            gy = grad_output[n, co]             # (H_out, W_out)
            for i in range(kH):
                oh_lo, oh_hi = valid_range(i * dH - pH, sH, H_out, H)
                for j in range(kW):
                    w = weight[co, 0, i, j]
                    ow_lo, ow_hi = valid_range(j * dW - pW, sW, W_out, W)
                    for oh in range(oh_lo, oh_hi):
                        dst = gx[oh * sH + i * dH - pH][ow_lo * sW + j * dW - pW:]
                        src = gy[oh][ow_lo:]
                        if sW == 1:
                            for t in range(ow_hi - ow_lo):
                                dst[t] += w * src[t]
                        else:
                            for t in range(ow_hi - ow_lo):
                                dst[t * sW] += w * src[t]


@njit(parallel=True, cache=True)
def bias_grad(grad_output):
    """grad_bias[c] = sum of grad_output[:, c], accumulated in float64; one
    channel per item, each sample's plane by :func:`plane_sum` (the order
    its vectorised loop fixes), the planes in sample order: the same bits at
    any thread count.

    grad_output: (N, C, H, W) returns (C,).
    """
    N, C, H, W = grad_output.shape
    gy = grad_output.reshape((N, C, H * W))
    out = np.empty(C, dtype=grad_output.dtype)
    for c in prange(C):
        total = 0.0
        for n in range(N):
            total += plane_sum(gy[n, c])
        out[c] = total
    return out


@njit(parallel=True, cache=True)
def add_bias(y, bias):
    """y[:, c] += bias[c] in place (y is a fresh output array). y: (N, C, H, W)."""
    N, C, H, W = y.shape
    planes = y.reshape((N * C, H * W))
    for item in prange(N * C):
        b = bias[item % C]
        plane = planes[item]
        for p in range(H * W):
            plane[p] += b


@njit(parallel=True, cache=True)
def spread_phase(phase, out, h0, w0, sH, sW):
    """out[:, :, h0 + sH*i, w0 + sW*j] = phase[:, :, i, j]: one phase of a
    strided transposed conv into its place. phase: (N, C, Hm, Wm)."""
    N, C, Hm, Wm = phase.shape
    for item in prange(N * C):
        n = item // C
        c = item % C
        src = phase[n, c]
        dst = out[n, c]
        for i in range(Hm):
            row = dst[h0 + sH * i]
            for j in range(Wm):
                row[w0 + sW * j] = src[i, j]
