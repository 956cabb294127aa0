"""Model files: one zip archive, JSON and safetensors only, written atomically.

    model.save("mnist.tidu")                 # config.json + model.weights.safetensors + optimizer.safetensors
    model = tidu.models.load_model("mnist.tidu")

config.json           {"format": "tidu.model", "format_version": 1, "model": {class_name, config},
                       "compile": {optimizer, loss, metrics, loss_weights} or null,
                       "training": {"rng": the training generator's state,
                                    "layer_rngs": {layer name: state} (layers with their own seed),
                                    "fit": where fit was (checkpoints only; saving.checkpoints)} or null}
model.weights.safetensors   every weight, named '<layer name>/<weight name>' (Keras' order)
optimizer.safetensors       the optimizer's state_dict (step count, moments ...)

Writing goes to a temporary file in the target's directory, fsynced, then `os.replace`: a
crash (or SIGKILL) leaves the old file or the new one, never half of one.

Loading checks everything before it builds anything:
  * the container: an intact zip (CRC of every member) holding exactly these three members,
    not encrypted; config.json at most 16 MiB; the tensor members stored uncompressed (as tidu
    writes them), so their sizes are those of the bytes in the file (no decompression bombs);
  * config.json: strict JSON (no NaN/Infinity constants) of the expected schema: model class
    a registered one (Sequential, Model), every layer class one of tidu.layers', every argument
    one its constructor takes, of the kind derived from the layer class (saving.schema), and
    accepted by the layer's own validation; the compile and training sections likewise;
  * the tensors: valid safetensors, and, while the model is built from the config, no weight
    larger than the tensors the file holds (a tampered 'units' cannot allocate gigabytes);
    then exactly the names, shapes and dtypes of the model's weights, and optimizer slots
    shaped like their parameters.
Anything else raises `tidu.errors.ModelFileError` saying what is wrong, and nothing of the
file is used. No code is run from the file: only JSON and safetensors are parsed, and only
tidu's own layer, optimizer, loss and metric classes can be named.

Keras 3's .keras format (metadata.json, config.json, model.weights.h5) is read and written
under the same rules by saving.keras_file / keras_writer, its layer configs translated by
the per-class table of saving.keras_layers: `model.save("m.keras")` and `load_model` of a
.keras file (needs h5py: pip install tidu[keras]).
"""
from tidu.saving.archive import FORMAT, FORMAT_VERSION
from tidu.saving.checkpoints import FitState, Resume, capture, check_progress, check_rng_state, make_rng, rng_state
from tidu.saving.model_file import (deserialize_model, load_model, load_weights, read_checkpoint, save_model,
                                    save_weights, serialize_model)
from tidu.saving.schema import register_model_class
from tidu.saving.snapshot import Snapshot
from tidu.utils import atomic_write

__all__ = ["save_model", "load_model", "save_weights", "load_weights", "serialize_model",
           "deserialize_model", "atomic_write", "read_checkpoint", "register_model_class", "Snapshot",
           "FitState", "Resume", "capture", "check_progress", "check_rng_state", "make_rng", "rng_state",
           "FORMAT", "FORMAT_VERSION"]
