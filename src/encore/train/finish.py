"""After the epochs: the kept weights' song-level heads, temperature and novelty, in one pass.

The loop keeps the best (or last) weights in ``checkpoint.pt``; :func:`finish_checkpoint`
loads them once, refits the chosen heads on whole songs (:mod:`encore.train.refit`),
fits the temperature on the validation songs (kept only where it helps songs it was not
fitted on, :mod:`encore.train.calibrate`), fits and calibrates the novelty distance
(:mod:`encore.models.novelty`), and writes the checkpoint back once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from encore.inference.backends import card_wants_bf16
from encore.inference.predictor import Predictor
from encore.models.card import Calibration, NoveltyCalibration
from encore.models.checkpoint import load_model, save_checkpoint
from encore.train.calibrate import fit_song_temperature
from encore.train.objectives import SplitData, validation_metrics
from encore.train.refit import fit_novelty, refit_heads

__all__ = ["finish_checkpoint"]


def finish_checkpoint(
    path: Path,
    train: SplitData,
    val: SplitData,
    *,
    refit: list[str],
    novelty: bool,
    train_scores: np.ndarray,
    seed: int,
    val_class_logits: np.ndarray | None = None,
    embeddings: Callable[[Sequence[np.ndarray]], np.ndarray] | None = None,
) -> None:
    """Refit ``refit`` heads, fit the temperature and (with ``novelty``) the novelty distance of ``path``.

    Args:
        path: The kept ``checkpoint.pt``, rewritten in place.
        train: The training songs (refit, novelty).
        val: The validation songs (metrics after the refit, temperature, novelty calibration).
        refit: Heads to refit on whole songs (``tags``, ``regression``); [] = none.
        novelty: Fit the model's novelty projection (it must have one).
        train_scores: The training songs' standardised scores (the score head's refit targets).
        seed: For the refit's cross-validation folds.
        val_class_logits: The validation songs' mean class logits when known already (a
            probe's, from its cached embeddings), so the temperature needs no pass over them.
        embeddings: Songs' mean backbone embeddings when known (a probe's cache), for the
            novelty fit (:func:`~encore.train.refit.fit_novelty`).
    """
    model, card = load_model(path)
    bf16 = card_wants_bf16(card)
    chunk_samples, hop_samples = card.chunk_samples, card.hop_samples  # as the Predictor cuts songs
    if refit:
        report = refit_heads(
            model, train, refit, chunk_samples=chunk_samples, hop_samples=hop_samples, scores=train_scores, bf16=bf16, seed=seed
        )
        card.refit = report
        if "tags" in report:
            card.aggregate_tags = "mean_logits"  # exact: the refit model is a linear map of the mean embedding
        if val.track_ids:
            before = card.metrics.get("validation", {})
            after = validation_metrics(Predictor(model, card, batch_size=64).predict_arrays(val.waveforms), val)
            card.metrics = {**card.metrics, "validation_before_refit": before, "validation": after}
    fitted = fit_song_temperature(
        model,
        val.waveforms,
        val.classes,
        chunk_samples=chunk_samples,
        hop_samples=hop_samples,
        aggregate=card.aggregate,
        song_logits=None if refit else val_class_logits,  # a refit changes the heads: those logits would be stale
    )
    if fitted is not None:
        card.calibration = Calibration(**{**fitted, "method": "temperature", "fitted_on": "validation"})
    if novelty:
        card.novelty = NoveltyCalibration(
            **fit_novelty(
                model,
                train.waveforms,
                val.waveforms,
                chunk_samples=chunk_samples,
                hop_samples=hop_samples,
                bf16=bf16,
                embeddings=None if refit else embeddings,
            )
        )
    save_checkpoint(path, model, card)
