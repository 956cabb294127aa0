"""Bad input across the public API: each case raises the documented exception type, its
message says what was expected and what was got, and nothing changed: the model's weights
and its optimizer's state are exactly as before (DESIGN.md, "What bad input gets")."""
import io
import json
import re
import zipfile

import numpy as np
import pytest

import tidu
import tidu.distributed  # noqa: F401  (tidu.distributed.get, .ParameterServer)
from tidu import callbacks, layers, losses, metrics, models, optimizers
from tidu.errors import ModelFileError, NotBuiltError, ShapeError
from tidu.optimizers import SGD, Adam

N = 20


@pytest.fixture
def model(rng):
    """A compiled, trained model (so the optimizer has state: step count, moments)."""
    tidu.backend.seed(0)
    m = models.Sequential([layers.Dense(8, activation="relu", input_shape=(6,)),
                           layers.Dense(3, activation="softmax")])
    m.compile(Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
    m.fit(rng.standard_normal((N, 6)).astype("float32"), rng.integers(0, 3, N), batch_size=10, verbose=0)
    return m


def X(n=N, d=6):
    return np.random.default_rng(1).standard_normal((n, d)).astype("float32")


def Y(n=N, classes=3):
    return np.arange(n) % classes


def snapshot(m):
    return ([w.copy() for w in m.get_weights()] if m.built else None,
            m.optimizer.state_dict() if m.optimizer is not None else None)


def unchanged(m, snap):
    weights, state = snap
    if weights is not None and not all(np.array_equal(a, b) for a, b in zip(weights, m.get_weights())):
        return False
    if state is not None:
        now = m.optimizer.state_dict()
        return sorted(now) == sorted(state) and all(np.array_equal(now[k], state[k]) for k in now)
    return True


def bad_file(tmp, m, edit):
    """A saved model file with config.json edited by edit(config)."""
    path = tmp / "m.tidu"
    m.save(path)
    with zipfile.ZipFile(path) as zf:
        parts = {n: zf.read(n) for n in zf.namelist()}
    config = json.loads(parts["config.json"])
    edit(config)
    parts["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(path, "w") as zf:
        for name, blob in parts.items():
            zf.writestr(name, blob)
    return path


class NotACallback:
    pass


# (id, action(model, tmp_path), exception type, regex the message must match: it names what was
# expected and what was got)
CASES = [
    # --- data: shapes and dtypes
    ("x last dimension", lambda m, t: m.fit(X(d=5), Y(), verbose=0), ShapeError,
     r"expected input with last dimension 6, got shape \(\d+, 5\)"),
    ("x rank", lambda m, t: m.fit(X()[:, :, None], Y(), verbose=0), ShapeError,
     r"expected input of shape \(None, 6\), got shape \(20, 6, 1\)"),
    ("x of strings", lambda m, t: m.fit(np.full((N, 6), "a"), Y(), verbose=0), TypeError,
     r"expected x to be a numeric array, got dtype <U1"),
    ("x ragged list", lambda m, t: m.fit([[1.0, 2.0], [3.0]], [0, 1], verbose=0), ValueError,
     r"expected x to be a rectangular numeric array, got .*inhomogeneous"),
    ("x complex", lambda m, t: m.fit(X().astype(complex), Y(), verbose=0), TypeError,
     r"expected x to be a numeric array, got dtype complex128"),
    ("x None", lambda m, t: m.fit(None, Y(), verbose=0), ValueError, r"expected x to be an array, got None"),
    ("x scalar", lambda m, t: m.predict(3.0), ValueError, r"expected x with a batch axis, got a scalar"),
    ("x empty", lambda m, t: m.fit(X()[:0], Y()[:0], verbose=0), ValueError,
     r"x is empty \(shape \(0, 6\)\); expected at least one sample"),
    ("y None", lambda m, t: m.fit(X(), None, verbose=0), ValueError, r"expected targets y, got None"),
    ("x, y lengths", lambda m, t: m.fit(X(), Y(19), verbose=0), ValueError,
     r"x and y have different numbers of samples: x has 20, y has 19"),
    ("one-hot y of the wrong width", lambda m, t: (m.compile(m.optimizer, "categorical_crossentropy"),
                                                   m.fit(X(), np.eye(4)[Y(classes=4)], verbose=0)), ValueError,
     r"y has shape \(20, 4\), but the model's output has shape \(None, 3\)"),
    ("integer labels with a one-hot loss", lambda m, t: (m.compile(m.optimizer, "categorical_crossentropy"),
                                                         m.fit(X(), Y(), verbose=0)), ValueError,
     r"y has shape \(20,\).*expects targets shaped like the output; .*to_categorical"),
    # --- data: values
    ("NaN in x", lambda m, t: m.fit(np.where(np.arange(6) == 2, np.nan, X()), Y(), verbose=0), ValueError,
     r"x contains nan at index \(0, 2\); expected finite values"),
    ("inf in x", lambda m, t: m.evaluate(np.where(np.arange(6) == 4, np.inf, X()), Y(), verbose=0), ValueError,
     r"x contains inf at index \(0, 4\); expected finite values"),
    ("NaN in y", lambda m, t: (m.compile(m.optimizer, "mse"), m.fit(X(), np.full((N, 3), np.nan), verbose=0)),
     ValueError, r"y contains nan at index \(0, 0\); expected finite values"),
    ("label too large", lambda m, t: m.fit(X(), np.where(np.arange(N) == 5, 3, Y()), verbose=0), ValueError,
     r"label 3 at index \(5,\) is outside \[0, 3\): the model has 3 output classes"),
    ("negative label", lambda m, t: m.train_on_batch(X(), -Y() - 1), ValueError,
     r"label -\d+ at index .* is outside \[0, 3\)"),
    ("fractional label", lambda m, t: m.fit(X(), Y() + 0.5, verbose=0), ValueError,
     r"expects integer class labels, got 0.5 at index \(0,\)"),
    ("sample_weight length", lambda m, t: m.fit(X(), Y(), sample_weight=np.ones(3), verbose=0), ValueError,
     r"expected sample_weight of shape \(20,\), one weight per sample, got shape \(3,\)"),
    ("negative sample_weight", lambda m, t: m.fit(X(), Y(), sample_weight=-np.ones(N), verbose=0), ValueError,
     r"expected finite, non-negative sample weights, got -1.0 at index 0"),
    ("class_weight not a dict", lambda m, t: m.fit(X(), Y(), class_weight=[1, 2], verbose=0), TypeError,
     r"expected class_weight to be a dict \{class: weight\}, got \[1, 2\]"),
    ("validation data of another width", lambda m, t: m.fit(X(), Y(), validation_data=(X(d=5), Y()), verbose=0),
     ShapeError, r"\(validation data\).*expected input with last dimension 6, got shape \(20, 5\)"),
    ("validation_data form", lambda m, t: m.fit(X(), Y(), validation_data=X(), verbose=0), ValueError,
     r"expected validation_data to be \(x_val, y_val\).*got ndarray"),
    ("curriculum scores", lambda m, t: m.fit(X(), Y(), curriculum=np.ones(3), verbose=0), ValueError,
     r"expected curriculum scores of shape \(20,\), one per sample, got shape \(3,\)"),
    # --- training arguments
    ("batch_size 0", lambda m, t: m.fit(X(), Y(), batch_size=0, verbose=0), ValueError,
     r"expected batch_size to be an int >= 1, got batch_size=0"),
    ("negative batch_size", lambda m, t: m.predict(X(), batch_size=-4), ValueError,
     r"expected batch_size to be an int >= 1, got batch_size=-4"),
    ("batch_size float", lambda m, t: m.fit(X(), Y(), batch_size=2.5, verbose=0), TypeError,
     r"expected batch_size to be an int, got batch_size=2.5"),
    ("negative epochs", lambda m, t: m.fit(X(), Y(), epochs=-1, verbose=0), ValueError,
     r"expected epochs to be an int >= 0, got epochs=-1"),
    ("epochs as a str", lambda m, t: m.fit(X(), Y(), epochs="3", verbose=0), TypeError,
     r"expected epochs to be an int, got epochs='3'"),
    ("steps_per_epoch 0", lambda m, t: m.fit(X(), Y(), steps_per_epoch=0, verbose=0), ValueError,
     r"expected steps_per_epoch to be an int >= 1, got steps_per_epoch=0"),
    ("validation_split 1", lambda m, t: m.fit(X(), Y(), validation_split=1.0, verbose=0), ValueError,
     r"expected 0 <= validation_split < 1, got 1.0"),
    ("verbose 5", lambda m, t: m.fit(X(), Y(), verbose=5), ValueError,
     r"expected verbose to be 0, 1 or 2, got 5"),
    ("missing monitor", lambda m, t: m.fit(X(), Y(), verbose=0, callbacks=[callbacks.EarlyStopping("val_acc")]),
     ValueError, r"monitor 'val_acc' is not in the logs; available: loss, accuracy"),
    ("callback of another type", lambda m, t: m.fit(X(), Y(), verbose=0, callbacks=[NotACallback()]), TypeError,
     r"expected Callback instances, got NotACallback"),
    ("resume from a missing file", lambda m, t: m.fit(X(), Y(), verbose=0, resume_from=t / "none.tidu"),
     FileNotFoundError, r"none.tidu"),
    # --- unknown names
    ("unknown optimizer", lambda m, t: m.compile("rmsprob", "mse"), ValueError,
     r"unknown optimizer 'rmsprob'.*rmsprop"),
    ("unknown loss", lambda m, t: m.compile("sgd", "categorical_crossentropyy"), ValueError,
     r"did you mean 'categorical_crossentropy'.*Allowed:.*mse"),
    ("unknown metric", lambda m, t: m.compile("sgd", "mse", metrics=["acuracy"]), ValueError,
     r"acuracy.*did you mean 'accuracy'"),
    ("duplicate metrics", lambda m, t: m.compile("sgd", "mse", metrics=["mae", "mae"]), ValueError,
     r"metric names must be unique and not 'loss', got \['mae'\]"),
    ("unknown activation", lambda m, t: layers.Dense(3, activation="relux"), ValueError,
     r"unknown activation 'relux'; did you mean 'relu'"),
    ("unknown layer class", lambda m, t: layers.get("Dence"), ValueError,
     r"unknown layer class 'Dence'; did you mean 'Dense'"),
    ("unknown initializer", lambda m, t: layers.Dense(3, kernel_initializer="glorot"), ValueError,
     r"glorot.*(expected|Allowed|Known|did you mean)"),
    ("unknown loss function object", lambda m, t: losses.get(42), TypeError,
     r"expected a loss name, config dict, Loss or function, got int: 42"),
    ("unknown metric object", lambda m, t: metrics.get(42), TypeError, r"42"),
    ("compile with a bad loss_weights", lambda m, t: m.compile("sgd", "mse", loss_weights="a"), TypeError,
     r"expected loss_weights to be a number, got 'a'"),
    ("compile with an unknown argument", lambda m, t: m.compile("sgd", "mse", run_eagerlyy=True), TypeError,
     r"unexpected keyword argument\(s\) run_eagerlyy"),
    # --- hyperparameters
    ("Dense units 0", lambda m, t: layers.Dense(0), ValueError, r"expected units to be an int >= 1, got units=0"),
    ("Dropout rate 1.5", lambda m, t: layers.Dropout(1.5), ValueError, r"rate.*1.5"),
    ("Conv2D kernel_size 0", lambda m, t: layers.Conv2D(2, 0), ValueError, r"kernel_size.*0"),
    ("Adam beta_1 1.2", lambda m, t: Adam(beta_1=1.2), ValueError, r"Adam: expected 0 <= beta_1 < 1, got beta_1=1.2"),
    ("negative learning rate", lambda m, t: SGD(learning_rate=-0.1), ValueError,
     r"expected learning_rate >= 0, got learning_rate=-0.1"),
    ("two clippings", lambda m, t: Adam(clipnorm=1.0, clipvalue=1.0), ValueError,
     r"only one of clipnorm, clipvalue and global_clipnorm can be set, got clipnorm=1.0, clipvalue=1.0"),
    ("unknown optimizer argument", lambda m, t: Adam(lr_decay=0.1), TypeError,
     r"unknown argument 'lr_decay'.*accepted arguments: learning_rate"),
    ("EarlyStopping patience", lambda m, t: callbacks.EarlyStopping(patience=-1), ValueError,
     r"expected patience >= 0, got -1"),
    ("ReduceLROnPlateau factor", lambda m, t: callbacks.ReduceLROnPlateau(factor=2.0), ValueError,
     r"expected 0 < factor < 1, got factor=2.0"),
    ("ModelCheckpoint save_freq", lambda m, t: callbacks.ModelCheckpoint("x.tidu", save_freq=0), ValueError,
     r"expected save_freq to be 'epoch' or a positive int, got 0"),
    # --- order of calls
    ("summary before build", lambda m, t: models.Sequential([layers.Dense(3)]).summary(), NotBuiltError,
     r"summary needs the model built; give the first layer input_shape"),
    ("predict with an empty model", lambda m, t: models.Sequential().predict(X()), ValueError,
     r"has no layers"),
    ("fit before compile", lambda m, t: models.Sequential([layers.Dense(3, input_shape=(6,))]).fit(X(), Y()),
     RuntimeError, r"the model must be compiled first; call model.compile"),
    ("set_weights of other shapes", lambda m, t: m.set_weights([w[:1] for w in m.get_weights()]), ShapeError,
     r"expected weight '.*kernel' of shape \(6, 8\), got \(1, 8\)"),
    ("set_weights count", lambda m, t: m.set_weights(m.get_weights()[:1]), ValueError,
     r"expected 4 weight arrays, got 1"),
    # --- files
    ("load a config with an unknown layer", lambda m, t: models.load_model(bad_file(t, m, lambda c: (
        c["model"]["config"]["layers"][0].update(class_name="Lambda")))), ModelFileError,
     r"unknown layer class 'Lambda'"),
    ("load a config with a wrong argument type", lambda m, t: models.load_model(bad_file(t, m, lambda c: (
        c["model"]["config"]["layers"][0]["config"].update(units="8")))), ModelFileError,
     r"expected 'units' to be an int >= 1, got '8'"),
    ("load_weights of another architecture", lambda m, t: (
        models.Sequential([layers.Dense(5, input_shape=(6,)), layers.Dense(3)]).save_weights(t / "w.safetensors"),
        m.load_weights(t / "w.safetensors")), ModelFileError,
     r"has shape \(6, 5\), the model expects \(6, 8\)"),
    ("load a file that is not a model", lambda m, t: (t.joinpath("x.tidu").write_bytes(b"\x89PNG...."),
                                                      models.load_model(t / "x.tidu")), ModelFileError,
     r"not a tidu model file: not a valid zip archive"),
    # --- distributed
    ("num_workers 0", lambda m, t: tidu.distributed.ParameterServer("asgd", num_workers=0), ValueError,
     r"expected num_workers to be an int >= 1, got num_workers=0"),
    ("unknown rule", lambda m, t: tidu.distributed.get("adasgd"), ValueError, r"adasgd.*(asgd|dcasgd)"),
    ("unknown rule in fit", lambda m, t: m.fit(X(), Y(), distributed="adasgd", verbose=0), ValueError,
     r"adasgd.*(asgd|dcasgd)"),
    ("distributed spec of another type", lambda m, t: tidu.distributed.get(3), TypeError,
     r"expected a ParameterServer, a Rule or a rule name .*got int"),
    ("distributed with steps_per_epoch", lambda m, t: m.fit(X(), Y(), distributed="asgd", steps_per_epoch=2,
                                                            verbose=0), ValueError,
     r"steps_per_epoch and resume_from are not supported with distributed="),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_refused_and_changes_nothing(case, model, tmp_path):
    _, action, exc_type, message = case
    before = snapshot(model)
    compiled = (model.optimizer, model.compiled_loss, list(model.compiled_metrics))
    with pytest.raises(exc_type) as info:
        action(model, tmp_path)
    assert re.search(message, str(info.value)), f"message: {info.value}"
    assert type(info.value) is exc_type or exc_type in (ValueError, TypeError)
    assert unchanged(model, before)
    if case[0] in FAILED_COMPILES:  # a refused compile keeps the previous one
        assert (model.optimizer, model.compiled_loss, list(model.compiled_metrics)) == compiled


FAILED_COMPILES = {"unknown optimizer", "unknown loss", "unknown metric", "duplicate metrics",
                   "compile with a bad loss_weights", "compile with an unknown argument"}


def test_there_are_enough_cases():
    assert len(CASES) >= 40


@pytest.mark.parametrize("fast", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, None])
def test_the_finiteness_check_finds_every_nonfinite_value_and_only_those(dtype, bad, fast,
                                                                         monkeypatch):
    from tidu.training import checks
    from tidu.training.checks import all_finite as _all_finite

    monkeypatch.setattr(checks, "enabled", lambda: fast)   # large arrays: chunks, or the product

    x = np.full((7, 3, 5), np.finfo(dtype).max, dtype=dtype)   # a sum would overflow; 0·max is 0
    x[::2] = -np.finfo(dtype).max
    if bad is not None:
        x[6, 2, 4] = bad
    assert _all_finite(x) is (bad is None)
    assert _all_finite(x[:, 2, 4]) is (bad is None)             # 1-D: the plain check
    big = np.full((300, 1000), np.finfo(dtype).max, dtype=dtype)  # past SMALL_CHECK, 2 chunks
    big[::3] = -np.finfo(dtype).max
    for where in [(0, 0), (262, 143), (262, 144), (299, 999)]:   # each end of the two chunks
        b = big.copy()
        if bad is not None:
            b[where] = bad
        assert _all_finite(b) is (bad is None)
