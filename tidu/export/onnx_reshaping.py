"""ONNX converters of the merge, reshaping, noise, Rescaling and PReLU layers.

    Add, Average, Maximum, Minimum   Sum / Mean / Max / Min of the inputs (variadic ops)
    Subtract, Multiply               Sub / a chain of Mul
        an input with fewer dimensions first gets new axes after the batch axis (Unsqueeze),
        as tidu's merges do; ONNX then broadcasts as NumPy (aligned on the right)
    Concatenate                      Concat along `axis`
    RepeatVector(n)                  Unsqueeze (N, D) -> (N, 1, D), Expand to (N, n, D)
    Permute(dims)                    Transpose with perm (0, *dims)
    UpSampling2D(size)               Resize of the NCHW view, scales (1, 1, sh, sw):
        'nearest'   coordinate_transformation_mode 'asymmetric', nearest_mode 'floor':
                    output i reads input ⌊i/s⌋
        'bilinear'  mode 'linear', coordinate_transformation_mode 'half_pixel': output i
                    reads the input at (i + ½)/s − ½, clamped to the edges (tidu's
                    bilinear_matrix, torch's interpolate with align_corners=False)
    ZeroPadding2D                    Pad with zeros, pads (0, t, l, 0, 0, b, r, 0)
    Cropping2D                       Slice rows t … H − b, columns l … W − r
    GaussianNoise, GaussianDropout, SpatialDropout2D, InputLayer    nothing (inference)
    Rescaling                        x·scale + offset (lists: one value per channel)
    PReLU                            PRelu(x, α), α (input_shape[1:] with 1 on shared_axes)
                                     broadcasting as NumPy
"""
import numpy as np

from tidu import layers as L
from tidu.export.onnx_graph import converter
from tidu.export.onnx_layers import TO_NCHW, TO_NHWC, _array

__all__ = []

_END = np.iinfo(np.int64).max   # Slice's "to the end"


def _inputs(x, shape):
    """(names, shapes) of a merge's inputs; one input comes as a name and its shape."""
    return ([x], [shape]) if isinstance(x, str) else (list(x), list(shape))


def _aligned(g, x, shape):
    """The inputs, each of fewer dimensions than the largest given new axes 1, 2, … after
    the batch axis."""
    xs, shapes = _inputs(x, shape)
    rank = max(len(s) for s in shapes)
    return [x if len(s) == rank else g.op("Unsqueeze", [x, g.ints(list(range(1, rank - len(s) + 1)),
                                                                  "axes")])
            for x, s in zip(xs, shapes)]


def _variadic(op_type):
    def convert(g, layer, x, shape):
        return g.op(op_type, _aligned(g, x, shape))
    return convert


converter(L.Add)(_variadic("Sum"))
converter(L.Average)(_variadic("Mean"))
converter(L.Maximum)(_variadic("Max"))
converter(L.Minimum)(_variadic("Min"))


@converter(L.Subtract)
def subtract(g, layer, x, shape):
    return g.op("Sub", _aligned(g, x, shape))


@converter(L.Multiply)
def multiply(g, layer, x, shape):
    xs = _aligned(g, x, shape)
    y = xs[0]
    for other in xs[1:]:
        y = g.op("Mul", [y, other])
    return y


@converter(L.Concatenate)
def concatenate(g, layer, x, shape):
    return g.op("Concat", _inputs(x, shape)[0], axis=layer.axis)


@converter(L.RepeatVector)
def repeat_vector(g, layer, x, shape):
    column = g.op("Unsqueeze", [x, g.ints([1], "axes")])
    return g.op("Expand", [column, g.ints([1, layer.n, 1])])


@converter(L.Permute)
def permute(g, layer, x, shape):
    return g.op("Transpose", [x], perm=[0, *layer.dims])


@converter(L.UpSampling2D)
def up_sampling_2d(g, layer, x, shape):
    if layer.interpolation == "bilinear":
        modes = dict(mode="linear", coordinate_transformation_mode="half_pixel")
    else:
        modes = dict(mode="nearest", coordinate_transformation_mode="asymmetric",
                     nearest_mode="floor")
    scales = g.const([1, 1, *layer.size], "scales", dtype=np.float32)
    t = g.op("Transpose", [x], perm=TO_NCHW)
    return g.op("Transpose", [g.op("Resize", [t, "", scales], **modes)], perm=TO_NHWC)


@converter(L.ZeroPadding2D)
def zero_padding_2d(g, layer, x, shape):
    (t, b), (l, r) = layer.padding
    return g.op("Pad", [x, g.ints([0, t, l, 0, 0, b, r, 0], "pads")])


@converter(L.Cropping2D)
def cropping_2d(g, layer, x, shape):
    (t, b), (l, r) = layer.cropping
    ends = [-b if b else _END, -r if r else _END]
    return g.op("Slice", [x, g.ints([t, l], "starts"), g.ints(ends, "ends"),
                          g.ints([1, 2], "axes")])


@converter(L.GaussianNoise, L.GaussianDropout, L.SpatialDropout2D, L.InputLayer)
def inference_identity(g, layer, x, shape):
    return x


@converter(L.Rescaling)
def rescaling(g, layer, x, shape):
    """y = x·scale + offset (no Add for offset 0)."""
    y = g.op("Mul", [x, g.const(layer.scale, "scale")])
    if layer.offset == 0:
        return y
    return g.op("Add", [y, g.const(layer.offset, "offset")])


@converter(L.PReLU)
def prelu(g, layer, x, shape):
    return g.op("PRelu", [x, g.const(_array(layer.alpha), "alpha")])
