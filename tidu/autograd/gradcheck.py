"""Gradient check: analytic gradients (backward) against central differences, in float64.

For an op y = f(x1, ..., xk) and a random upstream gradient u (ones would hide transposes),
the scalar L = Σ u·y has dL/dxi from one backward pass; numerically, each element e of xi gives

    dL/dxi[e] ≈ (L(xi[e] + ε) − L(xi[e] − ε)) / (2ε)

and the two must agree to |analytic − numeric| <= atol + rtol·|numeric|. At a kink (relu at
0, a tie in max or max-pool) the one-sided differences (L(x+ε) − L(x))/ε and (L(x) − L(x−ε))/ε
disagree; such elements have no derivative, are skipped and reported in the result.
`directions=k` checks k random directions v instead (dL·v against (L(x+εv) − L(x−εv))/2ε),
for inputs too large to check element by element.

`numerical_gradient(f, x)` is the one central-difference gradient of the package (the optimizers'
`minimize` without a gradient, the lab, and the element-by-element check here use it).
"""
import numpy as np

from tidu import backend
from tidu.autograd.function import no_grad
from tidu.autograd.tensor import Tensor
from tidu.errors import GradcheckError


def numerical_gradient(f, x, h=None, one_sided=False):
    """Central differences in float64: ∂f/∂x_i ≈ (f(x + h_i e_i) − f(x − h_i e_i)) / 2h_i.

    h_i = ∛ε·max(1, |x_i|) ≈ 6e-6·max(1, |x_i|) by default, balancing the truncation error O(h²)
    against the rounding error O(ε/h); a number h gives h_i = h. f(z) -> float is called with a
    float64 array shaped like x (the same array each time, nudged in place). With one_sided=True
    also returns the one-sided differences (f(x + h_i e_i) − f(x)) / h_i and (f(x) − f(x − h_i e_i)) / h_i,
    which disagree at a kink: (g, forward, backward).
    """
    x = np.array(backend.to_numpy(x) if hasattr(x, "dtype") else x, dtype=np.float64)
    g, fwd, bwd = np.empty_like(x), np.empty_like(x), np.empty_like(x)
    flat = x.reshape(-1)
    f0 = float(f(x)) if one_sided else None
    cbrt_eps = np.cbrt(np.finfo(np.float64).eps)
    for i in range(flat.size):
        xi = flat[i]
        hi = cbrt_eps * max(1.0, abs(xi)) if h is None else h
        flat[i] = xi + hi
        fp = float(f(x))
        flat[i] = xi - hi
        fm = float(f(x))
        flat[i] = xi
        g.flat[i] = (fp - fm) / (2 * hi)
        if one_sided:
            fwd.flat[i], bwd.flat[i] = (fp - f0) / hi, (f0 - fm) / hi
    return (g, fwd, bwd) if one_sided else g


class GradcheckResult:
    """What a passing check saw: the largest error per input and the elements at kinks."""

    def __init__(self, max_abs_error, kinks):
        self.max_abs_error, self.kinks = max_abs_error, kinks

    def __bool__(self):
        return True

    def __repr__(self):
        return f"GradcheckResult(max_abs_error={self.max_abs_error}, kinks={self.kinks})"


def directional_derivative(f, data, v, eps):
    """(f(x + εv) − f(x − εv)) / 2ε for the array `data` (nudged in place, restored after):
    the central difference of f along direction v, ≈ ∇f·v with error O(ε²)."""
    base = data.copy()
    try:
        data[...] = base + eps * v
        lp = f()
        data[...] = base - eps * v
        lm = f()
    finally:
        data[...] = base
    return (lp - lm) / (2 * eps)


def gradcheck(fn, *inputs, eps=1e-6, atol=1e-5, rtol=1e-4, seed=0, directions=None, check=None):
    """Check the gradients of `fn(*inputs)` (a Tensor) with respect to its float inputs.

    inputs: arrays or Tensors; float ones are checked (all, or those whose index is in `check`),
    in float64; others (int indices, masks) are passed through. Returns a GradcheckResult; raises
    GradcheckError naming the input and element that disagree.
    """
    rng = np.random.default_rng(seed)
    xs = []
    for x in inputs:
        a = x.data if isinstance(x, Tensor) else x
        arr = backend.to_numpy(a) if hasattr(a, "dtype") else np.asarray(a)
        if arr.dtype.kind == "f":
            xs.append(Tensor(backend.as_array(arr.astype(np.float64)), requires_grad=True))
        else:
            xs.append(x)
    checked = [i for i, x in enumerate(xs) if isinstance(x, Tensor) and x.requires_grad
               and (check is None or i in check)]
    if not checked:
        raise ValueError("gradcheck: expected at least one floating-point input to check, got none")
    for i, x in enumerate(xs):
        if isinstance(x, Tensor) and i not in checked:
            x.requires_grad = False

    y = fn(*xs)
    if not isinstance(y, Tensor):
        raise TypeError(f"gradcheck: expected fn to return a Tensor, got {type(y).__name__}")
    if y.dtype != np.float64:
        raise TypeError(f"gradcheck: fn returned dtype {y.dtype} for float64 inputs; an op casts to "
                        f"a lower precision (a float32 constant or buffer?)")
    u = backend.as_array(rng.standard_normal(y.shape))
    if not y.requires_grad:
        raise GradcheckError("gradcheck: the output does not depend on any checked input "
                             "(it does not require grad)")
    y.backward(u)

    def loss():
        with no_grad():
            return float((fn(*xs).data * u).sum())

    max_err, kinks = {}, {}
    for i in checked:
        x = xs[i]
        analytic = x.grad if x.grad is not None else backend.xp.zeros_like(x.data)
        flat = x.data.reshape(-1)  # a view: nudging it nudges the input
        if x.data.size and not np.shares_memory(flat, x.data):
            raise RuntimeError("gradcheck: could not take a flat view of the input")
        worst, kinks[i] = 0.0, []
        if directions:
            for _ in range(directions):
                v = backend.as_array(rng.standard_normal(x.shape))
                num = directional_derivative(loss, x.data, v, eps)
                ana = float((analytic * v).sum())
                err = abs(ana - num)
                if err > atol + rtol * abs(num):
                    raise GradcheckError(
                        f"gradcheck: input {i} of shape {x.shape}: along a random direction the "
                        f"analytic derivative is {ana:.10g}, the numerical one {num:.10g} "
                        f"(difference {err:.3g} > atol {atol} + rtol {rtol} * |numerical|)")
                worst = max(worst, err)
        else:
            base = x.data.copy()

            def loss_at(z, x=x):
                x.data[...] = backend.as_array(z)
                return loss()

            num_all, fwd, bwd = numerical_gradient(loss_at, base, h=eps, one_sided=True)
            x.data[...] = base
            a_flat = backend.to_numpy(analytic).reshape(-1)
            for e in range(flat.size):
                num, ana = float(num_all.flat[e]), float(a_flat[e])
                d_plus, d_minus = float(fwd.flat[e]), float(bwd.flat[e])
                if abs(d_plus - d_minus) > 1e-3 * (1 + abs(num)):
                    kinks[i].append(np.unravel_index(e, x.shape))
                    continue
                err = abs(ana - num)
                if err > atol + rtol * abs(num):
                    idx = tuple(int(k) for k in np.unravel_index(e, x.shape))
                    raise GradcheckError(
                        f"gradcheck: input {i} of shape {x.shape}, element {idx}: analytic "
                        f"{ana:.10g}, numerical {num:.10g} (difference {err:.3g} > atol {atol} "
                        f"+ rtol {rtol} * |numerical|)")
                worst = max(worst, err)
            if flat.size and len(kinks[i]) > flat.size // 2:
                raise GradcheckError(f"gradcheck: input {i}: {len(kinks[i])} of {flat.size} elements "
                                     f"sit at kinks; choose inputs away from them")
        max_err[i] = worst
    return GradcheckResult(max_err, {i: k for i, k in kinks.items() if k})
