"""Inference: :class:`Predictor` for CNN checkpoints, :class:`BaselinePredictor` for forests."""

from __future__ import annotations

import os
from pathlib import Path

from encore.exceptions import CheckpointError
from encore.inference.baseline import BaselinePredictor
from encore.inference.predictor import Predictor

__all__ = ["BaselinePredictor", "Predictor", "load_predictor"]


def load_predictor(run: str | os.PathLike) -> Predictor | BaselinePredictor:
    """The predictor for a run folder (or a CNN ``checkpoint.pt``), whichever kind it is."""
    path = Path(run)
    if path.is_file() or (path / "checkpoint.pt").is_file():
        return Predictor.from_checkpoint(path)
    if (path / "model_card.json").is_file():
        return BaselinePredictor.from_run(path)
    raise CheckpointError(f"{path} holds neither checkpoint.pt (CNN) nor model_card.json (random forest); pass a run folder")
