"""conv2d_max_pool2d: max_pool2d(conv2d(...)) as one call; for inference, chunk by chunk of
images. Every case forces small chunks (CHUNK_BYTES of a few images, the last chunk short) and
compares with the two ops run on the whole batch."""
import numpy as np
import pytest

import tidu.functional as F
import tidu.functional.conv as conv_module
from tidu import ShapeError, Tensor, gradcheck, layers, models, no_grad

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
    calls = []
    forward = conv_module.Conv2D.forward

    def spy(ctx, x, *args, **kwargs):
        calls.append(x.shape[0])
        return forward(ctx, x, *args, **kwargs)

    monkeypatch.setattr(conv_module.Conv2D, "forward", staticmethod(spy))
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
        monkeypatch.setattr(conv_module, "CHUNK_BYTES", 2 * image_bytes(xs, ks, s, pad, d) * dtype().itemsize // 4)
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
        monkeypatch.setattr(conv_module, "CHUNK_BYTES", budget)
        chunks.clear()
        with no_grad():
            fused(x, k, None, 1, "valid", 1, 2, None, "valid")
        assert chunks == expected, budget


def test_with_a_gradient_recorded_it_is_the_two_ops(rng, monkeypatch):
    """Recording: no chunks (the conv keeps its whole im2col matrix for backward); the gradients
    are the two ops' bit for bit, and gradcheck passes in float64."""
    monkeypatch.setattr(conv_module, "CHUNK_BYTES", 1)
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
    monkeypatch.setattr(conv_module, "CHUNK_BYTES", 1)   # one image a chunk
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
