"""The one switch of the compiled fast paths: enabled() and set_enabled(flag) (see tidu.kernels);
and how the kernels compile: njit, CompiledOnce, slp_vectorizer."""
import contextlib
import os

import numpy as np

from tidu import backend

_switch = os.environ.get("TIDU_FAST", "1") != "0"
_numba = None  # whether numba imports, found on the first enabled() with the switch on


def enabled():
    """True when the compiled fast paths are on: the switch is on and numba imports."""
    global _numba
    if not _switch:
        return False
    if _numba is None:
        try:
            import numba  # noqa: F401
            _numba = True
        except ImportError:
            _numba = False
    return _numba


def set_enabled(flag):
    """Turn the fast paths on (True) or off (False) for this process; returns the previous
    setting of the switch. Turning it on without numba installed leaves enabled() False."""
    global _switch
    if not isinstance(flag, bool):
        raise TypeError(f"kernels.set_enabled: expected True or False, got {flag!r}")
    previous, _switch = _switch, flag
    return previous


def njit(fn=None, **options):
    """numba.njit with NumPy's error model (no branch on a division by zero, so loops vectorize),
    cached on disk; where numba has no writable place for its cache, compiled in each process.
    Used as @njit or @njit(option=value, ...)."""
    if fn is None:
        return lambda fn: njit(fn, **options)
    import numba

    try:
        return numba.njit(error_model="numpy", cache=True, **options)(fn)
    except RuntimeError:
        return numba.njit(error_model="numpy", **options)(fn)


@contextlib.contextmanager
def slp_vectorizer():
    """numba's SLP vectorizer on while a kernel compiles inside the block (numba reads the
    setting per compilation), the setting put back after."""
    from numba.core import config
    before, config.SLP_VECTORIZE = config.SLP_VECTORIZE, 1
    try:
        yield
    finally:
        config.SLP_VECTORIZE = before


class CompiledOnce:
    """One module's kernels, compiled on first use: get(dtype) is None when the fast paths are
    off, the array backend is not NumPy or dtype is not float32/float64; else what compile()
    returned (it runs once, and may itself return None)."""

    DTYPES = ("float32", "float64")

    def __init__(self, compile):
        self.compile, self.kernels, self.compiled = compile, None, False
        self.dtypes = {}               # a dtype (or scalar type) -> whether it is one of DTYPES

    def get(self, dtype):
        if not enabled() or backend.xp is not np:
            return None
        ok = self.dtypes.get(dtype)
        if ok is None:                 # np.dtype(dtype).name costs microseconds: once per dtype
            ok = self.dtypes[dtype] = np.dtype(dtype).name in self.DTYPES
        return self.load() if ok else None

    def load(self):
        """What compile() returned, compiled on the first call whatever the switch (the tests
        reach the kernels' helpers this way)."""
        if not self.compiled:
            self.kernels, self.compiled = self.compile(), True
        return self.kernels
