"""``Predictor``: the only inference path, rebuilt entirely from a checkpoint's card.

A song is cut into the model's chunks, chunks are batched through the model, and chunk
outputs are aggregated to the song (mean of probabilities or of logits, as the card
says). A song gives the same result alone or in a batch: chunks never mix across songs
in the aggregation, and the model runs in eval mode (BatchNorm uses running stats).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from encore.audio import chunk_waveform, load_audio
from encore.models.checkpoint import load_model
from encore.models.classifier import EncoreModel

logger = logging.getLogger(__name__)

__all__ = ["Predictor", "SongPredictions"]


class SongPredictions:
    """What every predictor shares: a JSON view of song arrays and prediction from a file.

    Subclasses give ``sample_rate``, ``label_names``, ``tag_names``, ``regression_names``
    and ``predict_waveform``.
    """

    def describe(self, arrays: dict[str, np.ndarray], *, top_tags: int = 5) -> dict[str, Any]:
        """JSON-ready view of one song's arrays."""
        out: dict[str, Any] = {}
        if "class_probs" in arrays:
            probs = arrays["class_probs"]
            out["label"] = self.label_names[int(np.argmax(probs))]
            out["probs"] = {n: round(float(p), 4) for n, p in zip(self.label_names, probs, strict=True)}
        if "tag_probs" in arrays:
            order = np.argsort(arrays["tag_probs"])[::-1][:top_tags]
            out["tags"] = {self.tag_names[i]: round(float(arrays["tag_probs"][i]), 4) for i in order}
        if "scores" in arrays:
            out["scores"] = {n: round(float(v), 4) for n, v in zip(self.regression_names, arrays["scores"], strict=True)}
        return out

    def predict_file(self, path: str | os.PathLike) -> dict[str, Any]:
        """Decode ``path`` at the model's rate and describe its prediction."""
        waveform = load_audio(path, sample_rate=self.sample_rate)
        arrays = self.predict_waveform(waveform)
        return {"path": str(Path(path)), "duration": round(len(waveform) / self.sample_rate, 3), **self.describe(arrays)}


class Predictor(SongPredictions):
    """Song-level predictions from an :class:`EncoreModel` and its model card.

    Args:
        model: The model (put into eval mode).
        model_card: Its card (chunk length, aggregation, score scaling, names).
        batch_size: Chunks per forward pass.
    """

    def __init__(self, model: EncoreModel, model_card: dict[str, Any], *, batch_size: int = 32) -> None:
        self.model = model.eval()
        self.card = model_card
        self.batch_size = batch_size

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, *, batch_size: int = 32) -> Predictor:
        """Load a run folder or ``checkpoint.pt``; nothing else is asked for."""
        model, card = load_model(path)
        return cls(model, card, batch_size=batch_size)

    @property
    def sample_rate(self) -> int:
        return int(self.card["model_kwargs"]["frontend"]["sample_rate"])

    @property
    def chunk_samples(self) -> int:
        return int(round(self.card["chunk_seconds"] * self.sample_rate))

    @property
    def label_names(self) -> list[str]:
        return self.model.label_names

    @property
    def tag_names(self) -> list[str]:
        return self.model.tag_names

    @property
    def regression_names(self) -> list[str]:
        return self.model.regression_names

    @torch.inference_mode()
    def _chunk_outputs(self, chunks: np.ndarray) -> dict[str, torch.Tensor]:
        outputs: dict[str, list[torch.Tensor]] = {}
        for start in range(0, len(chunks), self.batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(chunks[start : start + self.batch_size]))
            for name, logits in self.model(batch).items():
                outputs.setdefault(name, []).append(logits.float())
        return {name: torch.cat(parts) for name, parts in outputs.items()}

    def _aggregate(self, outputs: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
        mean_logits = self.card.get("aggregate", "mean_probs") == "mean_logits"
        result: dict[str, np.ndarray] = {}
        if "class" in outputs:
            logits = outputs["class"] / float(self.card.get("temperature", 1.0))
            probs = torch.softmax(logits.mean(0), -1) if mean_logits else torch.softmax(logits, -1).mean(0)
            result["class_probs"] = probs.numpy()
        if "tags" in outputs:
            logits = outputs["tags"]
            probs = torch.sigmoid(logits.mean(0)) if mean_logits else torch.sigmoid(logits).mean(0)
            result["tag_probs"] = probs.numpy()
        if "regression" in outputs:
            stats = self.card.get("regression_stats", {})
            mean = np.asarray(stats.get("mean", 0.0), dtype=np.float32)
            std = np.asarray(stats.get("std", 1.0), dtype=np.float32)
            result["scores"] = outputs["regression"].mean(0).numpy() * std + mean
        return result

    def predict_waveform(self, waveform: np.ndarray) -> dict[str, np.ndarray]:
        """Song-level arrays for one mono waveform at :attr:`sample_rate`.

        Returns:
            ``class_probs`` (n_classes,), ``tag_probs`` (n_tags,), ``scores``
            (n_scores,), each present when the model has that head.
        """
        chunks = chunk_waveform(np.asarray(waveform, dtype=np.float32), chunk_samples=self.chunk_samples)
        return self._aggregate(self._chunk_outputs(chunks))

    def predict_arrays(self, waveforms: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        """Stacked song-level arrays for many songs: ``class_probs`` (n_songs, n_classes)..."""
        per_song = [self.predict_waveform(w) for w in waveforms]
        keys = per_song[0].keys() if per_song else ()
        return {k: np.stack([p[k] for p in per_song]) for k in keys}
