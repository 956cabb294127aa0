"""A model's layers as a list of steps, and the one interpreter that runs them.

A step is (layer, inputs, kwargs): `inputs` are indices of earlier steps' outputs (-1: the
model's input), `kwargs` the call's keyword arguments. A Sequential model is a chain (step i
reads step i − 1); a functional model is its graph traced from the output back to the input,
in an order where every step comes after the steps it reads.

`run` evaluates the steps on a Tensor. With logits=True the last step gives its layer's
pre-activation z instead of a = activation(z), for the fused losses. A Conv2D with relu whose
only reader is a MaxPooling2D runs as conv, pool, relu (`pools_first`): the same values and
gradients, relu on a map 4× smaller. The conv and the pool are one call,
tidu.functional.conv2d_max_pool2d, which for inference runs them image chunk by chunk and for
2×2 pools without numba sums the kernel's and bias's gradients in another order (equal to float
rounding).
"""
import collections

from tidu import activations
from tidu.autograd import Tensor
from tidu.autograd.function import is_grad_enabled
from tidu.functional.activations import relu_in_place
from tidu.layers.convolutional import Conv2D
from tidu.layers.pooling import MaxPooling2D

__all__ = ["Step", "chain", "pools_first", "run", "trace", "with_layer"]

Step = collections.namedtuple("Step", "layer inputs kwargs")


def chain(layers):
    """The steps of a plain stack: layer i reads layer i − 1 (the first, the input)."""
    return [Step(layer, (i - 1,), {}) for i, layer in enumerate(layers)]


def trace(inputs, outputs):
    """(steps, nodes, layers) of the graph from SymbolicTensor `inputs` to `outputs`: nodes are
    the SymbolicTensors in run order, layers each layer once in that order."""
    order, seen, stack = [], set(), [(outputs, False)]
    while stack:  # iterative post-order DFS: every node after the nodes it reads
        t, expanded = stack.pop()
        if expanded:
            order.append(t)
            continue
        if id(t) in seen or t is inputs:
            continue
        seen.add(id(t))
        if not t.inputs:
            raise ValueError(f"Model: the graph is disconnected: output {outputs.name!r} depends "
                             f"on input {t.name!r}, which is not the model's input {inputs.name!r}")
        stack.append((t, True))
        for p in reversed(t.inputs):
            if id(p) not in seen and p is not inputs:
                stack.append((p, False))
    if not order:
        raise ValueError("Model: the outputs are the inputs; add at least one layer")
    index = {id(t): i for i, t in enumerate(order)}
    steps = [Step(t.layer, tuple(-1 if s is inputs else index[id(s)] for s in t.inputs),
                  dict(t.call_kwargs)) for t in order]
    layers = list(dict.fromkeys(t.layer for t in order))
    names = [layer.name for layer in layers]
    dupes = sorted(n for n, k in collections.Counter(names).items() if k > 1)
    if dupes:
        raise ValueError(f"Model: layer names must be unique, got {dupes} more than once")
    return steps, order, layers


def _single_readers(steps):
    """For each step, whether exactly one later step reads it, and that is the next step."""
    readers = collections.Counter(i for s in steps for i in s.inputs)
    return [readers[i] == 1 and i + 1 < len(steps) and steps[i + 1].inputs == (i,)
            for i in range(len(steps))]


def run(steps, x, training=False, logits=False, fusable=None):
    """The output of `steps` for a Tensor x (with logits=True, the last layer's pre-activation).
    `fusable` (from `fusable_pairs`) marks the steps that may pool first. Errors raised by a
    layer are prefixed with its name when they lack it."""
    values = []
    last = len(steps) - 1
    i = 0
    try:
        while i <= last:
            layer, inputs, kwargs = steps[i]
            args = [x if k < 0 else values[k] for k in inputs]
            a = layer.call_arguments(args)
            if fusable is not None and fusable[i] and (i + 1 < last or not logits) \
                    and pools_first(layer, steps[i + 1].layer, a):
                values.append(None)   # never read: the pool is the only reader
                i += 1
                z = layer.pooled_pre_activation(a, steps[i].layer, training=training)
                values.append(_activate(layer.activation, z))
            elif logits and i == last:
                values.append(layer.pre_activation(a, training=training))
            else:
                values.append(layer(a, training=training, **kwargs))
            i += 1
    except (ValueError, TypeError) as e:
        new = with_layer(steps[min(i, last)].layer, e)
        if new is e:
            raise
        raise new from e
    return values[-1]


def _activate(activation, z):
    """activation(z) for z, the fused conv and pool's output: with no graph recorded, relu is
    written over z's own array (new, and read by nothing else), the same values."""
    if activation is activations.relu and not is_grad_enabled():
        relu_in_place(z.data)
        return z
    return activation(z)


def fusable_pairs(steps):
    """Per step, whether it may run with the next one as conv, pool, relu (see pools_first)."""
    single = _single_readers(steps)
    return [single[i] and type(s.layer) is Conv2D and not s.kwargs
            and type(steps[i + 1].layer) is MaxPooling2D and not steps[i + 1].kwargs
            for i, s in enumerate(steps)]


def with_layer(layer, e):
    """The exception `e`, its message prefixed with the layer when it does not name it."""
    msg = str(e)
    if layer.name in msg:
        return e
    try:
        return type(e)(f"{type(layer).__name__} '{layer.name}': {msg}")
    except Exception:  # an exception type with another constructor
        return e


# Activations φ with max(φ(x₁), …, φ(xₖ)) = φ(max(x₁, …, xₖ)) and the same gradient, exactly in
# floating point: relu only. See pools_first.
_COMMUTES_WITH_MAX_POOL = (activations.relu,)


def pools_first(conv, pool, h):
    """Whether conv → pool may run as conv.pre_activation → pool → conv.activation.

    For z the conv's pre-activation and φ = relu, computed as φ(z) = z·[z > 0]:
      forward:  φ is non-decreasing, so on any window w, max_w φ(z) = φ(max_w z) (φ of the
                maximum is ≥ φ of every element and is one of them). Bit for bit: on z > 0, φ is
                z itself; if max_w z ≤ 0 both sides are a zero (at most the sign of 0 differs).
      backward: pooling after φ sends gy to the first maximum m of φ(z) over w, times φ'(z_m);
                pooling before sends gy·φ'(max_w z) to the first maximum of z. If max_w z > 0,
                φ(z_i) = φ(max) only where z_i = max (φ is z there, and ≤ 0 < max elsewhere),
                so both pick the same element, with φ' = 1. If max_w z ≤ 0, φ' = 0 (relu'(0) = 0,
                as F.relu's mask [z > 0]) at every element, and both send 0 to the whole window,
                ties or not. So gradients agree exactly (up to the sign of zeros).
    Activations that are only mathematically non-decreasing are left out: float rounding or
    saturation (sigmoid, tanh, elu, softplus, leaky_relu's α·z) can give distinct z_i the same
    φ(z_i), and then the first maximum of φ(z) need not be the first maximum of z, so the
    gradient would land on another element. A NaN gives NaN on both sides, a −∞ 0 (F.relu sets
    relu(−∞) = 0 where z·[z > 0] would be NaN).

    The swap is invisible from outside: it applies only to these exact layer classes, a built
    conv with no activity regularizer (which would observe the conv's output), a conv output
    read by the pool alone, and Tensors. The pooled map is 4× smaller for 2×2 windows, so relu
    forward and backward cost 4× less.
    """
    return (type(conv) is Conv2D and type(pool) is MaxPooling2D and conv.built
            and conv.activation in _COMMUTES_WITH_MAX_POOL and conv.activity_regularizer is None
            and isinstance(h, Tensor))
