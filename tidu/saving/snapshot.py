"""A model's weights and its optimizer's state, copied in memory to put back later.

    snap = Snapshot.of(model)      # copies: every weight, optimizer.state_dict() (step count,
    ...                            #   moments, a constant learning rate) and its schedule, if any
    snap.restore(model)            # the model and its optimizer exactly as they were
    snap.take(model)               # copy again, into the same buffers when the shapes match

Used by the callbacks that put back earlier weights (TerminateOnNaN, LossExplosion) and by
tidu.tuning, whose every trial starts from the same point.
"""
import numpy as np

from tidu import backend

__all__ = ["Snapshot"]


class Snapshot:
    """weights: one array per model weight (None before the first take); optimizer: its
    state_dict() (None without an optimizer), which holds a constant learning rate; schedule:
    the optimizer's learning-rate schedule, when it has one (put back as is)."""

    def __init__(self):
        self.weights, self.optimizer, self.schedule = None, None, None

    @classmethod
    def of(cls, model):
        """A snapshot of `model` now."""
        snap = cls()
        snap.take(model)
        return snap

    def take(self, model):
        """Copy the model's weights and optimizer state now (reusing the buffers of the last
        copy when the weights have the same shapes: no allocation per step)."""
        params = model.weights
        if self.weights is None or [a.shape for a in self.weights] != [p.shape for p in params]:
            self.weights = [np.array(backend.to_numpy(p.data), copy=True) for p in params]
        else:
            for a, p in zip(self.weights, params):
                a[...] = backend.to_numpy(p.data)
        opt = getattr(model, "optimizer", None)
        self.optimizer = opt.state_dict() if opt is not None else None
        self.schedule = opt.schedule if opt is not None else None
        return self

    def restore(self, model):
        """Put the copied weights, optimizer state and learning rate back into `model`."""
        if self.weights is None:
            return
        model.set_weights(self.weights)
        if self.optimizer is not None and model.optimizer is not None:
            model.optimizer.load_state_dict(self.optimizer)
            rate = self.schedule if self.schedule is not None else self.optimizer.get("learning_rate")
            if rate is not None:  # (load_state_dict skips it while a schedule is set)
                model.optimizer.learning_rate = rate if callable(rate) else float(rate)
