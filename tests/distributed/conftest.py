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


@pytest.fixture
def blobs(rng):
    """A 3-class problem of 96 samples, 8 features (float32), learnable by the MLP."""
    centers = rng.standard_normal((3, 8)) * 2.0
    y = rng.integers(0, 3, 96)
    x = (centers[y] + rng.standard_normal((96, 8))).astype(np.float32)
    return x, y


def flat(model):
    return np.concatenate([np.asarray(p.data).ravel() for p in model.trainable_weights])


@pytest.fixture
def flat_weights():
    return flat
