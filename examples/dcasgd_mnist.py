"""Delayed gradients on MNIST: sequential SGD, ASGD and DC-ASGD with 8 simulated workers.

With M = 8 workers pushing in random order, each gradient is ~7 server updates stale (random,
mean M − 1). At a learning rate where that matters, ASGD ends below sequential SGD and DC-ASGD
(Zheng et al., ICML 2017) recovers much of the gap by adding λ·g⊙g⊙(w_t − w_bak(m)), the
first-order correction for the drift since the worker pulled.

The run is exact and reproducible: same seed, same weights, on any machine with the same BLAS
kernel. For that it runs NumPy's BLAS on one thread (--threads): a second thread sums the
matrix products in another order, so the runs would end elsewhere on a machine with another
number of cores, and it buys no time on this small MLP (24 s either way on 2 cores). One
thread is also what examples/dcasgd_study.py runs with, where λ0 and the cap below were chosen;
docs/results.md has the seeds with two threads too.

DC-ASGD-a runs in the authors' form (one MeanSquare per worker) with λ0 = 5 and cap = 1 (η·λ·g⊙g
at most 1 per weight), the setting that closed the most of ASGD's gap on a validation split
(the last 10,000 training images; examples/dcasgd_study.py, docs/distributed.md).

    python examples/dcasgd_mnist.py --seed 0          # the 784-512-10 MLP, all of MNIST
    python examples/dcasgd_mnist.py --small           # 784-64-10 on the 2,000 shipped images
    python examples/dcasgd_mnist.py --lambda0 2 --cap 0   # the authors' defaults, no cap
"""
import argparse
import os

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--small", action="store_true", help="the shipped MNIST subset, a small MLP")
parser.add_argument("--updates", type=int, default=3000)
parser.add_argument("--lr", type=float, default=0.5)
parser.add_argument("--batch-size", type=int, default=32)
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--form", choices=("paper", "authors"), default="authors",
                    help="DC-ASGD-a's form: the authors' code's (one MeanSquare per worker) or the paper's (one)")
parser.add_argument("--lambda0", type=float, default=5.0, help="DC-ASGD-a's λ0")
parser.add_argument("--cap", type=float, default=1.0, help="the cap on η·λ·g⊙g; 0 for none")
parser.add_argument("--out", default="dcasgd_mnist.png")
parser.add_argument("--threads", type=int, default=1, help="NumPy's BLAS threads (1: the same numbers on any machine)")
args = parser.parse_args()
if args.threads < 1:
    parser.error(f"--threads: expected a positive count, got {args.threads}")
for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(args.threads)            # before NumPy is imported

from tidu.distributed.experiment import compare, format_table, plot   # noqa: E402
from tidu.distributed.rules import DCASGD                            # noqa: E402

task = "mnist-mlp-small" if args.small else "mnist-mlp"
common = dict(task=task, updates=args.updates, learning_rate=args.lr, batch_size=args.batch_size,
              schedule="random", seed=args.seed, out=None)
dc = DCASGD(args.lr, form=args.form, lambda0=args.lambda0, cap=args.cap or None)
rows = compare(workers=(1,), rules=("sgd",), **common) + compare(workers=(8,), rules=("asgd", dc), **common)
print(format_table(rows))
sequential, asgd, dcasgd = (r["test_accuracy"] for r in rows)
gap = sequential - asgd
print(f"sequential SGD {sequential:.4f}, ASGD (M=8) {asgd:.4f}, DC-ASGD (M=8) {dcasgd:.4f}: "
      f"DC-ASGD closes {100 * (dcasgd - asgd) / gap:.0f}% of ASGD's gap" if gap > 0 else
      f"sequential SGD {sequential:.4f}, ASGD (M=8) {asgd:.4f}, DC-ASGD (M=8) {dcasgd:.4f}")
if args.out:
    plot(rows, {(r["rule"], r["M"]): r["curve"] for r in rows}, args.out,
         title=f"{task}, lr={args.lr}, batch {args.batch_size}, random staleness, seed {args.seed}")
    print(f"plot: {args.out}")
