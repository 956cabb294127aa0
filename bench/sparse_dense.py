"""The MLP's first layer (Dense(512, relu) on MNIST's 784 pixels) over the 10,000 test images at
batch 256, three ways, alternated in one process: what tidu.kernels.sparse's docstring quotes.

    python bench/sparse_dense.py [--rounds 9]

  gemm1    relu(x W + b) by NumPy's GEMM on one BLAS thread (threadpoolctl)
  kernel   tidu.kernels.sparse over x's nonzeros, on this core (one BLAS thread meanwhile, so
           the kernel takes it: halves.one_core)
  gemm2    the GEMM on two BLAS threads

Each kernel batch is first checked against the GEMM's (within 1e-5 of the largest output). Each
round times every way once, in rotating order; the medians are printed, and the kernel's ratio
to each GEMM. Needs numba and threadpoolctl (the extra `fast`).
"""
import argparse
import os
import sys
import time

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--rounds", type=int, default=9)
args = ap.parse_args()
if args.rounds < 1:
    ap.error(f"--rounds must be positive, got {args.rounds}")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, ".."))
from run import child_env  # noqa: E402  (the benchmark children's environment)

os.environ.update(child_env(2))
for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
    os.environ.pop(name, None)
os.environ["TIDU_FAST"] = "1"
import numpy as np  # noqa: E402

import workloads as W  # noqa: E402
from tidu.kernels import sparse  # noqa: E402

try:
    from threadpoolctl import threadpool_limits
except ImportError:
    sys.exit("bench/sparse_dense.py: needs threadpoolctl (pip install '.[fast]')")
fast = sparse.sparse_input_kernels(np.float32)
if fast is None:
    sys.exit("bench/sparse_dense.py: needs numba (pip install '.[fast]')")

_, _, xte, _ = W.load_mnist()
rng = np.random.default_rng(0)
limit = np.sqrt(6 / (784 + 512))                       # Glorot uniform, as Dense's default
Wt = rng.uniform(-limit, limit, (784, 512)).astype(np.float32)
b = np.zeros(512, np.float32)
B = 256
batches = [xte[i:i + B] for i in range(0, len(xte), B)]


def gemm(x):
    y = x @ Wt
    y += b
    return np.maximum(y, 0, out=y)


def kernel(x):
    return fast.dense_sparse(x, Wt, b, True)


print(f"MNIST test images: {np.count_nonzero(xte) / xte.size:.2f} of the pixels nonzero")
with threadpool_limits(1, user_api="blas"):
    for x in batches:
        y = kernel(x)
        if y is None:
            sys.exit("bench/sparse_dense.py: the kernel declined a batch (not mostly zeros?)")
        ref = gemm(x)
        if np.abs(y - ref).max() > 1e-5 * max(1.0, np.abs(ref).max()):
            sys.exit("bench/sparse_dense.py: the kernel's outputs differ from the GEMM's")


def timed(way):
    threads = 2 if way == "gemm2" else 1
    fn = kernel if way == "kernel" else gemm
    with threadpool_limits(threads, user_api="blas"):
        t = time.perf_counter()
        for x in batches:
            fn(x)
        return time.perf_counter() - t


ways = ["gemm1", "kernel", "gemm2"]
times = {w: [] for w in ways}
for r in range(args.rounds):
    for w in ways[r % 3:] + ways[:r % 3]:
        time.sleep(0.25)              # the last turn's spinning BLAS thread goes to sleep
        times[w].append(timed(w))
med = {w: float(np.median(times[w])) * 1000 for w in ways}
for w in ways:
    print(f"{w:7s} {med[w]:8.2f} ms for the 10,000 images (median of {args.rounds} rounds)")
print(f"kernel / gemm1 {med['kernel'] / med['gemm1']:.2f}×, kernel / gemm2 "
      f"{med['kernel'] / med['gemm2']:.2f}×")
