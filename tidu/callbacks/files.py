"""Callbacks that write files: ModelCheckpoint (the model or its weights, atomically, with
the fit state to resume from) and CSVLogger (one row per epoch)."""
import csv
import os

import numpy as np

from tidu import saving
from tidu.callbacks.base import Callback, available_keys, check_monitor_early, mode_op, monitor_value

__all__ = ["ModelCheckpoint", "CSVLogger"]


class ModelCheckpoint(Callback):
    """Save the model (or only its weights) during training, atomically: the file is written
    to a temporary name in the same directory, fsynced, then renamed over the target, so a
    crash (or SIGKILL) at any point leaves the previous checkpoint intact.

    A whole-model checkpoint also records where fit is (epoch, step, the generators' states,
    the epoch's running sums, the History and the state of the other callbacks; see
    tidu.saving.checkpoints): `model.fit(..., resume_from=filepath)` continues from it, bit-identically
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
        self.mode = mode_op("ModelCheckpoint", monitor, mode)
        self.best = initial_value_threshold
        self._batches_seen, self._epoch = 0, 0

    def on_train_begin(self, logs=None):
        if self.save_best_only:
            check_monitor_early(self)
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
                             f"{available_keys(logs, self.params)}") from None
        if self.save_best_only:
            current = monitor_value(self, logs)
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
            saving.save_model(self.model, path, progress=saving.capture(self.model))


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
