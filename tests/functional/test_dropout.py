import numpy as np
import pytest

import tidu
import tidu.functional as F
from tidu import ShapeError, Tensor, gradcheck


def test_identity_at_test_time_inverted_and_scaled_classic(rng):
    x = Tensor(rng.standard_normal((4, 5)).astype(np.float32))
    assert F.dropout(x, 0.3) is x  # inverted: nothing to do at test time
    y = F.dropout(x, 0.25, mode="classic")
    np.testing.assert_allclose(y.data, x.data * 0.75)
    assert y.dtype == np.float32


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.8])
def test_mask_statistics_and_inverted_values(rate):
    x = np.ones((200, 500), np.float32)
    y = F.dropout(x, rate, training=True, rng=np.random.default_rng(0)).data
    kept = y != 0
    n = x.size
    # the kept fraction is Binomial(n, 1 − rate)/n: within 5 standard deviations
    assert abs(kept.mean() - (1 - rate)) < 5 * np.sqrt(rate * (1 - rate) / n)
    np.testing.assert_allclose(y[kept], 1 / (1 - rate), rtol=1e-6)  # inverted: survivors scaled up
    assert abs(y.mean() - 1) < 5 * np.sqrt(rate / (1 - rate) / n)  # E[y] = x
    # no structure: rows and columns drop alike
    assert np.abs(kept.mean(axis=0) - (1 - rate)).max() < 6 * np.sqrt(rate * (1 - rate) / 200)


def test_classic_mode_expectation_matches_its_test_time_scaling():
    rate, x = 0.4, np.full((400, 250), 2.0, np.float32)
    train = F.dropout(x, rate, training=True, mode="classic", rng=np.random.default_rng(1)).data
    test = F.dropout(x, rate, training=False, mode="classic").data
    assert set(np.unique(train)) == {0.0, 2.0}  # classic: survivors unscaled
    np.testing.assert_allclose(test, 2.0 * (1 - rate))
    assert abs(train.mean() - test.mean()) < 5 * 2.0 * np.sqrt(rate * (1 - rate) / x.size)


@pytest.mark.parametrize("mode, scale", [("inverted", 1 / (1 - 0.3)), ("classic", 1.0)])
def test_gradient_is_the_saved_mask(rng, mode, scale):
    x = Tensor(rng.standard_normal((30, 40)).astype(np.float32) + 5, requires_grad=True)  # no zeros
    y = F.dropout(x, 0.3, training=True, mode=mode, rng=np.random.default_rng(2))
    gy = rng.standard_normal(y.shape).astype(np.float32)
    y.backward(gy)
    mask = (y.data != 0).astype(np.float32)
    np.testing.assert_allclose(y.data, x.data * mask * np.float32(scale), rtol=1e-6)
    np.testing.assert_allclose(x.grad, gy * mask * np.float32(scale), rtol=1e-6)
    assert x.grad.dtype == y.dtype == np.float32


def test_gradcheck_with_a_fixed_rng(rng):
    x = rng.standard_normal((5, 6))
    gradcheck(lambda x: F.dropout(x, 0.4, training=True, rng=np.random.default_rng(7)), x)
    gradcheck(lambda x: F.dropout(x, 0.4, training=True, mode="classic", rng=np.random.default_rng(7)), x)


def test_reproducible_with_a_seeded_rng():
    x = np.ones((50, 60), np.float32)
    a = F.dropout(x, 0.5, training=True, rng=np.random.default_rng(42)).data
    b = F.dropout(x, 0.5, training=True, rng=np.random.default_rng(42)).data
    c = F.dropout(x, 0.5, training=True, rng=np.random.default_rng(43)).data
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()
    tidu.backend.seed(5)
    d = F.dropout(x, 0.5, training=True).data  # default: the package-wide generator
    tidu.backend.seed(5)
    np.testing.assert_array_equal(d, F.dropout(x, 0.5, training=True).data)


def test_noise_shape_drops_whole_channels(rng):
    x = np.ones((8, 4, 4, 16), np.float32)
    y = F.dropout(x, 0.5, training=True, rng=rng, noise_shape=(None, 1, 1, None)).data
    assert (y == y[:, :1, :1, :]).all()  # constant over H and W
    assert 0 < (y[:, 0, 0, :] == 0).mean() < 1
    with pytest.raises(ShapeError, match=r"noise_shape .* got \(8, 2, 1, 16\)"):
        F.dropout(x, 0.5, training=True, noise_shape=(8, 2, 1, 16))


def test_dtypes_follow_the_input(rng):
    for dtype in (np.float16, np.float32, np.float64):
        x = Tensor(rng.standard_normal((3, 4)).astype(dtype), requires_grad=True)
        y = F.dropout(x, 0.5, training=True, rng=rng)
        y.backward(np.ones(y.shape, dtype))
        assert y.dtype == x.grad.dtype == dtype


def test_rate_zero_is_identity_and_bad_arguments_raise(rng):
    x = Tensor(rng.standard_normal((3, 4)))
    assert F.dropout(x, 0.0, training=True) is x
    for rate in (-0.1, 1.0, 1.5, "0.5", None):
        with pytest.raises(ValueError, match=r"expected 0 <= rate < 1, got rate="):
            F.dropout(x, rate, training=True)
    with pytest.raises(ValueError, match=r"mode 'inverted' or 'classic', got 'gaussian'"):
        F.dropout(x, 0.5, mode="gaussian")
