import numpy as np
import pytest

import tidu
import tidu.functional as F
from tidu import Function, Tensor, gradcheck
from tidu.errors import GradcheckError


class WrongBackward(Function):
    """y = x³ with a deliberately wrong derivative (2x instead of 3x²)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x ** 3

    @staticmethod
    def backward(ctx, gy):
        return gy * 2 * ctx.saved[0]


def test_passes_on_a_correct_op(rng):
    result = gradcheck(lambda a, b: (a * b).exp(), rng.standard_normal((3, 2)), rng.standard_normal(2))
    assert max(result.max_abs_error.values()) < 1e-7


def test_names_input_and_element_when_wrong(rng):
    with pytest.raises(GradcheckError, match=r"input 0 of shape \(2, 2\), element \(0, 0\)"):
        gradcheck(WrongBackward.apply, rng.standard_normal((2, 2)) + 3)


def test_random_direction_mode_catches_a_wrong_op(rng):
    with pytest.raises(GradcheckError, match="random direction"):
        gradcheck(WrongBackward.apply, rng.standard_normal((20, 20)) + 3, directions=2)
    gradcheck(lambda a: a.exp(), rng.standard_normal((20, 20)), directions=2)


def test_kinks_are_skipped_and_reported():
    x = np.array([-1.0, 0.0, 2.0])
    result = gradcheck(lambda a: F.maximum(a, 0.0), x)
    assert [tuple(int(i) for i in k) for k in result.kinks[0]] == [(1,)]


def test_integer_inputs_pass_through(rng):
    idx = np.array([2, 0])
    gradcheck(lambda a, i: a[i], rng.standard_normal((3, 2)), idx)


def test_refuses_an_output_downcast_to_float32(rng):
    with pytest.raises(TypeError, match="float32"):
        gradcheck(lambda a: a.astype("float32"), rng.standard_normal(3))
