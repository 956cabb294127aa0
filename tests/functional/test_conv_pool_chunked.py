"""conv2d_max_pool2d: max_pool2d(conv2d(...)) as one call (Conv2DMaxPool where the pool tiles
the conv's output); for inference, chunk by chunk of images. The inference cases force small
chunks (CHUNK_BYTES of a few images, the last chunk short) and compare with the two ops run on
the whole batch; the training cases compare gradients with the two ops'."""
import sys

import numpy as np
import pytest

import tidu.functional as F
import tidu.functional.conv as conv_module
import tidu.functional.conv_pool as conv_pool
from tidu import ShapeError, Tensor, gradcheck, layers, models, no_grad
from tidu.training import split_predict

# (x shape, kernel shape, conv strides, padding, dilation, pool, pool strides, pool padding)
CASES = [
    ((7, 12, 12, 1), (5, 5, 1, 4), 1, "valid", 1, 2, None, "valid"),   # LeNet's first layer: C = 1
    ((5, 9, 9, 3), (3, 3, 3, 6), 1, "same", 1, 2, None, "same"),       # odd maps, 'same' both
    ((6, 11, 10, 2), (3, 3, 2, 5), 2, "same", 1, 2, 1, "valid"),       # strides 2, overlapping pool
    ((4, 13, 13, 2), (3, 3, 2, 3), 1, "valid", 2, 3, 2, "valid"),      # dilation, 3×3 pool
    ((1, 8, 8, 4), (1, 1, 4, 7), 1, "valid", 1, 2, None, "valid"),     # batch 1, a 1×1 conv
]


def two_ops(x, k, b, s, pad, d, pool, ps, ppad):
    return F.max_pool2d(F.conv2d(x, k, b, strides=s, padding=pad, dilation_rate=d), pool, ps, ppad)


def fused(x, k, b, s, pad, d, pool, ps, ppad):
    return F.conv2d_max_pool2d(x, k, b, strides=s, padding=pad, dilation_rate=d, pool_size=pool,
                               pool_strides=ps, pool_padding=ppad)


def image_bytes(xs, ks, s, pad, d):
    """One image's im2col matrix in float32 bytes, as conv2d_max_pool2d sizes its chunks."""
    with no_grad():
        y = F.conv2d(np.zeros((1, *xs[1:]), np.float32), np.zeros(ks, np.float32), strides=s,
                     padding=pad, dilation_rate=d)
    return y.shape[1] * y.shape[2] * (ks[0] * ks[1] * ks[2] + 1) * 4


def count_chunks(monkeypatch):
    """The batch size of every im2col + GEMM (Conv2D's and Conv2DMaxPool's) from now on, with
    numba's direct one-channel kernel (which takes LeNet's first layer for inference with the
    fast paths on; tests/kernels/test_conv_pool_kernel.py) off: the im2col path is counted."""
    monkeypatch.setattr(conv_pool, "one_channel_conv_pool", lambda dtype: None)
    calls = []
    im2col_gemm = conv_module._im2col_gemm

    def spy(x, *args):
        calls.append(x.shape[0])
        return im2col_gemm(x, *args)

    monkeypatch.setattr(conv_module, "_im2col_gemm", spy)     # Conv2D's
    monkeypatch.setattr(conv_pool, "_im2col_gemm", spy)       # Conv2DMaxPool's
    return calls


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("xs, ks, s, pad, d, pool, ps, ppad", CASES)
def test_chunked_inference_equals_the_two_ops(rng, monkeypatch, xs, ks, s, pad, d, pool, ps, ppad,
                                              dtype, bias):
    x, k = rng.standard_normal(xs).astype(dtype), rng.standard_normal(ks).astype(dtype)
    b = rng.standard_normal(ks[3]).astype(dtype) if bias else None
    args = (k, b, s, pad, d, pool, ps, ppad)
    with no_grad():
        ref = two_ops(x, *args).data
        monkeypatch.setattr(conv_pool, "CHUNK_BYTES", 2 * image_bytes(xs, ks, s, pad, d) * dtype().itemsize // 4)
        chunks = count_chunks(monkeypatch)
        y = fused(x, *args)
    assert chunks == ([2] * (xs[0] // 2) + [1] * (xs[0] % 2) if xs[0] > 2 else [xs[0]])
    assert y.dtype == dtype and y.shape == ref.shape and not y.requires_grad
    # every image is computed alone either way; the GEMM's sums for a row do not depend on the
    # number of rows in OpenBLAS, but another BLAS may order them otherwise: 1e-6 relative
    tol = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(y.data, ref, rtol=tol, atol=tol * np.abs(ref).max())


def test_chunks_follow_chunk_bytes(rng, monkeypatch):
    xs, ks = (10, 12, 12, 1), (5, 5, 1, 4)
    x, k = rng.standard_normal(xs).astype(np.float32), rng.standard_normal(ks).astype(np.float32)
    per_image = image_bytes(xs, ks, 1, "valid", 1)
    chunks = count_chunks(monkeypatch)
    for budget, expected in [(3 * per_image, [3, 3, 3, 1]), (per_image // 2, [1] * 10),
                             (10 * per_image, [10]), (1 << 40, [10])]:
        monkeypatch.setattr(conv_pool, "CHUNK_BYTES", budget)
        chunks.clear()
        with no_grad():
            fused(x, k, None, 1, "valid", 1, 2, None, "valid")
        assert chunks == expected, budget


def test_with_a_gradient_recorded_it_is_the_two_ops(rng, monkeypatch):
    """Recording: no chunks (the conv keeps its whole im2col matrix for backward); the gradients
    are the two ops' bit for bit, and gradcheck passes in float64."""
    monkeypatch.setattr(conv_pool, "CHUNK_BYTES", 1)
    chunks = count_chunks(monkeypatch)
    x, k, b = rng.standard_normal((4, 9, 9, 2)), rng.standard_normal((3, 3, 2, 3)), rng.standard_normal(3)
    args = (1, "same", 1, 2, None, "same")
    grads = []
    for op in (fused, two_ops):
        ts = [Tensor(a, requires_grad=True) for a in (x, k, b)]
        y = op(*ts, *args)
        (y * Tensor(np.cos(np.arange(y.data.size)).reshape(y.shape))).sum().backward()
        grads.append([t.grad for t in ts])
    assert chunks == [4, 4]
    for g, g_ref in zip(*grads):
        np.testing.assert_array_equal(g, g_ref)
    gradcheck(lambda x, k, b: fused(x, k, b, *args), x, k, b)
    gradcheck(lambda x, k: fused(x, k, None, 2, "valid", 1, 2, 1, "valid"), x, k)


def test_errors_name_the_op_and_change_nothing(rng):
    x, k = rng.standard_normal((2, 6, 6, 2)), rng.standard_normal((3, 3, 2, 4))
    with pytest.raises(ShapeError, match=r"conv2d_max_pool2d: the kernel of shape \(3, 3, 3, 4\) "
                                         r"expects 3 input channels, got an input with 2"):
        F.conv2d_max_pool2d(x, rng.standard_normal((3, 3, 3, 4)))
    with pytest.raises(ShapeError, match=r"conv2d_max_pool2d: expected a bias of shape \(4,\)"):
        F.conv2d_max_pool2d(x, k, np.zeros(3))
    with pytest.raises(ValueError, match=r"conv2d_max_pool2d: expected pool_size to be a positive int"):
        F.conv2d_max_pool2d(x, k, pool_size=0)
    with pytest.raises(ShapeError, match=r"conv2d_max_pool2d: pool window 5×5 is larger"):
        with no_grad():
            F.conv2d_max_pool2d(x, k, pool_size=5)


def lenet():
    return models.Sequential([
        layers.Input((16, 16, 1)),
        layers.Conv2D(6, 5, activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(8, 3, activation="relu", padding="same"), layers.MaxPooling2D(2),
        layers.Flatten(), layers.Dense(4, activation="softmax")])


def test_predict_in_chunks_equals_the_layers_one_by_one(rng, monkeypatch):
    model = lenet()
    x = rng.random((9, 16, 16, 1)).astype(np.float32)
    h = Tensor(x)
    with no_grad():
        for layer in model.layers:
            h = layer(h)
    monkeypatch.setattr(conv_pool, "CHUNK_BYTES", 1)   # one image a chunk
    monkeypatch.setattr(split_predict, "MIN_ROWS", sys.maxsize)   # the layers, not the split
    chunks = count_chunks(monkeypatch)
    y = model.predict(x, batch_size=4, verbose=0)
    assert chunks == [1] * 18   # 4 + 4 + 1 images, through two convs
    np.testing.assert_allclose(y, h.data, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(model.predict_on_batch(x), h.data, rtol=1e-6, atol=1e-7)


def test_a_pool_larger_than_the_conv_output_raises_the_pool_layers_error(rng):
    model = models.Sequential([layers.Conv2D(2, 5, activation="relu"), layers.MaxPooling2D(2)])
    with pytest.raises(ShapeError, match=r"MaxPooling2D\(\(2, 2\)\) '.*' input of height × width "
                                         r"\(1, 1\) is smaller than the pool"):
        model.predict(np.zeros((1, 5, 5, 1), np.float32), verbose=0)


# --- Conv2DMaxPool: the pool tiles the conv's output -----------------------------------------
# (x shape, kernel shape, conv strides, padding, dilation, pool): conv output → pooled
TILED = [
    ((3, 12, 12, 1), (5, 5, 1, 4), 1, "valid", 1, 2),   # C = 1, bias as a row of ones: 8×8 → 4×4
    ((3, 13, 13, 2), (3, 3, 2, 5), 1, "valid", 1, 2),   # 11×11 → 5×5: the last row, column dropped
    ((2, 11, 11, 3), (3, 3, 3, 4), 2, "same", 1, 2),    # strides 2, 'same': 6×6 → 3×3
    ((2, 12, 12, 2), (3, 3, 2, 3), 1, "valid", 2, 3),   # dilation 2, 3×3 pool: 8×8 → 2×2
    ((1, 6, 6, 4), (1, 1, 4, 3), 1, "valid", 1, 2),     # batch 1, a 1×1 conv
    ((2, 7, 7, 1), (3, 3, 1, 2), 1, "same", 1, 1),      # a 1×1 pool
    ((2, 13, 12, 1), (3, 2, 1, 3), 2, "same", 1, 2),    # C = 1, strides 2: 7×6 → 3×3
    ((2, 12, 11, 1), (2, 3, 1, 2), 1, "valid", 2, 2),   # C = 1, dilation 2: 10×7 → 5×3
]


def grads_of(op, x, k, b, case, seed=0, integers=False):
    """y and the gradients of Σ y·w, w standard normal (small integers with integers=True)."""
    ts = [Tensor(a, requires_grad=True) for a in (x, k, b) if a is not None]
    y = op(*ts, *([None] if b is None else []), case[2], case[3], case[4], case[5], None, "valid")
    grads_of.op = y._ctx.fn
    w_rng = np.random.default_rng(seed)
    w = w_rng.integers(-2, 3, y.shape).astype(y.dtype) if integers else w_rng.standard_normal(y.shape)
    (y * Tensor(w)).sum().backward()
    return y.data, [t.grad for t in ts]


def switch(flag):
    from tidu import kernels
    previous = kernels.set_enabled(flag)
    if flag and not kernels.enabled():
        kernels.set_enabled(previous)
        pytest.skip("numba is not installed: no fast path to compare")
    return previous


@pytest.fixture(params=[False, True], ids=["plain", "fast"])
def fast(request):
    """Both settings of the fast paths' switch: Conv2DMaxPool trains only without numba's
    max pool kernels, and its dL/dx uses numba's col2im when they are on."""
    from tidu import kernels
    previous = switch(request.param)
    yield request.param
    kernels.set_enabled(previous)


@pytest.fixture
def plain():
    """The fast paths off: training runs Conv2DMaxPool (with numba, the two ops)."""
    from tidu import kernels
    previous = switch(False)
    yield
    kernels.set_enabled(previous)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("case", TILED)
def test_tiled_pool_is_one_op_with_the_two_ops_values_and_gradients(rng, monkeypatch, fast, case, bias):
    xs, ks = case[:2]
    x, k = rng.standard_normal(xs), rng.standard_normal(ks)
    b = rng.standard_normal(ks[3]) if bias else None
    calls = count_chunks(monkeypatch)
    y, grads = grads_of(fused, x, k, b, case)
    assert calls == [xs[0]]   # one im2col + GEMM
    assert grads_of.op is (conv_module.MaxPool2D if fast else conv_pool.Conv2DMaxPool)
    y_ref, grads_ref = grads_of(two_ops, x, k, b, case)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(grads[0], grads_ref[0])            # dL/dx: the same sums
    for g, g_ref in zip(grads[1:], grads_ref[1:]):                   # dL/dK, dL/db: reordered
        np.testing.assert_allclose(g, g_ref, rtol=1e-13, atol=1e-14 * np.abs(g_ref).max())


@pytest.mark.parametrize("case", TILED[:4])
def test_tiled_pool_breaks_ties_and_nans_as_max_pool2d(rng, plain, case):
    """Small integers: windows full of equal values (a blank corner, a zero bias) and exact
    sums, so every gradient is compared bit for bit; a NaN poisons its windows alike."""
    xs, ks = case[:2]
    x = rng.integers(-1, 2, xs).astype(np.float64)
    x[:, :5, :5] = 0
    k, b = rng.integers(-1, 2, ks).astype(np.float64), np.zeros(ks[3])
    x_nan = x.copy()
    x_nan[0, 3, 3, 0] = np.nan   # read by kept conv outputs only (see the next test)
    for x_case in (x, x_nan):
        y, grads = grads_of(fused, x_case, k, b, case, seed=1, integers=True)
        y_ref, grads_ref = grads_of(two_ops, x_case, k, b, case, seed=1, integers=True)
        np.testing.assert_array_equal(y, y_ref)
        for g, g_ref in zip(grads, grads_ref):
            np.testing.assert_array_equal(g, g_ref)


@pytest.mark.parametrize("case", TILED)
def test_tiled_pool_gradcheck(rng, plain, case):
    xs, ks = case[:2]
    x, k, b = rng.standard_normal(xs), rng.standard_normal(ks), rng.standard_normal(ks[3])
    gradcheck(lambda x, k, b: fused(x, k, b, *case[2:], None, "valid"), x, k, b)
    gradcheck(lambda x, k: fused(x, k, None, *case[2:], None, "valid"), x, k)


def test_tiled_pool_float32_stays_float32(rng, plain):
    x = rng.standard_normal((2, 12, 12, 3)).astype(np.float32)
    k = rng.standard_normal((3, 3, 3, 4)).astype(np.float32)
    y, grads = grads_of(fused, x, k, np.zeros(4, np.float32), TILED[1])
    assert grads_of.op is conv_pool.Conv2DMaxPool
    assert y.dtype == np.float32 and all(g.dtype == np.float32 for g in grads)


def test_rows_only_dropped_outputs_read_stay_out_of_the_gradients(rng, plain):
    """A NaN that only the conv outputs past the last whole pool window read: the two ops
    compute those outputs and send them a zero gradient, 0·NaN = NaN in dL/dK; the fused op
    never computes them, and dL/dK stays finite (the pooled outputs do not depend on it)."""
    case = TILED[3]                          # 8×8 conv output, 3×3 pool: rows 6, 7 dropped
    x, k = rng.standard_normal(case[0]), rng.standard_normal(case[1])
    x[0, 11, 3, 0] = np.nan                  # input row 11: read by conv output row 7 alone
    y, (gx, gk) = grads_of(fused, x, k, None, case)
    assert grads_of.op is conv_pool.Conv2DMaxPool
    y_ref, (gx_ref, gk_ref) = grads_of(two_ops, x, k, None, case)
    np.testing.assert_array_equal(y, y_ref)
    assert np.isfinite(y).all() and np.isfinite(gk).all() and np.isnan(gk_ref).any()
    np.testing.assert_array_equal(gx, gx_ref)
