"""Global importances over a split: the forest's named features and the CNN's mel bands.

- Permutation importance (L. Breiman, "Random forests", Machine Learning 2001): the drop
  of the forest's accuracy when one feature's column is shuffled across songs, so a
  feature the forest leans on but that carries nothing on held-out songs scores near 0
  (impurity importances, by contrast, are measured on the training songs).
- Mel-band importance of the CNN: each of ``n_bands`` groups of mel bands in turn is set
  to the song's mean level (occlusion, as in :mod:`encore.explain.attribution`) on every
  chunk, and the drop of the log-odds of the song's class is averaged over songs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from encore.exceptions import ParameterError
from encore.explain.attribution import grid_slices, prepare_song, target_function
from encore.explain.plot import format_hz_range

logger = logging.getLogger(__name__)

__all__ = ["mel_band_importance", "permutation_importance_forest"]


def _check_songs(waveforms: Sequence[np.ndarray], y_true: np.ndarray) -> np.ndarray:
    y = np.asarray(y_true, dtype=np.int64)
    if y.ndim != 1 or len(waveforms) != y.size:
        raise ParameterError(f"got {len(waveforms)} songs but y_true has shape {y.shape}; give one class index per song")
    return y


def permutation_importance_forest(
    predictor: Any, waveforms: Sequence[np.ndarray], y_true: np.ndarray, *, n_repeats: int = 5, seed: int = 0
) -> list[dict[str, float | str]]:
    """Permutation importance of a random-forest run's named features on labelled songs.

    Args:
        predictor: A :class:`~encore.inference.BaselinePredictor` with a classifier.
        waveforms: Songs at ``predictor.sample_rate``.
        y_true: Class index per song (index into ``predictor.label_names``); songs with
            -1 are left out.
        n_repeats: Shuffles per feature.
        seed: Shuffle seed.

    Returns:
        ``{"feature", "importance", "std"}`` rows ranked by importance (mean accuracy drop).

    Raises:
        ParameterError: not a forest with a classifier, or fewer than two labelled songs.
    """
    from sklearn.inspection import permutation_importance

    models = getattr(predictor, "models", None)
    if not isinstance(models, dict) or "classifier" not in models:
        raise ParameterError(
            "permutation importance needs a random-forest run with a classifier (model_card.json + model.joblib)"
        )
    y = _check_songs(waveforms, y_true)
    known = np.flatnonzero(y >= 0)
    if known.size < 2:
        raise ParameterError(f"permutation importance needs at least two labelled songs, got {known.size}")
    features, owner = predictor.features([waveforms[i] for i in known.tolist()])  # rows: songs, or their segments
    result = permutation_importance(
        models["classifier"], features, y[known][owner], scoring="accuracy", n_repeats=n_repeats, random_state=seed, n_jobs=1
    )
    names = list(predictor.card.feature_names)
    rows: list[dict[str, float | str]] = [
        {"feature": str(name), "importance": float(mean), "std": float(std)}
        for name, mean, std in zip(names, result.importances_mean, result.importances_std, strict=True)
    ]
    return sorted(rows, key=lambda r: -float(r["importance"]))


@torch.no_grad()
def mel_band_importance(
    predictor: Any, waveforms: Sequence[np.ndarray], y_true: np.ndarray | None = None, *, n_bands: int = 8
) -> list[dict[str, float | str]]:
    """Mel-band importance of a CNN run, averaged over songs.

    Args:
        predictor: A CNN :class:`~encore.inference.Predictor` with a class head.
        waveforms: Songs at ``predictor.sample_rate``.
        y_true: Class index per song; the drop is of that class's log-odds. Songs with -1
            (or all songs, when None) use their predicted class.
        n_bands: Groups of adjacent mel bands.

    Returns:
        ``{"band", "f_low_hz", "f_high_hz", "importance", "std"}`` rows ranked by the
        mean log-odds drop (``band`` reads e.g. ``"861-1894 Hz"``).

    Raises:
        ParameterError: not a CNN with a class head, or no songs.
    """
    model = getattr(predictor, "model", None)
    if model is None or not hasattr(model, "frontend") or not predictor.label_names:
        raise ParameterError("mel-band importance needs a CNN run with a class head")
    if not waveforms:
        raise ParameterError("mel-band importance needs at least one song")
    y = np.full(len(waveforms), -1) if y_true is None else _check_songs(waveforms, y_true)
    drops: list[np.ndarray] = []
    edges = None
    bands: list[slice] = []
    for waveform, label in zip(waveforms, y):
        song = prepare_song(model, waveform, chunk_samples=predictor.chunk_samples, hop_samples=predictor.hop_samples)
        chunks = song.chunks.unsqueeze(0)
        if label < 0:
            label = int(np.argmax(predictor.predict_waveform(waveform)["class_probs"]))
        f = target_function(model, predictor.card, "class", int(label))
        _, bands = grid_slices(1, chunks.shape[2], n_segments=1, n_bands=n_bands)
        fill = float(song.picture(song.chunks).mean())
        perturbed = chunks.repeat(len(bands), 1, 1, 1)
        for k, band in enumerate(bands):
            perturbed[k, :, band, :] = fill
        drops.append(float(f(chunks)[0]) - f(perturbed).double().numpy())
        edges = song.band_edges_hz
    table = np.stack(drops)
    assert edges is not None  # set by the loop: waveforms is not empty
    rows: list[dict[str, float | str]] = []
    for k, band in enumerate(bands):
        low, high = float(edges[band.start, 0]), float(edges[band.stop - 1, 1])
        rows.append(
            {
                "band": format_hz_range(low, high),
                "f_low_hz": round(low, 1),
                "f_high_hz": round(high, 1),
                "importance": float(table[:, k].mean()),
                "std": float(table[:, k].std()),
            }
        )
    return sorted(rows, key=lambda r: -float(r["importance"]))
