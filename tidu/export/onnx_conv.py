"""ONNX converters of the 1-D convolutions and pools and of Conv2DTranspose. tidu's sequences
are (N, L, C), ONNX's Conv and pools read (N, C, L): those run between two Transposes.

    Conv1D                  Conv with W = kernel (k, C, F) transposed to (F, C, k); 'causal'
                            pads (k − 1)·d zeros on the left only, 'same' as Conv2D
    MaxPooling1D            MaxPool       AveragePooling1D   AveragePool, count_include_pad=0
    Global*Pooling1D        ReduceMean / ReduceMax over the steps (axis 1)
    Conv2DTranspose         ConvTranspose with W = kernel (kh, kw, F, C) transposed to
                            (C, F, kh, kw), no pads: the full output (n − 1)·s + k̃ per axis,
                            k̃ = (k − 1)·d + 1. Keras's crops (c_before, c_after) of it, as in
                            tidu.functional.conv_transpose's docstring:
        'valid':  c = (0, −(max(k̃, s) − k̃))   or, with output_padding op,  c = (0, −op)
        'same':   P = s + k̃ − 2                or, with op,  P = k̃ + (k̃ mod 2) − 2 + op
                  before = min(⌈P/2⌉, k̃ − 1),  c = (k̃ − 1 − before, k̃ − 1 − (P − before))
                            a crop >= 0 is the op's pads, a negative one a Pad with zeros
                            after it; then + bias (over the padded zeros too, as tidu) and
                            the activation.
'same' padding is TensorFlow's (the extra step at the end), as pads when the length is known
or the stride 1, else auto_pad SAME_UPPER.
"""
from tidu import layers as L
from tidu.export.onnx_activations import activation
from tidu.export.onnx_graph import converter
from tidu.export.onnx_layers import TO_NCHW, TO_NHWC, _array, _label, same_pads

__all__ = ["transpose_crops"]

TO_NCL = TO_NLC = [0, 2, 1]


def _pads_1d(shape, span, stride, padding):
    """(pads, auto_pad) of a window of extent `span` over the steps of an (N, L, C) `shape`."""
    if padding == "valid":
        return [0, 0], None
    if padding == "causal":
        return [span - 1, 0], None
    pads = same_pads([shape[1]], [span], [stride])
    return (None, "SAME_UPPER") if pads is None else (pads, None)


def _ncl(g, op_type, x, inputs, **attributes):
    """op_type on x transposed to (N, C, L), transposed back to (N, L, C)."""
    t = g.op("Transpose", [x], perm=TO_NCL)
    return g.op("Transpose", [g.op(op_type, [t, *inputs], **attributes)], perm=TO_NLC)


@converter(L.Conv1D)
def conv1d(g, layer, x, shape):
    (k,), (s,), (d,) = layer.kernel_size, layer.strides, layer.dilation_rate
    pads, auto_pad = _pads_1d(shape, (k - 1) * d + 1, s, layer.padding)
    inputs = [g.const(_array(layer.kernel).transpose(2, 1, 0), "kernel")]
    if layer.bias is not None:
        inputs.append(g.const(_array(layer.bias), "bias"))
    z = _ncl(g, "Conv", x, inputs, kernel_shape=[k], strides=[s], dilations=[d], pads=pads,
             auto_pad=auto_pad)
    return activation(g, layer.activation, z, layer.compute_output_shape(shape), _label(layer))


def _pooling_1d(op_type, **extra):
    def convert(g, layer, x, shape):
        (p,), (s,) = layer.pool_size, layer.strides
        pads, auto_pad = _pads_1d(shape, p, s, layer.padding)
        return _ncl(g, op_type, x, [], kernel_shape=[p], strides=[s], pads=pads,
                    auto_pad=auto_pad, **extra)
    return convert


converter(L.MaxPooling1D)(_pooling_1d("MaxPool"))
converter(L.AveragePooling1D)(_pooling_1d("AveragePool", count_include_pad=0))


def _global_1d(op_type):
    def convert(g, layer, x, shape):
        return g.op(op_type, [x, g.ints([1], "axes")], keepdims=int(layer.keepdims))
    return convert


converter(L.GlobalAveragePooling1D)(_global_1d("ReduceMean"))
converter(L.GlobalMaxPooling1D)(_global_1d("ReduceMax"))


def transpose_crops(k, s, d, padding, output_padding):
    """Keras's (c_before, c_after) of the full transposed-convolution output along one axis
    (module docstring); a negative crop is that many zeros added instead."""
    span = (k - 1) * d + 1
    if padding == "valid":
        return 0, -(max(span, s) - span if output_padding is None else output_padding)
    total = s + span - 2 if output_padding is None else span + span % 2 - 2 + output_padding
    before = min(-(-total // 2), span - 1)
    return span - 1 - before, span - 1 - (total - before)


@converter(L.Conv2DTranspose)
def conv2d_transpose(g, layer, x, shape):
    ops = layer.output_padding or (None, None)
    (ct, cb), (cl, cr) = (transpose_crops(k, s, d, layer.padding, op) for k, s, d, op in zip(
        layer.kernel_size, layer.strides, layer.dilation_rate, ops))
    kernel = g.const(_array(layer.kernel).transpose(3, 2, 0, 1), "kernel")
    t = g.op("Transpose", [x], perm=TO_NCHW)
    y = g.op("ConvTranspose", [t, kernel], kernel_shape=list(layer.kernel_size),
             strides=list(layer.strides), dilations=list(layer.dilation_rate),
             pads=[max(c, 0) for c in (ct, cl, cb, cr)])
    z = g.op("Transpose", [y], perm=TO_NHWC)
    if min(ct, cb, cl, cr) < 0:
        grow = [max(-c, 0) for c in (ct, cl, cb, cr)]
        z = g.op("Pad", [z, g.ints([0, grow[0], grow[1], 0, 0, grow[2], grow[3], 0], "pads")])
    if layer.bias is not None:
        z = g.op("Add", [z, g.const(_array(layer.bias), "bias")])
    return activation(g, layer.activation, z, layer.compute_output_shape(shape), _label(layer))

