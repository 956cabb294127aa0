"""Layers that move, repeat, pad or cut entries without arithmetic on them (channels-last):

    RepeatVector(n)      (N, D) -> (N, n, D): y[:, t] = x for every t < n
    Permute(dims)        (N, d₁, …, dₖ) -> (N, d_dims[0], …): dims permutes 1..k (batch fixed)
    UpSampling2D(size)   (N, H, W, C) -> (N, sh·H, sw·W, C): each pixel repeated sh×sw times
                         ('nearest'), or linearly interpolated between pixel centres ('bilinear')
    ZeroPadding2D(p)     (N, H, W, C) -> (N, t + H + b, l + W + r, C), zeros around
    Cropping2D(c)        (N, H, W, C) -> (N, H − t − b, W − l − r, C), rows and columns cut off
"""
import numpy as np

import tidu.functional as F
from tidu.errors import ShapeError
from tidu.layers.base import Layer
from tidu.layers.utils import (check_data_format, check_ndim, check_positive_int, layer_label,
                               normalize_tuple)

__all__ = ["RepeatVector", "Permute", "UpSampling2D", "ZeroPadding2D", "Cropping2D"]


def _is_int(v):
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _pairs(owner, name, value):
    """((top, bottom), (left, right)) from an int, two ints (symmetric per axis) or two pairs,
    each >= 0 (ZeroPadding2D's padding, Cropping2D's cropping)."""
    expected = (f"{owner}: expected {name} to be an int, a tuple of 2 ints (symmetric height, "
                f"width) or a tuple of 2 tuples of 2 ints ((top, bottom), (left, right)), all "
                f">= 0, got {name}={value!r}")
    if _is_int(value):
        value = ((value, value), (value, value))
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(expected)
    out = []
    for v in value:
        if _is_int(v):
            v = (v, v)
        if not isinstance(v, (tuple, list)) or len(v) != 2 or not all(_is_int(e) and e >= 0 for e in v):
            raise ValueError(expected)
        out.append((int(v[0]), int(v[1])))
    return tuple(out)


class RepeatVector(Layer):
    """(N, D) -> (N, n, D): y[:, t, :] = x for t = 0, …, n − 1."""

    def __init__(self, n, **kwargs):
        n = check_positive_int("RepeatVector", "n", n)
        super().__init__(**kwargs)
        self.n = n

    def call(self, inputs, training=False):
        check_ndim(layer_label(self, f"({self.n})"), inputs, 2, "batch, features")
        N, D = inputs.shape
        return F.repeat(F.reshape(inputs, (N, 1, D)), self.n, axis=1)

    def compute_output_shape(self, input_shape):
        check_ndim(layer_label(self, f"({self.n})"), input_shape, 2, "batch, features")
        return (input_shape[0], self.n, input_shape[1])

    def get_config(self):
        return {**super().get_config(), "n": self.n}


class Permute(Layer):
    """y = x with its non-batch axes reordered: output axis i + 1 is input axis dims[i]
    (dims a permutation of 1, …, k; the batch axis 0 stays)."""

    def __init__(self, dims, **kwargs):
        try:
            dims = tuple(dims)
        except TypeError:
            raise ValueError(f"Permute: expected dims to be a permutation of 1, ..., k, "
                             f"got dims={dims!r}") from None
        if not all(_is_int(d) for d in dims) or sorted(dims) != list(range(1, len(dims) + 1)):
            raise ValueError(f"Permute: expected dims to be a permutation of 1, ..., k (the "
                             f"batch axis 0 stays), got dims={dims!r}")
        super().__init__(**kwargs)
        self.dims = tuple(int(d) for d in dims)

    def call(self, inputs, training=False):
        check_ndim(layer_label(self, str(self.dims)), inputs, len(self.dims) + 1,
                   "batch, *one sample")
        return F.transpose(inputs, (0, *self.dims))

    def compute_output_shape(self, input_shape):
        check_ndim(layer_label(self, str(self.dims)), input_shape, len(self.dims) + 1,
                   "batch, *one sample")
        return (input_shape[0], *(input_shape[d] for d in self.dims))

    def get_config(self):
        return {**super().get_config(), "dims": list(self.dims)}


class UpSampling2D(Layer):
    """(N, H, W, C) -> (N, sh·H, sw·W, C), size = (sh, sw).

    'nearest':  y[n, i, j, c] = x[n, ⌊i/sh⌋, ⌊j/sw⌋, c]
    'bilinear': y = Ah x Awᵀ per image and channel, A the linear interpolation at the output
                pixel centres (tidu.functional.bilinear_matrix; Keras on the torch backend).
    """

    _interpolations = ("nearest", "bilinear")

    def __init__(self, size=(2, 2), data_format=None, interpolation="nearest", **kwargs):
        size = normalize_tuple("UpSampling2D", "size", size)
        check_data_format("UpSampling2D", data_format)
        if not isinstance(interpolation, str) or interpolation.lower() not in self._interpolations:
            raise ValueError(f"UpSampling2D: expected interpolation 'nearest' or 'bilinear', "
                             f"got interpolation={interpolation!r}")
        super().__init__(**kwargs)
        self.size, self.interpolation = size, interpolation.lower()

    def call(self, inputs, training=False):
        check_ndim(layer_label(self, str(self.size)), inputs, 4, "batch, height, width, channels")
        if self.interpolation == "bilinear":
            return F.upsample_bilinear2d(inputs, self.size)
        return F.repeat(F.repeat(inputs, self.size[0], axis=1), self.size[1], axis=2)

    def compute_output_shape(self, input_shape):
        check_ndim(layer_label(self, str(self.size)), input_shape, 4,
                   "batch, height, width, channels")
        N, H, W, C = input_shape
        (sh, sw) = self.size
        return (N, None if H is None else sh * H, None if W is None else sw * W, C)

    def get_config(self):
        return {**super().get_config(), "size": list(self.size), "data_format": "channels_last",
                "interpolation": self.interpolation}


class ZeroPadding2D(Layer):
    """(N, H, W, C) -> (N, t + H + b, l + W + r, C), zeros in the new rows and columns;
    padding ((t, b), (l, r)), or (ph, pw) for ((ph, ph), (pw, pw)), or p for all four. The
    default ((1, 1), (1, 1)) is Keras's (1, 1) written out (the form get_config gives, and
    what a saved config's checks read the kind of padding from)."""

    def __init__(self, padding=((1, 1), (1, 1)), data_format=None, **kwargs):
        padding = _pairs("ZeroPadding2D", "padding", padding)
        check_data_format("ZeroPadding2D", data_format)
        super().__init__(**kwargs)
        self.padding = padding

    def call(self, inputs, training=False):
        check_ndim(layer_label(self), inputs, 4, "batch, height, width, channels")
        return F.pad(inputs, ((0, 0), *self.padding, (0, 0)))

    def compute_output_shape(self, input_shape):
        check_ndim(layer_label(self), input_shape, 4, "batch, height, width, channels")
        N, H, W, C = input_shape
        (t, b), (l, r) = self.padding
        return (N, None if H is None else t + H + b, None if W is None else l + W + r, C)

    def get_config(self):
        return {**super().get_config(), "padding": [list(p) for p in self.padding],
                "data_format": "channels_last"}


class Cropping2D(Layer):
    """(N, H, W, C) -> (N, H − t − b, W − l − r, C): y = x[:, t : H − b, l : W − r, :];
    cropping ((t, b), (l, r)), or (ch, cw) for ((ch, ch), (cw, cw)), or c for all four."""

    def __init__(self, cropping=((0, 0), (0, 0)), data_format=None, **kwargs):
        cropping = _pairs("Cropping2D", "cropping", cropping)
        check_data_format("Cropping2D", data_format)
        super().__init__(**kwargs)
        self.cropping = cropping

    def _output_hw(self, shape):
        check_ndim(layer_label(self), shape, 4, "batch, height, width, channels")
        (t, b), (l, r) = self.cropping
        H, W = shape[1], shape[2]
        if (H is not None and t + b >= H) or (W is not None and l + r >= W):
            raise ShapeError(f"{layer_label(self)} cropping {self.cropping} leaves nothing of an "
                             f"input of shape {tuple(shape)}: expected t + b < height and "
                             f"l + r < width")
        return (None if H is None else H - t - b, None if W is None else W - l - r)

    def call(self, inputs, training=False):
        h, w = self._output_hw(inputs.shape)
        (t, _), (l, _) = self.cropping
        return F.getitem(inputs, (slice(None), slice(t, t + h), slice(l, l + w), slice(None)))

    def compute_output_shape(self, input_shape):
        h, w = self._output_hw(input_shape)
        return (input_shape[0], h, w, input_shape[3])

    def get_config(self):
        return {**super().get_config(), "cropping": [list(c) for c in self.cropping],
                "data_format": "channels_last"}
