"""Elementary differentiable ops: arithmetic with broadcasting, matmul, exp/log/sqrt/abs,
maximum/minimum/clip. Reductions are in reductions.py, shape ops and indexing in shape.py.

Each op is a Function (its derivative in the docstring) and a function of the same name in
lower case that takes Tensors, arrays or Python numbers. A Python number takes the dtype of
the Tensor it meets (`x * 0.5` stays float32), as in NumPy 2.
"""
import numpy as np

from tidu import backend
from tidu.autograd.function import Function, unbroadcast
from tidu.autograd.tensor import Tensor
from tidu.errors import ShapeError

__all__ = ["add", "sub", "mul", "div", "neg", "pow", "matmul", "exp", "log", "sqrt", "abs",
           "maximum", "minimum", "clip", "square"]


def _operands(x1, x2):
    """Tensors stay; a Python number takes the dtype of the Tensor it meets; an array stays."""
    if isinstance(x1, Tensor):
        if not isinstance(x2, Tensor) and not hasattr(x2, "dtype"):
            x2 = backend.xp.asarray(x2, dtype=x1.dtype if x1.dtype.kind == "f" else None)
        return x1, x2
    if isinstance(x2, Tensor):
        if not hasattr(x1, "dtype"):
            x1 = backend.xp.asarray(x1, dtype=x2.dtype if x2.dtype.kind == "f" else None)
        return x1, x2
    return Tensor(x1), x2


def _tensor(x):
    return x if isinstance(x, Tensor) else Tensor(x)


# --- arithmetic --------------------------------------------------------------------------
class Add(Function):
    """y = x1 + x2 (broadcasting).   dy/dx1 = 1,   dy/dx2 = 1."""

    @staticmethod
    def forward(ctx, x1, x2):
        ctx.shapes = (x1.shape, x2.shape)
        return x1 + x2

    @staticmethod
    def backward(ctx, gy):
        s1, s2 = ctx.shapes
        return unbroadcast(gy, s1), unbroadcast(gy, s2)


class Sub(Function):
    """y = x1 − x2 (broadcasting).   dy/dx1 = 1,   dy/dx2 = −1."""

    @staticmethod
    def forward(ctx, x1, x2):
        ctx.shapes = (x1.shape, x2.shape)
        return x1 - x2

    @staticmethod
    def backward(ctx, gy):
        s1, s2 = ctx.shapes
        return unbroadcast(gy, s1), unbroadcast(-gy, s2) if ctx.needs_input_grad[1] else None


class Mul(Function):
    """y = x1 · x2 (broadcasting).   dy/dx1 = x2,   dy/dx2 = x1."""

    @staticmethod
    def forward(ctx, x1, x2):
        ctx.save_for_backward(x1, x2)
        return x1 * x2

    @staticmethod
    def backward(ctx, gy):
        x1, x2 = ctx.saved
        n1, n2 = ctx.needs_input_grad
        return (unbroadcast(gy * x2, x1.shape) if n1 else None,
                unbroadcast(gy * x1, x2.shape) if n2 else None)


class Div(Function):
    """y = x1 / x2 (broadcasting).   dy/dx1 = 1/x2,   dy/dx2 = −x1/x2² = −y/x2."""

    @staticmethod
    def forward(ctx, x1, x2):
        y = x1 / x2
        ctx.save_for_backward(x1, x2, y)
        return y

    @staticmethod
    def backward(ctx, gy):
        x1, x2, y = ctx.saved
        n1, n2 = ctx.needs_input_grad
        return (unbroadcast(gy / x2, x1.shape) if n1 else None,
                unbroadcast(-gy * y / x2, x2.shape) if n2 else None)


class Neg(Function):
    """y = −x.   dy/dx = −1."""

    @staticmethod
    def forward(ctx, x):
        return -x

    @staticmethod
    def backward(ctx, gy):
        return -gy


class PowConst(Function):
    """y = x^p for a constant p.   dy/dx = p·x^(p−1)."""

    @staticmethod
    def forward(ctx, x, p):
        ctx.save_for_backward(x)
        ctx.p = p
        return x ** p

    @staticmethod
    def backward(ctx, gy):
        (x,) = ctx.saved
        p = ctx.p
        if p == 2:
            return gy * (2 * x)
        return gy * (p * x ** (p - 1))


class Pow(Function):
    """y = x1^x2 (broadcasting).   dy/dx1 = x2·x1^(x2−1),   dy/dx2 = y·ln x1 (x1 > 0)."""

    @staticmethod
    def forward(ctx, x1, x2):
        y = x1 ** x2
        ctx.save_for_backward(x1, x2, y)
        return y

    @staticmethod
    def backward(ctx, gy):
        x1, x2, y = ctx.saved
        n1, n2 = ctx.needs_input_grad
        g1 = unbroadcast(gy * x2 * x1 ** (x2 - 1), x1.shape) if n1 else None
        g2 = unbroadcast(gy * y * backend.xp.log(x1), x2.shape) if n2 else None
        return g1, g2


def add(x1, x2):
    return Add.apply(*_operands(x1, x2))


def sub(x1, x2):
    return Sub.apply(*_operands(x1, x2))


def mul(x1, x2):
    return Mul.apply(*_operands(x1, x2))


def div(x1, x2):
    return Div.apply(*_operands(x1, x2))


def neg(x):
    return Neg.apply(_tensor(x))


def pow(x, p):
    """x ** p; a constant exponent (number) uses the cheaper PowConst."""
    if isinstance(x, Tensor) and not isinstance(p, Tensor) and np.ndim(p) == 0:
        return PowConst.apply(x, p=p.item() if hasattr(p, "item") else p)
    return Pow.apply(*_operands(x, p))


def square(x):
    return PowConst.apply(_tensor(x), p=2)


# --- matmul ------------------------------------------------------------------------------
class MatMul(Function):
    """y = x1 @ x2 (NumPy's matmul: batch axes broadcast, 1-D operands promoted).

    dy/dx1 = gy @ x2ᵀ,   dy/dx2 = x1ᵀ @ gy   (transposes over the last two axes).
    """

    @staticmethod
    def forward(ctx, x1, x2):
        if x1.ndim == 0 or x2.ndim == 0:
            raise ShapeError(f"matmul: expected operands with at least 1 dimension, got shapes "
                             f"{x1.shape} @ {x2.shape}")
        k1 = x1.shape[-1]
        k2 = x2.shape[-2] if x2.ndim > 1 else x2.shape[0]
        if k1 != k2:
            raise ShapeError(f"matmul: expected x1.shape[-1] == x2.shape[-2], got {x1.shape} @ {x2.shape}")
        ctx.save_for_backward(x1, x2)
        return x1 @ x2

    @staticmethod
    def backward(ctx, gy):
        x1, x2 = ctx.saved
        a1 = x1 if x1.ndim > 1 else x1[None, :]
        a2 = x2 if x2.ndim > 1 else x2[:, None]
        g = gy
        if x1.ndim == 1:
            g = g[..., None, :] if x2.ndim > 1 else g
        if x2.ndim == 1:
            g = g[..., None]
        if x1.ndim == 1 and x2.ndim == 1:
            g = gy.reshape(1, 1)
        n1, n2 = ctx.needs_input_grad
        g1 = g2 = None
        if n1:
            g1 = g @ a2.swapaxes(-1, -2)
            g1 = unbroadcast(g1, a1.shape).reshape(x1.shape)
        if n2:
            g2 = a1.swapaxes(-1, -2) @ g
            g2 = unbroadcast(g2, a2.shape).reshape(x2.shape)
        return g1, g2


def matmul(x1, x2):
    return MatMul.apply(*_operands(x1, x2))


# --- elementwise functions ---------------------------------------------------------------
class Exp(Function):
    """y = eˣ.   dy/dx = y."""

    @staticmethod
    def forward(ctx, x):
        y = backend.xp.exp(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, gy):
        return gy * ctx.saved[0]


class Log(Function):
    """y = ln x.   dy/dx = 1/x."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return backend.xp.log(x)

    @staticmethod
    def backward(ctx, gy):
        return gy / ctx.saved[0]


class Sqrt(Function):
    """y = √x.   dy/dx = 1/(2y)."""

    @staticmethod
    def forward(ctx, x):
        y = backend.xp.sqrt(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, gy):
        return gy / (2 * ctx.saved[0])


class Abs(Function):
    """y = |x|.   dy/dx = sign(x) (0 at 0)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return backend.xp.abs(x)

    @staticmethod
    def backward(ctx, gy):
        return gy * backend.xp.sign(ctx.saved[0])


class Maximum(Function):
    """y = max(x1, x2) elementwise.   dy/dx1 = [x1 > x2] + ½[x1 = x2],   dy/dx2 likewise."""

    @staticmethod
    def forward(ctx, x1, x2):
        ctx.save_for_backward(x1, x2)
        return backend.xp.maximum(x1, x2)

    @staticmethod
    def backward(ctx, gy):
        x1, x2 = ctx.saved
        w1 = (x1 > x2) + 0.5 * (x1 == x2)
        w1 = w1.astype(gy.dtype)
        return unbroadcast(gy * w1, x1.shape), unbroadcast(gy * (1 - w1), x2.shape)


class Minimum(Function):
    """y = min(x1, x2) elementwise.   dy/dx1 = [x1 < x2] + ½[x1 = x2],   dy/dx2 likewise."""

    @staticmethod
    def forward(ctx, x1, x2):
        ctx.save_for_backward(x1, x2)
        return backend.xp.minimum(x1, x2)

    @staticmethod
    def backward(ctx, gy):
        x1, x2 = ctx.saved
        w1 = ((x1 < x2) + 0.5 * (x1 == x2)).astype(gy.dtype)
        return unbroadcast(gy * w1, x1.shape), unbroadcast(gy * (1 - w1), x2.shape)


class Clip(Function):
    """y = min(max(x, lo), hi).   dy/dx = [lo <= x <= hi]."""

    @staticmethod
    def forward(ctx, x, lo, hi):
        ctx.save_for_backward(x)
        ctx.bounds = (lo, hi)
        return backend.xp.clip(x, lo, hi)

    @staticmethod
    def backward(ctx, gy):
        (x,) = ctx.saved
        lo, hi = ctx.bounds
        inside = backend.xp.ones(x.shape, dtype=bool)
        if lo is not None:
            inside &= x >= lo
        if hi is not None:
            inside &= x <= hi
        return gy * inside


def exp(x):
    return Exp.apply(_tensor(x))


def log(x):
    return Log.apply(_tensor(x))


def sqrt(x):
    return Sqrt.apply(_tensor(x))


def abs(x):
    return Abs.apply(_tensor(x))


def maximum(x1, x2):
    return Maximum.apply(*_operands(x1, x2))


def minimum(x1, x2):
    return Minimum.apply(*_operands(x1, x2))


def clip(x, lo, hi):
    return Clip.apply(_tensor(x), lo=lo, hi=hi)
