"""The Ray backend's server shard: one actor per slice of the weight vector (ray_backend.py
starts them; the rule's math is in rules.py).

A shard applies each push as it arrives (Ray runs one call of an actor at a time, so the
updates of a shard are sequential), keeps the bounded-staleness admission (shard 0) and saves
and restores checkpoints. Workers on its machine push and pull through their shared-memory
mailboxes (mailbox.py: push_box, pull_box send a few bytes); the others send arrays (push, pull).
"""
import logging
import os
import warnings
from collections import deque

import numpy as np

from tidu.distributed import checkpoint as ckpt
from tidu.distributed import mailbox
from tidu.distributed import rules as _rules

log = logging.getLogger("tidu.distributed")
REMOTE = "remote"   # push_box/pull_box: this worker's mailbox is out of reach; send arrays


class ShardServer:
    """Server shard k: the slice w[lo:hi], the rule's state for it and its version counter.

    pull(m, window) -> (w, version) or None        None: wait (bounded staleness, shard 0 only)
    push(m, g, v_window, pull) -> (τ, w, version) or None
    pull_box(m, box, lo, window) -> version, None or REMOTE      the same through worker m's
    push_box(m, box, lo, v_window, pull) -> (τ, pulled, version), None or REMOTE    mailbox
    apply_mean(g) -> w                              SyncSGD: one synchronous update
    """

    def __init__(self, rule, w, num_workers, index, checkpoint_dir, checkpoint_every, keep,
                 max_staleness, restore, signature):
        import ray

        self.rule, self.index, self.M = rule, index, num_workers
        self.w = np.array(w, copy=True)
        self.state = rule.init_state(self.w, num_workers)
        self.tmp = np.empty((2, self.w.size), dtype=self.w.dtype)
        self.version = 0
        self.dir, self.every, self.keep = checkpoint_dir, checkpoint_every, keep
        self.S = max_staleness if index == 0 else None      # shard 0 keeps the staleness bound
        self.v_window, self.in_flight = [0] * num_workers, [False] * num_workers
        self.pushes = [0] * num_workers                     # updates applied, per worker
        self.waiting = deque()                              # workers waiting to start a window
        self.signature = signature
        self.diverged = None                                # the DivergenceError that stopped it
        self.prefix = f"shard{index}"
        self.boxes = {}                                     # m -> (address, (g, w) views) or None
        with warnings.catch_warnings():                     # Ray warns inside its own property
            warnings.simplefilter("ignore", DeprecationWarning)
            restarted = ray.get_runtime_context().was_current_actor_reconstructed
        if restore or restarted:
            path = ckpt.latest(self.dir, self.prefix)
            if path is not None:
                self._load(path)
            if restarted:
                log.warning("server shard %d restarted from %s", index, path or "its initial weights")

    # --- bounded staleness (shard 0) --------------------------------------------------------
    def _feasible_after_push(self, m):
        ages = sorted(self.version + 1 - self.v_window[j] for j in range(self.M)
                      if self.in_flight[j] and j != m)
        return all(age + r <= self.S for r, age in enumerate(reversed(ages)))

    def _pull(self, m, window):
        if window and self.S is not None:                   # admission, first come first served
            if m not in self.waiting:
                self.waiting.append(m)
            if sum(self.in_flight) > self.S or self.waiting[0] != m:
                return None
            self.waiting.popleft()
            self.v_window[m], self.in_flight[m] = self.version, True
        self.rule.pulled(self.state, m, self.w)
        return self.w, self.version

    def pull(self, m, window=True):
        return self._pull(m, window)

    def push(self, m, g, v_window, pull=False):
        if self.S is not None and not self._feasible_after_push(m):
            return None
        tau = max(0, self.version - v_window)                # < 0 only after a restart from a checkpoint
        self._apply(g, m, tau)
        self.version += 1
        self.pushes[m] += 1
        self.in_flight[m] = False
        self._maybe_save()
        got = self._pull(m, True) if pull else None
        return (tau, None, None) if got is None else (tau, *got)

    # --- the same through the workers' mailboxes ----------------------------------------------
    def _box(self, m, address, lo):
        """Worker m's mailbox, [lo, lo + len(w)) of it, mapped at its first call (again after a
        restart of either side); None if it is out of this process's reach."""
        got = self.boxes.get(m)
        if got is None or got[0] != address:
            got = self.boxes[m] = (address, mailbox.attach(address, lo, lo + self.w.size, self.w.dtype))
        return got[1]

    def pull_box(self, m, address, lo, window=True):
        box = self._box(m, address, lo)
        if box is None:
            return REMOTE
        got = self._pull(m, window)
        if got is None:
            return None
        np.copyto(box[1], got[0])
        return got[1]

    def push_box(self, m, address, lo, v_window, pull=False):
        box = self._box(m, address, lo)
        if box is None:
            return REMOTE
        got = self.push(m, box[0], v_window, pull)
        if got is None:
            return None
        tau, w, version = got
        if w is not None:
            np.copyto(box[1], w)
        return tau, w is not None, version

    def _apply(self, g, m, tau):
        """w ← w − Δ once Δ is known to be finite; else DivergenceError, now and for every later
        push or pull (the shard keeps the weights of its last finite update)."""
        if self.diverged is None:
            with np.errstate(over="ignore", invalid="ignore"):  # the check below reports it
                delta = self.rule.delta(self.state, self.w, g, m, self.tmp)
            if np.isfinite(delta).all():
                self.w -= delta
                return
            self.diverged = _rules.diverged(self.rule, self.version + 1, m, tau, g)
            log.warning("server shard %d: %s", self.index, self.diverged)
        raise self.diverged

    def apply_mean(self, g):
        self._apply(g, None, 0)
        self.version += 1
        self._maybe_save()
        return self.w

    def pushes_of(self, m):
        """How many of worker m's pushes this shard has applied."""
        return self.pushes[m]

    def forget(self, m):
        """Worker m is gone: it no longer holds anyone back."""
        self.in_flight[m] = False
        if m in self.waiting:
            self.waiting.remove(m)

    def weights(self):
        return self.w, self.version

    def node(self):
        """The id of the Ray node this shard runs on (the driver's, unless it could not be)."""
        import ray

        return ray.get_runtime_context().get_node_id()

    # --- checkpoints ----------------------------------------------------------------------
    def _maybe_save(self):
        if self.every and self.version % self.every == 0:
            self.save()

    def save(self):
        arrays = {"w": self.w, **{f"state/{k}": v for k, v in self.state.items()}}
        meta = {"kind": "ray-shard", "index": self.index, "version": self.version,
                "size": int(self.w.size), "config": self.signature}
        path = os.path.join(self.dir, ckpt.file_name(self.prefix, self.version))
        ckpt.save(path, arrays, meta)
        ckpt.prune(self.dir, self.prefix, self.keep)
        return path

    def _load(self, path):
        from tidu.errors import ModelFileError

        arrays, meta = ckpt.load(path)
        if meta.get("kind") != "ray-shard" or meta.get("size") != self.w.size or meta.get("config") != self.signature:
            raise ModelFileError(f"checkpoint {path!r}: not a checkpoint of this server shard "
                                 f"({meta.get('kind')}, {meta.get('size')} weights)")
        np.copyto(self.w, arrays["w"])
        for k, v in self.state.items():
            np.copyto(v, arrays[f"state/{k}"])
        self.version = int(meta["version"])
