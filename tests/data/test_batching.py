import numpy as np
import pytest

from tidu.data import batches
from tidu.errors import ShapeError


def test_each_epoch_is_a_new_permutation_of_all_samples():
    x, y = np.arange(10) * 10, np.arange(10)
    data = batches(x, y, batch_size=4, rng=np.random.default_rng(0))
    assert len(data) == 3
    epochs = []
    for _ in range(2):
        parts = list(data)
        assert [len(xb) for xb, _ in parts] == [4, 4, 2]
        for xb, yb in parts:
            np.testing.assert_array_equal(xb, yb * 10)  # rows stay paired
        seen = np.concatenate([yb for _, yb in parts])
        assert sorted(seen) == list(range(10))
        epochs.append(seen)
    assert not np.array_equal(epochs[0], epochs[1])


def test_same_seed_same_order():
    x = np.arange(20)
    first = np.concatenate(list(batches(x, batch_size=6, rng=7)))
    again = np.concatenate(list(batches(x, batch_size=6, rng=7)))
    np.testing.assert_array_equal(first, again)


def test_no_shuffle_keeps_order_and_drop_remainder():
    x = np.arange(10).reshape(10, 1)
    parts = list(batches(x, batch_size=4, shuffle=False))
    np.testing.assert_array_equal(np.concatenate(parts).ravel(), np.arange(10))
    dropped = batches(x, batch_size=4, shuffle=False, drop_remainder=True)
    assert len(dropped) == 2 and [len(b) for b in dropped] == [4, 4]
    assert len(batches(x[:3], batch_size=4, drop_remainder=True)) == 0


def test_errors():
    with pytest.raises(ShapeError, match=r"x of shape \(5,\) and y of shape \(4,\)"):
        batches(np.zeros(5), np.zeros(4))
    with pytest.raises(ValueError, match="positive int, got 0"):
        batches(np.zeros(5), batch_size=0)
