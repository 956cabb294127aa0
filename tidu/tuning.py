"""Learning-rate and batch-size search, as the notes lay them out, plus the LR range test.

The notes' recipe for tuning SGD:
  1. fix the batch size (32), start the learning rate at 1 and divide it by 10 until the loss
     stops oscillating (e.g. at 0.01): that learning rate is lr_base          -> lr_find(method='decade')
  2. with lr_base, find the batch size whose loss falls fastest                  -> batch_size_search
  3. train many epochs with lr_base and momentum; 4. later continue at 0.1·lr_base.
The LR range test (Smith, "Cyclical Learning Rates for Training Neural Networks", 2017) raises
the learning rate exponentially over one pass and suggests the rate where the smoothed loss
falls fastest                                                                     -> lr_find(method='range')

Every search starts each trial from the model's current weights and optimizer state and puts
them back afterwards: the model is left exactly as it was.
"""
import math
import time

import numpy as np

from tidu.saving import Snapshot
from tidu.utils import pyplot


def _check(model, x, y, batch_size):
    if getattr(model, "optimizer", None) is None:
        raise ValueError("tuning: expected a compiled model (call model.compile first)")
    if len(x) != len(y):
        raise ValueError(f"tuning: expected len(x) == len(y), got {len(x)} and {len(y)}")
    if not isinstance(batch_size, int) or batch_size <= 0:
        raise ValueError(f"tuning: expected batch_size to be a positive int, got {batch_size!r}")
    if len(x) < batch_size:
        raise ValueError(f"tuning: expected at least one batch of data ({batch_size} samples), got {len(x)}")


def _loss_of(result):
    return float(result[0] if isinstance(result, (list, tuple)) else result)


def _train_steps(model, x, y, batch_size, steps, rng):
    """`steps` updates on random batches; the loss of each batch before its update."""
    losses = []
    n = len(x)
    order = rng.permutation(n)
    pos = 0
    for _ in range(steps):
        if pos + batch_size > n:
            order, pos = rng.permutation(n), 0
        idx = order[pos:pos + batch_size]
        pos += batch_size
        loss = _loss_of(model.train_on_batch(x[idx], y[idx]))
        losses.append(loss)
        if not math.isfinite(loss):
            break
    return np.array(losses)


def smoothed(losses, beta=0.9):
    """The loss's trend: an exponential moving average with bias correction (as in Smith's LR
    range test), s_t = a_t / (1 − β^t) with a_t = β·a_{t−1} + (1 − β)·loss_t, a_0 = 0."""
    out, avg = np.empty(len(losses)), 0.0
    for t, loss in enumerate(losses, start=1):
        avg = beta * avg + (1 - beta) * loss
        out[t - 1] = avg / (1 - beta**t)
    return out


def _oscillation(losses, beta=0.9):
    """How far the loss jumps above its own trend, relative to its level:
        mean over t of max(loss_t − s_{t−1}, 0) / mean loss,
    with s the smoothed loss (`smoothed`, about the last 1/(1 − β) = 10 batches). A loss that
    falls stays below the trend of the batches before it (0); a loss that jumps about does not.
    Batch-to-batch noise alone scores about half the noise of raw differences, and a steady
    fall hides it, which raw differences (loss_t − loss_{t−1}) do not. Infinite for a loss that
    diverged."""
    if len(losses) < 2 or not np.all(np.isfinite(losses)):
        return math.inf
    rise = np.clip(losses[1:] - smoothed(losses, beta)[:-1], 0, None)
    return float(rise.mean() / max(np.abs(losses).mean(), 1e-12))


class LRFindResult:
    """lr_base (the suggestion) and the table the search measured, with a plot."""

    def __init__(self, method, lr_base, table):
        self.method, self.lr_base, self.table = method, lr_base, table

    def __repr__(self):
        return f"LRFindResult(method={self.method!r}, lr_base={self.lr_base:.3g}, trials={len(self.table)})"

    def plot(self, path):

        plt = pyplot("LRFindResult.plot")
        fig, ax = plt.subplots(figsize=(7, 4.5))
        lrs = [r["learning_rate"] for r in self.table]
        key = "smoothed_loss" if self.method == "range" else "final_loss"
        ax.plot(lrs, [r[key] for r in self.table], "o-" if self.method == "decade" else "-")
        ax.axvline(self.lr_base, color="r", ls="--", label=f"suggested {self.lr_base:.3g}")
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("loss")
        ax.set_title(f"lr_find ({self.method})")
        ax.legend()
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return path


def lr_find(model, x, y, method="decade", batch_size=32, start_lr=1.0, min_lr=1e-6, steps=50,
            tolerance=0.02, max_lr=10.0, seed=0):
    """Find lr_base for the compiled `model` on (x, y).

    method='decade' (the notes): for lr = start_lr, start_lr/10, ... down to min_lr, train
    `steps` updates from the same starting point; the first lr whose loss falls (last fifth of
    the run below the first fifth) and oscillates by at most `tolerance` (how far the batch
    losses land above their smoothed trend, over the mean loss; see _oscillation: judged
    against the trend, not the previous batch, so mini-batch noise alone does not reject a
    rate whose loss falls) is lr_base.
    method='range' (Smith 2017): one run of `steps` updates with lr rising exponentially from
    min_lr to max_lr, stopped once the smoothed loss exceeds 4× its best; lr_base is where the
    smoothed loss falls fastest (steepest negative slope against log lr, before its lowest point).
    Returns an LRFindResult (lr_base, table, plot(path)); the model is left unchanged.
    """
    _check(model, x, y, batch_size)
    if method not in ("decade", "range"):
        raise ValueError(f"lr_find: expected method 'decade' or 'range', got {method!r}")
    if not 0 < min_lr < start_lr:
        raise ValueError(f"lr_find: expected 0 < min_lr < start_lr, got min_lr={min_lr}, start_lr={start_lr}")
    snap = Snapshot.of(model)
    table = []
    try:
        if method == "decade":
            lr_base, lr = None, start_lr
            while lr >= min_lr * (1 - 1e-9):
                snap.restore(model)
                model.optimizer.learning_rate = lr
                losses = _train_steps(model, x, y, batch_size, steps, np.random.default_rng(seed))
                k = max(1, len(losses) // 5)
                falls = bool(np.all(np.isfinite(losses)) and losses[-k:].mean() < losses[:k].mean())
                osc = _oscillation(losses)
                table.append({"learning_rate": lr, "first_loss": float(losses[0]),
                              "final_loss": float(losses[-k:].mean()), "oscillation": osc, "falls": falls})
                if falls and osc <= tolerance:
                    lr_base = lr
                    break
                lr /= 10
            if lr_base is None:
                lr_base = min(table, key=lambda r: (not r["falls"], r["oscillation"]))["learning_rate"]
            return LRFindResult("decade", lr_base, table)

        snap.restore(model)
        rng = np.random.default_rng(seed)
        factor = (max_lr / min_lr) ** (1 / max(steps - 1, 1))
        best, losses = math.inf, []
        n = len(x)
        for i in range(steps):
            lr = min_lr * factor ** i
            model.optimizer.learning_rate = lr
            idx = rng.choice(n, batch_size, replace=False)
            loss = _loss_of(model.train_on_batch(x[idx], y[idx]))
            if not math.isfinite(loss):
                break
            losses.append(loss)
            s = float(smoothed(losses)[-1])
            table.append({"learning_rate": lr, "loss": loss, "smoothed_loss": s})
            best = min(best, s)
            if s > 4 * best:
                break
        if len(table) < 3:
            lr_base = table[0]["learning_rate"] if table else min_lr
        else:
            logs = np.log10([r["learning_rate"] for r in table])
            sm = np.array([r["smoothed_loss"] for r in table])
            slope = np.gradient(sm, logs)
            lowest = int(np.argmin(sm))          # only the descent counts, not a fall after a blow-up
            lr_base = float(table[int(np.argmin(slope[:lowest + 1]))]["learning_rate"])
        return LRFindResult("range", lr_base, table)
    finally:
        snap.restore(model)


def batch_size_search(model, x, y, lr_base, candidates=(32, 64, 128, 256), seconds=2.0, eval_size=1000,
                      seed=0):
    """The notes' step 2: with learning rate lr_base, train each batch size from the same start
    for about `seconds` of wall time and measure how fast the loss on a fixed evaluation subset
    falls: (loss before − loss after) / seconds. Returns (best_batch_size, table); the model is
    left unchanged."""
    if not candidates:
        raise ValueError("batch_size_search: expected at least one candidate batch size, got none")
    for b in candidates:
        _check(model, x, y, b)
    if not lr_base > 0:
        raise ValueError(f"batch_size_search: expected lr_base > 0, got {lr_base!r}")
    snap = Snapshot.of(model)
    rng = np.random.default_rng(seed)
    ev = rng.choice(len(x), min(eval_size, len(x)), replace=False)
    xe, ye = x[ev], y[ev]
    table = []
    try:
        for b in candidates:
            snap.restore(model)
            model.optimizer.learning_rate = lr_base
            before = _loss_of(model.evaluate(xe, ye, batch_size=256, verbose=0))
            trial_rng = np.random.default_rng(seed)
            t0, steps = time.perf_counter(), 0
            while time.perf_counter() - t0 < seconds:
                _train_steps(model, x, y, b, 5, trial_rng)
                steps += 5
            elapsed = time.perf_counter() - t0
            after = _loss_of(model.evaluate(xe, ye, batch_size=256, verbose=0))
            table.append({"batch_size": b, "steps": steps, "seconds": elapsed, "loss_before": before,
                          "loss_after": after, "loss_decrease_per_second":
                          (before - after) / elapsed if math.isfinite(after) else -math.inf})
        best = max(table, key=lambda r: r["loss_decrease_per_second"])["batch_size"]
        return best, table
    finally:
        snap.restore(model)
