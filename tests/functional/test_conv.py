import math

import numpy as np
import pytest

import tidu.functional as F
from tidu import ShapeError, Tensor, gradcheck


# --- references: direct loops over output pixels, straight from the formulas --------------
def _pads(n, k, s, padding):
    if padding == "valid":
        return 0, 0
    total = max((math.ceil(n / s) - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def conv_loop(x, k, b=None, strides=(1, 1), padding="valid", dilation=(1, 1)):
    N, H, W, C = x.shape
    kh, kw, _, F_ = k.shape
    (sh, sw), (dh, dw) = strides, dilation
    ekh, ekw = (kh - 1) * dh + 1, (kw - 1) * dw + 1
    (pt, pb), (pl, pr) = _pads(H, ekh, sh, padding), _pads(W, ekw, sw, padding)
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    OH, OW = (xp.shape[1] - ekh) // sh + 1, (xp.shape[2] - ekw) // sw + 1
    y = np.zeros((N, OH, OW, F_))
    for p in range(OH):
        for q in range(OW):
            for i in range(kh):
                for j in range(kw):
                    y[:, p, q, :] += xp[:, p * sh + i * dh, q * sw + j * dw, :] @ k[i, j]
    return y if b is None else y + b


def pool_loop(x, kind, pool=(2, 2), strides=None, padding="valid"):
    N, H, W, C = x.shape
    (ph, pw), (sh, sw) = pool, strides or pool
    (pt, pb), (pl, pr) = _pads(H, ph, sh, padding), _pads(W, pw, sw, padding)
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=np.nan)
    OH, OW = (xp.shape[1] - ph) // sh + 1, (xp.shape[2] - pw) // sw + 1
    y = np.zeros((N, OH, OW, C))
    for p in range(OH):
        for q in range(OW):
            win = xp[:, p * sh:p * sh + ph, q * sw:q * sw + pw, :]
            if kind == "max":
                y[:, p, q] = np.nanmax(win, axis=(1, 2))
            elif kind == "avg":
                y[:, p, q] = np.nanmean(win, axis=(1, 2))  # padding excluded, as Keras
            else:
                y[:, p, q] = np.sqrt(np.nansum(win ** 2, axis=(1, 2)))
    return y


def distinct(rng, shape, spacing=0.05):
    """Values with no ties (max-pool's gradient is defined), at least `spacing` apart."""
    return rng.permutation(np.arange(np.prod(shape))).reshape(shape) * spacing - 1.0


CONV_CASES = [  # x shape, kernel shape, strides, padding, dilation
    ((2, 6, 5, 2), (3, 2, 2, 3), (1, 1), "valid", (1, 1)),
    ((2, 6, 5, 2), (3, 2, 2, 3), (2, 2), "valid", (1, 1)),
    ((2, 6, 5, 2), (3, 2, 2, 3), (1, 1), "same", (1, 1)),
    ((2, 7, 6, 2), (2, 3, 2, 3), (2, 2), "same", (1, 1)),
    ((2, 7, 6, 3), (3, 3, 3, 2), (2, 1), "same", (1, 1)),
    ((2, 6, 6, 1), (3, 2, 1, 3), (1, 1), "valid", (1, 1)),   # one channel: the tap-major path
    ((2, 7, 6, 1), (3, 2, 1, 3), (2, 2), "same", (1, 1)),
    ((2, 8, 7, 1), (2, 2, 1, 2), (1, 1), "valid", (2, 3)),   # one channel, dilated
    ((2, 7, 7, 2), (2, 3, 2, 2), (1, 1), "same", (2, 2)),    # dilated
    ((2, 8, 7, 2), (2, 2, 2, 2), (1, 1), "valid", (2, 3)),
    ((2, 4, 5, 3), (1, 1, 3, 2), (1, 1), "valid", (1, 1)),   # 1x1: the input is im2col
    ((2, 4, 5, 3), (1, 1, 3, 2), (2, 2), "same", (1, 1)),
]


@pytest.mark.parametrize("xs, ks, strides, padding, dilation", CONV_CASES)
def test_conv2d_forward_matches_loop(rng, xs, ks, strides, padding, dilation):
    x, k, b = rng.standard_normal(xs), rng.standard_normal(ks), rng.standard_normal(ks[3])
    for bias in (b, None):
        y = F.conv2d(x, k, bias, strides=strides, padding=padding, dilation_rate=dilation)
        np.testing.assert_allclose(y.data, conv_loop(x, k, bias, strides, padding, dilation), rtol=1e-12, atol=1e-12)


def test_conv2d_same_padding_puts_the_extra_row_bottom_right(rng):
    # H = W = 4, k = 2, s = 1: total padding 1, all of it after; y[-1, -1] sees x[-1, -1] only
    x, k = rng.standard_normal((1, 4, 4, 1)), rng.standard_normal((2, 2, 1, 1))
    y = F.conv2d(x, k, padding="same").data
    assert y.shape == (1, 4, 4, 1)
    np.testing.assert_allclose(y[0, -1, -1, 0], x[0, -1, -1, 0] * k[0, 0, 0, 0])
    np.testing.assert_allclose(y[0, 0, 0, 0], (x[0, :2, :2, 0] * k[:, :, 0, 0]).sum())


@pytest.mark.parametrize("xs, ks, strides, padding, dilation", CONV_CASES)
def test_conv2d_gradcheck(rng, xs, ks, strides, padding, dilation):
    x, k, b = rng.standard_normal(xs), rng.standard_normal(ks), rng.standard_normal(ks[3])
    gradcheck(lambda x, k, b: F.conv2d(x, k, b, strides=strides, padding=padding,
                                       dilation_rate=dilation), x, k, b)
    gradcheck(lambda x, k: F.conv2d(x, k, strides=strides, padding=padding,
                                    dilation_rate=dilation), x, k)


@pytest.mark.parametrize("xs, ks, strides, padding, dilation", CONV_CASES)
def test_conv2d_input_gradient_without_numba(rng, xs, ks, strides, padding, dilation):
    """The NumPy path's input gradient (the taps added with the batch as the inner axis, a
    transposed view returned): central differences, and bit for bit the same sums whether G's
    rows come in (n, p, q) order or, as Conv2DMaxPool gives them, (p, q, n)."""
    from tidu import kernels
    from tidu.functional import conv

    x, k = rng.standard_normal(xs), rng.standard_normal(ks)
    before = kernels.set_enabled(False)
    try:
        gradcheck(lambda x, k: F.conv2d(x, k, strides=strides, padding=padding,
                                        dilation_rate=dilation), x, k)
        y = F.conv2d(x, k, strides=strides, padding=padding, dilation_rate=dilation).data
        (OH, OW), pads = conv._conv_geometry(xs, ks, conv._pair(strides, "", ""),
                                             conv._padding(padding, ""), conv._pair(dilation, "", ""))
        g = rng.standard_normal(y.shape)
        args = (k, xs, (OH, OW), conv._pair(strides, "", ""), conv._pair(dilation, "", ""), pads)
        pixel = conv._input_grad(g.reshape(-1, ks[3]), *args)
        inner = conv._input_grad(g.transpose(1, 2, 0, 3).reshape(-1, ks[3]).copy(), *args,
                                 batch_inner=True)
    finally:
        kernels.set_enabled(before)
    assert pixel.shape == inner.shape == xs
    np.testing.assert_array_equal(pixel, inner)


@pytest.mark.parametrize("strides, padding", [(1, "valid"), (2, "same")])
def test_conv2d_gradcheck_realistic_shape(rng, strides, padding):
    x, k = rng.standard_normal((8, 28, 28, 3)), rng.standard_normal((5, 5, 3, 8)) * 0.1
    b = rng.standard_normal(8)
    gradcheck(lambda x, k, b: F.conv2d(x, k, b, strides=strides, padding=padding), x, k, b,
              directions=3)


def test_conv2d_first_layer_skips_the_input_gradient(rng):
    x = Tensor(rng.standard_normal((3, 8, 8, 1)).astype(np.float32))  # requires no grad
    k = Tensor(rng.standard_normal((3, 3, 1, 4)).astype(np.float32), requires_grad=True)
    b = Tensor(np.zeros(4, np.float32), requires_grad=True)
    y = F.conv2d(x, k, b)
    gy = rng.standard_normal(y.shape).astype(np.float32)
    y.backward(gy)
    assert x.grad is None
    assert y.dtype == k.grad.dtype == b.grad.dtype == np.float32
    cols = np.stack([x.data[:, i:i + 6, j:j + 6, 0] for i in range(3) for j in range(3)], -1)
    np.testing.assert_allclose(k.grad.reshape(9, 4), cols.reshape(-1, 9).T @ gy.reshape(-1, 4), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(b.grad, gy.sum(axis=(0, 1, 2)), rtol=1e-4, atol=1e-4)


def test_conv2d_float32_stays_float32(rng):
    x = Tensor(rng.standard_normal((2, 9, 9, 3)).astype(np.float32), requires_grad=True)
    k = Tensor(rng.standard_normal((3, 3, 3, 4)).astype(np.float32), requires_grad=True)
    y = F.conv2d(x, k, np.zeros(4, np.float32), strides=2, padding="same")
    y.backward(np.ones(y.shape, np.float32))
    assert y.dtype == x.grad.dtype == k.grad.dtype == np.float32


@pytest.mark.parametrize("xs, ks, strides, padding, dilation", CONV_CASES[:9])
def test_conv2d_matches_torch(rng, xs, ks, strides, padding, dilation):
    torch = pytest.importorskip("torch")
    x, k, b = rng.standard_normal(xs), rng.standard_normal(ks), rng.standard_normal(ks[3])
    X, K, B = (Tensor(a, requires_grad=True) for a in (x, k, b))
    y = F.conv2d(X, K, B, strides=strides, padding=padding, dilation_rate=dilation)
    gy = rng.standard_normal(y.shape)
    y.backward(gy)

    ekh, ekw = (ks[0] - 1) * dilation[0] + 1, (ks[1] - 1) * dilation[1] + 1
    (pt, pb), (pl, pr) = _pads(xs[1], ekh, strides[0], padding), _pads(xs[2], ekw, strides[1], padding)
    xt = torch.tensor(x).permute(0, 3, 1, 2).requires_grad_()           # NHWC -> NCHW
    kt = torch.tensor(k).permute(3, 2, 0, 1).detach().requires_grad_()  # (kh,kw,in,out) -> (out,in,kh,kw)
    bt = torch.tensor(b, requires_grad=True)
    yt = torch.nn.functional.conv2d(torch.nn.functional.pad(xt, (pl, pr, pt, pb)), kt, bt,
                                    stride=strides, dilation=dilation)
    yt.backward(torch.tensor(gy).permute(0, 3, 1, 2))
    np.testing.assert_allclose(y.data, yt.detach().permute(0, 2, 3, 1).numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(X.grad, xt.grad.permute(0, 2, 3, 1).numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(K.grad, kt.grad.permute(2, 3, 1, 0).numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(B.grad, bt.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_conv2d_errors(rng):
    x = rng.standard_normal((2, 4, 4, 3))
    with pytest.raises(ShapeError, match=r"kernel 5×5 is larger than the padded input 4×4"):
        F.conv2d(x, rng.standard_normal((5, 5, 3, 2)))
    with pytest.raises(ShapeError, match=r"kernel 5×5 is larger than the padded input 4×4"):
        F.conv2d(x, rng.standard_normal((3, 3, 3, 2)), dilation_rate=2)  # 3x3 dilated by 2 spans 5
    F.conv2d(x, rng.standard_normal((5, 5, 3, 2)), padding="same")  # 'same' pads enough
    with pytest.raises(ShapeError, match=r"expects 2 input channels, got an input with 3"):
        F.conv2d(x, rng.standard_normal((3, 3, 2, 4)))
    with pytest.raises(ShapeError, match=r"4-D input"):
        F.conv2d(x[0], rng.standard_normal((3, 3, 3, 4)))
    with pytest.raises(ShapeError, match=r"4-D kernel"):
        F.conv2d(x, rng.standard_normal((3, 3, 3)))
    with pytest.raises(ShapeError, match=r"bias of shape \(4,\)"):
        F.conv2d(x, rng.standard_normal((3, 3, 3, 4)), rng.standard_normal(3))
    with pytest.raises(ValueError, match=r"padding 'valid' or 'same', got 'full'"):
        F.conv2d(x, rng.standard_normal((3, 3, 3, 4)), padding="full")
    with pytest.raises(ValueError, match=r"strides to be a positive int"):
        F.conv2d(x, rng.standard_normal((3, 3, 3, 4)), strides=0)
    assert F.conv2d(x, rng.standard_normal((3, 3, 3, 4)), padding="SAME").shape == (2, 4, 4, 4)


# --- pooling -----------------------------------------------------------------------------
POOL_CASES = [  # x shape, pool_size, strides, padding
    ((2, 4, 6, 3), (2, 2), None, "valid"),      # disjoint windows covering the input
    ((2, 5, 7, 2), (2, 2), None, "valid"),      # disjoint, last row/column dropped
    ((2, 5, 7, 2), (2, 2), None, "same"),       # disjoint, padded bottom/right
    ((2, 7, 6, 2), (3, 3), (2, 2), "valid"),    # overlapping windows
    ((2, 7, 6, 2), (3, 2), (2, 1), "same"),     # overlapping, non-square, padded
    ((2, 7, 8, 2), (2, 2), (3, 3), "valid"),    # gaps between windows
    ((1, 5, 5, 1), (5, 5), (1, 1), "same"),     # windows mostly padding
]
POOLS = {"max": F.max_pool2d, "avg": F.avg_pool2d, "l2": F.l2_pool2d}


@pytest.mark.parametrize("kind", sorted(POOLS))
@pytest.mark.parametrize("xs, pool, strides, padding", POOL_CASES)
def test_pool_forward_matches_loop(rng, kind, xs, pool, strides, padding):
    x = distinct(rng, xs)
    y = POOLS[kind](x, pool, strides, padding)
    np.testing.assert_allclose(y.data, pool_loop(x, kind, pool, strides, padding), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", sorted(POOLS))
@pytest.mark.parametrize("xs, pool, strides, padding", POOL_CASES)
def test_pool_gradcheck(rng, kind, xs, pool, strides, padding):
    x = distinct(rng, xs)
    result = gradcheck(lambda x: POOLS[kind](x, pool, strides, padding), x)
    assert not result.kinks


def test_avg_pool_same_averages_inside_the_input_only():
    x = np.arange(9.0).reshape(1, 3, 3, 1)
    y = F.avg_pool2d(x, 2, padding="same").data[0, :, :, 0]  # total padding 1: bottom/right
    np.testing.assert_allclose(y, [[(0 + 1 + 3 + 4) / 4, (2 + 5) / 2], [(6 + 7) / 2, 8.0]])


def test_max_pool_routes_ties_to_the_first_maximum():
    x = Tensor(np.zeros((1, 2, 4, 1)), requires_grad=True)  # every window all zeros (after a ReLU)
    x.data[0, 1, 3, 0] = -1.0
    y = F.max_pool2d(x, 2)
    y.backward(np.array([[[[2.0], [3.0]]]]))
    expected = np.zeros((1, 2, 4, 1))
    expected[0, 0, 0, 0], expected[0, 0, 2, 0] = 2.0, 3.0  # one element per window: the first
    np.testing.assert_array_equal(x.grad, expected)


def test_max_pool_matches_torch_with_ties(rng):
    torch = pytest.importorskip("torch")
    x = np.maximum(rng.standard_normal((2, 6, 6, 3)), 0).round(1)  # many tied zeros
    for pool, strides in (((2, 2), None), ((3, 3), (2, 2))):
        X = Tensor(x, requires_grad=True)
        y = F.max_pool2d(X, pool, strides)
        gy = rng.standard_normal(y.shape)
        y.backward(gy)
        xt = torch.tensor(x).permute(0, 3, 1, 2).requires_grad_()
        yt = torch.nn.functional.max_pool2d(xt, pool, strides)
        yt.backward(torch.tensor(gy).permute(0, 3, 1, 2))
        np.testing.assert_array_equal(y.data, yt.detach().permute(0, 2, 3, 1).numpy())
        np.testing.assert_allclose(X.grad, xt.grad.permute(0, 2, 3, 1).numpy(), rtol=1e-12)


@pytest.mark.parametrize("kind", ["avg", "l2"])
@pytest.mark.parametrize("pool, strides", [((2, 2), None), ((3, 2), (2, 1))])
def test_avg_and_l2_pool_match_torch(rng, kind, pool, strides):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((2, 7, 6, 3))
    X = Tensor(x, requires_grad=True)
    y = POOLS[kind](X, pool, strides)
    gy = rng.standard_normal(y.shape)
    y.backward(gy)
    xt = torch.tensor(x).permute(0, 3, 1, 2).requires_grad_()
    if kind == "avg":
        yt = torch.nn.functional.avg_pool2d(xt, pool, strides)
    else:  # torch's lp_pool2d sums x^p over the window before the root, as we do
        yt = torch.nn.functional.lp_pool2d(xt, 2, pool, strides)
    yt.backward(torch.tensor(gy).permute(0, 3, 1, 2))
    np.testing.assert_allclose(y.data, yt.detach().permute(0, 2, 3, 1).numpy(), rtol=1e-10)
    np.testing.assert_allclose(X.grad, xt.grad.permute(0, 2, 3, 1).numpy(), rtol=1e-10, atol=1e-12)


def test_l2_pool_of_zeros_has_zero_gradient():
    x = Tensor(np.zeros((1, 2, 2, 1)), requires_grad=True)
    y = F.l2_pool2d(x)
    y.backward(np.ones(y.shape))
    np.testing.assert_array_equal(y.data, 0)
    np.testing.assert_array_equal(x.grad, 0)


@pytest.mark.parametrize("kind", sorted(POOLS))
def test_pool_float32_stays_float32(rng, kind):
    x = Tensor(rng.standard_normal((2, 6, 6, 3)).astype(np.float32), requires_grad=True)
    y = POOLS[kind](x, 3, 2, "same")
    y.backward(np.ones(y.shape, np.float32))
    assert y.dtype == x.grad.dtype == np.float32


def test_pool_errors(rng):
    x = rng.standard_normal((2, 3, 4, 1))
    with pytest.raises(ShapeError, match=r"max_pool2d: pool window 4×4 is larger than the padded input 3×4"):
        F.max_pool2d(x, 4)
    assert F.max_pool2d(x, 4, padding="same").shape == (2, 1, 1, 1)
    with pytest.raises(ShapeError, match=r"avg_pool2d: expected a 4-D input"):
        F.avg_pool2d(x[0], 2)
    with pytest.raises(ValueError, match=r"l2_pool2d: expected pool_size to be a positive int"):
        F.l2_pool2d(x, (2, 0))
    with pytest.raises(ValueError, match=r"expected padding 'valid' or 'same'"):
        F.max_pool2d(x, 2, padding="causal")


@pytest.mark.parametrize("n, hw, window, strides, dilation, tiles", [
    (2, (28, 28), (5, 5), (1, 1), (1, 1), (2, 2)),      # LeNet's first conv, pooled
    (2, (9, 7), (3, 2), (2, 1), (1, 2), (1, 1)),        # strides 2, dilation on one axis
    (3, (11, 13), (3, 3), (2, 2), (2, 1), (2, 3)),      # odd sizes, rows past the tiles
    (2, (12, 10), (2, 3), (3, 1), (2, 2), (3, 2)),      # strides and dilation on both axes
    (1, (5, 4), (5, 4), (1, 1), (1, 1), (1, 1)),        # one window
])
def test_one_channel_fill_without_numba_matches_a_loop(rng, n, hw, window, strides, dilation, tiles):
    """The NumPy path of the one-channel im2col fill (its blocks copied as strided views of
    per-phase crops) against the formula of its docstring, element by element."""
    from tidu import kernels
    from tidu.functional import conv

    (H, W), (kh, kw), (sh, sw), (dh, dw), (th, tw) = hw, window, strides, dilation, tiles
    P = ((H - (kh - 1) * dh - 1) // sh + 1) // th
    Q = ((W - (kw - 1) * dw - 1) // sw + 1) // tw
    x2 = rng.standard_normal((n, H, W, 1)).astype(np.float32)[..., 0]   # a view, as Conv2D's
    want = np.full((kh * kw + 1, n, th, tw, P, Q), 7, np.float32)
    for a, b, i, j, p, q in np.ndindex(kh, kw, th, tw, P, Q):
        want[a * kw + b, :, i, j, p, q] = x2[:, (p * th + i) * sh + a * dh, (q * tw + j) * sw + b * dw]
    got = np.full_like(want, 7)
    before = kernels.set_enabled(False)
    try:
        conv._fill_one_channel(got, x2, window, strides, dilation, tiles)
    finally:
        kernels.set_enabled(before)
    np.testing.assert_array_equal(got, want)                # the bias row (last) untouched
