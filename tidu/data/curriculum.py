"""Curriculum learning: easy examples first, harder ones added as training goes on."""
import math

import numpy as np

PACINGS = ("linear", "root", "step")


def pacing_fraction(epoch, pacing="linear", start_fraction=0.2, epochs_to_full=10):
    """The fraction f(t) of the training set, easiest first, available at epoch t (0-based).

    With f0 = start_fraction and T = epochs_to_full, all three grow from f(0) = f0 to
    f(t) = 1 for t >= T:
        linear:  f(t) = min(1, f0 + (1 − f0) · t / T)
        root:    f(t) = min(1, sqrt(f0² + (1 − f0²) · t / T))   fast at first, then slower
        step:    f(t) = f0 for t < T, 1 for t >= T                single-step pacing
    'root' is the square-root competence of Platanios et al., "Competence-based Curriculum
    Learning for Neural Machine Translation", NAACL 2019; 'step' is the single-step pacing
    function of Hacohen & Weinshall, "On the Power of Curriculum Learning in Training Deep
    Networks", ICML 2019.
    """
    if pacing not in PACINGS:
        raise ValueError(f"curriculum: expected pacing in {PACINGS}, got {pacing!r}")
    if not 0.0 < start_fraction <= 1.0:
        raise ValueError(f"curriculum: expected 0 < start_fraction <= 1, "
                         f"got start_fraction={start_fraction!r}")
    if isinstance(epochs_to_full, bool) or not isinstance(epochs_to_full, (int, np.integer)) \
            or epochs_to_full <= 0:
        raise ValueError(f"curriculum: expected epochs_to_full to be a positive int, "
                         f"got {epochs_to_full!r}")
    if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
        raise ValueError(f"curriculum: expected epoch to be an int >= 0, got {epoch!r}")
    f0, t, T = start_fraction, epoch, epochs_to_full
    if pacing == "linear":
        return min(1.0, f0 + (1 - f0) * t / T)
    if pacing == "root":
        return min(1.0, math.sqrt(f0**2 + (1 - f0**2) * t / T))
    return f0 if t < T else 1.0


def curriculum_order(scores, epoch, pacing="linear", start_fraction=0.2, epochs_to_full=10):
    """The indices of the samples to present at `epoch` (0-based), easiest first.

    scores: one difficulty score per sample, lower = easier (a pretrained model's loss on
        it, a teacher's confidence negated, a hand-made measure ...).
    Returns the ceil(f(t) · N) lowest-scored indices, sorted by score (ties keep sample
    order), where f(t) = pacing_fraction(epoch, pacing, start_fraction, epochs_to_full).

    This is the curriculum of Bengio et al., "Curriculum Learning", ICML 2009: train on the
    easy part of the data, then widen it until it is the whole set; the pacing function
    decides how fast (Hacohen & Weinshall 2019). The order within the returned set is easy
    to hard; to draw mini-batches at random from it, e.g.
        idx = curriculum_order(losses, epoch)
        for xb, yb in batches(x[idx], y[idx], rng=rng): ...
    """
    scores = np.asarray(scores)
    if scores.ndim != 1 or scores.size == 0:
        raise ValueError(f"curriculum_order: expected a non-empty 1-D array of scores, "
                         f"got shape {scores.shape}")
    if scores.dtype.kind not in "iuf" or not np.all(np.isfinite(scores)):
        raise ValueError("curriculum_order: expected finite numeric scores, got "
                         + (f"dtype {scores.dtype}" if scores.dtype.kind not in "iuf"
                            else "NaN or inf"))
    fraction = pacing_fraction(epoch, pacing, start_fraction, epochs_to_full)
    n = math.ceil(fraction * len(scores) - 1e-9)  # 0.3 * 10 is 3.0000000000000004
    return np.argsort(scores, kind="stable")[:max(1, n)]
