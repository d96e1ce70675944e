"""Register-blocked multiply-add tiles, written in LLVM IR (Numba intrinsics).

The primitives under the blocked convolution kernels. ``register_tile``
(forward and input gradient)::

    out[i, o_v + l] = bias[i] + sum_k a[k, i] * b[b_v + offs[k] + l],
                      i < MR, v < NV, l < LANES

with ``a`` : (K, MR), a packed block of weights (tap-major: the MR values of
tap k are contiguous); ``b`` a flat input buffer; ``offs`` : (K,) int64
offsets into it; ``(b_v, o_v)`` the input and output offsets of vector v, any
NV vectors of one output plane (a table, ``vec``); row ``i`` of the result
goes to ``out + i * out_stride``. NV vector registers of LANES elements each
(16 float32 or 8 float64 for 512-bit vectors, :func:`deconv.kernels.plan.lanes`).
The MR x NV accumulators live in registers for the whole loop over k: each
step loads NV vectors of b, broadcasts MR values of a and issues MR*NV
multiply-adds (24 of them on 3 loads + 8 broadcasts for MR=8, NV=3), two
steps per pass of the loop. A long
sum over k is cut by the caller into blocks, each summed from 0 and added
to the output (``accumulate``).

``register_tile_reduce`` (weight gradient) is its transpose, a sum over
pixels instead of over taps::

    out[i, j] += sum_r sum_{l < len_r} dy[i, dy_off_r + l] * x[offs[j] + x_off_r + l],
                 i < MR, j < NK

over runs r of at most LANES pixels: MR x NK vector accumulators, each
summed over its lanes once at the end.

MR, NV / NK and LANES are compile-time literals (the callers pass them from
:mod:`deconv.kernels.plan` through :func:`deconv.kernels.common.compile_time`):
the IR is unrolled over them, and they are part of the compiled signature, so
a kernel cached for one tile shape is never served for another. (The code
generated here is not: after editing this module, delete the cached kernels
of :mod:`deconv.kernels.conv`, as after editing :mod:`deconv.kernels.common`.)

Why IR: written as Python loops, Numba keeps the accumulators in memory and
reloads them on every k, which caps a direct convolution at a quarter of the
core's FMA rate (the kernel issue measured 9-28 GFLOP/s); an explicit vector
loop with the accumulators in phi nodes runs at 106-113 GFLOP/s of the 117
peak on the reference core, above OpenBLAS's sgemm (80-100 on these shapes).
LLVM compiles it for the host CPU, like every Numba kernel; the vector width
and the tile shape are the target's (:data:`deconv.kernels.plan.TARGET`:
AVX-512, AVX2, NEON), chosen so that the accumulators and one step's operands
fit its vector registers (``tests/test_tile_registers.py`` compiles each tile
for each target and finds no spill in the loop). The multiply-adds are
``llvm.fmuladd``: fused where the CPU has an FMA, a multiply and an add
where it has not (baseline x86-64), never a library call per lane.

Every sum runs in a fixed order, so every result is bitwise independent of
where the tile sits and of how work is cut among threads. Callers guarantee
that every address read and written is inside its buffer (tiles read past a
row's end: the buffers carry slack).

Reading the code generation: an intrinsic's ``codegen`` emits the body of
the function once per call site. SSA values cannot be reassigned, so a value
carried around a loop (the counter k, the accumulators) is a *phi node* at
the top of the loop block: it takes its first value on the edge from the
block before the loop and the value computed in the body on the back edge.
"""

from llvmlite import ir
from numba import types
from numba.core.errors import TypingError
from numba.extending import intrinsic

_FLOAT_SUFFIX = {types.float32: "f32", types.float64: "f64"}


def _tile_constants(name, zero, **literals):
    """The values of the literal arguments of an intrinsic (``None`` if
    ``zero`` is not float32/float64: no match). Non-literal ones raise: they
    would silently compile a different kernel per value if taken at run time,
    and the IR needs them to unroll."""
    if zero not in _FLOAT_SUFFIX:
        return None
    values = {}
    for arg, typ in literals.items():
        if not isinstance(typ, types.IntegerLiteral) or typ.literal_value < 1:
            raise TypingError(f"{name}: {arg} must be a positive compile-time integer literal "
                              f"(pass it through deconv.kernels.common.compile_time), got {typ}")
        values[arg] = typ.literal_value
    lanes = values["LANES"]
    if lanes & (lanes - 1):
        raise TypingError(f"{name}: LANES must be a power of two, got {lanes}")
    return values


def _splat(builder, value, vt):
    """A vector of type vt with ``value`` in every lane (insert into lane 0, then
    shuffle lane 0 everywhere: LLVM emits one broadcast)."""
    lanes = vt.count
    v = builder.insert_element(ir.Constant(vt, ir.Undefined), value, ir.Constant(ir.IntType(32), 0))
    return builder.shuffle_vector(v, ir.Constant(vt, ir.Undefined),
                                  ir.Constant(ir.VectorType(ir.IntType(32), lanes), [0] * lanes))


def _declare(builder, name, ret, params):
    """The LLVM intrinsic ``name`` (declared once per module)."""
    return builder.module.globals.get(name) or ir.Function(
        builder.module, ir.FunctionType(ret, params), name)


def _multiply_add(builder, vt, suffix):
    """``llvm.fmuladd``: a fused multiply-add (one rounding) on every CPU that has
    one (x86-64 with FMA, every aarch64), a multiply then an add elsewhere,
    rather than ``llvm.fma``'s library call per lane on a CPU without FMA
    (baseline x86-64). Which of the two a target gets is fixed by the target,
    so results stay deterministic (:data:`deconv.kernels.plan.TARGET`: ``fma``)."""
    return _declare(builder, "llvm.fmuladd." + suffix, vt, [vt, vt, vt])


@intrinsic
def register_tile(typingctx, zero, out_addr, out_stride, m_store, n_vec, a_addr, b_addr,
                  offs_addr, K, vec_addr, bias_addr, has_bias, accumulate, MR, NV, LANES):
    """See the module docstring. zero: 0 of the dtype (selects float32/float64);
    addresses are integers (``array.ctypes.data``; strides, offsets and offs
    count elements); MR, NV and LANES compile-time literals.

    The NV vectors of the tile are any NV vectors of outputs of one plane:
    ``vec``: (NV, 3) int64, per vector ``(b_off, o_off, count)``: vector v
    reads ``b + b_off + offs[k] + [0, LANES)`` and stores its first ``count``
    lanes at ``out + i*out_stride + o_off`` (row i). Only vectors v < n_vec
    and rows i < m_store are stored (masked stores: a vector may be the short
    tail of a row, a tile may hang past the item's last vector or past the
    channels); the other lanes are computed from whatever b holds there and
    dropped, so every vector's reads must lie inside b's buffer.

    The stored value is ``acc + bias[i]`` (``has_bias``; nothing added
    otherwise), or with ``accumulate`` ``(out + acc) + bias[i]``: a sum over
    many taps is cut into blocks of taps, each summed in registers from 0 and
    then added to the output (blocked accumulation, far more accurate in
    float32 than one running sum of every tap). ``bias_addr`` must point to
    MR readable values even when ``has_bias`` is false."""
    tile = _tile_constants("register_tile", zero, MR=MR, NV=NV, LANES=LANES)
    if tile is None:
        return None
    mr, nv, lanes = tile["MR"], tile["NV"], tile["LANES"]
    suffix = "v%d%s" % (lanes, _FLOAT_SUFFIX[zero])
    sig = types.void(zero, out_addr, out_stride, m_store, n_vec, a_addr, b_addr, offs_addr, K,
                     vec_addr, bias_addr, has_bias, accumulate, MR, NV, LANES)

    def codegen(context, builder, signature, args):
        # --- entry block: run-time arguments as i64 and typed pointers
        ints = [context.cast(builder, v, t, types.int64)
                for v, t in zip(args[1:13], signature.args[1:13])]
        (out_a, ostride, m_st, n_v, a_a, b_a, offs_a, k_n, vec_a, bias_a, with_bias,
         accum) = ints
        with_bias = builder.icmp_signed("!=", with_bias, ir.Constant(ir.IntType(64), 0))
        accum = builder.icmp_signed("!=", accum, ir.Constant(ir.IntType(64), 0))
        fp = context.get_value_type(zero)
        i64 = ir.IntType(64)
        vt = ir.VectorType(fp, lanes)                     # one vector register: LANES x fp
        fptr, vptr = fp.as_pointer(), vt.as_pointer()
        out_p = builder.inttoptr(out_a, fptr)
        a_p = builder.inttoptr(a_a, fptr)                 # a: (K, MR)
        b_p = builder.inttoptr(b_a, fptr)
        bias_p = builder.inttoptr(bias_a, fptr)           # bias: (MR,)
        offs_p = builder.inttoptr(offs_a, i64.as_pointer())   # offs: (K,)
        vec_p = builder.inttoptr(vec_a, i64.as_pointer())     # vec: (NV, 3)
        vec = [[builder.load(builder.gep(vec_p, [ir.Constant(i64, 3 * v + f)])) for f in range(3)]
               for v in range(nv)]
        # b + b_off of each vector: NV pointers, loaded once
        b_bases = [builder.gep(b_p, [vec[v][0]]) for v in range(nv)]
        fma = _multiply_add(builder, vt, suffix)
        zero_v = ir.Constant(vt, [0.0] * lanes)

        def step(k, acc):
            # acc[i][v] += a[k, i] * b[b_off_v + offs[k] + lanes], for every i, v
            off_k = builder.load(builder.gep(offs_p, [k]))
            b_vec = [builder.load(builder.bitcast(builder.gep(b_bases[v], [off_k]), vptr),
                                  align=4) for v in range(nv)]    # NV unaligned vector loads
            a_row = builder.gep(a_p, [builder.mul(k, ir.Constant(i64, mr))])   # a[k, :]
            new = []
            for i in range(mr):
                # a[k, i] broadcast to every lane, then one multiply-add per vector
                a_i = _splat(builder, builder.load(builder.gep(a_row, [ir.Constant(i64, i)])),
                             vt)
                new.append([builder.call(fma, [a_i, b_vec[v], acc[i][v]]) for v in range(nv)])
            return new

        # the MR x NV accumulators enter as 0 and stay in registers (phis) over
        # the taps, two per trip (see _loop): AVX2's 4 x 3 tile went from 120 to
        # 130 GFLOP/s in L1 on this machine's core, U-Net's 3x3 conv forward
        # 4-7% faster (1 and 2 threads); no change beyond noise on AVX-512.
        # K = 0 leaves the sums at 0.
        result = _loop(builder, ir.Constant(i64, 0), k_n, [[zero_v] * nv for _ in range(mr)],
                       step, paired=True)

        # --- tile_done: out[i, vector v] = ((out if accumulating) + sum) + bias[i],
        # for the stored rows and lanes only
        i64v = ir.VectorType(i64, lanes)
        # the lane masks: vector v stores lane l iff v < n_vec and l < count_v
        lane_index = ir.Constant(i64v, list(range(lanes)))
        masks = []
        for v in range(nv):
            count = builder.select(builder.icmp_signed("<", ir.Constant(i64, v), n_v),
                                   vec[v][2], ir.Constant(i64, 0))
            masks.append(builder.icmp_signed("<", lane_index, _splat(builder, count, i64v)))
        biases = [_splat(builder, builder.load(builder.gep(bias_p, [ir.Constant(i64, i)])), vt)
                  for i in range(mr)]
        rows = [builder.gep(out_p, [builder.mul(ostride, ir.Constant(i64, i))]) for i in range(mr)]
        ptrs = [[builder.bitcast(builder.gep(rows[i], [vec[v][1]]), vptr) for v in range(nv)]
                for i in range(mr)]
        # a whole tile: every row, and every vector of LANES outputs
        whole = builder.icmp_signed(">=", m_st, ir.Constant(i64, mr))
        whole = builder.and_(whole, builder.icmp_signed(">=", n_v, ir.Constant(i64, nv)))
        for v in range(nv):
            whole = builder.and_(whole, builder.icmp_signed("==", vec[v][2],
                                                            ir.Constant(i64, lanes)))
        _store_tile(builder, suffix, ptrs, result, [[b] * nv for b in biases], with_bias, masks,
                    whole, accum, m_st)
        return context.get_dummy_value()

    return sig, codegen


def _lane_sum(builder, v):
    """Sum of the lanes of v, by adding halves (lanes [0, w/2) + [w/2, w), then
    again on the result, until one lane is left): a fixed order, so deterministic."""
    width = v.type.count
    while width > 1:
        width //= 2
        lo = builder.shuffle_vector(v, v, ir.Constant(ir.VectorType(ir.IntType(32), width),
                                                      list(range(width))))
        hi = builder.shuffle_vector(v, v, ir.Constant(ir.VectorType(ir.IntType(32), width),
                                                      list(range(width, 2 * width))))
        v = builder.fadd(lo, hi)
    return builder.extract_element(v, ir.Constant(ir.IntType(32), 0))


def _merge(builder, first, first_block, second, second_block):
    """A grid of phis, one per entry: ``first[i][j]`` when control came from
    ``first_block``, ``second[i][j]`` from ``second_block`` (emitted at the
    start of the block the two branch to)."""
    grid = []
    for row_a, row_b in zip(first, second):
        row = []
        for a, b in zip(row_a, row_b):
            phi = builder.phi(a.type)
            phi.add_incoming(a, first_block)
            phi.add_incoming(b, second_block)
            row.append(phi)
        grid.append(row)
    return grid


def _store_tile(builder, suffix, ptrs, values, bias, with_bias, masks, whole, accum, m_st):
    """Emit ``out = ((out if accum) + values) + (bias if with_bias)`` for a tile's
    rows i < m_st and its masked lanes: ``ptrs``, ``values``, ``bias`` are
    (rows, vectors) grids of pointers and vectors, ``masks`` the lanes each
    vector stores. Without a bias, or where out is not read, -0.0 is added:
    the exact identity of addition (x + -0.0 == x even for x = -0.0, which
    + 0.0 would turn into +0.0). A ``whole`` tile (every row and lane stored: all
    but a layer's edge tiles) stores with plain loads and stores, in one of two
    straight runs (accumulating or not); the masked stores, with a branch per
    store, cost 3% of a 3x3 conv's forward where a mask is not a register of
    its own (AVX2: U-Net's 64 -> 64 channels on 64x64, tiles summing blocks of
    116 taps). ``suffix``: the vector type's in LLVM's intrinsic names."""
    vt = values[0][0].type
    i1v = ir.VectorType(ir.IntType(1), vt.count)
    i32, i64 = ir.IntType(32), ir.IntType(64)
    mstore = _declare(builder, "llvm.masked.store.%s.p0" % suffix, ir.VoidType(),
                      [vt, vt.as_pointer(), i32, i1v])
    mload = _declare(builder, "llvm.masked.load.%s.p0" % suffix, vt,
                     [vt.as_pointer(), i32, i1v, vt])
    align = ir.Constant(i32, 4)
    identity = ir.Constant(vt, [-0.0] * vt.count)
    rows, vectors = len(values), len(values[0])
    bias = [[builder.select(with_bias, b, identity) for b in row] for row in bias]
    with builder.if_else(whole, likely=True) as (plain, masked):
        with plain:
            with builder.if_else(accum) as (added, first):
                with added:
                    for i in range(rows):
                        for v in range(vectors):
                            value = builder.fadd(builder.load(ptrs[i][v], align=4),
                                                 values[i][v])
                            builder.store(builder.fadd(value, bias[i][v]), ptrs[i][v], align=4)
                with first:
                    for i in range(rows):
                        for v in range(vectors):
                            builder.store(builder.fadd(values[i][v], bias[i][v]), ptrs[i][v],
                                          align=4)
        with masked:
            for i in range(rows):
                # the row mask, i < m_st: a branch around row i's loads and stores
                with builder.if_then(builder.icmp_signed("<", ir.Constant(i64, i), m_st)):
                    for v in range(vectors):
                        # the earlier blocks' sums (masked: lanes not stored are not
                        # read), or the identity
                        earlier = builder.call(mload, [ptrs[i][v], align, builder.and_(
                            masks[v], _splat(builder, accum, i1v)), identity])
                        value = builder.fadd(earlier, values[i][v])
                        builder.call(mstore, [builder.fadd(value, bias[i][v]), ptrs[i][v],
                                              align, masks[v]])


def _loop(builder, lo, hi, init, body, paired=False):
    """Emit ``for i in range(lo, hi): values = body(i, values)`` and return the
    values after the loop (a list of lists of SSA values, kept in phi nodes).

    ``paired``: two passes of ``body`` (i, then i + 1) per trip while two are
    left, then the last one alone where the count is odd: the same passes in
    the same order, with half the loop's counting and branching per pass.
    ``register_tile`` pairs its taps and ``register_tile_broadcast`` its steps
    (under AVX2 on this machine's core: the channel-vector tile 116 -> 118-120
    GFLOP/s in L1, DCGAN's transposed conv forward 3-5% faster at 1 and 2
    threads, its weight gradient 1-2% at 1). ``register_tile_reduce`` does not:
    paired, its loop spilled on Neoverse N1.
    """
    i64 = ir.IntType(64)
    one = ir.Constant(i64, 1)
    step = 2 if paired else 1
    fn = builder.function
    pre = builder.block
    header = fn.append_basic_block("loop_header")
    block = fn.append_basic_block("loop_body")
    exit_ = fn.append_basic_block("loop_exit")
    builder.branch(header)
    # header: the counter and the carried values are phis, entering from `pre`
    # with their initial values and from the body's end with the updated ones;
    # the exit reads the header's phis, so an empty range returns init
    builder.position_at_end(header)
    i = builder.phi(i64)
    i.add_incoming(lo, pre)
    values = [[builder.phi(v.type) for v in row] for row in init]
    for row, start in zip(values, init):
        for phi, v in zip(row, start):
            phi.add_incoming(v, pre)
    last = builder.add(i, ir.Constant(i64, step - 1))     # the trip's last index
    builder.cbranch(builder.icmp_signed("<", last, hi), block, exit_)
    builder.position_at_end(block)
    new = body(i, values)
    if paired:
        new = body(builder.add(i, one), new)
    latch = builder.block
    i.add_incoming(builder.add(i, ir.Constant(i64, step)), latch)
    for row, row_new in zip(values, new):
        for phi, v in zip(row, row_new):
            phi.add_incoming(v, latch)
    builder.branch(header)
    builder.position_at_end(exit_)
    if not paired:
        return values
    # the odd pass left over, if any
    odd = fn.append_basic_block("loop_odd")
    done = fn.append_basic_block("loop_done")
    builder.cbranch(builder.icmp_signed("<", i, hi), odd, done)
    builder.position_at_end(odd)
    new = body(i, values)
    odd_end = builder.block
    builder.branch(done)
    builder.position_at_end(done)
    return _merge(builder, values, exit_, new, odd_end)


@intrinsic
def register_tile_reduce(typingctx, zero, out_addr, out_stride, m_store, n_store, dy_addr,
                         dy_stride, x_addr, offs_addr, runs_addr, n_full, tail_addr, n_tail,
                         carry_addr, carry_in, carry_out, MR, NK, LANES):
    """The weight-gradient tile: a sum over pixels instead of over taps::

        out[i*out_stride + j] += sum over runs r, lanes l < len_r of
            dy[i*dy_stride + dy_off_r + l] * x[offs[j] + x_off_r + l]

    for i < MR output channels and j < NK taps, of which rows i < m_store and
    columns j < n_store are stored. Runs are (dy_off, x_off, len_r) triples
    of int64, ``runs``: (n_full, 3) and ``tail``: (n_tail, 3): the pixels of
    each output row cut into vectors, ``n_full`` runs of a whole vector
    (len_r = LANES) at ``runs_addr``, then ``n_tail`` shorter ones at
    ``tail_addr``, which are loaded with masks, so values beside a row (which
    may be inf or NaN) never meet a product. offs: (NK,) int64, all of them
    valid offsets (columns j >= n_store are computed and dropped); rows
    i >= m_store of dy are never read. The MR*NK accumulators are vectors in
    registers, accumulated run after run (whole runs first); each is summed
    over its lanes at the end by halving (a fixed order), then added to out.

    A sum over many pixels may be cut into calls over spans of runs, the
    accumulators carried between them as vectors in ``carry``: (MR, NK,
    LANES) at ``carry_addr``. With ``carry_in`` the accumulators start from
    carry, not from 0; with ``carry_out`` they are stored back into carry
    and out is left alone (no lane sums). Every lane then sums its pixels in
    the order of one call over all the runs: the cut changes no bit.
    Deterministic like ``register_tile``. MR, NK and LANES: compile-time
    literals.
    """
    tile = _tile_constants("register_tile_reduce", zero, MR=MR, NK=NK, LANES=LANES)
    if tile is None:
        return None
    mr, nk, lanes = tile["MR"], tile["NK"], tile["LANES"]
    suffix = "v%d%s" % (lanes, _FLOAT_SUFFIX[zero])
    sig = types.void(zero, out_addr, out_stride, m_store, n_store, dy_addr, dy_stride, x_addr,
                     offs_addr, runs_addr, n_full, tail_addr, n_tail, carry_addr, carry_in,
                     carry_out, MR, NK, LANES)

    def codegen(context, builder, signature, args):
        # --- entry: run-time arguments as i64 and typed pointers
        (out_a, ostride, m_st, n_st, dy_a, dystride, x_a, offs_a, runs_a, n_f, tail_a, n_t,
         carry_a, c_in, c_out) = [context.cast(builder, v, t, types.int64)
                                  for v, t in zip(args[1:16], signature.args[1:16])]
        fp = context.get_value_type(zero)
        i64, i32 = ir.IntType(64), ir.IntType(32)
        vt = ir.VectorType(fp, lanes)                     # one vector register: LANES x fp
        fptr, vptr = fp.as_pointer(), vt.as_pointer()
        i1v, i32v = ir.VectorType(ir.IntType(1), lanes), ir.VectorType(i32, lanes)
        fma = _multiply_add(builder, vt, suffix)
        mload = _declare(builder, "llvm.masked.load.%s.p0" % suffix, vt, [vptr, i32, i1v, vt])
        out_p = builder.inttoptr(out_a, fptr)
        dy_p = builder.inttoptr(dy_a, fptr)
        x_p = builder.inttoptr(x_a, fptr)
        offs_p = builder.inttoptr(offs_a, i64.as_pointer())   # offs: (NK,)
        runs_p = builder.inttoptr(runs_a, i64.as_pointer())   # runs: (n_full, 3)
        tail_p = builder.inttoptr(tail_a, i64.as_pointer())   # tail: (n_tail, 3)
        # x + offs[j], the base of column j's pixels: NK pointers, loaded once
        x_rows = [builder.gep(x_p, [builder.load(builder.gep(offs_p, [ir.Constant(i64, j)]))])
                  for j in range(nk)]
        # dy + i*dy_stride, the base of row i's pixels. Rows past m_store read row 0
        # (computed, never stored): a tile at the last channels of an array must
        # not read past its end
        dy_rows = [builder.gep(dy_p, [builder.select(
            builder.icmp_signed("<", ir.Constant(i64, i), m_st),
            builder.mul(dystride, ir.Constant(i64, i)), ir.Constant(i64, 0))]) for i in range(mr)]
        lane_index = ir.Constant(i32v, list(range(lanes)))
        zero_v = ir.Constant(vt, [0.0] * lanes)
        align = ir.Constant(i32, 4)

        def step(masked):
            """The body of the loop over the runs of one table: for run r,
            acc[i][j] += dy[i, dy_off_r + l] * x[offs[j] + x_off_r + l], lane l
            for pixel l of the run."""
            table = tail_p if masked else runs_p

            def body(r, acc):
                run = builder.gep(table, [builder.mul(r, ir.Constant(i64, 3))])
                dy_off = builder.load(run)
                x_off = builder.load(builder.gep(run, [ir.Constant(i64, 1)]))
                if masked:
                    # the l < len_r of the formula: lanes past the run load 0, not memory
                    length = builder.trunc(builder.load(builder.gep(run, [ir.Constant(i64, 2)])),
                                           i32)
                    mask = builder.icmp_signed("<", lane_index, _splat(builder, length, i32v))

                def load(row, off):
                    ptr = builder.bitcast(builder.gep(row, [off]), vptr)
                    if masked:
                        return builder.call(mload, [ptr, align, mask, zero_v])
                    return builder.load(ptr, align=4)

                # NK vectors of x, loaded once per run and reused by the MR rows
                xv = [load(x_rows[j], x_off) for j in range(nk)]
                new = []
                for i in range(mr):
                    dyv = load(dy_rows[i], dy_off)
                    new.append([builder.call(fma, [dyv, xv[j], acc[i][j]]) for j in range(nk)])
                return new
            return body

        # carry[i][j]: where accumulator (i, j) is carried between calls
        carry_p = builder.bitcast(builder.inttoptr(carry_a, fptr), vptr)
        carried = [[builder.gep(carry_p, [ir.Constant(i64, i * nk + j)]) for j in range(nk)]
                   for i in range(mr)]
        # the sum over runs: whole runs (plain loads), then the short ones (masked
        # loads), the accumulators carried from the first loop into the second;
        # from 0, or from the carry of the call before (a branch: the carry is not
        # read when it is not asked for)
        entry = builder.block
        with builder.if_then(builder.icmp_signed("!=", c_in, ir.Constant(i64, 0))):
            loaded = [[builder.load(carried[i][j], align=4) for j in range(nk)]
                      for i in range(mr)]
            loaded_block = builder.block
        acc = _merge(builder, [[zero_v] * nk] * mr, entry, loaded, loaded_block)   # (MR, NK)
        acc = _loop(builder, ir.Constant(i64, 0), n_f, acc, step(False))
        acc = _loop(builder, ir.Constant(i64, 0), n_t, acc, step(True))
        with builder.if_else(builder.icmp_signed("!=", c_out, ir.Constant(i64, 0))) as (
                keep, finish):
            with keep:
                # --- carry[i][j] = acc: the next call goes on from here
                for i in range(mr):
                    for j in range(nk):
                        builder.store(acc[i][j], carried[i][j], align=4)
            with finish:
                # --- out[i, j] += sum over the lanes, for i < m_store and j < n_store
                for i in range(mr):
                    with builder.if_then(builder.icmp_signed("<", ir.Constant(i64, i), m_st)):
                        dst = builder.gep(out_p, [builder.mul(ostride, ir.Constant(i64, i))])
                        for j in range(nk):
                            with builder.if_then(builder.icmp_signed("<", ir.Constant(i64, j),
                                                                     n_st)):
                                total = _lane_sum(builder, acc[i][j])
                                ptr = builder.gep(dst, [ir.Constant(i64, j)])
                                builder.store(builder.fadd(builder.load(ptr), total), ptr)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def register_tile_broadcast(typingctx, zero, out_addr, out_stride, m_store, n_store, a_addr,
                            a_stride, b_addr, rows_addr, steps_addr, n_steps, bias_addr,
                            has_bias, accumulate, MR, NV, LANES):
    """The tile with its vectors along the output channels::

        out[i*out_stride + j] = ((out[i*out_stride + j] if accumulate)
                                 + sum_s a[s*a_stride + j] * b[rows[i] + steps[s]])
                                + bias[j],                 i < MR, j < NR = NV * LANES

    one multiply-add per step s < n_steps, in order, from 0; with
    ``accumulate``, the sum is then added to the values out holds (the sums
    of earlier blocks of steps: blocked accumulation, see
    ``register_tile``); then the bias added where ``has_bias``
    (nothing added otherwise). The MR rows of b are *broadcast* (one value
    to every lane) and the NR consecutive values of a row of ``a`` are NV
    vector loads, so a tile fills its vectors whatever its rows are: any MR
    pixels of any planes (the forward: ``rows`` are pixel offsets, ``steps``
    the taps' offsets, ``a`` the packed weight (K, NR)), or any MR taps (the
    weight gradient: ``rows`` are the taps' offsets, ``steps`` the pixels',
    ``a`` grad_output with its channels last). Planes of 8x8 or 7x7 outputs,
    whose rows fill half a vector of ``register_tile``, keep every lane busy
    here.

    ``rows``: (MR,) int64 element offsets, every one readable (a tile past
    the last pixel repeats a valid one); ``steps``: (n_steps,) int64; ``a``:
    rows of NR readable values; ``bias``: NR readable values even when
    ``has_bias`` is false. Only rows i < m_store and lanes j < n_store are
    loaded (when accumulating) and stored, with masks; the other lanes are
    computed and dropped. The result is pixel-major (a row of channels per
    pixel): the forward's callers copy it into NCHW. Deterministic like
    ``register_tile``; MR, NV and LANES are compile-time literals.
    """
    tile = _tile_constants("register_tile_broadcast", zero, MR=MR, NV=NV, LANES=LANES)
    if tile is None:
        return None
    mr, nv, lanes = tile["MR"], tile["NV"], tile["LANES"]
    suffix = "v%d%s" % (lanes, _FLOAT_SUFFIX[zero])
    sig = types.void(zero, out_addr, out_stride, m_store, n_store, a_addr, a_stride, b_addr,
                     rows_addr, steps_addr, n_steps, bias_addr, has_bias, accumulate, MR, NV,
                     LANES)

    def codegen(context, builder, signature, args):
        # --- entry: run-time arguments as i64 and typed pointers
        (out_a, ostride, m_st, n_st, a_a, astride, b_a, rows_a, steps_a, s_n, bias_a,
         with_bias, accum) = [context.cast(builder, v, t, types.int64)
                              for v, t in zip(args[1:14], signature.args[1:14])]
        fp = context.get_value_type(zero)
        i64 = ir.IntType(64)
        vt = ir.VectorType(fp, lanes)                     # one vector register: LANES x fp
        fptr, vptr = fp.as_pointer(), vt.as_pointer()
        i64p = i64.as_pointer()
        i64v = ir.VectorType(i64, lanes)
        fma = _multiply_add(builder, vt, suffix)
        out_p = builder.inttoptr(out_a, fptr)
        a_p = builder.inttoptr(a_a, fptr)
        b_p = builder.inttoptr(b_a, fptr)
        bias_p = builder.inttoptr(bias_a, fptr)            # bias: (NR,)
        rows_p = builder.inttoptr(rows_a, i64p)            # rows: (MR,)
        steps_p = builder.inttoptr(steps_a, i64p)          # steps: (n_steps,)
        # b + rows[i], the base of broadcast row i: MR pointers, loaded once
        b_rows = [builder.gep(b_p, [builder.load(builder.gep(rows_p, [ir.Constant(i64, i)]))])
                  for i in range(mr)]
        zero_v = ir.Constant(vt, [0.0] * lanes)
        with_bias = builder.icmp_signed("!=", with_bias, ir.Constant(i64, 0))
        accum = builder.icmp_signed("!=", accum, ir.Constant(i64, 0))
        # the lane masks, j < n_store, and the rows' addresses in out
        masks = []
        for v in range(nv):
            j = ir.Constant(i64v, list(range(v * lanes, (v + 1) * lanes)))
            masks.append(builder.icmp_signed("<", j, _splat(builder, n_st, i64v)))
        dst = [builder.gep(out_p, [builder.mul(ostride, ir.Constant(i64, i))]) for i in range(mr)]
        ptrs = [[builder.bitcast(builder.gep(dst[i], [ir.Constant(i64, v * lanes)]), vptr)
                 for v in range(nv)] for i in range(mr)]
        init = [[zero_v] * nv for _ in range(mr)]       # each block sums from 0

        def body(s, acc):
            # acc[i][v] += b[rows[i] + steps[s]] (broadcast) * a[s, v-th vector]
            a_row = builder.gep(a_p, [builder.mul(s, astride)])
            a_vec = [builder.load(builder.bitcast(builder.gep(a_row, [ir.Constant(i64, v * lanes)]),
                                                  vptr), align=4) for v in range(nv)]
            step = builder.load(builder.gep(steps_p, [s]))
            new = []
            for i in range(mr):
                b_i = _splat(builder, builder.load(builder.gep(b_rows[i], [step])), vt)
                new.append([builder.call(fma, [b_i, a_vec[v], acc[i][v]]) for v in range(nv)])
            return new

        acc = _loop(builder, ir.Constant(i64, 0), s_n, init, body, paired=True)

        # --- out[i, j] = ((out if accumulating) + acc) + bias, for i < m_store, j < n_store
        bias_v = [builder.load(builder.bitcast(builder.gep(bias_p, [ir.Constant(i64, v * lanes)]),
                                               vptr), align=4) for v in range(nv)]
        # a whole tile: every row, every channel
        whole = builder.and_(builder.icmp_signed(">=", m_st, ir.Constant(i64, mr)),
                             builder.icmp_signed(">=", n_st, ir.Constant(i64, nv * lanes)))
        _store_tile(builder, suffix, ptrs, acc, [bias_v] * mr, with_bias, masks, whole, accum,
                    m_st)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def transpose_square(typingctx, zero, src_addr, src_stride, dst_addr, dst_stride, LANES):
    """A LANES x LANES square transposed through vector registers::

        dst[j*dst_stride + i] = src[i*src_stride + j],    i, j < LANES

    LANES rows of src are loaded as vectors, put through log2(LANES) rounds
    of perfect shuffles (round: new row 2m and 2m+1 are the lanes of rows m
    and m + LANES/2 interleaved, low half then high half; after log2(LANES)
    rounds row j holds column j) and stored as LANES rows of dst. Strides
    count elements; LANES a compile-time power of two. Packing a weight for
    the channel-vector tile (channels to the lanes) is a transpose: NumPy's
    strided copy of it ran at about 2.5 times the time of a plain copy, one
    element at a time.
    """
    tile = _tile_constants("transpose_square", zero, LANES=LANES)
    if tile is None:
        return None
    lanes = tile["LANES"]
    sig = types.void(zero, src_addr, src_stride, dst_addr, dst_stride, LANES)

    def codegen(context, builder, signature, args):
        src_a, s_stride, dst_a, d_stride = [context.cast(builder, v, t, types.int64)
                                            for v, t in zip(args[1:5], signature.args[1:5])]
        fp = context.get_value_type(zero)
        i64, i32 = ir.IntType(64), ir.IntType(32)
        vt = ir.VectorType(fp, lanes)
        vptr = vt.as_pointer()
        src_p = builder.inttoptr(src_a, fp.as_pointer())
        dst_p = builder.inttoptr(dst_a, fp.as_pointer())
        rows = [builder.load(builder.bitcast(builder.gep(src_p, [builder.mul(
            s_stride, ir.Constant(i64, i))]), vptr), align=4) for i in range(lanes)]
        half = lanes // 2
        low = ir.Constant(ir.VectorType(i32, lanes),
                          [m for j in range(half) for m in (j, j + lanes)])
        high = ir.Constant(ir.VectorType(i32, lanes),
                           [m for j in range(half, lanes) for m in (j, j + lanes)])
        width = lanes
        while width > 1:
            new = []
            for m in range(half):
                new.append(builder.shuffle_vector(rows[m], rows[m + half], low))
                new.append(builder.shuffle_vector(rows[m], rows[m + half], high))
            rows = new
            width //= 2
        for j in range(lanes):
            ptr = builder.gep(dst_p, [builder.mul(d_stride, ir.Constant(i64, j))])
            builder.store(rows[j], builder.bitcast(ptr, vptr), align=4)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def interleave_rows(typingctx, zero, first_addr, second_addr, src_stride, lo_addr, hi_addr,
                    dst_stride, LANES):
    """LANES pairs of rows interleaved, lane by lane, into two rows each::

        lo[j*dst_stride + 2i]     = first[j*src_stride + i]
        lo[j*dst_stride + 2i + 1] = second[j*src_stride + i]
        hi[j*dst_stride + 2i]     = first[j*src_stride + LANES/2 + i]
        hi[j*dst_stride + 2i + 1] = second[j*src_stride + LANES/2 + i]

    for j < LANES, i < LANES/2: two vector loads, two shuffles (the perfect
    shuffle of :func:`transpose_square`) and two vector stores per j. Two
    stride-2 phases of a transposed conv's output, each one channel's run of
    pixels, become whole runs of an output row: one vector store each rather
    than a store per element, every other element, from each phase in turn.
    Strides count elements; LANES a compile-time power of two.
    """
    tile = _tile_constants("interleave_rows", zero, LANES=LANES)
    if tile is None:
        return None
    lanes = tile["LANES"]
    if lanes < 2:
        raise TypingError("interleave_rows: LANES must be at least 2")
    sig = types.void(zero, first_addr, second_addr, src_stride, lo_addr, hi_addr, dst_stride,
                     LANES)

    def codegen(context, builder, signature, args):
        a_a, b_a, s_stride, lo_a, hi_a, d_stride = [
            context.cast(builder, v, t, types.int64)
            for v, t in zip(args[1:7], signature.args[1:7])]
        fp = context.get_value_type(zero)
        i64, i32 = ir.IntType(64), ir.IntType(32)
        vptr = ir.VectorType(fp, lanes).as_pointer()
        half = lanes // 2
        low = ir.Constant(ir.VectorType(i32, lanes),
                          [m for j in range(half) for m in (j, j + lanes)])
        high = ir.Constant(ir.VectorType(i32, lanes),
                           [m for j in range(half, lanes) for m in (j, j + lanes)])
        a_p, b_p, lo_p, hi_p = [builder.inttoptr(v, fp.as_pointer())
                                for v in (a_a, b_a, lo_a, hi_a)]
        for j in range(lanes):
            src = builder.mul(s_stride, ir.Constant(i64, j))
            dst = builder.mul(d_stride, ir.Constant(i64, j))
            a = builder.load(builder.bitcast(builder.gep(a_p, [src]), vptr), align=4)
            b = builder.load(builder.bitcast(builder.gep(b_p, [src]), vptr), align=4)
            builder.store(builder.shuffle_vector(a, b, low),
                          builder.bitcast(builder.gep(lo_p, [dst]), vptr), align=4)
            builder.store(builder.shuffle_vector(a, b, high),
                          builder.bitcast(builder.gep(hi_p, [dst]), vptr), align=4)
        return context.get_dummy_value()

    return sig, codegen
