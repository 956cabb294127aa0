"""How a model trains: the loops of fit, evaluate and predict (loops), the epoch iterator and the
sampler the parameter-server workers share (iterator), the input checks (checks), and the one
training step with its loss closure (step)."""
from tidu.training.iterator import EpochIterator, Sampler
from tidu.training.loops import (compute_loss_and_grads, evaluate, fit, lend_rng, predict,
                                 predict_on_batch, return_rng, test_on_batch, train_on_batch,
                                 training_rng)
from tidu.training.step import TrainStep

__all__ = ["EpochIterator", "Sampler", "TrainStep", "compute_loss_and_grads", "evaluate", "fit",
           "lend_rng", "predict", "predict_on_batch", "return_rng", "test_on_batch",
           "train_on_batch", "training_rng"]
