"""Command line: ``deconv check`` (later: ``train``, ``bench``)."""

import argparse
import sys


def _check(args):
    from deconv import check
    ok = check.run(configs=args.configs, seed=args.seed, ops=args.ops or None)
    return 0 if ok else 1


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
