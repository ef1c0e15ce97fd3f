"""From chunk logits to song-level arrays, and from song arrays to JSON.

:class:`SongAccumulator` keeps running sums, so a song of any length is aggregated in
constant memory and its result does not depend on how its chunks were batched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from encore.models.card import NoveltyCalibration, RegressionStats

__all__ = ["INTERVAL_Z", "SongAccumulator", "describe_arrays", "stack_songs"]

INTERVAL_Z = 1.96
"""Half-width of a score interval in standard deviations of the song's chunk scores."""


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def _sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logits))


class SongAccumulator:
    """Running sums of one song's chunk outputs.

    Args:
        mean_logits: Average logits then squash (``True``) or squash then average.
        temperature: Class logits are divided by it before the softmax.
        regression_stats: The card's score means and spreads, which undo the training-time
            standardisation of scores.
        tag_mean_logits: As ``mean_logits``, for the tags (the card's ``mean_logits`` gives both).
    """

    def __init__(
        self, *, mean_logits: bool, tag_mean_logits: bool, temperature: float, regression_stats: RegressionStats
    ) -> None:
        self.mean_logits = mean_logits
        self.tag_mean_logits = tag_mean_logits
        self.temperature = temperature
        self.regression_stats = regression_stats
        self.n_chunks = 0
        self.sums: dict[str, np.ndarray] = {}
        self.score_squares: np.ndarray | None = None

    def _add(self, key: str, values: np.ndarray) -> None:
        total = values.astype(np.float64).sum(axis=0)
        self.sums[key] = self.sums[key] + total if key in self.sums else total

    def add(self, logits: dict[str, np.ndarray]) -> None:
        """Add a batch of this song's chunks: ``{"class": (n, n_classes), ...}`` logits."""
        n = len(next(iter(logits.values())))
        if n == 0:
            return
        self.n_chunks += n
        if "class" in logits:
            scaled = logits["class"] / self.temperature
            self._add("class", scaled if self.mean_logits else _softmax(scaled))
        if "tags" in logits:
            self._add("tags", logits["tags"] if self.tag_mean_logits else _sigmoid(logits["tags"]))
        if "novelty" in logits:  # whitened coordinates: their mean is the song mean embedding's
            self._add("novelty", logits["novelty"])
        if "regression" in logits:
            scores = logits["regression"].astype(np.float64)
            self._add("regression", scores)
            squares = (scores**2).sum(axis=0)
            self.score_squares = squares if self.score_squares is None else self.score_squares + squares

    def result(self) -> dict[str, np.ndarray]:
        """``class_probs``, ``tag_probs``, ``scores``, ``score_intervals`` (n_scores, 2) and
        ``novelty_distance`` (a scalar: see :mod:`encore.models.novelty`)."""
        if self.n_chunks == 0:
            return {}
        n = self.n_chunks
        out: dict[str, np.ndarray] = {}
        if "class" in self.sums:
            mean = self.sums["class"] / n
            out["class_probs"] = (_softmax(mean) if self.mean_logits else mean).astype(np.float32)
        if "tags" in self.sums:
            mean = self.sums["tags"] / n
            out["tag_probs"] = (_sigmoid(mean) if self.tag_mean_logits else mean).astype(np.float32)
        if "novelty" in self.sums:
            out["novelty_distance"] = np.asarray(np.sum((self.sums["novelty"] / n) ** 2), dtype=np.float32)
        if "regression" in self.sums and self.score_squares is not None:
            mean = self.sums["regression"] / n
            spread = np.sqrt(np.maximum(self.score_squares / n - mean**2, 0.0))
            scale, shift = self.regression_stats.scale, self.regression_stats.shift
            score = mean * scale + shift
            half = INTERVAL_Z * spread * np.abs(scale)
            out["scores"] = score.astype(np.float32)
            out["score_intervals"] = np.stack([score - half, score + half], axis=-1).astype(np.float32)
        return out


def stack_songs(per_song: Sequence[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Songs' result arrays (:meth:`SongAccumulator.result`) stacked: ``{key: (n_songs, ...)}``."""
    keys = per_song[0].keys() if per_song else ()
    return {k: np.stack([p[k] for p in per_song]) for k in keys}


def describe_arrays(
    arrays: dict[str, np.ndarray],
    *,
    label_names: Sequence[str],
    tag_names: Sequence[str],
    regression_names: Sequence[str],
    top_tags: int = 5,
    novelty: NoveltyCalibration | None = None,
) -> dict[str, Any]:
    """JSON-ready view of one song's arrays.

    Returns:
        ``label`` and ``probs`` (every class), ``tags`` (the ``top_tags`` most likely),
        ``scores`` and, where known, ``intervals`` (``[low, high]`` per score: the
        score +- 1.96 standard deviations of the song's chunk scores, i.e. how much the
        score moves along the song, not a calibrated confidence interval), and with the
        card's ``novelty`` calibration, ``novelty``: ``score`` (the share of held-out
        songs nearer to the training songs), ``novel`` (beyond the held-out songs' 99th
        percentile: unlike what the model was trained on, so its outputs are a guess) and
        ``distance``.
    """
    out: dict[str, Any] = {}
    if "class_probs" in arrays and len(label_names):
        probs = arrays["class_probs"]
        out["label"] = label_names[int(np.argmax(probs))]
        out["probs"] = {n: round(float(p), 4) for n, p in zip(label_names, probs, strict=True)}
    if "tag_probs" in arrays and len(tag_names):
        order = np.argsort(arrays["tag_probs"])[::-1][:top_tags]
        out["tags"] = {tag_names[i]: round(float(arrays["tag_probs"][i]), 4) for i in order}
    if "novelty_distance" in arrays and novelty is not None and novelty.usable:
        distance = float(arrays["novelty_distance"])
        quantiles = np.asarray(novelty.quantiles, dtype=np.float64)
        share = float(np.interp(distance, quantiles, np.linspace(0.0, 1.0, len(quantiles))))
        out["novelty"] = {
            "score": round(share, 3),
            "novel": bool(distance > float(novelty.threshold or 0.0)),
            "distance": round(distance, 3),
        }
    if "scores" in arrays and len(regression_names):
        out["scores"] = {n: round(float(v), 4) for n, v in zip(regression_names, arrays["scores"], strict=True)}
        if "score_intervals" in arrays:
            out["intervals"] = {
                n: [round(float(lo), 4), round(float(hi), 4)]
                for n, (lo, hi) in zip(regression_names, arrays["score_intervals"], strict=True)
            }
    return out
