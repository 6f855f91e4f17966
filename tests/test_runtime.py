"""damgraph.runtime: the device, the seeds, deterministic kernels and the allocator."""
import ctypes
import random

import numpy as np
import pytest
import torch

from damgraph import runtime
from damgraph.runtime import deterministic, resolve_device, reuse_freed_memory, seed_everything
from damgraph.training import fit


def test_cpu_resolves():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("cpu:0") == torch.device("cpu", 0)


@pytest.mark.parametrize("device, message", [
    ("tpu", "^unknown device 'tpu': use 'cpu' or 'cuda' \\(or 'cuda:N'\\)$"),
    ("", "^unknown device '': use 'cpu' or 'cuda'"),
    ("cuda:x", "^unknown device 'cuda:x'"),
    (None, "^unknown device None"),
    ("mps", "^unsupported device 'mps': use 'cpu' or 'cuda' \\(or 'cuda:N'\\)$"),
    ("meta", "^unsupported device 'meta'"),
])
def test_unknown_or_unsupported_devices_are_one_line_value_errors(device, message):
    with pytest.raises(ValueError, match=message) as err:
        resolve_device(device)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("device", ["cuda", "cuda:0"])
def test_cuda_without_a_gpu_says_so(device):
    if torch.cuda.is_available():
        assert resolve_device(device).type == "cuda"
        pytest.skip("this machine has a GPU")
    with pytest.raises(ValueError) as err:
        resolve_device(device)
    assert str(err.value) == f"device {device!r} was asked for but no GPU is available here; use device 'cpu'"


def _draws():
    return (random.random(), random.randint(0, 10 ** 9), np.random.rand(3).tolist(),
            torch.rand(3).tolist(), torch.randint(100, (4,)).tolist())


def test_seed_everything_reproduces_python_numpy_and_torch_draws():
    seed_everything(123)
    first = _draws()
    seed_everything(123)
    assert _draws() == first
    seed_everything(124)
    other = _draws()
    assert all(a != b for a, b in zip(first, other))  # every generator was reseeded
    # each generator on its own: seeding is the same as seeding that library directly
    seed_everything(7)
    values = (random.random(), float(np.random.rand()), torch.rand(1).item())
    random.seed(7)
    np.random.seed(7)
    torch.manual_seed(7)
    assert values == (random.random(), float(np.random.rand()), torch.rand(1).item())


@pytest.mark.parametrize("enabled, warn_only", [(False, False), (True, False), (True, True)])
def test_deterministic_sets_warn_only_mode_and_restores_the_setting(enabled, warn_only):
    before = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    try:
        torch.use_deterministic_algorithms(enabled, warn_only=warn_only)
        with deterministic():
            assert torch.are_deterministic_algorithms_enabled()
            assert torch.is_deterministic_algorithms_warn_only_enabled()
        assert torch.are_deterministic_algorithms_enabled() == enabled
        assert torch.is_deterministic_algorithms_warn_only_enabled() == warn_only
        with pytest.raises(RuntimeError, match="inside"):  # restored on an error too
            with deterministic():
                raise RuntimeError("inside")
        assert torch.are_deterministic_algorithms_enabled() == enabled
        assert torch.is_deterministic_algorithms_warn_only_enabled() == warn_only
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])


def test_deterministic_as_a_decorator():
    @deterministic()
    def inside():
        return torch.are_deterministic_algorithms_enabled()

    before = torch.are_deterministic_algorithms_enabled()
    assert inside() is True
    assert torch.are_deterministic_algorithms_enabled() == before


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                      "fsmblks", "uordblks", "fordblks", "keepcost")]


def _mallinfo():
    """glibc's malloc statistics (mallinfo2), or the test skipped."""
    libc = runtime._glibc()
    if libc is None or not hasattr(libc, "mallinfo2"):
        pytest.skip("needs glibc 2.33 or later (mallinfo2)")
    libc.mallinfo2.restype = _MallInfo2
    return libc.mallinfo2()


def _grows_mapped_memory():
    """Whether a fresh tensor larger than all the free memory glibc holds
    (and at least 64 MiB) gets its own mapping. A block freed inside the
    heap, below later allocations, stays in malloc's free lists after a
    trim and serves any request that fits in it, whatever the setting; a
    request larger than all of them cannot. The tensor is never written, so
    it costs no memory."""
    info = _mallinfo()
    size = (max(64 * 2 ** 20, info.fordblks + 64 * 2 ** 20)) // 4
    before = info.hblkhd  # bytes in separately mapped blocks
    block = torch.empty(size)
    grown = _mallinfo().hblkhd - before
    del block
    return grown >= 4 * size


def test_reuse_freed_memory_serves_large_tensors_from_the_heap_and_restores_the_defaults():
    assert _grows_mapped_memory()  # glibc's default: a block over 32 MB is mapped (and unmapped when freed)
    with reuse_freed_memory():
        assert not _grows_mapped_memory()
        with reuse_freed_memory():
            assert not _grows_mapped_memory()
        assert not _grows_mapped_memory()  # the outer block still holds the setting
    assert _grows_mapped_memory()


def test_reuse_freed_memory_holds_while_any_thread_is_inside():
    import threading

    entered, leave = threading.Event(), threading.Event()

    def other():
        with reuse_freed_memory():
            entered.set()
            leave.wait(10)

    worker = threading.Thread(target=other)
    worker.start()
    try:
        assert entered.wait(10)
        with reuse_freed_memory():
            pass
        assert not _grows_mapped_memory()  # the other thread's block is still open
    finally:  # a failure above must not leave the setting on for the tests after this one
        leave.set()
        worker.join(10)
    assert _grows_mapped_memory()


def test_training_runs_inside_reuse_freed_memory():
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    inside = []

    def loss(step):
        inside.append(not _grows_mapped_memory())
        return model(torch.ones(1, 2)).pow(2).sum()

    fit(model, optimizer, loss, None, lam=0.0, epochs=2, patience=2)
    assert inside == [True, True]
    assert _grows_mapped_memory()
