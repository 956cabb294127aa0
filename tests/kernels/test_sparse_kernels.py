"""numba's Dense kernel for inputs that are mostly zeros (tidu.kernels.sparse, extra `fast`)
against the NumPy path, the reference: the GEMM x W + b (and F.dense_relu's ReLU) at inference.
The kernel sums the nonzero products in another order, so values are compared within 1e-6
relative to the size of the sums in float32 (1e-14 in float64), NaN and ±∞ where the GEMM
has them; on odd shapes (batch 1, a row of zeros, a batch of zeros, K not a multiple of 4,
3-D inputs). Where the kernel must not run (training, dense inputs, a non-finite W, more than
one core, narrow outputs) the op's result is the GEMM's, bit for bit."""
import importlib

import numpy as np
import pytest

import tidu
import tidu.functional as F
from tidu import Tensor, kernels, no_grad
from tidu.kernels import halves, sparse

pytest.importorskip("numba")

dense_module = importlib.import_module("tidu.functional.dense")
TOL = {np.float32: 1e-6, np.float64: 1e-14}


@pytest.fixture
def one_core(monkeypatch):
    """The kernel runs where a batch is on one core (inside a halves run, or one BLAS thread):
    the tests call it from the main thread, so say so."""
    monkeypatch.setattr(halves, "one_core", lambda: True)


@pytest.fixture
def kernel_calls(monkeypatch):
    """A one-element list: how many times the ops got a result from the kernel (not None)."""
    ran = [0]

    def getter(dtype):
        fast = sparse.sparse_input_kernels(dtype)
        if fast is None:
            return None

        def dense_sparse(*args):
            y = fast.dense_sparse(*args)
            ran[0] += y is not None
            return y
        return sparse.SparseInput(dense_sparse)
    monkeypatch.setattr(dense_module, "sparse_input_kernels", getter)
    return ran


def _sparse_x(rng, shape, dtype, density=0.15):
    x = rng.standard_normal(shape).astype(dtype)
    x[rng.random(shape) >= density] = 0
    return x


def _weights(rng, k, u, dtype):
    return rng.standard_normal((k, u)).astype(dtype), rng.standard_normal(u).astype(dtype)


def _assert_close(y, x, W, b, relu):
    """y against x W + b (ReLU'd if relu) in float64, within TOL × Σ_k |x_ik W_kj| + |b_j|."""
    ref = x.astype(np.float64) @ W.astype(np.float64) + b.astype(np.float64)
    scale = np.abs(x.astype(np.float64)) @ np.abs(W.astype(np.float64)) + np.abs(b)
    if relu:
        ref = np.maximum(ref, 0)
    assert y.dtype == x.dtype and y.shape == ref.shape
    assert np.all(np.abs(y - ref) <= TOL[x.dtype.type] * 4 * (scale + 1e-30))


def _both(x, W, b, relu):
    """[y with the fast paths on, y with them off] of F.dense_relu (relu) or F.dense, no graph."""
    out = []
    op = F.dense_relu if relu else F.dense
    for fast in (True, False):
        kernels.set_enabled(fast)
        with no_grad():
            out.append(op(Tensor(x), Tensor(W), Tensor(b)).data)
    kernels.set_enabled(True)
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize("n, k, u", [(1, 30, 32), (5, 37, 33), (64, 784, 512), (9, 1, 40)])
def test_the_kernel_gives_the_gemms_values(rng, one_core, kernel_calls, n, k, u, relu, dtype):
    x = _sparse_x(rng, (n, k), dtype)
    x[0, :] = 0                                      # a row with no nonzero at all
    if k > 5:
        x[-1, :5] = [1.5, -2.0, 0.25, -0.0, 3.0]     # a −0.0 is skipped like a +0.0
    else:
        x[-1, 0] = 2.5
    W, b = _weights(rng, k, u, dtype)
    fast, plain = _both(x, W, b, relu)
    assert kernel_calls[0] >= 1
    _assert_close(fast, x, W, b, relu)
    np.testing.assert_allclose(fast, plain, rtol=0, atol=TOL[dtype] * 4 * float(
        (np.abs(x) @ np.abs(W)).max() + np.abs(b).max()))
    if relu:
        assert not np.signbit(fast).any()            # ReLU's zeros are +0.0, as the plain path's


def test_a_batch_of_zeros_gives_the_bias(one_core):
    W, b = _weights(np.random.default_rng(0), 20, 48, np.float32)
    x = np.zeros((4, 20), np.float32)
    y = sparse.sparse_input_kernels(np.float32).dense_sparse(x, W, b, False)
    np.testing.assert_array_equal(y, np.broadcast_to(b, (4, 48)))
    y = sparse.sparse_input_kernels(np.float32).dense_sparse(x, W, None, True)
    np.testing.assert_array_equal(y, np.zeros((4, 48), np.float32))


def test_three_d_inputs_take_their_last_axis(rng, one_core, kernel_calls):
    x = _sparse_x(rng, (3, 5, 40), np.float32)
    W, b = _weights(rng, 40, 64, np.float32)
    fast, plain = _both(x, W, b, True)
    assert kernel_calls[0] >= 1 and fast.shape == plain.shape == (3, 5, 64)
    _assert_close(fast.reshape(15, 64), x.reshape(15, 40), W, b, True)


@pytest.mark.parametrize("special", [np.nan, np.inf, -np.inf])
def test_nan_and_infinities_in_x_reach_the_outputs_as_in_the_gemm(rng, one_core, kernel_calls,
                                                                   special):
    x = _sparse_x(rng, (6, 30), np.float32)
    x[2, 3] = special
    x[4, 7], x[4, 9] = np.inf, -np.inf               # ∞ − ∞ where rows 7, 9 of W agree in sign
    W, b = _weights(rng, 30, 36, np.float32)
    fast, plain = _both(x, W, b, False)
    assert kernel_calls[0] == 1                       # the kernel's outputs, not a second GEMM
    np.testing.assert_array_equal(np.isnan(fast), np.isnan(plain))
    np.testing.assert_array_equal(np.isinf(fast), np.isinf(plain))
    assert np.isnan(fast[4]).any() and np.isinf(fast[4]).any()
    finite = np.isfinite(plain)
    np.testing.assert_array_equal(np.sign(fast[~finite & ~np.isnan(plain)]),
                                  np.sign(plain[~finite & ~np.isnan(plain)]))
    np.testing.assert_allclose(fast[finite], plain[finite], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("special", [np.nan, np.inf])
def test_a_non_finite_weight_sends_the_op_to_its_gemm(rng, one_core, special):
    """0 · ∞ and 0 · NaN are NaN in the GEMM; the kernel would skip them, so it declines and
    the op's result is the GEMM's, bit for bit."""
    x = _sparse_x(rng, (8, 50), np.float32)
    W, b = _weights(rng, 50, 40, np.float32)
    W[49, 5] = special                                # a row x's zeros alone meet
    x[:, 49] = 0
    assert sparse.sparse_input_kernels(np.float32).dense_sparse(x, W, b, False) is None
    fast, plain = _both(x, W, b, False)
    np.testing.assert_array_equal(fast, plain)
    assert np.isnan(fast[:, 5]).all()


def test_where_the_kernel_declines_the_op_gives_the_gemms_bits(rng, kernel_calls, monkeypatch):
    """Dense inputs, an output narrower than MIN_UNITS, a non-contiguous x, mixed dtypes, a
    graph being recorded (training) and a batch whose work is on two cores: the GEMM's bits."""
    fast_kernel = sparse.sparse_input_kernels(np.float32).dense_sparse
    W, b = _weights(rng, 40, 64, np.float32)
    dense_x = rng.standard_normal((8, 40)).astype(np.float32)
    monkeypatch.setattr(halves, "one_core", lambda: True)
    assert fast_kernel(dense_x, W, b, True) is None
    x = _sparse_x(rng, (8, 40), np.float32)
    assert fast_kernel(x, W[:, :8], b[:8], True) is None
    assert fast_kernel(np.asfortranarray(x), W, b, True) is None
    assert fast_kernel(x.astype(np.float64), W, b, True) is None
    for case in (dense_x, x[:, ::-1]):
        fast, plain = _both(case, W, b, True)
        np.testing.assert_array_equal(fast, plain)
    t = Tensor(x, requires_grad=True)                 # training: the GEMM, as the plain path
    y = F.dense_relu(t, Tensor(W, requires_grad=True), Tensor(b))
    kernels.set_enabled(False)
    np.testing.assert_array_equal(y.data, F.dense_relu(Tensor(x), Tensor(W), Tensor(b)).data)
    kernels.set_enabled(True)
    monkeypatch.setattr(halves, "one_core", lambda: False)
    assert fast_kernel(x, W, b, True) is None
    assert kernel_calls[0] == 0


def test_mostly_zeros_reads_the_first_rows():
    assert sparse.DENSITY == 0.3
    x = np.zeros((40, 10), np.float32)
    x[sparse.SAMPLE_ROWS:] = 1                        # rows past the sample do not count
    x[:sparse.SAMPLE_ROWS, :3] = 1                    # 30% of the sampled entries
    x[0, 0] = -0.0                                    # a −0.0 counts as a zero
    assert sparse.mostly_zeros(x)
    x[0, 0] = 1
    x[:sparse.SAMPLE_ROWS, 3] = 1                     # 40%
    assert not sparse.mostly_zeros(x)
    assert not sparse.mostly_zeros(x[:0])


def _mlp():
    m = tidu.Sequential([tidu.layers.Input((60,)), tidu.layers.Dense(48, activation="relu"),
                         tidu.layers.Dense(3, activation="softmax")])
    m.compile(optimizer="sgd", loss="categorical_crossentropy")
    return m


def test_predict_sends_a_dense_models_sparse_batches_to_the_cores_in_pairs(monkeypatch,
                                                                            kernel_calls):
    """A Dense-first model on inputs that are mostly zeros predicts in pairs (one halves.run
    for the loop), each batch's first layer through the kernel, the outputs the NumPy path's to
    float rounding; on dense inputs it does not (its two-thread GEMMs are faster)."""
    if halves.spans(128) is None:
        pytest.skip("halves need two CPUs, NumPy's BLAS on two threads and threadpoolctl")
    import tidu.training.loops as loops
    runs, run = [], halves.run
    monkeypatch.setattr(loops.halves, "run", lambda fn: runs.append(1) or run(fn))
    m = _mlp()
    x = _sparse_x(np.random.default_rng(2), (250, 60), np.float32)
    pairs = m.predict(x, batch_size=64, verbose=0)
    assert runs == [1] and kernel_calls[0] == 4
    kernels.set_enabled(False)
    plain = m.predict(x, batch_size=64, verbose=0)
    kernels.set_enabled(True)
    np.testing.assert_allclose(pairs, plain, rtol=1e-5, atol=1e-7)
    runs.clear()
    m.predict(np.random.default_rng(3).standard_normal((250, 60)).astype(np.float32),
              batch_size=64, verbose=0)
    assert runs == []
