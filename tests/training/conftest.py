"""Fixtures of the pairs tests (test_predict_pairs, test_evaluate_pairs): the NumPy path, and a
skip where this machine sends no batches to two cores."""
import pytest

from tidu import kernels
from tidu.kernels import halves


@pytest.fixture
def numpy_path():
    """The fast paths off (TIDU_FAST=0's state) for the test, then as they were."""
    previous = kernels.set_enabled(False)
    yield
    kernels.set_enabled(previous)


@pytest.fixture
def need_pairs():
    """Skips where predict and evaluate cannot pair batches (tidu.kernels.halves.spans)."""
    if halves.spans(128) is None:
        pytest.skip("no pairs on this machine: one CPU, NumPy's BLAS on one thread, or no "
                    "threadpoolctl (tidu.kernels.halves.spans)")
