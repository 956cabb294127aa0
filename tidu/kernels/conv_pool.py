"""A one-channel convolution, its bias and the 2×2 max pool that tiles it, for inference,
computed directly (no im2col matrix) by a register-blocked numba kernel: the extra `fast`.

    y[n, P, Q, f] = max_{i, j < 2} z[n, 2P + i, 2Q + j, f] + b[f],
    z[n, p, q, f] = Σ_{a<kh, c<kw} x[n, p + a, q + c] · K[a, c, f]        (stride 1, no dilation)

tidu.functional's Conv2DMaxPool fills the im2col matrix X (one row of kh·kw values per output
pixel), multiplies it by K and folds the pool's blocks with np.maximum: the matrix is kh·kw
times the input (LeNet's first conv at batch 32: 1.9 MB written, then read by the GEMM), and
the GEMM's inner dimension kh·kw + 1 = 26 is too short for OpenBLAS's kernels (40-48 GFLOP/s
on one core of the AMD EPYC host, where a large sgemm runs at 95). Here each image is copied
into a small zero-padded buffer and every output value is summed in a register: a block of 2
output rows × QB = 4 columns × FB = 8 filters is 64 accumulators; each tap (a, c) loads the 8
filters' weights once and broadcasts each of the 8 inputs it needs over them, 64 multiply-adds.
The block is written out statement by statement (_block_source) so that LLVM's SLP vectorizer,
which numba leaves off unless NUMBA_SLP_VECTORIZE=1 and which this module turns on while it
compiles, packs each run of 8 filters into one vector; numba's loop vectorizer would keep the
accumulators in memory instead (measured: 2.7 ms against 0.35 for a first version of the
block, LeNet's first conv at batch 32). With the filters in the vectors, the pool is 3 vector maxima of the block's 4 outputs per
pooled pixel, NaN winning as in np.maximum, and its 8 filters are stored at once; the bias is
added after the maximum, which is the same as before it, rounding being monotonic.

The sums run over (a, c) in row-major order from 0, each term one fused multiply-add, then
+ b[f]; the im2col GEMM sums the same terms in an order of OpenBLAS's choosing with the bias as
its last term, so the two agree to float rounding (tests/kernels/test_conv_pool_kernel.py:
within 1e-6 of the largest |y| in float32; on this host's shapes bit for bit).

Measured (AMD EPYC, AVX-512, float32, LeNet's first conv 5×5×1×20 with its 2×2 pool on
(N, 28, 28, 1), median of 100 calls): batch 32 0.27 ms on one thread, against 0.62 for
fill + GEMM + fold on one thread and 0.48-0.64 with the GEMM on two (F = 20 is padded to 24
filters; 32 filters take 0.35). Two threads each taking half the batch were slower: OpenBLAS's
worker, spinning after the previous layer's GEMM, holds the other core. The LeNet CNN's
predict_on_batch, both ways alternated in one process: batch 32 2.81 against 3.69 ms, batch
256 10.4 against 12.6 (a slow spell of the host).

one_channel_conv_pool(dtype) is None whenever the fast paths are off (tidu.kernels.enabled()
False), for another array backend or a dtype other than float32 and float64; the op then runs
its NumPy code, the reference. Compiled on first use (~7 s), kept in numba's disk cache where
it has a writable place for it.
"""
import contextlib
import threading

import numpy as np

from tidu.kernels.switch import CompiledOnce, njit

QB, FB = 4, 8   # a block: 2 output rows × QB output columns × FB filters, in registers
_rows = _compiled = None   # the compiled block and _conv_pool (_compile)


def one_channel_conv_pool(dtype):
    """The kernel, or None (the fast path off, numba missing, another backend or dtype):

        conv_pool(x, kernel, bias) -> y (N, P, Q, F)
    for x (N, H, W) the (padded) one-channel input, kernel (kh, kw, F), bias (F,) or None,
    P = ⌊(H − kh + 1)/2⌋, Q = ⌊(W − kw + 1)/2⌋ (see the module docstring).
    """
    return _kernels.get(dtype)


def _block_source():
    """The source of rows(xs, w, Fp, kh, kw, Wp, p0, nqb, zero, b, Q, y, yo): output rows p0
    and p0 + 1 of one image xs (flat, rows Wp wide), over the nqb·QB first columns and every
    filter (w flat (kh, kw, Fp), Fp a multiple of FB), pooled 2×2 in the registers, + b, into
    y[yo + qq·Fp + f] for the pooled columns qq < Q. Accumulator a{r}_{q}_{f} holds output row
    p0 + r, column qb·QB + q, filter fb·FB + f; a tap (i, j) loads FB weights and makes
    2·QB·FB multiply-adds, each input broadcast over the FB filters."""
    acc = [[[f"a{r}_{q}_{f}" for f in range(FB)] for q in range(QB)] for r in range(2)]
    pad = " " * 12
    lines = [
        "def rows(xs, w, Fp, kh, kw, Wp, p0, nqb, zero, b, Q, y, yo):",
        f"    for fb in range(Fp // {FB}):",
        "        for qb in range(nqb):",
        *(f"{pad}{' = '.join(acc[r][q])} = zero" for r in range(2) for q in range(QB)),
        f"{pad}for i in range(kh):",
        f"{pad}    wr = i * kw * Fp + fb * {FB}",
        *(f"{pad}    xr{r} = (p0 + {r} + i) * Wp + qb * {QB}" for r in range(2)),
        f"{pad}    for j in range(kw):",
        f"{pad}        wo = wr + j * Fp",
        f"{pad}        " + "; ".join(f"w{f} = w[U(wo + {f})]" for f in range(FB)),
        *(f"{pad}        x = xs[U(xr{r} + j + {q})]; "
          + "; ".join(f"{acc[r][q][f]} += w{f} * x" for f in range(FB))
          for r in range(2) for q in range(QB)),
    ]
    for k in range(QB // 2):
        lines += [f"{pad}qq = qb * {QB // 2} + {k}", f"{pad}if qq < Q:",
                  f"{pad}    o = yo + qq * Fp + fb * {FB}"]
        for f in range(FB):
            tile = [acc[r][2 * k + c][f] for r in range(2) for c in range(2)]
            lines.append(f"{pad}    m = {tile[0]}")
            for v in tile[1:]:   # NaN wins, as in the plain path's np.maximum
                lines.append(f"{pad}    m = {v} if ({v} > m) | ({v} != {v}) else m")
            lines.append(f"{pad}    y{f} = m + b[U(fb * {FB} + {f})]")
        lines.append(f"{pad}    " + "; ".join(f"y[U(o + {f})] = y{f}" for f in range(FB)))
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def _slp_vectorizer():
    """numba's SLP vectorizer on while the block compiles (numba reads the setting per
    compilation), the setting put back after."""
    from numba.core import config
    before, config.SLP_VECTORIZE = config.SLP_VECTORIZE, 1
    try:
        yield
    finally:
        config.SLP_VECTORIZE = before


def _conv_pool(x, w, b, zero, y):
    """y = the 2×2-pooled convolution of x by w, + b (module docstring), two output rows at a
    time through _rows; compiled by numba in _compile."""
    N, H, W = x.shape
    kh, kw, F = w.shape
    _, P, Q, _ = y.shape
    nqb = (2 * Q + QB - 1) // QB             # column blocks covering the pooled columns
    Wp, Hp = nqb * QB + kw - 1, 2 * P + kh - 1   # the image buffer: what the blocks read,
    Fp = (F + FB - 1) // FB * FB             # zeros past the image; filters padded to FB
    wp = np.zeros((kh, kw, Fp), dtype=w.dtype)
    wp[:, :, :F] = w
    bp = np.zeros(Fp, dtype=w.dtype)
    bp[:F] = b
    xs = np.zeros((Hp, Wp), dtype=x.dtype)
    yp = np.empty((P, Q, Fp), dtype=x.dtype)
    hc, wc = min(H, Hp), min(W, Wp)
    wf, xf, yf = wp.ravel(), xs.ravel(), yp.ravel()
    for n in range(N):
        xs[:hc, :wc] = x[n, :hc, :wc]
        for pp in range(P):
            _rows(xf, wf, Fp, kh, kw, Wp, 2 * pp, nqb, zero, bp, Q, yf, pp * Q * Fp)
        y[n] = yp[:, :, :F]


def _compile():
    """The kernel's wrapper (None without numba); the numba functions compile per dtype on the
    wrapper's first call for it."""
    try:
        import numba
    except ImportError:
        return None
    # The block's source is compiled as if it came from this file, so that numba's disk cache,
    # which keys a function on its file, keeps it (the source changes only with this file);
    # numba's messages about it point into this file at the generated line numbers.
    namespace = {"U": numba.uint64, "__name__": __name__}
    exec(compile(_block_source(), __file__, "exec"), namespace)
    jit = njit(nogil=True, fastmath={"contract"})   # contract: a·b + c as one fused multiply-add
    global _rows, _compiled
    _rows = jit(namespace["rows"])   # a global, not a closure: numba's cache keys a function on
    #                                  its closure's pickled cells, new in every process
    conv_pool = _compiled = jit(_conv_pool)
    compiled = set()
    lock = threading.Lock()

    def run(x, kernel, bias):
        N, H, W = x.shape
        kh, kw, F = kernel.shape
        dtype = kernel.dtype
        # one array type per dtype (contiguous, aligned, writeable: a copy otherwise), so that
        # numba never compiles another specialization lazily, without the SLP vectorizer
        need = ("C_CONTIGUOUS", "ALIGNED", "WRITEABLE")
        x, kernel = np.require(x, dtype, need), np.require(kernel, dtype, need)
        bias = np.zeros(F, dtype) if bias is None else np.require(bias, dtype, need)
        y = np.empty((N, (H - kh + 1) // 2, (W - kw + 1) // 2, F), dtype=dtype)
        args = (x, kernel, bias, dtype.type(0), y)
        if dtype not in compiled:
            with lock, _slp_vectorizer():
                conv_pool.compile(tuple(numba.typeof(a) for a in args))
                compiled.add(dtype)
        conv_pool(*args)
        return y

    return run


_kernels = CompiledOnce(_compile)
