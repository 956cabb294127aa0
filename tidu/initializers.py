"""Weight initializers, by their Keras names: `initializers.get('glorot_uniform')((784, 512))`.

An initializer is called as `init(shape, dtype=None)` and returns a NumPy array of exactly
`dtype` (floatx() when None). Random ones draw in float64 from a NumPy Generator and cast:
with `seed=<int>` from a fresh generator on every call (the same array each time, as Keras),
with `seed=None` from the package-wide generator (`tidu.backend.seed(s)` makes it repeatable).

Fans, as Keras computes them (`compute_fans`): a Dense kernel (in, out) has fan_in = in,
fan_out = out; a conv kernel (kh, kw, in, out) has fan_in = kh·kw·in, fan_out = kh·kw·out
(receptive field × channels); a vector (n,) has fan_in = fan_out = n.

    name             distribution                            variance / bound
    zeros, ones      constant 0, 1
    constant(v)      constant v
    random_normal    N(mean, stddev²)                        stddev = 0.05
    random_uniform   U(minval, maxval)                       [-0.05, 0.05]
    truncated_normal N(mean, stddev²) redrawn beyond 2·stddev
    small_random     0.01·N(0, 1)                            the notes' `0.01 * randn(fan_in, fan_out)`
    glorot_uniform   U(-a, a), a = √(6 / (fan_in + fan_out))    Var = 2 / (fan_in + fan_out)
    glorot_normal    truncated normal, Var = 2 / (fan_in + fan_out)
    xavier_uniform, xavier_normal   Glorot's (fan_avg) under Glorot & Bengio's other name, as
                     Keras and torch use it; NOT the notes' "Xavier init", which is xavier_notes
    xavier_notes     N(0, 1) / √fan_in, untruncated          Var = 1 / fan_in
                     the notes' `w = np.random.randn(fan_in, fan_out) / np.sqrt(fan_in)`
    he_uniform       U(-a, a), a = √(6 / fan_in)               Var = 2 / fan_in
    he_normal        truncated normal, Var = 2 / fan_in
    lecun_uniform    U(-a, a), a = √(3 / fan_in)               Var = 1 / fan_in
    lecun_normal     truncated normal, Var = 1 / fan_in       (xavier_notes's variance, truncated)
    orthogonal(gain) gain · Q of the QR decomposition of a Gaussian matrix
    identity(gain)   gain · I (2-D only)

"Truncated normal" with a target standard deviation σ draws N(0, (σ/0.8796…)²) and redraws
values beyond two of its standard deviations; 0.87962566 is the standard deviation of a unit
normal truncated to [-2, 2], so the result has standard deviation σ (Keras' VarianceScaling).
The notes' plain, untruncated 1/√n_in is xavier_notes, i.e.
`VarianceScaling(1.0, 'fan_in', 'untruncated_normal')`.

The lower-case names are the classes themselves, as in Keras: `initializers.he_normal(seed=1)`
is `HeNormal(seed=1)`.
"""
import math

import numpy as np

from tidu import backend
from tidu._registry import Configurable, Registry

__all__ = ["Initializer", "Zeros", "Ones", "Constant", "RandomNormal", "RandomUniform",
           "TruncatedNormal", "SmallRandom", "VarianceScaling", "GlorotUniform", "GlorotNormal",
           "HeNormal", "HeUniform", "LecunNormal", "LecunUniform", "XavierNotes", "Orthogonal", "Identity",
           "zeros", "ones", "constant", "random_normal", "random_uniform", "truncated_normal",
           "small_random", "variance_scaling", "glorot_uniform", "glorot_normal", "he_normal",
           "he_uniform", "lecun_normal", "lecun_uniform", "xavier_notes", "orthogonal", "identity",
           "compute_fans", "get", "serialize", "deserialize"]

_TRUNCATED_STD = 0.87962566103423978  # std of N(0, 1) truncated to [-2, 2]


def compute_fans(shape):
    """(fan_in, fan_out) of a weight of `shape`, as Keras: see the module docstring."""
    shape = tuple(shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive_field = math.prod(shape[:-2])
    return shape[-2] * receptive_field, shape[-1] * receptive_field


def _dtype(name, dtype, need_float=True):
    dtype = np.dtype(dtype or backend.floatx())
    if need_float and dtype.kind != "f":
        raise TypeError(f"{name}: expected a floating-point dtype, got {dtype.name}")
    return dtype


def _shape(name, shape):
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    try:
        shape = tuple(int(d) for d in shape)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected shape to be a tuple of ints, got {shape!r}") from None
    if any(d < 0 for d in shape):
        raise ValueError(f"{name}: expected a shape of non-negative ints, got {shape}")
    return shape


class Initializer(Configurable):
    """Base class: `init(shape, dtype=None) -> np.ndarray`; `get_config()` gives its arguments."""

    def __call__(self, shape, dtype=None):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must define __call__ (abstract)")


class Zeros(Initializer):
    """w = 0."""

    def __call__(self, shape, dtype=None):
        return np.zeros(_shape("Zeros", shape), dtype=_dtype("Zeros", dtype, need_float=False))


class Ones(Initializer):
    """w = 1."""

    def __call__(self, shape, dtype=None):
        return np.ones(_shape("Ones", shape), dtype=_dtype("Ones", dtype, need_float=False))


class Constant(Initializer):
    """w = value (a number)."""

    def __init__(self, value=0.0):
        if not isinstance(value, (int, float, np.number)) or isinstance(value, bool):
            raise TypeError(f"Constant: expected value to be a number, got {value!r}")
        self.value = float(value) if isinstance(value, (float, np.floating)) else int(value)

    def __call__(self, shape, dtype=None):
        return np.full(_shape("Constant", shape), self.value,
                       dtype=_dtype("Constant", dtype, need_float=False))

    def get_config(self):
        return {"value": self.value}


class RandomInitializer(Initializer):
    """An initializer that draws random numbers: `seed` int (same array every call) or None."""

    def __init__(self, seed=None):
        if seed is not None and (not isinstance(seed, (int, np.integer)) or isinstance(seed, bool)):
            raise TypeError(f"{type(self).__name__}: expected seed to be an int or None, got {seed!r}"
                            f"; to draw an array, call an instance: {type(self).__name__}()(shape)")
        self.seed = None if seed is None else int(seed)

    def _rng(self):
        return np.random.default_rng(self.seed) if self.seed is not None else backend.rng()

    def __call__(self, shape, dtype=None):
        name = type(self).__name__
        shape, dtype = _shape(name, shape), _dtype(name, dtype)
        return self._draw(shape, self._rng()).astype(dtype, copy=False)

    def _draw(self, shape, rng):  # pragma: no cover - abstract
        raise NotImplementedError

    def get_config(self):
        return {"seed": self.seed}


def _truncated_normal(rng, shape, mean, stddev):
    """N(mean, stddev²) with values beyond 2·stddev from the mean redrawn."""
    z = rng.standard_normal(shape)
    out = np.abs(z) > 2
    while out.any():
        z[out] = rng.standard_normal(int(out.sum()))
        out = np.abs(z) > 2
    return mean + stddev * z


class RandomNormal(RandomInitializer):
    """w ~ N(mean, stddev²)."""

    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        super().__init__(seed)
        if not stddev >= 0:
            raise ValueError(f"RandomNormal: expected stddev >= 0, got {stddev!r}")
        self.mean, self.stddev = float(mean), float(stddev)

    def _draw(self, shape, rng):
        return self.mean + self.stddev * rng.standard_normal(shape)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


class RandomUniform(RandomInitializer):
    """w ~ U(minval, maxval)."""

    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        super().__init__(seed)
        if not minval <= maxval:
            raise ValueError(f"RandomUniform: expected minval <= maxval, got minval={minval!r}, "
                             f"maxval={maxval!r}")
        self.minval, self.maxval = float(minval), float(maxval)

    def _draw(self, shape, rng):
        return rng.uniform(self.minval, self.maxval, shape)

    def get_config(self):
        return {"minval": self.minval, "maxval": self.maxval, "seed": self.seed}


class TruncatedNormal(RandomInitializer):
    """w ~ N(mean, stddev²), values more than 2·stddev from the mean redrawn."""

    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        super().__init__(seed)
        if not stddev >= 0:
            raise ValueError(f"TruncatedNormal: expected stddev >= 0, got {stddev!r}")
        self.mean, self.stddev = float(mean), float(stddev)

    def _draw(self, shape, rng):
        return _truncated_normal(rng, shape, self.mean, self.stddev)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


class SmallRandom(RandomInitializer):
    """w = scale · N(0, 1), scale = 0.01: the notes' `w = 0.01 * np.random.randn(fan_in, fan_out)`.

    Fine for shallow nets; in deep ones the activations shrink layer by layer (use glorot/he)."""

    def __init__(self, scale=0.01, seed=None):
        super().__init__(seed)
        if not scale > 0:
            raise ValueError(f"SmallRandom: expected scale > 0, got {scale!r}")
        self.scale = float(scale)

    def _draw(self, shape, rng):
        return self.scale * rng.standard_normal(shape)

    def get_config(self):
        return {"scale": self.scale, "seed": self.seed}


class VarianceScaling(RandomInitializer):
    """Var(w) = scale / n, n = fan_in, fan_out or (fan_in + fan_out)/2 (`mode`).

    distribution 'uniform': U(-a, a) with a = √(3·scale/n);  'untruncated_normal': N(0, scale/n);
    'truncated_normal': a normal truncated at 2σ whose standard deviation is √(scale/n).
    """

    _modes = ("fan_in", "fan_out", "fan_avg")
    _distributions = ("truncated_normal", "untruncated_normal", "uniform")

    def __init__(self, scale=1.0, mode="fan_in", distribution="truncated_normal", seed=None):
        super().__init__(seed)
        name = type(self).__name__
        if not scale > 0:
            raise ValueError(f"{name}: expected scale > 0, got {scale!r}")
        if mode not in self._modes:
            raise ValueError(f"{name}: expected mode in {self._modes}, got {mode!r}")
        if distribution == "normal":  # Keras 2's name for the truncated normal
            distribution = "truncated_normal"
        if distribution not in self._distributions:
            raise ValueError(f"{name}: expected distribution in {self._distributions}, "
                             f"got {distribution!r}")
        self.scale, self.mode, self.distribution = float(scale), mode, distribution

    def _draw(self, shape, rng):
        fan_in, fan_out = compute_fans(shape)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        variance = self.scale / max(1.0, n)
        if self.distribution == "uniform":
            a = math.sqrt(3.0 * variance)
            return rng.uniform(-a, a, shape)
        if self.distribution == "untruncated_normal":
            return math.sqrt(variance) * rng.standard_normal(shape)
        return _truncated_normal(rng, shape, 0.0, math.sqrt(variance) / _TRUNCATED_STD)

    def get_config(self):
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution,
                "seed": self.seed}


def _preset(class_name, scale, mode, distribution, doc):
    """A VarianceScaling subclass with fixed arguments (its config is only the seed)."""

    def __init__(self, seed=None):
        VarianceScaling.__init__(self, scale, mode, distribution, seed)

    def get_config(self):
        return {"seed": self.seed}

    return type(class_name, (VarianceScaling,), {"__init__": __init__, "get_config": get_config,
                                                 "__doc__": doc, "__module__": __name__})


GlorotUniform = _preset("GlorotUniform", 1.0, "fan_avg", "uniform",
                        "Glorot uniform ('xavier_uniform'): U(-a, a), a = √(6/(fan_in + fan_out)).")
GlorotNormal = _preset("GlorotNormal", 1.0, "fan_avg", "truncated_normal",
                       "Glorot normal ('xavier_normal'): truncated normal with Var = "
                       "2/(fan_in + fan_out). The notes' \"Xavier init\" is XavierNotes, Var = 1/fan_in.")
XavierNotes = _preset("XavierNotes", 1.0, "fan_in", "untruncated_normal",
                      "The notes' Xavier init ('xavier_notes'): w = N(0, 1)/√fan_in, untruncated, "
                      "Var = 1/fan_in;\n    the notes' `np.random.randn(fan_in, fan_out) / "
                      "np.sqrt(fan_in)`. Keras' and torch's xavier_* are Glorot (fan_avg).")
HeUniform = _preset("HeUniform", 2.0, "fan_in", "uniform", "He uniform: U(-a, a), a = √(6/fan_in).")
HeNormal = _preset("HeNormal", 2.0, "fan_in", "truncated_normal",
                   "He normal: truncated normal with Var = 2/fan_in (for relu).")
LecunUniform = _preset("LecunUniform", 1.0, "fan_in", "uniform",
                       "LeCun uniform: U(-a, a), a = √(3/fan_in).")
LecunNormal = _preset("LecunNormal", 1.0, "fan_in", "truncated_normal",
                      "LeCun normal: truncated normal with Var = 1/fan_in, the notes' 1/√n_in "
                      "(for selu).")


class Orthogonal(RandomInitializer):
    """w = gain · Q, Q from the QR decomposition of a Gaussian matrix (signs fixed by diag(R)).

    The weight is viewed as a (rows, cols) matrix with cols = shape[-1]: Q has orthonormal
    columns when rows >= cols, orthonormal rows otherwise."""

    def __init__(self, gain=1.0, seed=None):
        super().__init__(seed)
        self.gain = float(gain)

    def _draw(self, shape, rng):
        if len(shape) < 2:
            raise ValueError(f"Orthogonal: expected a shape of at least 2 dimensions, got {shape}")
        rows, cols = math.prod(shape[:-1]), shape[-1]
        a = rng.standard_normal((max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q = q * np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        return self.gain * q.reshape(shape)

    def get_config(self):
        return {"gain": self.gain, "seed": self.seed}


class Identity(Initializer):
    """w = gain · I for a 2-D shape (rectangular: ones on the main diagonal)."""

    def __init__(self, gain=1.0):
        self.gain = float(gain)

    def __call__(self, shape, dtype=None):
        shape = _shape("Identity", shape)
        if len(shape) != 2:
            raise ValueError(f"Identity: expected a 2-D shape, got {shape}")
        return (self.gain * np.eye(*shape)).astype(_dtype("Identity", dtype), copy=False)

    def get_config(self):
        return {"gain": self.gain}


# Keras' lower-case names are the classes themselves.
zeros, ones, constant = Zeros, Ones, Constant
random_normal, random_uniform, truncated_normal = RandomNormal, RandomUniform, TruncatedNormal
small_random, variance_scaling = SmallRandom, VarianceScaling
glorot_uniform, glorot_normal = GlorotUniform, GlorotNormal
he_normal, he_uniform, lecun_normal, lecun_uniform = HeNormal, HeUniform, LecunNormal, LecunUniform
xavier_notes = XavierNotes
orthogonal, identity = Orthogonal, Identity

_CLASSES = [Zeros, Ones, Constant, RandomNormal, RandomUniform, TruncatedNormal, SmallRandom,
            VarianceScaling, GlorotUniform, GlorotNormal, HeNormal, HeUniform, LecunNormal,
            LecunUniform, XavierNotes, Orthogonal, Identity]
_NAMES = {
    "zeros": Zeros, "ones": Ones, "constant": Constant, "random_normal": RandomNormal,
    "random_uniform": RandomUniform, "truncated_normal": TruncatedNormal,
    "small_random": SmallRandom, "variance_scaling": VarianceScaling,
    "glorot_uniform": GlorotUniform, "glorot_normal": GlorotNormal, "he_normal": HeNormal,
    "he_uniform": HeUniform, "lecun_normal": LecunNormal, "lecun_uniform": LecunUniform,
    "orthogonal": Orthogonal, "identity": Identity, "xavier_notes": XavierNotes,
    # aliases: Keras' short names, and Xavier for Glorot (the notes' Xavier is xavier_notes)
    "zero": Zeros, "one": Ones, "normal": RandomNormal, "uniform": RandomUniform,
    "xavier_uniform": GlorotUniform, "xavier_normal": GlorotNormal,
}
_NAMES.update({cls.__name__: cls for cls in _CLASSES})
_REGISTRY = Registry("initializers", "initializer", Initializer, "an Initializer", _NAMES,
                     allowed=sorted(n for n in _NAMES if n.islower()))


def get(identifier):
    """An initializer from a name ('he_normal', 'HeNormal'), a config dict {'class_name',
    'config'}, an Initializer (returned as is), an Initializer class, or any callable
    `(shape, dtype) -> array`. None gives None."""
    return _REGISTRY.get(identifier)


def serialize(initializer):
    """{'class_name': 'GlorotUniform', 'config': {'seed': None}}: JSON-serializable."""
    return _REGISTRY.serialize(initializer)


def deserialize(config):
    """The inverse of `serialize`; builds only the initializers of this module."""
    return _REGISTRY.deserialize(config)
