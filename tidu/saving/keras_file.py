"""Keras 3 `.keras` files: `load_keras` reads one written by Keras 3's `model.save` (and
saving.keras_writer's `save_keras` writes one Keras 3's `keras.models.load_model` reads).

A .keras file is a zip of three members:
    metadata.json     {"keras_version", "date_saved"}
    config.json       the model: {"class_name": "Sequential" | "Functional", "config": {...},
                      "compile_config": {optimizer, loss, metrics, ...} or null}
    model.weights.h5  HDF5; the weights of the i-th layer (InputLayers counted in a functional
                      model, not in a Sequential) under layers/<path>/vars/0, 1, ..., where
                      <path> is the snake_case class name, made unique by _1, _2, ... in order
                      ('dense', 'dense_1', ...); a recurrent layer's under
                      layers/<path>/cell/vars; a wrapper's nested layer's under its attribute's
                      name, the same way again (layers/bidirectional/forward_layer/cell/vars,
                      layers/time_distributed/layer/vars).
Layer configs are translated key by key through saving.keras_layers (one Entry per class);
a wrapper's nested layer (Bidirectional, TimeDistributed) is translated by its own Entry;
a class without an Entry, a Lambda layer, or a value tidu cannot honour is refused.

The safety rules of tidu's own format hold (saving.archive): no code runs (config.json and
metadata.json are parsed as JSON, model.weights.h5 read with h5py: datasets only, each a hard
link, contiguous, unfiltered, not external or virtual); the container is checked first
(exactly these members, not encrypted, JSON at most 16 MiB, the h5 stored uncompressed so its
size is that of the bytes in the file); the model is built with zeros from a budget no larger
than the h5 (a tampered 'units', nested or not, cannot allocate gigabytes); then every array's
shape and dtype is checked against the model's weights before any is set. Any failure raises ModelFileError
and leaves nothing behind. Writing is atomic (tidu.utils.atomic_write).
"""
import io
import math
import zipfile

import numpy as np

from tidu import backend
from tidu.errors import ModelFileError
from tidu.layers.input_layer import Input, InputLayer
from tidu.saving import keras_compile, schema
from tidu.saving.archive import (BuildBudget, clip, fail, parse_json, read_zip, short,
                                 source_and_name)
from tidu.saving.keras_layers import (TranslationError, dtype_to_tidu, entry_for_keras,
                                      entry_for_layer, known_keras_classes, snake_case)

__all__ = ["load_keras", "is_keras_archive", "member_names", "h5_names", "require_h5py",
           "KERAS_MEMBERS"]

METADATA, CONFIG, H5 = "metadata.json", "config.json", "model.weights.h5"
KERAS_MEMBERS = (METADATA, CONFIG, H5)
MAX_JSON_BYTES = 16 << 20
MAX_H5_BYTES = 16 << 30
BUILD_SLACK = 64 << 20   # bytes a model may allocate beyond the h5's size while it is built


def require_h5py():
    try:
        import h5py
    except ImportError:
        raise ImportError(".keras files need h5py: pip install tidu[keras]") from None
    return h5py


# --- the container ---------------------------------------------------------------------------
def member_names(source):
    """The member names of a zip (path or binary file object), or None if it is not one."""
    here = None if isinstance(source, str) else source.tell()
    try:
        with zipfile.ZipFile(source) as zf:
            return zf.namelist()
    except Exception:
        return None
    finally:
        if here is not None:
            source.seek(here)


def is_keras_archive(source):
    names = member_names(source)
    return names is not None and sorted(names) == sorted(KERAS_MEMBERS)


def read_members(filepath):
    """{member: bytes} of a .keras file, after checking the container (module docstring)."""
    return read_zip(filepath, ".keras file", KERAS_MEMBERS, text=(METADATA, CONFIG),
                    text_limit=MAX_JSON_BYTES, blob_limit=MAX_H5_BYTES)


def open_h5(path, blob):
    h5py = require_h5py()
    try:
        return h5py.File(io.BytesIO(blob), "r")
    except Exception as e:
        raise fail(path, f"{H5} is not a valid HDF5 file ({type(e).__name__}: "
                          f"{clip(str(e), 200)})") from None


# --- reading: the model ----------------------------------------------------------------------
class Builder:
    """Makes tidu layers from Keras layer configs, each initializer replaced by the budget
    (the translated ones are put back by `restore` once everything is checked)."""

    def __init__(self, path, budget):
        self.path, self.budget = path, budget
        self.initializers = []   # (layer, attribute, translated initializer)

    def layer(self, lc):
        class_name, config = layer_parts(self.path, lc)
        entry = entry_for_keras(class_name)
        if entry is None:
            raise refused(self.path, class_name, config.get("name"))
        try:
            kwargs = entry.to_tidu(config)
        except TranslationError as e:
            raise fail(self.path, f"{CONFIG}: {e}") from None
        try:
            layer = entry.tidu_cls(**kwargs)
        except Exception as e:
            raise fail(self.path, f"{CONFIG}: {class_name} {config.get('name')!r} cannot be made: "
                                   f"{type(e).__name__}: {clip(str(e), 300)}") from None
        for inner in sublayers(layer):   # a wrapper's nested layers too
            for key, init in list(vars(inner).items()):
                if key.endswith("_initializer") and init is not None:
                    self.initializers.append((inner, key, init))
                    setattr(inner, key, self.budget)
        return entry, layer

    def restore(self):
        for layer, key, init in self.initializers:
            setattr(layer, key, init)


def sublayers(layer):
    """The layer and, depth first, the layers nested in it (a wrapper's, per its Entry)."""
    entry = entry_for_layer(layer)
    inner = [getattr(layer, attr) for attr in entry.nested.values()] if entry else []
    return [layer, *(l for i in inner for l in sublayers(i))]


def layer_parts(path, lc):
    if not isinstance(lc, dict) or not isinstance(lc.get("class_name"), str) \
            or not isinstance(lc.get("config"), dict):
        raise fail(path, f"{CONFIG}: expected a layer {{class_name, config}}, got {short(lc)}")
    return lc["class_name"], lc["config"]


def refused(path, class_name, name):
    if class_name == "Lambda":
        why = "Lambda layers hold Python code, which a model file never runs"
    elif class_name in ("Sequential", "Functional", "Model"):
        why = "nested models are not supported in .keras files yet"
    else:
        why = f"tidu translates {', '.join(known_keras_classes())}"
    return fail(path, f"{CONFIG}: layer {name!r} of class {class_name!r} cannot be loaded: {why}")


def input_of(path, lc):
    """(shape without the batch axis, dtype, name) of a Keras InputLayer config."""
    config = lc["config"]
    for key, default in (("sparse", False), ("ragged", False), ("optional", False)):
        if config.get(key, default) is not default:
            raise fail(path, f"{CONFIG}: InputLayer {config.get('name')!r}: {key}="
                              f"{short(config.get(key))} is not supported")
    unknown = set(config) - {"batch_shape", "batch_input_shape", "dtype", "sparse", "ragged",
                             "name", "optional", "batch_size"}
    if unknown:
        raise fail(path, f"{CONFIG}: InputLayer: unknown config key(s) {sorted(unknown)}")
    shape = config.get("batch_shape", config.get("batch_input_shape"))
    if not isinstance(shape, list) or len(shape) < 2 or not all(
            isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape[1:]):
        raise fail(path, f"{CONFIG}: InputLayer {config.get('name')!r}: expected batch_shape "
                          f"[null, positive ints...], got {short(shape)}")
    try:
        dtype = dtype_to_tidu(config.get("dtype"), "InputLayer: dtype")
    except TranslationError as e:
        raise fail(path, f"{CONFIG}: {e}") from None
    return tuple(shape[1:]), dtype, config.get("name")


def h5_names(class_names):
    """Keras' unique path names in model.weights.h5 for layers of these classes, in order."""
    used, out = {}, []
    for c in class_names:
        base = snake_case(c)
        if base in used:
            used[base] += 1
            out.append(f"{base}_{used[base]}")
        else:
            used[base] = 0
            out.append(base)
    return out


def build_sequential(path, config, builder):
    """(model, [(h5 name, entry, layer)])."""
    cls = schema.model_class("Sequential")
    lcs = config.get("layers")
    if not isinstance(lcs, list) or not lcs:
        raise fail(path, f"{CONFIG}: a Sequential model needs a list of layers")
    shape = dtype = None
    if layer_parts(path, lcs[0])[0] == "InputLayer":
        shape, dtype, _ = input_of(path, lcs[0])
        lcs = lcs[1:]
    elif isinstance(config.get("build_input_shape"), list):
        shape = tuple(config["build_input_shape"][1:])
    if shape is None:
        raise fail(path, f"{CONFIG}: the Sequential model has no input shape, so its weights "
                          f"cannot be made")
    model = cls(name=config.get("name"))
    model.add(InputLayer(input_shape=shape, dtype=dtype))
    made = []
    for lc in lcs:
        entry, layer = builder.layer(lc)
        try:
            model.add(layer)
        except ModelFileError:
            raise
        except Exception as e:
            raise fail(path, f"{CONFIG}: layer {layer.name!r} does not fit the model: "
                              f"{type(e).__name__}: {clip(str(e), 300)}") from None
        made.append((entry, layer))
    names = h5_names([e.keras_name for e, _ in made])
    return model, [(n, e, l) for n, (e, l) in zip(names, made)]


def history_of(path, value):
    """[layer name, node index, tensor index] of a serialized Keras tensor."""
    if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
        h = (value.get("config") or {}).get("keras_history")
    else:
        h = value
    if not (isinstance(h, list) and len(h) == 3 and isinstance(h[0], str)
            and all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in h[1:])):
        raise fail(path, f"{CONFIG}: expected a tensor reference [layer, node, index], got {short(h)}")
    if h[2] != 0:
        raise fail(path, f"{CONFIG}: {short(h)}: layers with several outputs are not supported")
    return h


def single_end(path, value, what):
    """The one [layer, node, index] of input_layers / output_layers."""
    if isinstance(value, list) and value and isinstance(value[0], list):
        if len(value) != 1:
            raise fail(path, f"{CONFIG}: the model has {len(value)} {what}s; tidu models have one")
        value = value[0]
    return history_of(path, value)


def node_inputs(path, layer_name, node):
    """The tensor references a node of `layer_name` is called on (one, or a list: a merge)."""
    if not isinstance(node, dict) or not isinstance(node.get("args"), list) \
            or len(node["args"]) != 1:
        raise fail(path, f"{CONFIG}: layer {layer_name!r}: expected a node {{args: [inputs], "
                          f"kwargs}}, got {short(node)}")
    kwargs = node.get("kwargs") or {}
    if not isinstance(kwargs, dict) or any(v is not None for v in kwargs.values()):
        raise fail(path, f"{CONFIG}: layer {layer_name!r} is called with {short(kwargs)}; call "
                          f"arguments are not supported")
    arg = node["args"][0]
    if isinstance(arg, list) and arg and not isinstance(arg[0], str):
        return [history_of(path, a) for a in arg]
    return history_of(path, arg)


def build_functional(path, config, builder):
    """(model, [(h5 name, entry, layer)]): the graph rebuilt node by node in an order where
    every node comes after the nodes it reads."""
    lcs = config.get("layers")
    if not isinstance(lcs, list) or not lcs:
        raise fail(path, f"{CONFIG}: a functional model needs a list of layers")
    in_ref = single_end(path, config.get("input_layers"), "input")
    out_ref = single_end(path, config.get("output_layers"), "output")
    tensors = {}              # (layer name, node index) -> SymbolicTensor
    pending, made, classes = [], [], []
    for lc in lcs:
        class_name, lconf = layer_parts(path, lc)
        classes.append(class_name)
        if class_name == "InputLayer":
            shape, dtype, name = input_of(path, lc)
            if name != in_ref[0]:
                raise fail(path, f"{CONFIG}: input {name!r} is not the model's input "
                                  f"{in_ref[0]!r}; tidu models have one input")
            tensors[(name, 0)] = Input(shape, name=name, dtype=dtype)
            made.append((None, None))
            continue
        entry, layer = builder.layer(lc)
        made.append((entry, layer))
        nodes = lc.get("inbound_nodes")
        if not isinstance(nodes, list) or not nodes:
            raise fail(path, f"{CONFIG}: layer {layer.name!r} has no inbound_nodes")
        pending += [(layer, i, node_inputs(path, layer.name, n)) for i, n in enumerate(nodes)]
    while pending:
        left = []
        for layer, i, refs in pending:
            flat = refs if isinstance(refs[0], list) else [refs]
            if not all((r[0], r[1]) in tensors for r in flat):
                left.append((layer, i, refs))
                continue
            args = [tensors[(r[0], r[1])] for r in flat]
            try:
                tensors[(layer.name, i)] = layer(args if isinstance(refs[0], list) else args[0])
            except ModelFileError:
                raise
            except Exception as e:
                raise fail(path, f"{CONFIG}: layer {layer.name!r} cannot be called on its inputs: "
                                  f"{type(e).__name__}: {clip(str(e), 300)}") from None
        if len(left) == len(pending):
            raise fail(path, f"{CONFIG}: layer(s) {sorted({l.name for l, _, _ in left})} read "
                              f"tensors no layer makes")
        pending = left
    if (out_ref[0], out_ref[1]) not in tensors:
        raise fail(path, f"{CONFIG}: output {short(out_ref)} is made by no layer")
    try:
        model = schema.model_class("Model")(tensors[(in_ref[0], 0)], tensors[(out_ref[0], out_ref[1])],
                                            name=config.get("name"))
    except Exception as e:
        raise fail(path, f"{CONFIG}: the graph cannot be made into a model: {type(e).__name__}: "
                          f"{clip(str(e), 300)}") from None
    names = h5_names(classes)
    return model, [(n, e, l) for n, (e, l) in zip(names, made) if e is not None]


def h5_child(path, group, key, where, kind):
    """group[key] when it is a hard link to a `kind` ('group' or 'dataset'), else None if
    absent; ModelFileError for anything else (soft or external links)."""
    h5py = require_h5py()
    link = group.get(key, getlink=True)
    if link is None:
        return None
    if not isinstance(link, h5py.HardLink):
        raise fail(path, f"{H5}: {where} is a {type(link).__name__}; only plain groups and "
                          f"datasets are read")
    obj = group[key]
    want = h5py.Group if kind == "group" else h5py.Dataset
    if not isinstance(obj, want):
        raise fail(path, f"{H5}: {where} is not a {kind}")
    return obj


def read_weights(path, h5, plan):
    """[(param, array)] for every weight of the plan [(h5 name, entry, layer)], each checked
    (shape, dtype, plain contiguous storage) before it is read."""
    root = h5_child(path, h5, "layers", "/layers", "group")
    names = {n for n, _, _ in plan}
    if root is not None:
        extra = sorted(set(root.keys()) - names - {"input_layer"} - {
            n for n in root.keys() if n.startswith("input_layer_")})
        if extra:
            raise fail(path, f"{H5}: layers/{extra[0]} belongs to no layer of the model "
                              f"(its layers: {sorted(names)})")
    out = []
    for name, entry, layer in plan:
        groups = [((name, *sub, "vars"), params) for sub, _, params in entry.weight_groups(layer)]
        check_children(path, root, name, {g for g, _ in groups})
        for parts, params in groups:
            where = "layers/" + "/".join(parts)
            group = root
            for part in parts:
                group = None if group is None else h5_child(path, group, part, where, "group")
            keys = sorted(group.keys()) if group is not None else []
            want = sorted(str(i) for i in range(len(params)))
            if keys != want:
                raise fail(path, f"{H5}: {where} holds {short(keys)}, but {type(layer).__name__} "
                                  f"{layer.name!r} has {len(params)} weight(s) there")
            for i, p in enumerate(params):
                ds = h5_child(path, group, str(i), f"{where}/{i}", "dataset")
                out.append((p, read_dataset(path, ds, p, f"{where}/{i}")))
    return out


def check_children(path, root, name, paths):
    """Every group under layers/<name> lies on one of `paths` (tuples of group names from
    <name> down to a vars group): nothing the model has no weight for."""
    group = None if root is None else h5_child(path, root, name, f"layers/{name}", "group")
    todo = [(group, (name,))] if group is not None else []
    while todo:
        group, at = todo.pop()
        allowed = {p[len(at)] for p in paths if p[:len(at)] == at and len(p) > len(at)}
        if at in paths:
            continue
        for key in group.keys():
            if key not in allowed:
                raise fail(path, f"{H5}: layers/{'/'.join((*at, key))} belongs to no weight of "
                                  f"the model")
            todo.append((h5_child(path, group, key, "layers/" + "/".join((*at, key)), "group"),
                         (*at, key)))


def read_dataset(path, ds, p, where):
    shape, dtype = tuple(ds.shape or ()), ds.dtype
    if shape != tuple(p.shape) or dtype != np.dtype(p.dtype):
        raise fail(path, f"{H5}: {where} has shape {shape} and dtype {dtype}, but weight "
                          f"{p.name!r} has shape {tuple(p.shape)} and dtype {p.dtype}")
    if ds.chunks is not None or ds.compression is not None or ds.external or ds.is_virtual:
        raise fail(path, f"{H5}: {where} is chunked, compressed, external or virtual; Keras "
                          f"writes plain contiguous datasets")
    if ds.id.get_storage_size() != math.prod(shape) * dtype.itemsize:
        raise fail(path, f"{H5}: {where} stores {ds.id.get_storage_size()} bytes, not the "
                          f"{math.prod(shape) * dtype.itemsize} its shape needs")
    try:
        return np.asarray(ds[()], dtype=dtype)
    except Exception as e:
        raise fail(path, f"{H5}: {where} cannot be read ({type(e).__name__}: {e})") from None


def load_keras(filepath, compile=True):
    """The model in a .keras file written by Keras 3 (or by save_keras); see the module
    docstring for what is checked."""
    _, path = source_and_name(filepath)
    members = read_members(filepath)
    meta = parse_json(path, members[METADATA])
    if not isinstance(meta, dict):
        raise fail(path, f"{METADATA}: expected a JSON object, got {short(meta)}")
    top = parse_json(path, members[CONFIG])
    if not isinstance(top, dict) or not isinstance(top.get("config"), dict):
        raise fail(path, f"{CONFIG}: expected a model {{class_name, config}}, got {short(top)}")
    builder = Builder(path, BuildBudget(path, len(members[H5]) + BUILD_SLACK, H5, BUILD_SLACK))
    kind = top.get("class_name")
    if kind == "Sequential":
        model, plan = build_sequential(path, top["config"], builder)
    elif kind in ("Functional", "Model"):
        model, plan = build_functional(path, top["config"], builder)
    else:
        raise fail(path, f"{CONFIG}: model class {short(kind)} is not supported (Sequential or "
                          f"a functional Model; subclassed models hold Python code)")
    with open_h5(path, members[H5]) as h5:
        try:
            values = read_weights(path, h5, plan)
        except ModelFileError:
            raise
        except Exception as e:  # whatever a mangled HDF5 provokes inside h5py
            raise fail(path, f"{H5} is corrupted ({type(e).__name__}: {clip(str(e), 200)})") from None
    if len(values) != len(model.weights):
        raise fail(path, f"{H5}: {len(values)} weights read, the model has {len(model.weights)}")
    if compile and top.get("compile_config"):
        keras_compile.compile_from_keras(model, top["compile_config"], path)
    builder.restore()
    for p, v in values:  # everything checked: now write
        p.data[...] = backend.as_array(v, p.dtype)
    return model
