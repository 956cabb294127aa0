"""Input and InputLayer: the entry of a functional model.

    inputs = Input(shape=(784,))                 # a SymbolicTensor of shape (None, 784)
    h = Dense(512, activation="relu")(inputs)    # calling a layer on it gives another
    outputs = Dense(10, activation="softmax")(h)
    model = Model(inputs, outputs)

SymbolicTensor, is_symbolic and symbolic_call live in tidu.layers.symbolic (they are
re-exported here for the code that imports them from this module).
"""
import numpy as np

from tidu.layers.base import Layer
from tidu.layers.symbolic import SymbolicTensor, is_symbolic, symbolic_call

__all__ = ["Input", "InputLayer", "SymbolicTensor", "is_symbolic", "symbolic_call"]


class InputLayer(Layer):
    """The layer behind `Input`: passes its input through unchanged.

    input_shape (or shape): one sample's shape, without the batch axis.  batch_size: optional
    fixed batch size.
    """

    def __init__(self, input_shape=None, batch_size=None, dtype=None, name=None, shape=None, **kwargs):
        if shape is not None and input_shape is None:
            input_shape = shape
        if input_shape is None:
            raise ValueError("InputLayer: expected input_shape (one sample's shape, without the "
                             "batch axis), got None")
        if batch_size is not None and (not isinstance(batch_size, (int, np.integer)) or batch_size <= 0):
            raise ValueError(f"InputLayer: expected batch_size to be a positive int or None, "
                             f"got {batch_size!r}")
        super().__init__(name=name, dtype=dtype, input_shape=input_shape, **kwargs)
        self.batch_size = None if batch_size is None else int(batch_size)
        self.built = True
        self.output = SymbolicTensor((self.batch_size, *self.input_shape_arg), dtype=dtype,
                                     layer=self, inputs=[], name=self.name)

    def call(self, inputs, training=False):
        return inputs

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config["batch_size"] = self.batch_size
        return config


def Input(shape, batch_size=None, name=None, dtype=None):
    """A symbolic input of `shape` (one sample's shape, without the batch axis), the start of
    a functional model: `Model(inputs=Input((784,)), outputs=...)`."""
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    if not isinstance(shape, (tuple, list)):
        raise TypeError(f"Input: expected shape to be a tuple of ints (without the batch axis), "
                        f"got {shape!r}")
    return InputLayer(input_shape=tuple(shape), batch_size=batch_size, name=name, dtype=dtype).output
