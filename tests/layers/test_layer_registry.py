import json

import numpy as np
import pytest

import tidu.layers as L

EXAMPLES = [
    L.Dense(3, activation="relu"), L.Activation("tanh"), L.Flatten(), L.Reshape((2, -1)),
    L.Dropout(0.2), L.Identity(), L.Conv2D(2, 3), L.MaxPooling2D(), L.AveragePooling2D(),
    L.L2Pooling2D(), L.GlobalAveragePooling2D(), L.GlobalMaxPooling2D(), L.BatchNormalization(),
    L.LayerNormalization(), L.SimpleRNN(2), L.LSTM(2), L.GRU(2), L.Embedding(4, 2), L.LeakyReLU(),
    L.ELU(), L.ReLU(), L.Softmax(), L.Maxout(2, 2)]


@pytest.mark.parametrize("layer", EXAMPLES, ids=lambda layer: type(layer).__name__)
def test_serialize_deserialize_every_layer(layer):
    config = json.loads(json.dumps(L.serialize(layer)))
    again = L.deserialize(config)
    assert type(again) is type(layer) and again.get_config() == layer.get_config()
    assert L.get(config["class_name"]) is type(layer)


def test_aliases_and_exports():
    assert L.get("MaxPool2D") is L.MaxPooling2D and L.get("GlobalAvgPool2D") is L.GlobalAveragePooling2D
    assert L.Layer is L.base.Layer and L.InputLayer is L.input_layer.InputLayer
    for name in L.__all__:
        assert hasattr(L, name)


def test_only_known_classes_are_built():
    with pytest.raises(ValueError, match="unknown layer class 'Dens'; did you mean 'Dense'"):
        L.get("Dens")
    with pytest.raises(ValueError, match="unknown layer class"):
        L.deserialize({"class_name": "Lambda", "config": {"function": "os.system"}})
    with pytest.raises(ValueError, match="unknown layer class"):
        L.get("Layer")  # the abstract base is not a loadable layer
    with pytest.raises(ValueError, match="class_name"):
        L.deserialize({"config": {}})
    with pytest.raises(TypeError, match="unexpected keyword"):
        L.deserialize({"class_name": "Dense", "config": {"units": 2, "evil": 1}})


@pytest.mark.parametrize("layer, shape", [
    (L.Dense(3), (None, 5)), (L.Conv2D(2, 3, strides=2), (None, 9, 8, 3)),
    (L.MaxPooling2D(3, 2, "same"), (None, 7, 6, 2)), (L.Flatten(), (None, 3, 4)),
    (L.Embedding(9, 2), (None, 6)), (L.GRU(4, return_sequences=True), (None, 5, 3)),
    (L.Maxout(3, 2), (None, 4)), (L.Reshape((-1, 2)), (None, 6)),
])
def test_compute_output_shape_arithmetic_equals_running_the_layer(layer, shape):
    expected = layer.compute_output_shape(shape)
    x = np.zeros((2, *shape[1:]), dtype=np.float32)
    assert layer(x).shape == (2, *expected[1:])


def test_automatic_names_are_keras_names():
    """A layer made without a name is called what Keras 3 calls it ('conv2d', not 'conv2_d')."""
    import os

    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras", reason="keras 3 names the layers")
    from tidu.layers.base import reset_names

    for cls_name in ("Dense", "Conv2D", "MaxPooling2D", "Conv1D", "GlobalAveragePooling1D", "GRU",
                     "SimpleRNN", "BatchNormalization", "Conv2DTranspose", "UpSampling2D", "PReLU"):
        if not hasattr(L, cls_name):
            continue
        keras.backend.clear_session()
        reset_names()
        cls_k = getattr(keras.layers, cls_name)
        cls_t = L.get(cls_name)
        args = {"Dense": (3,), "Conv2D": (2, 3), "Conv1D": (2, 3), "GRU": (2,), "SimpleRNN": (2,),
                "Conv2DTranspose": (2, 3)}.get(cls_name, ())
        assert cls_t(*args).name == cls_k(*args).name, cls_name
