import pytest

import tidu


@pytest.fixture
def float64():
    """Run a test with floatx() = float64 (weights made in float64), restored afterwards."""
    previous = tidu.floatx()
    tidu.set_floatx("float64")
    yield
    tidu.set_floatx(previous)
