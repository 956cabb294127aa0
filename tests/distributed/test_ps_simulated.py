"""The parameter server's rules on the simulated backend: exact equalities between rules, a
DC-ASGD update worked by hand, schedules, bounded staleness and bad input."""
import numpy as np
import pytest

from tidu.distributed import ASGD, DCASGD, Downpour, ParameterServer, SyncSGD, get
from tidu.distributed import rules as R


def _fit(model, x, y, ps, epochs=2, batch_size=10):
    history = model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0, distributed=ps)
    return history.history


# --- one worker is sequential SGD -----------------------------------------------------------
RULES_M1 = [ASGD(0.1), DCASGD(0.1), DCASGD(0.1, variant="constant", lam=0.5),
            Downpour(0.1, server="sgd"), SyncSGD(0.1)]


@pytest.mark.parametrize("schedule", ["round_robin", "random"])
@pytest.mark.parametrize("rule", RULES_M1, ids=lambda r: repr(r)[:40])
def test_one_worker_is_sequential_sgd_bit_for_bit(rule, schedule, make_mlp, blobs, flat_weights):
    x, y = blobs
    model, ref = make_mlp(), make_mlp(seed=1)
    ref.set_weights(model.get_weights())
    _fit(model, x, y, ParameterServer(rule, num_workers=1, schedule=schedule, shuffle=False, seed=3))
    # by hand: with shuffle=False worker 0's shard is all of x, in order; 96 samples in
    # batches of 10 (the last of 6), two passes, w ← w − η g after every batch
    for _ in range(2):
        for lo in range(0, 96, 10):
            _, grads = ref.compute_loss_and_grads(x[lo:lo + 10], y[lo:lo + 10])
            for p, g in zip(ref.trainable_weights, grads):
                p.data -= rule.learning_rate * g
    assert np.array_equal(flat_weights(model), flat_weights(ref))


def test_one_worker_downpour_with_adagrad_is_not_sgd(make_mlp, blobs, flat_weights):
    """The equality above is not vacuous: another server rule gives other weights."""
    x, y = blobs
    a, b = make_mlp(), make_mlp()
    _fit(a, x, y, ParameterServer(ASGD(0.1), num_workers=1, shuffle=False, seed=3))
    _fit(b, x, y, ParameterServer(Downpour(0.1), num_workers=1, shuffle=False, seed=3))
    assert not np.allclose(flat_weights(a), flat_weights(b))


# --- reproducibility ------------------------------------------------------------------------
def test_same_seed_same_weights_other_seed_other_weights(make_mlp, blobs, flat_weights):
    x, y = blobs
    runs = []
    for seed in (7, 7, 8):
        model = make_mlp()
        ps = ParameterServer(DCASGD(0.1), num_workers=4, speeds=[1.0, 2.0, 0.7, 1.3], jitter=0.3, seed=seed)
        logs = _fit(model, x, y, ps)
        runs.append((flat_weights(model), logs["loss"], ps.staleness_histogram.copy()))
    assert np.array_equal(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1] and np.array_equal(runs[0][2], runs[1][2])
    assert not np.array_equal(runs[0][0], runs[2][0])


# --- DC-ASGD --------------------------------------------------------------------------------
@pytest.mark.parametrize("off", [dict(variant="constant", lam=0.0), dict(variant="adaptive", lambda0=0.0)])
def test_dcasgd_without_compensation_is_asgd(off, make_mlp, blobs, flat_weights):
    x, y = blobs
    a, b, c = make_mlp(), make_mlp(), make_mlp()
    for model, rule in ((a, ASGD(0.2)), (b, DCASGD(0.2, **off)), (c, DCASGD(0.2))):
        ps = ParameterServer(rule, num_workers=4, schedule="random", seed=11)
        _fit(model, x, y, ps)
        assert ps.staleness_histogram[2:].sum() > 0     # stale gradients did happen
    assert np.array_equal(flat_weights(a), flat_weights(b))
    assert not np.allclose(flat_weights(a), flat_weights(c))   # with λ > 0 it compensates


def test_dcasgd_uses_the_pushing_workers_own_backup():
    """Two workers, three updates, worked by hand on a one-weight linear model.

    Model y_hat = w·x, loss (w·x − y)², so g = 2x(w·x − y); every sample has x = 1.
    Worker 0's shard holds samples 0, 1 (y = 0): g = 2w.  Worker 1's holds sample 2
    (y = 0.5): g = 2w − 1.  η = 0.25, λ = 0.5 (constant).  speeds = [2, 1]: worker 0 finishes
    at times 0.5, 1.0, ...; worker 1 at 1.0 (the tie goes to worker 0). Both pull w0 = 1.

      update 0, worker 0, bak0 = 1:    g = 2,  w − bak0 = 0          w1 = 1 − 0.25·2 = 0.5
               worker 0 pulls: bak0 = 0.5
      update 1, worker 0, bak0 = 0.5:  g = 1,  w − bak0 = 0          w2 = 0.5 − 0.25·1 = 0.25
               worker 0 pulls: bak0 = 0.25
      update 2, worker 1, bak1 = 1 (its own pull at t = 0, τ = 2): g = 2·1 − 1 = 1,
               g + λ g² (w2 − bak1) = 1 + 0.5·1·(0.25 − 1) = 0.625   w3 = 0.25 − 0.25·0.625 = 0.09375

    One backup per parameter (MXNet: the weight before the last update, w1 = 0.5) would give
    1 + 0.5·(0.25 − 0.5) = 0.875 and w3 = 0.03125; plain ASGD w3 = 0.25 − 0.25 = 0.
    """
    from tidu import backend
    from tidu.layers import Dense
    from tidu.models import Sequential

    backend.seed(0)
    model = Sequential([Dense(1, use_bias=False, input_shape=(1,))])
    model.compile(optimizer="sgd", loss="mse")
    model.set_weights([np.array([[1.0]], dtype=np.float32)])
    x = np.ones((3, 1), dtype=np.float32)
    y = np.array([[0.0], [0.0], [0.5]], dtype=np.float32)
    ps = ParameterServer(DCASGD(0.25, variant="constant", lam=0.5), num_workers=2, speeds=[2.0, 1.0],
                         shuffle=False, seed=0)
    logs = model.fit(x, y, batch_size=1, epochs=1, verbose=0, distributed=ps).history
    assert model.get_weights()[0][0, 0] == np.float32(0.09375)
    assert logs["updates"] == [3]
    assert ps.staleness_histogram.tolist() == [2, 0, 1]


# --- Downpour -------------------------------------------------------------------------------
def test_downpour_fetch_push_every_step_with_sgd_server_is_asgd(make_mlp, blobs, flat_weights):
    x, y = blobs
    a, b = make_mlp(), make_mlp()
    _fit(a, x, y, ParameterServer(ASGD(0.1), num_workers=4, schedule="random", seed=5))
    _fit(b, x, y, ParameterServer(Downpour(0.1, n_fetch=1, n_push=1, server="sgd"), num_workers=4,
                                  schedule="random", seed=5))
    assert np.array_equal(flat_weights(a), flat_weights(b))


def test_downpour_local_steps_and_accumulated_pushes(make_mlp, blobs):
    x, y = blobs
    model = make_mlp()
    ps = ParameterServer(Downpour(0.05, n_fetch=3, n_push=2), num_workers=3, seed=0)
    logs = _fit(model, x, y, ps, epochs=3)
    assert sum(logs["updates"]) == 15                     # 30 steps, 10 per worker, a push every 2nd
    assert logs["loss"][-1] < logs["loss"][0]
    assert ps.staleness_histogram.sum() == sum(logs["updates"])


# --- shards ---------------------------------------------------------------------------------
@pytest.mark.parametrize("rule", [SyncSGD(0.1, backup_workers=1), DCASGD(0.1), Downpour(0.05)],
                         ids=["sync", "dcasgd", "downpour"])
def test_sharded_server_equals_one_server(rule, make_mlp, blobs, flat_weights):
    x, y = blobs
    a, b = make_mlp(), make_mlp()
    _fit(a, x, y, ParameterServer(rule, num_workers=4, num_shards=1, seed=2))
    _fit(b, x, y, ParameterServer(rule, num_workers=4, num_shards=3, seed=2))
    assert np.array_equal(flat_weights(a), flat_weights(b))


# --- schedules and staleness ------------------------------------------------------------------
def test_round_robin_staleness_is_m_minus_one(make_mlp, blobs):
    x, y = blobs
    ps = ParameterServer(ASGD(0.05), num_workers=4, seed=0)
    logs = _fit(make_mlp(), x, y, ps)
    # the first round: staleness 0, 1, 2, 3; then always 3
    assert ps.staleness_histogram.tolist() == [1, 1, 1, sum(logs["updates"]) - 3]
    assert logs["max_staleness"] == [3, 3]


def test_fixed_delay_is_round_robin_over_delay_plus_one_workers(make_mlp, blobs, flat_weights):
    x, y = blobs
    a, b = make_mlp(), make_mlp()
    pa = ParameterServer(ASGD(0.05), schedule=("fixed", 2), seed=0)
    _fit(a, x, y, pa)
    _fit(b, x, y, ParameterServer(ASGD(0.05), num_workers=3, seed=0))
    assert pa.num_workers == 3
    assert np.array_equal(flat_weights(a), flat_weights(b))
    assert ParameterServer(ASGD(0.05), delay=2).num_workers == 3


def test_sync_sgd_has_no_staleness_and_backup_workers_drop_stragglers(make_mlp, blobs):
    x, y = blobs
    ps = ParameterServer(SyncSGD(0.2, backup_workers=1), num_workers=4, speeds=[1, 1, 1, 0.1], seed=0)
    logs = _fit(make_mlp(), x, y, ps, epochs=3)
    assert logs["updates"] == [3, 3, 3]                  # 10 steps per epoch, 4 per round
    assert ps.staleness_histogram.tolist() == [9]
    assert logs["loss"][-1] < logs["loss"][0]


@pytest.mark.parametrize("setting", [dict(schedule="random", num_workers=8),
                                     dict(speeds=[8.0, 1.0, 1.0, 1.0, 0.5], num_workers=5)],
                         ids=["random", "speeds"])
def test_max_staleness_bounds_the_observed_staleness(setting, make_mlp, blobs):
    x, y = blobs
    free = ParameterServer(ASGD(0.05), seed=4, **setting)
    _fit(make_mlp(), x, y, free, epochs=3)
    assert len(free.staleness_histogram) - 1 > 2         # unbounded, it goes past 2
    bounded = ParameterServer(ASGD(0.05), seed=4, max_staleness=2, **setting)
    logs = _fit(make_mlp(), x, y, bounded, epochs=3)
    assert len(bounded.staleness_histogram) - 1 <= 2
    assert max(logs["max_staleness"]) <= 2
    assert bounded.staleness_histogram.sum() == sum(logs["updates"]) == 30


def test_max_staleness_zero_is_sequential(make_mlp, blobs, flat_weights):
    x, y = blobs
    model = make_mlp()
    ps = ParameterServer(DCASGD(0.1), num_workers=4, schedule="random", max_staleness=0, seed=1)
    _fit(model, x, y, ps)
    assert ps.staleness_histogram.tolist() == [20]


def test_logs_and_histogram(make_mlp, blobs):
    x, y = blobs
    ps = ParameterServer(DCASGD(0.1), num_workers=4, schedule="random", seed=0)
    logs = _fit(make_mlp(), x, y, ps, epochs=4)
    for key in ("loss", "updates", "updates_per_sec", "mean_staleness", "max_staleness"):
        assert len(logs[key]) == 4
    assert logs["updates"] == [10] * 4
    assert ps.staleness_histogram.sum() == 40
    assert logs["loss"][-1] < logs["loss"][0]
    assert all(u > 0 for u in logs["updates_per_sec"])


def test_rule_names_give_default_settings(make_mlp, blobs):
    x, y = blobs
    for name, cls in (("sgd", SyncSGD), ("sync", SyncSGD), ("asgd", ASGD), ("dcasgd", DCASGD),
                      ("downpour", Downpour)):
        ps = get(name)
        assert isinstance(ps, ParameterServer) and isinstance(ps.rule, cls)
        assert ps.num_workers == 4 and ps.backend_name == "simulated"
    assert get(DCASGD(0.3)).rule.learning_rate == 0.3
    ps = ParameterServer("asgd")
    assert get(ps) is ps
    model = make_mlp()
    before = model.get_weights()
    _fit(model, x, y, "dcasgd", epochs=1)
    assert not np.array_equal(before[0], model.get_weights()[0])


# --- bad input ------------------------------------------------------------------------------
@pytest.mark.parametrize("make, error, match", [
    (lambda: ParameterServer("asgd", num_workers=0), ValueError, "num_workers"),
    (lambda: ParameterServer("asgd", num_workers=2.5), TypeError, "num_workers"),
    (lambda: Downpour(0.1, n_push=0), ValueError, "n_push"),
    (lambda: Downpour(0.1, n_fetch=0), ValueError, "n_fetch"),
    (lambda: Downpour(0.1, server="adam"), ValueError, "server"),
    (lambda: get("adam"), ValueError, "unknown rule 'adam'"),
    (lambda: get(3), TypeError, "rule name"),
    (lambda: R.get(["asgd"]), TypeError, "rule name"),
    (lambda: ParameterServer("asgd", backend="mpi"), ValueError, "unknown backend 'mpi'"),
    (lambda: ParameterServer("asgd", address="auto"), ValueError, "backend='ray'"),
    (lambda: ParameterServer("asgd", backend="ray", schedule="random"), ValueError, "simulated backend"),
    (lambda: ParameterServer("asgd", schedule="fifo"), ValueError, "unknown schedule"),
    (lambda: ParameterServer("asgd", num_workers=3, delay=1), ValueError, "fixed delay"),
    (lambda: ParameterServer("asgd", num_workers=2, speeds=[1.0]), ValueError, "speeds"),
    (lambda: ParameterServer("asgd", num_workers=2, speeds=[1.0, 0.0]), ValueError, "speeds"),
    (lambda: ParameterServer("asgd", max_staleness=-1), ValueError, "max_staleness"),
    (lambda: ParameterServer("asgd", checkpoint_every=10), ValueError, "checkpoint_dir"),
    (lambda: ParameterServer(SyncSGD(0.1, backup_workers=2), num_workers=2), ValueError, "backup"),
    (lambda: ASGD(learning_rate=0.0), ValueError, "learning_rate"),
    (lambda: DCASGD(0.1, variant="fancy"), ValueError, "variant"),
    (lambda: DCASGD(0.1, ms_decay=1.0), ValueError, "ms_decay"),
    (lambda: DCASGD(0.1, lam=-1.0), ValueError, "lam"),
])
def test_bad_settings_are_refused(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_uncompiled_model_is_refused_before_anything_changes(blobs):
    from tidu import backend
    from tidu.layers import Dense
    from tidu.models import Sequential

    x, y = blobs
    backend.seed(0)
    model = Sequential([Dense(3, activation="softmax", input_shape=(8,))])
    before = model.get_weights()
    ps = ParameterServer("asgd", num_workers=2)
    with pytest.raises(ValueError, match="not compiled"):
        ps.train_epoch(model, x, y, batch_size=8)
    with pytest.raises((ValueError, RuntimeError), match="compile"):
        model.fit(x, y, epochs=1, verbose=0, distributed=ps)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_ray_backend_without_ray_names_the_extra(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    with pytest.raises(ImportError, match=r"pip install tidu\[distributed\]"):
        ParameterServer("dcasgd", backend="ray")
