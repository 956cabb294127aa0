"""Noise layers: random perturbations while training (training=True), the identity in inference.

    GaussianNoise(stddev)    y = x + σ·ε,                ε ~ N(0, 1) per entry, σ = stddev
    GaussianDropout(rate)    y = x·m,                    m ~ N(1, rate/(1 − rate)) per entry
    SpatialDropout2D(rate)   y = x·m/(1 − rate),         m ~ Bernoulli(1 − rate) per sample and
                                                         channel: whole (H, W) maps are dropped
Each keeps E[y] = x, so inference needs no rescaling. GaussianDropout's multiplier has the mean
and variance of inverted dropout's (1 and rate/(1 − rate)), without its zeros.

seed: an int gives the layer a generator of its own (reproducible noise, saved with the model
in a checkpoint's 'layer_rngs'); None draws from the generator fit lends the layer (the
model's), or outside fit from the package-wide tidu.backend.rng(). Same as tidu's Dropout.
"""
import math

import tidu.functional as F
from tidu import backend
from tidu._checks import check_number
from tidu.layers.base import Layer
from tidu.layers.utils import check_data_format, check_ndim, check_rate, layer_label

__all__ = ["GaussianNoise", "GaussianDropout", "SpatialDropout2D"]


def _check_seed(owner, seed):
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise TypeError(f"{owner}: expected seed to be an int or None, got seed={seed!r}")
    return seed


class _Noise(Layer):
    """A layer drawing from `rng`: its own generator for a seed, else None (lent by fit)."""

    def __init__(self, seed=None, **kwargs):
        seed = _check_seed(type(self).__name__, seed)
        super().__init__(**kwargs)
        self.seed = seed
        self.rng = backend.rng(seed) if seed is not None else None

    def standard_normal(self, x):
        """An array of N(0, 1) draws shaped and typed like `x`'s data."""
        dtype = x.dtype if x.dtype.kind == "f" else backend.floatx()
        return backend.xp.asarray(backend.rng(self.rng).standard_normal(x.shape, dtype=dtype))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


class GaussianNoise(_Noise):
    """y = x + stddev·ε, ε ~ N(0, 1), while training; y = x in inference. 0 <= stddev <= 1
    (Keras's range)."""

    def __init__(self, stddev, seed=None, **kwargs):
        stddev = check_number("GaussianNoise", "stddev", stddev)
        if not 0.0 <= stddev <= 1.0:
            raise ValueError(f"GaussianNoise: expected 0 <= stddev <= 1, got stddev={stddev!r}")
        super().__init__(seed=seed, **kwargs)
        self.stddev = stddev

    def call(self, inputs, training=False):
        if not training or self.stddev == 0:
            return inputs
        return inputs + self.stddev * self.standard_normal(inputs)

    def get_config(self):
        return {**super().get_config(), "stddev": self.stddev}


class GaussianDropout(_Noise):
    """y = x·m, m = 1 + √(rate/(1 − rate))·ε, ε ~ N(0, 1), while training; y = x in inference.
    0 <= rate < 1."""

    def __init__(self, rate, seed=None, **kwargs):
        rate = check_rate("GaussianDropout", "rate", rate)
        super().__init__(seed=seed, **kwargs)
        self.rate = rate

    def call(self, inputs, training=False):
        if not training or self.rate == 0:
            return inputs
        stddev = math.sqrt(self.rate / (1.0 - self.rate))
        return inputs * (1.0 + stddev * self.standard_normal(inputs))

    def get_config(self):
        return {**super().get_config(), "rate": self.rate}


class SpatialDropout2D(_Noise):
    """Inverted dropout of whole feature maps: for (N, H, W, C) inputs,
    y[n, :, :, c] = x[n, :, :, c]·m[n, c]/(1 − rate), m ~ Bernoulli(1 − rate), while training;
    y = x in inference. Neighbouring pixels of a map are correlated, so dropping single pixels
    (Dropout) barely regularizes a conv net; dropping the map does (Tompson et al., 2015)."""

    def __init__(self, rate, data_format=None, seed=None, **kwargs):
        rate = check_rate("SpatialDropout2D", "rate", rate)
        check_data_format("SpatialDropout2D", data_format)
        super().__init__(seed=seed, **kwargs)
        self.rate = rate

    def call(self, inputs, training=False):
        check_ndim(layer_label(self), inputs, 4, "batch, height, width, channels")
        N, _, _, C = inputs.shape
        return F.dropout(inputs, self.rate, training=bool(training), rng=self.rng,
                         noise_shape=(N, 1, 1, C))

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "data_format": "channels_last"}
