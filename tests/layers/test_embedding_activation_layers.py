import json

import numpy as np
import pytest

import tidu
from tidu import initializers
from tidu.autograd import Tensor
from tidu.errors import ShapeError
from tidu.layers import ELU, Embedding, LeakyReLU, Maxout, ReLU, Softmax


def round_trip(layer):
    config = json.loads(json.dumps(layer.get_config()))
    again = type(layer).from_config(config)
    assert again.get_config() == config
    return again


# --- Embedding -----------------------------------------------------------------------------
def test_embedding_shapes_init_and_config(rng):
    layer = Embedding(10, 4, input_length=7)
    ids = rng.integers(0, 10, size=(3, 7))
    y = layer(ids)
    assert y.shape == (3, 7, 4) and y.dtype == np.float32
    (table,) = layer.get_weights()
    assert table.shape == (10, 4) and np.abs(table).max() <= 0.05 + 1e-7  # 'uniform': U(-0.05, 0.05)
    np.testing.assert_array_equal(y.data, table[ids])
    assert layer.compute_output_shape((None, 7)) == (None, 7, 4)
    again = round_trip(layer)
    assert (again.input_dim, again.output_dim, again.input_length) == (10, 4, 7)
    assert isinstance(again.embeddings_initializer, initializers.RandomUniform)
    np.testing.assert_array_equal(layer(ids.astype(np.float32)).data, y.data)  # integral floats


def test_embedding_bad_arguments_and_ids():
    with pytest.raises(ValueError, match="Embedding: expected input_dim to be an int >= 1"):
        Embedding(0, 3)
    with pytest.raises(ValueError, match="mask_zero"):
        Embedding(5, 3, mask_zero=True)
    layer = Embedding(5, 3, name="emb")
    with pytest.raises(ShapeError, match=r"Embedding\(5, 3\) 'emb' expected ids in \[0, 5\), got "
                                         r"ids from 0 to 5"):
        layer(np.array([[0, 5]]))
    with pytest.raises(ShapeError, match="from -1"):
        layer(np.array([[-1, 2]]))
    with pytest.raises(ValueError, match="non-integral"):
        layer(np.array([[0.5, 2.0]]))


def test_embedding_matches_torch(rng, float64):
    torch = pytest.importorskip("torch")
    layer = Embedding(6, 3, embeddings_initializer="random_normal")
    ids = np.array([[0, 2, 2, 5], [1, 2, 0, 0]])  # repeated ids: their gradients add up
    y = layer(ids)
    g = rng.standard_normal(y.shape)
    y.backward(g)
    W = torch.tensor(layer.get_weights()[0], requires_grad=True)
    ref = torch.nn.functional.embedding(torch.tensor(ids), W)
    ref.backward(torch.tensor(g))
    np.testing.assert_allclose(y.data, ref.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(layer.embeddings.grad, W.grad.numpy(), rtol=1e-12, atol=1e-15)


# --- advanced activations ------------------------------------------------------------------
X = np.array([[-3.0, -0.5, 0.2, 1.5, 7.0]])


def test_leaky_relu_accepts_both_argument_names():
    np.testing.assert_allclose(LeakyReLU()(X).data, np.where(X > 0, X, 0.3 * X))
    np.testing.assert_allclose(LeakyReLU(negative_slope=0.1)(X).data, np.where(X > 0, X, 0.1 * X))
    layer = LeakyReLU(alpha=0.2)  # Keras 2's name
    np.testing.assert_allclose(layer(X).data, np.where(X > 0, X, 0.2 * X))
    assert round_trip(layer).negative_slope == 0.2
    with pytest.raises(ValueError, match="negative_slope"):
        LeakyReLU(-1.0)


def test_elu_relu_softmax_layers():
    np.testing.assert_allclose(ELU(0.5)(X).data, np.where(X > 0, X, 0.5 * (np.exp(X) - 1)))
    layer = ReLU(max_value=6.0, negative_slope=0.1, threshold=1.0)
    np.testing.assert_allclose(layer(X).data, np.where(X >= 1, np.minimum(X, 6), 0.1 * (X - 1)))
    assert round_trip(layer).max_value == 6.0 and layer.activation_name is None
    assert ReLU().activation_name == "relu"
    np.testing.assert_allclose(ReLU()(X).data, np.maximum(X, 0))
    soft = Softmax()
    np.testing.assert_allclose(soft(X).data, np.exp(X) / np.exp(X).sum(), rtol=1e-6)
    assert soft.activation_name == "softmax" and soft.pre_activation(X) is X
    assert Softmax(axis=1).activation_name is None
    assert round_trip(Softmax(axis=0)).axis == 0


def test_maxout_is_dense_then_max_over_pieces(rng, float64):
    layer = Maxout(3, 4, bias_initializer="random_normal")
    x = rng.standard_normal((5, 2))
    y = layer(x)
    kernel, bias = layer.get_weights()
    assert kernel.shape == (2, 12) and bias.shape == (12,)
    z = (x @ kernel + bias).reshape(5, 3, 4)  # features grouped (units, pieces)
    np.testing.assert_allclose(y.data, z.max(axis=-1), rtol=1e-12)
    assert layer.compute_output_shape((None, 2)) == (None, 3)
    assert round_trip(layer).pieces == 4
    with pytest.raises(ShapeError, match=r"Maxout\(3, 4\) .* last dimension 2"):
        layer(rng.standard_normal((5, 3)))
    with pytest.raises(ValueError, match="Maxout: expected pieces to be an int >= 1"):
        Maxout(3, 0)


def test_maxout_gradcheck(rng, float64):
    layer = Maxout(2, 3)
    layer(np.zeros((1, 4)))

    def f(x, kernel, bias):
        layer.kernel, layer.bias = kernel, bias
        return layer(x)

    tidu.gradcheck(f, rng.standard_normal((3, 4)), rng.standard_normal((4, 6)), rng.standard_normal(6))
    x = Tensor(rng.standard_normal((2, 4)), requires_grad=True)
    layer(x).sum().backward()
    assert x.grad.shape == (2, 4)
