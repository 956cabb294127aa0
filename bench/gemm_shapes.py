"""The GEMMs of a convolution's weight gradient in both orientations, alternated in one process:
dL/dK = Xᵀ G (X the im2col matrix, G = dL/dy) against (Gᵀ X)ᵀ, the same product, which
OpenBLAS packs and splits across threads differently.

    python bench/gemm_shapes.py [--rounds 80] [--threads 2]

Shapes: the second convolutions of the LeNet CNN (batch 64: X 4096 × 500, G 4096 × 50) and of
keras.io's MNIST convnet (batch 128: X 15488 × 288, G 15488 × 64), and the first ones, whose X
is stored transposed (one input channel: tidu.functional.conv builds Xᵀ, a bias row included).
Prints the minimum and median milliseconds of each; tidu.functional.conv uses the faster
orientation per case.

Measured on the AMD EPYC host of bench/RESULTS.md (AVX-512, OpenBLAS 0.3.31 SkylakeX, 2
threads, 80 rounds, medians of two runs): LeNet conv 2 1.85 -> 1.53 and 1.85 -> 1.52 ms,
convnet conv 2 4.15 -> 3.81 and 4.09 -> 3.73 ms with (Gᵀ X)ᵀ; the first convolutions the other
way: 0.81-0.83 against 1.14-1.18 ms (LeNet) and 1.48-1.57 against 1.66-1.71 ms (convnet) for Xᵀ G.
"""
import argparse
import os
import sys
import time

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--rounds", type=int, default=80)
ap.add_argument("--threads", type=int, default=2)
args = ap.parse_args()
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import child_env  # noqa: E402  (the benchmark children's environment)

os.environ.update(child_env(args.threads))
for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
    os.environ.pop(name, None)
import numpy as np  # noqa: E402

rng = np.random.default_rng(0)


def rand(*shape):
    return rng.random(shape, dtype=np.float32)


X2, G2 = rand(64 * 8 * 8, 500), rand(64 * 8 * 8, 50)          # LeNet conv 2
X4, G4 = rand(128 * 11 * 11, 288), rand(128 * 11 * 11, 64)    # convnet conv 2
X1T, G1 = rand(26, 64 * 24 * 24), rand(64 * 24 * 24, 20)       # LeNet conv 1 (Xᵀ with a bias row)
X3T, G3 = rand(10, 128 * 26 * 26), rand(128 * 26 * 26, 32)     # convnet conv 1
cases = {
    "LeNet conv 2, X^T G": lambda: X2.T @ G2, "LeNet conv 2, (G^T X)^T": lambda: (G2.T @ X2).T,
    "convnet conv 2, X^T G": lambda: X4.T @ G4, "convnet conv 2, (G^T X)^T": lambda: (G4.T @ X4).T,
    "LeNet conv 1, X^T G": lambda: X1T @ G1, "LeNet conv 1, (G^T X)^T": lambda: (G1.T @ X1T.T).T,
    "convnet conv 1, X^T G": lambda: X3T @ G3, "convnet conv 1, (G^T X)^T": lambda: (G3.T @ X3T.T).T,
}
times = {k: [] for k in cases}
for _ in range(args.rounds):
    for name, f in cases.items():
        t = time.perf_counter()
        f()
        times[name].append(time.perf_counter() - t)
for name, ts in times.items():
    print(f"{name:28s} min {1e3 * min(ts):7.3f} ms   median {1e3 * float(np.median(ts)):7.3f} ms")
