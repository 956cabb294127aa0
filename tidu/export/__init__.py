"""Export a model to another framework's format: `model.export("m.onnx", format="onnx")`.

    onnx   an ONNX model (opset 18 by default) that onnxruntime and other runtimes run: the
           inference forward pass (Dropout off, BatchNormalization with its moving statistics),
           input 'input' and output 'output' with a symbolic batch axis 'batch'. Needs the
           optional onnx package (pip install tidu[onnx]). One converter per layer class
           (tidu.export.onnx_graph.CONVERTERS); a model with a layer that has none is refused,
           naming it, before anything is written. The file is written atomically.

Keras 3's other formats (tf_saved_model, openvino, litert) are not supported.
"""
import os

from tidu.export import (onnx_conv, onnx_layers, onnx_recurrent, onnx_reshaping,  # noqa: F401
                         onnx_wrappers)  # (they fill CONVERTERS)
from tidu.export.onnx_graph import CONVERTERS, OPSET, converter, model_proto
from tidu.utils import atomic_write

__all__ = ["export", "export_onnx", "FORMATS", "CONVERTERS", "OPSET", "converter", "model_proto"]


def export_onnx(model, filepath, opset_version=None):
    """Write `model` as an ONNX file at `filepath` (atomically); returns the path."""
    opset = OPSET if opset_version is None else opset_version
    if isinstance(opset, bool) or not isinstance(opset, int) or opset < OPSET:
        raise ValueError(f"export: expected opset_version an int >= {OPSET}, got {opset_version!r}")
    proto = model_proto(model, opset)  # everything is checked before the file is touched
    data = proto.SerializeToString()
    atomic_write(filepath, lambda f: f.write(data))
    return os.fspath(filepath)


FORMATS = {"onnx": export_onnx}


def export(model, filepath, format="onnx", verbose=None, **kwargs):
    """Write `model` to `filepath` in `format` (one of FORMATS); keyword arguments go to the
    format's writer (onnx: opset_version). verbose=True prints where it went."""
    if format not in FORMATS:
        raise ValueError(f"export: format {format!r} is not supported; supported formats: "
                         f"{', '.join(repr(f) for f in FORMATS)}")
    path = FORMATS[format](model, filepath, **kwargs)
    if verbose:
        print(f"Saved {format} model to {path}")
    return path
