"""Every optimizer trains a real model: first-order ones the MNIST MLP through compile/fit,
second-order ones a small full-batch problem through step(closure)."""
import numpy as np
import pytest

import tidu.functional as F
from tidu import Tensor, layers, models, optimizers
from tidu.datasets import mnist
from tidu.utils import to_categorical

FIRST_ORDER = {  # name: learning rate that suits a 784-64-10 MLP on 2,000 images
    "gd": 0.5, "sgd": 0.1, "momentum": 0.05, "nesterov": 0.05, "adagrad": 0.05, "adadelta": 1.0,
    "rmsprop": 0.001, "adam": 0.001, "amsgrad": 0.001, "adamax": 0.002, "nadam": 0.001,
    "swats": 0.001, "rprop": 0.001, "adaptive_gain": 0.05,
}


@pytest.fixture(scope="module")
def subset():
    (x, y), (xt, yt) = mnist.load_subset()
    prep = lambda a: a.reshape(len(a), 784).astype("float32") / 255  # noqa: E731
    return prep(x), to_categorical(y, 10), prep(xt), to_categorical(yt, 10)


@pytest.mark.parametrize("name", sorted(FIRST_ORDER))
def test_first_order_optimizer_trains_the_mnist_mlp(name, subset):
    x, y, xt, yt = subset
    model = models.Sequential([layers.Dense(64, activation="relu", input_shape=(784,)),
                               layers.Dense(10, activation="softmax")])
    opt = optimizers.get(name)
    opt.learning_rate = FIRST_ORDER[name]
    model.compile(optimizer=opt, loss="categorical_crossentropy", metrics=["accuracy"])
    # full batch for GD and Rprop (their rules assume the whole gradient), mini-batches otherwise
    batch = len(x) if name in ("gd", "rprop") else 32
    epochs = 30 if batch == len(x) else 3
    hist = model.fit(x, y, batch_size=batch, epochs=epochs, verbose=0, seed=0)
    _, acc = model.evaluate(xt, yt, verbose=0)
    assert hist.history["loss"][-1] < 0.6 * hist.history["loss"][0], name
    assert acc > 0.75, (name, acc)


def _small_problem():
    """Softmax regression on 7x7-pooled MNIST digits 0-2: 49*3 + 3 = 150 parameters."""
    (x, y), _ = mnist.load_subset()
    keep = y < 3
    x = x[keep][:300].astype(np.float64) / 255
    y = y[keep][:300]
    x = x.reshape(-1, 7, 4, 7, 4).mean(axis=(2, 4)).reshape(-1, 49)
    return x, to_categorical(y, 3).astype(np.float64)


@pytest.mark.parametrize("name", ["newton", "bfgs", "lbfgs", "coordinate_descent"])
def test_second_order_optimizer_fits_a_full_batch_problem(name):
    x, y = _small_problem()
    W = layers.Dense(3, input_shape=(49,), kernel_initializer="zeros", dtype="float64")
    W(Tensor(x[:1]))
    params = W.trainable_weights
    # coordinate descent probes every coordinate with a line search: a loose one keeps it cheap
    opt = optimizers.CoordinateDescent(tol=1e-4) if name == "coordinate_descent" else optimizers.get(name)

    def closure():
        for p in params:
            p.grad = None
        loss = F.softmax_cross_entropy(F.dense(Tensor(x), *params), y) \
            + 1e-3 * sum((p * p).sum() for p in params)
        loss.backward()
        return loss

    start = float(closure().data)
    steps = {"newton": 5, "bfgs": 15, "lbfgs": 5, "coordinate_descent": 3}[name]
    for _ in range(steps):
        opt.step(closure, params)
    end = float(closure().data)
    acc = (F.dense(Tensor(x), *params).data.argmax(1) == y.argmax(1)).mean()
    assert start == pytest.approx(np.log(3))
    assert end < 0.5 * start, (name, start, end)
    assert acc > 0.9, (name, acc)
