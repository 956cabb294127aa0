"""Keras' losses as per-sample metrics: the sample average of a loss's value ℓᵢ (a = y_pred,
y = y_true, ε = 1e-7), computed by the loss's `*_per_sample` form in tidu.functional:

    mean_absolute_percentage_error    100·mean_j |y_j − a_j| / max(|y_j|, ε)
    mean_squared_logarithmic_error    mean_j (ln(max(a_j, ε) + 1) − ln(max(y_j, ε) + 1))²
    poisson                           mean_j a_j − y_j·ln(a_j + ε)
    hinge / squared_hinge             mean_j max(1 − y_j·a_j, 0)  /  its square   (0/1 -> −1/1)
    categorical_hinge                 max(max_j (1 − y_j)·a_j − Σ_j y_j·a_j + 1, 0)
    log_cosh                          mean_j ln cosh(a_j − y_j)
    kl_divergence                     Σ_j y_j·ln(y_j / a_j),  y, a clipped to [ε, 1]
    cosine_similarity                 +Σ_j ŷ_j·â_j,  x̂ = x / max(‖x‖₂, ε)   (the loss's negative)
"""
from tidu import functional as F
from tidu.autograd import Tensor, no_grad
from tidu.metrics.core import MeanMetricWrapper, to_numpy

__all__ = ["MeanAbsolutePercentageError", "MeanSquaredLogarithmicError", "Poisson", "Hinge",
           "SquaredHinge", "CategoricalHinge", "LogCoshError", "KLDivergence", "CosineSimilarity",
           "mean_absolute_percentage_error", "mean_squared_logarithmic_error", "poisson", "hinge",
           "squared_hinge", "categorical_hinge", "log_cosh", "kl_divergence", "cosine_similarity"]


def _per_sample(fn, y_true, y_pred, **kwargs):
    with no_grad():
        return fn(Tensor(to_numpy(y_pred)), to_numpy(y_true), **kwargs).data


# --- per-sample functions (NumPy in, NumPy (N,) out) ----------------------------------------
def mean_absolute_percentage_error(y_true, y_pred):
    return _per_sample(F.mean_absolute_percentage_error_per_sample, y_true, y_pred)


def mean_squared_logarithmic_error(y_true, y_pred):
    return _per_sample(F.mean_squared_logarithmic_error_per_sample, y_true, y_pred)


def poisson(y_true, y_pred):
    return _per_sample(F.poisson_per_sample, y_true, y_pred)


def hinge(y_true, y_pred):
    return _per_sample(F.hinge_per_sample, y_true, y_pred)


def squared_hinge(y_true, y_pred):
    return _per_sample(F.squared_hinge_per_sample, y_true, y_pred)


def categorical_hinge(y_true, y_pred):
    return _per_sample(F.categorical_hinge_per_sample, y_true, y_pred)


def log_cosh(y_true, y_pred):
    return _per_sample(F.log_cosh_per_sample, y_true, y_pred)


def kl_divergence(y_true, y_pred):
    return _per_sample(F.kl_divergence_per_sample, y_true, y_pred)


def cosine_similarity(y_true, y_pred, axis=-1):
    return -_per_sample(F.cosine_similarity_per_sample, y_true, y_pred, axis=axis)


# --- stateful metrics ----------------------------------------------------------------------
class MeanAbsolutePercentageError(MeanMetricWrapper):
    def __init__(self, name="mean_absolute_percentage_error", dtype=None):
        super().__init__(mean_absolute_percentage_error, name, dtype)


class MeanSquaredLogarithmicError(MeanMetricWrapper):
    def __init__(self, name="mean_squared_logarithmic_error", dtype=None):
        super().__init__(mean_squared_logarithmic_error, name, dtype)


class Poisson(MeanMetricWrapper):
    def __init__(self, name="poisson", dtype=None):
        super().__init__(poisson, name, dtype)


class Hinge(MeanMetricWrapper):
    def __init__(self, name="hinge", dtype=None):
        super().__init__(hinge, name, dtype)


class SquaredHinge(MeanMetricWrapper):
    def __init__(self, name="squared_hinge", dtype=None):
        super().__init__(squared_hinge, name, dtype)


class CategoricalHinge(MeanMetricWrapper):
    def __init__(self, name="categorical_hinge", dtype=None):
        super().__init__(categorical_hinge, name, dtype)


class LogCoshError(MeanMetricWrapper):
    """Keras names it 'logcosh' by default."""

    def __init__(self, name="logcosh", dtype=None):
        super().__init__(log_cosh, name, dtype)


class KLDivergence(MeanMetricWrapper):
    def __init__(self, name="kl_divergence", dtype=None):
        super().__init__(kl_divergence, name, dtype)


class CosineSimilarity(MeanMetricWrapper):
    def __init__(self, name="cosine_similarity", dtype=None, axis=-1):
        super().__init__(cosine_similarity, name, dtype, axis=axis)
