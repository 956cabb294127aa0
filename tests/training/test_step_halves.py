"""tidu.training.step: a training step as the batch's two halves on the two cores.

The halves must train the model the whole batch trains, to float rounding: the same loss, the
same metrics, the same weights after the steps, with sample weights, regularizers and a loss
weight; the rule that picks them must depend on the model and the batch only, so a seeded fit
repeats bit for bit; what cannot split (batch statistics, closures, a sum-reduced loss, seeded
dropout) must run whole. Also the autograd pieces the halves stand on: grad mode per thread and
a sweep that leaves the weights' .grad alone.
"""
import threading

import numpy as np
import pytest

import tidu
import tidu.training.step as step_module
from tidu import kernels, layers
from tidu.kernels import halves

pytest.importorskip("numba")
pytest.importorskip("threadpoolctl")


@pytest.fixture(autouse=True)
def _fast_on():
    previous = kernels.set_enabled(True)
    yield
    kernels.set_enabled(previous)


def _need_halves(n=64):
    if halves.spans(n) is None:
        pytest.skip("no split on this machine: one CPU, NumPy's BLAS on one thread, or no "
                    "threadpoolctl (tidu.kernels.halves.spans)")


def _conv_model(seed=0, dropout=None, **compile_options):
    tidu.utils.set_random_seed(seed)
    stack = [layers.Input((10, 10, 1)), layers.Conv2D(4, 3, activation="relu"),
             layers.MaxPooling2D(2), layers.Conv2D(6, 3, padding="same", activation="tanh"),
             layers.Flatten()]
    if dropout is not None:
        stack.append(dropout)
    stack.append(layers.Dense(3, activation="softmax", kernel_regularizer="l2"))
    m = tidu.Sequential(stack)
    options = {"optimizer": tidu.optimizers.SGD(0.1, momentum=0.9),
               "loss": "categorical_crossentropy", "metrics": ["accuracy"], **compile_options}
    m.compile(**options)
    return m


def _data(n, seed=1):
    r = np.random.default_rng(seed)
    x = r.standard_normal((n, 10, 10, 1)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[r.integers(0, 3, n)]
    return x, y


def _counting(monkeypatch):
    runs, run = [], halves.run
    monkeypatch.setattr(step_module.halves, "run", lambda fn: runs.append(1) or run(fn))
    return runs


@pytest.mark.parametrize("n", [64, 65, 97])
@pytest.mark.parametrize("weighted", [False, True])
def test_halves_train_as_the_whole_batch(monkeypatch, n, weighted):
    _need_halves(n)
    x, y = _data(n)
    sw = np.random.default_rng(2).uniform(0.1, 2.0, n).astype(np.float32) if weighted else None
    results = {}
    for split in (False, True):
        m = _conv_model(loss_weights=0.7)
        m.train_step.halves = split
        runs = _counting(monkeypatch)
        logs = [m.train_on_batch(x, y, sample_weight=sw, return_dict=True) for _ in range(4)]
        assert len(runs) == (4 if split else 0)     # the halves did run (or not)
        results[split] = logs, m.get_weights()
    (whole_logs, whole_w), (half_logs, half_w) = results[False], results[True]
    for a, b in zip(whole_logs, half_logs):
        assert a["accuracy"] == b["accuracy"]
        np.testing.assert_allclose(b["loss"], a["loss"], rtol=1e-5)
    assert whole_logs[0]["loss"] != whole_logs[-1]["loss"]          # it did train
    for a, b in zip(whole_w, half_w):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6)


def test_an_lstm_models_halves_train_as_its_whole_batch(monkeypatch):
    _need_halves()
    r = np.random.default_rng(4)
    x = r.standard_normal((70, 6, 5)).astype(np.float32)
    y = r.integers(0, 3, 70)
    results = {}
    for split in (False, True):
        tidu.utils.set_random_seed(0)
        m = tidu.Sequential([layers.Input((6, 5)), layers.LSTM(8, return_sequences=True),
                             layers.LSTM(7), layers.Dense(3, activation="softmax")])
        m.compile(tidu.optimizers.Adam(0.01), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
        m.train_step.halves = split
        runs = _counting(monkeypatch)
        h = m.fit(x, y, batch_size=70, epochs=5, verbose=0, shuffle=False)
        assert len(runs) == (5 if split else 0)
        results[split] = h.history, m.get_weights()
    np.testing.assert_allclose(results[True][0]["loss"], results[False][0]["loss"], rtol=1e-5)
    assert results[True][0]["accuracy"] == results[False][0]["accuracy"]
    for a, b in zip(results[False][1], results[True][1]):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6)


def test_the_rule_splits_conv_and_lstm_models_from_64_rows_and_never_asks_the_clock(monkeypatch):
    _need_halves()
    runs = _counting(monkeypatch)
    m = _conv_model()
    x, y = _data(200)
    m.fit(x, y, batch_size=64, epochs=1, verbose=0)     # 64, 64, 64 and a last batch of 8
    assert len(runs) == 3
    runs.clear()
    m.fit(x, y, batch_size=32, epochs=1, verbose=0)
    assert runs == []
    dense = tidu.Sequential([layers.Input((20,)), layers.Dense(8, activation="relu"),
                             layers.Dense(3, activation="softmax")])
    dense.compile("sgd", "categorical_crossentropy")
    dense.fit(np.ones((128, 20), np.float32), y[:128], batch_size=128, epochs=1, verbose=0)
    assert runs == []
    seq = np.random.default_rng(3).standard_normal((64, 5, 4)).astype(np.float32)
    for rnn, splits in ((layers.LSTM(6), True), (layers.GRU(6), False),
                        (layers.SimpleRNN(6), False)):
        model = tidu.Sequential([layers.Input((5, 4)), rnn, layers.Dense(3, activation="softmax")])
        model.compile("adam", "categorical_crossentropy")
        model.fit(seq, y[:64], batch_size=64, epochs=1, verbose=0)
        assert len(runs) == int(splits), type(rnn).__name__
        runs.clear()


def test_a_seeded_fit_with_dropout_repeats_bit_for_bit_and_trains(monkeypatch):
    _need_halves()
    x, y = _data(256)
    weights, losses = [], []
    for _ in range(2):
        runs = _counting(monkeypatch)
        m = _conv_model(seed=5, dropout=layers.Dropout(0.5))
        h = m.fit(x, y, batch_size=64, epochs=3, verbose=0, shuffle=True)
        assert len(runs) == 12
        weights.append(m.get_weights())
        losses.append(h.history["loss"])
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)
    assert losses[0] == losses[1] and losses[0][-1] < losses[0][0]


def test_each_half_draws_its_own_dropout_masks(monkeypatch):
    _need_halves()
    seen = []
    dropout = tidu.functional.dropout

    def spy(x, rate, training=False, mode="inverted", rng=None, noise_shape=None):
        if training:
            seen.append((threading.get_ident(), id(rng)))
        return dropout(x, rate, training=training, mode=mode, rng=rng, noise_shape=noise_shape)
    monkeypatch.setattr(layers.core.F, "dropout", spy)
    m = _conv_model(dropout=layers.Dropout(0.5))
    m.train_on_batch(*_data(64))
    assert len(seen) == 2
    assert seen[0][0] != seen[1][0] and seen[0][1] != seen[1][1]   # two threads, two generators
    assert getattr(layers.core.half_rng, "rng", None) is None       # lent only while a half runs


@pytest.mark.parametrize("case", ["batchnorm", "seeded dropout", "closure optimizer",
                                  "sum reduction", "activity regularizer", "fast paths off"])
def test_what_cannot_split_runs_whole(monkeypatch, case):
    _need_halves()
    runs = _counting(monkeypatch)
    x, y = _data(64)
    if case == "batchnorm":
        m = tidu.Sequential([layers.Input((10, 10, 1)), layers.Conv2D(4, 3),
                             layers.BatchNormalization(), layers.Flatten(), layers.Dense(3)])
        m.compile("sgd", "categorical_crossentropy")
    elif case == "seeded dropout":
        m = _conv_model(dropout=layers.Dropout(0.5, seed=3))
    elif case == "closure optimizer":
        m = _conv_model(optimizer=tidu.optimizers.LBFGS())
    elif case == "sum reduction":
        m = _conv_model(loss=tidu.losses.CategoricalCrossentropy(reduction="sum"))
    elif case == "activity regularizer":
        m = tidu.Sequential([layers.Input((10, 10, 1)), layers.Conv2D(4, 3), layers.Flatten(),
                             layers.Dense(3, activity_regularizer="l2")])
        m.compile("sgd", "categorical_crossentropy")
    else:
        m = _conv_model()
        kernels.set_enabled(False)
    m.train_step.halves = True              # even forced: what cannot split does not
    m.train_on_batch(x, y)
    assert runs == []


def test_an_error_in_a_half_reaches_the_caller_and_changes_no_weight(monkeypatch):
    _need_halves()
    m = _conv_model()
    x, y = _data(64)
    m.train_on_batch(x, y)
    before = m.get_weights()
    real = step_module.TrainStep.loss

    def failing(self, xb, *args, **kwargs):
        if len(xb) == 32 and threading.current_thread() is not threading.main_thread():
            raise ValueError("boom in the second half")
        return real(self, xb, *args, **kwargs)
    monkeypatch.setattr(step_module.TrainStep, "loss", failing)
    with pytest.raises(ValueError, match="second half"):
        m.train_on_batch(x, y)
    for a, b in zip(before, m.get_weights()):
        np.testing.assert_array_equal(a, b)


# --- the update in two shares, one per half's thread (Optimizer.update_in_two) ----------------
def _wide_model(optimizer, seed=0):
    # the Dense kernel (256 × 600 = 153,600 weights) is a segment of its own and the middle of
    # the flat vector falls inside it: the two shares split one parameter
    tidu.utils.set_random_seed(seed)
    m = tidu.Sequential([layers.Input((10, 10, 1)), layers.Conv2D(4, 3, activation="relu"),
                         layers.Flatten(), layers.Dense(600, activation="relu"),
                         layers.Dense(3, activation="softmax")])
    m.compile(optimizer, "categorical_crossentropy", metrics=["accuracy"])
    return m


OPTIMIZERS = {
    "sgd momentum": lambda: tidu.optimizers.SGD(0.05, momentum=0.9),
    "sgd nesterov, torch's form": lambda: tidu.optimizers.SGD(0.05, momentum=0.9, nesterov=True,
                                                              convention="torch"),
    "rmsprop": lambda: tidu.optimizers.RMSprop(0.001),
    "adam": lambda: tidu.optimizers.Adam(0.001),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_the_halves_update_their_shares_as_apply_gradients_would(monkeypatch, name):
    _need_halves()
    x, y = _data(96)
    from tidu.optimizers.state import _TwoParts
    parts, real = [], _TwoParts.run
    monkeypatch.setattr(_TwoParts, "run", lambda self, k, *g: parts.append(k) or real(self, k, *g))
    results = {}
    for shares in (True, False):
        m = _wide_model(OPTIMIZERS[name]())
        if not shares:    # the halves' gradients added here, one apply_gradients
            monkeypatch.setattr(m.optimizer, "update_in_two", lambda params: None)
        h = m.fit(x, y, batch_size=96, epochs=4, verbose=0, shuffle=False)
        results[shares] = h.history, m.get_weights(), m.optimizer.state_dict()
    assert sorted(parts) == [0, 0, 0, 1, 1, 1]    # steps 2-4 (the first one makes the group)
    (h1, w1, s1), (h0, w0, s0) = results[True], results[False]
    assert h1 == h0 and h1["loss"][0] != h1["loss"][-1]
    for a, b in zip(w1, w0):
        np.testing.assert_array_equal(a, b)        # the same float operations: the same bits
    assert s1.keys() == s0.keys()
    for k in s1:
        np.testing.assert_array_equal(s1[k], s0[k])


@pytest.mark.parametrize("case", ["amsgrad: no kernel", "clipnorm", "weight decay",
                                  "first step", "fast paths off", "other parameters"])
def test_no_update_in_two_where_apply_gradients_runs_no_kernel_on_the_same_group(case):
    options = {"clipnorm": {"clipnorm": 1.0}, "weight decay": {"weight_decay": 1e-3}}.get(case, {})
    opt = tidu.optimizers.AMSGrad() if case.startswith("amsgrad") else \
        tidu.optimizers.SGD(0.05, momentum=0.9, **options)
    m = _wide_model(opt)
    x, y = _data(64)
    if case == "first step":
        assert opt.update_in_two(m.trainable_weights) is None
        return
    m.train_on_batch(x, y)
    params = m.train_step.params
    if case == "fast paths off":
        kernels.set_enabled(False)
    if case == "other parameters":
        params = params[:-1]
    assert opt.update_in_two(params) is None
    if case in ("fast paths off", "other parameters"):       # and the plan otherwise
        kernels.set_enabled(True)
        assert opt.update_in_two(m.train_step.params) is not None


def test_the_two_shares_cover_the_flat_vector_once():
    from tidu.optimizers.state import _shares
    view = object()
    # (a, b, i, j, view): a run of small ones, a large one alone, a run, a large one
    segments = [(0, 10, 0, 3, view), (10, 500, 3, 4, None), (500, 520, 4, 6, view),
                (520, 900, 6, 7, None)]
    for half in (0, 5, 10, 255, 450, 510, 515, 520, 700, 900):
        first, second = _shares(segments, half)
        cover = sorted((lo, hi) for lo, hi, _, _ in first + second)
        assert cover[0][0] == 0 and cover[-1][1] == 900
        assert all(p[1] == q[0] for p, q in zip(cover, cover[1:]))      # no gap, no overlap
        for lo, hi, i, j in first + second:
            whole = next(s for s in segments if s[2] == i)
            assert whole[:2] == (lo, hi) or whole[4] is None            # only a large one is cut
    first, second = _shares(segments, 450)
    assert (10, 450, 3, 4) in first and (450, 500, 3, 4) in second


def test_a_nonfinite_loss_updates_no_share(monkeypatch):
    _need_halves()
    m = _wide_model(tidu.optimizers.SGD(0.05, momentum=0.9))
    x, y = _data(64)
    m.fit(x, y, batch_size=64, epochs=1, verbose=0)
    assert m.optimizer.update_in_two(m.train_step.params) is not None
    before = m.get_weights()
    real = step_module.TrainStep.loss

    def infinite(self, *args, **kwargs):          # C = ∞ on the first half, finite gradients
        loss, out = real(self, *args, **kwargs)
        if threading.current_thread() is threading.main_thread():
            loss = loss + np.float32(np.inf)
        return loss, out
    monkeypatch.setattr(step_module.TrainStep, "loss", infinite)
    with pytest.raises(tidu.errors.DivergenceError, match="not applied"):
        m.fit(x, y, batch_size=64, epochs=1, verbose=0)
    for a, b in zip(before, m.get_weights()):
        np.testing.assert_array_equal(a, b)
