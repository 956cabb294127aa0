"""Conv1D and the 1-D pools against the real Keras 3 (torch backend): same input, Keras'
weights copied in, predictions within 1e-5; shapes, configs and errors."""
import json
import os

import numpy as np
import pytest

from tidu import layers as tl
from tidu.errors import ShapeError


def keras_layers():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    return pytest.importorskip("keras").layers


def keras_predict(layer, x):
    import keras
    return keras.ops.convert_to_numpy(layer(x))


def round_trip(layer):
    config = json.loads(json.dumps(layer.get_config()))
    again = type(layer).from_config(config)
    assert again.get_config() == config
    return again


# --- Conv1D ---------------------------------------------------------------------------------
@pytest.mark.parametrize("n, length, kwargs", [
    (2, 9, dict(kernel_size=3)),
    (2, 9, dict(kernel_size=3, padding="same")),
    (2, 10, dict(kernel_size=4, padding="same")),
    (3, 11, dict(kernel_size=3, strides=2)),
    (3, 11, dict(kernel_size=4, strides=3, padding="same")),
    (2, 9, dict(kernel_size=3, padding="causal")),
    (2, 9, dict(kernel_size=2, padding="causal", dilation_rate=3)),
    (2, 10, dict(kernel_size=3, strides=2, padding="causal")),
    (2, 12, dict(kernel_size=3, dilation_rate=2)),
    (2, 12, dict(kernel_size=3, dilation_rate=2, padding="same")),
    (1, 1, dict(kernel_size=1)),
    (1, 1, dict(kernel_size=3, padding="same")),
    (1, 1, dict(kernel_size=3, padding="causal")),
    (1, 7, dict(kernel_size=5, activation="relu", use_bias=False)),
])
def test_conv1d_matches_keras(rng, n, length, kwargs):
    K = keras_layers()
    x = rng.standard_normal((n, length, 3)).astype(np.float32)
    ref = K.Conv1D(5, bias_initializer="random_normal", **kwargs)
    expected = keras_predict(ref, x)
    layer = tl.Conv1D(5, **kwargs)
    layer(x)
    assert [w.shape for w in layer.get_weights()] == [tuple(w.shape) for w in ref.get_weights()]
    layer.set_weights(ref.get_weights())
    y = layer(x).data
    assert y.shape == expected.shape
    np.testing.assert_allclose(y, expected, atol=1e-5, rtol=1e-5)
    assert layer.compute_output_shape((None, length, 3)) == (None, *expected.shape[1:])
    assert tuple(ref.compute_output_shape((None, length, 3))) == (None, *y.shape[1:])


def test_conv1d_causal_output_sees_no_future(rng):
    layer = tl.Conv1D(2, 3, padding="causal", dilation_rate=2)
    x = rng.standard_normal((1, 10, 2)).astype(np.float32)
    y = layer(x).data
    x2 = x.copy()
    x2[:, 6:] = 100.0  # change the future of step 5
    np.testing.assert_array_equal(layer(x2).data[:, :6], y[:, :6])
    assert not np.allclose(layer(x2).data[:, 6:], y[:, 6:])


def test_conv1d_config_round_trip_and_layout(rng):
    layer = tl.Conv1D(6, 4, strides=2, padding="CAUSAL", activation="tanh", use_bias=False,
                      kernel_regularizer="l2", input_shape=(12, 3))
    again = round_trip(layer)
    assert (again.kernel_size, again.strides, again.padding) == ((4,), (2,), "causal")
    x = rng.standard_normal((2, 12, 3)).astype(np.float32)
    layer(x)
    again(x)
    again.set_weights(layer.get_weights())
    np.testing.assert_array_equal(layer(x).data, again(x).data)
    assert [w.shape for w in layer.get_weights()] == [(4, 3, 6)]


@pytest.mark.parametrize("kwargs, match", [
    (dict(filters=0, kernel_size=3), "Conv1D: expected filters to be an int >= 1"),
    (dict(filters=4, kernel_size=(3, 3)), "kernel_size"),
    (dict(filters=4, kernel_size=3, padding="full"), "padding 'valid' or 'same' or 'causal'"),
    (dict(filters=4, kernel_size=3, strides=2, dilation_rate=2), "dilation_rate"),
    (dict(filters=4, kernel_size=3, groups=3), "groups"),
    (dict(filters=4, kernel_size=3, data_format="channels_first"), "channels-last"),
])
def test_conv1d_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tl.Conv1D(**kwargs)


def test_conv1d_bad_inputs():
    layer = tl.Conv1D(4, 3, name="c1")
    with pytest.raises(ShapeError, match=r"Conv1D\(4, 3\) 'c1' expected input with 3 dimensions"):
        layer(np.zeros((2, 8, 8, 1), np.float32))
    assert not layer.built
    layer(np.zeros((1, 8, 2), np.float32))
    with pytest.raises(ShapeError, match=r"expected input \(batch, steps, 2\), got shape \(1, 8, 3\)"):
        layer(np.zeros((1, 8, 3), np.float32))
    with pytest.raises(ShapeError, match="smaller than the kernel"):
        layer(np.zeros((1, 2, 2), np.float32))


# --- pooling --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["MaxPooling1D", "AveragePooling1D"])
@pytest.mark.parametrize("n, length, kwargs", [
    (2, 8, dict(pool_size=2)),   # Keras' AveragePooling1D has no default pool_size
    (2, 9, dict(pool_size=2)),
    (2, 9, dict(pool_size=3, strides=1)),
    (3, 10, dict(pool_size=3, strides=2)),
    (2, 9, dict(pool_size=3, padding="same")),   # symmetric 'same' padding
    (2, 9, dict(pool_size=3, strides=1, padding="same")),
    (2, 10, dict(pool_size=2, padding="same")),
    (1, 1, dict(pool_size=1)),
    (1, 1, dict(pool_size=3, padding="same")),
])
def test_pool1d_matches_keras(rng, name, n, length, kwargs):
    K = keras_layers()
    x = rng.standard_normal((n, length, 4)).astype(np.float32)
    expected = keras_predict(getattr(K, name)(**kwargs), x)
    layer = getattr(tl, name)(**kwargs)
    y = layer(x).data
    assert y.shape == expected.shape
    np.testing.assert_allclose(y, expected, atol=1e-5, rtol=1e-5)
    assert layer.compute_output_shape((None, length, 4)) == (None, *expected.shape[1:])


def test_max_pool1d_same_with_uneven_padding_matches_keras(rng):
    K = keras_layers()
    x = rng.standard_normal((2, 9, 3)).astype(np.float32)
    kwargs = dict(pool_size=4, strides=2, padding="same")
    np.testing.assert_allclose(tl.MaxPooling1D(**kwargs)(x).data,
                               keras_predict(K.MaxPooling1D(**kwargs), x), atol=1e-6)


def test_avg_pool1d_same_with_uneven_padding_averages_the_inside(rng):
    """TensorFlow's and JAX's rule (the window's part inside the input); Keras' torch backend
    repeats the edge element instead, so this case is checked against the formula."""
    x = rng.standard_normal((1, 5, 1)).astype(np.float32)
    y = tl.AveragePooling1D(pool_size=2, strides=1, padding="same")(x).data
    # total padding 1, on the right: the last window holds x[4] alone
    np.testing.assert_allclose(y[0, :, 0], [*(x[0, :4, 0] + x[0, 1:, 0]) / 2, x[0, 4, 0]], rtol=1e-6)


@pytest.mark.parametrize("name", ["GlobalAveragePooling1D", "GlobalMaxPooling1D"])
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("length", [1, 7])
def test_global_pool1d_matches_keras(rng, name, keepdims, length):
    K = keras_layers()
    x = rng.standard_normal((3, length, 4)).astype(np.float32)
    expected = keras_predict(getattr(K, name)(keepdims=keepdims), x)
    layer = getattr(tl, name)(keepdims=keepdims)
    y = layer(x).data
    assert y.shape == expected.shape
    np.testing.assert_allclose(y, expected, atol=1e-6)
    assert layer.compute_output_shape((None, length, 4)) == (None, *expected.shape[1:])


def test_pool1d_config_aliases_and_errors():
    layer = round_trip(tl.MaxPooling1D(3, strides=1, padding="same", name="p"))
    assert (layer.pool_size, layer.strides, layer.padding) == ((3,), (1,), "same")
    assert tl.get("MaxPool1D") is tl.MaxPooling1D and tl.get("GlobalAvgPool1D") is tl.GlobalAveragePooling1D
    assert round_trip(tl.GlobalMaxPooling1D(keepdims=True)).keepdims
    with pytest.raises(ValueError, match="AveragePooling1D: expected pool_size"):
        tl.AveragePooling1D(pool_size=(2, 2))
    with pytest.raises(ShapeError, match=r"MaxPooling1D\(\(2,\)\) 'p1' expected input with 3 dim"):
        tl.MaxPooling1D(name="p1")(np.zeros((1, 4, 4, 1), np.float32))
    with pytest.raises(ShapeError, match="smaller than the pool"):
        tl.MaxPooling1D(3)(np.zeros((1, 2, 1), np.float32))
    with pytest.raises(ShapeError, match="GlobalMaxPooling1D 'g' expected input with 3 dim"):
        tl.GlobalMaxPooling1D(name="g")(np.zeros((1, 4), np.float32))
