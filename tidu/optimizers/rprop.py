"""Sign-based per-weight step sizes: Rprop, Jacobs's delta-bar-delta and the notes' adaptive gains."""
import numpy as np

from tidu.optimizers.base import Optimizer, check_nonnegative, check_positive, check_unit_interval


def _pair(owner, name, value, check):
    try:
        a, b = value
    except (TypeError, ValueError):
        raise TypeError(f"{owner}: expected {name} to be a pair (low, high), got {name}={value!r}") from None
    return check(owner, f"{name}[0]", a), check(owner, f"{name}[1]", b)


class Rprop(Optimizer):
    """Rprop: per-weight steps that grow while the gradient keeps its sign and shrink when it flips.

    With s = sign(g·g_prev) for each weight (g_prev starts at 0, so s = 0 on the first step):
        Δ = clip(Δ·η+, Δmin, Δmax)   if s > 0                      (Δ starts at learning_rate)
        Δ = clip(Δ·η−, Δmin, Δmax)   if s < 0, and g = 0: no step, and no sign test next time
        θ = θ − sign(g)·Δ
        g_prev = g
    with (η−, η+) = etas, (Δmin, Δmax) = step_sizes. Only the sign of the gradient is used, so it
    needs full-batch (or very large batch) gradients: `step(closure)` with a full-batch closure.
    This is torch.optim.Rprop's variant (Rprop without weight-backtracking, "Rprop−" with the
    iRprop− zeroing of g): Rprop(learning_rate=η, etas=(η−, η+), step_sizes=(Δmin, Δmax)) follows
    torch.optim.Rprop(lr=η, etas=(η−, η+), step_sizes=(Δmin, Δmax)).
    Reference: Riedmiller & Braun, "A Direct Adaptive Method for Faster Backpropagation Learning:
    The RPROP Algorithm", ICNN 1993; Igel & Hüsken, "Improving the Rprop Learning Algorithm", 2000.
    """

    def __init__(self, learning_rate=0.01, etas=(0.5, 1.2), step_sizes=(1e-6, 50.0), **kwargs):
        owner = type(self).__name__
        eta_minus, eta_plus = _pair(owner, "etas", etas, check_positive)
        if not eta_minus < 1.0 < eta_plus:
            raise ValueError(f"{owner}: expected 0 < etas[0] < 1 < etas[1], got etas={tuple(etas)!r}")
        step_min, step_max = _pair(owner, "step_sizes", step_sizes, check_positive)
        if step_min > step_max:
            raise ValueError(f"{owner}: expected step_sizes[0] <= step_sizes[1], got step_sizes={tuple(step_sizes)!r}")
        self.etas, self.step_sizes = (eta_minus, eta_plus), (step_min, step_max)
        super().__init__(learning_rate, **kwargs)

    def init_state(self, theta):
        return {"g_prev": np.zeros_like(theta), "delta": np.full_like(theta, self.learning_rate)}

    def rule(self, theta, g, state, t, lr):
        eta_minus, eta_plus = self.etas
        g_prev, delta = state["g_prev"], state["delta"]
        s = np.sign(g * g_prev)                             # s = sign(g·g_prev)
        factor = np.where(s > 0, eta_plus, np.where(s < 0, eta_minus, 1.0))
        delta *= factor.astype(delta.dtype, copy=False)     # Δ = Δ·η+ or Δ·η− (or Δ when s = 0)
        np.clip(delta, *self.step_sizes, out=delta)         # Δ = clip(Δ, Δmin, Δmax)
        g = np.where(s < 0, 0, g).astype(theta.dtype, copy=False)   # sign flipped: no step
        theta -= np.sign(g) * delta                         # θ = θ − sign(g)·Δ
        g_prev[...] = g                                     # g_prev = g
        return theta, state


class AdaptiveGain(Optimizer):
    """Per-weight gains (the notes' 自适应学习率; Hinton's lecture 6.4, after Jacobs's delta-bar-delta).

    Each weight has a gain γ (starts at 1). With s = sign(g·g_prev) (g_prev starts at 0):
        γ = γ + increment        if s > 0     the gradient kept its sign
        γ = γ · decay            if s < 0     it flipped
        γ = clip(γ, γmin, γmax)                (γ unchanged when s = 0)
        θ = θ − η·γ·g
        g_prev = g
    with η = learning_rate, increment = 0.05, decay = 0.95, (γmin, γmax) = gain_bounds =
    (0.1, 10). As the notes say, use full batches or very large mini-batches so the sign of the
    gradient is not mostly sampling noise. (Jacobs's delta-bar-delta compares g with an average
    of past gradients instead of the last one: `DeltaBarDelta`; this is the simplified form of
    the notes and of Hinton's lecture, `get('adaptive_gain')`.)
    Reference: Jacobs, "Increased Rates of Convergence Through Learning Rate Adaptation", Neural
    Networks 1988; Hinton, Coursera "Neural Networks for Machine Learning", lecture 6.4, 2012.
    """

    def __init__(self, learning_rate=0.01, increment=0.05, decay=0.95, gain_bounds=(0.1, 10.0), **kwargs):
        owner = type(self).__name__
        self.increment = check_positive(owner, "increment", increment)
        self.decay = check_positive(owner, "decay", decay)
        if self.decay >= 1:
            raise ValueError(f"{owner}: expected 0 < decay < 1, got decay={decay!r}")
        lo, hi = _pair(owner, "gain_bounds", gain_bounds, check_positive)
        if not lo <= 1.0 <= hi:
            raise ValueError(f"{owner}: expected gain_bounds[0] <= 1 <= gain_bounds[1] (gains start at 1), "
                             f"got gain_bounds={tuple(gain_bounds)!r}")
        self.gain_bounds = (lo, hi)
        super().__init__(learning_rate, **kwargs)

    def init_state(self, theta):
        return {"gain": np.ones_like(theta), "g_prev": np.zeros_like(theta)}

    def rule(self, theta, g, state, t, lr):
        gain, g_prev = state["gain"], state["g_prev"]
        s = np.sign(g * g_prev)                             # s = sign(g·g_prev)
        gain[...] = np.where(s > 0, gain + self.increment,  # γ = γ + 0.05 (same sign)
                             np.where(s < 0, gain * self.decay, gain))   # γ = γ·0.95 (flipped)
        np.clip(gain, *self.gain_bounds, out=gain)          # γ = clip(γ, 0.1, 10)
        theta -= lr * gain * g                              # θ = θ − η·γ·g
        g_prev[...] = g                                     # g_prev = g
        return theta, state



class DeltaBarDelta(Optimizer):
    """Jacobs's delta-bar-delta: a learning rate per weight, raised additively while the gradient
    agrees with its recent average and cut multiplicatively when it disagrees.

    Each weight has its own rate ε (starts at learning_rate) and an average δ̄ of its past
    gradients (starts at 0). With δ = g this step:
        ε = ε + κ            if δ̄·δ > 0             (additive increase)
        ε = (1 − φ)·ε        if δ̄·δ < 0             (multiplicative decrease; unchanged if 0)
        θ = θ − ε·δ
        δ̄ = (1 − ϑ)·δ + ϑ·δ̄                          (exponential average, after its use)
    with κ = kappa, φ = phi, ϑ = theta. Like Rprop it is meant for full-batch gradients. A
    schedule on learning_rate only sets the rates' starting value.
    Reference: Jacobs, "Increased Rates of Convergence Through Learning Rate Adaptation",
    Neural Networks 1(4), 1988, eqs. (4)–(5).
    """

    def __init__(self, learning_rate=0.01, kappa=0.001, phi=0.1, theta=0.7, **kwargs):
        owner = type(self).__name__
        self.kappa = check_nonnegative(owner, "kappa", kappa)
        self.phi = check_unit_interval(owner, "phi", phi)
        self.theta = check_unit_interval(owner, "theta", theta)
        super().__init__(learning_rate, **kwargs)

    def init_state(self, theta):
        return {"rate": np.full_like(theta, self.learning_rate), "bar": np.zeros_like(theta)}

    def rule(self, theta, g, state, t, lr):
        rate, bar = state["rate"], state["bar"]
        agree = bar * g                                     # δ̄·δ
        rate[...] = np.where(agree > 0, rate + self.kappa,  # ε = ε + κ
                             np.where(agree < 0, (1 - self.phi) * rate, rate))   # ε = (1 − φ)·ε
        theta -= rate * g                                   # θ = θ − ε·δ
        bar *= self.theta                                   # δ̄ = (1 − ϑ)·δ + ϑ·δ̄
        bar += (1 - self.theta) * g
        return theta, state
