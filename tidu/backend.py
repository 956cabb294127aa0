"""Array module and dtype policy.

Every op takes its array module from here (`backend.xp`), so the same code runs on NumPy
(the default) and on CuPy (`TIDU_BACKEND=cupy` or `set_backend("cupy")`). Arrays cross
between NumPy and the backend only through `as_array` (NumPy -> backend) and `to_numpy`
(backend -> NumPy). `register_backend(name, module, to_numpy)` adds another array module.

'numpy-traced' is the check that code keeps to this without a GPU: NumPy's arithmetic on a
`TracedArray` (a thin ndarray subclass), and, like CuPy, a TypeError naming the operation
when a plain NumPy array (not a scalar, not 0-d) meets one in a ufunc, a NumPy function or an
`xp.*` call. Run any script or the test suite under `TIDU_BACKEND=numpy-traced`. Floating-point
data defaults to float32 (`floatx()`); `set_floatx("float64")` switches the default for
initializers and data conversion, e.g. for gradient checks.

Random numbers come from one seeded generator per consumer: `rng(seed)` returns a fresh
NumPy Generator for a given seed, or the package-wide generator (`seed(s)` resets it) when
seed is None.
"""
import os

import numpy

_FLOATX = ("float16", "float32", "float64")

xp = numpy
name = "numpy"
_floatx = "float32"
_global_rng = numpy.random.default_rng()


def _numpy_to_numpy(x):
    return numpy.asarray(x)


def _load_cupy():
    try:
        import cupy
    except ImportError as e:
        raise ImportError(
            "set_backend('cupy'): CuPy is not installed; install the extra with "
            "`pip install tidu[gpu]` (needs a CUDA 12 GPU), or use the default 'numpy'"
        ) from e
    return cupy, cupy.asnumpy


# name -> (array module, to_numpy) or a function returning that pair on first use
_backends = {"numpy": (numpy, _numpy_to_numpy), "cupy": _load_cupy}
_to_numpy = _numpy_to_numpy


def register_backend(backend, module, to_numpy):
    """Make `set_backend(backend)` use `module` as `xp`: a NumPy-like module with `ndarray`,
    `asarray` and the functions tidu calls, and `to_numpy(array)` returning a NumPy array
    (a copy, as CuPy's asnumpy)."""
    if not isinstance(backend, str) or backend in ("numpy", "cupy"):
        raise ValueError(f"register_backend: expected a new name (str), got {backend!r}")
    for attr in ("ndarray", "asarray"):
        if not hasattr(module, attr):
            raise TypeError(f"register_backend({backend!r}): the module has no {attr!r}")
    if not callable(to_numpy):
        raise TypeError(f"register_backend({backend!r}): expected a callable to_numpy, "
                        f"got {type(to_numpy).__name__}")
    _backends[backend] = (module, to_numpy)


def set_backend(backend):
    """Switch the array module: 'numpy', 'cupy' (needs the extra `gpu`), 'numpy-traced' (NumPy
    that refuses NumPy arrays, as CuPy does) or a name given to register_backend."""
    global xp, name, _to_numpy
    if backend not in _backends:
        raise ValueError(f"set_backend: expected one of {tuple(_backends)}, got {backend!r}")
    entry = _backends[backend]
    if callable(entry):
        entry = _backends[backend] = entry()
    (xp, _to_numpy), name = entry, backend


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
    if type(x) is numpy.ndarray:
        return x
    return _to_numpy(x) if isinstance(x, xp.ndarray) else numpy.asarray(x)


def strided_view(x, shape, strides, offset=0):
    """A view of `x` with the given shape and byte strides (windows, im2col), starting `offset`
    bytes past x's first element, read-only where the backend can say so (NumPy; CuPy's
    as_strided takes no `writeable`). A C-contiguous NumPy x is viewed through the ndarray
    constructor, which checks that the view stays inside x: 0.35 µs a call against 2.7-3.0
    for as_strided, which the one-channel im2col fill makes ten calls to per batch."""
    if name == "numpy" and x.flags.c_contiguous:
        view = numpy.ndarray(shape, x.dtype, x, offset, strides)
        view.flags.writeable = False
        return view
    as_strided = xp.lib.stride_tricks.as_strided
    if offset:                                     # x's memory as a flat run, from the offset
        k = offset // x.itemsize
        x = as_strided(x, (k + 1,), (x.itemsize,))[k:]
    if name == "numpy":
        return as_strided(x, shape, strides, writeable=False)
    return as_strided(x, shape, strides)


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


class TracedArray(numpy.ndarray):
    """An array of the 'numpy-traced' backend: NumPy's arithmetic, except that a plain NumPy
    array (ndim > 0) meeting a TracedArray in a ufunc or a NumPy function raises TypeError,
    as a NumPy array meeting a CuPy array does. Scalars and 0-d arrays mix freely. As on a CuPy
    array, `.data` is a pointer (`.data.ptr`), not a buffer, and `.flags` has no `writeable`."""

    @property
    def data(self):
        return _Pointer(self.__array_interface__["data"][0])

    @property
    def flags(self):
        return _Flags(self.view(numpy.ndarray).flags)

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        where = ufunc.__name__ if method == "__call__" else f"{ufunc.__name__}.{method}"
        _refuse_numpy(where, _data_args(method, inputs) + (out or ()))
        if out is not None:
            kwargs["out"] = _plain(out)
        result = getattr(ufunc, method)(*_plain(inputs), **kwargs)
        if method == "at":
            return None
        if out is not None:
            return out[0] if len(out) == 1 else out
        return _traced(result)

    def __array_function__(self, func, types, args, kwargs):
        _refuse_numpy(func.__name__, (args, kwargs))
        return _traced(func(*_plain(args), **_plain(kwargs)))


class _Pointer:
    """What a CuPy array's `.data` is: where its memory starts (`ptr`), not the array."""

    __slots__ = ("ptr",)

    def __init__(self, ptr):
        self.ptr = ptr


class _Flags:
    """What a CuPy array's `.flags` has: c_contiguous, f_contiguous, owndata."""

    __slots__ = ("c_contiguous", "f_contiguous", "owndata")

    def __init__(self, flags):
        self.c_contiguous, self.f_contiguous, self.owndata = \
            flags.c_contiguous, flags.f_contiguous, flags.owndata


def _as_strided(x, shape=None, strides=None):
    """numpy.lib.stride_tricks.as_strided with CuPy's arguments (no `writeable`, no `subok`)."""
    return numpy.lib.stride_tricks.as_strided(x, shape, strides)


def _data_args(method, inputs):
    """The data among a ufunc's inputs: ufunc.at's second argument is indices, not data."""
    return inputs[:1] + inputs[2:] if method == "at" else tuple(inputs)


def _refuse_numpy(where, args):
    """TypeError if `args` (nested in tuples, lists, dicts) hold a plain NumPy array, ndim > 0."""
    if isinstance(args, (tuple, list)):
        for a in args:
            _refuse_numpy(where, a)
    elif isinstance(args, dict):
        _refuse_numpy(where, tuple(args.values()))
    elif isinstance(args, numpy.ndarray) and not isinstance(args, TracedArray) and args.ndim:
        raise TypeError(f"{where}: expected arrays of the backend ('numpy-traced'), got a NumPy "
                        f"array of shape {args.shape} ({args.dtype}); convert it with "
                        "tidu.backend.as_array, as CuPy requires")


def _plain(obj):
    """`obj` with every TracedArray viewed as a plain ndarray (same memory)."""
    if isinstance(obj, TracedArray):
        return obj.view(numpy.ndarray)
    if isinstance(obj, (tuple, list)):
        return type(obj)(_plain(a) for a in obj)
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    return obj


def _traced(obj):
    """`obj` with every ndarray viewed as a TracedArray (same memory); a NumPy scalar becomes a
    0-d TracedArray, as CuPy's reductions return 0-d arrays."""
    if isinstance(obj, numpy.generic):
        return numpy.asarray(obj).view(TracedArray)
    if isinstance(obj, numpy.ndarray):
        return obj if isinstance(obj, TracedArray) else obj.view(TracedArray)
    if isinstance(obj, (tuple, list)):
        return type(obj)(_traced(a) for a in obj)
    return obj


class _TracedFunction:
    """A NumPy function (or ufunc) of the 'numpy-traced' module: refuses plain NumPy arrays,
    returns TracedArrays. A conversion (asarray, ...) takes them, copying as CuPy does."""

    def __init__(self, func, where, convert=False):
        self.func, self.where, self.convert = func, where, convert

    def __call__(self, *args, **kwargs):
        if self.convert and args and type(args[0]) is numpy.ndarray:
            args = (args[0].copy(),) + args[1:]
        else:
            _refuse_numpy(self.where, (_data_args(self.where.rpartition(".")[2], args), kwargs))
        return _traced(self.func(*_plain(args), **_plain(kwargs)))

    def __getattr__(self, attr):  # a ufunc's methods: xp.add.at, xp.maximum.reduce
        if attr.startswith("__"):
            raise AttributeError(attr)
        value = getattr(self.func, attr)
        return _TracedFunction(value, f"{self.where}.{attr}") if callable(value) else value


class _TracedModule:
    """The 'numpy-traced' array module: NumPy's names; its functions make TracedArrays."""

    ndarray = TracedArray
    _CONVERSIONS = ("asarray", "array", "asanyarray", "ascontiguousarray")

    def __init__(self, module):
        self._module = module

    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        value = _as_strided if attr == "as_strided" else getattr(self._module, attr)
        if isinstance(value, type(numpy)):
            value = _TracedModule(value)
        elif callable(value) and not isinstance(value, type):
            value = _TracedFunction(value, attr, convert=attr in self._CONVERSIONS)
        setattr(self, attr, value)
        return value


def _traced_to_numpy(x):
    return numpy.array(x, copy=True)  # a copy, as CuPy's asnumpy


_backends["numpy-traced"] = (_TracedModule(numpy), _traced_to_numpy)

_env = os.environ.get("TIDU_BACKEND")
if _env:
    set_backend(_env)
if os.environ.get("TIDU_FLOATX"):
    set_floatx(os.environ["TIDU_FLOATX"])
