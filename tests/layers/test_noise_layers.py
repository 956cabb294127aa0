"""GaussianNoise, GaussianDropout, SpatialDropout2D, Rescaling and PReLU against Keras 3 (torch
backend): inference outputs, training-mode statistics, seeds, configs, save/load."""
import json
import os

import numpy as np
import pytest

import tidu
from tidu import Tensor, gradcheck
from tidu import layers as L
from tidu.errors import ShapeError


@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    return pytest.importorskip("keras")


def as_numpy(keras, y):
    return np.asarray(keras.ops.convert_to_numpy(y))


NOISE = [("GaussianNoise", dict(stddev=0.3)), ("GaussianDropout", dict(rate=0.4)),
         ("SpatialDropout2D", dict(rate=0.5))]


def round_trip(layer):
    config = json.loads(json.dumps(L.serialize(layer)))
    again = L.deserialize(config)
    assert type(again) is type(layer) and again.get_config() == layer.get_config()
    return again


# --- the noise layers ---------------------------------------------------------------------
@pytest.mark.parametrize("name, kwargs", NOISE)
def test_identity_in_inference_like_keras(keras, rng, name, kwargs):
    x = rng.standard_normal((3, 4, 5, 2)).astype(np.float32)
    ours = getattr(L, name)(seed=1, **kwargs)
    ref = getattr(keras.layers, name)(seed=1, **kwargs)
    np.testing.assert_array_equal(ours(x).data, x)
    np.testing.assert_array_equal(ours(x).data, as_numpy(keras, ref(x, training=False)))
    assert not np.allclose(ours(x, training=True).data, x)


@pytest.mark.parametrize("name, kwargs", NOISE)
def test_seed_reproduces_the_noise_and_config_round_trips(rng, name, kwargs):
    x = rng.standard_normal((4, 3, 3, 2)).astype(np.float32)
    a, b = getattr(L, name)(seed=7, **kwargs), getattr(L, name)(seed=7, **kwargs)
    np.testing.assert_array_equal(a(x, training=True).data, b(x, training=True).data)
    c = round_trip(a)
    assert c.seed == 7
    np.testing.assert_array_equal(c(x, training=True).data, getattr(L, name)(seed=7, **kwargs)(
        x, training=True).data)


def test_gaussian_noise_statistics_match_keras(keras):
    x, stddev = np.full((200, 500), 2.0, np.float32), 0.3
    ours = L.GaussianNoise(stddev, seed=0)(x, training=True).data - x
    ref = as_numpy(keras, keras.layers.GaussianNoise(stddev, seed=0)(x, training=True)) - x
    n = x.size
    for noise in (ours, ref):   # mean 0 ± 5 standard errors; std within 2%
        assert abs(noise.mean()) < 5 * stddev / np.sqrt(n)
        assert abs(noise.std() / stddev - 1) < 0.02


@pytest.mark.parametrize("rate", [0.2, 0.5])
def test_gaussian_dropout_multiplier_has_keras_mean_and_variance(keras, rate):
    x = np.full((200, 500), 3.0, np.float32)
    variance = rate / (1 - rate)
    ours = L.GaussianDropout(rate, seed=0)(x, training=True).data / x
    ref = as_numpy(keras, keras.layers.GaussianDropout(rate, seed=0)(x, training=True)) / x
    n = x.size
    for m in (ours, ref):
        assert abs(m.mean() - 1) < 5 * np.sqrt(variance / n)
        assert abs(m.var() / variance - 1) < 0.02
        assert (m != 0).all()   # no zeros, unlike Bernoulli dropout


def test_spatial_dropout_drops_whole_channels_like_keras(keras, rng):
    rate = 0.4
    x = rng.uniform(1, 2, (64, 5, 6, 32)).astype(np.float32)
    ours = L.SpatialDropout2D(rate, seed=0)(x, training=True).data
    ref = as_numpy(keras, keras.layers.SpatialDropout2D(rate, seed=0)(x, training=True))
    for y in (ours, ref):
        dropped = (y == 0).all(axis=(1, 2))                       # (N, C): a whole map is zero
        kept = np.isclose(y, x / (1 - rate), rtol=1e-6).all(axis=(1, 2))
        assert (dropped | kept).all()                             # nothing in between
        n = dropped.size
        assert abs(dropped.mean() - rate) < 5 * np.sqrt(rate * (1 - rate) / n)


@pytest.mark.parametrize("name, kwargs", NOISE)
def test_noise_layers_train_in_fit_and_save_their_generators(rng, tmp_path, name, kwargs):
    model = tidu.models.Sequential([L.Conv2D(2, 1, input_shape=(3, 3, 2)),
                                    getattr(L, name)(seed=3, **kwargs), L.Flatten(), L.Dense(2)])
    x = rng.standard_normal((32, 3, 3, 2)).astype(np.float32)
    y = rng.standard_normal((32, 2)).astype(np.float32)
    model.compile("sgd", "mse")
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    model.save(tmp_path / "m.tidu")
    again = tidu.models.load_model(tmp_path / "m.tidu")
    np.testing.assert_array_equal(again.predict(x), model.predict(x))
    # the layer's generator is saved: the next training-mode draws agree
    mine, theirs = model.layers[1], again.layers[1]
    np.testing.assert_array_equal(mine(x, training=True).data, theirs(x, training=True).data)


def test_noise_layers_without_seed_draw_from_the_generator_fit_lends(rng):
    x, y = rng.standard_normal((16, 3)), rng.standard_normal((16, 2))
    weights = None
    losses = []
    for seed in (5, 5, 6):
        layer = L.GaussianNoise(0.5)
        assert layer.seed is None and layer.rng is None   # fit lends the model's generator
        model = tidu.models.Sequential([L.Dense(2, input_shape=(3,)), layer])
        weights = weights or model.get_weights()
        model.set_weights(weights)
        model.compile("sgd", "mse")
        losses.append(model.fit(x, y, epochs=2, batch_size=4, verbose=0, seed=seed).history["loss"])
        assert layer.rng is None                           # given back after fit
    assert losses[0] == losses[1] and losses[0] != losses[2]


def test_gradients_of_the_noise_layers(rng):
    x = rng.standard_normal((2, 3, 3, 2))
    for layer in (L.GaussianNoise(0.2, seed=0), L.GaussianDropout(0.3, seed=0),
                  L.SpatialDropout2D(0.5, seed=0)):
        state = layer.rng.bit_generator.state
        def f(t, layer=layer, state=state):   # the same noise on every evaluation
            layer.rng.bit_generator.state = state
            return layer(t, training=True)
        gradcheck(f, x)


@pytest.mark.parametrize("make, match", [
    (lambda: L.GaussianNoise(1.5), r"GaussianNoise: expected 0 <= stddev <= 1, got stddev=1.5"),
    (lambda: L.GaussianNoise(0.1, seed=1.5), "GaussianNoise: expected seed to be an int"),
    (lambda: L.GaussianDropout(1.0), "GaussianDropout: expected 0 <= rate < 1, got rate=1.0"),
    (lambda: L.SpatialDropout2D(-0.1), "SpatialDropout2D: expected 0 <= rate < 1"),
    (lambda: L.SpatialDropout2D(0.1, data_format="channels_first"), "channels-last"),
])
def test_bad_arguments(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_spatial_dropout_wants_images():
    with pytest.raises(ShapeError, match="SpatialDropout2D 'sd' expected input with 4 dimensions"):
        L.SpatialDropout2D(0.5, name="sd")(np.zeros((2, 3)), training=True)


# --- Rescaling ----------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs", [dict(scale=1 / 255), dict(scale=2.0, offset=-1.0),
                                    dict(scale=[0.5, 2.0, -1.0], offset=[0.1, 0.0, 0.2])])
def test_rescaling_matches_keras(keras, rng, tmp_path, kwargs):
    x = rng.uniform(0, 255, (4, 2, 2, 3)).astype(np.float32)
    ours = L.Rescaling(**kwargs)
    np.testing.assert_allclose(ours(x).data, as_numpy(keras, keras.layers.Rescaling(**kwargs)(x)),
                               rtol=1e-6, atol=1e-6)
    again = round_trip(ours)
    np.testing.assert_array_equal(again(x).data, ours(x).data)
    model = tidu.models.Sequential([L.Rescaling(input_shape=(2, 2, 3), **kwargs), L.Flatten()])
    model.save(tmp_path / "m.tidu")
    np.testing.assert_array_equal(tidu.models.load_model(tmp_path / "m.tidu").predict(x),
                                  model.predict(x))


def test_rescaling_converts_integers_and_checks_channels():
    y = L.Rescaling(0.5)(np.array([[2, 4]], dtype=np.uint8))
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y.data, [[1.0, 2.0]])
    with pytest.raises(ValueError, match=r"Rescaling 'rs' has 2 values of scale for an input of shape \(1, 3\)"):
        L.Rescaling([1.0, 2.0], name="rs")(np.zeros((1, 3)))
    with pytest.raises(TypeError, match="Rescaling: expected scale to be a number"):
        L.Rescaling("big")


# --- PReLU ----------------------------------------------------------------------------------
@pytest.mark.parametrize("sample, shared_axes", [((5,), None), ((4, 3, 2), None),
                                                 ((4, 3, 2), [1, 2]), ((4, 3, 2), 3),
                                                 ((6, 2), [1])])
def test_prelu_matches_keras_with_its_weights(keras, rng, sample, shared_axes):
    x = rng.standard_normal((3, *sample)).astype(np.float32)
    ref = keras.layers.PReLU(shared_axes=shared_axes)
    ref.build((None, *sample))
    ref.set_weights([rng.uniform(-0.5, 0.5, ref.get_weights()[0].shape)])
    ours = L.PReLU(shared_axes=shared_axes)
    ours(x[:1])
    assert [w.shape for w in ours.get_weights()] == [w.shape for w in ref.get_weights()]
    ours.set_weights(ref.get_weights())
    np.testing.assert_allclose(ours(x).data, as_numpy(keras, ref(x)), rtol=1e-5, atol=1e-6)


def test_prelu_defaults_to_relu_and_gradchecks(rng, float64):
    x = rng.standard_normal((3, 4, 2))
    layer = L.PReLU(shared_axes=[1])
    np.testing.assert_array_equal(layer(x).data, np.maximum(x, 0))
    assert layer.alpha.shape == (1, 2)
    alpha = rng.uniform(-1, 1, (1, 2))

    def f(t, a):
        layer.alpha = a   # the layer's weight, as the Tensor gradcheck varies
        return layer(t)
    gradcheck(f, x + np.sign(x) * 0.1, alpha)   # away from the kink at 0


def test_prelu_trains_config_round_trips_and_saves(rng, tmp_path):
    model = tidu.models.Sequential([L.Dense(4, input_shape=(3,)),
                                    L.PReLU(alpha_initializer="ones", alpha_regularizer="l2"),
                                    L.Dense(1)])
    model.compile("sgd", "mse")
    x, y = rng.standard_normal((32, 3)), rng.standard_normal((32, 1))
    model.fit(x, y, epochs=2, verbose=0)
    alpha = model.layers[1].get_weights()[0]
    assert alpha.shape == (4,) and not np.allclose(alpha, 1.0)   # learned
    again = round_trip(model.layers[1])
    assert again.get_config()["alpha_regularizer"] is not None
    model.save(tmp_path / "m.tidu")
    np.testing.assert_array_equal(tidu.models.load_model(tmp_path / "m.tidu").predict(x),
                                  model.predict(x))


@pytest.mark.parametrize("make, x, err, match", [
    (lambda: L.PReLU(shared_axes=[0]), None, ValueError, "PReLU: expected shared_axes to be axes >= 1"),
    (lambda: L.PReLU(alpha_constraint="nonneg"), None, TypeError, "alpha_constraint"),
    (lambda: L.PReLU(shared_axes=[3], name="pr"), np.zeros((2, 3)), ShapeError,
     r"PReLU 'pr' shared axis 3 does not exist in an input of shape \(2, 3\)"),
])
def test_prelu_errors(make, x, err, match):
    with pytest.raises(err, match=match):
        layer = make()
        layer(x)


def test_prelu_input_of_another_shape_is_refused(rng):
    layer = L.PReLU(name="pr2")
    layer(np.zeros((2, 3)))
    with pytest.raises(ShapeError, match=r"PReLU 'pr2' has alpha of shape \(3,\), which does not fit an input of shape \(2, 4\)"):
        layer(np.zeros((2, 4)))
