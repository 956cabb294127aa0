"""The spread of the notes' Keras MNIST example over unseeded runs, in tidu and in the real Keras 3.

    python bench/mlp_spread.py --runs 10            # tidu: ten runs of the notes' script
    python bench/mlp_spread.py --runs 10 --keras     # the same in Keras 3 (KERAS_BACKEND=torch)

The notes report 97.8% for their script (784-512-10, RMSprop, batch 128, 5 epochs), one run
with no seed. Run to run, the initial weights and the order of the batches move the test
accuracy by a few tenths of a point, in Keras as in tidu, so one run says little: this prints
each run's test accuracy and their mean, lowest, highest and how many fell below 97.8%. The
model and training are the script of examples/keras_mnist.py, each run a fresh network; the
data is the same MNIST (tidu.datasets.mnist, which Keras' own loader would download). Keras
runs on its torch backend with one torch thread (accuracy, not speed, is measured here).
Results: docs/results.md.
"""
import argparse
import os
import time

import numpy as np

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--runs", type=int, default=10)
parser.add_argument("--keras", action="store_true", help="run the real Keras 3 instead of tidu")
parser.add_argument("--subset", action="store_true",
                    help="the shipped 2,000-image subset, one epoch (does it run? tests/test_bench.py)")
args = parser.parse_args()
if args.runs < 1:
    parser.error(f"--runs: expected at least 1, got {args.runs}")

if args.keras:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import torch

    torch.set_num_threads(1)
    import keras
    from keras import layers, models
    from keras.utils import to_categorical
    name = f"Keras {keras.__version__} ({keras.backend.backend()} backend)"
else:
    from tidu import layers, models
    from tidu.utils import to_categorical
    name = "tidu"
from tidu.datasets import mnist  # noqa: E402  (the same data for both)

(train_images, train_labels), (test_images, test_labels) = \
    mnist.load_subset() if args.subset else mnist.load_data()
train_images = train_images.reshape((-1, 28 * 28)).astype("float32") / 255
test_images = test_images.reshape((-1, 28 * 28)).astype("float32") / 255
train_labels, test_labels = to_categorical(train_labels), to_categorical(test_labels)

accs = []
for run in range(args.runs):
    if args.keras:
        keras.backend.clear_session()
    network = models.Sequential([layers.Input(shape=(28 * 28,)), layers.Dense(512, activation="relu"),
                                 layers.Dense(10, activation="softmax")])
    network.compile(optimizer="rmsprop", loss="categorical_crossentropy", metrics=["accuracy"])
    t = time.perf_counter()
    network.fit(train_images, train_labels, epochs=1 if args.subset else 5, batch_size=128, verbose=0)
    _, acc = network.evaluate(test_images, test_labels, verbose=0)
    accs.append(float(acc))
    print(f"{name} run {run + 1}/{args.runs}: test accuracy {acc:.4f} ({time.perf_counter() - t:.0f} s)",
          flush=True)
a = np.array(accs)
print(f"{name}: mean {a.mean():.4f}, lowest {a.min():.4f}, highest {a.max():.4f}, "
      f"below 0.978: {(a < 0.978).sum()} of {len(a)}")
