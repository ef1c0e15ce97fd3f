"""A registry of backbones: ``@register_model`` and ``create_model(name, **kwargs)``.

Each entry is a class taking ``n_mels`` plus its own keyword arguments and returning a
``(batch, embedding_dim)`` embedding from a ``(batch, n_mels, n_frames)`` log-mel, with
an ``embedding_dim`` attribute. Per-model needs (the chunk length it was designed for)
live with the entry, and so does ``input_norm``: whether the model's per-band input
BatchNorm goes before the backbone (off for a ported network that normalises its own
input as its original did), and how it runs fastest on a CPU: in channels-last memory or
not, and how many chunks a forward pass takes (``bench/bench_embed.py`` measures both).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from encore.exceptions import ParameterError

__all__ = ["ModelEntry", "create_model", "list_models", "model_entry", "register_model"]


@dataclass(frozen=True)
class ModelEntry:
    name: str
    cls: type[nn.Module]
    default_chunk_seconds: float
    description: str
    input_norm: bool = True
    channels_last: bool = True
    cpu_batch_size: int | None = None


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(
    name: str,
    *,
    default_chunk_seconds: float = 3.0,
    input_norm: bool = True,
    channels_last: bool = True,
    cpu_batch_size: int | None = None,
) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator adding a backbone to the registry under ``name``.

    Args:
        name: The registry name.
        default_chunk_seconds: The chunk length the backbone was designed for.
        input_norm: Put :class:`~encore.models.EncoreModel`'s per-band input BatchNorm
            before it (False: the backbone normalises its input itself).
        channels_last: Whether it runs faster in channels-last memory on a CPU (training
            and inference put it there only then).
        cpu_batch_size: Chunks per forward pass on a CPU where it differs from the
            Predictor's default (:data:`encore.inference.predictor.DEFAULT_BATCH_SIZE`).
    """

    def wrap(cls: type[nn.Module]) -> type[nn.Module]:
        if name in _REGISTRY:
            raise ParameterError(f"model name {name!r} is registered twice")
        doc = (cls.__doc__ or "").strip().splitlines()
        _REGISTRY[name] = ModelEntry(
            name, cls, default_chunk_seconds, doc[0] if doc else "", input_norm, channels_last, cpu_batch_size
        )
        return cls

    return wrap


def list_models() -> list[str]:
    """Names of every registered backbone."""
    return sorted(_REGISTRY)


def model_entry(name: str) -> ModelEntry:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ParameterError(f"unknown model {name!r} (model.name); choose one of {', '.join(list_models())}") from None


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build the registered backbone ``name`` with ``kwargs``."""
    entry = model_entry(name)
    try:
        return entry.cls(**kwargs)
    except TypeError as err:
        raise ParameterError(f"bad arguments for model {name!r}: {err}") from err
