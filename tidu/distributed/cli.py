"""`tidu distributed`: the rules-by-workers comparison from the command line.

    tidu distributed --task mnist-mlp --workers 1,4,8,16 --rules sgd,asgd,dcasgd,downpour --out dist.png
    tidu distributed --workers 8 --rules asgd,dcasgd --backend ray --address auto   # on a Ray cluster

tidu/cli.py adds it with `add_distributed_subcommand(subparsers)`; the parser's `func` runs it.
"""
import argparse


def _ints(text):
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected worker counts >= 1, got {text!r}")
    return values


def _names(text):
    values = tuple(v.strip() for v in text.split(",") if v.strip())
    if not values:
        raise argparse.ArgumentTypeError(f"expected comma-separated rule names, got {text!r}")
    return values


def add_distributed_subcommand(subparsers):
    """Add the `distributed` subcommand to an argparse subparsers object; returns its parser."""
    from tidu.distributed.experiment import SPLITS, TASKS

    p = subparsers.add_parser(
        "distributed", help="compare parameter-server rules (SyncSGD, ASGD, DC-ASGD, Downpour)",
        description="Train each rule with each number of workers on the same data and seeds, "
                    "print the table (rule, M, test accuracy, loss) and plot test accuracy "
                    "against server updates.")
    p.add_argument("--task", default="mnist-mlp", choices=TASKS)
    p.add_argument("--workers", type=_ints, default=(1, 4, 8, 16), help="e.g. 1,4,8,16")
    p.add_argument("--rules", type=_names, default=("sgd", "asgd", "dcasgd", "downpour"),
                   help="from sgd, asgd, dcasgd (adaptive), dcasgd-c (constant), downpour")
    p.add_argument("--updates", type=int, default=2000, help="server updates per run")
    p.add_argument("--eval-every", type=int, default=None, help="updates between test evaluations")
    p.add_argument("--lr", type=float, default=0.5, help="learning rate of sgd, asgd, dcasgd")
    p.add_argument("--downpour-lr", type=float, default=0.01, help="learning rate of Downpour (AdaGrad)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--schedule", default="random", choices=("random", "round_robin"),
                   help="simulated staleness: random (mean M - 1) or round robin (exactly M - 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--split", default="test", choices=SPLITS,
                   help="evaluate on the test set, or on the last 10,000 training images (validation)")
    p.add_argument("--backend", default="simulated", choices=("simulated", "ray"))
    p.add_argument("--address", default=None,
                   help="Ray only: 'auto' or HOST:PORT joins a running cluster (default: a local Ray)")
    p.add_argument("--out", default="dist.png", help="plot file ('' for none)")
    p.set_defaults(func=run)
    return p


def run(args):
    from tidu.distributed.experiment import compare, format_table

    rows = compare(task=args.task, workers=args.workers, rules=args.rules, updates=args.updates,
                   seed=args.seed, out=args.out or None, learning_rate=args.lr,
                   downpour_learning_rate=args.downpour_lr, batch_size=args.batch_size,
                   schedule=args.schedule, eval_every=args.eval_every, backend=args.backend,
                   address=args.address, split=args.split)
    print(format_table(rows))
    if args.out:
        print(f"plot: {args.out}")
    return 0


def main(argv=None):
    """Run the subcommand on its own: python -m tidu.distributed.cli --workers 1,8 ..."""
    parser = argparse.ArgumentParser(prog="tidu")
    sub = parser.add_subparsers(dest="command", required=True)
    add_distributed_subcommand(sub)
    args = parser.parse_args(["distributed", *(argv if argv is not None else __import__("sys").argv[1:])])
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
