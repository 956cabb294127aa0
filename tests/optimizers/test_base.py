"""The shared machinery: the three entry points, the packed fast path, clipping, weight decay,
schedules in the optimizer, state_dict, configs, get(), and bad input."""
import json

import numpy as np
import pytest

from tidu import optimizers
from tidu.autograd import Parameter, pack
from tidu.errors import ShapeError
from tidu.optimizers import (SGD, SWATS, AMSGrad, Adadelta, Adagrad, Adam, Adamax, AdaptiveGain,
                             CoordinateDescent, LBFGS, Nadam, Newton, Optimizer, RMSprop, Rprop)
from tidu.optimizers.schedules import ExponentialDecay, LearningRateSchedule

SHAPES = [(4, 3), (3,), (2, 2, 2)]

ELEMENTWISE = {
    "sgd": lambda **kw: SGD(0.05, **kw),
    "sgd-nesterov": lambda **kw: SGD(0.05, momentum=0.9, nesterov=True, **kw),
    "sgd-dampening": lambda **kw: SGD(0.05, momentum=0.9, dampening=0.2, convention="torch", **kw),
    "sgd-torch-nesterov": lambda **kw: SGD(0.05, momentum=0.9, nesterov=True, convention="torch", **kw),
    "adagrad": lambda **kw: Adagrad(0.1, **kw),
    "adadelta": lambda **kw: Adadelta(1.0, **kw),
    "rmsprop": lambda **kw: RMSprop(0.01, momentum=0.5, centered=True, **kw),
    "rmsprop-torch": lambda **kw: RMSprop(0.01, momentum=0.5, centered=True, convention="torch", **kw),
    "adam": lambda **kw: Adam(0.01, **kw),
    "adam-stable": lambda **kw: Adam(0.01, stable=True, **kw),
    "adam-torch": lambda **kw: Adam(0.01, convention="torch", **kw),
    "amsgrad": lambda **kw: AMSGrad(0.01, **kw),
    "adamax": lambda **kw: Adamax(0.01, **kw),
    "nadam": lambda **kw: Nadam(0.01, **kw),
    "rprop": lambda **kw: Rprop(0.01, **kw),
    "adaptive_gain": lambda **kw: AdaptiveGain(0.01, **kw),
    "swats": lambda **kw: SWATS(0.01, **kw),
}


def _problem(rng, dtype=np.float32, steps=12):
    thetas = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    grads = [[rng.standard_normal(s) for s in SHAPES] for _ in range(steps)]   # float64 gradients
    return thetas, grads


def _readonly(a):
    a = np.array(a)
    a.flags.writeable = False
    return a


# --- the packed fast path ----------------------------------------------------------------------
@pytest.mark.parametrize("extra", [{}, {"clipnorm": 1.0}, {"global_clipnorm": 1.5}, {"clipvalue": 0.5},
                                   {"weight_decay": 0.1}])
@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
def test_packed_path_equals_per_dict_path_bit_for_bit(rng, name, extra):
    thetas, grads = _problem(rng)
    params = [Parameter(t.copy(), name=f"p{i}") for i, t in enumerate(thetas)]
    arrays = {f"w{i}": t.copy() for i, t in enumerate(thetas)}
    packed, per_dict = ELEMENTWISE[name](**extra), ELEMENTWISE[name](**extra)
    for gs in grads:
        gs = [_readonly(g) for g in gs]            # neither path may write into a gradient
        packed.apply_gradients(zip(gs, params))
        per_dict.update(arrays, {f"w{i}": g for i, g in enumerate(gs)})
    for i, p in enumerate(params):
        assert p.data.dtype == np.float32
        np.testing.assert_array_equal(p.data, arrays[f"w{i}"])
    # the fast path really ran: one flat buffer behind all parameters
    flat = packed._group.theta
    assert all(p.data.base is flat for p in params) and flat.size == sum(t.size for t in thetas)
    # and both paths hold the same state
    sd1, sd2 = packed.state_dict(), per_dict.state_dict()
    for key, value in sd1.items():
        if key.startswith("param"):
            i, slot = key[len("param"):].split("/")
            np.testing.assert_array_equal(value, sd2[f"key:w{i}/{slot}"])


def test_gradients_are_never_written(rng):
    thetas, grads = _problem(rng, steps=3)
    params = [Parameter(t.copy()) for t in thetas]
    opt = Adam(0.01, clipnorm=0.1)
    for gs in grads:
        before = [g.copy() for g in gs]
        opt.apply_gradients(zip(gs, params))
        for g, b in zip(gs, before):
            np.testing.assert_array_equal(g, b)


def test_an_existing_packing_is_adopted(rng):
    params = [Parameter(rng.standard_normal(s).astype(np.float32)) for s in SHAPES]
    flat = pack(params)
    opt = SGD(0.1, momentum=0.9)
    opt.apply_gradients([(np.ones(p.shape), p) for p in params])
    assert opt._group.theta is flat            # no second copy: the parameter server's vector stays live


def test_repacks_when_the_parameter_list_changes_and_keeps_state(rng):
    thetas, grads = _problem(rng, steps=8)
    params = [Parameter(t.copy()) for t in thetas]
    arrays = {i: t.copy() for i, t in enumerate(thetas)}
    ours, ref = Adam(0.01), Adam(0.01)
    for k, gs in enumerate(grads):
        n = 2 if k < 4 else 3                      # a third parameter joins at step 5
        if k == 6:                                 # and the data of one is replaced behind our back
            params[0].data = params[0].data.copy()
        ours.apply_gradients(zip(gs[:n], params[:n]))
        ref.update({i: arrays[i] for i in range(n)}, {i: gs[i] for i in range(n)})
    for i, p in enumerate(params):
        np.testing.assert_array_equal(p.data, arrays[i])
    assert ours._group.names == ("param0", "param1", "param2")


def test_mixed_dtypes_take_the_per_tensor_path(rng):
    a, b = Parameter(rng.standard_normal(3).astype(np.float32)), Parameter(rng.standard_normal(2))
    ref = {"a": a.data.copy(), "b": b.data.copy()}
    ours, twin = RMSprop(0.01), RMSprop(0.01)
    for _ in range(5):
        ga, gb = rng.standard_normal(3), rng.standard_normal(2)
        ours.apply_gradients([(ga, a), (gb, b)])
        twin.update(ref, {"a": ga, "b": gb})
    assert a.data.dtype == np.float32 and b.data.dtype == np.float64
    np.testing.assert_array_equal(a.data, ref["a"])
    np.testing.assert_array_equal(b.data, ref["b"])


def test_none_gradients_are_skipped(rng):
    a, b = Parameter(np.ones(3)), Parameter(np.ones(2))
    opt = SGD(0.1)
    opt.apply_gradients([(np.ones(3), a), (None, b)])
    np.testing.assert_allclose(a.data, 0.9)
    np.testing.assert_array_equal(b.data, 1.0)
    with pytest.raises(ValueError, match="no gradients provided"):
        opt.apply_gradients([(None, a), (None, b)])


# --- clipping and weight decay -----------------------------------------------------------------
def test_clipnorm_clips_each_tensor_to_its_own_norm():
    a, b = Parameter(np.zeros(2)), Parameter(np.zeros(2))
    SGD(1.0, clipnorm=1.0).apply_gradients([(np.array([3.0, 4.0]), a), (np.array([0.3, 0.4]), b)])
    np.testing.assert_allclose(a.data, [-0.6, -0.8])    # ‖g‖ = 5 > 1: g·1/5
    np.testing.assert_allclose(b.data, [-0.3, -0.4])    # ‖g‖ = 0.5 <= 1: unchanged


def test_global_clipnorm_scales_all_gradients_together():
    a, b = Parameter(np.zeros(2)), Parameter(np.zeros(1))
    SGD(1.0, global_clipnorm=2.0).apply_gradients([(np.array([3.0, 4.0]), a), (np.array([0.0]), b)])
    np.testing.assert_allclose(a.data, [-1.2, -1.6])    # global norm 5: g·2/5


def test_clipvalue_clips_elements():
    a = Parameter(np.zeros(3))
    SGD(1.0, clipvalue=0.5).apply_gradients([(np.array([-2.0, 0.1, 3.0]), a)])
    np.testing.assert_allclose(a.data, [0.5, -0.1, -0.5])


def test_only_one_clipping_option():
    with pytest.raises(ValueError, match="only one of clipnorm, clipvalue and global_clipnorm"):
        SGD(clipnorm=1.0, clipvalue=1.0)


def test_decoupled_weight_decay_closed_form():
    # θ1 = θ0 − η·wd·θ0 − η·g = 2 − 0.1·0.5·2 − 0.1·1 = 1.8
    a = Parameter(np.array([2.0]))
    SGD(0.1, weight_decay=0.5).apply_gradients([(np.array([1.0]), a)])
    np.testing.assert_allclose(a.data, [1.8])
    # Adam: the decay does not pass through the moments (θ − η·wd·θ, then the Adam step)
    b, c = Parameter(np.array([2.0])), Parameter(np.array([2.0 - 0.1 * 0.5 * 2.0]))
    Adam(0.1, weight_decay=0.5).apply_gradients([(np.array([1.0]), b)])
    Adam(0.1).apply_gradients([(np.array([1.0]), c)])
    np.testing.assert_allclose(b.data, c.data)


def test_constraint_applied_after_the_update():
    a = Parameter(np.array([1.0, -1.0]))
    a.constraint = lambda w: np.maximum(w, 0.0)
    SGD(0.5).apply_gradients([(np.array([1.0, 1.0]), a)])
    np.testing.assert_allclose(a.data, [0.5, 0.0])


# --- learning rate and schedules ---------------------------------------------------------------
class Recording(LearningRateSchedule):
    def __init__(self):
        self.seen = []

    def __call__(self, step):
        self.seen.append(step)
        return 0.1 / (1 + step)


def test_schedule_is_called_with_iterations_before_the_update():
    sched, a = Recording(), Parameter(np.zeros(1))
    opt = SGD(sched)
    for _ in range(3):
        opt.apply_gradients([(np.ones(1), a)])
    assert sched.seen[:3] == [0, 1, 2]
    np.testing.assert_allclose(a.data, [-(0.1 + 0.05 + 0.1 / 3)])
    assert opt.learning_rate == pytest.approx(0.1 / 4)
    assert opt.schedule is sched


def test_learning_rate_is_settable_and_lr_is_an_alias():
    opt = Adam(lr=0.01)
    assert opt.learning_rate == 0.01 and opt.lr == 0.01
    opt.learning_rate = 0.005                       # what ReduceLROnPlateau does
    assert opt.lr == 0.005 and opt.get_config()["learning_rate"] == 0.005
    opt = Adam(ExponentialDecay(0.1, 10, 0.5))
    opt.learning_rate = 0.02                        # replaces the schedule
    assert opt.schedule is None and opt.learning_rate == 0.02
    with pytest.raises(ValueError, match="Adam: expected learning_rate >= 0, got learning_rate=-1.0"):
        opt.learning_rate = -1.0
    with pytest.raises(TypeError, match="both learning_rate=0.5 and its alias lr=0.1"):
        Adam(0.5, lr=0.1)


def test_negative_schedule_value_raises_before_anything_changes():
    a = Parameter(np.ones(2))
    opt = SGD(lambda step: 0.1 - step)
    opt.apply_gradients([(np.ones(2), a)])
    before = a.data.copy()
    with pytest.raises(ValueError, match="schedule returned -0.9 at step 1"):
        opt.apply_gradients([(np.ones(2), a)])
    np.testing.assert_array_equal(a.data, before)
    assert opt.iterations == 1


# --- state_dict --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
def test_state_dict_resume_is_bit_identical(rng, name):
    thetas, grads = _problem(rng, steps=16)
    params = [Parameter(t.copy()) for t in thetas]
    opt = ELEMENTWISE[name](clipnorm=2.0)
    for gs in grads[:8]:
        opt.apply_gradients(zip(gs, params))
    saved_weights, saved_state = [p.data.copy() for p in params], opt.state_dict()
    config = json.loads(json.dumps(optimizers.serialize(opt)))
    for gs in grads[8:]:
        opt.apply_gradients(zip(gs, params))
    # a new process: new parameters from the checkpoint, a new optimizer from its config
    resumed = [Parameter(w.copy()) for w in saved_weights]
    opt2 = optimizers.deserialize(config)
    opt2.load_state_dict({k: v.copy() for k, v in saved_state.items()})   # before it has seen a parameter
    for gs in grads[8:]:
        opt2.apply_gradients(zip(gs, resumed))
    for p, q in zip(params, resumed):
        np.testing.assert_array_equal(p.data, q.data)
    assert opt2.iterations == opt.iterations == 16
    assert all(isinstance(k, str) and isinstance(v, np.ndarray) for k, v in opt.state_dict().items())


def test_state_dict_round_trip_in_place_and_lr(rng):
    params = {"W": rng.standard_normal((3, 2)), "b": rng.standard_normal(2)}
    opt = RMSprop(0.01, momentum=0.9)
    opt.update(params, {k: rng.standard_normal(v.shape) for k, v in params.items()})
    opt.learning_rate = 0.003
    sd = opt.state_dict()
    assert sd["iterations"] == 1 and sd["learning_rate"] == 0.003 and "key:W/v" in sd
    opt.update(params, {k: rng.standard_normal(v.shape) for k, v in params.items()})
    opt.learning_rate = 0.5
    opt.load_state_dict(sd)
    assert opt.iterations == 1 and opt.learning_rate == 0.003
    for k, v in opt.state_dict().items():
        np.testing.assert_array_equal(v, sd[k])


def test_lbfgs_state_dict_resume(rng):
    A = rng.standard_normal((6, 6))
    Q, b = A @ A.T + np.eye(6), rng.standard_normal(6)

    def closure_for(x):
        return lambda: (0.5 * x @ Q @ x - b @ x, [Q @ x - b])
    x = np.zeros(6)
    opt = LBFGS(max_iter=1, history_size=3, line_search=None, learning_rate=0.05)
    for _ in range(3):
        opt.step(closure_for(x), params=[x])
    x2, sd = x.copy(), opt.state_dict()
    for _ in range(3):
        opt.step(closure_for(x), params=[x])
    opt2 = LBFGS.from_config(opt.get_config())
    opt2.load_state_dict(sd)
    for _ in range(3):
        opt2.step(closure_for(x2), params=[x2])
    np.testing.assert_array_equal(x, x2)


def test_load_state_dict_checks_before_changing(rng):
    p = Parameter(rng.standard_normal(3))
    opt = Adam(0.01)
    opt.apply_gradients([(np.ones(3), p)])
    sd = opt.state_dict()
    bad = dict(sd, **{"param0/m": np.zeros(4)})
    with pytest.raises(ShapeError, match=r"param0/m has shape \(4,\), expected \(3,\)"):
        opt.load_state_dict(bad)
    for k, v in opt.state_dict().items():
        np.testing.assert_array_equal(v, sd[k])
    with pytest.raises(ValueError, match="no 'iterations'"):
        opt.load_state_dict({"param0/m": np.zeros(3)})


# --- configs and get() ---------------------------------------------------------------------------
def test_get_resolves_names_configs_and_instances():
    assert type(optimizers.get("rmsprop")) is RMSprop
    assert type(optimizers.get("Adam")) is Adam
    assert type(optimizers.get("adagrad")) is Adagrad and type(optimizers.get("AdaGrad")).__name__ == "AdaGrad"
    opt = Adam(0.01)
    assert optimizers.get(opt) is opt
    for name in optimizers.ALIASES:
        assert isinstance(optimizers.get(name), Optimizer)
    cfg = {"class_name": "SGD", "config": {"learning_rate": 0.2, "momentum": 0.5}}
    sgd = optimizers.get(cfg)
    assert sgd.learning_rate == 0.2 and sgd.momentum == 0.5


def test_get_unknown_name_suggests_the_closest():
    with pytest.raises(ValueError, match="unknown optimizer 'rmsprob'; did you mean 'rmsprop'") as e:
        optimizers.get("rmsprob")
    assert "adam" in str(e.value) and "lbfgs" in str(e.value)


@pytest.mark.parametrize("name", sorted(optimizers.ALIASES))
def test_config_round_trip_through_json(name):
    opt = optimizers.get(name)
    opt.learning_rate = ExponentialDecay(0.1, 100, 0.5, staircase=True)
    cfg = json.loads(json.dumps(optimizers.serialize(opt)))
    again = optimizers.deserialize(cfg)
    assert type(again) is type(opt)
    assert again.get_config() == opt.get_config()
    assert again.schedule(250) == opt.schedule(250) == 0.1 * 0.5 ** 2


def test_plain_callable_schedule_is_not_serializable():
    with pytest.raises(TypeError, match="plain callable"):
        SGD(lambda step: 0.1).get_config()


# --- bad input ---------------------------------------------------------------------------------
@pytest.mark.parametrize("make, message", [
    (lambda: SGD(-0.1), "SGD: expected learning_rate >= 0, got learning_rate=-0.1"),
    (lambda: Adam(beta_1=1.0), "Adam: expected 0 <= beta_1 < 1, got beta_1=1.0"),
    (lambda: Adam(beta_2=-0.5), "Adam: expected 0 <= beta_2 < 1, got beta_2=-0.5"),
    (lambda: RMSprop(rho=1.5), "RMSprop: expected 0 <= rho < 1, got rho=1.5"),
    (lambda: Adadelta(rho=1.0), "Adadelta: expected 0 <= rho < 1, got rho=1.0"),
    (lambda: Adagrad(epsilon=-1e-7), "Adagrad: expected epsilon >= 0, got epsilon=-1e-07"),
    (lambda: SGD(momentum=1.5), "SGD: expected 0 <= momentum <= 1, got momentum=1.5"),
    (lambda: SGD(nesterov=True, convention="torch"), "SGD: with convention='torch', nesterov=True needs momentum > 0"),
    (lambda: SGD(momentum=0.9, dampening=0.1), "SGD: dampening is torch's \\(Keras has none\\)"),
    (lambda: SGD(momentum=0.9, ema=True, convention="torch"), "SGD: ema=True is the notes' moving-average form"),
    (lambda: Adam(convention="pytorch"), "Adam: expected convention to be one of 'keras', 'torch', got convention='pytorch'"),
    (lambda: Rprop(etas=(1.5, 1.2)), "Rprop: expected 0 < etas\\[0\\] < 1 < etas\\[1\\]"),
    (lambda: LBFGS(clipnorm=1.0), "LBFGS: clipping and weight_decay are not supported"),
])
def test_bad_hyperparameters_raise_value_error(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize("make, message", [
    (lambda: Adam(beta1=0.9), "Adam: unknown argument 'beta1' \\(did you mean 'beta_1'\\?\\)"),
    (lambda: SGD(decay=1e-6), "SGD: unknown argument 'decay'.*InverseTimeDecay"),
    (lambda: SGD("fast"), "SGD: expected learning_rate to be a float or a schedule"),
    (lambda: Adam(beta_1="0.9"), "Adam: expected beta_1 to be a real number"),
])
def test_bad_kinds_raise_type_error(make, message):
    with pytest.raises(TypeError, match=message):
        make()


def test_wrong_gradient_shape_raises_before_any_change(rng):
    params = [Parameter(rng.standard_normal(s), name=f"p{i}") for i, s in enumerate(SHAPES)]
    opt = Adam(0.01)
    opt.apply_gradients([(np.ones(p.shape), p) for p in params])
    weights, state = [p.data.copy() for p in params], opt.state_dict()
    grads = [np.ones(SHAPES[0]), np.ones(SHAPES[1]), np.ones((2, 4))]
    with pytest.raises(ShapeError, match=r"Adam: expected gradient 2 for parameter 'p2' of shape \(2, 2, 2\), "
                                         r"got shape \(2, 4\)"):
        opt.apply_gradients(zip(grads, params))
    for p, w in zip(params, weights):
        np.testing.assert_array_equal(p.data, w)
    for k, v in opt.state_dict().items():
        np.testing.assert_array_equal(v, state[k])
    # the dict path too
    arrays = {"W": np.ones((2, 3)), "b": np.ones(3)}
    with pytest.raises(ShapeError, match=r"expected grads\['b'\] of shape \(3,\), got shape \(2,\)"):
        opt.update(arrays, {"W": np.ones((2, 3)), "b": np.ones(2)})
    with pytest.raises(ValueError, match="grads has no entry for 'b'"):
        opt.update(arrays, {"W": np.ones((2, 3))})
    np.testing.assert_array_equal(arrays["W"], 1.0)
    with pytest.raises(TypeError, match=r"params\['i'\] must be a floating-point array"):
        opt.update({"i": np.arange(3)}, {"i": np.ones(3)})


def test_closure_only_optimizers_refuse_the_other_entry_points(rng):
    p = Parameter(np.ones(2))
    for opt in (LBFGS(), Newton(), CoordinateDescent()):
        with pytest.raises(TypeError, match=f"{type(opt).__name__}.apply_gradients: .*call step\\(closure\\)"):
            opt.apply_gradients([(np.ones(2), p)])
        with pytest.raises(TypeError, match=f"{type(opt).__name__}.update"):
            opt.update({"a": np.ones(2)}, {"a": np.ones(2)})
        with pytest.raises(TypeError, match=f"{type(opt).__name__}.step: expected a closure"):
            opt.step(params=[p])
    np.testing.assert_array_equal(p.data, 1.0)


# --- step(closure) -----------------------------------------------------------------------------
def test_step_with_a_tidu_closure_equals_apply_gradients(rng):
    from tidu.autograd import Tensor
    X, y = Tensor(rng.standard_normal((8, 3))), Tensor(rng.standard_normal((8, 1)))
    w0 = rng.standard_normal((3, 1))
    w, v = Parameter(w0.copy()), Parameter(w0.copy())

    def closure():
        w.grad = None
        loss = ((X @ w - y) ** 2).mean()
        loss.backward()
        return loss
    a, b = Adam(0.1), Adam(0.1)
    for _ in range(5):
        loss = a.step(closure, params=[w])
        v.grad = None
        ((X @ v - y) ** 2).mean().backward()
        b.apply_gradients([(v.grad, v)])
        assert isinstance(loss, float)
    np.testing.assert_array_equal(w.data, v.data)
    # torch-style step() with the .grad already there, params remembered
    closure()
    a.step()
    b.apply_gradients([(w.grad, v)])
    np.testing.assert_array_equal(w.data, v.data)


def test_step_with_arrays_needs_loss_and_grads():
    x = np.array([1.0, 2.0])
    opt = SGD(0.5)
    loss = opt.step(lambda: (float(x @ x), [2 * x]), params=[x])
    assert loss == 5.0
    np.testing.assert_allclose(x, [0.0, 0.0])
    with pytest.raises(TypeError, match="closure must return \\(loss, grads\\)"):
        opt.step(lambda: 1.0, params=[x])


def test_minimize_with_numerical_gradient_matches_analytic():
    f = lambda x: (x[0] - 1) ** 2 + 3 * (x[1] + 2) ** 2 + x[0] * x[1]  # noqa: E731
    grad = lambda x: np.array([2 * (x[0] - 1) + x[1], 6 * (x[1] + 2) + x[0]])  # noqa: E731
    r1 = Adam(0.1).minimize(f, [0.0, 0.0], grad, steps=50)
    r2 = Adam(0.1).minimize(f, [0.0, 0.0], steps=50)
    np.testing.assert_allclose(r1.path, r2.path, rtol=1e-6, atol=1e-8)
    assert r1.losses[0] == f(np.zeros(2)) and r1.nit == 50
    assert r1.optimizer.iterations == 50


def test_minimize_runs_on_a_fresh_copy():
    opt = SGD(0.1, momentum=0.9)
    r1 = opt.minimize(lambda x: float(x @ x), [1.0, 1.0], lambda x: 2 * x, steps=5)
    r2 = opt.minimize(lambda x: float(x @ x), [1.0, 1.0], lambda x: 2 * x, steps=5)
    np.testing.assert_array_equal(r1.x, r2.x)
    assert opt.iterations == 0


def test_dead_parameters_release_their_state(rng):
    import gc
    opt = Adam(0.01)
    old = [Parameter(rng.standard_normal(3)) for _ in range(2)]
    opt.apply_gradients([(np.ones(3), p) for p in old])
    assert {"param0/m", "param1/m"} <= set(opt.state_dict())
    del old
    opt._last_params = None
    gc.collect()
    assert not any(k.startswith(("param0/", "param1/")) for k in opt.state_dict())
    new = [Parameter(rng.standard_normal(3))]                       # may reuse a dead id
    opt.apply_gradients([(np.ones(3), new[0])])
    sd = opt.state_dict()
    assert "param2/m" in sd and not any(k.startswith(("param0/", "param1/")) for k in sd)
    np.testing.assert_allclose(sd["param2/m"], 0.1)                 # fresh moments, not the dead ones'


def test_keras_apply(rng):
    p = Parameter(np.zeros(2))
    opt = SGD(0.5)
    opt.apply([np.ones(2)], [p])
    opt.apply([np.ones(2)])
    np.testing.assert_allclose(p.data, [-1.0, -1.0])


@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
def test_segments_update_like_one_flat_call(name, rng):
    """A large parameter is updated from its own gradient (no copy), the small ones around it
    together: the same numbers as one call on the concatenated vector (which clipvalue forces;
    a bound of 1e30 clips nothing)."""
    shapes = [(3,), (400, 400), (5, 2), (4,), (140000,)]
    grads = [[rng.standard_normal(s).astype(np.float32) for s in shapes] for _ in range(3)]
    results = []
    for kw in ({}, {"clipvalue": 1e30}):
        params = [Parameter(np.linspace(-1, 1, int(np.prod(s)), dtype=np.float32).reshape(s)) for s in shapes]
        opt = ELEMENTWISE[name](**kw)
        for gs in grads:
            opt.apply_gradients(zip(gs, params))
        results.append([p.data for p in params])
    assert [(a, b, j - i) for a, b, i, j, _ in opt._group.segments] == \
        [(0, 3, 1), (3, 160003, 1), (160003, 160017, 2), (160017, 300017, 1)]
    for segmented, flat in zip(*results):
        np.testing.assert_array_max_ulp(segmented, flat, maxulp=1)


@pytest.mark.parametrize("make", [lambda: SGD(momentum=0.9, convention="torch"), lambda: Adagrad(convention="torch"),
                                  lambda: RMSprop(convention="torch"), lambda: Adam(convention="torch"),
                                  lambda: AMSGrad(convention="torch"), lambda: Adamax(convention="torch"),
                                  lambda: Nadam(convention="torch"), lambda: optimizers.Nesterov(convention="torch")])
def test_convention_round_trips_through_the_config(make):
    opt = make()
    assert opt.get_config()["convention"] == "torch"
    again = optimizers.deserialize(json.loads(json.dumps(optimizers.serialize(opt))))
    assert again.convention == "torch" and again.get_config() == opt.get_config()
    assert type(opt)().convention == "keras"             # the default
