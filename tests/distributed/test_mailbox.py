"""The shared-memory mailbox: a shard in another process reads the worker's g and writes w in
place, and a shard that cannot reach the mailbox (wrong token, gone, other size) gets None."""
import os
import subprocess
import sys

import numpy as np
import pytest

from tidu.distributed import mailbox

pytestmark = pytest.mark.skipif(not hasattr(os, "memfd_create") or not os.path.isdir("/proc/self/fd"),
                                reason="mailboxes need Linux (memfd_create, /proc/PID/fd)")

SHARD = """
import sys, numpy as np
from tidu.distributed import mailbox
pid, fd, token, n, lo, hi = int(sys.argv[1]), int(sys.argv[2]), bytes.fromhex(sys.argv[3]), *map(int, sys.argv[4:7])
g, w = mailbox.attach((pid, fd, token, n), lo, hi, np.float32)
print(float(g.sum()))
w[:] = -g                                   # the shard's reply, written into the worker's memory
"""


def test_a_shard_in_another_process_reads_g_and_writes_w_in_place():
    box = mailbox.new(10, np.float32)
    box.g[:] = np.arange(10)
    pid, fd, token, n = box.address
    out = subprocess.run([sys.executable, "-c", SHARD, str(pid), str(fd), token.hex(), str(n), "3", "7"],
                         capture_output=True, text=True, check=True)
    assert float(out.stdout) == 3 + 4 + 5 + 6
    np.testing.assert_array_equal(box.w, [0, 0, 0, -3, -4, -5, -6, 0, 0, 0])


def test_a_mailbox_out_of_reach_is_none(monkeypatch):
    box = mailbox.new(10, np.float32)
    pid, fd, token, n = box.address
    g, w = mailbox.attach(box.address, 2, 5, np.float32)       # this process reaches it
    g[0] = 7
    assert box.g[2] == 7 and w.shape == (3,)
    assert mailbox.attach((pid, fd, bytes(16), n), 0, n, np.float32) is None          # another token
    assert mailbox.attach((pid, fd, token, n + 1), 0, n + 1, np.float32) is None      # another size
    assert mailbox.attach((pid, fd, token, n), 0, n, np.float64) is None              # another dtype
    assert mailbox.attach((pid, 10**6, token, n), 0, n, np.float32) is None           # no such file
    monkeypatch.setenv("TIDU_PS_MAILBOX", "0")
    assert mailbox.attach(box.address, 0, n, np.float32) is None                      # switched off
