"""Models: a backbone registry, the multi-head model, and checkpoints with model cards."""

from encore.models import cnn as _cnn  # noqa: F401  (registers the backbones)
from encore.models import musicnn as _musicnn  # noqa: F401  (registers musicnn's ported networks)
from encore.models.card import ClassicalCard, ModelCard
from encore.models.classifier import EncoreModel, SpecAugment
from encore.models.registry import create_model, list_models, model_entry, register_model

__all__ = [
    "ClassicalCard",
    "EncoreModel",
    "ModelCard",
    "SpecAugment",
    "create_model",
    "list_models",
    "model_entry",
    "register_model",
]
