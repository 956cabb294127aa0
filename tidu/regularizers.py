"""Weight penalties: `Dense(64, kernel_regularizer=regularizers.l2(1e-4))`.

A regularizer is called on a weight Tensor and returns a 0-d Tensor, built from
`tidu.functional` ops so that the loss's gradient includes the penalty's. The model adds the
penalties of every weight to each batch's loss. Two conventions:

keras (default), per batch, the penalty added to each batch loss as it is:
    L1(l1):      l1·Σ|w|                       gradient l1·sign(w)
    L2(l2):      l2·Σw²                        gradient 2·l2·w
    L1L2(l1, l2): l1·Σ|w| + l2·Σw²

notes, the cost of the notes (and Nielsen's book) with n the training-set size:
    L2:  C = C0 + λ/(2n)·Σw²    gradient λ/n·w, i.e. the update w ← (1 − ηλ/n)·w − η·∂C0/∂w
    L1:  C = C0 + λ/n·Σ|w|      gradient λ/n·sign(w)
  made with `L2(λ, convention='notes', n=60000)` or `notes_l2(λ, n)` (and `notes_l1`). C0 is
  the mean loss over a batch, so adding λ/(2n)Σw² to each batch loss gives the notes' C
  exactly. If n is left None, the training loop calls `regularizer.set_training_size(len(x))`
  at the start of every fit, so each fit uses its own n; an n given to the constructor is kept.
Weights only: the notes (and Keras' defaults) do not penalize biases.
"""
import tidu.functional as F
from tidu._checks import check_int, check_nonnegative
from tidu._registry import Configurable, Registry
from tidu.autograd import Tensor

__all__ = ["Regularizer", "L1", "L2", "L1L2", "l1", "l2", "l1_l2", "notes_l1", "notes_l2",
           "get", "serialize", "deserialize"]

_CONVENTIONS = ("keras", "notes")


class Regularizer(Configurable):
    """Base class: `reg(w) -> 0-d Tensor`; `get_config()` gives its arguments."""

    def __call__(self, x):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must define __call__ (abstract)")


class L1L2(Regularizer):
    """keras: l1·Σ|w| + l2·Σw².   notes: (l1/n)·Σ|w| + (l2/(2n))·Σw², n = training-set size."""

    def __init__(self, l1=0.0, l2=0.0, convention="keras", n=None):
        cls = type(self).__name__
        self.l1 = check_nonnegative(cls, "l1", l1)
        self.l2 = check_nonnegative(cls, "l2", l2)
        if convention not in _CONVENTIONS:
            raise ValueError(f"{cls}: expected convention in {_CONVENTIONS}, got {convention!r}")
        n = check_int(cls, "n (the training-set size)", n, minimum=1, allow_none=True)
        if convention == "keras" and n is not None:
            raise ValueError(f"{cls}: n is used only with convention='notes', got n={n!r}")
        self.convention = convention
        self.n_given = n          # the constructor's n: kept by every fit, and what is saved
        self.training_size = None  # the size of the current fit's training set

    @property
    def n(self):
        """The n of the notes' penalty: the constructor's n if given, else the training-set size
        of the current fit (set_training_size), else None."""
        return self.n_given if self.n_given is not None else self.training_size

    @n.setter
    def n(self, value):
        self.set_training_size(value)

    def set_training_size(self, n):
        """Called by the training loop at the start of every fit with the number of training
        samples; it becomes the penalty's n unless the constructor was given one."""
        self.training_size = check_int(f"{type(self).__name__}.set_training_size",
                                       "n (the number of training samples)", n, minimum=1)

    def factors(self):
        """(a, b) with penalty = a·Σ|w| + b·Σw²."""
        if self.convention == "keras":
            return self.l1, self.l2
        if self.n is None:
            raise ValueError(f"{type(self).__name__}: convention='notes' needs n, the training-set "
                             f"size; pass n= or call set_training_size(n) before training")
        return self.l1 / self.n, self.l2 / (2 * self.n)

    def __call__(self, x):
        x = x if isinstance(x, Tensor) else Tensor(x)
        a, b = self.factors()
        penalty = None
        if a:
            penalty = a * F.sum(F.abs(x))
        if b:
            term = b * F.sum(F.square(x))
            penalty = term if penalty is None else penalty + term
        return penalty if penalty is not None else F.sum(x * 0.0)

    def get_config(self):
        config = {"l1": self.l1, "l2": self.l2}
        if self.convention != "keras":
            config.update(convention=self.convention, n=self.n_given)
        return config


class L1(L1L2):
    """keras: l1·Σ|w|.   notes: (λ/n)·Σ|w| with λ = l1."""

    def __init__(self, l1=0.01, convention="keras", n=None):
        super().__init__(l1=l1, l2=0.0, convention=convention, n=n)

    def get_config(self):
        config = super().get_config()
        del config["l2"]
        return config


class L2(L1L2):
    """keras: l2·Σw².   notes: (λ/(2n))·Σw² with λ = l2."""

    def __init__(self, l2=0.01, convention="keras", n=None):
        super().__init__(l1=0.0, l2=l2, convention=convention, n=n)

    def get_config(self):
        config = super().get_config()
        del config["l1"]
        return config


def l1(l1=0.01):
    """Keras' `regularizers.l1(0.01)`: penalty l1·Σ|w|."""
    return L1(l1)


def l2(l2=0.01):
    """Keras' `regularizers.l2(0.01)`: penalty l2·Σw²."""
    return L2(l2)


def l1_l2(l1=0.01, l2=0.01):
    """Keras 2's `regularizers.l1_l2(l1=0.01, l2=0.01)`: penalty l1·Σ|w| + l2·Σw²."""
    return L1L2(l1, l2)


def notes_l2(lam, n):
    """The notes' weight decay: penalty λ/(2n)·Σw², n the training-set size."""
    return L2(lam, convention="notes", n=n)


def notes_l1(lam, n):
    """The notes' L1: penalty λ/n·Σ|w|, n the training-set size."""
    return L1(lam, convention="notes", n=n)


_NAMES = {"l1": L1, "l2": L2, "l1_l2": L1L2, "L1": L1, "L2": L2, "L1L2": L1L2}
_REGISTRY = Registry("regularizers", "regularizer", Regularizer, "a Regularizer", _NAMES,
                     cutoff=0.5, make=lambda cls: cls(0.01, 0.01) if cls is L1L2 else cls())


def get(identifier):
    """A regularizer from a name ('l2', default factor 0.01), a config dict, a Regularizer (as
    is), a Regularizer class (an instance with its defaults, as Keras 3) or any callable
    `w -> 0-d Tensor`. None gives None."""
    return _REGISTRY.get(identifier)


def serialize(regularizer):
    """{'class_name': 'L2', 'config': {'l2': 0.01}}: JSON-serializable."""
    return _REGISTRY.serialize(regularizer)


def deserialize(config):
    """The inverse of `serialize`; builds only the regularizers of this module."""
    return _REGISTRY.deserialize(config)
