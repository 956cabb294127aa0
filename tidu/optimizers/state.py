"""The optimizer's state: per-parameter slots, the flat group of the fast path, running the rule.

Fast path (PERF.md lesson 4). The first time `apply_gradients` sees a list of Parameters of
one dtype, it lays their data end to end in one flat buffer (`tidu.autograd.flat.FlatView.pack`;
a list already packed that way is adopted as is) and keeps the state as flat buffers of the same
length, in the same layout (`_Group`). Each step then concatenates the gradients (one copy into
a reused buffer, never writing into them) and runs the rule once on the flat arrays: the same
~10 ufunc calls for a whole model as for one tensor. Without clipping, an elementwise rule runs
once per segment instead: a large parameter (>= 2^17 elements) alone, from its gradient as it
is (no copy), the smaller ones between large ones together. A rule with a fused kernel
(`fused()`, numba, the extra `fast`) runs that kernel instead. The training loop passes the
same Parameters every step; once they are checked, such a call skips the per-pair checks
(`Optimizer._same_group`). A different list of parameters (or data replaced behind the
optimizer's back) is re-packed, carrying each parameter's state over. Rules whose class sets
`elementwise = False` (SWATS: its step size comes from dot products over all parameters) always
run on one flat vector; on the other paths it is assembled by copying.

State. `state_dict()` returns {str: NumPy array}: 'iterations', 'learning_rate' (when it is a
constant; a schedule lives in the config), 'param{i}/{slot}' for the i-th Parameter this
optimizer met (the order of the lists given to it, as Keras numbers its variables),
'key:{key}/{slot}' for update()'s dict keys and 'global/{name}' for scalars and the state of
the closure methods. `load_state_dict` restores it exactly (resuming continues bit-identically);
state for parameters not seen yet waits until they are.
"""
import math
import weakref

import numpy as np

from tidu import backend
from tidu.autograd.flat import FlatView
from tidu.errors import ShapeError

_ALONE = 1 << 17  # a parameter this large (elements) is updated from its own gradient, not a copy


class _Group:
    """Parameters laid end to end in one flat vector (the layout of `flat`, a FlatView of their
    arrays), with the state as flat buffers in that layout.

    segments: (a, b, i, j, view), the runs of the flat vector [a, b) an elementwise rule updates
    in one call, from parameters i..j−1 (view: their FlatView, None for one alone): each
    parameter of at least _ALONE elements alone (its gradient array is used as it is), and each
    run of smaller ones between them together (their gradients gathered into grad[a:b]). The
    MLP's 784×512 kernel then costs no copy, and a model of many small layers still takes one
    call. decayed: the runs [a, b) of parameters that weight decay applies to.
    """

    __slots__ = ("names", "flat", "shapes", "offsets", "theta", "slots", "ids", "dtype", "grad",
                 "segments", "decayed", "decay_flags")

    def __init__(self, names, flat, dtype, theta=None, ids=None, decayed=None):
        self.names, self.flat, self.dtype = tuple(names), flat, np.dtype(dtype)
        self.shapes, self.offsets = flat.shapes, flat.offsets
        self.theta, self.ids, self.slots = theta, ids, {}
        # the step's gradients, end to end (empty_like keeps a backend's ndarray subclass)
        self.grad = np.empty(flat.size, self.dtype) if theta is None else np.empty_like(theta)
        sizes, arrays = flat.sizes, flat.params
        self.segments, i = [], 0
        while i < len(sizes):
            j = i + 1
            if sizes[i] < _ALONE:
                while j < len(sizes) and sizes[j] < _ALONE:
                    j += 1
            view = FlatView(arrays[i:j]) if j > i + 1 else None
            self.segments.append((self.offsets[i], self.offsets[j], i, j, view))
            i = j
        self.decay_flags, self.decayed = tuple(decayed or [True] * len(self.names)), []
        for (a, b, _), on in zip(flat.ranges(), self.decay_flags):
            if on and self.decayed and self.decayed[-1][1] == a:
                self.decayed[-1] = (self.decayed[-1][0], b)
            elif on:
                self.decayed.append((a, b))

    def view(self, name):
        """The state of parameter `name`: views of the flat slots shaped like it."""
        a, b, shape = self.flat.ranges()[self.names.index(name)]
        return {k: v[a:b].reshape(shape) for k, v in self.slots.items()}


def _forget(opt_ref, generation, pid, name):
    """weakref.finalize callback: parameter `name` of optimizer opt_ref() was garbage-collected."""
    opt = opt_ref()
    if opt is None or opt._generation != generation:
        return
    opt._index.pop(pid, None)
    opt._slots.pop(name, None)
    if opt._group is not None and name in opt._group.names:
        opt._dead.add(name)                 # its slice of the flat state is dropped at the next re-pack


class _TwoParts:
    """One update of a group's parameters as two parts for two threads at once (see
    Optimizer.update_in_two): part k runs the fused kernel over its share of the flat vector,
    on the sum of the two gradients of each parameter (added by the kernel itself, or first
    into the group's gradient buffer for a run of small parameters)."""

    def __init__(self, opt, group, kernel, params, lr, t):
        self.opt, self.group, self.kernel, self.params, self.lr, self.t = \
            opt, group, kernel, params, lr, t
        self.shares = _shares(group.segments, group.theta.size // 2)

    def run(self, k, grads0, grads1):
        """Part k (0 or 1) from the two lists of gradients, one per parameter in order (None:
        no gradient, zeros). Writes only its share of θ, the state and the gradient buffer."""
        group, theta, offsets = self.group, self.group.theta, self.group.offsets
        for lo, hi, i, j in self.shares[k]:
            slots = {n: v[lo:hi] for n, v in group.slots.items()}
            if j == i + 1:             # one parameter: its elements [lo − a, hi − a)
                g0, g1 = _flat(grads0[i], group.dtype), _flat(grads1[i], group.dtype)
                if g0 is not None and g1 is not None:   # the kernel adds them as it goes
                    a = offsets[i]
                    self.kernel(self.opt, theta[lo:hi], g0[lo - a:hi - a], slots, self.t,
                                self.lr, g1=g1[lo - a:hi - a])
                    continue
                _add(grads0[i], grads1[i], lo - offsets[i], hi - offsets[i], group.grad[lo:hi])
            else:                      # a run of small ones, whole
                for q in range(i, j):
                    _add(grads0[q], grads1[q], 0, offsets[q + 1] - offsets[q],
                         group.grad[offsets[q]:offsets[q + 1]])
            self.kernel(self.opt, theta[lo:hi], group.grad[lo:hi], slots, self.t, self.lr)

    def finish(self):
        """After both parts: the parameters' constraints and the step count, as apply_gradients."""
        return self.opt._finish_update(self.params)


def _shares(segments, half):
    """The group's segments cut into two shares of about `half` elements each: [(lo, hi, i, j)],
    a segment of one parameter split at `half`, a run of small ones kept whole."""
    first, second = [], []
    for a, b, i, j, view in segments:
        if b <= half:
            first.append((a, b, i, j))
        elif a >= half:
            second.append((a, b, i, j))
        elif view is None:
            first.append((a, half, i, j))
            second.append((half, b, i, j))
        else:
            (first if half - a >= b - half else second).append((a, b, i, j))
    return first, second


def _flat(g, dtype):
    """g as a flat view when it is a C-contiguous array of `dtype`, else None."""
    if g is None or g.dtype != dtype or not g.flags.c_contiguous:
        return None
    return g.reshape(-1)


def _add(g0, g1, lo, hi, out):
    """out = g0 + g1 over the flat elements [lo, hi) (a missing gradient counts as zeros)."""
    if g0 is None and g1 is None:
        out[...] = 0
    elif g0 is None or g1 is None:
        out[...] = (g1 if g0 is None else g0).reshape(-1)[lo:hi]
    else:
        np.add(g0.reshape(-1)[lo:hi], g1.reshape(-1)[lo:hi], out=out)


class _State:
    """Optimizer's state keeping and its update machinery (mixed into Optimizer)."""

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
                    self._globals[k] = backend.xp.array(v)
                del state[k]
        return state

    def _build_group(self, names, arrays, theta=None, ids=None, decayed=None):
        """A group for `names` (state carried over per name) over `arrays`; theta is the packed
        buffer (None: copy-in, the caller passes the flat theta to each step); decayed: whether
        weight decay applies to each (None: all)."""
        self._dissolve_group()
        view = FlatView(arrays)
        dtype = theta.dtype if theta is not None else view.dtype
        group = _Group(names, view, dtype, theta, ids, decayed)
        flat = theta if theta is not None else view.get(dtype=dtype)
        group.slots = {k: backend.xp.array(v, dtype=np.result_type(v), copy=True)
                       for k, v in self._new_state(flat).items()}
        for i, name in enumerate(names):
            old = self._take_state(name)
            if old:
                for k, buf in group.slots.items():
                    if k in old:
                        view.split(buf)[i][...] = np.reshape(old[k], group.shapes[i])
        self._group = group
        return group

    def _key_state(self, name, theta):
        state = self._slots.get(name)
        if state is None:
            old = self._pending.pop(name, None)
            state = self._slots[name] = {k: backend.xp.array(v, copy=True)
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
                d[f"{name}/{slot}"] = np.array(backend.to_numpy(arr), copy=True)
        for k, v in self._globals.items():
            d[f"global/{k}"] = np.array(backend.to_numpy(v), copy=True)
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
            arr = backend.to_numpy(value)
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
                self._pending[name] = {k: backend.xp.array(v, copy=True) for k, v in slots.items()}
        self._globals = {k: backend.xp.array(v, copy=True) for k, v in globals_.items()}
        self._cache = {}

    def _validate_globals(self, globals_):
        """Subclasses with structured global state check it here (before anything changes)."""


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
            theta -= (lr * self.weight_decay) * theta       # θ ← θ − η·wd·θ

    def _decay_group(self, group, theta, lr):
        """Weight decay on the runs of the flat theta whose parameters are not excluded."""
        if self.weight_decay:
            for a, b in group.decayed:
                self._decay(theta[a:b], lr)

    # --- running the rule ----------------------------------------------------------------------
    def _run(self, theta, g, slots, t, lr, with_globals):
        state = {**slots, **self._globals} if with_globals else slots
        new_theta, new_state = self.rule(theta, g, state, t, lr)
        if new_theta is not theta:
            theta[...] = new_theta
        for k, v in new_state.items():
            buf = slots.get(k)
            if buf is None:
                self._globals[k] = backend.xp.array(v, copy=True)
            elif v is not buf:
                buf[...] = v

    def _run_group(self, group, theta, grads, t, lr):
        """Decay, then run the rule (or its fused kernel) on the flat vector theta. Without
        clipping, an elementwise rule runs once per segment of the group (see _Group), on the
        gradients as they are where a parameter is large; otherwise the gradients are
        concatenated, clipped, and the rule runs once on the whole vector."""
        clipping = self.clipnorm is not None or self.global_clipnorm is not None or self.clipvalue is not None
        if self.elementwise and not clipping and not self._globals:
            # numba kernels take NumPy arrays only; fused(dtype) is None for a dtype it cannot take
            kernel = self.fused(group.dtype) if backend.xp is np else None
            self._decay_group(group, theta, lr)
            for a, b, i, j, view in group.segments:
                if view is None:
                    g = grads[i].reshape(-1)
                    if g.dtype != group.dtype or not g.flags.c_contiguous:
                        g = backend.xp.ascontiguousarray(g, dtype=group.dtype)
                else:
                    g = view.gather(grads[i:j], out=group.grad[a:b])
                slots = {k: v[a:b] for k, v in group.slots.items()}
                if kernel is not None:
                    kernel(self, theta[a:b], g, slots, t, lr)
                else:
                    self._run(theta[a:b], g, slots, t, lr, with_globals=False)
            return
        g = group.flat.gather(grads, out=group.grad)
        if self.clipnorm is not None or self.global_clipnorm is not None:
            pieces = group.flat.split(g)                    # views: g is our copy
            for piece, f in zip(pieces, self._clip_factors(pieces)):
                if f != 1.0:
                    piece *= f
        if self.clipvalue is not None:
            np.clip(g, -self.clipvalue, self.clipvalue, out=g)
        self._decay_group(group, theta, lr)
        self._run(theta, g, group.slots, t, lr, with_globals=True)

    def _apply_arrays(self, names, thetas, grads, lr, t, decayed):
        """One update of the arrays `thetas` (validated, same order as names, grads and the
        weight-decay flags `decayed`)."""
        if self.elementwise:
            grads = [g.astype(th.dtype, copy=False) for g, th in zip(grads, thetas)]
            factors = self._clip_factors(grads) or [None] * len(grads)
            states = [self._key_state(name, theta) for name, theta in zip(names, thetas)]  # may raise
            for theta, g, f, state, on in zip(thetas, grads, factors, states, decayed):
                g = self._clip_one(g, f)
                if on:
                    self._decay(theta, lr)
                self._run(theta, g, state, t, lr, with_globals=False)
            return
        group = self._group
        if group is None or group.names != tuple(names) or group.theta is not None or \
                group.shapes != [a.shape for a in thetas] or group.decay_flags != tuple(decayed):
            group = self._build_group(names, thetas, decayed=decayed)
        view = FlatView(thetas)
        flat = view.get(dtype=group.dtype)
        self._run_group(group, flat, grads, t, lr)
        view.set(flat)
