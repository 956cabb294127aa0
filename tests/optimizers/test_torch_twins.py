"""Each optimizer with a PyTorch twin follows torch's trajectory (float64, 100 steps, rtol 1e-6)
with convention='torch' and the hyperparameters mapped as its docstring says."""
import numpy as np
import pytest

from tidu.autograd import Parameter, Tensor
from tidu.optimizers import (AMSGrad, LBFGS, SGD, Adadelta, Adagrad, Adam, Adamax, Nadam, Nesterov, RMSprop,
                             Rprop)

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

SHAPES = ((3, 4), (5,), ())


def _twin(rng, ours, make_torch, steps=100, grad_scale=1.0):
    """Apply the same random gradients to ours (apply_gradients) and to torch; compare."""
    thetas = [rng.standard_normal(s) for s in SHAPES]
    grads = [[grad_scale * rng.standard_normal(s) for s in SHAPES] for _ in range(steps)]
    params = [Parameter(t.copy(), name=f"p{i}") for i, t in enumerate(thetas)]
    refs = [torch.tensor(t.copy(), requires_grad=True) for t in thetas]
    ref_opt = make_torch(refs)
    for k, gs in enumerate(grads):
        ours.apply_gradients(zip(gs, params))
        for r, g in zip(refs, gs):
            r.grad = torch.from_numpy(np.array(g))
        ref_opt.step()
        if k in (0, steps // 2):   # a mismatch shows where it starts
            for p, r in zip(params, refs):
                np.testing.assert_allclose(p.data, r.detach().numpy(), rtol=1e-6, atol=1e-12)
    for p, r in zip(params, refs):
        np.testing.assert_allclose(p.data, r.detach().numpy(), rtol=1e-6, atol=1e-12)
    assert ours.iterations == steps
    return params


@pytest.mark.parametrize("momentum, nesterov, dampening", [
    (0.0, False, 0.0), (0.9, False, 0.0), (0.9, True, 0.0), (0.8, False, 0.3), (0.5, False, 0.5)])
def test_sgd_matches_torch(rng, momentum, nesterov, dampening):
    _twin(rng, SGD(learning_rate=0.03, momentum=momentum, nesterov=nesterov, dampening=dampening,
              convention="torch"),
          lambda p: torch.optim.SGD(p, lr=0.03, momentum=momentum, nesterov=nesterov, dampening=dampening))


def test_nesterov_class_matches_torch(rng):
    _twin(rng, Nesterov(learning_rate=0.02, momentum=0.95, convention="torch"),
          lambda p: torch.optim.SGD(p, lr=0.02, momentum=0.95, nesterov=True))


@pytest.mark.parametrize("initial", [0.0, 0.1])
def test_adagrad_matches_torch(rng, initial):
    _twin(rng, Adagrad(learning_rate=0.1, initial_accumulator_value=initial, epsilon=1e-10, convention="torch"),
          lambda p: torch.optim.Adagrad(p, lr=0.1, initial_accumulator_value=initial, eps=1e-10))


def test_adadelta_matches_torch(rng):
    _twin(rng, Adadelta(learning_rate=1.0, rho=0.9, epsilon=1e-6),
          lambda p: torch.optim.Adadelta(p, lr=1.0, rho=0.9, eps=1e-6))


@pytest.mark.parametrize("centered", [False, True])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_rmsprop_matches_torch(rng, centered, momentum):
    _twin(rng, RMSprop(learning_rate=0.01, rho=0.95, momentum=momentum, epsilon=1e-8, centered=centered,
                       convention="torch"),
          lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.95, eps=1e-8, momentum=momentum, centered=centered))


@pytest.mark.parametrize("stable", [False, True])
def test_adam_matches_torch(rng, stable):
    _twin(rng, Adam(learning_rate=0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-8, stable=stable, convention="torch"),
          lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.8, 0.99), eps=1e-8))


def test_adam_weight_decay_matches_torch_adamw(rng):
    _twin(rng, Adam(learning_rate=0.01, epsilon=1e-8, weight_decay=0.1, convention="torch"),
          lambda p: torch.optim.AdamW(p, lr=0.01, eps=1e-8, weight_decay=0.1))


@pytest.mark.parametrize("make", [lambda: AMSGrad(learning_rate=0.01, beta_2=0.9, epsilon=1e-8, convention="torch"),
                                  lambda: Adam(learning_rate=0.01, beta_2=0.9, epsilon=1e-8, amsgrad=True,
                                                       convention="torch")])
def test_amsgrad_matches_torch(rng, make):
    # a gradient scale that drops after 10 steps makes v shrink, so the maximum matters
    theta = rng.standard_normal(6)
    grads = [rng.standard_normal(6) * (3.0 if k < 10 else 0.1) for k in range(100)]
    p, plain = Parameter(theta.copy()), Parameter(theta.copy())
    ref = torch.tensor(theta.copy(), requires_grad=True)
    ours, adam = make(), Adam(learning_rate=0.01, beta_2=0.9, epsilon=1e-8, convention="torch")
    ref_opt = torch.optim.Adam([ref], lr=0.01, betas=(0.9, 0.9), eps=1e-8, amsgrad=True)
    for g in grads:
        ours.apply_gradients([(g, p)])
        adam.apply_gradients([(g, plain)])
        ref.grad = torch.from_numpy(g.copy())
        ref_opt.step()
    np.testing.assert_allclose(p.data, ref.detach().numpy(), rtol=1e-6, atol=1e-12)
    assert np.abs(p.data - plain.data).max() > 1e-3       # not plain Adam


def test_nadam_matches_torch(rng):
    _twin(rng, Nadam(learning_rate=0.01, epsilon=1e-8, convention="torch"),
          lambda p: torch.optim.NAdam(p, lr=0.01, eps=1e-8))


def test_adamax_matches_torch(rng):
    _twin(rng, Adamax(learning_rate=0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-3, convention="torch"),
          lambda p: torch.optim.Adamax(p, lr=0.01, betas=(0.8, 0.99), eps=1e-3))


def test_sgd_momentum_matches_torch_under_a_schedule(rng):
    # torch applies the new η to its whole buffer: only the torch form follows it when η changes
    from tidu.optimizers.schedules import ExponentialDecay
    _twin(rng, SGD(ExponentialDecay(0.05, 10, 0.5, staircase=True), momentum=0.9, convention="torch"),
          lambda p: _scheduled(torch.optim.SGD(p, lr=0.05, momentum=0.9), 0.05, 10, 0.5))


def _scheduled(opt, lr0, every, rate):
    """torch's optimizer whose lr is lr0·rate^floor(k/every) at its k-th step (k from 0)."""
    step, k = opt.step, [0]

    def scheduled_step():
        for group in opt.param_groups:
            group["lr"] = lr0 * rate ** (k[0] // every)
        k[0] += 1
        return step()
    opt.step = scheduled_step
    return opt


def test_rprop_matches_torch(rng):
    # gradients of a fixed quadratic plus noise: signs both persist and flip
    _twin(rng, Rprop(learning_rate=0.05, etas=(0.4, 1.3), step_sizes=(1e-4, 0.5)),
          lambda p: torch.optim.Rprop(p, lr=0.05, etas=(0.4, 1.3), step_sizes=(1e-4, 0.5)))


def test_rprop_matches_torch_on_persistent_signs(rng):
    # a constant gradient sign makes steps grow to the cap: exercises clip at step_sizes[1]
    theta = rng.standard_normal(4)
    p, ref = Parameter(theta.copy()), torch.tensor(theta.copy(), requires_grad=True)
    ours, ref_opt = Rprop(learning_rate=0.01), torch.optim.Rprop([ref], lr=0.01)
    for k in range(100):
        g = np.sign(theta) * (1 + rng.random(4)) * (-1) ** (k // 30)
        ours.apply_gradients([(g, p)])
        ref.grad = torch.from_numpy(g.copy())
        ref_opt.step()
    np.testing.assert_allclose(p.data, ref.detach().numpy(), rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(ours.state_dict()["param0/delta"], ref_opt.state[ref]["step_size"].numpy(), rtol=1e-12)


def _model_problem(rng):
    """L2-regularized logistic regression on a linear-plus-bias model, in tidu and in torch:
        loss = mean(log(1 + exp(−y·(X·w + b)))) + 0.05·‖w‖²
    Strongly convex, so rounding differences shrink instead of growing along the trajectory."""
    X, y = rng.standard_normal((40, 5)), np.sign(rng.standard_normal((40, 1)))
    w, b = rng.standard_normal((5, 1)), rng.standard_normal((1,))
    ours = [Parameter(w.copy(), name="w"), Parameter(b.copy(), name="b")]
    refs = [torch.tensor(w.copy(), requires_grad=True), torch.tensor(b.copy(), requires_grad=True)]
    Xt, yt, Xo, yo = torch.tensor(X), torch.tensor(y), Tensor(X), Tensor(y)

    def closure():
        for p in ours:
            p.grad = None
        z = -yo * (Xo @ ours[0] + ours[1])
        loss = (1 + z.exp()).log().mean() + 0.05 * (ours[0] ** 2).sum()
        loss.backward()
        return loss

    def make_ref_closure(opt):
        def ref_closure():
            opt.zero_grad()
            z = -yt * (Xt @ refs[0] + refs[1])
            loss = torch.log(1 + torch.exp(z)).mean() + 0.05 * (refs[0] ** 2).sum()
            loss.backward()
            return loss
        return ref_closure
    return ours, refs, closure, make_ref_closure


@pytest.mark.parametrize("line_search", ["strong_wolfe", None])
def test_lbfgs_matches_torch_through_step_closure(rng, line_search):
    ours, refs, closure, make_ref_closure = _model_problem(rng)
    lr = 1.0 if line_search else 0.2
    opt = LBFGS(learning_rate=lr, max_iter=2, history_size=3, tolerance_change=0.0, line_search=line_search)
    ref_opt = torch.optim.LBFGS(refs, lr=lr, max_iter=2, history_size=3, tolerance_change=0.0,
                                line_search_fn=line_search)
    ref_closure = make_ref_closure(ref_opt)
    losses = []
    for k in range(100):
        loss = opt.step(closure, params=ours if k == 0 else None)
        ref_loss = float(ref_opt.step(ref_closure).detach())
        losses.append(loss)
        np.testing.assert_allclose(loss, ref_loss, rtol=1e-6)
    for p, r in zip(ours, refs):
        np.testing.assert_allclose(p.data, r.detach().numpy(), rtol=1e-6, atol=1e-10)
    st, ref_st = opt.state_dict(), ref_opt.state[refs[0]]
    assert int(st["global/n_iter"]) == ref_st["n_iter"]
    assert int(st["global/func_evals"]) == ref_st["func_evals"]
    assert losses[-1] < 0.9 * losses[0]


def test_strong_wolfe_matches_torchs_line_search_on_random_nonconvex_lines(rng):
    """Same step, loss and evaluation count as torch.optim.lbfgs._strong_wolfe on 60 random
    lines through f(x) = ½xᵀQx + Σ c_i·cos(w_i·x_i) (bracketing, zoom and its safeguards)."""
    from torch.optim.lbfgs import _strong_wolfe
    from tidu.optimizers import line_search
    evals_seen = set()
    for _ in range(60):
        n = 4
        Q = np.diag(rng.uniform(0.1, 2.0, n))
        c, w = rng.uniform(0.5, 3.0, n), rng.uniform(1.0, 6.0, n)

        def fg(x):
            return 0.5 * x @ Q @ x + c @ np.cos(w * x), Q @ x - c * w * np.sin(w * x)
        x = rng.standard_normal(n) * 2
        f, g = fg(x)
        d = -g + 0.3 * rng.standard_normal(n)
        if g @ d >= 0:
            d = -g
        t0, gtd = float(rng.uniform(0.05, 5.0)), float(g @ d)
        ours = line_search.strong_wolfe(lambda a: fg(x + a * d), t0, d, f, g, gtd, max_ls=20)

        def obj(xt, t, dt):
            fv, gv = fg(xt.numpy() + float(t) * dt.numpy())
            return float(fv), torch.from_numpy(gv)
        ref = _strong_wolfe(obj, torch.from_numpy(x), t0, torch.from_numpy(d), float(f), torch.from_numpy(g),
                            torch.tensor(gtd, dtype=torch.float64), max_ls=20)
        assert ours[3] == ref[3]
        np.testing.assert_allclose(ours[2], float(ref[2]), rtol=1e-9)
        np.testing.assert_allclose(ours[0], float(ref[0]), rtol=1e-9)
        np.testing.assert_allclose(ours[1], ref[1].numpy(), rtol=1e-9, atol=1e-12)
        evals_seen.add(ours[3])
    assert max(evals_seen) >= 4          # the zoom phase ran, several times
