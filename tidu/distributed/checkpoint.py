"""Server-state checkpoints: one safetensors file per checkpoint, the arrays as tensors and the
rest as JSON in the file's metadata; written to a temporary file, flushed and renamed, so a
checkpoint is either complete or absent. Only JSON and tensors: loading runs no code.

    ckpt-000001200.safetensors      (simulated backend: the whole simulation at update 1200)
    shard1-000001200.safetensors    (ray backend: server shard 1 at its version 1200)
"""
import json
import os
import re
import tempfile

import numpy as np

from tidu.errors import ModelFileError

FORMAT = "tidu.distributed.checkpoint/1"


def save(path, arrays, meta):
    """Write `arrays` (name -> ndarray) and `meta` (JSON-able) to `path` atomically."""
    from safetensors.numpy import save as st_save

    tensors = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    blob = st_save(tensors, metadata={"format": FORMAT, "meta": json.dumps(meta)})
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".safetensors", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load(path):
    """(arrays, meta) from a checkpoint file; a truncated or foreign file is a ModelFileError."""
    from safetensors import SafetensorError
    from safetensors.numpy import load as st_load

    try:
        with open(path, "rb") as f:
            blob = f.read()
    except OSError as e:
        raise ModelFileError(f"checkpoint {path!r}: cannot read it ({e})") from e
    try:
        arrays = st_load(blob)
        header_len = int.from_bytes(blob[:8], "little")
        header = json.loads(blob[8:8 + header_len])
        extra = header.get("__metadata__") or {}
    except (SafetensorError, ValueError, UnicodeDecodeError) as e:
        raise ModelFileError(f"checkpoint {path!r}: not a complete safetensors file ({e})") from e
    if extra.get("format") != FORMAT:
        raise ModelFileError(f"checkpoint {path!r}: expected format {FORMAT!r}, got {extra.get('format')!r}")
    return arrays, json.loads(extra["meta"])


def file_name(prefix, version):
    return f"{prefix}-{version:09d}.safetensors"


def latest(directory, prefix):
    """The newest checkpoint of `prefix` in `directory` (highest version), or None."""
    if directory is None or not os.path.isdir(directory):
        return None
    pattern = re.compile(rf"^{re.escape(prefix)}-(\d+)\.safetensors$")
    found = [(int(m.group(1)), name) for name in os.listdir(directory) if (m := pattern.match(name))]
    return os.path.join(directory, max(found)[1]) if found else None


def prune(directory, prefix, keep=2):
    """Delete all but the `keep` newest checkpoints of `prefix`."""
    pattern = re.compile(rf"^{re.escape(prefix)}-(\d+)\.safetensors$")
    found = sorted((int(m.group(1)), name) for name in os.listdir(directory) if (m := pattern.match(name)))
    for _, name in found[:-keep]:
        try:
            os.unlink(os.path.join(directory, name))
        except FileNotFoundError:
            pass
