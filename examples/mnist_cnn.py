"""A small convnet on MNIST: Conv-Pool-Conv-Pool-Dense-Dropout-Dense (5x5 kernels as in LeNet,
channels-last), Adam, 3 epochs. The figure and its wall time are in docs/results.md.

    python examples/mnist_cnn.py [--epochs 3] [--subset] [--out curves.png]
"""
import argparse

from tidu import layers, models
from tidu.datasets import mnist
from tidu.utils import set_random_seed, to_categorical

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--epochs", type=int, default=3)
parser.add_argument("--batch-size", type=int, default=64)
parser.add_argument("--subset", action="store_true", help="the shipped 2,000-image subset (quick check)")
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--out", default=None, help="save the training curves to this PNG")
args = parser.parse_args()

(x_train, y_train), (x_test, y_test) = mnist.load_subset() if args.subset else mnist.load_data()
x_train = x_train.reshape((-1, 28, 28, 1)).astype("float32") / 255   # (N, H, W, C)
x_test = x_test.reshape((-1, 28, 28, 1)).astype("float32") / 255
y_train, y_test = to_categorical(y_train, 10), to_categorical(y_test, 10)

set_random_seed(args.seed)   # the initial weights too, not only the shuffling: a rerun is the same run
model = models.Sequential([
    layers.Conv2D(32, kernel_size=5, activation="relu", input_shape=(28, 28, 1)),
    layers.MaxPooling2D(pool_size=2),
    layers.Conv2D(64, kernel_size=5, activation="relu"),
    layers.MaxPooling2D(pool_size=2),
    layers.Flatten(),
    layers.Dense(128, activation="relu"),
    layers.Dropout(0.5),
    layers.Dense(10, activation="softmax"),
])
model.summary()
model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
history = model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs, seed=args.seed)
test_loss, test_acc = model.evaluate(x_test, y_test, batch_size=500)
print("test_acc:", test_acc)
if args.out:
    history.plot(args.out, title=f"mnist_cnn, seed {args.seed}")
