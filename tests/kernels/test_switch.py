"""The fast paths' one switch (tidu.kernels.enabled / set_enabled, TIDU_FAST)."""
import os
import subprocess
import sys

import pytest

from tidu import kernels


def test_tidu_fast_0_turns_every_kernel_off_without_importing_numba():
    code = ("import sys, numpy as np, tidu\n"
            "from tidu import kernels\n"
            "from tidu.optimizers import RMSprop\n"
            "assert not kernels.enabled()\n"
            "assert kernels.lstm_steps(np.float32) is None and RMSprop().fused() is None\n"
            "assert 'numba' not in sys.modules\n")
    env = {**os.environ, "TIDU_FAST": "0"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env,
                   cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))


def test_set_enabled_returns_the_previous_setting_and_checks_its_argument():
    before = kernels.set_enabled(False)
    try:
        assert not kernels.enabled()
        assert kernels.set_enabled(True) is False
        with pytest.raises(TypeError, match=r"kernels.set_enabled: expected True or False, got 1"):
            kernels.set_enabled(1)
    finally:
        kernels.set_enabled(before)
