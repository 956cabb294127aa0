"""Layer: the Keras-style building block.

A subclass validates and stores its configuration in `__init__`, makes its weights in
`build(input_shape)` with `add_weight` (called once, lazily, from the first input's shape), and
computes its output in `call(inputs, training=False)` from `tidu.functional` ops.
`get_config()` returns the constructor arguments, so `cls.from_config(layer.get_config())`
makes an equal, unbuilt layer.
"""
import re
from collections import defaultdict

import numpy as np

from tidu import backend
from tidu.autograd import Parameter, Tensor
from tidu.errors import NotBuiltError, ShapeError
from tidu.layers.symbolic import is_symbolic, symbolic_call

_name_counts = defaultdict(int)


def _snake(name):
    """Keras's automatic layer names: 'Dense' -> 'dense', 'Conv2D' -> 'conv2d',
    'MaxPooling2D' -> 'max_pooling2d', 'GRU' -> 'gru'."""
    s = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", s).lower()


def unique_name(base):
    """Keras-style names: 'dense', 'dense_1', 'dense_2', ..."""
    n = _name_counts[base]
    _name_counts[base] += 1
    return base if n == 0 else f"{base}_{n}"


def reset_names():
    """Start the automatic layer names afresh ('dense' again), as keras.backend.clear_session."""
    _name_counts.clear()


class Layer:
    """Base class of every layer; see the module docstring.

    Keyword arguments every layer takes: name, trainable, dtype, input_shape (the shape of one
    sample, without the batch axis, for the first layer of a Sequential), batch_input_shape,
    input_dim (Dense's shorthand for input_shape=(input_dim,)).

    accepts_integer_input: whether the layer takes integer arrays as they are (ids, as
    Embedding); False, the default, means a model casts integer inputs to floatx first.
    takes_input_list: whether the layer is called on a list of tensors (the merge layers), so
    a model hands it a list even when the list holds one tensor.
    """

    accepts_integer_input = False
    takes_input_list = False  # True for layers called on a list of inputs (the merges)

    def __init__(self, name=None, trainable=True, dtype=None, input_shape=None,
                 batch_input_shape=None, input_dim=None, **kwargs):
        if kwargs:
            raise TypeError(f"{type(self).__name__}: unexpected keyword argument(s) "
                            f"{', '.join(sorted(kwargs))}")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"{type(self).__name__}: expected name to be a str, got {name!r}")
        self.name = name or unique_name(_snake(type(self).__name__))
        self.trainable = bool(trainable)
        self.dtype = np.dtype(dtype).name if dtype is not None else None
        if input_dim is not None and input_shape is None:
            input_shape = (input_dim,)
        if batch_input_shape is not None and input_shape is None:
            input_shape = tuple(batch_input_shape)[1:]
        if input_shape is not None:
            if isinstance(input_shape, int):
                input_shape = (input_shape,)
            input_shape = tuple(input_shape)
            if not all(d is None or (isinstance(d, (int, np.integer)) and d > 0) for d in input_shape):
                raise ValueError(f"{type(self).__name__} '{self.name}': expected input_shape to be "
                                 f"a tuple of positive ints (without the batch axis), got {input_shape!r}")
        self.input_shape_arg = input_shape
        self.built = False
        self._params = []
        self._layers = []  # sublayers whose weights belong to this layer

    # --- weights -------------------------------------------------------------------------
    def add_weight(self, name, shape, initializer="zeros", trainable=True, regularizer=None,
                   constraint=None, dtype=None):
        """Make, register and return a Parameter named '<layer>/<name>'."""
        from tidu import initializers, regularizers

        dtype = dtype or self.dtype or backend.floatx()
        init = initializers.get(initializer)
        data = backend.as_array(init(tuple(shape), dtype=dtype), dtype)
        p = Parameter(data, name=f"{self.name}/{name}", trainable=trainable and self.trainable)
        p.regularizer = regularizers.get(regularizer) if regularizer is not None else None
        p.constraint = constraint
        self._params.append(p)
        return p

    @property
    def weights(self):
        """All weights in Keras' order: this layer's, then its sublayers'."""
        out = list(self._params)
        for layer in self._layers:
            out.extend(layer.weights)
        return out

    @property
    def trainable_weights(self):
        return [p for p in self.weights if p.trainable] if self.trainable else []

    @property
    def non_trainable_weights(self):
        return [p for p in self.weights if not p.trainable] if self.trainable else self.weights

    def get_weights(self):
        """Copies of the weights as NumPy arrays, in Keras' order."""
        return [backend.to_numpy(p.data).copy() for p in self.weights]

    def set_weights(self, weights):
        """Set every weight from NumPy arrays in Keras' order; all shapes are checked first."""
        params = self.weights
        weights = list(weights)
        if len(weights) != len(params):
            raise ValueError(f"{type(self).__name__} '{self.name}': expected {len(params)} weight "
                             f"arrays, got {len(weights)}")
        for p, w in zip(params, weights):
            if tuple(np.shape(w)) != p.shape:
                raise ShapeError(f"{type(self).__name__} '{self.name}': expected weight "
                                 f"'{p.name}' of shape {p.shape}, got {tuple(np.shape(w))}")
        for p, w in zip(params, weights):
            p.data[...] = backend.as_array(w, p.dtype)

    def count_params(self):
        if not self.built:
            raise NotBuiltError(f"{type(self).__name__} '{self.name}': count_params needs the layer "
                                f"built; call it on data or give input_shape")
        return int(sum(p.size for p in self.weights))

    # --- computation ---------------------------------------------------------------------
    def build(self, input_shape):
        """Make the weights for inputs of `input_shape` (batch axis included). Default: none."""

    def call(self, inputs, training=False):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must define call (abstract)")

    def __call__(self, inputs, training=False, **kwargs):
        if not isinstance(inputs, Tensor):
            if is_symbolic(inputs):                     # a functional model's graph
                return symbolic_call(self, inputs, training=training, **kwargs)
            if not isinstance(inputs, (list, tuple)):
                inputs = Tensor(inputs)
        if not self.built:
            shape = inputs.shape if isinstance(inputs, Tensor) else [x.shape for x in inputs]
            self.build(shape)
            self.built = True
        return self.call(inputs, training=training, **kwargs)

    def call_arguments(self, values):
        """What a model calls the layer on, given the list of its inputs' values: the one value,
        or the list (always a list for a layer that takes_input_list, as the merges)."""
        return values[0] if len(values) == 1 and not self.takes_input_list else list(values)

    def compute_output_shape(self, input_shape):
        """Output shape for `input_shape` (batch axis included, None allowed), by running a
        one-sample batch through the layer without recording a graph."""
        from tidu.autograd import no_grad

        shape = tuple(1 if d is None else d for d in input_shape)
        with no_grad():
            y = self(Tensor(np.zeros(shape, dtype=self.dtype or backend.floatx())))
        return (input_shape[0], *y.shape[1:])

    # --- configuration -------------------------------------------------------------------
    def get_config(self):
        """The constructor arguments (JSON-serializable); subclasses add theirs."""
        config = {"name": self.name, "trainable": self.trainable}
        if self.dtype is not None:
            config["dtype"] = self.dtype
        if self.input_shape_arg is not None:
            config["input_shape"] = list(self.input_shape_arg)
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r} built={self.built}>"
