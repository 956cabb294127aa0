"""tidu.kernels.blas: NumPy's own cblas gemm, found through NumPy's extension module and called
from compiled code, gives np.matmul's product bit for bit (the same call with the same
arguments) for every layout np.matmul hands to BLAS: rows contiguous, columns contiguous (a
transposed view), rows further apart than a row (a slice of a wider matrix); it refuses a
matrix with no unit stride and an output whose rows are not contiguous."""
import numpy as np
import pytest

from tidu.kernels import blas

pytest.importorskip("numba")


@pytest.fixture(scope="module")
def gemm():
    fns = blas.gemm_functions()
    if fns is None:
        pytest.skip("NumPy's BLAS exports no cblas gemm here (tidu.kernels.blas)")
    kernel = blas.gemm_kernel()
    assert kernel is not None          # numba is installed (importorskip above)
    by_dtype = {np.dtype(np.float32): fns[0], np.dtype(np.float64): fns[1]}
    return lambda A, B, C: kernel(by_dtype[C.dtype], A, B, C)


def test_found_once_per_process(gemm, monkeypatch):
    first = blas.gemm_functions()
    monkeypatch.setattr(blas, "_look_up", lambda: pytest.fail("NumPy's gemm looked up again"))
    assert blas.gemm_functions() is first


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (3, 5, 4), (37, 129, 23), (256, 500, 50)])
def test_product_is_matmuls_bit_for_bit(gemm, dtype, m, k, n):
    rng = np.random.default_rng(m * 1000 + k)
    A = rng.standard_normal((m, k)).astype(dtype)
    B = rng.standard_normal((k, n)).astype(dtype)
    C = np.full((m, n), np.nan, dtype)
    gemm(A, B, C)
    np.testing.assert_array_equal(C, np.matmul(A, B))


@pytest.mark.parametrize("layout", ["transposed A", "transposed B", "A a slice of wider rows",
                                    "C a slice of wider rows"])
def test_every_layout_np_matmul_passes(gemm, layout):
    rng = np.random.default_rng(1)
    A = rng.standard_normal((40, 30)).astype(np.float32)
    B = rng.standard_normal((30, 20)).astype(np.float32)
    C = np.empty((40, 20), np.float32)
    if layout == "transposed A":
        A = np.ascontiguousarray(A.T).T
    elif layout == "transposed B":
        B = np.ascontiguousarray(B.T).T
    elif layout == "A a slice of wider rows":
        A = np.concatenate([A, np.ones((40, 7), np.float32)], axis=1)[:, :30]
    else:
        wide = np.zeros((40, 25), np.float32)
        C = wide[:, :20]
    gemm(A, B, C)
    np.testing.assert_array_equal(C, np.matmul(A, B))
    if layout == "C a slice of wider rows":
        assert not wide[:, 20:].any()            # the columns past C's are not written


def test_refuses_what_has_no_unit_stride(gemm):
    A = np.ones((8, 12), np.float32)[:, ::2]
    B, C = np.ones((6, 4), np.float32), np.empty((8, 4), np.float32)
    with pytest.raises(ValueError, match="unit stride"):
        gemm(A, B, C)


def test_refuses_an_output_with_columns_contiguous(gemm):
    A, B = np.ones((5, 3), np.float32), np.ones((3, 4), np.float32)
    C = np.empty((4, 5), np.float32).T
    with pytest.raises(ValueError, match="output's rows must be contiguous"):
        gemm(A, B, C)
