"""fit stops on a non-finite loss with DivergenceError (epoch, step); TerminateOnNaN among the
callbacks takes over instead (Keras's behaviour: stop at the end of the batch, no error)."""
import math
import warnings

import numpy as np
import pytest

from tidu import backend
from tidu.callbacks import LambdaCallback, TerminateOnNaN
from tidu.errors import DivergenceError
from tidu.layers import Dense
from tidu.models import Sequential
from tidu.optimizers import SGD


def _diverging(rng):
    """A regression with a learning rate far too large: the loss grows to inf/NaN in a few steps."""
    backend.seed(0)
    model = Sequential([Dense(16, activation="relu", input_shape=(4,)), Dense(1)])
    model.compile(optimizer=SGD(learning_rate=50.0), loss="mse")
    x = rng.standard_normal((256, 4)).astype(np.float32)
    y = (x.sum(axis=1, keepdims=True) * 10).astype(np.float32)
    return model, x, y


def test_fit_raises_on_nan_loss_naming_epoch_and_step(rng):
    model, x, y = _diverging(rng)
    losses = []
    seen = LambdaCallback(on_train_batch_end=lambda batch, logs: losses.append(logs["loss"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(DivergenceError, match="at epoch 0, step") as e:
            model.fit(x, y, batch_size=8, epochs=3, verbose=0, callbacks=[seen], shuffle=False)
    err = e.value
    assert err.epoch == 0 and err.step >= 1
    assert len(losses) == err.step                            # the steps before were seen, finite
    assert all(math.isfinite(v) for v in losses)
    assert err.rule == "SGD" and err.worker is None
    assert model.history.history == {}                        # no epoch ended


def test_the_failing_steps_update_is_not_applied(rng):
    """The weights after the error are those the failing step started from: a second run
    stopped one step earlier (steps_per_epoch) ends at the same weights, bit for bit."""
    model, x, y = _diverging(rng)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(DivergenceError) as e:
            model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
        again, _, _ = _diverging(np.random.default_rng(0))
        again.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False, steps_per_epoch=e.value.step)
    for a, b in zip(model.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_terminate_on_nan_opts_out(rng):
    model, x, y = _diverging(rng)
    cb = TerminateOnNaN()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        history = model.fit(x, y, batch_size=8, epochs=3, verbose=0, callbacks=[cb], shuffle=False)
    assert model.stop_training and cb.terminated_batch is not None
    assert len(history.history["loss"]) == 1 and not math.isfinite(history.history["loss"][0])


def test_finite_training_is_untouched(rng):
    model, x, y = _diverging(rng)
    model.compile(optimizer=SGD(learning_rate=0.001), loss="mse")
    history = model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    assert all(math.isfinite(v) for v in history.history["loss"])
