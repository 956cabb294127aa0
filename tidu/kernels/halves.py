"""A batch in two halves, one per core, each half's BLAS calls on one thread: the fast paths'
way to keep the data a core computes on that core.

A loop of small GEMMs with element-wise work between them (the LSTM's timesteps) hands its
data from core to core all the time: OpenBLAS splits each GEMM's output between its two
threads, then one thread reads all of it. On the 2-vCPU AMD EPYC host of bench/RESULTS.md
that costs little in some spells and a lot in others, when reading 512 KB another core wrote
took 24 µs instead of 12 (spells of seconds to minutes): the LSTM's forward kernel, ~1.1 ms
over 28 steps after a one-thread GEMM, took 1.1-1.2 ms after the two-thread GEMM in fast
spells and 2.3-3.9 ms in slow ones (one process, 3 s apart). The sequences of a batch are
independent until the weight gradients sum them, so the two halves can each run the whole
loop on their own core, where their data stays.

    spans(n)                 [(0, m), (m, n)], m = n // 2, or None: no split here (below)
    running()                True while a run() is in progress
    one_core()               True inside a run(), with one CPU or with NumPy's BLAS on one thread
    run(fn)                  [fn(0), fn(1)]: fn(1) on a worker thread, fn(0) on the calling
                             thread, at once, NumPy's BLAS on one thread meanwhile
    alone()                  a context: True with NumPy's BLAS on one thread and no run() or
                             other alone() meanwhile (the caller's compiled code runs the
                             halves on its own threads: tidu.kernels.split); False at once, and
                             nothing changed, where one is in progress
    Chooser().concurrent(key), .record(key, concurrent, phase, start)
                             whether a call runs its halves at once or the whole batch as one
                             loop on the BLAS threads: each way is timed on a key's first
                             calls, then the faster kept (see Chooser)

Why a choice: OpenBLAS's worker thread spins for ~0.1 s after each two-thread call before it
sleeps. An LSTM(128) → Dense(10) step makes no such call and runs its halves in 17.7 ms
against 19.6 for the whole batch; with a Dense(512) after it (a two-thread GEMM every step)
the spinning worker takes a core from the halves: 26.2 against 20.7 ms (train_on_batch,
batch 128, 8 turns of 20 steps alternated in one process, medians, in a slow spell of the
AMD EPYC host; 2 cores). An op that splits must give the
same numbers either way (the LSTM computes each row alike and sums its weight gradients
over the same two halves in both), so the choice changes the time, not the result.

spans(n) is None, and the caller runs its one loop, when the batch is under MIN_ROWS, when
this process may use only one CPU, when NumPy's BLAS runs one thread already (the user's or
the environment's choice), or without threadpoolctl (a dependency of tidu), which finds
NumPy's BLAS and sets its thread count. fn must release the GIL in its heavy parts (NumPy's
ufuncs and matmul do; numba kernels compiled with nogil=True), must not share writable arrays
between the halves, nor split again. While run() runs, BLAS calls from any other thread of
the process get one thread too; two run() calls from two threads take turns. The callers
ask tidu.kernels.enabled() first, but for predict's pairs of whole batches of a model with a
convolution (tidu.training.loops._in_pairs), which the NumPy path takes too: each batch runs
the plain ops as alone, on one core. With the fast paths off nothing else here runs.
"""
import contextlib
import os
import statistics
import threading
import time

from tidu.autograd.function import enable_grad, is_grad_enabled, no_grad

MIN_ROWS = 32          # below this the two GEMMs per step are too small to be worth a thread

_state = {}            # "blas": threadpoolctl's controller of NumPy's BLAS (None without it); "pool"
_lock = threading.Lock()
_running = threading.Lock()   # one run() at a time: each limit() restores what it found


def spans(n):
    """The two halves [(0, m), (m, n)] of a batch of n rows, or None (module docstring); None
    too inside a run(), whose halves do not split again."""
    if n < MIN_ROWS or _cpus() < 2 or running():
        return None
    blas = _blas()
    if blas is None or not blas.lib_controllers or \
            min(c.num_threads for c in blas.lib_controllers) < 2:
        return None
    return [(0, n // 2), (n // 2, n)]


def running():
    """True while a run() is in progress: its two halves each keep their data on their core."""
    return _running.locked()


def one_core():
    """True where a batch's work runs on one core: inside a run() (each half on its own core), in
    a process that may use one CPU, or with NumPy's BLAS on one thread (threadpoolctl finds it;
    without it, only the first two are known)."""
    if running() or _cpus() < 2:
        return True
    blas = _blas()
    return blas is not None and bool(blas.lib_controllers) and \
        max(c.num_threads for c in blas.lib_controllers) < 2


def run(fn):
    """[fn(0), fn(1)], the two at once: fn(1) on the worker thread, fn(0) on this one, with
    NumPy's BLAS on one thread until both return, the worker in this thread's grad mode (a
    predict's half must not record a graph). Call only after spans() gave the halves."""
    pool = _worker()
    mode = enable_grad if is_grad_enabled() else no_grad   # grad mode is per thread: pass it on

    def theirs(k):
        with mode():
            return fn(k)
    with _running, _blas().limit(limits=1, user_api="blas"):
        other = pool.submit(theirs, 1)
        try:
            mine = fn(0)
        finally:
            theirs = other.result()          # wait for the worker even if fn(0) raised
    return [mine, theirs]


@contextlib.contextmanager
def alone():
    """True (and NumPy's BLAS on one thread until the block ends, no run() nor other alone()
    meanwhile) or False (one is in progress: nothing changed) for a caller whose compiled code
    runs a batch's halves on numba's threads, each half calling the gemm (tidu.kernels.split).
    Ask spans() first: it needs threadpoolctl's controller."""
    if not _running.acquire(blocking=False):
        yield False
        return
    try:
        with _blas().limit(limits=1, user_api="blas"):
            yield True
    finally:
        _running.release()


class Chooser:
    """Per key (an op's shapes and dtype): run the halves at once, or the whole batch as one
    loop? The first calls of a key run the whole batch, then the halves: PROBES timed calls
    each way (forward and, once one was seen, backward) after SKIP untimed ones of the whole
    batch (the first calls compile and allocate); for the halves only calls that start SETTLE
    seconds or more after the last whole-batch call ended (OpenBLAS's worker, woken by its
    two-thread GEMMs, spins meanwhile and would slow the halves down; in a model whose other
    layers wake it every step that is the point, and the halves lose). Then the way with the
    smaller median forward time plus median backward time (when backward calls were timed) is
    kept for that key for the rest of the process.

        concurrent(key) -> bool               how the next forward call of key runs
        record(key, concurrent, phase, start) phase "forward" or "backward", start the
                                              clock's time at the call's start
        choice(key) -> True, False or None    decided, or not yet
    """

    SKIP, PROBES, SETTLE = 2, 4, 0.15

    def __init__(self, clock=time.perf_counter):
        self._keys = {}
        self._lock = threading.Lock()
        self._clock = clock          # the clock of record()'s start times

    def concurrent(self, key):
        with self._lock:
            k = self._keys.setdefault(key, {"choice": None, "whole_end": None})
            if k["choice"] is not None:
                return k["choice"]
            want = self.SKIP + self.PROBES   # whole-batch calls first, forward and backward
            trained = (False, "backward", "all") in k
            return len(k.get((False, "forward", "all"), [])) >= want and \
                (not trained or len(k[(False, "backward", "all")]) >= want)

    def record(self, key, concurrent, phase, start):
        end = self._clock()
        with self._lock:
            k = self._keys.get(key)
            if k is None or k["choice"] is not None:
                return
            if not concurrent:
                k["whole_end"] = end
                k.setdefault((False, phase, "all"), []).append(end - start)
            elif k["whole_end"] is not None and start - k["whole_end"] >= self.SETTLE:
                k.setdefault((True, phase, "all"), []).append(end - start)
            k["choice"] = self._decide(k)

    def choice(self, key):
        return self._keys.get(key, {}).get("choice")

    def _decide(self, k):
        def times(way, phase):
            return k.get((way, phase, "all"), [])[self.SKIP if not way else 0:]
        if min(len(times(way, "forward")) for way in (True, False)) < self.PROBES:
            return None
        trained = bool(times(False, "backward"))
        if trained and min(len(times(way, "backward")) for way in (True, False)) < self.PROBES:
            return None
        cost = {way: statistics.median(times(way, "forward")) +
                (statistics.median(times(way, "backward")) if trained else 0.0)
                for way in (True, False)}
        return cost[True] < cost[False]


def _cpus():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:              # not Linux
        return os.cpu_count() or 1


def _blas():
    """threadpoolctl's controller of this process's BLAS (made once), or None without it."""
    if "blas" not in _state:
        with _lock:
            if "blas" not in _state:
                try:
                    from threadpoolctl import ThreadpoolController
                    _state["blas"] = ThreadpoolController().select(user_api="blas")
                except ImportError:
                    _state["blas"] = None
    return _state["blas"]


def _worker():
    """The one worker thread that runs the second halves (started on first use)."""
    if "pool" not in _state:
        with _lock:
            if "pool" not in _state:
                from concurrent.futures import ThreadPoolExecutor
                _state["pool"] = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tidu-half")
    return _state["pool"]
