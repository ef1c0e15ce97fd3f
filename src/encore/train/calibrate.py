"""Temperature scaling fitted on the validation songs at the end of training, kept only
when it calibrates songs it was not fitted on.

The Predictor divides each chunk's class logits by the card's temperature and then
aggregates chunks to a song (mean of probabilities, or softmax of the mean logit). The
temperature is fitted through that same aggregation, on the validation split, so the
song-level probabilities it calibrates are the ones users see.

A temperature fitted on a few dozen songs can fit their noise and make calibration on
new songs worse. So it is cross-fitted first (the validation songs split into two
halves, stratified by class; a temperature fitted on each half scores the other): the
temperature fitted on all validation songs is kept only when the cross-fitted
temperatures lower both the negative log-likelihood and the expected calibration error
(ECE) of the songs they were not fitted on, compared with no temperature. Otherwise the
card keeps temperature 1 and says why.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax

from encore.evaluate.calibration import expected_calibration_error

logger = logging.getLogger(__name__)

__all__ = ["MIN_CROSS_FIT_SONGS", "choose_song_temperature", "fit_song_temperature", "song_log_probs"]

MIN_CROSS_FIT_SONGS = 4
"""Fewest labelled validation songs to cross-fit a temperature (two per half)."""

BOUNDS = (0.05, 20.0)


def song_log_probs(chunk_logits: Sequence[np.ndarray], temperature: float, aggregate: str) -> np.ndarray:
    """Song-level class log-probabilities as the Predictor serves them.

    Args:
        chunk_logits: Per song, its chunks' class logits, ``(n_chunks, n_classes)``.
        temperature: Divides every logit.
        aggregate: ``mean_logits`` (softmax of the mean logit) or ``mean_probs``.

    Returns:
        ``(n_songs, n_classes)`` log-probabilities.
    """
    if aggregate == "mean_logits":
        return np.stack([log_softmax(z.mean(0) / temperature) for z in chunk_logits])
    return np.log(np.clip(np.stack([softmax(z / temperature, axis=1).mean(0) for z in chunk_logits]), 1e-12, 1))


def _nll(log_probs: np.ndarray, truth: np.ndarray) -> float:
    return float(-log_probs[np.arange(len(truth)), truth].mean())


def _fit(chunk_logits: Sequence[np.ndarray], truth: np.ndarray, aggregate: str) -> float:
    """The temperature minimising song-level NLL (bounded search over log T)."""
    result = minimize_scalar(
        lambda log_t: _nll(song_log_probs(chunk_logits, float(np.exp(log_t)), aggregate), truth),
        bounds=(np.log(BOUNDS[0]), np.log(BOUNDS[1])),
        method="bounded",
        options={"xatol": 1e-4},
    )
    return float(np.exp(result.x))


def _halves(truth: np.ndarray, seed: int) -> np.ndarray:
    """0/1 per song: two halves with each class spread over both (a shuffled alternation)."""
    rng = np.random.default_rng(seed)
    half = np.zeros(len(truth), dtype=np.int64)
    start = 0
    for label in np.unique(truth):
        members = rng.permutation(np.flatnonzero(truth == label))
        half[members] = (np.arange(len(members)) + start) % 2
        start += len(members)  # odd classes alternate which half gets the extra song
    return half


def choose_song_temperature(
    chunk_logits: Sequence[np.ndarray],
    truth: np.ndarray,
    *,
    aggregate: str,
    halves: np.ndarray | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Fits a temperature on labelled songs and keeps it only when it transfers.

    Args:
        chunk_logits: Per song, its chunks' class logits, ``(n_chunks, n_classes)``.
        truth: Class index per song, ``(n_songs,)``, all labelled.
        aggregate: How chunks make a song (see :func:`song_log_probs`).
        halves: 0/1 per song for the cross-fit; stratified random halves when None.
        seed: Seed of the random halves.

    Returns:
        ``temperature`` (the one to serve: the fitted one when kept, else 1),
        ``fitted_temperature`` (on all songs), ``kept``, ``reason`` (a sentence),
        ``nll_before`` and ``nll_after`` (all songs, T = 1 and the fitted T, in-sample),
        ``n_songs``, and ``cross_fit`` (``temperatures`` per half, and the held-out
        ``nll_raw``, ``nll_scaled``, ``ece_raw``, ``ece_scaled``) when it could be run.
    """
    truth = np.asarray(truth, dtype=np.int64)
    fitted_t = _fit(chunk_logits, truth, aggregate)
    result: dict[str, Any] = {
        "temperature": 1.0,
        "fitted_temperature": fitted_t,
        "kept": False,
        "nll_before": _nll(song_log_probs(chunk_logits, 1.0, aggregate), truth),
        "nll_after": _nll(song_log_probs(chunk_logits, fitted_t, aggregate), truth),
        "n_songs": int(len(truth)),
    }
    halves = _halves(truth, seed) if halves is None else np.asarray(halves, dtype=np.int64)
    if len(truth) < MIN_CROSS_FIT_SONGS or min(np.sum(halves == 0), np.sum(halves == 1)) < 2:
        result["reason"] = (
            f"not kept: {len(truth)} labelled validation songs are too few to check the temperature on songs "
            f"it was not fitted on (needs {MIN_CROSS_FIT_SONGS})"
        )
        return result
    raw = song_log_probs(chunk_logits, 1.0, aggregate)
    scaled = np.empty_like(raw)
    temperatures = []
    for k in (0, 1):
        fit_on, score_on = np.flatnonzero(halves == k), np.flatnonzero(halves != k)
        t_k = _fit([chunk_logits[i] for i in fit_on.tolist()], truth[fit_on], aggregate)
        temperatures.append(t_k)
        scaled[score_on] = song_log_probs([chunk_logits[i] for i in score_on.tolist()], t_k, aggregate)
    cross: dict[str, Any] = {
        "temperatures": temperatures,
        "nll_raw": _nll(raw, truth),
        "nll_scaled": _nll(scaled, truth),
        "ece_raw": expected_calibration_error(truth, np.exp(raw)),
        "ece_scaled": expected_calibration_error(truth, np.exp(scaled)),
    }
    result["cross_fit"] = cross
    summary = (
        f"cross-fitted on two halves of {len(truth)} validation songs, held-out NLL "
        f"{cross['nll_raw']:.4f} -> {cross['nll_scaled']:.4f}, ECE {cross['ece_raw']:.4f} -> {cross['ece_scaled']:.4f}"
    )
    if cross["nll_scaled"] < cross["nll_raw"] and cross["ece_scaled"] < cross["ece_raw"]:
        result.update(temperature=fitted_t, kept=True, reason=f"kept: {summary}")
    else:
        worse = [name for name in ("nll", "ece") if cross[f"{name}_scaled"] >= cross[f"{name}_raw"]]
        result["reason"] = (
            f"not kept: a temperature did not improve {' or '.join(n.upper() for n in worse)} on songs it was "
            f"not fitted on ({summary}); probabilities are served as trained (temperature 1)"
        )
    return result


def _chunk_class_logits(
    model: Any, waveforms: Sequence[np.ndarray], chunk_samples: int, hop_samples: int | None, batch_size: int
) -> list[np.ndarray]:
    import torch

    from encore.audio.chunking import chunk_waveform

    device = next(model.parameters()).device
    out = []
    with torch.inference_mode():
        for waveform in waveforms:
            chunks = chunk_waveform(np.asarray(waveform, dtype=np.float32), chunk_samples=chunk_samples, hop_samples=hop_samples)
            parts = [
                model(torch.from_numpy(np.ascontiguousarray(chunks[i : i + batch_size])).to(device))["class"]
                .float()
                .cpu()
                .numpy()
                for i in range(0, len(chunks), batch_size)
            ]
            out.append(np.concatenate(parts).astype(np.float64))
    return out


def fit_song_temperature(
    model: Any,
    waveforms: Sequence[np.ndarray],
    classes: np.ndarray,
    *,
    chunk_samples: int,
    hop_samples: int | None = None,
    aggregate: str,
    batch_size: int = 64,
    seed: int = 0,
    song_logits: np.ndarray | None = None,
) -> dict[str, Any] | None:
    """A song-level temperature for an :class:`~encore.models.classifier.EncoreModel`,
    fitted on its labelled validation songs and kept only when it transfers (see
    :func:`choose_song_temperature`).

    ``song_logits`` (``(n_songs, n_classes)``, ``aggregate`` ``mean_logits`` only): each
    song's mean class logits, known already (a probe's, from its cached embeddings), so
    the songs do not go through the network again.

    Returns:
        :func:`choose_song_temperature`'s dict, or None when fewer than two labelled
        songs or no class head (the card then keeps temperature 1).
    """
    known = np.flatnonzero(classes >= 0)
    if len(known) < 2 or "class" not in model.heads:
        return None
    if song_logits is not None and aggregate == "mean_logits":  # a song's mean logits: one "chunk" a song
        logits = [np.asarray(song_logits[i], dtype=np.float64)[None, :] for i in known.tolist()]
    else:
        was_training = model.training
        model.eval()
        logits = _chunk_class_logits(model, [waveforms[i] for i in known.tolist()], chunk_samples, hop_samples, batch_size)
        model.train(was_training)
    chosen = choose_song_temperature(logits, classes[known], aggregate=aggregate, seed=seed)
    logger.info(
        "temperature %.3f fitted on %d validation songs (NLL %.4f -> %.4f); %s",
        chosen["fitted_temperature"],
        chosen["n_songs"],
        chosen["nll_before"],
        chosen["nll_after"],
        chosen["reason"],
    )
    return chosen
