"""Conv2D's forward (im2col copy and GEMM) in chunks of COLS_CHUNK_BYTES against one piece,
alternated in one process, through tidu's own code (tidu.functional.conv._im2col_gemm).

    python bench/conv_chunks.py [--rounds 30] [--threads 2] [--mb 0.5,1,2]

Shapes: the second convolutions of keras.io's MNIST convnet (batch 128: (128, 13, 13, 32) by
3×3×32×64) and of the LeNet CNN (batch 64: (64, 12, 12, 20) by 5×5×20×50). Each round times
every variant once, in rotating order; prints the minimum and median milliseconds of each.
"""
import argparse
import os
import sys
import time

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--rounds", type=int, default=30)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--mb", default="0.5,1,2", help="chunk sizes in MB, besides one piece")
args = ap.parse_args()
try:
    sizes = [int(float(mb) * (1 << 20)) for mb in args.mb.split(",")]
except ValueError:
    sizes = []
if args.rounds < 1 or not sizes or min(sizes) <= 0:
    ap.error(f"--rounds must be positive and --mb positive numbers, got {args.rounds}, {args.mb!r}")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from run import child_env  # noqa: E402  (the benchmark children's environment)

os.environ.update(child_env(args.threads))
for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
    os.environ.pop(name, None)
import numpy as np  # noqa: E402

import tidu.functional.conv as conv  # noqa: E402

rng = np.random.default_rng(0)
shapes = {"convnet conv 2": ((128, 13, 13, 32), (3, 3, 32, 64)),
          "LeNet conv 2": ((64, 12, 12, 20), (5, 5, 20, 50))}
variants = [("one piece", sys.maxsize)] + [(f"{s / (1 << 20):g} MB", s) for s in sizes]
for shape, (xs, ks) in shapes.items():
    x, k = rng.random(xs, dtype=np.float32), rng.random(ks, dtype=np.float32)
    b = rng.random(ks[3], dtype=np.float32)
    out_hw = (xs[1] - ks[0] + 1, xs[2] - ks[1] + 1)

    def forward():
        return conv._im2col_gemm(x, k, b, (1, 1), (1, 1), (0, 0, 0, 0), out_hw, (1, 1))
    times = {name: [] for name, _ in variants}
    for r in range(args.rounds + 2):                  # two rounds of warm-up
        turn = variants[r % len(variants):] + variants[:r % len(variants)]
        for name, size in turn:
            conv.COLS_CHUNK_BYTES = size
            t = time.perf_counter()
            forward()
            if r >= 2:
                times[name].append(time.perf_counter() - t)
    for name, ts in times.items():
        print(f"{shape}, {name:10s} min {1e3 * min(ts):7.3f} ms   median {1e3 * float(np.median(ts)):7.3f} ms")
