"""Every example runs: one short epoch on the shipped 2,000-image subset, in its own process,
as a user runs it (`python examples/X.py --subset --epochs 1`), so the commands of
docs/results.md cannot rot. The figures themselves come from the full runs (docs/results.md)."""
import json
import os
import pathlib
import re
import runpy
import subprocess
import sys

import numpy as np
import pytest

import tidu
from tidu.datasets import mnist

ROOT = pathlib.Path(__file__).parents[1]
EXAMPLES = ROOT / "examples"


def run_example(name, *args, cwd=None):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=600)
    assert proc.returncode == 0, f"{name} {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def accuracy(out, key):
    found = re.findall(rf"{key}: ([0-9.]+)", out)
    assert found, f"no '{key}: ...' line in the output:\n{out[-2000:]}"
    return float(found[-1])


@pytest.mark.parametrize("name", ["mnist_cnn.py", "mnist_lstm.py"])
def test_example_runs_one_epoch_on_the_subset(name, tmp_path):
    png = tmp_path / "curves.png"
    out = run_example(name, "--subset", "--epochs", "1", "--out", str(png))
    assert "Epoch 1/1" in out
    assert 0.3 < accuracy(out, "test_acc") <= 1.0     # chance is 0.1
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the seed fixes the initial weights as well as the order: a rerun is the same run
    again = run_example(name, "--subset", "--epochs", "1")
    assert re.findall(r"test_acc: \S+", again) == re.findall(r"test_acc: \S+", out)


def test_mnist_best_save_reuses_the_trained_members(tmp_path):
    args = ("--subset", "--epochs", "1", "--ensemble", "2", "--save", str(tmp_path))
    first = run_example("mnist_best.py", *args)
    saved = sorted(p.name for p in tmp_path.iterdir())
    assert saved == [f"mnist_best_e1_b128_lr0.002_subset_seed{s}.{k}" for s in (0, 1) for k in ("ckpt", "tidu")]
    again = run_example("mnist_best.py", *args)
    assert "loaded" not in first and again.count("loaded") == 2 and "epoch 1/1" not in again
    assert accuracy(again, "test_acc") == accuracy(first, "test_acc")


def test_mnist_best_deep_candidate_runs_and_saves_apart(tmp_path):
    out = run_example("mnist_best.py", "--subset", "--epochs", "1", "--arch", "deep", "--save", str(tmp_path))
    assert 0.0 <= accuracy(out, "test_acc") <= 1.0
    assert "max_pooling" not in out and "conv2d_6" in out   # seven convolutions, no pool (summary)
    saved = sorted(p.name for p in tmp_path.iterdir())
    assert saved == [f"mnist_best_e1_b128_lr0.002_deep_subset_seed0.{k}" for k in ("ckpt", "tidu")]


def test_mnist_best_trains_an_ensemble_and_writes_its_curves(tmp_path):
    out = run_example("mnist_best.py", "--subset", "--epochs", "1", "--ensemble", "2",
                      "--out", str(tmp_path))
    # the progress line: which network, the epoch's time, the ETA of the network and of the run
    lines = re.findall(r"\[network (\d)/2\] epoch 1/1 - \d+s - loss: [0-9.]+ .* - ETA (\S+) this "
                       r"network, (\S+) run", out)
    assert [(m, eta) for m, eta, _ in lines] == [("1", "0s"), ("2", "0s")], out
    assert lines[0][2] != "0s" and lines[1][2] == "0s"     # network 1 knows network 2 is to come
    summary = json.loads((tmp_path / "mnist_best.json").read_text())
    assert [m["seed"] for m in summary["members"]] == [0, 1]
    assert summary["scored_on"] == "test"
    assert 0.0 <= summary["ensemble_accuracy"] <= 1.0
    assert accuracy(out, "test_acc") == pytest.approx(summary["ensemble_accuracy"], abs=1e-4)
    assert (tmp_path / "mnist_best_0.png").stat().st_size > 0
    assert (tmp_path / "mnist_best_1.png").stat().st_size > 0


def test_mnist_best_validate_never_reads_the_test_set(tmp_path, monkeypatch, capsys):
    """--validate scores the last sixth of the training images; the test images are not used."""
    (x, y), (xt, yt) = mnist.load_subset()
    poisoned = (x, y), (np.full_like(xt, 255), np.zeros_like(yt))   # would score ~0.1 if read
    monkeypatch.setattr(mnist, "load_subset", lambda: poisoned)
    monkeypatch.setattr(sys, "argv", ["mnist_best.py", "--subset", "--validate", "--epochs", "1",
                                      "--out", str(tmp_path)])
    tidu.utils.set_random_seed(0)
    scope = runpy.run_path(str(EXAMPLES / "mnist_best.py"), run_name="__main__")
    assert scope["x_test"].shape[0] == 2000 - 2000 * 5 // 6
    np.testing.assert_array_equal(scope["x_test"][:, :, :, 0] * 255, x[2000 * 5 // 6:].astype("float32"))
    out = capsys.readouterr().out
    assert "validation (last 10,000 training images) accuracy" in out
    assert "validation_acc:" in out and "test_acc:" not in out


def test_mnist_best_shifts_average_the_nine_shifted_views(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["mnist_best.py", "--subset", "--epochs", "1", "--ensemble", "2",
                                      "--shifts", "--out", str(tmp_path)])
    tidu.utils.set_random_seed(0)
    scope = runpy.run_path(str(EXAMPLES / "mnist_best.py"), run_name="__main__")
    shifted = scope["shifted"]
    a = np.arange(9, dtype=np.float32).reshape(1, 3, 3, 1)
    assert shifted(a, 1, 0)[0, :, :, 0].tolist() == [[0, 0, 0], [0, 1, 2], [3, 4, 5]]   # down
    assert shifted(a, 0, -1)[0, :, :, 0].tolist() == [[1, 2, 0], [4, 5, 0], [7, 8, 0]]  # left
    x, labels = scope["x_test"], scope["labels"]
    probs = [np.mean([m.predict(shifted(x, dy, dx), verbose=0) for dy in (-1, 0, 1) for dx in (-1, 0, 1)],
                     axis=0) for m in scope["members"]]
    summary = json.loads((tmp_path / "mnist_best.json").read_text())
    assert [m["accuracy_shifts"] for m in summary["members"]] == \
        pytest.approx([np.mean(p.argmax(1) == labels) for p in probs])
    assert summary["ensemble_accuracy_shifts"] == pytest.approx(np.mean(sum(probs).argmax(1) == labels))
    assert capsys.readouterr().out.count("averaged over nine shifts") == 3


def test_dcasgd_example_runs_small(tmp_path):
    out = run_example("dcasgd_mnist.py", "--small", "--updates", "60", "--out",
                      str(tmp_path / "d.png"), cwd=tmp_path)
    assert "DC-ASGD" in out and (tmp_path / "d.png").stat().st_size > 0


def test_dcasgd_study_runs_small_searches_on_validation_and_resumes(tmp_path):
    pytest.importorskip("matplotlib")
    args = ["--subset", "--workers", "2,4", "--schedules", "random,round_robin", "--seeds", "0,1",
            "--updates", "20", "--lrs", "0.1,0.3", "--lambda0s", "1,2", "--caps", "0,1", "--out", str(tmp_path)]
    out = run_example("dcasgd_study.py", *args)
    results = json.loads((tmp_path / "dcasgd_study.json").read_text())
    search = [r for r in results.values() if r["phase"] == "search"]
    test = [r for r in results.values() if r["phase"] == "test"]
    # the search: 2 tasks x (SGD, ASGD: 2 lrs; DC-ASGD-a: 2 lrs x 2 λ0 x 2 caps), at M = 8 (SGD: 1)
    assert len(search) == 2 * (2 + 2 + 8) and {r["M"] for r in search if r["rule"] != "SGD"} == {8}
    # the measure: per task and seed, SGD once, ASGD and DC-ASGD-a at 2 M x 2 schedules
    assert len(test) == 2 * 2 * (1 + 2 * 2 * 2)
    for task in ("mnist-mlp", "mnist-cnn"):      # each rule's test runs use its search winner
        for rule in ("SGD", "ASGD", "DC-ASGD-a"):
            best = max((r for r in search if r["task"] == task and r["rule"] == rule and r["accuracy"] is not None),
                       key=lambda r: r["accuracy"])
            assert {(r["lr"], r["lambda0"], r["cap"]) for r in test
                    if r["task"] == task and r["rule"] == rule} == {(best["lr"], best["lambda0"], best["cap"])}
    table = (tmp_path / "dcasgd_study_table.txt").read_text()
    assert table.count("| mnist-") == 2 * 2 * 2 and "Chosen on the validation split" in table
    for task in ("mnist-mlp", "mnist-cnn"):
        assert (tmp_path / f"dcasgd_study_{task}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    again = run_example("dcasgd_study.py", *args)          # every run is kept: nothing to redo
    assert " runs (" not in again and json.loads((tmp_path / "dcasgd_study.json").read_text()) == results
    assert table == (tmp_path / "dcasgd_study_table.txt").read_text()
    assert " runs (0 already done)" in out


def test_the_notes_keras_example_runs_one_epoch(monkeypatch, capsys, tmp_path):
    """examples/keras_mnist.py is the notes' script with keras -> tidu; it reshapes to 60,000
    images, so the subset is tiled to the full sizes, and its 5 epochs become 1."""
    (x, y), (xt, yt) = mnist.load_subset()
    tiled = (np.tile(x, (30, 1, 1)), np.tile(y, 30)), (np.tile(xt, (20, 1, 1)), np.tile(yt, 20))
    monkeypatch.setattr(mnist, "load_data", lambda: tiled)
    text = (EXAMPLES / "keras_mnist.py").read_text()
    assert text.count("epochs=5") == 1
    script = tmp_path / "keras_mnist.py"
    script.write_text(text.replace("epochs=5", "epochs=1"))
    tidu.utils.set_random_seed(0)
    scope = runpy.run_path(str(script), run_name="__main__")
    assert "test_acc:" in capsys.readouterr().out
    assert scope["test_acc"] > 0.8


def test_the_parameter_server_cnn_is_the_example_cnn(monkeypatch, capsys):
    """tidu.distributed.experiment's 'mnist-cnn' task (and the ONNX test) build the network of
    examples/mnist_cnn.py: the same layers with the same settings, but for their names."""
    from tidu.distributed.experiment import task_model

    monkeypatch.setattr(sys, "argv", ["mnist_cnn.py", "--subset", "--epochs", "1"])
    example = runpy.run_path(str(EXAMPLES / "mnist_cnn.py"), run_name="__main__")["model"]
    capsys.readouterr()

    def layers_of(model):
        return [(type(layer).__name__, {k: v for k, v in layer.get_config().items() if k != "name"})
                for layer in model.layers]
    assert layers_of(task_model("mnist-cnn")) == layers_of(example)
