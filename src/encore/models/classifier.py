"""The whole model: log-mel front end, backbone, and one head per task.

Features are computed inside the model, so training, evaluation, explanation, the CLI,
the HTTP service and ONNX export all share one preprocessing path.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from encore.features.logmel import LogMelSpectrogram
from encore.models.registry import create_model

__all__ = ["EncoreModel", "SpecAugment"]


class SpecAugment(nn.Module):
    """Time and frequency masking on a log-mel (Park et al. 2019); a no-op in eval mode.

    Masked cells are set to each item's mean, so masking does not inject a fake silence
    far below the clip's level.
    """

    def __init__(self, *, time_masks: int = 2, time_mask_frames: int = 12, freq_masks: int = 2, freq_mask_bins: int = 6) -> None:
        super().__init__()
        self.time_masks = time_masks
        self.time_mask_frames = time_mask_frames
        self.freq_masks = freq_masks
        self.freq_mask_bins = freq_mask_bins

    def _mask(self, x: Tensor, dim: int, n_masks: int, width: int) -> Tensor:
        if n_masks == 0 or width == 0:
            return x
        batch, size = x.shape[0], x.shape[dim]
        positions = torch.arange(size, device=x.device)
        keep = torch.ones(batch, size, dtype=torch.bool, device=x.device)
        for _ in range(n_masks):
            widths = torch.randint(0, width + 1, (batch, 1), device=x.device)
            starts = (torch.rand(batch, 1, device=x.device) * (size - widths).clamp(min=1)).long()
            keep &= ~((positions >= starts) & (positions < starts + widths))
        keep = keep.unsqueeze(2) if dim == 1 else keep.unsqueeze(1)
        fill = x.mean(dim=(1, 2), keepdim=True)
        return torch.where(keep, x, fill)

    def forward(self, log_mel: Tensor) -> Tensor:
        if not self.training:
            return log_mel
        log_mel = self._mask(log_mel, 1, self.freq_masks, self.freq_mask_bins)
        return self._mask(log_mel, 2, self.time_masks, self.time_mask_frames)


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
        n_mels = self.frontend.settings()["n_mels"]
        self.input_norm = nn.BatchNorm1d(n_mels)
        self.spec_augment = SpecAugment(**spec_augment) if spec_augment else nn.Identity()
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
        """(batch, n_samples) -> normalised (batch, n_mels, n_frames), before augmentation."""
        return self.input_norm(self.frontend(waveform))

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
