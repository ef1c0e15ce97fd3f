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

__all__ = [
    "SplitData",
    "compute_losses",
    "evidence_weights",
    "select_split",
    "selection_score",
    "target_weights",
    "validation_metrics",
]


@dataclass
class SplitData:
    """One split's songs and targets, aligned by position."""

    track_ids: list[str]
    waveforms: list[np.ndarray]
    classes: np.ndarray  # (n,) int, -1 = unlabelled
    tags: np.ndarray  # (n, n_tags), NaN rows = no evidence
    scores: np.ndarray  # (n, n_scores), NaN = missing
    tag_noise: np.ndarray | None = None  # (n, n_tags) sampling variance of each share, NaN = unknown
    score_noise: np.ndarray | None = None  # (n, n_scores) sampling variance of each score, NaN = unknown


def select_split(manifest: Manifest, name: str, waveforms: Mapping[str, np.ndarray | None]) -> SplitData:
    """The songs of split ``name`` that decoded, with their targets."""
    frame = manifest.subset(name)
    decoded = np.array([waveforms.get(t) is not None for t in frame["track_id"]], dtype=bool)  # a mask, also when empty
    frame = frame[decoded].reset_index(drop=True)
    tag_noise, score_noise = manifest.target_noise(frame)
    return SplitData(
        track_ids=list(frame["track_id"]),
        waveforms=[w for t in frame["track_id"] if (w := waveforms[t]) is not None],  # all: frame kept the decoded ones
        classes=manifest.class_targets(frame),
        tags=manifest.tag_targets(frame),
        scores=manifest.regression_targets(frame),
        tag_noise=tag_noise,
        score_noise=score_noise,
    )


def evidence_weights(values: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """Inverse-variance weights for noisy per-song targets, one column per target.

    An observed rate is the song's true rate plus sampling noise of variance ``noise``
    (a share voted by few listeners is noisier). With ``tau2`` the spread of the true
    rates across songs (the observed variance less the mean noise, kept to at least a
    tenth of the observed variance), the weight ``1 / (tau2 + noise)`` is what a
    random-effects (meta-analysis) fit gives each song: a target the listeners agree on
    (small noise next to ``tau2``) weighs all songs about equally; a noisy target such as
    Emotify's amazement leans on the songs with many votes. Weights are scaled to mean 1
    over the songs with a target; songs whose noise is unknown get the mean noise, and
    songs without the target get 0.
    """
    weights = np.ones(values.shape, dtype=np.float32)
    for j in range(values.shape[1] if values.ndim == 2 else 0):
        known = np.isfinite(values[:, j])
        col_noise = noise[:, j]
        if known.sum() < 2 or not np.isfinite(col_noise[known]).any():
            continue
        mean_noise = float(np.nanmean(col_noise[known]))
        col_noise = np.where(np.isfinite(col_noise), col_noise, mean_noise)
        observed = float(np.var(values[known, j]))
        tau2 = max(observed - mean_noise, 0.1 * observed, 1e-12)
        w = np.where(known, 1.0 / (tau2 + col_noise), 0.0)
        weights[:, j] = w / w[known].mean()
    return weights


def target_weights(split: SplitData, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-song, per-target loss weights: ``(n, n_tags)`` and ``(n, n_scores)``.

    ``mode="none"``: all ones. ``mode="evidence"``: :func:`evidence_weights` from the
    manifest's support columns (``tag_support``, ``appeal_sd``); targets without them
    keep weight 1.
    """
    if mode not in ("none", "evidence"):
        raise ValueError(f"target weighting {mode!r} must be 'none' or 'evidence'")
    tag_w, score_w = np.ones(split.tags.shape, dtype=np.float32), np.ones(split.scores.shape, dtype=np.float32)
    if mode == "evidence":
        if split.tag_noise is not None and split.tags.size:
            tag_w = evidence_weights(split.tags, split.tag_noise)
        if split.score_noise is not None and split.scores.size:
            score_w = evidence_weights(split.scores, split.score_noise)
    return tag_w, score_w


def compute_losses(
    outputs: Mapping[str, torch.Tensor],
    classes: torch.Tensor,
    classes_b: torch.Tensor,
    lam: float,
    tags: torch.Tensor,
    scores: torch.Tensor,
    class_weights: torch.Tensor | None,
    tag_weights: torch.Tensor | None = None,
    score_weights: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """One loss per head, each over the items that have that target.

    ``classes_b`` and ``lam`` are mixup's second targets and weight (``lam == 1``: no
    mixup). Tags take soft targets (listener shares); scores are standardised.
    ``tag_weights`` and ``score_weights`` (shaped like ``tags`` and ``scores``) weigh each
    item's target, e.g. by how many listeners it rests on (:func:`target_weights`).
    Logits are cast to float32 first, so a bfloat16 forward pass keeps float32 losses.
    Logits of an ensemble, ``(batch, n_members, n)`` (``EncoreModel(..., members=True)``),
    give each member its own loss on the same targets; the losses returned are the
    members' mean, so each member learns as it would alone.
    """

    def head_losses(out: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        losses: dict[str, torch.Tensor] = {}
        if "class" in out:
            mask = (classes >= 0) & (classes_b >= 0)
            if mask.any():
                logits = out["class"][mask].float()
                loss_a = F.cross_entropy(logits, classes[mask], weight=class_weights)
                loss_b = F.cross_entropy(logits, classes_b[mask], weight=class_weights) if lam < 1 else 0.0
                losses["class"] = lam * loss_a + (1 - lam) * loss_b
        if "tags" in out:
            mask = ~torch.isnan(tags).any(dim=1)
            if mask.any():
                weight = tag_weights[mask] if tag_weights is not None else None
                losses["tags"] = F.binary_cross_entropy_with_logits(out["tags"][mask].float(), tags[mask], weight=weight)
        if "regression" in out:
            mask = ~torch.isnan(scores)
            if mask.any():
                squared = (out["regression"].float()[mask] - scores[mask]) ** 2
                losses["regression"] = (squared * score_weights[mask]).mean() if score_weights is not None else squared.mean()
        return losses

    first = next(iter(outputs.values()), None)
    if first is None or first.ndim == 2:
        return head_losses(outputs)
    per_member = [head_losses({name: logits[:, k] for name, logits in outputs.items()}) for k in range(first.shape[1])]
    return {name: torch.stack([m[name] for m in per_member]).mean() for name in per_member[0]}


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
        found = [r for r in rhos if r is not None]
        if found:
            metrics["val_tags_spearman"] = float(np.mean(found))
    return metrics


def selection_score(metrics: Mapping[str, float]) -> float:
    """The number early stopping and the best checkpoint follow (higher is better)."""
    if "val_macro_f1" in metrics:
        extra = 0.01 * (metrics.get("val_appeal_spearman", 0.0) + metrics.get("val_tags_spearman", 0.0))
        return metrics["val_macro_f1"] + extra - 1e-4 * metrics["val_loss"]
    return metrics.get("val_appeal_spearman", 0.0) + metrics.get("val_tags_spearman", 0.0)
