"""Benchmark suite: tidu against PyTorch (CPU) and hand-written NumPy, same run, same machine.

    python bench/run.py            # full: more steps, 5 repetitions
    python bench/run.py --quick    # under 5 minutes: fewer steps, 3 repetitions

Each (workload, implementation) runs in its own process (bench/workloads.py) with 2 BLAS
threads set before NumPy or torch loads; implementations alternate inside every repetition
and the table reports medians and the ratios of the medians. Results go to bench/RESULTS.md.
PyTorch is optional: without it the torch columns say so.

Besides wall time, each run reports its CPU time (all threads of the process) and its peak
resident memory counted from the start of the timed training (MNIST already loaded), at the
end of training and after the accuracy check (whose batch sizes differ: torch and the
hand-written NumPy predict the 10,000 test images in one batch, tidu in batches of 1000). The machine's load is recorded at the
start and end: on a shared 2-core machine a background process can multiply a wall time by
10 (PERF.md lesson 6), so read the ratios against it.
"""
import argparse
import datetime
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
WORKLOADS = {  # name: (description, steps quick, steps full)
    "mlp": ("MLP 784-512-10, RMSprop, batch 128 (model.fit)", 469, 469),
    "cnn": ("LeNet CNN (conv5x5x20, pool, conv5x5x50, pool, fc500, fc10), SGD-m, batch 64", 40, 150),
    "lstm": ("LSTM(128) on 28x28 sequential MNIST, Adam, batch 128", 30, 100),
    "overhead": ("10 x Dense(64) + Dense(10), SGD, batch 32 (per-op overhead)", 300, 1000),
    "mlp_predict": ("predict on 10,000 MNIST images, the MLP", 0, 0),
    "cnn_predict": ("predict on 10,000 MNIST images, the CNN", 0, 0),
    "simulator": ("parameter-server simulator, M=8 workers, MNIST MLP, batch 128", 0, 0),
}
STEPS_PER_EPOCH = {"mlp": 469, "cnn": 938, "lstm": 469, "overhead": 1875}
TARGETS = [  # (what, workload, key, baseline implementation, bound)
    ("MLP: tidu ≤ 0.8× PyTorch", "mlp", "seconds_per_step", "torch", 0.8),
    ("MLP: tidu ≤ 1.1× hand-written NumPy", "mlp", "seconds_per_step", "numpy", 1.1),
    ("CNN: tidu ≤ 1.0× PyTorch (channels_last)", "cnn", "seconds_per_step", "torch", 1.0),
    ("LSTM: tidu ≤ 1.0× PyTorch", "lstm", "seconds_per_step", "torch", 1.0),
    ("Overhead: tidu ≤ 1.5× PyTorch", "overhead", "seconds_per_step", "torch", 1.5),
    ("Memory, MLP: peak RSS (training) ≤ 1.5× PyTorch", "mlp", "train_peak_rss_mb", "torch", 1.5),
    ("Memory, CNN: peak RSS (training) ≤ 1.5× PyTorch", "cnn", "train_peak_rss_mb", "torch", 1.5),
]


def busy_fraction(seconds=1.0):
    """Fraction of all CPUs' time spent busy over `seconds` (Linux /proc/stat; None elsewhere)."""
    import time

    def snap():
        with open("/proc/stat") as f:
            v = [int(a) for a in f.readline().split()[1:]]
        return sum(v), v[3] + v[4]
    try:
        t0, i0 = snap()
        time.sleep(seconds)
        t1, i1 = snap()
    except OSError:
        return None
    return 1 - (i1 - i0) / max(t1 - t0, 1)


FAST_WORKLOADS = ("mlp", "lstm")  # where the extra `fast` (numba) has kernels that matter: RMSprop, LSTM gates


def run_one(workload, impl, steps, threads):
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BENCH_THREADS"):
        env[var] = str(threads)
    env["TIDU_FAST"] = "1" if impl == "tidu[fast]" else "0"     # plain tidu: the pure-NumPy path
    impl = "tidu" if impl == "tidu[fast]" else impl
    cmd = [sys.executable, os.path.join(HERE, "workloads.py"), "--workload", workload, "--impl", impl,
           "--steps", str(steps)]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    if p.returncode != 0:
        return {"error": (p.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(p.stdout.strip().splitlines()[-1])


def median(results, key):
    vals = [r[key] for r in results if key in r]
    return statistics.median(vals) if vals else None


def fmt(x, spec="{:.2f}"):
    return "—" if x is None else spec.format(x)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int, default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", default=None, help="comma-separated workloads")
    ap.add_argument("--out", default=os.path.join(HERE, "RESULTS.md"))
    args = ap.parse_args()
    reps = args.reps or (3 if args.quick else 5)
    have_torch = importlib.util.find_spec("torch") is not None
    have_numba = importlib.util.find_spec("numba") is not None
    names = args.only.split(",") if args.only else list(WORKLOADS)
    impls = ["tidu", "numpy"] + (["torch"] if have_torch else [])
    fast = ["tidu[fast]"] if have_numba else []

    results = {(w, i): [] for w in names for i in impls + fast}
    gflops = []
    load = {"start": (os.getloadavg()[0], busy_fraction())}
    for rep in range(reps):
        gflops.append(run_one("sgemm", "sgemm", 0, args.threads).get("gflops"))
        for w in names:
            these = impls + (fast if w in FAST_WORKLOADS else [])
            order = ["tidu"] if w == "simulator" else these[rep % len(these):] + these[:rep % len(these)]
            for impl in order:
                steps = WORKLOADS[w][1 if args.quick else 2]
                r = run_one(w, impl, steps, args.threads)
                results[(w, impl)].append(r)
                print(f"rep {rep + 1}/{reps} {w:12s} {impl:6s} {json.dumps(r)}", flush=True)
    load["end"] = (os.getloadavg()[0], busy_fraction())
    gf = statistics.median([g for g in gflops if g]) if any(gflops) else None
    write_results(args, names, impls, results, gf, reps, have_torch, load)
    print(f"wrote {args.out}")


def write_results(args, names, impls, results, gf, reps, have_torch, load):
    sys.path.insert(0, HERE)
    from workloads import flops_per_step

    def load_str(when):
        avg, busy = load[when]
        return f"load average {avg:.2f}" + ("" if busy is None else f", CPUs {100 * busy:.0f}% busy (1 s sample)")

    lines = [
        "# tidu benchmark results", "",
        f"Command: `python bench/run.py{' --quick' if args.quick else ''}` "
        f"({reps} repetitions, medians; {args.threads} BLAS threads per process; each run in its own process).",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; measured sgemm: {fmt(gf, '{:.0f}')} GFLOP/s. "
        f"Date: {datetime.date.today().isoformat()}.",
        f"Machine load: at the start {load_str('start')}; at the end {load_str('end')} "
        f"(other processes' load inflates wall times; CPU times are less sensitive).",
        "" if have_torch else "PyTorch is not installed: the torch columns are empty.", "",
        "## Training (seconds per epoch; CNN/LSTM/overhead time a fixed number of steps and scale to one epoch)", "",
        "Peak RSS counts from the start of the timed training (MNIST loaded as float32, the model, "
        "optimizer state and training buffers); the last column adds the accuracy check, whose "
        "batch sizes differ (torch and NumPy: all 10,000 test images at once; tidu: 1000).", "",
        "| workload | tidu s/epoch | torch s/epoch | hand NumPy s/epoch | tidu/torch | tidu/NumPy "
        "| CPU s/epoch tidu / torch / NumPy | FLOP bound s/epoch | peak RSS MB (training) tidu / torch / NumPy "
        "| test accuracy tidu / torch / NumPy | peak RSS MB (training + accuracy check) tidu / torch / NumPy |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for w in names:
        if w not in STEPS_PER_EPOCH:
            continue
        spe = STEPS_PER_EPOCH[w]
        s = {i: median(results[(w, i)], "seconds_per_step") for i in impls}
        e = {i: None if s[i] is None else s[i] * spe for i in impls}
        rss = {i: median(results[(w, i)], "peak_rss_mb") for i in impls}
        train_rss = {i: median(results[(w, i)], "train_peak_rss_mb") for i in impls}
        cpu = {i: median(results[(w, i)], "cpu_seconds_per_step") for i in impls}
        cpu = {i: None if cpu[i] is None else cpu[i] * spe for i in impls}
        acc = {i: median(results[(w, i)], "accuracy") for i in impls}
        bound = flops_per_step(w) * spe / (gf * 1e9) if gf else None
        ratio = lambda a, b: None if a is None or b is None else a / b  # noqa: E731
        steps = WORKLOADS[w][1 if args.quick else 2]
        lines.append(
            f"| {w}: {WORKLOADS[w][0]} ({steps} steps) | {fmt(e['tidu'])} | {fmt(e.get('torch'))} | "
            f"{fmt(e['numpy'])} | {fmt(ratio(e['tidu'], e.get('torch')))}× | "
            f"{fmt(ratio(e['tidu'], e['numpy']))}× | "
            f"{fmt(cpu['tidu'])} / {fmt(cpu.get('torch'))} / {fmt(cpu['numpy'])} | {fmt(bound)} | "
            f"{fmt(train_rss['tidu'], '{:.0f}')} / {fmt(train_rss.get('torch'), '{:.0f}')} / "
            f"{fmt(train_rss['numpy'], '{:.0f}')} | "
            f"{fmt(acc['tidu'], '{:.4f}')} / {fmt(acc.get('torch'), '{:.4f}')} / {fmt(acc['numpy'], '{:.4f}')} | "
            f"{fmt(rss['tidu'], '{:.0f}')} / {fmt(rss.get('torch'), '{:.0f}')} / {fmt(rss['numpy'], '{:.0f}')} |")
    fast_rows = [w for w in names if w in FAST_WORKLOADS and results.get((w, "tidu[fast]"))]
    if fast_rows:
        lines += ["", "## tidu[fast]: the optional extra `fast` (numba installed; one-pass RMSprop update, LSTM gate kernels)", "",
                  "The rows above are plain tidu (TIDU_FAST=0, the pure-NumPy default); here the same run "
                  "with numba's kernels (tidu.kernels).", "",
                  "| workload | tidu[fast] s/epoch | speed-up over plain tidu | tidu[fast]/torch | tidu[fast]/NumPy |",
                  "|---|---|---|---|---|"]
        for w in fast_rows:
            spe = STEPS_PER_EPOCH[w]
            s = {i: median(results[(w, i)], "seconds_per_step") for i in impls + ["tidu[fast]"]}
            r = lambda a, b: None if a is None or b is None else a / b  # noqa: E731
            f = s["tidu[fast]"]
            lines.append(f"| {w} | {fmt(None if f is None else f * spe)} | {fmt(r(s['tidu'], f))}× | "
                         f"{fmt(r(f, s.get('torch')))}× | {fmt(r(f, s['numpy']))}× |")
    lines += ["", "## Inference (seconds for 10,000 images, batch 256)", "",
              "| workload | tidu s | torch s | hand NumPy s | tidu/torch | tidu/NumPy |", "|---|---|---|---|---|---|"]
    for w in names:
        if not w.endswith("_predict"):
            continue
        s = {i: median(results[(w, i)], "seconds") for i in impls}
        r = lambda a, b: None if a is None or b is None else a / b  # noqa: E731
        lines.append(f"| {WORKLOADS[w][0]} | {fmt(s['tidu'], '{:.3f}')} | {fmt(s.get('torch'), '{:.3f}')} | "
                     f"{fmt(s['numpy'], '{:.3f}')} | {fmt(r(s['tidu'], s.get('torch')))}× | "
                     f"{fmt(r(s['tidu'], s['numpy']))}× |")
    if "simulator" in names:
        res = results[("simulator", "tidu")]
        lines += ["", "## Parameter-server simulator (updates per second, M=8, random staleness)", "",
                  "| rule | updates/s |", "|---|---|"]
        for rule in ("asgd", "dcasgd"):
            lines.append(f"| {rule} | {fmt(median(res, f'{rule}_updates_per_sec'), '{:.0f}')} |")
    lines += ["", "## Targets (ratios of the medians above)", "", "| target | ratio | met |", "|---|---|---|"]
    for what, w, key, base, bound in TARGETS:
        if w not in names or base not in impls:
            continue
        for impl in ("tidu", "tidu[fast]"):
            if not results.get((w, impl)):
                continue
            a, b = median(results[(w, impl)], key), median(results[(w, base)], key)
            r = None if a is None or b is None else a / b
            label = what if impl == "tidu" else f"{what} — with tidu[fast]"
            lines.append(f"| {label} | {fmt(r)}× | {'—' if r is None else ('yes' if r <= bound else 'no')} |")
    errors = [(w, i, r["error"]) for (w, i), rs in results.items() for r in rs if "error" in r]
    if errors:
        lines += ["", "## Errors", ""] + [f"- {w} / {i}: {e}" for w, i, e in sorted(set(errors))]
    lines += kept_sections(args.out)
    with open(args.out + ".tmp", "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(args.out + ".tmp", args.out)


KEEP = "Not regenerated by `bench/run.py`"


def kept_sections(path):
    """The '## ' sections of the existing results file that say they are not regenerated here
    (results of other commands, added by hand): a new run carries them over unchanged."""
    try:
        with open(path) as f:
            old = f.read().splitlines()
    except OSError:
        return []
    sections, current = [], None
    for line in old:
        if line.startswith("## "):
            current = [line]
            sections.append(current)
        elif current is not None:
            current.append(line)
    kept = []
    for section in sections:
        if KEEP in " ".join(section):
            while section and not section[-1].strip():
                section.pop()
            kept += [""] + section
    return kept


if __name__ == "__main__":
    main()
