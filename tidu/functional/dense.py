"""The dense (fully connected) layer's kernel, fused: y = x @ W + b."""
import numpy as np

from tidu import backend
from tidu.autograd.function import Function, is_grad_enabled
from tidu.errors import ShapeError
from tidu.functional.activations import relu_mask_in_place
from tidu.kernels.elementwise import elementwise_kernels
from tidu.kernels.sparse import sparse_input_kernels

__all__ = ["dense", "dense_relu"]

_ones = {}  # (backend, length, dtype) -> a vector of ones (never written), for column sums as GEMVs


def column_sums(g2):
    """Σ_rows g2 of a 2-D array, as the GEMV 1ᵀ g2: 2× faster than g2.sum(axis=0) at (128, 512)
    float32 and 14× at the narrow (36864, 20) of a conv layer's channels (PERF.md)."""
    key = (backend.name, g2.shape[0], g2.dtype)
    ones = _ones.get(key)
    if ones is None:
        if len(_ones) >= 64:        # batch sizes come and go: keep the cache small
            _ones.clear()
        ones = _ones[key] = backend.xp.ones(g2.shape[0], dtype=g2.dtype)
    return ones @ g2


class Dense(Function):
    """y = x W + b for x of shape (N, ..., D), W (D, U), b (U,) or None.

    With X the input flattened to (M, D) and G = dL/dy flattened to (M, U):
        dL/dx = G Wᵀ,   dL/dW = Xᵀ G,   dL/db = Σ_rows G = 1ᵀ G (a GEMV, see column_sums).
    """

    @staticmethod
    def forward(ctx, x, W, b=None):
        if x.shape[-1] != W.shape[0]:
            raise ShapeError(f"dense: expected input with last dimension {W.shape[0]}, got shape {x.shape}")
        ctx.save_for_backward(x, W)
        y = _sparse(x, W, b, relu=False)
        if y is not None:
            return y
        y = x @ W
        if b is not None:
            y += b
        return y

    @staticmethod
    def backward(ctx, gy):
        x, W = ctx.saved[:2]
        return _grads(ctx, x, W, gy)


def _grads(ctx, x, W, gy):
    """Dense's (dL/dx, dL/dW[, dL/db]) from gy = dL/dy, None where not needed."""
    need_x, need_W = ctx.needs_input_grad[:2]
    need_b = len(ctx.needs_input_grad) > 2 and ctx.needs_input_grad[2]
    g2 = gy.reshape(-1, gy.shape[-1])
    gx = (gy @ W.T) if need_x else None
    gW = (x.reshape(-1, x.shape[-1]).T @ g2) if need_W else None
    gb = column_sums(g2) if need_b else None
    return (gx, gW, gb) if len(ctx.needs_input_grad) > 2 else (gx, gW)


def _sparse(x, W, b, relu):
    """x @ W + b (then the ReLU if relu) at inference through the fast paths' kernel for inputs
    that are mostly zeros (tidu.kernels.sparse: the same sums to float rounding), or None: a
    graph being recorded, the fast paths off, x not mostly zeros, W not finite, or arrays the
    kernel does not take. Not in training: the MLP's step (its two halves, batch 128) took
    1.88 ms with it against 1.94 without in one run of 16 rounds and 1.98 against 1.77 in one
    of 12 (bench/alternate.py --workload mlp --variants tidu[fast],tidu[fast]-nosparse, the
    kernel then on in training), no gain this host can show, and training keeps its bits."""
    fast = sparse_input_kernels(x.dtype) if type(x) is np.ndarray and x.ndim >= 2 and \
        x.flags.c_contiguous and not is_grad_enabled() else None
    if fast is None or type(W) is not np.ndarray or (b is not None and b.dtype != W.dtype):
        return None
    y = fast.dense_sparse(x.reshape(-1, x.shape[-1]), W, b, relu)
    return None if y is None else y.reshape(*x.shape[:-1], W.shape[1])


class DenseReLU(Function):
    """y = relu(x W + b) in one op: Dense, then F.relu's y = z·m + 0 with m = [z > 0] written
    over z = x W + b, the GEMM's own output, instead of into new arrays; the values of
    F.relu(F.dense(x, W, b)) bit for bit, and backward is Dense's on gy·m.
    With numba (the extra `fast`, tidu.kernels.elementwise) the bias and the ReLU are one pass
    over z, and backward takes m off y (y > 0 exactly where z > 0): at inference (LeNet's
    Dense(500) at batch 32, the MLP's Dense(512) at batch 256) five passes become one.
    """

    @staticmethod
    def forward(ctx, x, W, b=None):
        if x.shape[-1] != W.shape[0]:
            raise ShapeError(f"dense_relu: expected input with last dimension {W.shape[0]}, "
                             f"got shape {x.shape}")
        y = _sparse(x, W, b, relu=True)
        if y is not None:                 # relu(x W + b) already: backward takes m off y
            ctx.fast = elementwise_kernels(y.dtype)
            ctx.save_for_backward(x, W, y)
            return y
        y = x @ W
        fast = elementwise_kernels(y.dtype) if type(y) is np.ndarray and y.flags.c_contiguous \
            and (b is None or b.dtype == y.dtype) else None
        ctx.fast = fast
        if fast is not None:
            fast.bias_relu_(y, b)
            ctx.save_for_backward(x, W, y)
            return y
        if b is not None:
            y += b
        ctx.save_for_backward(x, W, relu_mask_in_place(y))
        return y

    @staticmethod
    def backward(ctx, gy):
        x, W, s = ctx.saved
        g = ctx.fast.relu_grad(gy, s) if ctx.fast is not None else gy * s
        return _grads(ctx, x, W, g)


def dense(x, W, b=None):
    """x @ W + b in one op (one GEMM forward, two backward)."""
    return Dense.apply(x, W) if b is None else Dense.apply(x, W, b)


def dense_relu(x, W, b=None):
    """relu(x @ W + b) in one op: F.relu(F.dense(x, W, b))'s values and gradients, bit for bit,
    in fewer passes (DenseReLU)."""
    return DenseReLU.apply(x, W) if b is None else DenseReLU.apply(x, W, b)
