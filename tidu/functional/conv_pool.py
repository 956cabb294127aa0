"""A convolution and the max pool that reads it, as one call: conv2d_max_pool2d, and the op
Conv2DMaxPool for pools that tile the convolution's output (see tidu.functional.conv for the
two ops, their geometry and the im2col matrix). tidu.models runs Conv2D(activation='relu') →
MaxPooling2D through here (tidu.models.graph.pools_first)."""
from tidu import backend
from tidu.autograd.function import Context, Function, is_grad_enabled
from tidu.autograd.tensor import Tensor
from tidu.functional.conv import (Conv2D, MaxPool2D, _conv_args, _conv_geometry, _fold, _geometry,
                                  _im2col_gemm, _input_grad, _pad, _pool_args, _weight_grads)
from tidu.kernels.conv_pool import one_channel_conv_pool
from tidu.kernels.pooling import pool_kernels

__all__ = ["conv2d_max_pool2d"]


class Conv2DMaxPool(Function):
    """y = max_pool2d(conv2d(x, K, b, strides, padding, dilation_rate), pool_size) for a pool
    whose windows tile the conv's output (pool strides = pool_size, 'valid'), as one op with
    the two ops' values.

    The im2col rows come in tile order (_im2col_gemm with tiles = pool_size), so z = X K + b is
    (N, ph·pw, P·Q·F) with element (i, j) of every window one contiguous block, and
        y = the maximum of the ph·pw blocks: ph·pw − 1 np.maximum calls with inner loops of
            P·Q·F elements, where MaxPool2D's strided taps have loops of F elements.
    Conv outputs in the rows and columns past the last whole window, which 'valid' pooling
    drops, are never computed. Backward, in the same blocks: dL/dz = gy where block k holds its
    window's first maximum in row-major order (compared with y, keeping the hits no earlier
    block had; the last block needs no comparison unless y is NaN: MaxPool2D's rule), then
    dL/dK = Xᵀ dL/dz and dL/db its column sums, and dL/dx as Conv2D's from dL/dz put back in
    pixel order with the batch inner, (p, q, n), the order Conv2D's taps add in (zeros on the
    dropped rows and columns): the one copy that reorders dL/dz does both.
    Values: z and y are the two ops' bit for bit (each output pixel is the same row of the
    same GEMM), and so are dL/dz and dL/dx; dL/dK and dL/db sum the same terms in another
    order, so they agree to float rounding. One difference: an input NaN or ±∞ read only by
    the dropped outputs makes the two ops' dL/dK NaN (their zero gradient times it) and leaves
    this op's finite, as the loss does not depend on it.
    """

    @staticmethod
    def forward(ctx, x, kernel, bias=None, strides=(1, 1), padding="valid", dilation_rate=(1, 1),
                pool_size=(2, 2)):
        N, F = x.shape[0], kernel.shape[3]
        out_hw, pads = _conv_geometry(x.shape, kernel.shape, strides, padding, dilation_rate)
        (ph, pw) = pool_size
        P, Q = out_hw[0] // ph, out_hw[1] // pw
        z, cols, ones_row = _im2col_gemm(x, kernel, bias, strides, dilation_rate, pads, out_hw,
                                         pool_size)
        blocks = z.reshape(N, ph * pw, P * Q * F)
        y = _fold(backend.xp.maximum, [blocks[:, k] for k in range(ph * pw)])
        ctx.save_for_backward(cols, kernel, blocks, y)
        ctx.geometry = (x.shape, out_hw, pads)
        ctx.strides, ctx.dilation = strides, dilation_rate
        ctx.ones_row, ctx.pool_size = ones_row, pool_size
        return y.reshape(N, P, Q, F)

    @staticmethod
    def backward(ctx, gy):
        xp = backend.xp
        cols, kernel, blocks, y = ctx.saved
        x_shape, (OH, OW), pads = ctx.geometry
        (ph, pw), F = ctx.pool_size, kernel.shape[3]
        N, T, L = blocks.shape
        g = xp.ascontiguousarray(gy).reshape(N, L)
        dz = xp.empty_like(blocks)
        seen = None
        for k in range(T):           # gy where block k holds the window's first maximum
            if k == 0:
                hit = seen = blocks[:, 0] == y
            elif k < T - 1:
                hit = blocks[:, k] == y
                first = xp.greater(hit, seen)
                seen |= hit
                hit = first
            else:                    # the last block has it if no earlier one did, unless NaN
                hit = xp.greater(y == y, seen)
            xp.multiply(g, hit, out=dz[:, k])
        gK, gb = _weight_grads(ctx, cols, dz.reshape(-1, F), kernel)
        gx = None
        if ctx.needs_input_grad[0]:
            P, Q = OH // ph, OW // pw
            # (P, ph, Q, pw, N, F): the pixels back in row order, the batch inner (Conv2D)
            pixels = dz.reshape(N, ph, pw, P, Q, F).transpose(3, 1, 4, 2, 0, 5)
            if (P * ph, Q * pw) == (OH, OW):
                G = xp.ascontiguousarray(pixels).reshape(-1, F)
            else:
                G = xp.zeros((OH, OW, N, F), dtype=dz.dtype)
                G[:P * ph, :Q * pw] = pixels.reshape(P * ph, Q * pw, N, F)
                G = G.reshape(-1, F)
            gx = _input_grad(G, kernel, x_shape, (OH, OW), ctx.strides, ctx.dilation, pads,
                             batch_inner=True)
        return (gx, gK, gb) if len(ctx.needs_input_grad) > 2 else (gx, gK)


class OneChannelConvPool(Function):
    """y = max_pool2d(conv2d(x, K, b), 2) for a one-channel input x, strides and dilation 1 and
    a 2×2 pool, by numba's direct kernels (tidu.kernels.conv_pool, the extra `fast`): y and
    each tile's first maximum (i, j) forward, and backward
        dL/dK[a, c, f] = Σ_tiles gy[f] · x̃[2P + i + a, 2Q + j + c],   dL/db = Σ_tiles gy
    over the tiles whose maximum is not NaN (x̃: x padded), without the im2col matrix. x gets
    no gradient: conv2d_max_pool2d uses this op only when x does not require one (a network's
    first layer). The same numbers as Conv2D → MaxPool2D to float rounding."""

    @staticmethod
    def forward(ctx, x, kernel, bias=None, pads=(0, 0, 0, 0), fast=None):
        # the kernels kept for backward, whatever the switch is by then
        ctx.fast = fast or one_channel_conv_pool(x.dtype)
        x2 = backend.xp.ascontiguousarray(_pad(x, pads)[..., 0])
        y, arg = ctx.fast.forward(x2, kernel[:, :, 0], bias)
        ctx.save_for_backward(x2, arg)
        ctx.kernel_shape = kernel.shape
        return y

    @staticmethod
    def backward(ctx, gy):
        x2, arg = ctx.saved
        kh, kw, _, F = ctx.kernel_shape
        gK, gb = ctx.fast.weight_grads(x2, arg, backend.xp.ascontiguousarray(gy), (kh, kw))
        gK = gK.reshape(kh, kw, 1, F)
        return (None, gK, gb) if len(ctx.needs_input_grad) > 2 else (None, gK)


def _direct_kernel(arrays, options):
    """tidu.kernels.conv_pool's kernel when it computes this conv and pool: one input channel,
    strides and dilation 1, the arrays of one dtype; else None (as without numba)."""
    x, kernel = arrays[0], arrays[1]
    if kernel.shape[2] != 1 or options["strides"] != (1, 1) or options["dilation_rate"] != (1, 1) \
            or any(a.dtype != x.dtype for a in arrays[1:]):
        return None
    return one_channel_conv_pool(x.dtype)


# For inference, the im2col matrix of one chunk of images: about this many bytes.
CHUNK_BYTES = 4 << 20


def conv2d_max_pool2d(x, kernel, bias=None, strides=1, padding="valid", dilation_rate=1,
                      pool_size=2, pool_strides=None, pool_padding="valid"):
    """max_pool2d(conv2d(x, kernel, bias, strides, padding, dilation_rate), pool_size,
    pool_strides, pool_padding), the same numbers (the kernel and bias gradients to float
    rounding).

    A pool whose windows tile the conv's output (pool_strides = pool_size, 'valid': the usual
    2×2) runs as the one op Conv2DMaxPool, whose pooling reads contiguous blocks; any other
    pool as the two ops, and so does training with numba's kernels (the extra `fast`), whose
    compiled max pool already makes one pass each way over the strided taps.

    Without a gradient recorded (inference), either runs on chunks of whole images, each
    chunk's im2col matrix about CHUNK_BYTES, so that the matrix, the convolution's output and
    the pool's reads stay in the cache instead of passing through main memory over the whole
    batch. Every image is computed alone either way (the ops never mix images), so the chunks
    change no value as long as the GEMM gives a row the same sums whatever the number of rows,
    as OpenBLAS does (bit for bit here; tests/functional/test_conv_pool_chunked.py compares).
    A one-channel input (the first layer) with strides and dilation 1 and a 2×2 pool runs, with
    numba (the extra `fast`), as tidu.kernels.conv_pool's direct kernels instead, without an
    im2col matrix: for inference, and for training when x needs no gradient (the op
    OneChannelConvPool); the same numbers to float rounding.

    Measured on the AMD EPYC host of bench/RESULTS.md (AVX-512, 2 cores, OpenBLAS SkylakeX),
    where the same code timed in separate processes spreads by up to 1.7×, so the variants
    were alternated in one process (bench/alternate.py, whose docstring has the variants),
    medians of 5-15 turns:
      training, TIDU_FAST=0, tidu against tidu-unfused (the two ops on the whole batch, as
        before this function): keras.io's convnet 31.3 against 37.7 ms a step; LeNet (bench
        cnn) 14.0 against 14.3 ms, no difference this host can show (its one-channel first
        layer fills the tile-order im2col more slowly, which takes back the pooling's gain);
      training with numba, tidu[fast] against tidu[fast]-blocks (Conv2DMaxPool there too):
        convnet 23.8 / 24.1 and 28.4 / 30.3 ms in two runs, LeNet 12.9 / 12.3 and 11.9 / 12.1
        ms: the compiled pool as fast or faster, hence the two ops there;
      inference, LeNet predicting 10,000 images at batch 256 (bench cnn_predict), variants
        tidu:chunk=MB: with two BLAS threads 0.57 s at 4 MB against 0.80 (1 MB), 0.76 (16 MB)
        and 0.72 s (one chunk); with one (--threads 1) 0.79 s at 4 MB against 0.93 (0.5 MB),
        0.85 (1 MB), 0.83 (2 MB), 1.02 (16 MB) and 1.03 s (one chunk). Batches of 32
        (cnn_latency) are one chunk: 2.01 against tidu-unfused's 1.97 ms.
    """
    inputs, options = _conv_args(x, kernel, bias, strides, padding, dilation_rate,
                                 "conv2d_max_pool2d")
    pool_size, pool_strides, pool_padding = _pool_args(
        x, pool_size, pool_strides, pool_padding, "conv2d_max_pool2d")
    arrays = [t.data if isinstance(t, Tensor) else t for t in inputs]
    xa, (kh, kw, C, F) = arrays[0], arrays[1].shape
    (OH, OW), pads = _conv_geometry(xa.shape, arrays[1].shape, options["strides"],
                                    options["padding"], options["dilation_rate"],
                                    "conv2d_max_pool2d")
    _geometry((xa.shape[0], OH, OW, F), pool_size, pool_strides, pool_padding,
              "conv2d_max_pool2d", "pool window")   # before any work, as the pool would check
    N, per_image = xa.shape[0], OH * OW * (kh * kw * C + 1) * xa.dtype.itemsize
    step = max(1, CHUNK_BYTES // per_image)
    recorded = is_grad_enabled() and any(isinstance(t, Tensor) and t.requires_grad for t in inputs)
    # for training with numba, MaxPool2D's compiled kernels beat the blocks (see the docstring)
    tiled = pool_strides == pool_size and pool_padding == "valid" and not (
        recorded and pool_kernels(xa.dtype) is not None)
    # one input channel and a 2×2 pool, with numba: the direct kernels, for inference or, when
    # x needs no gradient (a first layer), for training
    x_grad = isinstance(inputs[0], Tensor) and inputs[0].requires_grad
    direct = _direct_kernel(arrays, options) if pool_size == pool_strides == (2, 2) and \
        pool_padding == "valid" and not (recorded and x_grad) else None
    if direct is not None and recorded:
        return OneChannelConvPool.apply(*inputs, pads=pads, fast=direct)
    if direct is not None:
        bias = arrays[2] if len(arrays) > 2 else None
        return Tensor._node(direct.predict(_pad(xa, pads)[..., 0], arrays[1][:, :, 0], bias), None)
    if tiled:
        options["pool_size"] = pool_size

        def forward(ctx, *arrays):
            return Conv2DMaxPool.forward(ctx, *arrays, **options)

        def apply():
            return Conv2DMaxPool.apply(*inputs, **options)
    else:
        pool = {"pool_size": pool_size, "strides": pool_strides, "padding": pool_padding}

        def forward(ctx, *arrays):
            return MaxPool2D.forward(ctx, Conv2D.forward(Context(), *arrays, **options), **pool)

        def apply():
            return MaxPool2D.apply(Conv2D.apply(*inputs, **options), **pool)
    if recorded or step >= N:
        return apply()
    out = None
    for i in range(0, N, step):
        y = forward(Context(), xa[i:i + step], *arrays[1:])
        if out is None:
            out = backend.xp.empty((N, *y.shape[1:]), dtype=y.dtype)
        out[i:i + step] = y
    return Tensor._node(out, None)
