"""Newton, BFGS, LBFGS, CoordinateDescent and the line searches, against closed forms."""
import numpy as np
import pytest

from tidu.autograd import Parameter, Tensor
from tidu.optimizers import BFGS, LBFGS, CoordinateDescent, Newton
from tidu.lab.functions import FUNCTIONS
from tidu.optimizers import line_search as ls


def _spd(rng, n, cond=20.0):
    Qm, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return Qm @ np.diag(np.geomspace(1.0, cond, n)) @ Qm.T


def rosenbrock(x):
    return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2


def rosenbrock_grad(x):
    return np.array([-2 * (1 - x[0]) - 400 * x[0] * (x[1] - x[0] ** 2), 200 * (x[1] - x[0] ** 2)])


def test_newton_solves_a_positive_definite_quadratic_in_one_step(rng):
    Q, b = _spd(rng, 6), rng.standard_normal(6)
    x_star = np.linalg.solve(Q, b)
    r = Newton(damping=0.0).minimize(lambda x: 0.5 * x @ Q @ x - b @ x, rng.standard_normal(6), lambda x: Q @ x - b, steps=1)
    np.testing.assert_allclose(r.x, x_star, rtol=1e-8, atol=1e-10)
    assert r.nfev == 1 + 2 * 6 + 1          # the gradient, 2 per Hessian column, the trial point


def test_newton_on_a_float32_model_differences_in_float64(rng):
    """Least squares 0.5·‖A·W − B‖² over a (3, 2) float32 Parameter: one step lands on lstsq."""
    A, B = rng.standard_normal((10, 3)).astype(np.float32), rng.standard_normal((10, 2)).astype(np.float32)
    W = Parameter(rng.standard_normal((3, 2)).astype(np.float32))
    At, Bt = Tensor(A), Tensor(B)

    def closure():
        W.grad = None
        loss = 0.5 * ((At @ W - Bt) ** 2).sum()
        loss.backward()
        return loss
    opt = Newton(damping=0.0)
    opt.step(closure, params=[W])
    assert W.data.dtype == np.float32
    expected = np.linalg.lstsq(A.astype(np.float64), B.astype(np.float64), rcond=None)[0]
    np.testing.assert_allclose(W.data, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(opt.hessian, np.kron(A.T.astype(np.float64) @ A, np.eye(2)), rtol=1e-6, atol=1e-6)


def test_newton_pseudo_inverse_ignores_flat_directions():
    # f = (x0 − 1)²: the Hessian diag(2, 0) is singular; the SVD pseudo-inverse leaves x1 alone
    r = Newton(damping=0.0).minimize(lambda x: (x[0] - 1) ** 2, [5.0, 3.0], lambda x: np.array([2 * (x[0] - 1), 0.0]), steps=1)
    np.testing.assert_allclose(r.x, [1.0, 3.0], atol=1e-8)


def test_explicit_newton_refuses_big_models_before_calling_the_closure():
    p = Parameter(np.zeros(3000))
    calls = []
    with pytest.raises(ValueError, match=r"Newton: 3000 parameters is too many for method='explicit' "
                                         r"\(max_explicit=500\).*method='cg'.*LBFGS"):
        Newton(method="explicit").step(lambda: calls.append(1) or 0.0, params=[p])
    assert calls == []


def _wavy(rng, n=6, c=2.0):
    """f = ½·xᵀQx + c·Σ cos(x_i): not convex, so some pairs have yᵀs <= 0 without a line search."""
    Q = _spd(rng, n, cond=10.0)
    return (lambda x: 0.5 * x @ Q @ x + c * np.sum(np.cos(x))), (lambda x: Q @ x - c * np.sin(x))


@pytest.mark.parametrize("kwargs", [{}, {"line_search": None, "learning_rate": 1.0}])
def test_bfgs_implicit_form_takes_the_dense_forms_steps(kwargs):
    # above max_dense, D is γ₀·I plus every pair through the two-loop recursion: the same D_k
    rng = np.random.default_rng(0)                 # a draw with skipped pairs in both settings
    f, grad = _wavy(rng)
    x0 = 3 * rng.standard_normal(6)
    dense = BFGS(**kwargs).minimize(f, x0, grad, steps=25)
    implicit = BFGS(max_dense=0, **kwargs).minimize(f, x0, grad, steps=25)
    np.testing.assert_allclose(implicit.path, dense.path, rtol=0, atol=1e-10)
    st_d, st_i = dense.optimizer.state_dict(), implicit.optimizer.state_dict()
    assert "global/D" in st_d and "global/S" not in st_d
    assert "global/D" not in st_i and st_i["global/S"].shape == st_i["global/Y"].shape == (st_i["global/rho"].size, 6)
    assert st_i["global/rho"].size < 24           # some pairs were skipped (yᵀs <= 1e-10)
    # D_k itself: the two-loop recursion applied to the identity's columns is the dense matrix
    D = np.stack([BFGS._two_loop(e, float(st_i["global/gamma"]), st_i["global/S"], st_i["global/Y"],
                                 st_i["global/rho"]) for e in np.eye(6)], axis=1)
    np.testing.assert_allclose(D, st_d["global/D"], rtol=1e-8, atol=1e-10)


def test_bfgs_both_forms_restart_from_minus_g_when_d_is_not_downhill():
    # a loaded D = −I (γ₀ = −1 with no pairs) gives gᵀd > 0: both forms reset and step along −g
    f, grad = lambda x: float(x @ x), lambda x: 2 * x
    x0 = np.array([1.0, -2.0, 0.5])
    after = []
    for opt, state in ((BFGS(line_search=None), {"global/D": -np.eye(3)}),
                       (BFGS(line_search=None, max_dense=0),
                        {"global/gamma": np.array(-1.0), "global/S": np.empty((0, 3)),
                         "global/Y": np.empty((0, 3)), "global/rho": np.empty(0)})):
        x = x0.copy()
        opt.load_state_dict({"iterations": np.array(1), "global/x_prev": x0.copy(), "global/g_prev": grad(x0),
                             **state})                # s = 0: this step's pair is skipped
        opt.step(lambda: (f(x), [grad(x)]), params=[x])
        after.append(x.copy())
        assert not any(k in opt.state_dict() for k in ("global/D", "global/gamma", "global/S"))
    expected = x0 - min(1.0, 1.0 / np.abs(grad(x0)).sum()) * grad(x0)   # η·min(1, 1/‖g‖₁) along −g
    np.testing.assert_allclose(after[0], expected, rtol=1e-15)
    np.testing.assert_allclose(after[1], expected, rtol=1e-15)


def test_bfgs_implicit_form_resumes_from_its_state_dict(rng):
    f, grad = _wavy(rng, n=5)
    x = 3 * rng.standard_normal(5)
    opt = BFGS(max_dense=0)
    for _ in range(6):
        opt.step(lambda: (f(x), [grad(x)]), params=[x])
    saved, x_saved = opt.state_dict(), x.copy()
    assert saved["global/S"].shape[0] >= 4
    path = []
    for _ in range(6):
        opt.step(lambda: (f(x), [grad(x)]), params=[x])
        path.append(x.copy())
    resumed, x = BFGS(max_dense=0), x_saved
    resumed.load_state_dict(saved)
    for expected in path:
        resumed.step(lambda: (f(x), [grad(x)]), params=[x])
        np.testing.assert_array_equal(x, expected)
    with pytest.raises(ValueError, match=r"inconsistent history.*S \(5, 5\), Y \(4, 5\)"):
        BFGS(max_dense=0).load_state_dict({**saved, "global/S": np.zeros((5, 5)), "global/Y": np.zeros((4, 5))})


def test_bfgs_on_a_model_too_big_for_a_dense_matrix_keeps_pairs_instead(monkeypatch):
    # 6,000 parameters > max_dense: no 6000×6000 matrix; the pairs reach the separable minimum
    monkeypatch.setattr(np, "eye", lambda *a, **k: pytest.fail("formed a dense D"))
    f, grad = (lambda x: float(np.sum(x ** 2 + x ** 4 / 4))), (lambda x: 2 * x + x ** 3)
    r = BFGS().minimize(f, np.full(6000, 2.0), grad, steps=20)
    assert r.fun < 1e-12
    st = r.optimizer.state_dict()
    assert "global/D" not in st and st["global/S"].shape[1] == 6000


def test_bfgs_refuses_a_history_over_its_budget_before_calling_the_closure():
    # each kept pair costs 2n numbers; the step whose pair would not fit says so and names LBFGS
    x = np.full(100, 2.0)
    opt = BFGS(max_dense=10, max_history_numbers=2 * 100 * 2)
    calls = []

    def closure():
        calls.append(1)
        return float(np.sum(x ** 2 + x ** 4 / 4)), [2 * x + x ** 3]
    for _ in range(2):
        opt.step(closure, params=[x])
    assert opt.state_dict()["global/S"].shape == (1, 100)
    opt.step(closure, params=[x])                       # pair 2 fits, pair 3 would not
    before, n_calls, x_before = opt.state_dict(), len(calls), x.copy()
    with pytest.raises(ValueError, match=r"BFGS: 100 parameters is too many for full BFGS: above max_dense=10 .*"
                                         r"pair 3 would exceed max_history_numbers=400; use LBFGS\(history_size=m\)"):
        opt.step(closure, params=[x])
    assert len(calls) == n_calls and np.array_equal(x, x_before)
    assert all(np.array_equal(v, opt.state_dict()[k]) for k, v in before.items())


@pytest.mark.parametrize("method", ["explicit", "cg"])
@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_damped_newton_never_raises_the_loss_on_the_lab_functions(name, method):
    # undamped, Newton went from 170 to 181.6 on Himmelblau from (0, 0) (a jump to a saddle
    # or a maximum); damped, every accepted step lowers f and a rise is rejected
    fn = FUNCTIONS[name]
    for start in (fn.start, (0.5, -0.5), (-1.0, 2.0)):
        r = Newton(method=method).minimize(fn, np.array(start, float), fn.gradient, steps=30)
        assert np.all(np.diff(r.losses) <= 0), (name, method, start, r.losses)
        assert r.fun <= fn(np.array(start, float))
    st = r.optimizer.state_dict()
    assert st["iterations"] == 30 and "global/damping" in st


def test_newton_cg_never_forms_a_matrix(monkeypatch):
    # 20,000 parameters, separable quartic Σ (x_i² + x_i⁴/4): auto picks CG; an n×n array would be 3.2 GB
    monkeypatch.setattr(Newton, "hessian_at", lambda *a: pytest.fail("formed a Hessian"))
    r = Newton().minimize(lambda x: float(np.sum(x**2 + x**4 / 4)), np.full(20_000, 2.0),
                          lambda x: 2 * x + x**3, steps=15)
    assert r.fun < 1e-10 and r.optimizer.hessian is None
    assert Newton().get_config()["method"] == "auto"


def test_newton_hessian_vector_product_matches_the_hessian(rng):
    Q, b = _spd(rng, 5), rng.standard_normal(5)

    class P:                                    # a problem: (loss, gradient) at x
        def __call__(self, x):
            return 0.5 * x @ Q @ x - b @ x, Q @ x - b

        def set(self, x):
            pass
    x, v = rng.standard_normal(5), rng.standard_normal(5)
    for hvp in ("forward", "central"):
        hv = Newton(hvp=hvp).hessian_vector(P(), x, Q @ x - b, v)
        np.testing.assert_allclose(hv, Q @ v, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("make, steps", [(lambda: BFGS(), 60), (lambda: LBFGS(tolerance_change=0.0), 5),
                                         (lambda: LBFGS(history_size=3, max_iter=5, tolerance_change=0.0), 20)])
def test_quasi_newton_reaches_rosenbrocks_minimum(make, steps):
    r = make().minimize(rosenbrock, [-1.2, 1.0], rosenbrock_grad, steps=steps)
    np.testing.assert_allclose(r.x, [1.0, 1.0], atol=1e-6)


def test_bfgs_converges_superlinearly_on_a_quadratic(rng):
    # BFGS builds D ≈ Q⁻¹ along the way, so once it is close the error falls fast
    Q = _spd(rng, 4, cond=5.0)
    opt = BFGS(tolerance_grad=0.0)
    x, errors = rng.standard_normal(4), []
    for _ in range(14):
        opt.step(lambda: (0.5 * x @ Q @ x, [Q @ x]), params=[x])
        errors.append(np.abs(x).max())
    assert errors[-1] < 1e-9
    assert "D" in opt.state_dict() or "global/D" in opt.state_dict()


def test_bfgs_on_model_parameters(rng):
    A, y = rng.standard_normal((12, 3)), rng.standard_normal((12, 1))
    w, b = Parameter(np.zeros((3, 1))), Parameter(np.zeros(1))
    At, yt = Tensor(A), Tensor(y)

    def closure():
        w.grad = b.grad = None
        loss = ((At @ w + b - yt) ** 2).mean()
        loss.backward()
        return loss
    opt = BFGS()
    for _ in range(15):
        opt.step(closure, params=[w, b])
    coef = np.linalg.lstsq(np.hstack([A, np.ones((12, 1))]), y, rcond=None)[0]
    np.testing.assert_allclose(np.concatenate([w.data.ravel(), b.data]), coef.ravel(), atol=1e-6)


@pytest.mark.parametrize("order", ["cyclic", "random"])
@pytest.mark.parametrize("search", ["brent", "golden"])
def test_coordinate_descent_solves_a_convex_quadratic(rng, order, search):
    Q, b = _spd(rng, 4, cond=10.0), rng.standard_normal(4)
    r = CoordinateDescent(order=order, line_search=search, seed=7).minimize(
        lambda x: 0.5 * x @ Q @ x - b @ x, np.zeros(4), lambda x: Q @ x - b, steps=200)
    np.testing.assert_allclose(r.x, np.linalg.solve(Q, b), atol=1e-6)


def test_coordinate_descent_one_sweep_is_exact_on_a_separable_function():
    # f = Σ c_i (x_i − a_i)²: each coordinate minimization is exact, so one sweep solves it
    a, c = np.array([1.0, -2.0, 3.0]), np.array([1.0, 10.0, 0.1])
    r = CoordinateDescent().minimize(lambda x: float(c @ (x - a) ** 2), np.zeros(3), lambda x: 2 * c * (x - a), steps=1)
    np.testing.assert_allclose(r.x, a, atol=1e-7)


# --- the 1-D searches ----------------------------------------------------------------------------
def test_cubic_interpolate_recovers_a_cubics_minimum():
    # φ(t) = t³ − 3t: minimum at t = 1; from (0, φ=0, φ'=−3) and (2, φ=2, φ'=9)
    assert ls.cubic_interpolate(0.0, 0.0, -3.0, 2.0, 2.0, 9.0) == pytest.approx(1.0)
    # no real minimum: the midpoint of the bounds
    # d1 = 2 + 2 − 3·(0 − 1.5)/(0 − 1) = −0.5, d1² − g1·g2 = 0.25 − 4 < 0
    assert ls.cubic_interpolate(0.0, 0.0, 2.0, 1.0, 1.5, 2.0) == 0.5


def test_strong_wolfe_step_satisfies_both_conditions(rng):
    f = lambda x: rosenbrock(x)  # noqa: E731
    x, d = np.array([-1.2, 1.0]), -rosenbrock_grad(np.array([-1.2, 1.0]))
    g = rosenbrock_grad(x)
    gtd = g @ d
    f_new, g_new, t, evals = ls.strong_wolfe(lambda a: (f(x + a * d), rosenbrock_grad(x + a * d)), 1.0, d,
                                             f(x), g, gtd)
    assert f_new <= f(x) + 1e-4 * t * gtd
    assert abs(g_new @ d) <= 0.9 * abs(gtd)
    assert f_new == f(x + t * d) and evals >= 2


def test_brent_and_golden_find_a_parabolas_minimum():
    phi = lambda a: (a - 0.7) ** 2 + 1.0  # noqa: E731
    a, b, c, fa, fb, fc, _ = ls.bracket(phi, 0.0, 0.1)
    assert min(a, c) < 0.7 < max(a, c) and fb <= min(fa, fc)
    x, fx, n_brent = ls.brent(phi, a, b, c, fb)
    assert x == pytest.approx(0.7, abs=1e-7) and fx == pytest.approx(1.0)
    y, fy, n_golden = ls.golden(phi, a, b, c, fb)
    assert y == pytest.approx(0.7, abs=1e-7)
    assert n_brent < n_golden                        # parabolic steps pay off on a parabola


def test_bracket_refuses_an_unbounded_line():
    with pytest.raises(ValueError, match="keeps decreasing"):
        ls.bracket(lambda a: -a, 0.0, 1.0)
