"""Per-weight step sizes from running statistics of the gradient: Adagrad, Adadelta, RMSprop,
Adam and its variants (AMSGrad, Adamax, Nadam), SWATS."""
import math

import numpy as np

from tidu.kernels import update_kernel
from tidu.optimizers.base import (Optimizer, check_convention, check_int, check_nonnegative,
                                  check_positive, check_unit_interval)


class Adagrad(Optimizer):
    """Adagrad: each weight's step shrinks with the sum of its squared gradients.

        h = h + g²                          (h starts at initial_accumulator_value)
        θ = θ − η·g / √(h + ε)              convention='keras' (the default, Keras 3)
        θ = θ − η·g / (√h + ε)              convention='torch' (torch.optim.Adagrad, the notes)
    with η = learning_rate, ε = epsilon. Frequently updated weights slow down, rare ones keep
    large steps (the notes: 历史梯度平方和).

    Defaults are Keras's (η = 0.001, h0 = 0.1, ε = 1e-7). Adagrad(learning_rate=η,
    initial_accumulator_value=h0, epsilon=ε, convention='torch') follows
    torch.optim.Adagrad(lr=η, initial_accumulator_value=h0, eps=ε) (its lr_decay=0).
    Reference: Duchi, Hazan & Singer, "Adaptive Subgradient Methods for Online Learning and
    Stochastic Optimization", JMLR 2011.
    """

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7, convention="keras",
                 **kwargs):
        owner = type(self).__name__
        self.convention = check_convention(owner, convention)
        self.initial_accumulator_value = check_nonnegative(owner, "initial_accumulator_value",
                                                           initial_accumulator_value)
        self.epsilon = check_nonnegative(owner, "epsilon", epsilon)
        super().__init__(learning_rate, **kwargs)

    def init_state(self, theta):
        return {"h": np.full_like(theta, self.initial_accumulator_value)}

    def rule(self, theta, g, state, t, lr):
        h = state["h"]
        h += g * g                                          # h = h + g²
        if self.convention == "keras":
            theta -= lr * g / np.sqrt(h + self.epsilon)     # θ = θ − η·g / √(h + ε)
        else:
            theta -= lr * g / (np.sqrt(h) + self.epsilon)   # θ = θ − η·g / (√h + ε)
        return theta, state


class AdaGrad(Adagrad):
    """The notes' AdaGrad class: Adagrad with h starting at 0, η = 0.01, ε = 1e-7, ε outside the root.

        h = h + g·g
        W = W − η·g / (√h + 1e-7)
    `AdaGrad(lr=0.01).update(params, grads)` reproduces the notes' code exactly.
    Reference: 斋藤康毅, 《深度学习入门》 §6.1.5; Duchi et al., JMLR 2011.
    """

    def __init__(self, learning_rate=0.01, epsilon=1e-7, **kwargs):
        if "convention" in kwargs or "initial_accumulator_value" in kwargs:
            self._unknown_arguments({k: kwargs[k] for k in ("convention", "initial_accumulator_value")
                                     if k in kwargs})
        super().__init__(learning_rate, initial_accumulator_value=0.0, epsilon=epsilon, convention="torch",
                         **kwargs)


class Adadelta(Optimizer):
    """Adadelta: Adagrad with a decaying average, and steps in the units of θ.

        E[g²] = ρ·E[g²] + (1 − ρ)·g²
        Δθ = −√(E[Δθ²] + ε) / √(E[g²] + ε) · g
        E[Δθ²] = ρ·E[Δθ²] + (1 − ρ)·Δθ²
        θ = θ + η·Δθ
    with η = learning_rate, ρ = rho, ε = epsilon; both averages start at 0. Keras, torch and the
    paper share this formula, so there is no `convention`; only the defaults differ. Ours are
    Keras's (η = 0.001, ρ = 0.95, ε = 1e-7); torch's are η = 1, ρ = 0.9, ε = 1e-6; the paper has
    no η (η = 1). Adadelta(learning_rate=η, rho=ρ, epsilon=ε) follows
    torch.optim.Adadelta(lr=η, rho=ρ, eps=ε) and keras.optimizers.Adadelta exactly.
    Reference: Zeiler, "ADADELTA: An Adaptive Learning Rate Method", arXiv:1212.5701, 2012.
    """

    def __init__(self, learning_rate=0.001, rho=0.95, epsilon=1e-7, **kwargs):
        owner = type(self).__name__
        self.rho = check_unit_interval(owner, "rho", rho)
        self.epsilon = check_nonnegative(owner, "epsilon", epsilon)
        super().__init__(learning_rate, **kwargs)

    def init_state(self, theta):
        return {"Eg2": np.zeros_like(theta), "Edx2": np.zeros_like(theta)}

    def rule(self, theta, g, state, t, lr):
        rho, eps = self.rho, self.epsilon
        Eg2, Edx2 = state["Eg2"], state["Edx2"]
        Eg2 *= rho                                          # E[g²] = ρ·E[g²] + (1 − ρ)·g²
        Eg2 += (1 - rho) * g * g
        dx = -np.sqrt(Edx2 + eps) / np.sqrt(Eg2 + eps) * g  # Δθ = −√(E[Δθ²] + ε) / √(E[g²] + ε) · g
        Edx2 *= rho                                         # E[Δθ²] = ρ·E[Δθ²] + (1 − ρ)·Δθ²
        Edx2 += (1 - rho) * dx * dx
        theta += lr * dx                                    # θ = θ + η·Δθ
        return theta, state


class RMSprop(Optimizer):
    """RMSprop: divide the gradient by a running root mean square of recent gradients.

        v = ρ·v + (1 − ρ)·g²                        (v starts at 0)
        ḡ = ρ·ḡ + (1 − ρ)·g,  s = v − ḡ²            centered=True (Graves 2013): variance
        s = v                                       centered=False
        d = √(s + ε)                                convention='keras' (the default, Keras 3)
        d = √s + ε                                  convention='torch' (torch.optim.RMSprop)
        without momentum:  θ = θ − η·g / d
        with momentum μ, convention='keras':  b = μ·b + η·g / d;  θ = θ − b
        with momentum μ, convention='torch':  b = μ·b + g / d;    θ = θ − η·b
    with η = learning_rate, ρ = rho, ε = epsilon; b starts at 0. The two momentum forms agree for
    a constant η. Defaults are Keras's (η = 0.001, ρ = 0.9, ε = 1e-7). RMSprop(learning_rate=η,
    rho=α, momentum=μ, epsilon=ε, centered=c, convention='torch') follows
    torch.optim.RMSprop(lr=η, alpha=α, eps=ε, momentum=μ, centered=c).
    With numba installed (the extra `fast`), the plain form (not centered, no momentum) of either
    convention runs as one fused pass with the same bits (tidu.kernels.optimizers).
    Reference: Tieleman & Hinton, Coursera "Neural Networks for Machine Learning", lecture 6.5,
    2012; Graves, "Generating Sequences With Recurrent Neural Networks", arXiv:1308.0850, 2013.
    """

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False,
                 convention="keras", **kwargs):
        owner = type(self).__name__
        self.convention = check_convention(owner, convention)
        self.rho = check_unit_interval(owner, "rho", rho)
        self.momentum = check_unit_interval(owner, "momentum", momentum)
        self.epsilon = check_nonnegative(owner, "epsilon", epsilon)
        self.centered = bool(centered)
        super().__init__(learning_rate, **kwargs)

    def init_state(self, theta):
        state = {"v": np.zeros_like(theta)}
        if self.centered:
            state["g_avg"] = np.zeros_like(theta)
        if self.momentum:
            state["b"] = np.zeros_like(theta)
        return state

    def rule(self, theta, g, state, t, lr):
        rho, eps, keras = self.rho, self.epsilon, self.convention == "keras"
        v = state["v"]
        work = np.square(g)                                 # one scratch array: (1 − ρ)·g², then d
        work *= 1 - rho
        v *= rho                                            # v = ρ·v + (1 − ρ)·g²
        v += work
        if self.centered:
            g_avg = state["g_avg"]
            g_avg *= rho                                    # ḡ = ρ·ḡ + (1 − ρ)·g
            g_avg += (1 - rho) * g
            np.square(g_avg, out=work)
            d = np.subtract(v, work, out=work)              # s = v − ḡ²
        else:
            d = v                                           # s = v (read, not written, below)
        if keras:
            d = np.add(d, eps, out=work)                    # d = √(s + ε)
            np.sqrt(d, out=d)
        else:
            d = np.sqrt(d, out=work)                        # d = √s + ε
            d += eps
        step = lr * g if keras or not self.momentum else g.copy()
        step /= d                                           # η·g / d   (torch momentum: g / d)
        if self.momentum:
            b = state["b"]
            b *= self.momentum                              # b = μ·b + η·g / d   (torch: + g / d)
            b += step
            step = b if keras else lr * b
        theta -= step                                       # θ = θ − η·g/d   (or θ − b, θ − η·b)
        return theta, state

    def fused(self, dtype=np.float32):
        """The plain form (not centered, no momentum) in one pass: tidu.kernels.optimizers; None
        for a subclass with a rule of its own."""
        if self.centered or self.momentum or type(self).rule is not RMSprop.rule:
            return None
        return update_kernel(f"rmsprop_{self.convention}", dtype)


def _series(cache, key, factor, t):
    """s_t of the recurrence s_k = factor(k)·s_{k−1} (+ 1 when key says 'sum'), cached by t so
    a step costs O(1); recomputed from k = 1 on a jump (a resumed run gets the same bits)."""
    kind = key[0]
    t0, s = cache.get(key, (0, 0.0 if kind == "sum" else 1.0))
    if t0 > t:
        t0, s = 0, 0.0 if kind == "sum" else 1.0
    for k in range(t0 + 1, t + 1):
        s = factor(k) * s + 1.0 if kind == "sum" else factor(k) * s
    cache[key] = (t, s)
    return s


def _set_betas_and_epsilon(opt, beta_1, beta_2, epsilon):
    """Check and store the Adam family's β1, β2 (each in [0, 1)) and ε >= 0."""
    owner = type(opt).__name__
    opt.beta_1 = check_unit_interval(owner, "beta_1", beta_1)
    opt.beta_2 = check_unit_interval(owner, "beta_2", beta_2)
    opt.epsilon = check_nonnegative(owner, "epsilon", epsilon)


class Adam(Optimizer):
    """Adam: per-weight step sizes from running moments of the gradient.

    For each parameter θ with gradient g, at step t = 1, 2, ...
        m = β1·m + (1 − β1)·g                      first moment (mean of g)
        v = β2·v + (1 − β2)·g²                     second moment (uncentred variance)
        m̂ = m / (1 − β1^t),  v̂ = v / (1 − β2^t)     bias corrections (m, v start at 0)
        θ = θ − α_t·m / (√v + ε),  α_t = η·√(1 − β2^t)/(1 − β1^t)   convention='keras' (default)
        θ = θ − η·m̂ / (√v̂ + ε)                     convention='torch' (paper's Algorithm 1)
    with η = learning_rate, β1 = beta_1, β2 = beta_2, ε = epsilon. The two differ only in where
    ε sits: Keras adds it to the uncorrected √v (its ε is the paper's ε·√(1 − β2^t)), torch.optim
    and the paper to √v̂. Adam(learning_rate=η, beta_1=β1, beta_2=β2, epsilon=ε,
    convention='torch') follows torch.optim.Adam(lr=η, betas=(β1, β2), eps=ε); with
    weight_decay=λ it follows torch.optim.AdamW(weight_decay=λ) (Keras's AdamW).

    amsgrad=True is AMSGrad (see that class). stable=True is the notes' reformulation, which
    never forms β^t: the corrections become running sums,
        d = β2·d + 1,  s = β2·s + g²,  v̂ = s / d      (d_t = Σ_{i<t} β2^i = (1 − β2^t)/(1 − β2))
        c = β1·c + 1,  r = β1·r + g,   m̂ = r / c
        θ = θ − η·m̂ / (√v̂ + ε/√((1 − β2)·d))         convention='keras'
        θ = θ − η·m̂ / (√v̂ + ε)                        convention='torch'
    the same trajectory to rounding as the plain form of the same convention. (The notes' last
    line, θ = θ − η·m̂·√((1 + ε)/(s/d + ε)), moves ε under the root; we keep ε outside so the
    forms coincide.)
    Reference: Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015.
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False,
                 stable=False, convention="keras", **kwargs):
        _set_betas_and_epsilon(self, beta_1, beta_2, epsilon)
        self.convention = check_convention(type(self).__name__, convention)
        self.amsgrad, self.stable = bool(amsgrad), bool(stable)
        super().__init__(learning_rate, **kwargs)

    def fused(self, dtype=np.float32):
        """The plain form (no AMSGrad, not the stable reformulation), either convention, in one
        pass with the rule's float operations: tidu.kernels.optimizers."""
        if self.amsgrad or self.stable or type(self).rule is not Adam.rule:
            return None
        return update_kernel(f"adam_{self.convention}", dtype)

    def init_state(self, theta):
        state = {"m": np.zeros_like(theta), "v": np.zeros_like(theta)}
        if self.amsgrad:
            state["v_max"] = np.zeros_like(theta)
        return state

    def rule(self, theta, g, state, t, lr):
        b1, b2, eps = self.beta_1, self.beta_2, self.epsilon
        m, v = state["m"], state["v"]
        if self.stable:
            return self._stable_rule(theta, g, state, t, lr)
        work = np.multiply(g, 1 - b1)                       # one scratch array: (1 − β1)·g, ...
        m *= b1                                             # m = β1·m + (1 − β1)·g
        m += work
        np.square(g, out=work)                              # ... (1 − β2)·g², then the denominator
        work *= 1 - b2
        v *= b2                                             # v = β2·v + (1 − β2)·g²
        v += work
        if self.amsgrad:
            np.maximum(state["v_max"], v, out=state["v_max"])   # v_max = max(v_max, v)
            v = state["v_max"]
        if self.convention == "keras":
            d = np.sqrt(v, out=work)
            d += eps                                        # √v + ε
            step = m * (lr * math.sqrt(1 - b2**t) / (1 - b1**t))   # α_t·m
        else:
            v_hat = np.divide(v, 1 - b2**t, out=work)       # v̂ = v / (1 − β2^t)
            d = np.sqrt(v_hat, out=v_hat)
            d += eps                                        # √v̂ + ε
            step = m * (lr / (1 - b1**t))                   # η·m̂,  m̂ = m / (1 − β1^t)
        step /= d
        theta -= step                                       # θ = θ − α_t·m/(√v + ε)  or  η·m̂/(√v̂ + ε)
        return theta, state

    def _stable_rule(self, theta, g, state, t, lr):
        b1, b2, eps = self.beta_1, self.beta_2, self.epsilon
        r, s = state["m"], state["v"]           # here m holds r = Σ β1^i g, v holds s = Σ β2^i g²
        c = _series(self._cache, ("sum", b1), lambda k: b1, t)   # c = β1·c + 1
        d = _series(self._cache, ("sum", b2), lambda k: b2, t)   # d = β2·d + 1
        r *= b1                                             # r = β1·r + g
        r += g
        s *= b2                                             # s = β2·s + g²
        s += np.square(g)
        if self.amsgrad:
            np.maximum(state["v_max"], s, out=state["v_max"])
            s = state["v_max"]
        if self.convention == "keras":
            eps = eps / math.sqrt((1 - b2) * d)             # ε/√((1 − β2)·d) = ε/√(1 − β2^t)
        v_hat = s / d                                       # v̂ = s / d
        denom = np.sqrt(v_hat, out=v_hat)
        denom += eps
        step = r * (lr / c)                                 # η·m̂,  m̂ = r / c
        step /= denom
        theta -= step
        return theta, state


class AMSGrad(Adam):
    """AMSGrad: Adam whose second moment never decreases.

        m = β1·m + (1 − β1)·g
        v = β2·v + (1 − β2)·g²
        v_max = max(v_max, v)                      (elementwise; v_max starts at 0)
        θ = θ − α_t·m / (√v_max + ε),  α_t = η·√(1 − β2^t)/(1 − β1^t)      convention='keras'
        θ = θ − η·m̂ / (√(v_max / (1 − β2^t)) + ε),  m̂ = m / (1 − β1^t)    convention='torch'
    The maximum is taken of the uncorrected v and then corrected, as in torch.optim.Adam(amsgrad=
    True) and Keras (the paper has no bias correction). AMSGrad(learning_rate=η, beta_1=β1,
    beta_2=β2, epsilon=ε, convention='torch') follows torch.optim.Adam(lr=η, betas=(β1, β2),
    eps=ε, amsgrad=True); with the default convention it is keras.optimizers.Adam(amsgrad=True).
    (The notes' form, v_t = max(β2·v_{t−1} + (1 − β2)·g², v_{t−1}), also carries the maximum
    into the next average: the paper's Algorithm 2 keeps the plain average, as here.)
    Reference: Reddi, Kale & Kumar, "On the Convergence of Adam and Beyond", ICLR 2018.
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, convention="keras",
                 **kwargs):
        super().__init__(learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, amsgrad=True,
                         convention=convention, **kwargs)


class Adamax(Optimizer):
    """Adamax: Adam with the infinity norm in place of the second moment.

        m = β1·m + (1 − β1)·g                      (m, u start at 0)
        u = max(β2·u, |g|),      θ = θ − η / (1 − β1^t) · m / (u + ε)     convention='keras'
        u = max(β2·u, |g| + ε),  θ = θ − η / (1 − β1^t) · m / u           convention='torch'
    with η = learning_rate, β1 = beta_1, β2 = beta_2, ε = epsilon (the paper has no ε).
    Adamax(learning_rate=η, beta_1=β1, beta_2=β2, epsilon=ε, convention='torch') follows
    torch.optim.Adamax(lr=η, betas=(β1, β2), eps=ε).
    Reference: Kingma & Ba, ICLR 2015, section 7.1.
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, convention="keras",
                 **kwargs):
        _set_betas_and_epsilon(self, beta_1, beta_2, epsilon)
        self.convention = check_convention(type(self).__name__, convention)
        super().__init__(learning_rate, **kwargs)

    def init_state(self, theta):
        return {"m": np.zeros_like(theta), "u": np.zeros_like(theta)}

    def rule(self, theta, g, state, t, lr):
        b1, b2 = self.beta_1, self.beta_2
        m, u = state["m"], state["u"]
        m *= b1                                             # m = β1·m + (1 − β1)·g
        m += (1 - b1) * g
        u *= b2
        if self.convention == "keras":
            np.maximum(u, np.abs(g), out=u)                 # u = max(β2·u, |g|)
            theta -= (lr / (1 - b1**t)) * m / (u + self.epsilon)   # θ = θ − η/(1 − β1^t)·m/(u + ε)
        else:
            np.maximum(u, np.abs(g) + self.epsilon, out=u)  # u = max(β2·u, |g| + ε)
            theta -= (lr / (1 - b1**t)) * m / u             # θ = θ − η/(1 − β1^t)·m/u
        return theta, state


class Nadam(Optimizer):
    """Nadam: Adam with Nesterov momentum and Dozat's momentum schedule.

        μ_t = β1·(1 − ½·0.96^t)                    convention='keras' (default; μ_t → β1 fast)
        μ_t = β1·(1 − ½·0.96^(0.004·t))            convention='torch' (momentum_decay=0.004)
        m = β1·m + (1 − β1)·g,  v = β2·v + (1 − β2)·g²
        m̂ = μ_{t+1}·m / (1 − Π_{i<=t+1} μ_i) + (1 − μ_t)·g / (1 − Π_{i<=t} μ_i)
        v̂ = v / (1 − β2^t)
        θ = θ − η·m̂ / (√v̂ + ε)
    with η = learning_rate, β1 = beta_1, β2 = beta_2, ε = epsilon. Only the schedule differs:
    Keras's μ_t is Dozat's with decay 0.96 per step; torch's decays 250 times more slowly.
    Nadam(learning_rate=η, beta_1=β1, beta_2=β2, epsilon=ε, convention='torch') follows
    torch.optim.NAdam(lr=η, betas=(β1, β2), eps=ε).
    Reference: Dozat, "Incorporating Nesterov Momentum into Adam", ICLR 2016 workshop.
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, convention="keras",
                 **kwargs):
        _set_betas_and_epsilon(self, beta_1, beta_2, epsilon)
        self.convention = check_convention(type(self).__name__, convention)
        super().__init__(learning_rate, **kwargs)

    def init_state(self, theta):
        return {"m": np.zeros_like(theta), "v": np.zeros_like(theta)}

    def _mu(self, k):
        if self.convention == "keras":
            return self.beta_1 * (1.0 - 0.5 * 0.96 ** k)            # μ_k = β1·(1 − ½·0.96^k)
        return self.beta_1 * (1.0 - 0.5 * 0.96 ** (k * 0.004))      # μ_k = β1·(1 − ½·0.96^(0.004·k))

    def rule(self, theta, g, state, t, lr):
        b1, b2 = self.beta_1, self.beta_2
        mu, mu_next = self._mu(t), self._mu(t + 1)
        prod = _series(self._cache, ("prod", b1), self._mu, t)      # Π_{i<=t} μ_i
        m, v = state["m"], state["v"]
        m *= b1                                             # m = β1·m + (1 − β1)·g
        m += (1 - b1) * g
        v *= b2                                             # v = β2·v + (1 − β2)·g²
        v += (1 - b2) * np.square(g)
        d = np.sqrt(v / (1 - b2**t))                        # √v̂ + ε
        d += self.epsilon
        theta -= (lr * (1 - mu) / (1 - prod)) * g / d       # the current-gradient half of m̂
        theta -= (lr * mu_next / (1 - prod * mu_next)) * m / d   # the momentum half of m̂
        return theta, state


class SWATS(Optimizer):
    """SWATS: start with Adam, switch to SGD once Adam's step projects to a settled SGD step size.

    Adam phase, at step k (m, a start at 0; λ, the running estimate, at 0):
        m = β1·m + (1 − β1)·g
        a = β2·a + (1 − β2)·g²
        p = −η·√(1 − β2^k)/(1 − β1^k) · m / (√a + ε)          Adam's step
        θ = θ + p
        if pᵀg ≠ 0:
            γ = pᵀp / (−pᵀg)                                   SGD step size whose projection is p
            λ = β2·λ + (1 − β2)·γ
            if k > 1 and |λ/(1 − β2^k) − γ| < τ:  switch, Λ = λ/(1 − β2^k)
    SGD phase (momentum β1, v starts at 0 at the switch):
        v = β1·v + g
        θ = θ − (1 − β1)·Λ·(η/η_s)·v
    with η = learning_rate (η_s its value at the switch, so a schedule keeps scaling the SGD step,
    as the paper decays Λ with η), β1 = beta_1, β2 = beta_2, ε = epsilon, τ = switch_tolerance
    (None: ε, the paper's choice). Dot products run over all parameters at once (the paper's
    global variant, accumulated in float64), so this rule sees the flat vector.
    The paper's τ = 1e-9 is an absolute tolerance on a step size of the order of η: it holds
    where γ is constant (a linear loss: the switch comes at k = 2), but as soon as the curvature
    changes γ drifts by more than that and the switch does not come (on a rotated quadratic with
    η = 1e-3 the closest is 7.4e-9, at k = 2); raise τ (e.g. 1e-5) or use switch_step/switch_epoch.
    switch_step=s / switch_epoch=e switch for good after step s / at the start of epoch e (the
    training loop reports epochs through `on_epoch_begin`), with Λ = sgd_learning_rate if given,
    else the current estimate λ/(1 − β2^k) when there is one, else η.
    Reference: Keskar & Socher, "Improving Generalization Performance by Switching from Adam to
    SGD", arXiv:1712.07628, 2017 (Algorithm 1).
    """

    elementwise = False

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-9, switch_step=None,
                 switch_epoch=None, sgd_learning_rate=None, switch_tolerance=None, **kwargs):
        _set_betas_and_epsilon(self, beta_1, beta_2, epsilon)
        owner = type(self).__name__
        self.switch_tolerance = (self.epsilon if switch_tolerance is None
                                 else check_positive(owner, "switch_tolerance", switch_tolerance))
        self.switch_step = None if switch_step is None else check_int(owner, "switch_step", switch_step, 0)
        self.switch_epoch = None if switch_epoch is None else check_int(owner, "switch_epoch", switch_epoch, 0)
        self.sgd_learning_rate = (None if sgd_learning_rate is None
                                  else check_positive(owner, "sgd_learning_rate", sgd_learning_rate))
        super().__init__(learning_rate, **kwargs)

    def init_state(self, theta):
        return {"m": np.zeros_like(theta), "a": np.zeros_like(theta), "v": np.zeros_like(theta),
                "phase": np.array(0.0), "lam": np.array(0.0), "Lam": np.array(0.0), "lr_switch": np.array(0.0)}

    @property
    def switched(self):
        """Whether the SGD phase has started."""
        return bool(self._globals.get("phase", 0.0))

    def rule(self, theta, g, state, t, lr):
        b1, b2, eps = self.beta_1, self.beta_2, self.epsilon
        if state["phase"] == 1:
            v = state["v"]
            v *= b1                                         # v = β1·v + g
            v += g
            scale = float(state["Lam"]) * (lr / float(state["lr_switch"]) if float(state["lr_switch"]) else 1.0)
            theta -= ((1 - b1) * scale) * v                # θ = θ − (1 − β1)·Λ·v
            return theta, state
        if (self.switch_step is not None and t > self.switch_step) or \
                (self.switch_epoch is not None and self.epoch >= self.switch_epoch):
            Lam = self.sgd_learning_rate or (float(state["lam"]) / (1 - b2**(t - 1)) if t > 1 and state["lam"]
                                             else lr)
            new = dict(state, phase=1.0, Lam=Lam, lr_switch=lr)
            new["v"][...] = 0
            return self.rule(theta, g, new, t, lr)
        m, a = state["m"], state["a"]
        m *= b1                                             # m = β1·m + (1 − β1)·g
        m += (1 - b1) * g
        a *= b2                                             # a = β2·a + (1 − β2)·g²
        a += (1 - b2) * np.square(g)
        p = m / (np.sqrt(a) + eps)                          # p = −η·√(1 − β2^k)/(1 − β1^k)·m/(√a + ε)
        p *= -lr * math.sqrt(1 - b2**t) / (1 - b1**t)
        theta += p                                          # θ = θ + p
        new = dict(state)
        p64 = p.astype(np.float64, copy=False)              # dot products accumulated in float64
        pg = float(np.dot(p64, g.astype(np.float64, copy=False)))
        if pg != 0:
            gamma = float(np.dot(p64, p64)) / -pg           # γ = pᵀp / (−pᵀg)
            lam = b2 * float(state["lam"]) + (1 - b2) * gamma   # λ = β2·λ + (1 − β2)·γ
            new["lam"] = lam
            if t > 1 and abs(lam / (1 - b2**t) - gamma) < self.switch_tolerance:
                new.update(phase=1.0, Lam=lam / (1 - b2**t), lr_switch=lr)
                new["v"][...] = 0
        return theta, new
