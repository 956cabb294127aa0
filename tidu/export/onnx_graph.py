"""The ONNX graph of a tidu model: a builder, the table of layer converters, and the walk.

A converter is one function per layer class, `convert(g, layer, x, shape) -> y`: x is the name
of the layer's input in the graph (a list of names for a layer called on several inputs),
shape its tidu shape (None for the batch axis; a list of shapes for several inputs), and y the
name of the output. It adds nodes and weights through `g` (an OnnxGraph) and imports nothing
from onnx itself. Register one with `@converter(LayerClass)`; a layer is looked up by its exact
class, so a subclass with its own `call` is never exported as its parent.

The walk follows the model's steps (tidu.models.graph: a Sequential's chain or a functional
model's traced graph) in run order, the output shape of each step from the layer's
compute_output_shape, a nested model's steps inline.
"""
import collections

import numpy as np

from tidu import backend
from tidu.errors import NotBuiltError
from tidu.version import __version__

__all__ = ["OPSET", "CONVERTERS", "INNER_LAYERS", "OnnxGraph", "converter", "convert_layer",
           "model_proto", "require_onnx"]

OPSET = 18          # the default opset: LayerNormalization (17), Reduce* with axes as an input (18)

CONVERTERS = {}     # layer class -> convert(g, layer, x, shape)
INNER_LAYERS = {}   # wrapper class -> fn(layer) -> the layers its converter converts


def converter(*classes, inner=None):
    """Decorator: `fn` converts layers of exactly these classes; `inner(layer)` lists the
    layers a wrapper's converter converts in turn (with convert_layer)."""
    def register(fn):
        for cls in classes:
            CONVERTERS[cls] = fn
            if inner is not None:
                INNER_LAYERS[cls] = inner
        return fn
    return register


def require_onnx():
    """The onnx module, or an ImportError that says how to install it."""
    try:
        import onnx
    except ImportError as e:
        raise ImportError("ONNX export needs the onnx package, an optional dependency of tidu: "
                          "pip install tidu[onnx]  (or: pip install onnx)") from e
    return onnx


class OnnxGraph:
    """Nodes and weights of one ONNX graph, with unique names under the current layer's.

    `op(type, inputs, **attributes)` adds a node and returns its output's name; `const(array)`
    adds a weight of the model's float dtype (`ints` one of int64) and returns its name.
    """

    def __init__(self, onnx, dtype):
        self.onnx, self.helper = onnx, onnx.helper
        self.dtype = np.dtype(dtype)
        self.nodes, self.initializers = [], []
        self.scope = "model"
        self._used = collections.Counter()

    def name(self, hint):
        """A new name '<layer>/<hint>' (with a count when taken)."""
        base = f"{self.scope}/{hint}"
        self._used[base] += 1
        n = self._used[base]
        return base if n == 1 else f"{base}_{n - 1}"

    def op(self, op_type, inputs, outputs=1, **attributes):
        """Add an `op_type` node reading `inputs` ('' for an omitted optional input); its output
        name, or a list of `outputs` names when that is more than 1."""
        names = [self.name(op_type if outputs == 1 else f"{op_type}_{k}") for k in range(outputs)]
        attributes = {k: v for k, v in attributes.items() if v is not None}
        self.nodes.append(self.helper.make_node(op_type, list(inputs), names,
                                                name=self.name(f"{op_type}_node"), **attributes))
        return names[0] if outputs == 1 else names

    def const(self, value, hint="const", dtype=None):
        """A weight holding `value` as the graph's float dtype (or `dtype`: Resize's scales
        are float32 whatever the model's)."""
        return self._add(np.asarray(value, dtype=self.dtype if dtype is None else dtype), hint)

    def ints(self, values, hint="shape"):
        """A weight holding int64 `values` (shapes, axes, pads)."""
        return self._add(np.asarray(values, dtype=np.int64), hint)

    def _add(self, array, hint):
        name = self.name(hint)
        self.initializers.append(self.onnx.numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def tensor_type(self, dtype):
        """The ONNX element type of a NumPy dtype."""
        return self.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


def _steps_of(model):
    """The steps of a Sequential or functional model (tidu.models.graph.Step), or None for a
    subclassed model, whose `call` is Python code with no graph to export."""
    return getattr(model, "steps", None) or None


def _converter_for(layer):
    fn = CONVERTERS.get(type(layer))
    if fn is None and _steps_of(layer) is not None:
        return _nested_model
    return fn


def convert_layer(g, layer, x, shape):
    """The graph value of `layer` (a layer or a nested model) called on x of tidu shape
    `shape`: its converter's output."""
    return _converter_for(layer)(g, layer, x, shape)


def _unsupported(layers, found):
    """Add to `found` the 'Class 'name'' of every layer in `layers` (nested models and wrapped
    layers too) with no converter."""
    for layer in layers:
        fn = _converter_for(layer)
        if fn is None:
            found.append(f"{type(layer).__name__} '{layer.name}'")
        elif fn is _nested_model:
            _unsupported([s.layer for s in _steps_of(layer)], found)
        elif type(layer) in INNER_LAYERS:
            _unsupported(INNER_LAYERS[type(layer)](layer), found)
    return found


def _walk(g, steps, x, shape):
    """The output name and shape of `steps` run on the graph value `x` of tidu shape `shape`."""
    values, shapes = [], []
    for layer, inputs, kwargs in steps:
        if kwargs:
            raise ValueError(f"ONNX export: {type(layer).__name__} '{layer.name}' is called with "
                             f"{sorted(kwargs)}, which the export does not support")
        args = [x if k < 0 else values[k] for k in inputs]
        arg_shapes = [shape if k < 0 else shapes[k] for k in inputs]
        a, s = layer.call_arguments(args), layer.call_arguments(arg_shapes)
        out_shape = layer.compute_output_shape(s)
        if isinstance(out_shape, list):
            raise ValueError(f"ONNX export: {type(layer).__name__} '{layer.name}' has several "
                             f"outputs (return_state=True?); the export takes one per layer")
        g.scope = layer.name
        values.append(convert_layer(g, layer, a, s))
        shapes.append(tuple(out_shape))
    return values[-1], shapes[-1]


def _nested_model(g, model, x, shape):
    """A model used as a layer: its steps, inline."""
    y, _ = _walk(g, _steps_of(model), x, shape)
    return y


def _float_dtype(model):
    """The dtype of the model's weights (floatx for a model without any)."""
    return np.dtype(model.weights[0].dtype if model.weights else backend.floatx())


def _input_type(model):
    """(tidu input shape, NumPy dtype) of the model's input: integer ids (int64, or the
    functional Input's integer dtype) when the first layer reads them, else the float dtype."""
    shape = tuple(model.input_shape)
    if not getattr(model, "takes_integer_input", False):
        return shape, _float_dtype(model)
    inputs = getattr(model, "inputs", None) or []
    declared = np.dtype(inputs[0].dtype) if inputs else None
    return shape, declared if declared is not None and declared.kind in "iu" else np.dtype(np.int64)


def _value_info(g, name, dtype, shape):
    """A graph input/output description: the batch axis is the symbolic dimension 'batch',
    other unknown axes 'dim_<axis>'."""
    dims = ["batch" if i == 0 else (f"dim_{i}" if d is None else int(d))
            for i, d in enumerate(shape)]
    return g.helper.make_tensor_value_info(name, g.tensor_type(dtype), dims)


def model_proto(model, opset=OPSET):
    """The onnx ModelProto of a built Sequential or functional tidu model, checked with
    onnx.checker. Raises (naming the layers) if any layer has no converter."""
    onnx = require_onnx()
    label = f"{type(model).__name__} '{model.name}'"
    if not model.built:
        raise NotBuiltError(f"ONNX export: {label} is not built; give the first layer "
                            f"input_shape=..., or call build((None, ...)), fit or predict first")
    steps = _steps_of(model)
    if steps is None:
        raise ValueError(f"ONNX export: {label} is a subclassed Model (its call is Python "
                         f"code); only Sequential and functional models can be exported")
    missing = _unsupported([s.layer for s in steps], [])
    if missing:
        supported = sorted({cls.__name__ for cls in CONVERTERS})
        raise ValueError(f"ONNX export: no ONNX converter for {', '.join(missing)}. "
                         f"Layers that can be exported: {', '.join(supported)}")
    shape, in_dtype = _input_type(model)
    g = OnnxGraph(onnx, _float_dtype(model))
    y, out_shape = _walk(g, steps, "input", shape)
    g.scope = "model"
    g.nodes.append(g.helper.make_node("Identity", [y], ["output"], name=g.name("output")))
    graph = g.helper.make_graph(g.nodes, model.name, [_value_info(g, "input", in_dtype, shape)],
                                [_value_info(g, "output", g.dtype, out_shape)], g.initializers)
    proto = g.helper.make_model(graph, opset_imports=[g.helper.make_opsetid("", opset)],
                                producer_name="tidu", producer_version=__version__)
    # the oldest IR version that holds this opset, so older runtimes read the file
    proto.ir_version = onnx.helper.find_min_ir_version_for([g.helper.make_opsetid("", opset)])
    onnx.checker.check_model(proto, full_check=True)
    return proto
