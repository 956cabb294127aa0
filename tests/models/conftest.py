import numpy as np
import pytest

from tidu.utils import to_categorical


@pytest.fixture(scope="session")
def mnist_subset():
    """The shipped MNIST subset, flattened to (N, 784) float32 in [0, 1], one-hot labels."""
    from tidu.datasets import mnist
    (x, y), (xt, yt) = mnist.load_subset()
    x = x.reshape(len(x), 784).astype("float32") / 255
    xt = xt.reshape(len(xt), 784).astype("float32") / 255
    return (x, to_categorical(y, 10), y), (xt, to_categorical(yt, 10), yt)


@pytest.fixture
def blobs(rng):
    """Three well separated Gaussian blobs in 6 dimensions: x (300, 6) float32, labels (300,)."""
    centres = rng.standard_normal((3, 6)) * 3
    labels = rng.integers(0, 3, 300)
    x = (centres[labels] + rng.standard_normal((300, 6))).astype(np.float32)
    return x, labels
