"""Model: a network of layers with Keras' training API.

What a model is lives here: its layers (a functional graph, a Sequential chain, or a
subclass's own `call`), building, the forward pass, compile, weights, saving and the config.
How it trains lives in tidu.training: `fit`, `evaluate`, `predict` and the single-batch
methods delegate to its loops, and compile makes the model's `train_step`
(tidu.training.TrainStep: the loss, its closure and the one optimizer step).
"""
import numbers

import numpy as np

from tidu import backend, losses as L, metrics as M, optimizers, saving
from tidu import distributed as _distributed, export as _export, training as _training
from tidu.autograd import FlatView, Tensor, no_grad
from tidu.errors import NotBuiltError
from tidu.layers import deserialize as _deserialize_registered, serialize as _serialize_registered
from tidu.layers.base import Layer
from tidu.layers.input_layer import Input, SymbolicTensor
from tidu.models import graph, summary as _summary

__all__ = ["Model", "deserialize_layer", "serialize_layer"]

_KERAS_ONLY = ("weighted_metrics", "run_eagerly", "steps_per_execution", "jit_compile")


class Model(Layer):
    """A network of layers with Keras' training API.

    Functional: `Model(inputs, outputs)` with `inputs = Input(shape)` and `outputs` the
    SymbolicTensor got by calling layers on it (one input, one output). Sequential is the
    subclass for a plain stack. A Model is itself a Layer, so it can be nested.

    After compile: `optimizer`, `compiled_loss`, `compiled_metrics`, `loss_weight` and
    `train_step`. `rng` is the generator fit draws from (shuffling, dropout, augmentation);
    `fit_state` is where a running fit is (tidu.saving.checkpoints.FitState), else None.
    """

    def __init__(self, inputs=None, outputs=None, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        self.optimizer = None
        self.compiled_loss = None
        self.compiled_metrics = []
        self.loss_weight = None
        self.train_step = None
        self.history = None
        self.stop_training = False
        self.rng = None
        self.fit_state = None
        self._output_shapes = {}
        self._input_shape = None
        self._nodes, self._steps, self._fusable = [], [], []
        self._input_tensor = self._output_tensor = None
        if inputs is not None or outputs is not None:
            self._init_graph(inputs, outputs)

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
        steps, nodes, layers = graph.trace(inputs, outputs)
        self._nodes, self._layers = nodes, layers
        self._set_steps(steps)
        self._input_tensor, self._output_tensor = inputs, outputs
        self._input_shape = inputs.shape
        self._output_shapes = {t.layer.name: t.shape for t in nodes}
        self.built = True

    def _set_steps(self, steps):
        self._steps, self._fusable = steps, graph.fusable_pairs(steps)

    @property
    def layers(self):
        return list(self._layers)

    def all_layers(self):
        """Every layer inside, depth first, the layers of nested models included."""
        out = []
        for layer in self._layers:
            out.append(layer)
            if isinstance(layer, Model):
                out.extend(layer.all_layers())
            else:
                out.extend(getattr(layer, "_layers", ()))
        return out

    @property
    def input_shape(self):
        return self._input_shape

    @property
    def output_shape(self):
        self._require_built("output_shape")
        return self._output_tensor.shape if self._output_tensor is not None else None

    @property
    def steps(self):
        """The graph the model runs, as a list of `tidu.models.graph.Step(layer, inputs, kwargs)`
        (inputs: indices of earlier steps, −1 for the model's input), in order; None for a
        subclassed model, whose `call` is Python code."""
        return list(self._steps) if self._steps else None

    @property
    def inputs(self):
        """Keras's `model.inputs`: the functional model's input tensors (empty if it has none)."""
        return [self._input_tensor] if self._input_tensor is not None else []

    @property
    def outputs(self):
        """Keras's `model.outputs`: the functional model's output tensors (empty if it has none)."""
        return [self._output_tensor] if self._output_tensor is not None else []

    @property
    def output_layer(self):
        """The layer that makes the output (None for a subclassed model: its call decides)."""
        if self._steps:
            return self._steps[-1].layer
        return None

    @property
    def takes_integer_input(self):
        """Whether the first layer reads integer ids (Embedding), so data stays integer."""
        first = self._layers[0] if self._layers else None
        return bool(first is not None and first.accepts_integer_input)

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
        out = [*self._params, *(p for layer in self._layers for p in layer.weights)]
        return list({id(p): p for p in out}.values())

    @property
    def losses(self):
        """Activity-regularization losses of the last forward pass (0-d Tensors)."""
        return [l for layer in self._layers for l in getattr(layer, "losses", ())]

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
        if self._steps:
            return
        if type(self).call is Model.call:
            raise TypeError(f"{type(self).__name__}: a Model needs inputs and outputs "
                            f"(functional), layers (Sequential) or a call method (subclass)")
        self._input_shape = (None, *tuple(input_shape)[1:])
        shape = tuple(1 if d is None else d for d in input_shape)
        with no_grad():
            self.call(Tensor(np.zeros(shape, dtype=self.dtype or backend.floatx())), training=False)
        self.built = True

    def build_from_data(self, x):
        """Build from a data array's shape (a Sequential without input_shape), if not built."""
        if not self.built:
            self.build((None, *np.shape(x)[1:]))
            self.built = True

    def compute_output_shape(self, input_shape):
        if self._output_tensor is not None:
            return (input_shape[0], *self._output_tensor.shape[1:])
        return super().compute_output_shape(input_shape)

    # --- forward -----------------------------------------------------------------------------
    def call(self, inputs, training=False):
        if not self._steps:
            raise TypeError(f"{type(self).__name__}: a subclassed Model must define call")
        return graph.run(self._steps, inputs, training, False, self._fusable)

    def forward(self, x, training=False, logits=False):
        """The network's output for a Tensor x; with logits=True, the output layer's
        pre-activation (for the fused losses; a subclassed model has none: its call's output)."""
        if not self._steps:
            if type(self).call is Model.call:
                raise ValueError(f"{type(self).__name__} '{self.name}': the model has no layers")
            return self.call(x, training=training)
        return graph.run(self._steps, x, training, logits, self._fusable)

    def __call__(self, inputs, training=False, **kwargs):
        if isinstance(inputs, np.ndarray) and inputs.dtype.kind in "fiu" and not self.takes_integer_input:
            inputs = inputs.astype(backend.floatx(), copy=False)  # model(x) as fit sees x
        return super().__call__(inputs, training=training, **kwargs)

    # --- compile -------------------------------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, loss_weights=None, **kwargs):
        """Choose the optimizer, loss and metrics: names ('rmsprop', 'categorical_crossentropy',
        'accuracy'), configs or objects. Unknown names raise ValueError listing the allowed ones.
        Every optimizer of tidu.optimizers trains in fit, closure methods (Newton, BFGS, L-BFGS,
        coordinate descent) included: see tidu.training.step."""
        for k in _KERAS_ONLY:
            kwargs.pop(k, None)  # Keras options without meaning here
        if kwargs:
            raise TypeError(f"compile: unexpected keyword argument(s) {', '.join(sorted(kwargs))}")
        opt = optimizers.get(optimizer)
        loss_obj = L.get(loss) if loss is not None else None
        if isinstance(loss_weights, (list, tuple, dict)):
            values = list(loss_weights.values() if isinstance(loss_weights, dict) else loss_weights)
            if len(values) != 1:
                raise ValueError(f"compile: one output, so expected one loss weight, got {loss_weights!r}")
            loss_weights = values[0]
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
        self.train_step = _training.TrainStep(self)

    @property
    def metrics(self):
        return list(self.compiled_metrics)

    @property
    def metrics_names(self):
        return ["loss", *(m.name for m in self.compiled_metrics)]

    # --- training: tidu.training --------------------------------------------------------------
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
        A non-finite loss (NaN or ±inf) stops fit with tidu.errors.DivergenceError (`.epoch`,
        `.step`, both from 0). Keras goes on instead; here the default is to stop. The loss of a
        step is computed at the weights it starts from, before its update: a first-order
        optimizer's update is then not applied and the model keeps those weights; a closure
        method (L-BFGS, Newton, ...) has run its step, and the weights may hold NaN.
        Opt out with callbacks=[TerminateOnNaN()]: it then decides (Keras's behaviour, stop at the
        end of the batch, no error); restore_best_weights=True puts back the weights from the
        start of the step (a copy per step). With `distributed`, the server stops with the same
        error before it applies a non-finite update (`.rule`, `.update`, `.worker`,
        `.staleness`), and the model keeps the weights of the last finite update.
        Each step runs `self.train_step` (tidu.training.TrainStep): closure methods such as
        L-BFGS re-evaluate the batch's loss inside it; with batch_size=len(x) that is the
        notes' full-batch method.
        """
        ps = None if distributed is None else _distributed.get(distributed)
        return _training.fit(self, x, y, batch_size, epochs, verbose, callbacks, validation_split,
                            validation_data, shuffle, class_weight, sample_weight, initial_epoch,
                            steps_per_epoch, curriculum, augment, seed, ps, validation_batch_size,
                            validation_freq, resume_from)

    def evaluate(self, x=None, y=None, batch_size=None, verbose=1, sample_weight=None, steps=None,
                 callbacks=None, return_dict=False):
        """The loss (with regularization penalties, as Keras) and metrics on (x, y), averaged
        over samples: the loss alone without metrics, else [loss, *metrics]; a dict with
        return_dict=True. `callbacks` get on_test_begin, on_test_batch_begin/end (with the running
        loss and metrics) and on_test_end, as in Keras; fit calls them on its own callbacks for
        each validation pass."""
        return _training.evaluate(self, x, y, batch_size, verbose, sample_weight, steps, callbacks,
                                 return_dict)

    def predict(self, x, batch_size=None, verbose=0, steps=None, callbacks=None):
        """The model's outputs for x, batch by batch in inference mode, as one NumPy array.
        `callbacks` get on_predict_begin, on_predict_batch_begin/end (logs {'outputs': the
        batch's outputs}) and on_predict_end, as in Keras."""
        return _training.predict(self, x, batch_size, verbose, steps, callbacks)

    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, reset_metrics=True,
                       return_dict=False):
        """One optimizer step on one batch; returns the loss, or [loss, *metrics]."""
        return _training.train_on_batch(self, x, y, sample_weight, class_weight, reset_metrics,
                                       return_dict)

    def test_on_batch(self, x, y=None, sample_weight=None, reset_metrics=True, return_dict=False):
        """The loss (and metrics) on one batch, in inference mode."""
        return _training.test_on_batch(self, x, y, sample_weight, reset_metrics, return_dict)

    def predict_on_batch(self, x):
        return _training.predict_on_batch(self, x)

    def compute_loss_and_grads(self, x, y, sample_weight=None, training=True):
        """(loss as a float, [gradient array per trainable weight]) on one batch, without
        updating anything (no optimizer step, no metric update)."""
        return _training.compute_loss_and_grads(self, x, y, sample_weight, training)

    # --- weights & files -------------------------------------------------------------------------
    def get_flat_weights(self):
        """A 1-D float32 copy of the trainable weights, in `trainable_weights` order."""
        return backend.to_numpy(FlatView(self.trainable_weights).get(dtype=np.float32))

    def set_flat_weights(self, w):
        """Write a 1-D vector (as from get_flat_weights) into the trainable weights, in place."""
        view = FlatView(self.trainable_weights)
        w = np.asarray(w)
        if w.ndim != 1 or w.size != view.size:
            raise ValueError(f"set_flat_weights: expected a 1-D vector of {view.size} values, "
                             f"got shape {w.shape}")
        view.set(backend.as_array(w))

    def get_weights(self):
        self._require_built("get_weights")
        return super().get_weights()

    def set_weights(self, weights):
        self._require_built("set_weights")
        super().set_weights(weights)

    def save(self, filepath, overwrite=True):
        """One file (a zip): config.json, model.weights.safetensors, optimizer.safetensors;
        written atomically. Load it with tidu.models.load_model. A path ending in .keras
        gets Keras 3's format instead (tidu.saving.keras_writer), which keras.models.load_model
        reads; it needs h5py (pip install tidu[keras])."""
        saving.save_model(self, filepath, overwrite=overwrite)

    def export(self, filepath, format="onnx", verbose=None, **kwargs):
        """Write the model for inference in another format: format="onnx" (the one supported;
        needs pip install tidu[onnx]) writes an ONNX file, atomically, or raises naming the
        layers it cannot convert before writing anything. kwargs: opset_version (default 18).
        See tidu.export."""
        return _export.export(self, filepath, format=format, verbose=verbose, **kwargs)

    def save_weights(self, filepath, overwrite=True):
        saving.save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath, by_name=False):
        """Weights from save_weights' .safetensors file or a model file; matched by position
        (by name with by_name=True); everything is checked before anything is written."""
        saving.load_weights(self, filepath, by_name=by_name)

    # --- config & summary ------------------------------------------------------------------------
    def get_config(self):
        if not self._nodes:
            raise TypeError(f"{type(self).__name__}: a subclassed model has no config to "
                            f"save; save its weights with save_weights instead")
        nodes = [{"layer": s.layer.name, "inbound": ["input" if i < 0 else i for i in s.inputs],
                  "kwargs": dict(s.kwargs)} for s in self._steps]
        return {"name": self.name, "input_shape": list(self._input_tensor.shape[1:]),
                "input_dtype": self._input_tensor.dtype, "input_name": self._input_tensor.name,
                "layers": [serialize_layer(layer) for layer in self._layers], "nodes": nodes}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        layers = {}
        for lc in config["layers"]:
            layer = deserialize_layer(lc, custom_objects)
            layers[layer.name] = layer
        inp = Input(tuple(config["input_shape"]), dtype=config.get("input_dtype"),
                    name=config.get("input_name"))
        outs = []
        for node in config["nodes"]:
            args = [inp if s == "input" else outs[s] for s in node["inbound"]]
            layer = layers[node["layer"]]
            outs.append(layer(layer.call_arguments(args), **node.get("kwargs", {})))
        return cls(inp, outs[-1], name=config.get("name"))

    def summary(self, line_length=None, positions=None, print_fn=None):
        """Print a table of the layers: name (type), output shape, number of weights; then the
        total, trainable and non-trainable counts."""
        self._require_built("summary")
        rows = [(layer, self._output_shapes.get(layer.name, "?")) for layer in self._layers]
        _summary.print_summary(self.name, self._input_tensor, rows, self.weights, self.trainable,
                               line_length, positions, print_fn)


def serialize_layer(layer):
    """A layer's saved form; a nested model's through tidu.saving."""
    if isinstance(layer, Model):
        return saving.serialize_model(layer)
    return _serialize_registered(layer)


def deserialize_layer(config, custom_objects=None):
    """A layer from its saved form (a nested Sequential or Model through tidu.saving)."""
    name = config.get("class_name")
    if name in ("Sequential", "Model"):
        return saving.deserialize_model(config, custom_objects)
    if custom_objects and name in custom_objects:
        return custom_objects[name].from_config(dict(config.get("config") or {}))
    return _deserialize_registered(config)

