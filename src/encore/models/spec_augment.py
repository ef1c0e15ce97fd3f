"""Augmentation on the log-mel inside the model, active in training mode only.

- Time and frequency masking (SpecAugment, Park et al. 2019).
- Time stretch: the log-mel is resampled along time by a random rate, then cropped or
  edge-padded back to its length (tempo changes, pitch does not).
- Pitch shift: the log-mel is resampled along the mel axis so that every band takes the
  energy of the band ``2 ** (-semitones / 12)`` times its centre frequency (the
  spectral picture of a pitch shift; a phase vocoder on the waveform would cost about
  100x more on this CPU).

Both warps are one ``grid_sample`` per batch, so they cost little next to the CNN.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["SpecAugment"]


class SpecAugment(nn.Module):
    """Masking and warping of a (batch, n_mels, n_frames) log-mel; a no-op in eval mode.

    Masked cells are set to each item's mean, so masking does not inject a fake silence
    far below the clip's level.

    Args:
        time_masks, time_mask_frames: Number and maximum width of time masks.
        freq_masks, freq_mask_bins: Number and maximum width of mel-band masks.
        time_stretch: Maximum relative tempo change (0.1 = rates in [0.9, 1.1]); 0 = off.
        pitch_shift_semitones: Maximum pitch shift either way; 0 = off.
        mel_center_hz: Centre frequency of each mel band (needed for pitch shift).
    """

    log2_center_hz: Tensor  # a buffer

    def __init__(
        self,
        *,
        time_masks: int = 2,
        time_mask_frames: int = 12,
        freq_masks: int = 2,
        freq_mask_bins: int = 6,
        time_stretch: float = 0.0,
        pitch_shift_semitones: float = 0.0,
        mel_center_hz: np.ndarray | None = None,
    ) -> None:
        super().__init__()
        self.time_masks = time_masks
        self.time_mask_frames = time_mask_frames
        self.freq_masks = freq_masks
        self.freq_mask_bins = freq_mask_bins
        self.time_stretch = float(time_stretch)
        self.pitch_shift_semitones = float(pitch_shift_semitones)
        if self.pitch_shift_semitones and mel_center_hz is None:
            raise ValueError("pitch_shift_semitones needs mel_center_hz (the mel bands' centre frequencies)")
        centers = torch.as_tensor(np.log2(np.maximum(mel_center_hz, 1e-3)) if mel_center_hz is not None else np.zeros(0))
        self.register_buffer("log2_center_hz", centers.float(), persistent=False)

    def _mask(self, x: Tensor, dim: int, n_masks: int, width: int) -> Tensor:
        if n_masks == 0 or width == 0:
            return x
        batch, size = x.shape[0], x.shape[dim]
        positions = torch.arange(size, device=x.device)
        keep = torch.ones(batch, size, dtype=torch.bool, device=x.device)
        for _ in range(n_masks):
            widths = torch.randint(0, width + 1, (batch, 1), device=x.device)
            starts = (torch.rand(batch, 1, device=x.device) * (size - widths).clamp(min=1)).long()
            keep &= ~((positions >= starts) & (positions < starts + widths))
        keep = keep.unsqueeze(2) if dim == 1 else keep.unsqueeze(1)
        fill = x.mean(dim=(1, 2), keepdim=True)
        return torch.where(keep, x, fill)

    def _mel_positions(self, semitones: Tensor) -> Tensor:
        """(batch,) shifts -> (batch, n_mels) source positions in [-1, 1] for grid_sample."""
        centers = self.log2_center_hz  # increasing
        source = centers.unsqueeze(0) - semitones.unsqueeze(1) / 12.0  # log2 Hz each band reads from
        n = centers.numel()
        right = torch.searchsorted(centers, source.contiguous()).clamp(1, n - 1)
        left = right - 1
        frac = (source - centers[left]) / (centers[right] - centers[left])
        index = left.float() + frac  # fractional band index; outside [0, n-1] reads the border
        return index / (n - 1) * 2 - 1

    def warp(self, x: Tensor, rates: Tensor | None = None, semitones: Tensor | None = None) -> Tensor:
        """Resample (batch, n_mels, n_frames) along time by ``rates`` and along mel by ``semitones``.

        A rate above 1 plays faster (an event at frame t moves toward the centre, to
        ``centre + (t - centre) / rate``); positive semitones move energy up in frequency.
        """
        batch, n_mels, n_frames = x.shape
        device = x.device
        frames = torch.linspace(-1, 1, n_frames, device=device).expand(batch, n_frames)
        if rates is not None:
            frames = frames * rates.to(device).reshape(batch, 1)
        if semitones is not None:
            bands = self._mel_positions(semitones.to(device).reshape(batch).float())
        else:
            bands = torch.linspace(-1, 1, n_mels, device=device).expand(batch, n_mels)
        grid = torch.stack(
            [frames.unsqueeze(1).expand(batch, n_mels, n_frames), bands.unsqueeze(2).expand(batch, n_mels, n_frames)],
            dim=-1,
        )
        warped = F.grid_sample(x.unsqueeze(1), grid.to(x.dtype), mode="bilinear", padding_mode="border", align_corners=True)
        return warped.squeeze(1)

    def forward(self, log_mel: Tensor) -> Tensor:
        if not self.training:
            return log_mel
        if self.time_stretch or self.pitch_shift_semitones:
            batch, device = log_mel.shape[0], log_mel.device
            rates = 1 + (torch.rand(batch, device=device) * 2 - 1) * self.time_stretch if self.time_stretch else None
            shifts = (
                (torch.rand(batch, device=device) * 2 - 1) * self.pitch_shift_semitones if self.pitch_shift_semitones else None
            )
            log_mel = self.warp(log_mel, rates, shifts)
        log_mel = self._mask(log_mel, 1, self.freq_masks, self.freq_mask_bins)
        return self._mask(log_mel, 2, self.time_masks, self.time_mask_frames)
