"""A Keras optimizer name with the same arguments ends at the real Keras 3's weights.

keras (3.15.1, the torch backend) and tidu get the same float32 variables and the same 10
float32 gradients through their own apply_gradients; the weights must agree to relative 1e-5.
The gradients span 1e-5..1 in magnitude, so ε shapes the smallest steps: a rule with ε in the
wrong place (torch's form) misses, and the test checks that it does wherever the forms differ.
"""
import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")

from tidu import optimizers  # noqa: E402
from tidu.autograd import Parameter  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")   # keras's torch backend, NumPy 2

SHAPES = ((4, 3), (5,), (2, 2, 2))
STEPS = 10
RTOL = 1e-5
SCALE = {"adadelta": 1e-4}   # Adadelta's default η = 0.001 moves weights by ~1e-6: start them that small

# name: (the Keras optimizer, ours with the same arguments, ours in torch's form or None where the
# forms agree). Each name with Keras's defaults and with other arguments.
K = keras.optimizers
CASES = {
    "sgd": (lambda: K.SGD(), lambda: optimizers.SGD(), None),
    "sgd-args": (lambda: K.SGD(0.1), lambda: optimizers.SGD(0.1), None),
    "sgd-momentum": (lambda: K.SGD(momentum=0.9), lambda: optimizers.SGD(momentum=0.9), None),
    "sgd-momentum-args": (lambda: K.SGD(0.05, momentum=0.5), lambda: optimizers.SGD(0.05, momentum=0.5), None),
    "sgd-nesterov-0": (lambda: K.SGD(nesterov=True), lambda: optimizers.SGD(nesterov=True), None),
    "sgd-nesterov-0-args": (lambda: K.SGD(0.2, nesterov=True), lambda: optimizers.SGD(0.2, nesterov=True), None),
    "sgd-nesterov": (lambda: K.SGD(momentum=0.9, nesterov=True),
                     lambda: optimizers.SGD(momentum=0.9, nesterov=True), None),
    "sgd-nesterov-args": (lambda: K.SGD(0.03, momentum=0.7, nesterov=True),
                          lambda: optimizers.SGD(0.03, momentum=0.7, nesterov=True), None),
    "rmsprop": (lambda: K.RMSprop(), lambda: optimizers.RMSprop(),
                lambda: optimizers.RMSprop(convention="torch")),
    "rmsprop-args": (lambda: K.RMSprop(0.01, rho=0.8, epsilon=1e-6),
                     lambda: optimizers.RMSprop(0.01, rho=0.8, epsilon=1e-6),
                     lambda: optimizers.RMSprop(0.01, rho=0.8, epsilon=1e-6, convention="torch")),
    "rmsprop-momentum": (lambda: K.RMSprop(momentum=0.9), lambda: optimizers.RMSprop(momentum=0.9),
                         lambda: optimizers.RMSprop(momentum=0.9, convention="torch")),
    "rmsprop-centered": (lambda: K.RMSprop(centered=True), lambda: optimizers.RMSprop(centered=True),
                         lambda: optimizers.RMSprop(centered=True, convention="torch")),
    "rmsprop-centered-momentum-args": (
        lambda: K.RMSprop(0.005, rho=0.95, momentum=0.5, epsilon=1e-6, centered=True),
        lambda: optimizers.RMSprop(0.005, rho=0.95, momentum=0.5, epsilon=1e-6, centered=True),
        lambda: optimizers.RMSprop(0.005, rho=0.95, momentum=0.5, epsilon=1e-6, centered=True, convention="torch")),
    "adam": (lambda: K.Adam(), lambda: optimizers.Adam(), lambda: optimizers.Adam(convention="torch")),
    "adam-args": (lambda: K.Adam(0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-5),
                  lambda: optimizers.Adam(0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-5),
                  lambda: optimizers.Adam(0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-5, convention="torch")),
    "adam-stable": (lambda: K.Adam(), lambda: optimizers.Adam(stable=True),
                    lambda: optimizers.Adam(stable=True, convention="torch")),
    "adam-amsgrad": (lambda: K.Adam(amsgrad=True), lambda: optimizers.Adam(amsgrad=True),
                     lambda: optimizers.Adam(amsgrad=True, convention="torch")),
    "amsgrad": (lambda: K.Adam(amsgrad=True), lambda: optimizers.AMSGrad(),
                lambda: optimizers.AMSGrad(convention="torch")),
    "amsgrad-args": (lambda: K.Adam(0.01, beta_1=0.8, beta_2=0.9, epsilon=1e-5, amsgrad=True),
                     lambda: optimizers.AMSGrad(0.01, beta_1=0.8, beta_2=0.9, epsilon=1e-5),
                     lambda: optimizers.AMSGrad(0.01, beta_1=0.8, beta_2=0.9, epsilon=1e-5, convention="torch")),
    "adamax": (lambda: K.Adamax(), lambda: optimizers.Adamax(), None),   # ε ≪ u: the forms agree here
    "adamax-args": (lambda: K.Adamax(0.05, beta_1=0.8, beta_2=0.5, epsilon=0.1),    # ε large: the forms part
                    lambda: optimizers.Adamax(0.05, beta_1=0.8, beta_2=0.5, epsilon=0.1),
                    lambda: optimizers.Adamax(0.05, beta_1=0.8, beta_2=0.5, epsilon=0.1, convention="torch")),
    "nadam": (lambda: K.Nadam(), lambda: optimizers.Nadam(), lambda: optimizers.Nadam(convention="torch")),
    "nadam-args": (lambda: K.Nadam(0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-5),
                   lambda: optimizers.Nadam(0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-5),
                   lambda: optimizers.Nadam(0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-5, convention="torch")),
    "adadelta": (lambda: K.Adadelta(), lambda: optimizers.Adadelta(),
                 lambda: optimizers.Adadelta(learning_rate=1.0, rho=0.9, epsilon=1e-6)),   # torch's defaults
    "adadelta-args": (lambda: K.Adadelta(1.0, rho=0.9, epsilon=1e-6),
                      lambda: optimizers.Adadelta(1.0, rho=0.9, epsilon=1e-6), None),
    "adagrad": (lambda: K.Adagrad(), lambda: optimizers.Adagrad(), None),   # h ≥ 0.1: ε/2h is below 1e-5
    "adagrad-args": (lambda: K.Adagrad(0.05, initial_accumulator_value=1e-6, epsilon=1e-5),
                     lambda: optimizers.Adagrad(0.05, initial_accumulator_value=1e-6, epsilon=1e-5),
                     lambda: optimizers.Adagrad(0.05, initial_accumulator_value=1e-6, epsilon=1e-5,
                                                convention="torch")),
}


def _problem(scale=1.0):
    """Weights scale·(0.5..1.5) in size (either sign, so a relative check is meaningful everywhere) and 10
    steps of gradients of magnitude 1e-5..1, large for 4 steps and then smaller (AMSGrad's
    maximum then matters), all float32."""
    rng = np.random.default_rng(13)
    weights = [(scale * rng.choice([-1, 1], s) * rng.uniform(0.5, 1.5, s)).astype(np.float32) for s in SHAPES]
    grads = [[(rng.standard_normal(s) * 10.0 ** rng.uniform(-5, 0, s) * (3.0 if k < 4 else 0.3))
              .astype(np.float32) for s in SHAPES] for k in range(STEPS)]
    return weights, grads


def _keras_run(make, weights, grads):
    variables = [keras.Variable(w.copy(), dtype="float32") for w in weights]
    opt = make()
    for gs in grads:
        opt.apply_gradients(zip([keras.ops.convert_to_tensor(g) for g in gs], variables))
    return [keras.ops.convert_to_numpy(v) for v in variables]


def _tidu_run(make, weights, grads):
    params = [Parameter(w.copy(), name=f"p{i}") for i, w in enumerate(weights)]
    opt = make()
    for gs in grads:
        opt.apply_gradients(zip(gs, params))
    assert opt.iterations == STEPS
    return [p.data for p in params]


def _max_rel(ours, ref):
    return max(float(np.max(np.abs(a - b) / np.abs(b))) for a, b in zip(ours, ref))


@pytest.mark.parametrize("name", sorted(CASES))
def test_keras_name_ends_at_keras_weights(name):
    make_keras, make_ours, make_other = CASES[name]
    weights, grads = _problem(SCALE.get(name, 1.0))
    ref = _keras_run(make_keras, weights, grads)
    ours = _tidu_run(make_ours, weights, grads)
    for a, b in zip(ours, ref):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=0)
    assert _max_rel(ref, weights) > 100 * RTOL          # the weights moved: the comparison says something
    if make_other is not None:                          # the other form is measurably elsewhere
        assert _max_rel(_tidu_run(make_other, weights, grads), ref) > 5 * RTOL
