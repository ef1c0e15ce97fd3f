"""Checkpoints that carry their model card.

A checkpoint is a plain dict saved with ``torch.save`` and read back with
``weights_only=True``: ``{"model_state": ..., "model_card": {...}}`` plus, for a run in
progress, the optimiser, scheduler and RNG states. The card is stored as plain values
(:meth:`ModelCard.to_dict`) and read back as a :class:`~encore.models.card.ModelCard`,
migrated from an older version where needed: everything needed to rebuild and use the
model (network, chunk spec, aggregation, calibration, names), the resolved config, metrics
and the manifest digest, and for a converted published model its origin and licence.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from encore.exceptions import CheckpointError
from encore.models.card import ModelCard
from encore.models.classifier import EncoreModel

logger = logging.getLogger(__name__)

__all__ = ["load_checkpoint", "load_model", "save_checkpoint"]


def save_checkpoint(path: str | os.PathLike, model: torch.nn.Module, model_card: ModelCard, **extra: Any) -> Path:
    """Atomically write ``model``'s weights, its card and any ``extra`` state."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload = {"model_state": state, "model_card": model_card.to_dict(), **extra}
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    torch.save(payload, tmp)
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint dict safely (``weights_only=True``); its ``model_card`` is a :class:`ModelCard`."""
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.pt"
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist; pass a run folder or its checkpoint.pt")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises many kinds for a bad file
        raise CheckpointError(
            f"checkpoint {str(path)!r} could not be read: it is truncated, corrupt or not an encore checkpoint "
            "(train the run again or restore the file)"
        ) from err
    if not isinstance(payload, dict) or not isinstance(payload.get("model_card"), Mapping) or "model_state" not in payload:
        raise CheckpointError(f"checkpoint {str(path)!r} has no model card; it was not written by encore")
    payload["model_card"] = ModelCard.from_dict(payload["model_card"], source=f"checkpoint {str(path)!r}")
    return payload


def load_model(path: str | os.PathLike) -> tuple[EncoreModel, ModelCard]:
    """Rebuild the model from its checkpoint's card, in eval mode."""
    payload = load_checkpoint(path)
    card: ModelCard = payload["model_card"]
    model = EncoreModel(**card.network.model_kwargs())
    try:
        model.load_state_dict(payload["model_state"])
    except RuntimeError as err:
        raise CheckpointError(f"checkpoint {str(path)!r} weights do not fit its model card: {err}") from err
    return model.eval(), card
