"""Writing a tidu model as a Keras 3 `.keras` file (the format: saving.keras_file).

Each layer's config comes from its Entry in saving.keras_layers; a layer without one, or with
a setting Keras has no word for, is refused with a ValueError before anything is written.
A functional model's tensors are rebuilt symbolically from model.get_config() for the shapes
Keras records. The compile configuration is written when the names map
(saving.keras_compile); the optimizer state is not. Writing is atomic (tidu.utils.atomic_write).
"""
import collections
import datetime
import io
import json
import os
import zipfile

import numpy as np

from tidu import backend
from tidu.layers.input_layer import Input
from tidu.saving import keras_compile, schema
from tidu.saving.archive import check_overwrite
from tidu.saving.keras_file import CONFIG, H5, METADATA, h5_names, require_h5py
from tidu.saving.keras_layers import (ENTRIES, REFUSED, TranslationError, dtype_to_keras,
                                      entry_for_layer)
from tidu.utils import atomic_write

__all__ = ["save_keras"]

KERAS_VERSION = "3.15.1"  # the Keras whose format this writes


def layer_config(layer, input_shape):
    """{module, class_name, config, registered_name, build_config} of a tidu layer."""
    entry = entry_for_layer(layer)
    if type(layer) in REFUSED:
        raise ValueError(f"save: layer {layer.name!r} of class {type(layer).__name__} cannot be "
                         f"written to a .keras file: {REFUSED[type(layer)]}")
    if entry is None:
        raise ValueError(f"save: layer {layer.name!r} of class {type(layer).__name__} cannot be "
                         f"written to a .keras file; supported: "
                         f"{', '.join(sorted(e.tidu_cls.__name__ for e in ENTRIES))}")
    try:
        config = entry.to_keras(layer)
        entry.weight_groups(layer)   # a nested layer without an Entry is refused here too
    except TranslationError as e:
        raise ValueError(f"save: {e}") from None
    return entry, {"module": "keras.layers", "class_name": entry.keras_name, "config": config,
                   "registered_name": None, "build_config": {"input_shape": input_shape}}


def input_config(shape, dtype, name):
    return {"module": "keras.layers", "class_name": "InputLayer",
            "config": {"batch_shape": [None, *shape], "dtype": dtype, "sparse": False,
                       "ragged": False, "name": name, "optional": False},
            "registered_name": None}


def keras_tensor(shape, dtype, history):
    return {"class_name": "__keras_tensor__",
            "config": {"shape": list(shape), "dtype": dtype, "keras_history": history}}


def sequential_config(model):
    """(config.json's model, [(h5 name, entry, layer)])."""
    shape = list(model.input_shape)
    dtype = backend.floatx()
    lcs, made = [input_config(shape[1:], dtype, f"{model.name}_input")], []
    for layer in model.layers:
        entry, lc = layer_config(layer, list(shape))
        lcs.append(lc)
        made.append((entry, layer))
        shape = list(layer.compute_output_shape(tuple(shape)))
    names = h5_names([e.keras_name for e, _ in made])
    config = {"name": model.name, "trainable": model.trainable, "dtype": dtype_to_keras(dtype),
              "layers": lcs, "build_input_shape": list(model.input_shape)}
    return ({"module": "keras", "class_name": "Sequential", "config": config,
             "registered_name": None, "build_config": {"input_shape": list(model.input_shape)}},
            [(n, e, l) for n, (e, l) in zip(names, made)])


def functional_config(model):
    """(config.json's model, [(h5 name, entry, layer)]): the graph of model.get_config()'s
    nodes, rebuilt symbolically for the shapes of the tensors between them."""
    gc = model.get_config()
    by_name = {layer.name: layer for layer in model.layers}
    inp = Input(tuple(gc["input_shape"]), dtype=gc.get("input_dtype"))
    in_name = gc.get("input_name") or "input"
    in_hist = keras_tensor([None, *gc["input_shape"]], inp.dtype, [in_name, 0, 0])
    outs, hist, calls, nodes = [], [], collections.Counter(), {}
    for node in gc["nodes"]:
        layer = by_name[node["layer"]]
        if node.get("kwargs"):
            raise ValueError(f"save: layer {layer.name!r} is called with {node['kwargs']}; a "
                             f".keras file cannot hold call arguments")
        args = [inp if s == "input" else outs[s] for s in node["inbound"]]
        refs = [in_hist if s == "input" else hist[s] for s in node["inbound"]]
        out = layer(layer.call_arguments(args))
        i = calls[layer.name]
        calls[layer.name] += 1
        outs.append(out)
        hist.append(keras_tensor(out.shape, out.dtype, [layer.name, i, 0]))
        nodes.setdefault(layer.name, []).append(
            ({"args": [refs[0] if len(refs) == 1 else refs], "kwargs": {}},
             [a.shape for a in args]))
    ic = input_config(gc["input_shape"], inp.dtype, in_name)
    ic.update(name=in_name, inbound_nodes=[])
    lcs, made, classes = [ic], [], ["InputLayer"]
    for layer in model.layers:
        shapes = [list(s) for s in nodes[layer.name][0][1]]
        entry, lc = layer_config(layer, shapes[0] if len(shapes) == 1 else shapes)
        lc.update(name=layer.name, inbound_nodes=[n for n, _ in nodes[layer.name]])
        lcs.append(lc)
        made.append((entry, layer))
        classes.append(entry.keras_name)
    last = hist[-1]["config"]["keras_history"]
    config = {"name": model.name, "trainable": model.trainable, "layers": lcs,
              "input_layers": [in_name, 0, 0], "output_layers": last}
    names = h5_names(classes)[1:]
    return ({"module": "keras.src.models.functional", "class_name": "Functional",
             "config": config, "registered_name": "Functional",
             "build_config": {"input_shape": [None, *gc["input_shape"]]}},
            [(n, e, l) for n, (e, l) in zip(names, made)])


def h5_bytes(model, plan):
    h5py = require_h5py()
    buf = io.BytesIO()
    with h5py.File(buf, "w") as h5:
        h5.create_group("vars").attrs["name"] = model.name
        layers = h5.create_group("layers")
        if schema.model_class("Sequential") is None or not isinstance(
                model, schema.model_class("Sequential")):
            layers.create_group("input_layer").create_group("vars").attrs["name"] = "input_layer"
        for name, entry, layer in plan:
            for sub, vars_name, params in entry.weight_groups(layer):
                group = layers.require_group(name)
                for part in sub:
                    group = group.require_group(part)
                vars_ = group.create_group("vars")
                vars_.attrs["name"] = vars_name
                for i, p in enumerate(params):
                    vars_.create_dataset(str(i), data=np.asarray(backend.to_numpy(p.data)))
    return buf.getvalue()


def save_keras(model, filepath, overwrite=True):
    """Write `model` as a Keras 3 .keras file, atomically."""
    filepath = os.fspath(filepath)
    check_overwrite(filepath, overwrite)
    sequential = schema.model_class("Sequential")
    if sequential is not None and isinstance(model, sequential):
        top, plan = sequential_config(model)
    else:
        top, plan = functional_config(model)
    top["compile_config"] = keras_compile.compile_to_keras(model)
    config = json.dumps(top, allow_nan=False).encode("utf-8")
    meta = json.dumps({"keras_version": KERAS_VERSION,
                       "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S")})
    weights = h5_bytes(model, plan)

    def write(f):
        with zipfile.ZipFile(f, "w") as zf:
            zf.writestr(METADATA, meta, compress_type=zipfile.ZIP_STORED)
            zf.writestr(CONFIG, config, compress_type=zipfile.ZIP_STORED)
            zf.writestr(H5, weights, compress_type=zipfile.ZIP_STORED)

    atomic_write(filepath, write)
