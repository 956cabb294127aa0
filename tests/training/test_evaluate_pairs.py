"""evaluate's pairs of whole batches (tidu.training.loops._test_pair): where predict would send a
model's batches to the two cores two at a time, evaluate computes batches 2k and 2k + 1 at once
and takes their losses and metrics in order; the logs agree with the batches one after another
to float rounding. On the NumPy path (TIDU_FAST=0), where a model with a convolution pairs."""
import numpy as np
import pytest

import tidu
from tidu.callbacks import Callback
from tidu.kernels import halves
import tidu.training.loops as loops


pytestmark = pytest.mark.usefixtures("numpy_path", "need_pairs")


def _conv_model(**dense):
    m = tidu.Sequential([tidu.layers.Input((12, 12, 1)),
                         tidu.layers.Conv2D(4, 3, activation="relu"),
                         tidu.layers.MaxPooling2D(2), tidu.layers.Flatten(),
                         tidu.layers.Dense(3, activation="softmax", **dense)])
    m.compile(optimizer="sgd", loss="categorical_crossentropy", metrics=["accuracy"])
    return m


def _data(n=250):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((n, 12, 12, 1)).astype(np.float32)
    return x, np.eye(3, dtype=np.float32)[rng.integers(0, 3, n)]


def _counted(monkeypatch):
    """The list that gets a 1 per halves.run made by evaluate."""
    runs, run = [], halves.run
    monkeypatch.setattr(loops.halves, "run", lambda fn: runs.append(1) or run(fn))
    return runs


class _Batches(Callback):
    """Records on_test_batch_end's step and the running loss."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def on_test_batch_end(self, batch, logs=None):
        self.seen.append((batch, logs["loss"]))


def test_evaluate_pairs_a_conv_models_batches(monkeypatch):
    """Five batches (the last one short, alone): two pairs, each a halves.run; the loss, the
    accuracy and every batch's running loss as one batch after another gives them."""
    m, (x, y) = _conv_model(), _data(300)
    runs = _counted(monkeypatch)
    cb = _Batches()
    paired = m.evaluate(x, y, batch_size=64, verbose=0, callbacks=[cb], return_dict=True)
    assert runs == [1, 1]
    monkeypatch.setattr(loops, "_in_pairs", lambda *args: False)
    runs.clear()
    cb_alone = _Batches()
    alone = m.evaluate(x, y, batch_size=64, verbose=0, callbacks=[cb_alone], return_dict=True)
    assert runs == []
    assert [b for b, _ in cb.seen] == [b for b, _ in cb_alone.seen] == [0, 1, 2, 3, 4]
    np.testing.assert_allclose([v for _, v in cb.seen], [v for _, v in cb_alone.seen], rtol=1e-6)
    assert paired["accuracy"] == alone["accuracy"]
    assert paired["loss"] == pytest.approx(alone["loss"], rel=1e-6)


def test_fit_validation_pairs_too(monkeypatch):
    """fit's validation pass is evaluate's: its val_loss as the batches one after another."""
    m, (x, y) = _conv_model(), _data(256)
    runs = _counted(monkeypatch)
    weights = m.get_weights()
    h = m.fit(x[:64], y[:64], batch_size=64, epochs=1, verbose=0, validation_data=(x, y))
    assert runs == [1, 1]
    m.set_weights(weights)
    monkeypatch.setattr(loops, "_in_pairs", lambda *args: False)
    h_alone = m.fit(x[:64], y[:64], batch_size=64, epochs=1, verbose=0, validation_data=(x, y))
    assert h.history["val_loss"][0] == pytest.approx(h_alone.history["val_loss"][0], rel=1e-6)


def test_no_pairs_with_a_batch_begin_hook_or_activity_penalty(monkeypatch):
    """A callback that overrides on_test_batch_begin sees each batch before it is computed, and
    an activity penalty is read off the last forward pass: the batches then go one by one."""

    class Begin(Callback):
        def on_test_batch_begin(self, batch, logs=None):
            pass

    m, (x, y) = _conv_model(), _data(256)
    runs = _counted(monkeypatch)
    m.evaluate(x, y, batch_size=64, verbose=0, callbacks=[Begin()])
    assert runs == []
    penalized = _conv_model(activity_regularizer=tidu.regularizers.L2(0.01))
    penalized.evaluate(x, y, batch_size=64, verbose=0)
    assert runs == []
    m.evaluate(x, y, batch_size=64, verbose=0)       # the same model, no hook: pairs
    assert runs == [1, 1]
