"""Model.compile / fit / evaluate / predict on Sequential and functional models."""
import math
import re

import numpy as np
import pytest

import tidu
from tidu import callbacks, layers, models
from tidu.errors import NotBuiltError
from tidu.optimizers import Adam
from tidu.utils import to_categorical


def mlp(inputs=6, hidden=16, classes=3, activation="softmax", name=None):
    return models.Sequential([layers.Dense(hidden, activation="relu", input_shape=(inputs,)),
                              layers.Dense(classes, activation=activation)], name=name)


def same_weights(a, b):
    return all(np.array_equal(u, v) for u, v in zip(a.get_weights(), b.get_weights()))


# --- the Keras example ----------------------------------------------------------------------
def test_keras_mnist_example_learns_on_the_subset(mnist_subset):
    (x, y, _), (xt, yt, _) = mnist_subset
    network = models.Sequential()
    network.add(layers.Dense(512, activation="relu", input_shape=(28 * 28,)))
    network.add(layers.Dense(10, activation="softmax"))
    network.compile(optimizer="rmsprop", loss="categorical_crossentropy", metrics=["accuracy"])
    history = network.fit(x, y, epochs=3, batch_size=128, verbose=0, seed=0)
    loss = history.history["loss"]
    assert loss[0] > loss[1] > loss[2]
    test_loss, test_acc = network.evaluate(xt, yt, verbose=0)
    assert isinstance(test_loss, float) and isinstance(test_acc, float)
    assert test_acc > 0.85
    assert history.history["accuracy"][-1] > 0.85


def test_history_holds_one_value_per_epoch_for_every_log(blobs):
    x, labels = blobs
    model = mlp()
    model.compile(Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, labels, epochs=4, batch_size=32, validation_split=0.2, verbose=0)
    assert model.history is history
    assert history.epoch == [0, 1, 2, 3]
    assert sorted(history.history) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert all(len(v) == 4 for v in history.history.values())
    assert history.history["val_accuracy"][-1] > 0.9


def test_validation_split_holds_out_the_last_fraction_before_shuffling(blobs):
    x, labels = blobs
    model = mlp()
    model.compile("sgd", "sparse_categorical_crossentropy")
    seen = {}

    class Params(callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen.update(self.params)

    history = model.fit(x, labels, epochs=1, batch_size=50, validation_split=0.25, verbose=0,
                        callbacks=[Params()])
    assert seen["samples"] == 225 and seen["steps"] == math.ceil(225 / 50)
    # the validation loss is the loss on the last 75 samples with the final weights
    assert history.history["val_loss"][0] == pytest.approx(
        model.evaluate(x[225:], labels[225:], batch_size=50, verbose=0), rel=1e-6)
    assert history.history["val_loss"][0] != pytest.approx(
        model.evaluate(x[:75], labels[:75], batch_size=50, verbose=0), rel=1e-3)


def test_evaluate_and_predict_shapes_and_return_forms(blobs):
    x, labels = blobs
    model = mlp()
    model.compile("adam", "sparse_categorical_crossentropy")
    assert isinstance(model.evaluate(x, labels, verbose=0), float)  # no metrics: the loss
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy", "sparse_top_k_categorical_accuracy"])
    values = model.evaluate(x, labels, batch_size=64, verbose=0)
    assert len(values) == 3 and model.metrics_names == ["loss", "accuracy", "sparse_top_k_categorical_accuracy"]
    logs = model.evaluate(x, labels, verbose=0, return_dict=True)
    assert list(logs) == model.metrics_names and logs["sparse_top_k_categorical_accuracy"] == 1.0
    p = model.predict(x, batch_size=64)
    assert p.shape == (300, 3) and p.dtype == np.float32
    np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-5)
    np.testing.assert_allclose(model.predict_on_batch(x[:10]), p[:10], rtol=1e-6)
    # accuracy in evaluate is the fraction of argmax hits, exactly
    acc = model.evaluate(x, labels, verbose=0, return_dict=True)["accuracy"]
    assert acc == pytest.approx(np.mean(p.argmax(1) == labels))


def test_train_and_test_on_batch(blobs):
    x, labels = blobs
    model = mlp()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    before = model.get_weights()
    loss, acc = model.train_on_batch(x[:32], labels[:32])
    assert not same_weights_list(before, model.get_weights())
    assert 0 <= acc <= 1 and loss > 0
    after = model.get_weights()
    loss2 = model.test_on_batch(x[:32], labels[:32], return_dict=True)
    assert same_weights_list(after, model.get_weights())
    assert set(loss2) == {"loss", "accuracy"}


def same_weights_list(a, b):
    return all(np.array_equal(u, v) for u, v in zip(a, b))


def test_fused_softmax_cross_entropy_matches_the_plain_composition(blobs):
    """The fused training loss and its gradients equal softmax then −Σ y ln a (a custom loss,
    which the model cannot fuse)."""
    x, labels = blobs
    y = to_categorical(labels, 3)
    fused = mlp()
    fused.compile("sgd", "categorical_crossentropy")
    plain = mlp()
    plain.set_weights(fused.get_weights())

    def cce(y_true, y_pred):
        return -(y_pred.log() * y_true).sum(axis=-1)
    plain.compile("sgd", loss=cce)
    l1, g1 = fused.compute_loss_and_grads(x[:64], y[:64])
    l2, g2 = plain.compute_loss_and_grads(x[:64], y[:64])
    assert l1 == pytest.approx(l2, rel=1e-5)
    for a, b in zip(g1, g2):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_sigmoid_binary_cross_entropy_model_learns(rng):
    x = rng.standard_normal((200, 4)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.float32)
    model = models.Sequential([layers.Dense(8, activation="tanh", input_shape=(4,)),
                               layers.Dense(1, activation="sigmoid")])
    model.compile(Adam(0.02), "binary_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=30, batch_size=32, verbose=0, seed=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert history.history["accuracy"][-1] > 0.9
    assert model.predict(x).shape == (200, 1)


def test_training_keeps_float32_everywhere(blobs):
    x, labels = blobs
    model = mlp()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x.astype(np.float64), labels, epochs=1, batch_size=64, verbose=0)  # float64 in
    assert all(w.dtype == np.float32 for w in model.get_weights())
    assert all(p.data.dtype == np.float32 for p in model.weights)
    loss, grads = model.compute_loss_and_grads(x[:16], labels[:16])
    assert all(g.dtype == np.float32 for g in grads)
    state = model.optimizer.state_dict()
    slots = {k: v for k, v in state.items() if k not in ("iterations", "learning_rate")}
    assert slots and all(v.dtype == np.float32 for v in slots.values())
    assert model.predict(x.astype(np.float64)).dtype == np.float32


def test_regularization_penalty_is_added_to_the_loss(blobs):
    x, labels = blobs
    reg = models.Sequential([layers.Dense(5, input_shape=(6,), kernel_regularizer=tidu.regularizers.l2(0.1)),
                             layers.Dense(3, activation="softmax")])
    plain = models.Sequential([layers.Dense(5, input_shape=(6,)), layers.Dense(3, activation="softmax")])
    plain.set_weights(reg.get_weights())
    for m in (reg, plain):
        m.compile("sgd", "sparse_categorical_crossentropy")
    kernel = reg.get_weights()[0].astype(np.float64)
    penalty = 0.1 * (kernel ** 2).sum()
    assert reg.evaluate(x, labels, verbose=0) == pytest.approx(
        plain.evaluate(x, labels, verbose=0) + penalty, rel=1e-5)
    l_reg, g_reg = reg.compute_loss_and_grads(x[:20], labels[:20])
    l_plain, g_plain = plain.compute_loss_and_grads(x[:20], labels[:20])
    np.testing.assert_allclose(g_reg[0] - g_plain[0], 0.2 * reg.get_weights()[0], rtol=1e-4, atol=1e-6)


def test_notes_l2_gets_n_from_the_training_set(blobs):
    x, labels = blobs
    r = tidu.regularizers.L2(5.0, convention="notes")
    model = models.Sequential([layers.Dense(3, activation="softmax", input_shape=(6,), kernel_regularizer=r)])
    model.compile("sgd", "sparse_categorical_crossentropy")
    model.fit(x, labels, epochs=1, verbose=0, validation_split=0.1)
    assert r.n == 270


def test_notes_l2_follows_each_fits_training_set_size(rng):
    """The notes' penalty λ/(2n)·Σw² uses the n of the fit running now: fit on 10 samples, then
    on 1,000, and the second fit's loss carries λ/2000·Σw², not the first fit's λ/20·Σw²."""
    lam = 5.0
    r = tidu.regularizers.L2(lam, convention="notes")
    model = models.Sequential([layers.Dense(3, activation="softmax", input_shape=(6,), kernel_regularizer=r)])
    model.compile(tidu.optimizers.SGD(0.0), "sparse_categorical_crossentropy")   # weights stay put
    x, labels = rng.standard_normal((1000, 6)).astype("float32"), rng.integers(0, 3, 1000)
    model.fit(x[:10], labels[:10], epochs=1, verbose=0)
    h = model.fit(x, labels, epochs=1, batch_size=1000, verbose=0, shuffle=False)
    w = model.layers[0].kernel.data.astype(np.float64)
    ce = tidu.losses.SparseCategoricalCrossentropy()
    data_loss = float(ce(labels, tidu.Tensor(model.predict(x, batch_size=1000))).data)
    assert r.n == 1000
    np.testing.assert_allclose(h.history["loss"][0] - data_loss, lam / 2000 * (w ** 2).sum(), rtol=1e-4)


# --- bad inputs: clear errors, before anything changes -----------------------------------------
@pytest.fixture
def mnist_model():
    model = models.Sequential([layers.Dense(32, activation="relu", input_shape=(784,)),
                               layers.Dense(10, activation="softmax")])
    model.compile("rmsprop", "categorical_crossentropy", metrics=["accuracy"])
    return model


def test_wrong_input_dimension_names_the_layer_and_leaves_weights_alone(mnist_model, rng):
    before = mnist_model.get_weights()
    x = rng.random((100, 783), dtype=np.float32)
    y = to_categorical(rng.integers(0, 10, 100), 10)
    with pytest.raises(ValueError) as e:
        mnist_model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    msg = str(e.value)
    assert mnist_model.layers[0].name in msg and "784" in msg and "783" in msg
    assert same_weights_list(before, mnist_model.get_weights())
    assert mnist_model.optimizer.iterations == 0


@pytest.mark.parametrize("labels, bad", [([0, 3, 10, 2], "10"), ([0, -1, 2, 2], "-1")])
def test_sparse_labels_out_of_range(labels, bad, rng):
    model = mlp(inputs=4, classes=10)
    model.compile("sgd", "sparse_categorical_crossentropy")
    before = model.get_weights()
    with pytest.raises(ValueError, match=rf"label {re.escape(bad)} at index .* outside \[0, 10\)"):
        model.fit(rng.random((4, 4)), np.array(labels), verbose=0)
    assert same_weights_list(before, model.get_weights())


def test_nan_in_x_is_refused(mnist_model, rng):
    x = rng.random((20, 784), dtype=np.float32)
    x[7, 300] = np.nan
    with pytest.raises(ValueError, match=r"nan at index \(7, 300\)"):
        mnist_model.fit(x, to_categorical(np.zeros(20, int), 10), verbose=0)


def test_empty_x_batch_size_epochs_and_lengths(mnist_model, rng):
    x = rng.random((20, 784), dtype=np.float32)
    y = to_categorical(rng.integers(0, 10, 20), 10)
    with pytest.raises(ValueError, match="empty"):
        mnist_model.fit(x[:0], y[:0], verbose=0)
    with pytest.raises(ValueError, match="batch_size.*got batch_size=0"):
        mnist_model.fit(x, y, batch_size=0, verbose=0)
    with pytest.raises(ValueError, match="epochs"):
        mnist_model.fit(x, y, epochs=-1, verbose=0)
    with pytest.raises(ValueError, match="x has 20, y has 19"):
        mnist_model.fit(x, y[:19], verbose=0)
    with pytest.raises(ValueError, match="to_categorical"):  # integer labels with a one-hot loss
        mnist_model.fit(x, rng.integers(0, 10, 20), verbose=0)
    assert mnist_model.optimizer.iterations == 0


def test_unknown_names_list_the_allowed_ones():
    with pytest.raises(ValueError, match="relu"):
        layers.Dense(3, activation="relux")
    model = mlp()
    with pytest.raises(ValueError, match="rmsprop"):
        model.compile(optimizer="rmsprob", loss="mse")
    with pytest.raises(ValueError, match="did you mean 'categorical_crossentropy'.*Allowed:.*mse"):
        model.compile(optimizer="sgd", loss="categorical_crossentropyy")
    with pytest.raises(ValueError, match="did you mean 'accuracy'"):
        model.compile(optimizer="sgd", loss="mse", metrics=["acuracy"])


def test_fit_needs_compile_and_a_loss(blobs):
    x, labels = blobs
    model = mlp()
    with pytest.raises(RuntimeError, match="compile"):
        model.fit(x, labels, verbose=0)


def test_a_failed_fit_keeps_the_weights_of_the_last_completed_step(blobs):
    x, labels = blobs
    a, b = mlp(), mlp()
    b.set_weights(a.get_weights())
    for m in (a, b):
        m.compile("sgd", "sparse_categorical_crossentropy")

    class Boom(callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if batch == 2:
                raise RuntimeError("boom")
    with pytest.raises(RuntimeError, match="boom"):
        a.fit(x, labels, batch_size=10, shuffle=False, verbose=1, callbacks=[Boom()])
    b.fit(x[:20], labels[:20], batch_size=10, shuffle=False, verbose=0)  # the same 2 steps
    assert same_weights(a, b)


# --- sample weights, curriculum, augmentation, seeds --------------------------------------------
def test_zero_sample_weights_change_nothing_and_class_weight_scales(blobs):
    x, labels = blobs
    model = mlp()
    model.compile("sgd", "sparse_categorical_crossentropy")
    before = model.get_weights()
    model.fit(x, labels, sample_weight=np.zeros(len(x)), verbose=0)
    assert same_weights_list(before, model.get_weights())
    model.fit(x, labels, class_weight={0: 0.0, 1: 0.0, 2: 0.0}, verbose=0)
    assert same_weights_list(before, model.get_weights())
    with pytest.raises(ValueError, match="sample_weight"):
        model.fit(x, labels, sample_weight=np.ones(3), verbose=0)


def test_curriculum_presents_the_easiest_samples_first(rng):
    n = 40
    x = np.zeros((n, 3), dtype=np.float32)
    x[:, 0] = np.arange(n)  # each sample carries its index
    y = rng.integers(0, 2, n)
    scores = rng.random(n)
    seen = []

    def record(xb, rng_):
        seen.append(xb[:, 0].astype(int).copy())
        return xb
    model = mlp(inputs=3, classes=2)
    model.compile("sgd", "sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, augment=record,
              curriculum={"scores": scores, "start_fraction": 0.5, "epochs_to_full": 2})
    easiest = np.argsort(scores, kind="stable")
    first_epoch = np.concatenate(seen[:3])  # ceil(0.5 * 40 / 8) = 3 batches
    np.testing.assert_array_equal(first_epoch, easiest[:20])
    second = np.concatenate(seen[3:])  # f(1) = 0.75: the 30 easiest, easiest first
    np.testing.assert_array_equal(second, easiest[:30])


def test_augment_gets_every_batch_and_the_generator(blobs):
    x, labels = blobs
    calls = []

    def aug(xb, rng_):
        calls.append((len(xb), rng_))
        return xb + 0.0
    model = mlp()
    model.compile("sgd", "sparse_categorical_crossentropy")
    model.fit(x, labels, batch_size=128, epochs=1, verbose=0, augment=aug, seed=5)
    assert [c[0] for c in calls] == [128, 128, 44]
    assert all(isinstance(c[1], np.random.Generator) for c in calls)


def test_seed_makes_shuffling_and_dropout_reproducible(blobs):
    x, labels = blobs

    def run(seed):
        tidu.backend.seed(0)
        m = models.Sequential([layers.Dense(16, activation="relu", input_shape=(6,)), layers.Dropout(0.5),
                               layers.Dense(3, activation="softmax")])
        m.compile("adam", "sparse_categorical_crossentropy")
        m.fit(x, labels, epochs=2, batch_size=32, verbose=0, seed=seed)
        return m.get_weights()
    a, b, c = run(1), run(1), run(2)
    assert same_weights_list(a, b)
    assert not same_weights_list(a, c)


def test_steps_per_epoch(blobs):
    x, labels = blobs
    model = mlp()
    model.compile("sgd", "sparse_categorical_crossentropy")
    model.fit(x, labels, batch_size=32, epochs=3, steps_per_epoch=4, verbose=0)
    assert model.optimizer.iterations == 12


# --- progress output ----------------------------------------------------------------------------
EPOCH_LINE = re.compile(r"^\s*(\d+)/(\d+) \[=+\] - \d+s \d+(ms|us|s)/step - loss: \d+\.\d{4} "
                        r"- accuracy: \d\.\d{4}( - val_loss: \d+\.\d{4} - val_accuracy: \d\.\d{4})?$")


def test_progress_lines_look_like_keras(blobs, capsys):
    x, labels = blobs
    model = mlp()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, labels, epochs=2, batch_size=32, verbose=1, validation_split=0.1)
    out = capsys.readouterr().out
    lines = [l.split("\r")[-1] for l in out.splitlines() if l.strip()]
    assert lines[0] == "Epoch 1/2" and "Epoch 2/2" in lines
    finals = [l for l in lines if EPOCH_LINE.match(l)]
    assert len(finals) == 2 and all(l.lstrip().startswith("9/9 [") for l in finals)
    assert all(" - val_loss: " in l for l in finals)

    model.fit(x, labels, epochs=1, batch_size=32, verbose=2)
    out = capsys.readouterr().out.strip().splitlines()
    assert out[0] == "Epoch 1/1"
    assert re.match(r"^10/10 - \d+s - \d+(ms|us|s)/step - loss: \d\.\d{4} - accuracy: \d\.\d{4}$", out[1])

    model.fit(x, labels, epochs=1, verbose=0)
    model.evaluate(x, labels, verbose=0)
    assert capsys.readouterr().out == ""
    model.evaluate(x, labels, batch_size=100, verbose=1)
    last = capsys.readouterr().out.splitlines()[-1].split("\r")[-1]
    assert EPOCH_LINE.match(last) and last.startswith("3/3 [")


# --- structure ------------------------------------------------------------------------------------
def test_sequential_lazy_build_add_pop_and_summary(blobs, capsys):
    x, labels = blobs
    model = models.Sequential()
    model.add(layers.Dense(4, activation="relu"))
    model.add(layers.Dense(3, activation="softmax"))
    assert not model.built
    with pytest.raises(NotBuiltError):
        model.count_params()
    with pytest.raises(ValueError, match="unique"):
        model.add(layers.Dense(2, name=model.layers[0].name))
    model.compile("sgd", "sparse_categorical_crossentropy")
    model.fit(x, labels, epochs=1, verbose=0)
    assert model.built and model.count_params() == 6 * 4 + 4 + 4 * 3 + 3
    model.summary()
    out = capsys.readouterr().out
    assert 'Model: "' in out and "(None, 4)" in out and "Total params: 43" in out
    assert "Trainable params: 43" in out and "Non-trainable params: 0" in out
    popped = model.pop()
    assert isinstance(popped, layers.Dense) and len(model.layers) == 1
    model.add(layers.Dense(2, activation="softmax"))
    assert model.predict(x[:5]).shape == (5, 2)
    with_input = models.Sequential([layers.Input((6,)), layers.Dense(2)])
    assert with_input.built and with_input.layers[0].kernel.shape == (6, 2)


def test_functional_model_matches_sequential(blobs):
    x, labels = blobs
    inputs = layers.Input(shape=(6,))
    h = layers.Dense(16, activation="relu")(inputs)
    assert isinstance(h, layers.input_layer.SymbolicTensor) and h.shape == (None, 16)
    outputs = layers.Dense(3, activation="softmax")(h)
    fm = models.Model(inputs, outputs)
    seq = mlp()
    seq.set_weights(fm.get_weights())
    np.testing.assert_allclose(fm.predict(x), seq.predict(x), rtol=1e-6)
    fm.compile(Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = fm.fit(x, labels, epochs=3, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert [l.name for l in fm.layers] == [h.layer.name, outputs.layer.name]
    with pytest.raises(ValueError, match="disconnected"):
        models.Model(layers.Input((6,)), outputs)


def test_ensemble_averages_probabilities(blobs):
    x, labels = blobs
    members = []
    for seed in (1, 2, 3):
        m = mlp()
        m.compile(Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
        m.fit(x, labels, epochs=2, verbose=0, seed=seed)
        members.append(m)
    ens = models.Ensemble(members)
    p = ens.predict(x)
    np.testing.assert_allclose(p, np.mean([m.predict(x) for m in members], axis=0), rtol=1e-6)
    loss, acc = ens.evaluate(x, labels, verbose=0)
    assert acc == pytest.approx(np.mean(p.argmax(1) == labels))
    assert loss == pytest.approx(-np.mean(np.log(p[np.arange(len(x)), labels])), rel=1e-4)
    with pytest.raises(ValueError):
        models.Ensemble([])


def test_flat_weights_and_compute_loss_and_grads(blobs):
    x, labels = blobs
    model = mlp()
    model.compile("sgd", "sparse_categorical_crossentropy")
    w = model.get_flat_weights()
    assert w.dtype == np.float32 and w.shape == (model.count_params(),)
    model.set_flat_weights(w * 2)
    np.testing.assert_array_equal(model.get_flat_weights(), w * 2)
    before = model.get_flat_weights()
    loss, grads = model.compute_loss_and_grads(x[:32], labels[:32])
    np.testing.assert_array_equal(before, model.get_flat_weights())  # nothing updated
    assert [g.shape for g in grads] == [p.shape for p in model.trainable_weights]
    # a small step against the gradient lowers the loss
    flat_g = np.concatenate([g.ravel() for g in grads])
    model.set_flat_weights(before - 0.01 * flat_g)
    assert model.compute_loss_and_grads(x[:32], labels[:32])[0] < loss


def test_fit_delegates_epochs_to_a_parameter_server(blobs, monkeypatch):
    import tidu.distributed
    x, labels = blobs
    calls = []

    class FakeServer:
        def train_epoch(self, model, x, y, batch_size, epoch, rng, callbacks, verbose):
            calls.append(("epoch", epoch, batch_size, len(x)))
            return {"loss": 1.0 / (epoch + 1), "staleness": 0.0}

        def close(self, model):
            calls.append(("close",))
    monkeypatch.setattr(tidu.distributed, "get", lambda spec: FakeServer(), raising=False)
    model = mlp()
    model.compile("sgd", "sparse_categorical_crossentropy")
    history = model.fit(x, labels, epochs=3, batch_size=64, validation_split=0.2, verbose=0,
                        distributed="fake")
    assert calls == [("epoch", 0, 64, 240), ("epoch", 1, 64, 240), ("epoch", 2, 64, 240), ("close",)]
    assert history.history["loss"] == [1.0, 0.5, 1.0 / 3]
    assert len(history.history["val_loss"]) == 3 and "staleness" in history.history


def test_subclassed_model(blobs):
    x, labels = blobs

    class TwoLayers(models.Model):
        def __init__(self):
            super().__init__(name="two_layers")
            self.hidden = layers.Dense(16, activation="relu")
            self.out = layers.Dense(3, activation="softmax")

        def call(self, inputs, training=False):
            return self.out(self.hidden(inputs))
    model = TwoLayers()
    model.compile(Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, labels, epochs=3, verbose=0)
    assert [l.name for l in model.layers] == [model.hidden.name, model.out.name]
    assert model.count_params() == 6 * 16 + 16 + 16 * 3 + 3
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert model.predict(x[:4]).shape == (4, 3)
