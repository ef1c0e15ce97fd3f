"""How unlike the training songs a song is: a shrunk Mahalanobis distance, calibrated on held-out songs.

A song is described for this purpose by the mean over its chunks of the backbone's
embedding and of its log-mel's band statistics (each band's mean, spread and flux,
:func:`mel_band_statistics`): what the network makes of the song and what the song is
like as sound, so a recording unlike the training songs shows even where a briefly
trained network maps it among them. After training, the training songs give a centre
and a covariance (each feature standardised, then Ledoit-Wolf shrinkage, since there are
often fewer songs than features); :class:`NoveltyProjection` holds the whitening map,
``W = precision^(1/2)``. The map is affine, so the mean of a song's whitened chunks is
its whitened mean, and the song's distance is that vector's squared length: the
Mahalanobis distance of the song from the training songs (Lee et al., "A Simple Unified
Framework for Detecting Out-of-Distribution Samples", NeurIPS 2018, on a network's
features). Held-out songs (the validation split) calibrate it: the card keeps their
distances' percentiles and the 99th as the threshold past which a song is flagged.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

__all__ = ["NoveltyProjection", "fit_whitening", "whitened_distance"]


class NoveltyProjection(nn.Module):
    """``(batch, in_features)`` -> ``(batch, in_features)`` whitened features.

    The centre and the whitening map are buffers (zero until :meth:`set`), saved with the
    model and exported with it to ONNX. Always float32, also under a bfloat16 autocast.
    """

    center: Tensor  # buffers
    whitening: Tensor

    def __init__(self, in_features: int) -> None:
        super().__init__()
        self.register_buffer("center", torch.zeros(in_features))
        self.register_buffer("whitening", torch.zeros(in_features, in_features))

    @torch.no_grad()
    def set(self, center: np.ndarray, whitening: np.ndarray) -> None:
        """Load a fitted centre ``(in_features,)`` and whitening map ``(in_features, in_features)``."""
        self.center.copy_(torch.as_tensor(center, dtype=torch.float32))
        self.whitening.copy_(torch.as_tensor(whitening, dtype=torch.float32))

    def forward(self, features: Tensor) -> Tensor:
        with torch.autocast(device_type=features.device.type, enabled=False):
            return (features.float() - self.center) @ self.whitening.T


def whitened_distance(features: np.ndarray, center: np.ndarray, whitening: np.ndarray) -> np.ndarray:
    """Each row's squared length after centring and whitening: its Mahalanobis distance (the model's, in float64)."""
    return (((features - center) @ whitening.T) ** 2).sum(axis=1)


def fit_whitening(features: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Centre, whitening map and Ledoit-Wolf shrinkage of the rows of ``features``.

    Each column is standardised first (a feature the songs do not vary in is left
    unscaled), so the shrinkage target, a multiple of the identity, suits every feature;
    the scaling is folded into the returned map.
    """
    from sklearn.covariance import LedoitWolf

    center = features.mean(axis=0)
    scale = features.std(axis=0)
    scale = np.where(scale > 1e-8 * max(float(scale.max()), 1e-30), scale, 1.0)
    estimator = LedoitWolf(assume_centered=True).fit((features - center) / scale)
    values, vectors = np.linalg.eigh(estimator.precision_)
    root = (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T
    return center, root / scale[None, :], float(estimator.shrinkage_)
