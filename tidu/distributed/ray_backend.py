"""The Ray backend: workers and server shards as Ray actors, on one machine or a cluster.

    driver (model.fit)          server shard actors k = 0..K−1      worker actors m = 0..M−1
    ----------------------      ----------------------------        ---------------------------
    x, y → ray.put once         on the driver's node:               spread over the cluster:
    hands out chunks of         w[lo_k:hi_k], rule state,           model rebuilt from JSON config,
    steps, gathers logs,        version; pull(m) / push(m, g)       its shard of the data, its
    writes weights back         apply the rule at once; save        mailbox (g, w in shared memory);
                                checkpoints every N updates         run(n): fetch, gradient, push
                                                                    (ASGD, DC-ASGD, Downpour)

Asynchronous rules: each worker loops on its own (fetch from every shard, compute a gradient on
its mini-batch, push the slices to the shards, which apply them as they arrive); the driver only
hands out steps in chunks so an epoch ends on time and a dead worker's share is done by the
others. SyncSGD: the driver broadcasts w (ray.put), takes the first M − b gradients to arrive
(ray.wait), averages them and has the shards apply the mean.

Where an update's time goes (DC-ASGD, MNIST MLP 784-512-10: 407,050 float32 = 1.6 MB, batch
128, M = 4 workers of 1 BLAS thread, local Ray of 2 CPUs on a 2-core AMD EPYC; CPU ms per server
update, summed over the processes of each kind, measured from /proc while an epoch ran):

                                  workers   shard   raylet   updates/s
    g and w as Ray objects          8.25    4.33     3.02        90
    shared-memory mailboxes         4.88    2.07     0.03       222

Of a worker's 4.88 ms the gradient is 2.6 (1 thread); of the shard's 2.07 the rule is 1.6 (Δ,
its finiteness check, the backup of w). The rest was Ray moving 1.6 MB each way: a call to an
actor with nothing in it costs 0.8 ms from call to answer, with a 1.6 MB array as its argument
4.2 ms, with one back too 6.3 ms, and ray.put of it 3.0 ms (a memcpy of it: 0.08 ms); every
array over 100 kB goes through the object store (the raylet). So a worker and a shard on the
same machine share memory instead (mailbox.py): the worker writes g into its mailbox, calls
push_box with a few bytes, the shard applies g from there and writes the fresh w back beside
it; pull and push are still one call per step (push returns the new weights). Workers on
other machines, or any with TIDU_PS_MAILBOX=0, send arrays through Ray as before. The server
shards run on the driver's node (the one node the run cannot lose; their checkpoints land
there too), the workers are spread over the cluster. bench/run.py --only ray compares the
backends' updates/s (bench/RESULTS.md).

Ray is started here only when no Ray is running and no address is given (a local instance on
the loopback address); tidu shuts down only a Ray it started or joined itself. A worker that
dies is logged and the others go on (with max_restarts > 0 Ray restarts it, and it fetches
fresh weights); a server shard that dies restarts from its last checkpoint.
"""
import json
import logging
import os
import time

import numpy as np

from tidu.distributed import mailbox
from tidu.distributed import rules as _rules
from tidu.distributed.ray_server import REMOTE, ShardServer
from tidu.distributed.simulated import shard_bounds
from tidu.distributed.worker import FlatModel, shard_indices, worker_batches

log = logging.getLogger("tidu.distributed")
UNAVAILABLE_TIMEOUT = 60.0  # seconds a worker may stay unreachable before it counts as dead

_ACTORS = None


def _ray():
    try:
        import ray
    except ImportError as e:  # pragma: no cover - checked by ParameterServer already
        raise ImportError("ParameterServer(backend='ray') needs Ray; install the extra with "
                          "`pip install tidu[distributed]`") from e
    return ray


def _shard_call(method, *args):
    """ray.get(method.remote(*args)), asked again while the server shard's actor is restarting
    (Ray restarts shards; they reload their last checkpoint)."""
    import ray
    from ray.exceptions import RayActorError

    start = time.monotonic()
    while True:
        try:
            return ray.get(method.remote(*args))
        except RayActorError:
            if time.monotonic() - start > UNAVAILABLE_TIMEOUT:
                raise
            time.sleep(0.05)


def _shard_calls(methods_args):
    """[ray.get(m.remote(*a)) for (m, a)], in parallel; one by one again if a shard restarts."""
    import ray
    from ray.exceptions import RayActorError

    try:
        return ray.get([m.remote(*a) for m, a in methods_args])
    except RayActorError:
        return [_shard_call(m, *a) for m, a in methods_args]


def _divergence(error):
    """The DivergenceError a worker or shard raised, out of Ray's wrapping (None if another)."""
    from tidu.errors import DivergenceError

    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        cause = getattr(error, "cause", None)                 # RayTaskError: the remote exception
        if cause is None and isinstance(error, DivergenceError):
            return error
        error = cause if cause is not None else error.__cause__
    return None


def _model_spec(model):
    """JSON text that rebuilds the model on a worker: architecture, loss, loss weight."""
    from tidu import losses, saving

    loss = getattr(model, "compiled_loss", None) or getattr(model, "loss", None)
    spec = {"model": saving.serialize_model(model), "loss": losses.serialize(loss),
            "loss_weights": getattr(model, "loss_weight", None)}
    return json.dumps(spec)


def _build_model(spec, weights):
    from tidu import losses, saving

    spec = json.loads(spec)
    model = saving.deserialize_model(spec["model"])
    model.compile(optimizer="sgd", loss=losses.deserialize(spec["loss"]), loss_weights=spec["loss_weights"])
    model.set_weights(weights)
    return model


class Worker:
    """Worker m: a copy of the model, its data shard, its loop of fetch / gradient / push."""

    def __init__(self, spec, weights, x, y, indices, batch_size, seed, shuffle, shards, bounds, rule, m,
                 bounded=False):
        self.model = _build_model(spec, weights)
        self.flat = FlatModel(self.model)
        self.x, self.y = x, y
        self.data = worker_batches(indices, batch_size, seed, shuffle)
        self.shards, self.bounds, self.rule, self.m = shards, bounds, rule, m
        n = self.flat.size
        self.w = self.flat.get()
        self.box = mailbox.new(n, self.w.dtype)               # g and w shared with local shards
        self.near = [self.box is not None] * len(shards)     # shard k reads the mailbox (until it says not)
        self.g = self.box.g if self.box is not None else np.empty(n, dtype=self.w.dtype)
        self.acc = np.zeros(n, dtype=self.w.dtype) if rule.n_push > 1 else None
        self.v_fetch = [0] * len(shards)
        self.v_window = [0] * len(shards)
        self.step = 0
        self.need_fetch, self.prefetched = True, False
        self.bounded = bounded                                # max_staleness is set

    def pid(self):
        return os.getpid()

    def node(self):
        """The id of the Ray node this worker runs on."""
        return _ray().get_runtime_context().get_node_id()

    def _fetch(self, window):
        for k, (shard, (lo, hi)) in enumerate(zip(self.shards, self.bounds)):
            while True:
                got = self._pull(k, window)
                if got is not None:
                    break
                time.sleep(0.001)                             # too far ahead: wait
            self.w[lo:hi], self.v_fetch[k] = got
        self.need_fetch = False

    def _pull(self, k, window):
        """Shard k's (w slice, version), or None: wait. Through the mailbox if the shard reaches
        it (a call of a few bytes; the shard writes w there), else w comes back through Ray."""
        lo, hi = self.bounds[k]
        if self.near[k]:
            got = _shard_call(self.shards[k].pull_box, self.m, self.box.address, lo, window)
            if got != REMOTE:
                return None if got is None else (self.box.w[lo:hi], got)
            self.near[k] = False
        return _shard_call(self.shards[k].pull, self.m, window)

    def _push(self, k, delta, v_window, fetch_next):
        """Shard k applies delta[lo:hi]: (τ, its w slice or None, version), or None: wait. The
        mailbox path reads Δ from self.box.g and leaves the fresh w in self.box.w."""
        lo, hi = self.bounds[k]
        if self.near[k]:
            if delta is not self.box.g:
                np.copyto(self.box.g[lo:hi], delta[lo:hi])
            got = _shard_call(self.shards[k].push_box, self.m, self.box.address, lo, v_window, fetch_next)
            if got != REMOTE:
                return None if got is None else (got[0], self.box.w[lo:hi] if got[1] else None, got[2])
            self.near[k] = False
        return _shard_call(self.shards[k].push, self.m, delta[lo:hi], v_window, fetch_next)

    def run(self, n_steps):
        """n_steps steps of the asynchronous loop; the losses and the staleness of each push.

        A step: fetch w from every shard if due (every n_fetch steps), g on the next
        mini-batch, the local step and Δ ← Δ + g (Downpour), and every n_push steps the push
        of Δ, slice by slice; a push that is followed by a fetch asks for the new weights in
        the same call.
        """
        rule, lr = self.rule, self.rule.learning_rate
        losses, taus = [], []
        for _ in range(n_steps):
            window = self.step % rule.n_push == 0             # this step opens a push window
            if self.need_fetch or (self.step % rule.n_fetch == 0 and not self.prefetched):
                self._fetch(window)                           # w' ← w
            self.prefetched = False
            if window:
                self.v_window = list(self.v_fetch)
            idx = self.data.next()
            self.flat.set(self.w)
            losses.append(self.flat.gradient(self.x[idx], self.y[idx], self.g))
            if rule.local_steps:
                self.w -= lr * self.g                         # w' ← w' − η g
            if self.acc is not None:
                self.acc += self.g                            # Δ ← Δ + g
            self.step += 1
            if self.step % rule.n_push:
                continue
            delta = self.g if self.acc is None else self.acc
            if not np.isfinite(delta).all():                  # never pushed, to no shard
                version = _shard_call(self.shards[0].weights)[1]
                raise _rules.diverged(rule, version + 1, self.m, max(0, version - self.v_window[0]), delta)
            fetch_next = self.step % rule.n_fetch == 0
            for k, (lo, hi) in enumerate(self.bounds):
                while True:
                    got = self._push(k, delta, self.v_window[k], fetch_next)
                    if got is not None:
                        break
                    time.sleep(0.001)                         # would leave another worker too stale
                tau, w, version = got
                if k == 0:
                    taus.append(tau)
                if w is not None:
                    self.w[lo:hi], self.v_fetch[k] = w, version
                elif fetch_next:
                    self.need_fetch = True                    # shard 0 said wait: fetch again later
            self.prefetched = fetch_next and not self.need_fetch
            if self.acc is not None:
                self.acc[:] = 0
        if self.bounded:        # between chunks this worker holds nobody back; it fetches anew
            _shard_call(self.shards[0].forget, self.m)
            self.need_fetch, self.prefetched = True, False
        return {"losses": losses, "taus": taus}

    def gradient(self, w):
        """SyncSGD: (loss, g) of the next mini-batch at the broadcast weights w."""
        idx = self.data.next()
        self.flat.set(w)
        loss = self.flat.gradient(self.x[idx], self.y[idx], self.g)
        return loss, self.g


def _actor_classes():
    global _ACTORS
    if _ACTORS is None:
        ray = _ray()
        _ACTORS = (ray.remote(ShardServer), ray.remote(Worker))
    return _ACTORS


class RayBackend:
    """Runs ParameterServer epochs on Ray actors."""

    def __init__(self, ps):
        self.ps = ps
        self.started_ray = False
        self.shards, self.workers, self.alive = [], [], []
        self.histogram = []
        self.model = None
        self.dirty = False

    # --- start ----------------------------------------------------------------------------
    def _init_ray(self):
        ray = _ray()
        if ray.is_initialized():
            return
        address = self.ps.address or os.environ.get("RAY_ADDRESS") or None
        if address is None:
            ray.init(address="local", num_cpus=self.ps.num_cpus or os.cpu_count(), include_dashboard=False,
                     _node_ip_address="127.0.0.1", logging_level=logging.WARNING, log_to_driver=True)
        else:
            ray.init(address=address, logging_level=logging.WARNING)
        self.started_ray = True

    def start(self, model, x, y, batch_size, seed, sample_weight=None, restore_from=None):
        if sample_weight is not None:
            raise ValueError("ParameterServer(backend='ray'): sample_weight is not supported")
        self._init_ray()
        ray = _ray()
        ps, rule = self.ps, self.ps.rule
        ShardActor, WorkerActor = _actor_classes()
        self.model, self.flat = model, FlatModel(model)
        w = self.flat.get()
        M = ps.num_workers
        self.bounds = shard_bounds(w.size, ps.num_shards)
        if ps.num_shards > w.size:
            raise ValueError(f"ParameterServer: num_shards={ps.num_shards} is more than the model's "
                             f"{w.size} trainable weights")
        try:
            spec = _model_spec(model)
        except (NotImplementedError, ValueError, TypeError, AttributeError) as e:
            raise TypeError(f"ParameterServer(backend='ray'): the model cannot be rebuilt on the workers "
                            f"from its config ({e})") from e
        restore = restore_from is not None
        if ps.checkpoint_dir is not None:
            os.makedirs(ps.checkpoint_dir, exist_ok=True)
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        spread = {"scheduling_strategy": "SPREAD"}            # workers: over the cluster's machines
        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
        shard_refs = [ray.put(w[lo:hi]) for lo, hi in self.bounds]
        self.shards = [ShardActor.options(max_restarts=-1, num_cpus=0, scheduling_strategy=here).remote(
            rule, shard_refs[k], M, k, ps.checkpoint_dir, ps.checkpoint_every, ps.keep_checkpoints,
            ps.max_staleness, restore, ps.signature()) for k, (lo, hi) in enumerate(self.bounds)]
        seq = np.random.SeedSequence(seed).spawn(M + 2)
        shards = shard_indices(len(x), M, seq[0], ps.shuffle)
        x_ref, y_ref = ray.put(x), ray.put(y)                 # the data goes to the object store once
        weights = ray.put(model.get_weights())               # and the initial weights too
        index_refs = [ray.put(s) for s in shards]
        # A restarted actor is built again from these same objects: the driver holds every one of
        # them until close(), or Ray may free them and the restart fails (ray-project/ray#53727).
        self.refs = (x_ref, y_ref, weights, index_refs, shard_refs)
        self.workers = [WorkerActor.options(max_restarts=ps.max_restarts, max_task_retries=0, **spread).remote(
            spec, weights, x_ref, y_ref, index_refs[m], batch_size, seq[2 + m], ps.shuffle,
            self.shards, self.bounds, rule, m, ps.max_staleness is not None) for m in range(M)]
        ready = [a.pid.remote() for a in self.workers] + [s.weights.remote() for s in self.shards]
        ray.wait(ready, num_returns=len(ready), timeout=UNAVAILABLE_TIMEOUT)  # built: epochs time training
        self.alive = [True] * M
        self.restarts = [0] * M
        self.unavailable = {}
        if restore:
            self._write_back()

    # --- epochs ---------------------------------------------------------------------------
    def _worker_failed(self, m, error):
        """A call to worker m failed: True if it may be called again (Ray restarts it, or it is
        only unavailable for a moment), False if it is gone for good."""
        from ray.exceptions import ActorUnavailableError

        if isinstance(error, ActorUnavailableError):          # restarting, or a network hiccup
            if m not in self.unavailable:
                log.warning("worker %d died or is unreachable (%s); waiting up to %.0f s for Ray to "
                            "bring it back", m, type(error).__name__, UNAVAILABLE_TIMEOUT)
            since = self.unavailable.setdefault(m, time.monotonic())
            if time.monotonic() - since < UNAVAILABLE_TIMEOUT:
                time.sleep(0.1)
                return True
        self.unavailable.pop(m, None)
        if self.restarts[m] < self.ps.max_restarts and not isinstance(error, ActorUnavailableError):
            self.restarts[m] += 1
            log.warning("worker %d died (%s); Ray restarts it (%d of %d)", m, type(error).__name__,
                        self.restarts[m], self.ps.max_restarts)
            return True
        self.alive[m] = False
        log.warning("worker %d died (%s); going on with %d workers", m, type(error).__name__, sum(self.alive))
        for shard in self.shards:
            shard.forget.remote(m)
        if not any(self.alive):
            raise RuntimeError("ParameterServer(backend='ray'): every worker has died") from error
        return False

    def run_epoch(self, steps_per_epoch, model, callbacks=None):
        self.dirty = True
        t0 = time.perf_counter()
        v0 = self._version()
        if self.ps.rule.synchronous:
            losses, taus = self._sync_epoch(steps_per_epoch)
        else:
            losses, taus = self._async_epoch(steps_per_epoch)
        seconds = time.perf_counter() - t0
        self._write_back()
        for tau in taus:
            if tau >= len(self.histogram):
                self.histogram.extend([0] * (tau + 1 - len(self.histogram)))
            self.histogram[tau] += 1
        updates = self._version() - v0
        return {"loss": float(np.mean(losses)) if losses else float("nan"), "updates": updates,
                "updates_per_sec": updates / seconds if seconds > 0 else float("inf"),
                "mean_staleness": float(np.mean(taus)) if taus else 0.0,
                "max_staleness": int(max(taus)) if taus else 0,
                "workers_alive": int(sum(self.alive))}

    def _async_epoch(self, steps):
        ray = _ray()
        from ray.exceptions import RayActorError, RayTaskError

        live = [m for m in range(len(self.workers)) if self.alive[m]]
        chunk = max(1, min(64, steps // (4 * max(1, len(live)))))
        pending, issued = {}, 0
        losses, taus = [], []
        n_push = self.ps.rule.n_push
        credited = {m: _shard_call(self.shards[0].pushes_of, m) for m in live}

        def submit(m):
            nonlocal issued
            n = min(chunk, steps - issued)
            if self.ps.max_staleness is not None:             # whole push windows per chunk
                n = -(-n // self.ps.rule.n_push) * self.ps.rule.n_push
            if n > 0 and self.alive[m]:
                pending[self.workers[m].run.remote(n)] = (m, n)
                issued += n

        for m in live:
            submit(m)
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            m, n = pending.pop(ready[0])
            try:
                out = ray.get(ready[0])
            except RayTaskError as e:
                raise _divergence(e) or e
            except RayActorError as e:
                # A worker killed mid-chunk may have pushed part of it: the rest goes to the others.
                applied = max(0, _shard_call(self.shards[0].pushes_of, m) - credited[m])
                credited[m] += applied
                issued -= max(0, n - applied * n_push)
                self._worker_failed(m, e)
                for j in range(len(self.workers)):
                    if self.alive[j] and not any(v[0] == j for v in pending.values()):
                        submit(j)
                continue
            self.unavailable.pop(m, None)
            credited[m] += len(out["taus"])                   # one staleness per push
            losses.extend(out["losses"])
            taus.extend(out["taus"])
            submit(m)
        return losses, taus

    def _sync_epoch(self, steps):
        ray = _ray()
        from ray.exceptions import RayActorError, RayTaskError

        b = self.ps.rule.backup_workers
        losses = []
        w = self._weights()
        done = 0
        while done < steps:
            live = [m for m in range(len(self.workers)) if self.alive[m]]
            need = max(1, len(live) - b)
            w_ref = ray.put(w)
            pending = {self.workers[m].gradient.remote(w_ref): m for m in live}
            results = {}
            while len(results) < need and pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                m = pending.pop(ready[0])
                try:
                    results[m] = ray.get(ready[0])
                except RayActorError as e:
                    self._worker_failed(m, e)
            if not results:
                continue
            kept = sorted(results)
            total = np.array(results[kept[0]][1], copy=True)
            with np.errstate(over="ignore", invalid="ignore"):   # checked below
                for m in kept[1:]:
                    total += results[m][1]                   # Σ_{m∈S} g_m
                total /= len(kept)                           # (1/|S|) Σ g_m
            if not np.isfinite(total).all():                 # never pushed, to no shard
                raise _rules.diverged(self.ps.rule, self._version() + 1, None, 0, total)
            try:
                parts = _shard_calls([(s.apply_mean, (total[lo:hi],)) for s, (lo, hi) in zip(self.shards, self.bounds)])
            except RayTaskError as e:
                raise _divergence(e) or e
            w = np.concatenate(parts)
            losses.append(float(np.mean([results[m][0] for m in kept])))
            done += len(live)
        return losses, [0] * len(losses)

    # --- weights --------------------------------------------------------------------------
    def _weights(self):
        parts = _shard_calls([(s.weights, ()) for s in self.shards])
        return np.concatenate([p[0] for p in parts])

    def _version(self):
        return _shard_call(self.shards[0].weights)[1]

    def _write_back(self):
        self.flat.set(self._weights())
        self.dirty = False

    def close(self, model):
        ray = _ray()
        try:
            if self.dirty and self.shards and ray.is_initialized():
                self._write_back()                            # an epoch was cut short
        finally:
            for actor in self.workers + self.shards:
                try:
                    ray.kill(actor)
                except Exception:  # noqa: BLE001 - already gone
                    pass
            self.workers, self.shards = [], []
            self.refs = None
            if self.started_ray:
                ray.shutdown()
                self.started_ray = False
