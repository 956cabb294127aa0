"""Optional compiled fast paths (numba, the extra `fast`) and the one switch that turns them off.

    kernels.enabled()          True when the fast paths run: the switch is on (the environment
                               variable TIDU_FAST is not "0", and set_enabled(False) was not
                               called) and numba imports
    kernels.set_enabled(flag)  turn them on or off in this process; returns the previous setting
    lstm_steps(dtype)          the LSTM's per-timestep kernels (kernels.recurrent), or None
    gru_steps(dtype)           the GRU's, the same way (kernels.recurrent), or None
    update_kernel(name)        an optimizer's one-pass update (kernels.optimizers), or None
    pool_kernels(dtype)        max and average pooling, forward and backward (kernels.pooling),
                               or None
    conv_kernels(dtype)        the 2-D convolution's input gradient, gathered in one pass
                               (kernels.conv), or None
    one_channel_conv_pool(dtype)
                               a one-channel convolution + bias + 2×2 max pool and its kernel
                               and bias gradients, computed directly (kernels.conv_pool), or None
    elementwise_kernels(dtype) ReLU in one pass, alone, in place or after a Dense layer's bias,
                               and its gradient (kernels.elementwise), or None
    sparse_input_kernels(dtype)
                               a Dense layer's x W + b (and ReLU) over x's nonzeros alone, for
                               inputs that are mostly zeros, at inference on one core
                               (kernels.sparse), or None
    kernels.halves             a batch's two halves on the two cores at once, each with one
                               BLAS thread (the LSTM's fast path; needs threadpoolctl)
    kernels.split              a conv model's layers at inference, one compiled call each, the
                               batch's halves on numba's two threads (tidu.training.split_predict)
    kernels.blas               NumPy's own cblas gemm, called from compiled code (the LSTM's
                               sequence loops, kernels.split)

Nothing above this package depends on it: each op asks one function here and runs its NumPy
code, the reference, whenever the answer is None. The switch is asked before numba is imported,
so with TIDU_FAST=0 numba is never loaded.
"""
from tidu.kernels.switch import enabled, set_enabled
from tidu.kernels.recurrent import gru_steps, lstm_steps
from tidu.kernels.optimizers import update_kernel
from tidu.kernels.pooling import pool_kernels
from tidu.kernels.conv import conv_kernels
from tidu.kernels.conv_pool import one_channel_conv_pool
from tidu.kernels.elementwise import elementwise_kernels
from tidu.kernels.sparse import sparse_input_kernels

__all__ = ["enabled", "set_enabled", "lstm_steps", "gru_steps", "update_kernel", "pool_kernels",
           "conv_kernels", "one_channel_conv_pool", "elementwise_kernels", "sparse_input_kernels"]
