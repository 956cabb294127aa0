"""The loops of fit, evaluate and predict, and the single-batch methods.

fit checks its inputs once, before any weight changes (shapes by running one batch of the
training and of the validation data through the network, NaN/inf, lengths, label ranges); a
fit that fails later leaves the weights of the last completed step. Data is converted to
floatx() (float32) once, at the start.

A step whose loss is not finite (NaN or ±inf) stops fit with tidu.errors.DivergenceError,
naming the epoch and the step (`math.isfinite` of the float loss: free). The loss of step s is
computed at the weights step s starts from, before its update: a first-order optimizer's update
from that non-finite gradient is then not applied, and the model keeps the weights step s
started from, the last ones every earlier step's loss was finite at. A closure method (L-BFGS,
Newton, ...) runs its whole step before the loss is seen: the model holds the weights as that
step left them. A TerminateOnNaN among the callbacks takes over instead (Keras's behaviour: the
update is applied, training stops at the end of the batch, no error; with
restore_best_weights=True the weights from the start of step s are put back, at the cost of a
copy per step).

Checkpoints (tidu.saving.checkpoints): fit keeps a FitState up to date (epoch, step, the
epoch's running sums: counters, no copies) in `model.fit_state`, which ModelCheckpoint records
with the weights, the optimizer state and the generators; fit(resume_from=path) restores all
of it and goes on from that step, so an interrupted run ends bit-identically to an
uninterrupted one.
"""
import math

import numpy as np

from tidu import backend
from tidu._checks import check_int
from tidu.autograd import Tensor, no_grad
from tidu.errors import DivergenceError
from tidu import kernels
from tidu.kernels import halves
from tidu.kernels import sparse
from tidu.layers import Conv1D, Conv2D, Conv2DTranspose, Dense, InputLayer
from tidu.callbacks import CallbackList, History, ProgbarLogger, TerminateOnNaN
from tidu.callbacks.progress import Progbar
from tidu.saving.checkpoints import FitState
from tidu.training import checks as C
from tidu.training import split_predict
from tidu.training.iterator import EpochIterator
from tidu.training.step import HALVES_LAYERS

__all__ = ["compute_loss_and_grads", "evaluate", "fit", "lend_rng", "predict", "predict_on_batch",
           "return_rng", "test_on_batch", "train_on_batch", "training_rng"]


def _check_compiled(model, where, need_optimizer=True):
    if need_optimizer and model.optimizer is None:
        raise RuntimeError(f"{where}: the model must be compiled first; call "
                           f"model.compile(optimizer=..., loss=..., metrics=[...])")
    if model.compiled_loss is None:
        raise RuntimeError(f"{where}: the model has no loss; call model.compile(optimizer=..., "
                           f"loss=..., metrics=[...]) first")
    return model.train_step


def training_rng(model, seed):
    """The generator fit draws from (`model.rng`): a new one for a seed, else the model's own,
    else the package-wide one."""
    if seed is not None:
        model.rng = np.random.default_rng(seed)
    elif model.rng is None:
        model.rng = backend.rng()
    return model.rng


def lend_rng(model, rng):
    """Let dropout-style layers without a seed of their own draw from the fit's generator;
    returns them, for return_rng."""
    lent = []
    for layer in model.all_layers():
        if hasattr(layer, "seed") and layer.seed is None and getattr(layer, "rng", False) is None:
            layer.rng = rng
            lent.append(layer)
    return lent


def return_rng(lent):
    for layer in lent:
        layer.rng = None


def _verbose(where, verbose, auto):
    if verbose == "auto":
        verbose = auto
    if verbose not in (0, 1, 2):
        raise ValueError(f"{where}: expected verbose to be 0, 1 or 2, got {verbose!r}")
    return verbose


def _reset(metrics):
    for m in metrics:
        m.reset_state()


def _logs(model, loss):
    logs = {"loss": loss}
    for m in model.compiled_metrics:
        logs[m.name] = m.result()
    return logs


def _result(model, logs, return_dict):
    if return_dict:
        return logs
    values = [logs[k] for k in model.metrics_names]
    return values[0] if len(values) == 1 else values


# --- fit -----------------------------------------------------------------------------------------
def fit(model, x=None, y=None, batch_size=None, epochs=1, verbose=1, callbacks=None,
        validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
        sample_weight=None, initial_epoch=0, steps_per_epoch=None, curriculum=None,
        augment=None, seed=None, distributed=None, validation_batch_size=None,
        validation_freq=1, resume_from=None):
    """Model.fit (see its docstring); `distributed` is a ParameterServer or None."""
    where = "fit"
    step_fn = _check_compiled(model, where)
    bs = 32 if batch_size is None else check_int(where, "batch_size", batch_size, 1)
    epochs = check_int(where, "epochs", epochs, 0)
    initial_epoch = check_int(where, "initial_epoch", initial_epoch, 0)
    verbose = _verbose(where, verbose, 1)
    validation_split = C.check_fraction(where, "validation_split", validation_split)
    steps_per_epoch = check_int(where, "steps_per_epoch", steps_per_epoch, 1, allow_none=True)
    validation_freq = check_int(where, "validation_freq", validation_freq, 1)
    val_bs = bs if validation_batch_size is None else \
        check_int(where, "validation_batch_size", validation_batch_size, 1)

    x = C.check_x(model, x, where)
    n = len(x)
    if y is None:
        raise ValueError(f"{where}: expected targets y, got None")
    y = C.check_y(y, n, where)
    sw = C.check_sample_weight(sample_weight, n, where)
    scores, pacing = C.check_curriculum(curriculum, n, where)

    val = None
    if validation_data is not None:
        val = C.check_validation_data(model, validation_data, where)
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

    out_shape = step_fn.batch_output_shape(x, where, bs)
    step_fn.resolve(len(out_shape))     # the last layer or the loss may have changed
    y = C.check_targets(y, out_shape, model.compiled_loss, where)
    if val is not None:  # its shapes too are checked before anything trains
        vwhere = where + " (validation data)"
        C.probe(model, val[0][:val_bs], vwhere)
        val = (val[0], C.check_targets(val[1], out_shape, model.compiled_loss, vwhere), val[2])
    sw = C.class_weights(class_weight, y, sw, n)

    ps, resume = distributed, None
    if ps is not None and any(a is not None for a in (sample_weight, class_weight, curriculum, augment,
                                                       steps_per_epoch, resume_from)):
        raise ValueError(f"{where}: sample_weight, class_weight, curriculum, augment, "
                         f"steps_per_epoch and resume_from are not supported with "
                         f"distributed= (the parameter server has checkpoints of its own)")
    if resume_from is not None:  # read and checked before anything changes
        from tidu import saving
        resume = saving.read_checkpoint(resume_from, model)
        resume.check_run(where, n, bs, shuffle, steps_per_epoch, scores is not None)
        initial_epoch = resume.epoch

    step_fn.prepare(n)
    rng = resume.apply(model) if resume is not None else training_rng(model, seed)
    batches = EpochIterator(n, bs, shuffle, rng, steps_per_epoch, scores, pacing, augment)
    names = model.metrics_names
    expected = names + (["val_" + k for k in names] if val is not None else [])
    params = {"epochs": epochs, "steps": batches.steps_of(initial_epoch), "verbose": verbose,
              "samples": n, "batch_size": bs, "metrics": expected if ps is None else None}
    history = History()
    cb_list = list(callbacks or [])
    if verbose:
        cb_list.append(ProgbarLogger())
    cb_list.append(history)
    cbs = CallbackList(cb_list, model=model, params=params)
    model.history = history

    # every check passed: from here on, state changes
    lent = lend_rng(model, rng)
    state = None
    if ps is None:  # what ModelCheckpoint records
        state = FitState(epochs, n, bs, shuffle, steps_per_epoch, scores is not None, callbacks or [])
        state.sampler = batches.sampler
    model.fit_state = state
    model.stop_training = False
    stop_on_nan = not any(isinstance(cb, TerminateOnNaN) for cb in callbacks or [])
    logs = {}
    try:
        cbs.on_train_begin()
        start = None
        if resume is not None:
            resume.restore_history(history)
            resume.restore_callbacks(callbacks or [])
            if batches.sampler is not None:
                resume.restore_sampler(batches.sampler)
            model.stop_training = resume.stopped  # a callback had ended the run: nothing to do
            start = resume
        last = initial_epoch if model.stop_training else epochs
        for epoch in range(initial_epoch, last):
            order = None
            if start is not None and start.step > 0 and shuffle and scores is None \
                    and batches.sampler is None:
                order = start.epoch_order(n)  # the permutation this epoch drew
            params["steps"] = batches.begin(epoch, order)
            if state is not None:
                state.epoch, state.step, state.steps, state.epoch_done = epoch, 0, params["steps"], False
                state.epoch_rng = batches.epoch_rng if order is None else start.progress["epoch_rng"]
            if hasattr(model.optimizer, "on_epoch_begin"):
                model.optimizer.on_epoch_begin(epoch)
            cbs.on_epoch_begin(epoch)
            if ps is not None:
                logs = dict(ps.train_epoch(model, x, y, batch_size=bs, epoch=epoch, rng=rng,
                                           callbacks=cbs, verbose=verbose) or {})
            else:
                logs = _train_epoch(model, step_fn, batches, x, y, sw, cbs, state, start, epoch, stop_on_nan)
            start = None
            if val is not None and (epoch + 1) % validation_freq == 0:
                val_logs = _evaluate_arrays(model, step_fn, *val, val_bs, cbs=cbs)
                logs.update({"val_" + k: v for k, v in val_logs.items()})
            if state is not None:
                state.epoch_done = True
            cbs.on_epoch_end(epoch, logs)
            if model.stop_training:
                break
        cbs.on_train_end(logs)
    except BaseException:
        for cb in cbs:  # close progress bars and files; the exception goes on
            cleanup = getattr(cb, "_cleanup", None)
            if cleanup is not None:
                cleanup()
        raise
    finally:
        model.fit_state = None
        return_rng(lent)
        if ps is not None:
            ps.close(model)
    return history


def _train_epoch(model, step_fn, batches, x, y, sw, cbs, state=None, resume=None, epoch=0,
                 stop_on_nan=True):
    """One epoch of `batches.steps` steps; with `resume`, from the step (and running sums) where
    a checkpoint was written. `state` (a FitState) gets the step count and sums after each step.
    stop_on_nan: a non-finite loss raises DivergenceError (see the module's docstring)."""
    metrics = model.compiled_metrics
    _reset(metrics)
    loss_sum, seen, logs, first = 0.0, 0, {}, 0
    if resume is not None and resume.step > 0:
        first = resume.step
        loss_sum, seen = resume.running_sums()
        resume.restore_metrics(metrics)
        if seen:
            logs = {"loss": loss_sum / seen, **{m.name: m.result() for m in metrics}}
        if state is not None:
            state.step, state.loss_sum, state.seen = first, loss_sum, seen
    for step in range(first, batches.steps):
        xb, yb, swb = batches.batch(step, x, y, sw)
        cbs.on_train_batch_begin(step)
        loss = step_fn(xb, yb, swb, refuse_nonfinite=stop_on_nan)
        if stop_on_nan and not math.isfinite(loss):
            raise _diverged(model, loss, epoch, step)
        nb = len(xb)
        loss_sum += loss * nb
        seen += nb
        if state is not None:
            state.step, state.loss_sum, state.seen = step + 1, loss_sum, seen
        logs = {"loss": loss_sum / seen}
        for m in metrics:
            logs[m.name] = m.result()
        cbs.on_train_batch_end(step, logs)
        if model.stop_training:
            break
    return dict(logs)


def _diverged(model, loss, epoch, step):
    return DivergenceError(
        f"fit: the loss is {loss} at epoch {epoch}, step {step} (both from 0): the weights this "
        f"step started from give a non-finite loss; "
        f"{'its update was applied (a closure method), so the weights may hold NaN' if model.optimizer.requires_closure else 'its update was not applied, so the model keeps them'}. "
        f"Lower the learning rate or clip the gradients "
        f"(clipnorm=...); callbacks=[TerminateOnNaN(restore_best_weights=True)] stops without "
        f"this error and puts back the weights from the start of the step.",
        rule=type(model.optimizer).__name__, epoch=epoch, step=step)


# --- evaluate / predict --------------------------------------------------------------------------
def evaluate(model, x=None, y=None, batch_size=None, verbose=1, sample_weight=None, steps=None,
             callbacks=None, return_dict=False):
    """Model.evaluate (see its docstring)."""
    where = "evaluate"
    step_fn = _check_compiled(model, where, need_optimizer=False)
    bs = 32 if batch_size is None else check_int(where, "batch_size", batch_size, 1)
    verbose = _verbose(where, verbose, 1)
    x = C.check_x(model, x, where)
    y = C.check_y(y, len(x), where)
    sw = C.check_sample_weight(sample_weight, len(x), where)
    if steps is not None:
        steps = check_int(where, "steps", steps, 1)
    nsteps = math.ceil(len(x) / bs) if steps is None else min(steps, math.ceil(len(x) / bs))
    cbs = _hook_list(model, callbacks, verbose, nsteps)
    out_shape = step_fn.batch_output_shape(x, where, bs)
    step_fn.resolve(len(out_shape))     # the last layer or the loss may have changed
    y = C.check_targets(y, out_shape, model.compiled_loss, where)
    step_fn.prepare()
    if steps is not None:
        x, y = x[:steps * bs], y[:steps * bs]
        sw = None if sw is None else sw[:steps * bs]
    return _result(model, _evaluate_arrays(model, step_fn, x, y, sw, bs, verbose, cbs), return_dict)


def _hook_list(model, callbacks, verbose, steps):
    """The CallbackList of evaluate's or predict's `callbacks` (None when there are none), with
    Keras's params for a single pass."""
    if not callbacks:
        return None
    return CallbackList(callbacks, model=model, params={"verbose": verbose, "epochs": 1, "steps": steps})


def _evaluate_arrays(model, step_fn, x, y, sw, bs, verbose=0, cbs=None):
    """One pass over (x, y): the loss and metrics as logs. With `cbs`, the test hooks as Keras
    calls them: on_test_begin, on_test_batch_begin/end around every batch (the end with the
    running loss and metrics), on_test_end with the final logs.
    Where predict would send the batches to the two cores in pairs (_in_pairs), batches 2k and
    2k + 1 are computed at once, one per core (_test_pair), and then their losses and metrics
    taken in order, as one after another; not with a callback that overrides
    on_test_batch_begin (it would run after its batch was computed) nor with activity
    regularizers (their penalties are read off the layers' last forward pass)."""
    _reset(model.compiled_metrics)
    n = len(x)
    steps = math.ceil(n / bs)
    bar = Progbar(steps, verbose=verbose) if verbose else None
    batch_logs = cbs is not None and cbs.overrides("on_test_batch_end")
    if cbs is not None:
        cbs.on_test_begin()
    penalty = step_fn.weight_penalty()
    pairs = not step_fn.activity_layers and \
        (cbs is None or not cbs.overrides("on_test_batch_begin")) and _in_pairs(model, x, bs, steps)
    loss_sum, seen, logs, outs = 0.0, 0, {}, {}
    for step in range(steps):
        if cbs is not None:
            cbs.on_test_batch_begin(step)
        sl = slice(step * bs, min((step + 1) * bs, n))
        xb, yb, swb = x[sl], y[sl], None if sw is None else sw[sl]
        if pairs and step % 2 == 0 and step + 1 < steps:
            outs = _test_pair(step_fn, x, bs, n, step)
        if step in outs:
            value = step_fn.test_output(outs.pop(step), yb, swb, penalty)
        else:
            value = step_fn.test(xb, yb, swb, penalty)
        loss_sum += value * len(xb)
        seen += len(xb)
        if bar is not None or batch_logs:
            logs = _logs(model, loss_sum / seen)
            if bar is not None:
                bar.update(step + 1, logs)
        if cbs is not None:
            cbs.on_test_batch_end(step, dict(logs) if batch_logs else None)
    logs = _logs(model, loss_sum / seen)
    if bar is not None:
        bar.finish(logs)
    if cbs is not None:
        cbs.on_test_end(dict(logs))
    return logs


def predict(model, x, batch_size=None, verbose=0, steps=None, callbacks=None):
    """Model.predict (see its docstring)."""
    where = "predict"
    bs = 32 if batch_size is None else check_int(where, "batch_size", batch_size, 1)
    verbose = _verbose(where, verbose, 0)
    x = C.check_x(model, x, where)
    n = len(x)
    if steps is not None:
        n = min(n, check_int(where, "steps", steps, 1) * bs)
    nsteps = math.ceil(n / bs)
    cbs = _hook_list(model, callbacks, verbose, nsteps)   # as Keras: the batch's outputs in the logs
    model.build_from_data(x)
    bar = Progbar(nsteps, verbose=verbose) if verbose else None
    if cbs is not None:
        cbs.on_predict_begin()
    outs = []
    with no_grad():
        if cbs is None and bar is None and _in_pairs(model, x, bs, nsteps):
            outs = _predict_pairs(model, x, bs, n, nsteps)
        for step in range(len(outs), nsteps):
            if cbs is not None:
                cbs.on_predict_batch_begin(step)
            xb = x[step * bs:min((step + 1) * bs, n)]
            outs.append(_predict_batch(model, xb))
            if bar is not None:
                bar.update(step + 1)
            if cbs is not None:
                cbs.on_predict_batch_end(step, {"outputs": outs[-1]})
    if bar is not None:
        bar.finish({})
    if cbs is not None:
        cbs.on_predict_end()
    return np.concatenate(outs, axis=0)


# Inference splits a batch between the cores from this many rows, in a model with a convolution;
# predict sends such batches to the cores in pairs (_in_pairs)
SPLIT_ROWS = 64


def _in_pairs(model, x, bs, nsteps):
    """Whether predict runs its batches two at a time, one per core (_predict_pairs; evaluate
    too, _test_pair): NumPy arrays, two batches or more of SPLIT_ROWS rows or more, two cores
    with NumPy's BLAS on two threads (tidu.kernels.halves.spans), only layers the training
    step's halves run (tidu.training.step.HALVES_LAYERS: each computes a sample alone, and none
    keeps state at inference), and a model with a convolution, with the fast paths on or off (a
    scheduling of whole batches: each runs the ops it would run alone, its BLAS calls on one
    thread), or, with the fast paths on, a model whose first layer is a Dense taking inputs that
    are mostly zeros (tidu.kernels.sparse: its kernel runs on one core and beats the GEMM only
    there). predict without callbacks or a progress bar only: those see the batches one after
    another (evaluate's conditions: _evaluate_arrays).
    Measured (bench/alternate.py, MNIST's 10,000 test images at batch 256): the LeNet CNN with
    the fast paths 0.352 s against 0.389 one batch after another (`--workload cnn_predict
    --variants tidu[fast],tidu[fast]-nopairs`); on the NumPy path 0.42-0.49 s in every round against
    0.48-0.55 in the host's fast spells and 1.03-1.12 in its slow ones (`--variants
    tidu,tidu-nopairs --rounds 24`: medians 0.442 and 1.031); the 784-512-10 MLP on MNIST's
    pixels (81% zeros) 0.038 s against 0.054 with its GEMMs one batch after another
    (`--workload mlp_predict --variants tidu[fast],tidu[fast]-nosparse`); a Dense-only model on
    dense inputs loses in pairs (1.04-1.05× the time of its two-thread GEMMs one batch after
    another)."""
    if not (backend.xp is np and nsteps >= 2 and bs >= SPLIT_ROWS) or \
            halves.spans(2 * bs) is None:
        return False
    layers = model.all_layers()
    if not all(type(layer) in HALVES_LAYERS for layer in layers):
        return False
    if _has_conv(layers):
        return True
    first = next((layer for layer in layers if not isinstance(layer, InputLayer)), None)
    return kernels.enabled() and isinstance(first, Dense) and type(x) is np.ndarray and \
        sparse.mostly_zeros(x[:bs])


def _has_conv(layers):
    return any(isinstance(layer, (Conv1D, Conv2D, Conv2DTranspose)) for layer in layers)


def _predict_pairs(model, x, bs, n, nsteps):
    """The outputs of predict's batches, each batch whole, the even ones on this core and the
    odd ones on the other, at once (tidu.kernels.halves.run: NumPy's BLAS on one thread for
    each), so that the passes after a batch's GEMMs read what their own core wrote, instead
    of each batch split in two halves (_predict_batch) with a halves.run of its own. Each
    output agrees with the batch computed alone on the BLAS threads to float rounding.
    Measured with `python bench/alternate.py --workload cnn_predict --variants
    tidu[fast],tidu[fast]-nopairs --rounds 20` (the AMD EPYC host of bench/RESULTS.md): the
    LeNet CNN predicting 10,000 images at batch 256 in 0.352 s against 0.389 with each batch's
    halves. Not for a Dense-only model on dense inputs: the MLP 784-512-10 with its GEMMs in
    pairs took 1.04× and 1.05× as long (`--workload mlp_predict --variants
    tidu[fast],tidu[fast]-whole --rounds 30`, two runs, before tidu.kernels.sparse), its
    two-thread GEMMs already being the whole of its work; on inputs that are mostly zeros its
    first layer is the sparse kernel's, one core's work (_in_pairs). The NumPy path (TIDU_FAST=0)
    pairs a conv model's batches too: its batches do not split, and on both BLAS threads they
    are what the host's slow spells slow down twice over (_in_pairs)."""
    outs = [None] * nsteps

    def part(k):
        for step in range(k, nsteps, 2):
            outs[step] = _predict_batch(model, x[step * bs:min((step + 1) * bs, n)])
    halves.run(part)
    return outs


def _test_pair(step_fn, x, bs, n, step):
    """{step: output, step + 1: output} of evaluate's batches `step` and `step + 1` in inference
    mode (step_fn.forward: the pre-activation where the loss is fused), one on each core at
    once, NumPy's BLAS on one thread for each (tidu.kernels.halves.run), as predict's pairs
    (_predict_pairs); each output agrees with its batch's alone to float rounding."""
    def forward(k):
        return step_fn.forward(x[(step + k) * bs:min((step + k + 1) * bs, n)], False)
    with no_grad():
        first, second = halves.run(forward)
    return {step: first, step + 1: second}


def _predict_batch(model, xb):
    """The model's outputs on one batch, as NumPy. With the fast paths on, a batch of
    SPLIT_ROWS or more for a model with a convolution runs as two halves at once, one per core,
    NumPy's BLAS on one thread meanwhile (tidu.kernels.halves): a convolution's single-threaded
    passes (im2col copies, pooling) read what the two-thread GEMM before them left in both
    cores' caches, and a core reading what the other wrote is slow on some hosts. The outputs
    agree with the whole batch's to float rounding, not bit for bit (~4e-8 apart on the
    benchmark's LeNet). Measured (bench/alternate.py, variants tidu and tidu[fast], one process,
    the AMD EPYC host in a slow spell, two runs): the LeNet CNN predicting 10,000 images at
    batch 256 in 0.51-0.55 s against 1.10-1.12 (`--variants tidu[fast],tidu[fast]-whole` in a
    fast spell: 0.498 against 0.530); not for a Dense-only MLP (0.098 against 0.072 s: its GEMMs
    already use both cores, and the halves' Python work takes turns on the GIL) nor for batches
    of 32 (2.3 against 1.9 ms), hence the rule. predict sends a conv model's whole batches to
    the two cores in pairs instead where it can (_in_pairs); a batch in a pair does not split.
    Before all that, a model whose every layer is one tidu.training.split_predict computes
    (LeNet's Conv2D, MaxPooling2D, Flatten, Dense) runs as one compiled call per layer with the
    batch's halves on numba's two threads, which the GIL does not interleave: LeNet's
    predict_on_batch 2.57 ms against 3.53 with the halves above at batch 64, 8.53 against 9.27
    at 256, and 1.50 against 1.84 whole at 32 (`python bench/alternate.py --workload
    cnn_latency --variants "tidu[fast],tidu[fast]-nosplit" --batch B`, AMD EPYC)."""
    def forward(rows):
        return backend.to_numpy(model.forward(Tensor._node(backend.as_array(rows), None),
                                              training=False).data)
    parts = None
    if kernels.enabled() and backend.xp is np and _has_conv(model.all_layers()):
        if type(xb) is np.ndarray:       # each layer one compiled call, its halves at once
            out = split_predict.run(split_predict.plan(model.steps), xb)
            if out is not None:
                return out
        if len(xb) >= SPLIT_ROWS:
            parts = halves.spans(len(xb))
    if parts is None:
        return forward(xb)
    return np.concatenate(halves.run(lambda k: forward(xb[parts[k][0]:parts[k][1]])), axis=0)


# --- single batches ------------------------------------------------------------------------------
def train_on_batch(model, x, y=None, sample_weight=None, class_weight=None, reset_metrics=True,
                   return_dict=False):
    """Model.train_on_batch (see its docstring)."""
    where = "train_on_batch"
    step_fn = _check_compiled(model, where)
    x, y, sw = C.check_batch(model, x, y, sample_weight, where)
    sw = C.class_weights(class_weight, y, sw, len(x))
    step_fn.prepare()
    if reset_metrics:
        _reset(model.compiled_metrics)
    lent = lend_rng(model, training_rng(model, None))
    try:
        loss = step_fn(x, y, sw)
    finally:
        return_rng(lent)
    return _result(model, _logs(model, loss), return_dict)


def test_on_batch(model, x, y=None, sample_weight=None, reset_metrics=True, return_dict=False):
    """Model.test_on_batch (see its docstring)."""
    where = "test_on_batch"
    step_fn = _check_compiled(model, where, need_optimizer=False)
    x, y, sw = C.check_batch(model, x, y, sample_weight, where)
    step_fn.prepare()
    if reset_metrics:
        _reset(model.compiled_metrics)
    loss = step_fn.test(x, y, sw, step_fn.weight_penalty())
    return _result(model, _logs(model, loss), return_dict)


def predict_on_batch(model, x):
    """Model.predict_on_batch (see its docstring)."""
    x = C.check_x(model, x, "predict_on_batch")
    model.build_from_data(x)
    with no_grad():
        return _predict_batch(model, x)


def compute_loss_and_grads(model, x, y, sample_weight=None, training=True):
    """Model.compute_loss_and_grads (see its docstring)."""
    step_fn = _check_compiled(model, "compute_loss_and_grads", need_optimizer=False)
    if not (isinstance(x, np.ndarray) and x.dtype == np.dtype(backend.floatx())
            and step_fn.probed_for(x)
            and isinstance(y, np.ndarray) and step_fn.params):
        # first call, or data not yet in the training format: check it
        x, y, sample_weight = C.check_batch(model, x, y, sample_weight, "compute_loss_and_grads")
        step_fn.prepare()
    return step_fn.loss_and_grads(x, y, sample_weight, training)
