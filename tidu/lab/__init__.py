"""The optimizer lab: watch update rules move on functions whose minima are known.

    from tidu import lab
    paths = lab.trajectories(["sgd", "momentum", "adam"], "beale", steps=300)
    lab.plot_trajectories(paths, "beale", "beale.png")

`trajectories` runs each optimizer through `Optimizer.minimize` (the same update rule a model
trains with) from one start; `compare` trains one model with several optimizers from the same
initial weights and plots their loss curves. Command line: `tidu lab ...`, `tidu compare ...`.
"""
import numpy as np

from tidu.lab.functions import FUNCTIONS, TestFunction, get
from tidu.lab.plots import animate_trajectories, plot_trajectories

__all__ = ["FUNCTIONS", "TestFunction", "get", "trajectories", "plot_trajectories",
           "animate_trajectories", "DEFAULT_LEARNING_RATES"]

# Learning rates that make each rule's character visible on each function in a few hundred
# steps (gradient sizes differ by orders of magnitude between the functions).
DEFAULT_LEARNING_RATES = {
    "beale": {"gd": 1e-3, "sgd": 1e-3, "momentum": 1e-3, "nesterov": 1e-3, "adagrad": 0.5,
              "adadelta": 1.0, "rmsprop": 0.01, "adam": 0.05, "amsgrad": 0.05, "nadam": 0.05,
              "adamax": 0.05, "rprop": 0.01, "adaptive_gain": 1e-3, "swats": 0.05},
    "rosenbrock": {"gd": 1e-3, "sgd": 1e-3, "momentum": 1e-3, "nesterov": 1e-3, "adagrad": 0.5,
                   "adadelta": 1.0, "rmsprop": 0.01, "adam": 0.05, "amsgrad": 0.05, "nadam": 0.05,
                   "adamax": 0.05, "rprop": 0.01, "adaptive_gain": 1e-4, "swats": 0.05},
    "saddle": {"gd": 0.05, "sgd": 0.05, "momentum": 0.01, "nesterov": 0.01, "adagrad": 0.1,
               "adadelta": 1.0, "rmsprop": 0.01, "adam": 0.02, "amsgrad": 0.02, "nadam": 0.02,
               "adamax": 0.02, "rprop": 0.01, "adaptive_gain": 0.01, "swats": 0.02},
    "himmelblau": {"gd": 0.01, "sgd": 0.01, "momentum": 0.005, "nesterov": 0.005, "adagrad": 0.5,
                   "adadelta": 1.0, "rmsprop": 0.05, "adam": 0.1, "amsgrad": 0.1, "nadam": 0.1,
                   "adamax": 0.1, "rprop": 0.05, "adaptive_gain": 0.005, "swats": 0.1},
    "quadratic": {"gd": 0.035, "sgd": 0.035, "momentum": 0.01, "nesterov": 0.01, "adagrad": 0.5,
                  "adadelta": 1.0, "rmsprop": 0.05, "adam": 0.1, "amsgrad": 0.1, "nadam": 0.1,
                  "adamax": 0.1, "rprop": 0.05, "adaptive_gain": 0.01, "swats": 0.1},
}


def _make(spec, fn_name, learning_rate):
    from tidu import optimizers

    if isinstance(spec, str):
        opt = optimizers.get(spec)
        lr = learning_rate if learning_rate is not None else \
            DEFAULT_LEARNING_RATES.get(fn_name, {}).get(spec.lower())
        if lr is not None and not opt.requires_closure:
            opt.learning_rate = lr
        return spec, opt
    opt = optimizers.get(spec)
    return type(opt).__name__, opt


def trajectories(optimizers, function, start=None, steps=200, learning_rate=None, stopped=None):
    """Run each optimizer from `start` (default: the function's) for `steps` steps.

    optimizers: names ('sgd', 'adam', 'lbfgs', ...) or Optimizer instances; a first-order method
    named here gets the lab's learning rate for that function, or `learning_rate` when given; a
    closure method (newton, bfgs, lbfgs, coordinate_descent) keeps its own, and one of its steps
    is one step() call (L-BFGS: up to max_iter iterations; coordinate descent: one sweep). Returns
    {label: path}, each path an array (steps + 1, 2) of the points visited (path[0] = start);
    a run that diverges to non-finite values, or whose line search finds the function unbounded
    below along its direction (coordinate descent on the saddle), stops there (its path is
    shorter). `stopped`, a dict if given, gets {label: why} for the runs a line search ended."""
    fn = get(function)
    x0 = np.array(fn.start if start is None else start, dtype=np.float64)
    if x0.shape != (2,):
        raise ValueError(f"lab.trajectories: expected a start point (x, y), got {start!r}")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"lab.trajectories: expected steps to be a positive int, got {steps!r}")
    if isinstance(optimizers, str):
        optimizers = [o for o in optimizers.split(",") if o]
    paths = {}
    for spec in optimizers:
        label, opt = _make(spec, fn.name, learning_rate)

        visited = [x0.copy()]

        def stop(k, x, loss):
            visited.append(np.array(x, dtype=np.float64))
            return not (np.all(np.isfinite(x)) and np.isfinite(loss))

        with np.errstate(over="ignore", invalid="ignore"):
            try:
                path = opt.minimize(fn, x0, grad=fn.gradient, steps=steps, callback=stop).path
            except ValueError as e:
                if "unbounded below" not in str(e):
                    raise
                path = np.array(visited)      # the points before the line search gave up
                if stopped is not None:
                    stopped[label] = str(e)
        finite = np.all(np.isfinite(path), axis=1)
        paths[label] = path[:np.argmin(finite)] if not finite.all() else path
    return paths
