"""Callbacks: code `Model.fit` runs at the start and end of training, epochs and batches.

The hooks and their arguments are Keras' (on_train_begin(logs), on_epoch_begin(epoch, logs),
on_train_batch_begin(batch, logs), on_train_batch_end(batch, logs), on_epoch_end(epoch, logs),
on_train_end(logs), plus on_test_*/on_predict_* for evaluate and predict); `self.model` and
`self.params` ({'epochs', 'steps', 'verbose', 'metrics'}) are set before training starts.
`logs` at epoch end holds 'loss', each metric, and 'val_'-prefixed values when there is
validation data; batch logs hold the running epoch averages. Setting `model.stop_training = True`
ends training after the current batch or epoch.

The training craft of the notes is here: EarlyStopping (stop when the validation loss has not
improved for `patience` epochs), ReduceLROnPlateau(factor=0.5, patience=10) ("halve the
learning rate after 10 epochs without improvement"), and LossExplosion (a loss that grows
several-fold is the sign that the learning rate is too high).
"""
import csv
import math
import os
import sys

import numpy as np

__all__ = ["Callback", "CallbackList", "History", "ProgbarLogger", "EarlyStopping",
           "ReduceLROnPlateau", "LearningRateScheduler", "ModelCheckpoint", "CSVLogger",
           "TerminateOnNaN", "LossExplosion", "LambdaCallback"]


class Callback:
    """Base class: override the hooks you need; each gets the current logs dict."""

    def __init__(self):
        self.model = None
        self.params = {}

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = params

    def on_train_begin(self, logs=None): pass
    def on_train_end(self, logs=None): pass
    def on_epoch_begin(self, epoch, logs=None): pass
    def on_epoch_end(self, epoch, logs=None): pass
    def on_train_batch_begin(self, batch, logs=None): self.on_batch_begin(batch, logs)
    def on_train_batch_end(self, batch, logs=None): self.on_batch_end(batch, logs)
    def on_test_begin(self, logs=None): pass
    def on_test_end(self, logs=None): pass
    def on_test_batch_begin(self, batch, logs=None): pass
    def on_test_batch_end(self, batch, logs=None): pass
    def on_predict_begin(self, logs=None): pass
    def on_predict_end(self, logs=None): pass
    def on_predict_batch_begin(self, batch, logs=None): pass
    def on_predict_batch_end(self, batch, logs=None): pass

    # Keras 1 names, called by the default on_train_batch_begin/end
    def on_batch_begin(self, batch, logs=None): pass
    def on_batch_end(self, batch, logs=None): pass

    # A checkpoint (ModelCheckpoint) records get_state() of each callback that defines it, and
    # fit(resume_from=...) hands it back to set_state after on_train_begin: a dict of numbers
    # (None and booleans allowed) that lets the callback go on as if never interrupted.


def _overrides(cb, name):
    """Whether `cb` defines hook `name` itself (so calling it is not a no-op)."""
    return name in vars(cb) or getattr(type(cb), name, None) is not getattr(Callback, name)


class CallbackList:
    """Calls each hook on every callback in order, except that the callbacks marked
    `_run_last` (ModelCheckpoint) come after all the others, so that what they save includes
    what the others changed at that batch or epoch (a reduced learning rate, the History).
    Batch hooks go only to the callbacks that define them, so a step with no batch callbacks
    costs two empty loops."""

    def __init__(self, callbacks=None, model=None, params=None):
        callbacks = list(callbacks or [])
        last = [cb for cb in callbacks if getattr(cb, "_run_last", False)]
        self.callbacks = [cb for cb in callbacks if not getattr(cb, "_run_last", False)] + last
        self.params = params or {}
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks: expected Callback instances, got {type(cb).__name__}: {cb!r}")
            if model is not None:
                cb.set_model(model)
            cb.set_params(self.params)
        self._batch_begin = [cb for cb in self.callbacks
                             if _overrides(cb, "on_train_batch_begin") or _overrides(cb, "on_batch_begin")]
        self._batch_end = [cb for cb in self.callbacks
                           if _overrides(cb, "on_train_batch_end") or _overrides(cb, "on_batch_end")]

    def __iter__(self):
        return iter(self.callbacks)

    def _call(self, hook, *args):
        for cb in self.callbacks:
            getattr(cb, hook)(*args)

    def on_train_begin(self, logs=None): self._call("on_train_begin", logs)
    def on_train_end(self, logs=None): self._call("on_train_end", logs)
    def on_epoch_begin(self, epoch, logs=None): self._call("on_epoch_begin", epoch, logs)
    def on_epoch_end(self, epoch, logs=None): self._call("on_epoch_end", epoch, logs)
    def on_test_begin(self, logs=None): self._call("on_test_begin", logs)
    def on_test_end(self, logs=None): self._call("on_test_end", logs)
    def on_predict_begin(self, logs=None): self._call("on_predict_begin", logs)
    def on_predict_end(self, logs=None): self._call("on_predict_end", logs)

    def on_train_batch_begin(self, batch, logs=None):
        for cb in self._batch_begin:
            cb.on_train_batch_begin(batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        for cb in self._batch_end:
            cb.on_train_batch_end(batch, logs)

    def on_test_batch_end(self, batch, logs=None): self._call("on_test_batch_end", batch, logs)
    def on_predict_batch_end(self, batch, logs=None): self._call("on_predict_batch_end", batch, logs)


def _available(logs, params):
    keys = list(logs) if logs else list(params.get("metrics") or [])
    return ", ".join(keys) if keys else "(none)"


def _monitor_value(cb, logs):
    """logs[monitor], or a ValueError naming the available keys."""
    value = (logs or {}).get(cb.monitor)
    if value is None:
        raise ValueError(f"{type(cb).__name__}: monitor {cb.monitor!r} is not in the logs; "
                         f"available: {_available(logs, cb.params)}")
    return float(value)


def _check_monitor_early(cb):
    """At train begin: fail before any epoch runs when the monitor cannot appear in the logs."""
    expected = cb.params.get("metrics")
    if expected and cb.monitor not in expected:
        raise ValueError(f"{type(cb).__name__}: monitor {cb.monitor!r} is not in the logs; "
                         f"available: {', '.join(expected)}")


def _mode_op(name, monitor, mode):
    """'min' or 'max': the direction of improvement ('auto': max for accuracy-like names)."""
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"{name}: expected mode to be 'auto', 'min' or 'max', got {mode!r}")
    if mode == "auto":
        m = monitor.lower()
        mode = "max" if any(s in m for s in ("acc", "auc", "precision", "recall", "f1")) else "min"
    return mode


class History(Callback):
    """Records the epoch logs: `history.history['loss']` is the list of epoch losses,
    `history.epoch` the epoch indices. `Model.fit` returns it (also `model.history`)."""

    def __init__(self):
        super().__init__()
        self.history = {}
        self.epoch = []

    def on_train_begin(self, logs=None):
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)
        if self.model is not None:
            self.model.history = self

    def plot(self, path=None, metrics=None, title=None):
        """Save (or, with path=None, return) a figure of the training and validation loss,
        and of each metric, per epoch. Needs matplotlib (the `plot` extra)."""
        try:
            import matplotlib
            if path is not None:
                matplotlib.use("Agg", force=False)
            import matplotlib.pyplot as plt
        except ImportError as e:
            raise ImportError("History.plot needs matplotlib; install it with "
                              "`pip install tidu[plot]`") from e
        keys = [k for k in self.history if not k.startswith("val_") and k not in ("lr", "learning_rate")]
        if metrics is not None:
            keys = [k for k in keys if k in metrics or k == "loss"]
        if not keys:
            raise ValueError("History.plot: nothing to plot; the history is empty (fit for at "
                             "least one epoch first)")
        fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 4), squeeze=False)
        epochs = [e + 1 for e in self.epoch] or list(range(1, len(self.history[keys[0]]) + 1))
        for ax, k in zip(axes[0], keys):
            ax.plot(epochs[:len(self.history[k])], self.history[k], "o-", label=f"training {k}")
            if "val_" + k in self.history:
                v = self.history["val_" + k]
                ax.plot(epochs[:len(v)], v, "s--", label=f"validation {k}")
            ax.set_xlabel("epoch")
            ax.set_ylabel(k)
            ax.set_title(k)
            ax.grid(True, alpha=0.3)
            ax.legend()
        if title:
            fig.suptitle(title)
        fig.tight_layout()
        if path is None:
            return fig
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return path


class ProgbarLogger(Callback):
    """Prints `Epoch i/N` and Keras' progress line (see tidu.models.progress)."""

    def __init__(self, verbose=None):
        super().__init__()
        self.verbose = verbose
        self.bar = None

    def on_train_begin(self, logs=None):
        if self.verbose is None:
            self.verbose = self.params.get("verbose", 1)
        self.epochs = self.params.get("epochs", 1)
        self.steps = self.params.get("steps")

    def on_epoch_begin(self, epoch, logs=None):
        from tidu.models.progress import Progbar
        if self.verbose:
            self.steps = self.params.get("steps", self.steps)  # a curriculum changes it per epoch
            print(f"Epoch {epoch + 1}/{self.epochs}", flush=True)
            self.bar = Progbar(self.steps or 1, verbose=self.verbose)

    def on_train_batch_end(self, batch, logs=None):
        if self.bar is not None:
            self.bar.update(batch + 1, logs)

    def on_epoch_end(self, epoch, logs=None):
        if self.bar is not None:
            self.bar.finish(logs, n=self.bar.n or self.steps)
            self.bar = None

    def on_train_end(self, logs=None):
        if self.bar is not None:  # training stopped mid-epoch
            self.bar.finish(logs)
            self.bar = None

    def _cleanup(self):
        """After an exception: take the live bar off the screen, print nothing more."""
        if self.bar is not None and self.bar.bar is not None:
            self.bar.bar.close()
        self.bar = None


class EarlyStopping(Callback):
    """Stop when `monitor` has not improved by more than `min_delta` for `patience` epochs.

    mode: 'min', 'max' or 'auto' (max for accuracies, min otherwise).  baseline: a value the
    monitor must beat; epochs that improve on the best but not on the baseline still count
    towards patience, so training stops after `patience` epochs that never beat it (as Keras
    documents; Keras' code keeps going while the monitor improves at all).
    restore_best_weights: when stopping, put back the weights of the best epoch (as Keras,
    only when training is stopped by this callback).
    start_from_epoch: epochs to wait before counting (warm-up).
    """

    def __init__(self, monitor="val_loss", min_delta=0, patience=0, verbose=0, mode="auto",
                 baseline=None, restore_best_weights=False, start_from_epoch=0):
        super().__init__()
        if patience < 0:
            raise ValueError(f"EarlyStopping: expected patience >= 0, got {patience!r}")
        self.monitor, self.patience, self.verbose = monitor, int(patience), verbose
        self.baseline, self.restore_best_weights = baseline, restore_best_weights
        self.start_from_epoch = int(start_from_epoch)
        self.mode = _mode_op("EarlyStopping", monitor, mode)
        self.min_delta = abs(min_delta)

    def _improved(self, value, reference):
        if reference is None:
            return True
        if self.mode == "min":
            return value < reference - self.min_delta
        return value > reference + self.min_delta

    def on_train_begin(self, logs=None):
        _check_monitor_early(self)
        self.wait, self.stopped_epoch, self.best_epoch = 0, 0, 0
        self.best, self.best_weights = None, None

    def on_epoch_end(self, epoch, logs=None):
        current = _monitor_value(self, logs)
        if epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.get_weights()
        self.wait += 1
        if self._improved(current, self.best):
            self.best, self.best_epoch = current, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._improved(current, self.baseline):
                self.wait = 0
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True
            if self.restore_best_weights and self.best_weights is not None:
                if self.verbose:
                    print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
                self.model.set_weights(self.best_weights)

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")

    def get_state(self):
        """The counters and best value (not best_weights: after a resume, restore_best_weights
        restores the best weights seen since)."""
        return {"wait": self.wait, "stopped_epoch": self.stopped_epoch,
                "best_epoch": self.best_epoch, "best": self.best}

    def set_state(self, state):
        self.wait, self.stopped_epoch = int(state["wait"]), int(state["stopped_epoch"])
        self.best_epoch, self.best = int(state["best_epoch"]), state["best"]


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by `factor` when `monitor` has not improved (by more than
    min_delta) for `patience` epochs; then wait `cooldown` epochs; never below `min_lr`.

    The notes' "halve the learning rate after ten epochs without improvement" is
    ReduceLROnPlateau(monitor='val_loss', factor=0.5, patience=10).
    """

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto",
                 min_delta=1e-4, cooldown=0, min_lr=0.0, **kwargs):
        super().__init__()
        if "epsilon" in kwargs:  # Keras 1 name of min_delta
            min_delta = kwargs.pop("epsilon")
        if kwargs:
            raise TypeError(f"ReduceLROnPlateau: unexpected keyword argument(s) {', '.join(kwargs)}")
        if not 0.0 < factor < 1.0:
            raise ValueError(f"ReduceLROnPlateau: expected 0 < factor < 1, got factor={factor!r}")
        self.monitor, self.factor, self.patience, self.verbose = monitor, float(factor), int(patience), verbose
        self.mode = _mode_op("ReduceLROnPlateau", monitor, mode)
        self.min_delta, self.cooldown, self.min_lr = abs(min_delta), int(cooldown), float(min_lr)

    def _improved(self, value):
        if self.best is None:
            return True
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_train_begin(self, logs=None):
        _check_monitor_early(self)
        self.best, self.wait, self.cooldown_counter = None, 0, 0

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        current = _monitor_value(self, logs)
        lr = float(self.model.optimizer.learning_rate)
        logs["learning_rate"] = lr
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._improved(current):
            self.best, self.wait = current, 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            if self.wait >= self.patience and lr > self.min_lr:
                new_lr = max(lr * self.factor, self.min_lr)
                self.model.optimizer.learning_rate = new_lr
                if self.verbose:
                    print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new_lr:.4g}.")
                self.cooldown_counter, self.wait = self.cooldown, 0

    def get_state(self):
        return {"best": self.best, "wait": self.wait, "cooldown_counter": self.cooldown_counter}

    def set_state(self, state):
        self.best, self.wait = state["best"], int(state["wait"])
        self.cooldown_counter = int(state["cooldown_counter"])


class LearningRateScheduler(Callback):
    """Set the learning rate at the start of each epoch to `schedule(epoch, lr)` (epoch from 0)."""

    def __init__(self, schedule, verbose=0):
        super().__init__()
        if not callable(schedule):
            raise TypeError(f"LearningRateScheduler: expected schedule to be a function "
                            f"(epoch, lr) -> lr, got {schedule!r}")
        self.schedule, self.verbose = schedule, verbose

    def on_epoch_begin(self, epoch, logs=None):
        lr = float(self.model.optimizer.learning_rate)
        try:
            new_lr = self.schedule(epoch, lr)
        except TypeError:  # Keras 1 schedules take only the epoch
            new_lr = self.schedule(epoch)
        new_lr = float(new_lr)
        if not math.isfinite(new_lr) or new_lr < 0:
            raise ValueError(f"LearningRateScheduler: the schedule returned {new_lr!r} for epoch "
                             f"{epoch}; expected a finite learning rate >= 0")
        self.model.optimizer.learning_rate = new_lr
        if self.verbose:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to {new_lr:.4g}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(self.model.optimizer.learning_rate)


class ModelCheckpoint(Callback):
    """Save the model (or only its weights) during training, atomically: the file is written
    to a temporary name in the same directory, fsynced, then renamed over the target, so a
    crash (or SIGKILL) at any point leaves the previous checkpoint intact.

    A whole-model checkpoint also records where fit is (epoch, step, the generators' states,
    the epoch's running sums, the History and the state of the other callbacks; see
    tidu.checkpoint): `model.fit(..., resume_from=filepath)` continues from it, bit-identically
    to a run that was never interrupted. It is also an ordinary model file for load_model.

    filepath may hold format fields from the logs: 'ckpt-{epoch:02d}-{val_loss:.3f}.tidu'
    (epoch counted from 1; {batch} too with save_freq=N). save_best_only: save only when
    `monitor` improves. save_weights_only: write a .safetensors weights file instead of a whole
    model (nothing to resume from). save_freq: 'epoch', or an int: every that many batches.
    It runs after the other callbacks at each batch and epoch end, so a checkpoint holds what
    they changed (ReduceLROnPlateau's learning rate, the History).
    """

    _run_last = True

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False,
                 save_weights_only=False, mode="auto", save_freq="epoch", initial_value_threshold=None):
        super().__init__()
        if save_freq != "epoch" and not (isinstance(save_freq, int) and save_freq > 0):
            raise ValueError(f"ModelCheckpoint: expected save_freq to be 'epoch' or a positive int, "
                             f"got {save_freq!r}")
        self.filepath, self.monitor, self.verbose = os.fspath(filepath), monitor, verbose
        self.save_best_only, self.save_weights_only, self.save_freq = save_best_only, save_weights_only, save_freq
        self.mode = _mode_op("ModelCheckpoint", monitor, mode)
        self.best = initial_value_threshold
        self._batches_seen, self._epoch = 0, 0

    def on_train_begin(self, logs=None):
        if self.save_best_only:
            _check_monitor_early(self)
        if "{" not in self.filepath:
            self._remove_leftovers()

    def _remove_leftovers(self):
        """Temporary files of this checkpoint left by a process killed while writing it
        (tidu.saving.atomic_write names them '.<name>.<random>.tmp')."""
        directory, name = os.path.split(os.path.abspath(self.filepath))
        try:
            entries = os.listdir(directory)
        except OSError:
            return
        prefix = "." + name + "."
        for entry in entries:
            if entry.startswith(prefix) and entry.endswith(".tmp") and len(entry) == len(prefix) + 12:
                try:
                    os.unlink(os.path.join(directory, entry))
                except OSError:
                    pass

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def get_state(self):
        return {"batches_seen": self._batches_seen, "best": self.best}

    def set_state(self, state):
        self._batches_seen, self.best = int(state["batches_seen"]), state["best"]

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq == "epoch":
            return
        self._batches_seen += 1
        if self._batches_seen % self.save_freq == 0:
            self._save(self._epoch, logs, batch=batch)

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self._save(epoch, logs)

    def _better(self, value):
        if self.best is None:
            return True
        return value < self.best if self.mode == "min" else value > self.best

    def _save(self, epoch, logs, batch=None):
        logs = dict(logs or {})
        try:
            path = self.filepath.format(epoch=epoch + 1, batch=(batch or 0) + 1, **logs)
        except KeyError as e:
            raise ValueError(f"ModelCheckpoint: filepath {self.filepath!r} uses {e.args[0]!r}, which "
                             f"is not in the logs; available: epoch, batch, "
                             f"{_available(logs, self.params)}") from None
        if self.save_best_only:
            current = _monitor_value(self, logs)
            if not self._better(current):
                if self.verbose:
                    print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {self.best:.5f}")
                return
            if self.verbose:
                prev = "inf" if self.best is None else f"{self.best:.5f}"
                print(f"\nEpoch {epoch + 1}: {self.monitor} improved from {prev} to {current:.5f}, "
                      f"saving model to {path}")
            self.best = current
        elif self.verbose:
            print(f"\nEpoch {epoch + 1}: saving model to {path}")
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            from tidu import checkpoint, saving
            saving.save_model(self.model, path, progress=checkpoint.capture(self.model))


class CSVLogger(Callback):
    """Append one row per epoch to a CSV file: `epoch` then the log keys in sorted order.
    append=True continues an existing file (without writing the header again)."""

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        self.filename, self.sep, self.append = os.fspath(filename), separator, append
        self.keys, self.file, self.writer = None, None, None

    def on_train_begin(self, logs=None):
        exists = self.append and os.path.exists(self.filename) and os.path.getsize(self.filename) > 0
        if exists:
            with open(self.filename, newline="") as f:
                header = next(csv.reader(f, delimiter=self.sep), None)
            self.keys = header[1:] if header else None
        else:
            self.keys = None
        self.file = open(self.filename, "a" if self.append else "w", newline="")
        self._header_written = exists

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
        if self.writer is None:
            self.writer = csv.DictWriter(self.file, fieldnames=["epoch"] + self.keys,
                                         delimiter=self.sep, extrasaction="ignore")
            if not self._header_written:
                self.writer.writeheader()
                self._header_written = True
        row = {"epoch": epoch}
        for k in self.keys:
            v = logs.get(k, "NA")
            row[k] = v if isinstance(v, str) else repr(float(v)) if np.ndim(v) == 0 else str(v)
        self.writer.writerow(row)
        self.file.flush()

    def on_train_end(self, logs=None):
        if self.file is not None:
            self.file.close()
        self.file, self.writer = None, None

    _cleanup = on_train_end


class _Snapshot:
    """A copy of a model's weights and its optimizer's state, to put back later (the buffers
    are reused from one copy to the next)."""

    def __init__(self):
        self.weights, self.optimizer = None, None

    def take(self, model):
        from tidu import backend
        params = model.weights
        if self.weights is None or [a.shape for a in self.weights] != [p.shape for p in params]:
            self.weights = [np.array(backend.to_numpy(p.data), copy=True) for p in params]
        else:
            for a, p in zip(self.weights, params):
                a[...] = backend.to_numpy(p.data)
        opt = getattr(model, "optimizer", None)
        self.optimizer = opt.state_dict() if opt is not None and hasattr(opt, "state_dict") else None

    def restore(self, model):
        if self.weights is None:
            return
        model.set_weights(self.weights)
        if self.optimizer is not None:
            model.optimizer.load_state_dict(self.optimizer)


class TerminateOnNaN(Callback):
    """Stop training as soon as a batch loss is NaN or infinite.

    restore_best_weights: then put back the last good weights and optimizer state, those from
    before the step whose loss was not finite (the update from its NaN gradient is undone).
    This copies the weights and the optimizer state before every step, so it costs a little
    time per step; without it, nothing.
    """

    def __init__(self, restore_best_weights=False):
        super().__init__()
        if not isinstance(restore_best_weights, bool):
            raise TypeError(f"TerminateOnNaN: expected restore_best_weights to be True or False, "
                            f"got {restore_best_weights!r}")
        self.restore_best_weights = restore_best_weights
        self._snapshot = _Snapshot() if restore_best_weights else None
        self.terminated_batch = None
        if restore_best_weights:  # a batch-begin hook only then: no cost per step otherwise
            self.on_train_batch_begin = self._remember

    def on_train_begin(self, logs=None):
        self.terminated_batch = None

    def _remember(self, batch, logs=None):
        self._snapshot.take(self.model)

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            print(f"Batch {batch}: Invalid loss, terminating training")
            self.model.stop_training = True
            self.terminated_batch = batch
            if self._snapshot is not None:
                self._snapshot.restore(self.model)


class LossExplosion(Callback):
    """Stop when the loss exceeds `factor` times the first batch's loss (or is NaN/inf): the
    sign that the learning rate is too high (the loss should fall, not grow several-fold).

    restore_best_weights: put back the weights and the optimizer state from the end of the
    epoch with the lowest loss (or from before training when no epoch completed). `exploded`
    tells whether it fired.
    """

    def __init__(self, factor=3.0, restore_best_weights=False, monitor="loss", verbose=1):
        super().__init__()
        if not factor > 1:
            raise ValueError(f"LossExplosion: expected factor > 1, got factor={factor!r}")
        self.factor, self.restore_best_weights = float(factor), restore_best_weights
        self.monitor, self.verbose = monitor, verbose

    def on_train_begin(self, logs=None):
        self.first, self.exploded, self.message = None, False, None
        self.best, self.best_weights = None, None
        self._epoch = 0
        self._snapshot = _Snapshot()
        if self.restore_best_weights:
            self._snapshot.take(self.model)
            self.best_weights = self._snapshot.weights

    def get_state(self):
        return {"first": self.first, "best": self.best, "exploded": self.exploded}

    def set_state(self, state):
        self.first, self.best, self.exploded = state["first"], state["best"], bool(state["exploded"])

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get(self.monitor)
        if loss is None:
            return
        if self.first is None:
            self.first = loss
            return
        if not math.isfinite(loss) or loss > self.factor * self.first:
            lr = getattr(getattr(self.model, "optimizer", None), "learning_rate", None)
            lr_text = f" ({float(lr):.4g})" if lr is not None else ""
            self.message = (f"LossExplosion: loss {loss:.4g} at epoch {self._epoch + 1}, batch {batch + 1} "
                            f"exceeds {self.factor:g} x the first loss {self.first:.4g}; the learning "
                            f"rate{lr_text} is likely too high: try one ten times smaller")
            self.exploded = True
            self.model.stop_training = True
            if self.verbose:
                print("\n" + self.message, file=sys.stderr)
            if self.restore_best_weights and self.best_weights is not None:
                self._snapshot.restore(self.model)

    def on_epoch_end(self, epoch, logs=None):
        if self.exploded or not self.restore_best_weights:
            return
        loss = (logs or {}).get(self.monitor)
        if loss is not None and math.isfinite(loss) and (self.best is None or loss < self.best):
            self._snapshot.take(self.model)
            self.best, self.best_weights = loss, self._snapshot.weights


class LambdaCallback(Callback):
    """A callback from functions: LambdaCallback(on_epoch_end=lambda epoch, logs: ...)."""

    def __init__(self, **hooks):
        super().__init__()
        for name, fn in hooks.items():
            if not name.startswith("on_") or not hasattr(Callback, name):
                raise TypeError(f"LambdaCallback: unknown hook {name!r}")
            setattr(self, name, fn)
