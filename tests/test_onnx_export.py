"""ONNX export (tidu.export, Model.export): each layer kind, activation and the example models,
run by onnxruntime from the exported file, give tidu's predict to 1e-4, for batch sizes 1 and 7
from the same file (the batch axis is symbolic). Bad input raises before anything is written."""
import os
import sys

import numpy as np
import pytest

from tidu import activations, layers, models
from tidu.errors import NotBuiltError
from tidu.layers import Input
from tidu.layers.base import Layer

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx_check import TOL, export_and_compare, floats, randomize  # noqa: E402


# --- the example models --------------------------------------------------------------------------

def test_notes_mlp(tmp_path, rng, mnist_subset):
    from tidu.cli import MODELS   # the notes' network: Dense(512, relu) on 784, Dense(10, softmax)
    model = randomize(MODELS["mnist-mlp"][0](), rng, 0.1)
    (x, _, _), _ = mnist_subset
    export_and_compare(model, lambda n: x[:n], tmp_path)


def test_examples_mnist_cnn_model(tmp_path, rng, mnist_subset):
    from tidu.distributed.experiment import task_model
    model = task_model("mnist-cnn")   # as examples/mnist_cnn.py builds it
    randomize(model, rng, 0.1)
    (x, _, _), _ = mnist_subset
    export_and_compare(model, lambda n: x[:n].reshape(n, 28, 28, 1), tmp_path)


def test_examples_mnist_lstm_model(tmp_path, rng, mnist_subset):
    model = models.Sequential([   # as examples/mnist_lstm.py builds it
        layers.LSTM(128, input_shape=(28, 28)),
        layers.Dense(10, activation="softmax"),
    ])
    randomize(model, rng, 0.2)
    (x, _, _), _ = mnist_subset
    export_and_compare(model, lambda n: x[:n].reshape(n, 28, 28), tmp_path)


# --- one test per layer kind, a few configurations each --------------------------------------

ACTIVATION_NAMES = sorted([*activations._REGISTRY, "swish"])  # noqa: SLF001 (every registered one)


@pytest.mark.parametrize("name", ACTIVATION_NAMES)
def test_every_activation_in_dense_and_activation_layer(name, tmp_path, rng):
    model = randomize(models.Sequential([layers.Dense(8, activation=name, input_shape=(5,)),
                                         layers.Activation(name)]), rng)
    export_and_compare(model, floats(rng, (5,)), tmp_path)


def test_configured_maxout_activation(tmp_path, rng):
    model = randomize(models.Sequential([
        layers.Dense(12, activation=activations.Maxout(3), input_shape=(4, 5))]), rng)
    export_and_compare(model, floats(rng, (4, 5)), tmp_path)


DENSE_CASES = {
    "no_bias": ([layers.Dense(5, use_bias=False, input_shape=(8,))], (8,)),
    "sequence_input": ([layers.Dense(3, activation="tanh", input_shape=(4, 6))], (4, 6)),
    "stack": ([layers.Dense(16, activation="relu", input_shape=(3,)), layers.Dense(2)], (3,)),
}

CONV_CASES = {
    "valid": ([layers.Conv2D(4, 3, input_shape=(8, 9, 2))], (8, 9, 2)),
    "same_stride2_odd": ([layers.Conv2D(3, 3, strides=2, padding="same", activation="relu",
                                        input_shape=(7, 9, 2))], (7, 9, 2)),
    "same_even_kernel": ([layers.Conv2D(3, (2, 4), padding="same", input_shape=(6, 7, 1))], (6, 7, 1)),
    "dilated_same": ([layers.Conv2D(2, 3, dilation_rate=2, padding="same", use_bias=False,
                                    input_shape=(9, 8, 3))], (9, 8, 3)),
    "rect_strides": ([layers.Conv2D(5, (2, 3), strides=(2, 1), activation="sigmoid",
                                    input_shape=(8, 8, 2))], (8, 8, 2)),
}

POOL_CASES = {
    f"{cls.__name__}_{tag}": ([cls(**kw, input_shape=shape)], shape)
    for cls in (layers.MaxPooling2D, layers.AveragePooling2D, layers.L2Pooling2D)
    for tag, kw, shape in (
        ("valid", dict(pool_size=2), (8, 8, 3)),
        ("valid_odd", dict(pool_size=3, strides=2), (9, 8, 2)),
        ("same", dict(pool_size=3, strides=2, padding="same"), (7, 8, 2)),
        ("same_rect", dict(pool_size=(2, 3), strides=(1, 2), padding="same"), (5, 7, 1)),
    )
}

GLOBAL_CASES = {
    f"{cls.__name__}_keepdims{k}": ([cls(keepdims=k, input_shape=(5, 6, 3))], (5, 6, 3))
    for cls in (layers.GlobalAveragePooling2D, layers.GlobalMaxPooling2D) for k in (False, True)
}

NORM_CASES = {
    "batchnorm_dense": ([layers.Dense(6, input_shape=(4,)), layers.BatchNormalization()], (4,)),
    "batchnorm_image": ([layers.BatchNormalization(epsilon=0.01, input_shape=(5, 4, 3))], (5, 4, 3)),
    "batchnorm_axis1": ([layers.BatchNormalization(axis=1, input_shape=(5, 4, 3))], (5, 4, 3)),
    "batchnorm_plain": ([layers.BatchNormalization(center=False, scale=False,
                                                   input_shape=(4, 3))], (4, 3)),
    "layernorm": ([layers.LayerNormalization(input_shape=(4, 6))], (4, 6)),
    "layernorm_plain": ([layers.LayerNormalization(center=False, scale=False, epsilon=1e-5,
                                                   input_shape=(7,))], (7,)),
    "layernorm_center_only": ([layers.LayerNormalization(scale=False, input_shape=(3, 5))], (3, 5)),
}

SHAPE_CASES = {
    "dropout_identity": ([layers.Dropout(0.5, input_shape=(6,)), layers.Identity(),
                          layers.Dropout(0.3, mode="classic")], (6,)),
    "flatten": ([layers.Flatten(input_shape=(3, 4, 2)), layers.Dense(3)], (3, 4, 2)),
    "reshape": ([layers.Reshape((4, 3), input_shape=(12,))], (12,)),
    "reshape_inferred": ([layers.Reshape((-1, 2), input_shape=(3, 4))], (3, 4)),
}

ACTIVATION_LAYER_CASES = {
    "leaky_relu": ([layers.LeakyReLU(0.1, input_shape=(6,))], (6,)),
    "leaky_relu_default": ([layers.LeakyReLU(input_shape=(6,))], (6,)),
    "elu": ([layers.ELU(0.7, input_shape=(6,))], (6,)),
    "relu_plain": ([layers.ReLU(input_shape=(6,))], (6,)),
    "relu_options": ([layers.ReLU(max_value=1.0, negative_slope=0.1, threshold=0.5,
                                  input_shape=(6,))], (6,)),
    "relu_max_only": ([layers.ReLU(max_value=0.8, input_shape=(6,))], (6,)),
    "softmax_axis1": ([layers.Softmax(axis=1, input_shape=(4, 5))], (4, 5)),
    "maxout_layer": ([layers.Maxout(4, 3, input_shape=(5,))], (5,)),
}

CASES = {**DENSE_CASES, **CONV_CASES, **POOL_CASES, **GLOBAL_CASES, **NORM_CASES, **SHAPE_CASES,
         **ACTIVATION_LAYER_CASES}


@pytest.mark.parametrize("case", sorted(CASES))
def test_layer(case, tmp_path, rng):
    stack, shape = CASES[case]
    model = randomize(models.Sequential(stack), rng)
    export_and_compare(model, floats(rng, shape), tmp_path)


def test_embedding(tmp_path, rng):
    model = randomize(models.Sequential([layers.Embedding(20, 6, input_shape=(5,)),
                                         layers.Flatten(), layers.Dense(3)]), rng)
    export_and_compare(model, lambda n: rng.integers(0, 20, size=(n, 5)), tmp_path)


def test_embedding_into_lstm_functional_int32(tmp_path, rng):
    ids = Input((6,), dtype="int32")
    y = layers.LSTM(4)(layers.Embedding(11, 5)(ids))
    model = randomize(models.Model(ids, layers.Dense(2, activation="softmax")(y)), rng)
    export_and_compare(model, lambda n: rng.integers(0, 11, size=(n, 6)).astype("int32"), tmp_path)


RNN_CASES = {
    "simple_rnn": lambda rs: layers.SimpleRNN(5, return_sequences=rs),
    "simple_rnn_relu": lambda rs: layers.SimpleRNN(5, activation="relu", return_sequences=rs),
    "simple_rnn_backwards_no_bias": lambda rs: layers.SimpleRNN(4, go_backwards=True,
                                                                use_bias=False, return_sequences=rs),
    "lstm": lambda rs: layers.LSTM(5, return_sequences=rs),
    "lstm_hard_sigmoid_relu": lambda rs: layers.LSTM(4, activation="relu",
                                                     recurrent_activation="hard_sigmoid",
                                                     return_sequences=rs),
    "lstm_backwards": lambda rs: layers.LSTM(3, go_backwards=True, return_sequences=rs),
    "lstm_mixed_alphas": lambda rs: layers.LSTM(3, activation="elu",
                                                recurrent_activation="hard_sigmoid",
                                                return_sequences=rs),
    "gru": lambda rs: layers.GRU(5, return_sequences=rs),
    "gru_reset_before": lambda rs: layers.GRU(4, reset_after=False, return_sequences=rs),
    "gru_no_bias_linear": lambda rs: layers.GRU(4, use_bias=False, activation="linear",
                                                return_sequences=rs),
    "gru_backwards_leaky": lambda rs: layers.GRU(3, go_backwards=True, activation="leaky_relu",
                                                 return_sequences=rs),
}


@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("case", sorted(RNN_CASES))
def test_recurrent(case, return_sequences, tmp_path, rng):
    model = models.Sequential([Input((6, 3)), RNN_CASES[case](return_sequences)])
    randomize(model, rng)
    export_and_compare(model, floats(rng, (6, 3)), tmp_path)


def test_stacked_recurrent_layers(tmp_path, rng):
    model = randomize(models.Sequential([
        layers.GRU(6, return_sequences=True, input_shape=(5, 4)),
        layers.LSTM(5, return_sequences=True), layers.SimpleRNN(3)]), rng)
    export_and_compare(model, floats(rng, (5, 4)), tmp_path)


def test_unknown_sequence_length(tmp_path, rng):
    model = randomize(models.Sequential([layers.LSTM(4, input_shape=(None, 3)),
                                         layers.Dense(2)]), rng)
    path, _ = export_and_compare(model, floats(rng, (6, 3)), tmp_path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = rng.normal(size=(2, 9, 3)).astype("float32")   # another length, same file
    np.testing.assert_allclose(session.run(None, {"input": x})[0], model.predict(x, verbose=0), **TOL)


def test_functional_model(tmp_path, rng):
    inp = Input((10, 9, 3))
    h = layers.Conv2D(4, 3, padding="same", activation="relu")(inp)
    h = layers.BatchNormalization()(h)
    h = layers.AveragePooling2D(3, strides=2, padding="same")(h)
    h = layers.Conv2D(6, 2, activation="swish")(h)
    h = layers.GlobalMaxPooling2D()(h)
    h = layers.Dropout(0.2)(layers.Dense(8, activation="gelu")(h))
    model = randomize(models.Model(inp, layers.Dense(3, activation="softmax")(h)), rng)
    export_and_compare(model, floats(rng, (10, 9, 3)), tmp_path)


def test_nested_sequential_in_functional(tmp_path, rng):
    inner = models.Sequential([layers.Dense(5, activation="tanh", input_shape=(4,)),
                               layers.Dense(3)])
    inp = Input((4,))
    model = randomize(models.Model(inp, layers.Activation("softmax")(inner(inp))), rng)
    export_and_compare(model, floats(rng, (4,)), tmp_path)


# --- the file -------------------------------------------------------------------------------

def test_file_has_dynamic_batch_opset_and_names(tmp_path, rng):
    model = randomize(models.Sequential([layers.Dense(3, input_shape=(4,))]), rng)
    path = tmp_path / "m.onnx"
    assert model.export(path, format="onnx") == str(path)
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    (inp,), (out,) = proto.graph.input, proto.graph.output
    assert (inp.name, out.name) == ("input", "output")
    assert [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim] == ["batch", 4]
    assert [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim] == ["batch", 3]
    assert [(o.domain, o.version) for o in proto.opset_import] == [("", 18)]
    assert not [f for f in os.listdir(tmp_path) if f != "m.onnx"]   # no temporary file left


def test_opset_version_argument(tmp_path, rng):
    model = randomize(models.Sequential([layers.LSTM(3, input_shape=(4, 2))]), rng)
    path = tmp_path / "m.onnx"
    model.export(path, format="onnx", opset_version=20)
    assert onnx.load(str(path)).opset_import[0].version == 20
    with pytest.raises(ValueError, match="opset_version"):
        model.export(tmp_path / "old.onnx", format="onnx", opset_version=11)
    assert not (tmp_path / "old.onnx").exists()


class Twice(Layer):
    def call(self, inputs, training=False):
        return inputs * 2

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)


class MyDense(layers.Dense):
    """A subclass is not exported as its parent (its call may differ)."""


@pytest.mark.parametrize("make_layer, named", [(lambda: Twice(name="twice_1"), "Twice 'twice_1'"),
                                               (lambda: MyDense(3, name="mine"), "MyDense 'mine'")])
def test_unsupported_layer_raises_before_writing(make_layer, named, tmp_path):
    model = models.Sequential([layers.Dense(4, input_shape=(3,)), make_layer()])
    path = tmp_path / "m.onnx"
    path.write_bytes(b"old")
    with pytest.raises(ValueError, match=named) as info:
        model.export(path, format="onnx")
    assert "Dense" in str(info.value)              # the message lists what can be exported
    assert path.read_bytes() == b"old"            # the old file untouched, no temporary left
    assert os.listdir(tmp_path) == ["m.onnx"]


def test_unsupported_activation_raises_naming_the_layer(tmp_path):
    model = models.Sequential([layers.Dense(4, activation=lambda x: x * 3, input_shape=(3,),
                                            name="custom_act")])
    with pytest.raises(ValueError, match="Dense 'custom_act'.*activation"):
        model.export(tmp_path / "m.onnx", format="onnx")
    rnn = models.Sequential([layers.SimpleRNN(3, activation="gelu", input_shape=(4, 2), name="r")])
    with pytest.raises(ValueError, match="SimpleRNN 'r'.*gelu"):
        rnn.export(tmp_path / "m.onnx", format="onnx")
    assert not os.listdir(tmp_path)


@pytest.mark.parametrize("fmt", ["tf_saved_model", "litert", "ONNX", None])
def test_bad_format_raises_naming_the_supported_ones(fmt, tmp_path):
    model = models.Sequential([layers.Dense(2, input_shape=(3,))])
    with pytest.raises(ValueError, match="supported formats: 'onnx'"):
        model.export(tmp_path / "m", format=fmt)
    assert not os.listdir(tmp_path)


def test_without_onnx_installed_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)   # `import onnx` then raises ImportError
    model = models.Sequential([layers.Dense(2, input_shape=(3,))])
    with pytest.raises(ImportError, match=r"pip install tidu\[onnx\]"):
        model.export(tmp_path / "m.onnx", format="onnx")
    assert not os.listdir(tmp_path)


def test_unbuilt_and_subclassed_models_raise(tmp_path):
    with pytest.raises(NotBuiltError, match="not built"):
        models.Sequential([layers.Dense(2)]).export(tmp_path / "m.onnx", format="onnx")

    class Sub(models.Model):
        def __init__(self):
            super().__init__()
            self.d = layers.Dense(2)

        def call(self, x, training=False):
            return self.d(x)

    sub = Sub()
    sub.build((None, 3))
    with pytest.raises(ValueError, match="subclassed"):
        sub.export(tmp_path / "m.onnx", format="onnx")
    assert not os.listdir(tmp_path)
