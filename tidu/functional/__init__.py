"""Every differentiable op of tidu, on Tensors: a Function class each, a module per family.

    import tidu.functional as F
    y = F.relu(F.dense(x, W, b))
"""
from tidu.functional.math import *  # noqa: F401,F403
from tidu.functional.reductions import *  # noqa: F401,F403
from tidu.functional.shape import *  # noqa: F401,F403
from tidu.functional.dense import *  # noqa: F401,F403
from tidu.functional.activations import *  # noqa: F401,F403
from tidu.functional.losses import *  # noqa: F401,F403
from tidu.functional.sample_losses import *  # noqa: F401,F403
from tidu.functional.conv import *  # noqa: F401,F403
from tidu.functional.conv_pool import *  # noqa: F401,F403
from tidu.functional.conv1d import *  # noqa: F401,F403
from tidu.functional.conv_transpose import *  # noqa: F401,F403
from tidu.functional.norm import *  # noqa: F401,F403
from tidu.functional.dropout import *  # noqa: F401,F403
from tidu.functional.embedding import *  # noqa: F401,F403
from tidu.functional.recurrent import *  # noqa: F401,F403
from tidu.functional.recurrent_lstm import *  # noqa: F401,F403
from tidu.functional.resample import *  # noqa: F401,F403

import sys as _sys  # noqa: E402

from tidu.autograd.tensor import install_ops as _install_ops  # noqa: E402

_install_ops(_sys.modules[__name__])  # Tensor's operators and methods are these ops
