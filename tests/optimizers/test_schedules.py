"""Learning-rate schedules against their closed forms (Keras's formulas)."""
import json
import math

import numpy as np
import pytest

from tidu.optimizers import SGD, schedules
from tidu.optimizers.schedules import (Constant, CosineDecay, ExponentialDecay, InverseTimeDecay,
                                       PiecewiseConstantDecay, PolynomialDecay, StepDecay)


def test_exponential_decay():
    s = ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    assert s(0) == 0.1
    assert s(15) == pytest.approx(0.1 * 0.5 ** 1.5)
    assert ExponentialDecay(0.1, 10, 0.5, staircase=True)(15) == pytest.approx(0.05)


def test_inverse_time_decay():
    assert InverseTimeDecay(0.1, 10, 0.5)(15) == pytest.approx(0.1 / (1 + 0.5 * 1.5))
    assert InverseTimeDecay(0.1, 10, 0.5, staircase=True)(15) == pytest.approx(0.1 / 1.5)
    # Keras 2's `decay=d`: lr / (1 + d·t)
    assert InverseTimeDecay(0.01, 1, 1e-3)(500) == pytest.approx(0.01 / 1.5)


def test_piecewise_constant_decay_boundaries_belong_to_the_left():
    s = PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.1])
    assert [s(0), s(10), s(10.5), s(20), s(21)] == [1.0, 1.0, 0.5, 0.5, 0.1]
    with pytest.raises(ValueError, match="len\\(values\\) == len\\(boundaries\\) \\+ 1"):
        PiecewiseConstantDecay([10], [1.0])


def test_step_decay_halves_every_step_size():
    s = StepDecay(1.0, step_size=10)
    assert [s(0), s(9), s(10), s(25)] == [1.0, 1.0, 0.5, 0.25]


def test_polynomial_decay():
    s = PolynomialDecay(1.0, 100, end_learning_rate=0.0, power=2.0)
    assert s(50) == pytest.approx(0.25) and s(500) == 0.0
    cyc = PolynomialDecay(1.0, 100, end_learning_rate=0.0, power=2.0, cycle=True)
    assert cyc(150) == pytest.approx((1 - 150 / 200) ** 2)


def test_cosine_decay_closed_form():
    s = CosineDecay(1.0, 100, alpha=0.1)
    for step in (0, 25, 50, 99, 100, 250):
        cosine = 0.5 * (1 + math.cos(math.pi * min(step, 100) / 100))
        assert s(step) == pytest.approx(0.9 * cosine + 0.1)
    assert s(50) == pytest.approx(0.55)


def test_cosine_decay_with_warmup():
    s = CosineDecay(0.0, decay_steps=100, warmup_target=1.0, warmup_steps=10)
    assert s(0) == 0.0 and s(5) == pytest.approx(0.5) and s(10) == pytest.approx(1.0)
    assert s(60) == pytest.approx(0.5) and s(110) == pytest.approx(0.0) and s(10_000) == pytest.approx(0.0)


def test_constant_and_get():
    assert Constant(0.3)(1234) == 0.3
    assert schedules.get(0.2)(7) == 0.2
    with pytest.raises(TypeError):
        schedules.get("fast")


@pytest.mark.parametrize("schedule", [Constant(0.1), ExponentialDecay(0.1, 10, 0.9, True),
                                      InverseTimeDecay(0.1, 5, 0.5), PiecewiseConstantDecay([3, 7], [1.0, 0.5, 0.2]),
                                      StepDecay(0.1, 4, 0.3), PolynomialDecay(0.1, 20, 0.01, 0.5, True),
                                      CosineDecay(0.1, 30, 0.05, warmup_target=0.2, warmup_steps=5)])
def test_serialize_round_trip(schedule):
    again = schedules.deserialize(json.loads(json.dumps(schedules.serialize(schedule))))
    assert type(again) is type(schedule) and again.get_config() == schedule.get_config()
    assert [again(s) for s in range(40)] == [schedule(s) for s in range(40)]


def test_bad_schedule_arguments():
    with pytest.raises(ValueError, match="ExponentialDecay: expected decay_steps > 0, got decay_steps=0"):
        ExponentialDecay(0.1, 0, 0.5)
    with pytest.raises(ValueError, match="expected initial_learning_rate >= 0"):
        CosineDecay(-1.0, 10)
    with pytest.raises(ValueError, match="unknown schedule 'ExponentialDecy'; did you mean 'ExponentialDecay'"):
        schedules.deserialize({"class_name": "ExponentialDecy", "config": {}})
    with pytest.raises(ValueError, match="expected step >= 0"):
        Constant(0.1)(-1)


def test_optimizer_follows_the_schedule_step_by_step():
    # SGD on a constant gradient 1: θ_k = −Σ_{i<k} lr(i)
    sched = ExponentialDecay(0.1, 2, 0.5)
    opt, theta = SGD(sched), np.zeros(1)
    for _ in range(6):
        opt.update({"w": theta}, {"w": np.ones(1)})
    np.testing.assert_allclose(theta, [-sum(0.1 * 0.5 ** (i / 2) for i in range(6))])
