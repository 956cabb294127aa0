"""The rules-by-workers comparison and its command line, on the MNIST subset shipped with tidu."""
import argparse

import numpy as np
import pytest

from tidu.datasets import mnist
from tidu.distributed.cli import add_distributed_subcommand
from tidu.distributed.experiment import compare, format_table, load_task


def test_compare_table_and_plot(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "dist.png"
    rows = compare(task="mnist-mlp-small", workers=(1, 3), rules=("sgd", "asgd", "dcasgd", "downpour"),
                   updates=40, eval_every=20, learning_rate=0.3, seed=0, out=str(out), verbose=0)
    assert [(r["rule"], r["M"]) for r in rows] == [
        ("SyncSGD", 1), ("ASGD", 1), ("DC-ASGD-a", 1), ("Downpour", 1),
        ("SyncSGD", 3), ("ASGD", 3), ("DC-ASGD-a", 3), ("Downpour", 3)]
    one = [r for r in rows if r["M"] == 1 and r["rule"] != "Downpour"]
    assert len({(r["test_accuracy"], r["test_loss"]) for r in one}) == 1   # all sequential SGD
    assert all(r["updates"] == 40 and 0.0 <= r["test_accuracy"] <= 1.0 for r in rows)
    assert all(r["test_accuracy"] > 0.5 for r in rows)  # 40 updates lift it well above chance
    assert [r["mean_staleness"] > 0 for r in rows if r["M"] == 3] == [False, True, True, True]
    assert out.stat().st_size > 0
    assert "| DC-ASGD-a | 3 |" in format_table(rows)


def test_cli_subcommand(tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="tidu")
    add_distributed_subcommand(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["distributed", "--task", "mnist-mlp-small", "--workers", "2",
                              "--rules", "asgd,dcasgd-c", "--updates", "10", "--out", "", "--split", "validation"])
    assert args.workers == (2,) and args.rules == ("asgd", "dcasgd-c") and args.split == "validation"
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    assert "| ASGD | 2 |" in printed and "| DC-ASGD-c | 2 |" in printed
    with pytest.raises(SystemExit):
        parser.parse_args(["distributed", "--workers", "0,4"])


@pytest.mark.parametrize("kwargs, match", [
    (dict(workers=(0,)), "worker counts"),
    (dict(rules=("adam",)), "unknown rule"),
    (dict(task="cifar"), "unknown task"),
    (dict(updates=0), "updates"),
    (dict(split="train"), "unknown split"),
])
def test_compare_refuses_bad_input(kwargs, match):
    settings = dict(task="mnist-mlp-small", workers=(1,), rules=("sgd",), updates=5, out=None, verbose=0)
    settings.update(kwargs)
    with pytest.raises(ValueError, match=match):
        compare(**settings)


def test_validation_split_holds_out_the_last_sixth_and_never_reads_the_test_set(monkeypatch):
    (x, y), _ = mnist.load_subset()
    poisoned = (np.full((500, 28, 28), 255, np.uint8), np.full(500, 99, np.uint8))
    monkeypatch.setattr(mnist, "load_subset", lambda: ((x, y), poisoned))
    make_model, (xv, yv), (xe, ye) = load_task("mnist-mlp-small", seed=0, split="validation")
    cut = 2000 - 2000 // 6
    assert len(xv) == cut and len(xe) == 2000 - cut
    np.testing.assert_array_equal(xe * 255, x[cut:].reshape(len(xe), -1).astype(np.float32))
    np.testing.assert_array_equal(ye, y[cut:])
    rows = compare(task="mnist-mlp-small", workers=(2,), rules=("asgd",), updates=30, seed=0,
                   out=None, verbose=0, split="validation")
    assert rows[0]["split"] == "validation" and rows[0]["test_accuracy"] > 0.3
    with pytest.raises(IndexError):              # the poisoned test set's labels (99) are unusable
        compare(task="mnist-mlp-small", workers=(2,), rules=("asgd",), updates=5, out=None, verbose=0)


def test_cnn_task_trains_under_the_parameter_server():
    make_model, (x, _), _ = load_task("mnist-cnn-small", seed=0)
    assert x.shape[1:] == (28, 28, 1)
    assert [type(l).__name__ for l in make_model().layers][:2] == ["Conv2D", "MaxPooling2D"]
    rows = compare(task="mnist-cnn-small", workers=(2,), rules=("asgd", "dcasgd"), updates=40,
                   eval_every=20, learning_rate=0.1, seed=0, out=None, verbose=0)
    assert [r["rule"] for r in rows] == ["ASGD", "DC-ASGD-a"]
    for r in rows:                               # curve: (update, accuracy) at 0, 20 and 40
        assert [u for u, _ in r["curve"]] == [0, 20, 40] and r["curve"][-1][1] == r["test_accuracy"]
        assert r["test_accuracy"] > r["curve"][0][1] + 0.1              # it learned something
