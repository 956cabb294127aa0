"""Many parameters seen as one flat vector θ = (vec W1, vec b1, vec W2, ...).

The one place this layout is written: optimizers keep their state and closure methods their
search vector in it, the parameter server moves weights and gradients as one vector, and a
model's `get_flat_weights` is its `get()`.

    view = FlatView(params)        Parameters (or plain arrays), in order
    view.get()                     θ as a new flat array (dtype: the parameters', or as asked)
    view.set(theta)                write θ back into the parameters, in place
    view.gather(grads)             arrays shaped like the parameters, end to end (e.g. ∇θ)
    view.split(theta)              views of θ shaped like the parameters
    view.pack()                    the parameters' data become views of one flat buffer: no copy
                                   afterwards, an update of the buffer is an update of them
    view.bind(theta) / unbind()    the same with a buffer given from outside, and undone
"""
import math

import numpy as np

from tidu import backend

__all__ = ["FlatView", "pack"]


def _data(p):
    """The array of a Tensor/Parameter, or `p` itself when it is an array (a CuPy array's own
    `.data` is its memory pointer, not an array)."""
    if isinstance(p, (np.ndarray, backend.xp.ndarray)) or not hasattr(p, "data"):
        return p
    return p.data


def _address(a):
    """The address of an array's first element (NumPy or CuPy)."""
    return a.__array_interface__["data"][0] if backend.name == "numpy" else a.data.ptr


class FlatView:
    """The flat layout of `params` (Tensors/Parameters or arrays): shapes, sizes, offsets."""

    __slots__ = ("params", "shapes", "sizes", "offsets", "size", "dtype", "_own")

    def __init__(self, params):
        self.params = list(params)
        arrays = [_data(p) for p in self.params]
        self.shapes = [tuple(a.shape) for a in arrays]
        self.sizes = [math.prod(s) for s in self.shapes]
        self.offsets = [0]
        for n in self.sizes:
            self.offsets.append(self.offsets[-1] + n)
        self.size = self.offsets[-1]
        self.dtype = np.result_type(*arrays) if arrays else np.dtype(backend.floatx())
        self._own = None

    def __len__(self):
        return len(self.params)

    def ranges(self):
        """(start, stop, shape) of each parameter in θ."""
        return [(a, b, s) for a, b, s in zip(self.offsets, self.offsets[1:], self.shapes)]

    def get(self, dtype=None, out=None):
        """θ as a flat array (a new one, or written into `out`)."""
        xp = backend.xp
        out = xp.empty(self.size, dtype=dtype or self.dtype) if out is None else out
        for p, (a, b, _) in zip(self.params, self.ranges()):
            out[a:b] = _data(p).reshape(-1)
        return out

    def set(self, theta):
        """Write flat θ into the parameters' own arrays, in place (cast to their dtype)."""
        self._check(theta, "set")
        for p, (a, b, shape) in zip(self.params, self.ranges()):
            _data(p)[...] = theta[a:b].reshape(shape)

    def gather(self, arrays, out=None, dtype=None):
        """Arrays shaped like the parameters (None: zeros), laid end to end in θ's layout."""
        xp = backend.xp
        out = xp.empty(self.size, dtype=dtype or self.dtype) if out is None else out
        for g, (a, b, _) in zip(arrays, self.ranges()):
            if g is None:
                out[a:b] = 0
            else:
                out[a:b] = g.reshape(-1)
        return out

    def split(self, theta):
        """Views of flat θ shaped like the parameters."""
        self._check(theta, "split")
        return [theta[a:b].reshape(shape) for a, b, shape in self.ranges()]

    def packed_buffer(self):
        """The flat buffer the parameters' data already are consecutive views of, else None."""
        if not self.params:
            return None
        arrays = [_data(p) for p in self.params]
        base = arrays[0].base
        if not (isinstance(base, (np.ndarray, backend.xp.ndarray)) and base.ndim == 1 and base.flags.c_contiguous
                and base.size == self.size and base.dtype == arrays[0].dtype):
            return None
        addr, item = _address(base), base.itemsize
        for d, start in zip(arrays, self.offsets):
            if d.base is not base or not d.flags.c_contiguous or \
                    _address(d) != addr + start * item:
                return None
        return base

    def pack(self, dtype=None):
        """Make the parameters' data consecutive views of one flat buffer and return it (the
        buffer they already share, when they do). Values are unchanged."""
        buf = self.packed_buffer()
        if buf is not None and (dtype is None or buf.dtype == dtype):
            return buf
        flat = self.get(dtype=dtype or (_data(self.params[0]).dtype if self.params else None))
        for p, view in zip(self.params, self.split(flat)):
            p.data = view
        return flat

    def bind(self, theta):
        """The parameters' data become views of `theta` (kept until unbind)."""
        self._check(theta, "bind")
        if self._own is None:
            self._own = [p.data for p in self.params]
        for p, view in zip(self.params, self.split(theta)):
            p.data = view

    def unbind(self):
        """Give the parameters their own arrays back, holding the current values."""
        if self._own is not None:
            for p, own in zip(self.params, self._own):
                own[...] = p.data
                p.data = own
            self._own = None

    def _check(self, theta, where):
        if getattr(theta, "ndim", None) != 1 or theta.shape[0] != self.size:
            raise ValueError(f"FlatView.{where}: expected a 1-D vector of {self.size} values "
                             f"({len(self.params)} parameters), got shape {getattr(theta, 'shape', None)}")


def pack(params, dtype=None):
    """FlatView(params).pack(): the parameters' data as views of one flat buffer, returned."""
    params = list(params)
    if not params:
        return backend.xp.zeros(0, dtype=dtype or backend.floatx())
    return FlatView(params).pack(dtype)
