"""tidu's exception types. Each message says where, what was expected and what was got."""


class ShapeError(ValueError):
    """An array's shape does not fit where it is used."""


class NotBuiltError(RuntimeError):
    """A layer or model was used before its weights exist (no input shape known yet)."""


class ModelFileError(ValueError):
    """A model or checkpoint file is truncated, corrupted, tampered with or of another format."""


class GradcheckError(AssertionError):
    """Analytic and numerical gradients disagree (raised by tidu.gradcheck)."""


class DivergenceError(ValueError):
    """Training went non-finite (NaN or ±inf) and stopped. The attributes say where, None where
    they do not apply: `rule`, `update` (the server update that was refused), `worker`,
    `staleness` (parameter server); `epoch`, `step` (fit). The message says which weights the
    model holds."""

    def __init__(self, message, rule=None, update=None, worker=None, staleness=None, epoch=None,
                 step=None):
        super().__init__(message)
        self.rule, self.update, self.worker, self.staleness = rule, update, worker, staleness
        self.epoch, self.step = epoch, step
