import json

import numpy as np
import pytest

import tidu
from tidu import initializers
from tidu.autograd import Tensor
from tidu.errors import ShapeError
from tidu.layers import (BatchNormalization, Dense, Dropout, LayerNormalization,
                         compute_population_statistics)


def round_trip(layer):
    config = json.loads(json.dumps(layer.get_config()))
    again = type(layer).from_config(config)
    assert again.get_config() == config
    return again


def test_weights_in_keras_order_and_trainability(rng):
    layer = BatchNormalization()
    layer(rng.standard_normal((4, 3, 3, 5)))
    names = [p.name.split("/")[1] for p in layer.weights]
    assert names == ["gamma", "beta", "moving_mean", "moving_variance"]
    assert [w.shape for w in layer.get_weights()] == [(5,)] * 4
    assert [p.trainable for p in layer.weights] == [True, True, False, False]
    assert len(layer.trainable_weights) == 2 and len(layer.non_trainable_weights) == 2
    np.testing.assert_array_equal(layer.get_weights()[3], np.ones(5))
    only = BatchNormalization(center=False, scale=False)
    only(rng.standard_normal((4, 5)))
    assert [p.name.split("/")[1] for p in only.weights] == ["moving_mean", "moving_variance"]


def test_config_round_trip():
    layer = BatchNormalization(axis=1, momentum=0.9, epsilon=1e-5, center=False,
                               gamma_initializer="random_normal", gamma_regularizer="l2")
    again = round_trip(layer)
    assert (again.axis, again.momentum, again.epsilon, again.center) == (1, 0.9, 1e-5, False)


@pytest.mark.parametrize("kwargs, match", [
    (dict(momentum=1.0), "momentum"), (dict(epsilon=0), "epsilon"), (dict(axis="last"), "axis")])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BatchNormalization(**kwargs)


def test_bad_inputs(rng):
    layer = BatchNormalization(name="bn")
    layer(rng.standard_normal((4, 5)))
    with pytest.raises(ShapeError, match="'bn' expected input of 2 dimensions with 5 features"):
        layer(rng.standard_normal((4, 6)))
    with pytest.raises(ShapeError, match="axis 0 is the batch"):
        BatchNormalization(axis=0)(rng.standard_normal((4, 5)))


def test_training_and_inference_closed_forms(rng, float64):
    x = rng.standard_normal((8, 2, 2, 3)) * 3 + 1
    layer = BatchNormalization(momentum=0.9, epsilon=1e-3)
    layer(x[:1])  # build
    gamma, beta = rng.standard_normal(3), rng.standard_normal(3)
    layer.set_weights([gamma, beta, np.zeros(3), np.ones(3)])
    y = layer(x, training=True).data
    mu, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
    np.testing.assert_allclose(y, gamma * (x - mu) / np.sqrt(var + 1e-3) + beta, rtol=1e-10)
    np.testing.assert_allclose(layer.moving_mean.data, 0.1 * mu, rtol=1e-12)
    np.testing.assert_allclose(layer.moving_variance.data, 0.9 + 0.1 * var, rtol=1e-12)  # Keras: biased
    mm, mv = layer.moving_mean.data.copy(), layer.moving_variance.data.copy()
    y = layer(x, training=False).data  # inference: moving statistics, no update
    np.testing.assert_allclose(y, gamma * (x - mm) / np.sqrt(mv + 1e-3) + beta, rtol=1e-10)
    np.testing.assert_array_equal(layer.moving_mean.data, mm)
    layer.trainable = False  # a frozen layer runs in inference mode even when training
    np.testing.assert_allclose(layer(x, training=True).data, y, rtol=1e-12)
    np.testing.assert_array_equal(layer.moving_mean.data, mm)


def test_matches_torch_train_and_eval(rng, float64):
    torch = pytest.importorskip("torch")
    x, g = rng.standard_normal((6, 4)) * 2 - 1, rng.standard_normal((6, 4))
    layer = BatchNormalization(momentum=0.8, epsilon=1e-3)
    layer(x)
    layer.set_weights([rng.standard_normal(4), rng.standard_normal(4), np.zeros(4), np.ones(4)])
    gamma, beta = (torch.tensor(w, requires_grad=True) for w in layer.get_weights()[:2])
    rm, rv = torch.zeros(4, dtype=torch.float64), torch.ones(4, dtype=torch.float64)
    for step in range(3):  # several steps: the moving averages compound
        xs = x + step
        xin = Tensor(xs, requires_grad=True)
        out = layer(xin, training=True)
        xt = torch.tensor(xs, requires_grad=True)
        ref = torch.nn.functional.batch_norm(xt, rm, rv, gamma, beta, training=True,
                                             momentum=1 - 0.8, eps=1e-3)
        np.testing.assert_allclose(out.data, ref.detach().numpy(), rtol=1e-10, atol=1e-12)
        layer.gamma.grad = layer.beta.grad = gamma.grad = beta.grad = None
        out.backward(g)
        ref.backward(torch.tensor(g))
        np.testing.assert_allclose(xin.grad, xt.grad.numpy(), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(layer.gamma.grad, gamma.grad.numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(layer.beta.grad, beta.grad.numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(layer.moving_mean.data, rm.numpy(), rtol=1e-12)
    # torch's running_var takes the unbiased batch variance, Keras' (and ours) the biased one
    mv = np.ones(4)
    for step in range(3):
        mv = 0.8 * mv + 0.2 * (x + step).var(axis=0)
    np.testing.assert_allclose(layer.moving_variance.data, mv, rtol=1e-12)
    rv.copy_(torch.tensor(mv))
    ref = torch.nn.functional.batch_norm(torch.tensor(x), rm, rv, gamma, beta, training=False, eps=1e-3)
    np.testing.assert_allclose(layer(x).data, ref.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_gradcheck_through_the_layer_in_training(rng, float64):
    layer = BatchNormalization(axis=1)
    layer(np.zeros((2, 3, 2)))

    def f(x, gamma, beta):
        layer.gamma, layer.beta = gamma, beta
        return layer(x, training=True)

    tidu.gradcheck(f, rng.standard_normal((4, 3, 2)), rng.standard_normal(3), rng.standard_normal(3))


# --- population statistics (the notes / Ioffe & Szegedy Algorithm 2) ----------------------
def _chain(rng):
    normal, uniform = initializers.RandomNormal(stddev=1.0), initializers.RandomUniform(0.5, 2.0)
    layers = [Dense(4, bias_initializer=normal),
              BatchNormalization(beta_initializer=normal, gamma_initializer=uniform),
              Dropout(0.5), Dense(3, bias_initializer=normal), BatchNormalization()]
    x = rng.standard_normal((53, 5)) * 2 + 0.5
    h = x[:10]
    for layer in layers:  # "train" a little so the moving statistics are not the population ones
        h = layer(h, training=True)
    return layers, x


def test_population_statistics_are_the_training_set_mean_and_unbiased_variance(rng, float64):
    layers, x = _chain(rng)
    dense1, bn1, _, dense2, bn2 = layers
    updated = compute_population_statistics(layers, x, batch_size=8)  # 53 = 6·8 + 5: uneven batches
    assert updated == [bn1, bn2]
    h1 = dense1(x).data
    np.testing.assert_allclose(bn1.moving_mean.data, h1.mean(axis=0), rtol=1e-10)
    np.testing.assert_allclose(bn1.moving_variance.data, h1.var(axis=0, ddof=1), rtol=1e-10, atol=1e-12)
    h2 = dense2(bn1(h1, training=False)).data  # bn2's inputs use bn1's population statistics
    np.testing.assert_allclose(bn2.moving_mean.data, h2.mean(axis=0), rtol=1e-10)
    np.testing.assert_allclose(bn2.moving_variance.data, h2.var(axis=0, ddof=1), rtol=1e-10)


def test_population_statistics_batches_method_is_algorithm_2(rng, float64):
    layers, x = _chain(rng)
    x = x[:48]
    compute_population_statistics(layers, x, batch_size=16, method="batches")
    h1 = layers[0](x).data.reshape(3, 16, 4)
    np.testing.assert_allclose(layers[1].moving_mean.data, h1.mean(axis=1).mean(axis=0), rtol=1e-10)
    expected = 16 / 15 * h1.var(axis=1).mean(axis=0)  # m/(m−1)·E_B[σ²_B]
    np.testing.assert_allclose(layers[1].moving_variance.data, expected, rtol=1e-10)


def test_set_population_statistics_on_conv_features(rng, float64):
    layer = BatchNormalization()
    batches = [rng.standard_normal((5, 3, 3, 2)) + i for i in range(4)]
    layer.set_population_statistics(batches)
    allx = np.concatenate(batches).reshape(-1, 2)
    np.testing.assert_allclose(layer.moving_mean.data, allx.mean(axis=0), rtol=1e-10)
    np.testing.assert_allclose(layer.moving_variance.data, allx.var(axis=0, ddof=1), rtol=1e-10)
    with pytest.raises(ValueError, match="no batches"):
        layer.set_population_statistics([])


def test_population_statistics_through_a_callable_model(rng, float64):
    class Chain(tidu.layers.Layer):
        def __init__(self, layers):
            super().__init__()
            self._layers = layers

        def call(self, x, training=False):
            for layer in self._layers:
                x = layer(x, training=training)
            return x

    layers, x = _chain(rng)
    compute_population_statistics(Chain(layers), x, batch_size=10)
    h1 = layers[0](x).data
    np.testing.assert_allclose(layers[1].moving_variance.data, h1.var(axis=0, ddof=1), rtol=1e-10)
    with pytest.raises(ValueError, match="batch_size"):
        compute_population_statistics(layers, x, batch_size=0)


# --- LayerNormalization --------------------------------------------------------------------
def test_layer_normalization(rng, float64):
    x = rng.standard_normal((3, 4, 5))
    layer = LayerNormalization(epsilon=1e-3)
    y = layer(x).data
    expected = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-3)
    np.testing.assert_allclose(y, expected, rtol=1e-10)
    assert [w.shape for w in layer.get_weights()] == [(5,), (5,)]
    round_trip(layer)


def test_population_statistics_of_a_sequential_model(rng, float64):
    try:
        from tidu.models import Sequential
    except ImportError:  # pragma: no cover - the models package is optional here
        pytest.skip("tidu.models is not available")
    layers, x = _chain(rng)
    model = Sequential(layers)
    compute_population_statistics(model, x, batch_size=16)
    h1 = layers[0](x).data
    h2 = layers[3](layers[1](h1)).data
    np.testing.assert_allclose(layers[1].moving_mean.data, h1.mean(axis=0), rtol=1e-10)
    np.testing.assert_allclose(layers[4].moving_variance.data, h2.var(axis=0, ddof=1), rtol=1e-10)
