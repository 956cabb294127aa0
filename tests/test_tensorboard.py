"""callbacks.TensorBoard: the event files are read back with tensorboard's own reader
(EventAccumulator) and compared with what fit logged (History, the batch logs, the weights)."""
import io
import math
import os
import sys

import numpy as np
import pytest

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from tensorboard.util import tensor_util  # noqa: E402

from tidu import callbacks, layers, models  # noqa: E402
from tidu.callbacks.tensorboard import histogram_buckets  # noqa: E402
from tidu.distributed import ASGD, ParameterServer  # noqa: E402
from tidu.optimizers import SGD, schedules  # noqa: E402

N, BS = 100, 25                 # 4 steps an epoch


@pytest.fixture
def data(rng):
    centres = rng.standard_normal((3, 5)) * 2
    labels = rng.integers(0, 3, N)
    x = (centres[labels] + rng.standard_normal((N, 5))).astype(np.float32)
    return x, labels


def make_model(lr=0.05):
    model = models.Sequential([layers.Dense(8, activation="relu", input_shape=(5,), name="hidden"),
                               layers.Dense(3, activation="softmax", name="out")], name="mlp")
    model.compile(SGD(lr), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def read(log_dir, run):
    """{tag: [(step, value array), ...]} of log_dir/run, by tensorboard's reader."""
    acc = EventAccumulator(os.path.join(log_dir, run), size_guidance={"tensors": 0})
    acc.Reload()
    out = {tag: [(e.step, tensor_util.make_ndarray(e.tensor_proto)) for e in acc.Tensors(tag)]
           for tag in acc.Tags()["tensors"]}
    plugins = {tag: acc.SummaryMetadata(tag).plugin_data.plugin_name for tag in out}
    return out, plugins


def scalars(events, tag):
    return [(step, float(v)) for step, v in events[tag]]


def f32(values):
    return [float(np.float32(v)) for v in values]


def test_epoch_scalars_equal_the_history(data, tmp_path):
    x, y = data
    decay = schedules.ExponentialDecay(0.1, decay_steps=4, decay_rate=0.5)
    model = make_model()
    model.compile(SGD(decay), "sparse_categorical_crossentropy", metrics=["accuracy"])
    epochs = 4
    history = model.fit(x, y, batch_size=BS, epochs=epochs, verbose=0, validation_data=(x[:40], y[:40]),
                        callbacks=[callbacks.TensorBoard(tmp_path)]).history
    for run in ("train", "validation"):
        names = os.listdir(tmp_path / run)
        assert len(names) == 1 and names[0].startswith("events.out.tfevents."), names
    train, plugins = read(tmp_path, "train")
    val, _ = read(tmp_path, "validation")
    steps = list(range(epochs))
    assert scalars(train, "epoch_loss") == list(zip(steps, f32(history["loss"])))
    assert scalars(train, "epoch_accuracy") == list(zip(steps, f32(history["accuracy"])))
    assert scalars(val, "epoch_loss") == list(zip(steps, f32(history["val_loss"])))
    assert scalars(val, "epoch_accuracy") == list(zip(steps, f32(history["val_accuracy"])))
    # the learning rate of the next update: the schedule at the step count, 4 steps an epoch
    lr = [0.1 * 0.5 ** ((e + 1) * 4 / 4) for e in steps]
    assert scalars(train, "epoch_learning_rate") == list(zip(steps, f32(lr)))
    # as Keras's on_test_end: the validation logs against the number of updates
    assert scalars(val, "evaluation_loss_vs_iterations") == \
        list(zip([4 * (e + 1) for e in steps], f32(history["val_loss"])))
    assert not any(t.startswith("batch_") or t.endswith("/histogram") for t in train)
    assert plugins["epoch_loss"] == "scalars"


def test_learning_rate_changed_by_a_callback(data, tmp_path):
    """LearningRateScheduler logs the learning rate it set; TensorBoard writes the same."""
    x, y = data
    model = make_model()
    sched = callbacks.LearningRateScheduler(lambda epoch, lr: 0.2 / (epoch + 1))
    history = model.fit(x, y, batch_size=BS, epochs=3, verbose=0,
                        callbacks=[sched, callbacks.TensorBoard(tmp_path)]).history
    train, _ = read(tmp_path, "train")
    assert history["learning_rate"] == pytest.approx([0.2, 0.1, 0.2 / 3])
    assert scalars(train, "epoch_learning_rate") == list(zip(range(3), f32(history["learning_rate"])))


class BatchLogs(callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.logs = []

    def on_train_batch_end(self, batch, logs=None):
        self.logs.append(dict(logs))


@pytest.mark.parametrize("update_freq, every", [("batch", 1), (5, 5)])
def test_batch_scalars_every_n_batches(data, tmp_path, update_freq, every):
    x, y = data
    seen = BatchLogs()
    model = make_model()
    model.fit(x, y, batch_size=BS, epochs=3, verbose=0,
              callbacks=[seen, callbacks.TensorBoard(tmp_path, update_freq=update_freq)])
    train, _ = read(tmp_path, "train")
    steps = [s for s in range(1, 13) if s % every == 0]     # batches counted from 1 across epochs
    for key in ("loss", "accuracy"):
        expected = [(s, float(np.float32(seen.logs[s - 1][key]))) for s in steps]
        assert scalars(train, f"batch_{key}") == expected
    assert len(scalars(train, "epoch_loss")) == 3


def test_steps_per_second(data, tmp_path):
    x, y = data
    make_model().fit(x, y, batch_size=BS, epochs=2, verbose=0, callbacks=[
        callbacks.TensorBoard(tmp_path, update_freq=2, write_steps_per_second=True)])
    train, _ = read(tmp_path, "train")
    assert [s for s, _ in scalars(train, "epoch_steps_per_second")] == [0, 1]
    assert [s for s, _ in scalars(train, "batch_steps_per_second")] == [2, 4, 6, 8]
    assert all(v > 0 for _, v in scalars(train, "epoch_steps_per_second") + scalars(train, "batch_steps_per_second"))


class Weights(callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.at = []

    def on_epoch_end(self, epoch, logs=None):
        self.at.append({f"{self.model.name}/{w.name}": w.data.copy()
                        for layer in self.model.layers for w in layer.weights})


def test_weight_histograms_every_histogram_freq_epochs(data, tmp_path):
    x, y = data
    seen = Weights()
    model = make_model()
    model.fit(x, y, batch_size=BS, epochs=5, verbose=0,
              callbacks=[seen, callbacks.TensorBoard(tmp_path, histogram_freq=2)])
    train, plugins = read(tmp_path, "train")
    tags = sorted(t for t in train if t.endswith("/histogram"))
    assert tags == sorted(f"{name}/histogram" for name in seen.at[0])
    assert "mlp/hidden/kernel/histogram" in tags     # Keras 3's weight path
    for tag in tags:
        assert plugins[tag] == "histograms"
        events = train[tag]
        assert [s for s, _ in events] == [0, 2, 4]
        for step, buckets in events:
            w = seen.at[step][tag[:-len("/histogram")]].astype(np.float64)
            assert buckets.shape == (30, 3)
            assert buckets[:, 2].sum() == w.size
            assert buckets[0, 0] == w.min() and buckets[-1, 1] == w.max()
            counts, edges = np.histogram(w, bins=30, range=(w.min(), w.max()))
            np.testing.assert_array_equal(buckets[:, 2], counts)
            np.testing.assert_allclose(buckets[:, 0], edges[:-1], rtol=1e-12, atol=1e-15)
        assert not np.array_equal(events[0][1], events[-1][1])   # the weights moved


def test_histogram_buckets_equal_tensorboards(rng):
    """The buckets are tensorboard's own numpy histogram (histogram_pb), cheaper on memory."""
    from tensorboard.plugins.histogram.summary_v2 import histogram_pb
    for data in (rng.standard_normal((17, 9)), np.full(5, 0.25), np.zeros(0), rng.integers(0, 4, 50)):
        ref = tensor_util.make_ndarray(histogram_pb("t", data).value[0].tensor)
        np.testing.assert_array_equal(histogram_buckets(data), ref)


def test_write_images(data, tmp_path):
    pil = pytest.importorskip("PIL.Image")
    x, y = data
    seen = Weights()
    make_model().fit(x, y, batch_size=BS, epochs=1, verbose=0,
                     callbacks=[seen, callbacks.TensorBoard(tmp_path, histogram_freq=1, write_images=True)])
    train, plugins = read(tmp_path, "train")
    assert plugins["mlp/hidden/kernel/image"] == "images"
    (step, tensor), = train["mlp/hidden/kernel/image"]
    w = seen.at[0]["mlp/hidden/kernel"]                # (5, 8): 5 rows, 8 columns
    assert step == 0 and list(tensor[:2]) == [b"8", b"5"] and len(tensor) == 3
    picture = np.asarray(pil.open(io.BytesIO(tensor[2])))
    np.testing.assert_array_equal(picture, np.clip(w.astype(np.float64) * 255.5, 0, 255).astype(np.uint8))
    (_, bias), = train["mlp/out/bias/image"]      # a vector: a column 1 pixel wide
    assert list(bias[:2]) == [b"1", b"3"]


def test_model_text_with_write_graph(data, tmp_path):
    x, y = data
    model = make_model()
    model.fit(x, y, batch_size=BS, epochs=1, verbose=0, callbacks=[callbacks.TensorBoard(tmp_path / "a")])
    train, plugins = read(tmp_path / "a", "train")
    assert plugins["model_summary"] == "text" and train["model_summary"][0][0] == 0
    text = train["model_summary"][0][1].item().decode()
    assert "hidden" in text and "out" in text and str(model.count_params()) in text.replace(",", "")
    assert '"layers"' in train["model_config"][0][1].item().decode()
    model.fit(x, y, batch_size=BS, epochs=1, verbose=0,
              callbacks=[callbacks.TensorBoard(tmp_path / "b", write_graph=False)])
    train, _ = read(tmp_path / "b", "train")
    assert "model_summary" not in train and "model_config" not in train


def test_staleness_under_the_parameter_server(data, tmp_path):
    x, y = data
    model = make_model()
    ps = ParameterServer(ASGD(0.05), num_workers=4, schedule="random", seed=3)
    history = model.fit(x, y, batch_size=10, epochs=3, verbose=0, validation_data=(x[:30], y[:30]),
                        distributed=ps, callbacks=[callbacks.TensorBoard(tmp_path, update_freq=4)]).history
    train, _ = read(tmp_path, "train")
    val, _ = read(tmp_path, "validation")
    for key in ("mean_staleness", "max_staleness", "loss", "updates"):
        assert scalars(train, f"epoch_{key}") == list(zip(range(3), f32(history[key])))
    assert len(set(history["mean_staleness"])) > 1 and max(history["max_staleness"]) > 0
    assert scalars(val, "epoch_loss") == list(zip(range(3), f32(history["val_loss"])))
    assert [s for s, _ in scalars(val, "evaluation_loss_vs_iterations")] == \
        list(np.cumsum(history["updates"]))
    assert [s for s, _ in scalars(train, "batch_loss")] == [4, 8, 12, 16, 20, 24, 28]
    assert "epoch_learning_rate" not in train     # the compiled optimizer is not what trains


@pytest.mark.parametrize("kwargs, error, words", [
    ({"profile_batch": 5}, ValueError, "profile_batch"),
    ({"profile_batch": (2, 4)}, ValueError, "profile_batch"),
    ({"embeddings_freq": 1}, ValueError, "embeddings_freq"),
    ({"embeddings_metadata": {"embedding": "meta.tsv"}}, ValueError, "embeddings_metadata"),
    ({"update_freq": "step"}, ValueError, "update_freq"),
    ({"update_freq": 0}, ValueError, "update_freq"),
    ({"update_freq": 2.5}, TypeError, "update_freq"),
    ({"histogram_freq": -1}, ValueError, "histogram_freq"),
    ({"histogram_freq": 0.5}, TypeError, "histogram_freq"),
])
def test_bad_arguments(tmp_path, kwargs, error, words):
    with pytest.raises(error, match=words) as e:
        callbacks.TensorBoard(tmp_path, **kwargs)
    assert "TensorBoard" in str(e.value)
    assert not os.listdir(tmp_path)


def test_the_defaults_that_mean_off_are_accepted(tmp_path):
    tb = callbacks.TensorBoard(tmp_path, profile_batch=0, embeddings_freq=0, update_freq="batch")
    assert tb.update_freq == 1 and not os.listdir(tmp_path)      # nothing written before fit


def test_without_tensorboard_the_error_says_how_to_install(monkeypatch, tmp_path):
    for name in [m for m in sys.modules if m == "tensorboard" or m.startswith("tensorboard.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    with pytest.raises(ImportError, match=r"pip install tidu\[tensorboard\]"):
        callbacks.TensorBoard(tmp_path)


def test_files_closed_when_fit_fails(data, tmp_path):
    x, y = data
    tb = callbacks.TensorBoard(tmp_path)

    def boom(epoch, logs):
        if epoch == 1:
            raise RuntimeError("stop here")
    with pytest.raises(RuntimeError, match="stop here"):
        make_model().fit(x, y, batch_size=BS, epochs=3, verbose=0,
                         callbacks=[tb, callbacks.LambdaCallback(on_epoch_end=boom)])
    assert tb._writers == {}
    train, _ = read(tmp_path, "train")
    assert [s for s, _ in scalars(train, "epoch_loss")] == [0, 1]
    assert math.isfinite(scalars(train, "epoch_loss")[0][1])


def test_tensorboards_own_data_provider_serves_every_kind(data, tmp_path):
    """What the TensorBoard server would show: its multiplexer and data provider find the
    scalars, histograms, images and text under the train and validation runs."""
    from tensorboard import context
    from tensorboard.backend.event_processing import data_provider
    from tensorboard.backend.event_processing import plugin_event_multiplexer as pem
    x, y = data
    make_model().fit(x, y, batch_size=BS, epochs=2, verbose=0, validation_data=(x[:20], y[:20]),
                     callbacks=[callbacks.TensorBoard(tmp_path, histogram_freq=1, write_images=True)])
    mux = pem.EventMultiplexer()
    mux.AddRunsFromDirectory(str(tmp_path))
    mux.Reload()
    provider, ctx = data_provider.MultiplexerDataProvider(mux, str(tmp_path)), context.RequestContext()
    found = provider.read_scalars(ctx, experiment_id="", plugin_name="scalars", downsample=10)
    assert {"epoch_loss", "epoch_accuracy", "epoch_learning_rate"} <= set(found["train"])
    assert [d.step for d in found["validation"]["epoch_loss"]] == [0, 1]
    hist = provider.list_tensors(ctx, experiment_id="", plugin_name="histograms")["train"]
    assert "mlp/hidden/kernel/histogram" in hist
    images = provider.list_blob_sequences(ctx, experiment_id="", plugin_name="images")["train"]
    assert "mlp/hidden/kernel/image" in images
    assert set(provider.list_tensors(ctx, experiment_id="", plugin_name="text")["train"]) == \
        {"model_summary", "model_config"}
