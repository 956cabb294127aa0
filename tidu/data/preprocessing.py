"""Feature standardization fitted on the training set."""
import numpy as np

from tidu import backend
from tidu.errors import NotBuiltError, ShapeError


class Normalizer:
    """x̂ = (x − μ) / σ, with μ and σ the mean and standard deviation of the training data.

        fit(x):        μ = mean(x), σ = sqrt(mean((x − μ)²)) over `axis` (population std)
        transform(x):  (x − μ) / σ       where σ > ε;   x − μ   where σ ≤ ε
        inverse_transform(x̂) = x̂ · σ + μ  (the same σ)

    axis: the axis or axes the statistics are taken over. 0 (default): one μ, σ per feature,
        over the samples; None: one scalar μ, σ for the whole array (e.g. MNIST's 0.1307,
        0.3081); (0, 1, 2) on NHWC images: one per channel.
    epsilon: ε, below which σ counts as 0: a feature (nearly) constant in training, such as
        MNIST's border pixels, is only centred, as scikit-learn's StandardScaler does. Keras'
        Normalization divides by max(σ, ε) instead, which turns a test pixel that was always
        0 in training into about 1e7.

    Statistics are accumulated in float64; transform returns x's floating dtype, or floatx()
    for integer input (uint8 images).
    """

    def __init__(self, axis=0, epsilon=1e-7):
        if not (epsilon >= 0):
            raise ValueError(f"Normalizer: expected epsilon >= 0, got epsilon={epsilon!r}")
        axes = axis if axis is None or isinstance(axis, (tuple, list)) else (axis,)
        if axes is not None and not all(isinstance(a, (int, np.integer)) for a in axes):
            raise TypeError(f"Normalizer: expected axis to be an int, a tuple of ints or None, "
                            f"got {axis!r}")
        self.axis, self.epsilon = axis, epsilon
        self._axes = None if axes is None else tuple(int(a) for a in axes)
        self.mean = self.std = None  # float64, shaped to broadcast against x (keepdims)
        self._scale = None

    def fit(self, x):
        """Compute μ and σ of `x` over `axis`; returns self."""
        x = np.asarray(x)
        if x.size == 0:
            raise ValueError(f"Normalizer.fit: expected a non-empty array, got shape {x.shape}")
        axes = range(x.ndim) if self._axes is None else self._axes
        if any(not -x.ndim <= a < x.ndim for a in axes):
            raise ShapeError(f"Normalizer.fit: axis={self.axis!r} is out of range for input "
                             f"of shape {x.shape}")
        axes = tuple(sorted({a % x.ndim for a in axes}))
        mean = x.mean(axis=axes, dtype=np.float64, keepdims=True)
        if 0 in axes:  # over the samples: squared deviations a block of rows at a time
            rows = max(1, (1 << 24) // max(1, x[:1].size))
            ssd = sum(((x[i:i + rows] - mean) ** 2).sum(axis=axes, keepdims=True)
                      for i in range(0, len(x), rows))
            var = ssd / (x.size // mean.size)
        else:
            var = x.var(axis=axes, dtype=np.float64, keepdims=True)
        self.mean, self.std = mean, np.sqrt(var)
        self._scale = np.where(self.std > self.epsilon, self.std, 1.0)
        self._reduced, self._fitted_shape = axes, x.shape
        return self

    def transform(self, x):
        """(x − μ) / σ with the statistics from fit."""
        x, mean, scale = self._check(x, "transform")
        return (x - mean) / scale

    def fit_transform(self, x):
        """fit(x), then transform(x)."""
        return self.fit(x).transform(x)

    def inverse_transform(self, x):
        """x̂ · σ + μ: undoes transform (constant features: x̂ + μ)."""
        x, mean, scale = self._check(x, "inverse_transform")
        return x * scale + mean

    def get_config(self):
        return {"axis": self.axis, "epsilon": self.epsilon}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def _check(self, x, where):
        """x as an array that fits the fitted shape, and μ and the divisor in x's float dtype."""
        if self.mean is None:
            raise NotBuiltError(f"Normalizer.{where}: call fit(x) on the training data first")
        x = np.asarray(x)
        kept = [i for i in range(len(self._fitted_shape)) if i not in self._reduced]
        if x.ndim != len(self._fitted_shape) or any(
                x.shape[i] != self._fitted_shape[i] for i in kept):
            shown = tuple("*" if i in self._reduced else n
                          for i, n in enumerate(self._fitted_shape))
            raise ShapeError(f"Normalizer.{where}: fitted on shape {shown} (* = any size), "
                             f"got shape {x.shape}")
        dtype = x.dtype if x.dtype.kind == "f" else np.dtype(backend.floatx())
        return x, self.mean.astype(dtype), self._scale.astype(dtype)
