"""ONNX export of the layers added after the first exporter (merges, Conv1D, Conv2DTranspose,
1-D pools, wrappers, reshaping, noise, Rescaling, PReLU): onnxruntime running the exported
file gives tidu's predict to 1e-4 for batch sizes 1 and 7 from the same file. And every layer
class tidu.layers registers has a converter."""
import numpy as np
import pytest

import tidu.export
from tidu import layers, models
from tidu.layers import Input
from tidu.layers.base import Layer

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx_check import TOL, export_and_compare, floats, randomize  # noqa: E402


# --- every registered layer class has a converter --------------------------------------------

def test_every_layer_class_has_a_converter():
    classes = set()
    for name in layers.__all__:
        try:
            classes.add(layers.get(name))
        except ValueError:     # Layer, Input, get, serialize, ...: not registered layer classes
            continue
    assert len(classes) >= 45
    missing = sorted(cls.__name__ for cls in classes if cls not in tidu.export.CONVERTERS)
    assert not missing, f"layer classes with no ONNX converter: {missing}"


# --- Sequential stacks, a few configurations per layer ----------------------------------------

CONV1D_CASES = {
    "conv1d_valid": ([layers.Conv1D(4, 3, input_shape=(9, 2))], (9, 2)),
    "conv1d_same_stride2_odd": ([layers.Conv1D(3, 4, strides=2, padding="same", activation="relu",
                                               input_shape=(11, 3))], (11, 3)),
    "conv1d_valid_stride2": ([layers.Conv1D(3, 3, strides=2, input_shape=(10, 2))], (10, 2)),
    "conv1d_causal": ([layers.Conv1D(3, 3, padding="causal", input_shape=(7, 2))], (7, 2)),
    "conv1d_causal_dilated": ([layers.Conv1D(2, 3, padding="causal", dilation_rate=2,
                                             use_bias=False, input_shape=(9, 3))], (9, 3)),
    "conv1d_causal_stride2": ([layers.Conv1D(2, 2, padding="causal", strides=2,
                                             input_shape=(9, 2))], (9, 2)),
    "conv1d_same_dilated": ([layers.Conv1D(3, 3, padding="same", dilation_rate=3,
                                           activation="tanh", input_shape=(10, 2))], (10, 2)),
}

CONV2D_TRANSPOSE_CASES = {
    f"conv2d_transpose_{tag}": ([layers.Conv2DTranspose(**kw, input_shape=shape)], shape)
    for tag, kw, shape in (
        ("valid", dict(filters=3, kernel_size=3), (4, 5, 2)),
        ("valid_stride2", dict(filters=2, kernel_size=3, strides=2), (3, 4, 3)),
        ("valid_stride_over_kernel", dict(filters=2, kernel_size=2, strides=3), (3, 4, 2)),
        ("same_stride2", dict(filters=3, kernel_size=3, strides=2, padding="same"), (5, 4, 2)),
        ("same_even_kernel", dict(filters=2, kernel_size=4, strides=2, padding="same"), (3, 5, 1)),
        ("same_kernel1_stride2", dict(filters=2, kernel_size=1, strides=2, padding="same"),
         (3, 3, 2)),
        ("valid_output_padding", dict(filters=2, kernel_size=3, strides=2, output_padding=1),
         (4, 3, 2)),
        ("same_output_padding", dict(filters=2, kernel_size=(3, 2), strides=(3, 2),
                                     padding="same", output_padding=(2, 0)), (3, 4, 2)),
        ("dilated_same", dict(filters=2, kernel_size=3, dilation_rate=2, padding="same",
                              use_bias=False), (5, 6, 2)),
        ("rect_relu", dict(filters=4, kernel_size=(2, 3), strides=(2, 1), activation="relu"),
         (4, 4, 3)),
    )
}

POOL1D_CASES = {
    f"{cls.__name__}_{tag}": ([cls(**kw, input_shape=shape)], shape)
    for cls in (layers.MaxPooling1D, layers.AveragePooling1D)
    for tag, kw, shape in (
        ("valid", dict(pool_size=2), (8, 3)),
        ("valid_odd_stride2", dict(pool_size=3, strides=2), (9, 2)),
        ("same_odd", dict(pool_size=3, strides=2, padding="same"), (7, 2)),
        ("same_stride1", dict(pool_size=4, strides=1, padding="same"), (6, 1)),
    )
}

GLOBAL1D_CASES = {
    f"{cls.__name__}_keepdims{k}": ([cls(keepdims=k, input_shape=(5, 3))], (5, 3))
    for cls in (layers.GlobalAveragePooling1D, layers.GlobalMaxPooling1D) for k in (False, True)
}

RESHAPING_CASES = {
    "repeat_vector": ([layers.Dense(4, input_shape=(3,)), layers.RepeatVector(5)], (3,)),
    "permute_3d": ([layers.Permute((2, 1), input_shape=(4, 3))], (4, 3)),
    "permute_4d": ([layers.Permute((3, 1, 2), input_shape=(2, 3, 4))], (2, 3, 4)),
    "upsampling_nearest": ([layers.UpSampling2D(input_shape=(3, 4, 2))], (3, 4, 2)),
    "upsampling_nearest_rect": ([layers.UpSampling2D((3, 1), input_shape=(3, 5, 2))], (3, 5, 2)),
    "upsampling_bilinear": ([layers.UpSampling2D(interpolation="bilinear",
                                                 input_shape=(3, 4, 2))], (3, 4, 2)),
    "upsampling_bilinear_odd": ([layers.UpSampling2D((3, 2), interpolation="bilinear",
                                                     input_shape=(5, 3, 1))], (5, 3, 1)),
    "zero_padding": ([layers.ZeroPadding2D(input_shape=(3, 4, 2))], (3, 4, 2)),
    "zero_padding_asymmetric": ([layers.ZeroPadding2D(((0, 2), (3, 1)), input_shape=(3, 4, 2))],
                                (3, 4, 2)),
    "cropping": ([layers.Cropping2D(1, input_shape=(5, 6, 2))], (5, 6, 2)),
    "cropping_asymmetric": ([layers.Cropping2D(((2, 0), (0, 3)), input_shape=(5, 6, 2))],
                            (5, 6, 2)),
    "cropping_rows_only": ([layers.Cropping2D((1, 0), input_shape=(4, 3, 1))], (4, 3, 1)),
}

OTHER_CASES = {
    "noise_identity": ([layers.Dense(6, input_shape=(4,)), layers.GaussianNoise(0.5),
                        layers.GaussianDropout(0.3), layers.Dense(2)], (4,)),
    "spatial_dropout": ([layers.SpatialDropout2D(0.4, input_shape=(3, 4, 2))], (3, 4, 2)),
    "rescaling": ([layers.Rescaling(1 / 255, input_shape=(3, 4))], (3, 4)),
    "rescaling_offset": ([layers.Rescaling(2.0, offset=-1.0, input_shape=(5,))], (5,)),
    "rescaling_per_channel": ([layers.Rescaling([0.5, 2.0, -1.0], offset=[0.1, 0.0, 3.0],
                                                input_shape=(2, 4, 3))], (2, 4, 3)),
    "prelu": ([layers.PReLU(input_shape=(6,))], (6,)),
    "prelu_shared_image": ([layers.PReLU(shared_axes=[1, 2], input_shape=(3, 4, 5))], (3, 4, 5)),
    "prelu_shared_steps": ([layers.PReLU(shared_axes=1, input_shape=(4, 3))], (4, 3)),
    "time_distributed_dense": ([layers.TimeDistributed(layers.Dense(3, activation="relu"),
                                                       input_shape=(5, 4))], (5, 4)),
    "time_distributed_conv": ([layers.TimeDistributed(layers.Conv2D(2, 3, padding="same"),
                                                      input_shape=(3, 5, 4, 2)),
                               layers.TimeDistributed(layers.GlobalMaxPooling2D())],
                              (3, 5, 4, 2)),
}

CASES = {**CONV1D_CASES, **CONV2D_TRANSPOSE_CASES, **POOL1D_CASES, **GLOBAL1D_CASES,
         **RESHAPING_CASES, **OTHER_CASES}


@pytest.mark.parametrize("case", sorted(CASES))
def test_layer(case, tmp_path, rng):
    stack, shape = CASES[case]
    model = randomize(models.Sequential(stack), rng)
    export_and_compare(model, floats(rng, shape), tmp_path)


def test_unknown_lengths_same_padding_and_time_distributed(tmp_path, rng):
    model = randomize(models.Sequential([
        layers.Conv1D(3, 4, strides=2, padding="same", input_shape=(None, 2)),
        layers.MaxPooling1D(3, strides=2, padding="same"),
        layers.TimeDistributed(layers.Dense(4, activation="tanh")),
        layers.Conv1D(2, 3, padding="causal", dilation_rate=2)]), rng)
    _, session = export_and_compare(model, floats(rng, (11, 2)), tmp_path)
    for steps in (5, 16):   # other lengths, the same file
        x = rng.normal(size=(3, steps, 2)).astype("float32")
        np.testing.assert_allclose(session.run(None, {"input": x})[0],
                                   model.predict(x, verbose=0), **TOL)


@pytest.mark.parametrize("stack, sizes", [
    ([layers.Conv1D(3, 3, padding="same", dilation_rate=3, input_shape=(None, 2))],
     [(10, 2), (4, 2)]),
    ([layers.Conv2D(2, 3, padding="same", dilation_rate=2, input_shape=(None, None, 2)),
      layers.Conv2D(2, 3, strides=2, padding="same"), layers.MaxPooling2D(3, 1, padding="same")],
     [(7, 6, 2), (4, 9, 2)]),
    ([layers.Conv2DTranspose(2, 3, strides=2, padding="same", input_shape=(None, None, 2)),
      layers.Conv2DTranspose(2, 2, strides=3, output_padding=1)], [(3, 4, 2), (5, 2, 2)]),
    ([layers.UpSampling2D(interpolation="bilinear", input_shape=(None, None, 2)),
      layers.Cropping2D(((1, 0), (2, 1))), layers.ZeroPadding2D(2), layers.UpSampling2D((1, 3)),
      layers.PReLU(shared_axes=[1, 2])], [(3, 4, 2), (5, 6, 2)]),
], ids=["conv1d_dilated", "conv2d_dilated_strided", "conv2d_transpose", "upsampling_crop_pad"])
def test_unknown_spatial_sizes(stack, sizes, tmp_path, rng):
    model = randomize(models.Sequential(stack), rng)
    _, session = export_and_compare(model, floats(rng, sizes[0]), tmp_path)
    x = rng.normal(size=(2, *sizes[1])).astype("float32")   # other sizes, the same file
    np.testing.assert_allclose(session.run(None, {"input": x})[0], model.predict(x, verbose=0), **TOL)


# --- functional models: merges, a residual block --------------------------------------------

MERGES = {
    "add3": lambda bs: layers.Add()(bs),
    "subtract": lambda bs: layers.Subtract()(bs[:2]),
    "multiply3": lambda bs: layers.Multiply()(bs),
    "average3": lambda bs: layers.Average()(bs),
    "maximum3": lambda bs: layers.Maximum()(bs),
    "minimum2": lambda bs: layers.Minimum()(bs[1:]),
    "concatenate": lambda bs: layers.Concatenate()(bs),
    "concatenate_axis1": lambda bs: layers.Concatenate(axis=1)(bs),
}


@pytest.mark.parametrize("merge", sorted(MERGES))
def test_merge_of_branches_of_one_input(merge, tmp_path, rng):
    inp = Input((4, 5))
    branches = [layers.Dense(6, activation="tanh")(inp), layers.Dense(6)(inp),
                layers.Conv1D(6, 3, padding="same")(inp)]
    model = randomize(models.Model(inp, MERGES[merge](branches)), rng)
    export_and_compare(model, floats(rng, (4, 5)), tmp_path)


@pytest.mark.parametrize("cls", [layers.Add, layers.Subtract, layers.Multiply, layers.Average,
                                 layers.Maximum, layers.Minimum])
def test_merge_broadcasts_fewer_dimensions_after_the_batch_axis(cls, tmp_path, rng):
    inp = Input((4, 6))     # (N, 4, 6) with (N, 6) -> (N, 1, 6), and (N, 4, 1)
    pooled = layers.Dense(6)(layers.GlobalAveragePooling1D()(inp))
    gate = layers.Dense(1, activation="sigmoid")(inp)
    y = cls()([inp, pooled]) if cls is layers.Subtract else cls()([inp, pooled, gate])
    model = randomize(models.Model(inp, y), rng)
    export_and_compare(model, floats(rng, (4, 6)), tmp_path)


def test_residual_block(tmp_path, rng):
    inp = Input((7, 6, 4))
    h = layers.Conv2D(4, 3, padding="same")(inp)
    h = layers.ReLU()(layers.BatchNormalization()(h))
    h = layers.BatchNormalization()(layers.Conv2D(4, 3, padding="same")(h))
    out = layers.ReLU()(layers.Add()([h, inp]))
    model = randomize(models.Model(inp, out), rng)
    export_and_compare(model, floats(rng, (7, 6, 4)), tmp_path)


def test_encoder_decoder_image_model(tmp_path, rng):
    inp = Input((8, 6, 2))
    h = layers.Rescaling(0.5, offset=0.25)(inp)
    down = layers.Conv2D(4, 3, strides=2, padding="same", activation="relu")(h)
    up = layers.Conv2DTranspose(4, 3, strides=2, padding="same")(down)
    skip = layers.Cropping2D(((1, 1), (0, 0)))(layers.ZeroPadding2D(((1, 1), (0, 0)))(h))
    y = layers.Concatenate()([layers.UpSampling2D(interpolation="bilinear")(down), up, skip])
    y = layers.PReLU(shared_axes=[1, 2])(layers.SpatialDropout2D(0.3)(y))
    model = randomize(models.Model(inp, layers.Conv2D(1, 1)(y)), rng)
    export_and_compare(model, floats(rng, (8, 6, 2)), tmp_path)


# --- Bidirectional ----------------------------------------------------------------------------

RNNS = {"simple_rnn": layers.SimpleRNN, "lstm": layers.LSTM, "gru": layers.GRU}


@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave"])
@pytest.mark.parametrize("rnn", sorted(RNNS))
def test_bidirectional(rnn, merge_mode, return_sequences, tmp_path, rng):
    model = randomize(models.Sequential([Input((5, 3)), layers.Bidirectional(
        RNNS[rnn](4, return_sequences=return_sequences), merge_mode=merge_mode)]), rng)
    export_and_compare(model, floats(rng, (5, 3)), tmp_path)


def test_bidirectional_lstm_model_on_sequences(tmp_path, rng):
    model = randomize(models.Sequential([
        layers.Bidirectional(layers.LSTM(6, return_sequences=True), input_shape=(None, 4)),
        layers.Bidirectional(layers.GRU(5), merge_mode="sum"),
        layers.Dense(3, activation="softmax")]), rng)
    _, session = export_and_compare(model, floats(rng, (9, 4)), tmp_path)
    x = rng.normal(size=(2, 4, 4)).astype("float32")   # another length, the same file
    np.testing.assert_allclose(session.run(None, {"input": x})[0], model.predict(x, verbose=0), **TOL)


def test_bidirectional_with_own_backward_layer_and_backwards_forward_layer(tmp_path, rng):
    inp = Input((6, 3))
    a = layers.Bidirectional(layers.LSTM(4, return_sequences=True),
                             backward_layer=layers.GRU(4, go_backwards=True,
                                                       return_sequences=True))(inp)
    b = layers.Bidirectional(layers.SimpleRNN(7, go_backwards=True, return_sequences=True),
                             merge_mode="ave")(inp)
    model = randomize(models.Model(inp, layers.Concatenate()([a, b])), rng)
    export_and_compare(model, floats(rng, (6, 3)), tmp_path)


# --- refused --------------------------------------------------------------------------------

class Twice(Layer):
    def call(self, inputs, training=False):
        return inputs * 2

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)


def test_wrapped_layer_without_converter_is_named_before_writing(tmp_path):
    model = models.Sequential([layers.TimeDistributed(Twice(name="twice_1"), input_shape=(3, 2))])
    with pytest.raises(ValueError, match="Twice 'twice_1'"):
        model.export(tmp_path / "m.onnx", format="onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_bidirectional_with_two_outputs_is_refused(tmp_path):
    model = models.Sequential([Input((4, 2)),
                               layers.Bidirectional(layers.LSTM(3), merge_mode=None, name="bi")])
    with pytest.raises(ValueError, match="Bidirectional 'bi'.*several outputs"):
        model.export(tmp_path / "m.onnx", format="onnx")
    assert not (tmp_path / "m.onnx").exists()
