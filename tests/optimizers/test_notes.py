"""The notes' optimizer classes (SGD, Momentum, AdaGrad; 《深度学习入门》 §6.1) and the notes'
Adam reformulation: our classes through update(params, grads) give exactly their numbers."""
import numpy as np
import pytest

from tidu.optimizers import SGD, AdaGrad, Adam, Momentum


# --- the notes' code, verbatim but for the indentation lost in the notes -----------------------
class NotesSGD:
    def __init__(self, lr=0.01):
        self.lr = lr

    def update(self, params, grads):
        for key in params.keys():
            params[key] -= self.lr * grads[key]


class NotesMomentum:
    def __init__(self, lr=0.01, momentum=0.9):
        self.lr = lr
        self.momentum = momentum
        self.v = None

    def update(self, params, grads):
        if self.v is None:
            self.v = {}
            for key, val in params.items():
                self.v[key] = np.zeros_like(val)
        for key in params.keys():
            self.v[key] = self.momentum * self.v[key] - self.lr * grads[key]
            params[key] += self.v[key]


class NotesAdaGrad:
    def __init__(self, lr=0.01):
        self.lr = lr
        self.h = None

    def update(self, params, grads):
        if self.h is None:
            self.h = {}
            for key, val in params.items():
                self.h[key] = np.zeros_like(val)
        for key in params.keys():
            self.h[key] += grads[key] * grads[key]
            params[key] -= self.lr * grads[key] / (np.sqrt(self.h[key]) + 1e-7)


def _network(rng, dtype):
    shapes = {"W1": (6, 4), "b1": (4,), "W2": (4, 3), "b2": (3,)}
    return {k: rng.standard_normal(s).astype(dtype) for k, s in shapes.items()}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ours, notes", [(lambda: SGD(lr=0.01), NotesSGD),
                                         (lambda: Momentum(lr=0.01, momentum=0.9), NotesMomentum),
                                         (lambda: AdaGrad(lr=0.01), NotesAdaGrad)])
def test_notes_classes_give_the_notes_numbers_exactly(rng, dtype, ours, notes):
    params = _network(rng, dtype)
    twin = {k: v.copy() for k, v in params.items()}
    opt, ref = ours(), notes()
    for _ in range(30):
        grads = {k: rng.standard_normal(v.shape).astype(dtype) for k, v in params.items()}
        opt.update(params, grads)
        ref.update(twin, grads)
    for k in params:
        assert params[k].dtype == dtype
        np.testing.assert_array_equal(params[k], twin[k])


def test_notes_defaults():
    assert SGD().learning_rate == 0.01 and SGD().momentum == 0.0
    m = Momentum()
    assert (m.learning_rate, m.momentum) == (0.01, 0.9)
    a = AdaGrad()
    assert (a.learning_rate, a.epsilon, a.initial_accumulator_value) == (0.01, 1e-7, 0.0)


def test_sgd_by_hand():
    # W = 1 − 0.01·0.5 = 0.995;  b = −2 − 0.01·(−4) = −1.96
    params = {"W": np.array([1.0]), "b": np.array([-2.0])}
    SGD(lr=0.01).update(params, {"W": np.array([0.5]), "b": np.array([-4.0])})
    np.testing.assert_allclose(params["W"], [0.995], rtol=1e-15)
    np.testing.assert_allclose(params["b"], [-1.96], rtol=1e-15)


def test_momentum_by_hand():
    # constant gradient g = 1, lr = 0.01, μ = 0.9, W0 = 1:
    #   v1 = −0.01                    W1 = 0.99
    #   v2 = 0.9·(−0.01) − 0.01 = −0.019    W2 = 0.971
    #   v3 = 0.9·(−0.019) − 0.01 = −0.0271  W3 = 0.9439
    params, opt, seen = {"W": np.array([1.0])}, Momentum(lr=0.01, momentum=0.9), []
    for _ in range(3):
        opt.update(params, {"W": np.array([1.0])})
        seen.append(params["W"][0])
    np.testing.assert_allclose(seen, [0.99, 0.971, 0.9439], rtol=1e-14)
    np.testing.assert_allclose(opt.state_dict()["key:W/v"], [-0.0271], rtol=1e-14)


def test_adagrad_by_hand():
    # g = 2 twice, lr = 0.01, W0 = 1:
    #   h1 = 4,  W1 = 1 − 0.01·2/(2 + 1e-7) = 1 − 0.0099999995 = 0.9900000005
    #   h2 = 8,  W2 = W1 − 0.02/(2.8284271247 + 1e-7) = 0.9900000005 − 0.0070710675 = 0.9829289330
    params, opt = {"W": np.array([1.0])}, AdaGrad(lr=0.01)
    opt.update(params, {"W": np.array([2.0])})
    np.testing.assert_allclose(params["W"], [0.9900000005], rtol=1e-12)
    opt.update(params, {"W": np.array([2.0])})
    np.testing.assert_allclose(params["W"], [0.9829289330], rtol=1e-9)
    np.testing.assert_allclose(opt.state_dict()["key:W/h"], [8.0])


def test_adam_stable_follows_adam(rng):
    """The notes' reformulation d = β·d + 1, s = β·s + g², v̂ = s/d gives Adam's trajectory."""
    params = _network(rng, np.float64)
    twin = {k: v.copy() for k, v in params.items()}
    plain, stable = Adam(0.01), Adam(0.01, stable=True)
    for _ in range(300):
        grads = {k: rng.standard_normal(v.shape) for k, v in params.items()}
        plain.update(params, grads)
        stable.update(twin, grads)
    for k in params:
        np.testing.assert_allclose(twin[k], params[k], rtol=1e-12)
    # its state is the unnormalized sums: s_t = v_t / (1 − β2), r_t = m_t / (1 − β1)
    sp, ss = plain.state_dict(), stable.state_dict()
    np.testing.assert_allclose(ss["key:W1/v"], sp["key:W1/v"] / (1 - 0.999), rtol=1e-10)
    np.testing.assert_allclose(ss["key:W1/m"], sp["key:W1/m"] / (1 - 0.9), rtol=1e-10)


def test_adam_first_step_by_hand():
    # t = 1: m = 0.1·g, v = 0.001·g², m̂ = g, v̂ = g², θ = θ − η·g/(|g| + ε) ≈ θ − η·sign(g)
    params = {"w": np.array([1.0, -3.0])}
    Adam(0.1, epsilon=0.0).update(params, {"w": np.array([4.0, -0.5])})
    np.testing.assert_allclose(params["w"], [0.9, -2.9], rtol=1e-14)
