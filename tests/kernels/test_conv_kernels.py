"""The convolution kernel (tidu.kernels.conv, extra `fast`) against the NumPy taps, the reference.

The forward pass is the same code on both paths (bit for bit). The input gradient sums the
same terms in another order (window by window instead of tap by tap) from one GEMM instead
of kh·kw, so it is compared to float rounding: within 1e-6 of the largest |dL/dx| in float32
(1e-14 in float64); the kernel and bias gradients are the plain path's bit for bit. Each test
also checks that the kernel actually ran. Also here: the fast paths' malloc setting
(tidu.kernels.memory), which a convnet step needs to stop page-faulting.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

import tidu
import tidu.functional as F
import tidu.functional.conv as conv
from tidu import Tensor, gradcheck, kernels
from tidu.kernels import conv as conv_kernels_module
from tidu.kernels import memory

pytest.importorskip("numba")


@pytest.fixture
def calls(count_kernel_gets):
    """How many times Conv2D got the kernels (not None) from conv_kernels."""
    return count_kernel_gets(conv, "conv_kernels", conv_kernels_module.conv_kernels)


CASES = [  # x shape, kernel shape, strides, padding, dilation
    ((1, 7, 9, 3), (3, 3, 3, 4), 1, "valid", 1),           # batch 1
    ((2, 12, 12, 20), (5, 5, 20, 50), 1, "valid", 1),       # LeNet's second convolution
    ((2, 7, 9, 3), (3, 2, 3, 4), 2, "same", 1),             # strides 2, 'same', odd sizes
    ((3, 9, 8, 1), (3, 3, 1, 5), 1, "same", 1),             # C_in = 1
    ((2, 10, 11, 3), (3, 3, 3, 5), 1, "same", 2),           # dilation 2
    ((2, 11, 10, 1), (2, 3, 1, 4), 1, "valid", (2, 1)),     # dilation on one axis, C_in = 1
    ((3, 9, 8, 3), (2, 3, 3, 4), (2, 1), "valid", 1),       # strides (2, 1): the last row unused
    ((2, 9, 8, 3), (3, 3, 3, 4), 3, "same", 1),             # stride > window: gaps
    ((1, 5, 5, 2), (2, 2, 2, 3), 2, "same", 1),             # padding on the bottom/right only
]


def _run(fast, x, k, b, gy, strides, padding, dilation):
    kernels.set_enabled(fast)
    tx, tk, tb = (Tensor(a.copy(), requires_grad=True) for a in (x, k, b))
    y = F.conv2d(tx, tk, tb, strides, padding, dilation)
    y.backward(gy)
    return y.data, tx.grad, tk.grad, tb.grad


@pytest.mark.parametrize("dtype, tol", [(np.float32, 1e-6), (np.float64, 1e-14)])
@pytest.mark.parametrize("xs, ks, strides, padding, dilation", CASES)
def test_kernel_matches_the_numpy_path(rng, calls, dtype, tol, xs, ks, strides, padding, dilation):
    x, k, b = (rng.standard_normal(s).astype(dtype) for s in (xs, ks, ks[3:]))
    kernels.set_enabled(False)
    gy = rng.standard_normal(F.conv2d(Tensor(x), Tensor(k), None, strides, padding,
                                      dilation).shape).astype(dtype)
    y0, gx0, gk0, gb0 = _run(False, x, k, b, gy, strides, padding, dilation)
    assert calls[0] == 0
    y1, gx1, gk1, gb1 = _run(True, x, k, b, gy, strides, padding, dilation)
    assert calls[0] == 1 + (xs[3] == 1), "the kernels did not run"   # C_in = 1: the fill too
    assert gx1.dtype == gx0.dtype == dtype and gx1.shape == gx0.shape == x.shape
    np.testing.assert_array_equal(y1, y0)
    np.testing.assert_array_equal(gk1, gk0)
    np.testing.assert_array_equal(gb1, gb0)
    np.testing.assert_allclose(gx1, gx0, rtol=0, atol=tol * np.abs(gx0).max())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n, hw, window, strides, dilation, tiles", [
    (1, (28, 28), (5, 5), (1, 1), (1, 1), (2, 2)),      # batch 1, LeNet's first conv, pooled
    (32, (28, 28), (5, 5), (1, 1), (1, 1), (1, 1)),     # LeNet's first conv in training
    (2, (9, 7), (3, 2), (2, 1), (1, 2), (1, 1)),        # strides 2, dilation on one axis
    (3, (11, 13), (3, 3), (2, 2), (2, 1), (2, 3)),      # odd sizes, rows past the tiles
    (1, (5, 4), (5, 4), (1, 1), (1, 1), (1, 1)),        # one window
])
def test_one_channel_fill_copies_what_numpy_copies(rng, calls, dtype, n, hw, window, strides,
                                                   dilation, tiles):
    (H, W), (kh, kw), (sh, sw), (dh, dw), (th, tw) = hw, window, strides, dilation, tiles
    P = ((H - (kh - 1) * dh - 1) // sh + 1) // th
    Q = ((W - (kw - 1) * dw - 1) // sw + 1) // tw
    x2 = rng.standard_normal((n, H, W, 1)).astype(dtype)[..., 0]       # a view, as Conv2D's
    out = {}
    for fast in (False, True):
        kernels.set_enabled(fast)
        cols = np.full((kh * kw + 1, n, th, tw, P, Q), 7, dtype)      # + the row of ones
        conv._fill_one_channel(cols, x2, window, strides, dilation, tiles)
        out[fast] = cols
    assert calls[0] == 1, "the kernel did not run"
    np.testing.assert_array_equal(out[True], out[False])
    assert (out[True][-1] == 7).all()                                 # the bias row untouched


def test_non_contiguous_gradient_and_no_bias(rng, calls):
    """A gy that is a strided view, and a convolution without bias."""
    x = rng.standard_normal((2, 8, 8, 3)).astype(np.float32)
    k = rng.standard_normal((3, 3, 3, 4)).astype(np.float32)
    gy = rng.standard_normal((2, 6, 12, 4)).astype(np.float32)[:, :, ::2]
    grads = []
    for fast in (False, True):
        kernels.set_enabled(fast)
        tx = Tensor(x, requires_grad=True)
        F.conv2d(tx, Tensor(k)).backward(gy)
        grads.append(tx.grad)
    assert calls[0] == 1
    np.testing.assert_allclose(grads[1], grads[0], rtol=0, atol=1e-6 * np.abs(grads[0]).max())


@pytest.mark.parametrize("xs, ks, strides, padding, dilation",
                         [((2, 6, 7, 2), (3, 2, 2, 3), 2, "same", 1),
                          ((1, 7, 6, 1), (2, 3, 1, 2), 1, "valid", 2)])
def test_gradcheck_through_the_kernel(rng, calls, xs, ks, strides, padding, dilation):
    x, k, b = (rng.standard_normal(s) for s in (xs, ks, ks[3:]))
    gradcheck(lambda t, u, v: F.conv2d(t, u, v, strides, padding, dilation), x, k, b)
    assert calls[0] > 0


def test_the_switch_and_other_dtypes_fall_back_to_numpy(rng):
    assert conv_kernels_module.conv_kernels(np.float32) is not None
    assert conv_kernels_module.conv_kernels(np.float16) is None
    kernels.set_enabled(False)
    assert conv_kernels_module.conv_kernels(np.float32) is None
    x = Tensor(rng.standard_normal((1, 4, 4, 2)).astype(np.float16), requires_grad=True)
    F.conv2d(x, Tensor(np.ones((2, 2, 2, 1), np.float16))).backward(np.ones((1, 3, 3, 1), np.float16))
    assert x.grad.dtype == np.float16                            # the plain path still runs


STEPS = """
import resource, sys
import numpy as np
if sys.argv[1] == "keep":
    from tidu.kernels.memory import keep_freed_memory
    assert keep_freed_memory()

def step():                                  # 12 MB and 20 MB arrays, one freed in between
    a = np.ones((3 << 20,), np.float32)
    b = np.ones((5 << 20,), np.float32)
    del a
    c = np.ones((2 << 20,), np.float32)
    return float(b[0] + c[0])

step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def test_fast_paths_keep_freed_memory_across_steps():
    """On glibc the fast paths fix malloc's thresholds, so steps that free and allocate arrays
    of ~10 MB reuse the heap instead of page-faulting fresh pages (keras.io's convnet made
    ~2400 minor faults a step with the fast path on before). Each side in a fresh process:
    malloc's thresholds move with the process's history and are set once."""
    if not memory.keep_freed_memory():
        pytest.skip("not glibc: malloc's thresholds are left alone")
    assert conv_kernels_module.conv_kernels(np.float32) is not None and memory._done
    faults = {}
    for mode in ("default", "keep"):
        out = subprocess.run([sys.executable, "-c", STEPS, mode], capture_output=True, text=True,
                             check=True, cwd=os.path.dirname(os.path.dirname(tidu.__file__)))
        faults[mode] = int(out.stdout.split()[-1])
    assert faults["keep"] < 50, faults                    # 5 steps: ~2000 pages allocated
    assert faults["default"] > faults["keep"] + 200, faults


def _compile_in_a_fresh_process(env, check):
    """Compile a small model in a new Python with `env` added, then run the assertion `check`."""
    code = ("import sys\n"
            "from tidu import layers, models\n"
            "from tidu.kernels import memory\n"
            "assert memory._done is None\n"
            "m = models.Sequential([layers.Input((4,)), layers.Dense(2)])\n"
            "m.compile(optimizer='sgd', loss='mse')\n"
            f"assert {check}\n")
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, **env},
                   cwd=os.path.dirname(os.path.dirname(tidu.__file__)))


def test_the_numpy_path_keeps_freed_memory_too():
    """compile's training step sets the same thresholds with TIDU_FAST=0 (the NumPy path made
    ~8,250 faults a step on keras.io's convnet in a fresh process without it), numba unloaded."""
    if not memory.keep_freed_memory():
        pytest.skip("not glibc: malloc's thresholds are left alone")
    _compile_in_a_fresh_process({"TIDU_FAST": "0"}, "memory._done is True and 'numba' not in sys.modules")


def test_tidu_keep_memory_0_leaves_malloc_alone():
    """The user's switch: with TIDU_KEEP_MEMORY=0 compile's training step leaves malloc's
    thresholds as they are, and so does any later call (a fast kernel's first use)."""
    if not memory.keep_freed_memory():
        pytest.skip("not glibc: malloc's thresholds are left alone")
    _compile_in_a_fresh_process({"TIDU_KEEP_MEMORY": "0"},
                                "memory._done is False and memory.keep_freed_memory() is False")
