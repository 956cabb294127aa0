"""A one-channel convolution, its bias and the 2×2 max pool that tiles it, computed directly
(no im2col matrix) by register-blocked numba kernels, forward and for the kernel's and bias's
gradients: the extra `fast`.

    y[n, P, Q, f] = max_{i, j < 2} z[n, 2P + i, 2Q + j, f],
    z[n, p, q, f] = Σ_{a<kh, c<kw} x[n, p + a, q + c] · K[a, c, f] + b[f]  (stride 1, no dilation)
    dL/dK[a, c, f] = Σ_{n,P,Q} gy[n, P, Q, f] · x[n, 2P + i + a, 2Q + j + c],   dL/db = Σ gy
with (i, j) the tile's first maximum for filter f (no gradient through a tile holding a NaN).

tidu.functional's Conv2DMaxPool fills the im2col matrix X (one row of kh·kw values per output
pixel), multiplies it by K and folds the pool's blocks with np.maximum: the matrix is kh·kw
times the input (LeNet's first conv at batch 32: 1.9 MB written, then read by the GEMM), and
the GEMM's inner dimension kh·kw + 1 = 26 is too short for OpenBLAS's kernels (40-48 GFLOP/s
on one core of the AMD EPYC host, where a large sgemm runs at 95); training reads X again for
dL/dK = Xᵀ dL/dz. Here each image is copied into a small zero-padded buffer and every output
value is summed in a register: a block of 2 output rows × QB = 4 columns × FB = 8 filters is
64 accumulators; each tap (a, c) loads the 8 filters' weights once and broadcasts each of the
8 inputs it needs over them, 64 multiply-adds. The blocks are written out statement by
statement (_block_source, _wgrad_source) so that LLVM's SLP vectorizer, which numba leaves
off unless NUMBA_SLP_VECTORIZE=1 and which this module turns on while they compile, packs each
run of 8 filters into one vector; numba's loop vectorizer would keep the accumulators in
memory instead (measured: 2.7 ms against 0.35 for a first version of the block, LeNet's first
conv at batch 32). With the filters in the vectors, the pool is 3 vector maxima of the block's
4 outputs per pooled pixel, NaN winning as in np.maximum, and its 8 filters are stored at
once. For inference the bias is added after the maximum (the same, rounding being
monotonic); for training before it, so that the first maximum, stored per tile and filter for
backward, is the NumPy path's. The weight gradient's block holds dL/dK for one kernel row
and 8 filters (kw·8 sums) and adds each tile's four masked gradients times the 2 × (kw + 1)
inputs under it, image by image (a sum over the whole batch in one register would round like
one of N·P·Q terms: 1.8e-6 of the largest |dL/dK| at LeNet's batch 32, against 2.7e-7 image
by image and 2.1e-7 for the GEMM, measured against float64).

The sums run over (a, c) in row-major order from 0, each term one fused multiply-add; the
im2col GEMM sums the same terms in an order of OpenBLAS's choosing with the bias as its last
term, so the two agree to float rounding (tests/kernels/test_conv_pool_kernel.py: within
1e-6 of the largest |value| in float32; y on this host's shapes bit for bit).

Measured (AMD EPYC, AVX-512, float32, LeNet's first conv 5×5×1×20 with its 2×2 pool on
(N, 28, 28, 1), one thread, medians of 40-100 calls): inference at batch 32 0.27 ms against
0.62 for fill + GEMM + fold (0.48-0.64 with the GEMM on two threads; F = 20 is padded to 24
filters, 32 filters take 0.35); training (forward, then dL/dK and dL/db) at batch 32, a half
of bench's LeNet step, 0.67 ms (0.29 + 0.38) against 1.30 for Conv2D → MaxPool2D with numba's
pool and fill. Two threads each taking half a batch were slower: OpenBLAS's worker, spinning
after the previous layer's GEMM, holds the other core. The LeNet CNN's predict_on_batch,
both ways alternated in one process: batch 32 2.81 against 3.69 ms, batch 256 10.4 against
12.6 (a slow spell of the host).

one_channel_conv_pool(dtype) is None whenever the fast paths are off (tidu.kernels.enabled()
False), for another array backend or a dtype other than float32 and float64; the op then runs
its NumPy code, the reference. Compiled on first use (~10 s for each dtype and kernel width),
kept in numba's disk cache where it has a writable place for it.
"""
import threading
from collections import namedtuple

import numpy as np

from tidu.kernels.switch import CompiledOnce, njit, slp_vectorizer

QB, FB = 4, 8   # a block: 2 output rows × QB output columns × FB filters, in registers
ConvPool = namedtuple("ConvPool", "predict forward weight_grads")
# the compiled functions (_compile); module globals, not closures: numba's disk cache keys a
# function on its closure's pickled cells, which are new in every process
_rows = _rows_arg = _conv_pool_jit = _grads_jit = None
_wgrad = {}     # kw -> the compiled weight-gradient block for kernels kw wide


def one_channel_conv_pool(dtype):
    """ConvPool(predict, forward, weight_grads) of the compiled kernels, or None (the fast path
    off, numba missing, another backend or dtype). For x (N, H, W) the (padded) one-channel
    input, kernel (kh, kw, F), bias (F,) or None, P = ⌊(H − kh + 1)/2⌋ and
    Q = ⌊(W − kw + 1)/2⌋:

        predict(x, kernel, bias) -> y (N, P, Q, F)
        forward(x, kernel, bias) -> (y, arg)     arg (N, P, Q, F') the tile's first maximum,
                                                 row-major k = 2i + j, −1 for a NaN (F' ≥ F)
        weight_grads(x, arg, gy, (kh, kw)) -> (dL/dK (kh, kw, F), dL/db (F,)) from gy = dL/dy
    (see the module docstring).
    """
    return _kernels.get(dtype)


def direct_kernel():
    """The compiled _conv_pool(x, w, b, zero, y, arg) itself, for compiled code that runs it on
    part of a batch (tidu.kernels.split: each half's first conv); None without numba. Compiled
    on the first call whatever the switch; the caller compiles each dtype's specialization
    under slp_vectorizer(), as ConvPool's calls do."""
    return _conv_pool_jit if _kernels.load() is not None else None


def _block_source(name, with_arg):
    """The source of name(xs, w, Fp, kh, kw, Wp, p0, nqb, zero, b, Q, y, yo, arg): output rows p0
    and p0 + 1 of one image xs (flat, rows Wp wide), over the nqb·QB first columns and every
    filter (w flat (kh, kw, Fp), Fp a multiple of FB), pooled 2×2 in the registers, + b, into
    y[yo + qq·Fp + f] for the pooled columns qq < Q. Accumulator a{r}_{q}_{f} holds output row
    p0 + r, column qb·QB + q, filter fb·FB + f; a tap (i, j) loads FB weights and makes
    2·QB·FB multiply-adds, each input broadcast over the FB filters. with_arg: the bias is
    added before the maximum (so that ties are the GEMM path's), and arg[yo + …] gets the
    tile's first maximum k = 2i + j (strict >), −1 where the tile holds a NaN."""
    acc = [[[f"a{r}_{q}_{f}" for f in range(FB)] for q in range(QB)] for r in range(2)]
    pad = " " * 12
    lines = [
        f"def {name}(xs, w, Fp, kh, kw, Wp, p0, nqb, zero, b, Q, y, yo, arg):",
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
            tile = [acc[r][2 * k + c][f] for r in range(2) for c in range(2)]   # k = 2i + j
            bias = f"b[U(fb * {FB} + {f})]"
            if not with_arg:
                lines.append(f"{pad}    m = {tile[0]}")
                for v in tile[1:]:   # NaN wins, as in the plain path's np.maximum
                    lines.append(f"{pad}    m = {v} if ({v} > m) | ({v} != {v}) else m")
                lines.append(f"{pad}    y{f} = m + {bias}")
                continue
            lines += [f"{pad}    t{t} = {v} + {bias}" for t, v in enumerate(tile)]
            lines += [f"{pad}    m = t0; k{f} = zero"]
            for t in range(1, 4):
                lines.append(f"{pad}    c = t{t} > m; m = t{t} if c else m; "
                             f"k{f} = {t}.0 if c else k{f}")
            lines += [f"{pad}    nan = (t0 != t0) | (t1 != t1) | (t2 != t2) | (t3 != t3)",
                      f"{pad}    y{f} = t0 + t1 + t2 + t3 if nan else m",
                      f"{pad}    k{f} = -1.0 if nan else k{f}"]
        lines.append(f"{pad}    " + "; ".join(f"y[U(o + {f})] = y{f}" for f in range(FB)))
        if with_arg:
            lines.append(f"{pad}    " + "; ".join(f"arg[U(o + {f})] = k{f}" for f in range(FB)))
    return "\n".join(lines) + "\n"


def _wgrad_source(kw):
    """The source of wgrad{kw}(x, arg, g, N, P, Q, Fp, kh, H, W, zero, dK): dL/dK (flat
    (kh, kw, Fp), zeros on entry) of the pooled convolution from x (flat (N, H, W)), the
    tiles' first maxima arg and gy = g (flat (N, P, Q, Fp)). The gradient at a tile goes to its
    maximum (2i + j = arg), so dK[a, c, f] = Σ_tiles g[f] · x[2P + i + a, 2Q + j + c]; for
    one filter block, one kernel row a and one image, the kw·FB sums are accumulators, and a
    tile adds its four masked gradients g_k times the 2 × (kw + 1) inputs under it. Each
    image's sums are then added to dK: a sum over a whole batch in one accumulator would
    round like a sum of N·P·Q terms (1.8e-6 of the largest |dL/dK| at LeNet's batch 32 against
    2e-7 for the GEMM's blocked sums), per image like one of P·Q."""
    F8 = range(FB)
    lines = [
        f"def wgrad{kw}(x, arg, g, N, P, Q, Fp, kh, H, W, zero, dK):",
        f"    for fb in range(Fp // {FB}):",
        "        for a in range(kh):",
        f"            do = a * {kw} * Fp + fb * {FB}",
        "            for n in range(N):",
        *(f"                {' = '.join(f'd{c}_{f}' for f in F8)} = zero" for c in range(kw)),
        "                for pp in range(P):",
        "                    for qq in range(Q):",
    ]
    pad = " " * 24
    lines += [f"{pad}o = ((n * P + pp) * Q + qq) * Fp + fb * {FB}",
              f"{pad}xo = (n * H + 2 * pp + a) * W + 2 * qq"]
    for f in F8:
        lines += [f"{pad}gv = g[U(o + {f})]; kv = arg[U(o + {f})]",
                  f"{pad}" + "; ".join(f"g{k}_{f} = gv if kv == {k}.0 else zero" for k in range(4))]
    for i in range(2):
        lines.append(f"{pad}" + "; ".join(f"x{i}_{c} = x[U(xo + {i} * W + {c})]"
                                          for c in range(kw + 1)))
    for c in range(kw):
        for f in F8:
            lines.append(f"{pad}d{c}_{f} += g0_{f} * x0_{c} + g1_{f} * x0_{c + 1} "
                         f"+ g2_{f} * x1_{c} + g3_{f} * x1_{c + 1}")
    for c in range(kw):
        lines.append("                " + "; ".join(f"dK[U(do + {c} * Fp + {f})] += d{c}_{f}"
                                                   for f in F8))
    return "\n".join(lines) + "\n"


def _conv_pool(x, w, b, zero, y, arg):
    """y = the 2×2-pooled convolution of x by w, + b (module docstring), two output rows at a
    time through _rows; with arg of size > 0 (N, P, Q, Fp), through _rows_arg, which also
    writes the tiles' first maxima there. Compiled by numba in _compile."""
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
    wf, xf, yf = wp.ravel(), xs.ravel(), yp.ravel()
    wc = min(W, Wp)
    for n in range(N):
        xs[:, :wc] = x[n, :Hp, :wc]
        if arg.size:
            af = arg[n].ravel()
            for pp in range(P):
                _rows_arg(xf, wf, Fp, kh, kw, Wp, 2 * pp, nqb, zero, bp, Q, yf, pp * Q * Fp, af)
        else:
            for pp in range(P):
                _rows(xf, wf, Fp, kh, kw, Wp, 2 * pp, nqb, zero, bp, Q, yf, pp * Q * Fp, yf)
        y[n] = yp[:, :, :F]


def _grads(arg, g, zero, db):
    """dL/db = Σ over the tiles of gy where the tile has a maximum (not NaN), filter by filter,
    summed image by image (as dL/dK, see _wgrad_source)."""
    N, P, Q, Fp = arg.shape
    part = np.empty(Fp, dtype=db.dtype)
    for n in range(N):
        part[:] = zero
        for pp in range(P):
            for qq in range(Q):
                for f in range(Fp):
                    part[f] += g[n, pp, qq, f] if arg[n, pp, qq, f] >= 0 else zero
        db += part


def _compile():
    """The kernels' wrappers (None without numba); the numba functions compile per dtype on
    a wrapper's first call for it."""
    try:
        import numba
    except ImportError:
        return None
    global _rows, _rows_arg, _conv_pool_jit, _grads_jit
    # The blocks' source is compiled as if it came from this file, so that numba's disk cache,
    # which keys a function on its file, keeps it (the source changes only with this file);
    # numba's messages about it point into this file at the generated line numbers.
    jit = njit(nogil=True, fastmath={"contract"})   # contract: a·b + c as one fused multiply-add

    def generated(source, name):
        namespace = {"U": numba.uint64, "__name__": __name__}
        exec(compile(source, __file__, "exec"), namespace)
        return jit(namespace[name])

    _rows = generated(_block_source("rows", False), "rows")
    _rows_arg = generated(_block_source("rows_arg", True), "rows_arg")
    _conv_pool_jit, _grads_jit = jit(_conv_pool), jit(_grads)
    compiled = set()
    lock = threading.Lock()
    need = ("C_CONTIGUOUS", "ALIGNED", "WRITEABLE")

    def call(fn, *args):
        """fn(*args), compiled first (under the SLP vectorizer) for these argument types: one
        array type per dtype (contiguous, aligned, writeable: np.require copies otherwise), so
        that numba never compiles another specialization lazily, without it."""
        key = (fn, args[0].dtype)
        if key not in compiled:
            with lock, slp_vectorizer():
                fn.compile(tuple(numba.typeof(a) for a in args))
                compiled.add(key)
        fn(*args)

    def inputs(x, kernel, bias):
        dtype = kernel.dtype
        x, kernel = np.require(x, dtype, need), np.require(kernel, dtype, need)
        bias = np.zeros(kernel.shape[2], dtype) if bias is None else np.require(bias, dtype, need)
        N, H, W = x.shape
        kh, kw, F = kernel.shape
        y = np.empty((N, (H - kh + 1) // 2, (W - kw + 1) // 2, F), dtype=dtype)
        return x, kernel, bias, dtype.type(0), y

    def predict(x, kernel, bias):
        args = inputs(x, kernel, bias)
        call(_conv_pool_jit, *args, np.empty((0, 0, 0, 0), dtype=args[0].dtype))
        return args[-1]

    def forward(x, kernel, bias):
        args = inputs(x, kernel, bias)
        y = args[-1]
        arg = np.empty((*y.shape[:3], (y.shape[3] + FB - 1) // FB * FB), dtype=y.dtype)
        call(_conv_pool_jit, *args, arg)
        return y, arg

    def weight_grads(x, arg, gy, window):
        (kh, kw), dtype = window, arg.dtype
        if kw not in _wgrad:
            with lock:
                _wgrad.setdefault(kw, generated(_wgrad_source(kw), f"wgrad{kw}"))
        N, P, Q, Fp = arg.shape
        F = gy.shape[3]
        g = np.zeros(arg.shape, dtype=dtype)
        g[..., :F] = gy
        x = np.require(x, dtype, need)
        dK, db, zero = np.zeros((kh, kw, Fp), dtype), np.zeros(Fp, dtype), dtype.type(0)
        call(_wgrad[kw], x.ravel(), arg.ravel(), g.ravel(), N, P, Q, Fp, kh, x.shape[1],
             x.shape[2], zero, dK.ravel())
        call(_grads_jit, arg, g, zero, db)
        return dK[:, :, :F], db[:F]

    return ConvPool(predict, forward, weight_grads)


_kernels = CompiledOnce(_compile)
