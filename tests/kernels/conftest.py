"""Shared by the kernel tests: the fast paths on for each test, and a counter of kernel uses."""
import pytest

from tidu import kernels


@pytest.fixture(autouse=True)
def _restore_switch():
    """Each test runs with the fast paths on (it may turn them off); afterwards the switch is
    put back as it was."""
    before = kernels.set_enabled(True)
    yield
    kernels.set_enabled(before)


@pytest.fixture
def count_kernel_gets(monkeypatch):
    """count(module, name, getter): patch module.<name> (how an op gets its kernels) with a
    wrapper of getter that counts the calls that got kernels (not None); returns the
    one-element count list."""
    def count(module, name, getter):
        got = [0]

        def counting(dtype):
            fast = getter(dtype)
            got[0] += fast is not None
            return fast
        monkeypatch.setattr(module, name, counting)
        return got
    return count
