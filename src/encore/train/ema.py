"""An exponential moving average of the weights, used for validation and the checkpoint.

On a few hundred songs the weights after any one step swing from epoch to epoch; their
running average generalises more smoothly (Polyak averaging; timm's ``ModelEmaV2``). The
decay ramps up as ``min(decay, (1 + t) / (10 + t))`` so a short run is not dominated
by its random start. BatchNorm statistics are copied, not averaged.
"""

from __future__ import annotations

import copy
from typing import Generic, TypeVar

import torch
from torch import nn

__all__ = ["WeightAverage"]

ModuleT = TypeVar("ModuleT", bound=nn.Module)


class WeightAverage(Generic[ModuleT]):
    """Keeps ``module``, an averaged copy of a model.

    Args:
        model: The model being trained.
        decay: The long-run decay per optimiser step, e.g. 0.99.
    """

    def __init__(self, model: ModuleT, decay: float) -> None:
        self.decay = decay
        self.module = copy.deepcopy(model).eval()
        for param in self.module.parameters():
            param.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        """Move the average toward ``model``'s current weights (after optimiser step ``step``)."""
        decay = min(self.decay, (1 + step) / (10 + step))
        for averaged, current in zip(self.module.parameters(), model.parameters(), strict=True):
            averaged.lerp_(current.detach(), 1 - decay)
        for averaged_buffer, buffer in zip(self.module.buffers(), model.buffers(), strict=True):
            averaged_buffer.copy_(buffer)
