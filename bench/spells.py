"""Where a training step's time goes, op by op, in this host's fast and slow spells.

    python bench/spells.py --workload cnn --seconds 90            # tidu[fast] (numba's kernels)
    python bench/spells.py --workload convnet --plain --seconds 90

On the 2-vCPU AMD EPYC host of bench/RESULTS.md the same training step runs at two speeds,
in spells of seconds to minutes (the LeNet CNN: ~11 ms a step in one, ~17 in the other): in
the slow spells a core reads what the other core wrote about twice as slowly ("The two speeds
are reads across cores" in RESULTS.md). This script trains one model for --seconds on real
MNIST batches, in windows of --window train_on_batch steps, and times inside every window
each autograd op's forward and backward (self time, by Function class), the optimizer's
update and the whole step. The windows are then split where their step times jump most
(the two groups of window times closest to their own means, when those means are 15% or more
apart) and the table gives each op's mean milliseconds a step in the fast and the slow
windows, and the difference: what a slow spell costs, and where. A run whose windows do not
fall in two such groups gives one column over all of them.

The timers add ~1 µs an op; the step times are the untimed-code's plus that. One process, 2
BLAS threads unless --threads.
"""
import argparse
import collections
import os
import sys
import time

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--workload", required=True, choices=["mlp", "cnn", "lstm", "gru", "simplernn",
                                                      "convnet", "overhead"])
ap.add_argument("--plain", action="store_true", help="TIDU_FAST=0: the NumPy path")
ap.add_argument("--seconds", type=float, default=90.0)
ap.add_argument("--window", type=int, default=20, help="steps a window")
ap.add_argument("--threads", type=int, default=2)
args = ap.parse_args()
if args.seconds <= 0 or args.window < 1 or args.threads < 1:
    ap.error(f"--seconds, --window and --threads must be positive, got {args.seconds}, "
             f"{args.window}, {args.threads}")
for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(args.threads)
if args.plain:
    os.environ["TIDU_FAST"] = "0"
for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):       # as bench/run.py's children
    os.environ.pop(var, None)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import workloads as W  # noqa: E402
import more_workloads as more  # noqa: E402
from tidu.autograd.function import Function  # noqa: E402
import tidu.functional  # noqa: E402,F401  (every Function subclass defined)
from tidu import kernels  # noqa: E402

spent = collections.defaultdict(float)   # op name -> self seconds in this window
stack = []                              # [start, seconds spent in nested ops] per open op


def timed(fn, name):
    def run(*a, **k):
        stack.append([time.perf_counter(), 0.0])
        try:
            return fn(*a, **k)
        finally:
            start, inner = stack.pop()
            took = time.perf_counter() - start
            spent[name] += took - inner
            if stack:
                stack[-1][1] += took
    return run


def subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from subclasses(sub)


for cls in set(subclasses(Function)):
    for phase in ("forward", "backward"):
        method = cls.__dict__.get(phase)
        if isinstance(method, staticmethod):
            setattr(cls, phase, staticmethod(timed(method.__func__, f"{cls.__name__}.{phase}")))

w = args.workload
xtr, ytr, _, _ = W.load_mnist()
if w == "convnet":
    xtr = xtr.reshape(-1, 28, 28, 1)
Y = W.one_hot(ytr)
B = W.BATCH[w]
model = more.tidu_model(w) if w in more.WORKLOADS else W.tidu_model(w)
model.optimizer.apply_gradients = timed(model.optimizer.apply_gradients, "optimizer update")
rng = np.random.default_rng(0)
order = rng.permutation(len(xtr))
cursor = [0]


def batch():
    if cursor[0] + B > len(order):
        cursor[0] = 0
    idx = order[cursor[0]:cursor[0] + B]
    cursor[0] += B
    return xtr[idx], Y[idx]


for _ in range(10):                     # compile, allocate, let the LSTM's Chooser decide
    model.train_on_batch(*batch())
windows = []
end = time.perf_counter() + args.seconds
while time.perf_counter() < end:
    data = [batch() for _ in range(args.window)]
    spent.clear()
    t = time.perf_counter()
    for xb, yb in data:
        model.train_on_batch(xb, yb)
    windows.append(((time.perf_counter() - t) / args.window, dict(spent)))
    time.sleep(0.05)

steps = sorted(s for s, _ in windows)


def two_groups(v):
    """(the split v[k - 1], mean of v[:k], mean of v[k:]) minimizing the squared deviations
    from the two means (1-D k-means with k = 2, exact: v sorted)."""
    best, total, n = None, sum(v), len(v)
    left = 0.0
    for k in range(1, n):
        left += v[k - 1]
        lo, hi = left / k, (total - left) / (n - k)
        spread = sum((x - lo) ** 2 for x in v[:k]) + sum((x - hi) ** 2 for x in v[k:])
        if best is None or spread < best[0]:
            best = (spread, v[k - 1], lo, hi)
    return best[1:] if best else (float("inf"), v[0], v[0])


split, lo, hi = two_groups(steps) if len(steps) > 1 else (float("inf"), 1.0, 1.0)
jump = hi / lo
if jump < 1.15:
    split = float("inf")
spells = {"fast": [w for w in windows if w[0] <= split],
          "slow": [w for w in windows if w[0] > split]}


def mean_ms(ws, key=None):
    if not ws:
        return float("nan")
    if key is None:
        total = sum(s for s, _ in ws)
    else:
        total = sum(d.get(key, 0.0) for _, d in ws) / args.window
    return total / len(ws) * 1e3


ops = sorted({k for _, d in windows for k in d},
             key=lambda k: -sum(d.get(k, 0) for _, d in windows))
path = "tidu[fast]" if kernels.enabled() else "plain tidu (TIDU_FAST=0 or no numba)"
two = bool(spells["slow"])
print(f"{w}, {path}, batch {B}: {len(windows)} windows of {args.window} steps over "
      f"{args.seconds:.0f} s, a step {steps[0] * 1e3:.2f}-{steps[-1] * 1e3:.2f} ms (median "
      f"{steps[len(steps) // 2] * 1e3:.2f}); " +
      (f"{len(spells['fast'])} fast, {len(spells['slow'])} slow, split at {split * 1e3:.2f} ms "
       f"(two groups, their means {jump:.2f}× apart)" if two else
       f"one spell: two groups' means would be only {jump:.2f}× apart"))
print()
rest = {name: mean_ms(ws) - sum(mean_ms(ws, k) for k in ops) for name, ws in spells.items()}
rows = [("the whole step", None)] + [(k, k) for k in ops]
if two:
    print("| ms a step | fast spell | slow spell | slow − fast |")
    print("|---|---|---|---|")
    for label, key in rows:
        f, s = mean_ms(spells["fast"], key), mean_ms(spells["slow"], key)
        print(f"| {label} | {f:.3f} | {s:.3f} | {s - f:+.3f} |")
    print(f"| everything else (fit's Python, checks, metrics) | {rest['fast']:.3f} | "
          f"{rest['slow']:.3f} | {rest['slow'] - rest['fast']:+.3f} |")
else:
    print("| ms a step | all windows |")
    print("|---|---|")
    for label, key in rows:
        print(f"| {label} | {mean_ms(spells['fast'], key):.3f} |")
    print(f"| everything else (fit's Python, checks, metrics) | {rest['fast']:.3f} |")
