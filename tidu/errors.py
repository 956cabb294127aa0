"""tidu's exception types. Each message says where, what was expected and what was got."""


class ShapeError(ValueError):
    """An array's shape does not fit where it is used."""


class NotBuiltError(RuntimeError):
    """A layer or model was used before its weights exist (no input shape known yet)."""


class ModelFileError(ValueError):
    """A model or checkpoint file is truncated, corrupted, tampered with or of another format."""


class GradcheckError(AssertionError):
    """Analytic and numerical gradients disagree (raised by tidu.gradcheck)."""
