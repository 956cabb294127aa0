"""Bidirectional and TimeDistributed against the real Keras 3 (torch backend): Keras' weights
copied in through get_weights/set_weights, predictions within 1e-5; names, weight order,
configs, saving, errors, and a Bidirectional(LSTM) that learns MNIST rows as sequences."""
import io
import json
import os
import zipfile

import numpy as np
import pytest

from tidu import layers as tl
from tidu import models
from tidu.autograd import Tensor
from tidu.errors import ModelFileError, ShapeError


def keras_module():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    return pytest.importorskip("keras")


def to_numpy(y):
    import keras
    if isinstance(y, (list, tuple)):
        return [keras.ops.convert_to_numpy(t) for t in y]
    return keras.ops.convert_to_numpy(y)


def as_list(y):
    return [t.data for t in y] if isinstance(y, (list, tuple)) else [y.data]


# --- Bidirectional ----------------------------------------------------------------------------
@pytest.mark.parametrize("rnn", ["SimpleRNN", "LSTM", "GRU"])
@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave", None])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_bidirectional_matches_keras(rng, rnn, merge_mode, return_sequences):
    keras = keras_module()
    x = rng.standard_normal((3, 6, 4)).astype(np.float32)
    ref = keras.layers.Bidirectional(
        getattr(keras.layers, rnn)(5, return_sequences=return_sequences,
                                   bias_initializer="random_normal"), merge_mode=merge_mode)
    expected = to_numpy(ref(x))
    layer = tl.Bidirectional(getattr(tl, rnn)(5, return_sequences=return_sequences),
                             merge_mode=merge_mode)
    layer(x)
    assert [w.shape for w in layer.get_weights()] == [tuple(w.shape) for w in ref.get_weights()]
    layer.set_weights(ref.get_weights())
    got = as_list(layer(x))
    expected = expected if isinstance(expected, list) else [expected]
    assert [g.shape for g in got] == [e.shape for e in expected]
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, atol=1e-5, rtol=1e-5)
    shape = layer.compute_output_shape((None, 6, 4))
    shapes = shape if merge_mode is None else [shape]
    assert [tuple(s) for s in shapes] == [(None, *e.shape[1:]) for e in expected]


@pytest.mark.parametrize("n, t", [(1, 1), (1, 7), (4, 1)])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_bidirectional_lstm_batch_one_and_one_step_match_keras(rng, n, t, return_sequences):
    keras = keras_module()
    x = rng.standard_normal((n, t, 3)).astype(np.float32)
    ref = keras.layers.Bidirectional(keras.layers.LSTM(4, return_sequences=return_sequences))
    expected = to_numpy(ref(x))
    layer = tl.Bidirectional(tl.LSTM(4, return_sequences=return_sequences))
    layer(x)
    layer.set_weights(ref.get_weights())
    np.testing.assert_allclose(layer(x).data, expected, atol=1e-5, rtol=1e-5)


def test_bidirectional_return_state_and_backward_layer_match_keras(rng):
    keras = keras_module()
    x = rng.standard_normal((2, 5, 3)).astype(np.float32)
    ref = keras.layers.Bidirectional(
        keras.layers.LSTM(4, return_sequences=True, return_state=True),
        backward_layer=keras.layers.GRU(4, return_sequences=True, return_state=True,
                                        go_backwards=True, reset_after=True), merge_mode="sum")
    expected = to_numpy(ref(x))
    layer = tl.Bidirectional(
        tl.LSTM(4, return_sequences=True, return_state=True),
        backward_layer=tl.GRU(4, return_sequences=True, return_state=True, go_backwards=True),
        merge_mode="sum")
    layer(x)
    layer.set_weights(ref.get_weights())
    got = as_list(layer(x))
    assert len(got) == len(expected) == 4  # output, forward h and c, backward h
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, atol=1e-5, rtol=1e-5)


def test_bidirectional_names_and_weight_order():
    layer = tl.Bidirectional(tl.LSTM(3, name="enc"), name="bi")
    layer(np.zeros((1, 2, 5), np.float32))
    assert (layer.forward_layer.name, layer.backward_layer.name) == ("forward_enc", "backward_enc")
    assert not layer.forward_layer.go_backwards and layer.backward_layer.go_backwards
    assert [w.name for w in layer.weights] == [
        f"{side}_enc/{w}" for side in ("forward", "backward")
        for w in ("kernel", "recurrent_kernel", "bias")]
    assert layer.count_params() == 2 * (5 * 12 + 3 * 12 + 12)


def test_bidirectional_gradient_reaches_both_directions(rng):
    layer = tl.Bidirectional(tl.GRU(3, return_sequences=True))
    x = Tensor(rng.standard_normal((2, 4, 2)).astype(np.float32), requires_grad=True)
    y = layer(x)
    (y * y).sum().backward()
    assert all(np.abs(w.grad).sum() > 0 for w in layer.weights)
    # the backward half at step 0 has read the whole sequence; the forward half only step 0
    x2 = x.data.copy()
    x2[:, 1:] += 1
    y2 = layer(x2).data
    np.testing.assert_array_equal(y2[:, 0, :3], y.data[:, 0, :3])
    assert not np.allclose(y2[:, 0, 3:], y.data[:, 0, 3:])


def test_bidirectional_config_round_trip(rng):
    layer = tl.Bidirectional(tl.GRU(4, return_sequences=True, name="g"), merge_mode="mul", name="b")
    config = json.loads(json.dumps(layer.get_config()))
    assert config["layer"]["class_name"] == "GRU" and config["layer"]["config"]["name"] == "forward_g"
    assert config["backward_layer"]["config"]["go_backwards"] is True
    again = tl.deserialize({"class_name": "Bidirectional", "config": config})
    assert again.get_config() == config
    x = rng.standard_normal((2, 3, 2)).astype(np.float32)
    layer(x)
    again(x)
    again.set_weights(layer.get_weights())
    np.testing.assert_array_equal(layer(x).data, again(x).data)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(layer=tl.Dense(3)), ValueError, "expected layer to be a recurrent layer"),
    (dict(layer=tl.LSTM(3), merge_mode="max"), ValueError, "merge_mode"),
    (dict(layer="LSTM"), TypeError, "expected layer to be a Layer"),
    (dict(layer={"class_name": "subprocess.Popen", "config": {}}), ValueError, "unknown layer class"),
    (dict(layer=tl.LSTM(3), backward_layer=tl.LSTM(3)), ValueError, "go_backwards"),
    (dict(layer=tl.LSTM(3), backward_layer=tl.LSTM(3, go_backwards=True, return_sequences=True)),
     ValueError, "return_sequences"),
])
def test_bidirectional_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        tl.Bidirectional(**kwargs)


def test_bidirectional_bad_input():
    layer = tl.Bidirectional(tl.LSTM(3), name="bi")
    with pytest.raises(ShapeError, match="Bidirectional 'bi' expected input with 3 dimensions"):
        layer(np.zeros((2, 5), np.float32))


# --- TimeDistributed ----------------------------------------------------------------------------
@pytest.mark.parametrize("shape, make", [
    ((3, 5, 4), lambda L: L.Dense(6, activation="tanh", bias_initializer="random_normal")),
    ((1, 1, 4), lambda L: L.Dense(2)),
    ((2, 3, 6, 5, 2), lambda L: L.Conv2D(3, 3, strides=2, padding="same",
                                         bias_initializer="random_normal")),
    ((2, 4, 7, 3), lambda L: L.Conv1D(2, 3, padding="causal", bias_initializer="random_normal")),
    ((2, 4, 6, 6, 2), lambda L: L.MaxPooling2D(2)),
    ((2, 3, 5, 4), lambda L: L.GlobalAveragePooling1D()),
])
def test_time_distributed_matches_keras(rng, shape, make):
    keras = keras_module()
    x = rng.standard_normal(shape).astype(np.float32)
    ref = keras.layers.TimeDistributed(make(keras.layers))
    expected = to_numpy(ref(x))
    layer = tl.TimeDistributed(make(tl))
    layer(x)
    assert [w.shape for w in layer.get_weights()] == [tuple(w.shape) for w in ref.get_weights()]
    layer.set_weights(ref.get_weights())
    y = layer(x).data
    assert y.shape == expected.shape
    np.testing.assert_allclose(y, expected, atol=1e-5, rtol=1e-5)
    assert layer.compute_output_shape((None, *shape[1:])) == (None, *expected.shape[1:])


def test_time_distributed_applies_the_same_layer_at_every_step(rng):
    inner = tl.Dense(3, name="d")
    layer = tl.TimeDistributed(inner)
    x = rng.standard_normal((2, 4, 5)).astype(np.float32)
    y = layer(x).data
    for t in range(4):
        np.testing.assert_allclose(y[:, t], inner(x[:, t]).data, rtol=1e-6)
    assert [w.name for w in layer.weights] == ["d/kernel", "d/bias"]


def test_time_distributed_config_and_errors(rng):
    layer = tl.TimeDistributed(tl.Dense(3, activation="relu", name="d"), name="td")
    config = json.loads(json.dumps(layer.get_config()))
    assert config["layer"] == {"class_name": "Dense", "config": tl.Dense(3, activation="relu",
                                                                          name="d").get_config()}
    again = tl.TimeDistributed.from_config(config)
    assert again.get_config() == config
    with pytest.raises(ShapeError, match="TimeDistributed 'td' expected input with at least 3"):
        layer(np.zeros((2, 4), np.float32))
    with pytest.raises(TypeError, match="TimeDistributed: expected layer to be a Layer"):
        tl.TimeDistributed(3)


# --- saving -------------------------------------------------------------------------------------
def _edit(blob, fn):
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        parts = {n: zf.read(n) for n in zf.namelist()}
    config = json.loads(parts["config.json"])
    fn(config)
    parts["config.json"] = json.dumps(config).encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in parts.items():
            zf.writestr(name, data)
    return io.BytesIO(buf.getvalue())


def test_model_with_every_new_layer_saves_and_loads(rng, tmp_path):
    model = models.Sequential([
        tl.Conv1D(4, 3, padding="causal", input_shape=(8, 3)),
        tl.MaxPooling1D(2, padding="same"),
        tl.Bidirectional(tl.LSTM(3, return_sequences=True), merge_mode="concat"),
        tl.TimeDistributed(tl.Dense(4)),
        tl.AveragePooling1D(2),
        tl.Bidirectional(tl.SimpleRNN(3), merge_mode="sum"),
        tl.Dense(2)])
    model.compile("adam", "mse")
    x = rng.standard_normal((2, 8, 3)).astype(np.float32)
    model.fit(x, rng.standard_normal((2, 2)).astype(np.float32), epochs=1, verbose=0)
    model.save(tmp_path / "m.tidu")
    again = models.load_model(tmp_path / "m.tidu")
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))
    assert [w.name for w in again.weights] == [w.name for w in model.weights]

    nested = models.Sequential([  # a wrapper in a wrapper: (N, 4 clips, 5 steps, 3)
        tl.TimeDistributed(tl.Bidirectional(tl.GRU(2), merge_mode="ave"), input_shape=(4, 5, 3)),
        tl.GlobalMaxPooling1D()])
    nested.save(tmp_path / "n.tidu")
    v = rng.standard_normal((2, 4, 5, 3)).astype(np.float32)
    np.testing.assert_array_equal(models.load_model(tmp_path / "n.tidu").predict(v, verbose=0),
                                  nested.predict(v, verbose=0))

    image = models.Sequential([tl.Conv2DTranspose(2, 3, strides=2, output_padding=1,
                                                  input_shape=(4, 4, 1)),
                               tl.GlobalMaxPooling2D()])
    image.save(tmp_path / "t.tidu")
    z = rng.standard_normal((1, 4, 4, 1)).astype(np.float32)
    np.testing.assert_array_equal(models.load_model(tmp_path / "t.tidu").predict(z, verbose=0),
                                  image.predict(z, verbose=0))

    blob = (tmp_path / "m.tidu").read_bytes()
    rnn = lambda c: c["model"]["config"]["layers"][2]["config"]["layer"]  # noqa: E731
    with pytest.raises(ModelFileError, match=r"layer 2 \(Bidirectional .*argument 'layer'.*"
                                             r"unknown layer class 'builtins.eval'"):
        models.load_model(_edit(blob, lambda c: rnn(c).update(class_name="builtins.eval")))
    with pytest.raises(ModelFileError, match=r"argument 'layer' \(LSTM 'forward_lstm.*'\): "
                                             r"expected 'units' to be an int >= 1"):
        models.load_model(_edit(blob, lambda c: rnn(c)["config"].update(units="many")))


# --- learning -------------------------------------------------------------------------------------
def test_bidirectional_lstm_learns_mnist_rows_as_sequences():
    from tidu.datasets import mnist
    from tidu.optimizers import Adam
    from tidu.utils import to_categorical

    (x, y), (xt, yt) = mnist.load_subset()
    x = x[:2000].reshape(-1, 28, 28).astype("float32") / 255  # 28 steps of 28 pixels
    xt = xt[:500].reshape(-1, 28, 28).astype("float32") / 255
    y, yt = to_categorical(y[:2000], 10), to_categorical(yt[:500], 10)
    model = models.Sequential([tl.Bidirectional(tl.LSTM(32), input_shape=(28, 28)),
                               tl.Dense(10, activation="softmax")])
    model.compile(Adam(0.005), "categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=3, batch_size=64, verbose=0, seed=0)
    loss = history.history["loss"]
    assert loss[0] > loss[1] > loss[2]
    _, accuracy = model.evaluate(xt, yt, verbose=0)
    assert accuracy > 0.6 and history.history["accuracy"][-1] > 0.6  # chance is 0.1 (0.8 seen)


def test_bidirectional_output_shape_with_a_backward_layer_of_other_units():
    """concat joins 4 forward and 3 backward features: 7, as the output has."""
    from tidu import layers as L

    layer = L.Bidirectional(L.LSTM(4), backward_layer=L.GRU(3, go_backwards=True))
    x = np.random.default_rng(0).normal(size=(2, 5, 6)).astype("float32")
    assert layer(x).shape == (2, 7)
    assert layer.compute_output_shape((None, 5, 6)) == (None, 7)
