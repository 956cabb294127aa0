"""The 'numpy-traced' backend: a whole fit/evaluate/predict/save/load on it, so any NumPy array
that meets a parameter, gradient or optimizer state in the training path fails here the way it
would fail under CuPy, without a GPU."""
import numpy as np
import pytest

from tidu import backend, layers, models
from tidu.datasets import mnist
from tidu.optimizers import BFGS, Newton, LBFGS, SGD, Adam, RMSprop

Traced = backend.TracedArray


@pytest.fixture
def traced():
    """The 'numpy-traced' backend for the test; the previous one is back afterwards, always."""
    previous = backend.name
    backend.set_backend("numpy-traced")
    try:
        yield backend.xp
    finally:
        backend.set_backend(previous)


@pytest.fixture(scope="module")
def digits():
    (x, y), _ = mnist.load_subset()
    return (x[:64] / np.float32(255)).astype(np.float32), y[:64].astype(np.int64)


def mlp():
    """The notes' MLP."""
    return models.Sequential([layers.Dense(32, activation="relu", input_shape=(784,)),
                              layers.Dense(10, activation="softmax")])


def cnn():
    return models.Sequential([layers.Conv2D(4, 3, activation="relu", input_shape=(28, 28, 1)),
                              layers.MaxPooling2D(2), layers.Flatten(),
                              layers.Dense(10, activation="softmax")])


def lstm():
    return models.Sequential([layers.LSTM(8, input_shape=(28, 28)), layers.Dense(10, activation="softmax")])


SHAPES = {mlp: (784,), cnn: (28, 28, 1), lstm: (28, 28)}
OPTIMIZERS = [pytest.param(lambda: Adam(0.01), id="adam"),
              pytest.param(lambda: SGD(0.05, momentum=0.9), id="sgd-momentum"),
              pytest.param(lambda: RMSprop(0.01), id="rmsprop"),
              pytest.param(lambda: LBFGS(max_iter=3), id="lbfgs"),
              pytest.param(lambda: BFGS(), id="bfgs"),
              pytest.param(lambda: Newton(max_cg=3), id="newton-cg")]


def all_traced(model):
    return all(type(p.data) is Traced for p in model.weights)


@pytest.mark.parametrize("make_optimizer", OPTIMIZERS)
@pytest.mark.parametrize("build", [mlp, cnn, lstm], ids=["mlp", "cnn", "lstm"])
def test_fit_evaluate_predict_save_load_stay_on_the_backend(traced, digits, build, make_optimizer, tmp_path):
    x, y = digits
    x = x.reshape((len(x),) + SHAPES[build])
    model = build()
    model.compile(make_optimizer(), "sparse_categorical_crossentropy", metrics=["accuracy"])
    assert all_traced(model)
    history = model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert all_traced(model)
    loss, accuracy = model.evaluate(x, y, verbose=0)
    assert np.isfinite(loss) and 0.0 <= accuracy <= 1.0
    predictions = model.predict(x, verbose=0)
    assert type(predictions) is np.ndarray and predictions.shape == (len(x), 10)  # back on the host
    assert all(type(w) is np.ndarray for w in model.get_weights())

    path = tmp_path / "model.tidu"
    model.save(path)
    loaded = models.load_model(path)
    assert all_traced(loaded)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), predictions)
    loaded.fit(x, y, epochs=1, batch_size=32, verbose=0)  # continues from the loaded optimizer state
    assert all_traced(loaded)


def test_notes_update_and_optimizer_state_round_trip(traced):
    W = backend.as_array(np.ones((3, 2), np.float32))
    g = backend.as_array(np.full((3, 2), 0.5, np.float32))
    opt = Adam(0.1)
    opt.update({"W": W}, {"W": g})
    state = opt.state_dict()
    assert all(type(v) is np.ndarray for v in state.values())  # the state leaves as NumPy
    again = Adam(0.1)
    again.load_state_dict(state)
    opt.update({"W": W}, {"W": g})
    W2 = backend.as_array(np.ones((3, 2), np.float32))
    again.update({"W": W2}, {"W": g})  # ... and comes back as the backend's arrays
    assert type(W) is Traced and type(W2) is Traced
    np.testing.assert_allclose(backend.to_numpy(W2), backend.to_numpy(W) + 0.1, rtol=1e-6)


def test_numpy_only_kernels_are_not_given_backend_arrays(traced, digits, monkeypatch):
    def kernel(*args):
        raise AssertionError("a NumPy-only fused kernel ran on the backend's arrays")

    monkeypatch.setattr(RMSprop, "fused", lambda self, dtype=None: kernel)
    x, y = digits
    model = mlp()
    model.compile(RMSprop(0.01), "sparse_categorical_crossentropy")
    model.fit(x.reshape(-1, 784), y, epochs=1, batch_size=32, verbose=0)
    assert all_traced(model)


# --- the trap itself -----------------------------------------------------------------------------
def test_a_numpy_only_update_of_a_parameter_is_refused(traced):
    model = mlp()
    p = model.weights[0]
    with pytest.raises(TypeError, match=r"subtract: expected arrays of the backend .* shape \(784, 32\)"):
        p.data - np.ones(p.shape, np.float32)
    with pytest.raises(TypeError, match="add"):
        np.ones(p.shape, np.float32) + p.data  # either side
    with pytest.raises(TypeError, match="concatenate"):
        np.concatenate([p.data, np.zeros((1, 32), np.float32)])
    with pytest.raises(TypeError, match="exp"):
        traced.exp(np.ones(3))  # the backend's functions take no NumPy arrays, as CuPy's
    with pytest.raises(TypeError, match="add.at"):
        traced.add.at(np.zeros(3), [0], 1.0)


def test_what_a_cupy_array_lacks_is_missing_here_too(traced):
    """The three CuPy differences that broke tidu on a GPU before 'numpy-traced' had them."""
    a = backend.as_array(np.arange(6, dtype=np.float32))
    with pytest.raises(TypeError, match="writeable"):
        traced.lib.stride_tricks.as_strided(a, (2, 3), (12, 4), writeable=False)
    assert not hasattr(a.flags, "writeable") and a.flags.c_contiguous
    assert not hasattr(a.data, "shape") and a.data.ptr == a.__array_interface__["data"][0]
    view = backend.strided_view(a, (2, 3), (12, 4))
    assert type(view) is Traced and view.tolist() == [[0, 1, 2], [3, 4, 5]]


def test_strided_view_is_read_only_on_numpy():
    view = backend.strided_view(np.arange(6, dtype=np.float32), (2, 3), (12, 4))
    assert not view.flags.writeable


def test_strided_view_starts_at_the_offset_on_any_layout():
    """An offset in bytes past x's first element, for a contiguous x (the ndarray constructor)
    and a strided one (as_strided), whose byte strides count in the parent's memory."""
    x = np.arange(60, dtype=np.float32).reshape(3, 4, 5)
    view = backend.strided_view(x, (2, 3), (20, 4), 8)
    assert view.tolist() == [[2, 3, 4], [7, 8, 9]] and not view.flags.writeable
    strided = x[:, ::2]
    view = backend.strided_view(strided, (2, 3), (40, 4), 8)
    assert view.tolist() == [[2, 3, 4], [12, 13, 14]] and not view.flags.writeable
    with pytest.raises(ValueError):                  # a contiguous x's view must stay inside it
        backend.strided_view(x, (61,), (4,))


def test_strided_view_offset_on_the_backend(traced):
    a = backend.as_array(np.arange(12, dtype=np.float32))
    view = backend.strided_view(a, (2, 3), (16, 4), 8)
    assert type(view) is Traced and view.tolist() == [[2, 3, 4], [6, 7, 8]]


def test_a_convnet_with_every_conv_path_trains_on_the_backend(traced, digits):
    """Multi-channel convolutions (the im2col windows), a transposed convolution and the
    optimizer's packed parameter buffer, all on the backend's arrays."""
    x, y = digits
    model = models.Sequential([layers.Conv2D(4, 3, activation="relu", input_shape=(28, 28, 1)),
                               layers.Conv2D(6, 3, strides=2, padding="same", activation="relu"),
                               layers.Conv2DTranspose(3, 3, strides=2), layers.MaxPooling2D(2),
                               layers.Flatten(), layers.Dense(10, activation="softmax")])
    model.compile(Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
    before = [backend.to_numpy(p.data).copy() for p in model.weights]
    history = model.fit(x.reshape(-1, 28, 28, 1), y, epochs=2, batch_size=16, verbose=0)
    assert all_traced(model) and np.isfinite(history.history["loss"]).all()
    assert all((backend.to_numpy(p.data) != b).any() for p, b in zip(model.weights, before))


def test_scalars_0d_arrays_and_plain_numpy_still_work(traced):
    a = backend.as_array(np.arange(3, dtype=np.float32))
    b = a * 2.0 + np.float32(1) - np.array(0.5)
    assert type(b) is Traced and b.tolist() == [0.5, 2.5, 4.5]
    assert type(a.sum()) is Traced and a.sum().ndim == 0  # 0-d, as CuPy's reductions
    assert type(np.exp(np.ones(2)) + np.ones(2)) is np.ndarray  # data that never reaches the backend
    traced.add.at(a, np.array([0, 0]), 1.0)  # NumPy indices are fine
    assert a.tolist() == [2.0, 1.0, 2.0]


def test_conversions_copy_at_the_boundary(traced):
    host = np.ones(3, np.float32)
    device = backend.as_array(host)
    device += 1
    assert type(device) is Traced and host.tolist() == [1, 1, 1]  # as_array copies, as cupy.asarray
    back = backend.to_numpy(device)
    back += 1
    assert type(back) is np.ndarray and device.tolist() == [2, 2, 2]  # to_numpy copies, as asnumpy


def test_register_backend_and_switching_back():
    backend.register_backend("numpy-test", np, to_numpy=np.asarray)
    try:
        backend.set_backend("numpy-test")
        assert backend.xp is np and backend.name == "numpy-test"
    finally:
        backend.set_backend("numpy")
        backend._backends.pop("numpy-test")
    assert backend.xp is np
    with pytest.raises(ValueError, match="'numpy'"):
        backend.register_backend("numpy", np, np.asarray)
    with pytest.raises(TypeError, match="no 'ndarray'"):
        backend.register_backend("empty", object(), np.asarray)
    with pytest.raises(TypeError, match="callable to_numpy"):
        backend.register_backend("bad", np, None)


def test_numpy_backend_keeps_its_arrays():
    a = np.ones(3, np.float32)
    assert backend.as_array(a) is a and backend.to_numpy(a) is a  # no per-step conversion
