"""Callbacks that stop training: EarlyStopping (no improvement for `patience` epochs),
TerminateOnNaN (a loss that is not finite) and LossExplosion (a loss several-fold the first:
the learning rate is too high). Those that put earlier weights back keep them in a
saving.Snapshot (weights and optimizer state)."""
import math
import sys

from tidu.callbacks.base import Callback, check_monitor_early, mode_op, monitor_value
from tidu.saving import Snapshot

__all__ = ["EarlyStopping", "TerminateOnNaN", "LossExplosion"]


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
        self.mode = mode_op("EarlyStopping", monitor, mode)
        self.min_delta = abs(min_delta)

    def _improved(self, value, reference):
        if reference is None:
            return True
        if self.mode == "min":
            return value < reference - self.min_delta
        return value > reference + self.min_delta

    def on_train_begin(self, logs=None):
        check_monitor_early(self)
        self.wait, self.stopped_epoch, self.best_epoch = 0, 0, 0
        self.best, self.best_weights = None, None

    def on_epoch_end(self, epoch, logs=None):
        current = monitor_value(self, logs)
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
        """The counters and best value (the best weights go with get_weight_copies)."""
        return {"wait": self.wait, "stopped_epoch": self.stopped_epoch,
                "best_epoch": self.best_epoch, "best": self.best}

    def get_weight_copies(self):
        """The best epoch's weights (restore_best_weights), for a checkpoint; None when none."""
        return self.best_weights

    def set_weight_copies(self, weights):
        self.best_weights = None if weights is None else [w.copy() for w in weights]

    def set_state(self, state):
        self.wait, self.stopped_epoch = int(state["wait"]), int(state["stopped_epoch"])
        self.best_epoch, self.best = int(state["best_epoch"]), state["best"]


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
        self._snapshot = Snapshot() if restore_best_weights else None
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
        self._snapshot = Snapshot()
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
