"""A .keras file's compile_config <-> a tidu model's compile: optimizer (class and arguments),
loss and metrics, when the names map both ways. Optimizer state is not carried.

Reading: a compile config tidu cannot honour (an optimizer or loss without a tidu twin, a
learning-rate schedule, EMA, a non-default reduction ...) is not guessed at: the model is
returned uncompiled, with a warning saying why. Writing: a compile Keras could not rebuild
likewise writes compile_config null, with a warning.
"""
import inspect
import warnings

__all__ = ["compile_from_keras", "compile_to_keras"]

# Keras optimizer class -> its own arguments (beyond the common ones below), all of which tidu's
# class of the same name takes with the same meaning.
OPTIMIZERS = {
    "SGD": ("momentum", "nesterov"),
    "RMSprop": ("rho", "momentum", "epsilon", "centered"),
    "Adam": ("beta_1", "beta_2", "epsilon", "amsgrad"),
    "Adamax": ("beta_1", "beta_2", "epsilon"),
    "Nadam": ("beta_1", "beta_2", "epsilon"),
    "Adagrad": ("initial_accumulator_value", "epsilon"),
    "Adadelta": ("rho", "epsilon"),
}
COMMON = ("learning_rate", "weight_decay", "clipnorm", "clipvalue", "global_clipnorm")
# Keras-only optimizer arguments with the one value tidu honours.
KERAS_ONLY = {"use_ema": False, "ema_overwrite_frequency": None, "loss_scale_factor": None,
              "gradient_accumulation_steps": None}
IGNORED = ("name", "ema_momentum")   # a label; EMA's momentum, unused without use_ema
# tidu-only optimizer arguments with the value Keras' classes compute.
TIDU_ONLY = {"convention": "keras", "stable": False, "dampening": 0.0, "ema": False, "name": None}
LOSS_KERAS_ONLY = {"dtype": None, "label_smoothing": 0.0, "axis": -1, "ignore_class": None}
LOSS_KEYS = ("from_logits", "label_smoothing", "axis", "delta", "name", "reduction")


class Untranslatable(Exception):
    pass


# --- Keras -> tidu ---------------------------------------------------------------------------
def optimizer_to_tidu(value):
    from tidu import optimizers

    if isinstance(value, str):
        return optimizers.get(value)
    if not isinstance(value, dict) or value.get("class_name") not in OPTIMIZERS:
        raise Untranslatable(f"optimizer {_name(value)!r} has no tidu equivalent (known: "
                             f"{', '.join(OPTIMIZERS)})")
    name, config = value["class_name"], dict(value.get("config") or {})
    kwargs = {}
    for key, v in config.items():
        if key in COMMON or key in OPTIMIZERS[name]:
            if key == "learning_rate" and not isinstance(v, (int, float)):
                raise Untranslatable(f"learning_rate {_short(v)} (a schedule) is not translated")
            kwargs[key] = v
        elif key in KERAS_ONLY:
            if v != KERAS_ONLY[key] or type(v) is not type(KERAS_ONLY[key]):
                raise Untranslatable(f"{name}: {key}={_short(v)} is not supported")
        elif key not in IGNORED:
            raise Untranslatable(f"{name}: unknown argument {key!r}")
    return optimizers.deserialize({"class_name": name, "config": kwargs})


def loss_to_tidu(value):
    from tidu import losses

    if isinstance(value, str):
        return losses.get(value)
    if not isinstance(value, dict) or not isinstance(value.get("class_name"), str):
        raise Untranslatable(f"loss {_short(value)} is not translated")
    config = dict(value.get("config") or {})
    try:
        made = losses.get(value["class_name"])
    except ValueError as e:
        raise Untranslatable(f"loss {value['class_name']} has no tidu twin") from e
    accepted = inspect.signature(type(made).__init__).parameters
    for key, default in LOSS_KERAS_ONLY.items():      # Keras arguments tidu has no use for
        if key in config and key not in accepted:
            if config[key] != default:
                raise Untranslatable(f"loss {value['class_name']}: {key}={_short(config[key])} "
                                     f"is not supported (only {default!r})")
            del config[key]
    return losses.deserialize({"class_name": value["class_name"], "config": config})


def compile_from_keras(model, comp, path):
    """Compile `model` as `comp` (a Keras compile_config) says, or warn and leave it."""
    from tidu import metrics as M

    try:
        if not isinstance(comp, dict):
            raise Untranslatable(f"expected a dict, got {_short(comp)}")
        for key in ("weighted_metrics",):
            if comp.get(key):
                raise Untranslatable(f"{key} is not supported")
        opt = optimizer_to_tidu(comp.get("optimizer", "rmsprop"))
        loss = loss_to_tidu(comp["loss"]) if comp.get("loss") is not None else None
        metrics = comp.get("metrics") or []
        if not isinstance(metrics, list) or not all(isinstance(m, (str, dict)) for m in metrics):
            raise Untranslatable(f"metrics {_short(metrics)}: expected a list of names")
        metric_objs = [M.get(m if isinstance(m, str) else
                             {"class_name": m.get("class_name"), "config": m.get("config") or {}},
                             loss=loss) for m in metrics]
        model.compile(optimizer=opt, loss=loss, metrics=metric_objs,
                      loss_weights=comp.get("loss_weights"))
    except Exception as e:
        warnings.warn(f"{path}: the compile configuration is not used ({type(e).__name__}: "
                      f"{_short(str(e), 300)}); the model is returned uncompiled: compile it "
                      f"before training")


# --- tidu -> Keras ---------------------------------------------------------------------------
def optimizer_to_keras(opt):
    from tidu import optimizers

    cfg = optimizers.serialize(opt)
    name, config = cfg["class_name"], dict(cfg["config"])
    if name not in OPTIMIZERS:
        raise Untranslatable(f"optimizer {name} has no Keras equivalent")
    out = {}
    for key, v in config.items():
        if key in COMMON or key in OPTIMIZERS[name]:
            out[key] = v
        elif key in TIDU_ONLY:
            if key != "name" and v != TIDU_ONLY[key]:
                raise Untranslatable(f"{name}: {key}={v!r} has no Keras equivalent")
        else:
            raise Untranslatable(f"{name}: argument {key!r} has no Keras equivalent")
    return {"module": "keras.optimizers", "class_name": name, "config": out,
            "registered_name": None}


def loss_to_keras(loss):
    from tidu import losses

    cfg = losses.serialize(loss)
    if isinstance(cfg, str):
        return cfg
    config = dict(cfg.get("config") or {})
    extra = sorted(set(config) - set(LOSS_KEYS))
    if extra:
        raise Untranslatable(f"loss {cfg.get('class_name')}: {extra} have no Keras equivalent")
    name = config.get("name")
    if isinstance(name, str) and losses.serialize(losses.get(name)) == cfg:
        return name                       # the default loss of that name: Keras' string
    return {"module": "keras.losses", "class_name": cfg["class_name"],
            "config": {"reduction": "sum_over_batch_size", **config}, "registered_name": None}


def metric_to_keras(metric):
    from tidu import metrics as M

    cfg = M.serialize(metric)
    if isinstance(cfg, str):
        return cfg
    name = (cfg.get("config") or {}).get("name")
    if not isinstance(name, str) or M.serialize(M.get(name)) != cfg:
        raise Untranslatable(f"metric {cfg.get('class_name')} with {cfg.get('config')} is not "
                             f"written (only metrics Keras knows by name)")
    return name


def compile_to_keras(model):
    """The Keras compile_config of a compiled tidu model, or None (uncompiled, or not
    translatable: warned)."""
    if getattr(model, "optimizer", None) is None:
        return None
    try:
        return {"optimizer": optimizer_to_keras(model.optimizer),
                "loss": loss_to_keras(model.compiled_loss) if model.compiled_loss is not None else None,
                "loss_weights": model.loss_weight,
                "metrics": [metric_to_keras(m) for m in model.compiled_metrics] or None,
                "weighted_metrics": None, "run_eagerly": False, "steps_per_execution": 1,
                "jit_compile": False}
    except Exception as e:
        warnings.warn(f"save: the compile configuration is not written to the .keras file "
                      f"({e}); compile the model again after loading it")
        return None


def _name(v):
    return v.get("class_name") if isinstance(v, dict) else v


def _short(v, n=120):
    r = v if isinstance(v, str) else repr(v)
    return r if len(r) <= n else r[:n] + "..."
