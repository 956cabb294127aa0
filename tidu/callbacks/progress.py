"""Keras' progress line, drawn by tqdm.

    Epoch 1/5
    469/469 [==============================] - 2s 4ms/step - loss: 0.2524 - accuracy: 0.9273

While the epoch runs (verbose=1) the line is live, `123/469 [=======>......] - ETA: 1s - loss: ...`,
redrawn by tqdm (at most every 0.1 s, so the cost per step is one integer add and a clock
read); at the end it is replaced by the final line. verbose=2 prints only the final line,
as `469/469 - 2s - 4ms/step - loss: ...`.
"""
import shutil
import sys
import time

from tqdm import tqdm

from tidu.callbacks.base import Callback

BAR_WIDTH = 30


def format_value(v):
    """Keras' number format: 4 decimals, scientific below 1e-3."""
    try:
        v = float(v)
    except (TypeError, ValueError):
        return str(v)
    return f"{v:.4f}" if abs(v) > 1e-3 or v == 0 else f"{v:.4e}"


def format_logs(logs):
    return "".join(f" - {k}: {format_value(v)}" for k, v in logs.items())


def format_duration(seconds):
    """ETA as Keras writes it: '7s', '1:05', '1:02:03'."""
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
    if seconds >= 60:
        return f"{seconds // 60}:{seconds % 60:02d}"
    return f"{seconds}s"


def format_per_step(seconds, unit="step"):
    """'4ms/step', '850us/step' or '2s/step'."""
    if seconds >= 1 or seconds == 0:
        return f"{seconds:.0f}s/{unit}"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms/{unit}"
    return f"{seconds * 1e6:.0f}us/{unit}"


def keras_bar(n, total, width=BAR_WIDTH):
    """'[=======>......................]' for n of total done."""
    filled = int(width * n / total) if total else width
    if n >= total:
        return "[" + "=" * width + "]"
    head = "=" * max(filled - 1, 0) + ">"
    return "[" + head + "." * max(width - len(head), 0) + "]"


def final_line(n, total, elapsed, logs, verbose=1):
    """The line Keras prints when an epoch (or evaluation) finishes."""
    per = format_per_step(elapsed / n if n else 0.0)
    if verbose == 2:
        return f"{n}/{total} - {elapsed:.0f}s - {per}{format_logs(logs)}"
    digits = len(str(total))
    return f"{n:>{digits}}/{total} {keras_bar(n, total)} - {elapsed:.0f}s {per}{format_logs(logs)}"


class _KerasTqdm(tqdm):
    """tqdm drawing Keras' line: `bar_format="{keras}"`, the text made in format_dict."""

    monitor_interval = 0  # no monitor thread

    def __init__(self, *args, **kwargs):
        self.logs = {}
        super().__init__(*args, **kwargs)

    @property
    def format_dict(self):
        d = super().format_dict
        n, total, elapsed = d["n"], d["total"], d["elapsed"]
        digits = len(str(total))
        eta = elapsed / n * (total - n) if n else 0.0
        d["keras"] = (f"{n:>{digits}}/{total} {keras_bar(n, total)} - ETA: {format_duration(eta)}"
                      f"{format_logs(self.logs)}")
        return d


class Progbar:
    """One epoch's (or one evaluation's) progress: `update(step, logs)` after each step,
    `finish(logs)` at the end. verbose: 1 live bar + final line, 2 final line only, 0 silent."""

    def __init__(self, total, verbose=1, file=None):
        self.total, self.verbose = int(total), verbose
        self.file = file if file is not None else sys.stdout
        self.start = time.perf_counter()
        self.n = 0
        self.bar = None
        if verbose == 1 and self.total > 0:
            tty = getattr(self.file, "isatty", lambda: False)()
            ncols = shutil.get_terminal_size((100, 20)).columns - 1 if tty else 1000
            self.bar = _KerasTqdm(total=self.total, file=self.file, bar_format="{keras}",
                                  ncols=ncols, leave=False, mininterval=0.1, dynamic_ncols=False,
                                  delay=1e-9)  # no '0/N' line before the first step

    def update(self, n, logs=None):
        """Mark `n` steps done (cumulative) with the running logs (read only when drawn)."""
        if self.bar is not None:
            self.bar.logs = logs or {}
            self.bar.update(n - self.n)
        self.n = n

    def finish(self, logs=None, n=None):
        """Replace the live bar by the final line (printed for verbose 1 and 2)."""
        elapsed = time.perf_counter() - self.start
        n = self.n if n is None else n
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self.verbose in (1, 2):
            print(final_line(n or self.total, self.total, elapsed, logs or {}, self.verbose),
                  file=self.file, flush=True)
        return elapsed


class ProgbarLogger(Callback):
    """Prints `Epoch i/N` and Keras' progress line (Progbar above)."""

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


class RunProgress(Callback):
    """One line per epoch that a person can follow on a long run: which model of the run is
    training, the epoch's wall time, and the time left for this fit and for the whole run.

        [model 2/5] epoch 3/12 - 94s - loss: 0.0412 - val_accuracy: 0.9951 - ETA 14:07 this model, 1:12:40 run

    A run is `runs` fits of the same length (an ensemble trains one member per fit); pass the
    same RunProgress to every fit. With t̄ the mean epoch time of every epoch seen so far (in any
    fit of the run), E the epochs of a fit, e the epochs done in this one and r the fits after it:

        ETA this model = t̄ · (E − e),     ETA run = t̄ · (E − e + r · E)

    The line is printed at the end of each epoch (to `file`, default stdout), so it works with
    fit(verbose=0) and in logs; with verbose=1 it follows Keras' progress bar.
    """

    def __init__(self, runs=1, label="model", file=None):
        super().__init__()
        if not (isinstance(runs, int) and not isinstance(runs, bool) and runs >= 1):
            raise ValueError(f"RunProgress: expected runs to be an int >= 1, got runs={runs!r}")
        self.runs, self.label, self.file = runs, label, file
        self.run = 0                      # fits begun so far: the one training is run/runs
        self.epoch_times = []             # wall seconds of every epoch of the run
        self._t0 = None

    def on_train_begin(self, logs=None):
        self.run += 1
        self.epochs = self.params.get("epochs", 1)
        self.done = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        elapsed = time.perf_counter() - self._t0
        self.epoch_times.append(elapsed)
        self.done += 1
        mean = sum(self.epoch_times) / len(self.epoch_times)
        left_here = max(self.epochs - epoch - 1, 0)
        left_run = left_here + max(self.runs - self.run, 0) * self.epochs
        who = f"[{self.label} {self.run}/{self.runs}] " if self.runs > 1 else ""
        eta = f"ETA {format_duration(mean * left_here)} this {self.label}"
        if self.runs > 1:
            eta += f", {format_duration(mean * left_run)} run"
        print(f"{who}epoch {epoch + 1}/{self.epochs} - {elapsed:.0f}s{format_logs(logs or {})} - {eta}",
              file=self.file or sys.stdout, flush=True)
