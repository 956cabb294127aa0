"""Mini-batches over arrays, reshuffled every epoch."""
import math

import numpy as np

from tidu import backend
from tidu.errors import ShapeError


def batches(x, y=None, batch_size=32, shuffle=True, rng=None, drop_remainder=False):
    """Mini-batches of `x` (and the matching rows of `y`), as an iterable `Batches`.

    Each pass over it is one epoch: with shuffle=True a new permutation of the samples is
    drawn from `rng` at the start of every pass, so

        data = batches(x_train, y_train, batch_size=128, rng=np.random.default_rng(0))
        for epoch in range(10):
            for x_batch, y_batch in data: ...

    sees the samples in a different order each epoch, reproducibly. A pass yields x_batch
    alone when y is None, else (x_batch, y_batch). The last batch holds the N mod batch_size
    left-over samples unless drop_remainder=True. rng: a NumPy Generator, an int seed, or
    None for tidu's package-wide generator (`tidu.backend.seed`).
    """
    return Batches(x, y, batch_size, shuffle, rng, drop_remainder)


class Batches:
    """The iterable `batches` returns; `len()` is the number of batches per epoch."""

    def __init__(self, x, y=None, batch_size=32, shuffle=True, rng=None, drop_remainder=False):
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or batch_size <= 0:
            raise ValueError(f"batches: expected batch_size to be a positive int, "
                             f"got {batch_size!r}")
        x = np.asarray(x)
        if x.ndim == 0:
            raise ShapeError("batches: expected x with a leading sample axis, got a scalar")
        if y is not None:
            y = np.asarray(y)
            if y.ndim == 0 or len(y) != len(x):
                raise ShapeError(f"batches: expected x and y with the same number of samples, "
                                 f"got x of shape {x.shape} and y of shape {y.shape}")
        self.x, self.y, self.batch_size = x, y, int(batch_size)
        self.shuffle, self.drop_remainder = shuffle, drop_remainder
        self.rng = backend.rng(rng) if shuffle else None

    def __len__(self):
        n = len(self.x)
        return n // self.batch_size if self.drop_remainder else math.ceil(n / self.batch_size)

    def __iter__(self):
        n, b = len(self.x), self.batch_size
        order = self.rng.permutation(n) if self.shuffle else None
        for start in range(0, len(self) * b, b):
            rows = slice(start, start + b) if order is None else order[start:start + b]
            if self.y is None:
                yield self.x[rows]
            else:
                yield self.x[rows], self.y[rows]
