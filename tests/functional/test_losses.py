import numpy as np
import pytest

import tidu.functional as F
from tidu import ShapeError, Tensor, gradcheck
from tidu.functional.losses import SigmoidBinaryCrossEntropy, SoftmaxCrossEntropy, SparseSoftmaxCrossEntropy

EPS = 1e-7


def softmax_np(z, axis=-1):
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def soft_targets(rng, shape, axis=-1):
    return softmax_np(rng.standard_normal(shape), axis=axis)


def probs(rng, shape):
    return rng.uniform(0.05, 0.95, size=shape)


# --- NumPy formulas (per-sample loss, then the weighted batch mean) ----------------------
def reduce_np(l, w=None):
    if w is None:
        return l.mean()
    return (l * w.reshape(w.shape + (1,) * (l.ndim - w.ndim))).sum() / l.size


def last_mean(e):
    return e.mean(axis=-1) if e.ndim >= 2 else e


def mse_np(a, y, w=None):
    return reduce_np(last_mean((a - y) ** 2), w)


def mae_np(a, y, w=None):
    return reduce_np(last_mean(np.abs(a - y)), w)


def bce_np(a, y, w=None):
    p = np.clip(a, EPS, 1 - EPS)
    return reduce_np(last_mean(-(y * np.log(p) + (1 - y) * np.log(1 - p))), w)


def cce_np(a, y, w=None, axis=-1):
    p = np.clip(a / a.sum(axis=axis, keepdims=True), EPS, 1 - EPS)
    return reduce_np(-(y * np.log(p)).sum(axis=axis), w)


def sce_np(z, y, w=None, axis=-1):
    return reduce_np(-(y * np.log(softmax_np(z, axis))).sum(axis=axis), w)


def sbce_np(z, y, w=None):
    s = 1 / (1 + np.exp(-z))
    return reduce_np(last_mean(-(y * np.log(s) + (1 - y) * np.log(1 - s))), w)


# --- gradcheck: every loss, several shapes, both inputs, with and without weights ----------
REG_SHAPES = [(1, 1), (4, 3), (5, 1), (1, 6), (3, 2, 4), (6,)]
CLS_SHAPES = [(1, 3), (4, 5), (3, 1), (2, 3, 4)]


def _weights_for(rng, shape, weighted):
    return rng.uniform(0.2, 2.0, size=shape[0]) if weighted else None


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("shape", REG_SHAPES)
@pytest.mark.parametrize("loss,ref", [(F.mean_squared_error, mse_np), (F.mean_absolute_error, mae_np),
                                      (F.binary_crossentropy, bce_np)])
def test_elementwise_losses_gradcheck_and_numpy(loss, ref, shape, weighted, rng):
    a, y, w = probs(rng, shape), rng.uniform(0, 1, size=shape), _weights_for(rng, shape, weighted)
    if loss is F.mean_absolute_error:
        y = np.where(np.abs(a - y) < 0.05, y + 0.1, y)  # away from the kink of |a − y|
    gradcheck(lambda a_, y_: loss(a_, y_, sample_weight=w), a, y)
    np.testing.assert_allclose(loss(a, y, sample_weight=w).data, ref(a, y, w), rtol=1e-12)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("shape", REG_SHAPES)
def test_sigmoid_binary_cross_entropy_gradcheck_and_numpy(shape, weighted, rng):
    z, y, w = rng.standard_normal(shape) * 3, rng.uniform(0, 1, size=shape), _weights_for(rng, shape, weighted)
    gradcheck(lambda z_, y_: F.sigmoid_binary_cross_entropy(z_, y_, sample_weight=w), z, y)
    np.testing.assert_allclose(F.sigmoid_binary_cross_entropy(z, y, sample_weight=w).data,
                               sbce_np(z, y, w), rtol=1e-12)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("shape", CLS_SHAPES)
@pytest.mark.parametrize("loss,ref,pred", [
    (F.categorical_crossentropy, cce_np, lambda rng, s: rng.uniform(0.1, 1.0, size=s)),  # unnormalised
    (F.softmax_cross_entropy, sce_np, lambda rng, s: rng.standard_normal(s) * 2)])
def test_categorical_losses_gradcheck_and_numpy(loss, ref, pred, shape, weighted, rng):
    a, y, w = pred(rng, shape), soft_targets(rng, shape), _weights_for(rng, shape, weighted)
    gradcheck(lambda a_, y_: loss(a_, y_, sample_weight=w), a, y)
    np.testing.assert_allclose(loss(a, y, sample_weight=w).data, ref(a, y, w), rtol=1e-12)


@pytest.mark.parametrize("axis", [0, 1])
def test_categorical_losses_along_another_axis(axis, rng):
    shape = (3, 4, 2)
    a, z, y = rng.uniform(0.1, 1, size=shape), rng.standard_normal(shape), soft_targets(rng, shape, axis)
    gradcheck(lambda a_, y_: F.categorical_crossentropy(a_, y_, axis=axis), a, y)
    gradcheck(lambda z_, y_: F.softmax_cross_entropy(z_, y_, axis=axis), z, y)
    np.testing.assert_allclose(F.categorical_crossentropy(a, y, axis=axis).data, cce_np(a, y, axis=axis),
                               rtol=1e-12)
    np.testing.assert_allclose(F.categorical_crossentropy(z, y, from_logits=True, axis=axis).data,
                               sce_np(z, y, axis=axis), rtol=1e-12)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("shape", CLS_SHAPES)
def test_sparse_losses_gradcheck_and_numpy(shape, weighted, rng):
    labels = rng.integers(0, shape[-1], size=shape[:-1])
    onehot = np.eye(shape[-1])[labels]
    a, z, w = rng.uniform(0.1, 1.0, size=shape), rng.standard_normal(shape) * 2, _weights_for(rng, shape, weighted)
    gradcheck(lambda a_: F.sparse_categorical_crossentropy(a_, labels, sample_weight=w), a)
    gradcheck(lambda z_: F.sparse_softmax_cross_entropy(z_, labels, sample_weight=w), z)
    np.testing.assert_allclose(F.sparse_categorical_crossentropy(a, labels, sample_weight=w).data,
                               cce_np(a, onehot, w), rtol=1e-12)
    np.testing.assert_allclose(F.sparse_softmax_cross_entropy(z, labels, sample_weight=w).data,
                               sce_np(z, onehot, w), rtol=1e-12)


@pytest.mark.parametrize("shape", [(1, 1), (4, 3), (3, 2, 2), (5,)])
def test_quadratic_cost_is_the_notes_form(shape, rng):
    a, y = rng.standard_normal(shape), rng.standard_normal(shape)
    n = shape[0]
    gradcheck(F.quadratic_cost, a, y)
    ta = Tensor(a, requires_grad=True)
    c = F.quadratic_cost(ta, y)
    np.testing.assert_allclose(c.data, ((a - y) ** 2).sum() / (2 * n), rtol=1e-12)
    c.backward()
    np.testing.assert_allclose(ta.grad, (a - y) / n, rtol=1e-12)  # δ^L = (a − y)/n for σ(z) = z


@pytest.mark.parametrize("shape", REG_SHAPES)
@pytest.mark.parametrize("loss", ["hinge", "kl_divergence", "huber"])
def test_composed_losses_gradcheck(loss, shape, rng):
    w = rng.uniform(0.2, 2.0, size=shape[0])
    if loss == "hinge":
        a, y = rng.standard_normal(shape) * 2, rng.choice([-1.0, 1.0], size=shape)
        a = np.where(np.abs(1 - y * a) < 0.1, a + 0.3, a)
        fn = F.hinge
    elif loss == "kl_divergence":
        a, y, fn = probs(rng, shape), probs(rng, shape), F.kl_divergence
    else:
        a, y = rng.standard_normal(shape) * 2, rng.standard_normal(shape)
        fn = lambda a_, y_, sample_weight=None: F.huber(a_, y_, delta=0.7, sample_weight=sample_weight)  # noqa: E731
    gradcheck(lambda a_, y_: fn(a_, y_), a, y)
    gradcheck(lambda a_, y_: fn(a_, y_, sample_weight=w), a, y)


def test_composed_losses_match_numpy(rng):
    a, y = rng.standard_normal((4, 3)) * 2, rng.standard_normal((4, 3))
    x = a - y
    huber = np.where(np.abs(x) <= 0.5, 0.5 * x**2, 0.5 * np.abs(x) - 0.125).mean(-1).mean()
    np.testing.assert_allclose(F.huber(a, y, delta=0.5).data, huber, rtol=1e-12)
    lab = rng.integers(0, 2, size=(4, 3)).astype(float)  # {0, 1} labels become {−1, 1}
    np.testing.assert_allclose(F.hinge(a, lab).data, np.maximum(1 - (2 * lab - 1) * a, 0).mean(), rtol=1e-12)
    p, q = probs(rng, (4, 3)), probs(rng, (4, 3))
    np.testing.assert_allclose(F.kl_divergence(q, p).data, (p * np.log(p / q)).sum(-1).mean(), rtol=1e-12)


# --- Keras' documented values ------------------------------------------------------------
def test_keras_documented_values():
    y_true, y_pred = [[0.0, 1.0], [0.0, 0.0]], [[1.0, 1.0], [1.0, 0.0]]
    np.testing.assert_allclose(F.mse(y_pred, y_true).item(), 0.5, rtol=1e-6)
    np.testing.assert_allclose(F.mse(y_pred, y_true, sample_weight=[0.7, 0.3]).item(), 0.25, rtol=1e-6)
    np.testing.assert_allclose(F.mae(y_pred, y_true).item(), 0.5, rtol=1e-6)
    y_true, y_pred = [[0.0, 1.0], [0.0, 0.0]], [[0.6, 0.4], [0.4, 0.6]]
    np.testing.assert_allclose(F.binary_crossentropy(y_pred, y_true).item(), 0.815, atol=5e-4)
    np.testing.assert_allclose(F.binary_crossentropy(y_pred, y_true, sample_weight=[1, 0]).item(), 0.458, atol=5e-4)
    z, y = [[-18.6, 0.51, 2.94, -12.8]], [[0.0, 1.0, 0.0, 0.0]]
    np.testing.assert_allclose(F.binary_crossentropy(z, y, from_logits=True).item(), 0.865, atol=5e-4)
    y_true, y_pred = [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], [[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]]
    np.testing.assert_allclose(F.categorical_crossentropy(y_pred, y_true).item(), 1.1769392, rtol=1e-6)
    np.testing.assert_allclose(F.categorical_crossentropy(y_pred, y_true, sample_weight=[0.3, 0.7]).item(),
                               0.8135, atol=5e-4)
    np.testing.assert_allclose(F.sparse_categorical_crossentropy(y_pred, [1, 2]).item(), 1.1769392, rtol=1e-6)


# --- torch as the reference (float64, forward and gradients) -------------------------------
def _compare(torch, ours_fn, torch_fn, *arrays, rtol=1e-12):
    ours = [Tensor(a, requires_grad=True) for a in arrays]
    refs = [torch.tensor(a, requires_grad=True) for a in arrays]
    L, tL = ours_fn(*ours), torch_fn(*refs)
    L.backward()
    tL.backward()
    np.testing.assert_allclose(L.data, tL.detach().numpy(), rtol=rtol)
    for o, r in zip(ours, refs):
        np.testing.assert_allclose(o.grad, r.grad.numpy(), rtol=1e-10, atol=1e-15)


def test_regression_losses_match_torch(rng):
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    a, y, w = rng.standard_normal((6, 4)), rng.standard_normal((6, 4)), rng.uniform(0.1, 2, size=6)
    tw = torch.from_numpy(w)
    _compare(torch, F.mse, tf.mse_loss, a, y)
    _compare(torch, lambda a_, y_: F.mse(a_, y_, sample_weight=w),
             lambda a_, y_: (((a_ - y_) ** 2).mean(-1) * tw).sum() / 6, a, y)
    _compare(torch, F.mae, tf.l1_loss, a, y)
    _compare(torch, F.quadratic_cost, lambda a_, y_: 0.5 * ((a_ - y_) ** 2).sum() / 6, a, y)
    _compare(torch, lambda a_, y_: F.huber(a_, y_, delta=0.8), lambda a_, y_: tf.huber_loss(a_, y_, delta=0.8), a, y)
    _compare(torch, F.hinge, lambda a_, y_: torch.clamp(1 - y_ * a_, min=0).mean(), a, y)


def test_binary_losses_match_torch(rng):
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    a, y, z = probs(rng, (5, 3)), rng.uniform(0, 1, (5, 3)), rng.standard_normal((5, 3)) * 3
    w = rng.uniform(0.1, 2, size=5)
    tw = torch.from_numpy(w)
    _compare(torch, F.binary_crossentropy, tf.binary_cross_entropy, a, y)
    _compare(torch, F.sigmoid_binary_cross_entropy, tf.binary_cross_entropy_with_logits, z, y)
    _compare(torch, lambda z_, y_: F.binary_crossentropy(z_, y_, from_logits=True, sample_weight=w),
             lambda z_, y_: (tf.binary_cross_entropy_with_logits(z_, y_, reduction="none").mean(-1) * tw).sum() / 5,
             z, y)


def test_categorical_losses_match_torch(rng):
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    z, y, w = rng.standard_normal((6, 5)) * 2, soft_targets(rng, (6, 5)), rng.uniform(0.1, 2, size=6)
    labels = rng.integers(0, 5, size=6)
    tl, tw = torch.from_numpy(labels), torch.from_numpy(w)
    a = rng.uniform(0.1, 1.0, (6, 5))  # unnormalised: Keras renormalises
    _compare(torch, F.softmax_cross_entropy, tf.cross_entropy, z, y)  # torch: probability targets
    _compare(torch, lambda z_, y_: F.categorical_crossentropy(z_, y_, from_logits=True, sample_weight=w),
             lambda z_, y_: (tf.cross_entropy(z_, y_, reduction="none") * tw).sum() / 6, z, y)
    _compare(torch, lambda z_: F.sparse_softmax_cross_entropy(z_, labels), lambda z_: tf.cross_entropy(z_, tl), z)
    _compare(torch, lambda z_: F.sparse_categorical_crossentropy(z_, labels, from_logits=True, sample_weight=w),
             lambda z_: (tf.cross_entropy(z_, tl, reduction="none") * tw).sum() / 6, z)
    _compare(torch, F.categorical_crossentropy,
             lambda a_, y_: -(y_ * torch.log(torch.clamp(a_ / a_.sum(-1, keepdim=True), EPS, 1 - EPS))).sum(-1).mean(),
             a, y)
    _compare(torch, lambda a_: F.sparse_categorical_crossentropy(a_, labels),
             lambda a_: tf.nll_loss(torch.log(a_ / a_.sum(-1, keepdim=True)), tl), a)
    p, q = soft_targets(rng, (6, 5)), soft_targets(rng, (6, 5))
    _compare(torch, F.kl_divergence, lambda q_, p_: tf.kl_div(torch.log(q_), p_, reduction="batchmean"), q, p)


# --- the fused ops' backward is the notes' δ^L = a − y ------------------------------------
def test_softmax_cross_entropy_backward_is_softmax_minus_y_over_n(rng):
    for shape in [(8, 10), (1, 3), (5, 1)]:
        z, y = rng.standard_normal(shape) * 3, np.eye(shape[1])[rng.integers(0, shape[1], shape[0])]
        tz = Tensor(z, requires_grad=True)
        F.softmax_cross_entropy(tz, y).backward()
        np.testing.assert_allclose(tz.grad, (softmax_np(z) - y) / shape[0], rtol=0, atol=1e-12)
        tz = Tensor(z, requires_grad=True)
        F.sparse_softmax_cross_entropy(tz, y.argmax(-1)).backward()
        np.testing.assert_allclose(tz.grad, (softmax_np(z) - y) / shape[0], rtol=0, atol=1e-12)
    w = rng.uniform(0.1, 2, 8)
    z, y = rng.standard_normal((8, 10)), soft_targets(rng, (8, 10))
    tz = Tensor(z, requires_grad=True)
    F.softmax_cross_entropy(tz, y, sample_weight=w).backward()
    np.testing.assert_allclose(tz.grad, (softmax_np(z) - y) * w[:, None] / 8, rtol=0, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_fused_softmax_losses_hand_out_softmax_bit_for_bit(rng, dtype):
    # the training step's metrics read these instead of computing softmax(z) again
    for shape in [(7, 10), (1, 3), (4, 1)]:
        z = (rng.standard_normal(shape) * 4).astype(dtype)
        y = np.eye(shape[1], dtype=dtype)[rng.integers(0, shape[1], shape[0])]
        want = F.softmax(Tensor(z)).data
        got = []
        tz = Tensor(z, requires_grad=True)
        F.softmax_cross_entropy(tz, y, probabilities=got).backward()
        assert len(got) == 1 and got[0].dtype == dtype
        np.testing.assert_array_equal(got[0], want)
        np.testing.assert_array_equal(got[0], F.softmax(Tensor(z)).data)   # backward left it alone
        got = []
        F.sparse_softmax_cross_entropy(Tensor(z, requires_grad=True), y.argmax(-1),
                                       probabilities=got).backward()
        np.testing.assert_array_equal(got[0], want)


def test_sigmoid_binary_cross_entropy_backward_is_sigma_minus_y_over_nd(rng):
    z, y = rng.standard_normal((6, 4)) * 3, rng.uniform(0, 1, (6, 4))
    tz = Tensor(z, requires_grad=True)
    F.sigmoid_binary_cross_entropy(tz, y).backward()
    np.testing.assert_allclose(tz.grad, (1 / (1 + np.exp(-z)) - y) / 24, rtol=0, atol=1e-12)


def test_from_logits_routes_to_the_fused_ops(rng):
    z, y = rng.standard_normal((3, 4)), soft_targets(rng, (3, 4))
    t = Tensor(z, requires_grad=True)
    assert F.categorical_crossentropy(t, y, from_logits=True)._ctx.fn is SoftmaxCrossEntropy
    assert F.sparse_categorical_crossentropy(t, [0, 1, 3], from_logits=True)._ctx.fn is SparseSoftmaxCrossEntropy
    assert F.binary_crossentropy(t, y, from_logits=True)._ctx.fn is SigmoidBinaryCrossEntropy


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_huge_logits_give_finite_losses_and_gradients(dtype):
    z = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 3.0]], dtype=dtype)
    y = np.array([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]], dtype=dtype)
    cases = [(F.softmax_cross_entropy, y), (F.sparse_softmax_cross_entropy, np.array([1, 1])),
             (F.sigmoid_binary_cross_entropy, y),
             (lambda z_, y_: F.categorical_crossentropy(z_, y_, from_logits=True), y),
             (lambda z_, y_: F.binary_crossentropy(z_, y_, from_logits=True), y)]
    for fn, target in cases:
        t = Tensor(z, requires_grad=True)
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            L = fn(t, target)
            L.backward()
        assert np.isfinite(L.data) and np.isfinite(t.grad).all()
    t = Tensor(z, requires_grad=True)
    L = F.softmax_cross_entropy(t, y)
    L.backward()
    np.testing.assert_allclose(L.data, 2e4 / 2, rtol=1e-6)  # sample 0 pays 2e4, sample 1 nothing
    np.testing.assert_allclose(t.grad, [[0.5, -0.5, 0], [0, 0, 0]], atol=1e-7)
    L = F.sigmoid_binary_cross_entropy(Tensor(np.array([[1e4, -1e4]], dtype=dtype)), [[0.0, 0.0]])
    np.testing.assert_allclose(L.data, 1e4 / 2, rtol=1e-6)  # softplus(1e4) = 1e4, softplus(-1e4) = 0


# --- float32 stays float32 ---------------------------------------------------------------
@pytest.mark.parametrize("loss", [F.mse, F.mae, F.quadratic_cost, F.binary_crossentropy,
                                  F.categorical_crossentropy, F.softmax_cross_entropy,
                                  F.sigmoid_binary_cross_entropy, F.hinge, F.kl_divergence, F.huber,
                                  lambda a, y: F.binary_crossentropy(a, y, from_logits=True),
                                  lambda a, y: F.mse(a, y, sample_weight=np.array([1.0, 2.0, 0.5, 1.0])),
                                  lambda a, y: F.softmax_cross_entropy(a, y, sample_weight=[1.0, 2.0, 0.5, 1.0]),
                                  lambda a, y: F.sparse_softmax_cross_entropy(a, np.argmax(y, -1)),
                                  lambda a, y: F.sparse_categorical_crossentropy(a, [[0], [1], [2], [0]])])
def test_float32_stays_float32(loss, rng):
    a = Tensor(probs(rng, (4, 3)).astype(np.float32), requires_grad=True)
    y = soft_targets(rng, (4, 3))  # float64 targets must not promote the loss
    L = loss(a, y)
    assert L.shape == () and L.dtype == np.float32
    L.backward()
    assert a.grad.dtype == np.float32


# --- errors ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["mean_squared_error", "mean_absolute_error", "quadratic_cost",
                                  "binary_crossentropy", "categorical_crossentropy", "softmax_cross_entropy",
                                  "sigmoid_binary_cross_entropy", "hinge", "kl_divergence", "huber"])
def test_shape_mismatch_names_both_shapes_and_the_loss(name):
    with pytest.raises(ShapeError, match=rf"{name}: .*y_pred \(4, 3\) and y_true \(4, 2\)"):
        getattr(F, name)(np.full((4, 3), 0.5), np.full((4, 2), 0.5))


def test_labels_outside_the_classes_raise():
    z = np.zeros((3, 4))
    for fn in (F.sparse_softmax_cross_entropy, F.sparse_categorical_crossentropy):
        with pytest.raises(ValueError, match=r"labels in \[0, 4\).*4 classes, got label 4 at index 1"):
            fn(z + 0.25, [0, 4, 1])
        with pytest.raises(ValueError, match="got label -1 at index 2"):
            fn(z + 0.25, np.array([[0], [3], [-1]]))
        with pytest.raises(ShapeError, match=r"labels of shape \(3,\)"):
            fn(z + 0.25, [0, 1])
        with pytest.raises(ValueError, match="integer class labels"):
            fn(z + 0.25, [0.5, 1, 2])


def test_labels_as_n_by_1_and_integral_floats_are_accepted(rng):
    z = rng.standard_normal((3, 4))
    ref = F.sparse_softmax_cross_entropy(z, [2, 0, 3]).item()
    assert F.sparse_softmax_cross_entropy(z, np.array([[2], [0], [3]])).item() == ref
    assert F.sparse_softmax_cross_entropy(z, np.array([2.0, 0.0, 3.0])).item() == ref


def test_sample_weight_is_sum_over_batch_size(rng):
    z, y = rng.standard_normal((4, 3)), soft_targets(rng, (4, 3))
    per_sample = [F.softmax_cross_entropy(z[i:i + 1], y[i:i + 1]).item() for i in range(4)]
    w = np.array([0.0, 1.0, 2.0, 0.5])
    np.testing.assert_allclose(F.softmax_cross_entropy(z, y, sample_weight=w).item(),
                               np.dot(w, per_sample) / 4, rtol=1e-12)
    np.testing.assert_allclose(F.mse(z, y, sample_weight=w[:, None]).item(), mse_np(z, y, w), rtol=1e-12)
    with pytest.raises(ShapeError, match=r"sample_weight of shape \(4,\)"):
        F.softmax_cross_entropy(z, y, sample_weight=np.ones(3))


def test_prediction_needs_a_batch_axis():
    with pytest.raises(ShapeError, match="batch axis"):
        F.mse(np.float64(1.0), np.float64(2.0))


def test_clipped_probabilities_give_finite_loss_and_no_gradient_there():
    a = Tensor(np.array([[0.0, 1.0, 0.5, 1e-9]]), requires_grad=True)
    y = np.array([[1.0, 0.0, 1.0, 0.3]])
    L = F.binary_crossentropy(a, y)
    L.backward()
    np.testing.assert_allclose(L.data, bce_np(a.data, y), rtol=1e-12)
    assert np.isfinite(L.data) and L.data > 2 * 16.1 / 4  # the two hopeless entries pay −ln 1e-7 ≈ 16.1
    np.testing.assert_array_equal(a.grad[0, [0, 1, 3]], 0)  # outside [ε, 1 − ε]: clip passes nothing
    np.testing.assert_allclose(a.grad[0, 2], (0.5 - 1) / (0.25 * 4), rtol=1e-12)


def test_clipped_categorical_matches_torch():
    torch = pytest.importorskip("torch")
    a, y = np.array([[0.0, 2.0, 2.0], [1.0, 3.0, 4.0]]), np.array([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])
    _compare(torch, F.categorical_crossentropy,
             lambda a_, y_: -(y_ * torch.log(torch.clamp(a_ / a_.sum(-1, keepdim=True), EPS, 1 - EPS))).sum(-1).mean(),
             a, y)
    ta = Tensor(a, requires_grad=True)
    F.categorical_crossentropy(ta, y).backward()
    assert np.isfinite(ta.grad).all()
