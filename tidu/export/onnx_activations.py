"""tidu's activations as ONNX nodes: `activation(g, fn, x, shape, where)` for every function of
tidu.activations, one entry per function in ACTIVATIONS (fn -> convert(g, x, shape)).

    linear       x (no node)              relu, sigmoid, tanh, exp, softplus, softsign: one op
    relu6        Clip(x, 0, 6)            softmax, log_softmax: Softmax / LogSoftmax, axis −1
    elu          Elu(α = 1)               selu: Selu(α ≈ 1.6733, γ ≈ 1.0507)
    leaky_relu   LeakyRelu(0.2)           hard_sigmoid: HardSigmoid(α = 1/6, β = ½) = clip(x/6 + ½, 0, 1)
    silu, swish  x·Sigmoid(x)             mish: x·Tanh(Softplus(x))
    gelu         ½·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))   (tidu's tanh form, decomposed)
    maxout(p)    Reshape (..., n) -> (..., n/p, p), ReduceMax over the last axis
"""
import math

from tidu import activations as A
from tidu.functional.activations import SELU_ALPHA, SELU_SCALE

__all__ = ["ACTIVATIONS", "activation", "maxout", "relu_general"]


def _unary(op_type, **attributes):
    return lambda g, x, shape: g.op(op_type, [x], **attributes)


def _swish(g, x, shape):
    return g.op("Mul", [x, g.op("Sigmoid", [x])])


def _mish(g, x, shape):
    return g.op("Mul", [x, g.op("Tanh", [g.op("Softplus", [x])])])


def _gelu(g, x, shape):
    cube = g.op("Mul", [g.op("Mul", [x, x]), x])
    inner = g.op("Add", [x, g.op("Mul", [cube, g.const(0.044715, "gelu_k")])])
    t = g.op("Tanh", [g.op("Mul", [inner, g.const(math.sqrt(2 / math.pi), "gelu_c")])])
    half_x = g.op("Mul", [x, g.const(0.5, "half")])
    return g.op("Mul", [half_x, g.op("Add", [t, g.const(1.0, "one")])])


def _relu6(g, x, shape):
    return g.op("Clip", [x, g.const(0.0, "zero"), g.const(6.0, "six")])


def maxout(g, x, shape, pieces, where):
    """y_u = max_{k < pieces} x_{u·pieces + k}: Reshape (..., n) -> (..., n/pieces, pieces),
    then ReduceMax over the last axis."""
    n = shape[-1]
    if n is None:
        raise ValueError(f"ONNX export: {where}: maxout needs a known last dimension, got shape {shape}")
    grouped = g.op("Reshape", [x, g.ints([0] * (len(shape) - 1) + [n // pieces, pieces])])
    return g.op("ReduceMax", [grouped, g.ints([-1], "axes")], keepdims=0)


def relu_general(g, x, negative_slope=0.0, max_value=None, threshold=0.0):
    """y = x for x >= threshold, negative_slope·(x − threshold) below; then min(y, max_value)."""
    if negative_slope == 0 and threshold == 0:
        y = g.op("Relu", [x])
    else:
        th = g.const(threshold, "threshold")
        below = g.op("Mul", [g.op("Sub", [x, th]), g.const(negative_slope, "negative_slope")])
        y = g.op("Where", [g.op("GreaterOrEqual", [x, th]), x, below])
    if max_value is not None:
        y = g.op("Min", [y, g.const(max_value, "max_value")])
    return y


ACTIVATIONS = {
    A.linear: lambda g, x, shape: x,
    A.relu: _unary("Relu"),
    A.relu6: _relu6,
    A.sigmoid: _unary("Sigmoid"),
    A.tanh: _unary("Tanh"),
    A.softmax: _unary("Softmax", axis=-1),
    A.log_softmax: _unary("LogSoftmax", axis=-1),
    A.elu: _unary("Elu", alpha=1.0),
    A.selu: _unary("Selu", alpha=SELU_ALPHA, gamma=SELU_SCALE),
    A.softplus: _unary("Softplus"),
    A.softsign: _unary("Softsign"),
    A.leaky_relu: _unary("LeakyRelu", alpha=0.2),
    A.gelu: _gelu,
    A.silu: _swish,
    A.hard_sigmoid: _unary("HardSigmoid", alpha=1 / 6, beta=0.5),
    A.exponential: _unary("Exp"),
    A.mish: _mish,
    A.maxout: lambda g, x, shape: maxout(g, x, shape, 2, "maxout"),
}


def activation(g, fn, x, shape, where):
    """The graph value of fn(x) for x of tidu shape `shape`; `where` names the layer in errors."""
    if isinstance(fn, A.Maxout):
        return maxout(g, x, shape, fn.pieces, where)
    convert = ACTIVATIONS.get(fn)
    if convert is None:
        known = sorted(A.name_of(f) for f in ACTIVATIONS)
        raise ValueError(f"ONNX export: {where}: activation {fn!r} has no ONNX converter; "
                         f"these do: {', '.join(known)}")
    return convert(g, x, shape)
