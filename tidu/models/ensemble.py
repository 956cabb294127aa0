"""Ensemble: several trained models voting by averaged probabilities.

    p(x) = Σ_i w_i · p_i(x),   Σ_i w_i = 1   (equal weights by default)

"Train several independent models and average their outputs at test time" (the notes'
model ensembles): the average of the predicted class probabilities usually beats each
member, because their errors are partly independent.
"""
import numpy as np

from tidu.autograd import Tensor, no_grad
from tidu.training import checks
from tidu.models.model import Model

__all__ = ["Ensemble"]


class Ensemble:
    """Average the predictions of `models` (each takes the same inputs and gives outputs of
    the same shape). evaluate uses the loss and metrics given to `compile`, else those of the
    first compiled member."""

    def __init__(self, models, weights=None, name="ensemble"):
        models = list(models)
        if not models:
            raise ValueError("Ensemble: expected at least one model, got none")
        for i, m in enumerate(models):
            if not isinstance(m, Model):
                raise TypeError(f"Ensemble: expected Model instances, got {type(m).__name__} at index {i}")
        if weights is None:
            weights = np.full(len(models), 1.0 / len(models))
        else:
            weights = np.asarray(weights, dtype=np.float64)
            if weights.shape != (len(models),) or (weights < 0).any() or not weights.sum() > 0:
                raise ValueError(f"Ensemble: expected {len(models)} non-negative weights with a "
                                 f"positive sum, got {weights.tolist()}")
            weights = weights / weights.sum()
        self.models, self.weights, self.name = models, weights, name
        self.loss, self._metric_ids = None, None

    def __len__(self):
        return len(self.models)

    def compile(self, loss=None, metrics=None):
        """The loss and metrics evaluate reports (names or objects, as Model.compile)."""
        from tidu import losses
        self.loss = losses.get(loss) if loss is not None else None
        self._metric_ids = list(metrics) if metrics is not None else None

    def predict(self, x, batch_size=None, verbose=0):
        """Σ_i w_i · models[i].predict(x)."""
        out = None
        for w, m in zip(self.weights, self.models):
            p = m.predict(x, batch_size=batch_size, verbose=verbose)
            if out is not None and p.shape != out.shape:
                raise ValueError(f"Ensemble: member '{m.name}' predicts shape {p.shape}, the "
                                 f"others {out.shape}")
            out = w * p.astype(np.float64) if out is None else out + w * p
        return out.astype(p.dtype)

    def evaluate(self, x, y, batch_size=None, verbose=1, sample_weight=None, return_dict=False):
        """The loss and metrics of the averaged prediction: the loss alone without metrics,
        else [loss, *metrics]; a dict with return_dict=True."""
        from tidu import metrics as M
        from tidu.callbacks.progress import format_logs

        ref = next((m for m in self.models if m.compiled_loss is not None), None)
        loss = self.loss or (ref.compiled_loss if ref is not None else None)
        if loss is None:
            raise RuntimeError("Ensemble.evaluate: no loss; call ensemble.compile(loss=..., "
                               "metrics=[...]) or compile a member")
        ids = self._metric_ids
        if ids is None:
            ids = [M.serialize(m) for m in ref.compiled_metrics] if ref is not None else []
        metrics = [M.get(i, loss=loss) for i in ids]
        p = self.predict(x, batch_size=batch_size)
        where = "Ensemble.evaluate"
        y = checks.check_targets(checks.check_y(y, len(p), where), p.shape, loss, where)
        sw = checks.check_sample_weight(sample_weight, len(p), where)
        with no_grad():
            value = float(loss(y, Tensor(p), sw).data)
        logs = {"loss": value}
        for m in metrics:
            m.reset_state()
            m.update_state(y, p, sw)
            logs[m.name] = m.result()
        if verbose:
            print(f"{len(p)}/{len(p)} - ensemble of {len(self.models)} models{format_logs(logs)}")
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values
