"""Activations as layers (with their own arguments) and Maxout.

    LeakyReLU  y = x if x >= 0 else negative_slope·x        (negative_slope=0.3; Keras 2: alpha)
    ELU        y = x if x > 0 else α(eˣ − 1)                 (alpha=1.0)
    ReLU       y = min(x, max_value) if x >= threshold else negative_slope·(x − threshold)
    Softmax    y_i = e^{x_i} / Σ_j e^{x_j} along `axis`
    Maxout     y_k = max_{j < pieces} (x W + b)_{k, j}: a Dense to units·pieces, then the max
               of each unit's `pieces` (Goodfellow et al., 2013); features grouped (units, pieces)

Like Activation, the element-wise ones have `pre_activation` (the identity) and
`activation_name`, so a model can fuse a final Softmax layer with its cross-entropy.
"""
import tidu.functional as F
from tidu._checks import check_nonnegative, check_number
from tidu import activations
from tidu.errors import ShapeError
from tidu.layers.base import Layer
from tidu.layers.core import ActivityRegularized, _ElementwiseActivation
from tidu.layers.utils import (add_kernel_and_bias, check_ndim, check_positive_int,
                               kernel_and_bias_config, set_kernel_and_bias_options)

__all__ = ["LeakyReLU", "ELU", "ReLU", "Softmax", "Maxout"]


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
