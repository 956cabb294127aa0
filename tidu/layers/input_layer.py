"""Input and InputLayer: the entry of a functional model.

    inputs = Input(shape=(784,))                 # a SymbolicTensor of shape (None, 784)
    h = Dense(512, activation="relu")(inputs)    # calling a layer on it gives another
    outputs = Dense(10, activation="softmax")(h)
    model = Model(inputs, outputs)

A SymbolicTensor holds no data: only the shape of a batch (None for the batch axis), the dtype,
and the node that made it (the layer and the symbolic inputs it was called on), so `Model` can
walk the graph from outputs back to inputs. Calling a layer on one builds the layer's weights
from the shape at once, so shape errors surface where the graph is written.
"""
import numpy as np

from tidu import backend
from tidu.autograd import Tensor, no_grad
from tidu.layers.base import Layer

__all__ = ["Input", "InputLayer", "SymbolicTensor", "is_symbolic"]


class SymbolicTensor:
    """A placeholder for a batch flowing through a functional model.

    shape: the batch's shape, None where unknown (the batch axis).  dtype: its dtype name.
    layer: the layer that produced it.  inputs: the SymbolicTensor(s) that layer was called on
    (empty for an Input).  call_kwargs: keyword arguments of that call (e.g. a layer option).
    """

    _tidu_symbolic = True  # what Layer.__call__ looks for

    def __init__(self, shape, dtype=None, layer=None, inputs=(), call_kwargs=None, name=None):
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype or backend.floatx()).name
        self.layer = layer
        self.inputs = list(inputs)
        self.call_kwargs = dict(call_kwargs or {})
        self.name = name or (layer.name if layer is not None else "symbolic")

    ndim = property(lambda self: len(self.shape))

    def __repr__(self):
        return f"<SymbolicTensor shape={self.shape} dtype={self.dtype} from {self.name!r}>"


def is_symbolic(x):
    """True for a SymbolicTensor, or a non-empty list/tuple of them."""
    if isinstance(x, (list, tuple)):
        return bool(x) and all(getattr(t, "_tidu_symbolic", False) for t in x)
    return getattr(x, "_tidu_symbolic", False)


def _zeros_like_symbolic(t):
    return Tensor(np.zeros(tuple(1 if d is None else d for d in t.shape), dtype=t.dtype))


def symbolic_call(layer, inputs, training=False, **kwargs):
    """What `layer(inputs)` gives for symbolic inputs: a SymbolicTensor whose shape is the
    layer's output shape (the layer is built from the input shape on the way)."""
    if isinstance(inputs, (list, tuple)):
        inputs = list(inputs)
        with no_grad():
            y = layer([_zeros_like_symbolic(t) for t in inputs], training=False, **kwargs)
        batch = inputs[0].shape[0]
    else:
        with no_grad():
            y = layer(_zeros_like_symbolic(inputs), training=False, **kwargs)
        batch = inputs.shape[0]
    if isinstance(y, (list, tuple)):
        raise TypeError(f"{type(layer).__name__} '{layer.name}': layers with several outputs "
                        f"are not supported in a functional model")
    out = SymbolicTensor((batch, *y.shape[1:]), dtype=y.dtype, layer=layer,
                         inputs=inputs if isinstance(inputs, list) else [inputs], call_kwargs=kwargs)
    return out


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
