"""Helpers for the inference tests: a tiny CNN (random weights, non-trivial BatchNorm
statistics), its model card, and short test songs. No training: these tests check
plumbing and numerics, not accuracy.
"""

from __future__ import annotations

import numpy as np
import torch
from tiny_cnn import SAMPLE_RATE, tiny_model_kwargs

from encore.models.classifier import EncoreModel

CARD_KWARGS = tiny_model_kwargs()


def build_tiny_model(seed: int = 0) -> EncoreModel:
    torch.manual_seed(seed)
    model = EncoreModel(**CARD_KWARGS)
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.running_mean.normal_(0, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.normal_(0, 0.2)
    return model.eval()


def tiny_card(**extra) -> dict:
    card = {
        "model_type": "cnn", "model_kwargs": CARD_KWARGS, "chunk_seconds": 1.0, "aggregate": "mean_probs",
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
