"""Helpers for the inference tests: a tiny CNN (random weights, non-trivial BatchNorm
statistics), its model card, and short test songs. No training: these tests check
plumbing and numerics, not accuracy.
"""

from __future__ import annotations

import numpy as np
from tiny_cnn import SAMPLE_RATE, build_tiny_model, tiny_model_kwargs  # noqa: F401 - build_tiny_model re-exported

CARD_KWARGS = tiny_model_kwargs()


def tiny_card(**extra) -> dict:
    card = {
        "model_type": "cnn",
        "model_kwargs": CARD_KWARGS,
        "chunk_seconds": 1.0,
        "aggregate": "mean_probs",
        "regression_stats": {"mean": [0.5], "std": [0.2]},
    }
    card.update(extra)
    return card


def song(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    f = rng.uniform(150, 1500)
    wave = 0.3 * np.sin(2 * np.pi * f * t) * (1 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.2, 3) * t))
    return (wave + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
