import numpy as np
import pytest

from tidu.data import ImageAugmenter
from tidu.data.augmentation import gaussian_kernel, gaussian_matrix
from tidu.errors import ShapeError


class Extremes:
    """A stand-in Generator: every uniform draw is the top of its range, no noise."""

    def uniform(self, low, high, size):
        return np.full(size, high, dtype=float)


def test_default_and_zero_rotation_are_the_identity(rng):
    x = rng.integers(0, 256, (4, 28, 28), dtype=np.uint8)
    for augmenter in (ImageAugmenter(), ImageAugmenter(rotation_range=0.0)):
        out = augmenter(x, rng)
        assert out.dtype == np.float32
        np.testing.assert_array_equal(out, x)
    # through the resampling path: rotation by exactly 0 degrees, shift by 0 pixels
    zero = ImageAugmenter(rotation_range=30.0, width_shift_range=2.0)
    np.testing.assert_array_equal(zero(x, ZeroDraws()), x)


class ZeroDraws:
    def uniform(self, low, high, size):
        return np.zeros(size)


def test_shift_moves_a_known_pixel():
    x = np.zeros((1, 8, 10), np.float32)
    x[0, 3, 4] = 1.0
    out = ImageAugmenter(width_shift_range=2.0, height_shift_range=0.25)(x, Extremes())
    expected = np.zeros_like(x)
    expected[0, 3 + 2, 4 + 2] = 1.0  # down by 0.25 * 8 = 2 rows, right by 2 columns
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_half_pixel_shift_interpolates_bilinearly():
    x = np.zeros((1, 3, 4), np.float32)
    x[0, 1, 1] = 1.0
    out = ImageAugmenter(width_shift_range=0.125)(x, Extremes())  # 0.125 * 4 = half a pixel
    np.testing.assert_allclose(out[0, 1], [0.0, 0.5, 0.5, 0.0], atol=1e-6)


def test_shift_fills_from_outside_and_moves_every_channel(rng):
    x = rng.random((2, 6, 6, 3)).astype(np.float32)
    out = ImageAugmenter(width_shift_range=1.0, fill_value=-1.0)(x, Extremes())
    np.testing.assert_allclose(out[:, :, 1:], x[:, :, :-1], atol=1e-6)
    np.testing.assert_array_equal(out[:, :, 0], -1.0)


@pytest.mark.parametrize("degrees, turns", [(90, 1), (180, 2), (270, 3)])
def test_rotation_by_right_angles_matches_rot90(rng, degrees, turns):
    x = rng.random((3, 7, 7, 2)).astype(np.float32)
    out = ImageAugmenter(rotation_range=degrees)(x, Extremes())
    np.testing.assert_allclose(out, np.rot90(x, turns, axes=(1, 2)), atol=1e-5)


def test_geometric_transforms_keep_a_constant_image_constant(rng):
    x = np.full((8, 16, 16), 0.7, np.float32)
    augmenter = ImageAugmenter(width_shift_range=0.2, height_shift_range=0.2, rotation_range=20,
                               elastic_alpha=34.0, elastic_sigma=4.0, fill_value=0.7)
    np.testing.assert_allclose(augmenter(x, rng), 0.7, rtol=1e-6)  # weights sum to 1


def test_gaussian_matrix_is_convolution_with_the_kernel(rng):
    for n, sigma in ((28, 4.0), (9, 1.5)):
        g, v = gaussian_kernel(sigma), rng.standard_normal(n)
        radius = len(g) // 2
        expected = np.convolve(v, g, "full")[radius:radius + n]  # zeros beyond the ends
        np.testing.assert_allclose(gaussian_matrix(n, sigma) @ v, expected, rtol=1e-12)
    np.testing.assert_allclose(gaussian_kernel(2.0).sum(), 1.0)
    assert len(gaussian_kernel(4.0)) == 33


def test_elastic_field_is_smooth_and_scaled_by_alpha(rng):
    augmenter = ImageAugmenter(elastic_alpha=34.0, elastic_sigma=4.0)
    d_row, d_col = augmenter._elastic_field(200, 28, 28, rng)
    assert d_row.shape == d_col.shape == (200, 28, 28)
    inner = d_row[:, 8:20, 8:20]  # away from the zero-padded border
    neighbours = np.corrcoef(inner[:, :, :-1].ravel(), inner[:, :, 1:].ravel())[0, 1]
    assert neighbours > 0.9
    # the blurred uniform(-1, 1) field has std sqrt(1/3 * sum g_i^2 g_j^2) inside
    g = gaussian_kernel(4.0)
    expected_std = 34.0 * np.sqrt(1 / 3) * np.sum(g**2)
    assert abs(inner.std() / expected_std - 1) < 0.1
    twice = ImageAugmenter(elastic_alpha=68.0, elastic_sigma=4.0)
    d2, _ = twice._elastic_field(200, 28, 28, np.random.default_rng(1234))
    d1, _ = augmenter._elastic_field(200, 28, 28, np.random.default_rng(1234))
    np.testing.assert_allclose(d2, 2 * d1, rtol=1e-6)


def test_elastic_distortion_matches_scipy(rng):
    ndimage = pytest.importorskip("scipy.ndimage")
    from tidu.datasets import mnist
    (x, _), _ = mnist.load_subset()
    x = x[:16].astype(np.float32) / 255
    out = ImageAugmenter(elastic_alpha=34.0, elastic_sigma=4.0)(x, np.random.default_rng(5))
    U = 2 * np.random.default_rng(5).random((2, 16, 28, 28), dtype=np.float32) - 1  # same draws
    rows, cols = np.meshgrid(np.arange(28), np.arange(28), indexing="ij")
    for n in range(16):
        d_row = 34.0 * ndimage.gaussian_filter(U[0, n], 4.0, mode="constant")
        d_col = 34.0 * ndimage.gaussian_filter(U[1, n], 4.0, mode="constant")
        expected = ndimage.map_coordinates(x[n], [rows + d_row, cols + d_col], order=1,
                                           mode="constant", cval=0.0)
        np.testing.assert_allclose(out[n], expected, atol=1e-5)  # float32 coordinates
    assert np.all(np.abs(out - x).mean(axis=(1, 2)) > 0.01)  # every image moved


def test_noise_has_the_requested_std(rng):
    x = np.full((64, 28, 28, 1), 0.5, np.float32)
    out = ImageAugmenter(gaussian_noise=0.1)(x, rng)
    assert abs((out - x).std() - 0.1) < 0.002 and abs((out - x).mean()) < 0.002


def test_seed_and_rng_make_it_reproducible(rng):
    x = rng.random((4, 12, 12)).astype(np.float32)
    config = dict(width_shift_range=0.1, rotation_range=15, elastic_alpha=8.0, gaussian_noise=0.05)
    a, b = ImageAugmenter(**config, seed=3), ImageAugmenter(**config, seed=3)
    np.testing.assert_array_equal(a(x), b(x))
    np.testing.assert_array_equal(a(x, np.random.default_rng(5)), b(x, np.random.default_rng(5)))
    assert not np.array_equal(a(x), a(x))  # the augmenter's own generator moves on


def test_config_round_trip():
    augmenter = ImageAugmenter(width_shift_range=0.1, rotation_range=10, elastic_alpha=34,
                               elastic_sigma=4, gaussian_noise=0.1, seed=7)
    clone = ImageAugmenter.from_config(augmenter.get_config())
    assert clone.get_config() == augmenter.get_config()
    x = np.random.default_rng(0).random((2, 10, 10)).astype(np.float32)
    np.testing.assert_array_equal(augmenter(x), clone(x))


def test_errors():
    with pytest.raises(ShapeError, match=r"got shape \(28, 28\)"):
        ImageAugmenter()(np.zeros((28, 28)))
    with pytest.raises(ValueError, match="rotation_range >= 0"):
        ImageAugmenter(rotation_range=-5)
    with pytest.raises(ValueError, match="elastic_sigma > 0"):
        ImageAugmenter(elastic_sigma=0)
