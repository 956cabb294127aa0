"""Methods that re-evaluate the loss within a step: Newton, BFGS, LBFGS, CoordinateDescent.

They work on one flat float64 vector x of all the parameters and are driven by
`step(closure, params=None)` (see Optimizer.step for the closure convention); `minimize(f, x0)`
runs them on a plain function. Their state (history, inverse Hessian) is kept in
`state_dict()` under 'global/...'.
"""
import numpy as np

from tidu import backend
from tidu.optimizers import line_search as _ls
from tidu.optimizers.base import (Optimizer, check_choice, check_int, check_nonnegative,
                                  check_positive)


class _ClosureMethod(Optimizer):
    requires_closure = True

    def _check_closure_size(self, problem):
        for key in ("prev_flat_grad", "g_prev"):
            prev = self._globals.get(key)
            if prev is not None and prev.size != problem.n:
                raise ValueError(f"{self.name}.step: the parameters now hold {problem.n} numbers, but this "
                                 f"optimizer's history is for {prev.size}; call reset() to start over")


class Newton(_ClosureMethod):
    """Damped Newton: the step minimizes a local quadratic model, with Levenberg–Marquardt damping.

    At θ with loss L and gradient g, the step d solves (B + λI)·d = −g, where B is the curvature
    and λ >= 0 the damping (kept in the state as 'global/damping', starting at `damping`):
      method 'explicit' (n <= max_explicit, or asked for): B = |H|, from the finite-difference
        Hessian and its SVD (the notes: 可用SVD求伪逆以保证数值稳定性),
            H_ij ≈ (g_i(θ + h_j e_j) − g_i(θ − h_j e_j)) / 2h_j,  h_j = fd_step·max(1, |θ_j|),
            H ← (H + Hᵀ)/2 = U·diag(s)·Vᵀ,   d = −V·diag(1/(s_i + λ))·Vᵀ·g
        dropping directions with s_i <= rcond·max(s) (flat ones). For symmetric H, V·diag(s)·Vᵀ
        is |H| (eigenvalues made positive), so a saddle is escaped rather than jumped to.
        Cost: 1 + 2n gradient evaluations and an n×n SVD.
      method 'cg' (n > max_explicit): truncated Newton (Newton-CG, Hessian-free). No matrix is
        formed; conjugate gradients on (H + λI)·d = −g from d = 0, with Hessian-vector products
        by finite differences of the gradient in float64,
            H·v ≈ (g(θ + εv) − g(θ)) / ε,   ε = √ε_mach·(1 + ‖θ‖)/‖v‖        (hvp='forward')
            H·v ≈ (g(θ + εv) − g(θ − εv)) / 2ε,   ε = ∛ε_mach·(1 + ‖θ‖)/‖v‖  (hvp='central')
        stopping when ‖r‖ <= min(1/2, √‖g‖)·‖g‖ (the forcing term, superlinear convergence), after
        max_cg iterations, or at a direction p with pᵀ(H + λI)p <= 0 (negative curvature: the
        iterate so far; on the first iteration d = −α·g, α = ‖g‖²/|gᵀ(H + λI)g|, the model's
        minimum along −g with the curvature's sign flipped, as |H| above).
        Cost: 1 + (1 or 2)·(CG iterations) + 1 gradient evaluations.
    Then θ' = θ + η·d (η = learning_rate) is tried, and with the model's predicted decrease
    pred = −(gᵀd + ½·dᵀ(B + λI)·d) and ρ = (L(θ) − L(θ')) / pred:
        ρ > 3/4: λ ← λ/3         ρ < 1/4: λ ← max(2λ, 1e-6)          (else λ unchanged)
    and a step that does not lower the loss is rejected (θ stays). A positive-definite quadratic
    is minimized in one step with damping=0 and η = 1. The Hessian is differenced in float64 (the
    parameters are float64 copies meanwhile), so float32 models work; with a mini-batch closure
    each step() uses its own batch, λ carries over. 'newton_cg' is another name for this class.
    References: Martens, "Deep learning via Hessian-free optimization", ICML 2010 (CG on the
    damped model, λ from the reduction ratio ρ); Nocedal & Wright, "Numerical Optimization",
    2nd ed., 2006, §3.4 (modified Newton), §4.1 (ρ) and ch. 7 (Algorithm 7.1, Newton-CG).
    """

    def __init__(self, learning_rate=1.0, method="auto", max_explicit=500, damping=1.0, max_cg=10,
                 hvp="forward", fd_step=1e-5, rcond=1e-10, **kwargs):
        owner = type(self).__name__
        self.method = check_choice(owner, "method", method, ("auto", "explicit", "cg"))
        self.max_explicit = check_int(owner, "max_explicit", max_explicit, minimum=0)
        self.damping = check_nonnegative(owner, "damping", damping)
        self.max_cg = check_int(owner, "max_cg", max_cg)
        self.hvp = check_choice(owner, "hvp", hvp, ("forward", "central"))
        self.fd_step = check_positive(owner, "fd_step", fd_step)
        self.rcond = check_nonnegative(owner, "rcond", rcond)
        self.hessian = None
        super().__init__(learning_rate, **kwargs)

    def _explicit(self, n):
        return self.method == "explicit" or (self.method == "auto" and n <= self.max_explicit)

    def _check_closure_size(self, problem):
        if self.method == "explicit" and problem.n > self.max_explicit:
            raise ValueError(f"{self.name}: {problem.n} parameters is too many for method='explicit' "
                             f"(max_explicit={self.max_explicit}): it forms an {problem.n}×{problem.n} "
                             f"Hessian; use method='cg' (Newton-CG, no matrix) or LBFGS for large models")

    def hessian_at(self, problem, x):
        """The symmetrized finite-difference Hessian at x (2n evaluations; parameters left at x)."""
        n = x.size
        H = backend.xp.empty((n, n))
        for j in range(n):
            h = self.fd_step * max(1.0, abs(x[j]))
            xp, xm = x.copy(), x.copy()
            xp[j] += h
            xm[j] -= h
            _, gp = problem(xp)
            _, gm = problem(xm)
            H[:, j] = (gp - gm) / (xp[j] - xm[j])
        problem.set(x)
        return 0.5 * (H + H.T)

    def hessian_vector(self, problem, x, g, v):
        """H·v at x by finite differences of the gradient (g = ∇L(x)); parameters left at x."""
        nv = float(np.linalg.norm(v))
        if nv == 0:
            return backend.xp.zeros_like(v)
        scale = 1.0 + float(np.linalg.norm(x))
        if self.hvp == "forward":
            eps = np.sqrt(np.finfo(np.float64).eps) * scale / nv
            hv = (problem(x + eps * v)[1] - g) / eps             # (g(θ + εv) − g(θ)) / ε
        else:
            eps = np.cbrt(np.finfo(np.float64).eps) * scale / nv
            hv = (problem(x + eps * v)[1] - problem(x - eps * v)[1]) / (2 * eps)
        problem.set(x)
        return hv

    def _explicit_step(self, problem, x, g, lam):
        H = self.hessian = self.hessian_at(problem, x)
        _, s, Vt = np.linalg.svd(H)                         # H = U·diag(s)·Vᵀ, |H| = V·diag(s)·Vᵀ
        keep = s > self.rcond * (s[0] if s.size else 0.0)
        coef = np.where(keep, 1.0 / np.where(keep, s + lam, 1.0), 0.0)
        c = Vt @ g
        d = -(Vt.T @ (coef * c))                            # d = −V·diag(1/(s + λ))·Vᵀ·g
        return d, 0.5 * float(np.sum(coef * c * c))        # pred = ½·Σ (v_iᵀg)²/(s_i + λ)

    def _cg_step(self, problem, x, g, lam):
        """Truncated CG on (H + λI)·d = −g; returns d and the damped model's predicted decrease."""
        d, Ad = backend.xp.zeros_like(g), backend.xp.zeros_like(g)
        r = -g                                              # r = −g − (H + λI)·d
        p, rr = r.copy(), _ls.dot(r, r)
        gnorm = np.sqrt(rr)
        tol = min(0.5, np.sqrt(gnorm)) * gnorm              # forcing term η_k·‖g‖
        for k in range(self.max_cg):
            Ap = self.hessian_vector(problem, x, g, p) + lam * p
            pAp = _ls.dot(p, Ap)
            if pAp <= 0:                                    # negative curvature along p
                if k == 0:                                  # along −g, with the curvature's size
                    alpha = rr / -pAp if pAp < 0 else 1.0   # α = ‖g‖²/|gᵀ(H + λI)g|
                    return -alpha * g, 0.5 * alpha * rr     # pred = ½·α·‖g‖²
                break
            alpha = rr / pAp
            d += alpha * p
            Ad += alpha * Ap
            r -= alpha * Ap
            rr_new = _ls.dot(r, r)
            if np.sqrt(rr_new) <= tol:
                break
            p = r + (rr_new / rr) * p
            rr = rr_new
        return d, -(_ls.dot(g, d) + 0.5 * _ls.dot(d, Ad))    # pred = −(gᵀd + ½·dᵀ(H + λI)·d)

    def _closure_step(self, problem, lr):
        st = self._globals
        lam = float(st["damping"]) if "damping" in st else self.damping
        with problem.float64():
            x = problem.get()
            loss, g = problem(x)
            if not np.any(g):
                return loss
            if self._explicit(x.size):
                d, pred = self._explicit_step(problem, x, g, lam)
            else:
                d, pred = self._cg_step(problem, x, g, lam)
            new_loss, _ = problem(x + lr * d)               # θ' = θ + η·d
            rho = (loss - new_loss) / pred if pred > 0 else -np.inf
            if rho > 0.75:
                lam = lam / 3                               # the model is good: trust it more
            elif not rho >= 0.25:
                lam = max(2 * lam, 1e-6)                    # poor (or a rise): damp more
            if not new_loss < loss:                         # rejected: θ stays
                problem.set(x)
        st["damping"] = np.array(lam)
        return loss


class BFGS(_ClosureMethod):
    """BFGS: quasi-Newton with an inverse-Hessian estimate D built from gradient changes.

    At step k, with s = θ_k − θ_{k−1}, y = g_k − g_{k−1}, ρ = 1/(yᵀs) (update skipped unless
    yᵀs > 1e-10):
        D = (I − ρ·s·yᵀ)·D·(I − ρ·y·sᵀ) + ρ·s·sᵀ            (D before the first update: D₀ = γ₀·I,
                                                              γ₀ = yᵀs/yᵀy of that first pair)
        d = −D·g                                             (−g on the first step)
        θ = θ + α·d,   α from a strong-Wolfe line search started at η (η·min(1, 1/‖g‖₁) on
                       the first step), or α = η with line_search=None
    with η = learning_rate. A direction that is not a descent one (gᵀd >= 0) resets D (the next
    kept pair starts it again from its own γ₀·I). Steps stop moving once max|g| <= tolerance_grad;
    the line search stops shrinking its bracket below tolerance_change (in units of max|d|). One
    step() is one iteration: one evaluation at the start plus the line search's.

    Two forms of the same D:
      n <= max_dense: D is a dense n×n matrix, updated by the formula above (n² numbers).
      n > max_dense: D is kept implicitly, as γ₀ and every kept pair (s_i, y_i) since the start
        (or the last reset), and D·g comes from the two-loop recursion over all of them:
            q = g;  for i = newest..oldest:  α_i = ρ_i·s_iᵀq,  q = q − α_i·y_i
            r = γ₀·q
            for i = oldest..newest:  β_i = ρ_i·y_iᵀr,  r = r + (α_i − β_i)·s_i
            D·g = r
        This is the same D_k as the dense update (L-BFGS with unlimited memory and a fixed
        D₀ = γ₀·I; Nocedal & Wright §7.2), at 2n numbers per kept pair and O(k·n) work per step.
        The history may hold at most max_history_numbers numbers (default 5·10⁷, 400 MB in
        float64): a step whose pair would not fit raises a ValueError before anything changes;
        such a model is too large for full BFGS, and LBFGS(history_size=m) keeps the last m pairs.
    Reference: Nocedal & Wright, "Numerical Optimization", 2nd ed., Algorithm 6.1, eqs. 6.17, 6.20;
    §7.2 (the two-loop recursion, Algorithm 7.4).
    """

    _HISTORY = ("gamma", "S", "Y", "rho")

    def __init__(self, learning_rate=1.0, line_search="strong_wolfe", tolerance_grad=1e-7,
                 tolerance_change=1e-9, max_ls=25, max_dense=5000, max_history_numbers=50_000_000, **kwargs):
        owner = type(self).__name__
        self.line_search = check_choice(owner, "line_search", line_search, ("strong_wolfe", None))
        self.tolerance_grad = check_nonnegative(owner, "tolerance_grad", tolerance_grad)
        self.tolerance_change = check_nonnegative(owner, "tolerance_change", tolerance_change)
        self.max_ls = check_int(owner, "max_ls", max_ls)
        self.max_dense = check_int(owner, "max_dense", max_dense, minimum=0)
        self.max_history_numbers = check_int(owner, "max_history_numbers", max_history_numbers)
        super().__init__(learning_rate, **kwargs)

    def _dense(self, n):
        return n <= self.max_dense

    def _check_closure_size(self, problem):
        super()._check_closure_size(problem)
        n, st = problem.n, self._globals
        if self._dense(n):
            return
        pairs = int(st["rho"].size) if "rho" in st else 0
        if 2 * n * (pairs + 1) > self.max_history_numbers:
            raise ValueError(
                f"{self.name}: {n} parameters is too many for full BFGS: above max_dense={self.max_dense} "
                f"it keeps every (s, y) pair since the start (2·{n} numbers each), and pair {pairs + 1} "
                f"would exceed max_history_numbers={self.max_history_numbers}; use LBFGS(history_size=m), "
                f"which keeps only the last m pairs")

    def _validate_globals(self, globals_):
        S, Y, rho = (globals_.get(k) for k in ("S", "Y", "rho"))
        if S is None and Y is None and rho is None:
            return
        if (S is None or Y is None or rho is None or "gamma" not in globals_ or S.ndim != 2
                or S.shape != Y.shape or rho.shape != (S.shape[0],)):
            raise ValueError(f"{self.name}.load_state_dict: inconsistent history: gamma "
                             f"{'present' if 'gamma' in globals_ else 'missing'}, S {getattr(S, 'shape', None)}, "
                             f"Y {getattr(Y, 'shape', None)}, rho {getattr(rho, 'shape', None)}")

    @staticmethod
    def _two_loop(g, gamma, S, Y, rho):
        """D·g for D = γ₀·I updated by the pairs (S[i], Y[i]) in order (the recursion above)."""
        q, alpha = g.copy(), np.empty(rho.size)
        for i in range(rho.size - 1, -1, -1):
            alpha[i] = rho[i] * _ls.dot(S[i], q)             # α_i = ρ_i·s_iᵀq
            q -= alpha[i] * Y[i]                            # q = q − α_i·y_i
        r = gamma * q                                       # r = γ₀·q
        for i in range(rho.size):
            beta = rho[i] * _ls.dot(Y[i], r)                 # β_i = ρ_i·y_iᵀr
            r += (alpha[i] - beta) * S[i]                   # r = r + (α_i − β_i)·s_i
        return r

    def _closure_step(self, problem, lr):
        st = self._globals
        x = problem.get()
        loss, g = problem(x)
        if np.max(np.abs(g), initial=0.0) <= self.tolerance_grad:
            return loss
        dense = self._dense(x.size)
        if dense:                                           # D itself, or None before a pair
            est = st.get("D")
        else:                                               # (γ₀, S, Y, ρ), or None
            est = (float(st["gamma"]), st["S"], st["Y"], st["rho"]) if "gamma" in st else None
        if "x_prev" in st:
            s, y = x - st["x_prev"], g - st["g_prev"]
            ys = _ls.dot(y, s)
            if ys > 1e-10:
                est = self._with_pair(est, s, y, ys, dense)
        if est is None:
            d = -g
        else:                                               # d = −D·g
            d = -(est @ g) if dense else -self._two_loop(g, *est)
        gtd = _ls.dot(g, d)
        if not gtd < 0:                                     # not downhill: restart from −g
            est, d = None, -g
            gtd = _ls.dot(g, d)
        if gtd == 0:                                        # g = 0: nowhere to go
            return loss
        self._move(problem, lr, x, loss, g, d, gtd, started=est is not None)
        for k in ("D", *self._HISTORY):
            st.pop(k, None)
        if est is not None and dense:
            st["D"] = est
        elif est is not None:
            gamma, S, Y, rho = est
            st.update(gamma=np.array(gamma), S=S, Y=Y, rho=rho)
        return loss

    @staticmethod
    def _with_pair(est, s, y, ys, dense):
        """The estimate after the pair (s, y), yᵀs = ys > 0: the dense update of D, or the pair
        appended to the history (D₀ = γ₀·I, γ₀ = yᵀs/yᵀy from the first kept pair, both forms)."""
        xp, rho = backend.xp, 1.0 / ys
        if dense:
            D = (ys / _ls.dot(y, y)) * xp.eye(s.size) if est is None else est
            Dy = D @ y                                      # D = (I − ρsyᵀ)D(I − ρysᵀ) + ρssᵀ
            return D + rho * ((1 + rho * _ls.dot(y, Dy)) * xp.outer(s, s) - xp.outer(Dy, s) - xp.outer(s, Dy))
        if est is None:
            est = (ys / _ls.dot(y, y), xp.empty((0, s.size)), xp.empty((0, s.size)), xp.empty(0))
        gamma, S, Y, r = est
        return gamma, xp.vstack([S, s]), xp.vstack([Y, y]), xp.append(r, rho)

    def _move(self, problem, lr, x, loss, g, d, gtd, started):
        """θ = θ + α·d (α from the line search, or η); remembers θ and g for the next pair."""
        t = lr if started else lr * min(1.0, 1.0 / float(np.abs(g).sum()))
        if self.line_search == "strong_wolfe":
            _, _, t, _ = _ls.strong_wolfe(lambda a: problem(x + a * d), t, d, loss, g, gtd,
                                          tolerance_change=self.tolerance_change, max_ls=self.max_ls)
        problem.set(x + t * d)                              # θ = θ + α·d
        self._globals["x_prev"], self._globals["g_prev"] = x, g


class LBFGS(_ClosureMethod):
    """L-BFGS: BFGS that keeps only the last `history_size` pairs (s, y) instead of the matrix.

    Direction by the two-loop recursion (Nocedal & Wright, Algorithm 7.4), ρ_i = 1/(y_iᵀs_i):
        q = −g;  for i = newest..oldest:  α_i = ρ_i·s_iᵀq,  q = q − α_i·y_i
        r = γ·q,  γ = sᵀy / yᵀy of the newest pair (1 before any)
        for i = oldest..newest:  β_i = ρ_i·y_iᵀr,  r = r + (α_i − β_i)·s_i
        d = r
        θ = θ + t·d,  t from a strong-Wolfe line search started at η (η·min(1, 1/‖g‖₁) on the
                      very first iteration), or t = η with line_search=None
    with η = learning_rate; a pair enters the history only when yᵀs > 1e-10. One step() runs up
    to max_iter iterations and max_eval evaluations, stopping early when max|g| <=
    tolerance_grad, when gᵀd > −tolerance_change, or when the step or the loss change falls
    below tolerance_change.

    This is torch.optim.LBFGS's algorithm, step for step (its strong-Wolfe search and stopping
    rules; history, direction and step length carry over between step() calls):
    LBFGS(learning_rate=η, max_iter=m, max_eval=e, tolerance_grad=tg, tolerance_change=tc,
    history_size=h, line_search=ls) follows torch.optim.LBFGS(lr=η, max_iter=m, max_eval=e,
    tolerance_grad=tg, tolerance_change=tc, history_size=h, line_search_fn=ls). The default
    line_search here is 'strong_wolfe' (torch's is None: fixed steps of η).
    Reference: Liu & Nocedal, "On the limited memory BFGS method for large scale optimization",
    Math. Programming 1989; Nocedal & Wright, 2nd ed., §7.2.
    """

    _STATE = ("d", "t", "old_dirs", "old_stps", "ro", "H_diag", "prev_flat_grad", "prev_loss")

    def __init__(self, learning_rate=1.0, max_iter=20, max_eval=None, tolerance_grad=1e-7, tolerance_change=1e-9,
                 history_size=100, line_search="strong_wolfe", **kwargs):
        owner = type(self).__name__
        self.max_iter = check_int(owner, "max_iter", max_iter)
        self.max_eval = max_iter * 5 // 4 if max_eval is None else check_int(owner, "max_eval", max_eval)
        self.tolerance_grad = check_nonnegative(owner, "tolerance_grad", tolerance_grad)
        self.tolerance_change = check_nonnegative(owner, "tolerance_change", tolerance_change)
        self.history_size = check_int(owner, "history_size", history_size)
        self.line_search = check_choice(owner, "line_search", line_search, ("strong_wolfe", None))
        super().__init__(learning_rate, **kwargs)

    def get_config(self):
        config = super().get_config()
        config["max_eval"] = self.max_eval
        return config

    def _validate_globals(self, globals_):
        dirs, stps, ro = globals_.get("old_dirs"), globals_.get("old_stps"), globals_.get("ro")
        if dirs is not None and (stps is None or ro is None or dirs.shape != stps.shape or
                                 dirs.ndim != 2 or ro.shape != (dirs.shape[0],)):
            raise ValueError(f"{self.name}.load_state_dict: inconsistent history: old_dirs "
                             f"{getattr(dirs, 'shape', None)}, old_stps {getattr(stps, 'shape', None)}, "
                             f"ro {getattr(ro, 'shape', None)}")

    def _closure_step(self, problem, lr):
        st = self._globals
        tol_grad, tol_change = self.tolerance_grad, self.tolerance_change
        n_total = int(st.get("n_iter", 0))
        func_evals = int(st.get("func_evals", 0))

        orig_loss, flat_grad = problem()
        loss, current_evals = orig_loss, 1
        func_evals += 1
        st["func_evals"] = np.array(func_evals)
        if np.max(np.abs(flat_grad)) <= tol_grad:
            return orig_loss

        d = st.get("d")
        t = float(st["t"]) if "t" in st else None
        old_dirs = list(st["old_dirs"]) if "old_dirs" in st else []
        old_stps = list(st["old_stps"]) if "old_stps" in st else []
        ro = [float(r) for r in st["ro"]] if "ro" in st else []
        H_diag = float(st["H_diag"]) if "H_diag" in st else 1.0
        prev_flat_grad = st.get("prev_flat_grad")
        prev_loss = float(st["prev_loss"]) if "prev_loss" in st else None
        x = problem.get()

        n_iter = 0
        while n_iter < self.max_iter:
            n_iter += 1
            n_total += 1
            # --- direction ---
            if n_total == 1:
                d = -flat_grad
                old_dirs, old_stps, ro, H_diag = [], [], [], 1.0
            else:
                y = flat_grad - prev_flat_grad
                s = d * t
                ys = _ls.dot(y, s)
                if ys > 1e-10:
                    if len(old_dirs) == self.history_size:
                        old_dirs.pop(0), old_stps.pop(0), ro.pop(0)
                    old_dirs.append(y), old_stps.append(s), ro.append(1.0 / ys)
                    H_diag = ys / _ls.dot(y, y)
                al = [0.0] * len(old_dirs)
                q = -flat_grad
                for i in range(len(old_dirs) - 1, -1, -1):
                    al[i] = _ls.dot(old_stps[i], q) * ro[i]          # α_i = ρ_i·s_iᵀq
                    q = q - al[i] * old_dirs[i]                      # q = q − α_i·y_i
                d = r = q * H_diag                                   # r = γ·q
                for i in range(len(old_dirs)):
                    be_i = _ls.dot(old_dirs[i], r) * ro[i]            # β_i = ρ_i·y_iᵀr
                    r += (al[i] - be_i) * old_stps[i]                # r = r + (α_i − β_i)·s_i
            prev_flat_grad = flat_grad.copy()
            prev_loss = loss
            # --- step length ---
            t = min(1.0, 1.0 / float(np.abs(flat_grad).sum())) * lr if n_total == 1 else lr
            gtd = _ls.dot(flat_grad, d)
            if gtd > -tol_change:
                break
            ls_evals, opt_cond = 0, False
            if self.line_search == "strong_wolfe":
                x0, d0 = x, d
                loss, flat_grad, t, ls_evals = _ls.strong_wolfe(
                    lambda a: problem(x0 + a * d0), t, d, loss, flat_grad, gtd,
                    max_ls=self.max_eval - current_evals)
                x = x + t * d
                problem.set(x)
                opt_cond = np.max(np.abs(flat_grad)) <= tol_grad
            else:
                x = x + t * d
                problem.set(x)
                if n_iter != self.max_iter:
                    loss, flat_grad = problem()
                    opt_cond = np.max(np.abs(flat_grad)) <= tol_grad
                    ls_evals = 1
            current_evals += ls_evals
            func_evals += ls_evals
            # --- stopping rules ---
            if n_iter == self.max_iter or current_evals >= self.max_eval or opt_cond:
                break
            if np.max(np.abs(d * t)) <= tol_change or abs(loss - prev_loss) < tol_change:
                break

        n = flat_grad.size
        st.update(n_iter=np.array(n_total), func_evals=np.array(func_evals), t=np.array(t), d=d,
                  old_dirs=backend.xp.array(old_dirs).reshape(-1, n), old_stps=backend.xp.array(old_stps).reshape(-1, n),
                  ro=np.array(ro, dtype=np.float64), H_diag=np.array(H_diag),
                  prev_flat_grad=prev_flat_grad, prev_loss=np.array(prev_loss))
        return orig_loss


class CoordinateDescent(_ClosureMethod):
    """Coordinate descent: minimize the loss along one coordinate (or one block) at a time.

    blocks='coordinates' (the default 'auto' for plain NumPy arrays: `minimize` on the lab's
    functions): one step() sweeps every coordinate i once (order 'cyclic': 0, 1, ..., n−1; 'random': a fresh
    permutation each sweep), each time solving the one-dimensional problem
        α* = argmin_α L(θ + α·e_i)          bracketed by a golden-ratio walk from
                                            α = ±initial_step·max(1, |θ_i|), then located by
                                            Brent's method ('brent') or golden-section search
                                            ('golden') to relative precision tol
        θ_i = θ_i + η·α*
    with η = learning_rate (1: exact minimization; < 1 under-relaxes). It uses only loss values
    (the closure's gradient is ignored), so it suits losses whose coordinates are cheap to
    probe; on a strictly convex quadratic it converges (Gauss-Seidel), slowly when
    coordinates are strongly coupled. 'random' draws from seed (None: a seed drawn once and
    kept in the state, so a resumed run draws the same orders).

    blocks='parameters' (the default 'auto' for Parameters, i.e. a model, as fit drives it): one
    step() is one step of block coordinate descent. Block b = (number of steps so far) mod
    (number of parameter tensors) (order 'random': a permutation per cycle), with g_b the
    closure's gradient for that tensor:
        α* = argmin_{α >= 0} L(θ_b − α·g_b)     bracketed from α = initial_step·max(1, max|θ_b|)/max|g_b|
                                                (divided by 4 until the loss falls there), located
                                                as above, the other tensors held fixed
        θ_b = θ_b − η·α*·g_b
    (a line search along the block's negative gradient; never a rise of the loss).
    Reference: Wright, "Coordinate descent algorithms", Math. Programming 2015; Brent,
    "Algorithms for Minimization without Derivatives", 1973, ch. 5.
    """

    def __init__(self, learning_rate=1.0, order="cyclic", line_search="brent", tol=1.5e-8, initial_step=0.1,
                 seed=None, blocks="auto", **kwargs):
        owner = type(self).__name__
        self.blocks = check_choice(owner, "blocks", blocks, ("auto", "coordinates", "parameters"))
        self.order = check_choice(owner, "order", order, ("cyclic", "random"))
        self.line_search = check_choice(owner, "line_search", line_search, ("brent", "golden"))
        self.tol = check_positive(owner, "tol", tol)
        self.initial_step = check_positive(owner, "initial_step", initial_step)
        self.seed = None if seed is None else check_int(owner, "seed", seed, 0)
        super().__init__(learning_rate, **kwargs)

    def _order(self, n):
        if self.order == "cyclic":
            return range(n)
        if "seed" not in self._globals:
            seed = self.seed if self.seed is not None else int(backend.rng().integers(2**63))
            self._globals["seed"] = np.array(seed, dtype=np.int64)
        rng = np.random.default_rng([int(self._globals["seed"]), self.iterations])
        return rng.permutation(n)

    def _block_step(self, problem, lr, x, loss, g):
        k = len(problem.params)
        cycle, pos = divmod(self.iterations, k)
        if self.order == "cyclic":
            b = pos
        else:
            if "seed" not in self._globals:
                seed = self.seed if self.seed is not None else int(backend.rng().integers(2**63))
                self._globals["seed"] = np.array(seed, dtype=np.int64)
            b = int(np.random.default_rng([int(self._globals["seed"]), cycle]).permutation(k)[pos])
        start, stop, _ = problem.flat.ranges()[b]
        gb = g[start:stop]
        scale = float(np.max(np.abs(gb), initial=0.0))
        if scale == 0:
            return loss
        search = _ls.brent if self.line_search == "brent" else _ls.golden
        xb = x[start:stop].copy()

        def phi(a):
            x[start:stop] = xb - a * gb                     # θ_b − α·g_b
            return problem(x)[0]

        h = self.initial_step * max(1.0, float(np.max(np.abs(xb)))) / scale
        for _ in range(30):                                 # −g_b is downhill: shrink h until it shows
            if phi(h) < loss:
                break
            h /= 4
        a, mid, c, fa, fb, fc, _ = _ls.bracket(phi, 0.0, h, fa=loss)
        alpha, f_alpha, _ = search(phi, a, mid, c, fb, tol=self.tol, abs_tol=self.tol * h)
        if not (alpha > 0 and f_alpha < loss):              # never worse than staying
            alpha = 0.0
        x[start:stop] = xb - lr * alpha * gb                # θ_b = θ_b − η·α*·g_b
        problem.set(x)
        return loss

    def _closure_step(self, problem, lr):
        x = problem.get()
        loss, g = problem(x)
        if self.blocks == "parameters" or (self.blocks == "auto" and problem.tensors):
            return self._block_step(problem, lr, x, loss, g)
        fx = loss
        search = _ls.brent if self.line_search == "brent" else _ls.golden
        for i in self._order(x.size):
            xi = x[i]

            def phi(a, i=i, xi=xi):
                x[i] = xi + a
                return problem(x)[0]

            h = self.initial_step * max(1.0, abs(xi))
            a, b, c, fa, fb, fc, _ = _ls.bracket(phi, 0.0, h, fa=fx)
            alpha, f_alpha, _ = search(phi, a, b, c, fb, tol=self.tol, abs_tol=self.tol * max(1.0, abs(xi)))
            if f_alpha > fx:                                # never worse than staying
                alpha, f_alpha = 0.0, fx
            x[i] = xi + lr * alpha                          # θ_i = θ_i + η·α*
            fx = f_alpha if lr == 1.0 else problem(x)[0]
        problem.set(x)
        return loss

