"""Predictions from a classical run (random forest or gradient boosting), with the same interface as :class:`Predictor`
(:class:`~encore.inference.interface.SongPredictor`)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import joblib
import numpy as np

from encore.audio import load_audio
from encore.audio.io import AudioSource
from encore.exceptions import CheckpointError
from encore.inference.predictor import SongPredictions
from encore.models.card import ClassicalCard

__all__ = ["BaselinePredictor", "song_means"]


def song_means(rows: np.ndarray, owner: np.ndarray, n_songs: int) -> np.ndarray:
    """``(n_songs, k)`` float64: each song's mean over its rows of ``rows`` (``(n_rows, k)``; ``owner``: each row's song)."""
    rows = np.asarray(rows, dtype=np.float64).reshape(len(owner), -1)
    sums = np.zeros((n_songs, rows.shape[1]))
    np.add.at(sums, owner, rows)
    return sums / np.bincount(owner, minlength=n_songs)[:, None]


class BaselinePredictor(SongPredictions):
    """Song-level predictions of a classical run.

    The models read the full handcrafted vector of the whole song, or, when the card has
    ``segments``, of each segment, and a song's prediction is the mean of its segments'
    (class probabilities, tag shares, scores). A model trained on selected features
    picks its own columns (:class:`~encore.train.selection.KeptColumns`). A card of an
    earlier feature version reads the first ``len(feature_names)`` entries, which later
    versions keep unchanged.
    """

    backend = "forest"
    """What runs the model, as the service reports it (the CNN's is ``torch``, ``eager`` or ``onnx``)."""
    device = "cpu"
    """scikit-learn runs on the CPU."""

    def __init__(self, models: dict[str, Any], model_card: ClassicalCard) -> None:
        self.models = models
        self.card: ClassicalCard = model_card
        self.feature_cache: Any = None
        """What :meth:`predict_arrays` computes features through (None: nothing kept); an explanation sets
        a :class:`~encore.features.cache.MemoryFeatureCache` while it predicts a song's silenced copies."""

    @classmethod
    def from_run(cls, run_dir: str | os.PathLike) -> BaselinePredictor:
        """Load ``model_card.json`` and ``model.joblib`` (a pickle: load only runs you trust)."""
        run_dir = Path(run_dir)
        card_path, model_path = run_dir / "model_card.json", run_dir / "model.joblib"
        if not card_path.is_file() or not model_path.is_file():
            raise CheckpointError(
                f"{run_dir} is not a classical (random-forest or boosting) run; it needs model_card.json and model.joblib"
            )
        return cls(joblib.load(model_path), ClassicalCard.read(card_path))

    @property
    def tag_names(self) -> list[str]:
        return list(self.card.tag_names) if "tagger" in self.models else []

    @property
    def regression_names(self) -> list[str]:
        return list(self.card.regression_names) if "regressor" in self.models else []

    def features(
        self, waveforms: Sequence[np.ndarray], cache: Any = None, callback: Callable[[int], None] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The rows of handcrafted features the models read and each row's song index
        (one row a song, or one a segment), computed as the card's settings say (through a
        :class:`~encore.features.cache.FeatureCache` when given); ``callback(1)`` after each song."""
        from encore.features.extract import compute_feature_rows

        s, segments = self.card.feature_settings, self.card.segments
        features, owner = compute_feature_rows(
            waveforms,
            sample_rate=s.sample_rate,
            n_fft=s.n_fft,
            hop_length=s.hop_length,
            segment_seconds=None if segments is None else segments.seconds,
            max_segments=1 if segments is None else segments.max_segments,
            cache=cache,
            callback=callback,
        )
        return features[:, : len(self.card.feature_names)], owner

    def predict_features(self, features: np.ndarray, owner: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Song-level arrays from :meth:`features`' rows: each song's mean over its rows (``owner``; None = a row a song)."""
        out = self._predict_rows(features)
        n_songs = int(owner.max()) + 1 if owner is not None and len(owner) else 0
        if owner is None or len(owner) == n_songs:  # a row a song: the rows are the songs
            return out
        return {key: song_means(rows, owner, n_songs).astype(np.float32) for key, rows in out.items()}

    def _predict_rows(self, features: np.ndarray) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        if "classifier" in self.models:
            probs = np.zeros((len(features), len(self.label_names)), dtype=np.float32)
            probs[:, self.card.classes_] = self.models["classifier"].predict_proba(features)
            out["class_probs"] = probs
        if "regressor" in self.models:
            out["scores"] = self.models["regressor"].predict(features).reshape(len(features), -1).astype(np.float32)
        if "tagger" in self.models:
            shares = self.models["tagger"].predict(features).reshape(len(features), -1)
            out["tag_probs"] = np.clip(shares, 0.0, 1.0).astype(np.float32)
        return out

    def predict_arrays(self, waveforms: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        return self.predict_features(*self.features(waveforms, cache=self.feature_cache)) if len(waveforms) else {}

    def predict_source(self, source: AudioSource, *, max_seconds: float | None = None) -> tuple[dict[str, np.ndarray], float]:
        """Song-level arrays and duration (seconds) for a file, bytes or file object.

        The features summarise the whole song (or its segments), so it is decoded whole (the CNN decodes in windows).

        Raises:
            AudioDecodeError: The audio cannot be decoded.
            ParameterError: The audio is longer than ``max_seconds``.
        """
        if max_seconds is not None:
            self.source_duration(source, max_seconds)
        waveform = load_audio(source, sample_rate=self.sample_rate)
        return self.predict_waveform(waveform), len(waveform) / self.sample_rate
