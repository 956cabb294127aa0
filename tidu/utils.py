"""Array helpers with Keras' names and semantics: `to_categorical`, `normalize`,
`set_random_seed`; `atomic_write`,
how tidu writes a file (model files, the MNIST cache); and `pyplot`, how tidu draws."""
import os
import tempfile

import numpy as np

from tidu import backend


def to_categorical(y, num_classes=None, dtype="float32"):
    """One-hot encode integer class labels: y of shape S -> shape S + (num_classes,), with
    out[..., k] = 1 where y == k and 0 elsewhere. As in Keras, a trailing axis of size 1 is
    dropped first ((N, 1) -> (N, num_classes)), and num_classes defaults to max(y) + 1.

    Unlike Keras, labels are checked: each must be an integer (3.0 is accepted, 2.5 is not)
    in [0, num_classes); the first offending value is named in the ValueError.
    """
    y = np.asarray(y)
    if y.dtype.kind not in "iubf":
        raise TypeError(f"to_categorical: expected integer class labels, got dtype {y.dtype}")
    if y.dtype.kind == "f":
        bad = y[(y != np.round(y)) | ~np.isfinite(y)]
        if bad.size:
            raise ValueError(f"to_categorical: expected integer class labels, "
                             f"got {bad[0].item()!r}")
    labels = y.astype(np.int64).reshape(-1)
    shape = y.shape[:-1] if y.ndim > 1 and y.shape[-1] == 1 else y.shape
    if num_classes is None:
        if labels.size == 0:
            raise ValueError("to_categorical: got no labels; pass num_classes")
        num_classes = int(labels.max()) + 1
    elif isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) \
            or num_classes <= 0:
        raise ValueError(f"to_categorical: expected num_classes to be a positive int, "
                         f"got {num_classes!r}")
    if labels.size and labels.min() < 0:
        raise ValueError(f"to_categorical: expected labels >= 0, got {labels.min()}")
    if labels.size and labels.max() >= num_classes:
        raise ValueError(f"to_categorical: expected labels < num_classes={num_classes}, "
                         f"got {labels.max()}")
    out = np.zeros((labels.size, num_classes), dtype=dtype)
    out[np.arange(labels.size), labels] = 1
    return out.reshape(shape + (num_classes,))


def set_random_seed(seed):
    """Seed every generator a training run draws from, as keras.utils.set_random_seed: Python's
    `random`, NumPy's legacy global one, and tidu's package-wide generator (initializers,
    dropout and shuffling without a seed of their own)."""
    import random

    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"set_random_seed: expected a non-negative int seed, got {seed!r}")
    random.seed(int(seed))
    np.random.seed(int(seed) % 2**32)
    backend.seed(int(seed))


def normalize(x, axis=-1, order=2):
    """x / ||x||_order along `axis` (Keras' `normalize`): each vector along `axis` scaled to
    unit norm; an all-zero vector is left as it is (its norm is taken as 1). Floating-point
    input keeps its dtype, integer input becomes floatx()."""
    x = np.asarray(x)
    if x.dtype.kind != "f":
        x = x.astype(backend.floatx())
    norm = np.atleast_1d(np.linalg.norm(x, order, axis, keepdims=True))
    norm[norm == 0] = 1
    return x / norm


def atomic_write(path, write):
    """Call write(file) on a temporary file in path's directory, fsync it, rename it to path
    and fsync the directory: after a crash at any point, path is the old file or the new one."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable (a power cut, not only a killed process)
        dfd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


def pyplot(who, headless=True):
    """matplotlib.pyplot (the extra `plot`), on the file-only Agg backend when `headless`; an
    ImportError naming `who` (what wanted to draw) and the extra when matplotlib is missing."""
    try:
        import matplotlib
        if headless:
            matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ImportError(f"{who} needs matplotlib; install it with `pip install tidu[plot]`") from e
    return plt
