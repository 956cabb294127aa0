"""Contour plots of a test function with every optimizer's path, and an animated GIF.

matplotlib is the extra `plot` (`pip install tidu[plot]`); it is imported only here, lazily.
"""
import numpy as np

from tidu.lab.functions import get
from tidu.utils import pyplot


def _pyplot():
    return pyplot("tidu.lab plots")


def _contour(ax, fn):
    x = np.linspace(*fn.xlim, 300)
    y = np.linspace(*fn.ylim, 300)
    X, Y = np.meshgrid(x, y)
    Z = fn._f(X, Y)
    if fn.log_levels:
        levels = np.logspace(np.log10(max(Z.min(), 1e-3) + 1e-3), np.log10(Z.max()), 30)
        ax.contour(X, Y, Z + 1e-3, levels=levels, cmap="viridis", linewidths=0.6)
    else:
        ax.contour(X, Y, Z, levels=30, cmap="viridis", linewidths=0.6)
    for m in fn.minima:
        ax.plot(*m, "r*", markersize=14, zorder=5)
    ax.set_xlim(fn.xlim)
    ax.set_ylim(fn.ylim)
    ax.set_xlabel("x")
    ax.set_ylabel("y")


def plot_trajectories(paths, function, out, title=None):
    """Draw `paths` ({label: (steps+1, 2) array}, from `trajectories`) over the contours of
    `function` and save to `out` (PNG). Returns the path written."""
    plt = _pyplot()
    fn = get(function)
    fig, ax = plt.subplots(figsize=(8, 6.5))
    _contour(ax, fn)
    for label, path in paths.items():
        path = np.clip(path, [fn.xlim[0] - 1, fn.ylim[0] - 1], [fn.xlim[1] + 1, fn.ylim[1] + 1])
        ax.plot(path[:, 0], path[:, 1], "-", lw=1.6, label=label, marker=".", markersize=2)
    ax.plot(*np.asarray(next(iter(paths.values())))[0], "ko", markersize=6)
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(title or f"{fn.name}: {len(paths)} optimizers, {len(next(iter(paths.values()))) - 1} steps")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def animate_trajectories(paths, function, out, frames=60, fps=15):
    """An animated GIF of the paths being drawn (matplotlib's Pillow writer)."""
    plt = _pyplot()
    from matplotlib.animation import FuncAnimation, PillowWriter

    fn = get(function)
    fig, ax = plt.subplots(figsize=(6.5, 5.2))
    _contour(ax, fn)
    lines = {label: ax.plot([], [], "-", lw=1.6, label=label)[0] for label in paths}
    ax.legend(loc="upper left", fontsize=7)
    n = len(next(iter(paths.values())))
    idx = np.unique(np.linspace(1, n, frames).astype(int))

    def draw(k):
        for label, line in lines.items():
            line.set_data(paths[label][:k, 0], paths[label][:k, 1])
        return list(lines.values())

    anim = FuncAnimation(fig, draw, frames=idx, blit=True)
    anim.save(out, writer=PillowWriter(fps=fps))
    plt.close(fig)
    return out
