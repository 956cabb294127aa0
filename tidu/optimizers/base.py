"""Optimizer: what every update rule shares, and the three ways in.

A subclass holds only the math (STYLE.md):

    init_state(theta) -> dict                            the state for parameters theta
    rule(theta, g, state, t, lr) -> (new_theta, new_state)   one update, t = 1, 2, ...

`rule` may update `theta` and the state arrays in place and return them (fewer temporaries);
it never writes into `g`. `Optimizer` owns the step count (`iterations`), the learning rate
(a float or a schedule of the step), clipping, decoupled weight decay and the state, and
offers the rule three ways:

    opt.apply_gradients([(grad, param), ...])   Keras: tidu Parameters (param.data updated in
                                                place) with NumPy gradients
    opt.update(params, grads)                   the notes: two dicts of NumPy arrays with the
                                                same keys, params updated in place
    opt.step(closure=None, params=None)         torch: closure() re-evaluates the loss

Order of one update (Keras's): clip the gradients (`clipnorm`: each tensor to L2 norm <=
clipnorm, g·c / max(‖g‖, c); `global_clipnorm`: all together, g·c / max(‖(g1, g2, ...)‖, c);
`clipvalue`: each element to [−c, c]; at most one of the three), apply decoupled weight decay
θ ← θ − η·wd·θ (`weight_decay`, AdamW/Keras form, with η the learning rate of this step),
run the rule with η = learning_rate(iterations) and t = iterations + 1, apply each
Parameter's `constraint`, then iterations += 1.

The state, the flat fast path that `apply_gradients` takes for a model's Parameters, and the
rule's runs live in tidu/optimizers/state.py (`_State`, mixed in here); the closure methods'
view of a problem and `minimize` in tidu/optimizers/closure.py.

Closure convention (`step`). `closure()` must evaluate the loss at the current parameters and
provide the gradient, in one of two ways:
  * Parameters (a tidu model): like torch, it zeroes the grads, runs the forward pass, calls
    `loss.backward()` and returns the loss (a float or a scalar Tensor); the optimizer reads
    each parameter's `.grad` (it also clears them before each call). A parameter left without
    a gradient is not updated by the one-gradient methods (torch) and counts as zero gradient
    for the closure methods (torch's LBFGS).
  * Plain NumPy arrays: it returns `(loss, grads)`, grads a list of arrays shaped like
    `params`; the arrays in `params` are updated in place.
`params` is a list of Parameters or of float arrays; None reuses the last list this optimizer
stepped. Methods that only need one gradient per step (SGD, Adam, Rprop, ...) call the closure
once and apply its gradients; `step()` without a closure applies the parameters' current
`.grad` (torch's `optimizer.step()`). Methods that re-evaluate the loss (`requires_closure =
True`: Newton, BFGS, LBFGS, CoordinateDescent) call it as often as they need and refuse
`apply_gradients`/`update`. `step` returns the loss at the parameters it started from.
`minimize(f, x0, grad=None, steps=100)` wraps all this for a function of one NumPy vector.

`state_dict()`/`load_state_dict()`: see tidu/optimizers/state.py.
"""
import copy
import difflib
import inspect
import numbers

import numpy as np

from tidu import backend
from tidu._checks import (check_choice, check_int, check_nonnegative, check_number,  # noqa: F401
                          check_positive, check_unit_interval)                        # (re-exported)
from tidu.autograd.flat import FlatView
from tidu.autograd.gradcheck import numerical_gradient  # noqa: F401 (re-exported)
from tidu.autograd.tensor import Tensor
from tidu.errors import ShapeError
from tidu.optimizers import schedules as _schedules
from tidu.optimizers.closure import MinimizeResult, _Problem, minimize as _minimize  # noqa: F401
from tidu.optimizers.state import _State, _TwoParts

_BASE_ARGS = ("learning_rate", "clipnorm", "clipvalue", "global_clipnorm", "weight_decay", "name")

CONVENTIONS = ("keras", "torch")


def check_convention(owner, convention):
    """The `convention` argument shared by the optimizers whose formula differs between
    frameworks: 'keras' (the default: Keras 3's numbers) or 'torch' (torch.optim's)."""
    return check_choice(owner, "convention", convention, CONVENTIONS)


class Optimizer(_State):
    """Base class; see the module docstring for the entry points and the order of an update.

    learning_rate: a float >= 0, or a schedule (a `LearningRateSchedule` or any callable of the
        step) evaluated at `iterations` before each update. `lr=` is accepted as an alias.
        Reading `opt.learning_rate` gives the current value; setting it replaces the float or
        the schedule (ReduceLROnPlateau does this).
    clipnorm / global_clipnorm / clipvalue: gradient clipping, Keras semantics, at most one.
    weight_decay: decoupled decay θ ← θ − η·wd·θ before each update (None: off). Like Keras, it
        decays every parameter the update is given, biases and normalization scales included;
        `exclude_from_weight_decay(var_list, var_names)` takes some out.
    name: defaults to the class name.
    """

    elementwise = True        # the rule treats every element on its own (per tensor == on the flat vector)
    requires_closure = False  # only step(closure) can drive it (it re-evaluates the loss)

    def __init__(self, learning_rate=0.01, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 weight_decay=None, name=None, **kwargs):
        owner = type(self).__name__
        if "lr" in kwargs:
            lr = kwargs.pop("lr")
            default = self._default("learning_rate")
            if learning_rate is not lr and learning_rate != default:
                raise TypeError(f"{owner}: got both learning_rate={learning_rate!r} and its alias lr={lr!r}")
            learning_rate = lr
        if kwargs:
            self._unknown_arguments(kwargs)
        clips = {"clipnorm": clipnorm, "clipvalue": clipvalue, "global_clipnorm": global_clipnorm}
        for key, value in clips.items():
            if value is not None:
                clips[key] = check_positive(owner, key, value)
        if sum(v is not None for v in clips.values()) > 1:
            raise ValueError(f"{owner}: only one of clipnorm, clipvalue and global_clipnorm can be set, got "
                             + ", ".join(f"{k}={v!r}" for k, v in clips.items()))
        if weight_decay is not None:
            weight_decay = check_nonnegative(owner, "weight_decay", weight_decay)
        if self.requires_closure and (weight_decay or any(v is not None for v in clips.values())):
            raise ValueError(f"{owner}: clipping and weight_decay are not supported by closure methods "
                             f"(their steps come from a line search or a solve, not from a gradient step)")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"{owner}: expected name to be a str, got {name!r}")
        self._learning_rate = self._check_learning_rate(learning_rate)
        self.clipnorm, self.clipvalue = clips["clipnorm"], clips["clipvalue"]
        self.global_clipnorm, self.weight_decay = clips["global_clipnorm"], weight_decay
        self.name = name or owner
        self.epoch = 0
        self._no_decay_ids, self._no_decay_names = set(), ()
        self.reset()

    def exclude_from_weight_decay(self, var_list=None, var_names=None):
        """Keras's: parameters that weight_decay leaves alone. var_list: Parameters (or the
        arrays given to update()); var_names: substrings of parameter names (update()'s dict
        keys), e.g. ['bias', 'gamma', 'beta']. Adds to earlier exclusions."""
        owner = f"{self.name}.exclude_from_weight_decay"
        var_list = [] if var_list is None else list(var_list)
        names = [] if var_names is None else [var_names] if isinstance(var_names, str) else list(var_names)
        for i, n in enumerate(names):
            if not isinstance(n, str) or not n:
                raise TypeError(f"{owner}: expected var_names to be non-empty strings, got {n!r} at position {i}")
        self._no_decay_ids.update(map(id, var_list))
        self._no_decay_names = tuple(dict.fromkeys(self._no_decay_names + tuple(names)))
        self._dissolve_group()               # the next step re-packs with the new decay runs

    def _decays(self, p, label=None):
        """Whether weight decay applies to parameter p (named `label` when it has no name)."""
        if id(p) in self._no_decay_ids:
            return False
        name = getattr(p, "name", None) or label or ""
        return not any(s in name for s in self._no_decay_names)

    # --- construction helpers ------------------------------------------------------------------
    @classmethod
    def _own_args(cls):
        return [n for n, p in inspect.signature(cls.__init__).parameters.items()
                if n != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]

    def _default(self, name):
        p = inspect.signature(type(self).__init__).parameters.get(name)
        return None if p is None else p.default

    def _unknown_arguments(self, kwargs):
        owner = type(self).__name__
        allowed = list(dict.fromkeys(self._own_args() + list(_BASE_ARGS) + ["lr"]))
        bad = next(iter(kwargs))
        close = difflib.get_close_matches(bad, allowed, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        if bad == "decay":
            hint = " (Keras 2's decay: use learning_rate=schedules.InverseTimeDecay(lr, 1, decay))"
        raise TypeError(f"{owner}: unknown argument {bad!r}{hint}; accepted arguments: {', '.join(allowed)}")

    def _check_learning_rate(self, value):
        owner = type(self).__name__
        if callable(value):
            return value
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{owner}: expected learning_rate to be a float or a schedule (a callable of "
                            f"the step), got {value!r}")
        value = float(value)
        if not value >= 0:
            raise ValueError(f"{owner}: expected learning_rate >= 0, got learning_rate={value!r}")
        return value

    # --- learning rate -------------------------------------------------------------------------
    @property
    def learning_rate(self):
        """The learning rate of the next update (a schedule is evaluated at `iterations`)."""
        return self._current_lr()

    @learning_rate.setter
    def learning_rate(self, value):
        self._learning_rate = self._check_learning_rate(value)

    lr = learning_rate

    @property
    def schedule(self):
        """The learning-rate schedule, or None when the learning rate is a constant."""
        return self._learning_rate if callable(self._learning_rate) else None

    def _current_lr(self):
        if not callable(self._learning_rate):
            return self._learning_rate
        lr = self._learning_rate(self.iterations)
        try:
            lr = float(lr)
        except (TypeError, ValueError):
            raise TypeError(f"{self.name}: the learning-rate schedule returned {lr!r} at step "
                            f"{self.iterations}, expected a float") from None
        if not lr >= 0:
            raise ValueError(f"{self.name}: the learning-rate schedule returned {lr!r} at step "
                             f"{self.iterations}, expected a float >= 0")
        return lr

    # --- the math, in subclasses ---------------------------------------------------------------
    def init_state(self, theta):
        """The state for parameters `theta` (arrays shaped like it; 0-d arrays for scalars)."""
        return {}

    def rule(self, theta, g, state, t, lr):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must define rule(theta, g, state, t, lr)")

    def fused(self, dtype=np.float32):
        """A one-pass kernel doing exactly what `rule` does on a flat vector of `dtype` (see
        tidu.kernels.optimizers, the extra `fast`), or None: the rule runs."""
        return None

    def on_epoch_begin(self, epoch):
        """Told by the training loop when epoch `epoch` (0-based) starts; rules that switch at an
        epoch (SWATS(switch_epoch=...)) read `self.epoch`."""
        self.epoch = int(epoch)

    # --- config --------------------------------------------------------------------------------
    def get_config(self):
        """The constructor arguments, JSON-able (a schedule as {'class_name', 'config'})."""
        lr = self._learning_rate
        if isinstance(lr, _schedules.LearningRateSchedule):
            lr = _schedules.serialize(lr)
        elif callable(lr):
            raise TypeError(f"{self.name}.get_config: learning_rate is a plain callable ({lr!r}), which cannot "
                            f"be serialized; use a tidu.optimizers.schedules.LearningRateSchedule")
        config = {"learning_rate": lr}
        for name in self._own_args():
            if name not in config:
                value = getattr(self, name)
                config[name] = list(value) if isinstance(value, tuple) else value
        for name in _BASE_ARGS[1:]:
            config[name] = getattr(self, name)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = _schedules.deserialize(config["learning_rate"])
        return cls(**config)

    def __repr__(self):
        try:
            cfg = self.get_config()
        except TypeError:
            cfg = {"learning_rate": self._learning_rate}
        defaults = {n: self._default(n) for n in cfg}
        defaults = {n: list(d) if isinstance(d, tuple) else d for n, d in defaults.items()}
        shown = {k: v for k, v in cfg.items() if k == "learning_rate" or (k != "name" and v != defaults.get(k))}
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in shown.items())})"

    # --- validation ----------------------------------------------------------------------------
    def _require_rule(self, entry):
        if self.requires_closure:
            raise TypeError(f"{self.name}.{entry}: {type(self).__name__} re-evaluates the loss during a step; "
                            f"call step(closure) with a closure that returns the loss (see Optimizer.step)")

    @staticmethod
    def _where(where):
        return where() if callable(where) else where

    def _as_grad(self, g, theta, where):
        """g as an array shaped like theta; `where` (a str, or a callable giving one) names it."""
        if isinstance(g, Tensor):
            g = g.data
        try:
            if not isinstance(g, (np.ndarray, backend.xp.ndarray)):
                g = backend.xp.asarray(g)
        except Exception:
            raise TypeError(f"{self.name}: expected {self._where(where)} to be an array, "
                            f"got {type(g).__name__}") from None
        if g.dtype.kind not in "fiu":
            raise TypeError(f"{self.name}: expected {self._where(where)} to be a float array, got dtype {g.dtype}")
        if g.shape != theta.shape:
            raise ShapeError(f"{self.name}: expected {self._where(where)} of shape {theta.shape}, got shape {g.shape}")
        return g

    def _as_param_array(self, value, where):
        if isinstance(value, Tensor):
            value = value.data
        if not isinstance(value, (np.ndarray, backend.xp.ndarray)):
            raise TypeError(f"{self.name}: {self._where(where)} must be an array (updated in place), got "
                            f"{type(value).__name__}")
        if value.dtype.kind != "f":
            raise TypeError(f"{self.name}: {self._where(where)} must be a floating-point array, "
                            f"got dtype {value.dtype}")
        if not getattr(value.flags, "writeable", True):  # CuPy's flags have no writeable
            raise ValueError(f"{self.name}: {self._where(where)} is read-only; it is updated in place")
        return value

    # --- entry point 1: Keras ------------------------------------------------------------------
    def apply_gradients(self, grads_and_vars):
        """Update Parameters from (gradient, parameter) pairs, like Keras's apply_gradients.

        Pairs whose gradient is None are skipped (that parameter is not updated). Every
        gradient is checked against its parameter's shape before anything changes.
        Returns `iterations`.
        """
        self._require_rule("apply_gradients")
        try:
            pairs = list(grads_and_vars)
        except TypeError:
            raise TypeError(f"{self.name}.apply_gradients: expected an iterable of (gradient, parameter) "
                            f"pairs, got {type(grads_and_vars).__name__}") from None
        if not pairs:
            return self.iterations
        group = self._same_group(pairs)
        if group is not None:  # the parameters of the last step again: checked in _same_group
            lr, t = self._current_lr(), self.iterations + 1
            params = [p for _, p in pairs]
            self._run_group(group, group.theta, [g for g, _ in pairs], t, lr)
            return self._finish_update(params)
        params, grads, seen = [], [], set()
        for i, pair in enumerate(pairs):
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise TypeError(f"{self.name}.apply_gradients: expected (gradient, parameter) pairs, got "
                                f"{type(pair).__name__} at position {i}")
            g, p = pair
            if not isinstance(p, Tensor):
                raise TypeError(f"{self.name}.apply_gradients: expected a Parameter in pair {i}, got "
                                f"{type(p).__name__} (for NumPy arrays use update(params, grads))")
            if g is None:
                continue
            if id(p) in seen:
                raise ValueError(f"{self.name}.apply_gradients: parameter {p.name!r} appears twice (pair {i})")
            seen.add(id(p))
            self._as_param_array(p.data, lambda: f"parameter {p.name!r} (pair {i})")
            grads.append(self._as_grad(g, p.data, lambda: f"gradient {i} for parameter {p.name!r}"))
            params.append(p)
        if not params:
            raise ValueError(f"{self.name}.apply_gradients: no gradients provided for any parameter "
                             f"(all {len(pairs)} were None)")
        names = [self._name_of(p) for p in params]
        for name, p in zip(names, params):
            self._check_pending(name, p.shape, f"parameter {p.name!r}")
        lr, t = self._current_lr(), self.iterations + 1
        # --- validated: nothing raises past here ---
        dtypes = {p.data.dtype for p in params}
        if len(dtypes) == 1:
            group = self._packed_group(params, names)
            self._run_group(group, group.theta, grads, t, lr)
        else:
            self._apply_arrays(names, [p.data for p in params], grads, lr, t, [self._decays(p) for p in params])
        return self._finish_update(params)

    def update_in_two(self, params):
        """The next update of `params` (the Parameters of the last apply_gradients, in its
        order) as two parts that two threads may run at once, or None. For the training step's
        two halves (tidu.training.step): each half's thread, once both have their gradients,
        runs the update kernel on its share of the flat parameter vector, from their sum
        (plan.run(k, grads0, grads1)); then plan.finish(). Offered only where apply_gradients
        would run a fused kernel (numba, the extra `fast`) segment by segment on the same
        group: an elementwise rule, no clipping, no weight decay, no state waiting to load. The
        kernel does the same float operations on every element, so the weights and the state
        come out as the sum and one apply_gradients give them, bit for bit."""
        group = self._group
        if group is None or group.ids is None or backend.xp is not np or not self.elementwise \
                or self._globals or self._pending or self._dead or self.weight_decay \
                or self.clipnorm is not None or self.global_clipnorm is not None \
                or self.clipvalue is not None or type(self).apply_gradients is not Optimizer.apply_gradients \
                or group.ids != tuple(map(id, params)) \
                or any(p.data.base is not group.theta for p in params):
            return None
        kernel = self.fused(group.dtype)
        if kernel is None:
            return None
        return _TwoParts(self, group, kernel, params, self._current_lr(), self.iterations + 1)

    def _finish_update(self, params):
        """Apply the parameters' constraints, count the step; returns `iterations`."""
        for p in params:
            c = getattr(p, "constraint", None)
            if c is not None:
                value = c(p.data)
                p.data[...] = value.data if isinstance(value, Tensor) else value
        self._last_params = params
        self.iterations += 1
        return self.iterations

    def _same_group(self, pairs):
        """The packed group, when `pairs` are (float ndarray, parameter) for exactly the parameters
        of the group, in its order, their data still views of its flat buffer, shaped like the
        gradients, with no parameter lost and no loaded state waiting: then every check of
        apply_gradients holds and the training loop's steps skip them. Else None."""
        group = self._group
        if group is None or group.ids is None or self._pending or self._dead or \
                len(pairs) != len(group.ids):
            return None
        theta, ndarray, xp_ndarray = group.theta, np.ndarray, backend.xp.ndarray
        for pair, pid in zip(pairs, group.ids):
            if type(pair) is not tuple or len(pair) != 2:
                return None
            g, p = pair
            if id(p) != pid or (type(g) is not ndarray and type(g) is not xp_ndarray) or g.dtype.kind != "f":
                return None
            d = p.data
            if d.base is not theta or g.shape != d.shape:
                return None
        return group

    def apply(self, grads, variables=None):
        """Keras 3's `optimizer.apply(grads, variables)`: apply_gradients(zip(grads, variables));
        variables None: the parameters of the previous update."""
        if variables is None:
            variables = self._resolve_params(None, "apply")
        return self.apply_gradients(list(zip(grads, variables)))

    def _packed_group(self, params, names):
        group, ids = self._group, tuple(map(id, params))
        if group is not None and group.ids == ids and all(p.data.base is group.theta for p in params):
            return group
        theta = FlatView(params).pack()      # the buffer they already share, else packed into one
        return self._build_group(names, [p.data for p in params], theta=theta, ids=ids,
                                 decayed=[self._decays(p) for p in params])

    # --- entry point 2: the notes --------------------------------------------------------------
    def update(self, params, grads):
        """Update the arrays of dict `params` in place from dict `grads` (same keys), the notes'
        `optimizer.update(params, grads)`; the state is kept per key. Returns `iterations`."""
        self._require_rule("update")
        if not isinstance(params, dict) or not isinstance(grads, dict):
            raise TypeError(f"{self.name}.update: expected two dicts (params, grads), got "
                            f"{type(params).__name__} and {type(grads).__name__}")
        missing = [k for k in params if k not in grads]
        if missing:
            raise ValueError(f"{self.name}.update: grads has no entry for {', '.join(map(repr, missing))}; "
                             f"params has keys {', '.join(map(repr, params))}")
        if not params:
            return self.iterations
        names, thetas, gs = [], [], []
        for key, value in params.items():
            theta = self._as_param_array(value, f"params[{key!r}]")
            gs.append(self._as_grad(grads[key], theta, f"grads[{key!r}]"))
            names.append(f"key:{key}")
            thetas.append(theta)
            self._check_pending(names[-1], theta.shape, f"params[{key!r}]")
        lr, t = self._current_lr(), self.iterations + 1
        self._apply_arrays(names, thetas, gs, lr, t, [self._decays(v, str(k)) for k, v in params.items()])
        self.iterations += 1
        return self.iterations

    # --- entry point 3: torch ------------------------------------------------------------------
    def _resolve_params(self, params, entry):
        if params is None:
            params = self._last_params
            if params is None:
                raise TypeError(f"{self.name}.{entry}: no parameters yet; pass params=[...] (Parameters or "
                                f"NumPy arrays) on the first call")
        elif isinstance(params, (Tensor, np.ndarray, backend.xp.ndarray)):
            params = [params]
        else:
            params = list(params)
        if not params:
            raise ValueError(f"{self.name}.{entry}: expected at least one parameter, got an empty list")
        tensors = [isinstance(p, Tensor) for p in params]
        if any(tensors) and not all(tensors):
            raise TypeError(f"{self.name}.{entry}: params must be all Parameters or all NumPy arrays, not a mix")
        for i, p in enumerate(params):
            self._as_param_array(p, f"params[{i}]")
        return params

    def _evaluate(self, closure, params, keep_none=False):
        """Call the closure: (loss as float, list of gradients shaped like params; a missing one is
        zero, or None with keep_none). Parameters' .grad are cleared first, so a closure that
        forgets to zero them still gives one gradient."""
        if isinstance(params[0], Tensor):
            for p in params:
                p.grad = None
        out = closure()
        if isinstance(out, tuple):
            if len(out) != 2:
                raise TypeError(f"{self.name}: expected the closure to return loss or (loss, grads), got a "
                                f"tuple of {len(out)}")
            loss, grads = out
            grads = list(grads)
            if len(grads) != len(params):
                raise ValueError(f"{self.name}: the closure returned {len(grads)} gradients for "
                                 f"{len(params)} parameters")
        else:
            loss = out
            if not isinstance(params[0], Tensor):
                raise TypeError(f"{self.name}: with NumPy-array params the closure must return (loss, grads), "
                                f"got {type(out).__name__}")
            grads = [p.grad for p in params]
        arrays = [p.data if isinstance(p, Tensor) else p for p in params]
        grads = [(None if keep_none else np.zeros_like(a)) if g is None
                 else self._as_grad(g, a, f"the closure's gradient {i}")
                 for i, (g, a) in enumerate(zip(grads, arrays))]
        try:
            loss = float(loss)
        except (TypeError, ValueError):
            raise TypeError(f"{self.name}: expected the closure to return a scalar loss, got {loss!r}") from None
        return loss, grads

    def step(self, closure=None, params=None):
        """One optimization step (torch's `optimizer.step(closure)`); see the module docstring for
        the closure convention. Returns the loss at the starting point (None without a closure)."""
        if self.requires_closure:
            if closure is None or not callable(closure):
                raise TypeError(f"{self.name}.step: expected a closure that re-evaluates the loss (and its "
                                f"gradient), got {closure!r}; {type(self).__name__} evaluates it several "
                                f"times per step")
            params = self._resolve_params(params, "step")
            lr = self._current_lr()
            problem = _Problem(self, closure, params)
            self._check_closure_size(problem)
            loss = self._closure_step(problem, lr)
            self._last_params = params
            self.iterations += 1
            return loss
        if closure is not None and not callable(closure):
            raise TypeError(f"{self.name}.step: expected a callable closure, got {closure!r}")
        params = self._resolve_params(params, "step")
        if closure is None:
            if not isinstance(params[0], Tensor):
                raise TypeError(f"{self.name}.step: with NumPy-array params, pass a closure returning (loss, grads)")
            loss, grads = None, [p.grad for p in params]
        else:
            loss, grads = self._evaluate(closure, params, keep_none=isinstance(params[0], Tensor))
        if isinstance(params[0], Tensor):
            self.apply_gradients(list(zip(grads, params)))      # like torch, no grad: not updated
        else:
            self.update(dict(enumerate(params)), dict(enumerate(grads)))
            self._last_params = params
        return loss

    def _check_closure_size(self, problem):
        """Closure methods refuse problems they cannot handle (before calling the closure)."""

    def _closure_step(self, problem, lr):  # pragma: no cover - abstract
        raise NotImplementedError

    def zero_grad(self, params=None):
        """Set .grad = None on `params` (default: the last ones stepped)."""
        for p in (params if params is not None else self._last_params or []):
            if isinstance(p, Tensor):
                p.grad = None

    def minimize(self, f, x0, grad=None, steps=100, callback=None, gtol=None):
        """Minimize f: R^n -> R from x0 with a fresh copy of this optimizer (same config).

        f(x) -> float, grad(x) -> array shaped like x (None: float64 central differences,
        tidu.autograd.gradcheck.numerical_gradient). Runs `steps` calls of step(); stops early
        when callback(k, x, loss) returns True or max|∇f| <= gtol at a step's start. Returns a
        MinimizeResult (x, fun, path, losses, ...).
        """
        return _minimize(self, f, x0, grad, steps, callback, gtol)

    def _fresh(self):
        new = copy.copy(self)
        new.reset()
        return new
