"""numba's one-pass ReLU (tidu.kernels.elementwise, extra `fast`) against the NumPy path, the
reference: F.relu, its in-place form for inference, and F.dense_relu (a Dense layer's GEMM,
bias and ReLU as one op), forward and backward. The kernels do the NumPy path's float
operations element by element, so the results are compared bit for bit (the sign of zeros
included; NaN where NaN), on odd shapes: a scalar, one element, a transposed view, batch 1,
3-D inputs; float32 and float64; NaN and ±inf."""
import importlib
import sys

import numpy as np
import pytest

import tidu.functional as F
from tidu import Tensor, gradcheck, kernels, layers, models, no_grad
from tidu.kernels import elementwise
from tidu.functional.activations import relu_in_place
from tidu.training import split_predict

pytest.importorskip("numba")

# the modules (tidu.functional.dense is also the name of a function there)
activations_module = importlib.import_module("tidu.functional.activations")
dense_module = importlib.import_module("tidu.functional.dense")

SPECIAL = [np.nan, -np.inf, np.inf, -0.0, 0.0, -1e-30, 1e-30, -3.5, 2.25]


def assert_same_bits(a, b):
    """a and b equal element by element, with the same sign of every zero and NaN where NaN."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype
    nan = np.isnan(a)
    np.testing.assert_array_equal(nan, np.isnan(b))
    np.testing.assert_array_equal(a[~nan], b[~nan])
    np.testing.assert_array_equal(np.signbit(a[~nan]), np.signbit(b[~nan]))


@pytest.fixture
def relu_calls(count_kernel_gets):
    return count_kernel_gets(activations_module, "elementwise_kernels",
                             elementwise.elementwise_kernels)


@pytest.fixture
def dense_calls(count_kernel_gets):
    return count_kernel_gets(dense_module, "elementwise_kernels", elementwise.elementwise_kernels)


def _inputs(rng, shape, dtype):
    x = rng.standard_normal(shape).astype(dtype)
    flat = x.reshape(-1)
    flat[:len(SPECIAL)] = SPECIAL[:flat.size]
    return x


def _relu_both(x, gy):
    """[(y, dL/dx)] of F.relu with the fast paths on, then off."""
    out = []
    for fast in (True, False):
        kernels.set_enabled(fast)
        t = Tensor(x, requires_grad=True)
        y = F.relu(t)
        y.backward(gy)
        out.append((y.data, t.grad))
    return out


SHAPES = [(), (1,), (7,), (3, 5), (32, 12, 12, 20), (2, 3, 4, 5)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_relu_kernel_gives_the_numpy_paths_bits(rng, relu_calls, shape, dtype):
    x = _inputs(rng, shape, dtype)
    gy = rng.standard_normal(shape).astype(dtype)
    (y1, g1), (y0, g0) = _relu_both(x, gy)
    assert relu_calls[0] == 1, "the kernel did not run"
    assert_same_bits(y1, y0)
    assert_same_bits(g1, g0)
    assert y1.dtype == dtype and g1.shape == shape


def test_relu_kernel_on_a_transposed_view_and_an_infinite_gradient(rng, relu_calls):
    x = _inputs(rng, (6, 5), np.float32).T               # not C-contiguous
    gy = rng.standard_normal((5, 6)).astype(np.float32)
    gy[0, :3] = [np.inf, -np.inf, np.nan]
    (y1, g1), (y0, g0) = _relu_both(x, gy)
    assert relu_calls[0] == 1
    assert_same_bits(y1, y0)
    assert_same_bits(g1, g0)


def test_relu_keeps_its_edge_values_with_the_kernel():
    y = F.relu(np.array(SPECIAL, dtype=np.float32)).data
    assert np.isnan(y[0]) and y[1] == 0 and not np.signbit(y[1])   # NaN stays NaN; relu(−∞) = +0
    assert y[2] == np.inf
    assert not np.signbit(y[3:6]).any() and (y[3:6] == 0).all()   # +0.0, never −0.0
    assert y[6] == np.float32(1e-30) and y[7] == 0 and y[8] == 2.25


def test_relu_grad_of_another_dtype_than_the_output_is_the_numpy_paths(rng):
    y = np.array([-1.0, 0.0, 2.0, np.nan], dtype=np.float32)
    gy = np.array([3.0, 4.0, 5.0, 6.0])            # float64
    g = elementwise.elementwise_kernels(np.float32).relu_grad(gy, y)
    assert g.dtype == np.float64
    np.testing.assert_array_equal(g, gy * (y > 0).astype(np.float32))


def test_relu_falls_back_for_other_dtypes(relu_calls):
    x = Tensor(np.array([-1.0, 2.0], dtype=np.float16), requires_grad=True)
    y = F.relu(x)
    y.backward(np.ones(2, dtype=np.float16))
    assert relu_calls[0] == 0
    np.testing.assert_array_equal(y.data, [0, 2])
    np.testing.assert_array_equal(x.grad, [0, 1])


@pytest.mark.parametrize("fast", [True, False])
def test_relu_gradcheck(rng, fast):
    kernels.set_enabled(fast)
    x = rng.standard_normal((4, 6))
    x[np.abs(x) < 0.05] = 0.5                      # keep the kink out of the differences
    assert gradcheck(F.relu, x)


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_in_place_writes_relus_values_over_its_argument(rng, fast, dtype):
    kernels.set_enabled(fast)
    a = _inputs(rng, (4, 9), dtype)
    expected = F.relu(a.copy()).data
    assert relu_in_place(a) is a
    assert_same_bits(a, expected)
    view = _inputs(rng, (9, 4), dtype).T           # not contiguous: the NumPy passes, in place
    expected = F.relu(view.copy()).data
    assert relu_in_place(view) is view
    assert_same_bits(view, expected)


def _dense_both(x, W, b, gy):
    """[(y, dL/dx, dL/dW, dL/db)] of F.dense_relu, then of F.relu(F.dense(...)), each with the
    fast paths on and off: four results, the reference last."""
    out = []
    for fast in (True, False):
        kernels.set_enabled(fast)
        for fused in (True, False):
            ts = [Tensor(a, requires_grad=True) for a in (x, W) + ((b,) if b is not None else ())]
            y = F.dense_relu(*ts) if fused else F.relu(F.dense(*ts))
            y.backward(gy)
            out.append((y.data, *[t.grad for t in ts]))
    return out


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x_shape, units",
                         [((32, 800), 500), ((1, 5), 3), ((2, 3, 7), 4), ((9, 1), 1)])
def test_dense_relu_gives_relu_of_dense_bit_for_bit(rng, dense_calls, x_shape, units, dtype, bias):
    x = _inputs(rng, x_shape, dtype)
    x[np.isnan(x) | np.isinf(x)] = 1.5            # finite: a NaN input makes every output NaN
    W = rng.standard_normal((x_shape[-1], units)).astype(dtype)
    b = rng.standard_normal(units).astype(dtype) if bias else None
    gy = rng.standard_normal((*x_shape[:-1], units)).astype(dtype)
    results = _dense_both(x, W, b, gy)
    assert dense_calls[0] == 1, "the kernel did not run"
    reference = results[-1]
    for result in results[:-1]:
        for a, r in zip(result, reference):
            assert_same_bits(a, r)


def test_dense_relu_with_a_bias_of_another_dtype_takes_the_numpy_path(rng, dense_calls):
    x = rng.standard_normal((3, 4)).astype(np.float32)
    W = rng.standard_normal((4, 2)).astype(np.float32)
    b = rng.standard_normal(2)                     # float64: y = x W + b is cast as NumPy does
    y = F.dense_relu(x, W, b)
    assert dense_calls[0] == 0
    assert_same_bits(y.data, F.relu(F.dense(x, W, b)).data)


def test_dense_relu_refuses_a_wrong_input_width(rng):
    with pytest.raises(Exception, match="last dimension 4, got shape"):
        F.dense_relu(np.ones((2, 3)), np.ones((4, 5)))


@pytest.mark.parametrize("fast", [True, False])
def test_dense_relu_gradcheck(rng, fast):
    kernels.set_enabled(fast)
    x, W, b = rng.standard_normal((5, 4)), rng.standard_normal((4, 3)), rng.standard_normal(3)
    assert gradcheck(F.dense_relu, x, W, b)
    assert gradcheck(F.dense_relu, x, W)


def test_a_dense_relu_layer_runs_as_one_op_with_the_same_values(rng, dense_calls):
    layer = layers.Dense(6, activation="relu")
    x = rng.standard_normal((4, 5)).astype(np.float32)
    y = layer(x)
    assert dense_calls[0] == 1
    assert_same_bits(y.data, F.relu(F.dense(x, layer.kernel, layer.bias)).data)
    with pytest.raises(Exception, match="expected input with last dimension 5"):
        layer(np.ones((2, 3), dtype=np.float32))


def test_a_dense_subclass_with_its_own_pre_activation_keeps_it(rng):
    class Doubled(layers.Dense):
        def pre_activation(self, inputs, training=False):
            return super().pre_activation(inputs, training) * 2.0

    layer = Doubled(3, activation="relu")
    x = rng.standard_normal((2, 4)).astype(np.float32)
    y = layer(x).data
    z = F.dense(x, layer.kernel, layer.bias).data * 2.0
    np.testing.assert_array_equal(y, np.where(z > 0, z, 0))


@pytest.mark.parametrize("fast", [True, False])
def test_a_conv_nets_relus_in_place_at_inference_leave_predict_as_the_forward_pass(rng, fast,
                                                                                   monkeypatch):
    """Conv2D(relu) → MaxPooling2D runs as one op whose ReLU, at inference, is written over the
    op's own output: predict must equal the recorded forward pass and leave x alone. (The
    layers' own path: tidu.training.split_predict's agrees to float rounding, test_split.py.)"""
    monkeypatch.setattr(split_predict, "MIN_ROWS", sys.maxsize)
    kernels.set_enabled(fast)
    m = models.Sequential([layers.Conv2D(4, 3, activation="relu", input_shape=(9, 9, 2)),
                           layers.MaxPooling2D(2), layers.Flatten(),
                           layers.Dense(5, activation="relu"), layers.Dense(3)])
    x = rng.standard_normal((6, 9, 9, 2)).astype(np.float32)
    before = x.copy()
    with no_grad():
        inferred = m.predict_on_batch(x)
    recorded = m(Tensor(x), training=False).data
    np.testing.assert_array_equal(x, before)
    assert_same_bits(inferred, recorded)
