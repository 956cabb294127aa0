"""The notes' best MNIST results: a CNN with batch normalization, dropout and augmented
training data (shifts, small rotations, elastic distortion) aiming at 99.6% test accuracy as
one network (seed 0: 99.60%), and an ensemble of networks (different seeds, averaged
probabilities) at 99.7%: five of the deeper network of --arch deep reach 99.70% (five of the
network below: 99.66%; docs/results.md).

    python examples/mnist_best.py                      # one network, 60,000 training images
    python examples/mnist_best.py --ensemble 5         # five networks (seeds 0-4), averaged
    python examples/mnist_best.py --validate           # model selection: train on the first
                                                       # 50,000, score the last 10,000; no test
    python examples/mnist_best.py --ensemble 5 --shifts  # also average over 9 one-pixel shifts
    python examples/mnist_best.py --subset --epochs 1  # quick check on the shipped subset
    python examples/mnist_best.py --arch deep --validate   # the deeper network: it won on validation
    python examples/mnist_best.py --arch deep --ensemble 5 --save DIR   # its ensemble: 99.70%

Every choice below (architecture, augmentation, epochs, schedule) is made with --validate, on
the last 10,000 training images; the test set is read once, at the end of a run without it.
The network (valid convolutions, no biases before BatchNormalization, whose moving averages
use momentum 0.9):

    Conv 3x3x32-BN-ReLU, Conv 3x3x32-BN-ReLU, MaxPool 2     28 -> 26 -> 24 -> 12
    Conv 3x3x64-BN-ReLU, Conv 3x3x64-BN-ReLU, MaxPool 2     12 -> 10 -> 8 -> 4
    Dense 256-BN-ReLU, Dropout 0.4, Dense 10 softmax

trained by Adam (batch 128) with the learning rate on a cosine from 2e-3 to 0 over the run.
Results, wall times and the command of each figure: docs/results.md. With --out DIR the run
writes its History curves (DIR/mnist_best_<member>.png) and a JSON summary (DIR/mnist_best.json).
"""
import argparse
import json
import os
import time

import numpy as np

from tidu import callbacks, layers, models, optimizers
from tidu.data import ImageAugmenter
from tidu.datasets import mnist
from tidu.optimizers.schedules import CosineDecay
from tidu.utils import set_random_seed, to_categorical

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--epochs", type=int, default=15)
parser.add_argument("--batch-size", type=int, default=128)
parser.add_argument("--lr", type=float, default=2e-3, help="peak learning rate of the cosine")
parser.add_argument("--ensemble", type=int, default=1, help="networks to train and average")
parser.add_argument("--arch", choices=["base", "deep"], default="base",
                    help="base: the network above (the single network's 99.60%% and the five-network "
                         "ensemble's 99.66%% in docs/results.md); deep: seven convolutions, 2x2 "
                         "pooling replaced by 5x5 convolutions of stride 2, chosen on validation "
                         "for the ensemble (seeds 0-2: 99.60%% mean against base's 99.54%%; on "
                         "test seed 0 scores 99.65%% and five of it 99.70%%)")
parser.add_argument("--seed", type=int, default=0, help="seed of the first network; member i gets seed + i")
parser.add_argument("--validate", action="store_true",
                    help="train on the first 50,000 training images, score the last 10,000 (no test)")
parser.add_argument("--shifts", action="store_true",
                    help="also score each network and the ensemble on the average of their predictions "
                         "over the nine one-pixel shifts of every image (test-time augmentation)")
parser.add_argument("--subset", action="store_true", help="the shipped 2,000-image subset (quick check)")
parser.add_argument("--out", default=None, help="folder for the curves and the JSON summary")
parser.add_argument("--save", default=None,
                    help="folder for each trained network and its training checkpoint: a rerun with "
                         "the same settings loads the networks already trained and resumes the one "
                         "that was interrupted (an ensemble can be built over several sessions)")
args = parser.parse_args()

(x_train, y_train), (x_test, y_test) = mnist.load_subset() if args.subset else mnist.load_data()
x_train = x_train.reshape((-1, 28, 28, 1)).astype("float32") / 255
x_test = x_test.reshape((-1, 28, 28, 1)).astype("float32") / 255
y_train, y_test = to_categorical(y_train, 10), to_categorical(y_test, 10)
if args.validate:  # the last sixth of the training images (10,000 of 60,000) plays the test set
    cut = len(x_train) * 5 // 6
    (x_train, y_train), (x_test, y_test) = (x_train[:cut], y_train[:cut]), (x_train[cut:], y_train[cut:])
scored_on = "validation (last 10,000 training images)" if args.validate else "test"

augment = ImageAugmenter(width_shift_range=2, height_shift_range=2, rotation_range=10,
                         elastic_alpha=20, elastic_sigma=4)


def conv_bn_relu(filters):
    return [layers.Conv2D(filters, 3, use_bias=False), layers.BatchNormalization(momentum=0.9),
            layers.ReLU()]


def deep_network():
    """--arch deep: Conv 3x3x32 ×2, Conv 5x5x32 stride 2 'same' (28 -> 26 -> 24 -> 12), Dropout
    0.4, the same with 64 filters (12 -> 10 -> 8 -> 4), Conv 4x4x128 (4 -> 1), Dropout 0.4, Dense
    10: each convolution followed by BatchNormalization and ReLU, no pooling layer."""
    def block(filters):
        return [*conv_bn_relu(filters), *conv_bn_relu(filters),
                layers.Conv2D(filters, 5, strides=2, padding="same", use_bias=False),
                layers.BatchNormalization(momentum=0.9), layers.ReLU(), layers.Dropout(0.4)]
    return models.Sequential([
        layers.Input((28, 28, 1)), *block(32), *block(64),
        layers.Conv2D(128, 4, use_bias=False), layers.BatchNormalization(momentum=0.9), layers.ReLU(),
        layers.Flatten(), layers.Dropout(0.4),
        layers.Dense(10, activation="softmax"),
    ])


def network():
    if args.arch == "deep":
        return deep_network()
    return models.Sequential([
        layers.Input((28, 28, 1)),
        *conv_bn_relu(32), *conv_bn_relu(32), layers.MaxPooling2D(2),
        *conv_bn_relu(64), *conv_bn_relu(64), layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dense(256, use_bias=False), layers.BatchNormalization(momentum=0.9), layers.ReLU(),
        layers.Dropout(0.4),
        layers.Dense(10, activation="softmax"),
    ])


def shifted(x, dy, dx):
    """`x` (N, H, W, C) moved dy pixels down and dx right, the pixels moved in set to 0."""
    out = np.zeros_like(x)
    H, W = x.shape[1:3]
    out[:, max(dy, 0):H + min(dy, 0), max(dx, 0):W + min(dx, 0)] = \
        x[:, max(-dy, 0):H + min(-dy, 0), max(-dx, 0):W + min(-dx, 0)]
    return out


def shift_averaged(model, x):
    """The model's class probabilities averaged over the nine shifts of x by -1, 0 and 1 pixel."""
    views = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    return sum(model.predict(shifted(x, dy, dx), batch_size=1000, verbose=0) for dy, dx in views) / 9


def saved(seed, suffix):
    """DIR/mnist_best_<settings>_seed<S>.<suffix>: a file only a run with the same settings reuses."""
    tag = (f"e{args.epochs}_b{args.batch_size}_lr{args.lr:g}" + ("_deep" if args.arch == "deep" else "")
           + ("_val" if args.validate else "")
           + ("_subset" if args.subset else ""))
    return os.path.join(args.save, f"mnist_best_{tag}_seed{seed}.{suffix}")


seeds = [args.seed + i for i in range(args.ensemble)]
done = [s for s in seeds if args.save and os.path.exists(saved(s, "tidu"))]
steps = -(-len(x_train) // args.batch_size) * args.epochs
progress = callbacks.RunProgress(runs=max(len(seeds) - len(done), 1), label="network")
labels = y_test.argmax(1)
members, probs, summary = [], [], {"args": vars(args), "scored_on": scored_on, "members": []}
start = time.perf_counter()
for i, seed in enumerate(seeds):
    t0 = time.perf_counter()
    if seed in done:
        model = models.load_model(saved(seed, "tidu"))
        print(f"network {i + 1}/{args.ensemble} (seed {seed}): loaded {saved(seed, 'tidu')}")
    else:
        set_random_seed(seed)
        model = network()
        if i == 0:
            model.summary()
        model.compile(optimizer=optimizers.Adam(CosineDecay(args.lr, steps)),
                      loss="categorical_crossentropy", metrics=["accuracy"])
        cbs, resume = [progress], None
        if args.save:
            os.makedirs(args.save, exist_ok=True)
            cbs.append(callbacks.ModelCheckpoint(saved(seed, "ckpt"), save_freq="epoch"))
            resume = saved(seed, "ckpt") if os.path.exists(saved(seed, "ckpt")) else None
        history = model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs,
                            augment=augment, seed=seed, verbose=0, callbacks=cbs, resume_from=resume,
                            validation_data=(x_test, y_test) if args.validate else None)
        if args.save:
            model.save(saved(seed, "tidu"))
        if args.out:
            os.makedirs(args.out, exist_ok=True)
            history.plot(os.path.join(args.out, f"mnist_best_{i}.png"),
                         title=f"mnist_best network {i + 1} (seed {seed})")
    _, acc = model.evaluate(x_test, y_test, batch_size=1000, verbose=0)
    row = {"seed": seed, "accuracy": float(acc), "loaded": seed in done}
    shifts = ""
    if args.shifts:
        probs.append(shift_averaged(model, x_test))
        row["accuracy_shifts"] = float(np.mean(probs[-1].argmax(1) == labels))
        shifts = f" (averaged over nine shifts: {row['accuracy_shifts']:.4f})"
    print(f"network {i + 1}/{args.ensemble} (seed {seed}): {scored_on} accuracy {acc:.4f}{shifts}", flush=True)
    members.append(model)
    summary["members"].append({**row, "seconds": round(time.perf_counter() - t0, 1)})

if args.ensemble > 1:
    ensemble = models.Ensemble(members)
    ensemble.compile(loss="categorical_crossentropy", metrics=["accuracy"])
    _, acc = ensemble.evaluate(x_test, y_test, batch_size=1000, verbose=0)
    summary["ensemble_accuracy"] = float(acc)
    shifts = ""
    if args.shifts:
        summary["ensemble_accuracy_shifts"] = float(np.mean(sum(probs).argmax(1) == labels))
        shifts = f" (averaged over nine shifts: {summary['ensemble_accuracy_shifts']:.4f})"
    print(f"ensemble of {args.ensemble}: {scored_on} accuracy {acc:.4f}{shifts}")
summary["seconds"] = round(time.perf_counter() - start, 1)
print(f"{'validation' if args.validate else 'test'}_acc: {acc:.4f}  ({summary['seconds']:.0f} s in all)")
if args.out:
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "mnist_best.json"), "w") as f:
        json.dump(summary, f, indent=1)
