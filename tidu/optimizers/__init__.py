"""Optimizers: every classic update rule behind one interface (see base.Optimizer).

    opt = tidu.optimizers.get("adam")                 # or Adam(learning_rate=1e-3)
    opt.apply_gradients([(grad, param), ...])        # Keras
    opt.update(params, grads)                        # the notes: dicts of NumPy arrays
    opt.step(closure)                                # torch; LBFGS, BFGS, Newton, CoordinateDescent
    opt.minimize(f, x0, grad=None, steps=100)        # a plain function of a NumPy vector

`get` accepts a name ('sgd', 'rmsprop', 'adam', ...; Keras's names where Keras has one), a
class name ('Adam'), a config dict {'class_name': ..., 'config': ...} or an instance.
"""
from tidu._registry import did_you_mean, split_config, to_config
from tidu.optimizers import schedules
from tidu.optimizers.adaptive import SWATS, AMSGrad, AdaGrad, Adadelta, Adagrad, Adam, Adamax, Nadam, RMSprop
from tidu.optimizers.base import MinimizeResult, Optimizer, numerical_gradient
from tidu.optimizers.rprop import AdaptiveGain, DeltaBarDelta, Rprop
from tidu.optimizers.schedules import LearningRateSchedule
from tidu.optimizers.second_order import BFGS, LBFGS, CoordinateDescent, Newton
from tidu.optimizers.sgd import GD, SGD, Momentum, Nesterov

__all__ = ["Optimizer", "MinimizeResult", "numerical_gradient", "schedules", "LearningRateSchedule",
           "GD", "SGD", "Momentum", "Nesterov", "Adagrad", "AdaGrad", "Adadelta", "RMSprop", "Adam",
           "AMSGrad", "Adamax", "Nadam", "SWATS", "Rprop", "AdaptiveGain", "DeltaBarDelta", "Newton", "BFGS",
           "LBFGS", "CoordinateDescent", "get", "serialize", "deserialize", "ALIASES"]

_CLASSES = {cls.__name__: cls for cls in (GD, SGD, Momentum, Nesterov, Adagrad, AdaGrad, Adadelta, RMSprop, Adam,
                                           AMSGrad, Adamax, Nadam, SWATS, Rprop, AdaptiveGain, DeltaBarDelta, Newton, BFGS,
                                           LBFGS, CoordinateDescent)}

#: lower-case names (Keras's where Keras has the optimizer) -> class
ALIASES = {
    "gd": GD, "sgd": SGD, "momentum": Momentum, "nesterov": Nesterov,
    "adagrad": Adagrad, "adadelta": Adadelta, "rmsprop": RMSprop, "adam": Adam, "amsgrad": AMSGrad,
    "adamax": Adamax, "nadam": Nadam, "swats": SWATS, "rprop": Rprop,
    "adaptive_gain": AdaptiveGain, "delta_bar_delta": DeltaBarDelta,
    "newton": Newton, "newton_cg": Newton, "bfgs": BFGS, "lbfgs": LBFGS, "l-bfgs": LBFGS, "coordinate_descent": CoordinateDescent,
}


def _resolve(name, custom_objects=None):
    custom = custom_objects or {}
    if name in custom:
        return custom[name]
    if name in _CLASSES:
        return _CLASSES[name]
    if name.lower() in ALIASES:
        return ALIASES[name.lower()]
    known = sorted(ALIASES)
    hint = did_you_mean(name.lower(), known + [c.lower() for c in _CLASSES])
    raise ValueError(f"optimizers.get: unknown optimizer {name!r}{hint} Allowed names: {', '.join(known)} "
                     f"(or a class name: {', '.join(sorted(_CLASSES))})")


def serialize(optimizer):
    """{'class_name': ..., 'config': ...}, JSON-able (a schedule included)."""
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizers.serialize: expected an Optimizer, got {type(optimizer).__name__}")
    return to_config(optimizer)


def deserialize(config, custom_objects=None):
    """The optimizer described by {'class_name': ..., 'config': ...} (a new one, without state)."""
    name, config = split_config(config, "optimizers.deserialize", error=TypeError)
    return _resolve(name, custom_objects).from_config(config)


def get(identifier, custom_objects=None):
    """An optimizer from a name, a config dict or an instance (returned as is)."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str):
        return _resolve(identifier, custom_objects)()
    if isinstance(identifier, dict):
        return deserialize(identifier, custom_objects)
    if isinstance(identifier, type) and issubclass(identifier, Optimizer):
        return identifier()
    raise TypeError(f"optimizers.get: expected a name, a config dict or an Optimizer, got {identifier!r}")
