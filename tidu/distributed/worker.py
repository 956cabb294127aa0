"""What a worker needs, shared by the simulated and the Ray backend: the model's trainable
weights as one flat vector, and the worker's own stream of mini-batches.

Data: the sample indices are permuted once (seeded) and cut into M contiguous shards, one per
worker; worker m reads its shard in mini-batches of `batch_size` (the last one of a pass may
be smaller), reshuffling its own shard with its own generator at the start of every pass. So
each worker sees only its shard, as on a cluster where the data is partitioned, and all of
them together make one pass over the data every ~N / batch_size gradients.
"""
import numpy as np

from tidu import backend


class FlatModel:
    """A compiled model's trainable weights as one flat vector.

        set(w)              write w into the weights (in place, the Parameters keep their arrays)
        get()               a flat copy of the weights
        bind(w)             make the weights views into w: no copy, w's changes are the model's
        unbind()            give the Parameters their own arrays back, holding the current values
        gradient(x, y, g)   loss of the mini-batch at the current weights; g ← flat gradient

    Offsets follow `model.trainable_weights`, the order `compute_loss_and_grads` returns its
    gradients in.
    """

    def __init__(self, model):
        self.model = model
        self.params = list(model.trainable_weights)
        if not self.params:
            raise ValueError("ParameterServer: the model has no trainable weights (build it first: "
                             "give the first layer input_shape, or call the model on data)")
        self.dtype = np.dtype(backend.to_numpy(self.params[0].data).dtype)
        self.slices, offset = [], 0
        for p in self.params:
            self.slices.append((offset, offset + p.data.size, p.data.shape))
            offset += p.data.size
        self.size = offset
        self._own = None                                      # the Parameters' arrays while bound

    def bind(self, w):
        if self._own is None:
            self._own = [p.data for p in self.params]
        for p, (lo, hi, shape) in zip(self.params, self.slices):
            p.data = w[lo:hi].reshape(shape)

    def unbind(self):
        if self._own is not None:
            for p, own in zip(self.params, self._own):
                own[...] = p.data
                p.data = own
            self._own = None

    def get(self):
        w = np.empty(self.size, dtype=self.dtype)
        for p, (lo, hi, _) in zip(self.params, self.slices):
            w[lo:hi] = backend.to_numpy(p.data).ravel()
        return w

    def set(self, w):
        for p, (lo, hi, shape) in zip(self.params, self.slices):
            p.data[...] = backend.as_array(w[lo:hi].reshape(shape))

    def gradient(self, x, y, g, sample_weight=None):
        loss, grads = self.model.compute_loss_and_grads(x, y, sample_weight=sample_weight, training=True)
        if len(grads) != len(self.params):
            raise ValueError(f"ParameterServer: compute_loss_and_grads returned {len(grads)} gradients "
                             f"for {len(self.params)} trainable weights")
        for gp, (lo, hi, _) in zip(grads, self.slices):
            g[lo:hi] = backend.to_numpy(gp).ravel()
        return float(loss)


def shard_indices(n, num_workers, seed, shuffle=True):
    """The M index shards: a seeded permutation of range(n) (or range(n) itself) cut in M."""
    if n < num_workers:
        raise ValueError(f"ParameterServer: {num_workers} workers need at least {num_workers} samples, got {n}")
    order = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)
    return np.array_split(order, num_workers)


class WorkerData:
    """Worker m's mini-batches: its shard in batches, reshuffled (own generator) every pass."""

    def __init__(self, indices, batch_size, seed, shuffle=True):
        self.indices = np.asarray(indices, dtype=np.int64)
        self.batch_size, self.shuffle = int(batch_size), shuffle
        self.rng = np.random.default_rng(seed)
        self.order, self.pos = self.indices, len(self.indices)   # the first call starts a pass

    def next_batch(self):
        if self.pos >= len(self.order):
            self.order = self.rng.permutation(self.indices) if self.shuffle else self.indices
            self.pos = 0
        idx = self.order[self.pos:self.pos + self.batch_size]
        self.pos += len(idx)
        return idx

    # checkpoints: arrays and JSON-able scalars
    def state(self):
        return {"order": self.order}, {"pos": self.pos, "rng": self.rng.bit_generator.state}

    def load_state(self, arrays, meta):
        self.order, self.pos = np.asarray(arrays["order"], dtype=np.int64), int(meta["pos"])
        self.rng.bit_generator.state = meta["rng"]
