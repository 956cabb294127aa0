"""The convolution's input gradient (2-D, NHWC) in one numba pass: the extra `fast`.

tidu.functional's Conv2D gets dL/dx̃ from kh·kw batched GEMMs, one per window tap (i, j),
whose (N, OH, OW, C) blocks it adds into a zeroed buffer shaped like the padded input x̃:
kh·kw NumPy passes over the whole batch, each reading and writing the buffer again, then a
copy of the unpadded part. Here the tap blocks come from ONE GEMM, the column gradient

    D = G Kᵀ   (N·OH·OW, kh·kw·C): row (n, p, q) holds the gradient of window (n, p, q),

read once, in order, image by image, and added where each window sits:

    dL/dx[n, p·sh + i·dh − pt, q·sw + j·dw − pl, c] += D[n, p, q, i, j, c]

for p, q, i, j row-major, skipping the rows and columns that fall in the padding (so dL/dx
comes out unpadded), channels innermost (contiguous, so that loop vectorizes). An image's
gradient (LeNet: 12·12·20 floats) stays in the cache while its windows are added. The plain
path adds the same terms tap by tap, in another order, so the two agree to float rounding
(measured: within 3e-7 of the largest |dL/dx| in float32), not bit for bit.

Measured (AMD EPYC, AVX-512, 1 BLAS thread, machine shared with other jobs: CPU time of the
calling thread, minimum of 40 calls):
    LeNet's 2nd conv (64, 12, 12, 20), 5×5×20×50:    taps 3.0 + adds 0.8-1.2 ms  ->  GEMM 2.2 + pass 0.4 ms
    convnet's 2nd conv (128, 13, 13, 32), 3×3×32×64: taps 6.9 + adds 2.4-2.6 ms  ->  GEMM 6.8 + pass 0.9-1.1 ms
    batch-32 LeNet (32, 12, 12, 20):                 taps 1.4 + adds 0.4-0.6 ms  ->  GEMM 1.0 + pass 0.3 ms
A first version gathered instead (each element of x summing its windows, in the plain path's
order, bit-equal): its reads of D jump between windows and it ran 2.5 ms on LeNet's shape,
slower than NumPy's adds.

The loop over the batch is numba.prange, compiled with parallel=False, as the pooling
kernels (tidu.kernels.pooling): numba's threads next to OpenBLAS's spinning ones cost more
than they gave. conv_kernels(dtype) is None whenever the fast path is off (tidu.kernels.enabled()
False: numba missing, TIDU_FAST=0 or set_enabled(False)), for another array backend or a dtype
other than float32 and float64; Conv2D then runs its NumPy code, the reference.
"""
from collections import namedtuple

import numpy as np

from tidu.kernels.memory import keep_freed_memory
from tidu.kernels.switch import CompiledOnce, njit

Convs = namedtuple("Convs", "col2im fill_one_channel")
PARALLEL = False  # one thread: numba's pool next to OpenBLAS's spinning workers costs more
# nogil: a batch's two halves (tidu.kernels.halves) may run the kernel at once


def conv_kernels(dtype):
    """Convs(col2im, fill_one_channel) of the compiled kernels, or None: numba missing, the
    fast path off, another array backend or another dtype.

        col2im(D, x_shape, out_hw, window, strides, dilation, pads) -> dL/dx   (x_shape (N, H, W, C))
    with D the (N·OH·OW, kh·kw·C) column gradient, out_hw (OH, OW), window (kh, kw), pads
    (top, bottom, left, right);
        fill_one_channel(colsT, x2, window, strides, dilation, tiles)
    the copy of tidu.functional.conv._fill_one_channel (the transposed im2col matrix of a
    one-channel input, rows in tile order; the same values) in one call: per image, the input's
    phases made contiguous, then every block copied from them, where NumPy makes a call per
    block (LeNet's first conv: ~100 calls, ~130 µs whatever the batch). Measured (AMD EPYC,
    AVX-512, minimum of 5 × 50 calls): batch 1 with 2×2 tiles 0.006 against ~0.13 ms, batch 32
    0.17 against 0.21 ms, batch 64 without tiles 0.19 against 0.20 ms.
    """
    return _kernels.get(dtype)


def _compile():
    """The wrapper around the kernel (None without numba), compiled by numba per dtype."""
    try:
        import numba
    except ImportError:
        return None
    keep_freed_memory()

    from numba import uint64
    jit = njit(parallel=PARALLEL, nogil=True)

    @jit
    def scatter(D, sh, sw, dh, dw, pt, pl, gx):
        N, H, W, C = gx.shape
        _, OH, OW, kh, kw, _ = D.shape
        for n in numba.prange(N):
            g = gx[n]
            for r in range(H):
                for s in range(W):
                    for c in range(C):
                        g[r, s, c] = 0
            for p in range(OH):
                for q in range(OW):
                    for i in range(kh):
                        r = p * sh + i * dh - pt           # the row of x under window row i
                        if r < 0 or r >= H:
                            continue
                        for j in range(kw):
                            s = q * sw + j * dw - pl
                            if s < 0 or s >= W:
                                continue
                            src, out = D[n, p, q, i, j], g[r, s]
                            for c in range(C):
                                out[c] += src[c]

    @jit
    def fill(colsT, x2, kh, kw, sh, sw, dh, dw):
        _, N, th, tw, P, Q = colsT.shape
        _, H, W = x2.shape
        R, S = th * sh, tw * sw         # the input's phases: rows ≡ r (mod R), cols ≡ s (mod S)
        HR, WS = (H + R - 1) // R, (W + S - 1) // S
        phases = np.zeros((R, S, HR, WS), dtype=colsT.dtype)
        ph, out = phases.ravel(), colsT.ravel()
        for n in range(N):
            for r in range(H):
                for s in range(W):
                    phases[r % R, s % S, r // R, s // S] = x2[n, r, s]
            for a in range(kh):
                for b in range(kw):
                    for i in range(th):
                        for j in range(tw):
                            r, s = i * sh + a * dh, j * sw + b * dw
                            src = (((r % R) * S + s % S) * HR + r // R) * WS + s // S
                            dst = ((((a * kw + b) * N + n) * th + i) * tw + j) * P * Q
                            for p in range(P):      # P rows of Q, contiguous on both sides;
                                for q in range(Q):  # unsigned flat indices: no wraparound test
                                    out[uint64(dst + p * Q + q)] = ph[uint64(src + p * WS + q)]

    def fill_one_channel(colsT, x2, window, strides, dilation, tiles):
        fill(colsT[:window[0] * window[1]], x2, *window, *strides, *dilation)

    def col2im(D, x_shape, out_hw, window, strides, dilation, pads):
        N, _, _, C = x_shape
        D6 = np.ascontiguousarray(D).reshape(N, *out_hw, *window, C)
        gx = np.empty(x_shape, dtype=D.dtype)
        scatter(D6, *strides, *dilation, pads[0], pads[2], gx)
        return gx

    return Convs(col2im, fill_one_channel)


_kernels = CompiledOnce(_compile)
