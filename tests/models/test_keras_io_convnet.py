"""keras.io's "Simple MNIST convnet" runs with `import keras` -> `import tidu as keras` and
`from keras import layers` -> `from tidu import layers`, and nothing else changed."""
import pathlib
import runpy

import pytest

import tidu
from tidu.datasets import mnist

SCRIPT = pathlib.Path(__file__).parents[2] / "examples" / "keras_io_mnist_convnet.py"


def test_only_the_two_import_lines_differ_from_keras():
    code = [line for line in SCRIPT.read_text().splitlines() if not line.startswith("#")]
    imports = [line for line in code if "import" in line]
    assert imports == ["import numpy as np", "import tidu as keras", "from tidu import layers"]
    assert not any("tidu" in line for line in code if line not in imports)


def test_the_keras_io_convnet_trains_one_epoch_on_the_subset(tmp_path, monkeypatch, capsys):
    text = SCRIPT.read_text()
    assert text.count("epochs = 15\n") == 1
    one_epoch = tmp_path / "convnet.py"
    one_epoch.write_text(text.replace("epochs = 15\n", "epochs = 1\n"))
    monkeypatch.setattr(mnist, "load_data", mnist.load_subset)   # the shipped 2,000 + 500 images
    tidu.utils.set_random_seed(0)
    scope = runpy.run_path(str(one_epoch), run_name="__main__")
    out = capsys.readouterr().out
    assert "x_train shape: (2000, 28, 28, 1)" in out
    assert "Total params: 34,826" in out                       # Keras' count for this model
    history = scope["model"].history.history
    assert sorted(history) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    loss, acc = scope["score"]
    assert 0.0 < loss < 2.3 and acc > 0.5, (loss, acc)         # chance is 0.1 and ln 10 = 2.30
    assert f"Test accuracy: {acc}" in out
