"""Command line: ``deconv check`` and ``deconv train`` (later: ``bench``)."""

import argparse
import sys


def _check(args):
    from deconv import check
    ok = check.run(configs=args.configs, seed=args.seed, ops=args.ops or None)
    return 0 if ok else 1


def _train(args):
    from deconv import experiments
    result = experiments.run(
        args.model, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        momentum=args.momentum, optimizer=args.optimizer, seed=args.seed, out=args.out,
        resume=args.resume, scale=args.scale, upsample=args.upsample)
    return 0 if result["beats_baseline"] else 1


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
    t.add_argument("model", choices=["skip", "text", "classifier", "autoencoder", "superres"])
    t.add_argument("--epochs", type=int, help="total epochs (default: the family's recipe)")
    t.add_argument("--batch-size", type=int)
    t.add_argument("--lr", type=float)
    t.add_argument("--momentum", type=float, default=0.0, help="SGD momentum")
    t.add_argument("--optimizer", choices=["adam", "sgd"], default="adam")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", default="runs", help="directory for OUT/MODEL/checkpoint.npz and samples.png")
    t.add_argument("--resume", metavar="CKPT", help="continue from this checkpoint")
    t.add_argument("--scale", type=int, default=2, choices=[2, 4], help="superres only")
    t.add_argument("--upsample", default="deconv", choices=["deconv", "pixelshuffle"],
                   help="superres only")
    t.set_defaults(func=_train)
    args = parser.parse_args(argv)
    if getattr(args, "ops", None):
        from deconv.check import OPS
        unknown = [o for o in args.ops if o not in OPS]
        if unknown:
            parser.error(f"unknown op(s) {unknown}; choose from {sorted(OPS)}")
    if getattr(args, "configs", 1) < 1:
        parser.error(f"--configs must be >= 1, got {args.configs}")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
