"""Argument checks and (de)serialization shared by the layer families."""
import numpy as np

from tidu import activations, initializers, regularizers
from tidu._checks import check_int, check_unit_interval
from tidu._registry import to_config
from tidu.errors import ShapeError


def check_positive_int(layer, name, value):
    """An int >= 1 (units, filters, ...)."""
    return check_int(layer, name, value, minimum=1)


def check_rate(layer, name, value):
    """0 <= value < 1 (dropout rates)."""
    return check_unit_interval(layer, name, value)


def normalize_tuple(layer, name, value, n=2):
    """An int or n ints -> a tuple of n positive ints (kernel_size, strides, pool_size)."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (value,) * n
    try:
        value = tuple(value)
    except TypeError:
        raise ValueError(f"{layer}: expected {name} to be an int or a tuple of {n} ints, "
                         f"got {value!r}") from None
    if len(value) != n or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                  and v > 0 for v in value):
        raise ValueError(f"{layer}: expected {name} to be a positive int or a tuple of {n} "
                         f"positive ints, got {value!r}")
    return tuple(int(v) for v in value)


def normalize_padding(layer, padding):
    p = padding.lower() if isinstance(padding, str) else padding
    if p not in ("valid", "same"):
        raise ValueError(f"{layer}: expected padding 'valid' or 'same', got {padding!r}")
    return p


def check_data_format(layer, data_format):
    if data_format in (None, "channels_last"):
        return "channels_last"
    if data_format == "channels_first":
        raise ValueError(f"{layer}: data_format='channels_first' is not supported; tidu is "
                         f"channels-last (N, H, W, C): transpose the input with "
                         f"x.transpose(0, 2, 3, 1)")
    raise ValueError(f"{layer}: expected data_format 'channels_last' or None, got {data_format!r}")


def conv_output_length(length, window, stride, padding):
    """Output length of a sliding window: 'valid' ⌊(L − k)/s⌋ + 1, 'same' ⌈L/s⌉ (None stays)."""
    if length is None:
        return None
    if padding == "same":
        return -(-length // stride)
    return (length - window) // stride + 1


def check_constraint(layer, name, constraint):
    if constraint is not None and not callable(constraint):
        raise TypeError(f"{layer}: expected {name} to be a callable (array -> array) or None, "
                        f"got {constraint!r}")
    return constraint


def serialize_initializer(init):
    return initializers.serialize(init)


def serialize_regularizer(reg):
    return None if reg is None else regularizers.serialize(reg)


def serialize_constraint(layer, name, constraint):
    if constraint is None:
        return None
    if hasattr(constraint, "get_config"):
        return to_config(constraint)
    raise TypeError(f"{layer}: {name}={constraint!r} cannot be serialized (no get_config)")


def serialize_activation(fn):
    return activations.serialize(fn)


# --- the kernel/bias arguments of Dense, Conv2D and Maxout, in Keras' order -----------------
def set_kernel_and_bias_options(layer, owner, use_bias, kernel_initializer, bias_initializer,
                                kernel_regularizer, bias_regularizer, activity_regularizer,
                                kernel_constraint, bias_constraint):
    """Store the arguments on `layer`, resolved: initializers.get, regularizers.get, and
    constraints checked (errors name `owner`, e.g. "Dense"); layer.bias is None until built."""
    layer.use_bias, layer.bias = bool(use_bias), None
    layer.kernel_initializer = initializers.get(kernel_initializer)
    layer.bias_initializer = initializers.get(bias_initializer)
    layer.kernel_regularizer = regularizers.get(kernel_regularizer)
    layer.bias_regularizer = regularizers.get(bias_regularizer)
    layer.activity_regularizer = regularizers.get(activity_regularizer)
    layer.kernel_constraint = check_constraint(owner, "kernel_constraint", kernel_constraint)
    layer.bias_constraint = check_constraint(owner, "bias_constraint", bias_constraint)


def add_kernel_and_bias(layer, kernel_shape, bias_shape):
    """build(): layer.kernel, and layer.bias when layer.use_bias, each with its initializer,
    regularizer and constraint."""
    layer.kernel = layer.add_weight("kernel", kernel_shape, layer.kernel_initializer,
                                    regularizer=layer.kernel_regularizer,
                                    constraint=layer.kernel_constraint)
    if layer.use_bias:
        layer.bias = layer.add_weight("bias", bias_shape, layer.bias_initializer,
                                      regularizer=layer.bias_regularizer,
                                      constraint=layer.bias_constraint)


def kernel_and_bias_config(layer, owner):
    """get_config()'s entries for the arguments of set_kernel_and_bias_options, serialized."""
    return {"use_bias": layer.use_bias,
            "kernel_initializer": serialize_initializer(layer.kernel_initializer),
            "bias_initializer": serialize_initializer(layer.bias_initializer),
            "kernel_regularizer": serialize_regularizer(layer.kernel_regularizer),
            "bias_regularizer": serialize_regularizer(layer.bias_regularizer),
            "activity_regularizer": serialize_regularizer(layer.activity_regularizer),
            "kernel_constraint": serialize_constraint(owner, "kernel_constraint",
                                                      layer.kernel_constraint),
            "bias_constraint": serialize_constraint(owner, "bias_constraint",
                                                    layer.bias_constraint)}


def check_ndim(layer, inputs, ndim, what):
    """ShapeError unless `inputs` has `ndim` dimensions (an int) or at least ndim[0] (a tuple)."""
    shape = tuple(inputs.shape) if hasattr(inputs, "shape") else tuple(inputs)
    what = what.strip("()")      # written with or without its brackets by the callers
    if isinstance(ndim, tuple):
        if len(shape) < ndim[0]:
            raise ShapeError(f"{layer} expected input with at least {ndim[0]} dimensions "
                             f"({what}), got shape {shape}")
    elif len(shape) != ndim:
        raise ShapeError(f"{layer} expected input with {ndim} dimensions ({what}), got shape {shape}")


def layer_label(layer, args=""):
    """"Dense(512) 'dense_1'": how error messages name a layer."""
    return f"{type(layer).__name__}{args} '{layer.name}'"
