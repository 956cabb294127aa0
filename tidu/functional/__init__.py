"""Every differentiable op of tidu, on Tensors: a Function class each, a module per family.

    import tidu.functional as F
    y = F.relu(F.dense(x, W, b))
"""
from tidu.functional.math import *  # noqa: F401,F403
from tidu.functional.dense import *  # noqa: F401,F403
from tidu.functional.activations import *  # noqa: F401,F403
from tidu.functional.losses import *  # noqa: F401,F403
from tidu.functional.conv import *  # noqa: F401,F403
from tidu.functional.norm import *  # noqa: F401,F403
from tidu.functional.dropout import *  # noqa: F401,F403
from tidu.functional.embedding import *  # noqa: F401,F403
from tidu.functional.recurrent import *  # noqa: F401,F403
