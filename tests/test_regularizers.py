import json
import os

import numpy as np
import pytest

from tidu import regularizers as R
from tidu.autograd import Parameter, Tensor


@pytest.fixture
def w(rng):
    return rng.standard_normal((5, 4))


def _value_and_grad(reg, w):
    p = Parameter(w.copy())
    penalty = reg(p)
    assert penalty.shape == () and penalty.dtype == np.float64
    penalty.backward()
    return float(penalty.data), p.grad


def test_keras_l1_l2_l1l2(w):
    value, grad = _value_and_grad(R.L2(0.1), w)
    np.testing.assert_allclose(value, 0.1 * (w ** 2).sum(), rtol=1e-12)
    np.testing.assert_allclose(grad, 0.2 * w, rtol=1e-12)
    value, grad = _value_and_grad(R.L1(0.3), w)
    np.testing.assert_allclose(value, 0.3 * np.abs(w).sum(), rtol=1e-12)
    np.testing.assert_allclose(grad, 0.3 * np.sign(w), rtol=1e-12)
    value, grad = _value_and_grad(R.L1L2(l1=0.3, l2=0.1), w)
    np.testing.assert_allclose(value, 0.3 * np.abs(w).sum() + 0.1 * (w ** 2).sum(), rtol=1e-12)
    np.testing.assert_allclose(grad, 0.3 * np.sign(w) + 0.2 * w, rtol=1e-12)


def test_notes_convention_is_lambda_over_2n(w):
    lam, n = 5.0, 50000
    value, grad = _value_and_grad(R.notes_l2(lam, n), w)
    np.testing.assert_allclose(value, lam / (2 * n) * (w ** 2).sum(), rtol=1e-12)
    np.testing.assert_allclose(grad, lam / n * w, rtol=1e-12)  # w <- (1 - eta*lam/n) w - ...
    value, grad = _value_and_grad(R.notes_l1(lam, n), w)
    np.testing.assert_allclose(value, lam / n * np.abs(w).sum(), rtol=1e-12)
    value, _ = _value_and_grad(R.L1L2(1.0, 2.0, convention="notes", n=10), w)
    np.testing.assert_allclose(value, np.abs(w).sum() / 10 + 2.0 / 20 * (w ** 2).sum(), rtol=1e-12)


def test_notes_convention_needs_n(w):
    reg = R.L2(0.5, convention="notes")
    with pytest.raises(ValueError, match="training-set size"):
        reg(Tensor(w))
    reg.n = 100  # a trainer may fill it in
    np.testing.assert_allclose(float(reg(Tensor(w)).data), 0.5 / 200 * (w ** 2).sum())


def test_float32_stays_float32(w):
    assert R.l2(0.01)(Tensor(w.astype(np.float32))).dtype == np.float32


def test_function_names_and_defaults(w):
    assert R.l2().l2 == 0.01 and R.l1().l1 == 0.01
    assert (R.l1_l2().l1, R.l1_l2().l2) == (0.01, 0.01)
    assert isinstance(R.get("l2"), R.L2) and R.get("l2").l2 == 0.01
    assert isinstance(R.get("L1L2"), R.L1L2)
    assert R.get(None) is None
    zero = R.L1L2()(Tensor(w))
    # a class gives an instance with the class's defaults, as Keras 3's regularizers.get does
    # (keras.regularizers.get(keras.regularizers.L2) is L2(0.01), of L1L2 l1 = l2 = 0)
    assert type(R.get(R.L2)) is R.L2 and R.get(R.L2).l2 == 0.01
    assert (R.get(R.L1L2).l1, R.get(R.L1L2).l2) == (0.0, 0.0)
    assert float(zero.data) == 0.0


@pytest.mark.parametrize("reg", [R.L1(0.2), R.L2(0.3), R.L1L2(0.1, 0.2), R.notes_l2(5.0, 60000),
                                 R.notes_l1(1.0, 10)])
def test_serialize_round_trip(reg, w):
    config = json.loads(json.dumps(R.serialize(reg)))
    again = R.get(config)
    assert type(again) is type(reg) and again.get_config() == reg.get_config()
    assert float(again(Tensor(w)).data) == float(reg(Tensor(w)).data)


def test_bad_values():
    with pytest.raises(ValueError, match="did you mean 'l2'"):
        R.get("l3")
    with pytest.raises(ValueError, match=r"expected l2 >= 0, got l2=-1.0"):
        R.L2(-1.0)
    with pytest.raises(ValueError, match="convention"):
        R.L2(0.1, convention="nielsen")
    with pytest.raises(ValueError, match=r"expected n \(the training-set size\) to be an int >= 1, got"):
        R.notes_l2(0.1, 0)
    with pytest.raises(ValueError, match="only with convention='notes'"):
        R.L2(0.1, n=100)


def test_each_fit_sets_its_own_training_size(w):
    # a fit on 10 samples, then one on 1,000: the second penalty is λ/(2·1000)·Σw², not the
    # first fit's n kept forever (100× too strong)
    reg = R.L2(0.5, convention="notes")
    reg.set_training_size(10)
    np.testing.assert_allclose(_value_and_grad(reg, w)[0], 0.5 / (2 * 10) * (w ** 2).sum(), rtol=1e-12)
    reg.set_training_size(1000)
    value, grad = _value_and_grad(reg, w)
    np.testing.assert_allclose(value, 0.5 / (2 * 1000) * (w ** 2).sum(), rtol=1e-12)
    np.testing.assert_allclose(grad, 0.5 / 1000 * w, rtol=1e-12)
    assert reg.get_config()["n"] is None           # the fit's n is not the user's: not saved


def test_an_n_given_to_the_constructor_is_kept_by_every_fit(w):
    reg = R.L1(0.5, convention="notes", n=40)
    reg.set_training_size(1000)
    np.testing.assert_allclose(_value_and_grad(reg, w)[0], 0.5 / 40 * np.abs(w).sum(), rtol=1e-12)
    assert reg.get_config()["n"] == 40
    again = R.deserialize(R.serialize(reg))
    again.set_training_size(7)
    assert again.n == 40


@pytest.mark.parametrize("n, error", [(0, ValueError), (-3, ValueError), (2.5, TypeError),
                                      (True, TypeError), (None, TypeError)])
def test_set_training_size_rejects_a_non_positive_int(n, error):
    with pytest.raises(error, match=r"L2\.set_training_size: expected n \(the number of training samples\)"):
        R.L2(0.1, convention="notes").set_training_size(n)


@pytest.mark.parametrize("name", ["L1", "L2", "L1L2"])
def test_get_of_a_class_matches_keras(name):
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras", reason="keras 3 is the reference for regularizers.get")
    ours, theirs = R.get(getattr(R, name)), keras.regularizers.get(getattr(keras.regularizers, name))
    assert type(ours).__name__ == type(theirs).__name__
    assert ours.get_config() == pytest.approx(theirs.get_config())
