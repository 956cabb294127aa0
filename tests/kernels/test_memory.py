"""tidu.kernels.memory.alternate_empty: two arrays in turn per thread, shape and dtype, never
one that something still references; and the convolutions' im2col matrices taken from it in
training give the gradients of fresh arrays, bit for bit, also with six graphs alive at once."""
import threading

import numpy as np
import pytest

import tidu.functional as F
from tidu import Tensor, kernels
from tidu.kernels import memory


@pytest.fixture(autouse=True)
def _fresh_spares(monkeypatch):
    monkeypatch.setattr(memory, "_spares", type(memory._spares)())


def test_two_arrays_in_turn():
    a = memory.alternate_empty((300, 200), np.float32)
    first = id(a)
    del a
    b = memory.alternate_empty((300, 200), np.float32)
    assert id(b) != first and b.shape == (300, 200) and b.dtype == np.float32
    second = id(b)
    del b
    got = [id(memory.alternate_empty((300, 200), np.float32)) for _ in range(4)]
    assert got == [first, second, first, second]


def test_an_array_still_referenced_is_never_handed_out():
    a = memory.alternate_empty((100, 100), np.float64)
    view = a[3:].T                                   # a view keeps its base alive
    b = memory.alternate_empty((100, 100), np.float64)
    b_id = id(b)
    del a, b
    c = memory.alternate_empty((100, 100), np.float64)   # a is held by the view: b
    assert id(c) == b_id
    d = memory.alternate_empty((100, 100), np.float64)   # both held (view, c): a new one
    assert not np.shares_memory(d, view) and not np.shares_memory(d, c)
    del d
    e = memory.alternate_empty((100, 100), np.float64)   # the new one was not kept
    assert not np.shares_memory(e, view) and not np.shares_memory(e, c)
    del c
    assert id(memory.alternate_empty((100, 100), np.float64)) == b_id


def test_keys_threads_and_sizes(monkeypatch):
    a = memory.alternate_empty((64, 64), np.float32)
    b = memory.alternate_empty((64, 64), np.float64)     # another dtype, another pair
    c = memory.alternate_empty((64, 32), np.float32)     # another shape
    assert len({id(a), id(b), id(c)}) == 3 and len(memory._spares) == 3
    other = []
    t = threading.Thread(target=lambda: other.append(memory.alternate_empty((64, 64), np.float32)))
    t.start()
    t.join()
    assert other[0] is not a and len(memory._spares) == 4    # each thread its own arrays
    monkeypatch.setattr(memory, "MAX_BYTES", 1000)
    big = memory.alternate_empty((100, 100), np.float32)     # above MAX_BYTES: never kept
    assert big.shape == (100, 100) and len(memory._spares) == 4
    monkeypatch.setattr(memory, "MAX_BYTES", memory.MMAP_THRESHOLD)
    monkeypatch.setattr(memory, "TOTAL_BYTES", 2 * 64 * 64 * 4)   # room for two such arrays
    memory.alternate_empty((64, 64), np.float32)
    assert len(memory._spares) == 1        # the other keys dropped
    assert list(memory._spares) == [(threading.get_ident(), (64, 64), np.dtype(np.float32))]
    assert len(memory._spares[list(memory._spares)[0]]) == 2


def _conv_pool_grads(seed, keep_graphs):
    """dL/dx, dL/dK, dL/db of sum(w · max_pool(conv(x))) or sum(w · conv(x)) for LeNet-like
    layers in training, on new random x, K, b each time, three graphs per op and shape (more
    than alternate_empty's two arrays); with keep_graphs all forwards run before any backward,
    so every graph's saved arrays are alive at once."""
    r = np.random.default_rng(seed)
    outs = []
    for step in range(6):
        for shape, kshape in (((8, 28, 28, 1), (5, 5, 1, 20)), ((8, 12, 12, 20), (5, 5, 20, 50))):
            x, k, b = (Tensor(r.standard_normal(s).astype(np.float32), requires_grad=True)
                       for s in (shape, kshape, kshape[3:]))
            y = F.conv2d_max_pool2d(x, k, b) if step % 2 == 0 else F.conv2d(x, k, b)
            w = r.standard_normal(y.shape).astype(np.float32)
            outs.append(((y * Tensor(w)).sum(), (x, k, b)))
            if not keep_graphs:
                outs[-1] = _backward(*outs[-1])
    return [_backward(*o) for o in outs] if keep_graphs else outs


def _backward(loss, tensors):
    loss.backward()
    return [t.grad.copy() for t in tensors]


def test_training_arrays_in_turn_give_fresh_arrays_gradients(monkeypatch):
    kernels.set_enabled(False)
    monkeypatch.setattr(memory, "COPIES", 0)              # off: every array new (np.empty)
    fresh = _conv_pool_grads(0, keep_graphs=False)
    monkeypatch.setattr(memory, "COPIES", 2)
    for keep in (False, True):
        got = _conv_pool_grads(0, keep_graphs=keep)
        for g_fresh, g in zip(fresh, got):
            for a, b in zip(g_fresh, g):
                assert a.dtype == b.dtype and np.array_equal(a, b)
    assert memory._spares                                   # the arrays did come from here
