"""A Dense layer's x W + b when most of x is zeros, through numba: the extra `fast`.

MNIST's pixels are 81% zeros (the background), and so are many inputs: one-hot and bag-of-words
rows, masks. A GEMM multiplies every one of them. Here each row of x lists its nonzero entries
(k, x_ik), and the row of the output is the bias plus x_ik · W_k summed over those alone:

    y_i = b + Σ_{k : x_ik ≠ 0} x_ik W_k          (W_k the k-th row of W, contiguous)

four rows of W at a time, so each pass over y_i adds four of them; with relu, the ReLU of
tidu.kernels.elementwise (y = 0 if z ≤ 0 else z) follows in the same pass. For the MLP's first
layer (784 → 512, batch 256) on MNIST's test images that is 0.19 of the GEMM's multiply-adds at
about 0.35 of the BLAS's rate: `python bench/sparse_dense.py` (9 rounds) took 48.4 ms for the
10,000 images on one core against 88.5 for the one-thread GEMM, but 49.4 for the GEMM on two
threads, no faster, so the kernel runs only where a batch's work is on one core
(tidu.kernels.halves.one_core): in the two halves of a run (predict sends a Dense-first model's
batches to the cores in pairs when its input is mostly zeros, see
tidu.training.loops._in_pairs), or with one CPU or one BLAS thread. And only at inference
(tidu.functional.dense): in training the step's halves measured no gain with it, and the
training numbers keep their bits. (AMD EPYC host of bench/RESULTS.md, AVX-512, OpenBLAS
SkylakeX.)

The same sums as the GEMM in another order: y agrees with x W + b to float rounding, not bit
for bit; NaN and ±∞ in x go through the sums as in the GEMM (x_ik = NaN is not 0). Skipping
x_ik = 0 drops the products 0 · W_ik, which are 0 for every finite W_ik; where W holds ±∞ or
a NaN the GEMM's 0 · ∞ = NaN would be lost, so the kernel checks W (a pass over it per call,
per column so that it vectorizes) and its result is dropped if W is not finite.

    dense_sparse(x2, W, b, relu) -> y (M, U), or None: x2 not mostly zeros, W not finite, more
                                    than one core at work, an output narrower than MIN_UNITS,
                                    or arrays the kernel does not take (not C-contiguous, dtypes
                                    that differ)
    mostly_zeros(x)              -> whether at most DENSITY of the entries of x's first
                                    SAMPLE_ROWS rows are nonzero

DENSITY: the kernel's cost grows with the nonzeros, the GEMM's does not; on one core they meet
near 0.35 for the shape above (the first 16 rows of MNIST's batches of 256 hold 16-25%). Compiled on first use, cached on disk, nogil (a predict's two
halves run it at once).
"""
from collections import namedtuple

import numpy as np

from tidu.kernels import halves
from tidu.kernels.switch import CompiledOnce, njit

SparseInput = namedtuple("SparseInput", "dense_sparse")

DENSITY = 0.3         # at most this fraction of nonzero entries in the sampled rows
SAMPLE_ROWS = 16
MIN_UNITS = 32        # narrower outputs: the passes over y_i are too short to pay


def mostly_zeros(x):
    """Whether at most DENSITY of the entries of x's first SAMPLE_ROWS rows are nonzero (a
    sample: whole batches cost a pass over x)."""
    sample = x[:SAMPLE_ROWS]        # (count_nonzero of a bool array: 2.3 µs; of floats: 6-7)
    return sample.size > 0 and np.count_nonzero(sample != 0) <= DENSITY * sample.size


def sparse_input_kernels(dtype):
    """SparseInput(dense_sparse) of the compiled kernel (module docstring), or None: numba
    missing, the fast paths off, another array backend or a dtype other than float32 and
    float64."""
    return _kernels.get(dtype)


def _compile():
    try:
        import numba  # noqa: F401  (njit needs it)
    except ImportError:
        return None

    jit = njit(nogil=True)   # no fastmath: NaN and ±∞ in x go through the sums as in the GEMM

    @jit
    def rows(x, W, b, y, relu):
        """y = x W + b over x's nonzeros (then the ReLU if relu); returns whether W is finite
        (y is not to be used otherwise)."""
        K, U = W.shape
        zero = y.dtype.type(0)
        check = np.zeros(U, y.dtype)            # per column: NaN once an entry is ±∞ or NaN
        for k in range(K):
            w = W[k]
            for j in range(U):
                check[j] += w[j] * zero
        idx = np.empty(K, np.int64)
        val = np.empty(K, y.dtype)
        for i in range(x.shape[0]):
            m = 0
            for k in range(K):
                v = x[i, k]
                if v != zero:
                    idx[m] = k
                    val[m] = v
                    m += 1
            o = y[i]
            for j in range(U):
                o[j] = b[j]
            q = 0
            while q + 4 <= m:
                v0, v1, v2, v3 = val[q], val[q + 1], val[q + 2], val[q + 3]
                w0, w1, w2, w3 = W[idx[q]], W[idx[q + 1]], W[idx[q + 2]], W[idx[q + 3]]
                for j in range(U):
                    o[j] += v0 * w0[j] + v1 * w1[j] + v2 * w2[j] + v3 * w3[j]
                q += 4
            while q < m:
                v, w = val[q], W[idx[q]]
                for j in range(U):
                    o[j] += v * w[j]
                q += 1
            if relu:
                for j in range(U):
                    v = o[j]
                    o[j] = zero if v <= zero else v
        for j in range(U):
            if check[j] != zero:
                return False
        return True

    def dense_sparse(x2, W, b, relu):
        M = x2.shape[0]
        U = W.shape[1]
        if U < MIN_UNITS or M == 0 or not (type(x2) is np.ndarray and x2.flags.c_contiguous
                                           and W.flags.c_contiguous and x2.dtype == W.dtype) \
                or not halves.one_core() or not mostly_zeros(x2):    # the cheaper test first
            return None
        b = np.zeros(U, W.dtype) if b is None else np.ascontiguousarray(b, dtype=W.dtype)
        y = np.empty((M, U), W.dtype)
        return y if rows(x2, W, b, y, relu) else None

    return SparseInput(dense_sparse)


_kernels = CompiledOnce(_compile)
