"""Delayed gradients on MNIST: sequential SGD, ASGD and DC-ASGD with 8 simulated workers.

With M = 8 workers pushing in random order, each gradient is ~7 server updates stale (random,
mean M − 1). At a learning rate where that matters, ASGD ends below sequential SGD and DC-ASGD
(Zheng et al., ICML 2017) recovers much of the gap by adding λ·g⊙g⊙(w_t − w_bak(m)), the
first-order correction for the drift since the worker pulled. The run is exact and
reproducible: same seed, same weights.

    python examples/dcasgd_mnist.py                  # the 784-512-10 MLP, all of MNIST
    python examples/dcasgd_mnist.py --small          # 784-64-10 on the 2,000 shipped images

The same as `tidu distributed --workers 1,8 --rules sgd,asgd,dcasgd`.
"""
import argparse

from tidu.distributed.experiment import compare, format_table

from tidu.distributed.rules import DCASGD

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--small", action="store_true", help="the shipped MNIST subset, a small MLP")
parser.add_argument("--updates", type=int, default=3000)
parser.add_argument("--lr", type=float, default=0.5)
parser.add_argument("--batch-size", type=int, default=32)
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--form", choices=("paper", "authors"), default="paper",
                    help="DC-ASGD-a's form: the paper's (one MeanSquare) or the authors' code's (one per worker)")
parser.add_argument("--out", default="dcasgd_mnist.png")
args = parser.parse_args()

rows = compare(task="mnist-mlp-small" if args.small else "mnist-mlp", workers=(1, 8),
               rules=("sgd", "asgd", DCASGD(args.lr, form=args.form)), updates=args.updates,
               learning_rate=args.lr,
               batch_size=args.batch_size, schedule="random", seed=args.seed, out=args.out)
print(format_table(rows))
by = {(r["rule"], r["M"]): r["test_accuracy"] for r in rows}
sequential, asgd, dcasgd = by[("SyncSGD", 1)], by[("ASGD", 8)], by[("DC-ASGD-a", 8)]
gap = sequential - asgd
print(f"sequential SGD {sequential:.4f}, ASGD (M=8) {asgd:.4f}, DC-ASGD (M=8) {dcasgd:.4f}: "
      f"DC-ASGD closes {100 * (dcasgd - asgd) / gap:.0f}% of ASGD's gap" if gap > 0 else
      f"sequential SGD {sequential:.4f}, ASGD (M=8) {asgd:.4f}, DC-ASGD (M=8) {dcasgd:.4f}")
print(f"plot: {args.out}")
