"""Sequential MNIST with an LSTM: each image is 28 time steps of 28 features (one row per
step); LSTM(128) then softmax, trained by Adam with the learning rate on a cosine from 2e-3 to
0 over the run. The figure and its wall time are in docs/results.md.

    python examples/mnist_lstm.py [--epochs 12] [--subset] [--validate]

--validate trains on the first 50,000 training images and scores the last 10,000 (the
epochs and the schedule were chosen that way); without it the test set is read once, at the end.
"""
import argparse

from tidu import layers, models, optimizers
from tidu.datasets import mnist
from tidu.optimizers.schedules import CosineDecay
from tidu.utils import set_random_seed, to_categorical

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--epochs", type=int, default=12)
parser.add_argument("--batch-size", type=int, default=128)
parser.add_argument("--lr", type=float, default=2e-3, help="peak learning rate of the cosine")
parser.add_argument("--subset", action="store_true", help="the shipped 2,000-image subset (quick check)")
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--validate", action="store_true",
                    help="train on the first 50,000 training images, score the last 10,000 (no test)")
parser.add_argument("--out", default=None, help="save the training (and validation) curves to this PNG")
args = parser.parse_args()

(x_train, y_train), (x_test, y_test) = mnist.load_subset() if args.subset else mnist.load_data()
x_train = x_train.astype("float32") / 255   # (N, 28 steps, 28 features)
x_test = x_test.astype("float32") / 255
y_train, y_test = to_categorical(y_train, 10), to_categorical(y_test, 10)
if args.validate:  # the last sixth of the training images (10,000 of 60,000) plays the test set
    cut = len(x_train) * 5 // 6
    (x_train, y_train), (x_test, y_test) = (x_train[:cut], y_train[:cut]), (x_train[cut:], y_train[cut:])

set_random_seed(args.seed)   # the initial weights too, not only the shuffling: a rerun is the same run
model = models.Sequential([
    layers.LSTM(128, input_shape=(28, 28)),
    layers.Dense(10, activation="softmax"),
])
model.summary()
steps = -(-len(x_train) // args.batch_size) * args.epochs
model.compile(optimizer=optimizers.Adam(CosineDecay(args.lr, steps)), loss="categorical_crossentropy", metrics=["accuracy"])
history = model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs, seed=args.seed,
                    validation_data=(x_test, y_test) if args.validate else None)
test_loss, test_acc = model.evaluate(x_test, y_test, batch_size=500)
print("validation_acc:" if args.validate else "test_acc:", test_acc)
if args.out:
    history.plot(args.out, title=f"mnist_lstm, seed {args.seed}" + (" (validation run)" if args.validate else ""))
