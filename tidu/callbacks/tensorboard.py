"""TensorBoard: the training curves, the learning rate, weight histograms (and the parameter
server's staleness) written as TensorBoard event files, laid out and named as Keras 3 writes
them, with the tensorboard package's own writer and protobufs (no TensorFlow).

    model.fit(x, y, validation_data=(xv, yv), callbacks=[TensorBoard("logs")])
    $ tensorboard --logdir logs

Files: log_dir/train/events.out.tfevents.* and log_dir/validation/events.out.tfevents.*.
Tags, as Keras names them:
    train       epoch_<key> for each key of the epoch logs without 'val_' (epoch_loss,
                epoch_accuracy, ...), epoch_learning_rate (the optimizer's, a schedule
                evaluated at the step count), epoch_steps_per_second (write_steps_per_second);
                batch_<key> every `update_freq` batches (step = batches since fit began, from 1);
                '<model>/<layer>/<weight>/histogram' every histogram_freq epochs (from epoch 0),
                '.../image' with write_images
    validation  epoch_<key> for each 'val_<key>' (prefix dropped), and
                evaluation_<key>_vs_iterations at step = the number of updates so far
Under the parameter server (fit(distributed=...)) the epoch logs carry the server's
mean_staleness, max_staleness, updates and updates_per_sec, so epoch_mean_staleness and
epoch_max_staleness are scalars like any other; its compiled optimizer is not used there, so
no epoch_learning_rate is written (the rule's learning rate is the constant it was made with).

write_graph: tidu has no static op graph, so none is written; instead the model's summary
table and (for models that have one) its config as JSON are written as text (tags
'model_summary', 'model_config', step 0, train), shown in TensorBoard's Text tab.
profile_batch and embeddings_freq/embeddings_metadata are refused with an error: tidu has no
profiler trace and no projector checkpoint to write.
"""
import json
import os
import struct
import time
import zlib

import numpy as np

from tidu._checks import check_int
from tidu.callbacks.base import Callback

__all__ = ["TensorBoard"]

HISTOGRAM_BUCKETS = 30          # tf.summary.histogram's default
MAX_IMAGES = 3                  # tf.summary.image's max_outputs default


def _tensorboard():
    """The tensorboard modules the callback writes with, or an ImportError saying how to get them."""
    try:
        from tensorboard.compat.proto import event_pb2, summary_pb2
        from tensorboard.plugins.histogram import metadata as histogram_metadata
        from tensorboard.plugins.image import metadata as image_metadata
        from tensorboard.plugins.scalar.summary_v2 import scalar_pb
        from tensorboard.plugins.text.summary_v2 import text_pb
        from tensorboard.summary.writer.event_file_writer import EventFileWriter
        from tensorboard.util import tensor_util
    except ImportError as e:
        raise ImportError("TensorBoard: needs the tensorboard package (no TensorFlow needed); "
                          "install it with `pip install tidu[tensorboard]`") from e
    return {"Event": event_pb2.Event, "Summary": summary_pb2.Summary, "scalar_pb": scalar_pb,
            "text_pb": text_pb, "EventFileWriter": EventFileWriter, "tensor_proto": tensor_util.make_tensor_proto,
            "histogram_metadata": histogram_metadata.create_summary_metadata,
            "image_metadata": image_metadata.create_summary_metadata}


def histogram_buckets(data, bucket_count=HISTOGRAM_BUCKETS):
    """tf.summary.histogram's [k, 3] array of (left edge, right edge, count): k equal-width
    buckets from min to max, a value v in bucket min(floor((v - min) / width), k - 1); all
    values equal: every edge is that value and the last bucket holds them all."""
    data = np.asarray(data, dtype=np.float64).ravel()
    if data.size == 0:
        return np.zeros((bucket_count, 3))
    lo, hi = data.min(), data.max()
    if hi == lo:
        counts = np.zeros(bucket_count)
        counts[-1] = data.size
        return np.stack([np.full(bucket_count, lo), np.full(bucket_count, lo), counts], axis=1)
    index = np.minimum(np.floor((data - lo) / ((hi - lo) / bucket_count)).astype(np.int64), bucket_count - 1)
    counts = np.bincount(index, minlength=bucket_count).astype(np.float64)
    edges = np.linspace(lo, hi, bucket_count + 1)
    return np.stack([edges[:-1], edges[1:], counts], axis=1)


def weight_images(w):
    """Keras's picture of a weight: an (n, height, width, channels) batch, or None when it has
    no picture. Squeezed; a vector is a 1-pixel-wide column, a matrix one grey image (the
    longer side across), a 3-d array one grey image per slice of its last axis; a 4-d array is
    a batch as it stands when its last axis is 1, 3 or 4 (grey, RGB, RGBA)."""
    w = np.squeeze(np.asarray(w))
    if w.ndim == 1:
        w = w.reshape(1, w.shape[0], 1, 1)
    elif w.ndim == 2:
        if w.shape[0] > w.shape[1]:
            w = w.T
        w = w.reshape(1, *w.shape, 1)
    elif w.ndim == 3:
        w = np.transpose(w, (2, 0, 1))[..., None]
    if w.ndim != 4 or w.shape[-1] not in (1, 3, 4):
        return None
    return w


def to_uint8(image):
    """tf.image.convert_image_dtype(float image, uint8, saturate=True): v·255.5 clipped to
    [0, 255], truncated, so values <= 0 are black and >= 1 white."""
    return np.clip(np.asarray(image, dtype=np.float64) * 255.5, 0, 255).astype(np.uint8)


def png(pixels):
    """PNG bytes of a uint8 (height, width, channels) image, channels 1, 3 or 4; no filter."""
    h, w, c = pixels.shape
    color = {1: 0, 3: 2, 4: 6}[c]                         # grey, RGB, RGBA

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + np.ascontiguousarray(pixels[i]).tobytes() for i in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, color, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


class TensorBoard(Callback):
    """Write the logs of fit (and weight histograms) for TensorBoard; see the module docstring
    for the files and tags. Keras 3's arguments:

    log_dir: the directory; event files go to its 'train' and 'validation' subdirectories.
    histogram_freq: every that many epochs (epochs 0, f, 2f, ...), a histogram of each weight
        of each layer (30 buckets, as tf.summary.histogram); 0: none.
    write_graph: the model's summary and config as text (tidu has no op graph to draw).
    write_images: each weight also as an image (Keras's layout, see weight_images).
    write_steps_per_second: epoch_steps_per_second (steps of the epoch / its seconds) and
        batch_steps_per_second (1 / that batch's seconds).
    update_freq: 'epoch'; 'batch' (= 1); or N: the batch logs (running epoch averages) every N
        batches, counted across epochs from the start of fit.
    profile_batch, embeddings_freq, embeddings_metadata: must be left off (0, 0, None).
    Needs the tensorboard package (`pip install tidu[tensorboard]`), not TensorFlow.
    """

    def __init__(self, log_dir="logs", histogram_freq=0, write_graph=True, write_images=False,
                 write_steps_per_second=False, update_freq="epoch", profile_batch=0,
                 embeddings_freq=0, embeddings_metadata=None):
        super().__init__()
        owner = "TensorBoard"
        self._tb = _tensorboard()
        self.log_dir = os.fspath(log_dir)
        self.histogram_freq = check_int(owner, "histogram_freq", histogram_freq, 0)
        if update_freq == "batch":
            update_freq = 1
        if update_freq != "epoch":
            if isinstance(update_freq, str):
                raise ValueError(f"{owner}: expected update_freq to be 'epoch', 'batch' or a positive "
                                 f"int, got update_freq={update_freq!r}")
            update_freq = check_int(owner, "update_freq", update_freq, 1)
        self.update_freq = update_freq
        if profile_batch not in (0, None, (0, 0), [0, 0], "0", "0,0"):
            raise ValueError(f"{owner}: profiling is not available in tidu (there is no profiler "
                             f"trace to write); expected profile_batch=0, got "
                             f"profile_batch={profile_batch!r}")
        self.profile_batch = 0
        if embeddings_freq or embeddings_metadata is not None:
            raise ValueError(f"{owner}: the embedding projector is not available in tidu (it reads a "
                             f"TensorFlow checkpoint tidu does not write); expected embeddings_freq=0 "
                             f"and embeddings_metadata=None, got embeddings_freq={embeddings_freq!r}, "
                             f"embeddings_metadata={embeddings_metadata!r}")
        self.embeddings_freq, self.embeddings_metadata = 0, None
        self.write_graph, self.write_images = bool(write_graph), bool(write_images)
        self.write_steps_per_second = bool(write_steps_per_second)
        self._writers = {}
        self._global_batch = self._epoch_batches = self._updates = 0
        self._epoch_start = self._batch_start = time.perf_counter()

    # --- writing --------------------------------------------------------------------------------
    def _writer(self, which):
        """The EventFileWriter of log_dir/train or log_dir/validation, opened on first use."""
        if which not in self._writers:
            self._writers[which] = self._tb["EventFileWriter"](
                os.path.join(self.log_dir, which), filename_suffix=".v2")
        return self._writers[which]

    def _write(self, which, summary, step):
        event = self._tb["Event"](wall_time=time.time(), step=int(step), summary=summary)
        self._writer(which).add_event(event)

    def _scalar(self, which, tag, value, step):
        self._write(which, self._tb["scalar_pb"](tag, float(value)), step)

    def _tensor(self, which, tag, array, metadata, step, dtype=None):
        summary = self._tb["Summary"]()
        summary.value.add(tag=tag, metadata=metadata,
                          tensor=self._tb["tensor_proto"](array, dtype=dtype))
        self._write(which, summary, step)

    def _close(self):
        writers, self._writers = self._writers, {}
        for writer in writers.values():
            writer.close()

    _cleanup = _close               # fit calls it when training fails

    # --- hooks ----------------------------------------------------------------------------------
    def on_train_begin(self, logs=None):
        self._close()
        self._global_batch = 0
        self._updates = getattr(getattr(self.model, "optimizer", None), "iterations", 0) or 0
        if self.write_graph:
            self._write_model_text()

    def on_train_end(self, logs=None):
        self._close()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start, self._epoch_batches = time.perf_counter(), 0

    def on_train_batch_begin(self, batch, logs=None):
        self._global_batch += 1
        self._epoch_batches += 1
        self._batch_start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if self.update_freq == "epoch" or self._global_batch % self.update_freq:
            return
        step = self._global_batch
        if self.write_steps_per_second:
            seconds = time.perf_counter() - self._batch_start
            self._scalar("train", "batch_steps_per_second", 1.0 / seconds if seconds > 0 else float("inf"), step)
        for name, value in (logs or {}).items():
            self._scalar("train", f"batch_{name}", value, step)

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        train = {k: v for k, v in logs.items() if not k.startswith("val_")}
        val = {k[4:]: v for k, v in logs.items() if k.startswith("val_")}
        distributed = "mean_staleness" in logs
        if distributed:
            self._updates += int(logs.get("updates", 0))
        else:
            lr = self._learning_rate()
            if lr is not None:
                train["learning_rate"] = lr
            self._updates = getattr(getattr(self.model, "optimizer", None), "iterations", self._updates)
        if self.write_steps_per_second:
            seconds = time.perf_counter() - self._epoch_start
            train["steps_per_second"] = self._epoch_batches / seconds if seconds > 0 else float("inf")
        for name, value in train.items():
            self._scalar("train", f"epoch_{name}", value, epoch)
        for name, value in val.items():
            self._scalar("validation", f"evaluation_{name}_vs_iterations", value, self._updates)
            self._scalar("validation", f"epoch_{name}", value, epoch)
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            self._write_weights(epoch)
        for writer in self._writers.values():
            writer.flush()

    # --- what is written ------------------------------------------------------------------------
    def _learning_rate(self):
        """The compiled optimizer's learning rate for its next update, or None without one."""
        optimizer = getattr(self.model, "optimizer", None)
        lr = getattr(optimizer, "learning_rate", None)
        return None if lr is None or callable(lr) else float(lr)

    def _write_weights(self, epoch):
        """A histogram (and with write_images a picture) of each weight of each layer, tagged
        '<model>/<layer>/<weight>/histogram' as Keras 3's weight paths."""
        prefix = getattr(self.model, "name", None)
        hist_meta = self._tb["histogram_metadata"](display_name=None, description=None)
        for layer in self.model.layers:
            for weight in layer.weights:
                name = weight.name.replace(":", "_")
                path = f"{prefix}/{name}" if prefix else name
                self._tensor("train", f"{path}/histogram", histogram_buckets(weight.data), hist_meta,
                             epoch, dtype=np.float64)
                if self.write_images:
                    self._write_image(f"{path}/image", weight.data, epoch)

    def _write_image(self, tag, w, step):
        """tf.summary.image's tensor: [width, height, PNG, ...] as strings, at most MAX_IMAGES."""
        batch = weight_images(w)
        if batch is None:
            return
        pictures = [png(to_uint8(image)) for image in batch[:MAX_IMAGES]]
        data = np.array([str(batch.shape[2]).encode(), str(batch.shape[1]).encode(), *pictures],
                        dtype=object)
        self._tensor("train", tag, data, self._tb["image_metadata"](display_name=None, description=None),
                     step)

    def _write_model_text(self):
        """The summary table (and the config as JSON) as text at step 0 of train."""
        lines = []
        try:
            self.model.summary(print_fn=lines.append)
        except Exception as e:  # a model that cannot summarise itself still trains
            lines = [f"(no summary: {type(e).__name__}: {e})"]
        table = "\n".join(lines)
        self._write("train", self._tb["text_pb"]("model_summary", _preformatted(table)), 0)
        try:
            config = json.dumps(self.model.get_config(), indent=2, default=repr)
        except (TypeError, NotImplementedError, AttributeError):
            return                  # a subclassed model has no config
        self._write("train", self._tb["text_pb"]("model_config", _preformatted(config)), 0)


def _preformatted(text):
    """Markdown that shows `text` as it is (TensorBoard's text tab renders Markdown)."""
    return "\n".join("    " + line for line in text.splitlines())
