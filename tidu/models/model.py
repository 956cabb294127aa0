"""Model: compile, fit, evaluate, predict, save; the functional `Model(inputs, outputs)` and the
base of `Sequential`.

One training step on a batch (x, y) of n samples:

    z = pre-activation of the last layer,  a = activation(z)     forward
    C = loss(y, a) + Σ_w penalty(w)                              regularizers add to the loss
    ∂C/∂θ for every trainable weight θ                           one backward sweep
    θ ← optimizer update(θ, ∂C/∂θ)                               one apply_gradients call

When the last layer's activation is softmax and the loss categorical (or sparse categorical)
cross-entropy on probabilities, C is computed by the fused `softmax_cross_entropy(z, y)`:
the same number, computed stably from z, with the output-layer error δ = (a − y)/n of the
notes (no division by a, no softmax Jacobian); likewise sigmoid + binary cross-entropy. The
metrics read a (computed from z once), so nothing is forwarded twice.

fit checks its inputs once, before any weight changes (shapes by running one batch of the
training and of the validation data through the network, NaN/inf, lengths, label ranges); a
fit that fails later leaves the weights of the last completed step. Data is converted to
floatx() (float32) once, at the start.

Checkpoints (tidu.checkpoint): fit keeps a FitState up to date (epoch, step, the epoch's
running sums: counters, no copies) that ModelCheckpoint records with the weights, the
optimizer state and the generators; fit(resume_from=path) restores all of it and goes on
from that step, so an interrupted run ends bit-identically to an uninterrupted one.
"""
import collections
import math
import numbers

import numpy as np

import tidu.functional as F
from tidu import backend
from tidu.autograd import Tensor, no_grad
from tidu.callbacks import CallbackList, History, ProgbarLogger
from tidu.errors import NotBuiltError, ShapeError
from tidu.layers.base import Layer
from tidu.layers.input_layer import SymbolicTensor

__all__ = ["Model"]


def _check_int(where, name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{where}: expected {name} to be an int, got {name}={value!r}")
    if value < minimum:
        raise ValueError(f"{where}: expected {name} to be an int >= {minimum}, got {name}={value!r}")
    return int(value)


def _as_numpy(a, where, name):
    if a is None:
        raise ValueError(f"{where}: expected {name} to be an array, got None")
    if isinstance(a, Tensor):
        a = a.numpy()
    try:
        a = np.asarray(backend.to_numpy(a) if not isinstance(a, (list, tuple)) else a)
    except ValueError as e:  # a ragged nested list
        raise ValueError(f"{where}: expected {name} to be a rectangular numeric array, got "
                         f"{type(a).__name__} of rows of different lengths ({e})") from None
    if a.dtype == object or a.dtype.kind not in "biuf":
        raise TypeError(f"{where}: expected {name} to be a numeric array, got dtype {a.dtype}")
    return a


def _all_finite(a):
    """Whether a float array holds no NaN or ±inf: the matrix-vector product of its rows with a
    zero vector is NaN exactly where a row holds one (0·inf = NaN, 0·finite = 0, no overflow),
    3× faster than np.isfinite(a).all() on MNIST and without its bool copy of the data."""
    if a.ndim < 2 or a.size == 0:
        return bool(np.isfinite(a).all())
    rows = a.reshape(len(a), -1)
    with np.errstate(invalid="ignore"):
        return bool(np.isfinite(rows @ np.zeros(rows.shape[1], dtype=a.dtype)).all())


def _first_nonfinite(a):
    bad = np.argwhere(~np.isfinite(a))[0]
    return tuple(int(i) for i in bad), a[tuple(bad)]


class Model(Layer):
    """A network of layers with Keras' training API.

    Functional: `Model(inputs, outputs)` with `inputs = Input(shape)` and `outputs` the
    SymbolicTensor got by calling layers on it (one input, one output). Sequential is the
    subclass for a plain stack. A Model is itself a Layer, so it can be nested.
    """

    def __init__(self, inputs=None, outputs=None, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        self.optimizer = None
        self.compiled_loss = None
        self.compiled_metrics = []
        self.loss_weight = None
        self._compile_config = None
        self.history = None
        self.stop_training = False
        self._rng = None
        self._fit_state = None   # a tidu.checkpoint.FitState while fit runs
        self._fused = None
        self._output_shapes = {}
        self._input_shape = None
        self._nodes = []
        self._input_tensor = self._output_tensor = None
        if inputs is not None or outputs is not None:
            self._init_graph(inputs, outputs)

    # --- contracts used by tidu.saving (aliases until the training/ rewrite lands) --- [save-branch alias]
    @property
    def rng(self):
        return self._rng

    @rng.setter
    def rng(self, value):
        self._rng = value

    @property
    def fit_state(self):
        return self._fit_state

    def all_layers(self):
        return self._all_layers()

    # --- structure -------------------------------------------------------------------------
    def _init_graph(self, inputs, outputs):
        def single(t, what):
            if isinstance(t, (list, tuple)):
                if len(t) != 1:
                    raise ValueError(f"Model: expected one {what} SymbolicTensor (several "
                                     f"{what}s are not supported), got {len(t)}")
                t = t[0]
            if not isinstance(t, SymbolicTensor):
                raise TypeError(f"Model: expected {what}s made with tidu.layers.Input and layer "
                                f"calls (SymbolicTensor), got {type(t).__name__}")
            return t

        inputs, outputs = single(inputs, "input"), single(outputs, "output")
        order, seen, stack = [], set(), [(outputs, False)]
        while stack:  # iterative post-order DFS: every node after the nodes it reads
            t, expanded = stack.pop()
            if expanded:
                order.append(t)
                continue
            if id(t) in seen or t is inputs:
                continue
            seen.add(id(t))
            if not t.inputs:
                raise ValueError(f"Model: the graph is disconnected: output {outputs.name!r} depends "
                                 f"on input {t.name!r}, which is not the model's input {inputs.name!r}")
            stack.append((t, True))
            for p in reversed(t.inputs):
                if id(p) not in seen and p is not inputs:
                    stack.append((p, False))
        if not order:
            raise ValueError("Model: the outputs are the inputs; add at least one layer")
        layers = []
        for t in order:
            if t.layer not in layers:
                layers.append(t.layer)
        names = [layer.name for layer in layers]
        dupes = sorted(n for n, k in collections.Counter(names).items() if k > 1)
        if dupes:
            raise ValueError(f"Model: layer names must be unique, got {dupes} more than once")
        self._nodes, self._layers = order, layers
        self._input_tensor, self._output_tensor = inputs, outputs
        self._input_shape = inputs.shape
        self._output_shapes = {t.layer.name: t.shape for t in order}
        self.built = True

    @property
    def layers(self):
        return list(self._layers)

    @property
    def input_shape(self):
        return self._input_shape

    @property
    def output_shape(self):
        self._require_built("output_shape")
        return self._output_tensor.shape if self._output_tensor is not None else None

    def get_layer(self, name=None, index=None):
        if index is not None:
            return self._layers[index]
        for layer in self._layers:
            if layer.name == name:
                return layer
        raise ValueError(f"{self.name}: no layer named {name!r}; layers: "
                         f"{', '.join(l.name for l in self._layers)}")

    @property
    def weights(self):
        """All weights in Keras' order (layer by layer), each once even if a layer is shared."""
        out, seen = [], set()
        for p in [*self._params, *(p for layer in self._layers for p in layer.weights)]:
            if id(p) not in seen:
                seen.add(id(p))
                out.append(p)
        return out

    @property
    def losses(self):
        """Activity-regularization losses of the last forward pass (0-d Tensors)."""
        return [l for layer in self._layers for l in getattr(layer, "losses", ())]

    def _output_layer(self):
        if not self._layers:
            raise ValueError(f"{type(self).__name__} '{self.name}': the model has no layers")
        return self._nodes[-1].layer if self._nodes else self._layers[-1]

    def _require_built(self, what):
        if not self.built:
            raise NotBuiltError(f"{type(self).__name__} '{self.name}': {what} needs the model built; "
                                f"give the first layer input_shape=..., or call fit/predict or "
                                f"build((None, ...)) first")

    def count_params(self):
        self._require_built("count_params")
        return int(sum(p.size for p in self.weights))

    def __setattr__(self, name, value):
        # a subclassed model (Keras' subclassing API) owns the layers assigned to it
        if (isinstance(value, Layer) and value is not self and not name.startswith("_")
                and "_layers" in self.__dict__ and value not in self._layers):
            self._layers.append(value)
        super().__setattr__(name, value)

    def build(self, input_shape):
        """Functional models are built at construction; a subclassed model (one that defines
        call) builds its layers by running one zero sample through call."""
        if self._nodes:
            return
        if type(self).call is Model.call:
            raise TypeError(f"{type(self).__name__}: a Model needs inputs and outputs "
                                      f"(functional), layers (Sequential) or a call method (subclass)")
        self._input_shape = (None, *tuple(input_shape)[1:])
        shape = tuple(1 if d is None else d for d in input_shape)
        with no_grad():
            self.call(Tensor(np.zeros(shape, dtype=self.dtype or backend.floatx())), training=False)
        self.built = True

    def compute_output_shape(self, input_shape):
        if self._output_tensor is not None:
            return (input_shape[0], *self._output_tensor.shape[1:])
        return super().compute_output_shape(input_shape)

    # --- forward -----------------------------------------------------------------------------
    def call(self, inputs, training=False):
        if not self._nodes and type(self)._run is Model._run:
            raise TypeError(f"{type(self).__name__}: a subclassed Model must define call")
        return self._run(inputs, training)

    def __call__(self, inputs, training=False, **kwargs):
        if isinstance(inputs, np.ndarray) and inputs.dtype.kind in "fiu" and not (
                self._layers and "Embedding" in type(self._layers[0]).__name__):
            inputs = inputs.astype(backend.floatx(), copy=False)  # model(x) as fit sees x
        return super().__call__(inputs, training=training, **kwargs)

    def _run(self, x, training=False, logits=False):
        """The network's output for a Tensor x (or, with logits=True, the last layer's
        pre-activation). Errors raised by a layer are prefixed with its name if they lack it."""
        nodes = self._nodes
        if not nodes:  # a subclassed model: its own call
            return self.call(x, training=training)
        values = {id(self._input_tensor): x}
        last = len(nodes) - 1
        i = 0
        try:
            for i, node in enumerate(nodes):
                args = [values[id(t)] for t in node.inputs]
                a = args[0] if len(args) == 1 else args
                if logits and i == last:
                    y = node.layer.pre_activation(a, training=training)
                else:
                    y = node.layer(a, training=training, **node.call_kwargs)
                values[id(node)] = y
        except (ValueError, TypeError) as e:
            new = _with_layer(nodes[i].layer, e)
            if new is e:
                raise
            raise new from e
        return y

    def _ensure_built(self, x):
        """Build from a data array's shape (Sequential without input_shape)."""
        if not self.built:
            self.build((None, *np.shape(x)[1:]))
            self.built = True

    # --- compile -------------------------------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, loss_weights=None, **kwargs):
        """Choose the optimizer, loss and metrics: names ('rmsprop', 'categorical_crossentropy',
        'accuracy'), configs or objects. Unknown names raise ValueError listing the allowed ones."""
        from tidu import losses as L, metrics as M, optimizers

        for k in ("weighted_metrics", "run_eagerly", "steps_per_execution", "jit_compile"):
            kwargs.pop(k, None)  # Keras options without meaning here
        if kwargs:
            raise TypeError(f"compile: unexpected keyword argument(s) {', '.join(sorted(kwargs))}")
        opt = optimizers.get(optimizer)
        loss_obj = L.get(loss) if loss is not None else None
        if isinstance(loss_weights, (list, tuple)):
            if len(loss_weights) != 1:
                raise ValueError(f"compile: one output, so expected one loss weight, got {loss_weights!r}")
            loss_weights = loss_weights[0]
        elif isinstance(loss_weights, dict):
            if len(loss_weights) != 1:
                raise ValueError(f"compile: one output, so expected one loss weight, got {loss_weights!r}")
            loss_weights = next(iter(loss_weights.values()))
        if loss_weights is not None and not isinstance(loss_weights, numbers.Real):
            raise TypeError(f"compile: expected loss_weights to be a number, got {loss_weights!r}")
        if metrics is None:
            metrics = []
        elif isinstance(metrics, (str, dict)) or callable(metrics):
            metrics = [metrics]
        metric_objs = [M.get(m, loss=loss_obj) for m in metrics]
        names = [m.name for m in metric_objs]
        dupes = sorted({n for n in names if names.count(n) > 1 or n == "loss"})
        if dupes:
            raise ValueError(f"compile: metric names must be unique and not 'loss', got {dupes}")
        self.optimizer, self.compiled_loss, self.compiled_metrics = opt, loss_obj, metric_objs
        self.loss = loss_obj
        self.loss_weight = None if loss_weights is None else float(loss_weights)
        self._compile_args = {"optimizer": optimizer, "loss": loss, "metrics": list(metrics),
                              "loss_weights": loss_weights}
        self._fused = None

    @property
    def metrics(self):
        return list(self.compiled_metrics)

    @property
    def metrics_names(self):
        return ["loss", *(m.name for m in self.compiled_metrics)]

    def _check_compiled(self, where, need_loss=True):
        if self.optimizer is None and where in ("fit", "train_on_batch"):
            raise RuntimeError(f"{where}: the model must be compiled first; call "
                               f"model.compile(optimizer=..., loss=..., metrics=[...])")
        if need_loss and self.compiled_loss is None:
            raise RuntimeError(f"{where}: the model has no loss; call model.compile(optimizer=..., "
                               f"loss=..., metrics=[...]) first")

    def _resolve_fused(self, out_ndim):
        """Which fused loss the training step uses: 'softmax', 'sparse_softmax', 'sigmoid' or None."""
        from tidu import losses as L

        self._fused = None
        if not self._nodes and type(self)._run is Model._run:
            return None  # a subclassed model: its output layer is not known
        last = self._output_layer()
        act = getattr(last, "activation_name", None)
        loss = self.compiled_loss
        if (not hasattr(last, "pre_activation") or getattr(last, "activity_regularizer", None) is not None
                or getattr(loss, "from_logits", True) or out_ndim != 2):
            return None
        if act == "softmax" and type(loss) is L.CategoricalCrossentropy:
            self._fused = "softmax"
        elif act == "softmax" and type(loss) is L.SparseCategoricalCrossentropy:
            self._fused = "sparse_softmax"
        elif act == "sigmoid" and type(loss) is L.BinaryCrossentropy:
            self._fused = "sigmoid"
        return self._fused

    # --- the loss --------------------------------------------------------------------------
    def _prepare_step_state(self, n_train=None):
        """Lists the training step reads, computed once per fit/train_on_batch."""
        self._trainable = self.trainable_weights
        self._reg_params = [p for p in self._trainable if getattr(p, "regularizer", None) is not None]
        self._activity_layers = [l for l in self._layers
                                 if getattr(l, "activity_regularizer", None) is not None]
        if n_train:
            for p in self._reg_params:  # the notes' λ/(2n): n = the training-set size
                reg = p.regularizer
                if getattr(reg, "convention", None) == "notes" and getattr(reg, "n", 0) is None:
                    reg.n = int(n_train)

    def _penalty(self):
        total = None
        for p in self._reg_params:
            r = p.regularizer(p)
            total = r if total is None else total + r
        for layer in self._activity_layers:
            for r in layer.losses:
                total = r if total is None else total + r
        return total

    def _data_loss(self, out, y, sw):
        """The compiled loss of output `out` (pre-activation when fused) against y."""
        fused = self._fused
        if fused == "softmax":
            loss = F.softmax_cross_entropy(out, y, sample_weight=sw)
        elif fused == "sparse_softmax":
            loss = F.sparse_softmax_cross_entropy(out, y, sample_weight=sw)
        elif fused == "sigmoid":
            loss = F.sigmoid_binary_cross_entropy(out, y, sample_weight=sw)
        else:
            loss = self.compiled_loss(y, out, sw)
        if self.loss_weight is not None:
            loss = loss * self.loss_weight
        return loss

    def _total_loss(self, out, y, sw):
        loss = self._data_loss(out, y, sw)
        if self._reg_params or self._activity_layers:
            penalty = self._penalty()
            if penalty is not None:
                loss = loss + penalty
        return loss

    def _predictions(self, out):
        """a as an array: the last layer's activation applied to its pre-activation when fused."""
        if self._fused is None:
            return out.data
        with no_grad():
            return self._output_layer().activation(out).data

    # --- one step ------------------------------------------------------------------------------
    def _train_step(self, xb, yb, swb=None):
        """Forward, loss, backward, one optimizer update; metrics updated; returns the loss."""
        out = self._run(Tensor._node(backend.as_array(xb), None), True, self._fused is not None)
        loss = self._total_loss(out, yb, swb)
        params = self._trainable
        for p in params:
            p.grad = None
        loss.backward()
        xp = backend.xp
        self.optimizer.apply_gradients(
            [(p.grad if p.grad is not None else xp.zeros_like(p.data), p) for p in params])
        for p in params:
            p.grad = None
        if self.compiled_metrics:
            y_pred = self._predictions(out)
            for m in self.compiled_metrics:
                m.update_state(yb, y_pred, swb)
        return float(loss.data)

    def _test_step(self, xb, yb, swb=None, penalty=None):
        with no_grad():
            out = self._run(Tensor._node(backend.as_array(xb), None), False, self._fused is not None)
            loss = self._data_loss(out, yb, swb)
            value = float(loss.data)
            if self._activity_layers:
                for layer in self._activity_layers:
                    for r in layer.losses:
                        value += float(r.data)
        if self.compiled_metrics:
            y_pred = self._predictions(out)
            for m in self.compiled_metrics:
                m.update_state(yb, y_pred, swb)
        return value + (penalty or 0.0)

    def _weight_penalty_value(self):
        if not self._reg_params:
            return 0.0
        with no_grad():
            return float(sum(float(p.regularizer(p).data) for p in self._reg_params))

    # --- data checks ---------------------------------------------------------------------
    def _check_x(self, x, where):
        x = _as_numpy(x, where, "x")
        if x.ndim == 0:
            raise ValueError(f"{where}: expected x with a batch axis, got a scalar")
        if len(x) == 0:
            raise ValueError(f"{where}: x is empty (shape {x.shape}); expected at least one sample")
        first = self._layers[0] if self._layers else None
        keep_int = first is not None and "Embedding" in type(first).__name__
        if x.dtype.kind == "f":
            if x.dtype != np.dtype(backend.floatx()):
                x = x.astype(backend.floatx())
            if not _all_finite(x):
                idx, v = _first_nonfinite(x)
                raise ValueError(f"{where}: x contains {v} at index {idx}; expected finite values "
                                 f"(no NaN or inf)")
        elif not keep_int:
            x = x.astype(backend.floatx())
        return x

    def _check_y(self, y, n, where):
        y = _as_numpy(y, where, "y")
        if y.ndim == 0:
            raise ValueError(f"{where}: expected y with a batch axis, got a scalar")
        if len(y) != n:
            raise ValueError(f"{where}: x and y have different numbers of samples: x has {n}, "
                             f"y has {len(y)}")
        if y.dtype.kind == "f":
            if y.dtype != np.dtype(backend.floatx()):
                y = y.astype(backend.floatx())
            if not _all_finite(y):
                idx, v = _first_nonfinite(y)
                raise ValueError(f"{where}: y contains {v} at index {idx}; expected finite values")
        return y

    def _check_sample_weight(self, sw, n, where):
        if sw is None:
            return None
        sw = _as_numpy(sw, where, "sample_weight").astype(backend.floatx())
        if sw.ndim != 1 or len(sw) != n:
            raise ValueError(f"{where}: expected sample_weight of shape ({n},), one weight per "
                             f"sample, got shape {sw.shape}")
        bad = ~np.isfinite(sw) | (sw < 0)
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"{where}: expected finite, non-negative sample weights, got "
                             f"{sw[i]} at index {i}")
        return sw

    def _probe(self, x, where):
        """Run a few samples through the network (inference mode, no graph): builds a lazy
        model and raises the layer's own error for a wrong input shape before anything trains.
        Returns the output shape."""
        self._ensure_built(x)
        if self._input_shape is not None:
            want = tuple(self._input_shape[1:])
            got = tuple(x.shape[1:])
            if len(want) != len(got):
                first = self._layers[0]
                raise ShapeError(f"{where}: {type(first).__name__} '{first.name}' (the first layer) "
                                 f"expected input of shape {(None, *want)}, got shape {x.shape}")
        try:
            with no_grad():
                out = self._run(Tensor(x), training=False)
        except (ValueError, TypeError) as e:  # the layer's own error, prefixed with where it came from
            if str(e).startswith(where):
                raise
            try:
                new = type(e)(f"{where}: {e}")
            except Exception:
                raise e from None
            raise new from e
        return out.shape

    def _check_targets(self, y, out_shape, where, loss=None):
        """Targets against the model's output and the loss (default: the compiled one): label
        range for sparse losses, shape for the others. Returns y (possibly reshaped / cast)."""
        from tidu import losses as L

        loss = self.compiled_loss if loss is None else loss
        classes = out_shape[-1]
        if isinstance(loss, L.SparseCategoricalCrossentropy):
            if y.ndim == len(out_shape) and y.shape[-1] == 1:
                y = y.reshape(y.shape[:-1])
            if y.shape[1:] != tuple(out_shape[1:-1]):
                raise ValueError(f"{where}: {loss.name} expects integer labels of shape "
                                 f"{('N', *out_shape[1:-1])}, got y of shape {y.shape}")
            if y.dtype.kind == "f":
                frac = y != np.round(y)
                if frac.any():
                    i = tuple(int(k) for k in np.argwhere(frac)[0])
                    raise ValueError(f"{where}: {loss.name} expects integer class labels, got "
                                     f"{y[i]} at index {i}")
            if y.size:
                lo, hi = y.min(), y.max()
                if lo < 0 or hi >= classes:
                    bad = lo if lo < 0 else hi
                    i = tuple(int(k) for k in np.argwhere(y == bad)[0])
                    raise ValueError(f"{where}: label {bad:g} at index {i} is outside [0, {classes}): "
                                     f"the model has {classes} output classes")
            return y.astype(np.int64, copy=False)
        if isinstance(loss, L.LossFunctionWrapper):
            return y  # a custom loss decides what its targets look like
        if y.dtype.kind != "f":
            y = y.astype(backend.floatx())
        if y.shape[1:] != tuple(out_shape[1:]):
            if y.ndim == 1 and tuple(out_shape[1:]) == (1,):
                return y.reshape(-1, 1)
            hint = ""
            if isinstance(loss, L.CategoricalCrossentropy) and y.ndim == 1:
                hint = ("; for integer labels use tidu.utils.to_categorical(y) or "
                        "loss='sparse_categorical_crossentropy'")
            raise ValueError(f"{where}: y has shape {y.shape}, but the model's output has shape "
                             f"{(None, *out_shape[1:])}; {getattr(loss, 'name', 'the loss')} expects "
                             f"targets shaped like the output{hint}")
        return y

    def _class_weights(self, class_weight, y, sw, n):
        if not class_weight:
            return sw
        if not isinstance(class_weight, dict):
            raise TypeError(f"fit: expected class_weight to be a dict {{class: weight}}, got {class_weight!r}")
        if y.ndim >= 2 and y.shape[-1] > 1:
            cls = y.argmax(axis=-1)
        else:
            cls = np.round(y.reshape(n, -1)[:, 0]).astype(np.int64)
        table = np.ones(int(max(cls.max(), max(class_weight))) + 1, dtype=backend.floatx())
        for k, v in class_weight.items():
            if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
                raise ValueError(f"fit: class_weight keys must be class indices (ints >= 0), got {k!r}")
            table[int(k)] = v
        w = table[cls].reshape(-1)
        return w if sw is None else sw * w

    # --- fit -----------------------------------------------------------------------------------
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose=1, callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
            sample_weight=None, initial_epoch=0, steps_per_epoch=None, curriculum=None,
            augment=None, seed=None, distributed=None, validation_batch_size=None,
            validation_freq=1, resume_from=None):
        """Train for `epochs` epochs of mini-batches; returns a History (also `model.history`).

        validation_split: the LAST fraction of x, y (before shuffling, as Keras) is held out
            and evaluated after each epoch ('val_loss', 'val_<metric>' in the logs).
        curriculum: difficulty scores, one per training sample (lower = easier), or a dict
            {'scores': ..., 'pacing': 'linear'|'root'|'step', 'start_fraction': 0.2,
            'epochs_to_full': 10}: each epoch presents the easiest part of the data, easiest
            first, widening to all of it (tidu.data.curriculum_order); `shuffle` does not
            apply then.
        augment: a callable `augment(x_batch, rng)` (e.g. tidu.data.ImageAugmenter) applied
            to each training batch.
        seed: seeds the one Generator used for shuffling, dropout and augmentation (default:
            the model's generator if it has one, else tidu.backend.rng()).
        distributed: a parameter-server spec for tidu.distributed.get; each epoch is then
            trained by the server (validation, callbacks and History as usual).
        resume_from: a checkpoint written by ModelCheckpoint during an earlier fit with the
            same data and arguments: its weights, optimizer state, generators, History and
            callback states are restored, and training goes on from the epoch and step where
            it was written (the epoch's shuffled order included), so a run killed at any
            point and resumed ends with the same weights, bit for bit, as one never stopped.
            initial_epoch and seed are then taken from the checkpoint.
        """
        where = "fit"
        self._check_compiled(where)
        bs = 32 if batch_size is None else _check_int(where, "batch_size", batch_size, 1)
        epochs = _check_int(where, "epochs", epochs, 0)
        initial_epoch = _check_int(where, "initial_epoch", initial_epoch, 0)
        if verbose == "auto":
            verbose = 1
        if verbose not in (0, 1, 2):
            raise ValueError(f"{where}: expected verbose to be 0, 1 or 2, got {verbose!r}")
        if not isinstance(validation_split, numbers.Real) or not 0.0 <= validation_split < 1.0:
            raise ValueError(f"{where}: expected 0 <= validation_split < 1, got {validation_split!r}")
        if steps_per_epoch is not None:
            steps_per_epoch = _check_int(where, "steps_per_epoch", steps_per_epoch, 1)
        validation_freq = _check_int(where, "validation_freq", validation_freq, 1)
        val_bs = bs if validation_batch_size is None else \
            _check_int(where, "validation_batch_size", validation_batch_size, 1)

        x = self._check_x(x, where)
        n = len(x)
        if y is None:
            raise ValueError(f"{where}: expected targets y, got None")
        y = self._check_y(y, n, where)
        sw = self._check_sample_weight(sample_weight, n, where)
        scores, pacing = self._check_curriculum(curriculum, n, where)

        val = None
        if validation_data is not None:
            val = self._check_validation_data(validation_data, where)
        elif validation_split > 0:
            split = int(n * (1.0 - validation_split))
            if split <= 0 or split >= n:
                raise ValueError(f"{where}: validation_split={validation_split} of {n} samples "
                                 f"leaves {'no training' if split <= 0 else 'no validation'} data")
            val = (x[split:], y[split:], None if sw is None else sw[split:])
            x, y = x[:split], y[:split]
            sw = None if sw is None else sw[:split]
            scores = None if scores is None else scores[:split]
            n = split

        out_shape = self._probe(x[:bs], where)
        self._resolve_fused(len(out_shape))
        y = self._check_targets(y, out_shape, where)
        if val is not None:  # its shapes too are checked before anything trains
            self._probe(val[0][:val_bs], where + " (validation data)")
            val = (val[0], self._check_targets(val[1], out_shape, where + " (validation data)"), val[2])
        sw = self._class_weights(class_weight, y, sw, n)

        ps = resume = None
        if distributed is not None:
            if any(a is not None for a in (sample_weight, class_weight, curriculum, augment,
                                           steps_per_epoch, resume_from)):
                raise ValueError(f"{where}: sample_weight, class_weight, curriculum, augment, "
                                 f"steps_per_epoch and resume_from are not supported with "
                                 f"distributed= (the parameter server has checkpoints of its own)")
            from tidu import distributed as D
            ps = D.get(distributed)
        if resume_from is not None:  # read and checked before anything changes
            from tidu import saving
            resume = saving.read_checkpoint(resume_from, self)
            resume.check_run(where, n, bs, shuffle, steps_per_epoch, scores is not None)
            initial_epoch = resume.epoch

        self._prepare_step_state(n)
        steps = steps_per_epoch or math.ceil(n / bs)
        if scores is not None:
            first = self._curriculum_order(scores, pacing, initial_epoch)
            steps = math.ceil(len(first) / bs)
        names = self.metrics_names
        expected = names + (["val_" + k for k in names] if val is not None else [])
        params = {"epochs": epochs, "steps": steps, "verbose": verbose, "samples": n,
                  "batch_size": bs, "metrics": expected if ps is None else None}
        history = History()
        cb_list = list(callbacks or [])
        if verbose:
            cb_list.append(ProgbarLogger())
        cb_list.append(history)
        cbs = CallbackList(cb_list, model=self, params=params)
        self.history = history

        # every check passed: from here on, state changes
        rng = resume.apply(self) if resume is not None else self._training_rng(seed)
        swapped = self._lend_rng(rng)
        sampler = _Sampler(n, bs, shuffle, rng) if steps_per_epoch else None
        state = None
        if ps is None:  # what ModelCheckpoint records (tidu.checkpoint)
            from tidu.saving.checkpoints import FitState
            state = FitState(epochs, n, bs, shuffle, steps_per_epoch, scores is not None, callbacks or [])
            state.sampler = sampler
        self._fit_state = state
        self.stop_training = False
        logs = {}
        try:
            cbs.on_train_begin()
            start = None
            if resume is not None:
                resume.restore_history(history)
                resume.restore_callbacks(callbacks or [])
                if sampler is not None:
                    resume.restore_sampler(sampler)
                self.stop_training = resume.stopped  # a callback had ended the run: nothing to do
                start = resume
            last = initial_epoch if self.stop_training else epochs
            for epoch in range(initial_epoch, last):
                order = None
                if scores is not None:
                    order = self._curriculum_order(scores, pacing, epoch)
                    params["steps"] = math.ceil(len(order) / bs)
                elif shuffle and sampler is None:
                    if start is not None and start.step > 0:
                        order = start.epoch_order(n)  # the permutation this epoch drew
                    else:
                        if state is not None:
                            state.epoch_rng = _rng_json(rng)
                        order = rng.permutation(n)
                if state is not None:
                    state.epoch, state.step, state.steps, state.epoch_done = epoch, 0, params["steps"], False
                if hasattr(self.optimizer, "on_epoch_begin"):
                    self.optimizer.on_epoch_begin(epoch)
                cbs.on_epoch_begin(epoch)
                if ps is not None:
                    logs = dict(ps.train_epoch(self, x, y, batch_size=bs, epoch=epoch, rng=rng,
                                               callbacks=cbs, verbose=verbose) or {})
                else:
                    logs = self._train_epoch(x, y, sw, bs, order, params["steps"], sampler, rng,
                                             augment, cbs, state, start)
                start = None
                if val is not None and (epoch + 1) % validation_freq == 0:
                    val_logs = self._evaluate_arrays(*val, val_bs)
                    logs.update({"val_" + k: v for k, v in val_logs.items()})
                if state is not None:
                    state.epoch_done = True
                cbs.on_epoch_end(epoch, logs)
                if self.stop_training:
                    break
            cbs.on_train_end(logs)
        except BaseException:
            for cb in cbs:  # close progress bars and files; the exception goes on
                cleanup = getattr(cb, "_cleanup", None)
                if cleanup is not None:
                    cleanup()
            raise
        finally:
            self._fit_state = None
            self._return_rng(swapped)
            if ps is not None:
                ps.close(self)
        return history

    def _train_epoch(self, x, y, sw, bs, order, steps, sampler, rng, augment, cbs, state=None,
                     resume=None):
        """One epoch of `steps` steps; with `resume`, from the step (and running sums) where a
        checkpoint was written. `state` (a FitState) gets the step count and sums after each step."""
        metrics = self.compiled_metrics
        for m in metrics:
            m.reset_state()
        loss_sum, seen, logs, first = 0.0, 0, {}, 0
        if resume is not None and resume.step > 0:
            first = resume.step
            loss_sum, seen = resume.running_sums()
            resume.restore_metrics(metrics)
            if seen:
                logs = {"loss": loss_sum / seen, **{m.name: m.result() for m in metrics}}
            if state is not None:
                state.step, state.loss_sum, state.seen = first, loss_sum, seen
        n = len(x) if order is None else len(order)
        floatx = np.dtype(backend.floatx())
        step_fn = self._train_step
        for step in range(first, steps):
            if sampler is not None:
                idx = sampler.next()
            elif order is None:
                idx = slice(step * bs, min((step + 1) * bs, n))
            else:
                idx = order[step * bs:(step + 1) * bs]
            xb, yb = x[idx], y[idx]
            swb = None if sw is None else sw[idx]
            if augment is not None:
                xb = augment(xb, rng)
                if xb.dtype != floatx:
                    xb = xb.astype(floatx)
            cbs.on_train_batch_begin(step)
            loss = step_fn(xb, yb, swb)
            nb = len(xb)
            loss_sum += loss * nb
            seen += nb
            if state is not None:
                state.step, state.loss_sum, state.seen = step + 1, loss_sum, seen
            logs = {"loss": loss_sum / seen}
            for m in metrics:
                logs[m.name] = m.result()
            cbs.on_train_batch_end(step, logs)
            if self.stop_training:
                break
        return dict(logs)

    def _check_curriculum(self, curriculum, n, where):
        if curriculum is None:
            return None, {}
        pacing = {}
        scores = curriculum
        if isinstance(curriculum, dict):
            pacing = dict(curriculum)
            if "scores" not in pacing:
                raise ValueError(f"{where}: a curriculum dict needs 'scores' (one difficulty per sample)")
            scores = pacing.pop("scores")
            unknown = set(pacing) - {"pacing", "start_fraction", "epochs_to_full"}
            if unknown:
                raise ValueError(f"{where}: unknown curriculum option(s) {sorted(unknown)}; allowed: "
                                 f"scores, pacing, start_fraction, epochs_to_full")
        scores = np.asarray(scores)
        if scores.shape != (n,):
            raise ValueError(f"{where}: expected curriculum scores of shape ({n},), one per "
                             f"sample, got shape {scores.shape}")
        return scores, pacing

    @staticmethod
    def _curriculum_order(scores, pacing, epoch):
        from tidu.data import curriculum_order
        return np.asarray(curriculum_order(scores, epoch, **pacing))

    def _check_validation_data(self, validation_data, where):
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            raise ValueError(f"{where}: expected validation_data to be (x_val, y_val) or "
                             f"(x_val, y_val, sample_weight), got {type(validation_data).__name__}")
        xv = self._check_x(validation_data[0], where + " (validation data)")
        yv = self._check_y(validation_data[1], len(xv), where + " (validation data)")
        swv = self._check_sample_weight(validation_data[2] if len(validation_data) == 3 else None,
                                        len(xv), where + " (validation data)")
        return xv, yv, swv

    def _training_rng(self, seed):
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        elif self._rng is None:
            self._rng = backend.rng()
        return self._rng

    def _lend_rng(self, rng):
        """Let dropout-style layers without a seed of their own draw from the fit's generator."""
        lent = []
        for layer in self._all_layers():
            if hasattr(layer, "_rng") and layer._rng is None and getattr(layer, "seed", None) is None:
                layer._rng = rng
                lent.append(layer)
        return lent

    @staticmethod
    def _return_rng(lent):
        for layer in lent:
            layer._rng = None

    def _all_layers(self):
        out = []
        for layer in self._layers:
            out.append(layer)
            if isinstance(layer, Model):
                out.extend(layer._all_layers())
            else:
                out.extend(getattr(layer, "_layers", ()))
        return out

    # --- evaluate / predict ----------------------------------------------------------------------
    def evaluate(self, x=None, y=None, batch_size=None, verbose=1, sample_weight=None, steps=None,
                 callbacks=None, return_dict=False):
        """The loss (with regularization penalties, as Keras) and metrics on (x, y), averaged
        over samples: the loss alone without metrics, else [loss, *metrics]; a dict with
        return_dict=True."""
        where = "evaluate"
        self._check_compiled(where)
        bs = 32 if batch_size is None else _check_int(where, "batch_size", batch_size, 1)
        if verbose == "auto":
            verbose = 1
        x = self._check_x(x, where)
        y = self._check_y(y, len(x), where)
        sw = self._check_sample_weight(sample_weight, len(x), where)
        out_shape = self._probe(x[:bs], where)
        self._resolve_fused(len(out_shape))
        y = self._check_targets(y, out_shape, where)
        self._prepare_step_state()
        if steps is not None:
            steps = _check_int(where, "steps", steps, 1)
            x, y = x[:steps * bs], y[:steps * bs]
            sw = None if sw is None else sw[:steps * bs]
        logs = self._evaluate_arrays(x, y, sw, bs, verbose=verbose)
        if return_dict:
            return logs
        values = [logs[k] for k in self.metrics_names]
        return values[0] if len(values) == 1 else values

    def _evaluate_arrays(self, x, y, sw, bs, verbose=0):
        from tidu.callbacks.progress import Progbar

        for m in self.compiled_metrics:
            m.reset_state()
        n = len(x)
        steps = math.ceil(n / bs)
        bar = Progbar(steps, verbose=verbose) if verbose else None
        penalty = self._weight_penalty_value()
        loss_sum, seen, logs = 0.0, 0, {}
        for step in range(steps):
            sl = slice(step * bs, min((step + 1) * bs, n))
            xb = x[sl]
            value = self._test_step(xb, y[sl], None if sw is None else sw[sl], penalty)
            loss_sum += value * len(xb)
            seen += len(xb)
            if bar is not None:
                logs = self._logs(loss_sum / seen)
                bar.update(step + 1, logs)
        logs = self._logs(loss_sum / seen)
        if bar is not None:
            bar.finish(logs)
        return logs

    def _logs(self, loss):
        logs = {"loss": loss}
        for m in self.compiled_metrics:
            logs[m.name] = m.result()
        return logs

    def predict(self, x, batch_size=None, verbose=0, steps=None, callbacks=None):
        """The model's outputs for x, batch by batch in inference mode, as one NumPy array."""
        from tidu.callbacks.progress import Progbar

        where = "predict"
        bs = 32 if batch_size is None else _check_int(where, "batch_size", batch_size, 1)
        if verbose == "auto":
            verbose = 0
        x = self._check_x(x, where)
        self._ensure_built(x)
        n = len(x)
        if steps is not None:
            n = min(n, _check_int(where, "steps", steps, 1) * bs)
        nsteps = math.ceil(n / bs)
        bar = Progbar(nsteps, verbose=verbose) if verbose else None
        outs = []
        with no_grad():
            for step in range(nsteps):
                xb = x[step * bs:min((step + 1) * bs, n)]
                outs.append(backend.to_numpy(self._run(Tensor._node(backend.as_array(xb), None), False).data))
                if bar is not None:
                    bar.update(step + 1)
        if bar is not None:
            bar.finish({})
        return np.concatenate(outs, axis=0)

    # --- single batches ------------------------------------------------------------------------
    def _batch_arrays(self, x, y, sample_weight, where):
        x = self._check_x(x, where)
        y = self._check_y(y, len(x), where)
        sw = self._check_sample_weight(sample_weight, len(x), where)
        y = self._check_targets(y, self._probe_cached(x, where), where)
        return x, y, sw

    def _probe_cached(self, x, where):
        """_probe, skipped when the last probe saw the same sample shape and loss."""
        key = (tuple(x.shape[1:]), x.dtype.str, id(self.compiled_loss), len(self._layers))
        if getattr(self, "_probe_key", None) != key:
            out_shape = self._probe(x[:1], where)
            self._resolve_fused(len(out_shape))
            self._probe_key, self._probe_out = key, out_shape
        return self._probe_out

    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, reset_metrics=True,
                       return_dict=False):
        """One optimizer step on one batch; returns the loss, or [loss, *metrics]."""
        where = "train_on_batch"
        self._check_compiled(where)
        x, y, sw = self._batch_arrays(x, y, sample_weight, where)
        sw = self._class_weights(class_weight, y, sw, len(x))
        self._prepare_step_state()
        if reset_metrics:
            for m in self.compiled_metrics:
                m.reset_state()
        lent = self._lend_rng(self._training_rng(None))
        try:
            loss = self._train_step(x, y, sw)
        finally:
            self._return_rng(lent)
        return self._batch_result(loss, return_dict)

    def test_on_batch(self, x, y=None, sample_weight=None, reset_metrics=True, return_dict=False):
        """The loss (and metrics) on one batch, in inference mode."""
        where = "test_on_batch"
        self._check_compiled(where)
        x, y, sw = self._batch_arrays(x, y, sample_weight, where)
        self._prepare_step_state()
        if reset_metrics:
            for m in self.compiled_metrics:
                m.reset_state()
        loss = self._test_step(x, y, sw, self._weight_penalty_value())
        return self._batch_result(loss, return_dict)

    def _batch_result(self, loss, return_dict):
        logs = self._logs(loss)
        if return_dict:
            return logs
        values = [logs[k] for k in self.metrics_names]
        return values[0] if len(values) == 1 else values

    def predict_on_batch(self, x):
        x = self._check_x(x, "predict_on_batch")
        self._ensure_built(x)
        with no_grad():
            return backend.to_numpy(self._run(Tensor(x), False).data)

    # --- for the parameter server --------------------------------------------------------------
    def get_flat_weights(self):
        """A 1-D float32 copy of the trainable weights, in `trainable_weights` order."""
        params = self.trainable_weights
        if not params:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate([backend.to_numpy(p.data).ravel() for p in params]).astype(np.float32)

    def set_flat_weights(self, w):
        """Write a 1-D vector (as from get_flat_weights) into the trainable weights, in place."""
        params = self.trainable_weights
        w = np.asarray(w)
        total = sum(p.size for p in params)
        if w.ndim != 1 or w.size != total:
            raise ValueError(f"set_flat_weights: expected a 1-D vector of {total} values, got shape {w.shape}")
        offset = 0
        for p in params:
            k = p.size
            p.data[...] = backend.as_array(w[offset:offset + k].reshape(p.shape), p.dtype)
            offset += k

    def compute_loss_and_grads(self, x, y, sample_weight=None, training=True):
        """(loss as a float, [gradient array per trainable weight]) on one batch, without
        updating anything (no optimizer step, no metric update)."""
        self._check_compiled("compute_loss_and_grads")
        fast = (isinstance(x, np.ndarray) and x.dtype == np.dtype(backend.floatx())
                and (getattr(self, "_probe_key", None) or (None,))[0] == tuple(x.shape[1:])
                and isinstance(y, np.ndarray) and hasattr(self, "_trainable"))
        if not fast:  # first call, or data not yet in the training format: check it
            x, y, sample_weight = self._batch_arrays(x, y, sample_weight, "compute_loss_and_grads")
            self._prepare_step_state()
        params = self.trainable_weights
        for p in params:
            p.grad = None
        out = self._run(Tensor._node(backend.as_array(x), None), training, self._fused is not None)
        loss = self._total_loss(out, y, sample_weight)
        loss.backward()
        xp = backend.xp
        grads = [p.grad if p.grad is not None else xp.zeros_like(p.data) for p in params]
        for p in params:
            p.grad = None
        return float(loss.data), grads

    # --- weights & files -------------------------------------------------------------------------
    def get_weights(self):
        self._require_built("get_weights")
        return super().get_weights()

    def set_weights(self, weights):
        self._require_built("set_weights")
        super().set_weights(weights)

    def save(self, filepath, overwrite=True):
        """One file (a zip): config.json, model.weights.safetensors, optimizer.safetensors;
        written atomically. Load it with tidu.models.load_model."""
        from tidu import saving
        saving.save_model(self, filepath, overwrite=overwrite)

    def save_weights(self, filepath, overwrite=True):
        from tidu import saving
        saving.save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath, by_name=False):
        """Weights from save_weights' .safetensors file or a model file; matched by position
        (by name with by_name=True); everything is checked before anything is written."""
        from tidu import saving
        saving.load_weights(self, filepath, by_name=by_name)

    # --- config & summary ------------------------------------------------------------------------
    def get_config(self):
        if not self._nodes:
            raise TypeError(f"{type(self).__name__}: a subclassed model has no config to "
                                      f"save; save its weights with save_weights instead")
        from tidu import layers as tl

        index = {id(t): i for i, t in enumerate(self._nodes)}
        nodes = []
        for t in self._nodes:
            inbound = ["input" if s is self._input_tensor else index[id(s)] for s in t.inputs]
            nodes.append({"layer": t.layer.name, "inbound": inbound, "kwargs": dict(t.call_kwargs)})
        return {"name": self.name, "input_shape": list(self._input_tensor.shape[1:]),
                "input_dtype": self._input_tensor.dtype, "input_name": self._input_tensor.name,
                "layers": [_serialize_layer(layer, tl) for layer in self._layers], "nodes": nodes}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        from tidu.layers.input_layer import Input

        layers = {}
        for lc in config["layers"]:
            layer = _deserialize_layer(lc, custom_objects)
            layers[layer.name] = layer
        inp = Input(tuple(config["input_shape"]), dtype=config.get("input_dtype"),
                    name=config.get("input_name"))
        outs = []
        for node in config["nodes"]:
            args = [inp if s == "input" else outs[s] for s in node["inbound"]]
            layer = layers[node["layer"]]
            outs.append(layer(args[0] if len(args) == 1 else args, **node.get("kwargs", {})))
        return cls(inp, outs[-1], name=config.get("name"))

    def summary(self, line_length=None, positions=None, print_fn=None):
        """Print a table of the layers: name (type), output shape, number of weights; then the
        total, trainable and non-trainable counts."""
        self._require_built("summary")
        print_fn = print_fn or print
        line_length = line_length or 65
        positions = positions or [0.45, 0.85, 1.0]
        cols = [int(line_length * p) for p in positions]

        def row(fields):
            line = ""
            for i, field in enumerate(fields):
                if i > 0:
                    line = line[:-1] + " "
                line += (" " if i == 0 else "") + str(field)
                line = line[:cols[i]].ljust(cols[i])
            return line.rstrip()

        print_fn(f'Model: "{self.name}"')
        print_fn("_" * line_length)
        print_fn(row(["Layer (type)", "Output Shape", "Param #"]))
        print_fn("=" * line_length)
        if self._input_tensor is not None:  # functional: the input first, as Keras
            t = self._input_tensor
            print_fn(row([f"{t.name} (InputLayer)", _shape_str(t.shape), "0"]))
            print_fn("")
        for i, layer in enumerate(self._layers):
            shape = self._output_shapes.get(layer.name, "?")
            params = sum(p.size for p in layer.weights) if layer.built else 0
            print_fn(row([f"{layer.name} ({type(layer).__name__})", _shape_str(shape), f"{params:,}"]))
            if i < len(self._layers) - 1:
                print_fn("")
        print_fn("=" * line_length)
        weights = self.weights
        trainable = sum(p.size for p in weights if p.trainable and self.trainable)
        total = sum(p.size for p in weights)
        print_fn(f"Total params: {total:,} ({_bytes(weights, None)})")
        print_fn(f"Trainable params: {trainable:,} ({_bytes(weights, True)})")
        print_fn(f"Non-trainable params: {total - trainable:,} ({_bytes(weights, False)})")
        print_fn("_" * line_length)


def _shape_str(shape):
    if isinstance(shape, tuple):
        return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"
    return str(shape)


def _bytes(weights, trainable):
    n = sum(p.data.nbytes for p in weights if trainable is None or bool(p.trainable) == trainable)
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.2f} {unit}"
        n /= 1024


def _with_layer(layer, e):
    """The exception `e`, its message prefixed with the layer when it does not name it."""
    msg = str(e)
    if layer.name in msg:
        return e
    try:
        new = type(e)(f"{type(layer).__name__} '{layer.name}': {msg}")
    except Exception:  # an exception type with another constructor
        return e
    return new


def _serialize_layer(layer, tl):
    if isinstance(layer, Model):
        from tidu import saving
        return saving.serialize_model(layer)
    return tl.serialize(layer)


def _deserialize_layer(config, custom_objects=None):
    from tidu import layers as tl
    name = config.get("class_name")
    if name in ("Sequential", "Model"):
        from tidu import saving
        return saving.deserialize_model(config, custom_objects)
    if custom_objects and name in custom_objects:
        return custom_objects[name].from_config(dict(config.get("config") or {}))
    return tl.deserialize(config)


class _Sampler:
    """Index batches drawn from an endless stream of passes over n samples (a new permutation
    per pass when shuffling): for steps_per_epoch, where epochs need not align with passes."""

    def __init__(self, n, bs, shuffle, rng):
        self.n, self.bs, self.shuffle, self.rng = n, bs, shuffle, rng
        self.order, self.pos, self.state = None, n, None

    def next(self):
        if self.pos >= self.n:
            self.state = _rng_json(self.rng) if self.shuffle else None  # for checkpoints
            self.order = self.rng.permutation(self.n) if self.shuffle else np.arange(self.n)
            self.pos = 0
        idx = self.order[self.pos:self.pos + self.bs]
        self.pos += self.bs
        return idx


def _rng_json(rng):
    """The generator's state for a checkpoint (None when it is not a PCG64 one)."""
    from tidu.saving.checkpoints import rng_state
    try:
        return rng_state(rng)
    except ValueError:
        return None
