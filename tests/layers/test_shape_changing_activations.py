"""Activations that change the shape (maxout): by name on a layer, as an Activation layer of any
callable, in Sequential and in the functional API. The next layer builds with the activation's
output size, not the units before it."""
import numpy as np
import pytest

import tidu.functional as F
from tidu import activations
from tidu.autograd import Tensor
from tidu.layers import Activation, Conv2D, Dense, Input
from tidu.models import Model, Sequential


def _data(rng, n=32, d=5, k=3):
    x = rng.standard_normal((n, d)).astype(np.float32)
    y = np.eye(k, dtype=np.float32)[rng.integers(0, k, n)]
    return x, y


def _fits(model, x, y):
    model.compile("sgd", "categorical_crossentropy")
    history = model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert model.predict(x, verbose=0).shape == (len(x), 3)


def test_dense_with_maxout_in_sequential(rng):
    model = Sequential([Dense(8, activation="maxout", input_shape=(5,)), Dense(3, activation="softmax")])
    _fits(model, *_data(rng))
    assert model.layers[1].kernel.shape == (4, 3)              # 8 units, pieces 2 -> 4 inputs
    assert model.layers[0].compute_output_shape((None, 5)) == (None, 4)


def test_activation_layer_of_a_shape_changing_callable_in_sequential(rng):
    model = Sequential([Dense(8, input_shape=(5,)), Activation(lambda t: F.maxout(t, 2)),
                        Dense(3, activation="softmax")])
    _fits(model, *_data(rng))
    assert model.layers[2].kernel.shape == (4, 3)


@pytest.mark.parametrize("activation", ["maxout", "Maxout(4)"])
def test_dense_with_maxout_in_the_functional_api(rng, activation):
    if activation == "Maxout(4)":
        activation = activations.Maxout(4)
    inputs = Input((5,))
    h = Dense(8, activation=activation)(inputs)
    assert h.shape == (None, 8 // (2 if activation == "maxout" else 4))
    outputs = Dense(3, activation="softmax")(Activation(lambda t: F.maxout(t, 1))(h))
    _fits(Model(inputs, outputs), *_data(rng))


def test_conv2d_with_maxout_halves_the_channels():
    layer = Conv2D(6, 3, activation="maxout")
    assert layer.compute_output_shape((None, 8, 8, 2)) == (None, 6, 6, 3)
    assert layer(np.zeros((1, 8, 8, 2), np.float32)).shape == (1, 6, 6, 3)


def test_maxout_activation_values_and_registry():
    x = np.array([[1.0, -2.0, 5.0, 3.0, 0.0, -1.0]])
    np.testing.assert_array_equal(activations.get("maxout")(Tensor(x)).data, [[1.0, 5.0, 0.0]])
    three = activations.get({"class_name": "Maxout", "config": {"pieces": 3}})
    np.testing.assert_array_equal(three(Tensor(x)).data, [[5.0, 3.0]])
    assert activations.serialize(activations.get("maxout")) == "maxout"
    assert activations.serialize(three) == {"class_name": "Maxout", "config": {"pieces": 3}}
    assert activations.deserialize(activations.serialize(three)).pieces == 3
    with pytest.raises(ValueError, match="pieces to be an int >= 1"):
        activations.Maxout(0)


def test_output_shape_of_each_kind_of_activation():
    assert activations.output_shape(activations.get("relu"), (None, 7, 8)) == (None, 7, 8)
    assert activations.output_shape(activations.get("maxout"), (None, 8)) == (None, 4)
    assert activations.output_shape(activations.Maxout(4), (None, 8)) == (None, 2)
    assert activations.output_shape(lambda t: t[:, :3], (None, 8)) == (None, 3)   # probed
