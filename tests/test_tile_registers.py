"""The micro-kernels' loops keep their accumulators in registers on every target (issue 12).

Each tile of :mod:`deconv.kernels.microkernel`, at the shape
:func:`deconv.kernels.plan.tiles_for` gives a target, is compiled by LLVM's own
target machines (through llvmlite, as Numba would on that CPU) for x86-64 with
AVX-512 (Skylake-SP), x86-64 with AVX2 (Haswell), aarch64 (Neoverse N1, Graviton 2)
and Apple M1, and its assembly read: the loop over taps (or pixels) must touch
no stack slot (no spill, no reload) and its multiply-adds must write at least
three quarters of the target's vector registers (the tile is not shrunk until
it stops spilling). The weight-gradient tile's second loop, over the short runs
at the ends of rows (at most one per row, loaded with masks), is left out: its
masks take registers of their own, and on aarch64 LLVM expands masked loads
into a branch per lane. On baseline x86-64 (no FMA) the multiply-adds must not
become a library call per lane.

The IR is the one Numba generates for a small @njit function calling the tile
with run-time arguments (so nothing is folded away); its host attributes are
dropped and it is optimised again for each target, as Numba would there.
"""

import re

import llvmlite.binding as llvm
import numpy as np
import pytest
from numba import njit, types

from deconv.kernels import plan
from deconv.kernels.microkernel import (register_tile, register_tile_broadcast,
                                        register_tile_reduce)


@njit(no_cpython_wrapper=True)
def _forward(zero, out, ostride, m, n, a, b, offs, K, vec, bias, hb, acc, MR, NV, LANES):
    register_tile(zero, out, ostride, m, n, a, b, offs, K, vec, bias, hb, acc, MR, NV, LANES)


@njit(no_cpython_wrapper=True)
def _reduce(zero, out, ostride, m, n, dy, dys, x, offs, runs, nf, tail, carry, c_in, c_out,
            MR, NK, LANES):
    # no tail runs (a constant 0): their loop, with masked loads, is folded away and the
    # loop over whole runs, the inner loop of the weight gradient, is the one left
    register_tile_reduce(zero, out, ostride, m, n, dy, dys, x, offs, runs, nf, tail, 0,
                         carry, c_in, c_out, MR, NK, LANES)


@njit(no_cpython_wrapper=True)
def _broadcast(zero, out, ostride, m, n, a, astride, b, rows, steps, ns, bias, hb, acc, MR, NV,
               LANES):
    register_tile_broadcast(zero, out, ostride, m, n, a, astride, b, rows, steps, ns, bias, hb,
                            acc, MR, NV, LANES)


#: micro-kernel -> (its probe, run-time integer arguments after ``zero``, the tile's field)
KERNELS = {
    "register_tile": (_forward, 12, "forward"),
    "register_tile_reduce": (_reduce, 14, "reduce"),
    "register_tile_broadcast": (_broadcast, 13, "broadcast"),
}

#: target -> (triple, LLVM CPU name, plan.TARGETS key)
TARGETS = {
    "x86-64 AVX-512": ("x86_64-unknown-linux-gnu", "skylake-avx512", "avx512"),
    "x86-64 AVX2": ("x86_64-unknown-linux-gnu", "haswell", "avx2"),
    "aarch64 Neoverse N1": ("aarch64-unknown-linux-gnu", "neoverse-n1", "neon"),
    "aarch64 Apple M1": ("arm64-apple-macosx", "apple-m1", "neon"),
}


def _ir(kernel, tile, lanes, dtype):
    probe, n_ints, _ = KERNELS[kernel]
    fp = types.float32 if dtype == np.float32 else types.float64
    sig = (fp,) + (types.int64,) * n_ints + tuple(types.literal(v) for v in (*tile, lanes))
    probe.compile(sig)
    text = probe.inspect_llvm(sig)
    return re.sub(r'"target-(cpu|features)"="[^"]*"', "", text)


@pytest.fixture(scope="module")
def llvm_targets():
    llvm.initialize_all_targets()
    llvm.initialize_all_asmprinters()


def _assembly(ir_text, triple, cpu):
    machine = llvm.Target.from_triple(triple).create_target_machine(cpu=cpu, opt=3)
    module = llvm.parse_assembly(ir_text)
    module.triple = triple
    module.data_layout = str(machine.target_data)
    builder = llvm.create_pass_builder(machine, llvm.create_pipeline_tuning_options(speed_level=3))
    builder.getModulePassManager().run(module, builder)
    return machine.emit_assembly(module)


_BRANCH = re.compile(r"^\s+(?:j\w+|b\.\w+|b|cbnz|cbz|tbnz|tbz)\s+(?:[\w#]+,\s*)*(\.?L\w+)\s*$")
_FMA = re.compile(r"^\s+(vfmadd\w+|vfnmadd\w+|fmla(?:\.\w+)?|fmadd)\s+(.*)$")
_STACK = re.compile(r"\(%rsp\)|\(%rbp\)|\[sp\b|\[x29\b")


def _loops(asm):
    """Each loop of the assembly (a branch back to a label above it) whose body has
    multiply-adds: its lines, the multiply-adds' destination registers, its stack accesses."""
    lines = asm.splitlines()
    labels = {}
    for i, line in enumerate(lines):
        m = re.match(r"^(\.?L\w+):", line)
        if m:
            labels[m.group(1)] = i
    found = []
    for end, line in enumerate(lines):
        m = _BRANCH.match(line)
        if not (m and m.group(1) in labels and labels[m.group(1)] < end):
            continue
        body = lines[labels[m.group(1)]:end + 1]
        fmas = [_FMA.match(l) for l in body if _FMA.match(l)]
        if not fmas:
            continue
        operands = [f.group(2).split(",") for f in fmas]
        # AT&T x86 writes its destination last; aarch64 first
        dests = {(ops[0] if f.group(1).startswith("fm") else ops[-1]).strip().split(".")[0]
                 for f, ops in zip(fmas, operands)}
        found.append(dict(lines=len(body), fmas=len(fmas), registers=dests,
                          stack=[l.strip() for l in body if _STACK.search(l)]))
    return found


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("kernel", sorted(KERNELS))
@pytest.mark.parametrize("target", sorted(TARGETS))
def test_the_tile_loop_keeps_its_accumulators_in_registers(llvm_targets, target, kernel, dtype):
    triple, cpu, key = TARGETS[target]
    tiles = plan.tiles_for(plan.TARGETS[key])
    tile = getattr(tiles, KERNELS[kernel][2])
    lanes = plan.lanes(dtype, plan.TARGETS[key])
    asm = _assembly(_ir(kernel, tile, lanes, dtype), triple, cpu)
    accumulators = tile[0] * tile[1]
    loops = [loop for loop in _loops(asm) if loop["fmas"] >= accumulators]
    assert loops, f"no loop with {accumulators} multiply-adds in the {target} assembly"
    inner = min(loops, key=lambda loop: loop["lines"])
    assert inner["stack"] == [], f"{kernel} {tile} spills on {target}: {inner['stack'][:6]}"
    registers = plan.TARGETS[key].registers
    assert len(inner["registers"]) >= registers * 3 // 4, (
        f"{kernel} {tile} on {target}: accumulators in {sorted(inner['registers'])}")


@pytest.mark.parametrize("kernel", sorted(KERNELS))
def test_baseline_x86_64_multiplies_and_adds_without_a_library_call(llvm_targets, kernel):
    """No FMA on baseline x86-64 (SSE2): llvm.fmuladd becomes a multiply and an add,
    where llvm.fma would call fmaf once per lane."""
    tiles = plan.tiles_for(plan.TARGETS["sse2"])
    tile = getattr(tiles, KERNELS[kernel][2])
    lanes = plan.lanes(np.float32, plan.TARGETS["sse2"])
    asm = _assembly(_ir(kernel, tile, lanes, np.float32), "x86_64-unknown-linux-gnu", "x86-64")
    assert not re.search(r"\bfmaf?\b", asm)
    assert re.search(r"\bmulps\b", asm) and re.search(r"\baddps\b", asm)
