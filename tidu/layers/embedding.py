"""Embedding: integer ids -> rows of a learned table."""
import numpy as np

import tidu.functional as F
from tidu import backend, initializers, regularizers
from tidu.autograd import Tensor
from tidu.errors import ShapeError
from tidu.layers.base import Layer
from tidu.layers.utils import (check_constraint, check_positive_int, serialize_constraint,
                               serialize_initializer, serialize_regularizer)

__all__ = ["Embedding"]


class Embedding(Layer):
    """outputs[..., :] = embeddings[ids[...]]: ids (N, ...) in [0, input_dim) -> (N, ..., output_dim).

    The gradient of a row is the sum of the output gradients at the places its id occurs.
    Weights: embeddings (input_dim, output_dim), initialized U(-0.05, 0.05) ('uniform', as Keras).
    Float ids with integral values are accepted (Keras casts them); mask_zero is not supported.
    """

    accepts_integer_input = True  # ids reach the layer as integers, not cast to floatx

    def __init__(self, input_dim, output_dim, embeddings_initializer="uniform",
                 embeddings_regularizer=None, activity_regularizer=None,
                 embeddings_constraint=None, mask_zero=False, input_length=None, **kwargs):
        input_dim = check_positive_int("Embedding", "input_dim", input_dim)
        output_dim = check_positive_int("Embedding", "output_dim", output_dim)
        if mask_zero:
            raise ValueError("Embedding: mask_zero=True is not supported (tidu has no masking); "
                             "pad with an id whose row the model can learn to ignore")
        if input_length is not None:
            input_length = check_positive_int("Embedding", "input_length", input_length)
            kwargs.setdefault("input_shape", (input_length,))
        if activity_regularizer is not None:
            raise ValueError("Embedding: activity_regularizer is not supported")
        super().__init__(**kwargs)
        self.input_dim, self.output_dim, self.input_length = input_dim, output_dim, input_length
        self.embeddings_initializer = initializers.get(embeddings_initializer)
        self.embeddings_regularizer = regularizers.get(embeddings_regularizer)
        self.embeddings_constraint = check_constraint("Embedding", "embeddings_constraint",
                                                      embeddings_constraint)

    def _label(self):
        return f"Embedding({self.input_dim}, {self.output_dim}) '{self.name}'"

    def build(self, input_shape):
        self.embeddings = self.add_weight("embeddings", (self.input_dim, self.output_dim),
                                          self.embeddings_initializer,
                                          regularizer=self.embeddings_regularizer,
                                          constraint=self.embeddings_constraint)

    def call(self, inputs, training=False):
        ids = inputs.data if isinstance(inputs, Tensor) else backend.as_array(inputs)
        if ids.dtype.kind == "f":
            if ids.size and not bool((ids == backend.xp.round(ids)).all()):
                raise ValueError(f"{self._label()} expected integer ids, got non-integral values "
                                 f"of dtype {ids.dtype}")
            ids = ids.astype(np.int64)
        elif ids.dtype.kind not in "iu":
            raise TypeError(f"{self._label()} expected integer ids, got dtype {ids.dtype}")
        if ids.size:
            lo, hi = int(ids.min()), int(ids.max())
            if lo < 0 or hi >= self.input_dim:
                raise ShapeError(f"{self._label()} expected ids in [0, {self.input_dim}), got ids "
                                 f"from {lo} to {hi}")
        return F.embedding(ids, self.embeddings)

    def compute_output_shape(self, input_shape):
        return (*tuple(input_shape), self.output_dim)

    def get_config(self):
        config = {**super().get_config(), "input_dim": self.input_dim,
                  "output_dim": self.output_dim,
                  "embeddings_initializer": serialize_initializer(self.embeddings_initializer),
                  "embeddings_regularizer": serialize_regularizer(self.embeddings_regularizer),
                  "embeddings_constraint": serialize_constraint(
                      "Embedding", "embeddings_constraint", self.embeddings_constraint)}
        if self.input_length is not None:
            config["input_length"] = self.input_length
            config.pop("input_shape", None)
        return config
