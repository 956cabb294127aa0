"""Array module and dtype policy.

Every op takes its array module from here (`backend.xp`), so the same code runs on NumPy
(the default) and on CuPy (`TIDU_BACKEND=cupy` or `set_backend("cupy")`). Floating-point
data defaults to float32 (`floatx()`); `set_floatx("float64")` switches the default for
initializers and data conversion, e.g. for gradient checks.

Random numbers come from one seeded generator per consumer: `rng(seed)` returns a fresh
NumPy Generator for a given seed, or the package-wide generator (`seed(s)` resets it) when
seed is None.
"""
import os

import numpy

_BACKENDS = ("numpy", "cupy")
_FLOATX = ("float16", "float32", "float64")

xp = numpy
name = "numpy"
_floatx = "float32"
_global_rng = numpy.random.default_rng()


def set_backend(backend):
    """Switch the array module: 'numpy' or 'cupy' (needs the extra `gpu`)."""
    global xp, name
    if backend not in _BACKENDS:
        raise ValueError(f"set_backend: expected one of {_BACKENDS}, got {backend!r}")
    if backend == "cupy":
        try:
            import cupy
        except ImportError as e:
            raise ImportError(
                "set_backend('cupy'): CuPy is not installed; install the extra with "
                "`pip install tidu[gpu]` (needs a CUDA 12 GPU), or use the default 'numpy'"
            ) from e
        xp, name = cupy, "cupy"
    else:
        xp, name = numpy, "numpy"


def floatx():
    """The default floating-point dtype name ('float32' unless changed)."""
    return _floatx


def set_floatx(dtype):
    """Set the default floating-point dtype: 'float16', 'float32' or 'float64'."""
    global _floatx
    dtype = numpy.dtype(dtype).name
    if dtype not in _FLOATX:
        raise ValueError(f"set_floatx: expected one of {_FLOATX}, got {dtype!r}")
    _floatx = dtype


def as_array(x, dtype=None):
    """`x` as an array of the backend. An array keeps its dtype unless `dtype` is given;
    Python floats and lists of them become floatx(), Python ints stay integers."""
    if isinstance(x, xp.ndarray):
        return x if dtype is None or x.dtype == dtype else x.astype(dtype)
    explicit = isinstance(x, numpy.ndarray)
    arr = numpy.asarray(x)
    if dtype is None and not explicit and arr.dtype.kind == "f":
        dtype = _floatx
    return xp.asarray(arr if dtype is None else arr.astype(dtype, copy=False))


def to_numpy(x):
    """A NumPy array holding `x` (copies from the GPU under CuPy)."""
    if name == "cupy" and not isinstance(x, numpy.ndarray):
        return xp.asnumpy(x)
    return numpy.asarray(x)


def seed(s):
    """Reset the package-wide random generator (dropout, shuffling, initializers without a seed)."""
    global _global_rng
    _global_rng = numpy.random.default_rng(s)


def rng(seed=None):
    """A NumPy Generator: a fresh one for an int `seed`, else the package-wide one."""
    if seed is None:
        return _global_rng
    if isinstance(seed, numpy.random.Generator):
        return seed
    return numpy.random.default_rng(seed)


_env = os.environ.get("TIDU_BACKEND")
if _env:
    set_backend(_env)
if os.environ.get("TIDU_FLOATX"):
    set_floatx(os.environ["TIDU_FLOATX"])
