"""Train one model with several optimizers from the same initial weights and compare them.

    table, histories = compare(["sgd", "momentum", "rmsprop", "adam"], task="mnist-mlp", epochs=2,
                               out="cmp.png")

Every optimizer starts from the same weights and sees the same batches (same seed), so the
curves differ only by the update rule. Closure methods (Newton, Newton-CG, BFGS, L-BFGS,
coordinate descent: `requires_closure`) train through the same fit, but on the full training
set by default (closure_batch_size=None: one step() per epoch): their line searches and
curvature pairs assume one fixed loss, not a new batch at every step, and one of their steps
evaluates the loss many times. So the plot's x axis is the number of training examples the
loss and gradient were evaluated on (evaluations × batch size), the same compute for every
method, and the table counts the evaluations. The plot shows the training loss at each step's
start (smoothed) and the validation accuracy per epoch; the table has the training loss after
training, the validation loss and accuracy and the time.
"""
import time

import numpy as np

from tidu._checks import check_int
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
    """Per step: the loss at its start, and the evaluations made before it (for the x axis)."""

    def __init__(self, evaluations):
        self.losses, self.evals_before, self.evaluations = [], [], evaluations

    def __call__(self):
        from tidu.callbacks import Callback

        outer = self

        class Recorder(Callback):
            def on_train_batch_begin(self, batch, logs=None):
                outer.evals_before.append(outer.evaluations[0])

            def on_train_batch_end(self, batch, logs=None):
                outer.losses.append(float((logs or {}).get("loss", np.nan)))
        return Recorder()


def _count_evaluations(model):
    """Wrap the compiled model's train-step closure; the returned [n] counts its calls (each one
    loss and gradient evaluation on the step's batch)."""
    step, count = model.train_step, [0]
    make = step.closure

    def counting_closure(*args, **kwargs):
        inner = make(*args, **kwargs)

        def closure():
            count[0] += 1
            return inner()
        closure.outputs, closure.predictions = inner.outputs, inner.predictions
        return closure
    step.closure = counting_closure
    return count


def compare(optimizers, task="mnist-mlp", epochs=1, batch_size=128, out=None, subset=False, seed=0,
            data=None, verbose=0, closure_batch_size=None):
    """Train `task` once per optimizer (names or instances) from one set of initial weights.

    First-order methods take batches of `batch_size`; closure methods batches of
    `closure_batch_size` (None: the whole training set, one step() per epoch). Returns
    (table, curves): table a list of dicts (optimizer, batch_size, evaluations: loss+gradient
    evaluations in training, train_loss: the training loss after training, final_loss: the last
    epoch's mean of the steps' losses, val_loss, val_accuracy, seconds, ...), curves
    {label: the loss at each step's start, on its batch}."""
    from tidu import optimizers as opt_mod

    if isinstance(optimizers, str):
        optimizers = [o for o in optimizers.split(",") if o]
    if not optimizers:
        raise ValueError("compare: expected at least one optimizer, got none")
    if closure_batch_size is not None:
        check_int("compare", "closure_batch_size", closure_batch_size)
    resolved = []
    for spec in optimizers:
        opt = opt_mod.get(spec)
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
        bs = batch_size
        if opt.requires_closure:
            bs = len(xtr) if closure_batch_size is None else min(closure_batch_size, len(xtr))
        evaluations = _count_evaluations(model)
        rec = _BatchLosses(evaluations)
        t = time.perf_counter()
        hist = model.fit(xtr, ytr, batch_size=bs, epochs=epochs, verbose=verbose, seed=seed,
                         validation_data=(xte, yte), callbacks=[rec()])
        seconds = time.perf_counter() - t
        curves[label] = np.array(rec.losses)
        table.append({"optimizer": label, "batch_size": bs, "evaluations": evaluations[0],
                      "train_loss": float(model.evaluate(xtr, ytr, batch_size=max(bs, 1024), verbose=0)[0]),
                      "final_loss": float(hist.history["loss"][-1]),
                      "val_loss": float(hist.history["val_loss"][-1]),
                      "val_accuracy": float(hist.history["val_accuracy"][-1]), "seconds": seconds,
                      "val_accuracy_per_epoch": [float(a) for a in hist.history["val_accuracy"]],
                      "examples_evaluated": [n * bs for n in rec.evals_before]})
    if out:
        plot_comparison(table, curves, out, task)
    return table, curves


def format_table(table):
    w = max([14] + [len(r["optimizer"]) + 2 for r in table])
    lines = [f"{'optimizer':<{w}}{'batch':>7}{'evals':>8}{'train loss':>12}{'val loss':>10}{'val acc':>9}"
             f"{'seconds':>9}"]
    for r in table:
        lines.append(f"{r['optimizer']:<{w}}{r['batch_size']:>7}{r['evaluations']:>8}{r['train_loss']:>12.4f}"
                     f"{r['val_loss']:>10.4f}{r['val_accuracy']:>9.4f}{r['seconds']:>9.1f}")
    if len({r["batch_size"] for r in table}) > 1:
        lines.append("(batch: examples per step; closure methods train on the full training set unless "
                     "closure_batch_size is given. evals: loss+gradient evaluations, several per closure step)")
    return "\n".join(lines)


def plot_comparison(table, curves, out, task):

    plt = pyplot("tidu compare")
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4.5))
    examples = {r["optimizer"]: r.get("examples_evaluated") for r in table}
    for label, losses in curves.items():
        k = max(1, len(losses) // 50)
        smooth = np.convolve(losses, np.ones(k) / k, mode="valid")
        x = examples.get(label)
        x = np.arange(len(losses)) if x is None or len(x) != len(losses) else np.asarray(x)
        a1.plot(x[k - 1:], smooth, ".-" if len(smooth) < 30 else "-", label=label)
    a1.set_yscale("log")
    a1.set_xlabel("examples evaluated (loss + gradient)")
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
