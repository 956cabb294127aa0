"""tidu.losses (Keras names, loss(y_true, y_pred)) and tidu.metrics (stateful, exact averages)."""
import numpy as np
import pytest

from tidu import losses, metrics
from tidu.autograd import Tensor


@pytest.fixture
def probs(rng):
    z = rng.standard_normal((8, 4))
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    labels = rng.integers(0, 4, 8)
    return p, labels, np.eye(4)[labels]


def value(t):
    return float(t.data)


# --- losses -----------------------------------------------------------------------------------
def test_names_classes_and_functions_resolve_to_the_same_loss():
    for ident in ("categorical_crossentropy", "cce", "CategoricalCrossentropy",
                  losses.categorical_crossentropy, losses.CategoricalCrossentropy):
        assert type(losses.get(ident)) is losses.CategoricalCrossentropy
    assert type(losses.get("mse")) is losses.MeanSquaredError
    assert type(losses.get("mae")) is losses.MeanAbsoluteError
    assert type(losses.get("quadratic")) is losses.QuadraticCost
    assert type(losses.get("huber")) is losses.Huber
    loss = losses.CategoricalCrossentropy(from_logits=True)
    assert losses.get(loss) is loss


def test_keras_argument_order_and_values(probs, rng):
    p, labels, onehot = probs
    expected = -np.mean(np.log(p[np.arange(8), labels]))
    assert value(losses.get("categorical_crossentropy")(onehot, p)) == pytest.approx(expected, rel=1e-6)
    assert value(losses.get("sparse_categorical_crossentropy")(labels, p)) == pytest.approx(expected, rel=1e-6)
    z = np.log(p) + 3.0  # logits (softmax is shift-invariant)
    assert value(losses.CategoricalCrossentropy(from_logits=True)(onehot, z)) == pytest.approx(expected, rel=1e-6)
    y = rng.standard_normal((8, 4))
    assert value(losses.get("mse")(y, p)) == pytest.approx(np.mean((p - y) ** 2))
    assert value(losses.get("mae")(y, p)) == pytest.approx(np.mean(np.abs(p - y)))
    assert value(losses.get("quadratic")(y, p)) == pytest.approx(0.5 * np.mean(((p - y) ** 2).sum(1)))
    e = np.abs(p - y)
    h = np.where(e <= 1, 0.5 * e ** 2, e - 0.5)
    assert value(losses.get("huber")(y, p)) == pytest.approx(h.mean())
    b = rng.integers(0, 2, (8, 4))
    pb = np.clip(p, 1e-7, 1 - 1e-7)
    assert value(losses.get("binary_crossentropy")(b, p)) == pytest.approx(
        -np.mean(b * np.log(pb) + (1 - b) * np.log(1 - pb)), rel=1e-6)


def test_sample_weight_is_keras_sum_over_batch_size(probs):
    p, labels, onehot = probs
    w = np.arange(8, dtype=float)
    per_sample = -np.log(p[np.arange(8), labels])
    for name in ("categorical_crossentropy", "quadratic", "mse", "huber"):
        loss = losses.get(name)
        per = np.array([value(loss(onehot[i:i + 1], p[i:i + 1])) for i in range(8)])
        assert value(loss(onehot, p, sample_weight=w)) == pytest.approx((per * w).sum() / 8, rel=1e-6)
    assert value(losses.get("sparse_categorical_crossentropy")(labels, p, w)) == pytest.approx(
        (per_sample * w).sum() / 8, rel=1e-6)


def test_custom_loss_function_is_wrapped(probs):
    p, _, onehot = probs

    def my_loss(y_true, y_pred):
        return ((y_pred - y_true) ** 2).sum(axis=-1)
    loss = losses.get(my_loss)
    assert loss.name == "my_loss"
    assert value(loss(onehot, Tensor(p))) == pytest.approx(((p - onehot) ** 2).sum(1).mean())
    with pytest.raises(ValueError, match="custom loss"):
        losses.serialize(loss)


def test_unknown_loss_name_lists_the_allowed_ones():
    with pytest.raises(ValueError, match=r"Unknown loss 'categorical_crosentropy'; did you mean "
                                         r"'categorical_crossentropy'\?.*Allowed:.*mse"):
        losses.get("categorical_crosentropy")
    with pytest.raises(TypeError):
        losses.get(3)


def test_serialize_round_trip():
    for loss in (losses.CategoricalCrossentropy(from_logits=True), losses.Huber(delta=2.5), losses.MeanSquaredError()):
        again = losses.deserialize(losses.serialize(loss))
        assert type(again) is type(loss) and again.get_config() == loss.get_config()
    with pytest.raises(ValueError, match="Unknown loss"):
        losses.deserialize({"class_name": "os.system", "config": {}})


def test_losses_are_differentiable(probs):
    p, labels, onehot = probs
    t = Tensor(p, requires_grad=True)
    losses.get("categorical_crossentropy")(onehot, t).backward()
    assert t.grad.shape == p.shape and np.isfinite(t.grad).all()


# --- metrics ----------------------------------------------------------------------------------
def test_accuracy_resolves_like_keras(probs):
    p, labels, onehot = probs
    expected = np.mean(p.argmax(1) == labels)
    assert metrics.get("accuracy", loss="categorical_crossentropy").fn is metrics.categorical_accuracy
    assert metrics.get("acc", loss="sparse_categorical_crossentropy").fn is metrics.sparse_categorical_accuracy
    assert metrics.get("accuracy", loss="binary_crossentropy").fn is metrics.binary_accuracy
    # without a loss: from the shapes
    for y_true in (onehot, labels, labels[:, None]):
        m = metrics.get("accuracy")
        assert m(y_true, p) == pytest.approx(expected)
    m = metrics.get("acc")
    assert m.name == "acc"
    assert m(np.array([[1], [0], [1]]), np.array([[0.9], [0.2], [0.3]])) == pytest.approx(2 / 3)


def test_epoch_metric_is_the_exact_sample_average_over_uneven_batches(rng):
    p = rng.random((103, 5))
    labels = rng.integers(0, 5, 103)
    m = metrics.get("sparse_categorical_accuracy")
    for start in range(0, 103, 32):  # 32, 32, 32, 7
        m.update_state(labels[start:start + 32], p[start:start + 32])
    assert m.result() == pytest.approx(np.mean(p.argmax(1) == labels), abs=1e-12)
    m.reset_state()
    assert m.result() == 0.0
    w = rng.random(103)
    m.update_state(labels, p, sample_weight=w)
    assert m.result() == pytest.approx(np.sum(w * (p.argmax(1) == labels)) / w.sum())


def test_metric_functions(rng):
    y = np.array([[0, 1, 0], [1, 0, 0]])
    p = np.array([[0.2, 0.5, 0.3], [0.1, 0.6, 0.3]])
    np.testing.assert_array_equal(metrics.categorical_accuracy(y, p), [1, 0])
    np.testing.assert_array_equal(metrics.top_k_categorical_accuracy(y, p, k=2), [1, 0])
    np.testing.assert_array_equal(metrics.top_k_categorical_accuracy(y, p, k=3), [1, 1])
    np.testing.assert_array_equal(metrics.binary_accuracy(np.array([[1, 0]]), np.array([[0.7, 0.6]])), [0.5])
    np.testing.assert_allclose(metrics.mse(y, p), ((p - y) ** 2).mean(1))
    np.testing.assert_allclose(metrics.mae(y, p), np.abs(p - y).mean(1))
    assert metrics.get("top_k_categorical_accuracy").name == "top_k_categorical_accuracy"
    m = metrics.get("categorical_crossentropy")  # a loss as a metric
    assert m(y, p) == pytest.approx(-np.mean(np.log([0.5, 0.1])), rel=1e-6)


def test_unknown_metric_name():
    with pytest.raises(ValueError, match=r"Unknown metric 'acuracy'; did you mean 'accuracy'\?.*Allowed"):
        metrics.get("acuracy")
