"""Metrics from confusion counts at thresholds: Precision, Recall and AUC, as Keras 3 has them.

A prediction a is called positive at threshold t when a > t, a target y is positive when y ≠ 0.
Over every value seen (all labels pooled, unless AUC's multi_label), weighted by sample_weight w:

    TP(t) = Σ w·[y ≠ 0]·[a > t]     FP(t) = Σ w·[y = 0]·[a > t]
    FN(t) = Σ w·[y ≠ 0]·[a ≤ t]     TN(t) = Σ w·[y = 0]·[a ≤ t]

    precision(t) = TP / (TP + FP),   recall(t) = TP / (TP + FN)        (0 where 0/0)

Thresholds spread evenly over [0, 1] (AUC's default: t_i = i/(T − 1), with the first moved to
−ε and the last to 1 + ε, ε = 1e-7, so that a = 0 and a = 1 fall inside) are counted as Keras
does, in float32: a is clipped to [0, 1] and falls in bucket ⌈a·(T − 1)⌉ − 1 (at least 0 with
the ε ends), a positive for every threshold up to its bucket.

AUC over the T thresholds, each step i -> i + 1 a piece of the curve:

    ROC       x = FP/(FP + TN), y = recall;   Σ_i (x_i − x_{i+1})·h_i
    PR        x = recall, y = precision;      'interpolation': Davis & Goadrich's, below
    PRGAIN    x = recall gain, y = precision gain (Flach & Kull)
    h_i = (y_i + y_{i+1})/2 ('interpolation'), min ('minoring') or max ('majoring')

PR interpolation (Davis & Goadrich, "The Relationship Between Precision-Recall and ROC Curves",
ICML 2006): between two thresholds TP is linear in P = TP + FP, TP = s·P + b with
s = ΔTP/ΔP, so precision = s + b/P and the area of the piece is
    s·(ΔTP + b·ln(P_i / P_{i+1})) / (TP_{i+1} + FN_{i+1})        (ln term 0 where a P is 0).
"""
import numpy as np

from tidu.metrics.core import Metric, to_numpy

__all__ = ["Precision", "Recall", "AUC", "confusion_counts"]

EPSILON = 1e-7
NEG_INF = -1e10     # Keras' threshold for top_k: every kept prediction is a positive
_CURVES = {"roc": "ROC", "pr": "PR", "prgain": "PRGAIN"}
_SUMMATIONS = ("interpolation", "minoring", "majoring")


def _divide(x, y):
    """x / y, 0 where y = 0 (Keras' divide_no_nan)."""
    x, y = np.broadcast_arrays(np.asarray(x, np.float64), np.asarray(y, np.float64))
    out = np.zeros(x.shape)
    np.divide(x, y, out=out, where=y != 0)
    return out


def _same_rank(x1, x2, expand_rank_1=True):
    """Drop or add a trailing axis of size 1 so the ranks agree (as Keras' losses do)."""
    if x1.ndim == x2.ndim + 1 and x1.shape[-1] == 1:
        if x2.ndim == 1 and expand_rank_1:
            x2 = x2[:, None]
        else:
            x1 = x1[..., 0]
    elif x2.ndim == x1.ndim + 1 and x2.shape[-1] == 1:
        if x1.ndim == 1 and expand_rank_1:
            x1 = x1[:, None]
        else:
            x2 = x2[..., 0]
    return x1, x2


def _evenly_spread(thresholds):
    n = len(thresholds)
    return n >= 3 and bool(np.allclose(thresholds, np.arange(n, dtype=np.float32) / (n - 1),
                                       atol=EPSILON))


def _top_k(a, k):
    """Keep the k largest predictions of each row; the others become NEG_INF."""
    keep = np.zeros(a.shape, bool)
    idx = np.argsort(-a, axis=-1, kind="stable")[..., :k]
    np.put_along_axis(keep, idx, True, axis=-1)
    return np.where(keep, a, np.float32(NEG_INF)).astype(np.float32)


def confusion_counts(y_true, y_pred, thresholds, sample_weight=None, evenly=False,
                     multi_label=False, label_weights=None, top_k=None, class_id=None,
                     where="confusion_counts"):
    """(TP, FP, TN, FN) at each threshold: arrays of shape (T,), or (T, labels) for multi_label."""
    a = to_numpy(y_pred).astype(np.float32)
    y = to_numpy(y_true).astype(np.float32)
    a, y = _same_rank(a, y)
    if a.shape != y.shape:
        raise ValueError(f"{where}: expected y_true and y_pred of the same shape, got y_true "
                         f"{y.shape} and y_pred {a.shape}")
    if a.ndim == 0:
        a, y = a.reshape(1), y.reshape(1)
    w = None
    if sample_weight is not None:
        w = to_numpy(sample_weight).astype(np.float32)[..., None]
        _, w = _same_rank(y, w, expand_rank_1=False)
        try:
            w = np.broadcast_to(w.reshape(w.shape + (1,) * (a.ndim - w.ndim)), a.shape)
        except ValueError:
            raise ValueError(f"{where}: expected sample_weight of shape ({a.shape[0]},) (one "
                             f"per sample), got {to_numpy(sample_weight).shape}") from None
    if top_k is not None:
        a = _top_k(a, top_k)
    if class_id is not None:
        if a.ndim == 1:
            raise ValueError(f"{where}: class_id needs y_pred of shape (samples, classes), "
                             f"got {a.shape}")
        a, y = a[..., class_id, None], y[..., class_id, None]
        w = None if w is None else w[..., class_id, None]
    if label_weights is not None:
        lw = np.broadcast_to(np.asarray(label_weights, np.float32), a.shape)
        w = lw if w is None else w * lw
    if not multi_label:
        a, y = a.reshape(-1), y.reshape(-1)
        w = None if w is None else w.reshape(-1)
    elif a.ndim != 2:
        raise ValueError(f"{where}: multi_label needs y_pred of shape (samples, labels), got {a.shape}")
    pos = (y != 0).astype(np.float64)
    weight = np.ones(a.shape) if w is None else w.astype(np.float64)
    true_w, false_w = pos * weight, (1.0 - pos) * weight
    t = np.asarray(thresholds, np.float32)
    if evenly:
        tp, fp = _bucket_counts(a, true_w, false_w, t)
    else:
        above = a[None] > t.reshape((-1,) + (1,) * a.ndim)     # (T, ...) [a > t]
        tp, fp = (above * true_w).sum(axis=1), (above * false_w).sum(axis=1)
    return tp, fp, false_w.sum(axis=0) - fp, true_w.sum(axis=0) - tp


def _bucket_counts(a, true_w, false_w, t):
    """TP and FP at evenly spread thresholds by bucketing a (see the module docstring)."""
    n = len(t)
    with_eps = bool(t[0] < 0 or t[-1] > 1)
    bucket = np.ceil(np.clip(a, 0, 1) * (np.float32(n) - np.float32(1))) - 1
    if with_eps:
        bucket = np.maximum(bucket, 0)
    bucket = bucket.astype(np.int64)
    keep = bucket >= 0

    def count(wts):
        if a.ndim == 1:
            per = np.bincount(bucket[keep], wts[keep], minlength=n)
        else:
            per = np.stack([np.bincount(bucket[keep[:, j], j], wts[keep[:, j], j], minlength=n)
                            for j in range(a.shape[1])], axis=1)
        return np.cumsum(per[::-1], axis=0)[::-1]      # bucket ≥ i: a above threshold i

    return count(true_w), count(false_w)


def _parse_thresholds(thresholds, default, where):
    values = [default] if thresholds is None else (
        list(thresholds) if isinstance(thresholds, (list, tuple, np.ndarray)) else [thresholds])
    if thresholds is not None:
        bad = [v for v in values if v is None or not 0 <= v <= 1]
        if bad:
            raise ValueError(f"{where}: expected thresholds in [0, 1], got {bad}")
    return [float(v) for v in values]


class _ThresholdMetric(Metric):
    """Precision / Recall: TP and one other count at each of `thresholds`."""

    state_arrays = ("true_positives", "other")

    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None, dtype=None):
        where = type(self).__name__
        if top_k is not None and (int(top_k) != top_k or top_k < 1):
            raise ValueError(f"{where}: expected top_k to be a positive integer, got {top_k!r}")
        self.init_thresholds = thresholds
        self.top_k, self.class_id = top_k, class_id
        self.thresholds = _parse_thresholds(thresholds, 0.5 if top_k is None else NEG_INF, where)
        self.evenly = _evenly_spread(self.thresholds)
        super().__init__(name=name, dtype=dtype)

    def reset_state(self):
        self.true_positives = np.zeros(len(self.thresholds))
        self.other = np.zeros(len(self.thresholds))

    def update_state(self, y_true, y_pred, sample_weight=None):
        tp, fp, _, fn = confusion_counts(y_true, y_pred, self.thresholds, sample_weight, self.evenly,
                                         top_k=self.top_k, class_id=self.class_id, where=self.name)
        self.true_positives += tp
        self.other += fp if self.counts == "fp" else fn

    def result(self):
        r = _divide(self.true_positives, self.true_positives + self.other)
        return float(r[0]) if len(self.thresholds) == 1 else r

    def get_config(self):
        thresholds = self.init_thresholds
        if isinstance(thresholds, np.ndarray):
            thresholds = thresholds.tolist()
        return {"name": self.name, "thresholds": thresholds, "top_k": self.top_k,
                "class_id": self.class_id}


class Precision(_ThresholdMetric):
    """TP / (TP + FP) at each threshold (0.5 by default; with top_k, the k largest predictions
    of each row are the positives; class_id: that class alone)."""
    counts = "fp"

    @property
    def false_positives(self):
        return self.other


class Recall(_ThresholdMetric):
    """TP / (TP + FN) at each threshold (0.5 by default; top_k and class_id as for Precision)."""
    counts = "fn"

    @property
    def false_negatives(self):
        return self.other


class AUC(Metric):
    """Area under the ROC or PR curve from confusion counts at num_thresholds thresholds
    (see the module docstring). from_logits: a = sigmoid(y_pred). multi_label: one curve per
    label (y_pred of shape (N, labels)), averaged (weighted by label_weights)."""

    def __init__(self, num_thresholds=200, curve="ROC", summation_method="interpolation", name=None,
                 dtype=None, thresholds=None, multi_label=False, num_labels=None,
                 label_weights=None, from_logits=False):
        curve_key = str(curve).lower()
        if curve_key not in _CURVES:
            raise ValueError(f"AUC: expected curve to be 'ROC', 'PR' or 'PRGAIN', got {curve!r}")
        if str(summation_method).lower() not in _SUMMATIONS:
            raise ValueError(f"AUC: expected summation_method to be one of {', '.join(_SUMMATIONS)}, "
                             f"got {summation_method!r}")
        self.curve, self.summation_method = _CURVES[curve_key], str(summation_method).lower()
        self._init_from_thresholds = thresholds is not None
        if thresholds is not None:
            inner = sorted(_parse_thresholds(thresholds, None, "AUC"))
            self.num_thresholds = len(inner) + 2
            self.evenly = _evenly_spread([0.0] + inner + [1.0])
        else:
            if int(num_thresholds) != num_thresholds or num_thresholds <= 1:
                raise ValueError(f"AUC: expected num_thresholds to be an integer > 1, got "
                                 f"{num_thresholds!r}")
            self.num_thresholds = int(num_thresholds)
            inner = [(i + 1) / (self.num_thresholds - 1) for i in range(self.num_thresholds - 2)]
            self.evenly = True
        self._thresholds = np.array([0.0 - EPSILON] + inner + [1.0 + EPSILON])
        if num_labels and not multi_label:
            raise ValueError("AUC: num_labels is for multi_label=True only")
        self.multi_label, self.num_labels = bool(multi_label), num_labels
        self.label_weights = None if label_weights is None else np.asarray(label_weights, np.float64)
        self.from_logits = bool(from_logits)
        super().__init__(name=name or "auc", dtype=dtype)

    state_arrays = ("true_positives", "false_positives", "true_negatives", "false_negatives")

    @property
    def thresholds(self):
        return list(self._thresholds)

    def reset_state(self):
        labels = self.num_labels if self.multi_label else None
        shape = None if self.multi_label and not labels else (
            (self.num_thresholds, labels) if labels else (self.num_thresholds,))
        self.true_positives = self.false_positives = None
        self.true_negatives = self.false_negatives = None
        if shape is not None:
            self.true_positives, self.false_positives = np.zeros(shape), np.zeros(shape)
            self.true_negatives, self.false_negatives = np.zeros(shape), np.zeros(shape)

    def update_state(self, y_true, y_pred, sample_weight=None):
        a = to_numpy(y_pred).astype(np.float32)
        if self.from_logits:
            a = (1 / (1 + np.exp(-a.astype(np.float64)))).astype(np.float32)
        tp, fp, tn, fn = confusion_counts(
            y_true, a, self._thresholds, sample_weight, self.evenly, multi_label=self.multi_label,
            label_weights=None if self.multi_label else self.label_weights, where=self.name)
        if self.true_positives is None:
            self.true_positives, self.false_positives = np.zeros(tp.shape), np.zeros(tp.shape)
            self.true_negatives, self.false_negatives = np.zeros(tp.shape), np.zeros(tp.shape)
        self.true_positives += tp
        self.false_positives += fp
        self.true_negatives += tn
        self.false_negatives += fn

    def _average(self, by_label):
        if not self.multi_label:
            return float(by_label)
        if self.label_weights is None:
            return float(np.mean(by_label))
        return float(_divide(np.sum(by_label * self.label_weights), np.sum(self.label_weights)))

    def _interpolate_pr(self):
        """Davis & Goadrich's PR area (see the module docstring)."""
        tp, fp, fn = self.true_positives, self.false_positives, self.false_negatives
        p = tp + fp
        dtp, dp = tp[:-1] - tp[1:], p[:-1] - p[1:]
        slope = _divide(dtp, np.maximum(dp, 0))
        intercept = tp[1:] - slope * p[1:]
        both = (p[:-1] > 0) & (p[1:] > 0)
        ratio = np.where(both, _divide(p[:-1], np.maximum(p[1:], 0)), 1.0)
        piece = _divide(slope * (dtp + intercept * np.log(ratio)), np.maximum(tp[1:] + fn[1:], 0))
        return self._average(piece.sum(axis=0))

    def result(self):
        if self.true_positives is None:
            return 0.0
        if self.curve == "PR" and self.summation_method == "interpolation":
            return self._interpolate_pr()
        tp, fp, tn, fn = (self.true_positives, self.false_positives, self.true_negatives,
                          self.false_negatives)
        recall = _divide(tp, tp + fn)
        if self.curve == "ROC":
            x, y = _divide(fp, fp + tn), recall
        elif self.curve == "PR":
            x, y = recall, _divide(tp, tp + fp)
        else:   # precision-recall gain
            scale = _divide(tp + fn, tn + fp)
            x = np.maximum(np.where(tp == 0, 0.0, 1.0 - scale * _divide(fn, tp)), 0.0)
            y = np.where(tp == 0, 1.0, 1.0 - scale * _divide(fp, tp))
        if self.summation_method == "interpolation":
            heights = (y[:-1] + y[1:]) / 2
        elif self.summation_method == "minoring":
            heights = np.minimum(y[:-1], y[1:])
        else:
            heights = np.maximum(y[:-1], y[1:])
        return self._average(((x[:-1] - x[1:]) * heights).sum(axis=0))

    def get_config(self):
        config = {"name": self.name, "num_thresholds": self.num_thresholds, "curve": self.curve,
                  "summation_method": self.summation_method, "multi_label": self.multi_label,
                  "num_labels": self.num_labels,
                  "label_weights": None if self.label_weights is None else self.label_weights.tolist(),
                  "from_logits": self.from_logits}
        if self._init_from_thresholds:
            config["thresholds"] = [float(t) for t in self._thresholds[1:-1]]
        return config
