"""ONNX converters of SimpleRNN, LSTM and GRU: ONNX's RNN, LSTM and GRU ops.

ONNX's recurrent ops read time-major input X (T, N, D) and weights per direction:
    W (1, g·H, D) = kernelᵀ,  R (1, g·H, H) = recurrent_kernelᵀ,  B (1, 2·g·H) = [Wb, Rb]
with the gates stacked in ONNX's order:
    RNN   one gate                    f = activation
    LSTM  i, o, f, c (Keras: i, f, c, o)   f = recurrent_activation, g = h = activation
    GRU   z, r, h (as Keras)              f = recurrent_activation, g = activation;
          reset_after=True is linear_before_reset=1 with Wb = bias[0], Rb = bias[1]
          (h̃ = g(x W_h + b_in + r·(h U_h + b_rec))); reset_after=False has one bias, Rb = 0.
tidu's batch-major (N, T, D) input is transposed to (T, N, D) (onnxruntime does not run the
ops' layout=1). Y (T, 1, N, H) becomes (N, T, H) for return_sequences, else Y_h (1, N, H)
becomes (N, H). go_backwards reverses the input in time, as tidu does (the outputs then run
from the last step to the first, as Keras's).

ONNX names the activations these ops may use; tidu's map onto them as
    sigmoid, tanh, relu, softsign, softplus: themselves    linear: Affine(α = 1, β = 0)
    hard_sigmoid: HardSigmoid(α = 1/6, β = ½)    elu: Elu(α = 1)    leaky_relu: LeakyRelu(α = 0.2)
activation_alpha / activation_beta hold the values of only the functions that take them, in
order (as onnxruntime reads them). Any other activation raises.
"""
import numpy as np

from tidu import activations as A
from tidu import layers as L
from tidu.export.onnx_graph import converter
from tidu.export.onnx_layers import _array, _label

__all__ = []

_RNN_ACTIVATIONS = {  # tidu function -> (ONNX name, alpha, beta); None: the op takes none
    A.sigmoid: ("Sigmoid", None, None), A.tanh: ("Tanh", None, None), A.relu: ("Relu", None, None),
    A.softsign: ("Softsign", None, None), A.softplus: ("Softplus", None, None),
    A.linear: ("Affine", 1.0, 0.0), A.hard_sigmoid: ("HardSigmoid", 1 / 6, 0.5),
    A.elu: ("Elu", 1.0, None), A.leaky_relu: ("LeakyRelu", 0.2, None),
}


def _activations(layer, fns):
    """The ops' activations, activation_alpha and activation_beta attributes for `fns`."""
    names, alphas, betas = [], [], []
    for fn in fns:
        if fn not in _RNN_ACTIVATIONS:
            known = sorted(A.name_of(f) for f in _RNN_ACTIVATIONS)
            raise ValueError(f"ONNX export: {_label(layer)}: activation {A.name_of(fn) or fn!r} "
                             f"has no equivalent in ONNX's recurrent ops; these do: "
                             f"{', '.join(known)}")
        name, alpha, beta = _RNN_ACTIVATIONS[fn]
        names.append(name)
        alphas += [] if alpha is None else [alpha]
        betas += [] if beta is None else [beta]
    return {"activations": names, "activation_alpha": alphas or None,
            "activation_beta": betas or None}


def _gates(w, order, units):
    """The columns of w (..., g·units) regrouped in `order` (indices of Keras's gates)."""
    return np.concatenate([w[..., k * units:(k + 1) * units] for k in order], axis=-1)


def _recurrent(op_type, gate_order, activations_of, biases_of, **attributes):
    """A converter for one recurrent layer class."""
    def convert(g, layer, x, shape):
        if layer.return_state:
            raise ValueError(f"ONNX export: {_label(layer)}: return_state=True is not supported "
                             f"(one output per layer)")
        u = layer.units
        W = _gates(_array(layer.kernel), gate_order, u).T[None]
        R = _gates(_array(layer.recurrent_kernel), gate_order, u).T[None]
        inputs = [g.const(W, "W"), g.const(R, "R")]
        if layer.bias is not None:
            wb, rb = biases_of(layer, _array(layer.bias))
            b = np.concatenate([_gates(wb, gate_order, u), _gates(rb, gate_order, u)])
            inputs.append(g.const(b[None], "B"))
        if layer.go_backwards:
            x = g.op("Slice", [x, g.ints([-1], "starts"), g.ints([np.iinfo(np.int64).min], "ends"),
                               g.ints([1], "axes"), g.ints([-1], "steps")])
        xt = g.op("Transpose", [x], perm=[1, 0, 2])
        extra = {k: v(layer) if callable(v) else v for k, v in attributes.items()}
        y, y_h = g.op(op_type, [xt, *inputs], outputs=2, hidden_size=u,
                      **_activations(layer, activations_of(layer)), **extra)
        if layer.return_sequences:
            y = g.op("Squeeze", [y, g.ints([1], "axes")])
            return g.op("Transpose", [y], perm=[1, 0, 2])
        return g.op("Squeeze", [y_h, g.ints([0], "axes")])
    return convert


def _one_bias(layer, bias):
    return bias, np.zeros_like(bias)


def _gru_biases(layer, bias):
    return (bias[0], bias[1]) if layer.reset_after else _one_bias(layer, bias)


converter(L.SimpleRNN)(_recurrent("RNN", [0], lambda l: [l.activation], _one_bias))
converter(L.LSTM)(_recurrent(
    "LSTM", [0, 3, 1, 2],
    lambda l: [l.recurrent_activation, l.activation, l.activation], _one_bias))
converter(L.GRU)(_recurrent(
    "GRU", [0, 1, 2], lambda l: [l.recurrent_activation, l.activation], _gru_biases,
    linear_before_reset=lambda l: int(l.reset_after)))
