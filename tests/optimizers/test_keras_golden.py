"""Keras 3's own optimizer tests (keras/src/optimizers/*_test.py, 3.15.1), ported to tidu.

Each Keras optimizer test file has a single-step test, a weight-decay test (with both ways of
excluding a variable) and a "correctness with golden" test: five updates of a ten-vector of
ones from the gradient 0.01 then 0.1 … 1.0, compared with values Keras recorded. The values
below are Keras's, copied with their tolerances; tidu's optimizers must pass them under their
Keras names with Keras's default convention, exactly as Keras's own classes do.
"""
import numpy as np
import pytest

from tidu import optimizers
from tidu.autograd import Parameter

TOL = dict(rtol=5e-4, atol=5e-4)   # Keras's tolerance in the golden tests


def _apply(opt, variables, grads):
    opt.apply_gradients([(np.asarray(g, dtype=v.dtype), v) for g, v in zip(grads, variables)])


# --- single step: [1, 2, 3, 4] with gradient [1, 6, 7, 2] at learning rate 0.5 --------------
SINGLE_STEP = {
    "SGD": [0.5, -1.0, -0.5, 3.0],
    "Adagrad": [0.5233, 1.5007, 2.5005, 3.5061],
    "Adadelta": [0.9993, 1.9993, 2.9993, 3.9993],
    "RMSprop": [-0.5811, 0.4189, 1.4189, 2.4189],
    "Adam": [0.5, 1.5, 2.5, 3.5],
    "Adamax": [0.5, 1.5, 2.5, 3.5],
    "Nadam": [0.4686, 1.4686, 2.4686, 3.4686],
}


@pytest.mark.parametrize("name", sorted(SINGLE_STEP))
def test_single_step(name):
    opt = getattr(optimizers, name)(learning_rate=0.5)
    x = Parameter(np.array([1.0, 2.0, 3.0, 4.0], dtype="float32"))
    _apply(opt, [x], [[1.0, 6.0, 7.0, 2.0]])
    np.testing.assert_allclose(x.data, SINGLE_STEP[name], rtol=1e-4, atol=1e-4)


# --- weight decay: a zero gradient, decay 0.004 at learning rate 1, two ways to exclude ------
@pytest.mark.parametrize("name", sorted(SINGLE_STEP))
def test_weight_decay_and_its_exclusions(name):
    cls = getattr(optimizers, name)
    zero = np.zeros((), dtype="float32")
    var1 = Parameter(np.array(2.0, dtype="float32"))
    var2 = Parameter(np.array(2.0, dtype="float32"), name="exclude")
    var3 = Parameter(np.array(2.0, dtype="float32"))

    cls(learning_rate=1.0, weight_decay=0.004).apply_gradients([(zero, var1)])
    by_name = cls(learning_rate=1.0, weight_decay=0.004)
    by_name.exclude_from_weight_decay(var_names=["exclude"])
    by_name.apply_gradients([(zero, var1), (zero, var2)])
    by_list = cls(learning_rate=1.0, weight_decay=0.004)
    by_list.exclude_from_weight_decay(var_list=[var3])
    by_list.apply_gradients([(zero, var1), (zero, var3)])

    assert float(var1.data) == pytest.approx(1.9760959, abs=1.5e-6)   # (1 − 0.004)³ · 2
    assert float(var2.data) == pytest.approx(2.0, abs=1e-6)
    assert float(var3.data) == pytest.approx(2.0, abs=1e-6)


# --- correctness with golden ------------------------------------------------------------------
def _tile(column):
    return np.tile(np.array(column)[:, None], (1, 10))


GOLDEN = {
    "sgd-nesterov": (lambda: optimizers.SGD(nesterov=True), np.array([
        [0.9999] * 10,
        [0.9989, 0.9979, 0.9969, 0.9959, 0.9949, 0.9939, 0.9929, 0.9919, 0.9909, 0.9899],
        [0.9979, 0.9959, 0.9939, 0.9919, 0.9899, 0.9879, 0.9859, 0.9839, 0.9819, 0.9799],
        [0.9969, 0.9939, 0.9909, 0.9879, 0.9849, 0.9819, 0.9789, 0.9759, 0.9729, 0.9699],
        [0.9959, 0.9919, 0.9879, 0.9839, 0.9799, 0.9759, 0.9719, 0.9679, 0.9639, 0.9599]])),
    "adagrad": (lambda: optimizers.Adagrad(learning_rate=0.2, initial_accumulator_value=0.3,
                                           epsilon=1e-6), np.array([
        [0.9963] * 10,
        [0.9604, 0.9278, 0.9003, 0.8784, 0.8615, 0.8487, 0.8388, 0.8313, 0.8255, 0.8209],
        [0.9251, 0.8629, 0.8137, 0.7768, 0.7497, 0.7298, 0.7151, 0.704, 0.6956, 0.6891],
        [0.8903, 0.8012, 0.7342, 0.6862, 0.6521, 0.6277, 0.6099, 0.5967, 0.5867, 0.579],
        [0.856, 0.7422, 0.6604, 0.6037, 0.5644, 0.5367, 0.5168, 0.5021, 0.491, 0.4825]])),
    "adadelta": (lambda: optimizers.Adadelta(learning_rate=1.0, rho=0.8, epsilon=1e-6),
                 _tile([0.9978, 0.9947, 0.9915, 0.9882, 0.9849])),
    "rmsprop-centered": (lambda: optimizers.RMSprop(centered=True),
                         _tile([0.9967, 0.9933, 0.9908, 0.9885, 0.9864])),
    "adam-amsgrad": (lambda: optimizers.Adam(amsgrad=True),
                     _tile([0.999, 0.9982, 0.9974, 0.9965, 0.9955])),
    "adamax": (lambda: optimizers.Adamax(learning_rate=0.2, beta_1=0.85, beta_2=0.95,
                                         epsilon=1e-6), np.array([
        [0.8] * 10,
        [0.6827, 0.6873, 0.6888, 0.6896, 0.6901, 0.6904, 0.6906, 0.6908, 0.6909, 0.691],
        [0.5333, 0.5407, 0.5431, 0.5444, 0.5451, 0.5456, 0.546, 0.5462, 0.5464, 0.5466],
        [0.368, 0.3773, 0.3804, 0.382, 0.3829, 0.3835, 0.384, 0.3843, 0.3846, 0.3848],
        [0.1933, 0.204, 0.2076, 0.2094, 0.2105, 0.2112, 0.2117, 0.2121, 0.2124, 0.2126]])),
    "nadam": (lambda: optimizers.Nadam(learning_rate=0.5, beta_1=0.5, beta_2=0.67,
                                       epsilon=1e-5), np.array([
        [0.4281] * 10,
        [-0.1738, -0.1731, -0.1726, -0.1723, -0.1721, -0.172, -0.1719, -0.1718, -0.1718, -0.1717],
        [-0.7115, -0.7103, -0.7096, -0.7092, -0.709, -0.7088, -0.7086, -0.7085, -0.7085, -0.7084],
        [-1.2335, -1.2322, -1.2313, -1.2309, -1.2306, -1.2304, -1.2302, -1.2301, -1.23, -1.2299],
        [-1.7492, -1.7478, -1.7469, -1.7464, -1.7461, -1.7459, -1.7457, -1.7456, -1.7455, -1.7454]])),
}


@pytest.mark.parametrize("case", sorted(GOLDEN))
def test_correctness_with_golden(case):
    make, golden = GOLDEN[case]
    opt = make()
    x = Parameter(np.ones(10, dtype="float32"))
    grads = np.arange(0.1, 1.1, 0.1)[:10]
    _apply(opt, [x], [np.full(10, 0.01)])
    for i in range(5):
        np.testing.assert_allclose(x.data, golden[i], **TOL, err_msg=f"{case}, after update {i + 1}")
        _apply(opt, [x], [grads])


def test_golden_cases_fail_in_the_torch_form_where_the_forms_differ():
    """The golden values tell Keras's form from torch's: the port is not a test that cannot fail."""
    x = Parameter(np.ones(10, dtype="float32"))
    opt = optimizers.Nadam(learning_rate=0.5, beta_1=0.5, beta_2=0.67, epsilon=1e-5,
                           convention="torch")
    grads = np.arange(0.1, 1.1, 0.1)[:10]
    _apply(opt, [x], [np.full(10, 0.01)])
    for _ in range(4):
        _apply(opt, [x], [grads])
    assert not np.allclose(x.data, GOLDEN["nadam"][1][4], **TOL)


@pytest.mark.parametrize("kind, expected", [("clipnorm", [2**0.5 / 2, 2**0.5 / 2]),
                                            ("clipvalue", [1.0, 1.0])])
def test_clipping(kind, expected):
    """Keras's test_clip_norm / test_clip_value, through one SGD step at learning rate 1."""
    x = Parameter(np.zeros(2, dtype="float32"))
    optimizers.SGD(learning_rate=1.0, **{kind: 1}).apply_gradients([(np.array([100.0, 100.0],
                                                                              "float32"), x)])
    np.testing.assert_allclose(-x.data, expected, rtol=1e-6)
