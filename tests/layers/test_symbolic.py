"""Symbolic tensors (tidu.layers.symbolic): the graph nodes of a functional model, and the
old import path that still gives them."""
import numpy as np
import pytest

from tidu.layers import Dense, Embedding, Input, Layer
from tidu.layers import input_layer, symbolic
from tidu.layers.symbolic import SymbolicTensor, is_symbolic


def test_calling_a_layer_on_a_symbolic_tensor_gives_its_output_shape():
    x = Input((5,))
    y = Dense(3)(x)
    assert isinstance(y, SymbolicTensor) and y.shape == (None, 3)
    assert y.inputs == [x] and y.layer.built


def test_is_symbolic():
    x = Input((2,))
    assert is_symbolic(x) and is_symbolic([x, x])
    assert not is_symbolic([]) and not is_symbolic(np.zeros(2)) and not is_symbolic([x, np.zeros(2)])


def test_input_layer_reexports_the_same_objects():
    assert input_layer.SymbolicTensor is symbolic.SymbolicTensor
    assert input_layer.symbolic_call is symbolic.symbolic_call


@pytest.mark.parametrize("cls, expected", [(Layer, False), (Dense, False), (Embedding, True)])
def test_accepts_integer_input(cls, expected):
    assert cls.accepts_integer_input is expected
