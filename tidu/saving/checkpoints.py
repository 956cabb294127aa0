"""Training checkpoints: all that `fit` needs to continue a killed run bit-identically.

    ckpt = tidu.callbacks.ModelCheckpoint("run.tidu", save_freq=100)   # or save_freq="epoch"
    model.fit(x, y, epochs=10, seed=0, callbacks=[ckpt])               # killed at any point
    model.fit(x, y, epochs=10, seed=0, callbacks=[ckpt], resume_from="run.tidu")

A checkpoint is a model file (saving.model_file: JSON + safetensors, written atomically) whose
config.json also records, under training.fit, where fit was:

    epoch, step         the epoch in progress (0-based) and how many of its steps are done
    samples, batch_size, steps, shuffle, steps_per_epoch, curriculum
                        the shape of the run; a resumed fit must have the same
    epoch_rng           the generator's state just before it drew this epoch's order, so a
                        resumed epoch gets the same permutation (training.rng holds the
                        generator's current state: dropout and augmentation go on from there)
    sampler             {pos, rng}: the same for the endless stream of steps_per_epoch
    loss_sum, seen, metrics    the epoch's running sums, so its logged averages come out the same
    history, history_epochs    the History so far
    callbacks           the state of stateful callbacks ('EarlyStopping:0': {...}), by class
                        and position among the callbacks of that class
    stopped             a callback had stopped training: a resumed fit trains no further

The weights, the optimizer state (step count, moments) and the generators are in the model
file as for model.save. On a resume inside an epoch, on_epoch_begin runs again for that epoch
(as with Keras' BackupAndRestore). A callback that keeps copies of the weights defines
get_weight_copies() / set_weight_copies(list or None) (EarlyStopping's best weights): they go
to the member callbacks.safetensors as '<callback key>/<i>', checked against the model's
weights before a resume changes anything. LossExplosion's last good weights (one step old)
are not recorded. Floats go to JSON as Python's repr (exact); NaN and ±inf as the strings
'NaN', 'Infinity', '-Infinity' (tidu's JSON reader refuses the non-standard constants).
"""
import math
import numbers

import numpy as np

from tidu import backend

__all__ = ["FitState", "Resume", "capture", "check_progress", "rng_state", "make_rng",
           "check_rng_state"]

_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_MAX_INT = 1 << 62          # counters and sizes beyond this are not from a real run
_MAX_ITEMS = 1 << 20        # list / dict lengths in the progress record


# --- numbers and generators in JSON -----------------------------------------------------------
_MAX_ARRAY = 100_000   # numbers in one row of a saved metric array


def encode_number(v):
    """A float or int for JSON: as is when finite, else 'NaN', 'Infinity' or '-Infinity'."""
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, numbers.Integral):
        return int(v)
    v = float(v)
    if math.isfinite(v):
        return v
    return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")


def decode_number(v):
    return _NONFINITE[v] if isinstance(v, str) else v


def _encode(v):
    """encode_number, through nested lists (a metric's count arrays)."""
    return [_encode(u) for u in v] if isinstance(v, list) else (None if v is None else encode_number(v))


def _decode(v):
    return [_decode(u) for u in v] if isinstance(v, list) else decode_number(v)


def _is_number_array(v, depth=0):
    """A list (nested at most 3 deep) of numbers, as a metric's count arrays are saved."""
    return (isinstance(v, list) and depth < 3 and len(v) <= _MAX_ARRAY
            and all(_is_number(u) or _is_number_array(u, depth + 1) for u in v))


def _short(v):
    text = repr(v)
    return text if len(text) <= 80 else text[:77] + "..."


def _is_number(v):
    if isinstance(v, str):
        return v in _NONFINITE
    if isinstance(v, bool):
        return False
    if isinstance(v, int):
        return abs(v) <= _MAX_INT
    return isinstance(v, float) and math.isfinite(v)


def _is_count(v, minimum=0):
    return isinstance(v, int) and not isinstance(v, bool) and minimum <= v <= _MAX_INT


def rng_state(generator):
    """The JSON form of a NumPy Generator's state (PCG64, np.random.default_rng's)."""
    state = generator.bit_generator.state
    if state.get("bit_generator") != "PCG64":
        raise ValueError(f"checkpoint: can only record a PCG64 generator (np.random.default_rng's), "
                         f"got {state.get('bit_generator')!r}")
    return {"bit_generator": "PCG64",
            "state": {"state": int(state["state"]["state"]), "inc": int(state["state"]["inc"])},
            "has_uint32": int(state["has_uint32"]), "uinteger": int(state["uinteger"])}


def check_rng_state(state):
    """None when `state` is a well-formed PCG64 state, else what is wrong with it."""
    if not isinstance(state, dict) or set(state) != {"bit_generator", "state", "has_uint32", "uinteger"}:
        return "expected {bit_generator, state, has_uint32, uinteger}"
    if state["bit_generator"] != "PCG64":
        return f"expected a PCG64 state, got bit_generator {state['bit_generator']!r}"
    inner = state["state"]
    if not isinstance(inner, dict) or set(inner) != {"state", "inc"}:
        return "expected state {state, inc}"
    for key in ("state", "inc"):
        v = inner[key]
        if not (isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 1 << 128):
            return f"expected state.{key} to be an int in [0, 2**128)"
    if state["has_uint32"] not in (0, 1) or isinstance(state["has_uint32"], bool):
        return "expected has_uint32 to be 0 or 1"
    u = state["uinteger"]
    if not (isinstance(u, int) and not isinstance(u, bool) and 0 <= u < 1 << 32):
        return "expected uinteger to be an int in [0, 2**32)"
    return None


def make_rng(state):
    """A new Generator in the recorded state (checked with check_rng_state first)."""
    rng = np.random.Generator(np.random.PCG64())
    rng.bit_generator.state = state
    return rng


def _permutation(state, n, shuffle):
    """The order a generator in `state` draws for n samples (the main generator is untouched)."""
    return make_rng(state).permutation(n) if shuffle else np.arange(n)


# --- what fit is doing ------------------------------------------------------------------------
class FitState:
    """Where `fit` is, kept up to date as it goes (three counters per step) and read by
    `capture` when a checkpoint is written."""

    __slots__ = ("epoch", "step", "steps", "epochs", "samples", "batch_size", "shuffle",
                 "steps_per_epoch", "curriculum", "epoch_rng", "loss_sum", "seen", "sampler",
                 "callbacks", "epoch_done")

    def __init__(self, epochs, samples, batch_size, shuffle, steps_per_epoch, curriculum, callbacks):
        self.epoch, self.step, self.steps, self.epochs = 0, 0, 0, epochs
        self.samples, self.batch_size, self.shuffle = samples, batch_size, bool(shuffle)
        self.steps_per_epoch, self.curriculum = steps_per_epoch, bool(curriculum)
        self.epoch_rng, self.loss_sum, self.seen = None, 0.0, 0
        self.sampler, self.callbacks, self.epoch_done = None, list(callbacks), False


def _callback_key(cb, counts):
    name = type(cb).__name__
    i = counts.get(name, 0)
    counts[name] = i + 1
    return f"{name}:{i}"


def capture_weight_copies(model):
    """{'<callback key>/<i>': array} of the callbacks of the fit in progress that keep copies of
    the model's weights (get_weight_copies), for the checkpoint's callbacks member; {} for none."""
    st = model.fit_state
    out, counts = {}, {}
    for cb in (st.callbacks if st is not None else []):
        key = _callback_key(cb, counts)
        get = getattr(cb, "get_weight_copies", None)
        copies = get() if get is not None else None
        for i, a in enumerate(copies or []):
            out[f"{key}/{i}"] = np.asarray(backend.to_numpy(a))
    return out


def group_weight_copies(tensors):
    """{'<callback key>': [array, ...]} from the member's '<callback key>/<i>' tensors, or a
    string saying what is wrong with their names."""
    groups = {}
    for name, a in tensors.items():
        key, _, index = name.rpartition("/")
        if not key or not index.isdigit():
            return f"tensor {name!r}: expected a name '<callback key>/<index>'"
        groups.setdefault(key, {})[int(index)] = a
    out = {}
    for key, by_index in groups.items():
        if sorted(by_index) != list(range(len(by_index))):
            return f"callback {key!r}: expected indices 0..{len(by_index) - 1}, got {sorted(by_index)}"
        out[key] = [by_index[i] for i in range(len(by_index))]
    return out


def capture(model):
    """The training.fit record for `model` now, or None when it is not inside `fit`."""
    st = model.fit_state
    if st is None:
        return None
    done = st.epoch_done
    history = model.history
    metrics = {}
    if not done:
        for m in model.compiled_metrics:
            metrics[m.name] = {k: _encode(v) for k, v in m.get_state().items()}
    callbacks, counts = {}, {}
    for cb in st.callbacks:
        key = _callback_key(cb, counts)
        get_state = getattr(cb, "get_state", None)
        if get_state is not None:
            state = get_state() or {}
            for k, v in state.items():
                if not (v is None or isinstance(v, (numbers.Real, np.bool_))):
                    raise ValueError(f"ModelCheckpoint: {type(cb).__name__}.get_state() returned "
                                     f"{k}={v!r}; expected numbers, booleans or None")
            if state:
                callbacks[key] = {k: None if v is None else encode_number(v) for k, v in state.items()}
    sampler = None
    if st.sampler is not None:  # the steps_per_epoch stream runs on across epochs
        s = st.sampler
        sampler = {"pos": int(min(s.pos, s.n)), "rng": s.state}
    return {
        "epoch": st.epoch + 1 if done else st.epoch,
        "step": 0 if done else st.step,
        "steps": st.steps, "epochs": st.epochs, "samples": st.samples,
        "batch_size": st.batch_size, "shuffle": st.shuffle,
        "steps_per_epoch": st.steps_per_epoch, "curriculum": st.curriculum,
        "loss_sum": encode_number(0.0 if done else st.loss_sum),
        "seen": 0 if done else int(st.seen),
        "metrics": metrics,
        "epoch_rng": None if done else st.epoch_rng,
        "sampler": sampler,
        "history": {k: [encode_number(v) for v in vs] for k, vs in history.history.items()},
        "history_epochs": [int(e) for e in history.epoch],
        "callbacks": callbacks,
        "stopped": bool(model.stop_training),
    }


# --- checking a record read from a file -------------------------------------------------------
def check_progress(p):
    """None when `p` is a well-formed training.fit record, else what is wrong with it."""
    required = {"epoch", "step", "steps", "epochs", "samples", "batch_size", "shuffle",
                "steps_per_epoch", "curriculum", "loss_sum", "seen", "metrics", "epoch_rng",
                "sampler", "history", "history_epochs", "callbacks", "stopped"}
    if not isinstance(p, dict):
        return f"expected an object, got {type(p).__name__}"
    if set(p) != required:
        missing, extra = sorted(required - set(p)), sorted(set(p) - required)
        return f"expected keys {sorted(required)}; missing {missing}, unexpected {extra}"
    for key in ("epoch", "step", "epochs", "seen"):
        if not _is_count(p[key]):
            return f"expected {key} to be an int >= 0, got {p[key]!r}"
    for key in ("steps", "samples", "batch_size"):
        if not _is_count(p[key], 1):
            return f"expected {key} to be an int >= 1, got {p[key]!r}"
    if p["step"] > p["steps"]:
        return f"step {p['step']} is past the epoch's {p['steps']} steps"
    for key in ("shuffle", "curriculum", "stopped"):
        if not isinstance(p[key], bool):
            return f"expected {key} to be true or false, got {p[key]!r}"
    if p["steps_per_epoch"] is not None and not _is_count(p["steps_per_epoch"], 1):
        return f"expected steps_per_epoch to be null or an int >= 1, got {p['steps_per_epoch']!r}"
    if not _is_number(p["loss_sum"]):
        return f"expected loss_sum to be a number, got {p['loss_sum']!r}"
    for key in ("metrics", "callbacks"):
        d = p[key]
        if not isinstance(d, dict) or len(d) > _MAX_ITEMS:
            return f"expected {key} to be an object"
        for name, state in d.items():
            if not isinstance(state, dict) or len(state) > 64:
                return f"expected {key}[{name!r}] to be an object"
            for k, v in state.items():
                if not (_is_number(v) or v is None or isinstance(v, bool)
                        or (key == "metrics" and _is_number_array(v))):
                    return (f"expected {key}[{name!r}][{k!r}] to be a number"
                            f"{' or an array of numbers' if key == 'metrics' else ''}, got "
                            f"{_short(v)}")
    if p["epoch_rng"] is not None:
        bad = check_rng_state(p["epoch_rng"])
        if bad:
            return f"epoch_rng: {bad}"
    s = p["sampler"]
    if s is not None:
        if not isinstance(s, dict) or set(s) != {"pos", "rng"} or not _is_count(s["pos"]):
            return f"expected sampler to be {{pos, rng}}, got {s!r}"
        if s["pos"] > p["samples"]:
            return f"sampler position {s['pos']} is past the {p['samples']} samples"
        if s["rng"] is not None:
            bad = check_rng_state(s["rng"])
            if bad:
                return f"sampler.rng: {bad}"
    epochs = p["history_epochs"]
    if not isinstance(epochs, list) or len(epochs) > _MAX_ITEMS or not all(_is_count(e) for e in epochs):
        return "expected history_epochs to be a list of ints >= 0"
    h = p["history"]
    if not isinstance(h, dict) or len(h) > _MAX_ITEMS:
        return "expected history to be an object"
    for k, vs in h.items():
        if not isinstance(vs, list) or len(vs) > _MAX_ITEMS or not all(_is_number(v) for v in vs):
            return f"expected history[{k!r}] to be a list of numbers"
    return None


# --- resuming -----------------------------------------------------------------------------------
class Resume:
    """A checkpoint read and checked against the model (saving.read_checkpoint), applied by
    fit once its own checks pass: nothing changes until `apply`."""

    def __init__(self, path, progress, weights, opt_state, rng, layer_rngs, weight_copies=None):
        self.path, self.progress = path, progress
        self.weights, self.opt_state = weights, opt_state
        self.rng_state, self.layer_rngs = rng, layer_rngs
        self.weight_copies = weight_copies or {}   # callback key -> [array per model weight]

    @property
    def epoch(self):
        return self.progress["epoch"]

    @property
    def step(self):
        return self.progress["step"]

    @property
    def stopped(self):
        return self.progress["stopped"]

    def running_sums(self):
        """(loss_sum, seen): the epoch's running loss sum and sample count at the checkpoint."""
        return float(decode_number(self.progress["loss_sum"])), int(self.progress["seen"])

    def check_run(self, where, samples, batch_size, shuffle, steps_per_epoch, curriculum):
        """ValueError unless fit was called as for the run that wrote the checkpoint."""
        p = self.progress
        mine = {"samples": samples, "batch_size": batch_size, "shuffle": bool(shuffle),
                "steps_per_epoch": steps_per_epoch, "curriculum": bool(curriculum)}
        for key, value in mine.items():
            if p[key] != value:
                what = "training samples" if key == "samples" else key
                raise ValueError(f"{where}: resume_from={self.path!r} was written by a fit with "
                                 f"{what}={p[key]!r}, this one has {what}={value!r}; resume with the "
                                 f"same data and arguments")

    def apply(self, model):
        """Write the weights, optimizer state and generators into `model` (all checked)."""
        for p, value in zip(model.weights, self.weights):
            p.data[...] = value
        model.optimizer.reset()
        model.optimizer.load_state_dict(self.opt_state)
        model.rng = make_rng(self.rng_state)
        by_name = {layer.name: layer for layer in model.all_layers()}
        for name, state in self.layer_rngs.items():
            by_name[name].rng = make_rng(state)
        return model.rng

    def restore_history(self, history):
        p = self.progress
        history.history = {k: [decode_number(v) for v in vs] for k, vs in p["history"].items()}
        history.epoch = list(p["history_epochs"])

    def restore_callbacks(self, callbacks):
        saved, counts = self.progress["callbacks"], {}
        for cb in callbacks:
            key = _callback_key(cb, counts)
            if key in saved and hasattr(cb, "set_state"):
                cb.set_state({k: decode_number(v) for k, v in saved[key].items()})
            if hasattr(cb, "set_weight_copies"):
                cb.set_weight_copies(self.weight_copies.get(key))

    def restore_metrics(self, metrics):
        saved = self.progress["metrics"]
        for m in metrics:
            m.set_state({k: _decode(v) for k, v in saved.get(m.name, {}).items()})

    def epoch_order(self, n):
        """The order of the resumed epoch (None when it is not shuffled by the generator)."""
        state = self.progress["epoch_rng"]
        return None if state is None else _permutation(state, n, True)

    def restore_sampler(self, sampler):
        s = self.progress["sampler"]
        if s is None:
            return
        sampler.pos = s["pos"]
        if s["rng"] is not None or not sampler.shuffle:
            sampler.state = s["rng"]
            sampler.order = (_permutation(s["rng"], sampler.n, True) if s["rng"] is not None
                             else np.arange(sampler.n))
        else:
            sampler.pos = sampler.n  # nothing drawn yet: the next batch starts a new pass
