"""The LSTM's numba timestep kernels (tidu.kernels.recurrent, extra `fast`) against the
NumPy loop, the reference: the float32 exp and tanh to about an ulp over the whole float range,
and the op's output and every gradient with the fast path on and off, float32 and float64."""
import math

import numpy as np
import pytest

import tidu.functional as F
from tidu import Tensor, gradcheck
from tidu import kernels
from tidu.kernels import recurrent as fr

numba = pytest.importorskip("numba")


_k = fr.kernels()
expf, tanhf, exp, tanh = _k.expf, _k.tanhf, _k.exp, _k.tanh     # globals, for numba to call


@numba.njit
def _expf_each(x, out):
    for i in range(x.size):
        out[i] = expf(x[i])


@numba.njit
def _tanhf_each(x, out):
    for i in range(x.size):
        out[i] = tanhf(x[i])


def _ulps(got, x, exact):
    """|got − exact(x)| in units of the float32 spacing at exact(x), computed in float64."""
    ref = exact(x.astype(np.float64))
    return np.abs(got.astype(np.float64) - ref) / np.spacing(ref.astype(np.float32)).astype(np.float64)


def test_expf_is_within_an_ulp_and_saturates_without_nan(rng):
    x = np.concatenate([rng.uniform(-104, 89, 1_000_000), rng.uniform(-1, 1, 100_000),
                        [88, 88.72, 88.7228, 88.73, 89, 100, 1e4, 3e38, np.inf, -87.3, -88, -100,
                         -103.9, -103.97, -104, -1e4, -3e38, -np.inf, 0, -0.0, 1e-30]]).astype(np.float32)
    got = np.empty_like(x)
    _expf_each(x, got)
    with np.errstate(over="ignore"):
        want = np.exp(x.astype(np.float64)).astype(np.float32)    # e^x correctly rounded
    assert not np.isnan(got).any()
    normal = (want >= np.finfo(np.float32).tiny) & np.isfinite(want)
    worst = _ulps(got[normal], x[normal], np.exp).max()
    assert worst <= 1.5, f"max error {worst:.3f} ulp"          # 1.01 ulp over all float32 inputs
    np.testing.assert_array_equal(got[~np.isfinite(want)], want[~np.isfinite(want)])      # inf
    tiny = ~normal & np.isfinite(want)                           # subnormal results and 0
    np.testing.assert_allclose(got[tiny], want[tiny], rtol=0, atol=2.0**-149)
    _expf_each(np.array([np.nan], np.float32), got[:1])
    assert np.isnan(got[0])


def test_tanhf_is_within_an_ulp_and_saturates_without_nan(rng):
    x = np.concatenate([rng.uniform(-10, 10, 1_000_000), rng.uniform(-0.7, 0.7, 100_000),
                        [0.625, -0.625, 1e-30, 0, -0.0, 9, 10, 50, 1e4, np.inf, -50, -np.inf]]).astype(np.float32)
    got = np.empty_like(x)
    _tanhf_each(x, got)
    assert not np.isnan(got).any()
    worst = _ulps(got, x, np.tanh).max()
    assert worst <= 2, f"max error {worst:.3f} ulp"            # 1.33 ulp near the switch at 0.625
    assert list(got[-6:]) == [1, 1, 1, 1, -1, -1]                 # tanh 10 rounds to 1


def test_float64_uses_libm():
    out = np.empty(1)

    @numba.njit
    def both(x, out):
        out[0] = exp(x) - math.exp(x) + tanh(x) - math.tanh(x)

    both(0.3, out)
    assert out[0] == 0


def _run(fast, dtype, seed, n=16, t=28, d=28, u=32, states=True, **options):
    """Output and gradients of lstm with the fast path on or off, from the same inputs."""
    kernels.set_enabled(fast)
    assert (fr.lstm_steps(dtype) is not None) == fast
    r = np.random.default_rng(seed)
    shapes = [(n, t, d), (d, 4 * u), (u, 4 * u), (4 * u,)] + [(n, u)] * (2 if states else 0)
    scales = [1, 0.3, 0.3, 0.3, 0.5, 0.5]
    ours = [Tensor((s * r.standard_normal(shape)).astype(dtype), requires_grad=True)
            for s, shape in zip(scales, shapes)]
    y = F.lstm(*ours, **options)
    ys = y if isinstance(y, tuple) else (y,)
    y = F.concatenate([v.reshape(n, -1) for v in ys], axis=1)
    y.backward(r.standard_normal(y.shape).astype(dtype))
    return [y.data] + [a.grad for a in ours]


@pytest.mark.parametrize("options", [{}, {"return_sequences": True},
                                     {"return_sequences": True, "return_state": True}])
@pytest.mark.parametrize("states", [False, True])
def test_float32_fast_path_matches_numpy_loop(options, states):
    slow = _run(False, np.float32, 5, states=states, **options)
    fast = _run(True, np.float32, 5, states=states, **options)
    for got, want in zip(fast, slow):      # float32 rounding: ~2e-7 of the largest entry apart,
        assert got.dtype == np.float32      # as each is from the float64 result
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=2e-6 * np.abs(want).max())


@pytest.mark.parametrize("n, t, d, u", [(1, 1, 1, 1), (1, 5, 3, 7), (3, 1, 5, 3), (5, 4, 2, 9)])
@pytest.mark.parametrize("options", [{}, {"return_sequences": True},
                                     {"return_state": True},
                                     {"return_sequences": True, "return_state": True}])
@pytest.mark.parametrize("states", [False, True])
def test_odd_shapes_fast_path_matches_numpy_loop(n, t, d, u, options, states):
    # batch 1, one timestep, odd widths: the kernels' loops over (u, N) rows and the
    # hidden-major buffers' edges; float32 within ~1e-6 of the largest entry
    slow = _run(False, np.float32, 7, n=n, t=t, d=d, u=u, states=states, **options)
    fast = _run(True, np.float32, 7, n=n, t=t, d=d, u=u, states=states, **options)
    for got, want in zip(fast, slow):
        assert got.shape == want.shape and got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6 * max(1, np.abs(want).max()))


def test_float64_fast_path_matches_numpy_loop():
    slow = _run(False, np.float64, 6, return_sequences=True, return_state=True)
    fast = _run(True, np.float64, 6, return_sequences=True, return_state=True)
    for got, want in zip(fast, slow):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def test_backward_kernel_gives_the_numpy_loops_bits(rng):
    # the same forward's gates through both backward loops: the kernel does NumPy's operations
    # in NumPy's order, so the two gradients are equal and their sum is exactly twice either
    ours = [Tensor((0.4 * rng.standard_normal(s)).astype(np.float32), requires_grad=True)
            for s in [(8, 10, 6), (6, 64), (16, 64), (64,), (8, 16), (8, 16)]]
    y = F.lstm(*ours, return_sequences=True, return_state=True)[0]
    g = rng.standard_normal(y.shape).astype(np.float32)
    kernels.set_enabled(True)
    y.backward(g, retain_graph=True)
    first = [a.grad.copy() for a in ours]
    kernels.set_enabled(False)
    y.backward(g)
    for a, f in zip(ours, first):
        np.testing.assert_array_equal(a.grad, 2 * f)


@pytest.mark.parametrize("return_sequences", [False, True])
def test_gradcheck_through_the_kernels(rng, return_sequences):
    kernels.set_enabled(True)
    args = [0.5 * rng.standard_normal(s) for s in [(2, 3, 4), (4, 12), (3, 12), (12,), (2, 3), (2, 3)]]
    gradcheck(lambda *a: F.lstm(*a, return_sequences=return_sequences), *args)


def test_saturated_gates_stay_finite(rng):
    kernels.set_enabled(True)
    x = rng.standard_normal((4, 6, 3)).astype(np.float32)
    W = (1e4 * rng.standard_normal((3, 20))).astype(np.float32)
    U = rng.standard_normal((5, 20)).astype(np.float32)
    y = F.lstm(x, W, U, return_sequences=True).data
    kernels.set_enabled(False)
    with np.errstate(over="ignore"):
        want = F.lstm(x, W, U, return_sequences=True).data
    assert np.isfinite(y).all()
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)


def test_the_switch_and_other_dtypes_fall_back_to_numpy():
    kernels.set_enabled(True)
    assert fr.lstm_steps(np.float32) is not None and fr.lstm_steps(np.float64) is not None
    assert fr.lstm_steps(np.float16) is None
    kernels.set_enabled(False)
    assert fr.lstm_steps(np.float32) is None


def _seq_kernels(monkeypatch, calls):
    """The LSTM's kernels with forward_seq and backward_seq counting their calls into `calls`;
    the sequence kernels unwrapped, or None where NumPy's BLAS offers no cblas gemm."""
    k = fr.kernels()
    steps = k.steps
    if steps.forward_seq is None:
        pytest.skip("NumPy's BLAS offers no cblas_sgemm to call from compiled code")

    def counted(name, fn):
        return lambda *a: calls.append(name) or fn(*a)
    monkeypatch.setattr(k, "steps", steps._replace(
        forward_seq=counted("forward", steps.forward_seq),
        backward_seq=counted("backward", steps.backward_seq)))
    return k, steps


@pytest.mark.parametrize("options", [{}, {"return_sequences": True, "return_state": True}])
@pytest.mark.parametrize("states", [False, True])
def test_sequence_kernels_give_the_timestep_loops_bits(monkeypatch, options, states):
    """The whole sequence in one compiled call each way makes the Python loop's calls (its GEMMs
    through NumPy's own cblas gemm, with np.matmul's arguments, then the timestep kernels): the
    output and every gradient bit for bit, on odd shapes, h0 and c0 given or zero."""
    calls = []
    k, steps = _seq_kernels(monkeypatch, calls)
    seq = _run(True, np.float32, 8, n=3, t=5, d=2, u=7, states=states, **options)
    assert calls == ["forward", "backward"]
    monkeypatch.setattr(k, "steps", steps._replace(forward_seq=None, backward_seq=None))
    loop = _run(True, np.float32, 8, n=3, t=5, d=2, u=7, states=states, **options)
    for got, want in zip(seq, loop):
        np.testing.assert_array_equal(got, want)
    monkeypatch.setattr(k, "steps", steps)
    seq64 = _run(True, np.float64, 8, n=3, t=5, d=2, u=7, states=states, **options)
    monkeypatch.setattr(k, "steps", steps._replace(forward_seq=None, backward_seq=None))
    loop64 = _run(True, np.float64, 8, n=3, t=5, d=2, u=7, states=states, **options)
    for got, want in zip(seq64, loop64):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("n, u", [(1, 5), (4, 1)])
def test_one_row_or_one_unit_runs_the_timestep_loop(monkeypatch, n, u):
    """Where np.matmul may take a matrix-vector product (one row of the batch, one unit) the
    Python loop runs, not the sequence kernels."""
    calls = []
    _seq_kernels(monkeypatch, calls)
    _run(True, np.float32, 9, n=n, t=3, d=2, u=u)
    assert calls == []
