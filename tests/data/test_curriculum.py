import math

import numpy as np
import pytest

from tidu.data import curriculum_order, pacing_fraction


def test_first_epoch_holds_only_the_easiest_fraction(rng):
    scores = rng.permutation(100).astype(float)
    idx = curriculum_order(scores, epoch=0, start_fraction=0.2)
    assert len(idx) == 20
    np.testing.assert_array_equal(scores[idx], np.arange(20))  # the 20 easiest, easiest first


@pytest.mark.parametrize("pacing", ["linear", "root", "step"])
def test_pacing_grows_from_start_fraction_to_everything(pacing):
    fractions = [pacing_fraction(t, pacing, 0.25, epochs_to_full=4) for t in range(7)]
    assert fractions[0] == 0.25 and fractions[4:] == [1.0, 1.0, 1.0]
    assert all(a <= b for a, b in zip(fractions, fractions[1:]))


def test_pacing_formulas():
    # linear: 0.2 + 0.8 * 5/10 = 0.6;  root: sqrt(0.04 + 0.96 * 5/10) = sqrt(0.52)
    assert pacing_fraction(5, "linear", 0.2, 10) == pytest.approx(0.6)
    assert pacing_fraction(5, "root", 0.2, 10) == pytest.approx(math.sqrt(0.52))
    assert pacing_fraction(9, "step", 0.2, 10) == 0.2
    assert pacing_fraction(10, "step", 0.2, 10) == 1.0


def test_later_epochs_extend_the_earlier_sets(rng):
    scores = rng.standard_normal(50)
    sets = [curriculum_order(scores, t, "linear", 0.1, 5) for t in range(7)]
    assert [len(s) for s in sets] == [5, 14, 23, 32, 41, 50, 50]
    for a, b in zip(sets, sets[1:]):
        np.testing.assert_array_equal(b[:len(a)], a)
    np.testing.assert_array_equal(np.sort(sets[-1]), np.arange(50))


def test_ties_keep_sample_order_and_at_least_one_sample():
    np.testing.assert_array_equal(curriculum_order([1, 0, 0, 1], 0, start_fraction=0.5), [1, 2])
    assert len(curriculum_order([3.0, 1.0], 0, start_fraction=0.01)) == 1


@pytest.mark.parametrize("kwargs, message", [
    ({"pacing": "cubic"}, "pacing in"),
    ({"start_fraction": 0.0}, "0 < start_fraction <= 1"),
    ({"epochs_to_full": 0}, "epochs_to_full to be a positive int"),
    ({"epoch": -1}, "epoch to be an int >= 0"),
])
def test_errors(kwargs, message):
    args = {"scores": [0.5, 0.1], "epoch": 0, **kwargs}
    with pytest.raises(ValueError, match=message):
        curriculum_order(**args)


def test_scores_must_be_finite():
    with pytest.raises(ValueError, match="NaN or inf"):
        curriculum_order([0.1, np.nan], 0)
