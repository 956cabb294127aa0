"""TrainStep: the loss, its closure, and one step for first-order and closure optimizers."""
import numpy as np
import pytest

import tidu
from tidu import layers, models, optimizers
from tidu.utils import to_categorical


def mlp(optimizer, metrics=("accuracy",)):
    model = models.Sequential([layers.Dense(8, activation="tanh", input_shape=(5,)),
                               layers.Dense(3, activation="softmax")])
    model.compile(optimizer, "categorical_crossentropy", metrics=list(metrics))
    return model


@pytest.fixture
def batch(rng):
    x = rng.standard_normal((40, 5)).astype("float32")
    return x, to_categorical(rng.integers(0, 3, 40), 3)


def test_a_first_order_step_is_theta_minus_lr_times_the_gradient(batch):
    x, y = batch
    model = mlp(optimizers.SGD(0.1))
    model.train_step.resolve(2)
    model.train_step.prepare()
    before = [w.copy() for w in model.get_weights()]
    loss, grads = model.train_step.loss_and_grads(x, y)
    assert model.train_step(x, y) == pytest.approx(loss, rel=1e-6)
    for w0, g, w1 in zip(before, grads, model.get_weights()):
        np.testing.assert_allclose(w1, w0 - 0.1 * g, rtol=1e-5, atol=1e-7)


class CountingLBFGS(optimizers.LBFGS):
    calls = 0

    def step(self, closure=None, params=None):
        def counted():
            CountingLBFGS.calls += 1
            return closure()
        return super().step(counted, params)


def test_a_closure_method_re_evaluates_the_batch_and_metrics_see_the_starting_point(batch):
    x, y = batch
    model = mlp(CountingLBFGS())
    step = model.train_step
    step.resolve(2)
    step.prepare()
    start_loss, _ = step.loss_and_grads(x, y)
    start_pred = model.predict(x)
    CountingLBFGS.calls = 0
    returned = step(x, y)
    assert CountingLBFGS.calls > 1                         # the closure ran several times
    assert returned == pytest.approx(start_loss, rel=1e-6)  # the loss where the step began
    after, _ = step.loss_and_grads(x, y)
    assert after < start_loss
    acc = model.compiled_metrics[0]
    want = np.mean(start_pred.argmax(1) == y.argmax(1))
    assert acc.result() == pytest.approx(want)             # metrics of the first evaluation


def test_closure_outputs_hold_only_the_first_evaluation(batch):
    x, y = batch
    model = mlp("sgd")
    model.train_step.resolve(2)
    model.train_step.prepare()
    closure = model.train_step.closure(x, y)
    first = closure().data.item()
    model.set_weights([w * 0.5 for w in model.get_weights()])
    assert closure().data.item() != first
    assert len(closure.outputs) == 1


@pytest.mark.parametrize("loss", ["categorical_crossentropy", "sparse_categorical_crossentropy"])
def test_the_metrics_read_the_fused_losses_softmax_instead_of_computing_it_again(batch, loss,
                                                                                  monkeypatch):
    x, y = batch
    if loss.startswith("sparse"):
        y = y.argmax(1)
    model = models.Sequential([layers.Dense(8, activation="tanh", input_shape=(5,)),
                               layers.Dense(3, activation="softmax")])
    model.compile("sgd", loss, metrics=["accuracy", "mse" if not loss.startswith("sparse") else
                                        "sparse_categorical_crossentropy"])
    step = model.train_step
    step.resolve(2)
    step.prepare()
    start = model.predict(x, verbose=0)
    seen = []
    for m in model.compiled_metrics:
        monkeypatch.setattr(m, "update_state", lambda yt, yp, sw=None, f=m.update_state:
                            (seen.append(yp), f(yt, yp, sw)))
    calls = []
    softmax = model.output_layer.activation
    monkeypatch.setattr(model.output_layer, "activation",
                        lambda z, *a, **k: (calls.append(1), softmax(z, *a, **k))[1])
    step(x, y)
    assert calls == []                                      # no second softmax for the metrics
    for yp in seen:
        np.testing.assert_array_equal(yp, start)            # a itself, bit for bit
    model.evaluate(x, y, batch_size=40, verbose=0)          # (its first call probes the output)
    calls.clear()
    model.evaluate(x, y, batch_size=40, verbose=0)          # evaluate reads the loss's a too
    assert calls == []
    np.testing.assert_array_equal(seen[-1], model.predict(x, verbose=0))


@pytest.mark.parametrize("name", ["lbfgs", "newton_cg", "coordinate_descent"])
def test_train_on_batch_runs_closure_methods(batch, name):
    x, y = batch
    model = mlp(name)
    before = model.evaluate(x, y, verbose=0)[0]
    for _ in range(3):
        model.train_on_batch(x, y)
    assert model.evaluate(x, y, verbose=0)[0] < before


def test_the_fused_loss_is_chosen_from_the_output_layer_and_the_loss(batch):
    x, y = batch
    model = mlp("sgd")
    assert model.train_step.resolve(2) == "softmax"
    model.compile("sgd", "mse")
    assert model.train_step.resolve(2) is None
    model.compile("sgd", tidu.losses.CategoricalCrossentropy(from_logits=True))
    assert model.train_step.resolve(2) is None


def test_fit_and_evaluate_probe_the_network_once_per_input_shape(batch, monkeypatch):
    # each call used to run a whole batch through the network to learn its output shape
    x, y = batch
    model = mlp("sgd")
    step = model.train_step
    probes = []
    real = step.probe
    monkeypatch.setattr(step, "probe", lambda xb, where: probes.append(len(xb)) or real(xb, where))
    model.fit(x, y, batch_size=16, verbose=0)
    assert probes == [16]                                  # the first call: one batch
    model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    model.evaluate(x, y, verbose=0)
    model.train_on_batch(x[:8], y[:8])
    assert probes == [16]                                  # remembered
    step.fused = None                                      # chosen afresh on every call
    model.fit(x, y, batch_size=16, verbose=0)
    assert step.fused == "softmax" and probes == [16]
    model.add(layers.Dense(3, activation="softmax"))       # the layers changed: probed again
    model.fit(x, y, batch_size=16, verbose=0)
    assert probes == [16, 16]
    with pytest.raises(tidu.errors.ShapeError, match=r"got shape \(16, 5, 1\)"):
        model.fit(x[:, :, None], y, batch_size=16, verbose=0)   # the batch's shape, not one row's
