"""The whole model: log-mel front end, backbone, and one head per task.

Features are computed inside the model, so training, evaluation, explanation, the CLI,
the HTTP service and ONNX export all share one preprocessing path.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from encore.features.logmel import LogMelSpectrogram, mel_frequencies
from encore.models.registry import create_model
from encore.models.spec_augment import SpecAugment

__all__ = ["EncoreModel", "SpecAugment"]


class EncoreModel(nn.Module):
    """Log-mel front end + backbone + heads; returns logits (never probabilities).

    Args:
        frontend: :class:`LogMelSpectrogram` settings.
        backbone: A registered backbone name (see ``encore.models.list_models``).
        backbone_kwargs: Extra keyword arguments for the backbone.
        label_names: Single-label classes (softmax head); empty for none.
        tag_names: Multi-label tags (sigmoid head); empty for none.
        regression_names: Scores to regress (e.g. ``["appeal"]``); empty for none.
        dropout: Dropout before the heads.
        spec_augment: SpecAugment settings, or None for none (active in training only).

    Example:
        >>> model = EncoreModel(frontend={"sample_rate": 16000}, backbone="small_cnn",
        ...                     label_names=["rock", "jazz"])
        >>> model.eval()(torch.zeros(2, 48000))["class"].shape
        torch.Size([2, 2])
    """

    def __init__(
        self,
        *,
        frontend: dict[str, Any],
        backbone: str,
        backbone_kwargs: dict[str, Any] | None = None,
        label_names: Sequence[str] = (),
        tag_names: Sequence[str] = (),
        regression_names: Sequence[str] = (),
        dropout: float = 0.3,
        spec_augment: dict[str, int] | None = None,
    ) -> None:
        super().__init__()
        self.frontend = LogMelSpectrogram(**frontend)
        settings = self.frontend.settings()
        n_mels = settings["n_mels"]
        self.input_norm = nn.BatchNorm1d(n_mels)
        self.spec_augment: nn.Module = nn.Identity()
        if spec_augment:
            f_max = settings["f_max"] if settings["f_max"] is not None else settings["sample_rate"] / 2
            centers = mel_frequencies(n_mels + 2, f_min=settings["f_min"], f_max=f_max, mel_scale=settings["mel_scale"])[1:-1]
            self.spec_augment = SpecAugment(**spec_augment, mel_center_hz=centers)
        self.backbone = create_model(backbone, n_mels=n_mels, **(backbone_kwargs or {}))
        self.dropout = nn.Dropout(dropout)
        self.label_names = list(label_names)
        self.tag_names = list(tag_names)
        self.regression_names = list(regression_names)
        dim = self.backbone.embedding_dim
        heads = {}
        if self.label_names:
            heads["class"] = nn.Linear(dim, len(self.label_names))
        if self.tag_names:
            heads["tags"] = nn.Linear(dim, len(self.tag_names))
        if self.regression_names:
            heads["regression"] = nn.Linear(dim, len(self.regression_names))
        self.heads = nn.ModuleDict(heads)

    def log_mel(self, waveform: Tensor) -> Tensor:
        """(batch, n_samples) -> normalised (batch, n_mels, n_frames), before augmentation.

        Always float32, also under a bfloat16 autocast: the log of a power spectrum
        needs the precision; the convolutions after it do not.
        """
        with torch.autocast(device_type=waveform.device.type, enabled=False):
            return self.input_norm(self.frontend(waveform.float()))

    def forward_features(self, waveform: Tensor) -> Tensor:
        """(batch, n_samples) -> (batch, embedding_dim)."""
        return self.forward_features_from_log_mel(self.log_mel(waveform))

    def forward_features_from_log_mel(self, log_mel: Tensor) -> Tensor:
        return self.backbone(self.spec_augment(log_mel))

    def forward_head(self, embedding: Tensor) -> dict[str, Tensor]:
        embedding = self.dropout(embedding)
        return {name: head(embedding) for name, head in self.heads.items()}

    def forward(self, waveform: Tensor) -> dict[str, Tensor]:
        """(batch, n_samples) -> {"class": (batch, n_classes), "tags": ..., "regression": ...} logits."""
        return self.forward_head(self.forward_features(waveform))

    @torch.no_grad()
    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
