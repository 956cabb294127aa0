"""Every tidu layer class through a Keras 3 .keras file, both ways, against the real Keras 3:
each model is built once by the same function with Keras' and with tidu's layers."""
import io
import os
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

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

KERAS = (keras.layers, keras.Input, keras.Model, keras.Sequential)
TIDU = (L, L.Input, Model, Sequential)


# --- the models, each written once for both libraries ------------------------------------------
def residual(K, Input, Model, Sequential):
    """The issue's acceptance model: a residual block, pooled, then Dense."""
    x = Input((6, 6, 3))
    h = K.ReLU()(K.BatchNormalization()(K.Conv2D(3, 3, padding="same")(x)))
    h = K.BatchNormalization()(K.Conv2D(3, 3, padding="same")(h))
    h = K.ReLU()(K.Add()([h, x]))
    return Model(x, K.Dense(4)(K.GlobalAveragePooling2D()(h)))


def bidirectional(K, Input, Model, Sequential):
    return Sequential([Input((5, 3)), K.Bidirectional(K.LSTM(4, return_sequences=True)),
                       K.Bidirectional(K.GRU(3), merge_mode="ave"), K.Dense(2)])


def time_distributed(K, Input, Model, Sequential):
    return Sequential([Input((5, 4)), K.TimeDistributed(K.Dense(3, activation="tanh")),
                       K.TimeDistributed(K.Dense(2)), K.Flatten(), K.Dense(2)])


def conv1d(K, Input, Model, Sequential):
    return Sequential([Input((16, 3)), K.Conv1D(4, 3, padding="causal", activation="relu"),
                       K.MaxPooling1D(2), K.Conv1D(5, 3, dilation_rate=2),
                       K.AveragePooling1D(2, padding="same"), K.GlobalAveragePooling1D(),
                       K.Dense(2)])


def global_max_1d(K, Input, Model, Sequential):
    return Sequential([Input((9, 3)), K.Conv1D(4, 2, strides=2, padding="same"),
                       K.GlobalMaxPooling1D(keepdims=True), K.Flatten(), K.Dense(2)])


def reshaping(K, Input, Model, Sequential):
    return Sequential([Input((3, 4, 2)), K.ZeroPadding2D(((1, 2), (0, 1))),
                       K.Cropping2D(((1, 0), (0, 2))), K.UpSampling2D((2, 1)),
                       K.Conv2D(2, 2), K.Flatten(), K.Dense(4), K.RepeatVector(3),
                       K.Permute((2, 1)), K.Flatten(), K.Dense(2)])


def noise(K, Input, Model, Sequential):
    return Sequential([Input((5, 5, 2)), K.GaussianNoise(0.5), K.SpatialDropout2D(0.4),
                       K.Conv2D(3, 3), K.GaussianDropout(0.3), K.Flatten(), K.Dense(2)])


def rescaling(K, Input, Model, Sequential):
    return Sequential([Input((5,)), K.Rescaling(1 / 4, offset=-1.0), K.Dense(3)])


def prelu(K, Input, Model, Sequential):
    return Sequential([Input((4, 4, 2)), K.Conv2D(3, 2), K.PReLU(shared_axes=[1, 2]),
                       K.Flatten(), K.Dense(4), K.PReLU()])


def conv2d_transpose(K, Input, Model, Sequential):
    return Sequential([Input((4, 4, 2)), K.Conv2DTranspose(3, 3, strides=2, padding="same"),
                       K.Conv2DTranspose(2, 2, strides=2, output_padding=1, activation="relu"),
                       K.Flatten(), K.Dense(2)])


def merges(K, Input, Model, Sequential):
    x = Input((6,))
    a, b, c = K.Dense(4)(x), K.Dense(4)(x), K.Dense(4, activation="relu")(x)
    parts = [K.Add()([a, b]), K.Subtract()([a, c]), K.Multiply()([a, b, c]),
             K.Average()([b, c]), K.Maximum()([a, b, c]), K.Minimum()([a, c])]
    return Model(x, K.Dense(2)(K.Concatenate(axis=-1)(parts)))


CASES = {"residual": (residual, (3, 6, 6, 3)), "bidirectional": (bidirectional, (4, 5, 3)),
         "time_distributed": (time_distributed, (3, 5, 4)), "conv1d": (conv1d, (3, 16, 3)),
         "global_max_1d": (global_max_1d, (3, 9, 3)), "reshaping": (reshaping, (3, 3, 4, 2)),
         "noise": (noise, (3, 5, 5, 2)), "rescaling": (rescaling, (4, 5)),
         "prelu": (prelu, (3, 4, 4, 2)), "conv2d_transpose": (conv2d_transpose, (3, 4, 4, 2)),
         "merges": (merges, (5, 6))}


def random_weights(named_shapes, seed):
    """Weights drawn so every one matters (alpha, gammas and moving means off their starts);
    variances positive."""
    rng = np.random.default_rng(seed)
    return [rng.uniform(0.5, 1.5, shape).astype("float32") if "variance" in name
            else (0.5 * rng.standard_normal(shape)).astype("float32")
            for name, shape in named_shapes]


def kpredict(km, x):
    return np.asarray(km.predict(x, verbose=0))


@pytest.mark.parametrize("case", list(CASES))
def test_keras_to_tidu_to_keras(tmp_path, case):
    make, shape = CASES[case]
    km = make(*KERAS)
    km.set_weights(random_weights([(w.path, w.shape) for w in km.weights], 1))
    x = np.random.default_rng(2).standard_normal(shape).astype("float32")
    km.save(tmp_path / "k.keras")
    tm = load_model(tmp_path / "k.keras")
    kept = {l.name: l for l in km.layers if type(l).__name__ != "InputLayer"}
    assert sorted((l.name, type(l).__name__) for l in tm.layers) == \
        sorted((n, type(l).__name__) for n, l in kept.items())
    for layer in tm.layers:                      # the same weights, layer by layer
        want = kept[layer.name].get_weights()
        assert len(layer.get_weights()) == len(want)
        for w, kw in zip(layer.get_weights(), want):
            np.testing.assert_array_equal(w, np.asarray(kw))
    np.testing.assert_allclose(tm.predict(x), kpredict(km, x), atol=1e-5)
    tm.save(tmp_path / "t.keras")
    back = keras.models.load_model(tmp_path / "t.keras")
    np.testing.assert_allclose(kpredict(back, x), kpredict(km, x), atol=1e-5)


@pytest.mark.parametrize("case", list(CASES))
def test_tidu_to_keras_to_tidu(tmp_path, case):
    make, shape = CASES[case]
    tm = make(*TIDU)
    tm.set_weights(random_weights([(p.name, p.shape) for p in tm.weights], 3))
    x = np.random.default_rng(4).standard_normal(shape).astype("float32")
    tm.save(tmp_path / "t.keras")
    km = keras.models.load_model(tmp_path / "t.keras")
    np.testing.assert_allclose(kpredict(km, x), tm.predict(x), atol=1e-5)
    km.save(tmp_path / "k.keras")
    back = load_model(tmp_path / "k.keras")
    assert len(back.get_weights()) == len(tm.get_weights())
    for a, b in zip(back.get_weights(), tm.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(back.predict(x), tm.predict(x))


def test_wrapper_weights_lie_where_keras_puts_them(tmp_path):
    tm = time_distributed(*TIDU)
    bi = bidirectional(*TIDU)
    for model, paths in ((tm, ["layers/time_distributed/layer/vars/0"]),
                         (bi, ["layers/bidirectional/forward_layer/cell/vars/1",
                               "layers/bidirectional_1/backward_layer/cell/vars/2"])):
        model.save(tmp_path / "m.keras")
        with zipfile.ZipFile(tmp_path / "m.keras") as z, \
                h5py.File(io.BytesIO(z.read("model.weights.h5")), "r") as h5:
            for path in paths:
                assert path in h5


# --- every layer class is translated or refused by name --------------------------------------
NOT_LAYERS_OF_A_FILE = {L.Layer: "the base class", L.InputLayer: "a model's input, not a layer"}


def test_every_tidu_layer_class_is_translated_or_refused():
    """Fails when a layer class is added to tidu.layers without an Entry or a REFUSED line."""
    translated = {e.tidu_cls for e in keras_layers.ENTRIES}
    classes = {getattr(L, n) for n in L.__all__}
    classes = {c for c in classes if isinstance(c, type) and issubclass(c, L.Layer)}
    assert len(classes) > 40
    forgotten = sorted(c.__name__ for c in classes
                       if c not in translated and c not in keras_layers.REFUSED
                       and c not in NOT_LAYERS_OF_A_FILE)
    assert forgotten == [], f"layer classes with no .keras Entry nor REFUSED line: {forgotten}"
    assert not translated & set(keras_layers.REFUSED)
    for entry in keras_layers.ENTRIES:           # each Entry names a real Keras class
        assert isinstance(getattr(keras.layers, entry.keras_name), type), entry.keras_name
        assert keras_layers.snake_case(entry.keras_name) == \
            keras.src.utils.naming.to_snake_case(entry.keras_name)


@pytest.mark.parametrize("layer,why", [(L.L2Pooling2D(), "L2 pooling"),
                                       (L.Maxout(3, 2), "no Maxout")])
def test_layers_without_keras_twin_refused_by_name(tmp_path, layer, why):
    shape = (4, 4, 2) if isinstance(layer, L.L2Pooling2D) else (6,)
    tm = Sequential([L.Input(shape), layer, L.Flatten(), L.Dense(2)])
    with pytest.raises(ValueError, match=f"{type(layer).__name__}.*{why}"):
        tm.save(tmp_path / "m.keras")
    assert not (tmp_path / "m.keras").exists()
    wrapped = Sequential([L.Input((3, *shape)), L.TimeDistributed(layer)]) \
        if isinstance(layer, L.Maxout) else None
    if wrapped is not None:                     # nested in a wrapper: refused all the same
        with pytest.raises(ValueError, match=f"Maxout.*{why}"):
            wrapped.save(tmp_path / "w.keras")


def test_unknown_nested_layer_refused_by_name(tmp_path):
    km = keras.Sequential([keras.Input((3, 4)),
                           keras.layers.TimeDistributed(keras.layers.UnitNormalization())])
    km.save(tmp_path / "u.keras")
    with pytest.raises(ModelFileError, match="UnitNormalization"):
        load_model(tmp_path / "u.keras")


def edit_h5(src, dst, edit):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == "model.weights.h5":
                buf = io.BytesIO(data)
                with h5py.File(buf, "a") as h5:
                    edit(h5)
                data = buf.getvalue()
            zout.writestr(info.filename, data)


def test_tampered_nested_weights_refused(tmp_path):
    km = bidirectional(*KERAS)
    km.save(tmp_path / "k.keras")
    path = "layers/bidirectional/backward_layer/cell/vars/1"

    def reshape(h5):
        del h5[path]
        h5[path] = np.zeros((4, 15), "float32")

    def extra(h5):
        h5["layers/bidirectional/sideways_layer/vars/0"] = np.zeros(3, "float32")

    for name, edit, says in (("shape", reshape, path), ("extra", extra, "sideways_layer")):
        edit_h5(tmp_path / "k.keras", tmp_path / f"{name}.keras", edit)
        with pytest.raises(ModelFileError, match=says):
            load_model(tmp_path / f"{name}.keras")
    # a nested layer's tampered size is held to the h5's bytes like any other
    with zipfile.ZipFile(tmp_path / "k.keras") as zin, \
            zipfile.ZipFile(tmp_path / "units.keras", "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == "config.json":
                assert data.count(b'"units": 4,') == 2
                data = data.replace(b'"units": 4,', b'"units": 400000000,')
            zout.writestr(info.filename, data)
    with pytest.raises(ModelFileError, match="bytes"):
        load_model(tmp_path / "units.keras")


def test_bidirectional_with_its_own_backward_layer(tmp_path):
    km = keras.Sequential([keras.Input((5, 3)), keras.layers.Bidirectional(
        keras.layers.SimpleRNN(3, return_sequences=True), merge_mode="mul",
        backward_layer=keras.layers.SimpleRNN(3, activation="relu", return_sequences=True,
                                              go_backwards=True))])
    km.set_weights(random_weights([(w.path, w.shape) for w in km.weights], 5))
    x = np.random.default_rng(6).standard_normal((2, 5, 3)).astype("float32")
    km.save(tmp_path / "k.keras")
    tm = load_model(tmp_path / "k.keras")
    assert tm.layers[0].backward_layer.get_config()["activation"] == "relu"
    np.testing.assert_allclose(tm.predict(x), kpredict(km, x), atol=1e-5)
    tm.save(tmp_path / "t.keras")
    np.testing.assert_allclose(kpredict(keras.models.load_model(tmp_path / "t.keras"), x),
                               kpredict(km, x), atol=1e-5)


def test_noise_layers_act_in_training_after_loading(tmp_path):
    """Loaded noise layers are the noise layers, not identities: they perturb in training."""
    km = noise(*KERAS)
    km.save(tmp_path / "k.keras")
    tm = load_model(tmp_path / "k.keras")
    x = np.ones((2, 5, 5, 2), "float32")
    first = tm.layers[0]
    assert type(first).__name__ == "GaussianNoise" and first.get_config()["stddev"] == 0.5
    out = first(tidu.autograd.Tensor(x), training=True).data
    assert not np.allclose(out, x)
