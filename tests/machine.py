"""What this machine has, for tests that depend on it (bfloat16 in hardware, a GPU).

``ENCORE_TEST_CPU=avx2`` runs the suite as a CPU without bfloat16 in hardware sees it (no
AVX-512 BF16, no AMX, no oneDNN bfloat16), so a machine that has them can check that
nothing fails where they are missing; set ``ONEDNN_MAX_CPU_ISA=AVX2`` beside it for
AVX2 kernels too. ``tests/conftest.py`` imports this module first, so the fake is in
place before any test asks.
"""

from __future__ import annotations

import os

import pytest
import torch

if os.environ.get("ENCORE_TEST_CPU") == "avx2":
    torch.cpu._is_avx512_bf16_supported = lambda: False
    torch.cpu._is_amx_tile_supported = lambda: False
    torch.ops.mkldnn._is_mkldnn_bf16_supported = lambda: False


def _native_bf16() -> bool:
    from encore.inference.backends import bf16_supported

    return bf16_supported()


requires_native_bf16 = pytest.mark.skipif(not _native_bf16(), reason="this CPU has no bfloat16 in hardware (AVX-512 BF16 or AMX)")
"""Marks a test that forces ``train.precision: bf16``: it runs where the CPU has bfloat16 in hardware."""


requires_cuda = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine"),
]
"""Marks a test that runs on a CUDA GPU (``pytestmark = requires_cuda``; ``pytest -m cuda`` selects them)."""
