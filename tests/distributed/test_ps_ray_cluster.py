"""The Ray backend on a three-node Ray cluster on this machine (ray.cluster_utils.Cluster): the
workers spread over the nodes, the server shard lives on the driver's node (the one node the run
cannot lose), and when another node is removed mid-epoch training goes on with the workers that
are left, losing nothing the server holds."""
import threading
import time

import numpy as np
import pytest

ray = pytest.importorskip("ray")
cluster_utils = pytest.importorskip("ray.cluster_utils")

from tidu.distributed import DCASGD, ParameterServer  # noqa: E402

# Node death is noticed within about a second (Ray's default health check takes 15 s).
FAST_HEALTH_CHECK = {"health_check_initial_delay_ms": 0, "health_check_period_ms": 200,
                     "health_check_failure_threshold": 3}


@pytest.fixture
def cluster():
    if ray.is_initialized():
        pytest.skip("a Ray session is already running in this process")
    c = cluster_utils.Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "include_dashboard": False, "_system_config": FAST_HEALTH_CHECK})
    try:
        nodes = [c.add_node(num_cpus=2) for _ in range(2)]
        c.wait_for_nodes()
        ray.init(address=c.address, logging_level="WARNING")
        yield c, nodes
    finally:
        ray.shutdown()
        c.shutdown()


def test_losing_a_worker_node_mid_epoch_loses_nothing_on_the_server(cluster, make_mlp, data, flat_weights,
                                                                   caplog):
    c, nodes = cluster
    x, y = data
    model = make_mlp()
    ps = ParameterServer(DCASGD(0.1), num_workers=4, backend="ray", seed=0)
    try:
        first = ps.train_epoch(model, x, y, batch_size=8)         # 75 updates
        backend = ps._backend
        driver = ray.get_runtime_context().get_node_id()          # the node the driver joined through
        assert ray.get(backend.shards[0].node.remote()) == driver # the server lives with the driver
        where = ray.get([w.node.remote() for w in backend.workers])
        assert len(set(where)) > 1                                # spread over the machines
        doomed = max((n for n in nodes if n.node_id != driver), key=lambda n: where.count(n.node_id))
        lost = where.count(doomed.node_id)
        assert 0 < lost < 4

        removed_at = []

        def remove_when_busy():                                   # 20 updates into epoch 2
            while backend._version() < 95:
                time.sleep(0.01)
            c.remove_node(doomed)
            removed_at.append(backend._version())

        remover = threading.Thread(target=remove_when_busy, daemon=True)
        remover.start()
        with caplog.at_level("WARNING", logger="tidu.distributed"):
            second = ps.train_epoch(model, x, y, batch_size=8, steps=1000)
        remover.join()
        third = ps.train_epoch(model, x, y, batch_size=8)
        version = backend._version()
        assert np.array_equal(flat_weights(model), backend._weights())   # the model holds the server's w
    finally:
        ps.close(model)
    assert caplog.text.count("going on with") == lost           # each lost worker is logged, then left out
    assert first["workers_alive"] == 4 and second["workers_alive"] == third["workers_alive"] == 4 - lost
    assert first["updates"] == third["updates"] == 75
    assert 95 <= removed_at[0] < 75 + second["updates"]         # gone mid-epoch
    assert second["updates"] >= 1000                            # the lost workers' pushes count too
    assert version == first["updates"] + second["updates"] + third["updates"]   # no update lost
    assert np.isfinite([first["loss"], second["loss"], third["loss"]]).all()
    assert third["loss"] < first["loss"]
