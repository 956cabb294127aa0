"""The Ray backend on a real local Ray (num_cpus=2): asynchronous rules train, the weights come
back, a dead worker does not stop training, and tidu leaves no Ray behind that it started."""
import os
import time

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from tidu.distributed import ASGD, DCASGD, ParameterServer, SyncSGD  # noqa: E402


def _accuracy(model, x, y):
    from tidu.autograd import Tensor, no_grad

    with no_grad():
        return float((np.asarray(model(Tensor(x)).data).argmax(axis=1) == y).mean())


def _ray_processes():
    """Command lines of this process's descendants that are Ray's (raylet, gcs_server)."""
    parent = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        parent[int(pid)] = (int(stat.rsplit(")", 1)[1].split()[1]), cmd)
    me, found = os.getpid(), []
    for pid, (ppid, cmd) in parent.items():
        p, seen = ppid, 0
        while p in parent and p != me and seen < 64:
            p, seen = parent[p][0], seen + 1
        if p == me and ("raylet" in cmd or "gcs_server" in cmd):
            found.append(cmd)
    return found


@pytest.mark.skipif(ray.is_initialized(), reason="a Ray session is already running in this process")
def test_starts_its_own_ray_trains_asgd_and_leaves_nothing(make_mlp, data, flat_weights):
    x, y = data
    model = make_mlp()
    before, acc0 = flat_weights(model), _accuracy(model, x, y)
    ps = ParameterServer(ASGD(0.1), num_workers=2, backend="ray", num_cpus=2, seed=0)
    logs = model.fit(x, y, batch_size=8, epochs=3, verbose=0, distributed=ps).history
    assert sum(logs["updates"]) == 225                    # 75 steps per epoch, one push each
    assert logs["loss"][-1] < logs["loss"][0]
    assert ps.staleness_histogram.sum() == 225
    assert not np.array_equal(flat_weights(model), before)  # the server's weights are in the model
    assert _accuracy(model, x, y) > max(0.9, acc0)
    assert not ray.is_initialized()
    for _ in range(100):                                  # raylet and gcs_server are gone
        if not _ray_processes():
            break
        time.sleep(0.2)
    assert _ray_processes() == []


@pytest.mark.skipif(ray.is_initialized(), reason="a Ray session is already running in this process")
def test_without_mailboxes_the_arrays_go_through_ray(monkeypatch, make_mlp, data):
    """TIDU_PS_MAILBOX=0: the shards answer as if on another machine; the workers fall back."""
    x, y = data
    monkeypatch.setenv("TIDU_PS_MAILBOX", "0")            # in the environment of the Ray tidu starts
    model = make_mlp()
    ps = ParameterServer(DCASGD(0.1), num_workers=2, num_shards=2, backend="ray", num_cpus=2, seed=0)
    try:
        first = ps.train_epoch(model, x, y, batch_size=8)
        second = ps.train_epoch(model, x, y, batch_size=8)
        near = ray.get([w.__ray_call__.remote(lambda self: self.near) for w in ps._backend.workers])
    finally:
        ps.close(model)
    assert near == [[False, False], [False, False]]
    assert first["updates"] == second["updates"] == 75
    assert second["loss"] < first["loss"]
    assert _accuracy(model, x, y) > 0.9


@pytest.fixture(scope="module")
def ray_session():
    if not ray.is_initialized():
        ray.init(address="local", num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
                 logging_level="WARNING")
    yield
    ray.shutdown()


def test_dcasgd_with_sharded_server_in_a_running_ray(ray_session, make_mlp, data, flat_weights):
    x, y = data
    model = make_mlp()
    acc0 = _accuracy(model, x, y)
    ps = ParameterServer(DCASGD(0.1), num_workers=2, num_shards=2, backend="ray", seed=0)
    logs = model.fit(x, y, batch_size=8, epochs=3, verbose=0, distributed=ps).history
    assert sum(logs["updates"]) == 225 and logs["workers_alive"] == [2, 2, 2]
    assert logs["loss"][-1] < logs["loss"][0]
    assert _accuracy(model, x, y) > max(0.9, acc0)
    assert ray.is_initialized()                           # a Ray tidu did not start stays up
    assert ps._backend is None


def test_sync_sgd_on_ray_matches_the_simulator(ray_session, make_mlp, data, flat_weights):
    x, y = data
    runs = []
    for backend, shards in (("ray", 1), ("ray", 3), ("simulated", 1)):
        model = make_mlp()
        ps = ParameterServer(SyncSGD(0.1), num_workers=2, num_shards=shards, backend=backend, seed=1)
        model.fit(x, y, batch_size=8, epochs=1, verbose=0, distributed=ps)
        runs.append(flat_weights(model))
    assert np.array_equal(runs[0], runs[1])               # shards: the same arithmetic
    np.testing.assert_allclose(runs[0], runs[2], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("max_restarts", [0, 1])
def test_a_killed_worker_does_not_stop_training(max_restarts, ray_session, make_mlp, data, caplog):
    x, y = data
    model = make_mlp()
    ps = ParameterServer(ASGD(0.1), num_workers=3, backend="ray", seed=0, max_restarts=max_restarts)
    try:
        first = ps.train_epoch(model, x, y, batch_size=8)
        ray.kill(ps._backend.workers[1], no_restart=max_restarts == 0)
        with caplog.at_level("WARNING", logger="tidu.distributed"):
            second = ps.train_epoch(model, x, y, batch_size=8)
            third = ps.train_epoch(model, x, y, batch_size=8)
    finally:
        ps.close(model)
    assert "worker 1 died" in caplog.text                 # logged, then restarted or left out
    assert first["updates"] == second["updates"] == third["updates"] == 75
    assert second["workers_alive"] == third["workers_alive"] == (3 if max_restarts else 2)
    assert third["loss"] < first["loss"]


def test_a_killed_server_shard_restarts_from_its_checkpoint(ray_session, make_mlp, data, tmp_path):
    x, y = data
    model = make_mlp()
    ps = ParameterServer(DCASGD(0.1), num_workers=2, num_shards=2, backend="ray", seed=0,
                         checkpoint_dir=tmp_path, checkpoint_every=10)
    try:
        first = ps.train_epoch(model, x, y, batch_size=8)  # 75 updates: checkpoints at 10, ..., 70
        shard = ps._backend.shards[1]
        ray.kill(shard, no_restart=False)                 # Ray restarts it; it reloads update 70
        second = ps.train_epoch(model, x, y, batch_size=8)
        versions = [ray.get(s.weights.remote())[1] for s in ps._backend.shards]
        near = ray.get([w.__ray_call__.remote(lambda self: self.near) for w in ps._backend.workers])
    finally:
        ps.close(model)
    assert near == [[True, True], [True, True]]           # one machine: g and w through the mailboxes,
    assert first["updates"] == second["updates"] == 75    # opened again by the restarted shard
    assert versions == [150, 145]                         # shard 1 lost the 5 updates after 70
    assert second["loss"] < first["loss"]
    assert sorted(os.listdir(tmp_path)) == ["shard0-000000140.safetensors", "shard0-000000150.safetensors",
                                            "shard1-000000130.safetensors", "shard1-000000140.safetensors"]


def test_max_staleness_on_ray(ray_session, make_mlp, data):
    x, y = data
    model = make_mlp()
    ps = ParameterServer(ASGD(0.1), num_workers=3, backend="ray", seed=0, max_staleness=1)
    logs = model.fit(x, y, batch_size=8, epochs=1, verbose=0, distributed=ps).history
    assert logs["updates"] == [75] and logs["max_staleness"][0] <= 1
    assert len(ps.staleness_histogram) <= 2
