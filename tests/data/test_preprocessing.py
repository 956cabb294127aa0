import numpy as np
import pytest

from tidu.data import Normalizer
from tidu.errors import NotBuiltError, ShapeError


def test_fit_transform_standardizes_each_feature(rng):
    x = rng.normal([1.0, -5.0, 100.0], [2.0, 0.1, 30.0], size=(500, 3))
    norm = Normalizer()
    z = norm.fit_transform(x)
    np.testing.assert_allclose(z.mean(0), 0.0, atol=1e-12)
    np.testing.assert_allclose(z.std(0), 1.0, rtol=1e-12)
    np.testing.assert_allclose(norm.mean.ravel(), x.mean(0))
    np.testing.assert_allclose(norm.std.ravel(), x.std(0))
    np.testing.assert_allclose(norm.inverse_transform(z), x, rtol=1e-12)


def test_test_data_uses_training_statistics(rng):
    train, test = rng.normal(3.0, 2.0, (1000, 2)), np.array([[3.0, 5.0]])
    norm = Normalizer().fit(train)
    expected = (test - train.mean(0)) / train.std(0)
    np.testing.assert_allclose(norm.transform(test), expected)


def test_constant_feature_is_only_centred():
    x = np.array([[0.0, 1.0], [0.0, 3.0]])
    norm = Normalizer().fit(x)
    np.testing.assert_allclose(norm.transform(np.array([[0.5, 2.0]])), [[0.5, 0.0]])


def test_axis_none_on_mnist_gives_the_scalar_statistics():
    from tidu.datasets import mnist
    (x, _), _ = mnist.load_subset()
    norm = Normalizer(axis=None).fit(x / 255.0)
    assert norm.mean.shape == (1, 1, 1)
    np.testing.assert_allclose(norm.mean.item(), (x / 255.0).mean())
    np.testing.assert_allclose(norm.std.item(), (x / 255.0).std())
    z = norm.transform(x)  # uint8 in, floatx out
    assert z.dtype == np.float32 and z.shape == x.shape


def test_per_channel_statistics_on_nhwc(rng):
    x = rng.normal([0.0, 10.0, -3.0], [1.0, 2.0, 3.0], size=(64, 5, 5, 3)).astype(np.float32)
    norm = Normalizer(axis=(0, 1, 2))
    z = norm.fit_transform(x)
    assert z.dtype == np.float32 and norm.mean.shape == (1, 1, 1, 3)
    np.testing.assert_allclose(z.mean((0, 1, 2)), 0.0, atol=1e-5)
    np.testing.assert_allclose(z.std((0, 1, 2)), 1.0, rtol=1e-5)
    assert norm.transform(x[:3, :5, :5]).shape == (3, 5, 5, 3)


def test_large_sample_axis_statistics_match_numpy(rng):
    x = rng.integers(0, 256, size=(30000, 600), dtype=np.uint8)  # several chunks of rows
    norm = Normalizer().fit(x)
    np.testing.assert_allclose(norm.std.ravel(), x.std(0, dtype=np.float64), rtol=1e-12)


def test_errors():
    with pytest.raises(NotBuiltError, match=r"call fit\(x\)"):
        Normalizer().transform(np.zeros((2, 3)))
    norm = Normalizer().fit(np.zeros((4, 3)))
    with pytest.raises(ShapeError, match=r"fitted on shape \('\*', 3\).*got shape \(2, 4\)"):
        norm.transform(np.zeros((2, 4)))
    with pytest.raises(ShapeError, match="out of range"):
        Normalizer(axis=2).fit(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="epsilon >= 0"):
        Normalizer(epsilon=-1)


def test_config_round_trip():
    norm = Normalizer(axis=(0, 1), epsilon=1e-5)
    assert norm.get_config() == {"axis": (0, 1), "epsilon": 1e-5}
    assert Normalizer.from_config(norm.get_config()).get_config() == norm.get_config()
