"""Temperature scaling fitted on the validation songs at the end of training.

The Predictor divides each chunk's class logits by the card's temperature and then
aggregates chunks to a song (mean of probabilities, or softmax of the mean logit). The
temperature is fitted through that same aggregation, on the validation split, so the
song-level probabilities it calibrates are the ones users see.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax

from encore.audio.chunking import chunk_waveform
from encore.models.classifier import EncoreModel

logger = logging.getLogger(__name__)

__all__ = ["fit_song_temperature"]


@torch.inference_mode()
def _chunk_class_logits(
    model: EncoreModel, waveforms: Sequence[np.ndarray], chunk_samples: int, hop_samples: int | None, batch_size: int
) -> list[np.ndarray]:
    device = next(model.parameters()).device
    out = []
    for waveform in waveforms:
        chunks = chunk_waveform(np.asarray(waveform, dtype=np.float32), chunk_samples=chunk_samples, hop_samples=hop_samples)
        parts = [
            model(torch.from_numpy(np.ascontiguousarray(chunks[i : i + batch_size])).to(device))["class"].float().cpu().numpy()
            for i in range(0, len(chunks), batch_size)
        ]
        out.append(np.concatenate(parts).astype(np.float64))
    return out


def fit_song_temperature(
    model: EncoreModel,
    waveforms: Sequence[np.ndarray],
    classes: np.ndarray,
    *,
    chunk_samples: int,
    hop_samples: int | None = None,
    aggregate: str,
    batch_size: int = 64,
    bounds: tuple[float, float] = (0.05, 20.0),
) -> dict[str, float] | None:
    """The temperature minimising song-level NLL on labelled validation songs.

    Returns:
        ``{"temperature", "nll_before", "nll_after", "n_songs"}``, or None when fewer than
        two labelled songs (the card then keeps temperature 1).
    """
    known = np.flatnonzero(classes >= 0)
    if len(known) < 2 or "class" not in model.heads:
        return None
    was_training = model.training
    model.eval()
    logits = _chunk_class_logits(model, [waveforms[i] for i in known], chunk_samples, hop_samples, batch_size)
    model.train(was_training)
    truth = classes[known]

    def nll(log_t: float) -> float:
        t = float(np.exp(log_t))
        if aggregate == "mean_logits":
            song = np.stack([log_softmax(z.mean(0) / t) for z in logits])
        else:
            song = np.log(np.clip(np.stack([softmax(z / t, axis=1).mean(0) for z in logits]), 1e-12, 1))
        return float(-song[np.arange(len(truth)), truth].mean())

    result = minimize_scalar(nll, bounds=(np.log(bounds[0]), np.log(bounds[1])), method="bounded", options={"xatol": 1e-4})
    temperature = float(np.exp(result.x))
    fitted = {"temperature": temperature, "nll_before": nll(0.0), "nll_after": float(result.fun), "n_songs": int(len(truth))}
    logger.info("temperature %.3f on %d validation songs (NLL %.4f -> %.4f)", temperature, len(truth), fitted["nll_before"], fitted["nll_after"])
    return fitted
