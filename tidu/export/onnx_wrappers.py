"""ONNX converters of the wrappers, Bidirectional and TimeDistributed: the inner layers'
converters (convert_layer), with the wrapper's own steps around them.

    Bidirectional      y_f = forward_layer(x), y_b = backward_layer(x), each its own
                       recurrent op (the backward layer's go_backwards reverses x in time);
                       with return_sequences y_b is reversed back in time (Slice, step −1);
                       then Concat(y_f, y_b) on the last axis | Add | Mul | ½·Add for
                       merge_mode 'concat' | 'sum' | 'mul' | 'ave'
    TimeDistributed    Reshape (N, T, …) -> (N·T, …), the inner layer, Reshape back to
                       (N, T, …'): both shapes read at run time (Shape), so N and T are free
merge_mode None and return_state give several outputs, which the export refuses.
"""
import numpy as np

from tidu import layers as L
from tidu.export.onnx_graph import convert_layer, converter

__all__ = []


def _reverse_time(g, x):
    """x[:, ::−1]."""
    return g.op("Slice", [x, g.ints([-1], "starts"), g.ints([np.iinfo(np.int64).min], "ends"),
                          g.ints([1], "axes"), g.ints([-1], "steps")])


def _scoped(g, scope, layer, x, shape):
    """convert_layer with the graph's names under '<scope>/<inner layer>'."""
    outer = g.scope
    g.scope = f"{scope}/{layer.name}"
    try:
        return convert_layer(g, layer, x, shape)
    finally:
        g.scope = outer


@converter(L.Bidirectional, inner=lambda l: [l.forward_layer, l.backward_layer])
def bidirectional(g, layer, x, shape):
    scope = g.scope
    y = _scoped(g, scope, layer.forward_layer, x, shape)
    y_rev = _scoped(g, scope, layer.backward_layer, x, shape)
    if layer.return_sequences:
        y_rev = _reverse_time(g, y_rev)
    mode = layer.merge_mode
    if mode == "concat":
        return g.op("Concat", [y, y_rev], axis=-1)
    if mode == "mul":
        return g.op("Mul", [y, y_rev])
    total = g.op("Add", [y, y_rev])
    return total if mode == "sum" else g.op("Mul", [total, g.const(0.5, "half")])


@converter(L.TimeDistributed, inner=lambda l: [l.layer])
def time_distributed(g, layer, x, shape):
    folded = g.op("Reshape", [x, g.op("Concat", [g.ints([-1], "fold"),
                                                  g.op("Shape", [x], start=2)], axis=0)])
    y = _scoped(g, g.scope, layer.layer, folded, (None, *shape[2:]))
    unfolded = g.op("Concat", [g.op("Shape", [x], end=2), g.op("Shape", [y], start=1)], axis=0)
    return g.op("Reshape", [y, unfolded])
