"""Sequential runs Conv2D(activation='relu') → MaxPooling2D as conv → pool → relu, the conv and
the pool as one op (tidu.functional.conv2d_max_pool2d): the same outputs, bit for bit, as
calling the layers one by one, and the same gradients, the kernels' and biases' to float
rounding (the fused op sums their terms in another order; exact on small integers)."""
import numpy as np
import pytest

from tidu import Tensor, layers, models, regularizers
from tidu.functional import activations as FA


def lenet(activation="relu", **conv_options):
    return models.Sequential([
        layers.Conv2D(4, 3, activation=activation, input_shape=(10, 10, 2), **conv_options),
        layers.MaxPooling2D(2),
        layers.Conv2D(3, 3, activation=activation),
        layers.MaxPooling2D(2, padding="same"),
        layers.Flatten(),
        layers.Dense(3, activation="softmax")])


def tied_inputs(rng, model):
    """Small integers in inputs and weights: conv outputs full of ties and exact zeros (a zero
    input patch gives 0, the bias), so max(relu(z)) hits every tie-breaking case."""
    x = rng.integers(-1, 2, (5, 10, 10, 2)).astype(np.float64)
    x[:, :4, :4] = 0  # a blank corner: whole windows of equal pre-activations
    model.set_weights([rng.integers(-1, 2, w.shape).astype(np.float64) for w in model.get_weights()])
    return x


def loss_and_grads(model, x, seed, one_by_one):
    params = model.trainable_weights
    for p in params:
        p.grad = None
    h = Tensor(x)
    if one_by_one:
        for layer in model.layers:
            h = layer(h, training=True)
    else:
        h = model.forward(h, training=True)
    w = np.random.default_rng(seed).standard_normal(h.shape)
    (h * w).sum().backward()
    grads = [p.grad.copy() for p in params]
    for p in params:
        p.grad = None
    return h.data, grads


def relu_input_shapes(monkeypatch):
    seen = []
    forward = FA.ReLU.forward

    def spy(ctx, x):
        seen.append(x.shape)
        return forward(ctx, x)

    monkeypatch.setattr(FA.ReLU, "forward", staticmethod(spy))
    return seen


def test_pool_before_relu_gives_the_same_outputs_and_gradients(rng, float64, monkeypatch):
    model = lenet()
    x = tied_inputs(rng, model)
    shapes = relu_input_shapes(monkeypatch)
    y, grads = loss_and_grads(model, x, 0, one_by_one=False)
    assert shapes == [(5, 4, 4, 4), (5, 1, 1, 3)]  # relu ran on the pooled maps
    shapes.clear()
    y_ref, grads_ref = loss_and_grads(model, x, 0, one_by_one=True)
    assert shapes == [(5, 8, 8, 4), (5, 2, 2, 3)]
    np.testing.assert_array_equal(y, y_ref)
    assert len(grads) == 6 and any(np.any(g != 0) for g in grads)
    for g, g_ref in zip(grads, grads_ref):
        np.testing.assert_array_equal(g, g_ref)


def test_pool_before_relu_on_real_valued_data(rng, float64):
    model = lenet()
    x = rng.standard_normal((5, 10, 10, 2))
    x[:, 5:] = 0
    y, grads = loss_and_grads(model, x, 1, one_by_one=False)
    y_ref, grads_ref = loss_and_grads(model, x, 1, one_by_one=True)
    np.testing.assert_array_equal(y, y_ref)
    for g, g_ref in zip(grads, grads_ref):   # float64: the order of the kernel's sums differs
        np.testing.assert_allclose(g, g_ref, rtol=1e-13, atol=1e-15 * np.abs(g_ref).max())
    np.testing.assert_array_equal(model.predict(x, verbose=0), y_ref)


@pytest.mark.parametrize("activation, options", [
    ("tanh", {}), ("elu", {}), ("leaky_relu", {}), ("linear", {}),
    ("relu", {"activity_regularizer": regularizers.L2(0.01)})])
def test_other_activations_and_observed_outputs_keep_the_layer_order(
        rng, float64, monkeypatch, activation, options):
    model = lenet(activation, **options)
    calls = []
    monkeypatch.setattr(type(model.layers[0]), "call",
                        lambda self, inputs, training=False, _call=type(model.layers[0]).call:
                        calls.append(self.name) or _call(self, inputs, training))
    x = rng.standard_normal((2, 10, 10, 2))
    y, grads = loss_and_grads(model, x, 2, one_by_one=False)
    ran_whole = [model.layers[0].name] + ([model.layers[2].name] if not options else [])
    assert calls == ran_whole  # the second conv's plain relu still pools first
    y_ref, grads_ref = loss_and_grads(model, x, 2, one_by_one=True)
    np.testing.assert_array_equal(y, y_ref)
    if options:
        assert len(model.layers[0].losses) == 1


def test_fit_with_the_reorder_matches_layer_by_layer_training(rng, float64):
    x = rng.standard_normal((16, 10, 10, 2))
    y = np.eye(3)[rng.integers(0, 3, 16)]
    models_ = [lenet(), lenet()]
    models_[1].set_weights(models_[0].get_weights())
    for m in models_:
        m.compile("sgd", "categorical_crossentropy")
    models_[1].forward = lambda h, training=False, logits=False: _one_by_one(models_[1], h, training, logits)
    for m in models_:
        m.fit(x, y, batch_size=8, epochs=2, verbose=0, shuffle=False)
    for w, w_ref in zip(models_[0].get_weights(), models_[1].get_weights()):   # float64 rounding
        np.testing.assert_allclose(w, w_ref, rtol=1e-12, atol=1e-15 * np.abs(w_ref).max())


def _one_by_one(model, h, training, logits):
    for layer in model.layers[:-1]:
        h = layer(h, training=training)
    last = model.layers[-1]
    return last.pre_activation(h, training=training) if logits else last(h, training=training)


def test_a_functional_model_pools_first_only_where_the_pool_alone_reads_the_conv(rng, float64):
    """The one interpreter (tidu.models.graph) fuses conv→pool in functional models too, and
    leaves the order alone where another layer also reads the conv's output."""
    from tidu.models import graph

    inp = layers.Input((10, 10, 2))
    c1 = layers.Conv2D(3, 3, activation="relu", padding="same")(inp)
    p1 = layers.MaxPooling2D(2)(c1)
    c2 = layers.Conv2D(3, 3, activation="relu", padding="same")(p1)
    p2 = layers.MaxPooling2D(2)(c2)
    merged = layers.Flatten()(p2)
    chain = models.Model(inp, layers.Dense(2)(merged))
    assert graph.fusable_pairs(chain._steps)[:4] == [True, False, True, False]

    conv, pool, flat = (layers.Conv2D(3, 3, activation="relu"), layers.MaxPooling2D(2),
                        layers.Flatten())
    read_twice = [graph.Step(conv, (-1,), {}), graph.Step(pool, (0,), {}), graph.Step(flat, (0,), {})]
    assert graph.fusable_pairs(read_twice) == [False, False, False]
    x = rng.standard_normal((2, 10, 10, 2))
    h = Tensor(x)
    for layer in chain.layers:
        h = layer(h)
    np.testing.assert_array_equal(chain.predict(x), h.data)
