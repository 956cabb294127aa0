"""Dropout: zero each input with probability `rate` while training.

Two forms, with the same expectation E[y] at training and at test time:
    'inverted' (Keras, PyTorch; the default): train y = x·m/(1 − rate), test y = x
    'classic' (Srivastava et al. 2014, the notes): train y = x·m,         test y = x·(1 − rate)
where m is a Bernoulli(1 − rate) mask (1 = keep).
"""
import numpy as np

from tidu import backend
from tidu.autograd.function import Function
from tidu.autograd.tensor import Tensor
from tidu.errors import ShapeError

__all__ = ["dropout"]

_MODES = ("inverted", "classic")


class Dropout(Function):
    """y = x·s·m, m ~ Bernoulli(1 − rate) elementwise (broadcast over noise_shape's 1-axes),
    s = 1/(1 − rate) ('inverted') or 1 ('classic').   dy/dx = s·m (the saved mask)."""

    @staticmethod
    def forward(ctx, x, rate=0.5, scale=1.0, rng=None, noise_shape=None):
        xp = backend.xp
        shape = x.shape if noise_shape is None else noise_shape
        u = backend.rng(rng).random(shape, dtype=np.float32)  # float32: no float64 array the size of x
        np.greater_equal(u, np.float32(rate), out=u)  # u becomes the 0/1 keep mask in place
        if scale != 1.0:
            u *= np.float32(scale)
        mask = xp.asarray(u if x.dtype in (np.float32, np.float64) else u.astype(x.dtype))
        ctx.save_for_backward(mask)
        return x * mask

    @staticmethod
    def backward(ctx, gy):
        (mask,) = ctx.saved
        return gy * mask


def dropout(x, rate, training=False, mode="inverted", rng=None, noise_shape=None):
    """Randomly zero elements of `x` with probability `rate` when training (see the module
    docstring for the two modes). rng: a NumPy Generator or int seed (default: the package-wide
    tidu.backend.rng()). noise_shape: the shape of the mask, broadcast against x (Keras; None
    entries take x's size), e.g. (N, 1, 1, C) drops whole channels of an NHWC input."""
    if isinstance(rate, bool) or not isinstance(rate, (int, float, np.floating, np.integer)) \
            or not 0.0 <= rate < 1.0:
        raise ValueError(f"dropout: expected 0 <= rate < 1, got rate={rate!r}")
    if mode not in _MODES:
        raise ValueError(f"dropout: expected mode 'inverted' or 'classic', got {mode!r}")
    if not isinstance(x, Tensor):
        x = Tensor(x)
    if noise_shape is not None:
        noise_shape = tuple(n if m is None else m for n, m in zip(x.shape, noise_shape)) \
            if len(noise_shape) == x.ndim else tuple(noise_shape)
        if len(noise_shape) != x.ndim or any(m not in (1, n) for n, m in zip(x.shape, noise_shape)):
            raise ShapeError(f"dropout: expected a noise_shape that broadcasts to the input of shape "
                             f"{x.shape} (each size 1 or the input's), got {noise_shape}")
    if not training:
        return x if mode == "inverted" or rate == 0 else x * (1.0 - float(rate))
    if rate == 0:
        return x
    scale = 1.0 / (1.0 - float(rate)) if mode == "inverted" else 1.0
    return Dropout.apply(x, rate=float(rate), scale=scale, rng=backend.rng(rng), noise_shape=noise_shape)
