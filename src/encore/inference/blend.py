"""Predictions of a blend (``--model blend``): the weighted mean of its members' song-level predictions.

A blend run folder holds ``blend_card.json`` and ``members/<name>/``, each a run folder
(a CNN, a pretrained probe, a classical model) that loads as any run does. Each member
predicts a song through its own preprocessing at its own sample rate (a file is decoded
once a member rate; a waveform is resampled to each member's rate), and the blend
averages, name by name, the class probabilities, tag shares and scores of the members that
have that head, with the card's weights renormalised over them. A score's interval is the
blended score plus or minus the weighted mean of the members' half-widths. The novelty
score, distance and scale both, is the first member's whose card holds a fitted novelty
scale (a probe's: how unlike its training songs the song's embedding is).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from encore.audio.io import AudioSource
from encore.exceptions import CheckpointError
from encore.inference.interface import SongPredictor
from encore.inference.predictor import SongPredictions
from encore.models.card import BlendCard, NoveltyCalibration

__all__ = ["BLEND_CARD", "BlendPredictor", "blend_arrays", "novelty_member"]

BLEND_CARD = "blend_card.json"
"""The blend's card in its run folder; its members are run folders under ``members/``."""


def _columns(member_names: Sequence[str], names: Sequence[str]) -> list[int] | None:
    """Where each of ``names`` sits in a member's ``member_names``; None when the member lacks one."""
    if not set(names) <= set(member_names):
        return None
    return [list(member_names).index(n) for n in names]


def novelty_member(predictors: Sequence[SongPredictor]) -> int | None:
    """The first member whose card holds a fitted novelty scale: the blend's novelty score is its, distance and scale."""
    for i, predictor in enumerate(predictors):
        calibration = predictor.novelty_calibration
        if calibration is not None and calibration.usable:
            return i
    return None


def blend_arrays(
    members: Sequence[tuple[SongPredictor, float, Mapping[str, np.ndarray]]],
    *,
    label_names: Sequence[str],
    tag_names: Sequence[str],
    regression_names: Sequence[str],
) -> dict[str, np.ndarray]:
    """The weighted mean of members' song arrays (one song ``(k,)`` or many ``(n, k)``).

    Args:
        members: ``(predictor, weight, arrays)`` a member: its names say which column is
            which; a head it lacks (or whose names differ from the blend's) leaves it out of
            that head's mean.
        label_names, tag_names, regression_names: The blend's heads, in its order.
    """
    heads = (
        ("class_probs", "label_names", label_names),
        ("tag_probs", "tag_names", tag_names),
        ("scores", "regression_names", regression_names),
    )
    out: dict[str, np.ndarray] = {}
    for key, attribute, names in heads:
        if not names:
            continue
        total, weight_sum, half, half_weight = None, 0.0, None, 0.0
        for predictor, weight, arrays in members:
            columns = _columns(getattr(predictor, attribute), names) if key in arrays else None
            if columns is None:
                continue
            value = np.asarray(arrays[key], dtype=np.float64)[..., columns]
            total = weight * value if total is None else total + weight * value
            weight_sum += weight
            if key == "scores" and "score_intervals" in arrays:
                bounds = np.asarray(arrays["score_intervals"], dtype=np.float64)[..., columns, :]
                width = (bounds[..., 1] - bounds[..., 0]) / 2.0
                half = weight * width if half is None else half + weight * width
                half_weight += weight
        if total is None:
            continue
        out[key] = (total / weight_sum).astype(np.float32)
        if key == "scores" and half is not None:
            mean_half = half / half_weight
            out["score_intervals"] = np.stack([out[key] - mean_half, out[key] + mean_half], axis=-1).astype(np.float32)
    novel = novelty_member([predictor for predictor, _, _ in members])
    if novel is not None and "novelty_distance" in members[novel][2]:
        out["novelty_distance"] = np.asarray(members[novel][2]["novelty_distance"], dtype=np.float32)
    return out


class BlendPredictor(SongPredictions):
    """Song-level predictions of a blend run, with the interface of every predictor.

    Attributes:
        members: ``(name, predictor, weight)`` per member, in the card's order.
    """

    backend = "blend"
    """What runs the model, as the service reports it."""

    def __init__(self, members: list[tuple[str, SongPredictor, float]], card: BlendCard) -> None:
        self.members = members
        self.card: BlendCard = card
        devices = {p.device for _, p, _ in members if p.device != "cpu"}
        self.device = devices.pop() if len(devices) == 1 else "cpu"

    @classmethod
    def from_run(cls, run_dir: str | os.PathLike, *, load_member: Any) -> BlendPredictor:
        """Read ``blend_card.json`` and load each member with ``load_member(folder)``.

        Raises:
            CheckpointError: The card or a member folder is missing or damaged.
        """
        run_dir = Path(run_dir)
        card = BlendCard.read(run_dir / BLEND_CARD)
        members = []
        for record in card.members:
            folder = run_dir / "members" / record.name
            if not folder.is_dir():
                raise CheckpointError(f"{run_dir} is a blend whose member {record.name!r} is missing ({folder}); train it again")
            members.append((record.name, load_member(folder), record.weight))
        return cls(members, card)

    @property
    def tag_names(self) -> list[str]:
        return list(self.card.tag_names) if any(p.tag_names for _, p, _ in self.members) else []

    @property
    def regression_names(self) -> list[str]:
        return list(self.card.regression_names) if any(p.regression_names for _, p, _ in self.members) else []

    @property
    def novelty_calibration(self) -> NoveltyCalibration | None:
        novel = novelty_member([predictor for _, predictor, _ in self.members])
        return None if novel is None else self.members[novel][1].novelty_calibration

    def blend(self, member_arrays: Sequence[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
        """The blend of each member's arrays (in member order), as :func:`blend_arrays` makes it."""
        return blend_arrays(
            [(p, w, a) for (_, p, w), a in zip(self.members, member_arrays, strict=True)],
            label_names=self.label_names,
            tag_names=self.tag_names,
            regression_names=self.regression_names,
        )

    def _at_rate(self, waveforms: Sequence[np.ndarray], rate: int) -> list[np.ndarray]:
        if rate == self.sample_rate:
            return list(waveforms)
        import soxr

        return [soxr.resample(np.asarray(w, dtype=np.float32), self.sample_rate, rate).astype(np.float32) for w in waveforms]

    def predict_arrays(self, waveforms: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        """Stacked song arrays for waveforms at :attr:`sample_rate` (resampled to each member's rate)."""
        if not len(waveforms):
            return {}
        return self.blend([p.predict_arrays(self._at_rate(waveforms, p.sample_rate)) for _, p, _ in self.members])

    def predict_source(self, source: AudioSource, *, max_seconds: float | None = None) -> tuple[dict[str, np.ndarray], float]:
        """Song arrays and duration (seconds): each member decodes the audio at its own rate.

        Raises:
            AudioDecodeError: The audio cannot be decoded.
            ParameterError: The audio is longer than ``max_seconds``.
        """
        if max_seconds is not None:  # checked once here, not again by each member
            self.source_duration(source, max_seconds)
        results = []
        for _, predictor, _ in self.members:
            if hasattr(source, "seek"):
                source.seek(0)
            results.append(predictor.predict_source(source))
        return self.blend([arrays for arrays, _ in results]), results[0][1]
