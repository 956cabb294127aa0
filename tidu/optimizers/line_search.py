"""One-dimensional searches used by the closure methods (BFGS, LBFGS, CoordinateDescent).

strong_wolfe   a step t along a descent direction d that satisfies the strong Wolfe conditions
                   f(x + t·d) <= f(x) + c1·t·gᵀd        (sufficient decrease)
                   |∇f(x + t·d)ᵀd| <= c2·|gᵀd|          (curvature)
               bracketing then zooming with safeguarded cubic interpolation: Nocedal & Wright,
               "Numerical Optimization", 2nd ed., Algorithms 3.5/3.6, in the variant of minFunc
               that torch.optim.LBFGS(line_search_fn='strong_wolfe') runs (same steps, same order).
bracket        three points a, b, c with f(b) <= f(a), f(c): a downhill walk growing by the golden
               ratio (Press et al., "Numerical Recipes", §10.1).
brent          the minimum inside a bracket: parabolic interpolation through the three best
               points, golden-section steps when the parabola is not trustworthy (Brent, 1973).
golden         the minimum inside a bracket by golden-section search alone.
"""
import math

import numpy as np

GOLDEN = (1 + math.sqrt(5)) / 2      # φ = 1.618...: bracket growth factor
CGOLD = (3 - math.sqrt(5)) / 2       # 1 − 1/φ = 0.381...: golden-section fraction


def dot(a, b):
    """aᵀb of two 1-D float64 vectors, as a float, summed by numpy itself (einsum), not BLAS.

    The closure methods take many dot products of parameter-sized vectors (the two-loop
    recursion: 2 per pair per iteration). OpenBLAS splits a ddot over its threads above 10,000
    elements; on a busy 2-core machine the threads' hand-offs made L-BFGS's fit on a 25,450-
    parameter MLP 2-7× slower than with one thread (measured), for no gain at these sizes.
    """
    return float(np.einsum("i,i->", a, b))


def cubic_interpolate(x1, f1, g1, x2, f2, g2, bounds=None):
    """Minimizer of the cubic through (x1, f1, f'(x1) = g1) and (x2, f2, g2), clamped to `bounds`
    (default: the interval between x1 and x2); the midpoint when the cubic has no minimum.

        d1 = g1 + g2 − 3 (f1 − f2) / (x1 − x2),   d2 = √(d1² − g1·g2)
        x* = x2 − (x2 − x1) (g2 + d2 − d1) / (g2 − g1 + 2 d2)     (N&W eq. 3.59)
    """
    lo, hi = bounds if bounds is not None else ((x1, x2) if x1 <= x2 else (x2, x1))
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1 * d1 - g1 * g2
    if d2_square < 0:
        return (lo + hi) / 2.0
    d2 = math.sqrt(d2_square)
    denominator = (g2 - g1 + 2 * d2) if x1 <= x2 else (g1 - g2 + 2 * d2)
    if denominator == 0 or not math.isfinite(denominator):
        return (lo + hi) / 2.0   # a degenerate cubic (e.g. a quadratic that falls forever)
    if x1 <= x2:
        x = x2 - (x2 - x1) * ((g2 + d2 - d1) / denominator)
    else:
        x = x1 - (x1 - x2) * ((g1 + d2 - d1) / denominator)
    return min(max(x, lo), hi) if math.isfinite(x) else (lo + hi) / 2.0


def strong_wolfe(phi, t, d, f, g, gtd, c1=1e-4, c2=0.9, tolerance_change=1e-9, max_ls=25):
    """Search t along d from the current point (loss f, gradient g, slope gtd = gᵀd < 0).

    phi(t) -> (loss, gradient) at x + t·d. Returns (loss, gradient, t, evaluations) at the step
    found: the last acceptable one when the evaluation budget `max_ls` runs out.
    """
    d_norm = float(abs(d).max())
    f_new, g_new = phi(t)
    evals, ls_iter = 1, 0
    gtd_new = dot(g_new, d)
    t_prev, f_prev, g_prev, gtd_prev = 0.0, f, g, gtd
    done = False

    # 1. bracketing: grow t until an interval [t_prev, t] must contain an acceptable step
    while ls_iter < max_ls:
        if f_new > f + c1 * t * gtd or (ls_iter > 1 and f_new >= f_prev):
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new], [gtd_prev, gtd_new]
            break
        if abs(gtd_new) <= -c2 * gtd:                      # both conditions hold: accept t
            bracket, bracket_f, bracket_g = [t], [f_new], [g_new]
            done = True
            break
        if gtd_new >= 0:                                    # slope turned: minimum inside
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new], [gtd_prev, gtd_new]
            break
        # still going down: extrapolate, between 1.01·t and 10·t
        min_step, max_step = t + 0.01 * (t - t_prev), t * 10
        t_prev, t = t, cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new,
                                         bounds=(min_step, max_step))
        f_prev, g_prev, gtd_prev = f_new, g_new, gtd_new
        f_new, g_new = phi(t)
        evals += 1
        gtd_new = dot(g_new, d)
        ls_iter += 1
    if ls_iter == max_ls:                                   # budget spent while extrapolating
        bracket, bracket_f, bracket_g = [0.0, t], [f, f_new], [g, g_new]

    # 2. zoom: shrink the bracket [low, high] around an acceptable step
    insufficient_progress = False
    if len(bracket) == 1:                                   # accepted while bracketing
        return bracket_f[0], bracket_g[0], bracket[0], evals
    low, high = (0, 1) if bracket_f[0] <= bracket_f[1] else (1, 0)
    while not done and ls_iter < max_ls:
        if abs(bracket[1] - bracket[0]) * d_norm < tolerance_change:
            break
        t = cubic_interpolate(bracket[0], bracket_f[0], bracket_gtd[0],
                              bracket[1], bracket_f[1], bracket_gtd[1])
        # keep t at least 10% of the bracket away from its ends (else progress stalls)
        lo_b, hi_b = min(bracket), max(bracket)
        eps = 0.1 * (hi_b - lo_b)
        if min(hi_b - t, t - lo_b) < eps:
            if insufficient_progress or t >= hi_b or t <= lo_b:
                t = hi_b - eps if abs(t - hi_b) < abs(t - lo_b) else lo_b + eps
                insufficient_progress = False
            else:
                insufficient_progress = True
        else:
            insufficient_progress = False
        f_new, g_new = phi(t)
        evals += 1
        gtd_new = dot(g_new, d)
        ls_iter += 1
        if f_new > f + c1 * t * gtd or f_new >= bracket_f[low]:
            # no sufficient decrease: t becomes the high end
            bracket[high], bracket_f[high], bracket_g[high], bracket_gtd[high] = t, f_new, g_new, gtd_new
            low, high = (0, 1) if bracket_f[0] <= bracket_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (bracket[high] - bracket[low]) >= 0:
                # the minimum lies between low and t: old low becomes high
                bracket[high], bracket_f[high] = bracket[low], bracket_f[low]
                bracket_g[high], bracket_gtd[high] = bracket_g[low], bracket_gtd[low]
            bracket[low], bracket_f[low], bracket_g[low], bracket_gtd[low] = t, f_new, g_new, gtd_new
    return bracket_f[low], bracket_g[low], bracket[low], evals


def bracket(phi, a, b, fa=None, max_iter=100):
    """Points (a, b, c) and their values with f(b) <= f(a) and f(b) <= f(c), walking downhill
    from a through b (or from b through a) with steps growing by φ. Returns (a, b, c, fa, fb, fc, evals)."""
    evals = 0
    if fa is None:
        fa, evals = phi(a), evals + 1
    fb = phi(b)
    evals += 1
    if fb > fa:
        a, b, fa, fb = b, a, fb, fa
    c = b + GOLDEN * (b - a)
    fc = phi(c)
    evals += 1
    while fc < fb:
        if evals >= max_iter:
            raise ValueError(f"bracket: the function keeps decreasing along the line after {evals} "
                             f"evaluations (reached {c!r} with value {fc!r}); it may be unbounded below")
        a, b, fa, fb = b, c, fb, fc
        c = b + GOLDEN * (b - a)
        fc = phi(c)
        evals += 1
    return a, b, c, fa, fb, fc, evals


def brent(phi, a, b, c, fb, tol=1.5e-8, abs_tol=1e-12, max_iter=100):
    """Minimize phi inside the bracket (a, b, c), f(b) <= f(a), f(c), to tol·|x| + abs_tol.

    Keeps x (best point), w (second best), v (previous w); tries the minimum of the parabola
    through them, accepts it only if it falls inside the bracket and moves less than half the
    step before last; otherwise takes a golden-section step into the larger half.
    Returns (x, phi(x), evaluations).
    """
    lo, hi = (a, c) if a < c else (c, a)
    x = w = v = b
    fx = fw = fv = fb
    d = e = 0.0          # last step, step before last
    evals = 0
    for _ in range(max_iter):
        mid = 0.5 * (lo + hi)
        tol1 = tol * abs(x) + abs_tol
        tol2 = 2.0 * tol1
        if abs(x - mid) <= tol2 - 0.5 * (hi - lo):
            break
        golden_step = True
        if abs(e) > tol1:
            r = (x - w) * (fx - fv)
            q = (x - v) * (fx - fw)
            p = (x - v) * q - (x - w) * r
            q = 2.0 * (q - r)
            if q > 0:
                p = -p
            q = abs(q)
            e_before, e = e, d
            if abs(p) < abs(0.5 * q * e_before) and q * (lo - x) < p < q * (hi - x):
                d = p / q                                   # parabolic step
                u = x + d
                if u - lo < tol2 or hi - u < tol2:
                    d = math.copysign(tol1, mid - x)
                golden_step = False
        if golden_step:
            e = (lo - x) if x >= mid else (hi - x)
            d = CGOLD * e
        u = x + (d if abs(d) >= tol1 else math.copysign(tol1, d))
        fu = phi(u)
        evals += 1
        if fu <= fx:
            if u >= x:
                lo = x
            else:
                hi = x
            v, fv, w, fw, x, fx = w, fw, x, fx, u, fu
        else:
            if u < x:
                lo = u
            else:
                hi = u
            if fu <= fw or w == x:
                v, fv, w, fw = w, fw, u, fu
            elif fu <= fv or v == x or v == w:
                v, fv = u, fu
    return x, fx, evals


def golden(phi, a, b, c, fb, tol=1.5e-8, abs_tol=1e-12, max_iter=200):
    """Minimize phi inside the bracket (a, b, c) by golden-section search alone: each step
    puts a new point at 0.382 of the larger half and keeps the sub-bracket around the best.
    Returns (x, phi(x), evaluations)."""
    lo, hi = (a, c) if a < c else (c, a)
    x, fx, evals = b, fb, 0
    for _ in range(max_iter):
        if hi - lo <= 2 * (tol * abs(x) + abs_tol):
            break
        u = x + CGOLD * ((hi - x) if hi - x > x - lo else (lo - x))
        fu = phi(u)
        evals += 1
        if fu <= fx:
            lo, hi = (x, hi) if u > x else (lo, x)
            x, fx = u, fu
        else:
            lo, hi = (lo, u) if u > x else (u, hi)
    return x, fx, evals
