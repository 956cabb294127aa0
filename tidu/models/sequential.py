"""Sequential: a plain stack of layers, each feeding the next.

    network = Sequential()
    network.add(Dense(512, activation="relu", input_shape=(784,)))
    network.add(Dense(10, activation="softmax"))

The weights are made as soon as the input shape is known: at `add` when the first layer has
`input_shape=` (or after `add(Input(shape))`), else lazily at the first fit/predict/call from
the data's shape.
"""
from tidu import activations
from tidu.autograd import Tensor
from tidu.layers.base import Layer
from tidu.layers.convolutional import Conv2D
from tidu.layers.input_layer import InputLayer, SymbolicTensor
from tidu.layers.pooling import MaxPooling2D
from tidu.models.model import Model, _deserialize_layer, _serialize_layer, _with_layer

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
        self._probe_key, self._fused = None, None
        for attr in ("_trainable",):
            self.__dict__.pop(attr, None)

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

    def _run(self, x, training=False, logits=False):
        """The network's output for a Tensor x (with logits=True, the last layer's
        pre-activation). A Conv2D with relu directly followed by a MaxPooling2D runs as conv,
        pool, relu: the same values and gradients, relu on a map 4× smaller (`_pools_first`)."""
        layers = self._layers
        end = len(layers) - 1 if logits else len(layers)  # the layers run in full
        h, i = x, 0
        try:
            while i < end:
                layer = layers[i]
                if i + 1 < end and _pools_first(layer, layers[i + 1], h):
                    z = layer.pre_activation(h, training=training)
                    i += 1
                    h = layer.activation(layers[i](z, training=training))
                else:
                    h = layer(h, training=training)
                i += 1
            return layers[end].pre_activation(h, training=training) if logits else h
        except (ValueError, TypeError) as e:
            new = _with_layer(layers[i], e)
            if new is e:
                raise
            raise new from e

    def _output_layer(self):
        if not self._layers:
            raise ValueError(f"Sequential '{self.name}': the model has no layers")
        return self._layers[-1]

    def get_config(self):
        return {"name": self.name,
                "layers": [_serialize_layer(layer, _layers_module()) for layer in self._layers],
                "build_input_shape": None if self._input_shape is None else list(self._input_shape)}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        model = cls(name=config.get("name"))
        for lc in config.get("layers", []):
            model.add(_deserialize_layer(lc, custom_objects))
        shape = config.get("build_input_shape")
        if shape is not None and not model.built and model._layers:
            model.build(tuple(shape))
        return model


# Activations φ with max(φ(x₁), …, φ(xₖ)) = φ(max(x₁, …, xₖ)) and the same gradient, exactly in
# floating point: relu only. See _pools_first.
_COMMUTES_WITH_MAX_POOL = (activations.relu,)


def _pools_first(conv, pool, h):
    """Whether Sequential may run conv → pool as conv.pre_activation → pool → conv.activation.

    For z the conv's pre-activation and φ = relu, computed as φ(z) = z·[z > 0]:
      forward:  φ is non-decreasing, so on any window w, max_w φ(z) = φ(max_w z) (φ of the
                maximum is ≥ φ of every element and is one of them). Bit for bit: on z > 0, φ is
                z itself; if max_w z ≤ 0 both sides are a zero (at most the sign of 0 differs).
      backward: pooling after φ sends gy to the first maximum m of φ(z) over w, times φ'(z_m);
                pooling before sends gy·φ'(max_w z) to the first maximum of z. If max_w z > 0,
                φ(z_i) = φ(max) only where z_i = max (φ is z there, and ≤ 0 < max elsewhere),
                so both pick the same element, with φ' = 1. If max_w z ≤ 0, φ' = 0 (relu'(0) = 0,
                as F.relu's mask [z > 0]) at every element, and both send 0 to the whole window,
                ties or not. So gradients agree exactly (up to the sign of zeros).
    Activations that are only mathematically non-decreasing are left out: float rounding or
    saturation (sigmoid, tanh, elu, softplus, leaky_relu's α·z) can give distinct z_i the same
    φ(z_i), and then the first maximum of φ(z) need not be the first maximum of z, so the
    gradient would land on another element. A NaN gives NaN on both sides; a −∞ pre-activation
    would not (relu's mask gives −∞·0 = NaN), but only an overflowed conv can produce one.

    The swap is invisible from outside: it applies only to these exact layer classes, a built
    conv with no activity regularizer (which would observe the conv's output), and Tensors.
    The pooled map is 4× smaller for 2×2 windows, so relu forward and backward cost 4× less.
    """
    return (type(conv) is Conv2D and type(pool) is MaxPooling2D and conv.built
            and conv.activation in _COMMUTES_WITH_MAX_POOL and conv.activity_regularizer is None
            and isinstance(h, Tensor))


def _layers_module():
    from tidu import layers
    return layers
