"""The worker processes of ``deconv bench`` and the machine they run on (parent side).

:func:`run_worker` starts one worker (:mod:`deconv.bench.worker`, run as a
script) on a job and reads its result back, with the CPU that other
processes used meanwhile; :class:`Run` waits for a quiet machine before a
timing worker and re-runs one that was disturbed; :func:`worker_env` pins
every thread count and the allocator. The machine's state comes from
``/proc``.
"""

import contextlib
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

from deconv.kernels.threads import cpu_busy, machine_jiffies

from . import worker

WORKER_SCRIPT = os.path.abspath(worker.__file__)
PACKAGE_DIR = os.path.dirname(os.path.dirname(WORKER_SCRIPT))   # deconv/


# ---------------------------------------------------------------------------
# machine state (from /proc)
# ---------------------------------------------------------------------------

def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def machine_info():
    """CPU model, cores, memory, OS and the parent's library versions."""
    info = {"cpu": platform.processor() or "?", "cores": os.cpu_count(),
            "platform": platform.platform(), "hostname": platform.node(),
            "python": sys.version.split()[0]}
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
        for line in text.splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        flags = next((line.split(":", 1)[1].split() for line in text.splitlines()
                      if line.startswith("flags")), [])
        info["simd"] = [f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile")
                        if f in flags]
    except OSError:
        pass
    try:
        with open("/proc/meminfo") as f:
            kb = int(next(line for line in f if line.startswith("MemTotal")).split()[1])
        info["memory_gb"] = round(kb / 2**20, 1)
    except (OSError, StopIteration):
        pass
    import numba
    import numpy
    import scipy
    import deconv
    info["versions"] = {"numpy": numpy.__version__, "numba": numba.__version__,
                        "scipy": scipy.__version__, "deconv": deconv.__version__}
    return info


# ---------------------------------------------------------------------------
# workers
# ---------------------------------------------------------------------------

# Every worker keeps large freed buffers for reuse (glibc's malloc), as a long
# training process ends up doing. Without this, glibc's adaptive mmap threshold
# makes a library's time depend on what it allocated earlier in the process:
# PyTorch 2.13's conv2d forward (N=32, 64->64, 32x32, 2 threads) took 18.5 ms
# fresh and 11.8 ms after a float64 run had raised the threshold, because each
# fresh mmap of its output page-faults on first touch.
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": str(1 << 30), "MALLOC_TRIM_THRESHOLD_": str(1 << 31)}


#: x86-64 features of an AVX2 core (Haswell: x86-64-v3), given to Numba
#: with the CPU name: the name alone keeps the host's features (AVX-512)
AVX2_FEATURES = ("+64bit,+avx,+avx2,+bmi,+bmi2,+cmov,+cx16,+cx8,+f16c,+fma,+fxsr,+lzcnt,"
                 "+mmx,+movbe,+pclmul,+popcnt,+rdrnd,+sahf,+sse,+sse2,+sse3,+sse4.1,+sse4.2,"
                 "+ssse3,+xsave,+xsaveopt")
#: an AVX-512 core of the Skylake-SP generation (F, CD, BW, DQ, VL): no AMX, no VNNI
AVX512_FEATURES = AVX2_FEATURES + ",+avx512f,+avx512cd,+avx512bw,+avx512dq,+avx512vl"

#: ``--isa``: the instruction set each library may use. Numba: CPU name and
#: features (``generic``: baseline x86-64, no features); PyTorch: oneDNN's
#: ISA ceiling and ATen's kernel dispatch. 'native': the host's own.
ISAS = {
    "native": ({}, {}),
    "avx2": ({"NUMBA_CPU_NAME": "haswell", "NUMBA_CPU_FEATURES": AVX2_FEATURES},
             {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}),
    "avx512": ({"NUMBA_CPU_NAME": "skylake-avx512", "NUMBA_CPU_FEATURES": AVX512_FEATURES},
               {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE", "ATEN_CPU_CAPABILITY": "avx512"}),
    "generic": ({"NUMBA_CPU_NAME": "generic"},
                {"ONEDNN_MAX_CPU_ISA": "SSE41", "ATEN_CPU_CAPABILITY": "default"}),
}


#: ``--isa`` for JAX: the newest instructions XLA's CPU code generator may use
#: (``--xla_cpu_max_isa``; the Eigen and oneDNN code inside jaxlib is not
#: generated, so it is not held by it)
XLA_MAX_ISA = {"avx2": "AVX2", "avx512": "AVX512", "generic": "SSE4_2"}


def isa_env(isa, lib):
    """The environment that restricts ``lib`` to ``isa`` (:data:`ISAS`).

    Numba's compiled code goes to a cache of its own per ISA
    (``NUMBA_CACHE_DIR``), so that code built for one target never loads
    under another.
    """
    numba_env, torch_env = ISAS[isa]
    if lib == "torch":
        return dict(torch_env)
    if lib == "jax":
        return {}                   # in XLA_FLAGS (:func:`xla_flags`)
    if not numba_env:
        return {}
    return dict(numba_env, NUMBA_CACHE_DIR=os.path.join(
        tempfile.gettempdir(), f"deconv-numba-cache-{isa}"))


def xla_flags(threads, isa="native"):
    """``XLA_FLAGS`` of a JAX worker at ``threads`` threads.

    XLA has no thread-count setting. At 1 thread, Eigen's calls in XLA's
    CPU code run single-threaded (``--xla_cpu_multi_thread_eigen=false``);
    above, multi-threaded on XLA's pool, which XLA sizes from the CPUs the
    process may run on, not from T. ``intra_op_parallelism_threads=T`` is the
    setting's name in TensorFlow's session options; XLA reads it as a
    non-flag word and ignores it (alone, it would take it for a file of
    flags and abort), so it only records the intent. The worker reports the
    pool's CPUs and each pass's CPU time / wall time. ``isa``: see
    :data:`XLA_MAX_ISA`.
    """
    eigen = "false" if threads == 1 else "true"
    flags = f"--xla_cpu_multi_thread_eigen={eigen}"
    if isa in XLA_MAX_ISA:
        flags += f" --xla_cpu_max_isa={XLA_MAX_ISA[isa]}"
    return flags + f" intra_op_parallelism_threads={threads}"


def worker_env(lib, threads, extra=None, isa="native"):
    """The environment of a worker: thread counts pinned to ``threads``; large
    buffers reused (:data:`MALLOC_ENV`); deconv found where this process found it;
    the instruction set limited to ``isa`` (:func:`isa_env`)."""
    env = {k: v for k, v in os.environ.items()
           if k not in worker.THREAD_ENV_VARS and k not in worker.ISA_ENV_VARS
           and k != worker.XLA_ENV_VAR}
    env.update({k: str(threads) for k in worker.THREAD_ENV_VARS})
    if lib == "jax":
        env[worker.XLA_ENV_VAR] = xla_flags(threads, isa)
    env.update(MALLOC_ENV)
    env.update(isa_env(isa, lib))
    if lib in ("deconv", "naive"):
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (os.path.dirname(PACKAGE_DIR), os.environ.get("PYTHONPATH")) if p)
    env.update(extra or {})
    return env


class WorkerError(RuntimeError):
    """A worker process failed."""


def run_worker(python, job, env, tmp, cwd=None, script=WORKER_SCRIPT):
    """Run one worker; return its result with wall time and the machine's other load.

    ``others_pct``: CPU used on the machine during the worker by anything
    but the worker, in % of all cores; ``steal_pct``: time the hypervisor
    gave to other guests.
    """
    fd, job_path = tempfile.mkstemp(suffix=".json", dir=tmp)
    os.close(fd)
    job = dict(job, result_path=job_path + ".result")
    with open(job_path, "w") as f:
        json.dump(job, f)
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        st0 = machine_jiffies()
    except OSError:
        st0 = None
    t = time.perf_counter()
    proc = subprocess.run([python, script, job_path], env=env, capture_output=True, text=True,
                          cwd=cwd)
    wall = time.perf_counter() - t
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0 or not os.path.exists(job["result_path"]):
        raise WorkerError(f"{job['lib']} {job['mode']} worker failed (exit {proc.returncode}, "
                          f"{python} {script}):\n{proc.stderr[-4000:]}")
    with open(job["result_path"]) as f:
        res = json.load(f)
    res["process_wall_s"] = wall
    if st0 is not None:
        total, idle, steal = (b - a for a, b in zip(st0, machine_jiffies()))
        child_s = ru1.ru_utime - ru0.ru_utime + ru1.ru_stime - ru0.ru_stime
        child = child_s * os.sysconf("SC_CLK_TCK")
        res["others_pct"] = max(0.0, 100.0 * (total - idle - steal - child) / max(total, 1))
        res["steal_pct"] = 100.0 * steal / max(total, 1)
    return res


def peer_version(python, lib):
    """(version, None) if ``python`` imports the optional peer ``lib`` ('torch',
    'jax'), else (None, why)."""
    try:
        proc = subprocess.run([python, "-c", f"import {lib}; print({lib}.__version__)"],
                              capture_output=True, text=True, timeout=300,
                              env=worker_env(lib, 1))
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, str(e)
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        return None, lines[-1] if lines else f"exit {proc.returncode}"
    return proc.stdout.strip().splitlines()[-1], None


def torch_version(python):
    """(version, None) if ``python`` imports torch, else (None, why)."""
    return peer_version(python, "torch")


#: the busy loop of ``--contended``: pins itself to one core and spins until killed
BUSY_LOOP = "import os, sys\nos.sched_setaffinity(0, {int(sys.argv[1])})\nwhile True:\n    pass\n"


@contextlib.contextmanager
def busy_core(python=None, core=None):
    """A process spinning on one core (``os.sched_setaffinity``) for the ``with`` block.

    ``core``: default the last CPU this process may use. The process is
    killed when the block ends, by an exception too.

    Yields
    ------
    (int, int)
        The core it keeps busy and the process's id.
    """
    cpus = sorted(os.sched_getaffinity(0))
    core = cpus[-1] if core is None else core
    proc = subprocess.Popen([python or sys.executable, "-c", BUSY_LOOP, str(core)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        time.sleep(0.2)                 # spinning before the first worker starts
        if proc.poll() is not None:
            raise WorkerError(f"the busy loop on core {core} ended at once "
                              f"(exit {proc.returncode}): {proc.stderr.read().decode()[-500:]}")
        yield core, proc.pid
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stderr.close()


class Run:
    """State of one ``deconv bench`` run: settings, output stream, temp dir, machine sampling."""

    def __init__(self, settings, stream, tmp, max_busy=30.0, max_others=20.0, isa="native"):
        self.s = settings
        self.isa = isa
        self.stream = stream
        self.tmp = tmp
        self.max_busy = max_busy
        self.max_others = max_others

    def say(self, *parts, end="\n"):
        print(*parts, end=end, file=self.stream, flush=True)

    def wait_quiet(self):
        """Sample the machine's CPU use; wait (up to ``max_wait`` s) while it is busy.

        Returns
        -------
        (float, float)
            The last busy percentage seen and the seconds waited.
        """
        t0 = time.time()
        while True:
            busy = cpu_busy(self.s["idle_sample"])
            waited = time.time() - t0
            if not busy > self.max_busy or waited >= self.s["max_wait"]:
                return busy, waited
            time.sleep(min(2.0, max(0.0, self.s["max_wait"] - waited)))

    def worker(self, python, job, env, label):
        """Run a timing worker after waiting for quiet; re-run it when disturbed.

        The result gets ``busy_before_pct``, ``waited_s``, ``attempts`` and
        ``disturbed_pct`` (other processes' CPU use in the runs thrown away).
        """
        disturbed = []
        for attempt in range(self.s["retries"] + 1):
            busy, waited = self.wait_quiet()
            res = run_worker(python, job, env, self.tmp)
            res.update(busy_before_pct=busy, waited_s=waited, attempts=attempt + 1,
                       disturbed_pct=disturbed)
            others = res.get("others_pct", 0.0)
            if others <= self.max_others or attempt == self.s["retries"]:
                return res
            disturbed.append(others)
        raise AssertionError("unreachable")

    def describe(self, res):
        """One line on a finished worker: wall time, import time, machine load."""
        text = (f"{res['process_wall_s']:5.1f} s (import {res.get('import_s', 0.0):.1f} s; "
                f"machine {res['busy_before_pct']:.0f}% busy before")
        if res.get("waited_s", 0.0) >= 1.0:
            text += f" after waiting {res['waited_s']:.0f} s"
        text += f", others {res.get('others_pct', float('nan')):.0f}% during"
        if res.get("disturbed_pct"):
            text += ", re-run after " + ", ".join(f"{d:.0f}%" for d in res["disturbed_pct"])
        return text + ")"
