"""One benchmark workload in one implementation, in this process; prints one JSON line.

    python bench/workloads.py --workload mlp --impl tidu [--quick]

Run by bench/run.py, which starts each (workload, implementation) in its own process so that
NumPy's and torch's BLAS thread pools never share one (PERF.md, lesson 6). Thread counts are
set from the environment by run.py before NumPy or torch is imported.

Implementations: 'tidu' (the library through model.fit/predict), 'torch' (PyTorch eager, CPU),
'numpy' (a minimal hand-written float32 NumPy version of the same math: the bar for tidu),
'keras' (the real Keras 3 on its torch backend: the convnet only). The workloads added for issue
14 (GRU, SimpleRNN, batch-32 CNN latency, keras.io's MNIST convnet) live in more_workloads.py.

A training run reports seconds_per_step (wall), cpu_seconds_per_step (all threads: with 2
OpenBLAS threads about twice the wall time, as the idle worker spins), train_peak_rss_mb (peak
resident memory over the timed training, counted from its start) and peak_rss_mb (the same
peak, after the accuracy check too).

Turns (--turns R, what bench/run.py uses): the process sets up its model, warms it up, then
times R turns of --steps steps (a predict workload: one pass over the test images), each when
told. Before a turn it prints "BENCH ready" and waits for a line on stdin; after it, it prints
"BENCH turn" and the turn's JSON; after the last, "BENCH ready" once more, and it waits before
the accuracy check and the result ("BENCH result" and its JSON). The model keeps training from
turn to turn; the peak RSS spans all turns. run.py keeps one such process per implementation
alive and gives them turns one after another, so that a slow spell of the host falls on
neighbouring turns of every implementation alike. In the result each timing is the median of
the turns, and "turns" the list. Without --turns: one turn, no waiting, the JSON result line
only.
"""
import argparse
import json
import os
import resource
import sys
import time

import numpy as np

# run as a script this module is __main__; more_workloads's `from workloads import ...` must get
# this same module (its TURNS), not a second copy
sys.modules.setdefault("workloads", sys.modules[__name__])
import more_workloads as more  # noqa: E402  (bench/more_workloads.py: GRU, SimpleRNN, latency, convnet)

STEPS_PER_EPOCH = {"mlp": 469, "cnn": 938, "lstm": 469, "overhead": 1875, **more.STEPS_PER_EPOCH}
BATCH = {"mlp": 128, "cnn": 64, "lstm": 128, "overhead": 32, **more.BATCH}


def load_mnist(n_train=None):
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
    from tidu.datasets import mnist

    # TIDU_BENCH_SUBSET=1 (bench/run.py --subset): the shipped 2,000 + 500 images, for a check
    # that the workloads run (the tests), not for timings
    subset = os.environ.get("TIDU_BENCH_SUBSET") == "1"
    (xtr, ytr), (xte, yte) = mnist.load_subset() if subset else mnist.load_data()
    if n_train:
        xtr, ytr = xtr[:n_train], ytr[:n_train]
    xtr = xtr.reshape(len(xtr), 784).astype(np.float32) / 255
    xte = xte.reshape(len(xte), 784).astype(np.float32) / 255
    return xtr, ytr.astype(np.int64), xte, yte.astype(np.int64)


TURNS = {"count": 1, "told": False}   # --turns: how many timed turns, and whether to wait for each


def timed_turns(turn):
    """Run turn() (one timed stretch, returning a dict of timings) TURNS["count"] times, each on
    the word of bench/run.py when TURNS["told"]; the dict of each timing's median over the turns,
    with the list of the turns under "turns" when there is more than one."""
    results = []
    for _ in range(TURNS["count"]):
        if TURNS["told"]:
            print("BENCH ready", flush=True)
            if not sys.stdin.readline():
                raise SystemExit("bench/workloads.py: stdin closed before the next turn")
        results.append(turn())
        if TURNS["told"]:
            print("BENCH turn " + json.dumps(results[-1]), flush=True)
    if TURNS["told"]:            # the accuracy check waits too, off the other processes' turns
        print("BENCH ready", flush=True)
        sys.stdin.readline()
    out = {k: float(np.median([r[k] for r in results])) for k in results[0]}
    if len(results) > 1:
        out["turns"] = results
    return out


def peak_rss_mb():
    """The process's peak resident memory since start (or since reset_peak_rss), in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024     # Linux: KB


def reset_peak_rss():
    """Start the peak-RSS count afresh at the current RSS (Linux: /proc/self/clear_refs), so the
    training peak is not the data loading's (MNIST as float32 is converted through temporaries)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def one_hot(y, k=10):
    out = np.zeros((len(y), k), dtype=np.float32)
    out[np.arange(len(y)), y] = 1
    return out


def glorot(rng, fan_in, fan_out, shape):
    lim = np.sqrt(6 / (fan_in + fan_out))
    return rng.uniform(-lim, lim, shape).astype(np.float32)


# ---------------------------------------------------------------------------------------
# FLOPs per training step (multiply-adds × 2), forward + backward, for the FLOP-bound column
def flops_per_step(workload):
    if workload == "mlp":
        B = 128
        fwd = 2 * B * (784 * 512 + 512 * 10)
        return fwd + 2 * B * 784 * 512 + 2 * 2 * B * 512 * 10          # dW1; dW2 and dx2
    if workload == "cnn":
        B = 64
        c1 = 2 * B * 24 * 24 * 25 * 1 * 20
        c2 = 2 * B * 8 * 8 * 25 * 20 * 50
        d1, d2 = 2 * B * 800 * 500, 2 * B * 500 * 10
        return (c1 + c2 + d1 + d2) + (c1 + 2 * c2 + 2 * d1 + 2 * d2)   # no input grad for conv1
    if workload == "lstm":
        B, T, D, U = 128, 28, 28, 128
        fwd = 2 * B * T * (D + U) * 4 * U + 2 * B * U * 10
        return fwd + 2 * B * T * (U * 4 * U * 2 + D * 4 * U) + 2 * 2 * B * U * 10
    if workload == "overhead":
        B = 32
        f = 2 * B * (784 * 64 + 9 * 64 * 64 + 64 * 10)
        return 3 * f
    return more.flops_per_step(workload)


# ---------------------------------------------------------------------------------------
# tidu
def tidu_model(workload, optimizer=None):
    from tidu import layers, models, optimizers

    if workload in more.WORKLOADS:
        return more.tidu_model(workload)
    if workload in ("mlp", "mlp_predict"):
        m = models.Sequential([layers.Dense(512, activation="relu", input_shape=(784,)),
                               layers.Dense(10, activation="softmax")])
        opt = optimizer or optimizers.RMSprop(learning_rate=0.001)
    elif workload in ("cnn", "cnn_predict"):
        m = models.Sequential([layers.Reshape((28, 28, 1), input_shape=(784,)),
                               layers.Conv2D(20, 5, activation="relu"), layers.MaxPooling2D(2),
                               layers.Conv2D(50, 5, activation="relu"), layers.MaxPooling2D(2),
                               layers.Flatten(), layers.Dense(500, activation="relu"),
                               layers.Dense(10, activation="softmax")])
        opt = optimizer or optimizers.SGD(learning_rate=0.01, momentum=0.9)
    elif workload == "lstm":
        m = models.Sequential([layers.Reshape((28, 28), input_shape=(784,)), layers.LSTM(128),
                               layers.Dense(10, activation="softmax")])
        opt = optimizer or optimizers.Adam(learning_rate=0.001)
    elif workload == "overhead":
        m = models.Sequential([layers.Dense(64, activation="relu", input_shape=(784,))]
                              + [layers.Dense(64, activation="relu") for _ in range(9)]
                              + [layers.Dense(10, activation="softmax")])
        opt = optimizer or optimizers.SGD(learning_rate=0.01)
    m.compile(optimizer=opt, loss="categorical_crossentropy", metrics=["accuracy"])
    return m


def run_tidu(workload, steps, xtr, ytr, xte, yte):
    if workload in ("mlp_predict", "cnn_predict"):
        m = tidu_model(workload)
        m.predict(xte[:512], batch_size=256)      # two batches: predict's pairs warm up too

        def turn():
            t = time.perf_counter()
            m.predict(xte, batch_size=256)
            return {"seconds": time.perf_counter() - t}
        return timed_turns(turn)
    if workload == "simulator":
        return run_simulator(xtr, ytr)
    if workload == "ray":
        import ps_workloads  # (bench/ps_workloads.py: the Ray backend against the simulator)

        return ps_workloads.run_ray(steps, xtr, ytr, lambda: tidu_model("mlp"), one_hot)
    return time_fit(tidu_model(workload), workload, steps, xtr, ytr, xte, yte)


def time_fit(m, workload, steps, xtr, ytr, xte, yte):
    """A compiled Keras-API model (tidu's or Keras's) timed over `steps` batches of model.fit,
    after a warm-up fit of 3 batches; then its test accuracy."""
    B = BATCH[workload]
    Y = one_hot(ytr)
    m.fit(xtr[:B * 3], Y[:B * 3], batch_size=B, epochs=1, verbose=0)      # warm up
    n = steps * B

    def turn():
        t, c = time.perf_counter(), time.process_time()
        m.fit(xtr[:n], Y[:n], batch_size=B, epochs=1, verbose=0, shuffle=True)
        dt, dc = time.perf_counter() - t, time.process_time() - c
        return {"seconds_per_step": dt / steps, "cpu_seconds_per_step": dc / steps}
    reset_peak_rss()
    out = timed_turns(turn)
    out["train_peak_rss_mb"] = peak_rss_mb()
    _, acc = m.evaluate(xte, one_hot(yte), batch_size=1000, verbose=0)
    return {**out, "accuracy": float(acc)}


def run_simulator(xtr, ytr):
    from tidu import distributed

    out = {}
    Y = one_hot(ytr)
    for rule in ("asgd", "dcasgd"):
        m = tidu_model("mlp")
        ps = distributed.ParameterServer(rule, num_workers=8, backend="simulated", schedule="random", seed=0)
        n = 128 * 300
        t = time.perf_counter()
        m.fit(xtr[:n], Y[:n], batch_size=128, epochs=1, verbose=0, distributed=ps)
        out[f"{rule}_updates_per_sec"] = 300 / (time.perf_counter() - t)
    return out


# ---------------------------------------------------------------------------------------
# torch
def torch_model(workload):
    """(model, optimizer, input shape, channels_last) for `workload` in PyTorch."""
    import torch
    from torch import nn

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    torch.manual_seed(0)
    channels_last = workload in ("cnn", "cnn_predict")
    if workload in more.WORKLOADS:
        return more.torch_model(workload)
    if workload in ("mlp", "mlp_predict"):
        model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 10))
        opt = torch.optim.RMSprop(model.parameters(), lr=0.001, alpha=0.9, eps=1e-7)
        shape = (-1, 784)
    elif workload in ("cnn", "cnn_predict"):
        model = nn.Sequential(nn.Conv2d(1, 20, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(20, 50, 5),
                              nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(800, 500), nn.ReLU(),
                              nn.Linear(500, 10))
        model = model.to(memory_format=torch.channels_last)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        shape = (-1, 1, 28, 28)
    elif workload == "lstm":
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.lstm, self.fc = nn.LSTM(28, 128, batch_first=True), nn.Linear(128, 10)

            def forward(self, x):
                return self.fc(self.lstm(x)[0][:, -1])
        model = Net()
        opt = torch.optim.Adam(model.parameters(), lr=0.001)
        shape = (-1, 28, 28)
    elif workload == "overhead":
        mods = [nn.Linear(784, 64), nn.ReLU()]
        for _ in range(9):
            mods += [nn.Linear(64, 64), nn.ReLU()]
        model = nn.Sequential(*mods, nn.Linear(64, 10))
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        shape = (-1, 784)
    return model, opt, shape, channels_last


def run_torch(workload, steps, xtr, ytr, xte, yte):
    import torch
    from torch import nn

    model, opt, shape, channels_last = torch_model(workload)

    def prep(a):
        t = torch.from_numpy(a).reshape(shape)
        return t.contiguous(memory_format=torch.channels_last) if channels_last else t

    if workload.endswith("_predict"):
        def turn():
            t = time.perf_counter()
            with torch.no_grad():
                for i in range(0, len(xte), 256):
                    torch.softmax(model(prep(xte[i:i + 256])), 1)
            return {"seconds": time.perf_counter() - t}
        with torch.no_grad():
            model(prep(xte[:256]))
        return timed_turns(turn)
    B = BATCH[workload]
    loss_fn = nn.CrossEntropyLoss()
    X, Yt = torch.from_numpy(xtr), torch.from_numpy(ytr)

    def train(n_steps):
        perm = torch.randperm(len(X))
        for s in range(n_steps):
            idx = perm[s * B:(s + 1) * B]
            opt.zero_grad()
            loss = loss_fn(model(prep(X[idx].numpy())), Yt[idx])
            loss.backward()
            opt.step()

    train(3)
    reset_peak_rss()
    out = timed_turns(lambda: timed_steps(train, steps))
    out["train_peak_rss_mb"] = peak_rss_mb()
    model.eval()                                         # dropout off (the convnet)
    with torch.no_grad():
        acc = float((model(prep(xte)).argmax(1).numpy() == yte).mean())
    return {**out, "accuracy": acc}


# ---------------------------------------------------------------------------------------
# hand-written NumPy: the same math, float32, flat optimizer state, few ufuncs
class FlatParams:
    """Weights and gradients as views into two flat float32 buffers."""

    def __init__(self, arrays):
        n = sum(a.size for a in arrays)
        self.w, self.g = np.empty(n, np.float32), np.zeros(n, np.float32)
        self.W, self.G, o = [], [], 0
        for a in arrays:
            self.w[o:o + a.size] = a.ravel()
            self.W.append(self.w[o:o + a.size].reshape(a.shape))
            self.G.append(self.g[o:o + a.size].reshape(a.shape))
            o += a.size


def softmax_delta(z, y):
    z -= z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    z -= y
    z *= np.float32(1 / len(z))
    return z


def im2col(x, kh, kw):
    N, H, W, C = x.shape
    s = x.strides
    return np.lib.stride_tricks.as_strided(
        x, (N, H - kh + 1, W - kw + 1, kh, kw, C), (s[0], s[1], s[2], s[1], s[2], s[3]))


def pool2_forward(x):
    a, b, c, d = x[:, 0::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 0::2], x[:, 1::2, 1::2]
    y = np.maximum(np.maximum(a, b), np.maximum(c, d))
    return y


def pool2_backward(x, y, gy):
    gx = np.zeros_like(x)
    for i in (0, 1):
        for j in (0, 1):
            gx[:, i::2, j::2] = gy * (x[:, i::2, j::2] == y)
    return gx


def numpy_model(workload, rng):
    """(step(x, y_one_hot), predict(x)) of the hand-written NumPy version of `workload`."""
    if workload in more.WORKLOADS:
        return more.numpy_model(workload, rng)
    if workload in ("mlp", "mlp_predict"):
        P = FlatParams([glorot(rng, 784, 512, (784, 512)), np.zeros(512, np.float32),
                        glorot(rng, 512, 10, (512, 10)), np.zeros(10, np.float32)])
        W1, b1, W2, b2 = P.W
        gW1, gb1, gW2, gb2 = P.G
        v = np.zeros_like(P.w)
        lr, rho, eps = np.float32(0.001), np.float32(0.9), np.float32(1e-7)

        def forward(x):
            h = x @ W1
            h += b1
            mask = h > 0
            h *= mask
            z = h @ W2
            z += b2
            return h, mask, z

        def step(x, y):
            h, mask, z = forward(x)
            d = softmax_delta(z, y)
            np.matmul(h.T, d, out=gW2)
            d.sum(axis=0, out=gb2)
            dh = d @ W2.T
            dh *= mask
            np.matmul(x.T, dh, out=gW1)
            dh.sum(axis=0, out=gb1)
            g = P.g
            np.multiply(v, rho, out=v)
            np.add(v, (1 - rho) * (g * g), out=v)
            P.w -= lr * g / (np.sqrt(v) + eps)

        predict = lambda x: forward(x)[2]  # noqa: E731
    elif workload in ("cnn", "cnn_predict"):
        P = FlatParams([glorot(rng, 25, 500, (5, 5, 1, 20)), np.zeros(20, np.float32),
                        glorot(rng, 500, 1250, (5, 5, 20, 50)), np.zeros(50, np.float32),
                        glorot(rng, 800, 500, (800, 500)), np.zeros(500, np.float32),
                        glorot(rng, 500, 10, (500, 10)), np.zeros(10, np.float32)])
        K1, c1, K2, c2, W3, b3, W4, b4 = P.W
        gK1, gc1, gK2, gc2, gW3, gb3, gW4, gb4 = P.G
        vel = np.zeros_like(P.w)
        lr, mu = np.float32(0.01), np.float32(0.9)

        def conv(x, K, c):
            kh, kw, C, F = K.shape
            cols = im2col(x, kh, kw)
            N, OH, OW = cols.shape[:3]
            cols2 = cols.reshape(N * OH * OW, kh * kw * C)
            y = cols2 @ K.reshape(-1, F)
            y += c
            return cols2, y.reshape(N, OH, OW, F)

        def forward(x):
            x = x.reshape(-1, 28, 28, 1)
            cols1, a1 = conv(x, K1, c1)
            y1 = pool2_forward(a1)       # pool before ReLU (PERF.md: same result, cheaper)
            m1 = y1 > 0
            cols2, a2 = conv(y1 * m1, K2, c2)
            y2 = pool2_forward(a2)
            m2 = y2 > 0
            f = (y2 * m2).reshape(len(x), -1)
            h = f @ W3
            h += b3
            m3 = h > 0
            h *= m3
            z = h @ W4
            z += b4
            return (x, cols1, a1, y1, m1, cols2, a2, y2, m2, f, h, m3), z

        def step(x, y):
            (x, cols1, a1, y1, m1, cols2, a2, y2, m2, f, h, m3), z = forward(x)
            d = softmax_delta(z, y)
            np.matmul(h.T, d, out=gW4)
            d.sum(axis=0, out=gb4)
            dh = d @ W4.T
            dh *= m3
            np.matmul(f.T, dh, out=gW3)
            dh.sum(axis=0, out=gb3)
            df = (dh @ W3.T).reshape(y2.shape)
            df *= m2
            da2 = pool2_backward(a2, y2, df)
            d2 = da2.reshape(-1, 50)
            np.matmul(cols2.T, d2, out=gK2.reshape(-1, 50))
            d2.sum(axis=0, out=gc2)
            dcols = (d2 @ K2.reshape(-1, 50).T).reshape(len(x), 8, 8, 5, 5, 20)
            dp1 = np.zeros_like(y1)
            for i in range(5):
                for j in range(5):
                    dp1[:, i:i + 8, j:j + 8] += dcols[:, :, :, i, j]
            dp1 *= m1
            da1 = pool2_backward(a1, y1, dp1)
            d1 = da1.reshape(-1, 20)
            np.matmul(cols1.T, d1, out=gK1.reshape(-1, 20))
            d1.sum(axis=0, out=gc1)
            np.multiply(vel, mu, out=vel)
            np.subtract(vel, lr * P.g, out=vel)
            P.w += vel

        predict = lambda x: forward(x)[1]  # noqa: E731
    elif workload == "lstm":
        U, D, T = 128, 28, 28
        P = FlatParams([glorot(rng, D, 4 * U, (D, 4 * U)), glorot(rng, U, 4 * U, (U, 4 * U)),
                        np.zeros(4 * U, np.float32), glorot(rng, U, 10, (U, 10)), np.zeros(10, np.float32)])
        Wx, Wh, b, Wo, bo = P.W
        gWx, gWh, gb, gWo, gbo = P.G
        m, v = np.zeros_like(P.w), np.zeros_like(P.w)
        t_adam = [0]

        def sig(z):
            np.multiply(z, 0.5, out=z)
            np.tanh(z, out=z)
            z *= 0.5
            z += 0.5
            return z

        def forward(x):
            N = len(x)
            xs = x.reshape(N, T, D).transpose(1, 0, 2).reshape(T * N, D)
            Z = (xs @ Wx).reshape(T, N, 4 * U)
            Z += b
            H = np.zeros((T + 1, N, U), np.float32)
            C = np.zeros((T + 1, N, U), np.float32)
            G = np.empty((T, N, 4 * U), np.float32)
            TC = np.empty((T, N, U), np.float32)
            for t in range(T):
                z = G[t]
                np.matmul(H[t], Wh, out=z)
                z += Z[t]
                sig(z[:, :2 * U])
                np.tanh(z[:, 2 * U:3 * U], out=z[:, 2 * U:3 * U])
                sig(z[:, 3 * U:])
                i, f, g, o = z[:, :U], z[:, U:2 * U], z[:, 2 * U:3 * U], z[:, 3 * U:]
                np.multiply(f, C[t], out=C[t + 1])
                C[t + 1] += i * g
                np.tanh(C[t + 1], out=TC[t])
                np.multiply(o, TC[t], out=H[t + 1])
            y = H[T] @ Wo
            y += bo
            return (xs, H, C, G, TC), y

        def step(x, y):
            (xs, H, C, G, TC), z = forward(x)
            d = softmax_delta(z, y)
            N = len(x)
            np.matmul(H[T].T, d, out=gWo)
            d.sum(axis=0, out=gbo)
            dh = d @ Wo.T
            dc = np.zeros((N, U), np.float32)
            dG = np.empty((T, N, 4 * U), np.float32)
            for t in range(T - 1, -1, -1):
                g_ = G[t]
                i, f, g, o = g_[:, :U], g_[:, U:2 * U], g_[:, 2 * U:3 * U], g_[:, 3 * U:]
                dz = dG[t]
                np.multiply(dh, TC[t], out=dz[:, 3 * U:])
                dz[:, 3 * U:] *= o * (1 - o)
                dc += dh * o * (1 - TC[t] * TC[t])
                np.multiply(dc, g, out=dz[:, :U])
                dz[:, :U] *= i * (1 - i)
                np.multiply(dc, C[t], out=dz[:, U:2 * U])
                dz[:, U:2 * U] *= f * (1 - f)
                np.multiply(dc, i, out=dz[:, 2 * U:3 * U])
                dz[:, 2 * U:3 * U] *= 1 - g * g
                dc *= f
                dh = dz @ Wh.T
            dG2 = dG.reshape(T * N, 4 * U)
            np.matmul(xs.T, dG2, out=gWx)
            np.matmul(H[:T].reshape(T * N, U).T, dG2, out=gWh)
            dG2.sum(axis=0, out=gb)
            t_adam[0] += 1
            t_ = t_adam[0]
            g = P.g
            np.multiply(m, np.float32(0.9), out=m)
            np.add(m, np.float32(0.1) * g, out=m)
            np.multiply(v, np.float32(0.999), out=v)
            np.add(v, np.float32(0.001) * (g * g), out=v)
            lr_t = np.float32(0.001 * np.sqrt(1 - 0.999 ** t_) / (1 - 0.9 ** t_))
            P.w -= lr_t * m / (np.sqrt(v) + np.float32(1e-7))

        predict = lambda x: forward(x)[1]  # noqa: E731
    elif workload == "overhead":
        sizes = [784] + [64] * 10 + [10]
        arrays = []
        for a, b_ in zip(sizes[:-1], sizes[1:]):
            arrays += [glorot(rng, a, b_, (a, b_)), np.zeros(b_, np.float32)]
        P = FlatParams(arrays)
        lr = np.float32(0.01)

        def forward(x):
            acts, masks = [x], []
            h = x
            for k in range(0, len(P.W), 2):
                h = h @ P.W[k]
                h += P.W[k + 1]
                if k < len(P.W) - 2:
                    mk = h > 0
                    h *= mk
                    masks.append(mk)
                    acts.append(h)
            return acts, masks, h

        def step(x, y):
            acts, masks, z = forward(x)
            d = softmax_delta(z, y)
            for k in range(len(P.W) - 2, -1, -2):
                np.matmul(acts[k // 2].T, d, out=P.G[k])
                d.sum(axis=0, out=P.G[k + 1])
                if k:
                    d = d @ P.W[k].T
                    d *= masks[k // 2 - 1]
            P.w -= lr * P.g

        predict = lambda x: forward(x)[2]  # noqa: E731
    return step, predict


def run_numpy(workload, steps, xtr, ytr, xte, yte):
    rng = np.random.default_rng(0)
    B = BATCH.get(workload, 256)
    step, predict = numpy_model(workload, rng)
    if workload.endswith("_predict"):
        predict(xte[:256])

        def turn():
            t = time.perf_counter()
            for i in range(0, len(xte), 256):
                softmax_delta(predict(xte[i:i + 256]), 0)
            return {"seconds": time.perf_counter() - t}
        return timed_turns(turn)
    Y = one_hot(ytr)

    def train(n_steps):
        perm = rng.permutation(len(xtr))
        for s in range(n_steps):
            idx = perm[s * B:(s + 1) * B]
            step(xtr[idx], Y[idx])

    train(3)
    reset_peak_rss()
    out = timed_turns(lambda: timed_steps(train, steps))
    out["train_peak_rss_mb"] = peak_rss_mb()
    acc = float((predict(xte).argmax(1) == yte).mean())
    return {**out, "accuracy": acc}


def timed_steps(train, steps):
    """One turn of `steps` training steps: wall and CPU seconds per step."""
    t, c = time.perf_counter(), time.process_time()
    train(steps)
    dt, dc = time.perf_counter() - t, time.process_time() - c
    return {"seconds_per_step": dt / steps, "cpu_seconds_per_step": dc / steps}


def sgemm_gflops():
    a = np.random.default_rng(0).standard_normal((1024, 1024)).astype(np.float32)
    a @ a
    reps = []
    for _ in range(5):
        t = time.perf_counter()
        a @ a
        reps.append(time.perf_counter() - t)
    return 2 * 1024 ** 3 / min(reps) / 1e9


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--workload", required=True)
    p.add_argument("--impl", required=True, choices=["tidu", "torch", "numpy", "keras", "sgemm"])
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--turns", type=int, default=None,
                   help="time this many turns, each when a line arrives on stdin (bench/run.py)")
    args = p.parse_args()
    if args.turns is not None:
        if args.turns < 1:
            p.error(f"--turns: expected a positive number of turns, got {args.turns}")
        TURNS.update(count=args.turns, told=True)
    if args.impl == "sgemm":
        result = {"gflops": sgemm_gflops(), "blas": more.blas_info()}
    else:
        data = load_mnist()
        if args.workload == "convnet":                    # keras.io's model takes (28, 28, 1) images
            data = tuple(a.reshape(-1, 28, 28, 1) if a.ndim == 2 else a for a in data)
        if args.workload == "cnn_latency":
            result = more.run_latency(args.impl, args.steps, data[2])
        elif args.impl == "keras":
            result = more.run_keras(args.workload, args.steps, *data)
        else:
            fn = {"tidu": run_tidu, "torch": run_torch, "numpy": run_numpy}[args.impl]
            result = fn(args.workload, args.steps, *data)
    result["peak_rss_mb"] = peak_rss_mb()
    print(("BENCH result " if TURNS["told"] else "") + json.dumps(result))


if __name__ == "__main__":
    main()
