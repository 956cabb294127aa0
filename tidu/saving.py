"""Model files: one zip archive, JSON and safetensors only, written atomically.

    model.save("mnist.tidu")                 # config.json + model.weights.safetensors + optimizer.safetensors
    model = tidu.models.load_model("mnist.tidu")

config.json           {"format": "tidu.model", "format_version": 1, "model": {class_name, config},
                       "compile": {optimizer, loss, metrics, loss_weights} or null,
                       "training": {"rng": the training generator's state,
                                    "layer_rngs": {layer name: state} (layers with their own seed),
                                    "fit": where fit was (checkpoints only; tidu.checkpoint)} or null}
model.weights.safetensors   every weight, named '<layer name>/<weight name>' (Keras' order)
optimizer.safetensors       the optimizer's state_dict (step count, moments ...)

Writing goes to a temporary file in the target's directory, fsynced, then `os.replace`: a
crash (or SIGKILL) leaves the old file or the new one, never half of one.

Loading checks everything before it builds anything:
  * the container: an intact zip (CRC of every member) holding exactly these three members,
    not encrypted; config.json at most 16 MiB; the tensor members stored uncompressed (as tidu
    writes them), so their sizes are those of the bytes in the file (no decompression bombs);
  * config.json: strict JSON (no NaN/Infinity constants) of the expected schema: model class
    Sequential or Model, every layer class one of tidu.layers', every argument a known one of
    the right JSON type (ints where sizes go, booleans for flags, names or {class_name, config}
    for initializers ...), the compile and training sections likewise;
  * the tensors: valid safetensors, and, while the model is built from the config, no weight
    larger than the tensors the file holds (a tampered 'units' cannot allocate gigabytes);
    then exactly the names, shapes and dtypes of the model's weights, and optimizer slots
    shaped like their parameters.
Anything else raises `tidu.errors.ModelFileError` saying what is wrong, and nothing of the
file is used. No code is run from the file: only JSON and safetensors are parsed, and only
tidu's own layer, optimizer, loss and metric classes can be named.
"""
import collections
import copy
import functools
import inspect
import io
import json
import math
import os
import warnings
import zipfile

import numpy as np

from tidu import backend
from tidu.errors import ModelFileError
from tidu.utils import atomic_write

__all__ = ["save_model", "load_model", "save_weights", "load_weights", "serialize_model",
           "deserialize_model", "atomic_write", "read_checkpoint"]

FORMAT, FORMAT_VERSION = "tidu.model", 1
CONFIG, WEIGHTS, OPTIMIZER = "config.json", "model.weights.safetensors", "optimizer.safetensors"
MEMBERS = (CONFIG, WEIGHTS, OPTIMIZER)
MAX_CONFIG_BYTES = 16 << 20
MAX_TENSOR_BYTES = 16 << 30
MODEL_CLASSES = ("Sequential", "Model")
_BASE_LAYER_ARGS = {"name", "trainable", "dtype", "input_shape", "batch_input_shape", "input_dim"}
_DTYPES = ("float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool")
_MAX_DIM = 1 << 31           # a size in a config beyond this is not from a real model
_MAX_LIST = 4096             # list lengths inside a layer or optimizer config
_MAX_STR = 4096
_BUILD_SLACK = 64 << 20      # bytes a model may allocate beyond the weights the file holds while
                             # it is built (the exact names and shapes are checked after)


# --- writing -------------------------------------------------------------------------------
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
    except (ValueError, TypeError) as e:
        warnings.warn(f"save: the compile configuration is not saved ({e}); compile the model "
                      f"again after loading it")
        return None


def _rng_state(model, strict=False):
    from tidu.checkpoint import rng_state
    rng = getattr(model, "_rng", None)
    if rng is None:
        return None
    try:
        return rng_state(rng)
    except ValueError:
        if strict:
            raise
        warnings.warn("save: the training generator is not a PCG64 one (np.random.default_rng), "
                      "so its state is not saved")
        return None


def _layer_rngs(model):
    """{layer name: state} of the layers that draw from a generator of their own (a seed)."""
    from tidu.checkpoint import rng_state
    out = {}
    shared = getattr(model, "_rng", None)
    for layer in model._all_layers():
        rng = getattr(layer, "_rng", None)
        if isinstance(rng, np.random.Generator) and rng is not shared:
            try:
                out[layer.name] = rng_state(rng)
            except ValueError:
                pass
    return out


def save_model(model, filepath, overwrite=True, progress=None):
    """Write `model` (architecture, weights, compile configuration, optimizer state and the
    training generators' states) to one file, atomically. progress: where fit is (a
    checkpoint; see tidu.checkpoint), or None for a plain model file."""
    from tidu.models.model import Model

    if not isinstance(model, Model):
        raise TypeError(f"save_model: expected a tidu Model, got {type(model).__name__}")
    if not model.built:
        raise ValueError(f"save: model '{model.name}' is not built yet (no weights); give the "
                         f"first layer input_shape=..., or fit / build it first")
    filepath = os.fspath(filepath)
    _check_overwrite(filepath, overwrite)
    training = {"rng": _rng_state(model, strict=progress is not None), "layer_rngs": _layer_rngs(model)}
    if progress is not None:
        training["fit"] = progress
    config = {"format": FORMAT, "format_version": FORMAT_VERSION,
              "tidu_version": _version(), "model": serialize_model(model),
              "compile": _compile_config(model), "training": training}
    config_bytes = json.dumps(config, indent=1, sort_keys=False, allow_nan=False).encode("utf-8")
    weights = _safetensors_bytes(_weights_dict(model))
    state = {}
    if model.optimizer is not None and config["compile"] is not None:
        state = {k: np.asarray(backend.to_numpy(v)) for k, v in model.optimizer.state_dict().items()}
    elif progress is not None:
        raise ValueError("ModelCheckpoint: the model's compile configuration cannot be saved, so a "
                         "checkpoint could not be resumed from")
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


# --- reading: the container ------------------------------------------------------------------
def _fail(path, what):
    return ModelFileError(f"{path}: {what}")


def _label(filepath):
    """(what to open, the name messages use) for a path or a binary file object."""
    if hasattr(filepath, "read") and hasattr(filepath, "seek"):
        return filepath, str(getattr(filepath, "name", "<file object>"))
    path = os.fspath(filepath)
    return path, path


def _size_of(source):
    if isinstance(source, str):
        return os.path.getsize(source)
    here = source.tell()
    end = source.seek(0, io.SEEK_END)
    source.seek(here)
    return end


def _read_members(filepath):
    """{member name: bytes} of a model file, after checking the container (see the module
    docstring). FileNotFoundError for a missing path; ModelFileError for anything else."""
    source, path = _label(filepath)
    try:
        size = _size_of(source)
        zf = zipfile.ZipFile(source)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except zipfile.BadZipFile as e:
        raise _fail(path, f"not a tidu model file: not a valid zip archive ({e}); the file is "
                          f"truncated, corrupted or of another format") from None
    except Exception as e:  # OSError, and whatever a mangled central directory provokes
        raise _fail(path, f"not a tidu model file: the zip directory cannot be read "
                          f"({type(e).__name__}: {e}); the file is truncated or corrupted") from None
    with zf:
        infos = zf.infolist()
        names = [i.filename for i in infos]
        unknown = sorted(set(names) - set(MEMBERS))
        if unknown:
            raise _fail(path, f"unexpected member(s) {_short(unknown)} in the archive; a tidu model "
                              f"file holds exactly {list(MEMBERS)}")
        dupes = sorted(n for n, k in collections.Counter(names).items() if k > 1)
        if dupes:
            raise _fail(path, f"member(s) {dupes} appear more than once (tampered archive)")
        missing = [m for m in MEMBERS if m not in names]
        if missing:
            raise _fail(path, f"missing member(s) {missing}; a tidu model file holds {list(MEMBERS)}")
        data = {}
        for info in infos:
            name = info.filename
            if info.flag_bits & 0x1:
                raise _fail(path, f"member {name!r} is encrypted; tidu model files are not")
            if name == CONFIG:
                limit = MAX_CONFIG_BYTES
                if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                    raise _fail(path, f"member {name!r} uses compression method {info.compress_type}; "
                                      f"expected stored (0) or deflated (8)")
            else:
                limit = min(MAX_TENSOR_BYTES, size)
                if info.compress_type != zipfile.ZIP_STORED or info.compress_size != info.file_size:
                    raise _fail(path, f"member {name!r} is compressed (method {info.compress_type}, "
                                      f"{info.compress_size} bytes for {info.file_size}); tidu stores "
                                      f"tensors uncompressed")
            if info.file_size > limit:
                raise _fail(path, f"member {name!r} claims {info.file_size} bytes, more than the "
                                  f"{limit} allowed (the whole file has {size} bytes)")
            try:
                with zf.open(info) as f:
                    blob = f.read(limit + 1)
            except Exception as e:  # BadZipFile (CRC), zlib.error, EOFError, struct.error, ...
                raise _fail(path, f"member {name!r} is corrupted ({type(e).__name__}: {e})") from None
            if len(blob) != info.file_size:
                raise _fail(path, f"member {name!r} has {len(blob)} bytes, the archive says "
                                  f"{info.file_size}")
            data[name] = blob
    return data


def _parse_json(path, blob):
    try:
        text = blob.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _fail(path, f"{CONFIG} is not UTF-8 text ({e})") from None

    def no_constants(name):
        raise ValueError(f"non-standard JSON constant {name}")

    def finite(text):
        v = float(text)
        if not math.isfinite(v):
            raise ValueError(f"number {text[:40]} does not fit a float")
        return v
    try:
        return json.loads(text, parse_constant=no_constants, parse_float=finite)
    except (ValueError, RecursionError) as e:
        raise _fail(path, f"{CONFIG} is not valid JSON ({_clip(str(e), 200)})") from None


def _load_tensors(path, blob, member):
    from safetensors.numpy import load
    try:
        tensors = load(blob)
    except Exception as e:  # SafetensorError, and anything a malformed header provokes
        raise _fail(path, f"{member} is not a valid safetensors file ({type(e).__name__}: "
                          f"{_clip(str(e), 200)})") from None
    return tensors


# --- schema --------------------------------------------------------------------------------
def _is_int(v, lo=None, hi=None):
    return (isinstance(v, int) and not isinstance(v, bool)
            and (lo is None or v >= lo) and (hi is None or v <= hi))


def _is_real(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and abs(v) <= 1e300


def _is_shape(v, allow_none=True, allow_minus_one=False, allow_empty=True):
    return (isinstance(v, list) and len(v) <= 32 and (allow_empty or v)
            and all((d is None and allow_none) or _is_int(d, 1, _MAX_DIM)
                    or (allow_minus_one and d == -1 and not isinstance(d, bool)) for d in v))


def _is_scalar(v):
    return v is None or isinstance(v, bool) or _is_real(v) or (isinstance(v, str) and len(v) <= _MAX_STR)


def _is_plain(v, depth=0):
    """A JSON value of bounded size: scalars, short lists, {'class_name', 'config'} objects."""
    if _is_scalar(v):
        return True
    if depth >= 4:
        return False
    if isinstance(v, list):
        return len(v) <= _MAX_LIST and all(_is_plain(e, depth + 1) for e in v)
    if isinstance(v, dict):
        return len(v) <= 64 and all(isinstance(k, str) and len(k) <= 256 and _is_plain(e, depth + 1)
                                    for k, e in v.items())
    return False


def _is_object(v):
    """A serialized initializer/regularizer/constraint/schedule: {'class_name': str, 'config': {...}}."""
    return (isinstance(v, dict) and set(v) <= {"class_name", "config"}
            and isinstance(v.get("class_name"), str) and len(v["class_name"]) <= 256
            and isinstance(v.get("config", {}), (dict, type(None))) and _is_plain(v.get("config") or {}, 1))


def _ints(v, lo):
    return _is_int(v, lo, _MAX_DIM) or (isinstance(v, list) and 1 <= len(v) <= 8
                                        and all(_is_int(d, lo, _MAX_DIM) for d in v))


_NAME = ("a non-empty str", lambda v: isinstance(v, str) and 0 < len(v) <= 256)
_BOOL = ("true or false", lambda v: isinstance(v, bool))
_POSITIVE = ("an int >= 1", lambda v: _is_int(v, 1, _MAX_DIM))
_OPT_POSITIVE = ("null or an int >= 1", lambda v: v is None or _is_int(v, 1, _MAX_DIM))
_REAL = ("a finite number", _is_real)
_OPT_REAL = ("null or a finite number", lambda v: v is None or _is_real(v))
_INTS = ("an int >= 1 or a list of them", lambda v: _ints(v, 1))
_OPT_INTS = ("null, an int >= 1 or a list of them", lambda v: v is None or _ints(v, 1))
_AXIS = ("an int or a list of ints", lambda v: _is_int(v, -32, 32) or (
    isinstance(v, list) and 1 <= len(v) <= 8 and all(_is_int(a, -32, 32) for a in v)))
_STR = ("a str", lambda v: isinstance(v, str) and len(v) <= 256)
_OPT_STR = ("null or a str", lambda v: v is None or (isinstance(v, str) and len(v) <= 256))
_SHAPE = ("a list of ints >= 1 (null for unknown)", lambda v: v is None or _is_shape(v))
_TARGET_SHAPE = ("a list of ints >= 1 (one may be -1)",
                 lambda v: _is_shape(v, allow_none=False, allow_minus_one=True))
_SEED = ("null or an int >= 0", lambda v: v is None or _is_int(v, 0, 2**63 - 1))
_DTYPE = (f"null or one of {', '.join(_DTYPES)}", lambda v: v is None or v in _DTYPES)
_ACTIVATION = ("null or an activation name", lambda v: v is None or (isinstance(v, str) and len(v) <= 64))
_INITIALIZER = ("a name or {class_name, config}",
                lambda v: (isinstance(v, str) and len(v) <= 64) or _is_object(v))
_OPT_OBJECT = ("null, a name or {class_name, config}",
               lambda v: v is None or (isinstance(v, str) and len(v) <= 64) or _is_object(v))

# the type of every argument tidu's layers take (by name); a layer from custom_objects may
# have others, which must still be plain JSON of bounded size
_ARG_TYPES = {
    "name": _NAME, "trainable": _BOOL, "dtype": _DTYPE, "input_shape": _SHAPE,
    "batch_input_shape": _SHAPE, "shape": _SHAPE, "input_dim": _OPT_POSITIVE,
    "units": _POSITIVE, "filters": _POSITIVE, "output_dim": _POSITIVE, "pieces": _POSITIVE,
    "groups": _POSITIVE, "input_length": _OPT_POSITIVE, "batch_size": _OPT_POSITIVE,
    "kernel_size": _INTS, "strides": _OPT_INTS, "pool_size": _OPT_INTS, "dilation_rate": _INTS,
    "axis": _AXIS, "padding": _STR, "data_format": _OPT_STR, "mode": _STR,
    "target_shape": _TARGET_SHAPE, "noise_shape": _SHAPE, "seed": _SEED,
    "activation": _ACTIVATION, "recurrent_activation": _ACTIVATION,
    "alpha": _REAL, "epsilon": _REAL, "momentum": _REAL, "negative_slope": _REAL,
    "threshold": _REAL, "rate": _REAL, "dropout": _REAL, "recurrent_dropout": _REAL,
    "max_value": _OPT_REAL,
    **{k: _BOOL for k in ("use_bias", "center", "scale", "go_backwards", "return_sequences",
                          "return_state", "stateful", "unroll", "unit_forget_bias", "reset_after",
                          "mask_zero", "keepdims")},
}


def _arg_type(key):
    if key in _ARG_TYPES:
        return _ARG_TYPES[key]
    if key.endswith("_initializer"):
        return _INITIALIZER
    if key.endswith(("_regularizer", "_constraint")):
        return _OPT_OBJECT
    return None


def _layer_class(class_name, custom_objects):
    from tidu import layers as tl
    if custom_objects and class_name in custom_objects:
        return custom_objects[class_name]
    return tl.get(class_name)


@functools.lru_cache(maxsize=None)
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


def _check_layer_config(path, lc, where, custom_objects, depth):
    if not isinstance(lc, dict) or not isinstance(lc.get("class_name"), str) \
            or not isinstance(lc.get("config", {}), dict):
        raise _fail(path, f"{where}: expected {{'class_name': str, 'config': {{...}}}}, got {_short(lc)}")
    extra = set(lc) - {"class_name", "config"}
    if extra:
        raise _fail(path, f"{where}: unexpected key(s) {_short(sorted(extra))}")
    name = lc["class_name"]
    if name in MODEL_CLASSES:
        _check_model_config(path, lc, where, custom_objects, depth + 1)
        return
    try:
        cls = _layer_class(name, custom_objects)
    except ValueError as e:
        raise _fail(path, f"{where}: {e}") from None
    cfg = lc.get("config") or {}
    label = f"{where} ({name} {_short(cfg.get('name'), 60)})"
    unknown = sorted(set(cfg) - _accepted_args(cls))
    if unknown:
        raise _fail(path, f"{label}: unknown argument(s) {_short(unknown)} for {name}")
    if "name" not in cfg:
        raise _fail(path, f"{label}: expected a non-empty str 'name', got none")
    for key, value in cfg.items():
        kind = _arg_type(key)
        if kind is None:
            if not _is_plain(value):
                raise _fail(path, f"{label}: argument {key!r} is not plain JSON of bounded size: "
                                  f"{_short(value)}")
        elif not kind[1](value):
            raise _fail(path, f"{label}: expected {key!r} to be {kind[0]}, got {_short(value)}")


def _check_model_config(path, mc, where, custom_objects, depth=0):
    if depth > 8:
        raise _fail(path, f"{where}: models nested more than 8 deep")
    if not isinstance(mc, dict) or mc.get("class_name") not in MODEL_CLASSES:
        got = mc.get("class_name") if isinstance(mc, dict) else mc
        raise _fail(path, f"{where}: expected a model of class {' or '.join(MODEL_CLASSES)}, got {_short(got)}")
    if set(mc) - {"class_name", "config"}:
        raise _fail(path, f"{where}: unexpected key(s) {_short(sorted(set(mc) - {'class_name', 'config'}))}")
    cfg = mc.get("config")
    if not isinstance(cfg, dict):
        raise _fail(path, f"{where}: expected 'config' to be a dict, got {_short(cfg)}")
    if not (isinstance(cfg.get("name"), str) and len(cfg["name"]) <= 256):
        raise _fail(path, f"{where}: expected a str 'name', got {_short(cfg.get('name'))}")
    layers = cfg.get("layers")
    if not isinstance(layers, list) or len(layers) > 10_000:
        raise _fail(path, f"{where}: expected 'layers' to be a list, got {_short(layers)}")
    for i, lc in enumerate(layers):
        _check_layer_config(path, lc, f"{where} layer {i}", custom_objects, depth)
    names = [(lc.get("config") or {}).get("name") for lc in layers]
    dupes = sorted(n for n, k in collections.Counter(n for n in names if isinstance(n, str)).items() if k > 1)
    if dupes:
        raise _fail(path, f"{where}: layer names {_short(dupes)} appear more than once")
    if mc["class_name"] == "Sequential":
        allowed = {"name", "layers", "build_input_shape"}
        shape = cfg.get("build_input_shape")
        if shape is not None and not _is_shape(shape, allow_empty=False):
            raise _fail(path, f"{where}: expected 'build_input_shape' to be a list of positive "
                              f"ints (None for the batch), got {_short(shape)}")
    else:
        allowed = {"name", "layers", "nodes", "input_shape", "input_dtype", "input_name"}
        if not _is_shape(cfg.get("input_shape"), allow_none=True):
            raise _fail(path, f"{where}: expected 'input_shape' to be a list of positive ints, "
                              f"got {_short(cfg.get('input_shape'))}")
        if cfg.get("input_dtype") is not None and cfg["input_dtype"] not in _DTYPES:
            raise _fail(path, f"{where}: expected 'input_dtype' in {_DTYPES}, got {_short(cfg['input_dtype'])}")
        if cfg.get("input_name") is not None and not (isinstance(cfg["input_name"], str)
                                                       and len(cfg["input_name"]) <= 256):
            raise _fail(path, f"{where}: expected 'input_name' to be a str, got {_short(cfg['input_name'])}")
        nodes = cfg.get("nodes")
        if not isinstance(nodes, list) or not nodes or len(nodes) > 10_000:
            raise _fail(path, f"{where}: expected 'nodes' to be a non-empty list, got {_short(nodes)}")
        for i, node in enumerate(nodes):
            ok = (isinstance(node, dict) and set(node) <= {"layer", "inbound", "kwargs"}
                  and isinstance(node.get("layer"), str) and node["layer"] in names
                  and isinstance(node.get("inbound"), list) and 0 < len(node["inbound"]) <= 64
                  and all(s == "input" or _is_int(s, 0, i - 1) for s in node["inbound"])
                  and isinstance(node.get("kwargs", {}), dict)
                  and all(isinstance(k, str) and k.isidentifier() and not k.startswith("_")
                          and k != "training" and _is_scalar(v)
                          for k, v in node.get("kwargs", {}).items()))
            if not ok:
                raise _fail(path, f"{where}: node {i} is malformed: {_short(node)}")
    extra = sorted(set(cfg) - allowed)
    if extra:
        raise _fail(path, f"{where}: unexpected key(s) {_short(extra)} in a {mc['class_name']} config")


def _check_compile(path, comp):
    if not isinstance(comp, dict) or set(comp) - {"optimizer", "loss", "metrics", "loss_weights"}:
        raise _fail(path, f"{CONFIG}: malformed 'compile' section: {_short(comp)}")
    opt = comp.get("optimizer")
    if not (_is_object(opt) or (isinstance(opt, str) and len(opt) <= 64)):
        raise _fail(path, f"{CONFIG}: compile.optimizer must be a name or {{class_name, config}}, "
                          f"got {_short(opt)}")
    loss = comp.get("loss")
    if loss is not None and not (_is_object(loss) or (isinstance(loss, str) and len(loss) <= 64)):
        raise _fail(path, f"{CONFIG}: compile.loss must be a name or {{class_name, config}}, got {_short(loss)}")
    metrics = comp.get("metrics", [])
    if not isinstance(metrics, list) or len(metrics) > 64 or not all(
            _is_object(m) or (isinstance(m, str) and len(m) <= 64) for m in metrics):
        raise _fail(path, f"{CONFIG}: compile.metrics must be a list of names or {{class_name, "
                          f"config}}, got {_short(metrics)}")
    lw = comp.get("loss_weights")
    if lw is not None and not _is_real(lw):
        raise _fail(path, f"{CONFIG}: compile.loss_weights must be a number, got {_short(lw)}")


def _check_training(path, training):
    from tidu.checkpoint import check_progress, check_rng_state

    if training is None:
        return
    if not isinstance(training, dict) or set(training) - {"rng", "layer_rngs", "fit"}:
        raise _fail(path, f"{CONFIG}: malformed 'training' section: {_short(training)}")
    if training.get("rng") is not None:
        bad = check_rng_state(training["rng"])
        if bad:
            raise _fail(path, f"{CONFIG}: training.rng must be a PCG64 generator state: {bad}; got "
                              f"{_short(training['rng'])}")
    layer_rngs = training.get("layer_rngs") or {}
    if not isinstance(layer_rngs, dict) or len(layer_rngs) > 10_000:
        raise _fail(path, f"{CONFIG}: training.layer_rngs must be {{layer name: state}}, got {_short(layer_rngs)}")
    for name, state in layer_rngs.items():
        bad = check_rng_state(state)
        if bad:
            raise _fail(path, f"{CONFIG}: training.layer_rngs[{name!r}]: {bad}")
    if training.get("fit") is not None:
        bad = check_progress(training["fit"])
        if bad:
            raise _fail(path, f"{CONFIG}: training.fit (the checkpoint's progress) is malformed: {bad}")


def _check_schema(path, config, custom_objects):
    if not isinstance(config, dict):
        raise _fail(path, f"{CONFIG}: expected a JSON object, got {_short(config)}")
    if config.get("format") != FORMAT:
        raise _fail(path, f"{CONFIG}: expected format {FORMAT!r}, got {_short(config.get('format'))}")
    if config.get("format_version") != FORMAT_VERSION or isinstance(config.get("format_version"), bool):
        raise _fail(path, f"{CONFIG}: expected format_version {FORMAT_VERSION}, got "
                          f"{_short(config.get('format_version'))} (written by another tidu version?)")
    extra = sorted(set(config) - {"format", "format_version", "tidu_version", "model", "compile", "training"})
    if extra:
        raise _fail(path, f"{CONFIG}: unexpected key(s) {_short(extra)}")
    version = config.get("tidu_version")
    if version is not None and not (isinstance(version, str) and len(version) <= 64):
        raise _fail(path, f"{CONFIG}: expected tidu_version to be a str, got {_short(version)}")
    _check_model_config(path, config.get("model"), "model", custom_objects)
    if config.get("compile") is not None:
        _check_compile(path, config["compile"])
    _check_training(path, config.get("training"))


def _short(v, n=120):
    """repr(v), cut to n characters."""
    return _clip(repr(v), n)


def _clip(text, n):
    return text if len(text) <= n else text[:n] + "..."


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
            parts.append(f"missing {_short(missing)}")
        if extra:
            parts.append(f"unexpected {_short(extra)}")
        raise _fail(path, f"{member}: the tensors do not match the model: {'; '.join(parts)}")
    for k, (shape, dtype) in expected.items():
        a = tensors[k]
        if tuple(a.shape) != tuple(shape):
            raise _fail(path, f"{member}: tensor {k!r} has shape {tuple(a.shape)}, the model "
                              f"expects {tuple(shape)}")
        if np.dtype(a.dtype) != np.dtype(dtype):
            raise _fail(path, f"{member}: tensor {k!r} has dtype {a.dtype}, the model expects {np.dtype(dtype)}")


class _Budget:
    """The initializer a model is built with while loading: zeros, but no more bytes in all
    than the weights member holds (every weight is overwritten from the file anyway). A
    tampered config asking for huge layers fails here, before allocating them."""

    def __init__(self, path, available):
        self.path, self.left, self.available = path, available, available

    def __call__(self, shape, dtype=None):
        shape = tuple(int(d) for d in shape)
        dtype = np.dtype(dtype or backend.floatx())
        need = math.prod(shape) * dtype.itemsize
        if need > self.left:
            raise _fail(self.path, f"{CONFIG}: the model asks for a weight of shape {shape} "
                                   f"({need:,} bytes), more than the {WEIGHTS} member holds "
                                   f"({self.available - _BUILD_SLACK:,} bytes of tensors in all)")
        self.left -= need
        return np.zeros(shape, dtype)


def _budget_initializers(model_config, budget):
    """A copy of the model config whose layers initialize every weight from `budget`, and the
    original initializers by layer name (put back after loading)."""
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
                cfg.update({k: budget for k in inits})
    visit(config)
    return config, originals


def _restore_initializers(path, model, originals):
    """Put the saved initializers back on the layers (so a re-save or a re-build keeps them);
    ModelFileError for one that does not exist."""
    from tidu import initializers

    for layer in model._all_layers():
        for key, value in originals.get(layer.name, {}).items():
            if hasattr(layer, key):
                try:
                    setattr(layer, key, initializers.get(value))
                except Exception as e:
                    raise _fail(path, f"{CONFIG}: layer {layer.name!r}: {key} cannot be used: "
                                      f"{type(e).__name__}: {_clip(str(e), 200)}") from None


def _read(filepath, custom_objects):
    """(name for messages, config, weights blob, weights, optimizer state): a model file
    read and checked up to, not including, building the model."""
    _, path = _label(filepath)
    members = _read_members(filepath)
    config = _parse_json(path, members[CONFIG])
    _check_schema(path, config, custom_objects)
    weights = _load_tensors(path, members[WEIGHTS], WEIGHTS)
    opt_state = _load_tensors(path, members[OPTIMIZER], OPTIMIZER)
    return path, config, members[WEIGHTS], weights, opt_state


def load_model(filepath, custom_objects=None, compile=True):
    """The model saved by `model.save(filepath)`: same architecture and weights, compiled with
    the same optimizer (state included), loss and metrics, and the same training generators,
    so predictions are identical and training continues as it would have.
    filepath: a path or a binary file object. custom_objects: {class name: class} for layers
    outside tidu.layers."""
    path, config, blob, weights, opt_state = _read(filepath, custom_objects)
    budget = _Budget(path, sum(a.nbytes for a in weights.values()) + _BUILD_SLACK)
    model_config, originals = _budget_initializers(config["model"], budget)
    try:
        model = deserialize_model(model_config, custom_objects)
    except ModelFileError:
        raise
    except Exception as e:  # the schema passed, yet a constructor or build refused a value
        raise _fail(path, f"the model in {CONFIG} cannot be built: {type(e).__name__}: "
                          f"{_clip(str(e), 300)}") from None
    if not model.built:
        raise _fail(path, f"{CONFIG}: the model has no input shape, so its weights cannot be made")
    params = model.weights
    expected = {p.name: (p.shape, p.dtype) for p in params}
    if len(expected) != len(params):
        raise _fail(path, f"{CONFIG}: the model's weight names are not unique")
    _check_tensors(path, WEIGHTS, weights, expected)

    training = config.get("training") or {}
    layer_rngs = _check_layer_rngs(path, model, training.get("layer_rngs") or {})
    comp = config.get("compile") if compile else None
    if comp is not None:
        _compile_from_config(path, model, comp, custom_objects)
        if model.optimizer is not None and opt_state:
            _load_optimizer_state(path, model, opt_state)

    _restore_initializers(path, model, originals)

    from tidu.checkpoint import make_rng
    for p in params:  # everything checked: now write
        p.data[...] = backend.as_array(weights[p.name], p.dtype)
    model._rng = make_rng(training["rng"]) if training.get("rng") is not None else None
    for layer, state in layer_rngs:
        layer._rng = make_rng(state)
    return model


def _check_layer_rngs(path, model, layer_rngs):
    """[(layer, state)]: by name, or, when the names differ (a model built again in another
    session), by position among the layers with a generator of their own."""
    by_name = {layer.name: layer for layer in model._all_layers()}
    if not all(name in by_name for name in layer_rngs):
        own = [layer for layer in model._all_layers()
               if hasattr(layer, "_rng") and getattr(layer, "seed", None) is not None]
        if len(own) == len(layer_rngs):
            return list(zip(own, layer_rngs.values()))
    out = []
    for name, state in layer_rngs.items():
        layer = by_name.get(name)
        if layer is None or not hasattr(layer, "_rng"):
            raise _fail(path, f"{CONFIG}: training.layer_rngs names {name!r}, which is not a layer "
                              f"with a generator of its own")
        out.append((layer, state))
    return out


def _check_optimizer_state(path, model, state):
    """Per-parameter slots ('param<i>/<slot>', i in the order of trainable_weights, the order
    the training step gives them to the optimizer) must be shaped like parameter i and be the
    slots the optimizer keeps; 'iterations' and 'learning_rate' numbers."""
    params = model.trainable_weights
    opt = model.optimizer
    slots = None
    for key, arr in state.items():
        if key in ("iterations", "learning_rate"):
            if arr.shape != () or arr.dtype.kind not in "iuf":
                raise _fail(path, f"{OPTIMIZER}: {key!r} must be a number, got an array of shape "
                                  f"{arr.shape} and dtype {arr.dtype}")
            if not np.isfinite(arr) or arr < 0 or (key == "iterations" and arr > 2**62):
                raise _fail(path, f"{OPTIMIZER}: {key!r} must be a finite number >= 0, got {arr}")
            continue
        owner, _, slot = key.partition("/")
        if owner == "global" or owner.startswith("key:"):
            continue
        if not owner.startswith("param") or not slot:
            raise _fail(path, f"{OPTIMIZER}: malformed state name {_short(key)}")
        try:
            i = int(owner[len("param"):])
        except ValueError:
            raise _fail(path, f"{OPTIMIZER}: malformed state name {_short(key)}") from None
        if not 0 <= i < len(params):
            raise _fail(path, f"{OPTIMIZER}: state {_short(key)} is for parameter {i}, but the model "
                              f"has {len(params)} trainable weights")
        if slots is None:
            slots = set(opt.init_state(np.zeros((1,), params[i].dtype)))
        if slot not in slots:
            raise _fail(path, f"{OPTIMIZER}: state {_short(key)}: {type(opt).__name__} keeps "
                              f"{sorted(slots) or 'no per-weight state'}, not {slot!r}")
        if tuple(arr.shape) != tuple(params[i].shape) or arr.dtype.kind != "f":
            raise _fail(path, f"{OPTIMIZER}: state {key!r} has shape {tuple(arr.shape)} and dtype "
                              f"{arr.dtype}, but parameter {i} ('{params[i].name}') has shape "
                              f"{tuple(params[i].shape)} and dtype {params[i].dtype}")
    if "iterations" not in state:
        raise _fail(path, f"{OPTIMIZER}: no 'iterations' entry; keys: {_short(sorted(state))}")


def _load_optimizer_state(path, model, opt_state):
    _check_optimizer_state(path, model, opt_state)
    try:
        model.optimizer.load_state_dict(opt_state)
    except Exception as e:
        raise _fail(path, f"{OPTIMIZER}: the optimizer state does not fit the model: "
                          f"{type(e).__name__}: {_clip(str(e), 300)}") from None


def _compile_from_config(path, model, comp, custom_objects):
    from tidu import losses, metrics as M, optimizers
    try:
        opt = optimizers.deserialize(comp["optimizer"]) if isinstance(comp["optimizer"], dict) \
            else optimizers.get(comp["optimizer"])
        loss = losses.deserialize(comp["loss"], custom_objects) if comp.get("loss") is not None else None
        metric_objs = [M.deserialize(m, custom_objects, loss=loss) for m in comp.get("metrics", [])]
        model.compile(optimizer=opt, loss=loss, metrics=metric_objs, loss_weights=comp.get("loss_weights"))
    except Exception as e:
        raise _fail(path, f"{CONFIG}: the compile section cannot be used: {type(e).__name__}: "
                          f"{_clip(str(e), 300)}") from None


# --- checkpoints -----------------------------------------------------------------------------
def read_checkpoint(filepath, model, custom_objects=None):
    """A checkpoint written by ModelCheckpoint, read and checked against `model` (same weights
    by name or position, shapes and dtypes; same optimizer class; progress recorded), as a
    tidu.checkpoint.Resume that fit applies. Nothing in `model` changes here."""
    from tidu.checkpoint import Resume

    path, config, blob, tensors, opt_state = _read(filepath, custom_objects)
    training = config.get("training") or {}
    progress = training.get("fit")
    if progress is None:
        raise ValueError(f"resume_from: {path} is a model file without training progress (written "
                         f"by model.save, not by ModelCheckpoint); load it with load_model or "
                         f"load_weights instead")
    if training.get("rng") is None:
        raise _fail(path, f"{CONFIG}: a checkpoint must record the training generator (training.rng)")
    if not model.built:
        raise ValueError(f"resume_from: model '{model.name}' is not built yet")
    params = model.weights
    values = _match_weights(path, WEIGHTS, blob, tensors, params, by_name=False)
    comp = config.get("compile") or {}
    saved_opt = comp.get("optimizer")
    saved_cls = saved_opt.get("class_name") if isinstance(saved_opt, dict) else saved_opt
    if model.optimizer is None or saved_cls != type(model.optimizer).__name__:
        raise ValueError(f"resume_from: {path} was written with optimizer {saved_cls!r}, the model is "
                         f"compiled with {type(model.optimizer).__name__ if model.optimizer else None!r}; "
                         f"compile it as for the run that wrote the checkpoint")
    _check_optimizer_state(path, model, opt_state)
    try:  # on a fresh copy of the optimizer: fit applies it only once everything is checked
        model.optimizer._fresh().load_state_dict(opt_state)
    except Exception as e:
        raise _fail(path, f"{OPTIMIZER}: the optimizer state does not fit the model: "
                          f"{type(e).__name__}: {_clip(str(e), 300)}") from None
    layer_rngs = dict((layer.name, state) for layer, state in
                      _check_layer_rngs(path, model, training.get("layer_rngs") or {}))
    return Resume(path, progress, [backend.as_array(v, p.dtype) for p, v in zip(params, values)],
                  opt_state, training["rng"], layer_rngs)


# --- weights files -------------------------------------------------------------------------------
def _ordered_names(blob, tensors):
    """The tensor names in the order they were saved (from the metadata), if it says."""
    try:
        n = int.from_bytes(blob[:8], "little")
        header = json.loads(blob[8:8 + n])
        names = json.loads((header.get("__metadata__") or {}).get("names", "null"))
    except (ValueError, TypeError, AttributeError, RecursionError):
        return None
    if isinstance(names, list) and all(isinstance(k, str) for k in names) \
            and len(names) == len(tensors) and sorted(names) == sorted(tensors):
        return names
    return None


def _match_weights(path, member, blob, tensors, params, by_name):
    """The arrays of `tensors` for `params`, in order: by name, or (as Keras) by the saved
    order when the names differ; ModelFileError unless count, shapes and dtypes fit."""
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
    return [tensors[p.name] for p in params]


def load_weights(model, filepath, by_name=False):
    """Set the model's weights from a .safetensors file (save_weights) or a model file (save).

    As Keras, weights are matched by position (the order they were saved in, which is the
    model's weight order) when the names differ, e.g. for a new model of the same
    architecture whose layers got other automatic names; by_name=True matches names only.
    Count, shapes and dtypes are checked first; nothing is written on a mismatch."""
    source, path = _label(filepath)
    if not model.built:
        raise ValueError(f"load_weights: model '{model.name}' is not built yet; build it (or fit "
                         f"it) first so its weights exist")
    if isinstance(source, str):
        is_zip = zipfile.is_zipfile(source)
    else:
        here = source.tell()
        is_zip = source.read(4) == b"PK\x03\x04"
        source.seek(here)
    if is_zip:
        blob = _read_members(filepath)[WEIGHTS]
        member = WEIGHTS
    else:
        if isinstance(source, str):
            with open(source, "rb") as f:
                blob = f.read()
        else:
            blob = source.read()
        member = os.path.basename(path)
    tensors = _load_tensors(path, blob, member)
    params = model.weights
    values = _match_weights(path, member, blob, tensors, params, by_name)
    for p, v in zip(params, values):
        p.data[...] = backend.as_array(v, p.dtype)
