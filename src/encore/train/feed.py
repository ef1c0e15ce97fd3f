"""Training crops drawn on the training device, so a GPU is not starved by the host.

On a CPU the loop crops each batch from the decoded songs with numpy
(:func:`encore.audio.chunking.random_crop`). On a GPU that host work (slicing, stacking,
copying 50 MB a batch) kept a real run at 5-10 % of what the GPU trains on batches that
are already there. :class:`CropBank` instead puts every training song once into one
flat tensor on the device and takes a batch of crops as a single gather there. The crop
starts come from the same numpy generator calls as ``random_crop``, so a run draws the
same crops on either path.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

logger = logging.getLogger(__name__)

__all__ = ["CropBank", "draw_crop_starts", "to_device"]

MEMORY_SHARE = 0.25
"""Largest share of the GPU's memory the songs may take in float32; beyond it they are kept in float16."""


def to_device(array: np.ndarray, device: torch.device) -> Tensor:
    """``array`` as a tensor on ``device``; to a GPU through pinned memory, so the copy does not
    make the host wait for the GPU to finish the step before."""
    tensor = torch.from_numpy(np.ascontiguousarray(array))
    return tensor.pin_memory().to(device, non_blocking=True) if device.type == "cuda" else tensor


def draw_crop_starts(lengths: np.ndarray, chunk_samples: int, rng: np.random.Generator) -> np.ndarray:
    """Crop starts for songs of ``lengths`` samples, drawn exactly as ``random_crop`` draws them.

    A song no longer than the crop starts at 0 (and is zero-padded) without a draw.
    """
    starts = np.zeros(len(lengths), dtype=np.int64)
    for j, n_samples in enumerate(lengths):
        if n_samples > chunk_samples:
            starts[j] = int(rng.integers(0, n_samples - chunk_samples + 1))
    return starts


class CropBank:
    """Every training song in one flat tensor on ``device``; random crops by one gather.

    Args:
        waveforms: Mono float32 songs, in the order the loop indexes them.
        chunk_samples: Crop length in samples; shorter songs are zero-padded to it.
        device: Where the songs live and crops are made.

    Example:
        >>> bank = CropBank([np.ones(10, np.float32)], 4, torch.device("cpu"))
        >>> bank.crops(np.array([0]), np.random.default_rng(0)).shape
        torch.Size([1, 4])
    """

    def __init__(self, waveforms: Sequence[np.ndarray], chunk_samples: int, device: torch.device) -> None:
        self.chunk_samples = int(chunk_samples)
        self.device = device
        self.lengths = np.array([len(w) for w in waveforms], dtype=np.int64)
        room = np.maximum(self.lengths, self.chunk_samples)
        self.offsets = np.concatenate([[0], np.cumsum(room)[:-1]]).astype(np.int64)
        total = int(room.sum())
        dtype = torch.float32
        if device.type == "cuda" and total * 4 > MEMORY_SHARE * torch.cuda.get_device_properties(device).total_memory:
            dtype = torch.float16
            logger.info("training songs kept in float16 on %s (%.1f GB in float32)", device, total * 4 / 1e9)
        flat = torch.zeros(total, dtype=dtype, pin_memory=device.type == "cuda")
        for waveform, offset in zip(waveforms, self.offsets):
            flat[offset : offset + len(waveform)] = torch.from_numpy(np.asarray(waveform, dtype=np.float32))
        self.flat = flat.to(device, non_blocking=True)
        self._window = torch.arange(self.chunk_samples, device=device)

    def crops(self, song_index: np.ndarray, rng: np.random.Generator) -> Tensor:
        """Random crops ``(batch, chunk_samples)`` float32 of the songs ``song_index``.

        Args:
            song_index: Which songs, one crop each.
            rng: Draws the starts.
        """
        starts = self.offsets[song_index] + draw_crop_starts(self.lengths[song_index], self.chunk_samples, rng)
        return self.flat[to_device(starts, self.device)[:, None] + self._window].float()
