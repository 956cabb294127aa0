import numpy as np
import pytest


@pytest.fixture
def rng():
    """A seeded generator: every test draws its own reproducible numbers."""
    return np.random.default_rng(1234)
