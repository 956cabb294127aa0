"""What config.json may hold, checked before anything is built.

    {"format": "tidu.model", "format_version": 1, "tidu_version": str,
     "model": {class_name: a registered model class, config},
     "compile": {optimizer, loss, metrics, loss_weights} or null,
     "training": {rng, layer_rngs, fit} or null}

Model classes are looked up by name in a registry that tidu.models fills at import
(`register_model_class(Model, Sequential)`), so saving does not import the models.

A layer's arguments are checked against the layer class itself, not against a second table:
  * the names: those its constructor takes (and Layer's, when it forwards **kwargs);
  * the kind of each value, derived once per class (`layer_arg_kinds`):
      - the registries' naming convention: '*_initializer' a name or {class_name, config},
        '*_regularizer' / '*_constraint' also null, 'activation' / '*_activation' a name or
        {class_name, config} (a configured activation, e.g. Maxout(pieces=3));
      - else the kind of the constructor's default (True -> true or false, 2 -> an int,
        0.5 -> a number (or a list of numbers when the constructor takes [0.5], as
        Rescaling's per-channel scale), 'valid' -> a str, (2, 2) -> an int or a list of ints), or, for a
        required argument, of the value a probe instance reports in get_config(); an int is a
        number when the constructor takes 1.5 too, and its lower bound is the smallest of
        -1, 0, 1 the constructor accepts;
      - 'layer' / '*_layer' (Bidirectional, TimeDistributed): null or a layer's
        {class_name, config}, itself checked as a layer of the model is (recursively);
      - arguments whose default is None (no kind to read) take Layer's own kinds (name,
        dtype, input shapes) or any plain JSON of bounded size;
  * the values: the layer is constructed from the config (its own validation); an error is
    reported with the file, the layer and the argument it comes from.
Sizes are bounded (ints below 2**31, lists of at most 4096 entries), so a tampered config
cannot ask for absurd allocations before the weights budget (model_file) sees them.
"""
import collections
import functools
import inspect

from tidu.saving.archive import CONFIG, FORMAT, FORMAT_VERSION, clip, fail, short

MAX_DIM = 1 << 31            # a size in a config beyond this is not from a real model
MAX_LIST = 4096              # list lengths inside a layer or optimizer config
MAX_STR = 4096
DTYPES = ("float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool")

_MODEL_CLASSES = {}


def register_model_class(*classes):
    """Let model files name these classes ('Sequential', 'Model'): tidu.models calls it at
    import. The class must have from_config(config, custom_objects) and get_config()."""
    for cls in classes:
        _MODEL_CLASSES[cls.__name__] = cls


def model_class(name):
    """The registered model class called `name`, or None."""
    return _MODEL_CLASSES.get(name) if isinstance(name, str) else None


def is_model(obj):
    """Whether `obj` is an instance of a registered model class."""
    return isinstance(obj, tuple(_MODEL_CLASSES.values()))


def model_names():
    return " or ".join(sorted(_MODEL_CLASSES, reverse=True)) or "(none registered)"


# --- JSON kinds -----------------------------------------------------------------------------
def is_int(v, lo=None, hi=None):
    return (isinstance(v, int) and not isinstance(v, bool)
            and (lo is None or v >= lo) and (hi is None or v <= hi))


def is_real(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and abs(v) <= 1e300


def is_shape(v, allow_none=True, allow_empty=True):
    return (isinstance(v, list) and len(v) <= 32 and (allow_empty or v)
            and all((d is None and allow_none) or is_int(d, 1, MAX_DIM) for d in v))


def is_scalar(v):
    return v is None or isinstance(v, bool) or is_real(v) or (isinstance(v, str) and len(v) <= MAX_STR)


def is_plain(v, depth=0):
    """A JSON value of bounded size: scalars, short lists, {'class_name', 'config'} objects."""
    if is_scalar(v):
        return True
    if depth >= 4:
        return False
    if isinstance(v, list):
        return len(v) <= MAX_LIST and all(is_plain(e, depth + 1) for e in v)
    if isinstance(v, dict):
        return len(v) <= 64 and all(isinstance(k, str) and len(k) <= 256 and is_plain(e, depth + 1)
                                    for k, e in v.items())
    return False


def is_object(v):
    """A serialized initializer/regularizer/constraint/schedule: {'class_name': str, 'config': {...}}."""
    return (isinstance(v, dict) and set(v) <= {"class_name", "config"}
            and isinstance(v.get("class_name"), str) and len(v["class_name"]) <= 256
            and isinstance(v.get("config", {}), (dict, type(None))) and is_plain(v.get("config") or {}, 1))


def _is_name(v, n=64):
    return isinstance(v, str) and len(v) <= n


class Kind:
    """A kind of JSON value: what the messages call it, and the test."""

    def __init__(self, text, test):
        self.text, self.test = text, test

    def __repr__(self):
        return f"Kind({self.text!r})"


def int_kind(int_minimum=None, list_minimum=None, ints=True, lists=False):
    """An int >= int_minimum, a list of 1..8 ints >= list_minimum, or either (None: no lower
    bound); every int bounded by MAX_DIM in size."""
    def bound(m):
        return -MAX_DIM if m is None else m

    def text(m):
        return "" if m is None else f" >= {m}"
    one, many = f"an int{text(int_minimum)}", f"a list of ints{text(list_minimum)}"
    if ints and lists:
        description = f"{one} or a list of them" if int_minimum == list_minimum else f"{one} or {many}"
    else:
        description = one if ints else many

    def test(v):
        if ints and is_int(v, bound(int_minimum), MAX_DIM):
            return True
        return lists and isinstance(v, list) and 1 <= len(v) <= 8 and all(
            is_int(d, bound(list_minimum), MAX_DIM) for d in v)
    return Kind(description, test)


BOOL = Kind("true or false", lambda v: isinstance(v, bool))
NUMBER = Kind("a finite number", is_real)
NUMBERS = Kind("a finite number or a list of them",
               lambda v: is_real(v) or (isinstance(v, list) and 1 <= len(v) <= MAX_LIST
                                        and all(is_real(e) for e in v)))
STR = Kind("a str", lambda v: _is_name(v, 256))
PLAIN = Kind("plain JSON of bounded size", is_plain)
NAME = Kind("a non-empty str", lambda v: isinstance(v, str) and 0 < len(v) <= 256)
DTYPE = Kind(f"null or one of {', '.join(DTYPES)}", lambda v: v is None or v in DTYPES)
SHAPE = Kind("a list of ints >= 1 (null for unknown)", lambda v: v is None or is_shape(v))
OPT_POSITIVE = Kind("null or an int >= 1", lambda v: v is None or is_int(v, 1, MAX_DIM))
ACTIVATION = Kind("null, an activation name or {class_name, config}",
                  lambda v: v is None or _is_name(v) or is_object(v))
INITIALIZER = Kind("a name or {class_name, config}", lambda v: _is_name(v) or is_object(v))
LAYER = Kind("null or a layer's {class_name, config}",
              lambda v: v is None or (isinstance(v, dict) and isinstance(v.get("class_name"), str)))
OPT_OBJECT = Kind("null, a name or {class_name, config}",
                  lambda v: v is None or _is_name(v) or is_object(v))

# The keyword arguments of Layer itself, whose default (None) says nothing of their kind.
_LAYER_KINDS = {"name": NAME, "dtype": DTYPE, "input_shape": SHAPE, "batch_input_shape": SHAPE,
                "shape": SHAPE, "input_dim": OPT_POSITIVE}
_PROBE_VALUES = (1, 0.5, [1], "linear")   # tried, in turn, for every required argument


# --- the kinds of a layer class's arguments --------------------------------------------------------
def _signature(cls):
    """{argument: default (inspect.Parameter.empty when required)} of the constructor, with
    Layer's arguments when it forwards **kwargs (walking up the classes)."""
    args = {}
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        params = inspect.signature(vars(klass)["__init__"]).parameters.values()
        for p in params:
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                args.setdefault(p.name, p.default)
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break
    return args


def _accepts(cls, config):
    try:
        cls(**config)
    except Exception:
        return False
    return True


def _probe(cls, signature):
    """(a config the class accepts, with every required argument set), or None."""
    required = [k for k, d in signature.items() if d is inspect.Parameter.empty]
    for value in _PROBE_VALUES:
        args = {k: value for k in required}
        try:
            layer = cls(name="probe", **args)
            return {**args, **layer.get_config(), "name": "probe"}
        except Exception:
            continue
    return None


def _smallest_accepted(cls, probe, key, make):
    """The smallest of -1, 0, 1 the constructor accepts for `key` (as make(candidate)); None
    when -1 is accepted (no lower bound)."""
    for candidate in (-1, 0):
        if _accepts(cls, {**probe, key: make(candidate)}):
            return None if candidate < 0 else 0
    return 1


def _kind_of_value(cls, key, value, probe):
    """The kind of `value` (a default or a probe's), refined by what the constructor accepts:
    for ints, whether it takes any number, an int, a list, or both, and the lower bound of each."""
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, float):  # a list of them too when the constructor takes one
        return NUMBERS if probe is not None and _accepts(cls, {**probe, key: [value]}) else NUMBER
    if isinstance(value, str):
        return STR
    if isinstance(value, (tuple, list)) and value and all(is_int(v) for v in value):
        many = list(value)
    elif is_int(value):
        many = [value]
    else:
        return None
    if probe is None:
        return int_kind(ints=not isinstance(value, (tuple, list)), lists=isinstance(value, (tuple, list)))
    if _accepts(cls, {**probe, key: many[0] + 0.5}):  # an int default or probe of a number
        return NUMBER
    ints = _accepts(cls, {**probe, key: many[0]})
    lists = _accepts(cls, {**probe, key: many})
    if not ints and not lists:
        return None
    return int_kind(_smallest_accepted(cls, probe, key, lambda c: c) if ints else None,
                    _smallest_accepted(cls, probe, key, lambda c: [c] * len(many)) if lists else None,
                    ints=ints, lists=lists)


@functools.lru_cache(maxsize=None)
def layer_arg_kinds(cls):
    """{argument: Kind} for every argument the class's constructor takes (see the module
    docstring); probe: a config the class accepts (None when none was found)."""
    signature = _signature(cls)
    probe = _probe(cls, signature)
    kinds = {}
    for key, default in signature.items():
        if key.endswith("_initializer"):
            kinds[key] = INITIALIZER
        elif key.endswith(("_regularizer", "_constraint")):
            kinds[key] = OPT_OBJECT
        elif key == "activation" or key.endswith("_activation"):
            kinds[key] = ACTIVATION
        elif key == "layer" or key.endswith("_layer"):
            kinds[key] = LAYER
        else:
            value = default
            if value is inspect.Parameter.empty:
                value = probe.get(key) if probe is not None else None
            kinds[key] = (_kind_of_value(cls, key, value, probe) if value is not None else None) \
                or _LAYER_KINDS.get(key, PLAIN)
    return kinds, (None if probe is None else dict(probe))


def _build_error(path, where, cls, cfg, error):
    """ModelFileError for a config the constructor refused: the argument it comes from is the
    one whose probe value makes the constructor accept the rest."""
    _, probe = layer_arg_kinds(cls)
    culprit = None
    if probe is not None:
        for key in cfg:
            if key != "name" and key in probe and cfg[key] != probe[key] \
                    and _accepts(cls, {**cfg, key: probe[key]}):
                culprit = key
                break
    what = f"{culprit} cannot be used ({culprit}={short(cfg[culprit], 80)}): " if culprit else ""
    return fail(path, f"{where}: the layer cannot be built: {what}{type(error).__name__}: "
                      f"{clip(str(error), 300)}")


def layer_class(class_name, custom_objects):
    from tidu import layers as tl
    if custom_objects and class_name in custom_objects:
        return custom_objects[class_name]
    return tl.get(class_name)


def check_layer_config(path, lc, where, custom_objects, depth):
    if not isinstance(lc, dict) or not isinstance(lc.get("class_name"), str) \
            or not isinstance(lc.get("config", {}), dict):
        raise fail(path, f"{where}: expected {{'class_name': str, 'config': {{...}}}}, got {short(lc)}")
    extra = set(lc) - {"class_name", "config"}
    if extra:
        raise fail(path, f"{where}: unexpected key(s) {short(sorted(extra))}")
    name = lc["class_name"]
    if model_class(name) is not None:
        check_model_config(path, lc, where, custom_objects, depth + 1)
        return
    try:
        cls = layer_class(name, custom_objects)
    except ValueError as e:
        raise fail(path, f"{where}: {e}") from None
    cfg = lc.get("config") or {}
    label = f"{where} ({name} {short(cfg.get('name'), 60)})"
    kinds, _ = layer_arg_kinds(cls)
    unknown = sorted(set(cfg) - set(kinds))
    if unknown:
        raise fail(path, f"{label}: unknown argument(s) {short(unknown)} for {name}")
    if "name" not in cfg:
        raise fail(path, f"{label}: expected a non-empty str 'name', got none")
    for key, value in cfg.items():
        kind = kinds[key]
        if not kind.test(value):
            raise fail(path, f"{label}: expected {key!r} to be {kind.text}, got {short(value)}")
        if kind is LAYER and value is not None:  # a wrapped layer: checked as the model's are
            if depth > 8:
                raise fail(path, f"{label}: layers nested more than 8 deep")
            check_layer_config(path, value, f"{label} argument {key!r}", custom_objects, depth + 1)
    try:  # the layer's own validation; it builds no weights
        cls(**cfg)
    except Exception as e:
        raise _build_error(path, label, cls, cfg, e) from None


def check_model_config(path, mc, where, custom_objects, depth=0):
    if depth > 8:
        raise fail(path, f"{where}: models nested more than 8 deep")
    if not isinstance(mc, dict) or model_class(mc.get("class_name")) is None:
        got = mc.get("class_name") if isinstance(mc, dict) else mc
        raise fail(path, f"{where}: expected a model of class {model_names()}, got {short(got)}")
    if set(mc) - {"class_name", "config"}:
        raise fail(path, f"{where}: unexpected key(s) {short(sorted(set(mc) - {'class_name', 'config'}))}")
    cfg = mc.get("config")
    if not isinstance(cfg, dict):
        raise fail(path, f"{where}: expected 'config' to be a dict, got {short(cfg)}")
    if not (isinstance(cfg.get("name"), str) and len(cfg["name"]) <= 256):
        raise fail(path, f"{where}: expected a str 'name', got {short(cfg.get('name'))}")
    layers = cfg.get("layers")
    if not isinstance(layers, list) or len(layers) > 10_000:
        raise fail(path, f"{where}: expected 'layers' to be a list, got {short(layers)}")
    for i, lc in enumerate(layers):
        check_layer_config(path, lc, f"{where} layer {i}", custom_objects, depth)
    names = [(lc.get("config") or {}).get("name") for lc in layers]
    dupes = sorted(n for n, k in collections.Counter(n for n in names if isinstance(n, str)).items() if k > 1)
    if dupes:
        raise fail(path, f"{where}: layer names {short(dupes)} appear more than once")
    if mc["class_name"] == "Sequential":
        allowed = {"name", "layers", "build_input_shape"}
        shape = cfg.get("build_input_shape")
        if shape is not None and not is_shape(shape, allow_empty=False):
            raise fail(path, f"{where}: expected 'build_input_shape' to be a list of positive "
                             f"ints (None for the batch), got {short(shape)}")
    else:
        allowed = {"name", "layers", "nodes", "input_shape", "input_dtype", "input_name"}
        _check_graph(path, cfg, where, names)
    extra = sorted(set(cfg) - allowed)
    if extra:
        raise fail(path, f"{where}: unexpected key(s) {short(extra)} in a {mc['class_name']} config")


def _check_graph(path, cfg, where, names):
    """The functional model's input and nodes: each node a layer of the model applied to the
    input or to earlier nodes, with plain keyword arguments."""
    if not is_shape(cfg.get("input_shape"), allow_none=True):
        raise fail(path, f"{where}: expected 'input_shape' to be a list of positive ints, "
                         f"got {short(cfg.get('input_shape'))}")
    if cfg.get("input_dtype") is not None and cfg["input_dtype"] not in DTYPES:
        raise fail(path, f"{where}: expected 'input_dtype' in {DTYPES}, got {short(cfg['input_dtype'])}")
    if cfg.get("input_name") is not None and not _is_name(cfg["input_name"], 256):
        raise fail(path, f"{where}: expected 'input_name' to be a str, got {short(cfg['input_name'])}")
    nodes = cfg.get("nodes")
    if not isinstance(nodes, list) or not nodes or len(nodes) > 10_000:
        raise fail(path, f"{where}: expected 'nodes' to be a non-empty list, got {short(nodes)}")
    for i, node in enumerate(nodes):
        ok = (isinstance(node, dict) and set(node) <= {"layer", "inbound", "kwargs"}
              and isinstance(node.get("layer"), str) and node["layer"] in names
              and isinstance(node.get("inbound"), list) and 0 < len(node["inbound"]) <= 64
              and all(s == "input" or is_int(s, 0, i - 1) for s in node["inbound"])
              and isinstance(node.get("kwargs", {}), dict)
              and all(isinstance(k, str) and k.isidentifier() and not k.startswith("_")
                      and k != "training" and is_scalar(v)
                      for k, v in node.get("kwargs", {}).items()))
        if not ok:
            raise fail(path, f"{where}: node {i} is malformed: {short(node)}")


# --- the compile and training sections ----------------------------------------------------------
def check_compile(path, comp):
    if not isinstance(comp, dict) or set(comp) - {"optimizer", "loss", "metrics", "loss_weights"}:
        raise fail(path, f"{CONFIG}: malformed 'compile' section: {short(comp)}")
    opt = comp.get("optimizer")
    if not (is_object(opt) or _is_name(opt)):
        raise fail(path, f"{CONFIG}: compile.optimizer must be a name or {{class_name, config}}, "
                         f"got {short(opt)}")
    loss = comp.get("loss")
    if loss is not None and not (is_object(loss) or _is_name(loss)):
        raise fail(path, f"{CONFIG}: compile.loss must be a name or {{class_name, config}}, got {short(loss)}")
    metrics = comp.get("metrics", [])
    if not isinstance(metrics, list) or len(metrics) > 64 or not all(
            is_object(m) or _is_name(m) for m in metrics):
        raise fail(path, f"{CONFIG}: compile.metrics must be a list of names or {{class_name, "
                         f"config}}, got {short(metrics)}")
    lw = comp.get("loss_weights")
    if lw is not None and not is_real(lw):
        raise fail(path, f"{CONFIG}: compile.loss_weights must be a number, got {short(lw)}")


def check_training(path, training):
    from tidu.saving.checkpoints import check_progress, check_rng_state

    if training is None:
        return
    if not isinstance(training, dict) or set(training) - {"rng", "layer_rngs", "fit"}:
        raise fail(path, f"{CONFIG}: malformed 'training' section: {short(training)}")
    if training.get("rng") is not None:
        bad = check_rng_state(training["rng"])
        if bad:
            raise fail(path, f"{CONFIG}: training.rng must be a PCG64 generator state: {bad}; got "
                             f"{short(training['rng'])}")
    layer_rngs = training.get("layer_rngs") or {}
    if not isinstance(layer_rngs, dict) or len(layer_rngs) > 10_000:
        raise fail(path, f"{CONFIG}: training.layer_rngs must be {{layer name: state}}, got {short(layer_rngs)}")
    for name, state in layer_rngs.items():
        bad = check_rng_state(state)
        if bad:
            raise fail(path, f"{CONFIG}: training.layer_rngs[{name!r}]: {bad}")
    if training.get("fit") is not None:
        bad = check_progress(training["fit"])
        if bad:
            raise fail(path, f"{CONFIG}: training.fit (the checkpoint's progress) is malformed: {bad}")


def check_config(path, config, custom_objects):
    """ModelFileError unless `config` (parsed config.json) is of the schema above."""
    if not isinstance(config, dict):
        raise fail(path, f"{CONFIG}: expected a JSON object, got {short(config)}")
    if config.get("format") != FORMAT:
        raise fail(path, f"{CONFIG}: expected format {FORMAT!r}, got {short(config.get('format'))}")
    if config.get("format_version") != FORMAT_VERSION or isinstance(config.get("format_version"), bool):
        raise fail(path, f"{CONFIG}: expected format_version {FORMAT_VERSION}, got "
                         f"{short(config.get('format_version'))} (written by another tidu version?)")
    extra = sorted(set(config) - {"format", "format_version", "tidu_version", "model", "compile", "training"})
    if extra:
        raise fail(path, f"{CONFIG}: unexpected key(s) {short(extra)}")
    version = config.get("tidu_version")
    if version is not None and not _is_name(version):
        raise fail(path, f"{CONFIG}: expected tidu_version to be a str, got {short(version)}")
    check_model_config(path, config.get("model"), "model", custom_objects)
    if config.get("compile") is not None:
        check_compile(path, config["compile"])
    check_training(path, config.get("training"))

