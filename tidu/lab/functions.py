"""Two-dimensional test functions for watching optimizers move, with their known minima.

Each function takes x and y as NumPy arrays (so a whole grid evaluates at once) and has its
gradient written out by hand:

    beale        (1.5 − x + xy)² + (2.25 − x + xy²)² + (2.625 − x + xy³)²     min 0 at (3, 0.5)
    rosenbrock   (1 − x)² + 100 (y − x²)²   the 'long valley'                   min 0 at (1, 1)
    saddle       x² − y²                    a saddle point at (0, 0), no minimum
    himmelblau   (x² + y − 11)² + (x + y² − 7)²                 min 0 at four points
    quadratic    ½ (x² + κ y²), κ = 50      ill-conditioned bowl                min 0 at (0, 0)
"""
import numpy as np


class TestFunction:
    """f(x, y), its gradient, its minima, a default start and a plotting window."""

    __test__ = False  # not a pytest class

    def __init__(self, name, f, grad, minima, start, xlim, ylim, log_levels=True):
        self.name, self._f, self._grad = name, f, grad
        self.minima, self.start, self.xlim, self.ylim = minima, start, xlim, ylim
        self.log_levels = log_levels

    def __call__(self, p):
        """f at a point p = (x, y) (or arrays x, y stacked on the first axis)."""
        return self._f(p[0], p[1])

    def gradient(self, p):
        gx, gy = self._grad(p[0], p[1])
        return np.array([gx, gy], dtype=np.asarray(p).dtype if np.asarray(p).dtype.kind == "f" else float)

    def __repr__(self):
        return f"TestFunction({self.name!r}, minima={self.minima})"


def _beale(x, y):
    return (1.5 - x + x * y) ** 2 + (2.25 - x + x * y ** 2) ** 2 + (2.625 - x + x * y ** 3) ** 2


def _beale_grad(x, y):
    a, b, c = 1.5 - x + x * y, 2.25 - x + x * y ** 2, 2.625 - x + x * y ** 3
    return (2 * a * (y - 1) + 2 * b * (y ** 2 - 1) + 2 * c * (y ** 3 - 1),
            2 * a * x + 2 * b * 2 * x * y + 2 * c * 3 * x * y ** 2)


def _rosenbrock(x, y):
    return (1 - x) ** 2 + 100 * (y - x ** 2) ** 2


def _rosenbrock_grad(x, y):
    return -2 * (1 - x) - 400 * x * (y - x ** 2), 200 * (y - x ** 2)


def _himmelblau(x, y):
    return (x ** 2 + y - 11) ** 2 + (x + y ** 2 - 7) ** 2


def _himmelblau_grad(x, y):
    a, b = x ** 2 + y - 11, x + y ** 2 - 7
    return 4 * x * a + 2 * b, 2 * a + 4 * y * b


KAPPA = 50.0

FUNCTIONS = {
    "beale": TestFunction("beale", _beale, _beale_grad, [(3.0, 0.5)], (1.0, 1.5), (-4.5, 4.5), (-4.5, 4.5)),
    "rosenbrock": TestFunction("rosenbrock", _rosenbrock, _rosenbrock_grad, [(1.0, 1.0)], (-1.5, 2.0),
                               (-2.0, 2.0), (-1.0, 3.0)),
    "saddle": TestFunction("saddle", lambda x, y: x ** 2 - y ** 2, lambda x, y: (2 * x, -2 * y), [],
                           (-1.0, 1e-3), (-1.5, 1.5), (-1.5, 1.5), log_levels=False),
    "himmelblau": TestFunction("himmelblau", _himmelblau, _himmelblau_grad,
                               [(3.0, 2.0), (-2.805118, 3.131312), (-3.779310, -3.283186),
                                (3.584428, -1.848126)], (0.0, 0.0), (-5.0, 5.0), (-5.0, 5.0)),
    "quadratic": TestFunction("quadratic", lambda x, y: 0.5 * (x ** 2 + KAPPA * y ** 2),
                              lambda x, y: (x, KAPPA * y), [(0.0, 0.0)], (-4.0, 1.0), (-5.0, 5.0),
                              (-2.0, 2.0)),
}


def get(name):
    """A TestFunction by name (or the instance itself)."""
    if isinstance(name, TestFunction):
        return name
    if name not in FUNCTIONS:
        raise ValueError(f"lab: unknown test function {name!r}; available: {', '.join(FUNCTIONS)}")
    return FUNCTIONS[name]
