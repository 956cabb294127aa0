import numpy as np
import pytest

import tidu.functional as F
from tidu import Tensor, gradcheck


@pytest.mark.parametrize("shape, repeats, axis", [((3, 4), 2, 1), ((2, 3, 4, 2), 3, 1),
                                                  ((2, 3, 4, 2), 2, -2), ((5,), 1, 0)])
def test_repeat_is_np_repeat_and_gradchecks(rng, shape, repeats, axis):
    x = rng.standard_normal(shape)
    np.testing.assert_array_equal(F.repeat(x, repeats, axis).data, np.repeat(x, repeats, axis))
    gradcheck(lambda t: F.repeat(t, repeats, axis), x)


def test_repeat_backward_sums_each_block():
    x = Tensor(np.arange(3.0), requires_grad=True)
    gy = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    (F.repeat(x, 2, 0) * gy).sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 7.0, 11.0])  # 1+2, 3+4, 5+6


@pytest.mark.parametrize("repeats, axis, match", [(0, 0, "repeats to be an int >= 1"),
                                                  (2.0, 0, "repeats"), (2, 2, "axis in")])
def test_repeat_rejects_bad_arguments(repeats, axis, match):
    with pytest.raises(ValueError, match=match):
        F.repeat(np.zeros((2, 3)), repeats, axis)


def test_bilinear_matrix_rows_interpolate_between_pixel_centres():
    # factor 2 on 3 pixels: output centres at input coordinates -0.25 (clamped to 0), 0.25,
    # 0.75, 1.25, 1.75, 2.25 (clamped to 2)
    A = F.bilinear_matrix(3, 2)
    np.testing.assert_allclose(A, [[1, 0, 0], [0.75, 0.25, 0], [0.25, 0.75, 0],
                                   [0, 0.75, 0.25], [0, 0.25, 0.75], [0, 0, 1]])
    np.testing.assert_allclose(F.bilinear_matrix(5, 3).sum(axis=1), 1.0)


@pytest.mark.parametrize("shape, size", [((2, 3, 4, 2), (2, 2)), ((1, 2, 5, 3), (3, 1)),
                                         ((1, 1, 1, 1), (2, 3))])
def test_upsample_bilinear_matches_torch(rng, shape, size):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal(shape)
    ours = F.upsample_bilinear2d(x, size).data
    t = torch.from_numpy(x).permute(0, 3, 1, 2)
    ref = torch.nn.functional.interpolate(t, size=(shape[1] * size[0], shape[2] * size[1]),
                                          mode="bilinear", align_corners=False)
    np.testing.assert_allclose(ours, ref.permute(0, 2, 3, 1).numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape, size", [((2, 3, 4, 2), (2, 2)), ((1, 2, 3, 1), (3, 2))])
def test_upsample_bilinear_gradcheck(rng, shape, size):
    gradcheck(lambda t: F.upsample_bilinear2d(t, size), rng.standard_normal(shape))


def test_upsample_bilinear_rejects_bad_input():
    with pytest.raises(ValueError, match=r"4 dimensions \(N, H, W, C\), got shape \(2, 3\)"):
        F.upsample_bilinear2d(np.zeros((2, 3)), (2, 2))
    with pytest.raises(ValueError, match="size to be two ints >= 1"):
        F.upsample_bilinear2d(np.zeros((1, 2, 2, 1)), (0, 2))
