"""What the loop minimises and what it selects on: masked multi-task losses and
song-level validation metrics computed through the Predictor."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import spearmanr
from sklearn.metrics import f1_score

from encore.data.manifest import Manifest

__all__ = ["SplitData", "compute_losses", "select_split", "selection_score", "validation_metrics"]


@dataclass
class SplitData:
    """One split's songs and targets, aligned by position."""

    track_ids: list[str]
    waveforms: list[np.ndarray]
    classes: np.ndarray  # (n,) int, -1 = unlabelled
    tags: np.ndarray  # (n, n_tags), NaN rows = no evidence
    scores: np.ndarray  # (n, n_scores), NaN = missing


def select_split(manifest: Manifest, name: str, waveforms: Mapping[str, np.ndarray | None]) -> SplitData:
    """The songs of split ``name`` that decoded, with their targets."""
    frame = manifest.subset(name)
    decoded = np.array([waveforms.get(t) is not None for t in frame["track_id"]], dtype=bool)  # a mask, also when empty
    frame = frame[decoded].reset_index(drop=True)
    return SplitData(
        track_ids=list(frame["track_id"]),
        waveforms=[waveforms[t] for t in frame["track_id"]],
        classes=manifest.class_targets(frame),
        tags=manifest.tag_targets(frame),
        scores=manifest.regression_targets(frame),
    )


def compute_losses(
    outputs: Mapping[str, torch.Tensor],
    classes: torch.Tensor,
    classes_b: torch.Tensor,
    lam: float,
    tags: torch.Tensor,
    scores: torch.Tensor,
    class_weights: torch.Tensor | None,
) -> dict[str, torch.Tensor]:
    """One loss per head, each over the items that have that target.

    ``classes_b`` and ``lam`` are mixup's second targets and weight (``lam == 1``: no
    mixup). Tags take soft targets (listener shares); scores are standardised.
    Logits are cast to float32 first, so a bfloat16 forward pass keeps float32 losses.
    """
    losses: dict[str, torch.Tensor] = {}
    if "class" in outputs:
        mask = (classes >= 0) & (classes_b >= 0)
        if mask.any():
            logits = outputs["class"][mask].float()
            loss_a = F.cross_entropy(logits, classes[mask], weight=class_weights)
            loss_b = F.cross_entropy(logits, classes_b[mask], weight=class_weights) if lam < 1 else 0.0
            losses["class"] = lam * loss_a + (1 - lam) * loss_b
    if "tags" in outputs:
        mask = ~torch.isnan(tags).any(dim=1)
        if mask.any():
            losses["tags"] = F.binary_cross_entropy_with_logits(outputs["tags"][mask].float(), tags[mask])
    if "regression" in outputs:
        mask = ~torch.isnan(scores)
        if mask.any():
            losses["regression"] = F.mse_loss(outputs["regression"].float()[mask], scores[mask])
    return losses


def _spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    known = ~(np.isnan(a) | np.isnan(b))
    if known.sum() <= 2:
        return None
    rho = spearmanr(a[known], b[known]).statistic
    return float(0.0 if np.isnan(rho) else rho)


def validation_metrics(arrays: Mapping[str, np.ndarray], split: SplitData) -> dict[str, float]:
    """Song-level metrics from a Predictor's stacked arrays for ``split``'s songs.

    ``val_macro_f1`` averages over the classes present in the split (as the report does).
    """
    metrics: dict[str, float] = {}
    if "class_probs" in arrays:
        known = split.classes >= 0
        probs = arrays["class_probs"][known]
        truth = split.classes[known]
        if len(truth):
            pred = probs.argmax(1)
            metrics["val_loss"] = float(-np.log(np.clip(probs[np.arange(len(truth)), truth], 1e-7, 1)).mean())
            metrics["val_accuracy"] = float((pred == truth).mean())
            metrics["val_macro_f1"] = float(f1_score(truth, pred, average="macro", labels=np.unique(truth), zero_division=0))
    if "scores" in arrays and split.scores.size:
        rhos = [_spearman(arrays["scores"][:, j], split.scores[:, j]) for j in range(split.scores.shape[1])]
        if rhos and rhos[0] is not None:
            metrics["val_appeal_spearman"] = rhos[0]
    if "tag_probs" in arrays and split.tags.size:
        rhos = [_spearman(arrays["tag_probs"][:, j], split.tags[:, j]) for j in range(split.tags.shape[1])]
        rhos = [r for r in rhos if r is not None]
        if rhos:
            metrics["val_tags_spearman"] = float(np.mean(rhos))
    return metrics


def selection_score(metrics: Mapping[str, float]) -> float:
    """The number early stopping and the best checkpoint follow (higher is better)."""
    if "val_macro_f1" in metrics:
        extra = 0.01 * (metrics.get("val_appeal_spearman", 0.0) + metrics.get("val_tags_spearman", 0.0))
        return metrics["val_macro_f1"] + extra - 1e-4 * metrics["val_loss"]
    return metrics.get("val_appeal_spearman", 0.0) + metrics.get("val_tags_spearman", 0.0)
