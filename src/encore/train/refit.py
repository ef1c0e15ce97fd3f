"""Song-level refit of the tag and score heads on the trained network's embeddings.

The network learns its heads on random chunks of a song against the song's targets, so
a chunk is asked for what only the whole song can say, and a noisy listener rate (a few
listeners ticked "amazement") pulls each chunk's head as hard as a clean one. After
training, the backbone stays as it is and each chosen head is refit where the targets
live, on the song: a linear map from the song's mean embedding (its chunks cut and
averaged exactly as the :class:`~encore.inference.Predictor` cuts them) to the song's
targets, with an L2 penalty whose strength is chosen by cross-validation over the
training songs. This is last-layer retraining (Kirichenko et al., "Last Layer
Re-Training is Sufficient for Robustness to Spurious Correlations", ICLR 2023; a linear
probe, as in transfer learning) with the song as the unit.

- ``tags`` (listener shares): a logistic model on soft targets (binary cross-entropy),
  one strength for all tags; the song's tag probabilities are then the sigmoid of the
  mean of its chunk logits, so the card's ``aggregate_tags`` becomes ``mean_logits``
  and the song's output is exactly the refit model's.
- ``regression`` (standardised scores): ridge regression, one strength per score; a
  score is the mean of its chunk outputs, so the refit is exact for any aggregation.

A mean of linear head outputs equals the head applied to the mean embedding, so the
refit heads are written back into the model's own linear heads (for an ensemble, into
its members' heads; with ``model.band_statistics``, the weights on the band statistics
into the head's wide path): the checkpoint, ONNX export and explanations need nothing
new.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from encore.audio import chunk_waveform
from encore.exceptions import ParameterError
from encore.inference.backends import card_wants_bf16
from encore.inference.predictor import MIN_FRACTION, chunks_per_batch
from encore.models.card import ModelCard
from encore.models.checkpoint import load_model
from encore.models.classifier import EncoreModel, MemberLinear, SongLinear, mel_band_statistics
from encore.models.novelty import fit_whitening, whitened_distance
from encore.train.objectives import SplitData

logger = logging.getLogger(__name__)

__all__ = [
    "REFIT_HEADS",
    "STRENGTHS",
    "fit_novelty",
    "fit_ridge",
    "fit_soft_logistic",
    "refit_checkpoint",
    "refit_heads",
    "song_embeddings",
    "song_novelty_features",
]
NOVELTY_PERCENTILES = np.arange(0, 101, 5)
"""Percentiles of the reference songs' novelty distances kept in the card (the score's scale)."""
NOVELTY_THRESHOLD_PERCENTILE = 99.0
NOVELTY_FOLDS = 5
"""Without validation songs, the training songs are scored out of fold: each fifth by the fit on the rest."""

REFIT_HEADS = ("tags", "regression")
STRENGTHS = tuple(float(s) for s in np.logspace(-4, 1, 11))
"""L2 strengths tried, per song and standardised embedding dimension (see :func:`fit_soft_logistic`)."""


@torch.no_grad()
def song_embeddings(
    model: EncoreModel,
    waveforms: Sequence[np.ndarray],
    *,
    chunk_samples: int,
    hop_samples: int,
    bf16: bool = False,
    batch_size: int | None = None,
    features: Callable[[torch.Tensor], torch.Tensor] | None = None,
    callback: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Each song's mean embedding over its chunks, ``(n_songs, model.embedding_dim)``.

    Chunks are cut as the Predictor cuts them; the model runs in eval mode (and under a
    bfloat16 autocast with ``bf16``, as a bfloat16-trained model is served). ``features``
    averages another per-chunk map instead of :meth:`EncoreModel.forward_features`;
    ``callback(1)`` is called after each song (for a progress bar). ``batch_size`` chunks
    go through at a time, by default the backbone's own (:func:`chunks_per_batch`).
    """
    model = model.eval()
    features = features or model.forward_features
    device = next(model.parameters()).device
    batch_size = batch_size or chunks_per_batch(model.backbone_name, device)
    out: np.ndarray | None = None
    for i, waveform in enumerate(waveforms):
        chunks = chunk_waveform(
            np.asarray(waveform, dtype=np.float32),
            chunk_samples=chunk_samples,
            hop_samples=hop_samples,
            min_fraction=MIN_FRACTION,
        )
        total: float | np.ndarray = 0.0
        for start in range(0, len(chunks), batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(chunks[start : start + batch_size])).to(device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                total = total + features(batch).float().sum(0).cpu().numpy().astype(np.float64)
        mean = np.asarray(total) / max(len(chunks), 1)
        if out is None:
            out = np.zeros((len(waveforms), mean.size), dtype=np.float64)
        out[i] = mean
        if callback is not None:
            callback(1)
    return out if out is not None else np.zeros((0, model.embedding_dim), dtype=np.float64)


def out_of_fold_distances(features: np.ndarray, n_folds: int = NOVELTY_FOLDS, seed: int = 0) -> np.ndarray:
    """Each row's novelty distance under the whitening fitted on the other folds' rows (``n_folds`` folds)."""
    order = np.random.default_rng(seed).permutation(len(features))
    distances = np.empty(len(features), dtype=np.float64)
    for held in np.array_split(order, n_folds):
        center, whitening, _ = fit_whitening(np.delete(features, held, axis=0))
        distances[held] = whitened_distance(features[held], center, whitening)
    return distances


def song_novelty_features(
    model: EncoreModel,
    waveforms: Sequence[np.ndarray],
    *,
    chunk_samples: int,
    hop_samples: int,
    bf16: bool = False,
    embeddings: Callable[[Sequence[np.ndarray]], np.ndarray] | None = None,
) -> np.ndarray:
    """Each song's mean of what ``model.novelty`` reads (the backbone embedding and the log-mel's band statistics).

    ``embeddings`` gives the songs' mean backbone embeddings when they are known already
    (a probe's, from its cache): the band statistics are then all that is computed, and no
    song goes through the network. The whitened distance of a row (``whitened_distance``
    with the projection's centre and map) is the song's novelty distance, as the model's
    own forward pass averages it.
    """
    kwargs: dict[str, Any] = {"chunk_samples": chunk_samples, "hop_samples": hop_samples, "bf16": bf16}
    if embeddings is None:
        return song_embeddings(model, waveforms, features=model.novelty_features, **kwargs)
    bands = song_embeddings(model, waveforms, features=lambda w: mel_band_statistics(model.log_mel(w)), **kwargs)
    return np.concatenate([np.asarray(embeddings(waveforms), dtype=np.float64), bands], axis=1)


def fit_novelty(
    model: EncoreModel,
    train_waveforms: Sequence[np.ndarray],
    reference_waveforms: Sequence[np.ndarray],
    *,
    chunk_samples: int,
    hop_samples: int,
    bf16: bool = False,
    embeddings: Callable[[Sequence[np.ndarray]], np.ndarray] | None = None,
) -> dict[str, Any]:
    """Fit ``model.novelty`` on the training songs; calibrate its distance on reference songs.

    The reference songs are held-out ones (the validation split). Without any, the
    training songs are scored out of fold: each fifth by a fit on the other four fifths,
    so each distance is that of a song the fit did not see, as a new song's is (a fit's own
    songs lie nearer to it than new songs do, and a threshold set on them flags far more
    than 1 % of new songs of the same kind). With fewer than ten training songs they are
    scored by the fit itself (the card's ``reference`` says which).
    ``embeddings`` gives songs' mean backbone embeddings when they are known already (a
    probe's, from its cache): the log-mel's band statistics are then all that is computed,
    and no song goes through the network.

    Returns:
        The card's ``novelty`` entry: songs used, the shrinkage, the reference distances'
        percentiles (``quantiles`` at ``percentiles``) and the flagging ``threshold``
        (their 99th percentile); or ``{"fitted": False, "reason": ...}``.
    """
    if model.novelty is None:
        raise ParameterError("this model has no novelty projection; train it with model.novelty: true")
    if len(train_waveforms) < 3:
        return {"fitted": False, "reason": f"{len(train_waveforms)} training songs; the fit needs at least 3"}
    features = functools.partial(
        song_novelty_features, model, chunk_samples=chunk_samples, hop_samples=hop_samples, bf16=bf16, embeddings=embeddings
    )
    train = features(train_waveforms)
    center, whitening, shrinkage = fit_whitening(train)
    model.novelty.set(center, whitening)
    if len(reference_waveforms):
        reference_name, reference = "validation", features(reference_waveforms)
        distances = whitened_distance(reference, center, whitening)
    elif len(train) >= 2 * NOVELTY_FOLDS:
        reference_name, reference, distances = "out-of-fold training", train, out_of_fold_distances(train)
    else:
        reference_name, reference, distances = "training", train, whitened_distance(train, center, whitening)
    return {
        "fitted": True,
        "features": int(train.shape[1]),
        "shrinkage": round(shrinkage, 4),
        "train_songs": len(train),
        "reference": reference_name,
        "reference_songs": len(reference),
        "percentiles": NOVELTY_PERCENTILES.tolist(),
        "quantiles": np.percentile(distances, NOVELTY_PERCENTILES).tolist(),
        "threshold": float(np.percentile(distances, NOVELTY_THRESHOLD_PERCENTILE)),
        "threshold_percentile": NOVELTY_THRESHOLD_PERCENTILE,
    }


def fit_soft_logistic(features: np.ndarray, targets: np.ndarray, strength: float) -> tuple[np.ndarray, np.ndarray]:
    """L2-penalised logistic regression on soft targets in [0, 1], one output per column.

    Minimises ``mean_songs(sum_tags BCE(x W + b, y)) + strength * |W|^2`` (L-BFGS, float64;
    the problem is convex).

    Returns:
        ``W`` (n_features, n_outputs) and ``b`` (n_outputs,).
    """
    x = torch.as_tensor(features, dtype=torch.float64)
    y = torch.as_tensor(targets, dtype=torch.float64)
    weight = torch.zeros(x.shape[1], y.shape[1], dtype=torch.float64, requires_grad=True)
    bias = torch.logit(y.mean(0).clamp(1e-4, 1 - 1e-4)).detach().clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS([weight, bias], max_iter=200, tolerance_grad=1e-9, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.binary_cross_entropy_with_logits(x @ weight + bias, y, reduction="sum") / len(x)
        loss = loss + strength * weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return weight.detach().numpy(), bias.detach().numpy()


def fit_ridge(features: np.ndarray, targets: np.ndarray, strength: float) -> tuple[np.ndarray, np.ndarray]:
    """Ridge regression in closed form: ``mean_songs |x W + b - y|^2 + strength * |W|^2`` per column."""
    x_mean, y_mean = features.mean(0), targets.mean(0)
    x, y = features - x_mean, targets - y_mean
    gram = x.T @ x / len(x) + strength * np.eye(x.shape[1])
    weight = np.linalg.solve(gram, x.T @ y / len(x))
    return weight, y_mean - x_mean @ weight


def _bce(logits: np.ndarray, targets: np.ndarray) -> float:
    return float(np.mean(np.logaddexp(0.0, logits) - targets * logits) * targets.shape[1])


def _mse(predictions: np.ndarray, targets: np.ndarray) -> float:
    return float(np.mean((predictions - targets) ** 2))


def _choose_strength(fit, loss, features: np.ndarray, targets: np.ndarray, *, n_folds: int, seed: int) -> tuple[float, float]:
    """The strength with the lowest held-out ``loss`` over ``n_folds`` folds of the songs."""
    order = np.random.default_rng(seed).permutation(len(features))
    folds = np.array_split(order, min(n_folds, len(features)))
    losses = np.zeros(len(STRENGTHS))
    for held in folds:
        keep = np.setdiff1d(order, held)
        for i, strength in enumerate(STRENGTHS):
            weight, bias = fit(features[keep], targets[keep], strength)
            losses[i] += loss(features[held] @ weight + bias, targets[held]) * len(held)
    best = int(np.argmin(losses))
    return STRENGTHS[best], float(losses[best] / len(features))


def _install(model: EncoreModel, head: str, weight: np.ndarray, bias: np.ndarray, columns: Sequence[int]) -> None:
    """Write a linear map of the (concatenated) embedding into ``head``'s outputs ``columns``:
    the members' part into the head, the band statistics' part into its wide path."""
    module = model.heads[head]
    assert isinstance(module, nn.Linear | MemberLinear)  # EncoreModel's heads
    cols = list(columns)
    if head in model.band_heads:
        wide = model.band_heads[head]
        assert isinstance(wide, SongLinear)  # EncoreModel's wide paths
        wide.weight[cols] = torch.as_tensor(weight[model.deep_dim :].T, dtype=wide.weight.dtype)
        weight = weight[: model.deep_dim]
    weight_t = torch.as_tensor(weight.T, dtype=module.weight.dtype)  # (n_out, members' embedding)
    bias_t = torch.as_tensor(bias, dtype=module.bias.dtype)
    with torch.no_grad():
        if model.n_members == 1:
            module.weight[cols] = weight_t
            module.bias[cols] = bias_t
            return
        k_members, dim = model.n_members, module.in_features
        for k in range(k_members):  # the ensemble's output is its members' mean: member k carries K x its slice
            module.weight[k, cols] = k_members * weight_t[:, k * dim : (k + 1) * dim]
            module.bias[k, cols] = bias_t


def refit_heads(
    model: EncoreModel,
    train: SplitData,
    heads: Sequence[str],
    *,
    chunk_samples: int,
    hop_samples: int,
    scores: np.ndarray,
    bf16: bool = False,
    n_folds: int = 5,
    seed: int = 0,
    embeddings: np.ndarray | None = None,
) -> dict[str, Any]:
    """Refit ``heads`` of ``model`` (in place) on ``train``'s song embeddings.

    Args:
        model: The trained model.
        train: The training songs and their targets.
        heads: A subset of :data:`REFIT_HEADS`.
        chunk_samples: Chunk length, as the Predictor cuts songs.
        hop_samples: Chunk hop, likewise.
        scores: ``train``'s scores as the regression head learns them (standardised),
            ``(n_songs, n_scores)``, NaN where missing.
        bf16: Embed under a bfloat16 autocast (a bfloat16-trained model is served so).
        n_folds: Cross-validation folds for the penalty strength.
        seed: Fold assignment.
        embeddings: ``train``'s song embeddings (:func:`song_embeddings`) when the caller
            has them already; None = compute them here.

    Returns:
        For the model card: per head, the strength chosen, its held-out loss and the
        number of songs.
    """
    unknown = sorted(set(heads) - set(REFIT_HEADS))
    if unknown:
        raise ParameterError(f"train.refit_heads={list(heads)!r}: {unknown} cannot be refit; choose from {list(REFIT_HEADS)}")
    wanted = [h for h in heads if h in model.heads]
    if not wanted:
        return {}
    if embeddings is None:
        embeddings = song_embeddings(model, train.waveforms, chunk_samples=chunk_samples, hop_samples=hop_samples, bf16=bf16)
    center, scale = embeddings.mean(0), embeddings.std(0)
    scale = np.where(scale > 1e-8, scale, 1.0)
    standard = (embeddings - center) / scale

    def unstandardise(weight: np.ndarray, bias: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return weight / scale[:, None], bias - (center / scale) @ weight

    report: dict[str, Any] = {}
    if "tags" in wanted:
        known = ~np.isnan(train.tags).any(axis=1)
        if known.sum() >= 2 * n_folds:
            x, y = standard[known], train.tags[known].astype(np.float64)
            strength, loss = _choose_strength(fit_soft_logistic, _bce, x, y, n_folds=n_folds, seed=seed)
            _install(model, "tags", *unstandardise(*fit_soft_logistic(x, y, strength)), range(y.shape[1]))
            report["tags"] = {"strength": strength, "cv_bce": loss, "songs": int(known.sum()), "loss": "soft logistic"}
        else:
            logger.warning("refit of the tag head skipped: %d songs with tags, need %d", known.sum(), 2 * n_folds)
    if "regression" in wanted:
        for j in range(scores.shape[1]):
            known = ~np.isnan(scores[:, j])
            if known.sum() < 2 * n_folds:
                name = model.regression_names[j] if j < len(model.regression_names) else str(j)
                logger.warning("refit of the score %r skipped: %d songs with it, need %d", name, known.sum(), 2 * n_folds)
                continue
            x, y = standard[known], scores[known, j : j + 1].astype(np.float64)
            strength, loss = _choose_strength(fit_ridge, _mse, x, y, n_folds=n_folds, seed=seed)
            _install(model, "regression", *unstandardise(*fit_ridge(x, y, strength)), [j])
            report.setdefault("regression", []).append(
                {"column": j, "strength": strength, "cv_mse": loss, "songs": int(known.sum()), "loss": "ridge"}
            )
    logger.info("refit heads on %d training songs: %s", len(train.track_ids), report)
    return report


def refit_checkpoint(
    checkpoint: str | Path,
    train: SplitData,
    *,
    band_statistics: bool,
    hop_seconds: float | None = None,
) -> tuple[EncoreModel, ModelCard]:
    """A trained run's network with its song-level heads refit under another wide path.

    The wide path (``model.band_statistics``) is zero in
    training, so the network a run trains does not depend on it; only the song-level refit
    reads it. This takes a checkpoint trained with ``train.refit_heads``, keeps its network,
    sets the wide path as given and refits the same heads on ``train`` (the run's training
    songs) as the run did: the result is the model a run with those settings would have
    written.

    Args:
        checkpoint: The run's checkpoint.
        train: The run's training songs.
        band_statistics: The wide path's band statistics (False: heads on the backbone alone).
        hop_seconds: Chunk hop for the song embeddings; None = the card's.

    Returns:
        The model and its card (network, chunk hop and ``refit`` updated).
    """
    served, card = load_model(checkpoint)
    if not card.refit:
        raise ParameterError(f"{checkpoint} was trained without train.refit_heads: it has no song-level heads to refit")
    network = card.network.model_copy(update={"band_statistics": band_statistics})
    model = EncoreModel(**network.model_kwargs())
    missing, unexpected = model.load_state_dict(
        {k: v for k, v in served.state_dict().items() if not k.startswith("band_heads.")}, strict=False
    )
    if unexpected or any(not key.startswith("band_heads.") for key in missing):  # only the wide path is new
        raise ParameterError(f"{checkpoint}: the network does not fit its own card (missing {missing}, unexpected {unexpected})")
    stats = card.regression_stats
    scores = (train.scores - stats.shift) / stats.scale
    chunk = card.chunk if hop_seconds is None else card.chunk.model_copy(update={"hop_seconds": hop_seconds})
    refitted = card.model_copy(update={"network": network, "chunk": chunk})
    report = refit_heads(
        model,
        train,
        list(card.refit),
        chunk_samples=refitted.chunk_samples,
        hop_samples=refitted.hop_samples,
        scores=scores,
        bf16=card_wants_bf16(card),
        seed=card.seed,
    )
    refitted.refit = report
    return model, refitted
