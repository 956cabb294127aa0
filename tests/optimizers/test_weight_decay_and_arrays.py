"""exclude_from_weight_decay on every path, and parameters held in the backend's array type."""
import numpy as np
import pytest

from tidu import backend
from tidu.autograd import Parameter
from tidu.optimizers import SGD, SWATS, Adam, Newton


def _params(dtype=np.float32):
    return [Parameter(np.ones((3, 2), dtype), name="dense/kernel"), Parameter(np.ones(2, dtype), name="dense/bias"),
            Parameter(np.ones(2, dtype), name="norm/gamma"), Parameter(np.ones((2, 2), dtype), name="out/kernel")]


@pytest.mark.parametrize("path", ["flat", "per_tensor", "non_elementwise"])
def test_excluded_parameters_are_not_decayed(path):
    # zero gradients: only the decay θ ← θ − η·wd·θ moves a weight, 1 → 1 − 0.1·0.5 = 0.95
    params = _params()
    if path == "per_tensor":                  # mixed dtypes: apply_gradients updates tensor by tensor
        params[3] = Parameter(np.ones((2, 2)), name="out/kernel")
    opt = (SWATS if path == "non_elementwise" else SGD)(0.1, weight_decay=0.5)
    opt.exclude_from_weight_decay(var_list=[params[2]], var_names=["bias"])
    opt.apply_gradients([(np.zeros_like(p.data), p) for p in params])
    if path == "flat":
        assert opt._group is not None and params[0].data.base is opt._group.theta
    decayed = [np.allclose(p.data, 0.95) for p in params]
    kept = [np.array_equal(p.data, np.ones_like(p.data)) for p in params]
    assert decayed == [True, False, False, True] and kept == [False, True, True, False]


def test_exclusion_after_steps_repacks_and_keeps_the_state(rng):
    params = _params(np.float64)
    opt = Adam(0.1, weight_decay=0.5)
    grads = [rng.standard_normal(p.shape) for p in params]
    opt.apply_gradients(list(zip(grads, params)))
    m_before = opt.state_dict()["param1/m"].copy()
    opt.exclude_from_weight_decay(var_names=["bias", "gamma"])
    bias = params[1].data.copy()
    opt.apply_gradients([(np.zeros_like(p.data), p) for p in params])
    np.testing.assert_allclose(opt.state_dict()["param1/m"], 0.9 * m_before)   # state carried over
    # Adam's step with g = 0 still moves by m̂/(√v̂ + ε), but no decay term: compare with wd = 0
    ref = Adam(0.1)
    ref_p = Parameter(bias.copy())
    ref.load_state_dict({"iterations": np.array(1), "param0/m": m_before,
                         "param0/v": opt.state_dict()["param1/v"] / 0.999})
    ref.apply_gradients([(np.zeros(2), ref_p)])
    np.testing.assert_allclose(params[1].data, ref_p.data, rtol=1e-12)


def test_update_dict_keys_match_var_names():
    params = {"w": np.ones(2), "bias": np.ones(2)}
    opt = SGD(0.1, weight_decay=0.5)
    opt.exclude_from_weight_decay(var_names=["bias"])
    opt.update(params, {"w": np.zeros(2), "bias": np.zeros(2)})
    np.testing.assert_allclose(params["w"], 0.95)
    np.testing.assert_array_equal(params["bias"], 1.0)


def test_exclude_from_weight_decay_checks_its_names():
    with pytest.raises(TypeError, match=r"SGD.exclude_from_weight_decay: expected var_names to be non-empty "
                                        r"strings, got 3 at position 1"):
        SGD(weight_decay=0.1).exclude_from_weight_decay(var_names=["bias", 3])


class _Sub(np.ndarray):
    """A thin ndarray subclass, as a test backend's array type would be."""


class _Module:
    ndarray = _Sub

    def __getattr__(self, name):
        return getattr(np, name)


@pytest.fixture
def sub_backend(monkeypatch):
    monkeypatch.setattr(backend, "xp", _Module())


@pytest.mark.parametrize("make", [lambda: Adam(0.1), lambda: SGD(0.1, momentum=0.9), lambda: SWATS(0.1)])
def test_parameters_in_the_backend_array_type(sub_backend, make, rng):
    params = [Parameter(rng.standard_normal(s).view(_Sub)) for s in ((3, 2), (2,))]
    twins = [Parameter(np.array(p.data)) for p in params]
    opt, ref = make(), make()
    for _ in range(3):
        grads = [rng.standard_normal(p.shape).view(_Sub) for p in params]
        opt.apply_gradients(list(zip(grads, params)))
        ref.apply_gradients([(np.asarray(g), p) for g, p in zip(grads, twins)])
    for p, q in zip(params, twins):
        np.testing.assert_allclose(np.asarray(p.data), q.data, rtol=1e-12)
    assert opt._same_group([(g, p) for g, p in zip(grads, params)]) is opt._group   # fast path kept
    x = rng.standard_normal(3).view(_Sub)
    Adam(0.1).update({"x": x}, {"x": np.ones(3)})
    Newton(damping=0.0).step(lambda: (float(x @ x), [2 * x]), params=[x])   # closure methods too
    assert np.allclose(x, 0, atol=1e-6)
