import numpy as np
import pytest

import tidu
from tidu import Function, Parameter, Tensor, no_grad
from tidu.autograd import pack, unbroadcast
from tidu.errors import ShapeError


def test_square_sum_gradient_is_two_x():
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad, np.full((2, 3), 2.0))


def test_gradient_accumulates_when_a_tensor_is_used_twice(rng):
    a = rng.standard_normal((3, 4))
    x = Tensor(a, requires_grad=True)
    y = x * 3.0 + x * x        # dy/dx = 3 + 2x
    y.sum().backward()
    np.testing.assert_allclose(x.grad, 3 + 2 * a)


def test_gradients_accumulate_across_backward_calls(rng):
    x = Tensor(rng.standard_normal(5), requires_grad=True)
    (x * 2.0).sum().backward()
    (x * 5.0).sum().backward()
    np.testing.assert_allclose(x.grad, np.full(5, 7.0))


def test_diamond_graph_orders_nodes_correctly(rng):
    # r = b * a where a = b * 2: the inner node a must get its gradient before b is processed
    v = rng.standard_normal(4)
    x = Tensor(v, requires_grad=True)
    b = x * 1.5
    a = b * 2.0
    r = b * a                  # r = 4.5 x², dr/dx = 9x
    r.sum().backward()
    np.testing.assert_allclose(x.grad, 9 * v)


def test_ten_thousand_op_chain_has_no_recursion_limit():
    x = Tensor(np.ones(3), requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.sum().backward()
    np.testing.assert_allclose(x.grad, np.full(3, 1.0001 ** 10_000), rtol=1e-9)


def test_graph_is_freed_after_backward_and_kept_with_retain_graph(rng):
    x = Tensor(rng.standard_normal(3), requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad, 4 * x.data)
    with pytest.raises(RuntimeError, match="retain_graph"):
        y.backward()


def test_no_grad_records_nothing(rng):
    x = Tensor(rng.standard_normal(3), requires_grad=True)
    with no_grad():
        y = x * 2.0
    assert not y.requires_grad and y.is_leaf
    z = x * 2.0
    assert z.requires_grad and not z.is_leaf


def test_no_grad_as_decorator(rng):
    @no_grad()
    def f(t):
        return t * 2.0
    assert not f(Tensor(rng.standard_normal(3), requires_grad=True)).requires_grad


def test_backward_on_nonscalar_needs_a_gradient(rng):
    x = Tensor(rng.standard_normal(3), requires_grad=True)
    with pytest.raises(ValueError, match=r"\(3,\)"):
        (x * 2.0).backward()
    g = rng.standard_normal(3)
    (x * 2.0).backward(g)
    np.testing.assert_allclose(x.grad, 2 * g)


def test_custom_function_with_wrong_gradient_shape_is_named():
    class BadSquare(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, gy):
            return (gy * 2 * ctx.saved[0]).sum(axis=0)   # wrong: drops axis 0

    x = Tensor(np.ones((3, 4)), requires_grad=True)
    with pytest.raises(ShapeError, match=r"BadSquare.backward returned a gradient of shape \(4,\) "
                                         r"for input 0 of shape \(3, 4\)"):
        BadSquare.apply(x).sum().backward()


def test_unbroadcast_sums_added_and_stretched_axes(rng):
    g = rng.standard_normal((2, 3, 4))
    np.testing.assert_allclose(unbroadcast(g, (4,)), g.sum(axis=(0, 1)))
    np.testing.assert_allclose(unbroadcast(g, (3, 1)), g.sum(axis=(0, 2))[:, None])
    np.testing.assert_allclose(unbroadcast(g, ()), g.sum())
    assert unbroadcast(g, (2, 3, 4)) is g


def test_float32_stays_float32_through_scalars():
    x = Tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    y = ((x * 0.5 + 1) / 3 - 2) ** 2
    y.sum().backward()
    assert y.dtype == np.float32 and x.grad.dtype == np.float32


def test_ndarray_on_the_left_defers_to_tensor(rng):
    a = rng.standard_normal(3)
    x = Tensor(rng.standard_normal(3), requires_grad=True)
    y = a * x
    assert isinstance(y, Tensor)
    y.sum().backward()
    np.testing.assert_allclose(x.grad, a)


def test_pack_makes_views_into_one_buffer_and_keeps_values(rng):
    ps = [Parameter(rng.standard_normal((3, 2)).astype(np.float32)),
          Parameter(rng.standard_normal(5).astype(np.float32))]
    before = [p.data.copy() for p in ps]
    flat = pack(ps)
    assert flat.shape == (11,)
    for p, b in zip(ps, before):
        np.testing.assert_array_equal(p.data, b)
        assert np.shares_memory(p.data, flat)
    flat[:] = 0
    assert not ps[0].data.any() and not ps[1].data.any()


def test_parameter_assign_checks_shape(rng):
    p = Parameter(np.zeros((2, 2)), name="w")
    with pytest.raises(ValueError, match=r"'w'.*\(2, 2\).*\(3,\)"):
        p.assign(np.zeros(3))
    assert not p.data.any()


def test_only_float_tensors_require_grad():
    with pytest.raises(TypeError, match="int64"):
        Tensor(np.arange(3), requires_grad=True)
