"""The `tidu` command line."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tidu import cli

ROOT = Path(__file__).resolve().parents[1]


def run(*args, cwd=None):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "tidu.cli", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=300)


def test_train_mlp_on_the_subset(tmp_path):
    pytest.importorskip("matplotlib")
    plot, model = tmp_path / "curves.png", tmp_path / "mlp.tidu"
    r = run("train", "mnist-mlp", "--subset", "--epochs", "1", "--seed", "0",
            "--plot", str(plot), "--save", str(model))
    assert r.returncode == 0, r.stderr
    assert "Epoch 1/1" in r.stdout and "Total params: 407,050" in r.stdout
    acc = float(r.stdout.split("test_acc: ")[1].split()[0])
    assert acc > 0.7
    assert plot.read_bytes()[:4] == b"\x89PNG"
    from tidu import models
    assert models.load_model(model).count_params() == 407050


def test_bad_arguments_fail_cleanly():
    r = run("train", "mnist-mlpp")
    assert r.returncode == 2 and "invalid choice" in r.stderr
    r = run("train", "mnist-mlp", "--subset", "--optimizer", "rmsprob", "--verbose", "0")
    assert r.returncode == 1 and "rmsprop" in r.stderr and "Traceback" not in r.stderr
    r = run("train", "mnist-mlp", "--subset", "--batch-size", "0")
    assert r.returncode == 1 and "batch-size" in r.stderr


def test_parser_has_one_function_per_subcommand(capsys):
    parser = cli.build_parser()
    args = parser.parse_args(["train", "mnist-cnn", "--epochs", "2", "--batch-size", "64"])
    assert args.model == "mnist-cnn" and args.epochs == 2 and args.batch_size == 64
    assert args.run is cli.run_train
    assert cli.main([]) == 2  # no subcommand: help
    assert "train" in capsys.readouterr().out
