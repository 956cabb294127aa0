import json

import numpy as np
import pytest

import tidu
from tidu import initializers
from tidu.autograd import Tensor
from tidu.errors import ShapeError
from tidu.layers import (AveragePooling2D, Conv2D, GlobalAveragePooling2D, GlobalMaxPooling2D,
                         L2Pooling2D, MaxPooling2D)


def round_trip(layer):
    config = json.loads(json.dumps(layer.get_config()))
    again = type(layer).from_config(config)
    assert again.get_config() == config
    return again


# --- Conv2D ------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, out_hw", [
    (dict(kernel_size=3), (5, 6)),
    (dict(kernel_size=3, padding="same"), (7, 8)),
    (dict(kernel_size=(3, 2), strides=2), (3, 4)),
    (dict(kernel_size=3, strides=2, padding="same"), (4, 4)),
    (dict(kernel_size=3, dilation_rate=2), (3, 4)),
])
def test_conv2d_output_shape(rng, kwargs, out_hw):
    layer = Conv2D(4, **kwargs)
    y = layer(rng.standard_normal((2, 7, 8, 3)).astype(np.float32))
    assert y.shape == (2, *out_hw, 4)
    assert layer.compute_output_shape((None, 7, 8, 3)) == (None, *out_hw, 4)
    kh, kw = layer.kernel_size
    assert [w.shape for w in layer.get_weights()] == [(kh, kw, 3, 4), (4,)]


def test_conv2d_config_round_trip_and_set_weights(rng):
    layer = Conv2D(6, (3, 5), strides=(2, 1), padding="SAME", activation="relu", use_bias=False,
                   kernel_initializer=initializers.HeNormal(seed=1), kernel_regularizer="l2",
                   input_shape=(9, 9, 2))
    again = round_trip(layer)
    assert (again.filters, again.kernel_size, again.strides, again.padding) == (6, (3, 5), (2, 1), "same")
    x = rng.standard_normal((1, 9, 9, 2)).astype(np.float32)
    np.testing.assert_array_equal(layer(x).data, again(x).data)
    k = rng.standard_normal((3, 5, 2, 6))
    layer.set_weights([k])
    np.testing.assert_allclose(layer.get_weights()[0], k.astype(np.float32))
    assert layer.activation_name == "relu"
    np.testing.assert_allclose(layer(x).data, np.maximum(layer.pre_activation(Tensor(x)).data, 0))


@pytest.mark.parametrize("kwargs, match", [
    (dict(filters=0, kernel_size=3), "Conv2D: expected filters to be an int >= 1, got filters=0"),
    (dict(filters=4, kernel_size=(3, 3, 3)), "kernel_size"),
    (dict(filters=4, kernel_size=3, strides=0), "strides"),
    (dict(filters=4, kernel_size=3, padding="full"), "padding 'valid' or 'same'"),
    (dict(filters=4, kernel_size=3, data_format="channels_first"), "channels-last"),
    (dict(filters=4, kernel_size=3, groups=2), "groups"),
    (dict(filters=4, kernel_size=3, strides=2, dilation_rate=2), "dilation_rate"),
])
def test_conv2d_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Conv2D(**kwargs)


def test_conv2d_bad_inputs(rng):
    layer = Conv2D(4, 3, name="conv")
    with pytest.raises(ShapeError, match="4 dimensions"):
        layer(np.zeros((2, 8, 8), np.float32))
    assert not layer.built  # raised before any weight was made
    layer(np.zeros((1, 8, 8, 3), np.float32))
    with pytest.raises(ShapeError, match=r"Conv2D\(4, \(3, 3\)\) 'conv' expected input \(batch, "
                                          r"height, width, 3\), got shape \(1, 8, 8, 2\)"):
        layer(np.zeros((1, 8, 8, 2), np.float32))
    with pytest.raises(ShapeError, match="smaller than the kernel"):
        layer(np.zeros((1, 2, 8, 3), np.float32))


def _torch_same_pad(torch, x, k, s):
    """TensorFlow's 'same' padding (the extra row/column at the bottom/right) for torch NCHW."""
    pads = []
    for n, kk, ss in zip(x.shape[2:], k, s):
        total = max((-(-n // ss) - 1) * ss + kk - n, 0)
        pads.append((total // 2, total - total // 2))
    return torch.nn.functional.pad(x, (*pads[1], *pads[0]))


@pytest.mark.parametrize("strides, padding", [((1, 1), "valid"), ((2, 1), "valid"),
                                              ((1, 1), "same"), ((2, 2), "same")])
def test_conv2d_matches_torch(rng, float64, strides, padding):
    torch = pytest.importorskip("torch")
    x, layer = rng.standard_normal((2, 7, 6, 3)), Conv2D(4, (3, 2), strides=strides, padding=padding,
                                                         activation="tanh")
    layer(np.zeros((1, 7, 6, 3)))
    layer.set_weights([rng.standard_normal((3, 2, 3, 4)), rng.standard_normal(4)])
    xin = Tensor(x, requires_grad=True)
    out = layer(xin)
    g = rng.standard_normal(out.shape)
    out.backward(g)
    kernel, bias = layer.get_weights()
    xt = torch.tensor(x, requires_grad=True)
    kt = torch.tensor(kernel, requires_grad=True)
    bt = torch.tensor(bias, requires_grad=True)
    xn = xt.permute(0, 3, 1, 2)
    if padding == "same":
        xn = _torch_same_pad(torch, xn, (3, 2), strides)
    ref = torch.tanh(torch.nn.functional.conv2d(xn, kt.permute(3, 2, 0, 1), bt, stride=strides))
    ref = ref.permute(0, 2, 3, 1)
    np.testing.assert_allclose(out.data, ref.detach().numpy(), rtol=1e-10, atol=1e-12)
    ref.backward(torch.tensor(g))
    np.testing.assert_allclose(xin.grad, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.kernel.grad, kt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.bias.grad, bt.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_conv2d_gradcheck_through_the_layer(rng, float64):
    layer = Conv2D(2, 2, strides=(1, 2), padding="same", activation="sigmoid")
    layer(np.zeros((1, 4, 5, 2)))

    def f(x, kernel, bias):
        layer.kernel, layer.bias = kernel, bias
        return layer(x)

    tidu.gradcheck(f, rng.standard_normal((2, 4, 5, 2)), rng.standard_normal((2, 2, 2, 2)),
                   rng.standard_normal(2))


# --- pooling -----------------------------------------------------------------------------
def _windows(x, p, s):
    n, h, w, c = x.shape
    oh, ow = (h - p[0]) // s[0] + 1, (w - p[1]) // s[1] + 1
    return np.stack([[x[:, i * s[0]:i * s[0] + p[0], j * s[1]:j * s[1] + p[1], :]
                      for j in range(ow)] for i in range(oh)])  # (oh, ow, n, ph, pw, c)


@pytest.mark.parametrize("cls, reduce", [
    (MaxPooling2D, lambda w: w.max(axis=(3, 4))),
    (AveragePooling2D, lambda w: w.mean(axis=(3, 4))),
    (L2Pooling2D, lambda w: np.sqrt((w ** 2).sum(axis=(3, 4)))),
])
@pytest.mark.parametrize("pool_size, strides", [((2, 2), None), ((3, 2), (1, 2))])
def test_pooling_matches_window_reductions(rng, cls, reduce, pool_size, strides):
    x = rng.standard_normal((2, 7, 6, 3))
    layer = cls(pool_size, strides)
    y = layer(x)
    expected = reduce(_windows(x, pool_size, strides or pool_size)).transpose(2, 0, 1, 3)
    np.testing.assert_allclose(y.data, expected, rtol=1e-12)
    assert layer.compute_output_shape((None, 7, 6, 3)) == (None, *expected.shape[1:])
    assert round_trip(layer).strides == (strides or pool_size)


def test_pooling_same_padding_shape_and_errors(rng):
    layer = MaxPooling2D(2, padding="same")
    assert layer(rng.standard_normal((1, 5, 5, 2))).shape == (1, 3, 3, 2)
    assert layer.compute_output_shape((None, 5, 5, 2)) == (None, 3, 3, 2)
    with pytest.raises(ShapeError, match="4 dimensions"):
        layer(np.zeros((5, 5, 2)))
    with pytest.raises(ShapeError, match="smaller than the pool"):
        MaxPooling2D(3)(np.zeros((1, 2, 2, 1)))
    with pytest.raises(ValueError, match="pool_size"):
        MaxPooling2D(0)
    with pytest.raises(ValueError, match="channels-last"):
        AveragePooling2D(data_format="channels_first")


def test_global_pooling(rng):
    x = rng.standard_normal((3, 4, 5, 6))
    np.testing.assert_allclose(GlobalAveragePooling2D()(x).data, x.mean(axis=(1, 2)))
    np.testing.assert_allclose(GlobalMaxPooling2D()(x).data, x.max(axis=(1, 2)))
    layer = GlobalAveragePooling2D(keepdims=True)
    assert layer(x).shape == (3, 1, 1, 6)
    assert layer.compute_output_shape((None, 4, 5, 6)) == (None, 1, 1, 6)
    assert round_trip(layer).keepdims
    with pytest.raises(ShapeError):
        GlobalMaxPooling2D()(np.zeros((3, 4)))


def test_max_pooling_gradient_goes_to_the_max(float64):
    x = Tensor(np.array([[1., 5.], [3., 2.]]).reshape(1, 2, 2, 1), requires_grad=True)
    MaxPooling2D()(x).sum().backward()
    np.testing.assert_array_equal(x.grad.reshape(2, 2), [[0, 1], [0, 0]])
