"""A layer's inference on a batch as one compiled call, each of numba's two threads computing
its half of the batch, for a model whose every layer is one of these (the extra `fast`;
tidu.training.split_predict runs a model's layers through them):

    split_kernels(dtype).dense(x, W, b, act)    y = act(x W + b), x (N, D)
    split_kernels(dtype).conv(x, K, b, strides, dilation, pads, out_hw, pool, act)
        y[n, P, Q, f] = act(max over the pool's window (ph, pw) of (X K)[pixel] + b[f]) for
        x (N, H, W, C), K (kh, kw, C, F), X the im2col rows of the images over the pixels
        whole windows cover (out_hw the conv's output size, pads (top, bottom, left, right)
        its zero padding), filled and multiplied by K about CHUNK_BYTES of X at a time per
        half (the GEMM reads what the fill just wrote, in the cache); pool (1, 1): no pool.
        One input channel, strides and dilation 1, no padding and a 2×2 pool:
        tidu.kernels.conv_pool's direct kernel instead
    act: ACTS["linear"], ["relu"] (NaN stays, as tidu.kernels.elementwise's) or ["softmax"]
    (dense only); b a vector (zeros for no bias). split_kernels(dtype) is None where the fast
    paths are off, for another dtype than float32 and float64, or where NumPy's cblas gemm is
    not found (tidu.kernels.blas), and in a child forked from a process that ran them (numba's
    OpenMP threading layer ends a forked child that starts a parallel region). Call them with
    NumPy's BLAS on one thread and no other split running (tidu.kernels.halves.alone()): each
    half calls the gemm, and numba's workqueue layer (where OpenMP is missing) must not be
    entered from two threads at once.

Why: on a 2-vCPU host the single-threaded passes between two-thread GEMMs (the im2col copy,
the pooling, the bias and activation) read what the other core's BLAS thread wrote, and on the
AMD EPYC host of bench/RESULTS.md that costs two to four times as much in its slow spells
(RESULTS.md: "The two speeds are reads across cores"). tidu.kernels.halves keeps each half on
its core with two Python threads, which take turns on the GIL around every op (LeNet's
batch-32 latency 1.96 ms against 1.59 whole and 1.26 here: `python bench/alternate.py
--workload cnn_latency --variants "tidu[fast]-nosplit,tidu[fast]-nosplit:split=32,tidu[fast]"
--rounds 12 --steps 100`). Here each layer is one numba call whose
parallel loop runs the two halves at once, OpenBLAS on one thread inside each (NumPy's own
cblas gemm): one Python dispatch a layer, no GIL in the work, the same thread on the same
half in every layer (numba's static schedule). LeNet's predict_on_batch, alternated in one
process (AMD EPYC, AVX-512, 2 vCPUs; `python bench/alternate.py --workload cnn_latency
--variants "tidu[fast],tidu[fast]-nosplit" --batch B`, the other way the layers one by one,
in two halves on Python threads from 64 rows): batch 32 1.50 against 1.84 ms (12 rounds of 100
batches), 64 2.57 against 3.53, 256 8.53 against 9.27 (10 rounds of 20); a one-off script, in
and out of a slow spell: batch 32 1.29 against 1.69 ms, 1.39-1.42 against 2.74-2.87 in the
slow rounds; at 256 with each half's whole X at once, 12.05 against 9.92 (hence the chunks).

The sums are the plain path's terms in the GEMM's order (one thread's blocking instead of
two threads'), the bias after the pool's maximum (the same value: rounding is monotonic), so
the outputs agree with the layer-by-layer path to float rounding (tests/kernels/test_split.py).
NaN wins a pool window as in np.maximum. Compiled on first use (parallel numba, cached on disk
where numba can write its cache).
"""
import os
import threading
from collections import namedtuple

import numpy as np

from tidu.kernels import blas, conv_pool
from tidu.kernels.switch import CompiledOnce, njit, slp_vectorizer

ACTS = {"linear": 0, "relu": 1, "softmax": 2}
CHUNK_BYTES = 1 << 20   # a half's im2col rows filled and multiplied this many bytes at a time

# set in _compile: the kernels below call them as globals (numba.prange for prange)
_gemm_jit = _conv_pool_jit = _activate_row_jit = None
prange = range


def _compile():
    try:
        import numba
    except ImportError:
        return None
    fns = blas.gemm_functions()
    if fns is None:
        return None
    global _gemm_jit, _conv_pool_jit, _activate_row_jit, prange
    prange = numba.prange
    _activate_row_jit = njit(nogil=True)(_activate_row)
    _gemm_jit, _conv_pool_jit = blas.gemm_kernel(), conv_pool.direct_kernel()
    gemms = dict(zip((np.dtype(np.float32), np.dtype(np.float64)), fns))
    jit = njit(nogil=True, parallel=True, fastmath={"contract"})
    dense_jit, conv_jit = jit(_dense), jit(_conv)
    direct_jit = jit(_direct) if _conv_pool_jit is not None else None
    compiled, lock = set(), threading.Lock()

    def call(fn, *args):
        """fn(*args), its first call for a dtype (where numba compiles it) under the SLP
        vectorizer, as tidu.kernels.conv_pool compiles the blocks _direct calls."""
        if not _ran_in:
            _ran_in.append(os.getpid())
        key = (fn, args[1].dtype)
        if key not in compiled:
            with lock, slp_vectorizer():
                fn(*args)
                compiled.add(key)
            return
        fn(*args)

    kept = {}

    def scratch(cols_shape, z_shape, dtype):
        """The im2col matrix and GEMM output of a conv stage, kept from call to call (allocating
        them each time costs their pages' faults; one split at a time uses them, under
        tidu.kernels.halves.alone()) and each half filled by the same thread every time."""
        key = (cols_shape, z_shape, dtype)
        if key not in kept:
            if len(kept) >= 8:         # shapes come and go: keep few
                kept.clear()
            kept[key] = (np.empty(cols_shape, dtype), np.empty(z_shape, dtype))
        return kept[key]

    def dense(x, W, b, act):
        y = np.empty((x.shape[0], W.shape[1]), dtype=x.dtype)
        call(dense_jit, gemms[x.dtype], np.ascontiguousarray(x), np.ascontiguousarray(W), b,
             act, y)
        return y

    def conv(x, K, b, strides, dilation, pads, out_hw, pool, act):
        N, H, Wd, C = x.shape
        kh, kw, _, F = K.shape
        (ph, pw), (pt, pb, pl, pr) = pool, pads
        P, Q = out_hw[0] // ph, out_hw[1] // pw
        y = np.empty((N, P, Q, F), dtype=x.dtype)
        if P == 0 or Q == 0:
            return y
        x = np.ascontiguousarray(x)
        if direct_jit is not None and C == 1 and (ph, pw) == (2, 2) and \
                tuple(strides) == tuple(dilation) == (1, 1) and pt == pb == pl == pr == 0:
            call(direct_jit, None, x.reshape(N, H, Wd), np.ascontiguousarray(K[:, :, 0]), b,
                 x.dtype.type(0), act, y)
            return y
        geometry = np.array([kh, kw, *strides, *dilation, pt, pl, ph, pw], dtype=np.int64)
        R = P * ph * Q * pw
        step = max(1, min((N + 1) // 2, CHUNK_BYTES // (R * kh * kw * C * x.itemsize)))
        cols, z = scratch((2, step * R, kh * kw * C), (2, step * R, F), x.dtype)
        call(conv_jit, gemms[x.dtype], x, np.ascontiguousarray(K.reshape(kh * kw * C, F)), b,
             geometry, x.dtype.type(0), act, step, cols, z, y)
        return y

    return _Kernels(dense, conv)


_Kernels = namedtuple("_Kernels", "dense conv")


def _activate_row(v, act, zero):
    """v (one sample's outputs) through the activation in place: 1 relu (NaN stays, as in
    tidu.kernels.elementwise), 2 softmax."""
    if act == 1:
        for j in range(v.size):
            v[j] = zero if v[j] <= zero else v[j]
    elif act == 2:
        m = v[0]
        for j in range(1, v.size):
            m = v[j] if v[j] > m else m
        s = zero
        for j in range(v.size):
            v[j] = np.exp(v[j] - m)
            s += v[j]
        for j in range(v.size):
            v[j] = v[j] / s


def _dense(fn, x, W, b, act, y):
    """y = act(x W + b), each half of the rows on one of numba's threads."""
    N, U = y.shape
    zero = y.dtype.type(0)
    for k in prange(2):
        lo, hi = (0, N // 2) if k == 0 else (N // 2, N)   # half k's rows
        if hi > lo:
            _gemm_jit(fn, x[lo:hi], W, y[lo:hi])
            for n in range(lo, hi):
                for j in range(U):
                    y[n, j] += b[j]
                _activate_row_jit(y[n], act, zero)


def _conv(fn, x, W2, b, geometry, zero, act, step, cols, z, y):
    """y = act(pool(conv(x)) + b) by im2col and GEMMs per half (module docstring), `step`
    images at a time into half k's buffers cols[k] and z[k], so that the GEMM reads its im2col
    rows from the cache the fill wrote them to."""
    N, H, Wd, C = x.shape
    K, F = W2.shape
    kh, kw, sh, sw, dh, dw, pt, pl, ph, pw = geometry
    _, P, Q, _ = y.shape
    R = P * ph * Q * pw                       # im2col rows per image: the pooled pixels
    L = kw * C                                # one kernel row's taps
    for k in prange(2):
        lo, hi = (0, N // 2) if k == 0 else (N // 2, N)   # half k's rows
        m = np.empty(F, dtype=x.dtype)                    # one pooled pixel's F maxima
        for n0 in range(lo, hi, step):
            n1 = min(hi, n0 + step)
            for n in range(n0, n1):
                for p in range(P * ph):
                    for q in range(Q * pw):
                        row = cols[k, ((n - n0) * P * ph + p) * Q * pw + q]
                        j0 = q * sw - pl
                        run = dw == 1 and j0 >= 0 and j0 + kw <= Wd   # a row's taps in one run
                        for a in range(kh):
                            i = p * sh + a * dh - pt
                            if i < 0 or i >= H:
                                row[a * L:(a + 1) * L] = zero
                            elif run:
                                row[a * L:(a + 1) * L] = x[n, i].reshape(-1)[j0 * C:j0 * C + L]
                            else:
                                for c in range(kw):
                                    j = j0 + c * dw
                                    o = a * L + c * C
                                    if 0 <= j < Wd:
                                        row[o:o + C] = x[n, i, j]
                                    else:
                                        row[o:o + C] = zero
            rows = (n1 - n0) * R
            _gemm_jit(fn, cols[k, :rows], W2, z[k, :rows])
            for n in range(n0, n1):
                base = (n - n0) * R
                for pp in range(P):
                    for qq in range(Q):
                        first = base + (pp * ph) * (Q * pw) + qq * pw
                        for f in range(F):
                            m[f] = z[k, first, f]
                        for u in range(ph):
                            for v in range(pw):
                                r = first + u * (Q * pw) + v
                                for f in range(F):        # NaN wins, as in np.maximum
                                    t = z[k, r, f]
                                    m[f] = t if (t > m[f]) | (t != t) else m[f]
                        for f in range(F):
                            t = m[f] + b[f]
                            y[n, pp, qq, f] = (zero if t <= zero else t) if act == 1 else t


def _direct(fn, x, w, b, zero, act, y):
    """tidu.kernels.conv_pool's direct conv + bias + 2×2 pool on each half, then relu."""
    N = x.shape[0]
    empty = np.empty((0, 0, 0, 0), dtype=x.dtype)
    for k in prange(2):
        lo, hi = (0, N // 2) if k == 0 else (N // 2, N)   # half k's rows
        if hi > lo:
            _conv_pool_jit(x[lo:hi], w, b, zero, y[lo:hi], empty)
            if act == 1:
                for n in range(lo, hi):
                    v = y[n].reshape(-1)
                    for j in range(v.size):
                        v[j] = zero if v[j] <= zero else v[j]


_kernels = CompiledOnce(_compile)


# the process whose numba threads ran a kernel first: a child forked from it gets None, since
# numba's OpenMP threading layer ends a forked child that starts a parallel region
_ran_in = []


def split_kernels(dtype):
    """The kernels for arrays of dtype (module docstring), or None (there too in a process
    forked from one that ran them)."""
    if _ran_in and _ran_in[0] != os.getpid():
        return None
    return _kernels.get(dtype)
