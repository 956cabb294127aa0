import subprocess
import sys

import numpy as np
import pytest

from tidu.lab.compare import compare, format_table, load_task_data


def test_compare_starts_every_optimizer_from_the_same_weights(tmp_path):
    pytest.importorskip("matplotlib")
    xtr, ytr, xte, yte = load_task_data(subset=True)
    data = (xtr[:512], ytr[:512], xte[:200], yte[:200])
    table, curves = compare(["sgd", "adam", "sgd"], epochs=2, batch_size=64, data=data,
                            out=str(tmp_path / "cmp.png"))
    assert [r["optimizer"] for r in table] == ["sgd", "adam", "sgd#2"]
    # same start, same batches, same rule: the two SGD runs are identical, Adam is not
    np.testing.assert_array_equal(curves["sgd"], curves["sgd#2"])
    assert table[0]["final_loss"] == table[2]["final_loss"]
    assert table[1]["final_loss"] != table[0]["final_loss"]
    assert curves["adam"][0] == pytest.approx(curves["sgd"][0], rel=1e-6)   # first batch: same weights
    assert len(curves["adam"]) == 2 * 8
    assert "val acc" in format_table(table)
    assert open(tmp_path / "cmp.png", "rb").read(4) == b"\x89PNG"


def test_compare_trains_closure_methods_full_batch_and_counts_evaluations(tmp_path):
    pytest.importorskip("matplotlib")
    xtr, ytr, xte, yte = load_task_data(subset=True)
    data = (xtr[:256], ytr[:256], xte[:100], yte[:100])
    table, curves = compare(["adam", "lbfgs", "bfgs", "newton", "coordinate_descent"], epochs=2, batch_size=64,
                            data=data, out=str(tmp_path / "cmp.png"))
    rows = {r["optimizer"]: r for r in table}
    assert rows["adam"]["batch_size"] == 64 and rows["adam"]["evaluations"] == 2 * 4 == len(curves["adam"])
    assert rows["adam"]["examples_evaluated"] == [64 * k for k in range(8)]
    for name in ("lbfgs", "bfgs", "newton", "coordinate_descent"):
        r = rows[name]
        assert r["batch_size"] == 256 and len(curves[name]) == 2, name       # one step() per epoch
        assert r["evaluations"] > 2, name                                   # several evaluations a step
        assert r["train_loss"] < curves[name][0], name                      # it trained
    first, second = rows["lbfgs"]["examples_evaluated"]               # x axis: examples before each step
    assert first == 0 and second % 256 == 0 and 256 < second < 256 * rows["lbfgs"]["evaluations"]
    text = format_table(table)
    assert "coordinate_descent" in text and "full training set" in text
    assert open(tmp_path / "cmp.png", "rb").read(4) == b"\x89PNG"


def test_compare_closure_batch_size_gives_closure_methods_mini_batches():
    xtr, ytr, xte, yte = load_task_data(subset=True)
    table, curves = compare(["lbfgs"], epochs=1, data=(xtr[:256], ytr[:256], xte[:50], yte[:50]),
                            closure_batch_size=128)
    assert table[0]["batch_size"] == 128 and len(curves["lbfgs"]) == 2
    with pytest.raises(TypeError, match="closure_batch_size"):
        compare(["lbfgs"], data=(xtr, ytr, xte, yte), closure_batch_size=1.5)


def test_lab_command_writes_the_plot(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "beale.png"
    p = subprocess.run([sys.executable, "-m", "tidu.cli", "lab", "--function", "beale", "--optimizers",
                        "sgd,momentum,adam", "--steps", "50", "--out", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "momentum" in p.stdout and out.read_bytes()[:4] == b"\x89PNG"


def test_lab_command_runs_the_closure_methods(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "rosenbrock.png"
    p = subprocess.run([sys.executable, "-m", "tidu.cli", "lab", "--function", "rosenbrock", "--optimizers",
                        "newton,bfgs,lbfgs,coordinate_descent", "--steps", "60", "--out", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    rows = {line.split()[0]: line.split() for line in p.stdout.splitlines()[1:5]}
    assert sorted(rows) == ["bfgs", "coordinate_descent", "lbfgs", "newton"]
    for name in ("newton", "bfgs", "lbfgs"):                  # second order: at (1, 1) within 60 steps
        assert float(rows[name][3]) < 1e-8, p.stdout
    assert float(rows["coordinate_descent"][3]) < 24.2, p.stdout   # f(start) = 24.2: it moved downhill
    assert out.read_bytes()[:4] == b"\x89PNG"
