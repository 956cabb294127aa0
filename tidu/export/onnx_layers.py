"""ONNX converters of the feed-forward layers: core, convolution, pooling, normalization,
embedding and the activation layers. tidu's images are NHWC, ONNX's Conv and pools NCHW, so
those run between two Transposes (a runtime's optimizer folds the pairs that meet).

    Dense               MatMul(x, kernel) + bias, then the activation
    Conv2D              Conv with W = kernel (kh, kw, C, F) transposed to (F, C, kh, kw)
    MaxPooling2D        MaxPool          AveragePooling2D  AveragePool, count_include_pad=0
    L2Pooling2D         LpPool, p = 2    Global*Pooling2D  ReduceMean / ReduceMax over H, W
    BatchNormalization  x·s + t with s = γ/√(moving_variance + ε), t = β − moving_mean·s
    LayerNormalization  LayerNormalization over the last axis
    Embedding           Gather(embeddings, ids)
    Dropout             nothing (inference; mode 'classic': x·(1 − rate))   Identity: nothing
    Flatten, Reshape    Flatten / Reshape
'same' padding is TensorFlow's (the extra row/column at the bottom/right), as pads when the
height and width are known or the strides 1, else auto_pad SAME_UPPER.
"""
import numpy as np

from tidu import layers as L
from tidu.export.onnx_activations import activation, maxout, relu_general
from tidu.export.onnx_graph import converter

__all__ = ["same_pads"]

TO_NCHW, TO_NHWC = [0, 3, 1, 2], [0, 2, 3, 1]


def _label(layer):
    return f"{type(layer).__name__} '{layer.name}'"


def _array(weight):
    """A weight's values as a NumPy array (also for a GPU backend)."""
    data = weight.data
    return np.asarray(data.get() if hasattr(data, "get") else data)


def _affine(g, layer, x):
    """x @ kernel (+ bias)."""
    y = g.op("MatMul", [x, g.const(_array(layer.kernel), "kernel")])
    return g.op("Add", [y, g.const(_array(layer.bias), "bias")]) if layer.bias is not None else y


@converter(L.Dense)
def dense(g, layer, x, shape):
    z_shape = (*shape[:-1], layer.units)
    return activation(g, layer.activation, _affine(g, layer, x), z_shape, _label(layer))


@converter(L.Activation)
def activation_layer(g, layer, x, shape):
    return activation(g, layer.activation, x, shape, _label(layer))


@converter(L.Identity)
def identity(g, layer, x, shape):
    return x


@converter(L.Dropout)
def dropout(g, layer, x, shape):
    """Inference: x (mode 'inverted', Keras's), or (1 − rate)·x (mode 'classic')."""
    if layer.mode == "classic":
        return g.op("Mul", [x, g.const(1.0 - layer.rate, "keep")])
    return x


@converter(L.Flatten)
def flatten(g, layer, x, shape):
    return g.op("Flatten", [x], axis=1)


@converter(L.Reshape)
def reshape(g, layer, x, shape):
    """Reshape to (batch, *target_shape): 0 copies the batch axis."""
    rest = layer.compute_output_shape(shape)[1:]
    target = layer.target_shape if None in rest else rest
    return g.op("Reshape", [x, g.ints([0, *target])])


def same_pads(sizes, window, strides):
    """ONNX pads [begin…, end…] of TensorFlow's 'same' for windows over axes of `sizes`, or
    None when a strided axis's size is unknown: total = (⌈n/s⌉ − 1)·s + k − n (k − 1 for
    s = 1, whatever n), the extra one at the end."""
    before, after = [], []
    for n, k, s in zip(sizes, window, strides):
        if n is None and s != 1:
            return None
        total = k - 1 if s == 1 else max((-(-n // s) - 1) * s + k - n, 0)
        before.append(total // 2)
        after.append(total - total // 2)
    return before + after


def _pads(shape, window, strides, padding):
    """(pads, auto_pad) of a window over the H, W axes of an NHWC `shape`: ONNX's pads
    [top, left, bottom, right] for TensorFlow's 'same', or SAME_UPPER when a strided axis's
    size is unknown (a dilated window has stride 1, so it always gets pads: onnxruntime
    refuses auto_pad with dilations)."""
    if padding == "valid":
        return [0, 0, 0, 0], None
    pads = same_pads(shape[1:3], window, strides)
    return (None, "SAME_UPPER") if pads is None else (pads, None)


def _nchw(g, op_type, x, inputs, **attributes):
    """op_type on x transposed to NCHW, transposed back to NHWC."""
    t = g.op("Transpose", [x], perm=TO_NCHW)
    return g.op("Transpose", [g.op(op_type, [t, *inputs], **attributes)], perm=TO_NHWC)


@converter(L.Conv2D)
def conv2d(g, layer, x, shape):
    span = tuple((k - 1) * d + 1 for k, d in zip(layer.kernel_size, layer.dilation_rate))
    pads, auto_pad = _pads(shape, span, layer.strides, layer.padding)
    inputs = [g.const(_array(layer.kernel).transpose(3, 2, 0, 1), "kernel")]
    if layer.bias is not None:
        inputs.append(g.const(_array(layer.bias), "bias"))
    z = _nchw(g, "Conv", x, inputs, kernel_shape=list(layer.kernel_size),
              strides=list(layer.strides), dilations=list(layer.dilation_rate), pads=pads,
              auto_pad=auto_pad)
    return activation(g, layer.activation, z, layer.compute_output_shape(shape), _label(layer))


def _pooling(op_type, **extra):
    def convert(g, layer, x, shape):
        pads, auto_pad = _pads(shape, layer.pool_size, layer.strides, layer.padding)
        return _nchw(g, op_type, x, [], kernel_shape=list(layer.pool_size),
                     strides=list(layer.strides), pads=pads, auto_pad=auto_pad, **extra)
    return convert


converter(L.MaxPooling2D)(_pooling("MaxPool"))
converter(L.AveragePooling2D)(_pooling("AveragePool", count_include_pad=0))
converter(L.L2Pooling2D)(_pooling("LpPool", p=2))


def _global(op_type):
    def convert(g, layer, x, shape):
        return g.op(op_type, [x, g.ints([1, 2], "axes")], keepdims=int(layer.keepdims))
    return convert


converter(L.GlobalAveragePooling2D)(_global("ReduceMean"))
converter(L.GlobalMaxPooling2D)(_global("ReduceMax"))


@converter(L.BatchNormalization)
def batch_norm(g, layer, x, shape):
    """Inference: y = x·s + t, s = γ/√(moving_variance + ε), t = β − moving_mean·s, per feature
    along `axis` (s, t shaped to broadcast there)."""
    var = _array(layer.moving_variance).astype(np.float64)
    s = 1.0 / np.sqrt(var + layer.epsilon)
    if layer.gamma is not None:
        s = s * _array(layer.gamma)
    t = -_array(layer.moving_mean) * s
    if layer.beta is not None:
        t = t + _array(layer.beta)
    axis = layer.axis % len(shape)
    broadcast = (-1,) + (1,) * (len(shape) - 1 - axis)
    y = g.op("Mul", [x, g.const(s.reshape(broadcast), "scale")])
    return g.op("Add", [y, g.const(t.reshape(broadcast), "shift")])


@converter(L.LayerNormalization)
def layer_norm(g, layer, x, shape):
    gamma = _array(layer.gamma) if layer.gamma is not None else np.ones(layer.features)
    inputs = [x, g.const(gamma, "gamma")]
    if layer.beta is not None:
        inputs.append(g.const(_array(layer.beta), "beta"))
    return g.op("LayerNormalization", inputs, axis=-1, epsilon=layer.epsilon)


@converter(L.Embedding)
def embedding(g, layer, x, shape):
    ids = g.op("Cast", [x], to=g.tensor_type(np.int64))
    return g.op("Gather", [g.const(_array(layer.embeddings), "embeddings"), ids], axis=0)


@converter(L.LeakyReLU)
def leaky_relu(g, layer, x, shape):
    return g.op("LeakyRelu", [x], alpha=float(layer.negative_slope))


@converter(L.ELU)
def elu(g, layer, x, shape):
    return g.op("Elu", [x], alpha=float(layer.alpha))


@converter(L.ReLU)
def relu(g, layer, x, shape):
    return relu_general(g, x, layer.negative_slope, layer.max_value, layer.threshold)


@converter(L.Softmax)
def softmax(g, layer, x, shape):
    return g.op("Softmax", [x], axis=layer.axis)


@converter(L.Maxout)
def maxout_layer(g, layer, x, shape):
    z_shape = (*shape[:-1], layer.units * layer.pieces)
    return maxout(g, _affine(g, layer, x), z_shape, layer.pieces, _label(layer))
