import json
import math

import numpy as np
import pytest

import tidu
from tidu import initializers as I

BIG = (800, 600)          # 480k values: sample std within ~0.3% of the truth
CONV = (3, 3, 64, 128)    # fan_in = 576, fan_out = 1152


@pytest.mark.parametrize("name, shape, expected_std", [
    ("glorot_uniform", BIG, math.sqrt(2 / (800 + 600))),
    ("glorot_normal", BIG, math.sqrt(2 / (800 + 600))),
    ("he_normal", BIG, math.sqrt(2 / 800)),
    ("he_uniform", BIG, math.sqrt(2 / 800)),
    ("lecun_normal", BIG, math.sqrt(1 / 800)),
    ("lecun_uniform", BIG, math.sqrt(1 / 800)),
    ("he_normal", CONV, math.sqrt(2 / 576)),
    ("glorot_uniform", CONV, math.sqrt(2 / (576 + 1152))),
    ("small_random", BIG, 0.01),
    ("random_normal", BIG, 0.05),
    ("random_uniform", BIG, 0.1 / math.sqrt(12)),
    ("truncated_normal", BIG, 0.05 * 0.8796256610342398),
    ("xavier_normal", BIG, math.sqrt(2 / (800 + 600))),      # Glorot (fan_avg), as Keras/torch
    ("xavier_uniform", BIG, math.sqrt(2 / (800 + 600))),
    ("xavier_notes", BIG, math.sqrt(1 / 800)),                # the notes' randn / √fan_in
    ("xavier_notes", CONV, math.sqrt(1 / 576)),
])
def test_standard_deviation_follows_the_formula(name, shape, expected_std):
    w = I.get(name)(shape)
    assert w.shape == shape and w.dtype == np.float32
    assert abs(w.mean()) < 0.01 * expected_std * 10
    np.testing.assert_allclose(w.std(), expected_std, rtol=0.015)


def test_xavier_notes_is_the_notes_untruncated_randn_over_sqrt_fan_in():
    # w = np.random.randn(fan_in, fan_out) / np.sqrt(fan_in): the same draws from the same seed
    w = I.get("xavier_notes")
    assert isinstance(w, I.XavierNotes) and I.xavier_notes is I.XavierNotes
    got = I.XavierNotes(seed=3)((800, 600), dtype="float64")
    want = np.random.default_rng(3).standard_normal((800, 600)) / np.sqrt(800)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert np.abs(got).max() > 3 / np.sqrt(800)               # not truncated at 2σ, as lecun_normal
    assert I.deserialize(I.serialize(I.XavierNotes(seed=3))).get_config() == {"seed": 3}


def test_uniform_bounds_and_truncation():
    a = math.sqrt(6 / (800 + 600))
    w = I.GlorotUniform(seed=1)(BIG)
    assert -a <= w.min() and w.max() <= a and w.max() > 0.99 * a
    sigma = math.sqrt(2 / 800) / 0.8796256610342398  # the untruncated normal's std
    w = I.HeNormal(seed=1)(BIG)
    assert np.abs(w).max() <= 2 * sigma + 1e-6 and np.abs(w).max() > 1.9 * sigma


def test_compute_fans_as_keras():
    assert I.compute_fans((784, 512)) == (784, 512)
    assert I.compute_fans((5, 5, 3, 32)) == (75, 800)
    assert I.compute_fans((7,)) == (7, 7)
    assert I.compute_fans(()) == (1, 1)


def test_seed_reproducible_and_unseeded_differs():
    a, b = I.GlorotUniform(seed=42)((20, 30)), I.GlorotUniform(seed=42)((20, 30))
    np.testing.assert_array_equal(a, b)
    init = I.he_normal(seed=3)
    np.testing.assert_array_equal(init((4, 5)), init((4, 5)))  # same array on every call, as Keras
    assert not np.array_equal(I.GlorotUniform(seed=1)((20, 30)), a)
    unseeded = I.GlorotUniform()
    assert not np.array_equal(unseeded((20, 30)), unseeded((20, 30)))
    tidu.backend.seed(7)
    c = I.GlorotUniform()((20, 30))
    tidu.backend.seed(7)
    np.testing.assert_array_equal(I.GlorotUniform()((20, 30)), c)


def test_dtype_is_floatx_or_requested():
    assert I.get("he_normal")((3, 4)).dtype == np.float32
    assert I.get("zeros")((3,)).dtype == np.float32
    assert I.get("he_normal")((3, 4), dtype="float64").dtype == np.float64
    previous = tidu.floatx()
    tidu.set_floatx("float64")
    try:
        assert I.get("orthogonal")((3, 4)).dtype == np.float64
        assert I.Constant(2)((2,)).dtype == np.float64
    finally:
        tidu.set_floatx(previous)
    with pytest.raises(TypeError, match="floating-point"):
        I.HeNormal()((3, 3), dtype="int32")


def test_constant_zeros_ones_identity():
    np.testing.assert_array_equal(I.Constant(0.5)((2, 2)), np.full((2, 2), 0.5, np.float32))
    np.testing.assert_array_equal(I.get("ones")((3,)), np.ones(3))
    np.testing.assert_array_equal(I.get("zeros")((3,)), np.zeros(3))
    np.testing.assert_array_equal(I.Identity(gain=2.0)((2, 3)), 2 * np.eye(2, 3))


@pytest.mark.parametrize("shape", [(6, 6), (10, 4), (4, 10), (3, 3, 2, 8)])
def test_orthogonal(shape):
    w = I.Orthogonal(gain=1.5, seed=0)(shape, dtype="float64")
    m = w.reshape(-1, shape[-1])
    gram = m.T @ m if m.shape[0] >= m.shape[1] else m @ m.T
    np.testing.assert_allclose(gram, 1.5 ** 2 * np.eye(gram.shape[0]), atol=1e-12)


def test_get_accepts_names_dicts_instances_classes_callables():
    assert isinstance(I.get("glorot_uniform"), I.GlorotUniform)
    assert isinstance(I.get("GlorotUniform"), I.GlorotUniform)
    assert isinstance(I.get("uniform"), I.RandomUniform)
    assert isinstance(I.get("xavier_normal"), I.GlorotNormal)
    inst = I.RandomNormal(stddev=0.3, seed=5)
    assert I.get(inst) is inst
    assert isinstance(I.get(I.HeUniform), I.HeUniform)
    fn = lambda shape, dtype=None: np.zeros(shape)  # noqa: E731
    assert I.get(fn) is fn
    assert I.get(None) is None
    d = I.get({"class_name": "RandomNormal", "config": {"mean": 1.0, "stddev": 0.3, "seed": 5}})
    np.testing.assert_array_equal(d((3, 3)), inst.__class__(1.0, 0.3, 5)((3, 3)))
    with pytest.raises(TypeError):
        I.get(3.5)


def test_unknown_name_lists_allowed_and_closest():
    with pytest.raises(ValueError, match=r"did you mean 'glorot_uniform'.*Allowed: .*he_normal"):
        I.get("glorot_unifrom")
    with pytest.raises(ValueError, match="unknown initializer"):
        I.deserialize({"class_name": "os.system", "config": {}})


@pytest.mark.parametrize("init", [
    I.Zeros(), I.Ones(), I.Constant(3.0), I.RandomNormal(0.1, 0.2, seed=1), I.RandomUniform(-1, 2),
    I.TruncatedNormal(stddev=0.3), I.SmallRandom(seed=4), I.GlorotUniform(seed=2), I.HeNormal(),
    I.LecunNormal(seed=9), I.Orthogonal(gain=2.0), I.Identity(0.5),
    I.VarianceScaling(2.0, "fan_out", "untruncated_normal", seed=1)])
def test_serialize_round_trip(init):
    config = json.loads(json.dumps(I.serialize(init)))
    again = I.deserialize(config)
    assert type(again) is type(init) and again.get_config() == init.get_config()


def test_bad_arguments():
    with pytest.raises(TypeError, match="seed"):
        I.glorot_uniform((3, 4))  # the class, as Keras: a shape is not a seed
    with pytest.raises(ValueError, match="mode"):
        I.VarianceScaling(mode="fan_sum")
    with pytest.raises(ValueError, match="minval <= maxval"):
        I.RandomUniform(1.0, -1.0)
    with pytest.raises(ValueError, match="2 dimensions"):
        I.Orthogonal()((5,))
