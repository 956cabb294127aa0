"""gradcheck_model: is backprop right for this whole model, layer by layer?

On a float64 copy of the model (same weights), for the loss the training step minimizes
(the compiled loss, fused or not, plus regularization penalties), in inference mode so that
dropout does not make the loss random:

    analytic   g = ∂C/∂θ from one backward sweep
    numerical  for a direction v:  (C(θ + εv) − C(θ − εv)) / (2ε)  ≈  g·v

Small weights (at most `full_max` elements) are checked element by element (v = each basis
vector); larger ones along `directions` random unit directions. They must agree to
|g·v − numerical| <= atol + rtol·max(|g·v|, |numerical|). Layers are checked from the output
back to the input, so the first one reported is where a wrong backward enters (the layers
below it get wrong gradients through it too).
"""
import numpy as np

from tidu import backend
from tidu.autograd import Tensor, no_grad
from tidu.autograd.gradcheck import directional_derivative
from tidu.errors import GradcheckError
from tidu.training.checks import check_batch

__all__ = ["gradcheck_model", "ModelGradcheckResult"]


class ModelGradcheckResult:
    """Per layer: (layer name, class, number of weights checked, largest error)."""

    def __init__(self, rows):
        self.rows = rows

    @property
    def layers(self):
        return [r[0] for r in self.rows]

    @property
    def max_error(self):
        return {r[0]: r[3] for r in self.rows}

    def __bool__(self):
        return all(r[4] for r in self.rows)

    def __repr__(self):
        lines = [f"{'layer':<24}{'type':<20}{'weights':>8}{'max error':>14}  ok"]
        for name, cls, n, err, ok in self.rows:
            lines.append(f"{name:<24}{cls:<20}{n:>8}{err:>14.3e}  {'yes' if ok else 'NO'}")
        return "\n".join(lines)


def gradcheck_model(model, x, y, sample_weight=None, eps=1e-6, atol=1e-6, rtol=1e-4,
                    directions=3, full_max=64, seed=0, raise_on_failure=True):
    """Check ∂loss/∂weights of a compiled model on (x, y) against central differences.

    Returns a ModelGradcheckResult (a table of layers and largest errors); raises
    GradcheckError naming the first failing layer (from the output) when raise_on_failure.
    Use a few samples: every numerical derivative costs two forward passes.
    """
    from tidu.models.cloning import clone_model

    if model.compiled_loss is None:
        raise RuntimeError("gradcheck_model: compile the model with a loss first")
    x = np.asarray(x.numpy() if isinstance(x, Tensor) else x)
    y = np.asarray(y.numpy() if isinstance(y, Tensor) else y)
    model.build_from_data(x)
    prev = backend.floatx()
    backend.set_floatx("float64")
    try:
        clone = clone_model(model, copy_weights=True, dtype="float64")
        clone.compile(optimizer="sgd", loss=model.compiled_loss, loss_weights=model.loss_weight)
        xs, ys, sw = check_batch(clone, x, y, sample_weight, "gradcheck_model")
        if ys.dtype.kind == "f":
            ys = ys.astype(np.float64)
        clone.train_step.prepare()
        return _check(clone, xs, ys, sw, eps, atol, rtol, directions, full_max, seed, raise_on_failure)
    finally:
        backend.set_floatx(prev)


def _loss(model, x, y, sw):
    """The training step's loss C (fused or not, with penalties), in inference mode."""
    return model.train_step.loss(x, y, sw, training=False)[0]


def _check(model, x, y, sw, eps, atol, rtol, directions, full_max, seed, raise_on_failure):
    rng = np.random.default_rng(seed)
    params = model.trainable_weights
    for p in params:
        if p.dtype != np.float64:
            raise TypeError(f"gradcheck_model: weight '{p.name}' is {p.dtype} in the float64 copy; "
                            f"its layer ignores the dtype it is given")
        p.grad = None
    loss = _loss(model, x, y, sw)
    if loss.dtype != np.float64:
        raise TypeError(f"gradcheck_model: the loss is {loss.dtype} for float64 weights; an op casts "
                        f"to a lower precision")
    loss.backward()
    grads = {id(p): (p.grad if p.grad is not None else np.zeros_like(p.data)) for p in params}
    for p in params:
        p.grad = None

    def value():
        with no_grad():
            return float(_loss(model, x, y, sw).data)

    rows, failures = [], []
    claimed = set()   # a weight is reported under the innermost layer that holds it
    for layer in reversed(model.all_layers()):
        own = [p for p in layer.trainable_weights if id(p) in grads and id(p) not in claimed]
        claimed.update(id(p) for p in own)
        if not own:
            continue
        worst, checked, problem = 0.0, 0, None
        for p in own:
            g = grads[id(p)]
            if p.size <= full_max:
                vs = (("element", i) for i in range(p.size))
            else:
                vs = (("direction", k) for k in range(directions))
            for kind, k in vs:
                if kind == "element":
                    v = np.zeros(p.size)
                    v[k] = 1.0
                    v = v.reshape(p.shape)
                else:
                    v = rng.standard_normal(p.shape)
                    v /= np.linalg.norm(v)
                num = directional_derivative(value, p.data, v, eps)
                ana = float((g * v).sum())
                err = abs(ana - num)
                checked += 1
                worst = max(worst, err)
                if problem is None and err > atol + rtol * max(abs(ana), abs(num)):
                    where = (f"element {tuple(int(i) for i in np.unravel_index(k, p.shape))}"
                             if kind == "element" else "a random direction")
                    problem = (f"weight '{p.name}' of shape {p.shape}, {where}: analytic "
                               f"{ana:.10g}, numerical {num:.10g} (difference {err:.3g})")
        ok = problem is None
        rows.append((layer.name, type(layer).__name__, checked, worst, ok))
        if not ok:
            failures.append((layer, problem))
    result = ModelGradcheckResult(rows)
    if failures and raise_on_failure:
        layer, problem = failures[0]
        others = [l.name for l, _ in failures[1:]]
        also = (f"; also failing (gradients flowing through it): {', '.join(others)}" if others else "")
        raise GradcheckError(f"gradcheck_model: layer '{layer.name}' ({type(layer).__name__}) has a "
                             f"wrong gradient: {problem}{also}\n{result!r}")
    return result
