"""DC-ASGD-a's two forms against hand-written NumPy references: the authors' (one MeanSquare
per worker, λ0/√(MeanSquare + ε), the default) and the paper's (one MeanSquare on the server,
λ0/(√MeanSquare + ε), form='paper'); their config and checkpoint round trips."""
import numpy as np
import pytest

from tidu.distributed import DCASGD, ParameterServer
from tidu.distributed import checkpoint as ckpt
from tidu.errors import ModelFileError

# Two workers, different staleness: (event, worker) in server order. Worker 0 pushes often
# (τ = 0, 0, 1, 1), worker 1 rarely (τ = 3, then 2), so their drifts w − w_bak(m) and the
# gradients each MeanSquare has seen differ.
EVENTS = [("pull", 0), ("pull", 1), ("push", 0), ("pull", 0), ("push", 0), ("pull", 0),
          ("push", 1), ("pull", 1), ("push", 0), ("pull", 0), ("push", 1), ("push", 0)]
ETA, LAMBDA0, DECAY, EPS = 0.1, 2.0, 0.95, 1e-7


def _gradients(n, rng):
    # worker 1's gradients are 10x worker 0's: a shared MeanSquare mixes the two scales
    return {m: [rng.standard_normal(n) * (1.0 if m == 0 else 10.0) for _ in range(4)] for m in (0, 1)}


def _reference(w0, grads, per_worker, eta=ETA, variant="adaptive", lam_c=None, cap=None):
    """The update rule written out in float64, one push at a time; also returns how many times
    η·λ·g⊙g exceeded the cap."""
    w = w0.astype(np.float64)
    bak = {m: w.copy() for m in (0, 1)}
    ms = {m: np.zeros_like(w) for m in (0, 1)} if per_worker else {"server": np.zeros_like(w)}
    used, capped = {0: 0, 1: 0}, 0
    for event, m in EVENTS:
        if event == "pull":
            bak[m] = w.copy()
            continue
        g = grads[m][used[m]].astype(np.float64)
        used[m] += 1
        if variant == "constant":
            lam = lam_c
        else:
            key = m if per_worker else "server"
            ms[key] = DECAY * ms[key] + (1 - DECAY) * g * g
            lam = LAMBDA0 / np.sqrt(ms[key] + EPS) if per_worker else LAMBDA0 / (np.sqrt(ms[key]) + EPS)
        k = lam * g * g
        if cap is not None:
            capped += int((eta * k > cap).sum())
            k = np.minimum(k, cap / eta)
        w = w - eta * (g + k * (w - bak[m]))
    return w, ms, capped


def _run(rule, w0, grads):
    w = w0.astype(np.float32)
    state = rule.init_state(w, 2)
    tmp = np.empty((2, w.size), np.float32)
    used = {0: 0, 1: 0}
    for event, m in EVENTS:
        if event == "pull":
            rule.pulled(state, m, w)
        else:
            rule.apply(state, w, grads[m][used[m]].astype(np.float32), m, tmp)
            used[m] += 1
    return w, state


@pytest.fixture
def setting():
    rng = np.random.default_rng(3)
    n = 50
    return rng.standard_normal(n), _gradients(n, rng)


def test_authors_form_matches_the_reference(setting):
    w0, grads = setting
    rule = DCASGD(ETA, lambda0=LAMBDA0, ms_decay=DECAY, epsilon=EPS, form="authors")
    assert rule.form == "authors" and rule.variant == "adaptive"
    w, state = _run(rule, w0, grads)
    ref, ms, _ = _reference(w0, grads, per_worker=True)
    np.testing.assert_allclose(w, ref, rtol=1e-5, atol=1e-6)
    assert set(state) == {"backup/0", "backup/1", "mean_square/0", "mean_square/1"}
    for m in (0, 1):                                      # each worker's MeanSquare is its own
        np.testing.assert_allclose(state[f"mean_square/{m}"], ms[m], rtol=1e-5)
    assert np.median(state["mean_square/1"]) > 10 * np.median(state["mean_square/0"])
    paper, _, _ = _reference(w0, grads, per_worker=False)
    assert np.abs(ref - paper).max() > 1e-3               # the two forms really differ here


def test_paper_form_keeps_the_old_update(setting):
    w0, grads = setting
    rule = DCASGD(ETA, lambda0=LAMBDA0, ms_decay=DECAY, epsilon=EPS, form="paper")
    w, state = _run(rule, w0, grads)
    ref, ms, _ = _reference(w0, grads, per_worker=False)
    np.testing.assert_allclose(w, ref, rtol=1e-5, atol=1e-6)
    assert set(state) == {"backup/0", "backup/1", "mean_square"}   # the old checkpoint names
    np.testing.assert_allclose(state["mean_square"], ms["server"], rtol=1e-5)


def test_old_numbers_of_one_push():
    """One push, computed by hand: g = 2, w − w_bak = 0.5, MeanSquare = 0.05 · 4 = 0.2.
    paper:   Δ = 0.1 · (2 + 2/(√0.2 + 1e-7) · 4 · 0.5)
    authors: Δ = 0.1 · (2 + 2/√(0.2 + 1e-7) · 4 · 0.5)"""
    for form, lam in (("paper", 2 / (np.sqrt(0.2) + 1e-7)), ("authors", 2 / np.sqrt(0.2 + 1e-7))):
        rule = DCASGD(0.1, form=form)
        w = np.array([1.0], np.float32)
        state = rule.init_state(w, 1)
        rule.pulled(state, 0, np.array([0.5], np.float32))
        d = rule.delta(state, w, np.array([2.0], np.float32), 0, np.empty((2, 1), np.float32))
        np.testing.assert_allclose(d, [0.1 * (2 + lam * 4 * 0.5)], rtol=1e-6)


def test_epsilon_under_the_root_bounds_lambda():
    """Where a weight's gradients have been tiny, the paper's λ0/(√MS + ε) explodes and the
    authors' λ0/√(MS + ε) stays below λ0/√ε."""
    g, drift = np.array([1e-6], np.float32), 1.0
    out = {}
    for form in ("paper", "authors"):
        rule = DCASGD(1.0, form=form)
        w = np.array([drift], np.float32)
        state = rule.init_state(np.zeros(1, np.float32), 1)
        out[form] = float(rule.delta(state, w, g, 0, np.empty((2, 1), np.float32))[0]) - 1e-6
    assert out["authors"] <= 2.0 / np.sqrt(1e-7) * 1e-12 * drift * 1.01
    assert out["paper"] > 100 * out["authors"]


def test_constant_variant_ignores_form(setting):
    w0, grads = setting
    a, sa = _run(DCASGD(ETA, variant="constant", lam=0.5), w0, grads)
    b, sb = _run(DCASGD(ETA, variant="constant", lam=0.5, form="paper"), w0, grads)
    assert np.array_equal(a, b) and set(sa) == set(sb) == {"backup/0", "backup/1"}


def test_config_round_trip_and_bad_form():
    for rule in (DCASGD(0.2), DCASGD(0.2, form="paper", lambda0=0.5, ms_decay=0.9), DCASGD(0.2, cap=0.5)):
        config = rule.get_config()
        again = DCASGD(**config)
        assert again.get_config() == config and repr(again) == repr(rule)
    assert DCASGD(0.2).get_config()["form"] == "authors"     # the authors' code is the default
    assert "form='paper'" in repr(DCASGD(0.2, form="paper"))
    assert DCASGD(0.2, cap=1).get_config()["cap"] == 1.0
    with pytest.raises(ValueError, match="form"):
        DCASGD(0.1, form="mxnet")


def test_checkpoint_keeps_per_worker_mean_squares_and_refuses_the_other_form(tmp_path, make_mlp, blobs,
                                                                            flat_weights):
    x, y = blobs
    ps = ParameterServer(DCASGD(0.1, form="authors"), num_workers=2, schedule="random", seed=0,
                         checkpoint_dir=tmp_path, checkpoint_every=4)
    make_mlp().fit(x, y, batch_size=10, epochs=1, verbose=0, distributed=ps)
    arrays, meta = ckpt.load(ckpt.latest(tmp_path, "ckpt"))
    assert meta["config"]["rule_config"]["form"] == "authors"
    ms0, ms1 = arrays["shard0/mean_square/0"], arrays["shard0/mean_square/1"]
    assert ms0.any() and ms1.any() and not np.array_equal(ms0, ms1)

    other = ParameterServer(DCASGD(0.1, form="paper"), num_workers=2, schedule="random", seed=0,
                            checkpoint_dir=tmp_path)
    other.restore()
    with pytest.raises(ModelFileError, match="form"):
        make_mlp().fit(x, y, batch_size=10, epochs=1, verbose=0, distributed=other)


@pytest.mark.parametrize("variant", ["adaptive", "constant"])
@pytest.mark.parametrize("form", ["authors", "paper"])
def test_cap_bounds_the_correction_per_weight(setting, variant, form):
    """cap: η·λ·g⊙g is at most cap per weight, written out in float64; weights under the cap
    get exactly the uncapped update, and a cap that nothing reaches changes nothing."""
    w0, grads = setting
    eta, cap, lam_c = 0.1, 0.3, 5.0
    w, _, capped = _reference(w0, grads, form == "authors", eta, variant, lam_c, cap)
    rule = DCASGD(eta, variant=variant, lam=lam_c, lambda0=LAMBDA0, ms_decay=DECAY, epsilon=EPS,
                  form=form, cap=cap)
    got, _ = _run(rule, w0, grads)
    np.testing.assert_allclose(got, w, rtol=1e-5, atol=1e-6)
    assert capped > 20                                    # the cap was reached, many times
    uncapped, _ = _run(DCASGD(eta, variant=variant, lam=lam_c, lambda0=LAMBDA0, form=form), w0, grads)
    assert np.abs(uncapped - got).max() > 1e-2            # and it mattered
    huge, _ = _run(DCASGD(eta, variant=variant, lam=lam_c, lambda0=LAMBDA0, form=form, cap=1e9), w0, grads)
    np.testing.assert_array_equal(huge, uncapped)


@pytest.mark.parametrize("cap", [0, -1.0, float("nan"), "1", True])
def test_bad_cap_is_refused(cap):
    with pytest.raises((ValueError, TypeError), match="cap"):
        DCASGD(0.1, cap=cap)
