"""Keras 3 .keras files both ways (tidu.saving.keras_file), against the real Keras 3."""
import os
import sys
import zipfile

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
h5py = pytest.importorskip("h5py")

import tidu  # noqa: E402
from tidu import layers as L  # noqa: E402
from tidu.errors import ModelFileError  # noqa: E402
from tidu.models import Model, Sequential, load_model  # noqa: E402
from tidu.saving import keras_layers  # noqa: E402

K = keras.layers
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")
RNG = np.random.default_rng(0)


def kpredict(km, x):
    return np.asarray(km.predict(x, verbose=0))


def keras_mlp():
    return keras.Sequential([keras.Input((6,)), K.Dense(8, activation="relu"), K.Dropout(0.4),
                             K.Dense(3, activation="softmax")])


def keras_cnn():
    m = keras.Sequential([keras.Input((8, 8, 2)), K.Conv2D(4, 3, padding="same", activation="relu"),
                          K.BatchNormalization(), K.MaxPooling2D(), K.Flatten(), K.Dense(3)])
    bn = m.layers[1]
    bn.moving_mean.assign(RNG.standard_normal(4).astype("float32"))
    bn.moving_variance.assign(RNG.uniform(0.5, 2.0, 4).astype("float32"))
    bn.gamma.assign(RNG.uniform(0.5, 2.0, 4).astype("float32"))
    return m


def keras_rnn():
    return keras.Sequential([keras.Input((5, 3)), K.LSTM(4, return_sequences=True), K.GRU(3),
                             K.Dense(2)])


def keras_functional():
    x = keras.Input((4,), name="x")
    shared = K.Dense(4, activation="tanh", name="shared")
    h = shared(K.Dense(4, name="a")(x))
    y = K.Dense(2, name="out")(shared(h))        # the shared layer is called twice
    return keras.Model(x, y)


CASES = [(keras_mlp, (5, 6)), (keras_cnn, (3, 8, 8, 2)), (keras_rnn, (4, 5, 3)),
         (keras_functional, (5, 4))]


@pytest.mark.parametrize("make,shape", CASES, ids=["mlp", "cnn", "rnn", "functional"])
def test_keras_to_tidu_to_keras(tmp_path, make, shape):
    km = make()
    x = RNG.standard_normal(shape).astype("float32")
    km.save(tmp_path / "k.keras")
    tm = load_model(tmp_path / "k.keras")
    np.testing.assert_allclose(tm.predict(x), kpredict(km, x), atol=1e-5)
    for w, kw in zip(tm.get_weights(), km.get_weights()):
        np.testing.assert_array_equal(w, np.asarray(kw))
    tm.save(tmp_path / "t.keras")
    back = keras.models.load_model(tmp_path / "t.keras")
    np.testing.assert_allclose(kpredict(back, x), tm.predict(x), atol=1e-5)


def tidu_models():
    mlp = Sequential([L.Dense(8, activation="relu", input_shape=(6,)), L.Dropout(0.3),
                      L.Dense(3, activation="softmax")])
    cnn = Sequential([L.Conv2D(4, 3, activation="relu", input_shape=(8, 8, 2)),
                      L.BatchNormalization(), L.MaxPooling2D(), L.Flatten(), L.Dense(3)])
    bn = cnn.layers[1]
    bn.moving_mean.data[...] = RNG.standard_normal(4)
    bn.moving_variance.data[...] = RNG.uniform(0.5, 2.0, 4)
    rnn = Sequential([L.LSTM(4, return_sequences=True, input_shape=(5, 3)), L.GRU(3), L.Dense(2)])
    x = L.Input((4,))
    shared = L.Dense(4, activation="tanh")
    fun = Model(x, L.Dense(2)(shared(shared(L.Dense(4)(x)))))
    return [(mlp, (5, 6)), (cnn, (3, 8, 8, 2)), (rnn, (4, 5, 3)), (fun, (5, 4))]


@pytest.mark.parametrize("i", range(4), ids=["mlp", "cnn", "rnn", "functional"])
def test_tidu_to_keras_to_tidu_bit_equal(tmp_path, i):
    tm, shape = tidu_models()[i]
    x = RNG.standard_normal(shape).astype("float32")
    tm.save(tmp_path / "t.keras")
    km = keras.models.load_model(tmp_path / "t.keras")
    np.testing.assert_allclose(kpredict(km, x), tm.predict(x), atol=1e-5)
    km.save(tmp_path / "k.keras")
    back = load_model(tmp_path / "k.keras")
    assert [w.shape for w in back.get_weights()] == [w.shape for w in tm.get_weights()]
    for a, b in zip(back.get_weights(), tm.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(back.predict(x), tm.predict(x))


def test_compile_config_both_ways(tmp_path):
    tm = tidu_models()[0][0]
    tm.compile(optimizer=tidu.optimizers.Adam(learning_rate=0.01, beta_1=0.8),
               loss="categorical_crossentropy", metrics=["accuracy"])
    tm.save(tmp_path / "t.keras")
    km = keras.models.load_model(tmp_path / "t.keras")
    assert type(km.optimizer).__name__ == "Adam"
    assert km.optimizer.get_config()["beta_1"] == pytest.approx(0.8)
    assert float(km.optimizer.learning_rate) == pytest.approx(0.01)
    x, y = RNG.standard_normal((8, 6)).astype("float32"), np.eye(3)[RNG.integers(0, 3, 8)]
    km.fit(x, y, epochs=1, verbose=0)            # Keras compiled it from the file
    km.save(tmp_path / "k.keras")
    back = load_model(tmp_path / "k.keras")
    assert type(back.optimizer).__name__ == "Adam"
    assert back.optimizer.learning_rate == pytest.approx(0.01)
    assert back.optimizer.beta_1 == pytest.approx(0.8)
    assert type(back.compiled_loss).__name__ == "CategoricalCrossentropy"
    assert back.metrics_names == ["loss", "accuracy"]


@pytest.mark.parametrize("reduction", ["sum", "none"])
def test_a_loss_reduction_crosses_both_ways(tmp_path, reduction):
    tm = tidu_models()[0][0]
    tm.compile(optimizer="sgd", loss=tidu.losses.CategoricalCrossentropy(reduction=reduction))
    tm.save(tmp_path / "t.keras")
    km = keras.models.load_model(tmp_path / "t.keras")
    assert km.loss.reduction == reduction
    km.save(tmp_path / "k.keras")
    assert load_model(tmp_path / "k.keras").compiled_loss.reduction == reduction


def test_lambda_layer_refused(tmp_path):
    km = keras.Sequential([keras.Input((3,)), K.Lambda(lambda t: t * 2), K.Dense(2)])
    km.save(tmp_path / "l.keras", )
    with pytest.raises(ModelFileError, match="Lambda"):
        load_model(tmp_path / "l.keras")


def test_unknown_layer_refused_by_name(tmp_path):
    km = keras.Sequential([keras.Input((3,)), K.UnitNormalization(), K.Dense(2)])
    km.save(tmp_path / "u.keras")
    with pytest.raises(ModelFileError, match="UnitNormalization"):
        load_model(tmp_path / "u.keras")


def test_value_tidu_cannot_honour_refused(tmp_path):
    km = keras.Sequential([keras.Input((3,)), K.BatchNormalization(renorm=True)])
    km.save(tmp_path / "r.keras")
    with pytest.raises(ModelFileError, match="renorm=True"):
        load_model(tmp_path / "r.keras")
    km = keras.Sequential([keras.Input((3,)), K.Dense(2, kernel_constraint="non_neg")])
    km.save(tmp_path / "c.keras")
    with pytest.raises(ModelFileError, match="kernel_constraint"):
        load_model(tmp_path / "c.keras")


def test_tidu_setting_keras_lacks_is_not_written(tmp_path):
    tm = Sequential([L.Dense(2, input_shape=(3,)), L.Dropout(0.5, mode="classic")])
    with pytest.raises(ValueError, match="mode='classic'"):
        tm.save(tmp_path / "m.keras")
    assert not (tmp_path / "m.keras").exists()


def rewrite(src, dst, edit):
    """Copy a .keras zip, passing each member's bytes through edit(name, data)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = edit(info.filename, zin.read(info))
            if data is not None:
                zout.writestr(info.filename, data)


def tampered_h5(blob, path, array):
    import io
    buf = io.BytesIO(blob)
    with h5py.File(buf, "a") as h5:
        del h5[path]
        h5[path] = array
    return buf.getvalue()


@pytest.fixture
def keras_file(tmp_path):
    km = keras_mlp()
    km.save(tmp_path / "ok.keras")
    return tmp_path / "ok.keras"


def test_corrupt_truncated_tampered_refused(tmp_path, keras_file, monkeypatch):
    made = []
    real_init = Sequential.__init__
    monkeypatch.setattr(Sequential, "__init__",
                        lambda self, *a, **k: (made.append(self), real_init(self, *a, **k))[1])
    blob = keras_file.read_bytes()
    bad = {"truncated": blob[: len(blob) // 2], "garbage": b"PK\x03\x04" + os.urandom(500)}
    for name, data in bad.items():
        (tmp_path / f"{name}.keras").write_bytes(data)
        with pytest.raises(ModelFileError):
            load_model(tmp_path / f"{name}.keras")
    assert made == []                    # refused before any model was made

    cases = {
        "shape": lambda n, d: tampered_h5(d, "layers/dense/vars/0", np.zeros((6, 9), "float32"))
        if n == "model.weights.h5" else d,
        "dtype": lambda n, d: tampered_h5(d, "layers/dense/vars/1", np.zeros(8, "float64"))
        if n == "model.weights.h5" else d,
        "missing": lambda n, d: None if n == "metadata.json" else d,
        "units": lambda n, d: d.replace(b'"units": 8', b'"units": 800000000')
        if n == "config.json" else d,
        "h5": lambda n, d: d[:200] + bytes(len(d) - 200) if n == "model.weights.h5" else d,
    }
    for name, edit in cases.items():
        rewrite(keras_file, tmp_path / f"{name}.keras", edit)
        with pytest.raises(ModelFileError) as info:
            load_model(tmp_path / f"{name}.keras")
        if name == "shape":
            assert "layers/dense/vars/0" in str(info.value) and "(6, 9)" in str(info.value)
        if name == "units":
            assert "bytes" in str(info.value)
    with zipfile.ZipFile(tmp_path / "extra.keras", "w") as z:
        with zipfile.ZipFile(keras_file) as src:
            for n in src.namelist():
                z.writestr(n, src.read(n))
        z.writestr("payload.py", b"print('hi')")
    with pytest.raises(ModelFileError, match="exactly"):
        load_model(tmp_path / "extra.keras")


def test_without_h5py_says_what_to_install(tmp_path, keras_file, monkeypatch):
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(ImportError, match=r"pip install tidu\[keras\]"):
        load_model(keras_file)


def test_tidu_format_stays_default_and_checkpoints_named_keras(tmp_path):
    tm = tidu_models()[0][0]
    tm.compile(optimizer="adam", loss="categorical_crossentropy")
    tm.save(tmp_path / "m.tidu")
    assert sorted(zipfile.ZipFile(tmp_path / "m.tidu").namelist()) == \
        ["config.json", "model.weights.safetensors", "optimizer.safetensors"]
    x, y = RNG.standard_normal((8, 6)).astype("float32"), np.eye(3)[RNG.integers(0, 3, 8)]
    ck = tidu.callbacks.ModelCheckpoint(str(tmp_path / "ck.keras"), monitor="loss")
    tm.fit(x, y, epochs=1, verbose=0, callbacks=[ck])
    assert "model.weights.safetensors" in zipfile.ZipFile(tmp_path / "ck.keras").namelist()
    back = load_model(tmp_path / "ck.keras")        # a tidu file, whatever its suffix
    for a, b in zip(back.get_weights(), tm.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_h5_path_names_are_keras_names():
    from keras.src.utils.naming import to_snake_case
    for entry in keras_layers.ENTRIES:
        assert keras_layers.snake_case(entry.keras_name) == to_snake_case(entry.keras_name)


def test_activation_names_mean_the_same():
    from tidu import activations
    from tidu.autograd import Tensor
    x = np.linspace(-6, 6, 49, dtype="float32").reshape(1, 49)
    for name in keras_layers.ACTIVATIONS:
        want = keras.ops.convert_to_numpy(keras.activations.get(name)(keras.ops.convert_to_tensor(x)))
        np.testing.assert_allclose(activations.get(name)(Tensor(x)).data, want, atol=1e-5,
                                   err_msg=name)


def test_multi_input_layer_both_ways(tmp_path):
    x = keras.Input((4,), name="x")
    a, b = K.Dense(3, name="a")(x), K.Dense(3, activation="relu", name="b")(x)
    km = keras.Model(x, K.Dense(2, name="out")(K.Add(name="sum")([a, b])))
    km.save(tmp_path / "k.keras")
    xs = RNG.standard_normal((5, 4)).astype("float32")
    tm = load_model(tmp_path / "k.keras")
    np.testing.assert_allclose(tm.predict(xs), kpredict(km, xs), atol=1e-5)
    tm.save(tmp_path / "t.keras")
    back = keras.models.load_model(tmp_path / "t.keras")
    np.testing.assert_allclose(kpredict(back, xs), kpredict(km, xs), atol=1e-5)
