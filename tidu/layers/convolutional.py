"""Convolution layers (channels-last, NHWC, as Keras' default)."""
import tidu.functional as F
from tidu import activations
from tidu.errors import ShapeError
from tidu.layers.base import Layer
from tidu.layers.core import ActivityRegularized
from tidu.layers.utils import (add_kernel_and_bias, check_data_format, check_ndim,
                               check_positive_int, conv_output_length, kernel_and_bias_config,
                               normalize_padding, normalize_tuple, serialize_activation,
                               set_kernel_and_bias_options)

__all__ = ["Conv2D"]


class Conv2D(ActivityRegularized, Layer):
    """outputs = activation(conv2d(inputs, kernel) + bias): (N, H, W, C) -> (N, H', W', filters).

    y[n, i, j, f] = Σ_{a, b, c} x[n, i·sh + a, j·sw + b, c] · kernel[a, b, c, f] + bias[f]
    (x zero-padded for padding='same'; with dilation_rate d the taps are i·sh + a·dh, ...).
    H' = ⌊(H − span)/sh⌋ + 1 ('valid', span = (kh − 1)·dh + 1) or ⌈H/sh⌉ ('same').
    Weights, in Keras' order: kernel (kh, kw, C, filters), bias (filters,).
    """

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", data_format=None,
                 dilation_rate=(1, 1), groups=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        filters = check_positive_int("Conv2D", "filters", filters)
        kernel_size = normalize_tuple("Conv2D", "kernel_size", kernel_size)
        strides = normalize_tuple("Conv2D", "strides", strides)
        padding = normalize_padding("Conv2D", padding)
        check_data_format("Conv2D", data_format)
        dilation_rate = normalize_tuple("Conv2D", "dilation_rate", dilation_rate)
        if dilation_rate != (1, 1) and strides != (1, 1):
            raise ValueError(f"Conv2D: dilation_rate {dilation_rate} needs strides (1, 1) (as "
                             f"Keras), got strides {strides}")
        if groups != 1:
            raise ValueError(f"Conv2D: groups other than 1 is not supported, got {groups!r}")
        super().__init__(**kwargs)
        self.filters, self.kernel_size, self.strides = filters, kernel_size, strides
        self.padding, self.dilation_rate = padding, dilation_rate
        self.activation = activations.get(activation)
        self.activation_name = activations.name_of(self.activation)
        set_kernel_and_bias_options(self, "Conv2D", use_bias, kernel_initializer, bias_initializer,
                                    kernel_regularizer, bias_regularizer, activity_regularizer,
                                    kernel_constraint, bias_constraint)

    def _label(self):
        return f"Conv2D({self.filters}, {self.kernel_size}) '{self.name}'"

    def build(self, input_shape):
        check_ndim(self._label(), input_shape, 4, "(batch, height, width, channels)")
        c = self.input_channels = input_shape[-1]
        add_kernel_and_bias(self, (*self.kernel_size, c, self.filters), (self.filters,))

    def pre_activation(self, inputs, training=False):
        """conv2d(inputs, kernel) + bias."""
        if inputs.ndim != 4 or inputs.shape[-1] != self.input_channels:
            raise ShapeError(f"{self._label()} expected input (batch, height, width, "
                             f"{self.input_channels}), got shape {inputs.shape}")
        if self.padding == "valid" and any(n < k for n, k in zip(inputs.shape[1:3], self._span())):
            raise ShapeError(f"{self._label()} input of height × width {inputs.shape[1:3]} is "
                             f"smaller than the kernel's span {self._span()} with padding='valid'")
        return F.conv2d(inputs, self.kernel, self.bias, strides=self.strides, padding=self.padding,
                        dilation_rate=self.dilation_rate)

    def _span(self):
        """The dilated kernel's extent: (k − 1)·d + 1 per axis."""
        return tuple((k - 1) * d + 1 for k, d in zip(self.kernel_size, self.dilation_rate))

    def call(self, inputs, training=False):
        return self._regularize_activity(self.activation(self.pre_activation(inputs, training)))

    def compute_output_shape(self, input_shape):
        n, h, w, _ = input_shape
        (kh, kw), (sh, sw) = self._span(), self.strides
        shape = (n, conv_output_length(h, kh, sh, self.padding),
                 conv_output_length(w, kw, sw, self.padding), self.filters)
        return activations.output_shape(self.activation, shape, self.dtype)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters,
                "kernel_size": list(self.kernel_size), "strides": list(self.strides),
                "padding": self.padding, "dilation_rate": list(self.dilation_rate),
                "activation": serialize_activation(self.activation),
                **kernel_and_bias_config(self, "Conv2D")}
