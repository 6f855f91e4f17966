"""Where and how a run executes: the device, the seeds, deterministic
kernels, and the C allocator's handling of large freed blocks."""
from __future__ import annotations

import contextlib
import ctypes
import functools
import random
import threading
from typing import Any, Iterator, Optional

import numpy as np
import torch


def resolve_device(device: str) -> torch.device:
    """:obj:`device` as a :class:`torch.device`, or a one-line
    :class:`ValueError` naming the fix when it is not available here."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"unknown device {device!r}: use 'cpu' or 'cuda' (or 'cuda:N')") from err
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"unsupported device {device!r}: use 'cpu' or 'cuda' (or 'cuda:N')")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was asked for but no GPU is available here; use device 'cpu'")
    return dev


class MemoryEstimateError(MemoryError):
    """A run whose tensors cannot fit, refused before anything is allocated."""


def available_memory(device: torch.device) -> Optional[int]:
    """Free bytes on :obj:`device`: ``MemAvailable`` of ``/proc/meminfo`` for
    the CPU, the driver's free memory for a GPU; ``None`` where unknown."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def check_memory(need: int, detail: str, device: torch.device, fix: str) -> None:
    """Raise :class:`MemoryEstimateError`, with the estimate, when
    :obj:`need` bytes are more than :obj:`device` has free."""
    free = available_memory(device)
    if free is not None and need > free:
        raise MemoryEstimateError(f"this run needs about {need / 2 ** 30:.1f} GiB ({detail}) but "
                                  f"{free / 2 ** 30:.1f} GiB are free on {device.type}; {fix}")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@contextlib.contextmanager
def deterministic() -> Iterator[None]:
    """Run the block with torch's deterministic algorithms (warn-only where a
    kernel has none), then restore the caller's setting. Without it, the
    parallel sums in message passing differ in the last bits from run to run
    on 2 threads, and rankings with near-ties (MRR) can change."""
    enabled = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(enabled, warn_only=warn_only)


#: glibc's ``mallopt`` parameters (malloc.h) and their defaults.
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4
_DEFAULT_TRIM_THRESHOLD, _DEFAULT_MMAP_MAX = 128 * 1024, 65536
_KEEP_TRIM_THRESHOLD = 2 ** 31 - 1  # the largest value mallopt takes: keep up to 2 GiB free at the heap's top
_heap_depth = 0  # blocks of reuse_freed_memory open now, in any thread
_heap_lock = threading.Lock()


@functools.lru_cache(maxsize=None)
def _glibc() -> Optional[Any]:
    """The process's C library when it is glibc (it has ``mallopt`` and
    ``malloc_trim``), else ``None``."""
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return None
    if not all(hasattr(libc, name) for name in ("mallopt", "malloc_trim", "gnu_get_libc_version")):
        return None
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.malloc_trim.argtypes = [ctypes.c_size_t]
    return libc


@contextlib.contextmanager
def reuse_freed_memory() -> Iterator[None]:
    """Inside the block, glibc's ``malloc`` serves every request from its
    heap and keeps freed memory for the next request, instead of mapping
    blocks over 32 MB afresh and unmapping them when freed; on leaving, its
    defaults return and the freed memory goes back to the system
    (``malloc_trim``). A training step on a large graph allocates and frees
    activations of hundreds of megabytes, and each fresh mapping is
    page-faulted in and zeroed by the kernel again: on a 200,000-node graph
    that was more than a quarter of an epoch's time. The price is a higher peak (freed
    blocks are held, and may be split), up to about half as much again
    (docs/speed-and-scale.md). Nested blocks keep the setting until the
    outermost ends (in any thread: the setting is the process's); without
    glibc nothing changes."""
    global _heap_depth
    libc = _glibc()
    if libc is None:
        yield
        return
    with _heap_lock:
        if _heap_depth == 0:
            libc.mallopt(_M_MMAP_MAX, 0)
            libc.mallopt(_M_TRIM_THRESHOLD, _KEEP_TRIM_THRESHOLD)
        _heap_depth += 1
    try:
        yield
    finally:
        with _heap_lock:
            _heap_depth -= 1
            if _heap_depth == 0:
                libc.mallopt(_M_MMAP_MAX, _DEFAULT_MMAP_MAX)
                libc.mallopt(_M_TRIM_THRESHOLD, _DEFAULT_TRIM_THRESHOLD)
                libc.malloc_trim(0)
