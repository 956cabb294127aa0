"""`import tidu as keras`: the top-level names Keras 3 code uses are there and behave as Keras's."""
import os
import types

import numpy as np
import pytest

import tidu

MODULES = ["layers", "models", "optimizers", "losses", "metrics", "callbacks", "activations",
           "initializers", "regularizers", "datasets", "utils", "saving"]
CLASSES = ["Sequential", "Model"]


@pytest.mark.parametrize("name", MODULES)
def test_the_keras_modules_are_there(name):
    assert isinstance(getattr(tidu, name), types.ModuleType)


def test_the_names_are_those_of_the_real_keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras", reason="keras 3 is the reference for the top-level names")
    for name in MODULES + CLASSES + ["Input"]:
        assert hasattr(keras, name), name       # the list above is Keras's own
        assert hasattr(tidu, name), name
        assert name in tidu.__all__


def test_sequential_model_and_input_work_as_in_keras():
    import tidu as keras
    from tidu import layers

    inputs = keras.Input(shape=(4,))
    assert inputs.shape == (None, 4)
    outputs = layers.Dense(3, activation="softmax")(layers.Dense(8, activation="relu")(inputs))
    functional = keras.Model(inputs=inputs, outputs=outputs)
    sequential = keras.Sequential([keras.Input(shape=(4,)), layers.Dense(8, activation="relu"),
                                   layers.Dense(3, activation="softmax")])
    sequential.set_weights(functional.get_weights())
    x = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    np.testing.assert_array_equal(functional.predict(x, verbose=0), sequential.predict(x, verbose=0))
    assert isinstance(sequential, keras.Model)
