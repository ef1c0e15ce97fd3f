"""The tiny CNN's arguments shared by the inference, service and reliability tests.

8 kHz audio, 32 mel bands and a four-block ``small_cnn`` a few channels wide: fast enough
to build, save and run in every test that checks plumbing rather than accuracy.
"""

from __future__ import annotations

from typing import Any

import torch

from encore.models.card import ModelCard
from encore.models.classifier import EncoreModel

SAMPLE_RATE = 8000
LABEL_NAMES = ["ambient", "jazz", "rock"]


def tiny_model_kwargs(*, width: int = 16, tag_names: tuple[str, ...] = ("calm", "loud", "warm")) -> dict[str, Any]:
    """``EncoreModel`` arguments: 3 classes, ``tag_names`` tags, an appeal score; first block 8 channels."""
    return {
        "frontend": {"sample_rate": SAMPLE_RATE, "n_fft": 256, "hop_length": 128, "n_mels": 32, "f_max": 4000.0},
        "backbone": "small_cnn",
        "backbone_kwargs": {"channels": [8, width, width, width], "embedding_dim": width},
        "label_names": list(LABEL_NAMES),
        "tag_names": list(tag_names),
        "regression_names": ["appeal"],
        "dropout": 0.0,
    }


def tiny_card(*, network: dict[str, Any] | None = None, **fields: Any) -> ModelCard:
    """The tiny CNN's model card: 1-s chunks, mean probabilities, appeal scaled by 0.2 about 0.5; ``fields`` replace entries."""
    stored = {
        "card_version": 2,
        "network": network or tiny_model_kwargs(),
        "chunk": {"seconds": 1.0},
        "aggregate": "mean_probs",
        "regression_stats": {"mean": [0.5], "std": [0.2]},
    }
    return ModelCard.from_dict({**stored, **fields})


def build_tiny_model(seed: int = 0) -> EncoreModel:
    """The tiny CNN in eval mode with random weights and non-trivial BatchNorm statistics."""
    torch.manual_seed(seed)
    model = EncoreModel(**tiny_model_kwargs())
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.running_mean.normal_(0, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.normal_(0, 0.2)
    return model.eval()
