"""What the two ONNX export test files share: random weights, an export checked by onnx and
run by onnxruntime against tidu's predict. Import it after pytest.importorskip("onnx") and
("onnxruntime"), as those files do."""
import numpy as np
import onnx
import onnxruntime as ort

TOL = dict(atol=1e-4, rtol=1e-4)


def randomize(model, rng, scale=0.5):
    """Every weight drawn from U(−scale, scale) (biases too, so their layout is tested), the
    moving variances from U(0.5, 1.5)."""
    for w in model.weights:
        low, high = (0.5, 1.5) if w.name.endswith("moving_variance") else (-scale, scale)
        w.data[...] = rng.uniform(low, high, w.shape)
    return model


def export_and_compare(model, make_input, tmp_path, batches=(1, 7)):
    """Export once; onnxruntime's output equals model.predict for each batch size. Returns
    (the file's path, the onnxruntime session)."""
    path = tmp_path / "m.onnx"
    model.export(str(path), format="onnx")
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for n in batches:
        x = make_input(n)
        got = session.run(["output"], {"input": x})[0]
        want = model.predict(x, verbose=0)
        assert got.shape == want.shape, (n, got.shape, want.shape)
        np.testing.assert_allclose(got, want, **TOL, err_msg=f"batch size {n}")
    return path, session


def floats(rng, shape):
    return lambda n: rng.normal(size=(n, *shape)).astype("float32")
