"""Recurrent kernels over a whole sequence: simple_rnn, gru (lstm: tidu.functional.recurrent_lstm).

Each is ONE Function that runs every timestep forward and backpropagates through time (BPTT)
inside its backward, so a sequence adds one node to the graph, not one per step. Inputs are
batch-major like Keras: x (N, T, D) -> outputs (N, T, units) with return_sequences, else the
last state (N, units). Weights use Keras' layouts and gate orders (below, with PyTorch's).

How the loops are made fast (PERF.md, lesson 1):
  - the input part of every step, x_t W + b for all t, is ONE GEMM over the (T·N, D+1)
    time-major input with a column of ones (the bias is W's last row), into a (T, N, gates·u)
    buffer; each step then adds its one fused gate GEMM h_{t−1} U into its contiguous slice
    (the LSTM does all of this on the transposes, hidden-major: see its docstring);
  - the gates are kept in an internal column order in which the ones treated alike sit next
    to each other, so one ufunc call covers them; gradients are put back in Keras' order;
  - the gates' σ and tanh come from one exp: their weight columns are pre-scaled by −1 (σ) or
    −2 (tanh), so a step computes e = exp(a), e += 1, 1/e (σ(z) = 1/(1 + e^−z),
    tanh(z) = 2σ(2z) − 1). On the project's CPU np.exp + two cheap ops takes ~0.65× the time
    of one np.tanh, and the LSTM forward is 10-20% faster than with σ = ½·tanh(½z) + ½;
  - backward works one timestep at a time, so that step's gates and gradients stay in cache
    (25-30% faster than computing the derivative factors for all timesteps at once), writing
    each step's pre-activation gradients into a (T, N, gates·u) buffer; then
    the kernel and bias gradients (Xᵀ dZ), the input gradient (dZ Wᵀ) and the recurrent-kernel
    gradient (H_{t−1}ᵀ dZ over the stacked states) are one GEMM each over all timesteps;
  - the multi-MB time-major buffers come from a small pool (_Workspace) and go back to it when
    the op's context is freed: a fresh one costs page faults on first touch (~2 ms for the
    7 MB gate buffer of LSTM(128) at N=128, T=28), more than the arithmetic done in it.
float32 stays float32 (scalars are Python numbers, buffers take the inputs' dtype).
"""
import numpy as np

from tidu import backend
from tidu.autograd.function import Function
from tidu.errors import ShapeError
from tidu.kernels import gru_steps
from tidu.functional.dense import column_sums
from tidu.functional.shape import getitem

__all__ = ["simple_rnn", "gru"]


# --- shared helpers ----------------------------------------------------------------------
class _Workspace:
    """Buffers on loan from a pool shared by all calls; returned when this object is dropped.

    Forward keeps its Workspace in ctx, so the buffers it saved for backward go back once the
    engine frees the context (after backward, or at once when no graph is recorded); backward's
    scratch goes back when backward returns. A buffer never escapes: outputs and gradients are
    fresh arrays. The pool holds at most _BUDGET bytes; when full it is emptied, so buffers of
    shapes no longer in use (another batch size or length) do not pile up.
    """

    _pool, _held, _BUDGET = {}, 0, 128 * 2**20     # (shape, dtype) -> free arrays; bytes held

    def __init__(self):
        self.arrays = []

    def empty(self, shape, dtype):
        cls = type(self)
        key = (backend.name, tuple(shape), np.dtype(dtype))  # a buffer stays on its backend
        try:
            a = cls._pool[key].pop()
            cls._held -= a.nbytes
        except (KeyError, IndexError):
            a = backend.xp.empty(shape, dtype=dtype)
        self.arrays.append((key, a))
        return a

    def __del__(self):
        cls = type(self)
        for key, a in self.arrays:
            if cls._held + a.nbytes > cls._BUDGET:
                cls._pool.clear()
                cls._held = 0
                if a.nbytes > cls._BUDGET:
                    continue
            cls._pool.setdefault(key, []).append(a)
            cls._held += a.nbytes
        self.arrays = []


def _check(op, x, W, U, b, b_shape, states, gates):
    """Validate shapes; return N, T, D, u."""
    if x.ndim != 3:
        raise ShapeError(f"{op}: expected input of shape (N, T, D), got shape {x.shape}")
    N, T, D = x.shape
    if T == 0:
        raise ShapeError(f"{op}: expected at least one timestep, got input of shape {x.shape}")
    if W.ndim != 2 or W.shape[0] != D or W.shape[1] % gates or W.shape[1] == 0:
        raise ShapeError(f"{op}: expected kernel of shape ({D}, {gates}·units) for input of shape "
                         f"{x.shape}, got {W.shape}")
    u = W.shape[1] // gates
    if U.shape != (u, gates * u):
        raise ShapeError(f"{op}: expected recurrent_kernel of shape {(u, gates * u)}, got {U.shape}")
    if b is not None and b.shape != b_shape(u):
        raise ShapeError(f"{op}: expected bias of shape {b_shape(u)}, got {b.shape}")
    for name, s in states:
        if s is not None and s.shape != (N, u):
            raise ShapeError(f"{op}: expected {name} of shape {(N, u)}, got {s.shape}")
    return N, T, D, u


def _columns(u, blocks):
    """Column indices that put the u-wide gate blocks of a kernel in the order `blocks`."""
    return backend.xp.asarray(np.concatenate([np.arange(k * u, (k + 1) * u) for k in blocks]))


def _time_major_with_ones(x, dtype, ws):
    """x (N, T, D) -> X1 (T·N, D+1), row t·N + n = [x[n, t], 1]: the bias rides in the GEMM."""
    N, T, D = x.shape
    X1 = ws.empty((T, N, D + 1), dtype)
    X1[..., :D] = x.transpose(1, 0, 2)
    X1[..., D] = 1
    return X1.reshape(T * N, D + 1)


def _kernel_with_bias(W, b, cols, dtype):
    """[W; b] (D+1, k), columns reordered by `cols` (None: kept); a zero row when b is None."""
    D, k = W.shape
    Wb = backend.xp.empty((D + 1, k), dtype=dtype)
    Wb[:D] = W if cols is None else W[:, cols]
    Wb[D] = 0 if b is None else (b if cols is None else b[cols])
    return Wb


def _scale(u, factors, dtype):
    """A (len(factors)·u,) row: each gate block's pre-scale (−1 before σ, −2 before tanh)."""
    return backend.xp.asarray(np.repeat(np.asarray(factors, dtype=dtype), u))


def _sigmoid_from_negated(a):
    """a = −z in place -> σ(z) = 1 / (1 + e^−z)."""
    xp = backend.xp
    xp.exp(a, out=a)
    a += 1
    xp.divide(1, a, out=a)


def _tanh_from_scaled(a, out):
    """a = −2z (overwritten) -> out = tanh(z) = 2 / (1 + e^−2z) − 1."""
    xp = backend.xp
    xp.exp(a, out=a)
    a += 1
    xp.divide(2, a, out=out)
    out -= 1


def _output(H, return_sequences):
    """From the time-major states H (T+1, N, u): (N, T, u) of h_1..h_T, or h_T (N, u)."""
    return H[1:].transpose(1, 0, 2).copy() if return_sequences else H[-1].copy()   # never a view


def _state_grad(gy, t, T, return_sequences):
    """The part of the upstream gradient that lands on h_t (None if none does)."""
    if return_sequences:
        return gy[:, t]
    return gy if t == T - 1 else None


def _weight_grads(X1, H, dZx, dZh, cols_x, cols_h, D, need):
    """Kernel, bias and recurrent-kernel gradients, one GEMM each over all timesteps:
    [dW; db] = X1ᵀ dZx,  dU = H_{t−1}ᵀ dZh (rows t·N + n); columns that forward reordered by
    cols_x, cols_h (None: not reordered) are put back in Keras' order."""
    xp = backend.xp
    need_W, need_U, need_b = need
    gW = gU = gb = None
    if need_W or need_b:
        gWb = X1.T @ dZx
        if cols_x is not None:
            gWb = gWb[:, xp.argsort(cols_x)]
        gW = gWb[:D] if need_W else None
        gb = gWb[D] if need_b else None
    if need_U:
        u = H.shape[-1]
        gU = H[:-1].reshape(-1, u).T @ dZh
        if cols_h is not None:
            gU = gU[:, xp.argsort(cols_h)]
    return gW, gU, gb


def _input_grad(dZx, Wx, N, T, D):
    """dL/dx = dZ Wᵀ as one GEMM over (T·N) rows, back to batch-major (N, T, D)."""
    gx = (dZx @ Wx.T).reshape(T, N, D)
    return backend.xp.ascontiguousarray(gx.transpose(1, 0, 2))


# --- SimpleRNN ---------------------------------------------------------------------------
_RNN_ACTIVATIONS = ("tanh", "relu", "sigmoid", "linear")


class SimpleRNN(Function):
    """h_t = φ(x_t W + h_{t−1} U + b), t = 1..T, h_0 = h0 or 0; φ = tanh, relu, sigmoid or linear.

    x (N, T, D), W = kernel (D, u), U = recurrent_kernel (u, u), b (u,), h0 (N, u).
    BPTT, with dh_t = gy_t + dz_{t+1} Uᵀ (gy_t the upstream gradient on h_t, dz_{T+1} = 0):
        dz_t = dh_t ⊙ φ'(z_t),  φ' from h_t: tanh 1 − h², relu [h > 0], sigmoid h(1 − h), linear 1
        dW = Σ_t x_tᵀ dz_t,  db = Σ_t Σ_n dz_t,  dU = Σ_t h_{t−1}ᵀ dz_t,
        dx_t = dz_t Wᵀ,  dh0 = dz_1 Uᵀ.
    """

    @staticmethod
    def forward(ctx, x, W, U, b, h0, activation="tanh", return_sequences=False):
        xp = backend.xp
        if activation not in _RNN_ACTIVATIONS:
            raise ValueError(f"simple_rnn: expected activation in {_RNN_ACTIVATIONS}, got {activation!r}")
        N, T, D, u = _check("simple_rnn", x, W, U, b, lambda u: (u,), [("h0", h0)], 1)
        dtype = xp.result_type(*[a for a in (x, W, U, b, h0) if a is not None])
        pre = {"tanh": -2, "sigmoid": -1}.get(activation, 1)   # a = pre·z feeds the exp form
        Wb = _kernel_with_bias(W, b, None, dtype)
        ws = ctx.ws = _Workspace()
        X1 = _time_major_with_ones(x, dtype, ws)
        Ws, Us = Wb * pre, U.astype(dtype) * pre
        H = ws.empty((T + 1, N, u), dtype)
        H[0] = 0 if h0 is None else h0
        xp.matmul(X1, Ws, out=H[1:].reshape(T * N, u))          # pre·(x_t W + b), all t
        tmp = xp.empty((N, u), dtype=dtype)
        with np.errstate(over="ignore"):
            for t in range(T):
                a = H[t + 1]
                if t or h0 is not None:
                    xp.matmul(H[t], Us, out=tmp)
                    a += tmp                                     # a = pre·z_t
                if activation == "tanh":
                    _tanh_from_scaled(a, a)
                elif activation == "sigmoid":
                    _sigmoid_from_negated(a)
                elif activation == "relu":
                    xp.maximum(a, 0, out=a)
        ctx.save_for_backward(X1, Wb, U.astype(dtype), H)
        ctx.activation, ctx.return_sequences, ctx.shape = activation, return_sequences, (N, T, D, u)
        return _output(H, return_sequences)

    @staticmethod
    def backward(ctx, gy):
        xp = backend.xp
        X1, Wb, U, H = ctx.saved
        N, T, D, u = ctx.shape
        need_x, need_W, need_U, need_b, need_h0 = ctx.needs_input_grad
        act, ws = ctx.activation, _Workspace()
        dZ = ws.empty((T, N, u), H.dtype)
        dh = xp.zeros((N, u), dtype=H.dtype)
        for t in range(T - 1, -1, -1):
            g = _state_grad(gy, t, T, ctx.return_sequences)
            if t < T - 1:
                xp.matmul(dZ[t + 1], U.T, out=dh)                # dz_{t+1} Uᵀ
            if g is not None:
                dh += g
            h, dz = H[t + 1], dZ[t]
            if act == "tanh":
                xp.multiply(h, h, out=dz)
                xp.subtract(1, dz, out=dz)                       # 1 − h²
            elif act == "sigmoid":
                xp.subtract(1, h, out=dz)
                dz *= h                                          # h(1 − h)
            elif act == "relu":
                xp.greater(h, 0, out=dz)                         # [h > 0]
            else:
                dz[...] = 1
            dz *= dh                                             # dz_t = dh_t ⊙ φ'
        gh0 = dZ[0] @ U.T if need_h0 else None
        dZ2 = dZ.reshape(T * N, u)
        gW, gU, gb = _weight_grads(X1, H, dZ2, dZ2, None, None, D, (need_W, need_U, need_b))
        gx = _input_grad(dZ2, Wb[:D], N, T, D) if need_x else None
        return gx, gW, gU, gb, gh0


def simple_rnn(x, kernel, recurrent_kernel, bias=None, h0=None, activation="tanh",
               return_sequences=False, return_state=False):
    """Keras' SimpleRNN over x (N, T, D): h_t = φ(x_t W + h_{t−1} U + b).

    kernel (D, u), recurrent_kernel (u, u), bias (u,) or None, h0 (N, u) or None (zeros);
    activation 'tanh', 'relu', 'sigmoid' or 'linear' (None means linear, as in Keras).
    Returns (N, T, u) with return_sequences else h_T (N, u); with return_state the tuple
    (outputs, h_T). PyTorch: nn.RNN(D, u, nonlinearity=..., batch_first=True) with
    weight_ih_l0 = kernelᵀ, weight_hh_l0 = recurrent_kernelᵀ, bias_ih_l0 = bias, bias_hh_l0 = 0.
    """
    y = SimpleRNN.apply(x, kernel, recurrent_kernel, bias, h0,
                        activation="linear" if activation is None else activation,
                        return_sequences=return_sequences)
    if not return_state:
        return y
    return y, (getitem(y, (slice(None), -1)) if return_sequences else y)


# --- GRU ---------------------------------------------------------------------------------
_GRU_X_ORDER = (2, 0, 1)        # the input part in internal order h, z, r (from Keras' z, r, h)
_GRU_X_PRESCALE = (-2, -1, -1)
_GRU_H_PRESCALE = (-1, -1, -2)  # the recurrent part keeps Keras' order z, r, h


class GRU(Function):
    """Keras' GRU with reset_after=True (its default; the cuDNN/PyTorch variant), t = 1..T:

        x W + b_x = [x_z, x_r, x_h],  h_{t−1} U + b_h = [r_z, r_r, r_h]    gates z, r, h
        z = σ(x_z + r_z),  r = σ(x_r + r_r)
        ĥ = tanh(x_h + r ⊙ r_h)
        h_t = z ⊙ h_{t−1} + (1 − z) ⊙ ĥ                                  h_0 = h0 or 0
    W (D, 3u), U (u, 3u), bias (2, 3u) = [b_x; b_h] (input row, recurrent row).
    BPTT, with dh_t = gy_t + the carry from t+1:
        dâ = dh_t ⊙ (1 − z) ⊙ (1 − ĥ²)          (â = x_h + r ⊙ r_h)
        dz' = dh_t ⊙ (h_{t−1} − ĥ) ⊙ z(1 − z),   dr' = dâ ⊙ r_h ⊙ r(1 − r)
        input side  dX_t = [dz', dr', dâ]:       dW = Σ x_tᵀ dX_t, db_x = Σ dX_t, dx_t = dX_t Wᵀ
        state side  dR_t = [dz', dr', dâ ⊙ r]:   dU = Σ h_{t−1}ᵀ dR_t, db_h = Σ dR_t
        carry to t−1: dh_t ⊙ z + dR_t Uᵀ;   dh0 is the carry out of t = 1.
    PyTorch's nn.GRU is the same cell in another gate order (r, z, n): its
    n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)) is ĥ and its h' = (1 − z) ⊙ n + z ⊙ h is h_t.
    So weight_ih_l0 = kernelᵀ and weight_hh_l0 = recurrent_kernelᵀ with the row blocks (z, r, h)
    reordered to (r, z, n); bias_ih_l0 = bias[0] and bias_hh_l0 = bias[1], reordered the same way.
    With numba installed (the extra `fast`) each timestep's element-wise work, forward and
    backward, is one pass of a kernel in tidu.kernels.recurrent (gru_steps; same formulas and
    buffers, the step GEMMs stay here); the NumPy loop is the reference and runs when
    tidu.kernels.enabled() is False.
    """

    @staticmethod
    def forward(ctx, x, W, U, b, h0, return_sequences=False):
        xp = backend.xp
        N, T, D, u = _check("gru", x, W, U, b, lambda u: (2, 3 * u), [("h0", h0)], 3)
        dtype = xp.result_type(*[a for a in (x, W, U, b, h0) if a is not None])
        cols = _columns(u, _GRU_X_ORDER)
        Wb = _kernel_with_bias(W, None if b is None else b[0], cols, dtype)   # [W; b_x], gates h, z, r
        U = U.astype(dtype, copy=False)
        Ws = Wb * _scale(u, _GRU_X_PRESCALE, dtype)
        sh = _scale(u, _GRU_H_PRESCALE, dtype)
        Us = U * sh
        bhs = xp.zeros(3 * u, dtype=dtype) if b is None else b[1] * sh
        ws = ctx.ws = _Workspace()
        X1 = _time_major_with_ones(x, dtype, ws)
        A = ws.empty((T, N, 3 * u), dtype)
        xp.matmul(X1, Ws, out=A.reshape(T * N, 3 * u))          # −2x_h, −x_z, −x_r, all t: one GEMM
        R = ws.empty((T, N, 3 * u), dtype)                      # −r_z, −r_r, −2r_h per step
        H = ws.empty((T + 1, N, u), dtype)
        H[0] = 0 if h0 is None else h0
        tmp = xp.empty((N, u), dtype=dtype)
        fast = gru_steps(dtype)                                 # numba kernels, or None
        with np.errstate(over="ignore"):
            for t in range(T):
                a, r_t = A[t], R[t]
                add = bool(t or h0 is not None)
                if add:
                    xp.matmul(H[t], Us, out=r_t)
                if fast:                                         # the lines below
                    fast.forward(a, r_t, bhs, add, H[t], H[t + 1])
                    continue
                if add:
                    r_t += bhs
                else:
                    r_t[...] = bhs
                a[:, u:] += r_t[:, :2 * u]
                _sigmoid_from_negated(a[:, u:])                  # z, r
                hh, z, r = a[:, :u], a[:, u:2 * u], a[:, 2 * u:]
                xp.multiply(r, r_t[:, 2 * u:], out=tmp)
                tmp += hh                                        # −2(x_h + r ⊙ r_h)
                _tanh_from_scaled(tmp, hh)                       # ĥ
                xp.subtract(H[t], hh, out=tmp)
                tmp *= z
                xp.add(hh, tmp, out=H[t + 1])                    # h_t = ĥ + z ⊙ (h_{t−1} − ĥ)
        ctx.save_for_backward(X1, Wb, U, A, R, H)
        ctx.return_sequences, ctx.shape, ctx.cols = return_sequences, (N, T, D, u), cols
        return _output(H, return_sequences)

    @staticmethod
    def backward(ctx, gy):
        xp = backend.xp
        X1, Wb, U, A, R, H = ctx.saved
        N, T, D, u = ctx.shape
        need_x, need_W, need_U, need_b, need_h0 = ctx.needs_input_grad
        A3, Rh, ws = A.reshape(T, N, 3, u), R[:, :, 2 * u:], _Workspace()
        G = ws.empty((T, N, 4, u), A.dtype)                     # [dâ, dz', dr', dâ ⊙ r] per step
        dh, tmp = xp.zeros((N, u), dtype=A.dtype), xp.empty((N, u), dtype=A.dtype)
        fast = gru_steps(A.dtype)
        for t in range(T - 1, -1, -1):
            gt = _state_grad(gy, t, T, ctx.return_sequences)
            if fast:            # dh += dR_{t+1} Uᵀ (tmp) and gt, the lines below, dh *= z
                fast.backward(dh, tmp, t < T - 1, gy if gt is None else gt, gt is not None,
                              A[t], R[t], H[t], G[t])
                if t or need_h0:
                    xp.matmul(G[t].reshape(N, 4 * u)[:, u:], U.T, out=tmp)   # dR_t Uᵀ
                continue
            if gt is not None:
                dh += gt
            hh, z, r = A3[t, :, 0], A3[t, :, 1], A3[t, :, 2]
            da, dz, dr, dar = G[t, :, 0], G[t, :, 1], G[t, :, 2], G[t, :, 3]
            xp.subtract(1, z, out=tmp)
            tmp *= dh                                            # dh ⊙ (1 − z)
            xp.multiply(hh, hh, out=da)
            xp.subtract(1, da, out=da)
            da *= tmp                                            # dâ = dh ⊙ (1 − z) ⊙ (1 − ĥ²)
            xp.multiply(tmp, z, out=dz)
            xp.subtract(H[t], hh, out=tmp)
            dz *= tmp                                    # dz' = dh ⊙ (h_{t−1} − ĥ) ⊙ z(1 − z)
            xp.multiply(da, r, out=dar)                          # dâ ⊙ r
            xp.subtract(1, r, out=dr)
            dr *= dar
            dr *= Rh[t]
            dr *= -0.5                                   # dr' = dâ ⊙ r_h ⊙ r(1 − r), Rh = −2 r_h
            if t or need_h0:
                xp.matmul(G[t].reshape(N, 4 * u)[:, u:], U.T, out=tmp)   # dR_t Uᵀ
                dh *= z
                dh += tmp                                        # carry: dh ⊙ z + dR_t Uᵀ
        if fast and need_h0:
            dh += tmp                                            # the carry out of t = 1
        gh0 = dh if need_h0 else None
        G2 = G.reshape(T * N, 4 * u)
        dX, dR = G2[:, :3 * u], G2[:, u:]
        gW, gU, gbx = _weight_grads(X1, H, dX, dR, ctx.cols, None, D, (need_W, need_U, need_b))
        gb = xp.stack([gbx, column_sums(dR)]) if need_b else None
        gx = _input_grad(dX, Wb[:D], N, T, D) if need_x else None
        return gx, gW, gU, gb, gh0


def gru(x, kernel, recurrent_kernel, bias=None, h0=None, return_sequences=False,
        return_state=False):
    """Keras' GRU (reset_after=True) over x (N, T, D); see the GRU Function for the equations
    and the mapping to PyTorch's nn.GRU.

    kernel (D, 3u), recurrent_kernel (u, 3u), bias (2, 3u) or None, gates z, r, h; h0 (N, u)
    or None (zeros). Returns (N, T, u) with return_sequences else h_T (N, u); with
    return_state the tuple (outputs, h_T) as Keras.
    """
    y = GRU.apply(x, kernel, recurrent_kernel, bias, h0, return_sequences=return_sequences)
    if not return_state:
        return y
    return y, (getitem(y, (slice(None), -1)) if return_sequences else y)
