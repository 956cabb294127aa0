"""Metrics with Keras' names: stateful objects whose epoch value is an exact sample average.

    m = get("categorical_accuracy")
    m.update_state(y_true, y_pred)          # once per batch (NumPy arrays or Tensors)
    m.result()                              # Σ wᵢ·vᵢ / Σ wᵢ over every sample seen so far
    m.reset_state()                         # at the start of an epoch

The value of one sample (a = y_pred, y = y_true):

    categorical_accuracy            [argmax a = argmax y]
    sparse_categorical_accuracy     [argmax a = label]
    binary_accuracy                 mean_j [(a_j > threshold) = y_j]        (threshold 0.5)
    top_k_categorical_accuracy      [argmax y among the k largest a_j]      (k = 5)
    mse / mae                       mean_j (a_j − y_j)²,  mean_j |a_j − y_j|
    mape, msle, poisson, hinge, squared_hinge, categorical_hinge, logcosh, kl_divergence,
    cosine_similarity               Keras' losses of these names (tidu.metrics.regression)

Precision, Recall and AUC (tidu.metrics.confusion) count true/false positives/negatives at
thresholds instead and compute their result from the totals.

'accuracy' / 'acc' pick one of the first three as Keras does: from the loss when it says
(binary / categorical / sparse cross-entropy), else from the shapes (one output unit: binary;
integer labels: sparse; one-hot targets: categorical). A loss name (e.g. 'categorical_crossentropy')
is also a metric: the sample-weighted average of the batch losses.
"""

from tidu._registry import did_you_mean, split_config, to_config
from tidu.metrics.confusion import *  # noqa: F401,F403
from tidu.metrics.confusion import AUC, Precision, Recall
from tidu.metrics.core import *  # noqa: F401,F403
from tidu.metrics.core import (Accuracy, AutoAccuracy, BinaryAccuracy, CategoricalAccuracy, LossMetric,
                               Mean, MeanAbsoluteError, MeanMetricWrapper, MeanSquaredError, Metric,
                               SparseCategoricalAccuracy, SparseTopKCategoricalAccuracy,
                               TopKCategoricalAccuracy, binary_accuracy, categorical_accuracy,
                               mean_absolute_error, mean_squared_error, sparse_categorical_accuracy,
                               sparse_top_k_categorical_accuracy, top_k_categorical_accuracy)
from tidu.metrics.regression import *  # noqa: F401,F403
from tidu.metrics.regression import (CategoricalHinge, CosineSimilarity, Hinge, KLDivergence,
                                     LogCoshError, MeanAbsolutePercentageError,
                                     MeanSquaredLogarithmicError, Poisson, SquaredHinge,
                                     categorical_hinge, cosine_similarity, hinge, kl_divergence,
                                     log_cosh, mean_absolute_percentage_error,
                                     mean_squared_logarithmic_error, poisson, squared_hinge)
from tidu.metrics import confusion, core, regression

__all__ = [*core.__all__, *regression.__all__, *confusion.__all__, "get", "serialize", "deserialize"]


_CLASSES = {cls.__name__: cls for cls in (
    Mean, Accuracy, BinaryAccuracy, CategoricalAccuracy, SparseCategoricalAccuracy,
    TopKCategoricalAccuracy, SparseTopKCategoricalAccuracy, MeanSquaredError, MeanAbsoluteError,
    MeanAbsolutePercentageError, MeanSquaredLogarithmicError, Poisson, Hinge, SquaredHinge,
    CategoricalHinge, LogCoshError, KLDivergence, CosineSimilarity, Precision, Recall, AUC)}
_NAMES = {
    "binary_accuracy": BinaryAccuracy, "categorical_accuracy": CategoricalAccuracy,
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "top_k_categorical_accuracy": TopKCategoricalAccuracy,
    "sparse_top_k_categorical_accuracy": SparseTopKCategoricalAccuracy,
    "mse": MeanSquaredError, "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError, "mean_absolute_error": MeanAbsoluteError,
    "mape": MeanAbsolutePercentageError, "mean_absolute_percentage_error": MeanAbsolutePercentageError,
    "msle": MeanSquaredLogarithmicError, "mean_squared_logarithmic_error": MeanSquaredLogarithmicError,
    "poisson": Poisson, "hinge": Hinge, "squared_hinge": SquaredHinge,
    "categorical_hinge": CategoricalHinge, "log_cosh_error": LogCoshError, "logcosh": LogCoshError,
    "kl_divergence": KLDivergence, "kld": KLDivergence, "cosine_similarity": CosineSimilarity,
    "precision": Precision, "recall": Recall, "auc": AUC,
}
_FUNCTIONS = {binary_accuracy: BinaryAccuracy, categorical_accuracy: CategoricalAccuracy,
              sparse_categorical_accuracy: SparseCategoricalAccuracy,
              top_k_categorical_accuracy: TopKCategoricalAccuracy,
              sparse_top_k_categorical_accuracy: SparseTopKCategoricalAccuracy,
              mean_squared_error: MeanSquaredError, mean_absolute_error: MeanAbsoluteError,
              mean_absolute_percentage_error: MeanAbsolutePercentageError,
              mean_squared_logarithmic_error: MeanSquaredLogarithmicError, poisson: Poisson,
              hinge: Hinge, squared_hinge: SquaredHinge, categorical_hinge: CategoricalHinge,
              log_cosh: LogCoshError, kl_divergence: KLDivergence,
              cosine_similarity: CosineSimilarity}
_LOSS_NAMES = ("binary_crossentropy", "categorical_crossentropy", "sparse_categorical_crossentropy",
               "huber", "quadratic_cost")


def _allowed():
    return sorted({"accuracy", "acc", *_NAMES, *_CLASSES, *_LOSS_NAMES})


def _unknown(name):
    return ValueError(f"Unknown metric {name!r}{did_you_mean(str(name), _allowed())} "
                      f"Allowed: {', '.join(_allowed())}")


def get(identifier, loss=None):
    """A Metric from a name, a config dict, a Metric, a Metric class or a per-sample function
    `fn(y_true, y_pred)`. 'accuracy'/'acc' become AutoAccuracy (see the module docstring);
    `loss` (the compiled loss) lets it choose at once. Name as given is the log key
    ('acc' logs as 'acc'). Unknown names raise ValueError listing the allowed ones."""
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, str):
        if identifier in ("accuracy", "acc"):
            return AutoAccuracy(name=identifier, loss=loss)
        cls = _CLASSES.get(identifier) or _NAMES.get(identifier.lower())
        if cls is not None:
            m = cls()
            if identifier in _NAMES:
                m.name = identifier
            return m
        if identifier.lower() in _LOSS_NAMES:
            return LossMetric(identifier.lower(), name=identifier)
        raise _unknown(identifier)
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, type) and issubclass(identifier, Metric):
        return identifier()
    if callable(identifier):
        cls = _FUNCTIONS.get(identifier)
        return cls() if cls is not None else MeanMetricWrapper(identifier)
    raise TypeError(f"metrics.get: expected a metric name, config dict, Metric or function, "
                    f"got {type(identifier).__name__}: {identifier!r}")


def serialize(metric):
    """A JSON-able description: the name for 'accuracy'-style and named metrics, else
    {'class_name': ..., 'config': {...}}."""
    if isinstance(metric, str):
        return metric
    if isinstance(metric, AutoAccuracy):
        return metric.name
    if isinstance(metric, LossMetric):
        return metric.name if metric.name in _LOSS_NAMES else metric.get_config()["loss"]["class_name"]
    if _CLASSES.get(type(metric).__name__) is type(metric):    # a built-in class, not a namesake
        return to_config(metric)
    raise ValueError(f"metrics.serialize: {metric!r} is a custom metric; only built-in metrics "
                     f"can be written to a model file")


def deserialize(config, custom_objects=None, loss=None):
    if isinstance(config, str):
        return get(config, loss=loss)
    name, config = split_config(config, "metrics.deserialize",
                                expected="a name or {'class_name': ..., 'config': {...}}")
    cls = (custom_objects or {}).get(name) or _CLASSES.get(name)
    if cls is None:
        raise _unknown(name)
    return cls.from_config(config)
