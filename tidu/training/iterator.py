"""Which samples each training step reads, in which order.

    Sampler        an endless stream of passes over a set of sample indices, reshuffled at the
                   start of every pass (fit's steps_per_epoch, where epochs need not align with
                   passes; each parameter-server worker over its shard)
    EpochIterator  fit's epochs: in order, shuffled (one permutation per epoch), by curriculum
                   (the easiest part first, widening), or from a Sampler; and the batches of an
                   epoch, augmented when fit has `augment`
"""
import math

import numpy as np

from tidu import backend
from tidu.data import curriculum_order
from tidu.saving.checkpoints import rng_state

__all__ = ["EpochIterator", "Sampler"]


def _rng_json(rng):
    """The generator's state for a checkpoint (None when it is not a PCG64 one)."""
    try:
        return rng_state(rng)
    except ValueError:
        return None


class Sampler:
    """Batches of `batch_size` indices from endless passes over `indices` (an int n: range(n)).

    A pass is a new permutation (drawn from `rng`) when shuffling, else the indices in order;
    the last batch of a pass may be smaller. Checkpoints read `pos`, `n`, `state` (the
    generator's state when the pass was drawn) and `order`.
    """

    def __init__(self, indices, batch_size, shuffle=True, rng=None):
        self.indices = None if isinstance(indices, (int, np.integer)) else np.asarray(indices, dtype=np.int64)
        self.n = int(indices) if self.indices is None else len(self.indices)
        self.bs, self.shuffle = int(batch_size), bool(shuffle)
        self.rng = rng if rng is not None else backend.rng()
        self.order, self.pos, self.state = None, self.n, None   # the first call starts a pass

    def _pass(self):
        if self.shuffle:
            return self.rng.permutation(self.n if self.indices is None else self.indices)
        return np.arange(self.n) if self.indices is None else self.indices

    def next(self):
        if self.pos >= self.n:
            self.state = _rng_json(self.rng) if self.shuffle else None
            self.order = self._pass()
            self.pos = 0
        idx = self.order[self.pos:self.pos + self.bs]
        self.pos += len(idx)
        return idx

    def get_state(self):
        """(arrays, JSON-able meta): the current pass's order, the position and the generator."""
        order = self.order if self.order is not None else \
            (np.arange(self.n) if self.indices is None else self.indices)
        return {"order": np.asarray(order, dtype=np.int64)}, \
            {"pos": int(self.pos), "rng": self.rng.bit_generator.state}

    def set_state(self, arrays, meta):
        """Restore get_state's output."""
        self.order = np.asarray(arrays["order"], dtype=np.int64)
        self.pos = int(meta["pos"])
        self.rng.bit_generator.state = meta["rng"]


class EpochIterator:
    """The batches of fit's epochs over n samples.

    Per epoch, `begin(epoch)` fixes the order and returns the number of steps:
      curriculum scores given    curriculum_order(scores, epoch, **pacing) (shuffle ignored)
      steps_per_epoch given      `steps_per_epoch` batches from one Sampler running across epochs
      shuffle                    a new permutation of range(n) from `rng`
      else                       range(n) in order
    `batch(step, x, y, sw)` is that step's (x, y, sample_weight), with `augment(x, rng)` applied
    to x when given. `epoch_rng` is the generator's state just before the epoch's permutation
    was drawn, so a checkpoint can draw it again.
    """

    def __init__(self, n, batch_size, shuffle=True, rng=None, steps_per_epoch=None, scores=None,
                 pacing=None, augment=None):
        self.n, self.bs, self.shuffle = n, batch_size, shuffle
        self.rng = rng if rng is not None else backend.rng()
        self.steps_per_epoch, self.scores, self.pacing = steps_per_epoch, scores, dict(pacing or {})
        self.augment = augment
        self.sampler = Sampler(n, batch_size, shuffle, self.rng) if steps_per_epoch else None
        self.order, self.steps, self.epoch_rng = None, 0, None

    def steps_of(self, epoch):
        """The number of steps epoch `epoch` will have."""
        if self.scores is not None:
            return math.ceil(len(self._curriculum(epoch)) / self.bs)
        return self.steps_per_epoch or math.ceil(self.n / self.bs)

    def _curriculum(self, epoch):
        return np.asarray(curriculum_order(self.scores, epoch, **self.pacing))

    def begin(self, epoch, order=None):
        """Fix epoch `epoch`'s order (`order`: the one a checkpoint recorded); its step count."""
        self.epoch_rng = None
        if self.scores is not None:
            self.order = self._curriculum(epoch)
        elif self.sampler is not None:
            self.order = None
        elif order is not None:
            self.order = order
        elif self.shuffle:
            self.epoch_rng = _rng_json(self.rng)
            self.order = self.rng.permutation(self.n)
        else:
            self.order = None
        self.steps = self.steps_of(epoch)
        return self.steps

    def indices(self, step):
        if self.sampler is not None:
            return self.sampler.next()
        if self.order is None:
            return slice(step * self.bs, min((step + 1) * self.bs, self.n))
        return self.order[step * self.bs:(step + 1) * self.bs]

    def batch(self, step, x, y, sw=None):
        """(x, y, sample_weight) of step `step` of the current epoch."""
        idx = self.indices(step)
        xb, yb = x[idx], y[idx]
        swb = None if sw is None else sw[idx]
        if self.augment is not None:
            xb = self.augment(xb, self.rng)
            floatx = np.dtype(backend.floatx())
            if xb.dtype != floatx:
                xb = xb.astype(floatx)
        return xb, yb, swb
