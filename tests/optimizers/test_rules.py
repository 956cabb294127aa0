"""Rules without a PyTorch twin, worked by hand: AdaptiveGain, DeltaBarDelta, SWATS, SGD's moving-average form,
Adamax; and the closure path of Rprop (full-batch)."""
import numpy as np
import pytest

from tidu.autograd import Parameter
from tidu.optimizers import SGD, SWATS, Adamax, AdaptiveGain, DeltaBarDelta, Rprop, get


def test_adaptive_gain_hand_worked_example():
    # one weight, lr = 0.1, θ0 = 0, gradient signs + + + − − +:
    #   k  g   s     γ                          θ
    #   1  +1  0     1                          0 − 0.1·1·1          = −0.1
    #   2  +1  +     1 + 0.05 = 1.05            −0.1 − 0.105          = −0.205
    #   3  +1  +     1.10                       −0.205 − 0.11         = −0.315
    #   4  −1  −     1.10·0.95 = 1.045          −0.315 + 0.1045       = −0.2105
    #   5  −1  +     1.045 + 0.05 = 1.095       −0.2105 + 0.1095      = −0.101
    #   6  +1  −     1.095·0.95 = 1.04025       −0.101 − 0.104025     = −0.205025
    theta, opt = np.zeros(1), AdaptiveGain(0.1)
    gains, thetas = [], []
    for g in (1.0, 1.0, 1.0, -1.0, -1.0, 1.0):
        opt.update({"w": theta}, {"w": np.array([g])})
        gains.append(opt.state_dict()["key:w/gain"][0])
        thetas.append(theta[0])
    np.testing.assert_allclose(gains, [1.0, 1.05, 1.10, 1.045, 1.095, 1.04025], rtol=1e-14)
    np.testing.assert_allclose(thetas, [-0.1, -0.205, -0.315, -0.2105, -0.101, -0.205025], rtol=1e-13)


def test_adaptive_gain_stays_in_bounds():
    theta, opt = np.zeros(3), AdaptiveGain(1e-4)
    for k in range(300):
        # weight 0 keeps its sign, weight 1 flips every step, weight 2 is mixed
        g = np.array([1.0, (-1.0) ** k, 1.0 if k % 3 else -1.0])
        opt.update({"w": theta}, {"w": g})
        gain = opt.state_dict()["key:w/gain"]
        assert ((gain >= 0.1) & (gain <= 10.0)).all()
    np.testing.assert_allclose(gain[:2], [10.0, 0.1])       # 1 + 0.05·180 reaches 10; 0.95^45 < 0.1


def test_swats_switches_on_a_linear_function_and_then_is_sgd(rng):
    # constant gradient g: Adam's step is p ≈ −η·sign(g), so γ = pᵀp/(−pᵀg) = η·n/‖g‖₁ from the
    # first step on; the bias-corrected average λ/(1 − β2^k) equals γ at k = 2, where it switches
    g = np.array([1.0, -2.0, 0.5])
    theta = rng.standard_normal(3)
    opt = SWATS(0.01)
    p = Parameter(theta.copy())
    opt.apply_gradients([(g, p)])
    assert not opt.switched
    opt.apply_gradients([(g, p)])
    assert opt.switched
    Lam = float(opt.state_dict()["global/Lam"])
    assert Lam == pytest.approx(0.01 * 3 / 3.5, rel=1e-6)
    # from here on: v = β1·v + g, θ = θ − (1 − β1)·Λ·v, i.e. SGD(η' = (1 − β1)·Λ, momentum β1)
    twin, sgd = Parameter(p.data.copy()), SGD(learning_rate=0.1 * Lam, momentum=0.9)
    for _ in range(20):
        gk = rng.standard_normal(3)
        opt.apply_gradients([(gk, p)])
        sgd.apply_gradients([(gk, twin)])
    np.testing.assert_allclose(p.data, twin.data, rtol=1e-12)


def test_swats_fixed_switch_step_and_epoch(rng):
    quad = lambda x: 0.5 * float(x @ x)  # noqa: E731
    r = SWATS(0.05, switch_step=10, sgd_learning_rate=0.3).minimize(quad, np.ones(2), lambda x: x, steps=30)
    opt = r.optimizer
    assert opt.switched and float(opt.state_dict()["global/Lam"]) == 0.3
    # after the switch: x_{k+1} = x_k − 0.1·0.3·v_k, v_k = 0.9·v_{k−1} + x_k with v = 0 at step 11
    x, v = r.path[10].copy(), np.zeros(2)
    for k in range(10, 30):
        v = 0.9 * v + x
        x = x - 0.1 * 0.3 * v
        np.testing.assert_allclose(r.path[k + 1], x, rtol=1e-12)

    by_epoch = SWATS(0.05, switch_epoch=2)
    p = Parameter(np.ones(2))
    for epoch in range(3):
        by_epoch.on_epoch_begin(epoch)
        for _ in range(4):
            by_epoch.apply_gradients([(p.data.copy(), p)])
        assert by_epoch.switched == (epoch >= 2)


def test_sgd_moving_average_form_by_hand():
    # M = 0.9·M + 0.1·g, θ = θ − η·M with η = 1, g = 1: M = 0.1, 0.19, 0.271; θ = −0.1, −0.29, −0.561
    theta, opt = np.zeros(1), SGD(1.0, momentum=0.9, ema=True)
    seen = []
    for _ in range(3):
        opt.update({"w": theta}, {"w": np.ones(1)})
        seen.append(theta[0])
    np.testing.assert_allclose(seen, [-0.1, -0.29, -0.561], rtol=1e-14)


def test_adamax_first_steps_by_hand():
    # g = 2, β1 = 0.9, β2 = 0.999, ε = 0, η = 0.1:
    #   t=1: m = 0.2, u = 2,  θ = −0.1/(1 − 0.9)·0.2/2 = −0.1
    #   t=2: m = 0.38, u = max(1.998, 2) = 2,  θ = −0.1 − 0.1/0.19·0.38/2 = −0.2
    theta, opt = np.zeros(1), Adamax(0.1, epsilon=0.0)
    opt.update({"w": theta}, {"w": np.array([2.0])})
    np.testing.assert_allclose(theta, [-0.1], rtol=1e-14)
    opt.update({"w": theta}, {"w": np.array([2.0])})
    np.testing.assert_allclose(theta, [-0.2], rtol=1e-14)


def test_rprop_full_batch_through_step_closure():
    # f = Σ (x − a)²: signs persist, steps grow by 1.2 until they overshoot, then halve
    a = np.array([3.0, -1.0])
    x = np.zeros(2)
    opt = Rprop(0.1)
    for _ in range(60):
        opt.step(lambda: (float(((x - a) ** 2).sum()), [2 * (x - a)]), params=[x])
    np.testing.assert_allclose(x, a, atol=1e-3)
    # first steps: Δ = 0.1, 0.12, 0.144: x0 = 0.1, 0.22, 0.364 toward 3
    y, opt = np.zeros(2), Rprop(0.1)
    seen = []
    for _ in range(3):
        opt.step(lambda: (0.0, [2 * (y - a)]), params=[y])
        seen.append(y[0])
    np.testing.assert_allclose(seen, [0.1, 0.22, 0.364], rtol=1e-14)


def test_delta_bar_delta_hand_worked_example():
    # one weight, ε0 = 0.1, κ = 0.05, φ = 0.5, ϑ = 0.5, θ0 = 0, gradients 1, 1, −1, −1, 0.5:
    #   k  δ     δ̄_prev   δ̄_prev·δ   ε                        θ                        δ̄ = ½δ + ½δ̄_prev
    #   1  1     0        0          0.1                      0 − 0.1       = −0.1     0.5
    #   2  1     0.5      +          0.1 + 0.05 = 0.15        −0.1 − 0.15   = −0.25    0.75
    #   3  −1    0.75     −          0.15·0.5 = 0.075         −0.25 + 0.075 = −0.175   −0.125
    #   4  −1    −0.125   +          0.075 + 0.05 = 0.125     −0.175 + 0.125 = −0.05   −0.5625
    #   5  0.5   −0.5625  −          0.125·0.5 = 0.0625       −0.05 − 0.03125 = −0.08125
    theta, opt = np.zeros(1), DeltaBarDelta(0.1, kappa=0.05, phi=0.5, theta=0.5)
    rates, thetas = [], []
    for g in (1.0, 1.0, -1.0, -1.0, 0.5):
        opt.update({"w": theta}, {"w": np.array([g])})
        rates.append(opt.state_dict()["key:w/rate"][0])
        thetas.append(theta[0])
    np.testing.assert_allclose(rates, [0.1, 0.15, 0.075, 0.125, 0.0625], rtol=1e-14)
    np.testing.assert_allclose(thetas, [-0.1, -0.25, -0.175, -0.05, -0.08125], rtol=1e-13, atol=1e-16)
    assert type(get("delta_bar_delta")) is DeltaBarDelta and type(get("adaptive_gain")) is AdaptiveGain


def test_swats_criterion_fires_on_float32_models_with_many_weights():
    """A linear loss (constant g) makes γ constant: the paper's criterion holds at k = 2. With
    400,000 float32 weights (the MNIST MLP's size) the dot products must be accumulated in
    float64 to see it (in float32 their rounding, ~1e-8 here, exceeds τ = 1e-9)."""
    c = np.random.default_rng(0).standard_normal(400_000).astype(np.float32)
    p = Parameter(np.zeros(400_000, np.float32))
    opt = SWATS(0.01)
    for _ in range(2):
        opt.apply_gradients([(c.copy(), p)])
    assert opt.switched


def test_swats_criterion_does_not_fire_where_it_is_not_met():
    """On a rotated quadratic γ drifts: with the defaults the closest |λ/(1 − β2^k) − γ| gets is
    7.4e-9 (at k = 2) > τ = 1e-9, so 5,000 Adam steps and no switch; τ = 1e-8 switches at k = 2."""
    c, s = np.cos(np.pi / 6), np.sin(np.pi / 6)
    R = np.array([[c, -s], [s, c]])
    Q = R @ np.diag([1.0, 50.0]) @ R.T
    quad = lambda x: 0.5 * x @ Q @ x  # noqa: E731
    r = SWATS().minimize(quad, [-1.5, 1.0], lambda x: Q @ x, steps=5000)
    assert not r.optimizer.switched and r.fun < quad(np.array([-1.5, 1.0]))
    r = SWATS(switch_tolerance=1e-8).minimize(quad, [-1.5, 1.0], lambda x: Q @ x, steps=2)
    assert r.optimizer.switched
