"""The loss a compiled model minimizes, and the one training step every trainer uses.

On a batch (x, y) of n samples with sample weights s:

    z = pre-activation of the last layer,  a = activation(z)     forward
    C = w·loss(y, a; s) + Σ_θ penalty(θ) + Σ activity penalties   w = compile's loss_weights
    ∂C/∂θ for every trainable weight θ                           one backward sweep
    θ ← optimizer(θ, ∂C/∂θ)                                      one update

When the last layer's activation is softmax and the loss categorical (or sparse categorical)
cross-entropy on probabilities, C is computed by the fused `softmax_cross_entropy(z, y)`: the
same number, computed stably from z, with the output-layer error δ = (a − y)/n of the notes
(no division by a, no softmax Jacobian); likewise sigmoid + binary cross-entropy. The metrics
read a (computed from z once), so nothing is forwarded twice; with softmax they read the fused
loss's own a (the same bits as softmax(z)) instead of computing softmax again.

The step hands the optimizer a closure that re-evaluates C and ∂C/∂θ on the current batch
(torch's convention: zero the gradients, forward, backward, return C). A first-order method
(SGD ... Adam) calls it once and applies the gradients; a method that needs more (Newton,
BFGS, L-BFGS, coordinate descent, any line search) calls it as often as it needs through
`optimizer.step(closure)`. So every optimizer trains inside fit, and fit, train_on_batch,
the parameter-server workers, gradcheck_model and the tuning tools all run this one step.

The batch's two halves on the two cores (the extra `fast`, tidu.kernels.halves). For a
model with a convolution or an LSTM, a first-order optimizer, a mean-reduced loss, a batch of
SPLIT_ROWS or more and layers that compute each sample alone and keep no state in training
(HALVES_LAYERS: Dense, convolutions, pooling, reshapes, activations, recurrent layers, unseeded
Dropout; no BatchNormalization, no activity regularizer), a step runs the forward and backward
of rows [0, m) and [m, n) at once, each on its own core with NumPy's BLAS on one thread, each
half's sweep seeded with its share n_h/n of the mean:

    C = Σ_h (n_h/n)·C_h,   ∂C/∂θ = Σ_h (n_h/n)·∂C_h/∂θ,   the metrics on the two outputs joined

then one update: where the optimizer runs a compiled elementwise kernel (SGD with momentum,
RMSprop, Adam; Optimizer.update_in_two), each half's thread, once both have their gradients, updates
its half of the flat parameter vector from their sum (the same bits as adding them here and one
apply_gradients). On the LeNet CNN that takes the update's 0.65 ms a step (the adds 0.25,
apply_gradients 0.40) to 0.34 (the longer share; an instrumented fit, one-off script); whole
steps alternated in one process show no difference through this host's noise (`python
bench/alternate.py --workload cnn --variants tidu[fast],tidu[fast]-oneupdate --rounds 24
--steps 30`: 11.97 against 12.03 ms). Each row's forward is the whole batch's, bit for bit; C
and ∂C/∂θ sum the same terms in another order (float rounding apart), and each half's Dropout
masks come from a generator of its own, seeded from the fit's (the same distribution, other
draws). The rule depends on the model, the batch and the machine, never on timings, so a seeded
fit repeats bit for bit on the same machine. Why: a single-threaded pass (im2col copy, pooling)
after a two-thread GEMM reads half its input from the other core's cache, which on some hosts is
slow for minutes at a time; two halves keep each core on the rows it wrote, and with BLAS on one
thread throughout, OpenBLAS's worker never spins. Measured on the AMD EPYC host of
bench/RESULTS.md (2 vCPUs, AVX-512): the LeNet CNN's forward and backward at batch 64 (a
one-off script, 400 calls in each of two processes a spell), two halves on one BLAS thread
8.75 and 9.73 ms (medians), the whole batch on two 9.81 and 14.84 ms; whole fit steps, the
two ways alternated in one process (bench/alternate.py, variants tidu[fast] and tidu[fast]-whole):
keras.io's MNIST convnet 23.2 against 24.7 ms a step (12 rounds of 20 steps), the LeNet CNN
12.3 against 12.5 (12 rounds of 30 steps: the halves 11.5-13.6 ms a turn, the whole batch
10.9-16.0, faster in the fast spells and far slower in the slow ones). The LSTM(128)
benchmark, whose LSTM op already splits the batch by itself (tidu.functional.recurrent_lstm),
split here instead: 16.8 against 20.2 ms a step (`--workload lstm --variants
tidu[fast],tidu[fast]-wholestep --rounds 10 --steps 30`; in a one-off script that alternated
the two, 14.8-15.6 against 14.9-15.6 ms in a fast spell, 15.3-16.3 against 17.6-19.7 in a
slow one). A GRU(128)'s step gained nothing there (13.0-13.5 against 12.4-13.4 ms), so
recurrent models other than the LSTM stay whole.
"""
import math
import threading

import numpy as np

import tidu.functional as F
from tidu import backend, kernels, layers as _layers, losses as L
from tidu.autograd import Tensor, no_grad
from tidu.autograd.function import backward as _sweep
from tidu.kernels import halves
from tidu.kernels.memory import keep_freed_memory
from tidu.layers import core as _core
from tidu.training import checks

__all__ = ["TrainStep"]

# Layers whose training forward computes each sample alone and changes nothing: a step may run
# a batch's two halves through them at once (exact types: a subclass may keep state).
HALVES_LAYERS = tuple(getattr(_layers, name) for name in (
    "InputLayer", "Dense", "Conv1D", "Conv2D", "Conv2DTranspose", "MaxPooling1D", "MaxPooling2D",
    "AveragePooling1D", "AveragePooling2D", "L2Pooling2D", "GlobalAveragePooling1D",
    "GlobalMaxPooling1D", "GlobalAveragePooling2D", "GlobalMaxPooling2D", "Flatten", "Reshape",
    "Activation", "Identity", "ReLU", "LeakyReLU", "ELU", "Softmax", "Embedding", "LSTM", "GRU",
    "SimpleRNN", "Dropout", "Rescaling", "Permute", "RepeatVector", "UpSampling2D",
    "ZeroPadding2D", "Cropping2D", "Add", "Subtract", "Multiply", "Average", "Maximum",
    "Minimum", "Concatenate"))
MEAN_REDUCTIONS = ("sum_over_batch_size", "mean")
SPLIT_ROWS = 64                      # smaller batches run whole
_SPLIT_FOR = (_layers.Conv1D, _layers.Conv2D, _layers.Conv2DTranspose, _layers.LSTM)

_FUSED = {("softmax", L.CategoricalCrossentropy): "softmax",
          ("softmax", L.SparseCategoricalCrossentropy): "sparse_softmax",
          ("sigmoid", L.BinaryCrossentropy): "sigmoid"}


class TrainStep:
    """A compiled model's loss C(θ; batch), its closure, and one optimizer step.

    fused: which fused loss C uses ('softmax', 'sparse_softmax', 'sigmoid' or None), chosen by
    `resolve(out_ndim)` once the output's rank is known. `prepare(n)` fixes the lists a step
    reads (trainable weights, regularized weights, layers with activity penalties) at the start
    of a fit (n: the training-set size, for the notes' λ/2n penalties).
    """

    def __init__(self, model):
        keep_freed_memory()     # a step's freed arrays serve the next step, no page faults
        self.model = model
        self.fused = None
        self.params, self.reg_params, self.activity_layers = [], [], []
        self._probed = self._out_shape = None       # batch_output_shape's (input key, output shape)
        # halves: None for the rule (module docstring); True or False forces one way (where the
        # step may split at all: splittable())
        self.halves = None

    # --- set-up ---------------------------------------------------------------------------------
    def probe(self, x, where):
        """Run x through the network (checks.probe: builds a lazy model, a wrong input shape fails
        here), choose the fused loss for its output; returns the output shape."""
        shape = checks.probe(self.model, x, where)
        self.resolve(len(shape))
        return shape

    def batch_output_shape(self, x, where, rows=1):
        """probe on x[:rows], remembered per input shape, dtype, loss and number of layers: the
        single-batch methods ask it every batch (one sample), fit and evaluate every call (a
        batch: a wrong shape's error names the batch's shape, as before they remembered it;
        they choose the fused loss afresh each call too, `resolve`). Before fit and evaluate
        remembered it, each call probed a whole batch: one more forward pass a call (the LeNet
        CNN at batch 64: ~4.4 ms, ~0.1 ms a step of the 40-step fits bench/run.py times)."""
        model = self.model
        key = (tuple(x.shape[1:]), x.dtype.str, id(model.compiled_loss), len(model.layers))
        if self._probed != key:
            self._probed, self._out_shape = key, self.probe(x[:rows], where)
        return self._out_shape

    def probed_for(self, x):
        """Whether batch_output_shape has seen inputs shaped like x."""
        return self._probed is not None and self._probed[0] == tuple(x.shape[1:])

    def forget_probe(self):
        """The layers changed (Sequential.add/pop): probe again next time."""
        self._probed = None

    def resolve(self, out_ndim):
        """Choose the fused loss for an output of rank `out_ndim`; returns it (or None)."""
        model, self.fused = self.model, None
        last = model.output_layer
        loss = model.compiled_loss
        if (last is None or not hasattr(last, "pre_activation")
                or getattr(last, "activity_regularizer", None) is not None
                or getattr(loss, "from_logits", True) or out_ndim != 2
                or getattr(loss, "reduction", None) not in ("sum_over_batch_size", "mean")):
            return None
        self.fused = _FUSED.get((getattr(last, "activation_name", None), type(loss)))
        return self.fused

    def prepare(self, n_train=None):
        """The lists a step reads; with n_train, tell regularizers the training-set size."""
        model = self.model
        self.params = model.trainable_weights
        self.reg_params = [p for p in self.params if getattr(p, "regularizer", None) is not None]
        self.activity_layers = [l for l in model.layers
                                if getattr(l, "activity_regularizer", None) is not None]
        if n_train:
            for p in self.reg_params:
                set_size = getattr(p.regularizer, "set_training_size", None)
                if set_size is not None:
                    set_size(int(n_train))

    # --- the loss -------------------------------------------------------------------------------
    def forward(self, x, training):
        """The network's output for array x: z (pre-activation) when fused, else a."""
        return self.model.forward(Tensor._node(backend.as_array(x), None), training=training,
                                  logits=self.fused is not None)

    def data_loss(self, out, y, sw, probabilities=None):
        """w·loss(y, a; s), from z when fused. `probabilities` (a list) gets a where the fused
        loss computes it (softmax), for the metrics."""
        fused = self.fused
        if fused == "softmax":
            loss = F.softmax_cross_entropy(out, y, sample_weight=sw, probabilities=probabilities)
        elif fused == "sparse_softmax":
            loss = F.sparse_softmax_cross_entropy(out, y, sample_weight=sw,
                                                  probabilities=probabilities)
        elif fused == "sigmoid":
            loss = F.sigmoid_binary_cross_entropy(out, y, sample_weight=sw)
        else:
            loss = self.model.compiled_loss(y, out, sw)
            if loss.ndim:       # reduction='none': the mean of the values, as Keras' compile does
                loss = F.mean(loss)
        w = self.model.loss_weight
        return loss if w is None else loss * w

    def penalty(self):
        """Σ_θ penalty(θ) + the activity penalties of the last forward pass (a Tensor, or None)."""
        total = None
        for p in self.reg_params:
            r = p.regularizer(p)
            total = r if total is None else total + r
        for layer in self.activity_layers:
            for r in layer.losses:
                total = r if total is None else total + r
        return total

    def loss(self, x, y, sw=None, training=True, probabilities=None):
        """(C as a 0-d Tensor with its graph, the output): the forward pass and the loss
        (`probabilities`: as for data_loss)."""
        out = self.forward(x, training)
        loss = self.data_loss(out, y, sw, probabilities)
        if self.reg_params or self.activity_layers:
            penalty = self.penalty()
            if penalty is not None:
                loss = loss + penalty
        return loss, out

    def closure(self, x, y, sw=None, training=True):
        """A closure for `optimizer.step`: zero the gradients, C and ∂C/∂θ at the current θ
        (in each parameter's .grad), return C. `closure.outputs` holds the first call's output
        (at the starting point, what the metrics read) and `closure.predictions` its a where
        the fused loss computed it."""
        params, outputs, predictions = self.params, [], []

        def closure():
            for p in params:
                p.grad = None
            loss, out = self.loss(x, y, sw, training, None if outputs else predictions)
            loss.backward()
            if not outputs:
                outputs.append(out)
            return loss

        closure.outputs, closure.predictions = outputs, predictions
        return closure

    def loss_and_grads(self, x, y, sw=None, training=True):
        """(C as a float, [∂C/∂θ per trainable weight]) at the current θ; nothing updated."""
        closure = self.closure(x, y, sw, training)
        loss = closure()
        xp = backend.xp
        grads = [p.grad if p.grad is not None else xp.zeros_like(p.data) for p in self.params]
        for p in self.params:
            p.grad = None
        return float(loss.data), grads

    # --- one step ---------------------------------------------------------------------------------
    def splittable(self):
        """Whether a step may run the batch's two halves at once (module docstring): the fast
        paths on, NumPy arrays, a first-order optimizer, a mean-reduced loss and only
        HALVES_LAYERS, none with an activity regularizer, every Dropout unseeded and with no
        fixed batch size in its noise_shape."""
        model = self.model
        loss = model.compiled_loss
        if not (kernels.enabled() and backend.xp is np) or model.optimizer.requires_closure \
                or not getattr(model, "_steps", None) or self.activity_layers:
            return False
        if self.fused is None and getattr(loss, "reduction", None) not in MEAN_REDUCTIONS:
            return False
        for layer in model.all_layers():
            if type(layer) not in HALVES_LAYERS or \
                    getattr(layer, "activity_regularizer", None) is not None:
                return False
            if type(layer) is _layers.Dropout and (layer.seed is not None or (
                    layer.noise_shape is not None and layer.noise_shape[0] is not None)):
                return False
        return True

    def _spans(self, x):
        """The batch's two halves when this step splits it (module docstring), else None."""
        if self.halves is False or (self.halves is None and len(x) < SPLIT_ROWS):
            return None
        if not self.splittable() or (self.halves is None and not any(
                isinstance(layer, _SPLIT_FOR) for layer in self.model.all_layers())):
            return None
        return halves.spans(len(x))

    def _halves_step(self, x, y, sw, parts, refuse_nonfinite):
        """(C, the output) of the batch from its two halves at once, and the update (module
        docstring): each half's sweep seeded with n_h/n, its gradients kept apart from the
        weights' .grad; each half's dropout masks from a generator of its own. Where the
        optimizer offers it (Optimizer.update_in_two), each half's thread then adds the two
        halves' gradients and updates its share of the weights, once both have their
        gradients; else the gradients are added here and apply_gradients updates."""
        n = len(x)
        drops = [layer for layer in self.model.all_layers() if type(layer) is _layers.Dropout]
        source = next((l.rng for l in drops if l.rng is not None), None) or backend.rng()
        gens = [backend.rng(int(s)) for s in source.integers(2 ** 63, size=2)] if drops else None
        opt, params = self.model.optimizer, self.params
        plan = opt.update_in_two(params)
        met = threading.Barrier(2) if plan is not None else None
        done = [None, None]                  # each half's (C share, gradients)
        probs = [[], []]                     # each half's a, where the fused loss computes it

        def half(k):
            a, b = parts[k]
            if gens:
                _core.half_rng.rng = gens[k]
            try:
                loss, out = self.loss(x[a:b], y[a:b], None if sw is None else sw[a:b],
                                      probabilities=probs[k])
                grads = {}
                _sweep(loss, np.asarray((b - a) / n, dtype=loss.data.dtype), into=grads)
            except BaseException:
                if met is not None:
                    met.abort()              # the other half stops waiting
                raise
            finally:
                _core.half_rng.rng = None
            done[k] = (float(loss.data) * (b - a) / n, grads)
            if met is not None:
                try:
                    met.wait()
                except threading.BrokenBarrierError:
                    return None              # the other half failed: it raises, nothing updates
                if _keep(done[0][0] + done[1][0], refuse_nonfinite):
                    plan.run(k, *[[g.get(id(p)) for p in params] for _, g in done])
            return out

        out0, out1 = halves.run(half)
        value = done[0][0] + done[1][0]
        if _keep(value, refuse_nonfinite):
            if plan is not None:
                plan.finish()
            else:
                g0, g1 = done[0][1], done[1][1]
                grads = []
                for p in params:
                    a, b = g0.get(id(p)), g1.get(id(p))
                    grads.append(np.zeros_like(p.data) if a is None and b is None else
                                 a if b is None else b if a is None else a + b)
                opt.apply_gradients(list(zip(grads, params)))
        y_pred = np.concatenate([probs[0][0], probs[1][0]]) if probs[0] and probs[1] else None
        return value, Tensor._node(np.concatenate([out0.data, out1.data]), None), y_pred

    def __call__(self, x, y, sw=None, refuse_nonfinite=False):
        """One optimizer step on the batch; the metrics see the output at the starting point.
        Returns C at the starting point. With refuse_nonfinite, a first-order step whose C is
        NaN or ±inf is not applied (θ stays as it was: the caller sees the loss and stops); a
        closure method decides inside its own step. With the fast paths, the forward and
        backward may run as the batch's two halves at once (module docstring)."""
        parts = self._spans(x)
        if parts is None:
            return self._whole(x, y, sw, refuse_nonfinite)
        value, out, y_pred = self._halves_step(x, y, sw, parts, refuse_nonfinite)
        self.update_metrics(y, out, sw, y_pred)
        return float(value)

    def _whole(self, x, y, sw, refuse_nonfinite):
        """__call__ on the whole batch at once."""
        params, opt = self.params, self.model.optimizer
        closure = self.closure(x, y, sw)
        if opt.requires_closure:
            value = opt.step(closure, params=params)
        else:
            value = float(closure().data)
            if _keep(value, refuse_nonfinite):
                xp = backend.xp
                opt.apply_gradients([(p.grad if p.grad is not None else xp.zeros_like(p.data), p)
                                     for p in params])
        for p in params:
            p.grad = None
        predictions = getattr(closure, "predictions", None)     # a wrapper may not pass them on
        self.update_metrics(y, closure.outputs[0], sw, predictions[0] if predictions else None)
        return float(value)

    def test(self, x, y, sw=None, penalty=0.0):
        """C on the batch in inference mode (`penalty`: the weight penalties, computed once)."""
        with no_grad():
            out = self.forward(x, False)
        return self.test_output(out, y, sw, penalty)

    def test_output(self, out, y, sw=None, penalty=0.0):
        """test's C from `out`, the batch's output as forward(x, False) gave it, and the
        metrics updated with it; the activity penalties are read off the layers' last forward
        pass, so `out` must come from that pass when there are any."""
        probs = []
        with no_grad():
            value = float(self.data_loss(out, y, sw, probs).data)
            for layer in self.activity_layers:
                for r in layer.losses:
                    value += float(r.data)
        self.update_metrics(y, out, sw, probs[0] if probs else None)
        return value + penalty

    def weight_penalty(self):
        """Σ_θ penalty(θ) as a float (0.0 without regularizers)."""
        if not self.reg_params:
            return 0.0
        with no_grad():
            return float(sum(float(p.regularizer(p).data) for p in self.reg_params))

    def predictions(self, out):
        """a as an array: the last layer's activation applied to z when fused."""
        if self.fused is None:
            return out.data
        with no_grad():
            return self.model.output_layer.activation(out).data

    def update_metrics(self, y, out, sw, y_pred=None):
        """The compiled metrics updated with the batch's targets and a (`y_pred`, else computed
        from `out` by predictions)."""
        metrics = self.model.compiled_metrics
        if metrics:
            if y_pred is None:
                y_pred = self.predictions(out)
            for m in metrics:
                m.update_state(y, y_pred, sw)


def _keep(value, refuse_nonfinite):
    """Whether a first-order step with loss `value` is applied (see TrainStep.__call__)."""
    return not (refuse_nonfinite and not math.isfinite(value))
