"""Embedding lookup: rows of a weight matrix picked by integer ids."""

from tidu import backend
from tidu.autograd.function import Function
from tidu.autograd.tensor import Tensor
from tidu.errors import ShapeError

__all__ = ["embedding"]


class Embedding(Function):
    """y[..., :] = W[ids[...], :] for integer ids of any shape and W (V, D): y is ids.shape + (D,).

    dL/dW[v] = Σ over the positions p with ids[p] = v of g[p]   (a scatter-add; rows of ids
    that never occur get 0). The ids get no gradient.
    """

    @staticmethod
    def forward(ctx, ids, W):
        ctx.save_for_backward(ids)
        ctx.W_shape = W.shape
        return W[ids]

    @staticmethod
    def backward(ctx, gy):
        (ids,) = ctx.saved
        if not ctx.needs_input_grad[1]:
            return None, None
        gW = backend.xp.zeros(ctx.W_shape, dtype=gy.dtype)
        backend.xp.add.at(gW, ids.reshape(-1), gy.reshape(-1, ctx.W_shape[1]))
        return None, gW


def embedding(ids, W):
    """Look up the rows of `W` (vocabulary size V, dimension D) for integer `ids` of any shape:
    (...) -> (..., D). Ids must lie in [0, V)."""
    xp = backend.xp
    ids = ids.data if isinstance(ids, Tensor) else xp.asarray(ids)
    Ws = W.shape
    if len(Ws) != 2:
        raise ShapeError(f"embedding: expected a weight matrix of shape (vocabulary, dimension), "
                         f"got shape {tuple(Ws)}")
    if ids.dtype.kind not in "iu":
        raise TypeError(f"embedding: expected integer ids, got dtype {ids.dtype}")
    if ids.size:
        lo, hi = int(ids.min()), int(ids.max())
        if lo < 0 or hi >= Ws[0]:
            bad = lo if lo < 0 else hi
            raise ValueError(f"embedding: id {bad} is out of range for a vocabulary of size {Ws[0]} "
                             f"(expected 0 <= id < {Ws[0]})")
    return Embedding.apply(ids, W)
