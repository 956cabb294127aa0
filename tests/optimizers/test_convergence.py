"""Every optimizer converges on an ill-conditioned quadratic and on Rosenbrock's valley, within
a budget of steps and a tolerance set per optimizer (first-order methods crawl along the valley;
Newton and the quasi-Newton methods must reach the minimum to high precision)."""
import numpy as np
import pytest

from tidu.optimizers import (ALIASES, AMSGrad, BFGS, GD, LBFGS, SGD, SWATS, AdaGrad, Adadelta, Adagrad,
                             Adam, Adamax, AdaptiveGain, CoordinateDescent, DeltaBarDelta, Momentum, Nadam, Nesterov,
                             Newton, RMSprop, Rprop)
from tidu.optimizers.schedules import CosineDecay, ExponentialDecay

# 0.5·xᵀQx with Q = R·diag(1, 50)·Rᵀ rotated by 30°: condition number 50, coordinates coupled
_c, _s = np.cos(np.pi / 6), np.sin(np.pi / 6)
_R = np.array([[_c, -_s], [_s, _c]])
Q = _R @ np.diag([1.0, 50.0]) @ _R.T


def quadratic(x):
    return 0.5 * x @ Q @ x


def quadratic_grad(x):
    return Q @ x


def rosenbrock(x):
    return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2


def rosenbrock_grad(x):
    return np.array([-2 * (1 - x[0]) - 400 * x[0] * (x[1] - x[0] ** 2), 200 * (x[1] - x[0] ** 2)])


PROBLEMS = {
    "quadratic": (quadratic, quadratic_grad, np.array([-1.5, 1.0]), np.zeros(2)),
    "rosenbrock": (rosenbrock, rosenbrock_grad, np.array([-1.2, 1.0]), np.ones(2)),
}

# name: {problem: (factory, steps, tolerance on max|x − x*| after the last step)}
TABLE = {
    "GD": {"quadratic": (lambda: GD(0.03), 600, 1e-6),
           "rosenbrock": (lambda: GD(0.0015), 2000, 0.3)},
    "SGD": {"quadratic": (lambda: SGD(0.03), 600, 1e-6),
            "rosenbrock": (lambda: SGD(0.0015), 2000, 0.3)},
    "SGD-ema": {"quadratic": (lambda: SGD(0.2, momentum=0.9, ema=True), 600, 1e-6),
                "rosenbrock": (lambda: SGD(0.01, momentum=0.9, ema=True), 2000, 1e-2)},
    "Momentum": {"quadratic": (lambda: Momentum(0.02), 600, 1e-6),
                 "rosenbrock": (lambda: Momentum(0.0015), 2000, 1e-3)},
    "Nesterov": {"quadratic": (lambda: Nesterov(0.02), 600, 1e-6),
                 "rosenbrock": (lambda: Nesterov(0.001), 2000, 1e-2)},
    "Adagrad": {"quadratic": (lambda: Adagrad(1.0), 800, 1e-6),
                "rosenbrock": (lambda: Adagrad(1.0), 2000, 0.2)},
    "AdaGrad": {"quadratic": (lambda: AdaGrad(1.0), 800, 1e-6),
                "rosenbrock": (lambda: AdaGrad(1.0), 2000, 0.2)},
    "Adadelta": {"quadratic": (lambda: Adadelta(CosineDecay(1.0, 2000), rho=0.9, epsilon=1e-6), 2000, 1e-6),
                 "rosenbrock": (lambda: Adadelta(CosineDecay(1.0, 2000), rho=0.9, epsilon=1e-6), 2000, 0.3)},
    "RMSprop": {"quadratic": (lambda: RMSprop(ExponentialDecay(0.01, 300, 0.3)), 1000, 1e-3),
                "rosenbrock": (lambda: RMSprop(0.01, momentum=0.9, centered=True), 2000, 0.1)},
    "Adam": {"quadratic": (lambda: Adam(0.1), 800, 1e-6),
             "rosenbrock": (lambda: Adam(0.05), 2000, 1e-2)},
    "Adam-stable": {"quadratic": (lambda: Adam(0.1, stable=True), 800, 1e-6),
                    "rosenbrock": (lambda: Adam(0.05, stable=True), 2000, 1e-2)},
    "AMSGrad": {"quadratic": (lambda: AMSGrad(0.1), 800, 1e-6),
                "rosenbrock": (lambda: AMSGrad(0.1), 2000, 1e-2)},
    "Adamax": {"quadratic": (lambda: Adamax(0.1), 2000, 1e-6),
               "rosenbrock": (lambda: Adamax(0.1), 3000, 1e-2)},
    "Nadam": {"quadratic": (lambda: Nadam(0.1), 800, 1e-6),
              "rosenbrock": (lambda: Nadam(0.02), 2000, 0.1)},
    "SWATS": {"quadratic": (lambda: SWATS(0.1), 800, 1e-6),
              "rosenbrock": (lambda: SWATS(0.05), 2000, 1e-2)},
    "Rprop": {"quadratic": (lambda: Rprop(0.01), 300, 1e-5),
              "rosenbrock": (lambda: Rprop(0.01), 2000, 0.1)},
    "AdaptiveGain": {"quadratic": (lambda: AdaptiveGain(0.001), 2000, 1e-6),
                     "rosenbrock": (lambda: AdaptiveGain(0.0005), 2000, 0.1)},
    "DeltaBarDelta": {"quadratic": (lambda: DeltaBarDelta(0.0005, kappa=1e-5), 2000, 1e-6),
                      "rosenbrock": (lambda: DeltaBarDelta(0.0005, kappa=1e-5), 2000, 0.1)},
    "Newton": {"quadratic": (lambda: Newton(damping=0.0), 1, 1e-8),          # undamped: one step
               "rosenbrock": (lambda: Newton(), 40, 1e-8)},
    "Newton-CG": {"quadratic": (lambda: Newton(method="cg", damping=0.0), 10, 1e-8),
                  "rosenbrock": (lambda: Newton(method="cg"), 60, 1e-8)},
    "BFGS": {"quadratic": (lambda: BFGS(), 20, 1e-8),
             "rosenbrock": (lambda: BFGS(), 60, 1e-6)},
    "LBFGS": {"quadratic": (lambda: LBFGS(tolerance_change=0.0), 3, 1e-8),
              "rosenbrock": (lambda: LBFGS(tolerance_change=0.0), 5, 1e-6)},
    "CoordinateDescent": {"quadratic": (lambda: CoordinateDescent(), 200, 1e-6),
                          "rosenbrock": (lambda: CoordinateDescent(), 1000, 0.1)},
}


def test_the_table_covers_every_optimizer():
    covered = {type(make()) for row in TABLE.values() for make, _, _ in row.values()}
    assert set(ALIASES.values()) <= covered


@pytest.mark.parametrize("problem", sorted(PROBLEMS))
@pytest.mark.parametrize("name", sorted(TABLE))
def test_converges(name, problem):
    f, grad, x0, x_star = PROBLEMS[problem]
    make, steps, tol = TABLE[name][problem]
    result = make().minimize(f, x0, grad, steps=steps)
    error = np.max(np.abs(result.x - x_star))
    assert error <= tol, f"{name} on {problem}: |x − x*| = {error:.3g} after {steps} steps, budget {tol:g}"
    assert result.fun < f(x0)
    assert result.path.shape == (result.nit + 1, 2)
