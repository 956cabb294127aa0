"""Symbolic tensors: the batches of a functional model before any data flows.

A SymbolicTensor holds no data: only the shape of a batch (None for the batch axis), the dtype,
and the node that made it (the layer and the symbolic inputs it was called on), so `Model` can
walk the graph from outputs back to inputs. `symbolic_call(layer, inputs)` is what calling a
layer on one gives: the layer is built from the shape at once and run on a one-sample batch of
zeros, so shape errors surface where the graph is written.
"""
import numpy as np

from tidu import backend
from tidu.autograd import Tensor, no_grad

__all__ = ["SymbolicTensor", "is_symbolic", "symbolic_call"]


class SymbolicTensor:
    """A placeholder for a batch flowing through a functional model.

    shape: the batch's shape, None where unknown (the batch axis).  dtype: its dtype name.
    layer: the layer that produced it.  inputs: the SymbolicTensor(s) that layer was called on
    (empty for an Input).  call_kwargs: keyword arguments of that call (e.g. a layer option).
    """

    _tidu_symbolic = True  # what Layer.__call__ looks for

    def __init__(self, shape, dtype=None, layer=None, inputs=(), call_kwargs=None, name=None):
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype or backend.floatx()).name
        self.layer = layer
        self.inputs = list(inputs)
        self.call_kwargs = dict(call_kwargs or {})
        self.name = name or (layer.name if layer is not None else "symbolic")

    ndim = property(lambda self: len(self.shape))

    def __repr__(self):
        return f"<SymbolicTensor shape={self.shape} dtype={self.dtype} from {self.name!r}>"


def is_symbolic(x):
    """True for a SymbolicTensor, or a non-empty list/tuple of them."""
    if isinstance(x, (list, tuple)):
        return bool(x) and all(getattr(t, "_tidu_symbolic", False) for t in x)
    return getattr(x, "_tidu_symbolic", False)


def _zeros_like_symbolic(t):
    return Tensor(np.zeros(tuple(1 if d is None else d for d in t.shape), dtype=t.dtype))


def symbolic_call(layer, inputs, training=False, **kwargs):
    """What `layer(inputs)` gives for symbolic inputs: a SymbolicTensor whose shape is the
    layer's output shape (the layer is built from the input shape on the way)."""
    if isinstance(inputs, (list, tuple)):
        inputs = list(inputs)
        with no_grad():
            y = layer([_zeros_like_symbolic(t) for t in inputs], training=False, **kwargs)
        batch = inputs[0].shape[0]
    else:
        with no_grad():
            y = layer(_zeros_like_symbolic(inputs), training=False, **kwargs)
        batch = inputs.shape[0]
    if isinstance(y, (list, tuple)):
        raise TypeError(f"{type(layer).__name__} '{layer.name}': layers with several outputs "
                        f"are not supported in a functional model")
    out = SymbolicTensor((batch, *y.shape[1:]), dtype=y.dtype, layer=layer,
                         inputs=inputs if isinstance(inputs, list) else [inputs], call_kwargs=kwargs)
    return out
