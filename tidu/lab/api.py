"""What the lab's web page asks for, answered as JSON-able dicts (the HTTP part is server.py).

    describe()        -> the functions, optimizers and limits the page offers (GET /api/functions)
    run(request)      -> each optimizer's path and losses, and the contour grid (POST /api/run)

`run` checks the whole request before it runs anything and raises BadRequest with a message
naming the field, what was expected and what was got. The paths are tidu.lab.trajectories'
for the same arguments; the page draws them and holds no copy of the math.
"""
import inspect
import math

import numpy as np

from tidu.lab import DEFAULT_LEARNING_RATES, FUNCTIONS, trajectories

MAX_STEPS = 5000
MAX_OPTIMIZERS = 16
GRID_SIZE = 121              # contour grid points per axis
CONTOUR_LEVELS = 24
CLOSURE_METHODS = ("newton", "bfgs", "lbfgs", "coordinate_descent")
FIRST_ORDER = tuple(DEFAULT_LEARNING_RATES["beale"])
OPTIMIZERS = FIRST_ORDER + CLOSURE_METHODS
# constructor arguments the page may set besides learning_rate; each lies in [0, 1)
HYPERPARAMETERS = ("momentum", "beta_1", "beta_2", "rho")


class BadRequest(ValueError):
    """A request the lab cannot run; its message is shown on the page."""


def _optimizer_class(name):
    from tidu import optimizers

    return optimizers.ALIASES[name]


def _hyperparameters(name):
    """{argument: default} of the HYPERPARAMETERS that `name`'s constructor takes."""
    if name in CLOSURE_METHODS:
        return {}
    params = inspect.signature(_optimizer_class(name).__init__).parameters
    return {h: params[h].default for h in HYPERPARAMETERS if h in params}


def describe():
    """{'functions': {name: {xlim, ylim, start, minima, learning_rates: {optimizer: lr}}},
        'optimizers': {name: {'closure': bool, 'hyperparameters': {arg: default}}},
        'limits': {'max_steps', 'max_optimizers'}, 'defaults': {'function', 'optimizers', 'steps'}}

    A closure method (newton, bfgs, lbfgs, coordinate_descent) takes no learning rate here: a
    line search or a Newton step sets its step size, and one of its steps is one step() call."""
    functions = {
        name: {"xlim": list(fn.xlim), "ylim": list(fn.ylim), "start": list(fn.start),
               "minima": [list(m) for m in fn.minima], "learning_rates": DEFAULT_LEARNING_RATES[name]}
        for name, fn in FUNCTIONS.items()}
    optimizers = {name: {"closure": name in CLOSURE_METHODS, "hyperparameters": _hyperparameters(name)}
                  for name in OPTIMIZERS}
    return {"functions": functions, "optimizers": optimizers,
            "limits": {"max_steps": MAX_STEPS, "max_optimizers": MAX_OPTIMIZERS},
            "defaults": {"function": "beale", "optimizers": ["sgd", "momentum", "adam"], "steps": 300}}


def _number(where, value, low=-math.inf, high=math.inf, low_open=False, high_open=False, expected=None):
    """`value` as a float if it is a finite JSON number in the range, else BadRequest."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        raise BadRequest(f"{where}: expected {expected or 'a finite number'}, got {value!r}")
    return float(value)


def _optimizer(k, spec):
    """(name, kwargs) of the k-th entry of request['optimizers'], checked."""
    where = f"optimizers[{k}]"
    if not isinstance(spec, dict):
        raise BadRequest(f"{where}: expected an object {{name, learning_rate, ...}}, got {spec!r}")
    name = spec.get("name")
    if name not in OPTIMIZERS:
        raise BadRequest(f"{where}.name: expected one of {', '.join(OPTIMIZERS)}, got {name!r}")
    allowed = set(_hyperparameters(name)) | ({"learning_rate"} if name not in CLOSURE_METHODS else set())
    unknown = sorted(set(spec) - allowed - {"name"})
    if unknown:
        takes = ", ".join(sorted(allowed)) or "no settings here (a line search or Newton step sets its step)"
        raise BadRequest(f"{where}: {name} takes {takes}; got {', '.join(unknown)}")
    kwargs = {}
    if "learning_rate" in spec:
        kwargs["learning_rate"] = _number(f"{where}.learning_rate ({name})", spec["learning_rate"], 0, 1e3,
                                          low_open=True, expected="a number > 0 and <= 1000")
    for h in sorted(allowed - {"learning_rate"}):
        if h in spec:
            kwargs[h] = _number(f"{where}.{h} ({name})", spec[h], 0, 1, high_open=True,
                                expected="a number >= 0 and < 1")
    return name, kwargs


def check(request):
    """(function, [(name, kwargs)], steps, start) from a /api/run body, or BadRequest."""
    if not isinstance(request, dict):
        raise BadRequest(f"expected a JSON object {{function, optimizers, steps, start}}, got {request!r}"[:300])
    unknown = sorted(set(request) - {"function", "optimizers", "steps", "start"})
    if unknown:
        raise BadRequest(f"expected the fields function, optimizers, steps, start; got {', '.join(unknown)}")
    function = request.get("function")
    if function not in FUNCTIONS:
        raise BadRequest(f"function: expected one of {', '.join(FUNCTIONS)}, got {function!r}")
    specs = request.get("optimizers")
    if not isinstance(specs, list) or not 1 <= len(specs) <= MAX_OPTIMIZERS:
        got = f"{len(specs)} of them" if isinstance(specs, list) else repr(specs)
        raise BadRequest(f"optimizers: expected a list of 1 to {MAX_OPTIMIZERS} optimizers, got {got}")
    optimizers = [_optimizer(k, spec) for k, spec in enumerate(specs)]
    steps = request.get("steps", 200)
    if not isinstance(steps, int) or isinstance(steps, bool) or not 1 <= steps <= MAX_STEPS:
        raise BadRequest(f"steps: expected a whole number from 1 to {MAX_STEPS}, got {steps!r}")
    start = request.get("start", list(FUNCTIONS[function].start))
    if not isinstance(start, list) or len(start) != 2:
        raise BadRequest(f"start: expected a point [x, y] of two numbers, got {start!r}")
    start = [_number(f"start[{i}] ({'xy'[i]})", v) for i, v in enumerate(start)]
    return function, optimizers, steps, start


def grid(function):
    """{'x': [xmin, xmax], 'y': [ymin, ymax], 'z': rows of f (z[j][i] at x_i, y_j, GRID_SIZE each,
        6 significant digits), 'levels': increasing contour levels, 'log': whether they are log-spaced}."""
    fn = FUNCTIONS[function]
    X, Y = np.meshgrid(np.linspace(*fn.xlim, GRID_SIZE), np.linspace(*fn.ylim, GRID_SIZE))
    Z = fn(np.stack([X, Y]))
    if fn.log_levels:    # as plots.py: log-spaced, so the basin's levels show as well as the walls
        levels = np.logspace(np.log10(max(Z.min(), 1e-3) + 1e-3), np.log10(Z.max()), CONTOUR_LEVELS)
    else:
        levels = np.linspace(Z.min(), Z.max(), CONTOUR_LEVELS)
    return {"x": list(fn.xlim), "y": list(fn.ylim), "log": fn.log_levels,
            "z": [[float(f"{v:.6g}") for v in row] for row in Z],
            "levels": [float(f"{v:.6g}") for v in levels]}


def run(request):
    """{'runs': [{'name', 'settings': {arg: value}, 'path': [[x, y], ...], 'losses': [f(path[k]), ...],
                  'diverged': bool, 'error': None or a message}], 'grid': grid(function)}, one run per
    request['optimizers'] entry.

    request: {'function': name, 'optimizers': [{'name': 'adam', 'learning_rate': 0.05, 'beta_1': 0.9,
              ...}], 'steps': 1..MAX_STEPS, 'start': [x, y]}; a missing learning_rate is the lab's
    default for the function, a missing hyperparameter the optimizer's default. path is
    tidu.lab.trajectories' (path[0] = start); a run that reaches inf/NaN is cut before its first
    non-finite point or loss and marked diverged (JSON has no inf). A run whose line search finds
    no minimum along a line (the saddle is unbounded below) keeps the points before it, is marked
    diverged and says why in 'error'; the other runs are drawn."""
    function, optimizers, steps, start = check(request)
    fn = FUNCTIONS[function]
    runs = []
    for name, kwargs in optimizers:
        if name in CLOSURE_METHODS:
            spec = name
        else:
            settings = {"learning_rate": DEFAULT_LEARNING_RATES[function][name], **kwargs}
            spec = _optimizer_class(name)(**settings)
        why = {}             # a line search that finds no bottom (the saddle) ends the path
        (path,) = trajectories([spec], function, start=start, steps=steps, stopped=why).values()
        error = next((f"{name} stopped: {e}" for e in why.values()), None)
        with np.errstate(over="ignore", invalid="ignore"):
            losses = np.asarray(fn(path.T), dtype=np.float64)
        n = len(path) if np.isfinite(losses).all() else int(np.argmin(np.isfinite(losses)))
        runs.append({"name": name, "settings": {} if name in CLOSURE_METHODS else settings,
                     "path": path[:n].tolist(), "losses": losses[:n].tolist(),
                     "diverged": n < steps + 1, "error": error})
    return {"runs": runs, "grid": grid(function)}
