"""Delayed gradients, measured: sequential SGD, synchronous SGD, ASGD, DC-ASGD and Downpour on
the same task, data and seeds, for several numbers of workers.

    rows = compare(task="mnist-mlp", workers=(1, 8), rules=("sgd", "asgd", "dcasgd"),
                   updates=3000, schedule="random", out="dist.png")

Every run starts from the same initial weights and trains for `updates` server updates on the
simulated backend (or on Ray, backend='ray'); test accuracy is measured every `eval_every`
updates. With M = 1 every rule is sequential SGD (Downpour: AdaGrad), run once and reported
under each name. What Zheng et al. (2017)
report, and what this reproduces on MNIST: with M workers the gradients are ~M − 1 updates
stale and ASGD falls behind sequential SGD as M grows, at a learning rate large enough that
the drift w_t − w_{t−τ} matters; DC-ASGD's g ⊙ g ⊙ (w_t − w_bak) term closes most of the gap.
SyncSGD has no staleness but makes one update per M gradients (a batch M times larger).
"""
import time

import numpy as np

from tidu.distributed import rules as R
from tidu.distributed.server import ParameterServer
from tidu.utils import pyplot

TASKS = ("mnist-mlp", "mnist-cnn", "mnist-mlp-small", "mnist-cnn-small")
SPLITS = ("test", "validation")


def task_model(task):
    """The uncompiled network of a task (see load_task); 'mnist-cnn' is examples/mnist_cnn.py's."""
    from tidu import layers
    from tidu.models import Sequential

    if task.startswith("mnist-cnn"):
        return Sequential([
            layers.Conv2D(32, kernel_size=5, activation="relu", input_shape=(28, 28, 1)),
            layers.MaxPooling2D(pool_size=2),
            layers.Conv2D(64, kernel_size=5, activation="relu"),
            layers.MaxPooling2D(pool_size=2),
            layers.Flatten(),
            layers.Dense(128, activation="relu"),
            layers.Dropout(0.5),
            layers.Dense(10, activation="softmax"),
        ])
    hidden = 512 if task == "mnist-mlp" else 64
    return Sequential([layers.Dense(hidden, activation="relu", input_shape=(784,)),
                       layers.Dense(10, activation="softmax")])


def load_task(task="mnist-mlp", seed=0, split="test"):
    """(make_model, (x, y), (x_eval, y_eval)) for a task name.

    'mnist-mlp': 784-512-10 ReLU/softmax MLP on all of MNIST (tidu.datasets.mnist.load_data);
    'mnist-cnn': the convnet of examples/mnist_cnn.py (Conv 5×5×32, pool, Conv 5×5×64, pool,
        Dense 128, Dropout 0.5, softmax) on all of MNIST, images (N, 28, 28, 1);
    'mnist-mlp-small': 784-64-10 on the 2,000 + 500 images shipped with tidu (no download);
    'mnist-cnn-small': the convnet on those images.

    split='test' trains on the training set and evaluates on the test set; split='validation'
    holds out the last sixth of the training set (10,000 of 60,000 images) and evaluates on it
    (the rows' test_accuracy is then the validation accuracy), so that hyperparameters can be
    chosen without the test set.
    """
    from tidu.datasets import mnist

    if task not in TASKS:
        raise ValueError(f"compare: unknown task {task!r}; expected one of {TASKS}")
    if split not in SPLITS:
        raise ValueError(f"compare: unknown split {split!r}; expected one of {SPLITS}")
    (x, y), (xt, yt) = mnist.load_subset() if task.endswith("-small") else mnist.load_data()
    if split == "validation":
        n = len(x) - len(x) // 6
        (x, y), (xt, yt) = (x[:n], y[:n]), (x[n:], y[n:])
    shape = (28, 28, 1) if task.startswith("mnist-cnn") else (784,)
    x = (x.reshape((len(x),) + shape) / np.float32(255)).astype(np.float32)
    xt = (xt.reshape((len(xt),) + shape) / np.float32(255)).astype(np.float32)
    y, yt = y.astype(np.int64), yt.astype(np.int64)

    def make_model():
        from tidu import backend

        backend.seed(seed)                                # same initial weights for every run
        model = task_model(task)
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        return model

    return make_model, (x, y), (xt, yt)


def _rule(spec, learning_rate, downpour_learning_rate):
    if isinstance(spec, R.Rule):
        return spec
    name = str(spec).lower()
    if name in ("sgd", "sync", "syncsgd"):
        return R.SyncSGD(learning_rate)
    if name == "asgd":
        return R.ASGD(learning_rate)
    if name in ("dcasgd", "dc-asgd", "dcasgd-a"):
        return R.DCASGD(learning_rate, variant="adaptive")
    if name == "dcasgd-c":
        return R.DCASGD(learning_rate, variant="constant")
    if name == "downpour":
        return R.Downpour(downpour_learning_rate)
    raise ValueError(f"compare: unknown rule {spec!r}; expected sgd, asgd, dcasgd (dcasgd-a), "
                     f"dcasgd-c, downpour or a Rule instance")


def _label(rule):
    if isinstance(rule, R.DCASGD):
        return f"DC-ASGD-{rule.variant[0]}"
    return {"SyncSGD": "SyncSGD", "ASGD": "ASGD", "Downpour": "Downpour"}.get(type(rule).__name__,
                                                                            type(rule).__name__)


def _sequential_key(rule):
    """With one worker SyncSGD, ASGD and DC-ASGD are all sequential SGD, bit for bit (the
    tests check it): one key for them, None for a rule that differs (Downpour's AdaGrad)."""
    if isinstance(rule, (R.SyncSGD, R.ASGD, R.DCASGD)):
        return ("sgd", rule.learning_rate)
    if isinstance(rule, R.Downpour) and rule.server == "sgd" and rule.n_fetch == rule.n_push == 1:
        return ("sgd", rule.learning_rate)
    return None


def _evaluate(model, x, y):
    from tidu.autograd import no_grad
    from tidu.autograd import Tensor

    losses, correct = [], 0
    with no_grad():
        for lo in range(0, len(x), 2000):
            p = np.asarray(model(Tensor(x[lo:lo + 2000])).data, dtype=np.float64)
            yb = y[lo:lo + 2000]
            losses.append(-np.log(np.clip(p[np.arange(len(yb)), yb], 1e-12, None)).sum())
            correct += int((p.argmax(axis=1) == yb).sum())
    return correct / len(x), float(np.sum(losses) / len(x))


def compare(task="mnist-mlp", workers=(1, 4, 8, 16), rules=("sgd", "asgd", "dcasgd", "downpour"),
            updates=2000, seed=0, out="dist.png", learning_rate=0.5, downpour_learning_rate=0.01,
            batch_size=32, schedule="random", eval_every=None, backend="simulated", address=None,
            verbose=1, split="test"):
    """Train every rule with every number of workers; returns the table as a list of dicts
    (rule, M, test_accuracy, test_loss, train_loss, updates, mean_staleness, seconds, split, and
    curve: the (update, accuracy) points) and, with `out`, plots test accuracy against updates
    (one panel per M, the sequential-SGD run dashed in each) into that file (needs matplotlib,
    the extra `plot`)."""
    if isinstance(workers, int):
        workers = (workers,)
    workers = tuple(int(m) for m in workers)
    if not workers or min(workers) < 1:
        raise ValueError(f"compare: expected worker counts >= 1, got {workers!r}")
    if isinstance(rules, (str, R.Rule)):
        rules = (rules,)
    rule_objs = [_rule(r, learning_rate, downpour_learning_rate) for r in rules]
    updates = int(updates)
    if updates < 1:
        raise ValueError(f"compare: expected updates >= 1, got {updates!r}")
    eval_every = int(eval_every or max(1, updates // 20))
    make_model, (x, y), (xt, yt) = load_task(task, seed, split)

    rows, curves, sequential = [], {}, {}
    for M in workers:
        for rule in rule_objs:
            key = _sequential_key(rule) if M == 1 else None
            if key is not None and key in sequential:       # the same run, bit for bit: reuse it
                row = dict(sequential[key], rule=_label(rule))
                rows.append(row)
                curves[(row["rule"], M)] = row["curve"]
                continue
            kw = dict(schedule=schedule) if backend == "simulated" else dict(address=address)
            ps = ParameterServer(rule, num_workers=M, backend=backend, seed=seed, **kw)
            model = make_model()
            acc0, _ = _evaluate(model, xt, yt)
            points, losses, taus, done = [(0, acc0)], [], [], 0
            per_update = M if rule.synchronous else rule.n_push
            t0 = time.perf_counter()
            try:
                while done < updates:
                    n = min(eval_every, updates - done)
                    logs = ps.train_epoch(model, x, y, batch_size=batch_size, steps=n * per_update)
                    done += logs["updates"]
                    losses.append(logs["loss"])
                    taus.append((logs["mean_staleness"], logs["updates"]))
                    points.append((done, _evaluate(model, xt, yt)[0]))
            finally:
                ps.close(model)
            seconds = time.perf_counter() - t0
            acc, test_loss = _evaluate(model, xt, yt)
            row = {"rule": _label(rule), "M": M, "test_accuracy": acc, "test_loss": test_loss,
                   "train_loss": float(losses[-1]), "updates": done,
                   "mean_staleness": float(sum(s * u for s, u in taus) / max(1, sum(u for _, u in taus))),
                   "seconds": seconds, "split": split, "curve": points}
            rows.append(row)
            curves[(row["rule"], M)] = points
            if key is not None:
                sequential[key] = row
            if verbose:
                print(f"{row['rule']:>10}  M={M:<3} test acc {acc:.4f}  test loss {test_loss:.4f}  "
                      f"mean staleness {row['mean_staleness']:.2f}  {seconds:.0f}s", flush=True)
    if out:
        plot(rows, curves, out, title=f"{task}, lr={learning_rate}, batch {batch_size}, {schedule} staleness")
    return rows


def format_table(rows):
    """The table as aligned text (markdown)."""
    lines = ["| rule | M | test accuracy | test loss | train loss | mean staleness |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['rule']} | {r['M']} | {r['test_accuracy']:.4f} | {r['test_loss']:.4f} | "
                     f"{r['train_loss']:.4f} | {r['mean_staleness']:.2f} |")
    return "\n".join(lines)


def plot(rows, curves, out, title=""):
    plt = pyplot("compare(out=...) (or pass out=None)")
    workers = sorted({r["M"] for r in rows})
    labels = list(dict.fromkeys(r["rule"] for r in rows))
    baseline = next((curves[(lab, 1)] for lab in labels if lab == "SyncSGD" and (lab, 1) in curves), None)
    fig, axes = plt.subplots(1, len(workers), figsize=(4.2 * len(workers), 3.6), sharey=True, squeeze=False)
    for ax, M in zip(axes[0], workers):
        for lab in labels:
            if (lab, M) in curves:
                u, a = zip(*curves[(lab, M)])
                ax.plot(u, a, label=lab)
        if baseline is not None and M != 1:
            u, a = zip(*baseline)
            ax.plot(u, a, "k--", linewidth=1, label="sequential SGD")
        ax.set_title(f"M = {M}")
        ax.set_xlabel("server updates")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("test accuracy")
    top = max(a for pts in curves.values() for _, a in pts)
    axes[0][0].set_ylim(max(0.0, top - 0.25), min(1.0, top + 0.02))
    axes[0][-1].legend(loc="lower right", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
