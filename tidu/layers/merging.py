"""Merge layers: one output from a list of inputs, for functional models.

    Add          y = x₁ + x₂ + … + xₖ
    Subtract     y = x₁ − x₂                       (exactly two inputs)
    Multiply     y = x₁ · x₂ · … · xₖ
    Average      y = (x₁ + x₂ + … + xₖ) / k
    Maximum      y = max(x₁, x₂, …, xₖ)            element-wise
    Minimum      y = min(x₁, x₂, …, xₖ)            element-wise
    Concatenate  y = [x₁, x₂, …, xₖ] joined along `axis` (default −1, the features)

The element-wise ones broadcast as Keras does: the shapes of one sample are aligned on the
right and a size 1 stretches; an input with fewer dimensions gets new axes after the batch
axis. Called on SymbolicTensors, `Add()([a, b])` is one step of a functional model:

    x = Input((28, 28, 1))
    h = Conv2D(8, 3, padding="same")(x)
    y = Add()([h, Conv2D(8, 1)(x)])
"""
import tidu.functional as F
from tidu.autograd import Tensor
from tidu.errors import ShapeError
from tidu.layers.base import Layer
from tidu.layers.utils import layer_label

__all__ = ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate"]


def _shapes(layer, inputs):
    """The shapes of a list of inputs (Tensors, arrays or shapes); TypeError for anything else
    (one tensor, or the shape of one)."""
    one_shape = isinstance(inputs, (list, tuple)) and all(d is None or isinstance(d, int)
                                                          for d in inputs)
    if not isinstance(inputs, (list, tuple)) or not inputs or one_shape:
        got = ("an empty list" if isinstance(inputs, (list, tuple)) and not inputs
               else f"one input of shape {tuple(inputs)}" if one_shape
               else type(inputs).__name__)
        raise TypeError(f"{layer_label(layer)} expected a non-empty list of inputs, got {got}")
    shapes = []
    for x in inputs:
        if hasattr(x, "shape"):
            shapes.append(tuple(x.shape))
        elif isinstance(x, (list, tuple)) and all(d is None or isinstance(d, int) for d in x):
            shapes.append(tuple(x))
        else:
            raise TypeError(f"{layer_label(layer)} expected a list of tensors, got an element "
                            f"of type {type(x).__name__}")
    return shapes


class _Merge(Layer):
    """Element-wise merge of a list of inputs; a subclass gives `merge(xs)` for Tensors of one
    rank (broadcasting) and `min_inputs` / `max_inputs`."""

    takes_input_list = True
    min_inputs, max_inputs = 1, None

    def _check(self, shapes):
        """The output shape of one merge of `shapes`; ShapeError naming the layer and the
        shapes when their number, batch sizes or sample shapes do not fit."""
        label = layer_label(self)
        k = len(shapes)
        if k < self.min_inputs or (self.max_inputs is not None and k > self.max_inputs):
            want = (f"exactly {self.min_inputs}" if self.min_inputs == self.max_inputs
                    else f"at least {self.min_inputs}")
            raise ShapeError(f"{label} expected {want} inputs, got {k} with shapes {shapes}")
        if any(len(s) < 1 for s in shapes):
            raise ShapeError(f"{label} expected inputs with a batch axis, got shapes {shapes}")
        batches = {s[0] for s in shapes} - {None}
        if len(batches) > 1:
            raise ShapeError(f"{label} cannot merge inputs with different batch sizes, got "
                             f"shapes {shapes}")
        rank = max(len(s) for s in shapes) - 1
        out = [1] * rank
        for s in shapes:
            sample = (1,) * (rank - len(s) + 1) + tuple(s[1:])
            for i, (a, b) in enumerate(zip(out, sample)):
                if a is None or b is None:
                    out[i] = None          # unknown until data flows (checked then)
                elif a == 1 or b == 1 or a == b:
                    out[i] = max(a, b)
                else:
                    raise ShapeError(f"{label} expected inputs of shapes that broadcast "
                                     f"together, got {shapes}")
        return (next(iter(batches), None), *out)

    def build(self, input_shape):
        self._check(_shapes(self, input_shape))

    def call(self, inputs, training=False):
        self._check(_shapes(self, inputs))
        xs = [x if isinstance(x, Tensor) else Tensor(x) for x in inputs]
        rank = max(x.ndim for x in xs)
        # fewer dimensions: new axes after the batch axis, as Keras
        xs = [x if x.ndim == rank else F.reshape(x, (x.shape[0], *(1,) * (rank - x.ndim),
                                                     *x.shape[1:])) for x in xs]
        return self.merge(xs)

    def compute_output_shape(self, input_shape):
        return self._check(_shapes(self, input_shape))

    def merge(self, xs):  # pragma: no cover - abstract
        raise NotImplementedError


class Add(_Merge):
    """y = x₁ + x₂ + … + xₖ."""

    def merge(self, xs):
        y = xs[0]
        for x in xs[1:]:
            y = F.add(y, x)
        return y


class Subtract(_Merge):
    """y = x₁ − x₂ (exactly two inputs)."""

    min_inputs = max_inputs = 2

    def merge(self, xs):
        return F.sub(xs[0], xs[1])


class Multiply(_Merge):
    """y = x₁ · x₂ · … · xₖ."""

    def merge(self, xs):
        y = xs[0]
        for x in xs[1:]:
            y = F.mul(y, x)
        return y


class Average(_Merge):
    """y = (x₁ + x₂ + … + xₖ) / k."""

    def merge(self, xs):
        y = xs[0]
        for x in xs[1:]:
            y = F.add(y, x)
        return y / len(xs)


class Maximum(_Merge):
    """y = max(x₁, x₂, …, xₖ), element-wise."""

    def merge(self, xs):
        y = xs[0]
        for x in xs[1:]:
            y = F.maximum(y, x)
        return y


class Minimum(_Merge):
    """y = min(x₁, x₂, …, xₖ), element-wise."""

    def merge(self, xs):
        y = xs[0]
        for x in xs[1:]:
            y = F.minimum(y, x)
        return y


class Concatenate(Layer):
    """y = [x₁, x₂, …, xₖ] joined along `axis` (counted with the batch axis; −1: the last);
    every other dimension must agree."""

    takes_input_list = True
    def __init__(self, axis=-1, **kwargs):
        if isinstance(axis, bool) or not isinstance(axis, int):
            raise TypeError(f"Concatenate: expected axis to be an int, got axis={axis!r}")
        super().__init__(**kwargs)
        self.axis = axis

    def _check(self, shapes):
        """The output shape; ShapeError naming the layer and the shapes when they differ
        outside the axis."""
        label = layer_label(self, f"(axis={self.axis})")
        ranks = {len(s) for s in shapes}
        if len(ranks) > 1:
            raise ShapeError(f"{label} expected inputs of one rank, got shapes {shapes}")
        rank = ranks.pop()
        if not -rank <= self.axis < rank:
            raise ShapeError(f"{label} axis {self.axis} is out of range for inputs of "
                             f"{rank} dimensions, got shapes {shapes}")
        a = self.axis % rank
        out = list(shapes[0])
        for s in shapes[1:]:
            for i, (p, q) in enumerate(zip(out, s)):
                if i == a:
                    out[i] = None if p is None or q is None else p + q
                elif p is None:
                    out[i] = q
                elif q is not None and p != q:
                    raise ShapeError(f"{label} expected inputs whose shapes agree except on "
                                     f"axis {self.axis}, got shapes {shapes}")
        return tuple(out)

    def build(self, input_shape):
        self._check(_shapes(self, input_shape))

    def call(self, inputs, training=False):
        self._check(_shapes(self, inputs))
        return F.concatenate([x if isinstance(x, Tensor) else Tensor(x) for x in inputs],
                             axis=self.axis)

    def compute_output_shape(self, input_shape):
        return self._check(_shapes(self, input_shape))

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}
