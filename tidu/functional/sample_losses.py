"""Per-sample losses l_i (unreduced) and Keras 3's reductions of them, composed from Tensor ops.

Argument order is (y_pred, y_true), as in tidu.functional.losses. Each `<name>_per_sample`
returns one value per sample: the last axis is reduced (a 1-D prediction (N,) is N samples of
one output each, so it is read as (N, 1)). Autograd gives every gradient. With a = y_pred,
y = y_true, ε = 1e-7 (Keras' backend.epsilon()), per sample over the last axis j:

    mean_absolute_percentage_error    100·mean_j |y_j − a_j| / max(|y_j|, ε)
    mean_squared_logarithmic_error    mean_j (ln(max(a_j, ε) + 1) − ln(max(y_j, ε) + 1))²
    poisson                           mean_j a_j − y_j·ln(a_j + ε)
    squared_hinge                     mean_j max(1 − y_j·a_j, 0)²       (0/1 targets -> −1/1)
    categorical_hinge                 max(max_j (1 − y_j)·a_j − Σ_j y_j·a_j + 1, 0)
    log_cosh                          mean_j ln cosh(a_j − y_j) = x + softplus(−2x) − ln 2
    cosine_similarity                 −Σ_j ŷ_j·â_j,  x̂ = x / max(‖x‖₂, ε)  (along `axis`)

and the per-sample forms of the losses in tidu.functional.losses (there fused with the batch
mean). `reduce_loss` applies a Keras reduction to values v with sample weights w:

    'sum_over_batch_size', 'mean'     Σ w·v / size(v)          (0 when v is empty)
    'sum'                             Σ w·v
    'mean_with_sample_weight'         Σ w·v / Σ w              (0 when Σ w = 0; size(v) without w)
    'none', None                      w·v, unreduced
"""
import math

from tidu.autograd.tensor import Tensor
from tidu.functional import activations as A, math as M, reductions as R, shape as S
from tidu.functional.losses import (EPSILON, _check_batch, _class_axis, _labels, _one_hot,
                                    _prediction, _target, _weights)

__all__ = ["REDUCTIONS", "reduce_loss",
           "mean_absolute_percentage_error", "mape", "mean_squared_logarithmic_error", "msle",
           "poisson", "squared_hinge", "categorical_hinge", "log_cosh", "logcosh",
           "cosine_similarity",
           "mean_absolute_percentage_error_per_sample", "mean_squared_logarithmic_error_per_sample",
           "poisson_per_sample", "squared_hinge_per_sample", "categorical_hinge_per_sample",
           "log_cosh_per_sample", "cosine_similarity_per_sample",
           "mean_squared_error_per_sample", "mean_absolute_error_per_sample",
           "quadratic_cost_per_sample", "huber_per_sample", "hinge_per_sample",
           "kl_divergence_per_sample", "binary_crossentropy_per_sample",
           "categorical_crossentropy_per_sample", "sparse_categorical_crossentropy_per_sample"]

REDUCTIONS = ("sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none", None)


def reduce_loss(values, sample_weight=None, reduction="sum_over_batch_size", name="loss"):
    """Keras 3's reduction of per-sample values (see the module docstring); sample_weight is
    one weight per sample (N,) or one per value, and gets no gradient."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"{name}: expected reduction to be one of {', '.join(map(repr, REDUCTIONS))}, "
                         f"got reduction={reduction!r}")
    v = values if isinstance(values, Tensor) else Tensor(values)
    w = _weights(sample_weight, v.shape, v.dtype, name)
    if w is not None:
        v = v * Tensor(w)
    if reduction in (None, "none") or v.ndim == 0:
        return v
    total = R.sum(v)
    if reduction == "sum":
        return total
    divisor = float(w.sum()) if reduction == "mean_with_sample_weight" and w is not None else v.size
    return total / divisor if divisor else total * 0.0


def _pair(y_pred, y_true, name):
    """a and y as Tensors of a's dtype and shape, 1-D read as (N, 1)."""
    a = _prediction(y_pred)
    _check_batch(a, name)
    y = _target(y_true, a, name)
    if a.ndim == 1:
        a, y = S.reshape(a, (-1, 1)), S.reshape(y, (-1, 1))
    return a, y


def _mean(e):
    return R.mean(e, axis=-1)


def _sum(e):
    return R.sum(e, axis=-1)


def _hinge_labels(y):
    """Keras turns targets that are all 0 or 1 into −1 / 1 (2y − 1); others are kept."""
    yd = y.data
    if not y.requires_grad and bool(((yd == 0) | (yd == 1)).all()):
        return Tensor(2 * yd - 1)
    return y


# --- Keras' losses new here, per sample ---------------------------------------------------
def mean_absolute_percentage_error_per_sample(y_pred, y_true):
    """100·mean_j |y_j − a_j| / max(|y_j|, ε)."""
    a, y = _pair(y_pred, y_true, "mean_absolute_percentage_error")
    return 100.0 * _mean(M.abs((y - a) / M.maximum(M.abs(y), EPSILON)))


def mean_squared_logarithmic_error_per_sample(y_pred, y_true):
    """mean_j (ln(max(a_j, ε) + 1) − ln(max(y_j, ε) + 1))²."""
    a, y = _pair(y_pred, y_true, "mean_squared_logarithmic_error")
    d = M.log(M.maximum(a, EPSILON) + 1.0) - M.log(M.maximum(y, EPSILON) + 1.0)
    return _mean(d * d)


def poisson_per_sample(y_pred, y_true):
    """mean_j a_j − y_j·ln(a_j + ε)."""
    a, y = _pair(y_pred, y_true, "poisson")
    return _mean(a - y * M.log(a + EPSILON))


def squared_hinge_per_sample(y_pred, y_true):
    """mean_j max(1 − y_j·a_j, 0)², y in {−1, 1} (0/1 targets mapped to −1/1)."""
    a, y = _pair(y_pred, y_true, "squared_hinge")
    h = M.maximum(1.0 - _hinge_labels(y) * a, 0.0)
    return _mean(h * h)


def categorical_hinge_per_sample(y_pred, y_true):
    """max(neg − pos + 1, 0) with pos = Σ_j y_j·a_j, neg = max_j (1 − y_j)·a_j."""
    a, y = _pair(y_pred, y_true, "categorical_hinge")
    pos = _sum(y * a)
    neg = R.max((1.0 - y) * a, axis=-1)
    return M.maximum(neg - pos + 1.0, 0.0)


def log_cosh_per_sample(y_pred, y_true):
    """mean_j ln cosh(x_j), x = a − y, as x + softplus(−2x) − ln 2 (no overflow)."""
    a, y = _pair(y_pred, y_true, "log_cosh")
    x = a - y
    return _mean(x + A.softplus(-2.0 * x) - math.log(2.0))


def _l2_normalize(x, axis):
    """x / max(‖x‖₂, ε) along axis, as x / sqrt(max(Σ x², ε²)) (a finite gradient at 0)."""
    return x / M.sqrt(M.maximum(R.sum(x * x, axis=axis, keepdims=True), EPSILON * EPSILON))


def cosine_similarity_per_sample(y_pred, y_true, axis=-1):
    """−Σ_j ŷ_j·â_j along `axis`, x̂ = x / max(‖x‖₂, ε): −1 for parallel vectors."""
    name = "cosine_similarity"
    a, y = _pair(y_pred, y_true, name)
    axis = _class_axis(a, axis, name)
    return -R.sum(_l2_normalize(y, axis) * _l2_normalize(a, axis), axis=axis)


# --- the losses of tidu.functional.losses, per sample -------------------------------------
def mean_squared_error_per_sample(y_pred, y_true):
    """mean_j (a_j − y_j)²."""
    a, y = _pair(y_pred, y_true, "mean_squared_error")
    d = a - y
    return _mean(d * d)


def mean_absolute_error_per_sample(y_pred, y_true):
    """mean_j |a_j − y_j|."""
    a, y = _pair(y_pred, y_true, "mean_absolute_error")
    return _mean(M.abs(a - y))


def quadratic_cost_per_sample(y_pred, y_true):
    """½ Σ_j (a_j − y_j)²."""
    a, y = _pair(y_pred, y_true, "quadratic_cost")
    d = a - y
    return 0.5 * _sum(d * d)


def huber_per_sample(y_pred, y_true, delta=1.0):
    """mean_j ½q² + δ·(|x| − q), x = a − y, q = min(|x|, δ)."""
    a, y = _pair(y_pred, y_true, "huber")
    ax = M.abs(a - y)
    q = M.minimum(ax, float(delta))
    return _mean(0.5 * q * q + float(delta) * (ax - q))


def hinge_per_sample(y_pred, y_true):
    """mean_j max(1 − y_j·a_j, 0) (0/1 targets mapped to −1/1)."""
    a, y = _pair(y_pred, y_true, "hinge")
    return _mean(M.maximum(1.0 - _hinge_labels(y) * a, 0.0))


def kl_divergence_per_sample(y_pred, y_true):
    """Σ_j y_j·ln(y_j / a_j), y and a clipped to [ε, 1]."""
    a, y = _pair(y_pred, y_true, "kl_divergence")
    yc, ac = M.clip(y, EPSILON, 1), M.clip(a, EPSILON, 1)
    return _sum(yc * (M.log(yc) - M.log(ac)))


def binary_crossentropy_per_sample(y_pred, y_true, from_logits=False):
    """−mean_j [y·ln p + (1 − y)·ln(1 − p)], p = clip(a, ε, 1 − ε); from logits z, the
    stable max(z, 0) − z·y + softplus(−|z|) (no clipping)."""
    z, y = _pair(y_pred, y_true, "binary_crossentropy")
    if from_logits:
        return _mean(A.relu(z) - z * y + A.softplus(-M.abs(z)))
    p = M.clip(z, EPSILON, 1 - EPSILON)
    return -_mean(y * M.log(p) + (1.0 - y) * M.log(1.0 - p))


def _categorical(a, y, from_logits, axis):
    if from_logits:
        return -R.sum(y * A.log_softmax(a, axis=axis), axis=axis)
    p = a / R.sum(a, axis=axis, keepdims=True)
    return -R.sum(y * M.log(M.clip(p, EPSILON, 1 - EPSILON)), axis=axis)


def categorical_crossentropy_per_sample(y_pred, y_true, from_logits=False, axis=-1):
    """−Σ_j y_j·ln q_j along `axis`, q = clip(a / Σ a, ε, 1 − ε); from logits, ln softmax(z)."""
    name = "categorical_crossentropy"
    a = _prediction(y_pred)
    axis = _class_axis(a, axis, name)
    return _categorical(a, _target(y_true, a, name), from_logits, axis)


def sparse_categorical_crossentropy_per_sample(y_pred, labels, from_logits=False):
    """categorical_crossentropy_per_sample with integer labels (N,) or (N, 1)."""
    name = "sparse_categorical_crossentropy"
    a = _prediction(y_pred)
    _class_axis(a, -1, name)
    y = Tensor(_one_hot(_labels(labels, a.shape, name), a.shape[-1], a.dtype))
    return _categorical(a, y, from_logits, a.ndim - 1)


# --- the new losses, reduced (Keras' default 'sum_over_batch_size') -----------------------
def mean_absolute_percentage_error(y_pred, y_true, sample_weight=None):
    return reduce_loss(mean_absolute_percentage_error_per_sample(y_pred, y_true), sample_weight,
                       name="mean_absolute_percentage_error")


def mean_squared_logarithmic_error(y_pred, y_true, sample_weight=None):
    return reduce_loss(mean_squared_logarithmic_error_per_sample(y_pred, y_true), sample_weight,
                       name="mean_squared_logarithmic_error")


def poisson(y_pred, y_true, sample_weight=None):
    return reduce_loss(poisson_per_sample(y_pred, y_true), sample_weight, name="poisson")


def squared_hinge(y_pred, y_true, sample_weight=None):
    return reduce_loss(squared_hinge_per_sample(y_pred, y_true), sample_weight, name="squared_hinge")


def categorical_hinge(y_pred, y_true, sample_weight=None):
    return reduce_loss(categorical_hinge_per_sample(y_pred, y_true), sample_weight,
                       name="categorical_hinge")


def log_cosh(y_pred, y_true, sample_weight=None):
    return reduce_loss(log_cosh_per_sample(y_pred, y_true), sample_weight, name="log_cosh")


def cosine_similarity(y_pred, y_true, sample_weight=None, axis=-1):
    return reduce_loss(cosine_similarity_per_sample(y_pred, y_true, axis), sample_weight,
                       name="cosine_similarity")


mape, msle, logcosh = mean_absolute_percentage_error, mean_squared_logarithmic_error, log_cosh
