"""Activation functions: sigmoid, tanh, the ReLU family, softplus, softmax, maxout, GELU ...

Each primitive is a Function with its derivative in the docstring; the rest are composed from
them (their gradients come for free). Keras names and defaults (leaky_relu's alpha = 0.3).

Speed (PERF.md): element-wise work runs on one core, so the primitives use few ufuncs, in place
where they can, and save for backward what makes it cheapest (sigmoid's and tanh's outputs,
relu's mask). Measured on (128, 512) float32: np.exp ≈ 95 µs, np.tanh ≈ 185 µs, an add ≈ 9 µs,
np.expm1/np.log1p ≈ 1.3 ms (not vectorised), np.where ≈ 250 µs; so sigmoid and tanh come from
one exp (σ ≈ 130 µs, tanh ≈ 140 µs), elu and softplus use exp and log, and nothing uses where.
Every function keeps the input's float dtype (Python scalars are weak under NumPy 2).

Stability: sigmoid, tanh, softplus, softmax and log_softmax give finite values and gradients
for any finite input (±1e4 included); exp's overflow to inf is the exact limit where it occurs.
"""
import math

import numpy as np

from tidu._checks import check_int
from tidu import backend
from tidu.autograd.function import Function
from tidu.autograd.tensor import Tensor
from tidu.errors import ShapeError
from tidu.functional.math import abs as _abs, clip, mul
from tidu.kernels.elementwise import elementwise_kernels

__all__ = ["linear", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu", "softplus",
           "softsign", "softmax", "log_softmax", "maxout", "gelu", "swish", "silu",
           "hard_sigmoid"]


def _input(x):
    """A Tensor of floats: ints and lists become floatx() (they cannot require grad anyway)."""
    x = x if isinstance(x, Tensor) else Tensor(x)
    if x.dtype.kind != "f":
        x = Tensor(x.data.astype(backend.floatx()))
    return x


def _empty(x):
    """A fresh buffer like x, for `out=` (a ufunc on a 0-d array returns a scalar, not a buffer)."""
    return backend.xp.empty_like(x)


def _sigmoid(x):
    """σ(x) = 1 / (1 + e^(−x)) in one buffer: neg, exp, add, reciprocal."""
    xp = backend.xp
    y = xp.negative(x, out=_empty(x))
    with np.errstate(over="ignore"):  # e^(−x) = inf for x ≪ 0 gives y = 1/inf = 0, the limit
        xp.exp(y, out=y)
    y += 1
    return xp.reciprocal(y, out=y)


def _tanh(x):
    """tanh x with full relative accuracy near 0 (the one-exp form 2/(1 + e^(−2x)) − 1 is ~25%
    faster here but loses all relative precision for |x| ≪ 1 in float32)."""
    return backend.xp.tanh(x)


def _reduce_axis(x, axis, op):
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"{op}: axis {axis} is out of range for an input of {x.ndim} dimensions")
    return axis % x.ndim


# --- element-wise ------------------------------------------------------------------------
def linear(x):
    """y = x (the identity; Keras' 'linear' activation)."""
    return x if isinstance(x, Tensor) else Tensor(x)


class Sigmoid(Function):
    """y = σ(x) = 1 / (1 + e^(−x)).   dy/dx = y·(1 − y)."""

    @staticmethod
    def forward(ctx, x):
        y = _sigmoid(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, gy):
        (y,) = ctx.saved
        return gy * (y * (1 - y))


class Tanh(Function):
    """y = tanh x = 2σ(2x) − 1.   dy/dx = 1 − y²."""

    @staticmethod
    def forward(ctx, x):
        y = _tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, gy):
        (y,) = ctx.saved
        return gy * (1 - y * y)


class ReLU(Function):
    """y = max(x, 0) = x·m + 0 with the mask m = [x > 0].   dy/dx = m (0 at the kink x = 0).

    A mask multiply is cheaper than np.maximum (which is not vectorized as well: ~1.5× slower
    here), and backward reuses the mask. x·0 is −0.0 for a negative x, so +0.0 is added in
    place (−0.0 + 0.0 = +0.0, exactly): relu(−2) is +0.0 and 1/relu(−2) is +inf. NaN stays NaN.
    −∞·0 is NaN, so where x = −∞ y is set to 0 (as torch and Keras give; one fmin reduction
    looks for −∞, ~10 µs on LeNet's first pooled map at batch 64, against ~66 for the passes).
    With numba (the extra `fast`, tidu.kernels.elementwise) one pass gives the same bits
    (y = 0 if x ≤ 0 else x), and backward reads m off y: y > 0 exactly where x > 0.
    """

    @staticmethod
    def forward(ctx, x):
        fast = _relu_kernels(x)
        if fast is not None:
            y = fast.relu(x)
            ctx.fast = fast
            ctx.save_for_backward(y)
            return y
        ctx.fast = None
        minus_inf = _minus_inf(x)
        m = (x > 0).astype(x.dtype)
        ctx.save_for_backward(m)
        y = x * m
        y += 0.0                     # −0.0 -> +0.0
        if minus_inf is not None:
            y[minus_inf] = 0         # −∞·0 is NaN
        return y

    @staticmethod
    def backward(ctx, gy):
        if ctx.fast is not None:
            return ctx.fast.relu_grad(gy, ctx.saved[0])
        return gy * ctx.saved[0]


def _relu_kernels(a):
    """tidu.kernels.elementwise's kernels for the NumPy array a, or None (NumPy's passes)."""
    if type(a) is not np.ndarray:
        return None
    return elementwise_kernels(a.dtype)


def relu_in_place(a):
    """relu(a) written into the float array a itself (ReLU's values, bit for bit): for a
    layer's own output that nothing else reads, at inference. Returns a."""
    fast = _relu_kernels(a)
    if fast is not None and a.flags.c_contiguous and a.flags.writeable:
        return fast.relu_(a)
    relu_mask_in_place(a)
    return a


def relu_mask_in_place(a):
    """ReLU's NumPy passes over the array a itself, a = a·m + 0.0 and 0 where a was −∞;
    returns the mask m = [a > 0] as floats (what ReLU keeps for backward)."""
    minus_inf = _minus_inf(a)
    m = (a > 0).astype(a.dtype)
    a *= m
    a += 0.0                         # −0.0 -> +0.0
    if minus_inf is not None:
        a[minus_inf] = 0             # −∞·0 is NaN
    return m


def _minus_inf(x):
    """Where the NumPy array x holds −∞ (a boolean mask), or None where it holds none: one
    reduction that skips NaN (np.fmin) to look, a second pass only when there is one."""
    if type(x) is not np.ndarray or x.size == 0 or x.dtype.kind != "f" or \
            np.fmin.reduce(x, axis=None) != -np.inf:
        return None
    return np.isneginf(x)


class LeakyReLU(Function):
    """y = x if x > 0 else α·x, i.e. y = s·x with slope s = [x > 0] + α·[x ≤ 0].   dy/dx = s."""

    @staticmethod
    def forward(ctx, x, alpha):
        s = (x > 0).astype(x.dtype)
        s *= 1 - alpha
        s += alpha
        ctx.save_for_backward(s)
        return x * s

    @staticmethod
    def backward(ctx, gy):
        return gy * ctx.saved[0]


class ELU(Function):
    """y = λ·(x if x > 0 else α·(eˣ − 1)).   dy/dx = λ·(1 if x > 0 else α·eˣ).

    With t = e^min(x, 0) (1 for x > 0):  y = λ·(max(x, 0) + α·(t − 1)),
    dy/dx = λ·(α·t + (1 − α)·[x > 0]); for α = 1 that is λ·t. λ = 1 is Keras' elu, λ and α
    as in `selu` its SELU. eˣ − 1 is taken with exp (expm1 is ~13× slower here): near x = 0
    its absolute error is about one ulp of 1.
    """

    @staticmethod
    def forward(ctx, x, alpha=1.0, scale=1.0):
        xp = backend.xp
        t = xp.minimum(x, 0, out=_empty(x))
        xp.exp(t, out=t)
        y = t - 1
        if alpha != 1:
            y *= alpha
        y += xp.maximum(x, 0)
        if scale != 1:
            y *= scale
        ctx.save_for_backward(x, t)
        ctx.alpha, ctx.scale = alpha, scale
        return y

    @staticmethod
    def backward(ctx, gy):
        x, t = ctx.saved
        alpha, scale = ctx.alpha, ctx.scale
        if alpha == 1:
            s = t if scale == 1 else t * scale
        else:
            s = (x > 0).astype(t.dtype)
            s *= (1 - alpha) * scale
            s += t * (alpha * scale)
        return gy * s


class Softplus(Function):
    """y = ln(1 + eˣ) = max(x, 0) + ln(1 + e^(−|x|)).   dy/dx = σ(x) = e^(x − y).

    The second form never overflows; x − y ≤ 0 keeps the gradient's exp ≤ 1. ln(1 + u) is
    taken with log (log1p is ~10× slower here): for x < −17 (float32) or −37 (float64) the
    value, below 1e-7 resp. 1e-16, rounds to 0; the gradient stays accurate.
    """

    @staticmethod
    def forward(ctx, x):
        xp = backend.xp
        y = xp.abs(x, out=_empty(x))
        xp.negative(y, out=y)
        xp.exp(y, out=y)
        y += 1
        xp.log(y, out=y)
        y += xp.maximum(x, 0)
        ctx.save_for_backward(x, y)
        return y

    @staticmethod
    def backward(ctx, gy):
        x, y = ctx.saved
        s = backend.xp.subtract(x, y, out=_empty(x))
        backend.xp.exp(s, out=s)
        return gy * s


class GELU(Function):
    """GELU, tanh approximation (Hendrycks & Gimpel 2016; torch's approximate='tanh'):

        y = ½·x·(1 + t),   t = tanh(u),   u = c·(x + k·x³),   c = √(2/π),  k = 0.044715
        dy/dx = ½·(1 + t) + ½·x·(1 − t²)·c·(1 + 3k·x²)

    The exact form x·Φ(x) (Keras' and torch's default) needs erf, which NumPy lacks; the two
    differ by less than 5e-4 everywhere.
    """

    C, K = math.sqrt(2 / math.pi), 0.044715

    @staticmethod
    def forward(ctx, x):
        c, k = GELU.C, GELU.K
        x2 = x * x
        u = x2 * k
        u += 1
        u *= x
        u *= c
        t = _tanh(u)
        y = t + 1
        y *= x
        y *= 0.5
        ctx.save_for_backward(x, x2, t)
        return y

    @staticmethod
    def backward(ctx, gy):
        x, x2, t = ctx.saved
        c, k = GELU.C, GELU.K
        du = x2 * (3 * k * c)
        du += c                         # du/dx = c·(1 + 3k·x²)
        xp = backend.xp
        g = xp.multiply(t, t, out=_empty(t))
        xp.subtract(1, g, out=g)        # 1 − t²
        g *= du
        g *= x
        g += t
        g += 1
        g *= 0.5
        return gy * g


def sigmoid(x):
    """σ(x) = 1 / (1 + e^(−x)), the logistic function; values in (0, 1)."""
    return Sigmoid.apply(_input(x))


def tanh(x):
    """tanh x = (eˣ − e^(−x)) / (eˣ + e^(−x)) = 2σ(2x) − 1; values in (−1, 1)."""
    return Tanh.apply(_input(x))


def relu(x):
    """max(x, 0)."""
    return ReLU.apply(_input(x))


def leaky_relu(x, alpha=0.3):
    """x if x > 0 else alpha·x (Keras' default alpha = 0.3; torch's negative_slope is 0.01)."""
    return LeakyReLU.apply(_input(x), alpha=float(alpha))


def elu(x, alpha=1.0):
    """x if x > 0 else alpha·(eˣ − 1)."""
    return ELU.apply(_input(x), alpha=float(alpha))


SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def selu(x):
    """λ·elu(x, α) with α ≈ 1.6733, λ ≈ 1.0507 (Klambauer et al. 2017, self-normalising)."""
    return ELU.apply(_input(x), alpha=SELU_ALPHA, scale=SELU_SCALE)


def softplus(x):
    """ln(1 + eˣ), a smooth relu; its derivative is σ(x)."""
    return Softplus.apply(_input(x))


def softsign(x):
    """x / (1 + |x|); values in (−1, 1). Composed: dy/dx = 1 / (1 + |x|)²."""
    x = _input(x)
    return x / (_abs(x) + 1)


def gelu(x):
    """½·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), the tanh approximation of x·Φ(x); see GELU."""
    return GELU.apply(_input(x))


def swish(x):
    """x·σ(x) (Ramachandran et al. 2017; = silu). Composed: dy/dx = σ(x)·(1 + x·(1 − σ(x)))."""
    x = _input(x)
    return mul(x, sigmoid(x))


silu = swish


def hard_sigmoid(x):
    """clip(x/6 + ½, 0, 1) = relu6(x + 3)/6, as in Keras 3 and torch.nn.Hardsigmoid
    (Keras 2 used clip(0.2·x + ½, 0, 1)). dy/dx = 1/6 on −3 < x < 3, else 0."""
    x = _input(x)
    return clip(x * (1 / 6) + 0.5, 0, 1)


# --- along an axis -----------------------------------------------------------------------
class Softmax(Function):
    """y_i = e^(x_i − m) / Σ_j e^(x_j − m) along `axis`, m = max_j x_j (the shift cancels and
    keeps every e^· ≤ 1, so no overflow).

    dy_i/dx_j = y_i·(δ_ij − y_j),  so  gx = y·(gy − Σ_j gy_j·y_j).
    """

    @staticmethod
    def forward(ctx, x, axis=-1):
        axis = _reduce_axis(x, axis, "softmax")
        y = x - x.max(axis=axis, keepdims=True)
        backend.xp.exp(y, out=y)
        y /= y.sum(axis=axis, keepdims=True)
        ctx.save_for_backward(y)
        ctx.axis = axis
        return y

    @staticmethod
    def backward(ctx, gy):
        (y,) = ctx.saved
        g = gy * y
        s = g.sum(axis=ctx.axis, keepdims=True)
        g -= y * s
        return g


class LogSoftmax(Function):
    """y_i = x_i − m − ln Σ_j e^(x_j − m) along `axis`, m = max_j x_j (= ln softmax(x)_i,
    finite even where softmax underflows to 0).

    dy_i/dx_j = δ_ij − softmax_j,  so  gx = gy − softmax·Σ_i gy_i.
    """

    @staticmethod
    def forward(ctx, x, axis=-1):
        xp = backend.xp
        axis = _reduce_axis(x, axis, "log_softmax")
        y = x - x.max(axis=axis, keepdims=True)
        e = xp.exp(y)
        s = e.sum(axis=axis, keepdims=True)
        y -= xp.log(s)
        ctx.save_for_backward(e, s)
        ctx.axis = axis
        return y

    @staticmethod
    def backward(ctx, gy):
        e, s = ctx.saved
        p = e / s
        p *= gy.sum(axis=ctx.axis, keepdims=True)
        return gy - p


class Maxout(Function):
    """Maxout (Goodfellow et al. 2013): along `axis`, the n = units·pieces features are grouped
    as (units, pieces), i.e. feature u·pieces + k is piece k of unit u (a reshape of that axis
    to (units, pieces)), and

        y_u = max_k x_{u,k}.     dy_u/dx_{u,k} = [k = the first k with x_{u,k} = y_u]

    (a tie sends the gradient to the first maximal piece, as torch's max does). The max is a
    chain of np.maximum over the pieces' strided views, ~40× faster than reshape(...).max(-1).
    """

    @staticmethod
    def forward(ctx, x, pieces, axis=-1):
        axis = _reduce_axis(x, axis, "maxout")
        n = x.shape[axis]
        if n % pieces:
            raise ShapeError(f"maxout: expected the size of axis {axis} to be a multiple of "
                             f"pieces={pieces}, got input of shape {x.shape}")
        xr = x.reshape(x.shape[:axis] + (n // pieces, pieces) + x.shape[axis + 1:])
        lead = (slice(None),) * (axis + 1)
        y = xr[lead + (0,)].copy()
        for k in range(1, pieces):
            backend.xp.maximum(y, xr[lead + (k,)], out=y)
        ctx.save_for_backward(xr, y)
        ctx.shape, ctx.lead, ctx.pieces = x.shape, lead, pieces
        return y

    @staticmethod
    def backward(ctx, gy):
        xr, y = ctx.saved
        lead = ctx.lead
        gx = backend.xp.empty(xr.shape, dtype=gy.dtype)
        rest = gy                       # the gradient no earlier piece has claimed
        for k in range(ctx.pieces - 1):
            g = gx[lead + (k,)]
            backend.xp.multiply(rest, xr[lead + (k,)] == y, out=g)
            rest = rest - g
        gx[lead + (ctx.pieces - 1,)] = rest
        return gx.reshape(ctx.shape)


def softmax(x, axis=-1):
    """e^(x_i) / Σ_j e^(x_j) along `axis`: a probability distribution, computed stably."""
    return Softmax.apply(_input(x), axis=axis)


def log_softmax(x, axis=-1):
    """ln softmax(x) along `axis` = x − logsumexp(x), computed stably."""
    return LogSoftmax.apply(_input(x), axis=axis)


def maxout(x, pieces, axis=-1):
    """Max over groups of `pieces` consecutive features along `axis`: (..., units·pieces, ...)
    -> (..., units, ...); feature u·pieces + k is piece k of unit u. See Maxout."""
    pieces = check_int("maxout", "pieces", pieces, minimum=1)
    return Maxout.apply(_input(x), pieces=int(pieces), axis=axis)
