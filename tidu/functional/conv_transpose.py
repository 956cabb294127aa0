"""2-D transposed convolution ("deconvolution") on channels-last (NHWC) inputs, as Keras.

Per spatial axis (input size n, kernel k, stride s, dilation d, k̃ = (k − 1)·d + 1), every
input pixel p scatters its kernel into a "full" output of size (n − 1)·s + k̃, at p·s + a·d
for kernel tap a; the output is that full output cropped by (c_before, c_after), a negative
crop meaning zero padding instead. Keras' padding and output_padding (op) choose the crops:
    'valid', op None:  c = (0, −(max(k̃, s) − k̃))          out = (n − 1)·s + max(k̃, s)
    'valid', op:       c = (0, −op)                         out = (n − 1)·s + k̃ + op
    'same',  op None:  P = s + k̃ − 2                        out = n·s
    'same',  op:       P = k̃ + (k̃ mod 2) − 2 + op           out = (n − 1)·s + k̃ mod 2 + op
    with, for 'same', pad_before = min(⌈P/2⌉, k̃ − 1), pad_after = P − pad_before and
    c = (k̃ − 1 − pad_before, k̃ − 1 − pad_after).
"""
import numpy as np

from tidu import backend
from tidu.autograd.function import Function
from tidu.errors import ShapeError
from tidu.functional.conv import _check_nhwc, _pair, _padding, _tap
from tidu.functional.dense import column_sums

__all__ = ["conv2d_transpose", "conv_transpose_output_length"]


def _crops(n, k, s, d, padding, output_padding):
    """(c_before, c_after) along one axis; see the module docstring."""
    k = (k - 1) * d + 1
    if padding == "valid":
        op = max(k, s) - k if output_padding is None else output_padding
        return 0, -op
    total = s + k - 2 if output_padding is None else k + k % 2 - 2 + output_padding
    before = min(total // 2 + total % 2, k - 1)
    return k - 1 - before, k - 1 - (total - before)


def conv_transpose_output_length(n, k, s, padding, output_padding=None, d=1):
    """The output size along one axis (None stays None); see the module docstring."""
    if n is None:
        return None
    before, after = _crops(n, k, s, d, padding, output_padding)
    return (n - 1) * s + (k - 1) * d + 1 - before - after


def _window(a, crops):
    """a[:, ct:H−cb, cl:W−cr, :], where a negative crop adds that many rows/columns of zeros
    instead. Its adjoint is _window(·, −crops)."""
    ct, cb, cl, cr = crops
    if min(crops) >= 0:
        return backend.xp.ascontiguousarray(a[:, ct:a.shape[1] - cb, cl:a.shape[2] - cr, :])
    N, H, W, C = a.shape
    out = backend.xp.zeros((N, H - ct - cb, W - cl - cr, C), dtype=a.dtype)
    src = a[:, max(ct, 0):H - max(cb, 0), max(cl, 0):W - max(cr, 0), :]
    top, left = max(-ct, 0), max(-cl, 0)
    out[:, top:top + src.shape[1], left:left + src.shape[2], :] = src
    return out


class Conv2DTranspose(Function):
    """y = crop(ŷ) + b with the full output
        ŷ[n, p·sh + i·dh, q·sw + j·dw, f] += Σ_c x[n, p, q, c] · K[i, j, f, c]
    for x (N, H, W, C), kernel K (kh, kw, F, C) (Keras' layout: filters before input
    channels), bias b (F,) or None; crop as in the module docstring.

    This is the adjoint of conv2d (kernel K read as (kh, kw, in=F, out=C), 'valid', same
    strides and dilation) applied to ŷ. With X the (N·H·W, C) matrix of x, ĝ = dL/dŷ (gy with
    the crop undone: zeros where the crop removed, the padding dropped) and Ĝ its im2col matrix
    (N·H·W, kh·kw·F):
        ŷ at tap (i, j) = X K[i, j]ᵀ,   dL/dx = Ĝ K   (conv2d of ĝ with K),
        dL/dK = Ĝᵀ X,                  dL/db = Σ gy over n, p, q.
    """

    @staticmethod
    def forward(ctx, x, kernel, bias=None, strides=(1, 1), padding="valid", output_padding=None,
                dilation_rate=(1, 1)):
        xp = backend.xp
        N, H, W, C = x.shape
        kh, kw, F, _ = kernel.shape
        (sh, sw), (dh, dw) = strides, dilation_rate
        op = output_padding or (None, None)
        ct, cb = _crops(H, kh, sh, dh, padding, op[0])
        cl, cr = _crops(W, kw, sw, dw, padding, op[1])
        full = (N, (H - 1) * sh + (kh - 1) * dh + 1, (W - 1) * sw + (kw - 1) * dw + 1, F)
        if full[1] - ct - cb < 1 or full[2] - cl - cr < 1:
            raise ShapeError(f"conv2d_transpose: the output of an input of shape {x.shape} would "
                             f"be empty ({full[1] - ct - cb}×{full[2] - cl - cr})")
        X = x.reshape(-1, C)
        taps = xp.matmul(X, kernel.reshape(kh * kw, F, C).transpose(0, 2, 1))  # (kh·kw, M, F)
        yfull = xp.zeros(full, dtype=taps.dtype)
        for i in range(kh):
            for j in range(kw):
                dst = _tap(yfull[:, i * dh:, j * dw:], 0, 0, (H, W), (sh, sw))
                dst += taps[i * kw + j].reshape(N, H, W, F)
        y = _window(yfull, (ct, cb, cl, cr))
        if bias is not None:
            y += bias
        ctx.save_for_backward(x, kernel)
        ctx.crops, ctx.strides, ctx.dilation = (ct, cb, cl, cr), strides, dilation_rate
        return y

    @staticmethod
    def backward(ctx, gy):
        xp = backend.xp
        x, kernel = ctx.saved
        N, H, W, C = x.shape
        kh, kw, F, _ = kernel.shape
        (sh, sw), (dh, dw) = ctx.strides, ctx.dilation
        gfull = _window(gy, tuple(-c for c in ctx.crops))
        sN, sH, sW, sF = gfull.strides
        windows = backend.strided_view(
            gfull, (N, H, W, kh, kw, F), (sN, sH * sh, sW * sw, sH * dh, sW * dw, sF))
        G = xp.ascontiguousarray(windows).reshape(N * H * W, kh * kw * F)
        need_x, need_K = ctx.needs_input_grad[:2]
        gx = (G @ kernel.reshape(kh * kw * F, C)).reshape(x.shape) if need_x else None
        gK = (G.T @ x.reshape(-1, C)).reshape(kernel.shape) if need_K else None
        if len(ctx.needs_input_grad) == 2:
            return gx, gK
        gb = column_sums(xp.ascontiguousarray(gy).reshape(-1, F)) if ctx.needs_input_grad[2] else None
        return gx, gK, gb


def conv2d_transpose(x, kernel, bias=None, strides=1, padding="valid", output_padding=None,
                     dilation_rate=1):
    """Transposed 2-D convolution of NHWC `x` with a Keras-layout kernel (kh, kw, C_out, C_in)
    plus `bias` (C_out,) if given: (N, H, W, C_in) -> (N, H', W', C_out), H' and W' as Keras
    (module docstring). output_padding: None or an int or pair, each < its stride."""
    strides = _pair(strides, "strides", "conv2d_transpose")
    dilation_rate = _pair(dilation_rate, "dilation_rate", "conv2d_transpose")
    padding = _padding(padding, "conv2d_transpose")
    if output_padding is not None:
        pair = (output_padding,) * 2 if isinstance(output_padding, (int, np.integer)) \
            else tuple(output_padding)
        if len(pair) != 2 or not all(isinstance(p, (int, np.integer)) and 0 <= p < s
                                     for p, s in zip(pair, strides)):
            raise ValueError(f"conv2d_transpose: expected output_padding to be None or an int or "
                             f"pair of ints, each >= 0 and < its stride {strides}, got "
                             f"{output_padding!r}")
        output_padding = (int(pair[0]), int(pair[1]))
    xs, ks = x.shape, kernel.shape
    _check_nhwc(x, "conv2d_transpose")
    if len(ks) != 4:
        raise ShapeError(f"conv2d_transpose: expected a 4-D kernel (kernel_h, kernel_w, "
                         f"out_channels, in_channels), got shape {ks}")
    if ks[3] != xs[3]:
        raise ShapeError(f"conv2d_transpose: the kernel of shape {ks} expects {ks[3]} input "
                         f"channels (its last axis), got an input with {xs[3]} (shape {xs})")
    options = dict(strides=strides, padding=padding, output_padding=output_padding,
                   dilation_rate=dilation_rate)
    if bias is None:
        return Conv2DTranspose.apply(x, kernel, **options)
    if tuple(bias.shape) != (ks[2],):
        raise ShapeError(f"conv2d_transpose: expected a bias of shape ({ks[2]},) for a kernel of "
                         f"shape {ks}, got {tuple(bias.shape)}")
    return Conv2DTranspose.apply(x, kernel, bias, **options)
