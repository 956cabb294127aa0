"""Keras-style layers built on tidu.functional, one module per family.

`get(class_name)` and `deserialize({'class_name', 'config'})` build layers from their saved
configuration, and only from the classes listed here: a model file cannot name any other code.
"""
import difflib

from tidu.layers.base import Layer
from tidu.layers.input_layer import Input, InputLayer
from tidu.layers.core import Activation, Dense, Dropout, Flatten, Identity, Reshape
from tidu.layers.convolutional import Conv1D, Conv2D, Conv2DTranspose
from tidu.layers.pooling import (AveragePooling2D, AvgPool2D, GlobalAveragePooling2D,
                                 GlobalAvgPool2D, GlobalMaxPool2D, GlobalMaxPooling2D,
                                 L2Pooling2D, MaxPool2D, MaxPooling2D)
from tidu.layers.normalization import (BatchNormalization, LayerNormalization,
                                       compute_population_statistics)
from tidu.layers.recurrent import GRU, LSTM, SimpleRNN
from tidu.layers.embedding import Embedding
from tidu.layers.advanced_activations import ELU, LeakyReLU, Maxout, PReLU, ReLU, Softmax
from tidu.layers.pooling import (AveragePooling1D, AvgPool1D, GlobalAveragePooling1D,
                                 GlobalAvgPool1D, GlobalMaxPool1D, GlobalMaxPooling1D, MaxPool1D,
                                 MaxPooling1D)
from tidu.layers.wrappers import Bidirectional, TimeDistributed
from tidu.layers.merging import (Add, Average, Concatenate, Maximum, Minimum, Multiply,
                                 Subtract)
from tidu.layers.reshaping import (Cropping2D, Permute, RepeatVector, UpSampling2D,
                                   ZeroPadding2D)
from tidu.layers.noise import GaussianDropout, GaussianNoise, SpatialDropout2D
from tidu.layers.preprocessing import Rescaling

_LAYERS = {cls.__name__: cls for cls in (
    InputLayer, Dense, Activation, Flatten, Reshape, Dropout, Identity, Conv2D, MaxPooling2D,
    AveragePooling2D, L2Pooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D,
    BatchNormalization, LayerNormalization, SimpleRNN, LSTM, GRU, Embedding, LeakyReLU, ELU,
    ReLU, Softmax, Maxout, PReLU, Add, Subtract, Multiply, Average, Maximum, Minimum,
    Concatenate, RepeatVector, Permute, UpSampling2D, ZeroPadding2D, Cropping2D, Rescaling,
    GaussianNoise, GaussianDropout, SpatialDropout2D, Conv1D, Conv2DTranspose, MaxPooling1D,
    AveragePooling1D, GlobalAveragePooling1D, GlobalMaxPooling1D, Bidirectional, TimeDistributed)}
_LAYERS.update(MaxPool1D=MaxPooling1D, AvgPool1D=AveragePooling1D,
               GlobalAvgPool1D=GlobalAveragePooling1D, GlobalMaxPool1D=GlobalMaxPooling1D)
_LAYERS.update(MaxPool2D=MaxPooling2D, AvgPool2D=AveragePooling2D,
               GlobalAvgPool2D=GlobalAveragePooling2D, GlobalMaxPool2D=GlobalMaxPooling2D)

__all__ = ["Layer", "Input", "InputLayer", *sorted(_LAYERS), "compute_population_statistics",
           "get", "serialize", "deserialize"]


def get(class_name):
    """The layer class called `class_name` ('Dense'); ValueError for any other name."""
    if not isinstance(class_name, str) or class_name not in _LAYERS:
        close = difflib.get_close_matches(str(class_name), list(_LAYERS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else "."
        raise ValueError(f"layers.get: unknown layer class {class_name!r}{hint} "
                         f"Known: {', '.join(sorted(_LAYERS))}")
    return _LAYERS[class_name]


def serialize(layer):
    """{'class_name': 'Dense', 'config': layer.get_config()}."""
    if not isinstance(layer, Layer):
        raise TypeError(f"layers.serialize: expected a Layer, got {layer!r}")
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def deserialize(config):
    """A new, unbuilt layer from {'class_name', 'config'}; only the classes of this package."""
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"layers.deserialize: expected a dict with 'class_name' and 'config', "
                         f"got {config!r}")
    cfg = config.get("config") or {}
    if not isinstance(cfg, dict):
        raise ValueError(f"layers.deserialize: expected 'config' to be a dict, got {cfg!r}")
    return get(config["class_name"]).from_config(dict(cfg))
