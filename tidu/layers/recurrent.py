"""Recurrent layers over (N, T, D) inputs: SimpleRNN, LSTM, GRU, with Keras' weight layout.

    SimpleRNN  h_t = act(x_t W + h_{t−1} U + b)
    LSTM       [i, f, c̃, o] = x_t W + h_{t−1} U + b   (gates in this order, 4·units wide)
               i, f, o = σ(·),  c̃ = act(·),  c_t = f·c_{t−1} + i·c̃,  h_t = o·act(c_t)
    GRU        (reset_after=True, Keras' default; gates z, r, h, 3·units wide)
               xz, xr, xh = x_t W + b_in,   hz, hr, hh = h_{t−1} U + b_rec   (bias (2, 3·units))
               z = σ(xz + hz),  r = σ(xr + hr),  h̃ = act(xh + r·hh),  h_t = z·h_{t−1} + (1 − z)·h̃
               (reset_after=False: h̃ = act(xh + (r·h_{t−1}) U_h), one bias (3·units,))
with σ = recurrent_activation (sigmoid), act = activation (tanh), h_0 = c_0 = 0 unless
initial_state is given. Weights, in Keras' order: kernel (D, g·units), recurrent_kernel
(units, g·units), bias.

With the default activations (SimpleRNN: also relu, sigmoid, linear; GRU: reset_after=True)
the whole sequence runs in one fused op (tidu.functional: simple_rnn, lstm, gru, backprop
through time inside); other choices run a Python loop of elementary ops (correct, slower).
Outputs: the last h (N, units), or every h (N, T, units) with return_sequences;
return_state adds the final states: [output, h] ([output, h, c] for LSTM).
go_backwards reads the sequence from the end (and returns the outputs in that order, as Keras).
Not supported (a ValueError says so): dropout, recurrent_dropout, stateful, masking.

These layers have `activation` but no `pre_activation`: the activation is inside the
recurrence, so `activation_name` is None (nothing for a model to fuse with its loss).
"""
import numpy as np

import tidu.functional as F
from tidu import activations, backend, initializers, regularizers
from tidu.autograd import Tensor
from tidu.errors import ShapeError
from tidu.layers.base import Layer
from tidu.layers.core import ActivityRegularized
from tidu.layers.utils import (check_constraint, check_positive_int, serialize_activation,
                               serialize_constraint, serialize_initializer, serialize_regularizer,
                               set_kernel_and_bias_options)

__all__ = ["SimpleRNN", "LSTM", "GRU"]


class _UnitForgetBias:
    """LSTM bias initializer with unit_forget_bias: [init(u), ones(u), init(2u)] (Jozefowicz et
    al., 2015: a forget gate open at the start remembers)."""

    def __init__(self, initializer, units):
        self.initializer, self.units = initializer, units

    def __call__(self, shape, dtype=None):
        u, dtype = self.units, np.dtype(dtype or backend.floatx())
        return np.concatenate([self.initializer((u,), dtype), np.ones(u, dtype=dtype),
                               self.initializer((2 * u,), dtype)])


class _RNN(ActivityRegularized, Layer):
    """The shared arguments, weights, checks and output handling of the recurrent layers."""

    _gates = 1
    _n_states = 1

    def __init__(self, units, activation="tanh", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", kernel_regularizer=None, recurrent_regularizer=None,
                 bias_regularizer=None, activity_regularizer=None, kernel_constraint=None,
                 recurrent_constraint=None, bias_constraint=None, dropout=0.0,
                 recurrent_dropout=0.0, return_sequences=False, return_state=False,
                 go_backwards=False, stateful=False, unroll=False, **kwargs):
        cls = type(self).__name__
        units = check_positive_int(cls, "units", units)
        for name, value in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
            if value != 0:
                raise ValueError(f"{cls}: {name}={value!r} is not supported (only 0.0); put a "
                                 f"Dropout layer before or after the recurrent layer instead")
        if stateful:
            raise ValueError(f"{cls}: stateful=True is not supported; pass the final states of one "
                             f"call as initial_state of the next (return_state=True)")
        super().__init__(**kwargs)
        self.units = units
        self.activation = activations.get(activation)
        self.activation_name = None  # see the module docstring
        set_kernel_and_bias_options(self, cls, use_bias, kernel_initializer, bias_initializer,
                                    kernel_regularizer, bias_regularizer, activity_regularizer,
                                    kernel_constraint, bias_constraint)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.recurrent_constraint = check_constraint(cls, "recurrent_constraint", recurrent_constraint)
        self.return_sequences, self.return_state = bool(return_sequences), bool(return_state)
        self.go_backwards, self.unroll = bool(go_backwards), bool(unroll)

    def _label(self):
        return f"{type(self).__name__}({self.units}) '{self.name}'"

    def _bias_shape(self):
        return (self._gates * self.units,)

    def _bias_initializer(self):
        return self.bias_initializer

    def build(self, input_shape):
        if len(input_shape) != 3:
            raise ShapeError(f"{self._label()} expected input with 3 dimensions (batch, time, "
                             f"features), got shape {tuple(input_shape)}")
        d = self.input_dim = input_shape[-1]
        gu = self._gates * self.units
        self.kernel = self.add_weight("kernel", (d, gu), self.kernel_initializer,
                                      regularizer=self.kernel_regularizer,
                                      constraint=self.kernel_constraint)
        self.recurrent_kernel = self.add_weight("recurrent_kernel", (self.units, gu),
                                                self.recurrent_initializer,
                                                regularizer=self.recurrent_regularizer,
                                                constraint=self.recurrent_constraint)
        if self.use_bias:
            self.bias = self.add_weight("bias", self._bias_shape(), self._bias_initializer(),
                                        regularizer=self.bias_regularizer,
                                        constraint=self.bias_constraint)

    def _initial_states(self, inputs, initial_state):
        """[h0] or [h0, c0] as Tensors of shape (N, units), or Nones."""
        if initial_state is None:
            return [None] * self._n_states
        states = list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
        if len(states) != self._n_states:
            raise ValueError(f"{self._label()} expected {self._n_states} initial state(s), "
                             f"got {len(states)}")
        out = []
        for s in states:
            s = s if isinstance(s, Tensor) else Tensor(s)
            if s.shape != (inputs.shape[0], self.units):
                raise ShapeError(f"{self._label()} expected initial states of shape "
                                 f"{(inputs.shape[0], self.units)}, got {s.shape}")
            out.append(s)
        return out

    def call(self, inputs, training=False, initial_state=None):
        if inputs.ndim != 3 or inputs.shape[-1] != self.input_dim:
            raise ShapeError(f"{self._label()} expected input (batch, time, {self.input_dim}), "
                             f"got shape {inputs.shape}")
        if inputs.shape[1] == 0:
            raise ShapeError(f"{self._label()} expected at least one time step, "
                             f"got shape {inputs.shape}")
        states = self._initial_states(inputs, initial_state)
        x = inputs[:, ::-1] if self.go_backwards else inputs
        output, *final = self._run(x, states)
        self._regularize_activity(output)
        return [output, *final] if self.return_state else output

    def _sequence_or_last(self, hs):
        """The stacked h_t (N, T, units) or the last one."""
        return F.stack(hs, axis=1) if self.return_sequences else hs[-1]

    def compute_output_shape(self, input_shape):
        n, t, _ = input_shape
        out = (n, t, self.units) if self.return_sequences else (n, self.units)
        return [out] + [(n, self.units)] * self._n_states if self.return_state else out

    def get_config(self):
        cls = type(self).__name__
        return {**super().get_config(), "units": self.units,
                "activation": serialize_activation(self.activation), "use_bias": self.use_bias,
                "kernel_initializer": serialize_initializer(self.kernel_initializer),
                "recurrent_initializer": serialize_initializer(self.recurrent_initializer),
                "bias_initializer": serialize_initializer(self.bias_initializer),
                "kernel_regularizer": serialize_regularizer(self.kernel_regularizer),
                "recurrent_regularizer": serialize_regularizer(self.recurrent_regularizer),
                "bias_regularizer": serialize_regularizer(self.bias_regularizer),
                "activity_regularizer": serialize_regularizer(self.activity_regularizer),
                "kernel_constraint": serialize_constraint(cls, "kernel_constraint",
                                                          self.kernel_constraint),
                "recurrent_constraint": serialize_constraint(cls, "recurrent_constraint",
                                                             self.recurrent_constraint),
                "bias_constraint": serialize_constraint(cls, "bias_constraint", self.bias_constraint),
                "return_sequences": self.return_sequences, "return_state": self.return_state,
                "go_backwards": self.go_backwards, "unroll": self.unroll}


class SimpleRNN(_RNN):
    """h_t = activation(x_t·kernel + h_{t−1}·recurrent_kernel + bias); see the module docstring."""

    _fused_activations = ("tanh", "relu", "sigmoid", "linear")

    def _run(self, x, states):
        (h0,) = states
        name = activations.name_of(self.activation)
        if name in self._fused_activations:
            out = F.simple_rnn(x, self.kernel, self.recurrent_kernel, self.bias, h0=h0,
                               activation=name, return_sequences=self.return_sequences,
                               return_state=self.return_state)
            return tuple(out) if self.return_state else (out,)
        xw = F.dense(x, self.kernel, self.bias)
        h = h0 if h0 is not None else Tensor(np.zeros((x.shape[0], self.units), x.dtype))
        hs = []
        for t in range(x.shape[1]):
            h = self.activation(xw[:, t] + h @ self.recurrent_kernel)
            hs.append(h)
        return self._sequence_or_last(hs), h


class LSTM(_RNN):
    """Long short-term memory (Hochreiter & Schmidhuber, 1997); see the module docstring.

    unit_forget_bias=True (Keras' default) starts the forget-gate bias at 1."""

    _gates = 4
    _n_states = 2

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid",
                 unit_forget_bias=True, **kwargs):
        super().__init__(units, activation=activation, **kwargs)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.unit_forget_bias = bool(unit_forget_bias)

    def _bias_initializer(self):
        if self.unit_forget_bias:
            return _UnitForgetBias(self.bias_initializer, self.units)
        return self.bias_initializer

    def _run(self, x, states):
        h0, c0 = states
        if self.activation is activations.tanh and self.recurrent_activation is activations.sigmoid:
            out = F.lstm(x, self.kernel, self.recurrent_kernel, self.bias, h0=h0, c0=c0,
                         return_sequences=self.return_sequences, return_state=self.return_state)
            return tuple(out) if self.return_state else (out,)
        u, act, sig = self.units, self.activation, self.recurrent_activation
        xw = F.dense(x, self.kernel, self.bias)
        zeros = np.zeros((x.shape[0], u), x.dtype)
        h = h0 if h0 is not None else Tensor(zeros)
        c = c0 if c0 is not None else Tensor(zeros)
        hs = []
        for t in range(x.shape[1]):
            z = xw[:, t] + h @ self.recurrent_kernel
            i, f, g, o = sig(z[:, :u]), sig(z[:, u:2 * u]), act(z[:, 2 * u:3 * u]), sig(z[:, 3 * u:])
            c = f * c + i * g
            h = o * act(c)
            hs.append(h)
        return self._sequence_or_last(hs), h, c

    def get_config(self):
        return {**super().get_config(),
                "recurrent_activation": serialize_activation(self.recurrent_activation),
                "unit_forget_bias": self.unit_forget_bias}


class GRU(_RNN):
    """Gated recurrent unit (Cho et al., 2014) in Keras' form; see the module docstring."""

    _gates = 3

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid",
                 reset_after=True, **kwargs):
        super().__init__(units, activation=activation, **kwargs)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.reset_after = bool(reset_after)

    def _bias_shape(self):
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    def _run(self, x, states):
        (h0,) = states
        if (self.reset_after and self.activation is activations.tanh
                and self.recurrent_activation is activations.sigmoid):
            out = F.gru(x, self.kernel, self.recurrent_kernel, self.bias, h0=h0,
                        return_sequences=self.return_sequences, return_state=self.return_state)
            return tuple(out) if self.return_state else (out,)
        u, act, sig = self.units, self.activation, self.recurrent_activation
        U = self.recurrent_kernel
        if self.bias is None:
            b_in = b_rec = None
        elif self.reset_after:
            b_in, b_rec = self.bias[0], self.bias[1]
        else:
            b_in, b_rec = self.bias, None
        xw = F.dense(x, self.kernel, b_in)
        h = h0 if h0 is not None else Tensor(np.zeros((x.shape[0], u), x.dtype))
        hs = []
        for t in range(x.shape[1]):
            xt = xw[:, t]
            if self.reset_after:
                hu = F.dense(h, U, b_rec)
                z = sig(xt[:, :u] + hu[:, :u])
                r = sig(xt[:, u:2 * u] + hu[:, u:2 * u])
                hh = act(xt[:, 2 * u:] + r * hu[:, 2 * u:])
            else:
                hu = h @ U[:, :2 * u]
                z = sig(xt[:, :u] + hu[:, :u])
                r = sig(xt[:, u:2 * u] + hu[:, u:])
                hh = act(xt[:, 2 * u:] + (r * h) @ U[:, 2 * u:])
            h = z * h + (1 - z) * hh
            hs.append(h)
        return self._sequence_or_last(hs), h

    def get_config(self):
        return {**super().get_config(),
                "recurrent_activation": serialize_activation(self.recurrent_activation),
                "reset_after": self.reset_after}
