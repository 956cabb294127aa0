"""The pooling kernels (tidu.kernels.pooling, extra `fast`) against the NumPy taps, the reference.

Both paths add in the same order and pick the same element, so forward and backward are
compared bit for bit (assert_array_equal: a tied ±0 may differ only in its sign), max pooling
with ties included; through a small CNN's fit the loss history is the same with the fast path
on and off. Each test also checks that the kernel actually ran.
"""
import numpy as np
import pytest

import tidu.functional as F
import tidu.functional.conv as conv
from tidu import Tensor, gradcheck, kernels
from tidu.kernels import pooling

pytest.importorskip("numba")


@pytest.fixture
def calls(count_kernel_gets):
    """How many times the ops got the kernels (not None) from pool_kernels."""
    return count_kernel_gets(conv, "pool_kernels", pooling.pool_kernels)


CASES = [  # x shape, pool_size, strides, padding
    ((1, 5, 7, 1), 2, None, "valid"),          # batch 1, odd H/W: the last row/column unused
    ((2, 8, 8, 3), 2, None, "valid"),          # windows tile the input exactly
    ((2, 7, 9, 50), 3, 2, "valid"),            # pool 3 stride 2: overlapping
    ((2, 7, 9, 3), 3, 2, "same"),              # ... and padded
    ((3, 6, 6, 4), 3, 1, "same"),              # up to 9 windows per element
    ((2, 8, 7, 5), 2, 3, "valid"),             # stride > pool: gaps
    ((2, 9, 7, 2), (2, 3), (1, 2), "same"),
    ((1, 5, 5, 1), 2, 2, "same"),              # padding on the bottom/right only
    ((2, 4, 4, 50), 4, 4, "same"),             # one window
]
OPS = {"max": F.max_pool2d, "avg": F.avg_pool2d}


def _run(fast, op, x, gy, pool, strides, padding):
    kernels.set_enabled(fast)
    t = Tensor(x.copy(), requires_grad=True)
    y = op(t, pool, strides, padding)
    y.backward(gy)
    return y.data, t.grad


def _compare(op, x, pool, strides, padding, rng, calls):
    kernels.set_enabled(False)
    shape = op(Tensor(x), pool, strides, padding).shape
    gy = rng.standard_normal(shape).astype(x.dtype)
    y0, g0 = _run(False, op, x, gy, pool, strides, padding)
    before = calls[0]
    y1, g1 = _run(True, op, x, gy, pool, strides, padding)
    assert calls[0] == before + 1, "the kernel did not run"
    assert y1.dtype == y0.dtype == x.dtype and g1.dtype == g0.dtype == x.dtype
    assert y1.shape == y0.shape and g1.shape == g0.shape == x.shape
    np.testing.assert_array_equal(y1, y0)
    np.testing.assert_array_equal(g1, g0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("xs, pool, strides, padding", CASES)
def test_kernel_gives_the_numpy_bits(rng, calls, dtype, kind, xs, pool, strides, padding):
    x = rng.standard_normal(xs).astype(dtype)
    _compare(OPS[kind], x, pool, strides, padding, rng, calls)


@pytest.mark.parametrize("xs, pool, strides, padding", CASES)
def test_max_ties_go_to_the_same_element(rng, calls, xs, pool, strides, padding):
    """Small integers: most windows hold several maxima; the first in row-major order wins,
    in both paths, also where overlapping windows share it."""
    x = rng.integers(-2, 3, xs).astype(np.float32)
    _compare(F.max_pool2d, x, pool, strides, padding, rng, calls)


def test_max_nan_and_minus_infinity(rng, calls):
    """A window holding a NaN has a NaN maximum and sends no gradient; a window of −∞ (with
    'same' padding around it) gives −∞ and the same gradient as the plain path."""
    x = rng.standard_normal((2, 7, 7, 3))
    x[0, 0, 0, 0] = x[1, 3, 4, 2] = np.nan
    x[0, 5:, 5:, 1] = -np.inf
    x[1, :2, :, 0] = -np.inf
    for pool, strides, padding in [(2, 2, "same"), (3, 2, "same"), (3, 1, "valid")]:
        _compare(F.max_pool2d, x, pool, strides, padding, rng, calls)
    kernels.set_enabled(True)
    y = F.max_pool2d(Tensor(x), 2, 2, "same").data
    assert np.isnan(y[0, 0, 0, 0]) and np.isneginf(y[0, 3, 3, 1])


def test_non_contiguous_input(rng, calls):
    x = rng.standard_normal((3, 9, 8, 6)).astype(np.float32)[:, ::2, :, 1:5]
    for op in OPS.values():
        _compare(op, x, 3, 2, "same", rng, calls)


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("xs, pool, strides, padding", [((2, 7, 9, 3), 3, 2, "same"),
                                                        ((1, 5, 6, 2), 2, 1, "valid"),
                                                        ((2, 6, 6, 1), 2, 3, "same")])
def test_gradcheck_through_the_kernels(rng, calls, kind, xs, pool, strides, padding):
    x = rng.permutation(np.prod(xs)).reshape(xs) * 0.1   # no ties: the max's gradient is defined
    gradcheck(lambda t: OPS[kind](t, pool, strides, padding), x)
    assert calls[0] > 0


def test_the_switch_and_other_dtypes_fall_back_to_numpy():
    assert pooling.pool_kernels(np.float32) is not None
    assert pooling.pool_kernels(np.float16) is None
    assert pooling.pool_kernels(np.int32) is None
    kernels.set_enabled(False)
    assert pooling.pool_kernels(np.float32) is None
    x = np.arange(32, dtype=np.float16).reshape(1, 4, 4, 2)      # the plain path still runs
    assert F.max_pool2d(Tensor(x)).data.dtype == np.float16


def _fit_losses(fast):
    from tidu import layers, models, optimizers
    from tidu.utils import set_random_seed
    kernels.set_enabled(fast)
    set_random_seed(7)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((48, 13, 11, 2)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 48)]
    model = models.Sequential([
        layers.Conv2D(6, 3, activation="relu", input_shape=(13, 11, 2)),
        layers.MaxPooling2D(2),                                   # conv → pool → relu (pools_first)
        layers.Conv2D(5, 3, padding="same", activation="tanh"),
        layers.MaxPooling2D(3, strides=2, padding="same"),
        layers.AveragePooling2D(2, strides=1, padding="same"),
        layers.Flatten(), layers.Dense(3, activation="softmax")])
    model.compile(optimizer=optimizers.SGD(learning_rate=0.05, momentum=0.9),
                  loss="categorical_crossentropy")
    return model.fit(x, y, epochs=4, batch_size=16, shuffle=False, verbose=0).history["loss"]


def test_cnn_fit_gives_the_same_losses(calls):
    off = _fit_losses(False)
    assert calls[0] == 0
    on = _fit_losses(True)
    assert calls[0] > 0
    np.testing.assert_allclose(on, off, rtol=1e-6)


def test_inference_over_exact_tiles_takes_the_numpy_maximum(rng, calls):
    """Under no_grad the max pool needs no first-maximum index: where the windows tile the
    input exactly NumPy's maximum of whole rows is faster and runs; elsewhere the kernel."""
    from tidu.autograd import no_grad
    x = rng.standard_normal((3, 8, 6, 5)).astype(np.float32)
    kernels.set_enabled(False)
    plain = [F.max_pool2d(Tensor(x), p, s, pad).data for p, s, pad in [(2, 2, "valid"), (3, 2, "same")]]
    kernels.set_enabled(True)
    with no_grad():
        y = F.max_pool2d(Tensor(x), 2, 2, "valid").data
        assert calls[0] == 0
        np.testing.assert_array_equal(y, plain[0])
        y = F.max_pool2d(Tensor(x), 3, 2, "same").data
        assert calls[0] == 1
        np.testing.assert_array_equal(y, plain[1])
    F.max_pool2d(Tensor(x), 2, 2, "valid")
    assert calls[0] == 2
