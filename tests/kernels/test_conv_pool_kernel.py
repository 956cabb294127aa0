"""numba's direct one-channel convolution + bias + 2×2 max pool (tidu.kernels.conv_pool, extra
`fast`) against the NumPy path, the reference (im2col, GEMM, np.maximum's fold and the pool's
masks), for inference and for training (the kernel and bias gradients). The two sum the same
terms in different orders, so they are compared to float rounding: within 1e-6 of the largest
|value| in float32, 1e-14 in float64. Each case also checks whether the kernel ran: it takes
one input channel, strides and dilation 1, a 2×2 pool that tiles the output, and for training
an input that needs no gradient; anything else runs the NumPy path."""
import sys

import numpy as np
import pytest

import tidu.functional as F
import tidu.functional.conv_pool as conv_pool
from tidu import Tensor, gradcheck, kernels, layers, models, no_grad
from tidu.kernels import conv_pool as kernel_module
from tidu.kernels.switch import slp_vectorizer
from tidu.training import split_predict

pytest.importorskip("numba")


@pytest.fixture
def calls(count_kernel_gets):
    """How many times conv2d_max_pool2d got the kernel (not None)."""
    return count_kernel_gets(conv_pool, "one_channel_conv_pool",
                             kernel_module.one_channel_conv_pool)


def _both(x, k, b, **options):
    """(fast, plain): conv2d_max_pool2d's output with the fast paths on, then off."""
    out = []
    for fast in (True, False):
        kernels.set_enabled(fast)
        with no_grad():
            out.append(F.conv2d_max_pool2d(x, k, b, **options))
    return out


CASES = [  # x shape, kernel shape, padding
    ((32, 28, 28, 1), (5, 5, 1, 20), "valid"),    # LeNet's first layer at batch 32
    ((1, 28, 28, 1), (3, 3, 1, 32), "valid"),     # batch 1, keras.io's convnet: 26×26 -> 13×13
    ((3, 9, 13, 1), (3, 2, 1, 7), "same"),        # 'same', odd sizes, 7 filters (not a block's 8)
    ((2, 11, 10, 1), (4, 5, 1, 9), "valid"),      # a row and no column past the last tile
    ((2, 6, 6, 1), (5, 5, 1, 1), "valid"),        # one filter, one pooled pixel (2×2 -> 1×1)
    ((1, 7, 30, 1), (2, 2, 1, 17), "same"),       # a wide image: many column blocks
]


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dtype, tol", [(np.float32, 1e-6), (np.float64, 1e-14)])
@pytest.mark.parametrize("xs, ks, padding", CASES)
def test_kernel_matches_the_numpy_path(rng, calls, xs, ks, padding, dtype, tol, bias):
    x, k = rng.standard_normal(xs).astype(dtype), rng.standard_normal(ks).astype(dtype)
    b = rng.standard_normal(ks[3]).astype(dtype) if bias else None
    fast, plain = _both(x, k, b, padding=padding)
    assert calls[0] == 1, "the kernel did not run"
    assert fast.dtype == plain.dtype == dtype and fast.shape == plain.shape
    assert not fast.requires_grad
    np.testing.assert_allclose(fast.data, plain.data, rtol=0, atol=tol * np.abs(plain.data).max())


def test_nan_and_inf_reach_the_same_outputs(rng, calls):
    """A NaN in a tile makes its maximum NaN, as np.maximum does; ±∞ stay ∞ or make NaN where
    the plain path's do (∞ − ∞)."""
    x = rng.standard_normal((2, 12, 12, 1)).astype(np.float32)
    x[0, 3, 4, 0], x[1, 0, 0, 0], x[1, 9, 9, 0] = np.nan, np.inf, -np.inf
    k = rng.standard_normal((3, 3, 1, 8)).astype(np.float32)
    fast, plain = _both(x, k, np.ones(8, np.float32))
    assert calls[0] == 1
    assert np.isnan(plain.data).any() and np.isinf(plain.data).any()
    np.testing.assert_array_equal(np.isnan(fast.data), np.isnan(plain.data))
    finite = np.isfinite(plain.data)
    np.testing.assert_array_equal(fast.data[~finite & ~np.isnan(plain.data)],
                                  plain.data[~finite & ~np.isnan(plain.data)])
    np.testing.assert_allclose(fast.data[finite], plain.data[finite], rtol=0,
                               atol=1e-6 * np.abs(plain.data[finite]).max())


@pytest.mark.parametrize("xs, ks, options", [
    ((2, 10, 10, 2), (3, 3, 2, 4), {}),                                  # two input channels
    ((2, 10, 10, 1), (3, 3, 1, 4), {"strides": 2}),                      # strides 2
    ((2, 10, 10, 1), (3, 3, 1, 4), {"dilation_rate": 2}),                # dilation 2
    ((2, 12, 12, 1), (3, 3, 1, 4), {"pool_size": 3}),                    # a 3×3 pool
    ((2, 12, 12, 1), (3, 3, 1, 4), {"pool_size": 2, "pool_strides": 1}),  # overlapping windows
])
def test_other_convolutions_and_pools_run_the_numpy_path(rng, calls, xs, ks, options):
    x, k = rng.standard_normal(xs).astype(np.float32), rng.standard_normal(ks).astype(np.float32)
    fast, plain = _both(x, k, None, **options)
    assert calls[0] == 0
    np.testing.assert_allclose(fast.data, plain.data, rtol=1e-6, atol=1e-6)


def _trained(fast, x, k, b, gy, padding):
    """(y, dL/dK, dL/db) of conv2d_max_pool2d with a gradient recorded for k and b (not x),
    the fast paths on or off."""
    kernels.set_enabled(fast)
    tk = Tensor(k.copy(), requires_grad=True)
    tb = None if b is None else Tensor(b.copy(), requires_grad=True)
    y = F.conv2d_max_pool2d(x, tk, tb, padding=padding)
    y.backward(gy)
    return y.data, tk.grad, None if b is None else tb.grad


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dtype, tol", [(np.float32, 1e-6), (np.float64, 1e-14)])
@pytest.mark.parametrize("xs, ks, padding", CASES)
def test_training_matches_the_numpy_path(rng, calls, xs, ks, padding, dtype, tol, bias):
    """Training, x needing no gradient (a first layer): y, dL/dK and dL/db from the kernels
    against the NumPy path's (im2col, GEMM, the pool's masks)."""
    x, k = rng.standard_normal(xs).astype(dtype), rng.standard_normal(ks).astype(dtype)
    b = rng.standard_normal(ks[3]).astype(dtype) if bias else None
    kernels.set_enabled(False)
    with no_grad():
        gy = rng.standard_normal(F.conv2d_max_pool2d(x, k, b, padding=padding).shape).astype(dtype)
    y0, gk0, gb0 = _trained(False, x, k, b, gy, padding)
    assert calls[0] == 0
    y1, gk1, gb1 = _trained(True, x, k, b, gy, padding)
    assert calls[0] == 1, "the kernel did not run"
    assert gk1.dtype == dtype and gk1.shape == k.shape
    for got, want in [(y1, y0), (gk1, gk0)] + ([(gb1, gb0)] if bias else []):
        np.testing.assert_allclose(got, want, rtol=0, atol=tol * np.abs(want).max())


def test_training_gradients_pass_gradcheck(rng, calls):
    x = rng.standard_normal((2, 9, 11, 1))
    k, b = rng.standard_normal((3, 4, 1, 5)), rng.standard_normal(5)
    gradcheck(lambda k, b: F.conv2d_max_pool2d(x, k, b, padding="same"), k, b)
    assert calls[0] > 0


def test_training_with_a_nan_tile_gives_the_numpy_paths_gradients(rng, calls):
    """A NaN in a tile: no gradient through that tile, as the NumPy path's masks, and the
    kernel gradients at the taps that read it NaN in both (0 · NaN)."""
    x = rng.standard_normal((2, 10, 10, 1))
    x[1, 4, 5, 0] = np.nan
    k, b = rng.standard_normal((3, 3, 1, 4)), rng.standard_normal(4)
    gy = rng.standard_normal((2, 4, 4, 4))
    y0, gk0, gb0 = _trained(False, x, k, b, gy, "valid")
    y1, gk1, gb1 = _trained(True, x, k, b, gy, "valid")
    assert calls[0] == 1
    for got, want in [(y1, y0), (gk1, gk0), (gb1, gb0)]:
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        ok = ~np.isnan(want)
        np.testing.assert_allclose(got[ok], want[ok], rtol=0,
                                   atol=1e-14 * np.abs(want[ok]).max(initial=1))
    assert np.isnan(y0).any() and np.isnan(gk0).all() and not np.isnan(gb0).any()


def test_an_input_needing_a_gradient_and_mixed_dtypes_run_the_numpy_path(rng, calls):
    x = rng.standard_normal((2, 8, 8, 1)).astype(np.float32)
    k = rng.standard_normal((3, 3, 1, 4)).astype(np.float32)
    tx, tk = Tensor(x, requires_grad=True), Tensor(k, requires_grad=True)
    F.conv2d_max_pool2d(tx, tk).sum().backward()       # dL/dx wanted: im2col, kept
    assert tx.grad is not None and tk.grad is not None
    with no_grad():
        F.conv2d_max_pool2d(x.astype(np.float64), k)   # float64 input, float32 kernel
    assert calls[0] == 0


def test_lenet_predicts_the_same_with_the_kernel(rng, calls, monkeypatch):
    """Through a model: Conv2D(relu) → MaxPooling2D is the fused op, whose first layer now runs
    the kernel for predict; the class probabilities agree with the NumPy path's. (The layers'
    own path: not tidu.training.split_predict's, which tests/kernels/test_split.py covers.)"""
    monkeypatch.setattr(split_predict, "MIN_ROWS", sys.maxsize)
    model = models.Sequential([
        layers.Input((28, 28, 1)),
        layers.Conv2D(20, 5, activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(50, 5, activation="relu"), layers.MaxPooling2D(2),
        layers.Flatten(), layers.Dense(10, activation="softmax")])
    x = rng.random((33, 28, 28, 1)).astype(np.float32)
    kernels.set_enabled(True)
    fast = model.predict_on_batch(x)
    assert calls[0] == 1
    kernels.set_enabled(False)
    plain = model.predict_on_batch(x)
    np.testing.assert_allclose(fast, plain, rtol=0, atol=1e-6)


def test_compiling_leaves_numbas_vectorizer_setting_alone():
    """The kernel compiles with numba's SLP vectorizer on; the process's setting is put back."""
    from numba.core import config
    before = config.SLP_VECTORIZE
    with slp_vectorizer():
        assert config.SLP_VECTORIZE == 1
    assert config.SLP_VECTORIZE == before
    run = kernel_module.one_channel_conv_pool(np.float64).predict
    run(np.ones((1, 4, 4)), np.ones((3, 3, 2)), None)
    assert config.SLP_VECTORIZE == before


def test_read_only_inputs_run_the_compiled_specialization(rng):
    """A read-only input (a memory-mapped dataset, np.frombuffer) is copied to the one array
    type the kernel was compiled for (with the SLP vectorizer), not given a new, slower
    specialization compiled lazily; the outputs are the writeable input's."""
    run = kernel_module.one_channel_conv_pool(np.float32).predict
    x = rng.standard_normal((2, 10, 10)).astype(np.float32)
    k = rng.standard_normal((3, 3, 5)).astype(np.float32)
    y = run(x, k, None)
    compiled = kernel_module._conv_pool_jit.signatures
    x.flags.writeable = k.flags.writeable = False
    np.testing.assert_array_equal(run(x, k, np.zeros(5, np.float32)), y)
    assert kernel_module._conv_pool_jit.signatures == compiled
