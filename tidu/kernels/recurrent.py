"""The LSTM's and the GRU's per-timestep element-wise work in one pass, through numba: the
extra `fast`.

The LSTM's NumPy loop (tidu.functional.recurrent_lstm) spends as much time in its
element-wise ufuncs as in its GEMMs: NumPy's float32 exp and tanh run at scalar speed on an
AVX2 CPU without AVX-512 (np.exp 1.4-2.8 ns, np.tanh 3-6 ns per element against 0.2 ns for
a multiply), and a step makes ~10 passes forward and ~17 backward over (4u, N) blocks. The
kernels here make one pass per timestep each way, with the same formulas (see LSTM's
docstring), on LSTM's hidden-major layout (a step's gates are the rows of a (4u, N) block, a
state (u, N)):

    forward:   a = s·z_tᵀ  ->  a = σ(z_o), σ(z_i), σ(z_f), tanh(z_c)  (rows),
               c_t = f ⊙ c_{t−1} + i ⊙ g,   k = tanh(c_t),   H[:, t+1] = o ⊙ tanh(c_t)
    backward:  dc += dh ⊙ o ⊙ (1 − tanh² c_t), then dz_o, dz_i, dz_f, dz_c into dZ[:, t]; dc *= f

Measured at N = 128, u = 128 (the MNIST LSTM(128) benchmark, 2 OpenBLAS threads): a step's
element-wise work goes from ~230 to ~100 µs forward and from ~200 to ~20-45 µs backward, and
the whole training step from ~32 to ~22 ms (1.5×, medians of interleaved runs), on an AVX2 host.
On the AVX-512 EPYC (OpenBLAS SkylakeX kernels, minima of 400 calls on a loaded machine): the
forward kernel ~43 µs, the backward ~15 µs (10 µs in the earlier batch-major layout, whose
dZ rows were contiguous); the hidden-major layout pays for that through the step GEMMs:
Uᵀ-by-hᵀ (4u, u)·(u, N) 85-90 µs where h-by-U (N, u)·(u, 4u) took 100-160 µs (OpenBLAS ran
that shape on one thread), and the backward U·dzᵀ 100-110 µs against 112-114 µs.

The GRU's kernels (gru_steps) do the same for recurrent.GRU, on its batch-major layout (a
step's gates are the (N, 3u) rows [ĥ, z, r] of A[t], its recurrent part the rows of R[t], a
state (N, u)); the step GEMM h_{t−1} U and the backward's dR_t Uᵀ stay in NumPy between them:

    forward:   q = q + b_h  (q = h_{t−1}U, pre-scaled)  ->  z, r = σ(x_z + r_z), σ(x_r + r_r),
               ĥ = tanh(x_h + r ⊙ r_h),  H[t+1] = ĥ + (h_{t−1} − ĥ) ⊙ z
    backward:  dh += dR_{t+1}Uᵀ (+ gy_t), then dâ, dz', dr', dâ ⊙ r into G[t]; dh *= z (the
               carry's other half, so the next step's kernel finishes it)

At N = 128, u = 128 on the AVX-512 EPYC (minima of 300 calls, 1 OpenBLAS thread, a loaded
machine) the forward kernel takes ~25 µs and the backward ~25 µs, against ~8 and ~14 NumPy
passes over (N, u) blocks; one GRU(128) training step (N = 128, T = 28, Adam) went from ~22.5
to ~17 ms. Each of the GRU backward's four gate loops recomputes (1 − z) ⊙ dh and dâ rather
than reading them back: one loop writing all four blocks of G's row took ~40 µs.

The gates come from one exp as in the NumPy loop, σ(z) = 1 / (1 + e^a) with a = −z, and
g = 2σ(2z) − 1 with a = −2z. In float32 that exp is `expf` below, arithmetic that LLVM turns
into 8-wide AVX2 code (~0.5 ns per element), within 1.01 ulp of e^x for every float32 x with
a normal result (checked exhaustively); tanh(c_t) is Cephes' tanhf on the same exp (~1 ns,
within 1.4 ulp). In float64 (gradient checks) the kernels call libm's scalar exp and tanh.
The backward steps do NumPy's operations in NumPy's order: the same bits from the same
gates (the GRU's forward too, but for its exp). The kernels are single-threaded (OpenBLAS's
workers spin between GEMMs); the LSTM's release the GIL, so that its two halves of a batch
can run at once (tidu.kernels.halves).

The LSTM's timesteps also run as one compiled call each way (LSTMSteps.forward_seq and
backward_seq): the loop over t with its per-timestep GEMM made from compiled code by NumPy's
own cblas_sgemm / cblas_dgemm (tidu.kernels.blas), with the arguments np.matmul passes, then
the timestep kernel: the same calls in the same order as the Python loop, so the same bits,
without ~28 Python iterations each way and with the GIL released throughout (the step's two
halves do not wait for each other's Python). The LSTM(128) benchmark's training step (N = 128,
T = 28, Adam, tidu[fast], the step in two halves): 13.64 against 13.93 ms (`python
bench/alternate.py --workload lstm --variants tidu[fast],tidu[fast]-steploop --rounds 12
--steps 30`, per round 0.88-1.07×, median 0.96×; an earlier one-off script that alternated the
two 10 times: 13.94 against 15.07). Where NumPy's BLAS offers no such function (or its result
differs from np.matmul's on a check), the Python loop runs; and for a batch (or half) of one
row or a single unit (u = 1), where np.matmul may call a matrix-vector product instead.

The LSTM (tidu.functional.recurrent_lstm) asks `lstm_steps(dtype)`, the GRU `gru_steps(dtype)`,
and each runs its NumPy loop, the reference, whenever the answer is None: the fast paths off
(tidu.kernels.enabled() False: numba missing, TIDU_FAST=0 or set_enabled(False); asked first,
so numba is not even imported when it is off), another array backend, or a dtype other than
float32 and float64. The kernels are compiled on first use and cached on disk by numba.
"""
import math
from collections import namedtuple
from types import SimpleNamespace

import numpy as np

from tidu.kernels import blas
from tidu.kernels.switch import CompiledOnce, njit

Steps = namedtuple("Steps", "forward backward")
# the LSTM's: its per-timestep kernels and its whole-sequence ones (None where NumPy's BLAS has
# no cblas_?gemm to call from compiled code, see tidu.kernels.blas)
LSTMSteps = namedtuple("LSTMSteps", "forward backward forward_seq backward_seq")

# Cephes' expf: e^r = 1 + r + r²·P(r) on |r| ≤ ln2/2, with ln2 = LN2_HI + LN2_LO and LN2_HI
# exact in 9 bits, so k·LN2_HI is exact for |k| < 2^15
_EXP_P = tuple(np.float32(p) for p in (1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3,
                                        4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1))
_LN2_HI, _LN2_LO = np.float32(0.693359375), np.float32(-2.12194440e-4)
_LOG2E = np.float32(1.44269504088896341)
# Cephes' tanhf on |x| < 0.625: tanh x = x + x³·Q(x²)
_TANH_Q = tuple(np.float32(q) for q in (-5.70498872745e-3, 2.06390887954e-2, -5.37397155531e-2,
                                         1.33314422036e-1, -3.33332819422e-1))


def lstm_steps(dtype):
    """LSTMSteps(forward, backward, forward_seq, backward_seq) of the LSTM's compiled kernels
    (the last two None without NumPy's cblas gemm), or None: numba missing, the fast path off
    (tidu.kernels.enabled() False), another array backend or another dtype."""
    return _steps(dtype, "steps")


def gru_steps(dtype):
    """Steps(forward, backward) of the GRU's compiled kernels, or None, as lstm_steps."""
    return _steps(dtype, "gru")


def _steps(dtype, name):
    k = _kernels.get(dtype)          # asks enabled() first: numba is not imported when off
    return getattr(k, name) if k else None


def kernels():
    """The kernels (a namespace: steps, the LSTM's; gru; expf, tanhf, exp, tanh for the tests),
    compiled on the first call whatever the fast-path switch; None without numba."""
    return _kernels.load()


def _compile():
    try:
        import numba
        from numba.extending import overload
    except ImportError:
        return None

    f32, i32 = np.float32, np.int32
    lo, hi = f32(-104.0), f32(89.0)

    @njit(fastmath={"contract"})          # a·b + c as one FMA: one rounding instead of two
    def expf(x):
        """e^x in float32 = 2^k · e^r,  k = round(x·log2 e),  r = x − k·ln2 (Cody-Waite, two parts).

        x is first clamped to [−104, 89]: beyond it e^x rounds to 0 (below e^−103.97, half the
        smallest subnormal) or overflows to inf (above ln FLT_MAX = 88.72), as the clamped value
        does, so ±inf and huge |x| give 0 and inf, never NaN; NaN stays NaN. 2^k is built in
        the float's exponent bits as 2^(k − k//2) · 2^(k//2), both factors normal for k in
        [−150, 128], so results near the overflow and in the subnormal range round correctly.
        """
        x = min(max(x, lo), hi)
        k = np.floor(x * _LOG2E + f32(0.5))
        r = (x - k * _LN2_HI) - k * _LN2_LO
        p0, p1, p2, p3, p4, p5 = _EXP_P
        p = ((((p0 * r + p1) * r + p2) * r + p3) * r + p4) * r + p5
        er = p * (r * r) + r + f32(1.0)                      # e^r
        n = i32(k)
        n1 = n >> 1
        s1 = i32((n1 + 127) << 23).view(f32)                 # 2^(k//2)
        s2 = i32((n - n1 + 127) << 23).view(f32)             # 2^(k − k//2)
        return er * s1 * s2

    @njit(fastmath={"contract"})
    def tanhf(x):
        """tanh x in float32 (Cephes' tanhf): x + x³·Q(x²) for |x| < 0.625, else
        sign(x)·(1 − 2 / (e^{2|x|} + 1)); both are computed and one kept, so loops vectorize."""
        ax = abs(x)
        big = f32(1.0) - f32(2.0) / (expf(ax + ax) + f32(1.0))
        z = x * x
        q0, q1, q2, q3, q4 = _TANH_Q
        small = ((((q0 * z + q1) * z + q2) * z + q3) * z + q4) * (z * x) + x
        return small if ax < f32(0.625) else math.copysign(big, x)

    def exp(x):
        """e^x: expf for float32, libm's exp for float64 (numba picks by type)."""

    def tanh(x):
        """tanh x: tanhf for float32, libm's tanh for float64 (numba picks by type)."""

    @overload(exp)
    def exp_for(x):
        return (lambda x: expf(x)) if x == numba.float32 else (lambda x: math.exp(x))

    @overload(tanh)
    def tanh_for(x):
        return (lambda x: tanhf(x)) if x == numba.float32 else (lambda x: math.tanh(x))

    # Each inner loop runs over one row's contiguous columns and writes an array at one offset
    # (or reads and writes it at the same index): a loop that wrote a row at two offsets u apart
    # would need a runtime overlap check, which LLVM widens to the whole array, where it fails.
    # Layout: hidden-major (see LSTM), a step's gates are rows of (4u, N), a state (u, N).
    @njit(nogil=True)     # tidu.kernels.halves runs two at once
    def forward(a, c_prev, c, k, H, t):
        """One forward timestep in place; a = the gate rows (4u, N) o, i, f, g pre-scaled as in LSTM
        (= −z_o, −z_i, −z_f, −2z_c):

            a <- σ(z_o), σ(z_i), σ(z_f), 2σ(2z_c) − 1
            c = f ⊙ c_prev + i ⊙ g,   k = tanh(c),   H[:, t + 1] = o ⊙ k
        """
        u, n = c.shape
        one, two = c.dtype.type(1), c.dtype.type(2)
        for j in range(4 * u):
            for m in range(n):
                a[j, m] = one / (one + exp(a[j, m]))                # σ(z) = 1 / (1 + e^−z)
        for j in range(3 * u, 4 * u):
            for m in range(n):
                a[j, m] = two * a[j, m] - one                       # tanh z = 2σ(2z) − 1
        for j in range(u):
            h = H[j, t + 1]                                         # a contiguous row of H
            for m in range(n):
                ct = a[2 * u + j, m] * c_prev[j, m] + a[u + j, m] * a[3 * u + j, m]
                kt = tanh(ct)
                c[j, m], k[j, m] = ct, kt
                h[m] = a[j, m] * kt

    @njit(nogil=True)
    def backward(dh, dc, a, k, c_prev, dZ, t):
        """One backward timestep, from the gate rows a = σ(z_o), σ(z_i), σ(z_f), g (4u, N),
        k = tanh(c_t), into dZ[:, t]:

            dc += dh ⊙ o ⊙ (1 − k²)
            dz_o = dh ⊙ k ⊙ o(1 − o),        dz_i = dc ⊙ g ⊙ i(1 − i)
            dz_f = dc ⊙ c_prev ⊙ f(1 − f),   dz_c = dc ⊙ i ⊙ (1 − g²);   dc <- dc ⊙ f (the carry)
        each product in the NumPy loop's order, so both give the same bits.
        """
        u, n = dc.shape
        one = dc.dtype.type(1)
        for j in range(u):
            dz = dZ[j, t]                                           # contiguous rows of dZ
            for m in range(n):
                o, kt, d = a[j, m], k[j, m], dh[j, m]
                dc[j, m] += ((one - kt * kt) * o) * d
                dz[m] = ((one - o) * o) * (d * kt)
        for j in range(u):
            dz = dZ[u + j, t]
            for m in range(n):
                i = a[u + j, m]
                dz[m] = ((one - i) * i) * (dc[j, m] * a[3 * u + j, m])
        for j in range(u):
            dz = dZ[2 * u + j, t]
            for m in range(n):
                f = a[2 * u + j, m]
                dz[m] = ((one - f) * f) * (dc[j, m] * c_prev[j, m])
        for j in range(u):
            dz = dZ[3 * u + j, t]
            for m in range(n):
                i, f, g = a[u + j, m], a[2 * u + j, m], a[3 * u + j, m]
                dz[m] = (one - g * g) * (dc[j, m] * i)
                dc[j, m] *= f

    # GRU: batch-major as in recurrent.GRU, a step's gates are (N, 3u) rows [ĥ, z, r], its
    # recurrent part (N, 3u) rows [r_z, r_r, r_h], a state (N, u); the loops run over one row m.
    @njit
    def gru_forward(a, q, bh, add, h_prev, h):
        """One forward timestep in place; a = A[t] (N, 3u) = −2x_h, −x_z, −x_r pre-scaled as in GRU,
        q = R[t] (N, 3u) = −h_{t−1}U_z, −h_{t−1}U_r, −2h_{t−1}U_h if add (else not read), bh the
        pre-scaled b_h:

            q = q + bh if add else bh       (= −r_z, −r_r, −2r_h)
            a[z, r] <- σ(z) = 1 / (1 + e^a), σ(r) = 1 / (1 + e^a)   with a = −x − r
            a[ĥ] <- ĥ = 2 / (1 + e^s) − 1,  s = r ⊙ (−2r_h) + (−2x_h)
            h = ĥ + (h_prev − ĥ) ⊙ z
        each in the NumPy loop's order; only e^ differs (expf in float32).
        """
        n, u = h.shape
        one, two = h.dtype.type(1), h.dtype.type(2)
        for m in range(n):
            am, qm, hp, hm = a[m], q[m], h_prev[m], h[m]
            if add:
                for j in range(3 * u):
                    qm[j] = qm[j] + bh[j]
            else:
                for j in range(3 * u):
                    qm[j] = bh[j]
            zr, q_zr = am[u:], qm[:2 * u]       # views from offset 0: am[j − u] does not vectorize
            for j in range(2 * u):
                zr[j] = one / (one + exp(zr[j] + q_zr[j]))          # z, r
            hh, z, r, q_h = am[:u], am[u:2 * u], am[2 * u:], qm[2 * u:]
            for j in range(u):
                v = two / (one + exp(r[j] * q_h[j] + hh[j])) - one   # ĥ
                hh[j] = v
                hm[j] = v + (hp[j] - v) * z[j]

    @njit
    def gru_backward(dh, q, carry, g, add_g, a, r_t, h_prev, G):
        """One backward timestep in place, from the gates a = A[t] (N, 3u) = ĥ, z, r and
        r_t = R[t] (its last u columns −2r_h), into G = G[t] (N, 4, u) = [dâ, dz', dr', dâ ⊙ r]:

            dh = dh + q if carry (q = dR_{t+1} Uᵀ, dh already ⊙ z_{t+1}),  dh = dh + g if add_g
            t1 = (1 − z) ⊙ dh,   dâ = (1 − ĥ²) ⊙ t1,   dz' = (t1 ⊙ z) ⊙ (h_prev − ĥ)
            dâ ⊙ r,   dr' = ((1 − r) ⊙ (dâ ⊙ r)) ⊙ (−2r_h) ⊙ (−½);   dh <- dh ⊙ z (half the carry)
        each product in the NumPy loop's order, so both give the same bits. Each loop writes one
        block of G (recomputing t1 and dâ, cheap next to a second pass over memory).
        """
        n, u = dh.shape
        one, minus_half = dh.dtype.type(1), dh.dtype.type(-0.5)
        for m in range(n):
            dm, am, hp, rh = dh[m], a[m], h_prev[m], r_t[m, 2 * u:]
            if carry:
                qm = q[m]
                for j in range(u):
                    dm[j] = dm[j] + qm[j]
            if add_g:
                gm = g[m]
                for j in range(u):
                    dm[j] = dm[j] + gm[j]
            hh, z, r = am[:u], am[u:2 * u], am[2 * u:]
            da, dz, dr, dar = G[m, 0], G[m, 1], G[m, 2], G[m, 3]
            for j in range(u):
                da[j] = (one - hh[j] * hh[j]) * ((one - z[j]) * dm[j])
            for j in range(u):
                dz[j] = (((one - z[j]) * dm[j]) * z[j]) * (hp[j] - hh[j])
            for j in range(u):
                dar[j] = ((one - hh[j] * hh[j]) * ((one - z[j]) * dm[j])) * r[j]
            for j in range(u):
                d_ar = ((one - hh[j] * hh[j]) * ((one - z[j]) * dm[j])) * r[j]
                dr[j] = (((one - r[j]) * d_ar) * rh[j]) * minus_half
                dm[j] = dm[j] * z[j]

    # the sequence kernels (_forward_seq, _backward_seq, at the end of this module) call these
    # module globals: as closures here, numba's disk cache would not keep them (a closure's key
    # holds the dispatchers it reads, which differ from process to process)
    global _gemm_jit, _step_forward, _step_backward
    _gemm_jit, _step_forward, _step_backward = blas.gemm_kernel(), forward, backward
    forward_seq_with = njit(nogil=True)(_forward_seq)
    backward_seq_with = njit(nogil=True)(_backward_seq)

    fns = blas.gemm_functions()
    if fns is None:
        forward_seq = backward_seq = None
    else:
        gemms = {np.dtype(np.float32): fns[0], np.dtype(np.float64): fns[1]}

        def forward_seq(A, S, G, C, K, u, zero_h0):
            """forward_seq_with NumPy's gemm for A's dtype."""
            forward_seq_with(gemms[A.dtype], A, S, G, C, K, u, zero_h0)

        def backward_seq(Ui, dZ, G, K, C, dh, dc, gyT, first):
            """backward_seq_with NumPy's gemm for Ui's dtype."""
            backward_seq_with(gemms[Ui.dtype], Ui, dZ, G, K, C, dh, dc, gyT, first)

    return SimpleNamespace(steps=LSTMSteps(forward, backward, forward_seq, backward_seq),
                           gru=Steps(gru_forward, gru_backward),
                           expf=expf, tanhf=tanhf, exp=exp, tanh=tanh)


_kernels = CompiledOnce(_compile)


# The LSTM's sequence kernels (LSTMSteps.forward_seq and backward_seq), compiled in _compile, where
# the globals they call are set: _gemm_jit (tidu.kernels.blas's gemm) and the timestep kernels
# _step_forward, _step_backward.
_gemm_jit = _step_forward = _step_backward = None


def _forward_seq(fn, A, S, G, C, K, u, zero_h0):
    """The LSTM's forward timesteps of one batch (or half) in one call, no Python between them:
    G[t] = A S[:, t] (A[:, u:] S[u:, 0] at t = 0 when zero_h0: h_0 = 0), then the timestep
    kernel forward(G[t], C[t], C[t + 1], K[t], S[:u], t); the Python loop's calls in its order,
    so the same bits."""
    for t in range(G.shape[0]):
        a = G[t]
        if t == 0 and zero_h0:
            _gemm_jit(fn, A[:, u:], S[u:, 0], a)
        else:
            _gemm_jit(fn, A, S[:, t], a)
        _step_forward(a, C[t], C[t + 1], K[t], S[:u], t)


def _backward_seq(fn, Ui, dZ, G, K, C, dh, dc, gyT, first):
    """BPTT over one batch (or half) in one call: for t = T − 1 … 0, dh = Ui dZ[:, t + 1]
    (t < T − 1; dh starts at 0), dh += gyT[t − first] (t >= first), then the timestep kernel
    backward(dh, dc, G[t], K[t], C[t], dZ, t); the Python loop's operations in its order, so
    the same bits."""
    T = G.shape[0]
    for t in range(T - 1, -1, -1):
        if t < T - 1:
            _gemm_jit(fn, Ui, dZ[:, t + 1], dh)
        if t >= first:
            g = gyT[t - first]
            for j in range(dh.shape[0]):
                for m in range(dh.shape[1]):
                    dh[j, m] = dh[j, m] + g[j, m]
        _step_backward(dh, dc, G[t], K[t], C[t], dZ, t)
