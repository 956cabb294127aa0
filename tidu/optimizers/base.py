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

Fast path (PERF.md lesson 4). The first time `apply_gradients` sees a list of Parameters of
one dtype, it lays their data end to end in one flat buffer (`tidu.autograd.pack`; a list
already packed that way is adopted as is) and keeps the state as flat buffers of the same
length. Each step then concatenates the gradients (one copy into a reused buffer, never
writing into them) and runs the rule once on the flat arrays: the same ~10 ufunc calls for a
whole model as for one tensor. Without clipping, an elementwise rule runs once per segment
instead: a large parameter (>= 2^17 elements) alone, from its gradient as it is (no copy), the
smaller ones between large ones together. A rule with a fused kernel (`fused()`, numba, the
extra `fast`) runs that kernel instead. The training loop passes the same Parameters every
step; once they are checked, such a call skips the per-pair checks (`_same_group`). A
different list of parameters (or data replaced behind the optimizer's back) is re-packed,
carrying each parameter's state over. Rules whose class sets `elementwise = False` (SWATS: its
step size comes from dot products over all parameters) always run on one flat vector; on the
other paths it is assembled by copying.

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

State. `state_dict()` returns {str: NumPy array}: 'iterations', 'learning_rate' (when it is a
constant; a schedule lives in the config), 'param{i}/{slot}' for the i-th Parameter this
optimizer met (the order of the lists given to it, as Keras numbers its variables),
'key:{key}/{slot}' for update()'s dict keys and 'global/{name}' for scalars and the state of
the closure methods. `load_state_dict` restores it exactly (resuming continues bit-identically);
state for parameters not seen yet waits until they are.
"""
import contextlib
import copy
import difflib
import inspect
import math
import numbers
import weakref

import numpy as np

from tidu._checks import (check_choice, check_int, check_nonnegative, check_number,
                          check_positive, check_unit_interval)
from tidu.autograd.flat import pack
from tidu.autograd.tensor import Tensor
from tidu.errors import ShapeError
from tidu.optimizers import schedules as _schedules

_BASE_ARGS = ("learning_rate", "clipnorm", "clipvalue", "global_clipnorm", "weight_decay", "name")


_ALONE = 1 << 17  # a parameter this large (elements) is updated from its own gradient, not a copy


class _Group:
    """Parameters laid end to end in one flat vector, with the state as flat buffers.

    segments: (a, b, i, j), the runs of the flat vector [a, b) an elementwise rule updates in one
    call, from parameters i..j−1: each parameter of at least _ALONE elements alone (its gradient
    array is used as it is), and each run of smaller ones between them together (their
    gradients concatenated into grad[a:b]). The MLP's 784×512 kernel then costs no copy, and a
    model of many small layers still takes one call.
    """

    __slots__ = ("names", "shapes", "sizes", "offsets", "theta", "slots", "ids", "dtype", "grad", "segments")

    def __init__(self, names, shapes, dtype, theta=None, ids=None):
        self.names, self.shapes, self.dtype = tuple(names), [tuple(s) for s in shapes], np.dtype(dtype)
        self.sizes = [math.prod(s) for s in self.shapes]
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes, dtype=np.int64)]).tolist()
        self.theta, self.ids, self.slots = theta, ids, {}
        self.grad = np.empty(self.offsets[-1], dtype=self.dtype)   # the step's gradients, end to end
        self.segments, i = [], 0
        while i < len(self.sizes):
            j = i + 1
            if self.sizes[i] < _ALONE:
                while j < len(self.sizes) and self.sizes[j] < _ALONE:
                    j += 1
            self.segments.append((self.offsets[i], self.offsets[j], i, j))
            i = j

    def view(self, name):
        i = self.names.index(name)
        a, b, shape = self.offsets[i], self.offsets[i + 1], self.shapes[i]
        return {k: v[a:b].reshape(shape) for k, v in self.slots.items()}


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


def numerical_gradient(f, x):
    """Central differences in float64: ∂f/∂x_i ≈ (f(x + h e_i) − f(x − h e_i)) / 2h,
    h = ∛ε·max(1, |x_i|) ≈ 6e-6·max(1, |x_i|) (error O(h²) + O(ε/h), balanced)."""
    x = np.array(x, dtype=np.float64)
    g = np.empty_like(x)
    flat, gflat = x.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        xi = flat[i]
        h = np.cbrt(np.finfo(np.float64).eps) * max(1.0, abs(xi))
        flat[i] = xi + h
        fp = float(f(x))
        flat[i] = xi - h
        fm = float(f(x))
        flat[i] = xi
        gflat[i] = (fp - fm) / (2 * h)
    return g


class _Problem:
    """The closure seen as a function of one flat float64 vector x of all the parameters."""

    def __init__(self, opt, closure, params):
        self.opt, self.closure, self.params = opt, closure, params
        self.tensors = isinstance(params[0], Tensor)
        self.shapes = [tuple(np.shape(self._array(p))) for p in params]
        self.sizes = [math.prod(s) for s in self.shapes]
        self.n = sum(self.sizes)
        self.evals = 0

    def _array(self, p):
        return p.data if isinstance(p, Tensor) else p

    def get(self):
        """The parameters as a new flat float64 vector."""
        return np.concatenate([np.reshape(self._array(p), -1) for p in self.params]).astype(np.float64)

    def set(self, x):
        """Write the flat vector x into the parameters, in place (cast to their dtype)."""
        offset = 0
        for p, shape, n in zip(self.params, self.shapes, self.sizes):
            self._array(p)[...] = x[offset:offset + n].reshape(shape)
            offset += n

    def __call__(self, x=None):
        """(loss, flat float64 gradient) at x (at the current parameters when x is None)."""
        if x is not None:
            self.set(x)
        loss, grads = self.opt._evaluate(self.closure, self.params)
        self.evals += 1
        return loss, np.concatenate([np.reshape(g, -1) for g in grads]).astype(np.float64)

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


def _forget(opt_ref, generation, pid, name):
    """weakref.finalize callback: parameter `name` of optimizer opt_ref() was garbage-collected."""
    opt = opt_ref()
    if opt is None or opt._generation != generation:
        return
    opt._index.pop(pid, None)
    opt._slots.pop(name, None)
    if opt._group is not None and name in opt._group.names:
        opt._dead.add(name)                 # its slice of the flat state is dropped at the next re-pack


class Optimizer:
    """Base class; see the module docstring for the entry points and the order of an update.

    learning_rate: a float >= 0, or a schedule (a `LearningRateSchedule` or any callable of the
        step) evaluated at `iterations` before each update. `lr=` is accepted as an alias.
        Reading `opt.learning_rate` gives the current value; setting it replaces the float or
        the schedule (ReduceLROnPlateau does this).
    clipnorm / global_clipnorm / clipvalue: gradient clipping, Keras semantics, at most one.
    weight_decay: decoupled decay θ ← θ − η·wd·θ before each update (None: off).
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
        self.reset()

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

    def fused(self):
        """A one-pass kernel doing exactly what `rule` does on a flat float vector (see
        tidu.optimizers.fused, the extra `fast`), or None: the rule runs."""
        return None

    def on_epoch_begin(self, epoch):
        """Told by the training loop when epoch `epoch` (0-based) starts; rules that switch at an
        epoch (SWATS(switch_epoch=...)) read `self.epoch`."""
        self.epoch = int(epoch)

    # --- state ---------------------------------------------------------------------------------
    def reset(self):
        """Forget all state: iterations = 0, no moments, no history."""
        self.iterations = 0
        self._generation = getattr(self, "_generation", 0) + 1
        self._count = 0          # Parameters met so far; the i-th is named 'param{i}'
        self._index = {}         # id(param) -> i, for live parameters (weakly held)
        self._dead = set()       # names of parameters garbage-collected since
        self._group = None       # the flat group of the current parameter list
        self._slots = {}         # name -> state dict, for parameters outside the group
        self._globals = {}       # name -> array: scalars of non-elementwise rules, closure methods' state
        self._pending = {}       # name -> state dict loaded before its parameter was met
        self._last_params = None
        self._cache = {}

    def _name_of(self, p):
        i = self._index.get(id(p))
        if i is None:
            i = self._index[id(p)] = self._count
            self._count += 1
            # a dead parameter's state goes with it, and its id may be reused by a new object
            weakref.finalize(p, _forget, weakref.ref(self), self._generation, id(p), f"param{i}")
        return f"param{i}"

    def _check_pending(self, name, shape, where):
        state = self._pending.get(name)
        if state is None:
            return
        for slot, arr in state.items():
            if arr.size != math.prod(shape):
                raise ShapeError(f"{self.name}: loaded state {name}/{slot} has shape {arr.shape}, but {where} "
                                 f"has shape {tuple(shape)}")

    def _take_state(self, name):
        """The existing state of `name` (popped from the loose slots or the loaded ones), or None."""
        if name in self._slots:
            return self._slots.pop(name)
        return self._pending.pop(name, None)

    def _dissolve_group(self):
        g = self._group
        if g is not None:
            for name in g.names:
                if name not in self._dead:
                    self._slots[name] = {k: v.copy() for k, v in g.view(name).items()}
        self._dead.clear()
        self._group = None

    def _new_state(self, theta, flat=True):
        """init_state(theta); on a flat vector, 0-d entries are optimizer-wide scalars (globals)."""
        state = self.init_state(theta)
        for k, v in list(state.items()):
            if flat and np.ndim(v) == 0:
                if k not in self._globals:
                    self._globals[k] = np.array(v)
                del state[k]
        return state

    def _build_group(self, names, arrays, theta=None, ids=None):
        """A group for `names` (state carried over per name) over `arrays`; theta is the packed
        buffer (None: copy-in, the caller passes the flat theta to each step)."""
        self._dissolve_group()
        dtype = theta.dtype if theta is not None else np.result_type(*arrays)
        group = _Group(names, [a.shape for a in arrays], dtype, theta, ids)
        flat = theta if theta is not None else np.concatenate([a.reshape(-1) for a in arrays]).astype(dtype)
        group.slots = {k: np.array(v, dtype=np.result_type(v), copy=True)
                       for k, v in self._new_state(flat).items()}
        for name, a, b, shape in zip(names, group.offsets, group.offsets[1:], group.shapes):
            old = self._take_state(name)
            if old:
                for k, buf in group.slots.items():
                    if k in old:
                        buf[a:b] = np.reshape(old[k], -1)
        self._group = group
        return group

    def _key_state(self, name, theta):
        state = self._slots.get(name)
        if state is None:
            old = self._pending.pop(name, None)
            state = self._slots[name] = {k: np.array(v, copy=True)
                                         for k, v in self._new_state(theta, flat=False).items()}
            if old:
                for k, buf in state.items():
                    if k in old:
                        buf[...] = np.reshape(old[k], buf.shape)
        elif any(v.shape != theta.shape for v in state.values()):
            raise ShapeError(f"{self.name}: the state of {name} has shape "
                             f"{next(iter(state.values())).shape}, but the parameter now has shape {theta.shape}; "
                             f"call reset() to start over with new parameters")
        return state

    def state_dict(self):
        """{str: NumPy array}: everything needed to continue exactly where this optimizer is."""
        d = {"iterations": np.array(self.iterations, dtype=np.int64)}
        if not callable(self._learning_rate):
            d["learning_rate"] = np.array(self._learning_rate, dtype=np.float64)
        per_name = dict(self._pending)
        per_name.update(self._slots)
        if self._group is not None:
            per_name.update({n: self._group.view(n) for n in self._group.names if n not in self._dead})
        for name, state in per_name.items():
            for slot, arr in state.items():
                d[f"{name}/{slot}"] = np.array(arr, copy=True)
        for k, v in self._globals.items():
            d[f"global/{k}"] = np.array(v, copy=True)
        return d

    def load_state_dict(self, state):
        """Restore `state_dict()` output; everything is checked before anything changes."""
        if not isinstance(state, dict):
            raise TypeError(f"{self.name}.load_state_dict: expected a dict of arrays, got {type(state).__name__}")
        if "iterations" not in state:
            raise ValueError(f"{self.name}.load_state_dict: the state has no 'iterations' entry; "
                             f"keys: {', '.join(sorted(state)) or '(none)'}")
        iterations = np.asarray(state["iterations"])
        if iterations.shape != () or iterations.dtype.kind not in "iuf" or iterations < 0:
            raise ValueError(f"{self.name}.load_state_dict: expected 'iterations' to be a count >= 0, "
                             f"got {state['iterations']!r}")
        current = self.state_dict()
        per_name, globals_ = {}, {}
        for key, value in state.items():
            if key in ("iterations", "learning_rate"):
                continue
            if "/" not in key:
                raise ValueError(f"{self.name}.load_state_dict: unexpected key {key!r}; expected "
                                 f"'iterations', 'learning_rate', 'param<i>/<slot>', 'key:<key>/<slot>' "
                                 f"or 'global/<name>'")
            owner, slot = key.split("/", 1)
            arr = np.asarray(value)
            if key in current and current[key].shape != arr.shape:
                raise ShapeError(f"{self.name}.load_state_dict: {key} has shape {arr.shape}, expected "
                                 f"{current[key].shape}")
            if owner == "global":
                globals_[slot] = arr
            else:
                per_name.setdefault(owner, {})[slot] = arr
        lr = None
        if "learning_rate" in state and not callable(self._learning_rate):
            lr = self._check_learning_rate(float(np.asarray(state["learning_rate"])))
        self._validate_globals(globals_)
        # nothing raises past this point
        self.iterations = int(iterations)
        if lr is not None:
            self._learning_rate = lr
        group = self._group
        for name, slots in per_name.items():
            if group is not None and name in group.names:
                for k, v in group.view(name).items():
                    if k in slots:
                        v[...] = slots[k].reshape(v.shape)
            elif name in self._slots:
                for k, v in self._slots[name].items():
                    if k in slots:
                        v[...] = slots[k].reshape(v.shape)
            else:
                self._pending[name] = {k: np.array(v, copy=True) for k, v in slots.items()}
        self._globals = {k: np.array(v, copy=True) for k, v in globals_.items()}
        self._cache = {}

    def _validate_globals(self, globals_):
        """Subclasses with structured global state check it here (before anything changes)."""

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
            g = np.asarray(g)
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
        if not isinstance(value, np.ndarray):
            raise TypeError(f"{self.name}: {self._where(where)} must be a NumPy array (updated in place), got "
                            f"{type(value).__name__}")
        if value.dtype.kind != "f":
            raise TypeError(f"{self.name}: {self._where(where)} must be a floating-point array, "
                            f"got dtype {value.dtype}")
        if not value.flags.writeable:
            raise ValueError(f"{self.name}: {self._where(where)} is read-only; it is updated in place")
        return value

    # --- clipping and decay --------------------------------------------------------------------
    @staticmethod
    def _sq_norm(a):
        return float(np.sum(np.square(a.reshape(-1), dtype=np.float64)))

    def _clip_factors(self, grads):
        """The factor for each gradient (None: no norm clipping)."""
        if self.clipnorm is not None:
            c = self.clipnorm
            return [c / max(math.sqrt(self._sq_norm(g)), c) for g in grads]
        if self.global_clipnorm is not None:
            c = self.global_clipnorm
            f = c / max(math.sqrt(sum(self._sq_norm(g) for g in grads)), c)
            return [f] * len(grads)
        return None

    def _clip_one(self, g, factor):
        """A clipped copy of g (g itself when nothing clips): never writes into g."""
        if factor is not None and factor != 1.0:
            g = g * factor
        if self.clipvalue is not None:
            g = np.clip(g, -self.clipvalue, self.clipvalue)
        return g

    def _decay(self, theta, lr):
        if self.weight_decay:
            theta -= (lr * self.weight_decay) * theta

    # --- running the rule ----------------------------------------------------------------------
    def _run(self, theta, g, slots, t, lr, with_globals):
        state = {**slots, **self._globals} if with_globals else slots
        new_theta, new_state = self.rule(theta, g, state, t, lr)
        if new_theta is not theta:
            theta[...] = new_theta
        for k, v in new_state.items():
            buf = slots.get(k)
            if buf is None:
                self._globals[k] = np.array(v, copy=True)
            elif v is not buf:
                buf[...] = v

    def _run_group(self, group, theta, grads, t, lr):
        """Decay, then run the rule (or its fused kernel) on the flat vector theta. Without
        clipping, an elementwise rule runs once per segment of the group (see _Group), on the
        gradients as they are where a parameter is large; otherwise the gradients are
        concatenated, clipped, and the rule runs once on the whole vector."""
        clipping = self.clipnorm is not None or self.global_clipnorm is not None or self.clipvalue is not None
        if self.elementwise and not clipping and not self._globals:
            kernel = self.fused()
            self._decay(theta, lr)
            for a, b, i, j in group.segments:
                if j == i + 1:
                    g = grads[i].reshape(-1)
                    if g.dtype != group.dtype or not g.flags.c_contiguous:
                        g = np.ascontiguousarray(g, dtype=group.dtype)
                else:
                    g = np.concatenate([gi.reshape(-1) for gi in grads[i:j]], out=group.grad[a:b],
                                       casting="same_kind")
                slots = {k: v[a:b] for k, v in group.slots.items()}
                if kernel is not None:
                    kernel(self, theta[a:b], g, slots, t, lr)
                else:
                    self._run(theta[a:b], g, slots, t, lr, with_globals=False)
            return
        g = np.concatenate([gi.reshape(-1) for gi in grads], out=group.grad, casting="same_kind")
        if self.clipnorm is not None or self.global_clipnorm is not None:
            pieces = [g[a:b] for a, b in zip(group.offsets, group.offsets[1:])]   # views: g is our copy
            for piece, f in zip(pieces, self._clip_factors(pieces)):
                if f != 1.0:
                    piece *= f
        if self.clipvalue is not None:
            np.clip(g, -self.clipvalue, self.clipvalue, out=g)
        self._decay(theta, lr)
        self._run(theta, g, group.slots, t, lr, with_globals=True)

    def _apply_arrays(self, names, thetas, grads, lr, t):
        """One update of the arrays `thetas` (validated, same order as names and grads)."""
        if self.elementwise:
            grads = [g.astype(th.dtype, copy=False) for g, th in zip(grads, thetas)]
            factors = self._clip_factors(grads) or [None] * len(grads)
            states = [self._key_state(name, theta) for name, theta in zip(names, thetas)]  # may raise
            for theta, g, f, state in zip(thetas, grads, factors, states):
                g = self._clip_one(g, f)
                self._decay(theta, lr)
                self._run(theta, g, state, t, lr, with_globals=False)
            return
        group = self._group
        if group is None or group.names != tuple(names) or group.theta is not None or \
                group.shapes != [a.shape for a in thetas]:
            group = self._build_group(names, thetas)
        flat = np.concatenate([a.reshape(-1) for a in thetas]).astype(group.dtype)
        self._run_group(group, flat, grads, t, lr)
        for theta, a, b in zip(thetas, group.offsets, group.offsets[1:]):
            theta[...] = flat[a:b].reshape(theta.shape)

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
            self._apply_arrays(names, [p.data for p in params], grads, lr, t)
        return self._finish_update(params)

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
        theta, ndarray = group.theta, np.ndarray
        for pair, pid in zip(pairs, group.ids):
            if type(pair) is not tuple or len(pair) != 2:
                return None
            g, p = pair
            if id(p) != pid or type(g) is not ndarray or g.dtype.kind != "f":
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
        return self._build_group(names, [p.data for p in params], theta=self._flat_buffer(params), ids=ids)

    @staticmethod
    def _flat_buffer(params):
        """The flat buffer the params' data already are consecutive views of, else pack them."""
        base = params[0].data.base
        if (isinstance(base, np.ndarray) and base.ndim == 1 and base.flags.c_contiguous
                and base.size == sum(p.data.size for p in params)):
            addr, item, offset = base.__array_interface__["data"][0], base.itemsize, 0
            for p in params:
                d = p.data
                if d.base is not base or not d.flags.c_contiguous or \
                        d.__array_interface__["data"][0] != addr + offset * item:
                    break
                offset += d.size
            else:
                return base
        return pack(params)

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
        self._apply_arrays(names, thetas, gs, lr, t)
        self.iterations += 1
        return self.iterations

    # --- entry point 3: torch ------------------------------------------------------------------
    def _resolve_params(self, params, entry):
        if params is None:
            params = self._last_params
            if params is None:
                raise TypeError(f"{self.name}.{entry}: no parameters yet; pass params=[...] (Parameters or "
                                f"NumPy arrays) on the first call")
        elif isinstance(params, (Tensor, np.ndarray)):
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

    # --- convenience for plain functions (the lab) ---------------------------------------------
    def minimize(self, f, x0, grad=None, steps=100, callback=None, gtol=None):
        """Minimize f: R^n -> R from x0 with a fresh copy of this optimizer (same config).

        f(x) -> float, grad(x) -> array shaped like x (None: float64 central differences).
        Runs `steps` calls of step(); stops early when callback(k, x, loss) returns True or
        max|∇f| <= gtol at a step's start. Returns a MinimizeResult (x, fun, path, losses, ...).
        """
        check_int(type(self).__name__, "steps", steps, minimum=0)
        x = np.array(x0, dtype=np.float64, copy=True)
        if grad is None:
            grad = lambda z: numerical_gradient(f, z)  # noqa: E731
        opt = self._fresh()
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

    def _fresh(self):
        new = copy.copy(self)
        new.reset()
        return new
