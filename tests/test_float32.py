"""float32 end to end: a training step keeps every array float32.

float32 slips are silent and costly (PERF.md lesson 3: the MLP with float64 arrays is 2.2×
slower, np.exp/np.tanh ~4.7×): one float64 scalar or buffer upcasts everything after it. So
one real training step (Model.fit on one batch, float64 data given on purpose) is run with
every Function's forward and backward recorded, and checked: the output of every op (each
layer's activations, the loss), the gradient every op returns for each of its inputs, every
weight and its gradient, and every slot of the optimizer's state.
"""
import numpy as np
import pytest

from tidu import layers, models, optimizers
from tidu.autograd import Tensor
from tidu.autograd.function import Function

F32 = np.dtype(np.float32)


def _functions():
    """Every Function subclass (defined by tidu's modules once they are imported)."""
    out, stack = [], list(Function.__subclasses__())
    while stack:
        cls = stack.pop()
        out.append(cls)
        stack.extend(cls.__subclasses__())
    return out


def _floats(value):
    """The floating-point arrays in an op's output or gradient tuple (None and ints skipped)."""
    items = value if isinstance(value, tuple) else (value,)
    return [a for a in items if a is not None and hasattr(a, "dtype") and a.dtype.kind == "f"]


@pytest.fixture
def op_log(monkeypatch):
    """[(op name, 'forward' | 'backward', dtype)] of every float array the ops produce."""
    log = []
    for cls in _functions():
        for kind in ("forward", "backward"):
            if kind not in vars(cls):
                continue
            fn = vars(cls)[kind].__func__

            def recorded(ctx, *args, _fn=fn, _name=cls.__name__, _kind=kind, **kwargs):
                out = _fn(ctx, *args, **kwargs)
                log.extend((_name, _kind, a.dtype) for a in _floats(out))
                return out

            monkeypatch.setattr(cls, kind, staticmethod(recorded))
    return log


def _mlp():
    model = models.Sequential([layers.Dense(32, activation="relu", input_shape=(784,)),
                               layers.Dense(10, activation="softmax")])
    return model, optimizers.RMSprop(learning_rate=0.001)


def _cnn():
    model = models.Sequential([layers.Reshape((28, 28, 1), input_shape=(784,)),
                               layers.Conv2D(4, 5, activation="relu"), layers.MaxPooling2D(2),
                               layers.Conv2D(6, 5, activation="relu"), layers.MaxPooling2D(2),
                               layers.Flatten(), layers.Dense(16, activation="relu"),
                               layers.Dense(10, activation="softmax")])
    return model, optimizers.SGD(learning_rate=0.01, momentum=0.9)


def _lstm():
    model = models.Sequential([layers.Reshape((28, 28), input_shape=(784,)), layers.LSTM(8),
                               layers.Dense(10, activation="softmax")])
    return model, optimizers.Adam(learning_rate=0.001)


@pytest.mark.parametrize("build", [_mlp, _cnn, _lstm], ids=["mlp", "cnn", "lstm"])
def test_training_step_stays_float32(build, op_log, rng):
    model, opt = build()
    model.compile(optimizer=opt, loss="categorical_crossentropy", metrics=["accuracy"])
    x = rng.random((16, 784))                                    # float64 on purpose
    y = np.eye(10)[rng.integers(0, 10, 16)]                      # float64 one-hot

    # one batch through each layer in training mode: every layer's activations
    a = Tensor(x.astype(np.float32))
    for layer in model.layers:
        a = layer(a, training=True)
        assert a.dtype == F32, f"{layer.name} ({type(layer).__name__}) output is {a.dtype}"

    # one optimizer step through fit, with every op recorded
    weights = model.trainable_weights
    grads = {}
    original_apply = opt.apply_gradients

    def apply_gradients(pairs):
        pairs = list(pairs)
        grads.update({p.name: g.dtype for g, p in pairs})
        return original_apply(pairs)

    opt.apply_gradients = apply_gradients
    del op_log[:]
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False)

    assert opt.iterations == 1
    assert {kind for _, kind, _ in op_log} == {"forward", "backward"}
    bad = sorted({(name, kind, str(dt)) for name, kind, dt in op_log if dt != F32})
    assert not bad, f"ops that left float32: {bad}"
    assert grads and all(dt == F32 for dt in grads.values()), grads
    assert len(grads) == len(weights)
    for p in model.weights:
        assert p.data.dtype == F32, f"weight {p.name} is {p.data.dtype}"
    slots = {k: v for k, v in opt.state_dict().items() if k.startswith("param")}
    assert slots, "the optimizer kept no per-weight state"
    bad_slots = sorted(f"{k}: {v.dtype}" for k, v in slots.items() if v.dtype != F32)
    assert not bad_slots, f"optimizer state that left float32: {bad_slots}"
    assert model.predict(x[:4]).dtype == F32
