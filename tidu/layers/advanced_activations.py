"""Activations as layers (with their own arguments) and Maxout.

    LeakyReLU  y = x if x >= 0 else negative_slope·x        (negative_slope=0.3; Keras 2: alpha)
    ELU        y = x if x > 0 else α(eˣ − 1)                 (alpha=1.0)
    ReLU       y = min(x, max_value) if x >= threshold else negative_slope·(x − threshold)
    Softmax    y_i = e^{x_i} / Σ_j e^{x_j} along `axis`
    PReLU      y = x if x >= 0 else α·x, α a learned weight per entry (shared along shared_axes)
    Maxout     y_k = max_{j < pieces} (x W + b)_{k, j}: a Dense to units·pieces, then the max
               of each unit's `pieces` (Goodfellow et al., 2013); features grouped (units, pieces)

Like Activation, the element-wise ones have `pre_activation` (the identity) and
`activation_name`, so a model can fuse a final Softmax layer with its cross-entropy.
"""
import tidu.functional as F
from tidu._checks import check_nonnegative, check_number
from tidu import activations, initializers, regularizers
from tidu.errors import ShapeError
from tidu.layers.base import Layer
from tidu.layers.core import ActivityRegularized, _ElementwiseActivation
from tidu.layers.utils import (add_kernel_and_bias, check_constraint, check_ndim,
                               check_positive_int, kernel_and_bias_config, layer_label,
                               serialize_constraint, serialize_initializer,
                               serialize_regularizer, set_kernel_and_bias_options)

__all__ = ["LeakyReLU", "ELU", "ReLU", "Softmax", "Maxout", "PReLU"]


def _check_number(layer, name, value, minimum=None):
    """A real number, >= minimum when given (0 is the only minimum used)."""
    return check_number(layer, name, value) if minimum is None else check_nonnegative(layer, name, value)


class LeakyReLU(_ElementwiseActivation):
    """y = x if x >= 0 else negative_slope·x."""

    activation_name = "leaky_relu"

    def __init__(self, negative_slope=0.3, alpha=None, **kwargs):
        if alpha is not None:  # Keras 2's name
            negative_slope = alpha
        self.negative_slope = _check_number("LeakyReLU", "negative_slope", negative_slope, 0)
        super().__init__(**kwargs)

    def activation(self, x):
        return F.leaky_relu(x, alpha=self.negative_slope)

    def get_config(self):
        return {**super().get_config(), "negative_slope": self.negative_slope}


class ELU(_ElementwiseActivation):
    """y = x if x > 0 else alpha·(eˣ − 1)."""

    activation_name = "elu"

    def __init__(self, alpha=1.0, **kwargs):
        self.alpha = _check_number("ELU", "alpha", alpha)
        super().__init__(**kwargs)

    def activation(self, x):
        return F.elu(x, alpha=self.alpha)

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha}


class ReLU(_ElementwiseActivation):
    """y = min(x, max_value) for x >= threshold, negative_slope·(x − threshold) below."""

    activation_name = "relu"

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kwargs):
        self.max_value = None if max_value is None else _check_number("ReLU", "max_value", max_value, 0)
        self.negative_slope = _check_number("ReLU", "negative_slope", negative_slope, 0)
        self.threshold = _check_number("ReLU", "threshold", threshold)
        super().__init__(**kwargs)
        plain = self.max_value is None and self.negative_slope == 0 and self.threshold == 0
        self.activation_name = "relu" if plain else None

    def activation(self, x):
        return activations.relu(x, negative_slope=self.negative_slope, max_value=self.max_value,
                                threshold=self.threshold)

    def get_config(self):
        return {**super().get_config(), "max_value": self.max_value,
                "negative_slope": self.negative_slope, "threshold": self.threshold}


class Softmax(_ElementwiseActivation):
    """y_i = e^{x_i} / Σ_j e^{x_j} along `axis`."""

    def __init__(self, axis=-1, **kwargs):
        if isinstance(axis, bool) or not isinstance(axis, int):
            raise ValueError(f"Softmax: expected axis to be an int, got {axis!r}")
        self.axis = axis
        super().__init__(**kwargs)
        # fusable with cross-entropy only along the class axis
        self.activation_name = "softmax" if axis == -1 else None

    def activation(self, x):
        return F.softmax(x, axis=self.axis)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


class Maxout(ActivityRegularized, Layer):
    """y_k = max_{j < pieces} z_{k, j}, z = inputs @ kernel + bias viewed as (..., units, pieces).

    Weights, in order: kernel (D, units·pieces), bias (units·pieces,).
    """

    def __init__(self, units, pieces, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, bias_constraint=None,
                 **kwargs):
        units = check_positive_int("Maxout", "units", units)
        pieces = check_positive_int("Maxout", "pieces", pieces)
        super().__init__(**kwargs)
        self.units, self.pieces = units, pieces
        set_kernel_and_bias_options(self, "Maxout", use_bias, kernel_initializer, bias_initializer,
                                    kernel_regularizer, bias_regularizer, activity_regularizer,
                                    kernel_constraint, bias_constraint)

    def _label(self):
        return f"Maxout({self.units}, {self.pieces}) '{self.name}'"

    def build(self, input_shape):
        check_ndim(self._label(), input_shape, (2,), "(batch, ..., features)")
        d = self.input_dim = input_shape[-1]
        width = self.units * self.pieces
        add_kernel_and_bias(self, (d, width), (width,))

    def call(self, inputs, training=False):
        if inputs.ndim < 2 or inputs.shape[-1] != self.input_dim:
            raise ShapeError(f"{self._label()} expected input with last dimension "
                             f"{self.input_dim}, got shape {inputs.shape}")
        z = F.dense(inputs, self.kernel, self.bias)
        return self._regularize_activity(F.maxout(z, self.pieces, axis=-1))

    def compute_output_shape(self, input_shape):
        return (*tuple(input_shape)[:-1], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "pieces": self.pieces,
                **kernel_and_bias_config(self, "Maxout")}


class PReLU(Layer):
    """y = relu(x) − α·relu(−x), i.e. x for x >= 0 and α·x below, with α a weight learned per
    entry of a sample (He et al., 2015).

    Weight: alpha, shaped like one sample (input_shape[1:]) with 1 on the shared_axes (axes
    counted with the batch axis 0: shared_axes=[1, 2] gives one α per channel of an image).
    alpha_initializer='zeros' starts as relu.
    """

    def __init__(self, alpha_initializer="zeros", alpha_regularizer=None, alpha_constraint=None,
                 shared_axes=None, **kwargs):
        if shared_axes is not None:
            shared_axes = list(shared_axes) if isinstance(shared_axes, (list, tuple)) else [shared_axes]
            if not all(isinstance(a, int) and not isinstance(a, bool) and a >= 1
                       for a in shared_axes):
                raise ValueError(f"PReLU: expected shared_axes to be axes >= 1 (0 is the batch "
                                 f"axis), got shared_axes={shared_axes!r}")
        alpha_initializer = initializers.get(alpha_initializer)
        alpha_regularizer = regularizers.get(alpha_regularizer)
        check_constraint("PReLU", "alpha_constraint", alpha_constraint)
        super().__init__(**kwargs)
        self.alpha_initializer, self.alpha_regularizer = alpha_initializer, alpha_regularizer
        self.alpha_constraint, self.shared_axes = alpha_constraint, shared_axes
        self.alpha = None

    def build(self, input_shape):
        check_ndim(layer_label(self), input_shape, (2,), "(batch, ...)")
        shape = list(input_shape[1:])
        for a in self.shared_axes or ():
            if a >= len(input_shape):
                raise ShapeError(f"{layer_label(self)} shared axis {a} does not exist in an "
                                 f"input of shape {tuple(input_shape)}")
            shape[a - 1] = 1
        if None in shape:
            raise ShapeError(f"{layer_label(self)} needs every non-shared axis known to make "
                             f"alpha, got input shape {tuple(input_shape)}")
        self.alpha = self.add_weight("alpha", tuple(shape), self.alpha_initializer,
                                     regularizer=self.alpha_regularizer,
                                     constraint=self.alpha_constraint)

    def call(self, inputs, training=False):
        expected = (inputs.ndim == self.alpha.ndim + 1 and all(
            a in (1, n) for a, n in zip(self.alpha.shape, inputs.shape[1:])))
        if not expected:
            raise ShapeError(f"{layer_label(self)} has alpha of shape {self.alpha.shape}, "
                             f"which does not fit an input of shape {inputs.shape}")
        return F.relu(inputs) - self.alpha * F.relu(-inputs)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(),
                "alpha_initializer": serialize_initializer(self.alpha_initializer),
                "alpha_regularizer": serialize_regularizer(self.alpha_regularizer),
                "alpha_constraint": serialize_constraint("PReLU", "alpha_constraint",
                                                         self.alpha_constraint),
                "shared_axes": self.shared_axes}
