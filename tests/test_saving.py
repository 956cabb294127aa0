"""Model files: save -> load gives the same predictions and the same continued training;
anything truncated, corrupted or tampered with is refused with ModelFileError."""
import io
import json
import os
import zipfile

import numpy as np
import pytest

import tidu
from tidu import layers, models
from tidu.errors import ModelFileError
from tidu.optimizers import Adam


@pytest.fixture
def data(rng):
    centres = rng.standard_normal((3, 6)) * 3
    labels = rng.integers(0, 3, 160)
    return (centres[labels] + rng.standard_normal((160, 6))).astype(np.float32), labels


@pytest.fixture
def trained(data):
    x, y = data
    model = models.Sequential([layers.Dense(12, activation="relu", input_shape=(6,)),
                               layers.Dropout(0.3),
                               layers.Dense(3, activation="softmax")])
    model.compile(Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=2, batch_size=32, verbose=0, seed=7)
    return model


def weights_equal(a, b):
    return all(np.array_equal(u, v) for u, v in zip(a.get_weights(), b.get_weights()))


def test_load_gives_identical_predictions_and_identical_continued_training(trained, data, tmp_path):
    x, y = data
    path = tmp_path / "model.tidu"
    trained.save(path)
    assert zipfile.ZipFile(path).namelist() == ["config.json", "model.weights.safetensors", "optimizer.safetensors"]
    loaded = models.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x), trained.predict(x))
    assert [type(l) for l in loaded.layers] == [type(l) for l in trained.layers]
    assert type(loaded.optimizer) is Adam and loaded.optimizer.iterations == trained.optimizer.iterations
    assert loaded.metrics_names == trained.metrics_names
    for i in range(3):  # three more steps (dropout draws from the restored generator)
        batch = slice(32 * i, 32 * (i + 1))
        a = trained.train_on_batch(x[batch], y[batch])
        b = loaded.train_on_batch(x[batch], y[batch])
        assert a == b
    assert weights_equal(trained, loaded)
    h1 = trained.fit(x, y, epochs=1, verbose=0)  # and a shuffled epoch from the same generator
    h2 = loaded.fit(x, y, epochs=1, verbose=0)
    assert h1.history == h2.history and weights_equal(trained, loaded)


def test_functional_model_round_trip(data, tmp_path):
    x, y = data
    inputs = layers.Input((6,))
    outputs = layers.Dense(3, activation="softmax")(layers.Dense(5, activation="tanh")(inputs))
    model = models.Model(inputs, outputs)
    model.compile("sgd", "sparse_categorical_crossentropy")
    model.save(tmp_path / "f.tidu")
    loaded = models.load_model(tmp_path / "f.tidu")
    assert type(loaded) is models.Model
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_uncompiled_model_and_compile_false(data, tmp_path):
    x, _ = data
    model = models.Sequential([layers.Dense(2, input_shape=(6,))])
    model.save(tmp_path / "u.tidu")
    loaded = models.load_model(tmp_path / "u.tidu")
    assert loaded.optimizer is None
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    with pytest.raises(ValueError, match="not built"):
        models.Sequential([layers.Dense(2)]).save(tmp_path / "v.tidu")


def test_save_weights_and_load_weights(trained, data, tmp_path):
    x, _ = data
    path = tmp_path / "w.safetensors"
    trained.save_weights(path)
    twin = models.Sequential([layers.Dense(12, activation="relu", input_shape=(6,)), layers.Dropout(0.3),
                              layers.Dense(3, activation="softmax")])
    twin.load_weights(path)  # other automatic names: matched by position
    np.testing.assert_array_equal(twin.predict(x), trained.predict(x))
    other = models.Sequential([layers.Dense(11, input_shape=(6,)), layers.Dense(3)])
    before = other.get_weights()
    with pytest.raises(ModelFileError, match="shape"):
        other.load_weights(path)
    assert all(np.array_equal(a, b) for a, b in zip(before, other.get_weights()))
    with pytest.raises(ModelFileError, match="missing"):
        twin.load_weights(path, by_name=True)


def test_atomic_save_keeps_the_old_file_when_writing_fails(trained, tmp_path, monkeypatch):
    path = tmp_path / "m.tidu"
    trained.save(path)
    old = path.read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full")
    monkeypatch.setattr(zipfile.ZipFile, "writestr", broken)
    with pytest.raises(OSError, match="disk full"):
        trained.save(path)
    assert path.read_bytes() == old
    assert os.listdir(tmp_path) == ["m.tidu"]  # no temporary file left behind


# --- refusing bad files -------------------------------------------------------------------------
def members(path):
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def rewrite(path, parts, extra=None):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, blob in {**parts, **(extra or {})}.items():
            zf.writestr(name, blob)
    path.write_bytes(buf.getvalue())


def edit_config(path, fn):
    parts = members(path)
    config = json.loads(parts["config.json"])
    fn(config)
    parts["config.json"] = json.dumps(config).encode()
    rewrite(path, parts)


@pytest.fixture
def saved(trained, tmp_path):
    path = tmp_path / "m.tidu"
    trained.save(path)
    return path


def test_truncated_file(saved):
    blob = saved.read_bytes()
    for cut in (10, len(blob) // 2, len(blob) - 30):
        saved.write_bytes(blob[:cut])
        with pytest.raises(ModelFileError, match="not a valid zip|truncated|corrupted"):
            models.load_model(saved)


def test_flipped_byte_is_caught_by_the_checksum(saved):
    blob = bytearray(saved.read_bytes())
    start = blob.find(b"dense")  # inside the stored weights member
    start = bytes(blob).find(b"F32", start)
    blob[start + 200] ^= 0xFF
    saved.write_bytes(bytes(blob))
    with pytest.raises(ModelFileError, match="corrupted"):
        models.load_model(saved)


def test_not_a_model_file(tmp_path):
    path = tmp_path / "x.tidu"
    path.write_bytes(b"hello, not a zip")
    with pytest.raises(ModelFileError, match="not a valid zip"):
        models.load_model(path)
    with pytest.raises(FileNotFoundError):
        models.load_model(tmp_path / "missing.tidu")


@pytest.mark.parametrize("mutate, message", [
    (lambda c: c["model"]["config"]["layers"][0].update(class_name="os.system"), "unknown layer class 'os.system'"),
    (lambda c: c["model"].update(class_name="Functional"), "expected a model of class Sequential or Model"),
    (lambda c: c["model"]["config"]["layers"][0]["config"].update(units=-3),
     "expected 'units' to be an int >= 1, got -3"),
    (lambda c: c["model"]["config"]["layers"][0]["config"].update(evil="__import__('os')"),
     r"unknown argument\(s\) \['evil'\]"),
    (lambda c: c["model"]["config"]["layers"][0]["config"].update(activation="relux"), "cannot be built.*relux"),
    (lambda c: c["model"]["config"]["layers"][0]["config"].update(name=7), "name"),
    (lambda c: c["model"]["config"]["layers"][0]["config"].update(kernel_initializer="glorot"),
     "kernel_initializer cannot be used.*glorot"),
    (lambda c: c.update(format="pickle"), "expected format 'tidu.model'"),
    (lambda c: c["compile"]["optimizer"].update(class_name="Adamm"), "compile section.*Adamm"),
    (lambda c: c["training"].update(rng={"bit_generator": "MT19937"}), "PCG64"),
])
def test_tampered_config(saved, mutate, message):
    edit_config(saved, mutate)
    with pytest.raises(ModelFileError, match=message):
        models.load_model(saved)


def test_config_that_is_not_json(saved):
    parts = members(saved)
    parts["config.json"] = b"{'model': Sequential}"
    rewrite(saved, parts)
    with pytest.raises(ModelFileError, match="not valid JSON"):
        models.load_model(saved)


def test_unexpected_or_missing_members(saved, tmp_path):
    parts = members(saved)
    rewrite(saved, parts, extra={"payload.pkl": b"\x80\x04"})
    with pytest.raises(ModelFileError, match="unexpected member"):
        models.load_model(saved)
    del parts["optimizer.safetensors"]
    rewrite(saved, parts)
    with pytest.raises(ModelFileError, match="missing member"):
        models.load_model(saved)


def tensors_file(tensors):
    from safetensors.numpy import save
    return save(tensors)


def test_weights_that_do_not_fit_the_model(saved, trained):
    parts = members(saved)
    good = {p.name: np.array(p.data) for p in trained.weights}
    kernel = trained.layers[0].kernel.name
    cases = [
        ({k: v for k, v in good.items() if k != kernel}, "missing"),
        ({**good, "extra/w": np.zeros(2, np.float32)}, "unexpected"),
        ({**good, kernel: np.zeros((6, 13), np.float32)}, r"shape \(6, 13\)"),
        ({**good, kernel: good[kernel].astype(np.float64)}, "dtype float64"),
    ]
    for tensors, message in cases:
        rewrite(saved, {**parts, "model.weights.safetensors": tensors_file(tensors)})
        with pytest.raises(ModelFileError, match=message):
            models.load_model(saved)
    rewrite(saved, {**parts, "model.weights.safetensors": b"\xff" * 64})
    with pytest.raises(ModelFileError, match="not a valid safetensors"):
        models.load_model(saved)


def test_optimizer_state_that_does_not_fit(saved):
    parts = members(saved)
    rewrite(saved, {**parts, "optimizer.safetensors": tensors_file(
        {"iterations": np.array(3), "param0/m": np.zeros((2, 2), np.float32)})})
    with pytest.raises(ModelFileError, match="optimizer"):
        models.load_model(saved)


def test_a_tampered_huge_layer_is_refused_before_filling_memory(saved):
    edit_config(saved, lambda c: c["model"]["config"]["layers"][0]["config"].update(units=10_000_000))
    with pytest.raises(ModelFileError, match=r"asks for a weight of shape \(6, 10000000\)"):
        models.load_model(saved)


def test_loaded_layers_keep_their_initializers(saved, trained):
    loaded = models.load_model(saved)
    assert loaded.layers[0].get_config()["kernel_initializer"] == trained.layers[0].get_config()["kernel_initializer"]


# --- more of the schema, the container and the state ------------------------------------------
@pytest.mark.parametrize("key, value, message", [
    ("use_bias", "yes", r"expected 'use_bias' to be true or false, got 'yes'"),
    ("units", 2.0, r"expected 'units' to be an int >= 1, got 2.0"),
    ("units", 2**40, r"expected 'units' to be an int >= 1, got 1099511627776"),
    ("activation", {"class_name": "os.system"}, r"unknown activation class 'os.system'"),
    ("activation", ["relu"], r"expected 'activation' to be null, an activation name or \{class_name, config\}"),
    ("kernel_initializer", ["zeros"], r"expected 'kernel_initializer' to be a name or \{class_name, config\}"),
    ("kernel_regularizer", {"class_name": "L2", "config": {"l2": [[[[[1]]]]]}},
     r"expected 'kernel_regularizer' to be null, a name or \{class_name, config\}"),
    ("dtype", "object", r"expected 'dtype' to be null or one of float16"),
    ("input_shape", [6, -1], r"expected 'input_shape' to be a list of ints >= 1"),
])
def test_argument_types_are_checked_before_anything_is_built(saved, key, value, message):
    edit_config(saved, lambda c: c["model"]["config"]["layers"][0]["config"].update({key: value}))
    with pytest.raises(ModelFileError, match=message):
        models.load_model(saved)


def test_non_standard_json_numbers_are_refused(saved):
    parts = members(saved)
    parts["config.json"] = parts["config.json"].replace(b'"rate": 0.3', b'"rate": 1e999')
    rewrite(saved, parts)
    with pytest.raises(ModelFileError, match="not valid JSON.*does not fit a float"):
        models.load_model(saved)


def test_functional_node_kwargs_must_be_plain(data, tmp_path):
    inputs = layers.Input((6,))
    model = models.Model(inputs, layers.Dense(3)(inputs))
    path = tmp_path / "f.tidu"
    model.save(path)
    edit_config(path, lambda c: c["model"]["config"]["nodes"][0].update(kwargs={"__class__": 1}))
    with pytest.raises(ModelFileError, match="node 0 is malformed"):
        models.load_model(path)


@pytest.mark.parametrize("state, message", [
    ({"iterations": np.array(-3)}, "'iterations' must be a finite number >= 0, got -3"),
    ({"iterations": np.array([1, 2])}, "'iterations' must be a number, got an array of shape"),
    ({"iterations": np.array(1), "param0/evil": np.zeros((6, 12), np.float32)}, "Adam keeps.*not 'evil'"),
    ({"iterations": np.array(1), "param0/m": np.zeros((12, 6), np.float32)},
     r"has shape \(12, 6\).*parameter 0 .* has shape \(6, 12\)"),
    ({"iterations": np.array(1), "param0/m": np.zeros((6, 12), np.int32)}, "dtype int32"),
    ({"iterations": np.array(1), "param7/m": np.zeros(3, np.float32)}, "parameter 7, but the model has 4"),
    ({"iterations": np.array(1), "learning_rate": np.array(np.nan)}, "'learning_rate' must be a finite number"),
    ({"learning_rate": np.array(0.1)}, "no 'iterations' entry"),
])
def test_optimizer_state_is_checked_slot_by_slot(saved, state, message):
    parts = members(saved)
    rewrite(saved, {**parts, "optimizer.safetensors": tensors_file(state)})
    with pytest.raises(ModelFileError, match=message):
        models.load_model(saved)


def test_tensor_members_must_be_stored_and_the_archive_unencrypted(saved):
    parts = members(saved)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, blob in parts.items():
            zf.writestr(name, blob, compress_type=zipfile.ZIP_DEFLATED)
    with pytest.raises(ModelFileError, match="'model.weights.safetensors' is compressed"):
        models.load_model(io.BytesIO(buf.getvalue()))
    blob = bytearray(saved.read_bytes())
    cd = blob.find(b"PK\x01\x02")
    blob[cd + 8] |= 1  # the 'encrypted' flag of the first central directory entry
    with pytest.raises(ModelFileError, match="encrypted"):
        models.load_model(io.BytesIO(bytes(blob)))


def test_load_from_a_file_object_and_generators_with_their_own_seed(data, tmp_path):
    x, y = data
    model = models.Sequential([layers.Dense(8, activation="relu", input_shape=(6,)),
                               layers.Dropout(0.5, seed=4), layers.Dense(3, activation="softmax")])
    model.compile(Adam(0.01), "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, batch_size=32, verbose=0, seed=1)  # the dropout generator has moved on
    buf = io.BytesIO()
    model.save(tmp_path / "m.tidu")
    buf.write((tmp_path / "m.tidu").read_bytes())
    buf.seek(0)
    loaded = models.load_model(buf)
    assert loaded.layers[1].rng.bit_generator.state == model.layers[1].rng.bit_generator.state
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    loaded.fit(x, y, epochs=1, batch_size=32, verbose=0)
    assert weights_equal(model, loaded)  # the same dropout masks after loading


def test_loading_a_model_file_runs_no_code(saved, monkeypatch):
    import builtins
    import pickle

    def forbidden(*args, **kwargs):
        raise AssertionError("a model file made the loader run code")
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    models.load_model(saved)


@pytest.mark.parametrize("units, activation", [(8, "maxout"), (9, tidu.activations.Maxout(3))])
def test_a_shape_changing_activation_survives_save_and_load(tmp_path, units, activation, rng):
    """A configured activation is saved as {class_name, config} and loads back (it was refused)."""
    model = models.Sequential([layers.Dense(units, activation=activation, input_shape=(5,)), layers.Dense(2)])
    model.compile("sgd", "mse")
    x = rng.random((4, 5)).astype("float32")
    model.save(tmp_path / "m.tidu")
    loaded = models.load_model(tmp_path / "m.tidu")
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert tidu.activations.serialize(loaded.layers[0].activation) == \
        tidu.activations.serialize(model.layers[0].activation)
