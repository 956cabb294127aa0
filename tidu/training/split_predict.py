"""A convolutional model's batch predicted layer by layer, each layer (or a Conv2D and the
MaxPooling2D after it) one compiled call with the batch's two halves at once on numba's two
threads (tidu.kernels.split, the extra `fast`): tidu.training.loops._predict_batch's first
choice for predict_on_batch and predict's batches (not for predict's pairs of batches).

    plan(steps)      [Stage, ...] of a model's steps (Model.steps, tidu.models.graph) where
                     every layer is one of the kinds below, else None
    run(stages, x)   the output for the batch x, or None where the split does not apply (a
                     batch under MIN_ROWS, the fast paths off, one CPU, NumPy's BLAS on one
                     thread, another split or tidu.kernels.halves.run going on, weights of
                     another dtype than x's) or x does not fit the layers (their own path
                     then raises their own error); nothing is changed then

Stage kinds: "conv" (Conv2D with activation linear or relu, and the MaxPooling2D that tiles
its output when one follows), "dense" (Dense on (batch, features), activation linear, relu
or softmax), "flatten", "reshape", "identity" (InputLayer, and Dropout, which is the identity
at inference). The outputs agree with the layers' own path to float rounding
(tests/kernels/test_split.py).
"""
from collections import namedtuple

import numpy as np

from tidu import activations
from tidu.errors import ShapeError
from tidu.functional.conv import conv2d_geometry
from tidu.kernels import halves
from tidu.kernels.split import ACTS, split_kernels
from tidu.layers import Conv2D, Dense, Dropout, Flatten, InputLayer, MaxPooling2D, Reshape

MIN_ROWS = 2            # each half at least one row
Stage = namedtuple("Stage", "kind layer pool act")


def plan(steps):
    """[Stage, ...] for a chain of steps (Model.steps) whose layers the split computes, or None
    (None too for no steps: a subclassed model)."""
    if not steps:
        return None
    stages, i = [], 0
    while i < len(steps):
        layer, inputs, kwargs = steps[i]
        if inputs != (i - 1,) or kwargs:
            return None
        kind = type(layer)
        if kind in (InputLayer, Dropout):
            stages.append(Stage("identity", layer, None, 0))
        elif kind in (Flatten, Reshape):
            stages.append(Stage("flatten" if kind is Flatten else "reshape", layer, None, 0))
        elif kind is Dense:
            act = _act(layer.activation, ("linear", "relu", "softmax"))
            if act is None:
                return None
            stages.append(Stage("dense", layer, None, act))
        elif kind is Conv2D:
            act = _act(layer.activation, ("linear", "relu"))
            if act is None:
                return None
            pool = None
            if i + 1 < len(steps) and type(steps[i + 1].layer) is MaxPooling2D and \
                    steps[i + 1].inputs == (i,) and not steps[i + 1].kwargs:
                pool = steps[i + 1].layer
                if pool.padding != "valid" or tuple(pool.strides) != tuple(pool.pool_size):
                    return None
                i += 1
            stages.append(Stage("conv", layer, pool, act))
        else:
            return None
        i += 1
    return stages


def _act(fn, allowed):
    """The kernels' code of activation fn if it is one of `allowed`, else None."""
    for name in allowed:
        if fn is getattr(activations, name):
            return ACTS[name]
    return None


def run(stages, x):
    """The output of the stages for the batch x (a NumPy array), or None (module docstring)."""
    if not stages or len(x) < MIN_ROWS or x.dtype.name not in ("float32", "float64"):
        return None
    fast = split_kernels(x.dtype)
    # halves.spans: two CPUs, NumPy's BLAS found (threadpoolctl) on two threads, no run going on
    if fast is None or halves.spans(halves.MIN_ROWS) is None or \
            not all(_dtypes_match(s, x.dtype) for s in stages):
        return None
    with halves.alone() as alone:
        if not alone:
            return None
        for s in stages:
            x = _stage(fast, s, x)
            if x is None:
                return None
    return x


def _dtypes_match(stage, dtype):
    """Whether the stage's weights have the batch's dtype (else the layers' own path casts)."""
    if stage.kind not in ("dense", "conv"):
        return True
    bias = stage.layer.bias
    return stage.layer.kernel.data.dtype == dtype and (bias is None or bias.data.dtype == dtype)


def _stage(fast, s, x):
    """The stage's output for x, or None where x does not fit its layer."""
    layer = s.layer
    if s.kind == "identity":
        return x
    if s.kind == "flatten":
        return x.reshape(len(x), -1)
    if s.kind == "reshape":
        try:
            return x.reshape(layer.compute_output_shape(x.shape))
        except ShapeError:
            return None
    K = layer.kernel.data
    b = np.zeros(K.shape[-1], K.dtype) if layer.bias is None else layer.bias.data
    if s.kind == "dense":
        if x.ndim != 2 or x.shape[1] != K.shape[0]:
            return None
        return fast.dense(x, K, b, s.act)
    if x.ndim != 4 or x.shape[3] != K.shape[2]:
        return None
    try:
        out_hw, pads = conv2d_geometry(x.shape, K.shape, layer.strides, layer.padding,
                                       layer.dilation_rate)
    except ShapeError:
        return None
    pool = (1, 1) if s.pool is None else tuple(s.pool.pool_size)
    if out_hw[0] < pool[0] or out_hw[1] < pool[1]:
        return None                          # the pool layer's own error, on the layers' path
    return fast.conv(x, K, b, layer.strides, layer.dilation_rate, pads, out_hw, pool, s.act)
