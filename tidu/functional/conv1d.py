"""1-D convolution and pooling on channels-last (N, L, C) inputs, through the 2-D ops.

A sequence is an image of height 1: x (N, L, C) is viewed as (N, 1, L, C) and a kernel
(k, C, F) as (1, k, C, F), so conv1d and the 1-D pools are the 2-D ones (im2col + one GEMM,
tap-wise pools) on that view, and their gradients are the 2-D ones reshaped back.

Padding along L (input length n, window k, stride s, dilation d, k̃ = (k − 1)·d + 1):
    'valid':  out = ⌊(n − k̃)/s⌋ + 1
    'same':   out = ⌈n/s⌉, padded as conv2d pads (the odd one on the right)
    'causal': x padded with k̃ − 1 zeros on the left, then 'valid': out = ⌊(n − 1)/s⌋ + 1,
              and y[t] reads x[t·s − k̃ + 1 .. t·s] only (conv1d only, as Keras' Conv1D)
"""
from tidu.errors import ShapeError
from tidu.functional.conv import avg_pool2d, conv2d, max_pool2d
from tidu.functional.math import _tensor
from tidu.functional.shape import pad, reshape

__all__ = ["conv1d", "max_pool1d", "avg_pool1d"]


def _check_nlc(x, op):
    if x.ndim != 3:
        raise ShapeError(f"{op}: expected a 3-D input (batch, steps, channels), got shape {x.shape}")


def _single(value, name, op):
    """An int or a 1-tuple of ints, positive, as an int."""
    v = value[0] if isinstance(value, (tuple, list)) and len(value) == 1 else value
    if not isinstance(v, int) or isinstance(v, bool) or v < 1:
        raise ValueError(f"{op}: expected {name} to be a positive int, got {value!r}")
    return v


def _as_image(x):
    """(N, L, C) -> (N, 1, L, C), a view."""
    N, L, C = x.shape
    return reshape(x, (N, 1, L, C))


def _as_sequence(y):
    """(N, 1, L', C') -> (N, L', C')."""
    N, _, L, C = y.shape
    return reshape(y, (N, L, C))


def conv1d(x, kernel, bias=None, strides=1, padding="valid", dilation_rate=1):
    """1-D convolution of (N, L, C_in) `x` with a Keras-layout kernel (k, C_in, C_out), plus
    `bias` (C_out,) if given: (N, L', C_out), y[n, t, f] = Σ_{a,c} x̃[n, t·s + a·d, c]·K[a, c, f] + b[f]
    with x̃ the padded input (see the module docstring for 'valid', 'same' and 'causal')."""
    x = _tensor(x)
    strides = _single(strides, "strides", "conv1d")
    dilation_rate = _single(dilation_rate, "dilation_rate", "conv1d")
    mode = padding.lower() if isinstance(padding, str) else padding
    if mode not in ("valid", "same", "causal"):
        raise ValueError(f"conv1d: expected padding 'valid', 'same' or 'causal', got {padding!r}")
    _check_nlc(x, "conv1d")
    if kernel.ndim != 3:
        raise ShapeError(f"conv1d: expected a 3-D kernel (kernel_size, in_channels, out_channels), "
                         f"got shape {kernel.shape}")
    if mode == "causal":
        x = pad(x, ((0, 0), ((kernel.shape[0] - 1) * dilation_rate, 0), (0, 0)))
        mode = "valid"
    k, c, f = kernel.shape
    y = conv2d(_as_image(x), reshape(kernel, (1, k, c, f)), bias, strides=(1, strides),
               padding=mode, dilation_rate=(1, dilation_rate))
    return _as_sequence(y)


def _pool1d(pool2d, op, x, pool_size, strides, padding):
    x = _tensor(x)
    pool_size = _single(pool_size, "pool_size", op)
    strides = pool_size if strides is None else _single(strides, "strides", op)
    _check_nlc(x, op)
    return _as_sequence(pool2d(_as_image(x), pool_size=(1, pool_size), strides=(1, strides),
                               padding=padding))


def max_pool1d(x, pool_size=2, strides=None, padding="valid"):
    """y[n, t, c] = max over the window at t·s of x[n, ·, c] (N, L, C) -> (N, L', C);
    strides default to pool_size, padding 'valid' or 'same' (padding never wins)."""
    return _pool1d(max_pool2d, "max_pool1d", x, pool_size, strides, padding)


def avg_pool1d(x, pool_size=2, strides=None, padding="valid"):
    """y[n, t, c] = mean over the window at t·s of x[n, ·, c], 'same': over the elements inside
    the input (as TensorFlow and JAX; Keras' torch backend pads an uneven 'same' window by
    repeating the edge element and counts it)."""
    return _pool1d(avg_pool2d, "avg_pool1d", x, pool_size, strides, padding)
