"""A simulated worker that dies mid-run: asynchronous training goes on with the others."""
import logging

import numpy as np
import pytest

from tidu.distributed import ASGD, DCASGD, ParameterServer, SyncSGD


@pytest.mark.parametrize("rule", [ASGD(0.1), DCASGD(0.1)])
def test_a_dead_worker_does_not_stop_async_training(rule, make_mlp, blobs, caplog):
    x, y = blobs
    model = make_mlp()
    ps = ParameterServer(rule, num_workers=4, schedule="random", seed=0, failures={1: 5, 3: 20})
    with caplog.at_level(logging.WARNING, logger="tidu.distributed"):
        hist = model.fit(x, y, batch_size=8, epochs=6, verbose=0, distributed=ps)
    assert "worker 1 died after update 5" in caplog.text
    assert "worker 3 died after update 20" in caplog.text
    losses = hist.history["loss"]
    assert losses[-1] < 0.5 * losses[0]
    assert all(u == 12 for u in hist.history["updates"])   # every epoch: 96/8 steps, all pushed


def test_dead_workers_push_nothing_after_they_die(make_mlp, blobs):
    x, y = blobs
    model = make_mlp()
    ps = ParameterServer(ASGD(0.1), num_workers=3, schedule="round_robin", seed=0, failures={0: 0})
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, distributed=ps)
    # worker 0 died before the first update: round robin over the two left gives staleness 1 only
    hist = ps.staleness_histogram
    assert int(np.asarray(hist)[2:].sum()) == 0 and int(np.asarray(hist)[1]) > 0


def test_same_failures_same_weights(make_mlp, blobs, flat_weights):
    x, y = blobs
    runs = []
    for _ in range(2):
        model = make_mlp()
        model.fit(x, y, batch_size=8, epochs=2, verbose=0,
                  distributed=ParameterServer(DCASGD(0.1), num_workers=4, schedule="random", seed=3,
                                              failures={2: 7}))
        runs.append(flat_weights(model))
    np.testing.assert_array_equal(*runs)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(rule=SyncSGD(0.1), failures={0: 3}), ValueError, "asynchronous rule"),
    (dict(rule=ASGD(0.1), failures={4: 3}), ValueError, "worker 4.*0..3"),
    (dict(rule=ASGD(0.1), failures={0: 1, 1: 1, 2: 1, 3: 1}), ValueError, "all 4 workers"),
    (dict(rule=ASGD(0.1), failures=[0]), TypeError, "worker: update"),
    (dict(rule=ASGD(0.1), failures={0: -1}), ValueError, "failures"),
])
def test_bad_failures_are_refused(kwargs, error, match):
    with pytest.raises(error, match=match):
        ParameterServer(num_workers=4, **kwargs)
