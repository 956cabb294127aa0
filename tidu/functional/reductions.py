"""Reductions: sum, mean, max and min over axes.   Each gradient is gy broadcast back over the
reduced axes (max/min: only to the places that held the extreme, shared between ties).
"""
import numpy as np

from tidu import backend
from tidu.autograd.function import Function
from tidu.functional.math import _tensor

__all__ = ["sum", "mean", "max", "min"]

_builtin_max = max


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
