"""The autodiff engine: Tensor, Parameter, Function, backward, no_grad, gradcheck."""
from tidu.autograd.function import (Context, Function, backward, enable_grad, is_grad_enabled,
                                    no_grad, unbroadcast)
from tidu.autograd.tensor import Parameter, Tensor, pack
from tidu.autograd.gradcheck import gradcheck

__all__ = ["Context", "Function", "Parameter", "Tensor", "backward", "enable_grad", "gradcheck",
           "is_grad_enabled", "no_grad", "pack", "unbroadcast"]
