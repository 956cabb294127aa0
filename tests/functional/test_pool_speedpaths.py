"""max_pool2d's fast paths (windows tiling the input: rows first; backward tap by tap with the
last tap uncompared) against a loop over windows, under ties, signed zeros and NaN."""
import math

import numpy as np
import pytest

import tidu.functional as F
from tidu import Tensor


def _pads(n, k, s, padding):
    if padding == "valid":
        return 0, 0
    total = max((math.ceil(n / s) - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def max_pool_loop(x, gy, pool, strides, padding="valid"):
    """(y, dL/dx): each window's gy goes to its first maximum in row-major order; a window
    whose maximum is NaN sends nothing."""
    N, H, W, C = x.shape
    (ph, pw), (sh, sw) = pool, strides
    (pt, pb), (pl, pr) = _pads(H, ph, sh, padding), _pads(W, pw, sw, padding)
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=-np.inf)
    OH, OW = (xp.shape[1] - ph) // sh + 1, (xp.shape[2] - pw) // sw + 1
    y, gx = np.zeros((N, OH, OW, C), x.dtype), np.zeros(xp.shape, x.dtype)
    for n in range(N):
        for p in range(OH):
            for q in range(OW):
                for c in range(C):
                    win = xp[n, p * sh:p * sh + ph, q * sw:q * sw + pw, c].ravel()
                    m = np.max(win)
                    y[n, p, q, c] = m
                    hits = np.flatnonzero(win == m)
                    if hits.size:
                        i, j = divmod(hits[0], pw)
                        gx[n, p * sh + i, q * sw + j, c] += gy[n, p, q, c]
    return y, gx[:, pt:pt + H, pl:pl + W]


def tied(rng, shape, dtype):
    """Few distinct values: ties everywhere, whole windows of zeros (after a ReLU) with both
    signs of zero, and windows whose first maximum is at (0, 1) while (1, 0) ties with it."""
    x = np.maximum(rng.integers(-2, 3, shape), 0).astype(dtype)
    x[rng.random(shape) < 0.2] *= -1  # -0.0 next to 0.0
    x[:, 0:2, 0:2, 0] = [[0, 3], [3, 1]]  # first maximum (0, 1) in row-major order, not (1, 0)
    return x


CASES = [  # x shape, pool_size, strides, padding
    ((3, 8, 6, 4), (2, 2), (2, 2), "valid"),   # the fast path: windows tile the input
    ((2, 9, 6, 3), (3, 3), (3, 3), "valid"),
    ((2, 4, 9, 3), (2, 3), (2, 3), "valid"),
    ((2, 3, 4, 2), (1, 1), (1, 1), "valid"),
    ((2, 7, 7, 3), (2, 2), (2, 2), "valid"),   # disjoint, the last row and column dropped
    ((2, 7, 7, 3), (2, 2), (2, 2), "same"),    # disjoint, −∞ padding
    ((2, 7, 8, 2), (2, 2), (3, 3), "valid"),   # gaps between windows
    ((2, 7, 6, 3), (3, 3), (2, 2), "valid"),   # overlapping
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("values", ["distinct", "tied", "nan"])
@pytest.mark.parametrize("xs, pool, strides, padding", CASES)
def test_max_pool_matches_window_loop(rng, xs, pool, strides, padding, values, dtype):
    if values == "distinct":
        x = rng.standard_normal(xs).astype(dtype)
    else:
        x = tied(rng, xs, dtype)
        if values == "nan":
            x[0, 0, 0, :] = np.nan  # the first windows' maximum is NaN: they send nothing
            x[-1, -1, -1, -1] = np.nan
    gy_shape = F.max_pool2d(x, pool, strides, padding).shape
    gy = rng.standard_normal(gy_shape).astype(dtype)
    X = Tensor(x, requires_grad=True)
    y = F.max_pool2d(X, pool, strides, padding)
    y.backward(gy)
    y_ref, gx_ref = max_pool_loop(x, gy, pool, strides, padding)
    assert y.dtype == X.grad.dtype == dtype
    np.testing.assert_array_equal(y.data, y_ref)
    np.testing.assert_array_equal(X.grad, gx_ref)


def test_max_pool_fast_path_matches_torch_with_ties(rng):
    torch = pytest.importorskip("torch")
    for shape in ((8, 24, 24, 20), (8, 8, 8, 50)):  # the LeNet pools
        x = np.maximum(rng.standard_normal(shape), 0).round(1)
        x[:, :, :4] = 0.25  # constant regions: every window a four-way tie
        X = Tensor(x, requires_grad=True)
        y = F.max_pool2d(X, 2)
        gy = rng.standard_normal(y.shape)
        y.backward(gy)
        xt = torch.tensor(x).permute(0, 3, 1, 2).requires_grad_()
        yt = torch.nn.functional.max_pool2d(xt, 2)
        yt.backward(torch.tensor(gy).permute(0, 3, 1, 2))
        np.testing.assert_array_equal(y.data, yt.detach().permute(0, 2, 3, 1).numpy())
        np.testing.assert_array_equal(X.grad, xt.grad.permute(0, 2, 3, 1).numpy())
