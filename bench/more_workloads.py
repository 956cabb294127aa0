"""The workloads added for issue 14, used by bench/workloads.py (which runs one per process).

    gru          GRU(128) on 28x28 sequential MNIST, Adam, batch 128 (as the LSTM workload)
    simplernn    SimpleRNN(128), the same
    cnn_latency  the LeNet CNN predicting batches of 32 one after another: ms per batch
    convnet      keras.io's "Simple MNIST convnet" (Conv2D 32 3x3 relu, MaxPool 2, Conv2D 64 3x3
                 relu, MaxPool 2, Flatten, Dropout 0.5, Dense 10 softmax; Adam, categorical
                 crossentropy, batch 128), the same model code run by tidu and by the real Keras 3
                 (KERAS_BACKEND=torch); PyTorch runs the same net written in torch

Hand-written NumPy versions: GRU, SimpleRNN and the latency workload (the LeNet forward pass of
workloads.py); none for the convnet. The GRU is Keras's reset_after=True form (torch's):
    z = σ(x·Wz + bz + h·Uz + b'z),  r = σ(x·Wr + br + h·Ur + b'r)
    n = tanh(x·Wn + bn + r ⊙ (h·Un + b'n)),   h' = z ⊙ h + (1 − z) ⊙ n
and the SimpleRNN h' = tanh(x·W + h·U + b).
"""
import os
import time

import numpy as np

WORKLOADS = ("gru", "simplernn", "cnn_latency", "convnet")
STEPS_PER_EPOCH = {"gru": 469, "simplernn": 469, "convnet": 469}
BATCH = {"gru": 128, "simplernn": 128, "convnet": 128, "cnn_latency": 32}


def blas_info():
    """NumPy's BLAS as threadpoolctl reports it, in this process (the workloads' environment)."""
    try:
        import threadpoolctl
    except ImportError:
        return None
    info = [i for i in threadpoolctl.threadpool_info() if i.get("user_api") == "blas"]
    if not info:
        return {}
    i = info[0]
    return {k: i.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}


def flops_per_step(workload):
    """Multiply-adds × 2 of one training step, forward + backward (no gradient for the input)."""
    if workload in ("gru", "simplernn"):
        B, T, D, U = 128, 28, 28, 128
        g = 3 if workload == "gru" else 1
        fwd = 2 * B * T * (D + U) * g * U + 2 * B * U * 10
        return fwd + 2 * B * T * (U * g * U * 2 + D * g * U) + 2 * 2 * B * U * 10
    if workload == "convnet":
        B = 128
        c1 = 2 * B * 26 * 26 * 9 * 1 * 32
        c2 = 2 * B * 11 * 11 * 9 * 32 * 64
        d = 2 * B * 1600 * 10
        return (c1 + c2 + d) + (c1 + 2 * c2 + 2 * d)
    return None


# ---------------------------------------------------------------------------------------
# models
def simple_mnist_convnet(keras):
    """keras.io's "Simple MNIST convnet", written once for any module with Keras's API
    (`tidu` or `keras`): the model and its compile call as the example has them."""
    layers = keras.layers
    model = keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Flatten(),
        layers.Dropout(0.5),
        layers.Dense(10, activation="softmax"),
    ])
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model


def tidu_model(workload):
    import tidu
    from tidu import layers, models, optimizers

    if workload == "convnet":
        return simple_mnist_convnet(tidu)
    if workload == "cnn_latency":
        from workloads import tidu_model as lenet
        return lenet("cnn_predict")
    rnn = layers.GRU(128) if workload == "gru" else layers.SimpleRNN(128)
    m = models.Sequential([layers.Reshape((28, 28), input_shape=(784,)), rnn,
                           layers.Dense(10, activation="softmax")])
    m.compile(optimizer=optimizers.Adam(learning_rate=0.001), loss="categorical_crossentropy",
              metrics=["accuracy"])
    return m


def torch_model(workload):
    """(model, optimizer, input shape, channels_last); seeds and threads set by the caller."""
    import torch
    from torch import nn

    if workload == "convnet":
        model = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3),
                              nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.5),
                              nn.Linear(1600, 10)).to(memory_format=torch.channels_last)
        opt = torch.optim.Adam(model.parameters(), lr=0.001, eps=1e-7)     # Keras's "adam"
        return model, opt, (-1, 1, 28, 28), True
    if workload == "cnn_latency":
        from workloads import torch_model as lenet
        return lenet("cnn_predict")
    cell = nn.GRU if workload == "gru" else nn.RNN

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn, self.fc = cell(28, 128, batch_first=True), nn.Linear(128, 10)

        def forward(self, x):
            return self.fc(self.rnn(x)[0][:, -1])
    model = Net()
    return model, torch.optim.Adam(model.parameters(), lr=0.001), (-1, 28, 28), False


# ---------------------------------------------------------------------------------------
# hand-written NumPy
def adam(P):
    """Adam on FlatParams P (Keras's ε = 1e-7, on the bias-corrected step size)."""
    m, v, t = np.zeros_like(P.w), np.zeros_like(P.w), [0]

    def update():
        t[0] += 1
        g = P.g
        np.multiply(m, np.float32(0.9), out=m)
        np.add(m, np.float32(0.1) * g, out=m)
        np.multiply(v, np.float32(0.999), out=v)
        np.add(v, np.float32(0.001) * (g * g), out=v)
        lr_t = np.float32(0.001 * np.sqrt(1 - 0.999 ** t[0]) / (1 - 0.9 ** t[0]))
        P.w -= lr_t * m / (np.sqrt(v) + np.float32(1e-7))
    return update


def numpy_model(workload, rng):
    """(step(x, y_one_hot), predict(x)) in float32 NumPy."""
    from workloads import FlatParams, glorot, numpy_model as lenet, softmax_delta

    if workload == "cnn_latency":
        return lenet("cnn_predict", rng)
    if workload == "convnet":
        raise NotImplementedError("no hand-written NumPy version of the convnet")
    U, D, T = 128, 28, 28
    g = 3 if workload == "gru" else 1
    P = FlatParams([glorot(rng, D, g * U, (D, g * U)), glorot(rng, U, g * U, (U, g * U)),
                    np.zeros((2, g * U), np.float32), glorot(rng, U, 10, (U, 10)), np.zeros(10, np.float32)])
    Wx, Wh, b, Wo, bo = P.W
    gWx, gWh, gb, gWo, gbo = P.G
    update = adam(P)

    def sig(z):
        np.multiply(z, 0.5, out=z)
        np.tanh(z, out=z)
        z *= 0.5
        z += 0.5
        return z

    def forward(x):
        N = len(x)
        xs = x.reshape(N, T, D).transpose(1, 0, 2).reshape(T * N, D)
        Z = (xs @ Wx).reshape(T, N, g * U)
        Z += b[0]
        H = np.zeros((T + 1, N, U), np.float32)
        A = np.empty((T, N, g * U), np.float32) if g == 3 else None   # GRU's gates z, r, n
        HN = np.empty((T, N, U), np.float32) if g == 3 else None      # GRU's h·Un + b'n
        for t in range(T):
            if g == 1:                                   # A is unused: h' is the activation
                np.matmul(H[t], Wh, out=H[t + 1])
                H[t + 1] += Z[t]
                H[t + 1] += b[1]
                np.tanh(H[t + 1], out=H[t + 1])
                continue
            a = A[t]
            hu = H[t] @ Wh
            hu += b[1]
            np.add(Z[t, :, :2 * U], hu[:, :2 * U], out=a[:, :2 * U])
            sig(a[:, :2 * U])
            z, r, n = a[:, :U], a[:, U:2 * U], a[:, 2 * U:]
            HN[t] = hu[:, 2 * U:]
            np.multiply(r, HN[t], out=n)
            n += Z[t, :, 2 * U:]
            np.tanh(n, out=n)
            np.subtract(H[t], n, out=H[t + 1])           # h' = n + z ⊙ (h − n)
            H[t + 1] *= z
            H[t + 1] += n
        y = H[T] @ Wo
        y += bo
        return (xs, H, A, HN), y

    def step(x, y):
        (xs, H, A, HN), zo = forward(x)
        d = softmax_delta(zo, y)
        N = len(x)
        np.matmul(H[T].T, d, out=gWo)
        d.sum(axis=0, out=gbo)
        dh = d @ Wo.T
        dA = np.empty((T, N, g * U), np.float32)      # ∂L/∂(x·W + b): the input side's gates
        dHU = np.empty((T, N, g * U), np.float32) if g == 3 else dA   # ∂L/∂(h·U + b')
        for t in range(T - 1, -1, -1):
            da = dA[t]
            if g == 1:
                np.multiply(dh, 1 - H[t + 1] * H[t + 1], out=da)
                dh = da @ Wh.T
                continue
            z, r, n = A[t, :, :U], A[t, :, U:2 * U], A[t, :, 2 * U:]
            dn = dh * (1 - z) * (1 - n * n)                                 # through tanh
            np.multiply(dh * (H[t] - n), z * (1 - z), out=da[:, :U])       # ∂/∂z pre-activation
            np.multiply(dn * HN[t], r * (1 - r), out=da[:, U:2 * U])       # ∂/∂r pre-activation
            da[:, 2 * U:] = dn
            dHU[t, :, :2 * U] = da[:, :2 * U]
            np.multiply(dn, r, out=dHU[t, :, 2 * U:])
            dh = dh * z + dHU[t] @ Wh.T
        np.matmul(xs.T, dA.reshape(T * N, g * U), out=gWx)
        np.matmul(H[:T].reshape(T * N, U).T, dHU.reshape(T * N, g * U), out=gWh)
        dA.reshape(T * N, g * U).sum(axis=0, out=gb[0])
        dHU.reshape(T * N, g * U).sum(axis=0, out=gb[1])
        update()

    return step, lambda x: forward(x)[1]


# ---------------------------------------------------------------------------------------
# runners with their own loops: the latency workload (all implementations) and Keras
def run_latency(impl, n_batches, xte):
    """Predict `n_batches` batches of 32 test images one after another (the LeNet CNN); report
    the mean and median milliseconds per batch and the peak RSS over the timed loops. tidu's
    ms_per_batch is model.predict_on_batch (torch: model(x) under no_grad; NumPy: the forward
    pass); predict_ms_per_batch is tidu's model.predict(x) on the same batches, timed after
    them in the same turn (workloads.timed_turns)."""
    from workloads import peak_rss_mb, reset_peak_rss, timed_turns

    batches = [xte[(i * 32) % 9984:(i * 32) % 9984 + 32] for i in range(n_batches)]
    if impl == "tidu":
        m = tidu_model("cnn_latency")
        calls = {"": m.predict_on_batch, "predict_": lambda x: m.predict(x, batch_size=32)}
    elif impl == "torch":
        import torch
        model, _, shape, _ = torch_model("cnn_latency")
        model.eval()

        def call(x):
            with torch.no_grad():
                t = torch.from_numpy(x).reshape(shape).contiguous(memory_format=torch.channels_last)
                return torch.softmax(model(t), 1).numpy()
        calls = {"": call}
    elif impl == "numpy":
        from workloads import softmax_delta
        _, predict = numpy_model("cnn_latency", np.random.default_rng(0))
        calls = {"": lambda x: softmax_delta(predict(x), 0)}
    else:
        raise ValueError(f"cnn_latency: no implementation {impl!r}")
    for call in calls.values():
        for x in batches[:5]:
            call(x)

    def turn():
        out = {}
        for prefix, call in calls.items():
            times = []
            for x in batches:
                t = time.perf_counter()
                call(x)
                times.append(time.perf_counter() - t)
            out[prefix + "ms_per_batch"] = 1000 * sum(times) / len(times)
            out[prefix + "median_ms_per_batch"] = 1000 * float(np.median(times))
        return out
    reset_peak_rss()
    out = timed_turns(turn)
    out["timed_peak_rss_mb"] = peak_rss_mb()
    return out


def run_keras(workload, steps, xtr, ytr, xte, yte):
    """The real Keras 3 (torch backend, BENCH_THREADS threads) training keras.io's convnet with
    model.fit, timed as run_tidu times tidu."""
    if workload != "convnet":
        raise ValueError(f"keras runs the convnet only, not {workload!r}")
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras
    import torch

    from workloads import time_fit

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    keras.utils.set_random_seed(0)
    return time_fit(simple_mnist_convnet(keras), workload, steps, xtr, ytr, xte, yte)
