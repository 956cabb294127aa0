"""predict's pairs of whole batches on the NumPy path (TIDU_FAST=0): a model with a convolution
sends its batches to the two cores two at a time (tidu.training.loops._in_pairs), needing
threadpoolctl and no kernel; a Dense-only model does not (on the NumPy path it has no sparse
kernel to run on one core)."""
import numpy as np
import pytest

import tidu
from tidu import kernels
from tidu.kernels import halves
import tidu.training.loops as loops


pytestmark = pytest.mark.usefixtures("numpy_path", "need_pairs")


def _counted(monkeypatch):
    """The list that gets a 1 per halves.run, and the list of the batch sizes predict computes."""
    runs, run, batches, predict_batch = [], halves.run, [], loops._predict_batch
    monkeypatch.setattr(loops.halves, "run", lambda fn: runs.append(1) or run(fn))
    monkeypatch.setattr(loops, "_predict_batch",
                        lambda model, xb: batches.append(len(xb)) or predict_batch(model, xb))
    return runs, batches


def test_numpy_path_pairs_a_conv_models_batches(monkeypatch):
    """Four batches (the last one short) in one halves.run, each whole, the outputs those of
    the batches one after another on the BLAS threads to float rounding."""
    m = tidu.Sequential([tidu.layers.Input((12, 12, 1)),
                         tidu.layers.Conv2D(4, 3, activation="relu"),
                         tidu.layers.MaxPooling2D(2), tidu.layers.Flatten(),
                         tidu.layers.Dense(3, activation="softmax")])
    x = np.random.default_rng(2).standard_normal((250, 12, 12, 1)).astype(np.float32)
    runs, batches = _counted(monkeypatch)
    pairs = m.predict(x, batch_size=64, verbose=0)
    assert runs == [1] and sorted(batches) == [58, 64, 64, 64]
    assert not kernels.enabled()
    monkeypatch.setattr(loops, "_in_pairs", lambda *args: False)
    runs.clear()
    one_by_one = m.predict(x, batch_size=64, verbose=0)
    assert runs == []                     # the NumPy path splits no batch in halves
    assert pairs.shape == one_by_one.shape == (250, 3)
    np.testing.assert_allclose(pairs, one_by_one, rtol=1e-6, atol=1e-7)


def test_numpy_path_keeps_a_dense_models_batches_in_order(monkeypatch):
    """Inputs that are mostly zeros pair with the fast paths' sparse kernel only."""
    m = tidu.Sequential([tidu.layers.Input((40,)), tidu.layers.Dense(64, activation="relu"),
                         tidu.layers.Dense(3)])
    x = np.zeros((256, 40), np.float32)
    x[:, 0] = 1.0
    runs, batches = _counted(monkeypatch)
    m.predict(x, batch_size=64, verbose=0)
    assert runs == [] and batches == [64, 64, 64, 64]
