"""Checkpoints that carry their model card.

A checkpoint is a plain dict saved with ``torch.save`` and read back with
``weights_only=True``: ``{"model_state": ..., "model_card": {...}}`` plus, for a run in
progress, the optimiser, scheduler and RNG states. The model card holds everything
needed to rebuild and use the model: model arguments (front-end settings, label
names), chunk length, aggregation, the resolved config, metrics and the manifest digest.

A published model converted by ``encore pretrained convert`` is an ordinary checkpoint
whose card adds (:data:`PRETRAINED_CARD_KEYS`): ``pretrained`` (its name),
``origin`` (paper, package and version, checkpoint, dataset, when and by what it was
converted), ``licence`` and ``input_spec`` (sample rate, FFT, hop, mel bands and
filters, compression, patch length); its tags are ``model_kwargs["tag_names"]``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch

from encore.exceptions import CheckpointError
from encore.models.classifier import EncoreModel

logger = logging.getLogger(__name__)

CARD_VERSION = 1
PRETRAINED_CARD_KEYS = ("pretrained", "origin", "licence", "input_spec")
"""What a converted published model's card adds to a trained run's."""

__all__ = ["CARD_VERSION", "PRETRAINED_CARD_KEYS", "load_checkpoint", "load_model", "save_checkpoint"]


def save_checkpoint(path: str | os.PathLike, model: torch.nn.Module, model_card: dict[str, Any], **extra: Any) -> Path:
    """Atomically write ``model``'s weights, its card and any ``extra`` state."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload = {"model_state": state, "model_card": {**model_card, "card_version": CARD_VERSION}, **extra}
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    torch.save(payload, tmp)
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint dict safely (``weights_only=True``), checking it has a model card."""
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
    if not isinstance(payload, dict) or "model_card" not in payload or "model_state" not in payload:
        raise CheckpointError(f"checkpoint {str(path)!r} has no model card; it was not written by encore")
    card = payload["model_card"]
    if card.get("card_version") != CARD_VERSION:
        raise CheckpointError(
            f"checkpoint {str(path)!r} has model card version {card.get('card_version')!r}, "
            f"this encore reads version {CARD_VERSION}; retrain or use a matching encore"
        )
    _drop_removed_options(card, path)
    return payload


def load_model(path: str | os.PathLike) -> tuple[EncoreModel, dict[str, Any]]:
    """Rebuild the model from its checkpoint's card, in eval mode."""
    payload = load_checkpoint(path)
    card = payload["model_card"]
    model = EncoreModel(**card["model_kwargs"])
    try:
        model.load_state_dict(payload["model_state"])
    except RuntimeError as err:
        raise CheckpointError(f"checkpoint {str(path)!r} weights do not fit its model card: {err}") from err
    return model.eval(), card


def _drop_removed_options(card: dict[str, Any], path: str | os.PathLike) -> None:
    """Checkpoints written before ``model.cepstral_statistics`` was removed carry it (as 0) in their model arguments."""
    kwargs = card.get("model_kwargs")
    if isinstance(kwargs, dict) and kwargs.pop("cepstral_statistics", 0):
        raise CheckpointError(
            f"checkpoint {str(path)!r} uses cepstral statistics, which this encore no longer has; retrain the run without them"
        )
