"""The CUDA tests skip with a reason without a GPU, and FAIL instead under
VIDSEG_CUDA_CHECK=1 (benchmarks/gpu/run.sh sets it on the GPU machine, where a skip would
hide a broken CUDA setup). Not VIDSEG_FULL_CHECK: CI's full check runs on a CPU."""

from __future__ import annotations

import os

import pytest

CUDA_CHECK = os.environ.get("VIDSEG_CUDA_CHECK") == "1"


@pytest.fixture(scope="session")
def cuda():
    """torch.device("cuda"), TF32 off for the float32 comparisons (tests that measure TF32
    turn it on themselves)."""
    import torch

    if not torch.cuda.is_available():
        if CUDA_CHECK:
            pytest.fail("VIDSEG_CUDA_CHECK=1 but torch sees no CUDA device")
        pytest.skip("needs a CUDA GPU (benchmarks/gpu/run.sh runs these on one; docs/gpu.md)")
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    return torch.device("cuda")
