"""Loss functions: (prediction, target) -> a 0-d Tensor, the mean over the batch.

Argument order is (y_pred, y_true), as in torch. A loss first makes one value per sample
l_i (for most, the mean over the last axis of an element-wise loss, as Keras does), then

    L = (1/N) Σ_i l_i                 or, with sample_weight w of shape (N,),
    L = (1/N) Σ_i w_i·l_i             Keras' "sum_over_batch_size" reduction,

where N counts the per-sample values (the batch size for 2-D predictions; for (N, T, D)
predictions every (n, t) is a sample and w_n weighs all T of them). A 1-D prediction (N,) is
N samples of one output each. sample_weight gets no gradient.

The cross-entropies with from_logits=True go to fused ops (softmax_cross_entropy,
sigmoid_binary_cross_entropy, sparse_softmax_cross_entropy) whose backward is the notes'
δ^L = a − y, divided by the number of values averaged. Every loss is one Function with the
reduction inside, so backward scales by a tiny (N, 1) array (or a scalar) and float32 stays
float32: targets and weights are cast to the prediction's dtype.
"""
import numpy as np

from tidu import backend
from tidu.autograd.function import Function
from tidu.autograd.tensor import Tensor
from tidu.errors import ShapeError
from tidu.functional import math as M, reductions as R, shape as S

__all__ = ["mean_squared_error", "mse", "quadratic_cost", "mean_absolute_error", "mae",
           "binary_crossentropy", "categorical_crossentropy", "sparse_categorical_crossentropy",
           "softmax_cross_entropy", "sigmoid_binary_cross_entropy",
           "sparse_softmax_cross_entropy", "hinge", "kl_divergence", "huber"]

EPSILON = 1e-7  # Keras' backend.epsilon(): probabilities are clipped to [ε, 1 − ε]


# --- argument handling -------------------------------------------------------------------
def _prediction(y_pred):
    a = y_pred if isinstance(y_pred, Tensor) else Tensor(y_pred)
    if a.dtype.kind != "f":
        a = Tensor(a.data.astype(backend.floatx()))
    return a


def _target(y_true, a, name):
    """y_true as a Tensor of a's dtype and shape (a differentiable cast if it needs a gradient)."""
    if isinstance(y_true, Tensor):
        y = y_true if y_true.dtype == a.dtype else (
            S.astype(y_true, a.dtype) if y_true.requires_grad else Tensor(y_true.data.astype(a.dtype)))
    else:
        y = Tensor(backend.as_array(y_true, a.dtype))
    if y.shape != a.shape:
        raise ShapeError(f"{name}: expected y_pred and y_true of the same shape, got y_pred "
                         f"{a.shape} and y_true {y.shape}")
    return y


def _check_batch(a, name):
    if a.ndim == 0:
        raise ShapeError(f"{name}: expected a prediction with a batch axis, got a 0-d one")


def _loss_shape(shape, axis):
    """The shape of the per-sample losses: `axis` reduced (None: element-wise, 1-D inputs)."""
    return shape if axis is None else shape[:axis] + shape[axis + 1:]


def _weights(sample_weight, loss_shape, dtype, name):
    """sample_weight as an array broadcasting against the per-sample losses, or None."""
    if sample_weight is None:
        return None
    w = sample_weight.data if isinstance(sample_weight, Tensor) else sample_weight
    w = backend.as_array(w, dtype)
    if w.shape == loss_shape:
        return w
    n = loss_shape[0] if loss_shape else 1
    if w.size == n and w.ndim >= 1 and w.shape[0] == n:
        return w.reshape((n,) + (1,) * (len(loss_shape) - 1))
    raise ShapeError(f"{name}: expected sample_weight of shape ({n},) (one weight per sample), "
                     f"got {w.shape} for per-sample losses of shape {loss_shape}")


def _reduce(ctx, l, w):
    """L = Σ_i w_i·l_i / count (w = 1 when None); remembers w and count for `_coef`."""
    ctx.w, ctx.count = w, l.size
    total = l.sum() if w is None else (l * w).sum()
    return backend.xp.asarray(total / l.size)


def _coef(ctx, gy, axis=None, n=1):
    """dL/d(element): gy·w_i / (count·n), shaped to broadcast against the loss's input, where
    n elements along `axis` were averaged into each l_i (n = 1: summed, or element-wise)."""
    c = gy / (ctx.count * n)            # a 0-d array: Python ints keep gy's dtype
    if ctx.w is None:
        return c
    c = ctx.w * c
    return c if axis is None else backend.xp.expand_dims(c, axis)


def _last_axis(a):
    """The axis averaged into the per-sample loss: the last one, none for 1-D inputs."""
    return a.ndim - 1 if a.ndim >= 2 else None


def _weighted_mean(l, sample_weight, name):
    """The reduction for composed losses: mean(l) or Σ w·l / count, as Tensor ops."""
    w = _weights(sample_weight, l.shape, l.dtype, name)
    if w is None:
        return R.mean(l)
    return R.sum(l * w) / l.size


# --- regression --------------------------------------------------------------------------
class MeanSquaredError(Function):
    """l_i = (1/D) Σ_d (a_id − y_id)²,  L = (1/N) Σ_i w_i·l_i.
    dL/da = 2·(a − y)·w_i / (N·D),   dL/dy = −dL/da."""

    @staticmethod
    def forward(ctx, a, y, w=None):
        d = a - y
        axis = _last_axis(a)
        l = d * d
        if axis is not None:
            l = l.mean(axis=axis)
        ctx.save_for_backward(d)
        ctx.axis, ctx.n = axis, (1 if axis is None else a.shape[axis])
        return _reduce(ctx, l, w)

    @staticmethod
    def backward(ctx, gy):
        (d,) = ctx.saved
        g = d * (2 * _coef(ctx, gy, ctx.axis, ctx.n))
        return g, (-g if ctx.needs_input_grad[1] else None)


class MeanAbsoluteError(Function):
    """l_i = (1/D) Σ_d |a_id − y_id|,  L = (1/N) Σ_i w_i·l_i.
    dL/da = sign(a − y)·w_i / (N·D),   dL/dy = −dL/da."""

    @staticmethod
    def forward(ctx, a, y, w=None):
        d = a - y
        axis = _last_axis(a)
        l = backend.xp.abs(d)
        if axis is not None:
            l = l.mean(axis=axis)
        ctx.save_for_backward(d)
        ctx.axis, ctx.n = axis, (1 if axis is None else a.shape[axis])
        return _reduce(ctx, l, w)

    @staticmethod
    def backward(ctx, gy):
        (d,) = ctx.saved
        g = backend.xp.sign(d)
        g *= _coef(ctx, gy, ctx.axis, ctx.n)
        return g, (-g if ctx.needs_input_grad[1] else None)


class QuadraticCost(Function):
    """C = 1/(2n) Σ_x ||a(x) − y(x)||², n the batch size (axis 0).
    dC/da = (a − y)/n,   dC/dy = −(a − y)/n."""

    @staticmethod
    def forward(ctx, a, y):
        d = a - y
        ctx.save_for_backward(d)
        ctx.n = a.shape[0]
        return backend.xp.asarray((d * d).sum() / (2 * a.shape[0]))

    @staticmethod
    def backward(ctx, gy):
        (d,) = ctx.saved
        g = d * (gy / ctx.n)
        return g, (-g if ctx.needs_input_grad[1] else None)


def mean_squared_error(y_pred, y_true, sample_weight=None):
    """Keras' MSE: per sample the mean over the last axis of (a − y)², then the mean over the
    batch (or Σ w_i·l_i / N)."""
    a = _prediction(y_pred)
    _check_batch(a, "mean_squared_error")
    y = _target(y_true, a, "mean_squared_error")
    w = _weights(sample_weight, _loss_shape(a.shape, _last_axis(a)), a.dtype, "mean_squared_error")
    return MeanSquaredError.apply(a, y, w=w)


def quadratic_cost(y_pred, y_true):
    """The notes' quadratic cost C = 1/(2n) Σ_x ||a − y||² (n = batch size): half the squared
    error summed over features, averaged over the batch. Its δ^L is (a − y)/n."""
    a = _prediction(y_pred)
    _check_batch(a, "quadratic_cost")
    return QuadraticCost.apply(a, _target(y_true, a, "quadratic_cost"))


def mean_absolute_error(y_pred, y_true, sample_weight=None):
    """Keras' MAE: per sample the mean over the last axis of |a − y|, then the batch mean."""
    a = _prediction(y_pred)
    _check_batch(a, "mean_absolute_error")
    y = _target(y_true, a, "mean_absolute_error")
    w = _weights(sample_weight, _loss_shape(a.shape, _last_axis(a)), a.dtype, "mean_absolute_error")
    return MeanAbsoluteError.apply(a, y, w=w)


mse, mae = mean_squared_error, mean_absolute_error


# --- cross-entropy on probabilities ------------------------------------------------------
class BinaryCrossentropy(Function):
    """Keras' binary cross-entropy on probabilities a, with p = clip(a, ε, 1 − ε):

        e = −[y·ln p + (1 − y)·ln(1 − p)],   l_i = mean_d e_id,   L = (1/N) Σ_i w_i·l_i
        dL/da = (p − y) / (p·(1 − p)) · [ε ≤ a ≤ 1 − ε] · w_i/(N·D)
        dL/dy = (ln(1 − p) − ln p) · w_i/(N·D)
    """

    @staticmethod
    def forward(ctx, a, y, w=None):
        xp = backend.xp
        p = xp.clip(a, EPSILON, 1 - EPSILON)
        log_p, log_q = xp.log(p), xp.log(1 - p)
        e = log_p - log_q
        e *= y
        e += log_q
        axis = _last_axis(a)
        l = -(e if axis is None else e.mean(axis=axis))
        ctx.save_for_backward(a, y, p, log_p, log_q)
        ctx.axis, ctx.n = axis, (1 if axis is None else a.shape[axis])
        return _reduce(ctx, l, w)

    @staticmethod
    def backward(ctx, gy):
        a, y, p, log_p, log_q = ctx.saved
        c = _coef(ctx, gy, ctx.axis, ctx.n)
        ga = gy_ = None
        if ctx.needs_input_grad[0]:
            ga = p - y
            ga /= p * (1 - p)
            ga *= (a >= EPSILON) & (a <= 1 - EPSILON)
            ga *= c
        if ctx.needs_input_grad[1]:
            gy_ = (log_q - log_p) * c
        return ga, gy_


class CategoricalCrossentropy(Function):
    """Keras' categorical cross-entropy on probabilities a along `axis`: renormalise, clip, log:

        s = Σ_j a_j,  p = a/s,  q = clip(p, ε, 1 − ε),  l_i = −Σ_j y_j·ln q_j,  L = (1/N) Σ_i w_i·l_i
        with c = w_i/N and g_j = −c·y_j/q_j·[ε ≤ p_j ≤ 1 − ε] (= dL/dp_j):
        dL/da_k = (g_k − Σ_j g_j·p_j) / s        (dp_j/da_k = (δ_jk − p_j)/s)
        dL/dy_j = −c·ln q_j
    """

    @staticmethod
    def forward(ctx, a, y, w=None, axis=-1):
        xp = backend.xp
        s = a.sum(axis=axis, keepdims=True)
        p = a / s
        q = xp.clip(p, EPSILON, 1 - EPSILON)
        log_q = xp.log(q)
        l = -(y * log_q).sum(axis=axis)
        ctx.save_for_backward(y, s, p, q, log_q)
        ctx.axis = axis
        return _reduce(ctx, l, w)

    @staticmethod
    def backward(ctx, gy):
        y, s, p, q, log_q = ctx.saved
        c = _coef(ctx, gy, ctx.axis)
        ga = gy_ = None
        if ctx.needs_input_grad[0]:
            g = y / q
            g *= (p >= EPSILON) & (p <= 1 - EPSILON)
            g *= -c
            ga = g - (g * p).sum(axis=ctx.axis, keepdims=True)
            ga /= s
        if ctx.needs_input_grad[1]:
            gy_ = log_q * -c
        return ga, gy_


def binary_crossentropy(y_pred, y_true, from_logits=False, sample_weight=None):
    """Keras' binary cross-entropy: −[y·ln p + (1 − y)·ln(1 − p)] with p = clip(a, 1e-7, 1 − 1e-7),
    averaged over the last axis per sample, then over the batch. from_logits=True takes
    logits z, p = σ(z), through the fused sigmoid_binary_cross_entropy (no clipping)."""
    if from_logits:
        return sigmoid_binary_cross_entropy(y_pred, y_true, sample_weight=sample_weight)
    a = _prediction(y_pred)
    _check_batch(a, "binary_crossentropy")
    y = _target(y_true, a, "binary_crossentropy")
    w = _weights(sample_weight, _loss_shape(a.shape, _last_axis(a)), a.dtype, "binary_crossentropy")
    return BinaryCrossentropy.apply(a, y, w=w)


def _class_axis(a, axis, name):
    if a.ndim == 0 or not -a.ndim <= axis < a.ndim:
        raise ShapeError(f"{name}: class axis {axis} does not exist in a prediction of shape {a.shape}")
    return axis % a.ndim


def categorical_crossentropy(y_pred, y_true, from_logits=False, sample_weight=None, axis=-1):
    """Keras' categorical cross-entropy −Σ_j y_j·ln p_j along `axis` (y one-hot or soft), with
    y_pred renormalised to sum 1 and clipped to [1e-7, 1 − 1e-7]; mean over the batch.
    from_logits=True takes logits through the fused softmax_cross_entropy."""
    if from_logits:
        return softmax_cross_entropy(y_pred, y_true, sample_weight=sample_weight, axis=axis)
    name = "categorical_crossentropy"
    a = _prediction(y_pred)
    axis = _class_axis(a, axis, name)
    y = _target(y_true, a, name)
    w = _weights(sample_weight, _loss_shape(a.shape, axis), a.dtype, name)
    return CategoricalCrossentropy.apply(a, y, w=w, axis=axis)


def _labels(labels, shape, name):
    """Integer class labels of shape shape[:-1] (or that + (1,)), each in [0, shape[-1])."""
    lab = labels.data if isinstance(labels, Tensor) else labels
    lab = backend.as_array(lab)
    if lab.dtype.kind == "f":
        if not bool((lab == backend.xp.floor(lab)).all()):
            raise ValueError(f"{name}: expected integer class labels, got non-integer values")
        lab = lab.astype(np.int64)
    elif lab.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected integer class labels, got dtype {lab.dtype}")
    want = shape[:-1]
    if lab.shape == want + (1,):
        lab = lab.reshape(want)
    elif lab.shape != want:
        raise ShapeError(f"{name}: expected labels of shape {want} (or {want + (1,)}) for "
                         f"predictions of shape {shape}, got {lab.shape}")
    classes = shape[-1]
    if lab.size:
        bad = (lab < 0) | (lab >= classes)
        if bool(bad.any()):
            first = tuple(int(i) for i in backend.xp.argwhere(bad)[0])
            raise ValueError(f"{name}: expected labels in [0, {classes}) for predictions with "
                             f"{classes} classes, got label {int(lab[first])} at index "
                             f"{first if len(first) != 1 else first[0]}")
    return lab


def _one_hot(lab, classes, dtype):
    xp = backend.xp
    y = xp.zeros(lab.shape + (classes,), dtype=dtype)
    flat = y.reshape(-1, classes)
    flat[xp.arange(lab.size), lab.reshape(-1)] = 1
    return y


def sparse_categorical_crossentropy(y_pred, labels, from_logits=False, sample_weight=None):
    """categorical_crossentropy with integer class labels of shape (N,) or (N, 1) instead of
    one-hot targets: −ln p_label (p renormalised and clipped as in Keras). from_logits=True
    takes logits through the fused sparse_softmax_cross_entropy."""
    if from_logits:
        return sparse_softmax_cross_entropy(y_pred, labels, sample_weight=sample_weight)
    name = "sparse_categorical_crossentropy"
    a = _prediction(y_pred)
    _class_axis(a, -1, name)
    lab = _labels(labels, a.shape, name)
    w = _weights(sample_weight, a.shape[:-1], a.dtype, name)
    return CategoricalCrossentropy.apply(a, _one_hot(lab, a.shape[-1], a.dtype), w=w,
                                         axis=a.ndim - 1)


# --- fused: activation + cross-entropy on logits -----------------------------------------
class SoftmaxCrossEntropy(Function):
    """Softmax and cross-entropy in one, on logits z along `axis` (y one-hot or soft targets):

        ln a_j = z_j − m − ln Σ_k e^(z_k − m)  (m = max_k z_k),   l_i = −Σ_j y_j·ln a_j
        L = (1/N) Σ_i w_i·l_i
        dL/dz = (a − y)·w_i/N      the notes' δ^L = a − y (exact when Σ_j y_j = 1)
        dL/dy = −ln a · w_i/N
    """

    @staticmethod
    def forward(ctx, z, y, w=None, axis=-1, probabilities=None):
        xp = backend.xp
        log_a = z - z.max(axis=axis, keepdims=True)
        a = xp.exp(log_a)
        s = a.sum(axis=axis, keepdims=True)
        log_a -= xp.log(s)
        a /= s                          # softmax(z), bit for bit F.softmax's
        l = -(y * log_a).sum(axis=axis)
        ctx.save_for_backward(y, a, log_a)
        ctx.axis = axis
        if probabilities is not None:   # the caller reads a (never writes it)
            probabilities.append(a)
        return _reduce(ctx, l, w)

    @staticmethod
    def backward(ctx, gy):
        y, a, log_a = ctx.saved
        c = _coef(ctx, gy, ctx.axis)
        gz = gy_ = None
        if ctx.needs_input_grad[0]:
            gz = a - y
            gz *= c
        if ctx.needs_input_grad[1]:
            gy_ = log_a * -c
        return gz, gy_


class SparseSoftmaxCrossEntropy(Function):
    """SoftmaxCrossEntropy with integer labels t_i for the one-hot targets (classes on the last axis):

        l_i = −ln a_{i,t_i},   L = (1/N) Σ_i w_i·l_i,   dL/dz_ij = (a_ij − [j = t_i])·w_i/N
    """

    @staticmethod
    def forward(ctx, z, labels, w=None, probabilities=None):
        xp = backend.xp
        shape, classes = z.shape, z.shape[-1]
        z2 = z.reshape(-1, classes)
        rows, lab = xp.arange(z2.shape[0]), labels.reshape(-1)
        log_a = z2 - z2.max(axis=1, keepdims=True)
        a = xp.exp(log_a)
        s = a.sum(axis=1, keepdims=True)
        l = xp.log(s[:, 0])
        l -= log_a[rows, lab]
        a /= s                          # softmax(z), bit for bit F.softmax's
        ctx.save_for_backward(a, rows, lab)
        ctx.shape = shape
        if probabilities is not None:   # the caller reads a (never writes it)
            probabilities.append(a.reshape(shape))
        return _reduce(ctx, l.reshape(shape[:-1]), w)

    @staticmethod
    def backward(ctx, gy):
        a, rows, lab = ctx.saved
        c = _coef(ctx, gy, -1)
        gz = a.copy()
        gz[rows, lab] -= 1
        gz = gz.reshape(ctx.shape)
        gz *= c
        return gz


class SigmoidBinaryCrossEntropy(Function):
    """Sigmoid and binary cross-entropy in one, on logits z (targets y in [0, 1]):

        e = −[y·ln σ(z) + (1 − y)·ln(1 − σ(z))] = softplus(z) − y·z
          = max(z, 0) + ln(1 + e^(−|z|)) − y·z          (never overflows)
        l_i = mean_d e_id,   L = (1/N) Σ_i w_i·l_i
        dL/dz = (σ(z) − y)·w_i/(N·D),  σ(z) = e^(z − softplus(z))      the notes' δ^L = a − y
        dL/dy = −z·w_i/(N·D)
    """

    @staticmethod
    def forward(ctx, z, y, w=None):
        xp = backend.xp
        sp = xp.abs(z)
        xp.negative(sp, out=sp)
        xp.exp(sp, out=sp)
        sp += 1
        xp.log(sp, out=sp)
        sp += xp.maximum(z, 0)          # softplus(z)
        e = sp - y * z
        axis = _last_axis(z)
        l = e if axis is None else e.mean(axis=axis)
        ctx.save_for_backward(z, y, sp)
        ctx.axis, ctx.n = axis, (1 if axis is None else z.shape[axis])
        return _reduce(ctx, l, w)

    @staticmethod
    def backward(ctx, gy):
        z, y, sp = ctx.saved
        c = _coef(ctx, gy, ctx.axis, ctx.n)
        gz = gy_ = None
        if ctx.needs_input_grad[0]:
            gz = z - sp
            backend.xp.exp(gz, out=gz)  # σ(z)
            gz -= y
            gz *= c
        if ctx.needs_input_grad[1]:
            gy_ = z * -c
        return gz, gy_


def softmax_cross_entropy(logits, y_true, sample_weight=None, axis=-1, probabilities=None):
    """−Σ_j y_j·ln softmax(z)_j along `axis` (classes), mean over the batch: softmax + categorical
    cross-entropy fused, stable for any finite logits; backward is (softmax(z) − y)/N.
    probabilities: a list, which gets softmax(z) appended (the array backward reads: read it,
    never write it), for a caller that needs the predictions too (the metrics of a fit step)."""
    name = "softmax_cross_entropy"
    z = _prediction(logits)
    axis = _class_axis(z, axis, name)
    y = _target(y_true, z, name)
    w = _weights(sample_weight, _loss_shape(z.shape, axis), z.dtype, name)
    return SoftmaxCrossEntropy.apply(z, y, w=w, axis=axis, probabilities=probabilities)


def sparse_softmax_cross_entropy(logits, labels, sample_weight=None, probabilities=None):
    """−ln softmax(z)_label with integer labels (N,) or (N, 1), classes on the last axis; mean
    over the batch. Backward: (softmax(z) − one_hot(label))/N. probabilities: as for
    softmax_cross_entropy."""
    name = "sparse_softmax_cross_entropy"
    z = _prediction(logits)
    _class_axis(z, -1, name)
    lab = _labels(labels, z.shape, name)
    w = _weights(sample_weight, z.shape[:-1], z.dtype, name)
    return SparseSoftmaxCrossEntropy.apply(z, labels=lab, w=w, probabilities=probabilities)


def sigmoid_binary_cross_entropy(logits, y_true, sample_weight=None):
    """−[y·ln σ(z) + (1 − y)·ln(1 − σ(z))], mean over the last axis then the batch: sigmoid +
    binary cross-entropy fused, stable for any finite logits; backward is (σ(z) − y)/(N·D)."""
    name = "sigmoid_binary_cross_entropy"
    z = _prediction(logits)
    _check_batch(z, name)
    y = _target(y_true, z, name)
    w = _weights(sample_weight, _loss_shape(z.shape, _last_axis(z)), z.dtype, name)
    return SigmoidBinaryCrossEntropy.apply(z, y, w=w)


# --- composed ----------------------------------------------------------------------------
def _per_sample_mean(e):
    return R.mean(e, axis=-1) if e.ndim >= 2 else e


def hinge(y_pred, y_true, sample_weight=None):
    """Keras' hinge loss: mean over the last axis of max(1 − y·a, 0), y in {−1, 1}; targets
    that are all 0 or 1 are mapped to −1, 1 first, as Keras does."""
    name = "hinge"
    a = _prediction(y_pred)
    _check_batch(a, name)
    y = _target(y_true, a, name)
    yd = y.data
    if not y.requires_grad and bool(((yd == 0) | (yd == 1)).all()):
        y = Tensor(2 * yd - 1)
    e = M.maximum(1 - y * a, 0)
    return _weighted_mean(_per_sample_mean(e), sample_weight, name)


def kl_divergence(y_pred, y_true, sample_weight=None):
    """Keras' Kullback-Leibler divergence KL(y ‖ a) = Σ_j y_j·ln(y_j / a_j) over the last axis,
    with y and a clipped to [1e-7, 1]; mean over the batch."""
    name = "kl_divergence"
    a = _prediction(y_pred)
    _check_batch(a, name)
    y = _target(y_true, a, name)
    yc, ac = M.clip(y, EPSILON, 1), M.clip(a, EPSILON, 1)
    e = yc * (M.log(yc) - M.log(ac))
    l = R.sum(e, axis=-1) if e.ndim >= 2 else e
    return _weighted_mean(l, sample_weight, name)


def huber(y_pred, y_true, delta=1.0, sample_weight=None):
    """Keras' Huber loss with x = a − y: ½x² where |x| ≤ δ, else δ·(|x| − ½δ); mean over the
    last axis, then the batch. Written as ½q² + δ·(|x| − q) with q = min(|x|, δ)."""
    name = "huber"
    if not delta > 0:
        raise ValueError(f"{name}: expected delta > 0, got delta={delta!r}")
    a = _prediction(y_pred)
    _check_batch(a, name)
    y = _target(y_true, a, name)
    ax = M.abs(a - y)
    q = M.minimum(ax, float(delta))
    e = 0.5 * q * q + float(delta) * (ax - q)
    return _weighted_mean(_per_sample_mean(e), sample_weight, name)
