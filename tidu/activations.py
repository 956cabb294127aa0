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
"""
import tidu.functional as F
from tidu._registry import did_you_mean
from tidu.autograd import Tensor

__all__ = ["linear", "relu", "relu6", "sigmoid", "tanh", "softmax", "log_softmax", "elu", "selu",
           "softplus", "softsign", "leaky_relu", "gelu", "silu", "swish", "hard_sigmoid",
           "exponential", "mish", "get", "serialize", "name_of"]


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


_REGISTRY = {fn.__name__: fn for fn in (
    linear, relu, relu6, sigmoid, tanh, softmax, log_softmax, elu, selu, softplus, softsign,
    leaky_relu, gelu, silu, hard_sigmoid, exponential, mish)}
_ALIASES = {"swish": silu}


def get(identifier):
    """The activation function for a Keras name ('relu'), None ('linear') or a callable (as is)."""
    if identifier is None:
        return linear
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
    raise TypeError(f"activations.get: expected a name, None or a callable, got {identifier!r}")


def name_of(fn):
    """The registered name of an activation function ('silu' for swish), or None."""
    for name, registered in _REGISTRY.items():
        if fn is registered:
            return name
    return None


def serialize(fn):
    """The Keras name of an activation function of this module."""
    name = name_of(fn)
    if name is None:
        raise ValueError(f"activations.serialize: {fn!r} is not one of tidu's activations "
                         f"({', '.join(sorted(_REGISTRY))}), so it cannot be saved by name")
    return name


def deserialize(name):
    return get(name)
