"""tidu (梯度, "gradient"): deep learning on NumPy with its own reverse-mode autodiff,
a Keras-compatible API, every classic optimizer, and parameter-server training."""
from tidu.version import __version__

from tidu import backend
from tidu.backend import floatx, set_floatx, set_backend
from tidu.autograd import Function, Parameter, Tensor, enable_grad, gradcheck, no_grad
from tidu.errors import GradcheckError, ModelFileError, NotBuiltError, ShapeError
from tidu import functional
from tidu import (activations, callbacks, data, datasets, initializers, layers, losses, metrics,
                  models, optimizers, regularizers, utils)
from tidu.models.gradcheck import gradcheck_model

# Keras 3's top-level names, so that `import tidu as keras` carries Keras code unchanged.
from tidu.models import Model, Sequential
from tidu.layers import Input
from tidu import saving

__all__ = ["Input", "Model", "Sequential", "activations", "callbacks", "datasets", "initializers",
           "layers", "losses", "metrics", "models", "optimizers", "regularizers", "saving", "utils",
           "backend", "functional", "data", "Tensor", "Parameter", "Function", "gradcheck",
           "gradcheck_model", "no_grad", "enable_grad", "floatx", "set_floatx", "set_backend",
           "GradcheckError", "ModelFileError", "NotBuiltError", "ShapeError", "__version__"]
