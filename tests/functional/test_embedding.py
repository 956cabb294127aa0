import numpy as np
import pytest

import tidu.functional as F
from tidu import Parameter, Tensor, gradcheck


def test_forward_picks_rows_for_ids_of_any_shape(rng):
    W = rng.standard_normal((10, 4)).astype(np.float32)
    for shape in ((), (7,), (3, 5), (2, 3, 2)):
        ids = rng.integers(0, 10, shape)
        y = F.embedding(ids, W)
        assert y.shape == shape + (4,) and y.dtype == np.float32
        np.testing.assert_array_equal(y.data, W[ids])


def test_backward_scatter_adds_repeated_ids(rng):
    W = Parameter(rng.standard_normal((6, 3)))
    ids = np.array([[1, 4, 1], [1, 0, 4]])
    y = F.embedding(Tensor(ids), W)
    gy = rng.standard_normal(y.shape)
    y.backward(gy)
    expected = np.zeros((6, 3))
    for (i, j), v in np.ndenumerate(ids):
        expected[v] += gy[i, j]
    np.testing.assert_allclose(W.grad, expected, rtol=1e-12)
    np.testing.assert_array_equal(W.grad[[2, 3, 5]], 0)  # ids never seen get nothing


def test_gradcheck(rng):
    ids = rng.integers(0, 5, (4, 6))  # many repeats in a vocabulary of 5
    gradcheck(lambda W: F.embedding(ids, W), rng.standard_normal((5, 3)))


def test_matches_torch(rng):
    torch = pytest.importorskip("torch")
    W, ids = rng.standard_normal((20, 8)), rng.integers(0, 20, (5, 7))
    ours = Parameter(W.copy())
    y = F.embedding(ids, ours)
    gy = rng.standard_normal(y.shape)
    y.backward(gy)
    ref = torch.tensor(W, requires_grad=True)
    yt = torch.nn.functional.embedding(torch.tensor(ids), ref)
    yt.backward(torch.tensor(gy))
    np.testing.assert_array_equal(y.data, yt.detach().numpy())
    np.testing.assert_allclose(ours.grad, ref.grad.numpy(), rtol=1e-12)


def test_bad_ids_raise(rng):
    W = rng.standard_normal((10, 4))
    with pytest.raises(ValueError, match=r"id 10 is out of range for a vocabulary of size 10"):
        F.embedding(np.array([[3, 10]]), W)
    with pytest.raises(ValueError, match=r"id -1 is out of range for a vocabulary of size 10"):
        F.embedding(np.array([-1, 2]), W)
    with pytest.raises(TypeError, match=r"integer ids, got dtype float64"):
        F.embedding(np.array([1.0, 2.0]), W)
    with pytest.raises(ValueError, match=r"shape \(vocabulary, dimension\), got shape \(10,\)"):
        F.embedding(np.array([1]), W[:, 0])
