"""The translation table between Keras 3 layer configs and tidu layers: one Entry per class.

An Entry says, for one Keras layer class:
    args     the config keys both sides share, each with its kind of value:
             SAME (JSON as is), ACT (an activation name), INIT (an initializer dict),
             REG (a regularizer dict or null), CONSTRAINT (only null: tidu has no constraint
             classes), SHAPE (a list of ints);
    fixed    Keras-only keys tidu cannot honour, with the one value it can (their Keras
             default); any other value is refused, never dropped;
    tidu_only  tidu config keys Keras has no word for, with the value a file can carry (their
             tidu default); a layer with another value cannot be written;
    keras_extra  keys written to Keras as they are (e.g. data_format='channels_last');
    nested   a wrapper's config keys that hold a whole layer {module, class_name, config,
             registered_name}, each with the attribute holding that layer (the same name on
             both sides: Bidirectional's layer -> forward_layer, backward_layer -> itself);
    moot     Keras-only keys whose value cannot change what tidu computes, accepted with any
             value and not kept (zero_output_for_mask: tidu has no masks);
    common   which of name, trainable, dtype the Keras class takes (SpatialDropout2D: no
             trainable);
    cell_name  for a recurrent layer, the name Keras gives its cell (its weights lie there).
Every layer config also carries name, trainable and dtype (a DTypePolicy dict), handled once
for all (`common_to_tidu`, `common_to_keras`). A key neither side knows is refused.

Where the weights lie in model.weights.h5, under the layer's path, in tidu's order
(`weight_groups`): a layer's own in vars/0, 1, ...; a recurrent layer's in cell/vars (its own
vars empty); a wrapper's (own vars empty) under the attribute name of each nested layer, the
same way again: layers/bidirectional/forward_layer/cell/vars/0,
layers/time_distributed/layer/vars/0.

Adding a layer class is adding an Entry to ENTRIES; a tidu layer class Keras has no twin for
is named in REFUSED with the reason.
"""
import inspect
import re

from tidu import backend, initializers, layers as tidu_layers, regularizers

__all__ = ["Entry", "ENTRIES", "REFUSED", "entry_for_keras", "entry_for_layer", "snake_case",
           "initializer_to_keras", "TranslationError", "register", "unregister",
           "layer_to_keras"]

SAME, ACT, INIT, REG, CONSTRAINT, SHAPE = "same", "activation", "initializer", "regularizer", \
    "constraint", "shape"

# Keras activation names whose tidu function computes the same thing (checked against Keras in
# tests/test_keras_file.py). Not 'gelu': Keras' is the exact erf form, tidu's the tanh one.
ACTIVATIONS = ("linear", "relu", "relu6", "sigmoid", "tanh", "softmax", "log_softmax", "elu",
               "selu", "softplus", "softsign", "leaky_relu", "silu", "swish", "hard_sigmoid",
               "exponential", "mish")
# Initializer classes both sides have, with the same config keys (besides Keras' None-valued
# extras such as input_axes).
INITIALIZERS = ("Zeros", "Ones", "Constant", "RandomNormal", "RandomUniform", "TruncatedNormal",
                "VarianceScaling", "GlorotUniform", "GlorotNormal", "HeNormal", "HeUniform",
                "LecunNormal", "LecunUniform", "Orthogonal", "Identity")
REGULARIZERS = ("L1", "L2", "L1L2")
DTYPES = ("float16", "float32", "float64")


class TranslationError(ValueError):
    """A config value one side cannot honour; the file reader turns it into ModelFileError."""


def snake_case(name):
    """Keras' path name of a class in model.weights.h5: 'BatchNormalization' ->
    'batch_normalization', 'MaxPooling2D' -> 'max_pooling2d', 'LSTM' -> 'lstm'."""
    name = re.sub(r"\W+", "", name)
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)       # a capitalised word starts a part
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()  # so does a capital after lower


# --- values ------------------------------------------------------------------------------
def _where(layer, key):
    return f"layer {layer!r}: {key}"


def _keras_object(value, where, expected):
    """(class_name, config) of a Keras serialized object {module, class_name, config, ...}."""
    if not isinstance(value, dict) or not isinstance(value.get("class_name"), str) \
            or not isinstance(value.get("config", {}), dict):
        raise TranslationError(f"{where}: expected a serialized {expected} "
                               f"{{class_name, config}}, got {_short(value)}")
    return value["class_name"], dict(value.get("config") or {})


def _short(v, n=100):
    r = repr(v)
    return r if len(r) <= n else r[:n] + "..."


def _constructor_args(cls):
    return set(inspect.signature(cls.__init__).parameters) - {"self", "kwargs"}


def initializer_to_tidu(value, where):
    if isinstance(value, str):
        value = {"class_name": value, "config": {}}
    name, config = _keras_object(value, where, "initializer")
    if name not in INITIALIZERS:
        raise TranslationError(f"{where}: initializer {name!r} has no tidu equivalent; "
                               f"known: {', '.join(INITIALIZERS)}")
    cls = initializers.get(name).__class__
    takes = _constructor_args(cls)
    for key in [k for k in config if k not in takes]:
        if config[key] is not None:
            raise TranslationError(f"{where}: {name}({key}={_short(config[key])}) cannot be "
                                   f"honoured by tidu's {name}, which takes {sorted(takes)}")
        del config[key]
    try:
        return initializers.get({"class_name": name, "config": config})
    except Exception as e:
        raise TranslationError(f"{where}: {name}{config}: {e}") from None


def initializer_to_keras(init, where):
    cfg = initializers.serialize(init)
    if cfg["class_name"] not in INITIALIZERS:
        raise TranslationError(f"{where}: initializer {cfg['class_name']!r} has no Keras "
                               f"equivalent; use one of {', '.join(INITIALIZERS)}")
    return {"module": "keras.initializers", "class_name": cfg["class_name"],
            "config": cfg["config"], "registered_name": None}


def regularizer_to_tidu(value, where):
    if value is None:
        return None
    name, config = _keras_object(value, where, "regularizer")
    if name not in REGULARIZERS:
        raise TranslationError(f"{where}: regularizer {name!r} has no tidu equivalent; known: "
                               f"{', '.join(REGULARIZERS)}")
    try:
        return regularizers.get({"class_name": name, "config": config})
    except Exception as e:
        raise TranslationError(f"{where}: {name}{config}: {e}") from None


def regularizer_to_keras(reg, where):
    if reg is None:
        return None
    cfg = regularizers.serialize(reg)
    conf = dict(cfg["config"])
    if conf.pop("convention", "keras") != "keras" or conf.pop("n", None) is not None \
            or cfg["class_name"] not in REGULARIZERS:
        raise TranslationError(f"{where}: regularizer {_short(cfg)} has no Keras equivalent "
                               f"(only L1, L2, L1L2 with convention='keras')")
    return {"module": "keras.regularizers", "class_name": cfg["class_name"], "config": conf,
            "registered_name": None}


def to_tidu(kind, value, where):
    """A Keras config value of `kind` as tidu's constructor takes it."""
    if kind == SAME:
        return value
    if kind == SHAPE:
        if not isinstance(value, list) or not all(isinstance(d, int) for d in value):
            raise TranslationError(f"{where}: expected a list of ints, got {_short(value)}")
        return tuple(value)
    if kind == ACT:
        if value is None:
            return "linear"
        if not isinstance(value, str) or value not in ACTIVATIONS:
            raise TranslationError(f"{where}: activation {_short(value)} has no tidu "
                                   f"equivalent; known: {', '.join(ACTIVATIONS)}")
        return value
    if kind == INIT:
        return initializer_to_tidu(value, where)
    if kind == REG:
        return regularizer_to_tidu(value, where)
    if kind == CONSTRAINT:
        if value is not None:
            raise TranslationError(f"{where}: constraint {_short(value)} cannot be honoured "
                                   f"(tidu has no constraint classes); only null")
        return None
    raise AssertionError(kind)


def to_keras(kind, value, where):
    """A tidu get_config() value of `kind` in Keras' form."""
    if kind in (SAME, CONSTRAINT) or value is None:
        if kind == CONSTRAINT and value is not None:
            raise TranslationError(f"{where}: constraints cannot be written to a .keras file")
        return value
    if kind == SHAPE:
        return list(value)
    if kind == ACT:
        if value not in ACTIVATIONS:
            raise TranslationError(f"{where}: activation {_short(value)} has no Keras "
                                   f"equivalent; use one of {', '.join(ACTIVATIONS)}")
        return value
    if kind == INIT:
        return initializer_to_keras(initializers.get(value), where)
    if kind == REG:
        return regularizer_to_keras(regularizers.get(value), where)
    raise AssertionError(kind)


# --- the common keys -----------------------------------------------------------------------
def dtype_to_tidu(value, where):
    """A Keras dtype (a DTypePolicy dict or a name) as a dtype name; mixed policies refused."""
    if isinstance(value, dict):
        name, config = _keras_object(value, where, "dtype policy")
        if name != "DTypePolicy":
            raise TranslationError(f"{where}: dtype policy {name!r} is not supported (only "
                                   f"DTypePolicy with one dtype)")
        value = config.get("name")
    if value is None:
        return None
    if value not in DTYPES:
        raise TranslationError(f"{where}: dtype {_short(value)} is not supported; expected one "
                               f"of {', '.join(DTYPES)} (mixed precision is not)")
    return value


def dtype_to_keras(name):
    return {"module": "keras", "class_name": "DTypePolicy", "config": {"name": name},
            "registered_name": None}


def common_to_tidu(config, where):
    """tidu's name, trainable and dtype from a Keras layer config."""
    out = {"name": config.get("name")}
    if "trainable" in config:
        out["trainable"] = config["trainable"]
    if config.get("dtype") is not None:
        out["dtype"] = dtype_to_tidu(config["dtype"], f"{where}: dtype")
    return out


def common_to_keras(layer):
    return {"name": layer.name, "trainable": layer.trainable,
            "dtype": dtype_to_keras(layer.dtype or backend.floatx())}


# --- the entries -----------------------------------------------------------------------------
COMMON = ("name", "trainable", "dtype")


class Entry:
    """One layer class's translation (see the module docstring)."""

    def __init__(self, keras_name, tidu_cls, args=None, fixed=None, tidu_only=None,
                 keras_extra=None, nested=None, moot=(), common=COMMON, cell_name=None):
        self.keras_name, self.tidu_cls = keras_name, tidu_cls
        self.args, self.fixed = dict(args or {}), dict(fixed or {})
        self.tidu_only, self.keras_extra = dict(tidu_only or {}), dict(keras_extra or {})
        self.nested, self.moot, self.common = dict(nested or {}), tuple(moot), tuple(common)
        self.cell_name = cell_name

    def to_tidu(self, config):
        """tidu constructor kwargs from a Keras layer config (a nested layer made as a tidu
        layer); TranslationError for a key neither side knows or a value tidu cannot honour."""
        name = config.get("name")
        where = f"{self.keras_name} {name!r}"
        kwargs = common_to_tidu(config, where)
        for key, value in config.items():
            if key in ("name", "trainable", "dtype"):
                continue
            if key in self.args:
                kwargs[key] = to_tidu(self.args[key], value, f"{where}: {key}")
            elif key in self.nested:
                kwargs[key] = layer_to_tidu(value, f"{where}: {key}")
            elif key in self.moot:
                continue
            elif key in self.fixed:
                if not _same(value, self.fixed[key]):
                    raise TranslationError(f"{where}: {key}={_short(value)} is not supported "
                                           f"by tidu's {self.tidu_cls.__name__} (only "
                                           f"{self.fixed[key]!r})")
            else:
                raise TranslationError(f"{where}: unknown config key {key!r} (tidu translates "
                                       f"{sorted([*self.args, *self.nested, *self.fixed])})")
        return kwargs

    def to_keras(self, layer):
        """The Keras config of a tidu layer; TranslationError for a setting Keras has no
        word for."""
        where = f"{type(layer).__name__} {layer.name!r}"
        config = layer.get_config()
        out = {k: v for k, v in common_to_keras(layer).items() if k in self.common}
        for key, value in config.items():
            if key in ("name", "trainable", "dtype", "input_shape"):
                continue
            if key in self.args:
                out[key] = to_keras(self.args[key], value, f"{where}: {key}")
            elif key in self.nested:
                out[key] = layer_to_keras(getattr(layer, self.nested[key]), f"{where}: {key}")
            elif key in self.tidu_only:
                if not _same(value, self.tidu_only[key]):
                    raise TranslationError(f"{where}: {key}={_short(value)} has no Keras "
                                           f"equivalent; a .keras file can hold only "
                                           f"{key}={self.tidu_only[key]!r}")
            else:
                raise TranslationError(f"{where}: config key {key!r} has no Keras equivalent")
        out.update(self.keras_extra)
        return out

    def weight_groups(self, layer):
        """[(path under the layer's group, the vars group's name attribute, weights)], in
        tidu's order of layer.weights (the module docstring says where Keras puts them)."""
        if self.cell_name:
            return [((), layer.name, []), (("cell",), self.cell_name, layer.weights)]
        if not self.nested:
            return [((), layer.name, layer.weights)]
        out = [((), layer.name, [])]
        for attr in self.nested.values():    # Keras' path is its attribute's name too
            inner = getattr(layer, attr)
            out += [((attr, *path), name, params)
                    for path, name, params in _entry_of(inner, attr).weight_groups(inner)]
        return out


def _entry_of(layer, where):
    entry = entry_for_layer(layer)
    if entry is None:
        why = REFUSED.get(type(layer), "it has no Entry in saving.keras_layers")
        raise TranslationError(f"{where}: layer {layer.name!r} of class {type(layer).__name__} "
                               f"has no Keras equivalent: {why}")
    return entry


def layer_to_tidu(value, where):
    """A tidu layer made from a serialized Keras layer {module, class_name, config, ...}."""
    name, config = _keras_object(value, where, "layer")
    entry = entry_for_keras(name)
    if entry is None:
        raise TranslationError(f"{where}: layer class {name!r} cannot be loaded; tidu "
                               f"translates {', '.join(known_keras_classes())}")
    kwargs = entry.to_tidu(config)
    try:
        return entry.tidu_cls(**kwargs)
    except Exception as e:
        raise TranslationError(f"{where}: {name} {config.get('name')!r} cannot be made: "
                               f"{type(e).__name__}: {_short(str(e), 300)}") from None


def layer_to_keras(layer, where):
    """{module, class_name, config, registered_name} of a tidu layer."""
    entry = _entry_of(layer, where)
    return {"module": "keras.layers", "class_name": entry.keras_name,
            "config": entry.to_keras(layer), "registered_name": None}


def _same(a, b):
    """Equal values of the same JSON kind (False is not 0; a list is a tuple)."""
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return list(a) == list(b)
    return type(a) is type(b) and a == b


KERNEL = {"use_bias": SAME, "kernel_initializer": INIT, "bias_initializer": INIT,
          "kernel_regularizer": REG, "bias_regularizer": REG, "activity_regularizer": REG,
          "kernel_constraint": CONSTRAINT, "bias_constraint": CONSTRAINT}
RECURRENT = {**KERNEL, "units": SAME, "activation": ACT, "recurrent_initializer": INIT,
             "recurrent_regularizer": REG, "recurrent_constraint": CONSTRAINT,
             "return_sequences": SAME, "return_state": SAME, "go_backwards": SAME,
             "unroll": SAME, "stateful": SAME, "dropout": SAME, "recurrent_dropout": SAME}
RECURRENT_FIXED = {"seed": None}
MASK = ("zero_output_for_mask",)
POOL = {"pool_size": SHAPE, "strides": SHAPE, "padding": SAME, "data_format": SAME}
CHANNELS_LAST = {"data_format": "channels_last"}
NORM_INITS = {"beta_initializer": INIT, "gamma_initializer": INIT}

L = tidu_layers
ENTRIES = [
    Entry("Dense", L.Dense, {"units": SAME, "activation": ACT, **KERNEL},
          fixed={"quantization_config": None, "lora_rank": None, "lora_alpha": None}),
    Entry("Activation", L.Activation, {"activation": ACT}),
    Entry("Flatten", L.Flatten, {"data_format": SAME}, keras_extra=CHANNELS_LAST),
    Entry("Reshape", L.Reshape, {"target_shape": SHAPE}),
    Entry("Dropout", L.Dropout, {"rate": SAME, "seed": SAME, "noise_shape": SAME},
          tidu_only={"mode": "inverted"}),
    Entry("Identity", L.Identity),
    Entry("Conv2D", L.Conv2D, {"filters": SAME, "kernel_size": SHAPE, "strides": SHAPE,
                               "padding": SAME, "data_format": SAME, "dilation_rate": SHAPE,
                               "groups": SAME, "activation": ACT, **KERNEL},
          fixed={"lora_rank": None, "lora_alpha": None}, keras_extra=CHANNELS_LAST),
    Entry("MaxPooling2D", L.MaxPooling2D, POOL, keras_extra=CHANNELS_LAST),
    Entry("AveragePooling2D", L.AveragePooling2D, POOL, keras_extra=CHANNELS_LAST),
    Entry("GlobalAveragePooling2D", L.GlobalAveragePooling2D,
          {"data_format": SAME, "keepdims": SAME}, keras_extra=CHANNELS_LAST),
    Entry("GlobalMaxPooling2D", L.GlobalMaxPooling2D,
          {"data_format": SAME, "keepdims": SAME}, keras_extra=CHANNELS_LAST),
    Entry("BatchNormalization", L.BatchNormalization,
          {"axis": SAME, "momentum": SAME, "epsilon": SAME, "center": SAME, "scale": SAME,
           **NORM_INITS, "moving_mean_initializer": INIT, "moving_variance_initializer": INIT,
           "beta_regularizer": REG, "gamma_regularizer": REG, "beta_constraint": CONSTRAINT,
           "gamma_constraint": CONSTRAINT},
          fixed={"synchronized": False, "renorm": False, "renorm_clipping": None,
                 "renorm_momentum": 0.99}),
    Entry("LayerNormalization", L.LayerNormalization,
          {"axis": SAME, "epsilon": SAME, "center": SAME, "scale": SAME, **NORM_INITS},
          fixed={"rms_scaling": False, "beta_regularizer": None, "gamma_regularizer": None,
                 "beta_constraint": None, "gamma_constraint": None}),
    Entry("SimpleRNN", L.SimpleRNN, RECURRENT, fixed=RECURRENT_FIXED, moot=MASK,
          cell_name="simple_rnn_cell"),
    Entry("LSTM", L.LSTM, {**RECURRENT, "recurrent_activation": ACT, "unit_forget_bias": SAME},
          fixed=RECURRENT_FIXED, moot=MASK, cell_name="lstm_cell"),
    Entry("GRU", L.GRU, {**RECURRENT, "recurrent_activation": ACT, "reset_after": SAME},
          fixed={**RECURRENT_FIXED, "use_cudnn": "auto"}, moot=MASK,
          cell_name="gru_cell"),
    Entry("Embedding", L.Embedding,
          {"input_dim": SAME, "output_dim": SAME, "embeddings_initializer": INIT,
           "embeddings_regularizer": REG, "activity_regularizer": REG,
           "embeddings_constraint": CONSTRAINT, "mask_zero": SAME},
          fixed={"quantization_config": None, "lora_rank": None, "lora_alpha": None,
                 "input_length": None}),
    Entry("LeakyReLU", L.LeakyReLU, {"negative_slope": SAME}),
    Entry("ELU", L.ELU, {"alpha": SAME}),
    Entry("ReLU", L.ReLU, {"max_value": SAME, "negative_slope": SAME, "threshold": SAME}),
    Entry("Softmax", L.Softmax, {"axis": SAME}),
    Entry("PReLU", L.PReLU, {"alpha_initializer": INIT, "alpha_regularizer": REG,
                             "alpha_constraint": CONSTRAINT, "shared_axes": SAME}),
    Entry("Conv1D", L.Conv1D, {"filters": SAME, "kernel_size": SHAPE, "strides": SHAPE,
                               "padding": SAME, "data_format": SAME, "dilation_rate": SHAPE,
                               "groups": SAME, "activation": ACT, **KERNEL},
          fixed={"lora_rank": None, "lora_alpha": None}, keras_extra=CHANNELS_LAST),
    Entry("Conv2DTranspose", L.Conv2DTranspose,
          {"filters": SAME, "kernel_size": SHAPE, "strides": SHAPE, "padding": SAME,
           "output_padding": SAME, "data_format": SAME, "dilation_rate": SHAPE,
           "activation": ACT, **KERNEL}, keras_extra=CHANNELS_LAST),
    Entry("MaxPooling1D", L.MaxPooling1D, POOL, keras_extra=CHANNELS_LAST),
    Entry("AveragePooling1D", L.AveragePooling1D, POOL, keras_extra=CHANNELS_LAST),
    Entry("GlobalAveragePooling1D", L.GlobalAveragePooling1D,
          {"data_format": SAME, "keepdims": SAME}, keras_extra=CHANNELS_LAST),
    Entry("GlobalMaxPooling1D", L.GlobalMaxPooling1D,
          {"data_format": SAME, "keepdims": SAME}, keras_extra=CHANNELS_LAST),
    *[Entry(cls.__name__, cls) for cls in (L.Add, L.Subtract, L.Multiply, L.Average,
                                            L.Maximum, L.Minimum)],
    Entry("Concatenate", L.Concatenate, {"axis": SAME}),
    Entry("RepeatVector", L.RepeatVector, {"n": SAME}),
    Entry("Permute", L.Permute, {"dims": SHAPE}),
    Entry("UpSampling2D", L.UpSampling2D, {"size": SHAPE, "data_format": SAME,
                                           "interpolation": SAME}),
    Entry("ZeroPadding2D", L.ZeroPadding2D, {"padding": SAME, "data_format": SAME}),
    Entry("Cropping2D", L.Cropping2D, {"cropping": SAME, "data_format": SAME}),
    Entry("GaussianNoise", L.GaussianNoise, {"stddev": SAME, "seed": SAME}),
    Entry("GaussianDropout", L.GaussianDropout, {"rate": SAME, "seed": SAME}),
    Entry("SpatialDropout2D", L.SpatialDropout2D, {"rate": SAME, "seed": SAME,
                                                   "data_format": SAME},
          common=("name", "dtype")),
    Entry("Rescaling", L.Rescaling, {"scale": SAME, "offset": SAME}),
    Entry("Bidirectional", L.Bidirectional, {"merge_mode": SAME},
          nested={"layer": "forward_layer", "backward_layer": "backward_layer"}),
    Entry("TimeDistributed", L.TimeDistributed, nested={"layer": "layer"}),
]
# tidu layer classes a .keras file cannot hold, with the reason.
REFUSED = {
    L.L2Pooling2D: "Keras has no L2 pooling layer (its pooling layers are max and average)",
    L.Maxout: "Keras has no Maxout layer",
}
_BY_KERAS = {e.keras_name: e for e in ENTRIES}
_BY_TIDU = {e.tidu_cls: e for e in ENTRIES}


def register(entry):
    """Add an Entry (or replace the one of its Keras class); returns it."""
    old = _BY_KERAS.get(entry.keras_name)
    if old is not None:
        ENTRIES.remove(old)
        _BY_TIDU.pop(old.tidu_cls, None)
    ENTRIES.append(entry)
    _BY_KERAS[entry.keras_name], _BY_TIDU[entry.tidu_cls] = entry, entry
    return entry


def unregister(keras_name):
    entry = _BY_KERAS.pop(keras_name)
    ENTRIES.remove(entry)
    _BY_TIDU.pop(entry.tidu_cls, None)


def entry_for_keras(class_name):
    """The Entry of a Keras class name, or None."""
    return _BY_KERAS.get(class_name)


def entry_for_layer(layer):
    """The Entry of a tidu layer (its exact class), or None."""
    return _BY_TIDU.get(type(layer))


def known_keras_classes():
    return sorted(_BY_KERAS)
