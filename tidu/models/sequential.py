"""Sequential: a plain stack of layers, each feeding the next.

    network = Sequential()
    network.add(Dense(512, activation="relu", input_shape=(784,)))
    network.add(Dense(10, activation="softmax"))

The weights are made as soon as the input shape is known: at `add` when the first layer has
`input_shape=` (or after `add(Input(shape))`), else lazily at the first fit/predict/call from
the data's shape.
"""
from tidu.layers.base import Layer
from tidu.layers.input_layer import InputLayer, SymbolicTensor
from tidu.models import graph
from tidu.models.model import Model, deserialize_layer, serialize_layer

__all__ = ["Sequential"]


class Sequential(Model):
    """A Model whose layers form one chain: output = layer_k(... layer_1(inputs))."""

    def __init__(self, layers=None, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        if layers is not None and not isinstance(layers, (list, tuple)):
            raise TypeError(f"Sequential: expected a list of layers, got {type(layers).__name__}")
        for layer in layers or []:
            self.add(layer)

    def add(self, layer):
        """Append a layer (or set the input shape with an Input / InputLayer)."""
        if isinstance(layer, SymbolicTensor):
            if not isinstance(layer.layer, InputLayer):
                raise TypeError("Sequential.add: expected a Layer or an Input(...); a tensor made "
                                "by calling layers belongs in a functional Model(inputs, outputs)")
            layer = layer.layer
        if isinstance(layer, InputLayer):
            if self._layers:
                raise ValueError(f"Sequential '{self.name}': an Input must be added before any "
                                 f"other layer")
            self._input_shape = (None, *layer.input_shape_arg)
            return
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add: expected a Layer, got {type(layer).__name__}: {layer!r}")
        if layer is self:
            raise ValueError("Sequential.add: cannot add a model to itself")
        if any(l.name == layer.name for l in self._layers):
            raise ValueError(f"Sequential '{self.name}': layer names must be unique; there is "
                             f"already a layer named {layer.name!r}")
        if not self._layers and self._input_shape is None and layer.input_shape_arg is not None:
            self._input_shape = (None, *layer.input_shape_arg)
        self._layers.append(layer)
        self._invalidate()
        if self._input_shape is not None:
            try:
                self._build_from(len(self._layers) - 1)
            except Exception:
                self._layers.pop()
                self._invalidate()
                raise

    def pop(self):
        """Remove the last layer."""
        if not self._layers:
            raise TypeError(f"Sequential '{self.name}': there are no layers to pop")
        layer = self._layers.pop()
        self._output_shapes.pop(layer.name, None)
        self._invalidate()
        return layer

    def _invalidate(self):
        self._set_steps(graph.chain(self._layers))
        if self.train_step is not None:
            self.train_step.forget_probe()

    def _build_from(self, start):
        """Build layers[start:] (weights from the incoming shape) and record output shapes."""
        shape = self._input_shape if start == 0 else self._output_shapes[self._layers[start - 1].name]
        for layer in self._layers[start:]:
            if not layer.built:
                layer.build(tuple(shape))
                layer.built = True
            shape = tuple(layer.compute_output_shape(tuple(shape)))
            self._output_shapes[layer.name] = shape
        self.built = True

    def build(self, input_shape=None):
        """Make every layer's weights for inputs of `input_shape` (batch axis first, may be None)."""
        if input_shape is None:
            if self._input_shape is None:
                raise ValueError(f"Sequential '{self.name}': build needs an input shape; give the "
                                 f"first layer input_shape=... or call build((None, ...))")
        else:
            self._input_shape = (None, *tuple(input_shape)[1:])
        if not self._layers:
            raise ValueError(f"Sequential '{self.name}': the model has no layers to build")
        self._build_from(0)

    @property
    def input_shape(self):
        return self._input_shape

    @property
    def output_shape(self):
        self._require_built("output_shape")
        return self._output_shapes[self._layers[-1].name]

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape)
        for layer in self._layers:
            shape = tuple(layer.compute_output_shape(shape))
        return shape

    def get_config(self):
        return {"name": self.name,
                "layers": [serialize_layer(layer) for layer in self._layers],
                "build_input_shape": None if self._input_shape is None else list(self._input_shape)}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        model = cls(name=config.get("name"))
        for lc in config.get("layers", []):
            model.add(deserialize_layer(lc, custom_objects))
        shape = config.get("build_input_shape")
        if shape is not None and not model.built and model._layers:
            model.build(tuple(shape))
        return model
