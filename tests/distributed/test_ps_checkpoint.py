"""Server-state checkpoints of the simulated parameter server: atomic safetensors files, and a
restored run that goes on exactly as the uninterrupted one."""
import os

import numpy as np
import pytest

from tidu.distributed import DCASGD, Downpour, ParameterServer, SyncSGD
from tidu.distributed import checkpoint as ckpt
from tidu.errors import ModelFileError


def _fit(model, x, y, ps, epochs):
    return model.fit(x, y, batch_size=10, epochs=epochs, verbose=0, distributed=ps).history


RULES = [DCASGD(0.1), Downpour(0.05, n_fetch=2, n_push=2), SyncSGD(0.1, backup_workers=1)]


@pytest.mark.parametrize("rule", RULES, ids=["dcasgd", "downpour", "sync"])
def test_restore_and_continue_equals_uninterrupted(rule, tmp_path, make_mlp, blobs, flat_weights):
    x, y = blobs

    def server(**kw):
        return ParameterServer(rule, num_workers=3, schedule="random", seed=9, **kw)

    straight = make_mlp()
    _fit(straight, x, y, server(), epochs=3)

    first = make_mlp()
    _fit(first, x, y, server(checkpoint_dir=tmp_path, checkpoint_every=3), epochs=2)
    names = sorted(os.listdir(tmp_path))
    assert len(names) == 2 and all(n.startswith("ckpt-") and n.endswith(".safetensors") for n in names)

    resumed = make_mlp(seed=5)                            # other weights: the checkpoint replaces them
    ps = server(checkpoint_dir=tmp_path)
    path = ps.restore()
    assert path.endswith(names[-1])
    # the newest checkpoint may be mid-epoch: the first epoch after it finishes that epoch
    epochs_left = 3 - ckpt.load(path)[1]["steps_total"] // 10 if not rule.synchronous else \
        3 - ckpt.load(path)[1]["t"] // 4
    _fit(resumed, x, y, ps, epochs=epochs_left)
    assert np.array_equal(flat_weights(resumed), flat_weights(straight))


def test_checkpoint_holds_server_and_worker_state(tmp_path, make_mlp, blobs):
    x, y = blobs
    ps = ParameterServer(DCASGD(0.1), num_workers=2, seed=0, checkpoint_dir=tmp_path, checkpoint_every=4)
    _fit(make_mlp(), x, y, ps, epochs=1)
    arrays, meta = ckpt.load(ckpt.latest(tmp_path, "ckpt"))
    assert meta["t"] == 8 and meta["config"]["rule"] == "DCASGD"
    n = arrays["w"].size
    for name in ("shard0/backup/0", "shard0/backup/1", "shard0/mean_square/0", "shard0/mean_square/1"):
        assert arrays[name].shape == (n,)
    assert arrays["pending"].shape == (2, n)                # each worker's gradient in flight
    from safetensors.numpy import load_file                # a plain safetensors file, no pickle
    assert set(load_file(ckpt.latest(tmp_path, "ckpt"))) == set(arrays)


def test_truncated_or_foreign_checkpoint_is_refused(tmp_path, make_mlp, blobs):
    x, y = blobs
    ps = ParameterServer(DCASGD(0.1), num_workers=2, seed=0, checkpoint_dir=tmp_path, checkpoint_every=5)
    _fit(make_mlp(), x, y, ps, epochs=1)
    path = ckpt.latest(tmp_path, "ckpt")
    blob = open(path, "rb").read()
    bad = tmp_path / "ckpt-000000999.safetensors"
    bad.write_bytes(blob[:len(blob) // 2])
    with pytest.raises(ModelFileError, match="ckpt-000000999"):
        ParameterServer(DCASGD(0.1), num_workers=2, seed=0, checkpoint_dir=tmp_path).restore()
    bad.unlink()
    other = ParameterServer(DCASGD(0.1), num_workers=3, seed=0, checkpoint_dir=tmp_path)
    other.restore()
    model = make_mlp()
    before = model.get_weights()
    with pytest.raises(ModelFileError, match="num_workers"):
        _fit(model, x, y, other, epochs=1)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    with pytest.raises(FileNotFoundError):
        ParameterServer(DCASGD(0.1), checkpoint_dir=tmp_path / "none").restore()


def test_checkpoint_write_is_atomic(tmp_path):
    path = tmp_path / "ckpt-000000001.safetensors"
    ckpt.save(path, {"w": np.arange(4, dtype=np.float32)}, {"t": 1})
    ckpt.save(path, {"w": np.arange(5, dtype=np.float32)}, {"t": 2})   # replaces, never appends
    arrays, meta = ckpt.load(path)
    assert meta == {"t": 2} and arrays["w"].tolist() == [0, 1, 2, 3, 4]
    assert os.listdir(tmp_path) == [path.name]                       # no temporary left behind
