"""Learning-rate schedules: the learning rate as a function of the step.

    opt = Adam(learning_rate=ExponentialDecay(1e-3, decay_steps=1000, decay_rate=0.5))

A schedule is called with `step` = the number of updates already applied (Keras's
`optimizer.iterations`: 0 for the first update) and returns a Python float. Every schedule
here follows the Keras class of the same name and has `get_config()`/`from_config()`, so an
optimizer that holds one stays serializable.

Reducing the learning rate when a metric stops improving (the notes: "halve the learning
rate when ten epochs bring no improvement") is not a schedule of the step:
`ReduceLROnPlateau` does it by setting `optimizer.learning_rate = new_value`, which replaces
a constant learning rate (and replaces a schedule by that constant).
"""
import inspect
import math
import numbers

from tidu._checks import check_nonnegative, check_number, check_positive
from tidu._registry import Configurable, did_you_mean, split_config, to_config


def _step(owner, step):
    if isinstance(step, bool) or not isinstance(step, numbers.Real):
        try:
            step = float(step)  # 0-d arrays
        except (TypeError, ValueError):
            raise TypeError(f"{owner}: expected the step to be a number, got {step!r}") from None
    if step < 0:
        raise ValueError(f"{owner}: expected step >= 0, got {step!r}")
    return float(step)


class LearningRateSchedule(Configurable):
    """Base class: `schedule(step) -> learning rate` (a float), with `get_config()`.

    Subclasses store each constructor argument under its own name, so `get_config()` can
    return them and `from_config(config)` can rebuild the schedule.
    """

    def __call__(self, step):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must define __call__(step)")

    def get_config(self):
        params = inspect.signature(type(self).__init__).parameters
        return {name: _jsonable(getattr(self, name)) for name in params if name != "self"}


def _jsonable(value):
    return list(value) if isinstance(value, tuple) else value


class Constant(LearningRateSchedule):
    """lr(step) = learning_rate."""

    def __init__(self, learning_rate):
        self.learning_rate = check_nonnegative("Constant", "learning_rate", learning_rate)

    def __call__(self, step):
        _step("Constant", step)
        return self.learning_rate


class PiecewiseConstantDecay(LearningRateSchedule):
    """lr(step) = values[0] for step <= boundaries[0], values[i] for boundaries[i-1] < step <=
    boundaries[i], values[-1] for step > boundaries[-1] (Keras). len(values) = len(boundaries) + 1.
    """

    def __init__(self, boundaries, values):
        boundaries, values = list(boundaries), list(values)
        if len(values) != len(boundaries) + 1:
            raise ValueError(f"PiecewiseConstantDecay: expected len(values) == len(boundaries) + 1, "
                             f"got {len(values)} values for {len(boundaries)} boundaries")
        for i, b in enumerate(boundaries):
            check_number("PiecewiseConstantDecay", f"boundaries[{i}]", b)
        if any(b2 <= b1 for b1, b2 in zip(boundaries, boundaries[1:])):
            raise ValueError(f"PiecewiseConstantDecay: expected increasing boundaries, got {boundaries}")
        for i, v in enumerate(values):
            check_nonnegative("PiecewiseConstantDecay", f"values[{i}]", v)
        self.boundaries, self.values = boundaries, [float(v) for v in values]

    def __call__(self, step):
        step = _step("PiecewiseConstantDecay", step)
        for b, v in zip(self.boundaries, self.values):
            if step <= b:
                return v
        return self.values[-1]


class StepDecay(LearningRateSchedule):
    """lr(step) = initial_learning_rate · gamma^⌊step / step_size⌋: multiply by `gamma` every
    `step_size` steps (torch.optim.lr_scheduler.StepLR counted in updates; gamma=0.5 halves)."""

    def __init__(self, initial_learning_rate, step_size, gamma=0.5):
        self.initial_learning_rate = check_nonnegative("StepDecay", "initial_learning_rate", initial_learning_rate)
        self.step_size = check_positive("StepDecay", "step_size", step_size)
        self.gamma = check_nonnegative("StepDecay", "gamma", gamma)

    def __call__(self, step):
        step = _step("StepDecay", step)
        return self.initial_learning_rate * self.gamma ** math.floor(step / self.step_size)


class ExponentialDecay(LearningRateSchedule):
    """lr(step) = initial_learning_rate · decay_rate^(step / decay_steps), the exponent floored
    when `staircase` (Keras)."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False):
        self.initial_learning_rate = check_nonnegative("ExponentialDecay", "initial_learning_rate",
                                           initial_learning_rate)
        self.decay_steps = check_positive("ExponentialDecay", "decay_steps", decay_steps)
        self.decay_rate = check_nonnegative("ExponentialDecay", "decay_rate", decay_rate)
        self.staircase = bool(staircase)

    def __call__(self, step):
        p = _step("ExponentialDecay", step) / self.decay_steps
        if self.staircase:
            p = math.floor(p)
        return self.initial_learning_rate * self.decay_rate ** p


class InverseTimeDecay(LearningRateSchedule):
    """lr(step) = initial_learning_rate / (1 + decay_rate · step / decay_steps), the ratio
    floored when `staircase` (Keras; Keras 2's `decay=d` argument is decay_rate=d, decay_steps=1)."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False):
        self.initial_learning_rate = check_nonnegative("InverseTimeDecay", "initial_learning_rate",
                                           initial_learning_rate)
        self.decay_steps = check_positive("InverseTimeDecay", "decay_steps", decay_steps)
        self.decay_rate = check_nonnegative("InverseTimeDecay", "decay_rate", decay_rate)
        self.staircase = bool(staircase)

    def __call__(self, step):
        p = _step("InverseTimeDecay", step) / self.decay_steps
        if self.staircase:
            p = math.floor(p)
        return self.initial_learning_rate / (1 + self.decay_rate * p)


class PolynomialDecay(LearningRateSchedule):
    """lr(step) = (initial − end) · (1 − s / decay_steps)^power + end with s = min(step,
    decay_steps); with `cycle`, decay_steps grows to the next multiple of itself above step
    instead (Keras)."""

    def __init__(self, initial_learning_rate, decay_steps, end_learning_rate=0.0001, power=1.0, cycle=False):
        self.initial_learning_rate = check_nonnegative("PolynomialDecay", "initial_learning_rate",
                                           initial_learning_rate)
        self.decay_steps = check_positive("PolynomialDecay", "decay_steps", decay_steps)
        self.end_learning_rate = check_nonnegative("PolynomialDecay", "end_learning_rate", end_learning_rate)
        self.power = check_number("PolynomialDecay", "power", power)
        self.cycle = bool(cycle)

    def __call__(self, step):
        step, decay_steps = _step("PolynomialDecay", step), self.decay_steps
        if self.cycle:
            decay_steps *= 1.0 if step == 0 else math.ceil(step / decay_steps)
        else:
            step = min(step, decay_steps)
        frac = 1 - step / decay_steps
        return (self.initial_learning_rate - self.end_learning_rate) * frac ** self.power + self.end_learning_rate


class CosineDecay(LearningRateSchedule):
    """Cosine decay with optional linear warmup (Keras, after Loshchilov & Hutter, SGDR, 2017).

    Without warmup (warmup_target=None), with s = min(step, decay_steps):
        lr = initial · ((1 − alpha) · ½(1 + cos(π s / decay_steps)) + alpha)
    With warmup: for step < warmup_steps the rate goes linearly from initial_learning_rate to
    warmup_target,  lr = initial + (warmup_target − initial) · step / warmup_steps,  then decays
    from warmup_target as above with s = min(step − warmup_steps, decay_steps).
    """

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0, warmup_target=None, warmup_steps=0):
        self.initial_learning_rate = check_nonnegative("CosineDecay", "initial_learning_rate", initial_learning_rate)
        self.decay_steps = check_positive("CosineDecay", "decay_steps", decay_steps)
        self.alpha = check_nonnegative("CosineDecay", "alpha", alpha)
        self.warmup_target = (None if warmup_target is None
                              else check_nonnegative("CosineDecay", "warmup_target", warmup_target))
        self.warmup_steps = check_nonnegative("CosineDecay", "warmup_steps", warmup_steps)
        if self.warmup_target is not None and self.warmup_steps == 0:
            raise ValueError("CosineDecay: expected warmup_steps > 0 with a warmup_target, got warmup_steps=0")

    def _decay(self, step, start):
        cosine = 0.5 * (1.0 + math.cos(math.pi * min(step, self.decay_steps) / self.decay_steps))
        return start * ((1 - self.alpha) * cosine + self.alpha)

    def __call__(self, step):
        step = _step("CosineDecay", step)
        if self.warmup_target is None:
            return self._decay(step, self.initial_learning_rate)
        if step < self.warmup_steps:
            delta = self.warmup_target - self.initial_learning_rate
            return self.initial_learning_rate + delta * step / self.warmup_steps
        return self._decay(step - self.warmup_steps, self.warmup_target)


_SCHEDULES = {cls.__name__: cls for cls in (Constant, PiecewiseConstantDecay, StepDecay, ExponentialDecay,
                                             InverseTimeDecay, PolynomialDecay, CosineDecay)}


def serialize(schedule):
    """{'class_name': ..., 'config': ...} of a LearningRateSchedule (JSON-able)."""
    if not isinstance(schedule, LearningRateSchedule):
        raise TypeError(f"schedules.serialize: expected a LearningRateSchedule, got {schedule!r}; a plain "
                        f"function cannot be saved, wrap it in a LearningRateSchedule subclass")
    return to_config(schedule)


def deserialize(config, custom_objects=None):
    """The schedule described by {'class_name': ..., 'config': ...}."""
    name, config = split_config(config, "schedules.deserialize", error=TypeError)
    known = {**_SCHEDULES, **(custom_objects or {})}
    if name not in known:
        hint = did_you_mean(name, known)
        raise ValueError(f"schedules.deserialize: unknown schedule {name!r}{hint} "
                         f"Known: {', '.join(sorted(known))}")
    return known[name].from_config(config)


def get(identifier):
    """A schedule from an instance, a config dict or a float (-> Constant)."""
    if isinstance(identifier, LearningRateSchedule):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, numbers.Real) and not isinstance(identifier, bool):
        return Constant(identifier)
    raise TypeError(f"schedules.get: expected a LearningRateSchedule, a config dict or a float, got {identifier!r}")
