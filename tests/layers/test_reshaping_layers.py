"""RepeatVector, Permute, UpSampling2D, ZeroPadding2D, Cropping2D against Keras 3 (torch
backend); gradients; errors; configs; save/load of a model holding each."""
import json
import os

import numpy as np
import pytest

import tidu
from tidu import gradcheck
from tidu import layers as L
from tidu.errors import ShapeError


@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    return pytest.importorskip("keras")


# (class name, constructor arguments, one input sample's shape)
CASES = [
    ("RepeatVector", dict(n=3), (5,)),
    ("Permute", dict(dims=(2, 1)), (3, 4)),
    ("Permute", dict(dims=(3, 1, 2)), (3, 4, 2)),
    ("UpSampling2D", dict(), (3, 4, 2)),
    ("UpSampling2D", dict(size=(3, 1)), (3, 4, 2)),
    ("UpSampling2D", dict(size=2, interpolation="bilinear"), (3, 4, 2)),
    ("UpSampling2D", dict(size=(1, 3), interpolation="bilinear"), (5, 2, 3)),
    ("ZeroPadding2D", dict(), (3, 4, 2)),
    ("ZeroPadding2D", dict(padding=2), (3, 4, 2)),
    ("ZeroPadding2D", dict(padding=(1, 2)), (3, 4, 2)),
    ("ZeroPadding2D", dict(padding=((0, 1), (2, 3))), (3, 4, 2)),
    ("Cropping2D", dict(), (3, 4, 2)),
    ("Cropping2D", dict(cropping=1), (5, 4, 2)),
    ("Cropping2D", dict(cropping=(1, 0)), (5, 4, 2)),
    ("Cropping2D", dict(cropping=((0, 2), (1, 1))), (5, 4, 2)),
]
IDS = [f"{name}-{kw}" for name, kw, _ in CASES]


@pytest.mark.parametrize("name, kwargs, sample", CASES, ids=IDS)
def test_matches_keras(keras, rng, name, kwargs, sample):
    x = rng.standard_normal((2, *sample)).astype(np.float32)
    ours = getattr(L, name)(**kwargs)
    ref = getattr(keras.layers, name)(**kwargs)
    y = ours(x).data
    expected = np.asarray(keras.ops.convert_to_numpy(ref(x)))
    assert y.shape == expected.shape
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)
    assert ours.compute_output_shape((None, *sample)) == ref.compute_output_shape((None, *sample))


@pytest.mark.parametrize("name, kwargs, sample", CASES, ids=IDS)
def test_gradcheck(rng, name, kwargs, sample):
    layer = getattr(L, name)(**kwargs)
    gradcheck(lambda t: layer(t), rng.standard_normal((2, *sample)))


@pytest.mark.parametrize("name, kwargs, sample", CASES, ids=IDS)
def test_config_round_trip_and_save_load(rng, tmp_path, name, kwargs, sample):
    layer = getattr(L, name)(**kwargs)
    config = json.loads(json.dumps(L.serialize(layer)))
    again = L.deserialize(config)
    assert again.get_config() == layer.get_config()
    model = tidu.models.Sequential([getattr(L, name)(input_shape=sample, **kwargs), L.Flatten()])
    x = rng.standard_normal((3, *sample)).astype(np.float32)
    model.save(tmp_path / "m.tidu")
    loaded = tidu.models.load_model(tmp_path / "m.tidu")
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_config_matches_keras_names_and_values(keras):
    for ours, ref in [(L.UpSampling2D((2, 3), interpolation="bilinear"),
                       keras.layers.UpSampling2D((2, 3), interpolation="bilinear")),
                      (L.ZeroPadding2D((1, 2)), keras.layers.ZeroPadding2D((1, 2))),
                      (L.Cropping2D(((1, 0), (2, 3))), keras.layers.Cropping2D(((1, 0), (2, 3)))),
                      (L.Permute((2, 1)), keras.layers.Permute((2, 1))),
                      (L.RepeatVector(4), keras.layers.RepeatVector(4))]:
        mine, theirs = ours.get_config(), ref.get_config()
        for key in set(theirs) - {"name", "trainable", "dtype"}:
            assert json.loads(json.dumps(mine[key])) == json.loads(json.dumps(theirs[key])), key


def test_nearest_upsampling_repeats_each_pixel():
    x = np.arange(4.0).reshape(1, 2, 2, 1)
    y = L.UpSampling2D((2, 1))(x).data[0, :, :, 0]
    np.testing.assert_array_equal(y, [[0, 1], [0, 1], [2, 3], [2, 3]])


@pytest.mark.parametrize("make, match", [
    (lambda: L.RepeatVector(0), "RepeatVector: expected n to be an int >= 1, got n=0"),
    (lambda: L.Permute((0, 1)), r"Permute: expected dims to be a permutation of 1, ..., k"),
    (lambda: L.Permute((1, 1)), "permutation"),
    (lambda: L.UpSampling2D(0), "UpSampling2D: expected size"),
    (lambda: L.UpSampling2D(interpolation="bicubic"), "'nearest' or 'bilinear'"),
    (lambda: L.UpSampling2D(data_format="channels_first"), "channels-last"),
    (lambda: L.ZeroPadding2D(-1), "ZeroPadding2D: expected padding to be an int"),
    (lambda: L.ZeroPadding2D((1, 2, 3)), "tuple of 2 ints"),
    (lambda: L.Cropping2D(((1,), (1, 1))), "Cropping2D: expected cropping"),
])
def test_bad_arguments(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


@pytest.mark.parametrize("layer, x, match", [
    (L.RepeatVector(2, name="rv"), np.zeros((2, 3, 4)),
     r"RepeatVector\(2\) 'rv' expected input with 2 dimensions \(batch, features\), got shape \(2, 3, 4\)"),
    (L.Permute((2, 1), name="perm"), np.zeros((2, 3, 4, 5)), r"Permute\(2, 1\) 'perm' expected input with 3"),
    (L.UpSampling2D(name="up"), np.zeros((2, 3, 4)), r"UpSampling2D\(2, 2\) 'up' expected input with 4"),
    (L.ZeroPadding2D(name="zp"), np.zeros((2, 3)), "ZeroPadding2D 'zp' expected input with 4"),
    (L.Cropping2D(2, name="crop"), np.zeros((1, 4, 9, 1)),
     r"Cropping2D 'crop' cropping \(\(2, 2\), \(2, 2\)\) leaves nothing of an input of shape \(1, 4, 9, 1\)"),
])
def test_shape_errors_name_the_layer(layer, x, match):
    with pytest.raises(ShapeError, match=match):
        layer(x)
