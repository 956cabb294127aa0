"""The GRU's numba timestep kernels (tidu.kernels.recurrent, extra `fast`) against the NumPy
loop, the reference: the op's output and every gradient with the fast path on and off.

What is compared how:
  - forward and gradients through both paths, float32, odd short shapes: within rtol 1e-6
    (plus 1e-6 of the largest entry, for entries that are sums of cancelling terms): the
    forward's exp is expf (within ~1 ulp of np.exp), so the gates may differ in the last bit
    and that carries on; over 28 steps, against float64 (see that test);
  - the backward alone, from the same forward: bit for bit (assert_array_equal), as the
    kernel does the NumPy loop's operations in its order;
  - float64 with the kernels against central differences (gradcheck).
Each comparison checks that the kernels were really taken (or not), so it cannot compare the
NumPy loop with itself.
"""
import importlib

import numpy as np
import pytest

import tidu.functional as F
from tidu import Tensor, gradcheck, kernels
from tidu.kernels import recurrent as fr

pytest.importorskip("numba")
rec = importlib.import_module("tidu.functional.recurrent")


@pytest.fixture
def calls(count_kernel_gets):
    """How many times the GRU got the kernels (not None) from gru_steps."""
    return count_kernel_gets(rec, "gru_steps", fr.gru_steps)


def _inputs(dtype, seed, n, t, d, u, bias, h0):
    """x, kernel, recurrent_kernel, bias, h0 (None where absent), drawn in float32 and then cast
    to dtype (so float64 gets the same numbers), and the generator for the upstream gradient."""
    r = np.random.default_rng(seed)
    shapes = [(n, t, d), (d, 3 * u), (u, 3 * u),
              (2, 3 * u) if bias else None, (n, u) if h0 else None]
    scales = [1, 0.4, 0.4, 0.3, 0.5]
    return [None if s is None else (c * r.standard_normal(s)).astype(np.float32).astype(dtype)
            for c, s in zip(scales, shapes)], r


def _run(fast, calls, dtype=np.float32, seed=5, n=16, t=28, d=28, u=32, bias=True, h0=True,
         return_sequences=False):
    """Output and gradients (x, kernel, recurrent_kernel, bias, h0; None where absent) of gru
    with the fast path on or off, from the same inputs; checks which path ran."""
    kernels.set_enabled(fast)
    before = calls[0]
    arrays, r = _inputs(dtype, seed, n, t, d, u, bias, h0)
    ours = [None if a is None else Tensor(a, requires_grad=True) for a in arrays]
    y = F.gru(*ours, return_sequences=return_sequences)
    y.backward(r.standard_normal(y.shape).astype(np.float32).astype(dtype))
    assert calls[0] - before == (2 if fast else 0)             # forward and backward, or neither
    return [y.data] + [None if a is None else a.grad for a in ours]


def _close(fast, slow):
    for got, want in zip(fast, slow):
        assert (got is None) == (want is None)
        if want is not None:
            assert got.shape == want.shape and got.dtype == want.dtype
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6 * np.abs(want).max())


@pytest.mark.parametrize("n, t, d, u", [(1, 1, 1, 1), (1, 5, 3, 7), (3, 1, 5, 3), (5, 4, 2, 9),
                                        (2, 6, 3, 13)])
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("h0", [False, True])
def test_odd_shapes_fast_path_matches_numpy_loop(calls, n, t, d, u, return_sequences, bias, h0):
    # batch 1, one timestep, units not a multiple of 8 (the kernels' loop tails)
    options = dict(n=n, t=t, d=d, u=u, bias=bias, h0=h0, return_sequences=return_sequences)
    _close(_run(True, calls, **options), _run(False, calls, **options))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_float32_fast_path_is_as_accurate_as_numpy_loop(calls, seed, return_sequences):
    # 28 steps: an ulp of difference in a gate carries through the whole BPTT, and the two
    # float32 paths differ by what each differs from float64 (up to ~3e-6 of the largest entry
    # of dh0, measured), more than 1e-6. So each is measured against the float64 result: the
    # kernels' error at most twice the NumPy loop's, and the two within 5e-6 of the largest entry
    options = dict(seed=seed, return_sequences=return_sequences)
    fast, slow = _run(True, calls, **options), _run(False, calls, **options)
    exact = _run(False, calls, np.float64, **options)           # the same float32 draws, in float64
    for got, want, ref in zip(fast, slow, exact):
        assert got.dtype == want.dtype == np.float32
        scale = np.abs(ref).max()
        err_fast, err_slow = np.abs(got - ref).max() / scale, np.abs(want - ref).max() / scale
        assert err_fast <= 2 * err_slow + 1e-7, (err_fast, err_slow)
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=5e-6 * scale)


def test_float64_fast_path_matches_numpy_loop(calls):
    slow = _run(False, calls, np.float64, 6, return_sequences=True)
    fast = _run(True, calls, np.float64, 6, return_sequences=True)
    for got, want in zip(fast, slow):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("h0", [False, True])
def test_backward_kernel_gives_the_numpy_loops_bits(calls, return_sequences, h0):
    # the same forward's gates through both backward loops: the kernel does NumPy's operations
    # in NumPy's order, so the two gradients are equal and their sum is exactly twice either
    arrays, r = _inputs(np.float32, 3, 6, 9, 5, 11, True, h0)
    ours = [None if a is None else Tensor(a, requires_grad=True) for a in arrays]
    y = F.gru(*ours, return_sequences=return_sequences)
    g = r.standard_normal(y.shape).astype(np.float32)
    kernels.set_enabled(True)
    y.backward(g, retain_graph=True)
    first = [None if a is None else a.grad.copy() for a in ours]
    kernels.set_enabled(False)
    y.backward(g)
    assert calls[0] == 2                                       # the forward and the first backward
    for a, f in zip(ours, first):
        if a is not None:
            np.testing.assert_array_equal(a.grad, 2 * f)


@pytest.mark.parametrize("return_sequences", [False, True])
def test_gradcheck_through_the_kernels(calls, return_sequences):
    args, _ = _inputs(np.float64, 8, 2, 3, 4, 3, True, True)
    gradcheck(lambda *a: F.gru(*a, return_sequences=return_sequences), *args)
    assert calls[0] > 0


def test_saturated_gates_stay_finite(rng):
    x = rng.standard_normal((4, 6, 3)).astype(np.float32)
    W = (1e4 * rng.standard_normal((3, 15))).astype(np.float32)
    U = rng.standard_normal((5, 15)).astype(np.float32)
    y = F.gru(x, W, U, return_sequences=True).data
    kernels.set_enabled(False)
    with np.errstate(over="ignore"):
        want = F.gru(x, W, U, return_sequences=True).data
    assert np.isfinite(y).all()
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)


def test_the_switch_and_other_dtypes_fall_back_to_numpy():
    kernels.set_enabled(True)
    assert kernels.gru_steps is fr.gru_steps
    assert fr.gru_steps(np.float32) is not None and fr.gru_steps(np.float64) is not None
    assert fr.gru_steps(np.float16) is None
    kernels.set_enabled(False)
    assert fr.gru_steps(np.float32) is None
