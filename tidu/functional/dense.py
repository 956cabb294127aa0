"""The dense (fully connected) layer's kernel, fused: y = x @ W + b."""
from tidu.autograd.function import Function
from tidu.errors import ShapeError

__all__ = ["dense"]


class Dense(Function):
    """y = x W + b for x of shape (N, ..., D), W (D, U), b (U,) or None.

    With X the input flattened to (M, D) and G = dL/dy flattened to (M, U):
        dL/dx = G Wᵀ,   dL/dW = Xᵀ G,   dL/db = Σ_rows G.
    """

    @staticmethod
    def forward(ctx, x, W, b=None):
        if x.shape[-1] != W.shape[0]:
            raise ShapeError(f"dense: expected input with last dimension {W.shape[0]}, got shape {x.shape}")
        ctx.save_for_backward(x, W)
        y = x @ W
        if b is not None:
            y += b
        return y

    @staticmethod
    def backward(ctx, gy):
        x, W = ctx.saved
        need_x, need_W = ctx.needs_input_grad[:2]
        need_b = len(ctx.needs_input_grad) > 2 and ctx.needs_input_grad[2]
        g2 = gy.reshape(-1, gy.shape[-1])
        gx = (gy @ W.T) if need_x else None
        gW = (x.reshape(-1, x.shape[-1]).T @ g2) if need_W else None
        gb = g2.sum(axis=0) if need_b else None
        return (gx, gW, gb) if len(ctx.needs_input_grad) > 2 else (gx, gW)


def dense(x, W, b=None):
    """x @ W + b in one op (one GEMM forward, two backward)."""
    return Dense.apply(x, W) if b is None else Dense.apply(x, W, b)
