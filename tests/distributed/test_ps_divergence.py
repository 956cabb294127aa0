"""Divergence stops the parameter server: a non-finite update is refused before it is applied,
DivergenceError names the rule, the update, the worker and its staleness, and the model keeps
the weights of the last finite update (the issue's setting: round robin, τ = 7, DC-ASGD-a in
the paper's form, whose λ0/(√MeanSquare + ε) overflows where MeanSquare is ~0)."""
import warnings

import numpy as np
import pytest

from tidu import backend
from tidu.distributed import ASGD, DCASGD, ParameterServer, SyncSGD
from tidu.errors import DivergenceError
from tidu.layers import Dense
from tidu.models import Sequential


def _mnist_mlp():
    backend.seed(0)
    model = Sequential([Dense(128, activation="relu", input_shape=(784,)),
                        Dense(10, activation="softmax")])
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    return model


def _flat(model):
    return np.concatenate([np.asarray(p.data).ravel() for p in model.trainable_weights])


def test_dcasgd_round_robin_overflow_stops_with_last_finite_weights(mnist_subset):
    (x, y, _), _ = mnist_subset
    model = _mnist_mlp()
    ps = ParameterServer(DCASGD(1.0, form="paper"), num_workers=8, schedule="round_robin", seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                        # no RuntimeWarning before the error
        with pytest.raises(DivergenceError, match="update 32 was not applied|Update 32 was not applied") as e:
            model.fit(x, y, batch_size=32, epochs=3, verbose=0, distributed=ps)
    err = e.value
    assert (err.rule, err.update, err.worker, err.staleness) == ("DCASGD", 32, 7, 7)
    assert "rule's arithmetic" in str(err)                    # g ⊙ g overflowed, g itself finite
    w = _flat(model)
    assert np.isfinite(w).all()

    # the server's state after update 31, reached by a run that stops there on its own
    ref = _mnist_mlp()
    ps2 = ParameterServer(DCASGD(1.0, form="paper"), num_workers=8, schedule="round_robin", seed=0)
    ps2.train_epoch(ref, x, y, batch_size=32, steps=31)
    ps2.close(ref)
    np.testing.assert_array_equal(w, _flat(ref))
    assert ps.staleness_histogram.sum() == 31


def test_nan_gradient_refused_at_first_update(blobs, make_mlp, flat_weights):
    """A learning rate of 1e39 makes η·g inf in float32: update 1 is refused, the weights stay
    the initial ones bit for bit, and the error says the pushed gradient itself was finite."""
    x, y = blobs
    model = make_mlp()
    w0 = flat_weights(model)
    ps = ParameterServer(ASGD(1e39), num_workers=3, schedule="round_robin", seed=0)
    with pytest.raises(DivergenceError) as e:
        model.fit(x, y, batch_size=8, epochs=1, verbose=0, distributed=ps)
    assert (e.value.update, e.value.worker, e.value.staleness) == (1, 0, 0)
    np.testing.assert_array_equal(flat_weights(model), w0)
    assert ps._backend is None                                # closed: the next fit starts afresh


def test_sync_round_names_no_worker(blobs, make_mlp, flat_weights):
    x, y = blobs
    model = make_mlp()
    w0 = flat_weights(model)
    ps = ParameterServer(SyncSGD(1e39), num_workers=2, num_shards=2, seed=0)
    with pytest.raises(DivergenceError, match="synchronous round") as e:
        model.fit(x, y, batch_size=8, epochs=1, verbose=0, distributed=ps)
    assert (e.value.rule, e.value.update, e.value.worker, e.value.staleness) == ("SyncSGD", 1, None, 0)
    np.testing.assert_array_equal(flat_weights(model), w0)


def test_nan_in_the_pushed_gradient_is_named(blobs, make_mlp, flat_weights):
    """Data gone NaN after update 2: worker 0 pulled (and computed its gradient) after update 1,
    before, so update 3 is finite; worker 1 pulls at the next event, on NaN data, and its push,
    update 4, is refused."""
    x, y = blobs

    def server():
        return ParameterServer(ASGD(0.1), num_workers=2, schedule="round_robin", seed=0)

    model = make_mlp()
    ps = server()
    ps.train_epoch(model, x, y, batch_size=8, steps=2)
    ps._backend.sim.x = np.full_like(x, np.nan)               # every later gradient is NaN
    with pytest.raises(DivergenceError, match="holds NaN or inf") as e:
        ps.train_epoch(model, x, y, batch_size=8, steps=4)
    ps.close(model)
    assert (e.value.update, e.value.worker, e.value.staleness) == (4, 1, 1)
    ref = make_mlp()
    ps = server()
    ps.train_epoch(ref, x, y, batch_size=8, steps=3)
    ps.close(ref)
    np.testing.assert_array_equal(flat_weights(model), flat_weights(ref))


def test_ray_refuses_the_first_update(blobs, make_mlp, flat_weights):
    pytest.importorskip("ray")
    x, y = blobs
    model = make_mlp()
    w0 = flat_weights(model)
    ps = ParameterServer(ASGD(1e39), num_workers=2, backend="ray", num_cpus=2)
    with pytest.raises(DivergenceError) as e:
        model.fit(x, y, batch_size=8, epochs=1, verbose=0, distributed=ps)
    assert (e.value.rule, e.value.update, e.value.staleness) == ("ASGD", 1, 0)
    assert e.value.worker in (0, 1)
    np.testing.assert_array_equal(flat_weights(model), w0)
