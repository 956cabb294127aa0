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


def test_compare_refuses_closure_methods():
    with pytest.raises(ValueError, match="LBFGS.*closure"):
        compare(["lbfgs"], data=(None, None, None, None))


def test_lab_command_writes_the_plot(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "beale.png"
    p = subprocess.run([sys.executable, "-m", "tidu.cli", "lab", "--function", "beale", "--optimizers",
                        "sgd,momentum,adam", "--steps", "50", "--out", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "momentum" in p.stdout and out.read_bytes()[:4] == b"\x89PNG"
