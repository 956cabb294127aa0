"""Resampling ops: repeat entries along an axis, and bilinear upsampling of images.

    repeat(x, r, axis)            y = x with each entry along `axis` repeated r times (np.repeat);
                                  nearest-neighbour upsampling is repeat along H, then along W
    upsample_bilinear2d(x, size)  (N, H, W, C) -> (N, sh·H, sw·W, C) by linear interpolation
                                  between pixel centres (half-pixel, as torch's
                                  F.interpolate(mode='bilinear', align_corners=False), Keras's
                                  UpSampling2D(interpolation='bilinear') on the torch backend)

Both are linear in x, so each backward is the transposed map: repeat's sums each block of r
entries of gy, the bilinear one applies the transposed interpolation matrices.
"""
import numpy as np

from tidu import backend
from tidu.autograd.function import Function
from tidu.functional.math import _tensor

__all__ = ["repeat", "upsample_bilinear2d", "bilinear_matrix"]


class Repeat(Function):
    """y = x with each entry along `axis` repeated r times: y[..., i, ...] = x[..., ⌊i/r⌋, ...].
    dy/dx: gx[..., k, ...] = Σ_{j < r} gy[..., k·r + j, ...] (gy summed over each block of r)."""

    @staticmethod
    def forward(ctx, x, repeats, axis):
        ctx.shape, ctx.axis, ctx.repeats = x.shape, axis, repeats
        return backend.xp.repeat(x, repeats, axis=axis)

    @staticmethod
    def backward(ctx, gy):
        a, r = ctx.axis, ctx.repeats
        blocks = gy.reshape(*ctx.shape[:a], ctx.shape[a], r, *ctx.shape[a + 1:])
        return blocks.sum(axis=a + 1)


def repeat(x, repeats, axis):
    """Each entry of `x` along `axis` repeated `repeats` times (an int >= 1), as np.repeat."""
    x = _tensor(x)
    if isinstance(repeats, bool) or not isinstance(repeats, (int, np.integer)) or repeats < 1:
        raise ValueError(f"repeat: expected repeats to be an int >= 1, got {repeats!r}")
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) \
            or not -x.ndim <= axis < x.ndim:
        raise ValueError(f"repeat: expected an axis in [-{x.ndim}, {x.ndim}) for an input of "
                         f"shape {x.shape}, got axis={axis!r}")
    return Repeat.apply(x, repeats=int(repeats), axis=int(axis) % x.ndim)


def bilinear_matrix(length, factor, dtype=np.float64):
    """A (factor·length, length) matrix A with y = A x the linear interpolation of x at the
    output pixel centres: output i reads the input at s = (i + ½)/factor − ½, clamped to
    [0, length − 1]; A[i, ⌊s⌋] = 1 − λ and A[i, ⌊s⌋ + 1] = λ, λ = s − ⌊s⌋ (both on the last
    pixel at the border)."""
    out = np.arange(length * factor)
    s = np.clip((out + 0.5) / factor - 0.5, 0.0, length - 1)
    i0 = np.floor(s).astype(int)
    i1 = np.minimum(i0 + 1, length - 1)
    lam = s - i0
    A = np.zeros((length * factor, length), dtype=np.float64)
    np.add.at(A, (out, i0), 1.0 - lam)
    np.add.at(A, (out, i1), lam)
    return A.astype(dtype)


class UpsampleBilinear2D(Function):
    """y[n, i, j, c] = Σ_h Σ_w Ah[i, h] · Aw[j, w] · x[n, h, w, c], Ah and Aw from
    bilinear_matrix.   dy/dx: gx[n, h, w, c] = Σ_i Σ_j Ah[i, h] · Aw[j, w] · gy[n, i, j, c]."""

    @staticmethod
    def forward(ctx, x, size):
        xp = backend.xp
        Ah = xp.asarray(bilinear_matrix(x.shape[1], size[0], x.dtype))
        Aw = xp.asarray(bilinear_matrix(x.shape[2], size[1], x.dtype))
        ctx.Ah, ctx.Aw = Ah, Aw
        return xp.einsum("ih,nhwc,jw->nijc", Ah, x, Aw, optimize=True)

    @staticmethod
    def backward(ctx, gy):
        return backend.xp.einsum("ih,nijc,jw->nhwc", ctx.Ah, gy, ctx.Aw, optimize=True)


def upsample_bilinear2d(x, size):
    """(N, H, W, C) -> (N, size[0]·H, size[1]·W, C) by bilinear interpolation (see the module
    docstring); size: two ints >= 1."""
    x = _tensor(x)
    if x.ndim != 4:
        raise ValueError(f"upsample_bilinear2d: expected an input of 4 dimensions (N, H, W, C), "
                         f"got shape {x.shape}")
    size = tuple(size)
    if len(size) != 2 or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool)
                                 and s >= 1 for s in size):
        raise ValueError(f"upsample_bilinear2d: expected size to be two ints >= 1, got {size!r}")
    return UpsampleBilinear2D.apply(x, size=tuple(int(s) for s in size))
