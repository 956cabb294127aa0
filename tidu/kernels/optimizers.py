"""One-pass update kernels through numba: the optional extra `fast` (`pip install tidu[fast]`).

A rule written with NumPy ufuncs makes one pass over the parameters per operation: RMSprop's
    v = ρ·v + (1 − ρ)·g²,   θ = θ − η·g / √(v + ε)     (Keras's form; torch's: / (√v + ε))
is nine passes over θ, g, v and two temporaries. The kernel here makes one: it reads θ, g and
v once and writes θ and v once, doing the same float operations in the same order (each
scalar cast to the parameters' dtype as NumPy casts a Python float), so both paths give the
same bits. Measured on the MNIST MLP (784-512-10, batch 128, 407,050 weights, 2 OpenBLAS
threads): the update goes from ~1.4 ms to ~0.3 ms and a training step is ~1.3× faster.

SGD with momentum (Keras's and torch's forms, with or without Nesterov) has one too: its
rule makes five passes (v *= μ, η·g, v −= that, θ += v). On the LeNet CNN (431,080 weights;
`python bench/spells.py --workload cnn`, AMD EPYC, 2 cores) the update took 0.53 ms of an
11.6 ms step in the host's fast spells and 0.37 with the kernel; in its slow spells 1.2 ms
either way (there reading the arrays costs, not the passes). Adam (Keras's and torch's forms,
not AMSGrad nor the notes' stable form) has one as well: on the LSTM(128) benchmark's 81,674
weights 0.07 ms against the rule's 0.17, on keras.io's convnet's 34,826 0.04 against 0.08 (one
process, AMD EPYC; under 1% of either step). The kernels are single-threaded: numba's thread
pool next to OpenBLAS's (whose workers spin between GEMMs) made the MLP step 2× slower. They
release the GIL, and each takes a second gradient to add as it reads the first: the training
step's two halves update their two shares of the parameters at once, each from the sum of the
halves' gradients (Optimizer.update_in_two).

The NumPy rule stays the reference and the default whenever numba is not installed, the
fast paths are off (tidu.kernels.enabled() False: TIDU_FAST=0 or set_enabled(False)), for
another array backend and for parameters other than float32/float64 (numba has no float16);
an Optimizer asks `update_kernel(name, dtype)`.
"""
import math

import numpy as np

from tidu.kernels.switch import CompiledOnce, njit


def _compile():
    """The kernels, compiled lazily by numba for each dtype they meet ({} without numba)."""
    try:
        import numba  # noqa: F401  (is it installed?)
    except ImportError:
        return {}

    # each kernel's gradient is g, or g + g1 (two: the training step's two halves, added here
    # as NumPy adds two arrays of the dtype, so the same bits as adding them first)
    @njit(nogil=True)
    def rmsprop_keras(theta, g, g1, two, v, rho, one_minus_rho, eps, lr):
        for i in range(theta.size):
            gi = g[i] + g1[i] if two else g[i]
            vi = rho * v[i] + one_minus_rho * (gi * gi)        # v = ρ·v + (1 − ρ)·g²
            v[i] = vi
            theta[i] -= (lr * gi) / math.sqrt(vi + eps)        # θ = θ − η·g / √(v + ε)

    @njit(nogil=True)
    def rmsprop_torch(theta, g, g1, two, v, rho, one_minus_rho, eps, lr):
        for i in range(theta.size):
            gi = g[i] + g1[i] if two else g[i]
            vi = rho * v[i] + one_minus_rho * (gi * gi)        # v = ρ·v + (1 − ρ)·g²
            v[i] = vi
            theta[i] -= (lr * gi) / (math.sqrt(vi) + eps)      # θ = θ − η·g / (√v + ε)

    @njit(nogil=True)
    def sgd_keras(theta, g, g1, two, v, mu, lr, nesterov):
        for i in range(theta.size):
            gi = g[i] + g1[i] if two else g[i]
            vi = v[i] * mu                                     # v = μ·v − η·g
            vi = vi - lr * gi
            v[i] = vi
            if nesterov:
                theta[i] += mu * vi - lr * gi                  # θ = θ + μ·v − η·g
            else:
                theta[i] += vi                                 # θ = θ + v

    @njit(nogil=True)
    def sgd_torch(theta, g, g1, two, b, mu, one_minus_dampening, lr, first, nesterov):
        for i in range(theta.size):
            gi = g[i] + g1[i] if two else g[i]
            if first:
                bi = gi                                        # b = g at the first step
            else:
                bi = b[i] * mu                                 # b = μ·b + (1 − δ)·g
                bi = bi + one_minus_dampening * gi
            b[i] = bi
            if nesterov:
                theta[i] -= lr * (gi + mu * bi)                # θ = θ − η·(g + μ·b)
            else:
                theta[i] -= lr * bi                            # θ = θ − η·b

    @njit(nogil=True)
    def adam(theta, g, g1, two, m, v, b1, one_minus_b1, b2, one_minus_b2, eps, c2, alpha):
        for i in range(theta.size):
            gi = g[i] + g1[i] if two else g[i]
            mi = m[i] * b1                                     # m = β1·m + (1 − β1)·g
            mi = mi + one_minus_b1 * gi
            m[i] = mi
            vi = v[i] * b2                                     # v = β2·v + (1 − β2)·g²
            vi = vi + one_minus_b2 * (gi * gi)
            v[i] = vi
            if c2 != 1:                                        # torch: v̂ = v / (1 − β2^t)
                vi = vi / c2
            theta[i] -= (mi * alpha) / (math.sqrt(vi) + eps)   # θ = θ − α·m / (√v + ε)

    def update(kernel):
        def run(opt, theta, g, state, t, lr, g1=None):
            f = theta.dtype.type
            kernel(theta, g, g if g1 is None else g1, g1 is not None, state["v"], f(opt.rho),
                   f(1 - opt.rho), f(opt.epsilon), f(lr))
        return run

    def run_sgd_keras(opt, theta, g, state, t, lr, g1=None):
        f = theta.dtype.type
        sgd_keras(theta, g, g if g1 is None else g1, g1 is not None, state["v"], f(opt.momentum),
                  f(lr), opt.nesterov)

    def run_sgd_torch(opt, theta, g, state, t, lr, g1=None):
        f = theta.dtype.type
        sgd_torch(theta, g, g if g1 is None else g1, g1 is not None, state["v"], f(opt.momentum),
                  f(1 - opt.dampening), f(lr), t == 1, opt.nesterov)

    def run_adam(torch):
        def run(opt, theta, g, state, t, lr, g1=None):
            f, b1, b2 = theta.dtype.type, opt.beta_1, opt.beta_2
            if torch:        # α = η/(1 − β1^t) on m, and v̂ = v/(1 − β2^t)
                c2, alpha = f(1 - b2**t), f(lr / (1 - b1**t))
            else:            # Keras: α_t = η·√(1 − β2^t)/(1 − β1^t), on v itself
                c2, alpha = f(1), f(lr * math.sqrt(1 - b2**t) / (1 - b1**t))
            adam(theta, g, g if g1 is None else g1, g1 is not None, state["m"], state["v"],
                 f(b1), f(1 - b1), f(b2), f(1 - b2), f(opt.epsilon), c2, alpha)
        return run

    return {"rmsprop_keras": update(rmsprop_keras), "rmsprop_torch": update(rmsprop_torch),
            "sgd_keras": run_sgd_keras, "sgd_torch": run_sgd_torch,
            "adam_keras": run_adam(False), "adam_torch": run_adam(True)}


def update_kernel(name, dtype=np.float32):
    """The one-pass update `name(opt, theta, g, state, t, lr, g1=None)` (the gradient g, or
    g + g1), updating theta and the state in place (1-D contiguous arrays of `dtype`), or
    None: the fast path off, another array backend, a dtype other than float32/float64, or
    numba missing."""
    kernels = _kernels.get(dtype)
    return kernels.get(name) if kernels else None


_kernels = CompiledOnce(_compile)
