import json

import numpy as np
import pytest

import tidu
from tidu import activations, initializers, regularizers
from tidu.autograd import Tensor
from tidu.errors import ShapeError
from tidu.layers import Activation, Dense, Dropout, Flatten, Identity, Reshape


def round_trip(layer):
    """from_config(get_config()) through JSON: an equal, unbuilt layer."""
    config = json.loads(json.dumps(layer.get_config()))
    again = type(layer).from_config(config)
    assert again.get_config() == config
    return again


# --- Dense -------------------------------------------------------------------------------
def test_dense_shapes_and_weights_in_keras_order(rng):
    layer = Dense(5, activation="relu", input_shape=(3,))
    y = layer(rng.standard_normal((4, 3)).astype(np.float32))
    assert y.shape == (4, 5) and y.dtype == np.float32
    assert [w.shape for w in layer.get_weights()] == [(3, 5), (5,)]
    assert [p.name for p in layer.weights] == [f"{layer.name}/kernel", f"{layer.name}/bias"]
    assert layer(rng.standard_normal((2, 7, 3))).shape == (2, 7, 5)  # (N, ..., D)
    assert layer.compute_output_shape((None, 7, 3)) == (None, 7, 5)
    assert layer.count_params() == 20
    kernel, bias = rng.standard_normal((3, 5)), rng.standard_normal(5)
    layer.set_weights([kernel, bias])
    np.testing.assert_allclose(layer.get_weights()[0], kernel.astype(np.float32))
    with pytest.raises(ShapeError, match="expected weight"):
        layer.set_weights([kernel.T, bias])
    no_bias = Dense(2, use_bias=False)
    no_bias(np.ones((1, 3)))
    assert [w.shape for w in no_bias.get_weights()] == [(3, 2)]


def test_dense_config_round_trip():
    layer = Dense(7, activation="tanh", use_bias=False, kernel_initializer=initializers.HeNormal(seed=3),
                  kernel_regularizer=regularizers.l2(1e-4), activity_regularizer="l1",
                  name="fc", input_shape=(4,))
    again = round_trip(layer)
    assert again.units == 7 and again.activation is activations.tanh and not again.use_bias
    assert isinstance(again.kernel_initializer, initializers.HeNormal)
    assert again.kernel_initializer.seed == 3 and again.kernel_regularizer.l2 == 1e-4
    assert again.input_shape_arg == (4,)
    x = np.ones((2, 4), np.float32)
    np.testing.assert_array_equal(layer(x).data, again(x).data)  # seeded init: the same weights


def test_dense_shape_error_names_layer_and_shapes():
    layer = Dense(512, name="dense_1")
    layer(np.zeros((2, 784), np.float32))
    with pytest.raises(ShapeError, match=r"Dense\(512\) 'dense_1' expected input with last "
                                          r"dimension 784, got shape \(128, 783\)"):
        layer(np.zeros((128, 783), np.float32))
    with pytest.raises(ShapeError, match="at least 2 dimensions"):
        Dense(3)(np.zeros(4))


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(units=-3), ValueError, "Dense: expected units to be an int >= 1, got units=-3"),
    (dict(units=2.5), TypeError, "expected units to be an int, got units=2.5"),
    (dict(units=True), TypeError, "expected units to be an int, got units=True"),
    (dict(units=3, activation="relux"), ValueError, "did you mean 'relu'"),
    (dict(units=3, kernel_initializer="glorot_unifrom"), ValueError, "did you mean 'glorot_uniform'"),
    (dict(units=3, kernel_regularizer="l3"), ValueError, "did you mean 'l2'"),
])
def test_dense_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        Dense(**kwargs)
    with pytest.raises(TypeError, match="unexpected keyword"):
        Dense(3, kernal_initializer="zeros")


def test_dense_matches_torch_forward_and_backward(rng, float64):
    torch = pytest.importorskip("torch")
    x, g = rng.standard_normal((6, 4)), rng.standard_normal((6, 3))
    layer = Dense(3, activation="tanh", kernel_initializer=initializers.GlorotUniform(seed=0),
                  bias_initializer=initializers.RandomNormal(seed=1))
    out = layer(Tensor(x, requires_grad=True))
    kernel, bias = layer.get_weights()
    assert kernel.dtype == np.float64
    xt = torch.tensor(x, requires_grad=True)
    Wt, bt = torch.tensor(kernel, requires_grad=True), torch.tensor(bias, requires_grad=True)
    ref = torch.tanh(xt @ Wt + bt)
    np.testing.assert_allclose(out.data, ref.detach().numpy(), rtol=1e-10, atol=1e-12)
    xin = Tensor(x, requires_grad=True)
    layer(xin).backward(g)
    ref.backward(torch.tensor(g))
    np.testing.assert_allclose(xin.grad, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.kernel.grad, Wt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.bias.grad, bt.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_dense_gradcheck(rng, float64):
    layer = Dense(3, activation="sigmoid")
    layer(np.zeros((1, 4)))

    def f(x, kernel, bias):  # the layer's call with its weights swapped for gradcheck's
        layer.kernel, layer.bias = kernel, bias
        return layer(x)

    tidu.gradcheck(f, rng.standard_normal((5, 4)), rng.standard_normal((4, 3)),
                   rng.standard_normal(3))


def test_pre_activation_contract(rng):
    layer = Dense(4, activation="softmax")
    x = rng.standard_normal((3, 2)).astype(np.float32)
    y = layer(x)
    assert layer.activation_name == "softmax" and layer.activation is activations.softmax
    z = layer.pre_activation(Tensor(x))
    np.testing.assert_allclose(activations.softmax(z).data, y.data, rtol=1e-6)
    assert Dense(2).activation_name == "linear"
    assert Dense(2, activation=lambda t: t * 2).activation_name is None
    act = Activation("softmax")
    assert act.activation_name == "softmax" and act.pre_activation(z) is z


def test_activity_regularizer_in_losses(rng):
    layer = Dense(3, activity_regularizer=regularizers.L1(0.5))
    y = layer(rng.standard_normal((2, 4)))
    (penalty,) = layer.losses
    np.testing.assert_allclose(penalty.data, 0.5 * np.abs(y.data).sum(), rtol=1e-6)
    assert Dense(3).losses == []


def test_weight_regularizer_attached_to_parameter():
    layer = Dense(3, kernel_regularizer=regularizers.l2(0.1))
    layer(np.ones((1, 2), np.float32))
    assert isinstance(layer.kernel.regularizer, regularizers.L2) and layer.bias.regularizer is None


# --- Activation, Identity, Flatten, Reshape ------------------------------------------------
def test_activation_layer(rng):
    x = rng.standard_normal((2, 3, 4))
    layer = Activation("relu")
    np.testing.assert_array_equal(layer(x).data, np.maximum(x, 0))
    assert round_trip(layer).activation is activations.relu
    assert layer.compute_output_shape((None, 3, 4)) == (None, 3, 4)
    with pytest.raises(ValueError, match="did you mean 'softmax'"):
        Activation("sofmax")
    assert Identity()(x).data is not None and np.array_equal(Identity()(x).data, x)


def test_flatten(rng):
    x = rng.standard_normal((2, 3, 4, 5))
    layer = Flatten()
    assert layer(x).shape == (2, 60)
    np.testing.assert_array_equal(layer(x).data, x.reshape(2, -1))
    assert layer.compute_output_shape((None, 3, 4, 5)) == (None, 60)
    assert Flatten()(np.zeros(3)).shape == (3, 1)
    round_trip(layer)
    with pytest.raises(ValueError, match="data_format"):
        Flatten(data_format="channels_first")


def test_reshape(rng):
    x = rng.standard_normal((2, 12))
    assert Reshape((3, 4))(x).shape == (2, 3, 4)
    layer = Reshape((-1, 2))
    assert layer(x).shape == (2, 6, 2)
    assert layer.compute_output_shape((None, 12)) == (None, 6, 2)
    assert round_trip(layer).target_shape == (-1, 2)
    with pytest.raises(ShapeError, match=r"Reshape\(5, 5\) 'reshape.*' cannot reshape a sample of "
                                          r"shape \(12,\)"):
        Reshape((5, 5))(x)
    with pytest.raises(ValueError, match="at most one -1"):
        Reshape((-1, -1))
    with pytest.raises(ValueError, match="positive ints"):
        Reshape((0, 3))


# --- Dropout -----------------------------------------------------------------------------
def test_dropout_inverted_and_classic(rng):
    x = np.ones((400, 50))
    layer = Dropout(0.3, seed=1)
    y = layer(x, training=True).data
    kept = y != 0
    assert abs(kept.mean() - 0.7) < 0.01
    np.testing.assert_allclose(y[kept], 1 / 0.7)
    np.testing.assert_array_equal(layer(x, training=False).data, x)
    classic = Dropout(0.3, seed=1, mode="classic")
    y = classic(x, training=True).data
    assert set(np.unique(y)) == {0.0, 1.0}
    np.testing.assert_allclose(classic(x).data, 0.7 * x)  # inference scales by the keep rate


def test_dropout_seed_noise_shape_and_config(rng):
    x = np.ones((8, 5, 6))
    a = Dropout(0.5, seed=3)(x, training=True).data
    b = Dropout(0.5, seed=3)(x, training=True).data
    np.testing.assert_array_equal(a, b)
    y = Dropout(0.5, noise_shape=(None, 1, 6), seed=0)(x, training=True).data
    assert (y == y[:, :1, :]).all()  # one mask shared along the time axis
    layer = Dropout(0.25, noise_shape=(None, 1, 6), seed=4, mode="classic")
    again = round_trip(layer)
    assert (again.rate, again.noise_shape, again.seed, again.mode) == (0.25, (None, 1, 6), 4, "classic")
    with pytest.raises(ShapeError, match="noise_shape"):
        Dropout(0.5, noise_shape=(None, 1))(x, training=True)


@pytest.mark.parametrize("kwargs, match", [
    (dict(rate=1.0), "0 <= rate < 1"), (dict(rate=-0.1), "0 <= rate < 1"),
    (dict(rate=0.5, mode="gaussian"), "mode"), (dict(rate=0.5, noise_shape=(0, 2)), "noise_shape"),
])
def test_dropout_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Dropout(**kwargs)
