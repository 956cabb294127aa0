"""Gradient check: analytic gradients (backward) against central differences, in float64.

For an op y = f(x1, ..., xk) and a random upstream gradient u (ones would hide transposes),
the scalar L = Σ u·y has dL/dxi from one backward pass; numerically, each element e of xi gives

    dL/dxi[e] ≈ (L(xi[e] + ε) − L(xi[e] − ε)) / (2ε)

and the two must agree to |analytic − numeric| <= atol + rtol·|numeric|. At a kink (relu at
0, a tie in max or max-pool) the one-sided differences (L(x+ε) − L(x))/ε and (L(x) − L(x−ε))/ε
disagree; such elements have no derivative, are skipped and reported in the result.
`directions=k` checks k random directions v instead (dL·v against (L(x+εv) − L(x−εv))/2ε),
for inputs too large to check element by element.
"""
import numpy as np

from tidu import backend
from tidu.autograd.function import no_grad
from tidu.autograd.tensor import Tensor
from tidu.errors import GradcheckError


class GradcheckResult:
    """What a passing check saw: the largest error per input and the elements at kinks."""

    def __init__(self, max_abs_error, kinks):
        self.max_abs_error, self.kinks = max_abs_error, kinks

    def __bool__(self):
        return True

    def __repr__(self):
        return f"GradcheckResult(max_abs_error={self.max_abs_error}, kinks={self.kinks})"


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
                base = x.data.copy()
                x.data[...] = base + eps * v
                lp = loss()
                x.data[...] = base - eps * v
                lm = loss()
                x.data[...] = base
                num, ana = (lp - lm) / (2 * eps), float((analytic * v).sum())
                err = abs(ana - num)
                if err > atol + rtol * abs(num):
                    raise GradcheckError(
                        f"gradcheck: input {i} of shape {x.shape}: along a random direction the "
                        f"analytic derivative is {ana:.10g}, the numerical one {num:.10g} "
                        f"(difference {err:.3g} > atol {atol} + rtol {rtol} * |numerical|)")
                worst = max(worst, err)
        else:
            l0 = loss()
            a_flat = analytic.reshape(-1)
            for e in range(flat.size):
                old = flat[e].item()
                flat[e] = old + eps
                lp = loss()
                flat[e] = old - eps
                lm = loss()
                flat[e] = old
                num, ana = (lp - lm) / (2 * eps), float(a_flat[e])
                d_plus, d_minus = (lp - l0) / eps, (l0 - lm) / eps
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
