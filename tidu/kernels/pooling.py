"""Max and average pooling (2-D, NHWC) in one pass through numba: the extra `fast`.

tidu.functional's pools read a window through its taps, the strided views
x̃[:, i::sh, j::sw, :] (see tidu.functional.conv): ph·pw ufunc passes forward, and backward
as many again plus comparisons for the max pool. The kernels here visit each window once,
channels innermost (contiguous, so the loops over C vectorize), skipping the padding instead
of building a padded copy, and give the same numbers:

  max forward    y = the window's maximum; arg = the row-major index k = i·pw + j of its FIRST
                 maximum (strict >, as the plain path's comparisons of each tap with y), −1
                 where the window holds a NaN (y is NaN then and no element gets a gradient).
                 Padding is −∞ and never wins: it only keeps k = 0 when every element inside
                 is −∞ and the window starts in the padding, where the plain path sends the
                 gradient to the padding too (that is, nowhere).
  max backward   dL/dx at the element arg points to = gy, 0 elsewhere; overlapping windows
                 add, tap by tap (k outer) as the plain path adds, so the sums are the same.
  avg forward    y = (x₀ + x₁ + … + x_k) · inv, the inside elements in row-major order (the
                 plain path's order; its padding zeros add nothing), inv = 1/|w| as computed
                 by the op (per output pixel for 'same', which averages the inside only).
  avg backward   dL/dx = gy · inv at every element of the window, overlapping windows added
                 tap by tap as in the plain path.

So every result is bit for bit the plain path's, up to the sign of a zero (the plain max of
tied ±0 may differ) and except with a non-finite gy, which the plain max pool spreads over the
window as gy·0 = NaN.

Measured (AMD EPYC with AVX-512, 2 cores shared with other jobs, load 2-5; float32, minimum of
200 calls, interleaved processes): on (64, 24, 24, 20) with pool 2, LeNet's first pool, average
pooling forward+backward 0.56 -> 0.38 ms; max pooling 0.93 -> 0.92 ms (forward 0.26 -> 0.45,
the first-maximum index costs; backward 0.68 -> 0.47); on (64, 8, 8, 50) max 0.23 -> 0.07 ms.
The LeNet training step (bench/workloads.py cnn) 13.0 -> 12.0 ms (medians of 3 interleaved
runs). The loops over the batch are numba.prange, but compiled with parallel=False: numba's
threads next to OpenBLAS's (which spin between GEMMs) made that step 3× slower (39 ms).

tidu.functional's MaxPool2D and AvgPool2D ask `pool_kernels(dtype)` and run their NumPy code,
the reference, whenever it is None: the fast paths off (tidu.kernels.enabled() False: numba
missing, TIDU_FAST=0 or set_enabled(False); asked first, so numba is not even imported), another
array backend, or a dtype other than float32 and float64. Compiled on first use, cached on disk.
"""
from collections import namedtuple

import numpy as np

from tidu.kernels.memory import keep_freed_memory
from tidu.kernels.switch import CompiledOnce, njit

Pools = namedtuple("Pools", "max_forward max_backward avg_forward avg_backward")
PARALLEL = False  # one thread: numba's pool next to OpenBLAS's made the LeNet step 3× slower
# nogil: a batch's two halves (tidu.kernels.halves) may run the kernels at once


def pool_kernels(dtype):
    """Pools(max_forward, max_backward, avg_forward, avg_backward) of the compiled kernels, or
    None: numba missing, the fast path off, another array backend or another dtype.

        max_forward(x, pool, strides, pads, out_hw)          -> y, arg
        max_backward(gy, arg, x_shape, pool, strides, pads)  -> dL/dx
        avg_forward(x, pool, strides, pads, out_hw, inv)     -> y      (inv: (OH, OW), x's dtype)
        avg_backward(gy, inv, x_shape, pool, strides, pads)  -> dL/dx
    """
    return _kernels.get(dtype)


def _compile():
    """The wrappers around the kernels (None without numba), compiled by numba per dtype."""
    try:
        import numba
    except ImportError:
        return None
    keep_freed_memory()  # else the index saved instead of x left the convnet page-faulting

    jit = njit(parallel=PARALLEL, nogil=True)

    @jit
    def max_fwd(x, ph, pw, sh, sw, pt, pl, y, arg):
        N, H, W, C = x.shape
        _, OH, OW, _ = y.shape
        ninf = -np.inf
        for n in numba.prange(N):
            for p in range(OH):
                for q in range(OW):
                    yv, av = y[n, p, q], arg[n, p, q]
                    for c in range(C):
                        yv[c] = ninf
                        av[c] = 0
                    for i in range(ph):
                        r = p * sh - pt + i
                        if r < 0 or r >= H:
                            continue
                        for j in range(pw):
                            s = q * sw - pl + j
                            if s < 0 or s >= W:
                                continue
                            k = i * pw + j
                            xv = x[n, r, s]
                            for c in range(C):     # selects, no branch: the loop vectorizes
                                v = xv[c]
                                take = (v > yv[c]) | (v != v)   # a NaN stays, as np.maximum's
                                yv[c] = v if take else yv[c]
                                av[c] = k if take else av[c]
                    for c in range(C):
                        if yv[c] != yv[c]:                 # a NaN maximum: no element wins
                            av[c] = -1

    @jit
    def max_bwd(gy, arg, ph, pw, sh, sw, pt, pl, disjoint, gx):
        N, H, W, C = gx.shape
        _, OH, OW, _ = gy.shape
        for n in numba.prange(N):
            if disjoint:  # each element in at most one window: write it once
                for p in range(OH):
                    for q in range(OW):
                        gv, av = gy[n, p, q], arg[n, p, q]
                        for i in range(ph):
                            r = p * sh - pt + i
                            if r < 0 or r >= H:
                                continue
                            for j in range(pw):
                                s = q * sw - pl + j
                                if s < 0 or s >= W:
                                    continue
                                k = i * pw + j
                                out = gx[n, r, s]
                                for c in range(C):
                                    out[c] = gv[c] if av[c] == k else 0
            else:         # overlapping windows: add tap by tap, as the plain path
                for i in range(ph):
                    for j in range(pw):
                        k = i * pw + j
                        for p in range(OH):
                            r = p * sh - pt + i
                            if r < 0 or r >= H:
                                continue
                            for q in range(OW):
                                s = q * sw - pl + j
                                if s < 0 or s >= W:
                                    continue
                                gv, av, out = gy[n, p, q], arg[n, p, q], gx[n, r, s]
                                for c in range(C):
                                    if av[c] == k:
                                        out[c] += gv[c]

    @jit
    def avg_fwd(x, ph, pw, sh, sw, pt, pl, inv, y):
        N, H, W, C = x.shape
        _, OH, OW, _ = y.shape
        for n in numba.prange(N):
            for p in range(OH):
                for q in range(OW):
                    yv = y[n, p, q]
                    first = True
                    for i in range(ph):
                        r = p * sh - pt + i
                        if r < 0 or r >= H:
                            continue
                        for j in range(pw):
                            s = q * sw - pl + j
                            if s < 0 or s >= W:
                                continue
                            xv = x[n, r, s]
                            if first:
                                for c in range(C):
                                    yv[c] = xv[c]
                                first = False
                            else:
                                for c in range(C):
                                    yv[c] += xv[c]
                    f = inv[p, q]
                    for c in range(C):
                        yv[c] *= f

    @jit
    def avg_bwd(gy, inv, ph, pw, sh, sw, pt, pl, disjoint, gx):
        N, H, W, C = gx.shape
        _, OH, OW, _ = gy.shape
        for n in numba.prange(N):
            if disjoint:
                for p in range(OH):
                    for q in range(OW):
                        gv, f = gy[n, p, q], inv[p, q]
                        for i in range(ph):
                            r = p * sh - pt + i
                            if r < 0 or r >= H:
                                continue
                            for j in range(pw):
                                s = q * sw - pl + j
                                if s < 0 or s >= W:
                                    continue
                                out = gx[n, r, s]
                                for c in range(C):
                                    out[c] = gv[c] * f
            else:
                for i in range(ph):
                    for j in range(pw):
                        for p in range(OH):
                            r = p * sh - pt + i
                            if r < 0 or r >= H:
                                continue
                            for q in range(OW):
                                s = q * sw - pl + j
                                if s < 0 or s >= W:
                                    continue
                                gv, f, out = gy[n, p, q], inv[p, q], gx[n, r, s]
                                for c in range(C):
                                    out[c] += gv[c] * f

    def covered(x_shape, pool, strides, pads, out_hw):
        """(disjoint, exact): windows never overlap; they tile the input with no gap."""
        (_, H, W, _), (ph, pw), (sh, sw), (OH, OW) = x_shape, pool, strides, out_hw
        pt, pb, pl, pr = pads
        disjoint = sh >= ph and sw >= pw
        exact = (sh, sw) == (ph, pw) and H + pt + pb == ph * OH and W + pl + pr == pw * OW
        return disjoint, exact

    def max_forward(x, pool, strides, pads, out_hw):
        x = np.ascontiguousarray(x)
        N, _, _, C = x.shape
        y = np.empty((N, *out_hw, C), dtype=x.dtype)
        arg = np.empty((N, *out_hw, C), dtype=np.int8 if pool[0] * pool[1] <= 127 else np.int32)
        max_fwd(x, *pool, *strides, pads[0], pads[2], y, arg)
        return y, arg

    def max_backward(gy, arg, x_shape, pool, strides, pads):
        disjoint, exact = covered(x_shape, pool, strides, pads, arg.shape[1:3])
        gx = (np.empty if exact else np.zeros)(x_shape, dtype=gy.dtype)
        max_bwd(np.ascontiguousarray(gy), arg, *pool, *strides, pads[0], pads[2], disjoint, gx)
        return gx

    def avg_forward(x, pool, strides, pads, out_hw, inv):
        x = np.ascontiguousarray(x)
        N, _, _, C = x.shape
        y = np.empty((N, *out_hw, C), dtype=x.dtype)
        avg_fwd(x, *pool, *strides, pads[0], pads[2], inv, y)
        return y

    def avg_backward(gy, inv, x_shape, pool, strides, pads):
        disjoint, exact = covered(x_shape, pool, strides, pads, inv.shape)
        gx = (np.empty if exact else np.zeros)(x_shape, dtype=gy.dtype)
        avg_bwd(np.ascontiguousarray(gy), inv, *pool, *strides, pads[0], pads[2], disjoint, gx)
        return gx

    return Pools(max_forward, max_backward, avg_forward, avg_backward)


_kernels = CompiledOnce(_compile)
