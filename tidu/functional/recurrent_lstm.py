"""The LSTM over a whole sequence: lstm, one Function (see tidu.functional.recurrent for what
the recurrent ops share: one node per sequence, BPTT inside backward, Keras' layouts)."""
import time

import numpy as np

from tidu import backend
from tidu.autograd.function import Function
from tidu.functional.recurrent import (_Workspace, _check, _columns, _kernel_with_bias, _scale,
                                       _sigmoid_from_negated)
from tidu.functional.shape import getitem
from tidu.kernels import halves, lstm_steps

__all__ = ["lstm"]

_LSTM_ORDER = (3, 0, 1, 2)          # internal gate order o, i, f, g from Keras' i, f, c, o
_LSTM_PRESCALE = (-1, -1, -1, -2)   # σ, σ, σ, tanh
_CHOOSER = halves.Chooser()         # the two halves at once, or the whole batch (see LSTM)


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
    tidu.kernels.recurrent (same formulas; a vectorized float32 exp within ~1 ulp of np.exp),
    and the whole loop over t is one compiled call each way that makes the step GEMMs through
    NumPy's own BLAS (the same calls, the same bits; 0.96× the step's time on the LSTM(128)
    benchmark); the NumPy loop, the reference, runs when tidu.kernels.enabled() is False.

    With the fast path on and a batch of 32 or more, the batch may run as two halves at once,
    one on each core, NumPy's BLAS on one thread meanwhile (tidu.kernels.halves): each half
    has its own S, gates and dZ, so that a core reads what it wrote, where the whole batch's
    two-thread GEMMs leave half of each step's gates in the other core's cache. The weight
    gradients are then one GEMM in two blocks of rows, one per core, after each half copies
    its columns into the whole batch's dZ and S[rows, :T]; the whole batch makes the same GEMM
    in the same two blocks on the BLAS threads, so the two ways give the same bits (every
    row's products in the same order; tests/kernels/test_halves.py), and a Chooser times both
    on the first calls of each shape and keeps the faster. Fit on
    the LSTM(128) benchmark (N = 128, T = 28, 30 steps a turn, 10 turns alternated in one
    process; AMD EPYC, 2 cores): 14.2 against 16.3 ms a step (medians; per turn 0.96-1.01× in
    the host's fast spells, 0.70-0.93× in its slow ones, when a read of what the other core
    wrote takes twice as long).
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
        fast = lstm_steps(dtype)                                # numba kernels, or None
        spans = halves.spans(N) if fast else None               # the two halves, or None
        key = (N, T, D, u, np.dtype(dtype).name, h0 is not None)
        together = spans is not None and _CHOOSER.concurrent(key)
        ws = ctx.ws = _Workspace()
        parts = [_Part(ws, span, u, D, T, dtype) for span in (spans if together else [(0, N)])]
        start = time.perf_counter()
        if together:
            halves.run(lambda k: _forward_steps(parts[k], x, A, h0, c0, fast))
        else:
            _forward_steps(parts[0], x, A, h0, c0, fast)
        if spans is not None:
            _CHOOSER.record(key, together, "forward", start)
        ctx.save_for_backward(Wb, Ui)
        ctx.parts, ctx.spans, ctx.key = parts, spans, key
        ctx.flags, ctx.shape, ctx.cols = (return_sequences, return_state), (N, T, D, u), cols
        Y = xp.empty((N, (T if return_sequences else 1) + return_state, u), dtype=dtype)
        for p in parts:
            H = p.S[:u]                                          # H[:, t] = h_tᵀ
            if return_sequences:
                Y[p.lo:p.hi, :T] = H[:, 1:].transpose(2, 1, 0)
            else:
                Y[p.lo:p.hi, 0] = H[:, T].T
            if return_state:
                Y[p.lo:p.hi, -1] = p.C[-1].T                    # c_T
        return Y if return_state or return_sequences else Y[:, 0]

    @staticmethod
    def backward(ctx, gy):
        xp = backend.xp
        Wb, Ui = ctx.saved
        parts, spans = ctx.parts, ctx.spans
        N, T, D, u = ctx.shape
        need_x, need_W, need_U, need_b, need_h0, need_c0 = ctx.needs_input_grad
        need_Wb = need_W or need_b
        rows = slice(0 if need_U else u, None if need_Wb else u) if need_U or need_Wb else None
        fast = lstm_steps(Ui.dtype)
        dtype = Ui.dtype
        ws = _Workspace()
        dZs = [ws.empty((4 * u, T, p.n), dtype) for p in parts]   # dZ[:, t] = dz_tᵀ, gates o, i, f, c
        gx = xp.empty((N, T, D), dtype=dtype) if need_x else None
        gh0 = xp.empty((N, u), dtype=dtype) if need_h0 else None
        gc0 = xp.empty((N, u), dtype=dtype) if need_c0 else None
        together = len(parts) == 2
        if rows is not None:     # the weight gradients' operands: dZ (4u, T·N), S[rows, :T] (R, T·N)
            R = len(range(u + D + 1)[rows])
            dZ2 = ws.empty((4 * u, T, N), dtype) if together else dZs[0]
            S2 = ws.empty((R, T, N), dtype) if together else parts[0].S[rows, :T]

        def steps(k):
            p, dZ = parts[k], dZs[k]
            dc = _backward_steps(p, dZ, gy[p.lo:p.hi], Ui, ctx.flags, fast)
            if need_h0:
                gh0[p.lo:p.hi] = (Ui @ dZ[:, 0]).T
            if need_c0:
                gc0[p.lo:p.hi] = dc.T
            if need_x:                                           # dx_t = dz_t Wᵀ
                gx[p.lo:p.hi] = (Wb[:D] @ dZ.reshape(4 * u, -1)).reshape(D, T, p.n).transpose(2, 1, 0)
            if together and rows is not None:                   # this half's columns of the operands
                dZ2[:, :, p.lo:p.hi] = dZ
                S2[:, :, p.lo:p.hi] = p.S[rows, :T]
        start = time.perf_counter()
        halves.run(steps) if together else steps(0)
        gW = gU = gb = None
        if rows is not None:     # [dU; dW; db]ᵀ = Σ_t dz_tᵀ [h_{t−1}; x_t; 1]: one GEMM, dZ S[rows, :T]ᵀ
            A, B = dZ2.reshape(4 * u, T * N), S2.reshape(R, T * N).T
            if spans is None:
                grads = A @ B
            else:                # in two blocks of rows, on the two cores or both on the BLAS threads
                grads = xp.empty((4 * u, R), dtype=dtype)
                half = [slice(0, 2 * u), slice(2 * u, 4 * u)]

                def product(k):
                    xp.matmul(A[half[k]], B, out=grads[half[k]])
                halves.run(product) if together else [product(k) for k in (0, 1)]
            grads = grads[xp.argsort(ctx.cols)].T
            lo = rows.start
            gU = xp.ascontiguousarray(grads[:u]) if need_U else None
            gW = xp.ascontiguousarray(grads[u - lo:u - lo + D]) if need_W else None
            gb = xp.ascontiguousarray(grads[u - lo + D]) if need_b else None
        if spans is not None:
            _CHOOSER.record(ctx.key, together, "backward", start)
        return gx, gW, gU, gb, gh0, gc0


class _Part:
    """Rows lo:hi of the batch and their buffers: S (u + D + 1, T + 1, n) = [h_{t−1}; x_t; 1]ᵀ
    by t, the gates G (T, 4u, n), the cell states C (T + 1, u, n) and K = tanh(C[1:])."""

    def __init__(self, ws, span, u, D, T, dtype):
        self.lo, self.hi = span
        self.n = n = self.hi - self.lo
        self.S = ws.empty((u + D + 1, T + 1, n), dtype)
        self.G = ws.empty((T, 4 * u, n), dtype)
        self.C = ws.empty((T + 1, u, n), dtype)
        self.K = ws.empty((T, u, n), dtype)


def _forward_steps(p, x, A, h0, c0, fast):
    """The forward timesteps of part p (see LSTM), x, h0 and c0 the whole batch's."""
    xp = backend.xp
    S, G, C, K = p.S, p.G, p.C, p.K
    T, u = K.shape[:2]
    D = x.shape[2]
    H, X1 = S[:u], S[u:, :T]                                    # H[:, t] = h_tᵀ, X1[:, t] = [x_t; 1]ᵀ
    X1[:D] = x[p.lo:p.hi].transpose(2, 1, 0)
    X1[D] = 1
    H[:, 0] = 0 if h0 is None else h0[p.lo:p.hi].T
    C[0] = 0 if c0 is None else c0[p.lo:p.hi].T
    if fast and fast.forward_seq is not None and p.n > 1 and u > 1:   # the loop below, one call
        fast.forward_seq(A, S, G, C, K, u, h0 is None)
        return
    ig = xp.empty((u, p.n), dtype=C.dtype)
    with np.errstate(over="ignore"):
        for t in range(T):
            a = G[t]
            if t or h0 is not None:                              # a = s·z_tᵀ, one GEMM
                xp.matmul(A, S[:, t], out=a)
            else:                                                # h_0 = 0
                xp.matmul(A[:, u:], X1[:, 0], out=a)
            if fast:                                             # the lines below
                fast.forward(a, C[t], C[t + 1], K[t], H, t)
                continue
            _sigmoid_from_negated(a)                             # σ(z_o), σ(z_i), σ(z_f), σ(2 z_c)
            o, i, f, g = a[:u], a[u:2 * u], a[2 * u:3 * u], a[3 * u:]
            g *= 2
            g -= 1                                               # g = 2σ(2 z_c) − 1 = tanh(z_c)
            c = C[t + 1]
            xp.multiply(f, C[t], out=c)
            xp.multiply(i, g, out=ig)
            c += ig                                              # c_t = f ⊙ c_{t−1} + i ⊙ g
            xp.tanh(c, out=K[t])
            xp.multiply(o, K[t], out=H[:, t + 1])                # h_t = o ⊙ tanh(c_t)


def _backward_steps(p, dZ, gy, Ui, flags, fast):
    """BPTT over part p into dZ (4u, T, n), from gy, this part's rows of the upstream
    gradient; returns dc_0 (u, n), the gradient that reaches c0."""
    xp = backend.xp
    G, C, K = p.G, p.C, p.K
    T, u, n = K.shape
    return_sequences, return_state = flags
    dtype = G.dtype
    dc = xp.zeros((u, n), dtype=dtype)
    if return_state:
        dc += gy[:, -1].T                                    # gc_T
        gy = gy[:, :-1] if return_sequences else gy[:, 0]
    gyT = xp.ascontiguousarray(gy.transpose(1, 2, 0) if return_sequences else gy.T[None])   # (·, u, n)
    first = T - gyT.shape[0]                                     # the first step that gets one
    dh, tmp = xp.zeros((u, n), dtype=dtype), xp.empty((u, n), dtype=dtype)
    if fast and fast.backward_seq is not None and n > 1 and u > 1:    # the loop below, one call
        fast.backward_seq(Ui, dZ, G, K, C, dh, dc, gyT, first)
        return dc
    Q = xp.empty((4 * u, n), dtype=dtype)
    for t in range(T - 1, -1, -1):                              # one step's data stays in cache
        if t < T - 1:
            xp.matmul(Ui, dZ[:, t + 1], out=dh)                  # (dz_{t+1} Uᵀ)ᵀ
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
    return dc


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
