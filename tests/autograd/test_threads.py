"""Autograd from several threads: grad mode per thread (PyTorch's rule), and a sweep whose
leaf gradients go to a dict instead of the leaves' .grad (two threads sweeping graphs over the
same weights at once: a training step's halves, tidu.training.step)."""
import threading

import numpy as np

from tidu import Tensor
from tidu.autograd import function as autograd_function, is_grad_enabled, no_grad


def test_grad_mode_is_per_thread():
    seen = {}
    inside, release = threading.Event(), threading.Event()

    def other():
        with no_grad():
            inside.set()
            release.wait(5)
            seen["other"] = is_grad_enabled()
    t = threading.Thread(target=other)
    t.start()
    inside.wait(5)
    seen["main"] = is_grad_enabled()
    a = Tensor(np.ones(3, np.float32), requires_grad=True)
    seen["recorded"] = (a * 2.0).requires_grad
    release.set()
    t.join()
    assert seen == {"other": False, "main": True, "recorded": True}
    box = []
    t = threading.Thread(target=lambda: box.append(is_grad_enabled()))
    with no_grad():                  # a new thread starts with grad mode on, as in PyTorch
        t.start()
        t.join()
    assert box == [True]


def test_a_sweep_into_a_dict_leaves_grad_alone():
    r = np.random.default_rng(0)
    w = Tensor(r.standard_normal((4, 3)).astype(np.float32), requires_grad=True)
    x = r.standard_normal((5, 4)).astype(np.float32)
    loss = ((Tensor(x) @ w) * (Tensor(x) @ w)).sum() + w.sum()
    into = {}
    autograd_function.backward(loss, np.asarray(0.5, np.float32), retain_graph=True, into=into)
    assert w.grad is None and set(into) == {id(w)}
    loss.backward()
    np.testing.assert_allclose(into[id(w)], 0.5 * w.grad, rtol=1e-6)
