import json

import numpy as np
import pytest

import tidu
from tidu import activations
from tidu.autograd import Tensor
from tidu.errors import ShapeError
from tidu.layers import GRU, LSTM, SimpleRNN

N, T, D, U = 3, 5, 4, 6
TOL = dict(rtol=1e-9, atol=1e-12)


def round_trip(layer):
    config = json.loads(json.dumps(layer.get_config()))
    again = type(layer).from_config(config)
    assert again.get_config() == config
    return again


@pytest.mark.parametrize("cls, gates, bias_shape", [
    (SimpleRNN, 1, (U,)), (LSTM, 4, (4 * U,)), (GRU, 3, (2, 3 * U))])
def test_shapes_and_weights_in_keras_layout(rng, cls, gates, bias_shape):
    x = rng.standard_normal((N, T, D)).astype(np.float32)
    layer = cls(U)
    assert layer(x).shape == (N, U)
    assert [w.shape for w in layer.get_weights()] == [(D, gates * U), (U, gates * U), bias_shape]
    assert [p.name.split("/")[1] for p in layer.weights] == ["kernel", "recurrent_kernel", "bias"]
    seq = cls(U, return_sequences=True, return_state=True)
    out, *states = seq(x)
    assert out.shape == (N, T, U) and [s.shape for s in states] == [(N, U)] * len(states)
    np.testing.assert_allclose(states[0].data, out.data[:, -1], rtol=1e-6)
    assert len(states) == (2 if cls is LSTM else 1)
    assert seq.compute_output_shape((None, T, D)) == [(None, T, U)] + [(None, U)] * len(states)
    assert layer.compute_output_shape((None, T, D)) == (None, U)
    assert layer.activation_name is None  # the activation is inside the recurrence


def test_lstm_unit_forget_bias_and_orthogonal_recurrent_kernel(rng, float64):
    layer = LSTM(U)
    layer(rng.standard_normal((1, 2, D)))
    bias = layer.get_weights()[2]
    np.testing.assert_array_equal(bias, np.r_[np.zeros(U), np.ones(U), np.zeros(2 * U)])
    R = layer.get_weights()[1]  # (U, 4U): orthonormal rows
    np.testing.assert_allclose(R @ R.T, np.eye(U), atol=1e-12)
    layer = LSTM(U, unit_forget_bias=False)
    layer(rng.standard_normal((1, 2, D)))
    np.testing.assert_array_equal(layer.get_weights()[2], np.zeros(4 * U))


@pytest.mark.parametrize("layer", [
    SimpleRNN(3, activation="relu", return_sequences=True, go_backwards=True, kernel_regularizer="l2"),
    LSTM(4, recurrent_activation="hard_sigmoid", unit_forget_bias=False, return_state=True),
    GRU(2, reset_after=False, use_bias=False, recurrent_initializer="glorot_uniform")])
def test_config_round_trip(layer):
    again = round_trip(layer)
    assert again.units == layer.units and again.go_backwards == layer.go_backwards


@pytest.mark.parametrize("kwargs, match", [
    (dict(units=0), "expected units to be an int >= 1"),
    (dict(units=3, dropout=0.2), "dropout=0.2 is not supported"),
    (dict(units=3, recurrent_dropout=0.1), "recurrent_dropout=0.1 is not supported"),
    (dict(units=3, stateful=True), "stateful"),
    (dict(units=3, activation="tanhh"), "did you mean 'tanh'"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LSTM(**kwargs)


def test_bad_inputs(rng):
    layer = GRU(U, name="gru")
    with pytest.raises(ShapeError, match=r"GRU\(6\) 'gru' expected input with 3 dimensions"):
        layer(np.zeros((N, D), np.float32))
    assert not layer.built
    layer(np.zeros((N, T, D), np.float32))
    with pytest.raises(ShapeError, match=r"expected input \(batch, time, 4\), got shape \(3, 5, 7\)"):
        layer(np.zeros((N, T, 7), np.float32))
    with pytest.raises(ShapeError, match="initial states of shape"):
        layer(np.zeros((N, T, D), np.float32), initial_state=[np.zeros((N, U + 1))])
    with pytest.raises(ValueError, match="expected 2 initial state"):
        LSTM(U)(np.zeros((N, T, D), np.float32), initial_state=[np.zeros((N, U))])


# --- against PyTorch, forward and backward, float64 ------------------------------------------
def _compare(torch, layer, module, x, g, grads):
    """Run both on x, backprop g (on outputs and, when given, on states) and compare."""
    xin = Tensor(x, requires_grad=True)
    out = layer(xin)
    xt = torch.tensor(x, requires_grad=True)
    ref, _ = module(xt)
    ref = ref if layer.return_sequences else ref[:, -1]
    np.testing.assert_allclose(out.data, ref.detach().numpy(), **TOL)
    out.backward(g)
    ref.backward(torch.tensor(g))
    np.testing.assert_allclose(xin.grad, xt.grad.numpy(), **TOL)
    for ours, theirs in grads():
        np.testing.assert_allclose(ours, theirs, **TOL)


def _torch_module(torch, cls, **kwargs):
    module = cls(D, U, batch_first=True, **kwargs).double()
    return module


@pytest.mark.parametrize("return_sequences", [False, True])
def test_simple_rnn_matches_torch(rng, float64, return_sequences):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((N, T, D))
    layer = SimpleRNN(U, return_sequences=return_sequences, bias_initializer="random_normal")
    layer(x)
    W, R, b = layer.get_weights()
    rnn = _torch_module(torch, torch.nn.RNN)
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(torch.tensor(W.T))
        rnn.weight_hh_l0.copy_(torch.tensor(R.T))
        rnn.bias_ih_l0.copy_(torch.tensor(b))
        rnn.bias_hh_l0.zero_()
    g = rng.standard_normal((N, T, U) if return_sequences else (N, U))
    _compare(torch, layer, rnn, x, g, lambda: [
        (layer.kernel.grad, rnn.weight_ih_l0.grad.numpy().T),
        (layer.recurrent_kernel.grad, rnn.weight_hh_l0.grad.numpy().T),
        (layer.bias.grad, rnn.bias_ih_l0.grad.numpy())])


@pytest.mark.parametrize("return_sequences", [False, True])
def test_lstm_matches_torch(rng, float64, return_sequences):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((N, T, D))
    layer = LSTM(U, return_sequences=return_sequences, bias_initializer="random_normal")
    layer(x)
    W, R, b = layer.get_weights()
    lstm = _torch_module(torch, torch.nn.LSTM)  # same gate order i, f, g(c), o
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(torch.tensor(W.T))
        lstm.weight_hh_l0.copy_(torch.tensor(R.T))
        lstm.bias_ih_l0.copy_(torch.tensor(b))
        lstm.bias_hh_l0.zero_()
    g = rng.standard_normal((N, T, U) if return_sequences else (N, U))
    _compare(torch, layer, lstm, x, g, lambda: [
        (layer.kernel.grad, lstm.weight_ih_l0.grad.numpy().T),
        (layer.recurrent_kernel.grad, lstm.weight_hh_l0.grad.numpy().T),
        (layer.bias.grad, lstm.bias_ih_l0.grad.numpy())])


def _keras_to_torch_gru(a):
    """Keras' gate blocks z, r, h along the last axis -> torch's r, z, n along the first."""
    z, r, h = np.split(a, 3, axis=-1)
    return np.concatenate([r, z, h], axis=-1).T


@pytest.mark.parametrize("return_sequences", [False, True])
def test_gru_matches_torch(rng, float64, return_sequences):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((N, T, D))
    layer = GRU(U, return_sequences=return_sequences, bias_initializer="random_normal")
    layer(x)
    W, R, b = layer.get_weights()
    gru = _torch_module(torch, torch.nn.GRU)
    with torch.no_grad():
        gru.weight_ih_l0.copy_(torch.tensor(_keras_to_torch_gru(W)))
        gru.weight_hh_l0.copy_(torch.tensor(_keras_to_torch_gru(R)))
        gru.bias_ih_l0.copy_(torch.tensor(_keras_to_torch_gru(b[0])))
        gru.bias_hh_l0.copy_(torch.tensor(_keras_to_torch_gru(b[1])))
    g = rng.standard_normal((N, T, U) if return_sequences else (N, U))
    _compare(torch, layer, gru, x, g, lambda: [
        (_keras_to_torch_gru(layer.kernel.grad), gru.weight_ih_l0.grad.numpy()),
        (_keras_to_torch_gru(layer.recurrent_kernel.grad), gru.weight_hh_l0.grad.numpy()),
        (_keras_to_torch_gru(layer.bias.grad[0]), gru.bias_ih_l0.grad.numpy()),
        (_keras_to_torch_gru(layer.bias.grad[1]), gru.bias_hh_l0.grad.numpy())])


# --- the composed (non-default activation) path, initial states, go_backwards ------------------
@pytest.mark.parametrize("cls", [SimpleRNN, LSTM, GRU])
def test_composed_loop_equals_fused_op(rng, float64, cls):
    """An activation passed as a new callable takes the step-by-step path; with tanh it must
    give the fused op's outputs, final states and gradients."""
    x = rng.standard_normal((N, T, D))
    fused = cls(U, return_sequences=True, return_state=True, bias_initializer="random_normal")
    fused(x)
    looped = cls(U, return_sequences=True, return_state=True, activation=lambda t: activations.tanh(t))
    looped(x)
    looped.set_weights(fused.get_weights())
    n_states = 2 if cls is LSTM else 1
    h0 = [rng.standard_normal((N, U)) for _ in range(n_states)]
    gs = [rng.standard_normal((N, T, U))] + [rng.standard_normal((N, U)) for _ in range(n_states)]
    results = []
    for layer in (fused, looped):
        xin = Tensor(x, requires_grad=True)
        outs = layer(xin, initial_state=h0)
        total = sum(((o * g).sum() for o, g in zip(outs, gs)), Tensor(0.0))
        total.backward()
        results.append([o.data for o in outs] + [xin.grad] + [p.grad for p in layer.weights])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, **TOL)


def test_gru_reset_before_matches_numpy_reference(rng, float64):
    x = rng.standard_normal((N, T, D))
    layer = GRU(U, reset_after=False, bias_initializer="random_normal", return_sequences=True)
    y = layer(x).data
    W, R, b = layer.get_weights()
    sig = lambda a: 1 / (1 + np.exp(-a))  # noqa: E731
    h, hs = np.zeros((N, U)), []
    for t in range(T):
        xw = x[:, t] @ W + b
        z = sig(xw[:, :U] + h @ R[:, :U])
        r = sig(xw[:, U:2 * U] + h @ R[:, U:2 * U])
        hh = np.tanh(xw[:, 2 * U:] + (r * h) @ R[:, 2 * U:])
        h = z * h + (1 - z) * hh
        hs.append(h)
    np.testing.assert_allclose(y, np.stack(hs, axis=1), rtol=1e-12)


def test_gru_reset_before_gradcheck(rng, float64):
    layer = GRU(2, reset_after=False)
    layer(np.zeros((1, 3, 2)))

    def f(x, kernel, recurrent_kernel, bias):
        layer.kernel, layer.recurrent_kernel, layer.bias = kernel, recurrent_kernel, bias
        return layer(x)

    tidu.gradcheck(f, rng.standard_normal((2, 3, 2)), rng.standard_normal((2, 6)),
                   rng.standard_normal((2, 6)), rng.standard_normal(6))


def test_go_backwards_reads_the_sequence_reversed(rng, float64):
    x = rng.standard_normal((N, T, D))
    fwd = LSTM(U, return_sequences=True)
    fwd(x)
    bwd = LSTM(U, return_sequences=True, go_backwards=True)
    bwd(x)
    bwd.set_weights(fwd.get_weights())
    np.testing.assert_allclose(bwd(x).data, fwd(x[:, ::-1]).data, rtol=1e-12)
