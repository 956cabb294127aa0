"""Argument checks shared by every module: each returns the value (converted) or raises an error
that names where, which argument, what was expected and what was got, before any state changes.

    check_int("fit", "epochs", epochs, minimum=0)
    -> TypeError("fit: expected epochs to be an int, got epochs=2.5")
"""
import math
import numbers

import numpy as np

__all__ = ["check_choice", "check_int", "check_nonnegative", "check_number", "check_positive",
           "check_unit_interval"]


def check_number(owner, name, value):
    """A real number (not a bool, not NaN), as a float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: expected {name} to be a real number, got {name}={value!r}")
    value = float(value)
    if math.isnan(value):
        raise ValueError(f"{owner}: expected {name} to be a number, got {name}=nan")
    return value


def check_unit_interval(owner, name, value):
    """0 <= value < 1 (decay rates β, ρ)."""
    value = check_number(owner, name, value)
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{owner}: expected 0 <= {name} < 1, got {name}={value!r}")
    return value


def check_nonnegative(owner, name, value):
    """value >= 0 (ε, momentum, ...)."""
    value = check_number(owner, name, value)
    if value < 0:
        raise ValueError(f"{owner}: expected {name} >= 0, got {name}={value!r}")
    return value


def check_positive(owner, name, value):
    """value > 0."""
    value = check_number(owner, name, value)
    if value <= 0:
        raise ValueError(f"{owner}: expected {name} > 0, got {name}={value!r}")
    return value


def check_int(owner, name, value, minimum=1, allow_none=False):
    """An int >= minimum (NumPy integers too, bools not); None passes through with allow_none."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)):
        raise TypeError(f"{owner}: expected {name} to be an int, got {name}={value!r}")
    if value < minimum:
        raise ValueError(f"{owner}: expected {name} to be an int >= {minimum}, got {name}={value!r}")
    return int(value)


def check_choice(owner, name, value, choices):
    """One of `choices`."""
    if value not in choices:
        raise ValueError(f"{owner}: expected {name} to be one of {', '.join(map(repr, choices))}, "
                         f"got {name}={value!r}")
    return value
