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
from tidu.autograd import FlatView
from tidu.training import Sampler


class FlatModel:
    """A compiled model's trainable weights as one flat vector (tidu.autograd.FlatView).

        set(w)              write w into the weights (in place, the Parameters keep their arrays)
        get()               a flat copy of the weights
        bind(w)             make the weights views into w: no copy, w's changes are the model's
        unbind()            give the Parameters their own arrays back, holding the current values
        gradient(x, y, g)   loss of the mini-batch at the current weights; g ← flat gradient
                            (overflow is silent: the server refuses a non-finite update)

    Offsets follow `model.trainable_weights`, the order the model's train step returns its
    gradients in.
    """

    def __init__(self, model):
        self.model = model
        self.params = list(model.trainable_weights)
        if not self.params:
            raise ValueError("ParameterServer: the model has no trainable weights (build it first: "
                             "give the first layer input_shape, or call the model on data)")
        self.view = FlatView(self.params)
        self.dtype = np.dtype(backend.to_numpy(self.params[0].data).dtype)
        self.size = self.view.size

    def bind(self, w):
        self.view.bind(w)

    def unbind(self):
        self.view.unbind()

    def get(self):
        return backend.to_numpy(self.view.get(dtype=self.dtype))

    def set(self, w):
        self.view.set(backend.as_array(w))

    def gradient(self, x, y, g, sample_weight=None):
        with np.errstate(over="ignore", invalid="ignore"):  # diverging weights: the server's check says so
            loss, grads = self.model.compute_loss_and_grads(x, y, sample_weight=sample_weight, training=True)
        if len(grads) != len(self.params):
            raise ValueError(f"ParameterServer: compute_loss_and_grads returned {len(grads)} gradients "
                             f"for {len(self.params)} trainable weights")
        self.view.gather([backend.to_numpy(gp) for gp in grads], out=g)
        return float(loss)


def shard_indices(n, num_workers, seed, shuffle=True):
    """The M index shards: a seeded permutation of range(n) (or range(n) itself) cut in M."""
    if n < num_workers:
        raise ValueError(f"ParameterServer: {num_workers} workers need at least {num_workers} samples, got {n}")
    order = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)
    return np.array_split(order, num_workers)


def worker_batches(indices, batch_size, seed, shuffle=True):
    """Worker m's mini-batches: a Sampler over its shard, reshuffled (own generator) every pass."""
    return Sampler(indices, batch_size, shuffle, np.random.default_rng(seed))
