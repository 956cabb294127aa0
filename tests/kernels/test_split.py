"""tidu.kernels.split through tidu.training.split_predict: a conv model's inference, one
compiled call per layer with the batch's two halves on numba's two threads, against the
layers' own NumPy path (the reference). The GEMMs are the same products on one thread instead
of two and the bias comes after the pool's maximum, so the outputs agree to float rounding:
within 1e-6 of the largest |value| in float32, 1e-13 in float64. Odd shapes: batch 2 and 3
(halves of 1 and 2 rows), 'same' padding, strides 2, dilation 2, pools that leave rows and
columns out, one input channel with and without the direct kernel, and batches of several
im2col chunks."""
import multiprocessing
import os
import threading

import numpy as np
import pytest

from tidu import Tensor, kernels, layers, models, no_grad
from tidu.kernels import halves
from tidu.kernels import split as split_kernels
from tidu.training import split_predict as split

pytest.importorskip("numba")
pytest.importorskip("threadpoolctl")


@pytest.fixture(autouse=True)
def _need_two_cores():
    if halves.spans(halves.MIN_ROWS) is None:
        pytest.skip("no halves on this machine: one CPU, NumPy's BLAS on one thread, or no "
                    "threadpoolctl (tidu.kernels.halves.spans)")


def _lenet(dtype="float32"):
    return models.Sequential([
        layers.Reshape((28, 28, 1), input_shape=(784,), dtype=dtype),
        layers.Conv2D(20, 5, activation="relu", dtype=dtype), layers.MaxPooling2D(2),
        layers.Conv2D(50, 5, activation="relu", dtype=dtype), layers.MaxPooling2D(2),
        layers.Flatten(), layers.Dense(500, activation="relu", dtype=dtype),
        layers.Dense(10, activation="softmax", dtype=dtype)])


MODELS = {   # name: (builder, input shape per sample)
    "lenet": (_lenet, (784,)),
    # 'same' padding and strides 2 on 3 channels, no pool, linear activations
    "same_strided": (lambda: models.Sequential([
        layers.Conv2D(6, 3, strides=2, padding="same", input_shape=(9, 11, 3)),
        layers.Flatten(), layers.Dense(7)]), (9, 11, 3)),
    # dilation 2, a 3×3 pool over a 7×7 map (a row and a column left out), relu
    "dilated_pool3": (lambda: models.Sequential([
        layers.Conv2D(5, 3, dilation_rate=2, activation="relu", input_shape=(11, 11, 2)),
        layers.MaxPooling2D(3), layers.Flatten(),
        layers.Dense(4, activation="softmax")]), (11, 11, 2)),
    # one channel with 'same' padding: the im2col kernel, not the direct one; a (2, 3) pool
    "one_channel_same": (lambda: models.Sequential([
        layers.Conv2D(8, (3, 4), padding="same", activation="relu", input_shape=(10, 13, 1)),
        layers.MaxPooling2D((2, 3)), layers.Dropout(0.5), layers.Reshape((-1,)),
        layers.Dense(6, activation="relu"), layers.Dense(3)]), (10, 13, 1)),
    # one channel, 'same' padding of a 2×2 kernel: zeros below and right only (not the direct
    # kernel, which takes no padding), odd sizes
    "one_channel_same_even": (lambda: models.Sequential([
        layers.Conv2D(3, 2, padding="same", activation="relu", input_shape=(7, 9, 1)),
        layers.MaxPooling2D(2), layers.Flatten(), layers.Dense(2)]), (7, 9, 1)),
    # a conv after a conv without a pool between, strides (2, 1), no bias
    "two_convs": (lambda: models.Sequential([
        layers.Conv2D(4, 3, strides=(2, 1), use_bias=False, input_shape=(12, 9, 3)),
        layers.Conv2D(5, 2, activation="relu"), layers.MaxPooling2D(2), layers.Flatten(),
        layers.Dense(2, activation="softmax")]), (12, 9, 3)),
}


def _plain(model, x):
    """The model's output on the NumPy path, layer by layer (its forward: predict_on_batch
    refuses NaN)."""
    previous = kernels.set_enabled(False)
    try:
        with no_grad():
            return model.forward(Tensor(x), training=False).numpy()
    finally:
        kernels.set_enabled(previous)


def _close(got, want, dtype):
    tol = 1e-6 if dtype == np.float32 else 1e-13
    assert got.dtype == want.dtype == dtype and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=tol * np.nanmax(np.abs(want)))


@pytest.mark.parametrize("batch", [2, 3, 32])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_split_matches_the_layer_by_layer_path(rng, name, batch):
    build, shape = MODELS[name]
    model = build()
    x = rng.standard_normal((batch, *shape)).astype(np.float32)
    before = x.copy()
    want = _plain(model, x)
    stages = split.plan(model.steps)
    assert stages is not None, f"{name}: every layer has a stage"
    got = split.run(stages, x)
    assert got is not None, "the split did not run"
    _close(got, want, np.float32)
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_im2col_in_chunks_of_one_image(rng, monkeypatch, name):
    """Each half's im2col rows filled and multiplied one image at a time: the same outputs."""
    monkeypatch.setattr(split_kernels, "CHUNK_BYTES", 1)
    build, shape = MODELS[name]
    model = build()
    x = rng.standard_normal((7, *shape)).astype(np.float32)
    got = split.run(split.plan(model.steps), x)
    assert got is not None
    _close(got, _plain(model, x), np.float32)


def test_float64(rng):
    model = _lenet("float64")
    x = rng.standard_normal((5, 784)).astype(np.float32).astype(np.float64)   # as check_x has it
    got = split.run(split.plan(model.steps), x)
    assert got is not None
    _close(got, _plain(model, x), np.float64)


def test_lenet_uses_the_direct_kernel_and_the_im2col_one(rng, monkeypatch):
    """LeNet's first conv (one channel, 2×2 pool) goes to the direct kernel, the second to
    im2col."""
    model = _lenet()
    fast = split_kernels.split_kernels(np.dtype(np.float32))
    seen = []
    monkeypatch.setattr(split, "split_kernels", lambda dtype: split_kernels._Kernels(
        fast.dense, lambda x, *args: seen.append(x.shape[3]) or fast.conv(x, *args)))
    got = split.run(split.plan(model.steps), rng.standard_normal((4, 784)).astype(np.float32))
    assert got is not None and seen == [1, 20]


def test_predict_on_batch_and_predict_use_it(rng, monkeypatch):
    """predict_on_batch and predict at batches under loops.SPLIT_ROWS take the split; the
    results equal the layer-by-layer path's to float rounding."""
    model = _lenet()
    x = rng.standard_normal((40, 784)).astype(np.float32)
    runs = []
    real = split.run

    def counting(stages, xb):
        out = real(stages, xb)
        runs.append(out is not None)
        return out
    monkeypatch.setattr(split, "run", counting)
    _close(model.predict_on_batch(x[:32]), _plain(model, x[:32]), np.float32)
    assert runs == [True]
    _close(model.predict(x, batch_size=16, verbose=0), _plain(model, x), np.float32)
    assert runs == [True] * 4     # batches of 16, 16 and 8


@pytest.mark.filterwarnings("ignore:invalid value encountered")
def test_nan_and_inf_as_the_layer_by_layer_path(rng):
    model = MODELS["dilated_pool3"][0]()
    x = rng.standard_normal((4, 11, 11, 2)).astype(np.float32)
    x[0, 3, 4, 1] = np.nan
    x[2, 5, 5, 0] = np.inf
    got = split.run(split.plan(model.steps), x)
    want = _plain(model, x)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    _close(got, want, np.float32)


@pytest.mark.parametrize("build", [
    lambda: models.Sequential([layers.Conv2D(3, 3, activation="tanh", input_shape=(8, 8, 1))]),
    lambda: models.Sequential([layers.Conv2D(3, 3, input_shape=(8, 8, 1)),
                               layers.AveragePooling2D(2)]),
    lambda: models.Sequential([layers.Conv2D(3, 3, input_shape=(8, 8, 1)),
                               layers.MaxPooling2D(2, strides=1)]),
    lambda: models.Sequential([layers.Conv2D(3, 3, input_shape=(8, 8, 1)),
                               layers.BatchNormalization()]),
    lambda: models.Sequential([layers.MaxPooling2D(2, input_shape=(8, 8, 1)), layers.Flatten()]),
    lambda: models.Sequential([layers.Flatten(input_shape=(8, 8, 1)),
                               layers.Dense(3, activation="sigmoid")]),
], ids=["tanh", "avg_pool", "overlapping_pool", "batch_norm", "pool_alone", "sigmoid"])
def test_no_plan_for_other_layers(build):
    assert split.plan(build().steps) is None


def test_no_split_where_it_does_not_apply(rng):
    model = _lenet()
    stages = split.plan(model.steps)
    x = rng.standard_normal((8, 784)).astype(np.float32)
    assert split.run(stages, x[:1]) is None                      # one row: no halves
    assert split.run(stages, x.astype(np.float64)) is None       # float32 weights
    assert split.run(stages, x[:, :700]) is None                 # the Reshape does not fit
    assert split.run([], x) is None and split.plan(None) is None   # no steps: a subclassed model
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=1, user_api="blas"):           # the user's one BLAS thread
        assert split.run(stages, x) is None
    kernels.set_enabled(False)
    assert split.run(stages, x) is None


def test_wrong_input_gets_the_layers_own_error(rng):
    model = MODELS["same_strided"][0]()
    with pytest.raises(ValueError, match="conv2d|Conv2D|channels|expected"):
        model.predict_on_batch(rng.standard_normal((4, 9, 11, 2)).astype(np.float32))
    small = models.Sequential([layers.Conv2D(2, 3, activation="relu"), layers.MaxPooling2D(3)])
    x = rng.standard_normal((4, 4, 4, 1)).astype(np.float32)     # a 2×2 map under a 3×3 pool
    with pytest.raises(ValueError, match="pool"):
        small.predict_on_batch(x)                                # built, then the pool's error
    assert split.run(split.plan(small.steps), x) is None


def test_two_threads_at_once(rng):
    """Two threads predicting at once: one takes the split, the other the layer-by-layer path
    meanwhile (one split at a time); every output as the NumPy path's."""
    model = _lenet()
    x = rng.standard_normal((6, 32, 784)).astype(np.float32)
    want = [_plain(model, xb) for xb in x]
    got, errors = {}, []

    def work(k):
        try:
            for _ in range(5):
                for i in range(k, len(x), 2):
                    got.setdefault(i, []).append(model.predict_on_batch(x[i]))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)
    threads = [threading.Thread(target=work, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for i, outs in got.items():
        for out in outs:
            _close(out, want[i], np.float32)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_forked_child_predicts_on_the_layers_path(rng):
    """numba's OpenMP layer ends a forked child that starts a parallel region: a child forked
    after the parent's split predicts through the layers' own path, with the same outputs."""
    model = _lenet()
    x = rng.standard_normal((8, 784)).astype(np.float32)
    want = model.predict_on_batch(x)                  # the parent's split: numba's threads run
    assert split_kernels._ran_in == [os.getpid()]
    ctx = multiprocessing.get_context("fork")
    here, there = ctx.Pipe()

    def child():
        there.send((split_kernels.split_kernels(np.dtype(np.float32)) is None,
                    model.predict_on_batch(x)))
    p = ctx.Process(target=child)
    p.start()
    got = here.recv() if here.poll(60) else None
    p.join(60)
    assert p.exitcode == 0 and got is not None, "the child did not predict"
    assert got[0], "the child was offered the split"
    _close(got[1], want, np.float32)
