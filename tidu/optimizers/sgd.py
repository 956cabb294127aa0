"""Gradient descent and its momentum forms: GD, SGD, Momentum, Nesterov."""
import numpy as np

from tidu.kernels import update_kernel
from tidu.optimizers.base import Optimizer, check_convention, check_nonnegative, check_unit_interval


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
    """Stochastic gradient descent, with optional momentum, in Keras's or PyTorch's form.

    Without momentum (μ = 0):          θ = θ − η·g
    convention='keras' (the default, Keras 3's numbers; the notes' Momentum, eqs. 6.3-6.4):
        v = μ·v − η·g                   velocity (v starts at 0; Polyak's heavy ball)
        θ = θ + v
        nesterov=True (Sutskever et al. 2013; with μ = 0 it is plain SGD, as in Keras):
        v = μ·v − η·g
        θ = θ + μ·v − η·g               the step taken from the look-ahead point
    convention='torch' (torch.optim.SGD, dampening δ = dampening):
        b = g at the first step, then b = μ·b + (1 − δ)·g
        θ = θ − η·b                     (nesterov=True: θ = θ − η·(g + μ·b); needs μ > 0, δ = 0)
    ema=True (the notes' SGD-M, a moving average of gradients scaled by η; convention='keras'):
        M = μ·M + (1 − μ)·g             (M starts at 0)
        θ = θ − η·M                     (Nesterov: θ = θ − η·(μ·M + (1 − μ)·g))
    with η = learning_rate, μ = momentum.

    With a constant η the Keras and torch forms give the same trajectory (v = −η·b); when η
    changes (a schedule) they differ: Keras keeps the past steps' η inside v, torch applies the
    new η to the whole buffer. SGD(learning_rate=η, momentum=μ, nesterov=n, dampening=δ,
    convention='torch') follows torch.optim.SGD(lr=η, momentum=μ, nesterov=n, dampening=δ) step
    for step; the first step counts from the optimizer's first update. The moving-average form
    is torch's dampening=μ without the first-step exception, with η outside: η·(1 − μ) = 0.1·η
    per unit gradient at μ = 0.9, so it needs a 10× larger η for the same speed.
    Reference: Polyak, "Some methods of speeding up the convergence of iteration methods", 1964;
    Sutskever, Martens, Dahl & Hinton, "On the importance of initialization and momentum in deep
    learning", ICML 2013.
    """

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, dampening=0.0, ema=False,
                 convention="keras", **kwargs):
        owner = type(self).__name__
        convention = check_convention(owner, convention)
        momentum = check_nonnegative(owner, "momentum", momentum)
        if momentum > 1:
            raise ValueError(f"{owner}: expected 0 <= momentum <= 1, got momentum={momentum!r}")
        dampening = check_unit_interval(owner, "dampening", dampening) if dampening != 1 else 1.0
        if dampening != 0 and convention != "torch":
            raise ValueError(f"{owner}: dampening is torch's (Keras has none): pass convention='torch', "
                             f"got dampening={dampening!r} with convention={convention!r}")
        if nesterov and convention == "torch" and (momentum == 0 or dampening != 0):
            raise ValueError(f"{owner}: with convention='torch', nesterov=True needs momentum > 0 and "
                             f"dampening=0, got momentum={momentum!r}, dampening={dampening!r}")
        if ema and convention != "keras":
            raise ValueError(f"{owner}: ema=True is the notes' moving-average form, which takes "
                             f"convention='keras', got convention={convention!r}")
        super().__init__(learning_rate, **kwargs)
        self.momentum, self.nesterov = momentum, bool(nesterov)
        self.dampening, self.ema, self.convention = dampening, bool(ema), convention

    def init_state(self, theta):
        return {"v": np.zeros_like(theta)} if self.momentum else {}

    def fused(self, dtype=np.float32):
        """The momentum forms but the moving average in one pass with the same bits
        (tidu.kernels.optimizers); None for a subclass with a rule of its own."""
        if not self.momentum or self.ema or type(self).rule is not SGD.rule:
            return None
        return update_kernel(f"sgd_{self.convention}", dtype)

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
        if self.convention == "torch":                      # here v holds torch's buffer b
            if t == 1:
                v[...] = g                                  # b = g at the first step
            else:
                v *= mu                                     # b = μ·b + (1 − δ)·g
                v += (1 - self.dampening) * g
            if self.nesterov:
                theta -= lr * (g + mu * v)                  # θ = θ − η·(g + μ·b)
            else:
                theta -= lr * v                             # θ = θ − η·b
            return theta, state
        v *= mu                                             # v = μ·v − η·g
        v -= lr * g
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
    grads)` reproduces the notes' code exactly. convention='torch' gives torch's form (see SGD).
    Reference: 斋藤康毅, 《深度学习入门：基于Python的理论与实现》 §6.1.4; Polyak, 1964.
    """

    def __init__(self, learning_rate=0.01, momentum=0.9, convention="keras", **kwargs):
        _no_sgd_options(self, kwargs)
        super().__init__(learning_rate, momentum=momentum, convention=convention, **kwargs)


class Nesterov(SGD):
    """Nesterov accelerated gradient: SGD(momentum=0.9, nesterov=True) (Keras form).

        v = μ·v − η·g
        θ = θ + μ·v − η·g
    Equivalent to evaluating the gradient at the look-ahead point θ + μ·v (the notes'
    w_ahead = w − γ·v) after the change of variables θ' = θ + μ·v. convention='torch' gives
    torch's form (see SGD).
    Reference: Nesterov, "A method for solving the convex programming problem with convergence
    rate O(1/k²)", 1983; Sutskever et al., ICML 2013.
    """

    def __init__(self, learning_rate=0.01, momentum=0.9, convention="keras", **kwargs):
        _no_sgd_options(self, kwargs)
        super().__init__(learning_rate, momentum=momentum, nesterov=True, convention=convention, **kwargs)


def _no_sgd_options(opt, kwargs):
    """Momentum and Nesterov fix SGD's other options (use SGD to vary them)."""
    fixed = {k: kwargs[k] for k in ("nesterov", "dampening", "ema") if k in kwargs}
    if fixed:
        opt._unknown_arguments(fixed)
