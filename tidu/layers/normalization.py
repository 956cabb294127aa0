"""Batch normalization (Ioffe & Szegedy, 2015) and layer normalization.

BatchNormalization normalizes each feature (channel, along `axis`) over the other axes:

    training:   μ_B = mean of the batch,  σ²_B = its (biased) variance,
                y = γ·(x − μ_B)/√(σ²_B + ε) + β,
                moving_mean ← momentum·moving_mean + (1 − momentum)·μ_B   (likewise the variance)
    inference:  y = γ·(x − moving_mean)/√(moving_variance + ε) + β

The moving averages (Keras) estimate the statistics while the weights still change. The notes
and the paper (Algorithm 2) instead fix them after training from the whole training set:
`compute_population_statistics(model, x)` runs it through the trained model in inference mode
and sets each layer's moving_mean = E[x] and moving_variance = the unbiased variance
(m/(m−1)·biased, m = values per feature).
"""
import numpy as np

import tidu.functional as F
from tidu import backend, initializers, regularizers
from tidu.autograd import Tensor, no_grad
from tidu.errors import ShapeError
from tidu.layers.base import Layer
from tidu.layers.utils import (check_constraint, check_rate, serialize_constraint,
                               serialize_initializer, serialize_regularizer)

__all__ = ["BatchNormalization", "LayerNormalization", "compute_population_statistics"]


class _StopForward(Exception):
    """Raised by a collecting BatchNormalization to end a forward pass early."""


class _Moments:
    """Per-feature count, mean and sum of squared deviations (M2) over many batches, merged
    exactly in float64 (Chan et al.); also the batch means and variances for Algorithm 2."""

    def __init__(self, axis):
        self.axis, self.count, self.mean, self.m2 = axis, 0, 0.0, 0.0
        self.batch_means, self.batch_vars, self.batch_counts = [], [], []

    def add(self, x):
        x = backend.to_numpy(x).astype(np.float64)
        axis = self.axis % x.ndim
        axes = tuple(i for i in range(x.ndim) if i != axis)
        m = x.size // x.shape[axis]
        mean = x.mean(axis=axes)
        m2 = ((x - mean.reshape([-1 if i == axis else 1 for i in range(x.ndim)])) ** 2).sum(axis=axes)
        delta, total = mean - self.mean, self.count + m
        self.mean = self.mean + delta * m / total
        self.m2 = self.m2 + m2 + delta ** 2 * self.count * m / total
        self.count = total
        self.batch_means.append(mean)
        self.batch_vars.append(m2 / m)
        self.batch_counts.append(m)

    def result(self, method):
        """(mean, unbiased variance) per feature."""
        if method == "exact":
            if self.count < 2:
                raise ValueError(f"compute_population_statistics: expected at least 2 values per "
                                 f"feature, got {self.count}")
            return self.mean, self.m2 / (self.count - 1)
        # Algorithm 2 of the paper: E[x] = E_B[μ_B], Var[x] = m/(m−1)·E_B[σ²_B] (weighted by size)
        m = np.asarray(self.batch_counts, dtype=np.float64)
        if (m < 2).any():
            raise ValueError("compute_population_statistics: method='batches' needs at least 2 "
                             "values per feature in every batch")
        w = m / m.sum()
        mean = sum(wi * mu for wi, mu in zip(w, self.batch_means))
        var = sum(wi * mi / (mi - 1) * v for wi, mi, v in zip(w, m, self.batch_vars))
        return mean, var


class BatchNormalization(Layer):
    """y = γ·(x − μ)/√(σ² + ε) + β per feature along `axis`; batch statistics while training,
    moving (or population) statistics in inference. See the module docstring.

    Weights, in Keras' order: gamma (if scale), beta (if center), moving_mean, moving_variance
    (the last two non-trainable). A layer with trainable=False runs in inference mode (Keras 2+).
    """

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones",
                 moving_mean_initializer="zeros", moving_variance_initializer="ones",
                 beta_regularizer=None, gamma_regularizer=None, beta_constraint=None,
                 gamma_constraint=None, **kwargs):
        if isinstance(axis, (list, tuple)) and len(axis) == 1:
            axis = axis[0]
        if isinstance(axis, bool) or not isinstance(axis, int):
            raise ValueError(f"BatchNormalization: expected axis to be an int, got {axis!r}")
        momentum = check_rate("BatchNormalization", "momentum", momentum)
        if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not epsilon > 0:
            raise ValueError(f"BatchNormalization: expected epsilon > 0, got {epsilon!r}")
        super().__init__(**kwargs)
        self.axis, self.momentum, self.epsilon = axis, momentum, float(epsilon)
        self.center, self.scale = bool(center), bool(scale)
        self.gamma = self.beta = None
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self.beta_constraint = check_constraint("BatchNormalization", "beta_constraint",
                                                beta_constraint)
        self.gamma_constraint = check_constraint("BatchNormalization", "gamma_constraint",
                                                 gamma_constraint)
        self._collector = None

    def _label(self):
        return f"BatchNormalization '{self.name}'"

    def _feature_axis(self, ndim):
        if not -ndim <= self.axis < ndim or self.axis % ndim == 0:
            raise ShapeError(f"{self._label()} axis {self.axis} does not name a feature axis of an "
                             f"input of {ndim} dimensions (axis 0 is the batch)")
        return self.axis % ndim

    def build(self, input_shape):
        self.ndim = len(input_shape)
        c = self.features = input_shape[self._feature_axis(self.ndim)]
        if self.scale:
            self.gamma = self.add_weight("gamma", (c,), self.gamma_initializer,
                                         regularizer=self.gamma_regularizer,
                                         constraint=self.gamma_constraint)
        if self.center:
            self.beta = self.add_weight("beta", (c,), self.beta_initializer,
                                        regularizer=self.beta_regularizer,
                                        constraint=self.beta_constraint)
        self.moving_mean = self.add_weight("moving_mean", (c,), self.moving_mean_initializer,
                                           trainable=False)
        self.moving_variance = self.add_weight("moving_variance", (c,),
                                               self.moving_variance_initializer, trainable=False)

    def _check(self, inputs):
        if inputs.ndim != self.ndim or inputs.shape[self.axis] != self.features:
            raise ShapeError(f"{self._label()} expected input of {self.ndim} dimensions with "
                             f"{self.features} features on axis {self.axis}, got shape {inputs.shape}")

    def call(self, inputs, training=False):
        self._check(inputs)
        if self._collector is not None:
            self._collector.add(inputs.data)
            raise _StopForward
        return F.batch_norm(inputs, self.gamma, self.beta, self.moving_mean, self.moving_variance,
                            training=bool(training) and self.trainable, momentum=self.momentum,
                            epsilon=self.epsilon, axis=self.axis)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def set_population_statistics(self, batches, method="exact"):
        """Set moving_mean and moving_variance from an iterable of this layer's inputs (e.g. the
        activations of the layer below over the training set, batch by batch).

        method 'exact': the mean and unbiased variance of all the values, N/(N−1)·biased.
        method 'batches': the paper's Algorithm 2, E[x] = E_B[μ_B], Var[x] = m/(m−1)·E_B[σ²_B].
        """
        if method not in ("exact", "batches"):
            raise ValueError(f"{self._label()}: expected method 'exact' or 'batches', got {method!r}")
        moments = None
        for x in batches:
            x = x.data if isinstance(x, Tensor) else backend.as_array(x)
            if not self.built:
                self.build(x.shape)
                self.built = True
            self._check(x)
            moments = moments or _Moments(self.axis)
            moments.add(x)
        if moments is None:
            raise ValueError(f"{self._label()}: set_population_statistics got no batches")
        mean, var = moments.result(method)
        self.moving_mean.data[...] = backend.as_array(mean, self.moving_mean.dtype)
        self.moving_variance.data[...] = backend.as_array(var, self.moving_variance.dtype)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "momentum": self.momentum,
                "epsilon": self.epsilon, "center": self.center, "scale": self.scale,
                "beta_initializer": serialize_initializer(self.beta_initializer),
                "gamma_initializer": serialize_initializer(self.gamma_initializer),
                "moving_mean_initializer": serialize_initializer(self.moving_mean_initializer),
                "moving_variance_initializer": serialize_initializer(self.moving_variance_initializer),
                "beta_regularizer": serialize_regularizer(self.beta_regularizer),
                "gamma_regularizer": serialize_regularizer(self.gamma_regularizer),
                "beta_constraint": serialize_constraint("BatchNormalization", "beta_constraint",
                                                        self.beta_constraint),
                "gamma_constraint": serialize_constraint("BatchNormalization", "gamma_constraint",
                                                         self.gamma_constraint)}


def _walk(obj):
    """Every layer inside `obj` (a model, a layer or a list of layers), in order."""
    if isinstance(obj, (list, tuple)):
        for item in obj:
            yield from _walk(item)
        return
    if isinstance(obj, Layer):
        yield obj
    for child in getattr(obj, "layers", None) or getattr(obj, "_layers", None) or ():
        if child is not obj:
            yield from _walk(child)


def compute_population_statistics(model, x, batch_size=128, method="exact"):
    """Set every BatchNormalization of a trained `model` to population statistics of `x`.

    Layer by layer in order (each one's inputs depend on the statistics of those below), the
    training set is run in batches through the model in inference mode (no dropout, earlier
    batch-norm layers already on their population statistics) up to that layer, whose inputs
    give moving_mean = E[x] and moving_variance = unbiased Var[x] (see `method` in
    `BatchNormalization.set_population_statistics`).

    model: a Model (called as model(x, training=False)), a Layer, or a list of layers applied in
    sequence. x: the training inputs (an array, N first). Returns the layers updated.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
        raise ValueError(f"compute_population_statistics: expected batch_size to be a positive "
                         f"int, got {batch_size!r}")
    if method not in ("exact", "batches"):
        raise ValueError(f"compute_population_statistics: expected method 'exact' or 'batches', "
                         f"got {method!r}")
    x = x.data if isinstance(x, Tensor) else backend.as_array(x)
    if x.dtype.kind == "f":
        x = x.astype(backend.floatx(), copy=False)
    bns = [layer for layer in _walk(model) if isinstance(layer, BatchNormalization)]
    if isinstance(model, (list, tuple)):
        chain = list(model)

        def forward(batch):
            for layer in chain:
                batch = layer(batch, training=False)
    else:
        def forward(batch):
            model(batch, training=False)

    for bn in bns:
        moments = None
        bn._collector = None
        try:
            for start in range(0, len(x), batch_size):
                bn._collector = moments = moments or _Moments(bn.axis)
                try:
                    with no_grad():
                        forward(Tensor(x[start:start + batch_size]))
                except _StopForward:
                    pass
        finally:
            bn._collector = None
        if moments is None or moments.count == 0:
            raise ValueError(f"compute_population_statistics: {bn._label()} was not reached by "
                             f"the forward pass; is it part of the model?")
        mean, var = moments.result(method)
        bn.moving_mean.data[...] = backend.as_array(mean, bn.moving_mean.dtype)
        bn.moving_variance.data[...] = backend.as_array(var, bn.moving_variance.dtype)
    return bns


class LayerNormalization(Layer):
    """y = γ·(x − μ)/√(σ² + ε) + β with μ, σ² the mean and biased variance of each sample over
    the last axis (Ba et al., 2016); the same in training and inference.
    Weights, in Keras' order: gamma (features,), beta (features,)."""

    def __init__(self, axis=-1, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones", **kwargs):
        if axis != -1:
            raise ValueError(f"LayerNormalization: only axis=-1 is supported, got {axis!r}")
        if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not epsilon > 0:
            raise ValueError(f"LayerNormalization: expected epsilon > 0, got {epsilon!r}")
        super().__init__(**kwargs)
        self.axis, self.epsilon = axis, float(epsilon)
        self.center, self.scale = bool(center), bool(scale)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.gamma = self.beta = None

    def build(self, input_shape):
        c = self.features = input_shape[-1]
        if self.scale:
            self.gamma = self.add_weight("gamma", (c,), self.gamma_initializer)
        if self.center:
            self.beta = self.add_weight("beta", (c,), self.beta_initializer)

    def call(self, inputs, training=False):
        if inputs.shape[-1] != self.features:
            raise ShapeError(f"LayerNormalization '{self.name}' expected input with last "
                             f"dimension {self.features}, got shape {inputs.shape}")
        mu = F.mean(inputs, axis=-1, keepdims=True)
        d = inputs - mu
        var = F.mean(F.square(d), axis=-1, keepdims=True)
        y = d / F.sqrt(var + self.epsilon)
        if self.gamma is not None:
            y = y * self.gamma
        if self.beta is not None:
            y = y + self.beta
        return y

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "epsilon": self.epsilon,
                "center": self.center, "scale": self.scale,
                "beta_initializer": serialize_initializer(self.beta_initializer),
                "gamma_initializer": serialize_initializer(self.gamma_initializer)}
