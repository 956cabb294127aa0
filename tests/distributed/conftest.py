import numpy as np
import pytest


def _mlp(n_in=8, hidden=16, n_out=3, seed=0):
    """A small compiled MLP (real tidu.models.Sequential and tidu.layers.Dense)."""
    from tidu import backend
    from tidu.layers import Dense
    from tidu.models import Sequential

    backend.seed(seed)  # the initializers draw from the package-wide generator
    model = Sequential([Dense(hidden, activation="relu", input_shape=(n_in,)),
                        Dense(n_out, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    return model


@pytest.fixture
def make_mlp():
    return _mlp


def _blobs(rng, n):
    centers = rng.standard_normal((3, 8)) * 2.0
    y = rng.integers(0, 3, n)
    x = (centers[y] + rng.standard_normal((n, 8))).astype(np.float32)
    return x, y


@pytest.fixture
def blobs(rng):
    """A 3-class problem of 96 samples, 8 features (float32), learnable by the MLP."""
    return _blobs(rng, 96)


@pytest.fixture
def data(rng):
    """The same problem with 600 samples: the Ray tests' epochs (75 updates at batch 8)."""
    return _blobs(rng, 600)


def flat(model):
    return np.concatenate([np.asarray(p.data).ravel() for p in model.trainable_weights])


@pytest.fixture
def flat_weights():
    return flat
