"""Transfer: start a new task from an earlier run's backbone with new heads.

No pretrained weights can be downloaded here, so the source is one of our own runs
(say, a tagging model trained on a large listener-tag vocabulary, reused for a small
genre task). The front end, input normalisation and backbone are copied; the heads are
new because the new task's labels differ. ``freeze_backbone`` turns fine-tuning into a
linear probe: the copied part neither learns nor updates its BatchNorm statistics.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from torch import nn

from encore.exceptions import CheckpointError, ParameterError
from encore.models.checkpoint import load_checkpoint
from encore.models.classifier import EncoreModel

logger = logging.getLogger(__name__)

__all__ = ["BODY_PREFIXES", "freeze_body", "load_body", "set_body_eval"]

BODY_PREFIXES = ("frontend.", "input_norm.", "backbone.")
"""State-dict prefixes that transfer; everything else (the heads) starts fresh."""


_SETTING = {
    "backbone": "model.name",
    "backbone_kwargs": "model.kwargs",
    "frontend": "features",
    "n_members": "model.members",
}
"""The config key a model card entry comes from, for messages."""

def _checkpoint_path(source: str | os.PathLike) -> Path:
    path = Path(source)
    if path.is_dir():
        path = path / "checkpoint.pt"
    if not path.exists():
        raise CheckpointError(f"--init-from (train.init_from) {str(source)!r}: no checkpoint there; pass a CNN run folder or its checkpoint.pt")
    return path


def load_body(model: EncoreModel, model_kwargs: dict[str, Any], source: str | os.PathLike) -> dict[str, Any]:
    """Copy the front end, input norm and backbone of ``source`` into ``model``.

    Args:
        model: The new model (its heads stay as initialised).
        model_kwargs: The new model's arguments, checked against the source's.
        source: A CNN run folder or checkpoint.

    Returns:
        Provenance for the model card (source path, its backbone, tensors copied).

    Raises:
        ParameterError: The source has another backbone, backbone arguments or front end.
    """
    path = _checkpoint_path(source)
    state = load_checkpoint(path)
    card = state.get("model_card", {})
    if card.get("model_type") != "cnn":
        raise ParameterError(f"--init-from (train.init_from) {str(source)!r} is a {card.get('model_type')!r} run; transfer needs a CNN run")
    old = card["model_kwargs"]
    for key in ("backbone", "backbone_kwargs", "frontend", "n_members"):
        default = 1 if key == "n_members" else None  # cards before ensembles had one network
        if old.get(key, default) != model_kwargs.get(key, default):
            raise ParameterError(
                f"--init-from (train.init_from) {str(source)!r} was trained with {_SETTING[key]} {old.get(key, default)!r} "
                f"but this run asks for {model_kwargs.get(key, default)!r}; "
                f"use the same model and features settings as the source run"
            )
    body = {k: v for k, v in state["model_state"].items() if k.startswith(BODY_PREFIXES)}
    missing, unexpected = model.load_state_dict(body, strict=False)
    not_loaded = [k for k in missing if k.startswith(BODY_PREFIXES)]
    if not_loaded or unexpected:
        raise CheckpointError(
            f"--init-from (train.init_from) {str(source)!r}: its network does not fit this run's "
            f"({len(not_loaded)} tensors missing, {len(unexpected)} unexpected); use the source run's model settings"
        )
    logger.info("transferred %d tensors from %s", len(body), path)
    return {"source": str(path), "backbone": old["backbone"], "tensors": len(body)}


def _body_modules(model: EncoreModel) -> list[nn.Module]:
    return [model.frontend, model.input_norm, model.backbone]


def freeze_body(model: EncoreModel) -> None:
    """Stop gradients through the front end, input norm and backbone."""
    for module in _body_modules(model):
        for param in module.parameters():
            param.requires_grad_(False)


def set_body_eval(model: EncoreModel) -> None:
    """Keep a frozen body's BatchNorm statistics fixed while the heads train."""
    for module in _body_modules(model):
        module.eval()
