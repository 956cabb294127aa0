"""The fused one-pass kernels (tidu.kernels.optimizers, extra `fast`) against the NumPy rules.

The rule is the reference: a kernel must give the same numbers to float32 rounding (it does
the same operations in the same order, so in practice the same bits), through the kernel
itself and through apply_gradients' per-parameter path, and the rule must still run whenever
the kernel does not apply (no numba, TIDU_FAST=0, clipping, a form without a kernel).
"""
import numpy as np
import pytest

from tidu.autograd import Parameter
from tidu import kernels
from tidu.optimizers import SGD, SWATS, Adam, AMSGrad, Momentum, Nadam, Nesterov, RMSprop


@pytest.fixture
def with_numba():
    pytest.importorskip("numba")


def _assert_same(a, b, dtype):
    assert a.dtype == b.dtype == dtype
    np.testing.assert_array_max_ulp(a, b, maxulp=1)


@pytest.mark.parametrize("convention", ["keras", "torch"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rmsprop_kernel_matches_the_rule(with_numba, rng, dtype, convention):
    opt = RMSprop(learning_rate=0.01, rho=0.8, epsilon=1e-6, convention=convention)
    for theta, ref_theta, v, ref_v in _kernel_and_rule(opt, dtype, rng, lambda t: 0.01, zeros=3):
        _assert_same(theta, ref_theta, dtype)               # zeros: the denominator with v = 0
        _assert_same(v, ref_v, dtype)


def _kernel_and_rule(opt, dtype, rng, lr, zeros=0):
    """Five steps of opt's fused kernel and of its rule from the same θ on the same gradients
    (spanning six decades, the first `zeros` of them 0), at lr(t); yields (θ, θ of the rule,
    v, v of the rule) after each."""
    kernel = opt.fused(dtype)
    assert kernel is not None
    theta = rng.standard_normal(1000).astype(dtype)
    ref_theta, ref_state = theta.copy(), opt.init_state(theta)
    state = {k: a.copy() for k, a in ref_state.items()}
    for t in range(1, 6):
        g = (rng.standard_normal(1000) * 10.0 ** rng.integers(-4, 2, 1000)).astype(dtype)
        g[:zeros] = 0
        kernel(opt, theta, g, state, t, lr(t))
        opt.rule(ref_theta, g, ref_state, t, lr(t))
        yield theta, ref_theta, state["v"], ref_state["v"]


def _train(rng_seed, fast, **kwargs):
    kernels.set_enabled(fast)
    rng = np.random.default_rng(rng_seed)
    params = [Parameter(rng.standard_normal(s).astype(np.float32), name=f"p{i}")
              for i, s in enumerate([(7, 5), (5,), (3, 4, 2), (140000,)])]   # the last alone
    opt = RMSprop(learning_rate=0.003, **kwargs)
    for _ in range(4):
        grads = [rng.standard_normal(p.shape) for p in params]   # float64 gradients: cast on the way
        grads[1] = grads[1].astype(np.float32)
        grads[2] = np.asfortranarray(grads[2])                    # not C-contiguous
        opt.apply_gradients(zip(grads, params))
    return [p.data.copy() for p in params], opt.state_dict()


@pytest.mark.parametrize("kwargs", [{}, {"convention": "torch"}, {"weight_decay": 0.1}, {"clipnorm": 0.5},
                                    {"centered": True}])
def test_apply_gradients_is_the_same_with_and_without_kernels(with_numba, kwargs):
    slow, slow_state = _train(7, False, **kwargs)
    fast, fast_state = _train(7, True, **kwargs)
    for a, b in zip(fast, slow):
        _assert_same(a, b, np.float32)
    assert fast_state.keys() == slow_state.keys()
    for k in slow_state:
        if slow_state[k].dtype == np.float32:
            _assert_same(fast_state[k], slow_state[k], np.float32)


def test_no_kernel_when_disabled_or_not_plain():
    kernels.set_enabled(False)
    assert RMSprop().fused() is None
    kernels.set_enabled(True)
    assert RMSprop(momentum=0.9).fused() is None
    assert RMSprop(centered=True).fused() is None

    class OwnRule(RMSprop):          # its own math: the kernel would skip it
        def rule(self, theta, g, state, t, lr):
            theta -= g
            return theta, state
    assert OwnRule().fused() is None
    p = Parameter(np.ones(3, np.float32))
    OwnRule(0.1).apply_gradients([(np.ones(3, np.float32), p)])
    assert np.array_equal(p.data, np.zeros(3, np.float32))    # θ − g, the subclass's rule


def test_float16_parameters_take_the_rule(with_numba, rng):
    """numba has no float16: a float16 model's RMSprop runs the NumPy rule (the kernel was
    handed float16 arrays before, and numba raised NotImplementedError)."""
    assert RMSprop().fused(np.float16) is None and RMSprop().fused(np.float32) is not None
    theta = rng.standard_normal(50).astype(np.float16)
    p, ref = Parameter(theta.copy()), theta.copy()
    opt, rule = RMSprop(0.01), RMSprop(0.01)
    g = rng.standard_normal(50).astype(np.float16)
    opt.apply_gradients([(g, p)])
    ref, _ = rule.rule(ref, g, rule.init_state(ref), 1, np.float16(0.01))
    assert p.data.dtype == np.float16 and np.array_equal(p.data, ref)


SGD_FORMS = [{"momentum": 0.9}, {"momentum": 0.9, "nesterov": True},
             {"momentum": 0.8, "convention": "torch"},
             {"momentum": 0.8, "nesterov": True, "convention": "torch"},
             {"momentum": 0.7, "dampening": 0.3, "convention": "torch"}]


@pytest.mark.parametrize("form", SGD_FORMS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sgd_kernel_gives_the_rules_bits(with_numba, rng, dtype, form):
    """SGD's one-pass kernel makes the rule's float operations in the rule's order: the same
    bits, the torch form's first step (b = g) included."""
    opt = SGD(learning_rate=0.03, **form)
    for theta, ref_theta, v, ref_v in _kernel_and_rule(opt, dtype, rng, lambda t: 0.03 / t):
        assert theta.dtype == dtype and np.array_equal(theta, ref_theta)   # η changing, as a
        assert np.array_equal(v, ref_v)                                  # schedule's does


def _same_with_and_without_kernels(make, seed, kernel_expected):
    """Four apply_gradients of the optimizer make() on four parameters (float64 gradients, one
    not C-contiguous, the last parameter alone in its segment), with the kernels and without:
    the same bits for the weights and the state; the kernel ran iff kernel_expected."""
    def train(fast):
        kernels.set_enabled(fast)
        rng = np.random.default_rng(seed)
        params = [Parameter(rng.standard_normal(s).astype(np.float32), name=f"p{i}")
                  for i, s in enumerate([(7, 5), (5,), (3, 4, 2), (140000,)])]
        opt = make()
        fused, used = opt.fused, []

        def counting(dtype=np.float32):
            kernel = fused(dtype)
            used.append(kernel is not None)
            return kernel
        opt.fused = counting
        for _ in range(4):
            grads = [rng.standard_normal(p.shape) for p in params]   # float64: cast on the way
            grads[2] = np.asfortranarray(grads[2])
            opt.apply_gradients(zip(grads, params))
        assert any(used) == (fast and kernel_expected)
        return [p.data.copy() for p in params], opt.state_dict()
    slow, slow_state = train(False)
    fast, fast_state = train(True)
    for a, b in zip(fast, slow):
        assert np.array_equal(a, b)
    assert fast_state.keys() == slow_state.keys()
    for k in slow_state:
        assert np.array_equal(np.asarray(fast_state[k]), np.asarray(slow_state[k]))


@pytest.mark.parametrize("form", SGD_FORMS[:3] + [{"momentum": 0.9, "weight_decay": 0.01},
                                                  {"momentum": 0.9, "clipnorm": 0.5}])
def test_sgd_apply_gradients_is_the_same_with_and_without_kernels(with_numba, form):
    _same_with_and_without_kernels(lambda: SGD(learning_rate=0.01, **form), 3,
                                   "clipnorm" not in form)     # clipping: the rule


def test_sgd_kernel_only_for_the_momentum_forms_it_has(with_numba):
    assert SGD(0.01).fused() is None                              # θ −= η·g: one temporary only
    assert SGD(0.01, momentum=0.9, ema=True).fused() is None      # the notes' moving average
    assert SGD(0.01, momentum=0.9).fused(np.float16) is None
    assert Momentum(0.01).fused() is not None and Nesterov(0.01).fused() is not None

    class OwnRule(SGD):
        def rule(self, theta, g, state, t, lr):
            theta -= g
            return theta, state
    assert OwnRule(0.01, momentum=0.9).fused() is None
    kernels.set_enabled(False)
    assert SGD(0.01, momentum=0.9).fused() is None


ADAM_FORMS = [{}, {"convention": "torch"}, {"beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-5}]


@pytest.mark.parametrize("form", ADAM_FORMS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_kernel_gives_the_rules_bits(with_numba, rng, dtype, form):
    """Adam's one-pass kernel makes the rule's float operations in the rule's order (Keras's
    α_t on v, or torch's bias-corrected m̂ and v̂): the same bits, both moments too."""
    opt = Adam(learning_rate=0.01, **form)
    for theta, ref_theta, v, ref_v in _kernel_and_rule(opt, dtype, rng, lambda t: 0.01 / t,
                                                        zeros=3):
        assert theta.dtype == dtype and np.array_equal(theta, ref_theta)
        assert np.array_equal(v, ref_v)


@pytest.mark.parametrize("form", ADAM_FORMS[:2] + [{"weight_decay": 0.01}, {"clipnorm": 0.5}])
def test_adam_apply_gradients_is_the_same_with_and_without_kernels(with_numba, form):
    _same_with_and_without_kernels(lambda: Adam(learning_rate=0.01, **form), 5,
                                   "clipnorm" not in form)


def test_adam_kernel_only_for_the_forms_it_has(with_numba):
    assert Adam().fused() is not None and Adam(convention="torch").fused() is not None
    assert Adam(amsgrad=True).fused() is None and AMSGrad().fused() is None   # v_max: the rule
    assert Adam(stable=True).fused() is None          # the notes' reformulation: the rule
    assert Nadam().fused() is None and SWATS().fused() is None      # rules of their own
    assert Adam().fused(np.float16) is None
    kernels.set_enabled(False)
    assert Adam().fused() is None
