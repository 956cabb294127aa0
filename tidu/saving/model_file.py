"""save_model / load_model, save_weights / load_weights, and read_checkpoint: a model to and
from the archive (saving.archive), its config checked by saving.schema first.

Loading builds the model only after the container and the config passed, with zeros from a
budget no larger than the tensors the file holds (a tampered 'units' cannot allocate
gigabytes); then the weights must have exactly the model's names, shapes and dtypes, and the
optimizer slots the shapes of their parameters. Nothing is written into the model before
everything is checked.
"""
import copy
import json
import os
import warnings

import numpy as np

from tidu.version import __version__
from tidu import backend
from tidu.errors import ModelFileError
from tidu.utils import atomic_write
from tidu.saving import schema
from tidu.saving.archive import (CALLBACKS, CONFIG, FORMAT, FORMAT_VERSION, OPTIMIZER, WEIGHTS, BuildBudget, check_overwrite,
                                 check_tensors, clip, fail, is_archive, load_tensors, match_weights,
                                 parse_json, read_members, safetensors_bytes, short, source_and_name,
                                 write_archive)
from tidu.saving.checkpoints import Resume, capture_weight_copies, group_weight_copies, make_rng, rng_state

BUILD_SLACK = 64 << 20       # bytes a model may allocate beyond the weights the file holds while
                             # it is built (the exact names and shapes are checked after)


# --- writing -------------------------------------------------------------------------------
def _weights_dict(model):
    out = {}
    for p in model.weights:
        if p.name in out:
            raise ValueError(f"save: two weights are named {p.name!r}; layer names in a model "
                             f"must be unique")
        out[p.name] = np.array(backend.to_numpy(p.data), copy=True)
    return out


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
    rng = model.rng
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
    out = {}
    shared = model.rng
    for layer in model.all_layers():
        rng = getattr(layer, "rng", None)
        if isinstance(rng, np.random.Generator) and rng is not shared:
            try:
                out[layer.name] = rng_state(rng)
            except ValueError:
                pass
    return out


def save_model(model, filepath, overwrite=True, progress=None):
    """Write `model` (architecture, weights, compile configuration, optimizer state and the
    training generators' states) to one file, atomically. progress: where fit is (a
    checkpoint; see saving.checkpoints), or None for a plain model file."""
    if not schema.is_model(model):
        raise TypeError(f"save_model: expected a tidu Model, got {type(model).__name__}")
    if not model.built:
        raise ValueError(f"save: model '{model.name}' is not built yet (no weights); give the "
                         f"first layer input_shape=..., or fit / build it first")
    filepath = os.fspath(filepath)
    if progress is None and filepath.endswith(".keras"):   # Keras 3's format (saving.keras_file)
        from tidu.saving.keras_writer import save_keras
        return save_keras(model, filepath, overwrite=overwrite)
    check_overwrite(filepath, overwrite)
    training = {"rng": _rng_state(model, strict=progress is not None), "layer_rngs": _layer_rngs(model)}
    if progress is not None:
        training["fit"] = progress
    config = {"format": FORMAT, "format_version": FORMAT_VERSION,
              "tidu_version": _version(), "model": serialize_model(model),
              "compile": _compile_config(model), "training": training}
    config_bytes = json.dumps(config, indent=1, sort_keys=False, allow_nan=False).encode("utf-8")
    weights = safetensors_bytes(_weights_dict(model))
    state = {}
    if model.optimizer is not None and config["compile"] is not None:
        state = {k: np.asarray(backend.to_numpy(v)) for k, v in model.optimizer.state_dict().items()}
    elif progress is not None:
        raise ValueError("ModelCheckpoint: the model's compile configuration cannot be saved, so a "
                         "checkpoint could not be resumed from")
    opt_bytes = safetensors_bytes(state)
    copies = capture_weight_copies(model) if progress is not None else {}

    write_archive(filepath, config_bytes, weights, opt_bytes,
                  safetensors_bytes(copies) if copies else None)


def save_weights(model, filepath, overwrite=True):
    """Write the weights alone to a .safetensors file, atomically."""
    if not model.built:
        raise ValueError(f"save_weights: model '{model.name}' is not built yet (no weights)")
    filepath = os.fspath(filepath)
    check_overwrite(filepath, overwrite)
    data = safetensors_bytes(_weights_dict(model))
    atomic_write(filepath, lambda f: f.write(data))


def _version():
    return __version__


# --- building ------------------------------------------------------------------------------
def deserialize_model(config, custom_objects=None):
    """A new model from serialize_model's dict."""
    cls = schema.model_class(config.get("class_name"))
    if cls is None:
        raise ValueError(f"deserialize_model: expected class {schema.model_names()}, got "
                         f"{config.get('class_name')!r}")
    return cls.from_config(config["config"], custom_objects)


def _budget_initializers(model_config, budget):
    """A copy of the model config whose layers initialize every weight from `budget`, and the
    original initializers by layer name (put back after loading)."""
    config = copy.deepcopy(model_config)
    originals = {}

    def visit(mc):
        for lc in mc["config"].get("layers", []):
            if schema.model_class(lc.get("class_name")) is not None:
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

    for layer in model.all_layers():
        for key, value in originals.get(layer.name, {}).items():
            if hasattr(layer, key):
                try:
                    setattr(layer, key, initializers.get(value))
                except Exception as e:
                    raise fail(path, f"{CONFIG}: layer {layer.name!r}: {key} cannot be used: "
                                      f"{type(e).__name__}: {clip(str(e), 200)}") from None


def _read(filepath, custom_objects):
    """(name for messages, config, weights blob, weights, optimizer state, callbacks' weight
    copies or {}): a model file read and checked up to, not including, building the model."""
    _, path = source_and_name(filepath)
    members = read_members(filepath)
    config = parse_json(path, members[CONFIG])
    schema.check_config(path, config, custom_objects)
    weights = load_tensors(path, members[WEIGHTS], WEIGHTS)
    opt_state = load_tensors(path, members[OPTIMIZER], OPTIMIZER)
    copies = load_tensors(path, members[CALLBACKS], CALLBACKS) if CALLBACKS in members else {}
    return path, config, members[WEIGHTS], weights, opt_state, copies


def load_model(filepath, custom_objects=None, compile=True):
    """The model saved by `model.save(filepath)`: same architecture and weights, compiled with
    the same optimizer (state included), loss and metrics, and the same training generators,
    so predictions are identical and training continues as it would have.
    filepath: a path or a binary file object. custom_objects: {class name: class} for layers
    outside tidu.layers.

    A Keras 3 .keras file (metadata.json, config.json, model.weights.h5) is read by
    saving.keras_file: a path ending in .keras, unless it holds a tidu model file (a checkpoint
    so named), or any file with exactly Keras' members."""
    if _is_keras_file(filepath):
        from tidu.saving.keras_file import load_keras
        return load_keras(filepath, compile=compile)
    path, config, blob, weights, opt_state, _ = _read(filepath, custom_objects)
    budget = BuildBudget(path, sum(a.nbytes for a in weights.values()) + BUILD_SLACK,
                         f"the {WEIGHTS} member", BUILD_SLACK)
    model_config, originals = _budget_initializers(config["model"], budget)
    try:
        model = deserialize_model(model_config, custom_objects)
    except ModelFileError:
        raise
    except Exception as e:  # the schema passed, yet a constructor or build refused a value
        raise fail(path, f"the model in {CONFIG} cannot be built: {type(e).__name__}: "
                          f"{clip(str(e), 300)}") from None
    if not model.built:
        raise fail(path, f"{CONFIG}: the model has no input shape, so its weights cannot be made")
    params = model.weights
    expected = {p.name: (p.shape, p.dtype) for p in params}
    if len(expected) != len(params):
        raise fail(path, f"{CONFIG}: the model's weight names are not unique")
    check_tensors(path, WEIGHTS, weights, expected)

    training = config.get("training") or {}
    layer_rngs = _check_layer_rngs(path, model, training.get("layer_rngs") or {})
    comp = config.get("compile") if compile else None
    if comp is not None:
        _compile_from_config(path, model, comp, custom_objects)
        if model.optimizer is not None and opt_state:
            _load_optimizer_state(path, model, opt_state)

    _restore_initializers(path, model, originals)

    for p in params:  # everything checked: now write
        p.data[...] = backend.as_array(weights[p.name], p.dtype)
    model.rng = make_rng(training["rng"]) if training.get("rng") is not None else None
    for layer, state in layer_rngs:
        layer.rng = make_rng(state)
    return model


def _is_keras_file(filepath):
    from tidu.saving.keras_file import KERAS_MEMBERS, member_names

    source, path = source_and_name(filepath)
    if isinstance(source, str) and not os.path.isfile(source):
        return False   # the tidu reader says it is missing
    names = member_names(source)
    if names is not None and sorted(set(names) - {CALLBACKS}) == sorted([CONFIG, WEIGHTS, OPTIMIZER]):
        return False
    if names is not None and sorted(names) == sorted(KERAS_MEMBERS):
        return True
    return path.endswith(".keras")


def _fresh_copy(optimizer):
    """A new optimizer of the same class and configuration, with no state."""
    from tidu import optimizers
    return optimizers.deserialize(optimizers.serialize(optimizer))


def _check_layer_rngs(path, model, layer_rngs):
    """[(layer, state)]: by name, or, when the names differ (a model built again in another
    session), by position among the layers with a generator of their own."""
    by_name = {layer.name: layer for layer in model.all_layers()}
    if not all(name in by_name for name in layer_rngs):
        own = [layer for layer in model.all_layers()
               if hasattr(layer, "rng") and getattr(layer, "seed", None) is not None]
        if len(own) == len(layer_rngs):
            return list(zip(own, layer_rngs.values()))
    out = []
    for name, state in layer_rngs.items():
        layer = by_name.get(name)
        if layer is None or not hasattr(layer, "rng"):
            raise fail(path, f"{CONFIG}: training.layer_rngs names {name!r}, which is not a layer "
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
                raise fail(path, f"{OPTIMIZER}: {key!r} must be a number, got an array of shape "
                                  f"{arr.shape} and dtype {arr.dtype}")
            if not np.isfinite(arr) or arr < 0 or (key == "iterations" and arr > 2**62):
                raise fail(path, f"{OPTIMIZER}: {key!r} must be a finite number >= 0, got {arr}")
            continue
        owner, _, slot = key.partition("/")
        if owner == "global" or owner.startswith("key:"):
            continue
        if not owner.startswith("param") or not slot:
            raise fail(path, f"{OPTIMIZER}: malformed state name {short(key)}")
        try:
            i = int(owner[len("param"):])
        except ValueError:
            raise fail(path, f"{OPTIMIZER}: malformed state name {short(key)}") from None
        if not 0 <= i < len(params):
            raise fail(path, f"{OPTIMIZER}: state {short(key)} is for parameter {i}, but the model "
                              f"has {len(params)} trainable weights")
        if slots is None:
            slots = set(opt.init_state(np.zeros((1,), params[i].dtype)))
        if slot not in slots:
            raise fail(path, f"{OPTIMIZER}: state {short(key)}: {type(opt).__name__} keeps "
                              f"{sorted(slots) or 'no per-weight state'}, not {slot!r}")
        if tuple(arr.shape) != tuple(params[i].shape) or arr.dtype.kind != "f":
            raise fail(path, f"{OPTIMIZER}: state {key!r} has shape {tuple(arr.shape)} and dtype "
                              f"{arr.dtype}, but parameter {i} ('{params[i].name}') has shape "
                              f"{tuple(params[i].shape)} and dtype {params[i].dtype}")
    if "iterations" not in state:
        raise fail(path, f"{OPTIMIZER}: no 'iterations' entry; keys: {short(sorted(state))}")


def _load_optimizer_state(path, model, opt_state):
    _check_optimizer_state(path, model, opt_state)
    try:
        model.optimizer.load_state_dict(opt_state)
    except Exception as e:
        raise fail(path, f"{OPTIMIZER}: the optimizer state does not fit the model: "
                          f"{type(e).__name__}: {clip(str(e), 300)}") from None


def _compile_from_config(path, model, comp, custom_objects):
    from tidu import losses, metrics as M, optimizers
    try:
        opt = optimizers.deserialize(comp["optimizer"]) if isinstance(comp["optimizer"], dict) \
            else optimizers.get(comp["optimizer"])
        loss = losses.deserialize(comp["loss"], custom_objects) if comp.get("loss") is not None else None
        metric_objs = [M.deserialize(m, custom_objects, loss=loss) for m in comp.get("metrics", [])]
        model.compile(optimizer=opt, loss=loss, metrics=metric_objs, loss_weights=comp.get("loss_weights"))
    except Exception as e:
        raise fail(path, f"{CONFIG}: the compile section cannot be used: {type(e).__name__}: "
                          f"{clip(str(e), 300)}") from None


# --- checkpoints -----------------------------------------------------------------------------
def read_checkpoint(filepath, model, custom_objects=None):
    """A checkpoint written by ModelCheckpoint, read and checked against `model` (same weights
    by name or position, shapes and dtypes; same optimizer class; progress recorded), as a
    saving.checkpoints.Resume that fit applies. Nothing in `model` changes here."""
    path, config, blob, tensors, opt_state, copies = _read(filepath, custom_objects)
    training = config.get("training") or {}
    progress = training.get("fit")
    if progress is None:
        raise ValueError(f"resume_from: {path} is a model file without training progress (written "
                         f"by model.save, not by ModelCheckpoint); load it with load_model or "
                         f"load_weights instead")
    if training.get("rng") is None:
        raise fail(path, f"{CONFIG}: a checkpoint must record the training generator (training.rng)")
    if not model.built:
        raise ValueError(f"resume_from: model '{model.name}' is not built yet")
    params = model.weights
    values = match_weights(path, WEIGHTS, blob, tensors, params, by_name=False)
    comp = config.get("compile") or {}
    saved_opt = comp.get("optimizer")
    saved_cls = saved_opt.get("class_name") if isinstance(saved_opt, dict) else saved_opt
    if model.optimizer is None or saved_cls != type(model.optimizer).__name__:
        raise ValueError(f"resume_from: {path} was written with optimizer {saved_cls!r}, the model is "
                         f"compiled with {type(model.optimizer).__name__ if model.optimizer else None!r}; "
                         f"compile it as for the run that wrote the checkpoint")
    _check_optimizer_state(path, model, opt_state)
    try:  # on a fresh copy of the optimizer: fit applies it only once everything is checked
        _fresh_copy(model.optimizer).load_state_dict(opt_state)
    except Exception as e:
        raise fail(path, f"{OPTIMIZER}: the optimizer state does not fit the model: "
                          f"{type(e).__name__}: {clip(str(e), 300)}") from None
    layer_rngs = dict((layer.name, state) for layer, state in
                      _check_layer_rngs(path, model, training.get("layer_rngs") or {}))
    return Resume(path, progress, [backend.as_array(v, p.dtype) for p, v in zip(params, values)],
                  opt_state, training["rng"], layer_rngs, _check_weight_copies(path, params, copies))


def _check_weight_copies(path, params, tensors):
    """{callback key: [array per weight]} from the callbacks member, each group checked against
    the model's weights (count, shapes, dtypes) so that a resume fails before changing anything."""
    groups = group_weight_copies(tensors)
    if isinstance(groups, str):
        raise fail(path, f"{CALLBACKS}: {groups}")
    for key, arrays in groups.items():
        if len(arrays) != len(params):
            raise fail(path, f"{CALLBACKS}: callback {key!r} holds {len(arrays)} weight copies, the "
                              f"model has {len(params)} weights")
        for i, (a, p) in enumerate(zip(arrays, params)):
            if a.shape != tuple(p.shape) or a.dtype != p.dtype:
                raise fail(path, f"{CALLBACKS}: callback {key!r}, copy {i}: expected {p.name} "
                                  f"{tuple(p.shape)} {p.dtype}, got {a.shape} {a.dtype}")
    return groups


def load_weights(model, filepath, by_name=False):
    """Set the model's weights from a .safetensors file (save_weights) or a model file (save).

    As Keras, weights are matched by position (the order they were saved in, which is the
    model's weight order) when the names differ, e.g. for a new model of the same
    architecture whose layers got other automatic names; by_name=True matches names only.
    Count, shapes and dtypes are checked first; nothing is written on a mismatch."""
    source, path = source_and_name(filepath)
    if not model.built:
        raise ValueError(f"load_weights: model '{model.name}' is not built yet; build it (or fit "
                         f"it) first so its weights exist")
    if is_archive(source):
        blob = read_members(filepath)[WEIGHTS]
        member = WEIGHTS
    else:
        if isinstance(source, str):
            with open(source, "rb") as f:
                blob = f.read()
        else:
            blob = source.read()
        member = os.path.basename(path)
    tensors = load_tensors(path, blob, member)
    params = model.weights
    values = match_weights(path, member, blob, tensors, params, by_name)
    for p, v in zip(params, values):
        p.data[...] = backend.as_array(v, p.dtype)
