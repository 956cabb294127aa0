"""Benchmark suite: tidu against PyTorch (CPU) and hand-written NumPy, same run, same machine.

    python bench/run.py            # full: more steps, 15 rounds of turns
    python bench/run.py --quick    # fewer steps, 9 rounds
    python bench/run.py --smoke --only gru,convnet   # does it run? 1 round, 3 steps, table to stdout
    python bench/run.py --quick --separate   # the older method: 3 repetitions, a process each
    python bench/run.py --smoke --subset --only mlp   # offline, on the shipped subset (tests/test_bench.py)

Each implementation of a workload runs in its own process (bench/workloads.py) with 2 BLAS
threads set before NumPy or torch loads, so that NumPy's and torch's thread pools never share
one (PERF.md lesson 6). The processes of one workload are started together, set up and warm up,
then take turns: in each round every implementation, in rotating order, times --steps steps
(a predict workload: one pass) while the others wait idle, GAP seconds apart so that the last
turn's spinning BLAS/OpenMP threads have gone to sleep. On a 2-core host the same code timed in
separate processes spread by up to 1.7× (slow and fast spells of seconds, bench/alternate.py);
neighbouring turns share a spell, so each round gives a paired ratio. The tables report the
medians over the rounds; the Targets table the median of the per-round ratios with their
lowest and highest. --separate runs each (workload, implementation, repetition) in a fresh
process instead, one after another (the method before turns). Results go to bench/RESULTS.md.
PyTorch is optional: without it the torch columns say so.

Besides wall time, each run reports its CPU time (all threads of the process) and its peak
resident memory counted from the start of the timed training (MNIST already loaded), at the
end of training and after the accuracy check (whose batch sizes differ: torch and the
hand-written NumPy predict the 10,000 test images in one batch, tidu in batches of 1000). The machine's load is recorded at the
start and end: on a shared 2-core machine a background process can multiply a wall time by
10 (PERF.md lesson 6), so read the ratios against it.

The children run WITHOUT OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE in their environment (PERF.md
lesson 9): some hosts export OPENBLAS_CORETYPE=Haswell, which on an AVX-512 CPU forces AVX2
kernels, and a user's machine sets neither. Only these benchmark children drop them; tests and CI
keep the environment as it is. Above every table the host is written: the CPU model, its SIMD
level and the BLAS kernel NumPy's OpenBLAS chose, as threadpoolctl reports it inside a child
started with the workloads' environment (the sgemm run).

The Keras column (keras.io's MNIST convnet only) is the real Keras 3 on its torch backend.
"""
import argparse
import datetime
import importlib.util
import json
import os
import platform
import statistics
import queue
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
WORKLOADS = {  # name: (description, steps quick, steps full)
    "mlp": ("MLP 784-512-10, RMSprop, batch 128 (model.fit)", 469, 469),
    "cnn": ("LeNet CNN (conv5x5x20, pool, conv5x5x50, pool, fc500, fc10), SGD-m, batch 64", 40, 150),
    "lstm": ("LSTM(128) on 28x28 sequential MNIST, Adam, batch 128", 30, 100),
    "overhead": ("10 x Dense(64) + Dense(10), SGD, batch 32 (per-op overhead)", 300, 1000),
    "mlp_predict": ("predict on 10,000 MNIST images, the MLP", 0, 0),
    "cnn_predict": ("predict on 10,000 MNIST images, the CNN", 0, 0),
    "simulator": ("parameter-server simulator, M=8 workers, MNIST MLP, batch 128", 0, 0),
    "ray": ("parameter server on Ray against the simulator, interleaved, M=4 workers, DC-ASGD, "
            "MNIST MLP, batch 128", 200, 400),                                   # updates per epoch
    "gru": ("GRU(128) on 28x28 sequential MNIST, Adam, batch 128", 30, 100),
    "simplernn": ("SimpleRNN(128) on 28x28 sequential MNIST, Adam, batch 128", 30, 100),
    "cnn_latency": ("LeNet CNN predicting batches of 32 one after another", 100, 313),   # batches
    "convnet": ("keras.io's Simple MNIST convnet (conv3x3x32, pool, conv3x3x64, pool, dropout 0.5, "
                "fc10), Adam, batch 128", 20, 60),
}
STEPS_PER_EPOCH = {"mlp": 469, "cnn": 938, "lstm": 469, "overhead": 1875, "gru": 469, "simplernn": 469,
                   "convnet": 469}
BOTH = ("tidu", "tidu[fast]")
TARGETS = [  # (what, workload, key, baseline implementation, bound, tidu variants it is checked for)
    ("MLP: tidu ≤ 0.8× PyTorch", "mlp", "seconds_per_step", "torch", 0.8, BOTH),
    ("MLP: tidu ≤ 1.1× hand-written NumPy", "mlp", "seconds_per_step", "numpy", 1.1, BOTH),
    ("CNN: tidu ≤ 1.0× PyTorch (channels_last)", "cnn", "seconds_per_step", "torch", 1.0, BOTH),
    ("LSTM: tidu ≤ 1.0× PyTorch", "lstm", "seconds_per_step", "torch", 1.0, BOTH),
    ("Overhead: tidu ≤ 1.5× PyTorch", "overhead", "seconds_per_step", "torch", 1.5, BOTH),
    ("Memory, MLP: peak RSS (training) ≤ 1.5× PyTorch", "mlp", "train_peak_rss_mb", "torch", 1.5, BOTH),
    ("Memory, CNN: peak RSS (training) ≤ 1.5× PyTorch", "cnn", "train_peak_rss_mb", "torch", 1.5, BOTH),
    ("Memory, LSTM: peak RSS (training) ≤ 1.5× PyTorch", "lstm", "train_peak_rss_mb", "torch", 1.5, BOTH),
]
for _w, _name in [("cnn", "CNN"), ("lstm", "LSTM")]:   # issue 14's bar for the plain path (fast: above)
    TARGETS.append((f"{_name}: plain tidu ≤ 1.3× PyTorch", _w, "seconds_per_step", "torch", 1.3, ("tidu",)))
for _w, _name in [("mlp_predict", "Inference, MLP"), ("cnn_predict", "Inference, CNN")]:
    TARGETS += [(f"{_name}: tidu[fast] ≤ 1.0× PyTorch", _w, "seconds", "torch", 1.0, ("tidu[fast]",)),
                (f"{_name}: plain tidu ≤ 1.3× PyTorch", _w, "seconds", "torch", 1.3, ("tidu",))]
for _w, _name, _key, _rss in [("gru", "GRU", "seconds_per_step", "train_peak_rss_mb"),
                              ("simplernn", "SimpleRNN", "seconds_per_step", "train_peak_rss_mb"),
                              ("cnn_latency", "CNN batch-32 latency", "ms_per_batch", "timed_peak_rss_mb"),
                              ("convnet", "MNIST convnet", "seconds_per_step", "train_peak_rss_mb")]:
    TARGETS += [(f"{_name}: tidu[fast] ≤ 1.0× PyTorch", _w, _key, "torch", 1.0, ("tidu[fast]",)),
                (f"{_name}: plain tidu ≤ 1.3× PyTorch", _w, _key, "torch", 1.3, ("tidu",)),
                (f"Memory, {_name}: peak RSS ({'timed loop' if _w == 'cnn_latency' else 'training'}) "
                 f"≤ 1.5× PyTorch", _w, _rss, "torch", 1.5, BOTH)]
IMPLS = {"convnet": ("tidu", "torch", "keras"), "simulator": ("tidu",), "ray": ("tidu",)}  # default: tidu, numpy, torch
SMOKE_STEPS = {"cnn_latency": 10}                                        # --smoke: else 3 steps
SEPARATE = ("simulator", "ray")   # timed their own way: a process per repetition, never in turns
GAP = 0.25                        # seconds idle before each turn (OpenBLAS's threads spin ~0.1 s)
TIMEOUT = 900                     # seconds a child may take to answer


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


# where tidu[fast] (the extra `fast`, numba) is also run: every workload tidu trains or predicts with
FAST_WORKLOADS = ("mlp", "cnn", "lstm", "gru", "simplernn", "mlp_predict", "cnn_predict", "cnn_latency",
                  "convnet")


def child_env(threads):
    """The environment of a benchmark child: `threads` BLAS threads, and none of the OpenBLAS
    overrides some hosts export (OPENBLAS_CORETYPE, OPENBLAS_L2_SIZE: PERF.md lesson 9)."""
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BENCH_THREADS"):
        env[var] = str(threads)
    env.setdefault("KERAS_BACKEND", "torch")
    return env


def cpu_line():
    """'<CPU model>, <SIMD level>' from lscpu's 'Model name' (else /proc/cpuinfo) and the flags."""
    model, flags = None, set()
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            key, _, val = line.partition(":")
            if key.strip() == "Model name" and model is None:
                model = val.strip()
            elif key.strip() == "Flags":
                flags = set(val.split())
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, val = line.partition(":")
                if key.strip() == "model name" and model is None:
                    model = val.strip()
                elif key.strip() == "flags" and not flags:
                    flags = set(val.split())
    except OSError:
        pass
    simd = "AVX-512 (avx512f)" if "avx512f" in flags else "AVX2 (no avx512f)" if "avx2" in flags \
        else "other (neither avx2 nor avx512f in the flags)" if flags else "unknown"
    return f"{model or platform.processor() or platform.machine()}, SIMD {simd}"


def blas_line(blas):
    """NumPy's BLAS as the sgemm child's threadpoolctl saw it (see workloads.py)."""
    if blas is None:
        return "unknown (pip install threadpoolctl)"
    if not blas:
        return "none found by threadpoolctl"
    return (f"{blas.get('internal_api')} {blas.get('version')}, kernel {blas.get('architecture')}, "
            f"{blas.get('num_threads')} threads (threadpoolctl, in a benchmark child)")


def run_one(workload, impl, steps, threads):
    env = child_env(threads)
    env["TIDU_FAST"] = "1" if impl == "tidu[fast]" else "0"     # plain tidu: the pure-NumPy path
    impl = "tidu" if impl == "tidu[fast]" else impl
    cmd = [sys.executable, os.path.join(HERE, "workloads.py"), "--workload", workload, "--impl", impl,
           "--steps", str(steps)]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    if p.returncode != 0:
        return {"error": (p.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(p.stdout.strip().splitlines()[-1])


class Child:
    """One implementation of a workload in its own process, timing turns when told
    (bench/workloads.py --turns); its stdout read by a thread into a queue, its stderr to a file."""

    def __init__(self, workload, impl, steps, threads, turns):
        env = child_env(threads)
        env["TIDU_FAST"] = "1" if impl == "tidu[fast]" else "0"
        cmd = [sys.executable, os.path.join(HERE, "workloads.py"), "--workload", workload, "--impl",
               "tidu" if impl == "tidu[fast]" else impl, "--steps", str(steps), "--turns", str(turns)]
        self.err = tempfile.TemporaryFile(mode="w+")
        self.p = subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=self.err, text=True, bufsize=1)
        self.lines, self.error = queue.Queue(), None
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def expect(self, word):
        """The rest of the child's next 'BENCH <word>' line (other lines skipped), or None with
        self.error set: it exited, or said nothing for TIMEOUT seconds."""
        deadline = time.monotonic() + TIMEOUT
        while self.error is None:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.fail(f"no 'BENCH {word}' within {TIMEOUT} s")
                break
            if line is None:
                self.p.wait()
                self.err.seek(0)
                tail = self.err.read().strip().splitlines()
                self.fail(tail[-1] if tail else f"exited with status {self.p.returncode}")
                break
            head, _, rest = line.strip().partition(" ")
            said, _, rest = rest.partition(" ")
            if head == "BENCH" and said == word:
                return rest
        return None

    def go(self):
        try:
            self.p.stdin.write("go\n")
            self.p.stdin.flush()
        except OSError as e:
            self.fail(f"cannot tell it to go on: {e}")

    def fail(self, message):
        self.error = self.error or message
        self.p.kill()


def run_turns(workload, impls, steps, rounds, threads):
    """{impl: [one dict per round]}: the implementations' processes started together, then given
    `rounds` rounds of turns in rotating order (see the module's docstring). Each round's dict
    holds that turn's timings and the process's other results (peak RSS, accuracy); a process
    that failed gives [{"error": ...}]."""
    children = {i: Child(workload, i, steps, threads, rounds) for i in impls}
    for c in children.values():
        c.expect("ready")                                   # set up and warmed up
    turns = {i: [] for i in impls}
    for r in range(rounds):
        for i in impls[r % len(impls):] + impls[:r % len(impls)]:
            c = children[i]
            if c.error:
                continue
            time.sleep(GAP)
            c.go()
            said = c.expect("turn")
            if said is not None:
                turns[i].append(json.loads(said))
                print(f"round {r + 1}/{rounds} {workload:12s} {i:10s} {said}", flush=True)
                c.expect("ready")
    out = {}
    for i, c in children.items():                           # accuracy checks one at a time
        if c.error is None:
            c.go()
            said = c.expect("result")
            if said is not None:
                final = json.loads(said)
                extras = {k: v for k, v in final.items() if k != "turns" and k not in turns[i][0]}
                out[i] = [{**t, **extras} for t in turns[i]]
        c.p.wait()
        if c.error:
            out[i] = [{"error": c.error}]
            print(f"{workload} {i}: {c.error}", flush=True)
    return out


def steps_of(args, w):
    """Steps per turn (per run with --separate) of workload w under the command's options."""
    return (SMOKE_STEPS.get(w, 3) if WORKLOADS[w][1] else 0) if args.smoke \
        else WORKLOADS[w][1 if args.quick else 2]


def median(results, key):
    vals = [r[key] for r in results if key in r]
    return statistics.median(vals) if vals else None


def fmt(x, spec="{:.2f}"):
    return "—" if x is None else spec.format(x)


def impls_of(w, have):
    """The implementations run for workload `w`, given which optional packages `have` holds."""
    these = [i for i in IMPLS.get(w, ("tidu", "numpy", "torch")) if have.get(i, True)]
    return these + (["tidu[fast]"] if have["numba"] and w in FAST_WORKLOADS else [])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--smoke", action="store_true",
                    help="check that the workloads run: 1 repetition of 3 steps; the tables go to stdout "
                         "unless --out is given")
    ap.add_argument("--reps", type=int, default=None,
                    help="rounds of turns (default 9 with --quick, 15 without, 1 with --smoke); with "
                         "--separate, repetitions (3, 5, 1)")
    ap.add_argument("--separate", action="store_true",
                    help="each (workload, implementation, repetition) in a fresh process, one after "
                         "another, instead of turns")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--subset", action="store_true",
                    help="the shipped 2,000-image MNIST subset (with --smoke: does it run, offline)")
    ap.add_argument("--only", default=None, help="comma-separated workloads")
    ap.add_argument("--out", default=None, help="default: bench/RESULTS.md (--smoke: stdout)")
    args = ap.parse_args()
    if args.out is None and not args.smoke:
        args.out = os.path.join(HERE, "RESULTS.md")
    if args.subset:
        os.environ["TIDU_BENCH_SUBSET"] = "1"                # the children inherit it (child_env)
    if args.reps is not None and args.reps < 1:
        ap.error(f"--reps: expected a positive number, got {args.reps}")
    separate_reps = 1 if args.smoke else 3 if args.quick else 5
    reps = args.reps or (separate_reps if args.separate else 1 if args.smoke else 9 if args.quick else 15)
    have = {name: importlib.util.find_spec(name) is not None for name in ("torch", "numba", "keras")}
    names = args.only.split(",") if args.only else list(WORKLOADS)
    unknown = [w for w in names if w not in WORKLOADS]
    if unknown:
        ap.error(f"--only: unknown workload(s) {', '.join(unknown)}; expected some of {', '.join(WORKLOADS)}")

    results = {(w, i): [] for w in names for i in impls_of(w, have)}
    sgemm = []
    load = {"start": (os.getloadavg()[0], busy_fraction())}
    alone = names if args.separate else [w for w in names if w in SEPARATE]
    for rep in range(reps if args.separate else separate_reps):
        sgemm.append(run_one("sgemm", "sgemm", 0, args.threads))
        for w in alone:
            these = impls_of(w, have)
            for impl in these[rep % len(these):] + these[:rep % len(these)]:
                r = run_one(w, impl, steps_of(args, w), args.threads)
                results[(w, impl)].append(r)
                print(f"rep {rep + 1} {w:12s} {impl:10s} {json.dumps(r)}", flush=True)
    for w in names:
        if w not in alone:
            for impl, rs in run_turns(w, impls_of(w, have), steps_of(args, w), reps, args.threads).items():
                results[(w, impl)] = rs
    load["end"] = (os.getloadavg()[0], busy_fraction())
    gflops = [r["gflops"] for r in sgemm if r.get("gflops")]
    gf = statistics.median(gflops) if gflops else None
    blas = next((r.get("blas") for r in sgemm if "gflops" in r), None)
    host = (f"Host: {cpu_line()}; NumPy's BLAS: {blas_line(blas)}; OPENBLAS_CORETYPE and "
            f"OPENBLAS_L2_SIZE unset in every benchmark process.")
    lines = results_lines(args, names, have, results, gf, reps, load, host)
    if args.out is None:
        print("\n".join(lines))
        return
    lines += kept_sections(args.out)
    with open(args.out + ".tmp", "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(args.out + ".tmp", args.out)
    print(f"wrote {args.out}")


def results_lines(args, names, have, results, gf, reps, load, host):
    sys.path.insert(0, HERE)
    from workloads import flops_per_step

    def load_str(when):
        avg, busy = load[when]
        return f"load average {avg:.2f}" + ("" if busy is None else f", CPUs {100 * busy:.0f}% busy (1 s sample)")

    def med(w, impl, key):
        return median(results.get((w, impl), []), key)

    def ratio(a, b):
        return None if a is None or b is None else a / b

    def per_round(w, impl, base, key):
        """The ratios of the two implementations' times, round by round (repetition by repetition
        with --separate)."""
        pairs = zip(results.get((w, impl), []), results.get((w, base), []))
        return [a[key] / b[key] for a, b in pairs if a.get(key) and b.get(key)]

    def paired(w, impl, base, key):
        """The median of per_round's ratios: what the tables' ratio columns give. The ratio of the
        two columns' medians can mislead where the times fall in two groups (this host's spells),
        each median from another group: run 33's MLP with tidu[fast], 1.04× PyTorch that way
        against 0.85× round by round."""
        rs = per_round(w, impl, base, key)
        return statistics.median(rs) if rs else None

    flag = (" --smoke" if args.smoke else " --quick" if args.quick else "") \
        + (" --separate" if args.separate else "") + (" --subset" if args.subset else "") \
        + (f" --reps {args.reps}" if args.reps else "") \
        + (f" --only {args.only}" if args.only else "")
    how = (f"{reps} repetition{'s' if reps != 1 else ''}, each run in a fresh process, one after another"
           if args.separate else
           f"{reps} round{'s' if reps != 1 else ''} of turns: the implementations of a workload in "
           f"their own processes, started together, timing their turns one after another, "
           f"{GAP} s apart")
    lines = [
        "# tidu benchmark results", "",
        f"Command: `python bench/run.py{flag}` "
        f"({how}; medians; {args.threads} BLAS threads per process). A ratio column is the median "
        f"of the ratios of the two implementations' times {'repetition' if args.separate else 'round'} "
        f"by {'repetition' if args.separate else 'round'}, as in the Targets table, not the ratio "
        f"of the two columns' medians.",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; measured sgemm: {fmt(gf, '{:.0f}')} GFLOP/s. "
        f"Date: {datetime.date.today().isoformat()}.",
        f"Machine load: at the start {load_str('start')}; at the end {load_str('end')} "
        f"(other processes' load inflates wall times; CPU times are less sensitive).",
        "" if have["torch"] else "PyTorch is not installed: the torch columns are empty.",
    ]
    train = [w for w in names if w in STEPS_PER_EPOCH]
    if train:
        lines += [
            "", "## Training (seconds per epoch; CNN/LSTM/overhead time a fixed number of steps and scale to one epoch)", "",
            host, "",
            "Peak RSS counts from the start of the timed training (MNIST loaded as float32, the model, "
            "optimizer state and training buffers); the last column adds the accuracy check, whose "
            "batch sizes differ (torch and NumPy: all 10,000 test images at once; tidu: 1000). "
            "The convnet has no hand-written NumPy version (—).", "",
            "| workload | tidu s/epoch | torch s/epoch | hand NumPy s/epoch | tidu/torch | tidu/NumPy "
            "| CPU s/epoch tidu / torch / NumPy | FLOP bound s/epoch | peak RSS MB (training) tidu / torch / NumPy "
            "| test accuracy tidu / torch / NumPy | peak RSS MB (training + accuracy check) tidu / torch / NumPy |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
    impls = ("tidu", "torch", "numpy")
    per_step = "seconds_per_step"
    for w in train:
        spe = STEPS_PER_EPOCH[w]
        e = {i: None if med(w, i, "seconds_per_step") is None else med(w, i, "seconds_per_step") * spe
             for i in impls}
        cpu = {i: None if med(w, i, "cpu_seconds_per_step") is None else med(w, i, "cpu_seconds_per_step") * spe
               for i in impls}
        flops = flops_per_step(w)
        bound = flops * spe / (gf * 1e9) if gf and flops else None

        def three(key, spec):
            return " / ".join(fmt(med(w, i, key), spec) for i in impls)
        lines.append(
            f"| {w}: {WORKLOADS[w][0]} ({steps_of(args, w)} steps) | {fmt(e['tidu'])} | {fmt(e['torch'])} | "
            f"{fmt(e['numpy'])} | {fmt(paired(w, 'tidu', 'torch', per_step))}× | {fmt(paired(w, 'tidu', 'numpy', per_step))}× | "
            f"{' / '.join(fmt(cpu[i]) for i in impls)} | {fmt(bound)} | {three('train_peak_rss_mb', '{:.0f}')} | "
            f"{three('accuracy', '{:.4f}')} | {three('peak_rss_mb', '{:.0f}')} |")
    fast_rows = [w for w in train if results.get((w, "tidu[fast]"))]
    if fast_rows:
        lines += ["", "## tidu[fast]: the optional extra `fast` (numba installed: the compiled kernels of tidu.kernels)", "",
                  host, "",
                  "The rows above are plain tidu (TIDU_FAST=0, the pure-NumPy default); here the same run "
                  "with numba's kernels (tidu.kernels).", "",
                  "| workload | tidu[fast] s/epoch | speed-up over plain tidu | tidu[fast]/torch | tidu[fast]/NumPy "
                  "| peak RSS MB (training) tidu[fast] |",
                  "|---|---|---|---|---|---|"]
        for w in fast_rows:
            s = {i: med(w, i, "seconds_per_step") for i in impls + ("tidu[fast]",)}
            f = s["tidu[fast]"]
            lines.append(f"| {w} | {fmt(None if f is None else f * STEPS_PER_EPOCH[w])} | "
                         f"{fmt(paired(w, 'tidu', 'tidu[fast]', per_step))}× | "
                         f"{fmt(paired(w, 'tidu[fast]', 'torch', per_step))}× | "
                         f"{fmt(paired(w, 'tidu[fast]', 'numpy', per_step))}× | "
                         f"{fmt(med(w, 'tidu[fast]', 'train_peak_rss_mb'), '{:.0f}')} |")
    if "convnet" in names:
        w, spe = "convnet", STEPS_PER_EPOCH["convnet"]
        ks = ("tidu", "tidu[fast]", "torch", "keras")
        e = {i: None if med(w, i, "seconds_per_step") is None else med(w, i, "seconds_per_step") * spe for i in ks}
        lines += ["", "## keras.io's Simple MNIST convnet: tidu, PyTorch and the real Keras 3 (seconds per epoch)", "",
                  host, "",
                  "tidu and Keras run the same model code and `model.fit` (bench/more_workloads.py: "
                  "simple_mnist_convnet); PyTorch runs the same net written in torch (channels_last, Adam "
                  "with ε = 1e-7). Keras 3 runs on its torch backend with the same thread count. The "
                  f"example's validation split is left out; {steps_of(args, w)} steps, scaled to one epoch of {spe}."
                  + ("" if have["keras"] else " Keras is not installed (pip install keras): its column is empty."), "",
                  "| tidu s/epoch | tidu[fast] s/epoch | torch s/epoch | Keras 3 s/epoch | tidu/torch | tidu/Keras "
                  "| tidu[fast]/Keras | peak RSS MB (training) tidu / tidu[fast] / torch / Keras "
                  "| test accuracy tidu / torch / Keras |",
                  "|---|---|---|---|---|---|---|---|---|",
                  f"| {' | '.join(fmt(e[i]) for i in ks)} | {fmt(paired(w, 'tidu', 'torch', per_step))}× | "
                  f"{fmt(paired(w, 'tidu', 'keras', per_step))}× | {fmt(paired(w, 'tidu[fast]', 'keras', per_step))}× | "
                  f"{' / '.join(fmt(med(w, i, 'train_peak_rss_mb'), '{:.0f}') for i in ks)} | "
                  f"{' / '.join(fmt(med(w, i, 'accuracy'), '{:.4f}') for i in ('tidu', 'torch', 'keras'))} |"]
    predict = [w for w in names if w.endswith("_predict")]
    if predict:
        lines += ["", "## Inference (seconds for 10,000 images, batch 256)", "", host, "",
                  "| workload | tidu s | tidu[fast] s | torch s | hand NumPy s | tidu/torch | tidu[fast]/torch "
                  "| tidu/NumPy |", "|---|---|---|---|---|---|---|---|"]
    for w in predict:
        s = {i: med(w, i, "seconds") for i in ("tidu", "tidu[fast]", "torch", "numpy")}
        lines.append(f"| {WORKLOADS[w][0]} | {' | '.join(fmt(s[i], '{:.3f}') for i in ('tidu', 'tidu[fast]', 'torch', 'numpy'))} | "
                     f"{fmt(paired(w, 'tidu', 'torch', 'seconds'))}× | "
                     f"{fmt(paired(w, 'tidu[fast]', 'torch', 'seconds'))}× | "
                     f"{fmt(paired(w, 'tidu', 'numpy', 'seconds'))}× |")
    if "cnn_latency" in names:
        w = "cnn_latency"
        ms = {i: med(w, i, "ms_per_batch") for i in ("tidu", "tidu[fast]", "torch", "numpy")}
        lines += ["", f"## Latency: the LeNet CNN predicting batches of 32 one after another "
                      f"(milliseconds per batch, {steps_of(args, w)} batches)", "", host, "",
                  "tidu: `model.predict_on_batch(x)` (and, in its own column, `model.predict(x)`); torch: "
                  "`model(x)` under `no_grad` with the softmax; NumPy: the forward pass and softmax. The "
                  "median per batch is in brackets; peak RSS counts from the start of the timed loop.", "",
                  "| tidu ms | tidu[fast] ms | tidu `predict` ms | torch ms | hand NumPy ms | tidu/torch "
                  "| tidu[fast]/torch | tidu/NumPy | peak RSS MB (timed loop) tidu / tidu[fast] / torch / NumPy |",
                  "|---|---|---|---|---|---|---|---|---|",
                  f"| {' | '.join(fmt(ms[i]) + ' (' + fmt(med(w, i, 'median_ms_per_batch')) + ')' for i in ('tidu', 'tidu[fast]'))} | "
                  f"{fmt(med(w, 'tidu', 'predict_ms_per_batch'))} | "
                  f"{' | '.join(fmt(ms[i]) + ' (' + fmt(med(w, i, 'median_ms_per_batch')) + ')' for i in ('torch', 'numpy'))} | "
                  f"{fmt(paired(w, 'tidu', 'torch', 'ms_per_batch'))}× | "
                  f"{fmt(paired(w, 'tidu[fast]', 'torch', 'ms_per_batch'))}× | "
                  f"{fmt(paired(w, 'tidu', 'numpy', 'ms_per_batch'))}× | "
                  f"{' / '.join(fmt(med(w, i, 'timed_peak_rss_mb'), '{:.0f}') for i in ('tidu', 'tidu[fast]', 'torch', 'numpy'))} |"]
    if "simulator" in names:
        res = results[("simulator", "tidu")]
        lines += ["", "## Parameter-server simulator (updates per second, M=8, random staleness)", "", host, "",
                  "| rule | updates/s |", "|---|---|"]
        for rule in ("asgd", "dcasgd"):
            lines.append(f"| {rule} | {fmt(median(res, f'{rule}_updates_per_sec'), '{:.0f}')} |")
    if "ray" in names and results[("ray", "tidu")]:
        res = results[("ray", "tidu")]
        lines += ["", "## Parameter server on Ray against the simulator (updates per second, M=4, DC-ASGD, "
                  "MNIST MLP, batch 128)", "", host, "",
                  f"One process per repetition times the two backends turn about (simulator, Ray, simulator, "
                  f"Ray; {steps_of(args, 'ray')} updates per epoch; bench/ps_workloads.py), each on a local Ray of "
                  f"2 CPUs started for it: with the workers' shared-memory mailboxes (the default on one "
                  f"machine) and with TIDU_PS_MAILBOX=0, every gradient and weight vector through Ray's "
                  f"object store as between machines. Ray's 4 workers run 1 BLAS thread each; the "
                  f"simulator, one process, 2 BLAS threads and, in its own turn, 1 (on a busy machine the "
                  f"second OpenBLAS thread spins waiting for a core); the ratio is to the faster of the "
                  f"two. Start: building the actors and 8 warm-up updates.", "",
                  "| Ray transport | Ray updates/s | simulator updates/s, 2 / 1 BLAS threads (same process) | "
                  "Ray / simulator | Ray start s |", "|---|---|---|---|---|"]
        for variant, what in (("mailbox", "shared-memory mailboxes"), ("objects", "object store (TIDU_PS_MAILBOX=0)")):
            r, s2, s1 = (median(res, f"{k}_vs_{variant}_updates_per_sec" if k != "ray" else f"ray_{variant}_updates_per_sec")
                         for k in ("ray", "simulator", "simulator_1thread"))
            best = max((v for v in (s2, s1) if v is not None), default=None)
            lines.append(f"| {what} | {fmt(r, '{:.0f}')} | {fmt(s2, '{:.0f}')} / {fmt(s1, '{:.0f}')} | "
                         f"{fmt(ratio(r, best))}× | {fmt(median(res, f'ray_{variant}_start_seconds'), '{:.1f}')} |")
    unit = "repetition" if args.separate else "round"
    lines += ["", f"## Targets (the median of the per-{unit} ratios)", "", host, "",
              f"Each {unit} gives one ratio of the two implementations' times "
              + ("(their runs in the same repetition, in fresh processes one after another)"
                 if args.separate else "(their turns in the same round, seconds apart)")
              + "; the ratio column is their median, the last column the lowest and highest. Where "
              "that range straddles the bound, this host's noise reaches the verdict.", "",
              f"| target | ratio | met | lowest–highest per {unit} |", "|---|---|---|---|"]
    for what, w, key, base, bound, variants in TARGETS:
        if w not in names or not results.get((w, base)):
            continue
        for impl in variants:
            if not results.get((w, impl)):
                continue
            rs, r = per_round(w, impl, base, key), paired(w, impl, base, key)
            label = what if impl == "tidu" or len(variants) == 1 else f"{what} — with tidu[fast]"
            lines.append(f"| {label} | {fmt(r)}× | {'—' if r is None else ('yes' if r <= bound else 'no')} | "
                         + (f"{min(rs):.2f}–{max(rs):.2f}" if len(rs) > 1 else "—") + " |")
    errors = [(w, i, r["error"]) for (w, i), rs in results.items() for r in rs if "error" in r]
    if errors:
        lines += ["", "## Errors", ""] + [f"- {w} / {i}: {e}" for w, i, e in sorted(set(errors))]
    return lines


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
