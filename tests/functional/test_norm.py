import numpy as np
import pytest

import tidu.functional as F
from tidu import Parameter, ShapeError, Tensor, gradcheck


def bn_reference(x, gamma, beta, mean, var, eps, axis=-1):
    shape = [1] * x.ndim
    shape[axis] = x.shape[axis]
    r = lambda v: np.reshape(v, shape)  # noqa: E731
    return r(gamma) * (x - r(mean)) / np.sqrt(r(var) + eps) + r(beta)


@pytest.mark.parametrize("shape, axis", [((6, 4), -1), ((3, 4, 5, 3), -1), ((3, 4, 5, 3), 1), ((1, 1, 3), -1)])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_forward(rng, shape, axis, training):
    x = rng.standard_normal(shape) * 2 + 1
    D = shape[axis]
    gamma, beta = rng.standard_normal(D), rng.standard_normal(D)
    mm, mv = rng.standard_normal(D), rng.random(D) + 0.5
    y = F.batch_norm(x, gamma, beta, mm.copy(), mv.copy(), training=training, axis=axis)
    axes = tuple(a for a in range(x.ndim) if a != axis % x.ndim)
    mean, var = (x.mean(axis=axes), x.var(axis=axes)) if training else (mm, mv)
    np.testing.assert_allclose(y.data, bn_reference(x, gamma, beta, mean, var, 1e-3, axis), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("shape, axis", [((6, 4), -1), ((3, 4, 5, 3), -1), ((3, 2, 4, 5), 1)])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_gradcheck(rng, shape, axis, training):
    D = shape[axis]
    x, gamma, beta = rng.standard_normal(shape), rng.standard_normal(D) + 1, rng.standard_normal(D)
    mm, mv = rng.standard_normal(D), rng.random(D) + 0.5
    stats = dict(moving_mean=mm, moving_variance=mv) if not training else {}
    gradcheck(lambda x, g, b: F.batch_norm(x, g, b, training=training, axis=axis, **stats), x, gamma, beta)
    gradcheck(lambda x: F.batch_norm(x, None, None, training=training, axis=axis, **stats), x)  # center/scale off
    gradcheck(lambda x, g: F.batch_norm(x, g, None, training=training, axis=axis, **stats), x, gamma)


def test_batch_norm_gradcheck_realistic_shape(rng):
    x, gamma, beta = rng.standard_normal((16, 12, 12, 20)), rng.standard_normal(20), rng.standard_normal(20)
    gradcheck(lambda x, g, b: F.batch_norm(x, g, b, training=True), x, gamma, beta, directions=3)


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_matches_torch(rng, training):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((4, 5, 3, 6)) * 3 - 1
    gamma, beta = rng.standard_normal(6), rng.standard_normal(6)
    mm, mv = rng.standard_normal(6), rng.random(6) + 0.5
    moving_mean, moving_variance = Parameter(mm.copy(), trainable=False), Parameter(mv.copy(), trainable=False)
    X, G, B = Tensor(x, requires_grad=True), Parameter(gamma), Parameter(beta)
    ref_stats = [torch.tensor(mm.copy()), torch.tensor(mv.copy())]
    xt = torch.tensor(x).permute(0, 3, 1, 2).requires_grad_()  # NHWC -> NCHW, channels on axis 1
    gt, bt = torch.tensor(gamma, requires_grad=True), torch.tensor(beta, requires_grad=True)
    for step in range(3):  # the moving statistics evolve over several steps
        y = F.batch_norm(X, G, B, moving_mean, moving_variance, training=training, momentum=0.9, epsilon=1e-3)
        yt = torch.nn.functional.batch_norm(xt, *ref_stats, gt, bt, training=training, momentum=1 - 0.9, eps=1e-3)
        np.testing.assert_allclose(y.data, yt.detach().permute(0, 2, 3, 1).numpy(), rtol=1e-10, atol=1e-12)
    gy = rng.standard_normal(y.shape)
    y.backward(gy)
    yt.backward(torch.tensor(gy).permute(0, 3, 1, 2))
    np.testing.assert_allclose(X.grad, xt.grad.permute(0, 2, 3, 1).numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(G.grad, gt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(B.grad, bt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(moving_mean.data, ref_stats[0].numpy(), rtol=1e-12)
    if training:
        # torch's running_var takes the unbiased variance (N/(N−1) times ours), Keras' the biased one
        n, p = x.size // 6, 1 - 0.9
        var = x.var(axis=(0, 1, 2))
        biased = mv.copy()
        for _ in range(3):
            biased = biased * 0.9 + var * p
        np.testing.assert_allclose(moving_variance.data, biased, rtol=1e-12)
        unbiased = ref_stats[1].numpy()
        excess = p * var * (n / (n - 1) - 1) * sum(0.9 ** k for k in range(3))
        np.testing.assert_allclose(unbiased - biased, excess, rtol=1e-9)
    else:
        np.testing.assert_array_equal(moving_mean.data, mm)
        np.testing.assert_array_equal(moving_variance.data, mv)


def test_batch_norm_moving_update_is_keras_rule_in_place(rng):
    x = rng.standard_normal((8, 3)).astype(np.float32)
    mm, mv = np.zeros(3, np.float32), np.ones(3, np.float32)
    ids = (id(mm), id(mv))
    F.batch_norm(x, None, None, mm, mv, training=True, momentum=0.99)
    # moving = moving·0.99 + batch·0.01: mean 0·0.99 + μ·0.01, variance 1·0.99 + σ²·0.01
    np.testing.assert_allclose(mm, 0.01 * x.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(mv, 0.99 + 0.01 * x.var(axis=0), rtol=1e-5)
    assert (id(mm), id(mv)) == ids and mm.dtype == mv.dtype == np.float32


def test_batch_norm_float32_stays_float32(rng):
    x = Tensor(rng.standard_normal((4, 3, 3, 5)).astype(np.float32), requires_grad=True)
    g, b = Parameter(np.ones(5, np.float32)), Parameter(np.zeros(5, np.float32))
    for training in (True, False):
        y = F.batch_norm(x, g, b, np.zeros(5, np.float32), np.ones(5, np.float32), training=training)
        y.backward(np.ones(y.shape, np.float32))
        assert y.dtype == x.grad.dtype == g.grad.dtype == b.grad.dtype == np.float32


def test_batch_norm_errors_leave_the_moving_statistics_alone(rng):
    x = rng.standard_normal((4, 3))
    mm, mv = np.zeros(3), np.ones(3)
    with pytest.raises(ShapeError, match=r"expected gamma of shape \(3,\) .* got \(4,\)"):
        F.batch_norm(x, np.ones(4), None, mm, mv, training=True)
    with pytest.raises(ShapeError, match=r"expected moving_variance of shape \(3,\)"):
        F.batch_norm(x, None, None, mm, np.ones(2), training=True)
    np.testing.assert_array_equal(mm, 0)
    with pytest.raises(ValueError, match=r"training=False .* expected moving_mean and moving_variance"):
        F.batch_norm(x, None, None)
    with pytest.raises(ValueError, match=r"axis 2 does not name"):
        F.batch_norm(x, None, None, mm, mv, axis=2)
    with pytest.raises(ValueError, match=r"momentum"):
        F.batch_norm(x, None, None, mm, mv, training=True, momentum=1.5)


# --- layer norm --------------------------------------------------------------------------
@pytest.mark.parametrize("shape, axis", [((4, 6), -1), ((2, 3, 5), -1), ((2, 3, 4, 5), (1, 2, 3)), ((2, 3, 4), (1, 2))])
def test_layer_norm_forward_and_gradcheck(rng, shape, axis):
    x = rng.standard_normal(shape) * 2 + 1
    axes = (axis,) if isinstance(axis, int) else axis
    pshape = tuple(shape[a] for a in axes)
    gamma, beta = rng.standard_normal(pshape), rng.standard_normal(pshape)
    mean, var = x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True)
    bshape = tuple(n if a in [b % len(shape) for b in axes] else 1 for a, n in enumerate(shape))
    expected = gamma.reshape(bshape) * (x - mean) / np.sqrt(var + 1e-3) + beta.reshape(bshape)
    np.testing.assert_allclose(F.layer_norm(x, gamma, beta, axis=axis).data, expected, rtol=1e-10, atol=1e-12)
    gradcheck(lambda x, g, b: F.layer_norm(x, g, b, axis=axis), x, gamma, beta)
    gradcheck(lambda x: F.layer_norm(x, None, None, axis=axis), x)


def test_layer_norm_matches_torch(rng):
    torch = pytest.importorskip("torch")
    x, gamma, beta = rng.standard_normal((3, 4, 5)), rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    X, G, B = (Tensor(a, requires_grad=True) for a in (x, gamma, beta))
    y = F.layer_norm(X, G, B, axis=(1, 2), epsilon=1e-5)
    gy = rng.standard_normal(y.shape)
    y.backward(gy)
    xt, gt, bt = (torch.tensor(a, requires_grad=True) for a in (x, gamma, beta))
    yt = torch.nn.functional.layer_norm(xt, (4, 5), gt, bt, eps=1e-5)
    yt.backward(torch.tensor(gy))
    np.testing.assert_allclose(y.data, yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    for ours, ref in ((X, xt), (G, gt), (B, bt)):
        np.testing.assert_allclose(ours.grad, ref.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_layer_norm_errors(rng):
    with pytest.raises(ShapeError, match=r"expected gamma of shape \(5,\)"):
        F.layer_norm(rng.standard_normal((2, 5)), np.ones(4), None)
    with pytest.raises(ValueError, match=r"does not name distinct axes"):
        F.layer_norm(rng.standard_normal((2, 5)), None, None, axis=(1, -1))
