"""The LSTM over a whole sequence: lstm, one Function (see tidu.functional.recurrent for what
the recurrent ops share: one node per sequence, BPTT inside backward, Keras' layouts)."""
import numpy as np

from tidu import backend
from tidu.autograd.function import Function
from tidu.functional.recurrent import (_Workspace, _check, _columns, _kernel_with_bias, _scale,
                                       _sigmoid_from_negated)
from tidu.functional.shape import getitem
from tidu.kernels import lstm_steps

__all__ = ["lstm"]

_LSTM_ORDER = (3, 0, 1, 2)          # internal gate order o, i, f, g from Keras' i, f, c, o
_LSTM_PRESCALE = (-1, -1, -1, -2)   # σ, σ, σ, tanh


class LSTM(Function):
    """Keras' LSTM (recurrent activation σ, activation tanh), t = 1..T:

        z_t = x_t W + h_{t−1} U + b                  W (D, 4u), U (u, 4u), b (4u,): gates i, f, c, o
        i = σ(z_i),  f = σ(z_f),  g = tanh(z_c),  o = σ(z_o)
        c_t = f ⊙ c_{t−1} + i ⊙ g
        h_t = o ⊙ tanh(c_t)                          h_0 = h0 or 0,  c_0 = c0 or 0
    BPTT, with dh_t = gy_t + dz_{t+1} Uᵀ and dc_t = gc_t + dc_{t+1}-carry (gy_t, gc_t upstream):
        dc_t += dh_t ⊙ o ⊙ (1 − tanh² c_t)
        dz_o = dh_t ⊙ tanh(c_t) ⊙ o(1 − o)           dz_i = dc_t ⊙ g ⊙ i(1 − i)
        dz_f = dc_t ⊙ c_{t−1} ⊙ f(1 − f)             dz_c = dc_t ⊙ i ⊙ (1 − g²)
        carry to t−1: dc_t ⊙ f;   dh0 = dz_1 Uᵀ,  dc0 = dc_1 ⊙ f_1
        dW = Σ_t x_tᵀ dz_t,  db = Σ dz_t,  dU = Σ_t h_{t−1}ᵀ dz_t,  dx_t = dz_t Wᵀ.
    With return_state the output is (N, T_out + 1, u): the outputs, then c_T as the last row.

    The loop runs on the transposes (hidden-major: a state is (u, N), a step's gates (4u, N)),
    so each gate block is contiguous rows, and a step is one GEMM, z_tᵀ = [U; W; b]ᵀ [h_{t−1};
    x_t; 1]ᵀ, (4u, u + D + 1) by (u + D + 1, N): the states and the input with its ones row share
    one buffer S (u + D + 1, T + 1, N), S[:, t] = [h_{t−1}; x_t; 1]ᵀ. OpenBLAS (SkylakeX kernels,
    2 threads) runs Uᵀ h_{t−1}ᵀ, (4u, u) by (u, N), in ~90 µs at N = u = 128, where h_{t−1} U,
    (N, u) by (u, 4u), took ~160 µs on one thread. S and the pre-activation gradients dZ (4u, T,
    N) keep time in the middle, so that all the weight gradients are one GEMM over all (t, n),
    [dU; dW; db]ᵀ = dZ S[:, :T]ᵀ (the LSTM(128) benchmark's step ~13.9 ms against ~15.3 with these
    GEMMs apart: 12 interleaved runs in one process, AVX-512 EPYC, 2 OpenBLAS threads; this
    orientation 3.5 ms against 4.3 for S[:, :T] dZᵀ, the same sums). With numba (the extra
    `fast`) each timestep's element-wise work, forward and backward, is one kernel pass in
    tidu.kernels.recurrent (same formulas; a vectorized float32 exp within ~1 ulp of np.exp);
    the NumPy loop, the reference, runs when tidu.kernels.enabled() is False.
    """

    @staticmethod
    def forward(ctx, x, W, U, b, h0, c0, return_sequences=False, return_state=False):
        xp = backend.xp
        N, T, D, u = _check("lstm", x, W, U, b, lambda u: (4 * u,), [("h0", h0), ("c0", c0)], 4)
        dtype = xp.result_type(*[a for a in (x, W, U, b, h0, c0) if a is not None])
        cols, s = _columns(u, _LSTM_ORDER), _scale(u, _LSTM_PRESCALE, dtype)
        Wb = _kernel_with_bias(W, b, cols, dtype)               # [W; b], gates o, i, f, g
        Ui = U[:, cols].astype(dtype, copy=False)
        A = xp.concatenate([(Ui * s).T, (Wb * s).T], axis=1)    # s·[U; W; b]ᵀ (4u, u + D + 1)
        ws = ctx.ws = _Workspace()
        S = ws.empty((u + D + 1, T + 1, N), dtype)              # S[:, t] = [h_{t−1}; x_t; 1]ᵀ
        H, X1 = S[:u], S[u:, :T]                                # H[:, t] = h_tᵀ, X1[:, t] = [x_t; 1]ᵀ
        X1[:D] = x.transpose(2, 1, 0)
        X1[D] = 1
        G = ws.empty((T, 4 * u, N), dtype)
        C = ws.empty((T + 1, u, N), dtype)
        K = ws.empty((T, u, N), dtype)                          # tanh(c_t)ᵀ
        H[:, 0] = 0 if h0 is None else h0.T
        C[0] = 0 if c0 is None else c0.T
        fast = lstm_steps(dtype)                                # numba kernels, or None
        ig = xp.empty((u, N), dtype=dtype)
        with np.errstate(over="ignore"):
            for t in range(T):
                a = G[t]
                if t or h0 is not None:                          # a = s·z_tᵀ, one GEMM
                    xp.matmul(A, S[:, t], out=a)
                else:                                            # h_0 = 0
                    xp.matmul(A[:, u:], X1[:, 0], out=a)
                if fast:                                         # the lines below
                    fast.forward(a, C[t], C[t + 1], K[t], H, t)
                    continue
                _sigmoid_from_negated(a)                         # σ(z_o), σ(z_i), σ(z_f), σ(2 z_c)
                o, i, f, g = a[:u], a[u:2 * u], a[2 * u:3 * u], a[3 * u:]
                g *= 2
                g -= 1                                           # g = 2σ(2 z_c) − 1 = tanh(z_c)
                c = C[t + 1]
                xp.multiply(f, C[t], out=c)
                xp.multiply(i, g, out=ig)
                c += ig                                          # c_t = f ⊙ c_{t−1} + i ⊙ g
                xp.tanh(c, out=K[t])
                xp.multiply(o, K[t], out=H[:, t + 1])            # h_t = o ⊙ tanh(c_t)
        ctx.save_for_backward(S, Wb, Ui, G, C, K)
        ctx.flags, ctx.shape, ctx.cols = (return_sequences, return_state), (N, T, D, u), cols
        if return_sequences:
            y = H[:, 1:].transpose(2, 1, 0)                      # (N, T, u)
        else:
            y = H[:, T].T[:, None]                               # (N, 1, u)
        if not return_state:
            return xp.ascontiguousarray(y if return_sequences else y[:, 0])    # never a view
        Y = xp.empty((N, y.shape[1] + 1, u), dtype=dtype)
        Y[:, :-1] = y
        Y[:, -1] = C[-1].T
        return Y

    @staticmethod
    def backward(ctx, gy):
        xp = backend.xp
        S, Wb, Ui, G, C, K = ctx.saved
        N, T, D, u = ctx.shape
        return_sequences, return_state = ctx.flags
        need_x, need_W, need_U, need_b, need_h0, need_c0 = ctx.needs_input_grad
        dtype = G.dtype
        dc = xp.zeros((u, N), dtype=dtype)
        if return_state:
            dc += gy[:, -1].T                                    # gc_T
            gy = gy[:, :-1] if return_sequences else gy[:, 0]
        ws = _Workspace()
        gyT = ws.empty((T if return_sequences else 1, u, N), dtype)   # upstream gradients, transposed
        gyT[...] = gy.transpose(1, 2, 0) if return_sequences else gy.T
        first = T - gyT.shape[0]                                 # the first step that gets one
        dZ = ws.empty((4 * u, T, N), dtype)                      # dZ[:, t] = dz_tᵀ, gates o, i, f, c
        dh, tmp = xp.zeros((u, N), dtype=dtype), xp.empty((u, N), dtype=dtype)
        Q = xp.empty((4 * u, N), dtype=dtype)
        fast = lstm_steps(dtype)
        for t in range(T - 1, -1, -1):                          # one step's data stays in cache
            if t < T - 1:
                xp.matmul(Ui, dZ[:, t + 1], out=dh)              # (dz_{t+1} Uᵀ)ᵀ
            if t >= first:
                dh += gyT[t - first]
            if fast:                                             # the lines below
                fast.backward(dh, dc, G[t], K[t], C[t], dZ, t)
                continue
            a, k, dz = G[t], K[t], dZ[:, t]
            o, i, f, g = a[:u], a[u:2 * u], a[2 * u:3 * u], a[3 * u:]
            xp.subtract(1, a[:3 * u], out=Q[:3 * u])
            Q[:3 * u] *= a[:3 * u]                               # σ(1 − σ) for o, i, f
            xp.multiply(g, g, out=Q[3 * u:])
            xp.subtract(1, Q[3 * u:], out=Q[3 * u:])             # 1 − g²
            xp.multiply(k, k, out=tmp)
            xp.subtract(1, tmp, out=tmp)
            tmp *= o
            tmp *= dh
            dc += tmp                                            # dc_t += dh ⊙ o ⊙ (1 − tanh² c_t)
            xp.multiply(dh, k, out=tmp)
            xp.multiply(Q[:u], tmp, out=dz[:u])                  # dz_o = dh ⊙ tanh(c_t) ⊙ o(1 − o)
            xp.multiply(dc, g, out=tmp)
            xp.multiply(Q[u:2 * u], tmp, out=dz[u:2 * u])        # dz_i = dc ⊙ g ⊙ i(1 − i)
            xp.multiply(dc, C[t], out=tmp)
            xp.multiply(Q[2 * u:3 * u], tmp, out=dz[2 * u:3 * u])    # dz_f = dc ⊙ c_{t−1} ⊙ f(1 − f)
            xp.multiply(dc, i, out=tmp)
            xp.multiply(Q[3 * u:], tmp, out=dz[3 * u:])          # dz_c = dc ⊙ i ⊙ (1 − g²)
            dc *= f                                              # carry to c_{t−1}
        gh0 = (Ui @ dZ[:, 0]).T if need_h0 else None
        gc0 = dc.T if need_c0 else None
        dZ2 = dZ.reshape(4 * u, T * N)
        gW = gU = gb = None
        need_Wb = need_W or need_b
        if need_U or need_Wb:                                    # [dU; dW; db]ᵀ = Σ_t dz_tᵀ [h_{t−1}; x_t; 1]
            rows = slice(0 if need_U else u, None if need_Wb else u)    # one GEMM for the rows asked
            grads = (dZ2 @ S[rows, :T].reshape(-1, T * N).T)[xp.argsort(ctx.cols)].T
            lo = rows.start
            gU = xp.ascontiguousarray(grads[:u]) if need_U else None
            gW = xp.ascontiguousarray(grads[u - lo:u - lo + D]) if need_W else None
            gb = xp.ascontiguousarray(grads[u - lo + D]) if need_b else None
        gx = None
        if need_x:                                               # dx_t = dz_t Wᵀ
            gx = xp.ascontiguousarray((Wb[:D] @ dZ2).reshape(D, T, N).transpose(2, 1, 0))
        return gx, gW, gU, gb, gh0, gc0


def lstm(x, kernel, recurrent_kernel, bias=None, h0=None, c0=None, return_sequences=False,
         return_state=False):
    """Keras' LSTM over x (N, T, D); see the LSTM Function for the equations.

    kernel (D, 4u), recurrent_kernel (u, 4u), bias (4u,) or None, gates i, f, c, o; h0, c0
    (N, u) or None (zeros), differentiable like every other input. Returns (N, T, u) with
    return_sequences else h_T (N, u); with return_state the tuple (outputs, h_T, c_T) as Keras.
    return_state is one Function with a packed (N, T_out + 1, u) output sliced by getitem, so
    gradients from all three outputs meet in one BPTT.
    PyTorch: nn.LSTM(D, u, batch_first=True) has the same gate order (i, f, g, o) and formulas:
    weight_ih_l0 = kernelᵀ, weight_hh_l0 = recurrent_kernelᵀ, bias_ih_l0 + bias_hh_l0 = bias.
    """
    y = LSTM.apply(x, kernel, recurrent_kernel, bias, h0, c0,
                   return_sequences=return_sequences, return_state=return_state)
    if not return_state:
        return y
    every = slice(None)
    outputs = getitem(y, (every, slice(0, -1))) if return_sequences else getitem(y, (every, 0))
    h = getitem(y, (every, -2)) if return_sequences else outputs
    return outputs, h, getitem(y, (every, -1))
