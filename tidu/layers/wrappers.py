"""Layers that wrap another layer, as Keras' wrappers: their weights are the inner layers'.

    Bidirectional(rnn)    y = merge(rnn_forward(x), reverse(rnn_backward(reverse(x))))
    TimeDistributed(l)    y[:, t] = l(x[:, t]) for every step t, as one call on (N·T, ...)

The inner layer is given as a Layer or as its serialized form {'class_name', 'config'}, which
is rebuilt through tidu.layers.deserialize (only tidu's own layer classes, so a config cannot
name arbitrary code); get_config holds the inner layers in that form.
"""
import tidu.functional as F
from tidu.errors import ShapeError
from tidu.layers.base import Layer
from tidu.layers.utils import check_ndim

__all__ = ["Bidirectional", "TimeDistributed"]

_MERGE_MODES = ("concat", "sum", "mul", "ave", None)


def _layer_arg(owner, name, value):
    """A Layer: `value` itself, or one rebuilt from its {'class_name', 'config'}."""
    from tidu import layers  # the registry (this module is one of its members)

    if isinstance(value, Layer):
        return value
    if isinstance(value, dict):
        return layers.deserialize(value)
    raise TypeError(f"{owner}: expected {name} to be a Layer or its {{'class_name', 'config'}} "
                    f"form, got {value!r}")


def _copy(layer, **overrides):
    """A new, unbuilt layer of the same class and configuration, with `overrides` applied."""
    from tidu import layers

    config = layers.serialize(layer)
    config["config"].update(overrides)
    return layers.deserialize(config)


def _without_prefix(name, prefix):
    return name[len(prefix):] if name.startswith(prefix) else name


class _Wrapper(Layer):
    """The inner layers are sublayers (self._layers): their weights are this layer's, in
    order, and their activity penalties are its `losses`."""

    activation_name = None  # no activation of its own for a model to fuse with the loss

    @property
    def activity_regularizer(self):
        return next((r for r in (getattr(l, "activity_regularizer", None) for l in self._layers)
                     if r is not None), None)

    @property
    def losses(self):
        return [r for l in self._layers for r in getattr(l, "losses", [])]

    def _build_inner(self, layer, input_shape):
        if not layer.built:
            layer.build(tuple(input_shape))
            layer.built = True


class Bidirectional(_Wrapper):
    """Runs a recurrent layer over the sequence forwards and a copy of it backwards, and merges:

        y_f = forward_layer(x),   y_b = backward_layer(x)   (go_backwards: it reads x reversed)
        with return_sequences, y_b is reversed back so that y_b[:, t] belongs to step t;
        y = concat([y_f, y_b], −1) | y_f + y_b | y_f · y_b | (y_f + y_b)/2 | [y_f, y_b]
        for merge_mode 'concat' | 'sum' | 'mul' | 'ave' | None.

    As Keras, the forward layer is a copy of `layer` named 'forward_<name>' and the backward
    one (unless backward_layer is given) a copy with go_backwards=True named
    'backward_<name>'; weights are the forward layer's, then the backward layer's. With
    return_state the outputs are [y, *forward states, *backward states]; initial_state takes
    the forward states then the backward ones. merge_mode=None gives a list of two outputs
    (a layer-level result: models take layers with one output).
    """

    def __init__(self, layer, merge_mode="concat", backward_layer=None, **kwargs):
        layer = _layer_arg("Bidirectional", "layer", layer)
        if backward_layer is not None:
            backward_layer = _layer_arg("Bidirectional", "backward_layer", backward_layer)
        for what, inner in (("layer", layer), ("backward_layer", backward_layer)):
            if inner is not None and not hasattr(inner, "go_backwards"):
                raise ValueError(f"Bidirectional: expected {what} to be a recurrent layer "
                                 f"(SimpleRNN, LSTM, GRU), got {type(inner).__name__} "
                                 f"'{inner.name}'")
        if merge_mode not in _MERGE_MODES:
            raise ValueError(f"Bidirectional: expected merge_mode 'concat', 'sum', 'mul', 'ave' "
                             f"or None, got {merge_mode!r}")
        super().__init__(**kwargs)
        self.forward_layer = _copy(layer, name="forward_" + _without_prefix(layer.name, "forward_"))
        if backward_layer is None:
            backward_layer = _copy(layer, go_backwards=not layer.go_backwards,
                                   name="backward_" + _without_prefix(layer.name, "backward_"))
        self.backward_layer = backward_layer
        fwd, bwd = self.forward_layer, self.backward_layer
        if fwd.go_backwards == bwd.go_backwards:
            raise ValueError(f"Bidirectional: the forward and backward layers must differ in "
                             f"go_backwards, got {fwd.go_backwards} for both")
        for attr in ("return_sequences", "return_state"):
            if getattr(fwd, attr) != getattr(bwd, attr):
                raise ValueError(f"Bidirectional: the forward and backward layers must agree on "
                                 f"{attr}, got {getattr(fwd, attr)} (forward '{fwd.name}') and "
                                 f"{getattr(bwd, attr)} (backward '{bwd.name}')")
        self.merge_mode = merge_mode
        self.return_sequences, self.return_state = fwd.return_sequences, fwd.return_state
        self._layers = [fwd, bwd]

    def build(self, input_shape):
        check_ndim(f"Bidirectional '{self.name}'", input_shape, 3, "(batch, time, features)")
        self._build_inner(self.forward_layer, input_shape)
        self._build_inner(self.backward_layer, input_shape)

    def call(self, inputs, training=False, initial_state=None):
        forward_state = backward_state = None
        if initial_state is not None:
            states = list(initial_state)
            half = len(states) // 2
            forward_state, backward_state = states[:half], states[half:]
        y = self.forward_layer(inputs, training=training, initial_state=forward_state)
        y_rev = self.backward_layer(inputs, training=training, initial_state=backward_state)
        states = []
        if self.return_state:
            states = [*y[1:], *y_rev[1:]]
            y, y_rev = y[0], y_rev[0]
        if self.return_sequences:
            y_rev = y_rev[:, ::-1]
        output = self._merge(y, y_rev)
        if self.return_state:
            return [*output, *states] if self.merge_mode is None else [output, *states]
        return output

    def _merge(self, y, y_rev):
        mode = self.merge_mode
        if mode == "concat":
            return F.concatenate([y, y_rev], axis=-1)
        if mode == "sum":
            return y + y_rev
        if mode == "mul":
            return y * y_rev
        if mode == "ave":
            return (y + y_rev) * 0.5
        return [y, y_rev]

    def compute_output_shape(self, input_shape):
        shape = self.forward_layer.compute_output_shape(input_shape)
        back = self.backward_layer.compute_output_shape(input_shape)
        states, back_states = [], []
        if self.return_state:
            shape, states = shape[0], list(shape[1:])
            back, back_states = back[0], list(back[1:])
        if self.merge_mode == "concat":     # the two layers may differ in units here
            shape = (*shape[:-1], shape[-1] + back[-1])
        outputs = [shape, back] if self.merge_mode is None else [shape]
        if self.return_state:
            return [*outputs, *states, *back_states]
        return outputs if self.merge_mode is None else shape

    def get_config(self):
        from tidu import layers

        return {**super().get_config(), "layer": layers.serialize(self.forward_layer),
                "merge_mode": self.merge_mode,
                "backward_layer": layers.serialize(self.backward_layer)}


class TimeDistributed(_Wrapper):
    """y[:, t] = layer(x[:, t]) for t = 1..T: (N, T, ...) -> (N, T, ...'), the same layer (the
    same weights) at every step; run as one call on x reshaped to (N·T, ...), then reshaped
    back. Its weights are the inner layer's."""

    def __init__(self, layer, **kwargs):
        layer = _layer_arg("TimeDistributed", "layer", layer)
        super().__init__(**kwargs)
        self.layer = layer
        self._layers = [layer]

    def build(self, input_shape):
        check_ndim(f"TimeDistributed '{self.name}'", input_shape, (3,),
                   "(batch, time, ...)")
        n, t = input_shape[:2]
        self._build_inner(self.layer, (None if n is None or t is None else n * t, *input_shape[2:]))

    def call(self, inputs, training=False):
        if inputs.ndim < 3:
            raise ShapeError(f"TimeDistributed '{self.name}' expected input with at least 3 "
                             f"dimensions (batch, time, ...), got shape {inputs.shape}")
        n, t = inputs.shape[:2]
        y = self.layer(F.reshape(inputs, (n * t, *inputs.shape[2:])), training=training)
        if isinstance(y, (list, tuple)):
            raise ValueError(f"TimeDistributed '{self.name}': the inner layer "
                             f"'{self.layer.name}' gives {len(y)} outputs; expected one")
        return F.reshape(y, (n, t, *y.shape[1:]))

    def compute_output_shape(self, input_shape):
        n, t, *rest = input_shape
        inner = self.layer.compute_output_shape((None, *rest))
        return (n, t, *inner[1:])

    def get_config(self):
        from tidu import layers

        return {**super().get_config(), "layer": layers.serialize(self.layer)}
