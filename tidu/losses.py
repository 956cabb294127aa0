"""Losses with Keras' names and argument order: `loss(y_true, y_pred, sample_weight=None)`.

Each returns a 0-d Tensor: the mean over the batch of the per-sample loss ℓᵢ, weighted by
sample_weight wᵢ when given (Σ wᵢ·ℓᵢ / N, Keras' "sum over batch size"). The math lives in
`tidu.functional` (prediction first, target second); this module maps Keras' names onto it.

    name(s)                                        per-sample loss ℓ (a = y_pred, y = y_true)
    mse, mean_squared_error                        mean_j (a_j − y_j)²
    quadratic, quadratic_cost                      ½ Σ_j (a_j − y_j)²       (the notes' C = 1/2n Σ‖y − a‖²)
    mae, mean_absolute_error                       mean_j |a_j − y_j|
    huber                                          mean_j ½e² if |e| <= δ else δ(|e| − ½δ),  e = a − y
    hinge                                          mean_j max(1 − y_j a_j, 0)
    kl_divergence, kld                             Σ_j y_j ln(y_j / a_j)
    binary_crossentropy, bce                       −mean_j [y ln a + (1 − y) ln(1 − a)]
    categorical_crossentropy, cce                  −Σ_j y_j ln a_j
    sparse_categorical_crossentropy                −ln a_label

With from_logits=True the prediction is the pre-activation z (a = softmax(z) or sigmoid(z)),
which is both faster and stabler; `Model.fit` picks that fused path by itself when the last
layer is softmax/sigmoid and the loss is the matching cross-entropy.
"""
from tidu import functional as F
from tidu._registry import Configurable, did_you_mean, split_config, to_config
from tidu.autograd import Tensor

__all__ = ["Loss", "LossFunctionWrapper", "MeanSquaredError", "QuadraticCost", "MeanAbsoluteError",
           "Huber", "Hinge", "KLDivergence", "BinaryCrossentropy", "CategoricalCrossentropy",
           "SparseCategoricalCrossentropy", "mean_squared_error", "quadratic_cost",
           "mean_absolute_error", "huber", "hinge", "kl_divergence",
           "binary_crossentropy", "categorical_crossentropy", "sparse_categorical_crossentropy",
           "get", "serialize", "deserialize"]


def _tensor(x):
    return x if isinstance(x, Tensor) else Tensor(x)


class Loss(Configurable):
    """Base class: `loss(y_true, y_pred, sample_weight=None)` -> 0-d Tensor (batch mean)."""

    def __init__(self, name=None):
        self.name = name or _snake(type(self).__name__)

    def __call__(self, y_true, y_pred, sample_weight=None):
        return self.call(_tensor(y_pred), y_true.data if isinstance(y_true, Tensor) else y_true,
                         sample_weight)

    def call(self, y_pred, y_true, sample_weight=None):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must define call (abstract)")

    def get_config(self):
        return {"name": self.name}

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

    def __init__(self, name="mean_squared_error"):
        super().__init__(name)

    def call(self, y_pred, y_true, sample_weight=None):
        return F.mean_squared_error(y_pred, y_true, sample_weight=sample_weight)


class QuadraticCost(Loss):
    """ℓ = ½ Σ_j (a_j − y_j)², the notes' quadratic cost C = (1/2n) Σₓ ‖y(x) − a‖²."""

    def __init__(self, name="quadratic_cost"):
        super().__init__(name)

    def call(self, y_pred, y_true, sample_weight=None):
        if sample_weight is None:
            return F.quadratic_cost(y_pred, y_true)
        d = y_pred - _tensor(y_true).astype(y_pred.dtype)
        per_sample = 0.5 * F.sum(d * d, axis=tuple(range(1, d.ndim))) if d.ndim > 1 else 0.5 * d * d
        w = _tensor(sample_weight).astype(y_pred.dtype)
        return F.mean(per_sample * F.reshape(w, (-1,)))


class MeanAbsoluteError(Loss):
    """ℓ = mean_j |a_j − y_j|."""

    def __init__(self, name="mean_absolute_error"):
        super().__init__(name)

    def call(self, y_pred, y_true, sample_weight=None):
        return F.mean_absolute_error(y_pred, y_true, sample_weight=sample_weight)


class Huber(Loss):
    """ℓ = mean_j h(a_j − y_j),  h(e) = ½e² for |e| <= δ, δ·(|e| − ½δ) beyond (δ = delta)."""

    def __init__(self, delta=1.0, name="huber_loss"):
        if not delta > 0:
            raise ValueError(f"Huber: expected delta > 0, got delta={delta!r}")
        super().__init__(name)
        self.delta = float(delta)

    def call(self, y_pred, y_true, sample_weight=None):
        return F.huber(y_pred, y_true, delta=self.delta, sample_weight=sample_weight)

    def get_config(self):
        return {"delta": self.delta, "name": self.name}


class Hinge(Loss):
    """ℓ = mean_j max(1 − y_j·a_j, 0) for y in {−1, 1} (0/1 targets are mapped to −1/1)."""

    def __init__(self, name="hinge"):
        super().__init__(name)

    def call(self, y_pred, y_true, sample_weight=None):
        return F.hinge(y_pred, y_true, sample_weight=sample_weight)


class KLDivergence(Loss):
    """ℓ = Σ_j y_j ln(y_j / a_j)."""

    def __init__(self, name="kl_divergence"):
        super().__init__(name)

    def call(self, y_pred, y_true, sample_weight=None):
        return F.kl_divergence(y_pred, y_true, sample_weight=sample_weight)


class BinaryCrossentropy(Loss):
    """ℓ = −mean_j [y ln a + (1 − y) ln(1 − a)];  from_logits: a = sigmoid(y_pred)."""

    def __init__(self, from_logits=False, name="binary_crossentropy"):
        super().__init__(name)
        self.from_logits = bool(from_logits)

    def call(self, y_pred, y_true, sample_weight=None):
        return F.binary_crossentropy(y_pred, y_true, from_logits=self.from_logits,
                                     sample_weight=sample_weight)

    def get_config(self):
        return {"from_logits": self.from_logits, "name": self.name}


class CategoricalCrossentropy(Loss):
    """ℓ = −Σ_j y_j ln a_j for one-hot (or soft) y;  from_logits: a = softmax(y_pred)."""

    def __init__(self, from_logits=False, name="categorical_crossentropy"):
        super().__init__(name)
        self.from_logits = bool(from_logits)

    def call(self, y_pred, y_true, sample_weight=None):
        return F.categorical_crossentropy(y_pred, y_true, from_logits=self.from_logits,
                                          sample_weight=sample_weight)

    def get_config(self):
        return {"from_logits": self.from_logits, "name": self.name}


class SparseCategoricalCrossentropy(Loss):
    """ℓ = −ln a_label for integer labels;  from_logits: a = softmax(y_pred)."""

    def __init__(self, from_logits=False, name="sparse_categorical_crossentropy"):
        super().__init__(name)
        self.from_logits = bool(from_logits)

    def call(self, y_pred, y_true, sample_weight=None):
        return F.sparse_categorical_crossentropy(y_pred, y_true, from_logits=self.from_logits,
                                                 sample_weight=sample_weight)

    def get_config(self):
        return {"from_logits": self.from_logits, "name": self.name}


class LossFunctionWrapper(Loss):
    """A user function `fn(y_true, y_pred)` returning a Tensor: per-sample values (N,) or
    per-element values are averaged (weighted by sample_weight over the batch axis)."""

    def __init__(self, fn, name=None, **kwargs):
        super().__init__(name or getattr(fn, "__name__", "custom_loss"))
        self.fn, self.kwargs = fn, kwargs

    def call(self, y_pred, y_true, sample_weight=None):
        out = self.fn(y_true, y_pred, **self.kwargs)
        out = _tensor(out)
        if sample_weight is not None and out.ndim >= 1:
            if out.ndim > 1:
                out = F.mean(out, axis=tuple(range(1, out.ndim)))
            out = out * F.reshape(_tensor(sample_weight).astype(out.dtype), (-1,))
        return F.mean(out) if out.ndim else out

    def get_config(self):
        return {"name": self.name}


# --- function forms (Keras' `keras.losses.categorical_crossentropy(y_true, y_pred)`) -----
# Unlike Keras, which returns one value per sample, these return the batch mean.
def mean_squared_error(y_true, y_pred, sample_weight=None):
    return MeanSquaredError()(y_true, y_pred, sample_weight)


def quadratic_cost(y_true, y_pred, sample_weight=None):
    return QuadraticCost()(y_true, y_pred, sample_weight)


def mean_absolute_error(y_true, y_pred, sample_weight=None):
    return MeanAbsoluteError()(y_true, y_pred, sample_weight)


def huber(y_true, y_pred, delta=1.0, sample_weight=None):
    return Huber(delta)(y_true, y_pred, sample_weight)


def hinge(y_true, y_pred, sample_weight=None):
    return Hinge()(y_true, y_pred, sample_weight)


def kl_divergence(y_true, y_pred, sample_weight=None):
    return KLDivergence()(y_true, y_pred, sample_weight)


def binary_crossentropy(y_true, y_pred, from_logits=False, sample_weight=None):
    return BinaryCrossentropy(from_logits)(y_true, y_pred, sample_weight)


def categorical_crossentropy(y_true, y_pred, from_logits=False, sample_weight=None):
    return CategoricalCrossentropy(from_logits)(y_true, y_pred, sample_weight)


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False, sample_weight=None):
    return SparseCategoricalCrossentropy(from_logits)(y_true, y_pred, sample_weight)


_CLASSES = {cls.__name__: cls for cls in (MeanSquaredError, QuadraticCost, MeanAbsoluteError, Huber,
                                          Hinge, KLDivergence, BinaryCrossentropy, CategoricalCrossentropy,
                                          SparseCategoricalCrossentropy)}
_NAMES = {
    "mse": MeanSquaredError, "mean_squared_error": MeanSquaredError,
    "quadratic": QuadraticCost, "quadratic_cost": QuadraticCost,
    "mae": MeanAbsoluteError, "mean_absolute_error": MeanAbsoluteError,
    "huber": Huber, "huber_loss": Huber, "hinge": Hinge,
    "kl_divergence": KLDivergence, "kld": KLDivergence, "kullback_leibler_divergence": KLDivergence,
    "binary_crossentropy": BinaryCrossentropy, "bce": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy, "cce": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
}
_FUNCTIONS = {mean_squared_error: MeanSquaredError, quadratic_cost: QuadraticCost,
              mean_absolute_error: MeanAbsoluteError, huber: Huber, hinge: Hinge,
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
