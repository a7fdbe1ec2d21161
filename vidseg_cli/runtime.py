"""Device choice, seeding, mixed precision and the CPU cores a process may use, shared by the
stages and trainers."""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Iterator

import numpy as np

DEVICE_HELP = "auto (CUDA when present, else CPU), cpu, cuda or cuda:N."


def cpu_cores() -> int:
    """CPU cores this process may run on: its affinity (what a SLURM allocation or
    taskset gives it), else the machine's count."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # no affinity call on this platform
        return max(1, os.cpu_count() or 1)


def resolve_device(spec: str = "auto"):
    """A torch.device from `auto|cpu|cuda[:i]`; ValueError (one line) if unavailable."""
    import torch

    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"--device {spec}: CUDA is not available on this machine")
        dev = torch.device(spec)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"--device {spec}: only {torch.cuda.device_count()} CUDA device(s)")
        return dev
    raise ValueError(f"--device {spec!r}: expected {DEVICE_HELP}")


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextlib.contextmanager
def autocast(device, enabled: bool) -> Iterator[None]:
    """Mixed precision where asked: float16 on CUDA, bfloat16 on CPU."""
    import torch

    if not enabled:
        yield
        return
    dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    with torch.autocast(device_type=device.type, dtype=dtype):
        yield
