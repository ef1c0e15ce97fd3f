"""The whole model: log-mel front end, backbone, and one head per task.

Features are computed inside the model, so training, evaluation, explanation, the CLI,
the HTTP service and ONNX export all share one preprocessing path.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import torch
from torch import Tensor, nn

from encore.exceptions import ParameterError
from encore.features.logmel import LogMelSpectrogram, mel_frequencies
from encore.models.novelty import NoveltyProjection
from encore.models.registry import create_model, model_entry
from encore.models.spec_augment import SpecAugment

__all__ = ["EncoreModel", "MemberLinear", "SongLinear", "SpecAugment", "mel_band_statistics"]


def mel_band_statistics(log_mel: Tensor) -> Tensor:
    """(batch, n_mels, n_frames) -> (batch, 3 * n_mels), float32: per band, the mean over
    time, the standard deviation over time, and the mean absolute frame-to-frame change
    (the band's flux), in that order.
    """
    x = log_mel.float()
    blocks = [x.mean(dim=-1), x.std(dim=-1, unbiased=False), (x[..., 1:] - x[..., :-1]).abs().mean(dim=-1)]
    return torch.cat(blocks, dim=1)


class SongLinear(nn.Module):
    """A bias-free linear map whose weight is a buffer, zero until set.

    Gradient descent never moves it (the optimiser, weight decay and L1 see parameters
    only); the song-level refit (:func:`encore.train.refit.refit_heads`) writes it, and
    the checkpoint carries it.

    Shape:
        ``(batch, in_features)`` -> ``(batch, out_features)``.
    """

    weight: Tensor  # a buffer

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.register_buffer("weight", torch.zeros(out_features, in_features))

    def forward(self, x: Tensor) -> Tensor:
        return nn.functional.linear(x, self.weight.to(x.dtype))


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
        band_statistics: Append each mel band's mean, spread and flux over the chunk
            (:func:`mel_band_statistics`, on the normalised log-mel before augmentation)
            to the embedding, and give the tag and regression heads a :class:`SongLinear`
            path on them beside the backbone's (a wide path, Cheng et al. 2016, "Wide &
            Deep Learning"). The path is zero in training, so the backbone and every head
            train exactly as without it; the song-level refit fits it with the head. The
            class head never reads it.
        novelty: Give the model a :class:`NoveltyProjection` of :meth:`novelty_features`
            (fitted after training, see :mod:`encore.models.novelty`); in eval mode its
            output ``"novelty"``, whitened features rather than logits, is beside the heads'.

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
        band_statistics: bool = False,
        novelty: bool = False,
    ) -> None:
        super().__init__()
        if int(n_members) != n_members or n_members < 1:
            raise ParameterError(f"n_members={n_members!r} must be a positive integer (1 = a single network)")
        self.n_members = int(n_members)
        self.backbone_name = backbone
        self.frontend = LogMelSpectrogram(**frontend)
        settings = self.frontend.settings()
        n_mels = settings["n_mels"]
        # a ported backbone that normalises its own input (musicnn) declares input_norm=False
        self.input_norm: nn.Module = nn.BatchNorm1d(n_mels) if model_entry(backbone).input_norm else nn.Identity()
        self.spec_augment: nn.Module = nn.Identity()
        if spec_augment:
            f_max = settings["f_max"] if settings["f_max"] is not None else settings["sample_rate"] / 2
            centers = mel_frequencies(n_mels + 2, f_min=settings["f_min"], f_max=f_max, mel_scale=settings["mel_scale"])[1:-1]
            self.spec_augment = SpecAugment(**spec_augment, mel_center_hz=centers)
        make_backbone = lambda: create_model(backbone, n_mels=n_mels, **(backbone_kwargs or {}))  # noqa: E731
        self.backbone: nn.Module = (
            make_backbone() if self.n_members == 1 else nn.ModuleList(make_backbone() for _ in range(self.n_members))
        )
        self.dropout = nn.Dropout(dropout)
        self.label_names = list(label_names)
        self.tag_names = list(tag_names)
        self.regression_names = list(regression_names)
        first = self.backbone if self.n_members == 1 else next(self.backbone.children())
        dim = cast(int, first.embedding_dim)  # every registered backbone has one (models/registry.py)
        self.deep_dim = dim * self.n_members
        self.band_statistics = bool(band_statistics)
        n_statistics = 3 * n_mels if self.band_statistics else 0
        self.embedding_dim = self.deep_dim + n_statistics
        sizes = {"class": len(self.label_names), "tags": len(self.tag_names), "regression": len(self.regression_names)}
        self.heads = nn.ModuleDict(
            {
                name: nn.Linear(dim, n) if self.n_members == 1 else MemberLinear(self.n_members, dim, n)
                for name, n in sizes.items()
                if n
            }
        )
        self.novelty = NoveltyProjection(self.deep_dim + 3 * n_mels) if novelty else None
        self.band_heads = nn.ModuleDict(
            {name: SongLinear(n_statistics, n) for name, n in sizes.items() if n and n_statistics and name != "class"}
        )

    def log_mel(self, waveform: Tensor) -> Tensor:
        """(batch, n_samples) -> normalised (batch, n_mels, n_frames), before augmentation.

        Always float32, also under a bfloat16 autocast: the log of a power spectrum
        needs the precision; the convolutions after it do not.
        """
        with torch.autocast(device_type=waveform.device.type, enabled=False):
            return self.input_norm(self.frontend(waveform.float()))

    def forward_features(self, waveform: Tensor) -> Tensor:
        """(batch, n_samples) -> (batch, embedding_dim): members' embeddings side by side,
        then (with ``band_statistics``) the band statistics."""
        return self.forward_features_from_log_mel(self.log_mel(waveform))

    def forward_features_from_log_mel(self, log_mel: Tensor) -> Tensor:
        deep, statistics = self._deep(log_mel), self._statistics(log_mel)
        if statistics is None:
            return deep
        return torch.cat([deep.float(), statistics], dim=1)

    def _deep(self, log_mel: Tensor) -> Tensor:
        if self.n_members == 1:
            return self.backbone(self.spec_augment(log_mel))
        return torch.cat([member(self.spec_augment(log_mel)) for member in self.backbone.children()], dim=1)

    def _statistics(self, log_mel: Tensor) -> Tensor | None:
        if not self.band_statistics:
            return None
        # In training the wide path's weights are zero, so no gradient flows through it; detached,
        # it adds nothing to the backward pass either (not even a zero of another memory layout,
        # which would change the rounding of the log-mel's gradient). In eval, gradient-based
        # explanations see it.
        return mel_band_statistics(log_mel.detach() if self.training else log_mel)

    def forward_head(self, embedding: Tensor, *, members: bool = False) -> dict[str, Tensor]:
        """(batch, embedding_dim) -> logits per head: ``(batch, n)``, the members' mean, or
        with ``members`` each member's, ``(batch, n_members, n)``."""
        if not self.band_statistics:
            return self._heads(embedding, None, members)
        statistics, deep = embedding[:, self.deep_dim :], embedding[:, : self.deep_dim]
        if torch.is_autocast_enabled(deep.device.type):
            # back to the dtype the backbone gave (the statistics made the embedding float32)
            deep = deep.to(torch.get_autocast_dtype(deep.device.type))
        return self._heads(deep, statistics, members)

    def _heads(self, deep: Tensor, statistics: Tensor | None, members: bool) -> dict[str, Tensor]:
        deep = self.dropout(deep)
        outputs = {}
        for name, head in self.heads.items():
            logits = head(deep)
            if self.n_members == 1:
                logits = logits.unsqueeze(1)
            if statistics is not None and name in self.band_heads:  # the same wide path for every member
                logits = logits + self.band_heads[name](statistics).unsqueeze(1)
            outputs[name] = logits if members else logits.mean(dim=1)
        return outputs

    def forward(self, waveform: Tensor, *, members: bool = False) -> dict[str, Tensor]:
        """(batch, n_samples) -> {"class": (batch, n_classes), "tags": ..., "regression": ...} logits
        (``members``: ``(batch, n_members, n)`` each, for training each member on its own loss).

        The backbone's embedding goes to the heads as it is, not through the concatenation
        :meth:`forward_features` returns, so the wide path changes neither the values nor
        the memory layout the heads and the backward pass see: a network trains exactly as
        without it, in float32 as in bfloat16.
        """
        log_mel = self.log_mel(waveform)
        deep = self._deep(log_mel)
        outputs = self._heads(deep, self._statistics(log_mel), members)
        if self.novelty is not None and not self.training and not members:
            outputs["novelty"] = self.novelty(self._novelty_features(deep, log_mel))  # whitened, not logits
        return outputs

    def novelty_features(self, waveform: Tensor) -> Tensor:
        """(batch, n_samples) -> (batch, deep_dim + 3 * n_mels): the backbone's embedding and
        the log-mel's band statistics, what :mod:`encore.models.novelty` measures a song by."""
        log_mel = self.log_mel(waveform)
        return self._novelty_features(self._deep(log_mel), log_mel)

    @staticmethod
    def _novelty_features(deep: Tensor, log_mel: Tensor) -> Tensor:
        return torch.cat([deep.float(), mel_band_statistics(log_mel)], dim=1)
