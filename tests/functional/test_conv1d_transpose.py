"""Gradient checks (float64, central differences) of conv1d, the 1-D pools and
conv2d_transpose; conv2d_transpose is also compared with torch's conv_transpose2d."""
import numpy as np
import pytest

import tidu.functional as F
from tidu import ShapeError, Tensor, gradcheck


@pytest.mark.parametrize("length, k, strides, padding, dilation", [
    (7, 3, 1, "valid", 1), (8, 3, 2, "same", 1), (7, 2, 1, "causal", 3), (9, 4, 3, "causal", 1),
    (1, 3, 1, "same", 1), (6, 2, 1, "valid", 2),
])
def test_conv1d_gradcheck(rng, length, k, strides, padding, dilation):
    x, K, b = rng.standard_normal((2, length, 3)), rng.standard_normal((k, 3, 2)), rng.standard_normal(2)
    gradcheck(lambda x, K, b: F.conv1d(x, K, b, strides=strides, padding=padding,
                                       dilation_rate=dilation), x, K, b)


@pytest.mark.parametrize("op", [F.max_pool1d, F.avg_pool1d])
@pytest.mark.parametrize("length, pool, strides, padding", [
    (8, 2, None, "valid"), (9, 3, 2, "same"), (7, 3, 1, "valid"), (1, 2, None, "same")])
def test_pool1d_gradcheck(rng, op, length, pool, strides, padding):
    x = rng.permutation(2 * length * 3).reshape(2, length, 3) * 0.1  # distinct: no ties in max
    gradcheck(lambda x: op(x, pool, strides, padding), x)


TRANSPOSE_CASES = [
    ((2, 3, 4, 2), (3, 3), (1, 1), "valid", None, (1, 1)),
    ((2, 3, 4, 2), (3, 2), (2, 2), "same", None, (1, 1)),
    ((1, 2, 3, 3), (2, 4), (2, 3), "valid", (1, 2), (1, 1)),
    ((2, 3, 3, 1), (3, 3), (3, 2), "same", (2, 1), (1, 1)),
    ((1, 4, 3, 2), (3, 2), (1, 1), "same", None, (2, 2)),
    ((1, 1, 1, 2), (3, 3), (2, 2), "valid", None, (1, 1)),
    ((2, 2, 2, 2), (1, 1), (3, 3), "same", None, (1, 1)),
]


@pytest.mark.parametrize("xs, ks, strides, padding, op, dilation", TRANSPOSE_CASES)
def test_conv2d_transpose_gradcheck(rng, xs, ks, strides, padding, op, dilation):
    x, K = rng.standard_normal(xs), rng.standard_normal((*ks, 3, xs[3]))
    b = rng.standard_normal(3)
    kw = dict(strides=strides, padding=padding, output_padding=op, dilation_rate=dilation)
    gradcheck(lambda x, K, b: F.conv2d_transpose(x, K, b, **kw), x, K, b)
    gradcheck(lambda x, K: F.conv2d_transpose(x, K, **kw), x, K)


@pytest.mark.parametrize("xs, ks, strides, padding, op, dilation",
                         [c for c in TRANSPOSE_CASES if c[3] == "valid" and c[4] is None])
def test_conv2d_transpose_is_the_adjoint_of_conv2d(rng, xs, ks, strides, padding, op, dilation):
    """<conv2d_transpose(x, K), z> = <x, conv2d(z̃, K)>: checked on the uncropped 'valid'
    output (no output padding), where the two ops are exact transposes."""
    x, K = rng.standard_normal(xs), rng.standard_normal((*ks, 3, xs[3]))
    y = F.conv2d_transpose(Tensor(x), Tensor(K), strides=strides, dilation_rate=dilation).data
    z = rng.standard_normal(y.shape)
    back = F.conv2d(Tensor(z), Tensor(K), strides=strides, dilation_rate=dilation).data
    assert back.shape == x.shape
    np.testing.assert_allclose((y * z).sum(), (x * back).sum(), rtol=1e-10)


def test_conv2d_transpose_matches_torch(rng):
    torch = pytest.importorskip("torch")
    x, K, b = rng.standard_normal((2, 4, 5, 3)), rng.standard_normal((3, 4, 6, 3)), rng.standard_normal(6)
    y = F.conv2d_transpose(Tensor(x), Tensor(K), Tensor(b), strides=(2, 3)).data
    ref = torch.nn.functional.conv_transpose2d(
        torch.tensor(x).permute(0, 3, 1, 2), torch.tensor(K).permute(3, 2, 0, 1),
        torch.tensor(b), stride=(2, 3)).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(y, ref, atol=1e-10)


def test_conv2d_transpose_bad_arguments(rng):
    x, K = Tensor(rng.standard_normal((1, 3, 3, 2))), Tensor(rng.standard_normal((3, 3, 4, 2)))
    with pytest.raises(ShapeError, match="expects 2 input channels"):
        F.conv2d_transpose(Tensor(rng.standard_normal((1, 3, 3, 5))), K)
    with pytest.raises(ValueError, match="output_padding"):
        F.conv2d_transpose(x, K, strides=2, output_padding=2)
    with pytest.raises(ShapeError, match="bias of shape"):
        F.conv2d_transpose(x, K, Tensor(np.zeros(2)))
    with pytest.raises(ShapeError, match="4-D input"):
        F.conv2d_transpose(Tensor(np.zeros((3, 3, 2))), K)
