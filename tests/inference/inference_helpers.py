"""Helpers for the inference tests: a tiny CNN (random weights, non-trivial BatchNorm
statistics), its model card, and short test songs. No training: these tests check
plumbing and numerics, not accuracy.
"""

from __future__ import annotations

import numpy as np
from tiny_cnn import SAMPLE_RATE, build_tiny_model, tiny_card  # noqa: F401 - re-exported for the inference tests


def song(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    f = rng.uniform(150, 1500)
    wave = 0.3 * np.sin(2 * np.pi * f * t) * (1 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.2, 3) * t))
    return (wave + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
