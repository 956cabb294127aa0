"""The simulated backend: M workers and the server shards in one process, no threads.

Asynchrony is reproduced exactly: a scheduler decides which worker's step completes next and
the server applies that worker's gradient, computed on the weights it pulled; the same seed
gives bit-identical weights. A worker's gradient is computed when it pulls (the model's weights
are views into the server's vector, so nothing is copied) and kept until its push; Downpour's
workers with local steps keep their own copy instead and compute when the step ends. Schedules:

    'round_robin'   every step takes one time unit; workers finish in turn 0, 1, ..., M−1, 0, ...
                    so after the first round every push is exactly τ = M − 1 updates old
    ('fixed', τ)    a fixed delay τ: round robin over M = τ + 1 workers (every gradient after
                    the first τ is computed on w_{t−τ}); `delay=τ` says the same
    'random'        each step takes an exponentially distributed time (mean 1): by the memoryless
                    property the next worker to finish is uniformly random among the M, which is
                    how it is drawn (seeded); τ is then random, with mean M − 1
    speeds=[s_m]    event-driven: worker m finishes a step every 1/s_m time units, times
                    (1 + jitter·u), u ~ U(−1, 1) seeded; ties go to the lower worker index

Staleness τ of a push = server version when it is applied − version of the weights the worker
pulled at the start of the push's window (its first step). With max_staleness=S (bounded
staleness, as in SSP, Ho et al. 2013) a worker whose push would make some other worker's pending
gradient more than S updates old waits, and at most S + 1 workers have a gradient in flight: the
invariant is that the in-flight windows, oldest first (r = 0, 1, ...), satisfy
(t − v_r) + r ≤ S, which the oldest worker's push always keeps, so nobody waits forever.
"""
import logging
import time
from collections import deque

import numpy as np

from tidu.distributed import checkpoint as ckpt
from tidu.distributed import rules as _rules
from tidu.distributed.worker import FlatModel, shard_indices, worker_batches

log = logging.getLogger("tidu.distributed")


def shard_bounds(n, num_shards):
    """[(lo, hi)] of `num_shards` contiguous, near-equal slices of a vector of length n."""
    edges = np.linspace(0, n, num_shards + 1).round().astype(int)
    return [(int(lo), int(hi)) for lo, hi in zip(edges[:-1], edges[1:])]


class Simulation:
    """The state of one simulated run: server weights and rule state per shard, each worker's
    pulled copy, window, step count and data stream, the scheduler's clock and generator."""

    def __init__(self, ps, model, x, y, batch_size, seed, sample_weight=None):
        self.ps, self.rule = ps, ps.rule
        self.x, self.y, self.sample_weight = x, y, sample_weight
        self.batch_size, self.seed = int(batch_size), int(seed)
        self.flat = FlatModel(model)
        self.w = self.flat.get()
        n, M, rule = self.w.size, ps.num_workers, ps.rule
        if ps.num_shards > n:
            raise ValueError(f"ParameterServer: num_shards={ps.num_shards} is more than the model's "
                             f"{n} trainable weights")
        self.bounds = shard_bounds(n, ps.num_shards)
        self.states = [rule.init_state(self.w[lo:hi], M) for lo, hi in self.bounds]
        self.tmp = np.empty((2, n), dtype=self.w.dtype)
        self.g = np.empty(n, dtype=self.w.dtype)
        seq = np.random.SeedSequence(self.seed).spawn(M + 2)
        shards = shard_indices(len(x), M, seq[0], ps.shuffle)
        self.data = [worker_batches(shards[m], batch_size, seq[2 + m], ps.shuffle) for m in range(M)]
        self.rng = np.random.default_rng(seq[1])
        self.t = 0                      # server version: updates applied
        self.steps_total = 0            # gradients computed, all workers together
        self.now = 0.0                  # simulated time
        self.histogram = []             # histogram[τ] = pushes applied with staleness τ
        if not rule.synchronous:
            self.eager = not rule.local_steps
            if self.eager:                       # each worker's gradient, from pull to push
                self.pending = np.zeros((M, n), dtype=self.w.dtype)
                self.pending_loss = [0.0] * M
            else:                                # each worker's own copy w'
                self.w_local = np.repeat(self.w[None, :], M, axis=0)
            self.acc = np.zeros((M, n), dtype=self.w.dtype) if rule.n_push > 1 else None
            self.v = [0] * M             # version of each worker's last fetch
            self.v_window = [0] * M      # version at the start of its current window
            self.steps = [0] * M
            self.in_flight = [False] * M
            self.finish = [0.0] * M
            self.idle = deque(range(M))
            self.dead = []               # workers that died (ps.failures), in order of death

    # --- schedule -------------------------------------------------------------------------
    def _duration(self, m):
        speeds = self.ps.speeds
        if speeds is None:
            return 1.0
        d = 1.0 / speeds[m]
        if self.ps.jitter:
            d *= 1.0 + self.ps.jitter * self.rng.uniform(-1.0, 1.0)
        return d

    def _feasible_after_push(self, m):
        S = self.ps.max_staleness
        ages = sorted(self.t + 1 - self.v_window[j] for j in range(len(self.steps))
                      if self.in_flight[j] and j != m)
        return all(age + r <= S for r, age in enumerate(reversed(ages)))

    def _admit(self):
        S = self.ps.max_staleness
        while self.idle and (S is None or sum(self.in_flight) <= S):
            m = self.idle.popleft()
            self._start_step(m, window=True)

    def _start_step(self, m, window=False):
        if self.steps[m] % self.rule.n_fetch == 0:           # fetch: w_m ← w
            self.v[m] = self.t
            for (lo, hi), state in zip(self.bounds, self.states):
                self.rule.pulled(state, m, self.w[lo:hi])
            if self.eager:                                    # g_m = ∇L(w; next batch of m)
                self.pending_loss[m] = self._gradient(m, self.pending[m])
            else:
                np.copyto(self.w_local[m], self.w)
        if window:
            self.v_window[m] = self.v[m]
            self.in_flight[m] = True
        self.finish[m] = self.now + self._duration(m)

    def _pick(self):
        S, n_push = self.ps.max_staleness, self.rule.n_push
        candidates = [m for m in range(len(self.steps)) if self.in_flight[m] and (
            S is None or (self.steps[m] + 1) % n_push != 0 or self._feasible_after_push(m))]
        if not candidates:  # pragma: no cover - the invariant above rules it out
            raise RuntimeError("simulated ParameterServer: no worker may proceed (staleness bound deadlock)")
        if self.ps.schedule == "random":
            return candidates[int(self.rng.integers(len(candidates)))]
        m = min(candidates, key=lambda j: (self.finish[j], j))
        self.now = max(self.now, self.finish[m])
        return m

    # --- the server -----------------------------------------------------------------------
    def _apply(self, g, m, tau):
        """w ← w − Δ in every shard, once every shard's Δ is known to be finite (one
        np.isfinite pass over Δ per update); else DivergenceError, w untouched."""
        with np.errstate(over="ignore", invalid="ignore"):    # the check below reports it
            deltas = [self.rule.delta(state, self.w[lo:hi], g[lo:hi], m, self.tmp[:, lo:hi])
                      for (lo, hi), state in zip(self.bounds, self.states)]
        if not all(np.isfinite(d).all() for d in deltas):
            raise _rules.diverged(self.rule, self.t + 1, None if self.rule.synchronous else m, tau, g)
        for (lo, hi), d in zip(self.bounds, deltas):
            self.w[lo:hi] -= d
        self.t += 1

    def _record(self, tau):
        if tau >= len(self.histogram):
            self.histogram.extend([0] * (tau + 1 - len(self.histogram)))
        self.histogram[tau] += 1

    def _gradient(self, m, out):
        """Loss of worker m's next mini-batch at the model's current weights; out ← gradient."""
        idx = self.data[m].next()
        sw = None if self.sample_weight is None else self.sample_weight[idx]
        return self.flat.gradient(self.x[idx], self.y[idx], out, sw)

    # --- one event ------------------------------------------------------------------------
    def step_async(self):
        """Complete the next worker's step; returns (loss, τ or None if it pushed nothing)."""
        if self.ps.failures:
            self._kill_due_workers()
        self._admit()
        m = self._pick()
        rule = self.rule
        if self.eager:
            g, loss = self.pending[m], self.pending_loss[m]
        else:
            g = self.g
            self.flat.bind(self.w_local[m])
            loss = self._gradient(m, g)
            self.flat.bind(self.w)
            self.w_local[m] -= np.multiply(g, rule.learning_rate, out=self.tmp[0])  # w'_m ← w'_m − η g
        self.steps_total += 1
        self.steps[m] += 1
        if self.acc is not None:
            self.acc[m] += g                                  # Δ_m ← Δ_m + g
        if self.steps[m] % rule.n_push:
            self._start_step(m)                               # same window, next step
            return loss, None
        tau = self.t - self.v_window[m]
        self._apply(g if self.acc is None else self.acc[m], m, tau)
        self._record(tau)
        if self.acc is not None:
            self.acc[m][:] = 0
        self.in_flight[m] = False
        self.idle.append(m)
        return loss, tau

    def _kill_due_workers(self):
        """Workers whose time in ps.failures has come die: whatever they had in flight is lost."""
        for m, t in self.ps.failures.items():
            if t <= self.t and m not in self.dead:
                self.dead.append(m)
                self.in_flight[m] = False
                if m in self.idle:
                    self.idle.remove(m)
                if self.acc is not None:
                    self.acc[m][:] = 0
                log.warning("simulated ParameterServer: worker %d died after update %d; training goes "
                            "on with %d workers", m, self.t, len(self.steps) - len(self.dead))

    def step_sync(self):
        """One synchronous round: the first M − b workers' gradients on w, averaged, applied."""
        M, b = self.ps.num_workers, self.rule.backup_workers
        kept = self._kept(M, b)
        g, acc, losses = self.g, self.tmp[1], []
        for m in range(M):                                    # all on w (the model's weights)
            if m not in kept:
                self.data[m].next()                     # a straggler's batch is lost
                continue
            sw = None
            idx = self.data[m].next()
            if self.sample_weight is not None:
                sw = self.sample_weight[idx]
            losses.append(self.flat.gradient(self.x[idx], self.y[idx], g, sw))  # g_m(w)
            if len(losses) == 1:
                np.copyto(acc, g)
            else:
                with np.errstate(over="ignore", invalid="ignore"):
                    acc += g                                  # Σ_{m∈S} g_m
        self.steps_total += M
        with np.errstate(over="ignore", invalid="ignore"):    # _apply checks the update
            mean = np.divide(acc, len(kept), out=self.g)      # (1/|S|) Σ g_m
        self._apply(mean, 0, 0)
        self._record(0)
        return float(np.mean(losses)), 0

    def _kept(self, M, b):
        if b == 0:
            if self.ps.speeds is not None:
                self.now += max(self._duration(m) for m in range(M))
            return set(range(M))
        if self.ps.speeds is not None:                        # the M − b fastest this round
            d = [(self._duration(m), m) for m in range(M)]
            fastest = sorted(d)[:M - b]
            self.now += fastest[-1][0]
            return {m for _, m in fastest}
        if self.ps.schedule == "random":
            dropped = self.rng.choice(M, size=b, replace=False)
            return set(range(M)) - {int(m) for m in dropped}
        start = self.t * b                                    # round robin: the dropped rotate
        return set(range(M)) - {(start + i) % M for i in range(b)}

    # --- checkpoints ----------------------------------------------------------------------
    def state(self):
        arrays = {"w": self.w}
        for k, state in enumerate(self.states):
            arrays.update({f"shard{k}/{name}": a for name, a in state.items()})
        data_meta = []
        for m, d in enumerate(self.data):
            a, meta = d.get_state()
            arrays[f"data{m}/order"] = a["order"]
            arrays[f"data{m}/indices"] = d.indices
            data_meta.append(meta)
        meta = {"kind": "simulation", "t": self.t, "steps_total": self.steps_total, "now": self.now,
                "seed": self.seed, "histogram": self.histogram, "rng": self.rng.bit_generator.state,
                "data": data_meta, "config": self.ps.signature(), "size": int(self.w.size)}
        if not self.rule.synchronous:
            if self.eager:
                arrays["pending"] = self.pending
                meta["pending_loss"] = self.pending_loss
            else:
                arrays["w_local"] = self.w_local
            if self.acc is not None:
                arrays["acc"] = self.acc
            meta.update(v=self.v, v_window=self.v_window, steps=self.steps, in_flight=self.in_flight,
                        finish=self.finish, idle=list(self.idle), dead=self.dead)
        return arrays, meta

    def load_state(self, arrays, meta, path):
        from tidu.errors import ModelFileError

        if meta.get("kind") != "simulation" or meta.get("size") != self.w.size:
            raise ModelFileError(f"checkpoint {path!r}: it holds {meta.get('size')} weights of a "
                                 f"{meta.get('kind')!r} run; this model has {self.w.size}")
        if meta["config"] != self.ps.signature():
            raise ModelFileError(f"checkpoint {path!r}: saved with {meta['config']}, "
                                 f"this ParameterServer is {self.ps.signature()}")
        try:
            np.copyto(self.w, arrays["w"])
            for k, state in enumerate(self.states):
                for name, a in state.items():
                    np.copyto(a, arrays[f"shard{k}/{name}"])
            for m, d in enumerate(self.data):
                d.indices = arrays[f"data{m}/indices"].astype(np.int64)
                d.set_state({"order": arrays[f"data{m}/order"]}, meta["data"][m])
            if not self.rule.synchronous:
                if self.eager:
                    np.copyto(self.pending, arrays["pending"])
                    self.pending_loss = list(meta["pending_loss"])
                else:
                    np.copyto(self.w_local, arrays["w_local"])
                if self.acc is not None:
                    np.copyto(self.acc, arrays["acc"])
                self.v, self.v_window, self.steps = list(meta["v"]), list(meta["v_window"]), list(meta["steps"])
                self.in_flight, self.finish = list(meta["in_flight"]), list(meta["finish"])
                self.idle = deque(meta["idle"])
                self.dead = list(meta.get("dead", []))
        except (KeyError, ValueError) as e:
            raise ModelFileError(f"checkpoint {path!r}: incomplete or of another shape ({e})") from e
        self.t, self.steps_total, self.now = meta["t"], meta["steps_total"], meta["now"]
        self.histogram = list(meta["histogram"])
        self.rng.bit_generator.state = meta["rng"]

    def save_checkpoint(self, directory, keep=2):
        arrays, meta = self.state()
        path = f"{directory}/{ckpt.file_name('ckpt', self.t)}"
        ckpt.save(path, arrays, meta)
        ckpt.prune(directory, "ckpt", keep)
        return path


class SimulatedBackend:
    """Runs epochs of a Simulation for ParameterServer.train_epoch."""

    def __init__(self, ps):
        self.ps = ps
        self.sim = None

    def start(self, model, x, y, batch_size, seed, sample_weight=None, restore_from=None):
        sim = Simulation(self.ps, model, x, y, batch_size, seed, sample_weight)
        if restore_from is not None:
            arrays, meta = ckpt.load(restore_from)
            if meta.get("seed") is not None and meta["seed"] != sim.seed:
                sim = Simulation(self.ps, model, x, y, batch_size, meta["seed"], sample_weight)
            sim.load_state(arrays, meta, restore_from)
        sim.flat.bind(sim.w)            # all checked: from now on the model's weights are the server's
        self.sim = sim

    def run_epoch(self, steps_per_epoch, model, callbacks=None):
        """Steps until the next epoch boundary: `steps_per_epoch` worker steps (asynchronous
        rules) or ceil(steps_per_epoch / M) rounds (SyncSGD). A run restored from a
        checkpoint taken mid-epoch first finishes that epoch."""
        sim, ps = self.sim, self.ps
        sync = ps.rule.synchronous
        per = -(-steps_per_epoch // ps.num_workers) if sync else steps_per_epoch
        progress = (lambda: sim.t) if sync else (lambda: sim.steps_total)
        target = (progress() // per + 1) * per
        step = sim.step_sync if sync else sim.step_async
        every = ps.checkpoint_every
        losses, taus = [], []
        t0, u0, s0 = time.perf_counter(), sim.t, sim.steps_total
        hooks = _BatchHooks(callbacks, model)
        last = steps_per_epoch - 1                            # a sync round may overshoot the epoch
        while progress() < target:
            hooks.begin(min(sim.steps_total - s0, last))
            loss, tau = step()
            losses.append(loss)
            if tau is not None:
                taus.append(tau)
                if every and sim.t % every == 0:
                    sim.save_checkpoint(ps.checkpoint_dir, ps.keep_checkpoints)
            if hooks.end(min(sim.steps_total - s0 - 1, last), losses):
                break
        seconds = time.perf_counter() - t0                    # the model holds the server's weights
        updates = sim.t - u0
        logs = {"loss": float(np.mean(losses)) if losses else float("nan"),
                "updates": updates,
                "updates_per_sec": updates / seconds if seconds > 0 else float("inf"),
                "mean_staleness": float(np.mean(taus)) if taus else 0.0,
                "max_staleness": int(max(taus)) if taus else 0}
        if ps.speeds is not None:
            logs["sim_time"] = sim.now
        return logs

    @property
    def histogram(self):
        return self.sim.histogram if self.sim is not None else []

    def weights(self):
        return self.sim.w

    def close(self, model):
        if self.sim is not None:
            self.sim.flat.unbind()                            # the model's own arrays, final weights
            self.sim = None


class _BatchHooks:
    """The callbacks' per-batch calls (batch = worker steps so far in the epoch, minus one, so
    a progress bar counts steps), and model.stop_training."""

    def __init__(self, callbacks, model):
        self.model = model
        self.on_begin = getattr(callbacks, "on_train_batch_begin", None) if callbacks is not None else None
        self.on_end = getattr(callbacks, "on_train_batch_end", None) if callbacks is not None else None
        self.total = 0.0

    def begin(self, batch):
        if self.on_begin is not None:
            self.on_begin(batch)

    def end(self, batch, losses):
        """True when training should stop."""
        if self.on_end is not None:
            self.total += losses[-1]
            self.on_end(batch, {"loss": self.total / len(losses)})
        return bool(getattr(self.model, "stop_training", False))
