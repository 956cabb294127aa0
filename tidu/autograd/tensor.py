"""Tensor: an array of the backend with a gradient and the node that produced it.

    x = Tensor(np.ones((2, 3)), requires_grad=True)
    (x * x).sum().backward()      # x.grad == 2 * x

Operators and methods (+ - * / @ ** neg, indexing, sum mean max min reshape transpose exp log
sqrt abs clip tanh sigmoid relu softmax ...) are the ops of `tidu.functional`; this module only
holds the data structure. `Parameter` is a named, trainable leaf (a layer's weight).

autograd sits below functional and never imports it: the operators and methods below call the
op table `_ops`, which tidu.functional fills with itself when it is imported
(`install_ops(tidu.functional)`; `import tidu` does it). The methods stay written out here, so
the class shows its whole interface, and each costs one lookup in the table.
"""
from tidu import backend
from tidu.autograd import function as _function


class _NoOps:
    """The op table before tidu.functional is imported: any op says what is missing."""

    def __getattr__(self, name):
        raise RuntimeError(f"Tensor: the op {name!r} comes from tidu.functional, which is not "
                           f"imported yet; import tidu (or tidu.functional) first")


_ops = _NoOps()


def install_ops(ops):
    """Make `ops` (a module or namespace with add, mul, sum, exp, ...: tidu.functional) the
    table Tensor's operators and methods call. tidu.functional calls this when imported."""
    global _ops
    _ops = ops


class Tensor:
    """An n-dimensional array that can record the ops applied to it for backprop.

    data: the backend array.  grad: d(loss)/d(data) after backward (leaves only), else None.
    requires_grad: whether ops on it are recorded.  Leaves are tensors made by the user or
    Parameters; interior tensors are made by ops and carry the op's context in `_ctx`.
    """

    __slots__ = ("data", "grad", "requires_grad", "_ctx", "name", "__weakref__")
    __array_priority__ = 1000  # ndarray (op) Tensor defers to Tensor's reflected operator

    def __init__(self, data, requires_grad=False, dtype=None, name=None):
        if isinstance(data, Tensor):
            data = data.data
        self.data = backend.as_array(data, dtype)
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(f"Tensor: only floating-point tensors can require grad, got dtype {self.data.dtype}")
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self._ctx = None
        self.name = name

    @classmethod
    def _node(cls, data, ctx):
        t = Tensor.__new__(Tensor)
        t.data, t.grad, t._ctx, t.name = data, None, ctx, None
        t.requires_grad = ctx is not None
        return t

    # --- data-structure side -------------------------------------------------------------
    shape = property(lambda self: self.data.shape)
    dtype = property(lambda self: self.data.dtype)
    ndim = property(lambda self: self.data.ndim)
    size = property(lambda self: self.data.size)
    is_leaf = property(lambda self: self._ctx is None)

    def __len__(self):
        return len(self.data)

    def __repr__(self):
        extra = ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor({backend.to_numpy(self.data)!r}{extra})"

    def numpy(self):
        """The data as a NumPy array (shares memory on the CPU)."""
        return backend.to_numpy(self.data)

    def item(self):
        return self.data.item()

    def __float__(self):
        return float(self.data)

    def __array__(self, dtype=None, copy=None):
        a = backend.to_numpy(self.data)
        return a if dtype is None else a.astype(dtype)

    def detach(self):
        """A new leaf sharing the data, cut from the graph."""
        return Tensor._node(self.data, None)

    def astype(self, dtype):
        return _ops.astype(self, dtype)

    def backward(self, gradient=None, retain_graph=False):
        """Accumulate d(self)/d(leaf) (times `gradient` for a non-scalar self) into every leaf's .grad."""
        _function.backward(self, gradient, retain_graph)

    def zero_grad(self):
        self.grad = None

    def _accumulate(self, g):
        # never in place: a gradient array may be shared with the graph or with another leaf
        self.grad = g if self.grad is None else self.grad + g

    # --- operators -----------------------------------------------------------------------
    def __add__(self, other): return _ops.add(self, other)
    def __radd__(self, other): return _ops.add(other, self)
    def __sub__(self, other): return _ops.sub(self, other)
    def __rsub__(self, other): return _ops.sub(other, self)
    def __mul__(self, other): return _ops.mul(self, other)
    def __rmul__(self, other): return _ops.mul(other, self)
    def __truediv__(self, other): return _ops.div(self, other)
    def __rtruediv__(self, other): return _ops.div(other, self)
    def __matmul__(self, other): return _ops.matmul(self, other)
    def __rmatmul__(self, other): return _ops.matmul(other, self)
    def __pow__(self, other): return _ops.pow(self, other)
    def __rpow__(self, other): return _ops.pow(other, self)
    def __neg__(self): return _ops.neg(self)
    def __pos__(self): return self
    def __abs__(self): return _ops.abs(self)
    def __getitem__(self, index): return _ops.getitem(self, index)

    # comparisons give boolean tensors outside the graph
    def _cmp(self, other, op):
        other = other.data if isinstance(other, Tensor) else other
        return Tensor._node(op(self.data, other), None)

    def __lt__(self, other): return self._cmp(other, lambda a, b: a < b)
    def __le__(self, other): return self._cmp(other, lambda a, b: a <= b)
    def __gt__(self, other): return self._cmp(other, lambda a, b: a > b)
    def __ge__(self, other): return self._cmp(other, lambda a, b: a >= b)
    def __eq__(self, other): return self._cmp(other, lambda a, b: a == b)
    def __ne__(self, other): return self._cmp(other, lambda a, b: a != b)
    __hash__ = object.__hash__

    # --- methods -------------------------------------------------------------------------
    def sum(self, axis=None, keepdims=False): return _ops.sum(self, axis=axis, keepdims=keepdims)
    def mean(self, axis=None, keepdims=False): return _ops.mean(self, axis=axis, keepdims=keepdims)
    def max(self, axis=None, keepdims=False): return _ops.max(self, axis=axis, keepdims=keepdims)
    def min(self, axis=None, keepdims=False): return _ops.min(self, axis=axis, keepdims=keepdims)
    def reshape(self, *shape):
        return _ops.reshape(self, shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape)
    def transpose(self, *axes):
        return _ops.transpose(self, (axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes) or None)
    T = property(lambda self: _ops.transpose(self))
    def flatten(self): return _ops.reshape(self, (-1,))
    def exp(self): return _ops.exp(self)
    def log(self): return _ops.log(self)
    def sqrt(self): return _ops.sqrt(self)
    def abs(self): return _ops.abs(self)
    def clip(self, lo, hi): return _ops.clip(self, lo, hi)
    def tanh(self): return _ops.tanh(self)
    def sigmoid(self): return _ops.sigmoid(self)
    def relu(self): return _ops.relu(self)
    def softmax(self, axis=-1): return _ops.softmax(self, axis=axis)
    def log_softmax(self, axis=-1): return _ops.log_softmax(self, axis=axis)


class Parameter(Tensor):
    """A trainable leaf: a layer's weight or a free variable an optimizer updates.

    `trainable=False` keeps it out of the optimizer (BatchNormalization's moving statistics).
    """

    __slots__ = ("trainable", "regularizer", "constraint")

    def __init__(self, data, name=None, trainable=True, dtype=None):
        super().__init__(data, requires_grad=trainable, dtype=dtype, name=name)
        self.trainable = trainable
        self.regularizer = None
        self.constraint = None

    def __repr__(self):
        return f"Parameter(name={self.name!r}, shape={self.shape}, dtype={self.dtype})"

    def assign(self, value):
        """Write `value` into the parameter's data in place, checking the shape."""
        value = value.data if isinstance(value, Tensor) else value
        if tuple(value.shape) != self.data.shape:
            raise ValueError(f"Parameter '{self.name}': expected a value of shape {self.data.shape}, "
                             f"got {tuple(value.shape)}")
        self.data[...] = value

