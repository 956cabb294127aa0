"""Merge layers against Keras 3 (torch backend), their errors, configs, and functional models
with a merge: summary, fit, predict, save/load, and a residual block trained on MNIST."""
import json
import os

import numpy as np
import pytest

import tidu
from tidu import layers as L
from tidu.datasets import mnist
from tidu.errors import ShapeError

MERGES = ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"]


@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    return pytest.importorskip("keras")


def to_numpy(keras, y):
    return np.asarray(keras.ops.convert_to_numpy(y))


@pytest.mark.parametrize("name", MERGES)
@pytest.mark.parametrize("shapes", [
    [(4, 3, 5), (4, 3, 5)],
    [(4, 3, 5), (4, 1, 5), (4, 3, 1)],   # size-1 axes broadcast
    [(4, 3, 5), (4, 5)],                 # fewer dimensions: new axes after the batch
])
def test_elementwise_merges_match_keras(keras, rng, name, shapes):
    if name == "Subtract":
        shapes = shapes[:2]
    xs = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    ours = getattr(L, name)()(xs).data
    ref = to_numpy(keras, getattr(keras.layers, name)()(xs))
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("axis, shapes", [
    (-1, [(2, 3, 4), (2, 3, 1), (2, 3, 6)]),
    (1, [(2, 3, 4), (2, 5, 4)]),
    (-2, [(2, 1, 4), (2, 2, 4)]),
])
def test_concatenate_matches_keras(keras, rng, axis, shapes):
    xs = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    ours = L.Concatenate(axis=axis)(xs).data
    np.testing.assert_array_equal(ours, to_numpy(keras, keras.layers.Concatenate(axis=axis)(xs)))
    expected = list(shapes[0])
    expected[axis] = sum(s[axis] for s in shapes)
    assert L.Concatenate(axis=axis).compute_output_shape(
        [(None, *s[1:]) for s in shapes]) == (None, *expected[1:])


def test_gradients_flow_to_every_input(rng):
    a, b = (tidu.Tensor(rng.standard_normal((3, 4)), requires_grad=True) for _ in range(2))
    g = rng.standard_normal((3, 4))
    for layer, ga, gb in [(L.Add(), g, g), (L.Subtract(), g, -g),
                          (L.Multiply(), g * b.data, g * a.data), (L.Average(), g / 2, g / 2),
                          (L.Maximum(), g * (a.data > b.data), g * (a.data <= b.data))]:
        a.grad = b.grad = None
        (layer([a, b]) * g).sum().backward()
        np.testing.assert_allclose(a.grad, ga, atol=1e-12)
        np.testing.assert_allclose(b.grad, gb, atol=1e-12)


@pytest.mark.parametrize("layer, inputs, match", [
    (L.Add(name="add_bad"), [np.zeros((2, 3)), np.zeros((2, 4))],
     r"Add 'add_bad' expected inputs of shapes that broadcast together, got \[\(2, 3\), \(2, 4\)\]"),
    (L.Subtract(name="sub_bad"), [np.zeros((2, 3))] * 3,
     r"Subtract 'sub_bad' expected exactly 2 inputs, got 3"),
    (L.Multiply(name="mul_bad"), [np.zeros((2, 3)), np.zeros((5, 3))],
     r"Multiply 'mul_bad' cannot merge inputs with different batch sizes, got shapes"),
    (L.Concatenate(name="cat_bad"), [np.zeros((2, 3, 4)), np.zeros((2, 5, 4))],
     r"Concatenate\(axis=-1\) 'cat_bad' expected inputs whose shapes agree except on axis -1, "
     r"got shapes \[\(2, 3, 4\), \(2, 5, 4\)\]"),
    (L.Concatenate(name="cat_rank"), [np.zeros((2, 3, 4)), np.zeros((2, 3))],
     r"Concatenate\(axis=-1\) 'cat_rank' expected inputs of one rank"),
])
def test_shape_errors_name_the_layer_and_the_shapes(layer, inputs, match):
    with pytest.raises(ShapeError, match=match):
        layer(inputs)


def test_symbolic_shape_error_surfaces_where_the_graph_is_written():
    x = L.Input((4,))
    with pytest.raises(ShapeError, match=r"Add 'add_sym'.*\(1, 4\), \(1, 3\)"):
        L.Add(name="add_sym")([L.Dense(4)(x), L.Dense(3)(x)])
    with pytest.raises(TypeError, match="Add 'add_one' expected a non-empty list of inputs"):
        L.Add(name="add_one")(np.zeros((2, 3)))


@pytest.mark.parametrize("name", [*MERGES, "Concatenate"])
def test_config_round_trip(name):
    layer = getattr(L, name)(name=f"m_{name.lower()}", **({"axis": 1} if name == "Concatenate" else {}))
    config = json.loads(json.dumps(L.serialize(layer)))
    again = L.deserialize(config)
    assert type(again) is type(layer) and again.get_config() == layer.get_config()


def two_branch_model(merge):
    """x -> Dense(4) and Dense(4, tanh) -> merge -> Dense(3, softmax)."""
    x = L.Input((6,))
    a = L.Dense(4, name="left")(x)
    b = L.Dense(4, activation="tanh", name="right")(x)
    y = L.Dense(3, activation="softmax", name="out")(merge([a, b]))
    return tidu.models.Model(x, y)


@pytest.mark.parametrize("name", [*MERGES, "Concatenate"])
def test_functional_model_with_a_merge_fits_predicts_summarizes_and_saves(rng, tmp_path, name):
    model = two_branch_model(getattr(L, name)(name="merge"))
    lines = []
    model.summary(print_fn=lines.append)
    width = 8 if name == "Concatenate" else 4
    assert any("merge" in line and f"(None, {width})" in line for line in lines)
    x = rng.standard_normal((64, 6)).astype(np.float32)
    y = rng.integers(0, 3, 64)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    pred = model.predict(x)
    model.save(tmp_path / "m.tidu")
    again = tidu.models.load_model(tmp_path / "m.tidu")
    assert [type(l).__name__ for l in again.layers] == [type(l).__name__ for l in model.layers]
    np.testing.assert_array_equal(again.predict(x), pred)


def test_two_branch_model_matches_keras(keras, rng):
    x = rng.standard_normal((5, 6)).astype(np.float32)
    ours = two_branch_model(L.Concatenate())
    kx = keras.Input((6,))
    ka = keras.layers.Dense(4)(kx)
    kb = keras.layers.Dense(4, activation="tanh")(kx)
    ky = keras.layers.Dense(3, activation="softmax")(keras.layers.Concatenate()([ka, kb]))
    ref = keras.Model(kx, ky)
    ours.set_weights(ref.get_weights())
    np.testing.assert_allclose(ours.predict(x), to_numpy(keras, ref.predict(x, verbose=0)),
                               rtol=1e-5, atol=1e-6)


# --- a residual block in the functional API ------------------------------------------------
def residual_model(lib, filters=8):
    """Conv-ReLU stem, then Conv-BN-ReLU-Conv-BN, Add with the block input, ReLU; pooled to
    a softmax over 10 digits. `lib` is tidu or keras (the same code builds both)."""
    layers = lib.layers
    x = layers.Input((28, 28, 1))
    h = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
    r = layers.Conv2D(filters, 3, padding="same")(h)
    r = layers.BatchNormalization()(r)
    r = layers.ReLU()(r)
    r = layers.Conv2D(filters, 3, padding="same")(r)
    r = layers.BatchNormalization()(r)
    y = layers.ReLU()(layers.Add()([r, h]))
    y = layers.MaxPooling2D(4)(y)
    y = layers.Dense(10, activation="softmax")(layers.Flatten()(y))
    return (lib.models.Model if lib is tidu else lib.Model)(x, y)


@pytest.fixture(scope="module")
def digits():
    (x, y), _ = mnist.load_subset()
    return (x[:512] / np.float32(255)).reshape(-1, 28, 28, 1), y[:512].astype(np.int64)


def test_residual_block_trains_on_mnist(digits):
    x, y = digits
    model = residual_model(tidu)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, batch_size=32, epochs=3, verbose=0, seed=0)
    loss = history.history["loss"]
    print("residual block, MNIST subset (512 samples), loss per epoch:", loss)
    assert all(b < a for a, b in zip(loss, loss[1:])), loss
    assert loss[-1] < 0.6 * loss[0]
    assert history.history["accuracy"][-1] > 0.5


def test_residual_block_matches_keras(keras, digits, rng):
    x = digits[0][:16]
    ref = residual_model(keras)
    for layer in ref.layers:   # non-trivial statistics, so inference uses them
        if isinstance(layer, keras.layers.BatchNormalization):
            c = layer.get_weights()[0].shape
            layer.set_weights([rng.uniform(0.5, 1.5, c), rng.normal(0, 0.1, c),
                               rng.normal(0, 0.1, c), rng.uniform(0.5, 1.5, c)])
    ours = residual_model(tidu)
    ours.set_weights(ref.get_weights())
    np.testing.assert_allclose(ours.predict(x), to_numpy(keras, ref.predict(x, verbose=0)),
                               rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("cls", ["Add", "Concatenate", "Maximum"])
def test_a_merge_of_one_tensor_runs_in_a_functional_model(cls, tmp_path):
    """Keras accepts a merge of a one-element list; the model must hand the layer a list."""
    from tidu import Input, Model

    inputs = Input(shape=(4,))
    h = L.Dense(3)(inputs)
    model = Model(inputs, getattr(L, cls)()([h]))
    x = np.random.default_rng(0).normal(size=(2, 4)).astype("float32")
    np.testing.assert_allclose(model.predict(x, verbose=0), model.layers[0](x).data, rtol=1e-6)
    path = tmp_path / "one.tidu"
    model.save(path)
    for again in (tidu.models.load_model(path), tidu.models.clone_model(model)):
        again.set_weights(model.get_weights())
        np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))
