"""Every op of tidu.functional.math: gradient-checked in float64, values against NumPy, torch twin."""
import numpy as np
import pytest

import tidu.functional as F
from tidu import Tensor, gradcheck
from tidu.errors import ShapeError

BROADCAST_PAIRS = [((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 3, 4), (3, 1)), ((1, 4), (3, 1)), ((3,), ())]


@pytest.mark.parametrize("op", [F.add, F.sub, F.mul, F.div, F.maximum, F.minimum])
@pytest.mark.parametrize("shapes", BROADCAST_PAIRS)
def test_binary_ops_gradcheck_with_broadcasting(op, shapes, rng):
    a = rng.standard_normal(shapes[0])
    b = rng.standard_normal(shapes[1]) + (3.0 if op is F.div else 0.0)   # keep x2 away from 0
    gradcheck(op, a, b)


@pytest.mark.parametrize("op, ref", [(F.add, np.add), (F.sub, np.subtract), (F.mul, np.multiply),
                                     (F.div, np.divide), (F.maximum, np.maximum), (F.minimum, np.minimum)])
def test_binary_ops_values(op, ref, rng):
    a, b = rng.standard_normal((3, 4)), rng.standard_normal(4) + 3
    np.testing.assert_allclose(op(a, Tensor(b)).data, ref(a, b))


@pytest.mark.parametrize("fn, ref, lo", [(F.exp, np.exp, -2), (F.log, np.log, 0.5), (F.sqrt, np.sqrt, 0.5),
                                         (F.abs, np.abs, -2), (F.neg, np.negative, -2),
                                         (F.square, np.square, -2)])
@pytest.mark.parametrize("shape", [(), (1,), (3, 1), (2, 3, 4)])
def test_unary_ops(fn, ref, lo, shape, rng):
    x = rng.uniform(lo, 2.0, shape)
    if fn is F.abs:
        x = np.where(np.abs(x) < 0.1, 0.5, x)   # away from the kink at 0
    np.testing.assert_allclose(fn(Tensor(x)).data, ref(x))
    gradcheck(fn, x)


@pytest.mark.parametrize("p", [2, 3, 0.5, -1.5])
def test_pow_constant_exponent(p, rng):
    x = rng.uniform(0.5, 2.0, (3, 4))
    np.testing.assert_allclose(F.pow(Tensor(x), p).data, x ** p)
    gradcheck(lambda a: a ** p, x)


def test_pow_tensor_exponent_and_base(rng):
    gradcheck(F.pow, rng.uniform(0.5, 2.0, (3, 4)), rng.standard_normal((4,)))
    gradcheck(lambda e: 2.0 ** e, rng.standard_normal(5))


def test_clip(rng):
    x = rng.uniform(-2, 2, (4, 5))
    x = np.where(np.abs(np.abs(x) - 1) < 0.05, 0.3, x)    # away from the bounds
    np.testing.assert_allclose(F.clip(Tensor(x), -1, 1).data, np.clip(x, -1, 1))
    gradcheck(lambda a: F.clip(a, -1.0, 1.0), x)


@pytest.mark.parametrize("shapes", [((3, 4), (4, 5)), ((2, 3, 4), (4, 5)), ((2, 3, 4), (2, 4, 5)),
                                    ((1, 3, 4), (2, 4, 5)), ((4,), (4, 5)), ((3, 4), (4,)), ((4,), (4,))])
def test_matmul(shapes, rng):
    a, b = rng.standard_normal(shapes[0]), rng.standard_normal(shapes[1])
    np.testing.assert_allclose(F.matmul(a, Tensor(b)).data, a @ b)
    gradcheck(F.matmul, a, b)


def test_matmul_shape_error_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(32, 10\) @ \(20, 5\)"):
        Tensor(np.ones((32, 10))) @ Tensor(np.ones((20, 5)))


def test_dense_matches_matmul_plus_bias(rng):
    x, W, b = rng.standard_normal((5, 3)), rng.standard_normal((3, 4)), rng.standard_normal(4)
    np.testing.assert_allclose(F.dense(x, Tensor(W), Tensor(b)).data, x @ W + b)
    gradcheck(F.dense, x, W, b)
    gradcheck(F.dense, rng.standard_normal((2, 5, 3)), W, b)
    gradcheck(lambda x, W: F.dense(x, W), x, W)
    with pytest.raises(ShapeError, match=r"last dimension 3, got shape \(5, 2\)"):
        F.dense(Tensor(np.ones((5, 2))), Tensor(W))


@pytest.mark.parametrize("axis", [None, 0, 1, (0, 2), -1])
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("name", ["sum", "mean", "max", "min"])
def test_reductions(name, axis, keepdims, rng):
    x = rng.standard_normal((2, 3, 4))
    fn = getattr(F, name)
    ref = getattr(np, {"max": "amax", "min": "amin"}.get(name, name))
    np.testing.assert_allclose(fn(Tensor(x), axis=axis, keepdims=keepdims).data,
                               ref(x, axis=axis, keepdims=keepdims))
    gradcheck(lambda a: fn(a, axis=axis, keepdims=keepdims), x)


def test_max_ties_share_the_gradient():
    x = Tensor(np.array([[1.0, 3.0, 3.0]]), requires_grad=True)
    F.max(x, axis=1).sum().backward()
    np.testing.assert_allclose(x.grad, [[0.0, 0.5, 0.5]])


def test_reduction_axis_out_of_range():
    with pytest.raises(ValueError, match="axis 3"):
        F.sum(Tensor(np.ones((2, 3))), axis=3)


def test_reshape_transpose(rng):
    x = rng.standard_normal((2, 3, 4))
    gradcheck(lambda a: F.reshape(a, (4, -1)), x)
    gradcheck(lambda a: F.transpose(a, (2, 0, 1)), x)
    gradcheck(lambda a: a.T, x)
    np.testing.assert_allclose(Tensor(x).transpose(1, 0, 2).data, x.transpose(1, 0, 2))
    with pytest.raises(ShapeError, match=r"\(2, 3, 4\).*\(5, 5\)"):
        F.reshape(Tensor(x), (5, 5))


@pytest.mark.parametrize("index", [1, slice(1, 3), (slice(None), 2), (Ellipsis, 0), [0, 2, 2],
                                   (np.array([0, 1]), np.array([2, 0])), np.array([True, False, True])])
def test_getitem_basic_and_advanced(index, rng):
    x = rng.standard_normal((3, 4))
    np.testing.assert_allclose(F.getitem(Tensor(x), index).data, x[index])
    gradcheck(lambda a: a[index], x)


def test_getitem_repeated_index_accumulates():
    x = Tensor(np.zeros(3), requires_grad=True)
    x[[0, 0, 2]].sum().backward()
    np.testing.assert_allclose(x.grad, [2.0, 0.0, 1.0])


def test_concatenate_stack(rng):
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((2, 5))
    np.testing.assert_allclose(F.concatenate([a, Tensor(b)], axis=1).data, np.concatenate([a, b], 1))
    gradcheck(lambda u, v: F.concatenate([u, v], axis=-1), a, b)
    c = rng.standard_normal((2, 3))
    gradcheck(lambda u, v: F.stack([u, v], axis=1), a, c)
    with pytest.raises(ShapeError):
        F.stack([Tensor(a), Tensor(b)])


def test_pad_and_where(rng):
    x = rng.standard_normal((2, 3))
    np.testing.assert_allclose(F.pad(Tensor(x), ((1, 0), (2, 1))).data, np.pad(x, ((1, 0), (2, 1))))
    gradcheck(lambda a: F.pad(a, ((1, 0), (2, 1)), constant_values=1.5), x)
    cond = x > 0
    y = rng.standard_normal((1, 3))
    np.testing.assert_allclose(F.where(cond, Tensor(x), Tensor(y)).data, np.where(cond, x, y))
    gradcheck(lambda a, b: F.where(cond, a, b), x, y)


def test_math_matches_torch(rng):
    torch = pytest.importorskip("torch")
    a, b = rng.standard_normal((3, 4)), rng.uniform(0.5, 2, (4, 5))
    ta = torch.tensor(a, requires_grad=True)
    tb = torch.tensor(b, requires_grad=True)
    ours_a, ours_b = Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)
    u = rng.standard_normal((3, 5))
    y = ((ours_a @ ours_b).exp() / (ours_b.sum(axis=0) + 1.0) + F.log(ours_b).mean()) ** 2
    (y * u).sum().backward()
    ty = ((ta @ tb).exp() / (tb.sum(dim=0) + 1.0) + torch.log(tb).mean()) ** 2
    (ty * torch.tensor(u)).sum().backward()
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours_a.grad, ta.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(ours_b.grad, tb.grad.numpy(), rtol=1e-10)
