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
"""
import ctypes
import ctypes.util
import os
import sys

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
