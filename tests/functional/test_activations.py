import numpy as np
import pytest

import tidu.functional as F
from tidu import ShapeError, Tensor, gradcheck

SHAPES = [(), (1,), (5,), (3, 1), (2, 1, 4), (4, 6)]


def away_from_kinks(rng, shape, lo=0.2, hi=2.5):
    """Random signs times magnitudes in [lo, hi]: away from relu's 0 and hard_sigmoid's ±3."""
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(lo, hi, size=shape)


def _sig(x):
    return 1 / (1 + np.exp(-x))


def _gelu_ref(x):
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))


SELU_ALPHA, SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946

# name: (tidu function, NumPy formula)
ELEMENTWISE = {
    "linear": (F.linear, lambda x: x),
    "sigmoid": (F.sigmoid, _sig),
    "tanh": (F.tanh, np.tanh),
    "relu": (F.relu, lambda x: np.maximum(x, 0)),
    "leaky_relu": (F.leaky_relu, lambda x: np.where(x > 0, x, 0.3 * x)),
    "leaky_relu_0.05": (lambda x: F.leaky_relu(x, alpha=0.05), lambda x: np.where(x > 0, x, 0.05 * x)),
    "elu": (F.elu, lambda x: np.where(x > 0, x, np.expm1(x))),
    "elu_0.5": (lambda x: F.elu(x, alpha=0.5), lambda x: np.where(x > 0, x, 0.5 * np.expm1(x))),
    "selu": (F.selu, lambda x: SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(x))),
    "softplus": (F.softplus, lambda x: np.log1p(np.exp(x))),
    "softsign": (F.softsign, lambda x: x / (1 + np.abs(x))),
    "gelu": (F.gelu, _gelu_ref),
    "swish": (F.swish, lambda x: x * _sig(x)),
    "silu": (F.silu, lambda x: x * _sig(x)),
    "hard_sigmoid": (F.hard_sigmoid, lambda x: np.clip(x / 6 + 0.5, 0, 1)),
}


def _torch_elementwise(torch, name):
    tf = torch.nn.functional
    return {
        "linear": lambda x: x,
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "relu": tf.relu,
        "leaky_relu": lambda x: tf.leaky_relu(x, 0.3),
        "leaky_relu_0.05": lambda x: tf.leaky_relu(x, 0.05),
        "elu": tf.elu,
        "elu_0.5": lambda x: tf.elu(x, alpha=0.5),
        "selu": tf.selu,
        "softplus": tf.softplus,
        "softsign": tf.softsign,
        "gelu": lambda x: tf.gelu(x, approximate="tanh"),
        "swish": tf.silu,
        "silu": tf.silu,
        "hard_sigmoid": tf.hardsigmoid,
    }[name]


def _inputs(rng, name, shape):
    x = away_from_kinks(rng, shape)
    if name == "hard_sigmoid" and x.size:  # also the flat parts beyond ±3
        x.flat[::2] *= 2.0
        x = np.where(np.abs(np.abs(x) - 3) < 0.2, x * 0.5, x)
    return x


@pytest.mark.parametrize("name", ELEMENTWISE)
@pytest.mark.parametrize("shape", SHAPES)
def test_elementwise_gradcheck(name, shape, rng):
    fn, _ = ELEMENTWISE[name]
    if name == "linear":
        fn = lambda x: F.linear(x) * 1.0  # noqa: E731  (linear is the identity, no node)
    gradcheck(fn, _inputs(rng, name, shape))


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_elementwise_forward_matches_numpy(name, rng):
    fn, ref = ELEMENTWISE[name]
    x = _inputs(rng, name, (7, 9)) * 2
    np.testing.assert_allclose(fn(Tensor(x)).data, ref(x), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_elementwise_matches_torch(name, rng):
    torch = pytest.importorskip("torch")
    fn, _ = ELEMENTWISE[name]
    x, g = _inputs(rng, name, (6, 8)) * 1.5, rng.standard_normal((6, 8))
    ours = Tensor(x, requires_grad=True)
    y = fn(ours)
    y.backward(g) if y is not ours else None
    ref = torch.tensor(x, requires_grad=True)
    ty = _torch_elementwise(torch, name)(ref)
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-12, atol=1e-14)
    if name != "linear":
        ty.backward(torch.from_numpy(g))
        # torch's hardsigmoid backward multiplies by the float32 constant 1.0f/6.0f
        rtol = 1e-7 if name == "hard_sigmoid" else 1e-10
        np.testing.assert_allclose(ours.grad, ref.grad.numpy(), rtol=rtol, atol=1e-13)


def test_known_values():
    x = Tensor(np.array([-2.0, -0.5, 0.0, 1.5]))
    np.testing.assert_allclose(F.relu(x).data, [0, 0, 0, 1.5])
    np.testing.assert_allclose(F.leaky_relu(x).data, [-0.6, -0.15, 0, 1.5])  # Keras alpha 0.3
    np.testing.assert_allclose(F.sigmoid(x).data[2], 0.5)
    np.testing.assert_allclose(F.hard_sigmoid(Tensor([-4.0, -3.0, 0.0, 1.5, 3.0, 9.0])).data,
                               [0, 0, 0.5, 0.75, 1, 1])
    np.testing.assert_allclose(F.softsign(x).data, [-2 / 3, -1 / 3, 0, 0.6])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_of_a_negative_is_plus_zero(dtype):
    # x·[x > 0] is −0.0 for x < 0, and 1/relu(x) would be −inf
    x = np.array([-2.0, -1e-30, -3e38, -0.0, 0.0, 3.0], dtype)
    y = F.relu(x).data
    assert y.dtype == dtype
    np.testing.assert_array_equal(y, [0, 0, 0, 0, 0, 3])
    assert not np.signbit(y).any()
    assert not np.signbit(F.relu(-2.0).data)
    with np.errstate(divide="ignore"):
        assert 1 / F.relu(-2.0).data == np.inf
    assert np.isnan(F.relu(np.array([np.nan])).data).all()      # NaN stays NaN


@pytest.mark.parametrize("fast", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_of_minus_infinity_is_zero(fast, dtype):
    """max(−∞, 0) = 0 (−∞·[x > 0] would be NaN): F.relu, its in-place form, Dense(relu)'s op,
    each way (numba's kernels or the NumPy passes); NaN stays NaN, +∞ stays +∞, gradient 0 at
    −∞ and NaN; torch.relu's values where torch is installed."""
    from tidu import kernels
    from tidu.functional.activations import relu_in_place
    before = kernels.set_enabled(fast)
    try:
        x = np.array([-np.inf, np.nan, np.inf, -np.inf, -2.0, 3.0], dtype)
        want = np.array([0, np.nan, np.inf, 0, 0, 3], dtype)
        t = Tensor(x, requires_grad=True)
        y = F.relu(t)
        np.testing.assert_array_equal(y.data, want)
        y.backward(np.ones(6, dtype))
        np.testing.assert_array_equal(t.grad, [0, 0, 1, 0, 0, 1])
        np.testing.assert_array_equal(relu_in_place(x.copy()), want)
        z = F.dense_relu(np.zeros((1, 6), dtype), np.eye(6, dtype=dtype), x).data   # z = b
        np.testing.assert_array_equal(z[0], want)
        np.testing.assert_array_equal(F.relu(np.full((3, 70), -np.inf, dtype)).data, 0)
    finally:
        kernels.set_enabled(before)
    torch = pytest.importorskip("torch")
    np.testing.assert_array_equal(torch.relu(torch.from_numpy(x)).numpy(), want)


def test_relu_gradient_at_zero_is_zero():
    x = Tensor(np.array([-1.0, 0.0, 2.0]), requires_grad=True)
    F.relu(x).backward(np.ones(3))
    np.testing.assert_array_equal(x.grad, [0, 0, 1])


@pytest.mark.parametrize("fn", [F.sigmoid, F.tanh, F.softplus, F.elu, F.selu, F.gelu, F.swish,
                                F.softsign, F.hard_sigmoid, F.relu, F.leaky_relu,
                                F.softmax, F.log_softmax])
def test_huge_inputs_give_finite_values_and_gradients(fn):
    x = Tensor(np.array([[1e4, -1e4, 0.3], [-1e4, 2.0, 1e4]]), requires_grad=True)
    for dtype in (np.float64, np.float32):
        x = Tensor(x.data.astype(dtype), requires_grad=True)
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            y = fn(x)
            y.backward(np.ones(y.shape, dtype=dtype))
        assert np.isfinite(y.data).all() and np.isfinite(x.grad).all(), fn.__name__


def test_limits_at_huge_inputs():
    x = Tensor(np.array([1e4, -1e4]), requires_grad=True)
    np.testing.assert_array_equal(F.sigmoid(x).data, [1, 0])
    np.testing.assert_array_equal(F.tanh(x).data, [1, -1])
    y = F.softplus(x)
    np.testing.assert_array_equal(y.data, [1e4, 0])
    y.backward(np.ones(2))
    np.testing.assert_array_equal(x.grad, [1, 0])  # σ(±1e4)
    x2 = Tensor(np.array([[1e4, -1e4, 0.0]]), requires_grad=True)
    ls = F.log_softmax(x2)
    np.testing.assert_allclose(ls.data, [[0, -2e4, -1e4]])
    ls.backward(np.array([[1.0, 2.0, 3.0]]))
    np.testing.assert_allclose(x2.grad, [[1 - 6, 2, 3]])  # gy − softmax·Σgy, softmax = [1, 0, 0]


@pytest.mark.parametrize("fn", list(v[0] for k, v in ELEMENTWISE.items() if k != "linear")
                         + [F.softmax, F.log_softmax, lambda x: F.maxout(x, 2)])
def test_float32_stays_float32(fn, rng):
    x = Tensor(away_from_kinks(rng, (4, 6)).astype(np.float32), requires_grad=True)
    y = fn(x)
    assert y.dtype == np.float32
    y.backward(np.ones(y.shape, dtype=np.float32))
    assert x.grad.dtype == np.float32


def test_float32_tanh_and_sigmoid_accuracy(rng):
    x = (rng.standard_normal(10_000) * 4).astype(np.float32)
    np.testing.assert_allclose(F.tanh(Tensor(x)).data, np.tanh(x.astype(np.float64)), rtol=0, atol=3e-7)
    np.testing.assert_allclose(F.sigmoid(Tensor(x)).data, _sig(x.astype(np.float64)), rtol=3e-7, atol=0)


# --- softmax, log_softmax ----------------------------------------------------------------
AXIS_CASES = [((4, 5), -1), ((4, 5), 0), ((3, 1), -1), ((1, 6), 1), ((2, 3, 4), 1), ((5,), 0)]


@pytest.mark.parametrize("shape,axis", AXIS_CASES)
@pytest.mark.parametrize("fn", [F.softmax, F.log_softmax])
def test_softmax_gradcheck(fn, shape, axis, rng):
    gradcheck(lambda x: fn(x, axis=axis), rng.standard_normal(shape) * 2)


@pytest.mark.parametrize("shape,axis", AXIS_CASES)
def test_softmax_forward_matches_numpy(shape, axis, rng):
    x = rng.standard_normal(shape) * 3
    e = np.exp(x)
    p = e / e.sum(axis=axis, keepdims=True)
    np.testing.assert_allclose(F.softmax(Tensor(x), axis=axis).data, p, rtol=1e-12)
    np.testing.assert_allclose(F.log_softmax(Tensor(x), axis=axis).data, np.log(p), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(F.softmax(Tensor(x), axis=axis).data.sum(axis=axis), 1, rtol=1e-12)


@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_softmax_matches_torch(axis, rng):
    torch = pytest.importorskip("torch")
    x, g = rng.standard_normal((3, 4, 5)), rng.standard_normal((3, 4, 5))
    for ours_fn, torch_fn in ((F.softmax, torch.softmax), (F.log_softmax, torch.log_softmax)):
        ours, ref = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        y, ty = ours_fn(ours, axis=axis), torch_fn(ref, dim=axis)
        y.backward(g)
        ty.backward(torch.from_numpy(g))
        np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(ours.grad, ref.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_tensor_methods_use_these_ops(rng):
    x = rng.standard_normal((3, 4))
    np.testing.assert_allclose(Tensor(x).softmax(axis=0).data, F.softmax(Tensor(x), axis=0).data)
    np.testing.assert_allclose(Tensor(x).sigmoid().data, _sig(x), rtol=1e-12)
    np.testing.assert_allclose(Tensor(x).relu().data, np.maximum(x, 0))


def test_softmax_bad_axis():
    with pytest.raises(ValueError, match="softmax: axis 2 is out of range"):
        F.softmax(Tensor(np.zeros((2, 3))), axis=2)


# --- maxout ------------------------------------------------------------------------------
def test_maxout_grouping_is_units_by_pieces():
    x = Tensor(np.array([[1.0, 5.0, 2.0, 0.0, 7.0, 3.0]]))
    # pieces=2: (1, 5), (2, 0), (7, 3);   pieces=3: (1, 5, 2), (0, 7, 3)
    np.testing.assert_array_equal(F.maxout(x, 2).data, [[5, 2, 7]])
    np.testing.assert_array_equal(F.maxout(x, 3).data, [[5, 7]])
    np.testing.assert_array_equal(F.maxout(x, 1).data, x.data)


@pytest.mark.parametrize("shape,pieces,axis", [((4, 6), 2, -1), ((4, 6), 3, 1), ((3, 1, 4), 4, -1),
                                               ((2, 6, 3), 3, 1), ((6, 2), 2, 0), ((4,), 2, 0),
                                               ((1, 5), 5, -1), ((2, 3), 1, -1)])
def test_maxout_gradcheck_and_numpy(shape, pieces, axis, rng):
    x = rng.permutation(np.arange(np.prod(shape), dtype=np.float64)).reshape(shape) * 0.37  # no ties
    gradcheck(lambda t: F.maxout(t, pieces, axis=axis), x)
    ax = axis % len(shape)
    ref = x.reshape(shape[:ax] + (shape[ax] // pieces, pieces) + shape[ax + 1:]).max(axis=ax + 1)
    np.testing.assert_array_equal(F.maxout(Tensor(x), pieces, axis=axis).data, ref)


def test_maxout_matches_torch(rng):
    torch = pytest.importorskip("torch")
    x, g = rng.standard_normal((5, 12)), rng.standard_normal((5, 4))
    ours, ref = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y = F.maxout(ours, 3)
    ty = ref.reshape(5, 4, 3).max(dim=-1).values
    y.backward(g)
    ty.backward(torch.from_numpy(g))
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=0)
    np.testing.assert_allclose(ours.grad, ref.grad.numpy(), rtol=0)


def test_maxout_tie_sends_gradient_to_first_piece():
    x = Tensor(np.array([[2.0, 2.0, 1.0, 3.0, 3.0, 3.0]]), requires_grad=True)
    F.maxout(x, 3).backward(np.array([[10.0, 20.0]]))
    np.testing.assert_array_equal(x.grad, [[10, 0, 0, 20, 0, 0]])


def test_maxout_errors():
    with pytest.raises(ShapeError, match="multiple of pieces=4.*shape \\(2, 6\\)"):
        F.maxout(Tensor(np.zeros((2, 6))), 4)
    with pytest.raises(ValueError, match="pieces to be an int >= 1"):
        F.maxout(Tensor(np.zeros((2, 6))), 0)
