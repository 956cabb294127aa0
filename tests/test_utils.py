import numpy as np
import pytest

from tidu.utils import normalize, to_categorical


def test_to_categorical_one_hot():
    out = to_categorical([0, 2, 1, 2])
    np.testing.assert_array_equal(out, [[1, 0, 0], [0, 0, 1], [0, 1, 0], [0, 0, 1]])
    assert out.dtype == np.float32


def test_to_categorical_num_classes_dtype_and_shapes():
    y = np.array([[1], [3]], dtype=np.uint8)  # (N, 1): the trailing 1 is dropped, as in Keras
    out = to_categorical(y, num_classes=5, dtype="int64")
    assert out.shape == (2, 5) and out.dtype == np.int64
    np.testing.assert_array_equal(out.argmax(-1), [1, 3])
    grid = to_categorical(np.array([[0, 1, 2], [2, 1, 0]]), 3)
    assert grid.shape == (2, 3, 3)
    np.testing.assert_array_equal(grid.argmax(-1), [[0, 1, 2], [2, 1, 0]])
    assert to_categorical(np.array(2), 4).tolist() == [0, 0, 1, 0]
    assert to_categorical(np.array([3.0, 0.0]), 4).tolist() == [[0, 0, 0, 1], [1, 0, 0, 0]]
    assert to_categorical(np.array([], dtype=int), 3).shape == (0, 3)


def test_to_categorical_matches_keras_on_mnist_labels():
    from tidu.datasets import mnist
    (_, y), _ = mnist.load_subset()
    out = to_categorical(y, 10)
    assert out.shape == (2000, 10) and out.sum() == 2000
    np.testing.assert_array_equal(out.argmax(1), y)


@pytest.mark.parametrize("y, num_classes, message", [
    ([0, -1, 2], None, "expected labels >= 0, got -1"),
    ([0, 10, 3], 10, "expected labels < num_classes=10, got 10"),
    ([0, 1.5], 3, "expected integer class labels, got 1.5"),
    ([0, 1], 0, "positive int, got 0"),
    ([], None, "pass num_classes"),
])
def test_to_categorical_rejects_bad_labels(y, num_classes, message):
    with pytest.raises(ValueError, match=message):
        to_categorical(y, num_classes)


def test_to_categorical_rejects_strings():
    with pytest.raises(TypeError, match="dtype <U1"):
        to_categorical(["a", "b"])


def test_normalize_unit_l2_rows(rng):
    x = rng.standard_normal((5, 4))
    out = normalize(x)
    np.testing.assert_allclose(np.linalg.norm(out, axis=-1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(out * np.linalg.norm(x, axis=-1, keepdims=True), x)


def test_normalize_axis_order_and_zero_vectors():
    x = np.array([[3.0, 0.0], [4.0, 0.0]])
    np.testing.assert_allclose(normalize(x, axis=0), [[0.6, 0.0], [0.8, 0.0]])  # zero column kept
    np.testing.assert_allclose(normalize(np.array([[1.0, -3.0]]), order=1), [[0.25, -0.75]])
    out = normalize(np.array([[3, 4]], dtype=np.uint8))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[0.6, 0.8]], rtol=1e-6)


def test_set_random_seed_makes_initializers_and_numpy_repeat():
    import random

    from tidu import initializers
    from tidu.utils import set_random_seed

    draws = []
    for _ in range(2):
        set_random_seed(7)
        draws.append((initializers.GlorotUniform()((3, 4)), np.random.rand(2), random.random()))
    assert np.array_equal(draws[0][0], draws[1][0])
    assert np.array_equal(draws[0][1], draws[1][1]) and draws[0][2] == draws[1][2]
    set_random_seed(8)
    assert not np.array_equal(initializers.GlorotUniform()((3, 4)), draws[0][0])
    with pytest.raises(ValueError, match="non-negative int seed, got -1"):
        set_random_seed(-1)
