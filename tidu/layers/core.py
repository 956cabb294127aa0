"""Core layers: Dense, Activation, Flatten, Reshape, Dropout, Identity.

Contract with the model (softmax + cross-entropy fusion): every layer that takes
`activation=` has `self.activation` (the function), `self.activation_name` (its Keras name,
None for an unregistered callable) and `pre_activation(inputs, training=False)`, the output
before the activation, so that `call(x) == activation(pre_activation(x))`.
"""
import math
import threading

import tidu.functional as F
from tidu import activations, backend
from tidu.errors import ShapeError
from tidu.layers.base import Layer
from tidu.layers.utils import (add_kernel_and_bias, check_ndim, check_positive_int, check_rate,
                               kernel_and_bias_config, serialize_activation,
                               set_kernel_and_bias_options)

__all__ = ["Dense", "Activation", "Flatten", "Reshape", "Dropout", "Identity"]


class ActivityRegularized:
    """Mixin: `activity_regularizer(outputs)` of the last call is in `layer.losses` (a list of
    0-d Tensors) for the model to add to the loss, as Keras 3 does (no division by the batch)."""

    activity_regularizer = None
    _activity_losses = ()

    def _regularize_activity(self, outputs):
        if self.activity_regularizer is not None:
            self._activity_losses = [self.activity_regularizer(outputs)]
        return outputs

    @property
    def losses(self):
        return list(self._activity_losses)


class Dense(ActivityRegularized, Layer):
    """outputs = activation(inputs @ kernel + bias): (N, ..., D) -> (N, ..., units).

    Weights, in Keras' order: kernel (D, units), bias (units,).
    """

    def __init__(self, units, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        units = check_positive_int("Dense", "units", units)
        super().__init__(**kwargs)
        self.units = units
        self.activation = activations.get(activation)
        self.activation_name = activations.name_of(self.activation)
        set_kernel_and_bias_options(self, "Dense", use_bias, kernel_initializer, bias_initializer,
                                    kernel_regularizer, bias_regularizer, activity_regularizer,
                                    kernel_constraint, bias_constraint)

    def _label(self):
        return f"Dense({self.units}) '{self.name}'"

    def build(self, input_shape):
        check_ndim(self._label(), input_shape, (2,), "(batch, ..., features)")
        d = self.input_dim = input_shape[-1]
        add_kernel_and_bias(self, (d, self.units), (self.units,))

    def _check_input(self, inputs):
        if inputs.ndim < 2 or inputs.shape[-1] != self.input_dim:
            raise ShapeError(f"{self._label()} expected input with last dimension "
                             f"{self.input_dim}, got shape {inputs.shape}")

    def pre_activation(self, inputs, training=False):
        """inputs @ kernel + bias."""
        self._check_input(inputs)
        return F.dense(inputs, self.kernel, self.bias)

    def call(self, inputs, training=False):
        if self.activation is activations.relu and \
                type(self).pre_activation is Dense.pre_activation:   # one op: F.dense_relu
            self._check_input(inputs)
            return self._regularize_activity(F.dense_relu(inputs, self.kernel, self.bias))
        return self._regularize_activity(self.activation(self.pre_activation(inputs, training)))

    def compute_output_shape(self, input_shape):
        """(..., units), or what the activation makes of it (activation='maxout' halves it)."""
        return activations.output_shape(self.activation, (*tuple(input_shape)[:-1], self.units),
                                        self.dtype)

    def get_config(self):
        return {**super().get_config(), "units": self.units,
                "activation": serialize_activation(self.activation),
                **kernel_and_bias_config(self, "Dense")}


class _ElementwiseActivation(Layer):
    """outputs = activation(inputs), shape unchanged; pre_activation is the identity. A subclass
    provides `activation` (a function or a method) and `activation_name`."""

    activation_name = None

    def pre_activation(self, inputs, training=False):
        return inputs

    def call(self, inputs, training=False):
        return self.activation(inputs)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)


class Activation(_ElementwiseActivation):
    """outputs = activation(inputs): shape unchanged, except for a shape-changing activation
    (maxout, or any callable: its output shape is found by applying it)."""

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.get(activation)
        self.activation_name = activations.name_of(self.activation)

    def compute_output_shape(self, input_shape):
        """The input's shape, or what a shape-changing activation (maxout) makes of it."""
        return activations.output_shape(self.activation, input_shape, self.dtype)

    def get_config(self):
        return {**super().get_config(), "activation": serialize_activation(self.activation)}


class Identity(Layer):
    """outputs = inputs."""

    def call(self, inputs, training=False):
        return inputs

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)


class Flatten(Layer):
    """(N, d1, d2, ...) -> (N, d1·d2·...); (N,) -> (N, 1)."""

    def __init__(self, data_format=None, **kwargs):
        if data_format not in (None, "channels_last"):
            raise ValueError(f"Flatten: expected data_format 'channels_last' or None, "
                             f"got {data_format!r}")
        super().__init__(**kwargs)

    def call(self, inputs, training=False):
        check_ndim(f"Flatten '{self.name}'", inputs, (1,), "(batch, ...)")
        return F.reshape(inputs, (inputs.shape[0], -1))

    def compute_output_shape(self, input_shape):
        rest = tuple(input_shape)[1:]
        size = None if None in rest else math.prod(rest)
        return (input_shape[0], size)


class Reshape(Layer):
    """(N, ...) -> (N, *target_shape); one entry of target_shape may be -1 (inferred)."""

    def __init__(self, target_shape, **kwargs):
        if isinstance(target_shape, int):
            target_shape = (target_shape,)
        try:
            target_shape = tuple(target_shape)
        except TypeError:
            raise ValueError(f"Reshape: expected target_shape to be a tuple of ints, "
                             f"got {target_shape!r}") from None
        if (not all(isinstance(d, int) and (d > 0 or d == -1) for d in target_shape)
                or target_shape.count(-1) > 1):
            raise ValueError(f"Reshape: expected target_shape to be positive ints with at most "
                             f"one -1, got {target_shape!r}")
        super().__init__(**kwargs)
        self.target_shape = target_shape

    def _resolve(self, rest):
        """target_shape with the -1 filled in for a sample of shape `rest`; ShapeError if the
        sizes differ."""
        size = math.prod(rest)
        known = math.prod(d for d in self.target_shape if d != -1)
        if -1 in self.target_shape:
            if known == 0 or size % known:
                raise ShapeError(f"Reshape{self.target_shape} '{self.name}' cannot reshape a "
                                 f"sample of shape {rest} ({size} values) to {self.target_shape}")
            return tuple(size // known if d == -1 else d for d in self.target_shape)
        if known != size:
            raise ShapeError(f"Reshape{self.target_shape} '{self.name}' cannot reshape a sample "
                             f"of shape {rest} ({size} values) to {self.target_shape}")
        return self.target_shape

    def call(self, inputs, training=False):
        check_ndim(f"Reshape '{self.name}'", inputs, (1,), "(batch, ...)")
        return F.reshape(inputs, (inputs.shape[0], *self._resolve(inputs.shape[1:])))

    def compute_output_shape(self, input_shape):
        rest = tuple(input_shape)[1:]
        if None in rest:
            return (input_shape[0], *(None if d == -1 else d for d in self.target_shape))
        return (input_shape[0], *self._resolve(rest))

    def get_config(self):
        return {**super().get_config(), "target_shape": list(self.target_shape)}


# The generator a thread's unseeded Dropout layers draw from while it runs one half of a
# training step's batch (tidu.training.step): each half its own, so that two threads never
# draw from one generator in an order that depends on timing.
half_rng = threading.local()


class Dropout(Layer):
    """Sets a fraction `rate` of the inputs to 0 while training.

    mode 'inverted' (Keras): training y = x·m/(1 − rate), m ~ Bernoulli(1 − rate); inference y = x.
    mode 'classic' (the notes, Srivastava et al.): training y = x·m; inference y = (1 − rate)·x.
    Both give E[y] = the inference output. noise_shape (None entries = the input's size) shares
    one mask along the axes of size 1 (e.g. (N, 1, C) drops whole channels of a sequence).
    seed: an int gives the layer its own generator (reproducible masks), None the package's.
    """

    _modes = ("inverted", "classic")

    def __init__(self, rate, noise_shape=None, seed=None, mode="inverted", **kwargs):
        rate = check_rate("Dropout", "rate", rate)
        if mode not in self._modes:
            raise ValueError(f"Dropout: expected mode in {self._modes}, got {mode!r}")
        if noise_shape is not None:
            noise_shape = tuple(noise_shape)
            if not all(d is None or (isinstance(d, int) and d > 0) for d in noise_shape):
                raise ValueError(f"Dropout: expected noise_shape to be positive ints or None, "
                                 f"got {noise_shape!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise TypeError(f"Dropout: expected seed to be an int or None, got {seed!r}")
        super().__init__(**kwargs)
        self.rate, self.noise_shape, self.seed, self.mode = rate, noise_shape, seed, mode
        # the generator of the masks: its own for a seed, else (None) the one fit lends it
        self.rng = backend.rng(seed) if seed is not None else None

    def call(self, inputs, training=False):
        noise_shape = None
        if self.noise_shape is not None:
            if len(self.noise_shape) != inputs.ndim:
                raise ShapeError(f"Dropout '{self.name}' noise_shape {self.noise_shape} does not "
                                 f"fit an input of shape {inputs.shape}")
            noise_shape = tuple(n if d is None else d for d, n in zip(self.noise_shape, inputs.shape))
        rng = self.rng if self.seed is not None else getattr(half_rng, "rng", None) or self.rng
        return F.dropout(inputs, self.rate, training=bool(training), mode=self.mode,
                         rng=rng, noise_shape=noise_shape)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = {**super().get_config(), "rate": self.rate, "seed": self.seed, "mode": self.mode}
        config["noise_shape"] = None if self.noise_shape is None else list(self.noise_shape)
        return config
