"""Shape ops: reshape, transpose, indexing, concatenate, stack, pad, where, astype.

Each moves or selects entries without arithmetic, so its backward puts gy back where the
entries came from (and zeros where they did not).
"""
import numpy as np

from tidu import backend
from tidu.autograd.function import Function, unbroadcast
from tidu.autograd.tensor import Tensor
from tidu.errors import ShapeError
from tidu.functional.math import _operands, _tensor

__all__ = ["reshape", "transpose", "getitem", "concatenate", "stack", "pad", "where", "astype"]

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
