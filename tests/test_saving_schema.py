"""The config schema derived from the layer classes (saving.schema), the model-class registry,
and saving.Snapshot."""
import ast
import io
import json
import pathlib
import zipfile

import numpy as np
import pytest

from tidu import layers, models, optimizers, saving
from tidu.errors import ModelFileError
from tidu.saving import schema

ROOT = pathlib.Path(saving.__file__).parent.parent


def edit(blob, fn):
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        parts = {n: zf.read(n) for n in zf.namelist()}
    config = json.loads(parts["config.json"])
    fn(config)
    parts["config.json"] = json.dumps(config).encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in parts.items():
            zf.writestr(name, data)
    return io.BytesIO(buf.getvalue())


@pytest.fixture
def blob(tmp_path):
    model = models.Sequential([layers.Conv2D(2, 3, input_shape=(6, 6, 1)), layers.Flatten(),
                               layers.Dropout(0.5, seed=3), layers.Dense(3)])
    model.compile("sgd", "mse")
    model.save(tmp_path / "m.tidu")
    return (tmp_path / "m.tidu").read_bytes()


def test_kinds_come_from_the_layer_class():
    kinds, probe = schema.layer_arg_kinds(layers.Conv2D)
    assert probe is not None
    assert kinds["filters"].text == "an int >= 1"                       # required: probed
    assert kinds["kernel_size"].text == "an int >= 1 or a list of them"  # an int or [kh, kw]
    assert kinds["use_bias"].text == "true or false"                     # from the default
    assert kinds["padding"].text == "a str"
    assert kinds["kernel_initializer"] is schema.INITIALIZER              # the registries' names
    assert schema.layer_arg_kinds(layers.Softmax)[0]["axis"].text == "an int"   # -1 accepted
    assert schema.layer_arg_kinds(layers.Dropout)[0]["rate"].text == "a finite number"
    assert not hasattr(schema, "_ARG_TYPES")


def test_a_value_the_layer_refuses_names_the_file_the_layer_and_the_argument(blob):
    bad = edit(blob, lambda c: c["model"]["config"]["layers"][0]["config"].update(padding="sideways"))
    with pytest.raises(ModelFileError) as e:
        models.load_model(bad)
    message = str(e.value)
    assert message.startswith("<file object>: model layer 0 (Conv2D ")
    assert "padding cannot be used (padding='sideways')" in message and "'valid' or 'same'" in message
    rate = edit(blob, lambda c: c["model"]["config"]["layers"][2]["config"].update(rate=1.5))
    with pytest.raises(ModelFileError, match=r"layer 2 \(Dropout .*rate cannot be used \(rate=1.5\)"):
        models.load_model(rate)
    kernel = edit(blob, lambda c: c["model"]["config"]["layers"][0]["config"].update(kernel_size=[3, 0]))
    with pytest.raises(ModelFileError, match=r"expected 'kernel_size' to be an int >= 1 or a list of them"):
        models.load_model(kernel)


class Scale(layers.Layer):
    """A custom layer: its arguments get kinds from its own signature and validation."""

    def __init__(self, factor, power=2, center=False, **kwargs):
        if not factor > 0:
            raise ValueError(f"Scale: expected factor > 0, got {factor!r}")
        super().__init__(**kwargs)
        self.factor, self.power, self.center = factor, power, center

    def call(self, inputs, training=False):
        return inputs * self.factor

    def get_config(self):
        return {**super().get_config(), "factor": self.factor, "power": self.power, "center": self.center}


def test_custom_layers_are_checked_by_their_own_signature(tmp_path):
    model = models.Sequential([layers.Dense(2, input_shape=(3,)), Scale(0.5, name="scale")])
    model.save(tmp_path / "c.tidu")
    blob = (tmp_path / "c.tidu").read_bytes()
    loaded = models.load_model(io.BytesIO(blob), custom_objects={"Scale": Scale})
    assert loaded.layers[1].factor == 0.5
    for change, message in [({"center": 1}, "expected 'center' to be true or false, got 1"),
                            ({"power": "2"}, "expected 'power' to be a finite number, got '2'"),  # 2.5 is taken too
                            ({"factor": -1.0}, r"factor cannot be used \(factor=-1.0\).*expected factor > 0"),
                            ({"evil": 1}, r"unknown argument\(s\) \['evil'\] for Scale")]:
        bad = edit(blob, lambda c: c["model"]["config"]["layers"][1]["config"].update(change))
        with pytest.raises(ModelFileError, match=message):
            models.load_model(bad, custom_objects={"Scale": Scale})


def test_saving_and_callbacks_do_not_import_the_models():
    for package in ("saving", "callbacks"):
        for path in (ROOT / package).glob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
                assert not any(n.startswith(("tidu.models", "tidu.training")) for n in names), path
    assert schema.model_class("Sequential") is models.Sequential
    assert schema.model_class("Model") is models.Model and schema.model_class("Ensemble") is None
    with pytest.raises(TypeError, match="expected a tidu Model"):
        saving.save_model(layers.Dense(2), "unused.tidu")


def test_snapshot_puts_back_weights_optimizer_state_and_schedule(rng):
    x, y = rng.standard_normal((32, 4)).astype(np.float32), rng.standard_normal((32, 2)).astype(np.float32)
    schedule = optimizers.schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    model = models.Sequential([layers.Dense(2, input_shape=(4,))])
    model.compile(optimizers.Adam(schedule), "mse")
    model.train_on_batch(x, y)
    snap = saving.Snapshot.of(model)
    weights, state = model.get_weights(), model.optimizer.state_dict()
    model.optimizer.learning_rate = 5.0        # as lr_find sets it
    for _ in range(3):
        model.train_on_batch(x, y)
    snap.restore(model)
    assert all(np.array_equal(a, b) for a, b in zip(weights, model.get_weights()))
    after = model.optimizer.state_dict()
    assert sorted(after) == sorted(state) and all(np.array_equal(after[k], state[k]) for k in state)
    assert model.optimizer.schedule is schedule and model.optimizer.iterations == 1
    first = model.train_on_batch(x, y)          # and training goes on as from the snapshot
    snap.restore(model)
    assert model.train_on_batch(x, y) == first
