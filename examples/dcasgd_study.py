"""The DC-ASGD study: sequential SGD, ASGD and DC-ASGD-a for M = 4, 8, 16 workers, random and
round-robin staleness, the MNIST MLP and the CNN of examples/mnist_cnn.py, three seeds each.

Two phases, both on the simulated parameter server, every run with one BLAS thread (the same
seed gives the same numbers whatever --jobs; a run with two BLAS threads sums in another order
and ends elsewhere):

1. Search, on a validation split (the last 10,000 training images; the test set is not read):
   for each task, every rule gets the same small grid of learning rates (DC-ASGD-a also a
   grid of λ0, with and without cap = 1) at M = 8, random staleness, seed 0; the best
   validation accuracy wins. A run that diverges is out.
2. Measure, on the test set: each rule with its chosen settings, for every M, staleness
   schedule and seed. The table gives the mean and spread (max − min) over the seeds and the
   share of ASGD's gap to sequential SGD that DC-ASGD closes, (DC − ASGD)/(SGD − ASGD),
   per seed and on average.

    python examples/dcasgd_study.py --out docs/results --jobs 16      # everything: 5.5 min on 16 cores
    python examples/dcasgd_study.py --tasks mnist-mlp --jobs 2         # the MLP only
    python examples/dcasgd_study.py --report docs/results/dcasgd_study.json --out docs/results

Results are kept in OUT/dcasgd_study.json after every run, and a rerun skips the runs already
there, so an interrupted study resumes; the table goes to OUT/dcasgd_study_table.txt.
--jobs N runs N runs at once (126 runs in all: about 40 min with --jobs 2 on 2 cores).
"""
import argparse
import json
import os
import sys
import time

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--tasks", default="mnist-mlp,mnist-cnn")
parser.add_argument("--workers", default="4,8,16")
parser.add_argument("--schedules", default="random,round_robin")
parser.add_argument("--seeds", default="0,1,2")
parser.add_argument("--updates", type=int, default=3000)
parser.add_argument("--batch-size", type=int, default=32)
parser.add_argument("--lrs", default="0.1,0.2,0.5", help="the learning rates every rule is searched over")
parser.add_argument("--lambda0s", default="1,2,5", help="the λ0 DC-ASGD-a is searched over")
parser.add_argument("--caps", default="0,1", help="the caps on η·λ·g⊙g DC-ASGD-a is searched over (0: none)")
parser.add_argument("--form", choices=("authors", "paper"), default="authors")
parser.add_argument("--jobs", type=int, default=1, help="runs at once")
parser.add_argument("--out", default=".", help="folder for dcasgd_study.json, the table and the plots")
parser.add_argument("--report", default=None, help="only write the table and plots from this JSON")
parser.add_argument("--subset", action="store_true", help="the shipped 2,000 images (a quick check)")
args = parser.parse_args()

for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[var] = "1"                          # before NumPy is imported, in every process

import numpy as np                                 # noqa: E402

from tidu.distributed.experiment import compare   # noqa: E402
from tidu.distributed.rules import DCASGD          # noqa: E402
from tidu.errors import DivergenceError            # noqa: E402
from tidu.utils import pyplot                      # noqa: E402

RULES = ("SGD", "ASGD", "DC-ASGD-a")


def key(job):
    return "|".join(str(job[k]) for k in ("phase", "task", "rule", "M", "schedule", "seed", "lr", "lambda0", "cap"))


def run(job):
    """One run: {**job, accuracy, seconds} or {**job, diverged: the error's first line}."""
    if job["rule"] == "DC-ASGD-a":
        rule = DCASGD(job["lr"], lambda0=job["lambda0"], form=args.form, cap=job["cap"] or None)
    else:
        rule = {"SGD": "sgd", "ASGD": "asgd"}[job["rule"]]
    task = job["task"] + "-small" if args.subset else job["task"]
    t0 = time.perf_counter()
    try:
        row = compare(task=task, workers=(job["M"],), rules=(rule,), updates=args.updates,
                      learning_rate=job["lr"], batch_size=args.batch_size, schedule=job["schedule"],
                      seed=job["seed"], out=None, verbose=0, eval_every=args.updates,
                      split="validation" if job["phase"] == "search" else "test")[0]
        return dict(job, accuracy=row["test_accuracy"], seconds=time.perf_counter() - t0)
    except DivergenceError as e:                               # the parameter server's guard
        return dict(job, accuracy=None, diverged=str(e).splitlines()[0][:200],
                    seconds=time.perf_counter() - t0)


def run_all(jobs, results, path):
    todo = sorted((j for j in jobs if key(j) not in results), key=lambda j: "cnn" not in j["task"])
    if not todo:
        return
    print(f"{len(todo)} runs ({len(jobs) - len(todo)} already done)", flush=True)
    if args.jobs > 1:
        import multiprocessing
        pool = multiprocessing.get_context("fork").Pool(args.jobs, maxtasksperchild=1)
        done = pool.imap_unordered(run, todo)
    else:
        pool, done = None, map(run, todo)
    try:
        for r in done:
            results[key(r)] = r
            acc = "diverged" if r["accuracy"] is None else f"{r['accuracy']:.4f}"
            print(f"{r['phase']:>7} {r['task']} {r['rule']:>9} M={r['M']:<2} {r['schedule']:<11} "
                  f"seed {r['seed']} lr {r['lr']} λ0 {r['lambda0']} cap {r['cap']}: {acc} ({r['seconds']:.0f}s)",
                  flush=True)
            tmp = path + ".tmp"
            with open(tmp, "w") as f:
                json.dump(results, f, indent=1)
            os.replace(tmp, path)                                 # kept after every run
    finally:
        if pool is not None:
            pool.terminate()


def chosen(results, task):
    """The search's winner for each rule: {rule: (lr, λ0, cap)}."""
    best = {}
    for r in results.values():
        if r["phase"] != "search" or r["task"] != task or r["accuracy"] is None:
            continue
        if r["rule"] not in best or r["accuracy"] > best[r["rule"]]["accuracy"]:
            best[r["rule"]] = r
    missing = [rule for rule in RULES if rule not in best]
    if missing:
        raise SystemExit(f"dcasgd_study: every setting of {missing} diverged on {task}; widen --lrs")
    return {rule: (best[rule]["lr"], best[rule]["lambda0"], best[rule]["cap"]) for rule in RULES}


def summarize(results, tasks, workers, schedules, seeds):
    """One row per (task, schedule, M): accuracies per rule and seed, and the gap DC-ASGD closes."""
    rows = []
    for task in tasks:
        pick = chosen(results, task)
        for schedule in schedules:
            for M in workers:
                acc = {}
                for rule in RULES:
                    lr, lam, cap = pick[rule]
                    m = 1 if rule == "SGD" else M
                    sch = "random" if rule == "SGD" else schedule
                    acc[rule] = [results.get(key(dict(phase="test", task=task, rule=rule, M=m, schedule=sch,
                                                      seed=s, lr=lr, lambda0=lam, cap=cap)), {}).get("accuracy")
                                 for s in seeds]
                shares = [(d - a) / (s - a) if None not in (s, a, d) and s - a > 0 else None
                          for s, a, d in zip(acc["SGD"], acc["ASGD"], acc["DC-ASGD-a"])]
                rows.append(dict(task=task, schedule=schedule, M=M, acc=acc, shares=shares, pick=pick))
    return rows


def fmt(values):
    vals = [v for v in values if v is not None]
    if not vals:
        return "diverged"
    text = f"{np.mean(vals):.4f} ± {(max(vals) - min(vals)) / 2:.4f}"
    return text + (f" ({len(values) - len(vals)} diverged)" if len(vals) < len(values) else "")


def verdict(row):
    """Why a row misses the goal, or ''."""
    a, d = row["acc"]["ASGD"], row["acc"]["DC-ASGD-a"]
    if None in d:
        return "DC-ASGD diverged on a seed"
    if None in a:
        return "ASGD diverged on a seed"
    sgd = row["acc"]["SGD"]
    if np.mean(d) < np.mean(a) - max(max(a) - min(a), max(d) - min(d)):
        return "DC-ASGD worse than ASGD by more than the seed spread"
    if np.mean(sgd) - np.mean(a) <= (max(sgd) - min(sgd) + max(a) - min(a)) / 2:
        return "no gap: ASGD's mean ± half spread overlaps sequential SGD's"
    return ""


def table(rows, seeds):
    lines = ["| task | staleness | M | sequential SGD | ASGD | DC-ASGD-a | gap closed, per seed | mean | note |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        shares = [s for s in r["shares"] if s is not None]
        per = " / ".join("–" if s is None else f"{100 * s:.0f}%" for s in r["shares"])
        note = verdict(r)
        mean = f"{100 * np.mean(shares):.0f}%" if shares and not note.startswith("no gap") else "–"
        lines.append(f"| {r['task']} | {r['schedule'].replace('_', '-')} | {r['M']} | {fmt(r['acc']['SGD'])} | "
                     f"{fmt(r['acc']['ASGD'])} | {fmt(r['acc']['DC-ASGD-a'])} | {per} | {mean} | {note} |")
    picks = []
    for task in dict.fromkeys(r["task"] for r in rows):
        pick = next(r["pick"] for r in rows if r["task"] == task)
        picks.append(f"{task}: SGD lr {pick['SGD'][0]}, ASGD lr {pick['ASGD'][0]}, "
                     f"DC-ASGD-a lr {pick['DC-ASGD-a'][0]} λ0 {pick['DC-ASGD-a'][1]:g} "
                     f"cap {pick['DC-ASGD-a'][2] or 'none'}")
    return "\n".join(lines) + "\n\nChosen on the validation split: " + "; ".join(picks) + \
        f". Seeds {', '.join(map(str, seeds))}; mean ± half the spread (max − min)."


def plot(rows, path, task):
    """Test error (1 − accuracy, log scale: a collapse and a 0.1% gap both show) against M."""
    plt = pyplot("dcasgd_study's plots")
    mine = [r for r in rows if r["task"] == task]
    schedules = list(dict.fromkeys(r["schedule"] for r in mine))
    fig, axes = plt.subplots(1, len(schedules), figsize=(4.6 * len(schedules), 3.6), sharey=True, squeeze=False)
    for ax, schedule in zip(axes[0], schedules):
        sub = [r for r in mine if r["schedule"] == schedule]
        Ms = [r["M"] for r in sub]
        sgd = [1 - v for v in sub[0]["acc"]["SGD"] if v is not None]
        if sgd:
            ax.axhspan(min(sgd), max(sgd), color="k", alpha=0.12)
            ax.axhline(np.mean(sgd), color="k", linestyle="--", linewidth=1, label="sequential SGD")
        for rule, marker in (("ASGD", "o"), ("DC-ASGD-a", "s")):
            pts = [(M, [1 - v for v in r["acc"][rule] if v is not None]) for M, r in zip(Ms, sub)]
            pts = [(M, v) for M, v in pts if v]
            if pts:
                x = [M for M, _ in pts]
                mean = np.array([np.mean(v) for _, v in pts])
                err = np.array([[np.mean(v) - min(v) for _, v in pts], [max(v) - np.mean(v) for _, v in pts]])
                ax.errorbar(x, mean, yerr=err, marker=marker, capsize=3, label=rule)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(Ms, [str(M) for M in Ms])
        ax.set_title(f"{task}, {schedule.replace('_', '-')} staleness", fontsize=10)
        ax.set_xlabel("workers M")
        ax.grid(alpha=0.3, which="both")
    axes[0][0].set_ylabel("test error (mean, min–max over seeds)")
    axes[0][-1].legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main():
    tasks = args.tasks.split(",")
    workers = [int(m) for m in args.workers.split(",")]
    schedules = args.schedules.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    lrs = [float(v) for v in args.lrs.split(",")]
    lambda0s = [float(v) for v in args.lambda0s.split(",")]
    caps = [float(v) for v in args.caps.split(",")]
    os.makedirs(args.out, exist_ok=True)
    path = args.report or os.path.join(args.out, "dcasgd_study.json")
    results = {}
    if os.path.exists(path):
        with open(path) as f:
            results = json.load(f)
    if not args.report:
        search = [dict(phase="search", task=t, rule=rule, M=1 if rule == "SGD" else 8, schedule="random",
                       seed=0, lr=lr, lambda0=lam, cap=cap)
                  for t in tasks for rule in RULES for lr in lrs
                  for lam in (lambda0s if rule == "DC-ASGD-a" else [None])
                  for cap in (caps if rule == "DC-ASGD-a" else [None])]
        run_all(search, results, path)
        test = []
        for t in tasks:
            pick = chosen(results, t)
            for s in seeds:
                test.append(dict(phase="test", task=t, rule="SGD", M=1, schedule="random", seed=s,
                                 lr=pick["SGD"][0], lambda0=None, cap=None))
                for schedule in schedules:
                    for M in workers:
                        for rule in ("ASGD", "DC-ASGD-a"):
                            test.append(dict(phase="test", task=t, rule=rule, M=M, schedule=schedule, seed=s,
                                             lr=pick[rule][0], lambda0=pick[rule][1], cap=pick[rule][2]))
        run_all(test, results, path)
    rows = summarize(results, tasks, workers, schedules, seeds)
    text = table(rows, seeds)
    print(text)
    with open(os.path.join(args.out, "dcasgd_study_table.txt"), "w") as f:
        f.write(text + "\n")
    for t in tasks:
        plot(rows, os.path.join(args.out, f"dcasgd_study_{t}.png"), t)


if __name__ == "__main__":
    sys.exit(main())
