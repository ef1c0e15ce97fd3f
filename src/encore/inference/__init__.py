"""Inference: :class:`Predictor` for CNN checkpoints, :class:`BaselinePredictor` for forests."""

from __future__ import annotations

import os
from pathlib import Path

from encore.exceptions import CheckpointError
from encore.inference.baseline import BaselinePredictor
from encore.inference.predictor import DEFAULT_BACKEND, Predictor

__all__ = ["BaselinePredictor", "Predictor", "load_predictor"]


def load_predictor(
    run: str | os.PathLike, *, backend: str = DEFAULT_BACKEND, device: str = "auto"
) -> Predictor | BaselinePredictor:
    """The predictor for a run folder, a CNN ``checkpoint.pt`` or an exported ``.onnx`` file.

    Args:
        run: The run folder or file.
        backend: For CNN runs, ``"torch"`` (default), ``"onnx"`` or ``"eager"``.
        device: For CNN runs, ``auto`` (a CUDA GPU when present), ``cpu``, ``cuda`` or
            ``cuda:N``; the forest runs on the CPU.
    """
    path = Path(run)
    if path.is_file() and path.suffix == ".onnx":
        return Predictor.from_onnx(path)
    if path.is_file() or (path / "checkpoint.pt").is_file():
        return Predictor.from_checkpoint(path, backend=backend, device=device)
    if (path / "model_card.json").is_file():
        return BaselinePredictor.from_run(path)
    raise CheckpointError(f"{path} holds neither checkpoint.pt (CNN) nor model_card.json (random forest); pass a run folder")
