"""Convolution layers (channels-last, as Keras' default): Conv1D (N, L, C), Conv2D and
Conv2DTranspose (N, H, W, C). Kernels in Keras' layouts: Conv1D (k, C, filters), Conv2D
(kh, kw, C, filters), Conv2DTranspose (kh, kw, filters, C)."""
import tidu.functional as F
from tidu import activations
from tidu.errors import ShapeError
from tidu.layers.base import Layer
from tidu.layers.core import ActivityRegularized
from tidu.layers.utils import (add_kernel_and_bias, check_data_format, check_ndim,
                               check_positive_int, conv_output_length, kernel_and_bias_config,
                               normalize_tuple, serialize_activation, set_kernel_and_bias_options)

__all__ = ["Conv1D", "Conv2D", "Conv2DTranspose"]


class _Conv(ActivityRegularized, Layer):
    """The arguments, weights, checks and configuration shared by the convolutions; a subclass
    sets rank, the paddings it takes, the kernel layout, the op and the output length."""

    rank = 2
    _paddings = ("valid", "same")
    _axes = "height, width"

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None,
                 dilation_rate=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        cls, n = type(self).__name__, self.rank
        filters = check_positive_int(cls, "filters", filters)
        kernel_size = normalize_tuple(cls, "kernel_size", kernel_size, n)
        strides = normalize_tuple(cls, "strides", strides, n)
        mode = padding.lower() if isinstance(padding, str) else padding
        if mode not in self._paddings:
            raise ValueError(f"{cls}: expected padding {' or '.join(map(repr, self._paddings))}, "
                             f"got {padding!r}")
        check_data_format(cls, data_format)
        dilation_rate = normalize_tuple(cls, "dilation_rate", dilation_rate, n)
        if max(dilation_rate) > 1 and max(strides) > 1:
            raise ValueError(f"{cls}: dilation_rate {dilation_rate} needs strides {(1,) * n} (as "
                             f"Keras), got strides {strides}")
        super().__init__(**kwargs)
        self.filters, self.kernel_size, self.strides = filters, kernel_size, strides
        self.padding, self.dilation_rate = mode, dilation_rate
        self.activation = activations.get(activation)
        self.activation_name = activations.name_of(self.activation)
        set_kernel_and_bias_options(self, cls, use_bias, kernel_initializer, bias_initializer,
                                    kernel_regularizer, bias_regularizer, activity_regularizer,
                                    kernel_constraint, bias_constraint)

    def _label(self):
        ks = self.kernel_size[0] if self.rank == 1 else self.kernel_size
        return f"{type(self).__name__}({self.filters}, {ks}) '{self.name}'"

    def _kernel_shape(self, channels):
        return (*self.kernel_size, channels, self.filters)

    def build(self, input_shape):
        check_ndim(self._label(), input_shape, self.rank + 2, f"(batch, {self._axes}, channels)")
        c = self.input_channels = input_shape[-1]
        add_kernel_and_bias(self, self._kernel_shape(c), (self.filters,))

    def _span(self):
        """The dilated kernel's extent: (k − 1)·d + 1 per axis."""
        return tuple((k - 1) * d + 1 for k, d in zip(self.kernel_size, self.dilation_rate))

    def pre_activation(self, inputs, training=False):
        """The convolution plus bias."""
        self._check_input(inputs)
        return self._op(inputs)

    def _check_input(self, inputs):
        if inputs.ndim != self.rank + 2 or inputs.shape[-1] != self.input_channels:
            raise ShapeError(f"{self._label()} expected input (batch, {self._axes}, "
                             f"{self.input_channels}), got shape {inputs.shape}")
        sizes = inputs.shape[1:-1]
        if self.padding == "valid" and any(n < k for n, k in zip(sizes, self._span())):
            raise ShapeError(f"{self._label()} input of {self._axes.replace(', ', ' × ')} "
                             f"{sizes} is smaller than the kernel's span {self._span()} with "
                             f"padding='valid'")

    def call(self, inputs, training=False):
        return self._regularize_activity(self.activation(self.pre_activation(inputs, training)))

    def compute_output_shape(self, input_shape):
        n, *sizes, _ = input_shape
        shape = (n, *(self._output_length(m, i) for i, m in enumerate(sizes)), self.filters)
        return activations.output_shape(self.activation, shape, self.dtype)

    def _output_length(self, length, axis):
        return conv_output_length(length, self._span()[axis], self.strides[axis], self.padding)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters,
                "kernel_size": list(self.kernel_size), "strides": list(self.strides),
                "padding": self.padding, "dilation_rate": list(self.dilation_rate),
                "activation": serialize_activation(self.activation),
                **kernel_and_bias_config(self, type(self).__name__)}


class Conv1D(_Conv):
    """outputs = activation(conv1d(inputs, kernel) + bias): (N, L, C) -> (N, L', filters).

    y[n, t, f] = Σ_{a, c} x[n, t·s + a·d, c] · kernel[a, c, f] + bias[f]
    (x zero-padded: 'same' as Conv2D, 'causal' by (k − 1)·d zeros on the left, so y[t] sees
    no input after t). L' = ⌊(L − span)/s⌋ + 1 ('valid', span = (k − 1)·d + 1), ⌈L/s⌉
    ('same'), ⌊(L − 1)/s⌋ + 1 ('causal'). Weights, in Keras' order: kernel (k, C, filters),
    bias (filters,). Runs as Conv2D on the (N, 1, L, C) view of the input.
    """

    rank = 1
    _paddings = ("valid", "same", "causal")
    _axes = "steps"

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None,
                 dilation_rate=1, groups=1, activation=None, use_bias=True, **kwargs):
        if groups != 1:
            raise ValueError(f"Conv1D: groups other than 1 is not supported, got {groups!r}")
        super().__init__(filters, kernel_size, strides, padding, data_format, dilation_rate,
                         activation, use_bias, **kwargs)

    def _op(self, inputs):
        return F.conv1d(inputs, self.kernel, self.bias, strides=self.strides[0],
                        padding=self.padding, dilation_rate=self.dilation_rate[0])

    def pre_activation(self, inputs, training=False):
        if self.padding == "causal" and inputs.ndim == 3 and inputs.shape[-1] == self.input_channels:
            return self._op(inputs)  # the left padding makes every length long enough
        return super().pre_activation(inputs, training)

    def _output_length(self, length, axis):
        if self.padding == "causal":
            return None if length is None else (length - 1) // self.strides[0] + 1
        return super()._output_length(length, axis)


class Conv2D(_Conv):
    """outputs = activation(conv2d(inputs, kernel) + bias): (N, H, W, C) -> (N, H', W', filters).

    y[n, i, j, f] = Σ_{a, b, c} x[n, i·sh + a, j·sw + b, c] · kernel[a, b, c, f] + bias[f]
    (x zero-padded for padding='same'; with dilation_rate d the taps are i·sh + a·dh, ...).
    H' = ⌊(H − span)/sh⌋ + 1 ('valid', span = (kh − 1)·dh + 1) or ⌈H/sh⌉ ('same').
    Weights, in Keras' order: kernel (kh, kw, C, filters), bias (filters,).
    """

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", data_format=None,
                 dilation_rate=(1, 1), groups=1, activation=None, use_bias=True, **kwargs):
        if groups != 1:
            raise ValueError(f"Conv2D: groups other than 1 is not supported, got {groups!r}")
        super().__init__(filters, kernel_size, strides, padding, data_format, dilation_rate,
                         activation, use_bias, **kwargs)

    def _op(self, inputs):
        return F.conv2d(inputs, self.kernel, self.bias, strides=self.strides,
                        padding=self.padding, dilation_rate=self.dilation_rate)

    def pooled_pre_activation(self, inputs, pool, training=False):
        """pool(self.pre_activation(inputs)) for a MaxPooling2D `pool`, as one op,
        F.conv2d_max_pool2d (for inference it runs chunk by chunk of images, in the cache).
        A conv output the pool cannot take goes to the pool itself, for its own error."""
        self._check_input(inputs)
        if not pool.built:   # a pool has no weights; what its __call__ would have marked
            pool.built = True
        out_hw = [self._output_length(n, axis) for axis, n in enumerate(inputs.shape[1:3])]
        if pool.padding == "valid" and any(n < k for n, k in zip(out_hw, pool.pool_size)):
            return pool(self._op(inputs), training=training)
        return F.conv2d_max_pool2d(inputs, self.kernel, self.bias, strides=self.strides,
                                   padding=self.padding, dilation_rate=self.dilation_rate,
                                   pool_size=pool.pool_size, pool_strides=pool.strides,
                                   pool_padding=pool.padding)


class Conv2DTranspose(_Conv):
    """outputs = activation(conv2d_transpose(inputs, kernel) + bias):
    (N, H, W, C) -> (N, H', W', filters), the adjoint of a Conv2D's input gradient.

    Each input pixel scatters its kernel: ŷ[n, i·sh + a·dh, j·sw + b·dw, f] += Σ_c x[n, i, j, c]
    · kernel[a, b, f, c], and ŷ is cropped (or zero-extended) to Keras' output size:
    H' = (H − 1)·sh + max(span, sh) ('valid'), H·sh ('same'); with output_padding op,
    H' = (H − 1)·sh + span + op ('valid') or (H − 1)·sh + span mod 2 + op ('same'), where
    span = (kh − 1)·dh + 1 (tidu.functional.conv_transpose has the crops).
    Weights, in Keras' order: kernel (kh, kw, filters, C), bias (filters,).
    """

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", output_padding=None,
                 data_format=None, dilation_rate=(1, 1), activation=None, use_bias=True, **kwargs):
        super().__init__(filters, kernel_size, strides, padding, data_format, dilation_rate,
                         activation, use_bias, **kwargs)
        if output_padding is not None:
            if isinstance(output_padding, int) and not isinstance(output_padding, bool):
                output_padding = (output_padding,) * 2
            op = tuple(output_padding) if isinstance(output_padding, (tuple, list)) else None
            if op is None or len(op) != 2 or not all(
                    isinstance(p, int) and not isinstance(p, bool) and 0 <= p < s
                    for p, s in zip(op, self.strides)):
                raise ValueError(f"Conv2DTranspose: expected output_padding to be None or an int "
                                 f"or 2 ints, each >= 0 and < its stride {self.strides} (as "
                                 f"Keras), got {output_padding!r}")
            output_padding = op
        self.output_padding = output_padding

    def _kernel_shape(self, channels):
        return (*self.kernel_size, self.filters, channels)

    def pre_activation(self, inputs, training=False):
        if inputs.ndim != 4 or inputs.shape[-1] != self.input_channels:
            raise ShapeError(f"{self._label()} expected input (batch, height, width, "
                             f"{self.input_channels}), got shape {inputs.shape}")
        return self._op(inputs)

    def _op(self, inputs):
        return F.conv2d_transpose(inputs, self.kernel, self.bias, strides=self.strides,
                                  padding=self.padding, output_padding=self.output_padding,
                                  dilation_rate=self.dilation_rate)

    def _output_length(self, length, axis):
        op = None if self.output_padding is None else self.output_padding[axis]
        return F.conv_transpose_output_length(length, self.kernel_size[axis], self.strides[axis],
                                              self.padding, op, self.dilation_rate[axis])

    def get_config(self):
        op = None if self.output_padding is None else list(self.output_padding)
        return {**super().get_config(), "output_padding": op}
