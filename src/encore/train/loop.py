"""The CNN's training loop, top to bottom: data, model, optimiser, epochs, checkpoints.

Reads like nanoGPT's ``train.py``: ``get_lr``, a ``@torch.no_grad()`` evaluation, a log
line every N steps and one CSV row per epoch. A run folder holds ``checkpoint.pt`` (the
best weights with the model card), ``last.pt`` (everything needed to resume after a
crash), ``metrics.csv`` and ``config.yaml``.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import spearmanr
from sklearn.metrics import f1_score

import encore
from encore.audio.chunking import random_crop
from encore.config import EncoreConfig, save_config
from encore.data.manifest import Manifest
from encore.exceptions import ParameterError
from encore.inference.predictor import Predictor
from encore.models.checkpoint import load_checkpoint, save_checkpoint
from encore.models.classifier import EncoreModel
from encore.train.augment import augment_waveforms

logger = logging.getLogger(__name__)

__all__ = ["FitResult", "fit", "get_lr"]


@dataclass
class FitResult:
    run_dir: Path
    checkpoint: Path
    best_epoch: int
    best_metrics: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)


@dataclass
class _Split:
    track_ids: list[str]
    waveforms: list[np.ndarray]
    classes: np.ndarray  # (n,) int, -1 = unlabelled
    tags: np.ndarray  # (n, n_tags), NaN rows = no evidence
    scores: np.ndarray  # (n, n_scores), NaN = missing


def get_lr(step: int, *, total_steps: int, warmup_steps: int, base_lr: float) -> float:
    """Linear warmup, then cosine decay to a tenth of ``base_lr``."""
    if warmup_steps and step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return base_lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def _split(manifest: Manifest, name: str, waveforms: Mapping[str, np.ndarray | None]) -> _Split:
    frame = manifest.subset(name)
    frame = frame[[waveforms.get(t) is not None for t in frame["track_id"]]].reset_index(drop=True)
    return _Split(
        track_ids=list(frame["track_id"]),
        waveforms=[waveforms[t] for t in frame["track_id"]],
        classes=manifest.class_targets(frame),
        tags=manifest.tag_targets(frame),
        scores=manifest.regression_targets(frame),
    )


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        (decay if param.ndim >= 2 and "input_norm" not in name else no_decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _losses(
    outputs: dict[str, torch.Tensor],
    classes: torch.Tensor,
    classes_b: torch.Tensor,
    lam: float,
    tags: torch.Tensor,
    scores: torch.Tensor,
    class_weights: torch.Tensor | None,
) -> dict[str, torch.Tensor]:
    losses: dict[str, torch.Tensor] = {}
    if "class" in outputs:
        mask = (classes >= 0) & (classes_b >= 0)
        if mask.any():
            logits = outputs["class"][mask]
            loss_a = F.cross_entropy(logits, classes[mask], weight=class_weights)
            loss_b = F.cross_entropy(logits, classes_b[mask], weight=class_weights) if lam < 1 else 0.0
            losses["class"] = lam * loss_a + (1 - lam) * loss_b
    if "tags" in outputs:
        mask = ~torch.isnan(tags).any(dim=1)
        if mask.any():
            losses["tags"] = F.binary_cross_entropy_with_logits(outputs["tags"][mask], tags[mask])
    if "regression" in outputs:
        mask = ~torch.isnan(scores)
        if mask.any():
            losses["regression"] = F.mse_loss(outputs["regression"][mask], scores[mask])
    return losses


@torch.no_grad()
def evaluate_split(predictor: Predictor, split: _Split) -> dict[str, float]:
    """Song-level validation metrics through the Predictor (the one inference path)."""
    if not split.track_ids:
        return {}
    arrays = predictor.predict_arrays(split.waveforms)
    metrics: dict[str, float] = {}
    if "class_probs" in arrays:
        known = split.classes >= 0
        probs = arrays["class_probs"][known]
        truth = split.classes[known]
        if len(truth):
            pred = probs.argmax(1)
            metrics["val_loss"] = float(-np.log(np.clip(probs[np.arange(len(truth)), truth], 1e-7, 1)).mean())
            metrics["val_accuracy"] = float((pred == truth).mean())
            metrics["val_macro_f1"] = float(
                f1_score(truth, pred, average="macro", labels=range(probs.shape[1]), zero_division=0)
            )
    if "scores" in arrays and split.scores.size:
        known = ~np.isnan(split.scores[:, 0])
        if known.sum() > 2:
            rho = spearmanr(arrays["scores"][known, 0], split.scores[known, 0]).statistic
            metrics["val_appeal_spearman"] = float(0.0 if np.isnan(rho) else rho)
    return metrics


def _selection_score(metrics: Mapping[str, float]) -> float:
    if "val_macro_f1" in metrics:
        return metrics["val_macro_f1"] + 0.01 * metrics.get("val_appeal_spearman", 0.0) - 1e-4 * metrics["val_loss"]
    return metrics.get("val_appeal_spearman", 0.0)


def fit(
    manifest: Manifest,
    waveforms: Mapping[str, np.ndarray | None],
    config: EncoreConfig,
    run_dir: str | os.PathLike,
    *,
    manifest_path: str | None = None,
    callback: Callable[[dict[str, Any]], None] | None = None,
) -> FitResult:
    """Train the CNN described by ``config`` on ``manifest``'s train split.

    Resumes from ``run_dir/last.pt`` when it exists (a run killed mid-epoch restarts
    that epoch with the same seeds and reaches the same result).

    Args:
        manifest: Targets and splits.
        waveforms: Decoded songs by track id (None = failed to decode, skipped).
        config: The resolved configuration (saved into the run and the card).
        run_dir: The run folder.
        manifest_path: Recorded in the model card.
        callback: Called after each epoch with that epoch's row (for a progress bar).

    Returns:
        Where the best checkpoint is and its validation metrics.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    tc, ac = config.train, config.augment
    torch.set_num_threads(tc.num_threads or os.cpu_count() or 1)
    save_config(config, run_dir / "config.yaml")

    train, val = _split(manifest, "train", waveforms), _split(manifest, "val", waveforms)
    if not train.track_ids:
        raise ParameterError("the manifest's train split has no decodable songs; check `encore labels` output")
    n_classes = len(manifest.label_names)
    chunk_samples = int(round(tc.chunk_seconds * config.features.sample_rate))

    score_mean = np.nanmean(train.scores, axis=0) if train.scores.size else np.zeros(0)
    score_std = np.nanstd(train.scores, axis=0) if train.scores.size else np.ones(0)
    score_mean = np.nan_to_num(score_mean)
    score_std = np.where(np.isnan(score_std) | (score_std < 1e-6), 1.0, score_std)
    train_scores = (train.scores - score_mean) / score_std

    counts = np.bincount(train.classes[train.classes >= 0], minlength=n_classes).astype(np.float64)
    class_weights = None
    song_weights = np.ones(len(train.track_ids))
    if n_classes and tc.balance != "none":
        inv = np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / n_classes, 0.0)
        if tc.balance == "class_weight":
            class_weights = torch.tensor(inv, dtype=torch.float32)
        else:
            song_weights = np.array([inv[c] if c >= 0 else 1.0 for c in train.classes])

    model_kwargs = {
        "frontend": config.features.model_dump(),
        "backbone": config.model.name,
        "backbone_kwargs": dict(config.model.kwargs),
        "label_names": list(manifest.label_names),
        "tag_names": list(manifest.tag_names),
        "regression_names": list(manifest.regression_names),
        "dropout": config.model.dropout,
        "spec_augment": {
            "time_masks": ac.time_masks,
            "time_mask_frames": ac.time_mask_frames,
            "freq_masks": ac.freq_masks,
            "freq_mask_bins": ac.freq_mask_bins,
        },
    }
    card: dict[str, Any] = {
        "model_type": "cnn",
        "encore_version": encore.__version__,
        "model_kwargs": model_kwargs,
        "chunk_seconds": tc.chunk_seconds,
        "aggregate": tc.aggregate,
        "temperature": 1.0,
        "regression_stats": {"mean": score_mean.tolist(), "std": score_std.tolist()},
        "config": config.model_dump(mode="json"),
        "manifest": {"path": manifest_path, "digest": manifest.digest(), "summary": manifest.summary()},
    }

    torch.manual_seed(tc.seed)
    model = EncoreModel(**model_kwargs)
    optimizer = torch.optim.AdamW(_param_groups(model, tc.weight_decay), lr=tc.lr)
    steps_per_epoch = math.ceil(len(train.track_ids) * tc.chunks_per_song / tc.batch_size)
    total_steps = steps_per_epoch * tc.epochs
    warmup_steps = steps_per_epoch * tc.warmup_epochs

    start_epoch, best_score, best_epoch, stale = 1, -math.inf, 0, 0
    best_metrics: dict[str, float] = {}
    history: list[dict[str, float]] = []
    last_path, best_path = run_dir / "last.pt", run_dir / "checkpoint.pt"
    if last_path.exists():
        state = load_checkpoint(last_path)
        model.load_state_dict(state["model_state"])
        optimizer.load_state_dict(state["optimizer_state"])
        start_epoch = int(state["epoch"]) + 1
        best_score, best_epoch, stale = float(state["best_score"]), int(state["best_epoch"]), int(state["stale"])
        best_metrics = dict(state["best_metrics"])
        history = [dict(row) for row in state["history"]]
        logger.info("resuming %s from epoch %d", run_dir, start_epoch)
    metrics_csv = run_dir / "metrics.csv"

    for epoch in range(start_epoch, tc.epochs + 1):
        if stale >= tc.patience:
            break
        rng = np.random.default_rng([tc.seed, epoch])
        generator = torch.Generator().manual_seed(tc.seed * 100_003 + epoch)
        torch.manual_seed(tc.seed * 100_003 + epoch)
        n_draws = len(train.track_ids) * tc.chunks_per_song
        order = rng.choice(len(train.track_ids), size=n_draws, replace=tc.balance == "sampler", p=song_weights / song_weights.sum()) \
            if tc.balance == "sampler" else rng.permutation(np.repeat(np.arange(len(train.track_ids)), tc.chunks_per_song))
        model.train()
        t0, sums, n_seen = time.perf_counter(), {}, 0
        for step_in_epoch, start in enumerate(range(0, n_draws, tc.batch_size)):
            idx = order[start : start + tc.batch_size]
            if len(idx) < 2:  # BatchNorm needs two items
                continue
            step = (epoch - 1) * steps_per_epoch + step_in_epoch
            lr = get_lr(step, total_steps=total_steps, warmup_steps=warmup_steps, base_lr=tc.lr)
            for group in optimizer.param_groups:
                group["lr"] = lr
            batch = torch.from_numpy(np.stack([random_crop(train.waveforms[i], chunk_samples, rng) for i in idx]))
            batch = augment_waveforms(batch, ac, generator)
            classes = torch.from_numpy(train.classes[idx])
            tags = torch.from_numpy(train.tags[idx])
            scores = torch.from_numpy(train_scores[idx].astype(np.float32))
            classes_b, lam = classes, 1.0
            if ac.mixup_alpha > 0:
                lam = float(rng.beta(ac.mixup_alpha, ac.mixup_alpha))
                perm = torch.from_numpy(rng.permutation(len(idx)))
                batch = lam * batch + (1 - lam) * batch[perm]
                classes_b = classes[perm]
                tags = lam * tags + (1 - lam) * tags[perm]
                scores = lam * scores + (1 - lam) * scores[perm]
            outputs = model(batch)
            losses = _losses(outputs, classes, classes_b, lam, tags, scores, class_weights)
            loss = (
                tc.class_weight * losses.get("class", 0.0)
                + tc.tags_weight * losses.get("tags", 0.0)
                + tc.appeal_weight * losses.get("regression", 0.0)
            )
            if tc.l1 > 0:
                loss = loss + tc.l1 * sum(p.abs().sum() for p in model.parameters() if p.ndim >= 2)
            if not torch.is_tensor(loss):
                continue
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if tc.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
            optimizer.step()
            n_seen += len(idx)
            sums["loss"] = sums.get("loss", 0.0) + loss.item() * len(idx)
            for name, value in losses.items():
                sums[name] = sums.get(name, 0.0) + value.item() * len(idx)
            if (step_in_epoch + 1) % tc.log_every == 0:
                logger.info(
                    "epoch %d [%d/%d] loss %.4f lr %.2e %.1f samples/s",
                    epoch, step_in_epoch + 1, steps_per_epoch, loss.item(), lr, n_seen / (time.perf_counter() - t0),
                )

        predictor = Predictor(model.eval(), card, batch_size=64)
        val_metrics = evaluate_split(predictor, val)
        row = {
            "epoch": epoch,
            "lr": lr,
            "train_loss": sums.get("loss", 0.0) / max(n_seen, 1),
            **{f"train_{k}_loss": v / max(n_seen, 1) for k, v in sums.items() if k != "loss"},
            **val_metrics,
            "seconds": time.perf_counter() - t0,
            "samples_per_second": n_seen / (time.perf_counter() - t0),
        }
        history.append(row)
        score = _selection_score(val_metrics) if val_metrics else -row["train_loss"]
        if score > best_score:
            best_score, best_epoch, stale, best_metrics = score, epoch, 0, dict(val_metrics)
            card.update(
                metrics={"validation": best_metrics}, best_epoch=best_epoch,
                created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            )
            save_checkpoint(best_path, model, card)
        else:
            stale += 1
        _write_history(metrics_csv, history)
        save_checkpoint(
            last_path, model, card, optimizer_state=optimizer.state_dict(), epoch=epoch, best_score=best_score,
            best_epoch=best_epoch, stale=stale, best_metrics=best_metrics, history=history,
        )
        logger.info(
            "epoch %d done: train loss %.4f, %s (best epoch %d)",
            epoch, row["train_loss"], ", ".join(f"{k} {v:.3f}" for k, v in val_metrics.items()), best_epoch,
        )
        if callback is not None:
            callback(row)
    return FitResult(run_dir=run_dir, checkpoint=best_path, best_epoch=best_epoch, best_metrics=best_metrics, history=history)


def _write_history(path: Path, history: list[dict[str, float]]) -> None:
    keys: list[str] = []
    for row in history:
        keys.extend(k for k in row if k not in keys)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=keys)
        writer.writeheader()
        writer.writerows(history)
    os.replace(tmp, path)
