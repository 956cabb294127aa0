"""simple_rnn, lstm, gru: gradients against central differences, the forward pass against a
plain NumPy loop of the Keras equations, and forward + every gradient against PyTorch."""
import numpy as np
import pytest

import tidu.functional as F
from tidu import Tensor, gradcheck
from tidu.errors import ShapeError
from tidu.functional.recurrent_lstm import LSTM
from tidu.functional.recurrent import GRU


def _sigmoid(z):
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-z))


# --- plain NumPy loops of the Keras equations (the specification) ------------------------
def ref_simple_rnn(x, W, U, b, h0, activation):
    phi = {"tanh": np.tanh, "relu": lambda z: np.maximum(z, 0), "sigmoid": _sigmoid,
           "linear": lambda z: z}[activation]
    h, hs = h0, []
    for t in range(x.shape[1]):
        h = phi(x[:, t] @ W + h @ U + b)
        hs.append(h)
    return np.stack(hs, axis=1)


def ref_lstm(x, W, U, b, h0, c0):
    u = U.shape[0]
    h, c, hs = h0, c0, []
    for t in range(x.shape[1]):
        z = x[:, t] @ W + h @ U + b
        i, f = _sigmoid(z[:, :u]), _sigmoid(z[:, u:2 * u])
        g, o = np.tanh(z[:, 2 * u:3 * u]), _sigmoid(z[:, 3 * u:])
        c = f * c + i * g
        h = o * np.tanh(c)
        hs.append(h)
    return np.stack(hs, axis=1), c


def ref_gru(x, W, U, b, h0):
    u = U.shape[0]
    h, hs = h0, []
    for t in range(x.shape[1]):
        xw, hu = x[:, t] @ W + b[0], h @ U + b[1]
        z = _sigmoid(xw[:, :u] + hu[:, :u])
        r = _sigmoid(xw[:, u:2 * u] + hu[:, u:2 * u])
        hh = np.tanh(xw[:, 2 * u:] + r * hu[:, 2 * u:])
        h = z * h + (1 - z) * hh
        hs.append(h)
    return np.stack(hs, axis=1)


def _inputs(rng, N, T, D, u, gates, bias_shape, states, dtype=np.float64, scale=0.5):
    """x, kernel, recurrent_kernel, bias and `states` initial states, drawn away from saturation."""
    x = rng.standard_normal((N, T, D))
    W = scale * rng.standard_normal((D, gates * u))
    U = scale * rng.standard_normal((u, gates * u))
    b = scale * rng.standard_normal(bias_shape)
    hs = [0.5 * rng.standard_normal((N, u)) for _ in range(states)]
    return [a.astype(dtype) for a in (x, W, U, b, *hs)]


# --- forward against the NumPy loop ------------------------------------------------------
@pytest.mark.parametrize("activation", ["tanh", "relu", "sigmoid", "linear"])
def test_simple_rnn_forward_matches_numpy_loop(rng, activation):
    x, W, U, b, h0 = _inputs(rng, 3, 5, 4, 6, 1, (6,), 1)
    expected = ref_simple_rnn(x, W, U, b, h0, activation)
    y = F.simple_rnn(x, W, U, b, h0, activation=activation, return_sequences=True)
    np.testing.assert_allclose(y.data, expected, rtol=1e-12, atol=1e-12)
    last = F.simple_rnn(x, W, U, b, h0, activation=activation)
    np.testing.assert_allclose(last.data, expected[:, -1], rtol=1e-12, atol=1e-12)


def test_lstm_forward_matches_numpy_loop(rng):
    x, W, U, b, h0, c0 = _inputs(rng, 3, 5, 4, 6, 4, (24,), 2, scale=1.5)
    hs, c = ref_lstm(x, W, U, b, h0, c0)
    outputs, h, cT = F.lstm(x, W, U, b, h0, c0, return_sequences=True, return_state=True)
    np.testing.assert_allclose(outputs.data, hs, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(h.data, hs[:, -1], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(cT.data, c, rtol=1e-12, atol=1e-12)
    # no bias, no initial states: zeros
    hs0, _ = ref_lstm(x, W, U, np.zeros(24), np.zeros((3, 6)), np.zeros((3, 6)))
    np.testing.assert_allclose(F.lstm(x, W, U).data, hs0[:, -1], rtol=1e-12, atol=1e-12)


def test_gru_forward_matches_numpy_loop(rng):
    x, W, U, b, h0 = _inputs(rng, 3, 5, 4, 6, 3, (2, 18), 1, scale=1.5)
    expected = ref_gru(x, W, U, b, h0)
    outputs, h = F.gru(x, W, U, b, h0, return_sequences=True, return_state=True)
    np.testing.assert_allclose(outputs.data, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(h.data, expected[:, -1], rtol=1e-12, atol=1e-12)
    expected0 = ref_gru(x, W, U, np.zeros((2, 18)), np.zeros((3, 6)))
    np.testing.assert_allclose(F.gru(x, W, U).data, expected0[:, -1], rtol=1e-12, atol=1e-12)


def test_saturated_gates_stay_finite_without_warnings(rng):
    # pre-activations of ±400 overflow exp in the exp form of σ and tanh; the limits must come out
    x, W, U, b, h0, c0 = _inputs(rng, 2, 4, 3, 5, 4, (20,), 2)
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        y = F.lstm(x.astype(np.float32), 400 * W.astype(np.float32), U.astype(np.float32),
                   return_sequences=True)
        g = F.gru(x, 400 * rng.standard_normal((3, 15)), U[:, :15])
    assert np.isfinite(y.data).all() and np.isfinite(g.data).all()
    hs, _ = ref_lstm(x, 400 * W, U, np.zeros(20), np.zeros((2, 5)), np.zeros((2, 5)))
    np.testing.assert_allclose(y.data, hs, atol=1e-5)


# --- gradients: full check on tiny shapes -------------------------------------------------
N, T, D, U_ = 2, 3, 4, 3


@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("activation", ["tanh", "relu", "sigmoid", "linear"])
def test_simple_rnn_gradcheck(rng, activation, return_sequences):
    args = _inputs(rng, N, T, D, U_, 1, (U_,), 1)
    gradcheck(lambda *a: F.simple_rnn(*a, activation=activation, return_sequences=return_sequences),
              *args)


@pytest.mark.parametrize("return_sequences", [False, True])
def test_lstm_gradcheck(rng, return_sequences):
    args = _inputs(rng, N, T, D, U_, 4, (4 * U_,), 2)
    gradcheck(lambda *a: F.lstm(*a, return_sequences=return_sequences), *args)


@pytest.mark.parametrize("return_sequences", [False, True])
def test_lstm_gradcheck_through_all_returned_states(rng, return_sequences):
    args = _inputs(rng, N, T, D, U_, 4, (4 * U_,), 2)

    def fn(*a):
        outputs, h, c = F.lstm(*a, return_sequences=return_sequences, return_state=True)
        return F.concatenate([outputs.reshape(N, -1), h, c], axis=1)

    gradcheck(fn, *args)


@pytest.mark.parametrize("return_sequences", [False, True])
def test_gru_gradcheck(rng, return_sequences):
    args = _inputs(rng, N, T, D, U_, 3, (2, 3 * U_), 1)

    def fn(*a):
        outputs, h = F.gru(*a, return_sequences=return_sequences, return_state=True)
        return F.concatenate([outputs.reshape(N, -1), h], axis=1)

    gradcheck(fn, *args)


def test_gradcheck_without_bias_and_initial_states(rng):
    x, W, U, b = _inputs(rng, N, T, D, U_, 4, (4 * U_,), 0)
    gradcheck(lambda *a: F.lstm(*a, return_sequences=True), x, W, U)
    x, W, U, b = _inputs(rng, N, T, D, U_, 3, (2, 3 * U_), 0)
    gradcheck(lambda *a: F.gru(*a, return_sequences=True), x, W, U)
    x, W, U, b = _inputs(rng, N, T, D, U_, 1, (U_,), 0)
    gradcheck(lambda *a: F.simple_rnn(*a, return_sequences=True), x, W, U)


# --- gradients: random directions on a realistic shape ------------------------------------
@pytest.mark.parametrize("op, gates, bias_shape, states", [
    (F.lstm, 4, (128,), 2), (F.gru, 3, (2, 96), 1), (F.simple_rnn, 1, (32,), 1)])
def test_gradcheck_random_directions_realistic_shape(rng, op, gates, bias_shape, states):
    args = _inputs(rng, 16, 28, 28, 32, gates, bias_shape, states, scale=0.2)
    gradcheck(lambda *a: op(*a, return_sequences=True), *args, directions=3)


# --- against PyTorch (float64, weights copied from the Keras layout) ----------------------
def _torch_grads(torch, tensors):
    return [t.grad.numpy() for t in tensors]


@pytest.mark.parametrize("return_sequences", [False, True])
def test_lstm_matches_torch(rng, return_sequences):
    torch = pytest.importorskip("torch")
    n, t, d, u = 3, 6, 5, 4
    x, W, U, b, h0, c0 = _inputs(rng, n, t, d, u, 4, (4 * u,), 2, scale=1.0)
    ref = torch.nn.LSTM(d, u, batch_first=True).double()
    with torch.no_grad():       # same gate order i, f, g, o; torch keeps W transposed, two biases
        ref.weight_ih_l0.copy_(torch.from_numpy(W.T))
        ref.weight_hh_l0.copy_(torch.from_numpy(U.T))
        ref.bias_ih_l0.copy_(torch.from_numpy(b))
        ref.bias_hh_l0.zero_()
    xt, h0t, c0t = (torch.tensor(a[None] if a.ndim == 2 else a, requires_grad=True) for a in (x, h0, c0))
    out_t, (h_t, c_t) = ref(xt, (h0t, c0t))
    out_t = out_t if return_sequences else out_t[:, -1]
    g_out, g_h, g_c = (rng.standard_normal(s) for s in (tuple(out_t.shape), (n, u), (n, u)))
    ((out_t * torch.from_numpy(g_out)).sum() + (h_t[0] * torch.from_numpy(g_h)).sum()
     + (c_t[0] * torch.from_numpy(g_c)).sum()).backward()

    ours = [Tensor(a, requires_grad=True) for a in (x, W, U, b, h0, c0)]
    outputs, h, c = F.lstm(*ours, return_sequences=return_sequences, return_state=True)
    np.testing.assert_allclose(outputs.data, out_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(c.data, c_t[0].detach().numpy(), rtol=1e-10, atol=1e-12)
    ((outputs * g_out).sum() + (h * g_h).sum() + (c * g_c).sum()).backward()
    gx, gWih, gWhh, gbih, gbhh, gh0, gc0 = _torch_grads(
        torch, [xt, ref.weight_ih_l0, ref.weight_hh_l0, ref.bias_ih_l0, ref.bias_hh_l0, h0t, c0t])
    for got, want in zip([a.grad for a in ours], [gx, gWih.T, gWhh.T, gbih, gh0[0], gc0[0]]):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(gbih, gbhh, rtol=1e-12)


def _keras_gru_to_torch(a, u):
    """Keras' gate blocks (z, r, h) along the last axis -> PyTorch's (r, z, n)."""
    return np.concatenate([a[..., u:2 * u], a[..., :u], a[..., 2 * u:]], axis=-1)


@pytest.mark.parametrize("return_sequences", [False, True])
def test_gru_matches_torch(rng, return_sequences):
    torch = pytest.importorskip("torch")
    n, t, d, u = 3, 6, 5, 4
    x, W, U, b, h0 = _inputs(rng, n, t, d, u, 3, (2, 3 * u), 1, scale=1.0)
    ref = torch.nn.GRU(d, u, batch_first=True).double()
    with torch.no_grad():
        ref.weight_ih_l0.copy_(torch.from_numpy(_keras_gru_to_torch(W, u).T))
        ref.weight_hh_l0.copy_(torch.from_numpy(_keras_gru_to_torch(U, u).T))
        ref.bias_ih_l0.copy_(torch.from_numpy(_keras_gru_to_torch(b[0], u)))
        ref.bias_hh_l0.copy_(torch.from_numpy(_keras_gru_to_torch(b[1], u)))
    xt, h0t = torch.tensor(x, requires_grad=True), torch.tensor(h0[None], requires_grad=True)
    out_t, _ = ref(xt, h0t)
    out_t = out_t if return_sequences else out_t[:, -1]
    g_out = rng.standard_normal(tuple(out_t.shape))
    (out_t * torch.from_numpy(g_out)).sum().backward()

    ours = [Tensor(a, requires_grad=True) for a in (x, W, U, b, h0)]
    y = F.gru(*ours, return_sequences=return_sequences)
    np.testing.assert_allclose(y.data, out_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    (y * g_out).sum().backward()
    gx, gWih, gWhh, gbih, gbhh, gh0 = _torch_grads(
        torch, [xt, ref.weight_ih_l0, ref.weight_hh_l0, ref.bias_ih_l0, ref.bias_hh_l0, h0t])
    want = [gx, gWih.T, gWhh.T, np.stack([gbih, gbhh]), gh0[0]]
    got = [ours[0].grad] + [_keras_gru_to_torch(a.grad, u) for a in ours[1:4]] + [ours[4].grad]
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_simple_rnn_matches_torch(rng, activation):
    torch = pytest.importorskip("torch")
    n, t, d, u = 3, 6, 5, 4
    x, W, U, b, h0 = _inputs(rng, n, t, d, u, 1, (u,), 1, scale=1.0)
    ref = torch.nn.RNN(d, u, nonlinearity=activation, batch_first=True).double()
    with torch.no_grad():
        ref.weight_ih_l0.copy_(torch.from_numpy(W.T))
        ref.weight_hh_l0.copy_(torch.from_numpy(U.T))
        ref.bias_ih_l0.copy_(torch.from_numpy(b))
        ref.bias_hh_l0.zero_()
    xt, h0t = torch.tensor(x, requires_grad=True), torch.tensor(h0[None], requires_grad=True)
    out_t, _ = ref(xt, h0t)
    g_out = rng.standard_normal(tuple(out_t.shape))
    (out_t * torch.from_numpy(g_out)).sum().backward()

    ours = [Tensor(a, requires_grad=True) for a in (x, W, U, b, h0)]
    y = F.simple_rnn(*ours, activation=activation, return_sequences=True)
    np.testing.assert_allclose(y.data, out_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    (y * g_out).sum().backward()
    gx, gWih, gWhh, gbih, gh0 = _torch_grads(
        torch, [xt, ref.weight_ih_l0, ref.weight_hh_l0, ref.bias_ih_l0, h0t])
    for g, w in zip([a.grad for a in ours], [gx, gWih.T, gWhh.T, gbih, gh0[0]]):
        np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-12)


# --- dtype, graph shape, reuse, errors ----------------------------------------------------
@pytest.mark.parametrize("op, gates, bias_shape, states", [
    (F.lstm, 4, (20,), 2), (F.gru, 3, (2, 15), 1), (F.simple_rnn, 1, (5,), 1)])
def test_float32_in_float32_out_and_gradients(rng, op, gates, bias_shape, states):
    ours = [Tensor(a, requires_grad=True)
            for a in _inputs(rng, 3, 4, 2, 5, gates, bias_shape, states, dtype=np.float32)]
    y = op(*ours, return_sequences=True)
    assert y.dtype == np.float32
    y.sum().backward()
    assert [a.grad.dtype for a in ours] == [np.float32] * len(ours)


def test_a_whole_sequence_is_one_graph_node(rng):
    x, W, U, b, h0, c0 = (Tensor(a, requires_grad=True) for a in _inputs(rng, 2, 50, 3, 4, 4, (16,), 2))
    y = F.lstm(x, W, U, b, h0, c0, return_sequences=True)
    assert y._ctx.fn is LSTM and y._ctx.parents == (x, W, U, b, h0, c0)
    assert F.gru(x, W[:, :12], U[:, :12])._ctx.fn is GRU


def test_retained_graph_gives_the_same_gradients_twice(rng):
    ours = [Tensor(a, requires_grad=True) for a in _inputs(rng, 2, 4, 3, 5, 4, (20,), 2)]
    y = F.lstm(*ours, return_sequences=True)
    g = rng.standard_normal(y.shape)
    y.backward(g, retain_graph=True)
    first = [a.grad.copy() for a in ours]
    y.backward(g)
    for a, f in zip(ours, first):
        np.testing.assert_allclose(a.grad, 2 * f, rtol=1e-12)


def test_only_the_inputs_that_need_gradients_get_them(rng):
    x, W, U, b, h0 = _inputs(rng, 2, 4, 3, 5, 3, (2, 15), 1)
    Wt, h0t = Tensor(W, requires_grad=True), Tensor(h0, requires_grad=True)
    F.gru(x, Wt, U, b, h0t).sum().backward()
    ref = [Tensor(a, requires_grad=True) for a in (x, W, U, b, h0)]
    F.gru(*ref).sum().backward()
    np.testing.assert_allclose(Wt.grad, ref[1].grad, rtol=1e-12)
    np.testing.assert_allclose(h0t.grad, ref[4].grad, rtol=1e-12)



@pytest.mark.parametrize("wanted", [(1,), (2,), (3,), (1, 3), (2, 3), (1, 2), (0, 2, 4)])
def test_lstm_weight_gradients_of_any_subset(rng, wanted):
    """LSTM's one weight-gradient GEMM covers the rows asked for ([dU; dW; db] or a part of it):
    each subset of kernel (1), recurrent kernel (2) and bias (3) gets the gradients that
    asking for all six inputs gives, and the others get none."""
    arrays = _inputs(rng, 2, 4, 3, 5, 4, (20,), 2)
    mine = [Tensor(a, requires_grad=i in wanted) for i, a in enumerate(arrays)]
    F.lstm(*mine, return_sequences=True).sum().backward()
    ref = [Tensor(a, requires_grad=True) for a in arrays]
    F.lstm(*ref, return_sequences=True).sum().backward()
    for i, (a, r) in enumerate(zip(mine, ref)):
        if i in wanted:
            np.testing.assert_allclose(a.grad, r.grad, rtol=1e-12, atol=1e-14)
        else:
            assert a.grad is None

def test_bad_shapes_and_options_are_refused(rng):
    x, W, U, b, h0, c0 = _inputs(rng, 2, 4, 3, 5, 4, (20,), 2)
    with pytest.raises(ShapeError, match=r"lstm: expected input of shape \(N, T, D\)"):
        F.lstm(x[0], W, U)
    with pytest.raises(ShapeError, match=r"lstm: expected kernel of shape \(3, 4·units\)"):
        F.lstm(x, W[:2], U)
    with pytest.raises(ShapeError, match=r"lstm: expected recurrent_kernel of shape \(5, 20\)"):
        F.lstm(x, W, U[:4])
    with pytest.raises(ShapeError, match=r"lstm: expected bias of shape \(20,\)"):
        F.lstm(x, W, U, b[:5])
    with pytest.raises(ShapeError, match=r"lstm: expected c0 of shape \(2, 5\)"):
        F.lstm(x, W, U, b, h0, c0[:1])
    with pytest.raises(ShapeError, match=r"gru: expected bias of shape \(2, 15\)"):
        F.gru(x, W[:, :15], U[:, :15], b[:15])
    with pytest.raises(ShapeError, match="at least one timestep"):
        F.simple_rnn(x[:, :0], W[:, :5], U[:, :5])
    with pytest.raises(ValueError, match="simple_rnn: expected activation in"):
        F.simple_rnn(x, W[:, :5], U[:, :5], activation="softmax")


@pytest.mark.parametrize("n, t", [(3, 4), (1, 4), (3, 1)])
@pytest.mark.parametrize("op, gates, bias_shape, states", [
    (F.lstm, 4, (20,), 2), (F.gru, 3, (2, 15), 1), (F.simple_rnn, 1, (5,), 1)])
def test_outputs_and_gradients_survive_later_calls(rng, op, gates, bias_shape, states, n, t):
    # the time-major buffers are pooled across calls; nothing handed out may alias them
    # (size-1 batch or time axes make transposed views look contiguous)
    first = [Tensor(a, requires_grad=True) for a in _inputs(rng, n, t, 2, 5, gates, bias_shape, states)]
    y = op(*first, return_sequences=True)
    y.backward(rng.standard_normal(y.shape))
    kept = [y.data.copy()] + [a.grad.copy() for a in first]
    for _ in range(3):
        other = [Tensor(a, requires_grad=True) for a in _inputs(rng, n, t, 2, 5, gates, bias_shape, states)]
        z = op(*other, return_sequences=True)
        z.backward(rng.standard_normal(z.shape))
    for got, want in zip([y.data] + [a.grad for a in first], kept):
        np.testing.assert_array_equal(got, want)
