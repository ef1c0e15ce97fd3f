"""Waveform augmentation for training batches (SpecAugment lives in the model).

Random crops happen when a batch is drawn; gain and noise here; mixup in the loop.
All of it runs in training only.
"""

from __future__ import annotations

import torch
from torch import Tensor

from encore.config import AugmentConfig

__all__ = ["augment_waveforms"]


def augment_waveforms(waveform: Tensor, config: AugmentConfig, generator: torch.Generator | None = None) -> Tensor:
    """Random gain and additive white noise.

    Args:
        waveform: (batch, n_samples).
        config: Gain range in dB, noise SNR in dB (None = no noise) and probability.
        generator: Torch RNG on the waveform's device, for reproducible batches.

    Returns:
        (batch, n_samples), a new tensor.
    """
    batch, device = waveform.shape[0], waveform.device
    if config.gain_db > 0:
        gain_db = (torch.rand(batch, 1, generator=generator, device=device) * 2 - 1) * config.gain_db
        waveform = waveform * torch.pow(10.0, gain_db / 20.0)
    if config.noise_snr_db is not None and config.noise_p > 0:
        power = waveform.pow(2).mean(dim=1, keepdim=True).clamp_min(1e-10)
        noise_power = power / (10.0 ** (config.noise_snr_db / 10.0))
        apply = (torch.rand(batch, 1, generator=generator, device=device) < config.noise_p).float()
        noise = torch.randn(waveform.shape, generator=generator, device=device) * noise_power.sqrt()
        waveform = waveform + apply * noise
    return waveform
