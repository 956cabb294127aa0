"""tidu.kernels.halves: a batch's two halves on the two cores, and the LSTM that uses them.

The LSTM must give the same bits whether its halves run at once (two threads, one BLAS
thread each) or as the whole batch on the BLAS threads, since the Chooser picks between the
two by timing: a run's numbers must not depend on which way won.
"""
import sys
import threading

import numpy as np
import pytest

import tidu.functional as F
import tidu.functional.recurrent_lstm as lstm_module
from tidu import Tensor, kernels
from tidu.kernels import halves

pytest.importorskip("numba")
threadpoolctl = pytest.importorskip("threadpoolctl")


def _need_halves(n=64):
    if halves.spans(n) is None:
        pytest.skip("no split on this machine: one CPU, NumPy's BLAS on one thread, or no "
                    "threadpoolctl (tidu.kernels.halves.spans)")


class _Forced:
    """A Chooser that always answers the same way."""

    def __init__(self, together):
        self.together, self.asked = together, 0

    def concurrent(self, key):
        self.asked += 1
        return self.together

    def record(self, *args):
        pass


def _lstm(together, n, t, d, u, seed, states=True, asks=True, **options):
    """Output and every input's gradient of lstm, its halves at once or not (asks: whether the
    op splits the batch at all, and so asks the Chooser)."""
    chooser, lstm_module._CHOOSER = lstm_module._CHOOSER, _Forced(together)
    try:
        r = np.random.default_rng(seed)
        shapes = [(n, t, d), (d, 4 * u), (u, 4 * u), (4 * u,)] + [(n, u)] * (2 if states else 0)
        ins = [Tensor((0.4 * r.standard_normal(s)).astype(np.float32), requires_grad=True)
               for s in shapes]
        y = F.lstm(*ins, **options)
        ys = y if isinstance(y, tuple) else (y,)
        y = F.concatenate([v.reshape(n, -1) for v in ys], axis=1)
        y.backward(r.standard_normal(y.shape).astype(np.float32))
        assert lstm_module._CHOOSER.asked == asks      # the op asked: the halves did run (or not)
        return [y.data] + [a.grad for a in ins]
    finally:
        lstm_module._CHOOSER = chooser


@pytest.fixture(autouse=True)
def _fast_on():
    previous = kernels.set_enabled(True)
    yield
    kernels.set_enabled(previous)


@pytest.mark.parametrize("n, t, d, u", [(128, 28, 28, 128), (33, 5, 7, 16), (40, 1, 3, 5),
                                        (64, 3, 20, 32)])
@pytest.mark.parametrize("options", [{}, {"return_sequences": True},
                                     {"return_sequences": True, "return_state": True}])
@pytest.mark.parametrize("states", [False, True])
def test_lstm_halves_at_once_give_the_whole_batchs_bits(n, t, d, u, options, states):
    # odd batches (33: halves of 16 and 17), one timestep, the benchmark's shape
    _need_halves(n)
    together = _lstm(True, n, t, d, u, 3, states=states, **options)
    whole = _lstm(False, n, t, d, u, 3, states=states, **options)
    for got, want in zip(together, whole):
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, want)


def test_lstm_halves_match_the_numpy_loop():
    # the reference: TIDU_FAST off, one loop; float32 within ~1e-6 of the largest entry
    _need_halves(33)
    fast = _lstm(True, 33, 6, 5, 9, 4, return_sequences=True, return_state=True)
    kernels.set_enabled(False)
    slow = _lstm(True, 33, 6, 5, 9, 4, asks=False, return_sequences=True, return_state=True)
    for got, want in zip(fast, slow):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6 * max(1, np.abs(want).max()))


def test_spans():
    _need_halves()
    assert halves.spans(33) == [(0, 16), (16, 33)]
    assert halves.spans(halves.MIN_ROWS - 1) is None
    with threadpoolctl.threadpool_limits(1, user_api="blas"):   # the user chose one thread
        assert halves.spans(64) is None


def _numpy_blas_threads():
    """{library path: thread count} of NumPy's BLAS (the libraries loaded when halves first
    looked; BLAS libraries loaded later, e.g. another package's, are not NumPy's), as
    threadpoolctl reads them now."""
    paths = {c.filepath for c in halves._blas().lib_controllers}
    return {i["filepath"]: i["num_threads"] for i in threadpoolctl.threadpool_info()
            if i["filepath"] in paths}


def test_run_gives_each_half_one_blas_thread_at_once_and_restores():
    _need_halves()
    before = _numpy_blas_threads()
    assert before and min(before.values()) >= 2
    seen, met = {}, threading.Barrier(2, timeout=10)

    def fn(k):
        met.wait()                                   # both halves run at the same time
        seen[k] = (_numpy_blas_threads(), threading.get_ident())
        return k * 10
    assert halves.run(fn) == [0, 10]
    assert seen[0][0] == seen[1][0] == {path: 1 for path in before}
    assert seen[0][1] == threading.get_ident() != seen[1][1]
    assert _numpy_blas_threads() == before


@pytest.mark.parametrize("bad", [0, 1])
def test_run_raises_either_halfs_error_after_both_ended(bad):
    _need_halves()
    before = _numpy_blas_threads()
    ended = []

    def fn(k):
        ended.append(k)
        if k == bad:
            raise ValueError(f"half {k}")
    with pytest.raises(ValueError, match=f"half {bad}"):
        halves.run(fn)
    assert sorted(ended) == [0, 1]
    assert _numpy_blas_threads() == before


class _Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def _call(chooser, clock, key, seconds, backward=None):
    """One forward (and backward) call of `seconds` each; returns the way it ran."""
    way = chooser.concurrent(key)
    for phase, s in [("forward", seconds)] + ([("backward", backward)] if backward else []):
        start = clock.now
        clock.now += s
        chooser.record(key, way, phase, start)
    clock.now += 0.001
    return way


@pytest.mark.parametrize("halves_faster", [True, False])
def test_chooser_times_the_whole_batch_then_the_settled_halves(halves_faster):
    clock = _Clock()
    c = halves.Chooser(clock)
    whole, together = 0.010, (0.008 if halves_faster else 0.012)
    ways = [_call(c, clock, "k", whole, whole) for _ in range(c.SKIP + c.PROBES)]
    assert ways == [False] * 6 and c.choice("k") is None
    # the halves' calls right after the whole batch's (OpenBLAS's worker still spinning) are slow
    # and do not count; then PROBES settled ones decide
    while clock.now < 0.15 + 0.12:
        assert _call(c, clock, "k", 0.05, 0.05) is True
    assert c.choice("k") is None
    for _ in range(c.PROBES):
        _call(c, clock, "k", together, together)
    assert c.choice("k") is halves_faster
    assert _call(c, clock, "k", 1.0, 1.0) is halves_faster     # kept, whatever the time now
    assert c.choice("other") is None                            # per key


def test_chooser_without_backward_decides_on_forward_times():
    clock = _Clock()
    c = halves.Chooser(clock)
    for _ in range(c.SKIP + c.PROBES):
        assert _call(c, clock, "predict", 0.010) is False
    clock.now += 1
    for _ in range(c.PROBES):
        assert _call(c, clock, "predict", 0.005) is True
    assert c.choice("predict") is True


def test_chooser_keeps_timing_the_whole_batch_until_its_backward_calls_are_in():
    # fit's first forward is a probe without backward: the whole batch keeps running until
    # SKIP + PROBES backward calls were timed too
    clock = _Clock()
    c = halves.Chooser(clock)
    assert _call(c, clock, "k", 0.01) is False
    ways = [_call(c, clock, "k", 0.01, 0.02) for _ in range(c.SKIP + c.PROBES)]
    assert ways == [False] * 6
    clock.now += 1
    assert _call(c, clock, "k", 0.01, 0.02) is True


def test_run_gives_the_worker_the_callers_grad_mode():
    _need_halves()
    from tidu.autograd import is_grad_enabled, no_grad
    assert halves.run(lambda k: is_grad_enabled()) == [True, True]
    with no_grad():                   # predict's halves: neither may record a graph
        assert halves.run(lambda k: is_grad_enabled()) == [False, False]
    assert halves.run(lambda k: is_grad_enabled()) == [True, True]


def test_all_finite_leaves_blas_threads_as_they_were():
    from tidu.training.checks import all_finite
    before = _numpy_blas_threads()
    a = np.ones((300, 784), np.float32)
    assert all_finite(a)
    a[123, 456] = np.inf
    assert not all_finite(a)
    assert _numpy_blas_threads() == before


def _conv_model():
    import tidu
    m = tidu.Sequential([tidu.layers.Input((12, 12, 1)),
                         tidu.layers.Conv2D(4, 3, activation="relu"),
                         tidu.layers.MaxPooling2D(2), tidu.layers.Flatten(),
                         tidu.layers.Dense(3, activation="softmax")])
    m.compile(optimizer="sgd", loss="categorical_crossentropy")
    return m


@pytest.mark.parametrize("method", ["predict", "predict_on_batch"])
def test_predict_splits_a_conv_models_big_batches(monkeypatch, method):
    """The halves on two Python threads, for a conv model tidu.training.split_predict does not
    take (here: told not to)."""
    _need_halves()
    import tidu.training.loops as loops
    monkeypatch.setattr(loops.split_predict, "MIN_ROWS", sys.maxsize)
    m = _conv_model()
    x = np.random.default_rng(0).standard_normal((150, 12, 12, 1)).astype(np.float32)
    runs, run = [], halves.run

    def counted(fn):
        runs.append(1)
        return run(fn)
    monkeypatch.setattr(loops.halves, "run", counted)
    call = (lambda a: m.predict(a, batch_size=150, verbose=0)) if method == "predict" else \
        m.predict_on_batch
    split = call(x)
    assert len(runs) == 1             # one batch of 150 rows, split in two halves
    kernels.set_enabled(False)                                # the NumPy path, one batch
    whole = m.predict_on_batch(x)
    assert split.shape == whole.shape == (150, 3)
    np.testing.assert_allclose(split, whole, rtol=1e-6, atol=1e-7)


def _dense_model(*extra):
    import tidu
    m = tidu.Sequential([tidu.layers.Input((20,)), tidu.layers.Dense(16, activation="relu"),
                         *extra, tidu.layers.Dense(3, activation="softmax")])
    m.compile(optimizer="sgd", loss="categorical_crossentropy")
    return m


def test_predict_sends_a_conv_models_whole_batches_to_the_cores_in_pairs(monkeypatch):
    """Four batches (the last one short): one halves.run for all of them, each batch whole
    (none splits again), the outputs those of the NumPy path one batch at a time to float
    rounding."""
    _need_halves()
    import tidu.training.loops as loops
    m = _conv_model()
    x = np.random.default_rng(1).standard_normal((250, 12, 12, 1)).astype(np.float32)
    runs, run, batches = [], halves.run, []
    monkeypatch.setattr(loops.halves, "run", lambda fn: runs.append(1) or run(fn))
    predict_batch = loops._predict_batch
    monkeypatch.setattr(loops, "_predict_batch",
                        lambda model, xb: batches.append(len(xb)) or predict_batch(model, xb))
    pairs = m.predict(x, batch_size=64, verbose=0)
    assert runs == [1] and sorted(batches) == [58, 64, 64, 64]
    kernels.set_enabled(False)
    monkeypatch.setattr(loops, "_in_pairs", lambda *args: False)   # (the NumPy path pairs too)
    one_by_one = m.predict(x, batch_size=64, verbose=0)
    assert pairs.shape == one_by_one.shape == (250, 3)
    np.testing.assert_allclose(pairs, one_by_one, rtol=1e-6, atol=1e-7)


def test_predict_keeps_batches_in_order_where_pairs_do_not_apply(monkeypatch):
    """No pairs (and no halves at all) for a Dense-only model, whose two-thread GEMMs are its
    whole work; none for a conv model's batches under SPLIT_ROWS rows, a single batch (which
    splits in two halves instead), callbacks or a progress bar (they see the batches one after
    another: the split batches' halves then), or a layer outside the training step's
    HALVES_LAYERS (BatchNormalization). (The conv model's batches through the halves, not
    tidu.training.split_predict's one call per layer, which would take them.)"""
    _need_halves()
    import tidu
    import tidu.training.loops as loops
    monkeypatch.setattr(loops.split_predict, "MIN_ROWS", sys.maxsize)
    runs, run = [], halves.run
    monkeypatch.setattr(loops.halves, "run", lambda fn: runs.append(1) or run(fn))
    _dense_model().predict(np.ones((200, 20), np.float32), batch_size=64, verbose=0)
    assert runs == []
    x = np.ones((200, 12, 12, 1), np.float32)
    conv = _conv_model()
    conv.predict(x, batch_size=32, verbose=0)
    assert runs == []
    conv.predict(x, batch_size=200, verbose=0)
    assert runs == [1]                                        # the one batch's halves
    runs.clear()
    conv.predict(x, batch_size=64, verbose=1)
    seen = []

    class Seen(tidu.callbacks.Callback):
        def on_predict_batch_end(self, batch, logs=None):
            seen.append(batch)
    conv.predict(x, batch_size=64, verbose=0, callbacks=[Seen()])
    assert runs == [1, 1, 1] * 2 and seen == [0, 1, 2, 3]    # three batches of 64 split, not 8
    runs.clear()
    bn = tidu.Sequential([tidu.layers.Input((12, 12, 1)), tidu.layers.Conv2D(4, 3),
                          tidu.layers.BatchNormalization(), tidu.layers.Flatten(),
                          tidu.layers.Dense(3)])
    bn.predict(x, batch_size=64, verbose=0)
    assert runs == [1, 1, 1]                                  # the batches' halves, no pairs


def _dispatchers(fn, seen=None):
    """The numba dispatchers a kernel wrapper reaches through its closure."""
    from numba.core.registry import CPUDispatcher
    seen = set() if seen is None else seen
    if isinstance(fn, CPUDispatcher):
        return [fn]
    found = []
    for cell in getattr(fn, "__closure__", None) or ():
        v = cell.cell_contents
        if id(v) not in seen and (callable(v) or isinstance(v, CPUDispatcher)):
            seen.add(id(v))
            found += _dispatchers(v, seen)
    return found


@pytest.mark.parametrize("getter", ["pool_kernels", "conv_kernels", "lstm_steps",
                                    "sparse_input_kernels"])
def test_kernels_a_half_runs_release_the_gil(getter):
    """What may run inside a half (a convolution's predict, the LSTM, a sparse input's Dense) is
    compiled nogil, so the two halves' kernels run at once instead of taking turns on the GIL."""
    funcs = getattr(kernels, getter)(np.float32)
    found = [d for f in funcs for d in _dispatchers(f)]
    assert found, f"{getter}: no numba kernel found behind its wrappers"
    held = [d.py_func.__name__ for d in found if not d.targetoptions.get("nogil")]
    assert not held, f"{getter}: compiled without nogil=True: {held}"
