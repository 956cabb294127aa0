"""Rescaling: y = x·scale + offset, e.g. Rescaling(1/255) maps pixel values to [0, 1].

scale and offset are numbers, or lists broadcast against the last axis (one per channel).
Integer inputs are converted to floatx first (the layer's dtype when it has one), as Keras.
"""
import numbers

import numpy as np

from tidu import backend
from tidu.autograd import Tensor
from tidu.layers.base import Layer
from tidu.layers.utils import layer_label

__all__ = ["Rescaling"]


def _factor(name, value):
    """A real number (a float), or a non-empty list of them (a tuple of floats)."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, (list, tuple, np.ndarray)) and len(value) > 0 and all(
            isinstance(v, numbers.Real) and not isinstance(v, bool) for v in np.ravel(value)):
        return tuple(float(v) for v in np.ravel(value))
    raise TypeError(f"Rescaling: expected {name} to be a number or a list of numbers, "
                    f"got {name}={value!r}")


class Rescaling(Layer):
    """y = x·scale + offset."""

    def __init__(self, scale, offset=0.0, **kwargs):
        scale, offset = _factor("scale", scale), _factor("offset", offset)
        super().__init__(**kwargs)
        self.scale, self.offset = scale, offset

    def call(self, inputs, training=False):
        dtype = self.dtype or backend.floatx()
        x = inputs if isinstance(inputs, Tensor) else Tensor(inputs)
        if x.dtype.kind != "f":
            x = Tensor(backend.as_array(x.data, dtype))
        scale = backend.xp.asarray(self.scale, dtype=x.dtype)
        offset = backend.xp.asarray(self.offset, dtype=x.dtype)
        for name, v in (("scale", scale), ("offset", offset)):
            if v.ndim and v.shape[0] not in (1, x.shape[-1]):
                raise ValueError(f"{layer_label(self)} has {v.shape[0]} values of {name} for an "
                                 f"input of shape {x.shape}: expected one, or one per channel "
                                 f"(the last axis, {x.shape[-1]})")
        return x * scale + offset

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        def plain(v):
            return list(v) if isinstance(v, tuple) else v
        return {**super().get_config(), "scale": plain(self.scale), "offset": plain(self.offset)}
