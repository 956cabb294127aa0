"""Keras 3's losses (with every reduction) and metrics (with AUC, Precision and Recall),
checked against the real Keras (torch backend) run here, on random data and on probabilities
that include exact 0 and 1; gradients of the new losses by central differences; fit logging
the confusion metrics; every loss name trains; configs and model files round-trip."""
import os

import numpy as np
import pytest

from tidu import functional as F, layers, losses, metrics, models, optimizers
from tidu.autograd import Tensor, gradcheck

os.environ.setdefault("KERAS_BACKEND", "torch")

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # keras' torch __array__

N, D = 6, 4
REDUCTIONS = ("sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none", None)
NEW_LOSSES = ("mean_absolute_percentage_error", "mape", "mean_squared_logarithmic_error", "msle",
              "poisson", "squared_hinge", "categorical_hinge", "log_cosh", "logcosh",
              "cosine_similarity")


@pytest.fixture(scope="module")
def keras():
    return pytest.importorskip("keras")


def _np(x):
    return x.data if isinstance(x, Tensor) else np.asarray(x)


def _keras_np(keras, x):
    return np.asarray(keras.ops.convert_to_numpy(x), dtype=np.float64)


def _probabilities(rng, with_edges):
    p = rng.random((N, D)).astype(np.float32)
    p /= p.sum(axis=1, keepdims=True)
    if with_edges:
        p[0] = [0, 1, 0, 0]              # exact 0 and 1
        p[1, 2] = 0.0
        p[1] /= p[1].sum()
    return p


def _data(kind, rng, with_edges):
    """(y_true, y_pred) for a loss of this kind."""
    p = _probabilities(rng, with_edges)
    labels = rng.integers(0, D, N)
    onehot = np.eye(D, dtype=np.float32)[labels]
    if kind == "sparse":
        return labels, p
    if kind == "onehot":
        return onehot, p
    if kind == "binary":
        return rng.integers(0, 2, (N, D)).astype(np.float32), p
    if kind == "prob":
        y = _probabilities(rng, with_edges)
        return y, p
    y = rng.standard_normal((N, D)).astype(np.float32)     # "real"
    a = rng.standard_normal((N, D)).astype(np.float32)
    if with_edges:
        y[0, :2], a[1, :2] = 0.0, 0.0                     # MAPE's ε, cosine's zero-free rows kept
        y[2], a[2] = 1.0, 0.0
    return y, (p if with_edges else a)


# loss name -> the data it is tested on (both random and with exact 0 and 1)
KINDS = {"mse": "real", "mean_squared_error": "real", "mae": "real", "mean_absolute_error": "real",
         "mape": "real", "mean_absolute_percentage_error": "real", "msle": "real",
         "mean_squared_logarithmic_error": "real", "huber": "real", "huber_loss": "real",
         "log_cosh": "real", "logcosh": "real", "cosine_similarity": "real", "hinge": "binary",
         "squared_hinge": "binary", "categorical_hinge": "onehot", "poisson": "prob",
         "kl_divergence": "prob", "kld": "prob", "kullback_leibler_divergence": "prob",
         "binary_crossentropy": "binary", "bce": "binary", "categorical_crossentropy": "onehot",
         "cce": "onehot", "sparse_categorical_crossentropy": "sparse"}


def _keras_loss(keras, loss, **kwargs):
    cls = getattr(keras.losses, type(loss).__name__)
    config = {k: v for k, v in loss.get_config().items() if k not in ("name", "reduction")}
    return cls(**config, **kwargs)


@pytest.mark.parametrize("with_edges", [False, True], ids=["random", "exact_0_1"])
@pytest.mark.parametrize("name", sorted(KINDS))
def test_every_loss_name_agrees_with_keras_for_every_reduction(keras, name, with_edges, rng):
    y, p = _data(KINDS[name], rng, with_edges)
    w = rng.random(N).astype(np.float32) + 0.1
    for reduction in REDUCTIONS:
        loss = losses.get(name)
        loss.reduction = reduction
        ref = _keras_loss(keras, loss, reduction=reduction)
        for sw in (None, w):
            got = _np(loss(y, p, sw))
            want = _keras_np(keras, ref(y, p, sample_weight=sw))
            assert got.shape == want.shape, (name, reduction)
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=f"{name} {reduction}")


@pytest.mark.parametrize("name", ["binary_crossentropy", "categorical_crossentropy",
                                  "sparse_categorical_crossentropy"])
def test_cross_entropies_from_logits_agree_with_keras_for_every_reduction(keras, name, rng):
    y, _ = _data(KINDS[name], rng, False)
    z = (3 * rng.standard_normal((N, D))).astype(np.float32)
    w = rng.random(N).astype(np.float32)
    for reduction in REDUCTIONS:
        loss = type(losses.get(name))(from_logits=True, reduction=reduction)
        ref = _keras_loss(keras, loss, reduction=reduction)
        for sw in (None, w):
            np.testing.assert_allclose(_np(loss(y, z, sw)), _keras_np(keras, ref(y, z, sample_weight=sw)),
                                       rtol=1e-5, atol=1e-6, err_msg=f"{name} {reduction}")


def test_keras_function_forms_are_the_per_sample_values(keras, rng):
    y, a = _data("real", rng, False)
    a = np.abs(a)                          # poisson's ln(a + ε)
    for name in ("mean_absolute_percentage_error", "mean_squared_logarithmic_error", "poisson",
                 "squared_hinge", "categorical_hinge", "log_cosh", "cosine_similarity"):
        per_sample = getattr(F, f"{name}_per_sample")(a, y).data
        np.testing.assert_allclose(per_sample, _keras_np(keras, getattr(keras.losses, name)(y, a)),
                                   rtol=1e-5, atol=1e-6, err_msg=name)
        assert float(getattr(losses, name)(y, a).data) == pytest.approx(per_sample.mean(), rel=1e-6)


def test_cosine_similarity_axis(keras, rng):
    y, a = rng.standard_normal((2, N, D)).astype(np.float32)
    got = losses.CosineSimilarity(axis=0, reduction="none")(y, a).data
    np.testing.assert_allclose(got, _keras_np(keras, keras.losses.CosineSimilarity(
        axis=0, reduction="none")(y, a)), rtol=1e-5)


def test_bad_reduction_names_the_allowed_ones():
    with pytest.raises(ValueError, match="Poisson: expected reduction .*'sum'.*got reduction='avg'"):
        losses.Poisson(reduction="avg")


@pytest.mark.parametrize("name", NEW_LOSSES)
def test_new_losses_gradcheck_float64(name, rng):
    kind = {"poisson": "prob", "squared_hinge": "binary", "categorical_hinge": "onehot"}.get(name, "real")
    y, a = _data(kind, rng, False)
    if kind == "prob":
        a = a + 0.1
    if name in ("msle", "mean_squared_logarithmic_error"):
        a = np.abs(a) + 0.05       # away from the max(a, ε) kink
    y, a = y.astype(np.float64), a.astype(np.float64)
    w = rng.random(N)
    fn = getattr(F, name)
    gradcheck(lambda p: fn(p, y, sample_weight=w), a)
    loss = losses.get(name)
    for reduction in ("sum", "mean_with_sample_weight", "none"):
        loss.reduction = reduction
        gradcheck(lambda p: F.sum(loss(y, p, w)), a)


# --- metrics -------------------------------------------------------------------------------------
METRIC_NAMES = {"mape": "real", "mean_absolute_percentage_error": "real", "msle": "real",
                "mean_squared_logarithmic_error": "real", "poisson": "prob", "hinge": "binary",
                "squared_hinge": "binary", "categorical_hinge": "onehot", "log_cosh_error": "real",
                "LogCoshError": "real", "kl_divergence": "prob", "cosine_similarity": "real",
                "CosineSimilarity": "real", "Poisson": "prob", "SquaredHinge": "binary"}


@pytest.mark.parametrize("with_edges", [False, True], ids=["random", "exact_0_1"])
@pytest.mark.parametrize("name", sorted(METRIC_NAMES))
def test_mean_metrics_agree_with_keras_over_batches(keras, name, with_edges, rng):
    mine, ref = metrics.get(name), keras.metrics.get(name)
    assert mine.name == (name if name in metrics._NAMES else ref.name)
    for _ in range(3):
        y, p = _data(METRIC_NAMES[name], rng, with_edges)
        w = rng.random(N).astype(np.float32)
        mine.update_state(y, p, sample_weight=w)
        ref.update_state(y, p, sample_weight=w)
    assert mine.result() == pytest.approx(float(_keras_np(keras, ref.result())), rel=1e-5, abs=1e-6)


def _scores(rng, n=40, labels=1):
    """Binary targets and probabilities with exact 0, 1, 0.5 and repeated values among them."""
    y = rng.integers(0, 2, (n, labels)).astype(np.float32)
    p = rng.random((n, labels)).astype(np.float32)
    p[:6, 0] = [0.0, 1.0, 0.5, 0.5, 1.0, 0.0]
    p[6:9, 0] = np.float32(1 / 3)
    return y, p


def _compare(keras, mine, ref, batches):
    for y, p, w in batches:
        mine.update_state(y, p, sample_weight=w)
        ref.update_state(y, p, sample_weight=w)
    np.testing.assert_allclose(mine.result(), _keras_np(keras, ref.result()), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("summation", ["interpolation", "minoring", "majoring"])
@pytest.mark.parametrize("curve", ["ROC", "PR", "PRGAIN"])
@pytest.mark.parametrize("num_thresholds", [3, 7, 200])
def test_auc_agrees_with_keras(keras, curve, summation, num_thresholds, rng):
    batches = [(*_scores(rng), rng.random(40).astype(np.float32)) for _ in range(3)]
    batches.append((*_scores(rng), None))
    kwargs = dict(num_thresholds=num_thresholds, curve=curve, summation_method=summation)
    _compare(keras, metrics.AUC(**kwargs), keras.metrics.AUC(**kwargs), batches)


@pytest.mark.parametrize("kwargs", [dict(thresholds=[0.1, 0.35, 0.5, 0.9]),
                                    dict(thresholds=[0.25, 0.5, 0.75], curve="PR"),
                                    dict(from_logits=True, curve="PR"),
                                    dict(multi_label=True, num_thresholds=11),
                                    dict(multi_label=True, label_weights=[0.2, 1.0, 3.0], curve="PR"),
                                    dict(label_weights=[0.2, 1.0, 3.0])],
                         ids=["thresholds", "even_thresholds", "logits", "multi_label",
                              "multi_label_weights", "label_weights"])
def test_auc_options_agree_with_keras(keras, kwargs, rng):
    batches = []
    for _ in range(3):
        y, p = _scores(rng, labels=3)
        if kwargs.get("from_logits"):
            p = (4 * rng.standard_normal(p.shape)).astype(np.float32)
        batches.append((y, p, rng.random(40).astype(np.float32)))
    _compare(keras, metrics.AUC(**kwargs), keras.metrics.AUC(**kwargs), batches)


@pytest.mark.parametrize("kwargs", [{}, dict(thresholds=0.3), dict(thresholds=[0.2, 0.5, 0.5, 0.9]),
                                    dict(thresholds=[0.0, 0.5, 1.0]), dict(top_k=2),
                                    dict(class_id=1), dict(top_k=2, class_id=2),
                                    dict(thresholds=[0.1, 0.6], class_id=0)],
                         ids=["default", "scalar", "list", "even_list", "top_k", "class_id",
                              "top_k_class_id", "list_class_id"])
@pytest.mark.parametrize("cls", ["Precision", "Recall"])
def test_precision_recall_agree_with_keras(keras, cls, kwargs, rng):
    batches = []
    for i in range(3):
        y = np.eye(4, dtype=np.float32)[rng.integers(0, 4, 30)]
        p = rng.random((30, 4)).astype(np.float32)        # no ties within a row (top_k)
        p[:3] = [[0.0, 1.0, 0.5, 0.25], [1.0, 0.0, 0.6, 0.3], [0.5, 0.2, 0.1, 0.0]]
        batches.append((y, p, None if i == 2 else rng.random(30).astype(np.float32)))
    _compare(keras, getattr(metrics, cls)(**kwargs), getattr(keras.metrics, cls)(**kwargs), batches)


def test_confusion_metrics_reset_and_check_arguments(rng):
    m = metrics.AUC()
    y, p = _scores(rng)
    m.update_state(y, p)
    assert m.result() > 0
    m.reset_state()
    assert m.result() == 0.0 and not m.true_positives.any()
    with pytest.raises(ValueError, match="AUC: expected curve"):
        metrics.AUC(curve="DET")
    with pytest.raises(ValueError, match=r"Precision: expected thresholds in \[0, 1\], got \[1.5\]"):
        metrics.Precision(thresholds=[0.5, 1.5])
    with pytest.raises(ValueError, match="AUC: expected num_thresholds"):
        metrics.AUC(num_thresholds=1)


# --- training, configs, files ------------------------------------------------------------------
def _binary_problem(rng, n=120):
    x = rng.standard_normal((n, 5)).astype(np.float32)
    y = (x[:, :1] + 0.5 * x[:, 1:2] + 0.3 * rng.standard_normal((n, 1)) > 0).astype(np.float32)
    return x, y


def test_fit_logs_auc_precision_recall_and_their_val_versions(rng):
    x, y = _binary_problem(rng)
    xv, yv = _binary_problem(rng, 60)
    wv = rng.random(60).astype(np.float32)
    model = models.Sequential([layers.Dense(8, activation="tanh", input_shape=(5,)),
                               layers.Dense(1, activation="sigmoid")])
    model.compile(optimizers.Adam(0.05), "binary_crossentropy",
                  metrics=[metrics.AUC(), "precision", "recall", metrics.AUC(curve="PR", name="pr_auc")])
    history = model.fit(x, y, epochs=4, batch_size=32, verbose=0, validation_data=(xv, yv, wv), seed=1)
    for key in ("auc", "precision", "recall", "pr_auc"):
        assert len(history.history[key]) == 4 and len(history.history["val_" + key]) == 4
    assert history.history["val_auc"][-1] > 0.7
    pred = model.predict(xv)                        # the last val_ values come from these weights
    for metric, key in ((metrics.AUC(), "val_auc"), (metrics.Precision(), "val_precision"),
                        (metrics.Recall(), "val_recall"), (metrics.AUC(curve="PR"), "val_pr_auc")):
        metric.update_state(yv, pred, sample_weight=wv)
        assert history.history[key][-1] == pytest.approx(metric.result(), rel=1e-6)


@pytest.mark.parametrize("name", sorted(losses._NAMES))
def test_compile_with_every_loss_name_trains(name, rng):
    x = rng.standard_normal((64, 5)).astype(np.float32)
    labels = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0)
    y = labels if name == "sparse_categorical_crossentropy" else np.eye(3, dtype=np.float32)[labels]
    model = models.Sequential([layers.Dense(3, activation="softmax", input_shape=(5,))])
    model.compile("adam", name)
    before = model.get_weights()
    history = model.fit(x, y, epochs=2, batch_size=16, verbose=0, seed=0)
    assert np.isfinite(history.history["loss"]).all()
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_a_non_default_reduction_is_not_fused_away(rng):
    x = rng.standard_normal((32, 5)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 32)]
    model = models.Sequential([layers.Dense(3, activation="softmax", input_shape=(5,))])
    model.compile("sgd", losses.CategoricalCrossentropy(reduction="sum"))
    assert model.evaluate(x, y, batch_size=32, verbose=0) == pytest.approx(
        float(losses.CategoricalCrossentropy(reduction="sum")(y, model.predict(x)).data), rel=1e-5)
    model.compile("sgd", losses.CategoricalCrossentropy(reduction="none"))    # Keras: the mean
    w = rng.random(32).astype(np.float32)
    assert model.evaluate(x, y, sample_weight=w, batch_size=32, verbose=0) == pytest.approx(
        float(np.mean(losses.CategoricalCrossentropy(reduction="none")(y, model.predict(x), w).data)),
        rel=1e-5)
    assert np.isfinite(model.fit(x, y, epochs=1, verbose=0).history["loss"]).all()


def test_configs_round_trip():
    for cls in losses._CLASSES.values():
        loss = cls(reduction="sum")
        again = losses.deserialize(losses.serialize(loss))
        assert type(again) is cls and again.get_config() == loss.get_config()
        assert again.reduction == "sum"
    assert losses.CosineSimilarity(axis=0).get_config()["axis"] == 0
    for m in (metrics.AUC(num_thresholds=50, curve="PR", summation_method="majoring", from_logits=True),
              metrics.AUC(thresholds=[0.2, 0.4], multi_label=True, label_weights=[1.0, 2.0]),
              metrics.Precision(thresholds=[0.3, 0.7], class_id=1), metrics.Recall(top_k=2),
              metrics.CosineSimilarity(axis=0), metrics.LogCoshError(), metrics.Poisson(name="p")):
        again = metrics.deserialize(metrics.serialize(m))
        assert type(again) is type(m) and again.get_config() == m.get_config()


def test_model_file_keeps_the_new_loss_and_metrics(rng, tmp_path):
    x, y = _binary_problem(rng)
    model = models.Sequential([layers.Dense(1, activation="sigmoid", input_shape=(5,))])
    model.compile("adam", losses.Poisson(reduction="sum"),
                  metrics=[metrics.AUC(num_thresholds=50, curve="PR"), "precision",
                           metrics.Recall(thresholds=[0.3, 0.6]), "msle", "squared_hinge"])
    model.fit(x, y, epochs=1, batch_size=32, verbose=0, seed=0)
    model.save(tmp_path / "m.tidu")
    loaded = models.load_model(tmp_path / "m.tidu")
    assert type(loaded.compiled_loss) is losses.Poisson and loaded.compiled_loss.reduction == "sum"
    assert loaded.metrics_names == model.metrics_names
    assert [m.get_config() for m in loaded.compiled_metrics] == [m.get_config() for m in model.compiled_metrics]
    a = model.evaluate(x, y, verbose=0, return_dict=True)
    b = loaded.evaluate(x, y, verbose=0, return_dict=True)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_allclose(b[k], a[k], rtol=1e-6)
