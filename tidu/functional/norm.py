"""Normalization: batch normalization (per feature over the batch) and layer normalization
(per sample over the features), each one fused Function with its backward derived by hand.

Sums over the batch of an (M, D) array are taken as a GEMV, ones(M) @ a, which NumPy runs
about 10x faster than a.sum(axis=0) for the narrow D of a conv layer's channels.
"""
import numpy as np

from tidu import backend
from tidu.autograd.function import Function
from tidu.autograd.tensor import Tensor
from tidu.errors import ShapeError
from tidu.functional.dense import column_sums

__all__ = ["batch_norm", "layer_norm"]


def _data(a):
    return a.data if isinstance(a, Tensor) else a


def _normalize_axis(axis, ndim, op):
    axes = (int(axis),) if isinstance(axis, (int, np.integer)) else tuple(int(a) for a in axis)
    if not axes or any(not -ndim <= a < ndim for a in axes) or len(set(a % ndim for a in axes)) < len(axes):
        raise ValueError(f"{op}: axis {axis!r} does not name distinct axes of an input with {ndim} "
                         f"dimensions")
    return tuple(sorted(a % ndim for a in axes))


class _Reducer:
    """Sums over every axis but `axis` of arrays shaped like x, as (D,) vectors, and the shape
    (D,) or (1, .., D, .., 1) that broadcasts a per-feature vector against x."""

    def __init__(self, shape, axis):
        self.D, self.last = shape[axis], axis == len(shape) - 1
        self.axes = tuple(a for a in range(len(shape)) if a != axis)
        self.count = 1
        for a in self.axes:
            self.count *= shape[a]
        self.bshape = (self.D,) if self.last else tuple(shape[a] if a == axis else 1
                                                         for a in range(len(shape)))

    def sum(self, a):
        if self.last:
            a2 = a.reshape(-1, self.D)
            return column_sums(a2)
        return a.sum(axis=self.axes).reshape(self.D)

    def per_feature(self, v):
        return v.reshape(self.bshape)


class BatchNorm(Function):
    """Batch normalization over every axis but `axis` (the feature/channel axis):

        y = γ·x̂ + β,   x̂ = (x − μ)/σ,   σ = √(v + ε)
    with, for training, μ and v the mean and biased variance of the batch (N values per feature,
    N the product of the reduced sizes) and, for inference, the moving statistics. γ, β may be
    None (1 and 0: Keras scale=False, center=False). With g = dL/dy:

        dL/dβ = Σ g,   dL/dγ = Σ g·x̂,
        training:  dL/dx = (γ/σ)/N · (N·g − Σg − x̂·Σ(g·x̂))   (μ and σ depend on x)
        inference: dL/dx = (γ/σ)·g                            (μ and σ are constants)
    """

    @staticmethod
    def forward(ctx, x, gamma=None, beta=None, moving_mean=None, moving_variance=None,
                training=False, momentum=0.99, epsilon=1e-3, axis=-1):
        xp = backend.xp
        r = _Reducer(x.shape, axis)
        if training:
            mean = r.sum(x) / r.count
            xhat = x - r.per_feature(mean)
            y = xhat * xhat
            var = r.sum(y) / r.count
            inv_std = 1 / xp.sqrt(var + epsilon)
            xhat *= r.per_feature(inv_std)
            if gamma is not None:
                xp.multiply(xhat, r.per_feature(gamma), out=y)
            else:
                y[...] = xhat
            if moving_mean is not None:  # Keras: moving = moving·momentum + batch·(1 − momentum)
                moving_mean *= momentum
                moving_mean += (1 - momentum) * mean
            if moving_variance is not None:
                moving_variance *= momentum
                moving_variance += (1 - momentum) * var
            ctx.save_for_backward(xhat, inv_std, gamma)
        else:
            inv_std = 1 / xp.sqrt(moving_variance + epsilon)
            scale = inv_std if gamma is None else gamma * inv_std
            y = x * r.per_feature(scale)
            y -= r.per_feature(moving_mean * scale)
            ctx.save_for_backward(x, inv_std, gamma, moving_mean)
        if beta is not None:
            y += r.per_feature(beta)
        ctx.reducer, ctx.training = r, training
        return y

    @staticmethod
    def backward(ctx, gy):
        r = ctx.reducer
        need_x, need_g, need_b = (tuple(ctx.needs_input_grad) + (False, False))[:3]
        gx = ggamma = gbeta = None
        sum_g = r.sum(gy) if need_b or (need_x and ctx.training) else None
        if ctx.training:
            xhat, inv_std, gamma = ctx.saved
            t = gy * xhat
            sum_gxhat = r.sum(t)
            if need_x:
                scale = inv_std if gamma is None else gamma * inv_std
                xp_mul = backend.xp.multiply
                xp_mul(xhat, r.per_feature(sum_gxhat / r.count), out=t)
                t += r.per_feature(sum_g / r.count)
                gx = backend.xp.subtract(gy, t, out=t)
                gx *= r.per_feature(scale)
        else:
            x, inv_std, gamma, mean = ctx.saved
            if need_x:
                gx = gy * r.per_feature(inv_std if gamma is None else gamma * inv_std)
            # Σ g·x̂ = (Σ g·x − μ·Σ g)/σ
            sum_gxhat = (r.sum(gy * x) - mean * r.sum(gy)) * inv_std if need_g else None
        if need_g:
            ggamma = sum_gxhat
        if need_b:
            gbeta = sum_g
        return gx, ggamma, gbeta


def batch_norm(x, gamma=None, beta=None, moving_mean=None, moving_variance=None, training=False,
               momentum=0.99, epsilon=1e-3, axis=-1):
    """Batch normalization of `x` per feature along `axis` (last: (N, D) per feature, NHWC per
    channel), statistics over all other axes.

    training=True normalizes with the batch mean and biased variance and, where moving_mean /
    moving_variance arrays (or non-trainable Parameters) are given, updates them IN PLACE by
    Keras' rule  moving = moving·momentum + batch·(1 − momentum)  (Keras 3 also updates the
    moving variance with the biased batch variance). PyTorch writes the same rule with
    momentum_torch = 1 − momentum (0.1 ↔ 0.99 here is not the same setting: torch's default
    0.1 is Keras 0.9) and updates running_var with the UNBIASED variance (×N/(N−1)).
    training=False normalizes with moving_mean and moving_variance, which must be given.
    """
    xs = _data(x)
    op = "batch_norm"
    axis = _normalize_axis(axis, xs.ndim, op)
    if len(axis) != 1:
        raise ValueError(f"{op}: expected one feature axis, got axis={axis}")
    axis = axis[0]
    D = xs.shape[axis]
    for name, v in (("gamma", gamma), ("beta", beta), ("moving_mean", moving_mean),
                    ("moving_variance", moving_variance)):
        if v is not None and tuple(v.shape) != (D,):
            raise ShapeError(f"{op}: expected {name} of shape ({D},) for an input of shape "
                             f"{xs.shape} normalized along axis {axis}, got {tuple(v.shape)}")
    if not training and (moving_mean is None or moving_variance is None):
        raise ValueError(f"{op}: training=False normalizes with the moving statistics; expected "
                         f"moving_mean and moving_variance, got "
                         f"{'None' if moving_mean is None else 'an array'} and "
                         f"{'None' if moving_variance is None else 'an array'}")
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"{op}: expected 0 <= momentum <= 1, got momentum={momentum!r}")
    if epsilon < 0:
        raise ValueError(f"{op}: expected epsilon >= 0, got epsilon={epsilon!r}")
    return BatchNorm.apply(x, gamma, beta, moving_mean=_data(moving_mean),
                           moving_variance=_data(moving_variance), training=bool(training),
                           momentum=momentum, epsilon=epsilon, axis=axis)


class LayerNorm(Function):
    """Layer normalization of each sample over the axes in `axis` (D' values each):

        y = γ·x̂ + β,   x̂ = (x − μ)/σ,   σ = √(v + ε),   μ, v the mean and biased variance
    over those axes; γ, β shaped like them (or None). With g = dL/dy and h = γ·g:

        dL/dx = (1/σ)/D' · (D'·h − Σh − x̂·Σ(h·x̂))   (sums over the normalized axes),
        dL/dγ = Σ g·x̂,   dL/dβ = Σ g   (sums over the other axes).
    """

    @staticmethod
    def forward(ctx, x, gamma=None, beta=None, axes=(-1,), epsilon=1e-3):
        xp = backend.xp
        bshape = tuple(n if a in axes else 1 for a, n in enumerate(x.shape))
        mean = x.mean(axis=axes, keepdims=True)
        xhat = x - mean
        y = xhat * xhat
        inv_std = 1 / xp.sqrt(y.mean(axis=axes, keepdims=True) + epsilon)
        xhat *= inv_std
        if gamma is not None:
            xp.multiply(xhat, gamma.reshape(bshape), out=y)
        else:
            y[...] = xhat
        if beta is not None:
            y += beta.reshape(bshape)
        ctx.save_for_backward(xhat, inv_std, gamma)
        ctx.axes, ctx.bshape = axes, bshape
        ctx.param_shape = tuple(x.shape[a] for a in axes)
        return y

    @staticmethod
    def backward(ctx, gy):
        xhat, inv_std, gamma = ctx.saved
        axes, bshape = ctx.axes, ctx.bshape
        need_x, need_g, need_b = (tuple(ctx.needs_input_grad) + (False, False))[:3]
        others = tuple(a for a in range(gy.ndim) if a not in axes)
        gx = ggamma = gbeta = None
        if need_x:
            h = gy if gamma is None else gy * gamma.reshape(bshape)
            t = h * xhat
            t = xhat * t.mean(axis=axes, keepdims=True)
            t += h.mean(axis=axes, keepdims=True)
            gx = backend.xp.subtract(h, t, out=t)
            gx *= inv_std
        if need_g:
            ggamma = (gy * xhat).sum(axis=others).reshape(ctx.param_shape)
        if need_b:
            gbeta = gy.sum(axis=others).reshape(ctx.param_shape)
        return gx, ggamma, gbeta


def layer_norm(x, gamma=None, beta=None, axis=-1, epsilon=1e-3):
    """Layer normalization (Keras LayerNormalization, torch layer_norm): each sample normalized
    over `axis` (an int or a tuple of axes) with its own mean and biased variance, then scaled
    by gamma and shifted by beta, both shaped like the normalized axes (or None). epsilon's
    default 1e-3 is Keras'; torch's layer_norm uses 1e-5."""
    xs = _data(x)
    axes = _normalize_axis(axis, xs.ndim, "layer_norm")
    shape = tuple(xs.shape[a] for a in axes)
    for name, v in (("gamma", gamma), ("beta", beta)):
        if v is not None and tuple(v.shape) != shape:
            raise ShapeError(f"layer_norm: expected {name} of shape {shape} for an input of shape "
                             f"{xs.shape} normalized over axes {axes}, got {tuple(v.shape)}")
    if epsilon < 0:
        raise ValueError(f"layer_norm: expected epsilon >= 0, got epsilon={epsilon!r}")
    return LayerNorm.apply(x, gamma, beta, axes=axes, epsilon=epsilon)
