"""Elementary differentiable ops: arithmetic with broadcasting, matmul, exp/log/sqrt/abs,
maximum/minimum/clip, reductions, shape ops, indexing, concatenate/stack/pad/where.

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
           "maximum", "minimum", "clip", "sum", "mean", "max", "min", "reshape", "transpose",
           "getitem", "concatenate", "stack", "pad", "where", "astype", "square"]

_builtin_sum, _builtin_abs, _builtin_max, _builtin_min, _builtin_pow = sum, abs, max, min, pow


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


# --- reductions --------------------------------------------------------------------------
def _normalize_axis(axis, ndim, op):
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = []
    for a in axes:
        if not -ndim <= a < _builtin_max(ndim, 1):
            raise ValueError(f"{op}: axis {a} is out of range for an input of {ndim} dimensions")
        out.append(a % ndim if ndim else 0)
    return tuple(out)


def _expand_like(g, shape, axes, keepdims):
    """Reinsert reduced axes (size 1) so g broadcasts against the input of `shape`."""
    if not keepdims:
        g = g.reshape([1 if i in axes else n for i, n in enumerate(shape)])
    return g


class Sum(Function):
    """y = Σ x over `axis`.   dy/dx = 1 (broadcast back)."""

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        ctx.shape, ctx.axes, ctx.keepdims = x.shape, _normalize_axis(axis, x.ndim, "sum"), keepdims
        return x.sum(axis=ctx.axes, keepdims=keepdims)

    @staticmethod
    def backward(ctx, gy):
        g = _expand_like(gy, ctx.shape, ctx.axes, ctx.keepdims)
        return backend.xp.broadcast_to(g, ctx.shape).copy()


class Mean(Function):
    """y = (1/n) Σ x over `axis` (n elements reduced).   dy/dx = 1/n."""

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        ctx.shape, ctx.axes, ctx.keepdims = x.shape, _normalize_axis(axis, x.ndim, "mean"), keepdims
        return x.mean(axis=ctx.axes, keepdims=keepdims)

    @staticmethod
    def backward(ctx, gy):
        n = 1
        for a in ctx.axes:
            n *= ctx.shape[a]
        g = _expand_like(gy, ctx.shape, ctx.axes, ctx.keepdims)
        return backend.xp.broadcast_to(g / gy.dtype.type(n), ctx.shape).copy()


class Max(Function):
    """y = max x over `axis`.   dy/dx = [x = y] / (number of ties), so ties share the gradient."""

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False, _min=False):
        axes = _normalize_axis(axis, x.ndim, "min" if _min else "max")
        if x.size == 0:
            raise ValueError(f"{'min' if _min else 'max'}: expected a non-empty input, got shape {x.shape}")
        y = (x.min if _min else x.max)(axis=axes, keepdims=True)
        ctx.save_for_backward(x, y)
        ctx.axes, ctx.keepdims = axes, keepdims
        return y if keepdims else y.reshape([n for i, n in enumerate(x.shape) if i not in axes])

    @staticmethod
    def backward(ctx, gy):
        x, y = ctx.saved
        mask = (x == y).astype(gy.dtype)
        mask /= mask.sum(axis=ctx.axes, keepdims=True)
        return mask * _expand_like(gy, x.shape, ctx.axes, ctx.keepdims)


def sum(x, axis=None, keepdims=False):
    return Sum.apply(_tensor(x), axis=axis, keepdims=keepdims)


def mean(x, axis=None, keepdims=False):
    return Mean.apply(_tensor(x), axis=axis, keepdims=keepdims)


def max(x, axis=None, keepdims=False):
    return Max.apply(_tensor(x), axis=axis, keepdims=keepdims)


def min(x, axis=None, keepdims=False):
    return Max.apply(_tensor(x), axis=axis, keepdims=keepdims, _min=True)


# --- shape ops ---------------------------------------------------------------------------
class Reshape(Function):
    """y = x viewed with another shape.   dy/dx = gy reshaped back."""

    @staticmethod
    def forward(ctx, x, shape):
        ctx.shape = x.shape
        try:
            return x.reshape(shape)
        except ValueError:
            raise ShapeError(f"reshape: cannot reshape an input of shape {x.shape} ({x.size} "
                             f"elements) to {tuple(shape)}") from None

    @staticmethod
    def backward(ctx, gy):
        return gy.reshape(ctx.shape)


class Transpose(Function):
    """y = x with axes permuted (reversed by default).   dy/dx = gy with the inverse permutation."""

    @staticmethod
    def forward(ctx, x, axes=None):
        axes = tuple(range(x.ndim))[::-1] if axes is None else tuple(a % x.ndim for a in axes)
        if sorted(axes) != list(range(x.ndim)):
            raise ValueError(f"transpose: expected a permutation of the axes 0..{x.ndim - 1}, got {axes}")
        ctx.inverse = tuple(np.argsort(axes))
        return x.transpose(axes)

    @staticmethod
    def backward(ctx, gy):
        return gy.transpose(ctx.inverse)


def _is_advanced(index):
    items = index if isinstance(index, tuple) else (index,)
    return any(isinstance(i, (list, np.ndarray)) or (hasattr(i, "dtype") and hasattr(i, "shape"))
               for i in items)


class GetItem(Function):
    """y = x[index] (basic slicing or integer/boolean arrays).   dy/dx: gy scattered back into
    zeros at the indexed places, summing where an index repeats."""

    @staticmethod
    def forward(ctx, x, index):
        ctx.shape, ctx.dtype, ctx.index = x.shape, x.dtype, index
        try:
            return x[index]
        except IndexError as e:
            raise IndexError(f"getitem: index {index!r} does not fit an input of shape {x.shape}: {e}") from None

    @staticmethod
    def backward(ctx, gy):
        gx = backend.xp.zeros(ctx.shape, dtype=gy.dtype)
        if _is_advanced(ctx.index):
            backend.xp.add.at(gx, ctx.index, gy)
        else:
            gx[ctx.index] = gy
        return gx


def reshape(x, shape):
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    return Reshape.apply(_tensor(x), shape=tuple(shape))


def transpose(x, axes=None):
    return Transpose.apply(_tensor(x), axes=axes)


def getitem(x, index):
    if isinstance(index, Tensor):
        index = index.data
    elif isinstance(index, tuple):
        index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return GetItem.apply(_tensor(x), index=index)


class Concatenate(Function):
    """y = [x1, x2, ...] joined along `axis`.   dy/dxi = the slice of gy that xi filled."""

    @staticmethod
    def forward(ctx, *xs, axis=0):
        try:
            y = backend.xp.concatenate(xs, axis=axis)
        except ValueError as e:
            raise ShapeError(f"concatenate: along axis {axis}, got shapes "
                             f"{[x.shape for x in xs]}: {e}") from None
        ctx.axis = axis % y.ndim
        ctx.sizes = [x.shape[ctx.axis] for x in xs]
        return y

    @staticmethod
    def backward(ctx, gy):
        bounds = np.cumsum(ctx.sizes)[:-1]
        return tuple(backend.xp.split(gy, bounds, axis=ctx.axis))


class Stack(Function):
    """y = [x1, x2, ...] stacked along a new `axis`.   dy/dxi = gy taken at position i."""

    @staticmethod
    def forward(ctx, *xs, axis=0):
        if len({x.shape for x in xs}) > 1:
            raise ShapeError(f"stack: expected inputs of one shape, got {[x.shape for x in xs]}")
        y = backend.xp.stack(xs, axis=axis)
        ctx.axis = axis % y.ndim
        return y

    @staticmethod
    def backward(ctx, gy):
        return tuple(backend.xp.moveaxis(gy, ctx.axis, 0))


class Pad(Function):
    """y = x padded with a constant.   dy/dx = the centre of gy (the part that was x)."""

    @staticmethod
    def forward(ctx, x, pad_width, constant_values=0):
        pw = np.broadcast_to(np.asarray(pad_width, dtype=int), (x.ndim, 2)) if np.ndim(pad_width) < 2 \
            else np.asarray(pad_width, dtype=int)
        if pw.shape != (x.ndim, 2) or (pw < 0).any():
            raise ValueError(f"pad: expected pad_width as {x.ndim} non-negative (before, after) pairs "
                             f"for an input of shape {x.shape}, got {pad_width!r}")
        ctx.slices = tuple(slice(b, b + n) for (b, _), n in zip(pw, x.shape))
        return backend.xp.pad(x, pw, mode="constant", constant_values=constant_values)

    @staticmethod
    def backward(ctx, gy):
        return gy[ctx.slices]


class Where(Function):
    """y = x1 where cond else x2.   dy/dx1 = [cond],   dy/dx2 = [not cond]."""

    @staticmethod
    def forward(ctx, cond, x1, x2):
        ctx.save_for_backward(cond)
        ctx.shapes = (x1.shape, x2.shape)
        return backend.xp.where(cond, x1, x2)

    @staticmethod
    def backward(ctx, gy):
        (cond,) = ctx.saved
        zero = gy.dtype.type(0)
        return (None, unbroadcast(backend.xp.where(cond, gy, zero), ctx.shapes[0]),
                unbroadcast(backend.xp.where(cond, zero, gy), ctx.shapes[1]))


class AsType(Function):
    """y = x converted to `dtype`.   dy/dx = gy converted back."""

    @staticmethod
    def forward(ctx, x, dtype):
        ctx.dtype = x.dtype
        return x.astype(dtype)

    @staticmethod
    def backward(ctx, gy):
        return gy.astype(ctx.dtype)


def concatenate(xs, axis=0):
    return Concatenate.apply(*[_tensor(x) for x in xs], axis=axis)


def stack(xs, axis=0):
    return Stack.apply(*[_tensor(x) for x in xs], axis=axis)


def pad(x, pad_width, constant_values=0):
    return Pad.apply(_tensor(x), pad_width=pad_width, constant_values=constant_values)


def where(cond, x1, x2):
    cond = cond.data if isinstance(cond, Tensor) else backend.as_array(cond)
    x1, x2 = _operands(x1, x2)
    return Where.apply(cond, x1, x2)


def astype(x, dtype):
    return AsType.apply(_tensor(x), dtype=np.dtype(dtype))
