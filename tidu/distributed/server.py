"""ParameterServer: how `model.fit(..., distributed=...)` trains with a parameter server.

    ps = ParameterServer(DCASGD(0.1), num_workers=8, schedule='random', seed=0)
    model.fit(x, y, batch_size=128, epochs=5, distributed=ps)

`fit` calls `tidu.distributed.get(spec)` before anything starts (every argument is checked
there), then `ps.train_epoch(model, x, y, ...)` once per epoch, then `ps.close(model)`. The
model's compiled loss is what the workers differentiate; its compiled optimizer is not used,
the rule is the update. After every epoch the model holds the server's weights, so validation
and callbacks see them.

An epoch is ceil(N / batch_size) worker steps (mini-batch gradients), all workers together:
one pass over the data, whatever M. A synchronous round is M steps.
"""
import importlib.util
import os

import numpy as np

from tidu._checks import check_int
from tidu.distributed import rules as _rules
from tidu.distributed import checkpoint as ckpt

BACKENDS = ("simulated", "ray")


def ray_available():
    return importlib.util.find_spec("ray") is not None


class ParameterServer:
    """Parameter-server training of a compiled model with an update rule.

    rule            a Rule (SyncSGD, ASGD, DCASGD, Downpour) or its name
    num_workers     M, the workers computing gradients (each on its own shard of the data);
                    default 4, or delay + 1 with `delay`
    backend         'simulated' (one process, exact and reproducible) or 'ray' (actors)
    schedule        simulated only: 'round_robin', 'random' or ('fixed', τ); see simulated.py
    delay           ('fixed', delay) in short: round robin over delay + 1 workers
    speeds, jitter  simulated only: worker m finishes a step every (1 + jitter·u)/speeds[m]
    num_shards      the weight vector is cut into this many server shards, updated independently
    seed            data split, data order and schedule; same seed, same weights (simulated)
    address         ray only: None starts a local Ray; 'auto' or 'HOST:PORT' joins a cluster
                    (RAY_ADDRESS in the environment too)
    max_staleness   bounded staleness S: no push is applied more than S updates late (workers wait)
    checkpoint_dir, checkpoint_every
                    save the server state every N updates (atomic safetensors files); call
                    `restore()` before `fit` to go on from the newest one
    max_restarts    ray only: how often Ray restarts a dead worker actor (server shards restart
                    from their last checkpoint)
    num_cpus        ray only: CPUs of the local Ray that tidu starts (default: os.cpu_count())
    shuffle         shuffle the data before sharding and each worker's shard every pass
    """

    def __init__(self, rule="dcasgd", num_workers=None, backend="simulated", schedule="round_robin",
                 num_shards=1, seed=None, address=None, max_staleness=None, checkpoint_dir=None,
                 checkpoint_every=None, delay=None, speeds=None, jitter=0.0, max_restarts=0,
                 num_cpus=None, shuffle=True, keep_checkpoints=2, failures=None):
        owner = "ParameterServer"
        self.rule = _rules.get(rule)
        if num_workers is None:
            tau = schedule[1] if isinstance(schedule, (tuple, list)) and len(schedule) == 2 else delay
            num_workers = tau + 1 if isinstance(tau, int) and not isinstance(tau, bool) and tau >= 0 else 4
        self.num_workers = check_int(owner, "num_workers", num_workers, 1)
        if backend not in BACKENDS:
            raise ValueError(f"{owner}: unknown backend {backend!r}; expected one of {BACKENDS}")
        self.backend_name = backend
        self.num_shards = check_int(owner, "num_shards", num_shards, 1)
        self.max_staleness = check_int(owner, "max_staleness", max_staleness, 0, allow_none=True)
        self.checkpoint_every = check_int(owner, "checkpoint_every", checkpoint_every, 1, allow_none=True)
        self.max_restarts = check_int(owner, "max_restarts", max_restarts, 0)
        self.num_cpus = check_int(owner, "num_cpus", num_cpus, 1, allow_none=True)
        self.keep_checkpoints = check_int(owner, "keep_checkpoints", keep_checkpoints, 1)
        if seed is not None:
            seed = check_int(owner, "seed", seed, 0)
        self.seed = seed
        if checkpoint_every is not None and checkpoint_dir is None:
            raise ValueError(f"{owner}: checkpoint_every={checkpoint_every} needs a checkpoint_dir")
        if checkpoint_dir is not None and not isinstance(checkpoint_dir, (str, os.PathLike)):
            raise TypeError(f"{owner}: expected checkpoint_dir to be a path, got {type(checkpoint_dir).__name__}")
        self.checkpoint_dir = os.fspath(checkpoint_dir) if checkpoint_dir is not None else None
        if address is not None and not isinstance(address, str):
            raise TypeError(f"{owner}: expected address to be a str ('auto' or 'HOST:PORT'), got {address!r}")
        self.address = address
        self.shuffle = bool(shuffle)
        self.schedule, self.speeds, self.jitter = self._check_schedule(schedule, delay, speeds, jitter)
        if isinstance(self.rule, _rules.SyncSGD) and self.rule.backup_workers >= self.num_workers:
            raise ValueError(f"{owner}: SyncSGD(backup_workers={self.rule.backup_workers}) needs more "
                             f"workers than backups, got num_workers={self.num_workers}")
        if self.max_staleness is not None and self.rule.n_push % self.rule.n_fetch:
            raise ValueError(f"{owner}: max_staleness with Downpour needs n_push to be a multiple of "
                             f"n_fetch (every push window starts with a fetch), got "
                             f"n_fetch={self.rule.n_fetch}, n_push={self.rule.n_push}")
        if backend != "ray" and address is not None:
            raise ValueError(f"{owner}: address={address!r} is for backend='ray'; the simulated "
                             f"backend runs in this process")
        if backend == "ray":
            if schedule != "round_robin" or speeds is not None or delay is not None:
                raise ValueError(f"{owner}: schedule, delay and speeds are for the simulated backend; "
                                 f"on Ray the order of pushes is whatever the machines make it")
            if not ray_available():
                raise ImportError("ParameterServer(backend='ray') needs Ray, which is not installed; "
                                  "install the extra with `pip install tidu[distributed]`")
        self.failures = self._check_failures(failures)
        self.staleness_histogram = np.zeros(0, dtype=np.int64)
        self._backend = None
        self._restore_from = None

    def _check_schedule(self, schedule, delay, speeds, jitter):
        owner, M = "ParameterServer", self.num_workers
        if isinstance(schedule, (tuple, list)):
            if len(schedule) != 2 or schedule[0] != "fixed":
                raise ValueError(f"{owner}: expected schedule ('fixed', τ), got {schedule!r}")
            if delay is not None and delay != schedule[1]:
                raise ValueError(f"{owner}: schedule={schedule!r} and delay={delay!r} disagree")
            schedule, delay = "round_robin", schedule[1]
        elif schedule not in ("round_robin", "random"):
            raise ValueError(f"{owner}: unknown schedule {schedule!r}; expected 'round_robin', "
                             f"'random' or ('fixed', τ)")
        if delay is not None:
            delay = check_int(owner, "delay", delay, 0)
            if schedule != "round_robin" or speeds is not None:
                raise ValueError(f"{owner}: delay={delay} is a round-robin schedule; it does not go with "
                                 f"schedule={schedule!r} or speeds")
            if M != delay + 1:
                raise ValueError(f"{owner}: a fixed delay τ={delay} is round robin over τ + 1 = {delay + 1} "
                                 f"workers, got num_workers={M}")
        if speeds is not None:
            if schedule != "round_robin":
                raise ValueError(f"{owner}: speeds make an event-driven schedule; they do not go with "
                                 f"schedule={schedule!r}")
            speeds = [float(s) for s in speeds]
            if len(speeds) != self.num_workers or not all(np.isfinite(s) and s > 0 for s in speeds):
                raise ValueError(f"{owner}: expected speeds to be {self.num_workers} positive numbers "
                                 f"(one per worker), got {speeds!r}")
        if isinstance(jitter, bool) or not isinstance(jitter, (int, float)) or not 0.0 <= jitter < 1.0:
            raise ValueError(f"{owner}: expected 0 <= jitter < 1, got jitter={jitter!r}")
        if jitter and speeds is None:
            raise ValueError(f"{owner}: jitter varies the step times of `speeds`; give speeds too")
        return schedule, speeds, float(jitter)

    # --- what fit calls -------------------------------------------------------------------
    def _check_failures(self, failures):
        """failures={worker: t}: on the simulated backend, worker m dies once the server has
        applied t updates (the gradient it had in flight is lost, and so is its data shard);
        an asynchronous rule goes on with the others. On Ray, workers die for real."""
        owner = "ParameterServer"
        if failures is None:
            return {}
        if not isinstance(failures, dict):
            raise TypeError(f"{owner}: expected failures as {{worker: update}}, got {failures!r}")
        if self.backend_name != "simulated":
            raise ValueError(f"{owner}: failures= simulates dying workers on the simulated backend; "
                             f"on backend={self.backend_name!r} kill the worker itself")
        if self.rule.synchronous:
            raise ValueError(f"{owner}: failures= needs an asynchronous rule; SyncSGD waits for every "
                             f"worker (a dead one would stall it), got {type(self.rule).__name__}")
        out = {}
        for m, t in failures.items():
            m = check_int(owner, "failures worker", m, 0)
            if m >= self.num_workers:
                raise ValueError(f"{owner}: failures names worker {m}; expected one of "
                                 f"0..{self.num_workers - 1}")
            out[m] = check_int(owner, f"failures[{m}]", t, 0)
        if len(out) >= self.num_workers:
            raise ValueError(f"{owner}: failures would kill all {self.num_workers} workers; at least "
                             f"one must survive")
        return out

    def signature(self):
        """What a checkpoint must match to be restored into this server."""
        return {"rule": type(self.rule).__name__, "rule_config": self.rule.get_config(),
                "num_workers": self.num_workers, "num_shards": self.num_shards,
                "schedule": self.schedule, "speeds": self.speeds, "jitter": self.jitter,
                "max_staleness": self.max_staleness, "shuffle": self.shuffle,
                "failures": {str(m): t for m, t in sorted(self.failures.items())}}

    def restore(self, path=None):
        """Go on from a checkpoint at the next `fit`: `path`, or the newest in checkpoint_dir.
        Returns the file used. A restored run first finishes the epoch it was saved in."""
        if path is None:
            path = ckpt.latest(self.checkpoint_dir, "ckpt" if self.backend_name == "simulated" else "shard0")
            if path is None:
                raise FileNotFoundError(f"ParameterServer.restore: no checkpoint in {self.checkpoint_dir!r}")
        elif not os.path.exists(path):
            raise FileNotFoundError(f"ParameterServer.restore: no file {path!r}")
        ckpt.load(path)  # refuse a corrupt file now, not mid-fit
        self._restore_from = path
        return path

    def _check_model(self, model):
        if not (getattr(model, "compiled", False) or getattr(model, "loss", None) is not None):
            raise ValueError("ParameterServer: the model is not compiled; call model.compile(loss=...) "
                             "first (the workers differentiate the compiled loss; the rule replaces "
                             "the compiled optimizer)")
        if not hasattr(model, "compute_loss_and_grads"):
            raise TypeError(f"ParameterServer: expected a tidu model with compute_loss_and_grads, "
                            f"got {type(model).__name__}")

    def train_epoch(self, model, x, y, batch_size=32, epoch=0, rng=None, callbacks=None, verbose=0,
                    sample_weight=None, steps=None, **unused):
        """Train one epoch, ceil(N / batch_size) worker steps (or `steps`); the epoch's logs:
        loss (mean over the epoch's gradients), updates, updates_per_sec, mean_staleness,
        max_staleness (and sim_time with speeds, workers_alive on Ray). The first call starts
        the workers (and Ray); `close` ends them. verbose is fit's: the progress bar is its."""
        self._check_model(model)
        from tidu import backend as _backend
        if _backend.name != "numpy":
            raise ValueError(f"ParameterServer: runs on the numpy backend, got backend {_backend.name!r}")
        batch_size = check_int("ParameterServer.train_epoch", "batch_size", batch_size, 1)
        if self._backend is None:
            seed = self.seed
            if seed is None:
                source = rng if isinstance(rng, np.random.Generator) else np.random.default_rng()
                seed = int(source.integers(2**63))
            x = np.asarray(x) if not isinstance(x, np.ndarray) else x
            y = np.asarray(y) if not isinstance(y, np.ndarray) else y
            if len(x) != len(y):
                raise ValueError(f"ParameterServer: x and y have different numbers of samples, "
                                 f"{len(x)} and {len(y)}")
            if self.backend_name == "simulated":
                from tidu.distributed.simulated import SimulatedBackend
                backend = SimulatedBackend(self)
            else:
                from tidu.distributed.ray_backend import RayBackend
                backend = RayBackend(self)
            backend.start(model, x, y, batch_size, seed, sample_weight, restore_from=self._restore_from)
            self._backend, self._restore_from, self._n = backend, None, len(x)
        if steps is None:
            steps = -(-self._n // batch_size)
        steps = check_int("ParameterServer.train_epoch", "steps", steps, 1)
        logs = self._backend.run_epoch(steps, model, callbacks)
        self.staleness_histogram = np.asarray(self._backend.histogram, dtype=np.int64)
        return logs

    def close(self, model=None):
        """End the run: the final weights in `model`, workers and actors gone."""
        if self._backend is not None:
            self.staleness_histogram = np.asarray(self._backend.histogram, dtype=np.int64)
            backend, self._backend = self._backend, None
            backend.close(model)

    def __repr__(self):
        return (f"ParameterServer({self.rule!r}, num_workers={self.num_workers}, "
                f"backend={self.backend_name!r}, schedule={self.schedule!r}, num_shards={self.num_shards})")


def get(spec):
    """A ParameterServer from a ParameterServer, a Rule or a rule name (default settings)."""
    if isinstance(spec, ParameterServer):
        return spec
    if isinstance(spec, (_rules.Rule, str)):
        return ParameterServer(_rules.get(spec))
    raise TypeError(f"distributed: expected a ParameterServer, a Rule or a rule name ('sgd', 'asgd', "
                    f"'dcasgd', 'downpour'), got {type(spec).__name__}")
