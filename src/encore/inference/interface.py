"""The one predictor interface: what every caller of a predictor may use.

:class:`~encore.inference.Predictor` (a CNN checkpoint or its ONNX export) and
:class:`~encore.inference.BaselinePredictor` (a random forest or gradient boosting on
handcrafted features) both satisfy :class:`SongPredictor`, so batch prediction, the
service, evaluation and suggestions take either without asking which it is. Code that
needs more than this (the CNN's model for explanations, the forest's feature matrix)
checks the class with ``isinstance``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from encore.audio.io import AudioSource
from encore.models.card import BlendCard, ClassicalCard, ModelCard, NoveltyCalibration

__all__ = ["SongPredictor"]


class SongPredictor(Protocol):
    """Song-level predictions from a run, rebuilt from the run's own card.

    Attributes:
        card: The model card the run was saved with (names, settings, metrics).
        backend: What runs the model: ``torch``, ``eager``, ``onnx`` (a CNN) or ``forest``
            (a classical model) or ``blend``.
        device: Where it runs: ``cpu``, ``cuda`` or ``cuda:N``.
    """

    backend: str
    device: str

    @property
    def card(self) -> ModelCard | ClassicalCard | BlendCard:
        """The run's model card."""
        ...

    @property
    def sample_rate(self) -> int:
        """The rate, in Hz, the model reads audio at."""
        ...

    @property
    def label_names(self) -> list[str]:
        """The classes of ``class_probs``, in order; empty without a class head."""
        ...

    @property
    def tag_names(self) -> list[str]:
        """The tags of ``tag_probs``, in order; empty without a tag head."""
        ...

    @property
    def regression_names(self) -> list[str]:
        """The scores of ``scores``, in order; empty without a score head."""
        ...

    @property
    def novelty_calibration(self) -> NoveltyCalibration | None:
        """The scale of ``novelty_distance`` (its held-out quantiles and threshold); None without one."""
        ...

    def predict_source(self, source: AudioSource, *, max_seconds: float | None = None) -> tuple[dict[str, np.ndarray], float]:
        """Song-level arrays and the duration in seconds for a file, bytes or file object.

        Raises:
            AudioDecodeError: The audio cannot be decoded.
            ParameterError: The audio is longer than ``max_seconds``.
        """
        ...

    def predict_waveform(self, waveform: np.ndarray) -> dict[str, np.ndarray]:
        """Song-level arrays for one mono waveform at :attr:`sample_rate`: ``class_probs``
        (n_classes,), ``tag_probs`` (n_tags,), ``scores`` (n_scores,), each where the model has
        that head."""
        ...

    def predict_arrays(self, waveforms: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        """Stacked song-level arrays for many songs: ``class_probs`` (n_songs, n_classes), ..."""
        ...

    def predict_file(self, path: str | os.PathLike) -> dict[str, Any]:
        """A file's prediction as JSON-ready data (path, duration, label, probs, ...)."""
        ...

    def describe(self, arrays: dict[str, np.ndarray], *, top_tags: int = 5) -> dict[str, Any]:
        """JSON-ready view of one song's arrays (label, probs, tags, scores, intervals)."""
        ...
