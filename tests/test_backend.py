import importlib.util

import numpy as np
import pytest

import tidu
from tidu import backend


def test_default_floatx_is_float32():
    assert tidu.floatx() == "float32"
    assert backend.as_array([1.0, 2.0]).dtype == np.float32
    assert backend.as_array(np.ones(2)).dtype == np.float64  # an explicit array keeps its dtype
    assert backend.as_array([1, 2]).dtype.kind == "i"


def test_set_floatx_switches_and_validates():
    try:
        tidu.set_floatx("float64")
        assert backend.as_array([1.0]).dtype == np.float64
        with pytest.raises(ValueError, match="int32"):
            tidu.set_floatx("int32")
        assert tidu.floatx() == "float64"
    finally:
        tidu.set_floatx("float32")


@pytest.mark.skipif(importlib.util.find_spec("cupy") is not None, reason="CuPy is installed")
def test_asking_for_cupy_without_it_is_a_clear_error():
    with pytest.raises(ImportError, match=r"tidu\[gpu\]"):
        tidu.set_backend("cupy")
    assert backend.name == "numpy" and backend.xp is np


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="'jax'"):
        tidu.set_backend("jax")


def test_rng_is_reproducible_per_seed():
    assert backend.rng(3).random() == backend.rng(3).random()
    backend.seed(5)
    a = backend.rng().random()
    backend.seed(5)
    assert backend.rng().random() == a
