"""2-D convolution and pooling on channels-last (NHWC) inputs, as Keras lays them out.

Geometry (per spatial axis, input size n, window k, stride s, dilation d, k̃ = (k − 1)·d + 1):
    'valid': out = ⌊(n − k̃)/s⌋ + 1, no padding
    'same':  out = ⌈n/s⌉, total padding p = max((out − 1)·s + k̃ − n, 0), ⌊p/2⌋ before and the
             rest after (the extra one on the bottom/right), as TensorFlow/Keras pad.

A window is read through "taps": for window offset (i, j) the strided view
x[:, i·d : : s, j·d : : s, :] holds that element of every window, so a whole pass over the
batch is kh·kw vectorised operations and never a Python loop over pixels.
"""
import numpy as np

from tidu import backend
from tidu.autograd.function import Function, is_grad_enabled
from tidu.errors import ShapeError
from tidu.functional.dense import column_sums
from tidu.kernels import halves
from tidu.kernels.conv import conv_kernels
from tidu.kernels.memory import alternate_empty
from tidu.kernels.pooling import pool_kernels

__all__ = ["conv2d", "max_pool2d", "avg_pool2d", "l2_pool2d"]


# --- argument checks and geometry --------------------------------------------------------
def _pair(value, name, op):
    """An int or a pair of ints, each positive, as a pair."""
    if type(value) is tuple and len(value) == 2 and type(value[0]) is int \
            and type(value[1]) is int and value[0] > 0 and value[1] > 0:
        return value                   # a layer's own checked pair: every call of a model
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value) \
        if isinstance(value, (tuple, list)) else None
    if pair is None or len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and v > 0 for v in pair):
        raise ValueError(f"{op}: expected {name} to be a positive int or a pair of them, got {value!r}")
    return int(pair[0]), int(pair[1])


def _padding(padding, op):
    mode = padding.lower() if isinstance(padding, str) else padding
    if mode not in ("valid", "same"):
        raise ValueError(f"{op}: expected padding 'valid' or 'same', got {padding!r}")
    return mode


def _axis_geometry(n, k, s, padding):
    """(out, pad_before, pad_after) along one axis for an effective window k."""
    if padding == "valid":
        return (n - k) // s + 1, 0, 0
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return out, total // 2, total - total // 2


def _geometry(x_shape, window, strides, padding, op, what):
    """Output size and padding of a window sliding over the H, W axes of an NHWC input."""
    (_, H, W, _), (kh, kw), (sh, sw) = x_shape, window, strides
    OH, pt, pb = _axis_geometry(H, kh, sh, padding)
    OW, pl, pr = _axis_geometry(W, kw, sw, padding)
    if OH < 1 or OW < 1:
        raise ShapeError(f"{op}: {what} {kh}×{kw} is larger than the padded input "
                         f"{H + pt + pb}×{W + pl + pr} (input shape {tuple(x_shape)}, "
                         f"padding='{padding}')")
    return (OH, OW), (pt, pb, pl, pr)


def conv2d_geometry(x_shape, kernel_shape, strides=1, padding="valid", dilation_rate=1):
    """((OH, OW), (top, bottom, left, right)) of conv2d on an input of shape x_shape (NHWC) by a
    kernel (kh, kw, C, F): its output size and the input's zero padding. ShapeError where the
    (dilated) kernel is larger than the padded input."""
    op = "conv2d"
    return _conv_geometry(x_shape, kernel_shape, _pair(strides, "strides", op),
                          _padding(padding, op), _pair(dilation_rate, "dilation_rate", op))


def _check_nhwc(x, op):
    if x.ndim != 4:
        raise ShapeError(f"{op}: expected a 4-D input (batch, height, width, channels), "
                         f"got shape {x.shape}")


def _pad(x, pads, value=0):
    """x with (top, bottom, left, right) padding of H, W by `value` (x itself when no padding)."""
    pt, pb, pl, pr = pads
    if not (pt or pb or pl or pr):
        return x
    N, H, W, C = x.shape
    xp = backend.xp.full((N, H + pt + pb, W + pl + pr, C), value, dtype=x.dtype)
    xp[:, pt:pt + H, pl:pl + W, :] = x
    return xp


def _unpad(g, pads, shape):
    """The part of a gradient on the padded input that belongs to the input itself."""
    pt, pb, pl, pr = pads
    if not (pt or pb or pl or pr):
        return g
    return backend.xp.ascontiguousarray(g[:, pt:pt + shape[1], pl:pl + shape[2], :])


def _tap(a, i, j, out_hw, strides):
    """The view of `a` holding element (i, j) of every window: a[:, i::sh, j::sw, :] cut to OH×OW."""
    (OH, OW), (sh, sw) = out_hw, strides
    return a[:, i:i + sh * (OH - 1) + 1:sh, j:j + sw * (OW - 1) + 1:sw, :]


def _fold(ufunc, arrays):
    """ufunc(… ufunc(a₀, a₁) …, aₖ) into a new array (a copy of a₀ when there is only one)."""
    y = ufunc(arrays[0], arrays[1]) if len(arrays) > 1 else arrays[0].copy()
    for a in arrays[2:]:
        ufunc(y, a, out=y)
    return y


# --- convolution -------------------------------------------------------------------------
class Conv2D(Function):
    """y[n, p, q, f] = Σ_{i,j,c} x̃[n, p·sh + i·dh, q·sw + j·dw, c] · K[i, j, c, f] + b[f]
    for x (N, H, W, C) padded to x̃, kernel K (kh, kw, C, F), bias b (F,) or None.

    im2col: X is the (N·OH·OW, kh·kw·C) matrix whose row (n, p, q) is the window under output
    pixel (n, p, q), copied once from an as_strided view ordered (N, OH, OW, kh, kw, C); with K
    as the (kh·kw·C, F) matrix and G = dL/dy as (N·OH·OW, F):
        y = X K + b,   dL/dK = Xᵀ G,   dL/db = Σ_rows G,
        dL/dx̃ = Σ_{i,j} (G K[i, j]ᵀ) added at the (i, j) tap of x̃   (dL/dx = the unpadded part).
    The last is one batched matmul giving a contiguous block per tap, then kh·kw adds into a
    zeroed buffer shaped like x̃, all with the batch as the inner axis: G's rows taken in the
    order (p, q, n), the blocks (OH, OW, N, C), the buffer (H̃, W̃, N, C), so that each add runs
    over whole rows of N·C elements (N·OW·C where the strides are 1) instead of the OW·C
    of (N, H̃, W̃, C); dL/dx is returned as the transposed view, ordered (n, h, w, c), and the
    op reading it (ReLU's mask, the pool) writes its result contiguous. The same sums in the
    same order as in (n, p, q) order, bit for bit. LeNet's second conv at batch 64: 2.03
    against 2.43 ms (`python bench/plain_alternatives.py`, variant nhwc, the old layout);
    with the ReLU mask multiply after it 1.98 against 2.39, keras.io's convnet's (128, 13, 13,
    32) by 3×3×32×64 5.63 against 6.73 (one-off script, alternated in one process). X is kept
    from forward for dL/dK. With numba (tidu.kernels.conv) the blocks come from one GEMM,
    D = G Kᵀ (one row per window, (n, p, q) order), and one compiled pass adds each image's
    windows onto dL/dx, window by window (the sums agree with the taps' to float rounding,
    not bit for bit).
    """

    @staticmethod
    def forward(ctx, x, kernel, bias=None, strides=(1, 1), padding="valid", dilation_rate=(1, 1)):
        (OH, OW), pads = _conv_geometry(x.shape, kernel.shape, strides, padding, dilation_rate)
        y, cols, ones_row = _im2col_gemm(x, kernel, bias, strides, dilation_rate, pads, (OH, OW), (1, 1))
        ctx.save_for_backward(cols, kernel)
        ctx.geometry = (x.shape, (OH, OW), pads)
        ctx.strides, ctx.dilation, ctx.ones_row = strides, dilation_rate, ones_row
        return y.reshape(x.shape[0], OH, OW, kernel.shape[3])

    @staticmethod
    def backward(ctx, gy):
        cols, kernel = ctx.saved
        x_shape, out_hw, pads = ctx.geometry
        G = backend.xp.ascontiguousarray(gy).reshape(-1, kernel.shape[3])
        gK, gb = _weight_grads(ctx, cols, G, kernel)
        gx = _input_grad(G, kernel, x_shape, out_hw, ctx.strides, ctx.dilation, pads) \
            if ctx.needs_input_grad[0] else None
        return (gx, gK, gb) if len(ctx.needs_input_grad) > 2 else (gx, gK)


def _conv_geometry(x_shape, kernel_shape, strides, padding, dilation_rate, op="conv2d"):
    """((OH, OW), pads) of a convolution: the dilated kernel slid over the padded input."""
    kh, kw = kernel_shape[:2]
    (dh, dw) = dilation_rate
    return _geometry(x_shape, ((kh - 1) * dh + 1, (kw - 1) * dw + 1), strides, padding, op, "kernel")


def _im2col_gemm(x, kernel, bias, strides, dilation, pads, out_hw, tiles):
    """(y, cols, ones_row): y = X K (+ b) as an (M, F) matrix and X, the im2col matrix, whose
    rows are the windows under the output pixels. tiles (th, tw) = (1, 1): rows in pixel order
    (n, p, q), over the whole OH × OW output. Otherwise rows in tile order (n, i, j, P, Q) for
    the output pixel p = P·th + i, q = Q·tw + j, over the ⌊OH/th⌋·th × ⌊OW/tw⌋·tw pixels that
    whole th × tw tiles cover: element (i, j) of every tile is one contiguous block of y.
    With a bias and one input channel the bias rides in X as a row of ones (ones_row)."""
    xp = backend.xp
    N, H, W, C = x.shape
    kh, kw, _, F = kernel.shape
    (sh, sw), (dh, dw), (th, tw) = strides, dilation, tiles
    P, Q = out_hw[0] // th, out_hw[1] // tw
    M, K = N * th * tw * P * Q, kh * kw * C
    W2 = kernel.reshape(K, F)
    ones_row = False
    if kh == kw == 1 and sh == sw == 1 and tiles == (1, 1):
        cols = x.reshape(M, C)  # 1×1 convolution: the input is its own im2col matrix
    else:
        xpad = _pad(x, pads)
        if C == 1:
            # one channel (the first layer): Xᵀ tap by tap is 4x faster to fill than X, whose
            # rows would be copied kw elements at a time; a row of ones folds the bias in
            colsT = xp.empty((K + (bias is not None), N, th, tw, P, Q), dtype=x.dtype)
            _fill_one_channel(colsT, xpad[..., 0], (kh, kw), strides, dilation, tiles)
            if bias is not None:
                colsT[K] = 1
                W2 = xp.concatenate([W2, bias.reshape(1, F).astype(W2.dtype, copy=False)])
                ones_row = True
            cols = colsT.reshape(-1, M).T
        else:
            sN, sH, sW, sC = xpad.strides
            windows = backend.strided_view(   # windows[n, i, j, P, Q] lies under pixel (P·th + i, Q·tw + j)
                xpad, (N, th, tw, P, Q, kh, kw, C),
                (sN, sH * sh, sW * sw, sH * sh * th, sW * sw * tw, sH * dh, sW * dw, sC))
            if xp is np:
                return _in_chunks(windows, W2, bias, M, K)
            cols = xp.ascontiguousarray(windows).reshape(M, K)
    y = cols @ W2
    if bias is not None and not ones_row:
        y += bias
    return y, cols, ones_row


# Conv2D's forward fills the im2col matrix and multiplies it by the kernel this many bytes of
# the matrix at a time (whole images), while they are in the cache (see _in_chunks); at
# inference (no graph recorded) INFERENCE_COLS_CHUNK_BYTES.
COLS_CHUNK_BYTES = 1 << 20
INFERENCE_COLS_CHUNK_BYTES = 4 << 20


def _in_chunks(windows, W2, bias, M, K):
    """(y, cols, False) of _im2col_gemm from the windows view (N, ...) of the input: the im2col
    matrix filled, and y = X K (+ b) computed, COLS_CHUNK_BYTES of X at a time (whole images;
    INFERENCE_COLS_CHUNK_BYTES at inference, below),
    so the GEMM reads each chunk from the cache its copy just wrote instead of the whole matrix
    (LeNet's second conv at batch 64: 8 MB) back from memory. X is kept whole for the kernel's
    gradient, so the gradients do not change; y's rows are the same GEMM's with fewer rows,
    bit for bit on the benchmarks' shapes, to float rounding on small ones, where OpenBLAS's
    small-matrix kernels may round a row differently (2.4e-8 relative on a (245, 36) by
    (36, 6) product: tests/functional/test_conv_chunked_forward.py). Measured with
    `python bench/conv_chunks.py` (AMD EPYC, AVX-512, 2 cores, 2 OpenBLAS threads, the
    variants alternated, medians of 30-40 calls, four runs): keras.io's convnet's second conv
    (128, 13, 13, 32) by 3×3×32×64 2-7% faster in 1 MB chunks (4.21 against 4.52 ms in a fast
    spell, 9.15-9.25 against 9.44-9.48 in slow ones); LeNet's (64, 12, 12, 20) by 5×5×20×50
    no faster (1.56 against 1.55, 3.85-3.91 against 3.76-3.80).

    In training (a graph recorded, the BLAS threads sharing the batch: not inside
    tidu.kernels.halves, whose halves keep their data on their cores) X is one of two matrices
    kept in turn (tidu.kernels.memory.alternate_empty): the fill then writes the matrix the
    previous step did not use, whose lines the other core's BLAS thread no longer holds, which
    on the AMD EPYC host costs much in its slow spells. Alternated in one process (TIDU_FAST=0,
    LeNet, 206 rounds of 20-step turns, one-off script): 0.98× the step with np.empty in the
    128 fast rounds, 0.90× in the 78 slow ones; the same for every per-step array of the
    convolutions (im2col, GEMM outputs, the taps, dL/dz) gave 1.04× and 0.86×, hence X alone.
    `python bench/alternate.py --workload cnn --variants tidu,tidu-fresh --rounds 40 --steps 20`
    compares: 1.01× in 26 fast rounds, 0.95× in 14 slow ones. Inference keeps np.empty: two 4 MB
    matrices in turn made LeNet's batch-32 latency 1.08× slower in fast spells.

    At inference the chunks are INFERENCE_COLS_CHUNK_BYTES (4 MB): conv2d_max_pool2d's chunks
    of images are that size already, and its 1 MB pieces cost more GEMM calls than the cache
    gave back. `python bench/alternate.py --workload cnn_latency --variants
    tidu[fast],tidu[fast]:icols=1 --rounds 30 --steps 100`: LeNet's batch-32 latency 1.453
    against 1.486 ms (and 0.98× plain, 0.98× tidu[fast]'s and 0.97× plain LeNet's predict at
    batch 256, the pieces then one per chunk)."""
    N = windows.shape[0]
    rows = M // N                                  # im2col rows per image
    # training fills a new matrix every step: two in turn (see the docstring)
    keep = alternate_empty if is_grad_enabled() and not halves.running() else np.empty
    cols = keep((M, K), dtype=windows.dtype)
    y = np.empty((M, W2.shape[1]), dtype=np.result_type(cols, W2))
    size = COLS_CHUNK_BYTES if is_grad_enabled() else INFERENCE_COLS_CHUNK_BYTES
    step = max(1, size // (rows * K * cols.itemsize))
    for i in range(0, N, step):
        j = min(N, i + step)
        part = cols[i * rows:j * rows]
        part.reshape(j - i, *windows.shape[1:])[...] = windows[i:j]
        out = y[i * rows:j * rows]
        np.matmul(part, W2, out=out)
        if bias is not None:
            out += bias
    return y, cols, False


def _fill_one_channel(colsT, x2, window, strides, dilation, tiles):
    """colsT[a·kw + b, n, i, j, P, Q] = x2[n, (P·th + i)·sh + a·dh, (Q·tw + j)·sw + b·dw]: the
    im2col matrix of a one-channel input (N, H, W), transposed, rows in tile order.

    Input row (P·th + i)·sh + a·dh is P·R + r with R = th·sh, r = i·sh + a·dh, and column
    (Q·tw + j)·sw + b·dw is Q·S + s with S = tw·sw, s = j·sw + b·dw. So for each row phase
    r mod R the input's columns s, s + S, ... are first copied, for every s, into one array
    crop[s, n, row, Q] (rows ≡ r mod R): every (a, b, i, j) then reads the P × Q block
    crop[s, n, ⌊r/R⌋ + P', Q'], P·Q contiguous elements on both sides, and for one (a, i)
    the blocks of all (b, j) are one strided view of crop (s steps dw with b and sw with j):
    kh·th copies of kw·tw blocks each, after R·(s's range) crop copies (LeNet: 10 and 12
    where one copy per block made 100; 0.15 against 0.21 ms at batch 32, 0.25 against 0.31
    at 64, one process, the same values). With numba (tidu.kernels.conv) one compiled call
    makes the same copy."""
    fast = conv_kernels(colsT.dtype)
    if fast is not None and x2.dtype == colsT.dtype and colsT.flags.c_contiguous:
        fast.fill_one_channel(colsT, x2, window, strides, dilation, tiles)
        return
    xp = backend.xp
    (kh, kw), (sh, sw), (dh, dw), (th, tw) = window, strides, dilation, tiles
    P, Q = colsT.shape[-2:]
    N = x2.shape[0]
    R, S = th * sh, tw * sw
    spread = (tw - 1) * sw + (kw - 1) * dw + 1      # s = j·sw + b·dw takes values below this
    crops = {}
    for a in range(kh):
        for i in range(th):
            r = i * sh + a * dh
            if r % R not in crops:
                rows = x2[:, r % R::R]
                crop = crops[r % R] = xp.empty((spread, N, rows.shape[1], Q), dtype=colsT.dtype)
                for s in range(spread):
                    crop[s] = rows[:, :, s::S][:, :, :Q]
            crop = crops[r % R]
            sS, sN, sRow, sQ = crop.strides
            blocks = backend.strided_view(crop, (kw, N, tw, P, Q),
                                          (dw * sS, sN, sw * sS, sRow, sQ), (r // R) * sRow)
            colsT[a * kw:(a + 1) * kw, :, i] = blocks


def _weight_grads(ctx, cols, G, kernel):
    """(dL/dK, dL/db) from the im2col matrix and G = dL/dy (M, F), rows in the same order;
    None where not needed."""
    K = cols.shape[1] - ctx.ones_row
    need_K = ctx.needs_input_grad[1]
    need_b = len(ctx.needs_input_grad) > 2 and ctx.needs_input_grad[2]
    gK = gb = None
    if ctx.ones_row and (need_K or need_b):
        gWb = cols.T @ G  # [dL/dK; dL/db] in one GEMM
        gK, gb = gWb[:K].reshape(kernel.shape), gWb[K]
    else:
        if need_K:  # (Gᵀ X)ᵀ: 8-17% faster than Xᵀ G here (bench/gemm_shapes.py)
            gK = (G.T @ cols).T.reshape(kernel.shape)
        if need_b:
            gb = column_sums(G)  # a GEMV: 10x faster than G.sum(0)
    return gK, gb


def _input_grad(G, kernel, x_shape, out_hw, strides, dilation, pads, batch_inner=False):
    """dL/dx from G = dL/dy as an (M, F) matrix whose rows are the output pixels in the order
    (n, p, q), or (p, q, n) with batch_inner (see Conv2D). The result may be a transposed
    view, its memory ordered (h, w, n, c): always without numba (as the taps' adds leave it),
    and for a 1×1 kernel with batch_inner."""
    xp = backend.xp
    (OH, OW), (sh, sw), (dh, dw) = out_hw, strides, dilation
    kh, kw, C, F = kernel.shape
    N, K = x_shape[0], kh * kw * C
    fast = conv_kernels(G.dtype)                     # numba kernels, or None
    if kh == kw == 1 and sh == sw == 1:
        D = G @ kernel.reshape(C, F).T
        return D.reshape(OH, OW, N, C).transpose(2, 0, 1, 3) if batch_inner else D.reshape(x_shape)
    if fast is not None:                             # D = G Kᵀ, added window by window
        if batch_inner:
            G = xp.ascontiguousarray(G.reshape(OH, OW, N, F).transpose(2, 0, 1, 3)).reshape(-1, F)
        D = G @ kernel.reshape(K, F).T
        return fast.col2im(D, x_shape, (OH, OW), (kh, kw), (sh, sw), (dh, dw), pads)
    if not batch_inner:
        G = xp.ascontiguousarray(G.reshape(N, OH, OW, F).transpose(1, 2, 0, 3)).reshape(-1, F)
    taps = xp.matmul(G, kernel.reshape(kh * kw, C, F).transpose(0, 2, 1))  # (kh·kw, M, C)
    pt, pb, pl, pr = pads
    gxp = xp.zeros((x_shape[1] + pt + pb, x_shape[2] + pl + pr, N, C), dtype=taps.dtype)
    for i in range(kh):
        for j in range(kw):
            dst = gxp[i * dh:i * dh + sh * (OH - 1) + 1:sh, j * dw:j * dw + sw * (OW - 1) + 1:sw]
            dst += taps[i * kw + j].reshape(OH, OW, N, C)
    return gxp[pt:pt + x_shape[1], pl:pl + x_shape[2]].transpose(2, 0, 1, 3)


def _conv_args(x, kernel, bias, strides, padding, dilation_rate, op):
    """conv2d's checked arguments: (inputs, options), inputs (x, kernel) or (x, kernel, bias)."""
    strides = _pair(strides, "strides", op)
    dilation_rate = _pair(dilation_rate, "dilation_rate", op)
    padding = _padding(padding, op)
    xs, ks = x.shape, kernel.shape
    _check_nhwc(x, op)
    if len(ks) != 4:
        raise ShapeError(f"{op}: expected a 4-D kernel (kernel_h, kernel_w, in_channels, "
                         f"out_channels), got shape {ks}")
    if ks[2] != xs[3]:
        raise ShapeError(f"{op}: the kernel of shape {ks} expects {ks[2]} input channels, got "
                         f"an input with {xs[3]} (shape {xs})")
    if bias is not None and tuple(bias.shape) != (ks[3],):
        raise ShapeError(f"{op}: expected a bias of shape ({ks[3]},) for a kernel of shape {ks}, "
                         f"got {tuple(bias.shape)}")
    inputs = (x, kernel) if bias is None else (x, kernel, bias)
    return inputs, {"strides": strides, "padding": padding, "dilation_rate": dilation_rate}


def conv2d(x, kernel, bias=None, strides=1, padding="valid", dilation_rate=1):
    """2-D convolution (cross-correlation, as in every framework) of NHWC `x` with a Keras-layout
    kernel (kh, kw, C_in, C_out), plus `bias` (C_out,) if given: (N, H, W, C_in) -> (N, OH, OW, C_out).

    strides, dilation_rate: int or (height, width) pair; padding: 'valid' or 'same' (see the
    module docstring). Forward is the im2col copy and the GEMM, about 1 MB of the matrix at a
    time (4 MB at inference; _in_chunks); see Conv2D for the backward.
    """
    inputs, options = _conv_args(x, kernel, bias, strides, padding, dilation_rate, "conv2d")
    return Conv2D.apply(*inputs, **options)


# --- pooling -----------------------------------------------------------------------------
def _pool_args(x, pool_size, strides, padding, op):
    pool_size = _pair(pool_size, "pool_size", op)
    strides = pool_size if strides is None else _pair(strides, "strides", op)
    padding = _padding(padding, op)
    _check_nhwc(x, op)
    return pool_size, strides, padding


class _Pool(Function):
    """Shared geometry of the pools: the window taps over the padded input."""

    @staticmethod
    def _setup(ctx, x, pool_size, strides, padding, op):
        out_hw, pads = _geometry(x.shape, pool_size, strides, padding, op, "pool window")
        ctx.pool_size, ctx.strides, ctx.out_hw, ctx.pads, ctx.x_shape = \
            pool_size, strides, out_hw, pads, x.shape
        return out_hw, pads

    @staticmethod
    def _taps(ctx, a):
        (ph, pw) = ctx.pool_size
        return [_tap(a, i, j, ctx.out_hw, ctx.strides) for i in range(ph) for j in range(pw)]

    @staticmethod
    def _spread(ctx, dtype, share):
        """dL/dx from share(k, out), the gradient of window element k (tap k, row-major): when
        each element of x̃ sits in at most one window, share writes it into `out`, tap k of a
        buffer shaped like x̃ (each tap written once; the buffer is zeroed only if the windows
        leave gaps); when windows overlap, share gets out=None, returns it, and it is added."""
        N, H, W, C = ctx.x_shape
        (ph, pw), (sh, sw), (OH, OW) = ctx.pool_size, ctx.strides, ctx.out_hw
        pt, pb, pl, pr = ctx.pads
        shape = (N, H + pt + pb, W + pl + pr, C)
        disjoint = sh >= ph and sw >= pw
        exact = (sh, sw) == (ph, pw) and shape[1] == ph * OH and shape[2] == pw * OW
        gxp = (backend.xp.empty if exact else backend.xp.zeros)(shape, dtype=dtype)
        for k, dst in enumerate(_Pool._taps(ctx, gxp)):
            if disjoint:
                share(k, dst)
            else:
                dst += share(k, None)
        return _unpad(gxp, ctx.pads, ctx.x_shape)


class MaxPool2D(_Pool):
    """y[n, p, q, c] = max over the window (i, j) of x̃[n, p·sh + i, q·sw + j, c]; 'same'
    padding pads with −∞, so padding never wins.

    dy/dx̃ = 1 at the first maximum of each window in row-major order (as torch: one element
    per window, also under ties) and 0 elsewhere; overlapping windows add. A window holding a
    NaN has a NaN maximum, which equals no element: its gradient is 0.

    Speed: a tap view steps over the other window columns, so a ufunc on it runs in inner loops
    of only C elements and costs about as much as a contiguous pass over the whole input. When
    the windows tile the input exactly (strides = pool_size, the usual 2×2), forward first takes
    the max of the window rows, i.e. of whole contiguous image rows (long inner loops), then of
    the pw columns. Backward finds the first maximum tap by tap, comparing tap k with y and
    keeping the hits no earlier tap had; the last tap needs no comparison, as it holds the first
    maximum of every window with no earlier one, unless the maximum is NaN (y == y, contiguous).
    With numba (tidu.kernels.pooling) one compiled pass each way gives the same numbers.
    """

    @staticmethod
    def forward(ctx, x, pool_size=(2, 2), strides=(2, 2), padding="valid"):
        xp = backend.xp
        (OH, OW), pads = _Pool._setup(ctx, x, pool_size, strides, padding, "max_pool2d")
        N, H, W, C = x.shape
        (ph, pw) = pool_size
        exact = strides == pool_size and H == ph * OH and W == pw * OW
        # numba kernels, or None; not for inference over exact tiles, where the NumPy maximum
        # of whole rows beats the kernel, which also finds the first maximum for backward
        ctx.fast = None if exact and not is_grad_enabled() else pool_kernels(x.dtype)
        if ctx.fast is not None:
            y, arg = ctx.fast.max_forward(x, pool_size, strides, pads, (OH, OW))
            ctx.save_for_backward(arg)
            return y
        if exact:
            rows = x.reshape(N, OH, ph, W * C)  # window row i of every window: rows[:, :, i]
            m = _fold(xp.maximum, [rows[:, :, i] for i in range(ph)]).reshape(N, OH, OW, pw, C)
            y = _fold(xp.maximum, [m[..., j, :] for j in range(pw)])
            ctx.save_for_backward(x, y)
            return y
        xpad = _pad(x, pads, -np.inf)
        y = _fold(xp.maximum, _Pool._taps(ctx, xpad))
        ctx.save_for_backward(xpad, y)
        return y

    @staticmethod
    def backward(ctx, gy):
        if ctx.fast is not None:
            (arg,) = ctx.saved
            return ctx.fast.max_backward(gy, arg, ctx.x_shape, ctx.pool_size, ctx.strides, ctx.pads)
        xp = backend.xp
        xpad, y = ctx.saved
        taps = _Pool._taps(ctx, xpad)
        last = len(taps) - 1
        seen, rest = None, gy  # where an earlier tap held the maximum; gy not yet routed

        def share(k, out):  # gy where tap k holds its window's first maximum
            nonlocal seen, rest
            if out is None:  # overlapping windows: route the gy that earlier taps left
                routed = rest * (taps[k] == y)
                if k < last:
                    rest = rest - routed if rest is gy else xp.subtract(rest, routed, out=rest)
                return routed
            if k == 0:
                hit = seen = taps[0] == y
            elif k < last:
                hit = taps[k] == y
                first = xp.greater(hit, seen)  # a maximum, and none earlier in the window
                seen |= hit
                hit = first
            else:  # a window whose maximum is not NaN has it here if no earlier tap had it
                hit = xp.greater(y == y, seen)
            return xp.multiply(gy, hit, out=out)

        return _Pool._spread(ctx, gy.dtype, share)


class AvgPool2D(_Pool):
    """y[n, p, q, c] = (1/|w|) Σ over the window w of x̃[n, p·sh + i, q·sw + j, c], |w| the number
    of window elements inside the input (all kh·kw for 'valid'; 'same' excludes the padding,
    as Keras/TensorFlow; torch's count_include_pad=True would not).

    dy/dx̃ = 1/|w| for every element of the window; overlapping windows add. With numba
    (tidu.kernels.pooling) one compiled pass each way gives the same numbers.
    """

    @staticmethod
    def forward(ctx, x, pool_size=(2, 2), strides=(2, 2), padding="valid"):
        xp = backend.xp
        (OH, OW), pads = _Pool._setup(ctx, x, pool_size, strides, padding, "avg_pool2d")
        (ph, pw), (sh, sw), (pt, _, pl, _) = pool_size, strides, pads
        if padding == "same" and any(pads):
            _, H, W, _ = x.shape
            rows = [min(p * sh - pt + ph, H) - max(p * sh - pt, 0) for p in range(OH)]
            cols = [min(q * sw - pl + pw, W) - max(q * sw - pl, 0) for q in range(OW)]
            inv = 1 / xp.asarray(np.outer(rows, cols)[:, :, None], dtype=x.dtype)
        else:
            inv = x.dtype.type(1 / (ph * pw))
        ctx.inv, ctx.fast = inv, pool_kernels(x.dtype)      # numba kernels, or None
        if ctx.fast is not None:
            ctx.inv = np.broadcast_to(inv, (OH, OW, 1))[:, :, 0].copy()   # 1/|w| per pixel
            return ctx.fast.avg_forward(x, pool_size, strides, pads, (OH, OW), ctx.inv)
        y = _fold(xp.add, _Pool._taps(ctx, _pad(x, pads)))
        y *= inv
        return y

    @staticmethod
    def backward(ctx, gy):
        if ctx.fast is not None:
            return ctx.fast.avg_backward(gy, ctx.inv, ctx.x_shape, ctx.pool_size, ctx.strides,
                                         ctx.pads)
        xp = backend.xp
        share = gy * ctx.inv
        return _Pool._spread(ctx, gy.dtype,
                             lambda k, out: share if out is None else xp.copyto(out, share))


class L2Pool2D(_Pool):
    """y[n, p, q, c] = √(Σ over the window of x̃[n, p·sh + i, q·sw + j, c]²): the root of the
    SUM of squares (torch.nn.functional.lp_pool2d with norm_type=2), not of their mean;
    'same' pads with zeros, which add nothing.

    dy/dx̃ = x̃ / y for every element of the window (0 where y = 0); overlapping windows add.
    """

    @staticmethod
    def forward(ctx, x, pool_size=(2, 2), strides=(2, 2), padding="valid"):
        xp = backend.xp
        _, pads = _Pool._setup(ctx, x, pool_size, strides, padding, "l2_pool2d")
        xpad = _pad(x, pads)
        taps = _Pool._taps(ctx, xpad)
        y = xp.square(taps[0])
        square = xp.empty_like(y)
        for t in taps[1:]:
            xp.add(y, xp.square(t, out=square), out=y)
        xp.sqrt(y, out=y)
        ctx.save_for_backward(xpad, y)
        return y

    @staticmethod
    def backward(ctx, gy):
        xp = backend.xp
        xpad, y = ctx.saved
        taps = _Pool._taps(ctx, xpad)
        ratio = gy / xp.where(y > 0, y, xp.inf)  # gy / y, and 0 where the window is all zeros
        return _Pool._spread(ctx, gy.dtype, lambda k, out: xp.multiply(ratio, taps[k], out=out))


def max_pool2d(x, pool_size=2, strides=None, padding="valid"):
    """Max over each pool_size window of NHWC `x`, moved by `strides` (default: pool_size, as
    Keras); padding 'valid' or 'same'. Non-overlapping windows cost kh·kw - 1 np.maximum calls."""
    pool_size, strides, padding = _pool_args(x, pool_size, strides, padding, "max_pool2d")
    return MaxPool2D.apply(x, pool_size=pool_size, strides=strides, padding=padding)


def avg_pool2d(x, pool_size=2, strides=None, padding="valid"):
    """Mean over each pool_size window of NHWC `x` ('same': over the elements inside the input)."""
    pool_size, strides, padding = _pool_args(x, pool_size, strides, padding, "avg_pool2d")
    return AvgPool2D.apply(x, pool_size=pool_size, strides=strides, padding=padding)


def l2_pool2d(x, pool_size=2, strides=None, padding="valid"):
    """√(sum of squares) over each pool_size window of NHWC `x` (torch's lp_pool2d, norm 2)."""
    pool_size, strides, padding = _pool_args(x, pool_size, strides, padding, "l2_pool2d")
    return L2Pool2D.apply(x, pool_size=pool_size, strides=strides, padding=padding)
