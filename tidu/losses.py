"""Losses with Keras' names and argument order: `loss(y_true, y_pred, sample_weight=None)`.

A loss makes one value ℓᵢ per sample (the last axis reduced; a 1-D prediction is N samples of
one output) and reduces them as Keras 3 does, by `reduction`:

    'sum_over_batch_size' (default), 'mean'   Σ wᵢ·ℓᵢ / N      (N = number of values ℓᵢ)
    'sum'                                      Σ wᵢ·ℓᵢ
    'mean_with_sample_weight'                  Σ wᵢ·ℓᵢ / Σ wᵢ
    'none', None                               the values wᵢ·ℓᵢ, one per sample

with wᵢ = sample_weight (1 when not given). The math lives in `tidu.functional` (prediction
first, target second): fused ops for the default reduction of the older losses, the composed
`*_per_sample` forms of tidu.functional.sample_losses otherwise; this module maps Keras'
names onto them. ε = 1e-7 (Keras' backend.epsilon()).

    name(s)                               per-sample loss ℓ (a = y_pred, y = y_true)
    mse, mean_squared_error               mean_j (a_j − y_j)²
    quadratic, quadratic_cost             ½ Σ_j (a_j − y_j)²       (the notes' C = 1/2n Σ‖y − a‖²)
    mae, mean_absolute_error              mean_j |a_j − y_j|
    mape, mean_absolute_percentage_error  100·mean_j |y_j − a_j| / max(|y_j|, ε)
    msle, mean_squared_logarithmic_error  mean_j (ln(max(a_j, ε) + 1) − ln(max(y_j, ε) + 1))²
    huber                                 mean_j ½e² if |e| <= δ else δ(|e| − ½δ),  e = a − y
    log_cosh, logcosh                     mean_j ln cosh(a_j − y_j)
    cosine_similarity                     −Σ_j ŷ_j·â_j,  x̂ = x / max(‖x‖₂, ε)   (axis −1)
    hinge                                 mean_j max(1 − y_j a_j, 0)
    squared_hinge                         mean_j max(1 − y_j a_j, 0)²
    categorical_hinge                     max(max_j (1 − y_j)·a_j − Σ_j y_j·a_j + 1, 0)
    poisson                               mean_j a_j − y_j ln(a_j + ε)
    kl_divergence, kld                    Σ_j y_j ln(y_j / a_j)
    binary_crossentropy, bce              −mean_j [y ln a + (1 − y) ln(1 − a)]
    categorical_crossentropy, cce         −Σ_j y_j ln a_j
    sparse_categorical_crossentropy       −ln a_label

The hinge losses map targets that are all 0 or 1 to −1 / 1 first, as Keras does. With
from_logits=True the prediction is the pre-activation z (a = softmax(z) or sigmoid(z)),
which is both faster and stabler; `Model.fit` picks that fused path by itself when the last
layer is softmax/sigmoid and the loss is the matching cross-entropy.
"""
from tidu import functional as F
from tidu._registry import Configurable, did_you_mean, split_config, to_config
from tidu.autograd import Tensor

__all__ = ["Loss", "LossFunctionWrapper", "MeanSquaredError", "QuadraticCost", "MeanAbsoluteError",
           "MeanAbsolutePercentageError", "MeanSquaredLogarithmicError", "Huber", "LogCosh",
           "CosineSimilarity", "Hinge", "SquaredHinge", "CategoricalHinge", "Poisson", "KLDivergence",
           "BinaryCrossentropy", "CategoricalCrossentropy", "SparseCategoricalCrossentropy",
           "mean_squared_error", "quadratic_cost", "mean_absolute_error",
           "mean_absolute_percentage_error", "mape", "mean_squared_logarithmic_error", "msle",
           "huber", "log_cosh", "logcosh", "cosine_similarity", "hinge", "squared_hinge",
           "categorical_hinge", "poisson", "kl_divergence", "binary_crossentropy",
           "categorical_crossentropy", "sparse_categorical_crossentropy",
           "REDUCTIONS", "get", "serialize", "deserialize"]

REDUCTIONS = F.REDUCTIONS
_FUSED_REDUCTIONS = ("sum_over_batch_size", "mean")   # Σ wᵢ·ℓᵢ / N: what the fused ops compute


def _tensor(x):
    return x if isinstance(x, Tensor) else Tensor(x)


class Loss(Configurable):
    """Base class: `loss(y_true, y_pred, sample_weight=None)` -> the values ℓᵢ reduced by
    `reduction` (a 0-d Tensor, or one value per sample for 'none').

    A subclass defines `values(y_pred, y_true)` (the per-sample ℓ, a Tensor) and may define
    `call(y_pred, y_true, sample_weight)`, a faster Σ wᵢ·ℓᵢ / N used for the default reduction.
    """

    def __init__(self, name=None, reduction="sum_over_batch_size"):
        if reduction not in REDUCTIONS:
            raise ValueError(f"{type(self).__name__}: expected reduction to be one of "
                             f"{', '.join(map(repr, REDUCTIONS))}, got reduction={reduction!r}")
        self.name = name or _snake(type(self).__name__)
        self.reduction = reduction

    def __call__(self, y_true, y_pred, sample_weight=None):
        y_pred = _tensor(y_pred)
        y_true = y_true.data if isinstance(y_true, Tensor) else y_true
        if self.reduction in _FUSED_REDUCTIONS:
            return self.call(y_pred, y_true, sample_weight)
        return F.reduce_loss(self.values(y_pred, y_true), sample_weight, self.reduction, self.name)

    def call(self, y_pred, y_true, sample_weight=None):
        """Σ wᵢ·ℓᵢ / N from `values`."""
        return F.reduce_loss(self.values(y_pred, y_true), sample_weight, name=self.name)

    def values(self, y_pred, y_true):
        raise NotImplementedError(f"{type(self).__name__} defines no per-sample `values(y_pred, "
                                  f"y_true)`, which reduction={self.reduction!r} needs")

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "name")
        return f"{type(self).__name__}({args})"


def _snake(name):
    out = []
    for i, c in enumerate(name):
        if c.isupper() and i and not name[i - 1].isupper():
            out.append("_")
        out.append(c.lower())
    return "".join(out)


class MeanSquaredError(Loss):
    """ℓ = mean_j (a_j − y_j)²."""

    def __init__(self, name="mean_squared_error", reduction="sum_over_batch_size"):
        super().__init__(name, reduction)

    def call(self, y_pred, y_true, sample_weight=None):
        return F.mean_squared_error(y_pred, y_true, sample_weight=sample_weight)

    def values(self, y_pred, y_true):
        return F.mean_squared_error_per_sample(y_pred, y_true)


class QuadraticCost(Loss):
    """ℓ = ½ Σ_j (a_j − y_j)², the notes' quadratic cost C = (1/2n) Σₓ ‖y(x) − a‖²."""

    def __init__(self, name="quadratic_cost", reduction="sum_over_batch_size"):
        super().__init__(name, reduction)

    def call(self, y_pred, y_true, sample_weight=None):
        if sample_weight is None:
            return F.quadratic_cost(y_pred, y_true)
        return super().call(y_pred, y_true, sample_weight)

    def values(self, y_pred, y_true):
        return F.quadratic_cost_per_sample(y_pred, y_true)


class MeanAbsoluteError(Loss):
    """ℓ = mean_j |a_j − y_j|."""

    def __init__(self, name="mean_absolute_error", reduction="sum_over_batch_size"):
        super().__init__(name, reduction)

    def call(self, y_pred, y_true, sample_weight=None):
        return F.mean_absolute_error(y_pred, y_true, sample_weight=sample_weight)

    def values(self, y_pred, y_true):
        return F.mean_absolute_error_per_sample(y_pred, y_true)


class MeanAbsolutePercentageError(Loss):
    """ℓ = 100·mean_j |y_j − a_j| / max(|y_j|, ε)."""

    def __init__(self, reduction="sum_over_batch_size", name="mean_absolute_percentage_error"):
        super().__init__(name, reduction)

    def values(self, y_pred, y_true):
        return F.mean_absolute_percentage_error_per_sample(y_pred, y_true)


class MeanSquaredLogarithmicError(Loss):
    """ℓ = mean_j (ln(max(a_j, ε) + 1) − ln(max(y_j, ε) + 1))²."""

    def __init__(self, reduction="sum_over_batch_size", name="mean_squared_logarithmic_error"):
        super().__init__(name, reduction)

    def values(self, y_pred, y_true):
        return F.mean_squared_logarithmic_error_per_sample(y_pred, y_true)


class Huber(Loss):
    """ℓ = mean_j h(a_j − y_j),  h(e) = ½e² for |e| <= δ, δ·(|e| − ½δ) beyond (δ = delta)."""

    def __init__(self, delta=1.0, name="huber_loss", reduction="sum_over_batch_size"):
        if not delta > 0:
            raise ValueError(f"Huber: expected delta > 0, got delta={delta!r}")
        super().__init__(name, reduction)
        self.delta = float(delta)

    def call(self, y_pred, y_true, sample_weight=None):
        return F.huber(y_pred, y_true, delta=self.delta, sample_weight=sample_weight)

    def values(self, y_pred, y_true):
        return F.huber_per_sample(y_pred, y_true, delta=self.delta)

    def get_config(self):
        return {"delta": self.delta, **super().get_config()}


class LogCosh(Loss):
    """ℓ = mean_j ln cosh(a_j − y_j)."""

    def __init__(self, reduction="sum_over_batch_size", name="log_cosh"):
        super().__init__(name, reduction)

    def values(self, y_pred, y_true):
        return F.log_cosh_per_sample(y_pred, y_true)


class CosineSimilarity(Loss):
    """ℓ = −Σ_j ŷ_j·â_j along `axis`, x̂ = x / max(‖x‖₂, ε): −1 when a and y point the same way."""

    def __init__(self, axis=-1, reduction="sum_over_batch_size", name="cosine_similarity"):
        super().__init__(name, reduction)
        self.axis = int(axis)

    def values(self, y_pred, y_true):
        return F.cosine_similarity_per_sample(y_pred, y_true, axis=self.axis)

    def get_config(self):
        return {"axis": self.axis, **super().get_config()}


class Hinge(Loss):
    """ℓ = mean_j max(1 − y_j·a_j, 0) for y in {−1, 1} (0/1 targets are mapped to −1/1)."""

    def __init__(self, name="hinge", reduction="sum_over_batch_size"):
        super().__init__(name, reduction)

    def call(self, y_pred, y_true, sample_weight=None):
        return F.hinge(y_pred, y_true, sample_weight=sample_weight)

    def values(self, y_pred, y_true):
        return F.hinge_per_sample(y_pred, y_true)


class SquaredHinge(Loss):
    """ℓ = mean_j max(1 − y_j·a_j, 0)² for y in {−1, 1} (0/1 targets are mapped to −1/1)."""

    def __init__(self, reduction="sum_over_batch_size", name="squared_hinge"):
        super().__init__(name, reduction)

    def values(self, y_pred, y_true):
        return F.squared_hinge_per_sample(y_pred, y_true)


class CategoricalHinge(Loss):
    """ℓ = max(neg − pos + 1, 0),  pos = Σ_j y_j·a_j,  neg = max_j (1 − y_j)·a_j."""

    def __init__(self, reduction="sum_over_batch_size", name="categorical_hinge"):
        super().__init__(name, reduction)

    def values(self, y_pred, y_true):
        return F.categorical_hinge_per_sample(y_pred, y_true)


class Poisson(Loss):
    """ℓ = mean_j a_j − y_j·ln(a_j + ε)."""

    def __init__(self, reduction="sum_over_batch_size", name="poisson"):
        super().__init__(name, reduction)

    def values(self, y_pred, y_true):
        return F.poisson_per_sample(y_pred, y_true)


class KLDivergence(Loss):
    """ℓ = Σ_j y_j ln(y_j / a_j)."""

    def __init__(self, name="kl_divergence", reduction="sum_over_batch_size"):
        super().__init__(name, reduction)

    def call(self, y_pred, y_true, sample_weight=None):
        return F.kl_divergence(y_pred, y_true, sample_weight=sample_weight)

    def values(self, y_pred, y_true):
        return F.kl_divergence_per_sample(y_pred, y_true)


class BinaryCrossentropy(Loss):
    """ℓ = −mean_j [y ln a + (1 − y) ln(1 − a)];  from_logits: a = sigmoid(y_pred)."""

    def __init__(self, from_logits=False, name="binary_crossentropy", reduction="sum_over_batch_size"):
        super().__init__(name, reduction)
        self.from_logits = bool(from_logits)

    def call(self, y_pred, y_true, sample_weight=None):
        return F.binary_crossentropy(y_pred, y_true, from_logits=self.from_logits,
                                     sample_weight=sample_weight)

    def values(self, y_pred, y_true):
        return F.binary_crossentropy_per_sample(y_pred, y_true, from_logits=self.from_logits)

    def get_config(self):
        return {"from_logits": self.from_logits, **super().get_config()}


class CategoricalCrossentropy(Loss):
    """ℓ = −Σ_j y_j ln a_j for one-hot (or soft) y;  from_logits: a = softmax(y_pred)."""

    def __init__(self, from_logits=False, name="categorical_crossentropy",
                 reduction="sum_over_batch_size"):
        super().__init__(name, reduction)
        self.from_logits = bool(from_logits)

    def call(self, y_pred, y_true, sample_weight=None):
        return F.categorical_crossentropy(y_pred, y_true, from_logits=self.from_logits,
                                          sample_weight=sample_weight)

    def values(self, y_pred, y_true):
        return F.categorical_crossentropy_per_sample(y_pred, y_true, from_logits=self.from_logits)

    def get_config(self):
        return {"from_logits": self.from_logits, **super().get_config()}


class SparseCategoricalCrossentropy(Loss):
    """ℓ = −ln a_label for integer labels;  from_logits: a = softmax(y_pred)."""

    def __init__(self, from_logits=False, name="sparse_categorical_crossentropy",
                 reduction="sum_over_batch_size"):
        super().__init__(name, reduction)
        self.from_logits = bool(from_logits)

    def call(self, y_pred, y_true, sample_weight=None):
        return F.sparse_categorical_crossentropy(y_pred, y_true, from_logits=self.from_logits,
                                                 sample_weight=sample_weight)

    def values(self, y_pred, y_true):
        return F.sparse_categorical_crossentropy_per_sample(y_pred, y_true,
                                                            from_logits=self.from_logits)

    def get_config(self):
        return {"from_logits": self.from_logits, **super().get_config()}


class LossFunctionWrapper(Loss):
    """A user function `fn(y_true, y_pred)` returning a Tensor: per-sample values (N,) or
    per-element values, each sample's weight applying to all of its values."""

    def __init__(self, fn, name=None, reduction="sum_over_batch_size", **kwargs):
        super().__init__(name or getattr(fn, "__name__", "custom_loss"), reduction)
        self.fn, self.kwargs = fn, kwargs

    def call(self, y_pred, y_true, sample_weight=None):
        out = self.values(y_pred, y_true)
        if sample_weight is not None and out.ndim >= 1:
            if out.ndim > 1:
                out = F.mean(out, axis=tuple(range(1, out.ndim)))
            out = out * F.reshape(_tensor(sample_weight).astype(out.dtype), (-1,))
        return F.mean(out) if out.ndim else out

    def values(self, y_pred, y_true):
        return _tensor(self.fn(y_true, y_pred, **self.kwargs))


# --- function forms (Keras' `keras.losses.categorical_crossentropy(y_true, y_pred)`) -----
# Unlike Keras, which returns one value per sample, these return the batch mean.
def mean_squared_error(y_true, y_pred, sample_weight=None):
    return MeanSquaredError()(y_true, y_pred, sample_weight)


def quadratic_cost(y_true, y_pred, sample_weight=None):
    return QuadraticCost()(y_true, y_pred, sample_weight)


def mean_absolute_error(y_true, y_pred, sample_weight=None):
    return MeanAbsoluteError()(y_true, y_pred, sample_weight)


def mean_absolute_percentage_error(y_true, y_pred, sample_weight=None):
    return MeanAbsolutePercentageError()(y_true, y_pred, sample_weight)


def mean_squared_logarithmic_error(y_true, y_pred, sample_weight=None):
    return MeanSquaredLogarithmicError()(y_true, y_pred, sample_weight)


def huber(y_true, y_pred, delta=1.0, sample_weight=None):
    return Huber(delta)(y_true, y_pred, sample_weight)


def log_cosh(y_true, y_pred, sample_weight=None):
    return LogCosh()(y_true, y_pred, sample_weight)


def cosine_similarity(y_true, y_pred, axis=-1, sample_weight=None):
    return CosineSimilarity(axis)(y_true, y_pred, sample_weight)


def hinge(y_true, y_pred, sample_weight=None):
    return Hinge()(y_true, y_pred, sample_weight)


def squared_hinge(y_true, y_pred, sample_weight=None):
    return SquaredHinge()(y_true, y_pred, sample_weight)


def categorical_hinge(y_true, y_pred, sample_weight=None):
    return CategoricalHinge()(y_true, y_pred, sample_weight)


def poisson(y_true, y_pred, sample_weight=None):
    return Poisson()(y_true, y_pred, sample_weight)


def kl_divergence(y_true, y_pred, sample_weight=None):
    return KLDivergence()(y_true, y_pred, sample_weight)


def binary_crossentropy(y_true, y_pred, from_logits=False, sample_weight=None):
    return BinaryCrossentropy(from_logits)(y_true, y_pred, sample_weight)


def categorical_crossentropy(y_true, y_pred, from_logits=False, sample_weight=None):
    return CategoricalCrossentropy(from_logits)(y_true, y_pred, sample_weight)


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False, sample_weight=None):
    return SparseCategoricalCrossentropy(from_logits)(y_true, y_pred, sample_weight)


mape, msle, logcosh = mean_absolute_percentage_error, mean_squared_logarithmic_error, log_cosh

_CLASSES = {cls.__name__: cls for cls in (
    MeanSquaredError, QuadraticCost, MeanAbsoluteError, MeanAbsolutePercentageError,
    MeanSquaredLogarithmicError, Huber, LogCosh, CosineSimilarity, Hinge, SquaredHinge,
    CategoricalHinge, Poisson, KLDivergence, BinaryCrossentropy, CategoricalCrossentropy,
    SparseCategoricalCrossentropy)}
_NAMES = {
    "mse": MeanSquaredError, "mean_squared_error": MeanSquaredError,
    "quadratic": QuadraticCost, "quadratic_cost": QuadraticCost,
    "mae": MeanAbsoluteError, "mean_absolute_error": MeanAbsoluteError,
    "mape": MeanAbsolutePercentageError, "mean_absolute_percentage_error": MeanAbsolutePercentageError,
    "msle": MeanSquaredLogarithmicError, "mean_squared_logarithmic_error": MeanSquaredLogarithmicError,
    "huber": Huber, "huber_loss": Huber, "log_cosh": LogCosh, "logcosh": LogCosh,
    "cosine_similarity": CosineSimilarity,
    "hinge": Hinge, "squared_hinge": SquaredHinge, "categorical_hinge": CategoricalHinge,
    "poisson": Poisson,
    "kl_divergence": KLDivergence, "kld": KLDivergence, "kullback_leibler_divergence": KLDivergence,
    "binary_crossentropy": BinaryCrossentropy, "bce": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy, "cce": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
}
_FUNCTIONS = {mean_squared_error: MeanSquaredError, quadratic_cost: QuadraticCost,
              mean_absolute_error: MeanAbsoluteError,
              mean_absolute_percentage_error: MeanAbsolutePercentageError,
              mean_squared_logarithmic_error: MeanSquaredLogarithmicError, huber: Huber,
              log_cosh: LogCosh, cosine_similarity: CosineSimilarity, hinge: Hinge,
              squared_hinge: SquaredHinge, categorical_hinge: CategoricalHinge, poisson: Poisson,
              kl_divergence: KLDivergence,
              binary_crossentropy: BinaryCrossentropy, categorical_crossentropy: CategoricalCrossentropy,
              sparse_categorical_crossentropy: SparseCategoricalCrossentropy}


def _unknown(identifier):
    allowed = sorted(set(_NAMES) | set(_CLASSES))
    return ValueError(f"Unknown loss {identifier!r}{did_you_mean(str(identifier), allowed)} "
                      f"Allowed: {', '.join(allowed)}")


def get(identifier):
    """A Loss from a name ('categorical_crossentropy', 'mse', ...), a class name, a config dict
    ({'class_name': ..., 'config': {...}}), a Loss, a Loss class or a function
    `fn(y_true, y_pred)`; unknown names raise ValueError listing the allowed ones."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str):
        key = identifier if identifier in _CLASSES else identifier.lower()
        cls = _CLASSES.get(key) or _NAMES.get(key)
        if cls is None:
            raise _unknown(identifier)
        return cls()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    if callable(identifier):
        cls = _FUNCTIONS.get(identifier)
        return cls() if cls is not None else LossFunctionWrapper(identifier)
    raise TypeError(f"losses.get: expected a loss name, config dict, Loss or function, "
                    f"got {type(identifier).__name__}: {identifier!r}")


def serialize(loss):
    """{'class_name': ..., 'config': {...}} for a built-in Loss (a JSON-able dict)."""
    loss = get(loss)
    if type(loss).__name__ not in _CLASSES:
        raise ValueError(f"losses.serialize: {loss!r} is a custom loss; only the built-in "
                         f"losses ({', '.join(sorted(_CLASSES))}) can be written to a model file")
    return to_config(loss)


def deserialize(config, custom_objects=None):
    """The Loss described by `serialize`'s dict (or a name)."""
    if isinstance(config, str):
        return get(config)
    name, config = split_config(config, "losses.deserialize",
                                expected="{'class_name': ..., 'config': {...}}")
    cls = (custom_objects or {}).get(name) or _CLASSES.get(name)
    if cls is None:
        raise _unknown(name)
    if not isinstance(cls, type):
        return get(cls)
    return cls.from_config(config)
