"""The input checks of fit, evaluate, predict and the single-batch methods.

Each takes the data as the user gave it and returns it in the training format (NumPy,
floatx() floats, integer labels for sparse losses), or raises an error naming where, what was
expected and what was got, before anything trains:

    check_x / check_y / check_sample_weight    arrays, lengths, NaN/inf, weights >= 0
    probe(model, x, where)                     the network's output shape on a few samples (builds
                                               a lazy model; a wrong input shape fails here)
    check_batch(model, x, y, sw, where)        a single batch (train_on_batch, gradcheck_model)
    check_targets(y, out_shape, loss, where)   targets against the output and the loss
    class_weights / check_curriculum / check_validation_data
"""
import numbers

import numpy as np

from tidu import backend, losses as L
from tidu.autograd import Tensor, no_grad
from tidu.errors import ShapeError
from tidu.kernels.switch import enabled

__all__ = ["all_finite", "as_numpy", "check_batch", "check_curriculum", "check_sample_weight",
           "check_targets", "check_validation_data", "check_x", "check_y", "class_weights", "probe"]


def as_numpy(a, where, name):
    """`a` (array, list, Tensor) as a numeric NumPy array."""
    if a is None:
        raise ValueError(f"{where}: expected {name} to be an array, got None")
    if isinstance(a, Tensor):
        a = a.numpy()
    try:
        a = np.asarray(backend.to_numpy(a) if not isinstance(a, (list, tuple)) else a)
    except ValueError as e:  # a ragged nested list
        raise ValueError(f"{where}: expected {name} to be a rectangular numeric array, got "
                         f"{type(a).__name__} of rows of different lengths ({e})") from None
    if a.dtype == object or a.dtype.kind not in "biuf":
        raise TypeError(f"{where}: expected {name} to be a numeric array, got dtype {a.dtype}")
    return a


# all_finite: arrays up to this many elements are checked by np.isfinite, without BLAS
SMALL_CHECK = 1 << 16
# with the fast paths on, larger ones by np.isfinite too, this many elements at a time
FINITE_CHUNK = 1 << 18


def all_finite(a):
    """Whether a float array holds no NaN or ±inf: the matrix-vector product of its rows with a
    zero vector is NaN exactly where a row holds one (0·inf = NaN, 0·finite = 0, no overflow),
    3× faster than np.isfinite(a).all() on MNIST and without its bool copy of the data. Up to
    SMALL_CHECK elements (a batch of 32 images: 25,088) np.isfinite instead, 3.4 µs against 15
    for the product and the BLAS thread count set and restored around it, which every
    predict_on_batch call paid. With the fast paths on, a larger array goes through
    np.isfinite FINITE_CHUNK elements at a time (its bool copy stays in the cache): a
    two-thread product leaves OpenBLAS's worker spinning for ~0.1 s, which takes a core from
    the halves that follow (tidu.kernels.halves), and on one thread the product is slower
    (the 10,000 MNIST test images, float32, one process on the AMD EPYC host of
    bench/RESULTS.md: 1.7 ms in chunks against 2.6 for the one-thread product and 1.0 for the
    two-thread one)."""
    if a.ndim < 2 or a.size <= SMALL_CHECK:
        return bool(np.isfinite(a).all())
    rows = a.reshape(len(a), -1)
    if enabled():
        flat, n = rows.reshape(-1), FINITE_CHUNK
        return all(bool(np.isfinite(flat[i:i + n]).all()) for i in range(0, flat.size, n))
    with np.errstate(invalid="ignore"):
        return bool(np.isfinite(rows @ np.zeros(rows.shape[1], dtype=a.dtype)).all())


def _first_nonfinite(a):
    bad = np.argwhere(~np.isfinite(a))[0]
    return tuple(int(i) for i in bad), a[tuple(bad)]


def _finite_floats(a, where, name, hint=""):
    if a.dtype != np.dtype(backend.floatx()):
        a = a.astype(backend.floatx())
    if not all_finite(a):
        idx, v = _first_nonfinite(a)
        raise ValueError(f"{where}: {name} contains {v} at index {idx}; expected finite values{hint}")
    return a


def check_x(model, x, where):
    """The inputs: a batch axis, at least one sample, finite floatx() floats (integers stay
    integers when the first layer takes integer ids, as Embedding)."""
    x = as_numpy(x, where, "x")
    if x.ndim == 0:
        raise ValueError(f"{where}: expected x with a batch axis, got a scalar")
    if len(x) == 0:
        raise ValueError(f"{where}: x is empty (shape {x.shape}); expected at least one sample")
    if x.dtype.kind == "f":
        return _finite_floats(x, where, "x", " (no NaN or inf)")
    if not model.takes_integer_input:
        x = x.astype(backend.floatx())
    return x


def check_y(y, n, where):
    """The targets: a batch axis, n samples, finite floatx() floats (integer labels stay)."""
    y = as_numpy(y, where, "y")
    if y.ndim == 0:
        raise ValueError(f"{where}: expected y with a batch axis, got a scalar")
    if len(y) != n:
        raise ValueError(f"{where}: x and y have different numbers of samples: x has {n}, "
                         f"y has {len(y)}")
    if y.dtype.kind == "f":
        return _finite_floats(y, where, "y")
    return y


def check_sample_weight(sw, n, where):
    """None, or one finite weight >= 0 per sample, as floatx()."""
    if sw is None:
        return None
    sw = as_numpy(sw, where, "sample_weight").astype(backend.floatx())
    if sw.ndim != 1 or len(sw) != n:
        raise ValueError(f"{where}: expected sample_weight of shape ({n},), one weight per "
                         f"sample, got shape {sw.shape}")
    bad = ~np.isfinite(sw) | (sw < 0)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"{where}: expected finite, non-negative sample weights, got "
                         f"{sw[i]} at index {i}")
    return sw


def probe(model, x, where):
    """Run a few samples through the network (inference mode, no graph): builds a lazy model
    and raises the layer's own error for a wrong input shape before anything trains.
    Returns the output shape."""
    model.build_from_data(x)
    if model.input_shape is not None:
        want, got = tuple(model.input_shape[1:]), tuple(x.shape[1:])
        if len(want) != len(got):
            first = model.layers[0]
            raise ShapeError(f"{where}: {type(first).__name__} '{first.name}' (the first layer) "
                             f"expected input of shape {(None, *want)}, got shape {x.shape}")
    try:
        with no_grad():
            out = model.forward(Tensor(x), training=False)
    except (ValueError, TypeError) as e:  # the layer's own error, prefixed with where it came from
        if str(e).startswith(where):
            raise
        try:
            new = type(e)(f"{where}: {e}")
        except Exception:
            raise e from None
        raise new from e
    return out.shape


def check_targets(y, out_shape, loss, where):
    """Targets against the model's output and the loss: label range for sparse losses, shape
    for the others. Returns y (possibly reshaped / cast)."""
    classes = out_shape[-1]
    if isinstance(loss, L.SparseCategoricalCrossentropy):
        if y.ndim == len(out_shape) and y.shape[-1] == 1:
            y = y.reshape(y.shape[:-1])
        if y.shape[1:] != tuple(out_shape[1:-1]):
            raise ValueError(f"{where}: {loss.name} expects integer labels of shape "
                             f"{('N', *out_shape[1:-1])}, got y of shape {y.shape}")
        if y.dtype.kind == "f":
            frac = y != np.round(y)
            if frac.any():
                i = tuple(int(k) for k in np.argwhere(frac)[0])
                raise ValueError(f"{where}: {loss.name} expects integer class labels, got "
                                 f"{y[i]} at index {i}")
        if y.size:
            lo, hi = y.min(), y.max()
            if lo < 0 or hi >= classes:
                bad = lo if lo < 0 else hi
                i = tuple(int(k) for k in np.argwhere(y == bad)[0])
                raise ValueError(f"{where}: label {bad:g} at index {i} is outside [0, {classes}): "
                                 f"the model has {classes} output classes")
        return y.astype(np.int64, copy=False)
    if isinstance(loss, L.LossFunctionWrapper):
        return y  # a custom loss decides what its targets look like
    if y.dtype.kind != "f":
        y = y.astype(backend.floatx())
    if y.shape[1:] != tuple(out_shape[1:]):
        if y.ndim == 1 and tuple(out_shape[1:]) == (1,):
            return y.reshape(-1, 1)
        hint = ""
        if isinstance(loss, L.CategoricalCrossentropy) and y.ndim == 1:
            hint = ("; for integer labels use tidu.utils.to_categorical(y) or "
                    "loss='sparse_categorical_crossentropy'")
        raise ValueError(f"{where}: y has shape {y.shape}, but the model's output has shape "
                         f"{(None, *out_shape[1:])}; {getattr(loss, 'name', 'the loss')} expects "
                         f"targets shaped like the output{hint}")
    return y


def class_weights(class_weight, y, sw, n):
    """sample_weight × the weight of each sample's class (class_weight: {class: weight})."""
    if not class_weight:
        return sw
    if not isinstance(class_weight, dict):
        raise TypeError(f"fit: expected class_weight to be a dict {{class: weight}}, got {class_weight!r}")
    for k in class_weight:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
            raise ValueError(f"fit: class_weight keys must be class indices (ints >= 0), got {k!r}")
    if y.ndim >= 2 and y.shape[-1] > 1:
        cls = y.argmax(axis=-1)
    else:
        cls = np.round(y.reshape(n, -1)[:, 0]).astype(np.int64)
    table = np.ones(int(max(cls.max(), max(class_weight))) + 1, dtype=backend.floatx())
    for k, v in class_weight.items():
        table[int(k)] = v
    w = table[cls].reshape(-1)
    return w if sw is None else sw * w


def check_curriculum(curriculum, n, where):
    """(scores, pacing options) from fit's curriculum argument; (None, {}) without one."""
    if curriculum is None:
        return None, {}
    pacing, scores = {}, curriculum
    if isinstance(curriculum, dict):
        pacing = dict(curriculum)
        if "scores" not in pacing:
            raise ValueError(f"{where}: a curriculum dict needs 'scores' (one difficulty per sample)")
        scores = pacing.pop("scores")
        unknown = set(pacing) - {"pacing", "start_fraction", "epochs_to_full"}
        if unknown:
            raise ValueError(f"{where}: unknown curriculum option(s) {sorted(unknown)}; allowed: "
                             f"scores, pacing, start_fraction, epochs_to_full")
    scores = np.asarray(scores)
    if scores.shape != (n,):
        raise ValueError(f"{where}: expected curriculum scores of shape ({n},), one per "
                         f"sample, got shape {scores.shape}")
    return scores, pacing


def check_validation_data(model, validation_data, where):
    """(x_val, y_val, sample_weight or None), each checked like the training data."""
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
        raise ValueError(f"{where}: expected validation_data to be (x_val, y_val) or "
                         f"(x_val, y_val, sample_weight), got {type(validation_data).__name__}")
    where = where + " (validation data)"
    xv = check_x(model, validation_data[0], where)
    yv = check_y(validation_data[1], len(xv), where)
    swv = check_sample_weight(validation_data[2] if len(validation_data) == 3 else None, len(xv), where)
    return xv, yv, swv


def check_fraction(where, name, value):
    """0 <= value < 1 (validation_split)."""
    if not isinstance(value, numbers.Real) or not 0.0 <= value < 1.0:
        raise ValueError(f"{where}: expected 0 <= {name} < 1, got {value!r}")
    return float(value)


def check_batch(model, x, y, sample_weight, where):
    """One batch (x, y, sample_weight) checked as fit checks its data; the network is probed once
    per input shape (model.train_step.batch_output_shape)."""
    x = check_x(model, x, where)
    y = check_y(y, len(x), where)
    sw = check_sample_weight(sample_weight, len(x), where)
    y = check_targets(y, model.train_step.batch_output_shape(x, where), model.compiled_loss, where)
    return x, y, sw
