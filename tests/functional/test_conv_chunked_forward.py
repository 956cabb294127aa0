"""Conv2D's forward fills the im2col matrix and multiplies it COLS_CHUNK_BYTES at a time (whole
images, tidu.functional.conv._in_chunks), whatever the chunk size (a chunk of one image, a last
chunk short, one chunk for the batch): the kept matrix and so every gradient are the one-piece
computation's bit for bit; the output too where the GEMM is as large as a real network's (the
first case: LeNet's second conv), else to float rounding (OpenBLAS's kernels for small products
may round a row differently with fewer rows: measured 2.4e-8 relative in the last case)."""
import numpy as np
import pytest

import tidu.functional as F
import tidu.functional.conv as conv_module
from tidu import Tensor, no_grad

# (x shape, kernel shape, strides, padding, dilation)
CASES = [
    ((64, 12, 12, 20), (5, 5, 20, 50), 1, "valid", 1),   # LeNet's second conv
    ((7, 9, 9, 3), (3, 3, 3, 5), 2, "same", 1),          # strides 2, 'same', odd batch
    ((1, 5, 5, 2), (3, 3, 2, 4), 1, "same", 1),          # batch 1
    ((5, 11, 11, 4), (3, 3, 4, 6), 1, "valid", 2),       # dilation
]


def run(monkeypatch, chunk_bytes, case, seed=0):
    xs, ks, s, pad, d = case
    monkeypatch.setattr(conv_module, "COLS_CHUNK_BYTES", chunk_bytes)
    r = np.random.default_rng(seed)
    x = Tensor(r.standard_normal(xs).astype(np.float32), requires_grad=True)
    k = Tensor(r.standard_normal(ks).astype(np.float32), requires_grad=True)
    b = Tensor(r.standard_normal(ks[3]).astype(np.float32), requires_grad=True)
    y = F.conv2d(x, k, b, strides=s, padding=pad, dilation_rate=d)
    y.backward(r.standard_normal(y.shape).astype(np.float32))
    return y.data, x.grad, k.grad, b.grad


@pytest.mark.parametrize("case", CASES)
def test_chunks_change_no_bit(monkeypatch, case):
    whole = run(monkeypatch, 1 << 40, case)
    calls = []
    matmul = np.matmul

    def counting(*args, **kwargs):
        # the chunks' GEMMs: im2col rows by the kernel (backward's read dL/dy, F columns)
        if "out" in kwargs and args[0].shape[-1] == np.prod(case[1][:3]):
            calls.append(args[0].shape)
        return matmul(*args, **kwargs)

    # one image a chunk; a few images (the last chunk short); the default
    for chunk in (1, 3 * 4 * 27, 1 << 20):
        monkeypatch.setattr(conv_module.np, "matmul", counting)
        calls.clear()
        parts = run(monkeypatch, chunk, case)
        monkeypatch.setattr(conv_module.np, "matmul", matmul)
        assert whole[0].dtype == parts[0].dtype
        if case is CASES[0]:
            assert np.array_equal(whole[0], parts[0])
        else:
            np.testing.assert_allclose(parts[0], whole[0], rtol=0,
                                       atol=1e-6 * np.abs(whole[0]).max())
        for a, b in zip(whole[1:], parts[1:]):      # dL/dx, dL/dK, dL/db
            assert a.dtype == b.dtype and np.array_equal(a, b)
        if chunk == 1:    # the chunking ran: one GEMM per image
            assert len(calls) == case[0][0]


def test_kept_matrix_is_the_whole_batchs(monkeypatch):
    """The matrix kept for dL/dK is the whole batch's im2col, rows in pixel order."""
    xs, ks = (3, 6, 6, 2), (3, 3, 2, 4)
    r = np.random.default_rng(1)
    x, k = r.standard_normal(xs).astype(np.float32), r.standard_normal(ks).astype(np.float32)
    monkeypatch.setattr(conv_module, "COLS_CHUNK_BYTES", 1)
    y, cols, ones_row = conv_module._im2col_gemm(x, k, None, (1, 1), (1, 1), (0, 0, 0, 0), (4, 4),
                                                 (1, 1))
    expect = np.stack([x[n, p:p + 3, q:q + 3].ravel() for n in range(3) for p in range(4)
                       for q in range(4)])
    assert not ones_row and np.array_equal(cols, expect)
    np.testing.assert_allclose(y, expect @ k.reshape(-1, 4), rtol=1e-5, atol=1e-5)


def test_float64_kernel_on_float32_input(monkeypatch):
    """The output takes the GEMM's result type, as one `cols @ kernel` does."""
    monkeypatch.setattr(conv_module, "COLS_CHUNK_BYTES", 1)
    x = np.ones((2, 4, 4, 2), np.float32)
    y = F.conv2d(x, np.ones((3, 3, 2, 3)), np.zeros(3)).data
    assert y.dtype == np.float64 and np.array_equal(y, np.full((2, 2, 2, 3), 18.0))


def test_inference_takes_its_own_chunk_size(monkeypatch):
    """Without a graph recorded the pieces are INFERENCE_COLS_CHUNK_BYTES, with one
    COLS_CHUNK_BYTES; the outputs agree (bit for bit on LeNet's second conv)."""
    xs, ks = CASES[0][:2]
    r = np.random.default_rng(2)
    x, k = r.standard_normal(xs).astype(np.float32), r.standard_normal(ks).astype(np.float32)
    calls, matmul = [], np.matmul

    def counting(*args, **kwargs):
        if "out" in kwargs:
            calls.append(args[0].shape[0])
        return matmul(*args, **kwargs)
    monkeypatch.setattr(conv_module.np, "matmul", counting)
    monkeypatch.setattr(conv_module, "COLS_CHUNK_BYTES", 1 << 40)
    monkeypatch.setattr(conv_module, "INFERENCE_COLS_CHUNK_BYTES", 1)
    with no_grad():
        pieces = F.conv2d(x, k).data
    assert calls == [64] * 64                        # one image (8 × 8 rows) a piece
    calls.clear()
    whole = F.conv2d(Tensor(x, requires_grad=True), k).data
    assert calls == [64 * 64]
    assert np.array_equal(pieces, whole)
