"""The benchmark harness runs: bench/workloads.py's turns protocol and bench/run.py's tables, on
the shipped MNIST subset (offline; timings from these runs mean nothing), so the command of
issue 14's acceptance cannot rot. The timings themselves are bench/RESULTS.md's."""
import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).parents[1]
BENCH = ROOT / "bench"


def env():
    return dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
                TIDU_BENCH_SUBSET="1", OPENBLAS_NUM_THREADS="1", TIDU_FAST="0")


def test_a_workload_times_its_turns_when_told():
    p = subprocess.Popen([sys.executable, str(BENCH / "workloads.py"), "--workload", "mlp", "--impl", "tidu",
                          "--steps", "2", "--turns", "3"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env())
    said = []
    for _ in range(4):                                  # three turns, then the go for the result
        line = p.stdout.readline()
        assert line.strip() == "BENCH ready", (line, p.stderr.read() if not line else "")
        p.stdin.write("go\n")
        p.stdin.flush()
        line = p.stdout.readline()
        said.append(line)
        if len(said) == 4:
            break
        assert line.startswith("BENCH turn "), line
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    turns = [json.loads(line[len("BENCH turn "):]) for line in said[:3]]
    assert said[3].startswith("BENCH result ")
    result = json.loads(said[3][len("BENCH result "):])
    assert result["turns"] == turns
    times = sorted(t["seconds_per_step"] for t in turns)
    assert result["seconds_per_step"] == pytest.approx(times[1])         # the median of three
    assert result["accuracy"] > 0 and result["train_peak_rss_mb"] > 0


def test_a_workload_without_turns_prints_its_result_only():
    out = subprocess.run([sys.executable, str(BENCH / "workloads.py"), "--workload", "cnn_latency",
                          "--impl", "tidu", "--steps", "3"], capture_output=True, text=True, env=env(),
                         timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    result = json.loads(lines[-1])
    assert not any(line.startswith("BENCH") for line in lines)
    assert "turns" not in result and result["ms_per_batch"] > 0 and result["predict_ms_per_batch"] > 0


def test_turns_must_be_positive():
    out = subprocess.run([sys.executable, str(BENCH / "workloads.py"), "--workload", "mlp", "--impl",
                          "tidu", "--turns", "0"], capture_output=True, text=True, env=env(), timeout=300)
    assert out.returncode == 2 and "--turns: expected a positive number of turns, got 0" in out.stderr


def test_run_writes_the_tables_from_rounds_of_turns(tmp_path):
    results = tmp_path / "RESULTS.md"
    out = subprocess.run([sys.executable, str(BENCH / "run.py"), "--smoke", "--subset", "--reps", "2",
                          "--only", "mlp,cnn_latency", "--out", str(results)],
                         capture_output=True, text=True, env=env(), timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    text = results.read_text()
    assert "2 rounds of turns" in text and "## Errors" not in text
    have_torch = importlib.util.find_spec("torch") is not None
    for impl in ["tidu", "numpy"] + ["torch"] * have_torch:     # each took both turns
        assert f"round 2/2 mlp          {impl} " in out.stdout, out.stdout[-2000:]
    targets = text[text.index("## Targets"):]
    row = next(line for line in targets.splitlines() if line.startswith("| MLP: tidu ≤ 1.1× hand-written NumPy |"))
    ratio, met, spread = [c.strip() for c in row.split("|")[2:5]]
    low, high = (float(x) for x in spread.split("–"))
    assert low <= float(ratio.rstrip("×")) <= high and met in ("yes", "no")
    # the training table's ratio column is the same paired median, not a ratio of its medians
    mlp = next(line for line in text.splitlines() if line.startswith("| mlp: "))
    assert mlp.split("|")[6].strip() == ratio, (mlp, ratio)
    assert ("| CNN batch-32 latency: plain tidu ≤ 1.3× PyTorch |" in targets) == have_torch


@pytest.mark.parametrize("keras", [False, True], ids=["tidu", "keras"])
def test_the_spread_of_the_notes_example_runs(keras):
    if keras and (importlib.util.find_spec("keras") is None or importlib.util.find_spec("torch") is None):
        pytest.skip("keras 3 with torch is not installed (the reference for bench/mlp_spread.py --keras)")
    r = subprocess.run([sys.executable, str(BENCH / "mlp_spread.py"), "--runs", "2", "--subset"]
                       + (["--keras"] if keras else []), capture_output=True, text=True, env=env(),
                       timeout=600)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert [line.split(" run ")[1][:3] for line in lines[:2]] == ["1/2", "2/2"], lines
    accs = [float(line.split("test accuracy ")[1].split()[0]) for line in lines[:2]]
    assert all(0.5 < a <= 1 for a in accs), accs          # one epoch on 2,000 images learns
    # 500 test images: accuracies are multiples of 0.002, their mean exact in four decimals
    assert lines[2].endswith("of 2") and f"mean {sum(accs) / 2:.4f}" in lines[2], lines[2]


def test_the_spread_refuses_no_runs():
    r = subprocess.run([sys.executable, str(BENCH / "mlp_spread.py"), "--runs", "0"],
                       capture_output=True, text=True, env=env(), timeout=120)
    assert r.returncode == 2 and "--runs: expected at least 1, got 0" in r.stderr


def test_spells_tables_a_step_op_by_op():
    """bench/spells.py: every op of the LeNet step, the optimizer and the rest, in one table."""
    args = ["--workload", "cnn", "--seconds", "1", "--window", "2", "--threads", "1"]
    out = subprocess.run([sys.executable, str(BENCH / "spells.py"), *args], capture_output=True,
                         text=True, env=env(), timeout=300)
    assert out.returncode == 0, out.stderr
    rows = {line.split("|")[1].strip(): line for line in out.stdout.splitlines()
            if line.startswith("| ") and not line.startswith("| ms a step")}
    for op in ("the whole step", "Conv2DMaxPool.forward", "Conv2DMaxPool.backward",   # plain path
               "Dense.forward", "Dense.backward", "optimizer update"):
        assert op in rows, (op, out.stdout)
    assert any(k.startswith("everything else") for k in rows)
    assert "plain tidu" in out.stdout            # TIDU_FAST=0 in env(): the label says so
    step = float(rows["the whole step"].split("|")[2])
    ops = sum(float(line.split("|")[2]) for k, line in rows.items() if k != "the whole step"
              and not k.startswith("everything else"))
    assert 0 < ops <= step                        # self times: nested ops are not counted twice


def test_spells_refuses_a_nonpositive_duration():
    args = ["--workload", "cnn", "--seconds", "0"]
    out = subprocess.run([sys.executable, str(BENCH / "spells.py"), *args], capture_output=True,
                         text=True, env=env(), timeout=60)
    assert out.returncode == 2 and "--seconds" in out.stderr and "got 0.0" in out.stderr


def test_conv_chunks_times_every_variant_of_both_shapes():
    args = ["--rounds", "1", "--threads", "1", "--mb", "1,2"]
    out = subprocess.run([sys.executable, str(BENCH / "conv_chunks.py"), *args], capture_output=True,
                         text=True, env=env(), timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 6                                    # 2 shapes × (one piece, 1 MB, 2 MB)
    for shape in ("convnet conv 2", "LeNet conv 2"):
        for variant in ("one piece", "1 MB", "2 MB"):
            assert any(line.startswith(f"{shape}, {variant}") and " ms" in line for line in lines)
    bad = subprocess.run([sys.executable, str(BENCH / "conv_chunks.py"), "--mb", "0"],
                         capture_output=True, text=True, env=env(), timeout=60)
    assert bad.returncode == 2 and "--mb" in bad.stderr


def test_plain_alternatives_agree_with_tidu_and_time_both():
    """bench/plain_alternatives.py exits with an error when an alternative's numbers differ
    from tidu's, so a run that prints its ratios has checked them."""
    args = ["--rounds", "1", "--threads", "1", "--step", "1"]
    out = subprocess.run([sys.executable, str(BENCH / "plain_alternatives.py"), *args],
                         capture_output=True, text=True, env=env(), timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    for name in ("band", "dx", "nhwc"):
        assert any(line.split()[:2] == [name, "tidu"] and line.endswith("×") for line in lines)
    assert lines[-1].startswith("LeNet training step, 1 rounds") and "ratio" in lines[-1]
    bad = subprocess.run([sys.executable, str(BENCH / "plain_alternatives.py"), "--step", "-1"],
                         capture_output=True, text=True, env=env(), timeout=60)
    assert bad.returncode == 2 and "--step" in bad.stderr and "-1" in bad.stderr


def test_sparse_dense_checks_the_kernel_then_times_three_ways():
    """bench/sparse_dense.py (the numbers tidu.kernels.sparse quotes) checks the kernel's
    outputs against the GEMM's before it times anything, and prints the three medians."""
    pytest.importorskip("numba")
    pytest.importorskip("threadpoolctl")
    out = subprocess.run([sys.executable, str(BENCH / "sparse_dense.py"), "--rounds", "1"],
                         capture_output=True, text=True, env=env(), timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert [line.split()[0] for line in lines[1:4]] == ["gemm1", "kernel", "gemm2"]
    assert lines[-1].startswith("kernel / gemm1") and lines[-1].endswith("×")
    bad = subprocess.run([sys.executable, str(BENCH / "sparse_dense.py"), "--rounds", "0"],
                         capture_output=True, text=True, env=env(), timeout=60)
    assert bad.returncode == 2 and "--rounds" in bad.stderr and "0" in bad.stderr


@pytest.mark.parametrize("own", [False, True])
def test_alternate_gives_its_tidu_variants_one_model_unless_asked(own):
    """bench/alternate.py: the tidu variants share one model (a model per variant biased the
    comparison by the order they were built in, bench/RESULTS.md); --own-models builds one each.
    Each variant's line carries the ratio of the medians and the median of the rounds' ratios."""
    variants = ["tidu", "tidu:chunk=4", "tidu[fast]-whole"]
    args = ["--workload", "mlp", "--variants", ",".join(variants), "--rounds", "2", "--steps", "1",
            "--threads", "1"] + (["--own-models"] if own else [])
    out = subprocess.run([sys.executable, str(BENCH / "alternate.py"), *args], capture_output=True,
                         text=True, env=env(), timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert f"tidu models: {3 if own else 1} for 3 tidu variants" in lines
    assert "tidu[fast]-whole: training step in two halves: False" in lines
    for v in variants:
        row = next(line.split() for line in lines if line.startswith("  ") and line.split()[0] == v)
        assert row[2] == "1.000×" if v == "tidu" else row[2].endswith("×")
        assert row[4].endswith("×") and row[5].startswith("(")
