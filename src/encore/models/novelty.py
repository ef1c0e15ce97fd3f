"""How unlike the training songs a song is: whitened coordinates in their principal subspace.

After training, the training songs' mean embeddings (each song cut and averaged as the
:class:`~encore.inference.Predictor` does) give a centre and the ``k`` leading principal
directions, each scaled to unit variance. :class:`NoveltyProjection` maps a chunk's
embedding to those ``k`` whitened coordinates; a song's chunks are averaged, so its
coordinates are those of its mean embedding (the map is affine), and its novelty
distance is their sum of squares, the Mahalanobis distance of the song's mean embedding
within that subspace. A training song lies at about ``k`` on average. The distances of
held-out songs (the validation split) calibrate it: the card keeps their percentiles and
the 99th as the threshold beyond which a song is flagged as unlike anything the model
was trained on (Lee et al., "A Simple Unified Framework for Detecting Out-of-Distribution
Samples", NeurIPS 2018, on a network's features; here on the song's mean embedding).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

__all__ = ["NoveltyProjection", "fit_projection"]


class NoveltyProjection(nn.Module):
    """``(batch, in_features)`` embeddings -> ``(batch, n_components)`` whitened coordinates.

    The centre and the projection are buffers (zero until :meth:`set`), saved with the
    model and exported with it to ONNX. Always float32, also under a bfloat16 autocast.
    """

    def __init__(self, in_features: int, n_components: int) -> None:
        super().__init__()
        self.register_buffer("center", torch.zeros(in_features))
        self.register_buffer("projection", torch.zeros(n_components, in_features))

    @torch.no_grad()
    def set(self, center: np.ndarray, projection: np.ndarray) -> None:
        """Load a fitted centre ``(in_features,)`` and projection ``(k, in_features)``; rows past ``k`` stay zero."""
        self.center.copy_(torch.as_tensor(center, dtype=torch.float32))
        self.projection.zero_()
        self.projection[: len(projection)] = torch.as_tensor(projection, dtype=torch.float32)

    def forward(self, embedding: Tensor) -> Tensor:
        with torch.autocast(device_type=embedding.device.type, enabled=False):
            return (embedding.float() - self.center) @ self.projection.T


def fit_projection(embeddings: np.ndarray, n_components: int) -> tuple[np.ndarray, np.ndarray]:
    """Centre and whitening projection ``(k, dim)`` of the rows of ``embeddings``.

    ``k`` is at most ``n_components`` and at most one less than the number of rows; each
    direction's scale is floored at 1e-3 of the largest, so a direction the training songs
    barely span cannot make every new song look infinitely far.
    """
    center = embeddings.mean(axis=0)
    _, singular, vectors = np.linalg.svd(embeddings - center, full_matrices=False)
    k = int(min(n_components, len(embeddings) - 1, len(singular)))
    scale = singular[:k] / np.sqrt(max(len(embeddings) - 1, 1))
    scale = np.maximum(scale, 1e-3 * scale[0]) if k else scale
    return center, vectors[:k] / scale[:, None]
