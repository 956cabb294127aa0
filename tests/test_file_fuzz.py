"""Fuzzing the model file reader: thousands of mutated model files (byte flips, truncations,
insertions and deletions in the zip container and inside its members, edits to the JSON
config, to the safetensors headers and to the zip records) must each either load or raise
ModelFileError: never another exception, never a hang, never a memory blow-up. A mutation
the checksums cover (anything in the container) that still loads must load identically.

Reproducible: hypothesis runs derandomized (a fixed sequence of examples) without a database.
"""
import functools
import io
import json
import resource
import struct
import time
import warnings
import zipfile

import numpy as np
import pytest

from tidu import backend, layers, models
from tidu.errors import ModelFileError
from tidu.optimizers import Adam

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

EXAMPLES = 3000          # mutated files loaded by the main test
CONFIG, WEIGHTS, OPTIMIZER = "config.json", "model.weights.safetensors", "optimizer.safetensors"


def _save(model):
    from tidu import saving
    import tempfile, os
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "m.tidu")
        saving.save_model(model, path)
        with open(path, "rb") as f:
            return f.read()


@pytest.fixture(scope="module")
def originals():
    """Two small trained models as bytes: a Sequential (dense, seeded dropout, batch norm)
    and a functional one (conv, pooling, flatten, dense)."""
    backend.seed(0)
    rng = np.random.default_rng(0)
    seq = models.Sequential([layers.Dense(5, activation="relu", input_shape=(4,)),
                             layers.Dropout(0.5, seed=1), layers.BatchNormalization(),
                             layers.Dense(3, activation="softmax")])
    seq.compile(Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
    seq.fit(rng.standard_normal((16, 4)), rng.integers(0, 3, 16), batch_size=8, verbose=0, seed=2)
    inp = layers.Input((6, 6, 1))
    h = layers.MaxPooling2D(2)(layers.Conv2D(2, 3, activation="tanh")(inp))
    out = layers.Dense(2, activation="sigmoid")(layers.Flatten()(h))
    fun = models.Model(inp, out)
    fun.compile("rmsprop", "binary_crossentropy")
    fun.fit(rng.standard_normal((8, 6, 6, 1)), rng.integers(0, 2, (8, 2)).astype("float32"),
            batch_size=4, verbose=0, seed=3)
    out = []
    for m in (seq, fun):
        blob = _save(m)
        ref = models.load_model(io.BytesIO(blob))
        out.append((blob, ref.get_weights(), ref.optimizer.state_dict()))
    return out


# --- mutations ---------------------------------------------------------------------------------
# Hypothesis chooses the file, the kind of mutation and a seed; the seed drives a NumPy generator
# that makes the many small choices of one mutation (few hypothesis draws: thousands of files in
# seconds).
def members(blob):
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def rezip(parts):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in parts.items():
            method = zipfile.ZIP_DEFLATED if name == CONFIG else zipfile.ZIP_STORED
            zf.writestr(name, data, compress_type=method)
    return buf.getvalue()


def pick(r, seq):
    return seq[int(r.integers(len(seq)))]


def mutate_bytes(r, b):
    """A byte flip, truncation, insertion, deletion or overwrite somewhere in b."""
    b = bytearray(b)
    op = pick(r, ["flip", "truncate", "insert", "delete", "overwrite"])
    pos = int(r.integers(max(len(b), 1)))
    if op == "flip" and b:
        for _ in range(int(r.integers(1, 5))):
            b[int(r.integers(len(b)))] ^= int(r.integers(1, 256))
    elif op == "truncate":
        del b[pos:]
    elif op == "insert":
        b[pos:pos] = r.bytes(int(r.integers(1, 65)))
    elif op == "delete":
        del b[pos:pos + int(r.integers(1, 65))]
    else:
        junk = r.bytes(int(r.integers(1, 17)))
        b[pos:pos + len(junk)] = junk
    return bytes(b)


JSON_SPECIALS = [0, -1, 1, 2, 3, 2**31, 2**63, 2**200, 10**12, -10**9, 0.5, -0.0, 1e308, 1e-320,
                 True, False, None, "", "relu", "Dense", "Sequential", "Model", "zeros", "ones",
                 "PCG64", "float64", "int8", "valid", "same", "__import__('os')", "x" * 5000, [], {},
                 [None], [1, 2], [0], [-1], [10**9, 10**9], [3, 3], {"class_name": "Dense", "config": {}},
                 {"class_name": "L2", "config": {"l2": 1e300}}, {"class_name": "Zeros"},
                 {"bit_generator": "PCG64", "state": {"state": 1, "inc": 3}, "has_uint32": 0, "uinteger": 0}]


def json_value(r, depth=0):
    kind = int(r.integers(8 if depth < 2 else 5))
    if kind == 0:
        return int(r.integers(-2**40, 2**40))
    if kind == 1:
        return float(r.standard_normal() * 10.0 ** int(r.integers(-5, 6)))
    if kind == 2:
        return "".join(chr(int(c)) for c in r.integers(32, 0x2FF, int(r.integers(0, 12))))
    if kind in (3, 4, 5):
        return json.loads(json.dumps(pick(r, JSON_SPECIALS)))
    if kind == 6:
        return [json_value(r, depth + 1) for _ in range(int(r.integers(0, 4)))]
    return {pick(r, ["units", "name", "config", "class_name", "x", ""]): json_value(r, depth + 1)
            for _ in range(int(r.integers(0, 4)))}


def random_spot(r, config):
    """(parent, key) of a random place in the JSON tree (never the root)."""
    parent, key = None, None
    node = config
    while isinstance(node, (dict, list)) and len(node) and (parent is None or r.random() < 0.8):
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        parent, key = node, pick(r, keys)
        node = parent[key]
    return parent, key


def edit_json(r, blob):
    parts = members(blob)
    config = json.loads(parts[CONFIG])
    for _ in range(int(r.integers(1, 4))):
        parent, key = random_spot(r, config)
        if parent is None:
            continue
        op = pick(r, ["replace", "replace", "delete", "add", "duplicate"])
        if op == "replace":
            parent[key] = json_value(r)
        elif op == "delete":
            del parent[key]
        elif op == "add" and isinstance(parent, dict):
            parent[pick(r, ["units", "name", "seed", "fit", "rng", "evil", "kwargs"])] = json_value(r)
        elif op == "add":
            parent.insert(key, json_value(r))
        elif isinstance(parent, list):  # duplicate an element (a layer, a node, a metric)
            parent.insert(key, json.loads(json.dumps(parent[key])))
    text = json.dumps(config)
    if r.random() < 0.05:
        text = text.replace("0.", pick(r, ["NaN", "Infinity", "-Infinity", "1e999"]), 1)
    parts[CONFIG] = text.encode()
    return rezip(parts)


DTYPES = ["F16", "F32", "F64", "I8", "I16", "I32", "I64", "U8", "BOOL", "BF16", "F8_E4M3", "X", "", 3]


def edit_safetensors(r, blob):
    parts = members(blob)
    member = pick(r, [WEIGHTS, OPTIMIZER])
    b = parts[member]
    n = struct.unpack("<Q", b[:8])[0]
    header, body = json.loads(b[8:8 + n]), b[8 + n:]
    names = [k for k in header if k != "__metadata__"]
    op = pick(r, ["length", "dtype", "shape", "offsets", "delete", "add", "rename", "metadata", "body"])
    if op == "length":  # a huge (or wrong) declared header length
        length = pick(r, [n - 1, n + 1, 2**63, 2**32, len(b), int(r.integers(0, 2**63)) * 2 + 1])
        parts[member] = struct.pack("<Q", length) + b[8:]
        return rezip(parts)
    name = pick(r, names) if names else None
    if op == "dtype" and name:
        header[name]["dtype"] = pick(r, DTYPES)
    elif op == "shape" and name:
        header[name]["shape"] = [pick(r, [0, 1, 2, 3, 4, 5, 10**12, int(r.integers(0, 2**40))])
                                 for _ in range(int(r.integers(0, 5)))]
    elif op == "offsets" and name:
        header[name]["data_offsets"] = [pick(r, [-1, 0, 1, 2**64, int(r.integers(0, len(body) + 8))])
                                        for _ in range(int(r.integers(0, 4)))]
    elif op == "delete" and name:
        del header[name]
    elif op == "add" and name:
        header[pick(r, ["extra", "", name + "x", "param9/m"])] = dict(header[name])
    elif op == "rename" and name:
        header[pick(r, ["renamed", "", "iterations", "param0/q"])] = header.pop(name)
    elif op == "metadata":
        header["__metadata__"] = {"names": pick(r, ['["a"]', json.dumps(names[::-1]),
                                                    json.dumps(names * 2), "null", "[1]", "{"])}
    elif op == "body":
        body = mutate_bytes(r, body)
    raw = json.dumps(header).encode()
    parts[member] = struct.pack("<Q", len(raw)) + raw + body
    return rezip(parts)


def edit_member_bytes(r, blob):
    parts = members(blob)
    member = pick(r, [CONFIG, WEIGHTS, OPTIMIZER])
    parts[member] = mutate_bytes(r, parts[member])
    return rezip(parts)


RECORDS = {b"PK\x03\x04": 30, b"PK\x01\x02": 46, b"PK\x05\x06": 22}


@functools.lru_cache(maxsize=8)
def _records(blob):
    """(offset, fixed size) of every zip record in blob."""
    out = []
    for sig, size in RECORDS.items():
        i = blob.find(sig)
        while i >= 0:
            out.append((i, size))
            i = blob.find(sig, i + 1)
    return sorted(out)


def edit_zip_record(r, blob):
    """Overwrite 1, 2 or 4 bytes of a field of a local header, central directory entry or the
    end-of-central-directory record (sizes, offsets, methods, flags, name lengths ...)."""
    start, size = pick(r, _records(blob))
    width = pick(r, [1, 2, 4])
    at = start + int(r.integers(4, size - width + 1))
    value = pick(r, [0, 255, 0xFFFF, 0xFFFFFFFF, int(r.integers(0, 256**width))]) % 256**width
    b = bytearray(blob)
    b[at:at + width] = value.to_bytes(width, "little")
    return bytes(b)


# exact: a mutation covered by the zip's checksums, so a file that still loads must load identically
MUTATIONS = {
    "container bytes": (mutate_bytes, True),
    "zip records": (edit_zip_record, True),
    "member bytes": (edit_member_bytes, False),
    "json": (edit_json, False),
    "safetensors header": (edit_safetensors, False),
}


def test_mutated_model_files_load_or_raise_model_file_error(originals):
    outcomes = {name: {"loaded": 0, "refused": 0} for name in MUTATIONS}
    slowest = [0.0]
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.integers(0, len(originals) - 1), st.sampled_from(list(MUTATIONS)), st.integers(0, 2**32 - 1))
    def load_mutated(which, kind, seed):
        blob, weights, state = originals[which]
        mutate, exact = MUTATIONS[kind]
        mutated = mutate(np.random.default_rng(seed), blob)
        t0 = time.perf_counter()
        try:
            model = models.load_model(io.BytesIO(mutated))
        except ModelFileError as e:
            assert str(e)  # says what is wrong
            outcomes[kind]["refused"] += 1
            return
        finally:
            slowest[0] = max(slowest[0], time.perf_counter() - t0)
        outcomes[kind]["loaded"] += 1
        if exact:
            assert all(np.array_equal(a, b) for a, b in zip(weights, model.get_weights()))
            got = model.optimizer.state_dict()
            assert sorted(got) == sorted(state) and all(np.array_equal(got[k], state[k]) for k in got)
        else:  # a consistent model: it runs on inputs of its own shape, or its layer says why not
            shape = (2, *(d or 1 for d in model.input_shape[1:]))  # (e.g. a pool larger than the
            if np.prod(shape) <= 1e6:                                # image, as in code)
                try:
                    with np.errstate(all="ignore"):
                        model.predict(np.zeros(shape, dtype=np.float32))
                except ValueError as e:  # ShapeError included
                    assert any(layer.name in str(e) for layer in model.layers) or "expected" in str(e)

    load_mutated()
    total = sum(o["loaded"] + o["refused"] for o in outcomes.values())
    rss_growth_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    print(f"\nfuzzed {total} files: {outcomes}; slowest load {slowest[0] * 1000:.0f} ms; "
          f"peak RSS grew {rss_growth_mb:.0f} MB")
    assert total >= 2000
    assert all(o["refused"] > 0 for o in outcomes.values())
    assert slowest[0] < 5.0           # no hang
    assert rss_growth_mb < 512        # no memory blow-up


def test_huge_declared_sizes_are_refused_before_reading(originals):
    blob = originals[0][0]
    parts = members(blob)
    b = parts[WEIGHTS]
    parts[WEIGHTS] = struct.pack("<Q", 2**62) + b[8:]  # header length of 4 EiB
    with pytest.raises(ModelFileError, match="not a valid safetensors"):
        models.load_model(io.BytesIO(rezip(parts)))
    # a central directory claiming a 1 TB member
    cd = blob.rfind(b"PK\x01\x02")
    tampered = bytearray(blob)
    tampered[cd + 24:cd + 28] = (2**32 - 1).to_bytes(4, "little")  # uncompressed size
    with pytest.raises(ModelFileError, match="claims|compressed|corrupted"):
        models.load_model(io.BytesIO(bytes(tampered)))


def test_a_deflate_bomb_is_refused(originals):
    parts = members(originals[0][0])
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(CONFIG, parts[CONFIG], compress_type=zipfile.ZIP_DEFLATED)
        zf.writestr(WEIGHTS, parts[WEIGHTS] + b"\0" * (64 << 20), compress_type=zipfile.ZIP_DEFLATED)
        zf.writestr(OPTIMIZER, parts[OPTIMIZER])
    assert len(buf.getvalue()) < 1 << 20  # 64 MiB of tensor member in well under 1 MiB of file
    with pytest.raises(ModelFileError, match="is compressed.*tidu model files store it uncompressed"):
        models.load_model(io.BytesIO(buf.getvalue()))


def test_archives_built_to_be_slow_are_refused_quickly(originals):
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate names
        with zipfile.ZipFile(buf, "w") as zf:
            for i in range(20000):
                zf.writestr(CONFIG if i % 2 else WEIGHTS, b"")
    t0 = time.perf_counter()
    with pytest.raises(ModelFileError, match="appear more than once"):
        models.load_model(io.BytesIO(buf.getvalue()))
    parts = members(originals[0][0])
    parts[CONFIG] = b"[" * 100_000 + b"]" * 100_000  # nesting deeper than any parser's stack
    with pytest.raises(ModelFileError, match="not valid JSON"):
        models.load_model(io.BytesIO(rezip(parts)))
    config = json.loads(members(originals[0][0])[CONFIG])
    config["training"]["layer_rngs"] = {"x": [[[[[[[[[[[]]]]]]]]]]]}
    parts[CONFIG] = json.dumps(config).encode()
    with pytest.raises(ModelFileError, match=r"training.layer_rngs\['x'\]"):
        models.load_model(io.BytesIO(rezip(parts)))
    assert time.perf_counter() - t0 < 5.0
