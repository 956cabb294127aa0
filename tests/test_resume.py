"""Checkpoint and resume: a run interrupted at any step (an exception here, SIGKILL in a
subprocess below) and resumed with fit(resume_from=...) ends bit-identically to a run that
was never interrupted; a kill during a save leaves the previous checkpoint loadable."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from tidu import backend, callbacks, layers, models
from tidu.errors import ModelFileError
from tidu.optimizers import SGD, Adam

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def data(rng):
    centres = rng.standard_normal((3, 6)) * 2
    labels = rng.integers(0, 3, 203)  # 203: the last batch of an epoch is a short one
    return (centres[labels] + rng.standard_normal((203, 6))).astype(np.float32), labels


class Interrupt(Exception):
    pass


class KillAt(callbacks.Callback):
    """Raises after `at` training steps (the checkpoint on disk is then whatever was last saved)."""

    def __init__(self, at):
        super().__init__()
        self.at, self.n = at, 0

    def on_train_batch_end(self, batch, logs=None):
        self.n += 1
        if self.n == self.at:
            raise Interrupt


def jitter(xb, rng):
    return xb + rng.normal(0.0, 0.1, xb.shape).astype(xb.dtype)


def make(kind):
    backend.seed(3)  # the same initial weights every time
    if kind == "seeded":  # a dropout layer with a generator of its own, batch norm, momentum
        model = models.Sequential([layers.Dense(16, activation="relu", input_shape=(6,)),
                                   layers.Dropout(0.3, seed=9), layers.BatchNormalization(),
                                   layers.Dense(3, activation="softmax")])
        model.compile(SGD(0.05, momentum=0.9), "sparse_categorical_crossentropy", metrics=["accuracy"])
        return model
    model = models.Sequential([layers.Dense(16, activation="relu", input_shape=(6,)),
                               layers.Dropout(0.3), layers.Dense(3, activation="softmax")])
    model.compile(Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


CASES = {  # name: (model kind, fit arguments, save_freq, interrupt after this many steps)
    "shuffle+dropout, every 3 steps": ("plain", {}, 3, 11),
    "every epoch": ("plain", {}, "epoch", 17),
    "interrupted before any checkpoint": ("plain", {}, "epoch", 2),
    "steps_per_epoch stream": ("plain", {"steps_per_epoch": 5}, 2, 13),
    "augment, seeded dropout, batch norm, plateau": (
        "seeded", {"augment": jitter, "plateau": True}, 4, 10),
    "curriculum": ("plain", {"curriculum": "scores"}, 3, 8),
    "no shuffle": ("plain", {"shuffle": False}, 5, 16),
}


@pytest.mark.parametrize("case", list(CASES))
def test_interrupted_and_resumed_run_is_bit_identical(case, data, tmp_path):
    x, y = data
    kind, extra, save_freq, at = CASES[case]
    extra = dict(extra)
    plateau = extra.pop("plateau", False)
    if extra.get("curriculum") == "scores":
        extra["curriculum"] = np.abs(x[:, 0])
    fit_args = dict(epochs=4, batch_size=32, verbose=0, seed=5, validation_split=0.1, **extra)

    def cbs(path):
        out = [callbacks.ReduceLROnPlateau("loss", factor=0.5, patience=1)] if plateau else []
        return out + [callbacks.ModelCheckpoint(path, save_freq=save_freq)]

    reference = make(kind)
    h_ref = reference.fit(x, y, callbacks=cbs(tmp_path / "ref.tidu"), **fit_args)

    ckpt = tmp_path / "run.tidu"
    victim = make(kind)
    with pytest.raises(Interrupt):
        victim.fit(x, y, callbacks=cbs(ckpt) + [KillAt(at)], **fit_args)

    resumed = make(kind)
    h = resumed.fit(x, y, callbacks=cbs(ckpt), resume_from=ckpt if ckpt.exists() else None, **fit_args)

    for a, b in zip(reference.get_weights(), resumed.get_weights()):
        assert np.array_equal(a, b)
    sa, sb = reference.optimizer.state_dict(), resumed.optimizer.state_dict()
    assert sorted(sa) == sorted(sb) and all(np.array_equal(sa[k], sb[k]) for k in sa)
    assert h.history == h_ref.history and h.epoch == h_ref.epoch
    assert resumed.rng.bit_generator.state == reference.rng.bit_generator.state
    assert resumed.optimizer.learning_rate == reference.optimizer.learning_rate


def test_resumed_twice_within_one_epoch_is_still_bit_identical(data, tmp_path):
    """A run resumed mid-epoch writes new checkpoints in that same epoch; they must record the
    epoch's shuffled order too, so a second interruption and resume still end bit-identically.
    (203 samples, batch 32: 7 steps an epoch; interruptions at step 2 and at step 5 of epoch 0,
    a checkpoint every step.)"""
    x, y = data
    fit_args = dict(epochs=2, batch_size=32, verbose=0, seed=5)
    reference = make("plain")
    reference.fit(x, y, **fit_args)
    ckpt = tmp_path / "run.tidu"
    first = make("plain")
    with pytest.raises(Interrupt):
        first.fit(x, y, callbacks=[callbacks.ModelCheckpoint(ckpt, save_freq=1), KillAt(2)], **fit_args)
    second = make("plain")
    with pytest.raises(Interrupt):
        second.fit(x, y, callbacks=[callbacks.ModelCheckpoint(ckpt, save_freq=1), KillAt(3)],
                   resume_from=ckpt, **fit_args)
    third = make("plain")
    third.fit(x, y, callbacks=[callbacks.ModelCheckpoint(ckpt, save_freq=1)], resume_from=ckpt, **fit_args)
    for a, b in zip(reference.get_weights(), third.get_weights()):
        assert np.array_equal(a, b)


def test_a_checkpoint_is_a_model_file_and_records_the_progress(data, tmp_path):
    x, y = data
    model = make("plain")
    path = tmp_path / "c.tidu"
    model.fit(x, y, epochs=1, batch_size=50, verbose=0, seed=1,
              callbacks=[callbacks.ModelCheckpoint(path, save_freq=3)])
    loaded = models.load_model(path)  # the state after step 3 of 5
    import json
    import zipfile
    progress = json.loads(zipfile.ZipFile(path).read("config.json"))["training"]["fit"]
    assert (progress["epoch"], progress["step"], progress["steps"], progress["samples"]) == (0, 3, 5, 203)
    assert progress["seen"] == 150 and progress["epoch_rng"]["bit_generator"] == "PCG64"
    assert loaded.optimizer.iterations == 3
    assert [p.shape for p in loaded.weights] == [p.shape for p in model.weights]


def test_resume_refuses_another_run_before_changing_anything(data, tmp_path):
    x, y = data
    path = tmp_path / "c.tidu"
    make("plain").fit(x, y, epochs=1, batch_size=32, verbose=0, seed=1,
                      callbacks=[callbacks.ModelCheckpoint(path, save_freq=2)])
    model = make("plain")
    model.fit(x[:40], y[:40], epochs=1, batch_size=8, verbose=0)  # some optimizer state
    before_w, before_s = model.get_weights(), model.optimizer.state_dict()

    def unchanged():
        s = model.optimizer.state_dict()
        return (all(np.array_equal(a, b) for a, b in zip(before_w, model.get_weights()))
                and sorted(s) == sorted(before_s) and all(np.array_equal(s[k], before_s[k]) for k in s))

    with pytest.raises(ValueError, match=r"batch_size=32, this one has batch_size=16"):
        model.fit(x, y, epochs=2, batch_size=16, verbose=0, resume_from=path)
    assert unchanged()
    with pytest.raises(ValueError, match=r"training samples=203, this one has training samples=100"):
        model.fit(x[:100], y[:100], epochs=2, batch_size=32, verbose=0, resume_from=path)
    assert unchanged()
    other = make("plain")
    other.compile("sgd", "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match=r"optimizer 'Adam', the model is compiled with 'SGD'"):
        other.fit(x, y, epochs=2, batch_size=32, verbose=0, resume_from=path)
    bigger = models.Sequential([layers.Dense(17, activation="relu", input_shape=(6,)),
                                layers.Dense(3, activation="softmax")])
    bigger.compile(Adam(0.01), "sparse_categorical_crossentropy")
    with pytest.raises(ModelFileError, match="holds 4 weights, the model has 4|shape"):
        bigger.fit(x, y, epochs=2, batch_size=32, verbose=0, resume_from=path)
    plain = tmp_path / "plain.tidu"
    model.save(plain)
    with pytest.raises(ValueError, match="without training progress"):
        model.fit(x, y, epochs=2, batch_size=32, verbose=0, resume_from=plain)
    weights_only = tmp_path / "w.safetensors"
    model.save_weights(weights_only)
    with pytest.raises(ModelFileError, match="not a valid zip"):
        model.fit(x, y, epochs=2, batch_size=32, verbose=0, resume_from=weights_only)
    with pytest.raises(FileNotFoundError):
        model.fit(x, y, epochs=2, batch_size=32, verbose=0, resume_from=tmp_path / "missing.tidu")
    assert unchanged()


def test_a_run_a_callback_stopped_stays_stopped(data, tmp_path):
    x, y = data
    path = tmp_path / "c.tidu"

    class Rising(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["loss"] = 1.0 + epoch

    def run(resume=None):
        model = make("plain")
        h = model.fit(x, y, epochs=6, batch_size=64, verbose=0, seed=2, resume_from=resume,
                      callbacks=[Rising(), callbacks.EarlyStopping("loss", patience=1),
                                 callbacks.ModelCheckpoint(path)])
        return model, h

    first, h1 = run()
    assert len(h1.history["loss"]) == 2  # stopped after the second epoch
    again, h2 = run(resume=path)
    assert h2.history == h1.history and again.optimizer.iterations == first.optimizer.iterations
    assert all(np.array_equal(a, b) for a, b in zip(first.get_weights(), again.get_weights()))


def test_callback_states_travel_with_the_checkpoint(data, tmp_path):
    x, y = data
    path = tmp_path / "c.tidu"
    model = make("plain")
    stop = callbacks.EarlyStopping("loss", patience=5)
    with pytest.raises(Interrupt):
        model.fit(x, y, epochs=5, batch_size=64, verbose=0, seed=1,
                  callbacks=[stop, callbacks.ModelCheckpoint(path), KillAt(10)])
    again = callbacks.EarlyStopping("loss", patience=5)
    ckpt = callbacks.ModelCheckpoint(path)
    seen = {}

    class Peek(callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            seen.setdefault("epoch", epoch)
            seen.setdefault("best", again.best)
    make("plain").fit(x, y, epochs=5, batch_size=64, verbose=0, seed=1, resume_from=path,
                      callbacks=[again, ckpt, Peek()])
    assert seen["epoch"] == 2 and seen["best"] == stop.best  # two epochs (8 steps) were saved


def test_stale_temporary_files_of_a_killed_save_are_removed(data, tmp_path):
    x, y = data
    path = tmp_path / "c.tidu"
    (tmp_path / ".c.tidu.abcd1234.tmp").write_bytes(b"half a file")
    (tmp_path / ".other.tidu.abcd1234.tmp").write_bytes(b"not ours")
    make("plain").fit(x, y, epochs=1, batch_size=64, verbose=0, callbacks=[callbacks.ModelCheckpoint(path)])
    assert sorted(os.listdir(tmp_path)) == [".other.tidu.abcd1234.tmp", "c.tidu"]


# --- in subprocesses: SIGKILL ------------------------------------------------------------------
def _env():
    return dict(os.environ, OPENBLAS_NUM_THREADS="1", PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))


def test_sigkill_at_a_random_step_then_resume_gives_identical_weights(tmp_path):
    """examples/resume_demo.py: reference run, a run SIGKILLed when it reports a (seeded)
    random step, then the same run resumed from its checkpoint; final weights compared."""
    from safetensors.numpy import load_file

    proc = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "resume_demo.py"),
                           "--kill-seed", "11", "--save-freq", "5", "--workdir", str(tmp_path)],
                          env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "with SIGKILL" in proc.stdout and "identical to" in proc.stdout
    ref, resumed = load_file(tmp_path / "reference.safetensors"), load_file(tmp_path / "resumed.safetensors")
    assert sorted(ref) == sorted(resumed)
    for k in ref:
        assert np.array_equal(ref[k], resumed[k])
    assert not (tmp_path / "victim.safetensors").exists()  # it really was killed before the end


SAVE_LOOP = textwrap.dedent("""
    import sys, time, zipfile
    from tidu import backend, layers, models
    backend.seed(0)
    model = models.Sequential([layers.Dense(256, input_shape=(64,)), layers.Dense(4)])
    model.compile("adam", "mse")
    write = zipfile.ZipFile.writestr
    def slow(self, *args, **kwargs):  # a slow disk: the kill lands inside a save
        write(self, *args, **kwargs)
        time.sleep(0.01)
    zipfile.ZipFile.writestr = slow
    i = 0
    while True:
        for p in model.weights:
            p.data[...] = i  # version i: every weight equals i
        model.save(sys.argv[1])
        print(i, flush=True)
        i += 1
""")


def test_sigkill_during_save_leaves_the_previous_file_intact(tmp_path):
    rng = np.random.default_rng(5)
    path = tmp_path / "m.tidu"
    leftovers = 0
    for _ in range(4):
        proc = subprocess.Popen([sys.executable, "-c", SAVE_LOOP, str(path)], env=_env(),
                                stdout=subprocess.PIPE, text=True)
        last = int(proc.stdout.readline())  # version 0 is on disk
        time.sleep(rng.uniform(0.0, 0.15))
        os.kill(proc.pid, signal.SIGKILL)
        rest = proc.stdout.read().split()
        proc.wait()
        last = int(rest[-1]) if rest else last
        model = models.load_model(path)  # a whole file, old or new, never half of one
        versions = {float(v) for w in model.get_weights() for v in np.unique(w)}
        assert len(versions) == 1 and last <= versions.pop() <= last + 1
        leftovers += sum(1 for f in os.listdir(tmp_path) if f.endswith(".tmp"))
        for f in os.listdir(tmp_path):
            if f.endswith(".tmp"):
                os.unlink(tmp_path / f)
    assert leftovers >= 1  # at least one kill landed in the middle of a save


def test_cli_train_resume(tmp_path, capsys):
    from tidu.cli import main
    common = ["train", "mnist-mlp", "--subset", "--batch-size", "500", "--seed", "0", "--verbose", "0"]
    assert main(common + ["--epochs", "2", "--save", str(tmp_path / "a.tidu")]) == 0
    ckpt = str(tmp_path / "run.tidu")
    assert main(common + ["--epochs", "1", "--checkpoint", ckpt, "--checkpoint-every", "3"]) == 0
    assert main(common + ["--epochs", "2", "--resume", ckpt, "--save", str(tmp_path / "b.tidu")]) == 0
    a, b = models.load_model(tmp_path / "a.tidu"), models.load_model(tmp_path / "b.tidu")
    assert all(np.array_equal(u, v) for u, v in zip(a.get_weights(), b.get_weights()))
    assert main(common + ["--resume", str(tmp_path / "nothing.tidu")]) == 1
    assert "no checkpoint" in capsys.readouterr().err


def test_counting_metrics_resume_mid_epoch_with_their_counts(data, tmp_path):
    """AUC, Precision and Recall keep arrays of counts: a run resumed mid-epoch must log the
    same epoch values as the run that was never stopped (the counts of the batches before the
    interruption come back from the checkpoint)."""
    from tidu import metrics

    x, labels = data
    y = np.eye(3, dtype="float32")[labels]

    def counted():
        backend.seed(3)
        model = models.Sequential([layers.Dense(16, activation="relu", input_shape=(6,)),
                                   layers.Dense(3, activation="softmax")])
        model.compile(Adam(0.01), "categorical_crossentropy",
                      metrics=[metrics.AUC(num_thresholds=50), metrics.AUC(curve="PR", name="pr"),
                               metrics.Precision(thresholds=[0.3, 0.6]), "recall"])
        return model

    fit_args = dict(epochs=2, batch_size=32, verbose=0, seed=5)
    reference = counted()
    h_ref = reference.fit(x, y, **fit_args)
    ckpt = tmp_path / "run.tidu"
    with pytest.raises(Interrupt):
        counted().fit(x, y, callbacks=[callbacks.ModelCheckpoint(ckpt, save_freq=1), KillAt(4)],
                      **fit_args)
    resumed = counted()
    h = resumed.fit(x, y, resume_from=ckpt, **fit_args)
    assert sorted(h.history) == sorted(h_ref.history) and "pr" in h.history
    for key in h_ref.history:
        assert np.array_equal(np.array(h.history[key]), np.array(h_ref.history[key])), key


class ScriptedLoss(callbacks.Callback):
    """Sets the epoch's logged loss from a script, so EarlyStopping's best epoch is known."""

    def __init__(self, losses):
        super().__init__()
        self.losses = losses

    def on_epoch_end(self, epoch, logs=None):
        logs["loss"] = self.losses[epoch]


def _best_weights_run(x, y, path, resume=None, kill=None):
    model = make("plain")
    stop = callbacks.EarlyStopping("loss", patience=2, restore_best_weights=True)
    cbs = [ScriptedLoss([3.0, 1.0, 2.0, 2.5, 4.0, 5.0]), stop, callbacks.ModelCheckpoint(path, save_freq=2)]
    model.fit(x, y, epochs=6, batch_size=64, verbose=0, seed=4, resume_from=resume,
              callbacks=cbs + ([KillAt(kill)] if kill else []))
    return model, stop


def test_early_stopping_best_weights_travel_with_the_checkpoint(data, tmp_path):
    """Best at epoch 2 (of 6), stopped at epoch 4 with the weights of epoch 2 put back; a run
    killed in epoch 3 and resumed must put back the same weights, which only the checkpoint has."""
    x, y = data
    reference, stop = _best_weights_run(x, y, tmp_path / "ref.tidu")
    assert stop.best_epoch == 1 and stop.stopped_epoch == 3
    path = tmp_path / "run.tidu"
    with pytest.raises(Interrupt):
        _best_weights_run(x, y, path, kill=11)   # 4 steps an epoch: saved at step 10, killed at 11
    resumed, _ = _best_weights_run(x, y, path, resume=path)
    assert all(np.array_equal(a, b) for a, b in zip(reference.get_weights(), resumed.get_weights()))


def test_a_checkpoint_with_bad_weight_copies_is_refused_before_anything_changes(data, tmp_path):
    import zipfile

    from safetensors.numpy import save

    x, y = data
    path = tmp_path / "run.tidu"
    with pytest.raises(Interrupt):
        _best_weights_run(x, y, path, kill=11)
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    assert "callbacks.safetensors" in members
    bad = tmp_path / "bad.tidu"
    for name, tensors, message in [
            ("shape", {"EarlyStopping:0/0": np.zeros((2, 2), np.float32)}, r"holds 1 weight copies"),
            ("index", {"EarlyStopping:0/x": np.zeros(1, np.float32)}, r"expected a name"),
    ]:
        with zipfile.ZipFile(bad, "w") as zf:
            for n, blob in members.items():
                zf.writestr(n, save(tensors) if n == "callbacks.safetensors" else blob,
                            compress_type=zipfile.ZIP_DEFLATED if n == "config.json" else zipfile.ZIP_STORED)
        model = make("plain")
        before = model.get_weights()
        with pytest.raises(ModelFileError, match=message):
            model.fit(x, y, epochs=6, batch_size=64, verbose=0, seed=4, resume_from=bad,
                      callbacks=[callbacks.EarlyStopping("loss", restore_best_weights=True)])
        assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights())), name
