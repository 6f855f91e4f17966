"""Where and how a run executes: the device, the seeds, deterministic kernels."""
from __future__ import annotations

import contextlib
import random
from typing import Iterator, Optional

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
