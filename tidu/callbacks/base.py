"""The callback interface: Callback (the hooks), CallbackList (calls them in order),
History (the epoch logs, returned by fit), LambdaCallback, and the monitor helpers the
callbacks that watch a logged value share. See tidu.callbacks for the hooks' contract."""

from tidu.utils import pyplot

__all__ = ["Callback", "CallbackList", "History", "LambdaCallback"]


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

    def on_test_batch_begin(self, batch, logs=None): self._call("on_test_batch_begin", batch, logs)
    def on_test_batch_end(self, batch, logs=None): self._call("on_test_batch_end", batch, logs)
    def on_predict_batch_begin(self, batch, logs=None): self._call("on_predict_batch_begin", batch, logs)
    def on_predict_batch_end(self, batch, logs=None): self._call("on_predict_batch_end", batch, logs)

    def overrides(self, *hooks):
        """Whether any callback defines one of `hooks` (so a loop can skip work for none)."""
        return any(_overrides(cb, h) for cb in self.callbacks for h in hooks)


def available_keys(logs, params):
    keys = list(logs) if logs else list(params.get("metrics") or [])
    return ", ".join(keys) if keys else "(none)"


def monitor_value(cb, logs):
    """logs[monitor], or a ValueError naming the available keys."""
    value = (logs or {}).get(cb.monitor)
    if value is None:
        raise ValueError(f"{type(cb).__name__}: monitor {cb.monitor!r} is not in the logs; "
                         f"available: {available_keys(logs, cb.params)}")
    return float(value)


def check_monitor_early(cb):
    """At train begin: fail before any epoch runs when the monitor cannot appear in the logs."""
    expected = cb.params.get("metrics")
    if expected and cb.monitor not in expected:
        raise ValueError(f"{type(cb).__name__}: monitor {cb.monitor!r} is not in the logs; "
                         f"available: {', '.join(expected)}")


def mode_op(name, monitor, mode):
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
        plt = pyplot("History.plot", headless=path is not None)
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


class LambdaCallback(Callback):
    """A callback from functions: LambdaCallback(on_epoch_end=lambda epoch, logs: ...)."""

    def __init__(self, **hooks):
        super().__init__()
        for name, fn in hooks.items():
            if not name.startswith("on_") or not hasattr(Callback, name):
                raise TypeError(f"LambdaCallback: unknown hook {name!r}")
            setattr(self, name, fn)
