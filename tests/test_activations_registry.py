import numpy as np
import pytest

from tidu import activations
from tidu.autograd import Tensor

X = np.array([-7.0, -2.5, -0.3, 0.4, 2.0, 6.5, 9.0])

CLOSED_FORMS = {
    "linear": lambda x: x,
    "relu": lambda x: np.maximum(x, 0),
    "relu6": lambda x: np.clip(x, 0, 6),
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "tanh": np.tanh,
    "exponential": np.exp,
    "elu": lambda x: np.where(x > 0, x, np.exp(x) - 1),
    "selu": lambda x: 1.0507009873554805 * np.where(x > 0, x, 1.6732632423543772 * (np.exp(x) - 1)),
    "softplus": lambda x: np.log1p(np.exp(x)),
    "softsign": lambda x: x / (1 + np.abs(x)),
    "leaky_relu": lambda x: np.where(x >= 0, x, 0.2 * x),  # keras.activations' default slope
    "silu": lambda x: x / (1 + np.exp(-x)),
    "swish": lambda x: x / (1 + np.exp(-x)),
    "hard_sigmoid": lambda x: np.clip(x / 6 + 0.5, 0, 1),
    "mish": lambda x: x * np.tanh(np.log1p(np.exp(x))),
    "gelu": lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3))),
    "softmax": lambda x: np.exp(x) / np.exp(x).sum(),
    "log_softmax": lambda x: x - np.log(np.exp(x).sum()),
}


@pytest.mark.parametrize("name", sorted(CLOSED_FORMS))
def test_each_name_computes_its_formula(name):
    y = activations.get(name)(Tensor(X))
    np.testing.assert_allclose(y.data, CLOSED_FORMS[name](X), rtol=1e-10, atol=1e-12)


def test_relu_with_keras_arguments():
    y = activations.relu(Tensor(X), negative_slope=0.1, max_value=5.0, threshold=1.0)
    expected = np.where(X >= 1.0, np.minimum(X, 5.0), 0.1 * (X - 1.0))
    np.testing.assert_allclose(y.data, expected)


def test_get_none_callable_and_serialize():
    assert activations.get(None) is activations.linear
    fn = lambda x: x * 2  # noqa: E731
    assert activations.get(fn) is fn
    for name in CLOSED_FORMS:
        expected = "silu" if name == "swish" else name
        assert activations.serialize(activations.get(name)) == expected
        assert activations.get(activations.serialize(activations.get(name))) is activations.get(name)
    assert activations.name_of(fn) is None
    with pytest.raises(ValueError, match="cannot be saved by name"):
        activations.serialize(fn)


def test_unknown_name_suggests_closest():
    with pytest.raises(ValueError, match=r"unknown activation 'relux'; did you mean 'relu'\?.*Allowed: .*sigmoid"):
        activations.get("relux")
    with pytest.raises(TypeError):
        activations.get(3)


def test_gradient_flows_through_composed_activations():
    x = Tensor(X.copy(), requires_grad=True)
    activations.get("mish")(x).sum().backward()
    sp = np.log1p(np.exp(X))
    sig = 1 / (1 + np.exp(-X))
    expected = np.tanh(sp) + X * (1 - np.tanh(sp) ** 2) * sig
    np.testing.assert_allclose(x.grad, expected, rtol=1e-9)
