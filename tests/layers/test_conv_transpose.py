"""Conv2DTranspose against the real Keras 3 (torch backend): Keras' weights copied in,
predictions within 1e-5; kernel layout, output shapes, config, errors."""
import json
import os
import warnings

import numpy as np
import pytest

from tidu import layers as tl
from tidu.errors import ShapeError


@pytest.mark.parametrize("shape, kwargs", [
    ((2, 5, 6, 3), dict(kernel_size=3)),
    ((2, 5, 6, 3), dict(kernel_size=3, strides=2)),
    ((2, 5, 6, 3), dict(kernel_size=3, strides=2, padding="same")),
    ((2, 4, 5, 3), dict(kernel_size=(2, 3), strides=(3, 2), padding="same")),
    ((2, 4, 5, 3), dict(kernel_size=2, strides=3)),                      # k < s: max(k, s)
    ((2, 4, 5, 3), dict(kernel_size=3, strides=2, output_padding=1)),
    ((2, 4, 5, 3), dict(kernel_size=3, strides=(2, 3), padding="same", output_padding=(1, 2))),
    ((2, 4, 5, 3), dict(kernel_size=4, strides=2, padding="same", output_padding=0)),
    ((2, 4, 5, 3), dict(kernel_size=3, dilation_rate=2)),
    ((2, 4, 5, 3), dict(kernel_size=(3, 2), dilation_rate=(2, 1), padding="same")),
    ((1, 1, 1, 2), dict(kernel_size=3, strides=2, padding="same")),
    ((1, 1, 1, 2), dict(kernel_size=1)),
    ((1, 3, 3, 1), dict(kernel_size=3, strides=2, activation="relu", use_bias=False)),
])
def test_conv2d_transpose_matches_keras(rng, shape, kwargs):
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    x = rng.standard_normal(shape).astype(np.float32)
    ref = keras.layers.Conv2DTranspose(4, bias_initializer="random_normal", **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Keras' torch backend warns of its own padding limits
        expected = keras.ops.convert_to_numpy(ref(x))
    layer = tl.Conv2DTranspose(4, **kwargs)
    layer(x)
    kh, kw = layer.kernel_size
    assert layer.get_weights()[0].shape == (kh, kw, 4, shape[3])  # filters before in-channels
    assert [w.shape for w in layer.get_weights()] == [tuple(w.shape) for w in ref.get_weights()]
    layer.set_weights(ref.get_weights())
    y = layer(x).data
    assert y.shape == expected.shape
    np.testing.assert_allclose(y, expected, atol=1e-5, rtol=1e-5)
    assert layer.compute_output_shape((None, *shape[1:])) == (None, *expected.shape[1:])
    assert tuple(ref.compute_output_shape((None, *shape[1:]))) == (None, *y.shape[1:])


def test_conv2d_transpose_config_round_trip(rng):
    layer = tl.Conv2DTranspose(3, (3, 2), strides=2, padding="same", output_padding=(1, 0),
                               activation="sigmoid", kernel_regularizer="l2", name="up")
    config = json.loads(json.dumps(layer.get_config()))
    assert config["output_padding"] == [1, 0] and config["kernel_size"] == [3, 2]
    again = tl.Conv2DTranspose.from_config(config)
    assert again.get_config() == config
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    layer(x)
    again(x)
    again.set_weights(layer.get_weights())
    np.testing.assert_array_equal(layer(x).data, again(x).data)
    assert tl.get("Conv2DTranspose") is tl.Conv2DTranspose


@pytest.mark.parametrize("kwargs, match", [
    (dict(filters=0, kernel_size=3), "Conv2DTranspose: expected filters to be an int >= 1"),
    (dict(filters=2, kernel_size=3, strides=2, output_padding=2), "output_padding"),
    (dict(filters=2, kernel_size=3, output_padding=(0, 0, 0)), "output_padding"),
    (dict(filters=2, kernel_size=3, padding="causal"), "padding 'valid' or 'same'"),
    (dict(filters=2, kernel_size=3, strides=2, dilation_rate=2), "dilation_rate"),
])
def test_conv2d_transpose_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tl.Conv2DTranspose(**kwargs)


def test_conv2d_transpose_bad_inputs():
    layer = tl.Conv2DTranspose(2, 3, name="up")
    with pytest.raises(ShapeError, match=r"Conv2DTranspose\(2, \(3, 3\)\) 'up' expected input with 4"):
        layer(np.zeros((1, 3, 3), np.float32))
    layer(np.zeros((1, 3, 3, 2), np.float32))
    with pytest.raises(ShapeError, match=r"expected input \(batch, height, width, 2\)"):
        layer(np.zeros((1, 3, 3, 1), np.float32))
