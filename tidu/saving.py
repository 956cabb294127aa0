"""Model files: one zip archive, JSON and safetensors only, written atomically.

    model.save("mnist.tidu")                 # config.json + model.weights.safetensors + optimizer.safetensors
    model = tidu.models.load_model("mnist.tidu")

config.json           {"format": "tidu.model", "format_version": 1, "model": {class_name, config},
                       "compile": {optimizer, loss, metrics, loss_weights} or null,
                       "training": {"rng": the training generator's state} or null}
model.weights.safetensors   every weight, named '<layer name>/<weight name>' (Keras' order)
optimizer.safetensors       the optimizer's state_dict (step count, moments ...)

Writing goes to a temporary file in the target's directory, then `os.replace`: a crash leaves
the old file or the new one, never half of one. Loading checks everything before it builds
anything: that the file is an intact zip (CRC of every member) holding exactly these members,
that config.json is JSON of the expected schema (model class Sequential or Model, every layer
class one of tidu.layers', every argument a known one), and that the tensors' names, shapes
and dtypes are those of the model the config describes. Anything else raises
`tidu.errors.ModelFileError` saying what is wrong. Nothing is unpickled or evaluated: only
JSON and safetensors are parsed, and only tidu's own layer classes can be named.
"""
import inspect
import json
import os
import tempfile
import warnings
import zipfile
import zlib

import numpy as np

from tidu import backend
from tidu.errors import ModelFileError

__all__ = ["save_model", "load_model", "save_weights", "load_weights", "serialize_model",
           "deserialize_model", "atomic_write"]

FORMAT, FORMAT_VERSION = "tidu.model", 1
CONFIG, WEIGHTS, OPTIMIZER = "config.json", "model.weights.safetensors", "optimizer.safetensors"
MEMBERS = (CONFIG, WEIGHTS, OPTIMIZER)
MAX_CONFIG_BYTES = 16 << 20
MAX_TENSOR_BYTES = 16 << 30
MODEL_CLASSES = ("Sequential", "Model")
_BASE_LAYER_ARGS = {"name", "trainable", "dtype", "input_shape", "batch_input_shape", "input_dim"}
_DTYPES = ("float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool")


# --- writing -------------------------------------------------------------------------------
def atomic_write(path, write):
    """Call write(file) on a temporary file in path's directory, then rename it to path."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _check_overwrite(path, overwrite):
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")


def _weights_dict(model):
    out = {}
    for p in model.weights:
        if p.name in out:
            raise ValueError(f"save: two weights are named {p.name!r}; layer names in a model "
                             f"must be unique")
        out[p.name] = np.array(backend.to_numpy(p.data), copy=True)
    return out


def _safetensors_bytes(tensors):
    """safetensors bytes; the metadata keeps the names in order ('names', a JSON list), which
    the format's header (sorted by name) does not."""
    from safetensors.numpy import save
    # (np.ascontiguousarray would turn a 0-d array into shape (1,))
    return save({k: np.array(v, order="C", copy=not np.asarray(v).flags.c_contiguous)
                 for k, v in tensors.items()},
                metadata={"format": "tidu", "names": json.dumps(list(tensors))})


def serialize_model(model):
    """{'class_name': 'Sequential' | 'Model', 'config': model.get_config()}."""
    return {"class_name": type(model).__name__, "config": model.get_config()}


def _compile_config(model):
    from tidu import losses, metrics, optimizers

    if model.optimizer is None:
        return None
    try:
        return {"optimizer": optimizers.serialize(model.optimizer),
                "loss": losses.serialize(model.compiled_loss) if model.compiled_loss is not None else None,
                "metrics": [metrics.serialize(m) for m in model.compiled_metrics],
                "loss_weights": model.loss_weight}
    except ValueError as e:
        warnings.warn(f"save: the compile configuration is not saved ({e}); compile the model "
                      f"again after loading it")
        return None


def _rng_state(model):
    rng = getattr(model, "_rng", None)
    if rng is None:
        return None
    state = rng.bit_generator.state
    return json.loads(json.dumps(state, default=int))


def save_model(model, filepath, overwrite=True):
    """Write `model` (architecture, weights, compile configuration, optimizer state and the
    training generator's state) to one file, atomically."""
    from tidu.models.model import Model

    if not isinstance(model, Model):
        raise TypeError(f"save_model: expected a tidu Model, got {type(model).__name__}")
    if not model.built:
        raise ValueError(f"save: model '{model.name}' is not built yet (no weights); give the "
                         f"first layer input_shape=..., or fit / build it first")
    filepath = os.fspath(filepath)
    _check_overwrite(filepath, overwrite)
    config = {"format": FORMAT, "format_version": FORMAT_VERSION,
              "tidu_version": _version(), "model": serialize_model(model),
              "compile": _compile_config(model),
              "training": {"rng": _rng_state(model)}}
    config_bytes = json.dumps(config, indent=1, sort_keys=False).encode("utf-8")
    weights = _safetensors_bytes(_weights_dict(model))
    state = {}
    if model.optimizer is not None and config["compile"] is not None:
        state = {k: np.asarray(backend.to_numpy(v)) for k, v in model.optimizer.state_dict().items()}
    opt_bytes = _safetensors_bytes(state)

    def write(f):
        with zipfile.ZipFile(f, "w") as zf:
            zf.writestr(CONFIG, config_bytes, compress_type=zipfile.ZIP_DEFLATED)
            zf.writestr(WEIGHTS, weights, compress_type=zipfile.ZIP_STORED)
            zf.writestr(OPTIMIZER, opt_bytes, compress_type=zipfile.ZIP_STORED)

    atomic_write(filepath, write)


def save_weights(model, filepath, overwrite=True):
    """Write the weights alone to a .safetensors file, atomically."""
    if not model.built:
        raise ValueError(f"save_weights: model '{model.name}' is not built yet (no weights)")
    filepath = os.fspath(filepath)
    _check_overwrite(filepath, overwrite)
    data = _safetensors_bytes(_weights_dict(model))
    atomic_write(filepath, lambda f: f.write(data))


def _version():
    try:
        from tidu import __version__
        return __version__
    except ImportError:  # pragma: no cover
        return None


# --- reading -------------------------------------------------------------------------------
def _fail(path, what):
    return ModelFileError(f"{path}: {what}")


def _read_members(path):
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile as e:
        raise _fail(path, f"not a tidu model file: not a valid zip archive ({e}); the file is "
                          f"truncated, corrupted or of another format") from None
    except OSError as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise _fail(path, f"cannot be read: {e}") from None
    with zf:
        infos = zf.infolist()
        names = [i.filename for i in infos]
        unknown = sorted(set(names) - set(MEMBERS))
        if unknown:
            raise _fail(path, f"unexpected member(s) {unknown} in the archive; a tidu model file "
                              f"holds exactly {list(MEMBERS)}")
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise _fail(path, f"member(s) {dupes} appear more than once (tampered archive)")
        missing = [m for m in MEMBERS if m not in names]
        if missing:
            raise _fail(path, f"missing member(s) {missing}; a tidu model file holds {list(MEMBERS)}")
        data = {}
        for info in infos:
            limit = MAX_CONFIG_BYTES if info.filename == CONFIG else MAX_TENSOR_BYTES
            if info.file_size > limit:
                raise _fail(path, f"member {info.filename!r} claims {info.file_size} bytes, more "
                                  f"than the {limit} allowed")
            try:
                blob = zf.read(info)
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, RuntimeError,
                    NotImplementedError) as e:
                raise _fail(path, f"member {info.filename!r} is corrupted ({e})") from None
            if len(blob) != info.file_size:
                raise _fail(path, f"member {info.filename!r} has {len(blob)} bytes, the archive "
                                  f"says {info.file_size}")
            data[info.filename] = blob
    return data


def _parse_json(path, blob):
    try:
        text = blob.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _fail(path, f"{CONFIG} is not UTF-8 text ({e})") from None

    def no_constants(name):
        raise ValueError(f"non-standard JSON constant {name}")
    try:
        return json.loads(text, parse_constant=no_constants)
    except (ValueError, RecursionError) as e:
        raise _fail(path, f"{CONFIG} is not valid JSON ({e})") from None


def _load_tensors(path, blob, member):
    from safetensors.numpy import load
    try:
        tensors = load(blob)
    except Exception as e:  # SafetensorError, and anything a malformed header provokes
        raise _fail(path, f"{member} is not a valid safetensors file ({type(e).__name__}: {e})") from None
    return tensors


# --- schema --------------------------------------------------------------------------------
def _is_shape(v, allow_none=True):
    return isinstance(v, list) and all(
        (d is None and allow_none) or (isinstance(d, int) and not isinstance(d, bool) and d > 0) for d in v)


def _layer_class(class_name, custom_objects):
    from tidu import layers as tl
    if custom_objects and class_name in custom_objects:
        return custom_objects[class_name]
    return tl.get(class_name)


def _accepted_args(cls):
    """The constructor's argument names, plus Layer's when it forwards **kwargs."""
    names, var_kw = set(), False
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        sig = inspect.signature(vars(klass)["__init__"])
        for p in sig.parameters.values():
            if p.kind is p.VAR_KEYWORD:
                var_kw = True
            elif p.name != "self" and p.kind is not p.VAR_POSITIONAL:
                names.add(p.name)
        if not any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
            break
    return names | (_BASE_LAYER_ARGS if var_kw else set())


def _check_layer_config(path, lc, where, custom_objects):
    if not isinstance(lc, dict) or not isinstance(lc.get("class_name"), str) \
            or not isinstance(lc.get("config", {}), dict):
        raise _fail(path, f"{where}: expected {{'class_name': str, 'config': {{...}}}}, got {_short(lc)}")
    extra = set(lc) - {"class_name", "config"}
    if extra:
        raise _fail(path, f"{where}: unexpected key(s) {sorted(extra)}")
    name = lc["class_name"]
    if name in MODEL_CLASSES:
        _check_model_config(path, lc, where, custom_objects)
        return
    try:
        cls = _layer_class(name, custom_objects)
    except ValueError as e:
        raise _fail(path, f"{where}: {e}") from None
    cfg = lc.get("config") or {}
    label = f"{where} ({name} {cfg.get('name')!r})"
    unknown = sorted(set(cfg) - _accepted_args(cls))
    if unknown:
        raise _fail(path, f"{label}: unknown argument(s) {unknown} for {name}")
    if not isinstance(cfg.get("name"), str) or not cfg["name"]:
        raise _fail(path, f"{label}: expected a non-empty str 'name', got {_short(cfg.get('name'))}")
    if "trainable" in cfg and not isinstance(cfg["trainable"], bool):
        raise _fail(path, f"{label}: expected 'trainable' to be true or false, got {_short(cfg['trainable'])}")
    if cfg.get("dtype") is not None and cfg["dtype"] not in _DTYPES:
        raise _fail(path, f"{label}: expected 'dtype' in {_DTYPES}, got {_short(cfg['dtype'])}")
    for key in ("input_shape", "batch_input_shape"):
        if cfg.get(key) is not None and not _is_shape(cfg[key]):
            raise _fail(path, f"{label}: expected {key!r} to be a list of positive ints, got {_short(cfg[key])}")


def _check_model_config(path, mc, where, custom_objects):
    if not isinstance(mc, dict) or mc.get("class_name") not in MODEL_CLASSES:
        got = mc.get("class_name") if isinstance(mc, dict) else mc
        raise _fail(path, f"{where}: expected a model of class {' or '.join(MODEL_CLASSES)}, got {_short(got)}")
    cfg = mc.get("config")
    if not isinstance(cfg, dict):
        raise _fail(path, f"{where}: expected 'config' to be a dict, got {_short(cfg)}")
    if not isinstance(cfg.get("name"), str):
        raise _fail(path, f"{where}: expected a str 'name', got {_short(cfg.get('name'))}")
    layers = cfg.get("layers")
    if not isinstance(layers, list):
        raise _fail(path, f"{where}: expected 'layers' to be a list, got {_short(layers)}")
    for i, lc in enumerate(layers):
        _check_layer_config(path, lc, f"{where} layer {i}", custom_objects)
    names = [(lc.get("config") or {}).get("name") for lc in layers]
    dupes = sorted({n for n in names if names.count(n) > 1 and n is not None})
    if dupes:
        raise _fail(path, f"{where}: layer names {dupes} appear more than once")
    if mc["class_name"] == "Sequential":
        allowed = {"name", "layers", "build_input_shape"}
        shape = cfg.get("build_input_shape")
        if shape is not None and not _is_shape(shape):
            raise _fail(path, f"{where}: expected 'build_input_shape' to be a list of positive "
                              f"ints (None for the batch), got {_short(shape)}")
    else:
        allowed = {"name", "layers", "nodes", "input_shape", "input_dtype", "input_name"}
        if not _is_shape(cfg.get("input_shape"), allow_none=True):
            raise _fail(path, f"{where}: expected 'input_shape' to be a list of positive ints, "
                              f"got {_short(cfg.get('input_shape'))}")
        if cfg.get("input_dtype") is not None and cfg["input_dtype"] not in _DTYPES:
            raise _fail(path, f"{where}: bad 'input_dtype' {_short(cfg['input_dtype'])}")
        if cfg.get("input_name") is not None and not isinstance(cfg["input_name"], str):
            raise _fail(path, f"{where}: bad 'input_name' {_short(cfg['input_name'])}")
        nodes = cfg.get("nodes")
        if not isinstance(nodes, list) or not nodes:
            raise _fail(path, f"{where}: expected 'nodes' to be a non-empty list, got {_short(nodes)}")
        for i, node in enumerate(nodes):
            ok = (isinstance(node, dict) and set(node) <= {"layer", "inbound", "kwargs"}
                  and node.get("layer") in names and isinstance(node.get("inbound"), list)
                  and node["inbound"]
                  and all(s == "input" or (isinstance(s, int) and not isinstance(s, bool) and 0 <= s < i)
                          for s in node["inbound"])
                  and isinstance(node.get("kwargs", {}), dict))
            if not ok:
                raise _fail(path, f"{where}: node {i} is malformed: {_short(node)}")
    extra = sorted(set(cfg) - allowed)
    if extra:
        raise _fail(path, f"{where}: unexpected key(s) {extra} in a {mc['class_name']} config")


def _check_schema(path, config, custom_objects):
    if not isinstance(config, dict):
        raise _fail(path, f"{CONFIG}: expected a JSON object, got {_short(config)}")
    if config.get("format") != FORMAT:
        raise _fail(path, f"{CONFIG}: expected format {FORMAT!r}, got {_short(config.get('format'))}")
    if config.get("format_version") != FORMAT_VERSION:
        raise _fail(path, f"{CONFIG}: expected format_version {FORMAT_VERSION}, got "
                          f"{_short(config.get('format_version'))} (written by another tidu version?)")
    extra = sorted(set(config) - {"format", "format_version", "tidu_version", "model", "compile", "training"})
    if extra:
        raise _fail(path, f"{CONFIG}: unexpected key(s) {extra}")
    _check_model_config(path, config.get("model"), "model", custom_objects)
    comp = config.get("compile")
    if comp is not None:
        if not isinstance(comp, dict) or set(comp) - {"optimizer", "loss", "metrics", "loss_weights"}:
            raise _fail(path, f"{CONFIG}: malformed 'compile' section: {_short(comp)}")
        if not isinstance(comp.get("optimizer"), (dict, str)):
            raise _fail(path, f"{CONFIG}: compile.optimizer must be a config dict, got {_short(comp.get('optimizer'))}")
        if comp.get("loss") is not None and not isinstance(comp["loss"], (dict, str)):
            raise _fail(path, f"{CONFIG}: compile.loss must be a config dict, got {_short(comp['loss'])}")
        if not isinstance(comp.get("metrics", []), list):
            raise _fail(path, f"{CONFIG}: compile.metrics must be a list, got {_short(comp.get('metrics'))}")
        lw = comp.get("loss_weights")
        if lw is not None and (isinstance(lw, bool) or not isinstance(lw, (int, float))):
            raise _fail(path, f"{CONFIG}: compile.loss_weights must be a number, got {_short(lw)}")
    training = config.get("training")
    if training is not None and (not isinstance(training, dict) or set(training) - {"rng"}):
        raise _fail(path, f"{CONFIG}: malformed 'training' section: {_short(training)}")


def _short(v, n=120):
    s = repr(v)
    return s if len(s) <= n else s[:n] + "..."


# --- building ------------------------------------------------------------------------------
def deserialize_model(config, custom_objects=None):
    """A new model from serialize_model's dict."""
    from tidu.models.model import Model
    from tidu.models.sequential import Sequential

    cls = {"Sequential": Sequential, "Model": Model}.get(config.get("class_name"))
    if cls is None:
        raise ValueError(f"deserialize_model: expected class Sequential or Model, got {config.get('class_name')!r}")
    return cls.from_config(config["config"], custom_objects)


def _check_tensors(path, member, tensors, expected):
    """tensors (name -> array) against expected (name -> (shape, dtype)); ModelFileError if
    a name is missing or extra, or a shape or dtype differs."""
    missing = [k for k in expected if k not in tensors]
    extra = sorted(k for k in tensors if k not in expected)
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {missing}")
        if extra:
            parts.append(f"unexpected {extra}")
        raise _fail(path, f"{member}: the tensors do not match the model: {'; '.join(parts)}")
    for k, (shape, dtype) in expected.items():
        a = tensors[k]
        if tuple(a.shape) != tuple(shape):
            raise _fail(path, f"{member}: tensor {k!r} has shape {tuple(a.shape)}, the model "
                              f"expects {tuple(shape)}")
        if np.dtype(a.dtype) != np.dtype(dtype):
            raise _fail(path, f"{member}: tensor {k!r} has dtype {a.dtype}, the model expects {np.dtype(dtype)}")


def load_model(filepath, custom_objects=None, compile=True):
    """The model saved by `model.save(filepath)`: same architecture and weights, compiled with
    the same optimizer (state included), loss and metrics, and the same training generator,
    so predictions are identical and training continues as it would have.
    custom_objects: {class name: class} for layers outside tidu.layers."""
    path = os.fspath(filepath)
    members = _read_members(path)
    config = _parse_json(path, members[CONFIG])
    _check_schema(path, config, custom_objects)
    weights = _load_tensors(path, members[WEIGHTS], WEIGHTS)
    opt_state = _load_tensors(path, members[OPTIMIZER], OPTIMIZER)

    model_config, originals = _zero_initializers(config["model"])
    try:
        model = deserialize_model(model_config, custom_objects)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, MemoryError) as e:
        raise _fail(path, f"the model in {CONFIG} cannot be built: {type(e).__name__}: {e}") from None
    if not model.built:
        raise _fail(path, f"{CONFIG}: the model has no input shape, so its weights cannot be made")
    params = model.weights
    expected = {p.name: (p.shape, p.dtype) for p in params}
    if len(expected) != len(params):
        raise _fail(path, f"{CONFIG}: the model's weight names are not unique")
    _check_tensors(path, WEIGHTS, weights, expected)

    rng = None
    training = config.get("training") or {}
    if training.get("rng") is not None:
        rng = _make_rng(path, training["rng"])

    comp = config.get("compile") if compile else None
    if comp is not None:
        _compile_from_config(path, model, comp, custom_objects)
        if model.optimizer is not None and opt_state:
            _check_optimizer_state(path, model, opt_state)
            try:
                model.optimizer.load_state_dict(opt_state)
            except (ValueError, TypeError, KeyError) as e:
                raise _fail(path, f"{OPTIMIZER}: the optimizer state does not fit the model: {e}") from None

    for p in params:  # everything checked: now write
        p.data[...] = backend.as_array(weights[p.name], p.dtype)
    _restore_initializers(model, originals)
    model._rng = rng
    return model


def _zero_initializers(model_config):
    """A copy of the model config whose layers initialize every weight with zeros, and the
    original initializers by layer name. Every weight is overwritten from the file anyway,
    and zeros are allocated lazily by the OS: a tampered config asking for huge layers fails
    the shape check instead of filling memory with random numbers first."""
    import copy

    config = copy.deepcopy(model_config)
    originals = {}

    def visit(mc):
        for lc in mc["config"].get("layers", []):
            if lc.get("class_name") in MODEL_CLASSES:
                visit(lc)
                continue
            cfg = lc.get("config") or {}
            inits = {k: v for k, v in cfg.items() if k.endswith("_initializer")}
            if inits:
                originals[cfg.get("name")] = inits
                cfg.update({k: "zeros" for k in inits})
    visit(config)
    return config, originals


def _restore_initializers(model, originals):
    """Put the saved initializers back on the layers (so a re-save or a re-build keeps them)."""
    from tidu import initializers

    for layer in model._all_layers():
        for key, value in originals.get(layer.name, {}).items():
            if hasattr(layer, key):
                try:
                    setattr(layer, key, initializers.get(value))
                except (ValueError, TypeError):
                    pass


def _check_optimizer_state(path, model, state):
    """Per-parameter slots ('param<i>/<slot>', i in the order of trainable_weights, the order
    the training step gives them to the optimizer) must fit parameter i."""
    params = model.trainable_weights
    for key, arr in state.items():
        owner = key.split("/", 1)[0]
        if not owner.startswith("param"):
            continue
        try:
            i = int(owner[len("param"):])
        except ValueError:
            raise _fail(path, f"{OPTIMIZER}: malformed state name {key!r}") from None
        if not 0 <= i < len(params):
            raise _fail(path, f"{OPTIMIZER}: state {key!r} is for parameter {i}, but the model has "
                              f"{len(params)} trainable weights")
        if arr.ndim and arr.size != params[i].size:
            raise _fail(path, f"{OPTIMIZER}: state {key!r} has shape {arr.shape}, but parameter {i} "
                              f"('{params[i].name}') has shape {params[i].shape}")


def _compile_from_config(path, model, comp, custom_objects):
    from tidu import losses, metrics as M, optimizers
    try:
        opt = optimizers.deserialize(comp["optimizer"])
        loss = losses.deserialize(comp["loss"], custom_objects) if comp.get("loss") is not None else None
        metric_objs = [M.deserialize(m, custom_objects, loss=loss) for m in comp.get("metrics", [])]
        model.compile(optimizer=opt, loss=loss, metrics=metric_objs, loss_weights=comp.get("loss_weights"))
    except (ValueError, TypeError, KeyError) as e:
        raise _fail(path, f"{CONFIG}: the compile section cannot be used: {type(e).__name__}: {e}") from None


def _make_rng(path, state):
    if not isinstance(state, dict) or state.get("bit_generator") != "PCG64":
        raise _fail(path, f"{CONFIG}: training.rng must be a PCG64 state, got {_short(state)}")
    try:
        rng = np.random.Generator(np.random.PCG64())
        rng.bit_generator.state = state
    except (ValueError, TypeError, KeyError) as e:
        raise _fail(path, f"{CONFIG}: training.rng is not a valid generator state ({e})") from None
    return rng


def _ordered_names(blob, tensors):
    """The tensor names in the order they were saved (from the metadata), if it says."""
    try:
        n = int.from_bytes(blob[:8], "little")
        header = json.loads(blob[8:8 + n])
        names = json.loads((header.get("__metadata__") or {}).get("names", "null"))
    except (ValueError, TypeError, AttributeError):
        return None
    if isinstance(names, list) and sorted(names) == sorted(tensors):
        return names
    return None


def load_weights(model, filepath, by_name=False):
    """Set the model's weights from a .safetensors file (save_weights) or a model file (save).

    As Keras, weights are matched by position (the order they were saved in, which is the
    model's weight order) when the names differ, e.g. for a new model of the same
    architecture whose layers got other automatic names; by_name=True matches names only.
    Count, shapes and dtypes are checked first; nothing is written on a mismatch."""
    path = os.fspath(filepath)
    if not model.built:
        raise ValueError(f"load_weights: model '{model.name}' is not built yet; build it (or fit "
                         f"it) first so its weights exist")
    if zipfile.is_zipfile(path):
        blob = _read_members(path)[WEIGHTS]
    else:
        with open(path, "rb") as f:
            blob = f.read()
    member = os.path.basename(path)
    tensors = _load_tensors(path, blob, member)
    params = model.weights
    expected = {p.name: (p.shape, p.dtype) for p in params}
    if not by_name and set(tensors) != set(expected):
        order = _ordered_names(blob, tensors)
        if order is None:
            raise _fail(path, f"{member}: the names differ from the model's and the file does not "
                              f"record their order, so they cannot be matched by position")
        if len(order) != len(params):
            raise _fail(path, f"{member}: holds {len(order)} weights, the model has {len(params)}")
        tensors = {p.name: tensors[k] for p, k in zip(params, order)}
    _check_tensors(path, member, tensors, expected)
    for p in params:
        p.data[...] = backend.as_array(tensors[p.name], p.dtype)
