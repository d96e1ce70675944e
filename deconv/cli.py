"""Command line: ``deconv check``, ``deconv train`` and ``deconv bench``."""

import argparse
import os
import sys


def _check(args):
    from deconv import check
    ok = check.run(configs=args.configs, seed=args.seed, ops=args.ops or None)
    return 0 if ok else 1


def _train(args, parser):
    from deconv.kernels import threads
    # before the first kernel starts the thread pool (README, Threads)
    policy, busy = threads.choose_wait_policy()
    if policy:
        print(f"deconv train: other processes keep {busy:.0f}% of the CPUs busy: "
              f"OMP_WAIT_POLICY={policy} (waiting threads sleep; set OMP_WAIT_POLICY "
              f"yourself to choose)", flush=True)
    from deconv.models import recipes
    try:
        result = recipes.run(
            args.model, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
            momentum=args.momentum, optimizer=args.optimizer, weight_decay=args.weight_decay,
            seed=args.seed, out=args.out,
            resume=args.resume, scale=args.scale, upsample=args.upsample, quick=args.quick)
    except recipes.SettingsError as e:
        # found before any training: an option that does not apply, a bad value or checkpoint
        parser.error(str(e))
    return 0 if result["beats_baseline"] else 1


def _bench(args):
    from deconv import bench
    from deconv.bench import cases as bench_cases
    try:
        user = [bench_cases.parse_case(spec) for spec in args.case or ()]
        for path in args.case_file or ():
            user += bench_cases.read_case_file(path)
    except (bench_cases.CaseSpecError, OSError) as e:
        print(f"deconv bench: error: {e}", file=sys.stderr)
        return 2
    try:
        return bench.run(
            quick=args.quick, threads=args.threads, cases=args.cases, rounds=args.rounds,
            repeats=args.repeats, warmup=args.warmup, out=args.out,
            torch_python=args.torch_python, startup=not args.no_startup, peers=args.peers,
            size=args.size, fail_on_targets=args.fail_on_targets, suite=args.suite,
            user_cases=user, isa=args.isa, jax_python=args.jax_python,
            contended=args.contended)
    except bench.BenchError as e:
        # a bad option found past argparse (unknown case name, ...): usage error
        print(f"deconv bench: error: {e}", file=sys.stderr)
        return 2
    except bench.WorkerError as e:
        # e.g. deconv fails to import in the worker: say so without a parent traceback
        print(f"deconv bench: {e}", file=sys.stderr)
        return 1


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="deconv",
        description="Convolution, transposed convolution, pooling, unpooling and upsampling "
                    "with hand-written forward and backward Numba kernels.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser(
        "check",
        help="check every op's forward and backward against the reference, the adjoint "
             "identities and float64 finite differences; exit 1 on any failure",
    )
    p.add_argument("--configs", type=int, default=3, help="random configurations per op and dtype")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ops", nargs="*", metavar="OP", help="only these ops (default: all)")
    p.set_defaults(func=_check)
    t = sub.add_parser(
        "train",
        help="train one of the five model families on its bundled data, print its validation "
             "metric next to its baselines, write a checkpoint and a figure (needs the 'train' "
             "extra); exit 1 if it does not beat the best baseline",
    )
    t.add_argument("model", choices=["skip", "text", "classifier", "autoencoder", "superres",
                                     "generator"])
    t.add_argument("--epochs", type=int, help="total epochs (default: the family's recipe)")
    t.add_argument("--batch-size", type=int)
    t.add_argument("--lr", type=float)
    t.add_argument("--momentum", type=float, help="SGD momentum (--optimizer sgd only; default 0)")
    t.add_argument("--optimizer", choices=["adam", "adamw", "sgd"],
                   help="default: the family's recipe (adamw for classifier, else adam)")
    t.add_argument("--weight-decay", type=float,
                   help="default: the recipe's with its optimizer, else 0 (AdamW's is "
                        "decoupled, Adam's and SGD's an L2 penalty on the gradient)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", default="runs",
                   help="parent directory of the run's folder OUT/RUN (checkpoint.npz, "
                        "samples.png); RUN is MODEL for the default settings, else MODEL "
                        "followed by each setting that differs, e.g. superres-x4-pixelshuffle")
    t.add_argument("--resume", metavar="CKPT",
                   help="continue from this checkpoint, or from the checkpoint in this run "
                        "folder, up to --epochs in total (same model, --lr, --momentum, "
                        "--weight-decay, --seed)")
    t.add_argument("--quick", action="store_true",
                   help="the recipe's quick variant: fewer epochs and examples, under a minute "
                        "on 2 cores, still beating the simple baselines (skip, text, classifier, "
                        "autoencoder, superres and generator)")
    t.add_argument("--scale", type=int, choices=[2, 4], help="superres only (default 2)")
    t.add_argument("--upsample", choices=["deconv", "pixelshuffle"],
                   help="superres only (default deconv)")
    t.set_defaults(func=lambda args: _train(args, t))
    b = sub.add_parser(
        "bench",
        help="benchmark suite: every op forward and backward against PyTorch and JAX (when "
             "importable), deconv's naive kernels, a NumPy im2col baseline, the scipy "
             "reference and the matmul limit, each in its own process; checks results first, "
             "evaluates the targets, writes results.json, results.md, ratios.png and "
             "roofline.png (see benchmarks/README.md)",
    )
    b.add_argument("--quick", action="store_true",
                   help="1 round, no warm-up beyond the first call, 3 repeats, warm start-up only "
                        "(about 3 minutes on 2 cores)")
    b.add_argument("--threads", type=int, nargs="+", default=[1, 2], metavar="T",
                   help="thread counts to run at (default: 1 2)")
    b.add_argument("--cases", nargs="+", metavar="NAME",
                   help="only these cases ('sweep' for every sweep point; default: all)")
    b.add_argument("--suite", choices=["kernels", "layers", "models", "all"], default="kernels",
                   help="kernels: one case per kernel, the training steps and the sweep "
                        "(default); layers: 35 conv layers of real networks (ResNet, VGG, "
                        "MobileNet, DeepLab, DCGAN, pix2pix, U-Net, FSRCNN, FCN, wav2vec, "
                        "MelGAN, HiFi-GAN, Demucs, WaveNet); models: a training step of each "
                        "family of 'deconv train' against its PyTorch twin; all: every one")
    b.add_argument("--case", action="append", metavar="SPEC",
                   help="a case of your own, e.g. \"conv2d x=8,64,56,56 w=64,64,3,3 "
                        "padding=1\" (keys: x, w, stride, padding, dilation, groups, "
                        "output_padding, dtype); repeatable; alone, only these run")
    b.add_argument("--case-file", action="append", metavar="PATH",
                   help="a file of such cases, one per line ('name: spec' names a row; "
                        "# comments)")
    b.add_argument("--isa", choices=["native", "avx2", "avx512", "generic"], default="native",
                   help="instruction set of the libraries in every worker: Numba's CPU "
                        "name and features, PyTorch's oneDNN ISA ceiling and ATen dispatch, "
                        "XLA's --xla_cpu_max_isa (default: the host's); each worker reports "
                        "what ran")
    b.add_argument("--rounds", type=int, help="worker rounds per lib and thread count "
                   "(default 3; --quick 1)")
    b.add_argument("--repeats", type=int, help="timed calls per pass in a worker "
                   "(default 10; --quick 3)")
    b.add_argument("--warmup", type=int,
                   help="untimed calls after the first (default 2; --quick 0)")
    b.add_argument("--out", metavar="DIR",
                   help="output directory (default: a new <temp dir>/deconv-bench/<date-time>, "
                        "never the repository's benchmarks/)")
    b.add_argument("--torch-python", metavar="PATH",
                   help="Python interpreter for the PyTorch worker (default: this one)")
    b.add_argument("--jax-python", metavar="PATH",
                   help="Python interpreter for the JAX worker (default: this one)")
    b.add_argument("--peers", nargs="+", default=["torch", "jax", "numpy", "scipy", "naive"],
                   choices=["torch", "jax", "numpy", "scipy", "naive"],
                   help="peers to run next to deconv (default: all; torch and jax are "
                        "dropped with a message when they do not import); 'naive' is deconv "
                        "under deconv.kernels.use('naive'), conv cases only; 'jax' conv "
                        "cases only")
    b.add_argument("--contended", action="store_true",
                   help="time everything a second time while a process spins on one core "
                        "(pinned with os.sched_setaffinity) and report each library's "
                        "slowdown")
    b.add_argument("--no-startup", action="store_true", help="skip the start-up measurement")
    b.add_argument("--fail-on-targets", action="store_true",
                   help="exit with status 1 when a target fails (default: only when results "
                        "are wrong)")
    b.add_argument("--size", choices=["full", "tiny"], default="full", help=argparse.SUPPRESS)
    b.set_defaults(func=_bench)
    args = parser.parse_args(argv)
    if getattr(args, "ops", None):
        from deconv.check import OPS
        unknown = [o for o in args.ops if o not in OPS]
        if unknown:
            parser.error(f"unknown op(s) {unknown}; choose from {sorted(OPS)}")
    if getattr(args, "configs", 1) < 1:
        parser.error(f"--configs must be >= 1, got {args.configs}")
    if args.command == "bench":
        if any(t < 1 for t in args.threads):
            parser.error(f"--threads must be >= 1, got {args.threads}")
        for name in ("rounds", "repeats"):
            if getattr(args, name) is not None and getattr(args, name) < 1:
                parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")
        if args.warmup is not None and args.warmup < 0:
            parser.error(f"--warmup must be >= 0, got {args.warmup}")
        for name in ("torch_python", "jax_python"):
            path = getattr(args, name)
            if path and not (os.path.isfile(path) and os.access(path, os.X_OK)):
                parser.error(f"--{name.replace('_', '-')} {path!r} is not an executable file")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
