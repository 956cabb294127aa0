import numpy as np
import pytest

from tidu.utils import to_categorical


@pytest.fixture
def rng():
    """A seeded generator: every test draws its own reproducible numbers."""
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def mnist_subset():
    """The shipped MNIST subset, flattened to (N, 784) float32 in [0, 1], one-hot labels."""
    from tidu.datasets import mnist
    (x, y), (xt, yt) = mnist.load_subset()
    x = x.reshape(len(x), 784).astype("float32") / 255
    xt = xt.reshape(len(xt), 784).astype("float32") / 255
    return (x, to_categorical(y, 10), y), (xt, to_categorical(yt, 10), yt)
