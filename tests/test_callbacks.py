"""Callbacks: History, EarlyStopping, ReduceLROnPlateau, LearningRateScheduler, ModelCheckpoint,
CSVLogger, TerminateOnNaN, LossExplosion, and the progress line."""
import csv
import os

import numpy as np
import pytest

from tidu import callbacks, layers, models
from tidu.callbacks.progress import final_line, format_duration, keras_bar
from tidu.optimizers import SGD


@pytest.fixture
def data(rng):
    centres = rng.standard_normal((3, 5)) * 3
    labels = rng.integers(0, 3, 120)
    return (centres[labels] + rng.standard_normal((120, 5))).astype(np.float32), labels


def make_model(lr=0.05):
    model = models.Sequential([layers.Dense(8, activation="relu", input_shape=(5,)),
                               layers.Dense(3, activation="softmax")])
    model.compile(SGD(lr), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


class Script(callbacks.Callback):
    """Overwrites logs[key] at each epoch end with the next scripted value (runs before the
    callbacks after it), and records the weights at each epoch end."""

    def __init__(self, key, values):
        super().__init__()
        self.key, self.values, self.weights = key, list(values), []

    def on_epoch_end(self, epoch, logs=None):
        logs[self.key] = self.values[epoch]
        self.weights.append(self.model.get_weights())


def same(a, b):
    return all(np.array_equal(u, v) for u, v in zip(a, b))


def test_early_stopping_patience_and_restore(data):
    x, y = data
    model = make_model()
    script = Script("val_loss", [1.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    stop = callbacks.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    history = model.fit(x, y, epochs=7, verbose=0, validation_split=0.2, callbacks=[script, stop])
    assert len(history.history["loss"]) == 4  # best at epoch 1, no improvement at 2 and 3: stop
    assert stop.stopped_epoch == 3 and stop.best_epoch == 1 and model.stop_training
    assert same(model.get_weights(), script.weights[1])


def test_early_stopping_min_delta_mode_and_baseline(data):
    x, y = data
    model = make_model()
    script = Script("accuracy", [0.5, 0.505, 0.509, 0.6, 0.6, 0.6])
    stop = callbacks.EarlyStopping(monitor="accuracy", patience=2, min_delta=0.01)  # auto: max
    history = model.fit(x, y, epochs=6, verbose=0, callbacks=[script, stop])
    assert len(history.history["loss"]) == 3
    model = make_model()
    stop = callbacks.EarlyStopping(monitor="val_loss", patience=3, baseline=0.1)
    script = Script("val_loss", [1.0, 0.9, 0.8, 0.7, 0.6, 0.5])
    history = model.fit(x, y, epochs=6, verbose=0, validation_split=0.2, callbacks=[script, stop])
    assert len(history.history["loss"]) == 3  # improving, but never below the baseline


def test_a_missing_monitor_lists_the_available_keys_before_training(data):
    x, y = data
    model = make_model()
    before = model.get_weights()
    with pytest.raises(ValueError, match="EarlyStopping: monitor 'val_acc' is not in the logs; "
                                         "available: loss, accuracy"):
        model.fit(x, y, epochs=2, verbose=0, callbacks=[callbacks.EarlyStopping(monitor="val_acc")])
    assert same(before, model.get_weights())
    with pytest.raises(ValueError, match="ReduceLROnPlateau: monitor 'val_loss'.*available: loss, accuracy"):
        model.fit(x, y, epochs=2, verbose=0, callbacks=[callbacks.ReduceLROnPlateau()])


def test_reduce_lr_on_plateau_halves_after_patience(data):
    x, y = data
    model = make_model(lr=0.04)
    script = Script("val_loss", [1.0] * 6)
    plateau = callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=2)
    history = model.fit(x, y, epochs=6, verbose=0, validation_split=0.2, callbacks=[script, plateau])
    assert history.history["learning_rate"] == pytest.approx([0.04, 0.04, 0.04, 0.02, 0.02, 0.01])
    assert model.optimizer.learning_rate == pytest.approx(0.01)  # halved at epochs 2 and 4


def test_reduce_lr_respects_min_lr_and_cooldown(data):
    x, y = data
    model = make_model(lr=0.04)
    script = Script("loss", [1.0] * 6)
    plateau = callbacks.ReduceLROnPlateau(monitor="loss", factor=0.1, patience=1, cooldown=1, min_lr=0.001)
    model.fit(x, y, epochs=6, verbose=0, callbacks=[script, plateau])
    # epoch 1: 0.004; cooldown at 2; epoch 3: 0.001 (min_lr); then it stays
    assert model.optimizer.learning_rate == pytest.approx(0.001)


def test_learning_rate_scheduler(data):
    x, y = data
    model = make_model(lr=0.1)
    seen = []
    sched = callbacks.LearningRateScheduler(lambda epoch, lr: 0.1 / (epoch + 1))
    rec = callbacks.LambdaCallback(on_epoch_end=lambda e, logs: seen.append(model.optimizer.learning_rate))
    model.fit(x, y, epochs=3, verbose=0, callbacks=[sched, rec])
    assert seen == pytest.approx([0.1, 0.05, 0.1 / 3])


def test_loss_explosion_fires_with_a_huge_learning_rate(rng, capsys):
    x = rng.standard_normal((200, 4)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 3.0, 0.5]))[:, None].astype(np.float32)
    model = models.Sequential([layers.Dense(16, activation="tanh", input_shape=(4,)), layers.Dense(1)])
    model.compile(SGD(5.0), "mse")
    before = model.get_weights()
    boom = callbacks.LossExplosion(factor=3.0, restore_best_weights=True)
    history = model.fit(x, y, epochs=20, batch_size=20, verbose=0, callbacks=[boom])
    assert boom.exploded and model.stop_training
    assert len(history.history.get("loss", [])) < 20
    assert "learning rate" in boom.message and "too high" in boom.message
    assert "LossExplosion" in capsys.readouterr().err
    if not history.history.get("loss"):  # exploded in the first epoch: back to the start
        assert same(before, model.get_weights())
    assert all(np.isfinite(w).all() for w in model.get_weights())


def test_loss_explosion_stays_quiet_when_training_is_fine(data):
    x, y = data
    model = make_model()
    boom = callbacks.LossExplosion()
    model.fit(x, y, epochs=3, verbose=0, callbacks=[boom])
    assert not boom.exploded


def test_terminate_on_nan(data, capsys):
    x, y = data
    model = make_model()
    batches = []

    class Poison(callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            batches.append(batch)
            if batch == 2:
                logs["loss"] = float("nan")
    model.fit(x, y, epochs=3, batch_size=10, verbose=0, callbacks=[Poison(), callbacks.TerminateOnNaN()])
    assert batches == [0, 1, 2]
    assert "Invalid loss" in capsys.readouterr().out


def test_csv_logger_writes_one_row_per_epoch_and_appends(data, tmp_path):
    x, y = data
    path = tmp_path / "log.csv"
    model = make_model()
    model.fit(x, y, epochs=3, verbose=0, validation_split=0.25, callbacks=[callbacks.CSVLogger(path)])
    rows = list(csv.reader(open(path)))
    assert rows[0] == ["epoch", "accuracy", "loss", "val_accuracy", "val_loss"]
    assert [r[0] for r in rows[1:]] == ["0", "1", "2"]
    assert float(rows[3][2]) == pytest.approx(model.history.history["loss"][2])
    model.fit(x, y, epochs=5, initial_epoch=3, verbose=0, validation_split=0.25,
              callbacks=[callbacks.CSVLogger(path, append=True)])
    rows = list(csv.reader(open(path)))
    assert [r[0] for r in rows] == ["epoch", "0", "1", "2", "3", "4"]


def test_model_checkpoint_writes_loadable_files_atomically(data, tmp_path):
    x, y = data
    model = make_model()
    pattern = str(tmp_path / "ckpt-{epoch:02d}.tidu")
    model.fit(x, y, epochs=2, verbose=0, callbacks=[callbacks.ModelCheckpoint(pattern, monitor="loss")])
    assert sorted(os.listdir(tmp_path)) == ["ckpt-01.tidu", "ckpt-02.tidu"]  # no temporary files left
    loaded = models.load_model(tmp_path / "ckpt-02.tidu")
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_model_checkpoint_save_best_only_and_weights_only(data, tmp_path):
    x, y = data
    model = make_model()
    script = Script("val_loss", [1.0, 0.5, 0.7, 0.4])
    path = tmp_path / "best.weights.safetensors"
    ckpt = callbacks.ModelCheckpoint(path, monitor="val_loss", save_best_only=True, save_weights_only=True)
    saved = []

    class Watch(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            saved.append(os.path.getmtime(path) if path.exists() else None)
    model.fit(x, y, epochs=4, verbose=0, validation_split=0.2, callbacks=[script, ckpt, Watch()])
    assert ckpt.best == 0.4
    other = make_model()
    other.load_weights(path)
    assert same(other.get_weights(), script.weights[3])
    # ModelCheckpoint runs after the other callbacks: Watch sees the file of the epoch before
    assert saved[3] == saved[2]  # epoch 2 did not improve: not rewritten


def test_model_checkpoint_every_n_batches(data, tmp_path):
    x, y = data
    model = make_model()
    pattern = str(tmp_path / "b-{epoch}-{batch}.tidu")
    model.fit(x, y, epochs=1, batch_size=20, verbose=0,
              callbacks=[callbacks.ModelCheckpoint(pattern, save_freq=3)])
    assert sorted(os.listdir(tmp_path)) == ["b-1-3.tidu", "b-1-6.tidu"]


def test_history_plot_writes_a_png(data, tmp_path):
    pytest.importorskip("matplotlib")
    x, y = data
    model = make_model()
    history = model.fit(x, y, epochs=2, verbose=0, validation_split=0.2)
    out = history.plot(tmp_path / "curves.png")
    assert open(out, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="empty"):
        callbacks.History().plot(tmp_path / "none.png")


def test_callback_hooks_run_in_keras_order(data):
    x, y = data
    events = []

    class Rec(callbacks.Callback):
        def on_train_begin(self, logs=None): events.append("train_begin")
        def on_epoch_begin(self, epoch, logs=None): events.append(f"epoch_begin {epoch}")
        def on_train_batch_begin(self, batch, logs=None): events.append(f"batch_begin {batch}")
        def on_batch_end(self, batch, logs=None): events.append(f"batch_end {batch} {sorted(logs)}")
        def on_epoch_end(self, epoch, logs=None): events.append(f"epoch_end {epoch} {sorted(logs)}")
        def on_train_end(self, logs=None): events.append("train_end")
    model = make_model()
    model.fit(x[:40], y[:40], epochs=1, batch_size=20, verbose=0, callbacks=[Rec()])
    assert events == ["train_begin", "epoch_begin 0", "batch_begin 0", "batch_end 0 ['accuracy', 'loss']",
                      "batch_begin 1", "batch_end 1 ['accuracy', 'loss']",
                      "epoch_end 0 ['accuracy', 'loss']", "train_end"]


def test_progress_line_pieces():
    assert keras_bar(0, 10) == "[>" + "." * 29 + "]"
    assert keras_bar(5, 10) == "[" + "=" * 14 + ">" + "." * 15 + "]"
    assert keras_bar(10, 10) == "[" + "=" * 30 + "]"
    assert format_duration(7.4) == "7s" and format_duration(65) == "1:05" and format_duration(3723) == "1:02:03"
    line = final_line(469, 469, 2.1, {"loss": 0.25244, "accuracy": 0.92731})
    assert line == "469/469 [==============================] - 2s 4ms/step - loss: 0.2524 - accuracy: 0.9273"
    assert final_line(5, 5, 0.001, {"loss": 1e-5}, verbose=2) == "5/5 - 0s - 200us/step - loss: 1.0000e-05"


# --- numerical guards ----------------------------------------------------------------------------
class WeightsAtBatchBegin(callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.weights, self.iterations = [], []

    def on_train_batch_begin(self, batch, logs=None):
        self.weights.append(self.model.get_weights())
        self.iterations.append(self.model.optimizer.iterations)


def diverging(rng, lr=1e18):
    x = rng.standard_normal((64, 4)).astype(np.float32) * 10
    y = (x @ np.array([1.0, -2.0, 3.0, 0.5]))[:, None].astype(np.float32)
    model = models.Sequential([layers.Dense(8, input_shape=(4,)), layers.Dense(1)])
    model.compile(SGD(lr, momentum=0.9), "mse")
    return model, x, y


def test_terminate_on_nan_restores_the_last_good_weights_and_optimizer_state(rng, capsys):
    model, x, y = diverging(rng)
    seen = WeightsAtBatchBegin()
    guard = callbacks.TerminateOnNaN(restore_best_weights=True)
    with np.errstate(all="ignore"):
        model.fit(x, y, epochs=5, batch_size=8, verbose=0, callbacks=[seen, guard])
    assert model.stop_training and guard.terminated_batch is not None
    assert "Invalid loss" in capsys.readouterr().out
    # back to the weights from before the step whose loss was not finite, and finite
    assert same(model.get_weights(), seen.weights[-1])
    assert all(np.isfinite(w).all() for w in model.get_weights())
    assert model.optimizer.iterations == seen.iterations[-1]
    state = model.optimizer.state_dict()
    assert all(np.isfinite(v).all() for v in state.values())


def test_terminate_on_nan_without_restore_keeps_the_broken_weights(rng):
    model, x, y = diverging(rng)
    with np.errstate(all="ignore"):
        model.fit(x, y, epochs=5, batch_size=8, verbose=0, callbacks=[callbacks.TerminateOnNaN()])
    assert not all(np.isfinite(w).all() for w in model.get_weights())
    with pytest.raises(TypeError, match="restore_best_weights to be True or False, got 'yes'"):
        callbacks.TerminateOnNaN(restore_best_weights="yes")


def test_loss_explosion_restores_the_best_epoch_weights_and_optimizer_state(rng):
    x = rng.standard_normal((64, 4)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 3.0, 0.5]))[:, None].astype(np.float32)
    model = models.Sequential([layers.Dense(8, input_shape=(4,)), layers.Dense(1)])
    model.compile(SGD(0.01), "mse")
    ends = []

    class Boost(callbacks.Callback):  # well-behaved for 3 epochs, then a learning rate far too high
        def on_epoch_end(self, epoch, logs=None):
            ends.append((logs["loss"], model.get_weights(), model.optimizer.iterations))
            if epoch == 2:
                model.optimizer.learning_rate = 50.0
    boom = callbacks.LossExplosion(factor=3.0, restore_best_weights=True, verbose=0)
    with np.errstate(all="ignore"):
        model.fit(x, y, epochs=10, batch_size=8, verbose=0, callbacks=[Boost(), boom])
    assert boom.exploded
    best = min(range(len(ends)), key=lambda i: ends[i][0])
    assert same(model.get_weights(), ends[best][1])
    assert model.optimizer.iterations == ends[best][2]


STABILITY = [  # last layer, loss, targets: each must give a finite loss and finite gradients
    ("softmax", "categorical_crossentropy", "one-hot"),
    ("softmax", "sparse_categorical_crossentropy", "labels"),
    ("sigmoid", "binary_crossentropy", "binary"),
    ("linear", "cce_from_logits", "one-hot"),
    ("linear", "sparse_from_logits", "labels"),
    ("linear", "bce_from_logits", "binary"),
    ("Activation(softmax)", "categorical_crossentropy", "one-hot"),
    ("Softmax layer", "categorical_crossentropy", "one-hot"),
    ("softmax", "kl_divergence", "one-hot"),
    ("sigmoid", "mse", "binary"),
]


@pytest.mark.parametrize("last, loss, targets", STABILITY)
@pytest.mark.parametrize("sign", [1, -1])
def test_logits_of_1e4_give_a_finite_loss_and_finite_gradients(last, loss, targets, sign):
    from tidu import losses as L
    loss = {"cce_from_logits": L.CategoricalCrossentropy(from_logits=True),
            "sparse_from_logits": L.SparseCategoricalCrossentropy(from_logits=True),
            "bce_from_logits": L.BinaryCrossentropy(from_logits=True)}.get(loss, loss)
    dense = layers.Dense(3, activation=last if last in ("softmax", "sigmoid", "linear") else None,
                         input_shape=(2,))
    stack = [dense]
    if last == "Activation(softmax)":
        stack.append(layers.Activation("softmax"))
    elif last == "Softmax layer":
        stack.append(layers.Softmax())
    model = models.Sequential(stack)
    model.compile(SGD(1e-9), loss)
    # logits ±1e4 and ∓1e4 (and ±5e3) side by side: every exp overflows unless it is stabilized
    dense.kernel.data[...] = sign * np.array([[5e3, -5e3, 2.5e3], [5e3, -5e3, -2.5e3]], np.float32)
    x = np.ones((4, 2), np.float32)
    y = {"one-hot": np.eye(3, dtype=np.float32)[[0, 1, 2, 1]], "labels": np.array([0, 1, 2, 1]),
         "binary": np.array([[1, 0, 1]] * 4, np.float32)}[targets]
    with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
        value, grads = model.compute_loss_and_grads(x, y)
        model.fit(x, y, epochs=1, batch_size=4, verbose=0)  # a whole fit step
    assert np.isfinite(value) and all(np.isfinite(g).all() for g in grads)
    assert np.isfinite(model.history.history["loss"][0])
    assert all(np.isfinite(w).all() for w in model.get_weights())


def test_run_progress_eta_counts_the_epochs_left_in_this_fit_and_the_fits_after(monkeypatch, capsys):
    """Fit 1 of 2, 3 epochs each. After epoch 1 (10 s) 2 epochs are left here and 3 in the next
    fit: ETA 20 s and 50 s. After epoch 2 (20 s, mean 15) 1 + 3 are left: 15 s and 60 s."""
    clock = iter([0.0, 10.0, 100.0, 120.0])
    monkeypatch.setattr(callbacks.progress.time, "perf_counter", lambda: next(clock))
    cb = callbacks.RunProgress(runs=2)
    cb.set_params({"epochs": 3})
    cb.on_train_begin()
    cb.on_epoch_begin(0)
    cb.on_epoch_end(0, {"loss": 0.5})
    assert capsys.readouterr().out == "[model 1/2] epoch 1/3 - 10s - loss: 0.5000 - ETA 20s this model, 50s run\n"
    cb.on_epoch_begin(1)
    cb.on_epoch_end(1, {"loss": 0.25})
    assert capsys.readouterr().out.endswith("epoch 2/3 - 20s - loss: 0.2500 - ETA 15s this model, 1:00 run\n")


def test_run_progress_in_fit_names_each_model_of_the_run(capsys):
    x = np.random.default_rng(0).random((32, 4), dtype=np.float32)
    y = (x.sum(1, keepdims=True) > 2).astype(np.float32)
    cb = callbacks.RunProgress(runs=2, label="member")
    for _ in range(2):
        model = models.Sequential([layers.Dense(1, activation="sigmoid", input_shape=(4,))])
        model.compile(optimizer="sgd", loss="binary_crossentropy")
        model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[cb])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" - ")[0] for line in lines] == [
        "[member 1/2] epoch 1/2", "[member 1/2] epoch 2/2", "[member 2/2] epoch 1/2", "[member 2/2] epoch 2/2"]
    assert lines[-1].endswith("ETA 0s this member, 0s run")
    assert len(cb.epoch_times) == 4


@pytest.mark.parametrize("runs", [0, 1.5, True, "2"])
def test_run_progress_refuses_a_bad_run_count(runs):
    with pytest.raises(ValueError, match="expected runs to be an int >= 1"):
        callbacks.RunProgress(runs=runs)


# --- the test and predict hooks: evaluate, predict and fit's validation call them as Keras 3 ------
def _hook_recorder(base):
    class Recorder(base):
        def __init__(self):
            super().__init__()
            self.calls = []

        def on_test_begin(self, logs=None):
            self.calls.append(("on_test_begin",))

        def on_test_batch_begin(self, batch, logs=None):
            self.calls.append(("on_test_batch_begin", batch))

        def on_test_batch_end(self, batch, logs=None):
            self.calls.append(("on_test_batch_end", batch, sorted(logs)))

        def on_test_end(self, logs=None):
            self.calls.append(("on_test_end", sorted(logs)))

        def on_predict_begin(self, logs=None):
            self.calls.append(("on_predict_begin",))

        def on_predict_batch_begin(self, batch, logs=None):
            self.calls.append(("on_predict_batch_begin", batch))

        def on_predict_batch_end(self, batch, logs=None):
            self.calls.append(("on_predict_batch_end", batch, np.shape(logs["outputs"])))

        def on_predict_end(self, logs=None):
            self.calls.append(("on_predict_end",))
    return Recorder


def _hook_calls(lib):
    """The test/predict hooks `lib` (tidu or keras) calls in evaluate, predict and a fit with
    validation data, each on 10 samples in batches of 4."""
    rng = np.random.default_rng(0)
    x, y = rng.random((10, 4)).astype("float32"), rng.integers(0, 3, 10)
    model = lib.Sequential([lib.Input((4,)), lib.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    Recorder = _hook_recorder(lib.callbacks.Callback)
    calls = {}
    for what, run in [("evaluate", lambda cb: model.evaluate(x, y, batch_size=4, verbose=0, callbacks=[cb])),
                      ("predict", lambda cb: model.predict(x, batch_size=4, verbose=0, callbacks=[cb])),
                      ("fit", lambda cb: model.fit(x, y, batch_size=4, epochs=2, verbose=0,
                                                   validation_data=(x, y), callbacks=[cb]))]:
        cb = Recorder()
        run(cb)
        calls[what] = cb.calls
    return calls


def test_evaluate_predict_and_fit_call_the_test_and_predict_hooks():
    import tidu
    calls = _hook_calls(tidu)
    batches = [("on_test_batch_begin", b) for b in range(3)]
    assert calls["evaluate"][0] == ("on_test_begin",) and calls["evaluate"][-1] == ("on_test_end", ["accuracy", "loss"])
    assert [c for c in calls["evaluate"] if c[0] == "on_test_batch_begin"] == batches
    assert calls["predict"][-2:] == [("on_predict_batch_end", 2, (2, 3)), ("on_predict_end",)]
    assert calls["fit"] == calls["evaluate"] * 2           # one validation pass per epoch


def test_the_test_and_predict_hooks_match_keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras", reason="keras 3 is the reference for the callback hooks")
    import tidu
    assert _hook_calls(tidu) == _hook_calls(keras)
