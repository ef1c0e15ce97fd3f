"""The whole model: log-mel front end, backbone, and one head per task.

Features are computed inside the model, so training, evaluation, explanation, the CLI,
the HTTP service and ONNX export all share one preprocessing path.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from encore.exceptions import ParameterError
from encore.features.logmel import LogMelSpectrogram, mel_frequencies
from encore.models.registry import create_model
from encore.models.spec_augment import SpecAugment

__all__ = ["EncoreModel", "MemberLinear", "SpecAugment"]


class MemberLinear(nn.Module):
    """One linear head per ensemble member, each on its own slice of the embedding.

    Args:
        n_members: Members; the input is their embeddings side by side.
        in_features: One member's embedding size.
        out_features: Outputs per member.

    Shape:
        ``(batch, n_members * in_features)`` -> ``(batch, n_members, out_features)``.
    """

    def __init__(self, n_members: int, in_features: int, out_features: int) -> None:
        super().__init__()
        self.n_members, self.in_features, self.out_features = n_members, in_features, out_features
        self.weight = nn.Parameter(torch.empty(n_members, out_features, in_features))
        self.bias = nn.Parameter(torch.empty(n_members, out_features))
        bound = 1.0 / in_features**0.5
        for k in range(n_members):  # each member initialised as nn.Linear would be
            nn.init.kaiming_uniform_(self.weight[k], a=5**0.5)
            nn.init.uniform_(self.bias[k], -bound, bound)

    def forward(self, embedding: Tensor) -> Tensor:
        parts = embedding.reshape(embedding.shape[0], self.n_members, self.in_features)
        return torch.einsum("bki,koi->bko", parts, self.weight) + self.bias


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
        n_members: Backbones with their own heads, trained side by side on the same
            batches, each on its own loss (:meth:`forward` with ``members=True``), and
            averaged: their logits' mean is the model's output (a deep ensemble,
            Lakshminarayanan et al. 2017, in one module, so the checkpoint, the Predictor,
            explanations and ONNX export treat it as one model). Each member draws its
            own SpecAugment masks and dropout. 1 = a single network.

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
        n_members: int = 1,
    ) -> None:
        super().__init__()
        if int(n_members) != n_members or n_members < 1:
            raise ParameterError(f"n_members={n_members!r} must be a positive integer (1 = a single network)")
        self.n_members = int(n_members)
        self.frontend = LogMelSpectrogram(**frontend)
        settings = self.frontend.settings()
        n_mels = settings["n_mels"]
        self.input_norm = nn.BatchNorm1d(n_mels)
        self.spec_augment: nn.Module = nn.Identity()
        if spec_augment:
            f_max = settings["f_max"] if settings["f_max"] is not None else settings["sample_rate"] / 2
            centers = mel_frequencies(n_mels + 2, f_min=settings["f_min"], f_max=f_max, mel_scale=settings["mel_scale"])[1:-1]
            self.spec_augment = SpecAugment(**spec_augment, mel_center_hz=centers)
        make_backbone = lambda: create_model(backbone, n_mels=n_mels, **(backbone_kwargs or {}))  # noqa: E731
        self.backbone: nn.Module = make_backbone() if self.n_members == 1 else nn.ModuleList(
            make_backbone() for _ in range(self.n_members)
        )
        self.dropout = nn.Dropout(dropout)
        self.label_names = list(label_names)
        self.tag_names = list(tag_names)
        self.regression_names = list(regression_names)
        dim = self.backbone.embedding_dim if self.n_members == 1 else self.backbone[0].embedding_dim
        self.embedding_dim = dim * self.n_members
        sizes = {"class": len(self.label_names), "tags": len(self.tag_names), "regression": len(self.regression_names)}
        self.heads = nn.ModuleDict({
            name: nn.Linear(dim, n) if self.n_members == 1 else MemberLinear(self.n_members, dim, n)
            for name, n in sizes.items() if n
        })

    def log_mel(self, waveform: Tensor) -> Tensor:
        """(batch, n_samples) -> normalised (batch, n_mels, n_frames), before augmentation.

        Always float32, also under a bfloat16 autocast: the log of a power spectrum
        needs the precision; the convolutions after it do not.
        """
        with torch.autocast(device_type=waveform.device.type, enabled=False):
            return self.input_norm(self.frontend(waveform.float()))

    def forward_features(self, waveform: Tensor) -> Tensor:
        """(batch, n_samples) -> (batch, embedding_dim); members' embeddings side by side."""
        return self.forward_features_from_log_mel(self.log_mel(waveform))

    def forward_features_from_log_mel(self, log_mel: Tensor) -> Tensor:
        if self.n_members == 1:
            return self.backbone(self.spec_augment(log_mel))
        return torch.cat([member(self.spec_augment(log_mel)) for member in self.backbone], dim=1)

    def forward_head(self, embedding: Tensor, *, members: bool = False) -> dict[str, Tensor]:
        """(batch, embedding_dim) -> logits per head: ``(batch, n)``, the members' mean, or
        with ``members`` each member's, ``(batch, n_members, n)``."""
        embedding = self.dropout(embedding)
        outputs = {}
        for name, head in self.heads.items():
            logits = head(embedding)
            if self.n_members == 1:
                outputs[name] = logits.unsqueeze(1) if members else logits
            else:
                outputs[name] = logits if members else logits.mean(dim=1)
        return outputs

    def forward(self, waveform: Tensor, *, members: bool = False) -> dict[str, Tensor]:
        """(batch, n_samples) -> {"class": (batch, n_classes), "tags": ..., "regression": ...} logits
        (``members``: ``(batch, n_members, n)`` each, for training each member on its own loss)."""
        return self.forward_head(self.forward_features(waveform), members=members)

    @torch.no_grad()
    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
