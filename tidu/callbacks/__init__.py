"""Callbacks: code `Model.fit` runs at the start and end of training, epochs and batches.

The hooks and their arguments are Keras' (on_train_begin(logs), on_epoch_begin(epoch, logs),
on_train_batch_begin(batch, logs), on_train_batch_end(batch, logs), on_epoch_end(epoch, logs),
on_train_end(logs), plus on_test_*/on_predict_* for evaluate and predict); `self.model` and
`self.params` ({'epochs', 'steps', 'verbose', 'metrics'}) are set before training starts.
`logs` at epoch end holds 'loss', each metric, and 'val_'-prefixed values when there is
validation data; batch logs hold the running epoch averages. Setting `model.stop_training = True`
ends training after the current batch or epoch.

The training craft of the notes is here: EarlyStopping (stop when the validation loss has not
improved for `patience` epochs), ReduceLROnPlateau(factor=0.5, patience=10) ("halve the
learning rate after 10 epochs without improvement"), and LossExplosion (a loss that grows
several-fold is the sign that the learning rate is too high). TensorBoard writes the logs (and
weight histograms) as TensorBoard event files, as Keras does (the `tensorboard` extra).
"""
from tidu.callbacks.base import Callback, CallbackList, History, LambdaCallback
from tidu.callbacks.files import CSVLogger, ModelCheckpoint
from tidu.callbacks.learning_rate import LearningRateScheduler, ReduceLROnPlateau
from tidu.callbacks.progress import ProgbarLogger, RunProgress
from tidu.callbacks.stopping import EarlyStopping, LossExplosion, TerminateOnNaN
from tidu.callbacks.tensorboard import TensorBoard

__all__ = ["Callback", "CallbackList", "History", "ProgbarLogger", "RunProgress", "EarlyStopping",
           "ReduceLROnPlateau", "LearningRateScheduler", "ModelCheckpoint", "CSVLogger",
           "TerminateOnNaN", "LossExplosion", "LambdaCallback", "TensorBoard"]
