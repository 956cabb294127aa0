"""The container of a model file: one zip archive of JSON and safetensors, written atomically.

    config.json                  the architecture, compile and training sections (saving.schema)
    model.weights.safetensors    every weight, named '<layer name>/<weight name>' (Keras' order)
    optimizer.safetensors        the optimizer's state_dict (step count, moments ...)
    callbacks.safetensors        in a checkpoint only, and only when a callback keeps copies of
                                 the weights (EarlyStopping's best weights): '<callback key>/<i>'

Writing goes to a temporary file in the target's directory, fsynced, then `os.replace`
(tidu.utils.atomic_write): a crash (or SIGKILL) leaves the old file or the new one.

Reading checks the container before anything is parsed: an intact zip (CRC of every member)
holding exactly these three members (and at most callbacks.safetensors besides), not encrypted; config.json at most 16 MiB; the tensor
members stored uncompressed (as tidu writes them), so their sizes are those of the bytes in
the file (no decompression bombs); strict JSON (no NaN/Infinity constants); valid safetensors.
Anything else raises ModelFileError naming the file and what is wrong. Only JSON and
safetensors are parsed: nothing in the file is run.
"""
import collections
import io
import json
import math
import os
import zipfile

import numpy as np

from tidu import backend
from tidu.errors import ModelFileError
from tidu.utils import atomic_write

FORMAT, FORMAT_VERSION = "tidu.model", 1
CONFIG, WEIGHTS, OPTIMIZER = "config.json", "model.weights.safetensors", "optimizer.safetensors"
CALLBACKS = "callbacks.safetensors"
MEMBERS = (CONFIG, WEIGHTS, OPTIMIZER)
MAX_CONFIG_BYTES = 16 << 20
MAX_TENSOR_BYTES = 16 << 30


# --- writing -------------------------------------------------------------------------------
def check_overwrite(path, overwrite):
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")


def safetensors_bytes(tensors):
    """safetensors bytes; the metadata keeps the names in order ('names', a JSON list), which
    the format's header (sorted by name) does not."""
    from safetensors.numpy import save
    # (np.ascontiguousarray would turn a 0-d array into shape (1,))
    return save({k: np.array(v, order="C", copy=not np.asarray(v).flags.c_contiguous)
                 for k, v in tensors.items()},
                metadata={"format": "tidu", "names": json.dumps(list(tensors))})


def write_archive(filepath, config_bytes, weights, optimizer_state, callbacks=None):
    """Write the three members (and callbacks.safetensors when `callbacks` is given) to
    `filepath` atomically: config.json deflated, the tensor members (safetensors bytes) stored,
    as the reader requires."""
    def write(f):
        with zipfile.ZipFile(f, "w") as zf:
            zf.writestr(CONFIG, config_bytes, compress_type=zipfile.ZIP_DEFLATED)
            zf.writestr(WEIGHTS, weights, compress_type=zipfile.ZIP_STORED)
            zf.writestr(OPTIMIZER, optimizer_state, compress_type=zipfile.ZIP_STORED)
            if callbacks is not None:
                zf.writestr(CALLBACKS, callbacks, compress_type=zipfile.ZIP_STORED)

    atomic_write(filepath, write)


def is_archive(source):
    """Whether a path or a binary file object holds a zip archive (the file object's position
    is kept)."""
    if isinstance(source, str):
        return zipfile.is_zipfile(source)
    here = source.tell()
    head = source.read(4)
    source.seek(here)
    return head == b"PK\x03\x04"


# --- reading: the container ------------------------------------------------------------------
def fail(path, what):
    return ModelFileError(f"{path}: {what}")


def source_and_name(filepath):
    """(what to open, the name messages use) for a path or a binary file object."""
    if hasattr(filepath, "read") and hasattr(filepath, "seek"):
        return filepath, str(getattr(filepath, "name", "<file object>"))
    path = os.fspath(filepath)
    return path, path


def size_of(source):
    if isinstance(source, str):
        return os.path.getsize(source)
    here = source.tell()
    end = source.seek(0, io.SEEK_END)
    source.seek(here)
    return end


def read_members(filepath):
    """{member name: bytes} of a model file, after checking the container (see the module
    docstring). FileNotFoundError for a missing path; ModelFileError for anything else."""
    return read_zip(filepath, "tidu model file", MEMBERS, text=(CONFIG,),
                    text_limit=MAX_CONFIG_BYTES, blob_limit=MAX_TENSOR_BYTES, optional=(CALLBACKS,))


def read_zip(filepath, kind, members, text, text_limit, blob_limit, optional=()):
    """{member name: bytes} of a zip file of `kind` ('tidu model file', '.keras file') that
    holds exactly `members` (and any of `optional`), each once, none encrypted. The `text` members (JSON) may be
    deflated and hold at most text_limit bytes; the others must be stored uncompressed, so that
    their sizes are those of the bytes in the file (no decompression bombs), and hold at most
    blob_limit bytes. Every size is checked before its member is read, every CRC as it is."""
    source, path = source_and_name(filepath)
    try:
        size = size_of(source)
        zf = zipfile.ZipFile(source)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except zipfile.BadZipFile as e:
        raise fail(path, f"not a {kind}: not a valid zip archive ({e}); the file is "
                          f"truncated, corrupted or of another format") from None
    except Exception as e:  # OSError, and whatever a mangled central directory provokes
        raise fail(path, f"not a {kind}: the zip directory cannot be read "
                          f"({type(e).__name__}: {e}); the file is truncated or corrupted") from None
    with zf:
        infos = zf.infolist()
        names = [i.filename for i in infos]
        unknown = sorted(set(names) - set(members) - set(optional))
        if unknown:
            raise fail(path, f"unexpected member(s) {short(unknown)} in the archive; a {kind} "
                              f"holds exactly {list(members)}")
        dupes = sorted(n for n, k in collections.Counter(names).items() if k > 1)
        if dupes:
            raise fail(path, f"member(s) {dupes} appear more than once (tampered archive)")
        missing = [m for m in members if m not in names]
        if missing:
            raise fail(path, f"missing member(s) {missing}; a {kind} holds exactly {list(members)}")
        data = {}
        for info in infos:
            name = info.filename
            if info.flag_bits & 0x1:
                raise fail(path, f"member {name!r} is encrypted; a {kind} is not")
            if name in text:
                limit = text_limit
                if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                    raise fail(path, f"member {name!r} uses compression method {info.compress_type}; "
                                      f"expected stored (0) or deflated (8)")
            else:
                limit = min(blob_limit, size)
                if info.compress_type != zipfile.ZIP_STORED or info.compress_size != info.file_size:
                    raise fail(path, f"member {name!r} is compressed (method {info.compress_type}, "
                                      f"{info.compress_size} bytes for {info.file_size}); {kind}s "
                                      f"store it uncompressed")
            if info.file_size > limit:
                raise fail(path, f"member {name!r} claims {info.file_size} bytes, more than the "
                                  f"{limit} allowed (the whole file has {size} bytes)")
            try:
                with zf.open(info) as f:
                    blob = f.read(limit + 1)
            except Exception as e:  # BadZipFile (CRC), zlib.error, EOFError, struct.error, ...
                raise fail(path, f"member {name!r} is corrupted ({type(e).__name__}: {e})") from None
            if len(blob) != info.file_size:
                raise fail(path, f"member {name!r} has {len(blob)} bytes, the archive says "
                                  f"{info.file_size}")
            data[name] = blob
    return data


class BuildBudget:
    """The initializer a model is built with while a file is loaded: zeros, but no more bytes
    in all than `available` (the weights member holds every weight uncompressed, and each is
    overwritten from the file anyway). A tampered config asking for huge layers fails here,
    before allocating them. `holder` names what holds the weights in the messages."""

    def __init__(self, path, available, holder, slack=0):
        self.path, self.left, self.available = path, available, available
        self.holder, self.slack = holder, slack

    def __call__(self, shape, dtype=None):
        shape = tuple(int(d) for d in shape)
        dtype = np.dtype(dtype or backend.floatx())
        need = math.prod(shape) * dtype.itemsize
        if need > self.left:
            raise fail(self.path, f"{CONFIG}: the model asks for a weight of shape {shape} "
                                   f"({need:,} bytes), more than {self.holder} can hold "
                                   f"({self.available - self.slack:,} bytes)")
        self.left -= need
        return np.zeros(shape, dtype)


def parse_json(path, blob):
    try:
        text = blob.decode("utf-8")
    except UnicodeDecodeError as e:
        raise fail(path, f"{CONFIG} is not UTF-8 text ({e})") from None

    def no_constants(name):
        raise ValueError(f"non-standard JSON constant {name}")

    def finite(text):
        v = float(text)
        if not math.isfinite(v):
            raise ValueError(f"number {text[:40]} does not fit a float")
        return v
    try:
        return json.loads(text, parse_constant=no_constants, parse_float=finite)
    except (ValueError, RecursionError) as e:
        raise fail(path, f"{CONFIG} is not valid JSON ({clip(str(e), 200)})") from None


def load_tensors(path, blob, member):
    from safetensors.numpy import load
    try:
        tensors = load(blob)
    except Exception as e:  # SafetensorError, and anything a malformed header provokes
        raise fail(path, f"{member} is not a valid safetensors file ({type(e).__name__}: "
                          f"{clip(str(e), 200)})") from None
    return tensors


def short(v, n=120):
    """repr(v), cut to n characters."""
    return clip(repr(v), n)


def clip(text, n):
    return text if len(text) <= n else text[:n] + "..."


def check_tensors(path, member, tensors, expected):
    """tensors (name -> array) against expected (name -> (shape, dtype)); ModelFileError if
    a name is missing or extra, or a shape or dtype differs."""
    missing = [k for k in expected if k not in tensors]
    extra = sorted(k for k in tensors if k not in expected)
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {short(missing)}")
        if extra:
            parts.append(f"unexpected {short(extra)}")
        raise fail(path, f"{member}: the tensors do not match the model: {'; '.join(parts)}")
    for k, (shape, dtype) in expected.items():
        a = tensors[k]
        if tuple(a.shape) != tuple(shape):
            raise fail(path, f"{member}: tensor {k!r} has shape {tuple(a.shape)}, the model "
                              f"expects {tuple(shape)}")
        if np.dtype(a.dtype) != np.dtype(dtype):
            raise fail(path, f"{member}: tensor {k!r} has dtype {a.dtype}, the model expects {np.dtype(dtype)}")


# --- tensors against the model -------------------------------------------------------------
def ordered_names(blob, tensors):
    """The tensor names in the order they were saved (from the metadata), if it says."""
    try:
        n = int.from_bytes(blob[:8], "little")
        header = json.loads(blob[8:8 + n])
        names = json.loads((header.get("__metadata__") or {}).get("names", "null"))
    except (ValueError, TypeError, AttributeError, RecursionError):
        return None
    if isinstance(names, list) and all(isinstance(k, str) for k in names) \
            and len(names) == len(tensors) and sorted(names) == sorted(tensors):
        return names
    return None


def match_weights(path, member, blob, tensors, params, by_name):
    """The arrays of `tensors` for `params`, in order: by name, or (as Keras) by the saved
    order when the names differ; ModelFileError unless count, shapes and dtypes fit."""
    expected = {p.name: (p.shape, p.dtype) for p in params}
    if not by_name and set(tensors) != set(expected):
        order = ordered_names(blob, tensors)
        if order is None:
            raise fail(path, f"{member}: the names differ from the model's and the file does not "
                              f"record their order, so they cannot be matched by position")
        if len(order) != len(params):
            raise fail(path, f"{member}: holds {len(order)} weights, the model has {len(params)}")
        tensors = {p.name: tensors[k] for p, k in zip(params, order)}
    check_tensors(path, member, tensors, expected)
    return [tensors[p.name] for p in params]


