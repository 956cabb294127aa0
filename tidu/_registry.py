"""What the name registries of initializers, regularizers, schedules, losses, metrics,
activations and optimizers share.

An object is saved in Keras' form, {'class_name': type(obj).__name__, 'config': obj.get_config()},
and rebuilt by `cls.from_config(config)`, which calls the constructor with the config. An
unknown name gets a hint, "; did you mean 'relu'?", and the list of the allowed ones.
"""
import difflib


class Configurable:
    """Base of the objects saved as {'class_name', 'config'}: `get_config()` gives the
    constructor's arguments, `from_config(config)` calls the constructor with them, and the
    repr shows them: `L2(l2=0.01)`."""

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def to_config(obj):
    """Keras' saved form of `obj`: {'class_name': its class's name, 'config': obj.get_config()}."""
    return {"class_name": type(obj).__name__, "config": obj.get_config()}


def split_config(config, where, expected="a dict with 'class_name' and 'config'", error=ValueError):
    """(class_name, a copy of the config dict) of Keras' saved form; for anything else,
    `error`: "<where>: expected <expected>, got <config>"."""
    if not isinstance(config, dict) or "class_name" not in config:
        raise error(f"{where}: expected {expected}, got {config!r}")
    return config["class_name"], dict(config.get("config") or {})


def did_you_mean(name, candidates, cutoff=0.6):
    """"; did you mean 'relu'?" with the candidate closest to `name`, or "" when none is close."""
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=cutoff)
    return f"; did you mean {close[0]!r}?" if close else ""


class Registry:
    """A module's names for its classes, behind its get/serialize/deserialize:

        get(None) -> None          get('he_normal') -> make(the class named)
        get({'class_name': ..., 'config': ...}) -> deserialize(it)
        get(any other callable) -> as is;  anything else -> TypeError
        serialize(obj) -> to_config(obj), for an instance of `base` only

    `what` names `base` with its article ("an Initializer"); an unknown name raises
    "<module>.get: unknown <kind> 'x'; did you mean 'y'? Allowed: <allowed>" (the hint from
    every registered name, close by `cutoff`; `allowed` defaults to all of them, in order).
    """

    def __init__(self, module, kind, base, what, names, allowed=None, cutoff=0.6, make=None):
        self.module, self.kind, self.base, self.what, self.names = module, kind, base, what, names
        self.allowed = list(names) if allowed is None else list(allowed)
        self.cutoff = cutoff
        self.make = make or (lambda cls: cls())

    def lookup(self, name):
        """The class registered as `name`; ValueError with the closest and the allowed names."""
        if name not in self.names:
            hint = did_you_mean(name, self.names, self.cutoff) or "."
            raise ValueError(f"{self.module}.get: unknown {self.kind} {name!r}{hint} "
                             f"Allowed: {', '.join(self.allowed)}")
        return self.names[name]

    def get(self, identifier):
        if identifier is None:
            return None
        if isinstance(identifier, str):
            return self.make(self.lookup(identifier))
        if isinstance(identifier, dict):
            return self.deserialize(identifier)
        if isinstance(identifier, type) and issubclass(identifier, self.base):
            return identifier()                      # a class: its defaults, as Keras 3's get
        if callable(identifier):
            return identifier
        raise TypeError(f"{self.module}.get: expected a name, a config dict, {self.what} or a "
                        f"callable, got {identifier!r}")

    def serialize(self, obj):
        if not isinstance(obj, self.base):
            raise TypeError(f"{self.module}.serialize: expected {self.what}, got {obj!r} "
                            f"(a plain function cannot be saved by name)")
        return to_config(obj)

    def deserialize(self, config):
        name, config = split_config(config, f"{self.module}.deserialize")
        return self.lookup(name).from_config(config)
