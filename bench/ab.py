"""A/B: the tidu rows of bench/run.py for two revisions of tidu, interleaved on this machine.

    python bench/ab.py --base 9581728            # this checkout (B) against revision 9581728 (A)
    python bench/ab.py --base HEAD~3 --reps 7 --only mlp,cnn

Both revisions run the SAME workload code (this checkout's bench/workloads.py), each in its own
process with PYTHONPATH at its tree, alternating A, B, A, B ... within every repetition, so a
slow spell of the machine hits both. Per workload it prints the median of each side, the ratio
B/A of the medians, and the noise: the largest spread (max/min) of one side's repetitions. A
ratio inside [1/noise, noise] is not a difference this machine can show. TIDU_FAST=0 (plain
NumPy) unless --fast; the environment is run.py's (OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset). The base revision is checked out into a temporary git worktree. Times:
lower is better; the simulator's updates per second: higher is better.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from run import WORKLOADS, child_env  # noqa: E402  (bench/run.py: the workloads, their quick step counts)

KEYS = {"mlp_predict": "seconds", "cnn_predict": "seconds", "simulator": "asgd_updates_per_sec",
        "cnn_latency": "ms_per_batch"}


def run(tree, workload, steps, threads, fast):
    env = dict(child_env(threads), PYTHONPATH=tree, TIDU_FAST="1" if fast else "0")   # as run.py's children
    cmd = [sys.executable, os.path.join(HERE, "workloads.py"), "--workload", workload,
           "--impl", "tidu", "--steps", str(steps)]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900, cwd=tree)
    if p.returncode != 0:
        raise RuntimeError(f"{workload} in {tree}: {(p.stderr.strip().splitlines() or ['failed'])[-1]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True, help="the revision to compare against (A)")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", default=None, help="comma-separated workloads")
    ap.add_argument("--fast", action="store_true", help="TIDU_FAST=1 (numba kernels) on both sides")
    args = ap.parse_args()
    names = args.only.split(",") if args.only else list(WORKLOADS)
    with tempfile.TemporaryDirectory() as tmp:
        base = os.path.join(tmp, "base")
        subprocess.run(["git", "-C", ROOT, "worktree", "add", "--detach", base, args.base],
                       check=True, capture_output=True)
        try:
            print(f"A = {args.base}, B = this checkout; {args.reps} interleaved repetitions, "
                  f"TIDU_FAST={int(args.fast)}")
            print(f"{'workload':12} {'key':22} {'A median':>10} {'B median':>10} {'B/A':>6} {'noise':>6}")
            for w in names:
                key = KEYS.get(w, "seconds_per_step")
                a, b = [], []
                for _ in range(args.reps):
                    a.append(run(base, w, WORKLOADS[w][1], args.threads, args.fast)[key])
                    b.append(run(ROOT, w, WORKLOADS[w][1], args.threads, args.fast)[key])
                ma, mb = statistics.median(a), statistics.median(b)
                noise = max(max(a) / min(a), max(b) / min(b))
                print(f"{w:12} {key:22} {ma:10.4g} {mb:10.4g} {mb / ma:6.2f} {noise:6.2f}", flush=True)
        finally:
            subprocess.run(["git", "-C", ROOT, "worktree", "remove", "--force", base], capture_output=True)


if __name__ == "__main__":
    main()
