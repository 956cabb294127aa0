"""The closure methods' view of a problem, and `minimize` for a plain function.

`_Problem` sees the closure (see Optimizer.step for its convention) as a function of one flat
float64 vector x of all the parameters, in the one flat layout (`tidu.autograd.flat.FlatView`):
    problem.get() -> x          problem.set(x)          problem(x) -> (loss, ∇loss as a flat vector)
`minimize(opt, f, x0, ...)` drives any optimizer on a function of one NumPy vector (the lab).
"""
import contextlib

import numpy as np

from tidu._checks import check_int
from tidu.autograd.flat import FlatView
from tidu.autograd.gradcheck import numerical_gradient
from tidu.autograd.tensor import Tensor


class MinimizeResult:
    """What `Optimizer.minimize` found.

    x: the final point.  fun: f(x).  path: the points visited, (steps + 1, *x.shape), path[0] = x0.
    losses: f at each step's starting point (losses[k] = f(path[k])).  nit: steps taken.
    nfev: evaluations of f (with its gradient).  optimizer: the optimizer copy that ran, with its state.
    """

    def __init__(self, x, fun, path, losses, nit, nfev, optimizer):
        self.x, self.fun, self.path, self.losses = x, fun, path, losses
        self.nit, self.nfev, self.optimizer = nit, nfev, optimizer

    def __repr__(self):
        return (f"MinimizeResult(fun={self.fun!r}, nit={self.nit}, nfev={self.nfev}, "
                f"x={np.array2string(np.asarray(self.x), precision=6, threshold=8)})")


class _Problem:
    """The closure seen as a function of one flat float64 vector x of all the parameters."""

    def __init__(self, opt, closure, params):
        self.opt, self.closure, self.params = opt, closure, params
        self.tensors = isinstance(params[0], Tensor)
        self.flat = FlatView(params)
        self.n = self.flat.size
        self.evals = 0

    def get(self):
        """The parameters as a new flat float64 vector."""
        return self.flat.get(dtype=np.float64)

    def set(self, x):
        """Write the flat vector x into the parameters, in place (cast to their dtype)."""
        self.flat.set(x)

    def __call__(self, x=None):
        """(loss, flat float64 gradient) at x (at the current parameters when x is None)."""
        if x is not None:
            self.set(x)
        loss, grads = self.opt._evaluate(self.closure, self.params)
        self.evals += 1
        return loss, self.flat.gather(grads, dtype=np.float64)

    @contextlib.contextmanager
    def float64(self):
        """Context: Parameters hold float64 copies of their data meanwhile (finite differences
        in double precision); the values are written back to the original arrays at the end."""
        saved = [p.data for p in self.params] if self.tensors else []
        for p, a in zip(self.params, saved):
            p.data = a.astype(np.float64)
        try:
            yield
        finally:
            for p, a in zip(self.params, saved):
                a[...] = p.data
                p.data = a


def minimize(opt, f, x0, grad=None, steps=100, callback=None, gtol=None):
    """Optimizer.minimize: run a fresh copy of `opt` on f from x0 (see there)."""
    check_int(type(opt).__name__, "steps", steps, minimum=0)
    x = np.array(x0, dtype=np.float64, copy=True)
    if grad is None:
        grad = lambda z: numerical_gradient(f, z)  # noqa: E731
    opt = opt._fresh()
    counter = {"n": 0, "g": None}

    def closure():
        counter["n"] += 1
        g = np.asarray(grad(x), dtype=np.float64)
        counter["g"] = g
        return float(f(x)), [g]

    path, losses, k = [x.copy()], [], 0
    for k in range(1, steps + 1):
        loss = opt.step(closure, params=[x])
        losses.append(loss)
        path.append(x.copy())
        if gtol is not None and counter["g"] is not None and np.max(np.abs(counter["g"])) <= gtol:
            break
        if callback is not None and callback(k, x, loss):
            break
    return MinimizeResult(x, float(f(x)), np.array(path), np.array(losses), k, counter["n"], opt)
