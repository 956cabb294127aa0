"""Keep freed array memory in the process (glibc): the fast paths' one process-wide setting.

glibc's malloc gives an array above its mmap threshold fresh pages from the kernel and, when
the free space at the top of its heap grows past the trim threshold, hands that space back.
Both thresholds adapt to the sizes freed so far, so whether a training step reuses warm memory
or page-faults its way through new zeroed pages depends on the order in which its arrays die.
With the numba max pool (which keeps an int8 index for backward instead of the pool's input)
keras.io's MNIST convnet fell on the wrong side: 2381 minor page faults per step (9 MB of
pages zeroed by the kernel, every step), against 0 for the NumPy path, and tidu[fast] ran
slower than plain tidu (bench/RESULTS.md: 1.86× torch against 1.29×; worse the busier the
machine, as each fault enters the kernel). With the thresholds fixed: 0 faults per step.

keep_freed_memory() sets, once per process, M_MMAP_THRESHOLD = 32 MiB (glibc's largest on
64-bit: arrays up to that size come from the heap) and M_TRIM_THRESHOLD = 128 MiB (up to that
much free heap is kept for the next step instead of returned). The cost is resident memory:
what a step freed stays mapped, as a framework's caching allocator would keep it. It is
called by the fast path's kernel modules on their first use and by every model's training
step when compile makes it (tidu.training.TrainStep), so the NumPy path has it too; elsewhere
than glibc (macOS, Windows, musl) it does nothing. The NumPy path faults as well, how much
depending on the process's history: in one bench-like process (1 BLAS thread, CPU time, 3
interleaved runs) the convnet made ~250 faults a step (cnn ~180) and this setting took its step
from 51.8/53.2/47.7 to 48.9/49.4/44.9 ms; in a fresh process with 2 BLAS threads and
TIDU_FAST=0 (train_on_batch, batch 128, 20 steps after 3) it made ~8,250 faults a step, 62-78
ms, and with the setting 0 faults and 31-32 ms.

TIDU_KEEP_MEMORY=0 in the environment leaves malloc as it is (keep_freed_memory() then does
nothing and returns False), for a process that shares its heap with code that wants glibc's
defaults, at the price of the page faults above.

alternate_empty(shape, dtype) is np.empty for a large array a training step makes anew every
step (the convolution's im2col matrix, tidu.functional.conv._in_chunks): it hands out, in
turn, one of two arrays kept per thread and shape, so that a step writes the array the step
before it did not use. On the 2-vCPU AMD EPYC host of bench/RESULTS.md, writing memory that
the other core's BLAS thread read shortly before is slow in some spells of the host (the
other core's copies of each line are invalidated first): filling LeNet's second im2col
matrix at batch 32 (4 MB) took 1.06-1.27 ms where the same copy into an array only this core
had touched took 0.16 (0.14 either way in fast spells). With malloc's reuse each step fills
the matrix the previous step's GEMMs read; with two arrays in turn it fills the one read a
step earlier, gone from the other core's caches by then.
"""
import collections
import ctypes
import ctypes.util
import os
import sys
import threading

import numpy as np

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3      # glibc's <malloc.h>
MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 128 << 20
_done = None


def keep_freed_memory():
    """Fix glibc's mmap and trim thresholds (see the module docstring), once; True when set."""
    global _done
    if _done is None:
        _done = False
        if sys.platform.startswith("linux") and os.environ.get("TIDU_KEEP_MEMORY", "1") != "0":
            try:
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                mallopt = libc.mallopt
            except (OSError, AttributeError):   # not glibc (musl has no mallopt)
                return _done
            mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
            _done = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and \
                bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _done


# alternate_empty's arrays: (thread, shape, dtype) -> up to COPIES arrays, least recently
# handed out first, each of at most MAX_BYTES (larger ones come from the kernel's fresh pages
# anyway: MMAP_THRESHOLD), all together at most TOTAL_BYTES (the least recently asked for keys
# are dropped first; LeNet's step asks for one key, 8 MB at batch 64). COPIES = 0: np.empty.
COPIES, MAX_BYTES, TOTAL_BYTES = 2, MMAP_THRESHOLD, TRIM_THRESHOLD
_spares = collections.OrderedDict()
_spares_lock = threading.Lock()


def alternate_empty(shape, dtype):
    """An uninitialised array like np.empty(shape, dtype): one of COPIES arrays kept for this
    thread, shape and dtype, made on the first calls, then the one handed out longest ago that
    nothing references any more (no array, view or graph's saved tensor holds it); a new
    array, not kept, when all are in use. See the module docstring for why. Thread-safe."""
    shape, dtype = tuple(shape), np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    if nbytes > MAX_BYTES or COPIES < 1 or not hasattr(sys, "getrefcount"):
        return np.empty(shape, dtype)
    key = (threading.get_ident(), shape, dtype)    # a thread's arrays stay in its core's cache
    with _spares_lock:
        arrays = _spares.pop(key, [])
        _spares[key] = arrays                      # the most recently asked for last
        if len(arrays) < COPIES:                   # make the COPIES first, then take turns
            arrays.append(np.empty(shape, dtype))
            total = sum(a.nbytes for kept in _spares.values() for a in kept)
            while total > TOTAL_BYTES and len(_spares) > 1:
                total -= sum(a.nbytes for a in _spares.popitem(last=False)[1])
            return arrays[-1]
        for i in range(len(arrays)):
            a = arrays[i]
            if sys.getrefcount(a) == 3:            # the list, `a`, getrefcount's argument
                arrays.append(arrays.pop(i))
                return a
    return np.empty(shape, dtype)                  # every copy still in use
