"""The autodiff engine: Tensor, Parameter, Function, backward, no_grad, gradcheck, and the flat
view of many parameters."""
from tidu.autograd.function import (Context, Function, backward, enable_grad, is_grad_enabled,
                                    no_grad, unbroadcast)
from tidu.autograd.tensor import Parameter, Tensor
from tidu.autograd.flat import FlatView, pack
from tidu.autograd.gradcheck import gradcheck

__all__ = ["Context", "FlatView", "Function", "Parameter", "Tensor", "backward", "enable_grad", "gradcheck",
           "is_grad_enabled", "no_grad", "pack", "unbroadcast"]
