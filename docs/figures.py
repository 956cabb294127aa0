"""The documentation's figures, drawn by tidu at build time (never committed).

`mkdocs build` runs `on_files` below (mkdocs.yml: `hooks: [docs/figures.py]`): each function in
FIGURES draws one PNG into the cache directory (build/docs-figures, or $TIDU_DOCS_FIGURES), and
the PNGs join the site as figures/<name>.png. A figure is redrawn only when its key changes:
the sha256 of this file and of every tidu/*.py source, so a change to tidu or to a figure
redraws them all and an unchanged tree redraws nothing.

    python docs/figures.py [name ...]      # draw (all, or the named ones) and print the timings
"""
import hashlib
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
FIGSIZE = (7.5, 3.6)


def cache_dir():
    return Path(os.environ.get("TIDU_DOCS_FIGURES", ROOT / "build" / "docs-figures"))


def _pyplot():
    import matplotlib
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    _pyplot().close(fig)


def _mnist(n_train=2000, flat=True):
    from tidu.datasets import mnist
    from tidu.utils import to_categorical

    (x, y), (xt, yt) = mnist.load_subset()
    x, xt = x[:n_train].astype("float32") / 255, xt.astype("float32") / 255
    if flat:
        x, xt = x.reshape(len(x), -1), xt.reshape(len(xt), -1)
    return (x, to_categorical(y[:n_train], 10)), (xt, to_categorical(yt, 10))


# ---- one function per figure: fig_<name>(path) ---------------------------------------------

def fig_activations(path):
    """σ(z) and σ'(z) for five activations; the derivative is tidu's backward, not a formula."""
    import tidu.functional as F
    from tidu.autograd import Tensor

    plt = _pyplot()
    z = np.linspace(-4, 4, 401)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=FIGSIZE)
    for name, f in [("sigmoid", F.sigmoid), ("tanh", F.tanh), ("relu", F.relu),
                    ("leaky_relu", lambda t: F.leaky_relu(t, 0.1)), ("elu", F.elu)]:
        t = Tensor(z.copy(), requires_grad=True)
        a = f(t)
        a.sum().backward()
        ax1.plot(z, a.numpy(), label=name)
        ax2.plot(z, t.grad, label=name)
    ax1.set(title="a = σ(z)", xlabel="z", ylim=(-1.5, 3))
    ax2.set(title="σ'(z) (tidu backward)", xlabel="z", ylim=(-0.1, 1.2))
    ax1.legend(fontsize=8)
    _save(fig, path)


def fig_init_histograms(path):
    """Activations of a 10-layer tanh MLP under three initializers: too small, Glorot, too large."""
    from tidu import initializers, layers, models

    plt = _pyplot()
    x = np.random.default_rng(0).standard_normal((500, 256)).astype("float32")
    inits = [("RandomNormal(0.01)", initializers.RandomNormal(stddev=0.01, seed=0)),
             ("GlorotNormal", initializers.GlorotNormal(seed=0)),
             ("RandomNormal(1.0)", initializers.RandomNormal(stddev=1.0, seed=0))]
    fig, axes = plt.subplots(1, 3, figsize=FIGSIZE, sharey=True)
    for ax, (label, init) in zip(axes, inits):
        a = x
        for depth in range(1, 11):
            layer = layers.Dense(256, activation="tanh", kernel_initializer=init)
            a = models.Sequential([layer]).predict(a, verbose=0)
            if depth in (2, 6, 10):
                ax.hist(a.ravel(), bins=50, range=(-1, 1), histtype="step", density=True,
                        label=f"layer {depth}")
        ax.set(title=label, xlabel="tanh activation")
    axes[0].set_yscale("log")
    axes[0].legend(fontsize=8)
    _save(fig, path)


def fig_delta_norms(path):
    """‖δˡ‖ = ‖∂C/∂bˡ‖ per layer of an 8-layer MLP: sigmoid shrinks it layer by layer, relu less."""
    import tidu.functional as F
    from tidu import layers, models
    from tidu.autograd import Tensor

    plt = _pyplot()
    (x, y), _ = _mnist(256)
    fig, ax = plt.subplots(figsize=(6, 3.4))
    for act in ("sigmoid", "tanh", "relu"):
        model = models.Sequential([layers.Input((784,))] +
                                  [layers.Dense(64, activation=act) for _ in range(7)] +
                                  [layers.Dense(10, activation="softmax")])
        loss = F.categorical_crossentropy(model(Tensor(x)), y)
        loss.backward()
        norms = [np.linalg.norm(layer.bias.grad) for layer in model.layers if hasattr(layer, "bias")]
        ax.semilogy(range(1, len(norms) + 1), norms, "o-", label=act)
    ax.set(xlabel="layer l", ylabel="‖∂C/∂bˡ‖ (C: batch mean)",
           title="the δ recurrence multiplies by σ'(zˡ) at every layer")
    ax.legend()
    _save(fig, path)


def fig_regularization(path):
    """Weights of the first layer after training with L2 (λ/2n Σw²) and L1 (λ/n Σ|w|), and without."""
    from tidu import layers, models, regularizers

    plt = _pyplot()
    (x, y), _ = _mnist(1000)
    n = len(x)
    fig, ax = plt.subplots(figsize=(6, 3.4))
    for label, reg in [("none", None), ("L2, λ=50", regularizers.notes_l2(50.0, n)),
                       ("L1, λ=3", regularizers.notes_l1(3.0, n))]:
        model = models.Sequential([layers.Dense(32, activation="relu", input_shape=(784,),
                                                kernel_regularizer=reg),
                                   layers.Dense(10, activation="softmax")])
        model.compile(optimizer="sgd", loss="categorical_crossentropy")
        model.optimizer.learning_rate = 0.1
        model.fit(x, y, epochs=4, batch_size=32, verbose=0, seed=0)
        w = model.layers[0].kernel.numpy().ravel()
        ax.hist(w, bins=120, range=(-0.15, 0.15), histtype="step", label=label, density=True)
    ax.set(yscale="log", xlabel="weight of layer 1", title="weight histograms after 4 epochs")
    ax.legend()
    _save(fig, path)


def fig_augmentation(path):
    """Five MNIST digits and three augmented copies of each (shift, rotation, elastic)."""
    from tidu.data import ImageAugmenter
    from tidu.datasets import mnist

    plt = _pyplot()
    (x, _), _ = mnist.load_subset()
    x = x[:5].astype("float32") / 255
    aug = ImageAugmenter(width_shift_range=2, height_shift_range=2, rotation_range=15,
                         elastic_alpha=34, elastic_sigma=4, seed=0)
    rows = [x] + [aug(x, np.random.default_rng(k)) for k in range(3)]
    fig, axes = plt.subplots(4, 5, figsize=(5, 4))
    for i, row in enumerate(rows):
        for j in range(5):
            axes[i, j].imshow(row[j], cmap="gray_r")
            axes[i, j].axis("off")
    axes[0, 2].set_title("top: original; below: ImageAugmenter", fontsize=9)
    _save(fig, path)


def fig_conv_maps(path):
    """One digit, four 3×3 edge filters (Conv2D), and max / average / L2 pooling of one map."""
    from tidu import layers, models
    from tidu.datasets import mnist

    plt = _pyplot()
    (x, _), _ = mnist.load_subset()
    img = x[:1, :, :, None].astype("float32") / 255
    k = np.zeros((3, 3, 1, 4), "float32")
    k[:, :, 0, 0] = [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]         # vertical edges
    k[:, :, 0, 1] = k[:, :, 0, 0].T                              # horizontal edges
    k[:, :, 0, 2] = [[0, 1, 2], [-1, 0, 1], [-2, -1, 0]]         # diagonal
    k[:, :, 0, 3] = 1 / 9                                        # blur
    conv = layers.Conv2D(4, 3, padding="same", activation="relu")
    models.Sequential([layers.Input((28, 28, 1)), conv])
    conv.set_weights([k, np.zeros(4, "float32")])
    maps = conv(img).numpy()[0]
    pools = [(name, cls(2)(maps[None, :, :, :1]).numpy()[0, :, :, 0])
             for name, cls in [("max", layers.MaxPooling2D), ("average", layers.AveragePooling2D),
                               ("L2", layers.L2Pooling2D)]]
    fig, axes = plt.subplots(1, 8, figsize=(11, 1.9))
    panels = [("input", img[0, :, :, 0])] + [(f"conv map {c}", maps[:, :, c]) for c in range(4)]
    panels += [(f"{n} pool of map 0", p) for n, p in pools]
    for ax, (title, a) in zip(axes, panels):
        ax.imshow(a, cmap="gray_r")
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    _save(fig, path)


def fig_rnn_curves(path):
    """Training loss of SimpleRNN, LSTM and GRU reading MNIST digits row by row (28 steps of 28)."""
    from tidu import layers, models

    plt = _pyplot()
    (x, y), _ = _mnist(600, flat=False)
    fig, ax = plt.subplots(figsize=(6, 3.4))
    for cls in (layers.SimpleRNN, layers.LSTM, layers.GRU):
        model = models.Sequential([cls(32, input_shape=(28, 28)), layers.Dense(10, activation="softmax")])
        model.compile(optimizer="adam", loss="categorical_crossentropy")
        model.optimizer.learning_rate = 0.005
        losses = []
        for _ in range(4):
            h = model.fit(x, y, epochs=1, batch_size=32, verbose=0, seed=0)
            losses.append(h.history["loss"][-1])
        ax.plot(range(1, 5), losses, "o-", label=cls.__name__)
    ax.set(xlabel="epoch", ylabel="training loss", title="600 digits, one row per time step")
    ax.legend()
    _save(fig, path)


def fig_optimizer_paths(path):
    """First-order optimizers on Beale's function, drawn by tidu.lab.plot_trajectories."""
    from tidu import lab

    paths = lab.trajectories(["sgd", "momentum", "adagrad", "rmsprop", "adam", "rprop"], "beale",
                             steps=300)
    lab.plot_trajectories(paths, "beale", str(path), title="300 steps on Beale's function")


def fig_second_order(path):
    """f(x_k) on Rosenbrock's function: Newton, BFGS and L-BFGS against Adam and momentum."""
    from tidu import lab

    plt = _pyplot()
    fn = lab.get("rosenbrock")
    fig, ax = plt.subplots(figsize=(6, 3.4))
    for name, steps in [("adam", 300), ("momentum", 300), ("newton", 30), ("bfgs", 60), ("lbfgs", 30)]:
        p = lab.trajectories([name], "rosenbrock", steps=steps)
        values = [max(float(fn(q)), 1e-16) for q in next(iter(p.values()))]
        ax.semilogy(values, label=name)
    ax.set(xlabel="step k", ylabel="f(x_k) − f*", title="Rosenbrock from (−1.5, 2)", xscale="symlog")
    ax.legend()
    _save(fig, path)


def fig_parameter_server(path):
    """Training loss per epoch of SyncSGD, ASGD and DC-ASGD, 16 simulated workers."""
    from tidu import layers, models
    from tidu.distributed import ASGD, DCASGD, ParameterServer, SyncSGD

    plt = _pyplot()
    (x, y), _ = _mnist(1000)
    model = models.Sequential([layers.Dense(64, activation="relu", input_shape=(784,)),
                               layers.Dense(10, activation="softmax")])
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    start = model.get_weights()
    fig, ax = plt.subplots(figsize=(6, 3.4))
    # the paper's form: at η = 0.4 with 16 workers the authors' (one MeanSquare per worker, each
    # warming up from 0 on its own pushes) overflows at update 78
    for rule in (SyncSGD(0.4), ASGD(0.4), DCASGD(0.4, form="paper")):
        model.set_weights(start)
        ps = ParameterServer(rule, num_workers=16, schedule="random", seed=0)
        h = model.fit(x, y, batch_size=32, epochs=4, verbose=0, distributed=ps)
        ax.plot(range(1, 5), h.history["loss"], "o-", label=type(rule).__name__)
    ax.set(xlabel="epoch", ylabel="training loss", yscale="log",
           title="1,000 digits, 16 simulated workers, η = 0.4")
    ax.legend()
    _save(fig, path)


def fig_lr_find(path):
    """The LR range test on a small MLP: the loss against an exponentially rising learning rate."""
    from tidu import layers, models, tuning

    (x, y), _ = _mnist(2000)
    model = models.Sequential([layers.Dense(64, activation="relu", input_shape=(784,)),
                               layers.Dense(10, activation="softmax")])
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    result = tuning.lr_find(model, x, y, method="range", steps=120, min_lr=1e-4, max_lr=10.0)
    result.plot(str(path))


FIGURES = {name[4:]: fn for name, fn in sorted(globals().items()) if name.startswith("fig_")}


# ---- the cache and the mkdocs hook ---------------------------------------------------------

def source_key():
    """sha256 of this file and every tidu/**/*.py: the figures depend on nothing else."""
    h = hashlib.sha256(Path(__file__).read_bytes())
    for p in sorted((ROOT / "tidu").rglob("*.py")):
        h.update(str(p.relative_to(ROOT)).encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def draw(names=None, out=None, log=print):
    """Draw the named figures (all by default) into `out` unless cached; {name: png path}."""
    from tidu.utils import set_random_seed

    out = Path(out or cache_dir())
    out.mkdir(parents=True, exist_ok=True)
    key = source_key()
    done = {}
    for name in names or FIGURES:
        png, stamp = out / f"{name}.png", out / f"{name}.key"
        if not (png.exists() and stamp.exists() and stamp.read_text() == key):
            t0 = time.perf_counter()
            set_random_seed(0)              # the same figure from the same code, every build
            FIGURES[name](png)
            stamp.write_text(key)
            log(f"figure {name}: {time.perf_counter() - t0:.1f} s")
        done[name] = png
    return done


def on_files(files, config):
    """mkdocs hook: draw the figures and add them to the site as figures/<name>.png."""
    import logging

    from mkdocs.structure.files import File

    sys.path.insert(0, str(ROOT))
    log = logging.getLogger("mkdocs.hooks.figures")
    for name, png in draw(log=log.info).items():
        files.append(File.generated(config, f"figures/{name}.png", abs_src_path=str(png)))
    return files


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    t = time.perf_counter()
    draw(sys.argv[1:] or None)
    print(f"total {time.perf_counter() - t:.1f} s")
