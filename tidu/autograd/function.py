"""Function (one differentiable primitive), its context, unbroadcast and grad mode.

A Function subclass defines two static methods on arrays, never Tensors:

    forward(ctx, *arrays, **options) -> array
    backward(ctx, gy) -> one gradient per positional input (or None), shaped like it

`Function.apply(*inputs, **options)` runs forward on the inputs' arrays and, when grad mode
is on and some input requires a gradient, records the node so `Tensor.backward()` can call
backward later. Options (axis, strides, ...) are keyword arguments and get no gradient.

Grad mode is per thread, as in PyTorch: `no_grad` in one thread leaves the graphs another
thread records alone (a training step's two halves run on two threads, tidu.training.step).
"""
import itertools
import operator
import threading

from tidu.errors import ShapeError

class _GradMode(threading.local):
    enabled = True              # every thread starts with grad mode on


_mode = _GradMode()
_recorded = itertools.count()   # Context.seq: the order in which nodes are recorded


def is_grad_enabled():
    return _mode.enabled


class no_grad:
    """Context manager (and decorator) that records no graph in this thread: for inference and
    updates."""

    def __enter__(self):
        self._prev, _mode.enabled = _mode.enabled, False

    def __exit__(self, *exc):
        _mode.enabled = self._prev

    def __call__(self, fn):
        def wrapper(*args, **kwargs):
            with no_grad():
                return fn(*args, **kwargs)
        wrapper.__name__, wrapper.__doc__ = fn.__name__, fn.__doc__
        return wrapper


class enable_grad(no_grad):
    """Context manager that turns grad mode back on inside a `no_grad` block."""

    def __enter__(self):
        self._prev, _mode.enabled = _mode.enabled, True


def unbroadcast(grad, shape):
    """Sum `grad` over the axes that broadcasting added or stretched, back to `shape`."""
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    stretched = [lead + i for i, n in enumerate(shape) if n == 1 and grad.shape[lead + i] != 1]
    return grad.sum(axis=(*range(lead), *stretched), keepdims=True).reshape(shape)


class Context:
    """What forward leaves for backward: saved arrays, any attributes, and the graph links
    (seq numbers the recorded nodes in the order they were made: inputs before outputs)."""

    __slots__ = ("saved", "fn", "parents", "needs_input_grad", "freed", "seq", "__dict__")

    def __init__(self):
        self.saved = ()
        self.fn = None
        self.parents = ()
        self.needs_input_grad = ()
        self.freed = False
        self.seq = -1

    def save_for_backward(self, *arrays):
        self.saved = arrays


class Function:
    """Base class of every differentiable primitive; see the module docstring."""

    @staticmethod
    def forward(ctx, *arrays, **options):  # pragma: no cover - abstract
        raise NotImplementedError("Function subclasses define forward (abstract)")

    @staticmethod
    def backward(ctx, gy):  # pragma: no cover - abstract
        raise NotImplementedError("Function subclasses define backward (abstract)")

    @classmethod
    def apply(cls, *inputs, **options):
        ctx = Context()
        arrays = [x.data if isinstance(x, Tensor) else x for x in inputs]
        y = cls.forward(ctx, *arrays, **options)
        if _mode.enabled:
            needs = tuple([isinstance(x, Tensor) and x.requires_grad for x in inputs])
            if True in needs:
                ctx.fn, ctx.parents, ctx.needs_input_grad = cls, inputs, needs
                ctx.seq = next(_recorded)
                return Tensor._node(y, ctx)
        return Tensor._node(y, None)


def backward(root, gy=None, retain_graph=False, into=None):
    """Reverse-mode sweep from `root`: every leaf that requires grad gets d(root·gy)/d(leaf)
    added to its `.grad`, or, with a dict `into`, to into[id(leaf)] (the leaves' .grad left
    alone: for two threads sweeping graphs over the same weights at once). Iterative (no
    recursion limit); frees the graph unless retain_graph."""
    from tidu import backend

    if not root.requires_grad:
        raise RuntimeError("backward: the tensor does not require grad (no input of it requires grad, "
                           "or it was computed under no_grad)")
    if gy is None:
        if root.data.size != 1:
            raise ValueError(f"backward: a gradient must be given for a non-scalar output, "
                             f"got output of shape {root.shape}")
        gy = backend.xp.ones_like(root.data)
    else:
        gy = gy.data if isinstance(gy, Tensor) else backend.as_array(gy, root.data.dtype)
        if gy.shape != root.shape:
            raise ShapeError(f"backward: expected a gradient of shape {root.shape}, got {gy.shape}")
    if root._ctx is None:
        _to_leaf(root, gy, into)
        return

    order = _topological_order(root)
    grads = {id(root): gy}
    for t in order:
        g = grads.pop(id(t), None)
        if g is None:
            continue
        ctx = t._ctx
        if ctx.freed:
            raise RuntimeError("backward: trying to go through the graph a second time, but it was "
                               "freed by the first backward; pass retain_graph=True to the first one")
        gxs = ctx.fn.backward(ctx, g)
        if type(gxs) is not tuple:
            gxs = (gxs,)
        parents = ctx.parents
        if len(gxs) != len(parents):
            raise RuntimeError(f"{ctx.fn.__name__}.backward returned {len(gxs)} gradients for "
                               f"{len(parents)} inputs")
        for i, (x, gx, need) in enumerate(zip(parents, gxs, ctx.needs_input_grad)):
            if not need or gx is None:
                continue
            if gx.shape != x.data.shape:
                raise ShapeError(f"{ctx.fn.__name__}.backward returned a gradient of shape {gx.shape} "
                                 f"for input {i} of shape {x.data.shape}; missing unbroadcast?")
            if x._ctx is None:
                _to_leaf(x, gx, into)
            else:
                prev = grads.get(id(x))
                grads[id(x)] = gx if prev is None else prev + gx
        if not retain_graph:
            ctx.saved, ctx.parents, ctx.freed = (), (), True
            ctx.__dict__.clear()


def _to_leaf(x, g, into):
    """Add the gradient g to leaf x's .grad, or to into[id(x)]; never in place (g may be shared
    with the graph or with another leaf)."""
    if into is None:
        x._accumulate(g)
    else:
        prev = into.get(id(x))
        into[id(x)] = g if prev is None else prev + g


_seq = operator.attrgetter("_ctx.seq")


def _topological_order(root):
    """Interior nodes reachable from `root`, each after every node that consumes it: a node is
    recorded after its inputs, so the reverse of the recording order (Context.seq) is one."""
    nodes, seen, stack = [], {id(root)}, [root]
    while stack:
        t = stack.pop()
        nodes.append(t)
        for p in t._ctx.parents:
            if isinstance(p, Tensor) and p._ctx is not None and id(p) not in seen:
                seen.add(id(p))
                stack.append(p)
    nodes.sort(key=_seq, reverse=True)
    return nodes


from tidu.autograd.tensor import Tensor  # noqa: E402  (Tensor's operators need Function above)
