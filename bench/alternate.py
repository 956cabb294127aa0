"""Variants of one workload alternated in ONE process: for differences smaller than this host's
noise between processes.

    python bench/alternate.py --workload convnet --variants tidu,tidu-unfused
    python bench/alternate.py --workload mlp --variants tidu,numpy --rounds 9
    python bench/alternate.py --workload cnn --variants tidu,tidu[fast],numpy

Variants: 'tidu' (plain NumPy path, TIDU_FAST off), 'tidu[fast]' (numba's kernels on: the
switch is flipped around each turn, tidu.kernels.set_enabled), 'tidu-unfused' (plain, with a
Conv2D(relu) → MaxPooling2D pair run as the two ops instead of tidu.functional.conv2d_max_pool2d:
the fused op's gain), 'tidu[fast]-blocks' (numba on, but training's conv+pool as Conv2DMaxPool's
NumPy blocks instead of the compiled max pool), 'tidu[fast]-whole' (numba on, but no batch split
in two halves on the two cores, tidu.kernels.halves: the LSTM always as the whole batch, predict
never split nor its batches sent in pairs, the training step whole (tidu.training.step);
'tidu[fast]' leaves the choice to the
LSTM's Chooser and the rules of predict and the step), 'tidu[fast]-wholestep' (numba on, the
training step whole, the LSTM's and predict's splits as in 'tidu[fast]'), 'tidu[fast]-oneupdate' (numba on,
the step's halves adding their gradients in the calling thread for one apply_gradients instead
of each updating its share of the weights, Optimizer.update_in_two), 'tidu[fast]-nopairs'
(numba on, predict's and evaluate's batches one after another instead of in pairs on the two
cores, tidu.training.loops._in_pairs), 'tidu-nopairs' (the same with numba off),
'tidu[fast]-nosparse' (numba on, a Dense layer's GEMM even for inputs that are mostly zeros,
instead of tidu.kernels.sparse's kernel), 'tidu-fresh' (plain, each training step's im2col
matrix new from np.empty instead of one of two kept in turn, tidu.kernels.memory.alternate_empty),
'tidu[fast]-steploop' (numba on, the LSTM's timesteps one Python call each, its per-timestep
kernels between np.matmul calls, instead of the whole sequence in one compiled call each way,
tidu.kernels.recurrent's forward_seq and backward_seq), 'tidu[fast]-nosplit' (numba on, a conv
model's small batches layer by layer on the BLAS threads instead of one compiled call per layer
with the batch's halves on numba's two threads, tidu.training.split_predict), 'tidu-softmax'
(plain, the metrics computing softmax(z) again instead of reading the fused loss's, TrainStep.
update_metrics) and 'numpy'
(bench/workloads.py's hand-written version). A tidu variant may end in ':chunk=MB', the size of inference's im2col chunks
(tidu.functional.conv_pool.CHUNK_BYTES) in its turns, e.g. --variants tidu:chunk=0.5,tidu:chunk=4,
or ':cols=MB', the size of training's im2col chunks (tidu.functional.conv.COLS_CHUNK_BYTES; 0:
the whole batch in one piece), e.g. --variants tidu[fast],tidu[fast]:cols=0, or ':icols=MB',
the same at inference (tidu.functional.conv.INFERENCE_COLS_CHUNK_BYTES), or ':split=ROWS', the
rows from which inference splits a conv model's batch in two halves and predict sends batches
in pairs (tidu.training.loops.SPLIT_ROWS), e.g. --variants tidu[fast],tidu[fast]:split=64.
torch is left out
on purpose: its OpenMP threads and OpenBLAS's in one process fight (../shared/PERF.md lesson 6);
bench/run.py runs it in its own process.

Workload cnn_evaluate (not one of bench/run.py's): the LeNet CNN's model.evaluate on the 10,000
MNIST test images at batch 256 (loss and accuracy), tidu variants only.

Why: on the 2-core AMD EPYC host of bench/RESULTS.md the same code timed in separate processes
spread by up to 1.7× (keras.io's convnet, plain: 27.7 to 49 ms a step), the machine going
through slow and fast spells of seconds; a process measures one spell. Here every variant gets a
turn of --steps training steps (or one predict pass) in each of --rounds rounds, in rotating
order, so a spell slows all of them alike; the medians of the turns and their ratios are printed.
The tidu variants share one model, each turn in its variant's settings, on the same batches;
2 BLAS threads unless --threads. With --own-models each tidu variant builds a model of its own,
as this script did before 2026-12-06: on the AMD EPYC host the model built first then ran its
MLP steps 2-3% slower whatever variant it served (bench/RESULTS.md), a bias that one shared model
does not have.
"""
import argparse
import os
import sys
import time

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--workload", required=True,
                choices=["mlp", "cnn", "lstm", "gru", "simplernn", "convnet", "overhead", "cnn_predict",
                         "mlp_predict", "cnn_latency", "cnn_evaluate"])
ap.add_argument("--variants", default="tidu,tidu[fast]")
ap.add_argument("--rounds", type=int, default=7)
ap.add_argument("--steps", type=int, default=20, help="training steps per turn (latency: batches)")
ap.add_argument("--batch", type=int, default=32,
                help="cnn_latency: rows per batch (bench/run.py's: 32)")
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--own-models", action="store_true",
                help="a model of its own for each tidu variant (the module docstring)")
args = ap.parse_args()
if not 1 <= args.batch <= 5000:
    ap.error(f"--batch: expected 1 to 5000 rows (MNIST has 10,000 test images), got {args.batch}")

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from run import GAP, child_env  # noqa: E402  (the benchmark children's environment)

os.environ.update(child_env(args.threads))
for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
    os.environ.pop(name, None)
os.environ["TIDU_FAST"] = "1"   # the switch is flipped per turn below

import numpy as np  # noqa: E402

import more_workloads as more  # noqa: E402
import workloads as W  # noqa: E402

variants = args.variants.split(",")
known = ("tidu", "tidu[fast]", "tidu-unfused", "tidu[fast]-blocks", "tidu[fast]-whole",
         "tidu[fast]-wholestep", "tidu[fast]-oneupdate", "tidu[fast]-nopairs",
         "tidu[fast]-nosparse", "tidu-fresh", "tidu-nopairs", "tidu[fast]-steploop",
         "tidu[fast]-nosplit", "tidu-softmax", "numpy")


def parse(variant):
    """(name, {option: bytes}) of 'name', 'name:chunk=MB', 'name:cols=MB' or 'name:icols=MB'
    (cols/icols=0: one piece), or (name, {"split": rows}) of 'name:split=ROWS'; None if
    malformed."""
    name, _, option = variant.partition(":")
    if not option:
        return name, {}
    try:
        key, mb = option.split("=")
        if key == "split":
            return (name, {"split": int(mb)}) if int(mb) > 0 else None
        size = int(float(mb) * (1 << 20))
    except ValueError:
        return None
    if key == "chunk" and size > 0:
        return name, {"chunk": size}
    if key in ("cols", "icols") and size >= 0:
        return name, {key: size or sys.maxsize}
    return None


parsed = [parse(v) for v in variants]
if any(p is None or p[0] not in known or (p[1] and p[0] == "numpy") for p in parsed):
    ap.error(f"--variants: expected some of {', '.join(known)}, a tidu one optionally with "
             f"':chunk=MB', ':cols=MB', ':icols=MB' or ':split=ROWS', got {args.variants!r}")
if "numpy" in variants and args.workload in ("convnet", "cnn_evaluate"):
    ap.error(f"--variants: {args.workload} has no hand-written NumPy version")

from tidu import kernels  # noqa: E402
import tidu.functional as F  # noqa: E402
import tidu.functional.conv as conv  # noqa: E402
import tidu.functional.conv_pool as conv_pool  # noqa: E402
import tidu.layers.convolutional as conv_layers  # noqa: E402
import tidu.kernels.memory as memory  # noqa: E402
import tidu.kernels.sparse as sparse  # noqa: E402
import tidu.training.split_predict as split  # noqa: E402
import tidu.kernels.recurrent as recurrent_kernels  # noqa: E402

import tidu.functional.recurrent_lstm as lstm_module  # noqa: E402
import tidu.training.loops as loops  # noqa: E402
from tidu.training.step import TrainStep  # noqa: E402

fused = F.conv2d_max_pool2d
CHOOSER, SPLIT_ROWS, IN_PAIRS = lstm_module._CHOOSER, loops.SPLIT_ROWS, loops._in_pairs
DENSITY, SPLIT_MIN_ROWS = sparse.DENSITY, split.MIN_ROWS


class Whole:
    """An LSTM Chooser that always runs the whole batch."""

    def concurrent(self, key):
        return False

    def record(self, *args):
        pass


def two_ops(x, kernel, bias=None, strides=1, padding="valid", dilation_rate=1, pool_size=2,
            pool_strides=None, pool_padding="valid"):
    return F.max_pool2d(F.conv2d(x, kernel, bias, strides=strides, padding=padding,
                                 dilation_rate=dilation_rate), pool_size, pool_strides, pool_padding)


CHUNK_BYTES, pool_kernels = conv_pool.CHUNK_BYTES, conv_pool.pool_kernels
COPIES = memory.COPIES
COLS_CHUNK_BYTES = conv.COLS_CHUNK_BYTES
LSTM_KERNELS = recurrent_kernels.kernels()          # None without numba
LSTM_STEPS = LSTM_KERNELS.steps if LSTM_KERNELS is not None else None
STEP_LOOP = LSTM_STEPS._replace(forward_seq=None, backward_seq=None) if LSTM_STEPS else None
INFERENCE_COLS_CHUNK_BYTES = conv.INFERENCE_COLS_CHUNK_BYTES
UPDATE_METRICS = TrainStep.update_metrics


def softmax_again(self, y, out, sw, y_pred=None):
    """TrainStep.update_metrics as before the metrics read the fused loss's softmax."""
    return UPDATE_METRICS(self, y, out, sw)


def setting(variant):
    """Put the library in the variant's state: the fast-path switch, the conv-pool op, the
    inference chunk size."""
    name, options = parse(variant)
    kernels.set_enabled(name in ("tidu[fast]", "tidu[fast]-blocks", "tidu[fast]-whole",
                                 "tidu[fast]-wholestep", "tidu[fast]-oneupdate",
                                 "tidu[fast]-nopairs", "tidu[fast]-nosparse",
                                 "tidu[fast]-steploop", "tidu[fast]-nosplit"))
    lstm_module._CHOOSER = Whole() if name == "tidu[fast]-whole" else CHOOSER
    loops.SPLIT_ROWS = sys.maxsize if name == "tidu[fast]-whole" else \
        options.get("split", SPLIT_ROWS)
    loops._in_pairs = (lambda *args: False) if name.endswith("-nopairs") else IN_PAIRS
    sparse.DENSITY = -1.0 if name == "tidu[fast]-nosparse" else DENSITY
    split.MIN_ROWS = sys.maxsize if name == "tidu[fast]-nosplit" else SPLIT_MIN_ROWS
    conv_layers.F.conv2d_max_pool2d = two_ops if name == "tidu-unfused" else fused
    conv_pool.pool_kernels = (lambda dtype: None) if name == "tidu[fast]-blocks" else pool_kernels
    conv_pool.CHUNK_BYTES = options.get("chunk", CHUNK_BYTES)
    conv.COLS_CHUNK_BYTES = options.get("cols", COLS_CHUNK_BYTES)
    conv.INFERENCE_COLS_CHUNK_BYTES = options.get("icols", INFERENCE_COLS_CHUNK_BYTES)
    memory.COPIES = 0 if name == "tidu-fresh" else COPIES     # 0: np.empty every time
    if LSTM_KERNELS is not None:
        LSTM_KERNELS.steps = STEP_LOOP if name == "tidu[fast]-steploop" else LSTM_STEPS
    TrainStep.update_metrics = softmax_again if name == "tidu-softmax" else UPDATE_METRICS
    for m in {id(m): m for m in models.values()}.values():   # one shared, or --own-models
        model_setting(m, name)


def model_setting(m, name):
    """Put the model in the variant's state: its training step whole or left to the rule, its
    optimizer's update in two shares or not."""
    whole = name in ("tidu[fast]-whole", "tidu[fast]-wholestep")
    m.train_step.halves = False if whole else None
    if name == "tidu[fast]-oneupdate":
        m.optimizer.update_in_two = lambda params: None
    else:
        m.optimizer.__dict__.pop("update_in_two", None)     # the class's method again


w = args.workload
xtr, ytr, xte, yte = W.load_mnist()
image = w == "convnet"   # keras.io's model takes (28, 28, 1) images
if image:
    xtr, xte = xtr.reshape(-1, 28, 28, 1), xte.reshape(-1, 28, 28, 1)
B = W.BATCH.get(w, 256)
Y, Yte = W.one_hot(ytr), W.one_hot(yte)
one_pass = w.endswith(("_predict", "_evaluate"))      # a turn is one pass over the test images
rng = np.random.default_rng(0)


def tidu_turn(variant):
    if args.own_models or not models:
        m = (more.tidu_model(w) if w in more.WORKLOADS else
             W.tidu_model("cnn_predict" if w == "cnn_evaluate" else w))
    else:
        m = next(iter(models.values()))
    models[variant] = m
    setting(variant)
    if w.endswith("_predict"):
        m.predict(xte[:512], batch_size=256, verbose=0)   # two batches: predict's pairs warm up too
        return lambda idx: m.predict(xte, batch_size=256, verbose=0)
    if w == "cnn_evaluate":
        m.evaluate(xte[:512], Yte[:512], batch_size=256, verbose=0)   # two batches: a pair
        return lambda idx: m.evaluate(xte, Yte, batch_size=256, verbose=0)
    if w == "cnn_latency":
        b = args.batch
        m.predict_on_batch(xte[:b])
        return lambda idx: [m.predict_on_batch(xte[(i * b) % (len(xte) - b):][:b])
                            for i in range(args.steps)]
    m.fit(xtr[:3 * B], Y[:3 * B], batch_size=B, epochs=1, verbose=0)
    return lambda idx: m.fit(xtr[idx], Y[idx], batch_size=B, epochs=1, verbose=0, shuffle=False)


def numpy_turn():
    step, predict = W.numpy_model("cnn_predict" if w == "cnn_latency" else w, np.random.default_rng(0))
    if w.endswith("_predict"):
        return lambda idx: [W.softmax_delta(predict(xte[i:i + 256]), 0) for i in range(0, len(xte), 256)]
    if w == "cnn_latency":
        b = args.batch
        return lambda idx: [W.softmax_delta(predict(xte[(i * b) % (len(xte) - b):][:b]), 0)
                            for i in range(args.steps)]
    x = xtr.reshape(len(xtr), -1) if image else xtr

    def turn(idx):
        for s in range(args.steps):
            step(x[idx[s * B:(s + 1) * B]], Y[idx[s * B:(s + 1) * B]])
    return turn


turns, models = {}, {}
for v in variants:
    turns[v] = numpy_turn() if v == "numpy" else tidu_turn(v)
setting("tidu")
per = 1 if one_pass else args.steps
unit = "s a pass over 10,000 images" if one_pass else \
    f"ms a batch of {args.batch}" if w == "cnn_latency" else "ms a step"
scale = 1 if one_pass else 1000
times = {v: [] for v in variants}
for r in range(args.rounds):
    order = variants[r % len(variants):] + variants[:r % len(variants)]
    idx = rng.permutation(len(xtr))[:args.steps * B]     # this round's batches, for every variant
    for v in order:
        if v != "numpy":
            setting(v)
        time.sleep(GAP)              # the last turn's spinning BLAS threads go to sleep first
        t = time.perf_counter()
        turns[v](idx)
        times[v].append((time.perf_counter() - t) / per * scale)
setting("tidu")
decided = {key: way for key, way in ((k, CHOOSER.choice(k)) for k in CHOOSER._keys) if way is not None}
if decided:                          # what tidu[fast]'s LSTM chose: halves at once (True) or not
    print(f"LSTM Chooser: {decided}")
for v, m in models.items():          # whether each model's training steps ran as two halves
    if not one_pass and w != "cnn_latency":
        setting(v)
        print(f"{v}: training step in two halves: {m.train_step._spans(xtr[:B]) is not None}")
setting("tidu")
if models:
    print(f"tidu models: {len({id(m) for m in models.values()})} for {len(models)} tidu variants")
first = variants[0]
print(f"{w}: {args.rounds} rounds, {unit} (median of the turns; every turn in brackets)")
print("  (then the ratio of the medians, and the median of the rounds' ratios with the lowest and "
      "highest)")
for v in variants:
    med = float(np.median(times[v]))
    ratio = med / float(np.median(times[first]))
    rounds = np.array(times[v]) / np.array(times[first])
    print(f"  {v:13s} {med:8.3f}  {ratio:5.3f}× {first}  {np.median(rounds):5.3f}× "
          f"({rounds.min():.2f}-{rounds.max():.2f})   [{' '.join(f'{t:.3f}' for t in times[v])}]")
