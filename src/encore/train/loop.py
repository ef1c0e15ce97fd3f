"""The CNN's training loop, top to bottom: data, model, optimiser, epochs, checkpoints.

Reads like nanoGPT's ``train.py``: ``get_lr``, a ``@torch.no_grad()`` evaluation, a log
line every N steps and one CSV row per epoch. A run folder holds ``checkpoint.pt`` (the
best weights with the model card), ``last.pt`` (everything needed to resume after a
crash), ``metrics.csv`` and ``config.yaml``.

Speed on a CPU: the convolutions run in channels-last layout under a bfloat16 autocast
where the CPU has bfloat16 instructions (the log-mel stays float32); see
``bench/bench_train.py``. Under ``torchrun`` the loop is data-parallel (see
:mod:`encore.train.distributed`): every rank draws the same global batch order and
trains on its share of each batch, DDP averages the gradients, only rank 0 writes.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from encore.audio.chunking import random_crop
from encore.config import EncoreConfig, TrainConfig, save_config
from encore.csvfile import write_csv_rows
from encore.data.manifest import Manifest
from encore.exceptions import ParameterError
from encore.inference.backends import bf16_supported, card_wants_bf16
from encore.inference.predictor import Predictor
from encore.models.card import ChunkSpec, ManifestRecord, ModelCard, NetworkSpec, RegressionStats, TrainingRecord
from encore.models.checkpoint import load_checkpoint, save_checkpoint
from encore.models.classifier import EncoreModel
from encore.models.registry import model_entry
from encore.progress import ProgressHook, start_task
from encore.train.augment import augment_waveforms
from encore.train.distributed import DistributedContext, setup_distributed
from encore.train.ema import WeightAverage
from encore.train.feed import CropBank, to_device
from encore.train.objectives import (
    SplitData,
    compute_losses,
    select_split,
    selection_score,
    target_weights,
    validation_metrics,
)
from encore.train.finish import finish_checkpoint
from encore.train.refit import refit_heads
from encore.train.transfer import (
    adopt_source,
    cached_probe_logits,
    cached_song_bottoms,
    default_embedding_cache,
    fit_probe,
    freeze_body,
    load_body,
    probe_arrays,
    probe_song_embeddings,
    scale_body_lr,
    set_body_eval,
    top_embeddings,
    tune_top,
)

logger = logging.getLogger(__name__)

__all__ = ["FitResult", "clip_gradients", "fit", "get_lr", "resolve_precision"]


@dataclass
class FitResult:
    run_dir: Path
    checkpoint: Path
    best_epoch: int
    best_metrics: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)


def get_lr(step: int, *, total_steps: int, warmup_steps: int, base_lr: float) -> float:
    """Linear warmup, then cosine decay to a tenth of ``base_lr``."""
    if warmup_steps and step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return base_lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device`` (None = plain float32).

    ``auto`` takes bfloat16 only where the hardware has it (:func:`bf16_supported`);
    ``bf16`` also takes oneDNN's float32 emulation on other AVX-512 CPUs, with a warning
    that it is slower there.
    """
    if precision == "fp32":
        return None
    if precision == "auto":
        return torch.bfloat16 if bf16_supported(device) else None
    if not bf16_supported(device, native=False):
        raise ParameterError(f"train.precision='bf16' but this {device.type} has no bfloat16 support; use 'auto' or 'fp32'")
    if not bf16_supported(device):
        logger.warning("train.precision='bf16': this %s emulates bfloat16, which is slower than 'fp32' here", device.type)
    return torch.bfloat16


def clip_gradients(model: EncoreModel, max_norm: float) -> None:
    """Clip the gradient norm at ``max_norm``; an ensemble's members one by one.

    An ensemble's loss is its members' mean, so member ``k``'s gradient is its own loss's
    gradient over ``n_members``; clipping each member's share at ``max_norm / n_members``
    steps each member as its own run would (Adam does not see the constant factor). The
    shared front end is clipped on its own at ``max_norm``.
    """
    k_members = model.n_members
    if k_members == 1:
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
        return
    member_params = {id(p) for p in model.backbone.parameters()} | {id(p) for p in model.heads.parameters()}
    torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if id(p) not in member_params], max_norm)
    for k, member in enumerate(model.backbone.children()):
        grads = [p.grad for p in member.parameters() if p.grad is not None]
        grads += [p.grad[k] for p in model.heads.parameters() if p.grad is not None]  # MemberLinear: member first
        if not grads:
            continue
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
        factor = torch.clamp(max_norm / k_members / (norm + 1e-6), max=1.0)
        for g in grads:
            g.mul_(factor)


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (decay if param.ndim >= 2 and "input_norm" not in name else no_decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _standardise(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scores minus their mean over songs, over their standard deviation (NaN ignored).

    A score no song has (a catalogue without listener feedback) gets mean 0 and
    standard deviation 1, without numpy's empty-slice warnings.
    """
    finite = np.isfinite(scores)
    count = finite.sum(axis=0)
    filled = np.where(finite, scores, 0.0)
    mean = np.divide(filled.sum(axis=0), count, out=np.zeros(scores.shape[1:]), where=count > 0)
    var = np.divide(
        (np.where(finite, scores - mean, 0.0) ** 2).sum(axis=0), count, out=np.zeros(scores.shape[1:]), where=count > 0
    )
    std = np.sqrt(var)
    std = np.where(std < 1e-6, 1.0, std)
    mean, std = mean.astype(scores.dtype), std.astype(scores.dtype)
    return (scores - mean) / std, mean, std


def _balance(train: SplitData, n_classes: int, mode: str) -> tuple[torch.Tensor | None, np.ndarray]:
    """Class weights for the loss, or per-song sampling weights, from the train counts."""
    counts = np.bincount(train.classes[train.classes >= 0], minlength=n_classes).astype(np.float64)
    song_weights = np.ones(len(train.track_ids))
    if not n_classes or mode == "none":
        return None, song_weights
    inv = np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / n_classes, 0.0)
    if mode == "class_weight":
        return torch.tensor(inv, dtype=torch.float32), song_weights
    return None, np.array([inv[c] if c >= 0 else 1.0 for c in train.classes])


def _build_card(
    config: EncoreConfig, manifest: Manifest, network: NetworkSpec, stats: tuple, manifest_path: str | None
) -> ModelCard:
    tc = config.train
    return ModelCard(
        network=network,
        chunk=ChunkSpec(seconds=tc.chunk_seconds, hop_seconds=tc.chunk_hop_seconds or tc.chunk_seconds),
        aggregate=tc.aggregate,
        regression_stats=RegressionStats(mean=stats[0].tolist(), std=stats[1].tolist()),
        config=config.model_dump(mode="json"),
        manifest=ManifestRecord(path=manifest_path, digest=manifest.digest(), summary=manifest.summary()),
    )


def _network(config: EncoreConfig, manifest: Manifest) -> NetworkSpec:
    ac = config.augment
    return NetworkSpec(
        frontend=config.features,
        backbone=config.model.name,
        backbone_kwargs=dict(config.model.kwargs),
        label_names=list(manifest.label_names),
        tag_names=list(manifest.tag_names),
        regression_names=list(manifest.regression_names),
        dropout=config.model.dropout,
        n_members=config.model.members,
        band_statistics=config.model.band_statistics,
        novelty=config.model.novelty,
        spec_augment={
            "time_masks": ac.time_masks,
            "time_mask_frames": ac.time_mask_frames,
            "freq_masks": ac.freq_masks,
            "freq_mask_bins": ac.freq_mask_bins,
            "time_stretch": ac.time_stretch,
            "pitch_shift_semitones": ac.pitch_shift_semitones,
        },
    )


def _validate(model: EncoreModel, card: ModelCard, val: SplitData, ctx: DistributedContext) -> dict[str, float]:
    """Song-level validation metrics; each rank predicts its share, rank 0's view is shared."""
    if not val.track_ids:
        return {}
    predictor = Predictor(model.eval(), card, batch_size=64)
    mine = list(range(ctx.rank, len(val.track_ids), ctx.world_size))
    arrays = predictor.predict_arrays([val.waveforms[i] for i in mine]) if mine else {}
    parts = ctx.gather((mine, arrays))
    order = [i for idx, _ in parts for i in idx]
    keys = next((a.keys() for _, a in parts if a), ())
    stacked = {k: np.concatenate([a[k] for _, a in parts if a])[np.argsort(order)] for k in keys}
    return validation_metrics(stacked, val)


def fit(
    manifest: Manifest,
    waveforms: Mapping[str, np.ndarray | None],
    config: EncoreConfig,
    run_dir: str | os.PathLike,
    *,
    manifest_path: str | None = None,
    callback: Callable[[dict[str, Any]], None] | None = None,
    progress: ProgressHook | None = None,
) -> FitResult:
    """Train the CNN described by ``config`` on ``manifest``'s train split.

    Resumes from ``run_dir/last.pt`` when it exists (a run killed mid-epoch restarts
    that epoch with the same seeds and reaches the same result; a run started on N
    processes can resume on M).

    Args:
        manifest: Targets and splits.
        waveforms: Decoded songs by track id (None = failed to decode, skipped).
        config: The resolved configuration (saved into the run and the card).
        run_dir: The run folder.
        manifest_path: Recorded in the model card.
        callback: Called after each epoch with that epoch's row (for a progress bar); a
            probe with ``tune_top`` calls it after each epoch of tuning, a probe without none.
        progress: Starts a progress task for work that is not epochs (a probe embedding its
            training songs); see :data:`ProgressHook`.

    Returns:
        Where the best checkpoint is and its validation metrics.
    """
    run_dir = Path(run_dir)
    network = _network(config, manifest)
    if config.train.init_from:  # a published model brings its own front end, backbone and chunk length
        network, chunk_seconds = adopt_source(network, config.train.init_from, sample_rate=config.features.sample_rate)
        if chunk_seconds is not None:
            config = config.model_copy(update={"train": config.train.model_copy(update={"chunk_seconds": chunk_seconds})})
    tc, ac = config.train, config.augment
    ctx = setup_distributed(tc.device)
    torch.set_num_threads(tc.num_threads or max(1, (os.cpu_count() or 1) // ctx.world_size))
    if ctx.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(config, run_dir / "config.yaml")
    if tc.batch_size < 2 * ctx.world_size:
        raise ParameterError(f"train.batch_size={tc.batch_size} must give each of {ctx.world_size} processes at least 2 songs")

    train, val = select_split(manifest, "train", waveforms), select_split(manifest, "val", waveforms)
    if not train.track_ids:
        raise ParameterError("the manifest's train split has no decodable songs; check `encore labels` output")
    if tc.chunk_hop_seconds is not None and tc.chunk_hop_seconds > tc.chunk_seconds:
        raise ParameterError(
            f"train.chunk_hop_seconds={tc.chunk_hop_seconds} is longer than train.chunk_seconds={tc.chunk_seconds}: "
            "songs would be scored with gaps; use at most chunk_seconds"
        )
    train_scores, score_mean, score_std = _standardise(train.scores)
    class_weights, song_weights = _balance(train, len(manifest.label_names), tc.balance)
    tag_weights, score_weights = target_weights(train, tc.target_weighting)
    if class_weights is not None:
        class_weights = class_weights.to(ctx.device)

    card = _build_card(config, manifest, network, (score_mean, score_std), manifest_path)
    chunk_samples, hop_samples = card.chunk_samples, card.hop_samples
    torch.manual_seed(tc.seed)
    model = EncoreModel(**network.model_kwargs())
    if tc.init_from:
        card.transfer = {**load_body(model, network, tc.init_from), "frozen": tc.freeze_backbone}
        if tc.freeze_backbone:
            freeze_body(model)
    elif tc.freeze_backbone:
        raise ParameterError("train.freeze_backbone=true needs train.init_from (a run whose backbone to keep)")
    model = model.to(ctx.device)
    # a backbone slower in channels-last memory (musicnn's tall filters) stays contiguous
    channels_last = tc.channels_last and model_entry(network.backbone).channels_last
    if channels_last:
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # documented; torch's overloads omit it
    amp_dtype = resolve_precision(tc.precision, ctx.device)
    card.training = TrainingRecord(
        precision=str(amp_dtype or torch.float32).replace("torch.", ""), channels_last=channels_last, world_size=ctx.world_size
    )
    if tc.freeze_backbone:
        return _fit_probe(
            model,
            card,
            train,
            val,
            run_dir,
            chunk_samples,
            hop_samples,
            train_scores,
            tc,
            class_weights,
            ctx,
            callback,
            progress,
        )
    on_gpu = ctx.device.type == "cuda"
    if on_gpu:
        torch.backends.cudnn.benchmark = True  # fixed chunk shapes: let cuDNN pick its fastest kernels once
    groups = _param_groups(model, tc.weight_decay)
    optimizer = torch.optim.AdamW(
        scale_body_lr(model, groups, tc.init_lr_scale) if tc.init_from else groups, lr=tc.lr, fused=on_gpu or None
    )
    steps_per_epoch = math.ceil(len(train.track_ids) * tc.chunks_per_song / tc.batch_size)
    total_steps, warmup_steps = steps_per_epoch * tc.epochs, steps_per_epoch * tc.warmup_epochs

    start_epoch, best_score, best_epoch, stale = 1, -math.inf, 0, 0
    best_metrics: dict[str, float] = {}
    history: list[dict[str, float]] = []
    last_path, best_path = run_dir / "last.pt", run_dir / "checkpoint.pt"
    state: dict[str, Any] = {}
    if last_path.exists():
        state = load_checkpoint(last_path)
        model.load_state_dict(state["model_state"])
        optimizer.load_state_dict(state["optimizer_state"])
        start_epoch = int(state["epoch"]) + 1
        best_score, best_epoch, stale = float(state["best_score"]), int(state["best_epoch"]), int(state["stale"])
        best_metrics = dict(state["best_metrics"])
        history = [dict(row) for row in state["history"]]
        logger.info("resuming %s from epoch %d", run_dir, start_epoch)
    average = WeightAverage(model, tc.ema_decay) if tc.ema_decay else None
    if average is not None and "ema_state" in state:
        average.module.load_state_dict(state["ema_state"])
    net: Callable[..., Any] = DistributedDataParallel(model) if ctx.active else model
    if tc.compile:
        net = torch.compile(net)
    autocast = (lambda: torch.autocast(ctx.device.type, dtype=amp_dtype)) if amp_dtype else contextlib.nullcontext
    # On a GPU the songs go to the device once and each batch is cropped there (see encore.train.feed).
    bank = CropBank(train.waveforms, chunk_samples, ctx.device) if on_gpu else None

    for epoch in range(start_epoch, tc.epochs + 1):
        if stale >= tc.patience:
            break
        rng = np.random.default_rng([tc.seed, epoch])
        # gain and noise are drawn where the crops are: on the GPU with the bank, else on the host
        generator = torch.Generator(device=ctx.device if bank is not None else "cpu").manual_seed(tc.seed * 100_003 + epoch)
        torch.manual_seed(tc.seed * 100_003 + epoch * 7919 + ctx.rank)
        n_draws = len(train.track_ids) * tc.chunks_per_song
        if tc.balance == "sampler":
            order = rng.choice(len(train.track_ids), size=n_draws, replace=True, p=song_weights / song_weights.sum())
        else:
            order = rng.permutation(np.repeat(np.arange(len(train.track_ids)), tc.chunks_per_song))
        model.train()
        if tc.freeze_backbone:
            set_body_eval(model)
        t0, n_seen, lr = time.perf_counter(), 0, tc.lr
        sums: dict[str, torch.Tensor] = {}
        for step_in_epoch, start in enumerate(range(0, n_draws, tc.batch_size)):
            global_idx = order[start : start + tc.batch_size]
            if len(global_idx) < 2 * ctx.world_size:  # BatchNorm needs two items per process
                continue
            step = (epoch - 1) * steps_per_epoch + step_in_epoch
            lr = get_lr(step, total_steps=total_steps, warmup_steps=warmup_steps, base_lr=tc.lr)
            for group in optimizer.param_groups:
                group["lr"] = lr * group.get("lr_scale", 1.0)
            # Every rank draws the whole batch's crops and noise (same RNG stream), then keeps its share.
            if bank is not None:
                crops = bank.crops(global_idx, rng)
            else:
                crops = torch.from_numpy(np.stack([random_crop(train.waveforms[i], chunk_samples, rng) for i in global_idx]))
            batch = augment_waveforms(crops, ac, generator)
            classes, tags, scores, tag_w, score_w = (
                to_device(a, ctx.device)
                for a in (
                    train.classes[global_idx],
                    train.tags[global_idx],
                    train_scores[global_idx].astype(np.float32),
                    tag_weights[global_idx],
                    score_weights[global_idx],
                )
            )
            classes_b, lam = classes, 1.0
            if ac.mixup_alpha > 0:
                lam = float(rng.beta(ac.mixup_alpha, ac.mixup_alpha))
                perm = torch.from_numpy(rng.permutation(len(global_idx))).to(batch.device)
                batch = lam * batch + (1 - lam) * batch[perm]
                classes_b = classes[perm]
                tags = lam * tags + (1 - lam) * tags[perm]
                scores = lam * scores + (1 - lam) * scores[perm]
                tag_w = lam * tag_w + (1 - lam) * tag_w[perm]
                score_w = lam * score_w + (1 - lam) * score_w[perm]
            mine = slice(ctx.rank, None, ctx.world_size)
            batch, classes, classes_b, tags, scores, tag_w, score_w = (
                t[mine].to(ctx.device, non_blocking=True) for t in (batch, classes, classes_b, tags, scores, tag_w, score_w)
            )
            with autocast():
                outputs = net(batch, members=True)  # (batch, n_members, n): each member learns on its own loss
            losses = compute_losses(outputs, classes, classes_b, lam, tags, scores, class_weights, tag_w, score_w)
            loss = (
                tc.class_weight * losses.get("class", 0.0)
                + tc.tags_weight * losses.get("tags", 0.0)
                + tc.appeal_weight * losses.get("regression", 0.0)
            )
            if tc.l1 > 0:
                loss = loss + tc.l1 * sum(p.abs().sum() for p in model.parameters() if p.ndim >= 2 and p.requires_grad)
            if not torch.is_tensor(loss):
                continue
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if tc.grad_clip:
                clip_gradients(model, tc.grad_clip)
            optimizer.step()
            if average is not None:
                average.update(model, step)
            n_seen += len(batch)
            # summed on the device: a .item() per step would make the host wait for the GPU every step
            sums["loss"] = sums.get("loss", 0.0) + loss.detach() * len(batch)
            for name, value in losses.items():
                sums[name] = sums.get(name, 0.0) + value.detach() * len(batch)
            if ctx.is_main and (step_in_epoch + 1) % tc.log_every == 0:
                logger.info(
                    "epoch %d [%d/%d] loss %.4f lr %.2e %.1f samples/s",
                    epoch,
                    step_in_epoch + 1,
                    steps_per_epoch,
                    loss.item(),
                    lr,
                    n_seen * ctx.world_size / (time.perf_counter() - t0),
                )

        totals = ctx.sum_floats({**{k: float(v) for k, v in sums.items()}, "n_seen": float(n_seen)})
        n_total = max(totals.pop("n_seen", 0.0), 1.0)
        train_seconds = time.perf_counter() - t0
        scored = average.module if average is not None else model  # what validation and the checkpoint use
        val_metrics = _validate(scored, card, val, ctx)
        row = {
            "epoch": epoch,
            "lr": lr,
            "train_loss": totals.get("loss", 0.0) / n_total,
            **{f"train_{k}_loss": v / n_total for k, v in totals.items() if k != "loss"},
            **val_metrics,
            "seconds": time.perf_counter() - t0,
            "samples_per_second": n_total / train_seconds,
        }
        history.append(row)
        score = selection_score(val_metrics) if val_metrics else -row["train_loss"]
        if tc.select == "last":  # the full schedule: every epoch replaces the checkpoint
            score = float(epoch)
        if score > best_score:
            best_score, best_epoch, stale, best_metrics = score, epoch, 0, dict(val_metrics)
            card.metrics = {"validation": best_metrics}
            card.best_epoch = best_epoch
            card.created_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
            if ctx.is_main:
                save_checkpoint(best_path, scored, card)
        else:
            stale += 1
        if ctx.is_main:
            write_csv_rows(run_dir / "metrics.csv", history)
            save_checkpoint(
                last_path,
                model,
                card,
                optimizer_state=optimizer.state_dict(),
                epoch=epoch,
                best_score=best_score,
                best_epoch=best_epoch,
                stale=stale,
                best_metrics=best_metrics,
                history=history,
                **({"ema_state": average.module.state_dict()} if average is not None else {}),
            )
            logger.info(
                "epoch %d done: train loss %.4f, %s (best epoch %d)",
                epoch,
                row["train_loss"],
                ", ".join(f"{k} {v:.3f}" for k, v in val_metrics.items()),
                best_epoch,
            )
            if callback is not None:
                callback(row)
        ctx.barrier()

    if ctx.is_main and best_path.exists():
        finish_checkpoint(
            best_path,
            train,
            val,
            refit=list(tc.refit_heads),
            novelty=config.model.novelty,
            train_scores=train_scores,
            seed=tc.seed,
        )
    ctx.barrier()
    ctx.close()
    return FitResult(run_dir=run_dir, checkpoint=best_path, best_epoch=best_epoch, best_metrics=best_metrics, history=history)


def _fit_probe(
    model: EncoreModel,
    card: ModelCard,
    train: SplitData,
    val: SplitData,
    run_dir: Path,
    chunk_samples: int,
    hop_samples: int,
    train_scores: np.ndarray,
    tc: TrainConfig,
    class_weights: torch.Tensor | None,
    ctx: DistributedContext,
    callback: Callable[[dict[str, Any]], None] | None,
    progress: ProgressHook | None,
) -> FitResult:
    """``freeze_backbone``: the song-level probe instead of the epoch loop (see :func:`encore.train.transfer.fit_probe`),
    then with ``tune_top`` the backbone's top fine-tuned on cached chunks (:func:`encore.train.transfer.tune_top`)."""
    best_path = run_dir / "checkpoint.pt"
    metrics: dict[str, float] = {}
    if ctx.is_main:
        card.aggregate = card.aggregate_tags = "mean_logits"  # exact: each head is a linear map of the mean embedding
        published = bool((card.transfer or {}).get("published"))
        cache_dir = default_embedding_cache() if published else None
        spec: dict[str, Any] = {"chunk_samples": chunk_samples, "hop_samples": hop_samples, "bf16": card_wants_bf16(card)}
        n_train = len(train.track_ids)
        embedded = start_task(progress, f"embed {n_train} training songs", n_train)
        bottoms = (
            cached_song_bottoms(model, train.waveforms, cache_dir=cache_dir, callback=embedded, **spec) if tc.tune_top else None
        )
        report = fit_probe(
            model,
            train,
            scores=train_scores,
            seed=tc.seed,
            cache_dir=cache_dir,
            embeddings=top_embeddings(model, bottoms, bf16=spec["bf16"]) if bottoms is not None else None,
            heads=["class"] if bottoms is not None else None,  # the others are fitted once, on the tuned embeddings
            callback=embedded,
            **spec,
        )
        if bottoms is not None:
            embeddings, report["top"] = tune_top(
                model,
                train,
                bottoms,
                epochs=tc.epochs,
                lr=tc.lr,
                lr_scale=tc.init_lr_scale,
                batch_size=tc.batch_size,
                weight_decay=tc.weight_decay,
                seed=tc.seed,
                class_weights=class_weights,
                bf16=spec["bf16"],
                callback=callback,
            )
            heads = [h for h in ("tags", "regression") if h in model.heads]  # again, on the tuned embeddings
            report.update(refit_heads(model, train, heads, scores=train_scores, seed=tc.seed, embeddings=embeddings, **spec))
            card.transfer = {**(card.transfer or {}), "tuned_top": True}
        card.probe = report
        card.refit = {k: v for k, v in report.items() if k != "class"}  # what refit_checkpoint may refit again
        val_logits = None
        if val.track_ids:  # through the embedding cache, as encore cv scores a probe: no song through the network twice
            predictor = Predictor(model.eval(), card, batch_size=64)
            n_val = len(val.track_ids)
            logits = (
                cached_probe_logits(
                    predictor,
                    val.waveforms,
                    cache_dir=cache_dir,
                    callback=start_task(progress, f"embed {n_val} validation songs", n_val),
                )
                if cache_dir is not None
                else None
            )
            arrays = probe_arrays(predictor, logits) if logits is not None else predictor.predict_arrays(val.waveforms)
            metrics = validation_metrics(arrays, val)
            card.metrics = {"validation": metrics}
            val_logits = None if logits is None else logits.get("class")
        save_checkpoint(best_path, model, card)
        song_embeddings: Callable[[Sequence[np.ndarray]], np.ndarray] | None = None
        if cache_dir is not None:  # the novelty fit reads the songs' cached embeddings too

            def song_embeddings(waveforms: Sequence[np.ndarray]) -> np.ndarray:
                return probe_song_embeddings(model, card, waveforms, cache_dir=cache_dir)

        finish_checkpoint(
            best_path,
            train,
            val,
            refit=[],
            novelty=model.novelty is not None,
            train_scores=train_scores,
            seed=tc.seed,
            val_class_logits=val_logits,
            embeddings=song_embeddings,
        )
    ctx.barrier()
    ctx.close()
    return FitResult(run_dir=run_dir, checkpoint=best_path, best_epoch=0, best_metrics=metrics, history=[])
