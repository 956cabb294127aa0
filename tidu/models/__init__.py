"""Models: Model (functional), Sequential, Ensemble; compile / fit / evaluate / predict / save.

    from tidu import models, layers
    network = models.Sequential()
    network.add(layers.Dense(512, activation="relu", input_shape=(784,)))
    network.add(layers.Dense(10, activation="softmax"))
    network.compile(optimizer="rmsprop", loss="categorical_crossentropy", metrics=["accuracy"])
    network.fit(x, y, epochs=5, batch_size=128)
"""
from tidu.models.model import Model
from tidu.models.sequential import Sequential
from tidu.models.ensemble import Ensemble
from tidu.models.cloning import clone_model
from tidu.saving import load_model, register_model_class

register_model_class(Model, Sequential)  # model files name them (tidu.saving.schema)

__all__ = ["Model", "Sequential", "Ensemble", "clone_model", "load_model"]
