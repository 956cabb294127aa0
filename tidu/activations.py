"""Activation functions by their Keras names: `activations.get('relu')(x)`.

Each is a function Tensor -> Tensor made of `tidu.functional` ops, so its derivative comes
from the ops'. `get(name)` returns the function, `serialize(fn)` its name.

    linear(x) = x                       relu(x) = max(x, 0)         relu6(x) = min(max(x, 0), 6)
    sigmoid(x) = 1 / (1 + e^−x)         tanh(x)                     exponential(x) = eˣ
    softmax(x)_i = e^{x_i} / Σ_j e^{x_j}    log_softmax(x) = x − log Σ_j e^{x_j}   (along axis)
    elu(x) = x if x > 0 else α(eˣ − 1)  selu(x) = λ·elu_α(x), λ ≈ 1.0507, α ≈ 1.6733
    softplus(x) = log(1 + eˣ)           softsign(x) = x / (1 + |x|)
    leaky_relu(x) = x if x >= 0 else negative_slope·x   (0.2 here, as keras.activations;
                                                          the LeakyReLU layer's default is 0.3)
    gelu(x) = x·Φ(x)                    silu(x) = swish(x) = x·sigmoid(x)
    hard_sigmoid: a piecewise-linear sigmoid (see tidu.functional.hard_sigmoid)
    mish(x) = x·tanh(softplus(x))
    maxout(x)_u = max_{k < pieces} x_{u·pieces + k}   over consecutive groups of `pieces`
                  features of the last axis: (..., units·pieces) -> (..., units); pieces = 2
                  for the name 'maxout', any other number with Maxout(pieces) or
                  get({'class_name': 'Maxout', 'config': {'pieces': 3}})

Every activation but maxout keeps the shape; `output_shape(fn, input_shape)` is the shape of
fn's output (a layer's compute_output_shape asks it), for any callable.
"""
import numpy as np

import tidu.functional as F
from tidu._checks import check_int
from tidu import backend
from tidu._registry import Configurable, did_you_mean, split_config, to_config
from tidu.autograd import Tensor, no_grad

__all__ = ["linear", "relu", "relu6", "sigmoid", "tanh", "softmax", "log_softmax", "elu", "selu",
           "softplus", "softsign", "leaky_relu", "gelu", "silu", "swish", "hard_sigmoid",
           "exponential", "mish", "maxout", "Maxout", "get", "serialize", "deserialize", "name_of",
           "output_shape"]


def linear(x):
    """y = x (no activation)."""
    return x


def relu(x, negative_slope=0.0, max_value=None, threshold=0.0):
    """y = x for threshold <= x (< max_value), negative_slope·(x − threshold) below threshold,
    max_value above it; with the defaults, y = max(x, 0)."""
    if negative_slope == 0 and max_value is None and threshold == 0:
        return F.relu(x)
    x = x if isinstance(x, Tensor) else Tensor(x)
    y = F.where(x.data >= threshold, x, negative_slope * (x - threshold))
    return y if max_value is None else F.minimum(y, max_value)


def relu6(x):
    """y = min(max(x, 0), 6)."""
    return F.minimum(F.relu(x), 6.0)


def sigmoid(x):
    return F.sigmoid(x)


def tanh(x):
    return F.tanh(x)


def softmax(x, axis=-1):
    return F.softmax(x, axis=axis)


def log_softmax(x, axis=-1):
    return F.log_softmax(x, axis=axis)


def elu(x, alpha=1.0):
    return F.elu(x, alpha=alpha)


def selu(x):
    return F.selu(x)


def softplus(x):
    return F.softplus(x)


def softsign(x):
    return F.softsign(x)


def leaky_relu(x, negative_slope=0.2):
    return F.leaky_relu(x, alpha=negative_slope)


def gelu(x):
    return F.gelu(x)


def silu(x):
    return F.silu(x)


swish = silu


def hard_sigmoid(x):
    return F.hard_sigmoid(x)


def exponential(x):
    return F.exp(x)


def mish(x):
    return x * F.tanh(F.softplus(x))


def maxout(x, pieces=2):
    """y_u = max_{k < pieces} x_{u·pieces + k}: the last axis in consecutive groups of `pieces`
    (2 by default), (..., units·pieces) -> (..., units). A layer with activation='maxout' has
    half as many outputs as units."""
    return F.maxout(x, pieces, axis=-1)


class Maxout(Configurable):
    """maxout with a chosen number of pieces, saved as {'class_name': 'Maxout', 'config':
    {'pieces': p}}: `Dense(12, activation=activations.Maxout(3))` has 4 outputs."""

    def __init__(self, pieces=2):
        pieces = check_int("activations.Maxout", "pieces", pieces, minimum=1)
        self.pieces = int(pieces)

    def __call__(self, x):
        return maxout(x, self.pieces)

    def compute_output_shape(self, input_shape):
        *lead, n = input_shape
        return (*lead, None if n is None else n // self.pieces)

    def get_config(self):
        return {"pieces": self.pieces}


_REGISTRY = {fn.__name__: fn for fn in (
    linear, relu, relu6, sigmoid, tanh, softmax, log_softmax, elu, selu, softplus, softsign,
    leaky_relu, gelu, silu, hard_sigmoid, exponential, mish, maxout)}
_ALIASES = {"swish": silu}
_CLASSES = {"Maxout": Maxout, "maxout": Maxout}      # the configurable forms, by class_name
_SHAPE_PRESERVING = tuple(fn for fn in _REGISTRY.values() if fn is not maxout)


def get(identifier):
    """The activation function for a Keras name ('relu'), None ('linear'), a config dict
    ({'class_name': 'Maxout', 'config': {'pieces': 3}}) or a callable (as is)."""
    if identifier is None:
        return linear
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        fn = _REGISTRY.get(identifier) or _ALIASES.get(identifier)
        if fn is None:
            names = sorted([*_REGISTRY, *_ALIASES])
            hint = did_you_mean(identifier, names) or "."
            raise ValueError(f"activations.get: unknown activation {identifier!r}{hint} "
                             f"Allowed: {', '.join(names)}")
        return fn
    if callable(identifier):
        return identifier
    raise TypeError(f"activations.get: expected a name, a config dict, None or a callable, "
                    f"got {identifier!r}")


def name_of(fn):
    """The registered name of an activation function ('silu' for swish), or None."""
    for name, registered in _REGISTRY.items():
        if fn is registered:
            return name
    return None


def serialize(fn):
    """The Keras name of an activation function of this module; for a configurable one
    (Maxout(3)), its {'class_name', 'config'}."""
    if isinstance(fn, Maxout):
        return to_config(fn)
    name = name_of(fn)
    if name is None:
        raise ValueError(f"activations.serialize: {fn!r} is not one of tidu's activations "
                         f"({', '.join(sorted(_REGISTRY))}), so it cannot be saved by name")
    return name


def deserialize(name):
    """The inverse of `serialize`: a name, or a {'class_name', 'config'} of Maxout."""
    if isinstance(name, dict):
        class_name, config = split_config(name, "activations.deserialize")
        if class_name not in _CLASSES:
            names = sorted(set(_CLASSES))
            raise ValueError(f"activations.deserialize: unknown activation class {class_name!r}"
                             f"{did_you_mean(str(class_name), names) or '.'} Allowed: {', '.join(names)}")
        return _CLASSES[class_name].from_config(config)
    return get(name)


def output_shape(fn, input_shape, dtype=None):
    """The shape of fn(x) for an x of `input_shape` (None allowed, e.g. the batch axis): the
    input shape for the registered element-wise activations, fn.compute_output_shape(shape)
    when fn has one, else the shape of fn applied to zeros of that shape (each None as 1, and
    None again in the result), with no graph recorded."""
    input_shape = tuple(input_shape)
    if any(fn is f for f in _SHAPE_PRESERVING):
        return input_shape
    if hasattr(fn, "compute_output_shape"):
        return tuple(fn.compute_output_shape(input_shape))
    probe = np.zeros(tuple(1 if d is None else d for d in input_shape), dtype=dtype or backend.floatx())
    with no_grad():
        shape = tuple(fn(Tensor(probe)).shape)
    return tuple(None if i < len(input_shape) and input_shape[i] is None else d
                 for i, d in enumerate(shape))
