"""Ways to do the LeNet step's convolution work on the plain path (TIDU_FAST=0) that issue 14
tried and dropped, each against tidu's own code at batch 64, alternated in one process: for a
host where they might win.

    python bench/plain_alternatives.py [--rounds 100] [--threads 2] [--step ROUNDS]

  band    the first layer (one channel, 5×5×20, then the 2×2 max pool; x needs no gradient)
          as ONE GEMM over bands of w = 12 output columns: X (N·24·2, 5·16), each row the 5
          input rows × 16 columns under a band, one strided copy, times the banded kernel
          T (5·16, 12·20) whose columns are ordered (column parity, column pair, channel), so
          that the pool reads four (N, 144·20 / 2) blocks; the bias is added after the pool
          (max(z + b) = max(z) + b). Backward: dL/dT = Xᵀ dL/dz, folded into dL/dK. 2.4×
          the FLOPs of im2col (88 MFLOP forward at batch 64 against 38) in one GEMM with
          K = 80, N = 240 instead of K = 26, N = 20, and a 1 MB copy instead of a 3.8 MB
          im2col matrix. tidu: conv2d_max_pool2d (Conv2DMaxPool, im2col in tile order).
  dx      the second conv's input gradient (dL/dy (64·8·8, 50), kernel 5×5×20×50) as the
          im2col of dL/dy along the width only: dL/dy padded by 4 columns each side, one
          strided copy into G (64·8·12, 5·50), then per kernel row a one GEMM by its 250×20
          slice, added to 8 whole input rows (contiguous adds): 1.5× the FLOPs. tidu:
          tidu.functional.conv._input_grad (25 per-tap GEMMs, 25 adds with the batch as the
          inner axis).
  nhwc    the same input gradient with the 25 adds in an (N, H, W, C) buffer, as tidu did
          before e528382 (each add 512 inner loops of 8·20 floats instead of 8 of 10,240):
          the batch-inner layout's gain, without the ReLU mask after it.

Each round times every variant once, in rotating order (medians printed). Each alternative
is first checked against tidu's numbers (to float rounding: the sums run in another order).
--step R: the whole plain LeNet training step with `band` as its first layer against tidu's
own, R rounds of one 20-step turn each (two models, the same weights and batches).
"""
import argparse
import os
import sys
import time

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--rounds", type=int, default=100)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--step", type=int, default=0, help="rounds of the training step comparison (0: none)")
args = ap.parse_args()
if args.rounds < 1 or args.threads < 1 or args.step < 0:
    ap.error(f"--rounds and --threads must be positive and --step at least 0, got {args.rounds}, "
             f"{args.threads}, {args.step}")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, ".."))
from run import child_env  # noqa: E402  (the benchmark children's environment)

os.environ.update(child_env(args.threads))
for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
    os.environ.pop(name, None)
os.environ["TIDU_FAST"] = "0"
import numpy as np  # noqa: E402
from numpy.lib.stride_tricks import as_strided  # noqa: E402

from tidu.autograd.function import Function  # noqa: E402
from tidu.autograd.tensor import Tensor  # noqa: E402
from tidu.functional.conv import _input_grad  # noqa: E402
import tidu.functional.conv_pool as conv_pool  # noqa: E402
from tidu.functional.dense import column_sums  # noqa: E402


def banded(kernel, w):
    """T[(a, jj + b), (jj mod 2, jj // 2, f)] = K[a, b, 0, f] for the w columns jj of a band."""
    kh, kw, _, F = kernel.shape
    T = np.zeros((kh, w + kw - 1, 2, w // 2, F), kernel.dtype)
    for jj in range(w):
        T[:, jj:jj + kw, jj % 2, jj // 2] = kernel[:, :, 0]
    return T.reshape(kh * (w + kw - 1), w * F)


class BandConvPool(Function):
    """`band` above: max_pool2d(conv2d(x, K, b), 2) for x (N, H, W) of one channel, 'valid',
    strides 1, output columns in bands of w."""

    @staticmethod
    def forward(ctx, x2, kernel, bias, w=12):
        N, H, W = x2.shape
        kh, kw, _, F = kernel.shape
        P, Q = (H - kh + 1) // 2, (W - kw + 1) // 2
        nb, wp = 2 * Q // w, w + kw - 1
        sN, sH, sW = x2.strides              # rows (n, row parity, P, band), columns (a, b')
        view = as_strided(x2, (N, 2, P, nb, kh, wp), (sN, sH, 2 * sH, w * sW, sH, sW))
        X = np.empty(view.shape, x2.dtype)
        np.copyto(X, view)
        X = X.reshape(-1, kh * wp)
        z = (X @ banded(kernel, w)).reshape(N, 2, P * nb, 2, w // 2 * F)
        y = np.maximum(z[:, 0, :, 0], z[:, 0, :, 1])
        np.maximum(y, z[:, 1, :, 0], out=y)
        np.maximum(y, z[:, 1, :, 1], out=y)
        ctx.save_for_backward(X, z, y)
        ctx.shape = (kernel.shape, w)
        return (y + np.tile(bias, w // 2)).reshape(N, P, Q, F)

    @staticmethod
    def backward(ctx, gy):
        X, z, y = ctx.saved
        (kh, kw, _, F), w = ctx.shape
        g = np.ascontiguousarray(gy).reshape(y.shape)
        dz = np.empty_like(z)
        seen = None
        for k, (i, j) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):   # Conv2DMaxPool's rule
            if k == 0:
                hit = seen = z[:, 0, :, 0] == y
            elif k < 3:
                hit = z[:, i, :, j] == y
                first = np.greater(hit, seen)
                seen |= hit
                hit = first
            else:
                hit = np.greater(y == y, seen)
            np.multiply(g, hit, out=dz[:, i, :, j])
        dT = (X.T @ dz.reshape(len(X), -1)).reshape(kh, w + kw - 1, 2, w // 2, F)
        gK = dT[:, 0:kw, 0, 0].copy()
        for jj in range(1, w):
            gK += dT[:, jj:jj + kw, jj % 2, jj // 2]
        return None, gK.reshape(kh, kw, 1, F), column_sums(g.reshape(-1, F))


def band_layer(x, kernel, bias=None, strides=1, padding="valid", dilation_rate=1, pool_size=2,
               pool_strides=None, pool_padding="valid"):
    """conv2d_max_pool2d with `band` for LeNet's first layer, tidu's op for the others."""
    if x.shape[-1] == 1 and bias is not None and not x.requires_grad:
        return BandConvPool.apply(np.ascontiguousarray(x.data[..., 0]), kernel, bias)
    return tidu_layer(x, kernel, bias, strides, padding, dilation_rate, pool_size, pool_strides,
                      pool_padding)


def nhwc_dx(G, kernel, x_shape, out_hw):
    """`nhwc` above: dL/dx of a 'valid', stride-1 conv, the taps added in (N, H, W, C)."""
    kh, kw, C, F = kernel.shape
    N = x_shape[0]
    OH, OW = out_hw
    taps = np.matmul(G, kernel.reshape(kh * kw, C, F).transpose(0, 2, 1))
    gx = np.zeros(x_shape, G.dtype)
    for i in range(kh):
        for j in range(kw):
            gx[:, i:i + OH, j:j + OW] += taps[i * kw + j].reshape(N, OH, OW, C)
    return gx


def width_im2col_dx(G, kernel, x_shape, out_hw):
    """`dx` above: dL/dx of a 'valid', stride-1 conv from G = dL/dy (N·OH·OW, F)."""
    kh, kw, C, F = kernel.shape
    N, H, W, _ = x_shape
    OH, OW = out_hw
    Gp = np.zeros((N, OH, OW + 2 * (kw - 1), F), G.dtype)
    Gp[:, :, kw - 1:kw - 1 + OW] = G.reshape(N, OH, OW, F)
    s = Gp.strides                           # rows (n, p, x), columns (b', f): dL/dy[n, p, x + b' − 4]
    view = as_strided(Gp, (N, OH, W, kw, F), (s[0], s[1], s[2], s[2], s[3]))
    GW = np.empty(view.shape, G.dtype)
    np.copyto(GW, view)
    GW = GW.reshape(-1, kw * F)
    Kb = np.ascontiguousarray(kernel[:, ::-1].transpose(0, 1, 3, 2)).reshape(kh, kw * F, C)
    gx = np.zeros(x_shape, G.dtype)
    out = np.empty((N, OH, W, C), G.dtype)
    for a in range(kh):
        np.matmul(GW, Kb[a], out=out.reshape(-1, C))
        gx[:, a:a + OH] += out
    return gx


rng = np.random.default_rng(0)
tidu_layer = conv_pool.conv2d_max_pool2d
x1 = rng.random((64, 28, 28, 1), dtype=np.float32)
K1 = (rng.standard_normal((5, 5, 1, 20)) * 0.2).astype(np.float32)
b1 = (rng.standard_normal(20) * 0.1).astype(np.float32)
gy1 = rng.standard_normal((64, 12, 12, 20)).astype(np.float32)
G2 = rng.standard_normal((64 * 8 * 8, 50)).astype(np.float32)
K2 = (rng.standard_normal((5, 5, 20, 50)) * 0.1).astype(np.float32)


def first_layer(op):
    def run():
        K, b = Tensor(K1, requires_grad=True), Tensor(b1, requires_grad=True)
        y = op(Tensor(x1), K, b)
        y.backward(Tensor(gy1))
        return y.data, K.grad, b.grad
    return run


variants = {
    "band": {"tidu": first_layer(tidu_layer), "alternative": first_layer(band_layer)},
    "dx": {"tidu": lambda: (_input_grad(G2, K2, (64, 12, 12, 20), (8, 8), (1, 1), (1, 1), (0, 0, 0, 0)),),
           "alternative": lambda: (width_im2col_dx(G2, K2, (64, 12, 12, 20), (8, 8)),)},
    "nhwc": {"tidu": lambda: (_input_grad(G2, K2, (64, 12, 12, 20), (8, 8), (1, 1), (1, 1), (0, 0, 0, 0)),),
             "alternative": lambda: (nhwc_dx(G2, K2, (64, 12, 12, 20), (8, 8)),)},
}
for name, pair in variants.items():
    for want, got in zip(pair["tidu"](), pair["alternative"]()):
        scale = float(np.max(np.abs(want))) or 1.0
        if want.shape != got.shape or not float(np.max(np.abs(want - got))) <= 1e-5 * scale:
            sys.exit(f"{name}: the alternative's numbers differ from tidu's")
times = {(name, who): [] for name in variants for who in ("tidu", "alternative")}
keys = list(times)
for r in range(args.rounds):
    for key in keys[r % len(keys):] + keys[:r % len(keys)]:
        t = time.perf_counter()
        variants[key[0]][key[1]]()
        times[key].append(time.perf_counter() - t)
print(f"batch 64, {args.threads} BLAS threads, {args.rounds} rounds: median ms (alternative / tidu)")
for name in variants:
    a, b = (float(np.median(times[(name, who)])) * 1e3 for who in ("tidu", "alternative"))
    print(f"  {name:5s} tidu {a:7.3f}  alternative {b:7.3f}  {b / a:.2f}×")

if args.step:
    import workloads as W
    import tidu.layers.convolutional as conv_layers

    x = rng.random((64 * 20, 784), dtype=np.float32)
    y = W.one_hot(rng.integers(0, 10, len(x)))
    models = {"tidu": W.tidu_model("cnn"), "alternative": W.tidu_model("cnn")}
    models["alternative"].set_weights(models["tidu"].get_weights())
    ops = {"tidu": tidu_layer, "alternative": band_layer}
    steps = {who: [] for who in models}
    for r in range(args.step + 1):                   # round 0 warms up
        for who in (("tidu", "alternative") if r % 2 else ("alternative", "tidu")):
            conv_layers.F.conv2d_max_pool2d = ops[who]
            t = time.perf_counter()
            models[who].fit(x, y, batch_size=64, epochs=1, verbose=0, shuffle=False)
            if r:
                steps[who].append((time.perf_counter() - t) / 20)
    conv_layers.F.conv2d_max_pool2d = tidu_layer
    ratio = np.median(np.array(steps["alternative"]) / np.array(steps["tidu"]))
    print(f"LeNet training step, {args.step} rounds of 20 steps: tidu "
          f"{np.median(steps['tidu']) * 1e3:.2f} ms, with band {np.median(steps['alternative']) * 1e3:.2f} ms, "
          f"median per-round ratio {ratio:.3f}")
