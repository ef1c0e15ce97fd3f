"""Explain one song's prediction: which time segments and frequency bands drove it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from encore.exceptions import ParameterError
from encore.explain.attribution import (
    grid_slices,
    head_outputs,
    integrated_gradients,
    occlusion,
    prepare_song,
    target_function,
)

__all__ = ["METHODS", "SongExplanation", "explain_waveform", "resolve_target", "top_segments"]

METHODS = ("occlusion", "integrated_gradients")
KINDS = {"class": "class", "tags": "tag", "regression": "score"}
"""Each head's name in an explanation's ``kind``."""


@dataclass
class SongExplanation:
    """What drove one output of a model on one song.

    Attributes:
        log_mel: The song's log-mel in dB as the model sees it, ``(n_mels, n_frames)``.
        attribution: Attribution per log-mel cell, same shape; positive cells raise the
            target output.
        target: The class, tag or score explained.
        kind: ``class``, ``tag`` or ``score``.
        method: ``occlusion`` or ``integrated_gradients`` (a CNN's own log-mel), or
            ``audio_occlusion`` (cells silenced in the audio: any model).
        value: The target output on the song (probability, or the score).
        segments: The top grid cells, ranked by share of the positive attribution:
            ``{"start_s", "end_s", "f_low_hz", "f_high_hz", "share"}``.
        frame_seconds: Start time of each frame, ``(n_frames,)``.
        band_edges_hz: Lower and upper edge of the range each mel band stands for,
            ``(n_mels, 2)``; neighbours share an edge, never overlap.
        duration: Song length in seconds.
        n_segments: Time segments of the grid the segments were ranked on.
        n_bands: Mel bands of that grid.
        evidence: What the attribution measures: ``log-odds`` of the class or tag (a CNN's
            own methods), or the output itself, ``probability``, ``share`` or ``score``
            (audio occlusion; a CNN's score is also the score itself).
    """

    log_mel: np.ndarray
    attribution: np.ndarray
    target: str
    kind: str
    method: str
    value: float
    segments: list[dict[str, float]] = field(default_factory=list)
    frame_seconds: np.ndarray = field(default_factory=lambda: np.zeros(0))
    band_edges_hz: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    duration: float = 0.0
    n_segments: int = 16
    n_bands: int = 8
    evidence: str = "log-odds"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no arrays): target, value, method and the top segments."""
        return {
            "target": self.target,
            "kind": self.kind,
            "method": self.method,
            "evidence": self.evidence,
            "value": round(float(self.value), 6),
            "duration": round(float(self.duration), 3),
            "n_mels": int(self.log_mel.shape[0]),
            "n_frames": int(self.log_mel.shape[1]),
            "segments": [dict(s) for s in self.segments],
        }

    def to_png(self) -> bytes:
        """The log-mel with the attribution overlaid and the top segments boxed, as PNG bytes."""
        from encore.explain.plot import plot_explanation

        return plot_explanation(self)


def resolve_target(predictor: Any, target: str | None, probs: np.ndarray | None) -> tuple[str, str, int]:
    """``(name, head, index)`` for a target name; None means the top predicted class.

    Raises:
        ParameterError: the name is no class, tag or score of the model.
    """
    labels, tags, scores = predictor.label_names, predictor.tag_names, predictor.regression_names
    if target is None:
        if labels and probs is not None:
            index = int(np.argmax(probs))
            return labels[index], "class", index
        if scores:
            return scores[0], "regression", 0
        if tags:
            return tags[0], "tags", 0
        raise ParameterError("the model has no class, tag or score head to explain")
    for names, head in ((labels, "class"), (tags, "tags"), (scores, "regression")):
        if target in names:
            return target, head, names.index(target)
    raise ParameterError(
        f"--target {target!r} is not one of the model's classes {labels}, tags {tags} or scores {scores}; pick one of them"
    )


def top_segments(
    attribution: np.ndarray,
    frame_seconds: np.ndarray,
    band_edges_hz: np.ndarray,
    duration: float,
    *,
    n_segments: int = 16,
    n_bands: int = 8,
    top_k: int = 5,
) -> list[dict[str, float]]:
    """Grid cells ranked by their share of the positive attribution.

    Args:
        attribution: ``(n_mels, n_frames)``.
        frame_seconds: Start time of each frame, ``(n_frames,)``.
        band_edges_hz: Each mel band's ``(low, high)`` in Hz, ``(n_mels, 2)``.
        duration: The song's length in seconds.
        n_segments: Time segments of the grid.
        n_bands: Mel bands of the grid.
        top_k: Cells returned.

    Returns:
        Up to ``top_k`` dicts ``{"start_s", "end_s", "f_low_hz", "f_high_hz", "share"}``
        with ``share`` the cell's positive attribution over the song's; cells with no
        positive attribution are left out.
    """
    n_mels, n_frames = attribution.shape
    positive = np.clip(attribution, 0.0, None)
    total = float(positive.sum())
    if total <= 0.0:
        return []
    times, bands = grid_slices(n_frames, n_mels, n_segments=n_segments, n_bands=n_bands)
    hop = float(frame_seconds[1] - frame_seconds[0]) if frame_seconds.size > 1 else duration
    cells = []
    for t in times:
        for b in bands:
            share = float(positive[b, t].sum()) / total
            if share > 0.0:
                cells.append(
                    {
                        "start_s": round(float(frame_seconds[t.start]), 3),
                        "end_s": round(min(float(frame_seconds[t.stop - 1]) + hop, duration), 3),
                        "f_low_hz": round(float(band_edges_hz[b.start, 0]), 1),
                        "f_high_hz": round(float(band_edges_hz[b.stop - 1, 1]), 1),
                        "share": round(share, 4),
                    }
                )
    return sorted(cells, key=lambda c: -c["share"])[:top_k]


def explain_waveform(
    predictor: Any,
    waveform: np.ndarray,
    *,
    target: str | None = None,
    method: str = "occlusion",
    n_segments: int = 16,
    n_bands: int = 8,
    steps: int = 32,
    top_k: int = 5,
) -> SongExplanation:
    """Explain one output of a CNN :class:`~encore.inference.Predictor` on one song.

    Args:
        predictor: From ``Predictor.from_checkpoint``.
        waveform: Mono audio at ``predictor.sample_rate``, shape ``(n_samples,)``.
        target: A class, tag or score name; None explains the top predicted class (or
            the first score when the model has no class head).
        method: ``occlusion`` or ``integrated_gradients``.
        n_segments: Time segments of the occlusion grid and of the ranked segments.
        n_bands: Mel bands of the grid.
        steps: Path steps of integrated gradients.
        top_k: Segments listed.

    Returns:
        The explanation (arrays, ranked segments, ``to_dict``, ``to_png``).

    Raises:
        ParameterError: not a CNN predictor, unknown target or method, or bad audio.

    Example:
        >>> explanation = explain_waveform(predictor, waveform)          # doctest: +SKIP
        >>> explanation.segments[0]                                       # doctest: +SKIP
        {'start_s': 1.5, 'end_s': 2.0, 'f_low_hz': 861.3, 'f_high_hz': 1894.2, 'share': 0.41}
    """
    model = getattr(predictor, "model", None)
    if model is None or not hasattr(model, "frontend"):
        raise ParameterError(
            "occlusion of the log-mel and integrated gradients need a CNN run (a run folder with checkpoint.pt); "
            "any other model is explained by audio occlusion (`encore explain --method audio_occlusion`, explain_audio)"
        )
    if method not in METHODS:
        raise ParameterError(f"--method {method!r} is unknown; use {' or '.join(METHODS)}")
    model.eval()
    song = prepare_song(model, waveform, chunk_samples=predictor.chunk_samples, hop_samples=predictor.hop_samples)
    with torch.no_grad():
        probs = (
            head_outputs(model, predictor.card, "class", song.chunks.unsqueeze(0))[0].numpy() if predictor.label_names else None
        )
        name, head, index = resolve_target(predictor, target, probs)
        value = float(head_outputs(model, predictor.card, head, song.chunks.unsqueeze(0))[0, index])
        f = target_function(model, predictor.card, head, index)
    if method == "occlusion":
        attribution = occlusion(f, song, n_segments=n_segments, n_bands=n_bands)
    else:
        attribution = integrated_gradients(f, song, steps=steps)
    kind = KINDS[head]
    return SongExplanation(
        log_mel=song.picture(song.chunks),
        attribution=attribution,
        target=name,
        kind=kind,
        method=method,
        value=value,
        segments=top_segments(
            attribution,
            song.frame_seconds,
            song.band_edges_hz,
            song.duration,
            n_segments=n_segments,
            n_bands=n_bands,
            top_k=top_k,
        ),
        frame_seconds=song.frame_seconds,
        band_edges_hz=song.band_edges_hz,
        duration=song.duration,
        n_segments=n_segments,
        n_bands=n_bands,
        evidence="score" if head == "regression" else "log-odds",
    )
