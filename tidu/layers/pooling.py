"""Pooling layers (channels-last, NHWC): each window of pool_size is reduced to one value.

    MaxPooling2D      y = max over the window
    AveragePooling2D  y = mean over the window ('same' padding: over the part inside the input)
    L2Pooling2D       y = √(Σ over the window of x²)
    GlobalAveragePooling2D / GlobalMaxPooling2D: (N, H, W, C) -> (N, C), mean / max over H, W
    MaxPooling1D, AveragePooling1D: the same over the steps of (N, L, C) sequences
    GlobalAveragePooling1D / GlobalMaxPooling1D: (N, L, C) -> (N, C), mean / max over L
"""
import tidu.functional as F
from tidu.errors import ShapeError
from tidu.layers.base import Layer
from tidu.layers.utils import (check_data_format, check_ndim, conv_output_length,
                               normalize_padding, normalize_tuple)

__all__ = ["MaxPooling1D", "AveragePooling1D", "GlobalAveragePooling1D", "GlobalMaxPooling1D",
           "MaxPool1D", "AvgPool1D", "GlobalAvgPool1D", "GlobalMaxPool1D", "MaxPooling2D", "AveragePooling2D", "L2Pooling2D", "GlobalAveragePooling2D",
           "GlobalMaxPooling2D", "MaxPool2D", "AvgPool2D", "GlobalAvgPool2D", "GlobalMaxPool2D"]


class _Pooling2D(Layer):
    _op = None  # the tidu.functional op's name
    rank, _axes = 2, "height, width"

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None, **kwargs):
        cls, n = type(self).__name__, self.rank
        pool_size = normalize_tuple(cls, "pool_size", pool_size, n)
        strides = pool_size if strides is None else normalize_tuple(cls, "strides", strides, n)
        padding = normalize_padding(cls, padding)
        check_data_format(cls, data_format)
        super().__init__(**kwargs)
        self.pool_size, self.strides, self.padding = pool_size, strides, padding

    def _label(self):
        return f"{type(self).__name__}({self.pool_size}) '{self.name}'"

    def call(self, inputs, training=False):
        check_ndim(self._label(), inputs, self.rank + 2, f"(batch, {self._axes}, channels)")
        sizes = inputs.shape[1:-1]
        if self.padding == "valid" and any(n < k for n, k in zip(sizes, self.pool_size)):
            raise ShapeError(f"{self._label()} input of {self._axes.replace(', ', ' × ')} {sizes} "
                             f"is smaller than the pool {self.pool_size} with padding='valid'")
        size, strides = (self.pool_size, self.strides) if self.rank == 2 else \
            (self.pool_size[0], self.strides[0])
        return getattr(F, self._op)(inputs, pool_size=size, strides=strides, padding=self.padding)

    def compute_output_shape(self, input_shape):
        n, *sizes, c = input_shape
        return (n, *(conv_output_length(m, p, s, self.padding)
                     for m, p, s in zip(sizes, self.pool_size, self.strides)), c)

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
    rank, _axes = 2, "height, width"

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        check_data_format(type(self).__name__, data_format)
        super().__init__(**kwargs)
        self.keepdims = bool(keepdims)

    def call(self, inputs, training=False):
        check_ndim(f"{type(self).__name__} '{self.name}'", inputs, self.rank + 2,
                   f"(batch, {self._axes}, channels)")
        return self._reduce(inputs, axis=tuple(range(1, self.rank + 1)), keepdims=self.keepdims)

    def compute_output_shape(self, input_shape):
        n, c = input_shape[0], input_shape[-1]
        return (n, *(1,) * self.rank, c) if self.keepdims else (n, c)

    def get_config(self):
        return {**super().get_config(), "keepdims": self.keepdims}


class GlobalAveragePooling2D(_GlobalPooling2D):
    """y[n, c] = mean over i, j of x[n, i, j, c]."""
    _reduce = staticmethod(F.mean)


class GlobalMaxPooling2D(_GlobalPooling2D):
    """y[n, c] = max over i, j of x[n, i, j, c]."""
    _reduce = staticmethod(F.max)


class _Pooling1D(_Pooling2D):
    rank, _axes = 1, "steps"

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(pool_size, strides, padding, data_format, **kwargs)


class MaxPooling1D(_Pooling1D):
    """y[n, t, c] = max over the window at t·s of x[n, ·, c]."""
    _op = "max_pool1d"


class AveragePooling1D(_Pooling1D):
    """y[n, t, c] = mean over the window at t·s of x[n, ·, c] ('same': over the part inside
    the input, as TensorFlow/JAX; see tidu.functional.avg_pool1d for Keras' torch backend)."""
    _op = "avg_pool1d"


class _GlobalPooling1D(_GlobalPooling2D):
    rank, _axes = 1, "steps"


class GlobalAveragePooling1D(_GlobalPooling1D):
    """y[n, c] = mean over t of x[n, t, c]."""
    _reduce = staticmethod(F.mean)


class GlobalMaxPooling1D(_GlobalPooling1D):
    """y[n, c] = max over t of x[n, t, c]."""
    _reduce = staticmethod(F.max)


# Keras' aliases
MaxPool1D, AvgPool1D = MaxPooling1D, AveragePooling1D
GlobalAvgPool1D, GlobalMaxPool1D = GlobalAveragePooling1D, GlobalMaxPooling1D
MaxPool2D, AvgPool2D = MaxPooling2D, AveragePooling2D
GlobalAvgPool2D, GlobalMaxPool2D = GlobalAveragePooling2D, GlobalMaxPooling2D
