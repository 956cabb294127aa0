"""A worker's mailbox: its gradient and its weights in shared memory, read and written in place by
the server shards that run on the same machine (the Ray backend's fast path).

    worker m                                    server shard k, slice [lo, hi)
    --------                                    ------------------------------
    box = Mailbox(n, dtype)                     view = attach(box.address, lo, hi, dtype)
    g → box.g, push(m, box.address, ...)  ──▶   Δ from view.g, w ← w − Δ, view.w ← w
    w ← box.w                             ◀──   returns (τ, version): a few bytes

One memfd of 2n numbers, g then w, behind a 16-byte random token. The worker never touches the
mailbox while a call to a shard is in flight, and a shard touches it only inside such a call,
so there is no race. The shard opens the file as /proc/PID/fd/FD: no name in /dev/shm, nothing
left behind when the worker dies (the memory goes when the last mapping does). A shard that
cannot open it or reads another token (another machine, another PID namespace) says so, and
that worker sends that shard arrays through Ray instead. With TIDU_PS_MAILBOX=0 in the shards'
environment they never open one: every array goes through Ray, as between machines.
"""
import mmap
import os
import secrets

import numpy as np

TOKEN = 16  # bytes


class Mailbox:
    """Worker side: g and w, each n numbers of `dtype`, in one shared-memory file.

    address     (pid, fd, token, n): what a shard needs to find the mailbox and check it
    g, w        the two halves, writable numpy views
    """

    def __init__(self, n, dtype):
        dtype = np.dtype(dtype)
        size = TOKEN + 2 * n * dtype.itemsize
        self.fd = os.memfd_create("tidu-ps-mailbox")         # AttributeError/OSError off Linux
        os.ftruncate(self.fd, size)
        self.map = mmap.mmap(self.fd, size)
        token = secrets.token_bytes(TOKEN)
        self.map[:TOKEN] = token
        self.g, self.w = np.frombuffer(self.map, dtype, count=2 * n, offset=TOKEN).reshape(2, n)
        self.address = (os.getpid(), self.fd, token, n)


def new(n, dtype):
    """A Mailbox, or None where the platform has none (no memfd: the worker sends arrays)."""
    try:
        return Mailbox(n, dtype)
    except (AttributeError, OSError):
        return None


def attach(address, lo, hi, dtype):
    """Shard side: the (g, w) views of [lo, hi) of the mailbox at `address`, or None if this
    process cannot reach it (not the same machine, or the worker is gone)."""
    if os.environ.get("TIDU_PS_MAILBOX") == "0":
        return None
    pid, fd, token, n = address
    dtype = np.dtype(dtype)
    size = TOKEN + 2 * n * dtype.itemsize
    try:
        f = os.open(f"/proc/{pid}/fd/{fd}", os.O_RDWR)
    except OSError:
        return None
    try:
        if os.fstat(f).st_size != size:
            return None
        view = mmap.mmap(f, size)
    except OSError:
        return None
    finally:
        os.close(f)
    if view[:TOKEN] != token:
        view.close()
        return None
    both = np.frombuffer(view, dtype, count=2 * n, offset=TOKEN).reshape(2, n)
    return both[0, lo:hi], both[1, lo:hi]
