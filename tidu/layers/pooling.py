"""Pooling layers (channels-last, NHWC): each window of pool_size is reduced to one value.

    MaxPooling2D      y = max over the window
    AveragePooling2D  y = mean over the window ('same' padding: over the part inside the input)
    L2Pooling2D       y = √(Σ over the window of x²)
    GlobalAveragePooling2D / GlobalMaxPooling2D: (N, H, W, C) -> (N, C), mean / max over H, W
"""
import tidu.functional as F
from tidu.errors import ShapeError
from tidu.layers.base import Layer
from tidu.layers.utils import (check_data_format, check_ndim, conv_output_length,
                               normalize_padding, normalize_tuple)

__all__ = ["MaxPooling2D", "AveragePooling2D", "L2Pooling2D", "GlobalAveragePooling2D",
           "GlobalMaxPooling2D", "MaxPool2D", "AvgPool2D", "GlobalAvgPool2D", "GlobalMaxPool2D"]


class _Pooling2D(Layer):
    _op = None  # the tidu.functional op's name

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None, **kwargs):
        cls = type(self).__name__
        pool_size = normalize_tuple(cls, "pool_size", pool_size)
        strides = pool_size if strides is None else normalize_tuple(cls, "strides", strides)
        padding = normalize_padding(cls, padding)
        check_data_format(cls, data_format)
        super().__init__(**kwargs)
        self.pool_size, self.strides, self.padding = pool_size, strides, padding

    def _label(self):
        return f"{type(self).__name__}({self.pool_size}) '{self.name}'"

    def call(self, inputs, training=False):
        check_ndim(self._label(), inputs, 4, "(batch, height, width, channels)")
        if self.padding == "valid" and any(n < k for n, k in zip(inputs.shape[1:3], self.pool_size)):
            raise ShapeError(f"{self._label()} input of height × width {inputs.shape[1:3]} is "
                             f"smaller than the pool {self.pool_size} with padding='valid'")
        return getattr(F, self._op)(inputs, pool_size=self.pool_size, strides=self.strides,
                                    padding=self.padding)

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        (ph, pw), (sh, sw) = self.pool_size, self.strides
        return (n, conv_output_length(h, ph, sh, self.padding),
                conv_output_length(w, pw, sw, self.padding), c)

    def get_config(self):
        return {**super().get_config(), "pool_size": list(self.pool_size),
                "strides": list(self.strides), "padding": self.padding}


class MaxPooling2D(_Pooling2D):
    """y[n, i, j, c] = max over the window at (i·sh, j·sw) of x[n, ·, ·, c]."""
    _op = "max_pool2d"


class AveragePooling2D(_Pooling2D):
    """y[n, i, j, c] = mean over the window at (i·sh, j·sw) of x[n, ·, ·, c]."""
    _op = "avg_pool2d"


class L2Pooling2D(_Pooling2D):
    """y[n, i, j, c] = √(Σ over the window at (i·sh, j·sw) of x[n, ·, ·, c]²)."""
    _op = "l2_pool2d"


class _GlobalPooling2D(Layer):
    def __init__(self, data_format=None, keepdims=False, **kwargs):
        check_data_format(type(self).__name__, data_format)
        super().__init__(**kwargs)
        self.keepdims = bool(keepdims)

    def call(self, inputs, training=False):
        check_ndim(f"{type(self).__name__} '{self.name}'", inputs, 4,
                   "(batch, height, width, channels)")
        return self._reduce(inputs, axis=(1, 2), keepdims=self.keepdims)

    def compute_output_shape(self, input_shape):
        n, _, _, c = input_shape
        return (n, 1, 1, c) if self.keepdims else (n, c)

    def get_config(self):
        return {**super().get_config(), "keepdims": self.keepdims}


class GlobalAveragePooling2D(_GlobalPooling2D):
    """y[n, c] = mean over i, j of x[n, i, j, c]."""
    _reduce = staticmethod(F.mean)


class GlobalMaxPooling2D(_GlobalPooling2D):
    """y[n, c] = max over i, j of x[n, i, j, c]."""
    _reduce = staticmethod(F.max)


# Keras' aliases
MaxPool2D, AvgPool2D = MaxPooling2D, AveragePooling2D
GlobalAvgPool2D, GlobalMaxPool2D = GlobalAveragePooling2D, GlobalMaxPooling2D
