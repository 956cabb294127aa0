"""NumPy's own BLAS gemm, called from compiled code: the matrix products inside one numba call
(tidu.kernels.recurrent's LSTM sequence loops, tidu.kernels.split's batch halves).

    gemm_functions()   (cblas_sgemm, cblas_dgemm) of the BLAS NumPy itself calls, as ctypes
                       functions taking their pointers as integers, or None where none is found
                       (or its product differs from np.matmul's on a check)
    gemm_kernel()      the compiled gemm(fn, A, B, C): C = A B by fn, one of the two above,
                       with the arguments np.matmul(A, B, out=C) passes, so the same call and
                       the same bits; None without numba

The functions are looked up through NumPy's extension module _multiarray_umath, whose
dependencies the dynamic linker searches, so that the BLAS found is NumPy's and no other: NumPy
2's wheels bundle scipy-openblas (scipy_cblas_sgemm64_), other builds link OpenBLAS with 64-bit
integers (cblas_sgemm64_) or 32-bit ones (cblas_sgemm: MKL, a system OpenBLAS). The compiled
code gets fn as an argument (its address is the process's own), so that numba's disk cache
keeps the kernels that call it.
"""
import ctypes
import importlib.util

import numpy as np

from tidu.kernels.switch import CompiledOnce, njit

ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112      # CBLAS_ORDER, CBLAS_TRANSPOSE
# cblas_?gemm by name and integer width, in the order they are tried
_GEMM_NAMES = (("scipy_cblas_{}gemm64_", ctypes.c_int64), ("cblas_{}gemm64_", ctypes.c_int64),
               ("scipy_cblas_{}gemm", ctypes.c_int), ("cblas_{}gemm", ctypes.c_int))
_found = []          # gemm_functions()'s answer, once looked up


def gemm_functions():
    """(cblas_sgemm, cblas_dgemm) of NumPy's BLAS as ctypes functions, or None (module
    docstring); looked up once per process."""
    if not _found:
        _found.append(_look_up())
    return _found[0]


def _look_up():
    try:
        from numpy._core import _multiarray_umath as umath
    except ImportError:                  # NumPy 1.x
        try:
            from numpy.core import _multiarray_umath as umath
        except ImportError:
            return None
    try:
        lib = ctypes.CDLL(umath.__file__)
    except OSError:
        return None
    for name, blasint in _GEMM_NAMES:
        try:
            fns = [getattr(lib, name.format(kind)) for kind in "sd"]
        except AttributeError:
            continue
        for fn, real in zip(fns, (ctypes.c_float, ctypes.c_double)):
            ptr = ctypes.c_size_t
            fn.argtypes = [ctypes.c_int] * 3 + [blasint] * 3 + [real, ptr, blasint, ptr, blasint,
                                                                real, ptr, blasint]
            fn.restype = None
        agree = all(_gemm_agrees(fn, t) for fn, t in zip(fns, (np.float32, np.float64)))
        return tuple(fns) if agree else None
    return None


def _gemm_agrees(fn, dtype):
    """Whether fn computes a (3, 5) by (5, 4) product as np.matmul does."""
    r = np.random.default_rng(0)
    A, B = r.standard_normal((3, 5)).astype(dtype), r.standard_normal((5, 4)).astype(dtype)
    C = np.zeros((3, 4), dtype)
    fn(ROW_MAJOR, NO_TRANS, NO_TRANS, 3, 4, 5, 1.0, A.ctypes.data, 5, B.ctypes.data, 4, 0.0,
       C.ctypes.data, 4)
    return bool(np.array_equal(C, np.matmul(A, B)))


def gemm_kernel():
    """The compiled gemm(fn, A, B, C) (module docstring), compiled on the first call whatever
    the fast-path switch; None without numba."""
    return _kernels.load()


def _compile():
    if importlib.util.find_spec("numba") is None:
        return None
    global _layout_jit           # _gemm calls it as a global (numba's disk cache keeps it so)
    _layout_jit = njit(_layout)
    return njit(nogil=True)(_gemm)


_kernels = CompiledOnce(_compile)
_layout_jit = None               # set in _compile


def _layout(A):
    """(CBLAS_TRANSPOSE, leading dimension) of the 2-D array A as np.matmul passes it to cblas
    gemm: rows contiguous and apart by at least a row, or else columns so (transposed)."""
    size, (m, k) = A.itemsize, A.shape
    if A.strides[1] == size and A.strides[0] >= k * size:
        return NO_TRANS, A.strides[0] // size
    if A.strides[0] == size and A.strides[1] >= m * size:
        return TRANS, A.strides[1] // size
    raise ValueError("gemm: expected rows or columns with unit stride")


def _gemm(fn, A, B, C):
    """C = A B by fn, NumPy's own cblas_sgemm or cblas_dgemm (a ctypes function, passed in),
    row-major, A and B as np.matmul(A, B, out=C) passes them (_layout), so the same call and
    the same bits; C's rows contiguous."""
    ta, lda = _layout_jit(A)
    tb, ldb = _layout_jit(B)
    tc, ldc = _layout_jit(C)
    if tc != NO_TRANS:
        raise ValueError("gemm: the output's rows must be contiguous")
    fn(ROW_MAJOR, ta, tb, C.shape[0], C.shape[1], A.shape[1], 1.0, A.ctypes.data, lda,
       B.ctypes.data, ldb, 0.0, C.ctypes.data, ldc)
