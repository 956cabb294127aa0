"""Gradient descent and its momentum forms: GD, SGD, Momentum, Nesterov."""
import numpy as np

from tidu.optimizers.base import Optimizer, check_nonnegative, check_unit_interval


class GD(Optimizer):
    """Gradient descent on the full batch: the update the other optimizers refine.

        θ = θ − η·g
    with η = learning_rate and g the gradient of the loss over the whole training set (the
    notes' w(t+1) ← w(t) − α0 ∇L(w(t))). Identical to SGD without momentum; the name says the
    gradient is exact, so `step(closure)` with a full-batch closure is the natural way in.
    Reference: Cauchy, "Méthode générale pour la résolution des systèmes d'équations", 1847.
    """

    def __init__(self, learning_rate=0.01, **kwargs):
        super().__init__(learning_rate, **kwargs)

    def rule(self, theta, g, state, t, lr):
        theta -= lr * g                                     # θ = θ − η·g
        return theta, state


class SGD(Optimizer):
    """Stochastic gradient descent, with optional momentum (Keras form) or moving average.

    Without momentum (μ = 0):          θ = θ − η·g
    Momentum, Keras form (the notes' Momentum, eqs. 6.3-6.4; Polyak's heavy ball):
        v = μ·v − η·g                   velocity (v starts at 0)
        θ = θ + v
    Nesterov (nesterov=True, Keras form, Sutskever et al. 2013):
        v = μ·v − η·g
        θ = θ + μ·v − η·g               the step taken from the look-ahead point
    Dampening δ (torch's `dampening`): v = μ·v − (1 − δ)·η·g from the second step on; the first
        step uses v = −η·g as torch starts its buffer at g (counted from the optimizer's first
        update, so a parameter that joins later gets the dampened form at once).
    Moving average (ema=True, the notes' SGD-M): the velocity is an average of gradients and η
    scales the step:
        M = μ·M + (1 − μ)·g             (M starts at 0)
        θ = θ − η·M                     (Nesterov: θ = θ − η·(μ·M + (1 − μ)·g))
    with η = learning_rate, μ = momentum.

    torch.optim.SGD keeps b = μ·b + (1 − δ)·g and steps θ = θ − η·b (Nesterov: θ = θ −
    η·(g + μ·b)); with a constant η that is our form with v = −η·b, so SGD(learning_rate=η,
    momentum=μ, nesterov=n, dampening=δ) follows torch.optim.SGD(lr=η, momentum=μ, nesterov=n,
    dampening=δ) step for step. When η changes (a schedule) the forms differ: ours keeps the
    past steps' η inside v, torch applies the new η to the whole buffer. The moving-average form
    is torch's dampening=μ without the first-step exception, with η outside: η·(1 − μ) = 0.1·η
    per unit gradient at μ = 0.9, so it needs a 10× larger η for the same speed.
    Reference: Polyak, "Some methods of speeding up the convergence of iteration methods", 1964;
    Sutskever, Martens, Dahl & Hinton, "On the importance of initialization and momentum in deep
    learning", ICML 2013.
    """

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, dampening=0.0, ema=False, **kwargs):
        owner = type(self).__name__
        momentum = check_nonnegative(owner, "momentum", momentum)
        if momentum > 1:
            raise ValueError(f"{owner}: expected 0 <= momentum <= 1, got momentum={momentum!r}")
        dampening = check_unit_interval(owner, "dampening", dampening) if dampening != 1 else 1.0
        if nesterov and (momentum == 0 or dampening != 0):
            raise ValueError(f"{owner}: nesterov=True needs momentum > 0 and dampening=0, got "
                             f"momentum={momentum!r}, dampening={dampening!r}")
        if ema and dampening != 0:
            raise ValueError(f"{owner}: ema=True is its own dampening (1 − momentum); got dampening={dampening!r}")
        super().__init__(learning_rate, **kwargs)
        self.momentum, self.nesterov = momentum, bool(nesterov)
        self.dampening, self.ema = dampening, bool(ema)

    def init_state(self, theta):
        return {"v": np.zeros_like(theta)} if self.momentum else {}

    def rule(self, theta, g, state, t, lr):
        mu = self.momentum
        if not mu:
            theta -= lr * g                                 # θ = θ − η·g
            return theta, state
        v = state["v"]
        if self.ema:
            v *= mu                                         # M = μ·M + (1 − μ)·g
            v += (1 - mu) * g
            if self.nesterov:
                theta -= lr * (mu * v + (1 - mu) * g)       # θ = θ − η·(μ·M + (1 − μ)·g)
            else:
                theta -= lr * v                             # θ = θ − η·M
            return theta, state
        scale = lr if (t == 1 or not self.dampening) else lr * (1 - self.dampening)
        v *= mu                                             # v = μ·v − η·g
        v -= scale * g
        if self.nesterov:
            theta += mu * v - lr * g                        # θ = θ + μ·v − η·g
        else:
            theta += v                                      # θ = θ + v
        return theta, state


class Momentum(SGD):
    """The notes' Momentum class: SGD with momentum 0.9 in the Keras form.

        v = μ·v − η·g        (eq. 6.3; v starts at 0)
        θ = θ + v            (eq. 6.4)
    with η = learning_rate (lr), μ = momentum. `Momentum(lr=0.01, momentum=0.9).update(params,
    grads)` reproduces the notes' code exactly. See SGD for torch's form.
    Reference: 斋藤康毅, 《深度学习入门：基于Python的理论与实现》 §6.1.4; Polyak, 1964.
    """

    def __init__(self, learning_rate=0.01, momentum=0.9, **kwargs):
        _no_sgd_options(self, kwargs)
        super().__init__(learning_rate, momentum=momentum, **kwargs)


class Nesterov(SGD):
    """Nesterov accelerated gradient: SGD(momentum=0.9, nesterov=True) (Keras form).

        v = μ·v − η·g
        θ = θ + μ·v − η·g
    Equivalent to evaluating the gradient at the look-ahead point θ + μ·v (the notes'
    w_ahead = w − γ·v) after the change of variables θ' = θ + μ·v. See SGD for torch's form.
    Reference: Nesterov, "A method for solving the convex programming problem with convergence
    rate O(1/k²)", 1983; Sutskever et al., ICML 2013.
    """

    def __init__(self, learning_rate=0.01, momentum=0.9, **kwargs):
        _no_sgd_options(self, kwargs)
        super().__init__(learning_rate, momentum=momentum, nesterov=True, **kwargs)


def _no_sgd_options(opt, kwargs):
    """Momentum and Nesterov fix SGD's other options (use SGD to vary them)."""
    fixed = {k: kwargs[k] for k in ("nesterov", "dampening", "ema") if k in kwargs}
    if fixed:
        opt._unknown_arguments(fixed)
