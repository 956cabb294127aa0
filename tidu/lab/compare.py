"""Train one model with several optimizers from the same initial weights and compare them.

    table, histories = compare(["sgd", "momentum", "rmsprop", "adam"], task="mnist-mlp", epochs=2,
                               out="cmp.png")

Every optimizer starts from the same weights and sees the same batches (same seed), so the
curves differ only by the update rule. The plot shows the training loss per batch (smoothed)
and the validation accuracy per epoch; the table has the final loss, accuracy and time.
"""
import time

import numpy as np

from tidu.utils import pyplot

TASKS = ("mnist-mlp", "mnist-cnn")


def build_task_model(task):
    """The model of a named task, uncompiled: the notes' MLP or a small CNN."""
    from tidu import layers, models

    if task == "mnist-mlp":
        return models.Sequential([layers.Dense(512, activation="relu", input_shape=(784,)),
                                  layers.Dense(10, activation="softmax")])
    if task == "mnist-cnn":
        return models.Sequential([layers.Reshape((28, 28, 1), input_shape=(784,)),
                                  layers.Conv2D(16, 5, activation="relu"), layers.MaxPooling2D(2),
                                  layers.Flatten(), layers.Dense(10, activation="softmax")])
    raise ValueError(f"compare: unknown task {task!r}; available: {', '.join(TASKS)}")


def load_task_data(subset=False):
    from tidu.datasets import mnist
    from tidu.utils import to_categorical

    (xtr, ytr), (xte, yte) = mnist.load_subset() if subset else mnist.load_data()
    prep = lambda x: x.reshape(len(x), 784).astype("float32") / 255  # noqa: E731
    return prep(xtr), to_categorical(ytr, 10), prep(xte), to_categorical(yte, 10)


class _BatchLosses:
    def __init__(self):
        self.losses = []

    def __call__(self):
        from tidu.callbacks import Callback

        outer = self

        class Recorder(Callback):
            def on_train_batch_end(self, batch, logs=None):
                outer.losses.append(float((logs or {}).get("loss", np.nan)))
        return Recorder()


def compare(optimizers, task="mnist-mlp", epochs=1, batch_size=128, out=None, subset=False, seed=0,
            data=None, verbose=0):
    """Train `task` once per optimizer (names or instances; first-order ones) from one set of
    initial weights. Returns (table, curves): table a list of dicts (optimizer, final_loss,
    val_loss, val_accuracy, seconds), curves {label: per-batch training losses}."""
    from tidu import optimizers as opt_mod

    if isinstance(optimizers, str):
        optimizers = [o for o in optimizers.split(",") if o]
    if not optimizers:
        raise ValueError("compare: expected at least one optimizer, got none")
    resolved = []
    for spec in optimizers:
        opt = opt_mod.get(spec)
        if opt.requires_closure:
            raise ValueError(f"compare: {type(opt).__name__} needs step(closure) over the full batch; "
                             f"compare trains with mini-batches (use the lab's functions for it)")
        label = spec if isinstance(spec, str) else type(opt).__name__
        taken = [lb for lb, _ in resolved]
        if label in taken:
            label = f"{label}#{taken.count(label) + sum(lb.startswith(label + '#') for lb in taken) + 1}"
        resolved.append((label, opt))
    xtr, ytr, xte, yte = data if data is not None else load_task_data(subset)
    model = build_task_model(task)
    initial = model.get_weights()
    table, curves = [], {}
    for label, opt in resolved:
        model.set_weights(initial)
        model.compile(optimizer=opt, loss="categorical_crossentropy", metrics=["accuracy"])
        rec = _BatchLosses()
        t = time.perf_counter()
        hist = model.fit(xtr, ytr, batch_size=batch_size, epochs=epochs, verbose=verbose, seed=seed,
                         validation_data=(xte, yte), callbacks=[rec()])
        seconds = time.perf_counter() - t
        curves[label] = np.array(rec.losses)
        table.append({"optimizer": label, "final_loss": float(hist.history["loss"][-1]),
                      "val_loss": float(hist.history["val_loss"][-1]),
                      "val_accuracy": float(hist.history["val_accuracy"][-1]), "seconds": seconds,
                      "val_accuracy_per_epoch": [float(a) for a in hist.history["val_accuracy"]]})
    if out:
        plot_comparison(table, curves, out, task)
    return table, curves


def format_table(table):
    lines = [f"{'optimizer':<14}{'final loss':>12}{'val loss':>10}{'val acc':>9}{'seconds':>9}"]
    for r in table:
        lines.append(f"{r['optimizer']:<14}{r['final_loss']:>12.4f}{r['val_loss']:>10.4f}"
                     f"{r['val_accuracy']:>9.4f}{r['seconds']:>9.1f}")
    return "\n".join(lines)


def plot_comparison(table, curves, out, task):

    plt = pyplot("tidu compare")
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4.5))
    for label, losses in curves.items():
        k = max(1, len(losses) // 50)
        smooth = np.convolve(losses, np.ones(k) / k, mode="valid")
        a1.plot(np.arange(len(smooth)) + k - 1, smooth, label=label)
    a1.set_yscale("log")
    a1.set_xlabel("batch")
    a1.set_ylabel("training loss (smoothed)")
    a1.legend(fontsize=8)
    for r in table:
        acc = r["val_accuracy_per_epoch"]
        a2.plot(range(1, len(acc) + 1), acc, "o-", label=r["optimizer"])
    a2.set_xlabel("epoch")
    a2.set_ylabel("validation accuracy")
    a2.legend(fontsize=8)
    fig.suptitle(f"{task}: optimizers from the same initial weights")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
