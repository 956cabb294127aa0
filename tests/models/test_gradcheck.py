"""tidu.gradcheck_model: whole-model gradient checks, and that a wrong backward is caught."""
import numpy as np
import pytest

from tidu import layers, models
from tidu.autograd import Function
from tidu.errors import GradcheckError
from tidu.layers.base import Layer
from tidu.models.gradcheck import gradcheck_model


def test_small_mlp_passes(rng):
    model = models.Sequential([layers.Dense(7, activation="tanh", input_shape=(5,)),
                               layers.Dense(6, activation="relu"),
                               layers.Dense(3, activation="softmax")])
    model.compile("sgd", "categorical_crossentropy")
    x = rng.standard_normal((4, 5))
    y = np.eye(3)[rng.integers(0, 3, 4)]
    result = gradcheck_model(model, x, y)
    assert result and result.layers == [l.name for l in reversed(model.layers)]
    assert all(err < 1e-6 for err in result.max_error.values())
    assert all(p.dtype == np.float32 for p in model.weights)  # the original is untouched


def test_small_cnn_passes(rng):
    model = models.Sequential([layers.Conv2D(3, 3, activation="tanh", input_shape=(6, 6, 2)),
                               layers.MaxPooling2D(2),
                               layers.Flatten(),
                               layers.Dense(2, activation="sigmoid")])
    model.compile("sgd", "binary_crossentropy")
    x = rng.standard_normal((3, 6, 6, 2))
    y = rng.integers(0, 2, (3, 2)).astype(float)
    result = gradcheck_model(model, x, y, full_max=16, directions=4)
    assert result and len(result.layers) == 2  # the layers with weights


class BadScale(Function):
    """y = x · w (w per feature).  Correct: dy/dx = w, dy/dw = Σ_batch x·gy. The backward below
    doubles dy/dw: the bug the check must find."""

    @staticmethod
    def forward(ctx, x, w):
        ctx.save_for_backward(x, w)
        return x * w

    @staticmethod
    def backward(ctx, gy):
        x, w = ctx.saved
        return gy * w, 2 * (gy * x).sum(axis=0)


class BadLayer(Layer):
    def build(self, input_shape):
        self.w = self.add_weight("w", (input_shape[-1],), "ones")

    def call(self, inputs, training=False):
        return BadScale.apply(inputs, self.w)


def test_a_wrong_backward_fails_naming_the_layer(rng):
    model = models.Sequential([layers.Dense(4, activation="tanh", input_shape=(3,)),
                               BadLayer(name="broken"),
                               layers.Dense(2, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    x, y = rng.standard_normal((5, 3)), rng.integers(0, 2, 5)
    with pytest.raises(GradcheckError, match=r"layer 'broken' \(BadLayer\).*'broken/w'"):
        gradcheck_model(model, x, y)
    result = gradcheck_model(model, x, y, raise_on_failure=False)
    assert not result
    ok = dict((r[0], r[4]) for r in result.rows)
    assert ok["broken"] is False and ok[model.layers[2].name] is True
