"""The metric base classes (Metric, Mean, MeanMetricWrapper), accuracy, MSE/MAE and losses as
metrics: the per-sample functions (NumPy in, NumPy (N,) out) and their stateful classes."""
import numpy as np

from tidu import backend, losses
from tidu._registry import Configurable
from tidu.autograd import Tensor, no_grad

__all__ = ["Metric", "Mean", "MeanMetricWrapper", "Accuracy", "BinaryAccuracy", "CategoricalAccuracy",
           "SparseCategoricalAccuracy", "TopKCategoricalAccuracy", "SparseTopKCategoricalAccuracy",
           "MeanSquaredError", "MeanAbsoluteError", "LossMetric", "AutoAccuracy", "to_numpy",
           "accuracy", "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy",
           "top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy",
           "mean_squared_error", "mean_absolute_error", "mse", "mae"]


def _np(x):
    if isinstance(x, Tensor):
        x = x.data
    return backend.to_numpy(x)


to_numpy = _np  # for the sibling modules of this package


def _labels(y_true, n):
    y = _np(y_true)
    return y.reshape(n) if y.ndim > 1 else y


# --- per-sample functions (NumPy in, NumPy (N,) out) ----------------------------------------
def accuracy(y_true, y_pred):
    """[y_pred = y_true], averaged over the last axis when there is one beyond the batch."""
    y_true, y_pred = _np(y_true), _np(y_pred)
    eq = (y_true == y_pred).astype(np.float32)
    return eq.mean(axis=tuple(range(1, eq.ndim))) if eq.ndim > 1 else eq


def binary_accuracy(y_true, y_pred, threshold=0.5):
    """mean_j [(a_j > threshold) = y_j]."""
    y_true, y_pred = _np(y_true), _np(y_pred)
    eq = ((y_pred > threshold) == (y_true > 0.5)).astype(np.float32)
    return eq.mean(axis=tuple(range(1, eq.ndim))) if eq.ndim > 1 else eq


def categorical_accuracy(y_true, y_pred):
    """[argmax a = argmax y] for one-hot targets."""
    y_true, y_pred = _np(y_true), _np(y_pred)
    return (y_true.argmax(axis=-1) == y_pred.argmax(axis=-1)).astype(np.float32)


def sparse_categorical_accuracy(y_true, y_pred):
    """[argmax a = label] for integer labels of shape (N,) or (N, 1)."""
    y_pred = _np(y_pred)
    labels = _labels(y_true, y_pred.shape[0])
    return (labels == y_pred.argmax(axis=-1)).astype(np.float32)


def top_k_categorical_accuracy(y_true, y_pred, k=5):
    """[the target class is among the k largest predictions] for one-hot targets."""
    return sparse_top_k_categorical_accuracy(_np(y_true).argmax(axis=-1), y_pred, k)


def sparse_top_k_categorical_accuracy(y_true, y_pred, k=5):
    """[the label is among the k largest predictions] for integer labels."""
    y_pred = _np(y_pred)
    labels = _labels(y_true, y_pred.shape[0]).astype(np.int64)
    k = min(k, y_pred.shape[-1])
    # count the classes scoring strictly higher than the target: fewer than k means top-k
    target_score = np.take_along_axis(y_pred, labels[:, None], axis=-1)
    return ((y_pred > target_score).sum(axis=-1) < k).astype(np.float32)


def mean_squared_error(y_true, y_pred):
    """mean_j (a_j − y_j)²."""
    d = _np(y_pred) - _np(y_true)
    d = d * d
    return d.mean(axis=tuple(range(1, d.ndim))) if d.ndim > 1 else d


def mean_absolute_error(y_true, y_pred):
    """mean_j |a_j − y_j|."""
    d = np.abs(_np(y_pred) - _np(y_true))
    return d.mean(axis=tuple(range(1, d.ndim))) if d.ndim > 1 else d


mse, mae = mean_squared_error, mean_absolute_error


# --- stateful metrics ----------------------------------------------------------------------
class Metric(Configurable):
    """Base class: accumulate with update_state, read with result, clear with reset_state."""

    def __init__(self, name=None, dtype=None):
        self.name = name or type(self).__name__.lower()
        self.dtype = dtype
        self.reset_state()

    def update_state(self, y_true, y_pred, sample_weight=None):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must define update_state (abstract)")

    def result(self):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must define result (abstract)")

    def reset_state(self):
        pass

    reset_states = reset_state  # Keras 2 spelling

    state_arrays = ()  # names of the array attributes that hold running counts (get_state)

    def get_state(self):
        """What a checkpoint keeps of a metric in the middle of an epoch: every int and float
        attribute, and the arrays named in `state_arrays` as nested lists (None while unmade)."""
        state = {k: v for k, v in vars(self).items() if type(v) in (int, float)}
        for k in self.state_arrays:
            v = getattr(self, k)
            state[k] = None if v is None else np.asarray(v, dtype=np.float64).tolist()
        return state

    def set_state(self, state):
        """Take back what get_state gave; an array must keep the shape the metric has made."""
        arrays = {}
        for k in self.state_arrays:
            if k in state:
                v = None if state[k] is None else np.asarray(state[k], dtype=np.float64)
                now = getattr(self, k)
                if v is not None and now is not None and v.shape != np.shape(now):
                    raise ValueError(f"{type(self).__name__} '{self.name}': expected {k} of shape "
                                     f"{np.shape(now)}, got {v.shape}")
                arrays[k] = v
        for k, v in state.items():
            if k not in arrays and type(vars(self).get(k)) in (int, float):
                setattr(self, k, type(vars(self)[k])(v))
        for k, v in arrays.items():
            setattr(self, k, v)

    def __call__(self, y_true, y_pred, sample_weight=None):
        """Update with one batch and return the running result."""
        self.update_state(y_true, y_pred, sample_weight)
        return self.result()

    def get_config(self):
        return {"name": self.name}

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r}>"


class Mean(Metric):
    """The (weighted) mean of the values given: Σ wᵢ·vᵢ / Σ wᵢ, accumulated in float64."""

    def reset_state(self):
        self.total, self.count = 0.0, 0.0

    def update_state(self, values, sample_weight=None):
        v = _np(values).astype(np.float64, copy=False)
        if sample_weight is None:
            self.total += float(v.sum())
            self.count += float(v.size)
        else:
            w = np.broadcast_to(_np(sample_weight).astype(np.float64).reshape(
                (-1,) + (1,) * (v.ndim - 1)), v.shape)
            self.total += float((v * w).sum())
            self.count += float(w.sum())

    def result(self):
        return self.total / self.count if self.count else 0.0


class MeanMetricWrapper(Mean):
    """The sample average of `fn(y_true, y_pred, **kwargs)`, a per-sample function."""

    def __init__(self, fn, name=None, dtype=None, **kwargs):
        self.fn, self.kwargs = fn, kwargs
        super().__init__(name=name or fn.__name__, dtype=dtype)

    def update_state(self, y_true, y_pred, sample_weight=None):
        super().update_state(self.fn(y_true, y_pred, **self.kwargs), sample_weight)

    def get_config(self):
        return {"name": self.name, **self.kwargs}


class Accuracy(MeanMetricWrapper):
    """How often predictions equal targets exactly (Keras' `Accuracy`)."""

    def __init__(self, name="accuracy", dtype=None):
        super().__init__(accuracy, name, dtype)


class BinaryAccuracy(MeanMetricWrapper):
    def __init__(self, name="binary_accuracy", dtype=None, threshold=0.5):
        super().__init__(binary_accuracy, name, dtype, threshold=threshold)


class CategoricalAccuracy(MeanMetricWrapper):
    def __init__(self, name="categorical_accuracy", dtype=None):
        super().__init__(categorical_accuracy, name, dtype)


class SparseCategoricalAccuracy(MeanMetricWrapper):
    def __init__(self, name="sparse_categorical_accuracy", dtype=None):
        super().__init__(sparse_categorical_accuracy, name, dtype)


class TopKCategoricalAccuracy(MeanMetricWrapper):
    def __init__(self, k=5, name="top_k_categorical_accuracy", dtype=None):
        super().__init__(top_k_categorical_accuracy, name, dtype, k=k)


class SparseTopKCategoricalAccuracy(MeanMetricWrapper):
    def __init__(self, k=5, name="sparse_top_k_categorical_accuracy", dtype=None):
        super().__init__(sparse_top_k_categorical_accuracy, name, dtype, k=k)


class MeanSquaredError(MeanMetricWrapper):
    def __init__(self, name="mean_squared_error", dtype=None):
        super().__init__(mean_squared_error, name, dtype)


class MeanAbsoluteError(MeanMetricWrapper):
    def __init__(self, name="mean_absolute_error", dtype=None):
        super().__init__(mean_absolute_error, name, dtype)


class LossMetric(Mean):
    """A loss used as a metric: the sample-weighted average of its batch values."""

    def __init__(self, loss, name=None, dtype=None):
        self.loss = losses.get(loss)
        super().__init__(name=name or self.loss.name, dtype=dtype)

    def update_state(self, y_true, y_pred, sample_weight=None):
        with no_grad():
            value = float(self.loss(y_true, Tensor(_np(y_pred)), sample_weight).data)
        n = len(_np(y_pred))
        self.total += value * n
        self.count += n

    def get_config(self):
        return {"name": self.name, "loss": losses.serialize(self.loss)}


class AutoAccuracy(MeanMetricWrapper):
    """'accuracy' / 'acc': binary, categorical or sparse categorical accuracy, chosen as Keras
    does: from the loss when given, else on the first batch from the shapes."""

    def __init__(self, name="accuracy", dtype=None, loss=None):
        self.loss_hint = None
        if loss is not None:
            loss = losses.get(loss)
            for cls, accuracy in ((losses.BinaryCrossentropy, binary_accuracy),
                                  (losses.CategoricalCrossentropy, categorical_accuracy),
                                  (losses.SparseCategoricalCrossentropy, sparse_categorical_accuracy)):
                if isinstance(loss, cls):
                    self.loss_hint = accuracy
        super().__init__(self.loss_hint or self._pick, name, dtype)

    def _pick(self, y_true, y_pred):
        y_true, y_pred = _np(y_true), _np(y_pred)
        if y_pred.ndim == 1 or y_pred.shape[-1] == 1:
            self.fn = binary_accuracy
        elif y_true.ndim < y_pred.ndim or (y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1):
            self.fn = sparse_categorical_accuracy
        else:
            self.fn = categorical_accuracy
        return self.fn(y_true, y_pred)

    def get_config(self):
        return {"name": self.name}
