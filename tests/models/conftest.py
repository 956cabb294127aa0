import numpy as np
import pytest



@pytest.fixture
def blobs(rng):
    """Three well separated Gaussian blobs in 6 dimensions: x (300, 6) float32, labels (300,)."""
    centres = rng.standard_normal((3, 6)) * 3
    labels = rng.integers(0, 3, 300)
    x = (centres[labels] + rng.standard_normal((300, 6))).astype(np.float32)
    return x, labels
